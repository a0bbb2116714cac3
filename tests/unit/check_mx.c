/*
 * Destinations by MX (RFC 7672) and SRV (RFC 7673) against zones signed
 * and served for this test: the RRset's verdict (secure, insecure, bogus,
 * null MX, implicit MX), the hosts' order, the address verdicts, the TLSA
 * base domain after the CNAME rules of RFC 7672 section 2.2.3, unusable
 * records, and the reference identifiers.
 *
 * The fixture (run once, before Check forks the tests) publishes the
 * records below and starts zones/serve.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <tlspool/starttls.h>
#include <tlspool/validate.h>

#include "fixture.h"
#include "testutil.h"

static char dir[] = "/tmp/tlspool-mx-XXXXXX";

#define H1 "1111111111111111111111111111111111111111111111111111111111111111"
#define LONGHOST                                                               \
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."                                                                 \
	"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb."                                                                 \
	"ccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc."                                                                 \
	"dddddddddddddddddddddddddddddddddddddddd.example.test."
#define H2 "2222222222222222222222222222222222222222222222222222222222222222"

static const char example_add[] =
        /* secure MX: three hosts, one through a secure CNAME */
        "mail IN MX 20 mx2.example.test.\n"
        "mail IN MX 10 mx1.example.test.\n"
        "mail IN MX 30 mxcname.example.test.\n"
        "mail IN MX 40 mxplain.example.test.\n"
        "mail IN MX 50 mxunusable.example.test.\n"
        "mail IN MX 60 mx.bogus.test.\n"
        "mail IN MX 70 mx.insecure.test.\n"
        "mail IN MX 80 mxins.example.test.\n"
        "mail IN MX 90 mxfallback.example.test.\n"
        "mail IN MX 95 mx1.example.test.\n"
        "mx1 IN A 127.0.0.2\n"
        "mx1 IN AAAA ::1\n"
        "_25._tcp.mx1 IN TLSA 3 1 1 " H1 "\n"
        "mx2 IN A 127.0.0.3\n"
        "_25._tcp.mx2 IN TLSA 2 0 1 " H2 "\n"
        "_25._tcp.mx2 IN TLSA 0 0 1 " H2 "\n"
        /* a secure alias: TLSA at the expanded name */
        "mxcname IN CNAME mx1.example.test.\n"
        "_25._tcp.mxcname IN TLSA 3 1 1 " H2 "\n"
        /* an alias whose target has no TLSA: the original name's */
        "mxfallback IN CNAME mxplain.example.test.\n"
        "_25._tcp.mxfallback IN TLSA 3 1 1 " H2 "\n"
        /* no TLSA at all */
        "mxplain IN A 127.0.0.4\n"
        /* none usable for SMTP: PKIX-EE, unknown usage, selector, mtype */
        "mxunusable IN A 127.0.0.5\n"
        "_25._tcp.mxunusable IN TLSA 1 1 1 " H1 "\n"
        "_25._tcp.mxunusable IN TLSA 4 1 1 " H1 "\n"
        "_25._tcp.mxunusable IN TLSA 3 2 1 " H1 "\n"
        "_25._tcp.mxunusable IN TLSA 3 1 7 " H1 "\n"
        /* an alias into an unsigned zone: the original name's TLSA */
        "mxins IN CNAME mx.insecure.test.\n"
        "_25._tcp.mxins IN TLSA 3 1 1 " H1 "\n"
        /* equal preferences */
        "equal IN MX 10 mx1.example.test.\n"
        "equal IN MX 10 mx2.example.test.\n"
        "equal IN MX 5 mxplain.example.test.\n"
        /* more hosts than are kept (16), the lowest preferences listed
         * last; a host listed at a high preference and a low one; a null
         * MX among others */
        "many IN MX 40 m20.example.test.\n"
        "many IN MX 39 m19.example.test.\n"
        "many IN MX 38 m18.example.test.\n"
        "many IN MX 37 m17.example.test.\n"
        "many IN MX 36 m16.example.test.\n"
        "many IN MX 35 m15.example.test.\n"
        "many IN MX 34 m14.example.test.\n"
        "many IN MX 33 m13.example.test.\n"
        "many IN MX 32 m12.example.test.\n"
        "many IN MX 31 m11.example.test.\n"
        "many IN MX 30 m10.example.test.\n"
        "many IN MX 29 m9.example.test.\n"
        "many IN MX 28 m8.example.test.\n"
        "many IN MX 27 m7.example.test.\n"
        "many IN MX 26 m6.example.test.\n"
        "many IN MX 25 m5.example.test.\n"
        "many IN MX 24 m4.example.test.\n"
        "many IN MX 23 m3.example.test.\n"
        "many IN MX 22 m2.example.test.\n"
        "many IN MX 21 m1.example.test.\n"
        "many IN MX 60000 m1.example.test.\n"
        "many IN MX 0 .\n"
        /* a CNAME chain secure, then insecure, then secure again: the
         * expansion is insecure (RFC 7672 section 2.2.3) */
        "midmail IN MX 10 mxmid.example.test.\n"
        "mxmid IN CNAME mid.insecure.test.\n"
        "_25._tcp.mxmid IN TLSA 3 1 1 " H1 "\n"
        "back IN A 127.0.0.10\n"
        "_25._tcp.back IN TLSA 3 1 1 " H2 "\n"
        /* an MX host whose alias loops */
        "loopmail IN MX 10 mxloop1.example.test.\n"
        "mxloop1 IN CNAME mxloop2.example.test.\n"
        "mxloop2 IN CNAME mxloop1.example.test.\n"
        /* a host of 245 octets: "_25._tcp." before it makes no name */
        "longmail IN MX 10 " LONGHOST "\n"
        "longmail IN MX 20 mx1.example.test.\n"
        LONGHOST " IN A 127.0.0.11\n"
        /* RFC 7505 null MX; implicit MX */
        "nullmx IN MX 0 .\n"
        "implicit IN A 127.0.0.7\n"
        "_25._tcp.implicit IN TLSA 3 1 1 " H1 "\n"
        /* MX host whose address lookup is bogus */
        "mailbogusaddr IN MX 10 www.expired.test.\n"
        /* SRV */
        "_xmpp-client._tcp IN SRV 20 0 5223 xmpp2.example.test.\n"
        "_xmpp-client._tcp IN SRV 10 0 5222 xmpp1.example.test.\n"
        "xmpp1 IN A 127.0.0.2\n"
        "_5222._tcp.xmpp1 IN TLSA 3 1 1 " H1 "\n"
        "xmpp2 IN A 127.0.0.3\n"
        "_5223._tcp.xmpp2 IN TLSA 1 1 1 " H1 "\n"
        "_imaps._tcp IN SRV 0 0 0 .\n";

static const char insecure_add[] =
        "@ IN MX 10 mx1.example.test.\n"
        "mid IN CNAME back.example.test.\n"
        "mx IN A 127.0.0.8\n"
        "_25._tcp.mx IN TLSA 3 1 1 " H1 "\n"
        "_xmpp-client._tcp IN SRV 0 0 5222 xmpp1.example.test.\n";

static const char bogus_add[] = "mx IN A 127.0.0.9\n"
                                "_25._tcp.mx IN TLSA 3 1 1 " H1 "\n";

static const char expired_add[] = "@ IN MX 10 mx1.example.test.\n";

static void put(const char *name, const char *text)
{
	char path[512];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "w");
	need(fp != NULL, path);
	fputs(text, fp);
	fclose(fp);
}

static void setup(void)
{
	char cmd[4096];
	const char *src = getenv("TLSPOOL_SOURCE_DIR");

	if (src == NULL)
		src = ".";
	need(mkdtemp(dir) != NULL, "mkdtemp");
	put("example.add", example_add);
	put("insecure.add", insecure_add);
	put("bogus.add", bogus_add);
	put("expired.add", expired_add);
	snprintf(cmd, sizeof(cmd),
	         "%s/zones/serve start %s/z --add example.test %s/example.add "
	         "--add insecure.test %s/insecure.add --add bogus.test "
	         "%s/bogus.add --add expired.test %s/expired.add 2>/dev/null",
	         src, dir, dir, dir, dir, dir);
	run_sh(cmd);
}

static void teardown(void)
{
	stop_zones(dir);
}

static tlspool_dns *open_dns(void)
{
	char path[512], err[512];
	tlspool_dns_config *cfg;
	tlspool_dns *dns;

	snprintf(path, sizeof(path), "%s/z/tlspool.conf", dir);
	cfg = tlspool_dns_config_load(path, err, sizeof(err));
	ck_assert_msg(cfg != NULL, "%s", err);
	dns = tlspool_dns_new(cfg, err, sizeof(err));
	tlspool_dns_config_free(cfg);
	ck_assert_msg(dns != NULL, "%s", err);
	return dns;
}

static tlspool_dest *mx(tlspool_dns *dns, const char *domain, unsigned port)
{
	tlspool_dest *d = NULL;
	char err[512];

	ck_assert_msg(tlspool_mx_resolve(dns, domain, port, &d, err,
	                                 sizeof(err)) == 0,
	              "%s: %s", domain, err);
	ck_assert_ptr_nonnull(d);
	return d;
}

static const tlspool_dest_host *host(const tlspool_dest *d, const char *name)
{
	for (size_t i = 0; i < d->nhosts; i++)
		if (strcmp(d->hosts[i].name, name) == 0)
			return &d->hosts[i];
	ck_abort_msg("%s: not among the hosts", name);
	return NULL;
}

static int has_name(const tlspool_dest_host *h, const char *name)
{
	for (size_t i = 0; i < h->nnames; i++)
		if (strcmp(h->names[i], name) == 0)
			return 1;
	return 0;
}

/* --- negative cases first --------------------------------------------- */

START_TEST(bad_arguments)
{
	tlspool_dns *dns = open_dns();
	tlspool_dest *d = (tlspool_dest *)1;
	char err[256];

	ck_assert_int_eq(tlspool_mx_resolve(dns, "not a domain", 25, &d, err,
	                                    sizeof(err)),
	                 -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_null(d);
	ck_assert_int_eq(tlspool_mx_resolve(dns, "example.test", 70000, &d, err,
	                                    sizeof(err)),
	                 -1);
	ck_assert_int_eq(tlspool_srv_resolve(dns, "a.b", "example.test", &d,
	                                     err, sizeof(err)),
	                 -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(tlspool_srv_resolve(dns, "", "example.test", &d, err,
	                                     sizeof(err)),
	                 -1);
	ck_assert_int_eq(tlspool_mx_resolve(NULL, "example.test", 25, &d, err,
	                                    sizeof(err)),
	                 -1);
	tlspool_dns_free(dns);
}
END_TEST

START_TEST(bogus_mx_fails_closed)
{
	tlspool_dns *dns = open_dns();
	tlspool_dest *d = mx(dns, "expired.test", 0);

	ck_assert_str_eq(tlspool_dest_verdict_name(d->verdict), "dns-error");
	ck_assert_uint_eq(d->nhosts, 0);
	ck_assert_ptr_nonnull(strstr(d->reason, "bogus"));
	tlspool_dest_free(d);
	tlspool_dns_free(dns);
}
END_TEST

START_TEST(insecure_mx_no_dane)
{
	tlspool_dns *dns = open_dns();
	tlspool_dest *d = mx(dns, "insecure.test", 0);
	const tlspool_dest_host *h;

	ck_assert_str_eq(tlspool_dest_verdict_name(d->verdict), "insecure");
	ck_assert_uint_eq(d->nhosts, 1);
	h = host(d, "mx1.example.test.");
	/* the host has TLSA records, but an insecure MX RRset could have
	 * been forged to name any host: no DANE (RFC 7672 section 2.2.1) */
	ck_assert_int_eq(h->verdict, TLSPOOL_HOST_INSECURE);
	ck_assert_ptr_null(h->tlsa);
	ck_assert_uint_eq(h->nnames, 0);
	tlspool_dest_free(d);
	tlspool_dns_free(dns);
}
END_TEST

START_TEST(null_mx)
{
	tlspool_dns *dns = open_dns();
	tlspool_dest *d = mx(dns, "nullmx.example.test", 0);

	ck_assert_int_eq(d->verdict, TLSPOOL_DEST_NO_SERVICE);
	ck_assert_uint_eq(d->nhosts, 0);
	ck_assert_ptr_nonnull(strstr(d->reason, "RFC 7505"));
	tlspool_dest_free(d);
	d = mx(dns, "nothere.example.test", 0);
	ck_assert_int_eq(d->verdict, TLSPOOL_DEST_NO_SERVICE);
	ck_assert_uint_eq(d->nhosts, 0);
	tlspool_dest_free(d);
	tlspool_dns_free(dns);
}
END_TEST

START_TEST(bogus_address_skips_host)
{
	tlspool_dns *dns = open_dns();
	tlspool_dest *d = mx(dns, "mailbogusaddr.example.test", 0);
	const tlspool_dest_host *h;

	ck_assert_int_eq(d->verdict, TLSPOOL_DEST_SECURE);
	h = host(d, "www.expired.test.");
	ck_assert_str_eq(tlspool_host_verdict_name(h->verdict), "dns-error");
	ck_assert_ptr_null(h->tlsa);
	tlspool_dest_free(d);
	tlspool_dns_free(dns);
}
END_TEST

/* --- the hosts of a secure MX RRset ----------------------------------- */

START_TEST(secure_mx_hosts)
{
	tlspool_dns *dns = open_dns();
	tlspool_dest *d = mx(dns, "mail.example.test", 0);
	const tlspool_dest_host *h;
	static const char *const order[] = {
	        "mx1.example.test.",        "mx2.example.test.",
	        "mxcname.example.test.",    "mxplain.example.test.",
	        "mxunusable.example.test.", "mx.bogus.test.",
	        "mx.insecure.test.",        "mxins.example.test.",
	        "mxfallback.example.test."};

	ck_assert_int_eq(d->verdict, TLSPOOL_DEST_SECURE);
	ck_assert_str_eq(d->domain, "mail.example.test.");
	ck_assert_uint_eq(d->rrset->nrr, 10);
	/* preference order; mx1 (also at 95) only once */
	ck_assert_uint_eq(d->nhosts, 9);
	for (size_t i = 0; i < 9; i++)
		ck_assert_str_eq(d->hosts[i].name, order[i]);

	h = host(d, "mx1.example.test.");
	ck_assert_int_eq(h->verdict, TLSPOOL_HOST_DANE);
	ck_assert_uint_eq(h->port, 25);
	ck_assert_int_eq(h->address, TLSPOOL_DNS_SECURE);
	ck_assert_uint_eq(h->a->nrr, 1);
	ck_assert_uint_eq(h->aaaa->nrr, 1);
	ck_assert_str_eq(h->owner, "_25._tcp.mx1.example.test.");
	ck_assert_str_eq(h->base, "mx1.example.test.");
	ck_assert_uint_eq(h->nusable, 1);
	/* reference identifiers: the base (the MX host) and the next-hop
	 * domain (RFC 7672 section 3.2.2) */
	ck_assert_uint_eq(h->nnames, 2);
	ck_assert_str_eq(h->names[0], "mx1.example.test");
	ck_assert_str_eq(h->names[1], "mail.example.test");

	/* DANE-TA usable, PKIX-TA not: one usable of two */
	h = host(d, "mx2.example.test.");
	ck_assert_int_eq(h->verdict, TLSPOOL_HOST_DANE);
	ck_assert_uint_eq(h->nusable, 1);
	ck_assert_uint_eq(h->tlsa->nrr, 2);

	h = host(d, "mxplain.example.test.");
	ck_assert_str_eq(tlspool_host_verdict_name(h->verdict), "no-tlsa");
	ck_assert_int_eq(h->tlsa->verdict, TLSPOOL_DNS_SECURE_NXDOMAIN);
	ck_assert_uint_eq(h->nnames, 0);

	h = host(d, "mxunusable.example.test.");
	ck_assert_str_eq(tlspool_host_verdict_name(h->verdict), "unusable");
	ck_assert_uint_eq(h->nusable, 0);
	ck_assert_uint_eq(h->tlsa->nrr, 4);
	ck_assert_ptr_nonnull(strstr(h->reason, "none usable"));

	/* a TLSA lookup that is bogus: the host must not be used */
	h = host(d, "mx.bogus.test.");
	ck_assert_int_eq(h->verdict, TLSPOOL_HOST_DNS_ERROR);
	ck_assert_int_eq(h->tlsa->verdict, TLSPOOL_DNS_BOGUS);

	/* insecure addresses, no alias: no TLSA lookup at all */
	h = host(d, "mx.insecure.test.");
	ck_assert_int_eq(h->verdict, TLSPOOL_HOST_INSECURE);
	ck_assert_int_eq(h->address, TLSPOOL_DNS_INSECURE);
	ck_assert_ptr_null(h->tlsa);
	tlspool_dest_free(d);
	tlspool_dns_free(dns);
}
END_TEST

/* RFC 7672 section 2.2.3: the CNAME-expanded name when the chain is
 * secure, then the original name; the original alone when insecure. */
START_TEST(cname_rules)
{
	tlspool_dns *dns = open_dns();
	tlspool_dest *d = mx(dns, "mail.example.test", 0);
	const tlspool_dest_host *h;

	h = host(d, "mxcname.example.test.");
	ck_assert_str_eq(h->expanded, "mx1.example.test.");
	ck_assert_int_eq(h->expanded_secure, 1);
	ck_assert_str_eq(h->base, "mx1.example.test.");
	ck_assert_str_eq(h->owner, "_25._tcp.mx1.example.test.");
	ck_assert_ptr_null(h->tlsa_expanded);
	ck_assert_int_eq(h->verdict, TLSPOOL_HOST_DANE);
	ck_assert(has_name(h, "mx1.example.test"));
	ck_assert(has_name(h, "mxcname.example.test"));
	ck_assert(has_name(h, "mail.example.test"));

	h = host(d, "mxfallback.example.test.");
	ck_assert_str_eq(h->expanded, "mxplain.example.test.");
	ck_assert_int_eq(h->expanded_secure, 1);
	ck_assert_ptr_nonnull(h->tlsa_expanded);
	ck_assert_int_eq(h->tlsa_expanded->verdict,
	                 TLSPOOL_DNS_SECURE_NXDOMAIN);
	ck_assert_str_eq(h->base, "mxfallback.example.test.");
	ck_assert_str_eq(h->owner, "_25._tcp.mxfallback.example.test.");
	ck_assert_int_eq(h->verdict, TLSPOOL_HOST_DANE);

	h = host(d, "mxins.example.test.");
	ck_assert_str_eq(h->expanded, "mx.insecure.test.");
	ck_assert_int_eq(h->expanded_secure, 0);
	ck_assert_int_eq(h->address, TLSPOOL_DNS_INSECURE);
	ck_assert_str_eq(h->base, "mxins.example.test.");
	ck_assert_int_eq(h->verdict, TLSPOOL_HOST_DANE);
	ck_assert(!has_name(h, "mx.insecure.test"));
	tlspool_dest_free(d);
	tlspool_dns_free(dns);
}
END_TEST

/* An insecure link in the middle of the chain: the expanded name is not
 * the TLSA base domain nor a reference identifier, though its own zone is
 * signed; an alias that loops is a DNS error for that host. */
START_TEST(cname_chain_insecure_in_the_middle)
{
	tlspool_dns *dns = open_dns();
	tlspool_dest *d = mx(dns, "midmail.example.test", 0);
	const tlspool_dest_host *h = host(d, "mxmid.example.test.");

	ck_assert_str_eq(h->expanded, "back.example.test.");
	ck_assert_int_eq(h->expanded_secure, 0);
	ck_assert_int_eq(h->address, TLSPOOL_DNS_INSECURE);
	ck_assert_str_eq(h->base, "mxmid.example.test.");
	ck_assert_str_eq(h->owner, "_25._tcp.mxmid.example.test.");
	ck_assert_int_eq(h->verdict, TLSPOOL_HOST_DANE);
	ck_assert(!has_name(h, "back.example.test"));
	ck_assert(!has_name(h, "mid.insecure.test"));
	ck_assert(has_name(h, "mxmid.example.test"));
	ck_assert(has_name(h, "midmail.example.test"));
	ck_assert_uint_eq(h->nnames, 2);
	tlspool_dest_free(d);
	d = mx(dns, "loopmail.example.test", 0);
	ck_assert_uint_eq(d->nhosts, 1);
	ck_assert_int_eq(d->hosts[0].verdict, TLSPOOL_HOST_DNS_ERROR);
	ck_assert_uint_eq(d->hosts[0].nnames, 0);
	tlspool_dest_free(d);
	tlspool_dns_free(dns);
}
END_TEST

/* A host whose TLSA owner name cannot exist (more than 255 octets) is a
 * host that cannot be authenticated, fail closed; the others are tried
 * as before. */
START_TEST(host_too_long_for_tlsa)
{
	tlspool_dns *dns = open_dns();
	tlspool_dest *d = mx(dns, "longmail.example.test", 0);
	const tlspool_dest_host *h = host(d, LONGHOST);

	ck_assert_int_eq(d->verdict, TLSPOOL_DEST_SECURE);
	ck_assert_int_eq(h->verdict, TLSPOOL_HOST_DNS_ERROR);
	ck_assert_ptr_nonnull(strstr(h->reason, "no TLSA owner name"));
	ck_assert_uint_eq(h->nnames, 0);
	ck_assert_int_eq(host(d, "mx1.example.test.")->verdict,
	                 TLSPOOL_HOST_DANE);
	tlspool_dest_free(d);
	tlspool_dns_free(dns);
}
END_TEST

START_TEST(implicit_mx_and_port)
{
	tlspool_dns *dns = open_dns();
	tlspool_dest *d = mx(dns, "implicit.example.test.", 2525);
	const tlspool_dest_host *h;

	ck_assert_int_eq(d->verdict, TLSPOOL_DEST_IMPLICIT);
	ck_assert_uint_eq(d->nhosts, 1);
	h = &d->hosts[0];
	ck_assert_str_eq(h->name, "implicit.example.test.");
	ck_assert_uint_eq(h->port, 2525);
	/* no TLSA at port 2525: only at 25 */
	ck_assert_int_eq(h->verdict, TLSPOOL_HOST_NO_TLSA);
	ck_assert_str_eq(h->owner, "_2525._tcp.implicit.example.test.");
	tlspool_dest_free(d);
	d = mx(dns, "implicit.example.test", 25);
	ck_assert_int_eq(d->hosts[0].verdict, TLSPOOL_HOST_DANE);
	tlspool_dest_free(d);
	tlspool_dns_free(dns);
}
END_TEST

/* RFC 5321 section 5.1: equal preferences in random order, lower first */
START_TEST(equal_preferences_shuffled)
{
	tlspool_dns *dns = open_dns();
	int seen[2] = {0, 0};

	for (int i = 0; i < 24 && !(seen[0] && seen[1]); i++) {
		tlspool_dest *d = mx(dns, "equal.example.test", 0);

		ck_assert_uint_eq(d->nhosts, 3);
		ck_assert_str_eq(d->hosts[0].name, "mxplain.example.test.");
		ck_assert_uint_eq(d->hosts[1].preference, 10);
		ck_assert_uint_eq(d->hosts[2].preference, 10);
		seen[strcmp(d->hosts[1].name, "mx1.example.test.") == 0] = 1;
		tlspool_dest_free(d);
	}
	ck_assert_msg(seen[0] && seen[1], "always the same order");
	tlspool_dns_free(dns);
}
END_TEST

/* More MX hosts than are kept: the lowest preferences, each host once at
 * its lowest, the null MX among others passed over (RFC 7505 section
 * 3), in order. */
START_TEST(many_mx_hosts_lowest_kept)
{
	tlspool_dns *dns = open_dns();
	tlspool_dest *d = mx(dns, "many.example.test", 0);
	char want[64];

	ck_assert_int_eq(d->verdict, TLSPOOL_DEST_SECURE);
	ck_assert_uint_eq(d->nhosts, 16);
	for (size_t i = 0; i < d->nhosts; i++) {
		snprintf(want, sizeof(want), "m%zu.example.test.", i + 1);
		ck_assert_str_eq(d->hosts[i].name, want);
		ck_assert_uint_eq(d->hosts[i].preference, 21 + i);
		ck_assert_int_eq(d->hosts[i].verdict, TLSPOOL_HOST_NO_ADDRESS);
	}
	tlspool_dest_free(d);
	tlspool_dns_free(dns);
}
END_TEST

START_TEST(mx_rdata)
{
	static const unsigned char good[] = {0,   10,  2,   'm', 'x', 4,
	                                     't', 'e', 's', 't', 0};
	static const unsigned char null[] = {0, 0, 0};
	static const unsigned char ptr[] = {0, 10, 0xC0, 12};
	static const unsigned char trail[] = {0, 10, 0, 1};
	char name[256];
	uint16_t pref = 0;

	ck_assert_int_eq(tlspool_mx_parse(ptr, sizeof(ptr), &pref, name), -1);
	ck_assert_int_eq(errno, EBADMSG);
	ck_assert_int_eq(tlspool_mx_parse(trail, sizeof(trail), &pref, name),
	                 -1);
	ck_assert_int_eq(tlspool_mx_parse(good, 2, &pref, name), -1);
	ck_assert_int_eq(tlspool_mx_parse(good, sizeof(good), &pref, name), 0);
	ck_assert_uint_eq(pref, 10);
	ck_assert_str_eq(name, "mx.test.");
	ck_assert_int_eq(tlspool_mx_parse(null, sizeof(null), &pref, name), 0);
	ck_assert_uint_eq(pref, 0);
	ck_assert_str_eq(name, ".");
	/* printed in zone-file form; malformed rdata in RFC 3597 form */
	{
		tlspool_rr rr = {TLSPOOL_RR_MX, 60, sizeof(good),
		                 (unsigned char *)good};
		char buf[128];

		ck_assert_int_gt(tlspool_rr_format(buf, sizeof(buf),
		                                   "example.test.", &rr),
		                 0);
		ck_assert_str_eq(buf, "example.test. 60 IN MX 10 mx.test.");
		rr.rdata = (unsigned char *)ptr;
		rr.rdlen = sizeof(ptr);
		ck_assert_int_gt(tlspool_rr_format(buf, sizeof(buf),
		                                   "example.test.", &rr),
		                 0);
		ck_assert_str_eq(buf, "example.test. 60 IN MX \\# 4 000AC00C");
	}
}
END_TEST

/* --- SRV (RFC 7673) ----------------------------------------------------- */

static tlspool_dest *srv(tlspool_dns *dns, const char *service,
                         const char *domain)
{
	tlspool_dest *d = NULL;
	char err[512];

	ck_assert_msg(tlspool_srv_resolve(dns, service, domain, &d, err,
	                                  sizeof(err)) == 0,
	              "%s: %s", domain, err);
	ck_assert_ptr_nonnull(d);
	return d;
}

START_TEST(srv_negative)
{
	tlspool_dns *dns = open_dns();
	tlspool_dest *d = srv(dns, "xmpp-client", "insecure.test");

	ck_assert_int_eq(d->verdict, TLSPOOL_DEST_INSECURE);
	ck_assert_str_eq(d->qname, "_xmpp-client._tcp.insecure.test.");
	ck_assert_uint_eq(d->nhosts, 1);
	ck_assert_int_eq(d->hosts[0].verdict, TLSPOOL_HOST_INSECURE);
	tlspool_dest_free(d);
	d = srv(dns, "imaps", "example.test");
	ck_assert_int_eq(d->verdict, TLSPOOL_DEST_NO_SERVICE);
	ck_assert_ptr_nonnull(strstr(d->reason, "\".\""));
	tlspool_dest_free(d);
	d = srv(dns, "xmpp-server", "example.test");
	ck_assert_int_eq(d->verdict, TLSPOOL_DEST_NO_SERVICE);
	tlspool_dest_free(d);
	d = srv(dns, "xmpp-client", "expired.test");
	ck_assert_int_eq(d->verdict, TLSPOOL_DEST_DNS_ERROR);
	tlspool_dest_free(d);
	tlspool_dns_free(dns);
}
END_TEST

START_TEST(srv_secure)
{
	tlspool_dns *dns = open_dns();
	tlspool_dest *d = srv(dns, "xmpp-client", "example.test");
	const tlspool_dest_host *h;

	ck_assert_int_eq(d->verdict, TLSPOOL_DEST_SECURE);
	ck_assert_uint_eq(d->nhosts, 2);
	h = &d->hosts[0];
	ck_assert_str_eq(h->name, "xmpp1.example.test.");
	ck_assert_uint_eq(h->port, 5222);
	ck_assert_uint_eq(h->preference, 10);
	ck_assert_str_eq(h->owner, "_5222._tcp.xmpp1.example.test.");
	ck_assert_int_eq(h->verdict, TLSPOOL_HOST_DANE);
	/* RFC 7673 section 3: the target host and the service domain */
	ck_assert(has_name(h, "xmpp1.example.test"));
	ck_assert(has_name(h, "example.test"));
	/* PKIX-EE is usable for SRV (with a trust store) */
	h = &d->hosts[1];
	ck_assert_str_eq(h->name, "xmpp2.example.test.");
	ck_assert_uint_eq(h->port, 5223);
	ck_assert_int_eq(h->verdict, TLSPOOL_HOST_DANE);
	ck_assert_uint_eq(h->nusable, 1);
	tlspool_dest_free(d);
	tlspool_dns_free(dns);
}
END_TEST

/* --- starttls_ctx_client_dane(): the arguments, the descriptor -------- */

static int closed(int fd)
{
	return fcntl(fd, F_GETFD) == -1 && errno == EBADF;
}

/* One call on a fresh socket: -1 with want_errno, the socket consumed. */
static void refused(const starttls_dane_ref *ref, int proto, int want_errno,
                    const char *detail)
{
	int sv[2], rv;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	rv = starttls_ctx_client_dane(NULL, sv[0], proto, NULL, 0,
	                              "mx1.example.test", ref, NULL, 0);
	ck_assert_int_eq(rv, -1);
	ck_assert_int_eq(errno, want_errno);
	ck_assert_msg(strstr(starttls_errstr(), detail) != NULL, "\"%s\"",
	              starttls_errstr());
	ck_assert(closed(sv[0]));
	close(sv[1]);
}

START_TEST(dane_call_arguments)
{
	const char *bad[] = {"mx1.example.test", "not a name"};
	const char *good[] = {"mx1.example.test", "example.test"};
	starttls_dane_ref ref = {"mx1.example.test", 25, good, 2,
	                         "mx1.example.test", 1};
	starttls_dane_ref r;

	refused(NULL, IPPROTO_TCP, EINVAL, "base");
	r = ref;
	r.base = "bad base";
	refused(&r, IPPROTO_TCP, EINVAL, "bad base");
	r = ref;
	r.names = bad;
	refused(&r, IPPROTO_TCP, EINVAL, "not a name");
	r = ref;
	r.names = NULL;
	refused(&r, IPPROTO_TCP, EINVAL, "names");
	r = ref;
	r.port = 70000;
	refused(&r, IPPROTO_TCP, EINVAL, "port");
	r = ref;
	r.peer = "@@";
	refused(&r, IPPROTO_TCP, EINVAL, "peer");
	refused(&ref, IPPROTO_UDP, EINVAL, "IPPROTO_TCP");
	/* not through tlspoold in this version */
	setenv("TLSPOOL_SOCKET", "/nonexistent/tlspoold.sock", 1);
	refused(&ref, IPPROTO_TCP, EPROTONOSUPPORT, "tlspoold");
	unsetenv("TLSPOOL_SOCKET");
	ck_assert_int_eq(starttls_errclass(), STARTTLS_ERR_UNSUPPORTED);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("mx");
	TCase *neg = tcase_create("negative");
	TCase *pos = tcase_create("positive");

	tcase_set_timeout(neg, 60);
	tcase_set_timeout(pos, 60);
	tcase_add_test(neg, bad_arguments);
	tcase_add_test(neg, bogus_mx_fails_closed);
	tcase_add_test(neg, insecure_mx_no_dane);
	tcase_add_test(neg, null_mx);
	tcase_add_test(neg, bogus_address_skips_host);
	tcase_add_test(neg, cname_chain_insecure_in_the_middle);
	tcase_add_test(neg, host_too_long_for_tlsa);
	tcase_add_test(neg, srv_negative);
	tcase_add_test(neg, dane_call_arguments);
	tcase_add_test(pos, secure_mx_hosts);
	tcase_add_test(pos, cname_rules);
	tcase_add_test(pos, implicit_mx_and_port);
	tcase_add_test(pos, mx_rdata);
	tcase_add_test(pos, equal_preferences_shuffled);
	tcase_add_test(pos, many_mx_hosts_lowest_kept);
	tcase_add_test(pos, srv_secure);
	suite_add_tcase(s, neg);
	suite_add_tcase(s, pos);
	return s;
}

int main(void)
{
	int rv;

	setup();
	rv = tp_run_suite(suite());
	teardown();
	return rv;
}
