/*
 * Credentials of local identities: key files, certificates, keys made
 * into self-signed certificates on the fly, keys in a PKCS#11 token
 * (SoftHSM, set up at test time), and the ACL.  Keys and certificates are
 * made by certtool at test time.
 */
#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "cred.h"
#include "testutil.h"

/* The credentials of the configuration under test, kept in one store
 * as a runtime keeps them. */
static struct tp_credstore *store;

static int cred_get(struct tp_config *cfg, const char *name,
                    gnutls_certificate_credentials_t *out)
{
	if (store == NULL)
		store = tp_credstore_new();
	return tp_cred_get(store, cfg, name, out);
}

static void release(struct tp_config *cfg)
{
	tp_credstore_free(store);
	store = NULL;
	tp_config_free(cfg);
}


static char dir[] = "/tmp/tlspool-cred-XXXXXX";

static void sh(const char *fmt, const char *arg)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd), fmt, dir, arg, dir, dir, dir, dir);
	ck_assert_msg(system(cmd) == 0, "failed: %s", cmd);
}

static void setup(void)
{
	strcpy(dir, "/tmp/tlspool-cred-XXXXXX"); /* once per test */
	ck_assert_ptr_nonnull(mkdtemp(dir));
	/* two keys, and a certificate for the first */
	sh("cd %s && certtool --generate-privkey --key-type ecdsa --outfile k1.pem%s 2>/dev/null"
	   " && certtool --generate-privkey --key-type ecdsa --outfile k2.pem 2>/dev/null", "");
	sh("cd %s && printf 'cn = www.example.test\\ndns_name = www.example.test\\n"
	   "expiration_days = 30\\nsigning_key\\n' > tmpl%s && "
	   "certtool --generate-self-signed --load-privkey k1.pem --template tmpl "
	   "--outfile c1.pem 2>/dev/null && echo garbage > bad.pem", "");
}

static void teardown(void)
{
	sh("rm -rf %s%s", "");
}

static struct tp_config *conf(const char *text)
{
	char p[256], err[512];
	struct tp_config *cfg;
	FILE *fp;

	snprintf(p, sizeof(p), "%s/tlspool.conf", dir);
	fp = fopen(p, "w");
	fputs(text, fp);
	fclose(fp);
	ck_assert_msg(tp_config_load(p, 0, &cfg, err, sizeof(err)) == 0, "%s", err);
	return cfg;
}

/* A text with %s replaced by the test directory (up to 4 times). */
static const char *in_dir(const char *fmt)
{
	static char buf[2048];

	snprintf(buf, sizeof(buf), fmt, dir, dir, dir, dir);
	return buf;
}

/* The certificate that credentials present. */
static gnutls_x509_crt_t presented(gnutls_certificate_credentials_t creds)
{
	gnutls_datum_t der;
	gnutls_x509_crt_t crt;

	ck_assert_int_eq(gnutls_certificate_get_crt_raw(creds, 0, 0, &der), 0);
	gnutls_x509_crt_init(&crt);
	ck_assert_int_eq(gnutls_x509_crt_import(crt, &der, GNUTLS_X509_FMT_DER), 0);
	return crt;
}

/* --- negative cases --- */

START_TEST(no_identity)
{
	struct tp_config *cfg = conf("[identity www.example.test]\nallow_users = root\n");
	gnutls_certificate_credentials_t c;

	ck_assert_int_eq(cred_get(cfg, "mail.example.test", &c), -1);
	ck_assert_int_eq(errno, ENOKEY);
	ck_assert_ptr_nonnull(strstr(starttls_errstr(), "no [identity mail.example.test]"));
	ck_assert_int_eq(cred_get(cfg, "www.example.test", &c), -1);
	ck_assert_int_eq(errno, ENOKEY);
	ck_assert_ptr_nonnull(strstr(starttls_errstr(), "has no key"));
	release(cfg);
}
END_TEST

START_TEST(bad_keys)
{
	struct tp_config *cfg = conf(in_dir(
	        "[identity a.test]\nkey = %s/missing.pem\n"
	        "[identity b.test]\nkey = %s/bad.pem\n"
	        "[identity c.test]\nkey = %s/k2.pem\ncertificate = %s/c1.pem\n"));
	gnutls_certificate_credentials_t c;

	ck_assert_int_eq(cred_get(cfg, "a.test", &c), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_nonnull(strstr(starttls_errstr(), "missing.pem"));
	ck_assert_int_eq(cred_get(cfg, "b.test", &c), -1);
	ck_assert_ptr_nonnull(strstr(starttls_errstr(), "bad.pem"));
	/* a certificate for another key is refused */
	ck_assert_int_eq(cred_get(cfg, "c.test", &c), -1);
	ck_assert_int_eq(errno, EINVAL);
	release(cfg);
}
END_TEST

START_TEST(acl_denies_before_key)
{
	/* The key file does not exist: EACCES proves the ACL came first. */
	struct tp_config *cfg = conf(in_dir("[identity a.test]\nkey = %s/missing.pem\n"
	                                    "allow_users = 4242424\n"));
	gnutls_certificate_credentials_t c;

	ck_assert_int_eq(cred_get(cfg, "a.test", &c), -1);
	ck_assert_int_eq(errno, EACCES);
	release(cfg);
}
END_TEST

/*
 * Key, certificate and openpgp_key files that break the file rules
 * (tlspool.conf(5) FILES): EACCES, class access, a detail naming the
 * identity, the file, its owner and its mode.  HOW makes DIR/bad from
 * the good key k1.pem (or the certificate c1.pem).
 */
static const struct {
	const char *what, *how, *want;
} refused_rows[] = {
        {"key", "chmod 0644 bad", "owner root (uid 0), mode 0644: readable by group or other; a private key must be 0600 or stricter"},
        {"key", "chmod 0660 bad", "mode 0660: readable by group or other; a private key must be 0600 or stricter"},
        {"key", "chmod 0602 bad", "mode 0602: writable by group or other; a private key"},
        {"key", "chmod 0601 bad", "mode 0601: executable by group or other; a private key"},
        {"key", "chown 65534 bad", "owner nobody (uid 65534), mode 0600: not owned by uid 0"},
        {"key", "rm bad && mkdir bad", "is a directory, not a regular file"},
        {"key", "rm bad && mkfifo -m 600 bad", "mode 0600: is a FIFO, not a regular file"},
        {"key", "rm bad && ln -s /dev/zero bad", "mode 0666: is a character device, not a regular file"},
        {"key", "cat k1.pem >> bad && truncate -s 1048577 bad", "mode 0600: 1048577 octets, more than the limit of 1 MiB"},
        /* a link is followed, and its target is checked */
        {"key", "mv bad target && chmod 0640 target && ln -s target bad", "mode 0640: readable by group or other"},
        {"certificate", "chmod 0666 bad", "mode 0666: writable by group or other, which a certificate or trust anchor file must not be"},
        {"certificate", "chown 65534 bad", "owner nobody (uid 65534), mode 0644: not owned by uid 0"},
        {"certificate", "rm bad && mkdir bad", "is a directory"},
        {"openpgp_key", "chmod 0644 bad", "mode 0644: readable by group or other; a private key must be 0600 or stricter"},
        {"openpgp_key", "rm bad && mkfifo -m 600 bad", "is a FIFO"},
};

START_TEST(file_refused)
{
	const char *what = refused_rows[_i].what;
	int cert = strcmp(what, "certificate") == 0;
	char cmd[512], text[512], bad[300];
	struct tp_config *cfg;
	gnutls_certificate_credentials_t c;

	snprintf(cmd, sizeof(cmd), "cd %%s && cp -p %s bad && %s%%s", cert ? "c1.pem" : "k1.pem",
	         refused_rows[_i].how);
	sh(cmd, "");
	snprintf(bad, sizeof(bad), "%s/bad", dir);
	if (cert)
		snprintf(text, sizeof(text), "[identity www.example.test]\nkey = %s/k1.pem\n"
		                             "certificate = %s\n", dir, bad);
	else
		snprintf(text, sizeof(text), "[identity www.example.test]\n%s = %s\n", what, bad);
	cfg = conf(text);
	errno = 0;
	/* The test's timeout stands for a FIFO that hangs. */
	ck_assert_int_eq(cred_get(cfg, "www.example.test", &c), -1);
	ck_assert_int_eq(errno, EACCES);
	ck_assert_int_eq(starttls_errclass(), STARTTLS_ERR_ACCESS);
	snprintf(text, sizeof(text), "www.example.test: %s %s: ", what, bad);
	ck_assert_msg(strncmp(starttls_errstr(), text, strlen(text)) == 0 &&
	                      strstr(starttls_errstr(), refused_rows[_i].want) != NULL,
	              "got \"%s\", want \"%s...%s\"", starttls_errstr(), text,
	              refused_rows[_i].want);
	/* not cached as a success: refused again */
	ck_assert_int_eq(cred_get(cfg, "www.example.test", &c), -1);
	ck_assert_int_eq(errno, EACCES);
	release(cfg);
}
END_TEST

/* --- positive cases --- */

START_TEST(key_and_certificate)
{
	struct tp_config *cfg = conf(in_dir("[identity www.example.test]\nkey = %s/k1.pem\n"
	                                    "certificate = %s/c1.pem\nallow_users = 4242424 root\n"));
	gnutls_certificate_credentials_t c, again;
	gnutls_x509_crt_t crt;
	char dn[256];
	size_t len = sizeof(dn);

	if (geteuid() != 0)
		return; /* the ACL names root */
	ck_assert_int_eq(cred_get(cfg, "www.example.test", &c), 0);
	ck_assert_int_eq(cred_get(cfg, "WWW.example.test", &again), 0);
	ck_assert_ptr_eq(c, again); /* cached */
	crt = presented(c);
	ck_assert_int_eq(gnutls_x509_crt_get_dn(crt, dn, &len), 0);
	ck_assert_str_eq(dn, "CN=www.example.test");
	gnutls_x509_crt_deinit(crt);
	release(cfg);
}
END_TEST

static const struct {
	const char *name, *dn;
	int san_type;
} on_the_fly[] = {
        {"www.example.test", "DC=www,DC=example,DC=test", GNUTLS_SAN_DNSNAME},
        {"john@example.test", "UID=john,DC=example,DC=test", GNUTLS_SAN_RFC822NAME},
};

START_TEST(self_signed_on_the_fly)
{
	char text[512], san[256];
	size_t slen = sizeof(san);
	gnutls_datum_t dn;
	unsigned critical;
	struct tp_config *cfg;
	gnutls_certificate_credentials_t c;
	gnutls_x509_crt_t crt;

	snprintf(text, sizeof(text), "[identity %s]\nkey = %s/k2.pem\n",
	         on_the_fly[_i].name, dir);
	cfg = conf(text);
	ck_assert_msg(cred_get(cfg, on_the_fly[_i].name, &c) == 0, "%s", starttls_errstr());
	crt = presented(c);
	/* get_dn3 with no flags: RFC 4514 order, most specific RDN first */
	ck_assert_int_eq(gnutls_x509_crt_get_dn3(crt, &dn, 0), 0);
	ck_assert_str_eq((char *)dn.data, on_the_fly[_i].dn);
	gnutls_free(dn.data);
	ck_assert_int_eq(gnutls_x509_crt_get_subject_alt_name(crt, 0, san, &slen, &critical),
	                 on_the_fly[_i].san_type);
	ck_assert_str_eq(san, on_the_fly[_i].name);
	ck_assert_int_eq(gnutls_x509_crt_check_issuer(crt, crt), 1);
	gnutls_x509_crt_deinit(crt);
	release(cfg);
}
END_TEST

/* A handshake against the credentials proves the private key signs. */
static void *client(void *arg)
{
	gnutls_session_t s;
	gnutls_certificate_credentials_t any;
	long r;

	gnutls_certificate_allocate_credentials(&any);
	gnutls_init(&s, GNUTLS_CLIENT | GNUTLS_NO_SIGNAL);
	gnutls_set_default_priority(s);
	gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, any);
	gnutls_transport_set_int(s, (int)(long)arg);
	do
		r = gnutls_handshake(s);
	while (r < 0 && !gnutls_error_is_fatal((int)r));
	gnutls_bye(s, GNUTLS_SHUT_WR);
	gnutls_deinit(s);
	gnutls_certificate_free_credentials(any);
	return (void *)r;
}

static int handshake_with(gnutls_certificate_credentials_t c)
{
	int sv[2], r;
	pthread_t t;
	void *cr;
	gnutls_session_t s;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	pthread_create(&t, NULL, client, (void *)(long)sv[1]);
	gnutls_init(&s, GNUTLS_SERVER | GNUTLS_NO_SIGNAL);
	gnutls_set_default_priority(s);
	gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, c);
	gnutls_transport_set_int(s, sv[0]);
	do
		r = gnutls_handshake(s);
	while (r < 0 && !gnutls_error_is_fatal(r));
	gnutls_deinit(s);
	close(sv[0]);
	pthread_join(t, &cr);
	close(sv[1]);
	return r < 0 ? r : (int)(long)cr;
}

START_TEST(pkcs11_token)
{
	char text[1024], softhsm[512];
	struct tp_config *cfg;
	gnutls_certificate_credentials_t c;

	/* A SoftHSM token of our own, holding k1. */
	snprintf(softhsm, sizeof(softhsm), "%s/softhsm2.conf", dir);
	setenv("SOFTHSM2_CONF", softhsm, 1);
	sh("cd %s && mkdir tokens && printf 'directories.tokendir = %s/tokens\\n"
	   "objectstore.backend = file\\nlog.level = ERROR\\n' > softhsm2.conf && "
	   "softhsm2-util --init-token --free --label tlspool-test --pin 1234 --so-pin 5678 >/dev/null && "
	   "GNUTLS_PIN=1234 p11tool --login --write --load-privkey k1.pem --label www "
	   "'pkcs11:token=tlspool-test' >/dev/null 2>&1", dir);
	/* and its public half, as tokens usually hold it */
	sh("cd %s && certtool --load-privkey k1.pem --pubkey-info --outfile pub1.pem 2>/dev/null && "
	   "GNUTLS_PIN=1234 p11tool --login --write --load-pubkey pub1.pem --label www "
	   "'pkcs11:token=tlspool-test' >/dev/null 2>&1%s", "");
	snprintf(text, sizeof(text),
	         "[identity www.example.test]\n"
	         "key = pkcs11:token=tlspool-test;object=www;type=private?pin-value=1234\n"
	         "[identity nokey.example.test]\n"
	         "key = pkcs11:token=tlspool-test;object=nothere;type=private?pin-value=1234\n");
	cfg = conf(text);
	ck_assert_int_eq(cred_get(cfg, "nokey.example.test", &c), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_msg(cred_get(cfg, "www.example.test", &c) == 0, "%s", starttls_errstr());
	ck_assert_int_eq(handshake_with(c), 0);
	release(cfg);
}
END_TEST

START_TEST(file_key_handshake)
{
	struct tp_config *cfg = conf(in_dir("[identity www.example.test]\nkey = %s/k1.pem\n"));
	gnutls_certificate_credentials_t c;

	ck_assert_int_eq(cred_get(cfg, "www.example.test", &c), 0);
	ck_assert_int_eq(handshake_with(c), 0);
	release(cfg);
}
END_TEST

/* key = k1.pem in a configuration in DIR, read from another directory;
 * and a key reached through a symbolic link to a 0600 file. */
START_TEST(relative_key)
{
	char cwd[512];
	struct tp_config *cfg;
	gnutls_certificate_credentials_t c;

	sh("cd %s && ln -s k2.pem linked.pem%s", "");
	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
	ck_assert_int_eq(chdir("/tmp"), 0);
	cfg = conf("[identity www.example.test]\nkey = k1.pem\ncertificate = c1.pem\n"
	           "[identity mail.example.test]\nkey = linked.pem\n");
	ck_assert_int_eq(chdir("/"), 0);
	ck_assert_msg(cred_get(cfg, "www.example.test", &c) == 0, "%s", starttls_errstr());
	ck_assert_int_eq(handshake_with(c), 0);
	ck_assert_msg(cred_get(cfg, "mail.example.test", &c) == 0, "%s", starttls_errstr());
	ck_assert_int_eq(chdir(cwd), 0);
	release(cfg);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("cred");
	TCase *neg = tcase_create("negative");
	TCase *pos = tcase_create("positive");

	tcase_add_checked_fixture(neg, setup, teardown);
	tcase_add_checked_fixture(pos, setup, teardown);
	tcase_set_timeout(pos, 30);
	tcase_set_timeout(neg, 20);
	tcase_add_test(neg, no_identity);
	tcase_add_test(neg, bad_keys);
	tcase_add_test(neg, acl_denies_before_key);
	tcase_add_loop_test(neg, file_refused, 0, sizeof(refused_rows) / sizeof(refused_rows[0]));
	tcase_add_test(pos, key_and_certificate);
	tcase_add_loop_test(pos, self_signed_on_the_fly, 0,
	                    sizeof(on_the_fly) / sizeof(on_the_fly[0]));
	tcase_add_test(pos, file_key_handshake);
	tcase_add_test(pos, pkcs11_token);
	tcase_add_test(pos, relative_key);
	suite_add_tcase(s, neg);
	suite_add_tcase(s, pos);
	return s;
}

int main(void)
{
	return tp_run_suite(suite());
}
