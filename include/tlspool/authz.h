/*
 * tlspool/authz.h -- the authorization plugin interface.  See
 * tlspool_authz(3).
 *
 * After the peer is authenticated, libtlspool asks the shared object named
 * by [authz] plugin in tlspool.conf whether the local identity may talk to
 * the remote one.  The object exports the three functions below (C
 * linkage, these names); it is loaded with dlopen() once per configuration
 * and process, tlspool_authz_init() is called with the [authz] config
 * string, tlspool_authz_decide() for every connection (from many threads
 * at once: it must be thread-safe), tlspool_authz_fini() when the
 * configuration is dropped.  The interface is versioned by
 * TLSPOOL_AUTHZ_API: fields are only ever added at the end of the request.
 */
#ifndef TLSPOOL_AUTHZ_H
#define TLSPOOL_AUTHZ_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TLSPOOL_AUTHZ_API 1

#define TLSPOOL_AUTHZ_CLIENT 0 /* we called starttls_client() */
#define TLSPOOL_AUTHZ_SERVER 1 /* we called starttls_server() */

#define TLSPOOL_AUTHZ_DENY  0
#define TLSPOOL_AUTHZ_ALLOW 1
#define TLSPOOL_AUTHZ_ERROR (-1) /* treated as a denial, never cached */

typedef struct tlspool_authz_request {
	unsigned api;       /* TLSPOOL_AUTHZ_API of the caller */
	const char *local;  /* our identity: domain or user@domain, "" none */
	const char *remote; /* the authenticated peer, "" anonymous */
	int role;           /* TLSPOOL_AUTHZ_CLIENT or TLSPOOL_AUTHZ_SERVER */
	int protocol;       /* IPPROTO_TCP, IPPROTO_UDP or IPPROTO_SCTP */
	const char *sni;    /* the server name indication, "" none */
	/* SHA2-256 of the peer's DER SubjectPublicKeyInfo (32 bytes), or
	 * NULL for an anonymous peer. */
	const unsigned char *peer_key_sha256;
} tlspool_authz_request;

/*
 * Prepare the plugin with the [authz] config string ("" if none); *state
 * is handed to the other calls.  0, or -1 with a message in err: every
 * connection then fails (closed) with that message.
 */
typedef int tlspool_authz_init_fn(const char *config, void **state, char *err,
                                  size_t errlen);
/*
 * TLSPOOL_AUTHZ_ALLOW or TLSPOOL_AUTHZ_DENY, with a reason (for a denial:
 * shown to the application by starttls_errstr()), or TLSPOOL_AUTHZ_ERROR.
 */
typedef int tlspool_authz_decide_fn(void *state,
                                    const tlspool_authz_request *req,
                                    char *reason, size_t reasonlen);
typedef void tlspool_authz_fini_fn(void *state);

tlspool_authz_init_fn tlspool_authz_init;
tlspool_authz_decide_fn tlspool_authz_decide;
tlspool_authz_fini_fn tlspool_authz_fini;

#ifdef __cplusplus
}
#endif
#endif
