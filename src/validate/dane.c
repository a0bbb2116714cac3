/*
 * DANE matching: RFC 6698 as updated by RFC 7671, with the SMTP profile of
 * RFC 7672 section 3 as an option.  A pure function of its input; no DNS,
 * no TLS session.
 *
 * Outline of tlspool_dane_match():
 * 1. The DNS verdict comes first (RFC 7671 section 4, RFC 7672 section
 *    2.2): only a secure RRset is looked at.  Bogus, SERVFAIL, timeout and
 *    indeterminate fail closed (DNS_ERROR); insecure and secure denial say
 *    that DNS proves no DANE constraint (INSECURE, NO_RECORDS).  The
 *    records of a non-secure answer are listed as "not used".
 * 2. The peer: every certificate must parse (GnuTLS, plus our DER framing
 *    for the exact SubjectPublicKeyInfo and tbsCertificate octets), or the
 *    verdict is PEER_ERROR.  The issuer path is built from the end entity
 *    by issuer/subject name, since peers may send extra or unsorted
 *    certificates (RFC 8446 section 4.4.2); with TLSPOOL_DANE_EXTRA_CERTS
 *    untrusted certificates the peer did not send may complete it.  The
 *    identity of the end entity is mapped per docs/architecture.md,
 *    "Identities" (x509id.c).
 * 3. Usability (RFC 7671 section 4.1, RFC 6698 section 4.1): an unknown
 *    usage, selector or matching type, association data of the wrong
 *    length, or a PKIX usage without a trust store (or with
 *    TLSPOOL_DANE_NO_PKIX, RFC 7672 section 3.1.3) make a record
 *    unusable, never an error.
 * 4. Digest algorithm agility (RFC 7671 section 9): for each usage and
 *    selector, records of the strongest supported digest present are used
 *    and weaker digests are skipped; Full(0) records always count.  Only
 *    usable records take part, so an unknown matching type cannot hide a
 *    known one.
 * 5. A raw public key (RFC 7250) can only match DANE-EE(3) SPKI(1)
 *    records (RFC 7671 section 5.1); other records do not apply to it.
 * 6. Each remaining record:
 *    - DANE-EE(3), section 5.1: the end entity (or raw key) only; no name
 *      (unless TLSPOOL_DANE_EE_NAME_CHECKS asks for one), no validity
 *      dates, no chain.
 *    - DANE-TA(2), section 5.2: a certificate on the issuer path above
 *      the end entity; else, with Full(0), an anchor the peer did not
 *      send: "2 0 0" a certificate that issued a certificate on the path,
 *      "2 1 0" a bare key whose signature on a path certificate verifies
 *      (section 5.2.2).  The path below the anchor must verify (GnuTLS,
 *      with the anchor as the only trusted certificate), every
 *      certificate below the anchor must be valid at the given time (the
 *      anchor's own dates are not checked: a trust anchor is a key, as in
 *      RFC 5914), and the end entity must name a reference identifier.
 *      The end entity is never its own trust anchor: such a record is
 *      reported as a mismatch that names DANE-EE as the fix.
 *    - PKIX-EE(1), RFC 6698 section 2.1.1: the end entity; plus a PKIX
 *      path to the trust store, the extended key usage the caller's role
 *      needs (serverAuth or clientAuth, RFC 5280 section 4.2.1.12),
 *      dates and name.
 *    - PKIX-TA(0): a certificate on the issuer path above the end entity,
 *      or the trust-store root that issued the top of the path; plus the
 *      PKIX path, the path below the matched certificate, the extended
 *      key usage, dates and name.
 *    Checks run in that order, and the first failure is the record's
 *    outcome.  Every record is checked, so that the trace lists them all.
 * 7. Verdict: AUTHENTICATED when a record matched, naming the strongest
 *    (DANE-EE over DANE-TA over PKIX-EE over PKIX-TA, then input order);
 *    else NO_USABLE when no record was usable; else NO_MATCH.  The
 *    result's depth is that of the best record: the one that
 *    authenticated, else the strongest that matched and then failed.
 *
 * Steps 2 and 6 for certificate chains live in dane_chain.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dane_int.h"

static const char *const selector_names[] = {
        [TLSPOOL_DANE_SELECTOR_CERT] = "Cert",
        [TLSPOOL_DANE_SELECTOR_SPKI] = "SPKI",
};
static const char *const mtype_names[] = {
        [TLSPOOL_DANE_MTYPE_FULL] = "Full",
        [TLSPOOL_DANE_MTYPE_SHA2_256] = "SHA2-256",
        [TLSPOOL_DANE_MTYPE_SHA2_512] = "SHA2-512",
};

const char *tlspool_dane_usage_name(uint8_t usage)
{
	static _Thread_local char buf[16];
	static const char *const names[] = {
	        [TLSPOOL_DANE_USAGE_PKIX_TA] = "PKIX-TA",
	        [TLSPOOL_DANE_USAGE_PKIX_EE] = "PKIX-EE",
	        [TLSPOOL_DANE_USAGE_DANE_TA] = "DANE-TA",
	        [TLSPOOL_DANE_USAGE_DANE_EE] = "DANE-EE",
	};

	if (usage <= TLSPOOL_DANE_USAGE_DANE_EE)
		return names[usage];
	snprintf(buf, sizeof(buf), "usage-%u", (unsigned)usage);
	return buf;
}

const char *tlspool_dane_verdict_name(tlspool_dane_verdict v)
{
	switch (v) {
	case TLSPOOL_DANE_UNCHECKED:
		return "unchecked";
	case TLSPOOL_DANE_AUTHENTICATED:
		return "authenticated";
	case TLSPOOL_DANE_NO_MATCH:
		return "no-match";
	case TLSPOOL_DANE_NO_USABLE:
		return "no-usable-records";
	case TLSPOOL_DANE_NO_RECORDS:
		return "no-records";
	case TLSPOOL_DANE_INSECURE:
		return "insecure";
	case TLSPOOL_DANE_DNS_ERROR:
		return "dns-error";
	case TLSPOOL_DANE_PEER_ERROR:
		return "peer-error";
	}
	return "unknown";
}

const char *tlspool_dane_outcome_name(tlspool_dane_outcome o)
{
	switch (o) {
	case TLSPOOL_DANE_REC_UNCHECKED:
		return "unchecked";
	case TLSPOOL_DANE_REC_MATCHED:
		return "matched";
	case TLSPOOL_DANE_REC_NO_MATCH:
		return "no-match";
	case TLSPOOL_DANE_REC_UNUSABLE:
		return "unusable";
	case TLSPOOL_DANE_REC_AGILITY:
		return "skipped-agility";
	case TLSPOOL_DANE_REC_NOT_APPLICABLE:
		return "not-applicable";
	case TLSPOOL_DANE_REC_NAME_MISMATCH:
		return "name-mismatch";
	case TLSPOOL_DANE_REC_CHAIN_FAILED:
		return "chain-failed";
	case TLSPOOL_DANE_REC_EXPIRED:
		return "expired";
	case TLSPOOL_DANE_REC_PKIX_FAILED:
		return "pkix-failed";
	case TLSPOOL_DANE_REC_NOT_USED:
		return "not-used";
	case TLSPOOL_DANE_REC_WRONG_PURPOSE:
		return "wrong-purpose";
	}
	return "unknown";
}

void tp_dane_say(tlspool_dane_step *st, tlspool_dane_outcome o, const char *fmt,
                 ...)
{
	va_list ap;

	st->outcome = o;
	va_start(ap, fmt);
	vsnprintf(st->reason, sizeof(st->reason), fmt, ap);
	va_end(ap);
}

const char *tp_dane_params(const tlspool_tlsa *t)
{
	static _Thread_local char buf[48];

	snprintf(buf, sizeof(buf), "%s %s %s",
	         tlspool_dane_usage_name(t->usage),
	         selector_names[t->selector & 1], mtype_names[t->mtype % 3]);
	return buf;
}

/* Steps 3-5: is the record usable, and does it apply?  0 if it goes on
 * to matching, else its outcome is set. */
static int usable(const struct tp_dane_ctx *x, const tlspool_tlsa *t,
                  tlspool_dane_step *st)
{
	if (t->usage > TLSPOOL_DANE_USAGE_DANE_EE) {
		tp_dane_say(st, TLSPOOL_DANE_REC_UNUSABLE, "unknown usage %u",
		            (unsigned)t->usage);
	} else if (t->selector > TLSPOOL_DANE_SELECTOR_SPKI) {
		tp_dane_say(st, TLSPOOL_DANE_REC_UNUSABLE,
		            "unknown selector %u", (unsigned)t->selector);
	} else if (t->mtype > TLSPOOL_DANE_MTYPE_SHA2_512) {
		tp_dane_say(st, TLSPOOL_DANE_REC_UNUSABLE,
		            "unknown matching type %u", (unsigned)t->mtype);
	} else if (t->data == NULL || t->len == 0 ||
	           (t->mtype == TLSPOOL_DANE_MTYPE_SHA2_256 && t->len != 32) ||
	           (t->mtype == TLSPOOL_DANE_MTYPE_SHA2_512 && t->len != 64)) {
		tp_dane_say(st, TLSPOOL_DANE_REC_UNUSABLE,
		            "malformed: %zu octets of %s association data",
		            t->len, mtype_names[t->mtype]);
	} else if (tp_dane_is_pkix(t->usage) &&
	           (x->in->flags & TLSPOOL_DANE_NO_PKIX)) {
		tp_dane_say(st, TLSPOOL_DANE_REC_UNUSABLE,
		            "%s is not used in this profile (RFC 7672 section "
		            "3.1.3)",
		            tlspool_dane_usage_name(t->usage));
	} else if (tp_dane_is_pkix(t->usage) && x->in->trust == NULL) {
		tp_dane_say(st, TLSPOOL_DANE_REC_UNUSABLE,
		            "%s needs a trust store, and none is configured",
		            tlspool_dane_usage_name(t->usage));
	} else {
		return 0;
	}
	return -1;
}

/* Step 4 over all records that passed step 3 (outcome still UNCHECKED). */
static void agility(const tlspool_dane_input *in, tlspool_dane_result *res)
{
	uint8_t best[TLSPOOL_DANE_USAGE_DANE_EE + 1]
	            [TLSPOOL_DANE_SELECTOR_SPKI + 1] = {{0}};
	size_t i;

	for (i = 0; i < in->ntlsa; i++) {
		const tlspool_tlsa *t = &in->tlsa[i];

		if (res->steps[i].outcome == TLSPOOL_DANE_REC_UNCHECKED &&
		    t->mtype > best[t->usage][t->selector])
			best[t->usage][t->selector] = t->mtype;
	}
	for (i = 0; i < in->ntlsa; i++) {
		const tlspool_tlsa *t = &in->tlsa[i];

		/* The supported digests rank SHA2-512 above SHA2-256. */
		if (res->steps[i].outcome == TLSPOOL_DANE_REC_UNCHECKED &&
		    t->mtype != TLSPOOL_DANE_MTYPE_FULL &&
		    t->mtype < best[t->usage][t->selector])
			tp_dane_say(&res->steps[i], TLSPOOL_DANE_REC_AGILITY,
			            "%s skipped: %s records exist for %s %s "
			            "(RFC 7671 "
			            "section 9)",
			            mtype_names[t->mtype],
			            mtype_names[best[t->usage][t->selector]],
			            tlspool_dane_usage_name(t->usage),
			            selector_names[t->selector]);
	}
}

static int check_input(const tlspool_dane_input *in, char *err, size_t errlen)
{
	size_t i;

	if ((in->nchain > 0 && in->chain == NULL) ||
	    (in->nchain == 0 &&
	     (in->rawkey.data == NULL || in->rawkey.len == 0))) {
		tp_err(err, errlen,
		       "no certificate chain and no raw public key");
		return -1;
	}
	if (in->ntlsa > 0 && in->tlsa == NULL) {
		tp_err(err, errlen, "%zu records but no array", in->ntlsa);
		return -1;
	}
	if (in->nnames > 0 && in->names == NULL) {
		tp_err(err, errlen, "%zu names but no array", in->nnames);
		return -1;
	}
	if (in->nextra > 0 && in->extra == NULL) {
		tp_err(err, errlen, "%zu extra certificates but no array",
		       in->nextra);
		return -1;
	}
	if (in->purpose < TLSPOOL_DANE_PURPOSE_ANY ||
	    in->purpose > TLSPOOL_DANE_PURPOSE_CLIENT) {
		tp_err(err, errlen,
		       "purpose %d is not a TLSPOOL_DANE_PURPOSE_*",
		       in->purpose);
		return -1;
	}
	for (i = 0; i < in->nnames; i++)
		if (in->names[i] == NULL) {
			tp_err(err, errlen, "reference name %zu is NULL", i);
			return -1;
		}
	return 0;
}

/* Step 1: the verdict of a non-secure or empty answer, else UNCHECKED. */
static tlspool_dane_verdict dns_verdict(const tlspool_dane_input *in,
                                        tlspool_dane_result *res)
{
	const char *d =
	        in->dns_detail && in->dns_detail[0] ? in->dns_detail : NULL;

	switch (in->dns) {
	case TLSPOOL_DNS_SECURE:
		if (in->ntlsa > 0)
			return TLSPOOL_DANE_UNCHECKED;
		snprintf(res->reason, sizeof(res->reason),
		         "the secure answer holds no TLSA records");
		return TLSPOOL_DANE_NO_RECORDS;
	case TLSPOOL_DNS_SECURE_NODATA:
	case TLSPOOL_DNS_SECURE_NXDOMAIN:
		snprintf(res->reason, sizeof(res->reason),
		         "DNSSEC proves that there are no TLSA records (%s)",
		         tlspool_dns_verdict_name(in->dns));
		return TLSPOOL_DANE_NO_RECORDS;
	case TLSPOOL_DNS_INSECURE:
		snprintf(res->reason, sizeof(res->reason),
		         "the TLSA records are in an unsigned zone and prove "
		         "nothing");
		return TLSPOOL_DANE_INSECURE;
	default:
		snprintf(res->reason, sizeof(res->reason),
		         "DNS lookup failed (%s)%s%s: failing closed",
		         tlspool_dns_verdict_name(in->dns), d ? ": " : "",
		         d ? d : "");
		return TLSPOOL_DANE_DNS_ERROR;
	}
}

/* The result with one step per record, and the matcher's context.  0,
 * or -1 for lack of memory (nothing is left allocated). */
static int match_new(const tlspool_dane_input *in, struct tp_dane_ctx **xp,
                     tlspool_dane_result **resp)
{
	tlspool_dane_result *res = calloc(1, sizeof(*res));
	struct tp_dane_ctx *x = calloc(1, sizeof(*x));
	size_t i;

	if (res == NULL || x == NULL ||
	    (in->ntlsa > 0 &&
	     (res->steps = calloc(in->ntlsa, sizeof(*res->steps))) == NULL)) {
		free(x);
		tlspool_dane_result_free(res);
		return -1;
	}
	x->in = in;
	x->res = res;
	res->dns = in->dns;
	res->matched = res->best = res->depth = -1;
	res->nsteps = in->ntlsa;
	for (i = 0; i < in->ntlsa; i++) {
		res->steps[i].index = i;
		res->steps[i].usage = in->tlsa[i].usage;
		res->steps[i].selector = in->tlsa[i].selector;
		res->steps[i].mtype = in->tlsa[i].mtype;
		res->steps[i].depth = -1;
		res->steps[i].chain_index = -1;
	}
	*xp = x;
	*resp = res;
	return 0;
}

/* Steps 3-5 over every record: the number of usable ones. */
static size_t usable_all(struct tp_dane_ctx *x)
{
	const tlspool_dane_input *in = x->in;
	tlspool_dane_result *res = x->res;
	size_t i, nusable = 0;

	for (i = 0; i < in->ntlsa; i++)
		if (usable(x, &in->tlsa[i], &res->steps[i]) == 0)
			nusable++;
	agility(in, res);
	if (x->n > 0)
		return nusable;
	for (i = 0; i < in->ntlsa; i++)
		if (res->steps[i].outcome == TLSPOOL_DANE_REC_UNCHECKED &&
		    (in->tlsa[i].usage != TLSPOOL_DANE_USAGE_DANE_EE ||
		     in->tlsa[i].selector != TLSPOOL_DANE_SELECTOR_SPKI))
			tp_dane_say(&res->steps[i],
			            TLSPOOL_DANE_REC_NOT_APPLICABLE,
			            "%s cannot match a raw public key, only "
			            "DANE-EE "
			            "SPKI can (RFC 7671 section 5.1)",
			            tp_dane_params(&in->tlsa[i]));
	return nusable;
}

/* A raw public key against a DANE-EE SPKI record. */
static void match_rawkey(struct tp_dane_ctx *x, const tlspool_tlsa *t,
                         tlspool_dane_step *st)
{
	if (!tp_dane_assoc_matches(t, &x->in->rawkey)) {
		tp_dane_say(st, TLSPOOL_DANE_REC_NO_MATCH,
		            "%s: %s differs from the raw public key's",
		            tp_dane_params(t),
		            t->mtype == TLSPOOL_DANE_MTYPE_FULL ? "the data"
		                                                : "the digest");
		return;
	}
	st->depth = 0;
	if (x->in->flags & TLSPOOL_DANE_EE_NAME_CHECKS)
		tp_dane_say(st, TLSPOOL_DANE_REC_NAME_MISMATCH,
		            "%s matches the raw public key, but DANE-EE name "
		            "checks were asked for and a raw key names nothing",
		            tp_dane_params(t));
	else
		tp_dane_say(st, TLSPOOL_DANE_REC_MATCHED,
		            "%s matches the raw public key", tp_dane_params(t));
}

/* Is record i a better choice than record b (-1: none yet)?  The
 * stronger usage, then the first in input order. */
static int better(const tlspool_dane_input *in, size_t i, int b)
{
	return b < 0 || tp_dane_strength(in->tlsa[i].usage) >
	                        tp_dane_strength(in->tlsa[b].usage);
}

/* Step 6 over the records still unchecked: every one, so that the trace
 * is complete; the strongest match decides, and the best record gives
 * the depth. */
static void match_all(struct tp_dane_ctx *x)
{
	const tlspool_dane_input *in = x->in;
	tlspool_dane_result *res = x->res;
	int failed = -1; /* the best that matched and then failed */
	size_t i;

	for (i = 0; i < in->ntlsa; i++) {
		tlspool_dane_step *st = &res->steps[i];
		const tlspool_tlsa *t = &in->tlsa[i];

		if (st->outcome != TLSPOOL_DANE_REC_UNCHECKED)
			continue;
		if (x->n > 0)
			tp_dane_match_chain(x, t, st);
		else
			match_rawkey(x, t, st);
		if (st->outcome == TLSPOOL_DANE_REC_MATCHED) {
			if (better(in, i, res->matched))
				res->matched = (int)i;
		} else if (st->depth >= 0 && better(in, i, failed)) {
			failed = (int)i;
		}
	}
	res->best = res->matched >= 0 ? res->matched : failed;
	res->depth = res->best >= 0 ? res->steps[res->best].depth : -1;
}

/* Step 7: the verdict over the records. */
static void verdict(const tlspool_dane_input *in, tlspool_dane_result *res,
                    size_t nusable)
{
	if (res->matched >= 0) {
		const tlspool_dane_step *st = &res->steps[res->matched];

		res->verdict = TLSPOOL_DANE_AUTHENTICATED;
		/* DANE-EE checks no name: the TLSA base name is the one */
		if (st->usage == TLSPOOL_DANE_USAGE_DANE_EE &&
		    !(in->flags & TLSPOOL_DANE_EE_NAME_CHECKS))
			snprintf(res->name, sizeof(res->name), "%s",
			         in->nnames ? in->names[0] : "");
		snprintf(res->reason, sizeof(res->reason),
		         "record %d (%u %u %u, %s) authenticates the peer",
		         res->matched + 1, st->usage, st->selector, st->mtype,
		         tlspool_dane_usage_name(st->usage));
	} else if (nusable == 0) {
		res->verdict = TLSPOOL_DANE_NO_USABLE;
		res->name[0] = '\0';
		snprintf(res->reason, sizeof(res->reason),
		         "none of the %zu records is usable (RFC 7671 section "
		         "4.1): DANE does not apply",
		         in->ntlsa);
	} else {
		res->verdict = TLSPOOL_DANE_NO_MATCH;
		res->name[0] = '\0';
		if (res->best >= 0) /* what stopped the best record */
			snprintf(res->reason, sizeof(res->reason),
			         "none of the %zu usable records authenticates "
			         "the peer; record %d: %.140s",
			         nusable, res->best,
			         res->steps[res->best].reason);
		else
			snprintf(res->reason, sizeof(res->reason),
			         "none of the %zu usable records authenticates "
			         "the peer",
			         nusable);
	}
}

/* Steps 1 and 2 decide alone when the answer is not secure or the peer
 * does not parse: 1 when they did (res->verdict set). */
static int dns_or_peer_decides(const struct tp_dane_ctx *x, int peer_ok)
{
	const tlspool_dane_input *in = x->in;
	tlspool_dane_result *res = x->res;
	tlspool_dane_verdict dv;
	size_t i;

	dv = dns_verdict(in, res);
	if (dv != TLSPOOL_DANE_UNCHECKED) {
		for (i = 0; i < in->ntlsa; i++)
			tp_dane_say(&res->steps[i], TLSPOOL_DANE_REC_NOT_USED,
			            "not used: the answer is %s",
			            tlspool_dns_verdict_name(in->dns));
		res->verdict = dv;
		return 1;
	}
	if (!peer_ok) {
		for (i = 0; i < in->ntlsa; i++)
			tp_dane_say(&res->steps[i], TLSPOOL_DANE_REC_UNCHECKED,
			            "not checked: %s", res->reason);
		res->verdict = TLSPOOL_DANE_PEER_ERROR;
		return 1;
	}
	return 0;
}

int tlspool_dane_match(const tlspool_dane_input *in, tlspool_dane_result **out,
                       char *err, size_t errlen)
{
	struct tp_dane_ctx *x = NULL;
	tlspool_dane_result *res = NULL;
	int peer_ok;

	if (out != NULL)
		*out = NULL;
	if (in == NULL || out == NULL) {
		tp_err(err, errlen, "NULL argument");
		errno = EINVAL;
		return -1;
	}
	if (check_input(in, err, errlen) != 0) {
		errno = EINVAL;
		return -1;
	}
	if (match_new(in, &x, &res) != 0) {
		tp_err(err, errlen, "out of memory");
		errno = ENOMEM;
		return -1;
	}
	/* 2 before 1, so that the identity is there for a PKIX fallback. */
	peer_ok = tp_dane_peer_parse(x) == 0;
	if (peer_ok && x->n > 0 &&
	    tp_x509_identity(x->c[0].crt, res->identity,
	                     sizeof(res->identity)) < 0)
		res->identity[0] = '\0';
	if (!dns_or_peer_decides(x, peer_ok)) {
		size_t nusable = usable_all(x);

		match_all(x);
		verdict(in, res, nusable);
	}
	tp_dane_peer_free(x);
	free(x);
	*out = res;
	return 0;
}

void tlspool_dane_result_free(tlspool_dane_result *res)
{
	if (res == NULL)
		return;
	free(res->steps);
	free(res);
}
