/*
 * The thread-local validation trace behind starttls_last_trace(): what
 * the calling thread's last call learnt of its peer (certificates, the
 * lookup, the matchers' results).  Reset at the start of every call; the
 * keep functions take ownership of what they are given in every case.
 */
#ifndef TLSPOOL_TRACE_H
#define TLSPOOL_TRACE_H

#include "tlspool/starttls.h"

/* Empty this thread's trace (made on first use); 0, or -1 without memory
 * (the call then goes on without a trace). */
int tp_trace_reset(void);

/* The session after its handshake: version, cipher suite, ALPN, and
 * sni (the client's SNI, sent or received; NULL or "" for none).  The
 * handshake's time runs from tp_trace_reset() to this call, the
 * validation's from here to the last tp_trace_keep*(). */
void tp_trace_session(const char *version, const char *cipher, const char *alpn,
                      const char *sni);

/* Keep copies of the peer's certificates (at most 16). */
void tp_trace_chain(const tlspool_span *chain, size_t n);

/* The lookup at owner and the DANE matcher's result (either may be NULL);
 * a later lookup replaces an earlier one. */
void tp_trace_keep(const char *owner, tlspool_dns_answer *dns,
                   tlspool_dane_result *dane);

/* The cache answered for owner: no lookup, no matcher. */
void tp_trace_cached(const char *owner);

/* The OPENPGPKEY matcher's result. */
void tp_trace_keep_openpgp(tlspool_openpgp_result *res);

/* The LDAP step (ldapcheck.h); a later one replaces an earlier one. */
void tp_trace_keep_ldap(starttls_ldap_step *step);

#endif
