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
 *   per-connection state needs no locks (except what starttls_end() reads,
 *   below).
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
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
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
#include "relay.h"

/* One TLS record of plaintext (RFC 8446 s5.1, RFC 5246 s6.2.1). */
#define BLOCK 16384
/* Steps (each moves at most one block) before others get their turn. */
#define BUDGET      16
#define MAX_THREADS 1024
/* The longest a worker with datagram or draining connections sleeps. */
#define IDLE_TICK_MS 250
/* A cut connection whose application takes nothing for this long is
 * reset with its spill undelivered (tp_relay_set_drain_timeout). */
#define DRAIN_MS 10000
/* Ends kept for starttls_end() after the connection was released. */
#define ENDED_MAX 1024

enum up_state { UP_OPEN, UP_BYE, UP_DONE };
enum down_state { DOWN_OPEN, DOWN_SHUT, DOWN_CUT, DOWN_DONE };
enum pump_result { P_IDLE, P_MORE, P_FINISHED };

/* What the detail of starttls_end() says beside the kind; code is an
 * errno, a GnuTLS error, an alert or milliseconds. */
enum why {
	WHY_NONE,
	WHY_FIN,     /* EOF from the network without close_notify */
	WHY_ERRNO,   /* the network or a local call failed: code */
	WHY_GNUTLS,  /* GnuTLS failed: code */
	WHY_ALERT,   /* a fatal alert received: code */
	WHY_IDLE,    /* no datagram for code ms */
	WHY_STOPPED, /* tp_relay_free() */
};

/* How a connection ended (or goes), as starttls_end() reports it. */
struct ending {
	unsigned char kind; /* starttls_end_kind */
	unsigned char why;  /* enum why */
	int code;
};

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
	bool recv_wants_wr; /* gnutls_record_recv blocked on a write */
	bool app_rdhup;     /* epoll saw the application shut its end */
	bool lag;           /* stream: the byte at appfd's head was forwarded */
	bool draining;      /* DOWN_CUT, counted in the worker's ndrain */
	bool give_up;       /* DOWN_CUT: the drain timeout passed */
	bool idling;        /* datagram, counted in the worker's ndgram */
	long long last_ms;  /* datagram: the last progress, for idling;
	                       DOWN_CUT: the last delivery, for giving up */
	atomic_bool up_done; /* ups == UP_DONE, for tp_relay_flush */
	/* The application's end: its number when handed over, and its
	 * identity, by which starttls_end() and the reset find it. */
	int app_peer;
	dev_t app_dev;
	ino_t app_ino;
	/* Plaintext given to the application, taken by gnutls; written by
	 * the worker only, read by starttls_end(). */
	atomic_ullong bytes_in, bytes_out;
	struct ending how;          /* written by the worker under reg_mu */
	struct conn *aprev, *anext; /* all connections, under reg_mu */
};

struct worker {
	tp_relay *r;
	pthread_t tid;
	int epfd, evfd;
	atomic_size_t nconn;
	atomic_bool stop;
	pthread_mutex_t mu; /* protects incoming */
	struct conn *incoming;
	struct conn *live;                /* worker thread only */
	struct conn *rhead, **rtail;      /* worker thread only */
	size_t ndgram;                    /* worker thread only */
	size_t ndrain;                    /* worker thread only */
	long long next_idle_ms;           /* worker thread only */
	unsigned char scratch[BLOCK + 1]; /* worker thread only */
};

struct tp_relay {
	unsigned nthreads;
	atomic_size_t count;
	struct worker *w;
	void (*on_release)(void *); /* see tp_relay_set_release_hook */
	atomic_uint idle_ms;        /* datagram idle timeout; 0 never */
	atomic_uint drain_ms;       /* see tp_relay_set_drain_timeout */
};

/* --- the registry of connections and their ends (starttls_end) --- */

/* An ended connection, for starttls_end(). */
struct ended {
	dev_t dev;
	ino_t ino;
	unsigned long long in, out;
	struct ending how;
};

/* Process-wide, like the relay libtlspool uses.  Protects every
 * connection's aprev/anext and how, and the table. */
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct conn *reg_all;              /* every live connection */
static struct ended reg_ended[ENDED_MAX]; /* a ring, newest at next-1 */
static unsigned reg_next, reg_count;

/* A fork() while a worker holds reg_mu must not leave it locked in the
 * child, whose starttls_end() would hang. */
static void reg_lock(void)
{
	pthread_mutex_lock(&reg_mu);
}

static void reg_unlock(void)
{
	pthread_mutex_unlock(&reg_mu);
}

static void reg_atfork(void)
{
	pthread_atfork(reg_lock, reg_unlock, reg_unlock);
}

static void reg_add(struct conn *c)
{
	reg_lock();
	c->anext = reg_all;
	if (reg_all != NULL)
		reg_all->aprev = c;
	reg_all = c;
	reg_unlock();
}

/* Off the list, and into the table when it ended in a way the
 * application can ask about (kind OPEN: the application closed it). */
static void reg_remove(struct conn *c)
{
	reg_lock();
	if (c->aprev != NULL)
		c->aprev->anext = c->anext;
	else
		reg_all = c->anext;
	if (c->anext != NULL)
		c->anext->aprev = c->aprev;
	if (c->how.kind != STARTTLS_END_OPEN) {
		struct ended *e = &reg_ended[reg_next];

		e->dev = c->app_dev;
		e->ino = c->app_ino;
		e->in = atomic_load_explicit(&c->bytes_in,
		                             memory_order_relaxed);
		e->out = atomic_load_explicit(&c->bytes_out,
		                              memory_order_relaxed);
		e->how = c->how;
		reg_next = (reg_next + 1) % ENDED_MAX;
		if (reg_count < ENDED_MAX)
			reg_count++;
	}
	reg_unlock();
}

/* The first end a connection meets is the one it keeps. */
static void set_how(struct conn *c, starttls_end_kind kind, enum why why,
                    int code)
{
	reg_lock();
	if (c->how.kind == STARTTLS_END_OPEN)
		c->how = (struct ending){(unsigned char)kind,
		                         (unsigned char)why, code};
	reg_unlock();
}

static void describe(starttls_end_info *info, const struct ending *how)
{
	char *d = info->detail;
	size_t n = sizeof(info->detail);
	unsigned long long in = info->bytes_in;

	switch (how->why) {
	case WHY_FIN:
		snprintf(d, n,
		         "the peer closed the connection without close_notify "
		         "after %llu bytes",
		         in);
		break;
	case WHY_ERRNO:
		snprintf(d, n, "%s after %llu bytes: %s",
		         how->kind == STARTTLS_END_TRUNCATED
		                 ? "the connection failed without close_notify"
		                 : "a local error",
		         in, strerror(how->code));
		break;
	case WHY_GNUTLS:
		snprintf(d, n, "TLS error after %llu bytes: %s", in,
		         gnutls_strerror(how->code));
		break;
	case WHY_ALERT:
		snprintf(d, n,
		         "the peer sent the fatal alert \"%s\" (%d) after "
		         "%llu bytes",
		         gnutls_alert_get_name(
		                 (gnutls_alert_description_t)how->code),
		         how->code, in);
		break;
	case WHY_IDLE:
		snprintf(d, n,
		         "no datagram either way for %d ms (the idle timeout) "
		         "after %llu bytes",
		         how->code, in);
		break;
	case WHY_STOPPED:
		snprintf(d, n, "the relay engine was stopped after %llu bytes",
		         in);
		break;
	default:
		if (how->kind == STARTTLS_END_CLOSE_NOTIFY)
			snprintf(d, n,
			         "the peer closed the connection with "
			         "close_notify after %llu bytes",
			         in);
		else
			snprintf(d, n, "open: %llu bytes in, %llu bytes out",
			         in, info->bytes_out);
	}
}

static void fill_info(starttls_end_info *info, const struct ending *how,
                      unsigned long long in, unsigned long long out)
{
	if (info == NULL)
		return;
	memset(info, 0, sizeof(*info));
	info->kind = (starttls_end_kind)how->kind;
	info->alert = how->why == WHY_ALERT ? how->code : 0;
	info->bytes_in = in;
	info->bytes_out = out;
	describe(info, how);
}

int tp_relay_end_info(dev_t dev, ino_t ino, starttls_end_info *info)
{
	struct conn *c;
	int rv = -1;

	reg_lock();
	for (c = reg_all; c != NULL; c = c->anext)
		if (c->app_ino == ino && c->app_dev == dev) {
			fill_info(info, &c->how,
			          atomic_load_explicit(&c->bytes_in,
			                               memory_order_relaxed),
			          atomic_load_explicit(&c->bytes_out,
			                               memory_order_relaxed));
			rv = 0;
			break;
		}
	/* Newest first: an inode number can come back. */
	for (unsigned i = 1; rv < 0 && i <= reg_count; i++) {
		const struct ended *e =
		        &reg_ended[(reg_next + ENDED_MAX - i) % ENDED_MAX];

		if (e->ino == ino && e->dev == dev) {
			fill_info(info, &e->how, e->in, e->out);
			rv = 0;
		}
	}
	reg_unlock();
	if (rv < 0)
		errno = ENOENT;
	return rv;
}

/* --- resetting the application's end --- */

static bool is_app_end(const struct conn *c, int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) &&
	       st.st_ino == c->app_ino && st.st_dev == c->app_dev;
}

/* A duplicate of the application's end, or -1 when it is open nowhere in
 * this process.  Duplicate first, then check: a number closed or reused
 * meanwhile cannot make the relay write into another socket. */
static int app_end_dup(const struct conn *c)
{
	int d = fcntl(c->app_peer, F_DUPFD_CLOEXEC, 0);
	DIR *dir;
	struct dirent *de;

	if (d >= 0 && is_app_end(c, d))
		return d;
	if (d >= 0)
		close(d);
	/* Moved (dup2, a descriptor of its own making): look for it. */
	if ((dir = opendir("/proc/self/fd")) == NULL)
		return -1;
	d = -1;
	while (d < 0 && (de = readdir(dir)) != NULL) {
		struct stat st;
		char *end;
		long n = strtol(de->d_name, &end, 10);

		if (*end != '\0' || end == de->d_name || n < 0 ||
		    n == dirfd(dir) ||
		    fstatat(dirfd(dir), de->d_name, &st, 0) != 0 ||
		    st.st_ino != c->app_ino || st.st_dev != c->app_dev)
			continue;
		d = fcntl((int)n, F_DUPFD_CLOEXEC, 0);
		if (d >= 0 && !is_app_end(c, d)) {
			close(d);
			d = -1;
		}
	}
	closedir(dir);
	return d;
}

/* Make the application's next read fail with ECONNRESET once appfd is
 * closed: appfd must hold a byte it has not read ("Resetting" above). */
static void app_reset(struct conn *c)
{
	int q = 0, d;

	if (ioctl(c->app.fd, SIOCINQ, &q) == 0 && q > 0)
		return; /* a stream's kept byte, or unread messages */
	if ((d = app_end_dup(c)) < 0)
		return; /* closed, or in another process: EOF */
	(void)send(d, "", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
	close(d);
}

/* A clean end: EOF for the application, and nothing left in appfd that
 * would turn the close into a reset. */
static void app_finish(struct conn *c, unsigned char *scratch)
{
	shutdown(c->app.fd, SHUT_RDWR);
	for (int i = 0; i < 64; i++)
		if (recv(c->app.fd, scratch, BLOCK, MSG_DONTWAIT) <= 0)
			break;
}

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
static void conn_release(struct conn *c)
{
	struct worker *w = c->w;

	/* Off the list (tp_relay_flush polls appfd) and into the table. */
	reg_remove(c);
	close_net(c);
	epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->app.fd, NULL);
	release_session(w->r, c->s);
	if (bad_end(c))
		app_reset(c);
	else
		app_finish(c, w->scratch);
	close(c->app.fd);
	spill_drop(&c->up);
	spill_drop(&c->down);
	live_unlink(w, c);
	if (c->idling)
		w->ndgram--;
	if (c->draining)
		w->ndrain--;
	atomic_fetch_sub(&w->nconn, 1);
	atomic_fetch_sub(&w->r->count, 1);
	free(c);
}

static long long mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000 + 1;
}

/*
 * The connection ended other than by the peer's close_notify: record why,
 * close netfd without close_notify, stop reading the application, and let
 * "down" deliver what it holds before the reset.  After close_notify or
 * the application's close, "down" keeps its course.
 */
static void cut(struct conn *c, starttls_end_kind kind, enum why why, int code)
{
	set_how(c, kind, why, code);
	close_net(c);
	c->ups = UP_DONE;
	atomic_store(&c->up_done, true);
	spill_drop(&c->up);
	if (c->downs == DOWN_OPEN) {
		c->downs = DOWN_CUT;
		c->draining = true;
		c->w->ndrain++;
		c->last_ms = mono_ms();
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
	if (err == GNUTLS_E_PREMATURE_TERMINATION)
		cut(c, STARTTLS_END_TRUNCATED, WHY_FIN, 0);
	else if (err == GNUTLS_E_FATAL_ALERT_RECEIVED)
		cut(c, STARTTLS_END_ALERT, WHY_ALERT,
		    (int)gnutls_alert_get(c->s));
	else if ((err == GNUTLS_E_PULL_ERROR || err == GNUTLS_E_PUSH_ERROR) &&
	         peer_gone(e))
		cut(c, STARTTLS_END_TRUNCATED, WHY_ERRNO, e);
	else
		cut(c, STARTTLS_END_ERROR, WHY_GNUTLS, err);
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
		spill_drop(&c->up);
		return;
	}
	cut_tls(c, err, e);
}

/* --- moving data --- */

static void count(atomic_ullong *a, size_t n)
{
	atomic_store_explicit(a,
	                      atomic_load_explicit(a, memory_order_relaxed) + n,
	                      memory_order_relaxed);
}

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
 * cleared), or a GnuTLS error with errno as the push left it.  After
 * GNUTLS_E_AGAIN the caller keeps the unsent bytes and calls again with
 * the same data, as the GnuTLS manual requires: gnutls then flushes the
 * record it already encrypted.
 */
static int tls_send(struct conn *c, const unsigned char *p, size_t len,
                    size_t *sent)
{
	*sent = 0;
	while (*sent < len) {
		ssize_t r = gnutls_record_send(c->s, p + *sent, len - *sent);

		if (r > 0) {
			*sent += (size_t)r;
			count(&c->bytes_out, (size_t)r);
		} else if (r == GNUTLS_E_AGAIN) {
			c->net.wr = false;
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
	if (n > 0)
		count(&c->bytes_in, (size_t)n);
	return n;
}

/*
 * Stream: take what the application wrote, leaving its newest byte in
 * appfd once forwarded ("Resetting" above): all that SIOCINQ reports but
 * one byte is consumed, and that byte is read with MSG_PEEK behind the
 * rest, so that one write of the application still goes out as one
 * record.  scratch holds BLOCK + 1 bytes: the byte at the head that went
 * out before (c->lag), then up to BLOCK new ones.  Returns the number of
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
	want = (size_t)q - 1 < BLOCK - 1 + skip ? (size_t)q - 1
	                                        : BLOCK - 1 + skip;
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

/* Datagram: one message.  Returns its length, at *p; 0 with *eof or
 * app.rd cleared, or after an empty message; -1 with errno. */
static ssize_t app_recv_msg(struct conn *c, unsigned char *scratch,
                            unsigned char **p, bool *eof)
{
	ssize_t n = recv(c->app.fd, scratch, BLOCK, MSG_DONTWAIT);

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
			cut(c, STARTTLS_END_ERROR, WHY_ERRNO, errno);
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
			cut(c, STARTTLS_END_ERROR, WHY_ERRNO, ENOMEM);
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
	return c->net.rd || gnutls_record_check_pending(c->s) > 0;
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
	spill_drop(&c->down);
	if (e != EPIPE && c->downs == DOWN_OPEN)
		cut(c, STARTTLS_END_ERROR, WHY_ERRNO, e);
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

/* Network to application.  Returns 1 on progress, 0 when blocked. */
static int step_down(struct conn *c, unsigned char *scratch)
{
	ssize_t n, r;

	switch (c->downs) {
	case DOWN_DONE:
		return 0;
	case DOWN_CUT:
		if (c->down.len > 0 && !c->give_up) {
			if (!drain_down(c))
				return 0;
			c->last_ms = mono_ms();
			return 1;
		}
		if (!c->give_up && app_unread(c))
			return 0; /* woken by EPOLLOUT as it reads, or the tick
			           */
		spill_drop(&c->down);
		c->downs = DOWN_DONE;
		return 1;
	case DOWN_SHUT:
		if (c->down.len > 0)
			return drain_down(c);
		/* Recorded (set_how took reg_mu) before the application can
		 * see the EOF. */
		if (!c->datagram)
			shutdown(c->app.fd, SHUT_WR);
		c->downs = DOWN_DONE;
		if (c->datagram)
			c->ups = UP_DONE;
		return 1;
	case DOWN_OPEN:
		break;
	}
	if (c->down.len > 0)
		return drain_down(c);
	if (!can_recv(c))
		return 0;
	r = gnutls_record_recv(c->s, scratch, BLOCK);
	c->recv_wants_wr = false;
	if (r == 0) {
		/* close_notify: the only end that is EOF. */
		set_how(c, STARTTLS_END_CLOSE_NOTIFY, WHY_NONE, 0);
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
		cut(c, STARTTLS_END_ERROR, WHY_ERRNO, ENOMEM);
	return 1;
}

static enum pump_result pump(struct conn *c, unsigned char *scratch)
{
	int budget = BUDGET, up, down;

	for (;;) {
		up = step_up(c, scratch);
		down = step_down(c, scratch);
		if (c->datagram && c->downs == DOWN_OPEN && (up || down) &&
		    budget == BUDGET)
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
		c->prev = c->next = NULL;
		/* On the live list only once registered: a connection that
		 * fails here is released from no list. */
		if (watch(w, &c->net) < 0 || watch(w, &c->app) < 0) {
			cut(c, STARTTLS_END_ERROR, WHY_ERRNO, errno);
			conn_release(c);
			continue;
		}
		c->next = w->live;
		if (w->live != NULL)
			w->live->prev = c;
		w->live = c;
		if (c->datagram) {
			c->last_ms = mono_ms();
			c->idling = true;
			w->ndgram++;
		}
		/* Try both sides at once: gnutls may already hold records
		 * that arrived with the end of the handshake. */
		enqueue(w, c);
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
	long long now = mono_ms();
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
			cut(c, STARTTLS_END_IDLE, WHY_IDLE, (int)idle);
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
		int n = epoll_wait(w->epfd, ev, 64,
		                   w->rhead != NULL ? 0
		                   : tick           ? IDLE_TICK_MS
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
	set_how(c, STARTTLS_END_ERROR, WHY_STOPPED, 0);
	conn_release(c);
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
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	tp_relay *r = NULL;
	sigset_t all, old;
	unsigned made = 0, started = 0;
	int err = ENOMEM;

	if (nthreads == 0 || nthreads > MAX_THREADS) {
		errno = EINVAL;
		return NULL;
	}
	pthread_once(&once, reg_atfork);
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

	reg_lock();
	for (c = reg_all; c != NULL; c = c->anext) {
		struct pollfd p = {c->app.fd, POLLRDHUP, 0};

		if (c->w->r == r && !atomic_load(&c->up_done) &&
		    poll(&p, 1, 0) == 1 &&
		    (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
			n++;
	}
	reg_unlock();
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

/*
 * appfd_peer must be appfd's other end, with nothing sent yet: one byte
 * sent from it must be all that appfd holds.  A stream keeps that byte as
 * the one that resets ("Resetting" above); a datagram end reads it back.
 */
static int check_peer(struct conn *c, int appfd_peer)
{
	struct stat st;
	unsigned char b;
	int q = 0;

	if (fstat(appfd_peer, &st) < 0)
		return -1;
	if (!S_ISSOCK(st.st_mode)) {
		errno = ENOTSOCK;
		return -1;
	}
	c->app_peer = appfd_peer;
	c->app_dev = st.st_dev;
	c->app_ino = st.st_ino;
	if (send(appfd_peer, "", 1, MSG_DONTWAIT | MSG_NOSIGNAL) != 1) {
		if (errno == ENOTCONN || errno == EPIPE)
			errno = EINVAL;
		return -1;
	}
	if (c->datagram ? recv(c->app.fd, &b, 1, MSG_DONTWAIT) != 1
	                : ioctl(c->app.fd, SIOCINQ, &q) < 0 || q != 1) {
		errno = EINVAL;
		return -1;
	}
	c->lag = !c->datagram;
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
                 int appfd_peer, int datagram)
{
	struct conn *c = NULL;
	struct worker *w;
	int err;

	if (r == NULL || session == NULL || netfd == appfd ||
	    appfd_peer == appfd || appfd_peer == netfd) {
		tp_fail(EINVAL, "relay: no relay, no session, or the same "
		                "descriptor twice");
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
	c->datagram = datagram != 0;
	c->app = (struct end){.c = c, .fd = appfd, .rd = true, .wr = true};
	if (check_peer(c, appfd_peer) < 0) {
		tp_fail(errno, "relay: appfd_peer: %s",
		        errno == EINVAL ? "not the other end of appfd"
		                        : strerror(errno));
		goto err;
	}
	gnutls_transport_set_int(session, netfd);
	gnutls_transport_set_vec_push_function(session, push_nosignal);
	c->s = session;
	c->net = (struct end){.c = c, .fd = netfd, .rd = true, .wr = true};
	c->w = w = least_loaded(r);
	/* Counted before the worker sees it, so that tp_relay_count never
	 * misses a connection in transit. */
	atomic_fetch_add(&w->nconn, 1);
	atomic_fetch_add(&r->count, 1);
	reg_add(c);
	pthread_mutex_lock(&w->mu);
	c->next = w->incoming;
	w->incoming = c;
	pthread_mutex_unlock(&w->mu);
	eventfd_write(w->evfd, 1);
	return 0;

err:
	err = errno;
	free(c);
	if (session != NULL)
		release_session(r, session);
	close(netfd);
	if (appfd != netfd)
		close(appfd);
	errno = err;
	return -1;
}
