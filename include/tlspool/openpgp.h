/*
 * tlspool/openpgp.h -- OpenPGP transferable public keys (RFC 4880,
 * RFC 9580) and their use as DNS-published user identities (OPENPGPKEY,
 * RFC 7929).
 *
 * tlspool_openpgp_parse() reads one transferable public (or unprotected
 * secret) key, binary or ASCII-armored, checks its self-signatures and
 * says what became of each signature and which keys and User IDs count
 * at a given time.  tlspool_openpgp_match() is the OPENPGPKEY
 * counterpart of tlspool_dane_match(): a pure function of the peer's key,
 * the OPENPGPKEY RRset with its DNSSEC verdict, the identity claimed and
 * the time.  Its verdicts are those of the DANE matcher.
 *
 * Included by <tlspool/validate.h>; stands alone on <tlspool/types.h>.
 * Free of GnuTLS types.  Thread-safe for distinct objects.  The library
 * never prints and never exits.
 */
#ifndef TLSPOOL_OPENPGP_H
#define TLSPOOL_OPENPGP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <tlspool/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Key flags (RFC 9580 section 5.2.3.29), from the self-signature. */
#define TLSPOOL_OPENPGP_CERTIFY         0x01
#define TLSPOOL_OPENPGP_SIGN            0x02
#define TLSPOOL_OPENPGP_ENCRYPT_COMMS   0x04
#define TLSPOOL_OPENPGP_ENCRYPT_STORAGE 0x08
#define TLSPOOL_OPENPGP_AUTH            0x20

/* Public-key algorithms (RFC 9580 section 9.1), as keys and secrets give
 * them in their algorithm field. */
enum tlspool_openpgp_algorithm {
	TLSPOOL_OPENPGP_ALGO_RSA = 1, /* RSA (Encrypt or Sign) */
	TLSPOOL_OPENPGP_ALGO_RSA_ENCRYPT_ONLY = 2,
	TLSPOOL_OPENPGP_ALGO_RSA_SIGN_ONLY = 3,
	TLSPOOL_OPENPGP_ALGO_ELGAMAL = 16, /* Elgamal (Encrypt-Only) */
	TLSPOOL_OPENPGP_ALGO_DSA = 17,
	TLSPOOL_OPENPGP_ALGO_ECDH = 18,
	TLSPOOL_OPENPGP_ALGO_ECDSA = 19,
	TLSPOOL_OPENPGP_ALGO_EDDSA_LEGACY = 22, /* EdDSALegacy: Ed25519 */
	TLSPOOL_OPENPGP_ALGO_X25519 = 25,
	TLSPOOL_OPENPGP_ALGO_X448 = 26,
	TLSPOOL_OPENPGP_ALGO_ED25519 = 27,
	TLSPOOL_OPENPGP_ALGO_ED448 = 28,
};

/* One key: the primary key or a subkey. */
typedef struct tlspool_openpgp_keyinfo {
	int version;                   /* 4 or 6 */
	int algorithm;                 /* TLSPOOL_OPENPGP_ALGO_* */
	char algorithm_name[32];       /* "RSA-3072", "EdDSA-Ed25519", ... */
	unsigned char fingerprint[32]; /* v4: SHA-1, v6: SHA2-256 */
	size_t fingerprint_len;        /* 20 or 32 */
	time_t created, expires;       /* expires 0: never */
	unsigned flags;                /* TLSPOOL_OPENPGP_*, 0 without */
	int has_flags;                 /* a key flags subpacket was present */
	int valid;                     /* counts at the time given */
	char reason[160];              /* why it does not count, or "" */
} tlspool_openpgp_keyinfo;

typedef struct tlspool_openpgp_uid {
	char text[256]; /* the User ID as UTF-8, cut at 255 octets */
	int valid;      /* validly self-certified, not revoked/expired */
	char reason[160];
} tlspool_openpgp_uid;

/* What became of one signature. */
typedef enum tlspool_openpgp_sig_outcome {
	TLSPOOL_OPENPGP_SIG_UNCHECKED = 0, /* not verified: another key made
	                                      it, or it is of no use here */
	TLSPOOL_OPENPGP_SIG_GOOD,          /* verified; counts at the time */
	TLSPOOL_OPENPGP_SIG_BAD,           /* does not verify, is malformed, or
	                                      breaks a rule (made in the future,
	                                      unknown critical subpacket, ...) */
	TLSPOOL_OPENPGP_SIG_UNSUPPORTED,   /* a version, public-key or hash
	                                      algorithm that is not verified
	                                      here: never counts */
	TLSPOOL_OPENPGP_SIG_EXPIRED,       /* verifies, but its own expiration
	                                      time has passed */
	TLSPOOL_OPENPGP_SIG_REVOKED,       /* verifies, but what it binds is
	                                      revoked */
} tlspool_openpgp_sig_outcome;

/* What a signature is on: the component it follows (RFC 9580 section
 * 10.1). */
enum tlspool_openpgp_target {
	TLSPOOL_OPENPGP_ON_KEY = 0, /* the primary key */
	TLSPOOL_OPENPGP_ON_UID,
	TLSPOOL_OPENPGP_ON_ATTRIBUTE,
	TLSPOOL_OPENPGP_ON_SUBKEY,
};

/* One signature of the key, in the order of the input. */
typedef struct tlspool_openpgp_sig {
	int version;         /* 4 or 6 (or the unsupported one found) */
	int type;            /* signature type, 0x10 .. 0x30 (section 5.2.1) */
	int algorithm;       /* TLSPOOL_OPENPGP_ALGO_* of the signer */
	int hash;            /* hash algorithm ID (section 9.5) */
	int target;          /* TLSPOOL_OPENPGP_ON_* */
	size_t target_index; /* which User ID (uids[]), subkey (subkeys[]) or
	                        User Attribute (counted apart) */
	int embedded;        /* a primary key binding signature embedded in the
	                        subkey binding signature listed before it */
	time_t created;      /* 0 when it has no creation time */
	unsigned char issuer[32]; /* issuer fingerprint, else key ID */
	size_t issuer_len;        /* 20 or 32, 8, or 0 when it names none */
	tlspool_openpgp_sig_outcome outcome;
	char reason[160]; /* why, for every outcome but GOOD */
} tlspool_openpgp_sig;

/* How the input was encoded (RFC 9580 section 6). */
enum tlspool_openpgp_armor {
	TLSPOOL_OPENPGP_ARMOR_NONE = 0, /* binary packets */
	TLSPOOL_OPENPGP_ARMOR_NO_CRC,   /* ASCII armor without CRC24 */
	TLSPOOL_OPENPGP_ARMOR_CRC_OK,   /* ASCII armor, its CRC24 right */
	TLSPOOL_OPENPGP_ARMOR_CRC_BAD,  /* ASCII armor, its CRC24 wrong:
	                                   ignored (section 6.1) */
};

/* A parsed transferable public key. */
typedef struct tlspool_openpgp_cert {
	tlspool_openpgp_keyinfo primary;
	size_t nsubkeys;
	tlspool_openpgp_keyinfo *subkeys;
	size_t nuids;
	tlspool_openpgp_uid *uids;
	int secret; /* parsed from secret key packets */
	size_t nsigs;
	tlspool_openpgp_sig *sigs; /* every signature, in order */
	int armor;                 /* TLSPOOL_OPENPGP_ARMOR_* */
	void *internal;            /* key material, for the matcher */
} tlspool_openpgp_cert;

/*
 * Parse one transferable public key (the rdata of one OPENPGPKEY record,
 * or the output of gpg --export; with allow_secret nonzero also of
 * gpg --export-secret-keys), binary or ASCII-armored (gpg --armor), and
 * check its self-signatures, key and signature expiration and
 * revocations at time now.  Marker, Padding and unknown non-critical
 * packets are skipped wherever they appear (RFC 9580 sections 4.3, 5.8,
 * 5.14).  Returns 0 with *out set (whose keys may still all be invalid:
 * see their reason, and the outcome of each signature); -1 with errno
 * EBADMSG (malformed: truncated or overlong packets, partial lengths, an
 * indeterminate old-format length, trailing data, packets out of order,
 * a packet of an unknown critical type, broken armor), ENOTSUP (a
 * primary key of an unknown version or algorithm), EINVAL or ENOMEM, and
 * a message in err.
 */
int tlspool_openpgp_parse(const unsigned char *data, size_t len,
                          int allow_secret, time_t now,
                          tlspool_openpgp_cert **out, char *err, size_t errlen);
void tlspool_openpgp_free(tlspool_openpgp_cert *cert);

/* "RSA", "ECDSA", "EdDSA", "Ed25519", "ECDH", ... or "algorithm-N"
 * (thread-local). */
const char *tlspool_openpgp_algorithm_name(int algorithm);

/* "good", "bad", "unsupported", "expired", "revoked", "unchecked", or
 * "unknown". */
const char *tlspool_openpgp_sig_outcome_name(tlspool_openpgp_sig_outcome o);

/* Does a User ID name identity ("user@domain" or "domain")?  RFC 7929
 * section 3: it contains "<identity>", compared
 * case-insensitively in the domain, with any text around it.  1 or 0. */
int tlspool_openpgp_uid_names(const char *uid, const char *identity);

/* --- the OPENPGPKEY matcher ------------------------------------------- */

typedef struct tlspool_openpgp_input {
	/* The peer: DER certificates as sent, [0] the end entity, whose
	 * SubjectPublicKeyInfo is compared; or, with nchain 0, an RFC 7250
	 * raw public key (DER SubjectPublicKeyInfo). */
	const tlspool_span *chain;
	size_t nchain;
	tlspool_span rawkey;
	/* The OPENPGPKEY RRset's rdata and what DNSSEC said about it. */
	const tlspool_span *records;
	size_t nrecords;
	tlspool_dns_verdict dns;
	const char *dns_detail;
	const char *identity; /* "user@domain" (or "domain") claimed */
	time_t now;
} tlspool_openpgp_input;

typedef struct tlspool_openpgp_step {
	size_t index; /* the record */
	int matched;
	char reason[240];
} tlspool_openpgp_step;

typedef struct tlspool_openpgp_result {
	tlspool_dane_verdict verdict; /* AUTHENTICATED, NO_MATCH, ... */
	tlspool_dns_verdict dns;
	int matched; /* index of the record, or -1 */
	/* The key that matched (primary or subkey) and the User ID. */
	unsigned char fingerprint[32];
	size_t fingerprint_len;
	int subkey; /* the matching key is a subkey */
	char uid[256];
	char reason[320];
	size_t nsteps;
	tlspool_openpgp_step *steps;
} tlspool_openpgp_result;

/*
 * Decide whether the peer's key is the one the OPENPGPKEY records publish
 * for the identity: equal key material (RSA n and e, the EC point, the
 * Ed25519 key) to the valid primary key or to a valid subkey that may sign
 * or authenticate, of a key that has a valid User ID naming the identity.
 * Only a secure RRset is looked at.  Returns 0 with *out set for every
 * verdict; -1 with errno EINVAL or ENOMEM.
 */
int tlspool_openpgp_match(const tlspool_openpgp_input *in,
                          tlspool_openpgp_result **out, char *err,
                          size_t errlen);
void tlspool_openpgp_result_free(tlspool_openpgp_result *res);

/* --- secret keys, for local identities -------------------------------- */

/* The key material of one unprotected secret key, as octet strings
 * (big-endian, no sign octet). */
typedef struct tlspool_openpgp_secret {
	int algorithm;           /* TLSPOOL_OPENPGP_ALGO_RSA, _ECDSA,
	                            _EDDSA_LEGACY or _ED25519 */
	const char *curve;       /* "P-256", ..., "Ed25519"; NULL: RSA */
	tlspool_span n, e;       /* RSA public */
	tlspool_span d, p, q, u; /* RSA secret: p < q, u = p^-1 mod q */
	tlspool_span x, y;       /* EC point; Ed25519: x only */
	tlspool_span k;          /* EC secret scalar, Ed25519 seed */
	unsigned char fingerprint[32];
	size_t fingerprint_len;
	int subkey;
	void *internal;
} tlspool_openpgp_secret;

/*
 * From a gpg --export-secret-keys export of an unprotected key, binary or
 * armored: the secret of the first valid key that may authenticate and
 * can sign a TLS handshake (RSA, ECDSA on P-256/384/521, Ed25519; the
 * primary key first, then subkeys), else of the valid primary key if it
 * can.  Returns 0 with *out set, or -1 with errno EBADMSG, ENOTSUP,
 * EACCES (the key is protected by a passphrase), ENOKEY (no usable key)
 * or ENOMEM.  The secret is wiped by tlspool_openpgp_secret_free().
 */
int tlspool_openpgp_secret_key(const unsigned char *data, size_t len,
                               time_t now, tlspool_openpgp_secret **out,
                               char *err, size_t errlen);
void tlspool_openpgp_secret_free(tlspool_openpgp_secret *sec);

#ifdef __cplusplus
}
#endif
#endif
