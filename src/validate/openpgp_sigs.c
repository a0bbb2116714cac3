/*
 * OpenPGP signature packets, v4 and v6 (RFC 9580 section 5.2.3), and the
 * checks around their cryptography.
 *
 * Hashed subpackets give the creation time, signature and key expiration,
 * key flags and issuer; an unknown critical subpacket voids the signature
 * (section 5.2.3.7).  A signature is hashed as section 5.2.4 says (v6:
 * salt first) and its values verified by openpgp_verify.c.  MD5, SHA-1
 * and RIPEMD-160 signatures are not accepted (section 9.5 deprecates them
 * for signatures; a collision would forge a binding).
 *
 * The outcome of tp_pgp_verify(): UNCHECKED for another key's signature;
 * UNSUPPORTED for a version, public-key or hash algorithm not verified
 * here; BAD for a rule broken before the cryptography (algorithm of
 * another key, unknown critical subpacket, no creation time, made in the
 * future or before the key, a v6 salt of the wrong size) or values that do
 * not verify; EXPIRED for a signature that verifies but whose own
 * expiration time has passed; GOOD otherwise.
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

/* The signature values after the salt (RFC 9580 section 5.2.3): 0, -1
 * malformed, -2 an algorithm whose values are not read here. */
static int sig_values(struct tp_pgp_sig *s, const unsigned char *p, size_t left)
{
	switch (s->pkalgo) {
	case TLSPOOL_OPENPGP_ALGO_RSA:
	case TLSPOOL_OPENPGP_ALGO_RSA_SIGN_ONLY:
		if (tp_pgp_get_mpi(&p, &left, &s->s[0]) != 0)
			return -1;
		break;
	case TLSPOOL_OPENPGP_ALGO_DSA:
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
	case TLSPOOL_OPENPGP_ALGO_ED448: /* 114 native octets: read, and
	                                     reported as unsupported */
		if (left < 114)
			return -1;
		s->s[0].data = p;
		s->s[0].len = 114;
		left -= 114;
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
	if (left < 1) {
		snprintf(why, whylen, "empty signature packet");
		return -1;
	}
	if (p[0] != 4 && p[0] != 6) {
		s->version = p[0];
		s->type = left > 1 ? p[1] : 0;
		s->pkalgo = left > 2 ? p[2] : 0;
		s->hashalgo = left > 3 ? p[3] : 0;
		snprintf(why, whylen, "signature version %d is not supported",
		         p[0]);
		return -2;
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
		snprintf(why, whylen,
		         "signature algorithm %d (%s) is not supported",
		         s->pkalgo, tlspool_openpgp_algorithm_name(s->pkalgo));
		return -2;
	}
	if (r == 0)
		return 0;
bad:
	snprintf(why, whylen, "malformed version %d signature", s->version);
	return -1;
}

/* --- verification --------------------------------------------------------- */

/* The hash algorithms accepted for signatures (RFC 9580 section 9.5),
 * with the v6 salt size of each (section 9.5, table 23). */
static gnutls_digest_algorithm_t digest_of(int h, size_t *salt)
{
	*salt = 16;
	switch (h) { /* the IDs of the table in section 9.5 */
	case 8:
		return GNUTLS_DIG_SHA256;
	case 9:
		*salt = 24;
		return GNUTLS_DIG_SHA384;
	case 10:
		*salt = 32;
		return GNUTLS_DIG_SHA512;
	case 11:
		return GNUTLS_DIG_SHA224;
	case 12:
		return GNUTLS_DIG_SHA3_256;
	case 14:
		*salt = 32;
		return GNUTLS_DIG_SHA3_512;
	}
	return GNUTLS_DIG_UNKNOWN; /* MD5, SHA-1, RIPEMD-160, unknown */
}

static const char *hash_name(int h)
{
	switch (h) {
	case 1:
		return "MD5";
	case 2:
		return "SHA-1";
	case 3:
		return "RIPEMD-160";
	}
	return "unknown";
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

/* The checks before any cryptography: GOOD to go on, else the outcome
 * with a reason. */
static tlspool_openpgp_sig_outcome acceptable(const struct tp_pgp_sig *s,
                                              const struct tp_pgp_key *signer,
                                              time_t now, char *why,
                                              size_t whylen)
{
	const tlspool_openpgp_keyinfo *si = signer->info;
	size_t salt;

	if (digest_of(s->hashalgo, &salt) == GNUTLS_DIG_UNKNOWN) {
		snprintf(why, whylen,
		         "hash algorithm %d (%s) is not accepted (RFC 9580 "
		         "section 9.5)",
		         s->hashalgo, hash_name(s->hashalgo));
		return TLSPOOL_OPENPGP_SIG_UNSUPPORTED;
	}
	if (rsa_as_one(s->pkalgo) != rsa_as_one(signer->algo))
		snprintf(why, whylen,
		         "signature algorithm %d by a key of algorithm %d",
		         s->pkalgo, signer->algo);
	else if (s->bad_critical)
		snprintf(why, whylen, "unknown critical subpacket %d",
		         s->bad_critical);
	else if (!s->has_created)
		snprintf(why, whylen, "no signature creation time");
	else if (s->created > now)
		snprintf(why, whylen, "signature made in the future");
	else if (s->created < si->created)
		snprintf(why, whylen, "signature older than the key");
	else if (s->version != si->version)
		snprintf(why, whylen,
		         "version %d signature by a version %d key", s->version,
		         si->version);
	else if (s->version == 6 && s->saltlen != salt)
		snprintf(why, whylen,
		         "a salt of %zu octets, not %zu (RFC 9580 section "
		         "5.2.3)",
		         s->saltlen, salt);
	else
		return TLSPOOL_OPENPGP_SIG_GOOD;
	return TLSPOOL_OPENPGP_SIG_BAD;
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

tlspool_openpgp_sig_outcome
tp_pgp_verify(const struct tp_pgp_sig *s, struct tp_pgp_key *signer,
              const struct tp_pgp_key *key, const struct tp_pgp_key *sub,
              const tlspool_span *uid, time_t now, char *why, size_t whylen)
{
	tlspool_openpgp_sig_outcome o;
	gnutls_digest_algorithm_t dig;
	unsigned char digest[64];
	size_t salt;
	int r;

	if (!issued_by(s, signer->info)) {
		snprintf(why, whylen, "made by another key");
		return TLSPOOL_OPENPGP_SIG_UNCHECKED;
	}
	o = acceptable(s, signer, now, why, whylen);
	if (o != TLSPOOL_OPENPGP_SIG_GOOD)
		return o;
	if (tp_pgp_backend(signer) == NULL) { /* before any judgement */
		snprintf(why, whylen,
		         "signatures by %s keys are not supported (neither "
		         "GnuTLS nor libgcrypt verifies them here)",
		         signer->info->algorithm_name);
		return TLSPOOL_OPENPGP_SIG_UNSUPPORTED;
	}
	dig = digest_of(s->hashalgo, &salt);
	if (sig_digest(s, dig, key, sub, uid, digest) != 0) {
		snprintf(why, whylen, "hash algorithm %d unavailable",
		         s->hashalgo);
		return TLSPOOL_OPENPGP_SIG_UNSUPPORTED;
	}
	if (memcmp(s->left16, digest, 2) != 0) {
		snprintf(why, whylen, "bad signature (digest prefix differs)");
		return TLSPOOL_OPENPGP_SIG_BAD;
	}
	r = tp_pgp_verify_values(signer, s, dig, digest,
	                         gnutls_hash_get_len(dig), why, whylen);
	if (r == -2)
		return TLSPOOL_OPENPGP_SIG_UNSUPPORTED;
	if (r != 0)
		return TLSPOOL_OPENPGP_SIG_BAD;
	/* Only a signature that verifies can have expired. */
	if (s->sig_expires != 0 &&
	    (unsigned long long)s->created + s->sig_expires <=
	            (unsigned long long)now) {
		snprintf(why, whylen, "signature expired");
		return TLSPOOL_OPENPGP_SIG_EXPIRED;
	}
	return TLSPOOL_OPENPGP_SIG_GOOD;
}
