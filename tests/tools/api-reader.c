/*
 * api-reader -- how a connection's end looks to an application of the
 * library: connect to HOST PORT, starttls_client() with SNI and
 * reference name NAME (default www.example.test), no local identity,
 * then read until read() returns 0 or fails, and say which, and what
 * starttls_end() says about it.
 *
 *   api-reader HOST PORT [NAME]
 *
 * The configuration comes from $TLSPOOL_CONFIG.  Prints on stdout
 *
 *   peer=ID
 *   bytes=N end=eof                   (read() returned 0)
 *   bytes=N end=error errno=ENAME     (read() failed)
 *   end-kind=KIND alert=A bytes_in=N bytes_out=N detail=TEXT
 *                                     (starttls_end() answered), or
 *   end-kind=unknown errno=ENAME      (starttls_end() failed)
 *
 * KIND is open, close_notify, truncated, alert, idle or error.  Exit 0
 * when the read loop ran (whatever the end), 1 usage, 2 connect, 3 the
 * starttls_client() call failed (its errno and detail on stderr).
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <tlspool/starttls.h>

static const char *errname(int e)
{
	const char *n = strerrorname_np(e);

	return n != NULL ? n : "unknown";
}

static const char *kind_name(starttls_end_kind k)
{
	switch (k) {
	case STARTTLS_END_OPEN:
		return "open";
	case STARTTLS_END_CLOSE_NOTIFY:
		return "close_notify";
	case STARTTLS_END_TRUNCATED:
		return "truncated";
	case STARTTLS_END_ALERT:
		return "alert";
	case STARTTLS_END_IDLE:
		return "idle";
	case STARTTLS_END_ERROR:
		return "error";
	}
	return "invalid";
}

static int connect_to(const char *host, const char *port)
{
	struct addrinfo hints = {0}, *res, *ai;
	int fd = -1, r, e = 0;

	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	r = getaddrinfo(host, port, &hints, &res);
	if (r != 0) {
		fprintf(stderr, "api-reader: %s %s: %s\n", host, port,
		        gai_strerror(r));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype, 0);
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
		fprintf(stderr, "api-reader: connect %s %s: %s\n", host, port,
		        strerror(e));
	return fd;
}

int main(int argc, char **argv)
{
	char peer[320] = "", name[256], buf[65536];
	unsigned long long total = 0;
	starttls_end_info info;
	int fd, tls, e;
	ssize_t n;

	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: api-reader HOST PORT [NAME]\n");
		return 1;
	}
	snprintf(name, sizeof(name), "%s",
	         argc > 3 ? argv[3] : "www.example.test");
	fd = connect_to(argv[1], argv[2]);
	if (fd < 0)
		return 2;
	tls = starttls_client(fd, IPPROTO_TCP, NULL, 0, name, peer,
	                      sizeof(peer));
	if (tls < 0) {
		e = errno;
		fprintf(stderr, "api-reader: starttls_client: %s: %s\n",
		        errname(e), starttls_errstr());
		return 3;
	}
	printf("peer=%s\n", peer);
	for (;;) {
		n = read(tls, buf, sizeof(buf));
		if (n > 0) {
			total += (unsigned long long)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		break;
	}
	if (n == 0)
		printf("bytes=%llu end=eof\n", total);
	else
		printf("bytes=%llu end=error errno=%s\n", total,
		       errname(errno));
	if (starttls_end(tls, &info) == 0)
		printf("end-kind=%s alert=%d bytes_in=%llu bytes_out=%llu "
		       "detail=%s\n",
		       kind_name(info.kind), info.alert, info.bytes_in,
		       info.bytes_out, info.detail);
	else
		printf("end-kind=unknown errno=%s\n", errname(errno));
	close(tls);
	return 0;
}
