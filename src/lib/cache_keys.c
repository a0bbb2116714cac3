/*
 * Zone keys in the shared validation cache (docs/architecture.md, "Cold
 * validation in one query"): the keystore that libtlspool installs on
 * the resolver of a configuration whose cache is an LMDB file or a Redis
 * server, so that another process, or tlspoold after a restart, validates
 * a new name in a known zone with one query.
 *
 * An entry is of kind TP_CACHE_KEYS under the zone's name, its data the
 * records the resolver hands over (the zone's DNSKEY and DS RRsets with
 * their RRSIGs, in wire form), its expiry the resolver's.  The resolver
 * validates every entry it reads from the trust anchor before it keeps
 * anything of it (tlspool_dns_set_keystore() in tlspool/validate.h);
 * this file only moves octets.
 */
#include <stdio.h>
#include <string.h>

#include "cache.h"
#include "tlspool/validate.h"

static void zone_key(struct tp_cache_key *k, const char *zone)
{
	memset(k, 0, sizeof(*k));
	k->kind = TP_CACHE_KEYS;
	k->a = zone;
	k->b = "";
	k->type = 48; /* DNSKEY */
}

static long keys_get(void *arg, const char *zone, unsigned char *buf,
                     size_t buflen, time_t *until)
{
	struct tp_cache_key k;
	char note[256] = "";
	size_t len = 0;

	zone_key(&k, zone);
	if (tp_cache_get_data(arg, &k, time(NULL), buf, buflen, &len, until,
	                      note, sizeof(note)) != TP_CACHE_PASS)
		return note[0] != '\0' ? -1 : 0;
	return (long)len;
}

static void keys_put(void *arg, const char *zone, const unsigned char *rec,
                     size_t len, time_t until)
{
	struct tp_cache_key k;
	char note[256] = "";

	/* a cache that cannot be written only costs the next process a full
	 * lookup */
	zone_key(&k, zone);
	(void)tp_cache_put_data(arg, &k, rec, len, until, time(NULL), note,
	                        sizeof(note));
}

void tp_cache_keys_attach(tp_cache *cache, struct tlspool_dns *dns)
{
	if (cache != NULL && dns != NULL)
		(void)tlspool_dns_set_keystore(dns, keys_get, keys_put, cache);
}
