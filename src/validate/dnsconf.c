/*
 * The [dns] section of tlspool.conf.
 *
 * The file is INI (read with libinih).  This module owns the meaning of
 * the [dns] keys; the other sections belong to libtlspool.  The reader
 * (conffile.c) checks every section name, so that a misspelt section is
 * an error instead of a silently ignored block.  A relative trust_anchor
 * is resolved against the directory of the file.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "filetrust.h"
#include "internal.h"

#define TP_DEFAULT_TRUST_ANCHOR "/usr/share/dns/root.key"
#define TP_DEFAULT_TIMEOUT_MS   5000
#define TP_MAX_TIMEOUT_MS       600000
/* Validated zone keys kept for later lookups (dnschain.c), at most. */
#define TP_DEFAULT_KEEP_KEYS_TTL 3600
#define TP_MAX_KEEP_KEYS_TTL     86400

#ifndef TLSPOOL_SYSCONFDIR
#define TLSPOOL_SYSCONFDIR "/etc"
#endif

const char *tlspool_config_default_path(void)
{
	return TLSPOOL_SYSCONFDIR "/tlspool.conf";
}

tlspool_dns_config *tlspool_dns_config_new(void)
{
	tlspool_dns_config *cfg = calloc(1, sizeof(*cfg));

	if (cfg == NULL)
		return NULL;
	strcpy(cfg->trust_anchor, TP_DEFAULT_TRUST_ANCHOR);
	cfg->timeout_ms = TP_DEFAULT_TIMEOUT_MS;
	cfg->keep_keys_ttl = TP_DEFAULT_KEEP_KEYS_TTL;
	return cfg;
}

void tlspool_dns_config_free(tlspool_dns_config *cfg)
{
	free(cfg);
}

int tp_parse_upstream(const char *s, struct tp_upstream *out)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *at = strrchr(s, '@');
	size_t hlen = at ? (size_t)(at - s) : strlen(s);
	unsigned long port = 53;

	if (hlen == 0 || hlen >= sizeof(host))
		return -1;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (at != NULL) {
		char *end;

		if (at[1] < '0' || at[1] > '9')
			return -1;
		errno = 0;
		port = strtoul(at + 1, &end, 10);
		if (errno != 0 || *end != '\0' || port == 0 || port > 65535)
			return -1;
	}
	memset(out, 0, sizeof(*out));
	out->port = (unsigned)port;
	if (inet_pton(AF_INET, host, out->addr) == 1)
		out->family = AF_INET;
	else if (inet_pton(AF_INET6, host, out->addr) == 1)
		out->family = AF_INET6;
	else
		return -1;
	return 0;
}

static int parse_uint(const char *s, unsigned long min, unsigned long max,
                      unsigned *out)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

int tlspool_dns_config_set(tlspool_dns_config *cfg, const char *key,
                           const char *value, char *err, size_t errlen)
{
	if (cfg == NULL || key == NULL || value == NULL) {
		tp_err(err, errlen, "missing argument");
		errno = EINVAL;
		return -1;
	}
	if (strcmp(key, "resolution") == 0) {
		if (strcmp(value, "stub") == 0)
			cfg->recursive = 0;
		else if (strcmp(value, "recursive") == 0)
			cfg->recursive = 1;
		else
			goto bad;
	} else if (strcmp(key, "upstream") == 0) {
		if (cfg->nupstream == TP_MAX_UPSTREAMS) {
			tp_err(err, errlen, "upstream: more than %d upstreams",
			       TP_MAX_UPSTREAMS);
			errno = EINVAL;
			return -1;
		}
		if (tp_parse_upstream(value, &cfg->upstream[cfg->nupstream]))
			goto bad;
		cfg->nupstream++;
	} else if (strcmp(key, "trust_anchor") == 0) {
		if (value[0] == '\0' ||
		    strlen(value) >= sizeof(cfg->trust_anchor))
			goto bad;
		strcpy(cfg->trust_anchor, value);
	} else if (strcmp(key, "timeout_ms") == 0) {
		if (parse_uint(value, 1, TP_MAX_TIMEOUT_MS, &cfg->timeout_ms))
			goto bad;
	} else if (strcmp(key, "keep_keys_ttl") == 0) {
		if (parse_uint(value, 0, TP_MAX_KEEP_KEYS_TTL,
		               &cfg->keep_keys_ttl))
			goto bad;
	} else {
		tp_err(err, errlen, "%s: unknown key in [dns]", key);
		errno = EINVAL;
		return -1;
	}
	return 0;
bad:
	if (strcmp(key, "resolution") == 0)
		tp_err(err, errlen,
		       "resolution: \"%s\" is not stub or recursive", value);
	else if (strcmp(key, "upstream") == 0)
		tp_err(err, errlen,
		       "upstream: \"%s\" is not ADDRESS or ADDRESS@PORT",
		       value);
	else if (strcmp(key, "timeout_ms") == 0)
		tp_err(err, errlen,
		       "timeout_ms: \"%s\" is not a number from 1 to %d", value,
		       TP_MAX_TIMEOUT_MS);
	else if (strcmp(key, "keep_keys_ttl") == 0)
		tp_err(err, errlen,
		       "keep_keys_ttl: \"%s\" is not a number from 0 to %d",
		       value, TP_MAX_KEEP_KEYS_TTL);
	else
		tp_err(err, errlen, "%s: bad value \"%s\"", key, value);
	errno = EINVAL;
	return -1;
}

struct load_state {
	tlspool_dns_config *cfg;
	const char *path;
};

/* Only [dns] is ours: the other sections are left to the library whose
 * they are (libtlspool checks the whole file). */
static int on_entry(void *user, const char *section, const char *key,
                    const char *value, char *msg, size_t msglen)
{
	struct load_state *ls = user;
	char resolved[PATH_MAX];

	if (section[0] == '\0') {
		snprintf(msg, msglen, "%s: key outside any section", key);
		return -1;
	}
	if (strcmp(section, "dns") != 0)
		return 0;
	/* A relative trust anchor is named from the file's directory. */
	if (strcmp(key, "trust_anchor") == 0) {
		if (tlspool_file_resolve(resolved, sizeof(resolved), ls->path,
		                         value) != 0) {
			snprintf(msg, msglen, "%s: bad value \"%s\"", key,
			         value);
			return -1;
		}
		value = resolved;
	}
	return tlspool_dns_config_set(ls->cfg, key, value, msg, msglen);
}

tlspool_dns_config *tlspool_dns_config_load(const char *path, char *err,
                                            size_t errlen)
{
	tlspool_dns_config *cfg;
	struct load_state ls;
	int may_be_missing = 0;

	if (path == NULL) {
		path = getenv("TLSPOOL_CONFIG");
		if (path == NULL || path[0] == '\0') {
			path = tlspool_config_default_path();
			may_be_missing = 1;
		}
	}
	cfg = tlspool_dns_config_new();
	if (cfg == NULL) {
		tp_err(err, errlen, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	ls.cfg = cfg;
	ls.path = path;
	if (tlspool_conf_parse(path, NULL, on_entry, &ls, err, errlen) != 0) {
		int e = errno;

		if (e == ENOENT && may_be_missing)
			return cfg;
		tlspool_dns_config_free(cfg);
		errno = e;
		return NULL;
	}
	return cfg;
}
