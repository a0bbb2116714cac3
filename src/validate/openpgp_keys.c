/*
 * OpenPGP key packets, v4 (RFC 4880 section 5.5.2) and v6 (RFC 9580
 * section 5.5.2): public key material, unprotected secret material and
 * fingerprints.
 *
 * The material of every algorithm of RFC 9580 section 9.1 is read, so
 * that fingerprints (v4 SHA-1 over 0x99 || len2 || body, v6 SHA2-256 over
 * 0x9B || len4 || body, section 5.5.4) cover exactly the public part and
 * secret keys find their secret part: RSA n, e (section 5.5.5.1); DSA p,
 * q, g, y (5.5.5.2); Elgamal p, g, y (5.5.5.3); ECDSA, ECDH and legacy
 * EdDSA a curve OID and a point (5.5.5.4 to 5.5.5.6); the native X25519,
 * X448, Ed25519 and Ed448 octets (5.5.5.7 to 5.5.5.10).  Key material must
 * fill the packet exactly (else "overlong").  Unknown algorithms are kept
 * by their fingerprint only.
 */
#include <stdio.h>
#include <string.h>

#include <gnutls/gnutls.h>

#include "openpgp_int.h"

/* The curves of RFC 9580 section 9.2, and secp256k1, which GnuPG also
 * makes: GnuTLS's name for those it verifies, libgcrypt's for the others
 * (openpgp_verify.c). */
static const struct {
	unsigned char oid[10];
	size_t len;
	const char *name;
	gnutls_ecc_curve_t curve;
	const char *gcry;
} curves[] = {
        {{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07},
         8,
         "P-256",
         GNUTLS_ECC_CURVE_SECP256R1,
         NULL},
        {{0x2b, 0x81, 0x04, 0x00, 0x22},
         5,
         "P-384",
         GNUTLS_ECC_CURVE_SECP384R1,
         NULL},
        {{0x2b, 0x81, 0x04, 0x00, 0x23},
         5,
         "P-521",
         GNUTLS_ECC_CURVE_SECP521R1,
         NULL},
        {{0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x07},
         9,
         "brainpoolP256r1",
         GNUTLS_ECC_CURVE_INVALID,
         "brainpoolP256r1"},
        {{0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x0b},
         9,
         "brainpoolP384r1",
         GNUTLS_ECC_CURVE_INVALID,
         "brainpoolP384r1"},
        {{0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x0d},
         9,
         "brainpoolP512r1",
         GNUTLS_ECC_CURVE_INVALID,
         "brainpoolP512r1"},
        {{0x2b, 0x81, 0x04, 0x00, 0x0a},
         5,
         "secp256k1",
         GNUTLS_ECC_CURVE_INVALID,
         "secp256k1"},
        {{0x2b, 0x06, 0x01, 0x04, 0x01, 0xda, 0x47, 0x0f, 0x01},
         9,
         "Ed25519",
         GNUTLS_ECC_CURVE_ED25519,
         NULL},
        {{0x2b, 0x06, 0x01, 0x04, 0x01, 0x97, 0x55, 0x01, 0x05, 0x01},
         10,
         "Curve25519",
         GNUTLS_ECC_CURVE_INVALID,
         NULL},
};

/* Read a curve OID; the index into curves[], or -1 (unknown: -2). */
static int get_oid(const unsigned char **p, size_t *left)
{
	size_t n, i;

	if (*left < 1 || (*p)[0] == 0 || (*p)[0] == 0xff || *left - 1 < (*p)[0])
		return -1;
	n = (*p)[0];
	for (i = 0; i < sizeof(curves) / sizeof(curves[0]); i++)
		if (curves[i].len == n && memcmp(curves[i].oid, *p + 1, n) == 0)
			break;
	*p += 1 + n;
	*left -= 1 + n;
	return i < sizeof(curves) / sizeof(curves[0]) ? (int)i : -2;
}

const char *tlspool_openpgp_algorithm_name(int algorithm)
{
	static __thread char buf[32];

	switch (algorithm) {
	case TLSPOOL_OPENPGP_ALGO_RSA:
	case TLSPOOL_OPENPGP_ALGO_RSA_ENCRYPT_ONLY:
	case TLSPOOL_OPENPGP_ALGO_RSA_SIGN_ONLY:
		return "RSA";
	case TLSPOOL_OPENPGP_ALGO_ELGAMAL:
		return "ElGamal";
	case TLSPOOL_OPENPGP_ALGO_DSA:
		return "DSA";
	case TLSPOOL_OPENPGP_ALGO_ECDH:
		return "ECDH";
	case TLSPOOL_OPENPGP_ALGO_ECDSA:
		return "ECDSA";
	case TLSPOOL_OPENPGP_ALGO_EDDSA_LEGACY:
		return "EdDSA";
	case TLSPOOL_OPENPGP_ALGO_X25519:
		return "X25519";
	case TLSPOOL_OPENPGP_ALGO_X448:
		return "X448";
	case TLSPOOL_OPENPGP_ALGO_ED25519:
		return "Ed25519";
	case TLSPOOL_OPENPGP_ALGO_ED448:
		return "Ed448";
	}
	snprintf(buf, sizeof(buf), "algorithm-%d", algorithm);
	return buf;
}

/* The algorithms of RFC 9580 section 9.1, those whose material this
 * file reads or skips; the rest are kept by fingerprint alone. */
static int known_algo(int algo)
{
	switch (algo) {
	case TLSPOOL_OPENPGP_ALGO_RSA:
	case TLSPOOL_OPENPGP_ALGO_RSA_ENCRYPT_ONLY:
	case TLSPOOL_OPENPGP_ALGO_RSA_SIGN_ONLY:
	case TLSPOOL_OPENPGP_ALGO_ELGAMAL:
	case TLSPOOL_OPENPGP_ALGO_DSA:
	case TLSPOOL_OPENPGP_ALGO_ECDH:
	case TLSPOOL_OPENPGP_ALGO_ECDSA:
	case TLSPOOL_OPENPGP_ALGO_EDDSA_LEGACY:
	case TLSPOOL_OPENPGP_ALGO_X25519:
	case TLSPOOL_OPENPGP_ALGO_X448:
	case TLSPOOL_OPENPGP_ALGO_ED25519:
	case TLSPOOL_OPENPGP_ALGO_ED448:
		return 1;
	}
	return 0;
}

/* RSA n and e (RFC 9580 section 5.5.5.1): the octets used, or -1. */
static long rsa_material(struct tp_pgp_key *k, const unsigned char *p,
                         size_t left, tlspool_openpgp_keyinfo *info)
{
	const unsigned char *start = p;

	if (tp_pgp_get_mpi(&p, &left, &k->a) != 0 ||
	    tp_pgp_get_mpi(&p, &left, &k->b) != 0 || k->a.len == 0)
		return -1;
	k->kind = TP_PGP_RSA;
	snprintf(info->algorithm_name, sizeof(info->algorithm_name), "RSA-%zu",
	         k->a.len * 8 - (size_t)__builtin_clz(k->a.data[0]) + 24);
	return p - start;
}

/* DSA p, q, g, y (RFC 9580 section 5.5.5.2) and Elgamal p, g, y
 * (5.5.5.3): the octets used, or -1. */
static long dl_material(struct tp_pgp_key *k, const unsigned char *p,
                        size_t left, tlspool_openpgp_keyinfo *info)
{
	const unsigned char *start = p;
	int dsa = k->algo == TLSPOOL_OPENPGP_ALGO_DSA;

	if (tp_pgp_get_mpi(&p, &left, &k->p) != 0 ||
	    (dsa && tp_pgp_get_mpi(&p, &left, &k->q) != 0) ||
	    tp_pgp_get_mpi(&p, &left, &k->g) != 0 ||
	    tp_pgp_get_mpi(&p, &left, &k->y) != 0 || k->p.len == 0 ||
	    (dsa && k->q.len == 0))
		return -1;
	k->kind = dsa ? TP_PGP_DSA : TP_PGP_ELGAMAL;
	snprintf(info->algorithm_name, sizeof(info->algorithm_name), "%s-%zu",
	         tlspool_openpgp_algorithm_name(k->algo),
	         k->p.len * 8 - (size_t)__builtin_clz(k->p.data[0]) + 24);
	return p - start;
}

/*
 * ECDH, ECDSA and legacy EdDSA (RFC 9580 sections 5.5.5.4 to 5.5.5.6): a
 * curve OID and a point (ECDH also KDF parameters).  ECDSA points
 * (uncompressed, 0x04 || x || y) and native Ed25519 points are kept for
 * verifying and matching.  The octets used, or -1.
 */
static long ec_material(struct tp_pgp_key *k, const unsigned char *p,
                        size_t left, tlspool_openpgp_keyinfo *info)
{
	const unsigned char *start = p;
	tlspool_span pt;
	size_t kdf;
	int c;

	c = get_oid(&p, &left);
	if (c == -1 || tp_pgp_get_mpi(&p, &left, &pt) != 0)
		return -1;
	if (k->algo == TLSPOOL_OPENPGP_ALGO_ECDH) { /* KDF parameters */
		if (left < 1 || left - 1 < p[0])
			return -1;
		kdf = p[0];
		p += 1 + kdf;
		left -= 1 + kdf;
	}
	snprintf(info->algorithm_name, sizeof(info->algorithm_name), "%s-%s",
	         tlspool_openpgp_algorithm_name(k->algo),
	         c >= 0 ? curves[c].name : "unknown-curve");
	if (c < 0 || k->algo == TLSPOOL_OPENPGP_ALGO_ECDH)
		return p - start;
	if (k->algo == TLSPOOL_OPENPGP_ALGO_ECDSA &&
	    curves[c].curve != GNUTLS_ECC_CURVE_ED25519 &&
	    (curves[c].curve != GNUTLS_ECC_CURVE_INVALID ||
	     curves[c].gcry != NULL) &&
	    pt.len > 1 && pt.data[0] == 0x04 && (pt.len - 1) % 2 == 0) {
		k->kind = TP_PGP_EC;
		k->curve = curves[c].curve;
		k->gcry_curve = curves[c].gcry;
		k->point = pt;
		k->a.data = pt.data + 1;
		k->a.len = (pt.len - 1) / 2;
		k->b.data = pt.data + 1 + k->a.len;
		k->b.len = k->a.len;
	} else if (k->algo == TLSPOOL_OPENPGP_ALGO_EDDSA_LEGACY &&
	           curves[c].curve == GNUTLS_ECC_CURVE_ED25519 &&
	           pt.len == 33 && pt.data[0] == 0x40) {
		/* RFC 9580 section 5.5.5.5: native point, 0x40 prefix */
		k->kind = TP_PGP_ED25519;
		k->curve = GNUTLS_ECC_CURVE_ED25519;
		k->a.data = pt.data + 1;
		k->a.len = 32;
	}
	return p - start;
}

/*
 * The public key material of a key packet body (after version, creation
 * time, algorithm and, for v6, the material length): fills k and returns
 * the octets used, or -1 (malformed).
 */
static long key_material(struct tp_pgp_key *k, const unsigned char *p,
                         size_t left, tlspool_openpgp_keyinfo *info)
{
	long used;

	switch (k->algo) {
	case TLSPOOL_OPENPGP_ALGO_RSA:
	case TLSPOOL_OPENPGP_ALGO_RSA_ENCRYPT_ONLY:
	case TLSPOOL_OPENPGP_ALGO_RSA_SIGN_ONLY:
		used = rsa_material(k, p, left, info);
		break;
	case TLSPOOL_OPENPGP_ALGO_DSA:
	case TLSPOOL_OPENPGP_ALGO_ELGAMAL:
		used = dl_material(k, p, left, info);
		break;
	case TLSPOOL_OPENPGP_ALGO_ECDH:
	case TLSPOOL_OPENPGP_ALGO_ECDSA:
	case TLSPOOL_OPENPGP_ALGO_EDDSA_LEGACY:
		used = ec_material(k, p, left, info);
		break;
	case TLSPOOL_OPENPGP_ALGO_X25519:
	case TLSPOOL_OPENPGP_ALGO_ED25519:
		/* 32 native octets (RFC 9580 sections 5.5.5.7, 5.5.5.9) */
		if (left < 32)
			return -1;
		if (k->algo == TLSPOOL_OPENPGP_ALGO_ED25519) {
			k->kind = TP_PGP_ED25519;
			k->curve = GNUTLS_ECC_CURVE_ED25519;
			k->a.data = p;
			k->a.len = 32;
		}
		used = 32;
		break;
	case TLSPOOL_OPENPGP_ALGO_X448:
	case TLSPOOL_OPENPGP_ALGO_ED448:
		/* X448 56, Ed448 57 native octets: kept, not used */
		used = k->algo == TLSPOOL_OPENPGP_ALGO_X448 ? 56 : 57;
		if (left < (size_t)used)
			return -1;
		break;
	default: /* not reached: known_algo() comes first */
		return -1;
	}
	if (used >= 0 && info->algorithm_name[0] == '\0')
		snprintf(info->algorithm_name, sizeof(info->algorithm_name),
		         "%s", tlspool_openpgp_algorithm_name(k->algo));
	return used;
}

/* How the secret material of an algorithm is laid out (RFC 9580 section
 * 5.5.5): MPIs, or native octets. */
static void secret_layout(int algo, int *nmpi, size_t *native)
{
	*nmpi = 0;
	*native = 0;
	switch (algo) {
	case TLSPOOL_OPENPGP_ALGO_RSA:
	case TLSPOOL_OPENPGP_ALGO_RSA_ENCRYPT_ONLY:
	case TLSPOOL_OPENPGP_ALGO_RSA_SIGN_ONLY:
		*nmpi = 4; /* d, p, q, u */
		break;
	case TLSPOOL_OPENPGP_ALGO_X25519:
	case TLSPOOL_OPENPGP_ALGO_ED25519:
		*native = 32;
		break;
	case TLSPOOL_OPENPGP_ALGO_X448:
		*native = 56;
		break;
	case TLSPOOL_OPENPGP_ALGO_ED448:
		*native = 57;
		break;
	default: /* DSA, Elgamal x; ECDH, ECDSA, EdDSA the scalar */
		*nmpi = 1;
	}
}

/* The secret part of an unprotected secret key packet (RFC 9580 section
 * 5.5.3); p points after the public part.  0, or -1. */
static int key_secret(struct tp_pgp_key *k, const unsigned char *p, size_t left)
{
	const unsigned char *start, *q;
	unsigned sum = 0;
	size_t native;
	int i, nmpi;

	if (left < 1)
		return -1;
	if (p[0] != 0) {
		k->protected_secret = 1;
		return 0;
	}
	p++;
	left--;
	start = p;
	secret_layout(k->algo, &nmpi, &native);
	if (native > 0) {
		if (left < native)
			return -1;
		k->sec[0].data = p;
		k->sec[0].len = native;
		p += native;
		left -= native;
	}
	for (i = 0; i < nmpi; i++)
		if (tp_pgp_get_mpi(&p, &left, &k->sec[i]) != 0)
			return -1;
	if (k->version == 4) { /* two-octet checksum of the material */
		if (left != 2)
			return -1;
		for (q = start; q < p; q++)
			sum += *q;
		if ((sum & 0xffff) != (((unsigned)p[0] << 8) | p[1]))
			return -1;
	} else if (left != 0) { /* v6: no checksum when unprotected */
		return -1;
	}
	k->has_secret = 1;
	return 0;
}

void tp_pgp_hash_key(gnutls_hash_hd_t h, const struct tp_pgp_key *k)
{
	unsigned char hdr[5];

	if (k->version == 6) {
		hdr[0] = 0x9b;
		hdr[1] = (unsigned char)(k->publen >> 24);
		hdr[2] = (unsigned char)(k->publen >> 16);
		hdr[3] = (unsigned char)(k->publen >> 8);
		hdr[4] = (unsigned char)k->publen;
		gnutls_hash(h, hdr, 5);
	} else {
		hdr[0] = 0x99;
		hdr[1] = (unsigned char)(k->publen >> 8);
		hdr[2] = (unsigned char)k->publen;
		gnutls_hash(h, hdr, 3);
	}
	gnutls_hash(h, k->body, k->publen);
}

/* v4: SHA-1, v6: SHA2-256 (RFC 9580 section 5.5.4). */
static void fingerprint(const struct tp_pgp_key *k,
                        tlspool_openpgp_keyinfo *info)
{
	int v6 = k->version == 6;
	gnutls_hash_hd_t h;

	if (gnutls_hash_init(&h, v6 ? GNUTLS_DIG_SHA256 : GNUTLS_DIG_SHA1) < 0)
		return;
	tp_pgp_hash_key(h, k);
	gnutls_hash_deinit(h, info->fingerprint);
	info->fingerprint_len = v6 ? 32 : 20;
}

/* A key of an algorithm without support: a subkey is kept by its
 * fingerprint (1), a primary key is refused (-2). */
static int unsupported_algo(struct tp_pgp_key *k, size_t publen,
                            tlspool_openpgp_keyinfo *info, char *err,
                            size_t errlen)
{
	snprintf(info->algorithm_name, sizeof(info->algorithm_name), "%s",
	         tlspool_openpgp_algorithm_name(k->algo));
	tp_err(err, errlen, "public-key algorithm %d is not supported",
	       k->algo);
	k->publen = publen;
	if (k->tag == TP_PGP_TAG_PUBLIC_KEY || k->tag == TP_PGP_TAG_SECRET_KEY)
		return -2;
	fingerprint(k, info);
	snprintf(info->reason, sizeof(info->reason),
	         "public-key algorithm %d is not supported", k->algo);
	return 1;
}

/* What follows the public part: secret material in a secret key packet,
 * nothing in a public one.  0, or -1 with a message. */
static int after_public(struct tp_pgp_key *k, size_t left, char *err,
                        size_t errlen)
{
	const char *name = k->info->algorithm_name;

	if (k->tag == TP_PGP_TAG_SECRET_KEY ||
	    k->tag == TP_PGP_TAG_SECRET_SUBKEY) {
		if (key_secret(k, k->body + k->publen, left - k->publen) != 0) {
			tp_err(err, errlen,
			       "%s secret key: malformed secret "
			       "material or checksum",
			       name);
			return -1;
		}
	} else if (k->publen != left) {
		tp_err(err, errlen,
		       "%s key packet: overlong (%zu octets after the key "
		       "material)",
		       name, left - k->publen);
		return -1;
	}
	return 0;
}

int tp_pgp_parse_key(const struct tp_pgp_pkt *pk, struct tp_pgp_key *k,
                     tlspool_openpgp_keyinfo *info, char *err, size_t errlen)
{
	const unsigned char *p = pk->body;
	size_t left = pk->len, hl, declared;
	long used;

	k->tag = pk->tag;
	k->body = pk->body;
	k->info = info;
	if (left < 1)
		goto truncated;
	k->version = p[0];
	info->version = k->version;
	if (k->version != 4 && k->version != 6) {
		snprintf(info->reason, sizeof(info->reason),
		         "key version %d is not supported", k->version);
		tp_err(err, errlen,
		       "key version %d is not supported (only 4 and 6)",
		       k->version);
		return -2;
	}
	hl = k->version == 6 ? 10 : 6;
	if (left < hl)
		goto truncated;
	info->created = (time_t)tp_be32(p + 1);
	k->algo = p[5];
	info->algorithm = k->algo;
	/* v6 counts the octets of key material (RFC 9580 section 5.5.2.3);
	 * v4 leaves them to the packet length. */
	declared = k->version == 6 ? tp_be32(p + 6) : left - hl;
	if (declared > left - hl)
		goto truncated;
	if (!known_algo(k->algo))
		return unsupported_algo(k, hl + declared, info, err, errlen);
	used = key_material(k, p + hl, declared, info);
	if (used < 0)
		goto truncated;
	if (k->version == 6 && (size_t)used != declared) {
		tp_err(err, errlen,
		       "%s key: %zu octets of key material declared, %ld used",
		       info->algorithm_name, declared, used);
		return -1;
	}
	k->publen = hl + (size_t)used;
	fingerprint(k, info);
	return after_public(k, left, err, errlen);
truncated:
	tp_err(err, errlen, "key packet (tag %d): truncated key material",
	       pk->tag);
	return -1;
}

int tp_pgp_tls_usable(const struct tp_pgp_key *k)
{
	return k->kind == TP_PGP_RSA || k->kind == TP_PGP_ED25519 ||
	       (k->kind == TP_PGP_EC && k->curve != GNUTLS_ECC_CURVE_INVALID);
}

int tp_pgp_pubkey(struct tp_pgp_key *k, gnutls_pubkey_t *out)
{
	gnutls_datum_t a = {(unsigned char *)k->a.data, (unsigned)k->a.len};
	gnutls_datum_t b = {(unsigned char *)k->b.data, (unsigned)k->b.len};
	int r;

	if (k->pub != NULL) {
		*out = k->pub;
		return 0;
	}
	if (!tp_pgp_tls_usable(k))
		return GNUTLS_E_UNKNOWN_PK_ALGORITHM;
	if ((r = gnutls_pubkey_init(&k->pub)) < 0)
		return r;
	if (k->kind == TP_PGP_RSA)
		r = gnutls_pubkey_import_rsa_raw(k->pub, &a, &b);
	else if (k->kind == TP_PGP_EC)
		r = gnutls_pubkey_import_ecc_raw(k->pub, k->curve, &a, &b);
	else
		r = gnutls_pubkey_import_ecc_raw(k->pub, k->curve, &a, NULL);
	if (r < 0) {
		gnutls_pubkey_deinit(k->pub);
		k->pub = NULL;
		return r;
	}
	*out = k->pub;
	return 0;
}
