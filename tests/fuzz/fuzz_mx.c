/*
 * libFuzzer target: MX rdata from the network (the MX hosts of a mail
 * domain, RFC 7672).  The input is one record's rdata: parsed
 * (tlspool_mx_parse) and printed (tlspool_rr_format); a parsed record is
 * checked for what the parser promises (an exchange of LDH labels ending
 * in a dot, or "." for a null MX, RFC 7505).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	tlspool_rr rr = {TLSPOOL_RR_MX, 60, size, (unsigned char *)data};
	char buf[1024], name[256];
	uint16_t pref;
	size_t len;

	tlspool_rr_format(buf, sizeof(buf), "example.test.", &rr);
	if (tlspool_mx_parse(data, size, &pref, name) == 0) {
		len = strlen(name);
		if (len == 0 || name[len - 1] != '.' ||
		    (len > 1 && tlspool_check_domain(name, 1) != 0) ||
		    pref != (uint16_t)(data[0] << 8 | data[1]))
			abort();
	}
	return 0;
}
