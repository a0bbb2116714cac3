/*
 * The peer-authentication policy (peerauth.h).
 *
 * Outline:
 *   1. No certificate: anonymous only where a server's flags allow it.
 *   2. The identity the certificate claims (x509id: dc= DN, else
 *      subjectAltName); the client's reference identity is the name it
 *      asked for, else that claim.
 *   3. The sources of [validation] sources (users) or domain_sources
 *      (domains), in order, until one authenticates (sources_check):
 *      a user by OPENPGPKEY (RFC 7929), SMIMEA (RFC 8162) or the LDAP
 *      directory of its domain (ldapcheck.h); a domain by TLSA (a
 *      server at _PORT._T.R, a client at the domain) or LDAP.
 *   4. Each RRset check goes through the validation cache first
 *      (rrset_check), then online (rrset_online: DNSSEC lookup, the DANE
 *      matcher); only results reached from secure DNS are stored.  The
 *      LDAP step too (ldap_check), with max_ttl for its lifetime.
 *   5. Every DNS failure fails closed; a proven absence of records fails
 *      unless a PKIX fallback is allowed (not available yet).
 *   6. The STARTTLS_NO_REMOTE_* flags.
 * Each failure carries its class (starttls_errclass()).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "runtime.h"
#include "dtls.h"
#include "ldapcheck.h"
#include "lib.h"
#include "peerauth.h"
#include "tlspool/dane.h"
#include "trace.h"

#define TP_MAX_CHAIN 16

/* What an online validation tells the cache. */
struct online {
	int cacheable; /* reached from secure DNS */
	uint32_t ttl;  /* the RRset's (smallest along a CNAME chain) */
	time_t rrsig;  /* earliest RRSIG expiration, 0 none */
	int usage;     /* of the record that matched, or -1 */
};

/* The class of a DNS verdict that fails closed. */
static starttls_class dns_class(tlspool_dns_verdict v)
{
	switch (v) {
	case TLSPOOL_DNS_TIMEOUT:
		return STARTTLS_ERR_DNS_TIMEOUT;
	case TLSPOOL_DNS_BOGUS:
		return STARTTLS_ERR_DNS_BOGUS;
	default:
		return STARTTLS_ERR_DNS_FAILURE;
	}
}

/* The class of a matcher's verdict other than AUTHENTICATED. */
static starttls_class dane_class(tlspool_dane_verdict v)
{
	switch (v) {
	case TLSPOOL_DANE_NO_RECORDS:
		return STARTTLS_ERR_NO_RECORDS;
	case TLSPOOL_DANE_INSECURE:
		return STARTTLS_ERR_INSECURE;
	case TLSPOOL_DANE_DNS_ERROR:
		return STARTTLS_ERR_DNS_FAILURE;
	default: /* NO_MATCH, NO_USABLE, PEER_ERROR */
		return STARTTLS_ERR_NO_MATCH;
	}
}

/* A lookup within what is left of the call's deadline. */
static int lookup(struct tp_peer_check *c, tlspool_dns *dns, const char *owner,
                  uint16_t type, tlspool_dns_answer **ans)
{
	char err[256];
	long long left = 0;

	if (c->deadline != 0) {
		left = c->deadline - tp_mono_ms();
		if (left <= 0) {
			tp_failc(ETIMEDOUT, STARTTLS_ERR_TIMEOUT,
			         "%s: no time left for the %s lookup "
			         "(handshake_timeout_ms)",
			         owner, tlspool_rr_type_name(type));
			return -1;
		}
	}
	if (tlspool_dns_lookup_within(dns, owner, type, (unsigned)left, ans,
	                              err, sizeof(err)) != 0) {
		tp_fail(errno, "%s", err);
		return -1;
	}
	if (*ans == NULL) { /* the lookup promises an answer on success */
		tp_failc(EIO, STARTTLS_ERR_INTERNAL, "%s: no answer", owner);
		return -1;
	}
	return 0;
}

/* What the answer and the matcher's result tell the cache (o), and the
 * call's verdict: 0, or -1 with the failure recorded. */
static int rrset_verdict(struct tp_peer_check *c, const tlspool_dns_answer *ans,
                         const tlspool_dane_result *res,
                         const tlspool_tlsa *tlsa, size_t n, struct online *o)
{
	o->ttl = ans->ttl;
	o->rrsig = ans->rrsig_expiration;
	o->usage = res->matched >= 0 && (size_t)res->matched < n
	                   ? tlsa[res->matched].usage
	                   : -1;
	/* Only secure DNS may be remembered (docs/architecture.md); among the
	 * failures only those that secure DNS proves. */
	o->cacheable = (ans->verdict == TLSPOOL_DNS_SECURE ||
	                ans->verdict == TLSPOOL_DNS_SECURE_NODATA ||
	                ans->verdict == TLSPOOL_DNS_SECURE_NXDOMAIN) &&
	               (res->verdict == TLSPOOL_DANE_AUTHENTICATED ||
	                res->verdict == TLSPOOL_DANE_NO_MATCH ||
	                res->verdict == TLSPOOL_DANE_NO_USABLE ||
	                res->verdict == TLSPOOL_DANE_NO_RECORDS);
	switch (res->verdict) {
	case TLSPOOL_DANE_AUTHENTICATED:
		return 0;
	case TLSPOOL_DANE_NO_RECORDS:
	case TLSPOOL_DANE_INSECURE:
	case TLSPOOL_DANE_NO_USABLE:
		/* tlspool.conf(5): pkix_fallback = yes only says that the
		 * fallback is missing; with no, naming it would suggest a
		 * setting that changes nothing */
		tp_failc(EKEYREJECTED, dane_class(res->verdict),
		         "%s: %s; no DANE authentication%s", ans->owner,
		         res->reason,
		         c->rt->cfg->pkix_fallback
		                 ? ", and [validation] pkix_fallback is not "
		                   "available in this version"
		                 : "");
		return -1;
	default:
		tp_failc(EKEYREJECTED, dane_class(res->verdict), "%s: %s",
		         ans->owner, res->reason);
		return -1;
	}
}

/* Fetch the TLSA (or SMIMEA) RRset at owner and run the matcher over the
 * chain. */
static int rrset_online(struct tp_peer_check *c, uint16_t type,
                        const char *owner, const char *refname,
                        const tlspool_span *chain, size_t nchain,
                        struct online *o)
{
	char err[256];
	tlspool_dns *dns = tp_runtime_resolver(c->rt, err, sizeof(err));
	tlspool_dns_answer *ans = NULL;
	tlspool_dane_result *res = NULL;
	tlspool_tlsa *tlsa = NULL;
	tlspool_dane_input in;
	size_t i, n = 0;
	int rv = -1;

	if (dns == NULL)
		return tp_failc(EINVAL, STARTTLS_ERR_CONFIG, "[dns]: %s", err);
	if (lookup(c, dns, owner, type, &ans) != 0)
		return -1;
	if (tlspool_dns_verdict_is_error(ans->verdict)) {
		tlspool_dns_answer_explain(ans, err, sizeof(err));
		tp_failc(ans->verdict == TLSPOOL_DNS_TIMEOUT ? ETIMEDOUT
		                                             : EKEYREJECTED,
		         dns_class(ans->verdict), "%s", err);
		goto out;
	}
	tlsa = calloc(ans->nrr ? ans->nrr : 1, sizeof(*tlsa));
	if (tlsa == NULL) {
		tp_fail(ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < ans->nrr; i++)
		if (tlspool_tlsa_parse(ans->rr[i].rdata, ans->rr[i].rdlen,
		                       &tlsa[n]) == 0)
			n++;
	memset(&in, 0, sizeof(in));
	in.chain = chain;
	in.nchain = nchain;
	in.tlsa = tlsa;
	in.ntlsa = n;
	in.dns = ans->verdict;
	in.dns_detail = ans->detail;
	in.names = &refname;
	in.nnames = 1;
	if (c->ref != NULL && c->ref->nnames > 0) {
		in.names = c->ref->names;
		in.nnames = c->ref->nnames;
	}
	if (c->ref != NULL && c->ref->smtp)
		in.flags |= TLSPOOL_DANE_NO_PKIX;
	in.now = time(NULL);
	in.trust = NULL; /* PKIX usages 0/1 need a store: see pkix_fallback */
	in.purpose = c->server ? TLSPOOL_DANE_PURPOSE_CLIENT
	                       : TLSPOOL_DANE_PURPOSE_SERVER;
	if (c->rt->cfg->dane_ee_name_checks)
		in.flags |= TLSPOOL_DANE_EE_NAME_CHECKS;
	if (tlspool_dane_match(&in, &res, err, sizeof(err)) != 0) {
		tp_fail(errno, "DANE: %s", err);
		goto out;
	}
	rv = rrset_verdict(c, ans, res, tlsa, n, o);
out:
	free(tlsa);
	tp_trace_keep(owner, ans, res);
	return rv;
}

/*
 * When an authentication expires: at the RRset's TTL, its earliest
 * RRSIG expiration, and (cache.c) max_ttl.  A record that constrains a
 * certificate rather than just the key (usages 0-2: dates are checked)
 * holds no longer than the chain's earliest notAfter.
 */
static time_t expiry_of(const struct online *o, const tlspool_span *chain,
                        size_t nchain, time_t now)
{
	time_t exp = now + (time_t)o->ttl;
	tlspool_x509_info x;
	size_t i;

	if (o->rrsig != 0 && o->rrsig < exp)
		exp = o->rrsig;
	for (i = 0; o->usage != TLSPOOL_DANE_USAGE_DANE_EE && i < nchain; i++) {
		if (tlspool_x509_describe(&chain[i], &x) != 0)
			return now; /* nothing to keep */
		if (x.not_after < exp)
			exp = x.not_after;
	}
	return exp;
}

/*
 * rrset_online() behind the validation cache, keyed by (refname, owner,
 * type, SHA2-256 of the end entity's SPKI).  A fresh positive entry
 * authenticates without DNS; a fresh negative one ([cache] negative_ttl)
 * fails without DNS; anything else goes online and stores its result.
 */
static int rrset_check(struct tp_peer_check *c, uint16_t type,
                       const char *owner, const char *refname,
                       const tlspool_span *chain, size_t nchain)
{
	struct online o = {0, 0, 0, -1};
	struct tp_cache_key key;
	tlspool_x509_info x;
	tp_cache *cache = tp_runtime_cache(c->rt);
	time_t now = time(NULL), exp = 0;
	struct tm tm;
	char when[32], keyowner[1400];
	size_t len;
	int r;

	if (nchain > 0 && tlspool_x509_describe(&chain[0], &x) == 0) {
		memcpy(c->spki, x.spki_sha256, 32);
		c->have_spki = 1;
	}
	/* A result reached with DANE-EE name checks is not the same as one
	 * reached without: processes that share a cache file may differ. */
	len = (size_t)snprintf(
	        keyowner, sizeof(keyowner), "%s%s", owner,
	        c->rt->cfg->dane_ee_name_checks ? " +dane-ee-names" : "");
	/* nor one reached with other reference identifiers (a destination's
	 * names, starttls_dane_ref) or the SMTP profile */
	for (size_t i = 0; c->ref != NULL && i < c->ref->nnames; i++)
		if (len < sizeof(keyowner))
			len += (size_t)snprintf(keyowner + len,
			                        sizeof(keyowner) - len, " %s",
			                        c->ref->names[i]);
	if (c->ref != NULL && c->ref->smtp && len < sizeof(keyowner))
		snprintf(keyowner + len, sizeof(keyowner) - len, " +smtp");
	memset(&key, 0, sizeof(key));
	key.kind = TP_CACHE_AUTHN;
	key.a = refname;
	key.b = keyowner;
	key.type = type;
	memcpy(key.digest, c->spki, 32);
	if (!c->have_spki)
		cache = NULL;
	if (cache != NULL && !(c->flags & STARTTLS_NO_CACHE_READ)) {
		r = tp_cache_get(cache, &key, now, &exp, c->cache_note,
		                 sizeof(c->cache_note));
		if (r == TP_CACHE_PASS) {
			tp_trace_cached(owner);
			return 0;
		}
		if (r == TP_CACHE_FAIL) {
			tp_trace_cached(owner);
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ",
			         gmtime_r(&exp, &tm));
			return tp_failc(
			        EKEYREJECTED, STARTTLS_ERR_NO_MATCH,
			        "%s: a cached failure, until %s "
			        "(STARTTLS_NO_CACHE_READ validates online)",
			        owner, when);
		}
	}
	r = rrset_online(c, type, owner, refname, chain, nchain, &o);
	if (cache == NULL || (c->flags & STARTTLS_NO_CACHE_WRITE) ||
	    !o.cacheable)
		return r;
	if (r == 0)
		tp_cache_put(cache, &key, TP_CACHE_PASS,
		             expiry_of(&o, chain, nchain, now), now,
		             c->cache_note, sizeof(c->cache_note));
	else if (errno == EKEYREJECTED && c->rt->cfg->negative_ttl > 0) {
		int e = errno;

		exp = now + (time_t)c->rt->cfg->negative_ttl;
		if (o.rrsig != 0 && o.rrsig < exp)
			exp = o.rrsig;
		tp_cache_put(cache, &key, TP_CACHE_FAIL, exp, now,
		             c->cache_note, sizeof(c->cache_note));
		errno = e;
	}
	return r;
}

/* The OPENPGPKEY RRset at owner through the OpenPGP matcher (RFC 7929):
 * 0 with *ans and *res, or -1 (a DNS timeout with *ans kept). */
static int openpgp_online(struct tp_peer_check *c, tlspool_dns *dns,
                          const char *owner, const char *user,
                          tlspool_dns_answer **ans,
                          tlspool_openpgp_result **res)
{
	tlspool_openpgp_input in;
	tlspool_span *recs;
	char err[256];
	size_t i;
	int rv;

	if (lookup(c, dns, owner, TLSPOOL_RR_OPENPGPKEY, ans) != 0)
		return -1;
	if ((*ans)->verdict == TLSPOOL_DNS_TIMEOUT) {
		tlspool_dns_answer_explain(*ans, err, sizeof(err));
		tp_failc(ETIMEDOUT, STARTTLS_ERR_DNS_TIMEOUT, "%s", err);
		return -1;
	}
	recs = calloc((*ans)->nrr ? (*ans)->nrr : 1, sizeof(*recs));
	if (recs == NULL) {
		tp_fail(ENOMEM, "out of memory");
		return -1;
	}
	for (i = 0; i < (*ans)->nrr; i++) {
		recs[i].data = (*ans)->rr[i].rdata;
		recs[i].len = (*ans)->rr[i].rdlen;
	}
	memset(&in, 0, sizeof(in));
	in.chain = c->chain;
	in.nchain = c->nchain;
	in.records = recs;
	in.nrecords = (*ans)->nrr;
	in.dns = (*ans)->verdict;
	in.dns_detail = (*ans)->detail;
	in.identity = user;
	in.now = time(NULL);
	rv = tlspool_openpgp_match(&in, res, err, sizeof(err));
	free(recs);
	if (rv != 0) {
		tp_fail(errno, "OPENPGPKEY: %s", err);
		return -1;
	}
	if (*res == NULL) { /* the matcher promises a result on success */
		tp_failc(EIO, STARTTLS_ERR_INTERNAL, "OPENPGPKEY: no result");
		return -1;
	}
	return 0;
}

/* The OPENPGPKEY source of a user: 0 authenticated, else -1 with the
 * matcher's reason as the detail.  *keep gets the lookup, which the trace
 * shows when it decided (sources_check()); the matcher's result goes to
 * the trace here. */
static int openpgp_source(struct tp_peer_check *c, const char *user,
                          char *owner, size_t ownerlen,
                          tlspool_dns_answer **keep)
{
	char err[256];
	tlspool_dns *dns = tp_runtime_resolver(c->rt, err, sizeof(err));
	tlspool_openpgp_result *res = NULL;
	int rv = -1;

	if (dns == NULL)
		return tp_failc(EINVAL, STARTTLS_ERR_CONFIG, "[dns]: %s", err);
	if (tlspool_user_owner(owner, ownerlen, TLSPOOL_RR_OPENPGPKEY, user) <
	    0)
		return tp_failc(EKEYREJECTED, STARTTLS_ERR_NO_IDENTITY,
		                "%s: no OPENPGPKEY owner name", user);
	if (openpgp_online(c, dns, owner, user, keep, &res) != 0)
		goto out;
	if (res->verdict == TLSPOOL_DANE_AUTHENTICATED)
		rv = 0;
	else if (res->verdict == TLSPOOL_DANE_DNS_ERROR)
		tp_failc(EKEYREJECTED, dns_class((*keep)->verdict), "%s: %s",
		         (*keep)->owner, res->reason);
	else /* not proven by OPENPGPKEY: another source may prove it */
		tp_failc(EKEYREJECTED, dane_class(res->verdict), "%s",
		         res->reason);
out:
	if (res != NULL)
		tp_trace_keep_openpgp(res);
	return rv;
}

/*
 * The LDAP source (ldapcheck.h) behind the validation cache, keyed by
 * (identity, "DIRECTORY/BASE?FILTER", SRV, SHA2-256 of the peer's SPKI):
 * an LDAP answer has no TTL, so an entry holds until max_ttl or the
 * SRV's and TLSA's TTLs and signatures, whichever comes first; only
 * answers of an authenticated directory (or a secure absence of one) are
 * stored.  The step goes to the trace.
 */
static int ldap_check(struct tp_peer_check *c, const char *id,
                      const tlspool_span *chain, size_t nchain)
{
	struct tp_ldap_query q = {c->rt, id, chain, nchain, c->deadline};
	struct tp_ldap_outcome o;
	starttls_ldap_step *step = NULL;
	struct tp_cache_key key;
	tlspool_x509_info x;
	tp_cache *cache = tp_runtime_cache(c->rt);
	time_t now = time(NULL), exp = 0;
	char owner[1024], when[32];
	struct tm tm;
	int r, e;

	if (nchain > 0 && tlspool_x509_describe(&chain[0], &x) == 0) {
		memcpy(c->spki, x.spki_sha256, 32);
		c->have_spki = 1;
	}
	memset(&key, 0, sizeof(key));
	key.kind = TP_CACHE_AUTHN;
	key.a = id;
	key.b = owner;
	key.type = TLSPOOL_RR_SRV;
	memcpy(key.digest, c->spki, 32);
	if (!c->have_spki ||
	    tp_ldap_cache_owner(c->rt->cfg, id, owner, sizeof(owner)) < 0)
		cache = NULL;
	if (cache != NULL && !(c->flags & STARTTLS_NO_CACHE_READ)) {
		r = tp_cache_get(cache, &key, now, &exp, c->cache_note,
		                 sizeof(c->cache_note));
		if (r == TP_CACHE_PASS) {
			tp_trace_keep_ldap(tp_ldap_step_cached(
			        id, STARTTLS_LDAP_MATCHED,
			        "matched, from the validation cache"));
			return 0;
		}
		if (r == TP_CACHE_FAIL) {
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ",
			         gmtime_r(&exp, &tm));
			tp_trace_keep_ldap(tp_ldap_step_cached(
			        id, STARTTLS_LDAP_DIFFERENT,
			        "a cached failure (STARTTLS_NO_CACHE_READ asks "
			        "the directory)"));
			return tp_failc(
			        EKEYREJECTED, STARTTLS_ERR_NO_MATCH,
			        "%s: a cached failure, until %s "
			        "(STARTTLS_NO_CACHE_READ validates online)",
			        owner, when);
		}
	}
	r = tp_ldap_check(&q, &step, &o);
	e = errno;
	tp_trace_keep_ldap(step);
	if (cache != NULL && !(c->flags & STARTTLS_NO_CACHE_WRITE) &&
	    o.cacheable) {
		exp = o.expiry != 0 ? o.expiry
		                    : now + (time_t)c->rt->cfg->max_ttl;
		if (r == 0)
			tp_cache_put(cache, &key, TP_CACHE_PASS, exp, now,
			             c->cache_note, sizeof(c->cache_note));
		else if (e == EKEYREJECTED && c->rt->cfg->negative_ttl > 0) {
			if (now + (time_t)c->rt->cfg->negative_ttl < exp)
				exp = now + (time_t)c->rt->cfg->negative_ttl;
			tp_cache_put(cache, &key, TP_CACHE_FAIL, exp, now,
			             c->cache_note, sizeof(c->cache_note));
		}
	}
	errno = e;
	return r;
}

/* The TLSA source of a domain: a server seen by a client at _PORT._T.R
 * (RFC 6698 section 3), a client at its domain itself (the DANE client
 * identity extension is not sent yet: docs/architecture.md). */
static int tlsa_source(struct tp_peer_check *c, const char *ref,
                       const tlspool_span *chain, size_t nchain)
{
	char owner[320];

	if (c->server)
		return rrset_check(c, TLSPOOL_RR_TLSA, ref, ref, chain, nchain);
	if (c->port == 0)
		return tp_fail(EINVAL, "fd is not an IPv4 or IPv6 "
		                       "connection: no port for TLSA");
	if (tlspool_tlsa_owner(owner, sizeof(owner), c->port, c->transport,
	                       ref) < 0)
		return tp_failc(EKEYREJECTED, STARTTLS_ERR_NO_IDENTITY,
		                "%s: no TLSA owner name", ref);
	return rrset_check(c, TLSPOOL_RR_TLSA, owner, ref, chain, nchain);
}

/* A failure that ends the walk through the sources: all but a rejection
 * that secure data proved (no match, no records, an unsigned zone),
 * which leaves the next source to try. */
static int hard_failure(int err)
{
	starttls_class k = starttls_errclass();

	return err != EKEYREJECTED ||
	       (k != STARTTLS_ERR_NO_MATCH && k != STARTTLS_ERR_NO_RECORDS &&
	        k != STARTTLS_ERR_INSECURE);
}

static const char *source_name(int s)
{
	switch (s) {
	case TP_SRC_OPENPGPKEY:
		return "OPENPGPKEY";
	case TP_SRC_SMIMEA:
		return "SMIMEA";
	case TP_SRC_TLSA:
		return "TLSA";
	default:
		return "LDAP";
	}
}

/*
 * The peer id by the sources of [validation] sources (a user U@D:
 * OPENPGPKEY at the RFC 7929 owner name, SMIMEA at the RFC 8162 one, the
 * LDAP directory of D) or domain_sources (a domain: TLSA, LDAP), in
 * their order; one suffices.  A failure that secure data did not prove
 * (a DNS error, a timeout, a directory that cannot be reached or
 * authenticated) ends the walk and fails closed.  With more than one
 * source tried, the detail names each and its reason, and the class is
 * that of the failure that ended the walk, else NO_MATCH when a source
 * had records of another key, else the last one's.  The trace keeps the
 * DNS lookup that decided: the one that authenticated, else the
 * OPENPGPKEY lookup when it had records, else the last.
 */
static int sources_check(struct tp_peer_check *c, const char *id, int user,
                         const tlspool_span *chain, size_t nchain)
{
	const struct tp_config *cfg = c->rt->cfg;
	const unsigned char *list = user ? cfg->sources : cfg->domain_sources;
	size_t n = user ? cfg->nsources : cfg->ndomain_sources, i, tried = 0;
	tlspool_dns_answer *pgp = NULL;
	starttls_class cls = STARTTLS_OK, k;
	char owner[320] = "", msg[512];
	size_t len = 0;
	int r = -1, e = EKEYREJECTED, hard = 0, last = 0;

	msg[0] = '\0';
	for (i = 0; i < n && r != 0; i++) {
		last = list[i];
		switch (last) {
		case TP_SRC_OPENPGPKEY:
			r = openpgp_source(c, id, owner, sizeof(owner), &pgp);
			break;
		case TP_SRC_SMIMEA: {
			char smimea[320];

			if (tlspool_user_owner(smimea, sizeof(smimea),
			                       TLSPOOL_RR_SMIMEA, id) < 0)
				r = tp_failc(EKEYREJECTED,
				             STARTTLS_ERR_NO_IDENTITY,
				             "%s: no SMIMEA owner name", id);
			else
				r = rrset_check(c, TLSPOOL_RR_SMIMEA, smimea,
				                id, chain, nchain);
			break;
		}
		case TP_SRC_TLSA:
			r = tlsa_source(c, id, chain, nchain);
			break;
		default:
			r = ldap_check(c, id, chain, nchain);
		}
		tried++;
		if (r == 0)
			break;
		e = errno;
		k = starttls_errclass();
		hard = hard_failure(e);
		if (!hard && (cls != STARTTLS_ERR_NO_MATCH))
			cls = k;
		if (hard)
			cls = k;
		if (len < sizeof(msg))
			len += (size_t)snprintf(msg + len, sizeof(msg) - len,
			                        "%s%s: %s", len ? "; " : "",
			                        source_name(last),
			                        starttls_errstr());
		if (hard)
			break;
	}
	/* the OPENPGPKEY records, if any, are what the peer failed */
	if (pgp != NULL &&
	    (last == TP_SRC_OPENPGPKEY || (r != 0 && pgp->nrr > 0)))
		tp_trace_keep(owner, pgp, NULL);
	else
		tlspool_dns_answer_free(pgp);
	if (r == 0)
		return 0;
	if (tried > 1 || last == TP_SRC_LDAP)
		tp_failc(e, cls, "%s: %s", id, msg);
	else
		errno = e;
	return -1;
}

/* The server seen by a client: its reference identity R is the name
 * asked for, else the name the certificate claims (RFC 7671 section 5.1
 * leaves the choice to the client). */
static int server_check(struct tp_peer_check *c, const tlspool_span *chain,
                        size_t ncerts)
{
	const char *ref = c->sniname != NULL ? c->sniname : c->peer;

	if (ref[0] == '\0')
		return tp_failc(EKEYREJECTED, STARTTLS_ERR_NO_IDENTITY,
		                "the server's certificate names no "
		                "identity and no sniname was given");
	if (sources_check(c, ref, strchr(ref, '@') != NULL, chain, ncerts) != 0)
		return -1;
	if (ref != c->peer)
		snprintf(c->peer, sizeof(c->peer), "%s", ref);
	return 0;
}

/* A server found through the DNS (starttls_dane_ref): TLSA at the base
 * domain that the caller chose (RFC 7672 section 2.2.3, RFC 7673 section
 * 3), the reference identifiers it gives; the identity reported is its
 * choice too (the MX host, as Postfix logs it). */
static int dest_check(struct tp_peer_check *c, const tlspool_span *chain,
                      size_t ncerts)
{
	const starttls_dane_ref *ref = c->ref;
	unsigned port = ref->port != 0 ? ref->port : c->port;
	char owner[320];

	if (port == 0)
		return tp_fail(EINVAL, "fd is not an IPv4 or IPv6 "
		                       "connection: no port for TLSA");
	if (tlspool_tlsa_owner(owner, sizeof(owner), port, "tcp", ref->base) <
	    0)
		return tp_failc(EKEYREJECTED, STARTTLS_ERR_NO_IDENTITY,
		                "%s: no TLSA owner name", ref->base);
	if (rrset_check(c, TLSPOOL_RR_TLSA, owner, ref->base, chain, ncerts) !=
	    0)
		return -1;
	snprintf(c->peer, sizeof(c->peer), "%s",
	         ref->peer != NULL ? ref->peer : ref->base);
	return 0;
}

/* The client seen by a server: a user or a domain by its sources. */
static int client_check(struct tp_peer_check *c, const tlspool_span *chain,
                        size_t ncerts)
{
	if (c->peer[0] == '\0')
		return tp_failc(EKEYREJECTED, STARTTLS_ERR_NO_IDENTITY,
		                "the client's certificate names no identity "
		                "(no dc= DN, no subjectAltName)");
	return sources_check(c, c->peer, strchr(c->peer, '@') != NULL, chain,
	                     ncerts);
}

static int check_identity_kind(struct tp_peer_check *c)
{
	int user = strchr(c->peer, '@') != NULL;

	if (c->peer[0] == '\0')
		return 0;
	if (user && (c->flags & STARTTLS_NO_REMOTE_USER))
		return tp_failc(EPERM, STARTTLS_ERR_REFUSED,
		                "%s: user peers refused by "
		                "STARTTLS_NO_REMOTE_USER",
		                c->peer);
	if (!user && (c->flags & STARTTLS_NO_REMOTE_DOMAIN))
		return tp_failc(EPERM, STARTTLS_ERR_REFUSED,
		                "%s: domain peers refused by "
		                "STARTTLS_NO_REMOTE_DOMAIN",
		                c->peer);
	return 0;
}

int tp_peer_authenticate(struct tp_peer_check *c)
{
	size_t n = c->nchain;

	c->peer[0] = '\0';
	c->have_spki = 0;
	if (n == 0) {
		if (c->server && (c->flags & (STARTTLS_PEERCERT_OPTIONAL |
		                              STARTTLS_PEERCERT_NONE)))
			return 0; /* anonymous, as the caller chose */
		return tp_failc(EKEYREJECTED, STARTTLS_ERR_NO_PEER_CERT,
		                "the %s presented no certificate",
		                c->server ? "client" : "server");
	}
	if (n > TP_MAX_CHAIN)
		n = TP_MAX_CHAIN;
	tp_trace_chain(c->chain, n);
	if (tlspool_x509_identity(&c->chain[0], c->peer, sizeof(c->peer)) < 0)
		c->peer[0] = '\0';
	if ((c->server        ? client_check(c, c->chain, n)
	     : c->ref != NULL ? dest_check(c, c->chain, n)
	                      : server_check(c, c->chain, n)) != 0)
		return -1;
	return check_identity_kind(c);
}
