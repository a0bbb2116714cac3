/*
 * The DANE matcher (RFC 6698, RFC 7671), table-driven, on chains made at
 * test time by tests/tools/mkcerts.sh; and the TLSA generator against
 * danetool and ldns-dane.
 *
 * Certificates (see mkcerts.sh): root -> inter -> www (www.example.test),
 * wild (*.example.test), wwwdc (dc=www,dc=example,dc=test), expired,
 * other (www.other.test), john; root -> direct; self (self-signed);
 * impostor (inter's DN, its own key); rawkey (a bare key).  And from
 * tests/tools/mkeku.sh, for the extended key usage of usages 0 and 1:
 * srv, cli, emailonly, noeku, anyeku (by inter), srvcli (by intercli, a
 * client-only intermediate).
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "certs.h"
#include "internal.h"
#include "testutil.h"

#define DAY (24L * 3600)
#define MAXREC 4
#define MAXCHAIN 6

struct row {
	const char *why;
	const char *chain;        /* "www inter root"; "@rawkey" a raw key */
	const char *recs[MAXREC]; /* "U S M CERT", CERT! flips a bit, CERT~ drops an octet */
	const char *dns;          /* verdict name; NULL: secure */
	const char *names;        /* space-separated; NULL: www.example.test; "": none */
	const char *trust;        /* PEM file of the trust store, or NULL */
	long dt;                  /* the time: now + dt */
	unsigned flags;
	tlspool_dane_verdict verdict;
	/* One letter per record: M matched, N no match, U unusable,
	 * A skipped by agility, P not applicable, X name mismatch,
	 * C chain failed, E expired, K PKIX failed, - not used, 0 unchecked. */
	const char *outcomes;
	int depth;                /* of the best record (the one that
	                             authenticated, else the strongest that
	                             matched and failed), or -1 */
	const char *reason;       /* substring of the first record's reason */
};

#define AUTH TLSPOOL_DANE_AUTHENTICATED
#define EENAMES TLSPOOL_DANE_EE_NAME_CHECKS
#define NOMATCH TLSPOOL_DANE_NO_MATCH
#define NOUSABLE TLSPOOL_DANE_NO_USABLE

static const struct row rows[] = {
        /* --- negative: DNS first; records of an unproven answer are not used */
        {"bogus", "www inter root", {"3 1 1 www"}, "bogus", .verdict = TLSPOOL_DANE_DNS_ERROR, .outcomes = "-", .depth = -1, .reason = "bogus"},
        {"servfail", "www inter root", {"3 1 1 www"}, "servfail", .verdict = TLSPOOL_DANE_DNS_ERROR, .outcomes = "-", .depth = -1},
        {"timeout", "www inter root", {"3 1 1 www"}, "timeout", .verdict = TLSPOOL_DANE_DNS_ERROR, .outcomes = "-", .depth = -1},
        {"indeterminate", "www inter root", {"3 1 1 www"}, "indeterminate", .verdict = TLSPOOL_DANE_DNS_ERROR, .outcomes = "-", .depth = -1},
        {"unchecked DNS", "www inter root", {"3 1 1 www"}, "unchecked", .verdict = TLSPOOL_DANE_DNS_ERROR, .outcomes = "-", .depth = -1},
        {"insecure, matching record", "www inter root", {"3 1 1 www"}, "insecure", .verdict = TLSPOOL_DANE_INSECURE, .outcomes = "-", .depth = -1},
        {"secure NODATA", "www inter root", {NULL}, "secure-nodata", .verdict = TLSPOOL_DANE_NO_RECORDS, .outcomes = "", .depth = -1},
        {"secure NXDOMAIN", "www inter root", {NULL}, "secure-nxdomain", .verdict = TLSPOOL_DANE_NO_RECORDS, .outcomes = "", .depth = -1},
        {"secure, empty RRset", "www inter root", {NULL}, .verdict = TLSPOOL_DANE_NO_RECORDS, .outcomes = "", .depth = -1},
        /* --- negative: the peer */
        {"unparsable certificate", "junk", {"3 1 1 www"}, .verdict = TLSPOOL_DANE_PEER_ERROR, .outcomes = "0", .depth = -1, .reason = "does not parse"},
        {"unparsable intermediate", "www junk", {"3 1 1 www"}, .verdict = TLSPOOL_DANE_PEER_ERROR, .outcomes = "0", .depth = -1},
        {"unparsable raw key", "@junk", {"3 1 1 rawkey"}, .verdict = TLSPOOL_DANE_PEER_ERROR, .outcomes = "0", .depth = -1},
        /* --- negative: digests and what records may match */
        {"3 1 1 wrong digest", "www inter root", {"3 1 1 www!"}, .verdict = NOMATCH, .outcomes = "N", .depth = -1, .reason = "digest differs"},
        {"3 0 0 wrong data", "www inter root", {"3 0 0 www!"}, .verdict = NOMATCH, .outcomes = "N", .depth = -1, .reason = "data differs"},
        {"3 1 2 another leaf", "www inter root", {"3 1 2 other"}, .verdict = NOMATCH, .outcomes = "N", .depth = -1},
        {"DANE-EE matches only depth 0", "www inter root", {"3 1 1 inter"}, .verdict = NOMATCH, .outcomes = "N", .depth = -1, .reason = "end-entity usages match only"},
        {"PKIX-EE matches only depth 0", "www inter root", {"1 0 1 inter"}, .trust = "root.pem", .verdict = NOMATCH, .outcomes = "N", .depth = -1},
        {"DANE-TA of the end entity", "www inter root", {"2 0 1 www"}, .verdict = NOMATCH, .outcomes = "N", .depth = -1, .reason = "own trust anchor"},
        {"DANE-TA of a self-signed leaf", "self", {"2 0 1 self"}, .verdict = NOMATCH, .outcomes = "N", .depth = -1, .reason = "DANE-EE"},
        {"DANE-TA 2 0 0 of a self-signed leaf", "self", {"2 0 0 self"}, .verdict = NOMATCH, .outcomes = "N", .depth = -1},
        {"PKIX-TA of the end entity", "www inter root", {"0 0 1 www"}, .trust = "root.pem", .verdict = NOMATCH, .outcomes = "N", .depth = -1},
        {"2 0 1 of a root not sent", "www inter", {"2 0 1 root"}, .verdict = NOMATCH, .outcomes = "N", .depth = -1},
        {"2 0 1 off the issuer path", "www root", {"2 0 1 root"}, .verdict = NOMATCH, .outcomes = "N", .depth = -1, .reason = "not on the end entity's issuer path"},
        {"2 0 0 root, intermediate missing", "www", {"2 0 0 root"}, .verdict = NOMATCH, .outcomes = "N", .depth = -1},
        {"2 1 0 root key, intermediate missing", "www", {"2 1 0 root.spki"}, .verdict = NOMATCH, .outcomes = "N", .depth = -1},
        {"2 1 0 impostor key", "www", {"2 1 0 impostor.spki"}, .verdict = NOMATCH, .outcomes = "N", .depth = -1},
        {"2 0 1 impostor with inter's DN", "www impostor", {"2 0 1 impostor"}, .verdict = NOMATCH, .outcomes = "N", .depth = -1, .reason = "not on the end entity's issuer path"},
        {"2 0 0 impostor with inter's DN, not sent", "www", {"2 0 0 impostor"}, .verdict = NOMATCH, .outcomes = "N", .depth = -1},
        {"2 0 1 inter, leaf signature broken", "badsig inter root", {"2 0 1 inter"}, .verdict = NOMATCH, .outcomes = "C", .depth = 1, .reason = "does not verify"},
        {"2 0 1 root, leaf signature broken", "badsig inter root", {"2 0 1 root"}, .verdict = NOMATCH, .outcomes = "C", .depth = 2},
        {"2 0 0 inter not sent, leaf signature broken", "badsig", {"2 0 0 inter"}, .verdict = NOMATCH, .outcomes = "C", .depth = 1},
        {"2 1 0 inter key, leaf signature broken", "badsig", {"2 1 0 inter.spki"}, .verdict = NOMATCH, .outcomes = "N", .depth = -1},
        {"1 1 1, leaf signature broken", "badsig inter root", {"1 1 1 badsig"}, .trust = "root.pem", .verdict = NOMATCH, .outcomes = "K", .depth = 0},
        {"3 1 1, leaf signature broken: DANE-EE does not care", "badsig inter root", {"3 1 1 www"}, .verdict = AUTH, .outcomes = "M", .depth = 0},
        /* --- negative: names and dates per usage */
        {"DANE-TA, another name", "other inter root", {"2 0 1 root"}, .verdict = NOMATCH, .outcomes = "X", .depth = 2, .reason = "www.other.test"},
        {"DANE-TA, reference not in cert", "www inter root", {"2 1 1 inter"}, .names = "mail.example.test", .verdict = NOMATCH, .outcomes = "X", .depth = 1},
        {"DANE-TA, no reference name", "www inter root", {"2 1 1 inter"}, .names = "", .verdict = NOMATCH, .outcomes = "X", .depth = 1, .reason = "no reference name"},
        {"DANE-TA, wildcard spans two labels", "wild inter root", {"2 1 1 inter"}, .names = "a.b.example.test", .verdict = NOMATCH, .outcomes = "X", .depth = 1},
        {"DANE-TA, wildcard does not match parent", "wild inter root", {"2 1 1 inter"}, .names = "example.test", .verdict = NOMATCH, .outcomes = "X", .depth = 1},
        {"DANE-TA, user cert for a host", "john inter root", {"2 1 1 inter"}, .names = "example.test", .verdict = NOMATCH, .outcomes = "X", .depth = 1},
        {"DANE-TA, expired leaf", "expired inter root", {"2 0 1 root"}, .verdict = NOMATCH, .outcomes = "E", .depth = 2, .reason = "has expired"},
        {"DANE-TA, in 60 days", "www inter root", {"2 1 2 inter"}, .dt = 60 * DAY, .verdict = NOMATCH, .outcomes = "E", .depth = 1},
        {"DANE-TA, yesterday", "www inter root", {"2 1 2 inter"}, .dt = -DAY, .verdict = NOMATCH, .outcomes = "E", .depth = 1, .reason = "not yet valid"},
        {"DANE-TA 2 1 0 unsent, in 60 days", "www inter", {"2 1 0 root.spki"}, .dt = 60 * DAY, .verdict = NOMATCH, .outcomes = "E", .depth = 2},
        {"PKIX-EE, expired", "expired inter root", {"1 1 1 expired"}, .trust = "root.pem", .verdict = NOMATCH, .outcomes = "E", .depth = 0},
        {"PKIX-EE, another name", "other inter root", {"1 1 1 other"}, .trust = "root.pem", .verdict = NOMATCH, .outcomes = "X", .depth = 0},
        {"PKIX-EE, not in the trust store", "www inter root", {"1 1 1 www"}, .trust = "impostor.pem", .verdict = NOMATCH, .outcomes = "K", .depth = 0, .reason = "PKIX validation failed"},
        {"PKIX-TA, not in the trust store", "www inter root", {"0 0 1 inter"}, .trust = "impostor.pem", .verdict = NOMATCH, .outcomes = "K", .depth = 1},
        {"PKIX-TA, in 60 days", "www inter root", {"0 0 1 inter"}, .trust = "root.pem", .dt = 60 * DAY, .verdict = NOMATCH, .outcomes = "E", .depth = 1},
        /* --- negative: DANE-EE name checks, when asked for */
        {"EE name checks, another name", "other inter root", {"3 1 1 other"}, .flags = EENAMES, .verdict = NOMATCH, .outcomes = "X", .depth = 0, .reason = "www.other.test"},
        {"EE name checks, a raw key names nothing", "@rawkey", {"3 1 1 rawkey"}, .flags = EENAMES, .verdict = NOMATCH, .outcomes = "X", .depth = 0, .reason = "a raw key names nothing"},
        {"EE name checks, wildcard and parent", "wild", {"3 1 1 wild"}, .names = "example.test", .flags = EENAMES, .verdict = NOMATCH, .outcomes = "X", .depth = 0},
        {"EE name checks, no reference name", "www", {"3 1 1 www"}, .names = "", .flags = EENAMES, .verdict = NOMATCH, .outcomes = "X", .depth = 0, .reason = "no reference name"},
        /* --- negative: the best record of a failure is the strongest that matched */
        {"best failure: DANE-TA over PKIX-EE", "expired inter root", {"1 1 1 expired", "2 0 1 inter"}, .trust = "root.pem", .verdict = NOMATCH, .outcomes = "EE", .depth = 1},
        {"best failure: a match beats no match", "www inter root", {"3 1 1 other", "2 0 1 inter"}, .names = "mail.example.test", .verdict = NOMATCH, .outcomes = "NX", .depth = 1},
        /* --- negative: unusable records */
        {"PKIX without trust store", "www inter root", {"1 1 1 www", "0 0 1 root"}, .verdict = NOUSABLE, .outcomes = "UU", .depth = -1, .reason = "trust store"},
        {"PKIX in the SMTP profile", "www inter root", {"1 1 1 www", "0 0 1 root"}, .trust = "root.pem", .flags = TLSPOOL_DANE_NO_PKIX, .verdict = NOUSABLE, .outcomes = "UU", .depth = -1, .reason = "RFC 7672"},
        {"unknown usage, selector, mtype", "www inter root", {"4 1 1 www", "3 2 1 www", "3 1 3 www", "255 1 1 www"}, .verdict = NOUSABLE, .outcomes = "UUUU", .depth = -1, .reason = "unknown usage 4"},
        {"malformed digest length", "www inter root", {"3 1 1 www~"}, .verdict = NOUSABLE, .outcomes = "U", .depth = -1, .reason = "malformed"},
        /* --- agility (RFC 7671 section 9) */
        {"strong mismatch beats weak match", "www inter root", {"3 1 2 www!", "3 1 1 www"}, .verdict = NOMATCH, .outcomes = "NA", .depth = -1},
        {"weak mismatch beside strong match", "www inter root", {"3 1 1 www!", "3 1 2 www"}, .verdict = AUTH, .outcomes = "AM", .depth = 0},
        {"agility applies to DANE-TA too", "www inter root", {"2 0 2 root!", "2 0 1 root"}, .verdict = NOMATCH, .outcomes = "NA", .depth = -1, .reason = NULL},
        {"Full(0) is never skipped", "www inter root", {"3 1 0 www", "3 1 2 www!"}, .verdict = AUTH, .outcomes = "MN", .depth = 0},
        {"per selector", "www inter root", {"3 1 2 www!", "3 0 1 www"}, .verdict = AUTH, .outcomes = "NM", .depth = 0},
        {"per usage", "www inter root", {"3 1 2 www!", "2 1 1 inter"}, .verdict = AUTH, .outcomes = "NM", .depth = 1},
        {"unknown mtype does not suppress", "www inter root", {"3 1 3 www", "3 1 1 www"}, .verdict = AUTH, .outcomes = "UM", .depth = 0},
        {"malformed SHA2-512 does not suppress", "www inter root", {"3 1 2 www~", "3 1 1 www"}, .verdict = AUTH, .outcomes = "UM", .depth = 0},
        {"PKIX without store does not suppress", "www inter root", {"1 1 2 www!", "1 1 1 www"}, .verdict = NOUSABLE, .outcomes = "UU", .depth = -1},
        /* --- raw public keys (RFC 7250) */
        {"raw key, 3 1 1 wrong", "@rawkey", {"3 1 1 www"}, .verdict = NOMATCH, .outcomes = "N", .depth = -1},
        {"raw key, 2 1 1", "@rawkey", {"2 1 1 rawkey"}, .verdict = NOMATCH, .outcomes = "P", .depth = -1, .reason = "raw public key"},
        {"raw key, 3 0 1", "@rawkey", {"3 0 1 www"}, .verdict = NOMATCH, .outcomes = "P", .depth = -1},
        {"raw key, 1 1 1", "@rawkey", {"1 1 1 rawkey"}, .trust = "root.pem", .verdict = NOMATCH, .outcomes = "P", .depth = -1},
        /* --- positive: DANE-EE, every selector x matching type */
        {"3 0 0", "www inter root", {"3 0 0 www"}, .verdict = AUTH, .outcomes = "M", .depth = 0},
        {"3 0 1", "www inter root", {"3 0 1 www"}, .verdict = AUTH, .outcomes = "M", .depth = 0},
        {"3 0 2", "www inter root", {"3 0 2 www"}, .verdict = AUTH, .outcomes = "M", .depth = 0},
        {"3 1 0", "www inter root", {"3 1 0 www"}, .verdict = AUTH, .outcomes = "M", .depth = 0},
        {"3 1 1", "www inter root", {"3 1 1 www"}, .verdict = AUTH, .outcomes = "M", .depth = 0, .reason = "not checked"},
        {"3 1 2", "www inter root", {"3 1 2 www"}, .verdict = AUTH, .outcomes = "M", .depth = 0},
        {"DANE-EE ignores names", "other", {"3 1 1 other"}, .verdict = AUTH, .outcomes = "M", .depth = 0},
        {"DANE-EE ignores expiry", "expired", {"3 1 1 expired"}, .verdict = AUTH, .outcomes = "M", .depth = 0},
        {"DANE-EE ignores dates", "www", {"3 1 1 www"}, .dt = 400 * DAY, .verdict = AUTH, .outcomes = "M", .depth = 0},
        {"DANE-EE self-signed", "self", {"3 0 1 self"}, .verdict = AUTH, .outcomes = "M", .depth = 0},
        {"second record matches", "www inter root", {"3 1 1 other", "3 1 1 www"}, .verdict = AUTH, .outcomes = "NM", .depth = 0},
        {"unusable beside a match", "www inter root", {"7 1 1 www", "3 1 1 www"}, .verdict = AUTH, .outcomes = "UM", .depth = 0},
        {"raw key 3 1 0", "@rawkey", {"3 1 0 rawkey"}, .verdict = AUTH, .outcomes = "M", .depth = 0},
        {"raw key 3 1 1", "@rawkey", {"3 1 1 rawkey"}, .verdict = AUTH, .outcomes = "M", .depth = 0},
        {"raw key 3 1 2", "@rawkey", {"3 1 2 rawkey", "2 0 1 root"}, .verdict = AUTH, .outcomes = "MP", .depth = 0},
        /* --- positive: DANE-EE name checks */
        {"EE name checks, the name", "www inter root", {"3 1 1 www"}, .flags = EENAMES, .verdict = AUTH, .outcomes = "M", .depth = 0, .reason = "DANE-EE name checks asked for"},
        {"EE name checks, second reference name", "www", {"3 1 1 www"}, .names = "mail.example.test www.example.test", .flags = EENAMES, .verdict = AUTH, .outcomes = "M", .depth = 0},
        {"EE name checks, dates still not checked", "expired", {"3 1 1 expired"}, .flags = EENAMES, .verdict = AUTH, .outcomes = "M", .depth = 0},
        {"EE name checks, wildcard", "wild", {"3 1 1 wild"}, .names = "a.example.test", .flags = EENAMES, .verdict = AUTH, .outcomes = "M", .depth = 0},
        /* --- positive: several records authenticate; the strongest counts */
        {"several: DANE-EE over DANE-TA", "www inter root", {"2 0 1 inter", "3 1 1 www"}, .verdict = AUTH, .outcomes = "MM", .depth = 0},
        {"several: DANE-TA over PKIX", "www inter root", {"0 0 1 inter", "1 1 1 www", "2 1 1 root"}, .trust = "root.pem", .verdict = AUTH, .outcomes = "MMM", .depth = 2},
        {"several: PKIX-EE over PKIX-TA", "www inter root", {"0 0 1 root", "1 1 1 www"}, .trust = "root.pem", .verdict = AUTH, .outcomes = "MM", .depth = 0},
        {"several of one usage: the first", "www inter root", {"2 0 1 root", "2 0 1 inter"}, .verdict = AUTH, .outcomes = "MM", .depth = 2},
        /* --- positive: DANE-TA */
        {"2 0 0 inter", "www inter root", {"2 0 0 inter"}, .verdict = AUTH, .outcomes = "M", .depth = 1},
        {"2 0 1 inter", "www inter root", {"2 0 1 inter"}, .verdict = AUTH, .outcomes = "M", .depth = 1},
        {"2 0 2 inter", "www inter root", {"2 0 2 inter"}, .verdict = AUTH, .outcomes = "M", .depth = 1},
        {"2 1 0 root", "www inter root", {"2 1 0 root"}, .verdict = AUTH, .outcomes = "M", .depth = 2},
        {"2 1 1 root", "www inter root", {"2 1 1 root"}, .verdict = AUTH, .outcomes = "M", .depth = 2},
        {"2 1 2 root", "www inter root", {"2 1 2 root"}, .verdict = AUTH, .outcomes = "M", .depth = 2},
        {"2 0 1 root, unsorted chain", "www root inter", {"2 0 1 root"}, .verdict = AUTH, .outcomes = "M", .depth = 2},
        {"2 1 1 inter, chain without root", "www inter", {"2 1 1 inter"}, .verdict = AUTH, .outcomes = "M", .depth = 1},
        {"2 0 0 root not sent", "www inter", {"2 0 0 root"}, .verdict = AUTH, .outcomes = "M", .depth = 2, .reason = "did not send"},
        {"2 1 0 root key not sent", "www inter", {"2 1 0 root.spki"}, .verdict = AUTH, .outcomes = "M", .depth = 2, .reason = "bare trust-anchor key"},
        {"2 0 0 root not sent, leaf it signed", "direct", {"2 0 0 root"}, .verdict = AUTH, .outcomes = "M", .depth = 1},
        {"2 1 0 root key, leaf it signed", "direct", {"2 1 0 root.spki"}, .verdict = AUTH, .outcomes = "M", .depth = 1},
        {"2 1 0 inter key not sent", "www", {"2 1 0 inter.spki"}, .verdict = AUTH, .outcomes = "M", .depth = 1},
        {"DANE-TA, dc= name", "wwwdc inter root", {"2 1 1 inter"}, .verdict = AUTH, .outcomes = "M", .depth = 1},
        {"DANE-TA, wildcard", "wild inter root", {"2 1 1 inter"}, .verdict = AUTH, .outcomes = "M", .depth = 1},
        {"DANE-TA, second reference name", "www inter root", {"2 1 1 inter"}, .names = "mail.example.test www.example.test", .verdict = AUTH, .outcomes = "M", .depth = 1},
        {"DANE-TA, user", "john inter root", {"2 1 1 inter"}, .names = "john@example.test", .verdict = AUTH, .outcomes = "M", .depth = 1},
        /* --- positive: PKIX-EE and PKIX-TA */
        {"1 0 0", "www inter root", {"1 0 0 www"}, .trust = "root.pem", .verdict = AUTH, .outcomes = "M", .depth = 0},
        {"1 0 1", "www inter root", {"1 0 1 www"}, .trust = "root.pem", .verdict = AUTH, .outcomes = "M", .depth = 0},
        {"1 0 2", "www inter", {"1 0 2 www"}, .trust = "root.pem", .verdict = AUTH, .outcomes = "M", .depth = 0},
        {"1 1 0", "www inter", {"1 1 0 www"}, .trust = "root.pem", .verdict = AUTH, .outcomes = "M", .depth = 0},
        {"1 1 1", "www inter root", {"1 1 1 www"}, .trust = "root.pem", .verdict = AUTH, .outcomes = "M", .depth = 0, .reason = "PKIX path"},
        {"1 1 2", "www inter root", {"1 1 2 www"}, .trust = "root.pem", .verdict = AUTH, .outcomes = "M", .depth = 0},
        {"0 0 0 inter", "www inter root", {"0 0 0 inter"}, .trust = "root.pem", .verdict = AUTH, .outcomes = "M", .depth = 1},
        {"0 0 1 root", "www inter root", {"0 0 1 root"}, .trust = "root.pem", .verdict = AUTH, .outcomes = "M", .depth = 2},
        {"0 0 2 inter", "www inter root", {"0 0 2 inter"}, .trust = "root.pem", .verdict = AUTH, .outcomes = "M", .depth = 1},
        {"0 1 0 inter", "www inter root", {"0 1 0 inter"}, .trust = "root.pem", .verdict = AUTH, .outcomes = "M", .depth = 1},
        {"0 1 1 root", "www inter root", {"0 1 1 root"}, .trust = "root.pem", .verdict = AUTH, .outcomes = "M", .depth = 2},
        {"0 1 2 inter", "www inter root", {"0 1 2 inter"}, .trust = "root.pem", .verdict = AUTH, .outcomes = "M", .depth = 1},
        {"0 0 1 store root not sent", "www inter", {"0 0 1 root"}, .trust = "root.pem", .verdict = AUTH, .outcomes = "M", .depth = 2, .reason = "trust-store root"},
};

/* Storage for one row's records. */
struct built {
	unsigned char rdata[MAXREC][4096];
	tlspool_tlsa tlsa[MAXREC];
	size_t n;
	tlspool_span chain[MAXCHAIN];
	size_t nchain;
	tlspool_span rawkey;
	const char *names[4];
	char namebuf[256];
	size_t nnames;
};

static const unsigned char junk[] = {0x30, 0x03, 0x02, 0x01, 0x00};

/* A certificate by name; "junk" does not parse, and "badsig" is www with
 * one bit of its signature flipped (it parses, but does not verify). */
static const tlspool_span *peer_cert(const char *name)
{
	static const tlspool_span j = {junk, sizeof(junk)};
	static unsigned char bad[4096];
	static tlspool_span b;
	const tlspool_span *www;

	if (strcmp(name, "junk") == 0)
		return &j;
	if (strcmp(name, "badsig") == 0) {
		www = tp_cert("www");
		ck_assert_uint_le(www->len, sizeof(bad));
		memcpy(bad, www->data, www->len);
		bad[www->len - 1] ^= 1;
		b.data = bad;
		b.len = www->len;
		return &b;
	}
	return tp_cert(name);
}

/* "U S M CERT[!~]" into rdata, through the generator under test. */
static void build_record(const char *spec, unsigned char *rdata, tlspool_tlsa *t)
{
	unsigned u, s, m;
	char name[48];
	size_t len;
	const tlspool_span *c;
	int n, flip, drop, raw;

	ck_assert_int_eq(sscanf(spec, "%u %u %u %47s", &u, &s, &m, name), 4);
	len = strlen(name);
	flip = name[len - 1] == '!';
	drop = name[len - 1] == '~';
	if (flip || drop)
		name[len - 1] = '\0';
	raw = strstr(name, "spki") != NULL || strcmp(name, "rawkey") == 0;
	c = peer_cert(name);
	ck_assert_msg(c != NULL, "no certificate %s", name);
	/* Unknown selectors and matching types: a valid record, relabelled. */
	n = tlspool_tlsa_make(c, raw, (uint8_t)u, s > 1 ? 1 : (uint8_t)s,
	                      m > 2 ? 1 : (uint8_t)m, rdata, 4096);
	ck_assert_msg(n > 3, "%s: errno %d", spec, errno);
	rdata[1] = (unsigned char)s;
	rdata[2] = (unsigned char)m;
	if (flip)
		rdata[n - 1] ^= 1;
	if (drop)
		n--;
	/* Bypass tlspool_tlsa_parse(), which refuses malformed lengths:
	 * the matcher must refuse them on its own. */
	t->usage = rdata[0];
	t->selector = rdata[1];
	t->mtype = rdata[2];
	t->data = rdata + 3;
	t->len = (size_t)n - 3;
}

static void build(const struct row *r, struct built *b)
{
	char chain[128], *tok, *save = NULL;

	memset(b, 0, sizeof(*b));
	for (b->n = 0; b->n < MAXREC && r->recs[b->n]; b->n++)
		build_record(r->recs[b->n], b->rdata[b->n], &b->tlsa[b->n]);
	snprintf(chain, sizeof(chain), "%s", r->chain);
	if (chain[0] == '@') {
		b->rawkey = *peer_cert(chain + 1);
	} else {
		for (tok = strtok_r(chain, " ", &save); tok;
		     tok = strtok_r(NULL, " ", &save)) {
			ck_assert_ptr_nonnull(peer_cert(tok));
			b->chain[b->nchain++] = *peer_cert(tok);
		}
	}
	snprintf(b->namebuf, sizeof(b->namebuf), "%s",
	         r->names ? r->names : "www.example.test");
	for (tok = strtok_r(b->namebuf, " ", &save); tok && b->nnames < 4;
	     tok = strtok_r(NULL, " ", &save))
		b->names[b->nnames++] = tok;
}

static tlspool_dns_verdict dns_by_name(const char *name)
{
	int v;

	if (name == NULL)
		return TLSPOOL_DNS_SECURE;
	for (v = 0; v <= TLSPOOL_DNS_TIMEOUT; v++)
		if (strcmp(tlspool_dns_verdict_name((tlspool_dns_verdict)v), name) == 0)
			return (tlspool_dns_verdict)v;
	ck_abort_msg("no DNS verdict %s", name);
	return TLSPOOL_DNS_UNCHECKED;
}

static char outcome_letter(tlspool_dane_outcome o)
{
	static const char letters[] = "0MNUAPXCEK-W";

	return (unsigned)o < sizeof(letters) - 1 ? letters[o] : '?';
}

START_TEST(match)
{
	const struct row *r = &rows[_i];
	struct built b;
	tlspool_dane_input in;
	tlspool_dane_result *res = NULL;
	tlspool_trust *trust = NULL;
	char err[256], got[MAXREC + 1] = "";
	size_t i;

	build(r, &b);
	if (r->trust) {
		trust = tlspool_trust_new_file(tp_certpath(r->trust), err, sizeof(err));
		ck_assert_msg(trust != NULL, "%s", err);
	}
	memset(&in, 0, sizeof(in));
	in.chain = b.chain;
	in.nchain = b.nchain;
	in.rawkey = b.rawkey;
	in.tlsa = b.tlsa;
	in.ntlsa = b.n;
	in.dns = dns_by_name(r->dns);
	in.dns_detail = r->dns ? "as the row says" : NULL;
	in.names = b.names;
	in.nnames = b.nnames;
	in.now = time(NULL) + r->dt;
	in.trust = trust;
	in.flags = r->flags;
	ck_assert_int_eq(tlspool_dane_match(&in, &res, err, sizeof(err)), 0);
	ck_assert_uint_eq(res->nsteps, b.n);
	for (i = 0; i < res->nsteps; i++) {
		got[i] = outcome_letter(res->steps[i].outcome);
		ck_assert_uint_eq(res->steps[i].index, i);
		ck_assert_uint_eq(res->steps[i].usage, b.tlsa[i].usage);
		ck_assert_msg(res->steps[i].reason[0] != '\0', "record %zu: no reason", i);
	}
	got[i] = '\0';
	ck_assert_msg(res->verdict == r->verdict && strcmp(got, r->outcomes) == 0 &&
	                      res->depth == r->depth,
	              "%s: verdict %s (want %s), outcomes %s (want %s), depth %d "
	              "(want %d); %s; first: %s",
	              r->why, tlspool_dane_verdict_name(res->verdict),
	              tlspool_dane_verdict_name(r->verdict), got, r->outcomes,
	              res->depth, r->depth, res->reason,
	              res->nsteps ? res->steps[0].reason : "-");
	if (r->reason)
		ck_assert_msg(strstr(res->nsteps ? res->steps[0].reason : res->reason,
		                     r->reason) ||
		                      strstr(res->reason, r->reason),
		              "%s: reason \"%s\" lacks \"%s\"", r->why,
		              res->nsteps ? res->steps[0].reason : res->reason,
		              r->reason);
	ck_assert(res->reason[0] != '\0');
	if (res->verdict == AUTH) {
		ck_assert_int_ge(res->matched, 0);
		ck_assert_int_eq(res->steps[res->matched].outcome, TLSPOOL_DANE_REC_MATCHED);
		/* The authenticated name: for DANE-EE the first reference
		 * name (the TLSA base name); else one the certificate names. */
		ck_assert_int_eq(res->best, res->matched);
		/* the strongest: no matched record of a stronger usage */
		for (i = 0; i < res->nsteps; i++)
			if (res->steps[i].outcome == TLSPOOL_DANE_REC_MATCHED)
				ck_assert_int_le(res->steps[i].usage,
				                 res->steps[res->matched].usage);
		if ((res->steps[res->matched].usage == TLSPOOL_DANE_USAGE_DANE_EE &&
		     !(r->flags & EENAMES)) ||
		    b.nchain == 0)
			ck_assert_str_eq(res->name, b.nnames ? b.names[0] : "");
		else
			ck_assert_int_eq(tlspool_x509_names(&b.chain[0], res->name), 1);
	} else {
		ck_assert_int_eq(res->matched, -1);
	}
	/* the result's depth is its best record's */
	if (res->best >= 0)
		ck_assert_int_eq(res->depth, res->steps[res->best].depth);
	else
		ck_assert_int_eq(res->depth, -1);
	tlspool_dane_result_free(res);
	tlspool_trust_free(trust);
}
END_TEST


/* --- extra untrusted certificates (TLSPOOL_DANE_EXTRA_CERTS) ---------------- */

static const struct {
	const char *why, *chain, *recs[MAXREC], *extra, *trust;
	int flag;
	tlspool_dane_verdict verdict;
	const char *outcomes;
	int depth, chain_index; /* of the best record */
} extra_rows[] = {
        /* negative: without the flag, or from certificates that do not
         * complete the path, nothing changes */
        {"2 0 1 inter, not sent, no flag", "www", {"2 0 1 inter"}, "inter", NULL, 0, NOMATCH, "N", -1, -1},
        {"PKIX-TA from 0 0 0, no flag", "www", {"0 0 0 inter", "0 0 1 root"}, NULL, "root.pem", 0, NOMATCH, "NN", -1, -1},
        {"an extra that does not parse", "www", {"2 0 1 inter"}, "junk", NULL, 1, NOMATCH, "N", -1, -1},
        {"an impostor extra (inter's DN, not its key)", "www", {"2 0 1 impostor"}, "impostor", NULL, 1, NOMATCH, "N", -1, -1},
        {"an extra of another chain", "www", {"2 0 1 root"}, "impostor root", NULL, 1, NOMATCH, "N", -1, -1},
        {"PKIX-EE, extra not in the store", "www", {"1 1 1 www"}, "inter", "impostor.pem", 1, NOMATCH, "K", 0, 0},
        /* positive */
        {"2 0 1 inter, not sent", "www", {"2 0 1 inter"}, "inter", NULL, 1, AUTH, "M", 1, -1},
        {"2 0 1 root, neither sent", "www", {"2 0 1 root"}, "root inter", NULL, 1, AUTH, "M", 2, -1},
        {"2 0 1 root, inter sent", "www inter", {"2 0 1 root"}, "root", NULL, 1, AUTH, "M", 2, -1},
        {"the peer's own come first", "www inter", {"2 0 1 inter"}, "inter", NULL, 1, AUTH, "M", 1, 1},
        {"PKIX-TA, the chain from a 0 0 0 record (OpenSSL case 39)", "www", {"0 0 0 inter", "0 0 1 root"}, NULL, "root.pem", 1, AUTH, "MM", 1, -1},
        {"PKIX-EE, the path completed", "www", {"1 1 1 www"}, "inter", "root.pem", 1, AUTH, "M", 0, 0},
        {"2 0 0 inter: the record's own certificate", "www", {"2 0 0 inter"}, NULL, NULL, 1, AUTH, "M", 1, -1},
};

START_TEST(extra_certs)
{
	struct row r = {0};
	struct built b;
	tlspool_span extra[4];
	char buf[64], *tok, *save = NULL, got[MAXREC + 1] = "", err[256];
	tlspool_dane_input in;
	tlspool_dane_result *res;
	tlspool_trust *trust = NULL;
	size_t i, nextra = 0;

	r.chain = extra_rows[_i].chain;
	memcpy(r.recs, extra_rows[_i].recs, sizeof(r.recs));
	build(&r, &b);
	if (extra_rows[_i].extra != NULL) {
		snprintf(buf, sizeof(buf), "%s", extra_rows[_i].extra);
		for (tok = strtok_r(buf, " ", &save); tok;
		     tok = strtok_r(NULL, " ", &save))
			extra[nextra++] = *peer_cert(tok);
	}
	if (extra_rows[_i].trust) {
		trust = tlspool_trust_new_file(tp_certpath(extra_rows[_i].trust),
		                               err, sizeof(err));
		ck_assert_ptr_nonnull(trust);
	}
	memset(&in, 0, sizeof(in));
	in.chain = b.chain;
	in.nchain = b.nchain;
	in.tlsa = b.tlsa;
	in.ntlsa = b.n;
	in.dns = TLSPOOL_DNS_SECURE;
	in.names = b.names;
	in.nnames = b.nnames;
	in.now = time(NULL);
	in.trust = trust;
	in.extra = nextra ? extra : NULL;
	in.nextra = nextra;
	in.flags = extra_rows[_i].flag ? TLSPOOL_DANE_EXTRA_CERTS : 0;
	ck_assert_int_eq(tlspool_dane_match(&in, &res, err, sizeof(err)), 0);
	for (i = 0; i < res->nsteps; i++)
		got[i] = outcome_letter(res->steps[i].outcome);
	got[i] = '\0';
	ck_assert_msg(res->verdict == extra_rows[_i].verdict &&
	                      strcmp(got, extra_rows[_i].outcomes) == 0 &&
	                      res->depth == extra_rows[_i].depth,
	              "%s: %s %s depth %d; %s", extra_rows[_i].why,
	              tlspool_dane_verdict_name(res->verdict), got, res->depth,
	              res->steps[0].reason);
	if (res->best >= 0)
		ck_assert_int_eq(res->steps[res->best].chain_index,
		                 extra_rows[_i].chain_index);
	tlspool_dane_result_free(res);
	tlspool_trust_free(trust);
}
END_TEST

/* The strongest record is named, every record is in the trace with its
 * depth, and a chain sent unsorted counts depth along the path. */
static const struct {
	const char *chain, *recs[MAXREC];
	int matched, best;
	const char *depths; /* of every step */
	const char *chain_indices;
} strongest_rows[] = {
        {"www inter root", {"2 0 1 inter", "3 1 1 www"}, 1, 1, "1 0", "1 0"},
        {"www inter root", {"3 1 1 www", "2 0 1 inter"}, 0, 0, "0 1", "0 1"},
        {"www inter root", {"0 0 1 inter", "1 1 1 www", "2 1 1 root"}, 2, 2, "1 0 2", "1 0 2"},
        {"www root inter", {"2 0 1 root", "2 0 1 inter", "3 1 1 other"}, 0, 0, "2 1 -1", "1 2 -1"},
        {"www inter", {"2 0 0 root", "2 1 0 root.spki"}, 0, 0, "2 2", "-1 -1"},
        {"expired inter root", {"2 0 1 inter", "3 1 1 other"}, -1, 0, "1 -1", "1 -1"},
        {"www inter root", {"3 1 1 other", "7 1 1 www"}, -1, -1, "-1 -1", "-1 -1"},
};

START_TEST(strongest)
{
	struct row r = {0};
	struct built b;
	tlspool_dane_input in;
	tlspool_dane_result *res;
	tlspool_trust *trust;
	char err[256], depths[64] = "", idx[64] = "";
	size_t i;

	trust = tlspool_trust_new_file(tp_certpath("root.pem"), err, sizeof(err));
	ck_assert_ptr_nonnull(trust);
	r.chain = strongest_rows[_i].chain;
	memcpy(r.recs, strongest_rows[_i].recs, sizeof(r.recs));
	build(&r, &b);
	memset(&in, 0, sizeof(in));
	in.chain = b.chain;
	in.nchain = b.nchain;
	in.tlsa = b.tlsa;
	in.ntlsa = b.n;
	in.dns = TLSPOOL_DNS_SECURE;
	in.names = b.names;
	in.nnames = b.nnames;
	in.now = time(NULL);
	in.trust = trust;
	ck_assert_int_eq(tlspool_dane_match(&in, &res, err, sizeof(err)), 0);
	for (i = 0; i < res->nsteps; i++) {
		snprintf(depths + strlen(depths), sizeof(depths) - strlen(depths),
		         "%s%d", i ? " " : "", res->steps[i].depth);
		snprintf(idx + strlen(idx), sizeof(idx) - strlen(idx), "%s%d",
		         i ? " " : "", res->steps[i].chain_index);
	}
	ck_assert_msg(res->matched == strongest_rows[_i].matched &&
	                      res->best == strongest_rows[_i].best,
	              "row %d: matched %d best %d", _i, res->matched, res->best);
	ck_assert_str_eq(depths, strongest_rows[_i].depths);
	ck_assert_str_eq(idx, strongest_rows[_i].chain_indices);
	if (res->matched >= 0)
		ck_assert_ptr_nonnull(strstr(res->reason,
		                             tlspool_dane_usage_name(
		                                     res->steps[res->matched].usage)));
	tlspool_dane_result_free(res);
	tlspool_trust_free(trust);
}
END_TEST

/* --- extended key usage for usages 0 and 1 ---------------------------------- */

#define SRV TLSPOOL_DANE_PURPOSE_SERVER
#define CLI TLSPOOL_DANE_PURPOSE_CLIENT
static const struct {
	const char *chain, *rec;
	int purpose;
	char outcome; /* a letter of outcome_letter() */
	const char *reason;
} purpose_rows[] = {
        /* negative */
        {"srv inter root", "1 1 1 srv", CLI, 'W', "certificate 0 is not for TLS client authentication (its extended key usage lacks clientAuth"},
        {"cli inter root", "1 1 1 cli", SRV, 'W', "lacks serverAuth"},
        {"emailonly inter root", "1 1 1 emailonly", SRV, 'W', "lacks serverAuth"},
        {"emailonly inter root", "0 0 1 inter", CLI, 'W', "lacks clientAuth"},
        {"emailonly inter root", "0 0 1 root", SRV, 'W', "certificate 0"},
        {"srvcli intercli root", "1 1 1 srvcli", SRV, 'W', "certificate 1 is not for TLS server"},
        {"srvcli intercli root", "0 0 1 root", SRV, 'W', "certificate 1"},
        /* the other checks still come first */
        {"srv inter root", "1 1 1 srv!", CLI, 'N', NULL},
        /* positive */
        {"srv inter root", "1 1 1 srv", SRV, 'M', NULL},
        {"cli inter root", "1 1 1 cli", CLI, 'M', NULL},
        {"www inter root", "1 1 1 www", CLI, 'M', NULL},
        {"www inter root", "1 1 1 www", SRV, 'M', NULL},
        {"noeku inter root", "1 1 1 noeku", SRV, 'M', NULL},
        {"noeku inter root", "1 1 1 noeku", CLI, 'M', NULL},
        {"anyeku inter root", "1 1 1 anyeku", CLI, 'M', NULL},
        {"srv inter root", "0 0 1 inter", SRV, 'M', NULL},
        {"srv inter", "0 0 1 root", SRV, 'M', NULL},
        {"srvcli intercli root", "1 1 1 srvcli", CLI, 'W', "lacks clientAuth"},
        /* unchecked: no purpose given, or a DANE usage */
        {"srv inter root", "1 1 1 srv", TLSPOOL_DANE_PURPOSE_ANY, 'M', NULL},
        {"emailonly inter root", "1 1 1 emailonly", TLSPOOL_DANE_PURPOSE_ANY, 'M', NULL},
        {"srv inter root", "2 0 1 inter", CLI, 'M', NULL},
        {"srv inter root", "3 1 1 srv", CLI, 'M', NULL},
        {"srvcli intercli root", "2 0 1 intercli", SRV, 'M', NULL},
};

START_TEST(purpose)
{
	struct row r = {0};
	struct built b;
	tlspool_dane_input in;
	tlspool_dane_result *res;
	tlspool_trust *trust;
	char err[256];

	trust = tlspool_trust_new_file(tp_certpath("root.pem"), err, sizeof(err));
	ck_assert_ptr_nonnull(trust);
	r.chain = purpose_rows[_i].chain;
	r.recs[0] = purpose_rows[_i].rec;
	build(&r, &b);
	memset(&in, 0, sizeof(in));
	in.chain = b.chain;
	in.nchain = b.nchain;
	in.tlsa = b.tlsa;
	in.ntlsa = b.n;
	in.dns = TLSPOOL_DNS_SECURE;
	in.names = b.names;
	in.nnames = b.nnames;
	in.now = time(NULL);
	in.trust = trust;
	in.purpose = purpose_rows[_i].purpose;
	ck_assert_int_eq(tlspool_dane_match(&in, &res, err, sizeof(err)), 0);
	ck_assert_msg(outcome_letter(res->steps[0].outcome) == purpose_rows[_i].outcome,
	              "row %d: %s: %s", _i,
	              tlspool_dane_outcome_name(res->steps[0].outcome),
	              res->steps[0].reason);
	ck_assert_int_eq(res->verdict, purpose_rows[_i].outcome == 'M' ? AUTH : NOMATCH);
	if (purpose_rows[_i].reason)
		ck_assert_msg(strstr(res->steps[0].reason, purpose_rows[_i].reason),
		              "row %d: %s", _i, res->steps[0].reason);
	if (purpose_rows[_i].outcome == 'W') {
		ck_assert_str_eq(tlspool_dane_outcome_name(res->steps[0].outcome),
		                 "wrong-purpose");
		ck_assert_int_ge(res->depth, 0); /* it matched, then failed */
	}
	tlspool_dane_result_free(res);
	tlspool_trust_free(trust);
}
END_TEST

/* --- negative: arguments --- */

START_TEST(bad_arguments)
{
	tlspool_dane_input in;
	tlspool_dane_result *res = (tlspool_dane_result *)&in;
	const char *names[] = {NULL};
	char err[128] = "";

	memset(&in, 0, sizeof(in));
	in.dns = TLSPOOL_DNS_SECURE;
	errno = 0;
	ck_assert_int_eq(tlspool_dane_match(NULL, &res, err, sizeof(err)), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_null(res);
	ck_assert_int_eq(tlspool_dane_match(&in, NULL, err, sizeof(err)), -1);
	/* no chain and no raw key */
	ck_assert_int_eq(tlspool_dane_match(&in, &res, err, sizeof(err)), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert(strstr(err, "raw public key") != NULL);
	in.rawkey = *tp_cert("rawkey");
	in.ntlsa = 1; /* records, but no array */
	ck_assert_int_eq(tlspool_dane_match(&in, &res, err, sizeof(err)), -1);
	in.ntlsa = 0;
	in.names = names;
	in.nnames = 1;
	ck_assert_int_eq(tlspool_dane_match(&in, &res, err, sizeof(err)), -1);
	ck_assert_int_eq(errno, EINVAL);
	in.nnames = 0;
	in.nextra = 1; /* extra certificates, but no array */
	ck_assert_int_eq(tlspool_dane_match(&in, &res, err, sizeof(err)), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert(strstr(err, "extra certificates") != NULL);
	in.nextra = 0;
	in.purpose = 7;
	ck_assert_int_eq(tlspool_dane_match(&in, &res, err, sizeof(err)), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert(strstr(err, "purpose 7") != NULL);
	in.purpose = TLSPOOL_DANE_PURPOSE_CLIENT;
	ck_assert_int_eq(tlspool_dane_match(&in, &res, err, sizeof(err)), 0);
	ck_assert_int_eq(res->verdict, TLSPOOL_DANE_NO_RECORDS);
	tlspool_dane_result_free(res);
	tlspool_dane_result_free(NULL);
	tlspool_trust_free(NULL);
}
END_TEST

START_TEST(chain_too_long)
{
	tlspool_span chain[TP_DANE_MAX_CHAIN + 1];
	unsigned char rd[64];
	tlspool_tlsa t;
	tlspool_dane_input in;
	tlspool_dane_result *res;
	size_t i;

	for (i = 0; i < TP_DANE_MAX_CHAIN + 1; i++)
		chain[i] = *tp_cert(i ? "inter" : "www");
	ck_assert_int_gt(tlspool_tlsa_make(tp_cert("www"), 0, 3, 1, 1, rd, sizeof(rd)), 0);
	ck_assert_int_eq(tlspool_tlsa_parse(rd, 35, &t), 0);
	memset(&in, 0, sizeof(in));
	in.chain = chain;
	in.nchain = TP_DANE_MAX_CHAIN + 1;
	in.tlsa = &t;
	in.ntlsa = 1;
	in.dns = TLSPOOL_DNS_SECURE;
	ck_assert_int_eq(tlspool_dane_match(&in, &res, NULL, 0), 0);
	ck_assert_int_eq(res->verdict, TLSPOOL_DANE_PEER_ERROR);
	tlspool_dane_result_free(res);
	in.nchain = TP_DANE_MAX_CHAIN;
	ck_assert_int_eq(tlspool_dane_match(&in, &res, NULL, 0), 0);
	ck_assert_int_eq(res->verdict, TLSPOOL_DANE_AUTHENTICATED);
	tlspool_dane_result_free(res);
}
END_TEST

START_TEST(trust_errors)
{
	char err[256] = "";

	errno = 0;
	ck_assert_ptr_null(tlspool_trust_new_file("/nonexistent/ca.pem", err, sizeof(err)));
	ck_assert(strstr(err, "/nonexistent/ca.pem") != NULL);
	ck_assert_ptr_null(tlspool_trust_new_file(tp_certpath("www.key"), err, sizeof(err)));
	ck_assert_ptr_null(tlspool_trust_new_file(NULL, err, sizeof(err)));
	ck_assert_int_eq(errno, EINVAL);
}
END_TEST

START_TEST(make_errors)
{
	static const unsigned char notcert[] = {0x30, 0x03, 0x02, 0x01, 0x00};
	tlspool_span bad = {notcert, sizeof(notcert)};
	unsigned char buf[128];

	errno = 0;
	ck_assert_int_eq(tlspool_tlsa_make(tp_cert("www"), 0, 3, 2, 1, buf, sizeof(buf)), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(tlspool_tlsa_make(tp_cert("www"), 0, 3, 1, 3, buf, sizeof(buf)), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(tlspool_tlsa_make(tp_cert("rawkey"), 1, 3, 0, 1, buf, sizeof(buf)), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(tlspool_tlsa_make(NULL, 0, 3, 1, 1, buf, sizeof(buf)), -1);
	ck_assert_int_eq(tlspool_tlsa_make(&bad, 0, 3, 1, 1, buf, sizeof(buf)), -1);
	ck_assert_int_eq(errno, EBADMSG);
	ck_assert_int_eq(tlspool_tlsa_make(&bad, 1, 3, 1, 1, buf, sizeof(buf)), -1);
	ck_assert_int_eq(errno, EBADMSG);
	/* a certificate is no raw key, and a raw key no certificate */
	ck_assert_int_eq(tlspool_tlsa_make(tp_cert("www"), 1, 3, 1, 1, buf, sizeof(buf)), -1);
	ck_assert_int_eq(tlspool_tlsa_make(tp_cert("rawkey"), 0, 3, 1, 1, buf, sizeof(buf)), -1);
	ck_assert_int_eq(tlspool_tlsa_make(tp_cert("www"), 0, 3, 1, 2, buf, 40), -1);
	ck_assert_int_eq(errno, ENOSPC);
	ck_assert_int_eq(tlspool_tlsa_make(tp_cert("www"), 0, 3, 0, 0, buf, sizeof(buf)), -1);
	ck_assert_int_eq(errno, ENOSPC);
}
END_TEST

/* --- positive: names and the generator against other tools --- */

START_TEST(names)
{
	ck_assert_str_eq(tlspool_dane_verdict_name(TLSPOOL_DANE_AUTHENTICATED), "authenticated");
	ck_assert_str_eq(tlspool_dane_verdict_name(TLSPOOL_DANE_NO_USABLE), "no-usable-records");
	ck_assert_str_eq(tlspool_dane_verdict_name((tlspool_dane_verdict)99), "unknown");
	ck_assert_str_eq(tlspool_dane_outcome_name(TLSPOOL_DANE_REC_AGILITY), "skipped-agility");
	ck_assert_str_eq(tlspool_dane_outcome_name((tlspool_dane_outcome)99), "unknown");
	ck_assert_str_eq(tlspool_dane_usage_name(2), "DANE-TA");
	ck_assert_str_eq(tlspool_dane_usage_name(9), "usage-9");
	/* the named constants are the numbers of RFC 6698 section 2.1 */
	ck_assert_str_eq(tlspool_dane_usage_name(TLSPOOL_DANE_USAGE_PKIX_TA), "PKIX-TA");
	ck_assert_str_eq(tlspool_dane_usage_name(TLSPOOL_DANE_USAGE_PKIX_EE), "PKIX-EE");
	ck_assert_str_eq(tlspool_dane_usage_name(TLSPOOL_DANE_USAGE_DANE_TA), "DANE-TA");
	ck_assert_str_eq(tlspool_dane_usage_name(TLSPOOL_DANE_USAGE_DANE_EE), "DANE-EE");
	ck_assert_int_eq(TLSPOOL_DANE_SELECTOR_CERT, 0);
	ck_assert_int_eq(TLSPOOL_DANE_SELECTOR_SPKI, 1);
	ck_assert_int_eq(TLSPOOL_DANE_MTYPE_FULL, 0);
	ck_assert_int_eq(TLSPOOL_DANE_MTYPE_SHA2_256, 1);
	ck_assert_int_eq(TLSPOOL_DANE_MTYPE_SHA2_512, 2);
}
END_TEST

/* Our association data for (cert, usage, selector, mtype), in hex. */
static void our_hex(const char *cert, int raw, unsigned u, unsigned s,
                    unsigned m, char *hex, size_t hexlen)
{
	unsigned char rd[4096];
	int n = tlspool_tlsa_make(tp_cert(cert), raw, (uint8_t)u, (uint8_t)s,
	                          (uint8_t)m, rd, sizeof(rd));
	int i;

	ck_assert_int_gt(n, 3);
	ck_assert_uint_ge(hexlen, (size_t)(n - 3) * 2 + 1);
	for (i = 3; i < n; i++)
		snprintf(hex + (i - 3) * 2, 3, "%02x", rd[i]);
}

/* The last whitespace-separated token of the command's output before
 * any ")" (danetool) or at the end (ldns-dane), lowercased. */
static void tool_hex(const char *cmd, char *hex, size_t hexlen)
{
	static char out[65536];
	FILE *p = popen(cmd, "r");
	size_t n;
	char *end, *start;

	ck_assert_ptr_nonnull(p);
	n = fread(out, 1, sizeof(out) - 1, p);
	ck_assert_int_eq(pclose(p), 0);
	out[n] = '\0';
	if ((end = strchr(out, ')')) == NULL)
		end = out + n;
	while (end > out && (end[-1] == ' ' || end[-1] == '\n'))
		end--;
	for (start = end; start > out && start[-1] != ' ' && start[-1] != '\t';)
		start--;
	ck_assert_msg(end > start && (size_t)(end - start) < hexlen, "%s: %s", cmd, out);
	memcpy(hex, start, (size_t)(end - start));
	hex[end - start] = '\0';
	for (end = hex; *end; end++)
		if (*end >= 'A' && *end <= 'F')
			*end = (char)(*end - 'A' + 'a');
}

/* ldns-dane: every usage x selector x matching type.  With a chain file it
 * takes the end entity for usages 1 and 3 and the top certificate for 0
 * and 2 (-n: no name check; -s: assume PKIX validity). */
START_TEST(agrees_with_ldns_dane)
{
	unsigned u = (unsigned)_i / 6, s = ((unsigned)_i / 3) % 2, m = (unsigned)_i % 3;
	static char ours[8200], theirs[8200];
	char cmd[512];

	snprintf(cmd, sizeof(cmd),
	         "ldns-dane -n -s -c %s create www.example.test 443 %u %u %u",
	         tp_certpath("chain.pem"), u, s, m);
	tool_hex(cmd, theirs, sizeof(theirs));
	our_hex(u == 1 || u == 3 ? "www" : "root", 0, u, s, m, ours, sizeof(ours));
	ck_assert_msg(strcmp(ours, theirs) == 0, "%u %u %u: ours %s, ldns-dane %s",
	              u, s, m, ours, theirs);
}
END_TEST

/* danetool: usages via --ca/--no-domain, selector via --x509, SHA2-256
 * and SHA2-512 (it has no Full(0)); and a raw public key. */
START_TEST(agrees_with_danetool)
{
	static const char *const usage_opt[] = {"--ca --no-domain", "--no-domain",
	                                        "--ca", ""};
	unsigned u = (unsigned)_i / 4, s = ((unsigned)_i / 2) % 2, m = 1 + (unsigned)_i % 2;
	const char *cert = u == 1 || u == 3 ? "www" : "inter";
	static char ours[8200], theirs[8200];
	char cmd[512];

	snprintf(cmd, sizeof(cmd),
	         "danetool --tlsa-rr --host www.example.test --load-certificate "
	         "%s/%s.pem %s %s --hash %s",
	         tp_certdir, cert, usage_opt[u], s == 0 ? "--x509" : "",
	         m == 1 ? "sha256" : "sha512");
	tool_hex(cmd, theirs, sizeof(theirs));
	our_hex(cert, 0, u, s, m, ours, sizeof(ours));
	ck_assert_msg(strcmp(ours, theirs) == 0, "%u %u %u: ours %s, danetool %s",
	              u, s, m, ours, theirs);
}
END_TEST

START_TEST(rawkey_agrees_with_danetool)
{
	static char ours[200], theirs[200];
	char cmd[512];
	unsigned m;

	for (m = 1; m <= 2; m++) {
		snprintf(cmd, sizeof(cmd),
		         "danetool --tlsa-rr --host www.example.test --inder "
		         "--load-pubkey %s --hash %s",
		         tp_certpath("rawkey.spki"), m == 1 ? "sha256" : "sha512");
		tool_hex(cmd, theirs, sizeof(theirs));
		our_hex("rawkey", 1, 3, 1, m, ours, sizeof(ours));
		ck_assert_str_eq(ours, theirs);
	}
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("dane");
	TCase *neg = tcase_create("negative");
	TCase *tab = tcase_create("table");
	TCase *pos = tcase_create("positive");

	tcase_add_test(neg, bad_arguments);
	tcase_add_test(neg, chain_too_long);
	tcase_add_test(neg, trust_errors);
	tcase_add_test(neg, make_errors);
	tcase_add_loop_test(tab, match, 0, sizeof(rows) / sizeof(rows[0]));
	tcase_add_loop_test(tab, extra_certs, 0,
	                    sizeof(extra_rows) / sizeof(extra_rows[0]));
	tcase_add_loop_test(tab, strongest, 0,
	                    sizeof(strongest_rows) / sizeof(strongest_rows[0]));
	tcase_add_loop_test(tab, purpose, 0,
	                    sizeof(purpose_rows) / sizeof(purpose_rows[0]));
	tcase_add_test(pos, names);
	tcase_add_loop_test(pos, agrees_with_ldns_dane, 0, 4 * 2 * 3);
	tcase_add_loop_test(pos, agrees_with_danetool, 0, 4 * 2 * 2);
	tcase_add_test(pos, rawkey_agrees_with_danetool);
	tcase_set_timeout(pos, 60);
	suite_add_tcase(s, neg);
	suite_add_tcase(s, tab);
	suite_add_tcase(s, pos);
	return s;
}

int main(void)
{
	char cmd[200];
	int rv;

	tp_certs_make();
	snprintf(cmd, sizeof(cmd), "tests/tools/mkeku.sh %s", tp_certdir);
	if (system(cmd) != 0) {
		fprintf(stderr, "%s failed\n", cmd);
		tp_certs_free();
		return 1;
	}
	rv = tp_run_suite(suite());
	tp_certs_free();
	return rv;
}
