/*
 * libFuzzer target: TLSA rdata from the network.  The input is one
 * record's rdata: parsed (tlspool_tlsa_parse), printed
 * (tlspool_rr_format), and handed to the matcher, whose "2 0 0" and
 * "2 1 0" handling parses the association data as a certificate or key.
 * The association data also plays the peer, as a certificate chain
 * (twice: also with the options on, extra certificates from the record,
 * DANE-EE name checks, a purpose) and as a raw public key, so that the
 * peer-side parsers see the same bytes.
 */
#include <stdint.h>
#include <string.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void match(const tlspool_tlsa *t, const tlspool_span *chain,
                  size_t nchain, const tlspool_span *rawkey, unsigned flags)
{
	static const char *const names[] = {"www.example.test",
	                                    "john@example.test"};
	tlspool_dane_input in;
	tlspool_dane_result *res = NULL;

	memset(&in, 0, sizeof(in));
	in.chain = chain;
	in.nchain = nchain;
	if (rawkey != NULL)
		in.rawkey = *rawkey;
	in.tlsa = t;
	in.ntlsa = 1;
	in.dns = TLSPOOL_DNS_SECURE;
	in.names = names;
	in.nnames = 2;
	in.now = 1700000000;
	in.flags = flags;
	in.extra = chain;
	in.nextra = nchain;
	in.purpose = flags ? TLSPOOL_DANE_PURPOSE_CLIENT : 0;
	if (tlspool_dane_match(&in, &res, NULL, 0) == 0)
		tlspool_dane_result_free(res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	tlspool_rr rr = {TLSPOOL_RR_TLSA, 60, size, (unsigned char *)data};
	tlspool_tlsa t;
	tlspool_span peer;
	char buf[2 * 65536 + 128];

	tlspool_rr_format(buf, sizeof(buf), "_443._tcp.www.example.test.", &rr);
	if (tlspool_tlsa_parse(data, size, &t) != 0) {
		if (size < 3)
			return 0;
		/* Malformed lengths go to the matcher as they are. */
		t.usage = data[0];
		t.selector = data[1];
		t.mtype = data[2];
		t.data = data + 3;
		t.len = size - 3;
	}
	if (t.len == 0)
		return 0;
	peer.data = t.data;
	peer.len = t.len;
	match(&t, &peer, 1, NULL, 0);
	match(&t, &peer, 1, NULL,
	      TLSPOOL_DANE_EXTRA_CERTS | TLSPOOL_DANE_EE_NAME_CHECKS);
	match(&t, NULL, 0, &peer, 0);
	return 0;
}
