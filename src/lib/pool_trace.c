/*
 * The trace of a pooled call (pool.h, tlspoold(8) PROTOCOL): what the
 * daemon's call learnt of its peer -- the certificates as sent, the TLSA
 * owner, the lookup's records and verdict, the DANE matcher's result --
 * travels in the reply, so that starttls_last_trace() says in the
 * application what it says in the process that ran the call.
 *
 * Layout (big-endian, every count and length bounded and checked, the
 * section ends exactly where the reply says):
 *   flags 4 (1 from the cache, 2 a lookup, 4 a matcher's result,
 *            8 certificates left out to stay within TP_POOL_TRACE_MAX)
 *   nchain 4 (0-16)   owner 320 (a name field; empty: none)
 *   nchain x { len 4 (1-16384), DER }
 *   lookup:  verdict 4, qtype 4, ttl 4, rrsig_expiration 8, qname 256,
 *            owner 256, detail 160, ncname 4 (0-8), ncname x 256,
 *            nrr 4 (0-64), nrr x { type 4, ttl 4, rdlen 4 (0-65535),
 *            rdata }
 *   matcher: verdict 4, dns 4, matched 4, best 4, depth 4, name 256,
 *            identity 320, reason 240, nsteps 4 (0-64),
 *            nsteps x { index 4, usage 4, selector 4, mtype 4,
 *                       outcome 4, depth 4, chain_index 4, reason 200 }
 * The OPENPGPKEY and LDAP parts of a trace stay in the daemon.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"
#include "trace.h"

#define T_CACHE     0x1u
#define T_DNS       0x2u
#define T_DANE      0x4u
#define T_TRUNCATED 0x8u
#define T_FLAGS     (T_CACHE | T_DNS | T_DANE | T_TRUNCATED)

#define MAX_CHAIN  16
#define MAX_CERT   16384
#define MAX_CNAME  8
#define MAX_RR     64
#define MAX_RDATA  65535
#define MAX_STEPS  64
#define OWNER_LEN  320
#define NAME_LEN   256
#define DETAIL_LEN 160

/* --- writing ----------------------------------------------------------- */

struct out {
	unsigned char *p, *end;
	int full;
};

static void w_bytes(struct out *o, const void *b, size_t n)
{
	if (o->full || (size_t)(o->end - o->p) < n) {
		o->full = 1;
		return;
	}
	if (n > 0)
		memcpy(o->p, b, n);
	o->p += n;
}

static void w32(struct out *o, uint32_t v)
{
	unsigned char b[4] = {(unsigned char)(v >> 24),
	                      (unsigned char)(v >> 16), (unsigned char)(v >> 8),
	                      (unsigned char)v};

	w_bytes(o, b, 4);
}

static void w64(struct out *o, uint64_t v)
{
	w32(o, (uint32_t)(v >> 32));
	w32(o, (uint32_t)v);
}

/* A name field of len octets: the string (cut to len - 1), NULs. */
static void w_str(struct out *o, const char *s, size_t len)
{
	unsigned char pad[OWNER_LEN] = {0};
	size_t n = s != NULL ? strnlen(s, len - 1) : 0;

	w_bytes(o, s, n);
	w_bytes(o, pad, len - n);
}

static void w_dns(struct out *o, const tlspool_dns_answer *a)
{
	size_t ncname = a->ncname < MAX_CNAME ? a->ncname : MAX_CNAME;
	size_t nrr = a->nrr < MAX_RR ? a->nrr : MAX_RR;

	w32(o, (uint32_t)a->verdict);
	w32(o, a->qtype);
	w32(o, a->ttl);
	w64(o, (uint64_t)a->rrsig_expiration);
	w_str(o, a->qname, NAME_LEN);
	w_str(o, a->owner, NAME_LEN);
	w_str(o, a->detail, DETAIL_LEN);
	w32(o, (uint32_t)ncname);
	for (size_t i = 0; i < ncname; i++)
		w_str(o, a->cname[i], NAME_LEN);
	w32(o, (uint32_t)nrr);
	for (size_t i = 0; i < nrr; i++) {
		size_t len = a->rr[i].rdlen <= MAX_RDATA ? a->rr[i].rdlen : 0;

		w32(o, a->rr[i].type);
		w32(o, a->rr[i].ttl);
		w32(o, (uint32_t)len);
		w_bytes(o, a->rr[i].rdata, len);
	}
}

/* An index the reader accepts: -1 to max, else -1 (beyond what was
 * sent). */
static uint32_t w_index(long v, long max)
{
	return (uint32_t)(int32_t)(v >= -1 && v <= max ? v : -1);
}

static void w_dane(struct out *o, const tlspool_dane_result *d, size_t nchain)
{
	size_t n = 0;

	/* the steps of the records that were sent */
	for (size_t i = 0; i < d->nsteps && n < MAX_STEPS; i++)
		if (d->steps[i].index < MAX_RR)
			n++;
	w32(o, (uint32_t)d->verdict);
	w32(o, (uint32_t)d->dns);
	w32(o, w_index(d->matched, MAX_RR - 1));
	w32(o, w_index(d->best, MAX_RR - 1));
	w32(o, w_index(d->depth, 255));
	w_str(o, d->name, NAME_LEN);
	w_str(o, d->identity, OWNER_LEN);
	w_str(o, d->reason, 240);
	w32(o, (uint32_t)n);
	for (size_t i = 0, k = 0; i < d->nsteps && k < n; i++) {
		const tlspool_dane_step *s = &d->steps[i];

		if (s->index >= MAX_RR)
			continue;
		k++;
		w32(o, (uint32_t)s->index);
		w32(o, s->usage);
		w32(o, s->selector);
		w32(o, s->mtype);
		w32(o, (uint32_t)s->outcome);
		w32(o, w_index(s->depth, 255));
		w32(o, w_index(s->chain_index, (long)nchain - 1));
		w_str(o, s->reason, 200);
	}
}

/* The trace with the first nchain certificates: its length, or 0 when it
 * does not fit. */
static size_t encode_with(const starttls_trace *t, size_t nchain,
                          uint32_t extra, unsigned char *buf, size_t len)
{
	struct out o = {buf, buf + len, 0};
	uint32_t flags = extra;
	size_t kept = 0;

	/* the leading certificates that fit the rules */
	while (kept < nchain && t->chain[kept].len >= 1 &&
	       t->chain[kept].len <= MAX_CERT)
		kept++;
	flags |= t->from_cache ? T_CACHE : 0;
	flags |= t->dns != NULL ? T_DNS : 0;
	flags |= t->dane != NULL ? T_DANE : 0;
	w32(&o, flags);
	w32(&o, (uint32_t)kept);
	w_str(&o, t->owner, OWNER_LEN);
	for (size_t i = 0; i < kept; i++) {
		w32(&o, (uint32_t)t->chain[i].len);
		w_bytes(&o, t->chain[i].data, t->chain[i].len);
	}
	if (t->dns != NULL)
		w_dns(&o, t->dns);
	if (t->dane != NULL)
		w_dane(&o, t->dane, kept);
	return o.full ? 0 : (size_t)(o.p - buf);
}

size_t tp_pool_trace_encode(const starttls_trace *t, unsigned char *buf,
                            size_t len)
{
	size_t n = t->nchain < MAX_CHAIN ? t->nchain : MAX_CHAIN, r;

	if (t->nchain == 0 && t->owner == NULL && t->dns == NULL &&
	    t->dane == NULL && !t->from_cache)
		return 0; /* nothing to say */
	/* too large: certificates from the top of the chain left out */
	for (size_t k = n;; k--) {
		r = encode_with(t, k, k < n ? T_TRUNCATED : 0, buf, len);
		if (r > 0 || k == 0)
			return r;
	}
}

/* --- reading ----------------------------------------------------------- */

struct in {
	const unsigned char *p;
	size_t left;
	const char *bad; /* the first rule broken */
};

static int r_fail(struct in *c, const char *why)
{
	if (c->bad == NULL)
		c->bad = why;
	c->left = 0;
	return -1;
}

static const unsigned char *r_bytes(struct in *c, size_t n)
{
	const unsigned char *p = c->p;

	if (c->bad != NULL || c->left < n) {
		r_fail(c, "trace: shorter than its contents");
		return NULL;
	}
	c->p += n;
	c->left -= n;
	return p;
}

static uint32_t r32(struct in *c)
{
	const unsigned char *p = r_bytes(c, 4);

	if (p == NULL)
		return 0;
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static uint64_t r64(struct in *c)
{
	uint64_t hi = r32(c);

	return hi << 32 | r32(c);
}

/* A name field: NUL-terminated, NULs to its end. */
static void r_str(struct in *c, char *out, size_t len)
{
	const unsigned char *p = r_bytes(c, len), *nul;

	if (p == NULL)
		return;
	nul = memchr(p, 0, len);
	if (nul == NULL) {
		r_fail(c, "trace: a name field without its NUL");
		return;
	}
	for (const unsigned char *q = nul; q < p + len; q++)
		if (*q != 0) {
			r_fail(c, "trace: octets after a name's NUL");
			return;
		}
	if (out != NULL)
		memcpy(out, p, len);
}

static uint32_t r_count(struct in *c, uint32_t max, const char *why)
{
	uint32_t n = r32(c);

	if (n > max) {
		r_fail(c, why);
		return 0;
	}
	return n;
}

static int32_t r_index(struct in *c, int32_t max)
{
	int32_t v = (int32_t)r32(c);

	if (v < -1 || v > max)
		r_fail(c, "trace: an index out of range");
	return v;
}

/* What a trace holds once read; the pointers are the caller's to keep or
 * free (load_free). */
struct loaded {
	uint32_t flags;
	size_t nchain;
	tlspool_span chain[MAX_CHAIN];
	char owner[OWNER_LEN];
	tlspool_dns_answer *dns;
	tlspool_dane_result *dane;
};

static void load_free(struct loaded *l)
{
	tlspool_dns_answer_free(l->dns);
	tlspool_dane_result_free(l->dane);
	l->dns = NULL;
	l->dane = NULL;
}

static void r_dns(struct in *c, struct loaded *l)
{
	tlspool_dns_answer tmp, *a = l != NULL ? calloc(1, sizeof(*a)) : &tmp;
	uint32_t n;

	if (a == NULL) {
		r_fail(c, "trace: out of memory");
		return;
	}
	memset(a, 0, sizeof(*a));
	if (l != NULL)
		l->dns = a;
	a->verdict = (tlspool_dns_verdict)r32(c);
	if ((uint32_t)a->verdict > TLSPOOL_DNS_TIMEOUT)
		r_fail(c, "trace: a lookup verdict out of range");
	n = r32(c);
	if (n > 65535)
		r_fail(c, "trace: a query type out of range");
	a->qtype = (uint16_t)n;
	a->ttl = r32(c);
	a->rrsig_expiration = (time_t)r64(c);
	r_str(c, a->qname, NAME_LEN);
	r_str(c, a->owner, NAME_LEN);
	r_str(c, a->detail, DETAIL_LEN);
	n = r_count(c, MAX_CNAME, "trace: more than 8 CNAMEs");
	if (n > 0 && l != NULL &&
	    (a->cname = calloc(n, sizeof(*a->cname))) == NULL)
		r_fail(c, "trace: out of memory");
	for (uint32_t i = 0; i < n && c->bad == NULL; i++)
		r_str(c, l != NULL ? a->cname[i] : NULL, NAME_LEN);
	if (c->bad == NULL)
		a->ncname = n;
	n = r_count(c, MAX_RR, "trace: more than 64 records");
	if (n > 0 && l != NULL && (a->rr = calloc(n, sizeof(*a->rr))) == NULL)
		r_fail(c, "trace: out of memory");
	for (uint32_t i = 0; i < n && c->bad == NULL; i++) {
		uint32_t type = r32(c), ttl = r32(c);
		uint32_t len = r_count(c, MAX_RDATA, "trace: rdata too long");
		const unsigned char *d = r_bytes(c, len);

		if (type > 65535)
			r_fail(c, "trace: a record type out of range");
		if (c->bad != NULL || l == NULL)
			continue;
		a->rr[i].type = (uint16_t)type;
		a->rr[i].ttl = ttl;
		if ((a->rr[i].rdata = malloc(len ? len : 1)) == NULL) {
			r_fail(c, "trace: out of memory");
			continue;
		}
		memcpy(a->rr[i].rdata, d, len);
		a->rr[i].rdlen = len;
		a->nrr = i + 1;
	}
}

static void r_dane(struct in *c, struct loaded *l, size_t nchain)
{
	tlspool_dane_result tmp, *d = l != NULL ? calloc(1, sizeof(*d)) : &tmp;
	uint32_t n;

	if (d == NULL) {
		r_fail(c, "trace: out of memory");
		return;
	}
	memset(d, 0, sizeof(*d));
	if (l != NULL)
		l->dane = d;
	d->verdict = (tlspool_dane_verdict)r32(c);
	d->dns = (tlspool_dns_verdict)r32(c);
	if ((uint32_t)d->verdict > TLSPOOL_DANE_PEER_ERROR ||
	    (uint32_t)d->dns > TLSPOOL_DNS_TIMEOUT)
		r_fail(c, "trace: a verdict out of range");
	d->matched = r_index(c, MAX_RR - 1);
	d->best = r_index(c, MAX_RR - 1);
	d->depth = r_index(c, 255);
	r_str(c, d->name, NAME_LEN);
	r_str(c, d->identity, OWNER_LEN);
	r_str(c, d->reason, 240);
	n = r_count(c, MAX_STEPS, "trace: more than 64 matcher steps");
	if (n > 0 && l != NULL &&
	    (d->steps = calloc(n, sizeof(*d->steps))) == NULL)
		r_fail(c, "trace: out of memory");
	for (uint32_t i = 0; i < n && c->bad == NULL; i++) {
		tlspool_dane_step st, *s = l != NULL ? &d->steps[i] : &st;
		uint32_t u, sel, mt, out;

		s->index = r32(c);
		u = r32(c);
		sel = r32(c);
		mt = r32(c);
		out = r32(c);
		s->depth = r_index(c, 255);
		s->chain_index = r_index(c, (int32_t)nchain - 1);
		r_str(c, s->reason, 200);
		if (s->index >= MAX_RR || u > 255 || sel > 255 || mt > 255 ||
		    out > TLSPOOL_DANE_REC_WRONG_PURPOSE)
			r_fail(c, "trace: a matcher step out of range");
		s->usage = (uint8_t)u;
		s->selector = (uint8_t)sel;
		s->mtype = (uint8_t)mt;
		s->outcome = (tlspool_dane_outcome)out;
		if (c->bad == NULL)
			d->nsteps = i + 1;
	}
}

/* Read a trace of len octets; with l, into it (certificates point into
 * p).  NULL, or the rule it breaks. */
static const char *parse(const unsigned char *p, size_t len, struct loaded *l)
{
	struct in c = {p, len, NULL};
	struct loaded tmp;
	uint32_t flags, n;

	memset(&tmp, 0, sizeof(tmp));
	flags = r32(&c);
	if (flags & ~T_FLAGS)
		r_fail(&c, "trace: unknown flags");
	n = r_count(&c, MAX_CHAIN, "trace: more than 16 certificates");
	r_str(&c, l != NULL ? l->owner : tmp.owner, OWNER_LEN);
	for (uint32_t i = 0; i < n && c.bad == NULL; i++) {
		uint32_t clen = r32(&c);
		const unsigned char *der;

		if (clen < 1 || clen > MAX_CERT)
			r_fail(&c, "trace: a certificate of 0 or more than "
			           "16384 octets");
		der = r_bytes(&c, clen);
		if (der != NULL && l != NULL) {
			l->chain[i].data = der;
			l->chain[i].len = clen;
			l->nchain = i + 1;
		}
	}
	if (flags & T_DNS)
		r_dns(&c, l);
	if (flags & T_DANE)
		r_dane(&c, l, n);
	if (c.bad == NULL && c.left != 0)
		r_fail(&c, "trace: octets after its end");
	if (l != NULL)
		l->flags = flags;
	return c.bad;
}

const char *tp_pool_trace_check(const unsigned char *p, size_t len)
{
	return parse(p, len, NULL);
}

int tp_pool_trace_load(const unsigned char *p, size_t len)
{
	struct loaded l;
	const char *bad;

	memset(&l, 0, sizeof(l));
	if (len == 0)
		return 0;
	bad = parse(p, len, &l);
	if (bad != NULL) {
		load_free(&l);
		errno = EPROTO;
		return -1;
	}
	tp_trace_chain(l.chain, l.nchain);
	if (l.dns != NULL || l.dane != NULL)
		tp_trace_keep(l.owner, l.dns, l.dane); /* takes them */
	if (l.flags & T_CACHE)
		tp_trace_cached(l.owner);
	else if (l.dns == NULL && l.dane == NULL && l.owner[0] != '\0')
		tp_trace_keep(l.owner, NULL, NULL);
	return 0;
}
