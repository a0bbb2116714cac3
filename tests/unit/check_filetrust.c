/*
 * The file-trust module (src/validate/filetrust.c) and its users that
 * have no test program of their own: every kind of file (configuration,
 * certificate or trust anchor, private key, plugin, cache) against every
 * way a file can be wrong, a refusal naming the file and its owner and
 * mode; relative paths; the trust anchor handed to getdns; the
 * authorization plugin refused with EPERM.
 *
 * The tests run as root (tests/run): files of another user are made with
 * chown to 65534 (nobody), and one test takes the effective uid of nobody
 * to see the rules from an ordinary user's side.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "authz.h"
#include "config.h"
#include "filetrust.h"
#include "internal.h"
#include "testutil.h"

#define NOBODY 65534

static char base[] = "/tmp/tlspool-ft-XXXXXX";
static char dir[256];

/* A fresh directory (mode 0700) for one test. */
static void setup(void)
{
	/* the fixture runs in each test's child: mkdtemp keeps them apart */
	snprintf(dir, sizeof(dir), "%s/tXXXXXX", base);
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static const char *at(const char *name)
{
	static char p[4][512];
	static int i;

	i = (i + 1) % 4;
	snprintf(p[i], sizeof(p[i]), "%s/%s", dir, name);
	return p[i];
}

/* A regular file of size octets ('x'), mode and owner as given. */
static void make_file(const char *path, size_t size, mode_t mode, uid_t uid)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	char buf[4096];

	ck_assert_int_ge(fd, 0);
	memset(buf, 'x', sizeof(buf));
	for (size_t n = 0; n < size;) {
		size_t k = size - n < sizeof(buf) ? size - n : sizeof(buf);

		ck_assert_int_eq(write(fd, buf, k), (ssize_t)k);
		n += k;
	}
	ck_assert_int_eq(fchown(fd, uid, uid), 0);
	ck_assert_int_eq(fchmod(fd, mode), 0);
	close(fd);
}

static void sh(const char *cmd)
{
	ck_assert_msg(system(cmd) == 0, "failed: %s", cmd);
}

/* --- every kind against every wrong file ---------------------------------
 */

enum { K_CONFIG, K_PUBLIC, K_SECRET, K_PLUGIN, K_CACHE, NKINDS };

static const char *const kind_label[] = {"config", "public", "secret",
                                         "plugin", "cache"};

enum how {
	H_GOOD,      /* 0600, ours */
	H_DIR,       /* a directory */
	H_FIFO,      /* a FIFO: must not hang */
	H_ZERO,      /* /dev/zero: a link to it, a device node for the cache */
	H_BIG,       /* 1 MiB + 1 */
	H_EXACT,     /* exactly 1 MiB */
	H_LINK,      /* a symbolic link to a good file */
	H_M644,      /* mode 0644 */
	H_M660,      /* mode 0660 */
	H_M666,      /* mode 0666 */
	H_M620,      /* group-writable */
	H_NOBODY,    /* owned by uid 65534, mode 0600 */
	H_WWDIR,     /* 0600 in a world-writable directory, no sticky bit */
	H_STICKY,    /* 0600, ours, in a world-writable sticky directory */
	H_STICKY_NB, /* 0600 of nobody in a sticky directory */
	NHOWS
};

static const char *const how_label[] = {
        "good", "dir",  "fifo", "zero", "big",  "exact", "link",      "0644",
        "0660", "0666", "0620", "nobody", "wwdir", "sticky", "sticky-nobody"};

/* What to expect: NULL for success, else text in the refusal (after the
 * file's name). */
static const char *expect(int kind, enum how how)
{
	int sec = kind == K_SECRET, reads = kind != K_PLUGIN && kind != K_CACHE;

	switch (how) {
	case H_GOOD:
	case H_EXACT:
	case H_STICKY:
		return NULL;
	case H_DIR:
		return "mode 0700: is a directory, not a regular file";
	case H_FIFO:
		return "mode 0600: is a FIFO, not a regular file";
	case H_ZERO:
		return kind == K_CACHE ? "is a character device, not a regular file"
		                       : "mode 0666: is a character device, not a regular file";
	case H_BIG:
		return reads ? "owner root (uid 0), mode 0600: 1048577 octets, more than the limit "
		               "of 1 MiB"
		             : NULL;
	case H_LINK:
		return kind == K_CACHE ? "is a symbolic link, never followed for the cache" : NULL;
	case H_M644:
		return sec ? "owner root (uid 0), mode 0644: readable by group or other; a private "
		             "key must be 0600 or stricter"
		           : NULL;
	case H_M660:
		return sec ? "mode 0660: readable by group or other; a private key must be 0600"
		           : "mode 0660: writable by group or other, which ";
	case H_M666:
		return sec ? "mode 0666: readable by group or other"
		           : "mode 0666: writable by group or other, which ";
	case H_M620:
		return sec ? "mode 0620: writable by group or other; a private key"
		           : "mode 0620: writable by group or other, which ";
	case H_NOBODY:
	case H_STICKY_NB:
		return "owner nobody (uid 65534), mode 0600: not owned by uid 0, the effective "
		       "user";
	case H_WWDIR:
		return kind == K_CACHE ? "mode 0777: writable by group or other without the "
		                         "sticky bit: f could be replaced"
		                       : NULL;
	case NHOWS:
		break;
	}
	return "?";
}

/* Make the case's file at DIR/f; returns the path to open. */
static const char *make_case(int kind, enum how how)
{
	const char *f = at("f");
	char cmd[1024];

	switch (how) {
	case H_GOOD:
		make_file(f, 100, 0600, 0);
		break;
	case H_DIR:
		ck_assert_int_eq(mkdir(f, 0700), 0);
		break;
	case H_FIFO:
		ck_assert_int_eq(mkfifo(f, 0600), 0);
		break;
	case H_ZERO:
		if (kind == K_CACHE)
			ck_assert_int_eq(mknod(f, S_IFCHR | 0666, makedev(1, 5)), 0);
		else
			ck_assert_int_eq(symlink("/dev/zero", f), 0);
		break;
	case H_BIG:
		make_file(f, TLSPOOL_FILE_MAX + 1, 0600, 0);
		break;
	case H_EXACT:
		make_file(f, TLSPOOL_FILE_MAX, 0600, 0);
		break;
	case H_LINK:
		make_file(at("target"), 100, 0600, 0);
		ck_assert_int_eq(symlink(at("target"), f), 0);
		break;
	case H_M644:
		make_file(f, 100, 0644, 0);
		break;
	case H_M660:
		make_file(f, 100, 0660, 0);
		break;
	case H_M666:
		make_file(f, 100, 0666, 0);
		break;
	case H_M620:
		make_file(f, 100, 0620, 0);
		break;
	case H_NOBODY:
		make_file(f, 100, 0600, NOBODY);
		break;
	case H_WWDIR:
	case H_STICKY:
	case H_STICKY_NB:
		make_file(f, 100, 0600, how == H_STICKY_NB ? NOBODY : 0);
		snprintf(cmd, sizeof(cmd), "chmod %s %s", how == H_WWDIR ? "0777" : "01777",
		         dir);
		sh(cmd);
		break;
	case NHOWS:
		break;
	}
	return f;
}

START_TEST(every_kind_every_case)
{
	int kind = _i % NKINDS;
	enum how how = (enum how)(_i / NKINDS);
	const char *want = expect(kind, how), *path = make_case(kind, how);
	char err[512] = "", label[64];
	struct stat st;
	int fd;

	snprintf(label, sizeof(label), "%s/%s", kind_label[kind], how_label[how]);
	errno = 0;
	if (kind == K_CACHE) {
		fd = tlspool_file_open_cache(path, &st, err, sizeof(err));
	} else if (kind == K_PLUGIN) {
		fd = tlspool_file_open(path, TLSPOOL_FILE_PLUGIN, &st, err, sizeof(err));
	} else {
		unsigned char *data = NULL;
		size_t len = 0;
		static const enum tlspool_file_kind kinds[] = {
		        TLSPOOL_FILE_CONFIG, TLSPOOL_FILE_PUBLIC, TLSPOOL_FILE_SECRET};

		fd = tlspool_file_read(path, kinds[kind], &data, &len, err, sizeof(err));
		if (fd == 0) {
			ck_assert_ptr_nonnull(data);
			ck_assert_uint_eq(len, how == H_EXACT ? TLSPOOL_FILE_MAX : 100);
			ck_assert_int_eq(data[0], 'x');
			ck_assert_int_eq(data[len], '\0');
			fd = 7; /* no descriptor to close */
		} else {
			ck_assert_ptr_null(data);
		}
		tlspool_file_free(data, len);
	}
	if (want == NULL) {
		ck_assert_msg(fd >= 0, "%s: refused: %s", label, err);
		if (fd != 7)
			close(fd);
		return;
	}
	ck_assert_msg(fd == -1, "%s: accepted, want \"%s\"", label, want);
	ck_assert_msg(errno == EACCES, "%s: errno %d", label, errno);
	/* the message names the file (or its directory) first */
	ck_assert_msg(strncmp(err, how == H_WWDIR ? dir : path, strlen(dir)) == 0,
	              "%s: \"%s\"", label, err);
	ck_assert_msg(strstr(err, want) != NULL, "%s: got \"%s\", want \"%s\"", label, err,
	              want);
	ck_assert_msg(strstr(err, "owner ") != NULL && strstr(err, "mode 0") != NULL,
	              "%s: no owner and mode in \"%s\"", label, err);
}
END_TEST

/* The cache file may not be created through a link; the lock file is
 * checked like the file. */
START_TEST(cache_symlink_to_root_file_untouched)
{
	char err[512], victim[512], link[512];
	struct stat before, after, st;

	snprintf(victim, sizeof(victim), "%s", at("victim"));
	snprintf(link, sizeof(link), "%s", at("cache.mdb"));

	make_file(victim, 10, 0600, 0);
	ck_assert_int_eq(stat(victim, &before), 0);
	ck_assert_int_eq(symlink(victim, link), 0);
	ck_assert_int_eq(tlspool_file_open_cache(link, &st, err, sizeof(err)), -1);
	ck_assert_int_eq(errno, EACCES);
	ck_assert_msg(strstr(err, "is a symbolic link") != NULL, "%s", err);
	/* a dangling link: nothing is created at its target */
	ck_assert_int_eq(symlink(at("nothere"), at("dangling")), 0);
	ck_assert_int_eq(tlspool_file_open_cache(at("dangling"), &st, err, sizeof(err)), -1);
	ck_assert_int_eq(access(at("nothere"), F_OK), -1);
	ck_assert_int_eq(stat(victim, &after), 0);
	ck_assert_int_eq(after.st_size, 10);
	ck_assert_int_eq(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
	ck_assert_int_eq(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
}
END_TEST

START_TEST(cache_directory_of_another_user)
{
	char err[512], sub[300];
	struct stat st;

	snprintf(sub, sizeof(sub), "%s/theirs", dir);
	ck_assert_int_eq(mkdir(sub, 0755), 0);
	ck_assert_int_eq(chown(sub, NOBODY, NOBODY), 0);
	strcat(sub, "/cache.mdb");
	ck_assert_int_eq(tlspool_file_open_cache(sub, &st, err, sizeof(err)), -1);
	ck_assert_int_eq(errno, EACCES);
	ck_assert_msg(strstr(err, "/theirs: owner nobody (uid 65534), mode 0755: not owned") !=
	                      NULL,
	              "%s", err);
	/* and nothing was created */
	ck_assert_int_eq(access(sub, F_OK), -1);
}
END_TEST

START_TEST(cache_created_0600)
{
	char err[512];
	struct stat st;
	mode_t old = umask(0);
	int fd = tlspool_file_open_cache(at("new.mdb"), &st, err, sizeof(err));

	umask(old);
	ck_assert_msg(fd >= 0, "%s", err);
	close(fd);
	ck_assert_int_eq(stat(at("new.mdb"), &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0600);
	ck_assert_int_eq(tlspool_file_open_cache("", &st, err, sizeof(err)), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(tlspool_file_open_cache("/nonexistent-ft/dir/c", &st, err, sizeof(err)),
	                 -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_str_eq(err, "/nonexistent-ft/dir/c: No such file or directory");
}
END_TEST

/* The rules seen by an ordinary user (effective uid 65534). */
START_TEST(as_another_user)
{
	static const struct {
		const char *name;
		int cache; /* open as a cache file, else a key (0) or not */
		const char *want; /* NULL: accepted */
	} rows[] = {
	        {"root.conf", 2, NULL},
	        {"mine.key", 0, NULL},
	        {"daemon.conf", 2, "owner daemon (uid 1), mode 0644: owned by neither root nor "
	                           "uid 65534, the effective user"},
	        {"shared/mine.mdb", 1, NULL},
	        /* in a sticky directory even root's cache file is not ours */
	        {"shared/root.mdb", 1, "owner root (uid 0), mode 0600: not owned by uid 65534"},
	};
	char err[5][512], p[400];
	int fd[5];
	struct stat st;

	ck_assert_int_eq(chmod(dir, 0755), 0);
	make_file(at("root.conf"), 10, 0644, 0);
	make_file(at("mine.key"), 10, 0600, NOBODY);
	make_file(at("daemon.conf"), 10, 0644, 1);
	ck_assert_int_eq(mkdir(at("shared"), 01777), 0);
	ck_assert_int_eq(chmod(at("shared"), 01777), 0);
	make_file(at("shared/root.mdb"), 0, 0600, 0);
	make_file(at("shared/mine.mdb"), 0, 0600, NOBODY);
	/* as nobody: no assertion until root again (CK_FORK=no) */
	ck_assert_int_eq(seteuid(NOBODY), 0);
	for (int i = 0; i < 5; i++) {
		snprintf(p, sizeof(p), "%s", at(rows[i].name));
		fd[i] = rows[i].cache == 1
		                ? tlspool_file_open_cache(p, &st, err[i], sizeof(err[i]))
		                : tlspool_file_open(p,
		                                    rows[i].cache ? TLSPOOL_FILE_CONFIG
		                                                  : TLSPOOL_FILE_SECRET,
		                                    &st, err[i], sizeof(err[i]));
	}
	ck_assert_int_eq(seteuid(0), 0);
	for (int i = 0; i < 5; i++) {
		if (rows[i].want == NULL) {
			ck_assert_msg(fd[i] >= 0, "%s: %s", rows[i].name, err[i]);
			close(fd[i]);
		} else {
			ck_assert_msg(fd[i] == -1, "%s accepted", rows[i].name);
			ck_assert_msg(strstr(err[i], rows[i].want) != NULL, "%s: %s",
			              rows[i].name, err[i]);
		}
	}
}
END_TEST

START_TEST(read_contents)
{
	unsigned char *data;
	size_t len;
	char err[256];
	FILE *fp = fopen(at("c"), "w");

	fputs("[dns]\ntimeout_ms = 5\n", fp);
	fclose(fp);
	ck_assert_int_eq(tlspool_file_read(at("c"), TLSPOOL_FILE_CONFIG, &data, &len, err,
	                                   sizeof(err)),
	                 0);
	ck_assert_uint_eq(len, 21);
	ck_assert_str_eq((char *)data, "[dns]\ntimeout_ms = 5\n");
	tlspool_file_free(data, len);
	tlspool_file_free(NULL, 0);
	/* an empty file is a file */
	make_file(at("empty"), 0, 0600, 0);
	ck_assert_int_eq(tlspool_file_read(at("empty"), TLSPOOL_FILE_CONFIG, &data, &len, err,
	                                   sizeof(err)),
	                 0);
	ck_assert_uint_eq(len, 0);
	tlspool_file_free(data, len);
	/* open errors keep their errno and name the file */
	ck_assert_int_eq(tlspool_file_read(at("missing"), TLSPOOL_FILE_SECRET, &data, &len, err,
	                                   sizeof(err)),
	                 -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_ptr_nonnull(strstr(err, "/missing: No such file or directory"));
	ck_assert_int_eq(tlspool_file_read(NULL, TLSPOOL_FILE_SECRET, &data, &len, err,
	                                   sizeof(err)),
	                 -1);
	ck_assert_int_eq(errno, EINVAL);
}
END_TEST

static const struct {
	const char *base, *path, *want; /* want: "CWD" replaced by cwd */
} resolve_rows[] = {
        {"/etc/tlspool.conf", "k.pem", "/etc/k.pem"},
        {"/etc/tlspool.conf", "/abs/k.pem", "/abs/k.pem"},
        {"/etc/tlspool.conf", "", ""},
        {"/etc/tlspool.conf", "sub/../k.pem", "/etc/sub/../k.pem"},
        {"/tlspool.conf", "k.pem", "/k.pem"},
        {"tlspool.conf", "k.pem", "CWD/k.pem"},
        {"a/b/tlspool.conf", "k.pem", "CWD/a/b/k.pem"},
};

START_TEST(resolve)
{
	char out[PATH_MAX], want[PATH_MAX], cwd[PATH_MAX];
	const char *w = resolve_rows[_i].want;

	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
	if (strncmp(w, "CWD", 3) == 0)
		snprintf(want, sizeof(want), "%s%s", strcmp(cwd, "/") ? cwd : "", w + 3);
	else
		snprintf(want, sizeof(want), "%s", w);
	ck_assert_int_eq(tlspool_file_resolve(out, sizeof(out), resolve_rows[_i].base,
	                                      resolve_rows[_i].path),
	                 0);
	ck_assert_str_eq(out, want);
}
END_TEST

START_TEST(resolve_too_long)
{
	char out[16];

	ck_assert_int_eq(tlspool_file_resolve(out, sizeof(out), "/etc/tlspool.conf",
	                                      "a-rather-long-name.pem"),
	                 -1);
	ck_assert_int_eq(errno, ENAMETOOLONG);
}
END_TEST

/* --- the trust anchor and the trust store ------------------------------- */

static const char *anchor_cases[] = {"dir", "fifo", "zero", "big", "0666", "nobody"};

START_TEST(trust_anchor_refused)
{
	tlspool_dns_config *cfg = tlspool_dns_config_new();
	const char *c = anchor_cases[_i], *p = at("root.key");
	char err[512] = "";

	if (strcmp(c, "dir") == 0)
		ck_assert_int_eq(mkdir(p, 0755), 0);
	else if (strcmp(c, "fifo") == 0)
		ck_assert_int_eq(mkfifo(p, 0644), 0);
	else if (strcmp(c, "zero") == 0)
		ck_assert_int_eq(symlink("/dev/zero", p), 0);
	else if (strcmp(c, "big") == 0)
		make_file(p, TLSPOOL_FILE_MAX + 1, 0644, 0);
	else if (strcmp(c, "0666") == 0)
		make_file(p, 10, 0666, 0);
	else
		make_file(p, 10, 0644, NOBODY);
	ck_assert_int_eq(tlspool_dns_config_set(cfg, "trust_anchor", p, err, sizeof(err)), 0);
	/* The test's timeout stands for "getdns spins forever". */
	ck_assert_ptr_null(tlspool_dns_new(cfg, err, sizeof(err)));
	ck_assert_msg(strncmp(err, "trust anchor ", 13) == 0 && strstr(err, p) != NULL &&
	                      strstr(err, "owner ") != NULL && strstr(err, "mode 0") != NULL,
	              "%s: %s", c, err);
	tlspool_dns_config_free(cfg);
}
END_TEST

START_TEST(trust_store_refused)
{
	char err[512];

	make_file(at("ca.pem"), 10, 0666, 0);
	errno = 0;
	ck_assert_ptr_null(tlspool_trust_new_file(at("ca.pem"), err, sizeof(err)));
	ck_assert_int_eq(errno, EACCES);
	ck_assert_msg(strstr(err, "mode 0666: writable by group or other") != NULL, "%s", err);
	ck_assert_int_eq(mkdir(at("ca.d"), 0755), 0);
	ck_assert_ptr_null(tlspool_trust_new_file(at("ca.d"), err, sizeof(err)));
	ck_assert_int_eq(errno, EACCES);
	ck_assert_msg(strstr(err, "is a directory") != NULL, "%s", err);
}
END_TEST

/* --- the authorization plugin ------------------------------------------- */

/* A configuration in dir naming the plugin and its rules relatively. */
static struct tp_config *authz_config(const char *rules)
{
	char cmd[1024], err[512];
	struct tp_config *cfg;
	const char *build = getenv("BUILD");
	FILE *fp = fopen(at("rules"), "w");

	fputs(rules, fp);
	fclose(fp);
	if (access(at("rules.so"), F_OK) != 0) {
		snprintf(cmd, sizeof(cmd), "cp %s/tlspool-authz-rules.so %s",
		         build && build[0] ? build : "build", at("rules.so"));
		sh(cmd);
	}
	fp = fopen(at("tlspool.conf"), "w");
	fputs("[authz]\nplugin = rules.so\nconfig = rules\n", fp);
	fclose(fp);
	ck_assert_msg(tp_config_load(at("tlspool.conf"), 0, &cfg, err, sizeof(err)) == 0, "%s",
	              err);
	ck_assert_str_eq(cfg->authz_plugin, at("rules.so"));
	ck_assert_str_eq(cfg->authz_config, at("rules"));
	return cfg;
}

static int ask(struct tp_config *cfg)
{
	tlspool_authz_request req = {.api = TLSPOOL_AUTHZ_API,
	                             .local = "client.example.test",
	                             .remote = "www.example.test",
	                             .role = TLSPOOL_AUTHZ_CLIENT,
	                             .protocol = IPPROTO_TCP,
	                             .sni = "www.example.test"};
	char note[256] = "";

	struct tp_authz *a = tp_authz_load(cfg);
	int rv = tp_authz_check(a, NULL, cfg, &req, 0, note, sizeof(note));

	tp_authz_free(a);
	return rv;
}

static const struct {
	mode_t mode;
	uid_t uid;
	const char *want;
} plugin_rows[] = {
        {0775, 0, "mode 0775: writable by group or other, which a plugin must not be"},
        {0757, 0, "mode 0757: writable by group or other"},
        {0755, NOBODY, "owner nobody (uid 65534), mode 0755: not owned by uid 0"},
};

START_TEST(plugin_refused_every_call)
{
	struct tp_config *cfg = authz_config("* * allow\n");

	ck_assert_int_eq(chown(at("rules.so"), plugin_rows[_i].uid, 0), 0);
	ck_assert_int_eq(chmod(at("rules.so"), plugin_rows[_i].mode), 0);
	for (int i = 0; i < 2; i++) {
		errno = 0;
		ck_assert_int_eq(ask(cfg), -1);
		ck_assert_int_eq(errno, EPERM);
		ck_assert_int_eq(starttls_errclass(), STARTTLS_ERR_REFUSED);
		ck_assert_msg(strstr(starttls_errstr(), at("rules.so")) != NULL &&
		                      strstr(starttls_errstr(), plugin_rows[_i].want) != NULL &&
		                      strstr(starttls_errstr(), "not loaded") != NULL,
		              "%s", starttls_errstr());
	}
	tp_config_free(cfg);
}
END_TEST

START_TEST(plugin_directory_refused)
{
	struct tp_config *cfg;
	char err[512];
	FILE *fp = fopen(at("tlspool.conf"), "w");

	fputs("[authz]\nplugin = plugdir\n", fp);
	fclose(fp);
	ck_assert_int_eq(mkdir(at("plugdir"), 0755), 0);
	ck_assert_int_eq(tp_config_load(at("tlspool.conf"), 0, &cfg, err, sizeof(err)), 0);
	ck_assert_int_eq(ask(cfg), -1);
	ck_assert_int_eq(errno, EPERM);
	ck_assert_msg(strstr(starttls_errstr(), "is a directory") != NULL, "%s",
	              starttls_errstr());
	tp_config_free(cfg);
}
END_TEST

START_TEST(plugin_good)
{
	struct tp_config *cfg = authz_config("client.example.test www.example.test allow\n");

	ck_assert_int_eq(chmod(at("rules.so"), 0755), 0);
	ck_assert_msg(ask(cfg) == 0, "%s", starttls_errstr());
	ck_assert_int_eq(ask(cfg), 0);
	tp_config_free(cfg);
	/* a second configuration of the same file, loaded while the first
	 * is gone, and one with a denial */
	cfg = authz_config("* * deny\n");
	ck_assert_int_eq(ask(cfg), -1);
	ck_assert_int_eq(errno, EPERM);
	ck_assert_msg(strstr(starttls_errstr(), "rules:1") != NULL, "%s", starttls_errstr());
	tp_config_free(cfg);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("filetrust");
	TCase *neg = tcase_create("negative");
	TCase *pos = tcase_create("positive");

	tcase_add_checked_fixture(neg, setup, NULL);
	tcase_add_checked_fixture(pos, setup, NULL);
	tcase_set_timeout(neg, 20);
	tcase_set_timeout(pos, 20);
	tcase_add_loop_test(neg, every_kind_every_case, NKINDS, NKINDS * NHOWS);
	tcase_add_test(neg, cache_symlink_to_root_file_untouched);
	tcase_add_test(neg, cache_directory_of_another_user);
	tcase_add_test(neg, as_another_user);
	tcase_add_loop_test(neg, trust_anchor_refused, 0,
	                    sizeof(anchor_cases) / sizeof(anchor_cases[0]));
	tcase_add_test(neg, trust_store_refused);
	tcase_add_loop_test(neg, plugin_refused_every_call, 0,
	                    sizeof(plugin_rows) / sizeof(plugin_rows[0]));
	tcase_add_test(neg, plugin_directory_refused);
	tcase_add_test(neg, resolve_too_long);
	tcase_add_loop_test(pos, every_kind_every_case, 0, NKINDS);
	tcase_add_test(pos, cache_created_0600);
	tcase_add_test(pos, read_contents);
	tcase_add_loop_test(pos, resolve, 0, sizeof(resolve_rows) / sizeof(resolve_rows[0]));
	tcase_add_test(pos, plugin_good);
	suite_add_tcase(s, neg);
	suite_add_tcase(s, pos);
	return s;
}

int main(void)
{
	char cmd[128];
	int rv;

	if (geteuid() != 0) {
		fprintf(stderr, "check_filetrust: run as root (tests/run)\n");
		return 1;
	}
	if (mkdtemp(base) == NULL || chmod(base, 0755) != 0)
		return 1;
	rv = tp_run_suite(suite());
	snprintf(cmd, sizeof(cmd), "rm -rf %s", base);
	(void)!system(cmd);
	return rv;
}
