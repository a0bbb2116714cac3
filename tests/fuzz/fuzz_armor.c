/*
 * libFuzzer target: ASCII-armored OpenPGP keys (RFC 9580 section 6), as a
 * key file may hold them.  The armor decoder sees the input alone, then
 * the parser (public and secret) and the secret key reader, which decode
 * it again and read the packets inside.
 */
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "openpgp_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	tlspool_openpgp_cert *cert = NULL;
	tlspool_openpgp_secret *sec = NULL;
	unsigned char *out = NULL;
	size_t outlen = 0;
	int armor = 0;
	char err[200];

	(void)tp_pgp_is_armored(data, size);
	if (tp_pgp_dearmor(data, size, &out, &outlen, &armor, err,
	                   sizeof(err)) == 0) {
		(void)tp_pgp_crc24(out, outlen);
		free(out);
	}
	if (tlspool_openpgp_parse(data, size, 1, 2000000000, &cert, NULL, 0) ==
	    0)
		tlspool_openpgp_free(cert);
	if (tlspool_openpgp_secret_key(data, size, 2000000000, &sec, NULL, 0) ==
	    0)
		tlspool_openpgp_secret_free(sec);
	return 0;
}
