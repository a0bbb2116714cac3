/*
 * tlspool-connect --client and --server: one TLS side through
 * starttls_client()/starttls_server(), one plain side (stdin/stdout, or a
 * child started with --exec), socat style.
 *
 * The connections: connect, listen, accept (with --fork, at most
 * --max-children at once), the starttls call; the plain side is plain.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/* After accept() ran out of descriptors or memory: the pause before the
 * next try. */
#define ACCEPT_RETRY_MS 100

/* --- --starttls: the plaintext dialogue before the handshake ---------------
 */

static starttls_prelude dialogue_report;
const starttls_prelude *cli_prelude;

/* --starttls over a datagram socket: a usage error (its exit code), or 0. */
static int starttls_stream_only(const struct options *o)
{
	if (o->starttls != NULL && strcmp(o->proto, "tcp") != 0)
		return usage_error(
		        "--starttls needs TCP (not --udp or --sctp)");
	return 0;
}

int starttls_arg(struct options *o, const char *proto)
{
	if (!starttls_prelude_known(proto, 0)) {
		usage_error("--starttls %s: not a known protocol (%s)", proto,
		            starttls_prelude_protocols());
		return EXIT_USAGE;
	}
	o->starttls = proto;
	return 0;
}

/*
 * Run the prelude of --starttls on fd (starttls_prelude_client(3)), bounded
 * by [tls] handshake_timeout_ms: 0 to go on with the handshake, or the
 * exit code after the report (fd is then closed).  peerdomain: XMPP to=.
 */
static int dialogue(const struct options *o, int fd, int server,
                    const char *peerdomain)
{
	int r, e;

	if (o->starttls == NULL)
		return 0;
	memset(&dialogue_report, 0, sizeof(dialogue_report));
	dialogue_report.protocol = o->starttls;
	dialogue_report.myname = o->myname;
	dialogue_report.peerdomain = peerdomain;
	dialogue_report.ctx = o->ctx;
	cli_prelude = &dialogue_report;
	r = server ? starttls_prelude_server(fd, &dialogue_report)
	           : starttls_prelude_client(fd, &dialogue_report);
	if (r == 0) {
		note("starttls", "--starttls %s: %s", o->starttls,
		     dialogue_report.reply[0] ? dialogue_report.reply : "done");
		return 0;
	}
	e = errno;
	close(fd);
	return report_call(o, "", e, 0);
}

/* After a failed handshake without --starttls on a port where a STARTTLS
 * protocol usually listens: say which option would have spoken first
 * (the server's plaintext greeting is what GnuTLS found unexpected). */
static void starttls_hint(const struct options *o)
{
	static const struct {
		const char *port, *proto;
	} ports[] = {
	        {"21", "ftp"},           {"24", "lmtp"},
	        {"25", "smtp"},          {"110", "pop3"},
	        {"119", "nntp"},         {"143", "imap"},
	        {"194", "irc"},          {"389", "ldap"},
	        {"587", "submission"},   {"3306", "mysql"},
	        {"4190", "sieve"},       {"5222", "xmpp"},
	        {"5269", "xmpp-server"}, {"5432", "postgres"},
	        {"6667", "irc"},
	};
	size_t i;

	if (o->starttls != NULL || o->port == NULL ||
	    starttls_errclass() != STARTTLS_ERR_TLS)
		return;
	for (i = 0; i < sizeof(ports) / sizeof(ports[0]); i++)
		if (strcmp(o->port, ports[i].port) == 0)
			hint("port %s usually speaks %s in plaintext before "
			     "TLS: --starttls %s",
			     o->port, ports[i].proto, ports[i].proto);
}

/* --- client ----------------------------------------------------------------
 */

/* An IPv4 or IPv6 address literal (with a scope, or in the short forms
 * inet_aton() takes), not a name. */
static int is_address(const char *s)
{
	struct addrinfo hints = {0}, *res;

	hints.ai_flags = AI_NUMERICHOST;
	if (getaddrinfo(s, NULL, &hints, &res) != 0)
		return 0;
	freeaddrinfo(res);
	return 1;
}

/* --records: what the server presented, whether or not it was
 * authenticated; no data is relayed. */
static int client_records(const struct options *o, int tls, const char *peer,
                          const char *sni)
{
	int rc = tls < 0 ? report_call(o, peer, errno, 0) : EXIT_OK;

	if (tls >= 0) {
		print_trace(o, peer, EXIT_OK);
		close(tls);
	}
	if (sni == NULL) {
		say("--records needs the server's name: give --sni NAME");
		return EXIT_USAGE;
	}
	/* records for a server that failed authentication are the point;
	 * one that sent no certificate keeps its failure */
	return starttls_last_trace()->nchain > 0 ? print_peer_records(o, sni)
	                                         : rc;
}

int run_client(const struct options *o)
{
	char peer[320] = "";
	const char *sni = o->sni;
	int fd, tls, rc = EXIT_CONNECT;

	signal(SIGPIPE, SIG_IGN);
	if (starttls_stream_only(o) != 0)
		return EXIT_USAGE;
	if (sni == NULL && o->fd < 0 && !is_address(o->name))
		sni = o->name; /* socat and openssl s_client do the same */
	if (sni == NULL && !o->any_peer) {
		/* RFC 6698 section 3: the reference identity is a name; an
		 * address names no TLSA records */
		say("%s gives no name to authenticate the server by: "
		    "give --sni NAME, or --any-peer to accept any server "
		    "that DANE authenticates under the name it claims",
		    o->fd >= 0 ? "--fd" : o->name);
		return EXIT_USAGE;
	}
	fd = o->fd >= 0 ? o->fd : addr_connect(o, &rc);
	if (fd < 0)
		return rc;
	rc = dialogue(o, fd, 0, sni != NULL ? sni : o->name);
	if (rc != 0)
		return rc;
	tls = starttls_ctx_client(o->ctx, fd, ipproto(o), o->myname, o->flags,
	                          sni, peer, sizeof(peer));
	if (o->records)
		return client_records(o, tls, peer, sni);
	if (tls < 0) {
		rc = report_call(o, peer, errno, 0);
		starttls_hint(o);
		return rc;
	}
	report_call(o, peer, 0, o->exec == NULL);
	return serve_plain(o, tls, peer, o->myname, sni);
}

/* --- server ----------------------------------------------------------------
 */

/* What the SNI filter learnt of one ClientHello (its user pointer). */
struct sni_seen {
	const struct options *o;
	char *sni;         /* the client's SNI, "" for none */
	int no_sni_denied; /* a ClientHello without SNI was refused */
};

/*
 * checksni: record the SNI for TLSPOOL_SNI, and apply --sni-allow.  ""
 * stands for a ClientHello without SNI (RFC 6066 section 3), refused by
 * --sni-allow unless --allow-no-sni.  The name is matched as it came,
 * whatever its length.
 */
static int check_sni(const char *sni, void *arg)
{
	struct sni_seen *seen = arg;
	const struct options *o = seen->o;
	int i;

	free(seen->sni);
	seen->sni = strdup(sni);
	if (o->nsni_allow == 0)
		return 1;
	if (sni[0] == '\0') {
		seen->no_sni_denied = !o->allow_no_sni;
		return o->allow_no_sni;
	}
	for (i = 0; i < o->nsni_allow; i++)
		if (fnmatch(o->sni_allow[i], sni, FNM_CASEFOLD) == 0)
			return 1;
	return 0;
}

static int serve_one(const struct options *o, int conn)
{
	struct sni_seen seen = {o, NULL, 0};
	char peer[320] = "";
	const char *sni;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	int tls, rc;

	if (getpeername(conn, (struct sockaddr *)&ss, &sslen) == 0)
		out_address("accept", (struct sockaddr *)&ss, sslen, 0);
	rc = dialogue(o, conn, 1, NULL);
	if (rc != 0)
		return rc;
	tls = starttls_ctx_server(o->ctx, conn, ipproto(o), o->myname, o->flags,
	                          check_sni, &seen, peer, sizeof(peer));
	if (tls < 0) {
		rc = report_call(o, peer, errno, 0);
		if (seen.no_sni_denied)
			say("the client sent no SNI (--allow-no-sni "
			    "accepts that)");
		free(seen.sni);
		return rc;
	}
	report_call(o, peer, 0, o->exec == NULL);
	sni = seen.sni != NULL ? seen.sni : "";
	rc = serve_plain(o, tls, peer, o->myname ? o->myname : sni, sni);
	free(seen.sni);
	return rc;
}

/* --udp: the first datagram names the client; the socket is connected to
 * it and handed to starttls_server(), which reads that datagram (the
 * ClientHello) itself. */
static int accept_dgram(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char b;

	out_waiting(1);
	while (recvfrom(fd, &b, 1, MSG_PEEK, (struct sockaddr *)&ss, &len) < 0)
		if (errno != EINTR || out_stopped())
			return -1;
	out_waiting(0);
	if (connect(fd, (struct sockaddr *)&ss, len) != 0)
		return -1;
	return fd;
}

/*
 * accept() failed with e.  0: try again at once (a connection that went
 * away, a network error passed on, see accept(2)); 1: try again after a
 * pause (out of descriptors or memory: existing connections go on, new
 * ones wait in the backlog; one message per burst, *said is the burst);
 * -1: give up.
 */
static int accept_failed(int e, int *said)
{
	switch (e) {
	case EINTR:
	case EAGAIN:
#if EWOULDBLOCK != EAGAIN
	case EWOULDBLOCK:
#endif
	case ECONNABORTED:
	case EPROTO:
	case EPERM:
	case ENETDOWN:
	case ENOPROTOOPT:
	case EHOSTDOWN:
	case ENONET:
	case EHOSTUNREACH:
	case EOPNOTSUPP:
	case ENETUNREACH:
		return 0;
	case EMFILE:
	case ENFILE:
	case ENOBUFS:
	case ENOMEM:
		if (!*said)
			say("accept: %s: new connections wait until "
			    "resources are free (trying again every %d "
			    "ms)",
			    strerror(e), ACCEPT_RETRY_MS);
		*said = 1;
		return 1;
	}
	say("accept: %s", strerror(e));
	return -1;
}

/* One connection, for a server without --fork. */
static int accept_one(int lfd)
{
	int conn, said = 0, r;

	out_waiting(1);
	for (;;) {
		conn = accept(lfd, NULL, NULL);
		if (conn >= 0) {
			out_waiting(0);
			return conn;
		}
		if (out_stopped())
			return -1;
		r = accept_failed(errno, &said);
		if (r < 0)
			return -1;
		if (r > 0)
			poll(NULL, 0, ACCEPT_RETRY_MS);
	}
}

static void on_sigchld(int sig)
{
	(void)sig; /* only to interrupt ppoll() */
}

/* Reap the children that ended; how many. */
static int reap(void)
{
	int n = 0, st;

	while (waitpid(-1, &st, WNOHANG) > 0)
		n++;
	return n;
}

/*
 * --fork: one process per connection, at most o->max_children at once.
 * At the limit the listening socket is not polled, so that connections
 * wait in the backlog until a child ends.  SIGCHLD is blocked except in
 * ppoll(), so that a child that ends between the reaping and the wait
 * still wakes it.  In the child, returns its status.
 */
static int serve_forking(const struct options *o, int lfd)
{
	struct sigaction sa = {0};
	sigset_t chld, orig;
	int nchildren = 0, full_said = 0, accept_said = 0, fork_said = 0;
	long long pause_until = 0, full_next = 0;

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, &orig);
	sa.sa_handler = on_sigchld;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_NOCLDSTOP; /* no SA_RESTART: ppoll() returns */
	sigaction(SIGCHLD, &sa, NULL);
	set_nonblock(lfd);
	out_waiting(1);
	for (;;) {
		struct pollfd p = {lfd, POLLIN, 0};
		struct timespec ts, *tsp = NULL;
		long long now;
		int full, conn, r;
		pid_t pid;

		nchildren -= reap();
		if (nchildren < 0)
			nchildren = 0;
		now = now_ms();
		full = nchildren >= o->max_children;
		if (full && !full_said && now >= full_next) {
			say("%d connections are being served, the "
			    "--max-children limit: new connections wait "
			    "until one ends",
			    nchildren);
			full_next = now + 60000; /* at most once a minute */
		}
		full_said = full;
		if (now < pause_until) {
			ts.tv_sec = (pause_until - now) / 1000;
			ts.tv_nsec =
			        (long)((pause_until - now) % 1000) * 1000000;
			tsp = &ts;
		}
		r = ppoll(full || tsp != NULL ? NULL : &p,
		          full || tsp != NULL ? 0 : 1, tsp, &orig);
		if (out_stopped())
			return EXIT_CONNECT; /* out_finish() says why */
		if (r <= 0 || full || !(p.revents & POLLIN))
			continue; /* a signal, the pause is over, or full */
		conn = accept(lfd, NULL, NULL);
		if (conn < 0) {
			r = accept_failed(errno, &accept_said);
			if (r < 0)
				return EXIT_CONNECT;
			if (r > 0)
				pause_until = now_ms() + ACCEPT_RETRY_MS;
			continue;
		}
		accept_said = 0;
		pid = fork();
		if (pid == 0) {
			out_waiting(0);
			out_child();
			close(lfd);
			signal(SIGCHLD, SIG_DFL);
			sigprocmask(SIG_SETMASK, &orig, NULL);
			return serve_one(o, conn); /* main() exits with it */
		}
		close(conn);
		if (pid < 0) {
			/* the connection is dropped: the client sees it
			 * closed; say so once per burst */
			if (!fork_said)
				say("fork: %s", strerror(errno));
			fork_said = 1;
			pause_until = now_ms() + ACCEPT_RETRY_MS;
			continue;
		}
		fork_said = 0;
		nchildren++;
	}
}

int run_server(const struct options *o)
{
	int lfd, conn;

	signal(SIGPIPE, SIG_IGN);
	if (starttls_stream_only(o) != 0)
		return EXIT_USAGE;
	if (o->fd >= 0)
		return serve_one(o, o->fd);
	lfd = addr_listen(o);
	if (lfd < 0)
		return EXIT_CONNECT;
	if (sock_type(o) == SOCK_DGRAM) {
		if (o->fork) {
			close(lfd);
			say("--fork is not available with "
			    "--udp in this version");
			return EXIT_USAGE;
		}
		conn = accept_dgram(lfd);
		if (conn < 0) {
			if (!out_stopped())
				say("recvfrom: %s", strerror(errno));
			close(lfd);
			return EXIT_CONNECT;
		}
		return serve_one(o, conn);
	}
	if (o->fork)
		return serve_forking(o, lfd);
	conn = accept_one(lfd);
	close(lfd);
	if (conn < 0)
		return EXIT_CONNECT;
	return serve_one(o, conn);
}
