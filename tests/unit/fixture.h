/*
 * Helpers for the Check programs that sign and serve zones of their own
 * in a fixture run before the tests (check_starttls, check_dtls,
 * check_userid).  The fixture runs outside any test, so a failure ends
 * the program, after the program's own teardown().
 */
#ifndef TLSPOOL_FIXTURE_H
#define TLSPOOL_FIXTURE_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static void teardown(void);

#define need(cond, what)                                                      \
	do {                                                                  \
		if (!(cond)) {                                                \
			fprintf(stderr, "%s: setup: %s\n", __FILE__, (what)); \
			teardown();                                           \
			exit(1);                                              \
		}                                                             \
	} while (0)

static inline void run_sh(const char *cmd)
{
	need(system(cmd) == 0, cmd);
}

/* The contents of a small file, without trailing newlines and spaces. */
static inline char *slurp_into(const char *path, char *buf, size_t len)
{
	FILE *fp = fopen(path, "r");
	size_t n;

	need(fp != NULL, path);
	n = fread(buf, 1, len - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	return buf;
}

/* A TCP listener on a free loopback port. */
static inline int listen_any(unsigned *p)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	need(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	             listen(fd, 512) == 0,
	     "listen");
	getsockname(fd, (struct sockaddr *)&sa, &len);
	*p = ntohs(sa.sin_port);
	return fd;
}

/* Write DIR/tlspool.conf and make it the configuration of every call. */
static inline void use_config(const char *dir, const char *text)
{
	char path[512];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/tlspool.conf", dir);
	fp = fopen(path, "w");
	need(fp != NULL, path);
	fputs(text, fp);
	fclose(fp);
	setenv("TLSPOOL_CONFIG", path, 1);
}

/* Stop the zones served from DIR/z and remove DIR. */
static inline void stop_zones(const char *dir)
{
	char cmd[512];
	const char *src = getenv("TLSPOOL_SOURCE_DIR");

	snprintf(cmd, sizeof(cmd), "%s/zones/serve stop %s/z; rm -rf %s",
	         src ? src : ".", dir, dir);
	(void)!system(cmd);
}

#endif
