/*
 * TLSA record generation (RFC 6698 section 2.1): the rdata that would
 * authenticate a certificate or raw public key.  The tests build their
 * zones with it, and its output is checked against danetool and
 * ldns-dane.
 */
#include <errno.h>
#include <string.h>

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "internal.h"

int tp_tlsa_assoc(const unsigned char *data, size_t len, uint8_t mtype,
                  unsigned char *out, size_t outlen)
{
	gnutls_digest_algorithm_t alg;
	size_t dlen;

	switch (mtype) {
	case TLSPOOL_DANE_MTYPE_FULL: /* the selected octets themselves */
		if (len > outlen)
			goto nospace;
		memcpy(out, data, len);
		return (int)len;
	case TLSPOOL_DANE_MTYPE_SHA2_256:
		alg = GNUTLS_DIG_SHA256;
		dlen = 32;
		break;
	case TLSPOOL_DANE_MTYPE_SHA2_512:
		alg = GNUTLS_DIG_SHA512;
		dlen = 64;
		break;
	default:
		errno = EINVAL;
		return -1;
	}
	if (dlen > outlen)
		goto nospace;
	if (gnutls_hash_fast(alg, data, len, out) < 0) {
		errno = ENOMEM;
		return -1;
	}
	return (int)dlen;
nospace:
	errno = ENOSPC;
	return -1;
}

/* The bytes that a selector picks from a DER certificate or raw key,
 * after checking that the input parses. */
static int select_bytes(const tlspool_span *der, int rawkey, uint8_t selector,
                        tlspool_span *out)
{
	gnutls_datum_t d = {(unsigned char *)der->data, (unsigned)der->len};
	gnutls_x509_crt_t crt = NULL;
	gnutls_pubkey_t key = NULL;
	tlspool_span tbs;
	int rv = -1;

	if (rawkey) {
		/* RFC 7250 section 3: the raw key is a SubjectPublicKeyInfo,
		 * which only selector SPKI(1) describes. */
		if (tp_der_one_sequence(der->data, der->len) != 0 ||
		    gnutls_pubkey_init(&key) < 0 ||
		    gnutls_pubkey_import(key, &d, GNUTLS_X509_FMT_DER) < 0)
			goto done;
		*out = *der;
		rv = 0;
		goto done;
	}
	if (gnutls_x509_crt_init(&crt) < 0 ||
	    gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_DER) < 0)
		goto done;
	if (selector == TLSPOOL_DANE_SELECTOR_CERT) {
		*out = *der;
		rv = 0;
	} else if (tp_der_cert_parts(der->data, der->len, &tbs, out) == 0) {
		rv = 0;
	}
done:
	if (key != NULL)
		gnutls_pubkey_deinit(key);
	if (crt != NULL)
		gnutls_x509_crt_deinit(crt);
	if (rv != 0)
		errno = EBADMSG;
	return rv;
}

int tlspool_tlsa_make(const tlspool_span *der, int rawkey, uint8_t usage,
                      uint8_t selector, uint8_t mtype, unsigned char *buf,
                      size_t buflen)
{
	tlspool_span sel;
	int n;

	if (der == NULL || der->data == NULL || der->len == 0 ||
	    der->len > 0xffffffu || buf == NULL ||
	    selector > TLSPOOL_DANE_SELECTOR_SPKI ||
	    mtype > TLSPOOL_DANE_MTYPE_SHA2_512 ||
	    (rawkey && selector != TLSPOOL_DANE_SELECTOR_SPKI)) {
		errno = EINVAL;
		return -1;
	}
	if (select_bytes(der, rawkey, selector, &sel) != 0)
		return -1;
	if (buflen < 3) {
		errno = ENOSPC;
		return -1;
	}
	buf[0] = usage;
	buf[1] = selector;
	buf[2] = mtype;
	n = tp_tlsa_assoc(sel.data, sel.len, mtype, buf + 3, buflen - 3);
	if (n < 0)
		return -1;
	/* RDATA is at most 65535 octets (RFC 1035 section 3.2.1). */
	if (n + 3 > 65535) {
		errno = ENOSPC;
		return -1;
	}
	return n + 3;
}
