/* The configuration of libtlspool (tlspool.conf, all sections), as
 * parsed: never changed after tp_config_load().  What is made from it at
 * run time belongs to its runtime (runtime.h). */
#ifndef TLSPOOL_CONFIG_H
#define TLSPOOL_CONFIG_H

#include <limits.h>
#include <pthread.h>
#include <sys/types.h>
#include <time.h>

#include "cache.h"
#include "lib.h"

#define TP_MAX_ACL  32
#define TP_MAX_ALPN 8

struct tp_identity {
	char name[256];             /* domain or user@domain */
	char certificate[PATH_MAX]; /* PEM chain; empty: made on the fly */
	char key[PATH_MAX];         /* file or pkcs11: URI */
	char openpgp_key[PATH_MAX];
	int acl; /* allow_users or allow_groups given */
	unsigned uids[TP_MAX_ACL], gids[TP_MAX_ACL];
	size_t nuids, ngids;
};

/* The sources of [validation] sources and domain_sources, in the order
 * they are tried (docs/architecture.md, "Authenticating a peer"). */
enum tp_source {
	TP_SRC_OPENPGPKEY = 1, /* RFC 7929, users */
	TP_SRC_SMIMEA = 2,     /* RFC 8162, users */
	TP_SRC_TLSA = 3,       /* RFC 6698, domains */
	TP_SRC_LDAP = 4,       /* the domain's directory (ldapcheck.h) */
};
#define TP_MAX_SOURCES 4

/* [ldap]: the directory that holds a domain's certificates and keys. */
struct tp_ldap_conf {
	char host[256];          /* [ldap] server's host, "" find it by SRV */
	unsigned port;           /* its port */
	int ldaps;               /* ldaps:// (else StartTLS on ldap://) */
	char base[256];          /* the search base; "": dc= of the domain */
	char filter[200];        /* for user@domain: %s %u %d are replaced */
	char domain_filter[200]; /* for a domain */
	unsigned timeout_ms; /* the whole step, when no deadline is shorter */
};

/* [pool]: tlspoold(8), and the library's hand-over to it (pool.h). */
struct tp_pool_conf {
	char socket[108]; /* a sun_path; "": calls run in the process */
	char user[64];    /* the daemon's user; "": "tlspool" */
	unsigned threads; /* the daemon's handshake workers */
	/* who may pass STARTTLS_NO_AUTHZ through the pool */
	unsigned no_authz_uids[TP_MAX_ACL], no_authz_gids[TP_MAX_ACL];
	size_t no_authz_nuids, no_authz_ngids;
	char pin_file[PATH_MAX]; /* PKCS#11 PIN for the daemon, or "" */
};

struct tp_config {
	char path[PATH_MAX];
	int present;           /* the file existed when loaded */
	struct timespec mtime; /* its modification time and size then */
	off_t size;
	tlspool_dns_config *dns;
	char priority[256];
	char alpn[256]; /* [tls] alpn: protocol names, "" none (RFC 7301) */
	unsigned handshake_timeout_ms, relay_threads, dtls_idle_timeout_ms;
	int pkix_fallback;
	unsigned char sources[TP_MAX_SOURCES]; /* enum tp_source, users */
	size_t nsources;
	unsigned char domain_sources[TP_MAX_SOURCES]; /* domains */
	size_t ndomain_sources;
	struct tp_ldap_conf ldap;
	int cache_backend; /* enum tp_cache_backend, never 0 once loaded */
	int dane_ee_name_checks; /* TLSPOOL_DANE_EE_NAME_CHECKS */
	char cache_path[PATH_MAX];
	unsigned max_ttl, negative_ttl;
	struct tp_redis_conf redis; /* backend = redis */
	char authz_plugin[PATH_MAX], authz_config[PATH_MAX];
	struct tp_identity *ids;
	size_t nids;
	struct tp_pool_conf pool;
	/* while loading only: the caller's "SECTION.KEY=VALUE" overrides,
	 * and whether one is being applied (its paths are the caller's) */
	const char *const *overrides;
	int overriding;
};

/* Load path; with may_be_missing a missing file gives the defaults. */
int tp_config_load(const char *path, int may_be_missing, struct tp_config **out,
                   char *err, size_t errlen);

/* The same, then overrides ("SECTION.KEY=VALUE", NULL-terminated):
 * the file's lines of an overridden key are skipped, and each override
 * goes through the section's reader as a line of the file would (a
 * relative path against the current directory).  A repeatable key
 * (upstream) overridden takes the overrides' values only. */
int tp_config_load_with(const char *path, int may_be_missing,
                        const char *const *overrides, struct tp_config **out,
                        char *err, size_t errlen);

void tp_config_free(struct tp_config *cfg); /* NULL accepted */

/* The configured identity of that name (case-insensitive), or NULL. */
const struct tp_identity *tp_config_identity(const struct tp_config *cfg,
                                             const char *name);

/* domain or user@domain; 0 or -1 with EINVAL. */
int tp_check_identity(const char *name);

#endif
