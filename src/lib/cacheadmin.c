/*
 * The public administration calls of the validation cache
 * (<tlspool/cache.h>) on the process default's shared cache: the LMDB
 * file or the Redis server.
 */
#include <errno.h>
#include <stdio.h>

#include "runtime.h"

/* The configured shared cache; NULL with errno and err. */
static struct tp_runtime *admin_runtime(tp_cache **out, char *err,
                                        size_t errlen)
{
	struct tp_runtime *rt = tp_runtime_acquire(err, errlen);

	if (rt == NULL)
		return NULL;
	if (rt->cfg->cache_backend != TP_CACHE_LMDB &&
	    rt->cfg->cache_backend != TP_CACHE_REDIS) {
		snprintf(err, errlen,
		         "%.200s: no [cache] path or backend = redis: the "
		         "cache lives in each process's memory",
		         rt->cfg->path);
		tp_runtime_release(rt);
		errno = EINVAL;
		return NULL;
	}
	*out = tp_runtime_cache(rt);
	if (*out == NULL) {
		snprintf(err, errlen, "out of memory");
		tp_runtime_release(rt);
		errno = ENOMEM;
		return NULL;
	}
	return rt;
}

int tlspool_cache_list(tlspool_cache_visit *visit, void *arg, char *err,
                       size_t errlen)
{
	tp_cache *c;
	struct tp_runtime *rt = admin_runtime(&c, err, errlen);
	int rv;

	if (rt == NULL)
		return -1;
	rv = tp_cache_list(c, visit, arg, err, errlen);
	tp_runtime_release(rt);
	return rv;
}

int tlspool_cache_flush(char *err, size_t errlen)
{
	tp_cache *c;
	struct tp_runtime *rt = admin_runtime(&c, err, errlen);
	int rv;

	if (rt == NULL)
		return -1;
	rv = tp_cache_flush(c, err, errlen);
	tp_runtime_release(rt);
	return rv;
}

int tlspool_cache_backend(char *out, size_t outlen, char *err, size_t errlen)
{
	struct tp_runtime *rt = tp_runtime_acquire(err, errlen);
	tp_cache *c;

	if (rt == NULL)
		return -1;
	if (rt->cfg->cache_backend != TP_CACHE_LMDB &&
	    rt->cfg->cache_backend != TP_CACHE_REDIS) {
		snprintf(out, outlen, "memory");
	} else if ((c = tp_runtime_cache(rt)) == NULL) {
		snprintf(err, errlen, "out of memory");
		tp_runtime_release(rt);
		errno = ENOMEM;
		return -1;
	} else {
		snprintf(out, outlen, "%s", tp_cache_describe(c));
	}
	tp_runtime_release(rt);
	return 0;
}
