/*
 * tlspool/dane.h -- DANE matching (RFC 6698, RFC 7671, RFC 7672), the
 * identities that X.509 certificates name, and TLSA record generation.
 *
 * The matcher is a pure function of its input: the peer's certificate
 * chain (or RFC 7250 raw public key), the TLSA records with the DNSSEC
 * verdict of their lookup, the reference names, the time and a trust
 * store.  It does no DNS and needs no TLS session, so it can be tested
 * with tables and fuzzed.  Its answer is a verdict plus a trace with one
 * entry per record saying what became of it.
 *
 * Included by <tlspool/validate.h>; stands alone on <tlspool/types.h>
 * (tlspool_span, tlspool_tlsa, the verdicts).  Free of GnuTLS types.
 * Thread-safe for distinct results; a tlspool_trust may be shared
 * between threads.  The library never prints and never exits.
 */
#ifndef TLSPOOL_DANE_H
#define TLSPOOL_DANE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <tlspool/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* --- trust store for the PKIX usages 0 and 1 ---------------------------- */

typedef struct tlspool_trust tlspool_trust;

/* The system's CA certificates (GnuTLS's configured system trust). */
tlspool_trust *tlspool_trust_new_system(char *err, size_t errlen);
/* The CA certificates of one PEM (or DER) file. */
tlspool_trust *tlspool_trust_new_file(const char *path, char *err,
                                      size_t errlen);
void tlspool_trust_free(tlspool_trust *trust);

/* --- the matcher -------------------------------------------------------- */

/* tlspool_dane_verdict (<tlspool/types.h>) is the result for the whole
 * RRset. */

/* What became of one record. */
typedef enum tlspool_dane_outcome {
	TLSPOOL_DANE_REC_UNCHECKED = 0,
	TLSPOOL_DANE_REC_MATCHED,  /* authenticated the peer */
	TLSPOOL_DANE_REC_NO_MATCH, /* association data matches no eligible
	                              cert/key */
	TLSPOOL_DANE_REC_UNUSABLE, /* unknown usage/selector/mtype, malformed,
	                              or no trust store */
	TLSPOOL_DANE_REC_AGILITY, /* skipped: a stronger digest exists (RFC 7671
	                             s9) */
	TLSPOOL_DANE_REC_NOT_APPLICABLE, /* cannot apply to a raw public key */
	TLSPOOL_DANE_REC_NAME_MISMATCH, /* matched, but no reference name in the
	                                   certificate */
	TLSPOOL_DANE_REC_CHAIN_FAILED,  /* matched an anchor the chain does not
	                                   verify to */
	TLSPOOL_DANE_REC_EXPIRED, /* matched, but a certificate is outside its
	                             dates */
	TLSPOOL_DANE_REC_PKIX_FAILED, /* matched, but the PKIX path to the trust
	                                 store fails */
	TLSPOOL_DANE_REC_NOT_USED, /* the RRset is not secure: not considered */
	TLSPOOL_DANE_REC_WRONG_PURPOSE, /* matched, but a certificate's extended
	                                   key usage excludes the purpose */
} tlspool_dane_outcome;

/* Matcher options (tlspool_dane_input.flags); all off by default. */
/* Usages 0 and 1 unusable (RFC 7672 section 3.1.3, SMTP). */
#define TLSPOOL_DANE_NO_PKIX 0x01
/* Build the issuer path also from certificates the peer did not send:
 * in->extra, and those of the RRset's PKIX-TA(0) and DANE-TA(2) Cert(0)
 * Full(0) records.  They are untrusted: they only complete the path. */
#define TLSPOOL_DANE_EXTRA_CERTS 0x02
/* DANE-EE(3) records also need the end entity to name a reference
 * identifier, which RFC 7671 section 5.1 does not ask (against
 * unknown-key-share attacks); a raw public key names nothing and fails. */
#define TLSPOOL_DANE_EE_NAME_CHECKS 0x04

/* What the end entity must be good for with usages 0 and 1 (its extended
 * key usage, RFC 5280 section 4.2.1.12). */
enum tlspool_dane_purpose {
	TLSPOOL_DANE_PURPOSE_ANY = 0, /* not checked */
	TLSPOOL_DANE_PURPOSE_SERVER,  /* id-kp-serverAuth: a TLS server */
	TLSPOOL_DANE_PURPOSE_CLIENT,  /* id-kp-clientAuth: a TLS client */
};

typedef struct tlspool_dane_input {
	/* The peer: DER certificates as sent, [0] the end entity; or, with
	 * nchain 0, an RFC 7250 raw public key (DER SubjectPublicKeyInfo). */
	const tlspool_span *chain;
	size_t nchain;
	tlspool_span rawkey;
	/* The TLSA RRset and what DNSSEC said about it. */
	const tlspool_tlsa *tlsa;
	size_t ntlsa;
	tlspool_dns_verdict dns;
	const char
	        *dns_detail; /* optional: the lookup's detail, for the trace */
	/* Reference identifiers (RFC 6125 section 6.2): host names, or
	 * user@domain.  A certificate must name one of them for usages 0-2. */
	const char *const *names;
	size_t nnames;
	time_t now; /* validity dates are checked at this time */
	const tlspool_trust *trust; /* NULL: usages 0 and 1 are unusable */
	unsigned flags;             /* TLSPOOL_DANE_* options */
	/* With TLSPOOL_DANE_EXTRA_CERTS: untrusted DER certificates that may
	 * complete the issuer path; ignored without it. */
	const tlspool_span *extra;
	size_t nextra;
	int purpose; /* TLSPOOL_DANE_PURPOSE_*, for usages 0 and 1 */
} tlspool_dane_input;

typedef struct tlspool_dane_step {
	size_t index; /* position in the input records */
	uint8_t usage, selector, mtype;
	tlspool_dane_outcome outcome;
	/* Depth of what the record matched, counted along the issuer path
	 * that the matcher built: 0 the end entity (or raw key), 1 its
	 * issuer, and so on; an anchor the peer did not send ("2 0 0",
	 * "2 1 0", a PKIX-TA store root) one above the certificate it
	 * issued.  Set as soon as the record matched, also when a later
	 * check failed; -1 if it matched nothing. */
	int depth;
	/* The matched certificate's index in in->chain, or -1 when the peer
	 * did not send it (or nothing matched). */
	int chain_index;
	char reason[200];
} tlspool_dane_step;

typedef struct tlspool_dane_result {
	tlspool_dane_verdict verdict;
	tlspool_dns_verdict dns; /* as given */
	/* The record that authenticated, or -1.  When several do, the
	 * strongest: DANE-EE over DANE-TA over PKIX-EE over PKIX-TA, then
	 * the first in input order. */
	int matched;
	/* The record this result speaks of: matched when authenticated;
	 * else the strongest (as above) that matched something and then
	 * failed a check; -1 when no record matched anything. */
	int best;
	int depth; /* best's depth, or -1 */
	/* The reference name the certificate was checked against and
	 * matched (usages 0-2), or names[0] for DANE-EE, or "". */
	char name[256];
	/* The identity the end entity certificate names (starttls_client(3),
	 * "Identities"): "domain" or "user@domain"; "" for a raw key or no
	 * identity. */
	char identity[320];
	char reason[240]; /* the verdict in words */
	size_t nsteps;    /* one per input record, in input order */
	tlspool_dane_step *steps;
} tlspool_dane_result;

/*
 * Decide whether the peer is authenticated.  Returns 0 with *out set for
 * every verdict; -1 with errno EINVAL (NULL arguments, no chain and no
 * raw key) or ENOMEM, and a message in err.  Free *out with
 * tlspool_dane_result_free().
 */
int tlspool_dane_match(const tlspool_dane_input *in, tlspool_dane_result **out,
                       char *err, size_t errlen);
void tlspool_dane_result_free(tlspool_dane_result *res);

/* Short lowercase names ("authenticated", "no-match", "skipped-agility" ...)
 * for printing and JSON. */
const char *tlspool_dane_verdict_name(tlspool_dane_verdict v);
const char *tlspool_dane_outcome_name(tlspool_dane_outcome o);
/* "PKIX-TA", "PKIX-EE", "DANE-TA", "DANE-EE", or "usage-N" (thread-local). */
const char *tlspool_dane_usage_name(uint8_t usage);

/* --- identities ---------------------------------------------------------- */

/*
 * The identity a DER certificate names: with dc= RDNs in its subject, the
 * domain they spell ("www.example.test"), or "user@domain" when the RDN
 * just below them is uid=; without dc= RDNs, its first non-wildcard
 * subjectAltName dNSName, else its first rfc822Name.  Returns the length,
 * or -1 with errno EBADMSG (unparsable certificate, or dc=/uid= RDNs that
 * do not form a name), ENOENT (it names nothing), ENAMETOOLONG (buflen).
 */
int tlspool_x509_identity(const tlspool_span *cert, char *buf, size_t buflen);

/*
 * Does the certificate name the reference identifier?  A host name
 * matches the dc= domain or a subjectAltName dNSName (a wildcard "*" only
 * as the whole leftmost label of three or more, matching one label,
 * RFC 6125 section 6.4.3); "user@domain" matches the uid=/dc= identity or
 * an rfc822Name.  The Common Name is never used (RFC 9525 section 6.3).
 * Returns 1, 0, or -1 with errno EBADMSG/EINVAL.
 */
int tlspool_x509_names(const tlspool_span *cert, const char *reference);

/* What a certificate says of itself, for diagnostics. */
typedef struct tlspool_x509_info {
	char subject[512], issuer[512]; /* RFC 4514 strings */
	time_t not_before, not_after;
	unsigned char spki_sha256[32]; /* what "x 1 1" records hold */
	int self_issued;
} tlspool_x509_info;

/* Describe a DER certificate.  0, or -1 with errno EINVAL or EBADMSG. */
int tlspool_x509_describe(const tlspool_span *cert, tlspool_x509_info *out);

/* --- record generation -------------------------------------------------- */

/*
 * TLSA rdata (RFC 6698 section 2.1) for a DER certificate, or with
 * rawkey nonzero for a DER SubjectPublicKeyInfo (then selector must be 1).
 * Selector 0 or 1, matching type 0, 1 or 2; any usage.  Writes the rdata
 * into buf and returns its length; -1 with errno EINVAL (parameters),
 * EBADMSG (unparsable input) or ENOSPC (buflen).
 */
int tlspool_tlsa_make(const tlspool_span *der, int rawkey, uint8_t usage,
                      uint8_t selector, uint8_t mtype, unsigned char *buf,
                      size_t buflen);

#ifdef __cplusplus
}
#endif
#endif
