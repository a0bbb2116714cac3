/*
 * Files the project trusts, the way OpenSSH's StrictModes trusts them
 * (sshd_config(5)): every file that tlspool.conf names, and tlspool.conf
 * itself, is opened and read here.
 *
 * Outline:
 *   1. Open first, then look: open(2) with O_NONBLOCK (a FIFO must not
 *      hang the caller) and O_NOCTTY, then fstat(2) the descriptor, so
 *      that the file checked is the file read.  Never stat, then open.
 *   2. The rules: a regular file; owned by root or the effective uid; not
 *      writable by group or other; a private key not accessible by group
 *      or other at all.  Keys, certificates, trust anchors, plugins and
 *      the configuration may be symbolic links: the checks apply to the
 *      target, through the descriptor.  The cache and its lock file are
 *      never followed (O_NOFOLLOW), and their directory must not let
 *      another user replace them (writable by group or other only with
 *      the sticky bit, and then the file must be ours).
 *   3. Reads are bounded: at most TLSPOOL_FILE_MAX octets, checked from
 *      fstat and again while reading (a file may grow, /dev/zero never
 *      ends).
 *   4. A refusal is EACCES with a message naming the file, its owner (name
 *      and uid) and its mode in octal, and what is wrong.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "filetrust.h"
#include "internal.h"

static const char *kind_name(enum tlspool_file_kind kind)
{
	switch (kind) {
	case TLSPOOL_FILE_CONFIG:
		return "a configuration file";
	case TLSPOOL_FILE_PUBLIC:
		return "a certificate or trust anchor file";
	case TLSPOOL_FILE_SECRET:
		return "a private key";
	case TLSPOOL_FILE_PLUGIN:
		return "a plugin";
	case TLSPOOL_FILE_CACHE:
		break;
	}
	return "a cache file";
}

static const char *type_name(mode_t mode)
{
	if (S_ISDIR(mode))
		return "a directory";
	if (S_ISFIFO(mode))
		return "a FIFO";
	if (S_ISCHR(mode))
		return "a character device";
	if (S_ISBLK(mode))
		return "a block device";
	if (S_ISSOCK(mode))
		return "a socket";
	if (S_ISLNK(mode))
		return "a symbolic link";
	return "of an unknown type";
}

/* "PATH: owner NAME (uid N), mode 0MMM: " and then fmt. */
static void refuse(char *err, size_t errlen, const char *path,
                   const struct stat *st, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));

static void refuse(char *err, size_t errlen, const char *path,
                   const struct stat *st, const char *fmt, ...)
{
	struct passwd pw, *res = NULL;
	char buf[1024], what[256], owner[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (getpwuid_r(st->st_uid, &pw, buf, sizeof(buf), &res) == 0 &&
	    res != NULL)
		snprintf(owner, sizeof(owner), "%.100s (uid %u)", pw.pw_name,
		         (unsigned)st->st_uid);
	else
		snprintf(owner, sizeof(owner), "uid %u", (unsigned)st->st_uid);
	tp_err(err, errlen, "%s: owner %s, mode 0%03o: %s", path, owner,
	       (unsigned)(st->st_mode & 07777), what);
	errno = EACCES;
}

/* Neither root nor the effective uid? */
static int foreign_owner(const struct stat *st)
{
	return st->st_uid != 0 && st->st_uid != geteuid();
}

static void refuse_owner(char *err, size_t errlen, const char *path,
                         const struct stat *st, int ours_only)
{
	uid_t me = geteuid();

	if (ours_only || me == 0)
		refuse(err, errlen, path, st,
		       "not owned by uid %u, the effective user", (unsigned)me);
	else
		refuse(err, errlen, path, st,
		       "owned by neither root nor uid %u, the effective user",
		       (unsigned)me);
}

static int check_stat(const char *path, enum tlspool_file_kind kind,
                      const struct stat *st, char *err, size_t errlen)
{
	mode_t m = st->st_mode;

	if (!S_ISREG(m)) {
		refuse(err, errlen, path, st, "is %s, not a regular file",
		       type_name(m));
		return -1;
	}
	if (foreign_owner(st)) {
		refuse_owner(err, errlen, path, st, 0);
		return -1;
	}
	if (kind == TLSPOOL_FILE_SECRET && (m & 077) != 0) {
		refuse(err, errlen, path, st,
		       "%s by group or other; a private key must be 0600 or "
		       "stricter",
		       (m & 044)   ? "readable"
		       : (m & 022) ? "writable"
		                   : "executable");
		return -1;
	}
	if ((m & 022) != 0) {
		refuse(err, errlen, path, st,
		       "writable by group or other, which %s must not be",
		       kind_name(kind));
		return -1;
	}
	if (kind != TLSPOOL_FILE_PLUGIN && kind != TLSPOOL_FILE_CACHE &&
	    st->st_size > TLSPOOL_FILE_MAX) {
		refuse(err, errlen, path, st,
		       "%lld octets, more than the limit of 1 MiB (%d octets)",
		       (long long)st->st_size, TLSPOOL_FILE_MAX);
		return -1;
	}
	return 0;
}

int tlspool_file_open(const char *path, enum tlspool_file_kind kind,
                      struct stat *st, char *err, size_t errlen)
{
	int fd, e;

	if (path == NULL || path[0] == '\0' || kind == TLSPOOL_FILE_CACHE) {
		tp_err(err, errlen, "no file name");
		errno = EINVAL;
		return -1;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		e = errno;
		tp_err(err, errlen, "%s: %s", path, strerror(e));
		errno = e;
		return -1;
	}
	if (fstat(fd, st) != 0) {
		e = errno;
		tp_err(err, errlen, "%s: %s", path, strerror(e));
		close(fd);
		errno = e;
		return -1;
	}
	if (check_stat(path, kind, st, err, errlen) != 0) {
		close(fd);
		errno = EACCES;
		return -1;
	}
	return fd;
}

void tlspool_file_free(unsigned char *data, size_t len)
{
	if (data == NULL)
		return;
	explicit_bzero(data, len);
	free(data);
}

int tlspool_file_read(const char *path, enum tlspool_file_kind kind,
                      unsigned char **data, size_t *len, char *err,
                      size_t errlen)
{
	struct stat st;
	unsigned char *buf, *grown;
	size_t cap, n = 0;
	ssize_t r;
	int fd, e;

	*data = NULL;
	*len = 0;
	fd = tlspool_file_open(path, kind, &st, err, errlen);
	if (fd < 0)
		return -1;
	/* Room for one octet more than fstat says, to see the end. */
	cap = (size_t)st.st_size + 1;
	buf = malloc(cap + 1);
	if (buf == NULL)
		goto nomem;
	for (;;) {
		r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			e = errno;
			tp_err(err, errlen, "%s: %s", path, strerror(e));
			tlspool_file_free(buf, n);
			close(fd);
			errno = e;
			return -1;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > TLSPOOL_FILE_MAX) {
			refuse(err, errlen, path, &st,
			       "more than the limit of 1 MiB (%d octets) "
			       "when read",
			       TLSPOOL_FILE_MAX);
			tlspool_file_free(buf, n);
			close(fd);
			errno = EACCES;
			return -1;
		}
		if (n == cap) {
			/* It grew: a new buffer, the old one wiped. */
			cap = cap * 2 > TLSPOOL_FILE_MAX + 1
			              ? TLSPOOL_FILE_MAX + 1
			              : cap * 2;
			grown = malloc(cap + 1);
			if (grown == NULL) {
				tlspool_file_free(buf, n);
				goto nomem;
			}
			memcpy(grown, buf, n);
			tlspool_file_free(buf, n);
			buf = grown;
		}
	}
	close(fd);
	buf[n] = '\0';
	*data = buf;
	*len = n;
	return 0;
nomem:
	close(fd);
	tp_err(err, errlen, "%s: out of memory", path);
	errno = ENOMEM;
	return -1;
}

/* The directory part of path ("." for none) and the last component. */
static int split(const char *path, char *dir, size_t dirlen, const char **base)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL) {
		snprintf(dir, dirlen, ".");
		*base = path;
		return 0;
	}
	if ((size_t)(slash - path) + 2 > dirlen)
		return -1;
	if (slash == path) {
		strcpy(dir, "/");
	} else {
		memcpy(dir, path, (size_t)(slash - path));
		dir[slash - path] = '\0';
	}
	*base = slash + 1;
	return 0;
}

/* A system error on path: -1 with errno and err. */
static int sys_error(const char *path, char *err, size_t errlen)
{
	int e = errno;

	tp_err(err, errlen, "%s: %s", path, strerror(e));
	errno = e;
	return -1;
}

/* The cache file's directory, open, and whether others may write to it:
 * the descriptor, -1 with errno and err, or -2 refused (err says why). */
static int cache_dir(const char *path, const char *dir, const char *base,
                     int *shared, char *err, size_t errlen)
{
	struct stat dst;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (dfd < 0 || fstat(dfd, &dst) != 0) {
		sys_error(path, err, errlen);
		if (dfd >= 0) {
			int e = errno;

			close(dfd);
			errno = e;
		}
		return -1;
	}
	/* Who could replace the file?  Only root and we, or, in a sticky
	 * directory such as /tmp, nobody but the file's owner. */
	*shared = (dst.st_mode & 022) != 0;
	if (foreign_owner(&dst)) {
		refuse_owner(err, errlen, dir, &dst, 0);
	} else if (*shared && !(dst.st_mode & S_ISVTX)) {
		refuse(err, errlen, dir, &dst,
		       "writable by group or other without the sticky bit: "
		       "%.100s could be replaced",
		       base);
	} else {
		return dfd;
	}
	close(dfd);
	return -2;
}

/* The cache file as it is (st), by its own rules: 0, -1 refused. */
static int cache_file_ok(const char *path, const struct stat *st, int shared,
                         char *err, size_t errlen)
{
	if (S_ISLNK(st->st_mode)) {
		refuse(err, errlen, path, st,
		       "is a symbolic link, never followed for the cache");
		return -1;
	}
	if (check_stat(path, TLSPOOL_FILE_CACHE, st, err, errlen) != 0)
		return -1;
	if (shared && st->st_uid != geteuid()) {
		refuse_owner(err, errlen, path, st, 1);
		return -1;
	}
	return 0;
}

int tlspool_file_open_cache(const char *path, struct stat *st, char *err,
                            size_t errlen)
{
	char dir[PATH_MAX];
	const char *base;
	int dfd, fd = -1, shared = 0;

	if (path == NULL || split(path, dir, sizeof(dir), &base) != 0 ||
	    base[0] == '\0' || strcmp(base, ".") == 0 ||
	    strcmp(base, "..") == 0) {
		tp_err(err, errlen, "%s: not a file name",
		       path ? path : "(null)");
		errno = EINVAL;
		return -1;
	}
	dfd = cache_dir(path, dir, base, &shared, err, errlen);
	if (dfd == -1)
		return -1;
	if (dfd == -2) {
		errno = EACCES;
		return -1;
	}
	/* Look before opening: never open a device, FIFO or link. */
	if (fstatat(dfd, base, st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (cache_file_ok(path, st, shared, err, errlen) != 0)
			goto refused;
	} else if (errno != ENOENT) {
		goto failed;
	}
	fd = openat(dfd, base,
	            O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK |
	                    O_NOCTTY,
	            0600);
	if (fd < 0 && errno == ELOOP &&
	    fstatat(dfd, base, st, AT_SYMLINK_NOFOLLOW) == 0) {
		/* a link planted between the look and the open */
		if (cache_file_ok(path, st, shared, err, errlen) == 0)
			tp_err(err, errlen, "%s: changed while being opened",
			       path);
		goto refused;
	}
	if (fd < 0 || fstat(fd, st) != 0)
		goto failed;
	if (cache_file_ok(path, st, shared, err, errlen) != 0)
		goto refused;
	close(dfd);
	return fd;
failed:
	sys_error(path, err, errlen);
	{
		int e = errno;

		if (fd >= 0)
			close(fd);
		close(dfd);
		errno = e;
	}
	return -1;
refused:
	if (fd >= 0)
		close(fd);
	close(dfd);
	errno = EACCES;
	return -1;
}

int tlspool_file_resolve(char *out, size_t outlen, const char *base,
                         const char *path)
{
	char cwd[PATH_MAX] = "";
	const char *slash = strrchr(base, '/');
	int dirlen = slash != NULL ? (int)(slash - base) : 0, n;

	if (path[0] == '/' || path[0] == '\0') {
		n = snprintf(out, outlen, "%s", path);
	} else {
		if (base[0] != '/' && getcwd(cwd, sizeof(cwd)) == NULL)
			return -1;
		/* cwd "/" and a base without a directory: no double slash */
		n = snprintf(out, outlen, "%s%s%.*s/%s",
		             strcmp(cwd, "/") == 0 ? "" : cwd,
		             cwd[0] != '\0' && dirlen > 0 ? "/" : "", dirlen,
		             base, path);
	}
	if (n < 0 || (size_t)n >= outlen) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}
