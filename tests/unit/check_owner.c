/* Owner names: TLSA (RFC 6698 s3), OPENPGPKEY (RFC 7929 s3), SMIMEA
 * (RFC 8162 s3), and the domain-name check under them. */
#include <errno.h>
#include <string.h>

#include "internal.h"
#include "testutil.h"

/* --- negative cases --- */

static const char *const bad_domains[] = {
        "",         ".",          "a..b",       "-a.test",   "a-.test",
        "a b.test", "a_b.test",   "a.test..",   "é.test",    "a/b",
        NULL,
};

START_TEST(domain_rejects)
{
	const char *name = bad_domains[_i];

	errno = 0;
	ck_assert_int_eq(tlspool_check_domain(name, 0), -1);
	ck_assert_int_eq(errno, EINVAL);
}
END_TEST

START_TEST(domain_label_lengths)
{
	char name[300];

	/* A 64-octet label is one too many (RFC 1035 s2.3.4). */
	memset(name, 'a', 64);
	strcpy(name + 64, ".test");
	ck_assert_int_eq(tlspool_check_domain(name, 0), -1);
	memset(name, 'a', 63);
	strcpy(name + 63, ".test");
	ck_assert_int_eq(tlspool_check_domain(name, 0), 0);
	/* 254 octets of text is more than a name can hold. */
	memset(name, 0, sizeof(name));
	for (int i = 0; i < 254; i++)
		name[i] = i % 2 ? '.' : 'a';
	name[253] = 'a';
	ck_assert_int_eq(tlspool_check_domain(name, 0), -1);
	name[253] = '\0';
	ck_assert_int_eq(tlspool_check_domain(name, 0), 0);
}
END_TEST

START_TEST(tlsa_owner_rejects)
{
	char buf[256], small[10];

	ck_assert_int_eq(tlspool_tlsa_owner(buf, sizeof(buf), 0, "tcp", "a.test"), -1);
	ck_assert_int_eq(tlspool_tlsa_owner(buf, sizeof(buf), 65536, "tcp", "a.test"), -1);
	ck_assert_int_eq(tlspool_tlsa_owner(buf, sizeof(buf), 443, "tls", "a.test"), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(tlspool_tlsa_owner(buf, sizeof(buf), 443, "tcp", "_x.test"), -1);
	ck_assert_int_eq(tlspool_tlsa_owner(buf, sizeof(buf), 443, "tcp", NULL), -1);
	ck_assert_int_eq(tlspool_tlsa_owner(small, sizeof(small), 443, "tcp", "a.test"), -1);
	ck_assert_int_eq(errno, ENAMETOOLONG);
}
END_TEST

START_TEST(tlsa_owner_too_long)
{
	char name[260], buf[512];

	/* Valid as a host name (249 octets) but not with "_443._tcp." */
	memset(name, 0, sizeof(name));
	for (int i = 0; i < 249; i++)
		name[i] = (i % 50 == 49) ? '.' : 'a';
	ck_assert_int_eq(tlspool_check_domain(name, 0), 0);
	ck_assert_int_eq(tlspool_tlsa_owner(buf, sizeof(buf), 443, "tcp", name), -1);
	ck_assert_int_eq(errno, ENAMETOOLONG);
}
END_TEST

START_TEST(user_owner_rejects)
{
	char buf[256];

	ck_assert_int_eq(tlspool_user_owner(buf, sizeof(buf), TLSPOOL_RR_OPENPGPKEY, "example.test"), -1);
	ck_assert_int_eq(tlspool_user_owner(buf, sizeof(buf), TLSPOOL_RR_OPENPGPKEY, "@example.test"), -1);
	ck_assert_int_eq(tlspool_user_owner(buf, sizeof(buf), TLSPOOL_RR_OPENPGPKEY, "john@"), -1);
	ck_assert_int_eq(tlspool_user_owner(buf, sizeof(buf), TLSPOOL_RR_OPENPGPKEY, "john@bad..test"), -1);
	ck_assert_int_eq(tlspool_user_owner(buf, sizeof(buf), TLSPOOL_RR_TLSA, "john@example.test"), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(tlspool_user_owner(buf, 40, TLSPOOL_RR_OPENPGPKEY, "john@example.test"), -1);
	ck_assert_int_eq(errno, ENAMETOOLONG);
}
END_TEST

/* --- positive cases --- */

START_TEST(tlsa_owner_forms)
{
	static const struct {
		unsigned port;
		const char *proto, *name, *want;
	} rows[] = {
	        {443, "tcp", "www.example.test", "_443._tcp.www.example.test."},
	        {443, "tcp", "www.example.test.", "_443._tcp.www.example.test."},
	        {5061, "udp", "Sip.Example.TEST", "_5061._udp.Sip.Example.TEST."},
	        {1, "sctp", "a", "_1._sctp.a."},
	        {65535, "tcp", "x.test", "_65535._tcp.x.test."},
	};
	char buf[256];

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int n = tlspool_tlsa_owner(buf, sizeof(buf), rows[i].port,
		                           rows[i].proto, rows[i].name);
		ck_assert_int_eq(n, (int)strlen(rows[i].want));
		ck_assert_str_eq(buf, rows[i].want);
	}
}
END_TEST

START_TEST(user_owner_rfc_examples)
{
	char buf[256];

	/* RFC 7929 section 3, "hugh@example.com". */
	ck_assert_int_gt(tlspool_user_owner(buf, sizeof(buf), TLSPOOL_RR_OPENPGPKEY, "hugh@example.com"), 0);
	ck_assert_str_eq(buf, "c93f1e400f26708f98cb19d936620da35eec8f72e57f9eec01c1afd6._openpgpkey.example.com.");
	/* RFC 8162 section 3 uses the same hash under _smimecert. */
	ck_assert_int_gt(tlspool_user_owner(buf, sizeof(buf), TLSPOOL_RR_SMIMEA, "hugh@example.com"), 0);
	ck_assert_str_eq(buf, "c93f1e400f26708f98cb19d936620da35eec8f72e57f9eec01c1afd6._smimecert.example.com.");
	/* The last @ separates: a local part may hold a quoted @. */
	ck_assert_int_gt(tlspool_user_owner(buf, sizeof(buf), TLSPOOL_RR_OPENPGPKEY, "\"a@b\"@example.com"), 0);
	ck_assert_ptr_nonnull(strstr(buf, "._openpgpkey.example.com."));
}
END_TEST

START_TEST(name_equal)
{
	ck_assert(tp_name_equal("WWW.Example.test.", "www.example.TEST"));
	ck_assert(!tp_name_equal("www.example.test", "ww.example.test"));
	ck_assert(!tp_name_equal("a.test", "a.test.."));
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("owner");
	TCase *neg = tcase_create("negative");
	TCase *pos = tcase_create("positive");

	tcase_add_loop_test(neg, domain_rejects, 0,
	                    sizeof(bad_domains) / sizeof(bad_domains[0]));
	tcase_add_test(neg, domain_label_lengths);
	tcase_add_test(neg, tlsa_owner_rejects);
	tcase_add_test(neg, tlsa_owner_too_long);
	tcase_add_test(neg, user_owner_rejects);
	tcase_add_test(pos, tlsa_owner_forms);
	tcase_add_test(pos, user_owner_rfc_examples);
	tcase_add_test(pos, name_equal);
	suite_add_tcase(s, neg);
	suite_add_tcase(s, pos);
	return s;
}

int main(void)
{
	return tp_run_suite(suite());
}
