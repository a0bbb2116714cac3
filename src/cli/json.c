/*
 * tlspool-connect --json: one JSON document per run (share/
 * tlspool-connect.schema.json), and the lines for people beside it.
 *
 * Every mode builds its members into one document, written once, when
 * the run ends (out_finish()), with "outcome" and "exit_code" that agree
 * with the exit status.  The document goes to stdout for --lookup, the
 * cache modes and --records-for; for --client and --server, whose stdout
 * carries the connection's data, to stderr or to --json-file FILE.
 *
 * Lines for people (say(), note()) go to stderr, except while the
 * document goes there: then they go into the document only ("messages",
 * "events"), so that stderr holds the document and nothing else.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static struct {
	int on;        /* --json */
	int fd;        /* where the document goes */
	int verbose;   /* -v */
	int hinted;    /* a hint was given */
	int no_hint;   /* the exit status is not ours (--exec) */
	int on_stderr; /* the document takes stderr */
	const char *mode;
	long long t0; /* now_ms() at the start */
	json_object *doc, *messages, *events, *addresses;
} J = {.fd = -1};

/* SIGINT, SIGTERM or SIGHUP that stopped a connection's run (--json),
 * caught only while the run waits where it looks at it (out_waiting());
 * elsewhere (in a library call that does not return on EINTR) the signal
 * ends the run at once, as without --json. */
static volatile sig_atomic_t stop_sig, waiting;

static void on_stop(int sig)
{
	if (!waiting) {
		signal(sig, SIG_DFL);
		raise(sig); /* delivered when the handler returns */
		return;
	}
	stop_sig = sig;
}

void out_waiting(int on)
{
	waiting = on;
}

void out_catch_signals(void)
{
	struct sigaction sa;
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
	size_t i;

	if (!J.on)
		return;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: the waits return EINTR */
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		struct sigaction old;

		/* a signal ignored when we started (nohup, a shell's
		 * background job) stays ignored */
		if (sigaction(sigs[i], NULL, &old) == 0 &&
		    old.sa_handler == SIG_IGN)
			continue;
		sigaction(sigs[i], &sa, NULL);
	}
}

int out_stopped(void)
{
	return stop_sig;
}

static const char *mode_name(int mode)
{
	switch (mode) {
	case 'l':
		return "lookup";
	case 'c':
		return "client";
	case 's':
		return "server";
	case 'L':
		return "cache-list";
	case 'F':
		return "cache-flush";
	case 'r':
		return "records-for";
	}
	return "none";
}

/* The exit codes of tlspool-connect(1), EXIT STATUS, by name. */
const char *outcome_name(int rc)
{
	switch (rc) {
	case EXIT_OK:
		return "ok";
	case EXIT_USAGE:
		return "usage-error";
	case EXIT_CONNECT:
		return "connection-failed";
	case EXIT_TLS:
		return "tls-failed";
	case EXIT_AUTH:
		return "not-authenticated";
	case EXIT_REFUSED:
		return "refused";
	case EXIT_DNS:
		return "dns-failed";
	case EXIT_NO_DANE:
		return "no-dane";
	}
	return "command-status"; /* --exec: the command's own status */
}

int out_begin(const struct options *o)
{
	int e = 0;

	J.verbose = o->verbose;
	J.mode = mode_name(o->mode);
	J.t0 = now_ms();
	if (!o->json)
		return 0;
	if (o->json_file != NULL) {
		J.fd = open(o->json_file,
		            O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		e = J.fd < 0 ? errno : 0;
	}
	/* without --json-file, or when it cannot be written: the mode's
	 * own channel (the document says why) */
	if (J.fd < 0 && (o->mode == 'c' || o->mode == 's')) {
		J.fd = 2;
		J.on_stderr = 1;
	} else if (J.fd < 0) {
		J.fd = 1;
	}
	J.on = 1;
	J.doc = json_object_new_object();
	J.messages = json_object_new_array();
	J.events = json_object_new_array();
	J.addresses = json_object_new_array();
	json_object_object_add(J.doc, "tool",
	                       json_object_new_string("tlspool-connect"));
	json_object_object_add(J.doc, "version",
	                       json_object_new_string(TLSPOOL_VERSION));
	json_object_object_add(J.doc, "mode", json_object_new_string(J.mode));
	if (o->json_file != NULL && e != 0) {
		say("--json-file %s: %s", o->json_file, strerror(e));
		hint("give a file in a directory that exists and can be "
		     "written, or --json alone for the document on %s",
		     J.on_stderr ? "stderr" : "stdout");
		return EXIT_USAGE;
	}
	return 0;
}

int out_json(void)
{
	return J.on;
}

int out_text_on_stderr(void)
{
	return !J.on_stderr;
}

int out_doc_on_stdout(void)
{
	return J.on && J.fd == 1;
}

void out_set(const char *key, json_object *v)
{
	if (J.doc == NULL) {
		json_object_put(v);
		return;
	}
	json_object_object_add(J.doc, key, v);
}

void out_append(const char *key, json_object *v)
{
	json_object *a;

	if (J.doc == NULL) {
		json_object_put(v);
		return;
	}
	if (!json_object_object_get_ex(J.doc, key, &a)) {
		a = json_object_new_array();
		json_object_object_add(J.doc, key, a);
	}
	json_object_array_add(a, v);
}

void out_merge(json_object *obj)
{
	if (obj == NULL)
		return;
	if (J.doc != NULL) {
		json_object_object_foreach(obj, k, v)
		{
			json_object_object_add(J.doc, k, json_object_get(v));
		}
	}
	json_object_put(obj);
}

/* "error" is the first failure said, unless the trace set it. */
static void keep_error(const char *msg)
{
	json_object *e;

	if (J.doc == NULL)
		return;
	if (json_object_object_get_ex(J.doc, "error", &e) &&
	    json_object_get_string_len(e) > 0)
		return;
	json_object_object_add(J.doc, "error", json_object_new_string(msg));
}

void say(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!J.on_stderr)
		fprintf(stderr, "%s: %s\n", progname, msg);
	if (J.on) {
		json_object_array_add(J.messages, json_object_new_string(msg));
		keep_error(msg);
	}
}

void hint(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	J.hinted = 1;
	if (!J.on_stderr)
		fprintf(stderr, "%s: try: %s\n", progname, msg);
	if (J.on && !json_object_object_get_ex(J.doc, "hint", NULL))
		json_object_object_add(J.doc, "hint",
		                       json_object_new_string(msg));
}

void note(const char *event, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (J.verbose && !J.on_stderr)
		fprintf(stderr, "%s: %s\n", progname, msg);
	if (J.on) {
		json_object *e = json_object_new_object();

		json_object_object_add(e, "ms",
		                       json_object_new_int64(now_ms() - J.t0));
		json_object_object_add(e, "event",
		                       json_object_new_string(event));
		json_object_object_add(e, "text", json_object_new_string(msg));
		json_object_array_add(J.events, e);
	}
}

void out_status_not_ours(void)
{
	J.no_hint = 1;
}

void out_hinted(void)
{
	J.hinted = 1;
}

int out_finish(int rc)
{
	const char *s;
	size_t len;
	json_object *e;

	waiting = 0; /* a signal from here on ends the run at once */
	/* stopped by a signal: the status a shell reports for it */
	if (stop_sig != 0) {
		rc = 128 + stop_sig;
		J.hinted = 1;
	}
	/* every failure says what to try next: this where nothing more
	 * precise did */
	if (rc == EXIT_NO_DANE && !J.hinted && !J.no_hint)
		/* RFC 7672 section 2.2: an insecure MX RRset or hosts
		 * without TLSA records; RFC 7673 section 4.1 for SRV */
		hint("the destination has no DANE: its MX or SRV RRset must "
		     "be DNSSEC-signed and its hosts must publish TLSA "
		     "records (--records-for prints them); tlspool does "
		     "not fall back to unauthenticated TLS");
	else if (rc != EXIT_OK && !J.hinted && !J.no_hint)
		hint("-v shows what was done%s; tlspool-connect(1), EXIT "
		     "STATUS, explains exit %d",
		     strcmp(J.mode, "client") == 0 ||
		                     strcmp(J.mode, "server") == 0
		             ? " and --diagnose what was learnt of the peer"
		             : "",
		     rc);
	if (!J.on)
		return rc;
	J.on = 0;
	if (!json_object_object_get_ex(J.doc, "error", &e))
		json_object_object_add(J.doc, "error",
		                       json_object_new_string(""));
	json_object_object_add(J.doc, "messages", J.messages);
	json_object_object_add(J.doc, "events", J.events);
	json_object_object_add(J.doc, "addresses", J.addresses);
	json_object_object_add(
	        J.doc, "outcome",
	        json_object_new_string(stop_sig != 0 ? "interrupted"
	                                             : outcome_name(rc)));
	if (stop_sig != 0)
		json_object_object_add(
		        J.doc, "signal",
		        json_object_new_string(stop_sig == SIGINT ? "SIGINT"
		                               : stop_sig == SIGTERM
		                                       ? "SIGTERM"
		                                       : "SIGHUP"));
	json_object_object_add(J.doc, "exit_code", json_object_new_int(rc));
	fflush(stdout);
	s = json_object_to_json_string_ext(
	        J.doc,
	        JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
	len = strlen(s);
	/* one write where it can be (a forking server's children share the
	 * descriptor), more only if a pipe takes it in parts */
	{
		char *buf = malloc(len + 1);
		size_t off = 0;

		if (buf != NULL) {
			memcpy(buf, s, len);
			buf[len] = '\n';
			while (off < len + 1) {
				ssize_t n =
				        write(J.fd, buf + off, len + 1 - off);

				if (n < 0 && errno == EINTR)
					continue;
				if (n <= 0) {
					rc = rc == EXIT_OK ? EXIT_CONNECT : rc;
					break;
				}
				off += (size_t)n;
			}
			free(buf);
		}
	}
	if (J.fd > 2)
		close(J.fd);
	json_object_put(J.doc);
	J.doc = NULL;
	if (stop_sig != 0) {
		/* end as the signal would have ended the run */
		signal(stop_sig, SIG_DFL);
		raise(stop_sig);
	}
	return rc;
}

/* A forked child that serves a connection starts a document of its own
 * (the parent's events stay with the parent). */
void out_child(void)
{
	if (!J.on)
		return;
	json_object_put(J.events);
	json_object_put(J.messages);
	J.events = json_object_new_array();
	J.messages = json_object_new_array();
}

/* "192.0.2.1:443" or "[2001:db8::1]:443" (RFC 3986 section 3.2.2). */
static void host_port(const struct sockaddr *sa, unsigned salen, char *host,
                      size_t hlen, char *serv, size_t slen, char *hp,
                      size_t hplen)
{
	struct sockaddr_in v4;
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

	snprintf(host, hlen, "?");
	snprintf(serv, slen, "?");
	/* a dual-stack socket's IPv4 peer as such, not ::ffff:a.b.c.d */
	if (sa->sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
		memset(&v4, 0, sizeof(v4));
		v4.sin_family = AF_INET;
		v4.sin_port = s6->sin6_port;
		memcpy(&v4.sin_addr, &s6->sin6_addr.s6_addr[12], 4);
		sa = (const struct sockaddr *)&v4;
		salen = sizeof(v4);
	}
	getnameinfo(sa, (socklen_t)salen, host, (socklen_t)hlen, serv,
	            (socklen_t)slen, NI_NUMERICHOST | NI_NUMERICSERV);
	snprintf(hp, hplen, strchr(host, ':') ? "[%s]:%s" : "%s:%s", host,
	         serv);
}

void out_connecting(const struct sockaddr *sa, unsigned salen)
{
	char host[NI_MAXHOST], serv[NI_MAXSERV],
	        hp[NI_MAXHOST + NI_MAXSERV + 4];

	host_port(sa, salen, host, sizeof(host), serv, sizeof(serv), hp,
	          sizeof(hp));
	note("connect", "connecting to %s", hp);
}

void out_address(const char *role, const struct sockaddr *sa, unsigned salen,
                 int err)
{
	char host[NI_MAXHOST], serv[NI_MAXSERV],
	        hp[NI_MAXHOST + NI_MAXSERV + 4];
	int dual = 0;

	host_port(sa, salen, host, sizeof(host), serv, sizeof(serv), hp,
	          sizeof(hp));
	if (sa->sa_family == AF_INET6 &&
	    IN6_IS_ADDR_UNSPECIFIED(
	            &((const struct sockaddr_in6 *)sa)->sin6_addr))
		dual = 1;
	if (strcmp(role, "listen") == 0)
		note("listen", "listening on %s%s%s%s", hp,
		     dual && !err ? " (IPv6 and IPv4)" : "", err ? ": " : "",
		     err ? strerror(err) : "");
	else if (strcmp(role, "connect") == 0 && err)
		note("connect", "connect %s: %s", hp, strerror(err));
	else if (strcmp(role, "connect") == 0)
		note("connect", "connected to %s", hp);
	else
		note(role, "connection from %s", hp);
	if (J.on) {
		json_object *a = json_object_new_object();

		json_object_object_add(a, "role", json_object_new_string(role));
		json_object_object_add(a, "address",
		                       json_object_new_string(host));
		json_object_object_add(a, "port",
		                       json_object_new_int(atoi(serv)));
		json_object_object_add(
		        a, "result",
		        json_object_new_string(err ? strerror(err) : "ok"));
		json_object_array_add(J.addresses, a);
	}
}
