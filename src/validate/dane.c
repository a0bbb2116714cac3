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
 *    certificates (RFC 8446 section 4.4.2).  The identity of the end
 *    entity is mapped per DESIGN section 3 (x509id.c).
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
 *    - DANE-EE(3), section 5.1: the end entity (or raw key) only; no name,
 *      no validity dates, no chain.
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
 *      path to the trust store, dates and name.
 *    - PKIX-TA(0): a certificate on the issuer path above the end entity,
 *      or the trust-store root that issued the top of the path; plus the
 *      PKIX path, the path below the matched certificate, dates and name.
 *    Checks run in that order, and the first failure is the record's
 *    outcome.
 * 7. Verdict: AUTHENTICATED when a record matched; else NO_USABLE when no
 *    record was usable; else NO_MATCH.
 *
 * GnuTLS's own time checks are turned off and the dates checked here,
 * against the caller's time, so that the result is a function of the
 * input.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "internal.h"

#define VERIFY_FLAGS                                                           \
	(GNUTLS_VERIFY_DISABLE_TIME_CHECKS |                                   \
	 GNUTLS_VERIFY_DISABLE_TRUSTED_TIME_CHECKS)

struct cert {
	gnutls_x509_crt_t crt;
	tlspool_span der, tbs, spki;
};

struct ctx {
	const tlspool_dane_input *in;
	tlspool_dane_result *res;
	struct cert c[TP_DANE_MAX_CHAIN];
	size_t n;
	size_t path[TP_DANE_MAX_CHAIN]; /* chain indices, path[0] = 0 */
	size_t npath;
};

static const char *const selector_names[] = {"Cert", "SPKI"};
static const char *const mtype_names[] = {"Full", "SHA2-256", "SHA2-512"};

const char *tlspool_dane_usage_name(uint8_t usage)
{
	static _Thread_local char buf[16];
	static const char *const names[] = {"PKIX-TA", "PKIX-EE", "DANE-TA",
	                                    "DANE-EE"};

	if (usage < 4)
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
	}
	return "unknown";
}

static void say(tlspool_dane_step *st, tlspool_dane_outcome o, const char *fmt,
                ...) __attribute__((format(printf, 3, 4)));
static void say(tlspool_dane_step *st, tlspool_dane_outcome o, const char *fmt,
                ...)
{
	va_list ap;

	st->outcome = o;
	va_start(ap, fmt);
	vsnprintf(st->reason, sizeof(st->reason), fmt, ap);
	va_end(ap);
}

/* "DANE-TA Cert SHA2-256", for reasons. */
static const char *params(const tlspool_tlsa *t)
{
	static _Thread_local char buf[48];

	snprintf(buf, sizeof(buf), "%s %s %s",
	         tlspool_dane_usage_name(t->usage),
	         selector_names[t->selector & 1], mtype_names[t->mtype % 3]);
	return buf;
}

/* --- 2. the peer ---------------------------------------------------------- */

static void peer_free(struct ctx *x)
{
	size_t i;

	for (i = 0; i < x->n; i++)
		gnutls_x509_crt_deinit(x->c[i].crt);
	x->n = 0;
}

/* Parse the chain; 0, or -1 with the reason in x->res->reason. */
static int peer_parse(struct ctx *x)
{
	const tlspool_dane_input *in = x->in;
	gnutls_pubkey_t key = NULL;
	gnutls_datum_t d;
	size_t i, j, cur;
	int rv = -1;

	if (in->nchain == 0) {
		d.data = (unsigned char *)in->rawkey.data;
		d.size = (unsigned)in->rawkey.len;
		if (in->rawkey.len > 0xffffff ||
		    tp_der_one_sequence(in->rawkey.data, in->rawkey.len) != 0 ||
		    gnutls_pubkey_init(&key) < 0 ||
		    gnutls_pubkey_import(key, &d, GNUTLS_X509_FMT_DER) < 0) {
			snprintf(x->res->reason, sizeof(x->res->reason),
			         "the peer's raw public key does not parse");
			goto done;
		}
		rv = 0;
		goto done;
	}
	if (in->nchain > TP_DANE_MAX_CHAIN) {
		snprintf(x->res->reason, sizeof(x->res->reason),
		         "the peer sent %zu certificates, more than %d",
		         in->nchain, TP_DANE_MAX_CHAIN);
		goto done;
	}
	for (i = 0; i < in->nchain; i++) {
		struct cert *c = &x->c[i];

		c->der = in->chain[i];
		d.data = (unsigned char *)c->der.data;
		d.size = (unsigned)c->der.len;
		if (c->der.data == NULL || c->der.len > 0xffffff ||
		    gnutls_x509_crt_init(&c->crt) < 0) {
			snprintf(x->res->reason, sizeof(x->res->reason),
			         "certificate %zu from the peer is empty", i);
			goto done;
		}
		x->n = i + 1;
		if (gnutls_x509_crt_import(c->crt, &d, GNUTLS_X509_FMT_DER) <
		            0 ||
		    tp_der_cert_parts(c->der.data, c->der.len, &c->tbs,
		                      &c->spki) != 0) {
			snprintf(x->res->reason, sizeof(x->res->reason),
			         "certificate %zu from the peer does not parse",
			         i);
			goto done;
		}
	}
	/* The issuer path: from the end entity, the first certificate whose
	 * subject is the current one's issuer, until a self-issued one. */
	x->path[0] = 0;
	x->npath = 1;
	for (cur = 0;
	     !gnutls_x509_crt_check_issuer(x->c[cur].crt, x->c[cur].crt);) {
		for (j = 1; j < x->n; j++) {
			size_t k;

			for (k = 0; k < x->npath && x->path[k] != j; k++)
				;
			if (k == x->npath &&
			    gnutls_x509_crt_check_issuer(x->c[cur].crt,
			                                 x->c[j].crt))
				break;
		}
		if (j == x->n)
			break;
		x->path[x->npath++] = cur = j;
	}
	rv = 0;
done:
	if (key != NULL)
		gnutls_pubkey_deinit(key);
	return rv;
}

/* --- matching ---------------------------------------------------------------
 */

/* Does the record's association data match these selected bytes? */
static int assoc_matches(const tlspool_tlsa *t, const tlspool_span *sel)
{
	unsigned char md[64];
	int n;

	if (t->mtype == 0)
		return t->len == sel->len &&
		       memcmp(t->data, sel->data, t->len) == 0;
	n = tp_tlsa_assoc(sel->data, sel->len, t->mtype, md, sizeof(md));
	return n > 0 && (size_t)n == t->len && memcmp(md, t->data, t->len) == 0;
}

static int cert_matches(const tlspool_tlsa *t, const struct cert *c)
{
	return assoc_matches(t, t->selector == 0 ? &c->der : &c->spki);
}

static int on_path(const struct ctx *x, size_t idx, size_t *pos)
{
	size_t p;

	for (p = 0; p < x->npath; p++)
		if (x->path[p] == idx) {
			*pos = p;
			return 1;
		}
	return 0;
}

/* A GnuTLS verification's outcome: 0, or -1 with the reason in words. */
static int verify_result(int rv, unsigned status, char *why, size_t whylen)
{
	gnutls_datum_t out = {NULL, 0};

	if (rv < 0) {
		snprintf(why, whylen, "%s", gnutls_strerror(rv));
		return -1;
	}
	if (status == 0)
		return 0;
	if (gnutls_certificate_verification_status_print(
	            status, GNUTLS_CRT_X509, &out, 0) == 0) {
		snprintf(why, whylen, "%s", out.data);
		gnutls_free(out.data);
	} else {
		snprintf(why, whylen, "status 0x%x", status);
	}
	return -1;
}

/* Verify path[0..count-1] with anchor as the one trusted certificate. */
static int verify_below(const struct ctx *x, size_t count,
                        gnutls_x509_crt_t anchor, char *why, size_t whylen)
{
	gnutls_x509_crt_t list[TP_DANE_MAX_CHAIN];
	unsigned status = 0;
	size_t i;
	int rv;

	if (count == 0)
		return 0;
	for (i = 0; i < count; i++)
		list[i] = x->c[x->path[i]].crt;
	rv = gnutls_x509_crt_list_verify(list, (unsigned)count, &anchor, 1,
	                                 NULL, 0, VERIFY_FLAGS, &status);
	return verify_result(rv, status, why, whylen);
}

/* The PKIX path to the trust store (RFC 5280 section 6), dates aside. */
static int pkix_ok(const struct ctx *x, char *why, size_t whylen)
{
	gnutls_x509_crt_t list[TP_DANE_MAX_CHAIN];
	unsigned status = 0;
	size_t i;
	int rv;

	for (i = 0; i < x->npath; i++)
		list[i] = x->c[x->path[i]].crt;
	rv = gnutls_x509_trust_list_verify_crt2(x->in->trust->tl, list,
	                                        (unsigned)x->npath, NULL, 0,
	                                        VERIFY_FLAGS, &status, NULL);
	return verify_result(rv, status, why, whylen);
}

/* Are path[0..count-1] valid at the input's time?  On failure, *bad is the
 * chain index of the first that is not. */
static int dates_ok(const struct ctx *x, size_t count, size_t *bad,
                    int *expired)
{
	size_t i;

	for (i = 0; i < count; i++) {
		gnutls_x509_crt_t crt = x->c[x->path[i]].crt;
		time_t from = gnutls_x509_crt_get_activation_time(crt);
		time_t until = gnutls_x509_crt_get_expiration_time(crt);

		/* (time_t)-1 as expiration is GnuTLS's "99991231235959Z",
		 * no well-defined expiration (RFC 5280 section 4.1.2.5). */
		if (from == (time_t)-1 || x->in->now < from ||
		    (until != (time_t)-1 && x->in->now > until)) {
			*bad = x->path[i];
			*expired = from != (time_t)-1 && x->in->now >= from;
			return 0;
		}
	}
	return 1;
}

/* Does the end entity name one of the reference identifiers? */
static int name_ok(struct ctx *x)
{
	size_t i;

	for (i = 0; i < x->in->nnames; i++)
		if (tp_x509_names(x->c[0].crt, x->in->names[i]) == 1) {
			snprintf(x->res->name, sizeof(x->res->name), "%s",
			         x->in->names[i]);
			return 1;
		}
	return 0;
}

/* Does the bare key (a "2 1 0" anchor) verify c's signature? */
static int signed_by(const struct cert *c, gnutls_pubkey_t key)
{
	unsigned char sig[2048];
	size_t siglen = sizeof(sig);
	gnutls_datum_t tbs = {(unsigned char *)c->tbs.data,
	                      (unsigned)c->tbs.len};
	gnutls_datum_t sd;
	int algo = gnutls_x509_crt_get_signature_algorithm(c->crt);

	if (algo < 0 ||
	    gnutls_x509_crt_get_signature(c->crt, (char *)sig, &siglen) < 0)
		return 0;
	sd.data = sig;
	sd.size = (unsigned)siglen;
	return gnutls_pubkey_verify_data2(key, (gnutls_sign_algorithm_t)algo, 0,
	                                  &tbs, &sd) >= 0;
}

/* The checks after a match: chain to the anchor, PKIX, dates, name.
 * nverify path certificates must verify to anchor (if not NULL), and
 * ndates of them must be valid now (the PKIX usages: all but the root). */
static void finish(struct ctx *x, const tlspool_tlsa *t, tlspool_dane_step *st,
                   size_t nverify, gnutls_x509_crt_t anchor, size_t ndates,
                   const char *what)
{
	char why[160];
	size_t bad = 0, count = ndates;
	int expired = 0;

	if (anchor != NULL &&
	    verify_below(x, nverify, anchor, why, sizeof(why)) != 0) {
		say(st, TLSPOOL_DANE_REC_CHAIN_FAILED,
		    "%s matches %s, but the chain does not verify to it: %s",
		    params(t), what, why);
		return;
	}
	if (t->usage <= 1) {
		if (pkix_ok(x, why, sizeof(why)) != 0) {
			say(st, TLSPOOL_DANE_REC_PKIX_FAILED,
			    "%s matches %s, but PKIX validation failed: %s",
			    params(t), what, why);
			return;
		}
		/* PKIX: every certificate sent on the path, except a
		 * self-signed top, which is (a copy of) the store's root. */
		count = x->npath;
		if (count > 1 &&
		    gnutls_x509_crt_check_issuer(x->c[x->path[count - 1]].crt,
		                                 x->c[x->path[count - 1]].crt))
			count--;
	}
	if (!dates_ok(x, count, &bad, &expired)) {
		say(st, TLSPOOL_DANE_REC_EXPIRED,
		    "%s matches %s, but certificate %zu %s", params(t), what,
		    bad, expired ? "has expired" : "is not yet valid");
		return;
	}
	if (!name_ok(x)) {
		say(st, TLSPOOL_DANE_REC_NAME_MISMATCH,
		    "%s matches %s, but the end entity names %s%s%s, not %s%s",
		    params(t), what, x->res->identity[0] ? "\"" : "",
		    x->res->identity[0] ? x->res->identity : "no usable name",
		    x->res->identity[0] ? "\"" : "",
		    x->in->nnames ? x->in->names[0]
		                  : "(no reference name given)",
		    x->in->nnames > 1 ? " or the other reference names" : "");
		return;
	}
	say(st, TLSPOOL_DANE_REC_MATCHED, "%s matches %s; %s", params(t), what,
	    t->usage <= 1 ? "PKIX path, dates and name verified"
	                  : "chain, dates and name verified");
}

/* Report a record that matched no eligible certificate, saying which
 * certificate it does match if any (a common deployment mistake). */
static void no_match(struct ctx *x, const tlspool_tlsa *t,
                     tlspool_dane_step *st)
{
	size_t i, pos;

	for (i = 0; i < x->n; i++) {
		if (!cert_matches(t, &x->c[i]))
			continue;
		if (i == 0 && (t->usage == 0 || t->usage == 2)) {
			say(st, TLSPOOL_DANE_REC_NO_MATCH,
			    "%s matches the end entity, which cannot be its "
			    "own "
			    "trust anchor (RFC 7671 section 5.2; publish usage "
			    "3 "
			    "DANE-EE)",
			    params(t));
		} else if (i > 0 && (t->usage == 1 || t->usage == 3)) {
			say(st, TLSPOOL_DANE_REC_NO_MATCH,
			    "%s matches certificate %zu, but end-entity usages "
			    "match only the end entity",
			    params(t), i);
		} else if (!on_path(x, i, &pos)) {
			say(st, TLSPOOL_DANE_REC_NO_MATCH,
			    "%s matches certificate %zu, which is not on the "
			    "end "
			    "entity's issuer path",
			    params(t), i);
		} else {
			continue;
		}
		return;
	}
	say(st, TLSPOOL_DANE_REC_NO_MATCH, "%s: %s differs from %s", params(t),
	    t->mtype == 0 ? "the data" : "the digest",
	    t->usage == 1 || t->usage == 3 ? "the end entity's"
	                                   : "every issuer certificate's");
}

/* DANE-TA(2) "2 0 0" and "2 1 0": an anchor the peer did not send. */
static int unsent_anchor(struct ctx *x, const tlspool_tlsa *t,
                         tlspool_dane_step *st)
{
	gnutls_datum_t d = {(unsigned char *)t->data, (unsigned)t->len};
	gnutls_x509_crt_t ta = NULL;
	gnutls_pubkey_t key = NULL;
	size_t p;
	int found = 0;

	if (t->usage != 2 || t->mtype != 0)
		return 0;
	st->depth = (int)x->n;
	if (t->selector == 0) {
		if (gnutls_x509_crt_init(&ta) < 0 ||
		    gnutls_x509_crt_import(ta, &d, GNUTLS_X509_FMT_DER) < 0)
			goto done;
		for (p = 0; p < x->npath; p++)
			if (gnutls_x509_crt_check_issuer(x->c[x->path[p]].crt,
			                                 ta)) {
				found = 1;
				finish(x, t, st, p + 1, ta, p + 1,
				       "a trust anchor the peer did not send");
				break;
			}
	} else {
		if (tp_der_one_sequence(t->data, t->len) != 0 ||
		    gnutls_pubkey_init(&key) < 0 ||
		    gnutls_pubkey_import(key, &d, GNUTLS_X509_FMT_DER) < 0)
			goto done;
		/* The key signed a path certificate; the path below that
		 * one must verify to it, with it as the trusted one. */
		for (p = 0; p < x->npath; p++)
			if (signed_by(&x->c[x->path[p]], key)) {
				/* Below the signed certificate, the path must
				 * verify to it; its own dates count too, since
				 * the anchor is the key, not the certificate.
				 */
				found = 1;
				finish(x, t, st, p,
				       p > 0 ? x->c[x->path[p]].crt : NULL,
				       p + 1,
				       "a bare trust-anchor key the peer did "
				       "not send");
				break;
			}
	}
done:
	if (!found)
		st->depth = -1;
	if (ta != NULL)
		gnutls_x509_crt_deinit(ta);
	if (key != NULL)
		gnutls_pubkey_deinit(key);
	return found;
}

/* PKIX-TA(0): the trust-store root above the top of the path. */
static int store_root(struct ctx *x, const tlspool_tlsa *t,
                      tlspool_dane_step *st)
{
	gnutls_x509_crt_t root = NULL;
	gnutls_datum_t d = {NULL, 0};
	struct cert rc;
	int found = 0;

	if (gnutls_x509_trust_list_get_issuer(x->in->trust->tl,
	                                      x->c[x->path[x->npath - 1]].crt,
	                                      &root, GNUTLS_TL_GET_COPY) < 0)
		return 0;
	if (gnutls_x509_crt_export2(root, GNUTLS_X509_FMT_DER, &d) < 0)
		goto done;
	memset(&rc, 0, sizeof(rc));
	rc.der.data = d.data;
	rc.der.len = d.size;
	if (tp_der_cert_parts(d.data, d.size, &rc.tbs, &rc.spki) != 0 ||
	    !cert_matches(t, &rc))
		goto done;
	/* A self-signed top that is itself the store root was tried as
	 * part of the path already. */
	if (d.size == x->c[x->path[x->npath - 1]].der.len &&
	    memcmp(d.data, x->c[x->path[x->npath - 1]].der.data, d.size) == 0)
		goto done;
	found = 1;
	st->depth = (int)x->n;
	finish(x, t, st, x->npath, root, x->npath, "the trust-store root");
done:
	gnutls_free(d.data);
	gnutls_x509_crt_deinit(root);
	return found;
}

/* Step 6 for one usable record against a certificate chain. */
static void match_chain(struct ctx *x, const tlspool_tlsa *t,
                        tlspool_dane_step *st)
{
	char what[64];
	size_t p;

	if (t->usage == 1 || t->usage == 3) {
		if (!cert_matches(t, &x->c[0])) {
			no_match(x, t, st);
			return;
		}
		st->depth = 0;
		if (t->usage == 3)
			say(st, TLSPOOL_DANE_REC_MATCHED,
			    "%s matches the end entity (names and dates are "
			    "not "
			    "checked, RFC 7671 section 5.1)",
			    params(t));
		else
			finish(x, t, st, 0, NULL, 1, "the end entity");
		return;
	}
	/* Usages 0 and 2: an issuer on the path, nearest first. */
	for (p = 1; p < x->npath; p++)
		if (cert_matches(t, &x->c[x->path[p]])) {
			st->depth = (int)x->path[p];
			snprintf(what, sizeof(what), "certificate %zu",
			         x->path[p]);
			finish(x, t, st, p, x->c[x->path[p]].crt, p, what);
			return;
		}
	if (cert_matches(t, &x->c[0])) {
		no_match(x, t, st);
		return;
	}
	if (unsent_anchor(x, t, st))
		return;
	if (t->usage == 0 && store_root(x, t, st))
		return;
	no_match(x, t, st);
}

/* Steps 3-5: is the record usable, and does it apply?  0 if it goes on
 * to matching, else its outcome is set. */
static int usable(const struct ctx *x, const tlspool_tlsa *t,
                  tlspool_dane_step *st)
{
	if (t->usage > 3) {
		say(st, TLSPOOL_DANE_REC_UNUSABLE, "unknown usage %u",
		    (unsigned)t->usage);
	} else if (t->selector > 1) {
		say(st, TLSPOOL_DANE_REC_UNUSABLE, "unknown selector %u",
		    (unsigned)t->selector);
	} else if (t->mtype > 2) {
		say(st, TLSPOOL_DANE_REC_UNUSABLE, "unknown matching type %u",
		    (unsigned)t->mtype);
	} else if (t->data == NULL || t->len == 0 ||
	           (t->mtype == 1 && t->len != 32) ||
	           (t->mtype == 2 && t->len != 64)) {
		say(st, TLSPOOL_DANE_REC_UNUSABLE,
		    "malformed: %zu octets of %s association data", t->len,
		    mtype_names[t->mtype]);
	} else if (t->usage <= 1 && (x->in->flags & TLSPOOL_DANE_NO_PKIX)) {
		say(st, TLSPOOL_DANE_REC_UNUSABLE,
		    "%s is not used in this profile (RFC 7672 section 3.1.3)",
		    tlspool_dane_usage_name(t->usage));
	} else if (t->usage <= 1 && x->in->trust == NULL) {
		say(st, TLSPOOL_DANE_REC_UNUSABLE,
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
	uint8_t best[4][2] = {{0}};
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
		    t->mtype != 0 && t->mtype < best[t->usage][t->selector])
			say(&res->steps[i], TLSPOOL_DANE_REC_AGILITY,
			    "%s skipped: %s records exist for %s %s (RFC 7671 "
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

int tlspool_dane_match(const tlspool_dane_input *in, tlspool_dane_result **out,
                       char *err, size_t errlen)
{
	struct ctx *x = NULL;
	tlspool_dane_result *res = NULL;
	tlspool_dane_verdict dv;
	size_t i, nusable = 0;
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
	res = calloc(1, sizeof(*res));
	x = calloc(1, sizeof(*x));
	if (res == NULL || x == NULL ||
	    (in->ntlsa > 0 &&
	     (res->steps = calloc(in->ntlsa, sizeof(*res->steps))) == NULL))
		goto nomem;
	x->in = in;
	x->res = res;
	res->dns = in->dns;
	res->matched = res->depth = -1;
	res->nsteps = in->ntlsa;
	for (i = 0; i < in->ntlsa; i++) {
		res->steps[i].index = i;
		res->steps[i].usage = in->tlsa[i].usage;
		res->steps[i].selector = in->tlsa[i].selector;
		res->steps[i].mtype = in->tlsa[i].mtype;
		res->steps[i].depth = -1;
	}

	/* 2 before 1, so that the identity is there for a PKIX fallback. */
	peer_ok = peer_parse(x) == 0;
	if (peer_ok && x->n > 0 &&
	    tp_x509_identity(x->c[0].crt, res->identity,
	                     sizeof(res->identity)) < 0)
		res->identity[0] = '\0';

	/* 1. */
	dv = dns_verdict(in, res);
	if (dv != TLSPOOL_DANE_UNCHECKED) {
		for (i = 0; i < in->ntlsa; i++)
			say(&res->steps[i], TLSPOOL_DANE_REC_NOT_USED,
			    "not used: the answer is %s",
			    tlspool_dns_verdict_name(in->dns));
		res->verdict = dv;
		goto done;
	}
	if (!peer_ok) {
		for (i = 0; i < in->ntlsa; i++)
			say(&res->steps[i], TLSPOOL_DANE_REC_UNCHECKED,
			    "not checked: %s", res->reason);
		res->verdict = TLSPOOL_DANE_PEER_ERROR;
		goto done;
	}
	/* 3-5. */
	for (i = 0; i < in->ntlsa; i++)
		if (usable(x, &in->tlsa[i], &res->steps[i]) == 0)
			nusable++;
	agility(in, res);
	if (x->n == 0)
		for (i = 0; i < in->ntlsa; i++)
			if (res->steps[i].outcome ==
			            TLSPOOL_DANE_REC_UNCHECKED &&
			    (in->tlsa[i].usage != 3 ||
			     in->tlsa[i].selector != 1))
				say(&res->steps[i],
				    TLSPOOL_DANE_REC_NOT_APPLICABLE,
				    "%s cannot match a raw public key, only "
				    "DANE-EE "
				    "SPKI can (RFC 7671 section 5.1)",
				    params(&in->tlsa[i]));
	/* 6. */
	for (i = 0; i < in->ntlsa; i++) {
		tlspool_dane_step *st = &res->steps[i];
		const tlspool_tlsa *t = &in->tlsa[i];

		if (st->outcome != TLSPOOL_DANE_REC_UNCHECKED)
			continue;
		if (x->n > 0) {
			match_chain(x, t, st);
		} else if (assoc_matches(t, &in->rawkey)) {
			st->depth = 0;
			say(st, TLSPOOL_DANE_REC_MATCHED,
			    "%s matches the raw public key", params(t));
		} else {
			say(st, TLSPOOL_DANE_REC_NO_MATCH,
			    "%s: %s differs from the raw public key's",
			    params(t),
			    t->mtype == 0 ? "the data" : "the digest");
		}
		if (st->outcome == TLSPOOL_DANE_REC_MATCHED &&
		    res->matched < 0) {
			res->matched = (int)i;
			res->depth = st->depth;
		}
	}
	/* 7. */
	if (res->matched >= 0) {
		const tlspool_dane_step *st = &res->steps[res->matched];

		res->verdict = TLSPOOL_DANE_AUTHENTICATED;
		if (st->usage == 3)
			snprintf(res->name, sizeof(res->name), "%s",
			         in->nnames ? in->names[0] : "");
		snprintf(res->reason, sizeof(res->reason),
		         "record %d (%u %u %u) authenticates the peer",
		         res->matched, st->usage, st->selector, st->mtype);
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
		snprintf(
		        res->reason, sizeof(res->reason),
		        "none of the %zu usable records authenticates the peer",
		        nusable);
	}
done:
	peer_free(x);
	free(x);
	*out = res;
	return 0;
nomem:
	free(x);
	tlspool_dane_result_free(res);
	tp_err(err, errlen, "out of memory");
	errno = ENOMEM;
	return -1;
}

void tlspool_dane_result_free(tlspool_dane_result *res)
{
	if (res == NULL)
		return;
	free(res->steps);
	free(res);
}
