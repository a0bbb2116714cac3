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

int main(int argc, char **argv)
{
	const char *conf = NULL;
	pthread_t *t;
	double t0, dt, c0;
	char c;
	int opt;

	while ((opt = getopt(argc, argv, "c:n:j:m:l:uw:U:")) != -1) {
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
		default:
			return 2;
		}
	}
	if (argc - optind != 3 || calls < 1 || nthreads < 1) {
		fprintf(stderr,
		        "usage: pool_load [-c CONF] [-n CALLS] "
		        "[-j THREADS] [-m echo|hold|read|pause|fork|switch] "
		        "[-l MYNAME] [-U A:B] [-u] HOST PORT SNI\n");
		return 2;
	}
	host = argv[optind];
	port = atoi(argv[optind + 1]);
	sni = argv[optind + 2];
	ctx = starttls_ctx_new(conf);
	if (ctx == NULL) {
		fprintf(stderr, "pool_load: %s\n", starttls_errstr());
		return 2;
	}
	if (strcmp(mode, "read") == 0)
		return read_mode();
	if ((opt = step_mode()) >= 0)
		return opt;
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
