/*
 * The peer-authentication policy: given the peer's certificate chain and
 * what the caller asked for, is the peer who it must be?  A function of
 * (chain, reference identity, configuration), with no TLS session, so
 * that it is tested directly (tests/unit/check_peerauth.c).  See
 * docs/architecture.md, "Authenticating a peer".
 */
#ifndef TLSPOOL_PEERAUTH_H
#define TLSPOOL_PEERAUTH_H

#include <stddef.h>

#include "runtime.h"
#include "tlspool/starttls.h"

struct tp_peer_check {
	/* in */
	struct tp_runtime *rt;     /* resolver, cache, pkix_fallback */
	int server;                /* we are the server: the peer is a client */
	int flags;                 /* STARTTLS_* of the call */
	const tlspool_span *chain; /* the peer's certificates, [0] its own */
	size_t nchain;             /* 0: it sent none */
	const char *sniname;   /* client: the reference name asked for, or NULL
	                          (then the certificate's own claim) */
	unsigned port;         /* client: the server's port (TLSA owner) */
	const char *transport; /* client: "tcp" or "udp" (TLSA owner) */
	long long deadline;    /* tp_mono_ms() for DNS; 0: [dns] timeout_ms */
	/* client: the TLSA base domain, reference identifiers and reported
	 * peer of a destination (MX, SRV); NULL: sniname decides */
	const starttls_dane_ref *ref;
	/* out */
	char peer[320];         /* the authenticated identity, "" anonymous */
	unsigned char spki[32]; /* SHA2-256 of the peer's SPKI ... */
	int have_spki;          /* ... when known */
	char cache_note[256];   /* why the cache could not be used, or "" */
};

/*
 * Authenticate the peer of c: the DANE/OPENPGPKEY/SMIMEA lookups (through
 * the validation cache), then the STARTTLS_NO_REMOTE_* flags.  0 with
 * c->peer set ("" when the flags let a server's client stay anonymous),
 * or -1 with errno (EKEYREJECTED, ETIMEDOUT, EPERM, EINVAL, ENOMEM), a
 * detail and a failure class (starttls_errclass()).  The steps go to the
 * thread's trace (trace.h).
 */
int tp_peer_authenticate(struct tp_peer_check *c);

#endif
