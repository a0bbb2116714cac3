/* Authorization through the [authz] plugin, with the cache (authz.c). */
#ifndef TLSPOOL_AUTHZ_INTERNAL_H
#define TLSPOOL_AUTHZ_INTERNAL_H

#include "cache.h"
#include "config.h"
#include "tlspool/authz.h"

struct tp_authz;

/*
 * Load cfg's [authz] plugin through the file-trust module.  NULL only
 * without memory; a plugin that cannot be loaded (or whose file breaks
 * the rules) still gives an object, which fails every check with the
 * reason.
 */
struct tp_authz *tp_authz_load(const struct tp_config *cfg);
void tp_authz_free(struct tp_authz *a); /* NULL accepted */

/*
 * Is req allowed by plugin a (as loaded for cfg), through cache (NULL:
 * none)?  Without a configured plugin, yes.  STARTTLS_NO_CACHE_* in flags
 * as for authentication.  0 when allowed; -1 with tp_fail(): EPERM for a
 * denial or a plugin file that breaks the rules (the reason in the
 * detail), EINVAL when the plugin cannot be loaded or initialised.  A
 * cache problem goes to note.
 */
int tp_authz_check(struct tp_authz *a, tp_cache *cache,
                   const struct tp_config *cfg,
                   const tlspool_authz_request *req, int flags, char *note,
                   size_t notelen);

#endif
