/*
 * The call: starttls_client() and starttls_server(), and their context
 * forms, over TCP (TLS) and UDP (DTLS).  See docs/architecture.md for the
 * module map; this file holds what needs the GnuTLS session.
 *
 * Outline of one call:
 *   1. Consume fd at once: the work goes on a private duplicate and the
 *      caller's number is closed, so every later exit path has one
 *      descriptor to shut down and close.  The deadline starts here:
 *      handshake_timeout_ms bounds the whole call (cookie exchange,
 *      handshake, DNS, validation), however slowly the peer sends.
 *   2. Check the arguments (protocol, flags of the role, names, socket
 *      type) and take the configuration (the context's, or the process
 *      default).
 *   3. Credentials: the client's for myname (unless LOCALCERT_NONE); the
 *      server's chosen after the ClientHello from myname or the SNI,
 *      with checksni consulted for every ClientHello ("" without SNI).
 *      The ACL is checked before a key is used.
 *   4. The handshake, with a transport whose every wait ends at the
 *      deadline (transport.c).
 *   5. The peer: peerauth.c decides (DANE, OPENPGPKEY, SMIMEA, the
 *      cache, the NO_REMOTE_* flags), then authorization (authz.c), then
 *      the peer name into the caller's buffer (ENAMETOOLONG before
 *      anything is written).  A peer we refuse hears the fitting alert.
 *   6. A socketpair: one end to the relay engine with the session and
 *      the network descriptor, the other end returned.
 */
#include <errno.h>
#include <fcntl.h>
#include <gnutls/dtls.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "authz.h"
#include "cache.h"
#include "runtime.h"
#include "cred.h"
#include "dtls.h"
#include "handoff.h"
#include "peerauth.h"
#include "pool.h"
#include "relay.h"
#include "trace.h"
#include "transport.h"

#define ROLE_FLAGS_CLIENT                                                      \
	(STARTTLS_LOCALCERT_NONE | STARTTLS_NO_REMOTE_USER |                   \
	 STARTTLS_NO_REMOTE_DOMAIN | STARTTLS_NO_CACHE_READ |                  \
	 STARTTLS_NO_CACHE_WRITE | STARTTLS_NO_AUTHZ)
#define ROLE_FLAGS_SERVER                                                      \
	(STARTTLS_PEERCERT_OPTIONAL | STARTTLS_PEERCERT_NONE |                 \
	 STARTTLS_NO_REMOTE_USER | STARTTLS_NO_REMOTE_DOMAIN |                 \
	 STARTTLS_NO_CACHE_READ | STARTTLS_NO_CACHE_WRITE | STARTTLS_NO_AUTHZ)

struct starttls_ctx {
	struct tp_runtime *rt; /* one reference, never reloaded */
};

struct call {
	int server;
	int net;                          /* our duplicate of the caller's fd */
	int datagram;                     /* IPPROTO_UDP: DTLS (dtls.h) */
	gnutls_dtls_prestate_st prestate; /* the server's verified cookie */
	int flags;
	const char *myname;
	const char *sniname;          /* the client's, or NULL */
	int (*checksni)(char *);      /* the seed API's filter, or */
	starttls_sni_fn *checksni_fn; /* the context API's, with */
	void *checksni_arg;           /* its user pointer */
	struct tp_runtime *rt;
	gnutls_session_t session;
	char sni[256];      /* what the client sent, "" none */
	unsigned port;      /* the peer's, for the TLSA owner name; 0 unknown */
	long long deadline; /* tp_mono_ms() by which the call returns */
	struct tp_deadline_io io; /* the handshake's transport */
	int cb_errno;             /* a failure inside the ClientHello hook */
	int pair[2], have_pair;   /* stream: made while the peer computes */
	struct tp_peer_check pc;
	const starttls_dane_ref *ref; /* starttls_ctx_client_dane(), or NULL */
};

/* --- failures ------------------------------------------------------------ */

/* A fatal handshake error of ours (not the peer's alert, not the
 * transport) is told to the peer, as RFC 8446 section 6.2 asks. */
static void alert_for_error(struct call *c, int r)
{
	int level = GNUTLS_AL_FATAL, a = gnutls_error_to_alert(r, &level);

	if (r == GNUTLS_E_CERTIFICATE_REQUIRED ||
	    r == GNUTLS_E_NO_CERTIFICATE_FOUND)
		a = GNUTLS_A_CERTIFICATE_REQUIRED;
	if (a >= 0)
		gnutls_alert_send(c->session, GNUTLS_AL_FATAL,
		                  (gnutls_alert_description_t)a);
}

/* What a peer's alert says of us: it refused our certificate (or our
 * lack of one), it refused us (access_denied: checksni, authorization),
 * or the protocol failed. */
static starttls_class alert_class(gnutls_alert_description_t a)
{
	switch (a) {
	case GNUTLS_A_BAD_CERTIFICATE:
	case GNUTLS_A_UNSUPPORTED_CERTIFICATE:
	case GNUTLS_A_CERTIFICATE_REVOKED:
	case GNUTLS_A_CERTIFICATE_EXPIRED:
	case GNUTLS_A_CERTIFICATE_UNKNOWN:
	case GNUTLS_A_UNKNOWN_CA:
	case GNUTLS_A_CERTIFICATE_REQUIRED:
		return STARTTLS_ERR_PEER_REJECTED;
	case GNUTLS_A_ACCESS_DENIED:
		return STARTTLS_ERR_REFUSED;
	default:
		return STARTTLS_ERR_TLS;
	}
}

/* Map a handshake failure to errno and a class, with its detail. */
static int handshake_failed(struct call *c, int r)
{
	const char *what = c->server ? "client" : "server";

	if (c->cb_errno != 0) {
		/* RFC 6066 section 3: tell the client why, rather than just
		 * closing; GnuTLS does not send this alert itself.  A name
		 * we have no identity for is unrecognized_name; an identity
		 * we could not load (an untrusted key file, a broken
		 * certificate) is our fault, not the name's: internal_error
		 * (RFC 8446 section 6.2). */
		gnutls_alert_send(c->session, GNUTLS_AL_FATAL,
		                  c->cb_errno == EPERM ? GNUTLS_A_ACCESS_DENIED
		                  : c->cb_errno == ENOKEY
		                          ? GNUTLS_A_UNRECOGNIZED_NAME
		                          : GNUTLS_A_INTERNAL_ERROR);
		errno = c->cb_errno;
		return -1; /* the hook recorded the detail */
	}
	if (c->io.timed_out || r == GNUTLS_E_TIMEDOUT)
		return tp_fail(ETIMEDOUT,
		               "TLS handshake did not finish within %u ms "
		               "([tls] handshake_timeout_ms)",
		               c->rt->cfg->handshake_timeout_ms);
	switch (r) {
	case GNUTLS_E_PREMATURE_TERMINATION:
	case GNUTLS_E_PULL_ERROR:
	case GNUTLS_E_PUSH_ERROR:
	case GNUTLS_E_UNEXPECTED_PACKET_LENGTH:
		return tp_fail(ECONNRESET,
		               "the %s closed the connection during the TLS "
		               "handshake (%s)",
		               what, gnutls_strerror(r));
	case GNUTLS_E_FATAL_ALERT_RECEIVED:
	case GNUTLS_E_WARNING_ALERT_RECEIVED:
		return tp_failc(
		        EPROTO, alert_class(gnutls_alert_get(c->session)),
		        "the %s sent the TLS alert \"%s\"", what,
		        gnutls_alert_get_name(gnutls_alert_get(c->session)));
	}
	alert_for_error(c, r);
	if (r == GNUTLS_E_NO_CERTIFICATE_FOUND ||
	    r == GNUTLS_E_CERTIFICATE_REQUIRED)
		return tp_failc(EKEYREJECTED, STARTTLS_ERR_NO_PEER_CERT,
		                "the %s presented no certificate", what);
	return tp_fail(EPROTO, "TLS handshake failed: %s", gnutls_strerror(r));
}

/*
 * The alert for a peer we refuse after the handshake (RFC 8446 section
 * 6.2): it hears "bad certificate" or "certificate required" only when it
 * is to blame; a DNS failure on our side is an internal error.
 */
static int alert_for_refusal(void)
{
	switch (starttls_errclass()) {
	case STARTTLS_ERR_NO_PEER_CERT:
		return GNUTLS_A_CERTIFICATE_REQUIRED;
	case STARTTLS_ERR_NO_MATCH:
	case STARTTLS_ERR_NO_IDENTITY:
		return GNUTLS_A_BAD_CERTIFICATE;
	case STARTTLS_ERR_NO_RECORDS:
	case STARTTLS_ERR_INSECURE:
		return GNUTLS_A_UNKNOWN_CA; /* nothing vouches for its key */
	case STARTTLS_ERR_REFUSED:
		return GNUTLS_A_ACCESS_DENIED;
	case STARTTLS_ERR_TIMEOUT:
		return -1; /* a peer that holds us up hears nothing */
	default:
		return GNUTLS_A_INTERNAL_ERROR;
	}
}

/* --- arguments ----------------------------------------------------------- */

/* DTLS needs a connected SOCK_DGRAM socket: the peer's address is the
 * cookie's input and its port the TLSA owner's. */
static int check_dgram_socket(struct call *c, int type)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (type != SOCK_DGRAM)
		return tp_fail(EINVAL, "IPPROTO_UDP needs a SOCK_DGRAM socket");
	if (getpeername(c->net, (struct sockaddr *)&ss, &len) != 0)
		return tp_fail(EINVAL,
		               "IPPROTO_UDP needs a connected socket "
		               "(%s)",
		               strerror(errno));
	return 0;
}

static int check_proto(struct call *c, int proto)
{
	int probe;

	if (proto == IPPROTO_SCTP) {
		probe = socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP);
		if (probe < 0)
			return tp_fail(EPROTONOSUPPORT,
			               "IPPROTO_SCTP: this kernel has no SCTP");
		close(probe);
		return tp_fail(EPROTONOSUPPORT,
		               "IPPROTO_SCTP: DTLS over SCTP is not available "
		               "in this version");
	}
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return tp_fail(EINVAL,
		               "protocol %d: use IPPROTO_TCP, "
		               "IPPROTO_UDP or IPPROTO_SCTP",
		               proto);
	c->datagram = proto == IPPROTO_UDP;
	return 0;
}

static int check_args(struct call *c, int proto)
{
	int type = 0, role = c->server ? ROLE_FLAGS_SERVER : ROLE_FLAGS_CLIENT;
	socklen_t len = sizeof(type);

	if (check_proto(c, proto) != 0)
		return -1;
	if (c->flags & ~role)
		return tp_fail(EINVAL, "flags 0x%x: unknown, or not for a %s",
		               (unsigned)(c->flags & ~role),
		               c->server ? "server" : "client");
	if ((c->flags & STARTTLS_PEERCERT_OPTIONAL) &&
	    (c->flags & STARTTLS_PEERCERT_NONE))
		return tp_fail(EINVAL, "PEERCERT_OPTIONAL and PEERCERT_NONE "
		                       "exclude each other");
	if (c->myname != NULL && tp_check_identity(c->myname) != 0)
		return tp_fail(EINVAL,
		               "myname \"%.100s\": not a domain or "
		               "user@domain",
		               c->myname);
	if (c->sniname != NULL && tlspool_check_domain(c->sniname, 0) != 0)
		return tp_fail(EINVAL, "sniname \"%.100s\": not a host name",
		               c->sniname);
	if (getsockopt(c->net, SOL_SOCKET, SO_TYPE, &type, &len) != 0)
		return tp_fail(EINVAL, "fd is not a socket (%s)",
		               strerror(errno));
	if (c->datagram)
		return check_dgram_socket(c, type);
	if (type != SOCK_STREAM)
		return tp_fail(EINVAL,
		               "IPPROTO_TCP needs a SOCK_STREAM socket");
	/* Each TLS record goes out in one write; Nagle's algorithm would hold
	 * small records back for a delayed ACK (40 ms on Linux), in the
	 * handshake and in interactive traffic alike.  stunnel does the
	 * same.  Not a TCP socket (AF_UNIX): nothing to do. */
	type = 1;
	setsockopt(c->net, IPPROTO_TCP, TCP_NODELAY, &type, sizeof(type));
	return 0;
}

/* --- the session ---------------------------------------------------------- */

/* The caller's SNI filter: nonzero accepts. */
static int sni_accepted(struct call *c)
{
	char copy[sizeof(c->sni)];

	if (c->checksni_fn != NULL)
		return c->checksni_fn(c->sni, c->checksni_arg);
	if (c->checksni != NULL) {
		memcpy(copy, c->sni, sizeof(copy)); /* it may write to it */
		return c->checksni(copy);
	}
	return 1;
}

/* The server picks its identity once the ClientHello is in: from myname,
 * or from the SNI.  checksni sees every ClientHello, "" for one without
 * SNI, and a name as sent (up to 255 octets) before it is judged a host
 * name (RFC 6066 section 3). */
static int on_client_hello(gnutls_session_t s)
{
	struct call *c = gnutls_session_get_ptr(s);
	gnutls_certificate_credentials_t creds;
	size_t len = sizeof(c->sni);
	unsigned type;
	const char *name;
	int r;

	r = gnutls_server_name_get(s, c->sni, &len, &type, 0);
	if (r == 0 && type == GNUTLS_NAME_DNS && len < sizeof(c->sni)) {
		c->sni[len] = '\0';
	} else if (r == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE) {
		c->sni[0] = '\0';
	} else {
		c->sni[0] = '\0';
		tp_failc(ENOKEY, STARTTLS_ERR_REFUSED,
		         "the client's SNI is not a host name of at most 255 "
		         "octets");
		goto refuse;
	}
	if (!sni_accepted(c)) {
		tp_failc(EPERM, STARTTLS_ERR_REFUSED,
		         c->sni[0] ? "SNI \"%s\" refused by checksni"
		                   : "%sa ClientHello without SNI refused by "
		                     "checksni",
		         c->sni);
		goto refuse;
	}
	if (c->sni[0] != '\0' && tlspool_check_domain(c->sni, 0) != 0) {
		/* the identities are host names only */
		tp_fail(ENOKEY, "SNI \"%.100s\" is not a host name", c->sni);
		goto refuse;
	}
	name = c->myname != NULL ? c->myname : c->sni;
	if (name[0] == '\0') {
		tp_fail(ENOKEY, "the client sent no SNI and no myname was "
		                "given");
		goto refuse;
	}
	if (tp_cred_get(tp_runtime_creds(c->rt), c->rt->cfg, name, &creds) != 0)
		goto refuse;
	gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, creds);
	return 0;
refuse:
	c->cb_errno = errno;
	return GNUTLS_E_UNRECOGNIZED_NAME;
}

static int client_credentials(struct call *c,
                              gnutls_certificate_credentials_t *creds)
{
	if (c->myname != NULL && !(c->flags & STARTTLS_LOCALCERT_NONE))
		return tp_cred_get(tp_runtime_creds(c->rt), c->rt->cfg,
		                   c->myname, creds);
	return tp_cred_anonymous(tp_runtime_creds(c->rt), creds);
}

/* A stream's socketpair for the hand-off, made while we wait for the
 * peer's answer to our flight (the transport's idle hook): a few
 * microseconds less between the handshake's end and the application
 * (and, when it closes at once, close_notify on the wire).  Failing here
 * is no error: hand_off() tries again and says why. */
static void early_pair(void *arg)
{
	struct call *c = arg;

	if (!c->have_pair &&
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, c->pair) == 0)
		c->have_pair = 1;
}

/* [tls] alpn: offered by a client, chosen from by a server (RFC 7301
 * section 3.2: the server picks the first of its list that the client
 * offers, and goes on without ALPN when there is none). */
static int set_alpn(struct call *c)
{
	gnutls_datum_t p[TP_MAX_ALPN];
	const char *s = c->rt->cfg->alpn;
	unsigned n = 0;
	int r;

	while (*s != '\0' && n < TP_MAX_ALPN) {
		size_t l = strcspn(s, " \t,");

		if (l > 0) {
			p[n].data = (unsigned char *)(uintptr_t)s;
			p[n++].size = (unsigned)l;
		}
		s += l;
		s += strspn(s, " \t,");
	}
	r = gnutls_alpn_set_protocols(c->session, p, n, 0);
	if (r < 0)
		return tp_failc(EINVAL, STARTTLS_ERR_CONFIG,
		                "[tls] alpn \"%s\": %s", c->rt->cfg->alpn,
		                gnutls_strerror(r));
	return 0;
}

static int start_session(struct call *c)
{
	gnutls_certificate_credentials_t creds = NULL;
	gnutls_priority_t prio;
	const char *errpos = NULL;
	long long left = c->deadline - tp_mono_ms();
	int r;

	if (!c->server && client_credentials(c, &creds) != 0)
		return -1;
	/* GNUTLS_NO_SIGNAL: a peer that vanishes must not raise SIGPIPE in
	 * the application's process.  GNUTLS_NO_TICKETS: no session is ever
	 * resumed (a resumed session shows no certificate to authenticate),
	 * so a client asks for no tickets (RFC 8446 s4.2.9: no
	 * psk_key_exchange_modes, the server sends no NewSessionTicket) and
	 * a server makes none; docs/architecture.md, "Performance". */
	r = gnutls_init(&c->session,
	                (c->server ? GNUTLS_SERVER : GNUTLS_CLIENT) |
	                        GNUTLS_NO_SIGNAL | GNUTLS_NO_TICKETS |
	                        (c->datagram ? GNUTLS_DATAGRAM : 0));
	if (r < 0)
		return tp_fail(ENOMEM, "gnutls_init: %s", gnutls_strerror(r));
	gnutls_session_set_ptr(c->session, c);
	/* compiled once per configuration, shared by reference */
	prio = tp_runtime_priority(c->rt, &r, &errpos);
	if (prio == NULL || (r = gnutls_priority_set(c->session, prio)) < 0)
		return tp_failc(EINVAL, STARTTLS_ERR_CONFIG,
		                "[tls] priority \"%s\": %s at \"%s\"",
		                c->rt->cfg->priority, gnutls_strerror(r),
		                errpos ? errpos : "");
	if (c->rt->cfg->alpn[0] != '\0' && set_alpn(c) != 0)
		return -1;
	if (c->server) {
		gnutls_handshake_set_post_client_hello_function(
		        c->session, on_client_hello);
		gnutls_certificate_server_set_request(
		        c->session, (c->flags & STARTTLS_PEERCERT_NONE)
		                            ? GNUTLS_CERT_IGNORE
		                    : (c->flags & STARTTLS_PEERCERT_OPTIONAL)
		                            ? GNUTLS_CERT_REQUEST
		                            : GNUTLS_CERT_REQUIRE);
	} else {
		gnutls_credentials_set(c->session, GNUTLS_CRD_CERTIFICATE,
		                       creds);
		if (c->sniname != NULL)
			gnutls_server_name_set(c->session, GNUTLS_NAME_DNS,
			                       c->sniname, strlen(c->sniname));
	}
	c->io.fd = c->net;
	c->io.deadline = c->deadline;
	c->io.stream = !c->datagram;
	if (c->io.stream) {
		c->io.idle = early_pair;
		c->io.idle_arg = c;
	}
	tp_transport_deadline(c->session, &c->io);
	if (left < 1)
		left = 1;
	/* Over TCP the transport alone bounds every wait by the deadline: a
	 * GnuTLS timeout would poll() before every read (twice per record),
	 * where the transport polls only when a read finds nothing
	 * (docs/architecture.md, "Performance").  DTLS needs it for its
	 * retransmissions. */
	gnutls_handshake_set_timeout(c->session,
	                             c->datagram ? (unsigned)left : 0);
	if (c->datagram)
		tp_dtls_setup(c->session, c->net, (unsigned)left,
		              c->server ? &c->prestate : NULL);
	return 0;
}

static int handshake(struct call *c)
{
	int r;

	do
		r = gnutls_handshake(c->session);
	while (r < 0 && !gnutls_error_is_fatal(r) && !c->io.timed_out);
	return r < 0 ? handshake_failed(c, r) : 0;
}

/* --- the peer ------------------------------------------------------------ */

static int peer_port(int net, unsigned *port)
{
	struct sockaddr_storage ss = {0};
	socklen_t len = sizeof(ss);

	if (getpeername(net, (struct sockaddr *)&ss, &len) != 0)
		return -1;
	if (ss.ss_family == AF_INET)
		*port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	else if (ss.ss_family == AF_INET6)
		*port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	else
		return -1;
	return 0;
}

/* What the handshake agreed on, for starttls_last_trace(). */
static void trace_session(struct call *c)
{
	gnutls_datum_t alpn = {NULL, 0};
	char proto[256] = "";

	if (gnutls_alpn_get_selected_protocol(c->session, &alpn) == 0 &&
	    alpn.size < sizeof(proto)) {
		memcpy(proto, alpn.data, alpn.size);
		proto[alpn.size] = '\0';
	}
	tp_trace_session(gnutls_protocol_get_name(
	                         gnutls_protocol_get_version(c->session)),
	                 gnutls_ciphersuite_get(c->session), proto,
	                 c->server ? c->sni : c->sniname);
}

/* The session's peer chain through the policy (peerauth.h). */
static int authenticate(struct call *c)
{
	const gnutls_datum_t *certs;
	unsigned ncerts = 0, i;
	tlspool_span chain[16];

	trace_session(c);
	certs = gnutls_certificate_get_peers(c->session, &ncerts);
	if (certs == NULL)
		ncerts = 0;
	if (ncerts > sizeof(chain) / sizeof(chain[0]))
		ncerts = sizeof(chain) / sizeof(chain[0]);
	for (i = 0; i < ncerts; i++) {
		chain[i].data = certs[i].data;
		chain[i].len = certs[i].size;
	}
	c->pc.rt = c->rt;
	c->pc.server = c->server;
	c->pc.flags = c->flags;
	c->pc.chain = chain;
	c->pc.nchain = ncerts;
	c->pc.sniname = c->sniname;
	c->pc.port = c->port;
	c->pc.transport = c->datagram ? "udp" : "tcp";
	c->pc.deadline = c->deadline;
	c->pc.ref = c->ref;
	return tp_peer_authenticate(&c->pc);
}

/* The plugin's verdict on (local, remote), through the cache. */
static int authorize(struct call *c, int proto)
{
	tlspool_authz_request req;

	memset(&req, 0, sizeof(req));
	req.api = TLSPOOL_AUTHZ_API;
	req.local = c->myname != NULL ? c->myname : c->server ? c->sni : "";
	req.remote = c->pc.peer;
	req.role = c->server ? TLSPOOL_AUTHZ_SERVER : TLSPOOL_AUTHZ_CLIENT;
	req.protocol = proto;
	req.sni = c->server ? c->sni : c->sniname != NULL ? c->sniname : "";
	req.peer_key_sha256 =
	        c->pc.have_spki && c->pc.peer[0] ? c->pc.spki : NULL;
	if (tp_authz_check(tp_runtime_authz(c->rt), tp_runtime_cache(c->rt),
	                   c->rt->cfg, &req, c->flags, c->pc.cache_note,
	                   sizeof(c->pc.cache_note)) == 0)
		return 0;
	if (errno == EPERM)
		tp_set_class(STARTTLS_ERR_REFUSED);
	return -1;
}

/*
 * A cache that could not be used is reported by the call that met it:
 * a failure's detail says so too; after a success starttls_errstr() holds
 * it as a warning (the peer was validated online).
 */
static void cache_report(struct call *c, int rv)
{
	char detail[512];
	starttls_class cls = starttls_errclass();
	int e = errno;

	if (c->pc.cache_note[0] == '\0')
		return;
	if (rv < 0)
		snprintf(detail, sizeof(detail), "%s [%s]", starttls_errstr(),
		         c->pc.cache_note);
	else
		snprintf(detail, sizeof(detail),
		         "warning: %s; validated online", c->pc.cache_note);
	tp_failc(e, rv < 0 ? cls : STARTTLS_OK, "%s", detail);
}

/* --- the whole call --------------------------------------------------------
 */

/* The peer's identity into the caller's buffer, all or nothing. */
static int give_peername(struct call *c, char *peername, size_t peername_len)
{
	size_t need = strlen(c->pc.peer) + 1;

	if (peername == NULL)
		return 0;
	if (need > peername_len)
		return tp_fail(ENAMETOOLONG,
		               "the peer's identity %s needs %zu bytes, "
		               "peername has %zu",
		               c->pc.peer, need, peername_len);
	memcpy(peername, c->pc.peer, need);
	return 0;
}

/* Give the session and the network descriptor to the relay; the
 * plaintext end for the caller, or -1. */
static int hand_off(struct call *c)
{
	int pair[2], rv, off = 0, on = 1;
	tp_relay *r;

	/* Close-on-exec from the start.  A stream's descriptors stay as they
	 * are: the relay passes MSG_DONTWAIT on every call it makes on them,
	 * and the application's end is blocking.  A datagram's relay end and
	 * network descriptor must be non-blocking (GnuTLS's DTLS reads with
	 * plain recv()): the pair is made so, the application's end made
	 * blocking again, the network's made non-blocking, one ioctl each
	 * (docs/architecture.md, "Performance"). */
	if (c->have_pair) {
		pair[0] = c->pair[0];
		pair[1] = c->pair[1];
		c->have_pair = 0;
	} else if (socketpair(AF_UNIX,
	                      c->datagram ? SOCK_SEQPACKET | SOCK_CLOEXEC |
	                                            SOCK_NONBLOCK
	                                  : SOCK_STREAM | SOCK_CLOEXEC,
	                      0, pair) != 0) {
		return tp_fail(errno, "socketpair: %s", strerror(errno));
	}
	if (c->datagram && (ioctl(pair[0], FIONBIO, &off) != 0 ||
	                    ioctl(c->net, FIONBIO, &on) != 0)) {
		rv = errno;
		close(pair[0]);
		close(pair[1]);
		return tp_fail(rv, "ioctl FIONBIO: %s", strerror(rv));
	}
	r = tp_process_relay(c->rt->cfg->relay_threads);
	if (r == NULL) {
		close(pair[0]);
		close(pair[1]);
		return tp_fail(errno, "relay engine: %s", strerror(errno));
	}
	/* The relay owns the session and both descriptors from here on,
	 * whatever it answers; the session holds a reference to the
	 * configuration (its credentials), dropped by the release hook. */
	if (c->datagram)
		tp_relay_set_idle_timeout(r, c->rt->cfg->dtls_idle_timeout_ms);
	tp_transport_flush(&c->io);
	tp_transport_plain(c->session, c->net);
	tp_runtime_ref(c->rt);
	gnutls_session_set_ptr(c->session, c->rt);
	rv = tp_relay_add_pair(r, c->session, c->net, pair[1], pair[0],
	                       c->datagram, &c->io.ra);
	c->session = NULL;
	c->net = -1;
	if (rv != 0) {
		close(pair[0]);
		return tp_fail(errno, "relay engine: %s", strerror(errno));
	}
	return pair[0];
}

/* Steps 2 to 6 of the outline on c->net; the caller cleans up. */
static int negotiate(struct call *c, int proto, int *alert)
{
	if (check_args(c, proto) != 0)
		return -1;
	/* now: after the handshake a server that refused us may be gone */
	if (peer_port(c->net, &c->port) != 0)
		c->port = 0;
	if (c->server && c->datagram &&
	    tp_dtls_cookie_exchange(c->net, c->deadline, &c->prestate) != 0)
		return -1;
	if (start_session(c) != 0 || handshake(c) != 0)
		return -1;
	if (authenticate(c) != 0 ||
	    (!(c->flags & STARTTLS_NO_AUTHZ) && authorize(c, proto) != 0)) {
		*alert = alert_for_refusal();
		return -1;
	}
	return 0;
}

static int run(struct call *c, int fd, int proto, char *peername,
               size_t peername_len)
{
	int rv = -1, alert = -1, saved;

	tp_clear_error();
	tp_trace_reset();
	/* the whole call, however slowly the peer sends */
	c->deadline = tp_mono_ms() + c->rt->cfg->handshake_timeout_ms;
	/* 1. consume fd */
	c->net = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	saved = errno;
	close(fd);
	if (c->net < 0) {
		tp_fail(saved == EBADF ? EINVAL : saved, "fd %d: %s", fd,
		        strerror(saved));
		tp_runtime_release(c->rt);
		return -1;
	}
	if (negotiate(c, proto, &alert) == 0 &&
	    give_peername(c, peername, peername_len) == 0)
		rv = hand_off(c);
	saved = errno;
	cache_report(c, rv);
	if (c->session != NULL) {
		if (alert >= 0)
			gnutls_alert_send(c->session, GNUTLS_AL_FATAL,
			                  (gnutls_alert_description_t)alert);
		gnutls_deinit(c->session);
	}
	if (c->net >= 0) {
		shutdown(c->net, SHUT_RDWR);
		close(c->net);
	}
	if (c->have_pair) {
		close(c->pair[0]);
		close(c->pair[1]);
	}
	tp_ahead_drop(&c->io.ra);
	tp_runtime_release(c->rt);
	errno = saved;
	return rv;
}

/* A name without its final dot: SNI carries none (RFC 6066 section 3),
 * and identities are compared without it. */
static const char *undotted(const char *name, char *buf, size_t len)
{
	size_t n;

	if (name == NULL)
		return NULL;
	n = strlen(name);
	if (n == 0 || name[n - 1] != '.' || n >= len)
		return name;
	memcpy(buf, name, n - 1);
	buf[n - 1] = '\0';
	return buf;
}

/* The runtime of a call: the context's, or the process default
 * ($TLSPOOL_CONFIG or the installed file, read again when it changes). */
static struct tp_runtime *call_runtime(starttls_ctx *ctx)
{
	char err[512];
	struct tp_runtime *rt;

	if (ctx != NULL) {
		tp_runtime_ref(ctx->rt);
		return ctx->rt;
	}
	rt = tp_runtime_acquire(err, sizeof(err));
	if (rt == NULL)
		tp_failc(errno, STARTTLS_ERR_CONFIG, "%s", err);
	return rt;
}

/* A call that cannot start still consumes fd. */
static int refuse_fd(int fd)
{
	int e = errno;

	tp_trace_reset();
	shutdown(fd, SHUT_RDWR);
	close(fd);
	errno = e;
	return -1;
}

/*
 * The pool (pool.h): with TLSPOOL_SOCKET set, or [pool] socket in the
 * call's configuration, tlspoold runs the whole call.  1 when the call
 * was decided here (*rv its result; fd consumed), 0 to run it in the
 * process with c->rt taken.
 */
static int pool_hook(struct call *c, starttls_ctx *ctx, int fd, int proto,
                     char *peername, size_t peername_len, int *rv)
{
	const char *sock = tp_pool_socket_env();
	struct tp_pool_args a = {
	        c->server,       fd,         proto,        c->flags,
	        c->myname,       c->sniname, c->checksni,  c->checksni_fn,
	        c->checksni_arg, peername,   peername_len, 0};

	if (sock == NULL) {
		c->rt = call_runtime(ctx);
		if (c->rt == NULL) {
			*rv = refuse_fd(fd);
			return 1;
		}
		sock = tp_pool_socket_cfg(c->rt->cfg);
		if (sock == NULL)
			return 0;
		a.timeout_ms = c->rt->cfg->handshake_timeout_ms;
	}
	tp_clear_error();
	tp_trace_reset();
	*rv = tp_pool_call(sock, &a);
	if (c->rt != NULL) {
		int e = errno;

		tp_runtime_release(c->rt);
		errno = e;
	}
	return 1;
}

const struct tp_config *tp_ctx_config(const starttls_ctx *ctx)
{
	return ctx->rt->cfg;
}

int starttls_ctx_client(starttls_ctx *ctx, int fd, int proto,
                        const char *myname, int flags, const char *sniname,
                        char *peername, size_t peername_len)
{
	char my[320], sni[256];
	struct call c;
	int rv;

	memset(&c, 0, sizeof(c));
	c.flags = flags;
	c.myname = undotted(myname, my, sizeof(my));
	c.sniname = undotted(sniname, sni, sizeof(sni));
	if (pool_hook(&c, ctx, fd, proto, peername, peername_len, &rv))
		return rv;
	return run(&c, fd, proto, peername, peername_len);
}

int starttls_ctx_server(starttls_ctx *ctx, int fd, int proto,
                        const char *myname, int flags,
                        starttls_sni_fn *checksni, void *arg, char *peername,
                        size_t peername_len)
{
	char my[320];
	struct call c;
	int rv;

	memset(&c, 0, sizeof(c));
	c.server = 1;
	c.flags = flags;
	c.myname = undotted(myname, my, sizeof(my));
	c.checksni_fn = checksni;
	c.checksni_arg = arg;
	if (pool_hook(&c, ctx, fd, proto, peername, peername_len, &rv))
		return rv;
	return run(&c, fd, proto, peername, peername_len);
}

/* The names of a starttls_dane_ref: host names (the peer may also be a
 * user@domain); 0 or -1 with the failure recorded. */
static int check_ref(const starttls_dane_ref *ref, int proto)
{
	if (proto != IPPROTO_TCP)
		return tp_fail(EINVAL, "a starttls_dane_ref needs "
		                       "IPPROTO_TCP");
	if (ref == NULL || ref->base == NULL ||
	    tlspool_check_domain(ref->base, 0) != 0)
		return tp_fail(EINVAL,
		               "starttls_dane_ref: base \"%.100s\" "
		               "is not a host name",
		               ref && ref->base ? ref->base : "(null)");
	if (ref->port > 65535 || (ref->nnames > 0 && ref->names == NULL))
		return tp_fail(EINVAL, "starttls_dane_ref: bad port or names");
	for (size_t i = 0; i < ref->nnames; i++)
		if (ref->names[i] == NULL ||
		    tlspool_check_domain(ref->names[i], 0) != 0)
			return tp_fail(EINVAL,
			               "starttls_dane_ref: name \"%.100s\" "
			               "is not a host name",
			               ref->names[i] ? ref->names[i]
			                             : "(null)");
	if (ref->peer != NULL && tp_check_identity(ref->peer) != 0)
		return tp_fail(EINVAL,
		               "starttls_dane_ref: peer \"%.100s\" is not a "
		               "domain or user@domain",
		               ref->peer);
	return 0;
}

int starttls_ctx_client_dane(starttls_ctx *ctx, int fd, int proto,
                             const char *myname, int flags, const char *sniname,
                             const starttls_dane_ref *ref, char *peername,
                             size_t peername_len)
{
	char my[320], sni[256];
	struct call c;

	memset(&c, 0, sizeof(c));
	c.flags = flags;
	c.myname = undotted(myname, my, sizeof(my));
	c.sniname = undotted(sniname, sni, sizeof(sni));
	c.ref = ref;
	tp_clear_error();
	if (check_ref(ref, proto) != 0)
		return refuse_fd(fd);
	if (tp_pool_socket(NULL) != NULL) {
		tp_fail(EPROTONOSUPPORT, "starttls_ctx_client_dane: not "
		                         "through tlspoold in this version");
		return refuse_fd(fd);
	}
	c.rt = call_runtime(ctx);
	if (c.rt == NULL)
		return refuse_fd(fd);
	if (tp_pool_socket(c.rt->cfg) != NULL) {
		tp_runtime_release(c.rt);
		tp_fail(EPROTONOSUPPORT, "starttls_ctx_client_dane: not "
		                         "through tlspoold in this version");
		return refuse_fd(fd);
	}
	return run(&c, fd, proto, peername, peername_len);
}

int starttls_client(int fd, int proto, char *myname, int flags, char *sniname,
                    char *peername, size_t peername_len)
{
	return starttls_ctx_client(NULL, fd, proto, myname, flags, sniname,
	                           peername, peername_len);
}

int starttls_server(int fd, int proto, char *myname, int flags,
                    int checksni(char *), char *peername, size_t peername_len)
{
	char my[320];
	struct call c;
	int rv;

	memset(&c, 0, sizeof(c));
	c.server = 1;
	c.flags = flags;
	c.myname = undotted(myname, my, sizeof(my));
	c.checksni = checksni;
	if (pool_hook(&c, NULL, fd, proto, peername, peername_len, &rv))
		return rv;
	return run(&c, fd, proto, peername, peername_len);
}

/* --- contexts --------------------------------------------------------------
 */

starttls_ctx *starttls_ctx_new(const char *path)
{
	char err[512];
	starttls_ctx *ctx;

	tp_clear_error();
	ctx = calloc(1, sizeof(*ctx));
	if (ctx == NULL) {
		tp_fail(ENOMEM, "out of memory");
		return NULL;
	}
	ctx->rt = path == NULL ? tp_runtime_acquire(err, sizeof(err))
	                       : tp_runtime_load(path, 0, err, sizeof(err));
	if (ctx->rt == NULL) {
		tp_failc(errno ? errno : EINVAL, STARTTLS_ERR_CONFIG, "%s",
		         err);
		free(ctx);
		return NULL;
	}
	return ctx;
}

/* A priority string GnuTLS takes, checked when the context is made (an
 * override given on a command line is wrong before any connection). */
static int check_priority(const char *prio)
{
	gnutls_priority_t p;
	const char *errpos = NULL;
	int r = gnutls_priority_init(&p, prio, &errpos);

	if (r < 0)
		return tp_failc(EINVAL, STARTTLS_ERR_CONFIG,
		                "[tls] priority \"%s\": %s at \"%s\"", prio,
		                gnutls_strerror(r), errpos ? errpos : "");
	gnutls_priority_deinit(p);
	return 0;
}

starttls_ctx *starttls_ctx_new_with(const char *path,
                                    const char *const *overrides)
{
	const char *env = getenv("TLSPOOL_CONFIG");
	char err[512];
	starttls_ctx *ctx;
	int may_be_missing = 0;

	if (overrides == NULL)
		return starttls_ctx_new(path);
	tp_clear_error();
	ctx = calloc(1, sizeof(*ctx));
	if (ctx == NULL) {
		tp_fail(ENOMEM, "out of memory");
		return NULL;
	}
	/* path NULL: the file the process default reads, once */
	if (path == NULL && env != NULL && env[0] != '\0') {
		path = env;
	} else if (path == NULL) {
		path = tlspool_config_default_path();
		may_be_missing = 1;
	}
	errno = 0;
	ctx->rt = tp_runtime_load_with(path, may_be_missing, overrides, err,
	                               sizeof(err));
	if (ctx->rt == NULL) {
		tp_failc(errno ? errno : EINVAL, STARTTLS_ERR_CONFIG, "%s",
		         err);
		free(ctx);
		return NULL;
	}
	if (check_priority(ctx->rt->cfg->priority) != 0) {
		starttls_ctx_free(ctx);
		return NULL;
	}
	return ctx;
}

tlspool_dns *starttls_ctx_resolver(starttls_ctx *ctx)
{
	char err[512];
	tlspool_dns *dns;

	tp_clear_error();
	if (ctx == NULL) {
		tp_failc(EINVAL, STARTTLS_ERR_ARGUMENT, "no context given");
		return NULL;
	}
	errno = 0;
	dns = tp_runtime_resolver(ctx->rt, err, sizeof(err));
	if (dns == NULL)
		tp_failc(errno ? errno : EINVAL, STARTTLS_ERR_CONFIG, "%s",
		         err);
	return dns;
}

int starttls_ctx_identity(starttls_ctx *ctx, const char *name)
{
	gnutls_certificate_credentials_t creds;
	struct tp_runtime *rt;
	char buf[320];
	int r, e;

	tp_clear_error();
	if (name == NULL || name[0] == '\0') {
		tp_failc(EINVAL, STARTTLS_ERR_ARGUMENT,
		         "no identity name given");
		return -1;
	}
	rt = call_runtime(ctx);
	if (rt == NULL)
		return -1;
	r = tp_cred_get(tp_runtime_creds(rt), rt->cfg,
	                undotted(name, buf, sizeof(buf)), &creds);
	e = errno;
	tp_runtime_release(rt);
	errno = e;
	return r == 0 ? 0 : -1;
}

struct tp_runtime *tp_ctx_runtime(starttls_ctx *ctx)
{
	return ctx != NULL ? ctx->rt : NULL;
}

void starttls_ctx_free(starttls_ctx *ctx)
{
	if (ctx == NULL)
		return;
	tp_runtime_release(ctx->rt);
	free(ctx);
}
