/*
 * Internal declarations of the OpenPGP files (openpgp.c parses and checks
 * self-signatures; openpgp_match.c matches peers and extracts secrets).
 */
#ifndef TLSPOOL_OPENPGP_INT_H
#define TLSPOOL_OPENPGP_INT_H

#include <gnutls/abstract.h>

#include "internal.h"
#include "tlspool/openpgp.h"

/* Key material in the form both sides are compared in. */
enum tp_pgp_kind { TP_PGP_NONE, TP_PGP_RSA, TP_PGP_EC, TP_PGP_ED25519 };

struct tp_pgp_key {
	int tag; /* 5, 6, 7 or 14 */
	int version, algo;
	const unsigned char *body; /* the packet body */
	size_t publen;             /* octets of its public part */
	enum tp_pgp_kind kind;
	gnutls_ecc_curve_t curve; /* TP_PGP_EC, TP_PGP_ED25519 */
	tlspool_span a, b;        /* RSA n, e; EC x, y; Ed25519 a only */
	int protected_secret;     /* secret packet with S2K usage != 0 */
	int has_secret;
	tlspool_span sec[4]; /* RSA d, p, q, u; EC/Ed25519 [0] */
	gnutls_pubkey_t pub; /* made on first use */
	tlspool_openpgp_keyinfo *info;
};

struct tp_pgp {
	unsigned char *copy; /* the input, which the spans point into */
	size_t len;
	size_t nkeys; /* [0] the primary key */
	struct tp_pgp_key *keys;
};

/* A GnuTLS public key for k (cached in k).  0, or a GnuTLS error. */
int tp_pgp_pubkey(struct tp_pgp_key *k, gnutls_pubkey_t *out);

#endif
