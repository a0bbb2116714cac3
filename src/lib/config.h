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

#define TP_MAX_ACL 32

struct tp_identity {
	char name[256];             /* domain or user@domain */
	char certificate[PATH_MAX]; /* PEM chain; empty: made on the fly */
	char key[PATH_MAX];         /* file or pkcs11: URI */
	char openpgp_key[PATH_MAX];
	int acl; /* allow_users or allow_groups given */
	unsigned uids[TP_MAX_ACL], gids[TP_MAX_ACL];
	size_t nuids, ngids;
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
	unsigned handshake_timeout_ms, relay_threads, dtls_idle_timeout_ms;
	int pkix_fallback;
	int cache_backend; /* enum tp_cache_backend, never 0 once loaded */
	char cache_path[PATH_MAX];
	unsigned max_ttl, negative_ttl;
	struct tp_redis_conf redis; /* backend = redis */
	char authz_plugin[PATH_MAX], authz_config[PATH_MAX];
	struct tp_identity *ids;
	size_t nids;
	struct tp_pool_conf pool;
};

/* Load path; with may_be_missing a missing file gives the defaults. */
int tp_config_load(const char *path, int may_be_missing, struct tp_config **out,
                   char *err, size_t errlen);

void tp_config_free(struct tp_config *cfg); /* NULL accepted */

/* The configured identity of that name (case-insensitive), or NULL. */
const struct tp_identity *tp_config_identity(const struct tp_config *cfg,
                                             const char *name);

/* domain or user@domain; 0 or -1 with EINVAL. */
int tp_check_identity(const char *name);

#endif
