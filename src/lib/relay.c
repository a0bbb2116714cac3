/*
 * The relay engine: moves data between a TLS (or DTLS) session on netfd and
 * plaintext on the application's end of a socketpair, appfd.
 *
 * Files (relay_int.h declares what they share)
 *
 *   relay.c      this outline; the workers ("Threads", "Events") and the
 *                interface of relay.h
 *   relay_io.c   a connection in its worker: "Data", "Close" and the
 *                datagram rules, releasing
 *   relay_end.c  the registry of connections and their ends for
 *                starttls_end(); "Resetting" the application's end
 *
 * Outline
 *
 *   Threads.  tp_relay_new() starts nthreads workers.  Each owns an epoll
 *   set, an eventfd, a list of its live connections and a run queue.
 *   tp_relay_add() validates and prepares the descriptors in the caller's
 *   thread (so that bad arguments fail synchronously), picks the least
 *   loaded worker, registers both descriptors with that worker's epoll set
 *   itself (epoll_ctl is thread-safe), then appends the connection to the
 *   worker's mutex protected "incoming" list and wakes the worker.  For a
 *   stream pair of tp_relay_add_pair() the wake-up is the pair's byte
 *   ("Resetting"), sent only now, just after the append: one wake-up, no
 *   eventfd.  Otherwise it is the eventfd (datagrams: appfd holds
 *   nothing), or, for tp_relay_add(), the byte already in appfd, reported
 *   by its registration.  A worker that gets an event for a connection it
 *   has not taken yet takes the incoming list; if the caller has not
 *   appended it yet (it is between its epoll_ctl and the append), the
 *   worker keeps what the event said ("early", not run) and sets
 *   early_wait under the mutex, and the caller, appending under the same
 *   mutex, sees it and wakes the worker with the eventfd.  After the
 *   append the worker may release the connection at any time; the
 *   caller's reference (refs) keeps its memory until the call returns.
 *   If appfd cannot be
 *   registered the call fails at once; if netfd cannot, or the byte cannot
 *   be sent, the worker may already hold an event that names the
 *   connection, so it is handed over all the same and the worker cuts it
 *   (no close_notify; the application's end is reset, and for the byte
 *   the call fails).  From then on exactly one thread touches the
 *   connection and its GnuTLS session, so the per-connection state needs
 *   no locks (except what starttls_end() reads, below).
 *
 *   Events.  Both descriptors are registered once, edge-triggered, for
 *   reading; EPOLLOUT is added (EPOLL_CTL_MOD, tp_relay_want_out) the
 *   first time a write on that descriptor finds no room, and stays.  So
 *   the registration reports only what is there to read, and an
 *   application that reads what the relay wrote does not wake it until a
 *   write had to wait.  An event only records readiness in the end's rd/wr
 *   flags and queues the connection; a flag is cleared when a call on that
 *   descriptor reports EAGAIN.  The rd flags start cleared (the
 *   registration reports what is there already, so the first pass reads
 *   nothing epoll did not announce), the wr flags set (a fresh socket has
 *   room).  The run queue then "pumps" each queued connection: it makes as
 *   much progress as the flags allow, for a bounded number of steps so
 *   that one busy connection cannot starve the others (a connection that
 *   used its budget is queued again and epoll_wait does not block).
 *   Releasing happens only in the pump, after every event of the batch
 *   was recorded, so no stale event can name a freed connection.
 *
 *   Data.  Each direction reads into the worker's scratch buffer (up to
 *   UP_CHUNK, 64 KiB: upstream one read of the application, sent as full
 *   records; downstream the records already in memory, read ahead or
 *   decrypted, recv_batch in relay_io.c) and forwards at once.  Only what
 *   the other side would not take is copied into a per-connection spill
 *   buffer, allocated then and freed once drained: an idle connection
 *   holds no buffer.  While a direction's spill is not empty its source
 *   is not read: that is the back-pressure, and it bounds memory to one
 *   chunk per direction.  gnutls may hold decrypted records that epoll
 *   cannot announce, so the TLS side is also read when
 *   gnutls_record_check_pending() says so.
 *
 *   Close (the state machine, per direction):
 *     up   (app -> net): OPEN --app EOF--> BYE --close_notify sent--> DONE
 *     down (net -> app): OPEN --close_notify--> SHUT
 *                            --spill drained, shutdown(appfd, SHUT_WR)--> DONE
 *                        OPEN --any other end--> CUT
 *                            --spill drained (or given up)--> DONE, reset
 *   The connection is released when both are DONE.  The application
 *   closing its end altogether (EPOLLHUP or EPIPE on appfd) ends "down" at
 *   once; "up" then reads what is left and sends close_notify.  Datagrams
 *   have no half-close: either direction ending ends both.
 *
 *   Only the peer's close_notify gives the application EOF (RFC 8446
 *   s6.1: a connection that ends without it may have been truncated).
 *   Any other end after the handshake -- EOF or a reset from the network
 *   without close_notify, a fatal alert received, a record that does not
 *   decrypt, the DTLS idle timeout, a local error, tp_relay_free() -- is a
 *   "cut": netfd is closed at once without close_notify (which would tell
 *   the peer the stream ended cleanly), "up" is DONE, and "down" is CUT.
 *   CUT still delivers the spill to the application, and for SOCK_SEQPACKET
 *   waits until the application has read every message (SIOCOUTQ on appfd
 *   is 0), because there the kernel reports the error before the messages
 *   still queued; a connection whose application takes nothing for the
 *   drain timeout (tp_relay_set_drain_timeout) is reset anyway.  Then the
 *   application's end is reset: its read() fails with ECONNRESET after
 *   the bytes that arrived (then returns 0).
 *
 *   Resetting.  Linux gives a Unix socket ECONNRESET (sk_err) when its
 *   peer is closed with unread data in the peer's receive queue
 *   (unix_release_sock()), so appfd is closed with at least one byte that
 *   the application wrote still unread in it:
 *   - SOCK_STREAM: tp_relay_add() puts one byte into appfd from the
 *     application's end before the application has it, and from then on
 *     the relay never reads appfd empty: it consumes what SIOCINQ
 *     reports less one byte and reads that last byte with MSG_PEEK into
 *     the same record (one write of the application stays one record);
 *     c->lag says that the byte left at the head went out already.  The
 *     first byte is a dummy, never forwarded.  This works after the
 *     application shut its end for writing (a half-closed client reading
 *     a response, where a send from its end would fail with EPIPE), and
 *     wherever the application's end went (dup2, fork, another process).
 *     The price: one ioctl and one 1-byte peek per read of appfd.
 *   - SOCK_SEQPACKET: the queue cannot keep a message while the relay
 *     reads the ones behind it, so at reset time the relay finds the
 *     application's end in this process -- the number given to
 *     tp_relay_add, duplicated and checked by st_dev/st_ino (the
 *     application may have closed or moved it), else a scan of
 *     /proc/self/fd -- sends one byte from it and closes the duplicate.
 *     An end that lives only in another process cannot be found: the
 *     application then reads EOF (starttls_end() still says why).
 *   A clean end shuts appfd both ways (the application can write no more:
 *   EPIPE), discards what is left in it and closes it: EOF, no reset.
 *
 *   How each connection ended (kind, alert, bytes of plaintext each way) is
 *   kept for starttls_end(): in the connection while it lives, then in a
 *   table of the last ENDED_MAX ends, both under reg_mu, found by the
 *   st_dev/st_ino of the application's end.  The kind is written before
 *   appfd is shut or reset, so an application that wakes up on EOF or
 *   ECONNRESET finds it.
 *
 *   Datagrams (DTLS).  appfd is SOCK_SEQPACKET: one recv is one message,
 *   sent as one record; one record received is one message.  A message
 *   larger than the session's data MTU (gnutls_dtls_get_data_mtu) cannot
 *   go out as one record: gnutls_record_send says GNUTLS_E_LARGE_PACKET
 *   and the relay drops that message, as the network drops a datagram
 *   that does not fit, and the connection goes on.  There is no
 *   keep-alive: a datagram connection with no traffic either way for the
 *   idle timeout (tp_relay_set_idle_timeout) is cut, without close_notify
 *   (the application did not end it; the peer idles out on its own).  Each
 *   worker that holds datagram or draining connections wakes at least
 *   every IDLE_TICK_MS to look at their last-activity times; one with only
 *   open streams sleeps until an event.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib.h"
#include "pool.h"
#include "relay_int.h"

#define MAX_THREADS 1024
/* The longest a worker with datagram or draining connections sleeps. */
#define IDLE_TICK_MS 250
/* A cut connection whose application takes nothing for this long is
 * reset with its spill undelivered (tp_relay_set_drain_timeout). */
#define DRAIN_MS 10000

/* --- the worker --- */

static void enqueue(struct worker *w, struct conn *c)
{
	if (c->queued)
		return;
	c->queued = true;
	c->rnext = NULL;
	*w->rtail = c;
	w->rtail = &c->rnext;
}

/* Pump the connections queued so far; those queued again meanwhile wait
 * for the next round, after new events were collected. */
static void run_queue(struct worker *w)
{
	struct conn *c = w->rhead, *next;

	w->rhead = NULL;
	w->rtail = &w->rhead;
	for (; c != NULL; c = next) {
		next = c->rnext;
		c->queued = false;
		switch (tp_relay_pump(c, w->scratch)) {
		case P_MORE:
			enqueue(w, c);
			break;
		case P_FINISHED:
			tp_relay_conn_release(c);
			break;
		case P_IDLE:
			break;
		}
	}
}

static void on_event(struct worker *w, struct end *e, uint32_t ev)
{
	struct conn *c = e->c;

	if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		e->rd = true;
	if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR))
		e->wr = true;
	if (e == &c->app && (ev & (EPOLLRDHUP | EPOLLHUP)))
		c->app_rdhup = true;
	if (e == &c->app && (ev & EPOLLHUP) && c->downs != DOWN_DONE) {
		/* The application can receive no more (it closed its end,
		 * or both directions are shut anyway). */
		tp_relay_spill_drop(&c->down);
		c->downs = DOWN_DONE;
	}
	if (c->taken) {
		enqueue(w, c);
	} else if (!c->early) {
		/* Registered, not yet on the incoming list: what the event
		 * said is kept until it is (settle_early). */
		c->early = true;
		w->nearly++;
	}
}

/* Take the connections handed over by tp_relay_add, which registered
 * them with epoll itself before it put them on the incoming list. */
static void take_list(struct worker *w, struct conn *c)
{
	struct conn *next;

	for (; c != NULL; c = next) {
		next = c->next;
		c->prev = NULL;
		c->taken = true;
		if (c->early) {
			c->early = false;
			w->nearly--;
		}
		c->next = w->live;
		if (w->live != NULL)
			w->live->prev = c;
		w->live = c;
		if (c->datagram) {
			c->last_ms = tp_relay_mono_ms();
			c->idling = true;
			w->ndgram++;
		}
		/* netfd could not be registered (ENOMEM, ENOSPC:
		 * max_user_watches): cut, released by the pump after this
		 * batch's events, as always. */
		if (c->add_err != 0)
			tp_relay_cut(c, STARTTLS_END_ERROR, WHY_ERRNO,
			             c->add_err);
		/* Try both sides at once: gnutls may already hold records
		 * that arrived with the end of the handshake. */
		enqueue(w, c);
	}
}

static void take_incoming(struct worker *w)
{
	struct conn *c;

	pthread_mutex_lock(&w->mu);
	c = w->incoming;
	w->incoming = NULL;
	pthread_mutex_unlock(&w->mu);
	take_list(w, c);
}

/* Connections whose registration reported an event before tp_relay_add
 * put them on the incoming list: take them if they are there now, else
 * ask (under the mutex, so that no append is missed) to be woken by the
 * eventfd when one comes. */
static void settle_early(struct worker *w)
{
	struct conn *c;

	while (w->nearly > 0) {
		pthread_mutex_lock(&w->mu);
		c = w->incoming;
		w->incoming = NULL;
		w->early_wait = c == NULL;
		pthread_mutex_unlock(&w->mu);
		if (c == NULL)
			return;
		take_list(w, c);
	}
}

/* Every IDLE_TICK_MS: cut the datagram connections silent for the idle
 * timeout, give up draining those whose application takes nothing for
 * the drain timeout, and look again at the others that drain (a
 * SOCK_SEQPACKET application reading its last messages). */
static void sweep(struct worker *w)
{
	unsigned idle = atomic_load(&w->r->idle_ms);
	unsigned drain = atomic_load(&w->r->drain_ms);
	long long now = tp_relay_mono_ms();
	struct conn *c;

	if (now < w->next_idle_ms)
		return;
	w->next_idle_ms = now + IDLE_TICK_MS;
	for (c = w->live; c != NULL; c = c->next) {
		if (c->downs == DOWN_CUT) {
			if (now - c->last_ms >= drain)
				c->give_up = true;
			enqueue(w, c);
		} else if (c->datagram && idle != 0 && !c->queued &&
		           c->downs == DOWN_OPEN && now - c->last_ms >= idle) {
			tp_relay_cut(c, STARTTLS_END_IDLE, WHY_IDLE, (int)idle);
			enqueue(w, c);
		}
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct epoll_event ev[64];

	while (!atomic_load(&w->stop)) {
		bool tick = w->ndgram > 0 || w->ndrain > 0;
		bool take = false;
		int n = epoll_wait(w->epfd, ev, 64,
		                   w->rhead != NULL ? 0
		                   : tick           ? IDLE_TICK_MS
		                                    : -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			break; /* cannot happen with a valid epfd */
		}
		/* An event for a connection not taken yet: its registration
		 * reported readiness (tp_relay_add). */
		for (int i = 0; i < n; i++) {
			struct end *e = ev[i].data.ptr;
			eventfd_t v;

			/* the eventfd: a connection to take, or stop */
			if (e == NULL)
				eventfd_read(w->evfd, &v);
			if (e == NULL || !e->c->taken)
				take = true;
		}
		if (take)
			take_incoming(w);
		for (int i = 0; i < n; i++)
			if (ev[i].data.ptr != NULL)
				on_event(w, ev[i].data.ptr, ev[i].events);
		settle_early(w);
		run_queue(w);
		if (w->ndgram > 0 || w->ndrain > 0)
			sweep(w);
	}
	return NULL;
}

/* --- the interface --- */

/* After the thread stopped: what is left is cut, the application's end
 * reset (the peer sees the connection cut too: no close_notify). */
static void stop_conn(struct conn *c)
{
	tp_relay_set_how(c, STARTTLS_END_ERROR, WHY_STOPPED, 0);
	tp_relay_conn_release(c);
}

static void worker_fini(struct worker *w)
{
	struct conn *c, *next;

	for (c = w->live; c != NULL; c = next) {
		next = c->next;
		stop_conn(c);
	}
	for (c = w->incoming, w->incoming = NULL; c != NULL; c = next) {
		next = c->next;
		c->next = NULL;
		stop_conn(c);
	}
	if (w->epfd >= 0)
		close(w->epfd);
	if (w->evfd >= 0)
		close(w->evfd);
	pthread_mutex_destroy(&w->mu);
}

static int worker_init(tp_relay *r, struct worker *w)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};

	w->r = r;
	w->rtail = &w->rhead;
	w->evfd = -1;
	pthread_mutex_init(&w->mu, NULL);
	if ((w->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    (w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 ||
	    epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->evfd, &ev) < 0)
		return -1;
	return 0;
}

static void stop_workers(tp_relay *r, unsigned started)
{
	for (unsigned i = 0; i < started; i++) {
		atomic_store(&r->w[i].stop, true);
		eventfd_write(r->w[i].evfd, 1);
	}
	for (unsigned i = 0; i < started; i++)
		pthread_join(r->w[i].tid, NULL);
}

tp_relay *tp_relay_new(unsigned nthreads)
{
	tp_relay *r = NULL;
	sigset_t all, old;
	unsigned made = 0, started = 0;
	int err = ENOMEM;

	if (nthreads == 0 || nthreads > MAX_THREADS) {
		errno = EINVAL;
		return NULL;
	}
	tp_relay_reg_atfork();
	if ((r = calloc(1, sizeof(*r))) == NULL ||
	    (r->w = calloc(nthreads, sizeof(*r->w))) == NULL)
		goto err;
	r->nthreads = nthreads;
	atomic_store(&r->drain_ms, DRAIN_MS);
	for (; made < nthreads; made++)
		if (worker_init(r, &r->w[made]) < 0) {
			err = errno;
			made++;
			goto err;
		}
	/* Workers take no signals: those belong to the application. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (; started < nthreads; started++)
		if ((err = pthread_create(&r->w[started].tid, NULL, worker_main,
		                          &r->w[started])) != 0)
			break;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (started < nthreads)
		goto err;
	return r;

err:
	if (r != NULL && r->w != NULL) {
		stop_workers(r, started);
		for (unsigned i = 0; i < made; i++)
			worker_fini(&r->w[i]);
		free(r->w);
	}
	free(r);
	errno = err;
	return NULL;
}

void tp_relay_free(tp_relay *r)
{
	if (r == NULL)
		return;
	stop_workers(r, r->nthreads);
	/* No close_notify for connections cut short: the peer must not
	 * take a truncated stream for a complete one. */
	for (unsigned i = 0; i < r->nthreads; i++)
		worker_fini(&r->w[i]);
	free(r->w);
	free(r);
}

void tp_relay_set_release_hook(tp_relay *r, void (*hook)(void *))
{
	r->on_release = hook;
}

void tp_relay_set_idle_timeout(tp_relay *r, unsigned ms)
{
	atomic_store(&r->idle_ms, ms);
}

void tp_relay_set_drain_timeout(tp_relay *r, unsigned ms)
{
	atomic_store(&r->drain_ms, ms);
}

size_t tp_relay_count(tp_relay *r)
{
	return r == NULL ? 0 : atomic_load(&r->count);
}

int tp_relay_flush(tp_relay *r, unsigned timeout_ms)
{
	struct timespec t0, t;

	if (r == NULL)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (tp_relay_closing(r) > 0) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 +
		            (t.tv_nsec - t0.tv_nsec) / 1000000 >=
		    (long)timeout_ms) {
			errno = ETIMEDOUT;
			return -1;
		}
		usleep(2000);
	}
	return 0;
}

/* gnutls's own push uses send() without MSG_NOSIGNAL unless the session
 * was made with GNUTLS_NO_SIGNAL; a peer that resets must not kill the
 * application with SIGPIPE, whatever flags the session had.  (The workers
 * also block signals, so a SIGPIPE would stay pending on the thread; the
 * flag does not rely on that.) */
static ssize_t push_nosignal(gnutls_transport_ptr_t ptr, const giovec_t *iov,
                             int iovcnt)
{
	struct msghdr m = {.msg_iov = (struct iovec *)iov,
	                   .msg_iovlen = (size_t)iovcnt};

	return sendmsg((int)(intptr_t)ptr, &m, MSG_NOSIGNAL);
}

/* Non-blocking (the workers never wait on one descriptor) and close-on-exec
 * (a child of the application must not keep the connection open). */
static int prepare_fd(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		return -1;
	return 0;
}

/* Both ends must be sockets: the push function uses sendmsg(), and
 * appfd must be of the kind the mode needs (a stream, or SOCK_SEQPACKET
 * where one message is one record) for send() and shutdown(). */
static int check_sockets(int netfd, int appfd, int datagram)
{
	int type;
	socklen_t len = sizeof(type);

	if (getsockopt(netfd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
	    getsockopt(appfd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
		return -1;
	if (type != (datagram ? SOCK_SEQPACKET : SOCK_STREAM)) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

/*
 * appfd_peer must be appfd's other end, with nothing sent yet: one byte
 * sent from it must be all that appfd holds.  A stream keeps that byte as
 * the one that resets ("Resetting" in the outline); a datagram end reads it
 * back.
 */
/*
 * tlspoold hands the application's end of a datagram connection to
 * another process, where the reset of "Resetting" cannot find it.  There
 * the relay keeps the last message it forwarded at appfd's head, as it
 * keeps a byte of a stream: the check's byte stays as the first head, and
 * SO_PEEK_OFF (socket(7)) lets the relay peek at the message behind the
 * head before it drops the head.  appfd then never closes empty, and the
 * application's next read fails with ECONNRESET wherever its end went.
 * 1 when c keeps its head (the byte is in place), 0 otherwise.
 */
static int keep_dgram_head(struct conn *c)
{
	int off = 1, q = 0;

	if (!tp_pool_is_serving() || ioctl(c->app.fd, SIOCINQ, &q) < 0 ||
	    q != 1 ||
	    setsockopt(c->app.fd, SOL_SOCKET, SO_PEEK_OFF, &off, sizeof(off)) !=
	            0)
		return 0;
	c->keep_head = true;
	return 1;
}

/*
 * The application's end of a stream gets a send buffer of at least
 * APP_SNDBUF (Linux doubles what is asked, up to net.core.wmem_max).  The
 * relay keeps the newest unread byte in appfd ("Resetting"), and with it
 * the whole buffer that byte came in, which counts against the sender
 * until it is read; a Unix socket is writable only while what it has in
 * flight is below a quarter of its send buffer (unix_writable()).  A
 * write() makes buffers of at most about 32 KiB, but sendfile(2) and
 * splice(2) hand over up to 16 pages in one (splice_to_socket()): with
 * the default 208 KiB (a quarter is 52 KiB) such a sender stalled for
 * good once the relay kept a byte of one (check_relay.c,
 * sendfile_into_app_end).  Best effort: a failure leaves the default.
 */
#define APP_SNDBUF (192 * 1024)

static int check_peer(struct conn *c, int appfd_peer, bool trusted)
{
	struct stat st;
	unsigned char b;
	int q = 0, sb = APP_SNDBUF;

	if (fstat(appfd_peer, &st) < 0)
		return -1;
	if (!S_ISSOCK(st.st_mode)) {
		errno = ENOTSOCK;
		return -1;
	}
	if (!c->datagram)
		(void)setsockopt(appfd_peer, SOL_SOCKET, SO_SNDBUF, &sb,
		                 sizeof(sb));
	c->app_peer = appfd_peer;
	c->app_dev = st.st_dev;
	c->app_ino = st.st_ino;
	c->lag = !c->datagram;
	/* a stream pair the caller made itself: the byte goes last (add) */
	if (trusted && !c->datagram)
		return 0;
	if (send(appfd_peer, "", 1, MSG_DONTWAIT | MSG_NOSIGNAL) != 1) {
		if (errno == ENOTCONN || errno == EPIPE)
			errno = EINVAL;
		return -1;
	}
	if (c->datagram && keep_dgram_head(c))
		return 0;
	if (c->datagram ? recv(c->app.fd, &b, 1, MSG_DONTWAIT) != 1
	                : ioctl(c->app.fd, SIOCINQ, &q) < 0 || q != 1) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

/* Edge-triggered, for reading; for writing too once a write found no
 * room (tp_relay_want_out).  See "Events" in the outline. */
static int watch(struct worker *w, struct end *e, int op)
{
	struct epoll_event ev = {
	        .events = EPOLLIN | EPOLLRDHUP | EPOLLET |
	                  (e->out ? EPOLLOUT : 0),
	        .data.ptr = e,
	};

	return epoll_ctl(w->epfd, op, e->fd, &ev);
}

int tp_relay_want_out(struct end *e)
{
	e->wr = false;
	if (e->out)
		return 0;
	e->out = true;
	/* The registration reports at once whether there is room now. */
	return watch(e->c->w, e, EPOLL_CTL_MOD);
}

static struct worker *least_loaded(tp_relay *r)
{
	struct worker *best = &r->w[0];

	for (unsigned i = 1; i < r->nthreads; i++)
		if (atomic_load(&r->w[i].nconn) < atomic_load(&best->nconn))
			best = &r->w[i];
	return best;
}

static int add(tp_relay *r, gnutls_session_t session, int netfd, int appfd,
               int appfd_peer, int datagram, bool trusted,
               struct tp_ahead *ahead)
{
	struct conn *c = NULL;
	struct worker *w;
	int err, late = 0;
	bool wake, byte;

	if (r == NULL || session == NULL || netfd == appfd ||
	    appfd_peer == appfd || appfd_peer == netfd) {
		tp_fail(EINVAL, "relay: no relay, no session, or the same "
		                "descriptor twice");
		goto err;
	}
	if (!trusted && (prepare_fd(netfd) < 0 || prepare_fd(appfd) < 0)) {
		tp_fail(errno, "relay: descriptor: %s", strerror(errno));
		goto err;
	}
	if (!trusted && check_sockets(netfd, appfd, datagram) < 0) {
		tp_fail(errno, "relay: %s",
		        errno == EINVAL
		                ? (datagram ? "appfd is not SOCK_SEQPACKET"
		                            : "appfd is not SOCK_STREAM")
		                : strerror(errno));
		goto err;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		tp_fail(ENOMEM, "relay: out of memory");
		goto err;
	}
	c->datagram = datagram != 0;
	/* Room to write until a write finds none; data to read when epoll
	 * says so (the registration reports what is there already). */
	c->app = (struct end){.c = c, .fd = appfd, .wr = true};
	if (check_peer(c, appfd_peer, trusted) < 0) {
		tp_fail(errno, "relay: appfd_peer: %s",
		        errno == EINVAL ? "not the other end of appfd"
		                        : strerror(errno));
		goto err;
	}
	if (datagram) {
		gnutls_transport_set_int(session, netfd);
		gnutls_transport_set_vec_push_function(session, push_nosignal);
	} else {
		/* the read-ahead needs the connection (relay_io.c) */
		gnutls_transport_set_ptr(session, c);
		gnutls_transport_set_pull_function(session, tp_relay_pull);
		gnutls_transport_set_pull_timeout_function(
		        session, tp_relay_pull_timeout);
		gnutls_transport_set_vec_push_function(session, tp_relay_push);
	}
	c->s = session;
	c->net = (struct end){.c = c, .fd = netfd, .wr = true};
	/* Read before the hand-off: the first pump gives it to the session
	 * (tp_relay_pump looks at c->ra), epoll could not announce it. */
	if (ahead != NULL && ahead->len > 0 && !c->datagram) {
		c->ra = *ahead;
		*ahead = (struct tp_ahead){0};
	}
	c->w = w = least_loaded(r);
	/* Registered here, in the caller's thread (epoll_ctl is
	 * thread-safe), before the connection goes on the incoming list; see
	 * "Threads" in the outline.  A failure of the first fails the call. */
	if (watch(w, &c->app, EPOLL_CTL_ADD) < 0) {
		tp_fail(errno, "relay: epoll: %s", strerror(errno));
		goto err;
	}
	/* The worker may hold an event that names c already (appfd of
	 * tp_relay_add holds a byte): c is the worker's to release now. */
	if (watch(w, &c->net, EPOLL_CTL_ADD) < 0)
		c->add_err = errno;
	/* Counted before the worker takes it, so that tp_relay_count never
	 * misses a connection in transit. */
	atomic_fetch_add(&w->nconn, 1);
	atomic_fetch_add(&r->count, 1);
	tp_relay_reg_add(c);
	/* What wakes the worker to take it: a stream pair's byte, sent just
	 * after c goes on the list (the worker finds it there), else the
	 * eventfd; and the eventfd for a worker that had an event of c
	 * before the append (early_wait). */
	byte = trusted && !c->datagram;
	wake = !byte || c->add_err != 0;
	atomic_store(&c->refs, 2); /* the worker's, and this call's */
	pthread_mutex_lock(&w->mu);
	c->next = w->incoming;
	w->incoming = c;
	wake = wake || w->early_wait;
	w->early_wait = false;
	pthread_mutex_unlock(&w->mu);
	if (wake)
		eventfd_write(w->evfd, 1);
	/* c may be released by the worker from here on; this call's
	 * reference keeps its memory.  EPIPE: it was, appfd is closed (a
	 * peer that ended the connection at once), and the application's
	 * end was reset or finished all the same (relay_end.c finds the end
	 * in this process): not an error.  Otherwise, without its byte
	 * appfd could not be reset: the worker cuts c at its next pass (the
	 * application's end, closed by the caller, gives it one) and the
	 * call fails. */
	if (byte && send(appfd_peer, "", 1, MSG_DONTWAIT | MSG_NOSIGNAL) != 1 &&
	    errno != EPIPE) {
		late = errno;
		atomic_store(&c->late_err, late);
		eventfd_write(w->evfd, 1);
	}
	if (ahead != NULL)
		tp_ahead_drop(ahead); /* held nothing */
	tp_relay_conn_unref(c);
	if (late != 0) {
		tp_fail(late, "relay: appfd_peer: %s", strerror(late));
		errno = late;
		return -1;
	}
	return 0;

err:
	err = errno;
	if (c != NULL)
		tp_ahead_drop(&c->ra);
	free(c);
	if (ahead != NULL)
		tp_ahead_drop(ahead);
	if (session != NULL)
		tp_relay_release_session(r, session);
	close(netfd);
	if (appfd != netfd)
		close(appfd);
	errno = err;
	return -1;
}

int tp_relay_add(tp_relay *r, gnutls_session_t session, int netfd, int appfd,
                 int appfd_peer, int datagram)
{
	return add(r, session, netfd, appfd, appfd_peer, datagram, false, NULL);
}

int tp_relay_add_pair(tp_relay *r, gnutls_session_t session, int netfd,
                      int appfd, int appfd_peer, int datagram,
                      struct tp_ahead *ahead)
{
	return add(r, session, netfd, appfd, appfd_peer, datagram, true, ahead);
}
