/*
 * libFuzzer target: SRV rdata from the network (the _ldap._tcp records
 * that name a domain's directory).  The input is one record's rdata:
 * parsed (tlspool_srv_parse), printed (tlspool_rr_format), and a parsed
 * record is checked for what the parser promises (a target of LDH labels
 * ending in a dot, or "."); then the input cut into up to eight records
 * is put into RFC 2782 order with its own bytes as the random numbers.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t from_input(void *arg)
{
	const uint8_t **p = arg;
	uint32_t v = (uint32_t)(*p)[0] << 8 | (*p)[1];

	(*p)++;
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	tlspool_rr rr = {TLSPOOL_RR_SRV, 60, size, (unsigned char *)data};
	tlspool_srv s[8];
	const uint8_t *rnd = data;
	char buf[1024];
	size_t n = 0, i, len;

	tlspool_rr_format(buf, sizeof(buf), "_ldap._tcp.example.test.", &rr);
	if (tlspool_srv_parse(data, size, &s[0]) == 0) {
		len = strlen(s[0].target);
		if (len == 0 || s[0].target[len - 1] != '.' ||
		    (len > 1 && tlspool_check_domain(s[0].target, 1) != 0))
			abort();
	}
	/* up to 8 records of 7 octets ("\0" target) or more */
	for (i = 0; i + 7 <= size && n < 8; i += 7)
		if (tlspool_srv_parse(data + i, 7, &s[n]) == 0)
			n++;
	if (size >= 2 * 64 + 2)
		tlspool_srv_order(s, n, from_input, &rnd);
	return 0;
}
