/*
 * tlspool/cache.h -- administration of the persistent validation cache
 * (the LMDB file of [cache] path in tlspool.conf).  See tlspool-connect(1)
 * --cache-list and --cache-flush, and tlspool.conf(5) [cache].
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
} tlspool_cache_entry;

/* Called once per entry; a nonzero return stops the walk. */
typedef int tlspool_cache_visit(const tlspool_cache_entry *e, void *arg);

/*
 * Walk, or empty, the cache file of the current configuration
 * ($TLSPOOL_CONFIG, else the installed tlspool.conf).  0, or -1 with errno
 * and a message in err: EINVAL without a [cache] path (the cache then
 * lives in each process's memory), or the LMDB error.
 */
int tlspool_cache_list(tlspool_cache_visit *visit, void *arg, char *err,
                       size_t errlen);
int tlspool_cache_flush(char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
