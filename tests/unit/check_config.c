/* tlspool.conf as libtlspool reads it: all sections, errors that name
 * file, line and key, identities and their ACL, reloading. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "runtime.h"
#include "cred.h"
#include "internal.h"
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
        {"[validation]\ndane_ee_name_checks = on\n", ":2: dane_ee_name_checks: bad value \"on\""},
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
        {"[dsn]\nresolution = stub\n", ":1: [dsn]: unknown section"},
        {"priority = NORMAL\n", ":1: priority: key outside any section"},
        {"[tls\n", ":1: syntax error"},
        /* sections are checked on their own line, also when empty */
        {"[dns]\n[tsl]\n[tls]\npriority = NORMAL\n", ":2: [tsl]: unknown section"},
        {"[tls]\npriority = NORMAL\n[identity ]\n", ":3: [identity ]: unknown section"},
        {"[identity]\n", ":1: [identity]: unknown section"},
        {"[ dns ]\n", ":1: [ dns ]: unknown section"},
        {"[identity www..test]\n", ":1: [identity www..test]: not a domain"},
        /* two sections of one identity: case and a final dot do not matter */
        {"[identity www.example.test]\nkey = /k\n\n[identity WWW.Example.Test.]\nkey = /j\n",
         ":4: [identity WWW.Example.Test.]: the same identity as [identity www.example.test] on line 1"},
        {"[identity www.example.test.]\n[identity www.example.test]\n",
         ":2: [identity www.example.test]: the same identity as [identity www.example.test.] on line 1"},
        {"[identity john@example.test]\nkey = /k\n[identity John@EXAMPLE.test.]\n",
         ":3: [identity John@EXAMPLE.test.]: the same identity as [identity john@example.test] on line 1"},
        /* the first error wins, whether a section's or a key's */
        {"[tls]\nrelay_threads = 0\n[tsl]\n", ":2: relay_threads: bad value \"0\""},
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
	tp_config_free(cfg);
	setenv("TLSPOOL_CONFIG", "/nonexistent.conf", 1);
	ck_assert_ptr_null(tp_runtime_acquire(err, sizeof(err)));
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
	ck_assert_int_eq(tp_acl_check(&id, NULL), -1);
	ck_assert_int_eq(errno, EACCES);
	ck_assert_ptr_nonnull(strstr(starttls_errstr(), "does not admit uid"));
	/* an ACL with no entries admits nobody */
	id.nuids = id.ngids = 0;
	ck_assert_int_eq(tp_acl_check(&id, NULL), -1);
}
END_TEST

/* A file with a NUL byte: inih would stop there as if the file ended. */
START_TEST(nul_byte)
{
	static const char text[] = "[tls]\npriority = NORMAL\nhandshake_timeout_ms = 1\0000\n"
	                           "[tsl]\n";
	struct tp_config *cfg = (void *)1;
	char err[512], want[600];
	int fd;

	strcpy(path, "/tmp/tlspool-cfg-XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_eq(write(fd, text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
	close(fd);
	ck_assert_int_eq(tp_config_load(path, 0, &cfg, err, sizeof(err)), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_null(cfg);
	snprintf(want, sizeof(want), "%s:3: a NUL byte in the line", path);
	ck_assert_str_eq(err, want);
	/* the DNS reader of the same file says the same */
	ck_assert_ptr_null(tlspool_dns_config_load(path, err, sizeof(err)));
	ck_assert_str_eq(err, want);
	unlink(path);
}
END_TEST

START_TEST(too_many_identities)
{
	static char text[257 * 32];
	struct tp_config *cfg = (void *)1;
	char err[512], want[600];
	size_t n = 0;
	const char *p;

	for (int i = 0; i < 257; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "[identity a%d.test]\n", i);
	p = write_conf(text);
	ck_assert_int_eq(tp_config_load(p, 0, &cfg, err, sizeof(err)), -1);
	unlink(p);
	snprintf(want, sizeof(want), "%s:257: [identity a256.test]: more than 256 identities", p);
	ck_assert_str_eq(err, want);
}
END_TEST

/* The configuration file itself: what the file-trust module refuses. */
static const struct {
	const char *how, *want;
} bad_config_files[] = {
        {"dir", "mode 0755: is a directory, not a regular file"},
        {"fifo", "mode 0644: is a FIFO, not a regular file"},
        {"zero", "is a character device, not a regular file"},
        {"big", "mode 0644: 1048577 octets, more than the limit of 1 MiB"},
        {"0666", "owner root (uid 0), mode 0666: writable by group or other, which a "
                 "configuration file must not be"},
        {"0620", "mode 0620: writable by group or other"},
        {"nobody", "owner nobody (uid 65534), mode 0644: not owned by uid 0"},
};

START_TEST(config_file_refused)
{
	char d[] = "/tmp/tlspool-cfgf-XXXXXX", p[64], err[512], cmd[128];
	const char *how = bad_config_files[_i].how;
	struct tp_config *cfg = (void *)1;
	FILE *fp;

	ck_assert_ptr_nonnull(mkdtemp(d));
	snprintf(p, sizeof(p), "%s/tlspool.conf", d);
	if (strcmp(how, "dir") == 0) {
		ck_assert_int_eq(mkdir(p, 0755), 0);
	} else if (strcmp(how, "fifo") == 0) {
		ck_assert_int_eq(mkfifo(p, 0644), 0);
	} else if (strcmp(how, "zero") == 0) {
		ck_assert_int_eq(symlink("/dev/zero", p), 0);
	} else {
		fp = fopen(p, "w");
		fputs("[tls]\npriority = NORMAL\n", fp);
		if (strcmp(how, "big") == 0)
			for (int i = 0; i < 1024 * 1024 / 8; i++)
				fputs(";;;;;;;\n", fp);
		fclose(fp);
		if (strcmp(how, "big") == 0)
			ck_assert_int_eq(truncate(p, 1024 * 1024 + 1), 0);
		chmod(p, strcmp(how, "0666") == 0 ? 0666 : strcmp(how, "0620") == 0 ? 0620 : 0644);
		if (strcmp(how, "nobody") == 0)
			ck_assert_int_eq(chown(p, 65534, 65534), 0);
	}
	/* The test's timeout stands for a FIFO that hangs. */
	ck_assert_int_eq(tp_config_load(p, 0, &cfg, err, sizeof(err)), -1);
	ck_assert_int_eq(errno, EACCES);
	ck_assert_ptr_null(cfg);
	ck_assert_msg(strncmp(err, p, strlen(p)) == 0 && strstr(err, bad_config_files[_i].want),
	              "%s: %s", how, err);
	/* even where a missing file would do */
	ck_assert_int_eq(tp_config_load(p, 1, &cfg, err, sizeof(err)), -1);
	/* and through the shared configuration */
	setenv("TLSPOOL_CONFIG", p, 1);
	ck_assert_ptr_null(tp_runtime_acquire(err, sizeof(err)));
	ck_assert_msg(strstr(err, bad_config_files[_i].want), "%s: %s", how, err);
	ck_assert_ptr_null(tlspool_dns_config_load(NULL, err, sizeof(err)));
	ck_assert_int_eq(errno, EACCES);
	unsetenv("TLSPOOL_CONFIG");
	snprintf(cmd, sizeof(cmd), "rm -rf %s", d);
	ck_assert_int_eq(system(cmd), 0);
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
	        "[validation]\npkix_fallback = yes\ndane_ee_name_checks = yes\n"
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
	ck_assert_int_eq(cfg->dane_ee_name_checks, 1);
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
	ck_assert_int_eq(tp_acl_check(id, NULL), geteuid() == 0 ? 0 : -1);
	id = tp_config_identity(cfg, "john@example.test");
	ck_assert_int_eq(id->acl, 0);
	ck_assert_int_eq(tp_acl_check(id, NULL), 0); /* no ACL: open */
	ck_assert_ptr_null(tp_config_identity(cfg, "mail.example.test"));
	tp_config_free(cfg);
}
END_TEST

START_TEST(identity_final_dot)
{
	struct tp_config *cfg;
	char err[256];
	const char *p = write_conf("[identity www.example.test.]\nkey = /k\n"
	                           "[identity john@example.test]\nkey = /j\n");

	ck_assert_msg(tp_config_load(p, 0, &cfg, err, sizeof(err)) == 0, "%s", err);
	unlink(p);
	ck_assert_uint_eq(cfg->nids, 2);
	ck_assert_str_eq(cfg->ids[0].name, "www.example.test");
	for (const char *const *n = (const char *const[]){"www.example.test", "WWW.example.TEST.",
	                                                  "www.example.test.", NULL};
	     *n != NULL; n++)
		ck_assert_ptr_eq(tp_config_identity(cfg, *n), &cfg->ids[0]);
	ck_assert_ptr_eq(tp_config_identity(cfg, "John@Example.Test."), &cfg->ids[1]);
	ck_assert_ptr_null(tp_config_identity(cfg, "www.example.test.."));
	ck_assert_ptr_null(tp_config_identity(cfg, "ww.example.test"));
	ck_assert_ptr_null(tp_config_identity(cfg, ""));
	tp_config_free(cfg);
}
END_TEST

/* Relative paths are named from the file's directory, whatever the
 * current directory. */
START_TEST(relative_paths)
{
	char d[] = "/tmp/tlspool-cfgr-XXXXXX", p[128], want[256], cwd[512], cmd[128];
	struct tp_config *cfg;
	tlspool_dns_config *dcfg;
	const struct tp_identity *id;
	char err[256];
	FILE *fp;

	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
	ck_assert_ptr_nonnull(mkdtemp(d));
	snprintf(p, sizeof(p), "%s/sub", d);
	ck_assert_int_eq(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/sub/tlspool.conf", d);
	fp = fopen(p, "w");
	fputs("[dns]\ntrust_anchor = root.key\n"
	      "[cache]\npath = cache/tlspool.mdb\n"
	      "[authz]\nplugin = ../lib/rules.so\nconfig = rules\n"
	      "[identity www.example.test]\nkey = k.pem\ncertificate = /abs/c.pem\n"
	      "[identity mx.example.test]\nkey = pkcs11:token=t;object=mx\n"
	      "[identity john@example.test]\nopenpgp_key = keys/john.sec\n",
	      fp);
	fclose(fp);
	ck_assert_int_eq(chdir("/"), 0);
	ck_assert_msg(tp_config_load(p, 0, &cfg, err, sizeof(err)) == 0, "%s", err);
	snprintf(want, sizeof(want), "%s/sub/cache/tlspool.mdb", d);
	ck_assert_str_eq(cfg->cache_path, want);
	snprintf(want, sizeof(want), "%s/sub/../lib/rules.so", d);
	ck_assert_str_eq(cfg->authz_plugin, want);
	snprintf(want, sizeof(want), "%s/sub/rules", d);
	ck_assert_str_eq(cfg->authz_config, want);
	snprintf(want, sizeof(want), "%s/sub/root.key", d);
	ck_assert_str_eq(cfg->dns->trust_anchor, want);
	id = tp_config_identity(cfg, "www.example.test");
	snprintf(want, sizeof(want), "%s/sub/k.pem", d);
	ck_assert_str_eq(id->key, want);
	ck_assert_str_eq(id->certificate, "/abs/c.pem");
	ck_assert_str_eq(tp_config_identity(cfg, "mx.example.test")->key,
	                 "pkcs11:token=t;object=mx");
	snprintf(want, sizeof(want), "%s/sub/keys/john.sec", d);
	ck_assert_str_eq(tp_config_identity(cfg, "john@example.test")->openpgp_key, want);
	tp_config_free(cfg);
	/* the DNS reader resolves the trust anchor the same way */
	dcfg = tlspool_dns_config_load(p, err, sizeof(err));
	ck_assert_msg(dcfg != NULL, "%s", err);
	snprintf(want, sizeof(want), "%s/sub/root.key", d);
	ck_assert_str_eq(dcfg->trust_anchor, want);
	tlspool_dns_config_free(dcfg);
	/* a relative configuration path: made absolute when loaded, so that a
	 * later chdir() does not move the key */
	ck_assert_int_eq(chdir(d), 0);
	ck_assert_msg(tp_config_load("sub/tlspool.conf", 0, &cfg, err, sizeof(err)) == 0, "%s",
	              err);
	ck_assert_int_eq(chdir("/"), 0);
	snprintf(want, sizeof(want), "%s/sub/k.pem", d);
	ck_assert_str_eq(tp_config_identity(cfg, "www.example.test")->key, want);
	tp_config_free(cfg);
	ck_assert_int_eq(chdir(cwd), 0);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", d);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(reload_on_change)
{
	struct tp_runtime *a, *b, *c;
	char err[256], p[64];

	strcpy(p, write_conf("[tls]\npriority = NORMAL\n"));
	setenv("TLSPOOL_CONFIG", p, 1);
	a = tp_runtime_acquire(err, sizeof(err));
	ck_assert_ptr_nonnull(a);
	b = tp_runtime_acquire(err, sizeof(err));
	ck_assert_ptr_eq(a, b); /* unchanged: shared */
	tp_runtime_release(b);
	sleep(1); /* a new mtime, even on coarse clocks */
	write_conf("[tls]\npriority = SECURE128\n");
	rename(path, p);
	c = tp_runtime_acquire(err, sizeof(err));
	ck_assert_ptr_nonnull(c);
	ck_assert_ptr_ne(a, c);
	ck_assert_str_eq(c->cfg->priority, "SECURE128");
	ck_assert_str_eq(a->cfg->priority, "NORMAL"); /* valid while held */
	tp_runtime_release(a);
	tp_runtime_release(c);
	unlink(p);
	unsetenv("TLSPOOL_CONFIG");
}
END_TEST

/* --- overrides (tp_config_load_with(), starttls_ctx_new_with(3)) --- */

static const struct {
	const char *ov, *want;
} bad_overrides[] = {
        {"nodot=1", "override \"nodot=1\": not SECTION.KEY=VALUE"},
        {"tls.priority", "not SECTION.KEY=VALUE"},
        {".priority=x", "not SECTION.KEY=VALUE"},
        {"tls.=x", "not SECTION.KEY=VALUE"},
        {"tls.nokey=1", "override \"tls.nokey=1\": nokey: unknown key in [tls]"},
        {"tsl.priority=x", "[tsl]: unknown section"},
        {"tls.handshake_timeout_ms=0", "handshake_timeout_ms: bad value \"0\""},
        {"tls.alpn=,,", "alpn: bad value \",,\""},
        {"tls.alpn=a,b,c,d,e,f,g,h,i", "alpn: bad value"},
        {"tls.priority=", "priority: bad value \"\""},
        {"identity bad name.key=/k", "not a domain or user@domain identity"},
        {"dns.upstream=nowhere", "upstream: \"nowhere\" is not ADDRESS"},
        {"dns.timeout_ms=600001", "timeout_ms"},
};

START_TEST(override_refused)
{
	const char *ov[] = {"tls.priority=NORMAL", bad_overrides[_i].ov, NULL};
	struct tp_config *cfg = NULL;
	char err[512];
	const char *p = write_conf("[tls]\npriority = NORMAL\n");

	ck_assert_int_eq(tp_config_load_with(p, 0, ov, &cfg, err, sizeof(err)), -1);
	unlink(p);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_null(cfg);
	ck_assert_msg(strstr(err, bad_overrides[_i].want) != NULL, "%s: got \"%s\"",
	              bad_overrides[_i].ov, err);
}
END_TEST

/* An overridden key loses the file's lines (a repeatable one too); an
 * identity's name keeps its dots; a relative path is the caller's. */
START_TEST(overrides_apply)
{
	const char *ov[] = {"dns.upstream=127.0.0.9@5353",
	                    "identity WWW.example.test..key=rel.key",
	                    "tls.alpn=h2,http/1.1",
	                    "dns.trust_anchor=/abs/root.key",
	                    NULL};
	const struct tp_identity *id;
	struct tp_config *cfg;
	char err[512], cwd[512], want[700];
	const char *p = write_conf("[dns]\nupstream = 127.0.0.1@53\nupstream = 127.0.0.2\n"
	                           "[tls]\npriority = NORMAL:-VERS-TLS1.3\n"
	                           "[identity www.example.test]\nkey = /file.key\n"
	                           "certificate = /file.pem\n");

	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
	ck_assert_msg(tp_config_load_with(p, 0, ov, &cfg, err, sizeof(err)) == 0, "%s", err);
	unlink(p);
	ck_assert_uint_eq(cfg->dns->nupstream, 1);
	ck_assert_uint_eq(cfg->dns->upstream[0].port, 5353);
	ck_assert_str_eq(cfg->dns->trust_anchor, "/abs/root.key");
	ck_assert_str_eq(cfg->priority, "NORMAL:-VERS-TLS1.3");
	ck_assert_str_eq(cfg->alpn, "h2,http/1.1");
	ck_assert_uint_eq(cfg->nids, 1);
	id = tp_config_identity(cfg, "www.example.test");
	ck_assert_ptr_nonnull(id);
	snprintf(want, sizeof(want), "%s/rel.key", cwd);
	ck_assert_str_eq(id->key, want);
	ck_assert_str_eq(id->certificate, "/file.pem");
	ck_assert_ptr_null(cfg->overrides);
	tp_config_free(cfg);
	/* no file where one may be missing: the defaults, then the overrides */
	ck_assert_msg(tp_config_load_with("/nonexistent/tlspool.conf", 1, ov, &cfg, err,
	                                  sizeof(err)) == 0,
	              "%s", err);
	ck_assert_uint_eq(cfg->dns->nupstream, 1);
	ck_assert_str_eq(cfg->priority, "NORMAL");
	ck_assert_int_eq(cfg->cache_backend, TP_CACHE_MEMORY);
	tp_config_free(cfg);
	/* ... and where it must be there, an error */
	ck_assert_int_eq(tp_config_load_with("/nonexistent/tlspool.conf", 0, ov, &cfg, err,
	                                     sizeof(err)),
	                 -1);
	ck_assert_int_eq(errno, ENOENT);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("config");
	TCase *neg = tcase_create("negative");
	TCase *pos = tcase_create("positive");

	tcase_set_timeout(neg, 20);

	tcase_add_loop_test(neg, bad_files, 0, sizeof(bad) / sizeof(bad[0]));
	tcase_add_test(neg, missing_files);
	tcase_add_test(neg, nul_byte);
	tcase_add_test(neg, too_many_identities);
	tcase_add_loop_test(neg, config_file_refused, 0,
	                    sizeof(bad_config_files) / sizeof(bad_config_files[0]));
	tcase_add_test(neg, identity_syntax);
	tcase_add_test(neg, acl_refuses);
	tcase_add_loop_test(neg, override_refused, 0,
	                    sizeof(bad_overrides) / sizeof(bad_overrides[0]));
	tcase_add_test(pos, overrides_apply);
	tcase_add_test(pos, full_file);
	tcase_add_test(pos, identity_final_dot);
	tcase_add_test(pos, relative_paths);
	tcase_add_test(pos, reload_on_change);
	suite_add_tcase(s, neg);
	suite_add_tcase(s, pos);
	return s;
}

int main(void)
{
	return tp_run_suite(suite());
}
