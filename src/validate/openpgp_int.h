/*
 * Internal declarations of the OpenPGP files of libtlspool-validate, one
 * concern each:
 *
 *   openpgp.c           tlspool_openpgp_parse(): the outline and the whole
 *                       key, calling the files below in turn
 *   openpgp_armor.c     ASCII armor (RFC 9580 section 6)
 *   openpgp_packets.c   packet framing, the packet grammar, MPIs
 *   openpgp_keys.c      key packets: material, secrets, fingerprints
 *   openpgp_sigs.c      signature packets: parsing, hashing, the checks
 *                       before and after the cryptography
 *   openpgp_verify.c    the cryptography: one backend per algorithm
 *                       (GnuTLS, libgcrypt where GnuTLS stops)
 *   openpgp_validity.c  self-signatures at a time: keys, User IDs, expiry,
 *                       the outcome of every signature
 *   openpgp_match.c     OPENPGPKEY matching and the secrets of local keys
 */
#ifndef TLSPOOL_OPENPGP_INT_H
#define TLSPOOL_OPENPGP_INT_H

#include <stdint.h>
#include <time.h>

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>

#include "internal.h"
#include "tlspool/openpgp.h"

static inline uint32_t tp_be32(const unsigned char *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | p[3];
}

/* --- ASCII armor (openpgp_armor.c) --------------------------------------- */

/* Does d begin (after white space) with an armor header line? */
int tp_pgp_is_armored(const unsigned char *d, size_t len);

/*
 * Decode the ASCII armor of one key block (RFC 9580 section 6.2): the
 * header line "-----BEGIN PGP PUBLIC KEY BLOCK-----" (or PRIVATE),
 * armor headers, a blank line, base64 data, an optional CRC24 line and
 * the matching tail line.  *out (malloc'd, *outlen octets) holds the
 * packets; *armor is TLSPOOL_OPENPGP_ARMOR_NO_CRC, _CRC_OK or _CRC_BAD
 * (a wrong CRC24 is not an error: section 6.1).  0, or -1 with errno
 * EBADMSG or ENOMEM and a message.
 */
int tp_pgp_dearmor(const unsigned char *d, size_t len, unsigned char **out,
                   size_t *outlen, int *armor, char *err, size_t errlen);

/* The CRC24 of RFC 9580 section 6.1. */
uint32_t tp_pgp_crc24(const unsigned char *d, size_t len);

/* --- packets (openpgp_packets.c) ------------------------------------------ */

/* Packet tags (RFC 9580 section 5) of transferable keys, and those that
 * are skipped wherever they appear. */
enum tp_pgp_tag {
	TP_PGP_TAG_SIGNATURE = 2,
	TP_PGP_TAG_SECRET_KEY = 5,
	TP_PGP_TAG_PUBLIC_KEY = 6,
	TP_PGP_TAG_SECRET_SUBKEY = 7,
	TP_PGP_TAG_MARKER = 10,
	TP_PGP_TAG_TRUST = 12,
	TP_PGP_TAG_USER_ID = 13,
	TP_PGP_TAG_PUBLIC_SUBKEY = 14,
	TP_PGP_TAG_USER_ATTRIBUTE = 17,
	TP_PGP_TAG_PADDING = 21,
	TP_PGP_TAG_FIRST_NONCRITICAL = 40, /* 40..63 (section 4.3) */
};

struct tp_pgp_pkt {
	int tag;
	const unsigned char *body;
	size_t len;
};

/* Where signatures attach: the primary key, a User ID, a User Attribute
 * (ignored) or a subkey (RFC 9580 section 10.1). */
enum tp_pgp_comp_kind {
	TP_PGP_COMP_PRIMARY,
	TP_PGP_COMP_UID,
	TP_PGP_COMP_ATTRIBUTE,
	TP_PGP_COMP_SUBKEY,
};

struct tp_pgp_comp {
	enum tp_pgp_comp_kind kind;
	size_t index;        /* its packet */
	size_t key;          /* a subkey: its place in tp_pgp.keys */
	size_t first, nsigs; /* packet indices of its signatures */
};

/* The packets of one transferable key, grouped by component. */
struct tp_pgp_packets {
	struct tp_pgp_pkt *pkt; /* trust packets left out */
	size_t npkt;
	struct tp_pgp_comp *comp; /* [0] the primary key */
	size_t ncomp;
};

/*
 * Split d into packets and group the signatures by the component they
 * follow.  0, or -1 with errno EBADMSG (malformed framing, packets out of
 * order) or ENOMEM and a message.  Free out with tp_pgp_packets_free().
 */
int tp_pgp_split(const unsigned char *d, size_t len, int allow_secret,
                 struct tp_pgp_packets *out, char *err, size_t errlen);
void tp_pgp_packets_free(struct tp_pgp_packets *pp);

/* Read a multiprecision integer (RFC 9580 section 3.2) at *p, without
 * its leading zero octets.  0, or -1 when it runs past left. */
int tp_pgp_get_mpi(const unsigned char **p, size_t *left, tlspool_span *out);

/* --- keys (openpgp_keys.c) ------------------------------------------------ */

/* Key material in the form it is compared and verified in. */
enum tp_pgp_kind {
	TP_PGP_NONE,
	TP_PGP_RSA,
	TP_PGP_EC, /* ECDSA: a NIST curve (GnuTLS) or one only libgcrypt has */
	TP_PGP_ED25519,
	TP_PGP_DSA,
	TP_PGP_ELGAMAL, /* encryption only: read, never used */
};

struct tp_pgp_key {
	int tag; /* TP_PGP_TAG_PUBLIC_KEY, _SECRET_KEY, ..._SUBKEY */
	int version, algo;
	const unsigned char *body; /* the packet body */
	size_t publen;             /* octets of its public part */
	enum tp_pgp_kind kind;
	gnutls_ecc_curve_t curve; /* TP_PGP_EC, TP_PGP_ED25519; INVALID for a
	                             curve that GnuTLS lacks */
	const char *gcry_curve;   /* libgcrypt's name of such a curve */
	tlspool_span a, b;        /* RSA n, e; EC x, y; Ed25519 a only */
	tlspool_span point;       /* EC: the point as the key holds it */
	tlspool_span p, q, g, y;  /* DSA; Elgamal p, g, y */
	int protected_secret;     /* secret packet with S2K usage != 0 */
	int has_secret;
	tlspool_span sec[4]; /* RSA d, p, q, u; the others [0] */
	gnutls_pubkey_t pub; /* made on first use */
	tlspool_openpgp_keyinfo *info;
};

struct tp_pgp {
	unsigned char *copy; /* the input, which the spans point into */
	size_t len;
	size_t nkeys; /* [0] the primary key */
	struct tp_pgp_key *keys;
};

/*
 * Parse a key packet into k and info.  0; 1 for a key of an algorithm
 * that is kept without material (a subkey); -1 malformed, -2 unsupported
 * (a version or, for a primary key, an algorithm), with a message.
 */
int tp_pgp_parse_key(const struct tp_pgp_pkt *pk, struct tp_pgp_key *k,
                     tlspool_openpgp_keyinfo *info, char *err, size_t errlen);

/* Hash the key as fingerprints and signatures see it (RFC 9580 section
 * 5.5.4): v4 0x99 || two-octet length, v6 0x9B || four-octet length,
 * then the public part of the packet body. */
void tp_pgp_hash_key(gnutls_hash_hd_t h, const struct tp_pgp_key *k);

/* A GnuTLS public key for k (cached in k).  0, or a GnuTLS error
 * (GNUTLS_E_UNKNOWN_PK_ALGORITHM for material that GnuTLS cannot take:
 * DSA and Elgamal here, curves it lacks). */
int tp_pgp_pubkey(struct tp_pgp_key *k, gnutls_pubkey_t *out);

/* Can k sign a TLS handshake through GnuTLS (RSA, ECDSA on a NIST curve,
 * Ed25519)?  A local key must. */
int tp_pgp_tls_usable(const struct tp_pgp_key *k);

/* --- signatures (openpgp_sigs.c) ------------------------------------------ */

/* Signature types (RFC 9580 section 5.2.1) of self-signatures. */
enum tp_pgp_sigtype {
	TP_PGP_SIGTYPE_CERT_GENERIC = 0x10, /* 0x10..0x13 certify a User ID */
	TP_PGP_SIGTYPE_CERT_PERSONA = 0x11,
	TP_PGP_SIGTYPE_CERT_CASUAL = 0x12,
	TP_PGP_SIGTYPE_CERT_POSITIVE = 0x13,
	TP_PGP_SIGTYPE_SUBKEY_BINDING = 0x18,
	TP_PGP_SIGTYPE_PRIMARY_BINDING = 0x19,
	TP_PGP_SIGTYPE_DIRECT_KEY = 0x1f,
	TP_PGP_SIGTYPE_KEY_REVOCATION = 0x20,
	TP_PGP_SIGTYPE_SUBKEY_REVOCATION = 0x28,
	TP_PGP_SIGTYPE_CERT_REVOCATION = 0x30,
};

/* Is t one of the four User ID certification types? */
static inline int tp_pgp_is_certification(int t)
{
	return t >= TP_PGP_SIGTYPE_CERT_GENERIC &&
	       t <= TP_PGP_SIGTYPE_CERT_POSITIVE;
}

struct tp_pgp_sig {
	int version, type, pkalgo, hashalgo;
	const unsigned char *hashed; /* version octet .. end of hashed area */
	size_t hashed_len;
	const unsigned char *salt;
	size_t saltlen;
	const unsigned char *left16;
	tlspool_span s[2]; /* RSA s; DSA/ECDSA/EdDSA r, s; Ed25519 [0] */
	time_t created;
	unsigned long sig_expires, key_expires; /* seconds, 0: never */
	unsigned flags;
	int has_created, has_flags, has_fpr, has_keyid, bad_critical;
	unsigned char fpr[32], keyid[8];
	size_t fprlen;
	const unsigned char *embedded;
	size_t embedded_len;
};

/* Parse a signature packet body.  0; -1 malformed, -2 a version or
 * public-key algorithm whose values are not read here (the fields before
 * them are set), with a reason. */
int tp_pgp_parse_sig(const unsigned char *p, size_t left, struct tp_pgp_sig *s,
                     char *why, size_t whylen);

/*
 * Verify signature s by signer over key (and sub, or uid) at time now,
 * as RFC 9580 section 5.2.4 says to hash it: GOOD, BAD, UNSUPPORTED,
 * EXPIRED, or UNCHECKED when its issuer is another key (not ours to
 * judge).  All but GOOD and UNCHECKED say why.
 */
tlspool_openpgp_sig_outcome
tp_pgp_verify(const struct tp_pgp_sig *s, struct tp_pgp_key *signer,
              const struct tp_pgp_key *key, const struct tp_pgp_key *sub,
              const tlspool_span *uid, time_t now, char *why, size_t whylen)
        __attribute__((warn_unused_result));

/* --- the cryptography (openpgp_verify.c) ---------------------------------- */

/*
 * Verify the values of s over the digest (dlen octets of algorithm dig)
 * with signer's key material.  One backend per algorithm: GnuTLS for
 * RSA, ECDSA on the NIST curves and Ed25519; libgcrypt for DSA and ECDSA
 * on the Brainpool curves and secp256k1.  0 good; -1 bad, -2 no backend
 * verifies this algorithm, with a reason.
 */
int tp_pgp_verify_values(struct tp_pgp_key *signer, const struct tp_pgp_sig *s,
                         gnutls_digest_algorithm_t dig,
                         const unsigned char *digest, size_t dlen, char *why,
                         size_t whylen);

/* "GnuTLS", "libgcrypt", or NULL when neither verifies k's signatures. */
const char *tp_pgp_backend(const struct tp_pgp_key *k);

/* --- validity (openpgp_validity.c) ---------------------------------------- */

/* Which keys and User IDs of cert count at time now: verifies every
 * signature once into cert->sigs (allocated here), then sets the valid
 * flags, expiry, key flags and reasons of the keys and User IDs.  0, or
 * -1 with errno ENOMEM. */
int tp_pgp_validity(tlspool_openpgp_cert *cert, const struct tp_pgp_packets *pp,
                    time_t now);

#endif
