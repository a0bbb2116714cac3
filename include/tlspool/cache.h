/*
 * tlspool/cache.h -- administration of the shared validation cache: the
 * LMDB file of [cache] path, or the Redis server of [cache] backend =
 * redis in tlspool.conf.  See tlspool-connect(1) --cache-list and
 * --cache-flush, and tlspool.conf(5) [cache].
 */
#ifndef TLSPOOL_CACHE_PUB_H
#define TLSPOOL_CACHE_PUB_H

#include <stddef.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tlspool_cache_entry {
	char key[65];         /* hex SHA2-256: the entry's database key */
	int authz;            /* 0 authentication, 1 authorization */
	int pass;             /* 1 a positive result, 0 a negative one */
	const char *identity; /* authn: the peer; authz: the local identity */
	const char *other;    /* authn: "OWNER TYPE"; authz: the remote one */
	char spki[65];        /* authn: hex SHA2-256 of the peer's key */
	time_t stored, expiry;
	int valid; /* 0: a malformed record (never used) */
	/* valid 0: what is wrong with it ("signed with another site key",
	 * "bad signature (altered, ...)", "bad magic", ...) */
	const char *problem;
	/* 1: a zone's validated DNSKEY and DS records, kept for resolvers
	 * (identity: the zone; other: "DNSKEY DS (N octets)"; authz 0, spki
	 * empty).  At the end of the structure: programs built before it
	 * keep working. */
	int zonekeys;
} tlspool_cache_entry;

/* Called once per entry; a nonzero return stops the walk. */
typedef int tlspool_cache_visit(const tlspool_cache_entry *e, void *arg);

/*
 * Walk, or empty, the shared cache of the current configuration
 * ($TLSPOOL_CONFIG, else the installed tlspool.conf): every entry of the
 * LMDB file, or every entry under the prefix in Redis (SCAN, never KEYS;
 * an entry not signed with the site key is listed with valid 0 and its
 * problem).  0, or -1 with errno and a message in err: EINVAL with the
 * memory backend (the cache then lives in each process's memory), EIO
 * with the LMDB or Redis error.
 */
int tlspool_cache_list(tlspool_cache_visit *visit, void *arg, char *err,
                       size_t errlen);
int tlspool_cache_flush(char *err, size_t errlen);

/*
 * Which cache the two calls above use, into out: "memory", "lmdb PATH",
 * or "redis ADDR, prefix PREFIX" (", TLS").  0, or -1 with errno and err
 * as above (a configuration that does not load).
 */
int tlspool_cache_backend(char *out, size_t outlen, char *err, size_t errlen);

/* The same on the cache of a context's configuration (starttls_ctx_new(3));
 * ctx NULL: the process default, as above. */
struct starttls_ctx;
int tlspool_cache_list_ctx(struct starttls_ctx *ctx, tlspool_cache_visit *visit,
                           void *arg, char *err, size_t errlen);
int tlspool_cache_flush_ctx(struct starttls_ctx *ctx, char *err, size_t errlen);
int tlspool_cache_backend_ctx(struct starttls_ctx *ctx, char *out,
                              size_t outlen, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
