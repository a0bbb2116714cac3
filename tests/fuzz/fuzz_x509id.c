/*
 * libFuzzer target: an X.509 certificate from a peer, as DER.  Identity
 * mapping (DN dc=/uid= RDNs, subjectAltName), the RFC 6125 name check,
 * the DER framing walker and the TLSA generator all read it.
 */
#include <stdint.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const refs[] = {"www.example.test", "example.test",
	                                   "a.b.example.test",
	                                   "john@example.test", "x."};
	tlspool_span cert = {data, size}, tbs, spki;
	unsigned char rd[3 + 64];
	char id[320];
	size_t i;

	tlspool_x509_identity(&cert, id, sizeof(id));
	for (i = 0; i < sizeof(refs) / sizeof(refs[0]); i++)
		tlspool_x509_names(&cert, refs[i]);
	tp_der_cert_parts(data, size, &tbs, &spki);
	tlspool_tlsa_make(&cert, 0, 3, 1, 1, rd, sizeof(rd));
	tlspool_tlsa_make(&cert, 1, 3, 1, 2, rd, sizeof(rd));
	return 0;
}
