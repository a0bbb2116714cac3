/*
 * The validation cache (src/lib/cache.c): records that are not exactly
 * what was asked never answer; expiry, the max_ttl cap, negative entries;
 * one LMDB file shared by processes; threads hammering one cache.
 *
 * Tampering with a file goes through raw LMDB in a child process: LMDB
 * forbids opening one file twice in a process.
 */
#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache.h"
#include "testutil.h"

static char dir[] = "/tmp/tlspool-cache-XXXXXX";
static unsigned seq;

/* A fresh cache file name (each one opened at most once per process). */
static const char *fresh_path(void)
{
	static char p[128];

	snprintf(p, sizeof(p), "%s/c%d-%u.mdb", dir, (int)getpid(), seq++);
	return p;
}

static struct tp_cache_key key_for(const char *id, const char *owner, int spki)
{
	struct tp_cache_key k;

	memset(&k, 0, sizeof(k));
	k.kind = TP_CACHE_AUTHN;
	k.a = id;
	k.b = owner;
	k.type = 52;
	memset(k.digest, spki, sizeof(k.digest));
	return k;
}

#define OWNER "_443._tcp.www.example.test."

/* Run fn(arg) in a child process; its exit status. */
static int in_child(int (*fn)(const char *), const char *arg)
{
	pid_t pid = fork();
	int st;

	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(fn(arg));
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 99;
}

static int child_put(const char *path)
{
	tp_cache *c = tp_cache_new(path, 3600);
	struct tp_cache_key k = key_for("www.example.test", OWNER, 7);
	struct tp_cache_key k2 = key_for("mail.example.test", OWNER, 8);
	char note[256] = "";
	time_t now = time(NULL);
	int r = tp_cache_put(c, &k, TP_CACHE_PASS, now + 600, now, note,
	                     sizeof(note)) |
	        tp_cache_put(c, &k2, TP_CACHE_PASS, now + 600, now, note,
	                     sizeof(note));

	tp_cache_free(c);
	return r == 0 ? 0 : 1;
}

/* Rewrite every value of the file: mode names how. */
static const char *tamper_mode;

static int child_tamper(const char *path)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_cursor *cur;
	MDB_val k, v, keys[2], vals[2];
	unsigned char buf[2][1024];
	size_t n = 0;

	if (mdb_env_create(&env) ||
	    mdb_env_set_mapsize(env, TP_CACHE_MAPSIZE) ||
	    mdb_env_open(env, path, MDB_NOSUBDIR, 0600) ||
	    mdb_txn_begin(env, NULL, 0, &txn) ||
	    mdb_dbi_open(txn, NULL, 0, &dbi) || mdb_cursor_open(txn, dbi, &cur))
		return 2;
	while (n < 2 && mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
		keys[n] = k;
		memcpy(buf[n], v.mv_data, v.mv_size);
		vals[n].mv_size = v.mv_size;
		vals[n].mv_data = buf[n];
		n++;
	}
	mdb_cursor_close(cur);
	if (n != 2)
		return 3;
	for (size_t i = 0; i < 2; i++) {
		unsigned char *r = buf[i];

		if (strcmp(tamper_mode, "magic") == 0)
			r[0] ^= 0xff;
		else if (strcmp(tamper_mode, "version") == 0)
			r[4] = 2;
		else if (strcmp(tamper_mode, "short") == 0)
			vals[i].mv_size = 10;
		else if (strcmp(tamper_mode, "garbage") == 0)
			memset(r + 8, 0x5a, vals[i].mv_size - 8);
		else if (strcmp(tamper_mode, "verdict") == 0)
			r[7] = 9;
	}
	if (strcmp(tamper_mode, "swap") == 0) {
		MDB_val t = vals[0];

		vals[0] = vals[1];
		vals[1] = t;
	}
	for (size_t i = 0; i < 2; i++)
		if (mdb_put(txn, dbi, &keys[i], &vals[i], 0))
			return 4;
	if (mdb_txn_commit(txn))
		return 5;
	mdb_env_close(env);
	return 0;
}

/* --- negative cases ---------------------------------------------------- */

START_TEST(destroy_null_and_bad_arguments)
{
	tp_cache *c = tp_cache_new(NULL, 3600);
	struct tp_cache_key k = key_for("www.example.test", OWNER, 1);
	char note[256] = "";
	time_t now = time(NULL);

	tp_cache_free(NULL);
	ck_assert_int_eq(tp_cache_get(NULL, &k, now, NULL, note, sizeof(note)),
	                 TP_CACHE_MISS);
	k.a = NULL;
	ck_assert_int_eq(tp_cache_get(c, &k, now, NULL, note, sizeof(note)),
	                 TP_CACHE_MISS);
	ck_assert_int_eq(tp_cache_put(c, &k, TP_CACHE_PASS, now + 9, now, note,
	                              sizeof(note)),
	                 -1);
	k = key_for("www.example.test", OWNER, 1);
	ck_assert_int_eq(
	        tp_cache_put(c, &k, 7, now + 9, now, note, sizeof(note)), -1);
	tp_cache_free(c);
}
END_TEST

START_TEST(corrupt_file)
{
	const char *p = fresh_path();
	tp_cache *c;
	struct tp_cache_key k = key_for("www.example.test", OWNER, 1);
	char note[256] = "";
	time_t now = time(NULL);
	FILE *fp = fopen(p, "w");

	for (int i = 0; i < 4096; i++)
		fputs("garbage!", fp);
	fclose(fp);
	c = tp_cache_new(p, 3600);
	ck_assert_int_eq(tp_cache_get(c, &k, now, NULL, note, sizeof(note)),
	                 TP_CACHE_MISS);
	ck_assert_msg(strstr(note, p) != NULL, "note \"%s\"", note);
	note[0] = '\0';
	ck_assert_int_eq(tp_cache_put(c, &k, TP_CACHE_PASS, now + 60, now, note,
	                              sizeof(note)),
	                 -1);
	ck_assert_msg(strstr(note, p) != NULL, "note \"%s\"", note);
	tp_cache_free(c);
}
END_TEST

START_TEST(missing_directory)
{
	tp_cache *c = tp_cache_new("/nonexistent-tlspool/dir/cache", 3600);
	struct tp_cache_key k = key_for("www.example.test", OWNER, 1);
	char note[256] = "";

	ck_assert_int_eq(
	        tp_cache_get(c, &k, time(NULL), NULL, note, sizeof(note)),
	        TP_CACHE_MISS);
	ck_assert_msg(strstr(note, "No such file") != NULL, "note \"%s\"",
	              note);
	tp_cache_free(c);
}
END_TEST

static const struct {
	const char *mode, *note;
} tamper_rows[] = {
        {"magic", "bad magic"},
        {"version", "unknown record version"},
        {"short", "record too short"},
        {"garbage", ""},
        {"verdict", "bad kind or verdict"},
        {"swap", "belongs to another key"},
};

START_TEST(malformed_records_never_answer)
{
	const char *p = fresh_path();
	struct tp_cache_key k = key_for("www.example.test", OWNER, 7);
	char note[256] = "";
	tp_cache *c;

	ck_assert_int_eq(in_child(child_put, p), 0);
	tamper_mode = tamper_rows[_i].mode;
	ck_assert_int_eq(in_child(child_tamper, p), 0);
	c = tp_cache_new(p, 3600);
	ck_assert_int_eq(
	        tp_cache_get(c, &k, time(NULL), NULL, note, sizeof(note)),
	        TP_CACHE_MISS);
	ck_assert_msg(note[0] != '\0' &&
	                      strstr(note, tamper_rows[_i].note) != NULL,
	              "%s: note \"%s\"", tamper_rows[_i].mode, note);
	/* a good store replaces the bad record */
	note[0] = '\0';
	ck_assert_int_eq(tp_cache_put(c, &k, TP_CACHE_PASS, time(NULL) + 60,
	                              time(NULL), note, sizeof(note)),
	                 0);
	ck_assert_int_eq(
	        tp_cache_get(c, &k, time(NULL), NULL, note, sizeof(note)),
	        TP_CACHE_PASS);
	tp_cache_free(c);
}
END_TEST

static void expiry_cases(const char *path)
{
	tp_cache *c = tp_cache_new(path, 100);
	struct tp_cache_key k = key_for("www.example.test", OWNER, 1);
	char note[256] = "";
	time_t now = time(NULL), exp = 0;

	/* expired entries */
	ck_assert_int_eq(tp_cache_put(c, &k, TP_CACHE_PASS, now + 5, now, note,
	                              sizeof(note)),
	                 0);
	ck_assert_int_eq(tp_cache_get(c, &k, now + 4, &exp, note, sizeof(note)),
	                 TP_CACHE_PASS);
	ck_assert_int_eq(exp, now + 5);
	ck_assert_int_eq(tp_cache_get(c, &k, now + 5, NULL, note, sizeof(note)),
	                 TP_CACHE_MISS);
	ck_assert_int_eq(
	        tp_cache_get(c, &k, now + 3600, NULL, note, sizeof(note)),
	        TP_CACHE_MISS);
	/* max_ttl caps what the record asks */
	ck_assert_int_eq(tp_cache_put(c, &k, TP_CACHE_PASS, now + 86400, now,
	                              note, sizeof(note)),
	                 0);
	ck_assert_int_eq(tp_cache_get(c, &k, now, &exp, note, sizeof(note)),
	                 TP_CACHE_PASS);
	ck_assert_int_eq(exp, now + 100);
	ck_assert_int_eq(
	        tp_cache_get(c, &k, now + 101, NULL, note, sizeof(note)),
	        TP_CACHE_MISS);
	/* nothing kept for a TTL of 0 */
	k = key_for("zero.example.test", OWNER, 1);
	ck_assert_int_eq(tp_cache_put(c, &k, TP_CACHE_PASS, now, now, note,
	                              sizeof(note)),
	                 0);
	ck_assert_int_eq(tp_cache_get(c, &k, now, NULL, note, sizeof(note)),
	                 TP_CACHE_MISS);
	ck_assert_str_eq(note, "");
	tp_cache_free(c);
}

START_TEST(expiry_and_max_ttl_memory)
{
	expiry_cases(NULL);
}
END_TEST

START_TEST(expiry_and_max_ttl_lmdb)
{
	expiry_cases(fresh_path());
}
END_TEST

START_TEST(lowered_max_ttl_applies_to_stored_entries)
{
	const char *p = fresh_path();
	tp_cache *a = tp_cache_new(p, 1000), *b = tp_cache_new(p, 10);
	struct tp_cache_key k = key_for("www.example.test", OWNER, 1);
	char note[256] = "";
	time_t now = time(NULL);

	ck_assert_int_eq(tp_cache_put(a, &k, TP_CACHE_PASS, now + 500, now,
	                              note, sizeof(note)),
	                 0);
	ck_assert_int_eq(
	        tp_cache_get(a, &k, now + 20, NULL, note, sizeof(note)),
	        TP_CACHE_PASS);
	ck_assert_int_eq(
	        tp_cache_get(b, &k, now + 20, NULL, note, sizeof(note)),
	        TP_CACHE_MISS);
	tp_cache_free(a);
	tp_cache_free(b);
}
END_TEST

START_TEST(negative_entries_never_authenticate)
{
	tp_cache *c = tp_cache_new(_i ? fresh_path() : NULL, 3600);
	struct tp_cache_key k = key_for("www.example.test", OWNER, 1);
	struct tp_cache_key other = key_for("www.example.test", OWNER, 2);
	char note[256] = "";
	time_t now = time(NULL);

	ck_assert_int_eq(tp_cache_put(c, &k, TP_CACHE_FAIL, now + 60, now, note,
	                              sizeof(note)),
	                 0);
	ck_assert_int_eq(tp_cache_get(c, &k, now, NULL, note, sizeof(note)),
	                 TP_CACHE_FAIL);
	/* another key of the same peer: nothing known */
	ck_assert_int_eq(tp_cache_get(c, &other, now, NULL, note, sizeof(note)),
	                 TP_CACHE_MISS);
	/* other names, other owner, other type, authz: nothing either */
	other = key_for("www.example.test", "_25._tcp.www.example.test.", 1);
	ck_assert_int_eq(tp_cache_get(c, &other, now, NULL, note, sizeof(note)),
	                 TP_CACHE_MISS);
	other = key_for("www.example.test", OWNER, 1);
	other.type = 53;
	ck_assert_int_eq(tp_cache_get(c, &other, now, NULL, note, sizeof(note)),
	                 TP_CACHE_MISS);
	other = key_for("www.example.test", OWNER, 1);
	other.kind = TP_CACHE_AUTHZ;
	ck_assert_int_eq(tp_cache_get(c, &other, now, NULL, note, sizeof(note)),
	                 TP_CACHE_MISS);
	ck_assert_str_eq(note, "");
	tp_cache_free(c);
}
END_TEST

/*
 * Cache files that break the file rules (tlspool.conf(5) FILES) are not
 * used: the entry a valid file holds (written by another process, then
 * made unsafe) never answers, nothing is written, and the note names the
 * file (or its directory), its owner and its mode.  The cases run in a
 * directory of their own: DIR/sub/c.mdb.
 */
static const struct {
	const char *how, *want;
	int filled; /* a valid file with the entry first */
} unsafe_rows[] = {
        {"chmod 0666 c.mdb",
         "c.mdb: owner root (uid 0), mode 0666: writable by group or other", 1},
        {"chmod 0620 c.mdb",
         "c.mdb: owner root (uid 0), mode 0620: writable by group or other", 1},
        {"chown 65534 c.mdb",
         "c.mdb: owner nobody (uid 65534), mode 0600: not owned by uid 0", 1},
        {"chmod 0666 c.mdb-lock",
         "c.mdb-lock: owner root (uid 0), mode 0666: writable by group or "
         "other",
         1},
        {"chown 65534 c.mdb-lock", "c.mdb-lock: owner nobody (uid 65534)", 1},
        {"chmod 0777 .",
         "sub: owner root (uid 0), mode 0777: writable by group or other "
         "without the sticky bit: c.mdb could be replaced",
         1},
        {"chown 65534 .",
         "sub: owner nobody (uid 65534), mode 0700: not owned by uid 0", 1},
        {"chmod 01777 . && chown 65534 c.mdb",
         "c.mdb: owner nobody (uid 65534), mode 0600: not owned by uid 0", 1},
        {"mv c.mdb real.mdb && ln -s real.mdb c.mdb",
         "c.mdb: owner root (uid 0), mode 0777: is a symbolic link, never "
         "followed for the cache",
         1},
        {"mv c.mdb-lock real.lock && ln -s real.lock c.mdb-lock",
         "c.mdb-lock: owner root (uid 0), mode 0777: is a symbolic link", 1},
        {"mkdir c.mdb",
         "c.mdb: owner root (uid 0), mode 0755: is a directory, not a regular "
         "file",
         0},
        {"mkfifo -m 600 c.mdb",
         "c.mdb: owner root (uid 0), mode 0600: is a FIFO, not a regular file",
         0},
        {"mknod -m 666 c.mdb c 1 5",
         "c.mdb: owner root (uid 0), mode 0666: is a character device", 0},
        {"mkfifo -m 600 c.mdb-lock",
         "c.mdb-lock: owner root (uid 0), mode 0600: is a FIFO", 0},
};

START_TEST(unsafe_file_not_used)
{
	char sub[256], p[300], cmd[1024], note[256] = "";
	struct tp_cache_key k = key_for("www.example.test", OWNER, 7);
	time_t now = time(NULL);
	tp_cache *c;

	snprintf(sub, sizeof(sub), "%s/u%d-%u/sub", dir, (int)getpid(), seq++);
	snprintf(cmd, sizeof(cmd), "mkdir -p -m 700 %s", sub);
	ck_assert_int_eq(system(cmd), 0);
	snprintf(p, sizeof(p), "%s/c.mdb", sub);
	if (unsafe_rows[_i].filled)
		ck_assert_int_eq(in_child(child_put, p), 0);
	snprintf(cmd, sizeof(cmd), "cd %s && umask 022 && %s", sub,
	         unsafe_rows[_i].how);
	ck_assert_int_eq(system(cmd), 0);
	c = tp_cache_new(p, 3600);
	/* The test's timeout stands for a FIFO that hangs. */
	ck_assert_int_eq(tp_cache_get(c, &k, now, NULL, note, sizeof(note)),
	                 TP_CACHE_MISS);
	ck_assert_msg(strncmp(note, "cache /", 7) == 0 &&
	                      strstr(note, unsafe_rows[_i].want),
	              "%s: note \"%s\"", unsafe_rows[_i].how, note);
	note[0] = '\0';
	ck_assert_int_eq(tp_cache_put(c, &k, TP_CACHE_PASS, now + 60, now, note,
	                              sizeof(note)),
	                 -1);
	ck_assert_msg(strstr(note, unsafe_rows[_i].want), "put: \"%s\"", note);
	tp_cache_free(c);
}
END_TEST

/* A link planted at the cache path, or at its lock file, to a file of
 * root's: that file is not touched. */
START_TEST(planted_link_target_untouched)
{
	char sub[256], p[300], victim[300], link[320], note[256] = "";
	struct tp_cache_key k = key_for("www.example.test", OWNER, 7);
	struct stat before, after;
	time_t now = time(NULL);
	FILE *fp;
	tp_cache *c;

	snprintf(sub, sizeof(sub), "%s/l%d-%u", dir, (int)getpid(), seq++);
	ck_assert_int_eq(mkdir(sub, 0700), 0);
	snprintf(victim, sizeof(victim), "%s/victim", sub);
	fp = fopen(victim, "w");
	fputs("root's file\n", fp);
	fclose(fp);
	ck_assert_int_eq(chmod(victim, 0600), 0);
	ck_assert_int_eq(stat(victim, &before), 0);
	snprintf(p, sizeof(p), "%s/c.mdb", sub);
	snprintf(link, sizeof(link), "%s%s", p, _i ? "-lock" : "");
	ck_assert_int_eq(symlink(victim, link), 0);
	sleep(1); /* a write would show in the modification time */
	c = tp_cache_new(p, 3600);
	ck_assert_int_eq(tp_cache_put(c, &k, TP_CACHE_PASS, now + 60, now, note,
	                              sizeof(note)),
	                 -1);
	ck_assert_int_eq(tp_cache_get(c, &k, now, NULL, note, sizeof(note)),
	                 TP_CACHE_MISS);
	ck_assert_msg(strstr(note, "is a symbolic link") != NULL, "note \"%s\"",
	              note);
	tp_cache_free(c);
	ck_assert_int_eq(stat(victim, &after), 0);
	ck_assert_int_eq(after.st_size, before.st_size);
	ck_assert_int_eq(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
	ck_assert_int_eq(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
	ck_assert_int_eq(after.st_mode & 07777, 0600);
}
END_TEST

/* --- positive cases ---------------------------------------------------- */

START_TEST(names_are_case_insensitive)
{
	tp_cache *c = tp_cache_new(NULL, 3600);
	struct tp_cache_key k = key_for("www.example.test", OWNER, 1);
	struct tp_cache_key up =
	        key_for("WWW.Example.TEST", "_443._TCP.www.EXAMPLE.test.", 1);
	char note[256] = "";
	time_t now = time(NULL);

	ck_assert_int_eq(tp_cache_put(c, &k, TP_CACHE_PASS, now + 60, now, note,
	                              sizeof(note)),
	                 0);
	ck_assert_int_eq(tp_cache_get(c, &up, now, NULL, note, sizeof(note)),
	                 TP_CACHE_PASS);
	tp_cache_free(c);
}
END_TEST

START_TEST(two_processes_share_one_file)
{
	const char *p = fresh_path();
	tp_cache *c;
	struct tp_cache_key k = key_for("www.example.test", OWNER, 7);
	char note[256] = "";

	/* another process writes, this one reads */
	ck_assert_int_eq(in_child(child_put, p), 0);
	c = tp_cache_new(p, 3600);
	ck_assert_int_eq(
	        tp_cache_get(c, &k, time(NULL), NULL, note, sizeof(note)),
	        TP_CACHE_PASS);
	ck_assert_str_eq(note, "");
	tp_cache_free(c);
}
END_TEST

static int count_entry(const tlspool_cache_entry *e, void *arg)
{
	ck_assert_int_eq(e->valid, 1);
	ck_assert_ptr_null(e->problem);
	ck_assert_int_eq(strlen(e->key), 64);
	(*(int *)arg)++;
	return 0;
}

START_TEST(list_and_flush)
{
	const char *p = fresh_path();
	tp_cache *c;
	char err[256] = "";
	int n = 0;

	ck_assert_int_eq(in_child(child_put, p), 0);
	c = tp_cache_new(p, 3600);
	/* the backend, as --cache-list names it */
	ck_assert_int_eq(strncmp(tp_cache_describe(c), "lmdb /", 6), 0);
	ck_assert_str_eq(tp_cache_describe(c) + 5, p);
	ck_assert_int_eq(tp_cache_list(c, count_entry, &n, err, sizeof(err)),
	                 0);
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(tp_cache_flush(c, err, sizeof(err)), 0);
	n = 0;
	ck_assert_int_eq(tp_cache_list(c, count_entry, &n, err, sizeof(err)),
	                 0);
	ck_assert_int_eq(n, 0);
	tp_cache_free(c);
}
END_TEST

/* 8 threads, each storing and reading its own keys and everyone's. */
struct hammer {
	tp_cache *c;
	int id, rounds, errors;
	char note[256];
};

static void *hammer(void *arg)
{
	struct hammer *h = arg;
	char id[64];

	for (int i = 0; i < h->rounds; i++) {
		time_t now = time(NULL);
		struct tp_cache_key k;

		snprintf(id, sizeof(id), "t%d-%d.example.test", h->id, i % 16);
		k = key_for(id, OWNER, i % 3);
		if (tp_cache_put(h->c, &k, TP_CACHE_PASS, now + 60, now,
		                 h->note, sizeof(h->note)) != 0 ||
		    tp_cache_get(h->c, &k, now, NULL, h->note,
		                 sizeof(h->note)) != TP_CACHE_PASS)
			h->errors++;
		snprintf(id, sizeof(id), "t%d-%d.example.test", (h->id + 1) % 8,
		         i % 16);
		k = key_for(id, OWNER, i % 3);
		(void)tp_cache_get(h->c, &k, now, NULL, h->note,
		                   sizeof(h->note));
		if (h->note[0] != '\0')
			h->errors++;
	}
	return NULL;
}

START_TEST(eight_threads_hammer)
{
	tp_cache *c = tp_cache_new(_i ? fresh_path() : NULL, 3600);
	int rounds = getenv("VALGRIND") ? 50 : _i ? 300 : 20000;
	struct hammer h[8];
	pthread_t t[8];

	for (int i = 0; i < 8; i++) {
		memset(&h[i], 0, sizeof(h[i]));
		h[i].c = c;
		h[i].id = i;
		h[i].rounds = rounds;
		pthread_create(&t[i], NULL, hammer, &h[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		ck_assert_msg(h[i].errors == 0, "thread %d: %d errors: %s", i,
		              h[i].errors, h[i].note);
	}
	tp_cache_free(c);
}
END_TEST

/* A new file is made 0600 whatever the umask; a sticky shared directory
 * (like /tmp) is fine for our own file. */
START_TEST(new_file_0600_and_sticky_directory)
{
	char sub[256], p[300], note[256] = "";
	struct tp_cache_key k = key_for("www.example.test", OWNER, 1);
	time_t now = time(NULL);
	struct stat st;
	mode_t old;
	tp_cache *c;

	snprintf(sub, sizeof(sub), "%s/s%d-%u", dir, (int)getpid(), seq++);
	ck_assert_int_eq(mkdir(sub, 0700), 0);
	ck_assert_int_eq(chmod(sub, 01777), 0);
	snprintf(p, sizeof(p), "%s/c.mdb", sub);
	c = tp_cache_new(p, 3600);
	old = umask(0);
	ck_assert_int_eq(tp_cache_put(c, &k, TP_CACHE_PASS, now + 60, now, note,
	                              sizeof(note)),
	                 0);
	umask(old);
	ck_assert_int_eq(tp_cache_get(c, &k, now, NULL, note, sizeof(note)),
	                 TP_CACHE_PASS);
	ck_assert_str_eq(note, "");
	tp_cache_free(c);
	ck_assert_int_eq(stat(p, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0600);
	strcat(p, "-lock");
	ck_assert_int_eq(stat(p, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0600);
}
END_TEST

/* Zone keys (cache_keys.c): data of their own kind, up to
 * TP_CACHE_DATA_MAX octets, in memory and in a file; an authentication
 * lookup never answers from them, nor they from one; --cache-list shows
 * them as zonekeys. */
static int zonekeys_entry(const tlspool_cache_entry *e, void *arg)
{
	if (e->valid && e->zonekeys && !e->authz && e->spki[0] == '\0' &&
	    strcmp(e->identity, "example.test.") == 0 &&
	    strcmp(e->other, "DNSKEY DS (8192 octets)") == 0)
		(*(int *)arg)++;
	return 0;
}

START_TEST(zone_keys_data)
{
	static unsigned char data[TP_CACHE_DATA_MAX + 1],
	        back[TP_CACHE_DATA_MAX];
	struct tp_cache_key z = {.kind = TP_CACHE_KEYS,
	                         .a = "example.test.",
	                         .b = "",
	                         .type = 48};
	struct tp_cache_key authn = z;
	time_t now = time(NULL), exp = 0;
	char note[256] = "";
	size_t len = 0;
	int n;

	authn.kind = TP_CACHE_AUTHN;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)(i * 7);
	for (int lmdb = 0; lmdb < 2; lmdb++) {
		tp_cache *c = tp_cache_new(lmdb ? fresh_path() : NULL, 3600);

		/* negative first: too long, empty, a verdict put, wrong kinds
		 */
		ck_assert_int_eq(tp_cache_put_data(c, &z, data, sizeof(data),
		                                   now + 60, now, note,
		                                   sizeof(note)),
		                 -1);
		ck_assert_int_eq(tp_cache_put_data(c, &z, data, 0, now + 60,
		                                   now, note, sizeof(note)),
		                 -1);
		ck_assert_int_eq(tp_cache_put_data(c, &authn, data, 10,
		                                   now + 60, now, note,
		                                   sizeof(note)),
		                 -1);
		ck_assert_int_eq(tp_cache_put(c, &z, TP_CACHE_PASS, now + 60,
		                              now, note, sizeof(note)),
		                 -1);
		ck_assert_int_eq(tp_cache_get_data(c, &z, now, back,
		                                   sizeof(back), &len, NULL,
		                                   note, sizeof(note)),
		                 TP_CACHE_MISS);
		note[0] = '\0';
		ck_assert_int_eq(tp_cache_put_data(c, &z, data,
		                                   TP_CACHE_DATA_MAX, now + 60,
		                                   now, note, sizeof(note)),
		                 0);
		ck_assert_str_eq(note, "");
		/* not an authentication, and too small a buffer is a miss */
		ck_assert_int_eq(
		        tp_cache_get(c, &z, now, NULL, note, sizeof(note)),
		        TP_CACHE_MISS);
		ck_assert_int_eq(
		        tp_cache_get(c, &authn, now, NULL, note, sizeof(note)),
		        TP_CACHE_MISS);
		ck_assert_int_eq(tp_cache_get_data(c, &z, now, back, 100, &len,
		                                   NULL, note, sizeof(note)),
		                 TP_CACHE_MISS);
		/* past its expiry */
		ck_assert_int_eq(tp_cache_get_data(c, &z, now + 60, back,
		                                   sizeof(back), &len, NULL,
		                                   note, sizeof(note)),
		                 TP_CACHE_MISS);
		ck_assert_int_eq(tp_cache_get_data(c, &z, now, back,
		                                   sizeof(back), &len, &exp,
		                                   note, sizeof(note)),
		                 TP_CACHE_PASS);
		ck_assert_uint_eq(len, TP_CACHE_DATA_MAX);
		ck_assert_int_eq(exp, now + 60);
		ck_assert_int_eq(memcmp(back, data, len), 0);
		n = 0;
		ck_assert_int_eq(tp_cache_list(c, zonekeys_entry, &n, NULL, 0),
		                 0);
		ck_assert_int_eq(n, 1);
		ck_assert_int_eq(tp_cache_flush(c, NULL, 0), 0);
		ck_assert_int_eq(tp_cache_get_data(c, &z, now, back,
		                                   sizeof(back), &len, NULL,
		                                   note, sizeof(note)),
		                 TP_CACHE_MISS);
		tp_cache_free(c);
	}
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("cache");
	TCase *neg = tcase_create("negative");
	TCase *pos = tcase_create("positive");

	tcase_set_timeout(neg, 60);
	tcase_set_timeout(pos, 120);
	tcase_add_test(neg, destroy_null_and_bad_arguments);
	tcase_add_test(neg, corrupt_file);
	tcase_add_test(neg, missing_directory);
	tcase_add_loop_test(neg, unsafe_file_not_used, 0,
	                    sizeof(unsafe_rows) / sizeof(unsafe_rows[0]));
	tcase_add_loop_test(neg, planted_link_target_untouched, 0, 2);
	tcase_add_loop_test(neg, malformed_records_never_answer, 0,
	                    sizeof(tamper_rows) / sizeof(tamper_rows[0]));
	tcase_add_test(neg, expiry_and_max_ttl_memory);
	tcase_add_test(neg, expiry_and_max_ttl_lmdb);
	tcase_add_test(neg, lowered_max_ttl_applies_to_stored_entries);
	tcase_add_loop_test(neg, negative_entries_never_authenticate, 0, 2);
	tcase_add_test(pos, names_are_case_insensitive);
	tcase_add_test(pos, new_file_0600_and_sticky_directory);
	tcase_add_test(pos, two_processes_share_one_file);
	tcase_add_test(pos, list_and_flush);
	tcase_add_test(pos, zone_keys_data);
	tcase_add_loop_test(pos, eight_threads_hammer, 0, 2);
	suite_add_tcase(s, neg);
	suite_add_tcase(s, pos);
	return s;
}

int main(void)
{
	char cmd[128];
	int rv;

	if (mkdtemp(dir) == NULL)
		return 1;
	/* Under CK_FORK=no (valgrind) every test runs in this process:
	 * the sequence number keeps their files apart. */
	seq = 0;
	rv = tp_run_suite(suite());
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	(void)!system(cmd);
	return rv;
}
