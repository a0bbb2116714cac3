/*
 * A fast check of the common positive answer with kept zone keys
 * (docs/architecture.md, "Cold validation in one query").
 *
 * getdns_validate_dnssec2() turns the reply and the trust anchors into
 * dicts and back, builds a chain, and makes a public key from the DNSKEY
 * for every signature: most of a one-query lookup's time went there.
 * This file verifies the one case that a lookup under a kept zone mostly
 * is, on the reply's wire form and with public keys made once per kept
 * zone: an answer section that holds the RRset of exactly (name, type,
 * IN) and RRSIGs over it, nothing else.  Everything else (a CNAME, a
 * denial, a wildcard expansion, an algorithm not handled here, a type
 * whose rdata holds names not handled here) is "not decided" and the
 * caller validates the reply with getdns as before; so is a signature
 * that does not verify (getdns then says bogus too).  Nothing here makes
 * a reply secure that getdns would not.
 *
 * What is checked (RFC 4035 section 5.3):
 *   - the header: a response (QR), standard query, no truncation, rcode
 *     NOERROR, one question that is (name, type, IN);
 *   - every record of the answer section is owned by name, of class IN,
 *     and of type type or an RRSIG covering type;
 *   - one RRSIG with labels equal to the owner's label count (no wildcard,
 *     RFC 4035 section 5.3.1), a signer that is a kept zone enclosing name
 *     (its keys come from the keyring by that exact name), inception <=
 *     now <= expiration in serial number arithmetic (RFC 1982, RFC 4034
 *     section 3.1.5), and a kept DNSKEY of its algorithm and key tag
 *     (RFC 4034 appendix B) with the ZONE flag, protocol 3, not revoked
 *     (RFC 5011 section 2.1);
 *   - its signature over the canonical form (RFC 4034 sections 3.1.8.1,
 *     6.2, 6.3): the RRSIG rdata without the signature and with the
 *     signer's name in lower case, then each RR with the owner in lower
 *     case, the type, class IN, the RRSIG's original TTL, and the rdata
 *     (names in the rdata of NS, PTR, MX and SRV uncompressed and in
 *     lower case, RFC 4034 section 6.2 and RFC 6840 section 5.1), the RRs
 *     sorted by their rdata; an RRset with two equal records is left to
 *     getdns.
 * Algorithms (RFC 8624 section 3.1): RSASHA256 (8), RSASHA512 (10),
 * ECDSAP256SHA256 (13), ECDSAP384SHA384 (14), ED25519 (15) and ED448
 * (16), through libcrypto (RFC 5702, RFC 6605: ECDSA signatures and keys
 * are raw r|s and x|y; RFC 8080).
 */
#include <errno.h>
#include <getdns/getdns.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define RR_NS         2
#define RR_CNAME      5
#define RR_PTR        12
#define RR_MX         15
#define RR_TXT        16
#define RR_AAAA       28
#define RR_SRV        33
#define RR_DNAME      39
#define RR_DS         43
#define RR_SSHFP      44
#define RR_RRSIG      46
#define RR_NSEC       47
#define RR_DNSKEY     48
#define RR_NSEC3      50
#define RR_TLSA       52
#define RR_SMIMEA     53
#define RR_CDS        59
#define RR_CDNSKEY    60
#define RR_OPENPGPKEY 61
#define RR_URI        256
#define RR_CAA        257

#define DNSKEY_ZONE   0x0100
#define DNSKEY_REVOKE 0x0080

/* Most records of one RRset, and RRSIGs over it, taken on this path. */
#define MAX_RRS  64
#define MAX_SIGS 8

struct zkey {
	uint16_t tag;
	uint8_t alg;
	EVP_PKEY *pkey;
	const EVP_MD *md; /* NULL for EdDSA */
	size_t siglen;    /* the wire signature's length; 0: any (RSA) */
};

struct tp_zkeys {
	atomic_uint refs;
	size_t n;
	struct zkey k[];
};

/* --- keys --- */

/* RFC 4034 appendix B (algorithm 1 excepted, which is not used here). */
uint16_t tp_key_tag(const unsigned char *rdata, size_t len)
{
	unsigned long ac = 0;
	size_t i;

	for (i = 0; i < len; i++)
		ac += (i & 1) ? rdata[i] : (unsigned long)rdata[i] << 8;
	ac += (ac >> 16) & 0xFFFF;
	return (uint16_t)(ac & 0xFFFF);
}

static EVP_PKEY *from_params(const char *type, OSSL_PARAM_BLD *b)
{
	OSSL_PARAM *p = b != NULL ? OSSL_PARAM_BLD_to_param(b) : NULL;
	EVP_PKEY_CTX *c =
	        p != NULL ? EVP_PKEY_CTX_new_from_name(NULL, type, NULL) : NULL;
	EVP_PKEY *k = NULL;

	if (c == NULL || EVP_PKEY_fromdata_init(c) <= 0 ||
	    EVP_PKEY_fromdata(c, &k, EVP_PKEY_PUBLIC_KEY, p) <= 0)
		k = NULL;
	EVP_PKEY_CTX_free(c);
	OSSL_PARAM_free(p);
	return k;
}

/* RFC 6605 section 4: the key is x|y; an uncompressed point for
 * libcrypto (which checks that it lies on the curve). */
static EVP_PKEY *ec_key(const char *group, const unsigned char *key, size_t len)
{
	unsigned char pt[1 + 96];
	OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
	EVP_PKEY *k = NULL;

	pt[0] = 4;
	memcpy(pt + 1, key, len);
	if (b != NULL &&
	    OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME,
	                                    group, 0) == 1 &&
	    OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, pt,
	                                     len + 1) == 1)
		k = from_params("EC", b);
	OSSL_PARAM_BLD_free(b);
	return k;
}

/* RFC 3110 section 2: exponent length (one octet, or zero and two), the
 * exponent, the modulus.  Moduli of 1024 to 4096 bits (RFC 5702 section
 * 2); others are left to getdns. */
static EVP_PKEY *rsa_key(const unsigned char *key, size_t len)
{
	size_t elen, off = 1;
	BIGNUM *n = NULL, *e = NULL;
	OSSL_PARAM_BLD *b = NULL;
	EVP_PKEY *k = NULL;

	if (len < 1)
		return NULL;
	elen = key[0];
	if (elen == 0) {
		if (len < 3)
			return NULL;
		elen = (size_t)key[1] << 8 | key[2];
		off = 3;
	}
	if (elen == 0 || elen > 8 || off + elen >= len ||
	    len - off - elen < 128 || len - off - elen > 512 ||
	    key[off + elen] == 0)
		return NULL;
	e = BN_bin2bn(key + off, (int)elen, NULL);
	n = BN_bin2bn(key + off + elen, (int)(len - off - elen), NULL);
	b = OSSL_PARAM_BLD_new();
	if (e != NULL && n != NULL && b != NULL &&
	    OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_N, n) == 1 &&
	    OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_E, e) == 1)
		k = from_params("RSA", b);
	OSSL_PARAM_BLD_free(b);
	BN_free(n);
	BN_free(e);
	return k;
}

/* The public key of one DNSKEY rdata, into z; 0, or -1 when it is not
 * one this file checks with. */
static int parse_key(const unsigned char *rd, size_t len, struct zkey *z)
{
	const unsigned char *key = rd + 4;
	size_t klen = len - 4;
	unsigned flags;

	if (len < 4)
		return -1;
	flags = (unsigned)rd[0] << 8 | rd[1];
	if (!(flags & DNSKEY_ZONE) || (flags & DNSKEY_REVOKE) || rd[2] != 3)
		return -1;
	memset(z, 0, sizeof(*z));
	z->alg = rd[3];
	z->tag = tp_key_tag(rd, len);
	switch (z->alg) {
	case 8:
	case 10:
		z->md = z->alg == 8 ? EVP_sha256() : EVP_sha512();
		z->pkey = rsa_key(key, klen);
		break;
	case 13:
		z->md = EVP_sha256();
		z->siglen = 64;
		z->pkey = klen == 64 ? ec_key("P-256", key, klen) : NULL;
		break;
	case 14:
		z->md = EVP_sha384();
		z->siglen = 96;
		z->pkey = klen == 96 ? ec_key("P-384", key, klen) : NULL;
		break;
	case 15:
		z->siglen = 64;
		z->pkey = klen == 32
		                  ? EVP_PKEY_new_raw_public_key(
		                            EVP_PKEY_ED25519, NULL, key, klen)
		                  : NULL;
		break;
	case 16:
		z->siglen = 114;
		z->pkey = klen == 57 ? EVP_PKEY_new_raw_public_key(
		                               EVP_PKEY_ED448, NULL, key, klen)
		                     : NULL;
		break;
	default:
		return -1;
	}
	return z->pkey != NULL ? 0 : -1;
}

struct tp_zkeys *tp_zkeys_new(const struct getdns_list *keys)
{
	struct tp_zkeys *z;
	size_t i, n = 0;

	getdns_list_get_length(keys, &n);
	z = calloc(1, sizeof(*z) + (n ? n : 1) * sizeof(z->k[0]));
	if (z == NULL)
		return NULL;
	atomic_init(&z->refs, 1);
	for (i = 0; i < n; i++) {
		getdns_dict *rr;
		getdns_bindata *rd;

		if (getdns_list_get_dict(keys, i, &rr) == GETDNS_RETURN_GOOD &&
		    getdns_dict_get_bindata(rr, "/rdata/rdata_raw", &rd) ==
		            GETDNS_RETURN_GOOD &&
		    parse_key(rd->data, rd->size, &z->k[z->n]) == 0)
			z->n++;
	}
	return z;
}

struct tp_zkeys *tp_zkeys_ref(struct tp_zkeys *z)
{
	if (z != NULL)
		atomic_fetch_add(&z->refs, 1);
	return z;
}

void tp_zkeys_free(struct tp_zkeys *z)
{
	size_t i;

	if (z == NULL || atomic_fetch_sub(&z->refs, 1) != 1)
		return;
	for (i = 0; i < z->n; i++)
		EVP_PKEY_free(z->k[i].pkey);
	free(z);
}

/* RFC 6605 section 4: r|s, each half the length, as a DER
 * ECDSA-Sig-Value for libcrypto.  Its length, or 0. */
static size_t ecdsa_der(const unsigned char *sig, size_t len,
                        unsigned char *out)
{
	ECDSA_SIG *s = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, (int)(len / 2), NULL);
	BIGNUM *ss = BN_bin2bn(sig + len / 2, (int)(len / 2), NULL);
	unsigned char *p = out;
	int n = 0;

	if (s != NULL && r != NULL && ss != NULL &&
	    ECDSA_SIG_set0(s, r, ss) == 1) {
		r = ss = NULL; /* s owns them */
		n = i2d_ECDSA_SIG(s, &p);
	}
	BN_free(r);
	BN_free(ss);
	ECDSA_SIG_free(s);
	return n > 0 ? (size_t)n : 0;
}

static int verify(const struct zkey *k, const unsigned char *data, size_t len,
                  const unsigned char *sig, size_t siglen)
{
	unsigned char der[2 * 52 + 16];
	EVP_MD_CTX *c;
	int ok;

	if (k->siglen != 0 && siglen != k->siglen)
		return 0;
	if (k->alg == 13 || k->alg == 14) {
		siglen = ecdsa_der(sig, siglen, der);
		if (siglen == 0)
			return 0;
		sig = der;
	}
	c = EVP_MD_CTX_new();
	ok = c != NULL &&
	     EVP_DigestVerifyInit(c, NULL, k->md, NULL, k->pkey) == 1 &&
	     EVP_DigestVerify(c, sig, siglen, data, len) == 1;
	EVP_MD_CTX_free(c);
	return ok;
}

/* --- the reply --- */

struct pkt {
	const unsigned char *p;
	size_t len;
};

static int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* The name at *off of the packet (compression pointers followed
 * backwards, RFC 1035 section 4.1.4, unless ptrs is 0), uncompressed and
 * in lower case into out; *off after it.  Its length, or 0 when
 * malformed. */
static size_t get_name(const struct pkt *m, size_t *off, int ptrs,
                       unsigned char out[256])
{
	size_t at = *off, n = 0, end = 0, jumps = 0;

	for (;;) {
		unsigned l;

		if (at >= m->len)
			return 0;
		l = m->p[at];
		if ((l & 0xC0) == 0xC0) {
			size_t to;

			if (!ptrs || at + 1 >= m->len || ++jumps > 127)
				return 0;
			to = (size_t)(l & 0x3F) << 8 | m->p[at + 1];
			if (end == 0)
				end = at + 2;
			if (to >= at)
				return 0; /* forwards: a loop or garbage */
			at = to;
			continue;
		}
		if (l & 0xC0)
			return 0;
		if (at + 1 + l > m->len || n + 1 + l > 255)
			return 0;
		out[n++] = (unsigned char)l;
		for (size_t i = 0; i < l; i++)
			out[n++] = (unsigned char)lower(m->p[at + 1 + i]);
		at += 1 + l;
		if (l == 0)
			break;
	}
	*off = end != 0 ? end : at;
	return n;
}

/* name ("www.example.", letters, digits, '-', '_', '*') in wire form and
 * lower case; its length, or 0. */
static size_t text_to_wire(const char *name, unsigned char out[256])
{
	size_t n = 0;
	const char *p = name;

	while (*p != '\0' && !(p[0] == '.' && p[1] == '\0')) {
		const char *dot = strchr(p, '.');
		size_t l = dot != NULL ? (size_t)(dot - p) : strlen(p);

		if (l == 0 || l > 63 || n + 1 + l + 1 > 255)
			return 0;
		out[n++] = (unsigned char)l;
		for (size_t i = 0; i < l; i++)
			out[n++] = (unsigned char)lower((unsigned char)p[i]);
		p += l;
		if (*p == '.')
			p++;
	}
	out[n++] = 0;
	return n;
}

/* A wire name as text with a final dot, when its labels hold only
 * letters, digits, '-' and '_'; 0, or -1. */
static int wire_to_text(const unsigned char *w, char out[256])
{
	size_t n = 0;

	if (w[0] == 0) {
		strcpy(out, ".");
		return 0;
	}
	while (*w != 0) {
		size_t l = *w++;

		for (size_t i = 0; i < l; i++) {
			int c = w[i];

			if (!((c >= 'a' && c <= 'z') ||
			      (c >= 'A' && c <= 'Z') ||
			      (c >= '0' && c <= '9') || c == '-' || c == '_'))
				return -1;
			out[n++] = (char)c;
		}
		out[n++] = '.';
		w += l;
	}
	out[n] = '\0';
	return 0;
}

static unsigned labels_of(const unsigned char *w)
{
	unsigned n = 0;

	for (; *w != 0; w += 1 + *w)
		n++;
	return n;
}

static uint16_t u16(const unsigned char *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t u32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* Where a type's rdata holds one domain name, after how many octets of
 * other fields it starts (it runs to the end); -1 when the rdata holds
 * none; -2 when it holds names this file does not handle. */
static int name_at(uint16_t type)
{
	switch (type) {
	case 1: /* A */
	case RR_TXT:
	case RR_AAAA:
	case RR_DS:
	case RR_SSHFP:
	case RR_DNSKEY:
	case RR_TLSA:
	case RR_SMIMEA:
	case RR_CDS:
	case RR_CDNSKEY:
	case RR_OPENPGPKEY:
	case RR_URI:
	case RR_CAA:
		return -1;
	case RR_NS:
	case RR_PTR:
		return 0;
	case RR_MX:
		return 2;
	case RR_SRV:
		return 6;
	default:
		return -2;
	}
}

struct rr {
	const unsigned char *rd; /* canonical rdata */
	size_t rdlen;
};

static int rr_cmp(const void *a, const void *b)
{
	const struct rr *x = a, *y = b;
	size_t n = x->rdlen < y->rdlen ? x->rdlen : y->rdlen;
	int c = memcmp(x->rd, y->rd, n);

	if (c != 0)
		return c;
	return x->rdlen < y->rdlen ? -1 : x->rdlen > y->rdlen;
}

/* RFC 1982 section 3.2 for 32-bit serial numbers: is a <= b? */
static int serial_le(uint32_t a, uint32_t b)
{
	return a == b || (int32_t)(b - a) > 0;
}

struct sig {
	const unsigned char *rd;
	size_t rdlen;
};

/* One RRSIG (rdata at s) over the sorted RRset rrs at owner: 1 when it
 * verifies, TP_FAST_UNDECIDED when it is not one this file checks,
 * TP_FAST_BAD when it fails. */
static int check_sig(const struct sig *s, const unsigned char *owner,
                     size_t olen, uint16_t type, const struct rr *rrs,
                     size_t nrr, const char *name, tp_zkeys_for *keys_for,
                     void *arg, time_t now, unsigned char *buf, size_t cap)
{
	struct pkt r = {s->rd, s->rdlen};
	unsigned char signer[256];
	char stext[256];
	size_t off = 18, slen, len, i;
	const unsigned char *sigbytes;
	size_t siglen;
	struct tp_zkeys *z;
	uint32_t exp, inc, ttl;
	uint16_t tag;
	uint8_t alg;
	int rv = TP_FAST_BAD, found = 0;

	if (s->rdlen < 18 + 1 + 1 || u16(s->rd) != type)
		return TP_FAST_UNDECIDED;
	alg = s->rd[2];
	ttl = u32(s->rd + 4);
	exp = u32(s->rd + 8);
	inc = u32(s->rd + 12);
	tag = u16(s->rd + 16);
	/* RFC 4034 section 3.1.7: the signer's name is not compressed */
	slen = get_name(&r, &off, 0, signer);
	if (slen == 0 || off >= s->rdlen)
		return TP_FAST_BAD; /* no signature */
	sigbytes = s->rd + off;
	siglen = s->rdlen - off;
	/* RFC 4035 section 5.3.1 */
	if (s->rd[3] != labels_of(owner))
		return TP_FAST_UNDECIDED; /* a wildcard, or wrong: getdns */
	if (!serial_le(inc, (uint32_t)now) || !serial_le((uint32_t)now, exp))
		return TP_FAST_BAD;
	if (wire_to_text(signer, stext) != 0)
		return TP_FAST_UNDECIDED;
	if (!tp_zone_encloses(stext, name))
		return TP_FAST_BAD;
	z = keys_for(arg, stext);
	if (z == NULL)
		return TP_FAST_UNDECIDED; /* not kept: getdns or child keys */
	/* RFC 4034 section 3.1.8.1: RRSIG_RDATA | RR(1) | RR(2) ... */
	len = 18 + slen;
	for (i = 0; i < nrr; i++)
		len += olen + 10 + rrs[i].rdlen;
	if (len > cap) {
		tp_zkeys_free(z);
		return TP_FAST_UNDECIDED;
	}
	memcpy(buf, s->rd, 18);
	memcpy(buf + 18, signer, slen);
	len = 18 + slen;
	for (i = 0; i < nrr; i++) {
		unsigned char *p = buf + len;

		memcpy(p, owner, olen);
		p += olen;
		p[0] = (unsigned char)(type >> 8);
		p[1] = (unsigned char)type;
		p[2] = 0;
		p[3] = 1; /* IN */
		p[4] = (unsigned char)(ttl >> 24);
		p[5] = (unsigned char)(ttl >> 16);
		p[6] = (unsigned char)(ttl >> 8);
		p[7] = (unsigned char)ttl;
		p[8] = (unsigned char)(rrs[i].rdlen >> 8);
		p[9] = (unsigned char)rrs[i].rdlen;
		memcpy(p + 10, rrs[i].rd, rrs[i].rdlen);
		len += olen + 10 + rrs[i].rdlen;
	}
	for (i = 0; i < z->n && rv != 1; i++) {
		if (z->k[i].alg != alg || z->k[i].tag != tag)
			continue;
		found = 1;
		if (verify(&z->k[i], buf, len, sigbytes, siglen))
			rv = 1;
	}
	tp_zkeys_free(z);
	/* no kept key of that tag: one this file does not use, or one
	 * that is not kept (a rollover): getdns decides */
	return rv == 1 ? 1 : found ? TP_FAST_BAD : TP_FAST_UNDECIDED;
}

int tp_rrsig_check(const unsigned char *pkt, size_t len, const char *name,
                   uint16_t type, tp_zkeys_for *keys_for, void *arg, time_t now)
{
	struct pkt m = {pkt, len};
	unsigned char qname[256], owner[256], *buf = NULL, *canon = NULL;
	struct rr rrs[MAX_RRS];
	struct sig sigs[MAX_SIGS];
	size_t qlen, off = 12, nrr = 0, nsig = 0, an, i, used = 0, cap;
	int rv = TP_FAST_UNDECIDED, one;
	int at = name_at(type);

	if (at == -2 || len < 12 || len > 65535)
		return TP_FAST_UNDECIDED;
	/* QR, opcode 0, not TC, rcode NOERROR; one question */
	if (!(pkt[2] & 0x80) || (pkt[2] & 0x7A) != 0 || (pkt[3] & 0x0F) != 0 ||
	    u16(pkt + 4) != 1)
		return TP_FAST_UNDECIDED;
	an = u16(pkt + 6);
	qlen = text_to_wire(name, qname);
	if (qlen == 0 || an < 2 || (qname[0] == 1 && qname[1] == '*'))
		return TP_FAST_UNDECIDED;
	if (get_name(&m, &off, 1, owner) != qlen ||
	    memcmp(owner, qname, qlen) != 0 || off + 4 > len ||
	    u16(pkt + off) != type || u16(pkt + off + 2) != 1)
		return TP_FAST_UNDECIDED;
	off += 4;
	/* canonical rdata: at most the packet, and 255 more octets for each
	 * name made whole */
	cap = len + MAX_RRS * 256;
	canon = malloc(cap);
	if (canon == NULL)
		return TP_FAST_UNDECIDED;
	for (i = 0; i < an; i++) {
		uint16_t t, rdlen;
		size_t rdat;

		if (get_name(&m, &off, 1, owner) != qlen ||
		    memcmp(owner, qname, qlen) != 0 || off + 10 > len)
			goto out;
		t = u16(pkt + off);
		rdlen = u16(pkt + off + 8);
		rdat = off + 10;
		if (u16(pkt + off + 2) != 1 || rdat + rdlen > len)
			goto out;
		off = rdat + rdlen;
		if (t == RR_RRSIG) {
			if (nsig == MAX_SIGS || rdlen < 2 ||
			    u16(pkt + rdat) != type)
				goto out;
			sigs[nsig].rd = pkt + rdat;
			sigs[nsig++].rdlen = rdlen;
			continue;
		}
		if (t != type || nrr == MAX_RRS)
			goto out;
		rrs[nrr].rd = canon + used;
		if (at < 0) {
			memcpy(canon + used, pkt + rdat, rdlen);
			rrs[nrr].rdlen = rdlen;
		} else {
			size_t noff = rdat + (size_t)at, nl;
			unsigned char w[256];

			if (rdlen <= (size_t)at)
				goto out;
			nl = get_name(&m, &noff, 1, w);
			if (nl == 0 || noff != rdat + rdlen)
				goto out;
			memcpy(canon + used, pkt + rdat, (size_t)at);
			memcpy(canon + used + at, w, nl);
			rrs[nrr].rdlen = (size_t)at + nl;
		}
		used += rrs[nrr++].rdlen;
	}
	if (nrr == 0 || nsig == 0)
		goto out;
	/* RFC 4034 section 6.3 */
	qsort(rrs, nrr, sizeof(rrs[0]), rr_cmp);
	for (i = 1; i < nrr; i++)
		if (rr_cmp(&rrs[i - 1], &rrs[i]) == 0)
			goto out; /* duplicates: getdns */
	cap = 18 + 256 + nrr * (qlen + 10) + used;
	buf = malloc(cap);
	if (buf == NULL)
		goto out;
	for (i = 0; i < nsig && rv != 1; i++) {
		one = check_sig(&sigs[i], qname, qlen, type, rrs, nrr, name,
		                keys_for, arg, now, buf, cap);
		if (one == 1 || one == TP_FAST_BAD)
			rv = one;
	}
out:
	free(buf);
	free(canon);
	return rv;
}
