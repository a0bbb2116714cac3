/* Authorization through the [authz] plugin, with the cache (authz.c). */
#ifndef TLSPOOL_AUTHZ_INTERNAL_H
#define TLSPOOL_AUTHZ_INTERNAL_H

#include "config.h"
#include "tlspool/authz.h"

/*
 * Is req allowed?  Without a configured plugin, yes.  STARTTLS_NO_CACHE_*
 * in flags as for authentication.  0 when allowed; -1 with tp_fail():
 * EPERM for a denial (the plugin's reason in the detail), EINVAL when the
 * plugin cannot be loaded or initialised.  A cache problem goes to note.
 */
int tp_authz_check(struct tp_config *cfg, const tlspool_authz_request *req,
                   int flags, char *note, size_t notelen);

/* Unload a configuration's plugin (its authz member); NULL is fine. */
void tp_authz_free(void *authz);

#endif
