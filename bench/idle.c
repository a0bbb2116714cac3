/*
 * Idle connections: resident memory and threads against the number of
 * open connections, tlspool's relayed connections against bare GnuTLS
 * sessions (make bench, bench/idle.sh).
 *
 *   idle -m tlspool|bare -p PORT -k KEY -c CERT [-s SNI] [-N MAX]
 *        [-S STEPS] [-o FILE]
 *
 * A child process is the server (bare GnuTLS, KEY and CERT): it completes
 * each handshake, sends one byte, and keeps the connection open.  This
 * process opens connections one after another and keeps each: tlspool
 * through starttls_ctx_client() (DANE from a warm cache), reading the
 * byte from the returned descriptor; bare as a GnuTLS client session
 * that reads the byte and is kept.  At STEPS points up to MAX (0: as many
 * as the descriptor limit allows) it writes "conns rss_kib pss_kib
 * threads fds" to FILE, from /proc/self/status and
 * /proc/self/smaps_rollup.  Prints how many connections the limit
 * allows and why, and at the end
 *   RESULT idle_<mode>_kib <KiB per connection> ...
 *   RESULT idle_<mode>_threads <threads at 0> <threads at the end>
 */
#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>

#include <tlspool/starttls.h>

#include "bench_util.h"

static const char *mode = "tlspool", *key, *cert, *outfile;
static const char *sni = "www.example.test";
static int port, maxconn, steps = 12;

/* A "Key:   N kB" field of a /proc file, or -1. */
static long proc_field(const char *path, const char *field)
{
	char line[256];
	size_t n = strlen(field);
	long v = -1;
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, field, n) == 0 && line[n] == ':') {
			v = strtol(line + n + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

static long open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	long n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own descriptor */
}

struct sample {
	long conns, rss, pss, threads, fds;
};

static void sample(struct sample *s, long conns)
{
	s->conns = conns;
	s->rss = proc_field("/proc/self/status", "VmRSS");
	s->pss = proc_field("/proc/self/smaps_rollup", "Pss");
	s->threads = proc_field("/proc/self/status", "Threads");
	s->fds = open_fds();
}

/* The server: handshake, one byte, keep. */
static void serve_forever(int lfd)
{
	gnutls_certificate_credentials_t creds = bench_creds(key, cert);
	gnutls_priority_t prio = bench_priority();
	gnutls_session_t s;

	for (;;) {
		int fd = accept(lfd, NULL, NULL);

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				pause();
			continue;
		}
		bench_nodelay(fd);
		s = bench_bare_handshake(fd, 1, prio, creds, 0, NULL);
		if (s == NULL) {
			close(fd);
			continue;
		}
		gnutls_record_send(s, "k", 1);
		gnutls_deinit(s); /* the descriptor stays open */
	}
}

static void raise_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int open_tlspool(starttls_ctx *ctx)
{
	char peer[320], b;
	int fd = bench_dial(port), app;

	if (fd < 0)
		return -1;
	app = starttls_ctx_client(ctx, fd, IPPROTO_TCP, NULL, 0, sni, peer,
	                          sizeof(peer));
	if (app < 0) {
		fprintf(stderr, "bench: starttls_ctx_client: %s\n",
		        starttls_errstr());
		return -1;
	}
	if (read(app, &b, 1) != 1)
		return -1;
	return 0;
}

static int open_bare(gnutls_priority_t prio,
                     gnutls_certificate_credentials_t anon)
{
	int fd = bench_dial(port);
	gnutls_session_t s;
	char b;

	if (fd < 0)
		return -1;
	s = bench_bare_handshake(fd, 0, prio, anon, 0, sni);
	if (s == NULL || gnutls_record_recv(s, &b, 1) != 1)
		return -1;
	return 0; /* the session and fd are kept: the floor's idle state */
}

static void usage(void)
{
	fprintf(stderr, "usage: idle -m tlspool|bare -p PORT -k KEY -c CERT "
	                "[-s SNI] [-N MAX] [-S STEPS] [-o FILE]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	gnutls_certificate_credentials_t anon;
	gnutls_priority_t prio;
	starttls_ctx *ctx = NULL;
	struct sample s0, s;
	struct rlimit rl;
	long per_conn, avail, n, next, i;
	int o, tlspool, lfd;
	FILE *out = NULL;
	pid_t child;

	while ((o = getopt(argc, argv, "m:p:k:c:s:N:S:o:")) != -1) {
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
		case 's':
			sni = optarg;
			break;
		case 'N':
			maxconn = atoi(optarg);
			break;
		case 'S':
			steps = atoi(optarg);
			break;
		case 'o':
			outfile = optarg;
			break;
		default:
			usage();
		}
	}
	tlspool = strcmp(mode, "tlspool") == 0;
	if (port <= 0 || key == NULL || cert == NULL || steps < 1 ||
	    (!tlspool && strcmp(mode, "bare") != 0))
		usage();
	signal(SIGPIPE, SIG_IGN);
	raise_limit();
	lfd = bench_listen(port);
	child = fork();
	if (child < 0)
		bench_die("fork", strerror(errno));
	if (child == 0)
		serve_forever(lfd);
	close(lfd);
	prio = bench_priority();
	anon = bench_creds(NULL, NULL);
	if (tlspool) {
		ctx = starttls_ctx_new(NULL);
		if (ctx == NULL)
			bench_die("starttls_ctx_new", starttls_errstr());
		/* warm up: configuration, validation cache, relay threads */
		if (open_tlspool(ctx) != 0)
			bench_die(mode, "the first connection failed");
	} else if (open_bare(prio, anon) != 0) {
		bench_die(mode, "the first connection failed");
	}
	/* Descriptors: a relayed connection holds three in this process
	 * (the network socket, kept by the relay; the relay's end of the
	 * socketpair; the application's end); a bare session one. */
	per_conn = tlspool ? 3 : 1;
	getrlimit(RLIMIT_NOFILE, &rl);
	sample(&s0, 1);
	avail = ((long)rl.rlim_cur - s0.fds - 16) / per_conn;
	if (maxconn <= 0 || maxconn > avail)
		maxconn = (int)avail;
	printf("idle %s: descriptor limit %ld, %ld in use, %ld per "
	       "connection: at most %ld connections; measuring up to %d\n",
	       mode, (long)rl.rlim_cur, s0.fds, per_conn, avail, maxconn);
	if (outfile != NULL && (out = fopen(outfile, "w")) == NULL)
		bench_die(outfile, strerror(errno));
	if (out != NULL)
		fprintf(out, "%ld %ld %ld %ld %ld\n", s0.conns, s0.rss, s0.pss,
		        s0.threads, s0.fds);
	s = s0;
	n = 1;
	for (i = 1; i <= steps; i++) {
		next = 1 + (long)maxconn * i / steps;
		for (; n < next; n++)
			if ((tlspool ? open_tlspool(ctx)
			             : open_bare(prio, anon)) != 0)
				bench_die(mode, "a connection failed");
		usleep(100000); /* let the relay settle */
		sample(&s, n);
		if (out != NULL)
			fprintf(out, "%ld %ld %ld %ld %ld\n", s.conns, s.rss,
			        s.pss, s.threads, s.fds);
		printf("  %6ld connections  RSS %7ld KiB  PSS %7ld KiB  "
		       "threads %ld  descriptors %ld\n",
		       s.conns, s.rss, s.pss, s.threads, s.fds);
		fflush(stdout);
	}
	if (out != NULL)
		fclose(out);
	printf("  per connection: RSS %.2f KiB, PSS %.2f KiB; threads %ld -> "
	       "%ld\n",
	       (double)(s.rss - s0.rss) / (double)(s.conns - s0.conns),
	       (double)(s.pss - s0.pss) / (double)(s.conns - s0.conns),
	       s0.threads, s.threads);
	printf("RESULT idle_%s_kib %.2f %.2f %ld\n", mode,
	       (double)(s.rss - s0.rss) / (double)(s.conns - s0.conns),
	       (double)(s.pss - s0.pss) / (double)(s.conns - s0.conns),
	       s.conns);
	printf("RESULT idle_%s_threads %ld %ld %ld\n", mode, s0.threads,
	       s.threads, s.conns);
	kill(child, SIGTERM);
	waitpid(child, NULL, 0);
	/* exit without closing: the relay's sessions go with the process */
	fflush(stdout);
	_exit(0);
}
