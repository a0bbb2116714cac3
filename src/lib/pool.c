/*
 * The pool (pool.h): the messages between libtlspool and tlspoold, and
 * the library's side of a call handed to the daemon.
 *
 * A call through the pool:
 *   library                              daemon
 *   a kept connection, or                the loop waits on it, or
 *   connect(sock)                        accept; SO_PEERCRED, SO_PEERGROUPS
 *   REQUEST + fd (SCM_RIGHTS)  ------->  decoded, fd checked, queued
 *   close(fd): consumed       <-------   ACCEPTED, only when its
 *                                        handshake_timeout_ms is longer
 *                              <-------  SNI_ASK (server with checksni)
 *   checksni(sni)  SNI_VERDICT ------->
 *                              <-------  REPLY (+ plaintext fd on success),
 *                                        with the call's trace
 *   the connection kept for the next     the connection back to the loop
 *   call (protocol 3)                    (docs/architecture.md, "The pool")
 * The library waits at most twice the longer of the two timeouts plus a
 * second: a call may wait in the daemon's queue as long as its deadline,
 * then run that long.  The request carries the application's timeout, so
 * that the daemon speaks up only when it needs more (one wake-up of the
 * application less on every other call).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "dtls.h"
#include "pool.h"

/* The body of each type, in octets. */
#define REQUEST_LEN   (6 * 4 + TP_POOL_NAME + TP_POOL_SNI)
#define REPLY_LEN     (3 * 4 + TP_POOL_NAME + TP_POOL_DETAIL + 4)
#define END_REPLY_LEN (4 * 4 + 2 * 8 + TP_POOL_END)
_Static_assert(TP_POOL_HEADER + REQUEST_LEN <= TP_POOL_SMALL &&
                       TP_POOL_HEADER + REPLY_LEN <= TP_POOL_SMALL &&
                       TP_POOL_HEADER + END_REPLY_LEN <= TP_POOL_SMALL &&
                       TP_POOL_HEADER + TP_POOL_SNI <= TP_POOL_SMALL,
               "every message but a reply's trace fits TP_POOL_SMALL");

static size_t body_len(enum tp_pool_type t)
{
	switch (t) {
	case TP_POOL_REQUEST:
		return REQUEST_LEN;
	case TP_POOL_ACCEPTED:
	case TP_POOL_SNI_VERDICT:
		return 4;
	case TP_POOL_SNI_ASK:
		return TP_POOL_SNI;
	case TP_POOL_REPLY:
		return REPLY_LEN; /* and its trace */
	case TP_POOL_END_ASK:
		return 0;
	case TP_POOL_END_REPLY:
		return END_REPLY_LEN;
	}
	return (size_t)-1;
}

/* --- octets ---------------------------------------------------------------
 */

static void put32(unsigned char **p, uint32_t v)
{
	(*p)[0] = (unsigned char)(v >> 24);
	(*p)[1] = (unsigned char)(v >> 16);
	(*p)[2] = (unsigned char)(v >> 8);
	(*p)[3] = (unsigned char)v;
	*p += 4;
}

static void put64(unsigned char **p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	put32(p, (uint32_t)v);
}

static uint32_t get32(const unsigned char **p)
{
	uint32_t v = (uint32_t)(*p)[0] << 24 | (uint32_t)(*p)[1] << 16 |
	             (uint32_t)(*p)[2] << 8 | (uint32_t)(*p)[3];

	*p += 4;
	return v;
}

static uint64_t get64(const unsigned char **p)
{
	uint64_t hi = get32(p);

	return hi << 32 | get32(p);
}

/* A field of len octets: the string, then NULs to its end. */
static void put_str(unsigned char **p, const char *s, size_t len)
{
	size_t n = strnlen(s, len - 1);

	memcpy(*p, s, n);
	memset(*p + n, 0, len - n);
	*p += len;
}

/* A field is a string and its NUL padding, nothing after: 0 or -1. */
static int get_str(const unsigned char **p, char *out, size_t len)
{
	const unsigned char *nul = memchr(*p, 0, len);

	if (nul == NULL)
		return -1;
	for (const unsigned char *q = nul; q < *p + len; q++)
		if (*q != 0)
			return -1;
	memcpy(out, *p, len);
	*p += len;
	return 0;
}

/* --- messages ----------------------------------------------------------- */

static int why_fail(char *why, size_t whylen, int err, const char *text)
{
	snprintf(why, whylen, "%s", text);
	errno = err;
	return -1;
}

/* The rules of a decoded message that the layout alone does not give. */
static const char *check_msg(const struct tp_pool_msg *m)
{
	const struct tp_pool_request *q = &m->u.req;
	const struct tp_pool_reply *r = &m->u.reply;
	const struct tp_pool_end_reply *e = &m->u.end;

	switch (m->type) {
	case TP_POOL_REQUEST:
		if (q->role > 1)
			return "request: role is not 0 or 1";
		if (q->opts &
		    ~(uint32_t)(TP_POOL_HAS_MYNAME | TP_POOL_HAS_SNINAME |
		                TP_POOL_HAS_PEERNAME | TP_POOL_HAS_CHECKSNI))
			return "request: unknown option bits";
		if (q->flags > 0x7fffffff)
			return "request: flags out of range";
		if (!(q->opts & TP_POOL_HAS_MYNAME) && q->myname[0] != '\0')
			return "request: a myname without its option";
		if (!(q->opts & TP_POOL_HAS_SNINAME) && q->sniname[0] != '\0')
			return "request: an sniname without its option";
		if (q->role == 1 && (q->opts & TP_POOL_HAS_SNINAME))
			return "request: an sniname for a server";
		if (q->role == 0 && (q->opts & TP_POOL_HAS_CHECKSNI))
			return "request: checksni for a client";
		if (!(q->opts & TP_POOL_HAS_PEERNAME) && q->peername_len != 0)
			return "request: a peername_len without a peername";
		if (q->timeout_ms < 1 || q->timeout_ms > 3600000)
			return "request: timeout_ms out of range";
		return NULL;
	case TP_POOL_ACCEPTED:
		if (m->u.timeout_ms < 1 || m->u.timeout_ms > 3600000)
			return "accepted: timeout_ms out of range";
		return NULL;
	case TP_POOL_SNI_VERDICT:
		return m->u.accept > 1 ? "verdict: not 0 or 1" : NULL;
	case TP_POOL_SNI_ASK:
	case TP_POOL_END_ASK:
		return NULL;
	case TP_POOL_REPLY:
		if (r->result == 0 && (r->err != 0 || r->cls != STARTTLS_OK))
			return "reply: a success with an error";
		if (r->result == 0)
			return NULL;
		if (r->result != -1 || r->err < 1 || r->err > 4095)
			return "reply: result or errno out of range";
		if (r->cls < STARTTLS_ERR_ARGUMENT ||
		    r->cls > STARTTLS_ERR_INTERNAL)
			return "reply: class out of range";
		if (r->peer[0] != '\0')
			return "reply: a failure with a peer";
		return NULL;
	case TP_POOL_END_REPLY:
		if (e->result == 0 &&
		    (e->err != 0 || e->kind > STARTTLS_END_ERROR ||
		     e->alert < 0 || e->alert > 255))
			return "end reply: kind, alert or errno out of range";
		if (e->result == 0)
			return NULL;
		if (e->result != -1 || e->err < 1 || e->err > 4095 ||
		    e->kind != 0 || e->alert != 0 || e->bytes_in != 0 ||
		    e->bytes_out != 0 || e->detail[0] != '\0')
			return "end reply: a failure with a record";
		return NULL;
	}
	return "unknown type";
}

size_t tp_pool_encode(const struct tp_pool_msg *m, unsigned char *buf,
                      size_t len)
{
	size_t blen = body_len(m->type);
	unsigned char *p = buf;

	if (m->type == TP_POOL_REPLY) {
		if (m->u.reply.trace_len > TP_POOL_TRACE_MAX ||
		    (m->u.reply.trace_len > 0 && m->u.reply.trace == NULL))
			return 0;
		blen += m->u.reply.trace_len;
	}
	if (blen == (size_t)-1 || len < TP_POOL_HEADER + blen ||
	    check_msg(m) != NULL ||
	    (m->version != 0 && (m->version < TP_POOL_VERSION_MIN ||
	                         m->version > TP_POOL_VERSION)))
		return 0;
	put32(&p, TP_POOL_MAGIC);
	put32(&p, (uint32_t)(m->version ? m->version : TP_POOL_VERSION) << 16 |
	                  (uint32_t)m->type);
	put32(&p, (uint32_t)blen);
	switch (m->type) {
	case TP_POOL_REQUEST:
		put32(&p, m->u.req.role);
		put32(&p, (uint32_t)m->u.req.proto);
		put32(&p, m->u.req.flags);
		put32(&p, m->u.req.opts);
		put32(&p, m->u.req.peername_len);
		put32(&p, m->u.req.timeout_ms);
		put_str(&p, m->u.req.myname, TP_POOL_NAME);
		put_str(&p, m->u.req.sniname, TP_POOL_SNI);
		break;
	case TP_POOL_ACCEPTED:
		put32(&p, m->u.timeout_ms);
		break;
	case TP_POOL_SNI_VERDICT:
		put32(&p, m->u.accept);
		break;
	case TP_POOL_SNI_ASK:
		put_str(&p, m->u.sni, TP_POOL_SNI);
		break;
	case TP_POOL_REPLY:
		put32(&p, (uint32_t)m->u.reply.result);
		put32(&p, (uint32_t)m->u.reply.err);
		put32(&p, m->u.reply.cls);
		put_str(&p, m->u.reply.peer, TP_POOL_NAME);
		put_str(&p, m->u.reply.detail, TP_POOL_DETAIL);
		put32(&p, m->u.reply.trace_len);
		if (m->u.reply.trace_len > 0)
			memcpy(p, m->u.reply.trace, m->u.reply.trace_len);
		p += m->u.reply.trace_len;
		break;
	case TP_POOL_END_ASK:
		break;
	case TP_POOL_END_REPLY:
		put32(&p, (uint32_t)m->u.end.result);
		put32(&p, (uint32_t)m->u.end.err);
		put32(&p, m->u.end.kind);
		put32(&p, (uint32_t)m->u.end.alert);
		put64(&p, m->u.end.bytes_in);
		put64(&p, m->u.end.bytes_out);
		put_str(&p, m->u.end.detail, TP_POOL_END);
		break;
	}
	return (size_t)(p - buf);
}

int tp_pool_decode(const unsigned char *buf, size_t len, struct tp_pool_msg *m,
                   char *why, size_t whylen)
{
	const unsigned char *p = buf;
	uint32_t magic, vt, blen;
	const char *bad;
	int ok = 0;

	memset(m, 0, sizeof(*m));
	if (len < TP_POOL_HEADER)
		return why_fail(why, whylen, EPROTO, "shorter than a header");
	magic = get32(&p);
	vt = get32(&p);
	blen = get32(&p);
	if (magic != TP_POOL_MAGIC)
		return why_fail(why, whylen, EPROTO, "not a tlspool message");
	if (vt >> 16 < TP_POOL_VERSION_MIN || vt >> 16 > TP_POOL_VERSION) {
		snprintf(why, whylen, "protocol version %u, not %u to %u",
		         vt >> 16, TP_POOL_VERSION_MIN, TP_POOL_VERSION);
		errno = EPROTONOSUPPORT;
		return -1;
	}
	m->version = vt >> 16;
	m->type = (enum tp_pool_type)(vt & 0xffff);
	if (body_len(m->type) == (size_t)-1)
		return why_fail(why, whylen, EPROTO, "unknown message type");
	if (len - TP_POOL_HEADER != blen ||
	    (m->type == TP_POOL_REPLY
	             ? blen < REPLY_LEN || blen > REPLY_LEN + TP_POOL_TRACE_MAX
	             : blen != body_len(m->type)))
		return why_fail(why, whylen, EPROTO,
		                "the length does not fit the type");
	switch (m->type) {
	case TP_POOL_REQUEST:
		m->u.req.role = get32(&p);
		m->u.req.proto = (int32_t)get32(&p);
		m->u.req.flags = get32(&p);
		m->u.req.opts = get32(&p);
		m->u.req.peername_len = get32(&p);
		m->u.req.timeout_ms = get32(&p);
		ok = get_str(&p, m->u.req.myname, TP_POOL_NAME) == 0 &&
		     get_str(&p, m->u.req.sniname, TP_POOL_SNI) == 0;
		break;
	case TP_POOL_ACCEPTED:
		m->u.timeout_ms = get32(&p);
		ok = 1;
		break;
	case TP_POOL_SNI_VERDICT:
		m->u.accept = get32(&p);
		ok = 1;
		break;
	case TP_POOL_SNI_ASK:
		ok = get_str(&p, m->u.sni, TP_POOL_SNI) == 0;
		break;
	case TP_POOL_REPLY:
		m->u.reply.result = (int32_t)get32(&p);
		m->u.reply.err = (int32_t)get32(&p);
		m->u.reply.cls = get32(&p);
		ok = get_str(&p, m->u.reply.peer, TP_POOL_NAME) == 0 &&
		     get_str(&p, m->u.reply.detail, TP_POOL_DETAIL) == 0;
		m->u.reply.trace_len = get32(&p);
		if (ok && m->u.reply.trace_len != blen - REPLY_LEN)
			return why_fail(why, whylen, EPROTO,
			                "reply: the trace's length is not the "
			                "rest of the body");
		break;
	case TP_POOL_END_ASK:
		ok = 1;
		break;
	case TP_POOL_END_REPLY:
		m->u.end.result = (int32_t)get32(&p);
		m->u.end.err = (int32_t)get32(&p);
		m->u.end.kind = get32(&p);
		m->u.end.alert = (int32_t)get32(&p);
		m->u.end.bytes_in = get64(&p);
		m->u.end.bytes_out = get64(&p);
		ok = get_str(&p, m->u.end.detail, TP_POOL_END) == 0;
		break;
	}
	if (!ok)
		return why_fail(why, whylen, EPROTO,
		                "a name field without its NUL, or with octets "
		                "after it");
	bad = check_msg(m);
	if (bad == NULL && m->type == TP_POOL_REPLY && m->u.reply.trace_len > 0)
		bad = tp_pool_trace_check(p, m->u.reply.trace_len);
	if (bad != NULL)
		return why_fail(why, whylen, EPROTO, bad);
	if (m->type == TP_POOL_REPLY && m->u.reply.trace_len > 0) {
		m->u.reply.trace = malloc(m->u.reply.trace_len);
		if (m->u.reply.trace == NULL)
			return why_fail(why, whylen, ENOMEM,
			                "reply: no memory for the trace");
		memcpy(m->u.reply.trace, p, m->u.reply.trace_len);
	}
	return 0;
}

void tp_pool_msg_clear(struct tp_pool_msg *m)
{
	if (m->type == TP_POOL_REPLY) {
		free(m->u.reply.trace);
		m->u.reply.trace = NULL;
		m->u.reply.trace_len = 0;
	}
}

int tp_pool_carries_fd(const struct tp_pool_msg *m)
{
	return m->type == TP_POOL_REQUEST || m->type == TP_POOL_END_ASK ||
	       (m->type == TP_POOL_REPLY && m->u.reply.result == 0);
}

/* --- the socket ------------------------------------------------------------
 */

int tp_pool_send(int sock, const struct tp_pool_msg *m, int fd)
{
	unsigned char small[1024], *buf = small;
	size_t cap = sizeof(small);
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov;
	struct msghdr mh;
	size_t n;
	ssize_t r;
	int e;

	/* a reply's trace: the buffer it needs, not the largest one (a
	 * large block freed per call is given back to the kernel) */
	if (m->type == TP_POOL_REPLY && m->u.reply.trace_len > 0 &&
	    m->u.reply.trace_len <= TP_POOL_TRACE_MAX) {
		cap = TP_POOL_HEADER + REPLY_LEN + m->u.reply.trace_len;
		if (cap > sizeof(small) && (buf = malloc(cap)) == NULL)
			return -1;
	}
	n = tp_pool_encode(m, buf, cap);
	if (n == 0) {
		if (buf != small)
			free(buf);
		errno = EINVAL;
		return -1;
	}
	memset(&mh, 0, sizeof(mh));
	iov.iov_base = buf;
	iov.iov_len = n;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (fd >= 0) {
		struct cmsghdr *c;

		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = sizeof(ctl.buf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	do
		r = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	e = errno;
	if (buf != small)
		free(buf);
	errno = e;
	if (r < 0)
		return -1;
	if ((size_t)r != n) {
		errno = EMSGSIZE;
		return -1;
	}
	return 0;
}

/* Wait until sock is readable or the deadline: 0, or -1 with errno. */
static int wait_readable(int sock, long long deadline)
{
	struct pollfd p = {sock, POLLIN, 0};
	long long left;
	int r;

	for (;;) {
		left = deadline < 0 ? -1 : deadline - tp_mono_ms();
		if (deadline >= 0 && left < 0)
			left = 0;
		r = poll(&p, 1, left > 0x7fffffff ? 0x7fffffff : (int)left);
		if (r > 0)
			return 0;
		if (r == 0) {
			errno = deadline == 0 ? EAGAIN : ETIMEDOUT;
			return -1;
		}
		if (errno != EINTR)
			return -1;
	}
}

/* The descriptors of a control message: the first into *fd, the rest
 * closed; their count. */
static int take_fds(struct msghdr *mh, int *fd)
{
	int count = 0;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c != NULL;
	     c = CMSG_NXTHDR(mh, c)) {
		size_t n;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
		    c->cmsg_len < CMSG_LEN(0))
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int f;

			memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(f));
			if (count++ == 0)
				*fd = f;
			else
				close(f);
		}
	}
	return count;
}

/* How long ago the message arrived, in ms, when the socket stamps its
 * messages (SO_TIMESTAMPNS, the real-time clock), else 0. */
static long long waited(struct msghdr *mh)
{
	struct timespec at, now;
	long long ms;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c != NULL;
	     c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET ||
		    c->cmsg_type != SCM_TIMESTAMPNS ||
		    c->cmsg_len < CMSG_LEN(sizeof(at)))
			continue;
		memcpy(&at, CMSG_DATA(c), sizeof(at));
		clock_gettime(CLOCK_REALTIME, &now);
		ms = (long long)(now.tv_sec - at.tv_sec) * 1000 +
		     (now.tv_nsec - at.tv_nsec) / 1000000;
		return ms > 0 ? ms : 0;
	}
	return 0;
}

/* tp_pool_recv() into a buffer of cap octets: on the stack when it is
 * small (a message without a trace), else allocated. */
static int recv_cap(int sock, struct tp_pool_msg *m, int *fd,
                    long long deadline, char *why, size_t whylen, size_t cap,
                    long long *waited_ms)
{
	unsigned char small[TP_POOL_SMALL], *buf = small;
	union {
		/* a descriptor, and the time of arrival (SO_TIMESTAMPNS) */
		char buf[CMSG_SPACE(sizeof(int)) +
		         CMSG_SPACE(sizeof(struct timespec))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov;
	struct msghdr mh;
	ssize_t n;
	int count, e;

	*fd = -1;
	why[0] = '\0';
	if (deadline != 0 && wait_readable(sock, deadline) != 0)
		return -1;
	if (cap > sizeof(small) && (buf = malloc(cap)) == NULL)
		return -1;
	iov.iov_base = buf;
	iov.iov_len = cap;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = ctl.buf;
	mh.msg_controllen = sizeof(ctl.buf);
	do
		n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		e = errno;
		if (buf != small)
			free(buf);
		errno = e;
		return -1;
	}
	count = take_fds(&mh, fd);
	if (waited_ms != NULL)
		*waited_ms = waited(&mh);
	if (n == 0 && count == 0) {
		if (buf != small)
			free(buf);
		return 0;
	}
	if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
		why_fail(why, whylen, EPROTO,
		         mh.msg_flags & MSG_TRUNC ? "longer than any message"
		                                  : "more than one descriptor");
		goto drop;
	}
	if (tp_pool_decode(buf, (size_t)n, m, why, whylen) != 0)
		goto drop;
	if (count > 1 || (count == 1) != tp_pool_carries_fd(m)) {
		tp_pool_msg_clear(m);
		why_fail(why, whylen, EPROTO,
		         count > 1    ? "more than one descriptor"
		         : count == 0 ? "no descriptor where one belongs"
		                      : "a descriptor where none belongs");
		goto drop;
	}
	if (buf != small)
		free(buf);
	return 1;
drop:
	e = errno;
	if (buf != small)
		free(buf);
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
	errno = e;
	return -1;
}

int tp_pool_recv(int sock, struct tp_pool_msg *m, int *fd, long long deadline,
                 char *why, size_t whylen)
{
	return recv_cap(sock, m, fd, deadline, why, whylen, TP_POOL_MAX, NULL);
}

int tp_pool_recv_small(int sock, struct tp_pool_msg *m, int *fd,
                       long long deadline, char *why, size_t whylen,
                       long long *waited_ms)
{
	return recv_cap(sock, m, fd, deadline, why, whylen, TP_POOL_SMALL,
	                waited_ms);
}

/* --- the library's side --------------------------------------------------
 */

static int serving;
/* The socket of the last call that went through the pool, for
 * starttls_end(). */
static pthread_mutex_t last_lock = PTHREAD_MUTEX_INITIALIZER;
static char last_socket[sizeof(((struct tp_pool_conf *)0)->socket)];

void tp_pool_serving(void)
{
	serving = 1;
}

int tp_pool_is_serving(void)
{
	return serving;
}

const char *tp_pool_socket_env(void)
{
	const char *env;

	if (serving)
		return NULL;
	env = getenv("TLSPOOL_SOCKET");
	return env != NULL && env[0] != '\0' ? env : NULL;
}

const char *tp_pool_socket_cfg(const struct tp_config *cfg)
{
	if (serving || cfg == NULL || cfg->pool.socket[0] == '\0')
		return NULL;
	return cfg->pool.socket;
}

const char *tp_pool_socket(const struct tp_config *cfg)
{
	const char *env = tp_pool_socket_env();

	return env != NULL ? env : tp_pool_socket_cfg(cfg);
}

/* A connection to the daemon at path, or -1 with errno.  A daemon that
 * accepts nothing (stopped, its backlog full) holds connect() and the
 * first send at most timeout_ms. */
static int raw_connect(const char *path, unsigned timeout_ms)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct timeval tv = {(time_t)(timeout_ms / 1000),
	                     (suseconds_t)(timeout_ms % 1000) * 1000};
	int s, e;

	if (strlen(path) >= sizeof(sa.sun_path) || path[0] != '/') {
		errno = EINVAL;
		return -1;
	}
	strcpy(sa.sun_path, path);
	s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -1;
	setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return s;
	e = errno;
	close(s);
	errno = e;
	return -1;
}

/* raw_connect() for a call: the failure as the call's. */
static int pool_connect(const char *path, unsigned timeout_ms)
{
	int s = raw_connect(path, timeout_ms), e = errno;

	if (s >= 0)
		return s;
	switch (e) {
	case EINVAL:
		return tp_failc(EINVAL, STARTTLS_ERR_CONFIG,
		                "the pool's socket %.100s: not an absolute "
		                "path of at most 107 octets",
		                path);
	case ENOENT:
	case ECONNREFUSED:
	case ENOTDIR:
	case ENOTSOCK:
	case EPROTOTYPE:
		return tp_fail(ECONNREFUSED,
		               "no tlspoold listens at %s (%s): is it running?",
		               path, strerror(e));
	case EACCES:
	case EPERM:
		return tp_failc(EACCES, STARTTLS_ERR_ACCESS,
		                "the pool's socket %s: %s", path, strerror(e));
	case EAGAIN:
	case EINPROGRESS:
		return tp_fail(ETIMEDOUT,
		               "tlspoold at %s accepted no connection in time",
		               path);
	}
	return tp_fail(e, "connect %s: %s", path, strerror(e));
}

/* A call that cannot start consumes fd, shut down as after a failure. */
static int refuse(int fd)
{
	int e = errno;

	shutdown(fd, SHUT_RDWR);
	close(fd);
	errno = e;
	return -1;
}

/* The request of a call; -1 with EINVAL for a name that cannot be one. */
static int make_request(const struct tp_pool_args *a, struct tp_pool_msg *m)
{
	struct tp_pool_request *q = &m->u.req;

	memset(m, 0, sizeof(*m));
	m->type = TP_POOL_REQUEST;
	q->role = a->server ? 1 : 0;
	q->proto = a->proto;
	q->flags = (uint32_t)a->flags;
	if (a->flags < 0)
		return tp_fail(EINVAL, "flags 0x%x: unknown, or not for a %s",
		               (unsigned)a->flags,
		               a->server ? "server" : "client");
	if (a->myname != NULL) {
		if (strlen(a->myname) >= sizeof(q->myname))
			return tp_fail(EINVAL,
			               "myname \"%.100s\": not a domain or "
			               "user@domain",
			               a->myname);
		q->opts |= TP_POOL_HAS_MYNAME;
		strcpy(q->myname, a->myname);
	}
	if (a->sniname != NULL) {
		if (strlen(a->sniname) >= sizeof(q->sniname))
			return tp_fail(EINVAL,
			               "sniname \"%.100s\": not a host name",
			               a->sniname);
		q->opts |= TP_POOL_HAS_SNINAME;
		strcpy(q->sniname, a->sniname);
	}
	if (a->peername != NULL) {
		q->opts |= TP_POOL_HAS_PEERNAME;
		q->peername_len = a->peername_len > UINT32_MAX
		                          ? UINT32_MAX
		                          : (uint32_t)a->peername_len;
	}
	if (a->server && (a->checksni != NULL || a->checksni_fn != NULL))
		q->opts |= TP_POOL_HAS_CHECKSNI;
	q->timeout_ms = a->timeout_ms;
	return 0;
}

/* The application's checksni on the SNI the daemon asks about. */
static int answer_sni(int s, const struct tp_pool_args *a, const char *sni)
{
	struct tp_pool_msg v;
	char copy[TP_POOL_SNI];
	int ok;

	if (a->checksni_fn != NULL) {
		ok = a->checksni_fn(sni, a->checksni_arg);
	} else if (a->checksni != NULL) {
		memcpy(copy, sni, sizeof(copy)); /* it may write to it */
		ok = a->checksni(copy);
	} else {
		ok = 1;
	}
	memset(&v, 0, sizeof(v));
	v.type = TP_POOL_SNI_VERDICT;
	v.u.accept = ok != 0;
	return tp_pool_send(s, &v, -1);
}

/* The daemon's reply, as the call's result. */
static int take_reply(const char *path, const struct tp_pool_reply *r, int tls,
                      const struct tp_pool_args *a)
{
	size_t need = strlen(r->peer) + 1;

	if (r->result != 0)
		return tp_failc(r->err, (starttls_class)r->cls, "%s",
		                r->detail);
	if (a->peername != NULL && need > a->peername_len) {
		/* the daemon checked it: only a confused one gets here */
		close(tls);
		return tp_fail(ENAMETOOLONG,
		               "the peer's identity %s needs %zu bytes, "
		               "peername has %zu",
		               r->peer, need, a->peername_len);
	}
	if (a->peername != NULL)
		memcpy(a->peername, r->peer, need);
	if (r->detail[0] != '\0') /* a warning */
		tp_failc(0, STARTTLS_OK, "%s", r->detail);
	pthread_mutex_lock(&last_lock);
	snprintf(last_socket, sizeof(last_socket), "%s", path);
	pthread_mutex_unlock(&last_lock);
	return tls;
}

/* The daemon's messages until its reply: the plaintext descriptor, or -1
 * with errno and the detail. */
static int converse(int s, const char *path, const struct tp_pool_args *a,
                    int *clean)
{
	long long deadline = tp_mono_ms() + 2LL * a->timeout_ms + 1000;
	struct tp_pool_msg m;
	char why[128];
	int fd, r;

	for (;;) {
		r = tp_pool_recv(s, &m, &fd, deadline, why, sizeof(why));
		if (r == 0 ||
		    (r < 0 && (errno == ECONNRESET || errno == EPIPE)))
			return tp_fail(ECONNRESET,
			               "tlspoold at %s closed the connection "
			               "during the call (did it exit?)",
			               path);
		if (r < 0 && errno == ETIMEDOUT)
			return tp_fail(ETIMEDOUT,
			               "tlspoold at %s did not answer in time",
			               path);
		if (r < 0 && (errno == EPROTO || errno == EPROTONOSUPPORT))
			return tp_failc(EPROTO, STARTTLS_ERR_INTERNAL,
			                "tlspoold at %s: %s", path, why);
		if (r < 0)
			return tp_fail(errno, "tlspoold at %s: %s", path,
			               strerror(errno));
		if (m.version != TP_POOL_VERSION) {
			/* a daemon of version 2 refuses a request of 3 before
			 * it runs anything; the descriptor is gone with it */
			tp_pool_msg_clear(&m);
			if (fd >= 0)
				close(fd);
			return tp_failc(
			        EPROTO, STARTTLS_ERR_INTERNAL,
			        "tlspoold at %s speaks protocol version "
			        "%u, this library %u: upgrade tlspoold",
			        path, m.version, TP_POOL_VERSION);
		}
		switch (m.type) {
		case TP_POOL_ACCEPTED:
			deadline = tp_mono_ms() + 2LL * m.u.timeout_ms + 1000;
			break;
		case TP_POOL_SNI_ASK:
			if (answer_sni(s, a, m.u.sni) != 0)
				return tp_fail(ECONNRESET, "tlspoold at %s: %s",
				               path, strerror(errno));
			break;
		case TP_POOL_REPLY:
			/* the daemon's trace is this call's (its absence, or
			 * no memory for it, leaves the trace empty) */
			(void)tp_pool_trace_load(m.u.reply.trace,
			                         m.u.reply.trace_len);
			r = take_reply(path, &m.u.reply, fd, a);
			tp_pool_msg_clear(&m);
			*clean =
			        1; /* the exchange is over: the next may come */
			return r;
		default:
			tp_pool_msg_clear(&m);
			return tp_failc(EPROTO, STARTTLS_ERR_INTERNAL,
			                "tlspoold at %s sent an unexpected "
			                "message (type %d)",
			                path, (int)m.type);
		}
	}
}

/* --- the connections kept for the next call --------------------------- */

/*
 * A connection carries the credentials of its connect() (SO_PEERCRED,
 * SO_PEERGROUPS): it is reused only while the process's effective IDs and
 * groups are still those, only by the process that made it (a child after
 * fork() drops its copies without a word: pthread_atfork(); a child of
 * clone() or vfork() without it execs, and the connections are
 * close-on-exec), and only for the same socket.
 */
struct idle {
	int fd;
	long long since; /* tp_mono_ms() of its last reply */
	uid_t euid;
	gid_t egid;
	uint64_t groups; /* a hash of getgroups() */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

static pthread_mutex_t idle_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t idle_once = PTHREAD_ONCE_INIT;
static struct idle idles[TP_POOL_IDLE_MAX]; /* oldest first */
static size_t nidle;

/* Forget every connection; under idle_lock. */
static void idle_drop_all(void)
{
	for (size_t k = 0; k < nidle; k++)
		close(idles[k].fd);
	nidle = 0;
}

static void atfork_prepare(void)
{
	pthread_mutex_lock(&idle_lock);
}

static void atfork_parent(void)
{
	pthread_mutex_unlock(&idle_lock);
}

/* The child's copies close: nothing is sent, the parent's stay open. */
static void atfork_child(void)
{
	idle_drop_all();
	pthread_mutex_unlock(&idle_lock);
}

static void idle_init(void)
{
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

/* Who this process is now: 0, or -1 when it cannot tell (then nothing
 * is kept). */
static int whoami(uid_t *euid, gid_t *egid, uint64_t *groups)
{
	gid_t g[64];
	int n = getgroups(64, g);
	uint64_t h = 1469598103934665603u; /* FNV-1a */

	if (n < 0)
		return -1;
	for (int k = 0; k < n; k++) {
		h ^= (uint64_t)g[k];
		h *= 1099511628211u;
	}
	h ^= (uint64_t)n;
	*euid = geteuid();
	*egid = getegid();
	*groups = h;
	return 0;
}

void tp_pool_forget(void)
{
	pthread_once(&idle_once, idle_init);
	pthread_mutex_lock(&idle_lock);
	idle_drop_all();
	pthread_mutex_unlock(&idle_lock);
}

size_t tp_pool_idle_count(void)
{
	size_t n;

	pthread_once(&idle_once, idle_init);
	pthread_mutex_lock(&idle_lock);
	n = nidle;
	pthread_mutex_unlock(&idle_lock);
	return n;
}

/* A kept connection to path for this process as it is now, or -1.  One
 * that the daemon closed (it restarted, or the connection idled out
 * there) reads as the end at once: those, and the stale, are dropped
 * here, for any socket (one poll() for all). */
static int idle_take(const char *path, const struct idle *me)
{
	struct pollfd p[TP_POOL_IDLE_MAX];
	long long now = tp_mono_ms();
	int s = -1;
	size_t k, n;

	pthread_once(&idle_once, idle_init);
	pthread_mutex_lock(&idle_lock);
	for (k = 0; k < nidle; k++)
		p[k] = (struct pollfd){idles[k].fd, POLLIN, 0};
	if (nidle > 0 && poll(p, nidle, 0) < 0)
		for (k = 0; k < nidle; k++)
			p[k].revents = POLLERR;
	/* anything readable on an idle connection is its end, or a message
	 * out of turn: either way not for a call */
	for (k = n = 0; k < nidle; k++) {
		if (p[k].revents != 0 || now - idles[k].since > TP_POOL_IDLE_MS)
			close(idles[k].fd);
		else
			idles[n++] = idles[k];
	}
	nidle = n;
	for (k = nidle; k-- > 0;) {
		struct idle *i = &idles[k];

		if (strcmp(i->path, path) != 0 || i->euid != me->euid ||
		    i->egid != me->egid || i->groups != me->groups)
			continue;
		s = i->fd;
		memmove(i, i + 1, (nidle - k - 1) * sizeof(*i));
		nidle--;
		break;
	}
	pthread_mutex_unlock(&idle_lock);
	return s;
}

/* s, made for path by this process as it was at connect(), is free for
 * the next call: kept (the oldest goes when all places are taken). */
static void idle_put(int s, const char *path, const struct idle *cred)
{
	struct idle *i;

	pthread_once(&idle_once, idle_init);
	pthread_mutex_lock(&idle_lock);
	if (nidle == TP_POOL_IDLE_MAX) {
		close(idles[0].fd);
		memmove(idles, idles + 1, --nidle * sizeof(*idles));
	}
	i = &idles[nidle++];
	*i = *cred;
	i->fd = s;
	i->since = tp_mono_ms();
	snprintf(i->path, sizeof(i->path), "%s", path);
	pthread_mutex_unlock(&idle_lock);
}

/*
 * The request m with fd on a connection to path: the connection, or -1
 * with the call's failure.  A kept connection is tried first; when its
 * send fails with the connection's end (the daemon restarted or dropped
 * it between the check and the send), nothing was delivered: sendmsg()
 * on a SOCK_SEQPACKET socket sends the whole record with its descriptor
 * or nothing.  Then the request goes once more, on a fresh connection.
 * A send that fails on a fresh connection is the call's failure.
 */
static int deliver(const char *path, const struct tp_pool_args *a,
                   const struct tp_pool_msg *m, struct idle *cred)
{
	int s = -1, fresh, e;

	if (whoami(&cred->euid, &cred->egid, &cred->groups) != 0)
		cred->euid = (uid_t)-1; /* never kept, nor taken */
	else
		s = idle_take(path, cred);
	fresh = s < 0;
	for (;;) {
		if (s < 0 && (s = pool_connect(path, a->timeout_ms)) < 0)
			return -1;
		if (tp_pool_send(s, m, a->fd) == 0)
			return s;
		e = errno;
		close(s);
		s = -1;
		if (fresh || (e != EPIPE && e != ECONNRESET && e != ENOTCONN))
			return tp_fail(ECONNRESET,
			               "tlspoold at %s: sending the call: %s",
			               path, strerror(e));
		fresh = 1;
	}
}

int tp_pool_call(const char *path, const struct tp_pool_args *arg)
{
	struct tp_pool_args args = *arg, *a = &args;
	struct tp_pool_msg m;
	struct idle cred;
	int s, rv, clean = 0;

	if (a->timeout_ms == 0 || a->timeout_ms > 3600000)
		a->timeout_ms = 10000; /* the default of [tls] */
	if (fcntl(a->fd, F_GETFD) < 0)
		return tp_fail(EINVAL, "fd %d: %s", a->fd, strerror(errno));
	if (make_request(a, &m) != 0)
		return refuse(a->fd);
	s = deliver(path, a, &m, &cred);
	if (s < 0)
		return refuse(a->fd);
	/* The daemon has its copy: ours goes now, consumed as always. */
	close(a->fd);
	rv = converse(s, path, a, &clean);
	if (clean && cred.euid != (uid_t)-1) {
		int e = errno;

		idle_put(s, path, &cred);
		errno = e;
	} else {
		close(s);
	}
	return rv;
}

int tp_pool_end(int fd, starttls_end_info *info)
{
	char path[sizeof(last_socket)], why[128];
	struct tp_pool_msg m;
	int s, r, none;
	const struct tp_pool_end_reply *e = &m.u.end;

	pthread_mutex_lock(&last_lock);
	memcpy(path, last_socket, sizeof(path));
	pthread_mutex_unlock(&last_lock);
	/* a process that got the descriptor from another: the pool it
	 * would use */
	if (path[0] == '\0' && tp_pool_socket(NULL) != NULL)
		snprintf(path, sizeof(path), "%s", tp_pool_socket(NULL));
	if (path[0] == '\0' || (s = raw_connect(path, 2000)) < 0) {
		errno = ENOENT;
		return -1;
	}
	memset(&m, 0, sizeof(m));
	m.type = TP_POOL_END_ASK;
	r = tp_pool_send(s, &m, fd);
	if (r == 0)
		r = tp_pool_recv(s, &m, &none, tp_mono_ms() + 2000, why,
		                 sizeof(why));
	close(s);
	if (r == 1)
		tp_pool_msg_clear(&m);
	if (r != 1 || m.type != TP_POOL_END_REPLY || e->result != 0) {
		errno = r == 1 && m.type == TP_POOL_END_REPLY ? e->err : ENOENT;
		return -1;
	}
	if (info != NULL) {
		info->kind = (starttls_end_kind)e->kind;
		info->alert = e->alert;
		info->bytes_in = e->bytes_in;
		info->bytes_out = e->bytes_out;
		snprintf(info->detail, sizeof(info->detail), "%s", e->detail);
	}
	return 0;
}
