/*
 * Internal declarations of the redis backend of the validation cache
 * (cache_redis.h), one concern per file:
 *
 *   cache_redis.c  the outline of the whole; the secrets (site key,
 *                  password, TLS files), construction, signed entries
 *                  (GET, SET) and administration (SCAN)
 *   redis_conn.c   addresses; the transport (connect, TLS, AUTH, every
 *                  wait bounded by one deadline); the pool of connections
 *                  with its backoff; the registry of caches for fork()
 */
#ifndef TLSPOOL_REDIS_INT_H
#define TLSPOOL_REDIS_INT_H

#include <gnutls/gnutls.h>
#include <hiredis/hiredis.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/socket.h>
#include <time.h>

#include "cache_redis.h"

#define TP_REDIS_POOL 4
/* Slots of the front of verified entries ([cache] redis_local_ttl_ms). */
#define TP_REDIS_FRONT 512
/* The front keeps validation records (cache.h); zone keys, larger, are
 * read from Redis each time. */
#define TP_REDIS_FRONT_RECMAX 1024

/* One verified record, usable without Redis until until (tp mono ms). */
struct front_slot {
	unsigned char key[32];
	long long until; /* 0: empty */
	size_t len;
	unsigned char rec[TP_REDIS_FRONT_RECMAX];
};

struct rconn {
	pthread_mutex_t lock;
	int fd;               /* -1: none */
	long long connecting; /* connect() under way since (mono ms), or 0 */
	long long rcvto;      /* ms of SO_RCVTIMEO on a blocking plain
	                       * connection; 0: non-blocking (TLS, or not
	                       * yet set up) */
	gnutls_session_t tls;
	redisReader *rd;
};

struct tp_redis {
	struct tp_redis *next; /* the registry of live caches (fork) */
	struct tp_redis_conf conf;
	struct sockaddr_storage sa;
	socklen_t salen;
	char host[INET6_ADDRSTRLEN]; /* "" for unix: */
	char desc[PATH_MAX + 200];
	char pattern[3 * sizeof(((struct tp_redis_conf *)0)->prefix) + 64 * 8];

	pthread_mutex_t state; /* guards what follows, not the slots */
	int ready;             /* the secrets below are loaded: fixed */
	long long setup_at;
	char setup_why[400];
	unsigned char *key, keyid[8];
	size_t keylen;
	unsigned char *password;
	size_t passlen;
	gnutls_certificate_credentials_t xcred;
	long long retry_at; /* down until then (tp mono ms) */
	unsigned backoff;
	int trouble; /* a failure since the last success: connect in the
	              * background (redis_conn.c) */
	char down_why[300];

	struct rconn slot[TP_REDIS_POOL];

	pthread_mutex_t front_lock;
	struct front_slot *front; /* TP_REDIS_FRONT, or NULL (local_ttl_ms 0) */
};

/* Milliseconds on CLOCK_MONOTONIC. */
static inline long long tp_redis_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- connections (redis_conn.c) --- */

/* The pool's slots, without connections; the address of r->conf.addr in
 * r->sa (salen 0 when it is none: every call then says so) and r->host. */
void tp_redis_conn_init(struct tp_redis *r);
/* Into the registry of live caches, whose connections a fork()'s child
 * drops. */
void tp_redis_register(struct tp_redis *r);
/* Out of the registry; the pool's connections closed, its locks gone. */
void tp_redis_conn_fini(struct tp_redis *r);
/*
 * One command within budget ms: 0 with *out (perhaps an error reply:
 * the caller says what it means), or -1 with note.
 */
int tp_redis_run(struct tp_redis *r, int argc, const char **argv,
                 const size_t *lens, unsigned budget, redisReply **out,
                 char *note, size_t notelen);

/* --- the secrets (cache_redis.c) --- */

/* Read the site key, the password and the TLS files into r; r->ready
 * when all are there, else r->setup_why.  Under r->state. */
void tp_redis_setup(struct tp_redis *r);

#endif
