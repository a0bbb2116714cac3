/*
 * The relay engine: after the handshake, moves data between a TLS (or
 * DTLS) session on a network descriptor and plaintext on the
 * application's end of a socketpair.  A fixed number of threads, each
 * with its own epoll set, serves every connection; no thread per
 * connection.
 */
#ifndef TLSPOOL_RELAY_H
#define TLSPOOL_RELAY_H

#include <gnutls/gnutls.h>
#include <stddef.h>

typedef struct tp_relay tp_relay;

/* An engine with nthreads (>= 1) threads.  NULL with errno on failure. */
tp_relay *tp_relay_new(unsigned nthreads);

/*
 * Hand over a connection whose handshake is complete.  Takes ownership of
 * session, netfd and appfd in every case: on failure they are released
 * (gnutls_deinit, close) before returning -1 with errno.  datagram is
 * nonzero for DTLS: appfd is then a SOCK_SEQPACKET end and one message is
 * one record.
 */
int tp_relay_add(tp_relay *r, gnutls_session_t session, int netfd, int appfd,
                 int datagram);

/* Connections currently relayed. */
size_t tp_relay_count(tp_relay *r);

/* Stop the threads and release every connection.  NULL is accepted. */
void tp_relay_free(tp_relay *r);

#endif
