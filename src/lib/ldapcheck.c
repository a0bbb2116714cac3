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
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <lber.h>
#include <ldap.h>
#include <netinet/in.h>
#include <openldap.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "dtls.h"
#include "ldapcheck.h"
#include "lib.h"
#include "runtime.h"

#define MAX_TARGETS   8
#define MAX_ADDRS     8
#define MAX_VALUES    32
#define MAX_VALUE_LEN (64u << 10)

/* The step and what it owns; pub first, so that the public pointer is
 * the store's. */
struct step_store {
	starttls_ldap_step pub;
	tlspool_dns_answer *srv, *tlsa;
	tlspool_dane_result *dane;
	starttls_ldap_value *values;
	tlspool_openpgp_result *openpgp;
};

struct run {
	const struct tp_ldap_query *q;
	const struct tp_ldap_conf *lc;
	struct step_store *st;
	tlspool_dns *dns;
	long long deadline; /* of the step */
	int by_call;        /* the call's deadline is the earlier */
	char domain[256];
	struct tp_ldap_outcome *o;
};

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

/* --- the pure parts ------------------------------------------------------ */

int tp_ldap_valid_dn(const char *dn)
{
	LDAPDN parsed = NULL;

	if (dn == NULL ||
	    ldap_str2dn(dn, &parsed, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS)
		return -1;
	ldap_dnfree(parsed);
	return 0;
}

int tp_ldap_escape(char *dst, size_t len, const char *value)
{
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
		int esc = *p == '*' || *p == '(' || *p == ')' || *p == '\\' ||
		          *p < ' ' || *p == 0x7f;

		if (o + (esc ? 3 : 1) >= len)
			goto long_;
		if (esc)
			o += (size_t)snprintf(dst + o, len - o, "\\%02x", *p);
		else
			dst[o++] = (char)*p;
	}
	if (o >= len)
		goto long_;
	dst[o] = '\0';
	return (int)o;
long_:
	errno = ENAMETOOLONG;
	return -1;
}

/* The local part and the domain of identity ("" local for a domain). */
static int split(const char *identity, char *local, size_t llen, char *domain,
                 size_t dlen)
{
	const char *at = strrchr(identity, '@');
	size_t n = at != NULL ? (size_t)(at - identity) : 0;
	const char *d = at != NULL ? at + 1 : identity;
	size_t dl = strlen(d);

	if (dl > 0 && d[dl - 1] == '.')
		dl--;
	if (n >= llen || dl >= dlen || dl == 0) {
		errno = EINVAL;
		return -1;
	}
	memcpy(local, identity, n);
	local[n] = '\0';
	memcpy(domain, d, dl);
	domain[dl] = '\0';
	return 0;
}

int tp_ldap_filter(char *dst, size_t len, const char *tmpl,
                   const char *identity)
{
	char local[256], domain[256];
	size_t o = 0;
	int n;

	if (split(identity, local, sizeof(local), domain, sizeof(domain)) != 0)
		return -1;
	for (const char *p = tmpl; *p; p++) {
		const char *v = NULL;

		if (*p == '%' && p[1] == 's')
			v = identity;
		else if (*p == '%' && p[1] == 'u')
			v = local;
		else if (*p == '%' && p[1] == 'd')
			v = domain;
		if (v != NULL) {
			if (o >= len ||
			    (n = tp_ldap_escape(dst + o, len - o, v)) < 0)
				goto long_;
			o += (size_t)n;
			p++;
			continue;
		}
		if (*p == '%' && p[1] == '%')
			p++;
		if (o + 1 >= len)
			goto long_;
		dst[o++] = *p;
	}
	if (o >= len)
		goto long_;
	dst[o] = '\0';
	return (int)o;
long_:
	errno = ENAMETOOLONG;
	return -1;
}

int tp_ldap_base(char *dst, size_t len, const char *domain)
{
	size_t o = 0, dl = strlen(domain);
	const char *p = domain;

	if (dl > 0 && domain[dl - 1] == '.')
		dl--;
	if (dl == 0 || tlspool_check_domain(domain, 0) != 0) {
		errno = EINVAL;
		return -1;
	}
	while (p < domain + dl) {
		size_t l = strcspn(p, ".");

		if (p + l > domain + dl)
			l = (size_t)(domain + dl - p);
		/* LDH labels need no escaping (RFC 4514 section 2.4) */
		if (o + l + 5 >= len) {
			errno = ENAMETOOLONG;
			return -1;
		}
		o += (size_t)snprintf(dst + o, len - o, "%sdc=%.*s",
		                      o ? "," : "", (int)l, p);
		p += l + 1;
	}
	return (int)o;
}

/* ASCII armor (RFC 9580 section 6.2) to binary. */
static int dearmor(const char *text, size_t len, unsigned char **out,
                   size_t *outlen)
{
	static const char begin[] = "-----BEGIN PGP PUBLIC KEY BLOCK-----";
	const char *p = memmem(text, len, begin, sizeof(begin) - 1);
	const char *end = text + len;
	gnutls_datum_t b64 = {NULL, 0}, bin = {NULL, 0};
	char *buf;
	int headers = 1, rv = -1;

	if (p == NULL)
		return -1;
	buf = malloc(len + 1);
	if (buf == NULL)
		return -1;
	p += sizeof(begin) - 1;
	p += strspn(p, " \t\r");
	if (p >= end || *p++ != '\n')
		goto out;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);

		while (l > 0 && (p[l - 1] == '\r' || p[l - 1] == ' ' ||
		                 p[l - 1] == '\t'))
			l--;
		if (l >= 5 && strncmp(p, "-----", 5) == 0) {
			rv = 0; /* the END line */
			break;
		}
		if (headers) {
			/* "Key: value" headers up to an empty line; a line
			 * without a colon starts the data */
			if (l == 0 || memchr(p, ':', l) != NULL) {
				headers = l != 0;
				p = nl ? nl + 1 : end;
				continue;
			}
			headers = 0;
		}
		if (l > 0 && p[0] == '=') { /* the CRC-24 line */
			p = nl ? nl + 1 : end;
			continue;
		}
		for (size_t i = 0; i < l; i++)
			if (p[i] != ' ' && p[i] != '\t')
				buf[b64.size++] = p[i];
		p = nl ? nl + 1 : end;
	}
	if (rv != 0 || b64.size == 0) {
		rv = -1;
		goto out;
	}
	rv = -1;
	b64.data = (unsigned char *)buf;
	if (gnutls_base64_decode2(&b64, &bin) != 0 || bin.size == 0)
		goto out;
	*out = malloc(bin.size);
	if (*out != NULL) {
		memcpy(*out, bin.data, bin.size);
		*outlen = bin.size;
		rv = 0;
	}
	gnutls_free(bin.data);
out:
	free(buf);
	return rv;
}

int tp_ldap_pgp_binary(const unsigned char *in, size_t len, unsigned char **out,
                       size_t *outlen, int *armored)
{
	*out = NULL;
	*outlen = 0;
	*armored = 0;
	if (in != NULL && len > 0 && (in[0] & 0x80)) {
		*out = malloc(len);
		if (*out == NULL)
			return -1;
		memcpy(*out, in, len);
		*outlen = len;
		return 0;
	}
	if (in != NULL && len > 0 &&
	    dearmor((const char *)in, len, out, outlen) == 0 &&
	    ((*out)[0] & 0x80)) {
		*armored = 1;
		return 0;
	}
	free(*out);
	*out = NULL;
	errno = EBADMSG;
	return -1;
}

/* --- failures ------------------------------------------------------------- */

/* The step's verdict and reason, and the thread's failure (the reason is
 * the detail). */
static int fail(struct run *r, starttls_ldap_verdict v, int err,
                starttls_class cls, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));
static int fail(struct run *r, starttls_ldap_verdict v, int err,
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

static long long left(const struct run *r)
{
	return r->deadline - tp_mono_ms();
}

/* (fail() is variadic: the static analyzer does not follow it, so the
 * callers that it must follow return -1 themselves.) */
static int time_up(struct run *r, const char *what)
{
	if (r->by_call)
		fail(r, STARTTLS_LDAP_UNREACHABLE, ETIMEDOUT,
		     STARTTLS_ERR_TIMEOUT,
		     "%s: no time left (handshake_timeout_ms)", what);
	else
		fail(r, STARTTLS_LDAP_UNREACHABLE, ETIMEDOUT,
		     STARTTLS_ERR_DIRECTORY_UNREACHABLE,
		     "%s: no answer within [ldap] timeout_ms (%u ms)", what,
		     r->lc->timeout_ms);
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

static void shorten(struct run *r, const tlspool_dns_answer *a)
{
	time_t now = time(NULL), e = now + (time_t)a->ttl;

	if (a->rrsig_expiration != 0 && a->rrsig_expiration < e)
		e = a->rrsig_expiration;
	if (r->o->expiry == 0 || e < r->o->expiry)
		r->o->expiry = e;
}

/* A lookup within what is left; *ans set on 0. */
static int lookup(struct run *r, const char *owner, uint16_t type,
                  tlspool_dns_answer **ans)
{
	char err[256];
	long long ms = left(r);

	*ans = NULL;
	if (ms <= 0)
		return time_up(r, owner);
	if (tlspool_dns_lookup_within(r->dns, owner, type, (unsigned)ms, ans,
	                              err, sizeof(err)) != 0) {
		int e = errno;

		fail(r, STARTTLS_LDAP_NOT_AUTHENTICATED, e,
		     e == ENOMEM ? STARTTLS_ERR_RESOURCES
		                 : STARTTLS_ERR_ARGUMENT,
		     "%s", err);
		return -1;
	}
	if (*ans == NULL) { /* the lookup promises an answer on success */
		fail(r, STARTTLS_LDAP_NOT_AUTHENTICATED, EIO,
		     STARTTLS_ERR_INTERNAL, "%s: no answer", owner);
		return -1;
	}
	return 0;
}

/* A DNS answer that fails closed: its verdict's class and errno. */
static int dns_failed(struct run *r, const tlspool_dns_answer *a,
                      const char *what)
{
	char why[256];

	tlspool_dns_answer_explain(a, why, sizeof(why));
	return fail(r, STARTTLS_LDAP_NOT_AUTHENTICATED,
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
	if (lookup(r, owner, TLSPOOL_RR_SRV, &a) != 0)
		return -1;
	r->st->srv = a;
	r->st->pub.srv = a;
	if (tlspool_dns_verdict_is_error(a->verdict))
		return dns_failed(r, a, "the directory cannot be found");
	if (a->verdict == TLSPOOL_DNS_INSECURE)
		return fail(r, STARTTLS_LDAP_NOT_AUTHENTICATED, EKEYREJECTED,
		            STARTTLS_ERR_INSECURE,
		            "%s: the SRV RRset is insecure (the zone is not "
		            "signed): it cannot name the directory",
		            a->owner);
	shorten(r, a);
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
		return fail(r, STARTTLS_LDAP_NO_DIRECTORY, EKEYREJECTED,
		            STARTTLS_ERR_NO_RECORDS,
		            a->nrr == 0 ? "%s: no SRV records (proven by "
		                          "DNSSEC): the domain names no "
		                          "directory"
		                        : "%s: the SRV target is \".\": the "
		                          "domain has no directory (RFC 2782)",
		            a->owner);
	}
	if (n == 0)
		return fail(r, STARTTLS_LDAP_NOT_AUTHENTICATED, EKEYREJECTED,
		            STARTTLS_ERR_DIRECTORY_UNAUTHENTICATED,
		            "%s: no SRV record is well-formed", a->owner);
	tlspool_srv_order(t, n, NULL, NULL);
	*nt = n;
	return 0;
}

/* --- 2. the connection ---------------------------------------------------- */

struct addr {
	struct sockaddr_storage sa;
	socklen_t len;
	char text[64];
};

static void add_addrs(const tlspool_dns_answer *a, unsigned port,
                      struct addr *out, size_t *n)
{
	size_t i;

	if (a == NULL || (a->verdict != TLSPOOL_DNS_SECURE &&
	                  a->verdict != TLSPOOL_DNS_INSECURE))
		return;
	for (i = 0; i < a->nrr && *n < MAX_ADDRS; i++) {
		struct addr *d = &out[*n];

		memset(d, 0, sizeof(*d));
		if (a->qtype == TLSPOOL_RR_A && a->rr[i].rdlen == 4) {
			struct sockaddr_in *s = (struct sockaddr_in *)&d->sa;

			s->sin_family = AF_INET;
			s->sin_port = htons((uint16_t)port);
			memcpy(&s->sin_addr, a->rr[i].rdata, 4);
			d->len = sizeof(*s);
			inet_ntop(AF_INET, &s->sin_addr, d->text,
			          sizeof(d->text));
		} else if (a->qtype == TLSPOOL_RR_AAAA &&
		           a->rr[i].rdlen == 16) {
			struct sockaddr_in6 *s = (struct sockaddr_in6 *)&d->sa;

			s->sin6_family = AF_INET6;
			s->sin6_port = htons((uint16_t)port);
			memcpy(&s->sin6_addr, a->rr[i].rdata, 16);
			d->len = sizeof(*s);
			inet_ntop(AF_INET6, &s->sin6_addr, d->text,
			          sizeof(d->text));
		} else {
			continue;
		}
		(*n)++;
	}
}

/* One connection attempt, bounded by the deadline: the fd or -1. */
static int connect_one(struct run *r, const struct addr *a, int *err)
{
	int fd = socket(a->sa.ss_family,
	                SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	socklen_t el = sizeof(*err);
	long long ms;

	if (fd < 0) {
		*err = errno;
		return -1;
	}
	if (connect(fd, (const struct sockaddr *)&a->sa, a->len) != 0) {
		struct pollfd p = {fd, POLLOUT, 0};

		if (errno != EINPROGRESS) {
			*err = errno;
			goto bad;
		}
		ms = left(r);
		if (ms <= 0 ||
		    poll(&p, 1, (int)(ms > 60000 ? 60000 : ms)) <= 0) {
			*err = ETIMEDOUT;
			goto bad;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, err, &el) != 0 ||
		    *err != 0)
			goto bad;
	}
	/* libldap expects a blocking socket; the watchdog bounds it */
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0) {
		*err = errno;
		goto bad;
	}
	return fd;
bad:
	close(fd);
	return -1;
}

static int connect_any(struct run *r, const char *host, unsigned port)
{
	tlspool_dns_answer *a4 = NULL, *a6 = NULL;
	struct addr addrs[MAX_ADDRS];
	size_t n = 0, i;
	int fd = -1, err = 0;

	if (lookup(r, host, TLSPOOL_RR_A, &a4) != 0)
		return -1;
	add_addrs(a4, port, addrs, &n);
	if (lookup(r, host, TLSPOOL_RR_AAAA, &a6) != 0) {
		tlspool_dns_answer_free(a4);
		return -1;
	}
	add_addrs(a6, port, addrs, &n);
	tlspool_dns_answer_free(a4);
	tlspool_dns_answer_free(a6);
	if (n == 0)
		return fail(r, STARTTLS_LDAP_UNREACHABLE, EKEYREJECTED,
		            STARTTLS_ERR_DIRECTORY_UNREACHABLE,
		            "%s: no address (A, AAAA) for the directory", host);
	for (i = 0; i < n && fd < 0; i++) {
		fd = connect_one(r, &addrs[i], &err);
		if (fd >= 0)
			snprintf(r->st->pub.address, sizeof(r->st->pub.address),
			         "%s", addrs[i].text);
	}
	if (fd >= 0)
		return fd;
	if (left(r) <= 0)
		return time_up(r, host);
	return fail(r, STARTTLS_LDAP_UNREACHABLE, EKEYREJECTED,
	            STARTTLS_ERR_DIRECTORY_UNREACHABLE, "%s port %u (%s): %s",
	            host, port, addrs[n - 1].text, strerror(err));
}

/* --- the watchdog and SIGPIPE -------------------------------------------- */

struct watchdog {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int fd, stop, started;
	long long deadline;
};

static void *watch(void *arg)
{
	struct watchdog *w = arg;

	pthread_mutex_lock(&w->mu);
	while (!w->stop) {
		long long now = tp_mono_ms();
		struct timespec ts;

		if (now >= w->deadline) {
			shutdown(w->fd, SHUT_RDWR);
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += (time_t)((w->deadline - now) / 1000);
		ts.tv_nsec += (long)((w->deadline - now) % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&w->cv, &w->mu, &ts);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static int watch_start(struct watchdog *w, int fd, long long deadline)
{
	pthread_condattr_t ca;
	sigset_t all, old;

	memset(w, 0, sizeof(*w));
	w->fd = fd;
	w->deadline = deadline;
	pthread_mutex_init(&w->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cv, &ca);
	pthread_condattr_destroy(&ca);
	/* the application's signals are not for this thread */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	w->started = pthread_create(&w->th, NULL, watch, w) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return w->started ? 0 : -1;
}

static void watch_stop(struct watchdog *w)
{
	if (w->started) {
		pthread_mutex_lock(&w->mu);
		w->stop = 1;
		pthread_cond_signal(&w->cv);
		pthread_mutex_unlock(&w->mu);
		pthread_join(w->th, NULL);
	}
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
}

struct nopipe {
	sigset_t old;
	int pending; /* a SIGPIPE was pending before */
};

static void nopipe_begin(struct nopipe *np)
{
	sigset_t s, p;

	sigemptyset(&s);
	sigaddset(&s, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &s, &np->old);
	sigpending(&p);
	np->pending = sigismember(&p, SIGPIPE);
}

static void nopipe_end(struct nopipe *np)
{
	sigset_t s, p;
	struct timespec zero = {0, 0};

	sigemptyset(&s);
	sigaddset(&s, SIGPIPE);
	sigpending(&p);
	if (!np->pending && sigismember(&p, SIGPIPE))
		sigtimedwait(&s, NULL, &zero); /* ours: take it back */
	pthread_sigmask(SIG_SETMASK, &np->old, NULL);
}

/* --- 3-5. the session ------------------------------------------------------
 */

static void set_timeout(LDAP *ld, long long ms, struct timeval *tv)
{
	if (ms < 1)
		ms = 1;
	tv->tv_sec = (time_t)(ms / 1000);
	tv->tv_usec = (suseconds_t)(ms % 1000) * 1000;
	ldap_set_option(ld, LDAP_OPT_TIMEOUT, tv);
}

/* libldap's options for one handle: LDAPv3, no referrals (they would
 * lead to directories nobody authenticated), no alias dereferencing, and
 * a TLS context that verifies nothing and loads no CA file (ldap.conf's
 * TLS_CACERT included): the DANE matcher decides. */
static int handle_options(LDAP *ld)
{
	static const int opts[] = {
	        LDAP_OPT_X_TLS_CACERTFILE, LDAP_OPT_X_TLS_CACERTDIR,
	        LDAP_OPT_X_TLS_CERTFILE,   LDAP_OPT_X_TLS_KEYFILE,
	        LDAP_OPT_X_TLS_CRLFILE,
	};
	int v3 = LDAP_VERSION3, never = LDAP_OPT_X_TLS_NEVER,
	    deref = LDAP_DEREF_NEVER, zero = 0,
	    min = LDAP_OPT_X_TLS_PROTOCOL_TLS1_2;
	size_t i;

	if (ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3) ||
	    ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF) ||
	    ldap_set_option(ld, LDAP_OPT_DEREF, &deref) ||
	    ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &never) ||
	    ldap_set_option(ld, LDAP_OPT_X_TLS_PROTOCOL_MIN, &min))
		return -1;
	for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		ldap_set_option(ld, opts[i], NULL);
	return ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &zero) ==
	                       LDAP_OPT_SUCCESS
	               ? 0
	               : -1;
}

/* An LDAP failure: the deadline, else unreachable. */
static int ldap_failed(struct run *r, LDAP *ld, int rc, const char *what)
{
	char *diag = NULL;

	if (left(r) <= 0 || rc == LDAP_TIMEOUT)
		return time_up(r, r->st->pub.host);
	ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag);
	fail(r, STARTTLS_LDAP_UNREACHABLE, EKEYREJECTED,
	     STARTTLS_ERR_DIRECTORY_UNREACHABLE, "%s port %u: %s: %s%s%s%s",
	     r->st->pub.host, r->st->pub.port, what, ldap_err2string(rc),
	     diag && *diag ? " (" : "", diag && *diag ? diag : "",
	     diag && *diag ? ")" : "");
	ldap_memfree(diag);
	return -1;
}

/* The directory's certificate through the DANE matcher.  libldap gives
 * the end entity only (so DANE-EE records: docs in tlspool.conf(5)); the
 * GnuTLS backend of OpenLDAP 2.6 gives it only after its own CA check
 * passed, which never happens here: there the step fails closed. */
static int authenticate(struct run *r, LDAP *ld, const tlspool_tlsa *tlsa,
                        size_t ntlsa)
{
	struct berval bv = {0, NULL};
	const char *names[1] = {r->st->pub.host};
	tlspool_dane_input in;
	tlspool_span cert;
	char err[256];
	int rv;

	if (ldap_get_option(ld, LDAP_OPT_X_TLS_PEERCERT, &bv) !=
	            LDAP_OPT_SUCCESS ||
	    bv.bv_val == NULL || bv.bv_len == 0) {
		ber_memfree(bv.bv_val);
		return fail(r, STARTTLS_LDAP_NOT_AUTHENTICATED, EKEYREJECTED,
		            STARTTLS_ERR_DIRECTORY_UNAUTHENTICATED,
		            "%s port %u: libldap gave no certificate of the "
		            "directory (LDAP_OPT_X_TLS_PEERCERT): it cannot "
		            "be authenticated",
		            r->st->pub.host, r->st->pub.port);
	}
	cert.data = (const unsigned char *)bv.bv_val;
	cert.len = bv.bv_len;
	memset(&in, 0, sizeof(in));
	in.chain = &cert;
	in.nchain = 1;
	in.tlsa = tlsa;
	in.ntlsa = ntlsa;
	in.dns = r->st->tlsa->verdict;
	in.dns_detail = r->st->tlsa->detail;
	in.names = names;
	in.nnames = 1;
	in.now = time(NULL);
	rv = tlspool_dane_match(&in, &r->st->dane, err, sizeof(err));
	ber_memfree(bv.bv_val);
	if (rv != 0)
		return fail(r, STARTTLS_LDAP_NOT_AUTHENTICATED, errno,
		            STARTTLS_ERR_RESOURCES, "DANE: %s", err);
	r->st->pub.dane = r->st->dane;
	if (r->st->dane->verdict != TLSPOOL_DANE_AUTHENTICATED)
		return fail(r, STARTTLS_LDAP_NOT_AUTHENTICATED, EKEYREJECTED,
		            STARTTLS_ERR_DIRECTORY_UNAUTHENTICATED,
		            "%s: %s: the directory is not authenticated",
		            r->st->tlsa->owner, r->st->dane->reason);
	return 0;
}

static int add_value(struct run *r, int pgp, const struct berval *v)
{
	struct step_store *st = r->st;
	starttls_ldap_value *grown, *d;
	unsigned char *bin = NULL;
	size_t blen = 0;
	int armored = 0;

	if (st->pub.nvalues == MAX_VALUES || v->bv_len > MAX_VALUE_LEN)
		return 0; /* more than anyone publishes: left out */
	grown = realloc(st->values, (st->pub.nvalues + 1) * sizeof(*grown));
	if (grown == NULL)
		return -1;
	st->values = grown;
	st->pub.values = grown;
	d = &grown[st->pub.nvalues];
	memset(d, 0, sizeof(*d));
	d->pgp = pgp;
	if (pgp && tp_ldap_pgp_binary((const unsigned char *)v->bv_val,
	                              v->bv_len, &bin, &blen, &armored) != 0)
		snprintf(d->reason, sizeof(d->reason),
		         "not an OpenPGP key, binary or armored");
	if (bin == NULL) {
		bin = malloc(v->bv_len ? v->bv_len : 1);
		if (bin == NULL)
			return -1;
		memcpy(bin, v->bv_val, v->bv_len);
		blen = v->bv_len;
	}
	d->armored = armored;
	d->data.data = bin;
	d->data.len = blen;
	st->pub.nvalues++;
	return 0;
}

/* The values of the one entry. */
static int read_entry(struct run *r, LDAP *ld, LDAPMessage *e)
{
	BerElement *ber = NULL;
	char *dn = ldap_get_dn(ld, e), *attr;
	int rv = 0;

	snprintf(r->st->pub.dn, sizeof(r->st->pub.dn), "%s", dn ? dn : "");
	ldap_memfree(dn);
	for (attr = ldap_first_attribute(ld, e, &ber); attr != NULL && rv == 0;
	     attr = ldap_next_attribute(ld, e, ber)) {
		int cert = strcasecmp(attr, "userCertificate;binary") == 0 ||
		           strcasecmp(attr, "userCertificate") == 0;
		int pgp = strncasecmp(attr, "pgpKey", 6) == 0 &&
		          (attr[6] == '\0' || attr[6] == ';');
		struct berval **vals;

		if (cert || pgp) {
			vals = ldap_get_values_len(ld, e, attr);
			for (size_t i = 0; vals != NULL && vals[i] != NULL; i++)
				if (add_value(r, pgp, vals[i]) != 0)
					rv = -1;
			ldap_value_free_len(vals);
		}
		ldap_memfree(attr);
	}
	ber_free(ber, 0);
	if (rv != 0)
		tp_fail(ENOMEM, "out of memory");
	return rv;
}

static int search(struct run *r, LDAP *ld)
{
	char *attrs[] = {"userCertificate;binary", "pgpKey", NULL};
	LDAPMessage *res = NULL, *e;
	struct timeval tv;
	int rc, n, rv = -1;

	set_timeout(ld, left(r), &tv);
	rc = ldap_search_ext_s(ld, r->st->pub.base, LDAP_SCOPE_SUBTREE,
	                       r->st->pub.filter, attrs, 0, NULL, NULL, &tv, 2,
	                       &res);
	n = res != NULL ? ldap_count_entries(ld, res) : 0;
	if (rc == LDAP_SIZELIMIT_EXCEEDED || n > 1) {
		fail(r, STARTTLS_LDAP_NO_ENTRY, EKEYREJECTED,
		     STARTTLS_ERR_NO_RECORDS,
		     "%s: more than one entry under \"%s\" for %s: which one "
		     "is %s's is not clear",
		     r->st->pub.host, r->st->pub.base, r->st->pub.filter,
		     r->st->pub.identity);
		r->o->cacheable = 1;
	} else if (rc == LDAP_NO_SUCH_OBJECT ||
	           (rc == LDAP_SUCCESS && n == 0)) {
		fail(r, STARTTLS_LDAP_NO_ENTRY, EKEYREJECTED,
		     STARTTLS_ERR_NO_RECORDS,
		     "%s: no entry under \"%s\" for %s", r->st->pub.host,
		     r->st->pub.base, r->st->pub.filter);
		r->o->cacheable = 1;
	} else if (rc != LDAP_SUCCESS) {
		ldap_failed(r, ld, rc, "the search failed");
	} else {
		e = ldap_first_entry(ld, res);
		rv = e != NULL ? read_entry(r, ld, e)
		               : ldap_failed(r, ld, LDAP_DECODING_ERROR,
		                             "the search result");
	}
	ldap_msgfree(res);
	return rv;
}

/* StartTLS or ldaps on fd (consumed), the DANE check, the search. */
static int session(struct run *r, int fd, const tlspool_tlsa *tlsa,
                   size_t ntlsa)
{
	struct step_store *st = r->st;
	struct watchdog w;
	struct nopipe np;
	struct timeval tv;
	char url[300];
	LDAP *ld = NULL;
	int rc, rv = -1, e;

	snprintf(url, sizeof(url), "%s://%s:%u",
	         st->pub.ldaps ? "ldaps" : "ldap", st->pub.host, st->pub.port);
	if (ldap_init_fd(fd, LDAP_PROTO_TCP, url, &ld) != LDAP_SUCCESS) {
		close(fd);
		return fail(r, STARTTLS_LDAP_UNREACHABLE, ENOMEM,
		            STARTTLS_ERR_RESOURCES,
		            "%s: libldap could not take the connection", url);
	}
	if (handle_options(ld) != 0) {
		ldap_unbind_ext_s(ld, NULL, NULL);
		return fail(r, STARTTLS_LDAP_NOT_AUTHENTICATED, EKEYREJECTED,
		            STARTTLS_ERR_DIRECTORY_UNAUTHENTICATED,
		            "%s: libldap could not set up TLS", url);
	}
	nopipe_begin(&np);
	if (watch_start(&w, fd, r->deadline) != 0) {
		fail(r, STARTTLS_LDAP_UNREACHABLE, ENOMEM,
		     STARTTLS_ERR_RESOURCES, "no thread for the deadline");
		goto out;
	}
	set_timeout(ld, left(r), &tv);
	rc = st->pub.ldaps ? ldap_install_tls(ld)
	                   : ldap_start_tls_s(ld, NULL, NULL);
	if (rc > 0) /* the server's result code: it refused StartTLS */
		fail(r, STARTTLS_LDAP_NOT_AUTHENTICATED, EKEYREJECTED,
		     STARTTLS_ERR_DIRECTORY_UNAUTHENTICATED,
		     "%s: StartTLS refused (%s): no unauthenticated LDAP", url,
		     ldap_err2string(rc));
	else if (rc != LDAP_SUCCESS)
		ldap_failed(r, ld, rc,
		            st->pub.ldaps ? "TLS handshake" : "StartTLS");
	else if (authenticate(r, ld, tlsa, ntlsa) == 0)
		rv = search(r, ld);
out:
	e = errno;
	watch_stop(&w);
	ldap_unbind_ext_s(ld, NULL, NULL); /* closes fd */
	nopipe_end(&np);
	errno = e;
	return rv;
}

/* One target: its TLSA RRset, a connection, the session. */
static int attempt(struct run *r, const tlspool_srv *t)
{
	struct step_store *st = r->st;
	tlspool_tlsa *tlsa = NULL;
	char owner[300];
	size_t i, n = 0;
	int fd, rv, e;

	tlspool_dns_answer_free(st->tlsa);
	tlspool_dane_result_free(st->dane);
	st->tlsa = NULL;
	st->dane = NULL;
	st->pub.tlsa = NULL;
	st->pub.dane = NULL;
	st->pub.address[0] = '\0';
	snprintf(st->pub.host, sizeof(st->pub.host), "%.*s",
	         (int)strlen(t->target) - 1, t->target);
	st->pub.port = t->port;
	st->pub.ldaps = r->lc->host[0] != '\0' && r->lc->ldaps;
	if (tlspool_tlsa_owner(owner, sizeof(owner), t->port, "tcp",
	                       st->pub.host) < 0)
		return fail(r, STARTTLS_LDAP_NOT_AUTHENTICATED, EKEYREJECTED,
		            STARTTLS_ERR_DIRECTORY_UNAUTHENTICATED,
		            "%s: no TLSA owner name", st->pub.host);
	if (lookup(r, owner, TLSPOOL_RR_TLSA, &st->tlsa) != 0)
		return -1;
	st->pub.tlsa = st->tlsa;
	if (tlspool_dns_verdict_is_error(st->tlsa->verdict))
		return dns_failed(r, st->tlsa,
		                  "the directory cannot be authenticated");
	if (st->tlsa->verdict != TLSPOOL_DNS_SECURE || st->tlsa->nrr == 0)
		return fail(r, STARTTLS_LDAP_NOT_AUTHENTICATED, EKEYREJECTED,
		            STARTTLS_ERR_DIRECTORY_UNAUTHENTICATED,
		            "%s: %s: the directory cannot be authenticated "
		            "(no unauthenticated LDAP)",
		            st->tlsa->owner,
		            tlspool_dns_verdict_text(st->tlsa->verdict));
	shorten(r, st->tlsa);
	tlsa = calloc(st->tlsa->nrr, sizeof(*tlsa));
	if (tlsa == NULL)
		return tp_fail(ENOMEM, "out of memory");
	for (i = 0; i < st->tlsa->nrr; i++)
		if (tlspool_tlsa_parse(st->tlsa->rr[i].rdata,
		                       st->tlsa->rr[i].rdlen, &tlsa[n]) == 0)
			n++;
	fd = connect_any(r, st->pub.host, t->port);
	rv = fd < 0 ? -1 : session(r, fd, tlsa, n);
	e = errno;
	free(tlsa);
	errno = e;
	return rv;
}

/* --- the comparison ------------------------------------------------------- */

static int compare(struct run *r)
{
	struct step_store *st = r->st;
	const tlspool_span *peer = &r->q->chain[0];
	tlspool_span recs[MAX_VALUES];
	size_t map[MAX_VALUES], nrec = 0, i, ncert = 0, npgp = 0;
	const char *how = NULL;
	time_t now = time(NULL);
	char err[256];

	for (i = 0; i < st->pub.nvalues; i++) {
		starttls_ldap_value *v = &st->values[i];
		tlspool_x509_info x;

		if (v->pgp) {
			npgp++;
			if (v->reason[0] == '\0') {
				recs[nrec].data = v->data.data;
				recs[nrec].len = v->data.len;
				map[nrec++] = i;
			}
			continue;
		}
		ncert++;
		if (v->data.len != peer->len ||
		    memcmp(v->data.data, peer->data, peer->len) != 0) {
			snprintf(v->reason, sizeof(v->reason),
			         "another certificate");
			continue;
		}
		if (tlspool_x509_describe(&v->data, &x) != 0 ||
		    x.not_before > now || x.not_after < now) {
			snprintf(v->reason, sizeof(v->reason),
			         "the peer's certificate, but not valid now");
			continue;
		}
		v->matched = 1;
		snprintf(v->reason, sizeof(v->reason),
		         "the certificate the peer presented");
		if (how == NULL)
			how = "userCertificate;binary";
		if (r->o->expiry == 0 || x.not_after < r->o->expiry)
			r->o->expiry = x.not_after;
	}
	if (how == NULL && nrec > 0) {
		tlspool_openpgp_input in;

		memset(&in, 0, sizeof(in));
		in.chain = r->q->chain;
		in.nchain = r->q->nchain;
		in.records = recs;
		in.nrecords = nrec;
		in.dns = TLSPOOL_DNS_SECURE; /* a directory DANE proved */
		in.dns_detail = "the directory, authenticated by DANE";
		in.identity = st->pub.identity;
		in.now = now;
		if (tlspool_openpgp_match(&in, &st->openpgp, err,
		                          sizeof(err)) != 0)
			return tp_fail(errno, "pgpKey: %s", err);
		st->pub.openpgp = st->openpgp;
		for (i = 0; i < st->openpgp->nsteps; i++) {
			const tlspool_openpgp_step *s = &st->openpgp->steps[i];

			if (s->index >= nrec)
				continue;
			st->values[map[s->index]].matched = s->matched;
			snprintf(st->values[map[s->index]].reason,
			         sizeof(st->values[0].reason), "%s", s->reason);
		}
		if (st->openpgp->verdict == TLSPOOL_DANE_AUTHENTICATED)
			how = "pgpKey";
	}
	r->o->cacheable = 1;
	if (how != NULL) {
		st->pub.verdict = STARTTLS_LDAP_MATCHED;
		snprintf(st->pub.reason, sizeof(st->pub.reason),
		         "%.100s: %s of \"%.200s\" is what the peer presented",
		         st->pub.host, how, st->pub.dn);
		return 0;
	}
	if (st->pub.nvalues == 0)
		return fail(r, STARTTLS_LDAP_NO_ENTRY, EKEYREJECTED,
		            STARTTLS_ERR_NO_RECORDS,
		            "%s: \"%s\" holds no userCertificate;binary or "
		            "pgpKey",
		            st->pub.host, st->pub.dn);
	return fail(r, STARTTLS_LDAP_DIFFERENT, EKEYREJECTED,
	            STARTTLS_ERR_NO_MATCH,
	            "%s: \"%s\" holds %zu certificate(s) and %zu OpenPGP "
	            "key(s), none of them the peer's%s%s",
	            st->pub.host, st->pub.dn, ncert, npgp,
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

	if (split(identity, local, sizeof(local), domain, sizeof(domain)) !=
	            0 ||
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
	if (split(q->identity, local, sizeof(local), r.domain,
	          sizeof(r.domain)) != 0 ||
	    tp_ldap_filter(r.st->pub.filter, sizeof(r.st->pub.filter),
	                   local[0] ? r.lc->filter : r.lc->domain_filter,
	                   q->identity) < 0)
		return fail(&r, STARTTLS_LDAP_NO_ENTRY, EKEYREJECTED,
		            STARTTLS_ERR_NO_IDENTITY,
		            "%s: no LDAP filter for this identity",
		            q->identity);
	if (r.lc->base[0] != '\0')
		snprintf(r.st->pub.base, sizeof(r.st->pub.base), "%s",
		         r.lc->base);
	else if (tp_ldap_base(r.st->pub.base, sizeof(r.st->pub.base),
	                      r.domain) < 0)
		return fail(&r, STARTTLS_LDAP_NO_ENTRY, EKEYREJECTED,
		            STARTTLS_ERR_NO_IDENTITY,
		            "%s: no base DN for this domain", r.domain);
	r.dns = tp_runtime_resolver(q->rt, err, sizeof(err));
	if (r.dns == NULL)
		return fail(&r, STARTTLS_LDAP_NOT_AUTHENTICATED, EINVAL,
		            STARTTLS_ERR_CONFIG, "[dns]: %s", err);
	if (find_directory(&r, targets, &nt) != 0)
		return -1;
	/* RFC 2782: the targets in order until one answers; an answer of
	 * an authenticated directory (no entry) is the answer */
	for (i = 0; i < nt; i++) {
		o->cacheable = 0;
		rv = attempt(&r, &targets[i]);
		if (rv == 0 || errno == ENOMEM || left(&r) <= 0 ||
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
