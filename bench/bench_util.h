/*
 * What the C bench harnesses (bench/handshake.c, bench/idle.c) share:
 * clocks, CPU time, loopback sockets, GnuTLS credentials from files, and
 * the bare GnuTLS peers they measure tlspool against.  Header-only:
 * every harness is one program built from one file.
 */
#ifndef TLSPOOL_BENCH_UTIL_H
#define TLSPOOL_BENCH_UTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* The bare peers' priority string: tlspool's default ([tls] priority). */
#define BENCH_PRIORITY "NORMAL"

static inline double bench_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* This process's user + system time (every thread, the relay's too). */
static inline double bench_cpu_us(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static inline void bench_die(const char *what, const char *why)
{
	fprintf(stderr, "bench: %s: %s\n", what, why);
	exit(2);
}

static inline void bench_nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* A listening socket on 127.0.0.1:port. */
static inline int bench_listen(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		bench_die("socket", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	sa.sin_port = htons((unsigned short)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(fd, 1024) != 0)
		bench_die("bind/listen", strerror(errno));
	return fd;
}

static inline int bench_dial(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sa.sin_port = htons((unsigned short)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	if (fd >= 0)
		bench_nodelay(fd);
	return fd;
}

/* Certificate credentials with key and certificate (both may be NULL:
 * none). */
static inline gnutls_certificate_credentials_t bench_creds(const char *key,
                                                           const char *cert)
{
	gnutls_certificate_credentials_t c;
	int r;

	if (gnutls_certificate_allocate_credentials(&c) < 0)
		bench_die("credentials", "out of memory");
	if (key != NULL && cert != NULL) {
		r = gnutls_certificate_set_x509_key_file(c, cert, key,
		                                         GNUTLS_X509_FMT_PEM);
		if (r < 0)
			bench_die(cert, gnutls_strerror(r));
	}
	return c;
}

static inline gnutls_priority_t bench_priority(void)
{
	gnutls_priority_t p;
	int r = gnutls_priority_init(&p, BENCH_PRIORITY, NULL);

	if (r < 0)
		bench_die("priority", gnutls_strerror(r));
	return p;
}

/* A bare GnuTLS session over fd, handshake done (blocking socket), no
 * verification of the peer; NULL on failure (fd left open). */
static inline gnutls_session_t
bench_bare_handshake(int fd, int server, gnutls_priority_t prio,
                     gnutls_certificate_credentials_t creds, int require_cert,
                     const char *sni)
{
	gnutls_session_t s;
	int r;

	/* GNUTLS_NO_TICKETS: as tlspool's sessions (starttls.c) */
	if (gnutls_init(&s, (server ? GNUTLS_SERVER : GNUTLS_CLIENT) |
	                            GNUTLS_NO_SIGNAL | GNUTLS_NO_TICKETS) < 0)
		return NULL;
	gnutls_priority_set(s, prio);
	gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, creds);
	if (server && require_cert)
		gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
	if (!server && sni != NULL)
		gnutls_server_name_set(s, GNUTLS_NAME_DNS, sni, strlen(sni));
	gnutls_transport_set_int(s, fd);
	do
		r = gnutls_handshake(s);
	while (r < 0 && !gnutls_error_is_fatal(r));
	if (r < 0) {
		gnutls_deinit(s);
		return NULL;
	}
	return s;
}

/* Read and drop until EOF, close_notify or an error. */
static inline void bench_drain_tls(gnutls_session_t s)
{
	char buf[4096];
	ssize_t n;

	do
		n = gnutls_record_recv(s, buf, sizeof(buf));
	while (n > 0 || n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED);
}

static int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static inline double bench_median(double *v, size_t n)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), bench_cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#endif
