/*
 * tlspool-connect --client and --server: one TLS side through
 * starttls_client()/starttls_server(), one plain side (stdin/stdout, or a
 * child started with --exec), socat style.
 *
 * The plain side is pumped both ways with poll() and bounded buffers, so
 * that neither direction can block the other.  EOF on stdin shuts down
 * the TLS write side (the library sends close_notify) and reading goes on
 * until the peer closes; EOF from the peer ends the run once what it sent
 * is written out.
 *
 * --udp (DTLS): the descriptor keeps message boundaries.  Each read from
 * stdin (at most DGRAM_MAX bytes) goes out as one message, and each
 * message received is written out as it came.  DTLS has no half-close:
 * EOF on stdin waits up to --linger ms for replies in flight, then closes
 * (the library sends close_notify).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define BUFSZ 65536
/* The largest message read from stdin with --udp: what one DTLS record
 * carries on any path of IPv6 minimum MTU (1280 - 48 IPv6 and UDP - 37
 * DTLS record overhead = 1195), rounded down. */
#define DGRAM_MAX 1024
/* After accept() ran out of descriptors or memory: the pause before the
 * next try. */
#define ACCEPT_RETRY_MS 100

/* --- exit codes ------------------------------------------------------------
 */

/*
 * A failed starttls call: the exit code from the class of the failure
 * (starttls_errclass()), never from the wording of its detail.  errno
 * decides only where the library names no class.
 */
static int exit_for_errno(int e)
{
	switch (e) {
	case EKEYREJECTED:
		return EXIT_AUTH;
	case EPERM:
		return EXIT_REFUSED;
	case EPROTO:
		return EXIT_TLS;
	case EINVAL:
	case ENOKEY:
	case EACCES:
	case ENOENT:
	case EPROTONOSUPPORT:
	case ENAMETOOLONG:
		return EXIT_USAGE;
	}
	return EXIT_CONNECT;
}

static int exit_for_class(starttls_class cls, int e)
{
	switch (cls) {
	case STARTTLS_OK:
		return EXIT_OK;
	case STARTTLS_ERR_ARGUMENT:
	case STARTTLS_ERR_UNSUPPORTED:
	case STARTTLS_ERR_CONFIG:
	case STARTTLS_ERR_NO_CREDENTIAL:
	case STARTTLS_ERR_ACCESS:
	case STARTTLS_ERR_NAME_TOO_LONG:
		return EXIT_USAGE;
	case STARTTLS_ERR_CONNECTION:
	case STARTTLS_ERR_TIMEOUT:
	case STARTTLS_ERR_RESOURCES:
		return EXIT_CONNECT;
	case STARTTLS_ERR_TLS:
		return EXIT_TLS;
	case STARTTLS_ERR_PEER_REJECTED:
	case STARTTLS_ERR_INSECURE:
	case STARTTLS_ERR_NO_RECORDS:
	case STARTTLS_ERR_NO_MATCH:
	case STARTTLS_ERR_NO_PEER_CERT:
	case STARTTLS_ERR_NO_IDENTITY:
		return EXIT_AUTH;
	case STARTTLS_ERR_REFUSED:
		return EXIT_REFUSED;
	case STARTTLS_ERR_DNS_BOGUS:
	case STARTTLS_ERR_DNS_FAILURE:
	case STARTTLS_ERR_DNS_TIMEOUT:
		return EXIT_DNS;
	case STARTTLS_ERR_INTERNAL:
		break;
	}
	return exit_for_errno(e);
}

/* TLS alert names: the IANA "TLS Alerts" registry (RFC 8446 section 6). */
static const char *alert_name(int a)
{
	static const struct {
		int n;
		const char *name;
	} names[] = {
	        {0, "close_notify"},
	        {10, "unexpected_message"},
	        {20, "bad_record_mac"},
	        {21, "decryption_failed"},
	        {22, "record_overflow"},
	        {30, "decompression_failure"},
	        {40, "handshake_failure"},
	        {41, "no_certificate"},
	        {42, "bad_certificate"},
	        {43, "unsupported_certificate"},
	        {44, "certificate_revoked"},
	        {45, "certificate_expired"},
	        {46, "certificate_unknown"},
	        {47, "illegal_parameter"},
	        {48, "unknown_ca"},
	        {49, "access_denied"},
	        {50, "decode_error"},
	        {51, "decrypt_error"},
	        {60, "export_restriction"},
	        {70, "protocol_version"},
	        {71, "insufficient_security"},
	        {80, "internal_error"},
	        {86, "inappropriate_fallback"},
	        {90, "user_canceled"},
	        {100, "no_renegotiation"},
	        {109, "missing_extension"},
	        {110, "unsupported_extension"},
	        {111, "certificate_unobtainable"},
	        {112, "unrecognized_name"},
	        {113, "bad_certificate_status_response"},
	        {114, "bad_certificate_hash_value"},
	        {115, "unknown_psk_identity"},
	        {116, "certificate_required"},
	        {120, "no_application_protocol"},
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].n == a)
			return names[i].name;
	return "unknown";
}

/* The exit code for the peer's fatal alert after the handshake. */
static int exit_for_alert(int a)
{
	switch (a) {
	case 42:  /* bad_certificate */
	case 43:  /* unsupported_certificate */
	case 44:  /* certificate_revoked */
	case 45:  /* certificate_expired */
	case 46:  /* certificate_unknown */
	case 48:  /* unknown_ca */
	case 116: /* certificate_required */
		return EXIT_AUTH;
	case 49: /* access_denied */
		return EXIT_REFUSED;
	}
	return EXIT_TLS;
}

static int sock_type(const struct options *o)
{
	return strcmp(o->proto, "tcp") == 0 ? SOCK_STREAM : SOCK_DGRAM;
}

static int ipproto(const struct options *o)
{
	return strcmp(o->proto, "tcp") == 0   ? IPPROTO_TCP
	       : strcmp(o->proto, "udp") == 0 ? IPPROTO_UDP
	                                      : IPPROTO_SCTP;
}

/* --- the plain side ------------------------------------------------------- */

struct dir {
	int from, to;
	size_t rdmax; /* the largest read: one message with --udp */
	char buf[BUFSZ];
	size_t len, off;
	unsigned long long nread, nwritten;
	int eof;
};

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Move what can be moved; 0, -1 (reading failed) or -2 (writing
 * failed), with errno. */
static int step(struct dir *d, int readable, int writable)
{
	ssize_t n;

	if (readable && d->len == 0 && !d->eof) {
		n = read(d->from, d->buf, d->rdmax);
		if (n == 0) {
			d->eof = 1;
		} else if (n > 0) {
			d->len = (size_t)n, d->off = 0;
			d->nread += (unsigned long long)n;
		} else if (errno != EAGAIN && errno != EINTR) {
			return -1;
		}
	}
	if (writable && d->len > 0) {
		n = write(d->to, d->buf + d->off, d->len);
		if (n > 0) {
			d->off += (size_t)n;
			d->len -= (size_t)n;
			d->nwritten += (unsigned long long)n;
		} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
			return -2;
		}
	}
	return 0;
}

/* Milliseconds on a monotonic clock. */
static long long now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* One message about the end of the connection, kept for --json. */
static void end_msg(struct conn_end *e, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
static void end_msg(struct conn_end *e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: %s\n", progname, e->msg);
}

/*
 * Reading or writing the TLS side failed with err: only the peer's
 * close_notify gives EOF, every other end a failure, and starttls_end()
 * tells which (a stream cut without close_notify may be a truncation
 * attack: RFC 8446 section 6.1, RFC 5246 section 7.2.1).  One message;
 * the exit code.
 */
static int tls_failed(int tls, int err, const char *op, struct conn_end *e)
{
	starttls_end_info *i = &e->info;

	if (starttls_end(tls, i) != 0) {
		memset(i, 0, sizeof(*i));
		e->kind = "unknown";
		end_msg(e, "%s: %s", op, strerror(err));
		return EXIT_CONNECT;
	}
	e->kind = end_kind_name(i->kind);
	switch (i->kind) {
	case STARTTLS_END_TRUNCATED:
		end_msg(e,
		        "the peer closed the connection without close_notify "
		        "after %llu bytes (the data may be incomplete)",
		        i->bytes_in);
		return EXIT_CONNECT;
	case STARTTLS_END_ALERT:
		end_msg(e,
		        "the peer sent the TLS alert %s (%d) after %llu bytes",
		        alert_name(i->alert), i->alert, i->bytes_in);
		return exit_for_alert(i->alert);
	case STARTTLS_END_IDLE:
	case STARTTLS_END_ERROR:
		end_msg(e, "the connection failed after %llu bytes: %s",
		        i->bytes_in, i->detail[0] ? i->detail : e->kind);
		return EXIT_CONNECT;
	default: /* still open, or closed cleanly: not why err came */
		end_msg(e, "%s: %s", op, strerror(err));
		return EXIT_CONNECT;
	}
}

/*
 * stdin -> tls and tls -> stdout.  Our EOF is passed on as a half-close
 * and reading goes on until the peer's EOF; after the peer's EOF, what
 * we still send gets linger_ms more (socat's -t), for a peer that shut
 * only its own write side; input left unsent then is an error, never a
 * silent success.  The exit code; e says how the connection ended.
 */
static int pump(int tls, int linger_ms, int datagram, struct conn_end *e)
{
	long long deadline = -1;
	struct dir *up = calloc(1, sizeof(*up)),
	           *down = calloc(1, sizeof(*down));
	int rv = EXIT_OK, shut = 0, r;
	long long linger = linger_ms;

	memset(e, 0, sizeof(*e));
	if (up == NULL || down == NULL) {
		fprintf(stderr, "%s: out of memory\n", progname);
		free(up);
		free(down);
		return EXIT_CONNECT;
	}
	up->from = 0, up->to = tls;
	down->from = tls, down->to = 1;
	up->rdmax = datagram ? DGRAM_MAX : sizeof(up->buf);
	down->rdmax = sizeof(down->buf);
	set_nonblock(tls);
	for (;;) {
		struct pollfd p[3];
		int np = 0, iu = -1, it = -1, io = -1;

		if (!up->eof && up->len == 0) {
			p[np] = (struct pollfd){0, POLLIN, 0};
			iu = np++;
		}
		if ((!down->eof && down->len == 0) || up->len > 0) {
			p[np] = (struct pollfd){tls, 0, 0};
			if (!down->eof && down->len == 0)
				p[np].events |= POLLIN;
			if (up->len > 0)
				p[np].events |= POLLOUT;
			it = np++;
		}
		if (down->len > 0) {
			p[np] = (struct pollfd){1, POLLOUT, 0};
			io = np++;
		}
		if (np == 0)
			break;
		if (deadline >= 0 && now_ms() >= deadline) {
			if (!datagram && up->len > 0) {
				/* what we read and did not send is lost:
				 * say so (input that merely has not ended,
				 * a terminal, is not) */
				fprintf(stderr,
				        "%s: the peer closed its side; stopped "
				        "sending after %llu bytes with more to "
				        "send: standard input not finished "
				        "(--linger %d ms)\n",
				        progname,
				        (unsigned long long)up->nwritten,
				        linger_ms);
				rv = EXIT_CONNECT;
			}
			break;
		}
		if (poll(p, (nfds_t)np,
		         deadline < 0 ? -1 : (int)(deadline - now_ms())) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		r = step(up, iu >= 0 && p[iu].revents,
		         it >= 0 && (p[it].revents & (POLLOUT | POLLERR)));
		if (r == -1) {
			fprintf(stderr, "%s: reading standard input: %s\n",
			        progname, strerror(errno));
			rv = EXIT_CONNECT;
			break;
		}
		if (r == -2) {
			rv = tls_failed(tls, errno, "sending", e);
			break;
		}
		r = step(down,
		         it >= 0 &&
		                 (p[it].revents & (POLLIN | POLLHUP | POLLERR)),
		         io >= 0 && p[io].revents);
		if (r == -1) {
			rv = tls_failed(tls, errno, "receiving", e);
			break;
		}
		if (r == -2) {
			if (errno == EPIPE)
				break; /* our reader went away: done */
			fprintf(stderr, "%s: writing standard output: %s\n",
			        progname, strerror(errno));
			rv = EXIT_CONNECT;
			break;
		}
		if (datagram) {
			/* No half-close: the peer's close ends both ways; our
			 * EOF lingers for replies, then close() below sends
			 * close_notify. */
			if (down->eof && down->len == 0)
				break;
			if (up->eof && up->len == 0 && deadline < 0)
				deadline = now_ms() + linger;
			continue;
		}
		if (up->eof && up->len == 0 && !shut) {
			/* half-close: the peer gets close_notify */
			shutdown(tls, SHUT_WR);
			shut = 1;
		}
		if (down->eof && down->len == 0) {
			if (up->eof && up->len == 0)
				break; /* both directions are done */
			if (deadline < 0)
				deadline = now_ms() + linger;
		}
	}
	if (e->kind == NULL) {
		if (starttls_end(tls, &e->info) == 0) {
			e->kind = end_kind_name(e->info.kind);
		} else {
			/* the library does not know it: what we saw (EOF
			 * only after close_notify) */
			memset(&e->info, 0, sizeof(e->info));
			e->kind = down->eof ? "close_notify" : "unknown";
			e->info.bytes_in = down->nread;
			e->info.bytes_out = up->nwritten;
		}
	}
	free(up);
	free(down);
	return rv;
}

/*
 * After a starttls call: the trace (--diagnose, --json; with defer set,
 * --json waits for the end of the connection), then the error (err
 * nonzero) or a warning the call left (the cache could not be used).
 * Returns the exit code for err.
 */
static int report_call(const struct options *o, const char *peer, int err,
                       int defer)
{
	int rc = err ? exit_for_class(starttls_errclass(), err) : EXIT_OK;

	if (!(defer && o->json && rc == EXIT_OK))
		print_trace(o, peer, rc);
	if (starttls_errstr()[0] != '\0')
		fprintf(stderr, "%s: %s\n", progname, starttls_errstr());
	return rc;
}

/* --exec: the child talks TLS plaintext on its stdin and stdout. */
static int run_exec(const struct options *o, int tls, const char *peer,
                    const char *local, const char *sni)
{
	pid_t pid = fork();
	int st;

	if (pid < 0) {
		fprintf(stderr, "%s: fork: %s\n", progname, strerror(errno));
		close(tls);
		return EXIT_CONNECT;
	}
	if (pid == 0) {
		dup2(tls, 0);
		dup2(tls, 1);
		if (tls > 1)
			close(tls);
		setenv("TLSPOOL_PEER", peer, 1);
		setenv("TLSPOOL_LOCAL", local ? local : "", 1);
		setenv("TLSPOOL_SNI", sni ? sni : "", 1);
		execl("/bin/sh", "sh", "-c", o->exec, (char *)NULL);
		fprintf(stderr, "%s: /bin/sh: %s\n", progname, strerror(errno));
		_exit(127);
	}
	close(tls);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	/* the child's own status, as a shell would report it */
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The peer is authenticated: move the data, then say how it ended. */
static int serve_plain(const struct options *o, int tls, const char *peer,
                       const char *local, const char *sni)
{
	struct conn_end e;
	int rv;

	fprintf(stderr, "peer: %s\n", peer[0] ? peer : "(anonymous)");
	if (o->exec != NULL)
		/* the command reads the descriptor and sees how it ends */
		return run_exec(o, tls, peer, local, sni);
	rv = pump(tls, o->linger_ms, strcmp(o->proto, "tcp") != 0, &e);
	if (o->json)
		print_trace_end(o, peer, rv, &e);
	close(tls);
	return rv;
}

/* --- client ----------------------------------------------------------------
 */

static int connect_to(const struct options *o)
{
	struct addrinfo hints = {0}, *res, *ai;
	int fd = -1, r, e = 0;

	hints.ai_socktype = sock_type(o);
	hints.ai_flags = AI_NUMERICSERV;
	r = getaddrinfo(o->name, o->port, &hints, &res);
	if (r != 0) {
		fprintf(stderr, "%s: %s %s: %s\n", progname, o->name, o->port,
		        gai_strerror(r));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		e = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		fprintf(stderr, "%s: connect %s %s: %s\n", progname, o->name,
		        o->port, strerror(e));
	return fd;
}

/* An IPv4 or IPv6 address literal (with a scope, or in the short forms
 * inet_aton() takes), not a name. */
static int is_address(const char *s)
{
	struct addrinfo hints = {0}, *res;

	hints.ai_flags = AI_NUMERICHOST;
	if (getaddrinfo(s, NULL, &hints, &res) != 0)
		return 0;
	freeaddrinfo(res);
	return 1;
}

int run_client(const struct options *o)
{
	char peer[320] = "";
	const char *sni = o->sni;
	int fd, tls;

	signal(SIGPIPE, SIG_IGN);
	if (sni == NULL && o->fd < 0 && !is_address(o->name))
		sni = o->name; /* socat and openssl s_client do the same */
	if (sni == NULL && !o->any_peer) {
		/* RFC 6698 section 3: the reference identity is a name; an
		 * address names no TLSA records */
		fprintf(stderr,
		        "%s: %s gives no name to authenticate the server by: "
		        "give --sni NAME, or --any-peer to accept any server "
		        "that DANE authenticates under the name it claims\n",
		        progname, o->fd >= 0 ? "--fd" : o->name);
		return EXIT_USAGE;
	}
	fd = o->fd >= 0 ? o->fd : connect_to(o);
	if (fd < 0)
		return EXIT_CONNECT;
	tls = starttls_ctx_client(o->ctx, fd, ipproto(o), o->myname, o->flags,
	                          sni, peer, sizeof(peer));
	if (tls < 0)
		return report_call(o, peer, errno, 0);
	report_call(o, peer, 0, o->exec == NULL);
	return serve_plain(o, tls, peer, o->myname, sni);
}

/* --- server ----------------------------------------------------------------
 */

/* What the SNI filter learnt of one ClientHello (its user pointer). */
struct sni_seen {
	const struct options *o;
	char *sni;         /* the client's SNI, "" for none */
	int no_sni_denied; /* a ClientHello without SNI was refused */
};

/*
 * checksni: record the SNI for TLSPOOL_SNI, and apply --sni-allow.  ""
 * stands for a ClientHello without SNI (RFC 6066 section 3), refused by
 * --sni-allow unless --allow-no-sni.  The name is matched as it came,
 * whatever its length.
 */
static int check_sni(const char *sni, void *arg)
{
	struct sni_seen *seen = arg;
	const struct options *o = seen->o;
	int i;

	free(seen->sni);
	seen->sni = strdup(sni);
	if (o->nsni_allow == 0)
		return 1;
	if (sni[0] == '\0') {
		seen->no_sni_denied = !o->allow_no_sni;
		return o->allow_no_sni;
	}
	for (i = 0; i < o->nsni_allow; i++)
		if (fnmatch(o->sni_allow[i], sni, FNM_CASEFOLD) == 0)
			return 1;
	return 0;
}

static int listen_on(const struct options *o)
{
	struct addrinfo hints = {0}, *res, *ai;
	int fd = -1, r, one = 1, e = 0;

	hints.ai_socktype = sock_type(o);
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	r = getaddrinfo(o->bind, o->port, &hints, &res);
	if (r != 0) {
		fprintf(stderr, "%s: bind %s %s: %s\n", progname,
		        o->bind ? o->bind : "*", o->port, gai_strerror(r));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    (sock_type(o) == SOCK_DGRAM || listen(fd, 128) == 0))
			break;
		e = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		fprintf(stderr, "%s: listen %s %s: %s\n", progname,
		        o->bind ? o->bind : "*", o->port, strerror(e));
	return fd;
}

static int serve_one(const struct options *o, int conn)
{
	struct sni_seen seen = {o, NULL, 0};
	char peer[320] = "";
	const char *sni;
	int tls, rc;

	tls = starttls_ctx_server(o->ctx, conn, ipproto(o), o->myname, o->flags,
	                          check_sni, &seen, peer, sizeof(peer));
	if (tls < 0) {
		rc = report_call(o, peer, errno, 0);
		if (seen.no_sni_denied)
			fprintf(stderr,
			        "%s: the client sent no SNI (--allow-no-sni "
			        "accepts that)\n",
			        progname);
		free(seen.sni);
		return rc;
	}
	report_call(o, peer, 0, o->exec == NULL);
	sni = seen.sni != NULL ? seen.sni : "";
	rc = serve_plain(o, tls, peer, o->myname ? o->myname : sni, sni);
	free(seen.sni);
	return rc;
}

/* --udp: the first datagram names the client; the socket is connected to
 * it and handed to starttls_server(), which reads that datagram (the
 * ClientHello) itself. */
static int accept_dgram(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char b;

	while (recvfrom(fd, &b, 1, MSG_PEEK, (struct sockaddr *)&ss, &len) < 0)
		if (errno != EINTR)
			return -1;
	if (connect(fd, (struct sockaddr *)&ss, len) != 0)
		return -1;
	return fd;
}

/*
 * accept() failed with e.  0: try again at once (a connection that went
 * away, a network error passed on, see accept(2)); 1: try again after a
 * pause (out of descriptors or memory: existing connections go on, new
 * ones wait in the backlog; one message per burst, *said is the burst);
 * -1: give up.
 */
static int accept_failed(int e, int *said)
{
	switch (e) {
	case EINTR:
	case EAGAIN:
#if EWOULDBLOCK != EAGAIN
	case EWOULDBLOCK:
#endif
	case ECONNABORTED:
	case EPROTO:
	case EPERM:
	case ENETDOWN:
	case ENOPROTOOPT:
	case EHOSTDOWN:
	case ENONET:
	case EHOSTUNREACH:
	case EOPNOTSUPP:
	case ENETUNREACH:
		return 0;
	case EMFILE:
	case ENFILE:
	case ENOBUFS:
	case ENOMEM:
		if (!*said)
			fprintf(stderr,
			        "%s: accept: %s: new connections wait until "
			        "resources are free (trying again every %d "
			        "ms)\n",
			        progname, strerror(e), ACCEPT_RETRY_MS);
		*said = 1;
		return 1;
	}
	fprintf(stderr, "%s: accept: %s\n", progname, strerror(e));
	return -1;
}

/* One connection, for a server without --fork. */
static int accept_one(int lfd)
{
	int conn, said = 0, r;

	for (;;) {
		conn = accept(lfd, NULL, NULL);
		if (conn >= 0)
			return conn;
		r = accept_failed(errno, &said);
		if (r < 0)
			return -1;
		if (r > 0)
			poll(NULL, 0, ACCEPT_RETRY_MS);
	}
}

static void on_sigchld(int sig)
{
	(void)sig; /* only to interrupt ppoll() */
}

/* Reap the children that ended; how many. */
static int reap(void)
{
	int n = 0, st;

	while (waitpid(-1, &st, WNOHANG) > 0)
		n++;
	return n;
}

/*
 * --fork: one process per connection, at most o->max_children at once.
 * At the limit the listening socket is not polled, so that connections
 * wait in the backlog until a child ends.  SIGCHLD is blocked except in
 * ppoll(), so that a child that ends between the reaping and the wait
 * still wakes it.  In the child, returns its status.
 */
static int serve_forking(const struct options *o, int lfd)
{
	struct sigaction sa = {0};
	sigset_t chld, orig;
	int nchildren = 0, full_said = 0, accept_said = 0, fork_said = 0;
	long long pause_until = 0, full_next = 0;

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, &orig);
	sa.sa_handler = on_sigchld;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_NOCLDSTOP; /* no SA_RESTART: ppoll() returns */
	sigaction(SIGCHLD, &sa, NULL);
	set_nonblock(lfd);
	for (;;) {
		struct pollfd p = {lfd, POLLIN, 0};
		struct timespec ts, *tsp = NULL;
		long long now;
		int full, conn, r;
		pid_t pid;

		nchildren -= reap();
		if (nchildren < 0)
			nchildren = 0;
		now = now_ms();
		full = nchildren >= o->max_children;
		if (full && !full_said && now >= full_next) {
			fprintf(stderr,
			        "%s: %d connections are being served, the "
			        "--max-children limit: new connections wait "
			        "until one ends\n",
			        progname, nchildren);
			full_next = now + 60000; /* at most once a minute */
		}
		full_said = full;
		if (now < pause_until) {
			ts.tv_sec = (pause_until - now) / 1000;
			ts.tv_nsec =
			        (long)((pause_until - now) % 1000) * 1000000;
			tsp = &ts;
		}
		r = ppoll(full || tsp != NULL ? NULL : &p,
		          full || tsp != NULL ? 0 : 1, tsp, &orig);
		if (r <= 0 || full || !(p.revents & POLLIN))
			continue; /* a signal, the pause is over, or full */
		conn = accept(lfd, NULL, NULL);
		if (conn < 0) {
			r = accept_failed(errno, &accept_said);
			if (r < 0)
				return EXIT_CONNECT;
			if (r > 0)
				pause_until = now_ms() + ACCEPT_RETRY_MS;
			continue;
		}
		accept_said = 0;
		pid = fork();
		if (pid == 0) {
			close(lfd);
			signal(SIGCHLD, SIG_DFL);
			sigprocmask(SIG_SETMASK, &orig, NULL);
			return serve_one(o, conn); /* main() exits with it */
		}
		close(conn);
		if (pid < 0) {
			/* the connection is dropped: the client sees it
			 * closed; say so once per burst */
			if (!fork_said)
				fprintf(stderr, "%s: fork: %s\n", progname,
				        strerror(errno));
			fork_said = 1;
			pause_until = now_ms() + ACCEPT_RETRY_MS;
			continue;
		}
		fork_said = 0;
		nchildren++;
	}
}

int run_server(const struct options *o)
{
	int lfd, conn;

	signal(SIGPIPE, SIG_IGN);
	if (o->fd >= 0)
		return serve_one(o, o->fd);
	lfd = listen_on(o);
	if (lfd < 0)
		return EXIT_CONNECT;
	if (o->verbose)
		fprintf(stderr, "%s: listening on port %s\n", progname,
		        o->port);
	if (sock_type(o) == SOCK_DGRAM) {
		if (o->fork) {
			close(lfd);
			fprintf(stderr,
			        "%s: --fork is not available with "
			        "--udp in this version\n",
			        progname);
			return EXIT_USAGE;
		}
		conn = accept_dgram(lfd);
		if (conn < 0) {
			fprintf(stderr, "%s: recvfrom: %s\n", progname,
			        strerror(errno));
			close(lfd);
			return EXIT_CONNECT;
		}
		return serve_one(o, conn);
	}
	if (o->fork)
		return serve_forking(o, lfd);
	conn = accept_one(lfd);
	close(lfd);
	if (conn < 0)
		return EXIT_CONNECT;
	return serve_one(o, conn);
}
