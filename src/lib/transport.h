/* GnuTLS transport functions for the handshake: every wait ends at an
 * absolute deadline (transport.c). */
#ifndef TLSPOOL_TRANSPORT_H
#define TLSPOOL_TRANSPORT_H

#include <gnutls/gnutls.h>

struct tp_deadline_io {
	int fd;
	long long deadline; /* tp_mono_ms() */
	int timed_out;      /* set when a wait met the deadline */
};

/* The session reads and writes io->fd, never waiting past io->deadline;
 * io must outlive the handshake. */
void tp_transport_deadline(gnutls_session_t s, struct tp_deadline_io *io);

/* Plain blocking-style functions on fd again (for the relay, which makes
 * fd non-blocking and sets its own push function). */
void tp_transport_plain(gnutls_session_t s, int fd);

#endif
