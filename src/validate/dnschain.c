/*
 * Validated zone keys kept between lookups (docs/architecture.md, "Cold
 * validation in one query").
 *
 * A full lookup (dns.c) asks getdns for the validation chain of its
 * answer (extension "dnssec_return_validation_chain": the DS and DNSKEY
 * RRsets with their RRSIGs from the trust anchor down).  When the answer
 * is secure, every DNSKEY RRset of that chain has been validated, and is
 * kept here per zone until the earliest of:
 *   - the TTL of any DS or DNSKEY RRset, or RRSIG over them, on the chain
 *     (a resolver would cache none of them longer, RFC 4035 section 5.3.3
 *     and RFC 2181 section 5.2);
 *   - the signature expiration of any of those RRSIGs (RFC 4034 section
 *     3.1.5): a key is never trusted past the signature that vouched for
 *     it;
 *   - the configured keep_keys_ttl.
 * A later lookup under a kept zone sends one query and validates its
 * reply offline against the kept DNSKEYs as trust anchors
 * (getdns_validate_dnssec2); dns.c accepts only a "secure" outcome from
 * that and does a full lookup otherwise.
 *
 * The keyring is shared by the threads that use one tlspool_dns handle:
 * a mutex guards it, and tp_keyring_anchors() hands out copies.
 */
#include <errno.h>
#include <getdns/getdns.h>
#include <getdns/getdns_extra.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define TP_RR_DS     43
#define TP_RR_RRSIG  46
#define TP_RR_DNSKEY 48

/* Most zones kept per handle: an old entry is replaced beyond that. */
#define TP_KEYRING_MAX 256

struct zonekeys {
	char zone[256];        /* with a final dot */
	getdns_list *keys;     /* the DNSKEY rr_dicts */
	struct tp_zkeys *fast; /* their public keys, for rrsig.c */
	time_t until;          /* not used from then on */
};

struct tp_keyring {
	pthread_mutex_t lock;
	unsigned max_ttl;
	struct zonekeys *z;
	size_t n, cap;
};

struct tp_keyring *tp_keyring_new(unsigned max_ttl)
{
	struct tp_keyring *k = calloc(1, sizeof(*k));

	if (k == NULL)
		return NULL;
	if (pthread_mutex_init(&k->lock, NULL) != 0) {
		free(k);
		return NULL;
	}
	k->max_ttl = max_ttl;
	return k;
}

void tp_keyring_free(struct tp_keyring *k)
{
	size_t i;

	if (k == NULL)
		return;
	for (i = 0; i < k->n; i++) {
		getdns_list_destroy(k->z[i].keys);
		tp_zkeys_free(k->z[i].fast);
	}
	free(k->z);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

static uint32_t rr_u32(const getdns_dict *rr, const char *key, uint32_t dflt)
{
	uint32_t v;

	return getdns_dict_get_int(rr, key, &v) == GETDNS_RETURN_GOOD ? v
	                                                              : dflt;
}

/* The time until which the chain may be used: the earliest TTL and
 * RRSIG expiration among its records, capped by max_ttl; 0 when some
 * signature is already expired or not yet valid. */
static time_t chain_until(const getdns_list *chain, time_t now,
                          unsigned max_ttl)
{
	time_t until = now + (time_t)max_ttl;
	size_t i, n = 0;

	getdns_list_get_length(chain, &n);
	for (i = 0; i < n; i++) {
		getdns_dict *rr;
		uint32_t type, ttl;

		if (getdns_list_get_dict(chain, i, &rr) != GETDNS_RETURN_GOOD)
			return 0;
		type = rr_u32(rr, "type", 0);
		ttl = rr_u32(rr, "ttl", 0);
		if (now + (time_t)ttl < until)
			until = now + (time_t)ttl;
		if (type == TP_RR_RRSIG) {
			/* RFC 4034 section 3.1.5: serial number arithmetic;
			 * these times are near enough to now to compare
			 * directly. */
			time_t exp = (time_t)rr_u32(
			        rr, "/rdata/signature_expiration", 0);
			time_t inc = (time_t)rr_u32(
			        rr, "/rdata/signature_inception", 0);

			if (exp <= now || inc > now)
				return 0;
			if (exp < until)
				until = exp;
		}
	}
	return until > now ? until : 0;
}

static struct zonekeys *find(struct tp_keyring *k, const char *zone)
{
	size_t i;

	for (i = 0; i < k->n; i++)
		if (tp_name_equal(k->z[i].zone, zone))
			return &k->z[i];
	return NULL;
}

/* A slot for zone: its own, a free one, an expired one, or the one that
 * expires first. */
static struct zonekeys *slot(struct tp_keyring *k, const char *zone, time_t now)
{
	struct zonekeys *z = find(k, zone);
	size_t i, first = 0;

	if (z != NULL)
		return z;
	if (k->n < TP_KEYRING_MAX) {
		if (k->n == k->cap) {
			size_t cap = k->cap ? k->cap * 2 : 8;
			struct zonekeys *g = realloc(k->z, cap * sizeof(*g));

			if (g == NULL)
				return NULL;
			k->z = g;
			k->cap = cap;
		}
		z = &k->z[k->n++];
		memset(z, 0, sizeof(*z));
		return z;
	}
	for (i = 0; i < k->n; i++) {
		if (k->z[i].until <= now)
			return &k->z[i];
		if (k->z[i].until < k->z[first].until)
			first = i;
	}
	return &k->z[first];
}

/* The DNSKEY rr_dicts of chain owned by zone, as a new list (NULL when
 * none or for lack of memory). */
static getdns_list *keys_of(const getdns_list *chain, const char *zone)
{
	getdns_list *keys = getdns_list_create();
	size_t i, n = 0, nk = 0;

	if (keys == NULL)
		return NULL;
	getdns_list_get_length(chain, &n);
	for (i = 0; i < n; i++) {
		getdns_dict *rr;
		char owner[256];

		if (getdns_list_get_dict(chain, i, &rr) != GETDNS_RETURN_GOOD ||
		    rr_u32(rr, "type", 0) != TP_RR_DNSKEY ||
		    tp_rr_name(rr, "name", owner) != 0 ||
		    !tp_name_equal(owner, zone))
			continue;
		if (getdns_list_set_dict(keys, nk, rr) != GETDNS_RETURN_GOOD) {
			getdns_list_destroy(keys);
			return NULL;
		}
		nk++;
	}
	if (nk == 0) {
		getdns_list_destroy(keys);
		return NULL;
	}
	return keys;
}

int tp_keyring_learn(struct tp_keyring *k, const struct getdns_list *chain,
                     time_t now)
{
	return tp_keyring_learn_until(k, chain, now, 0);
}

/* Most zones one chain brings: a chain from the root has one per label
 * at most; beyond that the deeper ones are not kept. */
#define TP_CHAIN_ZONES 32

int tp_keyring_learn_until(struct tp_keyring *k,
                           const struct getdns_list *chain, time_t now,
                           time_t cap)
{
	struct zonekeys *add, *old;
	time_t until;
	size_t i, j, n = 0, na = 0, nold = 0;
	int rv = 0;

	if (k == NULL || chain == NULL || k->max_ttl == 0)
		return 0;
	until = chain_until(chain, now, k->max_ttl);
	if (cap != 0 && cap < until)
		until = cap > now ? cap : 0;
	if (until == 0)
		return 0;
	add = calloc(2 * TP_CHAIN_ZONES, sizeof(*add));
	if (add == NULL)
		return -1;
	old = add + TP_CHAIN_ZONES;
	/* each zone once, its public keys made before the lock is taken */
	getdns_list_get_length(chain, &n);
	for (i = 0; i < n && na < TP_CHAIN_ZONES; i++) {
		getdns_dict *rr;
		struct zonekeys *z = &add[na];

		if (getdns_list_get_dict(chain, i, &rr) != GETDNS_RETURN_GOOD ||
		    rr_u32(rr, "type", 0) != TP_RR_DNSKEY ||
		    tp_rr_name(rr, "name", z->zone) != 0)
			continue;
		for (j = 0; j < na && !tp_name_equal(add[j].zone, z->zone); j++)
			;
		if (j < na)
			continue;
		z->keys = keys_of(chain, z->zone);
		if (z->keys == NULL) {
			rv = -1;
			break;
		}
		/* without it (no memory) rrsig.c leaves replies to getdns */
		z->fast = tp_zkeys_new(z->keys);
		z->until = until;
		na++;
	}
	pthread_mutex_lock(&k->lock);
	for (i = 0; i < na; i++) {
		struct zonekeys *z = slot(k, add[i].zone, now);

		if (z == NULL) {
			rv = -1;
			old[nold++] = add[i]; /* not kept */
			continue;
		}
		if (z->keys != NULL)
			old[nold++] = *z;
		*z = add[i];
	}
	pthread_mutex_unlock(&k->lock);
	for (i = 0; i < nold; i++) {
		getdns_list_destroy(old[i].keys);
		tp_zkeys_free(old[i].fast);
	}
	free(add);
	return rv;
}

/* Is zone name or one of its ancestors? */
int tp_zone_encloses(const char *zone, const char *name)
{
	size_t zl = strlen(zone), nl = strlen(name);

	if (zl > 0 && zone[zl - 1] == '.')
		zl--;
	if (nl > 0 && name[nl - 1] == '.')
		nl--;
	if (zl == 0)
		return 1; /* the root */
	if (zl > nl || strncasecmp(zone, name + nl - zl, zl) != 0)
		return 0;
	return zl == nl || name[nl - zl - 1] == '.';
}

struct getdns_list *tp_keyring_anchors(struct tp_keyring *k, const char *name,
                                       time_t now)
{
	getdns_list *tas = NULL;
	size_t i, nt = 0;

	if (k == NULL)
		return NULL;
	pthread_mutex_lock(&k->lock);
	for (i = 0; i < k->n; i++) {
		const struct zonekeys *z = &k->z[i];
		size_t j, nk = 0;

		if (z->until <= now || !tp_zone_encloses(z->zone, name))
			continue;
		if (tas == NULL && (tas = getdns_list_create()) == NULL)
			break;
		getdns_list_get_length(z->keys, &nk);
		for (j = 0; j < nk; j++) {
			getdns_dict *rr;

			if (getdns_list_get_dict(z->keys, j, &rr) ==
			            GETDNS_RETURN_GOOD &&
			    getdns_list_set_dict(tas, nt, rr) ==
			            GETDNS_RETURN_GOOD)
				nt++;
		}
	}
	pthread_mutex_unlock(&k->lock);
	if (nt == 0) {
		getdns_list_destroy(tas);
		return NULL;
	}
	return tas;
}

int tp_keyring_covers(struct tp_keyring *k, const char *name, time_t now)
{
	size_t i;
	int found = 0;

	if (k == NULL)
		return 0;
	pthread_mutex_lock(&k->lock);
	for (i = 0; i < k->n && !found; i++)
		found = k->z[i].until > now &&
		        tp_zone_encloses(k->z[i].zone, name);
	pthread_mutex_unlock(&k->lock);
	return found;
}

struct fast_arg {
	struct tp_keyring *k;
	const char *name;
	time_t now;
};

/* tp_zkeys_for: the keys of exactly zone signer, valid at now, when no
 * kept zone lies between signer and the name: the RRSIG's signer is the
 * zone that holds the RRset (RFC 4035 section 5.3.1), and a zone below
 * signer that encloses the name is known to be a zone of its own (getdns
 * decides such a reply). */
static struct tp_zkeys *fast_keys(void *arg, const char *signer)
{
	struct fast_arg *a = arg;
	const struct zonekeys *z;
	struct tp_zkeys *keys = NULL;
	size_t i, sl = strlen(signer);

	pthread_mutex_lock(&a->k->lock);
	z = find(a->k, signer);
	for (i = 0; z != NULL && i < a->k->n; i++)
		if (a->k->z[i].until > a->now && strlen(a->k->z[i].zone) > sl &&
		    tp_zone_encloses(a->k->z[i].zone, a->name) &&
		    tp_zone_encloses(signer, a->k->z[i].zone))
			z = NULL;
	if (z != NULL && z->until > a->now)
		keys = tp_zkeys_ref(z->fast);
	pthread_mutex_unlock(&a->k->lock);
	return keys;
}

int tp_keyring_check(struct tp_keyring *k, const unsigned char *pkt, size_t len,
                     const char *name, uint16_t type, time_t now)
{
	struct fast_arg a = {k, name, now};

	if (k == NULL)
		return TP_FAST_UNDECIDED;
	return tp_rrsig_check(pkt, len, name, type, fast_keys, &a, now);
}

/* Is the rdata of rr that of one of the DNSKEYs in keys? */
static int among(const getdns_dict *rr, const getdns_list *keys)
{
	getdns_bindata *a, *b;
	size_t i, n = 0;

	if (getdns_dict_get_bindata(rr, "/rdata/rdata_raw", &a) !=
	    GETDNS_RETURN_GOOD)
		return 0;
	getdns_list_get_length(keys, &n);
	for (i = 0; i < n; i++) {
		getdns_dict *k;

		if (getdns_list_get_dict(keys, i, &k) == GETDNS_RETURN_GOOD &&
		    getdns_dict_get_bindata(k, "/rdata/rdata_raw", &b) ==
		            GETDNS_RETURN_GOOD &&
		    a->size == b->size &&
		    memcmp(a->data, b->data, a->size) == 0)
			return 1;
	}
	return 0;
}

time_t tp_keyring_holds(struct tp_keyring *k, const struct getdns_list *chain,
                        const char *zone, time_t now)
{
	const struct zonekeys *z;
	getdns_list *keys;
	size_t i, n = 0, nk = 0, nz = 0;
	time_t until = 0;

	if (k == NULL || (keys = keys_of(chain, zone)) == NULL)
		return 0;
	pthread_mutex_lock(&k->lock);
	z = find(k, zone);
	if (z != NULL && z->until > now) {
		getdns_list_get_length(keys, &nk);
		getdns_list_get_length(z->keys, &nz);
		for (i = 0, n = 0; i < nk; i++) {
			getdns_dict *rr;

			if (getdns_list_get_dict(keys, i, &rr) ==
			            GETDNS_RETURN_GOOD &&
			    among(rr, z->keys))
				n++;
		}
		if (n == nk && nk == nz)
			until = z->until;
	}
	pthread_mutex_unlock(&k->lock);
	getdns_list_destroy(keys);
	return until;
}

time_t tp_keyring_until(struct tp_keyring *k, const char *zone)
{
	const struct zonekeys *z;
	time_t until = 0;

	if (k == NULL)
		return 0;
	pthread_mutex_lock(&k->lock);
	z = find(k, zone);
	if (z != NULL)
		until = z->until;
	pthread_mutex_unlock(&k->lock);
	return until;
}

/* --- the records of a zone's keys, in wire form, for a shared store --- */

/* Is rr one of zone's key records: its DNSKEY or DS RRset, or an RRSIG
 * over one of them? */
static int zone_key_record(const getdns_dict *rr, const char *zone)
{
	uint32_t t = rr_u32(rr, "type", 0);
	char owner[256];

	if (t == TP_RR_RRSIG)
		t = rr_u32(rr, "/rdata/type_covered", 0);
	return (t == TP_RR_DNSKEY || t == TP_RR_DS) &&
	       tp_rr_name(rr, "name", owner) == 0 && tp_name_equal(owner, zone);
}

long tp_zone_wire(const struct getdns_list *chain, const char *zone, time_t now,
                  unsigned max_ttl, unsigned char *buf, size_t buflen,
                  time_t *until)
{
	getdns_list *mine = getdns_list_create();
	size_t i, n = 0, nm = 0, len = 0;
	long rv = -1;

	if (mine == NULL)
		return -1;
	getdns_list_get_length(chain, &n);
	for (i = 0; i < n; i++) {
		getdns_dict *rr;
		uint8_t *w = NULL;
		size_t wl = 0;

		if (getdns_list_get_dict(chain, i, &rr) != GETDNS_RETURN_GOOD)
			goto out;
		if (!zone_key_record(rr, zone))
			continue;
		if (getdns_rr_dict2wire(rr, &w, &wl) != GETDNS_RETURN_GOOD)
			goto out;
		if (len + wl > buflen || getdns_list_set_dict(mine, nm++, rr) !=
		                                 GETDNS_RETURN_GOOD) {
			free(w);
			goto out;
		}
		memcpy(buf + len, w, wl);
		len += wl;
		free(w);
	}
	*until = chain_until(mine, now, max_ttl);
	rv = nm > 0 && *until != 0 ? (long)len : 0;
out:
	getdns_list_destroy(mine);
	return rv;
}

int tp_wire_append(struct getdns_list *list, const unsigned char *buf,
                   size_t len)
{
	const uint8_t *p = buf;
	size_t left = len, n = 0;

	getdns_list_get_length(list, &n);
	while (left > 0) {
		getdns_dict *rr = NULL;
		getdns_return_t r;

		r = getdns_wire2rr_dict_scan(&p, &left, &rr);
		if (r != GETDNS_RETURN_GOOD || rr == NULL) {
			getdns_dict_destroy(rr);
			return -1;
		}
		r = getdns_list_set_dict(list, n++, rr);
		getdns_dict_destroy(rr);
		if (r != GETDNS_RETURN_GOOD)
			return -1;
	}
	return 0;
}

#define TP_RR_CNAME    5
#define TP_CHAIN_NAMES 17

int tp_reply_answers(const struct getdns_dict *reply, const char *name,
                     uint16_t type)
{
	getdns_list *answer;
	char chain[TP_CHAIN_NAMES][256], q[256];
	size_t nchain = 1, i, n = 0;
	int grew = 1;

	/* RFC 1035 section 7.3: the reply is to the question asked */
	if (reply == NULL || tp_rr_name(reply, "/question/qname", q) != 0 ||
	    !tp_name_equal(q, name) ||
	    rr_u32(reply, "/question/qtype", 0) != type ||
	    rr_u32(reply, "/question/qclass", 0) != GETDNS_RRCLASS_IN)
		return 0;
	if (getdns_dict_get_list(reply, "answer", &answer) !=
	    GETDNS_RETURN_GOOD)
		return 1; /* nothing answered: a denial, getdns checked it */
	getdns_list_get_length(answer, &n);
	snprintf(chain[0], sizeof(chain[0]), "%s", name);
	/* the names of the CNAME chain from name, in the order it goes */
	while (grew && nchain < TP_CHAIN_NAMES) {
		grew = 0;
		for (i = 0; i < n; i++) {
			getdns_dict *rr;
			char owner[256], target[256];
			size_t j;

			if (getdns_list_get_dict(answer, i, &rr) !=
			            GETDNS_RETURN_GOOD ||
			    rr_u32(rr, "type", 0) != TP_RR_CNAME ||
			    tp_rr_name(rr, "name", owner) != 0 ||
			    !tp_name_equal(owner, chain[nchain - 1]) ||
			    tp_rr_name(rr, "/rdata/cname", target) != 0)
				continue;
			for (j = 0; j < nchain; j++)
				if (tp_name_equal(chain[j], target))
					return 0; /* a loop */
			strcpy(chain[nchain++], target);
			grew = 1;
			break;
		}
	}
	/* every record of the answer is at a name of that chain */
	for (i = 0; i < n; i++) {
		getdns_dict *rr;
		char owner[256];
		size_t j;

		if (getdns_list_get_dict(answer, i, &rr) !=
		            GETDNS_RETURN_GOOD ||
		    tp_rr_name(rr, "name", owner) != 0)
			return 0;
		for (j = 0; j < nchain && !tp_name_equal(chain[j], owner); j++)
			;
		if (j == nchain)
			return 0;
	}
	return 1;
}
