/*
 * Credentials of local identities.
 *
 * An [identity NAME] section names a private key (a PEM file, or a
 * pkcs11: URI handled by GnuTLS through p11-kit, so a key in a token never
 * leaves it) and optionally a PEM certificate chain.  Without a chain a
 * self-signed certificate is made on the fly whose subject and
 * subjectAltName name the identity (docs/architecture.md, "Identities"):
 * DANE-EE "3 1 x" records bind the key, so the certificate around it need not
 * be stable.
 *
 * The ACL (allow_users, allow_groups) is checked on every use, before the
 * key is touched: against the effective user and the groups of the
 * calling process, or in tlspoold against the caller's peer credentials
 * (tp_cred_act_for()).
 */
#include <errno.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cred.h"
#include "filetrust.h"

/* Credentials made once per identity and kept for the runtime's life:
 * relayed sessions use them until they end (GnuTLS needs credentials to
 * outlive their sessions). */
struct cred_cache {
	size_t n;
	struct {
		char name[256];
		gnutls_certificate_credentials_t creds;
	} e[];
};

struct tp_credstore {
	pthread_mutex_t lock;
	struct cred_cache *c;
};

/* The caller tlspoold acts for in this thread, or NULL (cred.h). */
static _Thread_local const struct tp_caller *acting;

void tp_cred_act_for(const struct tp_caller *who)
{
	acting = who;
}

/* The calling process, as an ACL sees it. */
static void this_process(struct tp_caller *me)
{
	int ng;

	me->uid = geteuid();
	me->gid = getegid();
	ng = getgroups(TP_MAX_GROUPS, me->groups);
	me->ngroups = ng > 0 ? (size_t)ng : 0;
}

int tp_acl_check(const struct tp_identity *id, const struct tp_caller *who)
{
	struct tp_caller me;
	const struct tp_caller *c = who;
	size_t k, i;

	if (!id->acl && who == NULL)
		return 0;
	if (!id->acl) {
		/* Through the pool the key's file no longer keeps anyone
		 * out: only root and the daemon's own user pass. */
		if (who->uid == 0 || who->uid == geteuid())
			return 0;
		return tp_fail(EACCES,
		               "%s: no allow_users or allow_groups: through "
		               "tlspoold only root may use it, not uid %u",
		               id->name, (unsigned)who->uid);
	}
	if (c == NULL) {
		this_process(&me);
		c = &me;
	}
	for (k = 0; k < id->nuids; k++)
		if (id->uids[k] == c->uid)
			return 0;
	for (k = 0; k < id->ngids; k++) {
		if (id->gids[k] == c->gid)
			return 0;
		for (i = 0; i < c->ngroups && i < TP_MAX_GROUPS; i++)
			if (id->gids[k] == c->groups[i])
				return 0;
	}
	return tp_fail(EACCES,
	               "%s: the ACL (allow_users, allow_groups) does not "
	               "admit uid %u",
	               id->name, (unsigned)c->uid);
}

/*
 * A file of an identity through the file-trust module (filetrust.c).  A
 * file that breaks its rules (owner, mode, type, size) is EACCES, class
 * STARTTLS_ERR_ACCESS; one that cannot be read at all (missing, say) is
 * EINVAL like any other unusable key or certificate.
 */
int tp_cred_read(const struct tp_identity *id, const char *what,
                 const char *path, enum tlspool_file_kind kind,
                 unsigned char **data, size_t *len)
{
	char err[400];

	if (tlspool_file_read(path, kind, data, len, err, sizeof(err)) == 0)
		return 0;
	if (errno == EACCES)
		return tp_failc(EACCES, STARTTLS_ERR_ACCESS, "%s: %s %s",
		                id->name, what, err);
	if (errno == ENOMEM)
		return tp_fail(ENOMEM, "%s: %s %s", id->name, what, err);
	return tp_fail(EINVAL, "%s: %s %s", id->name, what, err);
}

static int load_key(const struct tp_identity *id, gnutls_privkey_t *out)
{
	gnutls_privkey_t key = NULL;
	unsigned char *bytes = NULL;
	size_t len = 0;
	int token = strncmp(id->key, "pkcs11:", 7) == 0, r;

	if (id->key[0] == '\0' && id->openpgp_key[0] != '\0')
		return tp_openpgp_privkey(id, out);
	if (!token && tp_cred_read(id, "key", id->key, TLSPOOL_FILE_SECRET,
	                           &bytes, &len) != 0)
		return -1;
	if ((r = gnutls_privkey_init(&key)) >= 0) {
		if (token) {
			r = gnutls_privkey_import_url(key, id->key, 0);
		} else {
			gnutls_datum_t data = {bytes, (unsigned)len};

			r = gnutls_privkey_import_x509_raw(
			        key, &data, GNUTLS_X509_FMT_PEM, NULL, 0);
			if (r < 0)
				r = gnutls_privkey_import_x509_raw(
				        key, &data, GNUTLS_X509_FMT_DER, NULL,
				        0);
		}
	}
	/* the key's bytes are a secret: wiped before freeing */
	tlspool_file_free(bytes, len);
	if (r < 0) {
		gnutls_privkey_deinit(key);
		return tp_fail(EINVAL, "%s: key %s: %s", id->name, id->key,
		               gnutls_strerror(r));
	}
	*out = key;
	return 0;
}

/*
 * The public half of a key.  A key in a PKCS#11 token may not expose it
 * through the private key object (EC keys often do not); then the
 * token's public key object of the same URI is used.
 */
static int public_key(const struct tp_identity *id, gnutls_privkey_t key,
                      gnutls_pubkey_t pub)
{
	char url[PATH_MAX + 16], *t;
	int r = gnutls_pubkey_import_privkey(pub, key, 0, 0);

	if (r >= 0 || strncmp(id->key, "pkcs11:", 7) != 0)
		return r;
	snprintf(url, sizeof(url), "%s", id->key);
	t = strstr(url, "type=private");
	if (t != NULL) {
		/* "type=private" -> "type=public", one octet shorter */
		memcpy(t, "type=public", 11);
		memmove(t + 11, t + 12, strlen(t + 12) + 1);
	}
	return gnutls_pubkey_import_url(pub, url, 0);
}

/* Add the RDNs of docs/architecture.md, "Identities", most general first:
 * dc=test, dc=example, dc=www (then uid= for a user), so that the DN reads
 * "UID=john,DC=example,DC=test" in RFC 4514 order. */
static int set_identity_dn(gnutls_x509_crt_t crt, const char *name)
{
	const char *at = strrchr(name, '@'), *dom = at ? at + 1 : name;
	const char *end = dom + strlen(dom);
	int r;

	if (end > dom && end[-1] == '.')
		end--;
	while (end > dom) {
		const char *label = end;

		while (label > dom && label[-1] != '.')
			label--;
		r = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_LDAP_DC, 0,
		                                  label,
		                                  (unsigned)(end - label));
		if (r < 0)
			return r;
		end = label > dom ? label - 1 : dom;
	}
	if (at != NULL)
		return gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_LDAP_UID,
		                                     0, name,
		                                     (unsigned)(at - name));
	return 0;
}

/* A self-signed certificate for key, naming the identity. */
static int self_signed(const struct tp_identity *id, gnutls_privkey_t key,
                       gnutls_pcert_st *pcert)
{
	gnutls_x509_crt_t crt = NULL;
	gnutls_pubkey_t pub = NULL;
	unsigned char serial[16];
	const char *at = strrchr(id->name, '@');
	gnutls_digest_algorithm_t dig = GNUTLS_DIG_SHA256;
	time_t now = time(NULL);
	int r;

	if ((r = gnutls_x509_crt_init(&crt)) < 0 ||
	    (r = gnutls_pubkey_init(&pub)) < 0 ||
	    (r = public_key(id, key, pub)) < 0 ||
	    (r = gnutls_x509_crt_set_pubkey(crt, pub)) < 0 ||
	    (r = gnutls_x509_crt_set_version(crt, 3)) < 0 ||
	    (r = gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial))) < 0)
		goto out;
	serial[0] &= 0x7f; /* a positive INTEGER (RFC 5280 section 4.1.2.2) */
	/* Ed25519 signs with its own hash (RFC 8410): ask the key */
	if (gnutls_pubkey_get_pk_algorithm(pub, NULL) ==
	    GNUTLS_PK_EDDSA_ED25519)
		dig = GNUTLS_DIG_SHA512;
	if ((r = gnutls_x509_crt_set_serial(crt, serial, sizeof(serial))) < 0 ||
	    (r = gnutls_x509_crt_set_activation_time(crt, now - 3600)) < 0 ||
	    (r = gnutls_x509_crt_set_expiration_time(crt, now + 365 * 86400)) <
	            0 ||
	    (r = set_identity_dn(crt, id->name)) < 0 ||
	    (r = gnutls_x509_crt_set_subject_alt_name(
	             crt, at ? GNUTLS_SAN_RFC822NAME : GNUTLS_SAN_DNSNAME,
	             id->name, (unsigned)strlen(id->name), GNUTLS_FSAN_SET)) <
	            0 ||
	    (r = gnutls_x509_crt_set_basic_constraints(crt, 0, -1)) < 0 ||
	    (r = gnutls_x509_crt_set_key_usage(
	             crt, GNUTLS_KEY_DIGITAL_SIGNATURE)) < 0 ||
	    (r = gnutls_x509_crt_privkey_sign(crt, crt, key, dig, 0)) < 0 ||
	    (r = gnutls_pcert_import_x509(pcert, crt, 0)) < 0)
		goto out;
out:
	gnutls_pubkey_deinit(pub);
	gnutls_x509_crt_deinit(crt);
	if (r < 0)
		return tp_fail(EINVAL, "%s: cannot make a certificate: %s",
		               id->name, gnutls_strerror(r));
	return 0;
}

static int make_creds(const struct tp_identity *id,
                      gnutls_certificate_credentials_t *out)
{
	gnutls_certificate_credentials_t creds = NULL;
	gnutls_privkey_t key = NULL;
	gnutls_pcert_st *pcerts = NULL;
	unsigned npcerts = 0, i;
	int r;

	if (load_key(id, &key) != 0)
		return -1;
	if (id->certificate[0] != '\0') {
		unsigned char *bytes;
		size_t len;

		if (tp_cred_read(id, "certificate", id->certificate,
		                 TLSPOOL_FILE_PUBLIC, &bytes, &len) != 0) {
			gnutls_privkey_deinit(key);
			return -1;
		}
		npcerts = 16;
		pcerts = gnutls_calloc(npcerts, sizeof(*pcerts));
		if (pcerts == NULL) {
			r = GNUTLS_E_MEMORY_ERROR;
		} else {
			gnutls_datum_t data = {bytes, (unsigned)len};

			r = gnutls_pcert_list_import_x509_raw(
			        pcerts, &npcerts, &data, GNUTLS_X509_FMT_PEM,
			        0);
		}
		tlspool_file_free(bytes, len);
		if (r < 0) {
			gnutls_free(pcerts);
			gnutls_privkey_deinit(key);
			return tp_fail(EINVAL, "%s: certificate %s: %s",
			               id->name, id->certificate,
			               gnutls_strerror(r));
		}
	} else {
		pcerts = gnutls_calloc(1, sizeof(*pcerts));
		if (pcerts == NULL || self_signed(id, key, pcerts) != 0) {
			gnutls_free(pcerts);
			gnutls_privkey_deinit(key);
			return pcerts == NULL ? tp_fail(ENOMEM, "out of memory")
			                      : -1;
		}
		npcerts = 1;
	}
	if ((r = gnutls_certificate_allocate_credentials(&creds)) < 0)
		goto fail;
	/* Takes ownership of the key and the certificates; it also checks
	 * that they belong together. */
	r = gnutls_certificate_set_key(creds, NULL, 0, pcerts, (int)npcerts,
	                               key);
	if (r < 0)
		goto fail;
	gnutls_free(pcerts); /* the array only: its contents moved */
	*out = creds;
	return 0;
fail:
	gnutls_certificate_free_credentials(creds);
	for (i = 0; i < npcerts; i++)
		gnutls_pcert_deinit(&pcerts[i]);
	gnutls_free(pcerts);
	gnutls_privkey_deinit(key);
	return tp_fail(EINVAL, "%s: %s", id->name, gnutls_strerror(r));
}

struct tp_credstore *tp_credstore_new(void)
{
	struct tp_credstore *st = calloc(1, sizeof(*st));

	if (st != NULL)
		pthread_mutex_init(&st->lock, NULL);
	return st;
}

void tp_credstore_free(struct tp_credstore *st)
{
	struct cred_cache *c;
	size_t i;

	if (st == NULL)
		return;
	c = st->c;
	for (i = 0; c != NULL && i < c->n; i++)
		gnutls_certificate_free_credentials(c->e[i].creds);
	free(c);
	pthread_mutex_destroy(&st->lock);
	free(st);
}

/* The cached credentials called name ("" for the anonymous ones), or a
 * new slot for them; st->lock held. */
static gnutls_certificate_credentials_t *
cache_slot(struct tp_credstore *st, const char *name, int *fresh)
{
	struct cred_cache *c = st->c, *grown;
	size_t i;

	for (i = 0; c != NULL && i < c->n; i++)
		if (strcasecmp(c->e[i].name, name) == 0) {
			*fresh = 0;
			return &c->e[i].creds;
		}
	grown = realloc(c, sizeof(*c) + ((c ? c->n : 0) + 1) * sizeof(c->e[0]));
	if (grown == NULL)
		return NULL;
	if (c == NULL)
		grown->n = 0;
	st->c = c = grown;
	snprintf(c->e[c->n].name, sizeof(c->e[c->n].name), "%s", name);
	c->e[c->n].creds = NULL;
	*fresh = 1;
	return &c->e[c->n].creds;
}

/* A fresh slot that stayed empty is given back. */
static void cache_commit(struct tp_credstore *st)
{
	struct cred_cache *c = st->c;

	if (c->e[c->n].creds != NULL)
		c->n++;
}

int tp_cred_anonymous(struct tp_credstore *st,
                      gnutls_certificate_credentials_t *out)
{
	gnutls_certificate_credentials_t *slot;
	int fresh;

	pthread_mutex_lock(&st->lock);
	slot = cache_slot(st, "", &fresh);
	if (slot == NULL) {
		pthread_mutex_unlock(&st->lock);
		return tp_fail(ENOMEM, "out of memory");
	}
	if (fresh) {
		if (gnutls_certificate_allocate_credentials(slot) < 0)
			*slot = NULL;
		cache_commit(st);
	}
	*out = *slot;
	pthread_mutex_unlock(&st->lock);
	if (*out == NULL)
		return tp_fail(ENOMEM, "out of memory");
	return 0;
}

int tp_cred_get(struct tp_credstore *st, const struct tp_config *cfg,
                const char *name, gnutls_certificate_credentials_t *out)
{
	const struct tp_identity *id = tp_config_identity(cfg, name);
	gnutls_certificate_credentials_t *slot;
	int fresh, rv = -1;

	if (id == NULL)
		return tp_fail(ENOKEY, "%s: no [identity %s] in %s", name, name,
		               cfg->path);
	if (id->key[0] == '\0' && id->openpgp_key[0] == '\0')
		return tp_fail(ENOKEY, "%s: [identity %s] has no key", name,
		               name);
	if (tp_acl_check(id, acting) != 0)
		return -1;
	pthread_mutex_lock(&st->lock);
	slot = cache_slot(st, id->name, &fresh);
	if (slot == NULL) {
		tp_fail(ENOMEM, "out of memory");
	} else if (!fresh) {
		*out = *slot;
		rv = 0;
	} else {
		if (make_creds(id, slot) != 0)
			*slot = NULL;
		cache_commit(st);
		if (*slot != NULL) {
			*out = *slot;
			rv = 0;
		}
	}
	pthread_mutex_unlock(&st->lock);
	return rv;
}
