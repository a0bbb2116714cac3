/*
 * Destinations whose hosts are found in the DNS: SMTP by MX (RFC 7672)
 * and services by SRV (RFC 7673), with what DANE says about each host.
 *
 * Outline:
 *   1. The MX (or SRV) RRset, validated.  An error fails closed; an
 *      insecure RRset means no DANE for any host (RFC 7672 section
 *      2.2.1, RFC 7673 section 3.1), though the hosts are still listed
 *      with their addresses; a null MX (RFC 7505) or an SRV target "."
 *      says there is no service; a secure MX NODATA makes the domain its
 *      own host (RFC 5321 section 5.1).
 *   2. The hosts in the order a client tries them, each once.
 *   3. Per host: A and AAAA.  An error makes the host unusable (RFC 7672
 *      section 2.1.1); insecure addresses of a host that is not an alias
 *      mean no DANE for it (section 2.2.2).
 *   4. The TLSA base domain (RFC 7672 section 2.2.3, RFC 7671 section
 *      7): the CNAME-expanded name when the chain is secure, and when
 *      that has no TLSA records (or insecure ones) the original name; the
 *      original name alone when the chain is insecure.  A TLSA lookup
 *      error ends there: the original name is not asked.
 *   5. The records' usability (RFC 7672 sections 2.2 and 3.1.3: only
 *      DANE-TA(2) and DANE-EE(3) for SMTP), and the reference
 *      identifiers that DANE-TA(2) name checks accept (RFC 7672 section
 *      3.2.2, RFC 7673 section 3).
 */
#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define TP_MAX_HOSTS 16

const char *tlspool_dest_verdict_name(tlspool_dest_verdict v)
{
	switch (v) {
	case TLSPOOL_DEST_UNCHECKED:
		return "unchecked";
	case TLSPOOL_DEST_SECURE:
		return "secure";
	case TLSPOOL_DEST_IMPLICIT:
		return "implicit";
	case TLSPOOL_DEST_INSECURE:
		return "insecure";
	case TLSPOOL_DEST_NO_SERVICE:
		return "no-service";
	case TLSPOOL_DEST_DNS_ERROR:
		return "dns-error";
	}
	return "unknown";
}

const char *tlspool_host_verdict_name(tlspool_host_verdict v)
{
	switch (v) {
	case TLSPOOL_HOST_UNCHECKED:
		return "unchecked";
	case TLSPOOL_HOST_DANE:
		return "dane";
	case TLSPOOL_HOST_UNUSABLE:
		return "unusable";
	case TLSPOOL_HOST_NO_TLSA:
		return "no-tlsa";
	case TLSPOOL_HOST_INSECURE:
		return "insecure";
	case TLSPOOL_HOST_NO_ADDRESS:
		return "no-address";
	case TLSPOOL_HOST_DNS_ERROR:
		return "dns-error";
	}
	return "unknown";
}

int tlspool_mx_parse(const unsigned char *rdata, size_t len,
                     uint16_t *preference, char exchange[256])
{
	unsigned char buf[4 + 2 + 256];
	tlspool_srv srv;

	/* The exchange is a name in wire form, as an SRV target is: parse
	 * it through the SRV parser (uncompressed, host name labels). */
	if (rdata == NULL || len < 3 || len > 2 + 256) {
		errno = EBADMSG;
		return -1;
	}
	memset(buf, 0, 6);
	memcpy(buf, rdata, 2);
	memcpy(buf + 6, rdata + 2, len - 2);
	if (tlspool_srv_parse(buf, len + 4, &srv) != 0)
		return -1;
	*preference = srv.priority;
	memcpy(exchange, srv.target, sizeof(srv.target));
	return 0;
}

void tlspool_dest_free(tlspool_dest *dest)
{
	size_t i;

	if (dest == NULL)
		return;
	for (i = 0; i < dest->nhosts; i++) {
		tlspool_dest_host *h = &dest->hosts[i];

		tlspool_dns_answer_free(h->a);
		tlspool_dns_answer_free(h->aaaa);
		tlspool_dns_answer_free(h->tlsa);
		tlspool_dns_answer_free(h->tlsa_expanded);
	}
	free(dest->hosts);
	tlspool_dns_answer_free(dest->rrset);
	free(dest);
}

static uint32_t nonce32(void)
{
	uint32_t r = 0;

	if (gnutls_rnd(GNUTLS_RND_NONCE, &r, sizeof(r)) != 0)
		r = (uint32_t)rand();
	return r;
}

static int by_preference(const void *a, const void *b)
{
	const tlspool_dest_host *x = a, *y = b;

	return (int)x->preference - (int)y->preference;
}

static int by_priority(const void *a, const void *b)
{
	const tlspool_srv *x = a, *y = b;

	return (int)x->priority - (int)y->priority;
}

/* MX hosts by preference, equal ones shuffled (RFC 5321 section 5.1). */
static void order_mx(tlspool_dest_host *h, size_t n)
{
	size_t start = 0;

	qsort(h, n, sizeof(*h), by_preference);
	while (start < n) {
		size_t end = start;

		while (end < n && h[end].preference == h[start].preference)
			end++;
		for (size_t k = end - 1; k > start; k--) {
			size_t j = start + nonce32() % (k - start + 1);
			tlspool_dest_host t = h[k];

			h[k] = h[j];
			h[j] = t;
		}
		start = end;
	}
}

/* Is (name, port) already among the hosts? */
static int have_host(const tlspool_dest *d, const char *name, unsigned port)
{
	for (size_t i = 0; i < d->nhosts; i++)
		if (d->hosts[i].port == port &&
		    tp_name_equal(d->hosts[i].name, name))
			return 1;
	return 0;
}

static tlspool_dest_host *add_host(tlspool_dest *d, const char *name,
                                   unsigned port)
{
	tlspool_dest_host *h;

	if (d->nhosts == TP_MAX_HOSTS || have_host(d, name, port))
		return NULL;
	h = &d->hosts[d->nhosts++];
	memset(h, 0, sizeof(*h));
	snprintf(h->name, sizeof(h->name), "%s", name);
	h->port = (uint16_t)port;
	return h;
}

/* The address verdict of a host: both lookups together. */
static tlspool_dns_verdict address_verdict(const tlspool_dns_answer *a,
                                           const tlspool_dns_answer *b)
{
	const tlspool_dns_answer *x[2] = {a, b};
	int insecure = 0, records = 0;

	for (int i = 0; i < 2; i++) {
		if (tlspool_dns_verdict_is_error(x[i]->verdict))
			return x[i]->verdict;
		if (x[i]->verdict == TLSPOOL_DNS_INSECURE)
			insecure = 1;
		if (x[i]->nrr > 0)
			records = 1;
	}
	if (insecure)
		return TLSPOOL_DNS_INSECURE;
	return records ? TLSPOOL_DNS_SECURE : TLSPOOL_DNS_SECURE_NODATA;
}

/* A record that DANE can use: DANE-TA(2) or DANE-EE(3), and for other
 * than SMTP the PKIX usages; selectors 0 and 1; matching types 0, 1, 2
 * (RFC 7672 section 2.2, RFC 7671 section 4.1). */
static int usable(const tlspool_tlsa *t, int smtp)
{
	if (t->usage > 3 || (smtp && t->usage < 2))
		return 0;
	return t->selector <= 1 && t->mtype <= 2 && t->len > 0;
}

static size_t count_usable(const tlspool_dns_answer *a, int smtp)
{
	size_t n = 0;
	tlspool_tlsa t;

	for (size_t i = 0; i < a->nrr; i++)
		if (tlspool_tlsa_parse(a->rr[i].rdata, a->rr[i].rdlen, &t) ==
		            0 &&
		    usable(&t, smtp))
			n++;
	return n;
}

static void add_name(tlspool_dest_host *h, const char *name)
{
	char buf[256];
	size_t len;

	if (name == NULL || name[0] == '\0' || strcmp(name, ".") == 0)
		return;
	snprintf(buf, sizeof(buf), "%s", name);
	len = strlen(buf);
	if (len > 1 && buf[len - 1] == '.')
		buf[len - 1] = '\0';
	for (size_t i = 0; i < h->nnames; i++)
		if (tp_name_equal(h->names[i], buf))
			return;
	if (h->nnames < TLSPOOL_DEST_MAX_NAMES)
		strcpy(h->names[h->nnames++], buf);
}

/* A TLSA lookup at _PORT._tcp.base; 0, 1 when that name cannot exist
 * (longer than a domain name may be, RFC 1035 section 2.3.4: no records
 * there), or -1 (err set). */
static int tlsa_at(tlspool_dns *dns, const char *base, unsigned port,
                   char owner[256], tlspool_dns_answer **ans, char *err,
                   size_t errlen)
{
	if (tlspool_tlsa_owner(owner, 256, port, "tcp", base) < 0) {
		snprintf(owner, 256, "_%u._tcp.%.200s", port, base);
		return 1;
	}
	return tlspool_dns_lookup(dns, owner, TLSPOOL_RR_TLSA, ans, err,
	                          errlen);
}

/* Has the lookup proved that there is nothing to use there: no records,
 * or insecure ones (RFC 7672 section 2.2.3: then the original name)? */
static int nothing_there(const tlspool_dns_answer *a)
{
	return a->verdict == TLSPOOL_DNS_SECURE_NODATA ||
	       a->verdict == TLSPOOL_DNS_SECURE_NXDOMAIN ||
	       a->verdict == TLSPOOL_DNS_INSECURE ||
	       (a->verdict == TLSPOOL_DNS_SECURE && a->nrr == 0);
}

/* Step 4 and 5 for one host whose addresses were looked up. */
static int host_tlsa(tlspool_dns *dns, const tlspool_dest *d,
                     tlspool_dest_host *h, char *err, size_t errlen)
{
	tlspool_dns_answer *t = NULL;
	char owner[256];
	int r;

	if (h->expanded[0] != '\0' && h->expanded_secure) {
		/* no TLSA owner name at the expanded name: nothing there */
		r = tlsa_at(dns, h->expanded, h->port, owner, &t, err, errlen);
		if (r < 0)
			return -1;
		if (r == 0 && !nothing_there(t)) {
			snprintf(h->base, sizeof(h->base), "%s", h->expanded);
			goto decided;
		}
		h->tlsa_expanded = t;
		t = NULL;
	}
	r = tlsa_at(dns, h->name, h->port, owner, &t, err, errlen);
	if (r < 0)
		return -1;
	snprintf(h->base, sizeof(h->base), "%s", h->name);
	if (r > 0) {
		/* a host that DANE cannot authenticate: fail closed, the
		 * other hosts are still tried */
		h->verdict = TLSPOOL_HOST_DNS_ERROR;
		snprintf(h->owner, sizeof(h->owner), "%s", owner);
		snprintf(h->reason, sizeof(h->reason),
		         "%.200s: no TLSA owner name (longer than 255 octets)",
		         owner);
		return 0;
	}
decided:
	h->tlsa = t;
	snprintf(h->owner, sizeof(h->owner), "%s", owner);
	if (tlspool_dns_verdict_is_error(t->verdict)) {
		h->verdict = TLSPOOL_HOST_DNS_ERROR;
		tlspool_dns_answer_explain(t, h->reason, sizeof(h->reason));
		return 0;
	}
	if (t->verdict == TLSPOOL_DNS_INSECURE) {
		h->verdict = TLSPOOL_HOST_INSECURE;
		snprintf(h->reason, sizeof(h->reason),
		         "%s: the TLSA records are insecure: no DANE", owner);
		return 0;
	}
	if (nothing_there(t)) {
		h->verdict = TLSPOOL_HOST_NO_TLSA;
		snprintf(h->reason, sizeof(h->reason),
		         "%s: no TLSA records (proven by DNSSEC): no DANE",
		         owner);
		return 0;
	}
	h->nusable = count_usable(t, !d->srv);
	if (h->nusable == 0) {
		h->verdict = TLSPOOL_HOST_UNUSABLE;
		snprintf(h->reason, sizeof(h->reason),
		         "%s: %zu TLSA record%s, none usable%s: TLS is "
		         "mandatory but cannot authenticate (RFC 7672 section "
		         "2.2)",
		         owner, t->nrr, t->nrr == 1 ? "" : "s",
		         d->srv ? ""
		                : " for SMTP (only DANE-TA(2), DANE-EE(3))");
		return 0;
	}
	h->verdict = TLSPOOL_HOST_DANE;
	snprintf(h->reason, sizeof(h->reason),
	         "%s: %zu usable TLSA record%s (of %zu)", owner, h->nusable,
	         h->nusable == 1 ? "" : "s", t->nrr);
	add_name(h, h->base);
	add_name(h, h->name);
	if (h->expanded_secure)
		add_name(h, h->expanded);
	add_name(h, d->domain);
	return 0;
}

/* Steps 3 to 5 for one host. */
static int resolve_host(tlspool_dns *dns, const tlspool_dest *d,
                        tlspool_dest_host *h, char *err, size_t errlen)
{
	const tlspool_dns_answer *x;

	if (tlspool_dns_lookup(dns, h->name, TLSPOOL_RR_A, &h->a, err,
	                       errlen) != 0 ||
	    tlspool_dns_lookup(dns, h->name, TLSPOOL_RR_AAAA, &h->aaaa, err,
	                       errlen) != 0)
		return -1;
	h->address = address_verdict(h->a, h->aaaa);
	x = h->a->ncname > 0 ? h->a : h->aaaa;
	if (x->ncname > 0 && !tlspool_dns_verdict_is_error(x->verdict)) {
		snprintf(h->expanded, sizeof(h->expanded), "%s",
		         x->cname[x->ncname - 1]);
		h->expanded_secure = x->verdict != TLSPOOL_DNS_INSECURE;
	}
	if (tlspool_dns_verdict_is_error(h->address)) {
		const tlspool_dns_answer *bad =
		        tlspool_dns_verdict_is_error(h->a->verdict) ? h->a
		                                                    : h->aaaa;

		h->verdict = TLSPOOL_HOST_DNS_ERROR;
		tlspool_dns_answer_explain(bad, h->reason, sizeof(h->reason));
		return 0;
	}
	if (h->address == TLSPOOL_DNS_SECURE_NODATA) {
		h->verdict = TLSPOOL_HOST_NO_ADDRESS;
		snprintf(h->reason, sizeof(h->reason),
		         "%s: no A or AAAA records", h->name);
		return 0;
	}
	if (d->verdict == TLSPOOL_DEST_INSECURE) {
		h->verdict = TLSPOOL_HOST_INSECURE;
		snprintf(h->reason, sizeof(h->reason),
		         "the %s RRset is insecure: no DANE",
		         d->srv ? "SRV" : "MX");
		return 0;
	}
	/* RFC 7672 section 2.2.2: insecure addresses of a name that is not
	 * an alias mean no DANE; through an alias the original name may
	 * still hold secure TLSA records (its own lookup says). */
	if (h->address == TLSPOOL_DNS_INSECURE && h->expanded[0] == '\0') {
		h->verdict = TLSPOOL_HOST_INSECURE;
		snprintf(h->reason, sizeof(h->reason),
		         "%s: the addresses are insecure: no DANE", h->name);
		return 0;
	}
	return host_tlsa(dns, d, h, err, errlen);
}

static tlspool_dest *dest_new(int srv, const char *domain, char *err,
                              size_t errlen)
{
	tlspool_dest *d;
	size_t len;

	if (domain == NULL || tlspool_check_domain(domain, 0) != 0 ||
	    strcmp(domain, ".") == 0) {
		tp_err(err, errlen, "%s: not a domain name",
		       domain ? domain : "(null)");
		errno = EINVAL;
		return NULL;
	}
	d = calloc(1, sizeof(*d));
	if (d != NULL)
		d->hosts = calloc(TP_MAX_HOSTS, sizeof(*d->hosts));
	if (d == NULL || d->hosts == NULL) {
		free(d);
		tp_err(err, errlen, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	d->srv = srv;
	len = strlen(domain);
	snprintf(d->domain, sizeof(d->domain), "%s%s", domain,
	         domain[len - 1] == '.' ? "" : ".");
	return d;
}

/* Step 1: the verdict of the RRset; 1 when it leaves no hosts to look
 * at. */
static int rrset_decides(tlspool_dest *d)
{
	const tlspool_dns_answer *a = d->rrset;
	const char *type = d->srv ? "SRV" : "MX";

	if (tlspool_dns_verdict_is_error(a->verdict)) {
		d->verdict = TLSPOOL_DEST_DNS_ERROR;
		tlspool_dns_answer_explain(a, d->reason, sizeof(d->reason));
		return 1;
	}
	if (a->verdict == TLSPOOL_DNS_INSECURE) {
		d->verdict = TLSPOOL_DEST_INSECURE;
		snprintf(d->reason, sizeof(d->reason),
		         "%s: the %s RRset is insecure: DANE does not apply",
		         a->qname, type);
		return a->nrr == 0;
	}
	if (a->nrr == 0 &&
	    (d->srv || a->verdict != TLSPOOL_DNS_SECURE_NODATA)) {
		d->verdict = TLSPOOL_DEST_NO_SERVICE;
		snprintf(d->reason, sizeof(d->reason), "%s: no %s records: %s",
		         a->qname, type, tlspool_dns_verdict_text(a->verdict));
		return 1;
	}
	if (a->nrr == 0) {
		d->verdict = TLSPOOL_DEST_IMPLICIT;
		snprintf(d->reason, sizeof(d->reason),
		         "%s: no MX records (proven by DNSSEC): the domain is "
		         "its own mail host (RFC 5321 section 5.1)",
		         a->qname);
		return 0;
	}
	d->verdict = TLSPOOL_DEST_SECURE;
	snprintf(d->reason, sizeof(d->reason), "%s: %zu %s record%s, secure",
	         a->qname, a->nrr, type, a->nrr == 1 ? "" : "s");
	return 0;
}

static void no_service(tlspool_dest *d, const char *why)
{
	d->verdict = TLSPOOL_DEST_NO_SERVICE;
	snprintf(d->reason, sizeof(d->reason), "%s: %s", d->qname, why);
	d->nhosts = 0;
}

/* Steps 2 to 5 for the hosts already listed. */
static int resolve_hosts(tlspool_dns *dns, tlspool_dest *d, char *err,
                         size_t errlen)
{
	for (size_t i = 0; i < d->nhosts; i++)
		if (resolve_host(dns, d, &d->hosts[i], err, errlen) != 0)
			return -1;
	return 0;
}

/* The MX hosts of the RRset; 1 for a null MX, -1 for lack of memory.
 * The records are taken by preference, whatever order the RRset came in
 * (resolvers rotate it): the TP_MAX_HOSTS kept are those of the lowest
 * preferences, and a host listed twice keeps its lowest (RFC 5321
 * section 5.1). */
static int mx_hosts(tlspool_dest *d, unsigned port)
{
	const tlspool_dns_answer *a = d->rrset;
	tlspool_dest_host *h;
	tlspool_srv *mx;
	size_t n = 0;

	if (a->nrr == 0) { /* implicit MX: the domain itself */
		add_host(d, d->domain, port);
		return 0;
	}
	mx = calloc(a->nrr, sizeof(*mx));
	if (mx == NULL)
		return -1;
	for (size_t i = 0; i < a->nrr; i++) {
		if (tlspool_mx_parse(a->rr[i].rdata, a->rr[i].rdlen,
		                     &mx[n].priority, mx[n].target) != 0)
			continue; /* malformed: not a host to try */
		if (strcmp(mx[n].target, ".") == 0) {
			if (a->nrr == 1) {
				free(mx);
				return 1;
			}
			continue; /* RFC 7505 section 3: only alone */
		}
		n++;
	}
	qsort(mx, n, sizeof(*mx), by_priority);
	for (size_t i = 0; i < n; i++) {
		h = add_host(d, mx[i].target, port);
		if (h != NULL)
			h->preference = mx[i].priority;
	}
	free(mx);
	order_mx(d->hosts, d->nhosts);
	return 0;
}

int tlspool_mx_resolve(tlspool_dns *dns, const char *domain, unsigned port,
                       tlspool_dest **out, char *err, size_t errlen)
{
	tlspool_dest *d;

	if (out != NULL)
		*out = NULL;
	if (dns == NULL || out == NULL || port > 65535) {
		tp_err(err, errlen, "bad arguments");
		errno = EINVAL;
		return -1;
	}
	d = dest_new(0, domain, err, errlen);
	if (d == NULL)
		return -1;
	if (port == 0)
		port = 25;
	snprintf(d->qname, sizeof(d->qname), "%s", d->domain);
	if (tlspool_dns_lookup(dns, d->qname, TLSPOOL_RR_MX, &d->rrset, err,
	                       errlen) != 0)
		goto fail;
	if (!rrset_decides(d)) {
		int r = mx_hosts(d, port);

		if (r < 0) {
			tp_err(err, errlen, "out of memory");
			errno = ENOMEM;
			goto fail;
		}
		if (r > 0)
			no_service(d, "a null MX: the domain accepts no mail "
			              "(RFC 7505)");
		else if (resolve_hosts(dns, d, err, errlen) != 0)
			goto fail;
	}
	*out = d;
	return 0;
fail:
	tlspool_dest_free(d);
	return -1;
}

int tlspool_srv_resolve(tlspool_dns *dns, const char *service,
                        const char *domain, tlspool_dest **out, char *err,
                        size_t errlen)
{
	tlspool_srv *srv = NULL;
	tlspool_dest *d;
	size_t n = 0;
	int len;

	if (out != NULL)
		*out = NULL;
	if (dns == NULL || out == NULL || service == NULL ||
	    service[0] == '\0' || strlen(service) > 62 ||
	    strchr(service, '.') != NULL ||
	    tlspool_check_domain(service, 0) != 0) {
		tp_err(err, errlen, "%s: not a service name",
		       service ? service : "(null)");
		errno = EINVAL;
		return -1;
	}
	d = dest_new(1, domain, err, errlen);
	if (d == NULL)
		return -1;
	len = snprintf(d->qname, sizeof(d->qname), "_%s._tcp.%s", service,
	               d->domain);
	if (len < 0 || (size_t)len >= sizeof(d->qname) ||
	    tlspool_check_domain(d->qname, 1) != 0) {
		tp_err(err, errlen, "_%s._tcp.%s: name too long", service,
		       d->domain);
		tlspool_dest_free(d);
		errno = EINVAL;
		return -1;
	}
	if (tlspool_dns_lookup(dns, d->qname, TLSPOOL_RR_SRV, &d->rrset, err,
	                       errlen) != 0)
		goto fail;
	if (rrset_decides(d))
		goto done;
	/* every record, then the order (RFC 2782), then the first
	 * TP_MAX_HOSTS: not the first records as the RRset came */
	srv = calloc(d->rrset->nrr ? d->rrset->nrr : 1, sizeof(*srv));
	if (srv == NULL) {
		tp_err(err, errlen, "out of memory");
		errno = ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < d->rrset->nrr; i++)
		if (tlspool_srv_parse(d->rrset->rr[i].rdata,
		                      d->rrset->rr[i].rdlen, &srv[n]) == 0)
			n++;
	if (n == 1 && strcmp(srv[0].target, ".") == 0) {
		no_service(d, "the SRV target is \".\": the service is not "
		              "offered (RFC 2782)");
		goto done;
	}
	tlspool_srv_order(srv, n, NULL, NULL);
	for (size_t i = 0; i < n; i++) {
		tlspool_dest_host *h;

		if (strcmp(srv[i].target, ".") == 0)
			continue;
		h = add_host(d, srv[i].target, srv[i].port);
		if (h == NULL)
			continue;
		h->preference = srv[i].priority;
		h->weight = srv[i].weight;
	}
	if (resolve_hosts(dns, d, err, errlen) != 0)
		goto fail;
done:
	free(srv);
	*out = d;
	return 0;
fail:
	free(srv);
	tlspool_dest_free(d);
	return -1;
}
