/*
 * Zone keys kept between lookups (dnschain.c, dns.c): the queries on the
 * wire are counted by a UDP relay in this process between the resolver
 * and NSD.  A lookup under a zone whose keys are kept sends one query;
 * without kept keys getdns fetches the chain from the root each time.  A
 * rolled zone signing key, a signature that expires on the kept DNSKEY
 * set, bogus answers and timeouts keep the verdicts of full lookups.  The
 * rollover tests sign and serve a hierarchy of their own (zones/serve
 * resign), so that the shared zones stay as they are.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <getdns/getdns.h>
#include <getdns/getdns_extra.h>

#include "cache.h"
#include "internal.h"
#include "testutil.h"

/* --- the keyring alone, with chains made from text --- */

static void add_rr(getdns_list *l, const char *text)
{
	getdns_dict *rr = NULL;
	size_t n = 0;

	ck_assert_msg(getdns_str2rr_dict(text, &rr, NULL, 3600) ==
	                      GETDNS_RETURN_GOOD,
	              "%s", text);
	getdns_list_get_length(l, &n);
	ck_assert_int_eq(getdns_list_set_dict(l, n, rr), GETDNS_RETURN_GOOD);
	getdns_dict_destroy(rr);
}

static void stamp(char out[16], time_t t)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 16, "%Y%m%d%H%M%S", &tm);
}

#define KEY "AQPJ////4Q=="

/* A chain of zone's DNSKEY set with its RRSIG (inception inc, expiration
 * exp) and a DS with TTL ds_ttl. */
static getdns_list *chain_of(const char *zone, time_t inc, time_t exp,
                             unsigned ds_ttl)
{
	getdns_list *l = getdns_list_create();
	char line[512], i[16], e[16];

	stamp(i, inc);
	stamp(e, exp);
	snprintf(line, sizeof(line),
	         "%s %u IN DS 12345 13 2 "
	         "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abc"
	         "def",
	         zone, ds_ttl);
	add_rr(l, line);
	snprintf(line, sizeof(line), "%s 3600 IN DNSKEY 257 3 13 " KEY, zone);
	add_rr(l, line);
	snprintf(line, sizeof(line), "%s 3600 IN DNSKEY 256 3 13 " KEY, zone);
	add_rr(l, line);
	snprintf(line, sizeof(line),
	         "%s 3600 IN RRSIG DNSKEY 13 2 3600 %s %s 12345 %s " KEY, zone,
	         e, i, zone);
	add_rr(l, line);
	return l;
}

static size_t count_anchors(struct tp_keyring *k, const char *name, time_t now)
{
	getdns_list *tas = tp_keyring_anchors(k, name, now);
	size_t n = 0;

	getdns_list_get_length(tas, &n);
	getdns_list_destroy(tas);
	return n;
}

/* [dns] keep_keys_ttl: 0 to 86400 seconds, nothing else. */
START_TEST(keep_keys_ttl_values)
{
	tlspool_dns_config *cfg = tlspool_dns_config_new();
	char err[256];

	ck_assert_int_eq(tlspool_dns_config_set(cfg, "keep_keys_ttl", "86401",
	                                        err, sizeof(err)),
	                 -1);
	ck_assert_str_eq(
	        err,
	        "keep_keys_ttl: \"86401\" is not a number from 0 to 86400");
	ck_assert_int_eq(tlspool_dns_config_set(cfg, "keep_keys_ttl", "-1", err,
	                                        sizeof(err)),
	                 -1);
	ck_assert_int_eq(tlspool_dns_config_set(cfg, "keep_keys_ttl", "1h", err,
	                                        sizeof(err)),
	                 -1);
	ck_assert_int_eq(tlspool_dns_config_set(cfg, "keep_keys_ttl", "", err,
	                                        sizeof(err)),
	                 -1);
	ck_assert_uint_eq(cfg->keep_keys_ttl, 3600); /* the default */
	ck_assert_int_eq(tlspool_dns_config_set(cfg, "keep_keys_ttl", "0", err,
	                                        sizeof(err)),
	                 0);
	ck_assert_uint_eq(cfg->keep_keys_ttl, 0);
	ck_assert_int_eq(tlspool_dns_config_set(cfg, "keep_keys_ttl", "86400",
	                                        err, sizeof(err)),
	                 0);
	ck_assert_uint_eq(cfg->keep_keys_ttl, 86400);
	tlspool_dns_config_free(cfg);
}
END_TEST

/* Negative cases first: nothing kept from a chain with a signature that
 * expired or is not yet valid, nor with keep_keys_ttl 0, nor past the
 * time it was kept for. */
START_TEST(keyring_refuses)
{
	time_t now = time(NULL);
	struct tp_keyring *k = tp_keyring_new(3600), *off = tp_keyring_new(0);
	getdns_list *expired = chain_of("a.test.", now - 7200, now - 1, 3600);
	getdns_list *early = chain_of("a.test.", now + 60, now + 7200, 3600);
	getdns_list *good = chain_of("a.test.", now - 60, now + 7200, 3600);

	ck_assert_int_eq(tp_keyring_learn(k, expired, now), 0);
	ck_assert_int_eq(tp_keyring_learn(k, early, now), 0);
	ck_assert_int_eq(tp_keyring_until(k, "a.test."), 0);
	ck_assert_ptr_null(tp_keyring_anchors(k, "x.a.test.", now));
	ck_assert_int_eq(tp_keyring_learn(off, good, now), 0);
	ck_assert_int_eq(tp_keyring_until(off, "a.test."), 0);
	ck_assert_int_eq(tp_keyring_learn(k, good, now), 0);
	ck_assert_uint_eq(count_anchors(k, "x.a.test.", now), 2);
	/* names outside the zone, or that only end like it */
	ck_assert_ptr_null(tp_keyring_anchors(k, "b.test.", now));
	ck_assert_ptr_null(tp_keyring_anchors(k, "xa.test.", now));
	/* not at or after the time it was kept until */
	ck_assert_ptr_null(tp_keyring_anchors(k, "x.a.test.",
	                                      tp_keyring_until(k, "a.test.")));
	getdns_list_destroy(expired);
	getdns_list_destroy(early);
	getdns_list_destroy(good);
	tp_keyring_free(k);
	tp_keyring_free(off);
	tp_keyring_free(NULL);
}
END_TEST

/* Kept until the earliest of the TTLs, the signature expiration and
 * keep_keys_ttl. */
START_TEST(keyring_bounds)
{
	time_t now = time(NULL);
	struct tp_keyring *k = tp_keyring_new(3600),
	                  *short_ttl = tp_keyring_new(10);
	getdns_list *sig100 = chain_of("a.test.", now - 60, now + 100, 3600);
	getdns_list *ds30 = chain_of("b.test.", now - 60, now + 7200, 30);
	getdns_list *long_sig =
	        chain_of("c.test.", now - 60, now + 86400, 86400);

	tp_keyring_learn(k, sig100, now);
	tp_keyring_learn(k, ds30, now);
	tp_keyring_learn(k, long_sig, now);
	tp_keyring_learn(short_ttl, long_sig, now);
	ck_assert_int_eq(tp_keyring_until(k, "a.test."), now + 100);
	ck_assert_int_eq(tp_keyring_until(k, "b.test."), now + 30);
	/* the DNSKEY TTL, 3600 */
	ck_assert_int_eq(tp_keyring_until(k, "c.test."), now + 3600);
	ck_assert_int_eq(tp_keyring_until(short_ttl, "c.test."), now + 10);
	ck_assert_int_eq(tp_keyring_until(k, "A.Test"), now + 100);
	getdns_list_destroy(sig100);
	getdns_list_destroy(ds30);
	getdns_list_destroy(long_sig);
	tp_keyring_free(k);
	tp_keyring_free(short_ttl);
}
END_TEST

/* At most 256 zones: the 257th replaces the one that expires first. */
START_TEST(keyring_is_bounded)
{
	time_t now = time(NULL);
	struct tp_keyring *k = tp_keyring_new(86400);
	char zone[64];
	int kept = 0;

	for (int i = 0; i < 300; i++) {
		getdns_list *c;

		snprintf(zone, sizeof(zone), "z%d.test.", i);
		c = chain_of(zone, now - 60, now + 1000 + i, 86400);
		ck_assert_int_eq(tp_keyring_learn(k, c, now), 0);
		getdns_list_destroy(c);
	}
	for (int i = 0; i < 300; i++) {
		snprintf(zone, sizeof(zone), "z%d.test.", i);
		kept += tp_keyring_until(k, zone) != 0;
	}
	ck_assert_int_eq(kept, 256);
	ck_assert_int_eq(tp_keyring_until(k, "z0.test."), 0);
	ck_assert_int_ne(tp_keyring_until(k, "z299.test."), 0);
	tp_keyring_free(k);
}
END_TEST

/* --- a counting UDP relay --- */

struct relay {
	int cfd, ufd; /* facing the resolver, facing NSD */
	unsigned port;
	struct sockaddr_in nsd;
	struct sockaddr_in client[65536]; /* by DNS ID */
	atomic_int queries;
	atomic_int drop;  /* count, but do not forward */
	atomic_int strip; /* answers without authority and additional */
	atomic_int spoil; /* replies to queries of this type: one octet of
	                     the first answer record's rdata changed */
	/* An on-path attacker: TLSA queries go to NSD as type retype, and
	 * the reply's question says TLSA again (a denial or an answer for
	 * another type passed off as one for TLSA). */
	atomic_int retype;
	/* The query's label "\3aaa" goes to NSD as "\3www": the reply is to
	 * another question (with rename_back, its question section says
	 * "aaa" again). */
	atomic_int rename, rename_back;
	atomic_int stop;
	pthread_t thr;
};

/* Past the domain name at off in msg (len octets); 0 if malformed. */
static size_t skip_name(const unsigned char *msg, size_t len, size_t off)
{
	while (off < len) {
		if ((msg[off] & 0xc0) == 0xc0)
			return off + 2 <= len ? off + 2 : 0;
		if (msg[off] == 0)
			return off + 1;
		off += 1 + msg[off];
	}
	return 0;
}

/* Cut a reply after its answer section, as an on-path attacker may:
 * the new length, or n when it cannot be parsed. */
static size_t strip_reply(unsigned char *msg, size_t n)
{
	unsigned qd = (unsigned)msg[4] << 8 | msg[5];
	unsigned an = (unsigned)msg[6] << 8 | msg[7];
	size_t off = 12;

	while (qd-- > 0) {
		off = skip_name(msg, n, off);
		if (off == 0 || off + 4 > n)
			return n;
		off += 4;
	}
	while (an-- > 0) {
		off = skip_name(msg, n, off);
		if (off == 0 || off + 10 > n)
			return n;
		off += 10 + ((size_t)msg[off + 8] << 8 | msg[off + 9]);
		if (off > n)
			return n;
	}
	memset(msg + 8, 0, 4); /* NSCOUNT, ARCOUNT */
	return off;
}

/* Change the last octet of the first answer record's rdata of a reply to
 * a query of type (an on-path attacker); nothing when it is another. */
static void spoil_reply(unsigned char *msg, size_t n, unsigned type)
{
	unsigned qd = (unsigned)msg[4] << 8 | msg[5];
	unsigned an = (unsigned)msg[6] << 8 | msg[7];
	size_t off = 12, rdlen;

	if (qd != 1 || an == 0)
		return;
	off = skip_name(msg, n, off);
	if (off == 0 || off + 4 > n ||
	    ((unsigned)msg[off] << 8 | msg[off + 1]) != type)
		return;
	off = skip_name(msg, n, off + 4);
	if (off == 0 || off + 10 > n)
		return;
	rdlen = (size_t)msg[off + 8] << 8 | msg[off + 9];
	if (rdlen > 0 && off + 10 + rdlen <= n)
		msg[off + 10 + rdlen - 1] ^= 0x01;
}

/* The offset of the question's QTYPE in msg, or 0. */
static size_t qtype_at(const unsigned char *msg, size_t n)
{
	size_t off = skip_name(msg, n, 12);

	return off != 0 && off + 4 <= n ? off : 0;
}

/* Replace the label from by to (both "\3xyz") in the question of msg. */
static void relabel(unsigned char *msg, size_t n, const char *from,
                    const char *to)
{
	size_t end = qtype_at(msg, n);

	for (size_t i = 12; end != 0 && i + 4 <= end; i++)
		if (memcmp(msg + i, from, 4) == 0)
			memcpy(msg + i, to, 4);
}

/* The tampering of an on-path attacker on a query (to NSD) or a reply
 * (to the resolver). */
static void tamper(struct relay *r, unsigned char *msg, size_t n, int reply)
{
	int rt = atomic_load(&r->retype);
	size_t q = qtype_at(msg, n);

	if (rt != 0 && q != 0) {
		unsigned t = (unsigned)msg[q] << 8 | msg[q + 1];

		if (!reply && t == 52) {
			msg[q] = (unsigned char)(rt >> 8);
			msg[q + 1] = (unsigned char)rt;
		} else if (reply && t == (unsigned)rt) {
			msg[q] = 0;
			msg[q + 1] = 52;
		}
	}
	if (atomic_load(&r->rename) && !reply)
		relabel(msg, n, "\3aaa", "\3www");
	if (atomic_load(&r->rename_back) && reply)
		relabel(msg, n, "\3www", "\3aaa");
}

static void *relay_run(void *arg)
{
	struct relay *r = arg;
	unsigned char buf[65536];

	while (!atomic_load(&r->stop)) {
		struct pollfd p[2] = {{r->cfd, POLLIN, 0}, {r->ufd, POLLIN, 0}};
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		ssize_t n;

		if (poll(p, 2, 50) <= 0)
			continue;
		if (p[0].revents & POLLIN) {
			n = recvfrom(r->cfd, buf, sizeof(buf), 0,
			             (struct sockaddr *)&from, &fl);
			if (n >= 12) {
				unsigned id = (unsigned)buf[0] << 8 | buf[1];

				atomic_fetch_add(&r->queries, 1);
				r->client[id] = from;
				tamper(r, buf, (size_t)n, 0);
				if (!atomic_load(&r->drop))
					sendto(r->ufd, buf, (size_t)n, 0,
					       (struct sockaddr *)&r->nsd,
					       sizeof(r->nsd));
			}
		}
		if (p[1].revents & POLLIN) {
			n = recv(r->ufd, buf, sizeof(buf), 0);
			if (n >= 12) {
				unsigned id = (unsigned)buf[0] << 8 | buf[1];

				if (atomic_load(&r->strip))
					n = (ssize_t)strip_reply(buf,
					                         (size_t)n);
				if (atomic_load(&r->spoil))
					spoil_reply(buf, (size_t)n,
					            (unsigned)atomic_load(
					                    &r->spoil));
				tamper(r, buf, (size_t)n, 1);
				sendto(r->cfd, buf, (size_t)n, 0,
				       (struct sockaddr *)&r->client[id],
				       sizeof(r->client[0]));
			}
		}
	}
	return NULL;
}

static int udp_socket(void)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	ck_assert_int_ge(fd, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static struct relay *relay_start(unsigned nsd_port)
{
	struct relay *r = calloc(1, sizeof(*r));
	struct sockaddr_in a;
	socklen_t al = sizeof(a);

	ck_assert_ptr_nonnull(r);
	r->cfd = udp_socket();
	r->ufd = udp_socket();
	ck_assert_int_eq(getsockname(r->cfd, (struct sockaddr *)&a, &al), 0);
	r->port = ntohs(a.sin_port);
	r->nsd.sin_family = AF_INET;
	r->nsd.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	r->nsd.sin_port = htons((uint16_t)nsd_port);
	ck_assert_int_eq(pthread_create(&r->thr, NULL, relay_run, r), 0);
	return r;
}

static void relay_stop(struct relay *r)
{
	atomic_store(&r->stop, 1);
	pthread_join(r->thr, NULL);
	close(r->cfd);
	close(r->ufd);
	free(r);
}

/* --- the zones, the handle, a lookup --- */

static unsigned zones_port(const char *dir)
{
	char path[600], line[256];
	unsigned port = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/env", dir);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "TLSPOOL_ZONES_PORT=%u", &port) == 1)
			break;
	fclose(f);
	ck_assert_uint_gt(port, 0);
	return port;
}

/* A handle on dir's zones through relay r, keeping keys keep seconds. */
static tlspool_dns *open_dns(const char *dir, struct relay *r, unsigned keep)
{
	tlspool_dns_config *cfg = tlspool_dns_config_new();
	tlspool_dns *dns;
	char v[600], err[512];

	ck_assert_ptr_nonnull(cfg);
	snprintf(v, sizeof(v), "127.0.0.1@%u", r->port);
	ck_assert_int_eq(
	        tlspool_dns_config_set(cfg, "upstream", v, err, sizeof(err)),
	        0);
	snprintf(v, sizeof(v), "%s/root.key", dir);
	ck_assert_int_eq(tlspool_dns_config_set(cfg, "trust_anchor", v, err,
	                                        sizeof(err)),
	                 0);
	ck_assert_int_eq(tlspool_dns_config_set(cfg, "timeout_ms", "1000", err,
	                                        sizeof(err)),
	                 0);
	snprintf(v, sizeof(v), "%u", keep);
	ck_assert_int_eq(tlspool_dns_config_set(cfg, "keep_keys_ttl", v, err,
	                                        sizeof(err)),
	                 0);
	dns = tlspool_dns_new(cfg, err, sizeof(err));
	tlspool_dns_config_free(cfg);
	ck_assert_msg(dns != NULL, "%s", err);
	return dns;
}

/* Look name up; the verdict must be want; returns the queries it sent. */
static int lookup(tlspool_dns *dns, struct relay *r, const char *name,
                  uint16_t type, tlspool_dns_verdict want)
{
	tlspool_dns_answer *a = NULL;
	char err[256];
	int before = atomic_load(&r->queries);

	ck_assert_msg(
	        tlspool_dns_lookup(dns, name, type, &a, err, sizeof(err)) == 0,
	        "%s: %s", name, err);
	ck_assert_msg(a->verdict == want, "%s: %s, want %s (%s)", name,
	              tlspool_dns_verdict_name(a->verdict),
	              tlspool_dns_verdict_name(want), a->detail);
	if (want != TLSPOOL_DNS_SECURE && want != TLSPOOL_DNS_INSECURE)
		ck_assert_uint_eq(a->nrr, 0);
	tlspool_dns_answer_free(a);
	return atomic_load(&r->queries) - before;
}

#define TLSA 52

/* Keeping off: every lookup fetches the chain from the root again. */
START_TEST(without_kept_keys_the_chain_each_time)
{
	const char *dir = tp_zones_dir();
	struct relay *r = relay_start(zones_port(dir));
	tlspool_dns *dns = open_dns(dir, r, 0);
	unsigned long kept, full;
	int q1, q2;

	q1 = lookup(dns, r, "_443._tcp.www.example.test", TLSA,
	            TLSPOOL_DNS_SECURE);
	q2 = lookup(dns, r, "_443._udp.www.example.test", TLSA,
	            TLSPOOL_DNS_SECURE);
	fprintf(stderr, "keep_keys_ttl = 0: %d then %d queries\n", q1, q2);
	/* the record, and DNSKEY . DS test DNSKEY test DS example.test
	 * DNSKEY example.test */
	ck_assert_int_ge(q2, 4);
	tp_dns_counts(dns, &kept, &full);
	ck_assert_uint_eq(kept, 0);
	ck_assert_uint_eq(full, 2);
	ck_assert_int_eq(tp_dns_keys_until(dns, "example.test."), 0);
	tlspool_dns_free(dns);
	relay_stop(r);
}
END_TEST

/* The validation chain of a lookup of name, asked of dir's zones. */
static getdns_list *chain_from(const char *dir, const char *name)
{
	getdns_context *ctx = NULL;
	getdns_list *ups = getdns_list_create(), *chain, *copy = NULL;
	getdns_dict *up = getdns_dict_create(), *ext = getdns_dict_create();
	getdns_dict *resp = NULL;
	uint8_t lo[4] = {127, 0, 0, 1};
	getdns_bindata type = {4, (uint8_t *)"IPv4"}, addr = {4, lo};

	ck_assert_int_eq(getdns_context_create(&ctx, 0), GETDNS_RETURN_GOOD);
	getdns_context_set_resolution_type(ctx, GETDNS_RESOLUTION_STUB);
	getdns_dict_set_bindata(up, "address_type", &type);
	getdns_dict_set_bindata(up, "address_data", &addr);
	getdns_dict_set_int(up, "port", zones_port(dir));
	getdns_list_set_dict(ups, 0, up);
	ck_assert_int_eq(
	        getdns_context_set_upstream_recursive_servers(ctx, ups),
	        GETDNS_RETURN_GOOD);
	getdns_dict_set_int(ext, "dnssec_return_validation_chain",
	                    GETDNS_EXTENSION_TRUE);
	ck_assert_int_eq(getdns_general_sync(ctx, name, TLSA, ext, &resp),
	                 GETDNS_RETURN_GOOD);
	ck_assert_int_eq(getdns_dict_get_list(resp, "validation_chain", &chain),
	                 GETDNS_RETURN_GOOD);
	/* a copy that outlives the response */
	{
		size_t i, n = 0;

		copy = getdns_list_create();
		getdns_list_get_length(chain, &n);
		for (i = 0; i < n; i++) {
			getdns_dict *rr;

			getdns_list_get_dict(chain, i, &rr);
			getdns_list_set_dict(copy, i, rr);
		}
	}
	getdns_dict_destroy(resp);
	getdns_dict_destroy(ext);
	getdns_dict_destroy(up);
	getdns_list_destroy(ups);
	getdns_context_destroy(ctx);
	return copy;
}

/* Keys are kept only when they validate from the trust anchor, whatever
 * the chain holds: a DNSKEY slipped into a zone's set, or a zone's keys
 * that nothing signs, or another trust anchor, and nothing is kept. */
START_TEST(chain_validated_before_keeping)
{
	const char *dir = tp_zones_dir();
	struct relay *r = relay_start(zones_port(dir));
	tlspool_dns *dns = open_dns(dir, r, 3600), *other;
	tlspool_dns_config *cfg = tlspool_dns_config_new();
	getdns_list *chain = chain_from(dir, "_443._tcp.www.example.test");
	time_t now = time(NULL);
	size_t n = 0;
	char err[256];

	getdns_list_get_length(chain, &n);
	ck_assert_uint_ge(n, 6);
	tlspool_dns_config_set(cfg, "trust_anchor", "/usr/share/dns/root.key",
	                       NULL, 0);
	other = tlspool_dns_new(cfg, err, sizeof(err));
	tlspool_dns_config_free(cfg);
	ck_assert_ptr_nonnull(other);
	ck_assert_int_eq(tp_dns_keys_validated(other, chain, now), 0);
	/* 30 days on, the signatures have expired */
	ck_assert_int_eq(tp_dns_keys_validated(dns, chain, now + 30 * 86400),
	                 0);
	ck_assert_int_eq(tp_dns_keys_validated(dns, chain, now), 1);
	add_rr(chain, "evil.example.test. 3600 IN DNSKEY 257 3 13 " KEY);
	ck_assert_int_eq(tp_dns_keys_validated(dns, chain, now), 0);
	getdns_list_destroy(chain);
	chain = chain_from(dir, "_443._tcp.www.example.test");
	add_rr(chain, "example.test. 3600 IN DNSKEY 256 3 13 " KEY);
	ck_assert_int_eq(tp_dns_keys_validated(dns, chain, now), 0);
	getdns_list_destroy(chain);
	tlspool_dns_free(other);
	tlspool_dns_free(dns);
	relay_stop(r);
}
END_TEST

/* A timeout on the one-query path is a timeout, not bogus nor secure. */
START_TEST(timeout_with_kept_keys_is_timeout)
{
	const char *dir = tp_zones_dir();
	struct relay *r = relay_start(zones_port(dir));
	tlspool_dns *dns = open_dns(dir, r, 3600);
	tlspool_dns_answer *a = NULL;

	lookup(dns, r, "_443._tcp.www.example.test", TLSA, TLSPOOL_DNS_SECURE);
	atomic_store(&r->drop, 1);
	ck_assert_int_eq(tlspool_dns_lookup(dns, "_443._udp.www.example.test",
	                                    TLSA, &a, NULL, 0),
	                 0);
	ck_assert_str_eq(tlspool_dns_verdict_name(a->verdict), "timeout");
	ck_assert_uint_eq(a->nrr, 0);
	ck_assert_ptr_nonnull(strstr(a->detail, "no answer within 1000 ms"));
	tlspool_dns_answer_free(a);
	tlspool_dns_free(dns);
	relay_stop(r);
}
END_TEST

/* Kept keys never make an error secure: bogus, expired and insecure
 * answers near kept zones get the verdicts of full lookups. */
START_TEST(kept_keys_keep_errors)
{
	const char *dir = tp_zones_dir();
	struct relay *r = relay_start(zones_port(dir));
	tlspool_dns *dns = open_dns(dir, r, 3600);
	tlspool_dns_answer *a = NULL;
	unsigned long fast, bad, fast2, bad2;

	/* keys of ., test., example.test. and other.test. kept */
	lookup(dns, r, "_443._tcp.far.example.test", TLSA, TLSPOOL_DNS_SECURE);
	for (int i = 0; i < 2; i++) {
		lookup(dns, r, "_443._tcp.www.bogus.test", TLSA,
		       TLSPOOL_DNS_BOGUS);
		lookup(dns, r, "_443._tcp.www.insecure.test", TLSA,
		       TLSPOOL_DNS_INSECURE);
		lookup(dns, r, "_443._tcp.toinsecure.example.test", TLSA,
		       TLSPOOL_DNS_INSECURE);
		lookup(dns, r, "_443._tcp.loop1.example.test", TLSA,
		       TLSPOOL_DNS_BOGUS);
	}
	ck_assert_int_eq(tlspool_dns_lookup(dns, "_443._tcp.www.expired.test",
	                                    TLSA, &a, NULL, 0),
	                 0);
	ck_assert_int_eq(a->verdict, TLSPOOL_DNS_BOGUS);
	ck_assert_str_eq(a->detail, "RRSIG expired");
	tlspool_dns_answer_free(a);
	/* child zones of test.: an unsigned one (no DS) and one whose keys
	 * carry expired signatures are never kept; bogus.test's keys are
	 * good (only its TLSA RRsets are broken), and kept */
	ck_assert_int_eq(tp_dns_keys_until(dns, "insecure.test."), 0);
	ck_assert_int_eq(tp_dns_keys_until(dns, "expired.test."), 0);
	ck_assert_int_gt(tp_dns_keys_until(dns, "bogus.test."), time(NULL));
	/* a broken signature in a child zone with kept keys is bogus: the
	 * fast check (rrsig.c) finds it bad, and so does getdns */
	tp_dns_fast_counts(dns, &fast, &bad);
	ck_assert_int_eq(tlspool_dns_lookup(dns, "_443._tcp.www.bogus.test",
	                                    TLSA, &a, NULL, 0),
	                 0);
	ck_assert_int_eq(a->verdict, TLSPOOL_DNS_BOGUS);
	tlspool_dns_answer_free(a);
	tp_dns_fast_counts(dns, &fast2, &bad2);
	ck_assert_uint_eq(fast2, fast);
	ck_assert_uint_eq(bad2, bad + 1);
	tlspool_dns_free(dns);
	relay_stop(r);
}
END_TEST

/* A child zone's DS or DNSKEY set changed on the path: its keys are not
 * kept and the answer is bogus, as a full lookup finds too. */
START_TEST(child_zone_keys_spoiled)
{
	const char *dir = tp_zones_dir();
	struct relay *r = relay_start(zones_port(dir));
	tlspool_dns *dns = open_dns(dir, r, 3600);
	unsigned types[2] = {43, 48}; /* DS, DNSKEY */

	for (int i = 0; i < 2; i++) {
		lookup(dns, r, "_443._tcp.www.example.test", TLSA,
		       TLSPOOL_DNS_SECURE);
		atomic_store(&r->spoil, (int)types[i]);
		lookup(dns, r, "_443._tcp.www.other.test", TLSA,
		       TLSPOOL_DNS_BOGUS);
		ck_assert_int_eq(tp_dns_keys_until(dns, "other.test."), 0);
		atomic_store(&r->spoil, 0);
		ck_assert_int_eq(lookup(dns, r, "_443._tcp.www.other.test",
		                        TLSA, TLSPOOL_DNS_SECURE),
		                 3);
		tlspool_dns_free(dns);
		dns = open_dns(dir, r, 3600);
	}
	tlspool_dns_free(dns);
	relay_stop(r);
}
END_TEST

/* The verdict of a lookup of name (a lookup that fails is a test
 * failure). */
static tlspool_dns_verdict verdict_of(tlspool_dns *dns, const char *name,
                                      uint16_t type, char *detail, size_t cap)
{
	tlspool_dns_answer *a = NULL;
	tlspool_dns_verdict v;
	char err[256];

	ck_assert_msg(
	        tlspool_dns_lookup(dns, name, type, &a, err, sizeof(err)) == 0,
	        "%s: %s", name, err);
	v = a->verdict;
	snprintf(detail, cap, "%s (%s, %zu records)",
	         tlspool_dns_verdict_name(v), a->detail, a->nrr);
	tlspool_dns_answer_free(a);
	return v;
}

/* An on-path attacker who answers a TLSA question with what the zone
 * signed for another question: a denial of another type at the name
 * (whose NSEC3 bitmap shows TLSA), an answer to another name, or that
 * answer with the question put back.  Signatures all valid, none of it
 * answers the question: an error, never a secure denial (that would take
 * DANE away, RFC 7672 section 2.2) nor a secure answer; with kept keys as
 * with a full lookup. */
START_TEST(kept_keys_refuse_answers_to_other_questions)
{
	const char *dir = tp_zones_dir();
	static const unsigned keep[] = {0, 3600};

	for (size_t k = 0; k < 2; k++) {
		struct relay *r = relay_start(zones_port(dir));
		tlspool_dns *dns = open_dns(dir, r, keep[k]);
		tlspool_dns_verdict v;
		char d[400];

		lookup(dns, r, "_443._tcp.www.example.test", TLSA,
		       TLSPOOL_DNS_SECURE);
		/* the denial of TXT at a name that has TLSA records */
		atomic_store(&r->retype, 16);
		v = verdict_of(dns, "_443._tcp.www.example.test", TLSA, d,
		               sizeof(d));
		ck_assert_msg(tlspool_dns_verdict_is_error(v),
		              "keep %u: a TXT denial as TLSA: %s", keep[k], d);
		atomic_store(&r->retype, 0);
		/* a denial without its proof */
		atomic_store(&r->strip, 1);
		v = verdict_of(dns, "_443._tcp.nodata.example.test", TLSA, d,
		               sizeof(d));
		ck_assert_msg(tlspool_dns_verdict_is_error(v),
		              "keep %u: a denial without proof: %s", keep[k],
		              d);
		atomic_store(&r->strip, 0);
		/* the reply to _443._tcp.www for _443._tcp.aaa */
		atomic_store(&r->rename, 1);
		v = verdict_of(dns, "_443._tcp.aaa.example.test", TLSA, d,
		               sizeof(d));
		ck_assert_msg(tlspool_dns_verdict_is_error(v),
		              "keep %u: another name's reply: %s", keep[k], d);
		atomic_store(&r->rename_back, 1);
		v = verdict_of(dns, "_443._tcp.aaa.example.test", TLSA, d,
		               sizeof(d));
		ck_assert_msg(tlspool_dns_verdict_is_error(v),
		              "keep %u: another name's reply, question put "
		              "back: %s",
		              keep[k], d);
		atomic_store(&r->rename, 0);
		atomic_store(&r->rename_back, 0);
		/* and the true answer still validates */
		lookup(dns, r, "_443._tcp.www.example.test", TLSA,
		       TLSPOOL_DNS_SECURE);
		tlspool_dns_free(dns);
		relay_stop(r);
	}
}
END_TEST

/* A name in wire form at key of d. */
static void set_name(getdns_dict *d, const char *key, const char *name)
{
	getdns_bindata *b = NULL;

	ck_assert_int_eq(getdns_convert_fqdn_to_dns_name(name, &b),
	                 GETDNS_RETURN_GOOD);
	ck_assert_int_eq(getdns_dict_set_bindata(d, key, b),
	                 GETDNS_RETURN_GOOD);
	free(b->data);
	free(b);
}

/* A reply to (qname, qtype, qclass) whose answer section holds the
 * records "owner TYPE [cname-target]" of spec, ";" between them. */
static getdns_dict *reply_of(const char *qname, uint32_t qtype, uint32_t qclass,
                             const char *spec)
{
	getdns_dict *reply = getdns_dict_create(), *q = getdns_dict_create();
	getdns_list *answer = getdns_list_create();
	char buf[512], *save = NULL;
	size_t n = 0;

	set_name(q, "qname", qname);
	getdns_dict_set_int(q, "qtype", qtype);
	getdns_dict_set_int(q, "qclass", qclass);
	getdns_dict_set_dict(reply, "question", q);
	getdns_dict_destroy(q);
	snprintf(buf, sizeof(buf), "%s", spec);
	for (char *t = strtok_r(buf, ";", &save); t != NULL;
	     t = strtok_r(NULL, ";", &save)) {
		getdns_dict *rr = getdns_dict_create(), *rd;
		char owner[256], type[16], target[256] = "";

		ck_assert_int_ge(
		        sscanf(t, "%255s %15s %255s", owner, type, target), 2);
		set_name(rr, "name", owner);
		getdns_dict_set_int(rr, "class", GETDNS_RRCLASS_IN);
		getdns_dict_set_int(rr, "type",
		                    strcmp(type, "CNAME") == 0   ? 5
		                    : strcmp(type, "RRSIG") == 0 ? 46
		                                                 : 52);
		rd = getdns_dict_create();
		if (target[0] != '\0')
			set_name(rd, "cname", target);
		getdns_dict_set_dict(rr, "rdata", rd);
		getdns_dict_destroy(rd);
		getdns_list_set_dict(answer, n++, rr);
		getdns_dict_destroy(rr);
	}
	if (spec[0] != '\0')
		getdns_dict_set_list(reply, "answer", answer);
	getdns_list_destroy(answer);
	return reply;
}

/* tp_reply_answers(): negative cases first. */
START_TEST(reply_must_answer_the_question)
{
	static const struct {
		const char *qname;
		uint32_t qtype, qclass;
		const char *spec;
		int want;
	} c[] = {
	        /* another question */
	        {"_443._tcp.www.example.test.", 52, 1, "", 0},
	        {"_443._tcp.aaa.example.test.", 16, 1, "", 0},
	        {"_443._tcp.aaa.example.test.", 52, 3, "", 0},
	        /* the question, answered at another name */
	        {"_443._tcp.aaa.example.test.", 52, 1,
	         "_443._tcp.www.example.test. TLSA;"
	         "_443._tcp.www.example.test. RRSIG",
	         0},
	        /* a CNAME of another name, then records at its target */
	        {"_443._tcp.aaa.example.test.", 52, 1,
	         "x.example.test. CNAME _443._tcp.www.example.test.;"
	         "_443._tcp.www.example.test. TLSA",
	         0},
	        /* a loop */
	        {"_443._tcp.aaa.example.test.", 52, 1,
	         "_443._tcp.aaa.example.test. CNAME b.example.test.;"
	         "b.example.test. CNAME _443._tcp.aaa.example.test.",
	         0},
	        /* the answer, in any case of letters */
	        {"_443._tcp.aaa.example.test.", 52, 1, "", 1},
	        {"_443._tcp.AAA.example.test.", 52, 1,
	         "_443._tcp.aaa.example.TEST. TLSA;"
	         "_443._tcp.aaa.example.test. RRSIG",
	         1},
	        /* a chain of two CNAMEs, out of order, then the records */
	        {"_443._tcp.aaa.example.test.", 52, 1,
	         "b.other.test. CNAME c.example.test.;"
	         "c.example.test. TLSA;"
	         "_443._tcp.aaa.example.test. CNAME b.other.test.;"
	         "c.example.test. RRSIG",
	         1},
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		getdns_dict *reply = reply_of(c[i].qname, c[i].qtype,
		                              c[i].qclass, c[i].spec);

		ck_assert_msg(tp_reply_answers(reply,
		                               "_443._tcp.aaa.example.test.",
		                               52) == c[i].want,
		              "case %zu: %s %u: %s", i, c[i].qname, c[i].qtype,
		              c[i].spec);
		getdns_dict_destroy(reply);
	}
	ck_assert_int_eq(tp_reply_answers(NULL, "a.test.", 52), 0);
}
END_TEST

/* One thread of concurrent_lookups_share_the_keyring. */
static void *lookups(void *arg)
{
	static const struct {
		const char *name;
		uint16_t type;
		tlspool_dns_verdict want;
	} q[] = {
	        {"_443._tcp.www.example.test", TLSA, TLSPOOL_DNS_SECURE},
	        {"_443._tcp.missing.example.test", TLSA,
	         TLSPOOL_DNS_SECURE_NXDOMAIN},
	        {"_443._tcp.www.other.test", TLSA, TLSPOOL_DNS_SECURE},
	        {"_443._tcp.www.bogus.test", TLSA, TLSPOOL_DNS_BOGUS},
	        {"_443._tcp.www.insecure.test", TLSA, TLSPOOL_DNS_INSECURE},
	        {"www.example.test", TLSPOOL_RR_A, TLSPOOL_DNS_SECURE},
	};
	tlspool_dns *dns = arg;
	long bad = 0;

	for (int i = 0; i < 24; i++) {
		tlspool_dns_answer *a = NULL;
		size_t k = (size_t)i % (sizeof(q) / sizeof(q[0]));

		if (tlspool_dns_lookup(dns, q[k].name, q[k].type, &a, NULL,
		                       0) != 0 ||
		    a->verdict != q[k].want)
			bad++;
		tlspool_dns_answer_free(a);
	}
	return (void *)bad;
}

/* Threads that share one handle share its keyring: each lookup's verdict
 * is a full lookup's (run under ASAN, valgrind or helgrind for the
 * races). */
START_TEST(concurrent_lookups_share_the_keyring)
{
	const char *dir = tp_zones_dir();
	struct relay *r = relay_start(zones_port(dir));
	tlspool_dns *dns = open_dns(dir, r, 3600);
	pthread_t t[4];
	unsigned long kept, full;

	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, lookups, dns), 0);
	for (int i = 0; i < 4; i++) {
		void *bad = NULL;

		pthread_join(t[i], &bad);
		ck_assert_msg(bad == NULL, "thread %d: %ld wrong verdicts", i,
		              (long)bad);
	}
	tp_dns_counts(dns, &kept, &full);
	ck_assert_uint_gt(kept, 0);
	tlspool_dns_free(dns);
	relay_stop(r);
}
END_TEST

/* The point: after one full lookup, a new name in the zone costs one
 * query, answers and denials alike. */
START_TEST(new_name_in_kept_zone_one_query)
{
	const char *dir = tp_zones_dir();
	struct relay *r = relay_start(zones_port(dir));
	tlspool_dns *dns = open_dns(dir, r, 3600);
	unsigned long kept, full, fast, bad;
	time_t until;
	int q;

	q = lookup(dns, r, "_443._tcp.www.example.test", TLSA,
	           TLSPOOL_DNS_SECURE);
	ck_assert_int_ge(q, 4);
	fprintf(stderr, "keep_keys_ttl = 3600: %d then %d queries\n", q,
	        lookup(dns, r, "_25._tcp.www.example.test", TLSA,
	               TLSPOOL_DNS_SECURE_NXDOMAIN));
	until = tp_dns_keys_until(dns, "example.test.");
	ck_assert_int_gt(until, time(NULL));
	ck_assert_int_le(until, time(NULL) + 3600);
	ck_assert_int_gt(tp_dns_keys_until(dns, "test."), time(NULL));
	ck_assert_int_gt(tp_dns_keys_until(dns, "."), time(NULL));
	ck_assert_int_eq(tp_dns_keys_until(dns, "other.test."), 0);
	ck_assert_int_eq(lookup(dns, r, "_443._udp.www.example.test", TLSA,
	                        TLSPOOL_DNS_SECURE),
	                 1);
	ck_assert_int_eq(lookup(dns, r, "www.example.test", TLSPOOL_RR_A,
	                        TLSPOOL_DNS_SECURE),
	                 1);
	ck_assert_int_eq(lookup(dns, r, "_443._tcp.nodata.example.test", TLSA,
	                        TLSPOOL_DNS_SECURE_NODATA),
	                 1);
	ck_assert_int_eq(lookup(dns, r, "_443._tcp.missing.example.test", TLSA,
	                        TLSPOOL_DNS_SECURE_NXDOMAIN),
	                 1);
	ck_assert_int_eq(lookup(dns, r, "_443._tcp.alias.example.test", TLSA,
	                        TLSPOOL_DNS_SECURE),
	                 1);
	/* another zone under a kept parent: its own keys are not kept yet;
	 * the reply, then its DS (signed by test.) and DNSKEY sets, and the
	 * reply validated with them */
	ck_assert_int_eq(tp_dns_keys_until(dns, "other.test."), 0);
	q = lookup(dns, r, "_443._tcp.www.other.test", TLSA,
	           TLSPOOL_DNS_SECURE);
	fprintf(stderr, "a child zone of a kept zone: %d queries\n", q);
	ck_assert_int_eq(q, 3);
	ck_assert_int_gt(tp_dns_keys_until(dns, "other.test."), time(NULL));
	ck_assert_int_le(tp_dns_keys_until(dns, "other.test."),
	                 tp_dns_keys_until(dns, "test."));
	ck_assert_int_eq(lookup(dns, r, "www.other.test", TLSPOOL_RR_A,
	                        TLSPOOL_DNS_SECURE),
	                 1);
	tp_dns_counts(dns, &kept, &full);
	ck_assert_uint_eq(kept, 8);
	ck_assert_uint_eq(full, 1);
	/* of those, the plain answers under kept keys were checked by
	 * rrsig.c (_443._udp.www, www A, _443._tcp.www.other.test once its
	 * keys were kept, www.other.test A); the CNAME and the denials by
	 * getdns */
	tp_dns_fast_counts(dns, &fast, &bad);
	ck_assert_uint_eq(fast, 4);
	ck_assert_uint_eq(bad, 0);
	tlspool_dns_free(dns);
	relay_stop(r);
}
END_TEST

/* How long keys are kept: the configured bound, and the TTLs (3600 in
 * the test zones). */
START_TEST(keys_kept_within_bounds)
{
	const char *dir = tp_zones_dir();
	struct relay *r = relay_start(zones_port(dir));
	tlspool_dns *dns = open_dns(dir, r, 60);
	time_t now = time(NULL);

	lookup(dns, r, "_443._tcp.www.example.test", TLSA, TLSPOOL_DNS_SECURE);
	ck_assert_int_ge(tp_dns_keys_until(dns, "example.test."), now + 59);
	ck_assert_int_le(tp_dns_keys_until(dns, "example.test."),
	                 time(NULL) + 60);
	tlspool_dns_free(dns);
	dns = open_dns(dir, r, 86400);
	now = time(NULL);
	lookup(dns, r, "_443._tcp.www.example.test", TLSA, TLSPOOL_DNS_SECURE);
	ck_assert_int_ge(tp_dns_keys_until(dns, "example.test."), now + 3599);
	ck_assert_int_le(tp_dns_keys_until(dns, "example.test."),
	                 time(NULL) + 3600);
	tlspool_dns_free(dns);
	relay_stop(r);
}
END_TEST

/* --- zone keys in the shared cache (libtlspool's cache_keys.c) --- */

/* A new LMDB cache file for one test. */
static void cache_path(char out[600])
{
	char dir[] = "/tmp/tp-dnschain-XXXXXX";

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(out, 600, "%s/cache.mdb", dir);
}

static void cache_remove(const char *path)
{
	char cmd[700];

	snprintf(cmd, sizeof(cmd), "rm -rf \"$(dirname %s)\"", path);
	(void)!system(cmd);
}

/* A handle on dir's zones through r with the cache at path. */
static tlspool_dns *open_shared(const char *dir, struct relay *r, tp_cache *c)
{
	tlspool_dns *dns = open_dns(dir, r, 3600);

	tp_cache_keys_attach(c, dns);
	return dns;
}

static int count_zonekeys(const tlspool_cache_entry *e, void *arg)
{
	if (e->valid && e->zonekeys && e->pass && !e->authz &&
	    e->expiry > time(NULL) && strncmp(e->other, "DNSKEY DS (", 11) == 0)
		(*(int *)arg)++;
	return 0;
}

/* The stored data of zone's keys into buf (its length). */
static size_t stored(tp_cache *c, const char *zone, unsigned char *buf,
                     time_t *until)
{
	struct tp_cache_key k = {
	        .kind = TP_CACHE_KEYS, .a = zone, .b = "", .type = 48};
	size_t len = 0;
	char note[256] = "";

	ck_assert_int_eq(tp_cache_get_data(c, &k, time(NULL), buf,
	                                   TP_CACHE_DATA_MAX, &len, until, note,
	                                   sizeof(note)),
	                 TP_CACHE_PASS);
	return len;
}

static void restore(tp_cache *c, const char *zone, const unsigned char *buf,
                    size_t len, time_t until)
{
	struct tp_cache_key k = {
	        .kind = TP_CACHE_KEYS, .a = zone, .b = "", .type = 48};
	char note[256] = "";

	ck_assert_msg(tp_cache_put_data(c, &k, buf, len, until, time(NULL),
	                                note, sizeof(note)) == 0,
	              "%s", note);
}

/* Process A validates a name (the chain from the root), process B with
 * the same cache file validates a new name in the zone in one query:
 * the keys it read from the file, validated from the trust anchor. */
START_TEST(stored_keys_shared_between_processes)
{
	const char *dir = tp_zones_dir();
	struct relay *r = relay_start(zones_port(dir));
	char path[600];
	tp_cache *c;
	tlspool_dns *dns;
	int before, status = -1, q, n = 0, fds[2];
	char verdict = 0;
	pid_t pid;

	cache_path(path);
	ck_assert_int_eq(pipe(fds), 0);
	before = atomic_load(&r->queries);
	/* The child is made from this thread alone: the relay's thread is
	 * stopped over the fork() and started again in the parent, where it
	 * serves the child's queries (no lock another thread held at the
	 * fork can stop the child, whatever the allocator or sanitizer). */
	atomic_store(&r->stop, 1);
	pthread_join(r->thr, NULL);
	atomic_store(&r->stop, 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid != 0)
		ck_assert_int_eq(pthread_create(&r->thr, NULL, relay_run, r),
		                 0);
	if (pid == 0) {
		tp_cache *ca = tp_cache_new(path, 86400);
		tlspool_dns *a = open_shared(dir, r, ca);
		tlspool_dns_answer *ans = NULL;
		int ok = tlspool_dns_lookup(a, "_443._tcp.www.example.test",
		                            TLSA, &ans, NULL, 0) == 0 &&
		         ans->verdict == TLSPOOL_DNS_SECURE;

		/* the verdict through the pipe; then gone without exit
		 * handlers (under valgrind, no leak report of a process that
		 * is a copy of the test) */
		(void)!write(fds[1], ok ? "y" : "n", 1);
		tlspool_dns_answer_free(ans);
		raise(SIGKILL);
	}
	close(fds[1]);
	ck_assert_int_eq(read(fds[0], &verdict, 1), 1);
	close(fds[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_int_eq(verdict, 'y');
	q = atomic_load(&r->queries) - before;
	ck_assert_int_ge(q, 4);
	c = tp_cache_new(path, 86400);
	ck_assert_int_eq(tp_cache_list(c, count_zonekeys, &n, NULL, 0), 0);
	ck_assert_int_eq(n, 3); /* ., test., example.test. */
	dns = open_shared(dir, r, c);
	ck_assert_uint_eq(tp_dns_loaded(dns), 0);
	fprintf(stderr, "process A: %d queries; process B: %d\n", q,
	        lookup(dns, r, "_443._udp.www.example.test", TLSA,
	               TLSPOOL_DNS_SECURE));
	ck_assert_uint_eq(tp_dns_loaded(dns), 1);
	ck_assert_int_gt(tp_dns_keys_until(dns, "example.test."), time(NULL));
	ck_assert_int_eq(lookup(dns, r, "www.example.test", TLSPOOL_RR_A,
	                        TLSPOOL_DNS_SECURE),
	                 1);
	ck_assert_uint_eq(tp_dns_loaded(dns), 1); /* not read again */
	tlspool_dns_free(dns);
	/* once more, for the count (the lookup above was in a message) */
	dns = open_shared(dir, r, c);
	ck_assert_int_eq(lookup(dns, r, "_443._tcp.nodata.example.test", TLSA,
	                        TLSPOOL_DNS_SECURE_NODATA),
	                 1);
	/* errors stay errors, and read nothing new from the store */
	lookup(dns, r, "_443._tcp.www.bogus.test", TLSA, TLSPOOL_DNS_BOGUS);
	lookup(dns, r, "_443._tcp.www.insecure.test", TLSA,
	       TLSPOOL_DNS_INSECURE);
	ck_assert_uint_eq(tp_dns_loaded(dns), 1);
	/* a child zone's keys, fetched in three queries, are stored too */
	ck_assert_int_eq(lookup(dns, r, "_443._tcp.www.other.test", TLSA,
	                        TLSPOOL_DNS_SECURE),
	                 3);
	tlspool_dns_free(dns);
	n = 0;
	ck_assert_int_eq(tp_cache_list(c, count_zonekeys, &n, NULL, 0), 0);
	ck_assert_int_eq(n, 5); /* and bogus.test., whose keys are good */
	dns = open_shared(dir, r, c);
	ck_assert_int_eq(lookup(dns, r, "www.other.test", TLSPOOL_RR_A,
	                        TLSPOOL_DNS_SECURE),
	                 1);
	ck_assert_uint_eq(tp_dns_loaded(dns), 1);
	tlspool_dns_free(dns);
	/* --cache-flush: gone, and the chain is fetched again */
	ck_assert_int_eq(tp_cache_flush(c, NULL, 0), 0);
	dns = open_shared(dir, r, c);
	ck_assert_int_ge(lookup(dns, r, "_443._udp.www.example.test", TLSA,
	                        TLSPOOL_DNS_SECURE),
	                 4);
	ck_assert_uint_eq(tp_dns_loaded(dns), 0);
	tlspool_dns_free(dns);
	tp_cache_free(c);
	cache_remove(path);
	relay_stop(r);
}
END_TEST

/* A stored entry that was tampered with adds no key: an altered octet,
 * a DNSKEY slipped in, garbage, an entry past its expiry.  The lookup is
 * a full one with the same verdict, and it stores the right keys again. */
START_TEST(stored_keys_tampered_are_not_used)
{
	const char *dir = tp_zones_dir();
	struct relay *r = relay_start(zones_port(dir));
	static unsigned char good[TP_CACHE_DATA_MAX], bad[TP_CACHE_DATA_MAX];
	char path[600];
	tp_cache *c;
	tlspool_dns *dns;
	getdns_dict *evil = NULL;
	uint8_t *w = NULL;
	size_t len, wl = 0;
	time_t until;

	cache_path(path);
	c = tp_cache_new(path, 86400);
	dns = open_shared(dir, r, c);
	lookup(dns, r, "_443._tcp.www.example.test", TLSA, TLSPOOL_DNS_SECURE);
	tlspool_dns_free(dns);
	len = stored(c, "example.test.", good, &until);
	ck_assert_uint_gt(len, 100);

	/* one octet changed (in the last record: a key or a signature) */
	memcpy(bad, good, len);
	bad[len - 1] ^= 0x01;
	restore(c, "example.test.", bad, len, until);
	dns = open_shared(dir, r, c);
	ck_assert_int_ge(lookup(dns, r, "_443._udp.www.example.test", TLSA,
	                        TLSPOOL_DNS_SECURE),
	                 4);
	ck_assert_uint_eq(tp_dns_loaded(dns), 0);
	tlspool_dns_free(dns);
	/* that full lookup stored the right keys again */
	dns = open_shared(dir, r, c);
	ck_assert_int_eq(lookup(dns, r, "_443._udp.www.example.test", TLSA,
	                        TLSPOOL_DNS_SECURE),
	                 1);
	ck_assert_uint_eq(tp_dns_loaded(dns), 1);
	tlspool_dns_free(dns);

	/* a DNSKEY of the attacker's added to the zone's set */
	ck_assert_int_eq(getdns_str2rr_dict("example.test. 3600 IN DNSKEY "
	                                    "257 3 13 " KEY,
	                                    &evil, NULL, 3600),
	                 GETDNS_RETURN_GOOD);
	ck_assert_int_eq(getdns_rr_dict2wire(evil, &w, &wl),
	                 GETDNS_RETURN_GOOD);
	memcpy(bad, good, len);
	memcpy(bad + len, w, wl);
	restore(c, "example.test.", bad, len + wl, until);
	free(w);
	getdns_dict_destroy(evil);
	dns = open_shared(dir, r, c);
	ck_assert_int_ge(lookup(dns, r, "www.example.test", TLSPOOL_RR_A,
	                        TLSPOOL_DNS_SECURE),
	                 4);
	ck_assert_uint_eq(tp_dns_loaded(dns), 0);
	tlspool_dns_free(dns);

	/* garbage where the records were */
	restore(c, "example.test.", (const unsigned char *)"\x07garbage", 8,
	        until);
	dns = open_shared(dir, r, c);
	ck_assert_int_ge(lookup(dns, r, "www.example.test", TLSPOOL_RR_A,
	                        TLSPOOL_DNS_SECURE),
	                 4);
	ck_assert_uint_eq(tp_dns_loaded(dns), 0);
	tlspool_dns_free(dns);

	/* the right records, but the entry has expired */
	restore(c, "example.test.", good, len, time(NULL) + 1);
	sleep(2);
	dns = open_shared(dir, r, c);
	ck_assert_int_ge(lookup(dns, r, "www.example.test", TLSPOOL_RR_A,
	                        TLSPOOL_DNS_SECURE),
	                 2);
	tlspool_dns_free(dns);
	tp_cache_free(c);
	cache_remove(path);
	relay_stop(r);
}
END_TEST

/* --- a hierarchy of its own, to roll keys in --- */

static char base[64], own[80];

static void own_start(void)
{
	char cmd[512], path[128];
	FILE *f;

	strcpy(base, "/tmp/tlspool-dnschain.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(base));
	/* a wildcard: its answers need the NSEC3 proof that the name asked
	 * for does not exist (RFC 5155 section 8.8) */
	snprintf(path, sizeof(path), "%s/wild", base);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "*.wild IN TLSA 3 1 1 "
	           "0123456789abcdef0123456789abcdef"
	           "0123456789abcdef0123456789abcdef\n");
	fclose(f);
	snprintf(cmd, sizeof(cmd),
	         "zones/serve start %s/z --add example.test "
	         "tests/data/example.test.extra --add example.test %s "
	         "2>/dev/null",
	         base, path);
	ck_assert_int_eq(system(cmd), 0);
	snprintf(own, sizeof(own), "%s/z", base);
}

static void own_stop(void)
{
	char cmd[256];

	if (own[0] == '\0')
		return;
	snprintf(cmd, sizeof(cmd), "zones/serve stop %s && rm -rf %s", own,
	         base);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot stop the zones in %s\n", own);
}

static void resign(const char *args)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "zones/serve resign %s %s", own, args);
	ck_assert_msg(system(cmd) == 0, "%s", cmd);
}

/* A new ZSK between lookups: the answers it signs do not validate with
 * the kept keys, so the lookup is a full one that validates them and
 * keeps the new keys; an RRset still signed by the old ZSK, which is gone
 * from the DNSKEY set, is bogus from then on. */
START_TEST(zsk_rollover_noticed)
{
	struct relay *r = relay_start(zones_port(own));
	tlspool_dns *dns = open_dns(own, r, 3600);
	int q;

	resign("example.test");
	lookup(dns, r, "_443._tcp.www.example.test", TLSA, TLSPOOL_DNS_SECURE);
	ck_assert_int_eq(lookup(dns, r, "_443._udp.www.example.test", TLSA,
	                        TLSPOOL_DNS_SECURE),
	                 1);
	resign("example.test --stale _443._tcp.www.example.test");
	q = lookup(dns, r, "www.example.test", TLSPOOL_RR_A,
	           TLSPOOL_DNS_SECURE);
	ck_assert_int_gt(q, 1); /* the new key, fetched */
	ck_assert_int_eq(lookup(dns, r, "_443._udp.www.example.test", TLSA,
	                        TLSPOOL_DNS_SECURE),
	                 1);
	lookup(dns, r, "_443._tcp.www.example.test", TLSA, TLSPOOL_DNS_BOGUS);
	lookup(dns, r, "_443._tcp.www.example.test", TLSA, TLSPOOL_DNS_BOGUS);
	tlspool_dns_free(dns);
	/* without kept keys, the same verdicts */
	dns = open_dns(own, r, 0);
	lookup(dns, r, "_443._tcp.www.example.test", TLSA, TLSPOOL_DNS_BOGUS);
	lookup(dns, r, "_443._udp.www.example.test", TLSA, TLSPOOL_DNS_SECURE);
	tlspool_dns_free(dns);
	relay_stop(r);
}
END_TEST

/* A wildcard answer is validated with its proof of the name's absence,
 * with kept keys as without. */
START_TEST(wildcard_with_kept_keys)
{
	struct relay *r = relay_start(zones_port(own));
	tlspool_dns *dns = open_dns(own, r, 3600);
	int q;

	lookup(dns, r, "_443._tcp.www.example.test", TLSA, TLSPOOL_DNS_SECURE);
	q = lookup(dns, r, "_443._tcp.a.wild.example.test", TLSA,
	           TLSPOOL_DNS_SECURE);
	fprintf(stderr, "wildcard with kept keys: %d queries\n", q);
	ck_assert_int_eq(q, 1);
	ck_assert_int_eq(lookup(dns, r, "_443._tcp.b.wild.example.test", TLSA,
	                        TLSPOOL_DNS_SECURE),
	                 1);
	tlspool_dns_free(dns);
	relay_stop(r);
}
END_TEST

/* The signatures over the kept DNSKEY set expire: from then on the kept
 * keys are not used, and the full lookup finds the expired signature. */
START_TEST(expired_dnskey_signature_not_used)
{
	struct relay *r = relay_start(zones_port(own));
	tlspool_dns *dns = open_dns(own, r, 3600);
	time_t until;

	resign("example.test --dnskey-expire 3");
	lookup(dns, r, "_443._tcp.www.example.test", TLSA, TLSPOOL_DNS_SECURE);
	until = tp_dns_keys_until(dns, "example.test.");
	ck_assert_int_gt(until, time(NULL));
	ck_assert_int_le(until, time(NULL) + 4);
	ck_assert_int_eq(lookup(dns, r, "_443._udp.www.example.test", TLSA,
	                        TLSPOOL_DNS_SECURE),
	                 1);
	sleep(4);
	ck_assert_int_gt(lookup(dns, r, "www.example.test", TLSPOOL_RR_A,
	                        TLSPOOL_DNS_BOGUS),
	                 1);
	ck_assert_int_gt(lookup(dns, r, "_443._udp.www.example.test", TLSA,
	                        TLSPOOL_DNS_BOGUS),
	                 1);
	tlspool_dns_free(dns);
	resign("example.test");
	relay_stop(r);
}
END_TEST

/* A rolled ZSK after the keys were stored: the stored (old) keys are
 * read, the answer does not validate with them, the full lookup finds the
 * new key and stores it in place of the old, for the next process. */
START_TEST(stored_keys_replaced_after_rollover)
{
	struct relay *r = relay_start(zones_port(own));
	char path[600];
	tp_cache *c;
	tlspool_dns *dns;

	cache_path(path);
	c = tp_cache_new(path, 86400);
	resign("example.test");
	dns = open_shared(own, r, c);
	lookup(dns, r, "_443._tcp.www.example.test", TLSA, TLSPOOL_DNS_SECURE);
	tlspool_dns_free(dns);
	resign("example.test");
	dns = open_shared(own, r, c);
	ck_assert_int_gt(lookup(dns, r, "_443._udp.www.example.test", TLSA,
	                        TLSPOOL_DNS_SECURE),
	                 1);
	ck_assert_uint_eq(tp_dns_loaded(dns), 1); /* the old keys, not enough */
	tlspool_dns_free(dns);
	dns = open_shared(own, r, c);
	ck_assert_int_eq(lookup(dns, r, "www.example.test", TLSPOOL_RR_A,
	                        TLSPOOL_DNS_SECURE),
	                 1);
	ck_assert_uint_eq(tp_dns_loaded(dns), 1);
	tlspool_dns_free(dns);
	tp_cache_free(c);
	cache_remove(path);
	relay_stop(r);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("dnschain");
	TCase *neg = tcase_create("negative");
	TCase *pos = tcase_create("positive");
	TCase *roll = tcase_create("rollover");
	TCase *ring = tcase_create("keyring");

	tcase_set_timeout(neg, 30);
	tcase_set_timeout(pos, 30);
	tcase_set_timeout(roll, 60);
	tcase_add_test(ring, keep_keys_ttl_values);
	tcase_add_test(ring, keyring_refuses);
	tcase_add_test(ring, keyring_bounds);
	tcase_add_test(ring, keyring_is_bounded);
	tcase_add_test(ring, reply_must_answer_the_question);
	tcase_add_test(neg, without_kept_keys_the_chain_each_time);
	tcase_add_test(neg, chain_validated_before_keeping);
	tcase_add_test(neg, timeout_with_kept_keys_is_timeout);
	tcase_add_test(neg, kept_keys_keep_errors);
	tcase_add_test(neg, stored_keys_tampered_are_not_used);
	tcase_add_test(neg, child_zone_keys_spoiled);
	tcase_add_test(pos, new_name_in_kept_zone_one_query);
	tcase_add_test(pos, keys_kept_within_bounds);
	tcase_add_test(pos, stored_keys_shared_between_processes);
	tcase_add_test(neg, kept_keys_refuse_answers_to_other_questions);
	tcase_add_test(pos, concurrent_lookups_share_the_keyring);
	tcase_add_unchecked_fixture(roll, own_start, own_stop);
	tcase_add_test(roll, wildcard_with_kept_keys);
	tcase_add_test(roll, zsk_rollover_noticed);
	tcase_add_test(roll, expired_dnskey_signature_not_used);
	tcase_add_test(roll, stored_keys_replaced_after_rollover);
	suite_add_tcase(s, ring);
	suite_add_tcase(s, neg);
	suite_add_tcase(s, pos);
	suite_add_tcase(s, roll);
	return s;
}

int main(void)
{
	return tp_run_suite(suite());
}
