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

/* --- exit codes from a failed starttls call ------------------------------ */

/*
 * DESIGN section 6.  errno tells most; the DNS failures that the library
 * reports as EKEYREJECTED or ETIMEDOUT are told apart by their detail,
 * which the library words as "<owner>: TLSA RRset is bogus (...)" and
 * "<owner>: TLSA lookup timed out (...)".
 */
static int exit_for_errno(int e, const char *detail)
{
	switch (e) {
	case EKEYREJECTED:
		if (strstr(detail, "RRset is bogus") ||
		    strstr(detail, "RRset is servfail") ||
		    strstr(detail, "RRset is indeterminate"))
			return EXIT_DNS;
		return EXIT_AUTH;
	case ETIMEDOUT:
		return strstr(detail, "lookup timed out") ? EXIT_DNS : EXIT_TLS;
	case EPERM:
		return EXIT_REFUSED;
	case EPROTO:
		return EXIT_TLS;
	case ECONNRESET:
	case ECONNREFUSED:
	case EPIPE:
		return EXIT_CONNECT;
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
	int eof;
};

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Move what can be moved; 0, or -1 with errno on a hard error. */
static int step(struct dir *d, int readable, int writable)
{
	ssize_t n;

	if (readable && d->len == 0 && !d->eof) {
		n = read(d->from, d->buf, d->rdmax);
		if (n == 0)
			d->eof = 1;
		else if (n > 0)
			d->len = (size_t)n, d->off = 0;
		else if (errno != EAGAIN && errno != EINTR)
			return -1;
	}
	if (writable && d->len > 0) {
		n = write(d->to, d->buf + d->off, d->len);
		if (n > 0) {
			d->off += (size_t)n;
			d->len -= (size_t)n;
		} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
			return -1;
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

/*
 * stdin -> tls and tls -> stdout.  Our EOF is passed on as a half-close
 * and reading goes on until the peer's EOF; after the peer's EOF, what
 * we still send gets linger_ms more (socat's -t), for a peer that shut
 * only its own write side.
 */
static int pump(int tls, int linger_ms, int datagram)
{
	long long deadline = -1;
	struct dir *up = calloc(1, sizeof(*up)),
	           *down = calloc(1, sizeof(*down));
	int rv = EXIT_OK, shut = 0;
	long long linger = linger_ms;

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
		if (deadline >= 0 && now_ms() >= deadline)
			break;
		if (poll(p, (nfds_t)np,
		         deadline < 0 ? -1 : (int)(deadline - now_ms())) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (step(up, iu >= 0 && p[iu].revents,
		         it >= 0 && (p[it].revents & (POLLOUT | POLLERR)))) {
			fprintf(stderr, "%s: sending: %s\n", progname,
			        strerror(errno));
			rv = EXIT_CONNECT;
			break;
		}
		if (step(down,
		         it >= 0 &&
		                 (p[it].revents & (POLLIN | POLLHUP | POLLERR)),
		         io >= 0 && p[io].revents)) {
			if (errno == EPIPE && down->from == tls &&
			    down->to == 1)
				break; /* our reader went away: done */
			fprintf(stderr, "%s: receiving: %s\n", progname,
			        strerror(errno));
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
	free(up);
	free(down);
	return rv;
}

/*
 * After a starttls call: the trace (--diagnose, --json), then the error
 * (err nonzero) or a warning the call left (the cache could not be used).
 * Returns the exit code for err.
 */
static int report_call(const struct options *o, const char *peer, int err)
{
	int rc = err ? exit_for_errno(err, starttls_errstr()) : EXIT_OK;

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

static int serve_plain(const struct options *o, int tls, const char *peer,
                       const char *local, const char *sni)
{
	int rv;

	fprintf(stderr, "peer: %s\n", peer[0] ? peer : "(anonymous)");
	if (o->exec != NULL)
		return run_exec(o, tls, peer, local, sni);
	rv = pump(tls, o->linger_ms, strcmp(o->proto, "tcp") != 0);
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

static int is_address(const char *s)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, s, buf) == 1 ||
	       inet_pton(AF_INET6, s, buf) == 1;
}

int run_client(const struct options *o)
{
	char peer[320] = "";
	const char *sni = o->sni;
	int fd, tls;

	signal(SIGPIPE, SIG_IGN);
	if (sni == NULL && o->name != NULL && !is_address(o->name))
		sni = o->name; /* socat and openssl s_client do the same */
	fd = o->fd >= 0 ? o->fd : connect_to(o);
	if (fd < 0)
		return EXIT_CONNECT;
	tls = starttls_client(fd, ipproto(o), (char *)o->myname, o->flags,
	                      (char *)sni, peer, sizeof(peer));
	if (tls < 0)
		return report_call(o, peer, errno);
	report_call(o, peer, 0);
	return serve_plain(o, tls, peer, o->myname, sni);
}

/* --- server ----------------------------------------------------------------
 */

static const struct options *server_opts;
static char seen_sni[256];

/* checksni: record the SNI for TLSPOOL_SNI, and apply --sni-allow. */
static int check_sni(char *sni)
{
	int i;

	snprintf(seen_sni, sizeof(seen_sni), "%s", sni);
	if (server_opts->nsni_allow == 0)
		return 1;
	for (i = 0; i < server_opts->nsni_allow; i++)
		if (fnmatch(server_opts->sni_allow[i], sni, FNM_CASEFOLD) == 0)
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
	char peer[320] = "";
	int tls;

	seen_sni[0] = '\0';
	tls = starttls_server(conn, ipproto(o), (char *)o->myname, o->flags,
	                      check_sni, peer, sizeof(peer));
	if (tls < 0)
		return report_call(o, peer, errno);
	report_call(o, peer, 0);
	return serve_plain(o, tls, peer, o->myname ? o->myname : seen_sni,
	                   seen_sni);
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

int run_server(const struct options *o)
{
	int lfd, conn;

	signal(SIGPIPE, SIG_IGN);
	server_opts = o;
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
	if (!o->fork) {
		conn = accept(lfd, NULL, NULL);
		close(lfd);
		if (conn < 0) {
			fprintf(stderr, "%s: accept: %s\n", progname,
			        strerror(errno));
			return EXIT_CONNECT;
		}
		return serve_one(o, conn);
	}
	/* --fork: one process per connection; children are not waited for */
	signal(SIGCHLD, SIG_IGN);
	for (;;) {
		pid_t pid;

		conn = accept(lfd, NULL, NULL);
		if (conn < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			fprintf(stderr, "%s: accept: %s\n", progname,
			        strerror(errno));
			return EXIT_CONNECT;
		}
		pid = fork();
		if (pid == 0) {
			close(lfd);
			signal(SIGCHLD, SIG_DFL);
			exit(serve_one(o, conn)); /* exit: the relay flushes */
		}
		if (pid < 0)
			fprintf(stderr, "%s: fork: %s\n", progname,
			        strerror(errno));
		close(conn);
	}
}
