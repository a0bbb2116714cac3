/*
 * Internal declarations shared by the files of libtlspool-validate.
 * Cross-file internal symbols carry the tp_ prefix; the version script
 * keeps them out of the shared library's exports.
 */
#ifndef TLSPOOL_VALIDATE_INTERNAL_H
#define TLSPOOL_VALIDATE_INTERNAL_H

#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <gnutls/x509.h>

#include "tlspool/validate.h"
#include "tlspool/dane.h"

#define TP_MAX_UPSTREAMS 8
#define TP_MAX_CNAMES    8

struct tp_upstream {
	int family; /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	unsigned port;
};

struct tlspool_dns_config {
	int recursive;
	size_t nupstream;
	struct tp_upstream upstream[TP_MAX_UPSTREAMS];
	char trust_anchor[PATH_MAX];
	unsigned timeout_ms;
	unsigned keep_keys_ttl; /* seconds; 0: no zone keys kept */
};

/* Write a formatted message into err (if err and errlen are nonzero). */
void tp_err(char *err, size_t errlen, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Parse "ADDR" or "ADDR@PORT" (IPv4 or IPv6).  0 or -1. */
int tp_parse_upstream(const char *s, struct tp_upstream *out);

/* Case-insensitive comparison of two domain names, ignoring one final
 * dot on either. */
int tp_name_equal(const char *a, const char *b);

struct getdns_dict;

/* The wire-format name at key of d ("name", "/rdata/cname",
 * "/question/qname", ...) as text with a final dot into out: 0, or -1
 * when there is none or it does not fit. */
int tp_rr_name(const struct getdns_dict *d, const char *key, char out[256]);
enum tp_step { TP_STEP_DONE, TP_STEP_FOLLOW };

/*
 * Classify one getdns response to a query for cur (dns.c): sets
 * ans->verdict and collects records; TP_STEP_FOLLOW with cur changed when
 * a CNAME chain leaves the reply.  0, or -1 for lack of memory.
 */
int tp_dns_classify(tlspool_dns_answer *ans, struct getdns_dict *resp,
                    char cur[256], enum tp_step *step);

/* --- zone keys kept between lookups (dnschain.c) --- */

struct getdns_list;
struct tp_keyring;

/* A keyring that keeps validated DNSKEY sets at most max_ttl seconds
 * (0: keeps nothing).  NULL for lack of memory. */
struct tp_keyring *tp_keyring_new(unsigned max_ttl);
void tp_keyring_free(struct tp_keyring *k);

/* Keep the DNSKEY sets of chain (the "validation_chain" of a secure
 * answer) until the earliest TTL or RRSIG expiration on it, or max_ttl.
 * 0, or -1 for lack of memory. */
int tp_keyring_learn(struct tp_keyring *k, const struct getdns_list *chain,
                     time_t now);

/* The same, kept no later than cap (0: no cap), for records read back from
 * a store whose entry expires at cap. */
int tp_keyring_learn_until(struct tp_keyring *k,
                           const struct getdns_list *chain, time_t now,
                           time_t cap);

/* zone's DNSKEY and DS RRsets of chain with their RRSIGs, in wire form
 * into buf, and in *until the time the keyring would keep them until
 * (max_ttl at most).  Their length; 0 when there are none or they cannot
 * be kept; -1 when they do not fit or for lack of memory. */
long tp_zone_wire(const struct getdns_list *chain, const char *zone, time_t now,
                  unsigned max_ttl, unsigned char *buf, size_t buflen,
                  time_t *until);

/* The records of buf (wire form, as tp_zone_wire() writes them) appended
 * to list.  0, or -1 when buf is malformed or for lack of memory. */
int tp_wire_append(struct getdns_list *list, const unsigned char *buf,
                   size_t len);

/* Copies of the DNSKEYs kept, and still valid at now, for the zones that
 * enclose name, as trust anchors for getdns_validate_dnssec2(); NULL
 * when there are none. */
struct getdns_list *tp_keyring_anchors(struct tp_keyring *k, const char *name,
                                       time_t now);

/* Until when zone's keys are kept, if the keyring holds exactly the
 * DNSKEY set of zone in chain (0: it does not). */
time_t tp_keyring_holds(struct tp_keyring *k, const struct getdns_list *chain,
                        const char *zone, time_t now);

/* Is zone name, or one of its ancestors?  1 or 0. */
int tp_zone_encloses(const char *zone, const char *name);

/* Until when zone's keys are kept (0: they are not). */
time_t tp_keyring_until(struct tp_keyring *k, const char *zone);

/* --- a fast check of a positive answer with kept keys (rrsig.c) --- */

/* The public keys of one kept zone's DNSKEY set, made once; shared by
 * reference count. */
struct tp_zkeys;

/* What tp_rrsig_check() found besides "secure" (1): nothing it decides
 * (the reply is for getdns), or a signature that does not hold. */
#define TP_FAST_UNDECIDED 0
#define TP_FAST_BAD       (-1)

/* The keys of keys (DNSKEY rr_dicts) that rrsig.c verifies with: ZONE
 * flag, protocol 3, not revoked, an algorithm it handles.  NULL for lack
 * of memory. */
struct tp_zkeys *tp_zkeys_new(const struct getdns_list *keys);
struct tp_zkeys *tp_zkeys_ref(struct tp_zkeys *z);
/* Drops one reference. */
void tp_zkeys_free(struct tp_zkeys *z);

/* RFC 4034 appendix B over a DNSKEY rdata. */
uint16_t tp_key_tag(const unsigned char *rdata, size_t len);

/* The kept keys of zone signer (text, final dot), a new reference, or
 * NULL when it is not kept. */
typedef struct tp_zkeys *tp_zkeys_for(void *arg, const char *signer);

/* Does the reply pkt (wire form) answer (name, type, IN) with exactly one
 * RRset and RRSIGs over it, one of which verifies at now with the keys of
 * its signer (keys_for)?  1; TP_FAST_BAD when a signature fails or is
 * out of its validity; TP_FAST_UNDECIDED for any reply it does not
 * check (the caller validates those otherwise). */
int tp_rrsig_check(const unsigned char *pkt, size_t len, const char *name,
                   uint16_t type, tp_zkeys_for *keys_for, void *arg,
                   time_t now);

/* tp_rrsig_check() with the keys kept in k at now. */
int tp_keyring_check(struct tp_keyring *k, const unsigned char *pkt, size_t len,
                     const char *name, uint16_t type, time_t now);

/* Does k keep, valid at now, the keys of a zone that encloses name? */
int tp_keyring_covers(struct tp_keyring *k, const char *name, time_t now);

struct getdns_dict;
/* Is reply (one of replies_tree) a reply to name, type, class IN, whose
 * answer section holds only the CNAME chain from name and what is at
 * its names?  1 or 0.  Validating a reply offline checks its signatures,
 * not that it answers what was asked (RFC 4035 section 5.3: the
 * resolver's part). */
int tp_reply_answers(const struct getdns_dict *reply, const char *name,
                     uint16_t type);

/* Do the DNSKEY sets of chain (a "validation_chain") validate from the
 * handle's trust anchor at now, with the rest of chain as support?  1 or
 * 0.  Nothing is kept that does not. */
int tp_dns_keys_validated(tlspool_dns *dns, const struct getdns_list *chain,
                          time_t now);

/* Until when a handle keeps zone's keys (0: it does not). */
time_t tp_dns_keys_until(tlspool_dns *dns, const char *zone);

/* Lookups of a handle so far: replies validated with kept keys (one
 * query each) and full lookups (getdns's own chain building). */
void tp_dns_counts(tlspool_dns *dns, unsigned long *kept, unsigned long *full);

/* Of the replies validated with kept keys, those that rrsig.c found
 * secure, and those whose signatures it found bad (then left to
 * getdns). */
void tp_dns_fast_counts(tlspool_dns *dns, unsigned long *secure,
                        unsigned long *bad);

/* Times a handle kept zone keys read from its keystore. */
unsigned long tp_dns_loaded(tlspool_dns *dns);

/* --- DANE (dane.c, x509id.c, der.c, trust.c) --- */

/* Most certificates the matcher accepts from a peer (RFC 8446 sets no
 * limit; real chains have a handful). */
#define TP_DANE_MAX_CHAIN 16

struct tlspool_trust {
	gnutls_x509_trust_list_t tl;
};

/* Split a DER certificate into its tbsCertificate and its
 * subjectPublicKeyInfo (each with tag and length), checking the DER
 * framing of the outer structure.  0 or -1 (malformed). */
int tp_der_cert_parts(const unsigned char *der, size_t len, tlspool_span *tbs,
                      tlspool_span *spki);

/* 0 if der is exactly one DER SEQUENCE (a SubjectPublicKeyInfo's
 * framing), else -1. */
int tp_der_one_sequence(const unsigned char *der, size_t len);

/* tlspool_x509_identity() and tlspool_x509_names() on a parsed
 * certificate. */
int tp_x509_identity(gnutls_x509_crt_t crt, char *buf, size_t buflen);
int tp_x509_names(gnutls_x509_crt_t crt, const char *reference);

/* Does one presented dNSName (plen octets, not NUL-terminated) match the
 * reference host name, per RFC 6125 section 6.4?  1 or 0. */
int tp_dns_id_matches(const char *presented, size_t plen,
                      const char *reference);

/* The association data of matching type mtype (0, 1, 2) over data, into
 * out.  Returns its length, or -1 with errno EINVAL or ENOSPC. */
int tp_tlsa_assoc(const unsigned char *data, size_t len, uint8_t mtype,
                  unsigned char *out, size_t outlen);

#endif
