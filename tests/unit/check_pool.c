/*
 * The pool's protocol (pool.c) and the library's side of a call handed to
 * tlspoold: the decoder's rules one by one (negative cases first), the
 * descriptors a message may carry, the call's answers to a daemon that is
 * missing, silent, dying or confused, the connections kept from call to
 * call (reuse, a restart, a send that fails, fork(), a daemon of protocol
 * 2), the [pool] section, and the ACL checked against a caller's
 * credentials.  tests/e2e/pool.sh runs the
 * real daemon.
 *
 * The daemon's side of the conversation here is a thread that speaks the
 * protocol through the same encoder, scripted per test: the real daemon
 * never sends the malformed answers that these tests need.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "cred.h"
#include "dtls.h"
#include "pool.h"
#include "testutil.h"
#include "trace.h"

/* --- helpers ------------------------------------------------------------- */

static unsigned char buf[TP_POOL_MAX];

static size_t encode(const struct tp_pool_msg *m)
{
	size_t n = tp_pool_encode(m, buf, sizeof(buf));

	ck_assert_uint_gt(n, 0);
	return n;
}

/* Decoding buf[0..n) fails with err and a reason containing want. */
static void refused(size_t n, int err, const char *want)
{
	struct tp_pool_msg m;
	char why[160] = "";

	errno = 0;
	ck_assert_int_eq(tp_pool_decode(buf, n, &m, why, sizeof(why)), -1);
	ck_assert_int_eq(errno, err);
	ck_assert_msg(strstr(why, want) != NULL, "why \"%s\", want \"%s\"", why,
	              want);
}

static struct tp_pool_msg request(void)
{
	struct tp_pool_msg m;

	memset(&m, 0, sizeof(m));
	m.version = TP_POOL_VERSION;
	m.type = TP_POOL_REQUEST;
	m.u.req.proto = IPPROTO_TCP;
	m.u.req.opts = TP_POOL_HAS_SNINAME | TP_POOL_HAS_PEERNAME;
	strcpy(m.u.req.sniname, "www.example.test");
	m.u.req.peername_len = 256;
	m.u.req.timeout_ms = 10000;
	return m;
}

static void put32_at(size_t off, uint32_t v)
{
	buf[off] = (unsigned char)(v >> 24);
	buf[off + 1] = (unsigned char)(v >> 16);
	buf[off + 2] = (unsigned char)(v >> 8);
	buf[off + 3] = (unsigned char)v;
}

static int count_fds(void)
{
	char path[64];
	int n = 0;

	for (int fd = 0; fd < 1024; fd++) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n += access(path, F_OK) == 0;
	}
	return n;
}

static int is_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1;
}

/* fd no longer names the socket ino: closed, or its number reused (the
 * scripted daemon's thread opens descriptors too). */
static int gone(int fd, ino_t ino)
{
	struct stat st;

	return fstat(fd, &st) != 0 || st.st_ino != ino;
}

/* --- the decoder: negative cases ---------------------------------------- */

START_TEST(decode_header)
{
	struct tp_pool_msg m = request();
	size_t n = encode(&m);

	refused(0, EPROTO, "shorter than a header");
	refused(11, EPROTO, "shorter than a header");
	buf[0] ^= 1;
	refused(n, EPROTO, "not a tlspool message");
	buf[0] ^= 1;
	put32_at(4, 1u << 16 | TP_POOL_REQUEST);
	refused(n, EPROTONOSUPPORT, "protocol version 1, not 2 to 3");
	put32_at(4, 4u << 16 | TP_POOL_REQUEST);
	refused(n, EPROTONOSUPPORT, "protocol version 4, not 2 to 3");
	put32_at(4, 0u << 16 | TP_POOL_REQUEST);
	refused(n, EPROTONOSUPPORT, "protocol version 0");
	put32_at(4, (uint32_t)TP_POOL_VERSION << 16 | 0);
	refused(n, EPROTO, "unknown message type");
	put32_at(4, (uint32_t)TP_POOL_VERSION << 16 | 8);
	refused(n, EPROTO, "unknown message type");
	put32_at(4, (uint32_t)TP_POOL_VERSION << 16 | 0xffff);
	refused(n, EPROTO, "unknown message type");
	put32_at(4, (uint32_t)TP_POOL_VERSION << 16 | TP_POOL_REQUEST);
	/* the length field against the type and against what came */
	put32_at(8, (uint32_t)(n - TP_POOL_HEADER - 1));
	refused(n - 1, EPROTO, "the length does not fit the type");
	put32_at(8, (uint32_t)(n - TP_POOL_HEADER));
	refused(n - 1, EPROTO, "the length does not fit the type");
	refused(n + 1, EPROTO, "the length does not fit the type");
	put32_at(8, 0xffffffffu);
	refused(n, EPROTO, "the length does not fit the type");
	/* a type whose body has another length */
	put32_at(8, (uint32_t)(n - TP_POOL_HEADER));
	put32_at(4, (uint32_t)TP_POOL_VERSION << 16 | TP_POOL_ACCEPTED);
	refused(n, EPROTO, "the length does not fit the type");
	put32_at(4, (uint32_t)TP_POOL_VERSION << 16 | TP_POOL_END_ASK);
	refused(n, EPROTO, "the length does not fit the type");
}
END_TEST

/* --- the trace a reply carries (pool_trace.c) --------------------------- */

static unsigned char der0[700], der1[400], rd0[35], rd1[67];
static tlspool_rr rrs[2];
static tlspool_dane_step steps[2];
static tlspool_dns_answer ans;
static tlspool_dane_result dres;
static tlspool_span chain2[2];

/* A trace as the daemon's call leaves it: two certificates, the lookup
 * with two records, the matcher's result with a step for each. */
static starttls_trace sample_trace(void)
{
	starttls_trace t;

	memset(&t, 0, sizeof(t));
	memset(der0, 0x30, sizeof(der0));
	memset(der1, 0x31, sizeof(der1));
	memset(rd0, 3, sizeof(rd0));
	memset(rd1, 2, sizeof(rd1));
	chain2[0] = (tlspool_span){der0, sizeof(der0)};
	chain2[1] = (tlspool_span){der1, sizeof(der1)};
	rrs[0] = (tlspool_rr){52, 300, sizeof(rd0), rd0};
	rrs[1] = (tlspool_rr){52, 300, sizeof(rd1), rd1};
	memset(&ans, 0, sizeof(ans));
	ans.verdict = TLSPOOL_DNS_SECURE;
	ans.qtype = 52;
	strcpy(ans.qname, "_443._tcp.www.example.test.");
	strcpy(ans.owner, "_443._tcp.www.example.test.");
	ans.nrr = 2;
	ans.rr = rrs;
	ans.ttl = 300;
	ans.rrsig_expiration = 1893456000;
	memset(steps, 0, sizeof(steps));
	steps[0] = (tlspool_dane_step){0,
	                               3,
	                               1,
	                               1,
	                               TLSPOOL_DANE_REC_MATCHED,
	                               0,
	                               0,
	                               "DANE-EE SPKI SHA2-256 matched"};
	steps[1] = (tlspool_dane_step){1,
	                               2,
	                               0,
	                               2,
	                               TLSPOOL_DANE_REC_NO_MATCH,
	                               -1,
	                               -1,
	                               "no certificate matched"};
	memset(&dres, 0, sizeof(dres));
	dres.verdict = TLSPOOL_DANE_AUTHENTICATED;
	dres.dns = TLSPOOL_DNS_SECURE;
	dres.matched = 0;
	dres.best = 0;
	dres.depth = 0;
	strcpy(dres.name, "www.example.test");
	strcpy(dres.identity, "www.example.test");
	strcpy(dres.reason, "authenticated by record 0 (3 1 1)");
	dres.nsteps = 2;
	dres.steps = steps;
	t.nchain = 2;
	t.chain = chain2;
	t.owner = "_443._tcp.www.example.test.";
	t.dns = &ans;
	t.dane = &dres;
	return t;
}

static unsigned char tbuf[TP_POOL_TRACE_MAX + 16];

/* A trace whose first 4 octets (flags) or a count at off is v. */
static size_t sample_encoded(void)
{
	starttls_trace t = sample_trace();
	size_t n = tp_pool_trace_encode(&t, tbuf, sizeof(tbuf));

	ck_assert_uint_gt(n, 0);
	ck_assert_ptr_null(tp_pool_trace_check(tbuf, n));
	return n;
}

static void tput32(size_t off, uint32_t v)
{
	tbuf[off] = (unsigned char)(v >> 24);
	tbuf[off + 1] = (unsigned char)(v >> 16);
	tbuf[off + 2] = (unsigned char)(v >> 8);
	tbuf[off + 3] = (unsigned char)v;
}

static void trace_refused(size_t n, const char *want)
{
	const char *why = tp_pool_trace_check(tbuf, n);

	ck_assert_ptr_nonnull(why);
	ck_assert_msg(strstr(why, want) != NULL, "why \"%s\", want \"%s\"", why,
	              want);
	ck_assert_int_eq(tp_trace_reset(), 0);
	errno = 0;
	ck_assert_int_eq(tp_pool_trace_load(tbuf, n), -1);
	ck_assert_int_eq(errno, EPROTO);
	ck_assert_uint_eq(starttls_last_trace()->nchain, 0);
}

START_TEST(decode_trace)
{
	size_t n = sample_encoded(), first_cert = 4 + 4 + 320;
	struct tp_pool_msg m;

	/* every prefix is refused, and so is anything after the end */
	for (size_t k = 0; k < n; k++)
		ck_assert_ptr_nonnull(tp_pool_trace_check(tbuf, k));
	tbuf[n] = 0;
	trace_refused(n + 1, "octets after its end");
	tput32(0, 0x10);
	trace_refused(n, "unknown flags");
	n = sample_encoded();
	tput32(4, 17);
	trace_refused(n, "more than 16 certificates");
	n = sample_encoded();
	tput32(first_cert, 0);
	trace_refused(n, "a certificate of 0");
	n = sample_encoded();
	tput32(first_cert, 16385);
	trace_refused(n, "more than 16384");
	n = sample_encoded();
	memset(tbuf + 8, 'x', 320); /* the owner field, no NUL */
	trace_refused(n, "without its NUL");
	n = sample_encoded();
	tbuf[8 + 318] = 'x';
	trace_refused(n, "after a name's NUL");
	/* the lookup's verdict, after the two certificates */
	n = sample_encoded();
	tput32(first_cert + 8 + 700 + 400, 99);
	trace_refused(n, "verdict out of range");
	/* the reply states the trace's length: it must be the rest */
	n = sample_encoded();
	memset(&m, 0, sizeof(m));
	m.type = TP_POOL_REPLY;
	m.u.reply.trace = tbuf;
	m.u.reply.trace_len = (uint32_t)n;
	n = encode(&m);
	put32_at(n - 4 - m.u.reply.trace_len,
	         m.u.reply.trace_len - 1); /* the trace_len field */
	refused(n, EPROTO, "the trace's length is not the rest");
	m.u.reply.trace_len = TP_POOL_TRACE_MAX + 1;
	ck_assert_uint_eq(tp_pool_encode(&m, buf, sizeof(buf)), 0);
	/* a trace that breaks a rule breaks the reply */
	m.u.reply.trace_len = (uint32_t)sample_encoded();
	tput32(0, 0x10);
	n = encode(&m);
	refused(n, EPROTO, "unknown flags");
}
END_TEST

START_TEST(trace_round_trip)
{
	starttls_trace t = sample_trace();
	const starttls_trace *got;
	struct tp_pool_msg m, back;
	char why[160];
	size_t n = sample_encoded();

	memset(&m, 0, sizeof(m));
	m.type = TP_POOL_REPLY;
	m.u.reply.trace = tbuf;
	m.u.reply.trace_len = (uint32_t)n;
	ck_assert_int_eq(
	        tp_pool_decode(buf, encode(&m), &back, why, sizeof(why)), 0);
	ck_assert_uint_eq(back.u.reply.trace_len, n);
	ck_assert_int_eq(memcmp(back.u.reply.trace, tbuf, n), 0);
	ck_assert_int_eq(tp_trace_reset(), 0);
	ck_assert_int_eq(tp_pool_trace_load(back.u.reply.trace, n), 0);
	tp_pool_msg_clear(&back);
	ck_assert_ptr_null(back.u.reply.trace);
	got = starttls_last_trace();
	ck_assert_uint_eq(got->nchain, 2);
	ck_assert_uint_eq(got->chain[0].len, sizeof(der0));
	ck_assert_int_eq(memcmp(got->chain[1].data, der1, sizeof(der1)), 0);
	ck_assert_str_eq(got->owner, t.owner);
	ck_assert_int_eq(got->from_cache, 0);
	ck_assert_ptr_nonnull(got->dns);
	ck_assert_int_eq(got->dns->verdict, TLSPOOL_DNS_SECURE);
	ck_assert_str_eq(got->dns->qname, ans.qname);
	ck_assert_uint_eq(got->dns->nrr, 2);
	ck_assert_uint_eq(got->dns->rr[1].rdlen, sizeof(rd1));
	ck_assert_int_eq(memcmp(got->dns->rr[1].rdata, rd1, sizeof(rd1)), 0);
	ck_assert_int_eq(got->dns->rrsig_expiration, 1893456000);
	ck_assert_ptr_nonnull(got->dane);
	ck_assert_int_eq(got->dane->verdict, TLSPOOL_DANE_AUTHENTICATED);
	ck_assert_int_eq(got->dane->matched, 0);
	ck_assert_uint_eq(got->dane->nsteps, 2);
	ck_assert_int_eq(got->dane->steps[1].outcome,
	                 TLSPOOL_DANE_REC_NO_MATCH);
	ck_assert_int_eq(got->dane->steps[1].chain_index, -1);
	ck_assert_str_eq(got->dane->steps[0].reason, steps[0].reason);
	/* from the cache: the owner and the flag, no lookup */
	memset(&t, 0, sizeof(t));
	t.owner = "_443._tcp.www.example.test.";
	t.from_cache = 1;
	n = tp_pool_trace_encode(&t, tbuf, sizeof(tbuf));
	ck_assert_int_eq(tp_trace_reset(), 0);
	ck_assert_int_eq(tp_pool_trace_load(tbuf, n), 0);
	got = starttls_last_trace();
	ck_assert_int_eq(got->from_cache, 1);
	ck_assert_str_eq(got->owner, t.owner);
	ck_assert_ptr_null(got->dns);
	/* nothing known: no octets */
	memset(&t, 0, sizeof(t));
	ck_assert_uint_eq(tp_pool_trace_encode(&t, tbuf, sizeof(tbuf)), 0);
}
END_TEST

START_TEST(trace_too_large)
{
	static unsigned char big[16384];
	tlspool_span sixteen[16];
	starttls_trace t = sample_trace();
	const starttls_trace *got;
	size_t n;

	memset(big, 0x30, sizeof(big));
	for (int i = 0; i < 16; i++)
		sixteen[i] = (tlspool_span){big, sizeof(big)};
	t.chain = sixteen;
	t.nchain = 16;
	/* the matcher named certificate 5: beyond what fits, it says -1 */
	steps[0].chain_index = 5;
	n = tp_pool_trace_encode(&t, tbuf, TP_POOL_TRACE_MAX);
	ck_assert_uint_gt(n, 0);
	ck_assert_uint_le(n, TP_POOL_TRACE_MAX);
	ck_assert_ptr_null(tp_pool_trace_check(tbuf, n));
	ck_assert_int_eq(tp_trace_reset(), 0);
	ck_assert_int_eq(tp_pool_trace_load(tbuf, n), 0);
	got = starttls_last_trace();
	ck_assert_uint_eq(got->nchain, 3); /* 3 x 16 KiB and the rest fit */
	ck_assert_int_eq(got->dane->steps[0].chain_index, -1);
	ck_assert_uint_eq(got->dns->nrr, 2);
	/* too small for even the lookup: nothing */
	ck_assert_uint_eq(tp_pool_trace_encode(&t, tbuf, 100), 0);
}
END_TEST

/* Offsets in a request: header 12, role 12, proto 16, flags 20, opts 24,
 * peername_len 28, timeout_ms 32, myname 36, sniname 36 + 320. */
#define OFF_MYNAME  36
#define OFF_SNINAME (36 + TP_POOL_NAME)

START_TEST(decode_request_fields)
{
	struct tp_pool_msg m = request();
	size_t n = encode(&m);

	put32_at(12, 2);
	refused(n, EPROTO, "role is not 0 or 1");
	put32_at(12, 0);
	put32_at(24, 0x10 | TP_POOL_HAS_SNINAME | TP_POOL_HAS_PEERNAME);
	refused(n, EPROTO, "unknown option bits");
	put32_at(24, TP_POOL_HAS_SNINAME | TP_POOL_HAS_PEERNAME);
	put32_at(20, 0x80000000u);
	refused(n, EPROTO, "flags out of range");
	put32_at(20, 0);
	/* a name present without its option bit, or the other way */
	put32_at(24, TP_POOL_HAS_PEERNAME);
	refused(n, EPROTO, "an sniname without its option");
	put32_at(24, TP_POOL_HAS_SNINAME);
	refused(n, EPROTO, "a peername_len without a peername");
	put32_at(24, TP_POOL_HAS_SNINAME | TP_POOL_HAS_PEERNAME);
	buf[OFF_MYNAME] = 'x';
	refused(n, EPROTO, "a myname without its option");
	buf[OFF_MYNAME] = 0;
	/* roles */
	put32_at(12, 1);
	refused(n, EPROTO, "an sniname for a server");
	put32_at(12, 0);
	put32_at(24, TP_POOL_HAS_SNINAME | TP_POOL_HAS_PEERNAME |
	                     TP_POOL_HAS_CHECKSNI);
	refused(n, EPROTO, "checksni for a client");
	put32_at(24, TP_POOL_HAS_SNINAME | TP_POOL_HAS_PEERNAME);
	put32_at(32, 0);
	refused(n, EPROTO, "timeout_ms out of range");
	put32_at(32, 3600001);
	refused(n, EPROTO, "timeout_ms out of range");
}
END_TEST

START_TEST(decode_request_names)
{
	struct tp_pool_msg m = request();
	size_t n;

	m.u.req.opts |= TP_POOL_HAS_MYNAME;
	strcpy(m.u.req.myname, "client.example.test");
	n = encode(&m);
	/* no NUL in the field */
	memset(buf + OFF_MYNAME, 'a', TP_POOL_NAME);
	refused(n, EPROTO, "without its NUL");
	n = encode(&m);
	memset(buf + OFF_SNINAME, 'a', TP_POOL_SNI);
	refused(n, EPROTO, "without its NUL");
	/* an octet after the NUL: nothing may hide behind a name */
	n = encode(&m);
	buf[OFF_MYNAME + TP_POOL_NAME - 1] = 'x';
	refused(n, EPROTO, "octets after it");
	n = encode(&m);
	buf[OFF_SNINAME + strlen("www.example.test") + 1] = 'x';
	refused(n, EPROTO, "octets after it");
}
END_TEST

START_TEST(decode_other_types)
{
	struct tp_pool_msg m;
	size_t n;

	memset(&m, 0, sizeof(m));
	m.type = TP_POOL_ACCEPTED;
	m.u.timeout_ms = 1000;
	n = encode(&m);
	put32_at(12, 0);
	refused(n, EPROTO, "timeout_ms out of range");
	put32_at(12, 3600001);
	refused(n, EPROTO, "timeout_ms out of range");

	m.type = TP_POOL_SNI_VERDICT;
	m.u.accept = 1;
	n = encode(&m);
	put32_at(12, 2);
	refused(n, EPROTO, "verdict: not 0 or 1");

	memset(&m, 0, sizeof(m));
	m.type = TP_POOL_SNI_ASK;
	n = encode(&m);
	memset(buf + 12, 'a', TP_POOL_SNI);
	refused(n, EPROTO, "without its NUL");

	memset(&m, 0, sizeof(m));
	m.type = TP_POOL_REPLY;
	n = encode(&m); /* a success */
	put32_at(16, EACCES);
	refused(n, EPROTO, "a success with an error");
	put32_at(16, 0);
	put32_at(20, STARTTLS_ERR_ACCESS);
	refused(n, EPROTO, "a success with an error");
	put32_at(12, (uint32_t)-1);
	put32_at(16, 0);
	refused(n, EPROTO, "result or errno out of range");
	put32_at(16, 4096);
	refused(n, EPROTO, "result or errno out of range");
	put32_at(12, 1);
	put32_at(16, EACCES);
	refused(n, EPROTO, "result or errno out of range");
	put32_at(12, (uint32_t)-1);
	put32_at(20, STARTTLS_OK);
	refused(n, EPROTO, "class out of range");
	put32_at(20, STARTTLS_ERR_INTERNAL + 1);
	refused(n, EPROTO, "class out of range");
	put32_at(20, STARTTLS_ERR_ACCESS);
	buf[24] = 'p';
	refused(n, EPROTO, "a failure with a peer");
	buf[24] = 0;
	memset(buf + 24 + TP_POOL_NAME, 'd', TP_POOL_DETAIL);
	refused(n, EPROTO, "without its NUL");

	memset(&m, 0, sizeof(m));
	m.type = TP_POOL_END_REPLY;
	n = encode(&m);
	put32_at(20, STARTTLS_END_ERROR + 1);
	refused(n, EPROTO, "kind, alert or errno out of range");
	put32_at(20, 0);
	put32_at(24, 256);
	refused(n, EPROTO, "kind, alert or errno out of range");
	put32_at(24, 0);
	put32_at(12, (uint32_t)-1);
	put32_at(16, ENOENT);
	put32_at(20, STARTTLS_END_ALERT);
	refused(n, EPROTO, "a failure with a record");
}
END_TEST

START_TEST(encode_refuses)
{
	struct tp_pool_msg m = request();

	/* what the decoder would refuse is never sent */
	m.u.req.role = 2;
	ck_assert_uint_eq(tp_pool_encode(&m, buf, sizeof(buf)), 0);
	m = request();
	ck_assert_uint_eq(tp_pool_encode(&m, buf, 100), 0);
	m.type = (enum tp_pool_type)9;
	ck_assert_uint_eq(tp_pool_encode(&m, buf, sizeof(buf)), 0);
	memset(&m, 0, sizeof(m));
	m.type = TP_POOL_REPLY;
	m.u.reply.result = -1;
	ck_assert_uint_eq(tp_pool_encode(&m, buf, sizeof(buf)), 0);
}
END_TEST

/* --- descriptors on the socket --------------------------------------- */

static void sendraw(int s, const void *data, size_t len, const int *fds,
                    int nfds)
{
	union {
		char b[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {(void *)data, len};
	struct msghdr mh = {0};

	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (nfds > 0) {
		struct cmsghdr *c;

		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.b;
		mh.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
	}
	ck_assert_int_eq(sendmsg(s, &mh, 0), (ssize_t)len);
}

START_TEST(recv_descriptors)
{
	int sp[2], p[2], fd, before;
	struct tp_pool_msg m = request(), got;
	char why[160];
	size_t n;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp), 0);
	ck_assert_int_eq(pipe(p), 0);
	before = count_fds();
	/* a request without its descriptor */
	n = encode(&m);
	sendraw(sp[0], buf, n, NULL, 0);
	ck_assert_int_eq(tp_pool_recv(sp[1], &got, &fd, -1, why, sizeof(why)),
	                 -1);
	ck_assert_int_eq(errno, EPROTO);
	ck_assert_str_eq(why, "no descriptor where one belongs");
	ck_assert_int_eq(fd, -1);
	/* two descriptors: refused, and neither stays open here */
	sendraw(sp[0], buf, n, p, 2);
	ck_assert_int_eq(tp_pool_recv(sp[1], &got, &fd, -1, why, sizeof(why)),
	                 -1);
	ck_assert_int_eq(errno, EPROTO);
	ck_assert_int_eq(fd, -1);
	ck_assert_int_eq(count_fds(), before);
	/* a descriptor with a message that carries none: closed */
	memset(&m, 0, sizeof(m));
	m.type = TP_POOL_ACCEPTED;
	m.u.timeout_ms = 5;
	n = encode(&m);
	sendraw(sp[0], buf, n, p, 1);
	ck_assert_int_eq(tp_pool_recv(sp[1], &got, &fd, -1, why, sizeof(why)),
	                 -1);
	ck_assert_str_eq(why, "a descriptor where none belongs");
	ck_assert_int_eq(count_fds(), before);
	/* a descriptor with garbage: closed too */
	sendraw(sp[0], "garbage!garbage!", 16, p, 1);
	ck_assert_int_eq(tp_pool_recv(sp[1], &got, &fd, -1, why, sizeof(why)),
	                 -1);
	ck_assert_str_eq(why, "not a tlspool message");
	ck_assert_int_eq(count_fds(), before);
	/* longer than any message */
	{
		static unsigned char big[TP_POOL_MAX + 1];

		sendraw(sp[0], big, sizeof(big), NULL, 0);
	}
	ck_assert_int_eq(tp_pool_recv(sp[1], &got, &fd, -1, why, sizeof(why)),
	                 -1);
	ck_assert_str_eq(why, "longer than any message");
	/* nothing there: EAGAIN without waiting, ETIMEDOUT after */
	ck_assert_int_eq(tp_pool_recv(sp[1], &got, &fd, 0, why, sizeof(why)),
	                 -1);
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_int_eq(tp_pool_recv(sp[1], &got, &fd, tp_mono_ms() + 50, why,
	                              sizeof(why)),
	                 -1);
	ck_assert_int_eq(errno, ETIMEDOUT);
	/* a good request with its descriptor, then the end */
	m = request();
	n = encode(&m);
	sendraw(sp[0], buf, n, p, 1);
	ck_assert_int_eq(tp_pool_recv(sp[1], &got, &fd, -1, why, sizeof(why)),
	                 1);
	ck_assert_int_eq(got.type, TP_POOL_REQUEST);
	ck_assert_str_eq(got.u.req.sniname, "www.example.test");
	ck_assert_uint_eq(got.u.req.peername_len, 256);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	close(fd);
	close(sp[0]);
	ck_assert_int_eq(tp_pool_recv(sp[1], &got, &fd, -1, why, sizeof(why)),
	                 0);
	close(sp[1]);
	close(p[0]);
	close(p[1]);
}
END_TEST

START_TEST(round_trips)
{
	struct tp_pool_msg m, got;
	char why[160];

	memset(&m, 0, sizeof(m));
	m.version = TP_POOL_VERSION;
	m.type = TP_POOL_REPLY;
	m.u.reply.result = -1;
	m.u.reply.err = EKEYREJECTED;
	m.u.reply.cls = STARTTLS_ERR_NO_MATCH;
	strcpy(m.u.reply.detail, "_443._tcp.www.example.test.: no match");
	ck_assert_int_eq(
	        tp_pool_decode(buf, encode(&m), &got, why, sizeof(why)), 0);
	ck_assert_int_eq(memcmp(&m, &got, sizeof(m)), 0);
	memset(&m, 0, sizeof(m));
	m.version = TP_POOL_VERSION;
	m.type = TP_POOL_END_REPLY;
	m.u.end.kind = STARTTLS_END_ALERT;
	m.u.end.alert = 42;
	m.u.end.bytes_in = 1ULL << 40;
	m.u.end.bytes_out = 7;
	strcpy(m.u.end.detail, "bad certificate");
	ck_assert_int_eq(
	        tp_pool_decode(buf, encode(&m), &got, why, sizeof(why)), 0);
	ck_assert_int_eq(memcmp(&m, &got, sizeof(m)), 0);
	m = request();
	m.u.req.role = 1;
	m.u.req.opts = TP_POOL_HAS_MYNAME | TP_POOL_HAS_CHECKSNI;
	memset(m.u.req.sniname, 0, sizeof(m.u.req.sniname));
	m.u.req.peername_len = 0;
	m.u.req.flags = STARTTLS_PEERCERT_OPTIONAL;
	strcpy(m.u.req.myname, "john@example.test");
	ck_assert_int_eq(
	        tp_pool_decode(buf, encode(&m), &got, why, sizeof(why)), 0);
	ck_assert_int_eq(memcmp(&m, &got, sizeof(m)), 0);
}
END_TEST

/* --- the call against a scripted daemon ------------------------------- */

enum script {
	S_GARBAGE,
	S_CLOSE,
	S_SILENT,
	S_ACCEPT_SILENT,
	S_FAIL,
	S_OK,
	S_OK_NO_FD,
	S_SNI,
	S_LONG_PEER,
	S_VERSION
};

struct fake {
	char dir[64], path[128];
	int listener;
	enum script script;
	pthread_t thread;
	struct tp_pool_request req; /* what came */
	ino_t ino;                  /* of the descriptor that came */
	int verdict;                /* S_SNI: what the application said */
	int app_end;                /* S_OK: our end of the pair given */
};

static void reply(int s, int result, int err, starttls_class cls,
                  const char *peer, const char *detail, int fd)
{
	struct tp_pool_msg m;

	memset(&m, 0, sizeof(m));
	m.type = TP_POOL_REPLY;
	m.u.reply.result = result;
	m.u.reply.err = err;
	m.u.reply.cls = cls;
	snprintf(m.u.reply.peer, sizeof(m.u.reply.peer), "%s", peer);
	snprintf(m.u.reply.detail, sizeof(m.u.reply.detail), "%s", detail);
	/* the call's trace, as the daemon's worker sends it */
	m.u.reply.trace = tbuf;
	m.u.reply.trace_len = (uint32_t)sample_encoded();
	tp_pool_send(s, &m, fd);
}

static void *fake_daemon(void *arg)
{
	struct fake *f = arg;
	struct tp_pool_msg m;
	struct stat st;
	char why[160];
	int s = accept(f->listener, NULL, NULL), fd, pair[2];

	if (tp_pool_recv(s, &m, &fd, -1, why, sizeof(why)) != 1)
		return NULL;
	f->req = m.u.req;
	fstat(fd, &st);
	f->ino = st.st_ino;
	close(fd);
	if (f->script != S_SILENT && f->script != S_GARBAGE &&
	    f->script != S_CLOSE) {
		memset(&m, 0, sizeof(m));
		m.type = TP_POOL_ACCEPTED;
		m.u.timeout_ms = 100;
		tp_pool_send(s, &m, -1);
	}
	switch (f->script) {
	case S_GARBAGE:
		send(s, "garbage", 7, 0);
		break;
	case S_CLOSE:
		break;
	case S_SILENT:
	case S_ACCEPT_SILENT:
		poll(NULL, 0, 3000);
		break;
	case S_FAIL:
		reply(s, -1, EKEYREJECTED, STARTTLS_ERR_NO_MATCH, "",
		      "_443._tcp.www.example.test.: no record matched", -1);
		break;
	case S_OK:
	case S_LONG_PEER:
		socketpair(AF_UNIX, SOCK_STREAM, 0, pair);
		f->app_end = pair[1];
		reply(s, 0, 0, STARTTLS_OK,
		      f->script == S_OK ? "www.example.test"
		                        : "a-rather-long-name.example.test",
		      "warning: the cache could not be used; validated online",
		      pair[0]);
		close(pair[0]);
		break;
	case S_OK_NO_FD:
		reply(s, 0, 0, STARTTLS_OK, "www.example.test", "", -1);
		break;
	case S_SNI:
		memset(&m, 0, sizeof(m));
		m.type = TP_POOL_SNI_ASK;
		strcpy(m.u.sni, "mail.example.test");
		tp_pool_send(s, &m, -1);
		if (tp_pool_recv(s, &m, &fd, -1, why, sizeof(why)) == 1 &&
		    m.type == TP_POOL_SNI_VERDICT)
			f->verdict = (int)m.u.accept;
		reply(s, -1, EPERM, STARTTLS_ERR_REFUSED, "",
		      "SNI refused by checksni", -1);
		break;
	case S_VERSION:
		memset(buf, 0, sizeof(buf));
		put32_at(0, TP_POOL_MAGIC);
		put32_at(4, 1u << 16 | TP_POOL_REPLY); /* a daemon of v1 */
		put32_at(8, 3 * 4 + TP_POOL_NAME + TP_POOL_DETAIL);
		send(s, buf, 12 + 3 * 4 + TP_POOL_NAME + TP_POOL_DETAIL, 0);
		break;
	}
	close(s);
	return NULL;
}

static struct fake fake;

static void fake_start(enum script script)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	memset(&fake, 0, sizeof(fake));
	fake.script = script;
	fake.app_end = -1;
	strcpy(fake.dir, "/tmp/tlspool-pool-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(fake.dir));
	snprintf(fake.path, sizeof(fake.path), "%s/sock", fake.dir);
	strcpy(sa.sun_path, fake.path);
	fake.listener = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	ck_assert_int_eq(
	        bind(fake.listener, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(fake.listener, 4), 0);
	pthread_create(&fake.thread, NULL, fake_daemon, &fake);
	setenv("TLSPOOL_SOCKET", fake.path, 1);
}

static void fake_stop(void)
{
	pthread_join(fake.thread, NULL);
	close(fake.listener);
	if (fake.app_end >= 0)
		close(fake.app_end);
	unlink(fake.path);
	rmdir(fake.dir);
	unsetenv("TLSPOOL_SOCKET");
}

/* A socket to hand over (never connected: the daemon is a script). */
static int app_socket(ino_t *ino)
{
	struct stat st;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	fstat(fd, &st);
	*ino = st.st_ino;
	return fd;
}

static int client_call(int fd, char *peer, size_t len)
{
	return starttls_client(fd, IPPROTO_TCP, NULL, 0, "www.example.test",
	                       peer, len);
}

START_TEST(no_daemon)
{
	char peer[64] = "untouched";
	ino_t ino;
	int fd = app_socket(&ino);
	long long t0 = tp_mono_ms();

	/* missing socket: ECONNREFUSED at once, fd consumed */
	setenv("TLSPOOL_SOCKET", "/nonexistent/tlspool/socket", 1);
	errno = 0;
	ck_assert_int_eq(client_call(fd, peer, sizeof(peer)), -1);
	ck_assert_int_eq(errno, ECONNREFUSED);
	ck_assert_int_eq(starttls_errclass(), STARTTLS_ERR_CONNECTION);
	ck_assert_ptr_nonnull(strstr(starttls_errstr(),
	                             "no tlspoold listens at "
	                             "/nonexistent/tlspool/socket"));
	ck_assert(!is_open(fd));
	ck_assert_str_eq(peer, "untouched");
	ck_assert_int_lt(tp_mono_ms() - t0, 500);
	/* a relative path: a configuration error */
	fd = app_socket(&ino);
	setenv("TLSPOOL_SOCKET", "run/socket", 1);
	ck_assert_int_eq(client_call(fd, peer, sizeof(peer)), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(starttls_errclass(), STARTTLS_ERR_CONFIG);
	ck_assert(!is_open(fd));
	/* a descriptor that is not open: EINVAL, as in the process */
	setenv("TLSPOOL_SOCKET", "/nonexistent/tlspool/socket", 1);
	ck_assert_int_eq(client_call(999, peer, sizeof(peer)), -1);
	ck_assert_int_eq(errno, EINVAL);
	/* a myname too long for any identity: EINVAL before connecting */
	fd = app_socket(&ino);
	{
		char name[400];

		memset(name, 'a', sizeof(name) - 1);
		name[sizeof(name) - 1] = '\0';
		ck_assert_int_eq(starttls_client(fd, IPPROTO_TCP, name, 0, NULL,
		                                 NULL, 0),
		                 -1);
		ck_assert_int_eq(errno, EINVAL);
		ck_assert(!is_open(fd));
	}
	unsetenv("TLSPOOL_SOCKET");
}
END_TEST

static long long call_ms; /* how long the last scripted call took */

/* One call against script: its return value, errno in *err. */
static int scripted(enum script script, char *peer, size_t len, int *err)
{
	ino_t ino;
	int fd = app_socket(&ino), rv;
	long long t0;

	fake_start(script);
	t0 = tp_mono_ms();
	rv = client_call(fd, peer, len);
	*err = errno;
	call_ms = tp_mono_ms() - t0;
	fake_stop();
	/* the script serves one call a connection: the one the library
	 * kept is closed at the other end */
	tp_pool_forget();
	ck_assert(gone(fd, ino) || rv == fd);
	ck_assert_uint_eq(fake.ino, ino); /* the daemon got our socket */
	return rv;
}

START_TEST(daemon_misbehaves)
{
	char peer[64] = "untouched";
	int err, before = count_fds();

	ck_assert_int_eq(scripted(S_GARBAGE, peer, sizeof(peer), &err), -1);
	ck_assert_int_eq(err, EPROTO);
	ck_assert_int_eq(starttls_errclass(), STARTTLS_ERR_INTERNAL);
	ck_assert_ptr_nonnull(
	        strstr(starttls_errstr(), "shorter than a header"));
	ck_assert_int_eq(scripted(S_VERSION, peer, sizeof(peer), &err), -1);
	ck_assert_int_eq(err, EPROTO);
	ck_assert_ptr_nonnull(strstr(starttls_errstr(), "protocol version 1"));
	ck_assert_int_eq(scripted(S_CLOSE, peer, sizeof(peer), &err), -1);
	ck_assert_int_eq(err, ECONNRESET);
	ck_assert_ptr_nonnull(strstr(starttls_errstr(),
	                             "closed the connection during the call"));
	ck_assert_int_eq(scripted(S_OK_NO_FD, peer, sizeof(peer), &err), -1);
	ck_assert_int_eq(err, EPROTO);
	ck_assert_ptr_nonnull(strstr(starttls_errstr(), "no descriptor"));
	/* ACCEPTED replaces the bound: 2 x 100 ms + 1 s, not the 21 s of the
	 * application's default timeout */
	ck_assert_int_eq(scripted(S_ACCEPT_SILENT, peer, sizeof(peer), &err),
	                 -1);
	ck_assert_int_eq(err, ETIMEDOUT);
	ck_assert_int_ge(call_ms, 1150);
	ck_assert_int_lt(call_ms, 2000);
	ck_assert_str_eq(peer, "untouched");
	ck_assert_int_eq(count_fds(), before);
}
END_TEST

static char conf_path[64];
static const char *write_conf(const char *text);

/* [pool] socket in a context's configuration, and its handshake_timeout_ms
 * bounding the wait for a daemon that does not answer: twice that, and a
 * second. */
START_TEST(silent_daemon_by_config)
{
	char text[300];
	starttls_ctx *ctx;
	ino_t ino;
	int fd = app_socket(&ino), err, before;
	long long t0;

	fake_start(S_SILENT);
	unsetenv("TLSPOOL_SOCKET");
	snprintf(text, sizeof(text),
	         "[tls]\nhandshake_timeout_ms = 300\n[pool]\nsocket = %s\n",
	         fake.path);
	ctx = starttls_ctx_new(write_conf(text));
	ck_assert_ptr_nonnull(ctx);
	before = count_fds();
	t0 = tp_mono_ms();
	ck_assert_int_eq(starttls_ctx_client(ctx, fd, IPPROTO_TCP, NULL, 0,
	                                     "www.example.test", NULL, 0),
	                 -1);
	err = errno;
	ck_assert_int_lt(tp_mono_ms() - t0, 2500);
	ck_assert_int_ge(tp_mono_ms() - t0, 1590);
	ck_assert_int_eq(err, ETIMEDOUT);
	ck_assert_ptr_nonnull(
	        strstr(starttls_errstr(), "did not answer in time"));
	ck_assert(gone(fd, ino));
	fake_stop();
	ck_assert_int_eq(count_fds(), before - 2); /* fd, the listener */
	ck_assert_uint_eq(fake.ino, ino);
	starttls_ctx_free(ctx);
	unlink(conf_path);
}
END_TEST

START_TEST(daemon_fails_the_call)
{
	char peer[64] = "untouched";
	int err;

	ck_assert_int_eq(scripted(S_FAIL, peer, sizeof(peer), &err), -1);
	ck_assert_int_eq(err, EKEYREJECTED);
	ck_assert_int_eq(starttls_errclass(), STARTTLS_ERR_NO_MATCH);
	ck_assert_str_eq(starttls_errstr(),
	                 "_443._tcp.www.example.test.: no record matched");
	ck_assert_str_eq(peer, "untouched");
	/* the daemon's trace is the application's */
	ck_assert_uint_eq(starttls_last_trace()->nchain, 2);
	ck_assert_str_eq(starttls_last_trace()->owner,
	                 "_443._tcp.www.example.test.");
	ck_assert_uint_eq(starttls_last_trace()->dane->nsteps, 2);
	ck_assert_uint_eq(fake.req.role, 0);
	ck_assert_int_eq(fake.req.proto, IPPROTO_TCP);
	ck_assert_uint_eq(fake.req.opts,
	                  TP_POOL_HAS_SNINAME | TP_POOL_HAS_PEERNAME);
	ck_assert_str_eq(fake.req.sniname, "www.example.test");
	ck_assert_uint_eq(fake.req.peername_len, sizeof(peer));
	/* TLSPOOL_SOCKET alone: no configuration read, the default */
	ck_assert_uint_eq(fake.req.timeout_ms, 10000);
}
END_TEST

START_TEST(daemon_succeeds)
{
	char peer[64] = "untouched";
	int err, tls, before = count_fds();

	tls = scripted(S_OK, peer, sizeof(peer), &err);
	ck_assert_int_ge(tls, 0);
	ck_assert_str_eq(peer, "www.example.test");
	ck_assert_int_eq(starttls_errclass(), STARTTLS_OK);
	ck_assert_str_eq(starttls_errstr(), "warning: the cache could not be "
	                                    "used; validated online");
	ck_assert_int_eq(fcntl(tls, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	ck_assert_uint_eq(starttls_last_trace()->dns->nrr, 2);
	close(tls);
	/* the peer does not fit: ENAMETOOLONG, nothing written, the
	 * descriptor closed */
	strcpy(peer, "untouched");
	ck_assert_int_eq(scripted(S_LONG_PEER, peer, 16, &err), -1);
	ck_assert_int_eq(err, ENAMETOOLONG);
	ck_assert_str_eq(peer, "untouched");
	ck_assert_int_eq(count_fds(), before);
}
END_TEST

static const char *seen_sni;

static int refuse_sni(const char *sni, void *arg)
{
	static char copy[256];

	(void)arg;
	snprintf(copy, sizeof(copy), "%s", sni);
	seen_sni = copy;
	return 0;
}

START_TEST(checksni_round_trip)
{
	ino_t ino;
	int fd = app_socket(&ino), rv;
	starttls_ctx *ctx;

	setenv("TLSPOOL_CONFIG", "/nonexistent/tlspool.conf", 1);
	fake_start(S_SNI);
	/* TLSPOOL_SOCKET: the configuration is not even read */
	ctx = NULL;
	rv = starttls_ctx_server(ctx, fd, IPPROTO_TCP, "www.example.test", 0,
	                         refuse_sni, NULL, NULL, 0);
	ck_assert_int_eq(rv, -1);
	ck_assert_int_eq(errno, EPERM);
	fake_stop();
	ck_assert_ptr_nonnull(seen_sni);
	ck_assert_str_eq(seen_sni, "mail.example.test");
	ck_assert_int_eq(fake.verdict, 0);
	ck_assert_uint_eq(fake.req.role, 1);
	ck_assert_uint_eq(fake.req.opts,
	                  TP_POOL_HAS_MYNAME | TP_POOL_HAS_CHECKSNI);
	ck_assert_str_eq(fake.req.myname, "www.example.test");
	unsetenv("TLSPOOL_CONFIG");
}
END_TEST

/* --- [pool] in tlspool.conf -------------------------------------------- */

static const char *write_conf(const char *text)
{
	FILE *fp;
	int fd;

	strcpy(conf_path, "/tmp/tlspool-poolconf-XXXXXX");
	fd = mkstemp(conf_path);
	ck_assert_int_ge(fd, 0);
	fp = fdopen(fd, "w");
	fputs(text, fp);
	fclose(fp);
	return conf_path;
}

static const struct {
	const char *text, *want;
} bad_pool[] = {
        {"[pool]\nsockets = /run/x\n", ":2: sockets: unknown key in [pool]"},
        {"[pool]\nthreads = 0\n", ":2: threads: bad value \"0\""},
        {"[pool]\nthreads = 257\n", ":2: threads: bad value \"257\""},
        {"[pool]\nuser = two words\n", ":2: user: bad value \"two words\""},
        {"[pool]\nsocket =\n", ":2: socket: bad value \"\""},
        {"[pool]\nallow_no_authz_users = root nosuchuser\n",
         ":2: allow_no_authz_users: no such user or group \"nosuchuser\""},
        {"[pool]\nallow_no_authz_groups = nosuchgroup\n",
         ":2: allow_no_authz_groups: no such user or group \"nosuchgroup\""},
        {"[pool]\nallow_no_authz_users =\n",
         ":2: allow_no_authz_users: bad value \"\""},
        {"[pool]\nsocket = "
         "/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
         ":2: socket: bad value"},
};

START_TEST(pool_config_errors)
{
	struct tp_config *cfg;
	char err[512] = "";

	ck_assert_int_eq(tp_config_load(write_conf(bad_pool[_i].text), 0, &cfg,
	                                err, sizeof(err)),
	                 -1);
	unlink(conf_path);
	ck_assert_msg(strstr(err, bad_pool[_i].want) != NULL, "\"%s\" for %s",
	              err, bad_pool[_i].text);
}
END_TEST

START_TEST(pool_config)
{
	struct tp_config *cfg;
	char err[512] = "";

	ck_assert_int_eq(
	        tp_config_load(write_conf("[tls]\npriority = NORMAL\n"), 0,
	                       &cfg, err, sizeof(err)),
	        0);
	ck_assert_str_eq(cfg->pool.socket, "");
	ck_assert_uint_eq(cfg->pool.threads, 4);
	ck_assert_ptr_null(tp_pool_socket(cfg)); /* in the process */
	tp_config_free(cfg);
	unlink(conf_path);
	ck_assert_int_eq(
	        tp_config_load(write_conf("[pool]\nsocket = run/pool.sock\n"
	                                  "user = nobody\nthreads = 16\n"
	                                  "allow_no_authz_users = root 4242\n"
	                                  "allow_no_authz_users = 17\n"
	                                  "allow_no_authz_groups = 0\n"
	                                  "pin_file = pin\n"),
	                       0, &cfg, err, sizeof(err)),
	        0);
	/* relative paths are the file's directory's */
	ck_assert_str_eq(cfg->pool.socket, "/tmp/run/pool.sock");
	ck_assert_str_eq(cfg->pool.pin_file, "/tmp/pin");
	ck_assert_str_eq(cfg->pool.user, "nobody");
	ck_assert_uint_eq(cfg->pool.threads, 16);
	ck_assert_uint_eq(cfg->pool.no_authz_nuids, 3);
	ck_assert_uint_eq(cfg->pool.no_authz_uids[0], 0);
	ck_assert_uint_eq(cfg->pool.no_authz_uids[1], 4242);
	ck_assert_uint_eq(cfg->pool.no_authz_uids[2], 17);
	ck_assert_uint_eq(cfg->pool.no_authz_ngids, 1);
	ck_assert_str_eq(tp_pool_socket(cfg), "/tmp/run/pool.sock");
	/* the environment comes first */
	setenv("TLSPOOL_SOCKET", "/run/other", 1);
	ck_assert_str_eq(tp_pool_socket(cfg), "/run/other");
	setenv("TLSPOOL_SOCKET", "", 1);
	ck_assert_str_eq(tp_pool_socket(cfg), "/tmp/run/pool.sock");
	unsetenv("TLSPOOL_SOCKET");
	tp_config_free(cfg);
	unlink(conf_path);
}
END_TEST

/* --- the ACL against a caller -------------------------------------------- */

START_TEST(acl_for_a_caller)
{
	struct tp_identity id;
	struct tp_caller who;

	memset(&id, 0, sizeof(id));
	memset(&who, 0, sizeof(who));
	strcpy(id.name, "www.example.test");
	who.uid = 4000;
	who.gid = 4000;
	/* no ACL: through the pool only root (and the daemon's user) */
	errno = 0;
	ck_assert_int_eq(tp_acl_check(&id, &who), -1);
	ck_assert_int_eq(errno, EACCES);
	ck_assert_ptr_nonnull(strstr(starttls_errstr(),
	                             "through tlspoold only root may use it, "
	                             "not uid 4000"));
	who.uid = 0;
	ck_assert_int_eq(tp_acl_check(&id, &who), 0);
	who.uid = geteuid();
	ck_assert_int_eq(tp_acl_check(&id, &who), 0);
	/* with an ACL: the caller's IDs, not the process's */
	id.acl = 1;
	id.uids[id.nuids++] = 4001;
	id.gids[id.ngids++] = 5000;
	who.uid = geteuid();
	who.gid = getegid();
	ck_assert_int_eq(tp_acl_check(&id, &who), -1);
	ck_assert_ptr_nonnull(strstr(starttls_errstr(), "does not admit uid"));
	who.uid = 4001;
	ck_assert_int_eq(tp_acl_check(&id, &who), 0);
	who.uid = 4000;
	who.gid = 5000;
	ck_assert_int_eq(tp_acl_check(&id, &who), 0);
	who.gid = 4000;
	who.groups[who.ngroups++] = 17;
	who.groups[who.ngroups++] = 5000;
	ck_assert_int_eq(tp_acl_check(&id, &who), 0);
	who.ngroups = 1;
	ck_assert_int_eq(tp_acl_check(&id, &who), -1);
	/* in the process, no ACL is open as before */
	id.acl = 0;
	ck_assert_int_eq(tp_acl_check(&id, NULL), 0);
}
END_TEST

/* Last: it cannot be undone in this process (under CK_FORK=no). */
START_TEST(daemon_runs_its_own_calls)
{
	struct tp_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	strcpy(cfg.pool.socket, "/run/tlspool/socket");
	setenv("TLSPOOL_SOCKET", "/run/other", 1);
	tp_pool_serving();
	ck_assert_ptr_null(tp_pool_socket(&cfg));
	unsetenv("TLSPOOL_SOCKET");
}
END_TEST

/* --- connections kept from call to call (protocol 3) ------------------ */

enum keep_script {
	K_SERVE,    /* answer every request, keep every connection */
	K_SHUT_RD,  /* after each answer, stop reading that connection */
	K_VERSION2, /* answer as a daemon of protocol 2 that refuses 3 */
	K_DIE,      /* from the second request on: close, no answer */
};

/* A daemon that serves calls one after another on each connection, and
 * counts what it sees. */
static struct keeper {
	char dir[64], path[128];
	int listener, stop[2];
	enum keep_script script;
	pthread_t thread;
	int accepts, requests, conns[16], nconns;
	ino_t last_ino;
	pthread_mutex_t mu;
} kp;

static void keeper_answer(int c)
{
	struct tp_pool_msg m;
	struct stat st;
	char why[160];
	int fd;

	if (tp_pool_recv(c, &m, &fd, 0, why, sizeof(why)) != 1) {
		close(c);
		for (int k = 0; k < kp.nconns; k++)
			if (kp.conns[k] == c)
				kp.conns[k] = kp.conns[--kp.nconns];
		return;
	}
	fstat(fd, &st);
	close(fd);
	pthread_mutex_lock(&kp.mu);
	kp.requests++;
	kp.last_ino = st.st_ino;
	pthread_mutex_unlock(&kp.mu);
	if (kp.script == K_DIE && kp.requests > 1) {
		/* the daemon dies during the call */
		close(c);
		for (int k = 0; k < kp.nconns; k++)
			if (kp.conns[k] == c)
				kp.conns[k] = kp.conns[--kp.nconns];
		return;
	}
	memset(&m, 0, sizeof(m));
	m.type = TP_POOL_REPLY;
	m.version = kp.script == K_VERSION2 ? 2 : 0;
	m.u.reply.result = -1;
	m.u.reply.err = kp.script == K_VERSION2 ? EPROTO : EKEYREJECTED;
	m.u.reply.cls = kp.script == K_VERSION2 ? STARTTLS_ERR_INTERNAL
	                                        : STARTTLS_ERR_NO_MATCH;
	strcpy(m.u.reply.detail, kp.script == K_VERSION2
	                                 ? "tlspoold: protocol version 3, not 2"
	                                 : "no record matched");
	/* shut before the answer, so that the caller's next send on this
	 * connection surely finds it shut (after the answer it raced with
	 * the keeper's thread) */
	if (kp.script == K_SHUT_RD)
		shutdown(c, SHUT_RD);
	tp_pool_send(c, &m, -1);
}

static void *keeper(void *arg)
{
	(void)arg;
	for (;;) {
		struct pollfd p[18];
		int n = 0;

		p[n++] = (struct pollfd){kp.stop[0], POLLIN, 0};
		p[n++] = (struct pollfd){kp.listener, POLLIN, 0};
		for (int k = 0; k < kp.nconns; k++)
			p[n++] = (struct pollfd){kp.conns[k], POLLIN, 0};
		if (poll(p, (nfds_t)n, -1) < 0)
			continue;
		if (p[0].revents)
			break;
		if (p[1].revents && kp.nconns < 16) {
			pthread_mutex_lock(&kp.mu);
			kp.accepts++;
			pthread_mutex_unlock(&kp.mu);
			kp.conns[kp.nconns++] = accept(kp.listener, NULL, NULL);
		}
		for (int k = 2; k < n; k++)
			if (p[k].revents)
				keeper_answer(p[k].fd);
	}
	return NULL;
}

static void keeper_start(enum keep_script script)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	memset(&kp, 0, sizeof(kp));
	pthread_mutex_init(&kp.mu, NULL);
	kp.script = script;
	strcpy(kp.dir, "/tmp/tlspool-keep-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(kp.dir));
	snprintf(kp.path, sizeof(kp.path), "%s/sock", kp.dir);
	strcpy(sa.sun_path, kp.path);
	kp.listener = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	ck_assert_int_eq(bind(kp.listener, (struct sockaddr *)&sa, sizeof(sa)),
	                 0);
	ck_assert_int_eq(listen(kp.listener, 16), 0);
	ck_assert_int_eq(pipe(kp.stop), 0);
	pthread_create(&kp.thread, NULL, keeper, NULL);
	setenv("TLSPOOL_SOCKET", kp.path, 1);
}

/* The daemon gone: its connections and its socket closed (a restart
 * follows with keeper_start()). */
static void keeper_stop(void)
{
	ck_assert_int_eq(write(kp.stop[1], "x", 1), 1);
	pthread_join(kp.thread, NULL);
	for (int k = 0; k < kp.nconns; k++)
		close(kp.conns[k]);
	close(kp.listener);
	close(kp.stop[0]);
	close(kp.stop[1]);
	unlink(kp.path);
	rmdir(kp.dir);
}

/* One call against the keeper: its errno (every call fails there), and
 * the descriptor checked consumed. */
static int kept_call(void)
{
	ino_t ino;
	int fd = app_socket(&ino), e;

	ck_assert_int_eq(client_call(fd, NULL, 0), -1);
	e = errno;
	ck_assert(gone(fd, ino));
	return e;
}

START_TEST(kept_connection_gone)
{
	char sock[128];
	int before = count_fds();

	/* the daemon gone between two calls, no new one: the next call finds
	 * the kept connection closed and fails at once with ECONNREFUSED */
	keeper_start(K_SERVE);
	ck_assert_int_eq(kept_call(), EKEYREJECTED);
	ck_assert_uint_eq(tp_pool_idle_count(), 1);
	snprintf(sock, sizeof(sock), "%s", kp.path);
	keeper_stop();
	ck_assert_int_eq(mkdir(kp.dir, 0700), 0); /* the socket stays away */
	setenv("TLSPOOL_SOCKET", sock, 1);
	ck_assert_int_eq(kept_call(), ECONNREFUSED);
	ck_assert_uint_eq(tp_pool_idle_count(), 0);
	ck_assert_int_eq(count_fds(), before);
	rmdir(kp.dir);
	/* a daemon of protocol 2 refuses a request of 3: EPROTO, said so */
	keeper_start(K_VERSION2);
	ck_assert_int_eq(kept_call(), EPROTO);
	ck_assert_ptr_nonnull(
	        strstr(starttls_errstr(), "speaks protocol version 2"));
	ck_assert_uint_eq(tp_pool_idle_count(), 0);
	keeper_stop();
	ck_assert_int_eq(count_fds(), before);
	unsetenv("TLSPOOL_SOCKET");
}
END_TEST

START_TEST(kept_connection_reused)
{
	int before, after;

	keeper_start(K_SERVE);
	ck_assert_int_eq(kept_call(), EKEYREJECTED);
	before = count_fds();
	for (int k = 0; k < 1000; k++)
		ck_assert_int_eq(kept_call(), EKEYREJECTED);
	after = count_fds();
	ck_assert_int_eq(kp.accepts, 1);
	ck_assert_int_eq(kp.requests, 1001);
	ck_assert_int_eq(after, before);
	ck_assert_uint_eq(tp_pool_idle_count(), 1);
	/* a restart: the kept connection is found closed, a new one made */
	keeper_stop();
	keeper_start(K_SERVE);
	ck_assert_int_eq(kept_call(), EKEYREJECTED);
	ck_assert_int_eq(kp.accepts, 1);
	ck_assert_int_eq(kp.requests, 1);
	ck_assert_int_eq(count_fds(), before);
	keeper_stop();
	tp_pool_forget();
	unsetenv("TLSPOOL_SOCKET");
}
END_TEST

START_TEST(kept_connection_send_fails)
{
	ino_t ino;
	int fd;

	/* the daemon stops reading a kept connection: nothing shows on it
	 * until the send fails (EPIPE), with nothing delivered; the call
	 * goes once more on a new connection, and its descriptor arrives
	 * there, once */
	keeper_start(K_SHUT_RD);
	ck_assert_int_eq(kept_call(), EKEYREJECTED);
	ck_assert_uint_eq(tp_pool_idle_count(), 1);
	fd = app_socket(&ino);
	ck_assert_int_eq(client_call(fd, NULL, 0), -1);
	ck_assert_int_eq(errno, EKEYREJECTED);
	ck_assert(gone(fd, ino));
	ck_assert_int_eq(kp.accepts, 2);
	ck_assert_int_eq(kp.requests, 2);
	ck_assert_uint_eq(kp.last_ino, ino);
	keeper_stop();
	tp_pool_forget();
	unsetenv("TLSPOOL_SOCKET");
}
END_TEST

START_TEST(kept_connection_dies_in_call)
{
	int before;

	/* the request went out on a kept connection, and the daemon died
	 * with it: ECONNRESET, the descriptor consumed and never sent
	 * again (one connection, two requests) */
	keeper_start(K_DIE);
	ck_assert_int_eq(kept_call(), EKEYREJECTED);
	before = count_fds();
	ck_assert_int_eq(kept_call(), ECONNRESET);
	ck_assert_ptr_nonnull(strstr(starttls_errstr(),
	                             "closed the connection during the call"));
	ck_assert_int_eq(kp.accepts, 1);
	ck_assert_int_eq(kp.requests, 2);
	ck_assert_uint_eq(tp_pool_idle_count(), 0);
	ck_assert_int_eq(count_fds(), before - 2); /* ours, the keeper's */
	keeper_stop();
	unsetenv("TLSPOOL_SOCKET");
}
END_TEST

START_TEST(kept_connection_fork)
{
	pid_t pid;
	int st;

	keeper_start(K_SERVE);
	ck_assert_int_eq(kept_call(), EKEYREJECTED);
	ck_assert_uint_eq(tp_pool_idle_count(), 1);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* none of the parent's; the child's calls on its own */
		int ok = tp_pool_idle_count() == 0;

		for (int k = 0; k < 20; k++)
			ok &= kept_call() == EKEYREJECTED;
		ok &= tp_pool_idle_count() == 1;
		_exit(ok ? 0 : 1);
	}
	for (int k = 0; k < 20; k++)
		ck_assert_int_eq(kept_call(), EKEYREJECTED);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ck_assert_uint_eq(tp_pool_idle_count(), 1);
	ck_assert_int_eq(kp.accepts, 2); /* the parent's and the child's */
	ck_assert_int_eq(kp.requests, 41);
	keeper_stop();
	tp_pool_forget();
	unsetenv("TLSPOOL_SOCKET");
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("pool");
	TCase *neg = tcase_create("negative");
	TCase *pos = tcase_create("positive");

	tcase_set_timeout(neg, 20);
	tcase_set_timeout(pos, 20);
	tcase_add_test(neg, decode_header);
	tcase_add_test(neg, decode_trace);
	tcase_add_test(neg, decode_request_fields);
	tcase_add_test(neg, decode_request_names);
	tcase_add_test(neg, decode_other_types);
	tcase_add_test(neg, encode_refuses);
	tcase_add_test(neg, recv_descriptors);
	tcase_add_test(neg, no_daemon);
	tcase_add_test(neg, daemon_misbehaves);
	tcase_add_test(neg, silent_daemon_by_config);
	tcase_add_test(neg, daemon_fails_the_call);
	tcase_add_loop_test(neg, pool_config_errors, 0,
	                    sizeof(bad_pool) / sizeof(bad_pool[0]));
	tcase_add_test(neg, acl_for_a_caller);
	tcase_add_test(neg, kept_connection_gone);
	tcase_add_test(neg, kept_connection_send_fails);
	tcase_add_test(neg, kept_connection_dies_in_call);
	tcase_add_test(pos, kept_connection_reused);
	tcase_add_test(pos, kept_connection_fork);
	tcase_add_test(pos, round_trips);
	tcase_add_test(pos, trace_round_trip);
	tcase_add_test(pos, trace_too_large);
	tcase_add_test(pos, daemon_succeeds);
	tcase_add_test(pos, checksni_round_trip);
	tcase_add_test(pos, pool_config);
	tcase_add_test(pos, daemon_runs_its_own_calls);
	suite_add_tcase(s, neg);
	suite_add_tcase(s, pos);
	return s;
}

int main(void)
{
	return tp_run_suite(suite());
}
