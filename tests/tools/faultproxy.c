/*
 * faultproxy -- a TCP relay on loopback that misbehaves on request, to
 * attack a TLS connection the way an on-path attacker can: cut it with a
 * FIN or an RST in the middle of a record, drip it, or stall it.
 *
 *   faultproxy [-m] LISTEN_PORT TARGET_HOST TARGET_PORT MODE [ARGS]
 *
 * Listens on 127.0.0.1:LISTEN_PORT, accepts one connection (-m: every
 * connection, each in a child process), connects to TARGET_HOST
 * TARGET_PORT and relays both ways.  DIR is "up" (client to server) or
 * "down" (server to client); byte counts are bytes on the wire (TLS
 * records, not plaintext).  MODE is one of:
 *
 *   pass                    relay, passing on half-closes and resets
 *   cut-fin DIR BYTES       after BYTES in DIR, FIN to both sides
 *                           (shutdown, then close); nothing more forwarded
 *   cut-rst DIR BYTES       the same with an RST (SO_LINGER {1, 0}, close)
 *   drip DIR INTERVAL_MS    DIR one byte per interval, from the first
 *   stall DIR AFTER_BYTES   after AFTER_BYTES in DIR nothing more in DIR
 *                           (read and dropped); the connection stays open
 *
 * Prints "listening" on stdout once it listens.  On stderr: "accept
 * SECONDS.NANOSECONDS" (CLOCK_REALTIME, as date +%s.%N prints it) when a
 * connection is accepted, and one line of byte counts with the reason it
 * ended when it ends.  Without -m it exits after the one connection: 0,
 * or 1 on a usage or setup error.  Every process ends after LIFETIME
 * seconds (-l, default 120) in any case, so that a test cannot leave one
 * behind for long.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BUFSZ 65536
/* After a cut-fin: how long the proxy reads and drops what still comes,
 * so that its close does not turn the FIN into an RST (Linux resets a
 * connection closed with unread data, RFC 2525 section 2.17). */
#define DRAIN_MS 1000

enum mode { M_PASS, M_CUT_FIN, M_CUT_RST, M_DRIP, M_STALL };

struct dir {
	const char *name;
	int up;       /* 1: client to server */
	int src, dst; /* descriptor indexes, 0 the client's */
	int from, to;
	unsigned char buf[BUFSZ];
	size_t off, len;
	unsigned long long count;   /* forwarded */
	unsigned long long dropped; /* read and dropped (stall) */
	int eof;                    /* the source ended */
	int done;                   /* and that was passed on (or dropped) */
	long long next_ms;          /* drip: when the next byte may go */
};

static enum mode mode;
static int fault_up;           /* the fault's direction is up */
static unsigned long long arg; /* BYTES or INTERVAL_MS */
static const char *mode_name;

static long long now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int usage(void)
{
	fprintf(stderr,
	        "usage: faultproxy [-m] [-l LIFETIME] LISTEN_PORT TARGET_HOST "
	        "TARGET_PORT MODE [ARGS]\n"
	        "  MODE: pass | cut-fin DIR BYTES | cut-rst DIR BYTES |\n"
	        "        drip DIR INTERVAL_MS | stall DIR AFTER_BYTES\n"
	        "  DIR: up (client to server) | down (server to client)\n");
	return 1;
}

static int parse_num(const char *s, unsigned long long *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 10);
	return errno != 0 || end == s || *end != '\0' || s[0] == '-' ? -1 : 0;
}

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void reset_close(int fd)
{
	struct linger l = {1, 0};

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

static int connect_target(const char *host, const char *port)
{
	struct addrinfo hints = {0}, *res, *ai;
	int fd = -1, r;

	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	r = getaddrinfo(host, port, &hints, &res);
	if (r != 0) {
		fprintf(stderr, "faultproxy: %s %s: %s\n", host, port,
		        gai_strerror(r));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		r = errno;
		close(fd);
		fd = -1;
		errno = r;
	}
	freeaddrinfo(res);
	if (fd < 0)
		fprintf(stderr, "faultproxy: connect %s %s: %s\n", host, port,
		        strerror(errno));
	return fd;
}

/* Is d the direction the fault applies to? */
static int faulty(const struct dir *d)
{
	return mode != M_PASS && d->up == fault_up;
}

/* The most d may read now, given the fault. */
static size_t read_limit(const struct dir *d)
{
	if (!faulty(d))
		return BUFSZ;
	switch (mode) {
	case M_CUT_FIN:
	case M_CUT_RST:
		return d->count >= arg          ? 0
		       : arg - d->count < BUFSZ ? (size_t)(arg - d->count)
		                                : BUFSZ;
	case M_STALL:
		/* past the limit reads go on, but are dropped */
		return d->count >= arg          ? BUFSZ
		       : arg - d->count < BUFSZ ? (size_t)(arg - d->count)
		                                : BUFSZ;
	default:
		return BUFSZ;
	}
}

static int stalled(const struct dir *d)
{
	return faulty(d) && mode == M_STALL && d->count >= arg;
}

static int cut_due(const struct dir *d)
{
	return faulty(d) && (mode == M_CUT_FIN || mode == M_CUT_RST) &&
	       d->count >= arg && d->len == 0;
}

/* How many bytes may be written now, and when more may (drip). */
static size_t write_limit(const struct dir *d, long long now)
{
	if (faulty(d) && mode == M_DRIP)
		return now >= d->next_ms ? 1 : 0;
	return d->len;
}

/* Read what the direction may take.  0, or -1 with errno (0 for EOF is
 * not an error: d->eof is set). */
static int dir_read(struct dir *d)
{
	size_t lim = read_limit(d);
	ssize_t n;

	if (lim == 0 || d->len > 0 || d->eof)
		return 0;
	n = read(d->from, d->buf, lim);
	if (n == 0) {
		d->eof = 1;
		return 0;
	}
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	if (stalled(d)) {
		d->dropped += (unsigned long long)n;
		return 0;
	}
	d->off = 0;
	d->len = (size_t)n;
	return 0;
}

static int dir_write(struct dir *d, long long now)
{
	size_t lim = write_limit(d, now);
	ssize_t n;

	if (d->len == 0 || lim == 0)
		return 0;
	n = write(d->to, d->buf + d->off, lim);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	d->off += (size_t)n;
	d->len -= (size_t)n;
	d->count += (unsigned long long)n;
	if (faulty(d) && mode == M_DRIP)
		d->next_ms = now + (long long)arg;
	return 0;
}

/* cut-fin: FIN to both, then drop what still arrives for a while, so that
 * the close that follows does not reset. */
static void cut_fin(int a, int b)
{
	long long end = now_ms() + DRAIN_MS;
	int open[2] = {1, 1}, fds[2] = {a, b};
	unsigned char junk[BUFSZ];

	shutdown(a, SHUT_WR);
	shutdown(b, SHUT_WR);
	while ((open[0] || open[1]) && now_ms() < end) {
		struct pollfd p[2];
		int i, np = 0, idx[2];

		for (i = 0; i < 2; i++)
			if (open[i]) {
				p[np] = (struct pollfd){fds[i], POLLIN, 0};
				idx[np++] = i;
			}
		if (poll(p, (nfds_t)np, (int)(end - now_ms())) <= 0)
			continue;
		for (i = 0; i < np; i++) {
			ssize_t n;

			if (!p[i].revents)
				continue;
			n = read(fds[idx[i]], junk, sizeof(junk));
			if (n == 0 ||
			    (n < 0 && errno != EAGAIN && errno != EINTR))
				open[idx[i]] = 0;
		}
	}
	close(a);
	close(b);
}

static void stamp_accept(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	fprintf(stderr, "accept %lld.%09ld\n", (long long)t.tv_sec, t.tv_nsec);
}

static int sock_error(int fd)
{
	int e = 0;
	socklen_t len = sizeof(e);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0 || e == 0)
		e = ECONNRESET;
	return e;
}

/*
 * Relay one accepted connection to the target; returns when it ends.
 * Descriptor index 0 is the client's, 1 the target's.  A descriptor that
 * poll() reported hung up (both ways shut, or reset) is left out of the
 * poll set, so that it cannot make the loop spin, and read directly when
 * its direction can take more (read() then says EOF or the error).
 */
static void relay(int cfd, const char *host, const char *port)
{
	static struct dir up, down;
	struct dir *d[2] = {&up, &down};
	const char *why = "both sides closed";
	int fd[2], hup[2] = {0, 0}, failed = 0, i;

	stamp_accept();
	fd[0] = cfd;
	fd[1] = connect_target(host, port);
	if (fd[1] < 0) {
		reset_close(cfd);
		return;
	}
	set_nonblock(fd[0]);
	set_nonblock(fd[1]);
	memset(&up, 0, sizeof(up));
	memset(&down, 0, sizeof(down));
	up.name = "up", up.up = 1, up.src = 0, up.dst = 1;
	down.name = "down", down.up = 0, down.src = 1, down.dst = 0;
	for (i = 0; i < 2; i++) {
		d[i]->from = fd[d[i]->src];
		d[i]->to = fd[d[i]->dst];
	}

	for (;;) {
		struct pollfd p[2];
		long long now, wake = -1;
		int timeout;

		for (i = 0; i < 2; i++) {
			if (cut_due(d[i])) {
				fprintf(stderr,
				        "faultproxy: %s %s: cut after %llu "
				        "bytes\n",
				        mode_name, d[i]->name, d[i]->count);
				fprintf(stderr,
				        "faultproxy: up %llu bytes, down %llu "
				        "bytes, ended: cut\n",
				        up.count, down.count);
				if (mode == M_CUT_RST) {
					reset_close(fd[0]);
					reset_close(fd[1]);
				} else {
					cut_fin(fd[0], fd[1]);
				}
				return;
			}
			/* The source ended and all it sent went on: pass the
			 * half-close on (a stalled direction passes nothing).
			 */
			if (d[i]->eof && d[i]->len == 0 && !d[i]->done) {
				if (!stalled(d[i]))
					shutdown(d[i]->to, SHUT_WR);
				d[i]->done = 1;
			}
		}
		if (up.done && down.done)
			break;
		now = now_ms();
		for (i = 0; i < 2 && !failed; i++) {
			if (hup[d[i]->dst] && d[i]->len > 0) {
				errno = EPIPE;
				failed = 1;
			} else if (hup[d[i]->src] && !d[i]->eof &&
			           d[i]->len == 0 && read_limit(d[i]) > 0 &&
			           dir_read(d[i]) < 0) {
				failed = 1;
			}
			if (failed)
				fprintf(stderr, "faultproxy: %s: %s\n",
				        d[i]->name, strerror(errno));
		}
		if (failed)
			break;
		p[0] = (struct pollfd){hup[0] ? -1 : fd[0], 0, 0};
		p[1] = (struct pollfd){hup[1] ? -1 : fd[1], 0, 0};
		for (i = 0; i < 2; i++) {
			if (!d[i]->eof && d[i]->len == 0 &&
			    read_limit(d[i]) > 0)
				p[d[i]->src].events |= POLLIN;
			if (d[i]->len > 0) {
				if (write_limit(d[i], now) > 0)
					p[d[i]->dst].events |= POLLOUT;
				else if (wake < 0 || d[i]->next_ms < wake)
					wake = d[i]->next_ms;
			}
		}
		timeout = wake < 0 ? -1 : wake > now ? (int)(wake - now) : 0;
		if (poll(p, 2, timeout) < 0) {
			if (errno == EINTR)
				continue;
			why = "poll failed";
			break;
		}
		for (i = 0; i < 2 && !failed; i++) {
			if (p[i].revents & POLLERR) {
				/* A reset: passed on as a reset below, as a
				 * stateful middlebox would. */
				errno = sock_error(fd[i]);
				fprintf(stderr, "faultproxy: %s: %s\n",
				        i == 0 ? "client" : "target",
				        strerror(errno));
				failed = 1;
			} else if (p[i].revents & POLLHUP) {
				hup[i] = 1;
			}
		}
		now = now_ms();
		for (i = 0; i < 2 && !failed; i++) {
			if (((p[d[i]->src].revents & (POLLIN | POLLHUP)) &&
			     dir_read(d[i]) < 0) ||
			    dir_write(d[i], now) < 0) {
				fprintf(stderr, "faultproxy: %s: %s\n",
				        d[i]->name, strerror(errno));
				failed = 1;
			}
		}
		if (failed)
			break;
	}
	if (failed) {
		why = "a side failed (reset passed on)";
		reset_close(fd[0]);
		reset_close(fd[1]);
	} else {
		close(fd[0]);
		close(fd[1]);
	}
	fprintf(stderr,
	        "faultproxy: up %llu bytes, down %llu bytes, dropped up %llu, "
	        "down %llu, ended: %s\n",
	        up.count, down.count, up.dropped, down.dropped, why);
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa;
	unsigned long long lport, lifetime = 120;
	int lfd, one = 1, many = 0, a = 1, need;

	while (a < argc && argv[a][0] == '-') {
		if (strcmp(argv[a], "-m") == 0) {
			many = 1;
			a++;
		} else if (strcmp(argv[a], "-l") == 0 && a + 1 < argc &&
		           parse_num(argv[a + 1], &lifetime) == 0) {
			a += 2;
		} else {
			return usage();
		}
	}
	if (argc - a < 4 || parse_num(argv[a], &lport) != 0 || lport == 0 ||
	    lport > 65535)
		return usage();
	mode_name = argv[a + 3];
	if (strcmp(mode_name, "pass") == 0)
		mode = M_PASS, need = 0;
	else if (strcmp(mode_name, "cut-fin") == 0)
		mode = M_CUT_FIN, need = 2;
	else if (strcmp(mode_name, "cut-rst") == 0)
		mode = M_CUT_RST, need = 2;
	else if (strcmp(mode_name, "drip") == 0)
		mode = M_DRIP, need = 2;
	else if (strcmp(mode_name, "stall") == 0)
		mode = M_STALL, need = 2;
	else
		return usage();
	if (argc - a != 4 + need)
		return usage();
	if (need) {
		if (strcmp(argv[a + 4], "up") == 0)
			fault_up = 1;
		else if (strcmp(argv[a + 4], "down") != 0)
			return usage();
		if (parse_num(argv[a + 5], &arg) != 0)
			return usage();
		if (mode == M_DRIP && arg == 0)
			return usage();
	}

	signal(SIGPIPE, SIG_IGN);
	alarm((unsigned)lifetime);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0) {
		perror("faultproxy: socket");
		return 1;
	}
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)lport);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(lfd, 16) != 0) {
		fprintf(stderr, "faultproxy: listen 127.0.0.1:%llu: %s\n",
		        lport, strerror(errno));
		return 1;
	}
	printf("listening\n");
	fflush(stdout);
	if (many)
		signal(SIGCHLD, SIG_IGN);
	for (;;) {
		int cfd = accept(lfd, NULL, NULL);

		if (cfd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			perror("faultproxy: accept");
			return 1;
		}
		if (!many) {
			close(lfd);
			relay(cfd, argv[a + 1], argv[a + 2]);
			return 0;
		}
		switch (fork()) {
		case -1:
			perror("faultproxy: fork");
			close(cfd);
			break;
		case 0:
			close(lfd);
			signal(SIGCHLD, SIG_DFL);
			alarm((unsigned)lifetime);
			relay(cfd, argv[a + 1], argv[a + 2]);
			_exit(0);
		default:
			close(cfd);
		}
	}
}
