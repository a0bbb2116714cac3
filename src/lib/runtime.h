/*
 * The runtime of one configuration: the parsed file (never changed after
 * it was read) and the parts made from it on first use, owned and freed
 * here and nowhere else: the resolver, the validation cache, the
 * authorization plugin and the credentials.  Reference counted: a call,
 * a relayed session (its credentials) and a context each hold one.  See
 * docs/architecture.md, "Ownership".
 */
#ifndef TLSPOOL_RUNTIME_H
#define TLSPOOL_RUNTIME_H

#include <gnutls/gnutls.h>
#include <pthread.h>
#include <stddef.h>

#include "authz.h"
#include "cache.h"
#include "config.h"
#include "cred.h"

struct tp_runtime {
	struct tp_config *cfg; /* the parsed file: read only */
	pthread_mutex_t lock;  /* guards the parts below */
	unsigned refs;         /* guarded by runtime.c's own lock */
	tlspool_dns *resolver; /* the parts, each made on first use */
	tp_cache *cache;
	struct tp_authz *authz;
	struct tp_credstore *creds;
	/* [tls] priority compiled once (docs/architecture.md, "Performance"):
	 * gnutls_priority_set() shares it by reference, where
	 * gnutls_priority_set_direct() compiled a copy kept by every session */
	gnutls_priority_t prio;
	int prio_err; /* its GnuTLS error, 0 until tried or when made */
	char prio_errpos[64];
};

/* A runtime over cfg, taking ownership of it in every case; one
 * reference.  NULL with errno ENOMEM. */
struct tp_runtime *tp_runtime_new(struct tp_config *cfg);

/* tp_config_load() and tp_runtime_new() in one: NULL with errno and err. */
struct tp_runtime *tp_runtime_load(const char *path, int may_be_missing,
                                   char *err, size_t errlen);

/* The same with overrides (tp_config_load_with()). */
struct tp_runtime *tp_runtime_load_with(const char *path, int may_be_missing,
                                        const char *const *overrides, char *err,
                                        size_t errlen);

/* The process default ($TLSPOOL_CONFIG or the installed file), read again
 * when the file changed; one reference for the caller.  NULL with errno
 * and err. */
struct tp_runtime *tp_runtime_acquire(char *err, size_t errlen);

/* A context's runtime (no reference taken), or NULL for NULL. */
struct tp_runtime *tp_ctx_runtime(starttls_ctx *ctx);

void tp_runtime_ref(struct tp_runtime *rt);
void tp_runtime_release(struct tp_runtime *rt); /* NULL accepted */

/* The parts.  The resolver: NULL with err when [dns] cannot make one.
 * The cache: NULL only without memory.  The plugin: NULL when none is
 * configured, else never NULL (a plugin that failed to load says so at
 * every call).  The credentials: NULL only without memory. */
tlspool_dns *tp_runtime_resolver(struct tp_runtime *rt, char *err,
                                 size_t errlen);
tp_cache *tp_runtime_cache(struct tp_runtime *rt);
struct tp_authz *tp_runtime_authz(struct tp_runtime *rt);
struct tp_credstore *tp_runtime_creds(struct tp_runtime *rt);
/* The compiled [tls] priority, shared by every session of rt (and freed
 * after the last, as sessions hold a reference to rt); NULL with the GnuTLS
 * error in *err and where the string failed in *errpos. */
gnutls_priority_t tp_runtime_priority(struct tp_runtime *rt, int *err,
                                      const char **errpos);

#endif
