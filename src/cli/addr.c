/*
 * tlspool-connect: addresses.  A port or a service name; an IPv6 literal
 * with or without brackets (RFC 3986 section 3.2.2 writes it [::1]); a
 * host name resolved through the DNSSEC resolver of the configuration's
 * [dns] (A and AAAA, each with its verdict), never through libc and
 * /etc/resolv.conf; every address tried in order until one connects; a
 * server's dual-stack socket.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"

/* A connect() that hears nothing: the next address after this long
 * (--timeout when given). */
#define CONNECT_TIMEOUT_MS 10000

static struct addr_list last;

const struct addr_list *addr_last(void)
{
	return &last;
}

char *addr_unbracket(char *s)
{
	size_t n;

	if (s == NULL || s[0] != '[')
		return s;
	n = strlen(s);
	if (n < 3 || s[n - 1] != ']')
		return s; /* left for the resolver to refuse */
	s[n - 1] = '\0';
	return s + 1;
}

/* RFC 6335 section 5.1: 1 to 15 letters, digits and hyphens, at least
 * one letter, no hyphen first, last or twice in a row; here also a
 * letter first, so that "12ab" and "0x50" stay malformed numbers. */
static int service_name(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > 15 ||
	    !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
		return 0;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-'))
			return 0;
		if (c == '-' && (i == n - 1 || s[i + 1] == '-'))
			return 0;
	}
	return 1;
}

int addr_port(const struct options *o, const char *arg, const char *what,
              const char **out)
{
	static char buf[4][8];
	static int next;
	struct servent *se;
	char *end;
	unsigned long v;

	if (!service_name(arg)) {
		errno = 0;
		v = strtoul(arg, &end, 10);
		if (arg[0] < '0' || arg[0] > '9' || errno != 0 ||
		    *end != '\0' || v < 1 || v > 65535)
			return usage_error("%s: \"%s\" is not a number from 1 "
			                   "to 65535",
			                   what, arg);
		*out = arg;
		return 0;
	}
	/* a service name of /etc/services for the protocol */
	se = getservbyname(arg, o->proto);
	if (se == NULL)
		return usage_error("%s: \"%s\" is not a number from 1 to "
		                   "65535 or a service name known for %s "
		                   "(/etc/services)",
		                   what, arg, o->proto);
	snprintf(buf[next], sizeof(buf[next]), "%u",
	         (unsigned)ntohs((uint16_t)se->s_port));
	*out = buf[next];
	next = (next + 1) % 4;
	return 0;
}

/* One address into the list, with its text and where it came from. */
static void add(struct addr_list *l, const struct sockaddr *sa, socklen_t len,
                const char *verdict)
{
	struct addr_entry *e;
	const void *a;
	char host[INET6_ADDRSTRLEN];

	if (l->n == ADDR_MAX)
		return;
	e = &l->e[l->n++];
	memset(e, 0, sizeof(*e));
	memcpy(&e->ss, sa, len);
	e->len = len;
	e->verdict = verdict;
	a = sa->sa_family == AF_INET6
	            ? (const void *)&((const struct sockaddr_in6 *)sa)
	                      ->sin6_addr
	            : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;
	inet_ntop(sa->sa_family, a, host, sizeof(host));
	snprintf(e->text, sizeof(e->text),
	         sa->sa_family == AF_INET6 ? "[%s]:%u" : "%s:%u", host,
	         (unsigned)ntohs(
	                 sa->sa_family == AF_INET6
	                         ? ((const struct sockaddr_in6 *)sa)->sin6_port
	                         : ((const struct sockaddr_in *)sa)->sin_port));
}

static void add_raw(struct addr_list *l, int family, const void *addr,
                    unsigned port, const char *verdict)
{
	struct sockaddr_in6 s6 = {0};
	struct sockaddr_in s4 = {0};

	if (family == AF_INET6) {
		s6.sin6_family = AF_INET6;
		s6.sin6_port = htons((uint16_t)port);
		memcpy(&s6.sin6_addr, addr, 16);
		add(l, (struct sockaddr *)&s6, sizeof(s6), verdict);
	} else {
		s4.sin_family = AF_INET;
		s4.sin_port = htons((uint16_t)port);
		memcpy(&s4.sin_addr, addr, 4);
		add(l, (struct sockaddr *)&s4, sizeof(s4), verdict);
	}
}

/* An address literal (IPv4, IPv6 with a scope): 1 and the list, or 0. */
static int literal(const char *host, const char *port, struct addr_list *l)
{
	struct addrinfo hints = {0}, *res, *ai;

	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, port, &hints, &res) != 0)
		return 0;
	for (ai = res; ai != NULL; ai = ai->ai_next)
		add(l, ai->ai_addr, ai->ai_addrlen, "literal");
	freeaddrinfo(res);
	return 1;
}

/* RFC 6761 section 6.3: localhost and the names below it are the
 * loopback addresses, never asked of the DNS. */
static int is_localhost(const char *host)
{
	size_t n = strlen(host);

	if (n > 0 && host[n - 1] == '.')
		n--;
	return (n == 9 && strncasecmp(host, "localhost", 9) == 0) ||
	       (n > 10 && strncasecmp(host + n - 10, ".localhost", 10) == 0);
}

/* The resolver of the configuration: the context's, or (through the pool
 * with no --config) one of the default file's [dns], *own then set for
 * the caller to free. */
static tlspool_dns *resolver(const struct options *o, char *err, size_t len,
                             int *own)
{
	tlspool_dns_config *cfg;
	tlspool_dns *dns;

	*own = 0;
	if (o->ctx != NULL) {
		dns = starttls_ctx_resolver(o->ctx);
		if (dns == NULL)
			snprintf(err, len, "%s", starttls_errstr());
		return dns;
	}
	cfg = tlspool_dns_config_load(NULL, err, len);
	if (cfg == NULL)
		return NULL;
	dns = tlspool_dns_new(cfg, err, len);
	tlspool_dns_config_free(cfg);
	*own = dns != NULL;
	return dns;
}

static void say_answer(const struct options *o, const tlspool_dns_answer *a)
{
	char line[600];
	size_t i;

	if (!o->diagnose || !out_text_on_stderr())
		return;
	if (a->nrr == 0 || tlspool_dns_verdict_is_error(a->verdict)) {
		tlspool_dns_answer_explain(a, line, sizeof(line));
		fprintf(stderr, "; address %s\n", line);
		return;
	}
	for (i = 0; i < a->nrr; i++) {
		char text[INET6_ADDRSTRLEN] = "?";

		if (a->rr[i].rdlen == 16 || a->rr[i].rdlen == 4)
			inet_ntop(a->rr[i].rdlen == 16 ? AF_INET6 : AF_INET,
			          a->rr[i].rdata, text, sizeof(text));
		fprintf(stderr, "; address %s %s %s (%s)\n", a->owner,
		        a->qtype == TLSPOOL_RR_AAAA ? "AAAA" : "A", text,
		        tlspool_dns_verdict_name(a->verdict));
	}
}

/* A host name through the DNSSEC resolver: AAAA, then A (RFC 6724
 * section 10.3 prefers IPv6 by default).  0, or the exit code after a
 * message: a bogus, failed or timed-out answer for either type fails
 * closed (an attacker who can forge one can forge the other). */
static int by_dns_with(const struct options *o, tlspool_dns *dns,
                       const char *host, unsigned port, struct addr_list *l)
{
	static const uint16_t types[2] = {TLSPOOL_RR_AAAA, TLSPOOL_RR_A};
	char err[512] = "";
	int t, failed = 0;

	for (t = 0; t < 2; t++) {
		tlspool_dns_answer *a = NULL;
		size_t i;

		if (tlspool_dns_lookup(dns, host, types[t], &a, err,
		                       sizeof(err)) != 0) {
			say("%s: %s", host, err);
			return EXIT_USAGE;
		}
		say_answer(o, a);
		if (tlspool_dns_verdict_is_error(a->verdict)) {
			char line[600];

			tlspool_dns_answer_explain(a, line, sizeof(line));
			say("%s: no address to trust: %s", host, line);
			hint("--diagnose shows the answers; check [dns] "
			     "upstream, trust_anchor and timeout_ms");
			failed = 1;
		}
		for (i = 0; !failed && i < a->nrr; i++)
			if (a->rr[i].rdlen == (t == 0 ? 16u : 4u))
				add_raw(l, t == 0 ? AF_INET6 : AF_INET,
				        a->rr[i].rdata, port,
				        tlspool_dns_verdict_name(a->verdict));
		tlspool_dns_answer_free(a);
		if (failed)
			return EXIT_DNS;
	}
	if (l->n == 0) {
		say("%s: the name has no A or AAAA records", host);
		hint("--diagnose shows the answers");
		return EXIT_CONNECT;
	}
	return 0;
}

static int by_dns(const struct options *o, const char *host, unsigned port,
                  struct addr_list *l)
{
	char err[512] = "";
	int own, rc;
	tlspool_dns *dns = resolver(o, err, sizeof(err), &own);

	if (dns == NULL) {
		say("%s: %s", host, err);
		return EXIT_USAGE;
	}
	rc = by_dns_with(o, dns, host, port, l);
	if (own)
		tlspool_dns_free(dns);
	return rc;
}

int addr_resolve(const struct options *o, const char *host, const char *port,
                 struct addr_list *l)
{
	static const unsigned char v6lo[16] = {[15] = 1},
	                           v4lo[4] = {127, 0, 0, 1};
	unsigned p = (unsigned)strtoul(port, NULL, 10);

	memset(l, 0, sizeof(*l));
	if (host[0] == '\0') {
		say("an empty host name");
		return EXIT_USAGE;
	}
	if (literal(host, port, l))
		return 0;
	if (is_localhost(host)) {
		add_raw(l, AF_INET6, v6lo, p, "localhost");
		add_raw(l, AF_INET, v4lo, p, "localhost");
		return 0;
	}
	if (tlspool_check_domain(host, 0) != 0) {
		say("%s: neither an address nor a host name", host);
		return EXIT_USAGE;
	}
	return by_dns(o, host, p, l);
}

/* connect() within timeout_ms: 0, or -1 with errno. */
static int connect_within(int fd, const struct sockaddr *sa, socklen_t len,
                          int timeout_ms)
{
	int fl = fcntl(fd, F_GETFL), e = 0;
	socklen_t el = sizeof(e);
	struct pollfd p = {fd, POLLOUT, 0};
	int r;

	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	r = connect(fd, sa, len);
	if (r != 0 && errno == EINPROGRESS) {
		out_waiting(1);
		do
			r = poll(&p, 1, timeout_ms);
		while (r < 0 && errno == EINTR && !out_stopped());
		out_waiting(0);
		if (r == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) != 0 ||
		    e != 0) {
			errno = e ? e : EIO;
			return -1;
		}
		r = 0;
	}
	if (r != 0)
		return -1;
	fcntl(fd, F_SETFL, fl);
	return 0;
}

int addr_connect(const struct options *o, int *rc)
{
	int fd, e = 0,
	        timeout = o->quick.timeout_ms > 0 ? (int)o->quick.timeout_ms
	                                          : CONNECT_TIMEOUT_MS;
	size_t i;

	*rc = addr_resolve(o, o->name, o->port, &last);
	if (*rc != 0)
		return -1;
	for (i = 0; i < last.n; i++) {
		struct addr_entry *a = &last.e[i];

		a->tried = 1;
		out_connecting((const struct sockaddr *)&a->ss, a->len);
		fd = socket(a->ss.ss_family, sock_type(o) | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect_within(fd, (struct sockaddr *)&a->ss,
		                              a->len, timeout) == 0) {
			a->used = 1;
			out_address("connect", (const struct sockaddr *)&a->ss,
			            a->len, 0);
			if (o->diagnose && out_text_on_stderr())
				fprintf(stderr, "; connected to %s\n", a->text);
			return fd;
		}
		e = errno;
		a->error = e;
		if (fd >= 0)
			close(fd);
		out_address("connect", (const struct sockaddr *)&a->ss, a->len,
		            e);
		if (o->diagnose && out_text_on_stderr())
			fprintf(stderr, "; connect %s: %s\n", a->text,
			        strerror(e));
	}
	say("connect %s %s: %s%s", o->name, o->port, strerror(e),
	    last.n > 1 ? " (every address tried)" : "");
	hint("check that a server listens at %s port %s (-v lists the "
	     "addresses tried)",
	     o->name, o->port);
	*rc = EXIT_CONNECT;
	return -1;
}

/* One listening socket at a (dual-stack for ::): the descriptor, or -1
 * with errno. */
static int listen_at(const struct options *o, const struct addr_entry *a)
{
	int one = 1, off = 0, fd, e;
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&a->ss;

	fd = socket(a->ss.ss_family, sock_type(o) | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* [::]: IPv4 clients too, as ::ffff:a.b.c.d (RFC 3493 section
	 * 5.3), whatever net.ipv6.bindv6only says */
	if (a->ss.ss_family == AF_INET6 &&
	    IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr))
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) == 0 &&
	    (sock_type(o) == SOCK_DGRAM || listen(fd, 128) == 0))
		return fd;
	e = errno;
	close(fd);
	errno = e;
	return -1;
}

int addr_listen(const struct options *o)
{
	static const unsigned char any4[4] = {0};
	struct addr_list l;
	int fd = -1, e = 0, rc;
	size_t i;

	if (o->bind != NULL) {
		rc = addr_resolve(o, o->bind, o->port, &l);
		if (rc != 0)
			return -1;
	} else {
		/* no --bind: [::] dual-stack, or 0.0.0.0 where the host
		 * has no IPv6 */
		memset(&l, 0, sizeof(l));
		add_raw(&l, AF_INET6, &in6addr_any,
		        (unsigned)strtoul(o->port, NULL, 10), "any");
		add_raw(&l, AF_INET, any4, (unsigned)strtoul(o->port, NULL, 10),
		        "any");
	}
	for (i = 0; i < l.n; i++) {
		fd = listen_at(o, &l.e[i]);
		if (fd >= 0) {
			out_address("listen",
			            (const struct sockaddr *)&l.e[i].ss,
			            l.e[i].len, 0);
			return fd;
		}
		e = errno;
		/* the IPv4 fallback only where IPv6 is missing */
		if (o->bind == NULL && e != EAFNOSUPPORT &&
		    e != EADDRNOTAVAIL && e != EPROTONOSUPPORT)
			break;
	}
	say("listen %s %s: %s", o->bind ? o->bind : "*", o->port, strerror(e));
	hint("%s", e == EADDRINUSE ? "choose another port, or stop what "
	                             "listens there (ss -ltnp)"
	           : e == EACCES   ? "ports below 1024 need privileges"
	                           : "give --bind an address of this host");
	return -1;
}
