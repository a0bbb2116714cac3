/*
 * starttls_client() and starttls_server() over TCP, and DTLS over UDP
 * (the server first runs the stateless cookie exchange, see
 * dtls_cookie_exchange(); the returned descriptor is then SOCK_SEQPACKET).
 *
 * Outline of one call (DESIGN section 1, data flow):
 *   1. Consume fd at once: the work goes on a private duplicate and the
 *      caller's number is closed, so every later exit path has one
 *      descriptor to shut down and close.
 *   2. Check the arguments (protocol, flags of the role, names, socket
 *      type) and acquire the configuration.
 *   3. Credentials: the client's for myname (unless LOCALCERT_NONE); the
 *      server's chosen after the ClientHello from myname or the SNI,
 *      with checksni consulted.  The ACL is checked before a key is used.
 *   4. The GnuTLS handshake, blocking, bounded by handshake_timeout_ms.
 *   5. The peer: its certificate chain, its claimed identity, the TLSA
 *      RRset looked up with DNSSEC, the DANE matcher's verdict.  Every
 *      DNS failure fails closed; a proven absence of DANE records fails
 *      too unless [validation] pkix_fallback allows PKIX.
 *      The validation cache (cache.c) answers first when it holds a
 *      fresh result for (identity, owner, SHA2-256 of the peer's key);
 *      a result reached online from secure DNS is stored.
 *   6. The NO_REMOTE_* flags, authorization (authz.c), then the peer
 *      name into the caller's buffer (ENAMETOOLONG before anything is
 *      written).
 *   7. A socketpair: one end to the relay engine with the session and
 *      the network descriptor, the other end returned.
 */
#include <errno.h>
#include <fcntl.h>
#include <gnutls/dtls.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "authz.h"
#include "cache.h"
#include "config.h"
#include "cred.h"
#include "relay.h"
#include "tlspool/dane.h"

#define ROLE_FLAGS_CLIENT                                                      \
	(STARTTLS_LOCALCERT_NONE | STARTTLS_NO_REMOTE_USER |                   \
	 STARTTLS_NO_REMOTE_DOMAIN | STARTTLS_NO_CACHE_READ |                  \
	 STARTTLS_NO_CACHE_WRITE | STARTTLS_NO_AUTHZ)
#define ROLE_FLAGS_SERVER                                                      \
	(STARTTLS_PEERCERT_OPTIONAL | STARTTLS_PEERCERT_NONE |                 \
	 STARTTLS_NO_REMOTE_USER | STARTTLS_NO_REMOTE_DOMAIN |                 \
	 STARTTLS_NO_CACHE_READ | STARTTLS_NO_CACHE_WRITE | STARTTLS_NO_AUTHZ)

struct call {
	int server;
	int net;      /* our duplicate of the caller's fd */
	int datagram; /* IPPROTO_UDP: DTLS, see dtls_cookie_exchange() */
	gnutls_dtls_prestate_st prestate; /* the server's verified cookie */
	int flags;
	const char *myname;
	int (*checksni)(char *);
	struct tp_config *cfg;
	gnutls_session_t session;
	char sni[256];
	unsigned port; /* the peer's, for the TLSA owner name; 0 unknown */
	int cb_errno;  /* a failure inside the ClientHello hook */
	char peer[320];
	unsigned char spki[32]; /* SHA2-256 of the peer's SPKI ... */
	int have_spki;          /* ... when known */
	char cache_note[256];   /* why the cache could not be used */
};

/* --- the relay engine, one per process ---------------------------------- */

static pthread_mutex_t relay_lock = PTHREAD_MUTEX_INITIALIZER;
static tp_relay *relay;

/* At exit, what the application wrote and closed still goes out, with
 * close_notify (bounded: a peer that reads nothing cannot hold the
 * process). */
static void flush_at_exit(void)
{
	tp_relay_flush(relay, 5000);
}

/* A relayed session's credentials belong to its configuration, which is
 * held until the session is gone (see run()). */
static void release_config(void *cfg)
{
	tp_config_release(cfg);
}

/* A child made by fork() has none of the relay's threads: it starts a
 * relay of its own on its first call.  (The parent's relayed descriptors
 * stay open in the child until it exits, as with any fork.) */
/* volatile: written only, it must still exist for leak checkers to see */
static tp_relay *volatile parents_relay;

static void forget_relay(void)
{
	parents_relay = relay;
	relay = NULL;
	pthread_mutex_init(&relay_lock, NULL);
}

static void register_atfork(void)
{
	pthread_atfork(NULL, NULL, forget_relay);
}

static tp_relay *get_relay(unsigned nthreads)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	tp_relay *r;

	pthread_once(&once, register_atfork);
	pthread_mutex_lock(&relay_lock);
	if (relay == NULL) {
		relay = tp_relay_new(nthreads);
		if (relay != NULL) {
			tp_relay_set_release_hook(relay, release_config);
			atexit(flush_at_exit);
		}
	}
	r = relay;
	pthread_mutex_unlock(&relay_lock);
	return r;
}

/* --- the diagnostic trace (starttls_last_trace) -------------------------- */

struct trace_store {
	starttls_trace pub;
	tlspool_span chain[16];
	char owner[320];
	tlspool_dns_answer *dns;
	tlspool_dane_result *dane;
	tlspool_openpgp_result *openpgp;
};

static pthread_key_t trace_key;
static pthread_once_t trace_once = PTHREAD_ONCE_INIT;

static void trace_clear(struct trace_store *t)
{
	size_t i;

	for (i = 0; i < t->pub.nchain; i++)
		free((void *)t->chain[i].data);
	tlspool_dns_answer_free(t->dns);
	tlspool_dane_result_free(t->dane);
	tlspool_openpgp_result_free(t->openpgp);
	memset(t, 0, sizeof(*t));
	t->pub.chain = t->chain;
}

static void trace_free(void *p)
{
	if (p != NULL)
		trace_clear(p);
	free(p);
}

static void trace_key_init(void)
{
	pthread_key_create(&trace_key, trace_free);
}

/* This thread's trace, emptied; NULL only without memory. */
static struct trace_store *trace_reset(void)
{
	struct trace_store *t;

	pthread_once(&trace_once, trace_key_init);
	t = pthread_getspecific(trace_key);
	if (t == NULL) {
		t = calloc(1, sizeof(*t));
		if (t == NULL || pthread_setspecific(trace_key, t) != 0) {
			free(t);
			return NULL;
		}
	}
	trace_clear(t);
	return t;
}

const starttls_trace *starttls_last_trace(void)
{
	static const starttls_trace empty;
	struct trace_store *t;

	pthread_once(&trace_once, trace_key_init);
	t = pthread_getspecific(trace_key);
	return t != NULL ? &t->pub : &empty;
}

/* Keep copies of the peer's certificates for the trace. */
static void trace_chain(const tlspool_span *chain, size_t n)
{
	struct trace_store *t = pthread_getspecific(trace_key);
	size_t i;

	for (i = 0; t != NULL && i < n && i < 16; i++) {
		unsigned char *p = malloc(chain[i].len ? chain[i].len : 1);

		if (p == NULL)
			break;
		memcpy(p, chain[i].data, chain[i].len);
		t->chain[i].data = p;
		t->chain[i].len = chain[i].len;
		t->pub.nchain = i + 1;
	}
}

/* Hand the lookup and the matcher's result over to the trace (which then
 * owns them); without a trace they are freed. */
static void trace_keep(const char *owner, tlspool_dns_answer *dns,
                       tlspool_dane_result *dane)
{
	struct trace_store *t = pthread_getspecific(trace_key);

	if (t == NULL) {
		tlspool_dns_answer_free(dns);
		tlspool_dane_result_free(dane);
		return;
	}
	snprintf(t->owner, sizeof(t->owner), "%s", owner);
	t->pub.owner = t->owner;
	tlspool_dns_answer_free(t->dns); /* a second lookup replaces it */
	tlspool_dane_result_free(t->dane);
	t->dns = dns;
	t->pub.dns = dns;
	t->dane = dane;
	t->pub.dane = dane;
}

/* The cache answered: no lookup, no matcher. */
static void trace_cached(const char *owner)
{
	struct trace_store *t = pthread_getspecific(trace_key);

	if (t == NULL)
		return;
	snprintf(t->owner, sizeof(t->owner), "%s", owner);
	t->pub.owner = t->owner;
	t->pub.from_cache = 1;
}

/* The OPENPGPKEY matcher's result joins the trace (which owns it). */
static void trace_keep_openpgp(tlspool_openpgp_result *res)
{
	struct trace_store *t = pthread_getspecific(trace_key);

	if (t == NULL) {
		tlspool_openpgp_result_free(res);
		return;
	}
	tlspool_openpgp_result_free(t->openpgp);
	t->openpgp = res;
	t->pub.openpgp = res;
}

/* --- failures ------------------------------------------------------------ */

/* Map a handshake failure to errno, with its detail. */
static int handshake_failed(struct call *c, int r)
{
	const char *what = c->server ? "client" : "server";

	if (c->cb_errno != 0) {
		/* RFC 6066 section 3: tell the client why, rather than just
		 * closing; GnuTLS does not send this alert itself. */
		gnutls_alert_send(c->session, GNUTLS_AL_FATAL,
		                  c->cb_errno == EPERM
		                          ? GNUTLS_A_ACCESS_DENIED
		                          : GNUTLS_A_UNRECOGNIZED_NAME);
		errno = c->cb_errno;
		return -1; /* the hook recorded the detail */
	}
	switch (r) {
	case GNUTLS_E_TIMEDOUT:
		return tp_fail(ETIMEDOUT,
		               "TLS handshake did not finish within %u ms",
		               c->cfg->handshake_timeout_ms);
	case GNUTLS_E_PREMATURE_TERMINATION:
	case GNUTLS_E_PULL_ERROR:
	case GNUTLS_E_PUSH_ERROR:
	case GNUTLS_E_UNEXPECTED_PACKET_LENGTH:
		return tp_fail(ECONNRESET,
		               "the %s closed the connection during the TLS "
		               "handshake (%s)",
		               what, gnutls_strerror(r));
	case GNUTLS_E_NO_CERTIFICATE_FOUND:
	case GNUTLS_E_CERTIFICATE_REQUIRED:
		return tp_fail(EKEYREJECTED, "the %s presented no certificate",
		               what);
	case GNUTLS_E_FATAL_ALERT_RECEIVED:
	case GNUTLS_E_WARNING_ALERT_RECEIVED:
		return tp_fail(
		        EPROTO, "the %s sent the TLS alert \"%s\"", what,
		        gnutls_alert_get_name(gnutls_alert_get(c->session)));
	}
	return tp_fail(EPROTO, "TLS handshake failed: %s", gnutls_strerror(r));
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

static int check_args(struct call *c, int proto, const char *sniname)
{
	int type = 0, probe;
	socklen_t len = sizeof(type);

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
	if (c->flags & ~(c->server ? ROLE_FLAGS_SERVER : ROLE_FLAGS_CLIENT))
		return tp_fail(EINVAL, "flags 0x%x: unknown, or not for a %s",
		               (unsigned)c->flags &
		                       ~(c->server ? ROLE_FLAGS_SERVER
		                                   : ROLE_FLAGS_CLIENT),
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
	if (sniname != NULL && tlspool_check_domain(sniname, 0) != 0)
		return tp_fail(EINVAL, "sniname \"%.100s\": not a host name",
		               sniname);
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

/* The server picks its identity once the ClientHello is in: from myname,
 * or from the SNI; checksni sees every SNI (RFC 6066 section 3). */
static int on_client_hello(gnutls_session_t s)
{
	struct call *c = gnutls_session_get_ptr(s);
	gnutls_certificate_credentials_t creds;
	size_t len = sizeof(c->sni) - 1;
	unsigned type;
	const char *name;

	c->sni[0] = '\0';
	if (gnutls_server_name_get(s, c->sni, &len, &type, 0) == 0 &&
	    type == GNUTLS_NAME_DNS)
		c->sni[len] = '\0';
	else
		c->sni[0] = '\0';
	if (c->sni[0] != '\0' && tlspool_check_domain(c->sni, 0) != 0) {
		/* checksni and the identities see host names only */
		tp_fail(ENOKEY, "SNI \"%.100s\" is not a host name", c->sni);
		goto refuse;
	}
	if (c->sni[0] != '\0' && c->checksni != NULL && !c->checksni(c->sni)) {
		tp_fail(EPERM, "SNI \"%s\" refused by checksni", c->sni);
		goto refuse;
	}
	name = c->myname != NULL ? c->myname : c->sni;
	if (name[0] == '\0') {
		tp_fail(ENOKEY, "the client sent no SNI and no myname was "
		                "given");
		goto refuse;
	}
	if (tp_cred_get(c->cfg, name, &creds) != 0)
		goto refuse;
	gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, creds);
	return 0;
refuse:
	c->cb_errno = errno;
	return GNUTLS_E_UNRECOGNIZED_NAME;
}

/* --- DTLS ----------------------------------------------------------------- */

/* The largest UDP payload we send: the path MTU the kernel knows for the
 * connected peer (IP_MTU), less the IP and UDP headers, and never above
 * what an Ethernet path carries unfragmented (loopback says 65536, and a
 * route's MTU says nothing of the hops behind it). */
#define DTLS_MAX_MTU 1500

static unsigned dtls_mtu(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int mtu = 0, v6 = 0;
	socklen_t ml = sizeof(mtu);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
		v6 = ss.ss_family == AF_INET6;
	if ((v6 ? getsockopt(fd, IPPROTO_IPV6, IPV6_MTU, &mtu, &ml)
	        : getsockopt(fd, IPPROTO_IP, IP_MTU, &mtu, &ml)) != 0 ||
	    mtu <= 0 || mtu > DTLS_MAX_MTU)
		mtu = DTLS_MAX_MTU;
	if (mtu < 576)
		mtu = 576; /* RFC 791: every IPv4 host takes 576 bytes */
	return (unsigned)mtu - (v6 ? 48 : 28);
}

/* MTU and retransmission: the first retransmission after 1 s (RFC 6347
 * section 4.2.4.1), doubling, the whole handshake bounded by
 * handshake_timeout_ms.  The server's cookie exchange is already done. */
static void dtls_setup(struct call *c)
{
	gnutls_dtls_set_mtu(c->session, dtls_mtu(c->net));
	gnutls_dtls_set_timeouts(c->session, 1000,
	                         c->cfg->handshake_timeout_ms);
	if (c->server)
		gnutls_dtls_prestate_set(c->session, &c->prestate);
}

/* One random key per process for the stateless cookies. */
static gnutls_datum_t cookie_key;
static int cookie_key_err;
static pthread_once_t cookie_once = PTHREAD_ONCE_INIT;

static void cookie_key_init(void)
{
	cookie_key_err =
	        gnutls_key_generate(&cookie_key, GNUTLS_COOKIE_KEY_SIZE);
}

static ssize_t cookie_push(gnutls_transport_ptr_t p, const void *data,
                           size_t len)
{
	return send((int)(intptr_t)p, data, len, MSG_NOSIGNAL);
}

static long long mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/*
 * RFC 6347 section 4.2.1: before any state is kept for the client, its
 * ClientHello must return the cookie of a HelloVerifyRequest, which
 * proves that it receives at its address.  Nothing is allocated here: the
 * datagram is peeked at on the stack, answered statelessly and dropped;
 * the one with a valid cookie stays in the socket for the handshake.
 */
static int dtls_cookie_exchange(struct call *c)
{
	unsigned char buf[4096];
	struct sockaddr_storage peer;
	socklen_t plen = sizeof(peer);
	long long deadline = mono_ms() + c->cfg->handshake_timeout_ms;
	int fl = fcntl(c->net, F_GETFL);

	pthread_once(&cookie_once, cookie_key_init);
	if (cookie_key_err < 0)
		return tp_fail(ENOMEM, "DTLS cookie key: %s",
		               gnutls_strerror(cookie_key_err));
	if (fl >= 0 && (fl & O_NONBLOCK))
		fcntl(c->net, F_SETFL, fl & ~O_NONBLOCK);
	memset(&peer, 0, sizeof(peer));
	if (getpeername(c->net, (struct sockaddr *)&peer, &plen) != 0)
		return tp_fail(EINVAL, "getpeername: %s", strerror(errno));
	for (;;) {
		long long left = deadline - mono_ms();
		struct pollfd p = {c->net, POLLIN, 0};
		ssize_t n;
		int r;

		if (left <= 0)
			return tp_fail(
			        ETIMEDOUT,
			        "no DTLS ClientHello with a valid cookie "
			        "within %u ms",
			        c->cfg->handshake_timeout_ms);
		r = poll(&p, 1, (int)left);
		if (r < 0 && errno != EINTR)
			return tp_fail(errno, "poll: %s", strerror(errno));
		if (r <= 0)
			continue;
		n = recv(c->net, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
		if (n < 0) {
			/* ECONNREFUSED: an ICMP error for an earlier
			 * HelloVerifyRequest; the client may still come. */
			if (errno == EAGAIN || errno == EINTR ||
			    errno == ECONNREFUSED)
				continue;
			return tp_fail(ECONNRESET, "recv: %s", strerror(errno));
		}
		memset(&c->prestate, 0, sizeof(c->prestate));
		r = gnutls_dtls_cookie_verify(&cookie_key, &peer, plen, buf,
		                              (size_t)n, &c->prestate);
		if (r == 0)
			return 0;
		(void)!recv(c->net, buf, 1, MSG_DONTWAIT); /* drop it */
		if (r == GNUTLS_E_BAD_COOKIE)
			gnutls_dtls_cookie_send(
			        &cookie_key, &peer, plen, &c->prestate,
			        (gnutls_transport_ptr_t)(intptr_t)c->net,
			        cookie_push);
		/* anything else (not a ClientHello): ignored */
	}
}

static int start_session(struct call *c, const char *sniname)
{
	gnutls_certificate_credentials_t creds = NULL;
	const char *errpos = NULL;
	int r;

	if (!c->server && c->myname != NULL &&
	    !(c->flags & STARTTLS_LOCALCERT_NONE)) {
		if (tp_cred_get(c->cfg, c->myname, &creds) != 0)
			return -1;
	} else if (!c->server) {
		if (tp_cred_anonymous(c->cfg, &creds) != 0)
			return -1;
	}
	/* GNUTLS_NO_SIGNAL: a peer that vanishes must not raise SIGPIPE in
	 * the application's process. */
	r = gnutls_init(&c->session,
	                (c->server ? GNUTLS_SERVER : GNUTLS_CLIENT) |
	                        GNUTLS_NO_SIGNAL |
	                        (c->datagram ? GNUTLS_DATAGRAM : 0));
	if (r < 0)
		return tp_fail(ENOMEM, "gnutls_init: %s", gnutls_strerror(r));
	gnutls_session_set_ptr(c->session, c);
	r = gnutls_priority_set_direct(c->session, c->cfg->priority, &errpos);
	if (r < 0)
		return tp_fail(EINVAL, "[tls] priority \"%s\": %s at \"%s\"",
		               c->cfg->priority, gnutls_strerror(r),
		               errpos ? errpos : "");
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
		if (sniname != NULL)
			gnutls_server_name_set(c->session, GNUTLS_NAME_DNS,
			                       sniname, strlen(sniname));
	}
	gnutls_transport_set_int(c->session, c->net);
	gnutls_handshake_set_timeout(c->session, c->cfg->handshake_timeout_ms);
	if (c->datagram)
		dtls_setup(c);
	return 0;
}

static int handshake(struct call *c)
{
	int r, fl = fcntl(c->net, F_GETFL);

	/* The handshake blocks (bounded by its timeout); the relay makes the
	 * descriptor non-blocking afterwards. */
	if (fl >= 0 && (fl & O_NONBLOCK))
		fcntl(c->net, F_SETFL, fl & ~O_NONBLOCK);
	do
		r = gnutls_handshake(c->session);
	while (r < 0 && !gnutls_error_is_fatal(r));
	return r < 0 ? handshake_failed(c, r) : 0;
}

/* --- the peer ------------------------------------------------------------ */

/* What an online validation tells the cache. */
struct online {
	int cacheable; /* reached from secure DNS */
	uint32_t ttl;  /* the RRset's (smallest along a CNAME chain) */
	time_t rrsig;  /* earliest RRSIG expiration, 0 none */
	int usage;     /* of the record that matched, or -1 */
};

/* Fetch the TLSA (or SMIMEA) RRset at owner and run the matcher over the
 * chain. */
static int rrset_online(struct call *c, uint16_t type, const char *owner,
                        const char *refname, const tlspool_span *chain,
                        size_t nchain, struct online *o)
{
	const char *tn = tlspool_rr_type_name(type);
	char err[256];
	tlspool_dns *dns = tp_config_resolver(c->cfg, err, sizeof(err));
	tlspool_dns_answer *ans = NULL;
	tlspool_dane_result *res = NULL;
	tlspool_tlsa *tlsa = NULL;
	tlspool_dane_input in;
	size_t i, n = 0;
	int rv = -1;

	if (dns == NULL)
		return tp_fail(EINVAL, "[dns]: %s", err);
	if (tlspool_dns_lookup(dns, owner, type, &ans, err, sizeof(err)) != 0)
		return tp_fail(errno, "%s", err);
	if (ans->verdict == TLSPOOL_DNS_TIMEOUT) {
		tp_fail(ETIMEDOUT, "%s: %s lookup timed out (%s)", ans->owner,
		        tn, ans->detail);
		goto out;
	}
	if (tlspool_dns_verdict_is_error(ans->verdict)) {
		tp_fail(EKEYREJECTED, "%s: %s RRset is %s (%s)", ans->owner, tn,
		        tlspool_dns_verdict_name(ans->verdict), ans->detail);
		goto out;
	}
	tlsa = calloc(ans->nrr ? ans->nrr : 1, sizeof(*tlsa));
	if (tlsa == NULL) {
		tp_fail(ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < ans->nrr; i++)
		if (tlspool_tlsa_parse(ans->rr[i].rdata, ans->rr[i].rdlen,
		                       &tlsa[n]) == 0)
			n++;
	memset(&in, 0, sizeof(in));
	in.chain = chain;
	in.nchain = nchain;
	in.tlsa = tlsa;
	in.ntlsa = n;
	in.dns = ans->verdict;
	in.dns_detail = ans->detail;
	in.names = &refname;
	in.nnames = 1;
	in.now = time(NULL);
	in.trust = NULL; /* PKIX usages 0/1 need a store: see pkix_fallback */
	if (tlspool_dane_match(&in, &res, err, sizeof(err)) != 0) {
		tp_fail(errno, "DANE: %s", err);
		goto out;
	}
	o->ttl = ans->ttl;
	o->rrsig = ans->rrsig_expiration;
	o->usage = res->matched >= 0 && (size_t)res->matched < n
	                   ? tlsa[res->matched].usage
	                   : -1;
	/* Only secure DNS may be remembered (DESIGN section 4); among the
	 * failures only those that secure DNS proves. */
	o->cacheable = ans->verdict == TLSPOOL_DNS_SECURE ||
	               ans->verdict == TLSPOOL_DNS_SECURE_NODATA ||
	               ans->verdict == TLSPOOL_DNS_SECURE_NXDOMAIN;
	if (res->verdict != TLSPOOL_DANE_AUTHENTICATED &&
	    res->verdict != TLSPOOL_DANE_NO_MATCH &&
	    res->verdict != TLSPOOL_DANE_NO_USABLE &&
	    res->verdict != TLSPOOL_DANE_NO_RECORDS)
		o->cacheable = 0;
	switch (res->verdict) {
	case TLSPOOL_DANE_AUTHENTICATED:
		rv = 0;
		break;
	case TLSPOOL_DANE_NO_RECORDS:
	case TLSPOOL_DANE_INSECURE:
	case TLSPOOL_DANE_NO_USABLE:
		tp_fail(EKEYREJECTED,
		        "%s: %s; no DANE authentication, and [validation] "
		        "pkix_fallback is %s",
		        ans->owner, res->reason,
		        c->cfg->pkix_fallback ? "not available in this version"
		                              : "off");
		break;
	default:
		tp_fail(EKEYREJECTED, "%s: %s", ans->owner, res->reason);
	}
out:
	free(tlsa);
	trace_keep(owner, ans, res);
	return rv;
}

/*
 * When an authentication expires: at the RRset's TTL, its earliest
 * RRSIG expiration, and (cache.c) max_ttl.  A record that constrains a
 * certificate rather than just the key (usages 0-2: dates are checked)
 * holds no longer than the chain's earliest notAfter.
 */
static time_t expiry_of(const struct online *o, const tlspool_span *chain,
                        size_t nchain, time_t now)
{
	time_t exp = now + (time_t)o->ttl;
	tlspool_x509_info x;
	size_t i;

	if (o->rrsig != 0 && o->rrsig < exp)
		exp = o->rrsig;
	for (i = 0; o->usage != 3 && i < nchain; i++) {
		if (tlspool_x509_describe(&chain[i], &x) != 0)
			return now; /* nothing to keep */
		if (x.not_after < exp)
			exp = x.not_after;
	}
	return exp;
}

/*
 * rrset_online() behind the validation cache, keyed by (refname, owner,
 * type, SHA2-256 of the end entity's SPKI).  A fresh positive entry
 * authenticates without DNS; a fresh negative one ([cache] negative_ttl)
 * fails without DNS; anything else goes online and stores its result.
 */
static int rrset_check(struct call *c, uint16_t type, const char *owner,
                       const char *refname, const tlspool_span *chain,
                       size_t nchain)
{
	struct online o = {0, 0, 0, -1};
	struct tp_cache_key key;
	tlspool_x509_info x;
	tp_cache *cache = tp_config_cache(c->cfg);
	time_t now = time(NULL), exp = 0;
	struct tm tm;
	char when[32];
	int r;

	if (nchain > 0 && tlspool_x509_describe(&chain[0], &x) == 0) {
		memcpy(c->spki, x.spki_sha256, 32);
		c->have_spki = 1;
	}
	memset(&key, 0, sizeof(key));
	key.kind = TP_CACHE_AUTHN;
	key.a = refname;
	key.b = owner;
	key.type = type;
	memcpy(key.digest, c->spki, 32);
	if (!c->have_spki)
		cache = NULL;
	if (cache != NULL && !(c->flags & STARTTLS_NO_CACHE_READ)) {
		r = tp_cache_get(cache, &key, now, &exp, c->cache_note,
		                 sizeof(c->cache_note));
		if (r == TP_CACHE_PASS) {
			trace_cached(owner);
			return 0;
		}
		if (r == TP_CACHE_FAIL) {
			trace_cached(owner);
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ",
			         gmtime_r(&exp, &tm));
			return tp_fail(
			        EKEYREJECTED,
			        "%s: a cached failure, until %s "
			        "(STARTTLS_NO_CACHE_READ validates online)",
			        owner, when);
		}
	}
	r = rrset_online(c, type, owner, refname, chain, nchain, &o);
	if (cache == NULL || (c->flags & STARTTLS_NO_CACHE_WRITE) ||
	    !o.cacheable)
		return r;
	if (r == 0)
		tp_cache_put(cache, &key, TP_CACHE_PASS,
		             expiry_of(&o, chain, nchain, now), now,
		             c->cache_note, sizeof(c->cache_note));
	else if (errno == EKEYREJECTED && c->cfg->negative_ttl > 0) {
		int e = errno;

		exp = now + (time_t)c->cfg->negative_ttl;
		if (o.rrsig != 0 && o.rrsig < exp)
			exp = o.rrsig;
		tp_cache_put(cache, &key, TP_CACHE_FAIL, exp, now,
		             c->cache_note, sizeof(c->cache_note));
		errno = e;
	}
	return r;
}

static int dane_check(struct call *c, const char *owner, const char *refname,
                      const tlspool_span *chain, size_t nchain)
{
	return rrset_check(c, TLSPOOL_RR_TLSA, owner, refname, chain, nchain);
}

/*
 * A user peer U@D (DESIGN section 4): OPENPGPKEY at the RFC 7929 owner
 * name, else SMIMEA at the RFC 8162 one; either suffices.  A DNS error on
 * either lookup fails closed.  The trace keeps the lookup that decided:
 * the one that authenticated, else the first that had records.
 */
static int user_check(struct call *c, const char *user,
                      const tlspool_span *chain, size_t nchain)
{
	char err[256], owner[320], pgp_owner[320], why[400];
	tlspool_dns *dns = tp_config_resolver(c->cfg, err, sizeof(err));
	tlspool_dns_answer *ans = NULL;
	tlspool_openpgp_result *res = NULL;
	tlspool_openpgp_input in;
	tlspool_span *recs = NULL;
	size_t i;
	int rv = -1;

	if (dns == NULL)
		return tp_fail(EINVAL, "[dns]: %s", err);
	if (tlspool_user_owner(owner, sizeof(owner), TLSPOOL_RR_OPENPGPKEY,
	                       user) < 0)
		return tp_fail(EKEYREJECTED, "%s: no OPENPGPKEY owner name",
		               user);
	if (tlspool_dns_lookup(dns, owner, TLSPOOL_RR_OPENPGPKEY, &ans, err,
	                       sizeof(err)) != 0)
		return tp_fail(errno, "%s", err);
	if (ans->verdict == TLSPOOL_DNS_TIMEOUT) {
		tp_fail(ETIMEDOUT, "%s: OPENPGPKEY lookup timed out (%s)",
		        ans->owner, ans->detail);
		goto keep;
	}
	recs = calloc(ans->nrr ? ans->nrr : 1, sizeof(*recs));
	if (recs == NULL) {
		tp_fail(ENOMEM, "out of memory");
		goto keep;
	}
	for (i = 0; i < ans->nrr; i++) {
		recs[i].data = ans->rr[i].rdata;
		recs[i].len = ans->rr[i].rdlen;
	}
	memset(&in, 0, sizeof(in));
	in.chain = chain;
	in.nchain = nchain;
	in.records = recs;
	in.nrecords = ans->nrr;
	in.dns = ans->verdict;
	in.dns_detail = ans->detail;
	in.identity = user;
	in.now = time(NULL);
	if (tlspool_openpgp_match(&in, &res, err, sizeof(err)) != 0) {
		tp_fail(errno, "OPENPGPKEY: %s", err);
		goto keep;
	}
	free(recs);
	if (res->verdict == TLSPOOL_DANE_AUTHENTICATED) {
		rv = 0;
	} else if (res->verdict == TLSPOOL_DANE_DNS_ERROR) {
		tp_fail(EKEYREJECTED, "%s: %s", ans->owner, res->reason);
	} else {
		/* not proven by OPENPGPKEY: SMIMEA may still prove it */
		snprintf(why, sizeof(why), "%s", res->reason);
		trace_keep_openpgp(res);
		res = NULL;
		snprintf(pgp_owner, sizeof(pgp_owner), "%s", owner);
		if (tlspool_user_owner(owner, sizeof(owner), TLSPOOL_RR_SMIMEA,
		                       user) < 0) {
			tp_fail(EKEYREJECTED, "%s: no SMIMEA owner name", user);
			goto keep;
		}
		if (rrset_check(c, TLSPOOL_RR_SMIMEA, owner, user, chain,
		                nchain) == 0) {
			tlspool_dns_answer_free(ans);
			return 0;
		}
		if (errno != EKEYREJECTED) {
			tlspool_dns_answer_free(ans);
			return -1;
		}
		snprintf(err, sizeof(err), "%s", starttls_errstr());
		tp_fail(EKEYREJECTED, "%s: OPENPGPKEY: %s; SMIMEA: %s", user,
		        why, err);
		/* the OPENPGPKEY records, if any, are what the peer failed */
		snprintf(owner, sizeof(owner), "%s", pgp_owner);
		if (ans->nrr == 0) {
			tlspool_dns_answer_free(ans);
			ans = NULL;
		}
	}
keep:
	if (res != NULL)
		trace_keep_openpgp(res);
	if (ans != NULL)
		trace_keep(owner, ans, NULL);
	return rv;
}

static int peer_port(int net, unsigned *port)
{
	struct sockaddr_storage ss;
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

/*
 * Authenticate the peer.  Sets c->peer to its identity ("" when the
 * caller's flags let it stay anonymous).
 */
static int authenticate(struct call *c, const char *sniname)
{
	const gnutls_datum_t *certs;
	unsigned ncerts = 0, i;
	tlspool_span chain[16];
	char owner[320];
	const char *ref;
	int n;

	certs = gnutls_certificate_get_peers(c->session, &ncerts);
	if (certs == NULL || ncerts == 0) {
		if (c->server && (c->flags & (STARTTLS_PEERCERT_OPTIONAL |
		                              STARTTLS_PEERCERT_NONE))) {
			c->peer[0] = '\0'; /* anonymous, as the caller chose */
			return 0;
		}
		return tp_fail(EKEYREJECTED, "the %s presented no certificate",
		               c->server ? "client" : "server");
	}
	if (ncerts > sizeof(chain) / sizeof(chain[0]))
		ncerts = sizeof(chain) / sizeof(chain[0]);
	for (i = 0; i < ncerts; i++) {
		chain[i].data = certs[i].data;
		chain[i].len = certs[i].size;
	}
	trace_chain(chain, ncerts);
	n = tlspool_x509_identity(&chain[0], c->peer, sizeof(c->peer));
	if (n < 0)
		c->peer[0] = '\0';
	if (!c->server) {
		/* RFC 6698 section 3 / DESIGN section 4: the reference name
		 * is the SNI we sent, else the name the certificate claims. */
		ref = sniname != NULL ? sniname : c->peer;
		if (ref[0] == '\0')
			return tp_fail(EKEYREJECTED,
			               "the server's certificate names no "
			               "identity and no sniname was given");
		if (strchr(ref, '@') != NULL)
			return user_check(c, ref, chain, ncerts);
		if (c->port == 0)
			return tp_fail(EINVAL, "fd is not an IPv4 or IPv6 "
			                       "connection: no port for TLSA");
		if (tlspool_tlsa_owner(owner, sizeof(owner), c->port,
		                       c->datagram ? "udp" : "tcp", ref) < 0)
			return tp_fail(EKEYREJECTED, "%s: no TLSA owner name",
			               ref);
		if (dane_check(c, owner, ref, chain, ncerts) != 0)
			return -1;
		if (ref != c->peer)
			snprintf(c->peer, sizeof(c->peer), "%s", ref);
		return 0;
	}
	if (c->peer[0] == '\0')
		return tp_fail(EKEYREJECTED,
		               "the client's certificate names no identity "
		               "(no dc= DN, no subjectAltName)");
	if (strchr(c->peer, '@') != NULL)
		return user_check(c, c->peer, chain, ncerts);
	/* DESIGN section 4: a client domain D is proven by TLSA at D. */
	snprintf(owner, sizeof(owner), "%s", c->peer);
	return dane_check(c, owner, c->peer, chain, ncerts);
}

static int check_identity_kind(struct call *c)
{
	int user = strchr(c->peer, '@') != NULL;

	if (c->peer[0] == '\0')
		return 0;
	if (user && (c->flags & STARTTLS_NO_REMOTE_USER))
		return tp_fail(EPERM,
		               "%s: user peers refused by "
		               "STARTTLS_NO_REMOTE_USER",
		               c->peer);
	if (!user && (c->flags & STARTTLS_NO_REMOTE_DOMAIN))
		return tp_fail(EPERM,
		               "%s: domain peers refused by "
		               "STARTTLS_NO_REMOTE_DOMAIN",
		               c->peer);
	return 0;
}

/* The plugin's verdict on (local, remote), through the cache. */
static int authorize(struct call *c, int proto, const char *sniname)
{
	tlspool_authz_request req;

	memset(&req, 0, sizeof(req));
	req.api = TLSPOOL_AUTHZ_API;
	req.local = c->myname != NULL ? c->myname : c->server ? c->sni : "";
	req.remote = c->peer;
	req.role = c->server ? TLSPOOL_AUTHZ_SERVER : TLSPOOL_AUTHZ_CLIENT;
	req.protocol = proto;
	req.sni = c->server ? c->sni : sniname != NULL ? sniname : "";
	req.peer_key_sha256 = c->have_spki && c->peer[0] ? c->spki : NULL;
	return tp_authz_check(c->cfg, &req, c->flags, c->cache_note,
	                      sizeof(c->cache_note));
}

/*
 * A cache that could not be used is reported by the call that met it:
 * a failure's detail says so too; after a success starttls_errstr() holds
 * it as a warning (the peer was validated online).
 */
static void cache_report(struct call *c, int rv)
{
	char detail[512];
	int e = errno;

	if (c->cache_note[0] == '\0')
		return;
	if (rv < 0)
		snprintf(detail, sizeof(detail), "%s [%s]", starttls_errstr(),
		         c->cache_note);
	else
		snprintf(detail, sizeof(detail),
		         "warning: %s; validated online", c->cache_note);
	tp_fail(e, "%s", detail);
}

/* --- the whole call --------------------------------------------------------
 */

static int run(struct call *c, int fd, int proto, const char *sniname,
               char *peername, size_t peername_len)
{
	char err[512];
	int pair[2] = {-1, -1}, rv = -1, alert = -1, saved;
	tp_relay *r;

	tp_clear_error();
	trace_reset();
	/* 1. consume fd */
	c->net = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	saved = errno;
	close(fd);
	if (c->net < 0)
		return tp_fail(saved == EBADF ? EINVAL : saved, "fd %d: %s", fd,
		               strerror(saved));
	if (check_args(c, proto, sniname) != 0)
		goto out;
	c->cfg = tp_config_acquire(err, sizeof(err));
	if (c->cfg == NULL) {
		tp_fail(errno, "%s", err);
		goto out;
	}
	/* now: after the handshake a server that refused us may be gone */
	if (peer_port(c->net, &c->port) != 0)
		c->port = 0;
	if (c->server && c->datagram && dtls_cookie_exchange(c) != 0)
		goto out;
	if (start_session(c, sniname) != 0 || handshake(c) != 0)
		goto out;
	if (authenticate(c, sniname) != 0) {
		/* the peer hears "bad certificate" only when it is to blame */
		alert = errno == EKEYREJECTED ? GNUTLS_A_BAD_CERTIFICATE
		        : errno == ETIMEDOUT  ? -1
		                              : GNUTLS_A_INTERNAL_ERROR;
		goto out;
	}
	if (check_identity_kind(c) != 0 ||
	    (!(c->flags & STARTTLS_NO_AUTHZ) &&
	     authorize(c, proto, sniname) != 0)) {
		alert = GNUTLS_A_ACCESS_DENIED;
		goto out;
	}
	if (peername != NULL) {
		if (strlen(c->peer) + 1 > peername_len) {
			tp_fail(ENAMETOOLONG,
			        "the peer's identity %s needs %zu bytes, "
			        "peername has %zu",
			        c->peer, strlen(c->peer) + 1, peername_len);
			goto out;
		}
		strcpy(peername, c->peer);
	}
	if (socketpair(AF_UNIX,
	               (c->datagram ? SOCK_SEQPACKET : SOCK_STREAM) |
	                       SOCK_CLOEXEC,
	               0, pair) != 0) {
		tp_fail(errno, "socketpair: %s", strerror(errno));
		goto out;
	}
	r = get_relay(c->cfg->relay_threads);
	if (r == NULL) {
		tp_fail(errno, "relay engine: %s", strerror(errno));
		goto out;
	}
	/* The relay owns the session and both descriptors from here on,
	 * whatever it answers; the session holds a reference to the
	 * configuration (its credentials), dropped by release_config(). */
	if (c->datagram)
		tp_relay_set_idle_timeout(r, c->cfg->dtls_idle_timeout_ms);
	tp_config_ref(c->cfg);
	gnutls_session_set_ptr(c->session, c->cfg);
	saved = tp_relay_add(r, c->session, c->net, pair[1], pair[0],
	                     c->datagram);
	c->session = NULL;
	c->net = pair[1] = -1;
	if (saved != 0) {
		tp_fail(errno, "relay engine: %s", strerror(errno));
		goto out;
	}
	rv = pair[0];
	pair[0] = -1;
out:
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
	if (pair[0] >= 0)
		close(pair[0]);
	if (pair[1] >= 0)
		close(pair[1]);
	tp_config_release(c->cfg);
	errno = saved;
	return rv;
}

/* A name without its final dot: SNI carries none (RFC 6066 section 3),
 * and identities are compared without it (DESIGN section 3). */
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

int starttls_client(int fd, int proto, char *myname, int flags, char *sniname,
                    char *peername, size_t peername_len)
{
	char my[320], sni[256];
	struct call c;

	memset(&c, 0, sizeof(c));
	c.flags = flags;
	c.myname = undotted(myname, my, sizeof(my));
	return run(&c, fd, proto, undotted(sniname, sni, sizeof(sni)), peername,
	           peername_len);
}

int starttls_server(int fd, int proto, char *myname, int flags,
                    int checksni(char *), char *peername, size_t peername_len)
{
	char my[320];
	struct call c;

	memset(&c, 0, sizeof(c));
	c.server = 1;
	c.flags = flags;
	c.myname = undotted(myname, my, sizeof(my));
	c.checksni = checksni;
	return run(&c, fd, proto, NULL, peername, peername_len);
}
