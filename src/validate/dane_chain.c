/*
 * DANE matching against the peer's certificate chain (RFC 6698, RFC 7671
 * sections 5.1 to 5.4): step 2 of the outline in dane.c, parsing the
 * peer and building its issuer path, and step 6 for a chain, the checks
 * after a record matched (chain to the anchor, PKIX, dates, name).
 *
 * GnuTLS's own time checks are turned off and the dates checked here,
 * against the caller's time, so that the result is a function of the
 * input.
 *
 * Depths count along the issuer path built here (0 the end entity), as
 * OpenSSL counts them; an anchor the peer did not send sits one above the
 * certificate it issued.  With TLSPOOL_DANE_EXTRA_CERTS the path may also
 * take untrusted certificates the peer did not send (in->extra, and those
 * of PKIX-TA and DANE-TA Cert(0) Full(0) records, as OpenSSL takes them):
 * they complete the path, and are checked like the peer's.
 */
#include <stdio.h>
#include <string.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "dane_int.h"

#define VERIFY_FLAGS                                                           \
	(GNUTLS_VERIFY_DISABLE_TIME_CHECKS |                                   \
	 GNUTLS_VERIFY_DISABLE_TRUSTED_TIME_CHECKS)

/* --- 2. the peer ---------------------------------------------------------- */

void tp_dane_peer_free(struct tp_dane_ctx *x)
{
	size_t i;

	for (i = 0; i < x->n + x->nx; i++)
		gnutls_x509_crt_deinit(x->c[i].crt);
	x->n = x->nx = 0;
}

/* "certificate 2", or "an extra certificate" for one the peer did not
 * send (thread-local). */
static const char *cert_name(const struct tp_dane_ctx *x, size_t idx)
{
	static _Thread_local char buf[48];

	if (idx >= x->n)
		return "an untrusted extra certificate";
	snprintf(buf, sizeof(buf), "certificate %zu", idx);
	return buf;
}

/* Is path[0..npath-1] at chain index idx?  Then *pos is where. */
static int on_path(const struct tp_dane_ctx *x, size_t idx, size_t *pos)
{
	size_t p;

	for (p = 0; p < x->npath; p++)
		if (x->path[p] == idx) {
			*pos = p;
			return 1;
		}
	return 0;
}

/* An RFC 7250 raw public key: exactly one DER SubjectPublicKeyInfo, which
 * GnuTLS reads.  1 or 0. */
static int rawkey_parses(const tlspool_span *raw)
{
	gnutls_datum_t d = {(unsigned char *)raw->data, (unsigned)raw->len};
	gnutls_pubkey_t key = NULL;
	int ok;

	ok = raw->len <= 0xffffff &&
	     tp_der_one_sequence(raw->data, raw->len) == 0 &&
	     gnutls_pubkey_init(&key) >= 0 &&
	     gnutls_pubkey_import(key, &d, GNUTLS_X509_FMT_DER) >= 0;
	if (key != NULL)
		gnutls_pubkey_deinit(key);
	return ok;
}

/* Every certificate of the chain into x->c.  0, or -1 with the reason. */
static int chain_parse(struct tp_dane_ctx *x)
{
	const tlspool_dane_input *in = x->in;
	gnutls_datum_t d;
	size_t i;

	if (in->nchain > TP_DANE_MAX_CHAIN) {
		snprintf(x->res->reason, sizeof(x->res->reason),
		         "the peer sent %zu certificates, more than %d",
		         in->nchain, TP_DANE_MAX_CHAIN);
		return -1;
	}
	for (i = 0; i < in->nchain; i++) {
		struct tp_dane_cert *c = &x->c[i];

		c->der = in->chain[i];
		d.data = (unsigned char *)c->der.data;
		d.size = (unsigned)c->der.len;
		if (c->der.data == NULL || c->der.len > 0xffffff ||
		    gnutls_x509_crt_init(&c->crt) < 0) {
			snprintf(x->res->reason, sizeof(x->res->reason),
			         "certificate %zu from the peer is empty", i);
			return -1;
		}
		x->n = i + 1;
		if (gnutls_x509_crt_import(c->crt, &d, GNUTLS_X509_FMT_DER) <
		            0 ||
		    tp_der_cert_parts(c->der.data, c->der.len, &c->tbs,
		                      &c->spki) != 0) {
			snprintf(x->res->reason, sizeof(x->res->reason),
			         "certificate %zu from the peer does not parse",
			         i);
			return -1;
		}
	}
	return 0;
}

/* One untrusted extra certificate into c[n + nx], if it parses. */
static void add_extra(struct tp_dane_ctx *x, const unsigned char *der,
                      size_t len)
{
	struct tp_dane_cert *c = &x->c[x->n + x->nx];
	gnutls_datum_t d = {(unsigned char *)der, (unsigned)len};

	if (x->nx >= TP_DANE_MAX_CHAIN || der == NULL || len == 0 ||
	    len > 0xffffff || gnutls_x509_crt_init(&c->crt) < 0)
		return;
	c->der.data = der;
	c->der.len = len;
	if (gnutls_x509_crt_import(c->crt, &d, GNUTLS_X509_FMT_DER) < 0 ||
	    tp_der_cert_parts(der, len, &c->tbs, &c->spki) != 0) {
		gnutls_x509_crt_deinit(c->crt);
		memset(c, 0, sizeof(*c));
		return;
	}
	x->nx++;
}

/* TLSPOOL_DANE_EXTRA_CERTS: the caller's certificates, then those of the
 * "0 0 0" and "2 0 0" records; those that do not parse are left out. */
static void extras(struct tp_dane_ctx *x)
{
	const tlspool_dane_input *in = x->in;
	size_t i;

	if (!(in->flags & TLSPOOL_DANE_EXTRA_CERTS))
		return;
	for (i = 0; i < in->nextra && in->extra != NULL; i++)
		add_extra(x, in->extra[i].data, in->extra[i].len);
	for (i = 0; i < in->ntlsa; i++) {
		const tlspool_tlsa *t = &in->tlsa[i];

		if ((t->usage == TLSPOOL_DANE_USAGE_PKIX_TA ||
		     t->usage == TLSPOOL_DANE_USAGE_DANE_TA) &&
		    t->selector == TLSPOOL_DANE_SELECTOR_CERT &&
		    t->mtype == TLSPOOL_DANE_MTYPE_FULL)
			add_extra(x, t->data, t->len);
	}
}

/* The first certificate in [from, to), not on the path, that issued cur;
 * to when there is none. */
static size_t issuer_in(const struct tp_dane_ctx *x, size_t cur, size_t from,
                        size_t to)
{
	size_t j, pos;

	for (j = from; j < to; j++)
		if (!on_path(x, j, &pos) &&
		    gnutls_x509_crt_check_issuer(x->c[cur].crt, x->c[j].crt))
			return j;
	return to;
}

/* The issuer path: from the end entity, the first certificate whose
 * subject is the current one's issuer, until a self-issued one; the
 * peer's certificates first, then the extra ones.  Peers may send extra
 * or unsorted certificates (RFC 8446 section 4.4.2). */
static void issuer_path(struct tp_dane_ctx *x)
{
	size_t cur = 0, j;

	x->path[0] = 0;
	x->npath = 1;
	while (!gnutls_x509_crt_check_issuer(x->c[cur].crt, x->c[cur].crt)) {
		j = issuer_in(x, cur, 1, x->n);
		if (j == x->n)
			j = issuer_in(x, cur, x->n, x->n + x->nx);
		if (j == x->n + x->nx)
			break;
		x->path[x->npath++] = cur = j;
	}
}

int tp_dane_peer_parse(struct tp_dane_ctx *x)
{
	if (x->in->nchain == 0) {
		if (rawkey_parses(&x->in->rawkey))
			return 0;
		snprintf(x->res->reason, sizeof(x->res->reason),
		         "the peer's raw public key does not parse");
		return -1;
	}
	if (chain_parse(x) != 0)
		return -1;
	extras(x);
	issuer_path(x);
	return 0;
}

/* --- 6. matching against the chain ---------------------------------------- */

int tp_dane_assoc_matches(const tlspool_tlsa *t, const tlspool_span *sel)
{
	unsigned char md[64];
	int n;

	if (t->mtype == TLSPOOL_DANE_MTYPE_FULL)
		return t->len == sel->len &&
		       memcmp(t->data, sel->data, t->len) == 0;
	n = tp_tlsa_assoc(sel->data, sel->len, t->mtype, md, sizeof(md));
	return n > 0 && (size_t)n == t->len && memcmp(md, t->data, t->len) == 0;
}

static int cert_matches(const tlspool_tlsa *t, const struct tp_dane_cert *c)
{
	return tp_dane_assoc_matches(
	        t,
	        t->selector == TLSPOOL_DANE_SELECTOR_CERT ? &c->der : &c->spki);
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
static int verify_below(const struct tp_dane_ctx *x, size_t count,
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
static int pkix_ok(const struct tp_dane_ctx *x, char *why, size_t whylen)
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
 * index into c of the first that is not. */
static int dates_ok(const struct tp_dane_ctx *x, size_t count, size_t *bad,
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
static int name_ok(struct tp_dane_ctx *x)
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

/* Does every certificate on the path below a self-signed top allow the
 * purpose in its extended key usage (RFC 5280 section 4.2.1.12: absent,
 * anyExtendedKeyUsage, or the purpose's OID)?  On failure, *bad is the
 * index into c of the first that does not. */
static int purpose_ok(const struct tp_dane_ctx *x, const char *oid, size_t *bad)
{
	size_t i;

	for (i = 0; i < x->npath; i++) {
		gnutls_x509_crt_t crt = x->c[x->path[i]].crt;

		if (i > 0 && gnutls_x509_crt_check_issuer(crt, crt))
			break; /* a root: its own word */
		if (!gnutls_x509_crt_check_key_purpose(crt, oid, 0)) {
			*bad = x->path[i];
			return 0;
		}
	}
	return 1;
}

/* Does the bare key (a "2 1 0" anchor) verify c's signature? */
static int signed_by(const struct tp_dane_cert *c, gnutls_pubkey_t key)
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

static void name_mismatch(struct tp_dane_ctx *x, const tlspool_tlsa *t,
                          tlspool_dane_step *st, const char *what)
{
	tp_dane_say(st, TLSPOOL_DANE_REC_NAME_MISMATCH,
	            "%s matches %s, but the end entity names %s%s%s, not %s%s",
	            tp_dane_params(t), what, x->res->identity[0] ? "\"" : "",
	            x->res->identity[0] ? x->res->identity : "no usable name",
	            x->res->identity[0] ? "\"" : "",
	            x->in->nnames ? x->in->names[0]
	                          : "(no reference name given)",
	            x->in->nnames > 1 ? " or the other reference names" : "");
}

/* The checks after a match: chain to the anchor, PKIX, purpose, dates,
 * name.
 * nverify path certificates must verify to anchor (if not NULL), and
 * ndates of them must be valid now (the PKIX usages: all but the root). */
static void finish(struct tp_dane_ctx *x, const tlspool_tlsa *t,
                   tlspool_dane_step *st, size_t nverify,
                   gnutls_x509_crt_t anchor, size_t ndates, const char *what)
{
	char why[160];
	size_t bad = 0, count = ndates;
	int expired = 0;

	if (anchor != NULL &&
	    verify_below(x, nverify, anchor, why, sizeof(why)) != 0) {
		tp_dane_say(st, TLSPOOL_DANE_REC_CHAIN_FAILED,
		            "%s matches %s, but the chain does not verify to "
		            "it: %s",
		            tp_dane_params(t), what, why);
		return;
	}
	if (tp_dane_is_pkix(t->usage)) {
		const int client =
		        x->in->purpose == TLSPOOL_DANE_PURPOSE_CLIENT;

		if (pkix_ok(x, why, sizeof(why)) != 0) {
			tp_dane_say(
			        st, TLSPOOL_DANE_REC_PKIX_FAILED,
			        "%s matches %s, but PKIX validation failed: %s",
			        tp_dane_params(t), what, why);
			return;
		}
		if (x->in->purpose != TLSPOOL_DANE_PURPOSE_ANY &&
		    !purpose_ok(x,
		                client ? GNUTLS_KP_TLS_WWW_CLIENT
		                       : GNUTLS_KP_TLS_WWW_SERVER,
		                &bad)) {
			tp_dane_say(
			        st, TLSPOOL_DANE_REC_WRONG_PURPOSE,
			        "%s matches %s, but %s is not for TLS %s "
			        "authentication (its extended key usage lacks "
			        "%s, RFC 5280 section 4.2.1.12)",
			        tp_dane_params(t), what, cert_name(x, bad),
			        client ? "client" : "server",
			        client ? "clientAuth" : "serverAuth");
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
		tp_dane_say(st, TLSPOOL_DANE_REC_EXPIRED,
		            "%s matches %s, but %s %s", tp_dane_params(t), what,
		            cert_name(x, bad),
		            expired ? "has expired" : "is not yet valid");
		return;
	}
	if (!name_ok(x)) {
		name_mismatch(x, t, st, what);
		return;
	}
	tp_dane_say(st, TLSPOOL_DANE_REC_MATCHED, "%s matches %s; %s",
	            tp_dane_params(t), what,
	            tp_dane_is_pkix(t->usage)
	                    ? "PKIX path, dates and name verified"
	                    : "chain, dates and name verified");
}

/* Report a record that matched no eligible certificate, saying which
 * certificate it does match if any (a common deployment mistake). */
static void no_match(struct tp_dane_ctx *x, const tlspool_tlsa *t,
                     tlspool_dane_step *st)
{
	size_t i, pos;

	for (i = 0; i < x->n + x->nx; i++) {
		if (!cert_matches(t, &x->c[i]))
			continue;
		if (i == 0 && !tp_dane_is_ee(t->usage)) {
			tp_dane_say(st, TLSPOOL_DANE_REC_NO_MATCH,
			            "%s matches the end entity, which cannot "
			            "be its "
			            "own "
			            "trust anchor (RFC 7671 section 5.2; "
			            "publish usage "
			            "3 "
			            "DANE-EE)",
			            tp_dane_params(t));
		} else if (i > 0 && tp_dane_is_ee(t->usage)) {
			tp_dane_say(
			        st, TLSPOOL_DANE_REC_NO_MATCH,
			        "%s matches %s, but end-entity usages match "
			        "only the end entity",
			        tp_dane_params(t), cert_name(x, i));
		} else if (!on_path(x, i, &pos)) {
			tp_dane_say(st, TLSPOOL_DANE_REC_NO_MATCH,
			            "%s matches %s, which is not on the end "
			            "entity's issuer path",
			            tp_dane_params(t), cert_name(x, i));
		} else {
			continue;
		}
		return;
	}
	tp_dane_say(st, TLSPOOL_DANE_REC_NO_MATCH, "%s: %s differs from %s",
	            tp_dane_params(t),
	            t->mtype == TLSPOOL_DANE_MTYPE_FULL ? "the data"
	                                                : "the digest",
	            tp_dane_is_ee(t->usage) ? "the end entity's"
	                                    : "every issuer certificate's");
}

/* DANE-TA(2) "2 0 0" and "2 1 0": an anchor the peer did not send. */
static int unsent_anchor(struct tp_dane_ctx *x, const tlspool_tlsa *t,
                         tlspool_dane_step *st)
{
	gnutls_datum_t d = {(unsigned char *)t->data, (unsigned)t->len};
	gnutls_x509_crt_t ta = NULL;
	gnutls_pubkey_t key = NULL;
	size_t p;
	int found = 0;

	if (t->usage != TLSPOOL_DANE_USAGE_DANE_TA ||
	    t->mtype != TLSPOOL_DANE_MTYPE_FULL)
		return 0;
	if (t->selector == TLSPOOL_DANE_SELECTOR_CERT) {
		if (gnutls_x509_crt_init(&ta) < 0 ||
		    gnutls_x509_crt_import(ta, &d, GNUTLS_X509_FMT_DER) < 0)
			goto done;
		for (p = 0; p < x->npath; p++)
			if (gnutls_x509_crt_check_issuer(x->c[x->path[p]].crt,
			                                 ta)) {
				found = 1;
				st->depth =
				        (int)p + 1; /* above what it issued */
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
				st->depth = (int)p + 1;
				finish(x, t, st, p,
				       p > 0 ? x->c[x->path[p]].crt : NULL,
				       p + 1,
				       "a bare trust-anchor key the peer did "
				       "not send");
				break;
			}
	}
done:
	if (ta != NULL)
		gnutls_x509_crt_deinit(ta);
	if (key != NULL)
		gnutls_pubkey_deinit(key);
	return found;
}

/* PKIX-TA(0): the trust-store root above the top of the path. */
static int store_root(struct tp_dane_ctx *x, const tlspool_tlsa *t,
                      tlspool_dane_step *st)
{
	gnutls_x509_crt_t root = NULL;
	gnutls_datum_t d = {NULL, 0};
	struct tp_dane_cert rc;
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
	st->depth = (int)x->npath; /* above the top of the path */
	finish(x, t, st, x->npath, root, x->npath, "the trust-store root");
done:
	gnutls_free(d.data);
	gnutls_x509_crt_deinit(root);
	return found;
}

void tp_dane_match_chain(struct tp_dane_ctx *x, const tlspool_tlsa *t,
                         tlspool_dane_step *st)
{
	char what[64];
	size_t p;

	if (tp_dane_is_ee(t->usage)) {
		if (!cert_matches(t, &x->c[0])) {
			no_match(x, t, st);
			return;
		}
		st->depth = 0;
		st->chain_index = 0;
		if (t->usage != TLSPOOL_DANE_USAGE_DANE_EE)
			finish(x, t, st, 0, NULL, 1, "the end entity");
		else if (!(x->in->flags & TLSPOOL_DANE_EE_NAME_CHECKS))
			tp_dane_say(
			        st, TLSPOOL_DANE_REC_MATCHED,
			        "%s matches the end entity (names and dates "
			        "are not checked, RFC 7671 section 5.1)",
			        tp_dane_params(t));
		else if (!name_ok(x))
			name_mismatch(x, t, st, "the end entity");
		else
			tp_dane_say(
			        st, TLSPOOL_DANE_REC_MATCHED,
			        "%s matches the end entity, which names %s "
			        "(DANE-EE name checks asked for; dates are not "
			        "checked)",
			        tp_dane_params(t), x->res->name);
		return;
	}
	/* Usages 0 and 2: an issuer on the path, nearest first. */
	for (p = 1; p < x->npath; p++)
		if (cert_matches(t, &x->c[x->path[p]])) {
			st->depth = (int)p;
			st->chain_index =
			        x->path[p] < x->n ? (int)x->path[p] : -1;
			snprintf(what, sizeof(what), "%s",
			         cert_name(x, x->path[p]));
			finish(x, t, st, p, x->c[x->path[p]].crt, p, what);
			return;
		}
	if (cert_matches(t, &x->c[0])) {
		no_match(x, t, st);
		return;
	}
	if (unsent_anchor(x, t, st))
		return;
	if (t->usage == TLSPOOL_DANE_USAGE_PKIX_TA && store_root(x, t, st))
		return;
	no_match(x, t, st);
}
