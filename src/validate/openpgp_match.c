/*
 * OPENPGPKEY matching (RFC 7929) and the secrets of local OpenPGP keys.
 *
 * Outline of tlspool_openpgp_match():
 * 1. The DNS verdict first, as for TLSA (RFC 7929 section 5 asks for
 *    DNSSEC): bogus, SERVFAIL, timeout and indeterminate are DNS_ERROR;
 *    insecure is INSECURE; a secure denial or empty RRset NO_RECORDS.
 * 2. The peer's key: the SubjectPublicKeyInfo of its end-entity
 *    certificate (or its raw key), read by GnuTLS and brought to the form
 *    OpenPGP keeps: RSA n and e, an EC curve and point, or the 32 octets
 *    of an Ed25519 key.  Comparing key material rather than encodings is
 *    the point: the same key lives in two formats.
 * 3. Each record is one transferable public key in binary form (RFC 7929
 *    section 2.1; ASCII armor is for files, not for DNS), which
 *    tlspool_openpgp_parse checks at the given time.  The peer's key must
 *    equal the valid primary key, or a valid subkey whose flags allow
 *    signing or authentication; and a valid User ID must contain
 *    "<identity>".  The first record that passes authenticates; each
 *    record's step says what became of it.
 * 4. Verdict: AUTHENTICATED; NO_USABLE when no record parsed; else
 *    NO_MATCH, whose reason is that of the last record.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "openpgp_int.h"

struct peer {
	enum tp_pgp_kind kind;
	gnutls_ecc_curve_t curve;
	gnutls_datum_t a, b;
	char name[48];
};

static void peer_free(struct peer *p)
{
	gnutls_free(p->a.data);
	gnutls_free(p->b.data);
}

/* The peer's key material.  0, or -1 with a reason. */
static int peer_key(const tlspool_openpgp_input *in, struct peer *p, char *why,
                    size_t whylen)
{
	tlspool_span tbs, spki = in->rawkey;
	gnutls_pubkey_t pub = NULL;
	gnutls_datum_t der;
	int r, alg;

	memset(p, 0, sizeof(*p));
	if (in->nchain > 0 &&
	    tp_der_cert_parts(in->chain[0].data, in->chain[0].len, &tbs,
	                      &spki) != 0) {
		snprintf(why, whylen, "the peer's certificate is unparsable");
		return -1;
	}
	der.data = (unsigned char *)spki.data;
	der.size = (unsigned)spki.len;
	if ((r = gnutls_pubkey_init(&pub)) < 0 ||
	    (r = gnutls_pubkey_import(pub, &der, GNUTLS_X509_FMT_DER)) < 0)
		goto gnutls_err;
	alg = gnutls_pubkey_get_pk_algorithm(pub, NULL);
	switch (alg) {
	case GNUTLS_PK_RSA:
	case GNUTLS_PK_RSA_PSS:
		p->kind = TP_PGP_RSA;
		r = gnutls_pubkey_export_rsa_raw2(pub, &p->a, &p->b,
		                                  GNUTLS_EXPORT_FLAG_NO_LZ);
		snprintf(p->name, sizeof(p->name), "RSA-%u", p->a.size * 8);
		break;
	case GNUTLS_PK_ECDSA:
	case GNUTLS_PK_EDDSA_ED25519:
		p->kind = alg == GNUTLS_PK_ECDSA ? TP_PGP_EC : TP_PGP_ED25519;
		r = gnutls_pubkey_export_ecc_raw2(pub, &p->curve, &p->a,
		                                  alg == GNUTLS_PK_ECDSA ? &p->b
		                                                         : NULL,
		                                  GNUTLS_EXPORT_FLAG_NO_LZ);
		snprintf(p->name, sizeof(p->name), "%s",
		         alg == GNUTLS_PK_ECDSA
		                 ? gnutls_ecc_curve_get_name(p->curve)
		                 : "Ed25519");
		break;
	default:
		snprintf(why, whylen,
		         "the peer's %s key has no OpenPGP counterpart here",
		         gnutls_pk_get_name((gnutls_pk_algorithm_t)alg));
		gnutls_pubkey_deinit(pub);
		return -1;
	}
	if (r < 0)
		goto gnutls_err;
	gnutls_pubkey_deinit(pub);
	return 0;
gnutls_err:
	snprintf(why, whylen, "the peer's public key: %s", gnutls_strerror(r));
	gnutls_pubkey_deinit(pub);
	peer_free(p);
	return -1;
}

/* Numbers compared without leading zero octets. */
static int num_eq(const unsigned char *a, size_t al, const unsigned char *b,
                  size_t bl)
{
	while (al > 0 && a[0] == 0) {
		a++;
		al--;
	}
	while (bl > 0 && b[0] == 0) {
		b++;
		bl--;
	}
	return al == bl && memcmp(a, b, al) == 0;
}

static int same_key(const struct peer *p, const struct tp_pgp_key *k)
{
	if (p->kind != k->kind)
		return 0;
	switch (k->kind) {
	case TP_PGP_RSA:
	case TP_PGP_EC:
		if (k->kind == TP_PGP_EC && p->curve != k->curve)
			return 0;
		return num_eq(p->a.data, p->a.size, k->a.data, k->a.len) &&
		       num_eq(p->b.data, p->b.size, k->b.data, k->b.len);
	case TP_PGP_ED25519:
		return p->a.size == 32 && memcmp(p->a.data, k->a.data, 32) == 0;
	default:
		return 0;
	}
}

static void hex(char *buf, size_t len, const unsigned char *d, size_t n)
{
	size_t i;

	for (i = 0; i < n && 2 * i + 2 < len; i++)
		snprintf(buf + 2 * i, 3, "%02X", d[i]);
}

/* One record: 1 matched (res filled), 0 not (reason in why). */
static int match_record(const tlspool_openpgp_input *in, const struct peer *p,
                        const tlspool_openpgp_cert *cert,
                        tlspool_openpgp_result *res, char *why, size_t whylen)
{
	struct tp_pgp *g = cert->internal;
	const tlspool_openpgp_keyinfo *ki = NULL;
	const tlspool_openpgp_uid *named = NULL;
	char fpr[65] = "";
	size_t i;

	for (i = 0; i < g->nkeys && ki == NULL; i++)
		if (same_key(p, &g->keys[i]))
			ki = g->keys[i].info;
	if (ki == NULL) {
		hex(fpr, sizeof(fpr), cert->primary.fingerprint,
		    cert->primary.fingerprint_len);
		snprintf(why, whylen,
		         "the peer's %s key is neither the key %s (%s) nor "
		         "one of its %zu subkeys",
		         p->name, fpr, cert->primary.algorithm_name,
		         cert->nsubkeys);
		return 0;
	}
	hex(fpr, sizeof(fpr), ki->fingerprint, ki->fingerprint_len);
	if (!ki->valid && ki != &cert->primary && !cert->primary.valid) {
		/* why the primary key does not count is the news */
		snprintf(
		        why, whylen,
		        "subkey %s matches the peer's key, but the primary key "
		        "does not count: %.100s",
		        fpr, cert->primary.reason);
		return 0;
	}
	if (!ki->valid) {
		snprintf(why, whylen,
		         "%s %s matches the peer's key but does "
		         "not count: %.100s",
		         ki == &cert->primary ? "key" : "subkey", fpr,
		         ki->reason);
		return 0;
	}
	if (ki != &cert->primary &&
	    !(ki->flags & (TLSPOOL_OPENPGP_SIGN | TLSPOOL_OPENPGP_AUTH))) {
		snprintf(why, whylen,
		         "subkey %s matches the peer's key but may neither "
		         "sign nor authenticate (key flags 0x%02x)",
		         fpr, ki->flags);
		return 0;
	}
	for (i = 0; i < cert->nuids; i++) {
		if (!tlspool_openpgp_uid_names(cert->uids[i].text,
		                               in->identity))
			continue;
		named = &cert->uids[i];
		if (named->valid)
			break;
	}
	if (named == NULL) {
		snprintf(why, whylen,
		         "key %s matches, but no User ID names "
		         "<%.60s>%s%.40s%s",
		         fpr, in->identity, cert->nuids ? " (first: \"" : "",
		         cert->nuids ? cert->uids[0].text : "",
		         cert->nuids ? "\")" : "");
		return 0;
	}
	if (!named->valid) {
		snprintf(why, whylen,
		         "key %s matches, but the User ID \"%.50s\" "
		         "does not count: %.60s",
		         fpr, named->text, named->reason);
		return 0;
	}
	memcpy(res->fingerprint, ki->fingerprint, ki->fingerprint_len);
	res->fingerprint_len = ki->fingerprint_len;
	res->subkey = ki != &cert->primary;
	snprintf(res->uid, sizeof(res->uid), "%s", named->text);
	snprintf(why, whylen, "%s %s (%s) with User ID \"%.100s\"",
	         res->subkey ? "subkey" : "key", fpr, ki->algorithm_name,
	         named->text);
	return 1;
}

/* Step 1: a non-secure answer decides alone.  1 when it did. */
static int dns_decides(const tlspool_openpgp_input *in,
                       tlspool_openpgp_result *res)
{
	const char *d = in->dns_detail ? in->dns_detail : "";

	if (in->dns == TLSPOOL_DNS_SECURE && in->nrecords > 0)
		return 0;
	if (in->dns == TLSPOOL_DNS_INSECURE) {
		res->verdict = TLSPOOL_DANE_INSECURE;
		snprintf(res->reason, sizeof(res->reason),
		         "the zone is insecure: OPENPGPKEY records prove "
		         "nothing");
	} else if (in->dns == TLSPOOL_DNS_SECURE ||
	           in->dns == TLSPOOL_DNS_SECURE_NODATA ||
	           in->dns == TLSPOOL_DNS_SECURE_NXDOMAIN) {
		res->verdict = TLSPOOL_DANE_NO_RECORDS;
		snprintf(res->reason, sizeof(res->reason),
		         "no OPENPGPKEY record (secure %s)",
		         tlspool_dns_verdict_name(in->dns));
	} else {
		res->verdict = TLSPOOL_DANE_DNS_ERROR;
		snprintf(res->reason, sizeof(res->reason),
		         "OPENPGPKEY RRset is %s%s%s%s",
		         tlspool_dns_verdict_name(in->dns), d[0] ? " (" : "", d,
		         d[0] ? ")" : "");
	}
	return 1;
}

int tlspool_openpgp_match(const tlspool_openpgp_input *in,
                          tlspool_openpgp_result **out, char *err,
                          size_t errlen)
{
	tlspool_openpgp_result *res;
	tlspool_openpgp_cert *cert;
	struct peer p;
	char why[240], perr[200];
	size_t i, parsed = 0;

	if (in == NULL || out == NULL || in->identity == NULL ||
	    (in->nchain == 0 && in->rawkey.data == NULL) ||
	    (in->nrecords > 0 && in->records == NULL)) {
		tp_err(err, errlen, "tlspool_openpgp_match: missing input");
		errno = EINVAL;
		return -1;
	}
	res = calloc(1, sizeof(*res));
	if (res == NULL || (res->steps = calloc(in->nrecords ? in->nrecords : 1,
	                                        sizeof(*res->steps))) == NULL) {
		free(res);
		tp_err(err, errlen, "out of memory");
		errno = ENOMEM;
		return -1;
	}
	res->dns = in->dns;
	res->matched = -1;
	*out = res;
	for (i = 0; i < in->nrecords; i++) {
		res->steps[i].index = i;
		snprintf(res->steps[i].reason, sizeof(res->steps[i].reason),
		         "not used: the RRset is not secure");
	}
	res->nsteps = in->nrecords;
	if (dns_decides(in, res))
		return 0;
	if (peer_key(in, &p, why, sizeof(why)) != 0) {
		res->verdict = TLSPOOL_DANE_PEER_ERROR;
		snprintf(res->reason, sizeof(res->reason), "%s", why);
		return 0;
	}
	for (i = 0; i < in->nrecords; i++) {
		tlspool_openpgp_step *st = &res->steps[i];

		if (tp_pgp_is_armored(in->records[i].data,
		                      in->records[i].len)) {
			snprintf(st->reason, sizeof(st->reason),
			         "unusable key: ASCII armor in DNS (RFC 7929 "
			         "section 2.1 publishes binary packets)");
			continue;
		}
		if (tlspool_openpgp_parse(in->records[i].data,
		                          in->records[i].len, 0, in->now, &cert,
		                          perr, sizeof(perr)) != 0) {
			snprintf(st->reason, sizeof(st->reason),
			         "unusable key: %s", perr);
			continue;
		}
		parsed++;
		st->matched = match_record(in, &p, cert, res, st->reason,
		                           sizeof(st->reason));
		tlspool_openpgp_free(cert);
		if (st->matched) {
			res->verdict = TLSPOOL_DANE_AUTHENTICATED;
			res->matched = (int)i;
			snprintf(res->reason, sizeof(res->reason),
			         "OPENPGPKEY record %zu: %s", i + 1,
			         st->reason);
			break;
		}
	}
	if (res->verdict != TLSPOOL_DANE_AUTHENTICATED) {
		res->verdict =
		        parsed ? TLSPOOL_DANE_NO_MATCH : TLSPOOL_DANE_NO_USABLE;
		snprintf(res->reason, sizeof(res->reason), "%s%s",
		         in->nrecords > 1
		                 ? "no OPENPGPKEY record matches; last: "
		                 : "",
		         res->steps[in->nrecords - 1].reason);
	}
	peer_free(&p);
	return 0;
}

void tlspool_openpgp_result_free(tlspool_openpgp_result *res)
{
	if (res == NULL)
		return;
	free(res->steps);
	free(res);
}

/* --- secrets -------------------------------------------------------------- */

static const char *curve_name(const struct tp_pgp_key *k)
{
	switch (k->curve) {
	case GNUTLS_ECC_CURVE_SECP256R1:
		return "P-256";
	case GNUTLS_ECC_CURVE_SECP384R1:
		return "P-384";
	case GNUTLS_ECC_CURVE_SECP521R1:
		return "P-521";
	case GNUTLS_ECC_CURVE_ED25519:
		return "Ed25519";
	default:
		return NULL;
	}
}

/* The first valid key that may authenticate, can sign a TLS handshake
 * and has secret material (or protected material, to say so), else the
 * valid primary key if it can sign a handshake; NULL. */
static struct tp_pgp_key *auth_key(struct tp_pgp *g)
{
	size_t i;

	for (i = 0; i < g->nkeys; i++)
		if (g->keys[i].info->valid && tp_pgp_tls_usable(&g->keys[i]) &&
		    (g->keys[i].info->flags & TLSPOOL_OPENPGP_AUTH) &&
		    (g->keys[i].has_secret || g->keys[i].protected_secret))
			return &g->keys[i];
	if (g->keys[0].info->valid && tp_pgp_tls_usable(&g->keys[0]))
		return &g->keys[0];
	return NULL;
}

/* Point s at the material of k (which stays in cert). */
static void secret_fill(tlspool_openpgp_secret *s, const struct tp_pgp *g,
                        const struct tp_pgp_key *k)
{
	s->algorithm = k->algo;
	s->curve = curve_name(k);
	s->subkey = k != &g->keys[0];
	memcpy(s->fingerprint, k->info->fingerprint, k->info->fingerprint_len);
	s->fingerprint_len = k->info->fingerprint_len;
	if (k->kind == TP_PGP_RSA) {
		s->n = k->a;
		s->e = k->b;
		s->d = k->sec[0];
		s->p = k->sec[1];
		s->q = k->sec[2];
		s->u = k->sec[3];
	} else {
		s->x = k->a;
		if (k->kind == TP_PGP_EC)
			s->y = k->b;
		s->k = k->sec[0];
	}
}

int tlspool_openpgp_secret_key(const unsigned char *data, size_t len,
                               time_t now, tlspool_openpgp_secret **out,
                               char *err, size_t errlen)
{
	tlspool_openpgp_cert *cert;
	tlspool_openpgp_secret *s;
	struct tp_pgp_key *k;
	int saved;

	if (out == NULL) {
		errno = EINVAL;
		return -1;
	}
	if (tlspool_openpgp_parse(data, len, 1, now, &cert, err, errlen) != 0)
		return -1;
	if (!cert->secret) {
		tp_err(err, errlen, "a public key, not a secret key export");
		errno = ENOKEY;
		goto fail;
	}
	k = auth_key(cert->internal);
	if (k == NULL) {
		tp_err(err, errlen,
		       "no valid key that may authenticate and can sign a TLS "
		       "handshake (%s)",
		       cert->primary.reason[0] ? cert->primary.reason
		                               : cert->primary.algorithm_name);
		errno = ENOKEY;
		goto fail;
	}
	if (k->protected_secret) {
		tp_err(err, errlen,
		       "the secret key is protected by a "
		       "passphrase: export it without one");
		errno = EACCES;
		goto fail;
	}
	if (!k->has_secret) {
		tp_err(err, errlen, "the key has no secret material");
		errno = ENOKEY;
		goto fail;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		errno = ENOMEM;
		goto fail;
	}
	s->internal = cert; /* takes ownership: the spans point into it */
	secret_fill(s, cert->internal, k);
	*out = s;
	return 0;
fail:
	saved = errno;
	tlspool_openpgp_free(cert);
	errno = saved;
	return -1;
}

void tlspool_openpgp_secret_free(tlspool_openpgp_secret *sec)
{
	if (sec == NULL)
		return;
	tlspool_openpgp_free(sec->internal); /* wipes the copy */
	free(sec);
}
