/*
 * Mapping getdns responses to verdicts (tp_dns_classify), with responses
 * built by hand: the outcomes that the served zones cannot produce
 * (SERVFAIL, REFUSED, indeterminate, validation not done) and the corner
 * cases of CNAME walking.  Each must keep its own verdict, and no failure
 * may hand out records.
 */
#include <getdns/getdns.h>
#include <getdns/getdns_extra.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "testutil.h"

/* "0x..." wire form of a domain name, for getdns_str2dict. */
static const char *wire(const char *name)
{
	static char bufs[8][600];
	static int next;
	char *out = bufs[next++ % 8], *p = out + 2;
	const char *label = name;

	strcpy(out, "0x");
	while (*label) {
		const char *dot = strchr(label, '.');
		size_t n = dot ? (size_t)(dot - label) : strlen(label);

		p += sprintf(p, "%02zx", n);
		for (size_t i = 0; i < n; i++)
			p += sprintf(p, "%02x", (unsigned char)label[i]);
		label += n + (dot != NULL);
	}
	strcpy(p, "00");
	return out;
}

static char tlsa_hex[] = "0x030101"
                         "0000000000000000000000000000000000000000000000000000000000000000";

static char *tlsa_rr(char *buf, size_t len, const char *owner, unsigned ttl)
{
	snprintf(buf, len,
	         "{ \"name\": %s, \"type\": 52, \"class\": 1, \"ttl\": %u, "
	         "\"rdata\": { \"rdata_raw\": %s } }",
	         wire(owner), ttl, tlsa_hex);
	return buf;
}

static char *cname_rr(char *buf, size_t len, const char *owner,
                      const char *target)
{
	snprintf(buf, len,
	         "{ \"name\": %s, \"type\": 5, \"class\": 1, \"ttl\": 300, "
	         "\"rdata\": { \"cname\": %s } }",
	         wire(owner), wire(target));
	return buf;
}

static char *rrsig_rr(char *buf, size_t len, const char *owner, long inc,
                      long exp)
{
	snprintf(buf, len,
	         "{ \"name\": %s, \"type\": 46, \"class\": 1, \"ttl\": 3600, "
	         "\"rdata\": { \"type_covered\": 52, \"signature_inception\": %ld, "
	         "\"signature_expiration\": %ld } }",
	         wire(owner), inc, exp);
	return buf;
}

/* Classify a response given as text; the answer section holds the given
 * records (comma separated). */
static tlspool_dns_answer *run(unsigned status, int with_reply, unsigned rcode,
                               int dnssec, const char *answer,
                               enum tp_step *step, char cur[256])
{
	static char text[16384];
	tlspool_dns_answer *a = calloc(1, sizeof(*a));
	getdns_dict *resp = NULL;
	char sec[64] = "";

	if (dnssec >= 0)
		snprintf(sec, sizeof(sec), "\"dnssec_status\": %d, ", dnssec);
	if (with_reply)
		snprintf(text, sizeof(text),
		         "{ \"status\": %u, \"replies_tree\": [ { %s"
		         "\"header\": { \"rcode\": %u }, \"answer\": [ %s ], "
		         "\"authority\": [] } ] }",
		         status, sec, rcode, answer ? answer : "");
	else
		snprintf(text, sizeof(text), "{ \"status\": %u, \"replies_tree\": [] }",
		         status);
	ck_assert_msg(getdns_str2dict(text, &resp) == GETDNS_RETURN_GOOD, "%s", text);
	ck_assert_ptr_nonnull(a);
	a->qtype = TLSPOOL_RR_TLSA;
	strcpy(a->qname, "_443._tcp.a.test.");
	strcpy(cur, a->qname);
	ck_assert_int_eq(tp_dns_classify(a, resp, cur, step), 0);
	getdns_dict_destroy(resp);
	return a;
}

#define Q "_443._tcp.a.test."

/* --- negative cases --- */

START_TEST(timeout)
{
	enum tp_step step;
	char cur[256];
	tlspool_dns_answer *a = run(902, 0, 0, -1, NULL, &step, cur);

	ck_assert_int_eq(a->verdict, TLSPOOL_DNS_TIMEOUT);
	ck_assert_int_eq(step, TP_STEP_DONE);
	tlspool_dns_answer_free(a);
}
END_TEST

START_TEST(no_reply)
{
	enum tp_step step;
	char cur[256];
	tlspool_dns_answer *a = run(901, 0, 0, -1, NULL, &step, cur);

	ck_assert_int_eq(a->verdict, TLSPOOL_DNS_SERVFAIL);
	ck_assert_ptr_nonnull(strstr(a->detail, "no usable reply"));
	tlspool_dns_answer_free(a);
}
END_TEST

static const struct {
	unsigned rcode;
	const char *detail;
} rcodes[] = {{2, "SERVFAIL"}, {5, "REFUSED"}, {4, "with an error"}, {1, "with an error"}};

START_TEST(error_rcodes)
{
	enum tp_step step;
	char cur[256], rr[512];
	/* records in an error reply are not handed out, even "secure" */
	tlspool_dns_answer *a = run(900, 1, rcodes[_i].rcode, 400,
	                            tlsa_rr(rr, sizeof(rr), Q, 60), &step, cur);

	ck_assert_int_eq(a->verdict, TLSPOOL_DNS_SERVFAIL);
	ck_assert_uint_eq(a->nrr, 0);
	ck_assert_ptr_nonnull(strstr(a->detail, rcodes[_i].detail));
	tlspool_dns_answer_free(a);
}
END_TEST

static const int unvalidated[] = {402, 404, -1, 0, 499};

START_TEST(not_validated_is_indeterminate)
{
	enum tp_step step;
	char cur[256], rr[512];
	tlspool_dns_answer *a = run(900, 1, 0, unvalidated[_i],
	                            tlsa_rr(rr, sizeof(rr), Q, 60), &step, cur);

	ck_assert_int_eq(a->verdict, TLSPOOL_DNS_INDETERMINATE);
	ck_assert_uint_eq(a->nrr, 0);
	tlspool_dns_answer_free(a);
}
END_TEST

START_TEST(bogus_reasons)
{
	enum tp_step step;
	char cur[256], ans[1200], r1[512], r2[512];
	long now = (long)time(NULL);
	tlspool_dns_answer *a;

	snprintf(ans, sizeof(ans), "%s, %s", tlsa_rr(r1, sizeof(r1), Q, 60),
	         rrsig_rr(r2, sizeof(r2), Q, now - 86400, now - 60));
	a = run(900, 1, 0, 401, ans, &step, cur);
	ck_assert_int_eq(a->verdict, TLSPOOL_DNS_BOGUS);
	ck_assert_uint_eq(a->nrr, 0);
	ck_assert_str_eq(a->detail, "RRSIG expired");
	tlspool_dns_answer_free(a);

	snprintf(ans, sizeof(ans), "%s, %s", tlsa_rr(r1, sizeof(r1), Q, 60),
	         rrsig_rr(r2, sizeof(r2), Q, now + 3600, now + 86400));
	a = run(900, 1, 0, 401, ans, &step, cur);
	ck_assert_str_eq(a->detail, "RRSIG not yet valid");
	tlspool_dns_answer_free(a);

	snprintf(ans, sizeof(ans), "%s, %s", tlsa_rr(r1, sizeof(r1), Q, 60),
	         rrsig_rr(r2, sizeof(r2), Q, now - 60, now + 86400));
	a = run(900, 1, 0, 401, ans, &step, cur);
	ck_assert_str_eq(a->detail, "DNSSEC validation failed");
	ck_assert_int_eq(a->rrsig_expiration, now + 86400);
	tlspool_dns_answer_free(a);
}
END_TEST

START_TEST(cname_loop_in_reply)
{
	enum tp_step step;
	char cur[256], ans[1200], r1[512], r2[512];
	tlspool_dns_answer *a;

	snprintf(ans, sizeof(ans), "%s, %s", cname_rr(r1, sizeof(r1), Q, "_443._tcp.b.test."),
	         cname_rr(r2, sizeof(r2), "_443._tcp.b.test.", Q));
	a = run(900, 1, 0, 400, ans, &step, cur);
	ck_assert_int_eq(a->verdict, TLSPOOL_DNS_SERVFAIL);
	ck_assert_ptr_nonnull(strstr(a->detail, "CNAME loop"));
	tlspool_dns_answer_free(a);
}
END_TEST

START_TEST(cname_chain_too_long)
{
	enum tp_step step;
	char cur[256], ans[8192] = "", rr[512], from[64], to[64];
	tlspool_dns_answer *a;

	for (int i = 0; i < 9; i++) {
		snprintf(from, sizeof(from), i ? "_443._tcp.c%d.test." : Q, i);
		snprintf(to, sizeof(to), "_443._tcp.c%d.test.", i + 1);
		if (i)
			strcat(ans, ", ");
		strcat(ans, cname_rr(rr, sizeof(rr), from, to));
	}
	a = run(900, 1, 0, 400, ans, &step, cur);
	ck_assert_int_eq(a->verdict, TLSPOOL_DNS_SERVFAIL);
	ck_assert_ptr_nonnull(strstr(a->detail, "longer than 8"));
	tlspool_dns_answer_free(a);
}
END_TEST

/* --- positive cases --- */

START_TEST(secure_records)
{
	enum tp_step step;
	char cur[256], ans[2048], r1[512], r2[512], r3[512];
	tlspool_dns_answer *a;

	/* A record at another owner is not ours. */
	snprintf(ans, sizeof(ans), "%s, %s, %s", tlsa_rr(r1, sizeof(r1), Q, 600),
	         tlsa_rr(r2, sizeof(r2), "_443._TCP.A.test.", 300),
	         tlsa_rr(r3, sizeof(r3), "_443._tcp.other.test.", 5));
	a = run(900, 1, 0, 400, ans, &step, cur);
	ck_assert_int_eq(a->verdict, TLSPOOL_DNS_SECURE);
	ck_assert_uint_eq(a->nrr, 2);
	ck_assert_uint_eq(a->ttl, 300);
	ck_assert_uint_eq(a->rr[0].rdlen, 35);
	ck_assert_int_eq(step, TP_STEP_DONE);
	tlspool_dns_answer_free(a);
}
END_TEST

START_TEST(secure_negative)
{
	enum tp_step step;
	char cur[256], rr[512];
	tlspool_dns_answer *a;

	a = run(901, 1, 3, 400, NULL, &step, cur);
	ck_assert_int_eq(a->verdict, TLSPOOL_DNS_SECURE_NXDOMAIN);
	tlspool_dns_answer_free(a);
	a = run(901, 1, 0, 400, NULL, &step, cur);
	ck_assert_int_eq(a->verdict, TLSPOOL_DNS_SECURE_NODATA);
	tlspool_dns_answer_free(a);
	a = run(900, 1, 0, 400, tlsa_rr(rr, sizeof(rr), "_443._tcp.other.test.", 5),
	        &step, cur);
	ck_assert_int_eq(a->verdict, TLSPOOL_DNS_SECURE_NODATA);
	tlspool_dns_answer_free(a);
}
END_TEST

START_TEST(insecure_keeps_records)
{
	enum tp_step step;
	char cur[256], rr[512];
	tlspool_dns_answer *a = run(900, 1, 0, 403, tlsa_rr(rr, sizeof(rr), Q, 60),
	                            &step, cur);

	ck_assert_int_eq(a->verdict, TLSPOOL_DNS_INSECURE);
	ck_assert_uint_eq(a->nrr, 1);
	tlspool_dns_answer_free(a);
}
END_TEST

START_TEST(cname_leaves_reply)
{
	enum tp_step step;
	char cur[256], rr[512];
	tlspool_dns_answer *a = run(900, 1, 0, 400,
	                            cname_rr(rr, sizeof(rr), Q, "_443._tcp.far.test."),
	                            &step, cur);

	ck_assert_int_eq(step, TP_STEP_FOLLOW);
	ck_assert_str_eq(cur, "_443._tcp.far.test.");
	ck_assert_uint_eq(a->ncname, 1);
	ck_assert_str_eq(a->cname[0], "_443._tcp.far.test.");
	tlspool_dns_answer_free(a);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("verdict");
	TCase *neg = tcase_create("negative");
	TCase *pos = tcase_create("positive");

	tcase_add_test(neg, timeout);
	tcase_add_test(neg, no_reply);
	tcase_add_loop_test(neg, error_rcodes, 0, sizeof(rcodes) / sizeof(rcodes[0]));
	tcase_add_loop_test(neg, not_validated_is_indeterminate, 0,
	                    sizeof(unvalidated) / sizeof(unvalidated[0]));
	tcase_add_test(neg, bogus_reasons);
	tcase_add_test(neg, cname_loop_in_reply);
	tcase_add_test(neg, cname_chain_too_long);
	tcase_add_test(pos, secure_records);
	tcase_add_test(pos, secure_negative);
	tcase_add_test(pos, insecure_keeps_records);
	tcase_add_test(pos, cname_leaves_reply);
	suite_add_tcase(s, neg);
	suite_add_tcase(s, pos);
	return s;
}

int main(void)
{
	return tp_run_suite(suite());
}
