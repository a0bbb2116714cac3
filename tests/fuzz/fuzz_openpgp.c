/*
 * libFuzzer target: OpenPGP packets from DNS (an OPENPGPKEY record's
 * rdata) or from a key file.  The parser, self-signature checks, the
 * matcher over the input as a record and the secret key reader all see
 * it.
 */
#include <stdint.h>
#include <time.h>

#include "tlspool/validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An Ed25519 SubjectPublicKeyInfo (RFC 8410): the peer's key. */
static const unsigned char spki[44] = {
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21,
        0x00, 0x19, 0xbf, 0x44, 0x09, 0x69, 0x84, 0xcd, 0xfe, 0x85, 0x41,
        0xba, 0xc1, 0x67, 0xdc, 0x3b, 0x96, 0xc8, 0x50, 0x86, 0xaa, 0x30,
        0xb6, 0xb6, 0xcb, 0x0c, 0x5c, 0x38, 0xad, 0x70, 0x31, 0x66, 0xe1};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	tlspool_openpgp_cert *cert = NULL;
	tlspool_openpgp_secret *sec = NULL;
	tlspool_openpgp_result *res = NULL;
	tlspool_span rec = {data, size};
	tlspool_openpgp_input in = {.rawkey = {spki, sizeof(spki)},
	                            .records = &rec,
	                            .nrecords = 1,
	                            .dns = TLSPOOL_DNS_SECURE,
	                            .identity = "john@example.test",
	                            .now = 2000000000};

	if (tlspool_openpgp_parse(data, size, 0, in.now, &cert, NULL, 0) == 0)
		tlspool_openpgp_free(cert);
	if (tlspool_openpgp_secret_key(data, size, in.now, &sec, NULL, 0) == 0)
		tlspool_openpgp_secret_free(sec);
	if (tlspool_openpgp_match(&in, &res, NULL, 0) == 0)
		tlspool_openpgp_result_free(res);
	return 0;
}
