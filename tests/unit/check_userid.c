/*
 * User peers (docs/architecture.md, "Validation") through starttls_client() and
 * starttls_server(): a client whose identity john@example.test is an
 * OpenPGP key made by GnuPG (openpgp_key = a secret key export) is proven
 * by the OPENPGPKEY record that publishes its public key; a client with
 * an X.509 key by SMIMEA "3 1 1"; the failures fail closed with
 * EKEYREJECTED and say why.
 *
 * The fixture (run once, before Check forks the tests) makes the OpenPGP
 * keys (tests/tools/mkpgp.sh) and an X.509 key, publishes the records in
 * example.test, bogus.test and insecure.test, starts zones/serve and
 * writes the tlspool.conf that every call reads through TLSPOOL_CONFIG.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <tlspool/starttls.h>

#include "fixture.h"
#include "testutil.h"

static char dir[] = "/tmp/tlspool-userid-XXXXXX";
static int listener;
static unsigned port;




/* A copy of ed.pub, edited: 1 truncated, 2 overlong first packet, 3 the
 * User ID's self-signature corrupted. */
static void edited_key(int how, const char *out)
{
	unsigned char b[4096];
	char path[256];
	size_t n, k, off;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/ed.pub", dir);
	fp = fopen(path, "rb");
	need(fp != NULL, path);
	n = fread(b, 1, sizeof(b) - 16, fp);
	fclose(fp);
	k = b[1];
	if (how == 1) {
		n -= 10;
	} else if (how == 2) {
		memmove(b + 2 + k + 1, b + 2 + k, n - 2 - k);
		b[1] = (unsigned char)(k + 1);
		b[2 + k] = 0;
		n++;
	} else {
		off = 2 + k;
		off += 2 + b[off + 1];
		b[off + 2 + b[off + 1] - 1] ^= 1;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, out);
	fp = fopen(path, "wb");
	need(fp != NULL && fwrite(b, 1, n, fp) == n, path);
	fclose(fp);
}


/* "HASH._openpgpkey IN OPENPGPKEY BASE64-OF-FILE" lines via the shell. */
static void setup(void)
{
	char cmd[16384], conf[8192], zconf[1024];
	const char *src = getenv("TLSPOOL_SOURCE_DIR");

	if (src == NULL)
		src = ".";
	need(mkdtemp(dir) != NULL, "mkdtemp");
	listener = listen_any(&port);
	snprintf(cmd, sizeof(cmd), "%s/tests/tools/mkpgp.sh %s", src, dir);
	run_sh(cmd);
	edited_key(1, "trunc.pub");
	edited_key(2, "long.pub");
	edited_key(3, "corrupt.pub");
	snprintf(cmd, sizeof(cmd),
	         "cd %s && certtool --generate-privkey --key-type ecdsa --outfile ks.pem 2>/dev/null && "
	         "certtool --generate-privkey --key-type ecdsa --outfile kc.pem 2>/dev/null && "
	         "h() { printf %%s \"$1\" | sha256sum | cut -c1-56; } && "
	         "p() { echo \"$(h $1)._openpgpkey IN OPENPGPKEY $(base64 -w0 $2)\"; } && "
	         "spki() { openssl pkey -in $1 -pubout -outform DER | sha256sum | cut -c1-64; } && "
	         "{ echo \"_%u._tcp.www IN TLSA 3 1 1 $(spki ks.pem)\"; "
	         "p john ed.pub; p john rsa.pub; p mallory ed.pub; p alice2 alice.pub; "
	         "p trunc trunc.pub; p long long.pub; p corrupt corrupt.pub; "
	         "echo \"$(h smime)._smimecert IN SMIMEA 3 1 1 $(spki kc.pem)\"; "
	         "echo \"$(h smimebad)._smimecert IN SMIMEA 3 1 1 %064d\"; "
	         "} > example.add && "
	         "p john ed.pub > bogus.add && echo \"$(h smime)._smimecert IN SMIMEA 3 1 1 $(spki kc.pem)\" >> bogus.add && "
	         "p john ed.pub > insecure.add",
	         dir, port, 0);
	run_sh(cmd);
	snprintf(cmd, sizeof(cmd),
	         "%s/zones/serve start %s/z --add example.test %s/example.add "
	         "--add bogus.test %s/bogus.add --add insecure.test %s/insecure.add "
	         "2>/dev/null",
	         src, dir, dir, dir, dir);
	run_sh(cmd);
	snprintf(cmd, sizeof(cmd), "%s/z/tlspool.conf", dir);
	slurp_into(cmd, zconf, sizeof(zconf));
	snprintf(conf, sizeof(conf),
	         "%s\n[tls]\nhandshake_timeout_ms = 3000\n"
	         "[identity www.example.test]\nkey = %s/ks.pem\n"
	         "[identity john@example.test]\nopenpgp_key = %s/ed.sec\n"
	         "[identity rsajohn@example.test]\nopenpgp_key = %s/rsa.sec\n"
	         "[identity mallory@example.test]\nopenpgp_key = %s/other.sec\n"
	         "[identity alice2@example.test]\nopenpgp_key = %s/alice.sec\n"
	         "[identity trunc@example.test]\nopenpgp_key = %s/ed.sec\n"
	         "[identity long@example.test]\nopenpgp_key = %s/ed.sec\n"
	         "[identity corrupt@example.test]\nopenpgp_key = %s/ed.sec\n"
	         "[identity john@bogus.test]\nopenpgp_key = %s/ed.sec\n"
	         "[identity smime@bogus.test]\nkey = %s/kc.pem\n"
	         "[identity john@insecure.test]\nopenpgp_key = %s/ed.sec\n"
	         "[identity smime@example.test]\nkey = %s/kc.pem\n"
	         "[identity smimebad@example.test]\nkey = %s/kc.pem\n"
	         "[identity expired@example.test]\nopenpgp_key = %s/expired.sec\n"
	         "[identity public@example.test]\nopenpgp_key = %s/ed.pub\n",
	         zconf, dir, dir, dir, dir, dir, dir, dir, dir, dir, dir, dir,
	         dir, dir, dir, dir);
	use_config(dir, conf);
}

static void teardown(void)
{
	stop_zones(dir);
}

/* --- a server in a thread -------------------------------------------------- */

struct server {
	pthread_t thread;
	char *myname;
	int flags;
	int rv, err;
	char errstr[512], peer[320];
};

static void *serve(void *arg)
{
	struct server *s = arg;
	int fd = accept(listener, NULL, NULL);
	char buf[64];
	ssize_t n;

	s->rv = starttls_server(fd, IPPROTO_TCP, s->myname, s->flags, NULL,
	                        s->peer, sizeof(s->peer));
	s->err = errno;
	snprintf(s->errstr, sizeof(s->errstr), "%s", starttls_errstr());
	if (s->rv >= 0) {
		while ((n = read(s->rv, buf, sizeof(buf))) > 0)
			if (write(s->rv, buf, (size_t)n) != n)
				break;
		close(s->rv);
	}
	return NULL;
}

static struct server *start_server(char *myname, int flags)
{
	struct server *s = calloc(1, sizeof(*s));

	s->myname = myname;
	s->flags = flags;
	pthread_create(&s->thread, NULL, serve, s);
	return s;
}

static int client(char *myname, int flags, char *sni, char *peer, size_t len)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return starttls_client(fd, IPPROTO_TCP, myname, flags, sni, peer, len);
}

/* --- negative cases: the server refuses the user ---------------------------- */

static const struct {
	char *user;
	const char *detail;
} refused_rows[] = {
        {"mallory@example.test", "is neither the key"},
        {"alice2@example.test", "no User ID names <alice2@example.test>"},
        {"trunc@example.test", "truncated"},
        {"long@example.test", "overlong"},
        {"corrupt@example.test", "bad signature"},
        {"john@bogus.test", "OPENPGPKEY RRset is bogus ("},
        {"smime@bogus.test", "SMIMEA RRset is bogus ("},
        {"john@insecure.test", "OPENPGPKEY: the zone is insecure"},
        {"smimebad@example.test", "SMIMEA: "},
};

START_TEST(user_refused)
{
	struct server *s = start_server("www.example.test", 0);
	int rv = client(refused_rows[_i].user, 0, "www.example.test", NULL, 0);

	pthread_join(s->thread, NULL);
	ck_assert_msg(s->rv == -1 && s->err == EKEYREJECTED,
	              "%s: server rv %d errno %d: %s", refused_rows[_i].user,
	              s->rv, s->err, s->errstr);
	ck_assert_msg(strstr(s->errstr, refused_rows[_i].detail) != NULL,
	              "%s: \"%s\"", refused_rows[_i].user, s->errstr);
	if (rv >= 0)
		close(rv);
	free(s);
}
END_TEST

START_TEST(no_remote_user)
{
	struct server *s = start_server("www.example.test",
	                                STARTTLS_NO_REMOTE_USER);
	int rv = client("john@example.test", 0, "www.example.test", NULL, 0);

	pthread_join(s->thread, NULL);
	ck_assert_msg(s->rv == -1 && s->err == EPERM, "server errno %d: %s",
	              s->err, s->errstr);
	ck_assert_ptr_nonnull(strstr(s->errstr, "NO_REMOTE_USER"));
	if (rv >= 0)
		close(rv);
	free(s);
}
END_TEST

/* A client call that fails before any byte is sent (no listener's
 * backlog is touched). */
static int unconnected(char *myname)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	return starttls_client(fd, IPPROTO_TCP, myname, 0, "www.example.test",
	                       NULL, 0);
}

START_TEST(unusable_openpgp_key)
{
	/* an expired key, and a public key where a secret one belongs */
	ck_assert_int_eq(unconnected("expired@example.test"), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_msg(strstr(starttls_errstr(), "expired") != NULL, "%s",
	              starttls_errstr());
	ck_assert_int_eq(unconnected("public@example.test"), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_msg(strstr(starttls_errstr(), "not a secret key") != NULL,
	              "%s", starttls_errstr());
}
END_TEST

/* --- positive cases ------------------------------------------------------------ */

static const struct {
	char *user;
	const char *how; /* in the trace */
} accepted_rows[] = {
        {"john@example.test", "OPENPGPKEY"},
        {"rsajohn@example.test", NULL}, /* RSA-3072 key, published for john */
        {"smime@example.test", "SMIMEA"},
};

START_TEST(user_accepted)
{
	struct server *s = start_server("www.example.test", 0);
	char peer[64] = "", buf[8];
	int rv = client(accepted_rows[_i].user, 0, "www.example.test", peer,
	                sizeof(peer));

	if (_i == 1) { /* rsajohn's key is john's: the server says so */
		pthread_join(s->thread, NULL);
		ck_assert_msg(s->rv == -1 && s->err == EKEYREJECTED, "%s",
		              s->errstr);
		if (rv >= 0)
			close(rv);
		free(s);
		return;
	}
	ck_assert_msg(rv >= 0, "client errno %d: %s", errno, starttls_errstr());
	ck_assert_str_eq(peer, "www.example.test");
	ck_assert_int_eq(write(rv, "ping", 4), 4);
	ck_assert_int_eq(read(rv, buf, sizeof(buf)), 4);
	close(rv);
	pthread_join(s->thread, NULL);
	ck_assert_msg(s->rv >= 0, "server errno %d: %s", s->err, s->errstr);
	ck_assert_str_eq(s->peer, accepted_rows[_i].user);
	free(s);
}
END_TEST

/* RSA-3072 through TLS 1.3: john's RRset holds both keys. */
START_TEST(rsa_key)
{
	char *saved = strdup(getenv("TLSPOOL_CONFIG")), path[256], cmd[600];
	struct server *s;
	int rv;

	snprintf(path, sizeof(path), "%s/rsa.conf", dir);
	snprintf(cmd, sizeof(cmd),
	         "sed -e 's|^\\[identity john@example.test\\]|[identity old@example.test]|' "
	         "-e 's|^\\[identity rsajohn@example.test\\]|[identity john@example.test]|' "
	         "%s > %s",
	         saved, path);
	ck_assert_int_eq(system(cmd), 0);
	setenv("TLSPOOL_CONFIG", path, 1);
	s = start_server("www.example.test", 0);
	rv = client("john@example.test", 0, "www.example.test", NULL, 0);
	ck_assert_msg(rv >= 0, "client errno %d: %s", errno, starttls_errstr());
	close(rv);
	pthread_join(s->thread, NULL);
	setenv("TLSPOOL_CONFIG", saved, 1);
	free(saved);
	ck_assert_msg(s->rv >= 0, "server errno %d: %s", s->err, s->errstr);
	ck_assert_str_eq(s->peer, "john@example.test");
	free(s);
}
END_TEST

/* The client proves a server that names itself john@example.test. */
START_TEST(user_server)
{
	struct server *s = start_server("john@example.test",
	                                STARTTLS_PEERCERT_NONE);
	char peer[64] = "";
	int rv = client(NULL, 0, NULL, peer, sizeof(peer));
	const starttls_trace *t = starttls_last_trace();

	ck_assert_msg(rv >= 0, "client errno %d: %s", errno, starttls_errstr());
	ck_assert_str_eq(peer, "john@example.test");
	ck_assert_ptr_nonnull(t->openpgp);
	ck_assert_int_eq(t->openpgp->verdict, TLSPOOL_DANE_AUTHENTICATED);
	ck_assert_ptr_nonnull(t->dns);
	ck_assert_int_eq(t->dns->qtype, TLSPOOL_RR_OPENPGPKEY);
	ck_assert_ptr_nonnull(strstr(t->owner, "._openpgpkey.example.test"));
	close(rv);
	pthread_join(s->thread, NULL);
	free(s);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("userid");
	TCase *neg = tcase_create("negative");
	TCase *pos = tcase_create("positive");

	tcase_set_timeout(neg, 60);
	tcase_set_timeout(pos, 60);
	tcase_add_loop_test(neg, user_refused, 0,
	                    sizeof(refused_rows) / sizeof(refused_rows[0]));
	tcase_add_test(neg, no_remote_user);
	tcase_add_test(neg, unusable_openpgp_key);
	tcase_add_loop_test(pos, user_accepted, 0,
	                    sizeof(accepted_rows) / sizeof(accepted_rows[0]));
	tcase_add_test(pos, rsa_key);
	tcase_add_test(pos, user_server);
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
