/*
 * tlspool/types.h -- the types that the validation headers share: bytes
 * the caller owns, the DNSSEC verdict of a lookup, TLSA rdata and the
 * names of its parameters, and the verdict of a DANE or OPENPGPKEY match.
 *
 * <tlspool/validate.h>, <tlspool/dane.h> and <tlspool/openpgp.h> include
 * this header and nothing of each other but what validate.h gathers:
 * validate.h is the whole validation API (DNS lookups, DANE, OpenPGP);
 * dane.h and openpgp.h each stand alone.
 */
#ifndef TLSPOOL_TYPES_H
#define TLSPOOL_TYPES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes that the caller owns, e.g. one DER certificate. */
typedef struct tlspool_span {
	const unsigned char *data;
	size_t len;
} tlspool_span;

/*
 * The DNSSEC verdict of one lookup.  Zero means "not checked".  Only
 * TLSPOOL_DNS_SECURE carries records that may authenticate anything.
 */
typedef enum tlspool_dns_verdict {
	TLSPOOL_DNS_UNCHECKED = 0,
	TLSPOOL_DNS_SECURE,        /* validated, records present */
	TLSPOOL_DNS_SECURE_NODATA, /* validated: the name has no such records */
	TLSPOOL_DNS_SECURE_NXDOMAIN, /* validated: the name does not exist */
	TLSPOOL_DNS_INSECURE,      /* provably unsigned: records are unproven */
	TLSPOOL_DNS_INDETERMINATE, /* no trust anchor covers the name */
	TLSPOOL_DNS_BOGUS,         /* validation failed */
	TLSPOOL_DNS_SERVFAIL,      /* the server failed or refused */
	TLSPOOL_DNS_TIMEOUT,       /* no answer in time */
} tlspool_dns_verdict;

/* TLSA and SMIMEA rdata (RFC 6698 section 2.1, RFC 8162 section 2). */
typedef struct tlspool_tlsa {
	uint8_t usage, selector, mtype; /* the values named below */
	size_t len;
	const unsigned char *data; /* points into the rdata */
} tlspool_tlsa;

/* Certificate usages (RFC 6698 section 2.1.1), by their RFC 7218 names. */
enum tlspool_dane_usage {
	TLSPOOL_DANE_USAGE_PKIX_TA = 0, /* a CA on the PKIX path */
	TLSPOOL_DANE_USAGE_PKIX_EE = 1, /* the end entity, PKIX-valid */
	TLSPOOL_DANE_USAGE_DANE_TA = 2, /* a trust anchor for the chain */
	TLSPOOL_DANE_USAGE_DANE_EE = 3, /* the end entity's key alone */
};

/* Selectors (RFC 6698 section 2.1.2). */
enum tlspool_dane_selector {
	TLSPOOL_DANE_SELECTOR_CERT = 0, /* the whole DER certificate */
	TLSPOOL_DANE_SELECTOR_SPKI = 1, /* its SubjectPublicKeyInfo */
};

/* Matching types (RFC 6698 section 2.1.3). */
enum tlspool_dane_mtype {
	TLSPOOL_DANE_MTYPE_FULL = 0,     /* the selected octets themselves */
	TLSPOOL_DANE_MTYPE_SHA2_256 = 1, /* their SHA2-256, 32 octets */
	TLSPOOL_DANE_MTYPE_SHA2_512 = 2, /* their SHA2-512, 64 octets */
};

/*
 * The result of a DANE (or OPENPGPKEY) match for the whole RRset.  Zero
 * means "not checked".  Only TLSPOOL_DANE_AUTHENTICATED authenticates the
 * peer.  NO_USABLE, NO_RECORDS and INSECURE say that DNS proves no DANE
 * constraint (RFC 7671 section 4.1, RFC 7672 section 2.2): a caller may
 * then fall back to PKIX if its policy allows.  NO_MATCH, PEER_ERROR and
 * DNS_ERROR fail closed.
 */
typedef enum tlspool_dane_verdict {
	TLSPOOL_DANE_UNCHECKED = 0,
	TLSPOOL_DANE_AUTHENTICATED, /* a usable record matched, all checks
	                               passed */
	TLSPOOL_DANE_NO_MATCH, /* usable records, none authenticates the peer */
	TLSPOOL_DANE_NO_USABLE,  /* secure records, none of them usable */
	TLSPOOL_DANE_NO_RECORDS, /* secure NODATA/NXDOMAIN (or empty RRset) */
	TLSPOOL_DANE_INSECURE, /* the zone is unsigned: records prove nothing */
	TLSPOOL_DANE_DNS_ERROR,  /* bogus, SERVFAIL, timeout, indeterminate */
	TLSPOOL_DANE_PEER_ERROR, /* the peer's certificate or key is unparsable
	                          */
} tlspool_dane_verdict;

#ifdef __cplusplus
}
#endif
#endif
