/* GnuTLS transport functions for the handshake: every wait ends at an
 * absolute deadline (transport.c). */
#ifndef TLSPOOL_TRANSPORT_H
#define TLSPOOL_TRANSPORT_H

#include <gnutls/gnutls.h>

/*
 * Bytes read from a stream's socket that GnuTLS has not taken yet: one
 * recv() of up to TP_READAHEAD bytes serves the 5-byte header and the body
 * of every record that arrived together (a whole flight of the
 * handshake), where GnuTLS alone makes two recv() per record.  buf holds
 * TP_READAHEAD bytes, or is NULL (nothing held: an idle connection keeps
 * no buffer).  The handshake's read-ahead goes to the relay at hand-off
 * (tp_relay_add_pair), so that no byte is lost or read twice.
 */
#define TP_READAHEAD 65536

struct tp_ahead {
	unsigned char *buf;
	unsigned off, len;
};

/* A buffer of TP_READAHEAD bytes: one given back before (tp_ahead_drop),
 * else a new one; NULL without memory. */
unsigned char *tp_ahead_alloc(void);

/* Holds nothing from now on.  The buffer is kept for the next
 * tp_ahead_alloc() of any thread while fewer than four are kept, else
 * freed: handshakes and the relay's bursts reuse a few buffers, where a
 * malloc() and free() of 64 KiB each time made glibc shrink and grow the
 * heap (brk, page faults, a TLB flush on every CPU of the process).  Not
 * one per thread: a server with a thread per connection would keep one
 * for each. */
void tp_ahead_drop(struct tp_ahead *ra);

/* n bytes just read into ra->buf are what it holds now. */
void tp_ahead_fill(struct tp_ahead *ra, size_t n);

/* Up to len of the bytes ra holds into buf (ra must hold some): how
 * many. */
ssize_t tp_ahead_take(struct tp_ahead *ra, void *buf, size_t len);

struct tp_deadline_io {
	int fd;
	long long deadline; /* tp_mono_ms() */
	int timed_out;      /* set when a wait met the deadline */
	int stream;         /* read ahead into ra (not for datagrams) */
	int wait_first;     /* stream: the next read waits for the peer */
	int held;           /* stream: a ChangeCipherSpec held back */
	/* called once, at the first wait for the peer's answer to a flight
	 * of ours: work of the caller that would otherwise come later */
	void (*idle)(void *arg);
	void *idle_arg;
	struct tp_ahead ra;
};

/* The session reads and writes io->fd, never waiting past io->deadline;
 * io must outlive the handshake.  With io->stream set it reads ahead into
 * io->ra (zeroed by the caller), which the caller hands to the relay or
 * frees (tp_ahead_drop). */
void tp_transport_deadline(gnutls_session_t s, struct tp_deadline_io *io);

/* Send what a TCP socket holds back after a MSG_MORE: setting
 * TCP_NODELAY (again) pushes the pending segments out (a no-op on other
 * sockets). */
void tp_tcp_push(int fd);

/* Send what the transport held back (io->held), if anything: the
 * handshake is over. */
void tp_transport_flush(struct tp_deadline_io *io);

/* Plain blocking-style functions on fd again (for the relay, which makes
 * fd non-blocking and sets its own push function). */
void tp_transport_plain(gnutls_session_t s, int fd);

#endif
