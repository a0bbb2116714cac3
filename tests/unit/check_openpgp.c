/*
 * OpenPGP keys (RFC 4880, RFC 9580) and OPENPGPKEY matching (RFC 7929),
 * with keys made by GnuPG at test time (tests/tools/mkpgp.sh): the parser
 * on broken framing, the self-signature checks on keys GnuPG made
 * expired, revoked or that we corrupt, the matcher's verdicts and
 * reasons, secrets of unprotected exports, and the owner-name hash
 * against sha256sum.
 *
 * The peer's key is given to the matcher as a raw SubjectPublicKeyInfo
 * made from the OpenPGP key material with GnuTLS (the starttls tests give
 * it inside certificates).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/abstract.h>

#include "openpgp_int.h"
#include "testutil.h"

static char dir[] = "/tmp/tlspool-pgp-XXXXXX";

static tlspool_span load(const char *name)
{
	char path[128];
	tlspool_span s = {NULL, 0};
	FILE *f;
	long n;

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
            BAD_HEADER };

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
	tcase_add_loop_test(pos, match_table, 0,
	                    sizeof(match_rows) / sizeof(match_rows[0]));
	tcase_add_test(pos, match_second_record);
	tcase_add_test(pos, gnupg_ed25519);
	tcase_add_test(pos, gnupg_rsa);
	tcase_add_loop_test(pos, algorithm_names, 0,
	                    sizeof(algo_rows) / sizeof(algo_rows[0]));
	tcase_add_loop_test(pos, secret_keys, 0, 2);
	tcase_add_test(pos, owner_hash_sha256sum);
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
	snprintf(cmd, sizeof(cmd), "tests/tools/mkpgp.sh %s", dir);
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
