/*
 * The cryptography of OpenPGP signatures: one module that picks the
 * backend per algorithm.
 *
 *   algorithm (RFC 9580 section 9.1)            backend
 *   RSA (1, 3)                                  GnuTLS
 *   ECDSA (19) on P-256, P-384, P-521            GnuTLS
 *   EdDSALegacy (22) and Ed25519 (27)            GnuTLS
 *   ECDSA (19) on brainpoolP256r1/384r1/512r1,   libgcrypt
 *     secp256k1
 *   DSA (17)                                     libgcrypt
 *   anything else (Ed448, Elgamal, unknown       none: "not supported",
 *     curves)                                      never valid
 *
 * GnuTLS verifies what it can, as it does for the rest of the library;
 * libgcrypt, which GnuPG uses, where GnuTLS stops: GnuTLS has neither the
 * Brainpool curves nor DSA signatures of OpenPGP's form.
 *
 * DSA and ECDSA sign the leftmost bits of the digest, as many as the group
 * order has (FIPS 186-4 section 4.6, RFC 9580 section 5.2.3.3); GnuPG
 * hands libgcrypt the digest cut to the order's octets, and so does this
 * file (every order here is a whole number of octets).
 *
 * libgcrypt is initialised once per process with gcry_check_version(),
 * the one call the libgcrypt manual asks of a library; the application
 * keeps control of the rest of its configuration.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <gcrypt.h>
#include <gnutls/gnutls.h>

#include "openpgp_int.h"

/* --- GnuTLS ----------------------------------------------------------------
 */

/* Pad a big-endian number to n octets into buf.  0 or -1. */
static int pad(const tlspool_span *v, unsigned char *buf, size_t n)
{
	if (v->len > n)
		return -1;
	memset(buf, 0, n - v->len);
	memcpy(buf + n - v->len, v->data, v->len);
	return 0;
}

/* An RSA signature over the digest hd.  A GnuTLS result. */
static int verify_rsa(gnutls_pubkey_t pub, const struct tp_pgp_key *signer,
                      const struct tp_pgp_sig *s, gnutls_digest_algorithm_t dig,
                      const gnutls_datum_t *hd)
{
	/* An MPI drops leading zero octets; the signature that RSA verifies
	 * is as long as the modulus (RFC 8017 section 8.2.2), so one in 256
	 * signatures needs its zero back. */
	unsigned char rsig[2048];
	size_t n = signer->a.len;
	gnutls_datum_t sd = {rsig, (unsigned)n};

	if (n > sizeof(rsig) || pad(&s->s[0], rsig, n) != 0)
		return GNUTLS_E_PK_SIG_VERIFY_FAILED;
	return gnutls_pubkey_verify_hash2(
	        pub, gnutls_pk_to_sign(GNUTLS_PK_RSA, dig), 0, hd, &sd);
}

/* An ECDSA signature (r, s) over the digest hd.  A GnuTLS result. */
static int verify_ecdsa(gnutls_pubkey_t pub, const struct tp_pgp_sig *s,
                        gnutls_digest_algorithm_t dig, const gnutls_datum_t *hd)
{
	gnutls_datum_t rr = {(unsigned char *)s->s[0].data,
	                     (unsigned)s->s[0].len};
	gnutls_datum_t ss = {(unsigned char *)s->s[1].data,
	                     (unsigned)s->s[1].len};
	gnutls_datum_t sd = {NULL, 0};
	int r;

	r = gnutls_encode_rs_value(&sd, &rr, &ss);
	if (r >= 0)
		r = gnutls_pubkey_verify_hash2(
		        pub, gnutls_pk_to_sign(GNUTLS_PK_ECDSA, dig), 0, hd,
		        &sd);
	gnutls_free(sd.data);
	return r;
}

/* An Ed25519 signature, native (64 octets) or legacy EdDSA (r and s as
 * MPIs).  The digest is the message that EdDSA signs.  A GnuTLS result. */
static int verify_ed25519(gnutls_pubkey_t pub, const struct tp_pgp_key *signer,
                          const struct tp_pgp_sig *s, const gnutls_datum_t *hd)
{
	unsigned char rs[64];
	gnutls_datum_t sd = {rs, sizeof(rs)};

	if (signer->algo == TLSPOOL_OPENPGP_ALGO_ED25519)
		memcpy(rs, s->s[0].data, 64);
	else if (pad(&s->s[0], rs, 32) != 0 || pad(&s->s[1], rs + 32, 32) != 0)
		return GNUTLS_E_PK_SIG_VERIFY_FAILED;
	return gnutls_pubkey_verify_data2(pub, GNUTLS_SIGN_EDDSA_ED25519, 0, hd,
	                                  &sd);
}

static int by_gnutls(struct tp_pgp_key *signer, const struct tp_pgp_sig *s,
                     gnutls_digest_algorithm_t dig, const unsigned char *digest,
                     size_t dlen, char *why, size_t whylen)
{
	gnutls_datum_t hd = {(unsigned char *)digest, (unsigned)dlen};
	gnutls_pubkey_t pub;
	int r;

	if ((r = tp_pgp_pubkey(signer, &pub)) < 0) {
		snprintf(why, whylen, "unusable signing key: %s",
		         gnutls_strerror(r));
		return -1;
	}
	if (signer->kind == TP_PGP_RSA)
		r = verify_rsa(pub, signer, s, dig, &hd);
	else if (signer->kind == TP_PGP_EC)
		r = verify_ecdsa(pub, s, dig, &hd);
	else
		r = verify_ed25519(pub, signer, s, &hd);
	if (r < 0) {
		snprintf(why, whylen, "bad signature (%s)", gnutls_strerror(r));
		return -1;
	}
	return 0;
}

/* --- libgcrypt -------------------------------------------------------------
 */

static pthread_once_t gcry_once = PTHREAD_ONCE_INIT;
static int gcry_ok;

static void gcry_init(void)
{
	gcry_ok = gcry_check_version(GCRYPT_VERSION) != NULL;
}

/* The digest cut to the order's octets (see the top of this file). */
static size_t cut(size_t dlen, size_t order)
{
	return order != 0 && order < dlen ? order : dlen;
}

/* The order's octets of a curve libgcrypt names here. */
static size_t curve_order(const char *curve)
{
	if (strcmp(curve, "brainpoolP384r1") == 0)
		return 48;
	if (strcmp(curve, "brainpoolP512r1") == 0)
		return 64;
	return 32; /* brainpoolP256r1, secp256k1 */
}

static int by_gcrypt(const struct tp_pgp_key *signer,
                     const struct tp_pgp_sig *s, const unsigned char *digest,
                     size_t dlen, char *why, size_t whylen)
{
	gcry_sexp_t key = NULL, sig = NULL, data = NULL;
	gcry_error_t e;
	size_t n;

	pthread_once(&gcry_once, gcry_init);
	if (!gcry_ok) {
		snprintf(why, whylen, "libgcrypt is older than %s",
		         GCRYPT_VERSION);
		return -2;
	}
	if (signer->kind == TP_PGP_DSA) {
		n = cut(dlen, signer->q.len);
		e = gcry_sexp_build(
		        &key, NULL, "(public-key(dsa(p%b)(q%b)(g%b)(y%b)))",
		        (int)signer->p.len, signer->p.data, (int)signer->q.len,
		        signer->q.data, (int)signer->g.len, signer->g.data,
		        (int)signer->y.len, signer->y.data);
		if (e == 0)
			e = gcry_sexp_build(&sig, NULL,
			                    "(sig-val(dsa(r%b)(s%b)))",
			                    (int)s->s[0].len, s->s[0].data,
			                    (int)s->s[1].len, s->s[1].data);
	} else {
		n = cut(dlen, curve_order(signer->gcry_curve));
		e = gcry_sexp_build(&key, NULL,
		                    "(public-key(ecc(curve %s)(q%b)))",
		                    signer->gcry_curve, (int)signer->point.len,
		                    signer->point.data);
		if (e == 0)
			e = gcry_sexp_build(&sig, NULL,
			                    "(sig-val(ecdsa(r%b)(s%b)))",
			                    (int)s->s[0].len, s->s[0].data,
			                    (int)s->s[1].len, s->s[1].data);
	}
	if (e == 0)
		e = gcry_sexp_build(&data, NULL, "(data(flags raw)(value %b))",
		                    (int)n, digest);
	if (e == 0)
		e = gcry_pk_verify(sig, data, key);
	gcry_sexp_release(key);
	gcry_sexp_release(sig);
	gcry_sexp_release(data);
	if (e == 0)
		return 0;
	if (gcry_err_code(e) == GPG_ERR_NOT_SUPPORTED ||
	    gcry_err_code(e) == GPG_ERR_UNKNOWN_CURVE) {
		snprintf(why, whylen, "%s: %s", signer->info->algorithm_name,
		         gcry_strerror(e));
		return -2;
	}
	snprintf(why, whylen, "bad signature (libgcrypt: %s)",
	         gcry_strerror(e));
	return -1;
}

/* --- the choice ------------------------------------------------------------
 */

const char *tp_pgp_backend(const struct tp_pgp_key *k)
{
	switch (k->kind) {
	case TP_PGP_RSA:
	case TP_PGP_ED25519:
		return "GnuTLS";
	case TP_PGP_EC:
		return k->curve != GNUTLS_ECC_CURVE_INVALID ? "GnuTLS"
		       : k->gcry_curve != NULL              ? "libgcrypt"
		                                            : NULL;
	case TP_PGP_DSA:
		return "libgcrypt";
	default: /* Elgamal, Ed448, unknown curves, unread material */
		return NULL;
	}
}

int tp_pgp_verify_values(struct tp_pgp_key *signer, const struct tp_pgp_sig *s,
                         gnutls_digest_algorithm_t dig,
                         const unsigned char *digest, size_t dlen, char *why,
                         size_t whylen)
{
	const char *b = tp_pgp_backend(signer);

	if (b == NULL) {
		snprintf(why, whylen,
		         "signatures by %s keys are not supported (neither "
		         "GnuTLS nor libgcrypt verifies them here)",
		         signer->info->algorithm_name);
		return -2;
	}
	if (b[0] == 'G')
		return by_gnutls(signer, s, dig, digest, dlen, why, whylen);
	return by_gcrypt(signer, s, digest, dlen, why, whylen);
}
