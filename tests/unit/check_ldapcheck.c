/*
 * The LDAP step (src/lib/ldapcheck.c) against a real slapd started by the
 * fixture on loopback ports, found through SRV records in zones signed
 * for this test and authenticated by the TLSA records published for its
 * certificate; the LDAP source of the policy (peerauth.c) with the
 * validation cache; and the pure parts: SRV rdata and order (RFC 2782),
 * filter escaping (RFC 4515), base DNs, pgpKey armor, the [ldap] and
 * [validation] sources keys of tlspool.conf.
 *
 * The fixture (before Check forks the tests) makes the certificates
 * (certtool) and OpenPGP keys (tests/tools/mkpgp.sh), two slapd
 * (tests/tools/slapd.sh: one with TLS on StartTLS and ldaps ports, one
 * without TLS), a listener that never answers, and the zones.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <tlspool/starttls.h>

#include "config.h"
#include "cred.h"
#include "dtls.h"
#include "fixture.h"
#include "ldapcheck.h"
#include "peerauth.h"
#include "runtime.h"
#include "testutil.h"
#include "trace.h"

static char dir[] = "/tmp/tlspool-ldap-XXXXXX";
static unsigned p_ldap, p_ldaps, p_plain, p_down, p_silent;
static int silent_fd = -1;
static int started_ldap, started_plain;

enum { K_SRV, K_BASE, K_LDAPS, K_SERVER, K_SHORT, K_COUNT };
static struct tp_runtime *rt[K_COUNT];

enum { P_JOHN, P_MALLORY, P_ALICE_PGP, P_JOHN_PGP, P_HOST, P_COUNT };
static unsigned char *der[P_COUNT];
static size_t der_len[P_COUNT];

/* A free TCP port below the ephemeral range (32768 up). */
static unsigned pick_port(void)
{
	for (int i = 0; i < 1000; i++) {
		unsigned p = 20000 + (unsigned)rand() % 12000;
		struct sockaddr_in sa = {.sin_family = AF_INET};
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;

		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sa.sin_port = htons((unsigned short)p);
		ok = fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
		if (fd >= 0)
			close(fd);
		if (ok && p != p_ldap && p != p_ldaps && p != p_plain &&
		    p != p_down)
			return p;
	}
	need(0, "no free port");
	return 0;
}

static void load_der(int i, const char *name)
{
	char path[512];
	FILE *fp;
	long n;

	snprintf(path, sizeof(path), "%s/%s.der", dir, name);
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

static struct tp_runtime *load_config(const char *name, const char *extra)
{
	char path[512], conf[8192], zconf[4096], err[512];
	struct tp_runtime *r;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/z/tlspool.conf", dir);
	slurp_into(path, zconf, sizeof(zconf));
	snprintf(conf, sizeof(conf), "%s\n%s", zconf, extra);
	snprintf(path, sizeof(path), "%s/%s.conf", dir, name);
	fp = fopen(path, "w");
	need(fp != NULL, path);
	fputs(conf, fp);
	fclose(fp);
	r = tp_runtime_load(path, 0, err, sizeof(err));
	need(r != NULL, err);
	return r;
}

/* The certificate made on the fly for an openpgp_key identity. */
static void pgp_cert(int i, const char *identity, const char *key)
{
	char extra[1024];
	struct tp_runtime *r;
	gnutls_certificate_credentials_t creds;
	gnutls_datum_t d;

	snprintf(extra, sizeof(extra), "[identity %s]\nopenpgp_key = %s/pgp/%s\n",
	         identity, dir, key);
	r = load_config("pgp", extra);
	need(tp_cred_get(tp_runtime_creds(r), r->cfg, identity, &creds) == 0,
	     starttls_errstr());
	need(gnutls_certificate_get_crt_raw(creds, 0, 0, &d) == 0, "crt_raw");
	der[i] = malloc(d.size);
	need(der[i] != NULL, "malloc");
	memcpy(der[i], d.data, d.size);
	der_len[i] = d.size;
	tp_runtime_release(r);
}

static void setup(void)
{
	static char cmd[16384];
	char extra[512];
	const char *src = getenv("TLSPOOL_SOURCE_DIR");
	struct sockaddr_in sa = {.sin_family = AF_INET};

	if (src == NULL)
		src = ".";
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	need(mkdtemp(dir) != NULL, "mkdtemp");
	p_ldap = pick_port();
	p_ldaps = pick_port();
	p_plain = pick_port();
	p_down = pick_port();
	/* a directory that accepts connections and never answers */
	silent_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	do {
		p_silent = pick_port();
		sa.sin_port = htons((unsigned short)p_silent);
	} while (bind(silent_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0);
	need(listen(silent_fd, 64) == 0, "listen");

	snprintf(cmd, sizeof(cmd), "%s/tests/tools/mkpgp.sh %s/pgp >/dev/null",
	         src, dir);
	run_sh(cmd);
	snprintf(
	        cmd, sizeof(cmd),
	        "cd %s && "
	        "mk() { certtool --generate-privkey --key-type ecdsa --outfile $1.key 2>/dev/null && "
	        "printf \"$2expiration_days = 30\\nsigning_key\\n\" > $1.tmpl && "
	        "certtool --generate-self-signed --load-privkey $1.key --template $1.tmpl "
	        "--outfile $1.pem 2>/dev/null && "
	        "certtool --certificate-info --infile $1.pem --outder --outfile $1.der 2>/dev/null; } && "
	        "mk slapd 'cn = ldap.example.test\\ndns_name = ldap.example.test\\ntls_www_server\\n' && "
	        "mk wrong 'cn = ldap.example.test\\ndns_name = ldap.example.test\\ntls_www_server\\n' && "
	        "mk john 'dn = \"uid=john,dc=example,dc=test\"\\n' && "
	        "mk mallory 'dn = \"uid=john,dc=example,dc=test\"\\n' && "
	        "mk host 'dns_name = example.test\\n' && "
	        "GNUPGHOME=%s/pgp/gnupg gpg --batch --quiet --armor --export $(cat pgp/alice.fpr) > alice.asc 2>/dev/null && "
	        "grep -q 'BEGIN PGP PUBLIC KEY BLOCK' alice.asc && "
	        "spki() { openssl pkey -in $1 -pubout -outform DER | sha256sum | cut -c1-64; } && "
	        "{ echo 'ldap IN A 127.0.0.1'; "
	        "  for p in %u %u %u %u %u; do echo \"_$p._tcp.ldap IN TLSA 3 1 1 $(spki slapd.key)\"; done; "
	        "  echo '_ldap._tcp IN SRV 0 0 %u ldap.example.test.'; "
	        "  echo '_ldap._tcp.badtlsa IN SRV 0 0 %u ldapbad.example.test.'; "
	        "  echo 'ldapbad IN A 127.0.0.1'; "
	        "  echo \"_%u._tcp.ldapbad IN TLSA 3 1 1 $(spki wrong.key)\"; "
	        "  echo '_ldap._tcp.notlsa IN SRV 0 0 %u ldapnotlsa.example.test.'; "
	        "  echo 'ldapnotlsa IN A 127.0.0.1'; "
	        "  echo '_ldap._tcp.down IN SRV 0 0 %u ldap.example.test.'; "
	        "  echo '_ldap._tcp.silent IN SRV 0 0 %u ldap.example.test.'; "
	        "  echo '_ldap._tcp.plain IN SRV 0 0 %u ldap.example.test.'; "
	        "  echo '_ldap._tcp.dot IN SRV 0 0 0 .'; "
	        "  echo '_ldap._tcp.multi IN SRV 0 5 %u ldap.example.test.'; "
	        "  echo '_ldap._tcp.multi IN SRV 1 0 %u ldap.example.test.'; "
	        "  echo '_ldap._tcp.first IN SRV 0 0 %u ldap.example.test.'; "
	        "  echo '_ldap._tcp.first IN SRV 1 0 %u ldap.example.test.'; "
	        "} > example.add && "
	        "echo '_ldap._tcp IN SRV 0 0 %u ldap.example.test.' > insecure.add && "
	        "cp insecure.add expired.add && "
	        "{ echo '_ldap._tcp IN SRV 0 0 %u ldap.bogus.test.'; echo 'ldap IN A 127.0.0.1'; "
	        "  echo \"_%u._tcp.ldap IN TLSA 3 1 1 $(spki slapd.key)\"; } > bogus.add && "
	        "u() { printf 'dn: %%s\\nobjectClass: inetOrgPerson\\nobjectClass: pgpKeyInfo\\n"
	        "uid: %%s\\ncn: %%s\\nsn: %%s\\nmail: %%s@example.test\\n' \"$1\" \"$2\" \"$2\" \"$2\" \"$2\"; } && "
	        "{ printf 'dn: dc=example,dc=test\\nobjectClass: dcObject\\nobjectClass: organization\\n"
	        "dc: example\\no: Example\\n\\n'; "
	        "  for o in a b; do printf 'dn: ou=%%s,dc=example,dc=test\\nobjectClass: organizationalUnit\\nou: %%s\\n\\n' $o $o; done; "
	        "  u uid=john,dc=example,dc=test john; "
	        "  echo \"userCertificate;binary:< file://%s/john.der\"; "
	        "  echo \"pgpKey:< file://%s/pgp/ed.pub\"; echo; "
	        "  u uid=alice,dc=example,dc=test alice; "
	        "  echo \"pgpKey:< file://%s/alice.asc\"; echo; "
	        "  u uid=empty,dc=example,dc=test empty; echo; "
	        "  u uid=dup,ou=a,dc=example,dc=test dup; echo; "
	        "  u uid=dup,ou=b,dc=example,dc=test dup; echo; "
	        "  printf 'dn: cn=host,dc=example,dc=test\\nobjectClass: device\\n"
	        "objectClass: domainRelatedObject\\nobjectClass: pkiUser\\ncn: host\\n"
	        "associatedDomain: example.test\\n'; "
	        "  echo \"userCertificate;binary:< file://%s/host.der\"; "
	        "} > data.ldif && "
	        "printf 'dn: dc=example,dc=test\\nobjectClass: dcObject\\nobjectClass: organization\\n"
	        "dc: example\\no: Example\\n' > plain.ldif",
	        dir, dir, p_ldap, p_ldaps, p_down, p_silent, p_plain, p_ldap,
	        p_ldap, p_ldap, p_ldap, p_down, p_silent, p_plain, p_down,
	        p_ldap, p_ldap, p_down, p_ldap, p_ldap, p_ldap, dir, dir, dir,
	        dir);
	run_sh(cmd);
	snprintf(cmd, sizeof(cmd),
	         "%s/tests/tools/slapd.sh start %s/slapd %s/data.ldif "
	         "'ldap://127.0.0.1:%u/ ldaps://127.0.0.1:%u/' %s/slapd.pem "
	         "%s/slapd.key",
	         src, dir, dir, p_ldap, p_ldaps, dir, dir);
	run_sh(cmd);
	started_ldap = 1;
	snprintf(cmd, sizeof(cmd),
	         "%s/tests/tools/slapd.sh start %s/plain %s/plain.ldif "
	         "'ldap://127.0.0.1:%u/'",
	         src, dir, dir, p_plain);
	run_sh(cmd);
	started_plain = 1;
	snprintf(cmd, sizeof(cmd),
	         "%s/zones/serve start %s/z --add example.test %s/example.add "
	         "--add insecure.test %s/insecure.add --add expired.test "
	         "%s/expired.add --add bogus.test %s/bogus.add 2>/dev/null",
	         src, dir, dir, dir, dir, dir);
	run_sh(cmd);
	load_der(P_JOHN, "john");
	load_der(P_MALLORY, "mallory");
	load_der(P_HOST, "host");
	pgp_cert(P_ALICE_PGP, "alice@example.test", "alice.sec");
	pgp_cert(P_JOHN_PGP, "john@example.test", "ed.sec");
	rt[K_SRV] = load_config("srv", "");
	rt[K_BASE] = load_config("base", "[ldap]\nbase = dc=example,dc=test\n");
	snprintf(extra, sizeof(extra),
	         "[ldap]\nserver = ldaps://ldap.example.test:%u\n", p_ldaps);
	rt[K_LDAPS] = load_config("ldaps", extra);
	snprintf(extra, sizeof(extra),
	         "[ldap]\nserver = ldap://ldap.example.test:%u/\n", p_ldap);
	rt[K_SERVER] = load_config("server", extra);
	rt[K_SHORT] = load_config(
	        "short", "[ldap]\ntimeout_ms = 300\nbase = dc=example,dc=test\n");
}

static void teardown(void)
{
	char cmd[1024];
	const char *src = getenv("TLSPOOL_SOURCE_DIR");

	for (int i = 0; i < K_COUNT; i++)
		tp_runtime_release(rt[i]);
	for (int i = 0; i < P_COUNT; i++)
		free(der[i]);
	if (silent_fd >= 0)
		close(silent_fd);
	if (started_ldap) {
		snprintf(cmd, sizeof(cmd), "%s/tests/tools/slapd.sh stop %s/slapd",
		         src ? src : ".", dir);
		(void)!system(cmd);
	}
	if (started_plain) {
		snprintf(cmd, sizeof(cmd), "%s/tests/tools/slapd.sh stop %s/plain",
		         src ? src : ".", dir);
		(void)!system(cmd);
	}
	stop_zones(dir);
}

/* --- the step against slapd ---------------------------------------------- */

struct row {
	const char *what;
	int conf;             /* K_* */
	const char *identity;
	int peer;             /* P_*, or -1: read the entry only */
	long long deadline_ms; /* from now, 0 none */
	int rv, err;
	starttls_class cls;
	starttls_ldap_verdict verdict;
	const char *detail; /* a word of the detail (and the step's reason) */
};

static const struct row rows[] = {
        /* negative rows first */
        {"insecure SRV", K_SRV, "john@insecure.test", P_JOHN, 0, -1, EKEYREJECTED, STARTTLS_ERR_INSECURE, STARTTLS_LDAP_NOT_AUTHENTICATED, "SRV RRset is insecure"},
        {"bogus SRV (expired signatures)", K_SRV, "john@expired.test", P_JOHN, 0, -1, EKEYREJECTED, STARTTLS_ERR_DNS_BOGUS, STARTTLS_LDAP_NOT_AUTHENTICATED, "bogus"},
        {"no SRV", K_SRV, "john@other.test", P_JOHN, 0, -1, EKEYREJECTED, STARTTLS_ERR_NO_RECORDS, STARTTLS_LDAP_NO_DIRECTORY, "no SRV records"},
        {"SRV target .", K_BASE, "john@dot.example.test", P_JOHN, 0, -1, EKEYREJECTED, STARTTLS_ERR_NO_RECORDS, STARTTLS_LDAP_NO_DIRECTORY, "no directory"},
        {"directory's TLSA of another key", K_BASE, "john@badtlsa.example.test", P_JOHN, 0, -1, EKEYREJECTED, STARTTLS_ERR_DIRECTORY_UNAUTHENTICATED, STARTTLS_LDAP_NOT_AUTHENTICATED, "not authenticated"},
        {"no TLSA for the directory", K_BASE, "john@notlsa.example.test", P_JOHN, 0, -1, EKEYREJECTED, STARTTLS_ERR_DIRECTORY_UNAUTHENTICATED, STARTTLS_LDAP_NOT_AUTHENTICATED, "cannot be authenticated"},
        {"bogus TLSA for the directory", K_BASE, "john@bogus.test", P_JOHN, 0, -1, EKEYREJECTED, STARTTLS_ERR_DNS_BOGUS, STARTTLS_LDAP_NOT_AUTHENTICATED, "bogus"},
        {"directory down", K_BASE, "john@down.example.test", P_JOHN, 0, -1, EKEYREJECTED, STARTTLS_ERR_DIRECTORY_UNREACHABLE, STARTTLS_LDAP_UNREACHABLE, "refused"},
        {"StartTLS refused", K_BASE, "john@plain.example.test", P_JOHN, 0, -1, EKEYREJECTED, STARTTLS_ERR_DIRECTORY_UNAUTHENTICATED, STARTTLS_LDAP_NOT_AUTHENTICATED, "StartTLS refused"},
        {"silent directory: the call's deadline", K_BASE, "john@silent.example.test", P_JOHN, 400, -1, ETIMEDOUT, STARTTLS_ERR_TIMEOUT, STARTTLS_LDAP_UNREACHABLE, "handshake_timeout_ms"},
        {"silent directory: [ldap] timeout_ms", K_SHORT, "john@silent.example.test", P_JOHN, 0, -1, ETIMEDOUT, STARTTLS_ERR_DIRECTORY_UNREACHABLE, STARTTLS_LDAP_UNREACHABLE, "timeout_ms"},
        {"another certificate", K_SRV, "john@example.test", P_MALLORY, 0, -1, EKEYREJECTED, STARTTLS_ERR_NO_MATCH, STARTTLS_LDAP_DIFFERENT, "none of them the peer's"},
        {"another user's OpenPGP key", K_SRV, "john@example.test", P_ALICE_PGP, 0, -1, EKEYREJECTED, STARTTLS_ERR_NO_MATCH, STARTTLS_LDAP_DIFFERENT, "pgpKey"},
        {"no entry", K_SRV, "nobody@example.test", P_JOHN, 0, -1, EKEYREJECTED, STARTTLS_ERR_NO_RECORDS, STARTTLS_LDAP_NO_ENTRY, "no entry"},
        {"entry without certificates", K_SRV, "empty@example.test", P_JOHN, 0, -1, EKEYREJECTED, STARTTLS_ERR_NO_RECORDS, STARTTLS_LDAP_NO_ENTRY, "holds no"},
        {"two entries", K_SRV, "dup@example.test", P_JOHN, 0, -1, EKEYREJECTED, STARTTLS_ERR_NO_RECORDS, STARTTLS_LDAP_NO_ENTRY, "more than one"},
        {"no entry in the first SRV target is the answer", K_BASE, "nobody@first.example.test", P_JOHN, 0, -1, EKEYREJECTED, STARTTLS_ERR_NO_RECORDS, STARTTLS_LDAP_NO_ENTRY, "no entry"},
        {"a * in the identity is no wildcard", K_SRV, "*@example.test", P_JOHN, 0, -1, EKEYREJECTED, STARTTLS_ERR_NO_RECORDS, STARTTLS_LDAP_NO_ENTRY, "no entry"},
        {"a ) in the identity breaks no filter", K_SRV, "john)(uid=*@example.test", P_JOHN, 0, -1, EKEYREJECTED, STARTTLS_ERR_NO_RECORDS, STARTTLS_LDAP_NO_ENTRY, "no entry"},
        /* positive rows */
        {"userCertificate;binary, SRV, StartTLS", K_SRV, "john@example.test", P_JOHN, 0, 0, 0, STARTTLS_OK, STARTTLS_LDAP_MATCHED, "userCertificate;binary"},
        {"pgpKey binary", K_SRV, "john@example.test", P_JOHN_PGP, 0, 0, 0, STARTTLS_OK, STARTTLS_LDAP_MATCHED, "pgpKey"},
        {"pgpKey armored", K_SRV, "alice@example.test", P_ALICE_PGP, 0, 0, 0, STARTTLS_OK, STARTTLS_LDAP_MATCHED, "pgpKey"},
        {"ldaps, [ldap] server", K_LDAPS, "john@example.test", P_JOHN, 0, 0, 0, STARTTLS_OK, STARTTLS_LDAP_MATCHED, "userCertificate"},
        {"StartTLS, [ldap] server", K_SERVER, "john@example.test", P_JOHN, 0, 0, 0, STARTTLS_OK, STARTTLS_LDAP_MATCHED, "userCertificate"},
        {"the next SRV target after a refusal", K_BASE, "john@multi.example.test", P_JOHN, 0, 0, 0, STARTTLS_OK, STARTTLS_LDAP_MATCHED, "userCertificate"},
        {"a domain's entry", K_SRV, "example.test", P_HOST, 0, 0, 0, STARTTLS_OK, STARTTLS_LDAP_MATCHED, "userCertificate"},
        {"within a deadline", K_SRV, "john@example.test", P_JOHN, 5000, 0, 0, STARTTLS_OK, STARTTLS_LDAP_MATCHED, "userCertificate"},
        {"read only", K_SRV, "john@example.test", -1, 0, 0, 0, STARTTLS_OK, STARTTLS_LDAP_READ, "2 value(s)"},
};

START_TEST(step)
{
	const struct row *r = &rows[_i];
	struct tp_ldap_query q;
	struct tp_ldap_outcome o;
	starttls_ldap_step *st = NULL;
	tlspool_span span;
	long long t0 = tp_mono_ms();
	int rv, e;

	memset(&q, 0, sizeof(q));
	q.rt = rt[r->conf];
	q.identity = r->identity;
	if (r->peer >= 0) {
		span.data = der[r->peer];
		span.len = der_len[r->peer];
		q.chain = &span;
		q.nchain = 1;
	}
	if (r->deadline_ms > 0)
		q.deadline = t0 + r->deadline_ms;
	errno = 0;
	rv = tp_ldap_check(&q, &st, &o);
	e = errno;
	ck_assert_ptr_nonnull(st);
	ck_assert_msg(rv == r->rv, "%s: rv %d, want %d (%s)", r->what, rv,
	              r->rv, starttls_errstr());
	ck_assert_msg(st->verdict == r->verdict, "%s: verdict %s, want %s (%s)",
	              r->what, starttls_ldap_verdict_name(st->verdict),
	              starttls_ldap_verdict_name(r->verdict), st->reason);
	ck_assert_msg(strstr(st->reason, r->detail) != NULL,
	              "%s: reason \"%s\" lacks \"%s\"", r->what, st->reason,
	              r->detail);
	if (r->rv == 0) {
		ck_assert_str_ne(st->address, "");
		ck_assert_ptr_nonnull(st->dane);
		ck_assert_int_eq(st->dane->verdict, TLSPOOL_DANE_AUTHENTICATED);
		ck_assert_int_eq(o.cacheable, r->peer >= 0);
		if (r->peer >= 0)
			ck_assert_int_gt(o.expiry, time(NULL));
	} else {
		ck_assert_msg(e == r->err, "%s: errno %d, want %d (%s)", r->what,
		              e, r->err, starttls_errstr());
		ck_assert_msg(starttls_errclass() == r->cls,
		              "%s: class %s, want %s (%s)", r->what,
		              starttls_class_name(starttls_errclass()),
		              starttls_class_name(r->cls), starttls_errstr());
		ck_assert_msg(strstr(starttls_errstr(), r->detail) != NULL,
		              "%s: detail \"%s\" lacks \"%s\"", r->what,
		              starttls_errstr(), r->detail);
		/* no answer of an unauthenticated directory is ever kept */
		if (r->verdict == STARTTLS_LDAP_NOT_AUTHENTICATED ||
		    r->verdict == STARTTLS_LDAP_UNREACHABLE)
			ck_assert_int_eq(o.cacheable, 0);
		if (r->verdict == STARTTLS_LDAP_NOT_AUTHENTICATED)
			ck_assert_int_eq(st->nvalues, 0);
	}
	if (r->deadline_ms > 0 && r->rv != 0)
		ck_assert_int_le(tp_mono_ms() - t0, r->deadline_ms + 200);
	starttls_ldap_step_free(st);
}
END_TEST

/* What the step shows: the SRV answer, the directory, its DANE verdict,
 * base, filter, entry and values. */
START_TEST(step_contents)
{
	struct tp_ldap_query q = {rt[K_SRV], "john@example.test", NULL, 0, 0};
	struct tp_ldap_outcome o;
	starttls_ldap_step *st = NULL;
	tlspool_span span = {der[P_JOHN], der_len[P_JOHN]};

	q.chain = &span;
	q.nchain = 1;
	ck_assert_int_eq(tp_ldap_check(&q, &st, &o), 0);
	ck_assert_ptr_nonnull(st->srv);
	ck_assert_int_eq(st->srv->verdict, TLSPOOL_DNS_SECURE);
	ck_assert_str_eq(st->srv->qname, "_ldap._tcp.example.test.");
	ck_assert_str_eq(st->host, "ldap.example.test");
	ck_assert_uint_eq(st->port, p_ldap);
	ck_assert_int_eq(st->ldaps, 0);
	ck_assert_str_eq(st->address, "127.0.0.1");
	ck_assert_ptr_nonnull(st->tlsa);
	ck_assert_int_eq(st->tlsa->verdict, TLSPOOL_DNS_SECURE);
	ck_assert_str_eq(st->base, "dc=example,dc=test");
	ck_assert_str_eq(st->filter,
	                 "(|(mail=john@example.test)(uid=john))");
	ck_assert_str_eq(st->dn, "uid=john,dc=example,dc=test");
	ck_assert_uint_eq(st->nvalues, 2);
	ck_assert_int_eq(st->values[0].pgp + st->values[1].pgp, 1);
	for (size_t i = 0; i < 2; i++)
		ck_assert_int_eq(st->values[i].matched, !st->values[i].pgp);
	starttls_ldap_step_free(st);
}
END_TEST

/* --- the policy: sources, cache, trace ------------------------------------ */

static struct tp_runtime *policy_rt(const char *name, const char *extra)
{
	return load_config(name, extra);
}

static int authenticate(struct tp_runtime *r, int peer, int server,
                        const char *sni, int flags)
{
	static tlspool_span span;
	struct tp_peer_check pc;
	int rv;

	memset(&pc, 0, sizeof(pc));
	pc.rt = r;
	pc.server = server;
	pc.flags = flags;
	span.data = der[peer];
	span.len = der_len[peer];
	pc.chain = &span;
	pc.nchain = 1;
	pc.sniname = sni;
	pc.port = 4433;
	pc.transport = "tcp";
	tp_trace_reset();
	errno = 0;
	rv = tp_peer_authenticate(&pc);
	if (rv == 0)
		ck_assert_str_eq(pc.peer, sni ? sni : "john@example.test");
	return rv;
}

/* A client user authenticated by its directory; the second time from
 * the cache, NO_CACHE_READ asks the directory again, NO_CACHE_WRITE
 * stores nothing. */
START_TEST(policy_ldap_and_cache)
{
	struct tp_runtime *r = policy_rt("pol1", "[validation]\nsources = ldap\n");
	const starttls_trace *t;

	ck_assert_int_eq(authenticate(r, P_JOHN, 1, NULL,
	                              STARTTLS_NO_CACHE_WRITE), 0);
	t = starttls_last_trace();
	ck_assert_ptr_nonnull(t->ldap);
	ck_assert_int_eq(t->ldap->verdict, STARTTLS_LDAP_MATCHED);
	ck_assert_int_eq(t->ldap->from_cache, 0);
	/* nothing was stored */
	ck_assert_int_eq(authenticate(r, P_JOHN, 1, NULL, 0), 0);
	ck_assert_int_eq(starttls_last_trace()->ldap->from_cache, 0);
	ck_assert_int_eq(authenticate(r, P_JOHN, 1, NULL, 0), 0);
	t = starttls_last_trace();
	ck_assert_int_eq(t->ldap->from_cache, 1);
	ck_assert_int_eq(t->ldap->verdict, STARTTLS_LDAP_MATCHED);
	ck_assert_ptr_null(t->ldap->srv);
	ck_assert_int_eq(authenticate(r, P_JOHN, 1, NULL,
	                              STARTTLS_NO_CACHE_READ), 0);
	ck_assert_int_eq(starttls_last_trace()->ldap->from_cache, 0);
	/* another key of the same identity is not the cached one */
	ck_assert_int_eq(authenticate(r, P_MALLORY, 1, NULL, 0), -1);
	ck_assert_int_eq(errno, EKEYREJECTED);
	ck_assert_int_eq(starttls_errclass(), STARTTLS_ERR_NO_MATCH);
	ck_assert_ptr_nonnull(strstr(starttls_errstr(),
	                             "john@example.test: LDAP: "));
	ck_assert_int_eq(starttls_last_trace()->ldap->verdict,
	                 STARTTLS_LDAP_DIFFERENT);
	tp_runtime_release(r);
}
END_TEST

/* negative_ttl keeps a directory's "different" */
START_TEST(policy_negative_cache)
{
	struct tp_runtime *r = policy_rt(
	        "pol2", "[validation]\nsources = ldap\n[cache]\nnegative_ttl = 60\n");

	ck_assert_int_eq(authenticate(r, P_MALLORY, 1, NULL, 0), -1);
	ck_assert_int_eq(starttls_last_trace()->ldap->from_cache, 0);
	ck_assert_int_eq(authenticate(r, P_MALLORY, 1, NULL, 0), -1);
	ck_assert_int_eq(starttls_last_trace()->ldap->from_cache, 1);
	ck_assert_ptr_nonnull(strstr(starttls_errstr(), "a cached failure"));
	ck_assert_int_eq(authenticate(r, P_MALLORY, 1, NULL,
	                              STARTTLS_NO_CACHE_READ), -1);
	ck_assert_int_eq(starttls_last_trace()->ldap->from_cache, 0);
	tp_runtime_release(r);
}
END_TEST

/* The default sources: no LDAP step at all. */
START_TEST(policy_default_sources)
{
	struct tp_runtime *r = policy_rt("pol3", "");

	ck_assert_int_eq(authenticate(r, P_JOHN, 1, NULL, 0), -1);
	ck_assert_ptr_null(starttls_last_trace()->ldap);
	ck_assert_ptr_null(strstr(starttls_errstr(), "LDAP"));
	tp_runtime_release(r);
}
END_TEST

/* OPENPGPKEY and SMIMEA have nothing for john: LDAP, third, decides; the
 * detail names all three when it fails. */
START_TEST(policy_order)
{
	struct tp_runtime *r = policy_rt(
	        "pol4", "[validation]\nsources = openpgpkey smimea ldap\n");

	ck_assert_int_eq(authenticate(r, P_JOHN, 1, NULL, 0), 0);
	ck_assert_int_eq(starttls_last_trace()->ldap->verdict,
	                 STARTTLS_LDAP_MATCHED);
	ck_assert_int_eq(authenticate(r, P_MALLORY, 1, NULL, 0), -1);
	ck_assert_int_eq(starttls_errclass(), STARTTLS_ERR_NO_MATCH);
	ck_assert_ptr_nonnull(strstr(starttls_errstr(), "OPENPGPKEY: "));
	ck_assert_ptr_nonnull(strstr(starttls_errstr(), "; SMIMEA: "));
	ck_assert_ptr_nonnull(strstr(starttls_errstr(), "; LDAP: "));
	tp_runtime_release(r);
}
END_TEST

/* A directory that cannot be reached ends the walk: OPENPGPKEY, after
 * it, is never asked. */
START_TEST(policy_unreachable_stops)
{
	struct tp_runtime *r = policy_rt(
	        "pol5", "[validation]\nsources = ldap openpgpkey\n"
	                "[ldap]\nbase = dc=example,dc=test\n");
	static tlspool_span span;
	struct tp_peer_check pc;

	memset(&pc, 0, sizeof(pc));
	pc.rt = r;
	pc.server = 0;
	span.data = der[P_JOHN];
	span.len = der_len[P_JOHN];
	pc.chain = &span;
	pc.nchain = 1;
	pc.sniname = "john@down.example.test";
	pc.port = 4433;
	pc.transport = "tcp";
	tp_trace_reset();
	ck_assert_int_eq(tp_peer_authenticate(&pc), -1);
	ck_assert_int_eq(errno, EKEYREJECTED);
	ck_assert_int_eq(starttls_errclass(),
	                 STARTTLS_ERR_DIRECTORY_UNREACHABLE);
	ck_assert_ptr_null(starttls_last_trace()->openpgp);
	ck_assert_int_eq(starttls_last_trace()->ldap->verdict,
	                 STARTTLS_LDAP_UNREACHABLE);
	tp_runtime_release(r);
}
END_TEST

/* A domain by its directory: a client domain, and a server whose TLSA
 * proves nothing (no records) before LDAP proves it. */
START_TEST(policy_domain)
{
	struct tp_runtime *r = policy_rt(
	        "pol6", "[validation]\ndomain_sources = tlsa ldap\n");

	ck_assert_int_eq(authenticate(r, P_HOST, 1, "example.test", 0), 0);
	ck_assert_int_eq(starttls_last_trace()->ldap->verdict,
	                 STARTTLS_LDAP_MATCHED);
	ck_assert_int_eq(authenticate(r, P_HOST, 0, "example.test", 0), 0);
	ck_assert_int_eq(starttls_last_trace()->ldap->verdict,
	                 STARTTLS_LDAP_MATCHED);
	ck_assert_int_eq(authenticate(r, P_MALLORY, 0, "example.test", 0), -1);
	ck_assert_ptr_nonnull(strstr(starttls_errstr(), "TLSA: "));
	ck_assert_ptr_nonnull(strstr(starttls_errstr(), "; LDAP: "));
	tp_runtime_release(r);
}
END_TEST

/* starttls_ldap_lookup(): the process default configuration. */
START_TEST(lookup_api)
{
	char path[512];
	starttls_ldap_step *st;

	snprintf(path, sizeof(path), "%s/srv.conf", dir);
	setenv("TLSPOOL_CONFIG", path, 1);
	errno = 0;
	ck_assert_ptr_null(starttls_ldap_lookup(NULL, "not an identity"));
	ck_assert_int_eq(errno, EINVAL);
	st = starttls_ldap_lookup(NULL, "alice@example.test");
	ck_assert_ptr_nonnull(st);
	ck_assert_int_eq(st->verdict, STARTTLS_LDAP_READ);
	ck_assert_uint_eq(st->nvalues, 1);
	ck_assert_int_eq(st->values[0].pgp, 1);
	ck_assert_int_eq(st->values[0].armored, 1);
	ck_assert_int_eq(st->values[0].data.data[0] & 0x80, 0x80);
	starttls_ldap_step_free(st);
	st = starttls_ldap_lookup(NULL, "john@insecure.test");
	ck_assert_ptr_nonnull(st);
	ck_assert_int_eq(st->verdict, STARTTLS_LDAP_NOT_AUTHENTICATED);
	ck_assert_int_eq(starttls_errclass(), STARTTLS_ERR_INSECURE);
	starttls_ldap_step_free(st);
	starttls_ldap_step_free(NULL);
	unsetenv("TLSPOOL_CONFIG");
}
END_TEST

/* --- SRV rdata and order (RFC 2782) ----------------------------------------
 */

static const struct {
	const char *why;
	const char *rdata;
	size_t len;
} bad_srv[] = {
        {"empty", "", 0},
        {"no target", "\0\0\0\0\0\x01", 6},
        {"cut label", "\0\0\0\0\0\x01\x04ldap", 11},
        {"no root label", "\0\0\0\0\0\x01\x04ldap\x04test", 16},
        {"compression pointer", "\0\0\0\0\0\x01\xc0\x0c", 8},
        {"data after the name", "\0\0\0\0\0\x01\x04ldap\0\0", 13},
        {"a label with a space", "\0\0\0\0\0\x01\x03l p\0", 11},
        {"a label of 64", "\0\0\0\0\0\x01\x40", 7},
        {"a label ending in a hyphen", "\0\0\0\0\0\x01\x04ldp-\0", 12},
        {"a label starting with a hyphen", "\0\0\0\0\0\x01\x04-ldp\0", 12},
};

START_TEST(srv_malformed)
{
	tlspool_srv s;

	errno = 0;
	ck_assert_msg(tlspool_srv_parse((const unsigned char *)bad_srv[_i].rdata,
	                                bad_srv[_i].len, &s) == -1,
	              "accepted: %s", bad_srv[_i].why);
	ck_assert_int_eq(errno, EBADMSG);
}
END_TEST

START_TEST(srv_parse)
{
	const unsigned char r1[] = "\x00\x0a\x00\x05\x01\x85\x04ldap\x07"
	                           "example\x04test";
	const unsigned char r2[] = "\0\0\0\0\0\0";
	tlspool_srv s;
	tlspool_rr rr = {TLSPOOL_RR_SRV, 300, sizeof(r1), (unsigned char *)r1};
	char line[256];

	ck_assert_int_eq(tlspool_srv_parse(r1, sizeof(r1), &s), 0);
	ck_assert_uint_eq(s.priority, 10);
	ck_assert_uint_eq(s.weight, 5);
	ck_assert_uint_eq(s.port, 389);
	ck_assert_str_eq(s.target, "ldap.example.test.");
	ck_assert_int_eq(tlspool_srv_parse(r2, 7, &s), 0);
	ck_assert_str_eq(s.target, ".");
	ck_assert_int_gt(tlspool_rr_format(line, sizeof(line),
	                                   "_ldap._tcp.example.test.", &rr),
	                 0);
	ck_assert_str_eq(line, "_ldap._tcp.example.test. 300 IN SRV 10 5 389 "
	                       "ldap.example.test.");
	ck_assert_str_eq(tlspool_rr_type_name(TLSPOOL_RR_SRV), "SRV");
}
END_TEST

static uint32_t fixed(void *arg)
{
	return *(uint32_t *)arg;
}

static uint32_t lcg(void *arg)
{
	uint32_t *x = arg;

	*x = *x * 1103515245u + 12345u;
	return *x >> 8;
}

START_TEST(srv_order)
{
	tlspool_srv s[4];
	uint32_t v = 0, seed = 7;
	int first_heavy = 0, first_zero = 0;

	/* priority first, whatever the weights */
	memset(s, 0, sizeof(s));
	s[0].priority = 20, s[0].weight = 100, strcpy(s[0].target, "c.");
	s[1].priority = 10, s[1].weight = 0, strcpy(s[1].target, "a.");
	s[2].priority = 10, s[2].weight = 0, strcpy(s[2].target, "b.");
	s[3].priority = 5, s[3].weight = 0, strcpy(s[3].target, "first.");
	tlspool_srv_order(s, 4, fixed, &v);
	ck_assert_str_eq(s[0].target, "first.");
	ck_assert_uint_eq(s[1].priority, 10);
	ck_assert_uint_eq(s[2].priority, 10);
	ck_assert_str_eq(s[3].target, "c.");
	/* weights 90:10 (and a 0): the heavy one first about 9 times in
	 * 10, the one of weight 0 first only when the draw is 0 */
	for (int i = 0; i < 2000; i++) {
		memset(s, 0, sizeof(s));
		s[0].weight = 10, strcpy(s[0].target, "light.");
		s[1].weight = 90, strcpy(s[1].target, "heavy.");
		s[2].weight = 0, strcpy(s[2].target, "zero.");
		tlspool_srv_order(s, 3, lcg, &seed);
		first_heavy += strcmp(s[0].target, "heavy.") == 0;
		first_zero += strcmp(s[0].target, "zero.") == 0;
	}
	ck_assert_int_gt(first_heavy, 1650);
	ck_assert_int_lt(first_heavy, 1950);
	ck_assert_int_lt(first_zero, 60);
	/* with the library's own randomness too */
	tlspool_srv_order(s, 3, NULL, NULL);
}
END_TEST

/* --- filters, bases, armor ------------------------------------------------- */

START_TEST(escape_and_filter)
{
	char b[256];

	ck_assert_int_eq(tp_ldap_escape(b, sizeof(b), "a*b(c)d\\e"), 17);
	ck_assert_str_eq(b, "a\\2ab\\28c\\29d\\5ce");
	ck_assert_int_gt(tp_ldap_escape(b, sizeof(b), "tab\there"), 0);
	ck_assert_str_eq(b, "tab\\09here");
	ck_assert_int_eq(tp_ldap_escape(b, 4, "abcd"), -1);
	ck_assert_int_eq(tp_ldap_escape(b, 3, "*"), -1);
	ck_assert_int_gt(tp_ldap_filter(b, sizeof(b), "(|(mail=%s)(uid=%u))",
	                                "jo*n@example.test"),
	                 0);
	ck_assert_str_eq(b, "(|(mail=jo\\2an@example.test)(uid=jo\\2an))");
	ck_assert_int_gt(tp_ldap_filter(b, sizeof(b),
	                                "(&(associatedDomain=%d)(x=100%%))",
	                                "example.test."),
	                 0);
	ck_assert_str_eq(b, "(&(associatedDomain=example.test)(x=100%))");
	ck_assert_int_eq(tp_ldap_filter(b, 10, "(mail=%s)", "john@example.test"),
	                 -1);
	ck_assert_int_gt(tp_ldap_base(b, sizeof(b), "www.Example.test."), 0);
	ck_assert_str_eq(b, "dc=www,dc=Example,dc=test");
	ck_assert_int_eq(tp_ldap_base(b, sizeof(b), "bad_label.test"), -1);
	ck_assert_int_eq(tp_ldap_base(b, 12, "example.test"), -1);
	ck_assert_int_eq(tp_ldap_valid_dn("dc=example,dc=test"), 0);
	ck_assert_int_eq(tp_ldap_valid_dn("dc=example,,"), -1);
}
END_TEST

START_TEST(pgp_armor)
{
	/* "\x99\x01\x02" in armor, with a header, a CRC line, CRLF */
	const char *armored =
	        "-----BEGIN PGP PUBLIC KEY BLOCK-----\r\n"
	        "Comment: a test\r\n"
	        "\r\n"
	        "mQEC\r\n"
	        "=abcd\r\n"
	        "-----END PGP PUBLIC KEY BLOCK-----\r\n";
	const char *bare = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQEC\n"
	                   "-----END PGP PUBLIC KEY BLOCK-----\n";
	const char *noend = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQEC\n";
	const char *empty = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n"
	                    "-----END PGP PUBLIC KEY BLOCK-----\n";
	const char *text = "mQEC";
	const unsigned char bin[] = {0x99, 0x01, 0x02};
	unsigned char *out;
	size_t len;
	int arm;

	ck_assert_int_eq(tp_ldap_pgp_binary((const unsigned char *)noend,
	                                    strlen(noend), &out, &len, &arm),
	                 -1);
	ck_assert_int_eq(errno, EBADMSG);
	ck_assert_int_eq(tp_ldap_pgp_binary((const unsigned char *)empty,
	                                    strlen(empty), &out, &len, &arm),
	                 -1);
	ck_assert_int_eq(tp_ldap_pgp_binary((const unsigned char *)text,
	                                    strlen(text), &out, &len, &arm),
	                 -1);
	ck_assert_int_eq(tp_ldap_pgp_binary(NULL, 0, &out, &len, &arm), -1);
	ck_assert_int_eq(tp_ldap_pgp_binary((const unsigned char *)armored,
	                                    strlen(armored), &out, &len, &arm),
	                 0);
	ck_assert_int_eq(arm, 1);
	ck_assert_uint_eq(len, 3);
	ck_assert_int_eq(memcmp(out, bin, 3), 0);
	free(out);
	ck_assert_int_eq(tp_ldap_pgp_binary((const unsigned char *)bare,
	                                    strlen(bare), &out, &len, &arm),
	                 0);
	ck_assert_uint_eq(len, 3);
	free(out);
	ck_assert_int_eq(tp_ldap_pgp_binary(bin, 3, &out, &len, &arm), 0);
	ck_assert_int_eq(arm, 0);
	ck_assert_uint_eq(len, 3);
	free(out);
}
END_TEST

/* --- tlspool.conf ---------------------------------------------------------- */

static int conf(const char *text, char *err, size_t errlen,
                struct tp_config **out)
{
	char path[512];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/t.conf", dir);
	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	fputs(text, fp);
	fclose(fp);
	return tp_config_load(path, 0, out, err, errlen);
}

static const struct {
	const char *text, *want;
} bad_conf[] = {
        {"[validation]\nsources = openpgpkey tlsa\n", "sources: bad value"},
        {"[validation]\nsources = ldap ldap\n", "sources: bad value"},
        {"[validation]\nsources = ,\n", "sources: bad value"},
        {"[validation]\nsources = x500\n", "sources: bad value"},
        {"[validation]\ndomain_sources = smimea\n", "domain_sources: bad value"},
        {"[ldap]\nserver = ldapi:///run/slapd\n", "server: bad value"},
        {"[ldap]\nserver = ldap://127.0.0.1:389\n", "server: bad value"},
        {"[ldap]\nserver = ldaps://ldap.example.test:0\n", "server: bad value"},
        {"[ldap]\nserver = ldap://ldap.example.test:389/dc=x\n", "server: bad value"},
        {"[ldap]\nfilter = mail=%s\n", "filter: bad value"},
        {"[ldap]\nfilter = (mail=%x)\n", "filter: bad value"},
        {"[ldap]\nfilter = (|(mail=%s)(uid=%u)\n", "filter: bad value"},
        {"[ldap]\nfilter = (mail=%s))(x=y)\n", "filter: bad value"},
        {"[ldap]\ndomain_filter = (a=b)(c=d)\n", "domain_filter: bad value"},
        {"[ldap]\nbase = dc=example,,dc=test\n", "base: bad value"},
        {"[ldap]\ntimeout_ms = 0\n", "timeout_ms: bad value"},
        {"[ldap]\nport = 389\n", "port: unknown key in [ldap]"},
};

START_TEST(conf_bad)
{
	struct tp_config *c = NULL;
	char err[512];

	ck_assert_int_eq(conf(bad_conf[_i].text, err, sizeof(err), &c), -1);
	ck_assert_msg(strstr(err, bad_conf[_i].want) != NULL,
	              "\"%s\": got \"%s\", want \"%s\"", bad_conf[_i].text, err,
	              bad_conf[_i].want);
	ck_assert_ptr_null(c);
}
END_TEST

START_TEST(conf_good)
{
	struct tp_config *c = NULL;
	char err[512];

	ck_assert_int_eq(conf("[dns]\ntimeout_ms = 100\n", err, sizeof(err),
	                      &c),
	                 0);
	/* the defaults: as before LDAP */
	ck_assert_uint_eq(c->nsources, 2);
	ck_assert_int_eq(c->sources[0], TP_SRC_OPENPGPKEY);
	ck_assert_int_eq(c->sources[1], TP_SRC_SMIMEA);
	ck_assert_uint_eq(c->ndomain_sources, 1);
	ck_assert_int_eq(c->domain_sources[0], TP_SRC_TLSA);
	ck_assert_str_eq(c->ldap.filter, "(|(mail=%s)(uid=%u))");
	ck_assert_str_eq(c->ldap.domain_filter, "(associatedDomain=%d)");
	ck_assert_str_eq(c->ldap.host, "");
	ck_assert_uint_eq(c->ldap.timeout_ms, 5000);
	tp_config_free(c);
	ck_assert_int_eq(
	        conf("[validation]\nsources = ldap, smimea\n"
	             "domain_sources = ldap tlsa\n"
	             "[ldap]\nserver = ldaps://Dir.Example.test\n"
	             "base = ou=people,dc=example,dc=test\n"
	             "filter = (&(objectClass=inetOrgPerson)(mail=%s))\n"
	             "timeout_ms = 800\n",
	             err, sizeof(err), &c),
	        0);
	ck_assert_uint_eq(c->nsources, 2);
	ck_assert_int_eq(c->sources[0], TP_SRC_LDAP);
	ck_assert_int_eq(c->sources[1], TP_SRC_SMIMEA);
	ck_assert_int_eq(c->domain_sources[0], TP_SRC_LDAP);
	ck_assert_int_eq(c->domain_sources[1], TP_SRC_TLSA);
	ck_assert_str_eq(c->ldap.host, "Dir.Example.test");
	ck_assert_uint_eq(c->ldap.port, 636);
	ck_assert_int_eq(c->ldap.ldaps, 1);
	ck_assert_str_eq(c->ldap.base, "ou=people,dc=example,dc=test");
	ck_assert_uint_eq(c->ldap.timeout_ms, 800);
	tp_config_free(c);
	ck_assert_int_eq(conf("[ldap]\nserver = ldap://dir.example.test:1389/\n",
	                      err, sizeof(err), &c),
	                 0);
	ck_assert_uint_eq(c->ldap.port, 1389);
	ck_assert_int_eq(c->ldap.ldaps, 0);
	tp_config_free(c);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ldapcheck");
	TCase *pure = tcase_create("pure");
	TCase *tc = tcase_create("slapd");
	int rv;

	tcase_add_loop_test(pure, srv_malformed, 0,
	                    sizeof(bad_srv) / sizeof(bad_srv[0]));
	tcase_add_test(pure, srv_parse);
	tcase_add_test(pure, srv_order);
	tcase_add_test(pure, escape_and_filter);
	tcase_add_test(pure, pgp_armor);
	tcase_add_loop_test(pure, conf_bad, 0,
	                    sizeof(bad_conf) / sizeof(bad_conf[0]));
	tcase_add_test(pure, conf_good);
	suite_add_tcase(s, pure);
	setup();
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, step, 0, sizeof(rows) / sizeof(rows[0]));
	tcase_add_test(tc, step_contents);
	tcase_add_test(tc, policy_ldap_and_cache);
	tcase_add_test(tc, policy_negative_cache);
	tcase_add_test(tc, policy_default_sources);
	tcase_add_test(tc, policy_order);
	tcase_add_test(tc, policy_unreachable_stops);
	tcase_add_test(tc, policy_domain);
	tcase_add_test(tc, lookup_api);
	suite_add_tcase(s, tc);
	rv = tp_run_suite(s);
	teardown();
	return rv;
}
