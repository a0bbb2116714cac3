/*
 * The handshake's transport, bounded by an absolute deadline
 * (transport.h).
 *
 * GnuTLS's own handshake timeout restarts its clock on every byte that
 * arrives, so a peer that drips one byte a second holds a call far past
 * it.  These functions bound every wait by the call's deadline; once it
 * has passed they fail with ETIMEDOUT and set timed_out, which the call
 * turns into its ETIMEDOUT.  The relay gets plain functions at hand-off.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "dtls.h"
#include "transport.h"

void tp_tcp_push(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

void tp_transport_flush(struct tp_deadline_io *c)
{
	if (c->held) {
		c->held = 0;
		tp_tcp_push(c->fd);
	}
}

/* Wait for ev on the call's socket: >0 ready, 0 when cap_ms (>= 0) ran
 * out first, -1 with errno (ETIMEDOUT at the deadline).  Nothing held
 * back waits with us. */
static int wait_deadline(struct tp_deadline_io *c, short ev, long long cap_ms)
{
	tp_transport_flush(c);
	for (;;) {
		long long left = c->deadline - tp_mono_ms();
		struct pollfd p = {c->fd, ev, 0};
		int r;

		if (left <= 0) {
			c->timed_out = 1;
			errno = ETIMEDOUT;
			return -1;
		}
		if (cap_ms >= 0 && cap_ms < left)
			left = cap_ms;
		r = poll(&p, 1, (int)left);
		if (r > 0 || (r == 0 && cap_ms >= 0 && cap_ms <= left))
			return r;
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

/* Buffers given back, for the next tp_ahead_alloc() of any thread: a
 * few slots taken and filled with atomic exchanges (no lock, so nothing
 * for fork() to catch half-held). */
#define KEPT_MAX 4
static _Atomic(unsigned char *) kept[KEPT_MAX];

unsigned char *tp_ahead_alloc(void)
{
	for (int i = 0; i < KEPT_MAX; i++) {
		unsigned char *b;

		if (atomic_load_explicit(&kept[i], memory_order_relaxed) !=
		            NULL &&
		    (b = atomic_exchange(&kept[i], NULL)) != NULL)
			return b;
	}
	return malloc(TP_READAHEAD);
}

void tp_ahead_drop(struct tp_ahead *ra)
{
	unsigned char *b = ra->buf;

	for (int i = 0; b != NULL && i < KEPT_MAX; i++) {
		unsigned char *none = NULL;

		if (atomic_compare_exchange_strong(&kept[i], &none, b))
			b = NULL;
	}
	free(b);
	ra->buf = NULL;
	ra->off = ra->len = 0;
}

void tp_ahead_fill(struct tp_ahead *ra, size_t n)
{
	ra->off = 0;
	ra->len = (unsigned)n;
}

ssize_t tp_ahead_take(struct tp_ahead *ra, void *buf, size_t len)
{
	size_t k = len < ra->len ? len : ra->len;

	memcpy(buf, ra->buf + ra->off, k);
	ra->off += (unsigned)k;
	ra->len -= (unsigned)k;
	return (ssize_t)k;
}

static int deadline_pull_timeout(gnutls_transport_ptr_t p, unsigned ms)
{
	struct tp_deadline_io *c = p;

	if (c->ra.len > 0)
		return 1;
	return wait_deadline(c, POLLIN,
	                     ms == GNUTLS_INDEFINITE_TIMEOUT ? -1
	                                                     : (long long)ms);
}

/* A read that follows a flight we sent waits for the peer's answer
 * (round trip and the peer's work) almost always: it waits first, one
 * system call less than a recv() that finds nothing.  A lone
 * ChangeCipherSpec record is no flight: a TLS 1.3 client sends it right
 * after the ServerHello (RFC 8446 appendix D.4), before its own work, so
 * a server that received one alone waits for the rest, and a client that
 * sent one finds the rest of the server's flight there already. */
static ssize_t recv_deadline(struct tp_deadline_io *c, void *buf, size_t len)
{
	if (c->wait_first) {
		c->wait_first = 0;
		if (c->idle != NULL) {
			void (*idle)(void *) = c->idle;

			c->idle = NULL;
			idle(c->idle_arg);
		}
		if (wait_deadline(c, POLLIN, -1) < 0)
			return -1;
	}
	for (;;) {
		ssize_t n = recv(c->fd, buf, len, MSG_DONTWAIT);

		if (n >= 0 || (errno != EAGAIN && errno != EINTR))
			return n;
		if (wait_deadline(c, POLLIN, -1) < 0)
			return -1;
	}
}

/* A stream reads ahead (struct tp_ahead); EOF and errors come through
 * once what was read before them is taken. */
static ssize_t deadline_pull(gnutls_transport_ptr_t p, void *buf, size_t len)
{
	struct tp_deadline_io *c = p;
	ssize_t n;

	if (c->ra.len == 0) {
		if (!c->stream || len >= TP_READAHEAD ||
		    (c->ra.buf == NULL &&
		     (c->ra.buf = tp_ahead_alloc()) == NULL))
			return recv_deadline(c, buf, len);
		n = recv_deadline(c, c->ra.buf, TP_READAHEAD);
		if (n <= 0)
			return n;
		c->wait_first = n == 6 && c->ra.buf[0] == 20;
		tp_ahead_fill(&c->ra, (size_t)n);
	}
	return tp_ahead_take(&c->ra, buf, len);
}

/* Is the write one ChangeCipherSpec record (type 20, one byte)? */
static int lone_ccs(const giovec_t *iov, int iovcnt)
{
	size_t len = 0;

	for (int i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	return len == 6 && iov[0].iov_len > 0 &&
	       ((const unsigned char *)iov[0].iov_base)[0] == 20;
}

/* A lone ChangeCipherSpec (the TLS 1.3 middlebox compatibility record a
 * client sends before its second flight, RFC 8446 appendix D.4; TLS
 * 1.2's before Finished) goes out with MSG_MORE: the Finished that
 * follows it carries it in the same segment, one packet and one wake-up
 * of the peer fewer, and the peer needs nothing of it.  Not a server's
 * ServerHello and ChangeCipherSpec: held back until the rest of its
 * flight (after its signature) they would keep the client from starting
 * its own key exchange meanwhile (server handshakes/s -10 %).  Should
 * nothing follow, the next wait, or the end of the handshake, sends it
 * (tp_transport_flush). */
static ssize_t deadline_push(gnutls_transport_ptr_t p, const giovec_t *iov,
                             int iovcnt)
{
	struct tp_deadline_io *c = p;
	int ccs = c->stream && lone_ccs(iov, iovcnt);
	struct msghdr m;

	memset(&m, 0, sizeof(m));
	m.msg_iov = (struct iovec *)(uintptr_t)iov;
	m.msg_iovlen = (size_t)iovcnt;
	for (;;) {
		ssize_t n = sendmsg(c->fd, &m,
		                    MSG_DONTWAIT | MSG_NOSIGNAL |
		                            (ccs ? MSG_MORE : 0));

		if (n > 0 && c->stream) {
			c->wait_first = !ccs;
			c->held = ccs;
		}
		if (n >= 0 || (errno != EAGAIN && errno != EINTR))
			return n;
		if (wait_deadline(c, POLLOUT, -1) < 0)
			return -1;
	}
}

/* After the handshake: the transport pointer is the descriptor again. */
static ssize_t plain_pull(gnutls_transport_ptr_t p, void *buf, size_t len)
{
	return recv((int)(intptr_t)p, buf, len, 0);
}

static int plain_pull_timeout(gnutls_transport_ptr_t p, unsigned ms)
{
	struct pollfd pf = {(int)(intptr_t)p, POLLIN, 0};

	return poll(&pf, 1, ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 : (int)ms);
}

void tp_transport_deadline(gnutls_session_t s, struct tp_deadline_io *io)
{
	gnutls_transport_set_ptr(s, io);
	gnutls_transport_set_pull_function(s, deadline_pull);
	gnutls_transport_set_pull_timeout_function(s, deadline_pull_timeout);
	gnutls_transport_set_vec_push_function(s, deadline_push);
}

void tp_transport_plain(gnutls_session_t s, int fd)
{
	gnutls_transport_set_int(s, fd);
	gnutls_transport_set_pull_function(s, plain_pull);
	gnutls_transport_set_pull_timeout_function(s, plain_pull_timeout);
}
