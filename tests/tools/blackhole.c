/*
 * blackhole -- a DNS server that never answers, for timeout tests.
 *
 * Binds UDP and TCP on one free port of 127.0.0.1 (or the port given),
 * prints the port on stdout, and then reads and drops whatever arrives
 * until it is killed.  TCP
 * connections are accepted and left hanging, so a client times out
 * instead of seeing a refusal.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int bind_one(int type, unsigned short port)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, type, 0), one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    (type == SOCK_STREAM && listen(fd, 16) != 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int udp, tcp, tries;
	char buf[4096];

	for (tries = 0; tries < 20; tries++) {
		udp = bind_one(SOCK_DGRAM,
		               argc > 1 ? (unsigned short)atoi(argv[1]) : 0);
		if (udp < 0)
			return 1;
		/* zeroed first: the analyzer cannot see getsockname() fill
		 * it through glibc's transparent union argument */
		memset(&sa, 0, sizeof(sa));
		len = sizeof(sa);
		if (getsockname(udp, (struct sockaddr *)&sa, &len) != 0)
			return 1;
		tcp = bind_one(SOCK_STREAM, ntohs(sa.sin_port));
		if (tcp >= 0)
			break;
		close(udp);
	}
	if (tcp < 0)
		return 1;
	printf("%u\n", ntohs(sa.sin_port));
	fflush(stdout);
	for (;;) {
		struct pollfd p[2] = {{udp, POLLIN, 0}, {tcp, POLLIN, 0}};

		if (poll(p, 2, -1) < 0)
			return 1;
		if (p[0].revents & POLLIN)
			(void)!recv(udp, buf, sizeof(buf), 0);
		if (p[1].revents & POLLIN)
			(void)!accept(tcp, NULL, NULL); /* and never read */
	}
}
