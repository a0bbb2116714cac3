/*
 * OpenPGP keys (RFC 4880, RFC 9580) and OPENPGPKEY matching (RFC 7929),
 * with keys made by GnuPG at test time (tests/tools/mkpgp.sh, and
 * mkpgp_algos.sh for Brainpool, secp256k1, DSA and Elgamal) and the
 * samples of RFC 9580 Appendix A (tests/data/openpgp): the parser on
 * broken framing and armor, packets it must skip, the outcome of every
 * signature on keys GnuPG made expired, revoked or that we corrupt (a bad
 * signature by each algorithm), algorithms nothing here verifies, the
 * matcher's verdicts and reasons, secrets of unprotected exports, and the
 * owner-name hash against sha256sum.
 *
 * The peer's key is given to the matcher as a raw SubjectPublicKeyInfo
 * made from the OpenPGP key material with GnuTLS (the starttls tests give
 * it inside certificates).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include <gnutls/abstract.h>

#include "cred.h"
#include "openpgp_int.h"
#include "testutil.h"

static char dir[] = "/tmp/tlspool-pgp-XXXXXX";

/* A file of the key directory, or with a "/" in its name, of the source
 * tree (tests/data/openpgp/...). */
static tlspool_span load(const char *name)
{
	char path[160];
	tlspool_span s = {NULL, 0};
	FILE *f;
	long n;

	if (strchr(name, '/') != NULL)
		snprintf(path, sizeof(path), "%s", name);
	else
		snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "%s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	s.data = malloc((size_t)n + 1);
	ck_assert_int_eq(fread((void *)s.data, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	s.len = (size_t)n;
	return s;
}

static void text(const char *name, char *buf, size_t len, int line)
{
	tlspool_span s = load(name);
	const char *p = (const char *)s.data;
	int i;

	for (i = 0; i < line && p != NULL; i++) {
		p = memchr(p, '\n', s.len - (size_t)(p - (const char *)s.data));
		if (p != NULL)
			p++;
	}
	ck_assert_ptr_nonnull(p);
	snprintf(buf, len, "%.*s", (int)strcspn(p, "\n"), p);
	free((void *)s.data);
}

static void text_line(const char *name, char *buf, size_t len)
{
	text(name, buf, len, 0);
}

static tlspool_openpgp_cert *parse_file(const char *name)
{
	tlspool_span s = load(name);
	tlspool_openpgp_cert *c = NULL;
	char err[200];
	int r = tlspool_openpgp_parse(s.data, s.len, 0, time(NULL), &c, err,
	                              sizeof(err));

	ck_assert_msg(r == 0, "%s: %s", name, err);
	free((void *)s.data);
	return c;
}

/* The SubjectPublicKeyInfo of key i (0 primary) of a public key file. */
static tlspool_span spki_of(const char *name, size_t i)
{
	tlspool_openpgp_cert *c = parse_file(name);
	struct tp_pgp *g = c->internal;
	gnutls_pubkey_t pub;
	gnutls_datum_t der;
	tlspool_span s;

	ck_assert_uint_lt(i, g->nkeys);
	ck_assert_int_eq(tp_pgp_pubkey(&g->keys[i], &pub), 0);
	ck_assert_int_eq(gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &der), 0);
	s.data = malloc(der.size);
	memcpy((void *)s.data, der.data, der.size);
	s.len = der.size;
	gnutls_free(der.data);
	tlspool_openpgp_free(c);
	return s;
}

/* --- negative cases: framing -------------------------------------------- */

enum edit { TRUNCATE, OVERLONG, PARTIAL, INDETERMINATE, VERSION5,
            ALGO99, GARBAGE_AFTER, NOT_A_KEY, SECRET_AS_PUBLIC, EMPTY,
            BAD_HEADER, CRITICAL_22, CRITICAL_39, CRITICAL_0, CRITICAL_15_FIRST };

static const struct {
	enum edit edit;
	int want;
	const char *detail;
} frame_rows[] = {
        {TRUNCATE, EBADMSG, "truncated"},
        {OVERLONG, EBADMSG, "overlong"},
        {PARTIAL, EBADMSG, "partial body lengths"},
        {INDETERMINATE, EBADMSG, "indeterminate length"},
        {VERSION5, ENOTSUP, "key version 5"},
        {ALGO99, ENOTSUP, "algorithm 99"},
        {GARBAGE_AFTER, EBADMSG, "not a packet header"},
        {NOT_A_KEY, EBADMSG, "first packet (tag 13)"},
        {SECRET_AS_PUBLIC, EBADMSG, "first packet (tag 5)"},
        {EMPTY, EINVAL, "no data"},
        {BAD_HEADER, EBADMSG, "unexpected packet (tag 11)"},
        /* RFC 9580 section 4.3: an unknown critical packet rejects the
         * whole key, wherever it is */
        {CRITICAL_22, EBADMSG, "unknown critical packet type (tag 22"},
        {CRITICAL_39, EBADMSG, "unknown critical packet type (tag 39"},
        {CRITICAL_0, EBADMSG, "unknown critical packet type (tag 0"},
        {CRITICAL_15_FIRST, EBADMSG, "unknown critical packet type (tag 15"},
};

/* ed.pub starts with an old-format primary key packet: 0x98 LEN body. */
START_TEST(framing_rejects)
{
	tlspool_span pub = load("ed.pub"), sec = load("ed.sec");
	unsigned char *b = malloc(pub.len + sec.len + 16);
	size_t n = pub.len, klen = pub.data[1];
	tlspool_openpgp_cert *c = (void *)1;
	char err[200] = "";
	int r;

	ck_assert_int_eq(pub.data[0], 0x98);
	memcpy(b, pub.data, pub.len);
	switch (frame_rows[_i].edit) {
	case TRUNCATE:
		n = pub.len - 10;
		break;
	case OVERLONG: /* one octet more inside the key packet */
		b[1] = (unsigned char)(klen + 1);
		memmove(b + 2 + klen + 1, b + 2 + klen, pub.len - 2 - klen);
		b[2 + klen] = 0;
		n = pub.len + 1;
		break;
	case PARTIAL: /* new format, tag 6, partial length 2^1 */
		b[0] = 0xc6;
		b[1] = 0xe1;
		break;
	case INDETERMINATE:
		b[0] = 0x9b;
		break;
	case VERSION5:
		b[2] = 5;
		break;
	case ALGO99:
		b[2 + 5] = 99;
		break;
	case GARBAGE_AFTER:
		b[n++] = 0x01;
		break;
	case NOT_A_KEY:
		n = pub.len - 2 - klen;
		memmove(b, b + 2 + klen, n);
		break;
	case SECRET_AS_PUBLIC:
		memcpy(b, sec.data, sec.len);
		n = sec.len;
		break;
	case EMPTY:
		n = 0;
		break;
	case BAD_HEADER: /* a literal data packet (old format, tag 11) */
		b[n++] = 0xac;
		b[n++] = 0x00;
		break;
	case CRITICAL_22: /* new format, tag 22, empty */
		b[n++] = 0xd6;
		b[n++] = 0x00;
		break;
	case CRITICAL_39: /* new format, tag 39, one octet */
		b[n++] = 0xe7;
		b[n++] = 0x01;
		b[n++] = 0x00;
		break;
	case CRITICAL_0: /* old format, tag 0 (reserved) */
		b[n++] = 0x80;
		b[n++] = 0x00;
		break;
	case CRITICAL_15_FIRST: /* before the key: new format, tag 15 */
		memmove(b + 2, b, n);
		b[0] = 0xcf;
		b[1] = 0x00;
		n += 2;
		break;
	}
	errno = 0;
	r = tlspool_openpgp_parse(b, n, 0, time(NULL), &c, err, sizeof(err));
	ck_assert_msg(r == -1 && errno == frame_rows[_i].want,
	              "row %d: r %d errno %d (%s)", _i, r, errno, err);
	ck_assert_msg(strstr(err, frame_rows[_i].detail) != NULL,
	              "row %d: \"%s\"", _i, err);
	ck_assert_ptr_null(c);
	/* every shorter prefix fails cleanly too (never a crash) */
	if (_i == 0)
		for (size_t k = 1; k < pub.len; k++) {
			r = tlspool_openpgp_parse(pub.data, k, 0, time(NULL), &c,
			                          err, sizeof(err));
			if (r == 0)
				tlspool_openpgp_free(c);
		}
	free(b);
	free((void *)pub.data);
	free((void *)sec.data);
}
END_TEST

/* --- negative cases: what does not count ---------------------------------- */

START_TEST(corrupted_self_signature)
{
	tlspool_span pub = load("ed.pub");
	unsigned char *b = malloc(pub.len);
	tlspool_openpgp_cert *c;
	char err[200];
	size_t off;

	/* ed.pub: key packet, User ID packet, then its self-signature: flip
	 * the signature's last octet (a bit of the EdDSA s value) */
	memcpy(b, pub.data, pub.len);
	off = 2 + pub.data[1];
	off += 2 + pub.data[off + 1];
	ck_assert_int_eq(b[off], 0x88);
	b[off + 2 + b[off + 1] - 1] ^= 0x01;
	ck_assert_int_eq(tlspool_openpgp_parse(b, pub.len, 0, time(NULL), &c, err,
	                                       sizeof(err)),
	                 0);
	ck_assert_int_eq(c->primary.valid, 0);
	ck_assert_msg(strstr(c->primary.reason, "bad signature") != NULL, "%s",
	              c->primary.reason);
	ck_assert_int_eq(c->uids[0].valid, 0);
	for (size_t i = 0; i < c->nsubkeys; i++)
		ck_assert_int_eq(c->subkeys[i].valid, 0);
	tlspool_openpgp_free(c);
	free(b);
	free((void *)pub.data);
}
END_TEST

START_TEST(expired_key)
{
	tlspool_openpgp_cert *c = parse_file("expired.pub");

	ck_assert_int_eq(c->primary.valid, 0);
	ck_assert_str_eq(c->primary.reason, "the primary key expired");
	ck_assert_int_eq(c->primary.expires, c->primary.created + 86400);
	tlspool_openpgp_free(c);
}
END_TEST

START_TEST(revoked_subkey)
{
	tlspool_openpgp_cert *c = parse_file("revsub.pub");

	ck_assert_int_eq(c->primary.valid, 1);
	ck_assert_uint_eq(c->nsubkeys, 1);
	ck_assert_int_eq(c->subkeys[0].valid, 0);
	ck_assert_str_eq(c->subkeys[0].reason, "revoked");
	tlspool_openpgp_free(c);
}
END_TEST

static const struct {
	const char *uid, *identity;
	int want;
} uid_rows[] = {
        {"John <john@example.test>", "john@example.test", 1},
        {"<john@example.test>", "john@example.test", 1},
        {"John (work) <john@EXAMPLE.test> extra", "john@example.test", 1},
        {"John <John@example.test>", "john@example.test", 0},
        {"john@example.test", "john@example.test", 0},
        {"John <john@example.test.evil>", "john@example.test", 0},
        {"John <xjohn@example.test>", "john@example.test", 0},
        {"John <john@example.test", "john@example.test", 0},
        {"Host <example.test>", "example.test", 1},
        {"Host <www.example.test>", "example.test", 0},
        {"A <a@b.test> B <john@example.test>", "john@example.test", 1},
        {"", "john@example.test", 0},
};

START_TEST(uid_names)
{
	ck_assert_int_eq(tlspool_openpgp_uid_names(uid_rows[_i].uid,
	                                           uid_rows[_i].identity),
	                 uid_rows[_i].want);
}
END_TEST

/* --- the matcher ------------------------------------------------------------ */

static const struct {
	const char *record;  /* OPENPGPKEY rdata: a .pub file, or NULL */
	const char *peer;    /* key file and index giving the peer's key */
	size_t key;
	const char *identity;
	tlspool_dns_verdict dns;
	tlspool_dane_verdict want;
	const char *detail;
} match_rows[] = {
        /* negative: each fails closed, with its reason */
        {"ed.pub", "other.pub", 0, "john@example.test", TLSPOOL_DNS_SECURE,
         TLSPOOL_DANE_NO_MATCH, "is neither the key"},
        {"rsa.pub", "rsa.pub", 1, "john@example.test", TLSPOOL_DNS_SECURE,
         TLSPOOL_DANE_NO_MATCH, "may neither sign nor authenticate (key flags 0x0c)"},
        {"alice.pub", "alice.pub", 0, "john@example.test", TLSPOOL_DNS_SECURE,
         TLSPOOL_DANE_NO_MATCH, "no User ID names <john@example.test>"},
        {"expired.pub", "expired.pub", 0, "john@example.test",
         TLSPOOL_DNS_SECURE, TLSPOOL_DANE_NO_MATCH, "expired"},
        {"revsub.pub", "revsub.pub", 1, "john@example.test", TLSPOOL_DNS_SECURE,
         TLSPOOL_DANE_NO_MATCH, "does not count: revoked"},
        {"ed.pub", "ed.pub", 0, "john@example.test", TLSPOOL_DNS_BOGUS,
         TLSPOOL_DANE_DNS_ERROR, "OPENPGPKEY RRset is bogus"},
        {"ed.pub", "ed.pub", 0, "john@example.test", TLSPOOL_DNS_INSECURE,
         TLSPOOL_DANE_INSECURE, "insecure"},
        {"ed.pub", "ed.pub", 0, "john@example.test", TLSPOOL_DNS_TIMEOUT,
         TLSPOOL_DANE_DNS_ERROR, "timeout"},
        {NULL, "ed.pub", 0, "john@example.test", TLSPOOL_DNS_SECURE_NXDOMAIN,
         TLSPOOL_DANE_NO_RECORDS, "no OPENPGPKEY record"},
        {"ed.sec", "ed.pub", 0, "john@example.test", TLSPOOL_DNS_SECURE,
         TLSPOOL_DANE_NO_USABLE, "unusable key: the first packet (tag 5)"},
        /* positive */
        {"ed.pub", "ed.pub", 0, "john@example.test", TLSPOOL_DNS_SECURE,
         TLSPOOL_DANE_AUTHENTICATED, "with User ID \"John <john@example.test>\""},
        {"ed.pub", "ed.pub", 1, "john@example.test", TLSPOOL_DNS_SECURE,
         TLSPOOL_DANE_AUTHENTICATED, "subkey"},
        {"rsa.pub", "rsa.pub", 0, "john@example.test", TLSPOOL_DNS_SECURE,
         TLSPOOL_DANE_AUTHENTICATED, "(RSA-3072)"},
        {"revsub.pub", "revsub.pub", 0, "john@example.test",
         TLSPOOL_DNS_SECURE, TLSPOOL_DANE_AUTHENTICATED, "key"},
        {"domain.pub", "domain.pub", 0, "example.test", TLSPOOL_DNS_SECURE,
         TLSPOOL_DANE_AUTHENTICATED, "<example.test>"},
};

START_TEST(match_table)
{
	tlspool_span rec = {NULL, 0}, spki = spki_of(match_rows[_i].peer,
	                                             match_rows[_i].key);
	tlspool_openpgp_input in;
	tlspool_openpgp_result *res = NULL;
	char err[200];

	memset(&in, 0, sizeof(in));
	if (match_rows[_i].record != NULL) {
		rec = load(match_rows[_i].record);
		in.records = &rec;
		in.nrecords = 1;
	}
	in.rawkey = spki;
	in.dns = match_rows[_i].dns;
	in.dns_detail = match_rows[_i].dns == TLSPOOL_DNS_BOGUS ? "RRSIG failed" : "";
	in.identity = match_rows[_i].identity;
	in.now = time(NULL);
	ck_assert_int_eq(tlspool_openpgp_match(&in, &res, err, sizeof(err)), 0);
	ck_assert_msg(res->verdict == match_rows[_i].want,
	              "row %d: verdict %s, want %s: %s", _i,
	              tlspool_dane_verdict_name(res->verdict),
	              tlspool_dane_verdict_name(match_rows[_i].want), res->reason);
	ck_assert_msg(strstr(res->reason, match_rows[_i].detail) != NULL,
	              "row %d: \"%s\"", _i, res->reason);
	if (res->verdict == TLSPOOL_DANE_AUTHENTICATED) {
		ck_assert_int_eq(res->matched, 0);
		ck_assert_uint_eq(res->fingerprint_len, 20);
	} else {
		ck_assert_int_eq(res->matched, -1);
	}
	tlspool_openpgp_result_free(res);
	free((void *)rec.data);
	free((void *)spki.data);
}
END_TEST

START_TEST(match_second_record)
{
	tlspool_span recs[2] = {load("other.pub"), load("ed.pub")};
	tlspool_span spki = spki_of("ed.pub", 0);
	tlspool_openpgp_input in = {.rawkey = spki, .records = recs, .nrecords = 2,
	                            .dns = TLSPOOL_DNS_SECURE,
	                            .identity = "john@example.test",
	                            .now = time(NULL)};
	tlspool_openpgp_result *res;

	ck_assert_int_eq(tlspool_openpgp_match(&in, &res, NULL, 0), 0);
	ck_assert_int_eq(res->verdict, TLSPOOL_DANE_AUTHENTICATED);
	ck_assert_int_eq(res->matched, 1);
	ck_assert_uint_eq(res->nsteps, 2);
	ck_assert_int_eq(res->steps[0].matched, 0);
	ck_assert_ptr_nonnull(strstr(res->steps[0].reason, "neither"));
	tlspool_openpgp_result_free(res);
	tlspool_openpgp_result_free(NULL);
	free((void *)recs[0].data);
	free((void *)recs[1].data);
	free((void *)spki.data);
}
END_TEST

START_TEST(match_bad_arguments)
{
	tlspool_openpgp_input in = {.dns = TLSPOOL_DNS_SECURE};
	tlspool_openpgp_result *res = NULL;

	ck_assert_int_eq(tlspool_openpgp_match(&in, &res, NULL, 0), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(tlspool_openpgp_match(NULL, &res, NULL, 0), -1);
}
END_TEST

/* --- positive cases: what GnuPG made ---------------------------------------- */

static void hexfpr(const tlspool_openpgp_keyinfo *k, char *buf)
{
	for (size_t i = 0; i < k->fingerprint_len; i++)
		sprintf(buf + 2 * i, "%02X", k->fingerprint[i]);
}

START_TEST(gnupg_ed25519)
{
	tlspool_openpgp_cert *c = parse_file("ed.pub");
	char want[80], got[80];

	text("ed.fpr", want, sizeof(want), 0);
	hexfpr(&c->primary, got);
	ck_assert_str_eq(got, want);
	ck_assert_int_eq(c->primary.version, 4);
	ck_assert_int_eq(c->primary.algorithm, TLSPOOL_OPENPGP_ALGO_EDDSA_LEGACY);
	ck_assert_str_eq(c->primary.algorithm_name, "EdDSA-Ed25519");
	ck_assert_int_eq(c->primary.valid, 1);
	ck_assert_uint_eq(c->primary.flags, TLSPOOL_OPENPGP_CERTIFY |
	                                            TLSPOOL_OPENPGP_SIGN |
	                                            TLSPOOL_OPENPGP_AUTH);
	ck_assert_uint_eq(c->nuids, 1);
	ck_assert_str_eq(c->uids[0].text, "John <john@example.test>");
	ck_assert_int_eq(c->uids[0].valid, 1);
	ck_assert_uint_eq(c->nsubkeys, 2);
	text("ed.subs", want, sizeof(want), 0);
	hexfpr(&c->subkeys[0], got);
	ck_assert_str_eq(got, want);
	ck_assert_int_eq(c->subkeys[0].valid, 1);
	ck_assert_uint_eq(c->subkeys[0].flags, TLSPOOL_OPENPGP_AUTH);
	text("ed.subs", want, sizeof(want), 1);
	hexfpr(&c->subkeys[1], got);
	ck_assert_str_eq(got, want);
	ck_assert_int_eq(c->subkeys[1].algorithm, TLSPOOL_OPENPGP_ALGO_ECDH);
	ck_assert_str_eq(c->subkeys[1].algorithm_name, "ECDH-Curve25519");
	ck_assert_int_eq(c->subkeys[1].valid, 1);
	ck_assert_uint_eq(c->subkeys[1].flags, TLSPOOL_OPENPGP_ENCRYPT_COMMS |
	                                               TLSPOOL_OPENPGP_ENCRYPT_STORAGE);
	tlspool_openpgp_free(c);
	tlspool_openpgp_free(NULL);
}
END_TEST

/* RFC 9580 section 9.1: the named algorithms and their names; unknown
 * numbers are named by number. */
static const struct {
	int algo;
	const char *name;
} algo_rows[] = {
        {TLSPOOL_OPENPGP_ALGO_RSA, "RSA"}, {TLSPOOL_OPENPGP_ALGO_RSA_ENCRYPT_ONLY, "RSA"}, {TLSPOOL_OPENPGP_ALGO_RSA_SIGN_ONLY, "RSA"},
        {TLSPOOL_OPENPGP_ALGO_ELGAMAL, "ElGamal"}, {TLSPOOL_OPENPGP_ALGO_DSA, "DSA"}, {TLSPOOL_OPENPGP_ALGO_ECDH, "ECDH"},
        {TLSPOOL_OPENPGP_ALGO_ECDSA, "ECDSA"}, {TLSPOOL_OPENPGP_ALGO_EDDSA_LEGACY, "EdDSA"}, {TLSPOOL_OPENPGP_ALGO_X25519, "X25519"},
        {TLSPOOL_OPENPGP_ALGO_X448, "X448"}, {TLSPOOL_OPENPGP_ALGO_ED25519, "Ed25519"}, {TLSPOOL_OPENPGP_ALGO_ED448, "Ed448"},
        {20, "algorithm-20"}, {99, "algorithm-99"},
};

START_TEST(algorithm_names)
{
	ck_assert_int_eq(TLSPOOL_OPENPGP_ALGO_RSA, 1);
	ck_assert_int_eq(TLSPOOL_OPENPGP_ALGO_ECDSA, 19);
	ck_assert_int_eq(TLSPOOL_OPENPGP_ALGO_EDDSA_LEGACY, 22);
	ck_assert_int_eq(TLSPOOL_OPENPGP_ALGO_ED25519, 27);
	ck_assert_str_eq(tlspool_openpgp_algorithm_name(algo_rows[_i].algo), algo_rows[_i].name);
}
END_TEST

START_TEST(gnupg_rsa)
{
	tlspool_openpgp_cert *c = parse_file("rsa.pub");
	char want[80], got[80];

	text("rsa.fpr", want, sizeof(want), 0);
	hexfpr(&c->primary, got);
	ck_assert_str_eq(got, want);
	ck_assert_int_eq(c->primary.algorithm, TLSPOOL_OPENPGP_ALGO_RSA);
	ck_assert_str_eq(c->primary.algorithm_name, "RSA-3072");
	ck_assert_int_eq(c->primary.valid, 1);
	ck_assert_str_eq(c->uids[0].text, "John Doe (work) <john@example.test>");
	ck_assert_int_eq(c->subkeys[0].valid, 1);
	tlspool_openpgp_free(c);
}
END_TEST

START_TEST(secret_keys)
{
	static const char *const files[] = {"ed.sec", "rsa.sec"};
	tlspool_span sec = load(files[_i]);
	tlspool_openpgp_secret *s = NULL;
	char err[200], want[80], got[80];

	ck_assert_msg(tlspool_openpgp_secret_key(sec.data, sec.len, time(NULL), &s,
	                                         err, sizeof(err)) == 0,
	              "%s", err);
	/* the primary key may authenticate: it is chosen */
	ck_assert_int_eq(s->subkey, 0);
	text(_i == 0 ? "ed.fpr" : "rsa.fpr", want, sizeof(want), 0);
	for (size_t i = 0; i < s->fingerprint_len; i++)
		sprintf(got + 2 * i, "%02X", s->fingerprint[i]);
	ck_assert_str_eq(got, want);
	if (_i == 0) {
		ck_assert_str_eq(s->curve, "Ed25519");
		ck_assert_uint_eq(s->x.len, 32);
		ck_assert_uint_le(s->k.len, 32);
	} else {
		ck_assert_ptr_null(s->curve);
		ck_assert_uint_eq(s->n.len, 384);
		ck_assert_uint_gt(s->d.len, 0);
		ck_assert_uint_gt(s->u.len, 0);
	}
	tlspool_openpgp_secret_free(s);
	tlspool_openpgp_secret_free(NULL);
	/* a public key is no secret */
	free((void *)sec.data);
	sec = load("ed.pub");
	ck_assert_int_eq(tlspool_openpgp_secret_key(sec.data, sec.len, time(NULL),
	                                            &s, err, sizeof(err)),
	                 -1);
	free((void *)sec.data);
}
END_TEST

/* RFC 7929 section 3 owner name, against sha256sum in the shell. */
START_TEST(owner_hash_sha256sum)
{
	char buf[300], cmd[200], want[128];
	FILE *p;

	snprintf(cmd, sizeof(cmd), "printf %%s john | sha256sum | cut -c1-56");
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_nonnull(fgets(want, sizeof(want), p));
	pclose(p);
	want[strcspn(want, "\n")] = '\0';
	ck_assert_int_gt(tlspool_user_owner(buf, sizeof(buf), TLSPOOL_RR_OPENPGPKEY,
	                                    "john@example.test"),
	                 0);
	strcat(want, "._openpgpkey.example.test.");
	ck_assert_str_eq(buf, want);
}
END_TEST


/* --- helpers for the RFC 9580 samples, armor and hand-made packets ------- */

static const char a3_fpr[] =
        "CB186C4F0609A697E4D52DFA6C722B0C1F1E27C18A56708F6525EC27BAD9ACC9";
static const char a3_sub[] =
        "12C83F1E706F6308FE151A417743A1F033790E93E9978488D1DB378DA9930885";
#define A3 "tests/data/openpgp/rfc9580-a3.asc"
#define A4 "tests/data/openpgp/rfc9580-a4.asc"
#define A1 "tests/data/openpgp/rfc9580-a1.asc"

/* The packets of an armored file, decoded by GnuTLS's base64 (not by the
 * code under test): the lines between the blank line and the tail. */
static tlspool_span unarmor(const char *name)
{
	tlspool_span t = load(name), out;
	char *b64 = malloc(t.len + 1), *p = (char *)t.data;
	gnutls_datum_t in, bin;
	size_t n = 0;

	p = strstr(p, "\n\n") + 2;
	while (*p != '-' && *p != '=') {
		size_t l = strcspn(p, "\n");

		memcpy(b64 + n, p, l);
		n += l;
		p += l + 1;
	}
	in.data = (unsigned char *)b64;
	in.size = (unsigned)n;
	ck_assert_int_eq(gnutls_base64_decode2(&in, &bin), 0);
	out.data = malloc(bin.size);
	memcpy((void *)out.data, bin.data, bin.size);
	out.len = bin.size;
	gnutls_free(bin.data);
	free(b64);
	free((void *)t.data);
	return out;
}

/* Binary packets in ASCII armor: 64 base64 characters a line, then crc
 * ("=XXXX") if not NULL.  malloc'd text. */
static char *armor_text(const unsigned char *bin, size_t n, const char *label,
                        const char *crc)
{
	gnutls_datum_t in = {(unsigned char *)bin, (unsigned)n}, b64;
	char *t;
	size_t o = 0, i;

	ck_assert_int_eq(gnutls_base64_encode2(&in, &b64), 0);
	t = malloc(b64.size + b64.size / 64 + 200);
	o += (size_t)sprintf(t, "-----BEGIN PGP %s-----\n\n", label);
	for (i = 0; i < b64.size; i += 64) {
		size_t l = b64.size - i < 64 ? b64.size - i : 64;

		memcpy(t + o, b64.data + i, l);
		o += l;
		t[o++] = '\n';
	}
	o += (size_t)sprintf(t + o, "%s%s-----END PGP %s-----\n",
	                     crc ? crc : "", crc ? "\n" : "", label);
	gnutls_free(b64.data);
	return t;
}

static tlspool_openpgp_cert *parse_span(const unsigned char *d, size_t n,
                                        int secret, time_t now)
{
	tlspool_openpgp_cert *c = NULL;
	char err[200];

	ck_assert_msg(tlspool_openpgp_parse(d, n, secret, now, &c, err,
	                                    sizeof(err)) == 0,
	              "%s", err);
	return c;
}

static void hexfpr(const tlspool_openpgp_keyinfo *k, char *buf);

static void assert_fpr(const tlspool_openpgp_keyinfo *k, const char *want)
{
	char got[80];

	hexfpr(k, got);
	ck_assert_str_eq(got, want);
}

/* Append a new-format packet (five-octet length) to b at *n. */
static void put_pkt(unsigned char *b, size_t *n, int tag,
                    const unsigned char *body, size_t len)
{
	b[(*n)++] = (unsigned char)(0xc0 | tag);
	b[(*n)++] = 0xff;
	b[(*n)++] = (unsigned char)(len >> 24);
	b[(*n)++] = (unsigned char)(len >> 16);
	b[(*n)++] = (unsigned char)(len >> 8);
	b[(*n)++] = (unsigned char)len;
	memcpy(b + *n, body, len);
	*n += len;
}

/* The RFC 9580 A.3 results, whatever packets were added around them. */
static void assert_a3(const tlspool_openpgp_cert *c)
{
	ck_assert_int_eq(c->primary.version, 6);
	ck_assert_int_eq(c->primary.algorithm, TLSPOOL_OPENPGP_ALGO_ED25519);
	ck_assert_str_eq(c->primary.algorithm_name, "Ed25519");
	assert_fpr(&c->primary, a3_fpr);
	ck_assert_msg(c->primary.valid, "%s", c->primary.reason);
	ck_assert_uint_eq(c->primary.flags,
	                  TLSPOOL_OPENPGP_CERTIFY | TLSPOOL_OPENPGP_SIGN);
	ck_assert_uint_eq(c->nuids, 0);
	ck_assert_uint_eq(c->nsubkeys, 1);
	ck_assert_int_eq(c->subkeys[0].algorithm, TLSPOOL_OPENPGP_ALGO_X25519);
	assert_fpr(&c->subkeys[0], a3_sub);
	ck_assert_msg(c->subkeys[0].valid, "%s", c->subkeys[0].reason);
	ck_assert_uint_eq(c->subkeys[0].flags,
	                  TLSPOOL_OPENPGP_ENCRYPT_COMMS |
	                          TLSPOOL_OPENPGP_ENCRYPT_STORAGE);
	/* both signatures, each verified, each by the primary key */
	ck_assert_uint_eq(c->nsigs, 2);
	ck_assert_int_eq(c->sigs[0].type, 0x1f);
	ck_assert_int_eq(c->sigs[0].target, TLSPOOL_OPENPGP_ON_KEY);
	ck_assert_int_eq(c->sigs[1].type, 0x18);
	ck_assert_int_eq(c->sigs[1].target, TLSPOOL_OPENPGP_ON_SUBKEY);
	ck_assert_uint_eq(c->sigs[1].target_index, 0);
	for (size_t i = 0; i < 2; i++) {
		ck_assert_msg(c->sigs[i].outcome == TLSPOOL_OPENPGP_SIG_GOOD,
		              "sig %zu: %s", i, c->sigs[i].reason);
		ck_assert_int_eq(c->sigs[i].version, 6);
		ck_assert_int_eq(c->sigs[i].algorithm, TLSPOOL_OPENPGP_ALGO_ED25519);
		ck_assert_int_eq(c->sigs[i].hash, 10); /* SHA2-512 */
		ck_assert_uint_eq(c->sigs[i].issuer_len, 32);
		ck_assert_mem_eq(c->sigs[i].issuer, c->primary.fingerprint, 32);
		ck_assert_str_eq(c->sigs[i].reason, "");
	}
}

/* --- negative cases: armor ------------------------------------------------ */

/* Edits of the RFC 9580 A.3 text: replace the first "from" by "to". */
static const struct {
	const char *from, *to, *detail;
} armor_rows[] = {
        {"-----END PGP PUBLIC KEY BLOCK-----\n", "", "no tail line"},
        {"END PGP PUBLIC", "END PGP PRIVATE", "expected the tail line"},
        {"BEGIN PGP PUBLIC KEY BLOCK", "BEGIN PGP MESSAGE",
         "a PGP MESSAGE, not a key block"},
        {"BEGIN PGP PUBLIC KEY BLOCK-----", "BEGIN PGP PUBLIC KEY BLOCK",
         "no header line"},
        {"xioG", "xi*G", "0x2a is not a base64 character"},
        {"xioG", "xio", "do not decode"},
        {"xioG", "xi==", "do not decode"},
        {"Bg==\n", "Bg==\n=AB\n", "a CRC24 line is"},
        {"Bg==\n-----END PGP PUBLIC KEY BLOCK-----\n", "Bg==\n=AAAA\n",
         "no tail line after the CRC24"},
        {"Bg==\n-----END PGP PUBLIC KEY BLOCK-----\n",
         "Bg==\n=AAAA\nxioG\n-----END PGP PUBLIC KEY BLOCK-----\n",
         "expected the tail line"},
        {"END PGP PUBLIC KEY BLOCK-----\n",
         "END PGP PUBLIC KEY BLOCK-----\nmore text\n",
         "text after the tail line"},
        /* the data now start "Y4d/" (0x63...): the packets decide */
        {"\n\nxioG", "\n\n", "0x63 is not a packet header"},
        {"-----BEGIN", "hello\n-----BEGIN", "0x68 is not a packet header"},
};

/* The "no data" and "AAAA" cases need whole texts. */
static const struct {
	const char *text, *detail;
} armor_texts[] = {
        {"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n-----END PGP PUBLIC KEY "
         "BLOCK-----\n",
         "armor: no data"},
        {"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n-----END PGP "
         "PUBLIC KEY BLOCK-----\n",
         "0x00 is not a packet header"},
        {"  \n-----BEGIN PGP PUBLIC KEY BLOCK-----", "no tail line"},
        {"-----BEGIN PGP ", "no header line"},
};

static char *replace_once(const char *text, const char *from, const char *to)
{
	const char *at = strstr(text, from);
	char *out = malloc(strlen(text) + strlen(to) + 1);

	ck_assert_ptr_nonnull(at);
	sprintf(out, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
	return out;
}

START_TEST(armor_rejects)
{
	size_t nrows = sizeof(armor_rows) / sizeof(armor_rows[0]);
	tlspool_span t = load(A3);
	char *orig = strndup((const char *)t.data, t.len), *text, err[200] = "";
	const char *detail;
	tlspool_openpgp_cert *c = (void *)1;
	tlspool_openpgp_secret *sec = (void *)1;
	int r;

	if ((size_t)_i < nrows) {
		text = replace_once(orig, armor_rows[_i].from, armor_rows[_i].to);
		detail = armor_rows[_i].detail;
	} else {
		text = strdup(armor_texts[_i - nrows].text);
		detail = armor_texts[_i - nrows].detail;
	}
	errno = 0;
	r = tlspool_openpgp_parse((const unsigned char *)text, strlen(text), 0,
	                          time(NULL), &c, err, sizeof(err));
	ck_assert_msg(r == -1 && errno == EBADMSG, "row %d: r %d errno %d (%s)",
	              _i, r, errno, err);
	ck_assert_msg(strstr(err, detail) != NULL, "row %d: \"%s\"", _i, err);
	ck_assert_ptr_null(c);
	/* a secret key file takes the same path */
	errno = 0;
	ck_assert_int_eq(tlspool_openpgp_secret_key((const unsigned char *)text,
	                                            strlen(text), time(NULL),
	                                            &sec, err, sizeof(err)),
	                 -1);
	ck_assert_int_eq(errno, EBADMSG);
	free(text);
	free(orig);
	free((void *)t.data);
}
END_TEST

/* ASCII armor in an OPENPGPKEY record: RFC 7929 publishes binary. */
START_TEST(armor_not_in_dns)
{
	tlspool_span pub = load("ed.pub"), spki = spki_of("ed.pub", 0);
	char *text = armor_text(pub.data, pub.len, "PUBLIC KEY BLOCK", NULL);
	tlspool_span rec = {(const unsigned char *)text, strlen(text)};
	tlspool_openpgp_input in = {.rawkey = spki, .records = &rec,
	                            .nrecords = 1, .dns = TLSPOOL_DNS_SECURE,
	                            .identity = "john@example.test",
	                            .now = time(NULL)};
	tlspool_openpgp_result *res;

	ck_assert_int_eq(tlspool_openpgp_match(&in, &res, NULL, 0), 0);
	ck_assert_int_eq(res->verdict, TLSPOOL_DANE_NO_USABLE);
	ck_assert_ptr_nonnull(strstr(res->reason, "ASCII armor in DNS"));
	tlspool_openpgp_result_free(res);
	/* the same text is a good key file */
	tlspool_openpgp_free(parse_span(rec.data, rec.len, 0, time(NULL)));
	free(text);
	free((void *)pub.data);
	free((void *)spki.data);
}
END_TEST

/* --- negative cases: signatures -------------------------------------------- */

/* A bad signature by each algorithm, in a User ID certification (the
 * primary key then has no valid self-signature) or in the first subkey's
 * binding (the subkey then does not count).  The Brainpool, secp256k1
 * and DSA ones go through libgcrypt, the others through GnuTLS. */
static const char *const bad_files[] = {"bp256.pub", "bp384.pub", "bp512.pub",
                                        "k1.pub",    "dsa.pub",   "ed.pub",
                                        "rsa.pub"};

START_TEST(bad_signature_each_algorithm)
{
	const char *name = bad_files[_i / 2];
	int binding = _i % 2;
	tlspool_span pub = load(name);
	unsigned char *b = malloc(pub.len);
	struct tp_pgp_packets pp;
	tlspool_openpgp_cert *c;
	const struct tp_pgp_pkt *sp = NULL;
	char err[200];
	size_t i, si;

	memcpy(b, pub.data, pub.len);
	ck_assert_int_eq(tp_pgp_split(b, pub.len, 0, &pp, err, sizeof(err)), 0);
	for (i = 1; i < pp.ncomp && sp == NULL; i++)
		if (pp.comp[i].kind == (binding ? TP_PGP_COMP_SUBKEY
		                                : TP_PGP_COMP_UID))
			sp = &pp.pkt[pp.comp[i].first];
	ck_assert_ptr_nonnull(sp);
	/* the last octet of the last signature value */
	b[(size_t)(sp->body - b) + sp->len - 1] ^= 0x01;
	si = (size_t)(sp - pp.pkt);
	tp_pgp_packets_free(&pp);
	c = parse_span(b, pub.len, 0, time(NULL));
	/* signature packets in order: find the one we broke */
	for (i = 0; i < c->nsigs; i++)
		if (c->sigs[i].outcome != TLSPOOL_OPENPGP_SIG_GOOD)
			break;
	ck_assert_msg(i < c->nsigs, "%s: no bad signature (packet %zu)", name,
	              si);
	ck_assert_msg(c->sigs[i].outcome == TLSPOOL_OPENPGP_SIG_BAD &&
	                      strstr(c->sigs[i].reason, "bad signature") != NULL,
	              "%s: %s: %s", name,
	              tlspool_openpgp_sig_outcome_name(c->sigs[i].outcome),
	              c->sigs[i].reason);
	/* the first five are libgcrypt's to verify */
	if (_i / 2 < 5)
		ck_assert_ptr_nonnull(strstr(c->sigs[i].reason, "libgcrypt"));
	else
		ck_assert_ptr_null(strstr(c->sigs[i].reason, "libgcrypt"));
	if (binding) {
		ck_assert_msg(c->primary.valid, "%s", c->primary.reason);
		ck_assert_int_eq(c->sigs[i].target, TLSPOOL_OPENPGP_ON_SUBKEY);
		ck_assert_int_eq(c->subkeys[0].valid, 0);
		ck_assert_ptr_nonnull(strstr(c->subkeys[0].reason,
		                             "no valid binding signature: bad "
		                             "signature"));
	} else {
		ck_assert_int_eq(c->sigs[i].target, TLSPOOL_OPENPGP_ON_UID);
		ck_assert_int_eq(c->primary.valid, 0);
		ck_assert_ptr_nonnull(strstr(c->primary.reason, "bad signature"));
		ck_assert_int_eq(c->uids[0].valid, 0);
	}
	/* every other signature still verifies */
	for (size_t j = 0; j < c->nsigs; j++)
		if (j != i && !c->sigs[j].embedded)
			ck_assert_msg(c->sigs[j].outcome == TLSPOOL_OPENPGP_SIG_GOOD,
			              "%s sig %zu: %s", name, j, c->sigs[j].reason);
	tlspool_openpgp_free(c);
	free(b);
	free((void *)pub.data);
}
END_TEST

/* Algorithms that nothing here verifies: reported as unsupported, never
 * valid.  Rows 0 and 1 are keys made by hand (an Ed448 key, an ECDSA key
 * on a curve that is not known), the others edit the self-signature of
 * ed.pub (its version, hash or public-key algorithm octet). */
static const struct {
	const char *detail, *algorithm_name;
} unsupported_rows[] = {
        {"signatures by Ed448 keys are not supported", "Ed448"},
        {"signatures by ECDSA-unknown-curve keys are not supported",
         "ECDSA-unknown-curve"},
        {"signature version 5 is not supported", NULL},
        {"hash algorithm 2 (SHA-1) is not accepted", NULL},
        {"signature algorithm 16 (ElGamal) is not supported", NULL},
        {"hash algorithm 99 (unknown) is not accepted", NULL},
};

START_TEST(unsupported_algorithms)
{
	static const unsigned char uid[] = "X <x@example.test>";
	unsigned char b[4096], body[512];
	size_t n = 0, bn = 0;
	tlspool_openpgp_cert *c;
	uint32_t t = (uint32_t)time(NULL) - 1000;

	if (_i < 2) {
		/* v4 key: version, creation time, algorithm, material */
		body[bn++] = 4;
		body[bn++] = (unsigned char)(t >> 24);
		body[bn++] = (unsigned char)(t >> 16);
		body[bn++] = (unsigned char)(t >> 8);
		body[bn++] = (unsigned char)t;
		if (_i == 0) {
			body[bn++] = TLSPOOL_OPENPGP_ALGO_ED448;
			memset(body + bn, 0x42, 57);
			bn += 57;
		} else {
			static const unsigned char ec[] = {
			        0x03, 0x2a, 0x03, 0x04, /* OID 1.2.3.4 */
			        0x00, 0x0b, 0x04, 0x01}; /* an 11-bit point */
			body[bn++] = TLSPOOL_OPENPGP_ALGO_ECDSA;
			memcpy(body + bn, ec, sizeof(ec));
			bn += sizeof(ec);
		}
		put_pkt(b, &n, 6, body, bn);
		put_pkt(b, &n, 13, uid, sizeof(uid) - 1);
		/* a positive certification with a creation time, no issuer */
		bn = 0;
		body[bn++] = 4;
		body[bn++] = 0x13;
		body[bn++] = _i == 0 ? TLSPOOL_OPENPGP_ALGO_ED448
		                     : TLSPOOL_OPENPGP_ALGO_ECDSA;
		body[bn++] = 8;
		body[bn++] = 0;
		body[bn++] = 6;
		body[bn++] = 5;
		body[bn++] = 2;
		t += 10;
		body[bn++] = (unsigned char)(t >> 24);
		body[bn++] = (unsigned char)(t >> 16);
		body[bn++] = (unsigned char)(t >> 8);
		body[bn++] = (unsigned char)t;
		memset(body + bn, 0, 4); /* no unhashed area, left16 */
		bn += 4;
		if (_i == 0) {
			memset(body + bn, 0x17, 114);
			bn += 114;
		} else {
			static const unsigned char rs[] = {0, 8, 1, 0, 8, 1};
			memcpy(body + bn, rs, sizeof(rs));
			bn += sizeof(rs);
		}
		put_pkt(b, &n, 2, body, bn);
	} else {
		tlspool_span pub = load("ed.pub");
		size_t off;

		ck_assert_uint_le(pub.len, sizeof(b));
		memcpy(b, pub.data, pub.len);
		n = pub.len;
		/* the User ID's self-signature, old format: 0x88 LEN body */
		off = 2 + pub.data[1];
		off += 2 + pub.data[off + 1];
		ck_assert_int_eq(b[off], 0x88);
		if (_i == 2)
			b[off + 2] = 5;
		else if (_i == 3)
			b[off + 2 + 3] = 2;
		else if (_i == 4)
			b[off + 2 + 2] = 16;
		else
			b[off + 2 + 3] = 99;
		free((void *)pub.data);
	}
	c = parse_span(b, n, 0, time(NULL));
	ck_assert_int_eq(c->primary.valid, 0);
	if (unsupported_rows[_i].algorithm_name)
		ck_assert_str_eq(c->primary.algorithm_name,
		                 unsupported_rows[_i].algorithm_name);
	ck_assert_uint_ge(c->nsigs, 1);
	ck_assert_int_eq(c->sigs[0].target, TLSPOOL_OPENPGP_ON_UID);
	ck_assert_msg(c->sigs[0].outcome == TLSPOOL_OPENPGP_SIG_UNSUPPORTED,
	              "row %d: %s: %s", _i,
	              tlspool_openpgp_sig_outcome_name(c->sigs[0].outcome),
	              c->sigs[0].reason);
	ck_assert_msg(strstr(c->sigs[0].reason, unsupported_rows[_i].detail),
	              "row %d: \"%s\"", _i, c->sigs[0].reason);
	ck_assert_msg(strstr(c->primary.reason, "no valid self-signature"),
	              "%s", c->primary.reason);
	ck_assert_int_eq(c->uids[0].valid, 0);
	tlspool_openpgp_free(c);
}
END_TEST

/* A signature whose own expiration time passes: made here, by GnuTLS,
 * with ed.sec's secret, over ed.pub's key and User ID (RFC 9580 section
 * 5.2.4), valid one hour from the key's creation.  Before the hour it is
 * GOOD (so it is a real signature), after it EXPIRED. */
static size_t expiring_key(unsigned char *b)
{
	tlspool_span pub = load("ed.pub"), sec = load("ed.sec");
	tlspool_openpgp_secret *s;
	struct tp_pgp_packets pp;
	gnutls_privkey_t key;
	gnutls_datum_t x, k, msg, sig;
	gnutls_hash_hd_t h;
	unsigned char seed[32], sb[512], hdr[5], digest[32], fpr[20];
	const struct tp_pgp_pkt *kp, *up;
	char err[200];
	size_t n = 0, sn = 0, hstart, i;
	uint32_t created;

	ck_assert_int_eq(tlspool_openpgp_secret_key(sec.data, sec.len,
	                                            time(NULL), &s, err,
	                                            sizeof(err)),
	                 0);
	ck_assert_int_eq(tp_pgp_split(pub.data, pub.len, 0, &pp, err,
	                              sizeof(err)),
	                 0);
	kp = &pp.pkt[0];
	up = &pp.pkt[pp.comp[1].index];
	created = tp_be32(kp->body + 1);
	memcpy(fpr, s->fingerprint, 20);
	/* the hashed part: v4, positive certification, EdDSA, SHA2-256 */
	sb[sn++] = 4;
	sb[sn++] = 0x13;
	sb[sn++] = TLSPOOL_OPENPGP_ALGO_EDDSA_LEGACY;
	sb[sn++] = 8;
	sb[sn++] = 0;
	sb[sn++] = 6 + 6 + 23 + 3;
	hstart = sn;
	sb[sn++] = 5; /* creation time: the key's */
	sb[sn++] = 2;
	for (i = 0; i < 4; i++)
		sb[sn++] = (unsigned char)(created >> (24 - 8 * i));
	sb[sn++] = 5; /* signature expiration: one hour */
	sb[sn++] = 3;
	sb[sn++] = 0;
	sb[sn++] = 0;
	sb[sn++] = 0x0e;
	sb[sn++] = 0x10;
	sb[sn++] = 22; /* issuer fingerprint */
	sb[sn++] = 33;
	sb[sn++] = 4;
	memcpy(sb + sn, fpr, 20);
	sn += 20;
	sb[sn++] = 2; /* key flags: certify, sign, auth */
	sb[sn++] = 27;
	sb[sn++] = 0x23;
	ck_assert_uint_eq(sn - hstart, sb[5]);
	/* the digest of RFC 9580 section 5.2.4 */
	ck_assert_int_eq(gnutls_hash_init(&h, GNUTLS_DIG_SHA256), 0);
	hdr[0] = 0x99;
	hdr[1] = (unsigned char)(kp->len >> 8);
	hdr[2] = (unsigned char)kp->len;
	gnutls_hash(h, hdr, 3);
	gnutls_hash(h, kp->body, kp->len);
	hdr[0] = 0xb4;
	hdr[1] = hdr[2] = hdr[3] = 0;
	hdr[4] = (unsigned char)up->len;
	gnutls_hash(h, hdr, 5);
	gnutls_hash(h, up->body, up->len);
	gnutls_hash(h, sb, sn);
	{
		unsigned char tr[6] = {4, 0xff, 0, 0, 0, (unsigned char)sn};

		gnutls_hash(h, tr, 6);
	}
	gnutls_hash_deinit(h, digest);
	/* EdDSA signs the digest; r and s become MPIs */
	memset(seed, 0, sizeof(seed));
	memcpy(seed + 32 - s->k.len, s->k.data, s->k.len);
	x.data = (unsigned char *)s->x.data;
	x.size = (unsigned)s->x.len;
	k.data = seed;
	k.size = 32;
	ck_assert_int_eq(gnutls_privkey_init(&key), 0);
	ck_assert_int_eq(gnutls_privkey_import_ecc_raw(
	                         key, GNUTLS_ECC_CURVE_ED25519, &x, NULL, &k),
	                 0);
	msg.data = digest;
	msg.size = sizeof(digest);
	ck_assert_int_eq(gnutls_privkey_sign_data2(key, GNUTLS_SIGN_EDDSA_ED25519,
	                                           0, &msg, &sig),
	                 0);
	ck_assert_uint_eq(sig.size, 64);
	sb[sn++] = 0; /* no unhashed subpackets */
	sb[sn++] = 0;
	sb[sn++] = digest[0];
	sb[sn++] = digest[1];
	for (i = 0; i < 2; i++) {
		const unsigned char *v = sig.data + 32 * i;
		size_t l = 32, bits;

		while (l > 0 && v[0] == 0) {
			v++;
			l--;
		}
		bits = l ? (l - 1) * 8 + (size_t)(32 - __builtin_clz(v[0])) : 0;
		sb[sn++] = (unsigned char)(bits >> 8);
		sb[sn++] = (unsigned char)bits;
		memcpy(sb + sn, v, l);
		sn += l;
	}
	put_pkt(b, &n, 6, kp->body, kp->len);
	put_pkt(b, &n, 13, up->body, up->len);
	put_pkt(b, &n, 2, sb, sn);
	gnutls_free(sig.data);
	gnutls_privkey_deinit(key);
	tp_pgp_packets_free(&pp);
	tlspool_openpgp_secret_free(s);
	free((void *)pub.data);
	free((void *)sec.data);
	return n;
}

START_TEST(expired_signature)
{
	unsigned char b[4096];
	size_t n = expiring_key(b);
	tlspool_openpgp_cert *c = parse_span(b, n, 0, time(NULL));
	time_t created = c->primary.created;

	/* within the hour: a good signature (the key is seconds old) */
	ck_assert_uint_eq(c->nsigs, 1);
	ck_assert_msg(c->sigs[0].outcome == TLSPOOL_OPENPGP_SIG_GOOD, "%s",
	              c->sigs[0].reason);
	ck_assert_int_eq(c->primary.valid, 1);
	ck_assert_int_eq(c->sigs[0].created, created);
	tlspool_openpgp_free(c);
	/* after it */
	c = parse_span(b, n, 0, created + 3600);
	ck_assert_int_eq(c->sigs[0].outcome, TLSPOOL_OPENPGP_SIG_EXPIRED);
	ck_assert_str_eq(c->sigs[0].reason, "signature expired");
	ck_assert_int_eq(c->primary.valid, 0);
	ck_assert_ptr_nonnull(strstr(c->primary.reason, "signature expired"));
	tlspool_openpgp_free(c);
	/* a bit flipped in s: bad, not expired */
	b[n - 1] ^= 1;
	c = parse_span(b, n, 0, created + 3600);
	ck_assert_int_eq(c->sigs[0].outcome, TLSPOOL_OPENPGP_SIG_BAD);
	tlspool_openpgp_free(c);
}
END_TEST

/* Revoked: what a good revocation voids is listed REVOKED, the
 * revocation itself GOOD. */
START_TEST(revoked_outcomes)
{
	tlspool_openpgp_cert *c = parse_file("rev.pub");
	size_t i, nrev = 0, nvoid = 0;

	ck_assert_str_eq(c->primary.reason, "the primary key is revoked");
	for (i = 0; i < c->nsigs; i++) {
		if (c->sigs[i].type == 0x20) {
			ck_assert_int_eq(c->sigs[i].outcome,
			                 TLSPOOL_OPENPGP_SIG_GOOD);
			nrev++;
		} else {
			ck_assert_int_eq(c->sigs[i].outcome,
			                 TLSPOOL_OPENPGP_SIG_REVOKED);
			ck_assert_str_eq(c->sigs[i].reason,
			                 "the primary key is revoked");
			nvoid++;
		}
	}
	ck_assert_uint_eq(nrev, 1);
	ck_assert_uint_eq(nvoid, 2); /* the certification and the binding */
	tlspool_openpgp_free(c);
	c = parse_file("revsub.pub");
	ck_assert_int_eq(c->primary.valid, 1);
	for (i = 0, nrev = nvoid = 0; i < c->nsigs; i++) {
		if (c->sigs[i].target != TLSPOOL_OPENPGP_ON_SUBKEY)
			continue;
		if (c->sigs[i].type == 0x28) {
			ck_assert_int_eq(c->sigs[i].outcome,
			                 TLSPOOL_OPENPGP_SIG_GOOD);
			nrev++;
		} else if (c->sigs[i].type == 0x18) {
			ck_assert_int_eq(c->sigs[i].outcome,
			                 TLSPOOL_OPENPGP_SIG_REVOKED);
			ck_assert_str_eq(c->sigs[i].reason, "the subkey is revoked");
			nvoid++;
		}
	}
	ck_assert_uint_eq(nrev, 1);
	ck_assert_uint_eq(nvoid, 1);
	tlspool_openpgp_free(c);
}
END_TEST

/* --- positive cases: RFC 9580 Appendix A ----------------------------------- */

START_TEST(rfc9580_certificate)
{
	tlspool_span t = _i == 0 ? load(A3) : unarmor(A3);
	tlspool_openpgp_cert *c = parse_span(t.data, t.len, 0, time(NULL));

	ck_assert_int_eq(c->armor, _i == 0 ? TLSPOOL_OPENPGP_ARMOR_NO_CRC
	                                   : TLSPOOL_OPENPGP_ARMOR_NONE);
	ck_assert_int_eq(c->secret, 0);
	assert_a3(c);
	tlspool_openpgp_free(c);
	free((void *)t.data);
}
END_TEST

/* Packets that must be skipped, put anywhere in the A.3 certificate:
 * before packet "at" (4: at the end). */
static const unsigned char padding[] = {0xd5, 0x10, 1, 2,  3,  4,  5, 6, 7, 8,
                                        9,    10,   11, 12, 13, 14, 15, 16};
static const unsigned char marker[] = {0xca, 0x03, 'P', 'G', 'P'};
static const unsigned char tag40[] = {0xe8, 0x02, 0xab, 0xcd};
static const unsigned char tag63[] = {0xff, 0x00};
static const unsigned char trust[] = {0xb0, 0x02, 0x00, 0x3c};
static const struct {
	const unsigned char *pkt;
	size_t len;
	int at;
} extra_rows[] = {
        {padding, sizeof(padding), 4}, /* the case: appended */
        {padding, sizeof(padding), 0},
        {padding, sizeof(padding), 1},
        {padding, sizeof(padding), 3},
        {marker, sizeof(marker), 0},
        {marker, sizeof(marker), 2},
        {tag40, sizeof(tag40), 1},
        {tag63, sizeof(tag63), 4},
        {trust, sizeof(trust), 2},
        {NULL, 300, 4}, /* a Padding packet with a two-octet length */
};

START_TEST(rfc9580_skipped_packets)
{
	tlspool_span bin = unarmor(A3);
	unsigned char *b = malloc(bin.len + 400);
	struct tp_pgp_packets pp;
	tlspool_openpgp_cert *c;
	char err[200];
	size_t at, n = 0;

	ck_assert_int_eq(tp_pgp_split(bin.data, bin.len, 0, &pp, err,
	                              sizeof(err)),
	                 0);
	ck_assert_uint_eq(pp.npkt, 4);
	at = extra_rows[_i].at == 4
	             ? bin.len
	             : (size_t)(pp.pkt[extra_rows[_i].at].body - bin.data) - 2;
	tp_pgp_packets_free(&pp);
	memcpy(b, bin.data, at);
	n = at;
	if (extra_rows[_i].pkt != NULL) {
		memcpy(b + n, extra_rows[_i].pkt, extra_rows[_i].len);
		n += extra_rows[_i].len;
	} else { /* 300 = ((192 - 192) << 8) + 108 + 192 */
		b[n++] = 0xd5;
		b[n++] = 192;
		b[n++] = 108;
		memset(b + n, 0x5a, 300);
		n += 300;
	}
	memcpy(b + n, bin.data + at, bin.len - at);
	n += bin.len - at;
	c = parse_span(b, n, 0, time(NULL));
	assert_a3(c);
	tlspool_openpgp_free(c);
	/* and the secret key A.4 with a Padding packet at its end */
	free((void *)bin.data);
	bin = unarmor(A4);
	memcpy(b, bin.data, bin.len);
	memcpy(b + bin.len, padding, sizeof(padding));
	c = parse_span(b, bin.len + sizeof(padding), 1, time(NULL));
	ck_assert_int_eq(c->secret, 1);
	assert_a3(c);
	tlspool_openpgp_free(c);
	free(b);
	free((void *)bin.data);
}
END_TEST

START_TEST(rfc9580_v4_sample)
{
	tlspool_span t = load(A1);
	tlspool_openpgp_cert *c = parse_span(t.data, t.len, 0, time(NULL));

	ck_assert_int_eq(c->primary.version, 4);
	ck_assert_int_eq(c->primary.algorithm, TLSPOOL_OPENPGP_ALGO_EDDSA_LEGACY);
	assert_fpr(&c->primary, "C959BDBAFA32A2F89A153B678CFDE12197965A9A");
	/* a lone key packet: nothing certifies it */
	ck_assert_uint_eq(c->nsigs, 0);
	ck_assert_int_eq(c->primary.valid, 0);
	ck_assert_str_eq(c->primary.reason, "no valid self-signature");
	tlspool_openpgp_free(c);
	free((void *)t.data);
}
END_TEST

/* A.4: the secret key, armored, is a credential: tp_openpgp_privkey()
 * (what openpgp_key = FILE uses) makes a GnuTLS key of it whose
 * signatures A.3's public key verifies. */
START_TEST(rfc9580_secret_key)
{
	tlspool_span t = load(A4), a3 = load(A3);
	tlspool_openpgp_secret *s = NULL;
	tlspool_openpgp_cert *c;
	struct tp_identity id;
	gnutls_privkey_t key = NULL;
	gnutls_pubkey_t pub;
	gnutls_datum_t msg = {(unsigned char *)"tlspool", 7}, sig;
	char err[200], path[160];
	FILE *f;

	ck_assert_msg(tlspool_openpgp_secret_key(t.data, t.len, time(NULL), &s,
	                                         err, sizeof(err)) == 0,
	              "%s", err);
	ck_assert_int_eq(s->algorithm, TLSPOOL_OPENPGP_ALGO_ED25519);
	ck_assert_str_eq(s->curve, "Ed25519");
	ck_assert_int_eq(s->subkey, 0); /* no auth key: the primary */
	ck_assert_uint_eq(s->fingerprint_len, 32);
	ck_assert_uint_eq(s->x.len, 32);
	ck_assert_uint_le(s->k.len, 32);
	tlspool_openpgp_secret_free(s);
	/* through the credential code, from a file */
	snprintf(path, sizeof(path), "%s/rfc9580-a4.asc", dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(t.data, 1, t.len, f), t.len);
	fclose(f);
	chmod(path, 0600);
	memset(&id, 0, sizeof(id));
	snprintf(id.name, sizeof(id.name), "rfc9580@example.test");
	snprintf(id.openpgp_key, sizeof(id.openpgp_key), "%s", path);
	ck_assert_int_eq(tp_openpgp_privkey(&id, &key), 0);
	ck_assert_int_eq(gnutls_privkey_sign_data2(key, GNUTLS_SIGN_EDDSA_ED25519,
	                                           0, &msg, &sig),
	                 0);
	c = parse_span(a3.data, a3.len, 0, time(NULL));
	ck_assert_int_eq(tp_pgp_pubkey(&((struct tp_pgp *)c->internal)->keys[0],
	                               &pub),
	                 0);
	ck_assert_int_ge(gnutls_pubkey_verify_data2(pub, GNUTLS_SIGN_EDDSA_ED25519,
	                                            0, &msg, &sig),
	                 0);
	sig.data[0] ^= 1;
	ck_assert_int_lt(gnutls_pubkey_verify_data2(pub, GNUTLS_SIGN_EDDSA_ED25519,
	                                            0, &msg, &sig),
	                 0);
	gnutls_free(sig.data);
	gnutls_privkey_deinit(key);
	tlspool_openpgp_free(c);
	free((void *)t.data);
	free((void *)a3.data);
}
END_TEST

/* --- positive cases: armor ------------------------------------------------- */

/* Edits that armor readers must take: headers, no blank line, CRLF,
 * white space; GnuPG's armor with its CRC24, right and wrong. */
static const struct {
	const char *file, *from, *to;
	int armor;
} armor_ok_rows[] = {
        {A3, "", "", TLSPOOL_OPENPGP_ARMOR_NO_CRC},
        {A3, "BLOCK-----\n\n", "BLOCK-----\nComment: a test\nVersion: x y\n\n",
         TLSPOOL_OPENPGP_ARMOR_NO_CRC},
        {A3, "BLOCK-----\n\n", "BLOCK-----\n", TLSPOOL_OPENPGP_ARMOR_NO_CRC},
        {A3, "\n", "\r\n", TLSPOOL_OPENPGP_ARMOR_NO_CRC}, /* see below */
        {A3, "-----BEGIN", "\n \t\n-----BEGIN", TLSPOOL_OPENPGP_ARMOR_NO_CRC},
        {A3, "Bg==\n", "Bg==  \t\n", TLSPOOL_OPENPGP_ARMOR_NO_CRC},
        {A3, "xioGY4d/", "xioG Y4d/\t", TLSPOOL_OPENPGP_ARMOR_NO_CRC},
        {"bp256.pub.asc", "", "", TLSPOOL_OPENPGP_ARMOR_CRC_OK},
        {"bp256.pub.asc", "\n=", "\n=A", TLSPOOL_OPENPGP_ARMOR_CRC_BAD},
        {"dsa.pub.asc", "", "", TLSPOOL_OPENPGP_ARMOR_CRC_OK},
};

static char *replace_all(const char *text, const char *from, const char *to)
{
	size_t fl = strlen(from), tl = strlen(to), n = 0;
	char *out = malloc(strlen(text) * (tl + 1) + 1), *o = out;
	const char *p = text, *q;

	if (fl == 0)
		return strdup(text);
	while ((q = strstr(p, from)) != NULL) {
		memcpy(o, p, (size_t)(q - p));
		o += q - p;
		memcpy(o, to, tl);
		o += tl;
		p = q + fl;
		n++;
	}
	strcpy(o, p);
	ck_assert_uint_gt(n, 0);
	return out;
}

START_TEST(armor_accepts)
{
	tlspool_span t = load(armor_ok_rows[_i].file);
	char *orig = strndup((const char *)t.data, t.len), *text;
	tlspool_openpgp_cert *c;

	if (_i == 3)
		text = replace_all(orig, "\n", "\r\n");
	else if (armor_ok_rows[_i].from[0] == '\0')
		text = strdup(orig);
	else if (_i == 8) { /* the CRC24 line: its first character changed */
		char *eq = strstr(orig, "\n=") + 2;

		*eq = *eq == 'A' ? 'B' : 'A';
		text = strdup(orig);
	} else
		text = replace_once(orig, armor_ok_rows[_i].from,
		                    armor_ok_rows[_i].to);
	c = parse_span((const unsigned char *)text, strlen(text), 0,
	               time(NULL));
	ck_assert_msg(c->armor == armor_ok_rows[_i].armor, "row %d: armor %d",
	              _i, c->armor);
	if (strcmp(armor_ok_rows[_i].file, A3) == 0) {
		assert_a3(c);
	} else {
		char want[80], fname[64];

		snprintf(fname, sizeof(fname), "%.*s.fpr",
		         (int)strcspn(armor_ok_rows[_i].file, "."),
		         armor_ok_rows[_i].file);
		text_line(fname, want, sizeof(want));
		assert_fpr(&c->primary, want);
		ck_assert_int_eq(c->primary.valid, 1);
	}
	tlspool_openpgp_free(c);
	free(text);
	free(orig);
	free((void *)t.data);
}
END_TEST

/* A wrong CRC24 is no reason to reject, nor a right one a reason to
 * accept: with a signature broken inside the armor and the CRC24 of the
 * unbroken packets, the packets' own check finds it. */
START_TEST(armor_packets_decide)
{
	tlspool_span pub = load("ed.pub");
	unsigned char *b = malloc(pub.len);
	char crc[8], *text;
	uint32_t v = tp_pgp_crc24(pub.data, pub.len);
	unsigned char q[3] = {(unsigned char)(v >> 16), (unsigned char)(v >> 8),
	                      (unsigned char)v};
	gnutls_datum_t in = {q, 3}, out;
	tlspool_openpgp_cert *c;
	size_t off;

	/* CRC24 known answer: the initial value of RFC 9580 section 6.1 */
	ck_assert_uint_eq(tp_pgp_crc24((const unsigned char *)"", 0), 0xb704ce);
	ck_assert_int_eq(gnutls_base64_encode2(&in, &out), 0);
	snprintf(crc, sizeof(crc), "=%.4s", out.data);
	gnutls_free(out.data);
	memcpy(b, pub.data, pub.len);
	off = 2 + pub.data[1];
	off += 2 + pub.data[off + 1];
	b[off + 2 + b[off + 1] - 1] ^= 0x01; /* the self-signature's s */
	text = armor_text(b, pub.len, "PUBLIC KEY BLOCK", crc);
	c = parse_span((const unsigned char *)text, strlen(text), 0, time(NULL));
	ck_assert_int_eq(c->armor, TLSPOOL_OPENPGP_ARMOR_CRC_BAD);
	ck_assert_int_eq(c->sigs[0].outcome, TLSPOOL_OPENPGP_SIG_BAD);
	ck_assert_int_eq(c->primary.valid, 0);
	tlspool_openpgp_free(c);
	free(text);
	/* the unbroken packets with the same CRC24: right, and valid */
	text = armor_text(pub.data, pub.len, "PUBLIC KEY BLOCK", crc);
	c = parse_span((const unsigned char *)text, strlen(text), 0, time(NULL));
	ck_assert_int_eq(c->armor, TLSPOOL_OPENPGP_ARMOR_CRC_OK);
	ck_assert_int_eq(c->primary.valid, 1);
	tlspool_openpgp_free(c);
	free(text);
	free(b);
	free((void *)pub.data);
}
END_TEST

/* --- positive cases: what only libgcrypt verifies --------------------------- */

static const struct {
	const char *name, *algo, *uid;
	size_t nsub;
	const char *subalgo[2];
	unsigned subflags[2];
} algo_keys[] = {
        {"bp256", "ECDSA-brainpoolP256r1", "BP <bp@example.test>", 2,
         {"EdDSA-Ed25519", "ECDSA-brainpoolP256r1"},
         {TLSPOOL_OPENPGP_AUTH, TLSPOOL_OPENPGP_SIGN}},
        {"bp384", "ECDSA-brainpoolP384r1", "BP384 <bp384@example.test>", 1,
         {"ECDSA-P-256"}, {TLSPOOL_OPENPGP_AUTH}},
        {"bp512", "ECDSA-brainpoolP512r1", "BP512 <bp512@example.test>", 1,
         {"EdDSA-Ed25519"}, {TLSPOOL_OPENPGP_AUTH}},
        {"k1", "ECDSA-secp256k1", "K1 <k1@example.test>", 1, {"EdDSA-Ed25519"},
         {TLSPOOL_OPENPGP_AUTH}},
        {"dsa", "DSA-2048", "DSA <dsa@example.test>", 2,
         {"ECDSA-P-256", "ElGamal-2048"},
         {TLSPOOL_OPENPGP_AUTH, TLSPOOL_OPENPGP_ENCRYPT_COMMS |
                                        TLSPOOL_OPENPGP_ENCRYPT_STORAGE}},
};

START_TEST(gnupg_algos)
{
	char file[64], want[80];
	tlspool_openpgp_cert *c;
	tlspool_openpgp_secret *s;
	tlspool_span sec;
	char err[200];
	size_t i, ngood = 0;

	snprintf(file, sizeof(file), "%s.pub", algo_keys[_i].name);
	c = parse_file(file);
	snprintf(file, sizeof(file), "%s.fpr", algo_keys[_i].name);
	text_line(file, want, sizeof(want));
	assert_fpr(&c->primary, want);
	ck_assert_str_eq(c->primary.algorithm_name, algo_keys[_i].algo);
	ck_assert_str_eq(tp_pgp_backend(&((struct tp_pgp *)c->internal)->keys[0]),
	                 "libgcrypt");
	ck_assert_msg(c->primary.valid, "%s", c->primary.reason);
	ck_assert_uint_eq(c->nuids, 1);
	ck_assert_str_eq(c->uids[0].text, algo_keys[_i].uid);
	ck_assert_int_eq(c->uids[0].valid, 1);
	ck_assert_uint_eq(c->nsubkeys, algo_keys[_i].nsub);
	snprintf(file, sizeof(file), "%s.subs", algo_keys[_i].name);
	for (i = 0; i < c->nsubkeys; i++) {
		text(file, want, sizeof(want), (int)i);
		/* the Elgamal subkey's fingerprint covers exactly p, g, y */
		assert_fpr(&c->subkeys[i], want);
		ck_assert_str_eq(c->subkeys[i].algorithm_name,
		                 algo_keys[_i].subalgo[i]);
		ck_assert_msg(c->subkeys[i].valid, "%s", c->subkeys[i].reason);
		ck_assert_uint_eq(c->subkeys[i].flags, algo_keys[_i].subflags[i]);
	}
	for (i = 0; i < c->nsigs; i++) {
		ck_assert_msg(c->sigs[i].outcome == TLSPOOL_OPENPGP_SIG_GOOD,
		              "%s sig %zu: %s", algo_keys[_i].name, i,
		              c->sigs[i].reason);
		ngood++;
	}
	/* certification and bindings; bp256's signing subkey adds its
	 * embedded back-signature, by the Brainpool subkey */
	ck_assert_uint_eq(ngood, 1 + algo_keys[_i].nsub + (_i == 0));
	if (_i == 0) {
		ck_assert_int_eq(c->sigs[c->nsigs - 1].embedded, 1);
		ck_assert_int_eq(c->sigs[c->nsigs - 1].type, 0x19);
		ck_assert_uint_eq(c->sigs[c->nsigs - 1].target_index, 1);
	}
	tlspool_openpgp_free(c);
	/* the secret export loads (a DSA secret included) and gives the
	 * authentication subkey, which TLS can use */
	for (int armored = 0; armored < 2; armored++) {
		snprintf(file, sizeof(file), "%s.sec%s", algo_keys[_i].name,
		         armored ? ".asc" : "");
		sec = load(file);
		c = parse_span(sec.data, sec.len, 1, time(NULL));
		ck_assert_int_eq(c->secret, 1);
		ck_assert_int_eq(((struct tp_pgp *)c->internal)->keys[0].has_secret,
		                 1);
		ck_assert_int_eq(c->armor, armored ? TLSPOOL_OPENPGP_ARMOR_CRC_OK
		                                   : TLSPOOL_OPENPGP_ARMOR_NONE);
		tlspool_openpgp_free(c);
		ck_assert_msg(tlspool_openpgp_secret_key(sec.data, sec.len,
		                                         time(NULL), &s, err,
		                                         sizeof(err)) == 0,
		              "%s: %s", file, err);
		ck_assert_int_eq(s->subkey, 1);
		snprintf(file, sizeof(file), "%s.subs", algo_keys[_i].name);
		text(file, want, sizeof(want), 0);
		{
			char got[80];

			for (i = 0; i < s->fingerprint_len; i++)
				sprintf(got + 2 * i, "%02X", s->fingerprint[i]);
			ck_assert_str_eq(got, want);
		}
		tlspool_openpgp_secret_free(s);
		free((void *)sec.data);
	}
}
END_TEST

/* A key whose only key TLS could use is gone: its DSA primary secret
 * loads, but cannot sign a handshake. */
START_TEST(dsa_alone_is_no_credential)
{
	tlspool_span sec = load("dsa.sec");
	struct tp_pgp_packets pp;
	tlspool_openpgp_secret *s = NULL;
	tlspool_openpgp_cert *c;
	char err[200];
	size_t n;

	ck_assert_int_eq(tp_pgp_split(sec.data, sec.len, 1, &pp, err,
	                              sizeof(err)),
	                 0);
	/* key, User ID, certification: up to the first subkey */
	ck_assert_int_eq(pp.comp[2].kind, TP_PGP_COMP_SUBKEY);
	n = (size_t)(pp.pkt[pp.comp[2].index - 1].body +
	             pp.pkt[pp.comp[2].index - 1].len - sec.data);
	tp_pgp_packets_free(&pp);
	c = parse_span(sec.data, n, 1, time(NULL));
	ck_assert_int_eq(c->nsubkeys, 0);
	ck_assert_int_eq(c->primary.valid, 1);
	tlspool_openpgp_free(c);
	errno = 0;
	ck_assert_int_eq(tlspool_openpgp_secret_key(sec.data, n, time(NULL), &s,
	                                            err, sizeof(err)),
	                 -1);
	ck_assert_int_eq(errno, ENOKEY);
	ck_assert_ptr_nonnull(strstr(err, "can sign a TLS handshake"));
	free((void *)sec.data);
}
END_TEST

/* OPENPGPKEY with a Brainpool or DSA primary key: the peer's key is the
 * authentication subkey that the primary key certified. */
static const struct {
	const char *record, *identity;
	size_t key;
	tlspool_dane_verdict want;
	const char *detail;
} algo_match_rows[] = {
        {"rev.pub", "rev@example.test", 1, TLSPOOL_DANE_NO_MATCH,
         "but the primary key does not count: the primary key is revoked"},
        {"bp256.pub", "bp384@example.test", 1, TLSPOOL_DANE_NO_MATCH,
         "no User ID names"},
        {"bp256.pub", "bp@example.test", 1, TLSPOOL_DANE_AUTHENTICATED,
         "subkey"},
        {"bp384.pub", "bp384@example.test", 1, TLSPOOL_DANE_AUTHENTICATED,
         "(ECDSA-P-256)"},
        {"k1.pub", "k1@example.test", 1, TLSPOOL_DANE_AUTHENTICATED, "subkey"},
        {"dsa.pub", "dsa@example.test", 1, TLSPOOL_DANE_AUTHENTICATED,
         "(ECDSA-P-256)"},
};

START_TEST(match_gcrypt_keys)
{
	tlspool_span rec = load(algo_match_rows[_i].record),
	             spki = spki_of(algo_match_rows[_i].record,
	                            algo_match_rows[_i].key);
	tlspool_openpgp_input in = {.rawkey = spki, .records = &rec,
	                            .nrecords = 1, .dns = TLSPOOL_DNS_SECURE,
	                            .identity = algo_match_rows[_i].identity,
	                            .now = time(NULL)};
	tlspool_openpgp_result *res;

	ck_assert_int_eq(tlspool_openpgp_match(&in, &res, NULL, 0), 0);
	ck_assert_msg(res->verdict == algo_match_rows[_i].want, "row %d: %s: %s",
	              _i, tlspool_dane_verdict_name(res->verdict), res->reason);
	ck_assert_msg(strstr(res->reason, algo_match_rows[_i].detail) != NULL,
	              "row %d: %s", _i, res->reason);
	tlspool_openpgp_result_free(res);
	free((void *)rec.data);
	free((void *)spki.data);
}
END_TEST

START_TEST(sig_outcome_names)
{
	ck_assert_str_eq(tlspool_openpgp_sig_outcome_name(TLSPOOL_OPENPGP_SIG_GOOD), "good");
	ck_assert_str_eq(tlspool_openpgp_sig_outcome_name(TLSPOOL_OPENPGP_SIG_BAD), "bad");
	ck_assert_str_eq(tlspool_openpgp_sig_outcome_name(TLSPOOL_OPENPGP_SIG_UNSUPPORTED), "unsupported");
	ck_assert_str_eq(tlspool_openpgp_sig_outcome_name(TLSPOOL_OPENPGP_SIG_EXPIRED), "expired");
	ck_assert_str_eq(tlspool_openpgp_sig_outcome_name(TLSPOOL_OPENPGP_SIG_REVOKED), "revoked");
	ck_assert_str_eq(tlspool_openpgp_sig_outcome_name(TLSPOOL_OPENPGP_SIG_UNCHECKED), "unchecked");
	ck_assert_str_eq(tlspool_openpgp_sig_outcome_name((tlspool_openpgp_sig_outcome)77), "unknown");
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("openpgp");
	TCase *neg = tcase_create("negative");
	TCase *pos = tcase_create("positive");

	tcase_set_timeout(neg, 60);
	tcase_set_timeout(pos, 60);
	tcase_add_loop_test(neg, framing_rejects, 0,
	                    sizeof(frame_rows) / sizeof(frame_rows[0]));
	tcase_add_test(neg, corrupted_self_signature);
	tcase_add_test(neg, expired_key);
	tcase_add_test(neg, revoked_subkey);
	tcase_add_loop_test(neg, uid_names, 0,
	                    sizeof(uid_rows) / sizeof(uid_rows[0]));
	tcase_add_test(neg, match_bad_arguments);
	tcase_add_loop_test(neg, armor_rejects, 0,
	                    sizeof(armor_rows) / sizeof(armor_rows[0]) +
	                            sizeof(armor_texts) / sizeof(armor_texts[0]));
	tcase_add_test(neg, armor_not_in_dns);
	tcase_add_loop_test(neg, bad_signature_each_algorithm, 0,
	                    2 * sizeof(bad_files) / sizeof(bad_files[0]));
	tcase_add_loop_test(neg, unsupported_algorithms, 0,
	                    sizeof(unsupported_rows) / sizeof(unsupported_rows[0]));
	tcase_add_test(neg, expired_signature);
	tcase_add_test(neg, revoked_outcomes);
	tcase_add_test(neg, dsa_alone_is_no_credential);
	tcase_add_loop_test(pos, match_table, 0,
	                    sizeof(match_rows) / sizeof(match_rows[0]));
	tcase_add_test(pos, match_second_record);
	tcase_add_test(pos, gnupg_ed25519);
	tcase_add_test(pos, gnupg_rsa);
	tcase_add_loop_test(pos, algorithm_names, 0,
	                    sizeof(algo_rows) / sizeof(algo_rows[0]));
	tcase_add_loop_test(pos, secret_keys, 0, 2);
	tcase_add_test(pos, owner_hash_sha256sum);
	tcase_add_loop_test(pos, rfc9580_certificate, 0, 2);
	tcase_add_loop_test(pos, rfc9580_skipped_packets, 0,
	                    sizeof(extra_rows) / sizeof(extra_rows[0]));
	tcase_add_test(pos, rfc9580_v4_sample);
	tcase_add_test(pos, rfc9580_secret_key);
	tcase_add_loop_test(pos, armor_accepts, 0,
	                    sizeof(armor_ok_rows) / sizeof(armor_ok_rows[0]));
	tcase_add_test(pos, armor_packets_decide);
	tcase_add_loop_test(pos, gnupg_algos, 0,
	                    sizeof(algo_keys) / sizeof(algo_keys[0]));
	tcase_add_loop_test(pos, match_gcrypt_keys, 0,
	                    sizeof(algo_match_rows) / sizeof(algo_match_rows[0]));
	tcase_add_test(pos, sig_outcome_names);
	suite_add_tcase(s, neg);
	suite_add_tcase(s, pos);
	return s;
}

int main(void)
{
	char cmd[200];
	int rv;

	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(cmd, sizeof(cmd),
	         "tests/tools/mkpgp.sh %s && tests/tools/mkpgp_algos.sh %s", dir,
	         dir);
	if (system(cmd) != 0) {
		fprintf(stderr, "%s failed (run from the source tree)\n", cmd);
		return 1;
	}
	rv = tp_run_suite(suite());
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return rv;
}
