/*
 * tlspool-connect: the plain side of a connection whose peer is
 * authenticated (stdin/stdout, or a child started with --exec), and the
 * exit codes of a run.
 *
 * The plain side is pumped both ways with poll() and bounded buffers, so
 * that neither direction can block the other.  EOF on stdin shuts down
 * the TLS write side (the library sends close_notify) and reading goes on
 * until the peer closes; EOF from the peer ends the run once what it sent
 * is written out (what we still send gets --linger; input left unsent is
 * an error).  Only close_notify is a clean end: any other end exits 2, 4
 * or 5 with what starttls_end() says.
 *
 * --udp (DTLS): the descriptor keeps message boundaries.  Each read from
 * stdin (at most DGRAM_MAX bytes) goes out as one message, and each
 * message received is written out as it came.  DTLS has no half-close:
 * EOF on stdin waits up to --linger ms for replies in flight, then closes
 * (the library sends close_notify).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define BUFSZ 65536
/* The largest message read from stdin with --udp: what one DTLS record
 * carries on any path of IPv6 minimum MTU (1280 - 48 IPv6 and UDP - 37
 * DTLS record overhead = 1195), rounded down. */
#define DGRAM_MAX 1024

/* --- exit codes ------------------------------------------------------------
 */

/*
 * A failed starttls call: the exit code from the class of the failure
 * (starttls_errclass()), never from the wording of its detail.  errno
 * decides only where the library names no class.
 */
static int exit_for_errno(int e)
{
	switch (e) {
	case EKEYREJECTED:
		return EXIT_AUTH;
	case EPERM:
		return EXIT_REFUSED;
	case EPROTO:
		return EXIT_TLS;
	case EINVAL:
	case ENOKEY:
	case EACCES:
	case ENOENT:
	case EPROTONOSUPPORT:
	case ENAMETOOLONG:
		return EXIT_USAGE;
	}
	return EXIT_CONNECT;
}

int exit_for_class(starttls_class cls, int e)
{
	switch (cls) {
	case STARTTLS_OK:
		return EXIT_OK;
	case STARTTLS_ERR_ARGUMENT:
	case STARTTLS_ERR_UNSUPPORTED:
	case STARTTLS_ERR_CONFIG:
	case STARTTLS_ERR_NO_CREDENTIAL:
	case STARTTLS_ERR_ACCESS:
	case STARTTLS_ERR_NAME_TOO_LONG:
		return EXIT_USAGE;
	case STARTTLS_ERR_CONNECTION:
	case STARTTLS_ERR_TIMEOUT:
	case STARTTLS_ERR_RESOURCES:
		return EXIT_CONNECT;
	case STARTTLS_ERR_TLS:
	case STARTTLS_ERR_PRELUDE: /* the dialogue before TLS */
		return EXIT_TLS;
	case STARTTLS_ERR_PEER_REJECTED:
	case STARTTLS_ERR_INSECURE:
	case STARTTLS_ERR_NO_RECORDS:
	case STARTTLS_ERR_NO_MATCH:
	case STARTTLS_ERR_NO_PEER_CERT:
	case STARTTLS_ERR_NO_IDENTITY:
		return EXIT_AUTH;
	case STARTTLS_ERR_REFUSED:
		return EXIT_REFUSED;
	case STARTTLS_ERR_DNS_BOGUS:
	case STARTTLS_ERR_DNS_FAILURE:
	case STARTTLS_ERR_DNS_TIMEOUT:
	case STARTTLS_ERR_DIRECTORY_UNREACHABLE:
		return EXIT_DNS; /* the infrastructure that proves peers */
	case STARTTLS_ERR_DIRECTORY_UNAUTHENTICATED:
		return EXIT_AUTH;
	case STARTTLS_ERR_INTERNAL:
		break;
	}
	return exit_for_errno(e);
}

/* TLS alert names: the IANA "TLS Alerts" registry (RFC 8446 section 6). */
static const char *alert_name(int a)
{
	static const struct {
		int n;
		const char *name;
	} names[] = {
	        {0, "close_notify"},
	        {10, "unexpected_message"},
	        {20, "bad_record_mac"},
	        {21, "decryption_failed"},
	        {22, "record_overflow"},
	        {30, "decompression_failure"},
	        {40, "handshake_failure"},
	        {41, "no_certificate"},
	        {42, "bad_certificate"},
	        {43, "unsupported_certificate"},
	        {44, "certificate_revoked"},
	        {45, "certificate_expired"},
	        {46, "certificate_unknown"},
	        {47, "illegal_parameter"},
	        {48, "unknown_ca"},
	        {49, "access_denied"},
	        {50, "decode_error"},
	        {51, "decrypt_error"},
	        {60, "export_restriction"},
	        {70, "protocol_version"},
	        {71, "insufficient_security"},
	        {80, "internal_error"},
	        {86, "inappropriate_fallback"},
	        {90, "user_canceled"},
	        {100, "no_renegotiation"},
	        {109, "missing_extension"},
	        {110, "unsupported_extension"},
	        {111, "certificate_unobtainable"},
	        {112, "unrecognized_name"},
	        {113, "bad_certificate_status_response"},
	        {114, "bad_certificate_hash_value"},
	        {115, "unknown_psk_identity"},
	        {116, "certificate_required"},
	        {120, "no_application_protocol"},
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].n == a)
			return names[i].name;
	return "unknown";
}

/* The exit code for the peer's fatal alert after the handshake. */
static int exit_for_alert(int a)
{
	switch (a) {
	case 42:  /* bad_certificate */
	case 43:  /* unsupported_certificate */
	case 44:  /* certificate_revoked */
	case 45:  /* certificate_expired */
	case 46:  /* certificate_unknown */
	case 48:  /* unknown_ca */
	case 116: /* certificate_required */
		return EXIT_AUTH;
	case 49: /* access_denied */
		return EXIT_REFUSED;
	}
	return EXIT_TLS;
}

int sock_type(const struct options *o)
{
	/* SCTP's one-to-one style is a stream socket (RFC 6458 section 4) */
	return strcmp(o->proto, "udp") == 0 ? SOCK_DGRAM : SOCK_STREAM;
}

int ipproto(const struct options *o)
{
	return strcmp(o->proto, "tcp") == 0   ? IPPROTO_TCP
	       : strcmp(o->proto, "udp") == 0 ? IPPROTO_UDP
	                                      : IPPROTO_SCTP;
}

/* --- the plain side ------------------------------------------------------- */

struct dir {
	int from, to;
	size_t rdmax; /* the largest read: one message with --udp */
	char buf[BUFSZ];
	size_t len, off;
	unsigned long long nread, nwritten;
	int eof;
	int to_nb; /* to is non-blocking: write at once what was read */
};

int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Move what can be moved; 0, -1 (reading failed) or -2 (writing
 * failed), with errno. */
static int step(struct dir *d, int readable, int writable)
{
	ssize_t n;

	if (readable && d->len == 0 && !d->eof) {
		n = read(d->from, d->buf, d->rdmax);
		if (n == 0) {
			d->eof = 1;
		} else if (n > 0) {
			d->len = (size_t)n, d->off = 0;
			d->nread += (unsigned long long)n;
			/* room is the rule: no poll() between (EAGAIN
			 * keeps it for the next pass) */
			writable |= d->to_nb;
		} else if (errno != EAGAIN && errno != EINTR) {
			return -1;
		}
	}
	if (writable && d->len > 0) {
		n = write(d->to, d->buf + d->off, d->len);
		if (n > 0) {
			d->off += (size_t)n;
			d->len -= (size_t)n;
			d->nwritten += (unsigned long long)n;
		} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
			return -2;
		}
	}
	return 0;
}

/* Milliseconds on a monotonic clock. */
long long now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* One message about the end of the connection, kept for --json. */
static void end_msg(struct conn_end *e, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
static void end_msg(struct conn_end *e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	say("%s", e->msg);
}

/*
 * Reading or writing the TLS side failed with err: only the peer's
 * close_notify gives EOF, every other end a failure, and starttls_end()
 * tells which (a stream cut without close_notify may be a truncation
 * attack: RFC 8446 section 6.1, RFC 5246 section 7.2.1).  One message;
 * the exit code.
 */
static int tls_failed(int tls, int err, const char *op, struct conn_end *e)
{
	starttls_end_info *i = &e->info;

	if (starttls_end(tls, i) != 0) {
		memset(i, 0, sizeof(*i));
		e->kind = "unknown";
		end_msg(e, "%s: %s", op, strerror(err));
		return EXIT_CONNECT;
	}
	e->kind = end_kind_name(i->kind);
	switch (i->kind) {
	case STARTTLS_END_TRUNCATED:
		end_msg(e,
		        "the peer closed the connection without close_notify "
		        "after %llu bytes (the data may be incomplete)",
		        i->bytes_in);
		return EXIT_CONNECT;
	case STARTTLS_END_ALERT:
		end_msg(e,
		        "the peer sent the TLS alert %s (%d) after %llu bytes",
		        alert_name(i->alert), i->alert, i->bytes_in);
		return exit_for_alert(i->alert);
	case STARTTLS_END_IDLE:
	case STARTTLS_END_ERROR:
		end_msg(e, "the connection failed after %llu bytes: %s",
		        i->bytes_in, i->detail[0] ? i->detail : e->kind);
		return EXIT_CONNECT;
	default: /* still open, or closed cleanly: not why err came */
		end_msg(e, "%s: %s", op, strerror(err));
		return EXIT_CONNECT;
	}
}

/*
 * stdin -> tls and tls -> stdout.  Our EOF is passed on as a half-close
 * and reading goes on until the peer's EOF; after the peer's EOF, what
 * we still send gets linger_ms more (socat's -t), for a peer that shut
 * only its own write side; input left unsent then is an error, never a
 * silent success.  The exit code; e says how the connection ended.
 */
struct pump {
	struct dir up, down; /* stdin -> tls, tls -> stdout */
	int tls, datagram, linger_ms, shut;
	long long deadline; /* -1: none yet */
};

/* The poll set of what can move now: np, with idx[] the entries of
 * stdin, tls and stdout (-1: not polled). */
static int poll_set(const struct pump *pm, struct pollfd p[3], int idx[3])
{
	const struct dir *up = &pm->up, *down = &pm->down;
	int np = 0;

	idx[0] = idx[1] = idx[2] = -1;
	if (!up->eof && up->len == 0) {
		p[np] = (struct pollfd){0, POLLIN, 0};
		idx[0] = np++;
	}
	if ((!down->eof && down->len == 0) || up->len > 0) {
		p[np] = (struct pollfd){pm->tls, 0, 0};
		if (!down->eof && down->len == 0)
			p[np].events |= POLLIN;
		if (up->len > 0)
			p[np].events |= POLLOUT;
		idx[1] = np++;
	}
	if (down->len > 0) {
		p[np] = (struct pollfd){1, POLLOUT, 0};
		idx[2] = np++;
	}
	return np;
}

/* The linger time is over: input read and not sent is lost, and so is
 * input waiting to be read (FIONREAD: a file not read to its end, a pipe
 * or socket with bytes in it); either is an error.  Input that merely
 * has not ended, with nothing waiting (a terminal, a quiet pipe), is
 * not. */
static int linger_over(const struct pump *pm)
{
	int waiting = 0;

	if (pm->datagram)
		return EXIT_OK;
	if (pm->up.len == 0 &&
	    (pm->up.eof || ioctl(pm->up.from, FIONREAD, &waiting) != 0 ||
	     waiting <= 0))
		return EXIT_OK;
	say("the peer closed its side; stopped sending after %llu "
	    "bytes with more to send: standard input not finished "
	    "(--linger %d ms)",
	    (unsigned long long)pm->up.nwritten, pm->linger_ms);
	return EXIT_CONNECT;
}

/* Move what poll() found ready: -1 to go on, else the exit code. */
static int move(struct pump *pm, const struct pollfd *p, const int idx[3],
                struct conn_end *e)
{
	int it = idx[1], r;

	r = step(&pm->up, idx[0] >= 0 && p[idx[0]].revents,
	         it >= 0 && (p[it].revents & (POLLOUT | POLLERR)));
	if (r == -1) {
		say("reading standard input: %s", strerror(errno));
		return EXIT_CONNECT;
	}
	if (r == -2)
		return tls_failed(pm->tls, errno, "sending", e);
	r = step(&pm->down,
	         it >= 0 && (p[it].revents & (POLLIN | POLLHUP | POLLERR)),
	         idx[2] >= 0 && p[idx[2]].revents);
	if (r == -1)
		return tls_failed(pm->tls, errno, "receiving", e);
	if (r == -2) {
		if (errno == EPIPE)
			return EXIT_OK; /* our reader went away: done */
		say("writing standard output: %s", strerror(errno));
		return EXIT_CONNECT;
	}
	return -1;
}

/* After a move: 1 when both directions are done.  Our EOF becomes a
 * half-close (close_notify); the peer's starts the linger time. */
static int ends(struct pump *pm)
{
	int up_done = pm->up.eof && pm->up.len == 0;
	int down_done = pm->down.eof && pm->down.len == 0;

	if (pm->datagram) {
		/* No half-close: the peer's close ends both ways; our EOF
		 * lingers for replies, then close() sends close_notify. */
		if (down_done)
			return 1;
		if (up_done && pm->deadline < 0)
			pm->deadline = now_ms() + pm->linger_ms;
		return 0;
	}
	if (up_done && !pm->shut) {
		shutdown(pm->tls, SHUT_WR);
		pm->shut = 1;
	}
	if (down_done) {
		if (up_done)
			return 1;
		if (pm->deadline < 0)
			pm->deadline = now_ms() + pm->linger_ms;
	}
	return 0;
}

/* How the connection ended, from the library, else from what we saw
 * (EOF only after close_notify). */
static void note_end(const struct pump *pm, struct conn_end *e)
{
	if (e->kind != NULL)
		return;
	if (starttls_end(pm->tls, &e->info) == 0) {
		e->kind = end_kind_name(e->info.kind);
		return;
	}
	memset(&e->info, 0, sizeof(e->info));
	e->kind = pm->down.eof ? "close_notify" : "unknown";
	e->info.bytes_in = pm->down.nread;
	e->info.bytes_out = pm->up.nwritten;
}

static int pump(int tls, int linger_ms, int datagram, struct conn_end *e)
{
	struct pump *pm = calloc(1, sizeof(*pm));
	int rv = EXIT_OK;

	memset(e, 0, sizeof(*e));
	if (pm == NULL) {
		say("out of memory");
		return EXIT_CONNECT;
	}
	pm->tls = tls, pm->datagram = datagram, pm->linger_ms = linger_ms;
	pm->deadline = -1;
	pm->up.from = 0, pm->up.to = tls, pm->up.to_nb = 1;
	pm->down.from = tls, pm->down.to = 1;
	pm->up.rdmax = datagram ? DGRAM_MAX : sizeof(pm->up.buf);
	pm->down.rdmax = sizeof(pm->down.buf);
	set_nonblock(tls);
	out_waiting(1);
	for (;;) {
		struct pollfd p[3];
		int idx[3], np = poll_set(pm, p, idx), r;

		if (np == 0)
			break;
		if (out_stopped()) {
			rv = EXIT_CONNECT; /* out_finish() says why */
			break;
		}
		if (pm->deadline >= 0 && now_ms() >= pm->deadline) {
			rv = linger_over(pm);
			break;
		}
		if (poll(p, (nfds_t)np,
		         pm->deadline < 0
		                 ? -1
		                 : (int)(pm->deadline - now_ms())) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		r = move(pm, p, idx, e);
		if (r >= 0) {
			rv = r;
			break;
		}
		if (ends(pm))
			break;
	}
	out_waiting(0);
	note_end(pm, e);
	free(pm);
	return rv;
}

/* What to try next after a failed call, by its class. */
static void advise(const struct options *o, starttls_class cls)
{
	const starttls_trace *t = starttls_last_trace();
	const char *host = o->sni ? o->sni : o->name ? o->name : "HOST";
	const char *port = o->port ? o->port : "PORT";
	tlspool_x509_info x;
	char spki[65] = "";
	size_t i;

	if (t->nchain > 0 && tlspool_x509_describe(&t->chain[0], &x) == 0)
		for (i = 0; i < sizeof(x.spki_sha256); i++)
			snprintf(spki + 2 * i, 3, "%02X", x.spki_sha256[i]);
	switch (cls) {
	case STARTTLS_ERR_NO_MATCH:
		hint("the peer's key has SPKI SHA2-256 %s, which \"%s IN TLSA "
		     "3 1 1 %s\" would match; --diagnose shows why each "
		     "record failed, and %s --client %s %s --records prints "
		     "the records that would authenticate it",
		     spki[0] ? spki : "(unknown)",
		     t->owner ? t->owner : "_PORT._tcp.HOST.",
		     spki[0] ? spki : "...", progname, host, port);
		break;
	case STARTTLS_ERR_NO_RECORDS:
	case STARTTLS_ERR_INSECURE:
		hint("publish a TLSA record for the peer in a DNSSEC-signed "
		     "zone: %s --client %s %s --records prints it%s%s",
		     progname, host, port,
		     spki[0] ? "; its SPKI SHA2-256 is " : "", spki);
		break;
	case STARTTLS_ERR_DNS_TIMEOUT:
		hint("check that the [dns] upstream answers (%s --lookup %s %s "
		     "-v), or raise [dns] timeout_ms in the configuration",
		     progname, host, port);
		break;
	case STARTTLS_ERR_DNS_BOGUS:
	case STARTTLS_ERR_DNS_FAILURE:
		hint("%s --lookup %s %s shows the DNS answer; a bogus one "
		     "needs "
		     "the zone's signatures or DS records fixed",
		     progname, host, port);
		break;
	case STARTTLS_ERR_NO_CREDENTIAL:
		hint("give the name an [identity NAME] section with key and "
		     "certificate (tlspool.conf(5)), or --no-local-cert");
		break;
	case STARTTLS_ERR_NO_PEER_CERT:
	case STARTTLS_ERR_NO_IDENTITY:
		hint("--diagnose shows what the peer presented");
		break;
	case STARTTLS_ERR_TIMEOUT:
		hint("raise [tls] handshake_timeout_ms, or check that the peer "
		     "speaks TLS on this port (--diagnose)");
		break;
	case STARTTLS_ERR_TLS:
	case STARTTLS_ERR_PEER_REJECTED:
		hint("--diagnose -v shows how far the handshake got; [tls] "
		     "priority sets what we offer");
		break;
	case STARTTLS_ERR_REFUSED:
		hint("the authorization or SNI filter refused the peer: "
		     "see --sni-allow, --no-authz and tlspool_authz(3)");
		break;
	case STARTTLS_ERR_CONFIG:
		hint("correct the file named (tlspool.conf(5))");
		break;
	default:
		hint("--diagnose shows what was learnt of the peer");
		break;
	}
}

/*
 * After a starttls call: the trace (--diagnose, --json; with defer set,
 * --json waits for the end of the connection), then the error (err
 * nonzero) or a warning the call left (the cache could not be used).
 * Returns the exit code for err.
 */
int report_call(const struct options *o, const char *peer, int err, int defer)
{
	int rc = err ? exit_for_class(starttls_errclass(), err) : EXIT_OK;

	(void)defer; /* the document is written once, at the end */
	print_trace(o, peer, rc);
	if (starttls_errstr()[0] == '\0')
		return rc;
	if (rc != EXIT_OK) {
		say("%s", starttls_errstr());
		advise(o, starttls_errclass());
	} else {
		/* a warning: the call succeeded */
		if (out_text_on_stderr())
			fprintf(stderr, "%s: %s\n", progname,
			        starttls_errstr());
		out_append("warnings",
		           json_object_new_string(starttls_errstr()));
	}
	return rc;
}

/* --exec: the child talks TLS plaintext on its stdin and stdout. */
static int run_exec(const struct options *o, int tls, const char *peer,
                    const char *local, const char *sni)
{
	pid_t pid = fork();
	int st;

	if (pid < 0) {
		say("fork: %s", strerror(errno));
		close(tls);
		return EXIT_CONNECT;
	}
	if (pid == 0) {
		dup2(tls, 0);
		dup2(tls, 1);
		if (tls > 1)
			close(tls);
		setenv("TLSPOOL_PEER", peer, 1);
		setenv("TLSPOOL_LOCAL", local ? local : "", 1);
		setenv("TLSPOOL_SNI", sni ? sni : "", 1);
		execl("/bin/sh", "sh", "-c", o->exec, (char *)NULL);
		say("/bin/sh: %s", strerror(errno));
		_exit(127);
	}
	close(tls);
	out_status_not_ours();
	out_waiting(1);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR || out_stopped())
			return EXIT_CONNECT; /* out_finish() says why */
	out_waiting(0);
	/* the child's own status, as a shell would report it */
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The peer is authenticated: move the data, then say how it ended. */
int serve_plain(const struct options *o, int tls, const char *peer,
                const char *local, const char *sni)
{
	struct conn_end e;
	int rv;

	if (out_text_on_stderr())
		fprintf(stderr, "peer: %s\n", peer[0] ? peer : "(anonymous)");
	if (o->exec != NULL)
		/* the command reads the descriptor and sees how it ends */
		return run_exec(o, tls, peer, local, sni);
	rv = pump(tls, o->linger_ms, strcmp(o->proto, "tcp") != 0, &e);
	print_trace_end(o, peer, rv, &e);
	close(tls);
	return rv;
}
