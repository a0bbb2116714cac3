/*
 * The public administration calls of the validation cache
 * (<tlspool/cache.h>) on the process default's shared cache: the LMDB
 * file or the Redis server.
 */
#include <errno.h>
#include <stdio.h>

#include "runtime.h"

/* The context's runtime (one more reference), or the process default. */
static struct tp_runtime *runtime_of(starttls_ctx *ctx, char *err,
                                     size_t errlen)
{
	struct tp_runtime *rt = tp_ctx_runtime(ctx);

	if (rt == NULL)
		return tp_runtime_acquire(err, errlen);
	tp_runtime_ref(rt);
	return rt;
}

/* The configured shared cache; NULL with errno and err. */
static struct tp_runtime *admin_runtime(starttls_ctx *ctx, tp_cache **out,
                                        char *err, size_t errlen)
{
	struct tp_runtime *rt = runtime_of(ctx, err, errlen);

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

int tlspool_cache_list_ctx(starttls_ctx *ctx, tlspool_cache_visit *visit,
                           void *arg, char *err, size_t errlen)
{
	tp_cache *c;
	struct tp_runtime *rt = admin_runtime(ctx, &c, err, errlen);
	int rv;

	if (rt == NULL)
		return -1;
	rv = tp_cache_list(c, visit, arg, err, errlen);
	tp_runtime_release(rt);
	return rv;
}

int tlspool_cache_flush_ctx(starttls_ctx *ctx, char *err, size_t errlen)
{
	tp_cache *c;
	struct tp_runtime *rt = admin_runtime(ctx, &c, err, errlen);
	int rv;

	if (rt == NULL)
		return -1;
	rv = tp_cache_flush(c, err, errlen);
	tp_runtime_release(rt);
	return rv;
}

int tlspool_cache_backend_ctx(starttls_ctx *ctx, char *out, size_t outlen,
                              char *err, size_t errlen)
{
	struct tp_runtime *rt = runtime_of(ctx, err, errlen);
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

/* The process default's cache. */
int tlspool_cache_list(tlspool_cache_visit *visit, void *arg, char *err,
                       size_t errlen)
{
	return tlspool_cache_list_ctx(NULL, visit, arg, err, errlen);
}

int tlspool_cache_flush(char *err, size_t errlen)
{
	return tlspool_cache_flush_ctx(NULL, err, errlen);
}

int tlspool_cache_backend(char *out, size_t outlen, char *err, size_t errlen)
{
	return tlspool_cache_backend_ctx(NULL, out, outlen, err, errlen);
}
