/*
 * libFuzzer target: TLSA/SMIMEA records in presentation form (RFC 6698
 * section 2.2, RFC 3597 section 5), as test suites and configurations
 * give them.  What parses is printed by tlspool_rr_format() and must read
 * back to the same rdata (a failure aborts); it then goes to the matcher,
 * its association data playing the peer's raw key, with the extra
 * certificates of TLSPOOL_DANE_EXTRA_CERTS taken from the record.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = {"www.example.test"};
	static unsigned char buf[70000], again[70000];
	static char line[2 * 70000 + 128];
	char *text = malloc(size + 1);
	tlspool_rr rr = {TLSPOOL_RR_TLSA, 60, 0, buf};
	tlspool_dane_input in;
	tlspool_dane_result *res = NULL;
	tlspool_tlsa t;
	int n, m;

	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	n = tlspool_tlsa_parse_text(text, buf, sizeof(buf), &t, NULL, 0);
	free(text);
	if (n < 0)
		return 0;
	rr.rdlen = (size_t)n;
	if (tlspool_rr_format(line, sizeof(line), "x.", &rr) < 0)
		abort();
	m = tlspool_tlsa_parse_text(strstr(line, " TLSA ") + 6, again,
	                            sizeof(again), NULL, NULL, 0);
	if (m != n || memcmp(buf, again, (size_t)n) != 0)
		abort();
	memset(&in, 0, sizeof(in));
	in.rawkey.data = t.data;
	in.rawkey.len = t.len;
	in.tlsa = &t;
	in.ntlsa = 1;
	in.dns = TLSPOOL_DNS_SECURE;
	in.names = names;
	in.nnames = 1;
	in.now = 1700000000;
	in.flags = TLSPOOL_DANE_EXTRA_CERTS | TLSPOOL_DANE_EE_NAME_CHECKS;
	in.purpose = TLSPOOL_DANE_PURPOSE_SERVER;
	if (tlspool_dane_match(&in, &res, NULL, 0) == 0)
		tlspool_dane_result_free(res);
	return 0;
}
