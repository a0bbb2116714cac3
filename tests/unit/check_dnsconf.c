/* The [dns] section of tlspool.conf: values, errors naming file, line
 * and key, and the rules for a missing file. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "testutil.h"

static char path[64];

static const char *write_conf(const char *text)
{
	FILE *fp;
	int fd;

	strcpy(path, "/tmp/tlspool-conf-XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	fp = fdopen(fd, "w");
	ck_assert_ptr_nonnull(fp);
	fputs(text, fp);
	fclose(fp);
	return path;
}

/* --- negative cases --- */

static const struct {
	const char *text;
	const char *want; /* expected in the message, after "FILE:" */
} bad_files[] = {
        {"[dns]\nresolution = iterative\n", ":2: resolution: \"iterative\" is not stub or recursive"},
        {"[dns]\n\nupstream = 127.0.0.1@0\n", ":3: upstream:"},
        {"[dns]\nupstream = 127.0.0.1@65536\n", ":2: upstream:"},
        {"[dns]\nupstream = 127.0.0.1@\n", ":2: upstream:"},
        {"[dns]\nupstream = 127.0.0.1@-53\n", ":2: upstream:"},
        {"[dns]\nupstream = localhost\n", ":2: upstream:"},
        {"[dns]\nupstream = 300.1.1.1\n", ":2: upstream:"},
        {"[dns]\ntimeout_ms = 0\n", ":2: timeout_ms:"},
        {"[dns]\ntimeout_ms = 5s\n", ":2: timeout_ms:"},
        {"[dns]\ntimeout_ms = 99999999999999999999\n", ":2: timeout_ms:"},
        {"[dns]\ntrust_anchor =\n", ":2: trust_anchor:"},
        {"[dns]\nresolver = stub\n", ":2: resolver: unknown key in [dns]"},
        {"resolution = stub\n", ":1: resolution: key outside any section"},
        {"[dns]\nthis line has no equals sign\n", ":2: syntax error"},
        {"[dns\nresolution = stub\n", ":1: syntax error"},
        /* what INI readers would take silently: a continuation line, a
         * cut line */
        {"[dns]\nresolution = stub\n  recursive\n", ":3: indented line"},
        {"[dns]\n\ttimeout_ms = 5\n", ":2: indented line"},
        {"[dns]\ntrust_anchor = /xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.key\n",
         ":2: line too long"},
        {"[dns]\nupstream=1.1.1.1\nupstream=1.1.1.2\nupstream=1.1.1.3\n"
         "upstream=1.1.1.4\nupstream=1.1.1.5\nupstream=1.1.1.6\n"
         "upstream=1.1.1.7\nupstream=1.1.1.8\nupstream=1.1.1.9\n",
         ":10: upstream: more than 8 upstreams"},
};

START_TEST(bad_file)
{
	char err[512], want[600];
	const char *p = write_conf(bad_files[_i].text);
	tlspool_dns_config *cfg;

	errno = 0;
	cfg = tlspool_dns_config_load(p, err, sizeof(err));
	unlink(p);
	ck_assert_ptr_null(cfg);
	ck_assert_int_eq(errno, EINVAL);
	snprintf(want, sizeof(want), "%s%s", p, bad_files[_i].want);
	ck_assert_msg(strncmp(err, want, strlen(want)) == 0,
	              "got \"%s\", want \"%s...\"", err, want);
}
END_TEST

START_TEST(explicit_missing_file)
{
	char err[256];

	errno = 0;
	ck_assert_ptr_null(tlspool_dns_config_load("/nonexistent/tlspool.conf", err, sizeof(err)));
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_str_eq(err, "/nonexistent/tlspool.conf: No such file or directory");
}
END_TEST

START_TEST(env_missing_file)
{
	char err[256];

	/* $TLSPOOL_CONFIG names a file on purpose: it must exist. */
	setenv("TLSPOOL_CONFIG", "/nonexistent/env.conf", 1);
	ck_assert_ptr_null(tlspool_dns_config_load(NULL, err, sizeof(err)));
	unsetenv("TLSPOOL_CONFIG");
	ck_assert_ptr_nonnull(strstr(err, "/nonexistent/env.conf"));
}
END_TEST

START_TEST(set_rejects)
{
	tlspool_dns_config *cfg = tlspool_dns_config_new();
	char err[128];

	ck_assert_int_eq(tlspool_dns_config_set(cfg, "upstream", "::1@x", err, sizeof(err)), -1);
	ck_assert_int_eq(tlspool_dns_config_set(cfg, "upstream", "[::1]@53", err, sizeof(err)), -1);
	ck_assert_int_eq(tlspool_dns_config_set(NULL, "upstream", "::1", err, sizeof(err)), -1);
	ck_assert_int_eq(tlspool_dns_config_set(cfg, NULL, "x", NULL, 0), -1);
	ck_assert_uint_eq(cfg->nupstream, 0);
	tlspool_dns_config_free(cfg);
	tlspool_dns_config_free(NULL);
}
END_TEST

/* --- positive cases --- */

START_TEST(good_file)
{
	char err[256];
	const char *p = write_conf(
	        "; the test hierarchy\n"
	        "[dns]\n"
	        "  ; an indented comment is fine\n"
	        "resolution = stub   ; inline comment\n"
	        "upstream = 127.0.0.1@53530\n"
	        "upstream = ::1\n"
	        "trust_anchor = /tmp/root.key\n"
	        "timeout_ms = 750\n"
	        "[tls]\npriority = NORMAL\n"
	        "[identity www.example.test]\nkey = /etc/tlspool/www.key\n"
	        /* another library's section: not ours to judge */
	        "[ldap]\nserver = ldap.example.test\n");
	tlspool_dns_config *cfg = tlspool_dns_config_load(p, err, sizeof(err));

	unlink(p);
	ck_assert_msg(cfg != NULL, "%s", err);
	ck_assert_int_eq(cfg->recursive, 0);
	ck_assert_uint_eq(cfg->nupstream, 2);
	ck_assert_int_eq(cfg->upstream[0].family, AF_INET);
	ck_assert_uint_eq(cfg->upstream[0].port, 53530);
	ck_assert_mem_eq(cfg->upstream[0].addr, "\x7f\0\0\x01", 4);
	ck_assert_int_eq(cfg->upstream[1].family, AF_INET6);
	ck_assert_uint_eq(cfg->upstream[1].port, 53);
	ck_assert_str_eq(cfg->trust_anchor, "/tmp/root.key");
	ck_assert_uint_eq(cfg->timeout_ms, 750);
	tlspool_dns_config_free(cfg);
}
END_TEST

START_TEST(defaults)
{
	tlspool_dns_config *cfg = tlspool_dns_config_new();

	ck_assert_int_eq(cfg->recursive, 0);
	ck_assert_uint_eq(cfg->nupstream, 0);
	ck_assert_str_eq(cfg->trust_anchor, "/usr/share/dns/root.key");
	ck_assert_uint_eq(cfg->timeout_ms, 5000);
	ck_assert_int_eq(tlspool_dns_config_set(cfg, "resolution", "recursive", NULL, 0), 0);
	ck_assert_int_eq(cfg->recursive, 1);
	tlspool_dns_config_free(cfg);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("dnsconf");
	TCase *neg = tcase_create("negative");
	TCase *pos = tcase_create("positive");

	tcase_add_loop_test(neg, bad_file, 0,
	                    sizeof(bad_files) / sizeof(bad_files[0]));
	tcase_add_test(neg, explicit_missing_file);
	tcase_add_test(neg, env_missing_file);
	tcase_add_test(neg, set_rejects);
	tcase_add_test(pos, good_file);
	tcase_add_test(pos, defaults);
	suite_add_tcase(s, neg);
	suite_add_tcase(s, pos);
	return s;
}

int main(void)
{
	return tp_run_suite(suite());
}
