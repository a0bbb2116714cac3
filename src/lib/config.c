/*
 * tlspool.conf for libtlspool: every section (the [dns] keys are handed
 * to libtlspool-validate, which owns their meaning).
 *
 * Parsing only: the result never changes afterwards.  runtime.c shares
 * it between calls and reads it again when the file changes; a file that
 * fails to load is an error for the call, never a silent fallback.
 */
#include <errno.h>
#include <stdarg.h>
#include <strings.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache_redis.h"
#include "config.h"
#include "filetrust.h"
#include "ldapcheck.h"

#define TP_MAX_IDENTITIES 256

static unsigned long to_ulong(const char *s, unsigned long min,
                              unsigned long max, int *bad)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (*s < '0' || *s > '9' || errno || *end || v < min || v > max)
		*bad = 1;
	return v;
}

static int yes_no(const char *s, int *bad)
{
	if (strcmp(s, "yes") == 0 || strcmp(s, "true") == 0 ||
	    strcmp(s, "1") == 0)
		return 1;
	if (strcmp(s, "no") == 0 || strcmp(s, "false") == 0 ||
	    strcmp(s, "0") == 0)
		return 0;
	*bad = 1;
	return 0;
}

static int copy_path(char *dst, size_t len, const char *v, int *bad)
{
	if (strlen(v) >= len)
		*bad = 1;
	else
		strcpy(dst, v);
	return 0;
}

/* A path named in the file: a relative one is resolved against the
 * directory of the file, never the current directory. */
static void file_path(const struct tp_config *c, char *dst, size_t len,
                      const char *v, int *bad)
{
	char cwd[PATH_MAX], base[PATH_MAX + 2];

	/* an override's path is the caller's: against the current
	 * directory (the directory of a file in it) */
	if (c->overriding) {
		if (getcwd(cwd, sizeof(cwd)) == NULL) {
			*bad = 1;
			return;
		}
		snprintf(base, sizeof(base), "%s/-",
		         strcmp(cwd, "/") ? cwd : "");
	}
	if (tlspool_file_resolve(dst, len, c->overriding ? base : c->path, v) !=
	    0)
		*bad = 1;
}

/* Is name (as asked, perhaps with a final dot) the identity canon (as
 * stored, without)?  Case-insensitive. */
static int same_identity(const char *canon, const char *name)
{
	size_t n = strlen(name);

	if (n > 0 && name[n - 1] == '.')
		n--;
	return strlen(canon) == n && strncasecmp(canon, name, n) == 0;
}

static struct tp_identity *identity(struct tp_config *cfg, const char *name)
{
	struct tp_identity *grown;
	size_t i, n = strlen(name);

	for (i = 0; i < cfg->nids; i++)
		if (same_identity(cfg->ids[i].name, name))
			return &cfg->ids[i];
	if (cfg->nids == TP_MAX_IDENTITIES)
		return NULL;
	grown = realloc(cfg->ids, (cfg->nids + 1) * sizeof(*grown));
	if (grown == NULL)
		return NULL;
	cfg->ids = grown;
	memset(&grown[cfg->nids], 0, sizeof(*grown));
	/* stored without the final dot: www.example.test. is
	 * www.example.test */
	if (n > 0 && name[n - 1] == '.')
		n--;
	snprintf(grown[cfg->nids].name, sizeof(grown[cfg->nids].name), "%.*s",
	         (int)n, name);
	return &grown[cfg->nids++];
}

/* allow_users / allow_groups (and [pool]'s allow_no_authz_*): names or
 * numbers, separated by spaces, tabs or commas, added to list. */
static int add_ids(unsigned *list, size_t *count, const char *value, int groups,
                   char *bad, size_t badlen)
{
	char *copy = strdup(value), *tok, *save = NULL;
	int rv = 0;

	if (copy == NULL)
		return -1;
	for (tok = strtok_r(copy, " \t,", &save); tok != NULL;
	     tok = strtok_r(NULL, " \t,", &save)) {
		unsigned long n;
		char *end;

		errno = 0;
		n = strtoul(tok, &end, 10);
		if (*tok >= '0' && *tok <= '9' && !errno && !*end) {
			/* a number */
		} else if (groups) {
			struct group *g = getgrnam(tok);

			if (g == NULL)
				goto unknown;
			n = g->gr_gid;
		} else {
			struct passwd *p = getpwnam(tok);

			if (p == NULL)
				goto unknown;
			n = p->pw_uid;
		}
		if (*count == TP_MAX_ACL) {
			snprintf(bad, badlen, "(more than %d entries)",
			         TP_MAX_ACL);
			rv = 1;
			break;
		}
		list[(*count)++] = (unsigned)n;
		continue;
	unknown:
		snprintf(bad, badlen, "%s", tok);
		rv = 1;
		break;
	}
	free(copy);
	return rv;
}

/* The result of add_ids() as the entry's answer: 0, or -1 with msg. */
static int ids_entry(unsigned *list, size_t *count, const char *key,
                     const char *value, char *msg, size_t msglen)
{
	char who[64];
	int r;

	if (value[0] == '\0') {
		snprintf(msg, msglen, "%s: bad value \"\"", key);
		return -1;
	}
	r = add_ids(list, count, value, strstr(key, "groups") != NULL, who,
	            sizeof(who));
	if (r > 0)
		snprintf(msg, msglen, "%s: no such user or group \"%s\"", key,
		         who);
	return r == 0 ? 0 : -1;
}

/* A printable word without spaces: a Redis user name, a key prefix. */
static void copy_word(char *dst, size_t len, const char *v, int *bad)
{
	for (const char *p = v; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			*bad = 1;
	copy_path(dst, len, v, bad);
}

/* [validation] sources and domain_sources: words of allowed, each once,
 * in the order they are tried. */
static void source_list(unsigned char *list, size_t *n, const char *v,
                        int domain, int *bad)
{
	static const struct {
		const char *word;
		enum tp_source src;
		int domain; /* -1 users, 1 domains, 0 both */
	} words[] = {
	        {"openpgpkey", TP_SRC_OPENPGPKEY, -1},
	        {"smimea", TP_SRC_SMIMEA, -1},
	        {"tlsa", TP_SRC_TLSA, 1},
	        {"ldap", TP_SRC_LDAP, 0},
	};
	const char *p = v;

	*n = 0;
	while (*p != '\0') {
		size_t len = strcspn(p, " \t,"), i, j;

		for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
			if (strlen(words[i].word) == len &&
			    strncmp(p, words[i].word, len) == 0 &&
			    words[i].domain != (domain ? -1 : 1))
				break;
		if (len > 0) {
			if (i == sizeof(words) / sizeof(words[0]) ||
			    *n == TP_MAX_SOURCES) {
				*bad = 1;
				return;
			}
			for (j = 0; j < *n; j++)
				if (list[j] == words[i].src)
					*bad = 1; /* named twice */
			list[(*n)++] = (unsigned char)words[i].src;
		}
		p += len;
		p += strspn(p, " \t,");
	}
	if (*n == 0)
		*bad = 1;
}

/* [ldap] server = ldap://HOST[:PORT] (StartTLS, RFC 4511 section 4.14)
 * or ldaps://HOST[:PORT]: a host name, since its TLSA record is at
 * _PORT._tcp.HOST. */
static void ldap_server(struct tp_ldap_conf *l, const char *v, int *bad)
{
	const char *host, *colon;
	size_t hlen;

	if (strncmp(v, "ldap://", 7) == 0) {
		l->ldaps = 0;
		host = v + 7;
	} else if (strncmp(v, "ldaps://", 8) == 0) {
		l->ldaps = 1;
		host = v + 8;
	} else {
		*bad = 1;
		return;
	}
	hlen = strcspn(host, ":/");
	colon = host[hlen] == ':' ? host + hlen : NULL;
	if (hlen == 0 || hlen >= sizeof(l->host)) {
		*bad = 1;
		return;
	}
	memcpy(l->host, host, hlen);
	l->host[hlen] = '\0';
	l->port = l->ldaps ? 636 : 389;
	if (colon != NULL) {
		char port[8];
		size_t plen = strcspn(colon + 1, "/");

		if (plen == 0 || plen >= sizeof(port)) {
			*bad = 1;
			return;
		}
		memcpy(port, colon + 1, plen);
		port[plen] = '\0';
		l->port = (unsigned)to_ulong(port, 1, 65535, bad);
		colon += 1 + plen;
	} else {
		colon = host + hlen;
	}
	/* a name, not an address: the last label is not all digits */
	hlen = strlen(l->host);
	while (hlen > 0 && l->host[hlen - 1] >= '0' && l->host[hlen - 1] <= '9')
		hlen--;
	if ((*colon != '\0' && strcmp(colon, "/") != 0) ||
	    tlspool_check_domain(l->host, 0) != 0 || hlen == 0 ||
	    l->host[hlen - 1] == '.')
		*bad = 1;
}

/* A filter template (RFC 4515 with %s, %u, %d, %%): parenthesised and
 * balanced, no other %, no control characters. */
static void ldap_filter(char *dst, size_t len, const char *v, int *bad)
{
	int depth = 0;

	if (v[0] != '(')
		*bad = 1;
	for (const char *p = v; *p && !*bad; p++) {
		if ((unsigned char)*p < ' ' || *p == 0x7f)
			*bad = 1;
		else if (*p == '(')
			depth++;
		else if (*p == ')' && --depth < 0)
			*bad = 1;
		else if (*p == ')' && depth == 0 && p[1] != '\0')
			*bad = 1;
		else if (*p == '%' && strchr("sud%", p[1]) == NULL)
			*bad = 1;
		else if (*p == '%')
			p++;
	}
	if (depth != 0)
		*bad = 1;
	copy_path(dst, len, v, bad);
}

static int ldap_key(struct tp_config *c, const char *key, const char *value,
                    int *bad)
{
	struct tp_ldap_conf *l = &c->ldap;

	if (strcmp(key, "server") == 0)
		ldap_server(l, value, bad);
	else if (strcmp(key, "base") == 0) {
		copy_path(l->base, sizeof(l->base), value, bad);
		if (!*bad && tp_ldap_valid_dn(value) != 0)
			*bad = 1;
	} else if (strcmp(key, "filter") == 0)
		ldap_filter(l->filter, sizeof(l->filter), value, bad);
	else if (strcmp(key, "domain_filter") == 0)
		ldap_filter(l->domain_filter, sizeof(l->domain_filter), value,
		            bad);
	else if (strcmp(key, "timeout_ms") == 0)
		l->timeout_ms = to_ulong(value, 1, 600000, bad);
	else
		return -1;
	return 0;
}

/* The [cache] keys of the backends: 0, or -1 for an unknown key. */
static int cache_key(struct tp_config *c, const char *key, const char *value,
                     int *bad)
{
	struct tp_redis_conf *r = &c->redis;

	if (strcmp(key, "backend") == 0) {
		if (strcmp(value, "memory") == 0)
			c->cache_backend = TP_CACHE_MEMORY;
		else if (strcmp(value, "lmdb") == 0)
			c->cache_backend = TP_CACHE_LMDB;
		else if (strcmp(value, "redis") == 0)
			c->cache_backend = TP_CACHE_REDIS;
		else
			*bad = 1;
	} else if (strcmp(key, "redis") == 0) {
		char path[PATH_MAX];

		/* unix:PATH, a relative PATH against the file's directory */
		if (strncmp(value, "unix:", 5) == 0 && value[5] != '\0') {
			file_path(c, path, sizeof(path), value + 5, bad);
			if (snprintf(r->addr, sizeof(r->addr), "unix:%s",
			             path) >= (int)sizeof(r->addr))
				*bad = 1;
		} else {
			copy_path(r->addr, sizeof(r->addr), value, bad);
		}
		if (!*bad && tp_redis_addr(r->addr, NULL, NULL) != 0)
			*bad = 1;
	} else if (strcmp(key, "redis_user") == 0) {
		copy_word(r->user, sizeof(r->user), value, bad);
	} else if (strcmp(key, "redis_password_file") == 0) {
		file_path(c, r->password_file, sizeof(r->password_file), value,
		          bad);
	} else if (strcmp(key, "prefix") == 0) {
		copy_word(r->prefix, sizeof(r->prefix), value, bad);
	} else if (strcmp(key, "key_file") == 0) {
		file_path(c, r->key_file, sizeof(r->key_file), value, bad);
	} else if (strcmp(key, "redis_timeout_ms") == 0) {
		r->timeout_ms = to_ulong(value, 1, 60000, bad);
	} else if (strcmp(key, "redis_local_ttl_ms") == 0) {
		r->local_ttl_ms = to_ulong(value, 0, 60000, bad);
	} else if (strcmp(key, "redis_tls") == 0) {
		r->tls = yes_no(value, bad);
	} else if (strcmp(key, "redis_tls_ca") == 0) {
		file_path(c, r->tls_ca, sizeof(r->tls_ca), value, bad);
	} else if (strcmp(key, "redis_tls_name") == 0) {
		copy_word(r->tls_name, sizeof(r->tls_name), value, bad);
	} else if (strcmp(key, "redis_tls_certificate") == 0) {
		file_path(c, r->tls_certificate, sizeof(r->tls_certificate),
		          value, bad);
	} else if (strcmp(key, "redis_tls_key") == 0) {
		file_path(c, r->tls_key, sizeof(r->tls_key), value, bad);
	} else {
		return -1;
	}
	return 0;
}

/* What the [cache] keys say together; 0, or -1 with the reason in err. */
static int cache_finish(struct tp_config *c, char *err, size_t errlen)
{
	const struct tp_redis_conf *r = &c->redis;
	const char *why = NULL;

	if (c->cache_backend == 0)
		c->cache_backend =
		        c->cache_path[0] ? TP_CACHE_LMDB : TP_CACHE_MEMORY;
	if (c->cache_backend == TP_CACHE_LMDB && c->cache_path[0] == '\0')
		why = "backend = lmdb needs path";
	else if (c->cache_backend != TP_CACHE_LMDB && c->cache_path[0])
		why = "path is the file of backend = lmdb";
	else if (c->cache_backend != TP_CACHE_REDIS)
		return 0;
	else if (r->addr[0] == '\0')
		why = "backend = redis needs redis = HOST:PORT or unix:PATH";
	else if (r->key_file[0] == '\0')
		why = "backend = redis needs key_file (entries are signed)";
	else if (r->tls && r->tls_ca[0] == '\0')
		why = "redis_tls needs redis_tls_ca";
	else if (r->tls && strncmp(r->addr, "unix:", 5) == 0)
		why = "redis_tls is for HOST:PORT";
	else if ((r->tls_certificate[0] == '\0') != (r->tls_key[0] == '\0'))
		why = "redis_tls_certificate and redis_tls_key go together";
	if (why == NULL)
		return 0;
	snprintf(err, errlen, "%s: [cache] %s", c->path, why);
	errno = EINVAL;
	return -1;
}

/*
 * The [pool] keys: -1 for an unknown key, 0 to go on with the common
 * checks of the value, 1 when the key was taken whole, 2 when it failed
 * with msg.
 */
static int pool_key(struct tp_config *c, const char *key, const char *value,
                    int *bad, char *msg, size_t msglen)
{
	struct tp_pool_conf *p = &c->pool;

	if (strcmp(key, "socket") == 0) {
		/* a relative path is the file's directory's, like any */
		file_path(c, p->socket, sizeof(p->socket), value, bad);
	} else if (strcmp(key, "user") == 0) {
		copy_word(p->user, sizeof(p->user), value, bad);
	} else if (strcmp(key, "threads") == 0) {
		p->threads = to_ulong(value, 1, 256, bad);
	} else if (strcmp(key, "pin_file") == 0) {
		file_path(c, p->pin_file, sizeof(p->pin_file), value, bad);
	} else if (strcmp(key, "allow_no_authz_users") == 0) {
		return ids_entry(p->no_authz_uids, &p->no_authz_nuids, key,
		                 value, msg, msglen) == 0
		               ? 1
		               : 2;
	} else if (strcmp(key, "allow_no_authz_groups") == 0) {
		return ids_entry(p->no_authz_gids, &p->no_authz_ngids, key,
		                 value, msg, msglen) == 0
		               ? 1
		               : 2;
	} else {
		return -1;
	}
	return 0;
}

/* Each section's keys: 0, 1 for a key the section does not have, or -1
 * with msg; *bad for a value out of range. */
typedef int section_fn(struct tp_config *c, const char *section,
                       const char *key, const char **value, int *bad, char *msg,
                       size_t msglen);

static int dns_key(struct tp_config *c, const char *section, const char *key,
                   const char **value, int *bad, char *msg, size_t msglen)
{
	char anchor[PATH_MAX];
	const char *v = *value;

	(void)section;
	if (strcmp(key, "trust_anchor") == 0) {
		file_path(c, anchor, sizeof(anchor), v, bad);
		if (*bad)
			return 0;
		v = anchor;
	}
	/* the validation library owns the meaning of [dns] */
	return tlspool_dns_config_set(c->dns, key, v, msg, msglen) != 0 ? -1
	                                                                : 0;
}

/* [tls] alpn: protocol names (RFC 7301 section 3.1: 1 to 255 octets
 * each; here printable, without spaces or commas, which separate them),
 * at most TP_MAX_ALPN. */
static void alpn_list(char *dst, size_t len, const char *v, int *bad)
{
	const char *p = v;
	size_t n = 0;

	while (*p != '\0') {
		size_t l = strcspn(p, " \t,");

		for (size_t i = 0; i < l; i++)
			if ((unsigned char)p[i] < ' ' || p[i] == 0x7f)
				*bad = 1;
		if (l > 0)
			n++;
		p += l;
		p += strspn(p, " \t,");
	}
	if (n == 0 || n > TP_MAX_ALPN)
		*bad = 1;
	copy_path(dst, len, v, bad);
}

static int tls_key(struct tp_config *c, const char *section, const char *key,
                   const char **value, int *bad, char *msg, size_t msglen)
{
	(void)section, (void)msg, (void)msglen;
	if (strcmp(key, "priority") == 0)
		copy_path(c->priority, sizeof(c->priority), *value, bad);
	else if (strcmp(key, "alpn") == 0)
		alpn_list(c->alpn, sizeof(c->alpn), *value, bad);
	else if (strcmp(key, "handshake_timeout_ms") == 0)
		c->handshake_timeout_ms = to_ulong(*value, 1, 3600000, bad);
	else if (strcmp(key, "relay_threads") == 0)
		c->relay_threads = to_ulong(*value, 1, 64, bad);
	else if (strcmp(key, "dtls_idle_timeout_ms") == 0)
		c->dtls_idle_timeout_ms = to_ulong(*value, 1, 86400000, bad);
	else
		return 1;
	return 0;
}

static int validation_key(struct tp_config *c, const char *section,
                          const char *key, const char **value, int *bad,
                          char *msg, size_t msglen)
{
	(void)section, (void)msg, (void)msglen;
	if (strcmp(key, "pkix_fallback") == 0)
		c->pkix_fallback = yes_no(*value, bad);
	else if (strcmp(key, "dane_ee_name_checks") == 0)
		c->dane_ee_name_checks = yes_no(*value, bad);
	else if (strcmp(key, "sources") == 0)
		source_list(c->sources, &c->nsources, *value, 0, bad);
	else if (strcmp(key, "domain_sources") == 0)
		source_list(c->domain_sources, &c->ndomain_sources, *value, 1,
		            bad);
	else
		return 1;
	return 0;
}

static int cache_section_key(struct tp_config *c, const char *section,
                             const char *key, const char **value, int *bad,
                             char *msg, size_t msglen)
{
	(void)section, (void)msg, (void)msglen;
	if (strcmp(key, "path") == 0)
		file_path(c, c->cache_path, sizeof(c->cache_path), *value, bad);
	else if (strcmp(key, "max_ttl") == 0)
		c->max_ttl = to_ulong(*value, 0, 86400 * 365, bad);
	else if (strcmp(key, "negative_ttl") == 0)
		c->negative_ttl = to_ulong(*value, 0, 86400, bad);
	else if (cache_key(c, key, *value, bad) != 0)
		return 1;
	return 0;
}

static int ldap_section_key(struct tp_config *c, const char *section,
                            const char *key, const char **value, int *bad,
                            char *msg, size_t msglen)
{
	(void)section, (void)msg, (void)msglen;
	return ldap_key(c, key, *value, bad) != 0 ? 1 : 0;
}

static int pool_section_key(struct tp_config *c, const char *section,
                            const char *key, const char **value, int *bad,
                            char *msg, size_t msglen)
{
	int r = pool_key(c, key, *value, bad, msg, msglen);

	(void)section;
	if (r < 0)
		return 1;
	if (r == 2)
		return -1;
	if (r == 1)
		*value = "taken"; /* whole: no common value checks */
	return 0;
}

static int authz_key(struct tp_config *c, const char *section, const char *key,
                     const char **value, int *bad, char *msg, size_t msglen)
{
	(void)section, (void)msg, (void)msglen;
	if (strcmp(key, "plugin") == 0)
		file_path(c, c->authz_plugin, sizeof(c->authz_plugin), *value,
		          bad);
	else if (strcmp(key, "config") == 0)
		file_path(c, c->authz_config, sizeof(c->authz_config), *value,
		          bad);
	else
		return 1;
	return 0;
}

static int identity_key(struct tp_config *c, const char *section,
                        const char *key, const char **value, int *bad,
                        char *msg, size_t msglen)
{
	const char *name = section + 9, *v = *value;
	struct tp_identity *id;

	if (tp_check_identity(name) != 0) {
		snprintf(msg, msglen,
		         "[%s]: not a domain or user@domain identity", section);
		return -1;
	}
	id = identity(c, name);
	if (id == NULL) {
		snprintf(msg, msglen, "[%s]: too many identities", section);
		return -1;
	}
	if (strcmp(key, "certificate") == 0)
		file_path(c, id->certificate, sizeof(id->certificate), v, bad);
	else if (strcmp(key, "key") == 0 && strncmp(v, "pkcs11:", 7) == 0)
		copy_path(id->key, sizeof(id->key), v, bad);
	else if (strcmp(key, "key") == 0)
		file_path(c, id->key, sizeof(id->key), v, bad);
	else if (strcmp(key, "openpgp_key") == 0)
		file_path(c, id->openpgp_key, sizeof(id->openpgp_key), v, bad);
	else if (strcmp(key, "allow_users") == 0) {
		id->acl = 1;
		return ids_entry(id->uids, &id->nuids, key, v, msg, msglen);
	} else if (strcmp(key, "allow_groups") == 0) {
		id->acl = 1;
		return ids_entry(id->gids, &id->ngids, key, v, msg, msglen);
	} else
		return 1;
	return 0;
}

/* The sections of tlspool.conf and who reads their keys; "identity *"
 * names an identity.  [dns] belongs to libtlspool-validate. */
static const struct {
	const char *name;
	section_fn *fn;
} section_table[] = {
        {"dns", dns_key},
        {"tls", tls_key},
        {"validation", validation_key},
        {"cache", cache_section_key},
        {"authz", authz_key},
        {"ldap", ldap_section_key},
        {"pool", pool_section_key},
        {"identity *", identity_key},
};

static section_fn *section_reader(const char *section)
{
	size_t i, n;

	for (i = 0; i < sizeof(section_table) / sizeof(section_table[0]); i++) {
		n = strlen(section_table[i].name);
		if (strcmp(section, section_table[i].name) == 0 ||
		    (section_table[i].name[n - 1] == '*' &&
		     strncmp(section, section_table[i].name, n - 1) == 0))
			return section_table[i].fn;
	}
	return NULL;
}

static int on_entry(void *user, const char *section, const char *key,
                    const char *value, char *msg, size_t msglen)
{
	section_fn *fn = section_reader(section);
	int bad = 0, r;

	if (section[0] == '\0') {
		snprintf(msg, msglen, "%s: key outside any section", key);
		return -1;
	}
	if (fn == NULL) {
		snprintf(msg, msglen, "[%s]: unknown section", section);
		return -1;
	}
	r = fn(user, section, key, &value, &bad, msg, msglen);
	if (r < 0)
		return -1;
	if (r > 0) {
		snprintf(msg, msglen, "%s: unknown key in [%s]", key, section);
		return -1;
	}
	if (fn == dns_key && !bad)
		return 0;
	if (bad || value[0] == '\0') {
		if (value[0] == '\0' &&
		    (strcmp(key, "path") == 0 || strcmp(key, "plugin") == 0 ||
		     strcmp(key, "config") == 0))
			return 0; /* documented as "empty: none" */
		snprintf(msg, msglen, "%s: bad value \"%s\"", key, value);
		return -1;
	}
	return 0;
}

int tp_check_identity(const char *name)
{
	const char *at;

	if (name == NULL || name[0] == '\0')
		goto bad;
	at = strrchr(name, '@');
	if (at == NULL)
		return tlspool_check_domain(name, 0);
	/* user@domain: a non-empty local part without controls or space */
	if (at == name || strlen(name) > 255)
		goto bad;
	for (const char *p = name; p < at; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			goto bad;
	return tlspool_check_domain(at + 1, 0);
bad:
	errno = EINVAL;
	return -1;
}

static struct tp_config *config_new(void)
{
	struct tp_config *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->dns = tlspool_dns_config_new();
	if (c->dns == NULL) {
		free(c);
		return NULL;
	}
	strcpy(c->priority, "NORMAL");
	c->handshake_timeout_ms = 10000;
	c->relay_threads = 1;
	c->dtls_idle_timeout_ms = 300000;
	c->max_ttl = 3600;
	c->sources[0] = TP_SRC_OPENPGPKEY;
	c->sources[1] = TP_SRC_SMIMEA;
	c->nsources = 2;
	c->domain_sources[0] = TP_SRC_TLSA;
	c->ndomain_sources = 1;
	strcpy(c->ldap.filter, "(|(mail=%s)(uid=%u))");
	strcpy(c->ldap.domain_filter, "(associatedDomain=%d)");
	c->ldap.timeout_ms = 5000;
	strcpy(c->redis.prefix, "tlspool:");
	c->redis.timeout_ms = 50;
	/* the front of verified entries (cache_redis.c): a warm lookup at
	 * the cost of memory, a change by another host seen within 1 s */
	c->redis.local_ttl_ms = 1000;
	c->pool.threads = 4;
	return c;
}

/* The section names for the reader, from section_table. */
static const char *const *section_names(void)
{
	static const char
	        *names[sizeof(section_table) / sizeof(section_table[0]) + 1];
	size_t i;

	for (i = 0; i < sizeof(section_table) / sizeof(section_table[0]); i++)
		names[i] = section_table[i].name;
	return names;
}

/*
 * An override "SECTION.KEY=VALUE" split: the key runs from the last dot
 * before the first "=" (keys have no dots; an identity's section does).
 * 0, or -1 for a string of another form.
 */
static int split_override(const char *o, char *section, size_t slen, char *key,
                          size_t klen, const char **value)
{
	const char *eq = strchr(o, '='), *dot = NULL, *p;

	if (eq == NULL)
		return -1;
	for (p = o; p < eq; p++)
		if (*p == '.')
			dot = p;
	if (dot == NULL || dot == o || dot + 1 == eq ||
	    (size_t)(dot - o) >= slen || (size_t)(eq - dot - 1) >= klen)
		return -1;
	snprintf(section, slen, "%.*s", (int)(dot - o), o);
	snprintf(key, klen, "%.*s", (int)(eq - dot - 1), dot + 1);
	*value = eq + 1;
	return 0;
}

/* Is (section, key) overridden?  Case as in the file, but an identity's
 * name without case and final dot. */
static int overridden(const struct tp_config *c, const char *section,
                      const char *key)
{
	char s[300], k[64];
	const char *v;
	size_t i;

	for (i = 0; c->overrides != NULL && c->overrides[i] != NULL; i++) {
		if (split_override(c->overrides[i], s, sizeof(s), k, sizeof(k),
		                   &v) != 0 ||
		    strcmp(k, key) != 0)
			continue;
		if (strcmp(s, section) == 0 ||
		    (strncmp(s, "identity ", 9) == 0 &&
		     strncmp(section, "identity ", 9) == 0 &&
		     same_identity(s + 9, section + 9) &&
		     same_identity(section + 9, s + 9)))
			return 1;
	}
	return 0;
}

/* A file's entry: skipped when an override replaces its key. */
static int on_file_entry(void *user, const char *section, const char *key,
                         const char *value, char *msg, size_t msglen)
{
	if (overridden(user, section, key))
		return 0;
	return on_entry(user, section, key, value, msg, msglen);
}

/* The overrides, after the file, through the file's own readers. */
static int apply_overrides(struct tp_config *c, char *err, size_t errlen)
{
	char s[300], k[64], msg[400];
	const char *v;
	size_t i;

	c->overriding = 1;
	for (i = 0; c->overrides[i] != NULL; i++) {
		if (split_override(c->overrides[i], s, sizeof(s), k, sizeof(k),
		                   &v) != 0) {
			snprintf(err, errlen,
			         "override \"%s\": not SECTION.KEY=VALUE",
			         c->overrides[i]);
			goto bad;
		}
		if (on_entry(c, s, k, v, msg, sizeof(msg)) != 0) {
			snprintf(err, errlen, "override \"%s\": %s",
			         c->overrides[i], msg);
			goto bad;
		}
	}
	c->overriding = 0;
	c->overrides = NULL;
	return 0;
bad:
	c->overriding = 0;
	c->overrides = NULL;
	errno = EINVAL;
	return -1;
}

int tp_config_load(const char *path, int may_be_missing, struct tp_config **out,
                   char *err, size_t errlen)
{
	return tp_config_load_with(path, may_be_missing, NULL, out, err,
	                           errlen);
}

int tp_config_load_with(const char *path, int may_be_missing,
                        const char *const *overrides, struct tp_config **out,
                        char *err, size_t errlen)
{
	struct tp_config *cfg = config_new();
	int missing = 0;

	*out = NULL;
	if (cfg == NULL) {
		snprintf(err, errlen, "out of memory");
		errno = ENOMEM;
		return -1;
	}
	snprintf(cfg->path, sizeof(cfg->path), "%s", path);
	cfg->overrides = overrides;
	if (tlspool_conf_parse(path, section_names(), on_file_entry, cfg, err,
	                       errlen) != 0) {
		int e = errno;

		if (e != ENOENT || !may_be_missing) {
			tp_config_free(cfg);
			errno = e;
			return -1;
		}
		missing = 1;
	}
	if (overrides != NULL && apply_overrides(cfg, err, errlen) != 0) {
		tp_config_free(cfg);
		errno = EINVAL;
		return -1;
	}
	if (missing && overrides == NULL) {
		cfg->cache_backend = TP_CACHE_MEMORY;
		*out = cfg;
		return 0;
	}
	if (cache_finish(cfg, err, errlen) != 0) {
		tp_config_free(cfg);
		return -1;
	}
	*out = cfg;
	return 0;
}

const struct tp_identity *tp_config_identity(const struct tp_config *cfg,
                                             const char *name)
{
	size_t i;

	for (i = 0; name != NULL && i < cfg->nids; i++)
		if (same_identity(cfg->ids[i].name, name))
			return &cfg->ids[i];
	return NULL;
}

void tp_config_free(struct tp_config *cfg)
{
	if (cfg == NULL)
		return;
	tlspool_dns_config_free(cfg->dns);
	free(cfg->ids);
	free(cfg);
}
