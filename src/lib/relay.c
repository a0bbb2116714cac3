/*
 * The relay engine: moves data between a TLS (or DTLS) session on netfd and
 * plaintext on the application's end of a socketpair, appfd.
 *
 * Outline
 *
 *   Threads.  tp_relay_new() starts nthreads workers.  Each owns an epoll
 *   set, an eventfd that wakes it, a list of its live connections and a run
 *   queue.  tp_relay_add() validates and prepares the descriptors in the
 *   caller's thread (so that bad arguments fail synchronously), picks the
 *   least loaded worker, appends the connection to that worker's mutex
 *   protected "incoming" list and writes the eventfd.  From then on exactly
 *   one thread touches the connection and its GnuTLS session, so the
 *   per-connection state needs no locks.
 *
 *   Events.  Both descriptors are registered once, edge-triggered, for
 *   reading and writing (no epoll_ctl per state change).  An event only
 *   records readiness in the end's rd/wr flags and queues the connection; a
 *   flag is cleared when a call on that descriptor reports EAGAIN.  The run
 *   queue then "pumps" each queued connection: it makes as much progress as
 *   the flags allow, for a bounded number of steps so that one busy
 *   connection cannot starve the others (a connection that used its budget
 *   is queued again and epoll_wait does not block).  Releasing happens only
 *   in the pump, after every event of the batch was recorded, so no stale
 *   event can name a freed connection.
 *
 *   Data.  Each direction reads into the worker's scratch buffer (one
 *   record, 16 KiB) and forwards at once.  Only what the other side would
 *   not take is copied into a per-connection spill buffer, allocated then
 *   and freed once drained: an idle connection holds no buffer.  While a
 *   direction's spill is not empty its source is not read: that is the
 *   back-pressure, and it bounds memory to one block per direction.
 *   gnutls may hold decrypted records that epoll cannot announce, so the
 *   TLS side is also read when gnutls_record_check_pending() says so.
 *
 *   Close (the state machine, per direction):
 *     up   (app -> net): OPEN --app EOF--> BYE --close_notify sent--> DONE
 *     down (net -> app): OPEN --close_notify or EOF--> SHUT
 *                            --spill drained, shutdown(appfd, SHUT_WR)--> DONE
 *   The connection is released when both are DONE.  The application
 *   closing its end altogether (EPOLLHUP or EPIPE on appfd) ends "down" at
 *   once; "up" then reads what is left and sends close_notify.  Datagrams
 *   have no half-close: either direction ending ends both.  Errors (TLS
 *   alerts, bad records, resets, other errno) abort: no close_notify is
 *   sent, since that would tell the peer the stream ended cleanly, and
 *   closing appfd gives the application EOF or ECONNRESET.
 *
 *   Datagrams (DTLS).  appfd is SOCK_SEQPACKET: one recv is one message,
 *   sent as one record; one record received is one message.  A message
 *   larger than the session's data MTU (gnutls_dtls_get_data_mtu) cannot
 *   go out as one record: gnutls_record_send says GNUTLS_E_LARGE_PACKET
 *   and the relay drops that message, as the network drops a datagram
 *   that does not fit, and the connection goes on.  There is no
 *   keep-alive: a datagram connection with no traffic either way for the
 *   idle timeout (tp_relay_set_idle_timeout) is closed, with close_notify
 *   best effort.  Each worker that holds datagram connections wakes at
 *   least every IDLE_TICK_MS to look at their last-activity times; one
 *   with only streams sleeps until an event.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <poll.h>
#include <time.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include "lib.h"
#include "relay.h"

/* One TLS record of plaintext (RFC 8446 s5.1, RFC 5246 s6.2.1). */
#define BLOCK 16384
/* Steps (each moves at most one block) before others get their turn. */
#define BUDGET      16
#define MAX_THREADS 1024
/* The longest a worker with datagram connections sleeps. */
#define IDLE_TICK_MS 250

enum up_state { UP_OPEN, UP_BYE, UP_DONE };
enum down_state { DOWN_OPEN, DOWN_SHUT, DOWN_DONE };
enum pump_result { P_IDLE, P_MORE, P_FINISHED, P_ABORT };

struct conn;

/* One descriptor and what epoll last said about it. */
struct end {
	struct conn *c;
	int fd;
	bool rd, wr;
};

/* Data read from one side that the other side has not yet taken. */
struct spill {
	unsigned char *buf;
	size_t off, len;
};

struct worker;

struct conn {
	struct end net, app;
	gnutls_session_t s;
	struct worker *w;
	struct conn *prev, *next; /* the worker's live list */
	struct conn *rnext;       /* the run queue */
	struct spill up, down;
	enum up_state ups;
	enum down_state downs;
	bool datagram;
	bool queued;
	bool recv_wants_wr;  /* gnutls_record_recv blocked on a write */
	bool app_rdhup;      /* epoll saw the application shut its end */
	long long last_ms;   /* datagram: the last progress, for idling */
	atomic_bool up_done; /* ups == UP_DONE, for tp_relay_flush */
	struct conn *aprev, *anext; /* the relay's list of all, under amu */
};

struct worker {
	tp_relay *r;
	pthread_t tid;
	int epfd, evfd;
	atomic_size_t nconn;
	atomic_bool stop;
	pthread_mutex_t mu; /* protects incoming */
	struct conn *incoming;
	struct conn *live;            /* worker thread only */
	struct conn *rhead, **rtail;  /* worker thread only */
	size_t ndgram;                /* worker thread only */
	long long next_idle_ms;       /* worker thread only */
	unsigned char scratch[BLOCK]; /* worker thread only */
};

struct tp_relay {
	unsigned nthreads;
	atomic_size_t count;
	struct worker *w;
	void (*on_release)(void *); /* see tp_relay_set_release_hook */
	atomic_uint idle_ms;        /* datagram idle timeout; 0 never */
	pthread_mutex_t amu;        /* protects all */
	struct conn *all; /* every live connection, for tp_relay_flush */
};

/* --- releasing --- */

static void spill_drop(struct spill *sp)
{
	free(sp->buf);
	sp->buf = NULL;
	sp->off = sp->len = 0;
}

/* The session goes first, then what it used (the hook). */
static void release_session(tp_relay *r, gnutls_session_t s)
{
	void *ptr = gnutls_session_get_ptr(s);

	gnutls_deinit(s);
	if (r != NULL && r->on_release != NULL)
		r->on_release(ptr);
}

/* Every connection ends here: in the worker, or in tp_relay_free after the
 * workers stopped.  The explicit EPOLL_CTL_DEL matters if a descriptor has
 * a duplicate elsewhere, which would keep the registration alive. */
static void conn_release(struct conn *c)
{
	struct worker *w = c->w;
	tp_relay *r = w->r;

	/* Off the list before appfd is closed: tp_relay_flush polls it. */
	pthread_mutex_lock(&r->amu);
	if (c->aprev != NULL)
		c->aprev->anext = c->anext;
	else
		r->all = c->anext;
	if (c->anext != NULL)
		c->anext->aprev = c->aprev;
	pthread_mutex_unlock(&r->amu);

	epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->net.fd, NULL);
	epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->app.fd, NULL);
	release_session(w->r, c->s);
	close(c->net.fd);
	close(c->app.fd);
	spill_drop(&c->up);
	spill_drop(&c->down);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else if (w->live == c)
		w->live = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	if (c->datagram && c->last_ms != 0)
		w->ndgram--;
	atomic_fetch_sub(&w->nconn, 1);
	atomic_fetch_sub(&w->r->count, 1);
	free(c);
}

/* --- moving data --- */

/* Keep len bytes that the other side would not take. */
static int spill_keep(struct spill *sp, const unsigned char *p, size_t len)
{
	if (sp->buf == NULL && (sp->buf = malloc(BLOCK)) == NULL)
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
		spill_drop(sp);
}

/*
 * Hand plaintext to gnutls, one record per call.  *sent counts what gnutls
 * took.  Returns 0 when all was taken or the socket is full (net.wr
 * cleared), -1 on a fatal error.  After GNUTLS_E_AGAIN the caller keeps
 * the unsent bytes and calls again with the same data, as the GnuTLS
 * manual requires: gnutls then flushes the record it already encrypted.
 */
static int tls_send(struct conn *c, const unsigned char *p, size_t len,
                    size_t *sent)
{
	*sent = 0;
	while (*sent < len) {
		ssize_t r = gnutls_record_send(c->s, p + *sent, len - *sent);

		if (r > 0) {
			*sent += (size_t)r;
		} else if (r == GNUTLS_E_AGAIN) {
			c->net.wr = false;
			return 0;
		} else if (r == GNUTLS_E_INTERRUPTED) {
			continue;
		} else if (c->datagram && r == GNUTLS_E_LARGE_PACKET) {
			/* Larger than the path MTU: a datagram is lost. */
			*sent = len;
		} else {
			return -1;
		}
	}
	return 0;
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
		c->app.wr = false;
		return 0;
	}
	return n;
}

/* Application to network.  Returns 1 on progress, 0 when blocked, -1 to
 * abort. */
static int step_up(struct conn *c, unsigned char *scratch)
{
	size_t sent;
	ssize_t n;
	int r;

	if (c->ups == UP_DONE || !c->net.wr)
		return 0;
	if (c->up.len > 0) {
		if (tls_send(c, c->up.buf + c->up.off, c->up.len - c->up.off,
		             &sent) < 0)
			return -1;
		if (sent == 0)
			return 0;
		spill_advance(&c->up, sent);
		return 1;
	}
	if (c->ups == UP_OPEN) {
		if (!c->app.rd)
			return 0;
		n = recv(c->app.fd, scratch, BLOCK, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				c->app.rd = false;
				return 0;
			}
			return errno == EINTR ? 1 : -1;
		}
		if (n == 0) {
			/* On SOCK_SEQPACKET an empty message also reads as
			 * 0; only the shutdown that epoll reported is EOF.
			 * An empty message carries nothing: dropped. */
			if (!c->datagram || c->app_rdhup)
				c->ups = UP_BYE;
			return 1;
		}
		if (tls_send(c, scratch, (size_t)n, &sent) < 0)
			return -1;
		if (sent < (size_t)n &&
		    spill_keep(&c->up, scratch + sent, (size_t)n - sent) < 0)
			return -1;
		return 1;
	}
	/* UP_BYE with nothing left: close_notify (RFC 8446 s6.1). */
	r = gnutls_bye(c->s, GNUTLS_SHUT_WR);
	if (r == GNUTLS_E_AGAIN) {
		c->net.wr = false;
		return 0;
	}
	if (r == GNUTLS_E_INTERRUPTED)
		return 1;
	if (r < 0)
		return -1;
	c->ups = UP_DONE;
	atomic_store(&c->up_done, true);
	if (c->datagram)
		c->downs = DOWN_DONE;
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
	return c->net.rd || gnutls_record_check_pending(c->s) > 0;
}

/* Network to application.  Returns 1 on progress, 0 when blocked, -1 to
 * abort. */
static int step_down(struct conn *c, unsigned char *scratch)
{
	ssize_t n, r;

	if (c->downs == DOWN_DONE)
		return 0;
	if (c->down.len > 0) {
		if (!c->app.wr)
			return 0;
		n = app_send(c, c->down.buf + c->down.off,
		             c->down.len - c->down.off);
		if (n < 0)
			goto app_error;
		if (n == 0)
			return 0;
		spill_advance(&c->down, (size_t)n);
		return 1;
	}
	if (c->downs == DOWN_SHUT) {
		if (!c->datagram)
			shutdown(c->app.fd, SHUT_WR);
		c->downs = DOWN_DONE;
		if (c->datagram)
			c->ups = UP_DONE;
		return 1;
	}
	if (!can_recv(c))
		return 0;
	r = gnutls_record_recv(c->s, scratch, BLOCK);
	c->recv_wants_wr = false;
	if (r == 0 || r == GNUTLS_E_PREMATURE_TERMINATION) {
		/* close_notify, or EOF without it: both give the
		 * application EOF (DESIGN section 2). */
		c->downs = DOWN_SHUT;
		return 1;
	}
	if (r == GNUTLS_E_AGAIN) {
		/* A TLS 1.3 KeyUpdate reply can block recv on a write. */
		if (gnutls_record_get_direction(c->s) == 1) {
			c->recv_wants_wr = true;
			c->net.wr = false;
			return 0;
		}
		/* GnuTLS also answers AGAIN after a post-handshake message
		 * (a TLS 1.3 NewSessionTicket) when the socket is not empty:
		 * with edge-triggered epoll no new edge would come for what
		 * is already there, so only a socket that really has
		 * nothing (EAGAIN) clears the flag. */
		{
			char b;
			ssize_t k =
			        recv(c->net.fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);

			if (k < 0 &&
			    (errno == EAGAIN || errno == EWOULDBLOCK)) {
				c->net.rd = false;
				return 0;
			}
		}
		return 1; /* try again: data or EOF is waiting */
	}
	if (r < 0) {
		if (!gnutls_error_is_fatal((int)r))
			return 1; /* warning alert, renegotiation request */
		/* Tell the peer why, once, without waiting. */
		gnutls_alert_send_appropriate(c->s, (int)r);
		return -1;
	}
	n = c->app.wr ? app_send(c, scratch, (size_t)r) : 0;
	if (n < 0)
		goto app_error;
	if (n < r && spill_keep(&c->down, scratch + n, (size_t)(r - n)) < 0)
		return -1;
	return 1;

app_error:
	if (errno != EPIPE)
		return -1;
	/* The application closed its end: nothing more can reach it, but
	 * what it wrote before is still relayed and closed with
	 * close_notify. */
	spill_drop(&c->down);
	c->downs = DOWN_DONE;
	return 1;
}

static long long mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000 + 1;
}

static enum pump_result pump(struct conn *c, unsigned char *scratch)
{
	int budget = BUDGET, up, down;

	for (;;) {
		if ((up = step_up(c, scratch)) < 0 ||
		    (down = step_down(c, scratch)) < 0)
			return P_ABORT;
		if (c->datagram && (up || down) && budget == BUDGET)
			c->last_ms = mono_ms();
		if (c->ups == UP_DONE && c->downs == DOWN_DONE)
			return P_FINISHED;
		if (!up && !down)
			return P_IDLE;
		if (--budget == 0)
			return P_MORE;
	}
}

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
		switch (pump(c, w->scratch)) {
		case P_MORE:
			enqueue(w, c);
			break;
		case P_FINISHED:
		case P_ABORT:
			conn_release(c);
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
		spill_drop(&c->down);
		c->downs = DOWN_DONE;
	}
	enqueue(w, c);
}

static int watch(struct worker *w, struct end *e)
{
	struct epoll_event ev = {
	        .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
	        .data.ptr = e,
	};

	return epoll_ctl(w->epfd, EPOLL_CTL_ADD, e->fd, &ev);
}

/* Register the connections handed over by tp_relay_add.  A failure here
 * (ENOMEM, ENOSPC: max_user_watches) can only release the connection. */
static void take_incoming(struct worker *w)
{
	struct conn *c, *next;
	eventfd_t v;

	eventfd_read(w->evfd, &v);
	pthread_mutex_lock(&w->mu);
	c = w->incoming;
	w->incoming = NULL;
	pthread_mutex_unlock(&w->mu);
	for (; c != NULL; c = next) {
		next = c->next;
		c->next = w->live;
		if (w->live != NULL)
			w->live->prev = c;
		w->live = c;
		if (watch(w, &c->net) < 0 || watch(w, &c->app) < 0) {
			conn_release(c);
			continue;
		}
		if (c->datagram) {
			c->last_ms = mono_ms();
			w->ndgram++;
		}
		/* Try both sides at once: gnutls may already hold records
		 * that arrived with the end of the handshake. */
		enqueue(w, c);
	}
}

/* Close the datagram connections silent for the idle timeout.  The
 * close_notify goes out if the socket takes it at once; the application
 * gets EOF. */
static void expire_idle(struct worker *w)
{
	unsigned idle = atomic_load(&w->r->idle_ms);
	long long now = mono_ms();
	struct conn *c, *next;

	if (now < w->next_idle_ms)
		return;
	w->next_idle_ms = now + IDLE_TICK_MS;
	if (idle == 0)
		return;
	for (c = w->live; c != NULL; c = next) {
		next = c->next;
		if (!c->datagram || c->queued || now - c->last_ms < idle)
			continue;
		gnutls_bye(c->s, GNUTLS_SHUT_WR);
		conn_release(c);
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct epoll_event ev[64];

	while (!atomic_load(&w->stop)) {
		int n = epoll_wait(w->epfd, ev, 64,
		                   w->rhead != NULL ? 0
		                   : w->ndgram > 0  ? IDLE_TICK_MS
		                                    : -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			break; /* cannot happen with a valid epfd */
		}
		for (int i = 0; i < n; i++) {
			if (ev[i].data.ptr == NULL)
				take_incoming(w);
			else
				on_event(w, ev[i].data.ptr, ev[i].events);
		}
		run_queue(w);
		if (w->ndgram > 0)
			expire_idle(w);
	}
	return NULL;
}

/* --- the interface --- */

static void worker_fini(struct worker *w)
{
	struct conn *c;

	while ((c = w->live) != NULL)
		conn_release(c);
	while ((c = w->incoming) != NULL) {
		w->incoming = c->next;
		c->next = NULL;
		conn_release(c);
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
	if ((r = calloc(1, sizeof(*r))) == NULL ||
	    (r->w = calloc(nthreads, sizeof(*r->w))) == NULL)
		goto err;
	r->nthreads = nthreads;
	pthread_mutex_init(&r->amu, NULL);
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

size_t tp_relay_count(tp_relay *r)
{
	return r == NULL ? 0 : atomic_load(&r->count);
}

/*
 * Connections whose application end is closed (or shut for writing) but
 * whose close_notify has not gone out yet: what would be lost if the
 * process ended now.  poll() on appfd sees the application's close even
 * before the worker has processed it, so there is no race with the
 * worker's own view.
 */
static size_t closing(tp_relay *r)
{
	size_t n = 0;
	struct conn *c;

	pthread_mutex_lock(&r->amu);
	for (c = r->all; c != NULL; c = c->anext) {
		struct pollfd p = {c->app.fd, POLLRDHUP, 0};

		if (!atomic_load(&c->up_done) && poll(&p, 1, 0) == 1 &&
		    (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
			n++;
	}
	pthread_mutex_unlock(&r->amu);
	return n;
}

int tp_relay_flush(tp_relay *r, unsigned timeout_ms)
{
	struct timespec t0, t;

	if (r == NULL)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (closing(r) > 0) {
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

static struct worker *least_loaded(tp_relay *r)
{
	struct worker *best = &r->w[0];

	for (unsigned i = 1; i < r->nthreads; i++)
		if (atomic_load(&r->w[i].nconn) < atomic_load(&best->nconn))
			best = &r->w[i];
	return best;
}

int tp_relay_add(tp_relay *r, gnutls_session_t session, int netfd, int appfd,
                 int datagram)
{
	struct conn *c = NULL;
	struct worker *w;
	int err;

	if (r == NULL || session == NULL || netfd == appfd) {
		tp_fail(EINVAL,
		        "relay: no relay, no session, or netfd == appfd");
		goto err;
	}
	if (prepare_fd(netfd) < 0 || prepare_fd(appfd) < 0) {
		tp_fail(errno, "relay: descriptor: %s", strerror(errno));
		goto err;
	}
	if (check_sockets(netfd, appfd, datagram) < 0) {
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
	gnutls_transport_set_int(session, netfd);
	gnutls_transport_set_vec_push_function(session, push_nosignal);
	c->s = session;
	c->net = (struct end){.c = c, .fd = netfd, .rd = true, .wr = true};
	c->app = (struct end){.c = c, .fd = appfd, .rd = true, .wr = true};
	c->datagram = datagram != 0;
	c->w = w = least_loaded(r);
	/* Counted before the worker sees it, so that tp_relay_count never
	 * misses a connection in transit. */
	atomic_fetch_add(&w->nconn, 1);
	atomic_fetch_add(&r->count, 1);
	pthread_mutex_lock(&r->amu);
	c->anext = r->all;
	if (r->all != NULL)
		r->all->aprev = c;
	r->all = c;
	pthread_mutex_unlock(&r->amu);
	pthread_mutex_lock(&w->mu);
	c->next = w->incoming;
	w->incoming = c;
	pthread_mutex_unlock(&w->mu);
	eventfd_write(w->evfd, 1);
	return 0;

err:
	err = errno;
	if (session != NULL)
		release_session(r, session);
	close(netfd);
	if (appfd != netfd)
		close(appfd);
	errno = err;
	return -1;
}
