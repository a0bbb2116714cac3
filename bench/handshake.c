/*
 * Handshakes through tlspool against the floor: bare GnuTLS, same peer,
 * same priority string, measured side by side in one process (make
 * bench, bench/handshake.sh).
 *
 *   handshake -m client|server -p PORT -k KEY -c CERT [-K CKEY -C CCERT]
 *             [-s SNI] [-l MYNAME] [-r ROUNDS] [-n PER_ROUND] [-o DIR]
 *             [-a tlspool|bare]
 *
 * client  the peer is a bare GnuTLS server (a child process) with KEY and
 *         CERT on 127.0.0.1:PORT; measured: starttls_ctx_client() (DANE
 *         from a warm cache: the first call fills it) against a bare
 *         GnuTLS client that verifies nothing.
 * server  the peer is a bare GnuTLS client (a child process) presenting
 *         CKEY/CCERT; measured: starttls_ctx_server() as MYNAME, requiring
 *         the client's certificate (DANE, warm cache), against a bare
 *         GnuTLS server requiring a certificate it does not verify.
 *
 * Each round runs PER_ROUND handshakes of each side, in alternating
 * order (A B, B A, ...).  A handshake is timed from connect() (client)
 * or accept() (server) to the established channel; the rate counts the
 * close too; CPU is this process's (getrusage, the relay's threads
 * included).  The ratios are the median of each round's pair.  Both
 * sides do the same work: sessions made with GNUTLS_NO_TICKETS, as
 * tlspool makes them (no NewSessionTicket to make, send or decrypt); and
 * they close alike: the relay, once the application closed its end,
 * sends close_notify, shuts the socket for writing and closes it without
 * waiting for the peer; the bare side does the same.
 *
 * Prints each round, the medians, and lines
 *   RESULT <name> <tlspool> <floor> <ratio>
 * for the table of make bench; with -o, the latencies of each side in
 * DIR/lat-MODE-SIDE.dat (sorted, "microseconds fraction") for gnuplot.
 * -a runs one side alone (after the warm-up), for strace or callgrind.
 */
#include <signal.h>
#include <sys/wait.h>

#include <tlspool/starttls.h>

#include "bench_util.h"

static const char *mode = "client", *key, *cert, *ckey, *ccert;
static const char *sni = "www.example.test", *myname = "www.example.test";
static const char *outdir, *only; /* -a: one side alone (profiling) */
static int port, rounds = 15, per = 150;
static gnutls_priority_t prio;
static starttls_ctx *ctx;

/* --- the peers (child processes) ----------------------------------------- */

/* A bare server for the client mode: handshake, read to the end, close. */
static void serve_forever(int lfd)
{
	gnutls_certificate_credentials_t creds = bench_creds(key, cert);
	gnutls_session_t s;

	for (;;) {
		int fd = accept(lfd, NULL, NULL);

		if (fd < 0)
			continue;
		bench_nodelay(fd);
		s = bench_bare_handshake(fd, 1, prio, creds, 0, NULL);
		if (s != NULL) {
			bench_drain_tls(s);
			gnutls_deinit(s);
		}
		close(fd);
	}
}

/* A bare client with a certificate for the server mode. */
static void dial_forever(void)
{
	gnutls_certificate_credentials_t creds = bench_creds(ckey, ccert);
	gnutls_session_t s;

	for (;;) {
		int fd = bench_dial(port);

		if (fd < 0) {
			usleep(1000);
			continue;
		}
		s = bench_bare_handshake(fd, 0, prio, creds, 0, sni);
		if (s != NULL) {
			bench_drain_tls(s);
			gnutls_deinit(s);
		}
		close(fd);
	}
}

/* --- one handshake of each side ------------------------------------------ */

/* The established channel's latency in microseconds, or -1. */
static double client_tlspool(void)
{
	char peer[320];
	double t0 = bench_now_us(), t;
	int fd = bench_dial(port), app;

	if (fd < 0)
		return -1;
	app = starttls_ctx_client(ctx, fd, IPPROTO_TCP, NULL, 0, sni, peer,
	                          sizeof(peer));
	t = bench_now_us() - t0;
	if (app < 0) {
		fprintf(stderr, "bench: starttls_ctx_client: %s\n",
		        starttls_errstr());
		return -1;
	}
	close(app);
	return t;
}

static double client_bare(gnutls_certificate_credentials_t anon)
{
	double t0 = bench_now_us(), t;
	int fd = bench_dial(port);
	gnutls_session_t s;

	if (fd < 0)
		return -1;
	s = bench_bare_handshake(fd, 0, prio, anon, 0, sni);
	t = bench_now_us() - t0;
	if (s == NULL) {
		close(fd);
		return -1;
	}
	/* the relay's close once the application closed its end:
	 * close_notify, the FIN, and nothing waited for */
	gnutls_bye(s, GNUTLS_SHUT_WR);
	shutdown(fd, SHUT_WR);
	gnutls_deinit(s);
	close(fd);
	return t;
}

static double server_tlspool(int lfd)
{
	char peer[320];
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC), app;
	double t0 = bench_now_us(), t;

	if (fd < 0)
		return -1;
	app = starttls_ctx_server(ctx, fd, IPPROTO_TCP, myname, 0, NULL, NULL,
	                          peer, sizeof(peer));
	t = bench_now_us() - t0;
	if (app < 0) {
		fprintf(stderr, "bench: starttls_ctx_server: %s\n",
		        starttls_errstr());
		return -1;
	}
	close(app);
	return t;
}

static double server_bare(int lfd, gnutls_certificate_credentials_t creds)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	double t0 = bench_now_us(), t;
	gnutls_session_t s;

	if (fd < 0)
		return -1;
	bench_nodelay(fd);
	s = bench_bare_handshake(fd, 1, prio, creds, 1, NULL);
	t = bench_now_us() - t0;
	if (s == NULL) {
		close(fd);
		return -1;
	}
	/* the relay's close once the application closed its end:
	 * close_notify, the FIN, and nothing waited for */
	gnutls_bye(s, GNUTLS_SHUT_WR);
	shutdown(fd, SHUT_WR);
	gnutls_deinit(s);
	close(fd);
	return t;
}

/* --- the rounds ---------------------------------------------------------- */

struct side {
	const char *name;
	double *lat; /* every handshake's latency */
	size_t nlat;
	double *rate, *cpu; /* per round: handshakes/s, CPU us/handshake */
};

static int lfd = -1;
static gnutls_certificate_credentials_t bare_creds;

static double one(int tlspool)
{
	int server = strcmp(mode, "server") == 0;

	if (server)
		return tlspool ? server_tlspool(lfd)
		               : server_bare(lfd, bare_creds);
	return tlspool ? client_tlspool() : client_bare(bare_creds);
}

static void batch(struct side *sd, int tlspool, int round)
{
	double t0 = bench_now_us(), c0 = bench_cpu_us(), t;
	int i;

	if (only != NULL && strcmp(only, sd->name) != 0) {
		sd->rate[round] = sd->cpu[round] = 1;
		return;
	}
	for (i = 0; i < per; i++) {
		t = one(tlspool);
		if (t < 0)
			bench_die(sd->name, "a handshake failed");
		sd->lat[sd->nlat++] = t;
	}
	sd->rate[round] = per * 1e6 / (bench_now_us() - t0);
	sd->cpu[round] = (bench_cpu_us() - c0) / per;
}

static void write_lat(struct side *sd)
{
	char path[4096];
	FILE *f;
	size_t i;

	if (outdir == NULL)
		return;
	snprintf(path, sizeof(path), "%s/lat-%s-%s.dat", outdir, mode,
	         sd->name);
	f = fopen(path, "w");
	if (f == NULL)
		bench_die(path, strerror(errno));
	qsort(sd->lat, sd->nlat, sizeof(double), bench_cmp_double);
	for (i = 0; i < sd->nlat; i++)
		fprintf(f, "%.1f %.5f\n", sd->lat[i],
		        (double)(i + 1) / (double)sd->nlat);
	fclose(f);
}

static void side_init(struct side *sd, const char *name)
{
	sd->name = name;
	sd->nlat = 0;
	sd->lat = calloc((size_t)rounds * (size_t)per, sizeof(double));
	sd->rate = calloc((size_t)rounds, sizeof(double));
	sd->cpu = calloc((size_t)rounds, sizeof(double));
	if (sd->lat == NULL || sd->rate == NULL || sd->cpu == NULL)
		bench_die("memory", strerror(ENOMEM));
}

static void side_free(struct side *sd)
{
	free(sd->lat);
	free(sd->rate);
	free(sd->cpu);
}

static void usage(void)
{
	fprintf(stderr,
	        "usage: handshake -m client|server -p PORT -k KEY -c "
	        "CERT [-K CKEY -C CCERT] [-s SNI] [-l MYNAME] "
	        "[-r ROUNDS] [-n PER_ROUND] [-o DIR] [-a tlspool|bare]\n");
	exit(2);
}

static void options(int argc, char **argv)
{
	int o;

	while ((o = getopt(argc, argv, "m:p:k:c:K:C:s:l:r:n:o:a:")) != -1) {
		switch (o) {
		case 'm':
			mode = optarg;
			break;
		case 'p':
			port = atoi(optarg);
			break;
		case 'k':
			key = optarg;
			break;
		case 'c':
			cert = optarg;
			break;
		case 'K':
			ckey = optarg;
			break;
		case 'C':
			ccert = optarg;
			break;
		case 's':
			sni = optarg;
			break;
		case 'l':
			myname = optarg;
			break;
		case 'r':
			rounds = atoi(optarg);
			break;
		case 'n':
			per = atoi(optarg);
			break;
		case 'o':
			outdir = optarg;
			break;
		case 'a':
			only = optarg;
			break;
		default:
			usage();
		}
	}
	if (port <= 0 || key == NULL || cert == NULL || rounds < 1 || per < 1 ||
	    (strcmp(mode, "client") != 0 && strcmp(mode, "server") != 0) ||
	    (strcmp(mode, "server") == 0 && (ckey == NULL || ccert == NULL)))
		usage();
}

int main(int argc, char **argv)
{
	struct side a, b;
	double ra, rb, ca, cb, la, lb, mr, mc, *rr, *cr;
	int server, r, first;
	pid_t child;

	options(argc, argv);
	server = strcmp(mode, "server") == 0;
	signal(SIGPIPE, SIG_IGN);
	prio = bench_priority();
	ctx = starttls_ctx_new(NULL);
	if (ctx == NULL)
		bench_die("starttls_ctx_new", starttls_errstr());
	lfd = bench_listen(port);
	child = fork();
	if (child < 0)
		bench_die("fork", strerror(errno));
	if (child == 0) {
		if (server) {
			close(lfd);
			dial_forever();
		}
		serve_forever(lfd);
	}
	if (!server) {
		close(lfd);
		lfd = -1;
	}
	/* the bare server's own certificate; the bare client has none */
	bare_creds = server ? bench_creds(key, cert) : bench_creds(NULL, NULL);
	side_init(&a, "tlspool");
	side_init(&b, "bare");
	/* warm up: the validation cache, the relay's threads, the peer */
	for (r = 0; r < 3; r++)
		if (one(1) < 0 || one(0) < 0)
			bench_die(mode, "the warm-up handshakes failed");
	printf("%s handshakes: tlspool vs bare GnuTLS (no verification%s), "
	       "%d rounds x %d, alternating\n",
	       mode, server ? ", client certificate required" : "", rounds,
	       per);
	for (r = 0; r < rounds; r++) {
		first = r % 2 == 0;
		batch(first ? &a : &b, first, r);
		batch(first ? &b : &a, !first, r);
		printf("  round %d  tlspool %7.1f/s %6.0f us CPU   bare "
		       "%7.1f/s "
		       "%6.0f us CPU\n",
		       r + 1, a.rate[r], a.cpu[r], b.rate[r], b.cpu[r]);
		fflush(stdout);
	}
	kill(child, SIGTERM);
	waitpid(child, NULL, 0);
	la = bench_median(a.lat, a.nlat);
	lb = bench_median(b.lat, b.nlat);
	write_lat(&a);
	write_lat(&b);
	/* the ratio of each round's pair, then their median: a pair ran
	 * within a second, under the same load */
	rr = calloc((size_t)rounds, sizeof(double));
	cr = calloc((size_t)rounds, sizeof(double));
	if (rr == NULL || cr == NULL)
		bench_die("memory", strerror(ENOMEM));
	for (r = 0; r < rounds; r++) {
		rr[r] = a.rate[r] / b.rate[r];
		cr[r] = a.cpu[r] / b.cpu[r];
	}
	ra = bench_median(a.rate, (size_t)rounds);
	rb = bench_median(b.rate, (size_t)rounds);
	ca = bench_median(a.cpu, (size_t)rounds);
	cb = bench_median(b.cpu, (size_t)rounds);
	mr = bench_median(rr, (size_t)rounds);
	mc = bench_median(cr, (size_t)rounds);
	printf("  median   tlspool %7.1f/s %6.0f us CPU   bare %7.1f/s %6.0f "
	       "us CPU\n",
	       ra, ca, rb, cb);
	printf("  median of the rounds' ratios: rate %.3f (range %.3f-%.3f), "
	       "CPU %.3f (range %.3f-%.3f)\n",
	       mr, rr[0], rr[rounds - 1], mc, cr[0], cr[rounds - 1]);
	printf("  latency median: tlspool %.0f us, bare %.0f us\n", la, lb);
	printf("RESULT %s_rate %.1f %.1f %.3f\n", mode, ra, rb, mr);
	printf("RESULT %s_cpu %.1f %.1f %.3f\n", mode, ca, cb, mc);
	free(rr);
	free(cr);
	fflush(stdout);
	side_free(&a);
	side_free(&b);
	gnutls_certificate_free_credentials(bare_creds);
	gnutls_priority_deinit(prio);
	starttls_ctx_free(ctx);
	return 0;
}
