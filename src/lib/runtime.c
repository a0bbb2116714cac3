/*
 * The runtime of a configuration (runtime.h): its parts made on first
 * use, its references, and the process default that follows the file.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime.h"

/* Guards every runtime's refs, and the process default. */
static pthread_mutex_t refs_lock = PTHREAD_MUTEX_INITIALIZER;

struct tp_runtime *tp_runtime_new(struct tp_config *cfg)
{
	struct tp_runtime *rt = calloc(1, sizeof(*rt));

	if (rt == NULL) {
		tp_config_free(cfg);
		errno = ENOMEM;
		return NULL;
	}
	rt->cfg = cfg;
	rt->refs = 1;
	pthread_mutex_init(&rt->lock, NULL);
	return rt;
}

struct tp_runtime *tp_runtime_load(const char *path, int may_be_missing,
                                   char *err, size_t errlen)
{
	struct tp_config *cfg;
	struct tp_runtime *rt;

	if (tp_config_load(path, may_be_missing, &cfg, err, errlen) != 0)
		return NULL;
	rt = tp_runtime_new(cfg);
	if (rt == NULL)
		snprintf(err, errlen, "out of memory");
	return rt;
}

struct tp_runtime *tp_runtime_load_with(const char *path, int may_be_missing,
                                        const char *const *overrides, char *err,
                                        size_t errlen)
{
	struct tp_config *cfg;
	struct tp_runtime *rt;

	if (tp_config_load_with(path, may_be_missing, overrides, &cfg, err,
	                        errlen) != 0)
		return NULL;
	rt = tp_runtime_new(cfg);
	if (rt == NULL)
		snprintf(err, errlen, "out of memory");
	return rt;
}

/* The one place the parts are freed, in reverse order of their use. */
static void runtime_free(struct tp_runtime *rt)
{
	if (rt->prio != NULL)
		gnutls_priority_deinit(rt->prio);
	tp_credstore_free(rt->creds);
	tp_authz_free(rt->authz);
	tp_cache_free(rt->cache);
	tlspool_dns_free(rt->resolver);
	pthread_mutex_destroy(&rt->lock);
	tp_config_free(rt->cfg);
	free(rt);
}

static void release_locked(struct tp_runtime *rt)
{
	if (--rt->refs == 0)
		runtime_free(rt);
}

void tp_runtime_ref(struct tp_runtime *rt)
{
	pthread_mutex_lock(&refs_lock);
	rt->refs++;
	pthread_mutex_unlock(&refs_lock);
}

void tp_runtime_release(struct tp_runtime *rt)
{
	if (rt == NULL)
		return;
	pthread_mutex_lock(&refs_lock);
	release_locked(rt);
	pthread_mutex_unlock(&refs_lock);
}

/* --- the parts ------------------------------------------------------------ */

/* The cache, made on first use.  Locked. */
static tp_cache *cache_locked(struct tp_runtime *rt)
{
	if (rt->cache == NULL && rt->cfg->cache_backend == TP_CACHE_REDIS)
		rt->cache =
		        tp_cache_new_redis(&rt->cfg->redis, rt->cfg->max_ttl);
	else if (rt->cache == NULL)
		rt->cache = tp_cache_new(rt->cfg->cache_path, rt->cfg->max_ttl);
	return rt->cache;
}

tlspool_dns *tp_runtime_resolver(struct tp_runtime *rt, char *err,
                                 size_t errlen)
{
	tlspool_dns *dns;

	pthread_mutex_lock(&rt->lock);
	if (rt->resolver == NULL) {
		rt->resolver = tlspool_dns_new(rt->cfg->dns, err, errlen);
		/* the zone keys it keeps go to the shared cache, if any */
		if (rt->resolver != NULL &&
		    (rt->cfg->cache_backend == TP_CACHE_LMDB ||
		     rt->cfg->cache_backend == TP_CACHE_REDIS))
			tp_cache_keys_attach(cache_locked(rt), rt->resolver);
	}
	dns = rt->resolver;
	pthread_mutex_unlock(&rt->lock);
	return dns;
}

tp_cache *tp_runtime_cache(struct tp_runtime *rt)
{
	tp_cache *c;

	pthread_mutex_lock(&rt->lock);
	c = cache_locked(rt);
	pthread_mutex_unlock(&rt->lock);
	return c;
}

struct tp_authz *tp_runtime_authz(struct tp_runtime *rt)
{
	struct tp_authz *a;

	if (rt->cfg->authz_plugin[0] == '\0')
		return NULL;
	pthread_mutex_lock(&rt->lock);
	if (rt->authz == NULL)
		rt->authz = tp_authz_load(rt->cfg);
	a = rt->authz;
	pthread_mutex_unlock(&rt->lock);
	return a;
}

struct tp_credstore *tp_runtime_creds(struct tp_runtime *rt)
{
	struct tp_credstore *s;

	pthread_mutex_lock(&rt->lock);
	if (rt->creds == NULL)
		rt->creds = tp_credstore_new();
	s = rt->creds;
	pthread_mutex_unlock(&rt->lock);
	return s;
}

gnutls_priority_t tp_runtime_priority(struct tp_runtime *rt, int *err,
                                      const char **errpos)
{
	gnutls_priority_t p;
	const char *pos = NULL;

	pthread_mutex_lock(&rt->lock);
	if (rt->prio == NULL && rt->prio_err == 0) {
		rt->prio_err = gnutls_priority_init(&rt->prio,
		                                    rt->cfg->priority, &pos);
		if (rt->prio_err < 0) {
			rt->prio = NULL;
			snprintf(rt->prio_errpos, sizeof(rt->prio_errpos), "%s",
			         pos != NULL ? pos : "");
		} else {
			rt->prio_err = 0;
		}
	}
	p = rt->prio;
	*err = rt->prio_err;
	*errpos = rt->prio_errpos;
	pthread_mutex_unlock(&rt->lock);
	return p;
}

/* --- the process default ---------------------------------------------------
 */

static struct tp_runtime *current;
static struct stat current_sb; /* the file when it was read */
static int current_present;

struct tp_runtime *tp_runtime_acquire(char *err, size_t errlen)
{
	const char *path = getenv("TLSPOOL_CONFIG");
	int may_be_missing = 0, have;
	struct tp_runtime *rt;
	struct stat sb;

	if (path == NULL || path[0] == '\0') {
		path = tlspool_config_default_path();
		may_be_missing = 1;
	}
	/* stat only notices a change; the file is read through the
	 * file-trust module */
	have = stat(path, &sb) == 0;
	pthread_mutex_lock(&refs_lock);
	if (current != NULL && strcmp(current->cfg->path, path) == 0 &&
	    current_present == have &&
	    (!have || (current_sb.st_mtim.tv_sec == sb.st_mtim.tv_sec &&
	               current_sb.st_mtim.tv_nsec == sb.st_mtim.tv_nsec &&
	               current_sb.st_size == sb.st_size &&
	               current_sb.st_ino == sb.st_ino))) {
		current->refs++;
		rt = current;
		pthread_mutex_unlock(&refs_lock);
		return rt;
	}
	rt = tp_runtime_load(path, may_be_missing, err, errlen);
	if (rt == NULL) {
		pthread_mutex_unlock(&refs_lock);
		return NULL;
	}
	if (current != NULL)
		release_locked(current);
	current = rt;
	current_present = have;
	current_sb = sb;
	rt->refs++; /* one for current, one for the caller */
	pthread_mutex_unlock(&refs_lock);
	return rt;
}
