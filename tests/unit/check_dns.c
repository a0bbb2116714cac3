/*
 * Lookups against the served test hierarchy (zones/serve, started by
 * tests/run): every case gets its own verdict, and the error cases are
 * never "secure" and never "no records".
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "testutil.h"

static tlspool_dns *open_dns(const char *conf)
{
	char path[512], err[512];
	tlspool_dns_config *cfg;
	tlspool_dns *dns;

	snprintf(path, sizeof(path), "%s/%s", tp_zones_dir(), conf);
	cfg = tlspool_dns_config_load(path, err, sizeof(err));
	ck_assert_msg(cfg != NULL, "%s", err);
	dns = tlspool_dns_new(cfg, err, sizeof(err));
	tlspool_dns_config_free(cfg);
	ck_assert_msg(dns != NULL, "%s", err);
	return dns;
}

static tlspool_dns_answer *ask(tlspool_dns *dns, const char *name,
                               uint16_t type)
{
	tlspool_dns_answer *a = NULL;
	char err[256];

	ck_assert_msg(tlspool_dns_lookup(dns, name, type, &a, err, sizeof(err)) == 0,
	              "%s: %s", name, err);
	ck_assert_ptr_nonnull(a);
	return a;
}

/* One row: a name, a type, and what the lookup must say. */
static const struct {
	const char *name;
	uint16_t type;
	tlspool_dns_verdict verdict;
	size_t nrr, ncname;
	const char *owner;  /* where the records are, if not the name */
	const char *detail; /* substring of the detail, for errors */
} rows[] = {
        /* negative cases first: never secure, never "no records" */
        {"_443._tcp.www.bogus.test", 52, TLSPOOL_DNS_BOGUS, 0, 0, NULL, "validation failed"},
        {"_443._tcp.www.expired.test", 52, TLSPOOL_DNS_BOGUS, 0, 0, NULL, "RRSIG expired"},
        /* getdns itself reports a CNAME loop as bogus */
        {"_443._tcp.loop1.example.test", 52, TLSPOOL_DNS_BOGUS, 0, 0, NULL, NULL},
        {"_443._tcp.www.insecure.test", 52, TLSPOOL_DNS_INSECURE, 1, 0, NULL, NULL},
        {"_443._tcp.toinsecure.example.test", 52, TLSPOOL_DNS_INSECURE, 1, 1, "_443._tcp.www.insecure.test.", NULL},
        {"_443._tcp.nodata.example.test", 52, TLSPOOL_DNS_SECURE_NODATA, 0, 0, NULL, NULL},
        {"_443._tcp.missing.example.test", 52, TLSPOOL_DNS_SECURE_NXDOMAIN, 0, 0, NULL, NULL},
        {"_443._tcp.dangling.example.test", 52, TLSPOOL_DNS_SECURE_NXDOMAIN, 0, 1, "_443._tcp.nothere.example.test.", NULL},
        /* positive cases */
        {"_443._tcp.www.example.test", 52, TLSPOOL_DNS_SECURE, 4, 0, NULL, NULL},
        {"_443._tcp.www.example.test.", 52, TLSPOOL_DNS_SECURE, 4, 0, "_443._tcp.www.example.test.", NULL},
        {"_443._udp.www.example.test", 52, TLSPOOL_DNS_SECURE, 1, 0, NULL, NULL},
        {"_443._tcp.www.other.test", 52, TLSPOOL_DNS_SECURE, 1, 0, NULL, NULL},
        {"_443._tcp.alias.example.test", 52, TLSPOOL_DNS_SECURE, 4, 1, "_443._tcp.www.example.test.", NULL},
        {"_443._tcp.far.example.test", 52, TLSPOOL_DNS_SECURE, 1, 1, "_443._tcp.www.other.test.", NULL},
        {"www.example.test", TLSPOOL_RR_A, TLSPOOL_DNS_SECURE, 1, 0, NULL, NULL},
        {"www.example.test", TLSPOOL_RR_AAAA, TLSPOOL_DNS_SECURE, 1, 0, NULL, NULL},
        {"webalias.example.test", TLSPOOL_RR_A, TLSPOOL_DNS_SECURE, 1, 1, "www.other.test.", NULL},
        {"96d9632f363564cc3032521409cf22a852f2032eec099ed5967c0d00._openpgpkey.example.test", 61, TLSPOOL_DNS_SECURE, 1, 0, NULL, NULL},
        {"96d9632f363564cc3032521409cf22a852f2032eec099ed5967c0d00._smimecert.example.test", 53, TLSPOOL_DNS_SECURE, 1, 0, NULL, NULL},
};

START_TEST(verdicts)
{
	tlspool_dns *dns = open_dns("tlspool.conf");
	tlspool_dns_answer *a = ask(dns, rows[_i].name, rows[_i].type);
	const char *owner = rows[_i].owner ? rows[_i].owner : a->qname;

	ck_assert_msg(a->verdict == rows[_i].verdict, "%s: %s, want %s (%s)",
	              rows[_i].name, tlspool_dns_verdict_name(a->verdict),
	              tlspool_dns_verdict_name(rows[_i].verdict), a->detail);
	ck_assert_uint_eq(a->nrr, rows[_i].nrr);
	ck_assert_uint_eq(a->ncname, rows[_i].ncname);
	if (rows[_i].verdict == TLSPOOL_DNS_SECURE ||
	    rows[_i].verdict == TLSPOOL_DNS_INSECURE)
		ck_assert_msg(tp_name_equal(a->owner, owner), "owner %s", a->owner);
	if (rows[_i].detail)
		ck_assert_msg(strstr(a->detail, rows[_i].detail) != NULL,
		              "detail \"%s\"", a->detail);
	for (size_t i = 0; i < a->nrr; i++) {
		tlspool_tlsa t;

		ck_assert_uint_eq(a->rr[i].type, rows[_i].type);
		ck_assert_uint_gt(a->rr[i].ttl, 0);
		if (rows[_i].type == TLSPOOL_RR_TLSA)
			ck_assert_int_eq(tlspool_tlsa_parse(a->rr[i].rdata, a->rr[i].rdlen, &t), 0);
	}
	if (a->verdict == TLSPOOL_DNS_SECURE) {
		/* Signed with a four-week validity at test time. */
		ck_assert_int_gt(a->rrsig_expiration, time(NULL) + 86400);
		ck_assert_uint_gt(a->ttl, 0);
	}
	tlspool_dns_answer_free(a);
	tlspool_dns_free(dns);
}
END_TEST

/* The same rows in one handle, twice over: the second time the zones'
 * keys are kept (dnschain.c) and most answers come from one query
 * validated with them; every verdict stays what a full lookup says. */
START_TEST(verdicts_with_kept_keys)
{
	tlspool_dns *dns = open_dns("tlspool.conf");
	unsigned long kept, full;

	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
			tlspool_dns_answer *a =
			        ask(dns, rows[i].name, rows[i].type);

			ck_assert_msg(a->verdict == rows[i].verdict,
			              "pass %d: %s: %s, want %s (%s)", pass,
			              rows[i].name,
			              tlspool_dns_verdict_name(a->verdict),
			              tlspool_dns_verdict_name(rows[i].verdict),
			              a->detail);
			ck_assert_uint_eq(a->nrr, rows[i].nrr);
			ck_assert_uint_eq(a->ncname, rows[i].ncname);
			if (rows[i].detail)
				ck_assert_msg(strstr(a->detail,
				                     rows[i].detail) != NULL,
				              "detail \"%s\"", a->detail);
			tlspool_dns_answer_free(a);
		}
	tp_dns_counts(dns, &kept, &full);
	ck_assert_uint_ge(kept, 10);
	tlspool_dns_free(dns);
}
END_TEST

START_TEST(timeout_is_not_nodata)
{
	tlspool_dns *dns = open_dns("blackhole.conf");
	tlspool_dns_answer *a = ask(dns, "_443._tcp.www.example.test", 52);

	ck_assert_str_eq(tlspool_dns_verdict_name(a->verdict), "timeout");
	ck_assert_uint_eq(a->nrr, 0);
	ck_assert_ptr_nonnull(strstr(a->detail, "no answer within 500 ms"));
	tlspool_dns_answer_free(a);
	tlspool_dns_free(dns);
}
END_TEST

START_TEST(wrong_trust_anchor_is_bogus)
{
	/* The real root's key does not sign the test root: every signed
	 * answer fails validation. */
	tlspool_dns *dns;
	tlspool_dns_config *cfg;
	tlspool_dns_answer *a;
	char path[512], err[256];

	snprintf(path, sizeof(path), "%s/tlspool.conf", tp_zones_dir());
	cfg = tlspool_dns_config_load(path, err, sizeof(err));
	ck_assert_ptr_nonnull(cfg);
	ck_assert_int_eq(tlspool_dns_config_set(cfg, "trust_anchor", "/usr/share/dns/root.key", err, sizeof(err)), 0);
	dns = tlspool_dns_new(cfg, err, sizeof(err));
	tlspool_dns_config_free(cfg);
	ck_assert_ptr_nonnull(dns);
	a = ask(dns, "_443._tcp.www.example.test", 52);
	ck_assert_msg(a->verdict == TLSPOOL_DNS_BOGUS, "got %s",
	              tlspool_dns_verdict_name(a->verdict));
	ck_assert_uint_eq(a->nrr, 0);
	tlspool_dns_answer_free(a);
	tlspool_dns_free(dns);
}
END_TEST

START_TEST(bad_trust_anchor_file)
{
	tlspool_dns_config *cfg = tlspool_dns_config_new();
	char err[256];

	ck_assert_int_eq(tlspool_dns_config_set(cfg, "trust_anchor", "/nonexistent.key", NULL, 0), 0);
	ck_assert_ptr_null(tlspool_dns_new(cfg, err, sizeof(err)));
	ck_assert_str_eq(err, "trust anchor /nonexistent.key: No such file or directory");
	/* A file without DS or DNSKEY records is no anchor. */
	ck_assert_int_eq(tlspool_dns_config_set(cfg, "trust_anchor", "/etc/hostname", NULL, 0), 0);
	ck_assert_ptr_null(tlspool_dns_new(cfg, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "no DS or DNSKEY records"));
	ck_assert_ptr_null(tlspool_dns_new(NULL, err, sizeof(err)));
	tlspool_dns_config_free(cfg);
	tlspool_dns_free(NULL);
	tlspool_dns_answer_free(NULL);
}
END_TEST

START_TEST(bad_lookup_arguments)
{
	tlspool_dns *dns = open_dns("tlspool.conf");
	tlspool_dns_answer *a = (void *)1;
	char err[256];

	ck_assert_int_eq(tlspool_dns_lookup(dns, "bad..name", 52, &a, err, sizeof(err)), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_null(a);
	ck_assert_int_eq(tlspool_dns_lookup(dns, NULL, 52, &a, err, sizeof(err)), -1);
	ck_assert_int_eq(tlspool_dns_lookup(NULL, "a.test", 52, &a, err, sizeof(err)), -1);
	ck_assert_int_eq(tlspool_dns_lookup(dns, "a.test", 52, NULL, err, sizeof(err)), -1);
	tlspool_dns_free(dns);
}
END_TEST

/* Two configurations in one process do not share state: the same name
 * is secure under the test anchor and bogus under another, interleaved. */
START_TEST(two_configurations)
{
	tlspool_dns *good = open_dns("tlspool.conf");
	tlspool_dns_config *cfg;
	tlspool_dns *other;
	char path[512], err[256];

	snprintf(path, sizeof(path), "%s/tlspool.conf", tp_zones_dir());
	cfg = tlspool_dns_config_load(path, err, sizeof(err));
	tlspool_dns_config_set(cfg, "trust_anchor", "/usr/share/dns/root.key", NULL, 0);
	other = tlspool_dns_new(cfg, err, sizeof(err));
	tlspool_dns_config_free(cfg);
	ck_assert_ptr_nonnull(other);
	for (int i = 0; i < 3; i++) {
		tlspool_dns_answer *a = ask(good, "_443._tcp.www.example.test", 52);
		tlspool_dns_answer *b = ask(other, "_443._tcp.www.example.test", 52);

		ck_assert_int_eq(a->verdict, TLSPOOL_DNS_SECURE);
		ck_assert_int_eq(b->verdict, TLSPOOL_DNS_BOGUS);
		tlspool_dns_answer_free(a);
		tlspool_dns_answer_free(b);
	}
	tlspool_dns_free(good);
	tlspool_dns_free(other);
}
END_TEST

static tlspool_dns *shared;

static void *worker(void *arg)
{
	static const char *const names[] = {"_443._tcp.www.example.test",
	                                    "_443._tcp.www.bogus.test",
	                                    "_443._tcp.far.example.test"};
	static const tlspool_dns_verdict want[] = {
	        TLSPOOL_DNS_SECURE, TLSPOOL_DNS_BOGUS, TLSPOOL_DNS_SECURE};
	long id = (long)arg, bad = 0;

	for (int i = 0; i < 10; i++) {
		int k = (int)((id + i) % 3);
		tlspool_dns_answer *a = NULL;

		if (tlspool_dns_lookup(shared, names[k], 52, &a, NULL, 0) != 0 ||
		    a->verdict != want[k])
			bad++;
		tlspool_dns_answer_free(a);
	}
	return (void *)bad;
}

START_TEST(threads_share_one_handle)
{
	pthread_t t[8];
	long total = 0;

	shared = open_dns("tlspool.conf");
	for (long i = 0; i < 8; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, worker, (void *)i), 0);
	for (int i = 0; i < 8; i++) {
		void *bad;

		pthread_join(t[i], &bad);
		total += (long)bad;
	}
	tlspool_dns_free(shared);
	ck_assert_int_eq(total, 0);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("dns");
	TCase *neg = tcase_create("negative");
	TCase *pos = tcase_create("positive");

	tcase_set_timeout(neg, 30);
	tcase_set_timeout(pos, 60);
	tcase_add_test(neg, timeout_is_not_nodata);
	tcase_add_test(neg, wrong_trust_anchor_is_bogus);
	tcase_add_test(neg, bad_trust_anchor_file);
	tcase_add_test(neg, bad_lookup_arguments);
	tcase_add_loop_test(pos, verdicts, 0, sizeof(rows) / sizeof(rows[0]));
	tcase_add_test(pos, verdicts_with_kept_keys);
	tcase_add_test(pos, two_configurations);
	tcase_add_test(pos, threads_share_one_handle);
	suite_add_tcase(s, neg);
	suite_add_tcase(s, pos);
	return s;
}

int main(void)
{
	return tp_run_suite(suite());
}
