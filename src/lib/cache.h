/*
 * The validation cache: authentication results keyed by (identity, record
 * owner and type, SHA2-256 of the peer's SubjectPublicKeyInfo) and
 * authorization results keyed by (local identity, remote identity, and a
 * digest of the rest of the plugin's input).  docs/architecture.md,
 * "Validation".
 *
 * In process memory by default; with [cache] path an LMDB file shared by
 * the processes and threads that use it.  A cache that cannot be used
 * (missing directory, unreadable, full, corrupt) is never trusted: lookups
 * miss, stores are skipped, and the reason goes into the caller's note so
 * that validation goes online and the problem is reported.
 */
#ifndef TLSPOOL_CACHE_H
#define TLSPOOL_CACHE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "tlspool/cache.h"

typedef struct tp_cache tp_cache;

/* [cache] backend (tlspool.conf(5)); 0 in a parsed file means "not given":
 * lmdb when path is set, else memory. */
enum tp_cache_backend {
	TP_CACHE_MEMORY = 1,
	TP_CACHE_LMDB = 2,
	TP_CACHE_REDIS = 3,
};

/* The [cache] keys of the redis backend, as parsed (cache_redis.c). */
struct tp_redis_conf {
	char addr[PATH_MAX];          /* HOST:PORT, [V6]:PORT or unix:PATH */
	char user[128];               /* Redis ACL user; "" none */
	char password_file[PATH_MAX]; /* a secret file; "" none */
	char prefix[128];             /* of every key; "tlspool:" */
	char key_file[PATH_MAX];      /* the site key (a secret file) */
	unsigned timeout_ms;          /* bounds every operation */
	unsigned local_ttl_ms; /* the in-process front of verified entries
	                          (cache_redis.c): how long one is used
	                          without asking Redis; 0 none */
	int tls;               /* TLS to Redis */
	char tls_ca[PATH_MAX]; /* trust anchors for Redis's certificate */
	char tls_name[256];    /* the name it must carry; "": HOST */
	char tls_certificate[PATH_MAX], tls_key[PATH_MAX]; /* ours, optional */
};

enum tp_cache_kind {
	TP_CACHE_AUTHN = 1, /* a DANE/DNSSEC authentication */
	TP_CACHE_AUTHZ = 2, /* an authorization plugin's answer */
	TP_CACHE_KEYS = 3,  /* a zone's validated keys (cache_keys.c) */
};

enum tp_cache_verdict {
	TP_CACHE_MISS = 0, /* nothing usable: validate online */
	TP_CACHE_PASS = 1, /* a fresh positive result */
	TP_CACHE_FAIL = 2, /* a fresh negative result ([cache] negative_ttl) */
};

struct tp_cache_key {
	enum tp_cache_kind kind;
	const char *a; /* authn: the peer's identity; authz: the local one */
	const char *b; /* authn: the record owner; authz: the remote one */
	uint16_t type; /* authn: the record type; authz: 0 */
	/* authn: SHA2-256 of the peer's SPKI; authz: SHA2-256 of the
	 * plugin's other input (role, protocol, SNI, key, plugin). */
	unsigned char digest[32];
};

/*
 * A cache for one configuration: in memory (path NULL or ""), or the LMDB
 * file at path, opened on first use (one environment per process and
 * path).  No entry lives longer than max_ttl seconds after it was stored,
 * whatever its record says.  NULL only without memory.
 */
tp_cache *tp_cache_new(const char *path, unsigned max_ttl);

/*
 * A cache in the Redis server of rc (cache_redis.c): entries signed with
 * the site key, keys under rc->prefix, every operation bounded by
 * rc->timeout_ms.  No connection is made here; the key files are read
 * here and, while they fail, again every TP_RETRY seconds.  NULL only
 * without memory.
 */
tp_cache *tp_cache_new_redis(const struct tp_redis_conf *rc, unsigned max_ttl);
void tp_cache_free(tp_cache *cache);

/*
 * Look key up at time now.  Returns TP_CACHE_PASS or TP_CACHE_FAIL for a
 * fresh, well-formed entry of exactly this key (its expiry in *expiry if
 * not NULL), else TP_CACHE_MISS; when the cache could not be read, or an
 * entry was malformed, the reason is written to note (else note is left
 * alone).
 */
int tp_cache_get(tp_cache *cache, const struct tp_cache_key *key, time_t now,
                 time_t *expiry, char *note, size_t notelen);

/*
 * Store verdict (TP_CACHE_PASS or TP_CACHE_FAIL) for key until expiry,
 * capped at now + max_ttl.  An expiry not after now stores nothing.
 * Returns 0, or -1 with the reason in note.
 */
int tp_cache_put(tp_cache *cache, const struct tp_cache_key *key, int verdict,
                 time_t expiry, time_t now, char *note, size_t notelen);

/* The cache of a configuration, made on first use; NULL without memory. */

/* Every entry, expired ones included (see tlspool/cache.h). */
int tp_cache_list(tp_cache *cache, tlspool_cache_visit *visit, void *arg,
                  char *err, size_t errlen);
/* Remove every entry.  0, or -1 with the reason in err. */
int tp_cache_flush(tp_cache *cache, char *err, size_t errlen);
/*
 * Data stored with a key of kind TP_CACHE_KEYS (a: the zone, b: "", type
 * and digest 0): the records of cache_keys.c, at most TP_CACHE_DATA_MAX
 * octets.  get: their length into *len (TP_CACHE_PASS), or TP_CACHE_MISS
 * as tp_cache_get().  put: as tp_cache_put().
 */
#define TP_CACHE_DATA_MAX 8192
int tp_cache_get_data(tp_cache *cache, const struct tp_cache_key *key,
                      time_t now, unsigned char *data, size_t max, size_t *len,
                      time_t *expiry, char *note, size_t notelen);
int tp_cache_put_data(tp_cache *cache, const struct tp_cache_key *key,
                      const unsigned char *data, size_t len, time_t expiry,
                      time_t now, char *note, size_t notelen);

/* The zone keys of a resolver (tlspool_dns_set_keystore()) in cache,
 * when it is shared (LMDB or Redis); cache_keys.c. */
struct tlspool_dns;
void tp_cache_keys_attach(tp_cache *cache, struct tlspool_dns *dns);

/* "memory", "lmdb PATH" or "redis ADDR, prefix P[, TLS]". */
const char *tp_cache_describe(const tp_cache *cache);

/*
 * The record format, exposed for the unit tests.  A record is
 * TP_CACHE_HDR bytes of header then the two names (kind 3: the zone, then
 * the data, whose length is in place of strlen(b)):
 *   0 magic "TPC\1"   4 version (u16 LE)   6 kind   7 verdict
 *   8 expiry (s64 LE)   16 stored (s64 LE)   24 type (u16 LE)
 *   26 strlen(a) (u16 LE)   28 strlen(b) (u16 LE)   30 zero (u16)
 *   32 digest[32]   64 a, then b (no NUL)
 * The LMDB key is the SHA2-256 of kind, a, b, type and digest.
 */
#define TP_CACHE_MAGIC   "TPC\1"
#define TP_CACHE_VERSION 1
#define TP_CACHE_HDR     64
#define TP_CACHE_MAPSIZE (16u << 20)

#endif
