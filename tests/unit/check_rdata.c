/* TLSA/SMIMEA rdata parsing and zone-file printing. */
#include <errno.h>
#include <string.h>

#include "internal.h"
#include "testutil.h"

static unsigned char sha256_rdata[3 + 32] = {3, 1, 1};
static unsigned char sha512_rdata[3 + 64] = {2, 0, 2};
static unsigned char sha256_long[3 + 33] = {3, 1, 1};

/* --- negative cases --- */

static const struct {
	const char *why;
	const unsigned char *rdata;
	size_t len;
} bad_tlsa[] = {
        {"empty", (const unsigned char *)"", 0},
        {"usage only", (const unsigned char *)"\x03", 1},
        {"no association data", (const unsigned char *)"\x03\x01\x01", 3},
        {"sha256 truncated", sha256_rdata, sizeof(sha256_rdata) - 1},
        {"sha256 too long", sha256_long, sizeof(sha256_long)},
        {"sha512 truncated", sha512_rdata, sizeof(sha512_rdata) - 1},
        {"sha512 given 32 octets", sha512_rdata, 3 + 32},
};

START_TEST(tlsa_malformed)
{
	tlspool_tlsa t;
	unsigned char buf[3 + 64];

	memcpy(buf, bad_tlsa[_i].rdata, bad_tlsa[_i].len);
	errno = 0;
	ck_assert_msg(tlspool_tlsa_parse(buf, bad_tlsa[_i].len, &t) == -1,
	              "accepted: %s", bad_tlsa[_i].why);
	ck_assert_int_eq(errno, EBADMSG);
}
END_TEST

START_TEST(tlsa_null_arguments)
{
	tlspool_tlsa t;

	ck_assert_int_eq(tlspool_tlsa_parse(NULL, 35, &t), -1);
	ck_assert_int_eq(tlspool_tlsa_parse(sha256_rdata, 35, NULL), -1);
}
END_TEST

/* The presentation form (RFC 6698 section 2.2, RFC 3597 section 5). */
#define H32 "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F"

static const struct {
	const char *text;
	size_t buflen;
	int err;
	const char *detail;
} bad_text[] = {
        {"", 64, EBADMSG, "the certificate usage is not a decimal number"},
        {"   \n", 64, EBADMSG, "certificate usage is not a decimal"},
        {"3 1", 64, EBADMSG, "the matching type is not a decimal number"},
        {"3 1 1", 64, EBADMSG, "no certificate association data"},
        {"3 1 1   \t", 64, EBADMSG, "no certificate association data"},
        {"256 1 1 00", 64, EBADMSG, "the certificate usage is above 255"},
        {"3 1000 1 00", 64, EBADMSG, "the selector is above 255"},
        {"3 -1 1 00", 64, EBADMSG, "the selector is not a decimal number"},
        {"3 1 1x 00", 64, EBADMSG, "the matching type is not a decimal"},
        {"3,1,1 00", 64, EBADMSG, "the certificate usage is not a decimal"},
        {"3 1 1 ABC", 64, EBADMSG, "an odd number of hexadecimal digits"},
        {"3 1 1 0G", 64, EBADMSG, "'G' at offset 7 is not a hexadecimal"},
        {"3 1 1 00;comment", 64, EBADMSG, "';' at offset 8"},
        {"3 1 1 ( " H32 " )", 64, EBADMSG, "'(' at offset 6"},
        {"3 1 1 \xc3\xa9", 64, EBADMSG, "'?' at offset 6"},
        {"3 1 1 00", 64, EBADMSG, "1 octets of association data for "
                                 "matching type 1"},
        {"2 0 2 " H32, 64, EBADMSG, "32 octets of association data for "
                                   "matching type 2"},
        {"\\# 4 030101", 64, EBADMSG, "the generic form says 4 octets, and "
                                       "has 3"},
        {"\\# 3 030101", 64, EBADMSG, "no certificate association data"},
        {"\\#4 03010100", 64, EBADMSG, "is not followed by a blank"},
        {"\\# 70000 00", 64, EBADMSG, "generic rdata length is above 65535"},
        {"\\# x 00", 64, EBADMSG, "generic rdata length is not a decimal"},
        {"3 1 0 00", 2, ENOSPC, "does not fit in 2 octets"},
        {"3 1 0 0000", 4, ENOSPC, "does not fit in 4 octets"},
        {"\\# 4 03010000", 3, ENOSPC, "does not fit in 3 octets"},
};

START_TEST(tlsa_text_rejects)
{
	unsigned char buf[64];
	tlspool_tlsa t;
	char err[200] = "";

	errno = 0;
	ck_assert_int_eq(tlspool_tlsa_parse_text(bad_text[_i].text, buf,
	                                         bad_text[_i].buflen, &t, err,
	                                         sizeof(err)),
	                 -1);
	ck_assert_msg(errno == bad_text[_i].err, "row %d: errno %d", _i, errno);
	ck_assert_msg(strstr(err, bad_text[_i].detail) != NULL,
	              "row %d: \"%s\"", _i, err);
}
END_TEST

START_TEST(tlsa_text_null_arguments)
{
	unsigned char buf[64];

	errno = 0;
	ck_assert_int_eq(tlspool_tlsa_parse_text(NULL, buf, sizeof(buf), NULL,
	                                         NULL, 0),
	                 -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(tlspool_tlsa_parse_text("3 1 1 " H32, NULL, 64, NULL,
	                                         NULL, 0),
	                 -1);
	ck_assert_int_eq(errno, EINVAL);
}
END_TEST

START_TEST(format_malformed_is_generic)
{
	/* A truncated TLSA record prints in RFC 3597 form, not as TLSA. */
	tlspool_rr rr = {TLSPOOL_RR_TLSA, 60, 3, (unsigned char *)"\x03\x01\x01"};
	tlspool_rr a = {TLSPOOL_RR_A, 60, 3, (unsigned char *)"\x7f\x00\x00"};
	char buf[256];

	ck_assert_int_gt(tlspool_rr_format(buf, sizeof(buf), "x.test.", &rr), 0);
	ck_assert_str_eq(buf, "x.test. 60 IN TLSA \\# 3 030101");
	ck_assert_int_gt(tlspool_rr_format(buf, sizeof(buf), "x.test.", &a), 0);
	ck_assert_str_eq(buf, "x.test. 60 IN A \\# 3 7F0000");
}
END_TEST

START_TEST(format_no_space)
{
	tlspool_rr rr = {TLSPOOL_RR_TLSA, 60, sizeof(sha256_rdata), sha256_rdata};
	char buf[40];

	errno = 0;
	ck_assert_int_eq(tlspool_rr_format(buf, sizeof(buf), "_443._tcp.www.example.test.", &rr), -1);
	ck_assert_int_eq(errno, ENOSPC);
	ck_assert_int_eq(tlspool_rr_format(buf, 0, "a.", &rr), -1);
	ck_assert_int_eq(tlspool_rr_format(buf, sizeof(buf), NULL, &rr), -1);
	ck_assert_int_eq(errno, EINVAL);
}
END_TEST

/* --- positive cases --- */

START_TEST(tlsa_parse_fields)
{
	static const unsigned char unknown[] = {7, 9, 200, 0xAB};
	tlspool_tlsa t;

	sha256_rdata[3] = 0xAA;
	ck_assert_int_eq(tlspool_tlsa_parse(sha256_rdata, sizeof(sha256_rdata), &t), 0);
	ck_assert_uint_eq(t.usage, 3);
	ck_assert_uint_eq(t.selector, 1);
	ck_assert_uint_eq(t.mtype, 1);
	ck_assert_uint_eq(t.len, 32);
	ck_assert_ptr_eq(t.data, sha256_rdata + 3);
	ck_assert_int_eq(tlspool_tlsa_parse(sha512_rdata, sizeof(sha512_rdata), &t), 0);
	ck_assert_uint_eq(t.len, 64);
	/* Unknown parameters parse; the matcher calls them unusable. */
	ck_assert_int_eq(tlspool_tlsa_parse(unknown, sizeof(unknown), &t), 0);
	ck_assert_uint_eq(t.usage, 7);
	ck_assert_uint_eq(t.mtype, 200);
	ck_assert_uint_eq(t.len, 1);
}
END_TEST

/* Each spelling of the same "3 1 1" record gives the same rdata. */
static const char *const good_text[] = {
        "3 1 1 " H32,
        "3 1 1 " H32 "\n",
        "  3\t1 1\t" H32 "  ",
        "3 1 1 00010203 04050607 08090a0b 0c0d0e0f\n"
        "\t10111213 14151617 18191A1B 1C1D1E1F",
        "003 001 1 " H32,
        "\\# 35 030101" H32,
        "\\# 35 03 01 01 " H32,
};

START_TEST(tlsa_text_forms)
{
	unsigned char buf[64];
	tlspool_tlsa t;
	char err[200];
	int n, i;

	n = tlspool_tlsa_parse_text(good_text[_i], buf, sizeof(buf), &t, err,
	                            sizeof(err));
	ck_assert_msg(n == 35, "row %d: %d: %s", _i, n, err);
	ck_assert_int_eq(t.usage, 3);
	ck_assert_int_eq(t.selector, 1);
	ck_assert_int_eq(t.mtype, 1);
	ck_assert_uint_eq(t.len, 32);
	ck_assert_ptr_eq(t.data, buf + 3);
	for (i = 0; i < 32; i++)
		ck_assert_int_eq(t.data[i], i);
	/* out may be NULL; the rdata is written all the same */
	memset(buf, 0, sizeof(buf));
	ck_assert_int_eq(tlspool_tlsa_parse_text(good_text[_i], buf, 35, NULL,
	                                         NULL, 0),
	                 35);
	ck_assert_int_eq(buf[34], 0x1f);
}
END_TEST

/* What the matcher decides, the parser leaves: unknown parameters and
 * Full(0) data of any length; and what tlspool_rr_format prints reads
 * back to the same rdata. */
START_TEST(tlsa_text_round_trip)
{
	static const char *const texts[] = {"4 1 1 " H32, "255 255 255 00",
	                                    "2 0 0 3082ABCD", "3 1 2 " H32 H32,
	                                    "0 1 0 AA"};
	unsigned char buf[128], again[128];
	char line[400], err[200];
	tlspool_rr rr = {TLSPOOL_RR_TLSA, 60, 0, buf};
	size_t i;
	int n;

	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		n = tlspool_tlsa_parse_text(texts[i], buf, sizeof(buf), NULL, err,
		                            sizeof(err));
		ck_assert_msg(n > 3, "%s: %s", texts[i], err);
		rr.rdlen = (size_t)n;
		ck_assert_int_gt(tlspool_rr_format(line, sizeof(line), "x.", &rr), 0);
		ck_assert_ptr_nonnull(strstr(line, "IN TLSA "));
		ck_assert_int_eq(tlspool_tlsa_parse_text(strstr(line, "TLSA ") + 5,
		                                         again, sizeof(again), NULL,
		                                         err, sizeof(err)),
		                 n);
		ck_assert_mem_eq(buf, again, (size_t)n);
	}
	/* the malformed ones print in generic form, which reads back as
	 * malformed: the same refusal either way */
	rr.rdlen = 3;
	memcpy(buf, "\x03\x01\x01", 3);
	ck_assert_int_gt(tlspool_rr_format(line, sizeof(line), "x.", &rr), 0);
	errno = 0;
	ck_assert_int_eq(tlspool_tlsa_parse_text(strstr(line, "TLSA ") + 5, again,
	                                         sizeof(again), NULL, err,
	                                         sizeof(err)),
	                 -1);
	ck_assert_int_eq(errno, EBADMSG);
}
END_TEST

START_TEST(format_types)
{
	static const unsigned char full[] = {3, 0, 0, 0x30, 0x82, 0x01};
	static const unsigned char v6[16] = {[15] = 1};
	static const unsigned char pgp[] = {0x99, 0x01, 0x0d, 0x04};
	tlspool_rr rr;
	char buf[512];

	rr = (tlspool_rr){TLSPOOL_RR_TLSA, 3600, sizeof(full), (unsigned char *)full};
	ck_assert_int_gt(tlspool_rr_format(buf, sizeof(buf), "_443._tcp.a.test.", &rr), 0);
	ck_assert_str_eq(buf, "_443._tcp.a.test. 3600 IN TLSA 3 0 0 308201");
	rr.type = TLSPOOL_RR_SMIMEA;
	ck_assert_int_gt(tlspool_rr_format(buf, sizeof(buf), "h._smimecert.a.test.", &rr), 0);
	ck_assert_str_eq(buf, "h._smimecert.a.test. 3600 IN SMIMEA 3 0 0 308201");
	rr = (tlspool_rr){TLSPOOL_RR_AAAA, 5, 16, (unsigned char *)v6};
	ck_assert_int_gt(tlspool_rr_format(buf, sizeof(buf), "a.test.", &rr), 0);
	ck_assert_str_eq(buf, "a.test. 5 IN AAAA ::1");
	rr = (tlspool_rr){TLSPOOL_RR_OPENPGPKEY, 5, sizeof(pgp), (unsigned char *)pgp};
	ck_assert_int_gt(tlspool_rr_format(buf, sizeof(buf), "h._openpgpkey.a.test.", &rr), 0);
	ck_assert_str_eq(buf, "h._openpgpkey.a.test. 5 IN OPENPGPKEY mQENBA==");
	rr = (tlspool_rr){99, 5, 2, (unsigned char *)"\x01\x02"};
	ck_assert_int_gt(tlspool_rr_format(buf, sizeof(buf), "a.test.", &rr), 0);
	ck_assert_str_eq(buf, "a.test. 5 IN TYPE99 \\# 2 0102");
}
END_TEST

START_TEST(type_names)
{
	ck_assert_str_eq(tlspool_rr_type_name(52), "TLSA");
	ck_assert_str_eq(tlspool_rr_type_name(53), "SMIMEA");
	ck_assert_str_eq(tlspool_rr_type_name(61), "OPENPGPKEY");
	ck_assert_str_eq(tlspool_rr_type_name(65280), "TYPE65280");
}
END_TEST

START_TEST(verdict_mapping)
{
	/* Errors are never "no records", and "no records" is no error. */
	ck_assert(tlspool_dns_verdict_is_error(TLSPOOL_DNS_BOGUS));
	ck_assert(tlspool_dns_verdict_is_error(TLSPOOL_DNS_SERVFAIL));
	ck_assert(tlspool_dns_verdict_is_error(TLSPOOL_DNS_TIMEOUT));
	ck_assert(tlspool_dns_verdict_is_error(TLSPOOL_DNS_INDETERMINATE));
	ck_assert(tlspool_dns_verdict_is_error(TLSPOOL_DNS_UNCHECKED));
	ck_assert(!tlspool_dns_verdict_is_error(TLSPOOL_DNS_SECURE));
	ck_assert(!tlspool_dns_verdict_is_error(TLSPOOL_DNS_SECURE_NODATA));
	ck_assert(!tlspool_dns_verdict_is_error(TLSPOOL_DNS_SECURE_NXDOMAIN));
	ck_assert(!tlspool_dns_verdict_is_error(TLSPOOL_DNS_INSECURE));
	ck_assert_str_eq(tlspool_dns_verdict_name(TLSPOOL_DNS_SECURE_NXDOMAIN), "secure-nxdomain");
	ck_assert_str_eq(tlspool_dns_verdict_name(TLSPOOL_DNS_BOGUS), "bogus");
	ck_assert_str_eq(tlspool_dns_verdict_name((tlspool_dns_verdict)99), "unknown");
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("rdata");
	TCase *neg = tcase_create("negative");
	TCase *pos = tcase_create("positive");

	tcase_add_loop_test(neg, tlsa_malformed, 0,
	                    sizeof(bad_tlsa) / sizeof(bad_tlsa[0]));
	tcase_add_test(neg, tlsa_null_arguments);
	tcase_add_loop_test(neg, tlsa_text_rejects, 0,
	                    sizeof(bad_text) / sizeof(bad_text[0]));
	tcase_add_test(neg, tlsa_text_null_arguments);
	tcase_add_test(neg, format_malformed_is_generic);
	tcase_add_test(neg, format_no_space);
	tcase_add_test(pos, tlsa_parse_fields);
	tcase_add_loop_test(pos, tlsa_text_forms, 0,
	                    sizeof(good_text) / sizeof(good_text[0]));
	tcase_add_test(pos, tlsa_text_round_trip);
	tcase_add_test(pos, format_types);
	tcase_add_test(pos, type_names);
	tcase_add_test(pos, verdict_mapping);
	suite_add_tcase(s, neg);
	suite_add_tcase(s, pos);
	return s;
}

int main(void)
{
	return tp_run_suite(suite());
}
