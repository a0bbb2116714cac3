/*
 * Files the project trusts: one module opens and reads every file that
 * tlspool.conf names, and the file itself (filetrust.c, tlspool.conf(5)
 * FILES).
 *
 * Internal to the two libraries: the functions carry the tlspool_ prefix
 * only so that libtlspool, which links libtlspool-validate as a shared
 * library, can call them; they are not part of the documented API.
 */
#ifndef TLSPOOL_FILETRUST_H
#define TLSPOOL_FILETRUST_H

#include <stddef.h>
#include <sys/stat.h>

/* The most any file is read into memory: 1 MiB. */
#define TLSPOOL_FILE_MAX (1024 * 1024)

/* What a file is for; each kind has its rules (filetrust.c). */
enum tlspool_file_kind {
	TLSPOOL_FILE_CONFIG, /* tlspool.conf */
	TLSPOOL_FILE_PUBLIC, /* a certificate chain, a trust anchor */
	TLSPOOL_FILE_SECRET, /* a private key */
	TLSPOOL_FILE_PLUGIN, /* a shared object to load */
	TLSPOOL_FILE_CACHE   /* the LMDB cache file and its lock file */
};

/*
 * Open path for reading as a file of kind (not TLSPOOL_FILE_CACHE) and
 * check the descriptor: a regular file, owned by root or the effective
 * uid, not writable by group or other (a secret: no access by group or
 * other at all), at most TLSPOOL_FILE_MAX octets (not for a plugin).
 * A symbolic link is followed: the checks apply to its target.  Returns
 * the descriptor (close-on-exec) with *st filled in, or -1 with errno
 * EACCES when the file breaks a rule, else the errno of open(2), and
 * "PATH: ..." in err naming the file, its owner and its mode.
 */
int tlspool_file_open(const char *path, enum tlspool_file_kind kind,
                      struct stat *st, char *err, size_t errlen);

/*
 * tlspool_file_open(), then read the whole file into *data (allocated,
 * NUL-terminated, *len octets before the NUL).  A file that grows past
 * TLSPOOL_FILE_MAX while read is refused too (EACCES).  Free *data with
 * tlspool_file_free().  0, or -1 as tlspool_file_open (ENOMEM, EIO).
 */
int tlspool_file_read(const char *path, enum tlspool_file_kind kind,
                      unsigned char **data, size_t *len, char *err,
                      size_t errlen);

/* Wipe and free what tlspool_file_read() returned; NULL is fine. */
void tlspool_file_free(unsigned char *data, size_t len);

/*
 * Open (creating it with mode 0600 when missing) a file of the cache,
 * read-write, never following a symbolic link: it must be a regular file
 * owned by root or the effective uid and not writable by group or other,
 * in a directory owned by root or the effective uid that is not writable
 * by group or other, unless it has the sticky bit, and then the file
 * must be the effective uid's own.  Returns the descriptor (close-on-exec)
 * with *st filled in, or -1 as tlspool_file_open().
 */
int tlspool_file_open_cache(const char *path, struct stat *st, char *err,
                            size_t errlen);

/*
 * A path named in the file base, resolved against base's directory: an
 * absolute path or "" is copied; a relative one is joined to the
 * directory of base, made absolute with the current directory if base is
 * relative.  0, or -1 with errno ENAMETOOLONG (it does not fit outlen)
 * or that of getcwd().
 */
int tlspool_file_resolve(char *out, size_t outlen, const char *base,
                         const char *path);

#endif
