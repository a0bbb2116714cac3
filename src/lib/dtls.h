/* DTLS over UDP: what a call needs beyond a TLS session (dtls.c). */
#ifndef TLSPOOL_DTLS_H
#define TLSPOOL_DTLS_H

#include <gnutls/dtls.h>
#include <gnutls/gnutls.h>

/* Milliseconds on the monotonic clock: the calls' deadlines. */
long long tp_mono_ms(void);

/*
 * The server's stateless cookie exchange on a connected UDP socket: answer
 * ClientHellos without a valid cookie with a HelloVerifyRequest, keeping
 * no state, until one returns with it (left queued for the handshake) or
 * the deadline (tp_mono_ms() time) passes: 0, or -1 with errno ETIMEDOUT,
 * ECONNRESET, ENOMEM and a detail.
 */
int tp_dtls_cookie_exchange(int fd, long long deadline,
                            gnutls_dtls_prestate_st *prestate);

/* MTU from the path, the first retransmission after 1 s doubling up to
 * timeout_ms; prestate: the server's verified cookie, or NULL. */
void tp_dtls_setup(gnutls_session_t s, int fd, unsigned timeout_ms,
                   gnutls_dtls_prestate_st *prestate);

#endif
