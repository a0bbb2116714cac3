/*
 * The peer-authentication policy (src/lib/peerauth.c) called directly,
 * without a TLS session: a table of (role, chain, reference name, flags,
 * configuration) rows against zones signed and served for this test,
 * each with the expected result, errno, failure class, peer name and a
 * word of the detail.  Every verdict path of the policy has a row.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <tlspool/starttls.h>

#include "config.h"
#include "dtls.h"
#include "fixture.h"
#include "peerauth.h"
#include "testutil.h"
#include "trace.h"

#define PORT 4433

static char dir[] = "/tmp/tlspool-peerauth-XXXXXX";
static struct tp_runtime *cfg, *cfg_blackhole, *cfg_names, *cfg_ldap;

enum { C_WWW, C_CLIENT, C_USER, C_NONAME, C_OTHER, C_COUNT };
static const char *const cert_names[C_COUNT] = {"www", "client", "user",
                                                "noname", "other"};
static unsigned char *der[C_COUNT];
static size_t der_len[C_COUNT];

static void load_der(int i)
{
	char path[512];
	FILE *fp;
	long n;

	snprintf(path, sizeof(path), "%s/%s.der", dir, cert_names[i]);
	fp = fopen(path, "rb");
	need(fp != NULL, path);
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	rewind(fp);
	der[i] = malloc((size_t)n);
	need(der[i] != NULL && fread(der[i], 1, (size_t)n, fp) == (size_t)n,
	     path);
	der_len[i] = (size_t)n;
	fclose(fp);
}

static struct tp_runtime *load_config(const char *zfile, const char *extra)
{
	char path[512], conf[8192], zconf[4096];
	struct tp_runtime *c = NULL;
	char err[512];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/z/%s", dir, zfile);
	slurp_into(path, zconf, sizeof(zconf));
	snprintf(conf, sizeof(conf), "%s\n%s", zconf, extra);
	snprintf(path, sizeof(path), "%s/%s.pa.conf", dir, zfile);
	fp = fopen(path, "w");
	need(fp != NULL, path);
	fputs(conf, fp);
	fclose(fp);
	c = tp_runtime_load(path, 0, err, sizeof(err));
	need(c != NULL, err);
	return c; /* with its one reference */
}

static void setup(void)
{
	char cmd[8192];
	const char *src = getenv("TLSPOOL_SOURCE_DIR");
	const char *build = getenv("BUILD");

	if (src == NULL)
		src = ".";
	if (build == NULL)
		build = "build";
	need(mkdtemp(dir) != NULL, "mkdtemp");
	snprintf(
	        cmd, sizeof(cmd),
	        "cd %s && "
	        "mk() { certtool --generate-privkey --key-type ecdsa --outfile $1.key 2>/dev/null && "
	        "printf \"$2expiration_days = 30\\nsigning_key\\n\" > $1.tmpl && "
	        "certtool --generate-self-signed --load-privkey $1.key --template $1.tmpl "
	        "--outfile $1.pem 2>/dev/null && "
	        "certtool --certificate-info --infile $1.pem --outder --outfile $1.der 2>/dev/null; } && "
	        "mk www 'dns_name = www.example.test\\n' && "
	        "mk client 'dc = test\\ndc = example\\ndc = client\\n' && "
	        "mk user 'email = smime@example.test\\n' && "
	        "mk noname 'cn = nobody in particular\\n' && "
	        "mk other 'dns_name = www.example.test\\n' && "
	        "h() { printf %%s \"$1\" | sha256sum | cut -c1-56; } && "
	        "spki() { openssl pkey -in $1 -pubout -outform DER | sha256sum | cut -c1-64; } && "
	        "{ echo \"_%d._tcp.www IN TLSA 3 1 1 $(spki www.key)\"; "
	        "echo \"_%d._tcp.alias IN TLSA 3 1 1 $(spki www.key)\"; "
	        "echo \"_%d._tcp.wrong IN TLSA 3 1 1 $(spki other.key)\"; "
	        "echo \"wrong IN A 127.0.0.1\"; "
	        "echo \"client IN TLSA 3 1 1 $(spki client.key)\"; "
	        "echo \"$(h smime)._smimecert IN SMIMEA 3 1 1 $(spki user.key)\"; "
	        "} > example.add && "
	        "echo \"_%d._tcp.www IN TLSA 3 1 1 $(spki www.key)\" > bogus.add && "
	        "cp bogus.add insecure.add",
	        dir, PORT, PORT, PORT, PORT);
	run_sh(cmd);
	snprintf(cmd, sizeof(cmd),
	         "%s/zones/serve start %s/z --add example.test %s/example.add "
	         "--add bogus.test %s/bogus.add --add insecure.test "
	         "%s/insecure.add --blackhole %s/tests/blackhole "
	         "2>/dev/null",
	         src, dir, dir, dir, dir, build);
	run_sh(cmd);
	for (int i = 0; i < C_COUNT; i++)
		load_der(i);
	cfg = load_config("tlspool.conf", "");
	cfg_blackhole = load_config("blackhole.conf", "[dns]\ntimeout_ms = 300\n");
	cfg_names = load_config("tlspool.conf",
	                        "[validation]\ndane_ee_name_checks = yes\n");
	cfg_ldap = load_config("tlspool.conf", "[validation]\nsources = smimea ldap\n"
	                                       "domain_sources = tlsa ldap\n");
}

static void teardown(void)
{
	tp_runtime_release(cfg);
	tp_runtime_release(cfg_blackhole);
	tp_runtime_release(cfg_names);
	tp_runtime_release(cfg_ldap);
	for (int i = 0; i < C_COUNT; i++)
		free(der[i]);
	stop_zones(dir);
}

struct row {
	const char *what;
	int server;   /* 1: the peer is a client */
	int cert;     /* C_*, or -1 for no certificate */
	const char *sniname;
	int flags;
	int blackhole; /* the never-answering upstream */
	long long deadline_ms; /* from now; 0 none, -1 already passed */
	int rv, err;
	starttls_class cls;
	const char *peer;   /* on success */
	const char *detail; /* a word of the detail on failure */
	int ldap; /* [validation] sources = smimea ldap, domain_sources =
	             tlsa ldap (these zones publish no directory) */
};

static const struct row rows[] = {
        /* negative rows first */
        {"wrong digest", 0, C_OTHER, "www.example.test", 0, 0, 0, -1,
         EKEYREJECTED, STARTTLS_ERR_NO_MATCH, NULL, "www.example.test", 0},
        {"record of another key", 0, C_WWW, "wrong.example.test", 0, 0, 0,
         -1, EKEYREJECTED, STARTTLS_ERR_NO_MATCH, NULL, "_4433._tcp.wrong", 0},
        {"bogus zone", 0, C_WWW, "www.bogus.test", 0, 0, 0, -1, EKEYREJECTED,
         STARTTLS_ERR_DNS_BOGUS, NULL, "bogus", 0},
        {"insecure zone", 0, C_WWW, "www.insecure.test", 0, 0, 0, -1,
         EKEYREJECTED, STARTTLS_ERR_INSECURE, NULL, "no DANE authentication", 0},
        {"no TLSA", 0, C_WWW, "nothere.example.test", 0, 0, 0, -1,
         EKEYREJECTED, STARTTLS_ERR_NO_RECORDS, NULL, "no DANE authentication", 0},
        {"DNS timeout", 0, C_WWW, "www.example.test", 0, 1, 0, -1, ETIMEDOUT,
         STARTTLS_ERR_DNS_TIMEOUT, NULL, "timed out", 0},
        {"deadline passed", 0, C_WWW, "www.example.test", 0, 0, -1, -1,
         ETIMEDOUT, STARTTLS_ERR_TIMEOUT, NULL, "handshake_timeout_ms", 0},
        {"deadline cuts the DNS wait", 0, C_WWW, "www.example.test", 0, 1,
         100, -1, ETIMEDOUT, STARTTLS_ERR_DNS_TIMEOUT, NULL, "deadline", 0},
        {"server sent no certificate", 0, -1, "www.example.test", 0, 0, 0,
         -1, EKEYREJECTED, STARTTLS_ERR_NO_PEER_CERT, NULL, "no certificate", 0},
        {"certificate names nobody, no sniname", 0, C_NONAME, NULL, 0, 0, 0,
         -1, EKEYREJECTED, STARTTLS_ERR_NO_IDENTITY, NULL, "no identity", 0},
        {"domain refused by flag", 0, C_WWW, "www.example.test",
         STARTTLS_NO_REMOTE_DOMAIN, 0, 0, -1, EPERM, STARTTLS_ERR_REFUSED,
         NULL, "NO_REMOTE_DOMAIN", 0},
        {"client sent no certificate", 1, -1, NULL, 0, 0, 0, -1, EKEYREJECTED,
         STARTTLS_ERR_NO_PEER_CERT, NULL, "client presented no", 0},
        {"client names nobody", 1, C_NONAME, NULL, 0, 0, 0, -1, EKEYREJECTED,
         STARTTLS_ERR_NO_IDENTITY, NULL, "names no identity", 0},
        {"client domain without TLSA", 1, C_WWW, NULL, 0, 0, 0, -1,
         EKEYREJECTED, STARTTLS_ERR_NO_RECORDS, NULL, "www.example.test", 0},
        {"user refused by flag", 1, C_USER, NULL, STARTTLS_NO_REMOTE_USER, 0,
         0, -1, EPERM, STARTTLS_ERR_REFUSED, NULL, "NO_REMOTE_USER", 0},
        {"client domain DNS timeout", 1, C_CLIENT, NULL, 0, 1, 0, -1,
         ETIMEDOUT, STARTTLS_ERR_DNS_TIMEOUT, NULL, "timed out", 0},
        {"user: no SMIMEA, no directory (secure, no SRV)", 0, C_USER,
         "nobody@example.test", 0, 0, 0, -1, EKEYREJECTED,
         STARTTLS_ERR_NO_RECORDS, NULL,
         "nobody@example.test: SMIMEA: ", 1},
        {"user: no SMIMEA, no directory: LDAP named", 0, C_USER,
         "nobody@example.test", 0, 0, 0, -1, EKEYREJECTED,
         STARTTLS_ERR_NO_RECORDS, NULL,
         "; LDAP: _ldap._tcp.example.test.: no SRV records", 1},
        {"user: insecure zone, insecure SRV", 0, C_USER,
         "smime@insecure.test", 0, 0, 0, -1, EKEYREJECTED,
         STARTTLS_ERR_INSECURE, NULL, "SRV RRset is insecure", 1},
        {"domain: no TLSA, no directory", 0, C_WWW, "nothere.example.test",
         0, 0, 0, -1, EKEYREJECTED, STARTTLS_ERR_NO_RECORDS, NULL,
         "nothere.example.test: TLSA: ", 1},
        {"domain: a TLSA mismatch is not rescued by a missing directory", 0,
         C_OTHER, "www.example.test", 0, 0, 0, -1, EKEYREJECTED,
         STARTTLS_ERR_NO_MATCH, NULL, "; LDAP: ", 1},
        {"user: DNS timeout before LDAP", 0, C_USER, "smime@example.test",
         0, 0, -1, -1, ETIMEDOUT, STARTTLS_ERR_TIMEOUT, NULL,
         "handshake_timeout_ms", 1},
        /* positive rows */
        {"server by TLSA 3 1 1", 0, C_WWW, "www.example.test", 0, 0, 0, 0, 0,
         STARTTLS_OK, "www.example.test", NULL, 0},
        {"server named by its certificate", 0, C_WWW, NULL, 0, 0, 0, 0, 0,
         STARTTLS_OK, "www.example.test", NULL, 0},
        {"server within a deadline", 0, C_WWW, "www.example.test", 0, 0, 5000,
         0, 0, STARTTLS_OK, "www.example.test", NULL, 0},
        {"client domain by TLSA", 1, C_CLIENT, NULL, 0, 0, 0, 0, 0,
         STARTTLS_OK, "client.example.test", NULL, 0},
        {"client user by SMIMEA", 1, C_USER, NULL, 0, 0, 0, 0, 0, STARTTLS_OK,
         "smime@example.test", NULL, 0},
        {"anonymous client, optional", 1, -1, NULL,
         STARTTLS_PEERCERT_OPTIONAL, 0, 0, 0, 0, STARTTLS_OK, "", NULL, 0},
        {"user by SMIMEA, LDAP after it", 0, C_USER, "smime@example.test", 0,
         0, 0, 0, 0, STARTTLS_OK, "smime@example.test", NULL, 1},
        {"client user by SMIMEA, LDAP after it", 1, C_USER, NULL, 0, 0, 0, 0,
         0, STARTTLS_OK, "smime@example.test", NULL, 1},
        {"server by TLSA, LDAP after it", 0, C_WWW, "www.example.test", 0, 0,
         0, 0, 0, STARTTLS_OK, "www.example.test", NULL, 1},
};

static int run_row(const struct row *r, struct tp_peer_check *pc,
                   tlspool_span *span)
{
	memset(pc, 0, sizeof(*pc));
	pc->rt = r->ldap ? cfg_ldap : r->blackhole ? cfg_blackhole : cfg;
	pc->server = r->server;
	pc->flags = r->flags | STARTTLS_NO_CACHE_READ | STARTTLS_NO_CACHE_WRITE;
	if (r->cert >= 0) {
		span->data = der[r->cert];
		span->len = der_len[r->cert];
		pc->chain = span;
		pc->nchain = 1;
	}
	pc->sniname = r->sniname;
	pc->port = PORT;
	pc->transport = "tcp";
	tp_trace_reset();
	if (r->deadline_ms < 0)
		pc->deadline = tp_mono_ms() - 1;
	else if (r->deadline_ms > 0)
		pc->deadline = tp_mono_ms() + r->deadline_ms;
	errno = 0;
	return tp_peer_authenticate(pc);
}

START_TEST(table)
{
	const struct row *r = &rows[_i];
	struct tp_peer_check pc;
	tlspool_span span;
	int rv = run_row(r, &pc, &span), e = errno;

	ck_assert_msg(rv == r->rv, "%s: rv %d, want %d (%s)", r->what, rv,
	              r->rv, starttls_errstr());
	if (r->rv == 0) {
		ck_assert_str_eq(pc.peer, r->peer);
		/* an earlier source decided: the directory was not asked */
		ck_assert_ptr_null(starttls_last_trace()->ldap);
		return;
	}
	/* the LDAP step is in the trace when it was reached */
	if (r->ldap && strstr(r->detail, "handshake_timeout_ms") == NULL)
		ck_assert_ptr_nonnull(starttls_last_trace()->ldap);
	ck_assert_msg(e == r->err, "%s: errno %d, want %d (%s)", r->what, e,
	              r->err, starttls_errstr());
	ck_assert_msg(starttls_errclass() == r->cls, "%s: class %s, want %s (%s)",
	              r->what, starttls_class_name(starttls_errclass()),
	              starttls_class_name(r->cls), starttls_errstr());
	ck_assert_msg(strstr(starttls_errstr(), r->detail) != NULL,
	              "%s: detail \"%s\" lacks \"%s\"", r->what,
	              starttls_errstr(), r->detail);
}
END_TEST

/* A deadline bounds a DNS wait to what is left of it (within 10 %). */
START_TEST(deadline_bounds_dns)
{
	struct row r = rows[0];
	struct tp_peer_check pc;
	tlspool_span span;
	long long t0;

	r.cert = C_WWW;
	r.sniname = "www.example.test";
	r.blackhole = 1;
	r.deadline_ms = 150;
	t0 = tp_mono_ms();
	ck_assert_int_eq(run_row(&r, &pc, &span), -1);
	ck_assert_int_le(tp_mono_ms() - t0, 165 + 50);
}
END_TEST

/* The cache answers a second time (and the trace says so); NO_CACHE_READ
 * goes online again. */
START_TEST(cache_answers)
{
	struct tp_peer_check pc;
	tlspool_span span = {der[C_WWW], der_len[C_WWW]};

	memset(&pc, 0, sizeof(pc));
	pc.rt = cfg;
	pc.chain = &span;
	pc.nchain = 1;
	pc.sniname = "www.example.test";
	pc.port = PORT;
	pc.transport = "tcp";
	ck_assert_int_eq(tp_peer_authenticate(&pc), 0);
	ck_assert_int_eq(tp_trace_reset(), 0);
	ck_assert_int_eq(starttls_last_trace()->from_cache, 0);
	ck_assert_int_eq(tp_peer_authenticate(&pc), 0);
	ck_assert_int_eq(starttls_last_trace()->from_cache, 1);
	ck_assert_int_eq(pc.have_spki, 1);
}
END_TEST

/* [validation] dane_ee_name_checks: a DANE-EE record at a name that the
 * server's certificate does not name authenticates it only while the
 * option is off (RFC 7671 section 5.1). */
START_TEST(dane_ee_name_checks)
{
	struct tp_peer_check pc;
	tlspool_span span = {der[C_WWW], der_len[C_WWW]};

	memset(&pc, 0, sizeof(pc));
	pc.rt = cfg;
	pc.flags = STARTTLS_NO_CACHE_READ | STARTTLS_NO_CACHE_WRITE;
	pc.chain = &span;
	pc.nchain = 1;
	pc.sniname = "alias.example.test";
	pc.port = PORT;
	pc.transport = "tcp";
	/* each call starts a trace, as starttls.c's do */
	ck_assert_int_eq(tp_trace_reset(), 0);
	ck_assert_msg(tp_peer_authenticate(&pc) == 0, "%s", starttls_errstr());
	ck_assert_str_eq(pc.peer, "alias.example.test");
	pc.rt = cfg_names;
	errno = 0;
	ck_assert_int_eq(tp_trace_reset(), 0);
	ck_assert_int_eq(tp_peer_authenticate(&pc), -1);
	ck_assert_int_eq(errno, EKEYREJECTED);
	ck_assert_int_eq(starttls_errclass(), STARTTLS_ERR_NO_MATCH);
	ck_assert_ptr_nonnull(strstr(starttls_errstr(), "names"));
	/* its own name still passes */
	pc.sniname = "www.example.test";
	ck_assert_int_eq(tp_trace_reset(), 0);
	ck_assert_msg(tp_peer_authenticate(&pc) == 0, "%s", starttls_errstr());
}
END_TEST

/* Two processes share an LMDB cache, one with DANE-EE name checks: a
 * result the other reached without them never answers for it. */
START_TEST(shared_cache_keeps_name_checks_apart)
{
	struct tp_runtime *plain, *names;
	struct tp_peer_check pc;
	tlspool_span span = {der[C_WWW], der_len[C_WWW]};
	char extra[700];

	snprintf(extra, sizeof(extra), "[cache]\npath = %s/shared.lmdb\n",
	         dir);
	plain = load_config("tlspool.conf", extra);
	strcat(extra, "[validation]\ndane_ee_name_checks = yes\n");
	names = load_config("tlspool.conf", extra);
	memset(&pc, 0, sizeof(pc));
	pc.rt = plain;
	pc.chain = &span;
	pc.nchain = 1;
	pc.sniname = "alias.example.test";
	pc.port = PORT;
	pc.transport = "tcp";
	ck_assert_int_eq(tp_trace_reset(), 0);
	ck_assert_msg(tp_peer_authenticate(&pc) == 0, "%s", starttls_errstr());
	pc.rt = names;
	ck_assert_int_eq(tp_trace_reset(), 0);
	ck_assert_int_eq(tp_peer_authenticate(&pc), -1);
	ck_assert_int_eq(starttls_last_trace()->from_cache, 0);
	tp_runtime_release(plain);
	tp_runtime_release(names);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("peerauth");
	TCase *tc = tcase_create("policy");
	int rv;

	setup();
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, table, 0, sizeof(rows) / sizeof(rows[0]));
	tcase_add_test(tc, deadline_bounds_dns);
	tcase_add_test(tc, cache_answers);
	tcase_add_test(tc, dane_ee_name_checks);
	tcase_add_test(tc, shared_cache_keeps_name_checks_apart);
	suite_add_tcase(s, tc);
	rv = tp_run_suite(s);
	teardown();
	return rv;
}
