/* tlspool.conf as libtlspool reads it: all sections, errors that name
 * file, line and key, identities and their ACL, reloading. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "cred.h"
#include "testutil.h"

static char path[64];

static const char *write_conf(const char *text)
{
	FILE *fp;
	int fd;

	strcpy(path, "/tmp/tlspool-cfg-XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	fp = fdopen(fd, "w");
	fputs(text, fp);
	fclose(fp);
	return path;
}

/* --- negative cases --- */

static const struct {
	const char *text, *want;
} bad[] = {
        {"[tls]\npriority_string = NORMAL\n", ":2: priority_string: unknown key in [tls]"},
        {"[tls]\nhandshake_timeout_ms = 0\n", ":2: handshake_timeout_ms: bad value \"0\""},
        {"[tls]\nrelay_threads = 65\n", ":2: relay_threads: bad value \"65\""},
        {"[validation]\npkix_fallback = maybe\n", ":2: pkix_fallback: bad value \"maybe\""},
        {"[cache]\nmax_ttl = -1\n", ":2: max_ttl: bad value \"-1\""},
        {"[authz]\nplugins = x.so\n", ":2: plugins: unknown key in [authz]"},
        {"[dns]\nupstream = nowhere\n", ":2: upstream: \"nowhere\" is not ADDRESS or ADDRESS@PORT"},
        {"[identity www..test]\nkey = /k\n", ":1: [identity www..test]: not a domain or user@domain identity"},
        {"[identity @example.test]\nkey = /k\n", ":1: [identity @example.test]: not a domain"},
        {"[identity www.example.test]\nkey = /k\nallow_users = root nosuchuser\n", ":3: allow_users: no such user or group \"nosuchuser\""},
        {"[identity www.example.test]\nallow_groups = nosuchgroup\n", ":2: allow_groups: no such user or group \"nosuchgroup\""},
        {"[identity www.example.test]\ncert = /c\n", ":2: cert: unknown key in [identity www.example.test]"},
        {"[identity www.example.test]\nkey =\n", ":2: key: bad value \"\""},
        {"[tsl]\npriority = NORMAL\n", ":1: [tsl]: unknown section"},
        {"priority = NORMAL\n", ":1: priority: key outside any section"},
        {"[tls\n", ":1: syntax error"},
};

START_TEST(bad_files)
{
	struct tp_config *cfg = (void *)1;
	char err[512], want[600];
	const char *p = write_conf(bad[_i].text);

	ck_assert_int_eq(tp_config_load(p, 0, &cfg, err, sizeof(err)), -1);
	unlink(p);
	ck_assert_ptr_null(cfg);
	ck_assert_int_eq(errno, EINVAL);
	snprintf(want, sizeof(want), "%s%s", p, bad[_i].want);
	ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "got \"%s\", want \"%s\"", err, want);
}
END_TEST

START_TEST(missing_files)
{
	struct tp_config *cfg;
	char err[256];

	ck_assert_int_eq(tp_config_load("/nonexistent.conf", 0, &cfg, err, sizeof(err)), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_str_eq(err, "/nonexistent.conf: No such file or directory");
	/* only the installed default may be missing: then the defaults */
	ck_assert_int_eq(tp_config_load("/nonexistent.conf", 1, &cfg, err, sizeof(err)), 0);
	ck_assert_str_eq(cfg->priority, "NORMAL");
	tp_config_release(cfg);
	setenv("TLSPOOL_CONFIG", "/nonexistent.conf", 1);
	ck_assert_ptr_null(tp_config_acquire(err, sizeof(err)));
	unsetenv("TLSPOOL_CONFIG");
}
END_TEST

START_TEST(identity_syntax)
{
	static const char *const badids[] = {"", "@", "john@", "@a.test", "a b@c.test",
	                                     "x@bad..test", "-a.test", NULL};
	for (int i = 0; badids[i]; i++)
		ck_assert_msg(tp_check_identity(badids[i]) == -1, "%s", badids[i]);
	ck_assert_int_eq(tp_check_identity(NULL), -1);
	ck_assert_int_eq(tp_check_identity("www.example.test"), 0);
	ck_assert_int_eq(tp_check_identity("john@example.test"), 0);
	ck_assert_int_eq(tp_check_identity("john.doe+tag@example.test"), 0);
}
END_TEST

START_TEST(acl_refuses)
{
	struct tp_identity id;

	memset(&id, 0, sizeof(id));
	strcpy(id.name, "www.example.test");
	id.acl = 1;
	id.uids[id.nuids++] = geteuid() + 1;
	id.gids[id.ngids++] = 4242424;
	errno = 0;
	ck_assert_int_eq(tp_acl_check(&id), -1);
	ck_assert_int_eq(errno, EACCES);
	ck_assert_ptr_nonnull(strstr(starttls_errstr(), "does not admit uid"));
	/* an ACL with no entries admits nobody */
	id.nuids = id.ngids = 0;
	ck_assert_int_eq(tp_acl_check(&id), -1);
}
END_TEST

/* --- positive cases --- */

START_TEST(full_file)
{
	struct tp_config *cfg;
	const struct tp_identity *id;
	char err[256];
	const char *p = write_conf(
	        "[dns]\nupstream = 127.0.0.1@5353\ntimeout_ms = 900\n"
	        "[tls]\npriority = SECURE256\nhandshake_timeout_ms = 2500\nrelay_threads = 2\n"
	        "[validation]\npkix_fallback = yes\n"
	        "[cache]\npath =\nmax_ttl = 60\n"
	        "[authz]\nplugin =\n"
	        "[identity www.example.test]\ncertificate = /c.pem\nkey = pkcs11:token=t;object=www\n"
	        "allow_users = root 1234\nallow_groups = 0\n"
	        "[identity john@example.test]\nkey = /j.pem\n");

	ck_assert_msg(tp_config_load(p, 0, &cfg, err, sizeof(err)) == 0, "%s", err);
	unlink(p);
	ck_assert_str_eq(cfg->priority, "SECURE256");
	ck_assert_uint_eq(cfg->handshake_timeout_ms, 2500);
	ck_assert_uint_eq(cfg->relay_threads, 2);
	ck_assert_int_eq(cfg->pkix_fallback, 1);
	ck_assert_uint_eq(cfg->max_ttl, 60);
	ck_assert_str_eq(cfg->cache_path, "");
	ck_assert_uint_eq(cfg->nids, 2);
	id = tp_config_identity(cfg, "WWW.Example.test");
	ck_assert_ptr_nonnull(id);
	ck_assert_str_eq(id->key, "pkcs11:token=t;object=www");
	ck_assert_int_eq(id->acl, 1);
	ck_assert_uint_eq(id->nuids, 2);
	ck_assert_uint_eq(id->uids[0], 0);
	ck_assert_uint_eq(id->uids[1], 1234);
	ck_assert_uint_eq(id->ngids, 1);
	ck_assert_int_eq(tp_acl_check(id), geteuid() == 0 ? 0 : -1);
	id = tp_config_identity(cfg, "john@example.test");
	ck_assert_int_eq(id->acl, 0);
	ck_assert_int_eq(tp_acl_check(id), 0); /* no ACL: open */
	ck_assert_ptr_null(tp_config_identity(cfg, "mail.example.test"));
	tp_config_release(cfg);
}
END_TEST

START_TEST(reload_on_change)
{
	struct tp_config *a, *b, *c;
	char err[256], p[64];

	strcpy(p, write_conf("[tls]\npriority = NORMAL\n"));
	setenv("TLSPOOL_CONFIG", p, 1);
	a = tp_config_acquire(err, sizeof(err));
	ck_assert_ptr_nonnull(a);
	b = tp_config_acquire(err, sizeof(err));
	ck_assert_ptr_eq(a, b); /* unchanged: shared */
	tp_config_release(b);
	sleep(1); /* a new mtime, even on coarse clocks */
	write_conf("[tls]\npriority = SECURE128\n");
	rename(path, p);
	c = tp_config_acquire(err, sizeof(err));
	ck_assert_ptr_nonnull(c);
	ck_assert_ptr_ne(a, c);
	ck_assert_str_eq(c->priority, "SECURE128");
	ck_assert_str_eq(a->priority, "NORMAL"); /* still valid while held */
	tp_config_release(a);
	tp_config_release(c);
	unlink(p);
	unsetenv("TLSPOOL_CONFIG");
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("config");
	TCase *neg = tcase_create("negative");
	TCase *pos = tcase_create("positive");

	tcase_add_loop_test(neg, bad_files, 0, sizeof(bad) / sizeof(bad[0]));
	tcase_add_test(neg, missing_files);
	tcase_add_test(neg, identity_syntax);
	tcase_add_test(neg, acl_refuses);
	tcase_add_test(pos, full_file);
	tcase_add_test(pos, reload_on_change);
	suite_add_tcase(s, neg);
	suite_add_tcase(s, pos);
	return s;
}

int main(void)
{
	return tp_run_suite(suite());
}
