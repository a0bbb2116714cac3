/*
 * Local identities with an OpenPGP key ([identity U@D] openpgp_key =
 * FILE): the secret of an unprotected `gpg --export-secret-keys` export
 * becomes a GnuTLS private key, which cred.c wraps in its on-the-fly
 * certificate.  The peer then proves the key against the OPENPGPKEY
 * record that publishes the same key (RFC 7929), so a GnuPG user needs
 * no other key format.
 *
 * Key material mapping (RFC 9580 section 5.5.5 to GnuTLS):
 *   RSA: OpenPGP keeps p < q and u = p^-1 mod q; GnuTLS wants
 *        u = q^-1 mod p (PKCS#1's qInv), so p and q are passed swapped
 *        and GnuTLS computes the CRT exponents.
 *   ECDSA: the point's x and y and the scalar.
 *   EdDSA/Ed25519: the 32-octet public key and the 32-octet seed (an
 *        MPI may have lost leading zero octets: padded back).
 */
#include <errno.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <string.h>
#include <time.h>

#include "cred.h"

static gnutls_datum_t dat(const tlspool_span *s)
{
	gnutls_datum_t d = {(unsigned char *)s->data, (unsigned)s->len};

	return d;
}

static gnutls_ecc_curve_t curve_of(const char *name)
{
	if (strcmp(name, "P-256") == 0)
		return GNUTLS_ECC_CURVE_SECP256R1;
	if (strcmp(name, "P-384") == 0)
		return GNUTLS_ECC_CURVE_SECP384R1;
	if (strcmp(name, "P-521") == 0)
		return GNUTLS_ECC_CURVE_SECP521R1;
	if (strcmp(name, "Ed25519") == 0)
		return GNUTLS_ECC_CURVE_ED25519;
	return GNUTLS_ECC_CURVE_INVALID;
}

static int import(gnutls_privkey_t key, const tlspool_openpgp_secret *s)
{
	unsigned char seed[32];
	gnutls_datum_t n, e, d, p, q, u, x, y, k;
	int r;

	if (s->curve == NULL) {
		n = dat(&s->n);
		e = dat(&s->e);
		d = dat(&s->d);
		p = dat(&s->q); /* swapped: see the top of this file */
		q = dat(&s->p);
		u = dat(&s->u);
		return gnutls_privkey_import_rsa_raw(key, &n, &e, &d, &p, &q,
		                                     &u, NULL, NULL);
	}
	x = dat(&s->x);
	y = dat(&s->y);
	k = dat(&s->k);
	if (curve_of(s->curve) == GNUTLS_ECC_CURVE_ED25519) {
		if (s->k.len > 32)
			return GNUTLS_E_INVALID_REQUEST;
		memset(seed, 0, sizeof(seed));
		memcpy(seed + 32 - s->k.len, s->k.data, s->k.len);
		k.data = seed;
		k.size = 32;
		r = gnutls_privkey_import_ecc_raw(key, GNUTLS_ECC_CURVE_ED25519,
		                                  &x, NULL, &k);
		gnutls_memset(seed, 0, sizeof(seed));
		return r;
	}
	return gnutls_privkey_import_ecc_raw(key, curve_of(s->curve), &x, &y,
	                                     &k);
}

int tp_openpgp_privkey(const struct tp_identity *id, gnutls_privkey_t *out)
{
	unsigned char *data;
	size_t len;
	tlspool_openpgp_secret *s = NULL;
	gnutls_privkey_t key = NULL;
	char err[200];
	int r;

	if (tp_cred_read(id, "openpgp_key", id->openpgp_key,
	                 TLSPOOL_FILE_SECRET, &data, &len) != 0)
		return -1;
	r = tlspool_openpgp_secret_key(data, len, time(NULL), &s, err,
	                               sizeof(err));
	tlspool_file_free(data, len); /* wipes the secret */
	if (r != 0)
		return tp_fail(EINVAL, "%s: openpgp_key %s: %s", id->name,
		               id->openpgp_key, err);
	if ((r = gnutls_privkey_init(&key)) < 0 || (r = import(key, s)) < 0) {
		tlspool_openpgp_secret_free(s);
		gnutls_privkey_deinit(key);
		return tp_fail(EINVAL, "%s: openpgp_key %s: %s", id->name,
		               id->openpgp_key, gnutls_strerror(r));
	}
	tlspool_openpgp_secret_free(s); /* wipes the copy */
	*out = key;
	return 0;
}
