/*
 * tlspool-connect --mx and --srv: destinations whose hosts the DNS names,
 * SMTP by MX (RFC 7672) and services by SRV (RFC 7673).
 *
 * --lookup shows what a sending MTA (or an SRV client) would learn: the
 * MX or SRV RRset with its DNSSEC verdict and, per host, its addresses,
 * the TLSA base domain and owner, the verdict and the records.
 *
 * --client tries the hosts in order, each address in turn, and falls
 * through to the next on any failure, as a sending MTA does; only hosts
 * with usable TLSA records are tried (tlspool authenticates every peer).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "cli.h"

#define CONNECT_TIMEOUT_S 10

static tlspool_dest *resolve(const struct options *o)
{
	char err[512];
	tlspool_dns_config *cfg;
	tlspool_dns *dns;
	tlspool_dest *d = NULL;
	unsigned long port = o->port != NULL ? strtoul(o->port, NULL, 10) : 25;
	int r, e;

	cfg = tlspool_dns_config_load(o->config, err, sizeof(err));
	if (cfg == NULL) {
		fprintf(stderr, "%s: %s\n", progname, err);
		return NULL;
	}
	dns = tlspool_dns_new(cfg, err, sizeof(err));
	tlspool_dns_config_free(cfg);
	if (dns == NULL) {
		fprintf(stderr, "%s: %s\n", progname, err);
		return NULL;
	}
	r = o->srv != NULL ? tlspool_srv_resolve(dns, o->srv, o->name, &d, err,
	                                         sizeof(err))
	                   : tlspool_mx_resolve(dns, o->name, (unsigned)port,
	                                        &d, err, sizeof(err));
	e = errno;
	if (r != 0)
		fprintf(stderr, "%s: %s\n", progname, err);
	tlspool_dns_free(dns);
	errno = e;
	return d;
}

/* The exit code of what the DNS says: 0 when a host has DANE. */
static int dest_exit(const tlspool_dest *d)
{
	int error = 0, unusable = 0;

	if (d->verdict == TLSPOOL_DEST_DNS_ERROR)
		return EXIT_DNS;
	if (d->verdict == TLSPOOL_DEST_INSECURE)
		return EXIT_NO_DANE;
	if (d->verdict == TLSPOOL_DEST_NO_SERVICE)
		return EXIT_AUTH;
	for (size_t i = 0; i < d->nhosts; i++) {
		if (d->hosts[i].verdict == TLSPOOL_HOST_DANE)
			return EXIT_OK;
		error |= d->hosts[i].verdict == TLSPOOL_HOST_DNS_ERROR;
		unusable |= d->hosts[i].verdict == TLSPOOL_HOST_UNUSABLE;
	}
	return error ? EXIT_DNS : unusable ? EXIT_AUTH : EXIT_NO_DANE;
}

/* The addresses of a host, comma-separated, into buf. */
static void addresses(const tlspool_dest_host *h, char *buf, size_t len)
{
	const tlspool_dns_answer *x[2] = {h->a, h->aaaa};
	char a[INET6_ADDRSTRLEN];
	size_t pos = 0;

	buf[0] = '\0';
	for (int k = 0; k < 2; k++)
		for (size_t i = 0; x[k] != NULL && i < x[k]->nrr; i++) {
			const tlspool_rr *rr = &x[k]->rr[i];

			if (rr->rdlen != (k == 0 ? 4u : 16u))
				continue;
			inet_ntop(k == 0 ? AF_INET : AF_INET6, rr->rdata, a,
			          sizeof(a));
			if (pos < len)
				pos += (size_t)snprintf(buf + pos, len - pos,
				                        "%s%s", pos ? ", " : "",
				                        a);
		}
}

static void host_text(const tlspool_dest *d, size_t i)
{
	const tlspool_dest_host *h = &d->hosts[i];
	char addr[1024];

	addresses(h, addr, sizeof(addr));
	printf(";\n; host %zu: %s %s %u", i + 1, h->name,
	       d->srv ? "priority" : "preference", h->preference);
	if (d->srv)
		printf(" weight %u", h->weight);
	printf(" port %u\n", h->port);
	if (h->a != NULL)
		printf(";   address %s: %s\n",
		       tlspool_dns_verdict_name(h->address),
		       addr[0] ? addr : "none");
	if (h->expanded[0] != '\0')
		printf(";   cname   %s -> %s (%s)\n", h->name, h->expanded,
		       h->expanded_secure ? "secure" : "insecure");
	if (h->owner[0] != '\0')
		printf(";   tlsa    %s (base %s)\n", h->owner, h->base);
	printf(";   verdict %s: %s\n", tlspool_host_verdict_name(h->verdict),
	       h->reason);
	for (size_t k = 0; k < h->nnames; k++)
		printf(";   name    %s\n", h->names[k]);
	if (h->tlsa_expanded != NULL)
		print_answer_text(stdout, h->tlsa_expanded);
	if (h->tlsa != NULL)
		print_answer_text(stdout, h->tlsa);
}

static json_object *addr_list(const tlspool_dest_host *h)
{
	json_object *arr = json_object_new_array();
	char buf[4096], *p, *save = NULL;

	addresses(h, buf, sizeof(buf));
	for (p = strtok_r(buf, ", ", &save); p != NULL;
	     p = strtok_r(NULL, ", ", &save))
		json_object_array_add(arr, json_object_new_string(p));
	return arr;
}

static json_object *host_json(const tlspool_dest *d, const tlspool_dest_host *h)
{
	json_object *o = json_object_new_object();
	json_object *names = json_object_new_array();

	json_object_object_add(o, "name", json_object_new_string(h->name));
	json_object_object_add(o, d->srv ? "priority" : "preference",
	                       json_object_new_int(h->preference));
	if (d->srv)
		json_object_object_add(o, "weight",
		                       json_object_new_int(h->weight));
	json_object_object_add(o, "port", json_object_new_int(h->port));
	json_object_object_add(
	        o, "address_verdict",
	        json_object_new_string(tlspool_dns_verdict_name(h->address)));
	json_object_object_add(o, "addresses", addr_list(h));
	if (h->expanded[0] != '\0') {
		json_object_object_add(o, "cname_expanded",
		                       json_object_new_string(h->expanded));
		json_object_object_add(
		        o, "cname_secure",
		        json_object_new_boolean(h->expanded_secure));
	}
	json_object_object_add(o, "tlsa_base", json_object_new_string(h->base));
	json_object_object_add(o, "tlsa_owner",
	                       json_object_new_string(h->owner));
	json_object_object_add(
	        o, "verdict",
	        json_object_new_string(tlspool_host_verdict_name(h->verdict)));
	json_object_object_add(o, "explanation",
	                       json_object_new_string(h->reason));
	json_object_object_add(o, "usable_records",
	                       json_object_new_int((int)h->nusable));
	for (size_t k = 0; k < h->nnames; k++)
		json_object_array_add(names,
		                      json_object_new_string(h->names[k]));
	json_object_object_add(o, "reference_names", names);
	if (h->a != NULL)
		json_object_object_add(o, "a", answer_json(h->a));
	if (h->aaaa != NULL)
		json_object_object_add(o, "aaaa", answer_json(h->aaaa));
	if (h->tlsa_expanded != NULL)
		json_object_object_add(o, "tlsa_expanded",
		                       answer_json(h->tlsa_expanded));
	if (h->tlsa != NULL)
		json_object_object_add(o, "tlsa", answer_json(h->tlsa));
	return o;
}

static json_object *dest_json(const tlspool_dest *d)
{
	json_object *doc = json_object_new_object();
	json_object *hosts = json_object_new_array();

	json_object_object_add(doc, "query", json_object_new_string(d->qname));
	json_object_object_add(doc, "type",
	                       json_object_new_string(d->srv ? "SRV" : "MX"));
	json_object_object_add(doc, "domain",
	                       json_object_new_string(d->domain));
	json_object_object_add(
	        doc, "verdict",
	        json_object_new_string(tlspool_dest_verdict_name(d->verdict)));
	json_object_object_add(doc, "explanation",
	                       json_object_new_string(d->reason));
	if (d->rrset != NULL)
		json_object_object_add(doc, "rrset", answer_json(d->rrset));
	for (size_t i = 0; i < d->nhosts; i++)
		json_object_array_add(hosts, host_json(d, &d->hosts[i]));
	json_object_object_add(doc, "hosts", hosts);
	return doc;
}

int run_dest_lookup(const struct options *o)
{
	tlspool_dest *d = resolve(o);
	int rc;

	if (d == NULL)
		return errno == EINVAL ? EXIT_USAGE : EXIT_DNS;
	rc = dest_exit(d);
	if (o->json) {
		json_object *doc = dest_json(d);

		json_object_object_add(doc, "exit_code",
		                       json_object_new_int(rc));
		printf("%s\n",
		       json_object_to_json_string_ext(
		               doc, JSON_C_TO_STRING_PRETTY |
		                            JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(doc);
	} else {
		printf("; destination %s %s: %s: %s\n", d->domain,
		       d->srv ? "SRV" : "MX",
		       tlspool_dest_verdict_name(d->verdict), d->reason);
		if (d->rrset != NULL)
			print_answer_text(stdout, d->rrset);
		for (size_t i = 0; i < d->nhosts; i++)
			host_text(d, i);
	}
	if (rc != EXIT_OK) {
		fflush(stdout);
		fprintf(stderr, "%s: %s%s\n", progname, d->reason,
		        rc == EXIT_NO_DANE ? " (no DANE)" : "");
	}
	tlspool_dest_free(d);
	return rc;
}

/* --- client ---------------------------------------------------------------
 */

/* A TCP connection to one address of a host; -1 with a message. */
static int connect_addr(const tlspool_dest_host *h, int v6,
                        const unsigned char *addr)
{
	struct sockaddr_storage ss = {0};
	struct timeval tv = {CONNECT_TIMEOUT_S, 0};
	socklen_t len;
	char text[INET6_ADDRSTRLEN];
	int fd, e;

	if (v6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(h->port);
		memcpy(&s6->sin6_addr, addr, 16);
		len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(h->port);
		memcpy(&s4->sin_addr, addr, 4);
		len = sizeof(*s4);
	}
	inet_ntop(v6 ? AF_INET6 : AF_INET, addr, text, sizeof(text));
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		e = errno;
		fprintf(stderr, "%s: %s[%s]:%u: socket: %s\n", progname,
		        h->name, text, h->port, strerror(e));
		errno = e;
		return -1;
	}
	/* connect(2) heeds the send timeout */
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&ss, len) != 0) {
		e = errno;
		fprintf(stderr, "%s: %s[%s]:%u: connect: %s\n", progname,
		        h->name, text, h->port, strerror(e));
		close(fd);
		errno = e;
		return -1;
	}
	tv.tv_sec = 0;
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

/* Which failure the run reports when no host succeeds: an authentication
 * failure first (someone may be in the way), then DNS, TLS, connection,
 * and "no DANE" last. */
static int worse(int a, int b)
{
	static const int order[] = {EXIT_AUTH, EXIT_REFUSED, EXIT_DNS,
	                            EXIT_TLS,  EXIT_CONNECT, EXIT_NO_DANE};

	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		if (a == order[i] || b == order[i])
			return order[i];
	return a != EXIT_OK ? a : b;
}

struct attempt {
	const struct options *o;
	const tlspool_dest *d;
	const tlspool_dest_host *h;
	int rc;                /* the worst failure so far, or EXIT_OK */
	int done;              /* 1: a host succeeded, rc is the run's code */
	json_object *attempts; /* --json: the failed attempts */
};

/* One failed attempt for the --json document. */
static void note_attempt(struct attempt *t, const char *addr, const char *error,
                         const char *cls, int rc)
{
	json_object *a;

	if (t->attempts == NULL)
		return;
	a = json_object_new_object();
	json_object_object_add(a, "host", json_object_new_string(t->h->name));
	json_object_object_add(a, "address", json_object_new_string(addr));
	json_object_object_add(a, "port", json_object_new_int(t->h->port));
	json_object_object_add(a, "error", json_object_new_string(error));
	json_object_object_add(a, "class", json_object_new_string(cls));
	json_object_object_add(a, "exit_code", json_object_new_int(rc));
	json_object_array_add(t->attempts, a);
}

/* A failed attempt at host h: one line naming it, the --diagnose trace
 * (--json: one document at the end) and the worst exit code so far. */
static void attempt_failed(struct attempt *t, const char *addr,
                           const char *peer, int e)
{
	struct options q = *t->o;
	int rc;

	fprintf(stderr, "%s: %s[%s]:%u: ", progname, t->h->name, addr,
	        t->h->port);
	fflush(stderr);
	q.json = 0;
	rc = report_call(&q, peer, e, 0);
	note_attempt(t, addr, starttls_errstr(),
	             starttls_class_name(starttls_errclass()), rc);
	t->rc = worse(t->rc, rc);
}

/* --starttls PROTO on fd before the handshake (starttls_prelude_client(3));
 * XMPP's to= is the service domain. */
static int prelude(struct attempt *t, int fd)
{
	static starttls_prelude pre;
	static char domain[256];
	size_t len;

	if (t->o->starttls == NULL)
		return 0;
	snprintf(domain, sizeof(domain), "%s", t->d->domain);
	len = strlen(domain);
	if (len > 1 && domain[len - 1] == '.')
		domain[len - 1] = '\0';
	memset(&pre, 0, sizeof(pre));
	pre.protocol = t->o->starttls;
	pre.myname = t->o->myname;
	pre.peerdomain = domain;
	pre.ctx = t->o->ctx;
	cli_prelude = &pre;
	return starttls_prelude_client(fd, &pre);
}

/* The TLS call on a connected fd for host h: 0 when it authenticated
 * (the run then ends with the plain side), -1 to go on. */
static int try_fd(struct attempt *t, int fd, const char *addr)
{
	const tlspool_dest_host *h = t->h;
	const char *names[TLSPOOL_DEST_MAX_NAMES];
	starttls_dane_ref ref = {0};
	char peer[320] = "", name[256];
	int tls;

	for (size_t k = 0; k < h->nnames; k++)
		names[k] = h->names[k];
	ref.base = h->base;
	ref.port = h->port;
	ref.names = names;
	ref.nnames = h->nnames;
	/* the MX host (or SRV target) as published, as Postfix logs it */
	snprintf(name, sizeof(name), "%s", h->name);
	if (strlen(name) > 1 && name[strlen(name) - 1] == '.')
		name[strlen(name) - 1] = '\0';
	ref.peer = name;
	ref.smtp = !t->d->srv;
	if (prelude(t, fd) != 0) {
		int e = errno;

		close(fd);
		attempt_failed(t, addr, "", e);
		return -1;
	}
	/* RFC 7672 section 8.1: SNI is the TLSA base domain */
	tls = starttls_ctx_client_dane(t->o->ctx, fd, IPPROTO_TCP, t->o->myname,
	                               t->o->flags, h->base, &ref, peer,
	                               sizeof(peer));
	if (tls < 0) {
		attempt_failed(t, addr, peer, errno);
		return -1;
	}
	if (t->o->verbose)
		fprintf(stderr, "%s: %s[%s]:%u: authenticated by %s\n",
		        progname, h->name, addr, h->port, h->owner);
	report_call(t->o, peer, 0, t->o->exec == NULL);
	t->rc = serve_plain(t->o, tls, peer, t->o->myname, h->base);
	t->done = 1;
	return 0;
}

/* Every address of host h in turn (A, then AAAA). */
static void try_host(struct attempt *t)
{
	const tlspool_dest_host *h = t->h;
	const tlspool_dns_answer *x[2] = {h->a, h->aaaa};
	char text[INET6_ADDRSTRLEN], why[300];

	for (int k = 0; k < 2 && !t->done; k++)
		for (size_t i = 0; x[k] != NULL && i < x[k]->nrr && !t->done;
		     i++) {
			const tlspool_rr *rr = &x[k]->rr[i];
			int fd;

			if (rr->rdlen != (k == 0 ? 4u : 16u))
				continue;
			inet_ntop(k ? AF_INET6 : AF_INET, rr->rdata, text,
			          sizeof(text));
			fd = connect_addr(h, k, rr->rdata);
			if (fd < 0) {
				snprintf(why, sizeof(why), "connect: %s",
				         strerror(errno));
				note_attempt(t, text, why, "connection",
				             EXIT_CONNECT);
				t->rc = worse(t->rc, EXIT_CONNECT);
				continue;
			}
			try_fd(t, fd, text);
		}
}

/* --json, when no host authenticated: the destination as --lookup shows
 * it, with the attempts, on standard error. */
static void failure_json(const struct attempt *t)
{
	json_object *doc = dest_json(t->d);

	json_object_object_add(doc, "attempts", json_object_get(t->attempts));
	json_object_object_add(doc, "exit_code", json_object_new_int(t->rc));
	fprintf(stderr, "%s\n",
	        json_object_to_json_string_ext(
	                doc, JSON_C_TO_STRING_PRETTY |
	                             JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(doc);
}

int run_dest_client(const struct options *o)
{
	struct attempt t = {o, NULL, NULL, EXIT_OK, 0, NULL};
	tlspool_dest *d;

	signal(SIGPIPE, SIG_IGN);
	d = resolve(o);
	if (d == NULL)
		return errno == EINVAL ? EXIT_USAGE : EXIT_DNS;
	t.d = d;
	if (o->json)
		t.attempts = json_object_new_array();
	if (d->verdict != TLSPOOL_DEST_SECURE &&
	    d->verdict != TLSPOOL_DEST_IMPLICIT) {
		t.rc = dest_exit(d);
		fprintf(stderr, "%s: %s%s\n", progname, d->reason,
		        t.rc == EXIT_NO_DANE ? " (no DANE)" : "");
		goto out;
	}
	for (size_t i = 0; i < d->nhosts && !t.done; i++) {
		const tlspool_dest_host *h = &d->hosts[i];

		if (h->verdict != TLSPOOL_HOST_DANE) {
			/* a host DANE does not authenticate is not used */
			fprintf(stderr, "%s: %s: skipped: %s\n", progname,
			        h->name, h->reason);
			t.rc = worse(t.rc, h->verdict == TLSPOOL_HOST_DNS_ERROR
			                           ? EXIT_DNS
			                   : h->verdict == TLSPOOL_HOST_UNUSABLE
			                           ? EXIT_AUTH
			                           : EXIT_NO_DANE);
			continue;
		}
		t.h = h;
		try_host(&t);
	}
	if (!t.done && t.rc == EXIT_OK)
		t.rc = EXIT_NO_DANE; /* no hosts at all */
	if (!t.done)
		fprintf(stderr, "%s: %s: no %s host could be used%s\n",
		        progname, d->domain, d->srv ? "SRV" : "MX",
		        t.rc == EXIT_NO_DANE ? " (no DANE)" : "");
out:
	if (!t.done && o->json)
		failure_json(&t);
	json_object_put(t.attempts);
	tlspool_dest_free(d);
	return t.rc;
}
