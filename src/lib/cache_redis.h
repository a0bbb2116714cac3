/*
 * The redis backend of the validation cache (cache.c): a Redis server
 * shared by the hosts of a site, reached through one small pool of
 * connections per cache, with every entry signed by the site key.
 * docs/architecture.md, "Validation"; tlspool.conf(5) [cache].
 */
#ifndef TLSPOOL_CACHE_REDIS_H
#define TLSPOOL_CACHE_REDIS_H

#include <stddef.h>
#include <sys/socket.h>
#include <time.h>

#include "cache.h"

struct tp_redis;

/*
 * The address of [cache] redis: "HOST:PORT" with HOST an IPv4 address,
 * "[IPv6]:PORT", or "unix:PATH".  A name is never resolved, so that no
 * lookup can stall a validation.  0 (with *ss and *len when not NULL), or
 * -1 with errno EINVAL.
 */
int tp_redis_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len);

/* A backend for rc (copied); NULL only without memory.  No I/O but
 * reading the key files. */
struct tp_redis *tp_redis_new(const struct tp_redis_conf *rc);
void tp_redis_free(struct tp_redis *r); /* NULL accepted */

/* "redis ADDR, prefix P" (", TLS"). */
const char *tp_redis_describe(const struct tp_redis *r);

/*
 * The record stored under the database key key: 1 with the record (its
 * signature checked) in rec (at most max octets) and *len; 0 when there
 * is none; -1 when Redis could not be asked in time or the entry is not
 * one the site key signed, with the reason in note.  Never longer than
 * [cache] redis_timeout_ms.
 */
int tp_redis_get(struct tp_redis *r, const unsigned char key[32],
                 unsigned char *rec, size_t *len, size_t max, char *note,
                 size_t notelen);

/* Sign and store rec under key until expiry (also the Redis key's
 * expiry).  0, or -1 with the reason in note. */
int tp_redis_put(struct tp_redis *r, const unsigned char key[32],
                 const unsigned char *rec, size_t len, time_t expiry,
                 char *note, size_t notelen);

/* Called per entry under the prefix: problem NULL for a record the site
 * key signed (then rec, len), else what is wrong with it.  Nonzero stops. */
typedef int tp_redis_visit(const unsigned char key[32],
                           const unsigned char *rec, size_t len,
                           const char *problem, void *arg);

/* Every entry under the prefix (SCAN, never KEYS); 0, or -1 with errno
 * EIO and err. */
int tp_redis_walk(struct tp_redis *r, tp_redis_visit *visit, void *arg,
                  char *err, size_t errlen);
/* Remove every entry under the prefix; 0, or -1 with errno EIO and err. */
int tp_redis_flush(struct tp_redis *r, char *err, size_t errlen);

/* The stored value of a record, exposed for the unit tests:
 *   0 magic "TPR\1"  4 key id (8)  12 HMAC-SHA256 tag (32)  44 record
 * The key id is the first 8 octets of HMAC-SHA256(site key, "tlspool
 * cache key id"); the tag is HMAC-SHA256(site key, "tlspool cache v1",
 * the 32-octet database key, the record).  The Redis key is the prefix
 * followed by the database key in lowercase hex. */
#define TP_REDIS_MAGIC  "TPR\1"
#define TP_REDIS_HDR    44
#define TP_REDIS_KEYMIN 32 /* octets of site key, at least */
/* The longest record: a zone's keys (cache_keys.c) with its name. */
#define TP_REDIS_RECMAX (TP_CACHE_HDR + 320 + TP_CACHE_DATA_MAX)

#endif
