/*
 * OpenPGP transferable public keys (RFC 4880 section 11.1, RFC 9580
 * section 10.1): packets, keys, User IDs, self-signatures.
 *
 * Outline of tlspool_openpgp_parse():
 * 1. Framing (RFC 9580 section 4.2): old-format headers with 1, 2 or 4
 *    length octets, new-format headers with one-, two- and five-octet
 *    lengths.  An indeterminate old-format length and new-format partial
 *    body lengths are refused: they exist for data packets, never for
 *    keys (section 4.2.1.4).  A length past the end is "truncated".
 * 2. Grammar: one primary key packet (tag 6; tag 5 for secrets), its
 *    signatures, then User ID (13) and User Attribute (17) packets and
 *    subkeys (14; 7) each with their signatures; trust packets (12) are
 *    skipped.  Anything else, or a second primary key, is an error.
 * 3. Keys, v4 (RFC 4880 section 5.5.2) and v6 (RFC 9580 section 5.5.2):
 *    RSA, ECDSA over P-256/384/521, EdDSA (legacy Ed25519) and Ed25519
 *    material is read for matching; other algorithms are kept only by
 *    their fingerprint (v4 SHA-1 over 0x99 || len2 || body, v6 SHA2-256
 *    over 0x9B || len4 || body, section 5.5.4).  Key material must fill
 *    the packet exactly (else "overlong").
 * 4. Signatures v4 and v6 (section 5.2.3): hashed subpackets give the
 *    creation time, signature and key expiration, key flags, issuer;
 *    an unknown critical subpacket voids the signature (section
 *    5.2.3.7).  A self-signature is hashed as section 5.2.4 says (v6:
 *    salt first) and verified with GnuTLS from the raw key material.
 *    MD5, SHA-1 and RIPEMD-160 signatures are not accepted (section 9.5
 *    deprecates them for signatures; a collision would forge a binding).
 * 5. Validity at time now: the primary key needs a valid self-signature
 *    (User ID certification or direct key) and no valid key revocation;
 *    it expires at creation + the key expiration time of its newest
 *    self-signature.  A User ID needs a valid certification and no valid
 *    certification revocation.  A subkey needs a valid binding signature
 *    (the newest gives its flags and expiration) and no valid subkey
 *    revocation; its signing flag counts only with a valid embedded
 *    primary key binding signature by the subkey (section 5.2.1).
 *    Nothing counts when the primary key does not.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "openpgp_int.h"

struct pkt {
	int tag;
	const unsigned char *body;
	size_t len;
};

struct sig {
	int version, type, pkalgo, hashalgo;
	const unsigned char *hashed; /* version octet .. end of hashed area */
	size_t hashed_len;
	const unsigned char *salt;
	size_t saltlen;
	const unsigned char *left16;
	tlspool_span s[2]; /* RSA s; ECDSA/EdDSA r, s; Ed25519 [0] */
	time_t created;
	unsigned long sig_expires, key_expires; /* seconds, 0: never */
	unsigned flags;
	int has_created, has_flags, has_fpr, has_keyid, bad_critical;
	unsigned char fpr[32], keyid[8];
	size_t fprlen;
	const unsigned char *embedded;
	size_t embedded_len;
};

static uint32_t be32(const unsigned char *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | p[3];
}

/* --- framing ------------------------------------------------------------ */

/* The packet at *off; 0, or -1 with a message. */
static int next_packet(const unsigned char *d, size_t len, size_t *off,
                       struct pkt *pk, char *err, size_t errlen)
{
	size_t o = *off, n, hl;
	unsigned char b;

	b = d[o];
	if (!(b & 0x80))
		goto bad_header;
	if (b & 0x40) { /* new format, RFC 9580 section 4.2.1 */
		pk->tag = b & 0x3f;
		if (len - o < 2)
			goto truncated;
		if (d[o + 1] < 192) {
			n = d[o + 1];
			hl = 2;
		} else if (d[o + 1] < 224) {
			if (len - o < 3)
				goto truncated;
			n = ((size_t)(d[o + 1] - 192) << 8) + d[o + 2] + 192;
			hl = 3;
		} else if (d[o + 1] == 255) {
			if (len - o < 6)
				goto truncated;
			n = be32(d + o + 2);
			hl = 6;
		} else {
			tp_err(err, errlen,
			       "packet at offset %zu (tag %d): partial body "
			       "lengths are not allowed in a key",
			       o, pk->tag);
			return -1;
		}
	} else { /* old format, RFC 9580 section 4.2.2 */
		pk->tag = (b >> 2) & 0x0f;
		switch (b & 3) {
		case 3:
			tp_err(err, errlen,
			       "packet at offset %zu (tag %d): indeterminate "
			       "length is not allowed in a key",
			       o, pk->tag);
			return -1;
		case 2:
			hl = 5;
			break;
		default:
			hl = (size_t)(b & 3) + 2;
		}
		if (len - o < hl)
			goto truncated;
		n = hl == 2   ? d[o + 1]
		    : hl == 3 ? ((size_t)d[o + 1] << 8) | d[o + 2]
		              : be32(d + o + 1);
	}
	if (n > len - o - hl)
		goto truncated;
	pk->body = d + o + hl;
	pk->len = n;
	*off = o + hl + n;
	return 0;
truncated:
	tp_err(err, errlen,
	       "packet at offset %zu: truncated (its length runs past the "
	       "%zu octets of data)",
	       o, len);
	return -1;
bad_header:
	tp_err(err, errlen, "offset %zu: 0x%02x is not a packet header", o, b);
	return -1;
}

/* --- keys --------------------------------------------------------------- */

static int get_mpi(const unsigned char **p, size_t *left, tlspool_span *out)
{
	size_t bits, n;

	if (*left < 2)
		return -1;
	bits = ((size_t)(*p)[0] << 8) | (*p)[1];
	n = (bits + 7) / 8;
	if (*left - 2 < n)
		return -1;
	out->data = *p + 2;
	out->len = n;
	/* leading zero octets carry nothing (RFC 9580 section 3.2) */
	while (out->len > 0 && out->data[0] == 0) {
		out->data++;
		out->len--;
	}
	*p += 2 + n;
	*left -= 2 + n;
	return 0;
}

static const struct {
	unsigned char oid[10];
	size_t len;
	const char *name;
	gnutls_ecc_curve_t curve;
} curves[] = {
        {{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07},
         8,
         "P-256",
         GNUTLS_ECC_CURVE_SECP256R1},
        {{0x2b, 0x81, 0x04, 0x00, 0x22},
         5,
         "P-384",
         GNUTLS_ECC_CURVE_SECP384R1},
        {{0x2b, 0x81, 0x04, 0x00, 0x23},
         5,
         "P-521",
         GNUTLS_ECC_CURVE_SECP521R1},
        {{0x2b, 0x06, 0x01, 0x04, 0x01, 0xda, 0x47, 0x0f, 0x01},
         9,
         "Ed25519",
         GNUTLS_ECC_CURVE_ED25519},
        {{0x2b, 0x06, 0x01, 0x04, 0x01, 0x97, 0x55, 0x01, 0x05, 0x01},
         10,
         "Curve25519",
         GNUTLS_ECC_CURVE_INVALID},
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
	case 1:
	case 2:
	case 3:
		return "RSA";
	case 16:
		return "ElGamal";
	case 17:
		return "DSA";
	case 18:
		return "ECDH";
	case 19:
		return "ECDSA";
	case 22:
		return "EdDSA";
	case 25:
		return "X25519";
	case 26:
		return "X448";
	case 27:
		return "Ed25519";
	case 28:
		return "Ed448";
	}
	snprintf(buf, sizeof(buf), "algorithm-%d", algorithm);
	return buf;
}

/*
 * The public key material of a key packet body (after version, creation
 * time, algorithm and, for v6, the material length): fills k and returns
 * the octets used, or -1 (malformed).  Unknown algorithms use everything
 * (v4) and are kept without material.
 */
static long key_material(struct tp_pgp_key *k, const unsigned char *p,
                         size_t left, tlspool_openpgp_keyinfo *info)
{
	const unsigned char *start = p;
	tlspool_span pt, kdf;
	int c;

	switch (k->algo) {
	case 1:
	case 2:
	case 3:
		if (get_mpi(&p, &left, &k->a) != 0 ||
		    get_mpi(&p, &left, &k->b) != 0 || k->a.len == 0)
			return -1;
		k->kind = TP_PGP_RSA;
		snprintf(info->algorithm_name, sizeof(info->algorithm_name),
		         "RSA-%zu",
		         k->a.len * 8 - (size_t)__builtin_clz(k->a.data[0]) +
		                 24);
		break;
	case 18:
	case 19:
	case 22:
		c = get_oid(&p, &left);
		if (c == -1 || get_mpi(&p, &left, &pt) != 0)
			return -1;
		if (k->algo == 18 && (left < 1 || left - 1 < p[0] ||
		                      (kdf.len = p[0], p += 1 + kdf.len,
		                       left -= 1 + kdf.len, 0)))
			return -1;
		snprintf(info->algorithm_name, sizeof(info->algorithm_name),
		         "%s-%s", tlspool_openpgp_algorithm_name(k->algo),
		         c >= 0 ? curves[c].name : "unknown-curve");
		if (c < 0 || k->algo == 18)
			break;
		if (k->algo == 19 &&
		    curves[c].curve != GNUTLS_ECC_CURVE_ED25519 &&
		    curves[c].curve != GNUTLS_ECC_CURVE_INVALID && pt.len > 1 &&
		    pt.data[0] == 0x04 && (pt.len - 1) % 2 == 0) {
			k->kind = TP_PGP_EC;
			k->curve = curves[c].curve;
			k->a.data = pt.data + 1;
			k->a.len = (pt.len - 1) / 2;
			k->b.data = pt.data + 1 + k->a.len;
			k->b.len = k->a.len;
		} else if (k->algo == 22 &&
		           curves[c].curve == GNUTLS_ECC_CURVE_ED25519 &&
		           pt.len == 33 && pt.data[0] == 0x40) {
			/* RFC 9580 section 5.5.5.5: native point, 0x40 prefix
			 */
			k->kind = TP_PGP_ED25519;
			k->curve = GNUTLS_ECC_CURVE_ED25519;
			k->a.data = pt.data + 1;
			k->a.len = 32;
		}
		break;
	case 25:
	case 27:
		if (left < 32)
			return -1;
		if (k->algo == 27) {
			k->kind = TP_PGP_ED25519;
			k->curve = GNUTLS_ECC_CURVE_ED25519;
			k->a.data = p;
			k->a.len = 32;
		}
		p += 32;
		left -= 32;
		break;
	case 26:
	case 28:
		if (left < (k->algo == 26 ? 56u : 57u))
			return -1;
		p += k->algo == 26 ? 56 : 57;
		break;
	default:
		p += left; /* unknown: the packet length bounds it */
	}
	if (info->algorithm_name[0] == '\0')
		snprintf(info->algorithm_name, sizeof(info->algorithm_name),
		         "%s", tlspool_openpgp_algorithm_name(k->algo));
	return p - start;
}

static int known_algo(int algo)
{
	return algo == 1 || algo == 2 || algo == 3 || algo == 16 ||
	       algo == 17 || (algo >= 18 && algo <= 19) || algo == 22 ||
	       (algo >= 25 && algo <= 28);
}

/* The secret part of an unprotected secret key packet (RFC 9580 section
 * 5.5.3); p points after the public part.  0, or -1. */
static int key_secret(struct tp_pgp_key *k, const unsigned char *p, size_t left)
{
	const unsigned char *start;
	unsigned sum = 0;
	int i, n;

	if (left < 1)
		return -1;
	if (p[0] != 0) {
		k->protected_secret = 1;
		return 0;
	}
	p++;
	left--;
	start = p;
	if (k->algo == 27 && k->version == 6) {
		if (left != 32)
			return -1;
	}
	if (k->algo == 27) {
		if (left < 32)
			return -1;
		k->sec[0].data = p;
		k->sec[0].len = 32;
		p += 32;
		left -= 32;
	} else {
		n = k->kind == TP_PGP_RSA ? 4 : 1;
		if (k->kind == TP_PGP_NONE)
			return 0; /* not ours to use */
		for (i = 0; i < n; i++)
			if (get_mpi(&p, &left, &k->sec[i]) != 0)
				return -1;
	}
	if (k->version == 4) { /* two-octet checksum of the MPIs */
		const unsigned char *q;

		if (left != 2)
			return -1;
		for (q = start; q < p; q++)
			sum += *q;
		if ((sum & 0xffff) != (((unsigned)p[0] << 8) | p[1]))
			return -1;
	} else if (left != 0) {
		return -1;
	}
	k->has_secret = 1;
	return 0;
}

static void fingerprint(struct tp_pgp_key *k, tlspool_openpgp_keyinfo *info)
{
	unsigned char hdr[5];
	gnutls_hash_hd_t h;
	int v6 = k->version == 6;

	if (gnutls_hash_init(&h, v6 ? GNUTLS_DIG_SHA256 : GNUTLS_DIG_SHA1) < 0)
		return;
	hdr[0] = v6 ? 0x9b : 0x99;
	if (v6) {
		hdr[1] = (unsigned char)(k->publen >> 24);
		hdr[2] = (unsigned char)(k->publen >> 16);
		hdr[3] = (unsigned char)(k->publen >> 8);
		hdr[4] = (unsigned char)k->publen;
	} else {
		hdr[1] = (unsigned char)(k->publen >> 8);
		hdr[2] = (unsigned char)k->publen;
	}
	gnutls_hash(h, hdr, v6 ? 5 : 3);
	gnutls_hash(h, k->body, k->publen);
	gnutls_hash_deinit(h, info->fingerprint);
	info->fingerprint_len = v6 ? 32 : 20;
}

/* Parse a key packet.  0; 1 for a key of a version or algorithm that is
 * kept without material (a subkey); -1 malformed, -2 unsupported, with a
 * message. */
static int parse_key(const struct pkt *pk, struct tp_pgp_key *k,
                     tlspool_openpgp_keyinfo *info, char *err, size_t errlen)
{
	const unsigned char *p = pk->body;
	size_t left = pk->len, hl;
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
		       "key version %d is not supported (only 4 "
		       "and 6)",
		       k->version);
		return -2;
	}
	hl = k->version == 6 ? 10 : 6;
	if (left < hl)
		goto truncated;
	info->created = (time_t)be32(p + 1);
	k->algo = p[5];
	info->algorithm = k->algo;
	if (!known_algo(k->algo)) {
		snprintf(info->algorithm_name, sizeof(info->algorithm_name),
		         "%s", tlspool_openpgp_algorithm_name(k->algo));
		tp_err(err, errlen, "public-key algorithm %d is not supported",
		       k->algo);
		if (k->version == 6) {
			if (be32(p + 6) > left - hl)
				goto truncated;
			k->publen = hl + be32(p + 6);
		} else {
			k->publen = left;
		}
		if (k->tag == 6 || k->tag == 5)
			return -2;
		fingerprint(k, info);
		snprintf(info->reason, sizeof(info->reason),
		         "public-key algorithm %d is not supported", k->algo);
		return 1;
	}
	if (k->version == 6 && be32(p + 6) > left - hl)
		goto truncated;
	used = key_material(k, p + hl,
	                    k->version == 6 ? be32(p + 6) : left - hl, info);
	if (used < 0)
		goto truncated;
	if (k->version == 6 && (size_t)used != be32(p + 6)) {
		tp_err(err, errlen,
		       "%s key: %zu octets of key material "
		       "declared, %ld used",
		       info->algorithm_name, (size_t)be32(p + 6), used);
		return -1;
	}
	k->publen = hl + (size_t)used;
	fingerprint(k, info);
	if (k->tag == 5 || k->tag == 7) {
		if (key_secret(k, p + k->publen, left - k->publen) != 0) {
			tp_err(err, errlen,
			       "%s secret key: malformed secret "
			       "material or checksum",
			       info->algorithm_name);
			return -1;
		}
	} else if (k->publen != left) {
		tp_err(err, errlen,
		       "%s key packet: overlong (%zu octets after the key "
		       "material)",
		       info->algorithm_name, left - k->publen);
		return -1;
	}
	return 0;
truncated:
	tp_err(err, errlen, "key packet (tag %d): truncated key material",
	       pk->tag);
	return -1;
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
	if (k->kind == TP_PGP_NONE)
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

/* --- signatures --------------------------------------------------------- */

/* The subpackets of one area (RFC 9580 section 5.2.3.7).  0 or -1. */
static int subpackets(struct sig *s, const unsigned char *p, size_t left,
                      int hashed)
{
	while (left > 0) {
		size_t n, hl;
		int type, crit;
		const unsigned char *v;

		if (p[0] < 192) {
			n = p[0];
			hl = 1;
		} else if (p[0] < 255) {
			if (left < 2)
				return -1;
			n = ((size_t)(p[0] - 192) << 8) + p[1] + 192;
			hl = 2;
		} else {
			if (left < 5)
				return -1;
			n = be32(p + 1);
			hl = 5;
		}
		if (n < 1 || n > left - hl)
			return -1;
		type = p[hl] & 0x7f;
		crit = p[hl] & 0x80;
		v = p + hl + 1;
		n--;
		p += hl + 1 + n;
		left -= hl + 1 + n;
		if (type == 16 && n == 8) { /* issuer key ID, either area */
			memcpy(s->keyid, v, 8);
			s->has_keyid = 1;
			continue;
		}
		if (type == 32 && n > 0) { /* embedded signature */
			s->embedded = v;
			s->embedded_len = n;
			continue;
		}
		if (!hashed)
			continue; /* unhashed data is not signed: ignored */
		switch (type) {
		case 2:
			if (n != 4)
				return -1;
			s->created = (time_t)be32(v);
			s->has_created = 1;
			break;
		case 3:
			if (n != 4)
				return -1;
			s->sig_expires = be32(v);
			break;
		case 9:
			if (n != 4)
				return -1;
			s->key_expires = be32(v);
			break;
		case 27:
			s->flags = n > 0 ? v[0] : 0;
			s->has_flags = 1;
			break;
		case 33:
			if (n != 21 && n != 33)
				return -1;
			s->fprlen = n - 1;
			memcpy(s->fpr, v + 1, n - 1);
			s->has_fpr = 1;
			break;
		case 4:
		case 5:
		case 6:
		case 7:
		case 11:
		case 12:
		case 20:
		case 21:
		case 22:
		case 23:
		case 24:
		case 25:
		case 26:
		case 28:
		case 29:
		case 30:
		case 31:
		case 34:
		case 35:
		case 37:
		case 39:
			break; /* understood well enough to ignore */
		default:
			if (crit)
				s->bad_critical = type;
		}
	}
	return 0;
}

/* Parse a signature packet body.  0, or -1 with a reason. */
static int parse_sig(const unsigned char *p, size_t left, struct sig *s,
                     char *why, size_t whylen)
{
	const unsigned char *start = p;
	size_t hl, ul, nl = 4;

	memset(s, 0, sizeof(*s));
	if (left < 1 || (p[0] != 4 && p[0] != 6)) {
		snprintf(why, whylen, "signature version %d is not supported",
		         left ? p[0] : -1);
		return -1;
	}
	s->version = p[0];
	nl = s->version == 6 ? 4 : 2;
	if (left < 4 + nl)
		goto bad;
	s->type = p[1];
	s->pkalgo = p[2];
	s->hashalgo = p[3];
	hl = nl == 4 ? be32(p + 4) : ((size_t)p[4] << 8) | p[5];
	if (hl > left - 4 - nl)
		goto bad;
	if (subpackets(s, p + 4 + nl, hl, 1) != 0)
		goto bad;
	s->hashed = start;
	s->hashed_len = 4 + nl + hl;
	p += 4 + nl + hl;
	left -= 4 + nl + hl;
	if (left < nl)
		goto bad;
	ul = nl == 4 ? be32(p) : ((size_t)p[0] << 8) | p[1];
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
	switch (s->pkalgo) {
	case 1:
	case 3:
		if (get_mpi(&p, &left, &s->s[0]) != 0)
			goto bad;
		break;
	case 19:
	case 22:
		if (get_mpi(&p, &left, &s->s[0]) != 0 ||
		    get_mpi(&p, &left, &s->s[1]) != 0)
			goto bad;
		break;
	case 27:
		if (left < 64)
			goto bad;
		s->s[0].data = p;
		s->s[0].len = 64;
		p += 64;
		left -= 64;
		break;
	default:
		snprintf(why, whylen, "signature algorithm %d is not supported",
		         s->pkalgo);
		return -1;
	}
	if (left != 0)
		goto bad;
	return 0;
bad:
	snprintf(why, whylen, "malformed version %d signature", s->version);
	return -1;
}

static gnutls_digest_algorithm_t digest_of(int h)
{
	switch (h) {
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

static void hash_key(gnutls_hash_hd_t h, const struct tp_pgp_key *k)
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

/* Pad a big-endian number to n octets into buf.  0 or -1. */
static int pad(const tlspool_span *v, unsigned char *buf, size_t n)
{
	if (v->len > n)
		return -1;
	memset(buf, 0, n - v->len);
	memcpy(buf + n - v->len, v->data, v->len);
	return 0;
}

/*
 * Verify signature s by signer over key (and sub, or uid) per RFC 9580
 * section 5.2.4.  1 valid; 0 invalid, with a reason; 2 not made by
 * signer (ignored).
 */
static int verify(const struct sig *s, struct tp_pgp_key *signer,
                  const struct tp_pgp_key *key, const struct tp_pgp_key *sub,
                  const tlspool_span *uid, time_t now, char *why, size_t whylen)
{
	const tlspool_openpgp_keyinfo *si = signer->info;
	gnutls_digest_algorithm_t dig = digest_of(s->hashalgo);
	unsigned char digest[64], trailer[6], u[5], rs[64];
	gnutls_datum_t hd, sd = {NULL, 0};
	gnutls_pubkey_t pub;
	gnutls_hash_hd_t h;
	int r, rv = 0;

	if (s->has_fpr && (s->fprlen != si->fingerprint_len ||
	                   memcmp(s->fpr, si->fingerprint, s->fprlen) != 0))
		return 2;
	if (s->has_keyid &&
	    memcmp(s->keyid,
	           si->version == 6 ? si->fingerprint : si->fingerprint + 12,
	           8) != 0)
		return 2;
	if (s->bad_critical) {
		snprintf(why, whylen, "unknown critical subpacket %d",
		         s->bad_critical);
		return 0;
	}
	if (!s->has_created) {
		snprintf(why, whylen, "no signature creation time");
		return 0;
	}
	if (s->created > now) {
		snprintf(why, whylen, "signature made in the future");
		return 0;
	}
	if (s->sig_expires != 0 &&
	    (unsigned long long)s->created + s->sig_expires <=
	            (unsigned long long)now) {
		snprintf(why, whylen, "signature expired");
		return 0;
	}
	if (s->created < si->created) {
		snprintf(why, whylen, "signature older than the key");
		return 0;
	}
	if (s->version != si->version) {
		snprintf(why, whylen,
		         "version %d signature by a version %d key", s->version,
		         si->version);
		return 0;
	}
	if (dig == GNUTLS_DIG_UNKNOWN) {
		snprintf(why, whylen, "hash algorithm %d not accepted",
		         s->hashalgo);
		return 0;
	}
	if ((s->pkalgo == 3 ? 1 : s->pkalgo) !=
	    (signer->algo == 3 ? 1 : signer->algo)) {
		snprintf(why, whylen,
		         "signature algorithm %d by a key of "
		         "algorithm %d",
		         s->pkalgo, signer->algo);
		return 0;
	}
	if (gnutls_hash_init(&h, dig) < 0) {
		snprintf(why, whylen, "hash algorithm %d unavailable",
		         s->hashalgo);
		return 0;
	}
	if (s->version == 6)
		gnutls_hash(h, s->salt, s->saltlen);
	hash_key(h, key);
	if (sub != NULL)
		hash_key(h, sub);
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
	hd.data = digest;
	hd.size = gnutls_hash_get_len(dig);
	if (memcmp(s->left16, digest, 2) != 0) {
		snprintf(why, whylen, "bad signature (digest prefix differs)");
		return 0;
	}
	if ((r = tp_pgp_pubkey(signer, &pub)) < 0) {
		snprintf(why, whylen, "unusable signing key: %s",
		         gnutls_strerror(r));
		return 0;
	}
	switch (signer->kind) {
	case TP_PGP_RSA: {
		/* An MPI drops leading zero octets; the signature that RSA
		 * verifies is as long as the modulus (RFC 8017 section 8.2.2),
		 * so one in 256 signatures needs its zero back. */
		unsigned char rsig[2048];
		size_t n = signer->a.len;

		if (n > sizeof(rsig) || pad(&s->s[0], rsig, n) != 0) {
			r = GNUTLS_E_PK_SIG_VERIFY_FAILED;
			break;
		}
		sd.data = rsig;
		sd.size = (unsigned)n;
		r = gnutls_pubkey_verify_hash2(
		        pub, gnutls_pk_to_sign(GNUTLS_PK_RSA, dig), 0, &hd,
		        &sd);
		break;
	}
	case TP_PGP_EC: {
		gnutls_datum_t rr = {(unsigned char *)s->s[0].data,
		                     (unsigned)s->s[0].len};
		gnutls_datum_t ss = {(unsigned char *)s->s[1].data,
		                     (unsigned)s->s[1].len};

		r = gnutls_encode_rs_value(&sd, &rr, &ss);
		if (r >= 0)
			r = gnutls_pubkey_verify_hash2(
			        pub, gnutls_pk_to_sign(GNUTLS_PK_ECDSA, dig), 0,
			        &hd, &sd);
		gnutls_free(sd.data);
		break;
	}
	default: /* Ed25519: the digest is the signed message */
		if (signer->algo == 27)
			memcpy(rs, s->s[0].data, 64);
		else if (pad(&s->s[0], rs, 32) != 0 ||
		         pad(&s->s[1], rs + 32, 32) != 0) {
			r = GNUTLS_E_PK_SIG_VERIFY_FAILED;
			break;
		}
		sd.data = rs;
		sd.size = 64;
		r = gnutls_pubkey_verify_data2(pub, GNUTLS_SIGN_EDDSA_ED25519,
		                               0, &hd, &sd);
	}
	if (r < 0)
		snprintf(why, whylen, "bad signature (%s)", gnutls_strerror(r));
	else
		rv = 1;
	return rv;
}

/* --- components and validity ---------------------------------------------- */

/* Where signatures attach: the primary key, a User ID, a User Attribute
 * (ignored) or a subkey. */
struct comp {
	int kind;            /* 0 primary, 13 uid, 17 attribute, 14 subkey */
	size_t index;        /* into uids or keys */
	size_t first, nsigs; /* packet indices of its signatures */
};

/* Evaluate one signature packet on a component.  Sets *valid. */
static void check_sig(const struct pkt *pk, struct sig *s, int *ok,
                      struct tp_pgp_key *signer, const struct tp_pgp_key *key,
                      const struct tp_pgp_key *sub, const tlspool_span *uid,
                      time_t now, char *why, size_t whylen)
{
	*ok = 0;
	if (parse_sig(pk->body, pk->len, s, why, whylen) != 0)
		return;
	*ok = verify(s, signer, key, sub, uid, now, why, whylen);
}

static void note(char *dst, size_t len, const char *what, const char *why)
{
	if (dst[0] == '\0')
		snprintf(dst, len, "%s: %.120s", what, why);
}

static void eval_primary(struct tp_pgp *g, const struct pkt *pk,
                         const struct comp *c, size_t ncomp, time_t now)
{
	struct tp_pgp_key *k = &g->keys[0];
	tlspool_openpgp_keyinfo *info = k->info;
	char why[160], uidnote[160] = "";
	time_t best = -1;
	unsigned long kexp = 0;
	int revoked = 0, ok;
	size_t i, j;
	struct sig s;

	for (i = 0; i < ncomp; i++) {
		if (c[i].kind != 0 && c[i].kind != 13)
			continue;
		for (j = c[i].first; j < c[i].first + c[i].nsigs; j++) {
			int t = pk[j].len >= 2 ? pk[j].body[1] : -1;
			tlspool_span uid;

			if (c[i].kind == 0 && t != 0x1f && t != 0x20)
				continue;
			if (c[i].kind == 13 && (t < 0x10 || t > 0x13))
				continue;
			uid.data = pk[c[i].index].body;
			uid.len = pk[c[i].index].len;
			check_sig(&pk[j], &s, &ok, k, k, NULL,
			          c[i].kind == 13 ? &uid : NULL, now, why,
			          sizeof(why));
			if (ok != 1) {
				if (ok == 0 && t != 0x20)
					note(uidnote, sizeof(uidnote),
					     "self-signature", why);
				continue;
			}
			if (t == 0x20) {
				revoked = 1;
				continue;
			}
			/* the newest self-signature speaks for the key; a
			 * direct key signature before User IDs' */
			if (s.created > best ||
			    (t == 0x1f && s.created == best)) {
				best = s.created;
				kexp = s.key_expires;
				info->flags = s.flags;
				info->has_flags = s.has_flags;
			}
		}
	}
	if (revoked) {
		snprintf(info->reason, sizeof(info->reason),
		         "the primary key is revoked");
		return;
	}
	if (best < 0) {
		snprintf(info->reason, sizeof(info->reason),
		         "no valid self-signature%s%.120s",
		         uidnote[0] ? " (" : "", uidnote);
		if (uidnote[0])
			strncat(info->reason, ")",
			        sizeof(info->reason) - strlen(info->reason) -
			                1);
		return;
	}
	if (kexp != 0) {
		info->expires = info->created + (time_t)kexp;
		if (info->expires <= now) {
			snprintf(info->reason, sizeof(info->reason),
			         "the primary key expired");
			return;
		}
	}
	info->valid = 1;
}

static void eval_uid(struct tp_pgp *g, const struct pkt *pk,
                     const struct comp *c, tlspool_openpgp_uid *u, time_t now)
{
	struct tp_pgp_key *k = &g->keys[0];
	tlspool_span uid = {pk[c->index].body, pk[c->index].len};
	int certified = 0, revoked = 0, ok;
	char why[160], first[160] = "";
	struct sig s;
	size_t j;

	snprintf(u->text, sizeof(u->text), "%.*s",
	         (int)(uid.len < 255 ? uid.len : 255), (const char *)uid.data);
	for (j = c->first; j < c->first + c->nsigs; j++) {
		int t = pk[j].len >= 2 ? pk[j].body[1] : -1;

		if ((t < 0x10 || t > 0x13) && t != 0x30)
			continue;
		check_sig(&pk[j], &s, &ok, k, k, NULL, &uid, now, why,
		          sizeof(why));
		if (ok == 0 && t != 0x30 && first[0] == '\0')
			snprintf(first, sizeof(first), "%s", why);
		if (ok != 1)
			continue;
		if (t == 0x30)
			revoked = 1;
		else
			certified = 1;
	}
	if (!k->info->valid)
		snprintf(u->reason, sizeof(u->reason),
		         "the primary key does not count");
	else if (revoked)
		snprintf(u->reason, sizeof(u->reason), "revoked");
	else if (!certified)
		snprintf(u->reason, sizeof(u->reason),
		         "no valid self-certification%s%.120s",
		         first[0] ? ": " : "", first);
	else
		u->valid = 1;
}

static void eval_subkey(struct tp_pgp *g, const struct pkt *pk,
                        const struct comp *c, time_t now)
{
	struct tp_pgp_key *k = &g->keys[0], *sk = &g->keys[c->index];
	tlspool_openpgp_keyinfo *info = sk->info;
	char why[160], first[160] = "";
	time_t best = -1;
	unsigned long kexp = 0;
	int revoked = 0, ok, backsig = 0;
	struct sig s, e;
	size_t j;

	for (j = c->first; j < c->first + c->nsigs; j++) {
		int t = pk[j].len >= 2 ? pk[j].body[1] : -1;

		if (t != 0x18 && t != 0x28)
			continue;
		check_sig(&pk[j], &s, &ok, k, k, sk, NULL, now, why,
		          sizeof(why));
		if (ok == 0 && t == 0x18 && first[0] == '\0')
			snprintf(first, sizeof(first), "%s", why);
		if (ok != 1)
			continue;
		if (t == 0x28) {
			revoked = 1;
		} else if (s.created > best) {
			best = s.created;
			kexp = s.key_expires;
			info->flags = s.flags;
			info->has_flags = s.has_flags;
			backsig = 0;
			if (s.embedded != NULL && sk->kind != TP_PGP_NONE &&
			    parse_sig(s.embedded, s.embedded_len, &e, why,
			              sizeof(why)) == 0 &&
			    e.type == 0x19 &&
			    verify(&e, sk, k, sk, NULL, now, why,
			           sizeof(why)) == 1)
				backsig = 1;
		}
	}
	if (info->reason[0] != '\0')
		return; /* unsupported version or algorithm */
	if (!k->info->valid) {
		snprintf(info->reason, sizeof(info->reason),
		         "the primary key does not count");
		return;
	}
	if (revoked) {
		snprintf(info->reason, sizeof(info->reason), "revoked");
		return;
	}
	if (best < 0) {
		snprintf(info->reason, sizeof(info->reason),
		         "no valid binding signature%s%.120s",
		         first[0] ? ": " : "", first);
		return;
	}
	if (kexp != 0) {
		info->expires = info->created + (time_t)kexp;
		if (info->expires <= now) {
			snprintf(info->reason, sizeof(info->reason), "expired");
			return;
		}
	}
	/* RFC 9580 section 5.2.1: a signing subkey's binding carries the
	 * subkey's own signature over it; without one, no signing. */
	if ((info->flags & TLSPOOL_OPENPGP_SIGN) && !backsig)
		info->flags &= ~(unsigned)TLSPOOL_OPENPGP_SIGN;
	info->valid = 1;
}

/* --- the whole key -------------------------------------------------------- */

void tlspool_openpgp_free(tlspool_openpgp_cert *cert)
{
	struct tp_pgp *g;
	size_t i;

	if (cert == NULL)
		return;
	g = cert->internal;
	if (g != NULL) {
		for (i = 0; i < g->nkeys; i++)
			gnutls_pubkey_deinit(g->keys[i].pub);
		if (g->copy != NULL) {
			gnutls_memset(g->copy, 0,
			              g->len); /* may hold secrets */
			free(g->copy);
		}
		free(g->keys);
		free(g);
	}
	free(cert->subkeys);
	free(cert->uids);
	free(cert);
}

/* An empty key holding a copy of the input; NULL for lack of memory.  On
 * every failure what was allocated is freed here, once. */
static tlspool_openpgp_cert *cert_new(const unsigned char *data, size_t len)
{
	tlspool_openpgp_cert *cert;
	struct tp_pgp *g;

	cert = calloc(1, sizeof(*cert));
	if (cert == NULL)
		return NULL;
	g = calloc(1, sizeof(*g));
	if (g == NULL) {
		free(cert);
		return NULL;
	}
	cert->internal = g;
	g->copy = malloc(len);
	if (g->copy == NULL) {
		tlspool_openpgp_free(cert);
		return NULL;
	}
	memcpy(g->copy, data, len);
	g->len = len;
	return cert;
}

/* Split the packets and group signatures by component. */
static int grammar(const unsigned char *d, size_t len, int allow_secret,
                   struct pkt **pkts, size_t *npkts, struct comp **comps,
                   size_t *ncomps, char *err, size_t errlen)
{
	size_t off = 0, n = 0, cap = 0, nc = 0, i;
	struct pkt *p = NULL, *grown;
	struct comp *c;

	while (off < len) {
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			grown = realloc(p, cap * sizeof(*p));
			if (grown == NULL)
				goto nomem;
			p = grown;
		}
		if (next_packet(d, len, &off, &p[n], err, errlen) != 0)
			goto bad;
		if (p[n].tag != 12) /* trust packets carry nothing for us */
			n++;
	}
	if (n == 0) {
		tp_err(err, errlen, "no packets");
		goto bad;
	}
	c = calloc(n, sizeof(*c));
	if (c == NULL)
		goto nomem;
	for (i = 0; i < n; i++) {
		int t = p[i].tag;

		if (i == 0 && t != 6 && !(allow_secret && t == 5)) {
			tp_err(err, errlen,
			       "the first packet (tag %d) is not a %skey", t,
			       allow_secret ? "" : "public ");
			free(c);
			goto bad;
		}
		if (i == 0 || t == 13 || t == 17 || t == 14 ||
		    (allow_secret && t == 7)) {
			c[nc].kind = i == 0 ? 0 : t == 7 ? 14 : t;
			c[nc].index = i;
			c[nc].first = i + 1;
			nc++;
		} else if (t == 2) {
			c[nc - 1].nsigs++;
		} else {
			tp_err(err, errlen,
			       "unexpected packet (tag %d) at "
			       "position %zu of a %s key",
			       t, i + 1,
			       allow_secret ? "transferable"
			                    : "transferable public");
			free(c);
			goto bad;
		}
	}
	*pkts = p;
	*npkts = n;
	*comps = c;
	*ncomps = nc;
	return 0;
nomem:
	free(p);
	errno = ENOMEM;
	tp_err(err, errlen, "out of memory");
	return -1;
bad:
	free(p);
	errno = EBADMSG;
	return -1;
}

int tlspool_openpgp_parse(const unsigned char *data, size_t len,
                          int allow_secret, time_t now,
                          tlspool_openpgp_cert **out, char *err, size_t errlen)
{
	tlspool_openpgp_cert *cert = NULL;
	struct pkt *pk = NULL;
	struct comp *c = NULL;
	struct tp_pgp *g;
	size_t npk = 0, nc = 0, i, nsub = 0, nuid = 0;
	int r;

	if (out != NULL)
		*out = NULL;
	if (data == NULL || out == NULL || len == 0) {
		tp_err(err, errlen, "no data");
		errno = EINVAL;
		return -1;
	}
	cert = cert_new(data, len);
	if (cert == NULL)
		goto nomem;
	g = cert->internal;
	if (grammar(g->copy, len, allow_secret, &pk, &npk, &c, &nc, err,
	            errlen) != 0)
		goto fail;
	for (i = 1; i < nc; i++) {
		nsub += c[i].kind == 14;
		nuid += c[i].kind == 13;
	}
	g->keys = calloc(nsub + 1, sizeof(*g->keys));
	cert->subkeys = calloc(nsub ? nsub : 1, sizeof(*cert->subkeys));
	cert->uids = calloc(nuid ? nuid : 1, sizeof(*cert->uids));
	if (g->keys == NULL || cert->subkeys == NULL || cert->uids == NULL)
		goto nomem;
	r = parse_key(&pk[0], &g->keys[0], &cert->primary, err, errlen);
	if (r < 0) {
		errno = r == -2 ? ENOTSUP : EBADMSG;
		goto fail_set;
	}
	g->nkeys = 1;
	cert->secret = pk[0].tag == 5;
	for (i = 1; i < nc; i++) {
		if (c[i].kind != 14)
			continue;
		r = parse_key(&pk[c[i].index], &g->keys[g->nkeys],
		              &cert->subkeys[cert->nsubkeys], err, errlen);
		if (r == -1) {
			errno = EBADMSG;
			goto fail_set;
		}
		c[i].index = g->nkeys++;
		cert->nsubkeys++;
	}
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	eval_primary(g, pk, c, nc, now);
	for (i = 1; i < nc; i++) {
		if (c[i].kind == 13)
			eval_uid(g, pk, &c[i], &cert->uids[cert->nuids++], now);
		else if (c[i].kind == 14)
			eval_subkey(g, pk, &c[i], now);
	}
	free(pk);
	free(c);
	*out = cert;
	return 0;
nomem:
	tp_err(err, errlen, "out of memory");
	errno = ENOMEM;
	goto fail_set;
fail:
	if (errno != ENOMEM)
		errno = EBADMSG;
fail_set:
	r = errno;
	free(pk);
	free(c);
	tlspool_openpgp_free(cert);
	errno = r;
	return -1;
}

int tlspool_openpgp_uid_names(const char *uid, const char *identity)
{
	const char *lt, *gt, *at;
	size_t n, local;

	if (uid == NULL || identity == NULL || identity[0] == '\0')
		return 0;
	n = strlen(identity);
	at = strrchr(identity, '@');
	local = at != NULL ? (size_t)(at - identity) + 1 : 0;
	for (lt = strchr(uid, '<'); lt != NULL; lt = strchr(lt + 1, '<')) {
		gt = strchr(lt + 1, '>');
		if (gt == NULL)
			return 0;
		/* the local part exactly (RFC 5321 section 2.4), the
		 * domain without case */
		if ((size_t)(gt - lt - 1) == n &&
		    memcmp(lt + 1, identity, local) == 0 &&
		    strncasecmp(lt + 1 + local, identity + local, n - local) ==
		            0)
			return 1;
	}
	return 0;
}
