/*
 * Just enough DER (X.690 section 10) to find the two parts of a
 * certificate that DANE needs as bytes: the subjectPublicKeyInfo that
 * selector 1 hashes (RFC 6698 section 2.1.2), exactly as the peer encoded
 * it rather than as a library would re-encode it, and the tbsCertificate
 * that a "2 1 0" bare key must have signed (RFC 7671 section 5.2.2).
 * GnuTLS parses the certificate as well; this walker only frames.
 */
#include "internal.h"

/* The identifier octets walked here (X.690 section 8.1.2). */
enum {
	DER_INTEGER = 0x02,
	DER_SEQUENCE = 0x30,     /* constructed, universal 16 */
	DER_CONTEXT_0 = 0xa0,    /* [0] EXPLICIT, as tbsCertificate's version */
	DER_HIGH_TAG_MASK = 0x1f /* all ones: a multi-octet tag number */
};

/* Read one TLV at *p (left octets).  Definite, minimal lengths only. */
static int tlv(const unsigned char **p, size_t *left, unsigned char *tag,
               const unsigned char **val, size_t *vlen)
{
	const unsigned char *s = *p;
	size_t n = *left, i = 2, len, k;

	if (n < 2 || (s[0] & DER_HIGH_TAG_MASK) == DER_HIGH_TAG_MASK)
		return -1; /* truncated, or a high tag number: never here */
	len = s[1];
	if (len & 0x80) {
		k = len & 0x7f;
		/* No indefinite length (k 0), at most 4 length octets, and
		 * minimal: no leading zero, no long form below 128. */
		if (k == 0 || k > 4 || n - 2 < k || s[2] == 0)
			return -1;
		for (len = 0; k > 0; k--)
			len = (len << 8) | s[i++];
		if (len < 128)
			return -1;
	}
	if (len > n - i)
		return -1;
	*tag = s[0];
	*val = s + i;
	*vlen = len;
	*p = s + i + len;
	*left = n - i - len;
	return 0;
}

int tp_der_one_sequence(const unsigned char *der, size_t len)
{
	const unsigned char *v;
	unsigned char tag;
	size_t vlen;

	if (der == NULL || tlv(&der, &len, &tag, &v, &vlen) != 0 ||
	    tag != DER_SEQUENCE || len != 0)
		return -1;
	return 0;
}

int tp_der_cert_parts(const unsigned char *der, size_t len, tlspool_span *tbs,
                      tlspool_span *spki)
{
	const unsigned char *v, *start;
	unsigned char tag;
	size_t vlen, left;
	int i;

	/* Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm,
	 * signatureValue } (RFC 5280 section 4.1), nothing after it. */
	if (der == NULL || tlv(&der, &len, &tag, &v, &vlen) != 0 ||
	    tag != DER_SEQUENCE || len != 0)
		return -1;
	start = v;
	left = vlen;
	if (tlv(&v, &left, &tag, &der, &vlen) != 0 || tag != DER_SEQUENCE)
		return -1;
	tbs->data = start;
	tbs->len = (size_t)(v - start);
	/* tbsCertificate ::= SEQUENCE { [0] version OPTIONAL, serialNumber,
	 * signature, issuer, validity, subject, subjectPublicKeyInfo, ... } */
	v = der;
	left = vlen;
	start = v;
	if (tlv(&v, &left, &tag, &der, &vlen) != 0)
		return -1;
	if (tag == DER_CONTEXT_0) {
		start = v;
		if (tlv(&v, &left, &tag, &der, &vlen) != 0)
			return -1;
	}
	if (tag != DER_INTEGER)
		return -1;
	for (i = 0; i < 5; i++) {
		start = v;
		if (tlv(&v, &left, &tag, &der, &vlen) != 0 ||
		    tag != DER_SEQUENCE)
			return -1;
	}
	spki->data = start;
	spki->len = (size_t)(v - start);
	return 0;
}
