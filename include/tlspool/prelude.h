/*
 * tlspool/prelude.h -- the plaintext prelude of a STARTTLS protocol (SMTP
 * EHLO and STARTTLS, IMAP STARTTLS, POP3 STLS, LDAP's StartTLS extended
 * operation, PostgreSQL's SSLRequest, ...) on a connected descriptor,
 * client or server side.  It returns when the next bytes on the
 * descriptor are the TLS handshake's: the application then calls
 * starttls_client() or starttls_server() (or the context variants) on the
 * same descriptor.  See starttls_prelude_client(3).
 */
#ifndef TLSPOOL_PRELUDE_H
#define TLSPOOL_PRELUDE_H

#include <tlspool/starttls.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct starttls_prelude {
	/* Set by the caller. */
	const char *protocol;   /* "smtp", "imap", ...: see the man page */
	const char *myname;     /* EHLO/LHLO name, xmpp-server from=, the
	                           server's greeting; NULL: the host name */
	const char *peerdomain; /* client: xmpp and xmpp-server to= */
	unsigned timeout_ms;    /* the whole prelude; 0: [tls]
	                           handshake_timeout_ms of ctx */
	starttls_ctx *ctx;      /* NULL: the process default */

	/* Filled in by the call, as far as it got: printable text (other
	 * octets as \xHH), lines separated by "\n", cut at the size. */
	char greeting[1024];     /* the server's banner or greeting */
	char hello[512];         /* the client's EHLO/LHLO name, xmpp to= */
	char capabilities[2048]; /* as announced, one a line */
	char request[128];       /* the STARTTLS request */
	char reply[512];         /* the server's answer to it */
	char step[32];           /* the step reached, "done" at the end */
} starttls_prelude;

/*
 * Run the prelude of p->protocol on the connected stream descriptor fd.
 * Returns 0 when the TLS handshake may start, or -1 with errno and
 * starttls_errstr()/starttls_errclass(): EPROTO and
 * STARTTLS_ERR_PRELUDE (the peer offers no STARTTLS, refused it, sent a
 * line too long or data after the exchange, broke the protocol),
 * ETIMEDOUT (the deadline), ECONNRESET (the peer closed), EINVAL,
 * EPROTONOSUPPORT (an unknown protocol).  fd is never closed.  No byte
 * after the prelude is read: the handshake finds them in the socket.
 */
int starttls_prelude_client(int fd, starttls_prelude *p);
int starttls_prelude_server(int fd, starttls_prelude *p);

/* 1 when protocol is known for that side (server 0 or 1), else 0. */
int starttls_prelude_known(const char *protocol, int server);
/* The known protocols, space separated. */
const char *starttls_prelude_protocols(void);

#ifdef __cplusplus
}
#endif
#endif
