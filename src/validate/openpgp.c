/*
 * OpenPGP transferable public keys (RFC 4880 section 11.1, RFC 9580
 * section 10.1): tlspool_openpgp_parse() and the whole key.
 *
 * Outline of tlspool_openpgp_parse(), one file a step:
 * 0. ASCII armor (openpgp_armor.c), when the input is text.
 * 1. Framing and grammar (openpgp_packets.c): the packets, each
 *    signature grouped with the primary key, User ID, User Attribute or
 *    subkey it follows; anything out of order is an error.
 * 2. Keys (openpgp_keys.c): the primary key and each subkey, v4 or v6,
 *    with the material of the algorithms that can be matched and the
 *    fingerprint of every one.
 * 3. Signatures (openpgp_sigs.c): each signature parsed, hashed as
 *    RFC 9580 section 5.2.4 says and verified by GnuTLS or libgcrypt
 *    (openpgp_verify.c), its outcome listed in the result.
 * 4. Validity (openpgp_validity.c): which keys and User IDs count at the
 *    time given, from their newest valid self-signatures, revocations and
 *    expiration times.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>

#include "openpgp_int.h"

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
	free(cert->sigs);
	free(cert);
}

/* An empty key holding a copy of the input, or of the packets its armor
 * holds (step 0).  NULL with errno ENOMEM or EBADMSG and a message; on
 * every failure what was allocated is freed here, once. */
static tlspool_openpgp_cert *cert_new(const unsigned char *data, size_t len,
                                      char *err, size_t errlen)
{
	tlspool_openpgp_cert *cert;
	struct tp_pgp *g;

	cert = calloc(1, sizeof(*cert));
	if (cert == NULL || (g = calloc(1, sizeof(*g))) == NULL) {
		free(cert);
		tp_err(err, errlen, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	cert->internal = g;
	if (tp_pgp_is_armored(data, len)) {
		if (tp_pgp_dearmor(data, len, &g->copy, &g->len, &cert->armor,
		                   err, errlen) != 0) {
			int saved = errno;

			tlspool_openpgp_free(cert);
			errno = saved;
			return NULL;
		}
		return cert;
	}
	g->copy = malloc(len);
	if (g->copy == NULL) {
		tlspool_openpgp_free(cert);
		tp_err(err, errlen, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	memcpy(g->copy, data, len);
	g->len = len;
	return cert;
}

/* Step 2: the primary key and the subkeys, each subkey component told
 * its place in keys.  0, or -1 with errno and a message. */
static int read_keys(tlspool_openpgp_cert *cert, struct tp_pgp_packets *pp,
                     char *err, size_t errlen)
{
	struct tp_pgp *g = cert->internal;
	size_t i, nsub = 0, nuid = 0;
	int r;

	for (i = 1; i < pp->ncomp; i++) {
		nsub += pp->comp[i].kind == TP_PGP_COMP_SUBKEY;
		nuid += pp->comp[i].kind == TP_PGP_COMP_UID;
	}
	g->keys = calloc(nsub + 1, sizeof(*g->keys));
	cert->subkeys = calloc(nsub ? nsub : 1, sizeof(*cert->subkeys));
	cert->uids = calloc(nuid ? nuid : 1, sizeof(*cert->uids));
	if (g->keys == NULL || cert->subkeys == NULL || cert->uids == NULL) {
		tp_err(err, errlen, "out of memory");
		errno = ENOMEM;
		return -1;
	}
	r = tp_pgp_parse_key(&pp->pkt[0], &g->keys[0], &cert->primary, err,
	                     errlen);
	if (r < 0) {
		errno = r == -2 ? ENOTSUP : EBADMSG;
		return -1;
	}
	g->nkeys = 1;
	cert->secret = pp->pkt[0].tag == TP_PGP_TAG_SECRET_KEY;
	for (i = 1; i < pp->ncomp; i++) {
		struct tp_pgp_comp *c = &pp->comp[i];

		if (c->kind != TP_PGP_COMP_SUBKEY)
			continue;
		/* a subkey of an unknown version (-2) is kept, invalid */
		r = tp_pgp_parse_key(&pp->pkt[c->index], &g->keys[g->nkeys],
		                     &cert->subkeys[cert->nsubkeys], err,
		                     errlen);
		if (r == -1) {
			errno = EBADMSG;
			return -1;
		}
		c->key = g->nkeys++;
		cert->nsubkeys++;
	}
	return 0;
}

int tlspool_openpgp_parse(const unsigned char *data, size_t len,
                          int allow_secret, time_t now,
                          tlspool_openpgp_cert **out, char *err, size_t errlen)
{
	struct tp_pgp_packets pp = {0};
	tlspool_openpgp_cert *cert;
	struct tp_pgp *g;
	int saved;

	if (out != NULL)
		*out = NULL;
	if (data == NULL || out == NULL || len == 0) {
		tp_err(err, errlen, "no data");
		errno = EINVAL;
		return -1;
	}
	cert = cert_new(data, len, err, errlen);
	if (cert == NULL)
		return -1;
	g = cert->internal;
	if (tp_pgp_split(g->copy, g->len, allow_secret, &pp, err, errlen) !=
	            0 ||
	    read_keys(cert, &pp, err, errlen) != 0)
		goto fail;
	if (tp_pgp_validity(cert, &pp, now) != 0) {
		tp_err(err, errlen, "out of memory");
		goto fail;
	}
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	tp_pgp_packets_free(&pp);
	*out = cert;
	return 0;
fail:
	saved = errno;
	tp_pgp_packets_free(&pp);
	tlspool_openpgp_free(cert);
	errno = saved;
	return -1;
}
