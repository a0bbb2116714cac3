/*
 * The validation cache (cache.h).
 *
 * Outline:
 *   1. A key is the SHA2-256 of (kind, a, b, type, digest) with the names
 *      lowercased; the value is a small versioned record (cache.h) that
 *      repeats the names and the digest, so that a lookup accepts a record
 *      only if it is well formed, of the current version, fresh, and says
 *      exactly what was asked.  Garbage, a record of another key, or a
 *      newer format is a miss: a broken cache can never authenticate.
 *   2. Three stores behind the same four operations (get, put, walk,
 *      clear): a hash table under a mutex for one process, an LMDB file,
 *      or a Redis server shared by a site (cache_redis.c, whose entries
 *      are signed with the site key).
 *   3. LMDB: one environment per process and path (LMDB forbids opening a
 *      file twice in a process), opened on first use with MDB_NOTLS so
 *      that read transactions need no thread of their own; readers use
 *      read-only transactions, writers are serialised by LMDB across
 *      processes.  A full map is made room in by dropping expired entries,
 *      then everything.  An environment that fails to open is not used by
 *      this process for TP_RETRY seconds, and every call in that time says
 *      so in its note.  Before LMDB opens them, the file and its lock file
 *      are checked by the file-trust module (lenv_check()).  A child made by
 * fork() forgets the parent's environments (LMDB: not to be used after fork)
 * and opens its own.
 */
#include <errno.h>
#include <gnutls/crypto.h>
#include <limits.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache.h"
#include "cache_redis.h"
#include "config.h"
#include "filetrust.h"

#define TP_RECMAX      (TP_CACHE_HDR + 320 + TP_CACHE_DATA_MAX)
#define TP_MEM_BUCKETS 4096
#define TP_MEM_MAX     65536
#define TP_RETRY       5

/* --- records -------------------------------------------------------------- */

static void put16(unsigned char *p, unsigned v)
{
	p[0] = v & 0xff;
	p[1] = (v >> 8) & 0xff;
}

static unsigned get16(const unsigned char *p)
{
	return p[0] | (unsigned)p[1] << 8;
}

static void put64(unsigned char *p, int64_t v)
{
	uint64_t u = (uint64_t)v;

	for (int i = 0; i < 8; i++)
		p[i] = (u >> (8 * i)) & 0xff;
}

static int64_t get64(const unsigned char *p)
{
	uint64_t u = 0;

	for (int i = 7; i >= 0; i--)
		u = u << 8 | p[i];
	return (int64_t)u;
}

static void lower(char *dst, const char *src, size_t len)
{
	for (size_t i = 0; i < len; i++)
		dst[i] =
		        (src[i] >= 'A' && src[i] <= 'Z') ? src[i] + 32 : src[i];
}

static int key_ok(const struct tp_cache_key *k)
{
	return k != NULL &&
	       (k->kind == TP_CACHE_AUTHN || k->kind == TP_CACHE_AUTHZ ||
	        k->kind == TP_CACHE_KEYS) &&
	       k->a != NULL && k->b != NULL && strlen(k->a) <= 320 &&
	       strlen(k->b) <= 320;
}

/* The database key: SHA2-256 over the lowercased key fields. */
static int key_digest(const struct tp_cache_key *k, unsigned char out[32])
{
	unsigned char buf[1 + 321 + 321 + 2 + 32];
	size_t la = strlen(k->a), lb = strlen(k->b), n = 0;

	buf[n++] = (unsigned char)k->kind;
	lower((char *)buf + n, k->a, la);
	n += la;
	buf[n++] = 0;
	lower((char *)buf + n, k->b, lb);
	n += lb;
	buf[n++] = 0;
	put16(buf + n, k->type);
	n += 2;
	memcpy(buf + n, k->digest, 32);
	n += 32;
	return gnutls_hash_fast(GNUTLS_DIG_SHA256, buf, n, out) == 0 ? 0 : -1;
}

static size_t rec_make(unsigned char *r, const struct tp_cache_key *k,
                       int verdict, time_t expiry, time_t now)
{
	size_t la = strlen(k->a), lb = strlen(k->b);

	memset(r, 0, TP_CACHE_HDR);
	memcpy(r, TP_CACHE_MAGIC, 4);
	put16(r + 4, TP_CACHE_VERSION);
	r[6] = (unsigned char)k->kind;
	r[7] = (unsigned char)verdict;
	put64(r + 8, expiry);
	put64(r + 16, now);
	put16(r + 24, k->type);
	put16(r + 26, (unsigned)la);
	put16(r + 28, (unsigned)lb);
	memcpy(r + 32, k->digest, 32);
	lower((char *)r + TP_CACHE_HDR, k->a, la);
	lower((char *)r + TP_CACHE_HDR + la, k->b, lb);
	return TP_CACHE_HDR + la + lb;
}

/* Is this a record of the current format?  NULL, or what is wrong. */
static const char *rec_check(const unsigned char *r, size_t len)
{
	if (len < TP_CACHE_HDR)
		return "record too short";
	if (memcmp(r, TP_CACHE_MAGIC, 4) != 0)
		return "bad magic";
	if (get16(r + 4) != TP_CACHE_VERSION)
		return "unknown record version";
	if ((r[6] != TP_CACHE_AUTHN && r[6] != TP_CACHE_AUTHZ &&
	     r[6] != TP_CACHE_KEYS) ||
	    (r[7] != TP_CACHE_PASS && r[7] != TP_CACHE_FAIL) || get16(r + 30) ||
	    (r[6] == TP_CACHE_KEYS && r[7] != TP_CACHE_PASS))
		return "bad kind or verdict";
	if (get16(r + 26) > 320 ||
	    get16(r + 28) > (r[6] == TP_CACHE_KEYS ? TP_CACHE_DATA_MAX : 320) ||
	    TP_CACHE_HDR + get16(r + 26) + get16(r + 28) != len)
		return "bad length";
	if (get64(r + 8) <= get64(r + 16))
		return "expires before it was stored";
	return NULL;
}

/* Does the (well-formed) record say exactly what key asks? */
static int rec_matches(const unsigned char *r, const struct tp_cache_key *k)
{
	size_t la = strlen(k->a), lb = strlen(k->b);

	if (k->kind == TP_CACHE_KEYS) /* b: the data, not part of the key */
		lb = get16(r + 28);
	return r[6] == k->kind && get16(r + 24) == k->type &&
	       get16(r + 26) == la && get16(r + 28) == lb &&
	       memcmp(r + 32, k->digest, 32) == 0 &&
	       strncasecmp((const char *)r + TP_CACHE_HDR, k->a, la) == 0 &&
	       (k->kind == TP_CACHE_KEYS ||
	        strncasecmp((const char *)r + TP_CACHE_HDR + la, k->b, lb) ==
	                0);
}

/* --- the in-memory store -------------------------------------------------- */

struct mem_entry {
	struct mem_entry *next;
	unsigned char key[32];
	time_t expiry;
	size_t len;
	unsigned char rec[];
};

struct mem_store {
	pthread_mutex_t lock;
	size_t count;
	struct mem_entry *bucket[TP_MEM_BUCKETS];
};

static unsigned bucket_of(const unsigned char key[32])
{
	return (key[0] | (unsigned)key[1] << 8) % TP_MEM_BUCKETS;
}

static int mem_get(struct mem_store *m, const unsigned char key[32],
                   unsigned char *rec, size_t *len)
{
	struct mem_entry *e;
	int found = 0;

	pthread_mutex_lock(&m->lock);
	for (e = m->bucket[bucket_of(key)]; e != NULL; e = e->next)
		if (memcmp(e->key, key, 32) == 0) {
			memcpy(rec, e->rec, e->len);
			*len = e->len;
			found = 1;
			break;
		}
	pthread_mutex_unlock(&m->lock);
	return found;
}

/* Drop the entries expired at now (all of them with now 0).  Locked. */
static void mem_sweep(struct mem_store *m, time_t now)
{
	for (size_t i = 0; i < TP_MEM_BUCKETS; i++) {
		struct mem_entry **pp = &m->bucket[i], *e;

		while ((e = *pp) != NULL) {
			if (now == 0 || e->expiry <= now) {
				*pp = e->next;
				free(e);
				m->count--;
			} else {
				pp = &e->next;
			}
		}
	}
}

static int mem_put(struct mem_store *m, const unsigned char key[32],
                   const unsigned char *rec, size_t len, time_t expiry,
                   time_t now)
{
	struct mem_entry *e = malloc(sizeof(*e) + len), **pp;
	unsigned b = bucket_of(key);

	if (e == NULL)
		return -1;
	memcpy(e->key, key, 32);
	e->expiry = expiry;
	e->len = len;
	memcpy(e->rec, rec, len);
	pthread_mutex_lock(&m->lock);
	for (pp = &m->bucket[b]; *pp != NULL; pp = &(*pp)->next)
		if (memcmp((*pp)->key, key, 32) == 0) {
			struct mem_entry *old = *pp;

			e->next = old->next;
			*pp = e;
			free(old);
			pthread_mutex_unlock(&m->lock);
			return 0;
		}
	if (m->count >= TP_MEM_MAX)
		mem_sweep(m, now);
	if (m->count >= TP_MEM_MAX)
		mem_sweep(m, 0); /* a cache: starting afresh is always safe */
	e->next = m->bucket[b];
	m->bucket[b] = e;
	m->count++;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

/* --- LMDB environments, one per process and path ---------------------------
 */

struct lenv {
	struct lenv *next;
	char path[PATH_MAX];
	MDB_env *env; /* NULL while broken */
	MDB_dbi dbi;
	time_t failed_at; /* when it last failed to open */
	char why[300];
};

static pthread_mutex_t lenv_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lenv *lenvs, *stale;
static pthread_once_t lenv_once = PTHREAD_ONCE_INIT;

/* LMDB: "do not use an environment after fork()".  The child keeps the
 * parent's aside, unused (their locks are the parent's), and opens its
 * own. */
static void lenv_forget(void)
{
	struct lenv *l = lenvs;

	while (l != NULL && l->next != NULL)
		l = l->next;
	if (l != NULL) {
		l->next = stale;
		stale = lenvs;
	}
	lenvs = NULL;
	pthread_mutex_init(&lenv_lock, NULL);
}

static void lenv_atfork(void)
{
	pthread_atfork(NULL, NULL, lenv_forget);
}

/*
 * The cache file and its lock file are opened (created with mode 0600
 * when missing) by the file-trust module first, never through a symbolic
 * link, and checked: regular files owned by root or us, not writable by
 * group or other, in a directory that another user cannot replace them
 * in.  LMDB then opens the same paths; the data file LMDB opened must be
 * the one checked.  A file that fails is not used: its note names the
 * file, its owner and its mode, and validation goes online.
 */
static int lenv_check(struct lenv *l, struct stat *data)
{
	char lock[PATH_MAX + 8], err[280];
	struct stat st;
	int fd;

	fd = tlspool_file_open_cache(l->path, data, err, sizeof(err));
	if (fd < 0) {
		snprintf(l->why, sizeof(l->why), "cache %s", err);
		return -1;
	}
	close(fd);
	snprintf(lock, sizeof(lock), "%s-lock", l->path);
	fd = tlspool_file_open_cache(lock, &st, err, sizeof(err));
	if (fd < 0) {
		snprintf(l->why, sizeof(l->why), "cache %s", err);
		return -1;
	}
	close(fd);
	return 0;
}

static int lenv_open(struct lenv *l)
{
	MDB_txn *txn = NULL;
	struct stat checked, opened;
	int r, dead, fd;

	if (lenv_check(l, &checked) != 0)
		return -1;
	r = mdb_env_create(&l->env);
	if (r == 0)
		r = mdb_env_set_mapsize(l->env, TP_CACHE_MAPSIZE);
	if (r == 0)
		r = mdb_env_set_maxreaders(l->env, 256);
	if (r == 0)
		r = mdb_env_open(l->env, l->path,
		                 MDB_NOSUBDIR | MDB_NOTLS | MDB_NOMETASYNC,
		                 0600);
	if (r == 0 &&
	    (mdb_env_get_fd(l->env, &fd) != 0 || fstat(fd, &opened) != 0 ||
	     opened.st_dev != checked.st_dev ||
	     opened.st_ino != checked.st_ino)) {
		mdb_env_close(l->env);
		l->env = NULL;
		snprintf(l->why, sizeof(l->why),
		         "cache %.150s: replaced while it was opened", l->path);
		return -1;
	}
	if (r == 0)
		r = mdb_txn_begin(l->env, NULL, 0, &txn);
	if (r == 0)
		r = mdb_dbi_open(txn, NULL, 0, &l->dbi);
	if (r == 0) {
		r = mdb_txn_commit(txn);
		txn = NULL;
	}
	if (r == 0) {
		mdb_reader_check(l->env,
		                 &dead); /* slots of crashed processes */
		return 0;
	}
	if (txn != NULL)
		mdb_txn_abort(txn);
	if (l->env != NULL)
		mdb_env_close(l->env);
	l->env = NULL;
	snprintf(l->why, sizeof(l->why), "cache %.150s: %s", l->path,
	         mdb_strerror(r));
	return -1;
}

/* The environment of path, opened if need be; NULL with note set. */
static struct lenv *lenv_get(const char *path, time_t now, char *note,
                             size_t notelen)
{
	struct lenv *l;

	pthread_once(&lenv_once, lenv_atfork);
	pthread_mutex_lock(&lenv_lock);
	for (l = lenvs; l != NULL; l = l->next)
		if (strcmp(l->path, path) == 0)
			break;
	if (l == NULL) {
		l = calloc(1, sizeof(*l));
		if (l == NULL) {
			pthread_mutex_unlock(&lenv_lock);
			snprintf(note, notelen, "cache %.150s: out of memory",
			         path);
			return NULL;
		}
		snprintf(l->path, sizeof(l->path), "%s", path);
		l->next = lenvs;
		lenvs = l;
	}
	if (l->env == NULL &&
	    (l->failed_at == 0 || now - l->failed_at >= TP_RETRY ||
	     now < l->failed_at)) {
		if (lenv_open(l) != 0)
			l->failed_at = now;
	}
	if (l->env == NULL) {
		snprintf(note, notelen, "%s", l->why);
		l = NULL;
	}
	pthread_mutex_unlock(&lenv_lock);
	return l;
}

static void lmdb_note(char *note, size_t notelen, const struct lenv *l,
                      const char *what, int r)
{
	snprintf(note, notelen, "cache %.150s: %s: %s", l->path, what,
	         mdb_strerror(r));
}

static int lmdb_get(struct lenv *l, const unsigned char key[32],
                    unsigned char *rec, size_t *len, char *note, size_t notelen)
{
	MDB_txn *txn;
	MDB_val k = {32, (void *)key}, v;
	int r, found = 0;

	r = mdb_txn_begin(l->env, NULL, MDB_RDONLY, &txn);
	if (r != 0) {
		lmdb_note(note, notelen, l, "read", r);
		return -1;
	}
	r = mdb_get(txn, l->dbi, &k, &v);
	if (r == 0 && v.mv_size <= TP_RECMAX) {
		memcpy(rec, v.mv_data, v.mv_size);
		*len = v.mv_size;
		found = 1;
	} else if (r == 0) {
		snprintf(note, notelen, "cache %.150s: oversized record",
		         l->path);
		found = -1;
	} else if (r != MDB_NOTFOUND) {
		lmdb_note(note, notelen, l, "read", r);
		found = -1;
	}
	mdb_txn_abort(txn);
	return found;
}

/* Drop expired and malformed entries (all with now 0).  In txn. */
static int lmdb_sweep(struct lenv *l, MDB_txn *txn, time_t now)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int r;

	if (now == 0)
		return mdb_drop(txn, l->dbi, 0);
	r = mdb_cursor_open(txn, l->dbi, &cur);
	if (r != 0)
		return r;
	while ((r = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0)
		if (rec_check(v.mv_data, v.mv_size) != NULL ||
		    get64((const unsigned char *)v.mv_data + 8) <= now)
			if ((r = mdb_cursor_del(cur, 0)) != 0)
				break;
	mdb_cursor_close(cur);
	return r == MDB_NOTFOUND ? 0 : r;
}

static int lmdb_put(struct lenv *l, const unsigned char key[32],
                    const unsigned char *rec, size_t len, time_t now,
                    char *note, size_t notelen)
{
	MDB_txn *txn;
	MDB_val k = {32, (void *)key}, v = {len, (void *)rec};
	int r, attempt;

	/* Full: make room by dropping expired entries, then all of them. */
	for (attempt = 0; attempt < 3; attempt++) {
		r = mdb_txn_begin(l->env, NULL, 0, &txn);
		if (r == MDB_MAP_RESIZED) { /* another process grew the file */
			mdb_env_set_mapsize(l->env, 0);
			r = mdb_txn_begin(l->env, NULL, 0, &txn);
		}
		if (r != 0)
			break;
		if (attempt > 0)
			r = lmdb_sweep(l, txn, attempt == 1 ? now : 0);
		if (r == 0)
			r = mdb_put(txn, l->dbi, &k, &v, 0);
		if (r == 0) {
			r = mdb_txn_commit(txn);
			if (r != MDB_MAP_FULL)
				break;
			continue;
		}
		mdb_txn_abort(txn);
		if (r != MDB_MAP_FULL)
			break;
	}
	if (r != 0) {
		lmdb_note(note, notelen, l, "write", r);
		return -1;
	}
	return 0;
}

/* --- the cache ---------------------------------------------------------- */

struct tp_cache {
	char path[PATH_MAX]; /* "" in memory and in Redis */
	char desc[PATH_MAX + 8];
	unsigned max_ttl;
	struct mem_store *mem;
	struct tp_redis *redis;
};

/* "cache PATH" or "cache redis ADDR..." or "cache", for notes. */
static const char *where(const tp_cache *c)
{
	return c->redis != NULL  ? tp_redis_describe(c->redis)
	       : c->path[0] != 0 ? c->path
	                         : "";
}

tp_cache *tp_cache_new(const char *path, unsigned max_ttl)
{
	tp_cache *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->max_ttl = max_ttl;
	if (path != NULL && path[0] != '\0') {
		snprintf(c->path, sizeof(c->path), "%s", path);
		snprintf(c->desc, sizeof(c->desc), "lmdb %s", path);
		return c;
	}
	snprintf(c->desc, sizeof(c->desc), "memory");
	c->mem = calloc(1, sizeof(*c->mem));
	if (c->mem == NULL) {
		free(c);
		return NULL;
	}
	pthread_mutex_init(&c->mem->lock, NULL);
	return c;
}

tp_cache *tp_cache_new_redis(const struct tp_redis_conf *rc, unsigned max_ttl)
{
	tp_cache *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->max_ttl = max_ttl;
	c->redis = tp_redis_new(rc);
	if (c->redis == NULL) {
		free(c);
		return NULL;
	}
	snprintf(c->desc, sizeof(c->desc), "%s", tp_redis_describe(c->redis));
	return c;
}

const char *tp_cache_describe(const tp_cache *c)
{
	return c->desc;
}

void tp_cache_free(tp_cache *c)
{
	if (c == NULL)
		return;
	tp_redis_free(c->redis);
	if (c->mem != NULL) {
		mem_sweep(c->mem, 0);
		pthread_mutex_destroy(&c->mem->lock);
		free(c->mem);
	}
	free(c);
}

/* The record of key into rec (TP_RECMAX octets) and *len, checked: the
 * verdict, or TP_CACHE_MISS. */
static int get_rec(tp_cache *c, const struct tp_cache_key *key, time_t now,
                   unsigned char *rec, size_t *reclen, time_t *expiry,
                   char *note, size_t notelen)
{
	unsigned char k[32];
	size_t len = 0;
	const char *bad;
	struct lenv *l;
	int found;
	int64_t exp, stored;

	if (c == NULL || !key_ok(key) || key_digest(key, k) != 0)
		return TP_CACHE_MISS;
	if (c->mem != NULL) {
		found = mem_get(c->mem, k, rec, &len);
	} else if (c->redis != NULL) {
		found = tp_redis_get(c->redis, k, rec, &len, TP_RECMAX, note,
		                     notelen);
	} else {
		l = lenv_get(c->path, now, note, notelen);
		if (l == NULL)
			return TP_CACHE_MISS;
		found = lmdb_get(l, k, rec, &len, note, notelen);
	}
	if (found <= 0)
		return TP_CACHE_MISS;
	if ((bad = rec_check(rec, len)) != NULL) {
		snprintf(note, notelen, "cache%s%.150s: entry for %.100s: %s",
		         where(c)[0] ? " " : "", where(c), key->a, bad);
		return TP_CACHE_MISS;
	}
	if (!rec_matches(rec, key)) {
		snprintf(note, notelen,
		         "cache%s%.150s: entry for %.100s: "
		         "belongs to another key",
		         where(c)[0] ? " " : "", where(c), key->a);
		return TP_CACHE_MISS;
	}
	exp = get64(rec + 8);
	stored = get64(rec + 16);
	/* A lowered max_ttl applies to what is stored already; a record
	 * from the future (a clock set back) is not trusted. */
	if (stored > (int64_t)now + 60)
		return TP_CACHE_MISS;
	if (exp > stored + (int64_t)c->max_ttl)
		exp = stored + (int64_t)c->max_ttl;
	if (exp <= (int64_t)now)
		return TP_CACHE_MISS;
	if (expiry != NULL)
		*expiry = (time_t)exp;
	*reclen = len;
	return rec[7];
}

int tp_cache_get(tp_cache *c, const struct tp_cache_key *key, time_t now,
                 time_t *expiry, char *note, size_t notelen)
{
	unsigned char rec[TP_RECMAX];
	size_t len;

	if (key != NULL && key->kind == TP_CACHE_KEYS)
		return TP_CACHE_MISS;
	return get_rec(c, key, now, rec, &len, expiry, note, notelen);
}

int tp_cache_get_data(tp_cache *c, const struct tp_cache_key *key, time_t now,
                      unsigned char *data, size_t max, size_t *len,
                      time_t *expiry, char *note, size_t notelen)
{
	unsigned char *rec;
	size_t rl = 0, la, lb;
	int v;

	if (key == NULL || key->kind != TP_CACHE_KEYS ||
	    (rec = malloc(TP_RECMAX)) == NULL)
		return TP_CACHE_MISS;
	v = get_rec(c, key, now, rec, &rl, expiry, note, notelen);
	la = v == TP_CACHE_PASS ? get16(rec + 26) : 0;
	lb = v == TP_CACHE_PASS ? get16(rec + 28) : 0;
	if (v == TP_CACHE_PASS && lb <= max) {
		memcpy(data, rec + TP_CACHE_HDR + la, lb);
		*len = lb;
	} else {
		v = TP_CACHE_MISS;
	}
	free(rec);
	return v;
}

/* Store the record rec (len octets, made for key) until expiry. */
static int put_rec(tp_cache *c, const struct tp_cache_key *key,
                   unsigned char *rec, size_t len, time_t expiry, time_t now,
                   char *note, size_t notelen)
{
	unsigned char k[32];
	struct lenv *l;

	if (key_digest(key, k) != 0) {
		snprintf(note, notelen, "cache: SHA2-256 failed");
		return -1;
	}
	if (c->mem != NULL) {
		if (mem_put(c->mem, k, rec, len, expiry, now) != 0) {
			snprintf(note, notelen, "cache: out of memory");
			return -1;
		}
		return 0;
	}
	if (c->redis != NULL) {
		/* One warning per call: the first (the lookup's) is kept. */
		char why[512] = "";
		int rv = tp_redis_put(c->redis, k, rec, len, expiry, why,
		                      sizeof(why));

		if (rv != 0 && notelen > 0 && note[0] == '\0')
			snprintf(note, notelen, "%s", why);
		return rv;
	}
	l = lenv_get(c->path, now, note, notelen);
	if (l == NULL)
		return -1;
	return lmdb_put(l, k, rec, len, now, note, notelen);
}

int tp_cache_put(tp_cache *c, const struct tp_cache_key *key, int verdict,
                 time_t expiry, time_t now, char *note, size_t notelen)
{
	unsigned char rec[TP_CACHE_HDR + 2 * 320];
	size_t len;

	if (c == NULL || !key_ok(key) || key->kind == TP_CACHE_KEYS ||
	    (verdict != TP_CACHE_PASS && verdict != TP_CACHE_FAIL)) {
		snprintf(note, notelen, "cache: bad entry");
		return -1;
	}
	if (expiry > now + (time_t)c->max_ttl)
		expiry = now + (time_t)c->max_ttl;
	if (expiry <= now)
		return 0; /* nothing to keep (max_ttl 0, or a TTL of 0) */
	len = rec_make(rec, key, verdict, expiry, now);
	return put_rec(c, key, rec, len, expiry, now, note, notelen);
}

int tp_cache_put_data(tp_cache *c, const struct tp_cache_key *key,
                      const unsigned char *data, size_t len, time_t expiry,
                      time_t now, char *note, size_t notelen)
{
	struct tp_cache_key k;
	unsigned char *rec;
	size_t la;
	int rv;

	if (c == NULL || !key_ok(key) || key->kind != TP_CACHE_KEYS ||
	    key->b[0] != '\0' || len == 0 || len > TP_CACHE_DATA_MAX) {
		snprintf(note, notelen, "cache: bad entry");
		return -1;
	}
	if (expiry > now + (time_t)c->max_ttl)
		expiry = now + (time_t)c->max_ttl;
	if (expiry <= now)
		return 0;
	if ((rec = malloc(TP_RECMAX)) == NULL) {
		snprintf(note, notelen, "cache: out of memory");
		return -1;
	}
	k = *key;
	la = strlen(k.a);
	rec_make(rec, &k, TP_CACHE_PASS, expiry, now);
	put16(rec + 28, (unsigned)len);
	memcpy(rec + TP_CACHE_HDR + la, data, len);
	rv = put_rec(c, key, rec, TP_CACHE_HDR + la + len, expiry, now, note,
	             notelen);
	free(rec);
	return rv;
}

/* --- administration ----------------------------------------------------------
 */

static void hexify(char *out, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
	out[2 * n] = '\0';
}

static int visit_one(const unsigned char *key, size_t klen,
                     const unsigned char *r, size_t len, const char *problem,
                     tlspool_cache_visit *visit, void *arg)
{
	tlspool_cache_entry e;
	char a[321], b[340];

	memset(&e, 0, sizeof(e));
	hexify(e.key, key, klen > 32 ? 32 : klen);
	e.identity = a;
	e.other = b;
	a[0] = b[0] = '\0';
	e.problem = problem != NULL ? problem : rec_check(r, len);
	if (e.problem == NULL) {
		size_t la = get16(r + 26), lb = get16(r + 28);

		e.valid = 1;
		e.authz = r[6] == TP_CACHE_AUTHZ;
		e.zonekeys = r[6] == TP_CACHE_KEYS;
		e.pass = r[7] == TP_CACHE_PASS;
		e.expiry = (time_t)get64(r + 8);
		e.stored = (time_t)get64(r + 16);
		snprintf(a, sizeof(a), "%.*s", (int)la,
		         (const char *)r + TP_CACHE_HDR);
		if (e.zonekeys)
			snprintf(b, sizeof(b), "DNSKEY DS (%zu octets)", lb);
		else if (e.authz)
			snprintf(b, sizeof(b), "%.*s", (int)lb,
			         (const char *)r + TP_CACHE_HDR + la);
		else
			snprintf(b, sizeof(b), "%.*s %s", (int)lb,
			         (const char *)r + TP_CACHE_HDR + la,
			         tlspool_rr_type_name((uint16_t)get16(r + 24)));
		if (!e.authz && !e.zonekeys)
			hexify(e.spki, r + 32, 32);
	}
	return visit(&e, arg);
}

struct redis_visit {
	tlspool_cache_visit *visit;
	void *arg;
};

static int redis_visit_one(const unsigned char key[32],
                           const unsigned char *rec, size_t len,
                           const char *problem, void *arg)
{
	struct redis_visit *rv = arg;

	return visit_one(key, 32, rec, len, problem, rv->visit, rv->arg);
}

int tp_cache_list(tp_cache *c, tlspool_cache_visit *visit, void *arg, char *err,
                  size_t errlen)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	struct lenv *l;
	int r;

	if (c->mem != NULL) {
		int stop = 0;

		pthread_mutex_lock(&c->mem->lock);
		for (size_t i = 0; i < TP_MEM_BUCKETS && !stop; i++)
			for (struct mem_entry *e = c->mem->bucket[i];
			     e != NULL && !stop; e = e->next)
				stop = visit_one(e->key, 32, e->rec, e->len,
				                 NULL, visit, arg);
		pthread_mutex_unlock(&c->mem->lock);
		return 0;
	}
	if (c->redis != NULL) {
		struct redis_visit rv = {visit, arg};

		return tp_redis_walk(c->redis, redis_visit_one, &rv, err,
		                     errlen);
	}
	l = lenv_get(c->path, time(NULL), err, errlen);
	if (l == NULL) {
		errno = EIO;
		return -1;
	}
	r = mdb_txn_begin(l->env, NULL, MDB_RDONLY, &txn);
	if (r == 0) {
		r = mdb_cursor_open(txn, l->dbi, &cur);
		if (r == 0) {
			while ((r = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0)
				if (visit_one(k.mv_data, k.mv_size, v.mv_data,
				              v.mv_size, NULL, visit, arg))
					break;
			mdb_cursor_close(cur);
		}
		mdb_txn_abort(txn);
	}
	if (r != 0 && r != MDB_NOTFOUND) {
		lmdb_note(err, errlen, l, "list", r);
		errno = EIO;
		return -1;
	}
	return 0;
}

int tp_cache_flush(tp_cache *c, char *err, size_t errlen)
{
	MDB_txn *txn;
	struct lenv *l;
	int r;

	if (c->mem != NULL) {
		pthread_mutex_lock(&c->mem->lock);
		mem_sweep(c->mem, 0);
		pthread_mutex_unlock(&c->mem->lock);
		return 0;
	}
	if (c->redis != NULL)
		return tp_redis_flush(c->redis, err, errlen);
	l = lenv_get(c->path, time(NULL), err, errlen);
	if (l == NULL) {
		errno = EIO;
		return -1;
	}
	r = mdb_txn_begin(l->env, NULL, 0, &txn);
	if (r == 0) {
		r = lmdb_sweep(l, txn, 0);
		if (r == 0)
			r = mdb_txn_commit(txn);
		else
			mdb_txn_abort(txn);
	}
	if (r != 0) {
		lmdb_note(err, errlen, l, "flush", r);
		errno = EIO;
		return -1;
	}
	return 0;
}
