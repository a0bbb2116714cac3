/*
 * The fast check of a positive answer with kept zone keys (rrsig.c):
 *   - replies made here and signed here with GnuTLS (ECDSA P-256,
 *     Ed25519), each changed in one way that must not verify: a changed
 *     rdata octet, an RR added to the RRset, expired and not yet valid
 *     signatures, a wrong signer, a wrong key tag, keys without the ZONE
 *     flag or revoked, a wildcard's label count, truncated and garbled
 *     rdata, an RRSIG over another type; owner names in another case
 *     verify (RFC 4034 section 6.2);
 *   - zones signed by ldns-signzone (another implementation) with each
 *     algorithm rrsig.c handles, names in MX and SRV rdata in upper case;
 *   - real replies of NSD for the served zones (compressed names), and
 *     those of bogus.test and expired.test.
 */
#include <arpa/inet.h>
#include <getdns/getdns.h>
#include <getdns/getdns_extra.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "testutil.h"

#define TLSA 52
#define ZONE "example.test."
#define NAME "_443._tcp.a.example.test."

/* --- the kept keys: a few zones and their keys --- */

struct ring {
	size_t n;
	const char *zone[4];
	struct tp_zkeys *keys[4];
};

static struct tp_zkeys *ring_for(void *arg, const char *signer)
{
	struct ring *r = arg;

	for (size_t i = 0; i < r->n; i++)
		if (tp_name_equal(r->zone[i], signer))
			return tp_zkeys_ref(r->keys[i]);
	return NULL;
}

static void ring_free(struct ring *r)
{
	for (size_t i = 0; i < r->n; i++)
		tp_zkeys_free(r->keys[i]);
	r->n = 0;
}

/* The keys of one DNSKEY rdata. */
static struct tp_zkeys *keys_of_rdata(const char *zone, const unsigned char *rd,
                                      size_t len)
{
	getdns_list *l = getdns_list_create();
	getdns_dict *rr = getdns_dict_create();
	getdns_bindata b = {len, (uint8_t *)rd};
	struct tp_zkeys *z;
	unsigned char w[256];
	getdns_bindata nb = {0, w};
	size_t n = 0;
	const char *p = zone;

	/* the owner, which tp_zkeys_new() does not read */
	while (*p != '\0' && strcmp(p, ".") != 0) {
		const char *d = strchr(p, '.');
		size_t l1 = d ? (size_t)(d - p) : strlen(p);

		w[n++] = (unsigned char)l1;
		memcpy(w + n, p, l1);
		n += l1;
		p += l1 + (d != NULL);
	}
	w[n++] = 0;
	nb.size = n;
	ck_assert_int_eq(getdns_dict_set_int(rr, "type", 48), 0);
	ck_assert_int_eq(getdns_dict_set_bindata(rr, "name", &nb), 0);
	ck_assert_int_eq(getdns_dict_set_bindata(rr, "/rdata/rdata_raw", &b),
	                 0);
	ck_assert_int_eq(getdns_list_set_dict(l, 0, rr), 0);
	z = tp_zkeys_new(l);
	ck_assert_ptr_nonnull(z);
	getdns_dict_destroy(rr);
	getdns_list_destroy(l);
	return z;
}

/* --- a signer made here --- */

struct signer {
	gnutls_privkey_t priv;
	gnutls_sign_algorithm_t sa;
	int alg;
	unsigned char dnskey[4 + 96];
	size_t dklen;
	uint16_t tag;
};

/* d as an n-octet big-endian number (DER integers may have a leading
 * zero). */
static void put_fixed(unsigned char *out, const gnutls_datum_t *d, size_t n)
{
	const unsigned char *p = d->data;
	size_t len = d->size;

	while (len > n && *p == 0) {
		p++;
		len--;
	}
	ck_assert_uint_le(len, n);
	memset(out, 0, n - len);
	memcpy(out + n - len, p, len);
}

static void make_signer(struct signer *s, int alg, unsigned flags)
{
	gnutls_pubkey_t pub;
	gnutls_datum_t x, y;
	gnutls_ecc_curve_t c;

	memset(s, 0, sizeof(*s));
	s->alg = alg;
	ck_assert_int_eq(gnutls_privkey_init(&s->priv), 0);
	if (alg == 13)
		ck_assert_int_eq(gnutls_privkey_generate(
		                         s->priv, GNUTLS_PK_ECDSA,
		                         GNUTLS_CURVE_TO_BITS(
		                                 GNUTLS_ECC_CURVE_SECP256R1),
		                         0),
		                 0);
	else
		ck_assert_int_eq(
		        gnutls_privkey_generate(
		                s->priv, GNUTLS_PK_EDDSA_ED25519, 256, 0),
		        0);
	s->sa = alg == 13 ? GNUTLS_SIGN_ECDSA_SHA256
	                  : GNUTLS_SIGN_EDDSA_ED25519;
	ck_assert_int_eq(gnutls_pubkey_init(&pub), 0);
	ck_assert_int_eq(gnutls_pubkey_import_privkey(pub, s->priv, 0, 0), 0);
	ck_assert_int_eq(gnutls_pubkey_export_ecc_raw2(
	                         pub, &c, &x, &y, GNUTLS_EXPORT_FLAG_NO_LZ),
	                 0);
	s->dnskey[0] = (unsigned char)(flags >> 8);
	s->dnskey[1] = (unsigned char)flags;
	s->dnskey[2] = 3;
	s->dnskey[3] = (unsigned char)alg;
	if (alg == 13) {
		put_fixed(s->dnskey + 4, &x, 32);
		put_fixed(s->dnskey + 36, &y, 32);
		s->dklen = 4 + 64;
		gnutls_free(y.data);
	} else {
		put_fixed(s->dnskey + 4, &x, 32);
		s->dklen = 4 + 32;
	}
	gnutls_free(x.data);
	gnutls_pubkey_deinit(pub);
	s->tag = tp_key_tag(s->dnskey, s->dklen);
}

static size_t wire(const char *name, unsigned char *out)
{
	size_t n = 0;
	const char *p = name;

	while (*p != '\0' && strcmp(p, ".") != 0) {
		const char *d = strchr(p, '.');
		size_t l = d ? (size_t)(d - p) : strlen(p);

		out[n++] = (unsigned char)l;
		memcpy(out + n, p, l);
		n += l;
		p += l + (d != NULL);
	}
	out[n++] = 0;
	return n;
}

static void lower_wire(unsigned char *w, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (w[i] >= 'A' && w[i] <= 'Z')
			w[i] += 32;
}

struct rd {
	const unsigned char *p;
	size_t n;
};

static int rd_cmp(const void *a, const void *b)
{
	const struct rd *x = a, *y = b;
	size_t n = x->n < y->n ? x->n : y->n;
	int c = memcmp(x->p, y->p, n);

	return c != 0 ? c : (x->n > y->n) - (x->n < y->n);
}

struct sigspec {
	uint16_t covered;
	int labels;       /* -1: the owner's */
	int32_t inc, exp; /* from now */
	int tagdelta;
	const char *signer;
	uint32_t ttl;
};

static const struct sigspec GOOD = {TLSA, -1, -3600, 86400, 0, ZONE, 300};

/* An RRSIG rdata by s over the RRset (owner, type) of n rdatas, made as
 * RFC 4034 section 3.1.8.1 says; its length. */
static size_t make_rrsig(const struct signer *s, const struct sigspec *sp,
                         const char *owner, uint16_t type, const struct rd *rds,
                         size_t n, unsigned char *out)
{
	unsigned char data[4096], ow[256];
	struct rd sorted[8];
	uint32_t now = (uint32_t)time(NULL), inc = now + (uint32_t)sp->inc,
	         exp = now + (uint32_t)sp->exp;
	size_t len, olen = wire(owner, ow), i;
	unsigned labels = 0;
	gnutls_datum_t d, sig;

	for (i = 0; ow[i] != 0; i += 1 + ow[i])
		labels++;
	lower_wire(ow, olen);
	out[0] = (unsigned char)(sp->covered >> 8);
	out[1] = (unsigned char)sp->covered;
	out[2] = (unsigned char)s->alg;
	out[3] =
	        (unsigned char)(sp->labels < 0 ? labels : (unsigned)sp->labels);
	out[4] = (unsigned char)(sp->ttl >> 24);
	out[5] = (unsigned char)(sp->ttl >> 16);
	out[6] = (unsigned char)(sp->ttl >> 8);
	out[7] = (unsigned char)sp->ttl;
	out[8] = (unsigned char)(exp >> 24);
	out[9] = (unsigned char)(exp >> 16);
	out[10] = (unsigned char)(exp >> 8);
	out[11] = (unsigned char)exp;
	out[12] = (unsigned char)(inc >> 24);
	out[13] = (unsigned char)(inc >> 16);
	out[14] = (unsigned char)(inc >> 8);
	out[15] = (unsigned char)inc;
	out[16] = (unsigned char)((s->tag + sp->tagdelta) >> 8);
	out[17] = (unsigned char)(s->tag + sp->tagdelta);
	len = 18 + wire(sp->signer, out + 18);
	memcpy(data, out, len);
	lower_wire(data + 18, len - 18);
	memcpy(sorted, rds, n * sizeof(*rds));
	qsort(sorted, n, sizeof(*sorted), rd_cmp);
	d.size = (unsigned)len;
	for (i = 0; i < n; i++) {
		unsigned char *p = data + d.size;

		memcpy(p, ow, olen);
		p += olen;
		p[0] = (unsigned char)(type >> 8);
		p[1] = (unsigned char)type;
		p[2] = 0;
		p[3] = 1;
		memcpy(p + 4, out + 4, 4);
		p[8] = (unsigned char)(sorted[i].n >> 8);
		p[9] = (unsigned char)sorted[i].n;
		memcpy(p + 10, sorted[i].p, sorted[i].n);
		d.size += (unsigned)(olen + 10 + sorted[i].n);
	}
	d.data = data;
	ck_assert_int_eq(gnutls_privkey_sign_data2(s->priv, s->sa, 0, &d, &sig),
	                 0);
	if (s->alg == 13) {
		gnutls_datum_t r, ss;

		ck_assert_int_eq(gnutls_decode_rs_value(&sig, &r, &ss), 0);
		put_fixed(out + len, &r, 32);
		put_fixed(out + len + 32, &ss, 32);
		len += 64;
		gnutls_free(r.data);
		gnutls_free(ss.data);
	} else {
		memcpy(out + len, sig.data, sig.size);
		len += sig.size;
	}
	gnutls_free(sig.data);
	return len;
}

/* --- replies made here --- */

struct msg {
	unsigned char b[8192];
	size_t len;
	size_t ttl[16]; /* where the answer records' TTLs are */
	unsigned nttl;
};

static void msg_start(struct msg *m, const char *qname, uint16_t qtype,
                      int rcode)
{
	memset(m, 0, sizeof(*m));
	m->b[2] = 0x84; /* QR AA */
	m->b[3] = (unsigned char)rcode;
	m->b[5] = 1;
	m->len = 12 + wire(qname, m->b + 12);
	m->b[m->len++] = (unsigned char)(qtype >> 8);
	m->b[m->len++] = (unsigned char)qtype;
	m->b[m->len++] = 0;
	m->b[m->len++] = 1;
}

/* An answer record; the offset of its rdata. */
static size_t msg_rr(struct msg *m, const char *owner, uint16_t type,
                     const unsigned char *rd, size_t n)
{
	unsigned an = (unsigned)m->b[6] << 8 | m->b[7];
	unsigned char *p;

	m->len += wire(owner, m->b + m->len);
	p = m->b + m->len;
	if (m->nttl < 16)
		m->ttl[m->nttl++] = m->len + 4;
	p[0] = (unsigned char)(type >> 8);
	p[1] = (unsigned char)type;
	p[2] = 0;
	p[3] = 1;
	p[4] = p[5] = 0;
	p[6] = 1;
	p[7] = 0x2c; /* 300 */
	p[8] = (unsigned char)(n >> 8);
	p[9] = (unsigned char)n;
	memcpy(p + 10, rd, n);
	m->len += 10 + n;
	an++;
	m->b[6] = (unsigned char)(an >> 8);
	m->b[7] = (unsigned char)an;
	return m->len - n;
}

static const unsigned char TLSA1[] = {3, 1, 1, 0xaa, 0xbb, 0xcc, 0xdd};
static const unsigned char TLSA2[] = {2, 0, 1, 0x11, 0x22};

struct fix {
	struct signer s;
	struct ring ring;
	struct rd rds[2];
	unsigned char sig[512];
	size_t siglen;
};

static void fix_new(struct fix *f, int alg, unsigned flags)
{
	make_signer(&f->s, alg, flags);
	f->ring.n = 1;
	f->ring.zone[0] = ZONE;
	f->ring.keys[0] = keys_of_rdata(ZONE, f->s.dnskey, f->s.dklen);
	/* in the reply the larger rdata first: rrsig.c sorts them */
	f->rds[0] = (struct rd){TLSA1, sizeof(TLSA1)};
	f->rds[1] = (struct rd){TLSA2, sizeof(TLSA2)};
}

static void fix_free(struct fix *f)
{
	ring_free(&f->ring);
	gnutls_privkey_deinit(f->s.priv);
}

/* The reply to (NAME, TLSA) with the two TLSA records and an RRSIG made
 * per sp. */
static void reply(struct fix *f, const struct sigspec *sp, struct msg *m)
{
	f->siglen = make_rrsig(&f->s, sp, NAME, TLSA, f->rds, 2, f->sig);
	msg_start(m, NAME, TLSA, 0);
	msg_rr(m, NAME, TLSA, TLSA1, sizeof(TLSA1));
	msg_rr(m, NAME, TLSA, TLSA2, sizeof(TLSA2));
	msg_rr(m, NAME, 46, f->sig, f->siglen);
}

static int check(struct fix *f, const struct msg *m)
{
	return tp_rrsig_check(m->b, m->len, NAME, TLSA, ring_for, &f->ring,
	                      time(NULL));
}

/* A changed octet anywhere in the rdata of a signed RR; an RR added to
 * the RRset. */
START_TEST(changed_rrset_is_bad)
{
	struct fix f;
	struct msg m, m2;
	size_t at;

	fix_new(&f, 13, 257);
	f.siglen = make_rrsig(&f.s, &GOOD, NAME, TLSA, f.rds, 2, f.sig);
	for (size_t i = 0; i < sizeof(TLSA1); i++) {
		msg_start(&m, NAME, TLSA, 0);
		at = msg_rr(&m, NAME, TLSA, TLSA1, sizeof(TLSA1));
		msg_rr(&m, NAME, TLSA, TLSA2, sizeof(TLSA2));
		msg_rr(&m, NAME, 46, f.sig, f.siglen);
		m.b[at + i] ^= 0x20;
		ck_assert_int_eq(check(&f, &m), TP_FAST_BAD);
	}
	/* an unsigned record injected into the RRset */
	msg_start(&m2, NAME, TLSA, 0);
	msg_rr(&m2, NAME, TLSA, TLSA1, sizeof(TLSA1));
	msg_rr(&m2, NAME, TLSA, TLSA2, sizeof(TLSA2));
	msg_rr(&m2, NAME, TLSA, (const unsigned char *)"\3\1\1\xee", 4);
	msg_rr(&m2, NAME, 46, f.sig, f.siglen);
	ck_assert_int_eq(check(&f, &m2), TP_FAST_BAD);
	/* one left out */
	msg_start(&m2, NAME, TLSA, 0);
	msg_rr(&m2, NAME, TLSA, TLSA1, sizeof(TLSA1));
	msg_rr(&m2, NAME, 46, f.sig, f.siglen);
	ck_assert_int_eq(check(&f, &m2), TP_FAST_BAD);
	/* a changed octet of the signature */
	reply(&f, &GOOD, &m);
	m.b[m.len - 1] ^= 1;
	ck_assert_int_eq(check(&f, &m), TP_FAST_BAD);
	/* the original TTL */
	reply(&f, &GOOD, &m);
	m.b[m.len - f.siglen + 7] ^= 1;
	ck_assert_int_eq(check(&f, &m), TP_FAST_BAD);
	/* and unchanged, it verifies */
	reply(&f, &GOOD, &m);
	ck_assert_int_eq(check(&f, &m), 1);
	fix_free(&f);
}
END_TEST

/* RFC 4034 section 3.1.5, RFC 1982 */
START_TEST(validity_period)
{
	struct fix f;
	struct msg m;
	struct sigspec sp = GOOD;

	fix_new(&f, 13, 257);
	sp.inc = -86400;
	sp.exp = -10; /* expired */
	reply(&f, &sp, &m);
	ck_assert_int_eq(check(&f, &m), TP_FAST_BAD);
	sp.inc = 600; /* not yet valid */
	sp.exp = 86400;
	reply(&f, &sp, &m);
	ck_assert_int_eq(check(&f, &m), TP_FAST_BAD);
	/* expiration before inception, both around now */
	sp.inc = 10;
	sp.exp = -10;
	reply(&f, &sp, &m);
	ck_assert_int_eq(check(&f, &m), TP_FAST_BAD);
	/* an expiration far "after" now in unsigned terms is before it in
	 * serial number arithmetic */
	sp.inc = -3600;
	sp.exp = INT32_MIN + 5;
	reply(&f, &sp, &m);
	ck_assert_int_eq(check(&f, &m), TP_FAST_BAD);
	sp.exp = 86400;
	reply(&f, &sp, &m);
	ck_assert_int_eq(check(&f, &m), 1);
	fix_free(&f);
}
END_TEST

/* The signer: not a zone enclosing the name, or one whose keys are not
 * kept, or kept with other keys. */
START_TEST(wrong_signer)
{
	struct fix f;
	struct msg m;
	struct sigspec sp = GOOD;
	struct signer other;

	fix_new(&f, 13, 257);
	sp.signer = "other.test.";
	reply(&f, &sp, &m);
	ck_assert_int_eq(check(&f, &m), TP_FAST_BAD);
	sp.signer = "b.example.test."; /* below, not enclosing */
	reply(&f, &sp, &m);
	ck_assert_int_ne(check(&f, &m), 1);
	sp.signer = "test."; /* encloses, not kept */
	reply(&f, &sp, &m);
	ck_assert_int_eq(check(&f, &m), TP_FAST_UNDECIDED);
	/* test. kept with another key of the same algorithm: the tag does
	 * not match, or the signature does not */
	make_signer(&other, 13, 257);
	f.ring.zone[1] = "test.";
	f.ring.keys[1] = keys_of_rdata("test.", other.dnskey, other.dklen);
	f.ring.n = 2;
	ck_assert_int_ne(check(&f, &m), 1);
	gnutls_privkey_deinit(other.priv);
	/* the signer's name in upper case is the same zone */
	sp.signer = "EXAMPLE.Test.";
	reply(&f, &sp, &m);
	ck_assert_int_eq(check(&f, &m), 1);
	fix_free(&f);
}
END_TEST

START_TEST(wrong_key)
{
	struct fix f;
	struct msg m;
	struct sigspec sp = GOOD;

	/* a key tag that no kept key has */
	fix_new(&f, 13, 257);
	sp.tagdelta = 1;
	reply(&f, &sp, &m);
	ck_assert_int_ne(check(&f, &m), 1);
	fix_free(&f);
	/* keys without the ZONE flag, revoked (RFC 5011), of another
	 * protocol: not used */
	fix_new(&f, 13, 1);
	reply(&f, &GOOD, &m);
	ck_assert_int_eq(check(&f, &m), TP_FAST_UNDECIDED);
	fix_free(&f);
	fix_new(&f, 13, 257 | 0x80);
	reply(&f, &GOOD, &m);
	ck_assert_int_eq(check(&f, &m), TP_FAST_UNDECIDED);
	fix_free(&f);
	/* and a signature by another key with the same tag */
	fix_new(&f, 13, 257);
	{
		struct signer s2;
		struct fix g;

		make_signer(&s2, 13, 257);
		g = f;
		g.s = s2;
		g.s.tag = f.s.tag; /* the tag of f's key */
		reply(&g, &GOOD, &m);
		ck_assert_int_eq(check(&f, &m), TP_FAST_BAD);
		gnutls_privkey_deinit(s2.priv);
	}
	fix_free(&f);
}
END_TEST

/* RFC 4035 section 5.3.1: the label count.  Fewer labels (a wildcard
 * expansion) are for getdns; more are wrong. */
START_TEST(label_count)
{
	struct fix f;
	struct msg m;
	struct sigspec sp = GOOD;

	fix_new(&f, 13, 257);
	sp.labels = 4;
	reply(&f, &sp, &m);
	ck_assert_int_eq(check(&f, &m), TP_FAST_UNDECIDED);
	sp.labels = 6;
	reply(&f, &sp, &m);
	ck_assert_int_ne(check(&f, &m), 1);
	sp.labels = 0;
	reply(&f, &sp, &m);
	ck_assert_int_ne(check(&f, &m), 1);
	fix_free(&f);
}
END_TEST

/* Truncated and garbled records, a signature of the wrong length. */
START_TEST(malformed)
{
	struct fix f;
	struct msg m, t;
	size_t sigat, cut;

	fix_new(&f, 13, 257);
	reply(&f, &GOOD, &m);
	/* the message cut anywhere */
	for (cut = 0; cut < m.len; cut++)
		ck_assert_int_ne(tp_rrsig_check(m.b, cut, NAME, TLSA, ring_for,
		                                &f.ring, time(NULL)),
		                 1);
	/* the RRSIG's rdata shorter (the signature cut), or longer (an
	 * octet more) */
	for (size_t less = 1; less < f.siglen; less += 7) {
		msg_start(&t, NAME, TLSA, 0);
		msg_rr(&t, NAME, TLSA, TLSA1, sizeof(TLSA1));
		msg_rr(&t, NAME, TLSA, TLSA2, sizeof(TLSA2));
		msg_rr(&t, NAME, 46, f.sig, f.siglen - less);
		ck_assert_int_ne(check(&f, &t), 1);
	}
	f.sig[f.siglen] = 0;
	msg_start(&t, NAME, TLSA, 0);
	msg_rr(&t, NAME, TLSA, TLSA1, sizeof(TLSA1));
	msg_rr(&t, NAME, TLSA, TLSA2, sizeof(TLSA2));
	sigat = msg_rr(&t, NAME, 46, f.sig, f.siglen + 1);
	ck_assert_int_ne(check(&f, &t), 1);
	/* an rdlength past the end */
	t.b[sigat - 2] = 0xff;
	ck_assert_int_ne(check(&f, &t), 1);
	/* a compression pointer to itself in the owner, and one forwards */
	msg_start(&t, NAME, TLSA, 0);
	t.b[t.len] = 0xc0;
	t.b[t.len + 1] = (unsigned char)t.len;
	t.len += 2;
	memcpy(t.b + t.len, "\0\64\0\1\0\0\1\54\0\1\3", 11);
	t.len += 11;
	t.b[7] = 2;
	ck_assert_int_ne(check(&f, &t), 1);
	t.b[t.len - 12] = (unsigned char)(t.len - 10);
	ck_assert_int_ne(check(&f, &t), 1);
	/* garbage: every octet of the reply changed in turn but the
	 * TTLs (not signed: RFC 4035 section 5.3.3 caps them) */
	for (size_t i = 12; i < m.len; i++) {
		int ttl = 0;

		for (unsigned j = 0; j < m.nttl; j++)
			ttl |= i >= m.ttl[j] && i < m.ttl[j] + 4;
		if (ttl)
			continue;
		t = m;
		t.b[i] ^= 0x5a;
		ck_assert_int_ne(check(&f, &t), 1);
	}
	fix_free(&f);
}
END_TEST

/* What is not a plain answer is not decided here. */
START_TEST(not_plain_answers)
{
	struct fix f;
	struct msg m;
	struct sigspec sp = GOOD;
	size_t at;

	fix_new(&f, 13, 257);
	/* an RRSIG over another type, made over the TLSA records */
	sp.covered = 1;
	reply(&f, &sp, &m);
	ck_assert_int_ne(check(&f, &m), 1);
	/* and with its type covered changed after signing */
	reply(&f, &GOOD, &m);
	m.b[m.len - f.siglen + 1] = 1;
	ck_assert_int_ne(check(&f, &m), 1);
	/* a CNAME before the answer */
	reply(&f, &GOOD, &m);
	msg_rr(&m, NAME, 5, (const unsigned char *)"\1x\0", 3);
	ck_assert_int_eq(check(&f, &m), TP_FAST_UNDECIDED);
	/* a record of another owner */
	reply(&f, &GOOD, &m);
	msg_rr(&m, "_443._tcp.b.example.test.", TLSA, TLSA2, sizeof(TLSA2));
	ck_assert_int_eq(check(&f, &m), TP_FAST_UNDECIDED);
	/* an RRset with a duplicate record */
	reply(&f, &GOOD, &m);
	msg_rr(&m, NAME, TLSA, TLSA2, sizeof(TLSA2));
	ck_assert_int_ne(check(&f, &m), 1);
	/* NXDOMAIN, truncation, another question */
	reply(&f, &GOOD, &m);
	m.b[3] = 3;
	ck_assert_int_eq(check(&f, &m), TP_FAST_UNDECIDED);
	reply(&f, &GOOD, &m);
	m.b[2] |= 0x02;
	ck_assert_int_eq(check(&f, &m), TP_FAST_UNDECIDED);
	reply(&f, &GOOD, &m);
	ck_assert_int_eq(tp_rrsig_check(m.b, m.len, "_443._tcp.b.example.test.",
	                                TLSA, ring_for, &f.ring, time(NULL)),
	                 TP_FAST_UNDECIDED);
	ck_assert_int_eq(tp_rrsig_check(m.b, m.len, NAME, 1, ring_for, &f.ring,
	                                time(NULL)),
	                 TP_FAST_UNDECIDED);
	/* no RRSIG */
	msg_start(&m, NAME, TLSA, 0);
	msg_rr(&m, NAME, TLSA, TLSA1, sizeof(TLSA1));
	at = msg_rr(&m, NAME, TLSA, TLSA2, sizeof(TLSA2));
	(void)at;
	ck_assert_int_eq(check(&f, &m), TP_FAST_UNDECIDED);
	fix_free(&f);
}
END_TEST

/* Names compare in any case (RFC 4034 section 6.2, RFC 4343). */
START_TEST(owner_case)
{
	struct fix f;
	struct msg m;
	const char *upper = "_443._TCP.A.Example.TEST.";

	fix_new(&f, 13, 257);
	f.siglen = make_rrsig(&f.s, &GOOD, NAME, TLSA, f.rds, 2, f.sig);
	msg_start(&m, upper, TLSA, 0);
	msg_rr(&m, upper, TLSA, TLSA1, sizeof(TLSA1));
	msg_rr(&m, "_443._tcp.a.EXAMPLE.test.", TLSA, TLSA2, sizeof(TLSA2));
	msg_rr(&m, upper, 46, f.sig, f.siglen);
	ck_assert_int_eq(check(&f, &m), 1);
	ck_assert_int_eq(tp_rrsig_check(m.b, m.len, upper, TLSA, ring_for,
	                                &f.ring, time(NULL)),
	                 1);
	fix_free(&f);
}
END_TEST

/* Two RRSIGs: one that verifies is enough; none, none. */
START_TEST(several_rrsigs)
{
	struct fix f;
	struct msg m;
	unsigned char bad[512];
	size_t badlen;
	struct sigspec sp = GOOD;

	fix_new(&f, 15, 257);
	sp.exp = -1;
	sp.inc = -100;
	badlen = make_rrsig(&f.s, &sp, NAME, TLSA, f.rds, 2, bad);
	reply(&f, &GOOD, &m);
	msg_rr(&m, NAME, 46, bad, badlen);
	ck_assert_int_eq(check(&f, &m), 1);
	msg_start(&m, NAME, TLSA, 0);
	msg_rr(&m, NAME, 46, bad, badlen);
	msg_rr(&m, NAME, TLSA, TLSA1, sizeof(TLSA1));
	msg_rr(&m, NAME, TLSA, TLSA2, sizeof(TLSA2));
	msg_rr(&m, NAME, 46, f.sig, f.siglen);
	ck_assert_int_eq(check(&f, &m), 1);
	f.sig[f.siglen - 3] ^= 4;
	msg_start(&m, NAME, TLSA, 0);
	msg_rr(&m, NAME, TLSA, TLSA1, sizeof(TLSA1));
	msg_rr(&m, NAME, TLSA, TLSA2, sizeof(TLSA2));
	msg_rr(&m, NAME, 46, bad, badlen);
	msg_rr(&m, NAME, 46, f.sig, f.siglen);
	ck_assert_int_eq(check(&f, &m), TP_FAST_BAD);
	fix_free(&f);
}
END_TEST

/* RFC 4034 appendix B, against the tags ldns-keygen names its keys by. */
START_TEST(key_tag)
{
	static const unsigned char k[] = {1, 0, 3, 8, 3, 1, 0, 1, 0xc0};

	/* by hand: 0x0100 + 0x0308 + 0x0301 + 0x0001 + 0xc000 */
	ck_assert_uint_eq(tp_key_tag(k, sizeof(k)),
	                  (0x0100 + 0x0308 + 0x0301 + 0x0001 + 0xc000) &
	                          0xffff);
}
END_TEST

/* --- through the keyring (dnschain.c) --- */

static void set_owner(getdns_dict *rr, const char *zone)
{
	unsigned char w[256];
	getdns_bindata b = {0, w};

	b.size = wire(zone, w);
	ck_assert_int_eq(getdns_dict_set_bindata(rr, "name", &b), 0);
}

/* Keep s's key as zone's DNSKEY set, with an RRSIG over it valid for a
 * day (the keyring reads its times; it checks no signature). */
static void keep(struct tp_keyring *k, const char *zone, const struct signer *s)
{
	getdns_list *chain = getdns_list_create();
	getdns_dict *key = getdns_dict_create(), *sig = getdns_dict_create();
	getdns_bindata rd = {s->dklen, (uint8_t *)s->dnskey};
	time_t now = time(NULL);

	set_owner(key, zone);
	set_owner(sig, zone);
	ck_assert_int_eq(getdns_dict_set_int(key, "type", 48), 0);
	ck_assert_int_eq(getdns_dict_set_int(key, "ttl", 3600), 0);
	ck_assert_int_eq(getdns_dict_set_bindata(key, "/rdata/rdata_raw", &rd),
	                 0);
	ck_assert_int_eq(getdns_dict_set_int(sig, "type", 46), 0);
	ck_assert_int_eq(getdns_dict_set_int(sig, "ttl", 3600), 0);
	ck_assert_int_eq(getdns_dict_set_int(sig, "/rdata/type_covered", 48),
	                 0);
	ck_assert_int_eq(getdns_dict_set_int(sig, "/rdata/signature_inception",
	                                     (uint32_t)(now - 60)),
	                 0);
	ck_assert_int_eq(getdns_dict_set_int(sig, "/rdata/signature_expiration",
	                                     (uint32_t)(now + 86400)),
	                 0);
	ck_assert_int_eq(getdns_list_set_dict(chain, 0, key), 0);
	ck_assert_int_eq(getdns_list_set_dict(chain, 1, sig), 0);
	ck_assert_int_eq(tp_keyring_learn(k, chain, now), 0);
	ck_assert_int_gt(tp_keyring_until(k, zone), now);
	getdns_dict_destroy(key);
	getdns_dict_destroy(sig);
	getdns_list_destroy(chain);
}

/* The keyring hands rrsig.c the keys of exactly the signer, while they
 * are kept, and none when a kept zone lies between the signer and the
 * name (RFC 4035 section 5.3.1: the signer is the zone of the RRset). */
START_TEST(keyring_keys_of_the_signer)
{
	struct fix f;
	struct signer child;
	struct msg m;
	struct tp_keyring *k = tp_keyring_new(3600);
	time_t now = time(NULL);

	fix_new(&f, 13, 257);
	make_signer(&child, 15, 257);
	reply(&f, &GOOD, &m);
	/* nothing kept */
	ck_assert_int_eq(tp_keyring_check(k, m.b, m.len, NAME, TLSA, now),
	                 TP_FAST_UNDECIDED);
	ck_assert_int_eq(tp_keyring_covers(k, NAME, now), 0);
	keep(k, ZONE, &f.s);
	ck_assert_int_eq(tp_keyring_covers(k, NAME, now), 1);
	ck_assert_int_eq(tp_keyring_check(k, m.b, m.len, NAME, TLSA, now), 1);
	/* past the keys' time */
	ck_assert_int_eq(
	        tp_keyring_check(k, m.b, m.len, NAME, TLSA, now + 7200),
	        TP_FAST_UNDECIDED);
	/* a changed rdata octet */
	m.b[m.ttl[1] + 6] ^= 1;
	ck_assert_int_eq(tp_keyring_check(k, m.b, m.len, NAME, TLSA, now),
	                 TP_FAST_BAD);
	m.b[m.ttl[1] + 6] ^= 1;
	/* a.example.test. kept as a zone of its own: example.test.'s key
	 * does not sign below it */
	keep(k, "a.example.test.", &child);
	ck_assert_int_eq(tp_keyring_check(k, m.b, m.len, NAME, TLSA, now),
	                 TP_FAST_UNDECIDED);
	/* whose own signature is taken */
	{
		struct fix g = f;
		struct sigspec sp = GOOD;

		g.s = child;
		sp.signer = "a.example.test.";
		reply(&g, &sp, &m);
		ck_assert_int_eq(
		        tp_keyring_check(k, m.b, m.len, NAME, TLSA, now), 1);
	}
	/* the zone's keys replaced (a rollover): the old key's signatures
	 * are not taken */
	keep(k, "a.example.test.", &f.s);
	ck_assert_int_ne(tp_keyring_check(k, m.b, m.len, NAME, TLSA, now), 1);
	tp_keyring_free(k);
	gnutls_privkey_deinit(child.priv);
	fix_free(&f);
}
END_TEST

/* --- zones signed by ldns-signzone --- */

static void sh(const char *cmd)
{
	int rc = system(cmd);

	ck_assert_msg(rc == 0, "%s: %d", cmd, rc);
}

/* rrs of (owner, type) and RRSIGs over them in list, as a reply. */
static void reply_from(getdns_list *list, const char *owner, uint16_t type,
                       struct msg *m)
{
	size_t i, n = 0;
	unsigned an = 0;

	msg_start(m, owner, type, 0);
	getdns_list_get_length(list, &n);
	for (i = 0; i < n; i++) {
		getdns_dict *rr;
		getdns_bindata *nm;
		uint32_t t, cov = 0;
		char *s = NULL;
		uint8_t *w = NULL;
		size_t wl = 0;

		ck_assert_int_eq(getdns_list_get_dict(list, i, &rr), 0);
		getdns_dict_get_int(rr, "type", &t);
		getdns_dict_get_int(rr, "/rdata/type_covered", &cov);
		ck_assert_int_eq(getdns_dict_get_bindata(rr, "name", &nm), 0);
		ck_assert_int_eq(getdns_convert_dns_name_to_fqdn(nm, &s), 0);
		if (tp_name_equal(s, owner) &&
		    (t == type || (t == 46 && cov == type))) {
			ck_assert_int_eq(getdns_rr_dict2wire(rr, &w, &wl), 0);
			memcpy(m->b + m->len, w, wl);
			m->len += wl;
			an++;
			free(w);
		}
		free(s);
	}
	ck_assert_uint_gt(an, 1);
	m->b[6] = (unsigned char)(an >> 8);
	m->b[7] = (unsigned char)an;
}

START_TEST(ldns_signed_algorithms)
{
	static const char *const algs[] = {"RSASHA256",       "RSASHA512",
	                                   "ECDSAP256SHA256", "ECDSAP384SHA384",
	                                   "ED25519",         "ED448"};
	static const struct {
		const char *owner;
		uint16_t type;
	} q[] = {{"_443._tcp.www.t.test.", TLSA},
	         {"t.test.", 15},
	         {"_smtp._tcp.t.test.", 33},
	         {"www.t.test.", 16},
	         {"www.t.test.", 1}};
	char dir[] = "/tmp/tlspool-rrsig.XXXXXX", cmd[1024], path[600];

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/t.test", dir);
	{
		FILE *z = fopen(path, "w");

		ck_assert_ptr_nonnull(z);
		fputs("$ORIGIN t.test.\n$TTL 3600\n"
		      "@ IN SOA ns.t.test. h.t.test. 1 3600 900 604800 300\n"
		      "@ IN NS ns.t.test.\n"
		      "@ IN MX 10 MAIL.T.Test.\n"
		      "@ IN MX 20 mx2.OTHER.test.\n"
		      "_smtp._tcp IN SRV 0 5 25 MAIL.t.TEST.\n"
		      "_smtp._tcp IN SRV 1 5 25 b.t.test.\n"
		      "www IN TXT \"one\"\nwww IN TXT \"two\" \"three\"\n"
		      "www IN A 192.0.2.1\nwww IN A 192.0.2.10\n"
		      "www IN A 192.0.2.2\n"
		      "_443._tcp.www IN TLSA 3 1 1 "
		      "00112233445566778899aabbccddeeff00112233445566778899aabb"
		      "ccddeeff\n"
		      "_443._tcp.www IN TLSA 2 0 1 "
		      "ffeeddccbbaa99887766554433221100ffeeddccbbaa998877665544"
		      "33221100\n",
		      z);
		fclose(z);
	}
	for (size_t a = 0; a < sizeof(algs) / sizeof(algs[0]); a++) {
		char key[256] = "", *nl;
		FILE *p, *fp;
		getdns_list *list = NULL, *keys = getdns_list_create();
		struct ring ring = {0};
		size_t i, n = 0, nk = 0;
		unsigned tag = 0;

		snprintf(cmd, sizeof(cmd),
		         "cd %s && rm -f K* && ldns-keygen -a %s -b 2048 -k "
		         "t.test",
		         dir, algs[a]);
		p = popen(cmd, "r");
		ck_assert_ptr_nonnull(p);
		ck_assert_ptr_nonnull(fgets(key, sizeof(key), p));
		pclose(p);
		if ((nl = strchr(key, '\n')) != NULL)
			*nl = '\0';
		ck_assert_int_eq(sscanf(key, "Kt.test.+%*u+%u", &tag), 1);
		snprintf(cmd, sizeof(cmd),
		         "cd %s && ldns-signzone -f t.test.signed t.test %s",
		         dir, key);
		sh(cmd);
		snprintf(path, sizeof(path), "%s/t.test.signed", dir);
		fp = fopen(path, "r");
		ck_assert_ptr_nonnull(fp);
		ck_assert_int_eq(getdns_fp2rr_list(fp, &list, NULL, 3600), 0);
		fclose(fp);
		getdns_list_get_length(list, &n);
		for (i = 0; i < n; i++) {
			getdns_dict *rr;
			uint32_t t = 0;
			getdns_bindata *rd;

			getdns_list_get_dict(list, i, &rr);
			getdns_dict_get_int(rr, "type", &t);
			if (t != 48)
				continue;
			ck_assert_int_eq(getdns_dict_get_bindata(
			                         rr, "/rdata/rdata_raw", &rd),
			                 0);
			ck_assert_uint_eq(tp_key_tag(rd->data, rd->size), tag);
			getdns_list_set_dict(keys, nk++, rr);
		}
		ck_assert_uint_eq(nk, 1);
		ring.n = 1;
		ring.zone[0] = "t.test.";
		ring.keys[0] = tp_zkeys_new(keys);
		for (i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
			struct msg m;
			int rv;

			reply_from(list, q[i].owner, q[i].type, &m);
			rv = tp_rrsig_check(m.b, m.len, q[i].owner, q[i].type,
			                    ring_for, &ring, time(NULL));
			ck_assert_msg(rv == 1, "%s: %s %u: %d", algs[a],
			              q[i].owner, q[i].type, rv);
			/* the signature's last octet changed */
			m.b[m.len - 1] ^= 0x10;
			rv = tp_rrsig_check(m.b, m.len, q[i].owner, q[i].type,
			                    ring_for, &ring, time(NULL));
			ck_assert_msg(rv == TP_FAST_BAD, "%s: %s %u: %d",
			              algs[a], q[i].owner, q[i].type, rv);
		}
		/* the keys are not those of another zone */
		ring.zone[0] = "other.test.";
		{
			struct msg m;

			reply_from(list, q[0].owner, q[0].type, &m);
			ck_assert_int_ne(tp_rrsig_check(m.b, m.len, q[0].owner,
			                                q[0].type, ring_for,
			                                &ring, time(NULL)),
			                 1);
		}
		ring_free(&ring);
		getdns_list_destroy(keys);
		getdns_list_destroy(list);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	sh(cmd);
}
END_TEST

/* --- replies of NSD for the served zones --- */

static getdns_context *stub(void)
{
	getdns_context *c = NULL;
	getdns_list *ups = getdns_list_create();
	getdns_dict *d = getdns_dict_create();
	unsigned char a[4] = {127, 0, 0, 1};
	getdns_bindata t = {4, (uint8_t *)"IPv4"}, ad = {4, a};
	const char *port = getenv("TLSPOOL_ZONES_PORT");

	tp_zones_dir();
	ck_assert_ptr_nonnull(port);
	ck_assert_int_eq(getdns_context_create(&c, 0), 0);
	getdns_context_set_resolution_type(c, GETDNS_RESOLUTION_STUB);
	getdns_dict_set_bindata(d, "address_type", &t);
	getdns_dict_set_bindata(d, "address_data", &ad);
	getdns_dict_set_int(d, "port", (uint32_t)atoi(port));
	getdns_list_set_dict(ups, 0, d);
	ck_assert_int_eq(getdns_context_set_upstream_recursive_servers(c, ups),
	                 0);
	ck_assert_int_eq(getdns_context_set_edns_do_bit(c, 1), 0);
	getdns_dict_destroy(d);
	getdns_list_destroy(ups);
	return c;
}

/* The reply to (name, type), in wire form into m. */
static void ask(getdns_context *c, const char *name, uint16_t type,
                struct msg *m)
{
	getdns_dict *r = NULL;
	getdns_bindata *w;

	ck_assert_int_eq(getdns_general_sync(c, name, type, NULL, &r), 0);
	ck_assert_int_eq(getdns_dict_get_bindata(r, "/replies_full/0", &w), 0);
	ck_assert_uint_le(w->size, sizeof(m->b));
	memcpy(m->b, w->data, w->size);
	m->len = w->size;
	getdns_dict_destroy(r);
}

/* The DNSKEYs of zone as served, unvalidated (the test trusts them). */
static struct tp_zkeys *served_keys(getdns_context *c, const char *zone)
{
	getdns_dict *r = NULL;
	getdns_list *ans, *keys = getdns_list_create();
	struct tp_zkeys *z;
	size_t i, n = 0, nk = 0;

	ck_assert_int_eq(getdns_general_sync(c, zone, 48, NULL, &r), 0);
	ck_assert_int_eq(
	        getdns_dict_get_list(r, "/replies_tree/0/answer", &ans), 0);
	getdns_list_get_length(ans, &n);
	for (i = 0; i < n; i++) {
		getdns_dict *rr;
		uint32_t t = 0;

		getdns_list_get_dict(ans, i, &rr);
		getdns_dict_get_int(rr, "type", &t);
		if (t == 48)
			getdns_list_set_dict(keys, nk++, rr);
	}
	ck_assert_uint_gt(nk, 1);
	z = tp_zkeys_new(keys);
	getdns_list_destroy(keys);
	getdns_dict_destroy(r);
	return z;
}

START_TEST(nsd_replies)
{
	getdns_context *c = stub();
	struct ring ring = {3,
	                    {"example.test.", "bogus.test.", "expired.test."},
	                    {NULL, NULL, NULL}};
	struct msg m;
	const char *www = "_443._tcp.www.example.test.";
	time_t now = time(NULL);
	size_t i;

	ring.keys[0] = served_keys(c, "example.test.");
	ring.keys[1] = served_keys(c, "bogus.test.");
	ring.keys[2] = served_keys(c, "expired.test.");
	/* four TLSA records, names compressed */
	ask(c, www, TLSA, &m);
	ck_assert_int_eq(
	        tp_rrsig_check(m.b, m.len, www, TLSA, ring_for, &ring, now), 1);
	/* the question in another case: the owners (pointers to it) too */
	for (i = 12; m.b[i] != 0; i++)
		if (m.b[i] >= 'a' && m.b[i] <= 'z')
			m.b[i] -= 32;
	ck_assert_int_eq(
	        tp_rrsig_check(m.b, m.len, www, TLSA, ring_for, &ring, now), 1);
	/* a record's rdata changed, as on the path */
	ask(c, www, TLSA, &m);
	for (i = 0; i + 4 < m.len; i++)
		if (memcmp(m.b + i, "\x7d\xaf\x26\xcd", 4) == 0) {
			m.b[i + 3] ^= 1;
			break;
		}
	ck_assert_uint_lt(i + 4, m.len);
	ck_assert_int_eq(
	        tp_rrsig_check(m.b, m.len, www, TLSA, ring_for, &ring, now),
	        TP_FAST_BAD);
	/* a week later: expired (the zones are signed for four weeks) */
	ask(c, www, TLSA, &m);
	ck_assert_int_eq(tp_rrsig_check(m.b, m.len, www, TLSA, ring_for, &ring,
	                                now + 40 * 86400),
	                 TP_FAST_BAD);
	ck_assert_int_eq(tp_rrsig_check(m.b, m.len, www, TLSA, ring_for, &ring,
	                                now - 86400),
	                 TP_FAST_BAD);
	/* the served bogus and expired answers */
	ask(c, "_443._tcp.www.bogus.test.", TLSA, &m);
	ck_assert_int_eq(tp_rrsig_check(m.b, m.len, "_443._tcp.www.bogus.test.",
	                                TLSA, ring_for, &ring, now),
	                 TP_FAST_BAD);
	ask(c, "_443._tcp.www.expired.test.", TLSA, &m);
	ck_assert_int_eq(tp_rrsig_check(m.b, m.len,
	                                "_443._tcp.www.expired.test.", TLSA,
	                                ring_for, &ring, now),
	                 TP_FAST_BAD);
	/* a CNAME, a denial: for getdns */
	ask(c, "_443._tcp.alias.example.test.", TLSA, &m);
	ck_assert_int_eq(tp_rrsig_check(m.b, m.len,
	                                "_443._tcp.alias.example.test.", TLSA,
	                                ring_for, &ring, now),
	                 TP_FAST_UNDECIDED);
	ask(c, "_443._tcp.missing.example.test.", TLSA, &m);
	ck_assert_int_eq(tp_rrsig_check(m.b, m.len,
	                                "_443._tcp.missing.example.test.", TLSA,
	                                ring_for, &ring, now),
	                 TP_FAST_UNDECIDED);
	ask(c, "_443._tcp.nodata.example.test.", TLSA, &m);
	ck_assert_int_eq(tp_rrsig_check(m.b, m.len,
	                                "_443._tcp.nodata.example.test.", TLSA,
	                                ring_for, &ring, now),
	                 TP_FAST_UNDECIDED);
	ring_free(&ring);
	getdns_context_destroy(c);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("rrsig");
	TCase *tc = tcase_create("rrsig");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, changed_rrset_is_bad);
	tcase_add_test(tc, validity_period);
	tcase_add_test(tc, wrong_signer);
	tcase_add_test(tc, wrong_key);
	tcase_add_test(tc, label_count);
	tcase_add_test(tc, malformed);
	tcase_add_test(tc, not_plain_answers);
	tcase_add_test(tc, owner_case);
	tcase_add_test(tc, several_rrsigs);
	tcase_add_test(tc, key_tag);
	tcase_add_test(tc, keyring_keys_of_the_signer);
	tcase_add_test(tc, ldns_signed_algorithms);
	tcase_add_test(tc, nsd_replies);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tp_run_suite(suite());
}
