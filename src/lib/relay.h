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
#include <sys/types.h>

#include "tlspool/starttls.h"
#include "transport.h"

typedef struct tp_relay tp_relay;

/* An engine with nthreads (1 to 1024) threads, which block all signals.
 * NULL with errno on failure (EINVAL for nthreads out of range). */
tp_relay *tp_relay_new(unsigned nthreads);

/*
 * Hand over a connection whose handshake is complete.  Takes ownership of
 * session, netfd and appfd in every case: on failure they are released
 * (gnutls_deinit, close) before returning -1 with errno (EINVAL, EBADF,
 * ENOTSOCK, ENOMEM, ENOSPC) and a detail for starttls_errstr().
 *
 * Both descriptors must be sockets; they are made non-blocking and
 * close-on-exec.  The session's transport is set to netfd and its push
 * function replaced by one that sends with MSG_NOSIGNAL, so that a peer
 * that resets cannot raise SIGPIPE.  appfd is a SOCK_STREAM end, or for
 * datagram nonzero (DTLS) a SOCK_SEQPACKET end where one message is one
 * record.
 *
 * appfd_peer is the other end of appfd, the one the application gets,
 * not yet used: nothing sent on it, nothing queued in appfd.  It stays
 * the caller's (neither kept nor closed); the relay sends one byte from it
 * now (EINVAL if appfd does not get it), and records its number and its
 * st_dev/st_ino: starttls_end() finds the connection by them, and the
 * relay uses them to reset the application's end (relay.c, "Resetting").
 *
 * EOF on appfd sends close_notify.  Only the peer's close_notify gives the
 * application EOF (after every byte that arrived); any other end -- EOF or
 * a reset without close_notify, a fatal alert, a bad record, the DTLS idle
 * timeout, a local error, tp_relay_free() -- closes netfd at once without
 * close_notify, delivers what the relay still holds (at most the drain
 * timeout) and resets appfd: the application's read() fails with
 * ECONNRESET after the bytes that arrived.  The connection is released
 * when both directions ended.  DTLS has no half-close: either end finishes
 * both.
 */
int tp_relay_add(tp_relay *r, gnutls_session_t session, int netfd, int appfd,
                 int appfd_peer, int datagram);

/*
 * tp_relay_add() for descriptors the caller made itself (starttls.c's
 * hand-off): netfd and appfd are close-on-exec, netfd a socket and
 * appfd/appfd_peer a fresh socketpair of the kind the mode needs.  For a
 * stream they may be blocking (every call of the relay on them passes
 * MSG_DONTWAIT); for a datagram they must be non-blocking (GnuTLS's DTLS
 * reads with plain recv()).  The checks that prove this are skipped
 * (seven system calls per connection, docs/architecture.md
 * "Performance"); the rest is the same, except that a stream's byte from
 * appfd_peer is sent last, once the connection is the worker's: its
 * arrival is what wakes the worker.  A connection the peer ended at
 * once may be over by then; the application's end then reads as it
 * ended (starttls_end() says how).
 *
 * ahead (may be NULL) holds what the handshake's transport read from
 * netfd beyond what the session took (transport.h): the relay gives it
 * to the session before anything it reads itself, and takes the buffer
 * in every case (*ahead is left empty).
 */
int tp_relay_add_pair(tp_relay *r, gnutls_session_t session, int netfd,
                      int appfd, int appfd_peer, int datagram,
                      struct tp_ahead *ahead);

/*
 * hook(gnutls_session_get_ptr(session)) runs after each session handed
 * over is deinitialised, so that what the session used (credentials, the
 * configuration that holds them) can be released then and not before:
 * GnuTLS needs credentials to outlive their sessions.  Set it before the
 * first tp_relay_add().
 */
void tp_relay_set_release_hook(tp_relay *r, void (*hook)(void *));

/*
 * Datagram connections with no traffic either way for ms milliseconds are
 * cut (no close_notify: the application did not end them; starttls_end()
 * says STARTTLS_END_IDLE and the application's read() fails with
 * ECONNRESET); 0 never.  Checked about every 250 ms.  libtlspool sets it
 * from [tls] dtls_idle_timeout_ms.  Stream connections have no idle
 * timeout.
 */
void tp_relay_set_idle_timeout(tp_relay *r, unsigned ms);

/*
 * A connection cut short delivers what the relay still holds for the
 * application before it resets the application's end; when the
 * application takes nothing for ms milliseconds (default 10000), the
 * relay resets it anyway and drops the rest.  Checked about every 250 ms.
 */
void tp_relay_set_drain_timeout(tp_relay *r, unsigned ms);

/*
 * starttls_end() for the connection whose application end is the socket
 * (dev, ino), in any relay of the process: the live connection, else the
 * last of the 1024 most recent ends that matches.  0, or -1 with errno
 * ENOENT.  info may be NULL.
 */
int tp_relay_end_info(dev_t dev, ino_t ino, starttls_end_info *info);

/* Connections currently relayed (added and not yet released); 0 for NULL. */
size_t tp_relay_count(tp_relay *r);

/*
 * Wait until every connection whose application end was closed (or shut
 * for writing) has sent its remaining data and close_notify, at most
 * timeout_ms.  0, or -1 with errno ETIMEDOUT.  libtlspool calls it when
 * the process exits, so that a program that writes, closes and returns
 * from main() loses nothing.
 */
int tp_relay_flush(tp_relay *r, unsigned timeout_ms);

/* Stop the threads and release every connection, without close_notify: the
 * peer must not take a cut stream for a complete one.  Their applications'
 * ends are reset (STARTTLS_END_ERROR).  NULL is accepted. */
void tp_relay_free(tp_relay *r);

#endif
