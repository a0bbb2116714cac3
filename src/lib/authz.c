/*
 * Authorization plugins (tlspool/authz.h, docs/architecture.md, "Validation").
 *
 * Outline: a configuration's plugin is loaded on first use with dlopen()
 * and initialised with the [authz] config string; a plugin that fails to
 * load or initialise makes every call fail closed with its message (it is
 * not retried until the configuration changes).  The file must pass the
 * rules of the file-trust module (owned by root or us, not writable by
 * group or other, a regular file): one that does not is never loaded and
 * every call fails with EPERM.  The plugin is loaded before the cache is
 * asked, so that no cached answer outlives a refused or broken plugin.  Each
 * answer is cached, keyed by (local, remote) and a digest of everything else
 * the plugin saw (role, protocol, SNI, the peer's key, the plugin and its
 * config), so that a cached answer is exactly the answer the plugin gave to the
 * same question: allowed for max_ttl, denied for negative_ttl (0: denials
 * are not cached), errors never.
 */
#include <dlfcn.h>
#include <errno.h>
#include <gnutls/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "authz.h"
#include "cache.h"
#include "filetrust.h"

struct tp_authz {
	void *dl, *state;
	int ready;
	int refused; /* the file broke the rules: EPERM for every call */
	tlspool_authz_decide_fn *decide;
	tlspool_authz_fini_fn *fini;
	char err[512];
};

void tp_authz_free(struct tp_authz *a)
{
	if (a == NULL)
		return;
	if (a->ready && a->fini != NULL)
		a->fini(a->state);
	if (a->dl != NULL)
		dlclose(a->dl);
	free(a);
}

/*
 * The plugin is loaded from the descriptor that was checked, through
 * /proc/self/fd/N, so that the file loaded is the file checked.  The
 * dynamic loader knows a loaded object by the name it was opened by, so
 * one descriptor per plugin file (device and inode) stays open for the
 * life of the process: "/proc/self/fd/N" then always names the same file.
 */
static pthread_mutex_t files_lock = PTHREAD_MUTEX_INITIALIZER;
static struct plugin_file {
	dev_t dev;
	ino_t ino;
	int fd;
} * files;
static size_t nfiles;

/* The descriptor that stands for the file of fd (fd itself, kept, or
 * one kept before, and fd closed); -1 for lack of memory. */
static int file_fd(int fd, const struct stat *st)
{
	struct plugin_file *grown;
	int rv = -1;
	size_t i;

	pthread_mutex_lock(&files_lock);
	for (i = 0; i < nfiles; i++)
		if (files[i].dev == st->st_dev && files[i].ino == st->st_ino) {
			close(fd);
			rv = files[i].fd;
			goto out;
		}
	grown = realloc(files, (nfiles + 1) * sizeof(*files));
	if (grown == NULL) {
		close(fd);
		goto out;
	}
	files = grown;
	files[nfiles].dev = st->st_dev;
	files[nfiles].ino = st->st_ino;
	files[nfiles++].fd = rv = fd;
out:
	pthread_mutex_unlock(&files_lock);
	return rv;
}

struct tp_authz *tp_authz_load(const struct tp_config *cfg)
{
	struct tp_authz *a = calloc(1, sizeof(*a));
	tlspool_authz_init_fn *init;
	char err[400] = "", name[64];
	struct stat st;
	int fd;

	if (a == NULL)
		return NULL;
	fd = tlspool_file_open(cfg->authz_plugin, TLSPOOL_FILE_PLUGIN, &st, err,
	                       sizeof(err));
	if (fd < 0) {
		/* a file that breaks the rules is never loaded */
		a->refused = errno == EACCES;
		snprintf(a->err, sizeof(a->err), "[authz] plugin %s%s", err,
		         a->refused ? "; not loaded" : "");
		return a;
	}
	fd = file_fd(fd, &st);
	if (fd < 0) {
		snprintf(a->err, sizeof(a->err), "[authz] plugin %.300s: %s",
		         cfg->authz_plugin, "out of memory");
		return a;
	}
	snprintf(name, sizeof(name), "/proc/self/fd/%d", fd);
	a->dl = dlopen(name, RTLD_NOW | RTLD_LOCAL);
	if (a->dl == NULL) {
		snprintf(a->err, sizeof(a->err), "[authz] plugin %.200s: %s",
		         cfg->authz_plugin, dlerror());
		return a;
	}
	/* POSIX: dlsym's void * converts to a function pointer. */
	*(void **)&init = dlsym(a->dl, "tlspool_authz_init");
	*(void **)&a->decide = dlsym(a->dl, "tlspool_authz_decide");
	*(void **)&a->fini = dlsym(a->dl, "tlspool_authz_fini");
	if (init == NULL || a->decide == NULL) {
		snprintf(a->err, sizeof(a->err),
		         "[authz] plugin %.200s: no tlspool_authz_init or "
		         "tlspool_authz_decide",
		         cfg->authz_plugin);
		return a;
	}
	if (init(cfg->authz_config, &a->state, err, sizeof(err)) != 0) {
		snprintf(a->err, sizeof(a->err),
		         "[authz] plugin %.200s: %.280s", cfg->authz_plugin,
		         err[0] ? err : "init failed");
		return a;
	}
	a->ready = 1;
	return a;
}

/* The digest of the request's other fields, for the cache key. */
static int context_digest(const struct tp_config *cfg,
                          const tlspool_authz_request *req,
                          unsigned char out[32])
{
	gnutls_hash_hd_t h;
	unsigned char nokey[32] = {0};
	char num[32];

	if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) != 0)
		return -1;
	snprintf(num, sizeof(num), "%d/%d", req->role, req->protocol);
	gnutls_hash(h, num, strlen(num) + 1);
	gnutls_hash(h, req->sni, strlen(req->sni) + 1);
	gnutls_hash(h, req->peer_key_sha256 ? req->peer_key_sha256 : nokey, 32);
	gnutls_hash(h, cfg->authz_plugin, strlen(cfg->authz_plugin) + 1);
	gnutls_hash(h, cfg->authz_config, strlen(cfg->authz_config) + 1);
	gnutls_hash_deinit(h, out);
	return 0;
}

int tp_authz_check(struct tp_authz *a, tp_cache *cache,
                   const struct tp_config *cfg,
                   const tlspool_authz_request *req, int flags, char *note,
                   size_t notelen)
{
	struct tp_cache_key key;
	char reason[256] = "";
	time_t now = time(NULL);
	int r;

	if (cfg->authz_plugin[0] == '\0')
		return 0;
	memset(&key, 0, sizeof(key));
	key.kind = TP_CACHE_AUTHZ;
	key.a = req->local;
	key.b = req->remote;
	if (context_digest(cfg, req, key.digest) != 0)
		cache = NULL;
	/* The plugin first: one that is refused or broken fails every
	 * call, even one the cache could answer. */
	if (a == NULL)
		return tp_fail(ENOMEM, "out of memory");
	if (a->refused)
		return tp_failc(EPERM, STARTTLS_ERR_REFUSED,
		                "authorization: %s", a->err);
	if (!a->ready)
		return tp_fail(EINVAL, "%s", a->err);
	if (cache != NULL && !(flags & STARTTLS_NO_CACHE_READ)) {
		r = tp_cache_get(cache, &key, now, NULL, note, notelen);
		if (r == TP_CACHE_PASS)
			return 0;
		if (r == TP_CACHE_FAIL)
			return tp_fail(EPERM,
			               "authorization: %s -> %s denied "
			               "(cached denial)",
			               req->local[0] ? req->local : "(none)",
			               req->remote[0] ? req->remote
			                              : "(anonymous)");
	}
	r = a->decide(a->state, req, reason, sizeof(reason));
	reason[sizeof(reason) - 1] = '\0';
	if (r == TLSPOOL_AUTHZ_ALLOW) {
		if (cache != NULL && !(flags & STARTTLS_NO_CACHE_WRITE))
			tp_cache_put(cache, &key, TP_CACHE_PASS,
			             now + (time_t)cfg->max_ttl, now, note,
			             notelen);
		return 0;
	}
	if (r == TLSPOOL_AUTHZ_DENY && cache != NULL && cfg->negative_ttl > 0 &&
	    !(flags & STARTTLS_NO_CACHE_WRITE))
		tp_cache_put(cache, &key, TP_CACHE_FAIL,
		             now + (time_t)cfg->negative_ttl, now, note,
		             notelen);
	return tp_fail(EPERM, "authorization: %s",
	               reason[0]                 ? reason
	               : r == TLSPOOL_AUTHZ_DENY ? "denied by the plugin"
	                                         : "the plugin failed");
}
