/*
 * tlspool-connect --cache-list and --cache-flush: the administrator's view
 * of the shared validation cache (the LMDB file of [cache] path, or the
 * Redis server of backend = redis), through tlspool/cache.h.  Which one
 * goes to stderr first; then one line per entry on stdout:
 *   KEY authn|authz pass|fail IDENTITY OTHER SPKI|- EXPIRY [expired]
 *   KEY zonekeys pass ZONE DNSKEY DS (N octets) - EXPIRY [expired]
 *   KEY unusable: PROBLEM (never used)
 */
#include <stdio.h>
#include <time.h>

#include <tlspool/cache.h>

#include "cli.h"

/* authn, authz, or zonekeys: a zone's DNSKEY and DS records kept for the
 * resolver */
static const char *kind_of(const tlspool_cache_entry *e)
{
	return e->zonekeys ? "zonekeys" : e->authz ? "authz" : "authn";
}

static int print_entry(const tlspool_cache_entry *e, void *arg)
{
	char when[32];
	time_t now = *(const time_t *)arg;

	iso_time(when, sizeof(when), e->expiry);
	if (out_json()) {
		json_object *j = json_object_new_object();

		json_object_object_add(j, "key",
		                       json_object_new_string(e->key));
		json_object_object_add(j, "valid",
		                       json_object_new_boolean(e->valid));
		if (!e->valid) {
			json_object_object_add(
			        j, "problem",
			        json_object_new_string(e->problem != NULL
			                                       ? e->problem
			                                       : "malformed"));
		} else {
			json_object_object_add(
			        j, "kind", json_object_new_string(kind_of(e)));
			json_object_object_add(
			        j, "pass", json_object_new_boolean(e->pass));
			json_object_object_add(
			        j, "identity",
			        json_object_new_string(e->identity));
			json_object_object_add(
			        j, "other", json_object_new_string(e->other));
			json_object_object_add(
			        j, "spki",
			        json_object_new_string(e->authz || e->zonekeys
			                                       ? ""
			                                       : e->spki));
			json_object_object_add(j, "expiry",
			                       json_object_new_string(when));
			json_object_object_add(
			        j, "expired",
			        json_object_new_boolean(e->expiry <= now));
		}
		out_append("entries", j);
		return 0;
	}
	if (!e->valid) {
		printf("%s unusable: %s (never used)\n", e->key,
		       e->problem != NULL ? e->problem : "malformed");
		return 0;
	}
	printf("%s %s %s %s %s %s %s%s\n", e->key, kind_of(e),
	       e->pass ? "pass" : "fail", e->identity[0] ? e->identity : "-",
	       e->other[0] ? e->other : "-",
	       e->authz || e->zonekeys ? "-" : e->spki, when,
	       e->expiry <= now ? " expired" : "");
	return 0;
}

/* "tlspool-connect: cache: redis 127.0.0.1:6379, prefix tlspool:" */
static int say_backend(const struct options *o)
{
	char err[512], what[512];

	if (tlspool_cache_backend_ctx(o->ctx, what, sizeof(what), err,
	                              sizeof(err)) != 0) {
		say("%s", err);
		return -1;
	}
	/* which cache: a notice on stderr, not an error */
	fprintf(stderr, "%s: cache: %s\n", progname, what);
	out_set("cache", json_object_new_string(what));
	return 0;
}

int run_cache_list(const struct options *o)
{
	char err[512];
	time_t now = time(NULL);

	if (say_backend(o) != 0)
		return EXIT_USAGE;
	out_set("entries", json_object_new_array());
	if (tlspool_cache_list_ctx(o->ctx, print_entry, &now, err,
	                           sizeof(err)) != 0) {
		say("%s", err);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

int run_cache_flush(const struct options *o)
{
	char err[512];

	if (say_backend(o) != 0)
		return EXIT_USAGE;
	if (tlspool_cache_flush_ctx(o->ctx, err, sizeof(err)) != 0) {
		say("%s", err);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}
