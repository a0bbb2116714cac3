/*
 * The redis backend of the validation cache (cache_redis.h).
 *
 * Outline:
 *   1. Protocol: hiredis formats the commands and parses the replies
 *      (redisFormatCommandArgv, redisReader); the transport is ours, so
 *      that every operation, from connect() through the TLS handshake and
 *      AUTH to the last octet of the reply, ends at one deadline
 *      ([cache] redis_timeout_ms), and so that TLS (GnuTLS) is available
 *      with Debian's hiredis 0.14, which has no TLS of its own.
 *   2. Connections: a pool of TP_REDIS_POOL per cache, each under its own
 *      mutex, made on first use and kept; a thread takes a free one or
 *      waits for one until its deadline.  No threads of our own.
 *   3. Failure: a connection that fails or times out is closed and Redis
 *      is "down" for a backoff (TP_REDIS_BACKOFF_MIN doubling up to
 *      TP_REDIS_BACKOFF_MAX ms): calls in that time do not touch the
 *      network and say so in their note.  The first call after it starts
 *      a non-blocking connect() and, unless the kernel completes it at
 *      once (a unix socket, loopback), goes online without waiting; the
 *      connect() goes on in the kernel, and a later call finds it done
 *      (poll(2) with no timeout), then runs TLS and AUTH and its command
 *      within its own deadline; one still under way after
 *      max(redis_timeout_ms, TP_REDIS_CONNECT_MIN) is a failure.  Only
 *      while Redis has not failed since its last success (the first
 *      connection of a process) does a call wait for connect(), within
 *      its deadline.  A success ends the backoff.  An error reply (full,
 *      no permission) is a note for that call only.  Every failure means
 *      a miss: validation goes online, with one note per call.
 *   4. Signatures: the value stored is the record (cache.h) behind a key
 *      id and an HMAC-SHA256 tag over the database key and the record,
 *      with the site key of [cache] key_file, read like a private key
 *      (docs/architecture.md, "Files we trust").  A value that is not
 *      ours, signed with another key, or altered is never used.  The
 *      Redis key expires with the entry (SET ... EXAT).
 *   5. fork(): the child drops the parent's connections (an atfork
 *      handler over every live cache) and makes its own.
 *   6. The front ([cache] redis_local_ttl_ms, 0 by default: none): a
 *      bounded table (TP_REDIS_FRONT slots, direct-mapped by the
 *      database key, a SHA2-256) of records this process read from
 *      Redis with a good tag, or wrote there, each used without asking
 *      Redis for local_ttl_ms.  cache.c applies the record's own expiry
 *      to it as to any record; what the front adds is that a change in
 *      Redis (a --cache-flush, an entry replaced by another host)
 *      reaches this process only after up to local_ttl_ms.
 *
 * Files (redis_int.h declares what they share): this one holds the
 * secrets, construction, the entries and administration; redis_conn.c
 * the address, the transport, the pool and the fork() registry (1, 2, 3
 * and 5 above).
 */
#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "filetrust.h"
#include "redis_int.h"

#define TP_REDIS_ADMIN_MS   2000 /* at least, per --cache-list command */
#define TP_REDIS_SCAN_COUNT "256"

/* --- the secrets --- */

/* A secret file's content without trailing white space; 0 or -1 (why). */
static int read_secret(const char *path, unsigned char **out, size_t *outlen,
                       char *why, size_t whylen)
{
	unsigned char *data;
	size_t len;
	char err[300];

	if (tlspool_file_read(path, TLSPOOL_FILE_SECRET, &data, &len, err,
	                      sizeof(err)) != 0) {
		snprintf(why, whylen, "%s", err);
		return -1;
	}
	while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r' ||
	                   data[len - 1] == ' ' || data[len - 1] == '\t'))
		data[--len] = '\0';
	*out = data;
	*outlen = len;
	return 0;
}

static int load_tls(struct tp_redis *r, char *why, size_t whylen)
{
	const struct tp_redis_conf *c = &r->conf;
	unsigned char *ca = NULL, *crt = NULL, *key = NULL;
	size_t calen = 0, crtlen = 0, keylen = 0;
	char err[300];
	int rc = -1, n;

	if (gnutls_certificate_allocate_credentials(&r->xcred) < 0) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	if (tlspool_file_read(c->tls_ca, TLSPOOL_FILE_PUBLIC, &ca, &calen, err,
	                      sizeof(err)) != 0) {
		snprintf(why, whylen, "redis_tls_ca %s", err);
		goto out;
	}
	n = gnutls_certificate_set_x509_trust_mem(
	        r->xcred, &(gnutls_datum_t){ca, (unsigned)calen},
	        GNUTLS_X509_FMT_PEM);
	if (n <= 0) {
		snprintf(why, whylen, "redis_tls_ca %.200s: no certificate",
		         c->tls_ca);
		goto out;
	}
	if (c->tls_certificate[0] != '\0') {
		if (tlspool_file_read(c->tls_certificate, TLSPOOL_FILE_PUBLIC,
		                      &crt, &crtlen, err, sizeof(err)) != 0 ||
		    tlspool_file_read(c->tls_key, TLSPOOL_FILE_SECRET, &key,
		                      &keylen, err, sizeof(err)) != 0) {
			snprintf(why, whylen, "redis_tls %s", err);
			goto out;
		}
		n = gnutls_certificate_set_x509_key_mem(
		        r->xcred, &(gnutls_datum_t){crt, (unsigned)crtlen},
		        &(gnutls_datum_t){key, (unsigned)keylen},
		        GNUTLS_X509_FMT_PEM);
		if (n < 0) {
			snprintf(why, whylen,
			         "redis_tls_certificate %.200s: %s",
			         c->tls_certificate, gnutls_strerror(n));
			goto out;
		}
	}
	rc = 0;
out:
	tlspool_file_free(ca, calen);
	tlspool_file_free(crt, crtlen);
	tlspool_file_free(key, keylen);
	if (rc != 0) {
		gnutls_certificate_free_credentials(r->xcred);
		r->xcred = NULL;
	}
	return rc;
}

static void drop_secrets(struct tp_redis *r)
{
	tlspool_file_free(r->key, r->keylen);
	tlspool_file_free(r->password, r->passlen);
	r->key = r->password = NULL;
	r->keylen = r->passlen = 0;
	if (r->xcred != NULL)
		gnutls_certificate_free_credentials(r->xcred);
	r->xcred = NULL;
}

/* Read the site key, the password and the TLS files.  Locked. */
void tp_redis_setup(struct tp_redis *r)
{
	static const char id[] = "tlspool cache key id";
	unsigned char mac[32];

	drop_secrets(r);
	if (read_secret(r->conf.key_file, &r->key, &r->keylen, r->setup_why,
	                sizeof(r->setup_why)) != 0)
		goto fail;
	if (r->keylen < TP_REDIS_KEYMIN) {
		snprintf(r->setup_why, sizeof(r->setup_why),
		         "key_file %.200s: a site key has at least %d octets",
		         r->conf.key_file, TP_REDIS_KEYMIN);
		goto fail;
	}
	if (gnutls_hmac_fast(GNUTLS_MAC_SHA256, r->key, r->keylen, id,
	                     sizeof(id) - 1, mac) != 0) {
		snprintf(r->setup_why, sizeof(r->setup_why),
		         "HMAC-SHA256 failed");
		goto fail;
	}
	memcpy(r->keyid, mac, 8);
	if (r->conf.password_file[0] != '\0' &&
	    read_secret(r->conf.password_file, &r->password, &r->passlen,
	                r->setup_why, sizeof(r->setup_why)) != 0)
		goto fail;
	if (r->conf.tls && load_tls(r, r->setup_why, sizeof(r->setup_why)) != 0)
		goto fail;
	r->ready = 1;
	return;
fail:
	drop_secrets(r);
}

/* --- construction --- */

struct tp_redis *tp_redis_new(const struct tp_redis_conf *rc)
{
	struct tp_redis *r = calloc(1, sizeof(*r));
	size_t n = 0;

	if (r == NULL)
		return NULL;
	r->conf = *rc;
	tp_redis_conn_init(r);
	n = (size_t)snprintf(r->desc, sizeof(r->desc), "redis %s, prefix %s%s",
	                     rc->addr, rc->prefix, rc->tls ? ", TLS" : "");
	if (rc->local_ttl_ms > 0 && n < sizeof(r->desc))
		snprintf(r->desc + n, sizeof(r->desc) - n,
		         ", local front %u ms", rc->local_ttl_ms);
	n = 0;
	/* SCAN MATCH: the prefix with glob characters escaped, then 64
	 * lowercase hex digits. */
	for (const char *p = rc->prefix; *p; p++) {
		if (strchr("*?[]\\", *p) != NULL)
			r->pattern[n++] = '\\';
		r->pattern[n++] = *p;
	}
	for (int i = 0; i < 64; i++) {
		memcpy(r->pattern + n, "[0-9a-f]", 8);
		n += 8;
	}
	r->pattern[n] = '\0';
	pthread_mutex_init(&r->state, NULL);
	pthread_mutex_init(&r->front_lock, NULL);
	if (rc->local_ttl_ms > 0 &&
	    (r->front = calloc(TP_REDIS_FRONT, sizeof(*r->front))) == NULL) {
		pthread_mutex_destroy(&r->front_lock);
		pthread_mutex_destroy(&r->state);
		tp_redis_conn_fini(r);
		free(r);
		return NULL;
	}
	pthread_mutex_lock(&r->state);
	r->setup_at = tp_redis_mono_ms();
	tp_redis_setup(r);
	pthread_mutex_unlock(&r->state);
	tp_redis_register(r);
	return r;
}

void tp_redis_free(struct tp_redis *r)
{
	if (r == NULL)
		return;
	tp_redis_conn_fini(r);
	drop_secrets(r);
	pthread_mutex_destroy(&r->state);
	pthread_mutex_destroy(&r->front_lock);
	free(r->front);
	free(r);
}

const char *tp_redis_describe(const struct tp_redis *r)
{
	return r->desc;
}

/* --- the front of verified entries (6 above) --- */

static struct front_slot *front_slot(struct tp_redis *r,
                                     const unsigned char key[32])
{
	return &r->front[(key[0] | (unsigned)key[1] << 8) % TP_REDIS_FRONT];
}

/* 1 with the record when the front has key, fresh; else 0. */
static int front_get(struct tp_redis *r, const unsigned char key[32],
                     unsigned char *rec, size_t *len, size_t max)
{
	struct front_slot *f;
	int found = 0;

	if (r->front == NULL)
		return 0;
	f = front_slot(r, key);
	pthread_mutex_lock(&r->front_lock);
	if (f->until > tp_redis_mono_ms() && f->len <= max &&
	    memcmp(f->key, key, 32) == 0) {
		memcpy(rec, f->rec, f->len);
		*len = f->len;
		found = 1;
	}
	pthread_mutex_unlock(&r->front_lock);
	return found;
}

static void front_put(struct tp_redis *r, const unsigned char key[32],
                      const unsigned char *rec, size_t len)
{
	struct front_slot *f;

	if (r->front == NULL || len > TP_REDIS_FRONT_RECMAX)
		return;
	f = front_slot(r, key);
	pthread_mutex_lock(&r->front_lock);
	memcpy(f->key, key, 32);
	memcpy(f->rec, rec, len);
	f->len = len;
	f->until = tp_redis_mono_ms() + r->conf.local_ttl_ms;
	pthread_mutex_unlock(&r->front_lock);
}

/* Forget key (a miss or a bad entry in Redis), or everything (NULL). */
static void front_drop(struct tp_redis *r, const unsigned char *key)
{
	if (r->front == NULL)
		return;
	pthread_mutex_lock(&r->front_lock);
	if (key == NULL) {
		for (int i = 0; i < TP_REDIS_FRONT; i++)
			r->front[i].until = 0;
	} else if (memcmp(front_slot(r, key)->key, key, 32) == 0) {
		front_slot(r, key)->until = 0;
	}
	pthread_mutex_unlock(&r->front_lock);
}

/* --- entries: signed values, GET and SET --- */

static void key_name(const struct tp_redis *r, const unsigned char key[32],
                     char *out, size_t outlen)
{
	size_t n = (size_t)snprintf(out, outlen, "%s", r->conf.prefix);

	for (int i = 0; i < 32 && n + 2 < outlen; i++, n += 2)
		sprintf(out + n, "%02x", key[i]);
}

static int unhex(const char *s, unsigned char out[32])
{
	for (int i = 0; i < 32; i++) {
		unsigned v = 0;

		for (int j = 0; j < 2; j++) {
			char c = s[2 * i + j];

			v <<= 4;
			if (c >= '0' && c <= '9')
				v |= (unsigned)(c - '0');
			else if (c >= 'a' && c <= 'f')
				v |= (unsigned)(c - 'a' + 10);
			else
				return -1;
		}
		out[i] = (unsigned char)v;
	}
	return s[64] == '\0' ? 0 : -1;
}

/* HMAC-SHA256(site key, "tlspool cache v1" || key || rec). */
static int tag_of(const struct tp_redis *r, const unsigned char key[32],
                  const unsigned char *rec, size_t len, unsigned char out[32])
{
	unsigned char buf[16 + 32 + TP_REDIS_RECMAX];

	if (len > sizeof(buf) - 48)
		return -1;
	memcpy(buf, "tlspool cache v1", 16);
	memcpy(buf + 16, key, 32);
	memcpy(buf + 48, rec, len);
	return gnutls_hmac_fast(GNUTLS_MAC_SHA256, r->key, r->keylen, buf,
	                        48 + len, out) == 0
	               ? 0
	               : -1;
}

/* Is v a value the site key signed for key?  NULL, or what is wrong. */
static const char *unwrap(const struct tp_redis *r, const unsigned char key[32],
                          const unsigned char *v, size_t n)
{
	unsigned char mac[32], diff = 0;

	if (n < TP_REDIS_HDR || memcmp(v, TP_REDIS_MAGIC, 4) != 0)
		return "not a signed tlspool entry";
	if (memcmp(v + 4, r->keyid, 8) != 0)
		return "signed with another site key";
	if (tag_of(r, key, v + TP_REDIS_HDR, n - TP_REDIS_HDR, mac) != 0)
		return "oversized";
	for (int i = 0; i < 32; i++) /* in constant time */
		diff |= (unsigned char)(mac[i] ^ v[12 + i]);
	return diff ? "bad signature (altered, or not for this key)" : NULL;
}

int tp_redis_get(struct tp_redis *r, const unsigned char key[32],
                 unsigned char *rec, size_t *len, size_t max, char *note,
                 size_t notelen)
{
	char name[sizeof(r->conf.prefix) + 65];
	const char *argv[2] = {"GET", name};
	size_t lens[2];
	redisReply *rep;
	const char *bad;
	int rv = -1;

	if (front_get(r, key, rec, len, max))
		return 1;
	key_name(r, key, name, sizeof(name));
	lens[0] = 3;
	lens[1] = strlen(name);
	if (tp_redis_run(r, 2, argv, lens, r->conf.timeout_ms, &rep, note,
	                 notelen) != 0)
		return -1;
	if (rep->type == REDIS_REPLY_NIL) {
		front_drop(r, key);
		rv = 0;
	} else if (rep->type == REDIS_REPLY_ERROR) {
		snprintf(note, notelen, "cache %s: GET: %.200s", r->desc,
		         rep->str);
	} else if (rep->type != REDIS_REPLY_STRING) {
		snprintf(note, notelen, "cache %s: %s: not a tlspool entry",
		         r->desc, name);
	} else if ((bad = unwrap(r, key, (const unsigned char *)rep->str,
	                         rep->len)) != NULL) {
		snprintf(note, notelen, "cache %s: %s: %s", r->desc, name, bad);
	} else if (rep->len - TP_REDIS_HDR > max) {
		snprintf(note, notelen, "cache %s: %s: oversized", r->desc,
		         name);
	} else {
		*len = rep->len - TP_REDIS_HDR;
		memcpy(rec, rep->str + TP_REDIS_HDR, *len);
		front_put(r, key, rec, *len);
		rv = 1;
	}
	if (rv < 0)
		front_drop(r, key);
	freeReplyObject(rep);
	return rv;
}

int tp_redis_put(struct tp_redis *r, const unsigned char key[32],
                 const unsigned char *rec, size_t len, time_t expiry,
                 char *note, size_t notelen)
{
	char name[sizeof(r->conf.prefix) + 65], exat[24];
	unsigned char val[TP_REDIS_HDR + TP_REDIS_RECMAX];
	const char *argv[5] = {"SET", name, (const char *)val, "EXAT", exat};
	size_t lens[5];
	redisReply *rep;
	int rv = 0;

	if (len > sizeof(val) - TP_REDIS_HDR) {
		snprintf(note, notelen, "cache %s: oversized entry", r->desc);
		return -1;
	}
	/* the key files are read by op_begin(); without them, nothing is
	 * signed */
	pthread_mutex_lock(&r->state);
	if (!r->ready) {
		snprintf(note, notelen, "cache %s: %s", r->desc, r->setup_why);
		pthread_mutex_unlock(&r->state);
		return -1;
	}
	pthread_mutex_unlock(&r->state);
	memcpy(val, TP_REDIS_MAGIC, 4);
	memcpy(val + 4, r->keyid, 8);
	memcpy(val + TP_REDIS_HDR, rec, len);
	if (tag_of(r, key, rec, len, val + 12) != 0) {
		snprintf(note, notelen, "cache %s: HMAC-SHA256 failed",
		         r->desc);
		return -1;
	}
	key_name(r, key, name, sizeof(name));
	snprintf(exat, sizeof(exat), "%lld", (long long)expiry);
	lens[0] = 3;
	lens[1] = strlen(name);
	lens[2] = TP_REDIS_HDR + len;
	lens[3] = 4;
	lens[4] = strlen(exat);
	if (tp_redis_run(r, 5, argv, lens, r->conf.timeout_ms, &rep, note,
	                 notelen) != 0)
		return -1;
	if (rep->type == REDIS_REPLY_ERROR) {
		snprintf(note, notelen, "cache %s: SET: %.200s", r->desc,
		         rep->str);
		rv = -1;
	} else {
		front_put(r, key, rec, len);
	}
	freeReplyObject(rep);
	return rv;
}

/* --- administration: SCAN under the prefix --- */

static unsigned admin_budget(const struct tp_redis *r)
{
	return r->conf.timeout_ms > TP_REDIS_ADMIN_MS ? r->conf.timeout_ms
	                                              : TP_REDIS_ADMIN_MS;
}

/* One SCAN step: the next cursor into cursor, the keys in *keys (an
 * array reply, owned by the caller).  0 or -1 with err. */
static int scan_step(struct tp_redis *r, char *cursor, size_t curlen,
                     redisReply **keys, char *err, size_t errlen)
{
	const char *argv[6] = {"SCAN",     cursor,  "MATCH",
	                       r->pattern, "COUNT", TP_REDIS_SCAN_COUNT};
	size_t lens[6];
	redisReply *rep;

	for (int i = 0; i < 6; i++)
		lens[i] = strlen(argv[i]);
	if (tp_redis_run(r, 6, argv, lens, admin_budget(r), &rep, err,
	                 errlen) != 0)
		return -1;
	if (rep->type == REDIS_REPLY_ERROR) {
		snprintf(err, errlen, "cache %s: SCAN: %.200s", r->desc,
		         rep->str);
		freeReplyObject(rep);
		return -1;
	}
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
	    rep->element[0]->type != REDIS_REPLY_STRING ||
	    rep->element[1]->type != REDIS_REPLY_ARRAY ||
	    rep->element[0]->len >= curlen) {
		snprintf(err, errlen, "cache %s: SCAN: unexpected reply",
		         r->desc);
		freeReplyObject(rep);
		return -1;
	}
	memcpy(cursor, rep->element[0]->str, rep->element[0]->len);
	cursor[rep->element[0]->len] = '\0';
	*keys = rep->element[1];
	rep->element[1] = NULL;
	freeReplyObject(rep);
	return 0;
}

/* cmd (MGET or UNLINK) over the keys of one SCAN step. */
static int over_keys(struct tp_redis *r, const char *cmd,
                     const redisReply *keys, redisReply **out, char *err,
                     size_t errlen)
{
	const char **argv = calloc(keys->elements + 1, sizeof(*argv));
	size_t *lens = calloc(keys->elements + 1, sizeof(*lens));
	int rc = -1;

	if (argv == NULL || lens == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	argv[0] = cmd;
	lens[0] = strlen(cmd);
	for (size_t i = 0; i < keys->elements; i++) {
		if (keys->element[i]->type != REDIS_REPLY_STRING) {
			snprintf(err, errlen, "cache %s: SCAN: not a key",
			         r->desc);
			goto out;
		}
		argv[i + 1] = keys->element[i]->str;
		lens[i + 1] = keys->element[i]->len;
	}
	rc = tp_redis_run(r, (int)keys->elements + 1, argv, lens,
	                  admin_budget(r), out, err, errlen);
	if (rc == 0 && (*out)->type == REDIS_REPLY_ERROR) {
		snprintf(err, errlen, "cache %s: %s: %.200s", r->desc, cmd,
		         (*out)->str);
		freeReplyObject(*out);
		rc = -1;
	}
out:
	free(argv);
	free(lens);
	return rc;
}

int tp_redis_walk(struct tp_redis *r, tp_redis_visit *visit, void *arg,
                  char *err, size_t errlen)
{
	size_t plen = strlen(r->conf.prefix);
	char cursor[32] = "0";
	int stop = 0;

	do {
		redisReply *keys = NULL, *vals = NULL;

		if (scan_step(r, cursor, sizeof(cursor), &keys, err, errlen) !=
		    0)
			goto fail;
		if (keys->elements > 0 &&
		    over_keys(r, "MGET", keys, &vals, err, errlen) != 0) {
			freeReplyObject(keys);
			goto fail;
		}
		for (size_t i = 0; !stop && vals != NULL && i < keys->elements;
		     i++) {
			const redisReply *k = keys->element[i], *v;
			unsigned char key[32];
			const char *bad;

			if (i >= vals->elements || k->len != plen + 64 ||
			    unhex(k->str + plen, key) != 0)
				continue;
			v = vals->element[i];
			if (v->type == REDIS_REPLY_NIL)
				continue; /* expired since the SCAN */
			bad = v->type != REDIS_REPLY_STRING
			              ? "not a tlspool entry"
			              : unwrap(r, key,
			                       (const unsigned char *)v->str,
			                       v->len);
			stop = bad != NULL
			               ? visit(key, NULL, 0, bad, arg)
			               : visit(key,
			                       (const unsigned char *)v->str +
			                               TP_REDIS_HDR,
			                       v->len - TP_REDIS_HDR, NULL,
			                       arg);
		}
		freeReplyObject(keys);
		if (vals != NULL)
			freeReplyObject(vals);
	} while (!stop && strcmp(cursor, "0") != 0);
	return 0;
fail:
	errno = EIO;
	return -1;
}

int tp_redis_flush(struct tp_redis *r, char *err, size_t errlen)
{
	char cursor[32] = "0";

	front_drop(r, NULL);
	do {
		redisReply *keys = NULL, *n = NULL;

		if (scan_step(r, cursor, sizeof(cursor), &keys, err, errlen) !=
		    0)
			goto fail;
		if (keys->elements > 0 &&
		    over_keys(r, "UNLINK", keys, &n, err, errlen) != 0) {
			freeReplyObject(keys);
			goto fail;
		}
		freeReplyObject(keys);
		if (n != NULL)
			freeReplyObject(n);
	} while (strcmp(cursor, "0") != 0);
	return 0;
fail:
	errno = EIO;
	return -1;
}
