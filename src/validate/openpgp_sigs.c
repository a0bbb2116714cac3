/*
 * OpenPGP signature packets, v4 and v6 (RFC 9580 section 5.2.3), and their
 * verification.
 *
 * Hashed subpackets give the creation time, signature and key expiration,
 * key flags and issuer; an unknown critical subpacket voids the signature
 * (section 5.2.3.7).  A signature is hashed as section 5.2.4 says (v6:
 * salt first) and verified with GnuTLS from the raw key material.  MD5,
 * SHA-1 and RIPEMD-160 signatures are not accepted (section 9.5 deprecates
 * them for signatures; a collision would forge a binding).
 */
#include <stdio.h>
#include <string.h>

#include <gnutls/gnutls.h>

#include "openpgp_int.h"

/* Signature subpacket types (RFC 9580 section 5.2.3.7) that carry what
 * this library uses. */
enum subpacket {
	SUB_CREATION_TIME = 2,
	SUB_SIG_EXPIRATION = 3,
	SUB_KEY_EXPIRATION = 9,
	SUB_ISSUER_KEY_ID = 16,
	SUB_KEY_FLAGS = 27,
	SUB_EMBEDDED_SIGNATURE = 32,
	SUB_ISSUER_FINGERPRINT = 33,
};

/* --- parsing -------------------------------------------------------------- */

/* The length of the subpacket at p (RFC 9580 section 5.2.3.7): *hl octets
 * of header, then *n octets of type and body.  0 or -1. */
static int subpacket_len(const unsigned char *p, size_t left, size_t *hl,
                         size_t *n)
{
	if (p[0] < 192) {
		*n = p[0];
		*hl = 1;
	} else if (p[0] < 255) {
		if (left < 2)
			return -1;
		*n = ((size_t)(p[0] - 192) << 8) + p[1] + 192;
		*hl = 2;
	} else {
		if (left < 5)
			return -1;
		*n = tp_be32(p + 1);
		*hl = 5;
	}
	return *n < 1 || *n > left - *hl ? -1 : 0;
}

/* Subpacket types understood well enough to ignore, so that a critical
 * one does not void the signature (RFC 9580 section 5.2.3.7). */
static int ignorable(int type)
{
	static const unsigned char known[] = {
	        4,  /* Exportable Certification */
	        5,  /* Trust Signature */
	        6,  /* Regular Expression */
	        7,  /* Revocable */
	        11, /* Preferred Symmetric Ciphers for v1 SEIPD */
	        12, /* Revocation Key (deprecated) */
	        20, /* Notation Data */
	        21, /* Preferred Hash Algorithms */
	        22, /* Preferred Compression Algorithms */
	        23, /* Key Server Preferences */
	        24, /* Preferred Key Server */
	        25, /* Primary User ID */
	        26, /* Policy URI */
	        28, /* Signer's User ID */
	        29, /* Reason for Revocation */
	        30, /* Features */
	        31, /* Signature Target */
	        34, /* Preferred AEAD Algorithms (draft; reserved) */
	        35, /* Intended Recipient Fingerprint */
	        37, /* Attested Certifications (draft; reserved) */
	        39, /* Preferred AEAD Ciphersuites */
	};

	return memchr(known, type, sizeof(known)) != NULL;
}

/* One subpacket of the hashed area, type and criticality bit apart.  0,
 * or -1 when its length is wrong for its type. */
static int hashed_subpacket(struct tp_pgp_sig *s, int type, int crit,
                            const unsigned char *v, size_t n)
{
	switch (type) {
	case SUB_CREATION_TIME:
		if (n != 4)
			return -1;
		s->created = (time_t)tp_be32(v);
		s->has_created = 1;
		break;
	case SUB_SIG_EXPIRATION:
		if (n != 4)
			return -1;
		s->sig_expires = tp_be32(v);
		break;
	case SUB_KEY_EXPIRATION:
		if (n != 4)
			return -1;
		s->key_expires = tp_be32(v);
		break;
	case SUB_KEY_FLAGS:
		s->flags = n > 0 ? v[0] : 0;
		s->has_flags = 1;
		break;
	case SUB_ISSUER_FINGERPRINT: /* a version octet, then v4 20, v6 32 */
		if (n != 21 && n != 33)
			return -1;
		s->fprlen = n - 1;
		memcpy(s->fpr, v + 1, n - 1);
		s->has_fpr = 1;
		break;
	default:
		if (crit && !ignorable(type))
			s->bad_critical = type;
	}
	return 0;
}

/* The subpackets of one area.  0 or -1. */
static int subpackets(struct tp_pgp_sig *s, const unsigned char *p, size_t left,
                      int hashed)
{
	while (left > 0) {
		size_t n, hl;
		int type, crit;
		const unsigned char *v;

		if (subpacket_len(p, left, &hl, &n) != 0)
			return -1;
		type = p[hl] & 0x7f;
		crit = p[hl] & 0x80;
		v = p + hl + 1;
		n--;
		p += hl + 1 + n;
		left -= hl + 1 + n;
		if (type == SUB_ISSUER_KEY_ID && n == 8) { /* either area */
			memcpy(s->keyid, v, 8);
			s->has_keyid = 1;
		} else if (type == SUB_EMBEDDED_SIGNATURE && n > 0) {
			s->embedded = v;
			s->embedded_len = n;
		} else if (hashed &&
		           hashed_subpacket(s, type, crit, v, n) != 0) {
			return -1;
		} /* unhashed data is not signed: ignored */
	}
	return 0;
}

/* The signature values after the salt: 0, -1 malformed, -2 an algorithm
 * without support. */
static int sig_values(struct tp_pgp_sig *s, const unsigned char *p, size_t left)
{
	switch (s->pkalgo) {
	case TLSPOOL_OPENPGP_ALGO_RSA:
	case TLSPOOL_OPENPGP_ALGO_RSA_SIGN_ONLY:
		if (tp_pgp_get_mpi(&p, &left, &s->s[0]) != 0)
			return -1;
		break;
	case TLSPOOL_OPENPGP_ALGO_ECDSA:
	case TLSPOOL_OPENPGP_ALGO_EDDSA_LEGACY:
		if (tp_pgp_get_mpi(&p, &left, &s->s[0]) != 0 ||
		    tp_pgp_get_mpi(&p, &left, &s->s[1]) != 0)
			return -1;
		break;
	case TLSPOOL_OPENPGP_ALGO_ED25519:
		if (left < 64)
			return -1;
		s->s[0].data = p;
		s->s[0].len = 64;
		left -= 64;
		break;
	default:
		return -2;
	}
	return left == 0 ? 0 : -1;
}

int tp_pgp_parse_sig(const unsigned char *p, size_t left, struct tp_pgp_sig *s,
                     char *why, size_t whylen)
{
	const unsigned char *start = p;
	size_t hl, ul, nl;
	int r;

	memset(s, 0, sizeof(*s));
	if (left < 1 || (p[0] != 4 && p[0] != 6)) {
		snprintf(why, whylen, "signature version %d is not supported",
		         left ? p[0] : -1);
		return -1;
	}
	s->version = p[0];
	nl = s->version == 6 ? 4 : 2; /* octets of the area lengths */
	if (left < 4 + nl)
		goto bad;
	s->type = p[1];
	s->pkalgo = p[2];
	s->hashalgo = p[3];
	hl = nl == 4 ? tp_be32(p + 4) : ((size_t)p[4] << 8) | p[5];
	if (hl > left - 4 - nl || subpackets(s, p + 4 + nl, hl, 1) != 0)
		goto bad;
	s->hashed = start;
	s->hashed_len = 4 + nl + hl;
	p += 4 + nl + hl;
	left -= 4 + nl + hl;
	if (left < nl)
		goto bad;
	ul = nl == 4 ? tp_be32(p) : ((size_t)p[0] << 8) | p[1];
	if (ul > left - nl || subpackets(s, p + nl, ul, 0) != 0)
		goto bad;
	p += nl + ul;
	left -= nl + ul;
	if (left < 2)
		goto bad;
	s->left16 = p;
	p += 2;
	left -= 2;
	if (s->version == 6) {
		if (left < 1 || left - 1 < p[0])
			goto bad;
		s->salt = p + 1;
		s->saltlen = p[0];
		left -= 1 + p[0];
		p += 1 + p[0];
	}
	r = sig_values(s, p, left);
	if (r == -2) {
		snprintf(why, whylen, "signature algorithm %d is not supported",
		         s->pkalgo);
		return -1;
	}
	if (r == 0)
		return 0;
bad:
	snprintf(why, whylen, "malformed version %d signature", s->version);
	return -1;
}

/* --- verification --------------------------------------------------------- */

/* The hash algorithms accepted for signatures (RFC 9580 section 9.5). */
static gnutls_digest_algorithm_t digest_of(int h)
{
	switch (h) { /* the IDs of the table in section 9.5 */
	case 8:
		return GNUTLS_DIG_SHA256;
	case 9:
		return GNUTLS_DIG_SHA384;
	case 10:
		return GNUTLS_DIG_SHA512;
	case 11:
		return GNUTLS_DIG_SHA224;
	case 12:
		return GNUTLS_DIG_SHA3_256;
	case 14:
		return GNUTLS_DIG_SHA3_512;
	}
	return GNUTLS_DIG_UNKNOWN; /* MD5, SHA-1, RIPEMD-160, unknown */
}

/* Pad a big-endian number to n octets into buf.  0 or -1. */
static int pad(const tlspool_span *v, unsigned char *buf, size_t n)
{
	if (v->len > n)
		return -1;
	memset(buf, 0, n - v->len);
	memcpy(buf + n - v->len, v->data, v->len);
	return 0;
}

/* Do the issuer subpackets, where present, name signer? */
static int issued_by(const struct tp_pgp_sig *s,
                     const tlspool_openpgp_keyinfo *si)
{
	/* a v4 key ID is the low 64 bits of the fingerprint, a v6 one
	 * the high 64 (RFC 9580 section 5.5.4) */
	const unsigned char *id =
	        si->version == 6 ? si->fingerprint : si->fingerprint + 12;

	if (s->has_fpr && (s->fprlen != si->fingerprint_len ||
	                   memcmp(s->fpr, si->fingerprint, s->fprlen) != 0))
		return 0;
	return !s->has_keyid || memcmp(s->keyid, id, 8) == 0;
}

/* RSA Sign-Only is RSA for verifying. */
static int rsa_as_one(int algo)
{
	return algo == TLSPOOL_OPENPGP_ALGO_RSA_SIGN_ONLY
	               ? TLSPOOL_OPENPGP_ALGO_RSA
	               : algo;
}

/* The checks before any cryptography: 0, or -1 with a reason. */
static int acceptable(const struct tp_pgp_sig *s,
                      const struct tp_pgp_key *signer, time_t now, char *why,
                      size_t whylen)
{
	const tlspool_openpgp_keyinfo *si = signer->info;

	if (s->bad_critical)
		snprintf(why, whylen, "unknown critical subpacket %d",
		         s->bad_critical);
	else if (!s->has_created)
		snprintf(why, whylen, "no signature creation time");
	else if (s->created > now)
		snprintf(why, whylen, "signature made in the future");
	else if (s->sig_expires != 0 &&
	         (unsigned long long)s->created + s->sig_expires <=
	                 (unsigned long long)now)
		snprintf(why, whylen, "signature expired");
	else if (s->created < si->created)
		snprintf(why, whylen, "signature older than the key");
	else if (s->version != si->version)
		snprintf(why, whylen,
		         "version %d signature by a version %d key", s->version,
		         si->version);
	else if (digest_of(s->hashalgo) == GNUTLS_DIG_UNKNOWN)
		snprintf(why, whylen, "hash algorithm %d not accepted",
		         s->hashalgo);
	else if (rsa_as_one(s->pkalgo) != rsa_as_one(signer->algo))
		snprintf(why, whylen,
		         "signature algorithm %d by a key of algorithm %d",
		         s->pkalgo, signer->algo);
	else
		return 0;
	return -1;
}

/* The digest that s signs (RFC 9580 section 5.2.4): v6 salt, the key, the
 * subkey or User ID, the hashed part and the trailer.  0, or -1. */
static int sig_digest(const struct tp_pgp_sig *s, gnutls_digest_algorithm_t dig,
                      const struct tp_pgp_key *key,
                      const struct tp_pgp_key *sub, const tlspool_span *uid,
                      unsigned char digest[64])
{
	unsigned char trailer[6], u[5];
	gnutls_hash_hd_t h;

	if (gnutls_hash_init(&h, dig) < 0)
		return -1;
	if (s->version == 6)
		gnutls_hash(h, s->salt, s->saltlen);
	tp_pgp_hash_key(h, key);
	if (sub != NULL)
		tp_pgp_hash_key(h, sub);
	if (uid != NULL) {
		u[0] = 0xb4;
		u[1] = (unsigned char)(uid->len >> 24);
		u[2] = (unsigned char)(uid->len >> 16);
		u[3] = (unsigned char)(uid->len >> 8);
		u[4] = (unsigned char)uid->len;
		gnutls_hash(h, u, 5);
		gnutls_hash(h, uid->data, uid->len);
	}
	gnutls_hash(h, s->hashed, s->hashed_len);
	trailer[0] = (unsigned char)s->version;
	trailer[1] = 0xff;
	trailer[2] = (unsigned char)(s->hashed_len >> 24);
	trailer[3] = (unsigned char)(s->hashed_len >> 16);
	trailer[4] = (unsigned char)(s->hashed_len >> 8);
	trailer[5] = (unsigned char)s->hashed_len;
	gnutls_hash(h, trailer, 6);
	gnutls_hash_deinit(h, digest);
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

enum tp_pgp_sig_result
tp_pgp_verify(const struct tp_pgp_sig *s, struct tp_pgp_key *signer,
              const struct tp_pgp_key *key, const struct tp_pgp_key *sub,
              const tlspool_span *uid, time_t now, char *why, size_t whylen)
{
	gnutls_digest_algorithm_t dig = digest_of(s->hashalgo);
	unsigned char digest[64];
	gnutls_datum_t hd;
	gnutls_pubkey_t pub;
	int r;

	if (!issued_by(s, signer->info))
		return TP_PGP_SIG_OTHER_SIGNER;
	if (acceptable(s, signer, now, why, whylen) != 0)
		return TP_PGP_SIG_INVALID;
	if (sig_digest(s, dig, key, sub, uid, digest) != 0) {
		snprintf(why, whylen, "hash algorithm %d unavailable",
		         s->hashalgo);
		return TP_PGP_SIG_INVALID;
	}
	hd.data = digest;
	hd.size = gnutls_hash_get_len(dig);
	if (memcmp(s->left16, digest, 2) != 0) {
		snprintf(why, whylen, "bad signature (digest prefix differs)");
		return TP_PGP_SIG_INVALID;
	}
	if ((r = tp_pgp_pubkey(signer, &pub)) < 0) {
		snprintf(why, whylen, "unusable signing key: %s",
		         gnutls_strerror(r));
		return TP_PGP_SIG_INVALID;
	}
	if (signer->kind == TP_PGP_RSA)
		r = verify_rsa(pub, signer, s, dig, &hd);
	else if (signer->kind == TP_PGP_EC)
		r = verify_ecdsa(pub, s, dig, &hd);
	else
		r = verify_ed25519(pub, signer, s, &hd);
	if (r < 0) {
		snprintf(why, whylen, "bad signature (%s)", gnutls_strerror(r));
		return TP_PGP_SIG_INVALID;
	}
	return TP_PGP_SIG_VALID;
}
