/*
 * Internal declarations of the relay engine (relay.h), one concern per
 * file:
 *
 *   relay.c      the outline of the whole; the workers (epoll, the run
 *                queue, the idle and drain sweep) and the interface of
 *                relay.h
 *   relay_io.c   one connection in its worker: moving data both ways, the
 *                close state machine, releasing
 *   relay_end.c  the registry of connections and how each ended
 *                (starttls_end()); resetting the application's end
 *
 * A connection is touched by its worker's thread only, except what the
 * registry guards (reg_mu in relay_end.c).
 */
#ifndef TLSPOOL_RELAY_INT_H
#define TLSPOOL_RELAY_INT_H

#include <gnutls/gnutls.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "relay.h"
#include "transport.h"

/* One TLS record of plaintext (RFC 8446 s5.1, RFC 5246 s6.2.1). */
#define BLOCK 16384
/* What one read of a stream application may take: four records, sent one
 * after another (docs/architecture.md, "Performance"). */
#define UP_CHUNK (4 * BLOCK)

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
	bool out; /* EPOLLOUT registered (tp_relay_want_out) */
};

/* Read-ahead from a stream's network socket (relay_io.c, tp_relay_pull;
 * struct tp_ahead in transport.h): given back once empty (tp_ahead_drop),
 * so that an idle connection holds none.  See docs/architecture.md,
 * "Performance". */
#define READAHEAD TP_READAHEAD

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
	struct tp_ahead ra; /* stream: network bytes GnuTLS has not taken */
	enum up_state ups;
	enum down_state downs;
	bool datagram;
	bool queued;
	bool taken;          /* on the worker's live list (take_incoming) */
	bool early;          /* an event came before it was taken */
	int add_err;         /* tp_relay_add could not register netfd */
	atomic_int late_err; /* tp_relay_add_pair could not send the byte */
	bool late_seen;      /* late_err acted on */
	atomic_int refs;     /* the worker's, and tp_relay_add's until it
	                        returns */
	bool recv_wants_wr;  /* gnutls_record_recv blocked on a write */
	bool held;           /* held_r is the next gnutls_record_recv result */
	int held_r, held_errno;
	bool app_rdhup;    /* epoll saw the application shut its end */
	bool more;         /* stream: more follows this push at once
	                      (tp_relay_push) */
	bool pushed_more;  /* a push went out with MSG_MORE */
	bool lag;          /* stream: the byte at appfd's head was forwarded */
	bool keep_head;    /* datagram: the message at appfd's head was
	                      forwarded; new ones are peeked behind it
	                      (relay_io.c, app_recv_kept) */
	bool draining;     /* DOWN_CUT, counted in the worker's ndrain */
	bool give_up;      /* DOWN_CUT: the drain timeout passed */
	bool idling;       /* datagram, counted in the worker's ndgram */
	long long last_ms; /* datagram: the last progress, for idling;
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
	int epfd, evfd; /* evfd: tp_relay_free's wake-up */
	atomic_size_t nconn;
	atomic_bool stop;
	pthread_mutex_t mu; /* protects incoming and early_wait */
	bool early_wait;    /* the worker waits for an early connection */
	struct conn *incoming;
	struct conn *live;           /* worker thread only */
	struct conn *rhead, **rtail; /* worker thread only */
	size_t ndgram;               /* worker thread only */
	size_t ndrain;               /* worker thread only */
	size_t nearly;          /* connections with an event, not yet taken */
	long long next_idle_ms; /* worker thread only */
	unsigned char scratch[UP_CHUNK + 1]; /* worker thread only */
};

struct tp_relay {
	unsigned nthreads;
	atomic_size_t count;
	struct worker *w;
	void (*on_release)(void *); /* see tp_relay_set_release_hook */
	atomic_uint idle_ms;        /* datagram idle timeout; 0 never */
	atomic_uint drain_ms;       /* see tp_relay_set_drain_timeout */
};

/* Milliseconds on CLOCK_MONOTONIC, never 0. */
static inline long long tp_relay_mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000 + 1;
}

/* --- the registry and the application's end (relay_end.c) --- */

/* Install the registry's fork() handlers, once per process. */
void tp_relay_reg_atfork(void);
/* A connection handed over joins the registry (tp_relay_add). */
void tp_relay_reg_add(struct conn *c);
/* It leaves, and its end is kept for starttls_end() (released). */
void tp_relay_reg_remove(struct conn *c);
/* Record how c ends; the first end it meets is the one it keeps. */
void tp_relay_set_how(struct conn *c, starttls_end_kind kind, enum why why,
                      int code);
/* Connections of r whose application closed its end but whose
 * close_notify has not gone out yet (tp_relay_flush). */
size_t tp_relay_closing(tp_relay *r);
/* Release appfd so that the application's read fails with ECONNRESET. */
void tp_relay_app_reset(struct conn *c);
/* Release appfd cleanly: the application reads EOF. */
void tp_relay_app_finish(struct conn *c, unsigned char *scratch);

/* A write on e found no room: clear e->wr and register EPOLLOUT, once
 * for the connection's life (relay.c, "Events").  -1 with errno if
 * epoll_ctl failed. */
int tp_relay_want_out(struct end *e);

/* --- a connection in its worker (relay_io.c) --- */

void tp_relay_spill_drop(struct spill *sp);
/* A stream's GnuTLS transport over c (relay.c sets it at hand-off): pull
 * through the read-ahead, push with MSG_NOSIGNAL. */
ssize_t tp_relay_pull(gnutls_transport_ptr_t p, void *buf, size_t len);
int tp_relay_pull_timeout(gnutls_transport_ptr_t p, unsigned ms);
ssize_t tp_relay_push(gnutls_transport_ptr_t p, const giovec_t *iov,
                      int iovcnt);
/* gnutls_deinit(s), then r's release hook (r may be NULL). */
void tp_relay_release_session(tp_relay *r, gnutls_session_t s);
/* Record the end, close both descriptors, free c (worker thread, or
 * tp_relay_free after the workers stopped). */
void tp_relay_conn_release(struct conn *c);
/* Drop a reference to c; the last frees it. */
void tp_relay_conn_unref(struct conn *c);
/* End c other than by the peer's close_notify. */
void tp_relay_cut(struct conn *c, starttls_end_kind kind, enum why why,
                  int code);
/* Move c's data for a bounded number of steps. */
enum pump_result tp_relay_pump(struct conn *c, unsigned char *scratch);

#endif
