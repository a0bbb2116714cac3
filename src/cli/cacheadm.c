/*
 * tlspool-connect --cache-list and --cache-flush: the administrator's view
 * of the validation cache file ([cache] path), through tlspool/cache.h.
 * One line per entry:
 *   KEY authn|authz pass|fail IDENTITY OTHER SPKI|- EXPIRY [expired]
 */
#include <stdio.h>
#include <time.h>

#include <tlspool/cache.h>

#include "cli.h"

static int print_entry(const tlspool_cache_entry *e, void *arg)
{
	char when[32];
	time_t now = *(const time_t *)arg;

	if (!e->valid) {
		printf("%s malformed (never used)\n", e->key);
		return 0;
	}
	iso_time(when, sizeof(when), e->expiry);
	printf("%s %s %s %s %s %s %s%s\n", e->key, e->authz ? "authz" : "authn",
	       e->pass ? "pass" : "fail", e->identity[0] ? e->identity : "-",
	       e->other[0] ? e->other : "-", e->authz ? "-" : e->spki, when,
	       e->expiry <= now ? " expired" : "");
	return 0;
}

int run_cache_list(const struct options *o)
{
	char err[512];
	time_t now = time(NULL);

	(void)o;
	if (tlspool_cache_list(print_entry, &now, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s: %s\n", progname, err);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

int run_cache_flush(const struct options *o)
{
	char err[512];

	(void)o;
	if (tlspool_cache_flush(err, sizeof(err)) != 0) {
		fprintf(stderr, "%s: %s\n", progname, err);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}
