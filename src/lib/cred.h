/* Local identities: credentials from tlspool.conf and their ACL. */
#ifndef TLSPOOL_CRED_H
#define TLSPOOL_CRED_H

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <sys/types.h>

#include "config.h"
#include "filetrust.h"

struct tp_credstore;

/*
 * The credentials of identity name: its certificate chain (or a
 * self-signed certificate made on the fly for a key alone) and its private
 * key (a file, or a pkcs11: URI), as cfg configures it.  Kept in st and
 * valid while st is.  Fails with ENOKEY (no such identity, or it has no key),
 * EACCES (the ACL does not admit this process, or the caller tlspoold acts
 * for (tp_cred_act_for()), or a key or certificate file
 * breaks the file rules of filetrust.c: owner, mode, type, size) or
 * EINVAL (unusable key or certificate), recording the detail with
 * tp_fail().
 */
int tp_cred_get(struct tp_credstore *st, const struct tp_config *cfg,
                const char *name, gnutls_certificate_credentials_t *out);

/* Credentials without a key, for a client with no local identity: they
 * let GnuTLS take the peer's certificate.  Kept in st. */
int tp_cred_anonymous(struct tp_credstore *st,
                      gnutls_certificate_credentials_t *out);

/* The credentials made for one runtime (runtime.h), freed with it. */
struct tp_credstore *tp_credstore_new(void);     /* NULL: ENOMEM */
void tp_credstore_free(struct tp_credstore *st); /* NULL accepted */

/* The private key of an identity's openpgp_key (openpgp_key.c): an
 * unprotected gpg --export-secret-keys export.  0, or -1 with EINVAL, or
 * EACCES for a file that breaks the rules of a private key. */
int tp_openpgp_privkey(const struct tp_identity *id, gnutls_privkey_t *out);

/* Read an identity's file (what: "key", "certificate", "openpgp_key")
 * through the file-trust module: 0, or -1 with tp_fail(): EACCES for a
 * file that breaks its rules, else EINVAL (ENOMEM).  Free *data with
 * tlspool_file_free(). */
int tp_cred_read(const struct tp_identity *id, const char *what,
                 const char *path, enum tlspool_file_kind kind,
                 unsigned char **data, size_t *len);

/* The most supplementary groups an ACL check looks at. */
#define TP_MAX_GROUPS 256

/* Whose use of a key the ACL judges: user, group and supplementary
 * groups (at most TP_MAX_GROUPS of them: one left out can only make the
 * check fail). */
struct tp_caller {
	uid_t uid;
	gid_t gid;
	size_t ngroups;
	gid_t groups[TP_MAX_GROUPS];
};

/*
 * Does the identity's ACL (allow_users, allow_groups) admit who?  who
 * NULL is the calling process (its effective user and group IDs and its
 * supplementary groups), and an identity without an ACL admits it.  A
 * caller of tlspoold (who given) must be named: an identity without an
 * ACL admits only root and the daemon's own user through the pool
 * (tlspoold(8)).  0, or -1 with EACCES and a detail.
 */
int tp_acl_check(const struct tp_identity *id, const struct tp_caller *who);

/*
 * tlspoold acts for a caller: until it is set back to NULL, the calling
 * thread's tp_cred_get() checks the ACL against who (the peer credentials
 * of the caller's Unix socket) instead of the process's own.  who must
 * stay valid while it is set.
 */
void tp_cred_act_for(const struct tp_caller *who);

#endif
