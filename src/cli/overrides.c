/*
 * tlspool-connect: the quick flags (--cert, --key, --trust-anchor,
 * --upstream, --priority, --alpn, --timeout).  Each becomes a
 * "SECTION.KEY=VALUE" override of starttls_ctx_new_with(3), so that the
 * library checks it as a line of tlspool.conf: the same readers, the same
 * file rules for a key, the same ranges.
 */
#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *const qname[Q_N] = {
        "--cert",     "--key",  "--trust-anchor", "--upstream",
        "--priority", "--alpn", "--timeout",
};
/* where each is an option: 'c'lient, 's'erver, 'l'ookup */
static const char *const qmodes[Q_N] = {"cs", "cs", "csl", "csl",
                                        "cs", "cs", "csl"};
static int given[Q_N];

int quick_option(struct options *o, int q, const char *arg)
{
	struct quick *k = &o->quick;
	unsigned long v;
	char *end;

	if (arg[0] == '\0')
		return usage_error("%s: an empty value", qname[q]);
	switch (q) {
	case Q_CERT:
		k->cert = arg;
		break;
	case Q_KEY:
		k->key = arg;
		break;
	case Q_TRUST_ANCHOR:
		k->trust_anchor = arg;
		break;
	case Q_UPSTREAM:
		if (k->nupstream == QUICK_MAX_UPSTREAM)
			return usage_error("more than %d --upstream",
			                   QUICK_MAX_UPSTREAM);
		k->upstream[k->nupstream++] = arg;
		break;
	case Q_PRIORITY:
		k->priority = arg;
		break;
	case Q_ALPN:
		k->alpn = arg;
		break;
	default:
		errno = 0;
		v = strtoul(arg, &end, 10);
		if (arg[0] < '0' || arg[0] > '9' || errno || *end || v < 1 ||
		    v > 600000)
			return usage_error("--timeout: \"%s\" is not a number "
			                   "from 1 to 600000",
			                   arg);
		k->timeout_ms = (unsigned)v;
		break;
	}
	given[q] = 1;
	k->any = 1;
	return -1;
}

/* The identity a certificate file names (its first certificate): the
 * name of the identity the flags make.  0, or -1 after a message. */
static int cert_name(const char *file, char *name, size_t len)
{
	gnutls_datum_t pem = {NULL, 0}, der = {NULL, 0};
	gnutls_x509_crt_t crt = NULL;
	tlspool_span span;
	int r = -1;

	if (gnutls_load_file(file, &pem) < 0) {
		say("--cert %s: %s", file, strerror(errno ? errno : ENOENT));
		return -1;
	}
	if (gnutls_x509_crt_init(&crt) < 0 ||
	    gnutls_x509_crt_import(crt, &pem, GNUTLS_X509_FMT_PEM) < 0 ||
	    gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &der) < 0) {
		say("--cert %s: not a PEM certificate (chain)", file);
		goto out;
	}
	span.data = der.data;
	span.len = der.size;
	if (tlspool_x509_identity(&span, name, len) < 0) {
		say("--cert %s: the certificate names no domain or "
		    "user@domain identity",
		    file);
		hint("give --myname NAME");
		goto out;
	}
	r = 0;
out:
	gnutls_free(der.data);
	gnutls_free(pem.data);
	if (crt != NULL)
		gnutls_x509_crt_deinit(crt);
	return r;
}

/* The overrides of the flags, in ov (NULL-terminated, strings owned by
 * the caller's buf); 0, or the exit code after a message. */
static int build(struct options *o, char **ov, size_t nov, char *buf,
                 size_t buflen)
{
	static char myname[320];
	const struct quick *k = &o->quick;
	size_t n = 0, used = 0;
	int i;

#define ADD(...)                                                               \
	do {                                                                   \
		int w_ = snprintf(buf + used, buflen - used, __VA_ARGS__);     \
		if (w_ < 0 || (size_t)w_ >= buflen - used || n + 1 >= nov) {   \
			say("quick flags too long");                           \
			return EXIT_USAGE;                                     \
		}                                                              \
		ov[n++] = buf + used;                                          \
		used += (size_t)w_ + 1;                                        \
	} while (0)

	if (k->cert != NULL || k->key != NULL) {
		if (k->key == NULL)
			return usage_error("--cert needs --key");
		if (o->myname == NULL && k->cert == NULL)
			return usage_error("--key without --cert needs "
			                   "--myname (the certificate is "
			                   "then made on the fly)");
		if (o->myname == NULL) {
			if (cert_name(k->cert, myname, sizeof(myname)) != 0)
				return EXIT_USAGE;
			o->myname = myname;
		}
		if (k->cert != NULL)
			ADD("identity %s.certificate=%s", o->myname, k->cert);
		ADD("identity %s.key=%s", o->myname, k->key);
	}
	if (k->trust_anchor != NULL)
		ADD("dns.trust_anchor=%s", k->trust_anchor);
	for (i = 0; i < k->nupstream; i++)
		ADD("dns.upstream=%s", k->upstream[i]);
	if (k->priority != NULL)
		ADD("tls.priority=%s", k->priority);
	if (k->alpn != NULL)
		ADD("tls.alpn=%s", k->alpn);
	if (k->timeout_ms > 0) {
		ADD("dns.timeout_ms=%u", k->timeout_ms);
		ADD("tls.handshake_timeout_ms=%u", k->timeout_ms);
	}
	ov[n] = NULL;
	return 0;
#undef ADD
}

int quick_ctx(struct options *o)
{
	const char *pool = getenv("TLSPOOL_SOCKET");
	char buf[8192], *ov[32];
	int q, rc;

	for (q = 0; q < Q_N; q++)
		if (given[q] && strchr(qmodes[q], o->mode) == NULL)
			return usage_error("%s is not an option of --%s",
			                   qname[q],
			                   o->mode == 'l'   ? "lookup"
			                   : o->mode == 'L' ? "cache-list"
			                                    : "cache-flush");
	/* Through the pool the daemon holds the keys and its own
	 * configuration (tlspoold(8)): nothing here would reach it. */
	if (pool != NULL && pool[0] != '\0') {
		for (q = 0; q < Q_N; q++)
			if (given[q]) {
				say("%s: TLSPOOL_SOCKET is set, so "
				    "tlspoold(8) runs the call with its own "
				    "configuration and keys; quick flags "
				    "apply to calls run in this process",
				    qname[q]);
				hint("unset TLSPOOL_SOCKET, or configure the "
				     "daemon");
				return EXIT_USAGE;
			}
		if (o->config == NULL) {
			o->ctx = NULL;
			return 0;
		}
	}
	if (!o->quick.any) {
		o->ctx = starttls_ctx_new(o->config);
	} else {
		rc = build(o, ov, sizeof(ov) / sizeof(ov[0]), buf, sizeof(buf));
		if (rc != 0)
			return rc;
		o->ctx = starttls_ctx_new_with(o->config,
		                               (const char *const *)ov);
	}
	if (o->ctx != NULL)
		return 0;
	say("%s", starttls_errstr());
	hint("correct the file (tlspool.conf(5)) or the flag, or name "
	     "another file with --config FILE");
	return EXIT_USAGE;
}

int quick_identity(struct options *o)
{
	/* through the pool the daemon loads it; without a name a server
	 * takes the identity the client's SNI names; a client's is checked
	 * here when the flags made it */
	if (o->ctx == NULL || o->myname == NULL ||
	    (o->flags & STARTTLS_LOCALCERT_NONE) ||
	    (o->mode != 's' &&
	     (o->mode != 'c' || (!given[Q_CERT] && !given[Q_KEY]))))
		return 0;
	if (starttls_ctx_identity(o->ctx, o->myname) == 0)
		return 0;
	say("identity %s: %s", o->myname, starttls_errstr());
	hint("give --cert and --key, or an [identity %s] section in the "
	     "configuration",
	     o->myname);
	return EXIT_USAGE;
}
