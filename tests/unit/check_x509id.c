/*
 * Identities named by certificates (docs/architecture.md, "Identities") and the
 * RFC 6125 name check, on certificates made by tests/tools/mkcerts.sh.
 */
#include <errno.h>
#include <string.h>

#include "certs.h"
#include "internal.h"
#include "testutil.h"

/* --- negative cases --- */

/* Certificates whose DN cannot be read as a name, or that name nothing. */
static const struct {
	const char *cert;
	int err;
	const char *why;
} no_identity[] = {
        {"baddc", EBADMSG, "dc= RDNs not contiguous"},
        {"baduid", EBADMSG, "uid= not right after the dc= RDNs"},
        {"badlabel", EBADMSG, "dc= value not an LDH label"},
        {"multi", EBADMSG, "dc= inside a multi-valued RDN"},
        {"noname", ENOENT, "no dc=, no subjectAltName (the CN is no name)"},
        {"root", ENOENT, "a CA with only CN and O"},
};

START_TEST(identity_refused)
{
	char buf[320];

	errno = 0;
	ck_assert_msg(tlspool_x509_identity(tp_cert(no_identity[_i].cert), buf,
	                                    sizeof(buf)) == -1,
	              "%s: got \"%s\"", no_identity[_i].why, buf);
	ck_assert_int_eq(errno, no_identity[_i].err);
	ck_assert_str_eq(buf, "");
}
END_TEST

START_TEST(identity_bad_input)
{
	static const unsigned char junk[] = {0x30, 0x03, 0x02, 0x01, 0x00};
	tlspool_span j = {junk, sizeof(junk)}, empty = {NULL, 0};
	char buf[320], small[8];

	errno = 0;
	ck_assert_int_eq(tlspool_x509_identity(&j, buf, sizeof(buf)), -1);
	ck_assert_int_eq(errno, EBADMSG);
	ck_assert_int_eq(tlspool_x509_identity(&empty, buf, sizeof(buf)), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(tlspool_x509_identity(NULL, buf, sizeof(buf)), -1);
	ck_assert_int_eq(tlspool_x509_identity(tp_cert("www"), NULL, 10), -1);
	ck_assert_int_eq(errno, EINVAL);
	/* "www.example.test" does not fit 8 octets */
	ck_assert_int_eq(
	        tlspool_x509_identity(tp_cert("wwwdc"), small, sizeof(small)),
	        -1);
	ck_assert_int_eq(errno, ENAMETOOLONG);
	ck_assert_int_eq(tlspool_x509_names(&j, "www.example.test"), -1);
	ck_assert_int_eq(tlspool_x509_names(tp_cert("www"), NULL), -1);
}
END_TEST

/* The per-thread memo (x509id.c) answers for the bytes it was given and
 * no others: certificates in turn, a copy cut short, a buffer too small
 * for what an earlier call found. */
START_TEST(memo_follows_the_bytes)
{
	const tlspool_span *www = tp_cert("www"), *john = tp_cert("john");
	unsigned char cut[4096];
	tlspool_span shorter = {cut, www->len - 1};
	tlspool_x509_info a, b;
	char buf[320], small[8];

	ck_assert_uint_lt(www->len, sizeof(cut));
	memcpy(cut, www->data, www->len - 1);
	for (int round = 0; round < 2; round++) {
		ck_assert_int_eq(tlspool_x509_identity(www, buf, sizeof(buf)),
		                 16);
		ck_assert_str_eq(buf, "www.example.test");
		ck_assert_int_eq(
		        tlspool_x509_identity(www, small, sizeof(small)), -1);
		ck_assert_int_eq(errno, ENAMETOOLONG);
		ck_assert_int_eq(tlspool_x509_describe(www, &a), 0);
		errno = 0;
		ck_assert_int_eq(
		        tlspool_x509_identity(&shorter, buf, sizeof(buf)), -1);
		ck_assert_int_eq(errno, EBADMSG);
		ck_assert_int_eq(tlspool_x509_describe(&shorter, &b), -1);
		ck_assert_int_eq(tlspool_x509_identity(john, buf, sizeof(buf)),
		                 17);
		ck_assert_str_eq(buf, "john@example.test");
		ck_assert_int_eq(tlspool_x509_describe(john, &b), 0);
		ck_assert_str_ne(a.subject, b.subject);
		ck_assert_int_ne(memcmp(a.spki_sha256, b.spki_sha256, 32), 0);
		ck_assert_int_eq(tlspool_x509_describe(www, &b), 0);
		ck_assert_str_eq(a.subject, b.subject);
		ck_assert_int_eq(memcmp(a.spki_sha256, b.spki_sha256, 32), 0);
	}
}
END_TEST

/* --- name checks, both ways: a row fails if its rule is broken --- */

static const struct {
	const char *cert, *ref;
	int want;
	const char *why;
} names[] = {
        /* negative */
        {"www", "other.example.test", 0, "dNSName is another name"},
        {"www", "example.test", 0, "parent of the dNSName"},
        {"www", "a.www.example.test", 0, "child of the dNSName"},
        {"wild", "example.test", 0, "wildcard needs one label"},
        {"wild", "a.b.example.test", 0, "wildcard matches one label only"},
        {"wild", "*.example.test", 0, "reference with a wildcard"},
        {"wild", ".example.test", 0, "empty label for the wildcard"},
        {"noname", "Org", 0, "O= is no name"},
        {"root", "tlspool test root", 0, "the CN is never a name"},
        {"www", "john@example.test", 0, "host cert for a user reference"},
        {"john", "example.test", 0, "user cert is not the domain"},
        {"john", "John@example.test", 0, "local part is case-sensitive"},
        {"john", "jane@example.test", 0, "another user"},
        {"mail", "example.test", 0, "rfc822Name names no domain"},
        {"baddc", "www.test", -1, "ambiguous DN names nothing"},
        {"baduid", "john@example.test", -1, "uid= not next to dc="},
        {"wwwdc", "example.test", 0, "dc= domain is www.example.test"},
        {"cndc", "Web Server", 0, "CN with dc="},
        /* positive */
        {"www", "www.example.test", 1, "dNSName"},
        {"www", "WWW.Example.TEST.", 1, "case and final dot"},
        {"wild", "www.example.test", 1, "wildcard, one label"},
        {"wild", "mail.example.test", 1, "wildcard, another label"},
        {"wwwdc", "www.example.test", 1, "dc= domain"},
        {"cndc", "www.example.test", 1, "cn= more specific than dc="},
        {"john", "john@example.test", 1, "uid= and dc="},
        {"john", "john@EXAMPLE.test", 1, "domain without case"},
        {"mail", "john@example.test", 1, "rfc822Name"},
        {"ldapuid", "john@example.test", 1,
         "uid= without dc= falls back to SAN"},
};

START_TEST(name_check)
{
	ck_assert_msg(tlspool_x509_names(tp_cert(names[_i].cert),
	                                 names[_i].ref) == names[_i].want,
	              "%s %s: %s", names[_i].cert, names[_i].ref,
	              names[_i].why);
}
END_TEST

START_TEST(dns_id_rules)
{
	/* RFC 6125 section 6.4.3 and RFC 9525 section 6.3 on their own. */
	ck_assert_int_eq(tp_dns_id_matches("*.test", 6, "example.test"), 0);
	ck_assert_int_eq(
	        tp_dns_id_matches("w*.example.test", 15, "www.example.test"),
	        0);
	ck_assert_int_eq(
	        tp_dns_id_matches("*w.example.test", 15, "ww.example.test"), 0);
	ck_assert_int_eq(tp_dns_id_matches("a.*.test", 8, "a.b.test"), 0);
	ck_assert_int_eq(tp_dns_id_matches("*.*.test", 8, "a.b.test"), 0);
	ck_assert_int_eq(tp_dns_id_matches("*", 1, "a"), 0);
	ck_assert_int_eq(tp_dns_id_matches("", 0, ""), 0);
	ck_assert_int_eq(tp_dns_id_matches("www.example.test", 3, "www"), 1);
	ck_assert_int_eq(
	        tp_dns_id_matches("*.example.test", 14, "x.example.test"), 1);
	ck_assert_int_eq(
	        tp_dns_id_matches("*.example.test.", 15, "x.EXAMPLE.test"), 1);
}
END_TEST

/* --- positive cases --- */

static const struct {
	const char *cert, *id;
} ids[] = {
        {"www", "www.example.test"},      /* dNSName */
        {"wwwdc", "www.example.test"},    /* dc= only */
        {"cndc", "www.example.test"},     /* cn= more specific than dc= */
        {"john", "john@example.test"},    /* uid= + dc= */
        {"mail", "john@example.test"},    /* rfc822Name */
        {"ldapuid", "john@example.test"}, /* uid= without dc=: the SAN */
        {"other", "www.other.test"},
        {"wild", NULL}, /* only a wildcard: names no host */
};

START_TEST(identity)
{
	char buf[320];
	int n = tlspool_x509_identity(tp_cert(ids[_i].cert), buf, sizeof(buf));

	if (ids[_i].id == NULL) {
		ck_assert_int_eq(n, -1);
		ck_assert_int_eq(errno, ENOENT);
		return;
	}
	ck_assert_msg(n >= 0, "%s: errno %d", ids[_i].cert, errno);
	ck_assert_str_eq(buf, ids[_i].id);
	ck_assert_int_eq(n, (int)strlen(ids[_i].id));
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("x509id");
	TCase *neg = tcase_create("negative");
	TCase *pos = tcase_create("positive");

	tcase_add_loop_test(neg, identity_refused, 0,
	                    sizeof(no_identity) / sizeof(no_identity[0]));
	tcase_add_test(neg, identity_bad_input);
	tcase_add_test(neg, memo_follows_the_bytes);
	tcase_add_loop_test(pos, name_check, 0,
	                    sizeof(names) / sizeof(names[0]));
	tcase_add_test(pos, dns_id_rules);
	tcase_add_loop_test(pos, identity, 0, sizeof(ids) / sizeof(ids[0]));
	suite_add_tcase(s, neg);
	suite_add_tcase(s, pos);
	return s;
}

int main(void)
{
	int rv;

	tp_certs_make();
	rv = tp_run_suite(suite());
	tp_certs_free();
	return rv;
}
