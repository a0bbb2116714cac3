/*
 * tlspool/validate.h -- DNSSEC-validated lookups for DANE and friends.
 *
 * This library answers one question per call: "what does the DNS, validated
 * against the configured trust anchor, say about this owner name and type?"
 * It never merges distinct outcomes: a validated "no records" is not a
 * timeout, and a bogus answer is not "no records".  Callers that need to
 * authenticate a peer must treat every verdict except TLSPOOL_DNS_SECURE
 * as "not proven".
 *
 * All functions are thread-safe for distinct objects; a tlspool_dns handle
 * may be shared between threads.  The library never prints and never exits;
 * failures return -1 or NULL with errno set and a message in the caller's
 * error buffer.
 *
 * This header is the whole validation API: it includes <tlspool/types.h>
 * (the shared types: tlspool_span, tlspool_dns_verdict, tlspool_tlsa,
 * tlspool_dane_verdict), <tlspool/dane.h> and <tlspool/openpgp.h>.
 */
#ifndef TLSPOOL_VALIDATE_H
#define TLSPOOL_VALIDATE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <tlspool/types.h>
/* The whole validation API: DANE matching, X.509 identities and TLSA
 * generation; OpenPGP keys and OPENPGPKEY matching (RFC 7929). */
#include <tlspool/dane.h>
#include <tlspool/openpgp.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Resource record types that the library looks up. */
#define TLSPOOL_RR_A          1
#define TLSPOOL_RR_CNAME      5
#define TLSPOOL_RR_MX         15
#define TLSPOOL_RR_SRV        33
#define TLSPOOL_RR_AAAA       28
#define TLSPOOL_RR_TLSA       52
#define TLSPOOL_RR_SMIMEA     53
#define TLSPOOL_RR_OPENPGPKEY 61

/* A short lowercase name for a verdict ("secure", "bogus", ...). */
const char *tlspool_dns_verdict_name(tlspool_dns_verdict v);
/* What a verdict means, in words, for someone who wants to authenticate a
 * peer ("the name does not exist (proven by DNSSEC)"). */
const char *tlspool_dns_verdict_text(tlspool_dns_verdict v);

/* Nonzero for the verdicts that must fail closed (bogus, servfail,
 * timeout, indeterminate): errors, never "no records". */
int tlspool_dns_verdict_is_error(tlspool_dns_verdict v);

/* --- configuration ([dns] section of tlspool.conf) --------------------- */

typedef struct tlspool_dns_config tlspool_dns_config;

/* A configuration with the embedded defaults: stub resolution through
 * /etc/resolv.conf, trust anchor /usr/share/dns/root.key, 5000 ms. */
tlspool_dns_config *tlspool_dns_config_new(void);
void tlspool_dns_config_free(tlspool_dns_config *cfg);

/*
 * Set one key of the [dns] section: "resolution", "upstream" (repeatable),
 * "trust_anchor", "timeout_ms".  Returns 0, or -1 with errno EINVAL and a
 * message naming the key and what is wrong with the value.
 */
int tlspool_dns_config_set(tlspool_dns_config *cfg, const char *key,
                           const char *value, char *err, size_t errlen);

/*
 * Read the [dns] section of a tlspool.conf file (INI syntax).  Other
 * sections of the product's configuration are accepted and left to their
 * own readers; an unknown section, an unknown [dns] key or a bad value is
 * an error whose message names the file, line and key.  path NULL means
 * $TLSPOOL_CONFIG, else the installed default; only that installed default
 * may be missing (then the embedded defaults apply).
 */
tlspool_dns_config *tlspool_dns_config_load(const char *path, char *err,
                                            size_t errlen);

/*
 * Read a file of tlspool.conf's syntax (INI: "[section]", "key = value",
 * comments with ; or #), calling entry() for each key.  entry returns 0,
 * or -1 with a message (without file and line) in msg.  An indented line
 * and a line of more than 199 characters are errors, since INI readers
 * would take them as continuations or cut them; so is a NUL byte.
 * sections, when not NULL, lists the section names the caller's file may
 * have (NULL-terminated); any other section is an error, also one without
 * keys.  An entry "PREFIX *" admits "[PREFIX NAME]" for a domain or
 * user@domain NAME, each NAME once (without case and final dot).  With
 * sections NULL every section is read (a reader of one section, such as
 * tlspool_dns_config_load(), leaves the others to their owner).  The
 * file must be a regular file owned by root or the effective user, not
 * writable by group or other, at most 1 MiB (tlspool.conf(5) FILES).
 * Returns 0, or -1 with errno (that of open(2), EACCES for a file that
 * breaks those rules, or EINVAL) and "FILE:LINE: message" in err.
 */
int tlspool_conf_parse(const char *path, const char *const *sections,
                       int (*entry)(void *user, const char *section,
                                    const char *key, const char *value,
                                    char *msg, size_t msglen),
                       void *user, char *err, size_t errlen);

/* The path tlspool_dns_config_load(NULL, ...) reads. */
const char *tlspool_config_default_path(void);

/* --- lookups ------------------------------------------------------------ */

typedef struct tlspool_dns tlspool_dns;

/* A resolver for one configuration (the configuration is copied).  NULL on
 * failure, with the reason (an unreadable trust anchor, say) in err. */
tlspool_dns *tlspool_dns_new(const tlspool_dns_config *cfg, char *err,
                             size_t errlen);
void tlspool_dns_free(tlspool_dns *dns);

/* One record, rdata in wire form. */
typedef struct tlspool_rr {
	uint16_t type;
	uint32_t ttl;
	size_t rdlen;
	unsigned char *rdata;
} tlspool_rr;

typedef struct tlspool_dns_answer {
	tlspool_dns_verdict verdict;
	uint16_t qtype;
	char qname[256];    /* the owner name asked for, with final dot */
	char owner[256];    /* where the records were found (CNAME end) */
	size_t ncname;      /* CNAMEs followed, in order */
	char (*cname)[256]; /* ncname targets */
	size_t nrr;         /* records of qtype at owner */
	tlspool_rr *rr;
	uint32_t ttl;            /* smallest TTL along the chain */
	time_t rrsig_expiration; /* earliest RRSIG expiration, 0 if none */
	char detail[160];        /* why, for the error verdicts */
	/* With tlspool_dns_return_chain(): the DNSKEY, DS and RRSIG
	 * records that getdns validated the answer with, one zone-file
	 * line each (its "validation_chain", in its order); else 0 and
	 * NULL.  At the end of the structure, which the library allocates:
	 * programs built before it keep working. */
	size_t nchain;
	char **chain;
} tlspool_dns_answer;

/*
 * Look up (name, type) and validate the answer.  CNAMEs are followed up to
 * 8 steps, also across zones, and the chain's verdict is the worst of its
 * links.  Returns 0 with *out set for every DNS outcome (the verdict says
 * which); -1 with errno only for bad arguments (EINVAL) or memory (ENOMEM).
 */
int tlspool_dns_lookup(tlspool_dns *dns, const char *name, uint16_t type,
                       tlspool_dns_answer **out, char *err, size_t errlen);
/* The same within timeout_ms for the whole lookup (CNAMEs included), or
 * the configured timeout_ms if that is shorter or timeout_ms is 0. */
int tlspool_dns_lookup_within(tlspool_dns *dns, const char *name, uint16_t type,
                              unsigned timeout_ms, tlspool_dns_answer **out,
                              char *err, size_t errlen);
void tlspool_dns_answer_free(tlspool_dns_answer *ans);
/* Nonzero on: the lookups of dns also return the validation chain
 * (getdns's dnssec_return_validation_chain) in the answer's chain, as
 * getdns_query +dnssec_return_validation_chain shows it; for diagnosis,
 * since it costs more queries.  0, or -1 with errno ENOMEM or EINVAL. */
int tlspool_dns_return_chain(tlspool_dns *dns, int on);

/*
 * A store for the zone keys a resolver keeps (keep_keys_ttl), shared by
 * processes: libtlspool installs one on the resolvers of configurations
 * with a [cache] path or backend = redis (docs/architecture.md, "Cold
 * validation in one query").  The resolver puts a zone's validated DNSKEY
 * and DS RRsets with their RRSIGs (concatenated resource records in wire
 * form, RFC 1035 section 4.1.3, at most TLSPOOL_DNS_KEYSTORE_MAX octets)
 * with the time they may be used until.  get copies the records stored for
 * zone (a name with a final dot) into buf and returns their length, with
 * their expiry in *until; 0 when there are none, -1 when the store cannot
 * be read.  What get returns is never trusted as such: each DNSKEY set is
 * validated from the trust anchor before it is kept, and nothing of an
 * entry that does not validate is.  The functions may be called from
 * several threads at once.  get NULL removes the store.  0, or -1 with
 * errno EINVAL.
 */
#define TLSPOOL_DNS_KEYSTORE_MAX 8192
typedef long tlspool_dns_keystore_get(void *arg, const char *zone,
                                      unsigned char *buf, size_t buflen,
                                      time_t *until);
typedef void tlspool_dns_keystore_put(void *arg, const char *zone,
                                      const unsigned char *rec, size_t len,
                                      time_t until);
int tlspool_dns_set_keystore(tlspool_dns *dns, tlspool_dns_keystore_get *get,
                             tlspool_dns_keystore_put *put, void *arg);
/* One line that says what the answer is, as the libraries and
 * tlspool-connect word it ("OWNER: TLSA RRset is bogus (DETAIL)", "OWNER:
 * no TLSA records: ...", "OWNER: TLSA lookup timed out (...)"); the
 * snprintf() result. */
int tlspool_dns_answer_explain(const tlspool_dns_answer *a, char *buf,
                               size_t len);

/* --- owner names -------------------------------------------------------- */

/*
 * "_PORT._tcp.NAME." (proto "tcp", "udp" or "sctp"), RFC 6698 section 3.
 * Returns the length written, or -1 with errno EINVAL (bad name or
 * protocol) or ENAMETOOLONG (does not fit buf or exceeds 255 octets).
 */
int tlspool_tlsa_owner(char *buf, size_t buflen, unsigned port,
                       const char *proto, const char *name);

/*
 * The owner name of the OPENPGPKEY (RFC 7929 section 3) or SMIMEA
 * (RFC 8162 section 3) record of user@domain: hex of the first 28 octets
 * of SHA2-256 over the UTF-8 local part, then "._openpgpkey." or
 * "._smimecert." and the domain.  type is TLSPOOL_RR_OPENPGPKEY or
 * TLSPOOL_RR_SMIMEA.  Errors as for tlspool_tlsa_owner.
 */
int tlspool_user_owner(char *buf, size_t buflen, uint16_t type,
                       const char *user_at_domain);

/* Check a domain name: LDH labels (underscore allowed for owner names
 * when underscore is nonzero), 1..63 octets each, 253 in all, optional
 * final dot.  Returns 0 or -1 with errno EINVAL. */
int tlspool_check_domain(const char *name, int underscore);

/* --- rdata -------------------------------------------------------------- */

/* tlspool_tlsa (<tlspool/types.h>) holds TLSA and SMIMEA rdata. */

/*
 * Parse TLSA or SMIMEA rdata.  Returns 0, or -1 with errno EBADMSG when the
 * rdata is malformed: shorter than 4 octets, or a SHA2-256 (1) or SHA2-512
 * (2) association of the wrong length.  Unknown usages, selectors and
 * matching types parse fine: deciding that they are unusable is the
 * matcher's job (RFC 7671 section 4).
 */
int tlspool_tlsa_parse(const unsigned char *rdata, size_t len,
                       tlspool_tlsa *out);

/*
 * Parse one TLSA or SMIMEA record in presentation form (RFC 6698 section
 * 2.2): "3 1 1 ABCD...", three decimal fields and the association data in
 * hexadecimal, white space allowed between the hex digits; or the generic
 * form of RFC 3597 section 5, "\# 35 030101ABCD...".  The wire rdata goes
 * into buf and *out points into it (out may be NULL).  Returns the rdata
 * length; -1 with errno EBADMSG (syntax, a field above 255, an odd number
 * or no hex digits, a generic length that differs, or rdata that
 * tlspool_tlsa_parse() refuses), EINVAL (NULL text or buf) or ENOSPC, and
 * a message in err.
 */
int tlspool_tlsa_parse_text(const char *text, unsigned char *buf, size_t buflen,
                            tlspool_tlsa *out, char *err, size_t errlen);

/*
 * Print one record in zone-file form ("OWNER TTL IN TYPE RDATA") into buf.
 * TLSA/SMIMEA print as numbers and hex, OPENPGPKEY as base64, A/AAAA as
 * addresses, SRV as numbers and the target; other types, and malformed rdata of
 * these, in RFC 3597 generic form ("\# LEN HEX"), so that a diagnosis shows
 * what was served.  Returns the length, or -1 with errno ENOSPC if buf is too
 * small (or EINVAL for NULL arguments).
 */
int tlspool_rr_format(char *buf, size_t buflen, const char *owner,
                      const tlspool_rr *rr);

/* SRV rdata (RFC 2782): where a service of a domain is offered. */
typedef struct tlspool_srv {
	uint16_t priority, weight, port;
	char target[256]; /* with final dot; "." says the service is not
	                     offered at this domain */
} tlspool_srv;

/*
 * Parse SRV rdata: priority, weight, port and an uncompressed target
 * name (RFC 2782 forbids compression there) of LDH labels (or the root).
 * Returns 0, or -1 with errno EBADMSG when the rdata is short, has data
 * after the name, a compression pointer, or a label that is not a host
 * name's.
 */
int tlspool_srv_parse(const unsigned char *rdata, size_t len, tlspool_srv *out);

/*
 * Put n SRV records into the order a client tries them (RFC 2782, "Usage
 * rules"): lowest priority first; within a priority, a weighted random
 * choice, each record chosen with probability weight / (sum of the
 * weights left), records of weight 0 only rarely first.  rnd returns a
 * uniform 32-bit number (NULL: GnuTLS's nonce generator); arg is passed
 * on.
 */
void tlspool_srv_order(tlspool_srv *srv, size_t n, uint32_t (*rnd)(void *arg),
                       void *arg);

/* --- destinations: SMTP by MX (RFC 7672), services by SRV (RFC 7673) ---- */

/* What DNSSEC says about the MX or SRV RRset of a destination. */
typedef enum tlspool_dest_verdict {
	TLSPOOL_DEST_UNCHECKED = 0,
	TLSPOOL_DEST_SECURE,     /* secure RRset: each host's DANE below */
	TLSPOOL_DEST_IMPLICIT,   /* MX: secure NODATA, the domain is its own
	                            mail host (RFC 5321 section 5.1) */
	TLSPOOL_DEST_INSECURE,   /* the RRset is insecure: DANE does not apply
	                            to any host (RFC 7672 section 2.2.1, RFC
	                            7673 section 3.1) */
	TLSPOOL_DEST_NO_SERVICE, /* a null MX "0 ." (RFC 7505), an SRV
	                            target "." (RFC 2782), or secure
	                            NXDOMAIN/NODATA (SRV, or MX NXDOMAIN) */
	TLSPOOL_DEST_DNS_ERROR,  /* bogus, servfail, timeout, indeterminate:
	                            fails closed (RFC 7672 section 2.1.1) */
} tlspool_dest_verdict;

/* What DANE says about one host of a destination. */
typedef enum tlspool_host_verdict {
	TLSPOOL_HOST_UNCHECKED = 0,
	TLSPOOL_HOST_DANE,       /* secure TLSA with usable records: the host
	                            must be authenticated by them */
	TLSPOOL_HOST_UNUSABLE,   /* secure TLSA, none usable: TLS is mandatory
	                            but cannot authenticate (RFC 7672 section
	                            2.2, RFC 7671 section 4.1) */
	TLSPOOL_HOST_NO_TLSA,    /* secure: no TLSA records, no DANE */
	TLSPOOL_HOST_INSECURE,   /* the RRset, the addresses or the TLSA records
	                            are insecure: no DANE */
	TLSPOOL_HOST_NO_ADDRESS, /* secure: no A or AAAA records */
	TLSPOOL_HOST_DNS_ERROR,  /* an address or TLSA lookup failed: the host
	                            must not be used (RFC 7672 2.1.1) */
} tlspool_host_verdict;

#define TLSPOOL_DEST_MAX_NAMES 4

/* One MX host or SRV target, with what was looked up for it. */
typedef struct tlspool_dest_host {
	char name[256];      /* the exchange or target as published, final
	                        dot */
	uint16_t preference; /* MX preference or SRV priority */
	uint16_t weight;     /* SRV weight, 0 for MX */
	uint16_t port;       /* the SRV port, or the MX destination's */
	/* A and AAAA of name, NULL when not looked up */
	tlspool_dns_answer *a, *aaaa;
	tlspool_dns_verdict address; /* both together: an error if either
	                                fails, insecure if either is, else
	                                secure (or secure-nodata: none) */
	char expanded[256];  /* the CNAME-expanded name of name, "" none */
	int expanded_secure; /* the CNAME chain is secure */
	/* The TLSA base domain (RFC 7672 section 2.2.3, RFC 7671 section 7)
	 * and its owner name, "" when no TLSA lookup decided */
	char base[256], owner[256];
	/* the TLSA lookup that decided, and the one at the expanded name
	 * when it found nothing and the original name was asked next */
	tlspool_dns_answer *tlsa, *tlsa_expanded;
	tlspool_host_verdict verdict;
	size_t nusable;   /* usable records in tlsa */
	char reason[512]; /* the verdict in words */
	/* Reference identifiers for the certificate's names (DANE-TA):
	 * the TLSA base domain, name, the expanded name when secure, and
	 * the next-hop or service domain (RFC 7672 section 3.2.2, RFC 7673
	 * section 3), without final dots, without repetition. */
	size_t nnames;
	char names[TLSPOOL_DEST_MAX_NAMES][256];
} tlspool_dest_host;

typedef struct tlspool_dest {
	int srv;          /* 0: MX, 1: SRV */
	char domain[256]; /* the next-hop or service domain, final dot */
	char qname[256];  /* where the MX or SRV RRset was asked for */
	tlspool_dns_answer *rrset; /* that lookup */
	tlspool_dest_verdict verdict;
	char reason[512];
	size_t nhosts;            /* at most 16 */
	tlspool_dest_host *hosts; /* in the order a client tries them */
} tlspool_dest;

/*
 * SMTP to domain (RFC 7672): the MX RRset with its DNSSEC verdict; for
 * each MX host in preference order (equal ones in random order, RFC 5321
 * section 5.1; the same host once), its A and AAAA records, and when the
 * MX RRset and the addresses are secure the TLSA records at
 * _PORT._tcp.BASE, BASE the CNAME-expanded host name when its chain is
 * secure and that has TLSA records, else the host name (RFC 7672
 * section 2.2.3).  PKIX-TA(0) and PKIX-EE(1) records, unknown usages,
 * selectors and matching types are unusable (RFC 7672 sections 2.2 and
 * 3.1.3).  A secure "no MX" makes the domain its own host.  port 0
 * means 25.  Returns 0 with *out for every DNS outcome (the verdicts say
 * which), -1 with errno EINVAL (not a domain) or ENOMEM and a message in
 * err.  Free *out with tlspool_dest_free().
 */
int tlspool_mx_resolve(tlspool_dns *dns, const char *domain, unsigned port,
                       tlspool_dest **out, char *err, size_t errlen);

/*
 * A service by SRV (RFC 7673): the SRV RRset at _SERVICE._tcp.DOMAIN;
 * when it is secure, each target in the order of RFC 2782 with its
 * addresses and its TLSA records at _PORT._tcp.TARGET (the same CNAME
 * rules).  All four usages are usable here (usages 0 and 1 then need a
 * trust store of the caller's).  Otherwise as tlspool_mx_resolve().
 */
int tlspool_srv_resolve(tlspool_dns *dns, const char *service,
                        const char *domain, tlspool_dest **out, char *err,
                        size_t errlen);
void tlspool_dest_free(tlspool_dest *dest);

/* MX rdata (RFC 1035 section 3.3.9): the preference and the exchange
 * (uncompressed, host name labels, final dot; "." for a null MX).  0, or
 * -1 with errno EBADMSG. */
int tlspool_mx_parse(const unsigned char *rdata, size_t len,
                     uint16_t *preference, char exchange[256]);

/* Short lowercase names ("secure", "no-service", "dane", "no-tlsa", ...)
 * for printing and JSON. */
const char *tlspool_dest_verdict_name(tlspool_dest_verdict v);
const char *tlspool_host_verdict_name(tlspool_host_verdict v);

/* The mnemonic of a type ("TLSA", "OPENPGPKEY", ...), or "TYPEnnn" in a
 * static per-thread buffer. */
const char *tlspool_rr_type_name(uint16_t type);

#ifdef __cplusplus
}
#endif
#endif
