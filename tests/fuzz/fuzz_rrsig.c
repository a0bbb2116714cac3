/*
 * libFuzzer target: a DNS reply from the network checked by the fast path
 * of cold validation (rrsig.c, tp_rrsig_check), as if it answered
 * _443._tcp.www.example.test TLSA (or the type the first input octet
 * picks) under the kept keys of example.test.  The kept key is the P-256
 * point G (a valid key whose private half is 1: the fuzzer cannot sign
 * with it by chance, so what it reaches is the parsing, the checks before
 * the signature and the signature's refusal).  The check must never say
 * "secure" for an input that the seed does not sign, and must not crash,
 * leak or read out of bounds whatever the reply.
 */
#include <getdns/getdns.h>
#include <getdns/getdns_extra.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* DNSKEY rdata: flags 257 (ZONE, SEP), protocol 3, algorithm 13, the
 * point G of P-256 (RFC 6605 section 4: x then y). */
static const unsigned char dnskey[4 + 64] = {
        0x01, 0x01, 0x03, 0x0d, 0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47,
        0xf8, 0xbc, 0xe6, 0xe5, 0x63, 0xa4, 0x40, 0xf2, 0x77, 0x03, 0x7d, 0x81,
        0x2d, 0xeb, 0x33, 0xa0, 0xf4, 0xa1, 0x39, 0x45, 0xd8, 0x98, 0xc2, 0x96,
        0x4f, 0xe3, 0x42, 0xe2, 0xfe, 0x1a, 0x7f, 0x9b, 0x8e, 0xe7, 0xeb, 0x4a,
        0x7c, 0x0f, 0x9e, 0x16, 0x2b, 0xce, 0x33, 0x57, 0x6b, 0x31, 0x5e, 0xce,
        0xcb, 0xb6, 0x40, 0x68, 0x37, 0xbf, 0x51, 0xf5};

static struct tp_zkeys *kept;

static struct tp_zkeys *keys_for(void *arg, const char *signer)
{
	(void)arg;
	return tp_name_equal(signer, "example.test.") ? tp_zkeys_ref(kept)
	                                              : NULL;
}

static void init(void)
{
	static const unsigned char owner[] = "\7example\4test";
	getdns_list *l = getdns_list_create();
	getdns_dict *rr = getdns_dict_create();
	getdns_bindata rd = {sizeof(dnskey), (uint8_t *)dnskey};
	getdns_bindata nb = {sizeof(owner), (uint8_t *)owner};

	if (l == NULL || rr == NULL ||
	    getdns_dict_set_int(rr, "type", 48) != GETDNS_RETURN_GOOD ||
	    getdns_dict_set_bindata(rr, "name", &nb) != GETDNS_RETURN_GOOD ||
	    getdns_dict_set_bindata(rr, "/rdata/rdata_raw", &rd) !=
	            GETDNS_RETURN_GOOD ||
	    getdns_list_set_dict(l, 0, rr) != GETDNS_RETURN_GOOD ||
	    (kept = tp_zkeys_new(l)) == NULL)
		abort();
	getdns_dict_destroy(rr);
	getdns_list_destroy(l);
	if (tp_key_tag(dnskey, sizeof(dnskey)) == 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint16_t types[] = {52, 1, 15, 33, 16, 2};
	uint16_t type;
	int r;

	if (kept == NULL)
		init();
	if (size < 1)
		return 0;
	type = types[data[0] % (sizeof(types) / sizeof(types[0]))];
	r = tp_rrsig_check(data + 1, size - 1, "_443._tcp.www.example.test.",
	                   type, keys_for, NULL, 1767225600 /* 2026-01-01 */);
	if (r != 1 && r != TP_FAST_UNDECIDED && r != TP_FAST_BAD)
		abort();
	/* No valid signature by G's key can appear by chance. */
	if (r == 1)
		abort();
	return 0;
}
