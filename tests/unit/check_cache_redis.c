/*
 * The redis backend of the validation cache (src/lib/cache_redis.c)
 * against real redis-server processes that each test starts (a unix
 * socket in a temporary directory, or a loopback port below 32768) and
 * that die with it: the [cache] keys; entries that are not signed by the
 * site key (altered, another key, moved to another key, not ours) never
 * answer; the site key file is checked like a private key; Redis down,
 * stopped (SIGSTOP), killed and restarted, full, refusing (ACL) gives a
 * miss within redis_timeout_ms and a note, and a Redis that comes back is
 * used again; expiry on the Redis key; SCAN under the prefix; TLS; threads
 * and fork().  The test's own view of Redis goes through hiredis.
 */
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "cache_redis.h"
#include "config.h"
#include "testutil.h"

static char dir[] = "/tmp/tlspool-credis-XXXXXX";
static unsigned seq;

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void write_file(const char *path, int mode, const char *fmt, ...)
{
	va_list ap;
	FILE *f;

	unlink(path);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fclose(f);
	ck_assert_int_eq(chmod(path, (mode_t)mode), 0);
}

/* --- a redis-server of our own ------------------------------------------- */

struct rs {
	pid_t pid;
	char sock[160], conf[160];
	int port; /* 0: unix socket only */
	int tls;  /* the port speaks TLS only */
	char extra[2048];
};

static void rs_stop(struct rs *s)
{
	int st;

	if (s->pid > 0) {
		kill(s->pid, SIGCONT);
		kill(s->pid, SIGKILL);
		waitpid(s->pid, &st, 0);
	}
	s->pid = 0;
}

static redisContext *rs_raw(const struct rs *s)
{
	redisContext *c = redisConnectUnix(s->sock);

	ck_assert_msg(c != NULL && c->err == 0, "redis %s: %s", s->sock,
	              c ? c->errstr : "no memory");
	return c;
}

/* Start (again, with the same socket and port) the server of s. */
static int rs_spawn(struct rs *s)
{
	long long until = mono_ms() + 5000;

	write_file(s->conf, 0600,
	           "port %d\ntls-port %d\nbind 127.0.0.1\nunixsocket %s\n"
	           "unixsocketperm 700\nsave \"\"\nappendonly no\n"
	           "daemonize no\ndir %s\nlogfile %s.log\n%s",
	           s->tls ? 0 : s->port, s->tls ? s->port : 0, s->sock, dir,
	           s->conf, s->extra);
	s->pid = fork();
	ck_assert_int_ge(s->pid, 0);
	if (s->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execlp("redis-server", "redis-server", s->conf, (char *)NULL);
		_exit(127);
	}
	while (mono_ms() < until) {
		redisContext *c = redisConnectUnix(s->sock);
		int st;

		if (c != NULL && c->err == 0) {
			redisReply *r = redisCommand(c, "PING");
			int ok = r != NULL && r->type == REDIS_REPLY_STATUS;

			freeReplyObject(r);
			redisFree(c);
			if (ok)
				return 0;
		} else if (c != NULL) {
			redisFree(c);
		}
		if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
			s->pid = 0;
			return -1; /* the port was taken: another one */
		}
		usleep(10000);
	}
	rs_stop(s);
	return -1;
}

/* A new server: unix socket, and a loopback port when tcp (2: TLS). */
static void rs_start(struct rs *s, int tcp, const char *extra)
{
	unsigned n = seq++;

	memset(s, 0, sizeof(*s));
	s->tls = tcp == 2;
	snprintf(s->sock, sizeof(s->sock), "%s/r%d-%u.sock", dir, (int)getpid(),
	         n);
	snprintf(s->conf, sizeof(s->conf), "%s/r%d-%u.conf", dir, (int)getpid(),
	         n);
	snprintf(s->extra, sizeof(s->extra), "%s", extra ? extra : "");
	for (int i = 0; i < 20; i++) {
		/* below the ephemeral range (32768-60999) */
		s->port = tcp ? 20000 + (int)((getpid() * 7919u + n * 131u +
		                               (unsigned)i * 977u) %
		                              12000)
		              : 0;
		if (rs_spawn(s) == 0)
			return;
	}
	ck_abort_msg("redis-server does not start (see %s.log)", s->conf);
}

/* A raw command on the test's own connection; the reply (freed by the
 * caller). */
static redisReply *raw(const struct rs *s, const char *fmt, ...)
{
	redisContext *c = rs_raw(s);
	redisReply *r;
	va_list ap;

	va_start(ap, fmt);
	r = redisvCommand(c, fmt, ap);
	va_end(ap);
	ck_assert_ptr_nonnull(r);
	redisFree(c);
	return r;
}

static long long raw_int(const struct rs *s, const char *fmt, const char *arg)
{
	redisReply *r = raw(s, fmt, arg);
	long long v;

	ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
	v = r->integer;
	freeReplyObject(r);
	return v;
}

static void raw_ok(const struct rs *s, const char *fmt, ...)
{
	redisContext *c = rs_raw(s);
	redisReply *r;
	va_list ap;

	va_start(ap, fmt);
	r = redisvCommand(c, fmt, ap);
	va_end(ap);
	ck_assert_msg(r != NULL && r->type != REDIS_REPLY_ERROR, "%s: %s", fmt,
	              r ? r->str : c->errstr);
	freeReplyObject(r);
	redisFree(c);
}

/* --- caches ------------------------------------------------------------- */

static const char *key_file(int which, int mode)
{
	static char p[4][160];

	snprintf(p[which], sizeof(p[which]), "%s/site%d-%d.key", dir, which,
	         (int)getpid());
	if (which == 3)
		write_file(p[which], mode, "tooshort\n");
	else
		write_file(p[which], mode, "%064d%d\n", which, which);
	return p[which];
}

/* [cache] redis_local_ttl_ms of mk()'s caches: 0 (no front) unless a
 * test says otherwise, so that the tests see Redis itself on every call
 * (the default of the configuration, 1000, is checked by config_accepts
 * and used by cache_redis.sh) */
static unsigned front_ms;

static tp_cache *mk(const struct rs *s, const char *key, const char *prefix,
                    unsigned timeout_ms)
{
	struct tp_redis_conf rc;
	tp_cache *c;

	memset(&rc, 0, sizeof(rc));
	if (s->port != 0 && !s->tls)
		snprintf(rc.addr, sizeof(rc.addr), "127.0.0.1:%d", s->port);
	else
		snprintf(rc.addr, sizeof(rc.addr), "unix:%s", s->sock);
	snprintf(rc.key_file, sizeof(rc.key_file), "%s", key);
	snprintf(rc.prefix, sizeof(rc.prefix), "%s", prefix);
	rc.timeout_ms = timeout_ms;
	rc.local_ttl_ms = front_ms;
	c = tp_cache_new_redis(&rc, 3600);
	ck_assert_ptr_nonnull(c);
	return c;
}

static struct tp_cache_key key_for(const char *id, int spki)
{
	struct tp_cache_key k;

	memset(&k, 0, sizeof(k));
	k.kind = TP_CACHE_AUTHN;
	k.a = id;
	k.b = "_443._tcp.www.example.test.";
	k.type = 52;
	memset(k.digest, spki, sizeof(k.digest));
	return k;
}

/* The Redis key of k under prefix, as cache.c and cache_redis.c name it:
 * found by listing (the one entry under prefix). */
static int first_key(const tlspool_cache_entry *e, void *arg)
{
	snprintf(arg, 65, "%s", e->key);
	return 1;
}

/* Change one octet of the value at name (to another value: writing a
 * fixed one would change nothing when the octet already is that). */
static void flip_at(const struct rs *s, const char *name, int off)
{
	redisReply *r = raw(s, "GETRANGE %s %d %d", name, off, off);
	char b;

	ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
	ck_assert_uint_eq(r->len, 1);
	b = (char)(r->str[0] ^ 0x5a);
	freeReplyObject(r);
	raw_ok(s, "SETRANGE %s %d %b", name, off, &b, (size_t)1);
}

static void name_of(tp_cache *c, const char *prefix, char *out, size_t len)
{
	char hex[65] = "", err[256];

	ck_assert_int_eq(tp_cache_list(c, first_key, hex, err, sizeof(err)), 0);
	ck_assert_int_eq(strlen(hex), 64);
	snprintf(out, len, "%s%s", prefix, hex);
}

static void put_ok(tp_cache *c, const struct tp_cache_key *k, int verdict,
                   time_t expiry)
{
	char note[512] = "";

	ck_assert_msg(tp_cache_put(c, k, verdict, expiry, time(NULL), note,
	                           sizeof(note)) == 0,
	              "put: %s", note);
	ck_assert_str_eq(note, "");
}

static void get_is(tp_cache *c, const struct tp_cache_key *k, int want,
                   const char *note_has)
{
	char note[512] = "";
	int got = tp_cache_get(c, k, time(NULL), NULL, note, sizeof(note));

	ck_assert_msg(got == want, "get %d, want %d (%s)", got, want, note);
	if (note_has == NULL)
		ck_assert_msg(note[0] == '\0', "unexpected note: %s", note);
	else
		ck_assert_msg(strstr(note, note_has) != NULL,
		              "note \"%s\" lacks \"%s\"", note, note_has);
}

/* --- the [cache] keys ---------------------------------------------------- */

static const struct {
	const char *conf, *err;
} conf_rows[] = {
        {"backend = redis\nkey_file = k\n", "needs redis ="},
        {"backend = redis\nredis = 127.0.0.1:6379\n", "needs key_file"},
        {"backend = redis\nredis = localhost:6379\nkey_file = k\n",
         "bad value"},
        {"backend = redis\nredis = 127.0.0.1:0\nkey_file = k\n", "bad value"},
        {"backend = redis\nredis = 127.0.0.1:1\nkey_file = k\n"
         "redis_local_ttl_ms = 60001\n",
         "bad value"},
        {"backend = redis\nredis = 127.0.0.1:1\nkey_file = k\n"
         "redis_local_ttl_ms = -1\n",
         "bad value"},
        {"backend = redis\nredis = 127.0.0.1\nkey_file = k\n", "bad value"},
        {"backend = redis\nredis = [::1:6379\nkey_file = k\n", "bad value"},
        {"backend = redis\nredis = unix:\nkey_file = k\n", "bad value"},
        {"backend = cloud\n", "bad value"},
        {"backend = lmdb\n", "needs path"},
        {"backend = memory\npath = c.mdb\n", "path is the file"},
        {"backend = redis\npath = c.mdb\nredis = 127.0.0.1:1\nkey_file = k\n",
         "path is the file"},
        {"backend = redis\nredis = 127.0.0.1:1\nkey_file = k\n"
         "redis_timeout_ms = 0\n",
         "bad value"},
        {"backend = redis\nredis = 127.0.0.1:1\nkey_file = k\n"
         "redis_tls = yes\n",
         "needs redis_tls_ca"},
        {"backend = redis\nredis = unix:/r.sock\nkey_file = k\n"
         "redis_tls = yes\nredis_tls_ca = ca.pem\n",
         "is for HOST:PORT"},
        {"backend = redis\nredis = 127.0.0.1:1\nkey_file = k\n"
         "redis_tls_key = k.pem\n",
         "go together"},
        {"prefix = two words\n", "bad value"},
        {"prefix =\n", "bad value"},
        {"redis_user = a b\n", "bad value"},
};

START_TEST(config_rejects)
{
	char path[200], err[512] = "";
	struct tp_config *cfg = (void *)1;

	snprintf(path, sizeof(path), "%s/bad%d.conf", dir, _i);
	write_file(path, 0644, "[cache]\n%s", conf_rows[_i].conf);
	ck_assert_int_eq(tp_config_load(path, 0, &cfg, err, sizeof(err)), -1);
	ck_assert_ptr_null(cfg);
	ck_assert_msg(strstr(err, conf_rows[_i].err) != NULL,
	              "\"%s\" lacks \"%s\"", err, conf_rows[_i].err);
}
END_TEST

START_TEST(config_accepts)
{
	char path[200], err[512] = "";
	struct tp_config *cfg;

	snprintf(path, sizeof(path), "%s/none.conf", dir);
	write_file(path, 0644, "[cache]\nmax_ttl = 60\n");
	ck_assert_int_eq(tp_config_load(path, 0, &cfg, err, sizeof(err)), 0);
	ck_assert_int_eq(cfg->cache_backend, TP_CACHE_MEMORY);
	ck_assert_str_eq(cfg->redis.prefix, "tlspool:");
	ck_assert_uint_eq(cfg->redis.timeout_ms, 50);
	/* the front of verified entries is on by default, for 1 s */
	ck_assert_uint_eq(cfg->redis.local_ttl_ms, 1000);
	tp_config_free(cfg);
	write_file(path, 0644, "[cache]\npath = c.mdb\n");
	ck_assert_int_eq(tp_config_load(path, 0, &cfg, err, sizeof(err)), 0);
	ck_assert_int_eq(cfg->cache_backend, TP_CACHE_LMDB);
	tp_config_free(cfg);
	write_file(path, 0644,
	           "[cache]\nbackend = redis\nredis = unix:r.sock\n"
	           "key_file = site.key\nredis_user = tp\n"
	           "redis_password_file = pw\nprefix = site1:\n"
	           "redis_timeout_ms = 20\nredis_local_ttl_ms = 1500\n");
	ck_assert_msg(tp_config_load(path, 0, &cfg, err, sizeof(err)) == 0,
	              "%s", err);
	ck_assert_int_eq(cfg->cache_backend, TP_CACHE_REDIS);
	/* relative paths against the file's directory */
	ck_assert_str_eq(cfg->redis.addr + 5 + strlen(dir), "/r.sock");
	ck_assert_str_eq(cfg->redis.key_file + strlen(dir), "/site.key");
	ck_assert_str_eq(cfg->redis.user, "tp");
	ck_assert_str_eq(cfg->redis.prefix, "site1:");
	ck_assert_uint_eq(cfg->redis.timeout_ms, 20);
	ck_assert_uint_eq(cfg->redis.local_ttl_ms, 1500);
	tp_config_free(cfg);
	write_file(path, 0644,
	           "[cache]\nbackend = redis\nredis = [::1]:6380\n"
	           "key_file = /k\nredis_tls = yes\nredis_tls_ca = ca.pem\n");
	ck_assert_msg(tp_config_load(path, 0, &cfg, err, sizeof(err)) == 0,
	              "%s", err);
	ck_assert_int_eq(cfg->redis.tls, 1);
	tp_config_free(cfg);
}
END_TEST

/* --- the site key ------------------------------------------------------ */

/* 0 readable by others, 1 writable by group, 2 too short. */
START_TEST(site_key_checked_like_a_private_key)
{
	static const struct {
		int which, mode;
		const char *note;
	} rows[] = {
	        {0, 0644, "site0"},
	        {1, 0620, "site1"},
	        {3, 0600, "at least 32 octets"},
	};
	struct rs s;
	tp_cache *c;
	struct tp_cache_key k = key_for("www.example.test", 1);
	char note[512] = "";
	long long t0;

	rs_start(&s, 0, NULL);
	c = mk(&s, key_file(rows[_i].which, rows[_i].mode), "tlspool:", 50);
	t0 = mono_ms();
	get_is(c, &k, TP_CACHE_MISS, rows[_i].note);
	ck_assert_int_eq(tp_cache_put(c, &k, TP_CACHE_PASS, time(NULL) + 60,
	                              time(NULL), note, sizeof(note)),
	                 -1);
	ck_assert_msg(strstr(note, rows[_i].note) != NULL, "%s", note);
	ck_assert_int_lt(mono_ms() - t0, 1000);
	/* nothing was stored unsigned */
	ck_assert_int_eq(raw_int(&s, "DBSIZE%s", ""), 0);
	tp_cache_free(c);
	rs_stop(&s);
}
END_TEST

/* --- entries not signed by the site key ---------------------------------- */

START_TEST(altered_entry_never_answers)
{
	struct rs s;
	struct tp_cache_key k = key_for("www.example.test", 1);
	tp_cache *c;
	char name[128];
	redisReply *r;
	size_t off;

	rs_start(&s, 0, NULL);
	c = mk(&s, key_file(0, 0600), "tlspool:", 200);
	put_ok(c, &k, TP_CACHE_FAIL, time(NULL) + 600);
	get_is(c, &k, TP_CACHE_FAIL, NULL);
	name_of(c, "tlspool:", name, sizeof(name));
	/* the verdict byte of the record: fail -> pass, one byte changed */
	off = TP_REDIS_HDR + 7;
	r = raw(&s, "GETRANGE %s %d %d", name, (int)off, (int)off);
	ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
	ck_assert_int_eq(r->str[0], TP_CACHE_FAIL);
	freeReplyObject(r);
	raw_ok(&s, "SETRANGE %s %d %b", name, (int)off, "\x01", (size_t)1);
	get_is(c, &k, TP_CACHE_MISS, "bad signature");
	/* the tag itself */
	put_ok(c, &k, TP_CACHE_PASS, time(NULL) + 600);
	flip_at(&s, name, 20);
	get_is(c, &k, TP_CACHE_MISS, "bad signature");
	/* cut short, and not ours at all */
	raw_ok(&s, "SET %s TPR", name);
	get_is(c, &k, TP_CACHE_MISS, "not a signed tlspool entry");
	raw_ok(&s, "DEL %s", name);
	raw_ok(&s, "LPUSH %s x", name);
	get_is(c, &k, TP_CACHE_MISS, "WRONGTYPE");
	tp_cache_free(c);
	rs_stop(&s);
}
END_TEST

/* A Redis that answers with more than any entry can be is cut off. */
START_TEST(huge_reply_refused)
{
	struct rs s;
	struct tp_cache_key k = key_for("www.example.test", 1);
	tp_cache *c;
	char name[128];
	size_t big = 5u << 20;
	char *junk = malloc(big);

	ck_assert_ptr_nonnull(junk);
	memset(junk, 'x', big);
	rs_start(&s, 0, NULL);
	c = mk(&s, key_file(0, 0600), "tlspool:", 1000);
	put_ok(c, &k, TP_CACHE_PASS, time(NULL) + 600);
	name_of(c, "tlspool:", name, sizeof(name));
	raw_ok(&s, "SET %s %b", name, junk, big);
	free(junk);
	get_is(c, &k, TP_CACHE_MISS, "a reply of more than 4194304 octets");
	tp_cache_free(c);
	rs_stop(&s);
}
END_TEST

START_TEST(entry_moved_to_another_key_never_answers)
{
	struct rs s;
	struct tp_cache_key k1 = key_for("www.example.test", 1),
	                    k2 = key_for("www.example.test", 2);
	tp_cache *c;
	char n1[128], n2[128];
	redisReply *r;

	rs_start(&s, 0, NULL);
	c = mk(&s, key_file(0, 0600), "tlspool:", 200);
	put_ok(c, &k2, TP_CACHE_PASS, time(NULL) + 600);
	name_of(c, "tlspool:", n2, sizeof(n2));
	raw_ok(&s, "FLUSHALL");
	put_ok(c, &k1, TP_CACHE_PASS, time(NULL) + 600);
	name_of(c, "tlspool:", n1, sizeof(n1));
	/* a valid entry for k1 copied to k2's name: the tag covers the key */
	r = raw(&s, "COPY %s %s", n1, n2);
	freeReplyObject(r);
	get_is(c, &k1, TP_CACHE_PASS, NULL);
	get_is(c, &k2, TP_CACHE_MISS, "bad signature");
	tp_cache_free(c);
	rs_stop(&s);
}
END_TEST

START_TEST(another_site_key_never_answers)
{
	struct rs s;
	struct tp_cache_key k = key_for("www.example.test", 1);
	tp_cache *a, *b, *a2;
	rs_start(&s, 0, NULL);
	a = mk(&s, key_file(0, 0600), "tlspool:", 200);
	b = mk(&s, key_file(1, 0600), "tlspool:", 200);
	put_ok(a, &k, TP_CACHE_PASS, time(NULL) + 600);
	get_is(b, &k, TP_CACHE_MISS, "signed with another site key");
	/* a second cache with a's key (another host of the site) shares */
	a2 = mk(&s, key_file(0, 0600), "tlspool:", 200);
	get_is(a2, &k, TP_CACHE_PASS, NULL);
	/* b stores its own; a no longer trusts it */
	put_ok(b, &k, TP_CACHE_PASS, time(NULL) + 600);
	get_is(b, &k, TP_CACHE_PASS, NULL);
	get_is(a, &k, TP_CACHE_MISS, "signed with another site key");
	tp_cache_free(a);
	tp_cache_free(a2);
	tp_cache_free(b);
	rs_stop(&s);
}
END_TEST

/* --- Redis failing: a miss within the timeout, and back again ------------ */

START_TEST(redis_down_then_up)
{
	struct rs s;
	struct tp_cache_key k = key_for("www.example.test", 1);
	tp_cache *c;
	long long t0;

	rs_start(&s, 0, NULL);
	rs_stop(&s);
	unlink(s.sock);
	c = mk(&s, key_file(0, 0600), "tlspool:", 50);
	t0 = mono_ms();
	get_is(c, &k, TP_CACHE_MISS, "connect:");
	ck_assert_int_lt(mono_ms() - t0, 200);
	/* within the backoff: no attempt, said so */
	t0 = mono_ms();
	get_is(c, &k, TP_CACHE_MISS, "next attempt in");
	ck_assert_int_lt(mono_ms() - t0, 20);
	ck_assert_int_eq(rs_spawn(&s), 0);
	usleep(300 * 1000); /* past the first backoff (250 ms) */
	put_ok(c, &k, TP_CACHE_PASS, time(NULL) + 600);
	get_is(c, &k, TP_CACHE_PASS, NULL);
	tp_cache_free(c);
	rs_stop(&s);
}
END_TEST

START_TEST(redis_stopped_answers_within_timeout)
{
	struct rs s;
	struct tp_cache_key k = key_for("www.example.test", 1);
	tp_cache *c;
	char note[512] = "";
	long long t0, dt;

	rs_start(&s, 1, NULL);
	c = mk(&s, key_file(0, 0600), "tlspool:", 50);
	put_ok(c, &k, TP_CACHE_PASS, time(NULL) + 600);
	ck_assert_int_eq(kill(s.pid, SIGSTOP), 0);
	t0 = mono_ms();
	get_is(c, &k, TP_CACHE_MISS, "no answer within 50 ms");
	dt = mono_ms() - t0;
	ck_assert_msg(dt >= 45 && dt < 150, "%lld ms", dt);
	t0 = mono_ms();
	ck_assert_int_eq(tp_cache_put(c, &k, TP_CACHE_PASS, time(NULL) + 600,
	                              time(NULL), note, sizeof(note)),
	                 -1);
	ck_assert_int_lt(mono_ms() - t0, 20);
	ck_assert_msg(strstr(note, "unavailable") != NULL, "%s", note);
	/* a new connection to a stopped server: connect() succeeds (the
	 * kernel's backlog), the command does not */
	usleep(300 * 1000);
	t0 = mono_ms();
	get_is(c, &k, TP_CACHE_MISS, "no answer within 50 ms");
	ck_assert_int_lt(mono_ms() - t0, 150);
	ck_assert_int_eq(kill(s.pid, SIGCONT), 0);
	usleep(600 * 1000); /* past the second backoff (500 ms) */
	get_is(c, &k, TP_CACHE_PASS, NULL);
	tp_cache_free(c);
	rs_stop(&s);
}
END_TEST

START_TEST(redis_killed_and_restarted)
{
	struct rs s;
	struct tp_cache_key k = key_for("www.example.test", 1);
	tp_cache *c;
	long long t0;

	rs_start(&s, 1, NULL);
	c = mk(&s, key_file(0, 0600), "tlspool:", 50);
	put_ok(c, &k, TP_CACHE_PASS, time(NULL) + 600);
	get_is(c, &k, TP_CACHE_PASS, NULL);
	rs_stop(&s); /* SIGKILL: the kept connection is dead */
	t0 = mono_ms();
	get_is(c, &k, TP_CACHE_MISS, "cache redis 127.0.0.1:");
	ck_assert_int_lt(mono_ms() - t0, 150);
	ck_assert_int_eq(rs_spawn(&s), 0);
	usleep(300 * 1000);
	/* a new server (nothing persisted): used again */
	get_is(c, &k, TP_CACHE_MISS, NULL);
	put_ok(c, &k, TP_CACHE_PASS, time(NULL) + 600);
	get_is(c, &k, TP_CACHE_PASS, NULL);
	/* Redis closing an idle connection is not a failure: the kept
	 * connection is replaced at once */
	raw_ok(&s, "CLIENT KILL TYPE normal");
	get_is(c, &k, TP_CACHE_PASS, NULL);
	tp_cache_free(c);
	rs_stop(&s);
}
END_TEST

/* --- reconnecting in the background ------------------------------------ */

/*
 * A loopback listener on port (SO_REUSEADDR) that never accepts.  With
 * backlog 16 the kernel completes every handshake and nothing answers (a
 * Redis that accepts TCP and never replies); with backlog 0 and its one
 * place taken by *filler, further SYNs are dropped and connect() stays
 * under way (a Redis host that has gone).  The descriptor.
 */
static int listener(int port, int full, int *filler)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	ck_assert_int_ge(fd, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(fd, full ? 0 : 16), 0);
	*filler = -1;
	if (full) {
		struct pollfd p;
		int probe;

		*filler = socket(AF_INET, SOCK_STREAM, 0);
		ck_assert_int_eq(
		        connect(*filler, (struct sockaddr *)&sa, sizeof(sa)),
		        0);
		/* the queue is full: a connect() now stays under way */
		probe = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		ck_assert_int_eq(
		        connect(probe, (struct sockaddr *)&sa, sizeof(sa)), -1);
		ck_assert_int_eq(errno, EINPROGRESS);
		p.fd = probe;
		p.events = POLLOUT;
		ck_assert_int_eq(poll(&p, 1, 300), 0);
		close(probe);
	}
	return fd;
}

/* The longest of the calls (get) made during ms, in ms; every note seen
 * is in notes (one per call, each call has one: a miss). */
static long long calls_during(tp_cache *c, const struct tp_cache_key *k,
                              long long ms, char *notes, size_t len)
{
	long long until = mono_ms() + ms, worst = 0;
	size_t n = 0;

	notes[0] = '\0';
	while (mono_ms() < until) {
		char note[512] = "";
		long long t0 = mono_ms(), dt;
		int got = tp_cache_get(c, k, time(NULL), NULL, note,
		                       sizeof(note));

		dt = mono_ms() - t0;
		ck_assert_msg(got == TP_CACHE_MISS, "got %d (%s)", got, note);
		ck_assert_msg(note[0] != '\0' && strchr(note, '\n') == NULL,
		              "one note per call: \"%s\"", note);
		if (dt > worst)
			worst = dt;
		if (n + strlen(note) + 2 < len)
			n += (size_t)snprintf(notes + n, len - n, "%s|", note);
		usleep(20 * 1000);
	}
	return worst;
}

/*
 * Redis's host gone (SYNs unanswered) after it was used: no call waits
 * for connect(), though redis_timeout_ms is long; connect() goes on in
 * the background and is given up after max(redis_timeout_ms, 1 s) (then
 * the backoff, then again); a Redis back at the address is used again
 * after a few calls.  A new process (a fresh cache) waits for its first
 * connect() within the timeout, and after that failure no more.
 */
START_TEST(redis_host_gone_reconnects_in_the_background)
{
	struct rs s;
	struct tp_cache_key k = key_for("www.example.test", 1);
	tp_cache *c, *c2;
	char notes[16384];
	long long worst, t0, dt;
	int lfd, filler, back = 0;

	rs_start(&s, 1, NULL);
	c = mk(&s, key_file(0, 0600), "tlspool:", 1500);
	put_ok(c, &k, TP_CACHE_PASS, time(NULL) + 600);
	get_is(c, &k, TP_CACHE_PASS, NULL);
	rs_stop(&s);
	lfd = listener(s.port, 1, &filler);
	worst = calls_during(c, &k, 2500, notes, sizeof(notes));
	ck_assert_msg(worst < 500, "a call took %lld ms (timeout 1500): %s",
	              worst, notes);
	ck_assert_msg(strstr(notes, "connecting in the background") != NULL,
	              "%s", notes);
	ck_assert_msg(strstr(notes, "connect: no answer within 1500 ms") !=
	                      NULL,
	              "%s", notes);
	ck_assert_msg(strstr(notes, "next attempt in") != NULL, "%s", notes);

	/* a fresh cache: its first connect() waits, within the timeout */
	c2 = mk(&s, key_file(0, 0600), "tlspool:", 300);
	t0 = mono_ms();
	get_is(c2, &k, TP_CACHE_MISS, "connect: no answer within 300 ms");
	dt = mono_ms() - t0;
	ck_assert_msg(dt >= 280 && dt < 900, "%lld ms", dt);
	usleep(300 * 1000); /* past the backoff */
	t0 = mono_ms();
	get_is(c2, &k, TP_CACHE_MISS, "connecting in the background");
	ck_assert_int_lt(mono_ms() - t0, 150);
	tp_cache_free(c2);

	/* Redis back at the address: used again after a few calls */
	close(filler);
	close(lfd);
	ck_assert_int_eq(rs_spawn(&s), 0);
	t0 = mono_ms();
	while (!back && mono_ms() - t0 < 8000) {
		char note[512] = "";

		if (tp_cache_put(c, &k, TP_CACHE_PASS, time(NULL) + 600,
		                 time(NULL), note, sizeof(note)) == 0 &&
		    tp_cache_get(c, &k, time(NULL), NULL, note, sizeof(note)) ==
		            TP_CACHE_PASS)
			back = 1;
		else
			usleep(50 * 1000);
	}
	ck_assert_msg(back, "Redis not used again within 8 s");
	ck_assert_int_eq(raw_int(&s, "DBSIZE%s", ""), 1);
	get_is(c, &k, TP_CACHE_PASS, NULL);
	tp_cache_free(c);
	rs_stop(&s);
}
END_TEST

/* A Redis that accepts TCP and never answers: every call ends within
 * redis_timeout_ms (and most do not wait at all: the backoff). */
START_TEST(redis_never_answering_bounded_by_timeout)
{
	struct rs s;
	struct tp_cache_key k = key_for("www.example.test", 1);
	tp_cache *c;
	char notes[16384];
	long long worst;
	int lfd, filler;

	rs_start(&s, 1, NULL);
	c = mk(&s, key_file(0, 0600), "tlspool:", 200);
	put_ok(c, &k, TP_CACHE_PASS, time(NULL) + 600);
	rs_stop(&s);
	lfd = listener(s.port, 0, &filler);
	worst = calls_during(c, &k, 2000, notes, sizeof(notes));
	ck_assert_msg(worst < 450, "a call took %lld ms (timeout 200): %s",
	              worst, notes);
	ck_assert_msg(strstr(notes, "no answer within 200 ms") != NULL, "%s",
	              notes);
	ck_assert_msg(strstr(notes, "next attempt in") != NULL, "%s", notes);
	close(lfd);
	tp_cache_free(c);
}
END_TEST

START_TEST(redis_full_and_refusing)
{
	struct rs s;
	struct tp_cache_key k = key_for("www.example.test", 1),
	                    k2 = key_for("www.example.test", 2);
	tp_cache *c;
	char note[512] = "";

	rs_start(&s, 0, NULL);
	c = mk(&s, key_file(0, 0600), "tlspool:", 100);
	put_ok(c, &k, TP_CACHE_PASS, time(NULL) + 600);
	raw_ok(&s, "CONFIG SET maxmemory-policy noeviction");
	raw_ok(&s, "CONFIG SET maxmemory 1");
	ck_assert_int_eq(tp_cache_put(c, &k2, TP_CACHE_PASS, time(NULL) + 600,
	                              time(NULL), note, sizeof(note)),
	                 -1);
	ck_assert_msg(strstr(note, "OOM") != NULL, "%s", note);
	/* an error reply is not an outage: reads go on */
	get_is(c, &k, TP_CACHE_PASS, NULL);
	raw_ok(&s, "CONFIG SET maxmemory 0");
	put_ok(c, &k2, TP_CACHE_PASS, time(NULL) + 600);
	tp_cache_free(c);
	rs_stop(&s);
}
END_TEST

/* --- an ACL user with a password ---------------------------------------- */

static tp_cache *mk_user(const struct rs *s, const char *user, const char *pw,
                         const char *prefix)
{
	struct tp_redis_conf rc;
	char pwfile[200];
	tp_cache *c;

	memset(&rc, 0, sizeof(rc));
	snprintf(rc.addr, sizeof(rc.addr), "unix:%s", s->sock);
	snprintf(rc.key_file, sizeof(rc.key_file), "%s", key_file(0, 0600));
	snprintf(rc.prefix, sizeof(rc.prefix), "%s", prefix);
	snprintf(rc.user, sizeof(rc.user), "%s", user);
	snprintf(pwfile, sizeof(pwfile), "%s/pw%d-%u", dir, (int)getpid(),
	         seq++);
	write_file(pwfile, 0600, "%s\n", pw);
	snprintf(rc.password_file, sizeof(rc.password_file), "%s", pwfile);
	rc.timeout_ms = 200;
	c = tp_cache_new_redis(&rc, 3600);
	ck_assert_ptr_nonnull(c);
	return c;
}

START_TEST(acl_user_with_password)
{
	struct rs s;
	struct tp_cache_key k = key_for("www.example.test", 1);
	tp_cache *c;

	rs_start(&s, 0,
	         "user default on nopass ~* &* +@all\n"
	         "user tp on >s3cret-pw ~tlspool:* +get +set +mget +scan "
	         "+unlink +ping\n");
	c = mk_user(&s, "tp", "wrong", "tlspool:");
	get_is(c, &k, TP_CACHE_MISS, "AUTH as tp: WRONGPASS");
	tp_cache_free(c);
	c = mk_user(&s, "tp", "s3cret-pw", "other:");
	get_is(c, &k, TP_CACHE_MISS, "NOPERM");
	tp_cache_free(c);
	c = mk_user(&s, "tp", "s3cret-pw", "tlspool:");
	put_ok(c, &k, TP_CACHE_PASS, time(NULL) + 600);
	get_is(c, &k, TP_CACHE_PASS, NULL);
	tp_cache_free(c);
	rs_stop(&s);
}
END_TEST

/* --- expiry ------------------------------------------------------------ */

START_TEST(expiry_is_the_redis_keys_too)
{
	struct rs s;
	struct tp_cache_key k = key_for("www.example.test", 1);
	tp_cache *c;
	char name[128];
	long long ttl;

	rs_start(&s, 1, NULL);
	c = mk(&s, key_file(0, 0600), "tlspool:", 200);
	put_ok(c, &k, TP_CACHE_PASS, time(NULL) + 600);
	name_of(c, "tlspool:", name, sizeof(name));
	ttl = raw_int(&s, "TTL %s", name);
	ck_assert_msg(ttl > 590 && ttl <= 600, "TTL %lld", ttl);
	/* max_ttl (3600) caps what is stored */
	put_ok(c, &k, TP_CACHE_PASS, time(NULL) + 86400);
	ttl = raw_int(&s, "TTL %s", name);
	ck_assert_msg(ttl > 3590 && ttl <= 3600, "TTL %lld", ttl);
	/* Redis drops it when it expires */
	put_ok(c, &k, TP_CACHE_PASS, time(NULL) + 1);
	usleep(2100 * 1000);
	ck_assert_int_eq(raw_int(&s, "EXISTS %s", name), 0);
	get_is(c, &k, TP_CACHE_MISS, NULL);
	tp_cache_free(c);
	rs_stop(&s);
}
END_TEST

/* --- sharing, listing, flushing ----------------------------------------- */

struct count {
	int good, bad;
	char problem[128];
};

static int counter(const tlspool_cache_entry *e, void *arg)
{
	struct count *n = arg;

	if (e->valid)
		n->good++;
	else {
		n->bad++;
		snprintf(n->problem, sizeof(n->problem), "%s", e->problem);
	}
	return 0;
}

START_TEST(prefixes_list_and_flush)
{
	struct rs s;
	tp_cache *a, *b;
	struct count n = {0, 0, ""};
	char err[512] = "", name[128];

	rs_start(&s, 0, NULL);
	a = mk(&s, key_file(0, 0600), "site*a:", 200); /* a glob character */
	b = mk(&s, key_file(0, 0600), "site1:", 200);
	ck_assert_int_eq(strncmp(tp_cache_describe(a), "redis unix:", 11), 0);
	ck_assert_ptr_nonnull(strstr(tp_cache_describe(a), ", prefix site*a:"));
	for (int i = 0; i < 600; i++) {
		struct tp_cache_key k = key_for("www.example.test", i % 256);
		char id[64];

		snprintf(id, sizeof(id), "h%d.example.test", i);
		k.a = id;
		put_ok(i % 2 ? a : b, &k, TP_CACHE_PASS, time(NULL) + 600);
	}
	raw_ok(&s, "SET site*a:notours x");
	raw_ok(&s, "SET unrelated y");
	ck_assert_int_eq(tp_cache_list(a, counter, &n, err, sizeof(err)), 0);
	ck_assert_int_eq(n.good, 300);
	ck_assert_int_eq(n.bad, 0);
	/* one altered entry is listed as unusable */
	name_of(a, "site*a:", name, sizeof(name));
	flip_at(&s, name, 60);
	memset(&n, 0, sizeof(n));
	ck_assert_int_eq(tp_cache_list(a, counter, &n, err, sizeof(err)), 0);
	ck_assert_int_eq(n.good, 299);
	ck_assert_int_eq(n.bad, 1);
	ck_assert_str_eq(n.problem,
	                 "bad signature (altered, or not for this key)");
	ck_assert_int_eq(tp_cache_flush(a, err, sizeof(err)), 0);
	memset(&n, 0, sizeof(n));
	ck_assert_int_eq(tp_cache_list(a, counter, &n, err, sizeof(err)), 0);
	ck_assert_int_eq(n.good + n.bad, 0);
	memset(&n, 0, sizeof(n));
	ck_assert_int_eq(tp_cache_list(b, counter, &n, err, sizeof(err)), 0);
	ck_assert_int_eq(n.good, 300);
	/* what is not ours stays */
	ck_assert_int_eq(raw_int(&s, "EXISTS %s", "site*a:notours"), 1);
	ck_assert_int_eq(raw_int(&s, "EXISTS %s", "unrelated"), 1);
	tp_cache_free(a);
	tp_cache_free(b);
	/* a server that is gone: an error, quickly */
	rs_stop(&s);
	a = mk(&s, key_file(0, 0600), "x:", 50);
	ck_assert_int_eq(tp_cache_list(a, counter, &n, err, sizeof(err)), -1);
	ck_assert_int_eq(errno, EIO);
	ck_assert_ptr_nonnull(strstr(err, "connect"));
	tp_cache_free(a);
}
END_TEST

/* --- TLS to Redis ------------------------------------------------------- */

static void sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	ck_assert_msg(system(cmd) == 0, "%s", cmd);
}

/* A CA, a server certificate for 127.0.0.1 and redis.example.test. */
static void make_pki(const char *d)
{
	sh("cd %s && certtool --generate-privkey --key-type ecdsa --outfile "
	   "ca.key 2>/dev/null && printf 'cn = test "
	   "CA\\nca\\ncert_signing_key\\n"
	   "expiration_days = 2\\n' >ca.tmpl && certtool "
	   "--generate-self-signed --load-privkey ca.key --template ca.tmpl "
	   "--outfile ca.pem 2>/dev/null && certtool --generate-privkey "
	   "--key-type ecdsa --outfile other.key 2>/dev/null && certtool "
	   "--generate-self-signed --load-privkey other.key --template ca.tmpl "
	   "--outfile other.pem 2>/dev/null && certtool --generate-privkey "
	   "--key-type ecdsa --outfile srv.key 2>/dev/null && printf 'cn = "
	   "redis\\nip_address = 127.0.0.1\\ndns_name = redis.example.test\\n"
	   "tls_www_server\\nexpiration_days = 2\\n' >srv.tmpl && certtool "
	   "--generate-certificate --load-privkey srv.key --load-ca-privkey "
	   "ca.key --load-ca-certificate ca.pem --template srv.tmpl --outfile "
	   "srv.pem 2>/dev/null && chmod 600 srv.key",
	   d);
}

static tp_cache *mk_tls(const struct rs *s, const char *d, const char *ca,
                        const char *name)
{
	struct tp_redis_conf rc;
	tp_cache *c;

	memset(&rc, 0, sizeof(rc));
	snprintf(rc.addr, sizeof(rc.addr), "127.0.0.1:%d", s->port);
	snprintf(rc.key_file, sizeof(rc.key_file), "%s", key_file(0, 0600));
	snprintf(rc.prefix, sizeof(rc.prefix), "tlspool:");
	rc.tls = 1;
	snprintf(rc.tls_ca, sizeof(rc.tls_ca), "%s/%s", d, ca);
	snprintf(rc.tls_name, sizeof(rc.tls_name), "%s", name);
	rc.timeout_ms = 1000;
	c = tp_cache_new_redis(&rc, 3600);
	ck_assert_ptr_nonnull(c);
	return c;
}

/* GET commands Redis has run since the last CONFIG RESETSTAT. */
static long long gets_since_reset(const struct rs *s)
{
	redisReply *r = raw(s, "INFO commandstats");
	const char *p;
	long long n = 0;

	ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
	p = strstr(r->str, "cmdstat_get:calls=");
	if (p != NULL)
		n = atoll(p + strlen("cmdstat_get:calls="));
	freeReplyObject(r);
	return n;
}

/* Without the front, a warm lookup is one GET and a change in Redis is
 * seen at once; with it ([cache] redis_local_ttl_ms), a verified entry
 * answers without Redis for that long and no longer, the record's own
 * expiry still applies, and a flush from this process empties it. */
START_TEST(local_front)
{
	struct rs s;
	struct tp_cache_key k = key_for("www.example.test", 1),
	                    k2 = key_for("short.example.test", 2);
	tp_cache *c;
	char name[128];

	rs_start(&s, 1, NULL);
	front_ms = 0;
	c = mk(&s, key_file(0, 0600), "tlspool:", 200);
	put_ok(c, &k, TP_CACHE_PASS, time(NULL) + 600);
	raw_ok(&s, "CONFIG RESETSTAT");
	for (int i = 0; i < 5; i++)
		get_is(c, &k, TP_CACHE_PASS, NULL);
	ck_assert_int_eq(gets_since_reset(&s), 5); /* one round trip each */
	name_of(c, "tlspool:", name, sizeof(name));
	raw_ok(&s, "DEL %s", name);
	get_is(c, &k, TP_CACHE_MISS, NULL); /* seen at once */
	tp_cache_free(c);

	front_ms = 400;
	c = mk(&s, key_file(0, 0600), "tlspool:", 200);
	ck_assert_ptr_nonnull(
	        strstr(tp_cache_describe(c), "local front 400 ms"));
	put_ok(c, &k, TP_CACHE_PASS, time(NULL) + 600);
	raw_ok(&s, "CONFIG RESETSTAT");
	get_is(c, &k, TP_CACHE_PASS, NULL);
	ck_assert_int_eq(gets_since_reset(&s), 0); /* its own write */
	/* another host flushes: this process still answers, for at most
	 * local_ttl_ms, then asks Redis again */
	raw_ok(&s, "DEL %s", name);
	get_is(c, &k, TP_CACHE_PASS, NULL);
	usleep(450 * 1000);
	get_is(c, &k, TP_CACHE_MISS, NULL);
	ck_assert_int_eq(gets_since_reset(&s), 1);
	/* an entry read from Redis joins the front; an altered one never
	 * does, and drops what the front held */
	put_ok(c, &k, TP_CACHE_FAIL, time(NULL) + 600);
	usleep(450 * 1000);
	raw_ok(&s, "SETRANGE %s %d %b", name, (int)(TP_REDIS_HDR + 7), "\x01",
	       (size_t)1);
	get_is(c, &k, TP_CACHE_MISS, "bad signature");
	get_is(c, &k, TP_CACHE_MISS, "bad signature");
	/* the record's own expiry applies to the front's copy */
	put_ok(c, &k2, TP_CACHE_PASS, time(NULL) + 1);
	tp_cache_free(c);
	front_ms = 5000;
	c = mk(&s, key_file(0, 0600), "tlspool:", 200);
	get_is(c, &k2, TP_CACHE_PASS, NULL); /* into the front */
	sleep(2);
	get_is(c, &k2, TP_CACHE_MISS, NULL);
	/* Redis down: the front still answers for what it verified */
	put_ok(c, &k, TP_CACHE_PASS, time(NULL) + 600);
	rs_stop(&s);
	get_is(c, &k, TP_CACHE_PASS, NULL);
	ck_assert_int_eq(rs_spawn(&s), 0);
	usleep(300 * 1000);
	/* a flush from this process empties its front at once */
	{
		char err[256];

		put_ok(c, &k, TP_CACHE_PASS, time(NULL) + 600);
		ck_assert_int_eq(tp_cache_flush(c, err, sizeof(err)), 0);
	}
	get_is(c, &k, TP_CACHE_MISS, NULL);
	tp_cache_free(c);
	front_ms = 0;
	rs_stop(&s);
}
END_TEST

START_TEST(tls_to_redis)
{
	struct rs s;
	struct tp_cache_key k = key_for("www.example.test", 1);
	char d[200], extra[1024];
	tp_cache *c;

	snprintf(d, sizeof(d), "%s/pki%d", dir, (int)getpid());
	mkdir(d, 0700);
	make_pki(d);
	snprintf(extra, sizeof(extra),
	         "tls-cert-file %s/srv.pem\n"
	         "tls-key-file %s/srv.key\ntls-ca-cert-file %s/ca.pem\n"
	         "tls-auth-clients no\n",
	         d, d, d);
	rs_start(&s, 2, extra);
	/* not the CA that signed it */
	c = mk_tls(&s, d, "other.pem", "");
	get_is(c, &k, TP_CACHE_MISS, "TLS: Redis's certificate for 127.0.0.1");
	tp_cache_free(c);
	/* not the name in it */
	c = mk_tls(&s, d, "ca.pem", "elsewhere.example.test");
	get_is(c, &k, TP_CACHE_MISS, "elsewhere.example.test");
	tp_cache_free(c);
	/* the address, and the name */
	c = mk_tls(&s, d, "ca.pem", "");
	put_ok(c, &k, TP_CACHE_PASS, time(NULL) + 600);
	get_is(c, &k, TP_CACHE_PASS, NULL);
	tp_cache_free(c);
	c = mk_tls(&s, d, "ca.pem", "redis.example.test");
	get_is(c, &k, TP_CACHE_PASS, NULL);
	tp_cache_free(c);
	rs_stop(&s);
}
END_TEST

/* --- threads and fork ---------------------------------------------------- */

struct hammer {
	tp_cache *c;
	int id, bad;
};

static void *hammer(void *arg)
{
	struct hammer *h = arg;

	for (int i = 0; i < 200; i++) {
		struct tp_cache_key k = key_for("www.example.test", h->id);
		char note[512] = "";
		int v = (i + h->id) % 2 ? TP_CACHE_PASS : TP_CACHE_FAIL;

		if (tp_cache_put(h->c, &k, v, time(NULL) + 600, time(NULL),
		                 note, sizeof(note)) != 0 ||
		    tp_cache_get(h->c, &k, time(NULL), NULL, note,
		                 sizeof(note)) != v)
			h->bad++;
	}
	return NULL;
}

START_TEST(eight_threads_four_connections)
{
	struct rs s;
	pthread_t t[8];
	struct hammer h[8];
	tp_cache *c;
	redisReply *r;
	long long clients;

	rs_start(&s, 0, NULL);
	c = mk(&s, key_file(0, 0600), "tlspool:", 1000);
	for (int i = 0; i < 8; i++) {
		h[i].c = c;
		h[i].id = i + 1;
		h[i].bad = 0;
		ck_assert_int_eq(pthread_create(&t[i], NULL, hammer, &h[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(h[i].bad, 0);
	}
	/* at most four connections of ours (and the test's own) */
	r = raw(&s, "INFO clients");
	ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
	clients = atoll(strstr(r->str, "connected_clients:") + 18);
	freeReplyObject(r);
	ck_assert_msg(clients >= 2 && clients <= 5, "%lld clients", clients);
	tp_cache_free(c);
	rs_stop(&s);
}
END_TEST

START_TEST(child_after_fork_uses_its_own_connection)
{
	struct rs s;
	struct tp_cache_key k = key_for("www.example.test", 1),
	                    k2 = key_for("www.example.test", 2);
	tp_cache *c;
	pid_t pid;
	int st;

	rs_start(&s, 0, NULL);
	c = mk(&s, key_file(0, 0600), "tlspool:", 1000);
	put_ok(c, &k, TP_CACHE_PASS, time(NULL) + 600);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char note[512] = "";
		int ok = tp_cache_get(c, &k, time(NULL), NULL, note,
		                      sizeof(note)) == TP_CACHE_PASS &&
		         tp_cache_put(c, &k2, TP_CACHE_FAIL, time(NULL) + 600,
		                      time(NULL), note, sizeof(note)) == 0;
		_exit(ok ? 0 : 1);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_int_eq(WEXITSTATUS(st), 0);
	/* the parent's connection was not disturbed */
	get_is(c, &k, TP_CACHE_PASS, NULL);
	get_is(c, &k2, TP_CACHE_FAIL, NULL);
	tp_cache_free(c);
	rs_stop(&s);
}
END_TEST

/* Zone keys (cache_keys.c) in Redis: up to TP_CACHE_DATA_MAX octets,
 * signed like every entry; one octet of the data changed and it is not
 * used. */
START_TEST(zone_keys_signed)
{
	static unsigned char data[TP_CACHE_DATA_MAX], back[TP_CACHE_DATA_MAX];
	struct tp_cache_key z = {.kind = TP_CACHE_KEYS,
	                         .a = "example.test.",
	                         .b = "",
	                         .type = 48};
	struct rs s;
	tp_cache *c;
	char name[128], note[512] = "";
	size_t len = 0;
	time_t now = time(NULL);

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)(i * 13);
	rs_start(&s, 0, NULL);
	c = mk(&s, key_file(0, 0600), "tlspool:", 200);
	ck_assert_msg(tp_cache_put_data(c, &z, data, sizeof(data), now + 600,
	                                now, note, sizeof(note)) == 0,
	              "%s", note);
	ck_assert_int_eq(tp_cache_get_data(c, &z, now, back, sizeof(back), &len,
	                                   NULL, note, sizeof(note)),
	                 TP_CACHE_PASS);
	ck_assert_uint_eq(len, sizeof(data));
	ck_assert_int_eq(memcmp(back, data, len), 0);
	name_of(c, "tlspool:", name, sizeof(name));
	raw_ok(&s, "SETRANGE %s %d %b", name,
	       (int)(TP_REDIS_HDR + TP_CACHE_HDR + 20), "\xff", (size_t)1);
	ck_assert_int_eq(tp_cache_get_data(c, &z, now, back, sizeof(back), &len,
	                                   NULL, note, sizeof(note)),
	                 TP_CACHE_MISS);
	ck_assert_ptr_nonnull(strstr(note, "bad signature"));
	tp_cache_free(c);
	rs_stop(&s);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("cache_redis");
	TCase *neg = tcase_create("negative");
	TCase *pos = tcase_create("positive");

	tcase_set_timeout(neg, 60);
	tcase_set_timeout(pos, 120);
	tcase_add_loop_test(neg, config_rejects, 0,
	                    sizeof(conf_rows) / sizeof(conf_rows[0]));
	tcase_add_loop_test(neg, site_key_checked_like_a_private_key, 0, 3);
	tcase_add_test(neg, altered_entry_never_answers);
	tcase_add_test(neg, zone_keys_signed);
	tcase_add_test(neg, entry_moved_to_another_key_never_answers);
	tcase_add_test(neg, huge_reply_refused);
	tcase_add_test(neg, another_site_key_never_answers);
	tcase_add_test(neg, redis_down_then_up);
	tcase_add_test(neg, redis_stopped_answers_within_timeout);
	tcase_add_test(neg, redis_killed_and_restarted);
	tcase_add_test(neg, redis_host_gone_reconnects_in_the_background);
	tcase_add_test(neg, redis_never_answering_bounded_by_timeout);
	tcase_add_test(neg, redis_full_and_refusing);
	tcase_add_test(neg, acl_user_with_password);
	tcase_add_test(pos, config_accepts);
	tcase_add_test(pos, expiry_is_the_redis_keys_too);
	tcase_add_test(pos, local_front);
	tcase_add_test(pos, prefixes_list_and_flush);
	tcase_add_test(pos, tls_to_redis);
	tcase_add_test(pos, eight_threads_four_connections);
	tcase_add_test(pos, child_after_fork_uses_its_own_connection);
	suite_add_tcase(s, neg);
	suite_add_tcase(s, pos);
	return s;
}

int main(void)
{
	char cmd[128];
	int rv;

	if (mkdtemp(dir) == NULL)
		return 1;
	seq = 0;
	rv = tp_run_suite(suite());
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	(void)!system(cmd);
	return rv;
}
