/*
 * make bench: cold validation of a new name, side by side with the floor.
 * Three kinds of client handshakes against one bare GnuTLS server thread
 * on loopback (TLS 1.3, the server's ECDSA P-256 key), in blocks taken in
 * turn so that the machine's load falls on all alike:
 *   floor:  a bare GnuTLS client that verifies nothing;
 *   kept:   starttls_ctx_client() with STARTTLS_NO_CACHE_READ and
 *           NO_CACHE_WRITE (DANE from DNS each time) and a new peer name
 *           each time, the zone's keys kept ([dns] keep_keys_ttl): one
 *           query per handshake;
 *   full:   the same with keep_keys_ttl = 0: the key chain from the root
 *           each time;
 *   warm:   one name from the validation cache, for scale (what the
 *           handshake costs in tlspool without DNS).
 *   coldval_bench CERT KEY PORT KEPT.conf FULL.conf ROUNDS BLOCK
 * The peer names are kI.example.test and fI.example.test, I from 0 to
 * ROUNDS * BLOCK - 1, each with a TLSA record at _PORT._tcp (bench/
 * coldval.sh adds them), and w.example.test to warm the kept keys.
 * Prints the median rate of each kind and the ratios to the floor.
 */
#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tlspool/starttls.h"
#include "tlspool/validate.h"

#define PRIO "NORMAL:-VERS-ALL:+VERS-TLS1.3"

static gnutls_certificate_credentials_t server_cred, client_cred;
static gnutls_priority_t prio;
static int lfd;
static unsigned short port;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The server: one connection after the other, a handshake, then read to
 * the end. */
static void *server(void *arg)
{
	(void)arg;
	for (;;) {
		gnutls_session_t s;
		char buf[256];
		int fd = accept(lfd, NULL, NULL), r;

		if (fd < 0)
			return NULL;
		gnutls_init(&s, GNUTLS_SERVER);
		gnutls_priority_set(s, prio);
		gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, server_cred);
		gnutls_transport_set_int(s, fd);
		do
			r = gnutls_handshake(s);
		while (r < 0 && !gnutls_error_is_fatal(r));
		while (r >= 0 && gnutls_record_recv(s, buf, sizeof(buf)) > 0)
			;
		gnutls_deinit(s);
		close(fd);
	}
}

static int dial(void)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons(port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		perror("connect");
		exit(1);
	}
	return fd;
}

static void floor_once(void)
{
	gnutls_session_t s;
	int fd = dial(), r;

	gnutls_init(&s, GNUTLS_CLIENT);
	gnutls_priority_set(s, prio);
	gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, client_cred);
	gnutls_transport_set_int(s, fd);
	do
		r = gnutls_handshake(s);
	while (r < 0 && !gnutls_error_is_fatal(r));
	if (r < 0) {
		fprintf(stderr, "floor: %s\n", gnutls_strerror(r));
		exit(1);
	}
	gnutls_bye(s, GNUTLS_SHUT_WR);
	gnutls_deinit(s);
	close(fd);
}

static void tlspool_once(starttls_ctx *ctx, const char *name, int cold)
{
	char peer[256];
	int p = starttls_ctx_client(
	        ctx, dial(), IPPROTO_TCP, NULL,
	        STARTTLS_LOCALCERT_NONE |
	                (cold ? STARTTLS_NO_CACHE_READ | STARTTLS_NO_CACHE_WRITE
	                      : 0),
	        name, peer, sizeof(peer));

	if (p < 0) {
		fprintf(stderr, "%s: %s\n", name, starttls_errstr());
		exit(1);
	}
	close(p);
}

/* The time of one TLSA lookup alone, in microseconds: the median of
 * rounds of n lookups of the names prefix0 ... with a resolver of conf. */
static double lookup_us(const char *conf, const char *prefix, int n,
                        int rounds);

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double lookup_us(const char *conf, const char *prefix, int n, int rounds)
{
	char err[256], name[80];
	tlspool_dns_config *cfg =
	        tlspool_dns_config_load(conf, err, sizeof(err));
	tlspool_dns *dns = cfg ? tlspool_dns_new(cfg, err, sizeof(err)) : NULL;
	double *us = calloc((size_t)rounds, sizeof(double)), m;
	tlspool_dns_answer *a = NULL;
	int i, j;

	if (dns == NULL || us == NULL) {
		fprintf(stderr, "%s: %s\n", conf, err);
		exit(1);
	}
	snprintf(name, sizeof(name), "_%u._tcp.w.example.test", port);
	tlspool_dns_lookup(dns, name, TLSPOOL_RR_TLSA, &a, err, sizeof(err));
	tlspool_dns_answer_free(a);
	for (i = 0; i < rounds; i++) {
		double t0 = now_s();

		for (j = 0; j < n; j++) {
			snprintf(name, sizeof(name),
			         "_%u._tcp.%s%d.example.test", port, prefix,
			         i * n + j);
			if (tlspool_dns_lookup(dns, name, TLSPOOL_RR_TLSA, &a,
			                       err, sizeof(err)) != 0 ||
			    a->verdict != TLSPOOL_DNS_SECURE) {
				fprintf(stderr, "%s: not secure\n", name);
				exit(1);
			}
			tlspool_dns_answer_free(a);
		}
		us[i] = (now_s() - t0) * 1e6 / n;
	}
	m = median(us, rounds);
	free(us);
	tlspool_dns_free(dns);
	tlspool_dns_config_free(cfg);
	return m;
}

int main(int argc, char **argv)
{
	struct sockaddr_in a;
	starttls_ctx *kept, *full, *warm;
	pthread_t thr;
	int rounds, block, i, j, next = 0;
	double *rf, *rk, *rn, *rw, f, k, n, w;
	char name[64];

	if (argc != 8) {
		fprintf(stderr, "usage: coldval_bench CERT KEY PORT KEPT.conf "
		                "FULL.conf ROUNDS BLOCK\n");
		return 2;
	}
	port = (unsigned short)atoi(argv[3]);
	rounds = atoi(argv[6]);
	block = atoi(argv[7]);
	if (rounds < 1 || block < 1)
		return 2;
	gnutls_certificate_allocate_credentials(&server_cred);
	gnutls_certificate_allocate_credentials(&client_cred);
	if (gnutls_certificate_set_x509_key_file(server_cred, argv[1], argv[2],
	                                         GNUTLS_X509_FMT_PEM) < 0 ||
	    gnutls_priority_init(&prio, PRIO, NULL) < 0)
		return 1;
	kept = starttls_ctx_new(argv[4]);
	full = starttls_ctx_new(argv[5]);
	warm = starttls_ctx_new(argv[4]);
	if (kept == NULL || full == NULL || warm == NULL) {
		fprintf(stderr, "config: %s\n", starttls_errstr());
		return 1;
	}
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons(port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &(int){1}, sizeof(int));
	if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    listen(lfd, 64) != 0) {
		perror("bind");
		return 1;
	}
	pthread_create(&thr, NULL, server, NULL);
	/* warm-up: GnuTLS, the relay, and the kept keys of the zone */
	floor_once();
	tlspool_once(kept, "w.example.test", 1);
	tlspool_once(warm, "w.example.test", 0);
	rf = calloc((size_t)rounds, sizeof(double));
	rk = calloc((size_t)rounds, sizeof(double));
	rn = calloc((size_t)rounds, sizeof(double));
	rw = calloc((size_t)rounds, sizeof(double));
	for (i = 0; i < rounds; i++) {
		double t0 = now_s(), t1, t2, t3, t4;

		for (j = 0; j < block; j++)
			floor_once();
		t1 = now_s();
		for (j = 0; j < block; j++) {
			snprintf(name, sizeof(name), "k%d.example.test",
			         next + j);
			tlspool_once(kept, name, 1);
		}
		t2 = now_s();
		for (j = 0; j < block; j++) {
			snprintf(name, sizeof(name), "f%d.example.test",
			         next + j);
			tlspool_once(full, name, 1);
		}
		t3 = now_s();
		for (j = 0; j < block; j++)
			tlspool_once(warm, "w.example.test", 0);
		t4 = now_s();
		rw[i] = block / (t4 - t3);
		next += block;
		rf[i] = block / (t1 - t0);
		rk[i] = block / (t2 - t1);
		rn[i] = block / (t3 - t2);
	}
	f = median(rf, rounds);
	k = median(rk, rounds);
	n = median(rn, rounds);
	w = median(rw, rounds);
	printf("%-52s %8.0f /s\n", "floor: bare GnuTLS client, no verification",
	       f);
	printf("%-52s %8.0f /s  %.2fx the floor\n",
	       "tlspool, new name each time, zone keys kept", k, k / f);
	printf("%-52s %8.0f /s  %.2fx the floor\n",
	       "tlspool, new name each time, keep_keys_ttl = 0", n, n / f);
	printf("%-52s %8.0f /s  %.2fx the floor\n",
	       "tlspool, one name, validation cache warm", w, w / f);
	printf("%-52s %8.0f us\n", "one TLSA lookup alone, zone keys kept",
	       lookup_us(argv[4], "k", block, rounds));
	printf("%-52s %8.0f us\n", "one TLSA lookup alone, keep_keys_ttl = 0",
	       lookup_us(argv[5], "f", block, rounds));
	printf("kept keys / no kept keys: %.2fx (medians of %d rounds of %d)\n",
	       k / n, rounds, block);
	printf("RESULT coldval_rate %.1f %.1f %.3f\n", k, f, k / f);
	starttls_ctx_free(kept);
	starttls_ctx_free(full);
	starttls_ctx_free(warm);
	free(rf);
	free(rk);
	free(rn);
	free(rw);
	return 0;
}
