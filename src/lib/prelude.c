/*
 * The plaintext prelude of STARTTLS protocols (starttls_prelude_client(3)):
 * the exchange before the TLS handshake, client and server side, on a
 * connected stream descriptor.  See docs/architecture.md, "Preludes".
 *
 * Reading never goes past the prelude: a line is taken with MSG_PEEK up
 * to its LF (what precedes the LF is the line's, so it is consumed even
 * before the LF arrives), binary messages by their exact length.  The
 * TLS handshake finds its first byte in the socket.  Bytes that follow
 * the go-ahead are the STARTTLS command injection of CVE-2011-0411 (and
 * CVE-2021-23222 for PostgreSQL): on the server side, anything the
 * client sent after its STARTTLS request before it got our answer is an
 * error; on the client side, anything the server sent after its go-ahead
 * that is not a TLS record is one.
 *
 * This file: the protocol table, the descriptor I/O with the deadline,
 * the report; prelude_text.c the line protocols, prelude_bin.c XMPP,
 * LDAP, PostgreSQL and MySQL.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dtls.h"
#include "prelude_int.h"
#include "runtime.h"

static const struct tp_proto protos[] = {
        {"smtp", tp_smtp_client, tp_smtp_server, 512,
         "RFC 5321 section 4.5.3.1"},
        {"lmtp", tp_smtp_client, tp_smtp_server, 512,
         "RFC 5321 section 4.5.3.1, RFC 2033"},
        {"submission", tp_smtp_client, tp_smtp_server, 512,
         "RFC 5321 section 4.5.3.1, RFC 6409"},
        {"imap", tp_imap_client, tp_imap_server, 8192,
         "RFC 7162 section 4 (8192 octets)"},
        {"pop3", tp_pop3_client, tp_pop3_server, 512, "RFC 2449 section 4"},
        {"sieve", tp_sieve_client, tp_sieve_server, 8192,
         "RFC 5804 (8192 octets here)"},
        {"ftp", tp_ftp_client, tp_ftp_server, 2048,
         "RFC 959 (2048 octets here)"},
        {"nntp", tp_nntp_client, tp_nntp_server, 512, "RFC 3977 section 3.1"},
        {"irc", tp_irc_client, tp_irc_server, 512, "RFC 1459 section 2.3"},
        {"xmpp", tp_xmpp_client, tp_xmpp_server, 16384,
         "RFC 6120 section 13.12 (16384 octets a tag here)"},
        {"xmpp-server", tp_xmpp_client, tp_xmpp_server, 16384,
         "RFC 6120 section 13.12 (16384 octets a tag here)"},
        {"ldap", tp_ldap_client, tp_ldap_server, 16384,
         "RFC 4511 (16384 octets a message here)"},
        {"postgres", tp_postgres_client, tp_postgres_server, 8,
         "PostgreSQL protocol 3.0"},
        {"mysql", tp_mysql_client, tp_mysql_server, 4096,
         "MySQL protocol 10 (4096 octets a packet here)"},
};

#define NPROTOS (sizeof(protos) / sizeof(protos[0]))

static const struct tp_proto *find(const char *name)
{
	size_t i;

	if (name == NULL)
		return NULL;
	for (i = 0; i < NPROTOS; i++)
		if (strcasecmp(protos[i].name, name) == 0)
			return &protos[i];
	return NULL;
}

int starttls_prelude_known(const char *protocol, int server)
{
	const struct tp_proto *p = find(protocol);

	return p != NULL && (server ? p->server != NULL : p->client != NULL);
}

const char *starttls_prelude_protocols(void)
{
	return "smtp lmtp submission imap pop3 sieve ftp nntp irc xmpp "
	       "xmpp-server ldap postgres mysql";
}

/* --- the report ------------------------------------------------------------
 */

void tp_printable(char *out, size_t cap, const char *in, size_t len)
{
	size_t o = 0, i;

	if (cap == 0)
		return;
	for (i = 0; i < len && o + 5 < cap; i++) {
		unsigned char ch = (unsigned char)in[i];

		if (ch >= 0x20 && ch < 0x7f && ch != '\\')
			out[o++] = (char)ch;
		else
			o += (size_t)snprintf(out + o, cap - o, "\\x%02X", ch);
	}
	if (i < len && o + 4 < cap) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}

void tp_report_add(char *dst, size_t cap, const char *s, size_t len)
{
	size_t used = strlen(dst);

	if (used + 2 >= cap)
		return;
	if (used > 0)
		dst[used++] = '\n';
	tp_printable(dst + used, cap - used, s, len);
}

const char *tp_show(struct tp_pc *c, const char *s, size_t len)
{
	char tmp[sizeof(c->shown) - 2];

	tp_printable(tmp, sizeof(tmp) < 200 ? sizeof(tmp) : 200, s, len);
	snprintf(c->shown, sizeof(c->shown), "\"%s\"", tmp);
	return c->shown;
}

void tp_step(struct tp_pc *c, const char *step)
{
	snprintf(c->p->step, sizeof(c->p->step), "%s", step);
}

void tp_refuse_(struct tp_pc *c, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	tp_failc(EPROTO, STARTTLS_ERR_PRELUDE, "%s %s: %s", c->pr->name,
	         c->server ? "server" : "client", msg);
}

/* --- I/O with the deadline -------------------------------------------------
 */

static const char *peer_word(const struct tp_pc *c)
{
	return c->server ? "client" : "server";
}

static int wait_fd(struct tp_pc *c, short ev)
{
	for (;;) {
		long long left = c->deadline - tp_mono_ms();
		struct pollfd pfd = {c->fd, ev, 0};
		int r;

		if (left <= 0)
			return tp_failc(
			        ETIMEDOUT, STARTTLS_ERR_TIMEOUT,
			        "%s %s: the %s did not %s within %u ms (step "
			        "%s)%s%s",
			        c->pr->name, c->server ? "server" : "client",
			        peer_word(c),
			        ev == POLLOUT ? "take what was sent"
			                      : "send its part",
			        c->timeout_ms, c->p->step,
			        c->len > 0 ? "; it sent only " : "",
			        c->len > 0 ? tp_show(c, c->line, c->len) : "");
		r = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
		if (r > 0) {
			if (pfd.revents & POLLNVAL)
				return tp_fail(EBADF,
				               "%s: descriptor %d is "
				               "not open",
				               c->pr->name, c->fd);
			return 0;
		}
		if (r < 0 && errno != EINTR)
			return tp_fail(errno, "%s: poll: %s", c->pr->name,
			               strerror(errno));
	}
}

static int closed(struct tp_pc *c, int e)
{
	return tp_failc(e ? e : ECONNRESET, STARTTLS_ERR_CONNECTION,
	                "%s %s: the %s %s during the %s step%s%s", c->pr->name,
	                c->server ? "server" : "client", peer_word(c),
	                e ? strerror(e) : "closed the connection", c->p->step,
	                c->len > 0 ? ", after " : "",
	                c->len > 0 ? tp_show(c, c->line, c->len) : "");
}

int tp_send(struct tp_pc *c, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (wait_fd(c, POLLOUT) != 0)
				return -1;
			continue;
		}
		c->len = 0;
		return closed(c, n < 0 ? errno : EPIPE);
	}
	return 0;
}

int tp_sendf(struct tp_pc *c, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return tp_fail(ENAMETOOLONG, "%s: a message too long to send",
		               c->pr->name);
	return tp_send(c, buf, (size_t)n);
}

/* recv() once something is there: > 0, or -1 after the failure (EOF
 * included). */
static ssize_t recv_some(struct tp_pc *c, void *buf, size_t len, int flags)
{
	for (;;) {
		ssize_t n;

		if (wait_fd(c, POLLIN) != 0)
			return -1;
		n = recv(c->fd, buf, len, flags | MSG_DONTWAIT);
		if (n > 0)
			return n;
		if (n == 0)
			return closed(c, 0);
		if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
			continue;
		return closed(c, errno);
	}
}

int tp_read_delim(struct tp_pc *c, char delim)
{
	c->len = 0;
	for (;;) {
		char *hit;
		size_t want = c->pr->maxline - c->len, take;
		ssize_t n, m;

		if (want == 0) {
			c->line[c->len] = '\0';
			return tp_refuse(c,
			                 "the %s sent a %s longer than %u "
			                 "octets (%s): %s",
			                 peer_word(c),
			                 delim == '\n' ? "line" : "tag",
			                 c->pr->maxline, c->pr->limit_ref,
			                 tp_show(c, c->line, c->len));
		}
		n = recv_some(c, c->line + c->len, want, MSG_PEEK);
		if (n < 0)
			return -1;
		hit = memchr(c->line + c->len, delim, (size_t)n);
		take = hit != NULL ? (size_t)(hit - (c->line + c->len)) + 1
		                   : (size_t)n;
		/* what precedes the delimiter is this line's: consume it
		 * (it cannot be TLS), and never more */
		m = recv(c->fd, c->line + c->len, take, MSG_DONTWAIT);
		if (m != (ssize_t)take)
			return closed(c, m < 0 ? errno : EIO);
		if (memchr(c->line + c->len, '\0', take) != NULL) {
			c->len += take;
			return tp_refuse(c, "the %s sent a NUL octet: %s",
			                 peer_word(c),
			                 tp_show(c, c->line, c->len));
		}
		c->len += take;
		if (hit != NULL)
			break;
	}
	c->line[c->len] = '\0';
	return 0;
}

int tp_read_line(struct tp_pc *c)
{
	if (tp_read_delim(c, '\n') != 0)
		return -1;
	c->len--;
	if (c->len > 0 && c->line[c->len - 1] == '\r')
		c->len--;
	c->line[c->len] = '\0';
	return 0;
}

int tp_read_exact(struct tp_pc *c, void *buf, size_t len)
{
	unsigned char *p = buf;
	size_t got = 0;

	while (got < len) {
		ssize_t n = recv_some(c, p + got, len - got, 0);

		if (n < 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

/* A TLS record header (RFC 8446 section 5.1): content type 20..23,
 * legacy version 3.x. */
static int looks_tls(const unsigned char *b, size_t n)
{
	return b[0] >= 20 && b[0] <= 23 && (n < 2 || b[1] == 3);
}

int tp_quiet(struct tp_pc *c)
{
	unsigned char b[64];
	ssize_t n;

	do
		n = recv(c->fd, b, sizeof(b), MSG_PEEK | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	if (n == 0 && c->server)
		return 0; /* a half-close: the handshake will say */
	if (n <= 0) {
		c->len = 0;
		return closed(c, n < 0 ? errno : 0);
	}
	if (c->server && c->tls_follows && !looks_tls(b, (size_t)n))
		return tp_refuse(c,
		                 "the client sent data after its SSL request "
		                 "that is not TLS: %s",
		                 tp_show(c, (const char *)b, (size_t)n));
	if (c->server && !c->tls_follows)
		return tp_refuse(c,
		                 "the client sent data after its STARTTLS "
		                 "request, before the answer and the TLS "
		                 "handshake (the command injection of "
		                 "CVE-2011-0411): %s",
		                 tp_show(c, (const char *)b, (size_t)n));
	if (looks_tls(b, (size_t)n))
		return 0;
	return tp_refuse(c,
	                 "the server sent data after its go-ahead, before "
	                 "the TLS handshake (the response injection of "
	                 "CVE-2011-0411): %s",
	                 tp_show(c, (const char *)b, (size_t)n));
}

/* --- the calls -------------------------------------------------------------
 */

static int run(int fd, starttls_prelude *p, int server)
{
	struct tp_pc *c;
	char host[256];
	int r, type = 0;
	socklen_t tlen = sizeof(type);

	tp_clear_error();
	if (p == NULL)
		return tp_fail(EINVAL, "starttls_prelude: no parameters");
	p->greeting[0] = p->hello[0] = p->capabilities[0] = '\0';
	p->request[0] = p->reply[0] = '\0';
	snprintf(p->step, sizeof(p->step), "start");
	if (fd < 0)
		return tp_fail(EINVAL, "starttls_prelude: descriptor %d", fd);
	if (!starttls_prelude_known(p->protocol, server))
		return tp_fail(
		        EPROTONOSUPPORT,
		        "starttls_prelude: \"%s\" is not a known protocol (%s)",
		        p->protocol ? p->protocol : "(none)",
		        starttls_prelude_protocols());
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) != 0 ||
	    type != SOCK_STREAM)
		return tp_fail(EINVAL,
		               "starttls_prelude: descriptor %d is not a "
		               "stream socket",
		               fd);
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return tp_fail(ENOMEM, "out of memory");
	c->fd = fd;
	c->server = server;
	c->p = p;
	c->pr = find(p->protocol);
	c->timeout_ms = p->timeout_ms;
	if (c->timeout_ms == 0) {
		struct tp_runtime *rt = tp_ctx_runtime(p->ctx);
		char err[256];

		if (rt == NULL)
			rt = tp_runtime_acquire(err, sizeof(err));
		else
			tp_runtime_ref(rt);
		if (rt == NULL) {
			free(c);
			return tp_failc(errno ? errno : EINVAL,
			                STARTTLS_ERR_CONFIG, "%s", err);
		}
		c->timeout_ms = rt->cfg->handshake_timeout_ms;
		tp_runtime_release(rt);
	}
	c->deadline = tp_mono_ms() + c->timeout_ms;
	c->myname = p->myname;
	if (c->myname == NULL || c->myname[0] == '\0') {
		if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0')
			snprintf(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = '\0';
		c->myname = host;
	}
	if (strpbrk(c->myname, " \r\n\t<>'\"&") != NULL) {
		/* the host name's when p->myname is NULL: not p->myname */
		tp_fail(EINVAL,
		        "%s: the local name \"%.100s\" holds a blank or a "
		        "markup character",
		        p->protocol, c->myname);
		free(c);
		return -1;
	}
	if (p->peerdomain != NULL &&
	    strpbrk(p->peerdomain, " \r\n\t<>'\"&") != NULL) {
		free(c);
		return tp_fail(EINVAL,
		               "%s: the peer domain \"%s\" holds a "
		               "blank or a markup character",
		               p->protocol, p->peerdomain);
	}
	r = server ? c->pr->server(c) : c->pr->client(c);
	if (r == 0) {
		tp_step(c, "done");
		tp_clear_error();
	}
	free(c);
	return r;
}

int starttls_prelude_client(int fd, starttls_prelude *p)
{
	return run(fd, p, 0);
}

int starttls_prelude_server(int fd, starttls_prelude *p)
{
	return run(fd, p, 1);
}
