/*
 * One relayed connection in its worker's thread: moving data both ways
 * between the TLS session and the application's end, the close state
 * machine of each direction, and releasing the connection.  The outline
 * of the relay ("Data", "Close", "Datagrams") is at the top of relay.c;
 * relay_int.h lists the files.
 */
#include <errno.h>
#include <linux/sockios.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "relay_int.h"

/* Steps (each moves at most one block) before others get their turn. */
#define BUDGET 16

/* --- releasing --- */

void tp_relay_spill_drop(struct spill *sp)
{
	free(sp->buf);
	sp->buf = NULL;
	sp->off = sp->len = 0;
}

/* --- the network transport of a stream --- */

/* GnuTLS's reads of the network: from the read-ahead while it holds
 * bytes, else one recv() of up to READAHEAD bytes (straight into buf when
 * GnuTLS asks for that much, or without memory).  EOF and errors come
 * through once the read-ahead is empty, in the order they happened. */
ssize_t tp_relay_pull(gnutls_transport_ptr_t p, void *buf, size_t len)
{
	struct conn *c = p;
	ssize_t n;

	if (c->ra.len == 0) {
		if (len >= READAHEAD ||
		    (c->ra.buf == NULL &&
		     (c->ra.buf = tp_ahead_alloc()) == NULL))
			return recv(c->net.fd, buf, len, MSG_DONTWAIT);
		n = recv(c->net.fd, c->ra.buf, READAHEAD, MSG_DONTWAIT);
		if (n <= 0) {
			int e = errno;

			tp_ahead_drop(&c->ra); /* idle or ended: hold nothing */
			errno = e;
			return n;
		}
		tp_ahead_fill(&c->ra, (size_t)n);
	}
	return tp_ahead_take(&c->ra, buf, len);
}

int tp_relay_pull_timeout(gnutls_transport_ptr_t p, unsigned ms)
{
	struct conn *c = p;
	struct pollfd pf = {c->net.fd, POLLIN, 0};

	if (c->ra.len > 0)
		return 1;
	return poll(&pf, 1, ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 : (int)ms);
}

/* gnutls's own push uses send() without MSG_NOSIGNAL unless the session
 * was made with GNUTLS_NO_SIGNAL; a peer that resets must not kill the
 * application with SIGPIPE, whatever flags the session had.  MSG_DONTWAIT:
 * a stream's network descriptor may be blocking (tp_relay_add_pair).
 * MSG_MORE while c->more says that more follows at once: the next record
 * of a run (tls_send), or the FIN after close_notify (step_up), which
 * tcp_send_fin() puts on the same segment.  c->pushed_more says that
 * something is held back: a push without MSG_MORE sends it too. */
ssize_t tp_relay_push(gnutls_transport_ptr_t p, const giovec_t *iov, int iovcnt)
{
	struct conn *c = p;
	struct msghdr m = {.msg_iov = (struct iovec *)(uintptr_t)iov,
	                   .msg_iovlen = (size_t)iovcnt};
	ssize_t n =
	        sendmsg(c->net.fd, &m,
	                MSG_NOSIGNAL | MSG_DONTWAIT | (c->more ? MSG_MORE : 0));

	if (n > 0)
		c->pushed_more = c->more;
	return n;
}

/* The session goes first, then what it used (the hook). */
void tp_relay_release_session(tp_relay *r, gnutls_session_t s)
{
	void *ptr = gnutls_session_get_ptr(s);

	gnutls_deinit(s);
	if (r != NULL && r->on_release != NULL)
		r->on_release(ptr);
}

static bool bad_end(const struct conn *c)
{
	return c->how.kind != STARTTLS_END_OPEN &&
	       c->how.kind != STARTTLS_END_CLOSE_NOTIFY;
}

/* The explicit EPOLL_CTL_DEL matters if a descriptor has a duplicate
 * elsewhere, which would keep the registration alive. */
static void close_net(struct conn *c)
{
	if (c->net.fd < 0)
		return;
	epoll_ctl(c->w->epfd, EPOLL_CTL_DEL, c->net.fd, NULL);
	close(c->net.fd);
	c->net.fd = -1;
	c->net.rd = c->net.wr = false;
}

/* Off the worker's live list (a connection still incoming is on none). */
static void live_unlink(struct worker *w, struct conn *c)
{
	if (w->live == c)
		w->live = c->next;
	else if (c->prev != NULL)
		c->prev->next = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
}

/* Every connection ends here: in the worker, or in tp_relay_free after the
 * workers stopped.  The end is recorded before appfd is closed. */
void tp_relay_conn_release(struct conn *c)
{
	struct worker *w = c->w;

	/* Off the list (tp_relay_flush polls appfd) and into the table. */
	tp_relay_reg_remove(c);
	close_net(c);
	epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->app.fd, NULL);
	tp_relay_release_session(w->r, c->s);
	if (bad_end(c))
		tp_relay_app_reset(c);
	else
		tp_relay_app_finish(c, w->scratch);
	close(c->app.fd);
	tp_relay_spill_drop(&c->up);
	tp_relay_spill_drop(&c->down);
	tp_ahead_drop(&c->ra);
	live_unlink(w, c);
	if (c->idling)
		w->ndgram--;
	if (c->draining)
		w->ndrain--;
	atomic_fetch_sub(&w->nconn, 1);
	atomic_fetch_sub(&w->r->count, 1);
	tp_relay_conn_unref(c);
}

void tp_relay_conn_unref(struct conn *c)
{
	if (atomic_fetch_sub(&c->refs, 1) == 1)
		free(c);
}

/*
 * The connection ended other than by the peer's close_notify: record why,
 * close netfd without close_notify, stop reading the application, and let
 * "down" deliver what it holds before the reset.  After close_notify or
 * the application's close, "down" keeps its course.
 */
void tp_relay_cut(struct conn *c, starttls_end_kind kind, enum why why,
                  int code)
{
	tp_relay_set_how(c, kind, why, code);
	close_net(c);
	c->ups = UP_DONE;
	atomic_store(&c->up_done, true);
	tp_relay_spill_drop(&c->up);
	if (c->downs == DOWN_OPEN) {
		c->downs = DOWN_CUT;
		c->draining = true;
		c->w->ndrain++;
		c->last_ms = tp_relay_mono_ms();
	}
}

/* Peers that went away, rather than errors of ours. */
static bool peer_gone(int e)
{
	return e == ECONNRESET || e == EPIPE || e == ECONNABORTED ||
	       e == ECONNREFUSED || e == ETIMEDOUT || e == EHOSTUNREACH ||
	       e == ENETUNREACH || e == EHOSTDOWN || e == ENETDOWN;
}

/* gnutls failed with err; e is errno right after. */
static void cut_tls(struct conn *c, int err, int e)
{
	/* EOF between records, or in the middle of one (GnuTLS then says
	 * "unexpected packet length"): a stream cut without close_notify */
	if (err == GNUTLS_E_PREMATURE_TERMINATION ||
	    (err == GNUTLS_E_UNEXPECTED_PACKET_LENGTH && !c->datagram))
		tp_relay_cut(c, STARTTLS_END_TRUNCATED, WHY_FIN, 0);
	else if (err == GNUTLS_E_FATAL_ALERT_RECEIVED)
		tp_relay_cut(c, STARTTLS_END_ALERT, WHY_ALERT,
		             (int)gnutls_alert_get(c->s));
	else if ((err == GNUTLS_E_PULL_ERROR || err == GNUTLS_E_PUSH_ERROR) &&
	         peer_gone(e))
		tp_relay_cut(c, STARTTLS_END_TRUNCATED, WHY_ERRNO, e);
	else
		tp_relay_cut(c, STARTTLS_END_ERROR, WHY_GNUTLS, err);
}

/*
 * Sending failed.  A stream whose peer went away may still hold what the
 * peer sent before (a server that answers, then closes without reading
 * the rest of the request, resets the connection): "up" ends, and "down"
 * reads on to its own end, which the socket's error makes certain.  Any
 * other failure, and any on a datagram, cuts at once.
 */
static void up_failed(struct conn *c, int err, int e)
{
	if (!c->datagram && err == GNUTLS_E_PUSH_ERROR && peer_gone(e) &&
	    c->downs == DOWN_OPEN) {
		c->ups = UP_DONE;
		atomic_store(&c->up_done, true);
		tp_relay_spill_drop(&c->up);
		return;
	}
	cut_tls(c, err, e);
}

/* --- moving data --- */

/* A write on e found no room: wait for EPOLLOUT.  If it cannot be
 * registered, nothing would ever wake the connection: cut. */
static void blocked_out(struct conn *c, struct end *e)
{
	if (tp_relay_want_out(e) < 0)
		tp_relay_cut(c, STARTTLS_END_ERROR, WHY_ERRNO, errno);
}

static void count(atomic_ullong *a, size_t n)
{
	atomic_store_explicit(a,
	                      atomic_load_explicit(a, memory_order_relaxed) + n,
	                      memory_order_relaxed);
}

/* Keep len bytes that the other side would not take. */
static int spill_keep(struct spill *sp, const unsigned char *p, size_t len)
{
	tp_relay_spill_drop(sp); /* empty: it is only ever refilled so */
	if ((sp->buf = malloc(len > BLOCK ? len : BLOCK)) == NULL)
		return -1;
	memcpy(sp->buf, p, len);
	sp->off = 0;
	sp->len = len;
	return 0;
}

static void spill_advance(struct spill *sp, size_t n)
{
	sp->off += n;
	if (sp->off == sp->len)
		tp_relay_spill_drop(sp);
}

/* tls_send()'s loop: one record per gnutls_record_send(), all but the
 * last of the run with MSG_MORE (gnutls_record_get_max_size() is what one
 * record carries at most). */
static int tls_send_records(struct conn *c, const unsigned char *p, size_t len,
                            size_t *sent)
{
	size_t max = c->datagram ? 0 : gnutls_record_get_max_size(c->s);

	*sent = 0;
	while (*sent < len) {
		ssize_t r;

		c->more = max > 0 && len - *sent > max;
		r = gnutls_record_send(c->s, p + *sent, len - *sent);
		if (r > 0) {
			*sent += (size_t)r;
			count(&c->bytes_out, (size_t)r);
		} else if (r == GNUTLS_E_AGAIN) {
			blocked_out(c, &c->net);
			return 0;
		} else if (r == GNUTLS_E_INTERRUPTED) {
			continue;
		} else if (c->datagram && r == GNUTLS_E_LARGE_PACKET) {
			/* Larger than the path MTU: a datagram is lost. */
			*sent = len;
		} else {
			return (int)r;
		}
	}
	return 0;
}

/*
 * Hand plaintext to gnutls, one record per call.  *sent counts what gnutls
 * took.  Returns 0 when all was taken or the socket is full (net.wr
 * cleared), or a GnuTLS error with errno as the push left it.  After
 * GNUTLS_E_AGAIN the caller keeps the unsent bytes and calls again with
 * the same data, as the GnuTLS manual requires: gnutls then flushes the
 * record it already encrypted.  The records of one call go out with
 * MSG_MORE but the last (tp_relay_push), so that the kernel sends them as
 * a few large segments (one wake-up of the peer) instead of one per
 * record; a run that stopped before its last record sends what was held
 * back at once.
 */
static int tls_send(struct conn *c, const unsigned char *p, size_t len,
                    size_t *sent)
{
	int rv = tls_send_records(c, p, len, sent);

	c->more = false;
	if (c->pushed_more) {
		c->pushed_more = false;
		tp_tcp_push(c->net.fd);
	}
	return rv;
}

/* Write plaintext to the application.  Returns bytes written, 0 when the
 * socket is full (app.wr cleared), -1 with errno on an error.  MSG_NOSIGNAL:
 * an application that closed its end must not kill the process. */
static ssize_t app_send(struct conn *c, const unsigned char *p, size_t len)
{
	ssize_t n;

	do
		n = send(c->app.fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		blocked_out(c, &c->app);
		return 0;
	}
	if (n > 0)
		count(&c->bytes_in, (size_t)n);
	return n;
}

/*
 * Stream: take what the application wrote, leaving its newest byte in
 * appfd once forwarded ("Resetting" in relay.c): all that SIOCINQ reports but
 * one byte is consumed, and that byte is read with MSG_PEEK behind the
 * rest, so that one write of the application still goes out as one
 * record, and up to UP_CHUNK bytes go out in full records of BLOCK.
 * scratch holds UP_CHUNK + 1 bytes: the byte at the head that went out
 * before (c->lag), then up to UP_CHUNK new ones.  Returns the number of
 * new bytes, at *p; 0 with *eof when the application shut its end and
 * everything was taken; 0 with app.rd cleared when there is nothing new;
 * -1 with errno on an error.
 */
static ssize_t app_recv_stream(struct conn *c, unsigned char *scratch,
                               unsigned char **p, bool *eof)
{
	size_t skip = c->lag ? 1 : 0, want;
	ssize_t n = 0, k;
	int q;

	*p = scratch + skip;
	*eof = false;
	if (ioctl(c->app.fd, SIOCINQ, &q) < 0)
		return -1;
	if ((size_t)q <= skip) {
		/* Nothing new.  What the application wrote before it shut
		 * its end was queued before epoll said so. */
		if (c->app_rdhup)
			*eof = true;
		else
			c->app.rd = false;
		return 0;
	}
	want = (size_t)q - 1 < UP_CHUNK - 1 + skip ? (size_t)q - 1
	                                           : UP_CHUNK - 1 + skip;
	if (want > 0 && (n = recv(c->app.fd, scratch, want, MSG_DONTWAIT)) < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	k = recv(c->app.fd, scratch + n, 1, MSG_PEEK | MSG_DONTWAIT);
	if (k < 0 && errno != EAGAIN && errno != EINTR)
		return -1;
	/* The head is now the byte just peeked, forwarded with the rest. */
	c->lag = k == 1;
	if ((size_t)n + (k == 1) < skip)
		return 0;
	return n + (k == 1) - (ssize_t)skip;
}

/*
 * Datagram, c->keep_head (keep_dgram_head() in relay.c): the message
 * behind appfd's head, peeked at SO_PEEK_OFF (the head's length, which
 * the kernel keeps: a peek moves it on by what it copied, a read of the
 * head back by the head's length), then the head dropped, so that the
 * message just taken is the new head.  As app_recv_msg().
 */
static ssize_t app_recv_kept(struct conn *c, unsigned char *scratch,
                             unsigned char **p, bool *eof)
{
	ssize_t n = recv(c->app.fd, scratch, BLOCK,
	                 MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
	unsigned char b;

	*p = scratch;
	*eof = false;
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			c->app.rd = false;
			return 0;
		}
		return errno == EINTR ? 0 : -1;
	}
	if (n == 0 && c->app_rdhup) {
		*eof = true;
		return 0;
	}
	if (recv(c->app.fd, &b, 1, MSG_DONTWAIT | MSG_TRUNC) < 0)
		return -1;
	if (n > BLOCK) {
		/* a peek copies at most BLOCK: the offset is the head's */
		int off = (int)n;

		setsockopt(c->app.fd, SOL_SOCKET, SO_PEEK_OFF, &off,
		           sizeof(off));
		n = BLOCK;
	}
	return n;
}

/* Datagram: one message.  Returns its length, at *p; 0 with *eof or
 * app.rd cleared, or after an empty message; -1 with errno. */
static ssize_t app_recv_msg(struct conn *c, unsigned char *scratch,
                            unsigned char **p, bool *eof)
{
	ssize_t n;

	if (c->keep_head)
		return app_recv_kept(c, scratch, p, eof);
	n = recv(c->app.fd, scratch, BLOCK, MSG_DONTWAIT);

	*p = scratch;
	*eof = false;
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			c->app.rd = false;
			return 0;
		}
		return errno == EINTR ? 0 : -1;
	}
	/* On SOCK_SEQPACKET an empty message also reads as 0; only the
	 * shutdown that epoll reported is EOF.  An empty message carries
	 * nothing: dropped. */
	if (n == 0 && c->app_rdhup)
		*eof = true;
	return n;
}

/* Application to network.  Returns 1 on progress, 0 when blocked. */
static int step_up(struct conn *c, unsigned char *scratch)
{
	unsigned char *p;
	size_t sent;
	ssize_t n;
	bool eof;
	int r;

	if (c->ups == UP_DONE || !c->net.wr)
		return 0;
	if (c->up.len > 0) {
		if ((r = tls_send(c, c->up.buf + c->up.off,
		                  c->up.len - c->up.off, &sent)) < 0) {
			up_failed(c, r, errno);
			return 1;
		}
		if (sent == 0)
			return 0;
		spill_advance(&c->up, sent);
		return 1;
	}
	if (c->ups == UP_OPEN) {
		if (!c->app.rd)
			return 0;
		n = c->datagram ? app_recv_msg(c, scratch, &p, &eof)
		                : app_recv_stream(c, scratch, &p, &eof);
		if (n < 0) {
			tp_relay_cut(c, STARTTLS_END_ERROR, WHY_ERRNO, errno);
			return 1;
		}
		if (n == 0) {
			if (eof)
				c->ups = UP_BYE;
			return eof || c->app.rd;
		}
		if ((r = tls_send(c, p, (size_t)n, &sent)) < 0) {
			up_failed(c, r, errno);
			return 1;
		}
		if (sent < (size_t)n &&
		    spill_keep(&c->up, p + sent, (size_t)n - sent) < 0)
			tp_relay_cut(c, STARTTLS_END_ERROR, WHY_ERRNO, ENOMEM);
		return 1;
	}
	/* UP_BYE with nothing left: close_notify (RFC 8446 s6.1). */
	c->more = !c->datagram; /* the FIN follows (shutdown below) */
	r = gnutls_bye(c->s, GNUTLS_SHUT_WR);
	c->more = false;
	if (r == GNUTLS_E_AGAIN) {
		blocked_out(c, &c->net);
		return 0;
	}
	if (r == GNUTLS_E_INTERRUPTED)
		return 1;
	if (r < 0) {
		up_failed(c, r, errno);
		return 1;
	}
	c->ups = UP_DONE;
	atomic_store(&c->up_done, true);
	if (c->datagram)
		c->downs = DOWN_DONE; /* no half-close */
	else
		/* Like socat: the FIN follows close_notify, for peers and
		 * middleboxes that watch TCP rather than TLS. */
		shutdown(c->net.fd, SHUT_WR);
	return 1;
}

/* Whether gnutls_record_recv can make progress. */
static bool can_recv(struct conn *c)
{
	if (c->recv_wants_wr)
		return c->net.wr;
	return c->net.rd || c->ra.len > 0 ||
	       gnutls_record_check_pending(c->s) > 0;
}

/* Whether the application has not yet read all that it was given; a
 * SOCK_SEQPACKET end reports ECONNRESET before those messages. */
static bool app_unread(struct conn *c)
{
	int q = 0;

	return c->datagram && ioctl(c->app.fd, SIOCOUTQ, &q) == 0 && q > 0;
}

/* Sending to the application failed.  EPIPE: it closed its end, so
 * nothing more can reach it, but what it wrote before is still relayed
 * and closed with close_notify.  Anything else is a local error. */
static void app_gone(struct conn *c, int e)
{
	tp_relay_spill_drop(&c->down);
	if (e != EPIPE && c->downs == DOWN_OPEN)
		tp_relay_cut(c, STARTTLS_END_ERROR, WHY_ERRNO, e);
	c->downs = DOWN_DONE;
}

/* Send the spill to the application.  1 on progress, 0 when blocked or
 * when the application closed its end (then "down" is DONE). */
static int drain_down(struct conn *c)
{
	ssize_t n;

	if (!c->app.wr)
		return 0;
	n = app_send(c, c->down.buf + c->down.off, c->down.len - c->down.off);
	if (n < 0) {
		app_gone(c, errno);
		return 1;
	}
	if (n == 0)
		return 0;
	spill_advance(&c->down, (size_t)n);
	return 1;
}

/* "down" was cut: deliver the spill (until the drain timeout), wait until
 * a SOCK_SEQPACKET application has read every message, then DONE (the
 * reset follows).  1 on progress, 0 when blocked. */
static int down_cut(struct conn *c)
{
	if (c->down.len > 0 && !c->give_up) {
		if (!drain_down(c))
			return 0;
		c->last_ms = tp_relay_mono_ms();
		return 1;
	}
	if (!c->give_up && app_unread(c)) {
		/* woken by EPOLLOUT as it reads, or the tick */
		if (!c->app.out && tp_relay_want_out(&c->app) < 0)
			c->give_up = true;
		return 0;
	}
	tp_relay_spill_drop(&c->down);
	c->downs = DOWN_DONE;
	return 1;
}

/* After the peer's close_notify: deliver the spill, then EOF (a datagram
 * connection ends both ways).  1 on progress, 0 when blocked. */
static int down_shut(struct conn *c)
{
	if (c->down.len > 0)
		return drain_down(c);
	/* Recorded (tp_relay_set_how took reg_mu) before the application
	 * can see the EOF. */
	if (!c->datagram)
		shutdown(c->app.fd, SHUT_WR);
	c->downs = DOWN_DONE;
	if (c->datagram)
		c->ups = UP_DONE;
	return 1;
}

/* gnutls_record_recv said GNUTLS_E_AGAIN.  1 when it is worth another
 * call, 0 when blocked (the flag an event will set again is cleared). */
static int recv_again(struct conn *c)
{
	char b;
	ssize_t k;

	/* A TLS 1.3 KeyUpdate reply can block recv on a write. */
	if (gnutls_record_get_direction(c->s) == 1) {
		c->recv_wants_wr = true;
		blocked_out(c, &c->net);
		return 0;
	}
	/* GnuTLS also answers AGAIN after a post-handshake message (a TLS
	 * 1.3 NewSessionTicket) when the socket is not empty: with
	 * edge-triggered epoll no new edge would come for what is already
	 * there, so only a socket that really has nothing (EAGAIN) clears
	 * the flag. */
	if (c->ra.len > 0)
		return 1; /* read ahead, not yet taken */
	k = recv(c->net.fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		c->net.rd = false;
		return 0;
	}
	return 1; /* try again: data or EOF is waiting */
}

/*
 * The records a stream holds in memory already (read ahead, or decrypted
 * by GnuTLS), up to UP_CHUNK bytes, for one send to the application: one
 * write and one wake-up of the reader per 64 KiB rather than per record.
 * The first gnutls_record_recv() result is returned as always; a later
 * call that gives no data (close_notify, AGAIN, an error) is held, with
 * its errno, and is the next step's result, after the data before it was
 * delivered.  Datagrams keep one record per message.
 */
static ssize_t recv_batch(struct conn *c, unsigned char *scratch)
{
	ssize_t r = gnutls_record_recv(c->s, scratch, BLOCK), k;
	size_t got;

	if (r <= 0 || c->datagram || !c->app.wr)
		return r;
	for (got = (size_t)r;
	     got + BLOCK <= UP_CHUNK &&
	     (c->ra.len > 0 || gnutls_record_check_pending(c->s) > 0);
	     got += (size_t)k) {
		k = gnutls_record_recv(c->s, scratch + got, BLOCK);
		if (k <= 0) {
			c->held = true;
			c->held_r = (int)k;
			c->held_errno = errno;
			break;
		}
	}
	return (ssize_t)got;
}

/* Network to application.  Returns 1 on progress, 0 when blocked. */
static int step_down(struct conn *c, unsigned char *scratch)
{
	ssize_t n, r;

	switch (c->downs) {
	case DOWN_DONE:
		return 0;
	case DOWN_CUT:
		return down_cut(c);
	case DOWN_SHUT:
		return down_shut(c);
	case DOWN_OPEN:
		break;
	}
	if (c->down.len > 0)
		return drain_down(c);
	if (c->held) {
		/* what the last batch read after its records */
		c->held = false;
		r = c->held_r;
		errno = c->held_errno;
	} else {
		if (!can_recv(c))
			return 0;
		r = recv_batch(c, scratch);
	}
	c->recv_wants_wr = false;
	if (r == 0) {
		/* close_notify: the only end that is EOF. */
		tp_relay_set_how(c, STARTTLS_END_CLOSE_NOTIFY, WHY_NONE, 0);
		c->downs = DOWN_SHUT;
		return 1;
	}
	if (r == GNUTLS_E_AGAIN)
		return recv_again(c);
	if (r < 0) {
		int e = errno;

		if (!gnutls_error_is_fatal((int)r))
			return 1; /* warning alert, renegotiation request */
		/* Tell the peer why, once, without waiting; not for an
		 * alert of its own or a connection already gone. */
		if (r != GNUTLS_E_FATAL_ALERT_RECEIVED &&
		    r != GNUTLS_E_PREMATURE_TERMINATION &&
		    r != GNUTLS_E_PULL_ERROR)
			gnutls_alert_send_appropriate(c->s, (int)r);
		cut_tls(c, (int)r, e);
		return 1;
	}
	n = c->app.wr ? app_send(c, scratch, (size_t)r) : 0;
	if (n < 0) {
		app_gone(c, errno);
		return 1;
	}
	if (n < r && spill_keep(&c->down, scratch + n, (size_t)(r - n)) < 0)
		tp_relay_cut(c, STARTTLS_END_ERROR, WHY_ERRNO, ENOMEM);
	return 1;
}

enum pump_result tp_relay_pump(struct conn *c, unsigned char *scratch)
{
	int budget = BUDGET, up, down, e;

	/* tp_relay_add_pair could not send the byte (relay.c, "Threads") */
	if (!c->late_seen && (e = atomic_load(&c->late_err)) != 0) {
		c->late_seen = true;
		tp_relay_cut(c, STARTTLS_END_ERROR, WHY_ERRNO, e);
	}

	for (;;) {
		up = step_up(c, scratch);
		down = step_down(c, scratch);
		if (c->datagram && c->downs == DOWN_OPEN && (up || down) &&
		    budget == BUDGET)
			c->last_ms = tp_relay_mono_ms();
		if (c->ups == UP_DONE && c->downs == DOWN_DONE)
			return P_FINISHED;
		if (!up && !down)
			return P_IDLE;
		if (--budget == 0)
			return P_MORE;
	}
}
