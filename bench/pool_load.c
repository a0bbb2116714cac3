/*
 * Calls of starttls_ctx_client() against a TLS echo server, for the pool's
 * bench (bench/pool.sh) and its end-to-end test (tests/e2e/pool.sh).  The
 * configuration given with -c decides where the calls run: in this
 * process, or in tlspoold when it has [pool] socket (or TLSPOOL_SOCKET is
 * set).
 *
 *   pool_load [-c CONF] [-n CALLS] [-j THREADS] [-m echo|hold|read]
 *             [-l MYNAME] [-u] HOST PORT SNI
 *
 *   echo  each call writes a line, reads it back and closes (default)
 *   hold  the same, but every descriptor stays open until stdin ends
 *         ("held N" on stdout once all are open)
 *   read  one call; print what arrives, then how reading ended, what
 *         starttls_end() says and what starttls_last_trace() kept
 *
 *   pair  the bench (bench/pool.sh): ROUNDS rounds (-r), each of PAIRS
 *         (-b) pairs of blocks: CALLS calls in this process (-c CONF, A)
 *         and CALLS through tlspoold (-p POOLCONF, B), J at a time, in
 *         alternating order (A B, B A, ...), each block timed alone; a
 *         round's rate and CPU per call of each side are its blocks'
 *         sums, so that load that comes and goes on a shared machine
 *         falls on both sides alike.  The daemon's CPU (-P PID: the run
 *         time of its threads) is counted in for B
 *   serve a bare GnuTLS echo server (-k KEY -x CERT) on 127.0.0.1:PORT,
 *         a thread per connection, until killed: the peer of the bench
 *         (handshake, then every record back until the end)
 *
 * -u: DTLS over UDP instead of TLS over TCP.  -w W: W calls first, not
 * counted (the validation cache, the relay's threads, the resolver are
 * then warm in this process as they are in a running daemon).
 *
 * Prints "calls N ok N failed N seconds S cpu C rate R" (C: this process's
 * user and system time) and the first failure; exits 0 when every call
 * succeeded.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <tlspool/dane.h>
#include <tlspool/starttls.h>

#include "bench_util.h"
#include "pool.h" /* tp_pool_idle_count() */

static starttls_ctx *ctx;
static const char *host, *sni, *myname, *mode = "echo";
static int port, calls = 1, nthreads = 1, udp, warm;
static int next_call, nok, nfail, *held, nheld;
static int fds10 = -1;
static long rss10 = -1;
static const char *uids; /* -m switch: "A:B" */
static char first_failure[600];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int dial(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	int fd = socket(AF_INET,
	                (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);

	sa.sin_port = htons((unsigned short)port);
	inet_pton(AF_INET, host, &sa.sin_addr);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (d == NULL)
		return -1;
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n - 3; /* ".", "..", and d's own */
}

static long rss_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[128];
	long kb = -1;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* One call and its echo: 0, or -1 with why. */
static int one(int n, char *why, size_t len, int *keep)
{
	char peer[320], line[64], back[64];
	int fd = dial(), tls;
	size_t want, got = 0;
	ssize_t r;

	*keep = -1;
	if (fd < 0) {
		snprintf(why, len, "connect: %s", strerror(errno));
		return -1;
	}
	tls = starttls_ctx_client(ctx, fd, IPPROTO_TCP, myname, 0, sni, peer,
	                          sizeof(peer));
	if (tls < 0) {
		snprintf(why, len, "%s (%s): %s", strerrorname_np(errno),
		         starttls_class_name(starttls_errclass()),
		         starttls_errstr());
		return -1;
	}
	snprintf(line, sizeof(line), "call %d\n", n);
	want = strlen(line);
	if (write(tls, line, want) != (ssize_t)want) {
		snprintf(why, len, "write: %s", strerror(errno));
		close(tls);
		return -1;
	}
	while (got < want && (r = read(tls, back + got, want - got)) > 0)
		got += (size_t)r;
	if (got != want || memcmp(line, back, want) != 0) {
		snprintf(why, len, "echo: %zu of %zu bytes back", got, want);
		close(tls);
		return -1;
	}
	if (strcmp(mode, "hold") == 0)
		*keep = tls;
	else
		close(tls);
	return 0;
}

static void *run(void *arg)
{
	char why[600];
	int n, keep, ok;

	(void)arg;
	for (;;) {
		pthread_mutex_lock(&mu);
		n = next_call < calls ? next_call++ : -1;
		pthread_mutex_unlock(&mu);
		if (n < 0)
			return NULL;
		ok = one(n, why, sizeof(why), &keep) == 0;
		pthread_mutex_lock(&mu);
		if (ok)
			nok++;
		else if (nfail++ == 0)
			snprintf(first_failure, sizeof(first_failure), "%s",
			         why);
		if (keep >= 0)
			held[nheld++] = keep;
		if (n == 9 && nthreads == 1) {
			/* warm: what the process holds from here on */
			fds10 = count_fds();
			rss10 = rss_kb();
		}
		pthread_mutex_unlock(&mu);
	}
}

/* What the call's trace holds, in one line. */
static void print_trace(void)
{
	const starttls_trace *t = starttls_last_trace();

	printf("trace: chain %zu owner %s cache %d records %zu dns %d "
	       "dane %s steps %zu\n",
	       t->nchain, t->owner ? t->owner : "-", t->from_cache,
	       t->dns ? t->dns->nrr : 0, t->dns ? (int)t->dns->verdict : -1,
	       t->dane ? tlspool_dane_verdict_name(t->dane->verdict) : "-",
	       t->dane ? t->dane->nsteps : 0);
}

/* -m read: one call, then what arrives and how it ends. */
static int read_mode(void)
{
	char peer[320], buf[4096];
	starttls_end_info info;
	long long total = 0;
	ssize_t r;
	int fd = dial(), tls, e;

	if (fd < 0) {
		perror("connect");
		return 1;
	}
	tls = starttls_ctx_client(ctx, fd, udp ? IPPROTO_UDP : IPPROTO_TCP,
	                          myname, 0, sni, peer, sizeof(peer));
	print_trace();
	if (tls < 0) {
		printf("call: %s (%s): %s\n", strerrorname_np(errno),
		       starttls_class_name(starttls_errclass()),
		       starttls_errstr());
		return 1;
	}
	printf("peer: %s\n", peer);
	fflush(stdout);
	while ((r = read(tls, buf, sizeof(buf))) > 0) {
		total += r;
		fwrite(buf, 1, (size_t)r, stdout);
	}
	e = errno;
	printf("\nread: %lld bytes, then %s\n", total,
	       r == 0 ? "EOF" : strerrorname_np(e));
	if (starttls_end(tls, &info) == 0)
		printf("end: kind %d alert %d in %llu out %llu: %s\n",
		       (int)info.kind, info.alert, info.bytes_in,
		       info.bytes_out, info.detail);
	else
		printf("end: %s\n", strerrorname_np(errno));
	close(tls);
	return 0;
}

/* One call, said in one line as "what: ok" or "what: ERRNAME: detail";
 * 0 for a success. */
static int said(const char *what)
{
	char why[600];
	int keep, r = one(0, why, sizeof(why), &keep);

	printf("%s: %s\n", what, r == 0 ? "ok" : why);
	fflush(stdout);
	return r;
}

/*
 * -m pause: a call, a line from stdin (the test restarts the daemon
 * meanwhile), another call; the descriptors before and after.
 * -m fork: a call, then fork(): child and parent make -n calls each.
 * -m switch (as root, -U A:B): a call as effective uid A, then one as B.
 */
static int step_mode(void)
{
	char line[16];
	int fail = 0, fds;

	if (strcmp(mode, "pause") == 0) {
		fail |= said("first");
		fds = count_fds();
		if (fgets(line, sizeof(line), stdin) == NULL)
			return 2;
		fail |= said("second");
		printf("fds %d %d idle %zu\n", fds, count_fds(),
		       tp_pool_idle_count());
		return fail ? 1 : 0;
	}
	if (strcmp(mode, "fork") == 0) {
		pid_t pid;
		int st, ok = 0;
		char why[600];

		fail |= said("parent first");
		pid = fork();
		if (pid < 0)
			return 2;
		/* the child has none of the parent's connections */
		if (pid == 0)
			printf("child pid %d idle %zu\n", (int)getpid(),
			       tp_pool_idle_count());
		fflush(stdout);
		for (int i = 0; i < calls; i++) {
			int keep;

			if (one(i, why, sizeof(why), &keep) == 0)
				ok++;
			else
				fprintf(stderr, "%s\n", why);
		}
		printf("%s calls %d ok %d idle %zu\n",
		       pid == 0 ? "child" : "parent", calls, ok,
		       tp_pool_idle_count());
		fflush(stdout);
		if (pid == 0)
			_exit(ok == calls ? 0 : 1);
		if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
		    WEXITSTATUS(st) != 0)
			fail = 1;
		return fail || ok != calls ? 1 : 0;
	}
	if (strcmp(mode, "switch") == 0) {
		unsigned a, b;

		if (uids == NULL || sscanf(uids, "%u:%u", &a, &b) != 2 ||
		    seteuid(a) != 0)
			return 2;
		fail |= said("as A");
		if (seteuid(0) != 0 || seteuid(b) != 0)
			return 2;
		said("as B");
		/* root again, and dumpable again (a change of euid clears
		 * it): LeakSanitizer reads this process at exit */
		if (seteuid(0) != 0)
			return 2;
		prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
		return fail;
	}
	return -1;
}

/* --- -m serve: the bench's peer ------------------------------------------ */

static gnutls_certificate_credentials_t serve_creds;
static gnutls_priority_t serve_prio;

/* One connection of the echo server: the handshake, then every record
 * back until the end. */
static void *serve_one(void *arg)
{
	int fd = (int)(intptr_t)arg;
	gnutls_session_t s;
	char buf[4096];
	ssize_t n;

	bench_nodelay(fd);
	s = bench_bare_handshake(fd, 1, serve_prio, serve_creds, 0, NULL);
	if (s != NULL) {
		do {
			n = gnutls_record_recv(s, buf, sizeof(buf));
			if (n > 0 && gnutls_record_send(s, buf, (size_t)n) < 0)
				n = -1;
		} while (n > 0 || n == GNUTLS_E_AGAIN ||
		         n == GNUTLS_E_INTERRUPTED);
		gnutls_deinit(s);
	}
	close(fd);
	return NULL;
}

/* A thread per connection (the held ones of the bench too), until
 * killed. */
static _Noreturn void serve_mode(const char *key, const char *cert)
{
	int lfd = bench_listen(port);
	pthread_attr_t at;

	serve_creds = bench_creds(key, cert);
	serve_prio = bench_priority();
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&at, 256 * 1024);
	printf("serving on %d\n", port);
	fflush(stdout);
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		pthread_t t;

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				usleep(10000);
			continue;
		}
		if (pthread_create(&t, &at, serve_one, (void *)(intptr_t)fd) !=
		    0)
			close(fd);
	}
}

/* --- -m pair: in the process against through the pool -------------------- */

/* The run time of the daemon's threads so far, in microseconds
 * (/proc/PID/task/TID/schedstat, nanoseconds: finer than /proc/PID/stat's
 * ticks); 0 without a daemon. */
static double daemon_cpu_us(int dpid)
{
	char path[64];
	struct dirent *e;
	double sum = 0;
	DIR *d;

	if (dpid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/task", dpid);
	if ((d = opendir(path)) == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		unsigned long long ns;
		char sp[300];
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(sp, sizeof(sp), "/proc/%d/task/%s/schedstat", dpid,
		         e->d_name);
		if ((f = fopen(sp, "r")) == NULL)
			continue;
		if (fscanf(f, "%llu", &ns) == 1)
			sum += (double)ns / 1e3;
		fclose(f);
	}
	closedir(d);
	return sum;
}

/* What one side did in a round. */
struct tally {
	double us, cpu_us; /* wall time, CPU time (the daemon's with it) */
	int calls;
};

/* A block: CALLS calls with ctx c, nthreads at a time, added to *t (the
 * daemon's CPU, read outside the timed part, counted in when dpid). */
static int block(starttls_ctx *c, int dpid, struct tally *t)
{
	pthread_t th[256];
	double t0, c0, d0, dt, dc;
	int n = nthreads < 256 ? nthreads : 256;

	ctx = c;
	next_call = nok = nfail = 0;
	d0 = daemon_cpu_us(dpid);
	c0 = bench_cpu_us();
	t0 = bench_now_us();
	for (int i = 0; i < n; i++)
		pthread_create(&th[i], NULL, run, NULL);
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	dt = bench_now_us() - t0;
	dc = bench_cpu_us() - c0;
	t->us += dt;
	t->cpu_us += dc + daemon_cpu_us(dpid) - d0;
	t->calls += nok;
	if (nfail > 0) {
		fprintf(stderr, "pool_load: %d of %d calls failed: %s\n", nfail,
		        calls, first_failure);
		return -1;
	}
	return 0;
}

static double quantile(double *v, int n, double q)
{
	double x = q * (n - 1);
	int i = (int)x;

	qsort(v, (size_t)n, sizeof(*v), bench_cmp_double);
	return i + 1 < n ? v[i] + (x - i) * (v[i + 1] - v[i]) : v[n - 1];
}

/* "median (quartiles q1-q3, 95% c.i. lo-hi)" of v into buf: the
 * confidence interval of the median from the order statistics, ranks j
 * = floor(n/2 - 0.98 sqrt(n)) and n - j + 1 (distribution-free) */
static const char *spread(double *v, int n, char *buf, size_t len)
{
	double q1 = quantile(v, n, 0.25), m = quantile(v, n, 0.5),
	       q3 = quantile(v, n, 0.75), r = n;
	int j;

	for (int i = 0; i < 40; i++) /* sqrt(n), without libm */
		r = (r + n / r) / 2;
	j = (int)(n / 2.0 - 0.98 * r);
	if (j < 1)
		j = 1;
	snprintf(buf, len, "%.3f (quartiles %.3f-%.3f, 95%% c.i. %.3f-%.3f)", m,
	         q1, q3, v[j - 1], v[n - j]);
	return buf;
}

static int pair_mode(starttls_ctx *a, const char *poolconf, int dpid,
                     int rounds, int pairs)
{
	starttls_ctx *b = starttls_ctx_new(poolconf);
	double *v = calloc((size_t)rounds * 6, sizeof(double));
	double *ra = v, *rb = v + rounds, *ca = v + 2 * rounds,
	       *cb = v + 3 * rounds, *rr = v + 4 * rounds, *cr = v + 5 * rounds;
	struct tally ta, tb;
	char s1[120], s2[120];

	if (b == NULL || v == NULL) {
		fprintf(stderr, "pool_load: %s: %s\n", poolconf,
		        b ? "out of memory" : starttls_errstr());
		return 2;
	}
	/* both warm: the validation caches, the relays' threads, the
	 * daemon's workers, the kept connections to the daemon */
	if (warm > 0) {
		int n = calls;

		calls = warm;
		if (block(a, 0, &ta) != 0 || block(b, dpid, &tb) != 0)
			return 1;
		calls = n;
	}
	printf("=== %d rounds of %d pairs of blocks of %d calls, %d at a "
	       "time: in the process (A) vs through tlspoold (B)\n",
	       rounds, pairs, calls, nthreads);
	for (int r = 0; r < rounds; r++) {
		memset(&ta, 0, sizeof(ta));
		memset(&tb, 0, sizeof(tb));
		for (int k = 0; k < pairs; k++) {
			int ab = (r + k) % 2 == 0;

			if (block(ab ? a : b, ab ? 0 : dpid, ab ? &ta : &tb) !=
			            0 ||
			    block(ab ? b : a, ab ? dpid : 0, ab ? &tb : &ta) !=
			            0)
				return 1;
		}
		ra[r] = ta.calls / ta.us * 1e6;
		rb[r] = tb.calls / tb.us * 1e6;
		ca[r] = ta.cpu_us / ta.calls;
		cb[r] = tb.cpu_us / tb.calls;
		rr[r] = rb[r] / ra[r];
		cr[r] = cb[r] / ca[r];
		printf("round %2d: A %7.1f/s %5.0f us CPU/call   B %7.1f/s "
		       "%5.0f us CPU/call   rate B/A %.3f  CPU B/A %.3f\n",
		       r + 1, ra[r], ca[r], rb[r], cb[r], rr[r], cr[r]);
		fflush(stdout);
	}
	printf("medians: A %.1f/s %.0f us CPU/call   B %.1f/s %.0f us "
	       "CPU/call (application + daemon)\n",
	       quantile(ra, rounds, 0.5), quantile(ca, rounds, 0.5),
	       quantile(rb, rounds, 0.5), quantile(cb, rounds, 0.5));
	printf("RESULT %d at a time: rate B/A median %s; target >= 0.9; CPU "
	       "per call B/A median %s\n",
	       nthreads, spread(rr, rounds, s1, sizeof(s1)),
	       spread(cr, rounds, s2, sizeof(s2)));
	/* the form of bench/report.sh: NAME TLSPOOLD IN-PROCESS RATIO */
	printf("RESULT pool_rate_j%d %.1f %.1f %.3f\n", nthreads,
	       quantile(rb, rounds, 0.5), quantile(ra, rounds, 0.5),
	       quantile(rr, rounds, 0.5));
	printf("RESULT pool_cpu_j%d %.0f %.0f %.3f\n", nthreads,
	       quantile(cb, rounds, 0.5), quantile(ca, rounds, 0.5),
	       quantile(cr, rounds, 0.5));
	fflush(stdout);
	free(v);
	starttls_ctx_free(b);
	return 0;
}

int main(int argc, char **argv)
{
	const char *conf = NULL, *poolconf = NULL, *key = NULL, *cert = NULL;
	int dpid = 0, rounds = 20, pairs = 10;
	pthread_t *t;
	double t0, dt, c0;
	char c;
	int opt;

	while ((opt = getopt(argc, argv, "c:n:j:m:l:uw:U:p:P:r:b:k:x:")) !=
	       -1) {
		switch (opt) {
		case 'c':
			conf = optarg;
			break;
		case 'n':
			calls = atoi(optarg);
			break;
		case 'j':
			nthreads = atoi(optarg);
			break;
		case 'm':
			mode = optarg;
			break;
		case 'l':
			myname = optarg;
			break;
		case 'u':
			udp = 1;
			break;
		case 'w':
			warm = atoi(optarg);
			break;
		case 'U':
			uids = optarg;
			break;
		case 'p':
			poolconf = optarg;
			break;
		case 'P':
			dpid = atoi(optarg);
			break;
		case 'r':
			rounds = atoi(optarg);
			break;
		case 'b':
			pairs = atoi(optarg);
			break;
		case 'k':
			key = optarg;
			break;
		case 'x':
			cert = optarg;
			break;
		default:
			return 2;
		}
	}
	if (argc - optind != 3 || calls < 1 || nthreads < 1 || rounds < 1 ||
	    pairs < 1 || (strcmp(mode, "pair") == 0 && poolconf == NULL) ||
	    (strcmp(mode, "serve") == 0 && (key == NULL || cert == NULL))) {
		fprintf(stderr,
		        "usage: pool_load [-c CONF] [-n CALLS] "
		        "[-j THREADS] [-m echo|hold|read|pause|fork|switch] "
		        "[-l MYNAME] [-U A:B] [-u] HOST PORT SNI\n"
		        "       pool_load -m pair -c CONF -p POOLCONF [-P PID] "
		        "[-r ROUNDS] [-b PAIRS] [-n CALLS] [-j THREADS] [-w W] "
		        "HOST PORT "
		        "SNI\n"
		        "       pool_load -m serve -k KEY -x CERT HOST PORT "
		        "SNI\n");
		return 2;
	}
	host = argv[optind];
	port = atoi(argv[optind + 1]);
	sni = argv[optind + 2];
	if (strcmp(mode, "serve") == 0)
		serve_mode(key, cert);
	ctx = starttls_ctx_new(conf);
	if (ctx == NULL) {
		fprintf(stderr, "pool_load: %s\n", starttls_errstr());
		return 2;
	}
	if (strcmp(mode, "read") == 0)
		return read_mode();
	if ((opt = step_mode()) >= 0)
		return opt;
	if (strcmp(mode, "pair") == 0) {
		opt = pair_mode(ctx, poolconf, dpid, rounds, pairs);
		starttls_ctx_free(ctx);
		return opt;
	}
	for (int i = 0; i < warm; i++) {
		char why[600];
		int keep;

		if (one(-1 - i, why, sizeof(why), &keep) != 0) {
			fprintf(stderr, "pool_load: warm-up call: %s\n", why);
			return 1;
		}
	}
	held = calloc((size_t)calls, sizeof(*held));
	t = calloc((size_t)nthreads, sizeof(*t));
	t0 = now_s();
	c0 = cpu_s();
	for (int i = 0; i < nthreads; i++)
		pthread_create(&t[i], NULL, run, NULL);
	for (int i = 0; i < nthreads; i++)
		pthread_join(t[i], NULL);
	dt = now_s() - t0;
	printf("calls %d ok %d failed %d seconds %.3f cpu %.3f rate %.1f\n",
	       calls, nok, nfail, dt, cpu_s() - c0, nok / dt);
	if (nfail > 0)
		printf("first failure: %s\n", first_failure);
	if (fds10 >= 0)
		printf("app fds %d %d rss %ld %ld kB\n", fds10, count_fds(),
		       rss10, rss_kb());
	if (strcmp(mode, "hold") == 0) {
		printf("held %d\n", nheld);
		fflush(stdout);
		while (read(0, &c, 1) > 0)
			;
		for (int i = 0; i < nheld; i++)
			close(held[i]);
	}
	fflush(stdout);
	free(held);
	free(t);
	starttls_ctx_free(ctx);
	return nfail == 0 ? 0 : 1;
}
