/*
 * The LDAP step (ldapcheck.h).
 *
 * Outline of tp_ldap_check():
 *   1. The directory: [ldap] server, else the SRV RRset at
 *      _ldap._tcp.DOMAIN, which must be secure (RFC 2782 order).
 *   2. For each target: TLSA at _PORT._tcp.HOST must be secure and hold
 *      records before anything is sent; the address from A/AAAA; a TCP
 *      connection made here (bounded by the deadline) and handed to
 *      libldap (ldap_init_fd()).
 *   3. StartTLS (RFC 4511 section 4.14) or ldaps, libldap told to verify
 *      nothing (LDAP_OPT_X_TLS_REQUIRE_CERT never, no CA file): the
 *      directory's certificate (LDAP_OPT_X_TLS_PEERCERT) goes through
 *      tlspool's DANE matcher instead; no certificate, no match, no
 *      search.
 *   4. One subtree search under the base for the filter, at most two
 *      entries asked: exactly one must come back.
 *   5. Its userCertificate;binary values against the peer's certificate
 *      (equal DER, valid now), its pgpKey values (binary or armored)
 *      through the OPENPGPKEY matcher (RFC 7929 rules: key material and a
 *      User ID naming the identity).
 *
 * Time: libldap's own connect and its non-blocking TLS handshake loop are
 * not used (LDAP_OPT_NETWORK_TIMEOUT makes libldap 2.5 spin in that loop
 * against a silent ldaps server); the connection is made here, every
 * synchronous operation gets LDAP_OPT_TIMEOUT from what is left, and a
 * watchdog thread shuts the socket down at the deadline, which ends any
 * read or write libldap is blocked in.  SIGPIPE is blocked in the
 * calling thread meanwhile (libldap writes with write(2)).
 *
 * Files (ldap_int.h is shared by them): this one holds the step and what
 * it owns, failures, 1. the directory, the comparison (5.) and the
 * public functions; ldap_text.c the pure parts (DNs, filters, base DNs,
 * pgpKey values); ldap_conn.c 2. the connection, the watchdog and
 * SIGPIPE; ldap_session.c 3-5. the session (options, the directory
 * authenticated by DANE, the search, its entry, one target tried).
 */
#include <errno.h>
#include <ldap.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "dtls.h"
#include "ldap_int.h"
#include "runtime.h"

const char *starttls_ldap_verdict_name(starttls_ldap_verdict v)
{
	static const char *const names[] = {
	        [STARTTLS_LDAP_UNCHECKED] = "unchecked",
	        [STARTTLS_LDAP_MATCHED] = "matched",
	        [STARTTLS_LDAP_DIFFERENT] = "different",
	        [STARTTLS_LDAP_NO_ENTRY] = "no-entry",
	        [STARTTLS_LDAP_NO_DIRECTORY] = "no-directory",
	        [STARTTLS_LDAP_UNREACHABLE] = "unreachable",
	        [STARTTLS_LDAP_NOT_AUTHENTICATED] = "not-authenticated",
	        [STARTTLS_LDAP_READ] = "read",
	};

	if ((unsigned)v >= sizeof(names) / sizeof(names[0]))
		return "unknown";
	return names[v];
}

void starttls_ldap_step_free(starttls_ldap_step *step)
{
	struct step_store *st = (struct step_store *)step;
	size_t i;

	if (st == NULL)
		return;
	tlspool_dns_answer_free(st->srv);
	tlspool_dns_answer_free(st->tlsa);
	tlspool_dane_result_free(st->dane);
	tlspool_openpgp_result_free(st->openpgp);
	for (i = 0; i < st->pub.nvalues; i++)
		free((void *)st->values[i].data.data);
	free(st->values);
	free(st);
}

static struct step_store *step_new(const char *identity)
{
	struct step_store *st = calloc(1, sizeof(*st));

	if (st != NULL)
		snprintf(st->pub.identity, sizeof(st->pub.identity), "%s",
		         identity);
	return st;
}

starttls_ldap_step *tp_ldap_step_cached(const char *identity,
                                        starttls_ldap_verdict v,
                                        const char *reason)
{
	struct step_store *st = step_new(identity);

	if (st == NULL)
		return NULL;
	st->pub.verdict = v;
	st->pub.from_cache = 1;
	snprintf(st->pub.reason, sizeof(st->pub.reason), "%s", reason);
	return &st->pub;
}

/* --- failures ------------------------------------------------------------- */

/* The step's verdict and reason, and the thread's failure (the reason is
 * the detail). */
int tp_ldap_fail(struct run *r, starttls_ldap_verdict v, int err,
                 starttls_class cls, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->st->pub.reason, sizeof(r->st->pub.reason), fmt, ap);
	va_end(ap);
	r->st->pub.verdict = v;
	tp_failc(err, cls, "%s", r->st->pub.reason);
	return -1;
}

long long tp_ldap_left(const struct run *r)
{
	return r->deadline - tp_mono_ms();
}

/* (tp_ldap_fail() is variadic: the static analyzer does not follow it, so the
 * callers that it must follow return -1 themselves.) */
int tp_ldap_time_up(struct run *r, const char *what)
{
	if (r->by_call)
		tp_ldap_fail(r, STARTTLS_LDAP_UNREACHABLE, ETIMEDOUT,
		             STARTTLS_ERR_TIMEOUT,
		             "%s: no time left (handshake_timeout_ms)", what);
	else
		tp_ldap_fail(r, STARTTLS_LDAP_UNREACHABLE, ETIMEDOUT,
		             STARTTLS_ERR_DIRECTORY_UNREACHABLE,
		             "%s: no answer within [ldap] timeout_ms (%u ms)",
		             what, r->lc->timeout_ms);
	return -1;
}

static starttls_class dns_cls(tlspool_dns_verdict v)
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

void tp_ldap_shorten(struct run *r, const tlspool_dns_answer *a)
{
	time_t now = time(NULL), e = now + (time_t)a->ttl;

	if (a->rrsig_expiration != 0 && a->rrsig_expiration < e)
		e = a->rrsig_expiration;
	if (r->o->expiry == 0 || e < r->o->expiry)
		r->o->expiry = e;
}

/* A lookup within what is left; *ans set on 0. */
int tp_ldap_dns_lookup(struct run *r, const char *owner, uint16_t type,
                       tlspool_dns_answer **ans)
{
	char err[256];
	long long ms = tp_ldap_left(r);

	*ans = NULL;
	if (ms <= 0)
		return tp_ldap_time_up(r, owner);
	if (tlspool_dns_lookup_within(r->dns, owner, type, (unsigned)ms, ans,
	                              err, sizeof(err)) != 0) {
		int e = errno;

		tp_ldap_fail(r, STARTTLS_LDAP_NOT_AUTHENTICATED, e,
		             e == ENOMEM ? STARTTLS_ERR_RESOURCES
		                         : STARTTLS_ERR_ARGUMENT,
		             "%s", err);
		return -1;
	}
	if (*ans == NULL) { /* the lookup promises an answer on success */
		tp_ldap_fail(r, STARTTLS_LDAP_NOT_AUTHENTICATED, EIO,
		             STARTTLS_ERR_INTERNAL, "%s: no answer", owner);
		return -1;
	}
	return 0;
}

/* A DNS answer that fails closed: its verdict's class and errno. */
int tp_ldap_dns_failed(struct run *r, const tlspool_dns_answer *a,
                       const char *what)
{
	char why[256];

	tlspool_dns_answer_explain(a, why, sizeof(why));
	return tp_ldap_fail(r, STARTTLS_LDAP_NOT_AUTHENTICATED,
	                    a->verdict == TLSPOOL_DNS_TIMEOUT ? ETIMEDOUT
	                                                      : EKEYREJECTED,
	                    dns_cls(a->verdict), "%s: %s", why, what);
}

/* --- 1. the directory ----------------------------------------------------- */

static int find_directory(struct run *r, tlspool_srv *t, size_t *nt)
{
	tlspool_dns_answer *a;
	char owner[300];
	size_t i, n = 0, root = 0;

	*nt = 0;
	if (r->lc->host[0] != '\0') {
		memset(t, 0, sizeof(*t));
		snprintf(t->target, sizeof(t->target), "%.253s.", r->lc->host);
		t->port = (uint16_t)r->lc->port;
		*nt = 1;
		return 0;
	}
	snprintf(owner, sizeof(owner), "_ldap._tcp.%s", r->domain);
	if (tp_ldap_dns_lookup(r, owner, TLSPOOL_RR_SRV, &a) != 0)
		return -1;
	r->st->srv = a;
	r->st->pub.srv = a;
	if (tlspool_dns_verdict_is_error(a->verdict))
		return tp_ldap_dns_failed(r, a,
		                          "the directory cannot be found");
	if (a->verdict == TLSPOOL_DNS_INSECURE)
		return tp_ldap_fail(
		        r, STARTTLS_LDAP_NOT_AUTHENTICATED, EKEYREJECTED,
		        STARTTLS_ERR_INSECURE,
		        "%s: the SRV RRset is insecure (the zone is not "
		        "signed): it cannot name the directory",
		        a->owner);
	tp_ldap_shorten(r, a);
	for (i = 0; i < a->nrr && n < MAX_TARGETS; i++) {
		if (tlspool_srv_parse(a->rr[i].rdata, a->rr[i].rdlen, &t[n]) !=
		    0)
			continue;
		if (strcmp(t[n].target, ".") == 0)
			root++;
		else
			n++;
	}
	if (a->nrr == 0 || (n == 0 && root > 0)) {
		r->o->cacheable = 1;
		return tp_ldap_fail(
		        r, STARTTLS_LDAP_NO_DIRECTORY, EKEYREJECTED,
		        STARTTLS_ERR_NO_RECORDS,
		        a->nrr == 0 ? "%s: no SRV records (proven by "
		                      "DNSSEC): the domain names no "
		                      "directory"
		                    : "%s: the SRV target is \".\": the "
		                      "domain has no directory (RFC 2782)",
		        a->owner);
	}
	if (n == 0)
		return tp_ldap_fail(
		        r, STARTTLS_LDAP_NOT_AUTHENTICATED, EKEYREJECTED,
		        STARTTLS_ERR_DIRECTORY_UNAUTHENTICATED,
		        "%s: no SRV record is well-formed", a->owner);
	tlspool_srv_order(t, n, NULL, NULL);
	*nt = n;
	return 0;
}

/* --- the comparison ------------------------------------------------------- */

/* What the values of the entry came to. */
struct tally {
	tlspool_span recs[MAX_VALUES]; /* the well-formed pgpKey values */
	size_t map[MAX_VALUES];        /* their index among the values */
	size_t nrec, ncert, npgp;
	const char *how; /* the attribute that matched, or NULL */
	time_t now;
};

/* The userCertificate;binary values against the peer's certificate; the
 * pgpKey values set aside for the OpenPGP matcher. */
static void compare_certs(struct run *r, struct tally *t)
{
	struct step_store *st = r->st;
	const tlspool_span *peer = &r->q->chain[0];
	size_t i;

	for (i = 0; i < st->pub.nvalues; i++) {
		starttls_ldap_value *v = &st->values[i];
		tlspool_x509_info x;

		if (v->pgp) {
			t->npgp++;
			if (v->reason[0] == '\0') {
				t->recs[t->nrec].data = v->data.data;
				t->recs[t->nrec].len = v->data.len;
				t->map[t->nrec++] = i;
			}
			continue;
		}
		t->ncert++;
		if (v->data.len != peer->len ||
		    memcmp(v->data.data, peer->data, peer->len) != 0) {
			snprintf(v->reason, sizeof(v->reason),
			         "another certificate");
			continue;
		}
		if (tlspool_x509_describe(&v->data, &x) != 0 ||
		    x.not_before > t->now || x.not_after < t->now) {
			snprintf(v->reason, sizeof(v->reason),
			         "the peer's certificate, but not valid now");
			continue;
		}
		v->matched = 1;
		snprintf(v->reason, sizeof(v->reason),
		         "the certificate the peer presented");
		if (t->how == NULL)
			t->how = "userCertificate;binary";
		if (r->o->expiry == 0 || x.not_after < r->o->expiry)
			r->o->expiry = x.not_after;
	}
}

/* The pgpKey values through the OPENPGPKEY matcher: 0 or -1. */
static int compare_pgp(struct run *r, struct tally *t)
{
	struct step_store *st = r->st;
	tlspool_openpgp_input in;
	char err[256];
	size_t i;

	memset(&in, 0, sizeof(in));
	in.chain = r->q->chain;
	in.nchain = r->q->nchain;
	in.records = t->recs;
	in.nrecords = t->nrec;
	in.dns = TLSPOOL_DNS_SECURE; /* a directory DANE proved */
	in.dns_detail = "the directory, authenticated by DANE";
	in.identity = st->pub.identity;
	in.now = t->now;
	if (tlspool_openpgp_match(&in, &st->openpgp, err, sizeof(err)) != 0)
		return tp_fail(errno, "pgpKey: %s", err);
	st->pub.openpgp = st->openpgp;
	for (i = 0; i < st->openpgp->nsteps; i++) {
		const tlspool_openpgp_step *s = &st->openpgp->steps[i];

		if (s->index >= t->nrec)
			continue;
		st->values[t->map[s->index]].matched = s->matched;
		snprintf(st->values[t->map[s->index]].reason,
		         sizeof(st->values[0].reason), "%s", s->reason);
	}
	if (st->openpgp->verdict == TLSPOOL_DANE_AUTHENTICATED)
		t->how = "pgpKey";
	return 0;
}

static int compare(struct run *r)
{
	struct step_store *st = r->st;
	struct tally t;

	memset(&t, 0, sizeof(t));
	t.now = time(NULL);
	compare_certs(r, &t);
	if (t.how == NULL && t.nrec > 0 && compare_pgp(r, &t) != 0)
		return -1;
	r->o->cacheable = 1;
	if (t.how != NULL) {
		st->pub.verdict = STARTTLS_LDAP_MATCHED;
		snprintf(st->pub.reason, sizeof(st->pub.reason),
		         "%.100s: %s of \"%.200s\" is what the peer presented",
		         st->pub.host, t.how, st->pub.dn);
		return 0;
	}
	if (st->pub.nvalues == 0)
		return tp_ldap_fail(
		        r, STARTTLS_LDAP_NO_ENTRY, EKEYREJECTED,
		        STARTTLS_ERR_NO_RECORDS,
		        "%s: \"%s\" holds no userCertificate;binary "
		        "or pgpKey",
		        st->pub.host, st->pub.dn);
	return tp_ldap_fail(r, STARTTLS_LDAP_DIFFERENT, EKEYREJECTED,
	                    STARTTLS_ERR_NO_MATCH,
	                    "%s: \"%s\" holds %zu certificate(s) and %zu "
	                    "OpenPGP key(s), none of them the peer's%s%s",
	                    st->pub.host, st->pub.dn, t.ncert, t.npgp,
	                    st->openpgp ? ": pgpKey: " : "",
	                    st->openpgp ? st->openpgp->reason : "");
}

/* --- the step ------------------------------------------------------------- */

static void ldap_once_init(void)
{
	int v = 0;

	/* libldap reads its global options once; make that happen on one
	 * thread */
	ldap_get_option(NULL, LDAP_OPT_PROTOCOL_VERSION, &v);
}

int tp_ldap_cache_owner(const struct tp_config *cfg, const char *identity,
                        char *buf, size_t len)
{
	const struct tp_ldap_conf *lc = &cfg->ldap;
	char local[256], domain[256], base[256], filter[600];
	int n;

	if (tp_ldap_split(identity, local, sizeof(local), domain,
	                  sizeof(domain)) != 0 ||
	    tp_ldap_filter(filter, sizeof(filter),
	                   local[0] ? lc->filter : lc->domain_filter,
	                   identity) < 0)
		return -1;
	if (lc->base[0] != '\0')
		snprintf(base, sizeof(base), "%s", lc->base);
	else if (tp_ldap_base(base, sizeof(base), domain) < 0)
		return -1;
	if (lc->host[0] != '\0')
		n = snprintf(buf, len, "%s://%s:%u/%s?%s",
		             lc->ldaps ? "ldaps" : "ldap", lc->host, lc->port,
		             base, filter);
	else
		n = snprintf(buf, len, "_ldap._tcp.%s./%s?%s", domain, base,
		             filter);
	if (n < 0 || (size_t)n >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return n;
}

int tp_ldap_check(const struct tp_ldap_query *q, starttls_ldap_step **step,
                  struct tp_ldap_outcome *o)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	struct run r;
	tlspool_srv targets[MAX_TARGETS];
	char local[256], err[256];
	size_t nt = 0, i;
	long long now = tp_mono_ms();
	int rv = -1;

	memset(o, 0, sizeof(*o));
	*step = NULL;
	memset(&r, 0, sizeof(r));
	r.q = q;
	r.o = o;
	r.lc = &q->rt->cfg->ldap;
	r.st = step_new(q->identity);
	if (r.st == NULL)
		return tp_fail(ENOMEM, "out of memory");
	*step = &r.st->pub;
	pthread_once(&once, ldap_once_init);
	r.deadline = now + r.lc->timeout_ms;
	if (q->deadline != 0 && q->deadline <= r.deadline) {
		r.deadline = q->deadline;
		r.by_call = 1;
	}
	if (tp_ldap_split(q->identity, local, sizeof(local), r.domain,
	                  sizeof(r.domain)) != 0 ||
	    tp_ldap_filter(r.st->pub.filter, sizeof(r.st->pub.filter),
	                   local[0] ? r.lc->filter : r.lc->domain_filter,
	                   q->identity) < 0)
		return tp_ldap_fail(&r, STARTTLS_LDAP_NO_ENTRY, EKEYREJECTED,
		                    STARTTLS_ERR_NO_IDENTITY,
		                    "%s: no LDAP filter for this identity",
		                    q->identity);
	if (r.lc->base[0] != '\0')
		snprintf(r.st->pub.base, sizeof(r.st->pub.base), "%s",
		         r.lc->base);
	else if (tp_ldap_base(r.st->pub.base, sizeof(r.st->pub.base),
	                      r.domain) < 0)
		return tp_ldap_fail(&r, STARTTLS_LDAP_NO_ENTRY, EKEYREJECTED,
		                    STARTTLS_ERR_NO_IDENTITY,
		                    "%s: no base DN for this domain", r.domain);
	r.dns = tp_runtime_resolver(q->rt, err, sizeof(err));
	if (r.dns == NULL)
		return tp_ldap_fail(&r, STARTTLS_LDAP_NOT_AUTHENTICATED, EINVAL,
		                    STARTTLS_ERR_CONFIG, "[dns]: %s", err);
	if (find_directory(&r, targets, &nt) != 0)
		return -1;
	/* RFC 2782: the targets in order until one answers; an answer of
	 * an authenticated directory (no entry) is the answer */
	for (i = 0; i < nt; i++) {
		o->cacheable = 0;
		rv = tp_ldap_attempt(&r, &targets[i]);
		if (rv == 0 || errno == ENOMEM || tp_ldap_left(&r) <= 0 ||
		    r.st->pub.verdict == STARTTLS_LDAP_NO_ENTRY)
			break;
	}
	if (rv != 0)
		return -1;
	if (q->chain == NULL || q->nchain == 0) {
		r.st->pub.verdict = STARTTLS_LDAP_READ;
		snprintf(r.st->pub.reason, sizeof(r.st->pub.reason),
		         "%.100s: \"%.200s\" read: %zu value(s)",
		         r.st->pub.host, r.st->pub.dn, r.st->pub.nvalues);
		o->cacheable = 0;
		return 0;
	}
	return compare(&r);
}

starttls_ldap_step *starttls_ldap_lookup(starttls_ctx *ctx,
                                         const char *identity)
{
	struct tp_ldap_query q;
	struct tp_ldap_outcome o;
	starttls_ldap_step *step = NULL;
	char err[512];
	int e;

	tp_clear_error();
	if (identity == NULL || tp_check_identity(identity) != 0) {
		tp_fail(EINVAL, "%s: not a domain or user@domain identity",
		        identity ? identity : "(null)");
		return NULL;
	}
	memset(&q, 0, sizeof(q));
	q.identity = identity;
	q.rt = tp_ctx_runtime(ctx);
	if (q.rt != NULL)
		tp_runtime_ref(q.rt);
	else
		q.rt = tp_runtime_acquire(err, sizeof(err));
	if (q.rt == NULL) {
		tp_failc(errno, STARTTLS_ERR_CONFIG, "%s", err);
		return NULL;
	}
	if (tp_ldap_check(&q, &step, &o) == 0)
		tp_clear_error();
	e = errno;
	tp_runtime_release(q.rt);
	errno = e;
	return step;
}
