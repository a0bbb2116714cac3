/* Local identities: credentials from tlspool.conf and their ACL. */
#ifndef TLSPOOL_CRED_H
#define TLSPOOL_CRED_H

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>

#include "config.h"
#include "filetrust.h"

struct tp_credstore;

/*
 * The credentials of identity name: its certificate chain (or a
 * self-signed certificate made on the fly for a key alone) and its private
 * key (a file, or a pkcs11: URI), as cfg configures it.  Kept in st and
 * valid while st is.  Fails with ENOKEY (no such identity, or it has no key),
 * EACCES (the ACL does not admit this process, or a key or certificate file
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

/* Does the identity's ACL admit the calling process?  0 or -1 EACCES. */
int tp_acl_check(const struct tp_identity *id);

#endif
