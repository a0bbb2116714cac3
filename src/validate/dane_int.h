/*
 * Internal declarations of the DANE matcher: dane.c runs the steps of
 * tlspool_dane_match() over the records, dane_chain.c parses the peer and
 * matches one record against its certificate chain (step 6).
 */
#ifndef TLSPOOL_DANE_INT_H
#define TLSPOOL_DANE_INT_H

#include <gnutls/x509.h>

#include "internal.h"

/* One certificate from the peer, with the DER octets that selectors
 * pick (RFC 6698 section 2.1.2). */
struct tp_dane_cert {
	gnutls_x509_crt_t crt;
	tlspool_span der, tbs, spki;
};

/* One run of the matcher. */
struct tp_dane_ctx {
	const tlspool_dane_input *in;
	tlspool_dane_result *res;
	/* c[0, n) as the peer sent them; c[n, n + nx) the untrusted extra
	 * certificates of TLSPOOL_DANE_EXTRA_CERTS */
	struct tp_dane_cert c[2 * TP_DANE_MAX_CHAIN];
	size_t n, nx;
	size_t path[2 * TP_DANE_MAX_CHAIN]; /* indices into c, path[0] = 0 */
	size_t npath;
};

/* The PKIX usages also need a PKIX path to the trust store (RFC 6698
 * section 2.1.1). */
static inline int tp_dane_is_pkix(unsigned usage)
{
	return usage == TLSPOOL_DANE_USAGE_PKIX_TA ||
	       usage == TLSPOOL_DANE_USAGE_PKIX_EE;
}

/* The end-entity usages match the end entity only. */
static inline int tp_dane_is_ee(unsigned usage)
{
	return usage == TLSPOOL_DANE_USAGE_PKIX_EE ||
	       usage == TLSPOOL_DANE_USAGE_DANE_EE;
}

/* How strong a usage's authentication is, when several records
 * authenticate: DANE-EE over DANE-TA over PKIX-EE over PKIX-TA. */
static inline int tp_dane_strength(unsigned usage)
{
	return usage <= TLSPOOL_DANE_USAGE_DANE_EE ? (int)usage : -1;
}

/* Set a record's outcome and its reason. */
void tp_dane_say(tlspool_dane_step *st, tlspool_dane_outcome o, const char *fmt,
                 ...) __attribute__((format(printf, 3, 4)));

/* "DANE-TA Cert SHA2-256", for reasons (thread-local). */
const char *tp_dane_params(const tlspool_tlsa *t);

/* Step 2: parse the peer's chain (and with TLSPOOL_DANE_EXTRA_CERTS the
 * extra certificates) and find its issuer path, or check its raw key.
 * 0, or -1 with the reason in x->res->reason. */
int tp_dane_peer_parse(struct tp_dane_ctx *x);
void tp_dane_peer_free(struct tp_dane_ctx *x);

/* Does the record's association data match these selected octets? */
int tp_dane_assoc_matches(const tlspool_tlsa *t, const tlspool_span *sel);

/* Step 6 for one usable record against the certificate chain: sets the
 * record's outcome, depth and chain index. */
void tp_dane_match_chain(struct tp_dane_ctx *x, const tlspool_tlsa *t,
                         tlspool_dane_step *st);

#endif
