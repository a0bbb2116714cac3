/*
 * starttls_ctx_client_dane() (a destination found by MX or SRV, RFC 7672
 * and RFC 7673) attacked through the validation cache: a result reached
 * with one list of reference identifiers must not authenticate a call
 * with another.  The key holds the names after the TLSA owner (and
 * "+smtp"); the cache keeps no key over 320 octets (cache.c), so long
 * lists, which peerauth.c cuts at 1400 octets, are never cached and two
 * that differ only past the cut cannot share an entry.
 *
 * The fixture (run once, before Check forks the tests) makes a CA and a
 * server certificate for www.example.test with certtool, publishes a
 * DANE-TA(2) record for the CA at _PORT._tcp.www.example.test, starts
 * zones/serve and writes the tlspool.conf that the calls read through
 * TLSPOOL_CONFIG.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <tlspool/starttls.h>

#include "fixture.h"
#include "testutil.h"

static char dir[] = "/tmp/tlspool-destattack-XXXXXX";
static int listener;
static unsigned port;

static void setup(void)
{
	char cmd[8192], conf[8192], zconf[2048], hash[128];
	const char *src = getenv("TLSPOOL_SOURCE_DIR");
	FILE *fp;

	if (src == NULL)
		src = ".";
	need(mkdtemp(dir) != NULL, "mkdtemp");
	listener = listen_any(&port);
	snprintf(
	        cmd, sizeof(cmd),
	        "cd %s && "
	        "certtool --generate-privkey --key-type ecdsa --outfile ca.key "
	        "2>/dev/null && "
	        "printf 'cn = attack CA\\nca\\ncert_signing_key\\n"
	        "expiration_days = 30\\n' > ca.tmpl && "
	        "certtool --generate-self-signed --load-privkey ca.key "
	        "--template ca.tmpl --outfile ca.pem 2>/dev/null && "
	        "certtool --generate-privkey --key-type ecdsa --outfile ee.key "
	        "2>/dev/null && "
	        "printf 'dns_name = www.example.test\\nexpiration_days = 30\\n"
	        "signing_key\\ntls_www_server\\n' > ee.tmpl && "
	        "certtool --generate-certificate --load-privkey ee.key "
	        "--load-ca-certificate ca.pem --load-ca-privkey ca.key "
	        "--template ee.tmpl --outfile ee.pem 2>/dev/null && "
	        "cat ee.pem ca.pem > chain.pem && "
	        "openssl x509 -in ca.pem -outform DER | sha256sum | "
	        "cut -c1-64 > ca.hash",
	        dir);
	run_sh(cmd);
	snprintf(cmd, sizeof(cmd), "%s/ca.hash", dir);
	slurp_into(cmd, hash, sizeof(hash));
	snprintf(cmd, sizeof(cmd), "%s/example.add", dir);
	fp = fopen(cmd, "w");
	need(fp != NULL, cmd);
	fprintf(fp, "_%u._tcp.www IN TLSA 2 0 1 %s\n", port, hash);
	fclose(fp);
	snprintf(cmd, sizeof(cmd),
	         "%s/zones/serve start %s/z --add example.test %s/example.add "
	         "2>/dev/null",
	         src, dir, dir);
	run_sh(cmd);
	snprintf(cmd, sizeof(cmd), "%s/z/tlspool.conf", dir);
	slurp_into(cmd, zconf, sizeof(zconf));
	snprintf(conf, sizeof(conf),
	         "%s\n[cache]\nnegative_ttl = 60\n"
	         "[identity www.example.test]\nkey = %s/ee.key\n"
	         "certificate = %s/chain.pem\n",
	         zconf, dir, dir);
	use_config(dir, conf);
}

static void teardown(void)
{
	stop_zones(dir);
}

static void *serve(void *arg)
{
	int fd = accept(listener, NULL, NULL), rv;
	char peer[256];

	(void)arg;
	rv = starttls_server(fd, IPPROTO_TCP, "www.example.test",
	                     STARTTLS_PEERCERT_NONE, NULL, peer, sizeof(peer));
	if (rv >= 0)
		close(rv);
	return NULL;
}

/* One destination call to the server with these reference names: 0 when
 * it authenticated, else -1 (starttls_errstr() says why). */
static int dest_call(const char *const *names, size_t n, int smtp)
{
	starttls_dane_ref ref = {"www.example.test", port, names, n, NULL,
	                         smtp};
	struct sockaddr_in sa = {.sin_family = AF_INET,
	                         .sin_port = htons((uint16_t)port)};
	char peer[256];
	pthread_t t;
	int fd = socket(AF_INET, SOCK_STREAM, 0), rv;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(pthread_create(&t, NULL, serve, NULL), 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	rv = starttls_ctx_client_dane(NULL, fd, IPPROTO_TCP, NULL, 0,
	                              "www.example.test", &ref, peer,
	                              sizeof(peer));
	pthread_join(t, NULL);
	if (rv >= 0)
		close(rv);
	return rv >= 0 ? 0 : -1;
}

/* Names of 253 octets, all different: six fill the cache key's 1400
 * octets. */
static char longname[6][256];

/* Negative first: the certificate names www.example.test only, so a list
 * without that name fails the DANE-TA name check (RFC 7672 section
 * 3.2.2), before and after a call with it has been cached. */
START_TEST(names_beyond_the_key_size_are_not_shared)
{
	const char *with[8], *without[8];

	for (int i = 0; i < 6; i++)
		with[i] = without[i] = longname[i];
	with[6] = "www.example.test";
	without[6] = "other.example.test";
	ck_assert_msg(dest_call(without, 7, 0) == -1,
	              "authenticated without its name");
	ck_assert_msg(dest_call(with, 7, 0) == 0, "%s", starttls_errstr());
	/* the list with the name passed and may be cached: the list
	 * without it must not find that entry */
	ck_assert_msg(dest_call(without, 7, 0) == -1,
	              "a cached result of other reference names "
	              "authenticated the call");
	ck_assert_msg(strstr(starttls_errstr(), "cached") == NULL, "%s",
	              starttls_errstr());
	/* short lists are cached apart */
	ck_assert_int_eq(dest_call(with + 6, 1, 0), 0);
	ck_assert_int_eq(dest_call(with + 6, 1, 0), 0);
	ck_assert_int_eq(dest_call(without + 6, 1, 0), -1);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("dest_attack");
	TCase *neg = tcase_create("negative");

	tcase_set_timeout(neg, 60);
	tcase_add_test(neg, names_beyond_the_key_size_are_not_shared);
	suite_add_tcase(s, neg);
	return s;
}

int main(void)
{
	int rv;

	for (int i = 0; i < 6; i++) {
		/* 63 + 1 + 63 + 1 + 63 + 1 + 61 = 253 */
		memset(longname[i], 'a' + i, 253);
		longname[i][63] = longname[i][127] = longname[i][191] = '.';
	}
	setup();
	rv = tp_run_suite(suite());
	teardown();
	return rv;
}
