/*
 * The public administration calls of the validation cache
 * (<tlspool/cache.h>) on the process default's cache file.
 */
#include <errno.h>
#include <stdio.h>

#include "runtime.h"

/* The configured cache file's cache; NULL with errno and err. */
static struct tp_runtime *admin_runtime(tp_cache **out, char *err,
                                        size_t errlen)
{
	struct tp_runtime *rt = tp_runtime_acquire(err, errlen);

	if (rt == NULL)
		return NULL;
	if (rt->cfg->cache_path[0] == '\0') {
		snprintf(err, errlen,
		         "%.200s: no [cache] path: the cache lives in "
		         "each process's memory",
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
