/*
 * tlspool/starttls.h -- turn a connected descriptor into an authenticated
 * TLS (or DTLS) channel whose peer is proven by DNSSEC-signed records.
 *
 * See starttls_client(3).  Both calls consume fd: on success the returned
 * descriptor carries plaintext and fd is closed in the caller's process;
 * on failure the connection is shut down, fd is closed, -1 is returned
 * with errno set and starttls_errstr() says what went wrong.
 */
#ifndef TLSPOOL_STARTTLS_H
#define TLSPOOL_STARTTLS_H

#include <stddef.h>

#include <tlspool/validate.h>

#ifdef __cplusplus
extern "C" {
#endif

#define STARTTLS_PEERCERT_OPTIONAL 0x01 /* server: request, accept none */
#define STARTTLS_PEERCERT_NONE     0x02 /* server: do not request */
#define STARTTLS_LOCALCERT_NONE    0x04 /* client: offer no certificate */
#define STARTTLS_NO_REMOTE_USER    0x08 /* refuse user@domain peers */
#define STARTTLS_NO_REMOTE_DOMAIN  0x10 /* refuse domain peers */
#define STARTTLS_NO_CACHE_READ     0x20 /* validate online */
#define STARTTLS_NO_CACHE_WRITE    0x40 /* do not store the result */
#define STARTTLS_NO_AUTHZ          0x80 /* skip authorization */

int starttls_client(int fd, int proto, char *myname, int flags, char *sniname,
                    char *peername, size_t peername_len);
int starttls_server(int fd, int proto, char *myname, int flags,
                    int checksni(char *), char *peername, size_t peername_len);

/* The calling thread's detail of its last failure ("" if none). */
const char *starttls_errstr(void);

/*
 * What the calling thread's last starttls_client() or starttls_server()
 * learnt about its peer, for diagnosis (tlspool-connect --diagnose):
 * the peer's certificates as sent, the TLSA owner name asked for, the
 * DNS answer and the DANE matcher's result with one step per record.
 * Members are NULL (nchain 0) where the call did not get that far.  When
 * the peer was authenticated from the validation cache, from_cache is 1,
 * owner names the record the cached result came from, and dns and dane
 * are NULL (no lookup was made).  Valid until the same thread's next
 * call; never NULL.
 */
typedef struct starttls_trace {
	size_t nchain;
	const tlspool_span *chain;       /* DER, [0] the peer's own */
	const char *owner;               /* TLSA owner name, or NULL */
	const tlspool_dns_answer *dns;   /* the lookup, or NULL */
	const tlspool_dane_result *dane; /* the matcher, or NULL */
	int from_cache;                  /* 1: the cache answered */
	/* For a user peer: the OPENPGPKEY matcher's result, or NULL (owner,
	 * dns and dane then describe the lookup that decided: OPENPGPKEY,
	 * or SMIMEA with the DANE matcher's result). */
	const tlspool_openpgp_result *openpgp;
} starttls_trace;

const starttls_trace *starttls_last_trace(void);

#ifdef __cplusplus
}
#endif
#endif
