/*
 * DTLS over UDP: the server's stateless cookie exchange (RFC 6347
 * section 4.2.1), the record size from the path MTU, retransmission
 * timers.  See dtls.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dtls.h"
#include "lib.h"

/* The largest UDP payload we send: the path MTU the kernel knows for the
 * connected peer (IP_MTU), less the IP and UDP headers, and never above
 * what an Ethernet path carries unfragmented (loopback says 65536, and a
 * route's MTU says nothing of the hops behind it). */
#define DTLS_MAX_MTU 1500

static unsigned dtls_mtu(int fd)
{
	struct sockaddr_storage ss = {0};
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
void tp_dtls_setup(gnutls_session_t s, int fd, unsigned timeout_ms,
                   gnutls_dtls_prestate_st *prestate)
{
	gnutls_dtls_set_mtu(s, dtls_mtu(fd));
	gnutls_dtls_set_timeouts(s, 1000, timeout_ms);
	if (prestate != NULL)
		gnutls_dtls_prestate_set(s, prestate);
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

long long tp_mono_ms(void)
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
int tp_dtls_cookie_exchange(int fd, long long deadline,
                            gnutls_dtls_prestate_st *prestate)
{
	unsigned char buf[4096];
	struct sockaddr_storage peer;
	socklen_t plen = sizeof(peer);
	int fl = fcntl(fd, F_GETFL);

	pthread_once(&cookie_once, cookie_key_init);
	if (cookie_key_err < 0)
		return tp_fail(ENOMEM, "DTLS cookie key: %s",
		               gnutls_strerror(cookie_key_err));
	if (fl >= 0 && (fl & O_NONBLOCK))
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	memset(&peer, 0, sizeof(peer));
	if (getpeername(fd, (struct sockaddr *)&peer, &plen) != 0)
		return tp_fail(EINVAL, "getpeername: %s", strerror(errno));
	for (;;) {
		long long left = deadline - tp_mono_ms();
		struct pollfd p = {fd, POLLIN, 0};
		ssize_t n;
		int r;

		if (left <= 0)
			return tp_fail(
			        ETIMEDOUT,
			        "no DTLS ClientHello with a valid cookie "
			        "before the deadline (handshake_timeout_ms)");
		r = poll(&p, 1, (int)left);
		if (r < 0 && errno != EINTR)
			return tp_fail(errno, "poll: %s", strerror(errno));
		if (r <= 0)
			continue;
		n = recv(fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
		if (n < 0) {
			/* ECONNREFUSED: an ICMP error for an earlier
			 * HelloVerifyRequest; the client may still come. */
			if (errno == EAGAIN || errno == EINTR ||
			    errno == ECONNREFUSED)
				continue;
			return tp_fail(ECONNRESET, "recv: %s", strerror(errno));
		}
		memset(prestate, 0, sizeof(*prestate));
		r = gnutls_dtls_cookie_verify(&cookie_key, &peer, plen, buf,
		                              (size_t)n, prestate);
		if (r == 0)
			return 0;
		(void)!recv(fd, buf, 1, MSG_DONTWAIT); /* drop it */
		if (r == GNUTLS_E_BAD_COOKIE)
			gnutls_dtls_cookie_send(
			        &cookie_key, &peer, plen, prestate,
			        (gnutls_transport_ptr_t)(intptr_t)fd,
			        cookie_push);
		/* anything else (not a ClientHello): ignored */
	}
}
