/*
 * DNSSEC-validated lookups through getdns.
 *
 * Outline:
 *   1. tlspool_dns_new() makes one getdns context per configuration: stub
 *      or recursive, the upstreams, the trust anchor read from a zone-file
 *      style file, the timeout.  getdns contexts are not safe for
 *      concurrent use, so each handle serialises its queries with a mutex.
 *   2. A lookup asks with "dnssec_return_all_statuses", so that a bogus
 *      reply comes back with dnssec_status BOGUS instead of being dropped
 *      (with "dnssec_return_status" getdns reports it as NO_NAME, which
 *      would read like a missing name).
 *   3. Each reply is classified, keeping every outcome apart: timeout,
 *      server failure, bogus, indeterminate, insecure, and for secure
 *      replies records / NODATA / NXDOMAIN (rcode 3).
 *   4. When the configuration keeps zone keys (keep_keys_ttl, stub
 *      resolution), a full lookup also asks for the validation chain, and
 *      a secure answer's DNSKEY sets are kept (dnschain.c).  A later query
 *      under a kept zone goes out once, with the DO bit but without
 *      getdns's chain building, and its reply is validated offline against
 *      the kept keys.  Only "secure" is taken from that; anything else
 *      (bogus, a key that is not kept after a rollover, an insecure
 *      delegation, no reply in time) is asked again as a full lookup,
 *      whose verdict counts.  So the verdicts are those of full lookups.
 *      A reply signed by a child of a kept zone brings that zone's DS and
 *      DNSKEY sets (two more queries, validated from the kept keys).
 *      With a keystore (tlspool_dns_set_keystore(), libtlspool's shared
 *      cache) kept keys are stored per zone, and read back, validated
 *      from the trust anchor, by handles that do not keep them yet.
 *   5. CNAMEs are followed inside the reply; when the chain leaves the
 *      reply (a target in another zone, which an authoritative server
 *      does not chase) the target is asked for in a new query, at most
 *      TP_MAX_CNAMES steps, with loop detection.  RFC 7671 section 7 and
 *      RFC 7672 section 2.2.2 expect the chain's security to be that of
 *      its weakest link: any error stops the chain with that error, any
 *      insecure link makes the whole answer insecure.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getdns/getdns.h>
#include <getdns/getdns_extra.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>

#include "filetrust.h"
#include "internal.h"

#define TP_RR_SOA    6
#define TP_RR_DS     43
#define TP_RR_RRSIG  46
#define TP_RR_DNSKEY 48

struct tlspool_dns {
	pthread_mutex_t lock;
	getdns_context *ctx;
	getdns_dict *ext;
	getdns_list *anchors; /* the trust anchor's records */
	unsigned timeout_ms;
	char upstreams[64];     /* who is asked, for a timeout's detail */
	getdns_dict *ext_chain; /* ext + the validation chain, or NULL */
	int chain;              /* tlspool_dns_return_chain() */
	/* The kept zone keys and the context for one-query lookups (its own
	 * lock, so that they do not wait for full lookups); NULL when the
	 * configuration keeps none. */
	struct tp_keyring *keys;
	pthread_mutex_t fast_lock;
	getdns_context *fast;
	pthread_mutex_t count_lock;
	unsigned long nkept, nfull, nloaded;
	unsigned long nfast, nfastbad; /* rrsig.c's secure and bad replies */
	unsigned keep_ttl;             /* [dns] keep_keys_ttl */
	/* tlspool_dns_set_keystore(): zone keys shared between processes */
	tlspool_dns_keystore_get *kget;
	tlspool_dns_keystore_put *kput;
	void *karg;
};

const char *tlspool_dns_verdict_name(tlspool_dns_verdict v)
{
	switch (v) {
	case TLSPOOL_DNS_UNCHECKED:
		return "unchecked";
	case TLSPOOL_DNS_SECURE:
		return "secure";
	case TLSPOOL_DNS_SECURE_NODATA:
		return "secure-nodata";
	case TLSPOOL_DNS_SECURE_NXDOMAIN:
		return "secure-nxdomain";
	case TLSPOOL_DNS_INSECURE:
		return "insecure";
	case TLSPOOL_DNS_INDETERMINATE:
		return "indeterminate";
	case TLSPOOL_DNS_BOGUS:
		return "bogus";
	case TLSPOOL_DNS_SERVFAIL:
		return "servfail";
	case TLSPOOL_DNS_TIMEOUT:
		return "timeout";
	}
	return "unknown";
}

/* The one table of what each verdict means, for the library's failure
 * details and for tlspool-connect --lookup alike. */
const char *tlspool_dns_verdict_text(tlspool_dns_verdict v)
{
	switch (v) {
	case TLSPOOL_DNS_UNCHECKED:
		return "not looked up";
	case TLSPOOL_DNS_SECURE:
		return "records validated by DNSSEC";
	case TLSPOOL_DNS_SECURE_NODATA:
		return "the name exists but has no records of this type "
		       "(proven by DNSSEC)";
	case TLSPOOL_DNS_SECURE_NXDOMAIN:
		return "the name does not exist (proven by DNSSEC)";
	case TLSPOOL_DNS_INSECURE:
		return "the zone is not signed: a delegation on the way has no "
		       "DS, so its records cannot authenticate";
	case TLSPOOL_DNS_INDETERMINATE:
		return "no trust anchor covers the name";
	case TLSPOOL_DNS_BOGUS:
		return "DNSSEC validation failed";
	case TLSPOOL_DNS_SERVFAIL:
		return "the server failed or refused";
	case TLSPOOL_DNS_TIMEOUT:
		return "no answer in time";
	}
	return "unknown verdict";
}

int tlspool_dns_answer_explain(const tlspool_dns_answer *a, char *buf,
                               size_t len)
{
	const char *type = tlspool_rr_type_name(a->qtype);
	const char *why = a->detail[0] != '\0'
	                          ? a->detail
	                          : tlspool_dns_verdict_text(a->verdict);

	switch (a->verdict) {
	case TLSPOOL_DNS_SECURE:
		if (a->nrr > 0)
			return snprintf(buf, len, "%s: %zu %s record%s: %s",
			                a->owner, a->nrr, type,
			                a->nrr == 1 ? "" : "s",
			                tlspool_dns_verdict_text(a->verdict));
		return snprintf(buf, len, "%s: no %s records: %s", a->owner,
		                type, "an empty RRset");
	case TLSPOOL_DNS_SECURE_NODATA:
	case TLSPOOL_DNS_SECURE_NXDOMAIN:
		return snprintf(buf, len, "%s: no %s records: %s", a->owner,
		                type, tlspool_dns_verdict_text(a->verdict));
	case TLSPOOL_DNS_TIMEOUT:
		return snprintf(buf, len, "%s: %s lookup timed out (%s)",
		                a->owner, type, why);
	case TLSPOOL_DNS_SERVFAIL:
		return snprintf(buf, len, "%s: %s lookup failed (%s)", a->owner,
		                type, why);
	default:
		return snprintf(buf, len, "%s: %s RRset is %s (%s)", a->owner,
		                type, tlspool_dns_verdict_name(a->verdict),
		                a->verdict == TLSPOOL_DNS_INSECURE
		                        ? tlspool_dns_verdict_text(a->verdict)
		                        : why);
	}
}

int tlspool_dns_verdict_is_error(tlspool_dns_verdict v)
{
	return v == TLSPOOL_DNS_INDETERMINATE || v == TLSPOOL_DNS_BOGUS ||
	       v == TLSPOOL_DNS_SERVFAIL || v == TLSPOOL_DNS_TIMEOUT ||
	       v == TLSPOOL_DNS_UNCHECKED;
}

static getdns_list *upstream_list(const tlspool_dns_config *cfg)
{
	getdns_list *list = getdns_list_create();
	size_t i;

	if (list == NULL)
		return NULL;
	for (i = 0; i < cfg->nupstream; i++) {
		const struct tp_upstream *u = &cfg->upstream[i];
		getdns_bindata type, data;
		getdns_dict *d = getdns_dict_create();
		int v4 = u->family == AF_INET;

		type.data = (uint8_t *)(v4 ? "IPv4" : "IPv6");
		type.size = 4;
		data.data = (uint8_t *)u->addr;
		data.size = v4 ? 4 : 16;
		if (d == NULL ||
		    getdns_dict_set_bindata(d, "address_type", &type) ||
		    getdns_dict_set_bindata(d, "address_data", &data) ||
		    getdns_dict_set_int(d, "port", u->port) ||
		    getdns_list_set_dict(list, i, d)) {
			getdns_dict_destroy(d);
			getdns_list_destroy(list);
			return NULL;
		}
		getdns_dict_destroy(d);
	}
	return list;
}

/* "127.0.0.1@53, ::1@5353" (the first ones that fit), or where the
 * default upstreams come from. */
static void name_upstreams(const tlspool_dns_config *cfg, char *buf, size_t len)
{
	size_t i, n = 0;

	snprintf(buf, len, "%s",
	         cfg->nupstream ? "" : "the resolvers of /etc/resolv.conf");
	for (i = 0; i < cfg->nupstream; i++) {
		const struct tp_upstream *u = &cfg->upstream[i];
		char a[INET6_ADDRSTRLEN], one[INET6_ADDRSTRLEN + 12];

		inet_ntop(u->family, u->addr, a, sizeof(a));
		snprintf(one, sizeof(one), "%s%s@%u", i ? ", " : "", a,
		         u->port);
		if (n + strlen(one) >= len)
			break;
		memcpy(buf + n, one, strlen(one) + 1);
		n += strlen(one);
	}
}

/* The anchor file is read through the file-trust module (a regular,
 * bounded file: getdns would spin forever on a directory) and handed to
 * getdns from memory. */
static int load_trust_anchor(getdns_context *ctx, const char *path,
                             getdns_list **keep, char *err, size_t errlen)
{
	getdns_list *anchors = NULL;
	unsigned char *data;
	size_t len, n = 0;
	char why[400];
	FILE *fp = NULL;
	int rv = -1;

	if (tlspool_file_read(path, TLSPOOL_FILE_PUBLIC, &data, &len, why,
	                      sizeof(why)) != 0) {
		int e = errno;

		/* why names the file first */
		tp_err(err, errlen, "trust anchor %s", why);
		errno = e;
		return -1;
	}
	if (len > 0)
		fp = fmemopen(data, len, "r");
	/* Origin NULL: with "." getdns 1.6 rejects ordinary anchor files. */
	if (fp == NULL ||
	    getdns_fp2rr_list(fp, &anchors, NULL, 3600) != GETDNS_RETURN_GOOD ||
	    getdns_list_get_length(anchors, &n) != GETDNS_RETURN_GOOD ||
	    n == 0) {
		tp_err(err, errlen,
		       "trust anchor %s: no DS or DNSKEY records in zone-file "
		       "syntax",
		       path);
		errno = EINVAL;
		goto out;
	}
	if (getdns_context_set_dnssec_trust_anchors(ctx, anchors) !=
	    GETDNS_RETURN_GOOD) {
		tp_err(err, errlen, "trust anchor %s: rejected by getdns",
		       path);
		errno = EINVAL;
		goto out;
	}
	rv = 0;
	*keep = anchors;
	anchors = NULL;
out:
	getdns_list_destroy(anchors);
	if (fp != NULL)
		fclose(fp);
	tlspool_file_free(data, len);
	return rv;
}

/* A getdns context for cfg: resolution, upstreams, timeout. */
static getdns_context *make_context(const tlspool_dns_config *cfg, char *err,
                                    size_t errlen)
{
	getdns_context *ctx = NULL;
	getdns_list *ups = NULL;
	getdns_return_t r;

	/* set_from_os reads /etc/resolv.conf: the default upstreams. */
	r = getdns_context_create(&ctx, 1);
	if (r != GETDNS_RETURN_GOOD) {
		tp_err(err, errlen, "getdns: cannot create a context: %s",
		       getdns_get_errorstr_by_id(r));
		return NULL;
	}
	r = getdns_context_set_resolution_type(
	        ctx, cfg->recursive ? GETDNS_RESOLUTION_RECURSING
	                            : GETDNS_RESOLUTION_STUB);
	if (r != GETDNS_RETURN_GOOD) {
		tp_err(err, errlen, "resolution: %s",
		       getdns_get_errorstr_by_id(r));
		goto fail;
	}
	if (cfg->nupstream > 0) {
		ups = upstream_list(cfg);
		if (ups == NULL ||
		    getdns_context_set_upstream_recursive_servers(ctx, ups) !=
		            GETDNS_RETURN_GOOD) {
			tp_err(err, errlen, "upstream: rejected by getdns");
			getdns_list_destroy(ups);
			goto fail;
		}
		getdns_list_destroy(ups);
	}
	if (getdns_context_set_timeout(ctx, cfg->timeout_ms) !=
	    GETDNS_RETURN_GOOD) {
		tp_err(err, errlen, "timeout_ms: rejected by getdns");
		goto fail;
	}
	return ctx;
fail:
	getdns_context_destroy(ctx);
	return NULL;
}

/* The one-query path: a context that asks with the DO bit (RFC 3225) so
 * that the RRSIGs and NSEC/NSEC3 records come back, and a keyring.  Only
 * in stub mode: a recursive context has its own cache (libunbound). */
static int make_fast(tlspool_dns *dns, const tlspool_dns_config *cfg, char *err,
                     size_t errlen)
{
	if (cfg->recursive || cfg->keep_keys_ttl == 0)
		return 0;
	dns->fast = make_context(cfg, err, errlen);
	if (dns->fast == NULL)
		return -1;
	if (getdns_context_set_edns_do_bit(dns->fast, 1) !=
	            GETDNS_RETURN_GOOD ||
	    getdns_dict_set_int(dns->ext, "dnssec_return_validation_chain",
	                        GETDNS_EXTENSION_TRUE) != GETDNS_RETURN_GOOD) {
		tp_err(err, errlen, "getdns: cannot ask for DNSSEC records");
		return -1;
	}
	dns->keep_ttl = cfg->keep_keys_ttl;
	dns->keys = tp_keyring_new(cfg->keep_keys_ttl);
	if (dns->keys == NULL) {
		tp_err(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

tlspool_dns *tlspool_dns_new(const tlspool_dns_config *cfg, char *err,
                             size_t errlen)
{
	tlspool_dns *dns;

	if (cfg == NULL) {
		tp_err(err, errlen, "no configuration");
		errno = EINVAL;
		return NULL;
	}
	dns = calloc(1, sizeof(*dns));
	if (dns == NULL)
		goto nomem;
	if (pthread_mutex_init(&dns->lock, NULL) != 0) {
		free(dns);
		goto nomem;
	}
	if (pthread_mutex_init(&dns->fast_lock, NULL) != 0) {
		pthread_mutex_destroy(&dns->lock);
		free(dns);
		goto nomem;
	}
	if (pthread_mutex_init(&dns->count_lock, NULL) != 0) {
		pthread_mutex_destroy(&dns->fast_lock);
		pthread_mutex_destroy(&dns->lock);
		free(dns);
		goto nomem;
	}
	dns->timeout_ms = cfg->timeout_ms;
	name_upstreams(cfg, dns->upstreams, sizeof(dns->upstreams));
	dns->ctx = make_context(cfg, err, errlen);
	if (dns->ctx == NULL)
		goto fail;
	if (load_trust_anchor(dns->ctx, cfg->trust_anchor, &dns->anchors, err,
	                      errlen) != 0)
		goto fail;
	dns->ext = getdns_dict_create();
	if (dns->ext == NULL ||
	    getdns_dict_set_int(dns->ext, "dnssec_return_all_statuses",
	                        GETDNS_EXTENSION_TRUE) != GETDNS_RETURN_GOOD) {
		tp_err(err, errlen, "getdns: cannot set extensions");
		goto fail;
	}
	if (make_fast(dns, cfg, err, errlen) != 0)
		goto fail;
	return dns;
nomem:
	tp_err(err, errlen, "out of memory");
	errno = ENOMEM;
	return NULL;
fail:
	tlspool_dns_free(dns);
	errno = EINVAL;
	return NULL;
}

void tlspool_dns_free(tlspool_dns *dns)
{
	if (dns == NULL)
		return;
	getdns_dict_destroy(dns->ext);
	getdns_dict_destroy(dns->ext_chain);
	getdns_list_destroy(dns->anchors);
	if (dns->ctx != NULL)
		getdns_context_destroy(dns->ctx);
	if (dns->fast != NULL)
		getdns_context_destroy(dns->fast);
	tp_keyring_free(dns->keys);
	pthread_mutex_destroy(&dns->count_lock);
	pthread_mutex_destroy(&dns->fast_lock);
	pthread_mutex_destroy(&dns->lock);
	free(dns);
}

time_t tp_dns_keys_until(tlspool_dns *dns, const char *zone)
{
	return tp_keyring_until(dns->keys, zone);
}

void tp_dns_counts(tlspool_dns *dns, unsigned long *kept, unsigned long *full)
{
	pthread_mutex_lock(&dns->count_lock);
	*kept = dns->nkept;
	*full = dns->nfull;
	pthread_mutex_unlock(&dns->count_lock);
}

void tp_dns_fast_counts(tlspool_dns *dns, unsigned long *secure,
                        unsigned long *bad)
{
	pthread_mutex_lock(&dns->count_lock);
	*secure = dns->nfast;
	*bad = dns->nfastbad;
	pthread_mutex_unlock(&dns->count_lock);
}

unsigned long tp_dns_loaded(tlspool_dns *dns)
{
	unsigned long n;

	pthread_mutex_lock(&dns->count_lock);
	n = dns->nloaded;
	pthread_mutex_unlock(&dns->count_lock);
	return n;
}

int tlspool_dns_set_keystore(tlspool_dns *dns, tlspool_dns_keystore_get *get,
                             tlspool_dns_keystore_put *put, void *arg)
{
	if (dns == NULL) {
		errno = EINVAL;
		return -1;
	}
	pthread_mutex_lock(&dns->count_lock);
	dns->kget = get;
	dns->kput = get != NULL ? put : NULL;
	dns->karg = get != NULL ? arg : NULL;
	pthread_mutex_unlock(&dns->count_lock);
	return 0;
}

void tlspool_dns_answer_free(tlspool_dns_answer *ans)
{
	size_t i;

	if (ans == NULL)
		return;
	for (i = 0; i < ans->nrr; i++)
		free(ans->rr[i].rdata);
	for (i = 0; i < ans->nchain; i++)
		free(ans->chain[i]);
	free(ans->chain);
	free(ans->rr);
	free(ans->cname);
	free(ans);
}

int tlspool_dns_return_chain(tlspool_dns *dns, int on)
{
	if (dns == NULL) {
		errno = EINVAL;
		return -1;
	}
	pthread_mutex_lock(&dns->lock);
	if (on && dns->ext_chain == NULL) {
		getdns_dict *e = getdns_dict_create();

		if (e == NULL ||
		    getdns_dict_set_int(e, "dnssec_return_all_statuses",
		                        GETDNS_EXTENSION_TRUE) ||
		    getdns_dict_set_int(e, "dnssec_return_validation_chain",
		                        GETDNS_EXTENSION_TRUE)) {
			getdns_dict_destroy(e);
			pthread_mutex_unlock(&dns->lock);
			errno = ENOMEM;
			return -1;
		}
		dns->ext_chain = e;
	}
	dns->chain = on != 0;
	pthread_mutex_unlock(&dns->lock);
	return 0;
}

/* The response's validation chain as zone-file lines, after those of
 * earlier queries of the lookup.  0, or -1 for lack of memory. */
static int keep_chain(tlspool_dns_answer *ans, getdns_dict *resp)
{
	getdns_list *chain;
	size_t i, n = 0;

	if (getdns_dict_get_list(resp, "validation_chain", &chain) !=
	    GETDNS_RETURN_GOOD)
		return 0;
	getdns_list_get_length(chain, &n);
	for (i = 0; i < n; i++) {
		getdns_dict *rr;
		char *line = NULL, **grown;
		size_t len;

		if (getdns_list_get_dict(chain, i, &rr) != GETDNS_RETURN_GOOD ||
		    getdns_rr_dict2str(rr, &line) != GETDNS_RETURN_GOOD ||
		    line == NULL)
			continue;
		len = strlen(line);
		while (len > 0 &&
		       (line[len - 1] == '\n' || line[len - 1] == ' '))
			line[--len] = '\0';
		grown = realloc(ans->chain, (ans->nchain + 1) * sizeof(*grown));
		if (grown == NULL) {
			free(line);
			return -1;
		}
		ans->chain = grown;
		ans->chain[ans->nchain++] = line;
	}
	return 0;
}

static uint32_t rr_int(getdns_dict *rr, const char *key, uint32_t dflt)
{
	uint32_t v;

	return getdns_dict_get_int(rr, key, &v) == GETDNS_RETURN_GOOD ? v
	                                                              : dflt;
}

static void min_ttl(tlspool_dns_answer *ans, uint32_t ttl)
{
	if (ans->ttl == 0 || ttl < ans->ttl)
		ans->ttl = ttl;
}

/* MX rdata as it is in the packet may hold a compressed name (RFC 1035
 * section 4.1.4): rebuilt from getdns's fields, the exchange in full. */
static int mx_rdata(getdns_dict *rr, unsigned char *buf, getdns_bindata *out)
{
	getdns_bindata *ex;
	uint32_t pref;

	if (getdns_dict_get_int(rr, "/rdata/preference", &pref) ||
	    getdns_dict_get_bindata(rr, "/rdata/exchange", &ex) ||
	    ex->size > 255)
		return -1;
	buf[0] = (unsigned char)(pref >> 8);
	buf[1] = (unsigned char)pref;
	memcpy(buf + 2, ex->data, ex->size);
	out->data = buf;
	out->size = ex->size + 2;
	return 0;
}

static int add_rr(tlspool_dns_answer *ans, getdns_dict *rr)
{
	getdns_bindata *raw, mx;
	unsigned char mxbuf[2 + 255];
	tlspool_rr *grown, *r;

	if (ans->qtype == TLSPOOL_RR_MX && mx_rdata(rr, mxbuf, &mx) == 0)
		raw = &mx;
	else if (getdns_dict_get_bindata(rr, "/rdata/rdata_raw", &raw) !=
	         GETDNS_RETURN_GOOD)
		return 0; /* nothing to keep */
	grown = realloc(ans->rr, (ans->nrr + 1) * sizeof(*grown));
	if (grown == NULL)
		return -1;
	ans->rr = grown;
	r = &ans->rr[ans->nrr];
	r->type = ans->qtype;
	r->ttl = rr_int(rr, "ttl", 0);
	r->rdlen = raw->size;
	r->rdata = malloc(raw->size ? raw->size : 1);
	if (r->rdata == NULL)
		return -1;
	memcpy(r->rdata, raw->data, raw->size);
	ans->nrr++;
	min_ttl(ans, r->ttl);
	return 0;
}

static int add_cname(tlspool_dns_answer *ans, const char *target)
{
	char(*grown)[256] =
	        realloc(ans->cname, (ans->ncname + 1) * sizeof(*grown));

	if (grown == NULL)
		return -1;
	ans->cname = grown;
	strcpy(ans->cname[ans->ncname++], target);
	return 0;
}

/* Has the chain already passed through name?  (loop detection) */
static int visited(const tlspool_dns_answer *ans, const char *name)
{
	size_t i;

	if (tp_name_equal(ans->qname, name))
		return 1;
	for (i = 0; i < ans->ncname; i++)
		if (tp_name_equal(ans->cname[i], name))
			return 1;
	return 0;
}

/* Earliest expiration of the RRSIGs in a section covering qtype or CNAME;
 * also tells whether one of them is expired or not yet valid. */
static void scan_rrsigs(tlspool_dns_answer *ans, getdns_list *section,
                        int *expired, int *early)
{
	time_t now = time(NULL);
	size_t i, n = 0;

	getdns_list_get_length(section, &n);
	for (i = 0; i < n; i++) {
		getdns_dict *rr;
		uint32_t cov, exp, inc;

		if (getdns_list_get_dict(section, i, &rr) ||
		    rr_int(rr, "type", 0) != TP_RR_RRSIG)
			continue;
		cov = rr_int(rr, "/rdata/type_covered", 0);
		if (cov != ans->qtype && cov != TLSPOOL_RR_CNAME)
			continue;
		exp = rr_int(rr, "/rdata/signature_expiration", 0);
		inc = rr_int(rr, "/rdata/signature_inception", 0);
		/* RFC 4034 section 3.1.5: serial number arithmetic; these
		 * times are near enough to now to compare directly. */
		if ((time_t)exp < now)
			*expired = 1;
		if ((time_t)inc > now)
			*early = 1;
		if (ans->rrsig_expiration == 0 ||
		    (time_t)exp < ans->rrsig_expiration)
			ans->rrsig_expiration = (time_t)exp;
	}
}

/* Negative answers: TTL of the SOA in the authority section, capped by
 * its MINIMUM field (RFC 2308 section 5). */
static void negative_ttl(tlspool_dns_answer *ans, getdns_dict *reply)
{
	getdns_list *auth;
	size_t i, n = 0;

	if (getdns_dict_get_list(reply, "authority", &auth))
		return;
	getdns_list_get_length(auth, &n);
	for (i = 0; i < n; i++) {
		getdns_dict *rr;
		uint32_t ttl, min;

		if (getdns_list_get_dict(auth, i, &rr) ||
		    rr_int(rr, "type", 0) != TP_RR_SOA)
			continue;
		ttl = rr_int(rr, "ttl", 0);
		min = rr_int(rr, "/rdata/minimum", ttl);
		min_ttl(ans, ttl < min ? ttl : min);
	}
}

/* The failures that the header or getdns's status show: timeout, no
 * reply, an error rcode.  1 when they decide (ans->verdict set), else 0
 * with *reply and *rcode set. */
static int reply_failed(tlspool_dns_answer *ans, getdns_dict *resp,
                        getdns_dict **reply, uint32_t *rcode)
{
	uint32_t status = 0;

	getdns_dict_get_int(resp, "status", &status);
	if (status == GETDNS_RESPSTATUS_ALL_TIMEOUT) {
		ans->verdict = TLSPOOL_DNS_TIMEOUT;
		return 1;
	}
	if (getdns_dict_get_dict(resp, "/replies_tree/0", reply) !=
	    GETDNS_RETURN_GOOD) {
		/* No reply at all and not a timeout: the upstream failed. */
		ans->verdict = TLSPOOL_DNS_SERVFAIL;
		snprintf(ans->detail, sizeof(ans->detail),
		         "no usable reply (getdns status %u)",
		         (unsigned)status);
		return 1;
	}
	*rcode = rr_int(*reply, "/header/rcode", GETDNS_RCODE_SERVFAIL);
	if (*rcode != GETDNS_RCODE_NOERROR && *rcode != GETDNS_RCODE_NXDOMAIN) {
		ans->verdict = TLSPOOL_DNS_SERVFAIL;
		snprintf(ans->detail, sizeof(ans->detail), "server answered %s",
		         *rcode == GETDNS_RCODE_SERVFAIL  ? "SERVFAIL"
		         : *rcode == GETDNS_RCODE_REFUSED ? "REFUSED"
		                                          : "with an error");
		return 1;
	}
	return 0;
}

/* getdns's DNSSEC status of the reply: 1 when it decides alone (bogus,
 * indeterminate); else 0, with INSECURE noted in ans->verdict. */
static int dnssec_decides(tlspool_dns_answer *ans, getdns_dict *reply,
                          getdns_list *answer)
{
	int expired = 0, early = 0;

	if (answer != NULL)
		scan_rrsigs(ans, answer, &expired, &early);
	switch (rr_int(reply, "dnssec_status", 0)) {
	case GETDNS_DNSSEC_SECURE:
		return 0;
	case GETDNS_DNSSEC_INSECURE:
		ans->verdict = TLSPOOL_DNS_INSECURE;
		return 0;
	case GETDNS_DNSSEC_BOGUS:
		ans->verdict = TLSPOOL_DNS_BOGUS;
		snprintf(ans->detail, sizeof(ans->detail), "%s",
		         expired ? "RRSIG expired"
		         : early ? "RRSIG not yet valid"
		                 : "DNSSEC validation failed");
		return 1;
	default: /* indeterminate, or not validated at all */
		ans->verdict = TLSPOOL_DNS_INDETERMINATE;
		snprintf(ans->detail, sizeof(ans->detail),
		         "no trust anchor covers the name");
		return 1;
	}
}

/* The CNAME in answer whose owner is cur, with its target in target;
 * NULL if there is none. */
static getdns_dict *cname_at(getdns_list *answer, const char *cur,
                             char target[256])
{
	size_t i, n = 0;

	getdns_list_get_length(answer, &n);
	for (i = 0; i < n; i++) {
		getdns_dict *rr;
		char owner[256];

		if (getdns_list_get_dict(answer, i, &rr) == 0 &&
		    rr_int(rr, "type", 0) == TLSPOOL_RR_CNAME &&
		    tp_rr_name(rr, "name", owner) == 0 &&
		    tp_name_equal(owner, cur) &&
		    tp_rr_name(rr, "/rdata/cname", target) == 0)
			return rr;
	}
	return NULL;
}

/* Follow the CNAMEs in answer from cur, recording them in ans; cur ends
 * at the last name.  0; 1 when the chain loops or is too long (verdict
 * SERVFAIL); -1 for lack of memory. */
static int follow_cnames(tlspool_dns_answer *ans, getdns_list *answer,
                         char cur[256])
{
	getdns_dict *rr;
	char target[256];

	while ((rr = cname_at(answer, cur, target)) != NULL) {
		if (visited(ans, target)) {
			ans->verdict = TLSPOOL_DNS_SERVFAIL;
			snprintf(ans->detail, sizeof(ans->detail),
			         "CNAME loop at %.100s", target);
			return 1;
		}
		if (ans->ncname == TP_MAX_CNAMES) {
			ans->verdict = TLSPOOL_DNS_SERVFAIL;
			snprintf(ans->detail, sizeof(ans->detail),
			         "CNAME chain longer than %d", TP_MAX_CNAMES);
			return 1;
		}
		min_ttl(ans, rr_int(rr, "ttl", 0));
		if (add_cname(ans, target))
			return -1;
		strcpy(cur, target);
	}
	return 0;
}

/* The records of the asked type at owner into ans.  0, or -1 for lack of
 * memory. */
static int collect(tlspool_dns_answer *ans, getdns_list *answer,
                   const char *owner)
{
	size_t i, n = 0;

	getdns_list_get_length(answer, &n);
	for (i = 0; i < n; i++) {
		getdns_dict *rr;
		char name[256];

		if (getdns_list_get_dict(answer, i, &rr) ||
		    rr_int(rr, "type", 0) != ans->qtype ||
		    tp_rr_name(rr, "name", name) || !tp_name_equal(name, owner))
			continue;
		if (add_rr(ans, rr))
			return -1;
	}
	return 0;
}

/*
 * Classify one reply for the name *cur.  Walks the CNAMEs in the answer
 * section from *cur, collects the records of qtype at the end, and sets
 * *cur to a name still to be asked for when the chain leaves the reply.
 */
int tp_dns_classify(tlspool_dns_answer *ans, struct getdns_dict *resp,
                    char cur[256], enum tp_step *step)
{
	getdns_dict *reply = NULL;
	getdns_list *answer;
	uint32_t rcode = GETDNS_RCODE_SERVFAIL;
	char start[256];
	int r;

	*step = TP_STEP_DONE;
	if (reply_failed(ans, resp, &reply, &rcode))
		return 0;
	if (getdns_dict_get_list(reply, "answer", &answer) !=
	    GETDNS_RETURN_GOOD)
		answer = NULL;
	if (dnssec_decides(ans, reply, answer))
		return 0;
	strcpy(start, cur);
	r = follow_cnames(ans, answer, cur);
	if (r != 0)
		return r < 0 ? -1 : 0;
	strcpy(ans->owner, cur);
	if (collect(ans, answer, cur) != 0)
		return -1;
	if (ans->nrr == 0 && !tp_name_equal(start, cur)) {
		/* The chain left this reply: ask for its end. */
		*step = TP_STEP_FOLLOW;
		return 0;
	}
	if (ans->nrr == 0)
		negative_ttl(ans, reply);
	if (ans->verdict != TLSPOOL_DNS_INSECURE)
		ans->verdict = ans->nrr > 0 ? TLSPOOL_DNS_SECURE
		               : rcode == GETDNS_RCODE_NXDOMAIN
		                       ? TLSPOOL_DNS_SECURE_NXDOMAIN
		                       : TLSPOOL_DNS_SECURE_NODATA;
	return 0;
}

int tlspool_dns_lookup(tlspool_dns *dns, const char *name, uint16_t type,
                       tlspool_dns_answer **out, char *err, size_t errlen)
{
	return tlspool_dns_lookup_within(dns, name, type, 0, out, err, errlen);
}

static long long mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void count(tlspool_dns *dns, int kept)
{
	pthread_mutex_lock(&dns->count_lock);
	if (kept)
		dns->nkept++;
	else
		dns->nfull++;
	pthread_mutex_unlock(&dns->count_lock);
}

/* The labels of a domain name as text, not counting the root. */
static unsigned label_count(const char *name)
{
	unsigned n = 0;
	const char *p;

	for (p = name; *p != '\0'; p++)
		if (*p == '.' && p[1] != '\0')
			n++;
	return name[0] == '\0' || strcmp(name, ".") == 0 ? 0 : n + 1;
}

/* Does the answer section hold a record of type, and no RRSIG of a
 * wildcard expansion (fewer labels than its owner, RFC 4035 section
 * 5.3.4), whose proof is in the authority section? */
static int plain_answer(getdns_dict *reply, uint16_t type)
{
	getdns_list *answer;
	size_t i, n = 0;
	int found = 0;

	if (getdns_dict_get_list(reply, "answer", &answer) !=
	    GETDNS_RETURN_GOOD)
		return 0;
	getdns_list_get_length(answer, &n);
	for (i = 0; i < n; i++) {
		getdns_dict *rr;
		char owner[256];
		uint32_t t;

		if (getdns_list_get_dict(answer, i, &rr) != GETDNS_RETURN_GOOD)
			return 0;
		t = rr_int(rr, "type", 0);
		if (t == type)
			found = 1;
		if (t == TP_RR_RRSIG &&
		    (tp_rr_name(rr, "name", owner) != 0 ||
		     rr_int(rr, "/rdata/labels", 0) < label_count(owner)))
			return 0;
	}
	return found;
}

/*
 * What the verdict rests on, without the rest: the additional section
 * (glue, never needed) and, for a positive answer, the authority section
 * (the zone's NS RRset), so that their signatures are not verified for
 * nothing.  A denial keeps its NSEC/NSEC3 records and SOA (RFC 4035
 * section 5.4), and so does a wildcard answer its proof that the name
 * itself does not exist.  0, or -1 if the reply cannot be changed.
 */
static int trim(getdns_dict *reply, uint16_t type, uint32_t rcode)
{
	getdns_list *l;

	if (getdns_dict_get_list(reply, "additional", &l) ==
	            GETDNS_RETURN_GOOD &&
	    getdns_dict_remove_name(reply, "additional") != GETDNS_RETURN_GOOD)
		return -1;
	if (rcode == GETDNS_RCODE_NOERROR && plain_answer(reply, type) &&
	    getdns_dict_get_list(reply, "authority", &l) ==
	            GETDNS_RETURN_GOOD &&
	    getdns_dict_remove_name(reply, "authority") != GETDNS_RETURN_GOOD)
		return -1;
	return 0;
}

/* Is the one reply of resp secure with the trust anchors tas at now?  Its
 * dnssec_status says so for tp_dns_classify().  Only an answer or a
 * denial (RFC 4035 section 5.4) may be; getdns also checks that the reply
 * answers its question. */
static int kept_secure(getdns_dict *resp, const char *name, uint16_t type,
                       getdns_list *tas, time_t now)
{
	getdns_list *replies, *none;
	getdns_dict *reply;
	uint32_t rcode;
	int st;

	if (getdns_dict_get_list(resp, "replies_tree", &replies) !=
	            GETDNS_RETURN_GOOD ||
	    getdns_list_get_dict(replies, 0, &reply) != GETDNS_RETURN_GOOD)
		return 0;
	rcode = rr_int(reply, "/header/rcode", GETDNS_RCODE_SERVFAIL);
	if (rcode != GETDNS_RCODE_NOERROR && rcode != GETDNS_RCODE_NXDOMAIN)
		return 0;
	if (!tp_reply_answers(reply, name, type))
		return 0; /* signed, but not for this question */
	if (trim(reply, type, rcode) != 0 ||
	    (none = getdns_list_create()) == NULL)
		return 0;
	st = getdns_validate_dnssec2(replies, none, tas, now, 0);
	getdns_list_destroy(none);
	return st == GETDNS_DNSSEC_SECURE &&
	       getdns_dict_set_int(reply, "dnssec_status",
	                           GETDNS_DNSSEC_SECURE) == GETDNS_RETURN_GOOD;
}

/* Is the one reply of resp a plain answer that rrsig.c verifies with the
 * kept keys at now?  Its dnssec_status says so for tp_dns_classify(),
 * which reads the answer section of the reply's tree: the same records as
 * its wire form, which rrsig.c checked (the same number of them). */
static int fast_secure(tlspool_dns *dns, getdns_dict *resp, const char *name,
                       uint16_t type, time_t now)
{
	getdns_list *full, *tree, *answer;
	getdns_bindata *wire;
	getdns_dict *reply;
	size_t nf = 0, nt = 0, na = 0;
	int rv;

	if (getdns_dict_get_list(resp, "replies_full", &full) !=
	            GETDNS_RETURN_GOOD ||
	    getdns_dict_get_list(resp, "replies_tree", &tree) !=
	            GETDNS_RETURN_GOOD ||
	    getdns_list_get_length(full, &nf) != GETDNS_RETURN_GOOD ||
	    getdns_list_get_length(tree, &nt) != GETDNS_RETURN_GOOD ||
	    nf != 1 || nt != 1 ||
	    getdns_list_get_bindata(full, 0, &wire) != GETDNS_RETURN_GOOD ||
	    getdns_list_get_dict(tree, 0, &reply) != GETDNS_RETURN_GOOD ||
	    getdns_dict_get_list(reply, "answer", &answer) !=
	            GETDNS_RETURN_GOOD ||
	    getdns_list_get_length(answer, &na) != GETDNS_RETURN_GOOD ||
	    wire->size < 12 ||
	    na != ((size_t)wire->data[6] << 8 | wire->data[7]))
		return 0;
	rv = tp_keyring_check(dns->keys, wire->data, wire->size, name, type,
	                      now);
	if (rv != TP_FAST_UNDECIDED) {
		pthread_mutex_lock(&dns->count_lock);
		if (rv == 1)
			dns->nfast++;
		else
			dns->nfastbad++;
		pthread_mutex_unlock(&dns->count_lock);
	}
	return rv == 1 &&
	       getdns_dict_set_int(reply, "dnssec_status",
	                           GETDNS_DNSSEC_SECURE) == GETDNS_RETURN_GOOD;
}

/* The same with getdns: the kept keys of the zones above name as trust
 * anchors. */
static int anchors_secure(tlspool_dns *dns, getdns_dict *resp, const char *name,
                          uint16_t type, time_t now)
{
	getdns_list *tas = tp_keyring_anchors(dns->keys, name, now);
	int ok;

	if (tas == NULL)
		return 0;
	ok = kept_secure(resp, name, type, tas, now);
	getdns_list_destroy(tas);
	return ok;
}

static int child_keys(tlspool_dns *dns, const char *name, getdns_dict *resp,
                      long long deadline, time_t now);

/*
 * One query for name with the DO bit (RFC 3225), its reply validated
 * offline with the kept keys of the zones above name: by rrsig.c when it
 * is a plain answer, else by getdns with those keys as trust anchors.
 * When the reply is signed by a zone below the kept ones (a child zone),
 * that zone's DS and DNSKEY sets are fetched and validated from the kept
 * keys (child_keys()), and the reply is validated again with them.  1
 * when the reply is secure: *resp is the response with that status in its
 * reply.  0 when it is not (*resp NULL), or when the query timed out with
 * no time left (*resp the timed-out response).
 */
static int query_kept(tlspool_dns *dns, const char *name, uint16_t type,
                      long long deadline, getdns_dict **resp)
{
	getdns_return_t r;
	time_t now = time(NULL);
	long long left = deadline - mono_ms();
	uint32_t status = 0;
	int ok;

	*resp = NULL;
	if (dns->keys == NULL || left <= 0 ||
	    !tp_keyring_covers(dns->keys, name, now))
		return 0;
	pthread_mutex_lock(&dns->fast_lock);
	r = getdns_context_set_timeout(dns->fast, (unsigned)left);
	if (r == GETDNS_RETURN_GOOD)
		r = getdns_general_sync(dns->fast, name, type, NULL, resp);
	pthread_mutex_unlock(&dns->fast_lock);
	if (r == GETDNS_RETURN_GOOD)
		getdns_dict_get_int(*resp, "status", &status);
	if (status == GETDNS_RESPSTATUS_ALL_TIMEOUT && deadline <= mono_ms())
		return 0; /* a timeout stays one */
	ok = r == GETDNS_RETURN_GOOD &&
	     (fast_secure(dns, *resp, name, type, now) ||
	      anchors_secure(dns, *resp, name, type, now));
	if (!ok && r == GETDNS_RETURN_GOOD &&
	    child_keys(dns, name, *resp, deadline, now))
		ok = fast_secure(dns, *resp, name, type, now) ||
		     anchors_secure(dns, *resp, name, type, now);
	if (!ok) {
		getdns_dict_destroy(*resp);
		*resp = NULL;
	}
	return ok;
}

/* Is entry i of chain the first DNSKEY owned by zone? */
static int first_of(const getdns_list *chain, size_t i, const char *zone)
{
	size_t j;

	for (j = 0; j < i; j++) {
		getdns_dict *rr;
		char owner[256];

		if (getdns_list_get_dict(chain, j, &rr) == GETDNS_RETURN_GOOD &&
		    rr_int(rr, "type", 0) == TP_RR_DNSKEY &&
		    tp_rr_name(rr, "name", owner) == 0 &&
		    tp_name_equal(owner, zone))
			return 0;
	}
	return 1;
}

/* The DNSKEY set of zone in chain with its RRSIGs, validated from the
 * anchors with chain as support (getdns takes one RRset at a time). */
static int zone_keys_secure(const getdns_list *chain, const char *zone,
                            const getdns_list *anchors, time_t now)
{
	getdns_list *keys = getdns_list_create();
	size_t i, n = 0, nk = 0;
	int ok = 0;

	if (keys == NULL)
		return 0;
	getdns_list_get_length(chain, &n);
	for (i = 0; i < n; i++) {
		getdns_dict *rr;
		char owner[256];
		uint32_t t;

		if (getdns_list_get_dict(chain, i, &rr) != GETDNS_RETURN_GOOD)
			goto out;
		t = rr_int(rr, "type", 0);
		if ((t != TP_RR_DNSKEY &&
		     (t != TP_RR_RRSIG ||
		      rr_int(rr, "/rdata/type_covered", 0) != TP_RR_DNSKEY)) ||
		    tp_rr_name(rr, "name", owner) != 0 ||
		    !tp_name_equal(owner, zone))
			continue;
		if (getdns_list_set_dict(keys, nk++, rr) != GETDNS_RETURN_GOOD)
			goto out;
	}
	ok = nk > 0 && getdns_validate_dnssec2(keys, chain, anchors, now, 0) ==
	                       GETDNS_DNSSEC_SECURE;
out:
	getdns_list_destroy(keys);
	return ok;
}

int tp_dns_keys_validated(tlspool_dns *dns, const struct getdns_list *chain,
                          time_t now)
{
	size_t i, n = 0, nzones = 0;

	getdns_list_get_length(chain, &n);
	for (i = 0; i < n; i++) {
		getdns_dict *rr;
		char zone[256];

		if (getdns_list_get_dict(chain, i, &rr) != GETDNS_RETURN_GOOD ||
		    tp_rr_name(rr, "name", zone) != 0)
			return 0;
		if (rr_int(rr, "type", 0) != TP_RR_DNSKEY)
			continue;
		/* Each zone once: the first of its DNSKEYs. */
		if (!first_of(chain, i, zone))
			continue;
		if (!zone_keys_secure(chain, zone, dns->anchors, now))
			return 0;
		nzones++;
	}
	return nzones > 0;
}

/* The keystore's functions, read together. */
static void keystore_of(tlspool_dns *dns, tlspool_dns_keystore_get **get,
                        tlspool_dns_keystore_put **put, void **arg)
{
	pthread_mutex_lock(&dns->count_lock);
	*get = dns->kget;
	*put = dns->kput;
	*arg = dns->karg;
	pthread_mutex_unlock(&dns->count_lock);
}

/*
 * Put the zone keys of a validated chain into the keystore, zone by zone
 * (the DNSKEY and DS RRsets with their RRSIGs), each until the time the
 * keyring keeps it.  Only a zone whose keys this handle does not keep
 * (new, or other keys after a rollover), or keeps for less than half of
 * that time, is written: a process writes a zone's keys about twice in
 * their lifetime, not at every full lookup.
 */
static void store(tlspool_dns *dns, const getdns_list *chain, time_t now)
{
	tlspool_dns_keystore_get *get;
	tlspool_dns_keystore_put *put;
	unsigned char *buf;
	void *arg;
	size_t i, n = 0;

	keystore_of(dns, &get, &put, &arg);
	if (put == NULL || (buf = malloc(TLSPOOL_DNS_KEYSTORE_MAX)) == NULL)
		return;
	getdns_list_get_length(chain, &n);
	for (i = 0; i < n; i++) {
		getdns_dict *rr;
		char zone[256];
		time_t until = 0, kept;
		long len;

		if (getdns_list_get_dict(chain, i, &rr) != GETDNS_RETURN_GOOD ||
		    rr_int(rr, "type", 0) != TP_RR_DNSKEY ||
		    tp_rr_name(rr, "name", zone) != 0 ||
		    !first_of(chain, i, zone))
			continue;
		len = tp_zone_wire(chain, zone, now, dns->keep_ttl, buf,
		                   TLSPOOL_DNS_KEYSTORE_MAX, &until);
		kept = tp_keyring_holds(dns->keys, chain, zone, now);
		if (len > 0 && (kept <= now || kept - now < (until - now) / 2))
			put(arg, zone, buf, (size_t)len, until);
	}
	free(buf);
}

/* The deepest signer of an RRSIG in the answer or authority section of
 * resp's reply that encloses name, lies below every kept zone that does,
 * and is not kept itself, into zone; 0, or -1 when there is none. */
static int unkept_signer(tlspool_dns *dns, getdns_dict *resp, const char *name,
                         time_t now, char zone[256])
{
	static const char *const sections[] = {"/replies_tree/0/answer",
	                                       "/replies_tree/0/authority"};
	size_t s, i, n;

	zone[0] = '\0';
	for (s = 0; s < 2; s++) {
		getdns_list *l;

		if (getdns_dict_get_list(resp, sections[s], &l) !=
		    GETDNS_RETURN_GOOD)
			continue;
		n = 0;
		getdns_list_get_length(l, &n);
		for (i = 0; i < n; i++) {
			getdns_dict *rr;
			char signer[256];

			if (getdns_list_get_dict(l, i, &rr) !=
			            GETDNS_RETURN_GOOD ||
			    rr_int(rr, "type", 0) != TP_RR_RRSIG ||
			    tp_rr_name(rr, "/rdata/signers_name", signer) !=
			            0 ||
			    !tp_zone_encloses(signer, name) ||
			    tp_keyring_until(dns->keys, signer) > now ||
			    strlen(signer) <= strlen(zone))
				continue;
			strcpy(zone, signer);
		}
	}
	return zone[0] != '\0' ? 0 : -1;
}

/* The records of type at zone in the answer of resp, and the RRSIGs over
 * them, appended to out.  The number of records of type, or -1. */
static int take(getdns_dict *resp, const char *zone, uint32_t type,
                getdns_list *out, const char **signer, char buf[256])
{
	getdns_list *l;
	size_t i, n = 0, no = 0;
	int found = 0;

	if (getdns_dict_get_list(resp, "/replies_tree/0/answer", &l) !=
	    GETDNS_RETURN_GOOD)
		return -1;
	getdns_list_get_length(l, &n);
	getdns_list_get_length(out, &no);
	for (i = 0; i < n; i++) {
		getdns_dict *rr;
		char owner[256];
		uint32_t t;

		if (getdns_list_get_dict(l, i, &rr) != GETDNS_RETURN_GOOD ||
		    tp_rr_name(rr, "name", owner) != 0 ||
		    !tp_name_equal(owner, zone))
			continue;
		t = rr_int(rr, "type", 0);
		if (t == TP_RR_RRSIG &&
		    rr_int(rr, "/rdata/type_covered", 0) == type) {
			if (signer != NULL &&
			    tp_rr_name(rr, "/rdata/signers_name", buf) == 0)
				*signer = buf;
		} else if (t == type) {
			found++;
		} else {
			continue;
		}
		if (getdns_list_set_dict(out, no++, rr) != GETDNS_RETURN_GOOD)
			return -1;
	}
	return found;
}

/* One query of type for zone on the one-query context; NULL if none. */
static getdns_dict *ask_fast(tlspool_dns *dns, const char *zone, uint16_t type,
                             long long deadline)
{
	getdns_dict *resp = NULL;
	long long left = deadline - mono_ms();
	getdns_return_t r;

	if (left <= 0)
		return NULL;
	pthread_mutex_lock(&dns->fast_lock);
	r = getdns_context_set_timeout(dns->fast, (unsigned)left);
	if (r == GETDNS_RETURN_GOOD)
		r = getdns_general_sync(dns->fast, zone, type, NULL, &resp);
	pthread_mutex_unlock(&dns->fast_lock);
	if (r != GETDNS_RETURN_GOOD) {
		getdns_dict_destroy(resp);
		return NULL;
	}
	return resp;
}

/* The records of type in l (not their RRSIGs), as a new list. */
static getdns_list *only(const getdns_list *l, uint32_t type)
{
	getdns_list *out = getdns_list_create();
	size_t i, n = 0, no = 0;

	if (out == NULL)
		return NULL;
	getdns_list_get_length(l, &n);
	for (i = 0; i < n; i++) {
		getdns_dict *rr;

		if (getdns_list_get_dict(l, i, &rr) == GETDNS_RETURN_GOOD &&
		    rr_int(rr, "type", 0) == type &&
		    getdns_list_set_dict(out, no++, rr) != GETDNS_RETURN_GOOD) {
			getdns_list_destroy(out);
			return NULL;
		}
	}
	return out;
}

/* Is the DS set (with its RRSIGs) in ds signed by one of the kept keys
 * tas, and the DNSKEY set (with its RRSIGs) in keys signed by a key that
 * one of those DS records authenticates?  Two steps, as getdns checks one
 * signer per call: the DS set with tas as trust anchors, then the DNSKEY
 * set with the validated DS records as trust anchors (getdns finds the
 * key a DS names in the support list: the DNSKEY set itself). */
static int keys_via_ds(getdns_list *ds, getdns_list *keys, getdns_list *tas,
                       time_t now)
{
	getdns_list *none = getdns_list_create(), *dsonly = NULL;
	int ok = 0;

	if (none != NULL &&
	    getdns_validate_dnssec2(ds, none, tas, now, 0) ==
	            GETDNS_DNSSEC_SECURE &&
	    (dsonly = only(ds, TP_RR_DS)) != NULL)
		ok = getdns_validate_dnssec2(keys, keys, dsonly, now, 0) ==
		     GETDNS_DNSSEC_SECURE;
	getdns_list_destroy(dsonly);
	getdns_list_destroy(none);
	return ok;
}

/*
 * A reply signed by a zone below the kept ones: fetch that zone's DS set
 * (from its parent) and DNSKEY set, two queries, and keep the DNSKEYs when
 * they validate through the DS from the kept keys of the zones above
 * (RFC 4035 section 5: the DS RRset signed by a kept key, a DNSKEY that
 * the DS authenticates signing the DNSKEY RRset).  Kept no longer than the
 * parent's keys, and put into the keystore.  An insecure delegation (no
 * DS), or anything that does not validate, keeps nothing: the lookup is
 * then a full one.  1 when keys were kept, else 0.
 */
static int child_keys(tlspool_dns *dns, const char *name, getdns_dict *resp,
                      long long deadline, time_t now)
{
	char zone[256], pbuf[256];
	const char *parent = NULL;
	getdns_dict *ds = NULL, *dk = NULL;
	getdns_list *tas = NULL, *support = getdns_list_create(),
	            *keys = getdns_list_create(), *chain = NULL;
	size_t i, n = 0, nc = 0;
	int rv = 0;

	if (support == NULL || keys == NULL ||
	    unkept_signer(dns, resp, name, now, zone) != 0 ||
	    (tas = tp_keyring_anchors(dns->keys, zone, now)) == NULL ||
	    (ds = ask_fast(dns, zone, TP_RR_DS, deadline)) == NULL ||
	    take(ds, zone, TP_RR_DS, support, &parent, pbuf) <= 0 ||
	    parent == NULL ||
	    (dk = ask_fast(dns, zone, TP_RR_DNSKEY, deadline)) == NULL ||
	    take(dk, zone, TP_RR_DNSKEY, keys, NULL, NULL) <= 0 ||
	    !keys_via_ds(support, keys, tas, now) ||
	    (chain = getdns_list_create()) == NULL)
		goto out;
	/* the DS set and its RRSIG, then the DNSKEY set and its RRSIGs */
	getdns_list_get_length(support, &n);
	for (i = 0; i < n; i++) {
		getdns_dict *rr;

		if (getdns_list_get_dict(support, i, &rr) !=
		            GETDNS_RETURN_GOOD ||
		    getdns_list_set_dict(chain, nc++, rr) != GETDNS_RETURN_GOOD)
			goto out;
	}
	n = 0;
	getdns_list_get_length(keys, &n);
	for (i = 0; i < n; i++) {
		getdns_dict *rr;

		if (getdns_list_get_dict(keys, i, &rr) != GETDNS_RETURN_GOOD ||
		    getdns_list_set_dict(chain, nc++, rr) != GETDNS_RETURN_GOOD)
			goto out;
	}
	if (tp_keyring_until(dns->keys, parent) <= now)
		goto out;
	store(dns, chain, now);
	rv = tp_keyring_learn_until(dns->keys, chain, now,
	                            tp_keyring_until(dns->keys, parent)) == 0 &&
	     tp_keyring_until(dns->keys, zone) > now;
out:
	getdns_list_destroy(chain);
	getdns_list_destroy(keys);
	getdns_list_destroy(support);
	getdns_list_destroy(tas);
	getdns_dict_destroy(ds);
	getdns_dict_destroy(dk);
	return rv;
}

/* Keep the zone keys of a secure full lookup's validation chain: each of
 * its DNSKEY sets validated once more from the trust anchor, whatever
 * getdns put in the chain.  For lack of memory nothing is kept: the next
 * lookup is a full one again. */
static void learn(tlspool_dns *dns, getdns_dict *resp)
{
	getdns_list *chain;
	time_t now = time(NULL);

	if (dns->keys != NULL &&
	    rr_int(resp, "/replies_tree/0/dnssec_status", 0) ==
	            GETDNS_DNSSEC_SECURE &&
	    getdns_dict_get_list(resp, "validation_chain", &chain) ==
	            GETDNS_RETURN_GOOD &&
	    tp_dns_keys_validated(dns, chain, now)) {
		store(dns, chain, now);
		(void)tp_keyring_learn(dns->keys, chain, now);
	}
}

/*
 * Zone keys from the keystore for name: the entries of name and of each
 * zone above it up to the root, as one chain.  They are kept only when
 * one of them is of a zone not kept yet (else the store has nothing new
 * and is not read again for this lookup), and only when every DNSKEY set
 * among them validates from the trust anchor (tp_dns_keys_validated()):
 * a store that was tampered with, or holds keys a rollover retired, adds
 * nothing, and the lookup is a full one.  Kept no later than the earliest
 * entry's expiry.  1 when keys were kept, else 0.
 */
static int load_stored(tlspool_dns *dns, const char *name, time_t now)
{
	tlspool_dns_keystore_get *get;
	tlspool_dns_keystore_put *put;
	getdns_list *list = NULL;
	unsigned char *buf = NULL;
	const char *z = name;
	time_t cap = 0;
	void *arg;
	int fresh = 0, rv = 0;

	keystore_of(dns, &get, &put, &arg);
	if (get == NULL || dns->keys == NULL ||
	    (buf = malloc(TLSPOOL_DNS_KEYSTORE_MAX)) == NULL ||
	    (list = getdns_list_create()) == NULL)
		goto out;
	for (;;) {
		char zone[256];
		time_t until = 0;
		long len;

		snprintf(zone, sizeof(zone), "%s",
		         z[0] == '\0' || strcmp(z, ".") == 0 ? "." : z);
		len = get(arg, zone, buf, TLSPOOL_DNS_KEYSTORE_MAX, &until);
		if (len > TLSPOOL_DNS_KEYSTORE_MAX)
			goto out;
		if (len > 0 && until > now) {
			if (tp_wire_append(list, buf, (size_t)len) != 0)
				goto out; /* malformed: nothing of it */
			if (cap == 0 || until < cap)
				cap = until;
			if (tp_keyring_until(dns->keys, zone) <= now)
				fresh = 1;
		}
		if (strcmp(zone, ".") == 0)
			break;
		z = strchr(z, '.') != NULL ? strchr(z, '.') + 1 : "";
	}
	if (fresh && tp_dns_keys_validated(dns, list, now) &&
	    tp_keyring_learn_until(dns->keys, list, now, cap) == 0) {
		rv = 1;
		pthread_mutex_lock(&dns->count_lock);
		dns->nloaded++;
		pthread_mutex_unlock(&dns->count_lock);
	}
out:
	getdns_list_destroy(list);
	free(buf);
	return rv;
}

/* One query of the lookup, with what is left of its time: from the kept
 * keys when they validate the reply, else a full lookup. */
/* The full lookup: getdns builds and validates the chain from the trust
 * anchor. */
static getdns_return_t query_full(tlspool_dns *dns, const char *name,
                                  uint16_t type, long long deadline,
                                  getdns_dict **resp)
{
	getdns_return_t r;
	long long left = deadline - mono_ms();

	if (left <= 0)
		left = 1; /* getdns reports the timeout */
	count(dns, 0);
	pthread_mutex_lock(&dns->lock);
	r = getdns_context_set_timeout(dns->ctx, (unsigned)left);
	if (r == GETDNS_RETURN_GOOD)
		r = getdns_general_sync(dns->ctx, name, type,
		                        dns->chain ? dns->ext_chain : dns->ext,
		                        resp);
	pthread_mutex_unlock(&dns->lock);
	if (r == GETDNS_RETURN_GOOD)
		learn(dns, *resp);
	return r;
}

/* The DNSSEC status getdns gave the first reply of resp (0: none). */
static uint32_t reply_status(getdns_dict *resp)
{
	uint32_t st = 0;

	getdns_dict_get_int(resp, "/replies_tree/0/dnssec_status", &st);
	return st;
}

static getdns_return_t query(tlspool_dns *dns, const char *name, uint16_t type,
                             long long deadline, getdns_dict **resp)
{
	getdns_return_t r;

	/* a caller who asked for the validation chain gets it: the full
	 * lookup */
	if (!dns->chain && query_kept(dns, name, type, deadline, resp)) {
		count(dns, 1);
		return GETDNS_RETURN_GOOD;
	}
	/* keys another process kept, from the keystore */
	if (!dns->chain && *resp == NULL &&
	    load_stored(dns, name, time(NULL)) &&
	    query_kept(dns, name, type, deadline, resp)) {
		count(dns, 1);
		return GETDNS_RETURN_GOOD;
	}
	if (*resp != NULL)
		return GETDNS_RETURN_GOOD; /* timed out */
	r = query_full(dns, name, type, deadline, resp);
	/* A bogus verdict is asked for once more while time is left, as a
	 * validating resolver retries a bogus answer before it believes it
	 * (Unbound's val-bogus retries): a chain query that got no answer in
	 * time makes getdns call the whole answer bogus, where the next try
	 * validates.  Only a secure answer is ever taken from either; a
	 * zone that is really broken is bogus twice. */
	if (r == GETDNS_RETURN_GOOD &&
	    reply_status(*resp) == GETDNS_DNSSEC_BOGUS &&
	    deadline - mono_ms() > 0) {
		getdns_dict_destroy(*resp);
		*resp = NULL;
		r = query_full(dns, name, type, deadline, resp);
	}
	return r;
}

int tlspool_dns_lookup_within(tlspool_dns *dns, const char *name, uint16_t type,
                              unsigned timeout_ms, tlspool_dns_answer **out,
                              char *err, size_t errlen)
{
	tlspool_dns_answer *ans;
	char cur[256];
	size_t len;
	int round;
	unsigned budget;
	long long deadline;

	if (out != NULL)
		*out = NULL;
	if (dns == NULL || out == NULL || tlspool_check_domain(name, 1) != 0) {
		tp_err(err, errlen, "%s: not a domain name",
		       name ? name : "(null)");
		errno = EINVAL;
		return -1;
	}
	ans = calloc(1, sizeof(*ans));
	if (ans == NULL)
		goto nomem;
	len = strlen(name);
	snprintf(ans->qname, sizeof(ans->qname), "%s%s", name,
	         name[len - 1] == '.' ? "" : ".");
	strcpy(ans->owner, ans->qname);
	strcpy(cur, ans->qname);
	ans->qtype = type;
	/* The whole lookup, CNAMEs included, within the budget. */
	budget = timeout_ms != 0 && timeout_ms < dns->timeout_ms
	                 ? timeout_ms
	                 : dns->timeout_ms;
	deadline = mono_ms() + budget;
	for (round = 0; round <= TP_MAX_CNAMES; round++) {
		getdns_dict *resp = NULL;
		getdns_return_t r;
		tlspool_dns_verdict before = ans->verdict;
		enum tp_step step;
		long long left = deadline - mono_ms();
		int rv;

		if (left <= 0) {
			ans->verdict = TLSPOOL_DNS_TIMEOUT;
			break;
		}
		r = query(dns, cur, type, deadline, &resp);
		if (r != GETDNS_RETURN_GOOD) {
			getdns_dict_destroy(resp);
			ans->verdict = TLSPOOL_DNS_SERVFAIL;
			snprintf(ans->detail, sizeof(ans->detail), "getdns: %s",
			         getdns_get_errorstr_by_id(r));
			break;
		}
		rv = tp_dns_classify(ans, resp, cur, &step);
		if (rv == 0 && dns->chain)
			rv = keep_chain(ans, resp);
		getdns_dict_destroy(resp);
		if (rv != 0)
			goto nomem;
		/* An insecure link taints the rest of the chain. */
		if (before == TLSPOOL_DNS_INSECURE &&
		    !tlspool_dns_verdict_is_error(ans->verdict))
			ans->verdict = TLSPOOL_DNS_INSECURE;
		if (step == TP_STEP_DONE)
			break;
		if (round == TP_MAX_CNAMES) {
			ans->verdict = TLSPOOL_DNS_SERVFAIL;
			snprintf(ans->detail, sizeof(ans->detail),
			         "CNAME chain longer than %d", TP_MAX_CNAMES);
		}
	}
	if (ans->verdict == TLSPOOL_DNS_TIMEOUT)
		snprintf(ans->detail, sizeof(ans->detail),
		         "no answer within %u ms from %s (%s)", budget,
		         dns->upstreams,
		         budget < dns->timeout_ms
		                 ? "what was left of the call's deadline"
		                 : "[dns] timeout_ms");
	*out = ans;
	return 0;
nomem:
	tlspool_dns_answer_free(ans);
	tp_err(err, errlen, "out of memory");
	errno = ENOMEM;
	return -1;
}
