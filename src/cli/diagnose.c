/*
 * tlspool-connect --diagnose and --json for connections: the validation
 * trace of the last starttls call (starttls_last_trace()), on stderr,
 * since stdout carries the connection's data.
 *
 * Text: the peer's certificates (depth, subject, issuer, dates, SPKI
 * digest), the TLSA lookup as --lookup prints it, each record with what
 * became of it and why, and the verdict.  JSON: the same as one document.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void hex(char *out, const unsigned char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		sprintf(out + 2 * i, "%02X", p[i]);
	out[2 * len] = '\0';
}

static void chain_text(FILE *fp, const starttls_trace *t)
{
	size_t i;

	for (i = 0; i < t->nchain; i++) {
		tlspool_x509_info x;
		char nb[32], na[32], spki[65];

		if (tlspool_x509_describe(&t->chain[i], &x) != 0) {
			fprintf(fp, "; cert    depth %zu: unparsable\n", i);
			continue;
		}
		iso_time(nb, sizeof(nb), x.not_before);
		iso_time(na, sizeof(na), x.not_after);
		hex(spki, x.spki_sha256, sizeof(x.spki_sha256));
		fprintf(fp, "; cert    depth %zu: subject \"%s\"\n", i,
		        x.subject);
		fprintf(fp, ";           issuer \"%s\"%s\n", x.issuer,
		        x.self_issued ? " (self-issued)" : "");
		fprintf(fp, ";           valid %s .. %s\n", nb, na);
		fprintf(fp, ";           SPKI SHA2-256 %s\n", spki);
	}
}

static void steps_text(FILE *fp, const tlspool_dane_result *r)
{
	size_t i;

	for (i = 0; i < r->nsteps; i++) {
		const tlspool_dane_step *s = &r->steps[i];

		fprintf(fp, "; record  %zu: %u %u %u (%s): %s", s->index + 1,
		        s->usage, s->selector, s->mtype,
		        tlspool_dane_usage_name(s->usage),
		        tlspool_dane_outcome_name(s->outcome));
		if (s->depth >= 0)
			fprintf(fp, " at depth %d", s->depth);
		fprintf(fp, "%s%s\n", s->reason[0] ? ": " : "", s->reason);
	}
	fprintf(fp, "; dane    %s: %s\n", tlspool_dane_verdict_name(r->verdict),
	        r->reason);
}

/* A user peer: what the OPENPGPKEY matcher made of each record. */
static void openpgp_text(FILE *fp, const tlspool_openpgp_result *r)
{
	size_t i;

	for (i = 0; i < r->nsteps; i++)
		fprintf(fp, "; openpgp record %zu: %s: %s\n",
		        r->steps[i].index + 1,
		        r->steps[i].matched ? "matched" : "no match",
		        r->steps[i].reason);
	fprintf(fp, "; openpgp %s: %s\n", tlspool_dane_verdict_name(r->verdict),
	        r->reason);
}

static json_object *openpgp_result_json(const tlspool_openpgp_result *r)
{
	json_object *o = json_object_new_object(), *a = json_object_new_array();
	size_t i;

	for (i = 0; i < r->nsteps; i++) {
		json_object *j = json_object_new_object();

		/* numbered from 1, as --diagnose and --lookup number them */
		json_object_object_add(
		        j, "record",
		        json_object_new_int((int)r->steps[i].index + 1));
		json_object_object_add(
		        j, "matched",
		        json_object_new_boolean(r->steps[i].matched));
		json_object_object_add(
		        j, "reason",
		        json_object_new_string(r->steps[i].reason));
		json_object_array_add(a, j);
	}
	json_object_object_add(o, "records", a);
	json_object_object_add(
	        o, "verdict",
	        json_object_new_string(tlspool_dane_verdict_name(r->verdict)));
	json_object_object_add(o, "reason", json_object_new_string(r->reason));
	if (r->matched >= 0) {
		json_object_object_add(
		        o, "fingerprint",
		        hex_string(r->fingerprint, r->fingerprint_len));
		json_object_object_add(o, "uid",
		                       json_object_new_string(r->uid));
	}
	return o;
}

/* --- the --starttls dialogue (cli_prelude) --- */

/* Each line of a report field, with a label. */
static void prelude_lines(FILE *fp, const char *label, const char *s)
{
	while (*s != '\0') {
		size_t n = strcspn(s, "\n");

		fprintf(fp, "; %-11s %.*s\n", label, (int)n, s);
		s += n;
		if (*s == '\n')
			s++;
	}
}

static void prelude_text(FILE *fp, const starttls_prelude *p)
{
	fprintf(fp, "; starttls    %s, step %s\n", p->protocol, p->step);
	prelude_lines(fp, "greeting", p->greeting);
	prelude_lines(fp, "hello", p->hello);
	prelude_lines(fp, "capability", p->capabilities);
	prelude_lines(fp, "request", p->request);
	prelude_lines(fp, "reply", p->reply);
}

static json_object *prelude_json(const starttls_prelude *p)
{
	json_object *j = json_object_new_object();
	json_object *caps = json_object_new_array();
	const char *s = p->capabilities;

	while (*s != '\0') {
		size_t n = strcspn(s, "\n");

		json_object_array_add(caps,
		                      json_object_new_string_len(s, (int)n));
		s += n;
		if (*s == '\n')
			s++;
	}
	json_object_object_add(j, "protocol",
	                       json_object_new_string(p->protocol));
	json_object_object_add(j, "step", json_object_new_string(p->step));
	json_object_object_add(j, "greeting",
	                       json_object_new_string(p->greeting));
	json_object_object_add(j, "hello", json_object_new_string(p->hello));
	json_object_object_add(j, "capabilities", caps);
	json_object_object_add(j, "request",
	                       json_object_new_string(p->request));
	json_object_object_add(j, "reply", json_object_new_string(p->reply));
	return j;
}

const char *end_kind_name(starttls_end_kind kind)
{
	switch (kind) {
	case STARTTLS_END_OPEN:
		return "open";
	case STARTTLS_END_CLOSE_NOTIFY:
		return "close_notify";
	case STARTTLS_END_TRUNCATED:
		return "truncated";
	case STARTTLS_END_ALERT:
		return "alert";
	case STARTTLS_END_IDLE:
		return "idle";
	case STARTTLS_END_ERROR:
		return "error";
	}
	return "unknown";
}

static json_object *end_json(const struct conn_end *e)
{
	json_object *j = json_object_new_object();

	json_object_object_add(j, "kind", json_object_new_string(e->kind));
	json_object_object_add(j, "alert",
	                       e->info.kind == STARTTLS_END_ALERT
	                               ? json_object_new_int(e->info.alert)
	                               : NULL);
	json_object_object_add(j, "bytes_in",
	                       json_object_new_uint64(e->info.bytes_in));
	json_object_object_add(j, "bytes_out",
	                       json_object_new_uint64(e->info.bytes_out));
	json_object_object_add(j, "detail",
	                       json_object_new_string(e->info.detail));
	return j;
}

/* The peer's certificates, as the trace keeps them; with pem, each in
 * PEM too (--show-certs). */
static json_object *chain_json(const starttls_trace *t, int pem)
{
	json_object *chain = json_object_new_array();
	size_t i;

	for (i = 0; i < t->nchain; i++) {
		json_object *c = json_object_new_object();
		tlspool_x509_info x;
		char when[32];

		json_object_object_add(c, "depth", json_object_new_int((int)i));
		if (tlspool_x509_describe(&t->chain[i], &x) == 0) {
			json_object_object_add(
			        c, "subject",
			        json_object_new_string(x.subject));
			json_object_object_add(
			        c, "issuer", json_object_new_string(x.issuer));
			iso_time(when, sizeof(when), x.not_before);
			json_object_object_add(c, "not_before",
			                       json_object_new_string(when));
			iso_time(when, sizeof(when), x.not_after);
			json_object_object_add(c, "not_after",
			                       json_object_new_string(when));
			json_object_object_add(c, "spki_sha256",
			                       hex_string(x.spki_sha256, 32));
		}
		if (pem) {
			char *p = cert_pem(&t->chain[i]);

			json_object_object_add(
			        c, "pem", p ? json_object_new_string(p) : NULL);
			free(p);
		}
		json_object_array_add(chain, c);
	}
	return chain;
}

/* What became of each record in the DANE matcher. */
static json_object *steps_json(const tlspool_dane_result *dane)
{
	json_object *steps = json_object_new_array();
	size_t i;

	for (i = 0; i < dane->nsteps; i++) {
		const tlspool_dane_step *s = &dane->steps[i];
		json_object *j = json_object_new_object();

		json_object_object_add(j, "record",
		                       json_object_new_int((int)s->index + 1));
		json_object_object_add(j, "usage",
		                       json_object_new_int(s->usage));
		json_object_object_add(j, "selector",
		                       json_object_new_int(s->selector));
		json_object_object_add(j, "matching_type",
		                       json_object_new_int(s->mtype));
		json_object_object_add(
		        j, "outcome",
		        json_object_new_string(
		                tlspool_dane_outcome_name(s->outcome)));
		json_object_object_add(j, "depth",
		                       json_object_new_int(s->depth));
		json_object_object_add(j, "reason",
		                       json_object_new_string(s->reason));
		json_object_array_add(steps, j);
	}
	return steps;
}

/* The validation's verdict and reason into doc. */
static void verdict_json(json_object *doc, const starttls_trace *t,
                         int exit_code)
{
	const char *v;

	if (t->dane == NULL && t->openpgp != NULL) {
		v = tlspool_dane_verdict_name(t->openpgp->verdict);
		json_object_object_add(
		        doc, "reason",
		        json_object_new_string(t->openpgp->reason));
	} else if (t->dane != NULL) {
		json_object_object_add(doc, "records", steps_json(t->dane));
		v = tlspool_dane_verdict_name(t->dane->verdict);
		json_object_object_add(doc, "reason",
		                       json_object_new_string(t->dane->reason));
	} else {
		/* no matcher: the DNS failed, the peer stayed anonymous, or
		 * the call failed before validation */
		v = t->from_cache
		            ? (exit_code == 0 ? "cached" : "cached-failure")
		    : t->dns != NULL && tlspool_dns_verdict_is_error(
		                                t->dns->verdict)
		            ? "dns-error"
		    : exit_code == 0 ? "anonymous"
		                     : "not-validated";
	}
	json_object_object_add(doc, "verdict", json_object_new_string(v));
}

static json_object *str_or_null(const char *s)
{
	return s != NULL ? json_object_new_string(s) : NULL;
}

/* What the handshake agreed on; null members where it did not finish. */
static json_object *tls_json(const starttls_trace *t)
{
	json_object *j = json_object_new_object();

	json_object_object_add(j, "version", str_or_null(t->tls_version));
	json_object_object_add(j, "cipher_suite", str_or_null(t->cipher_suite));
	json_object_object_add(j, "alpn", str_or_null(t->alpn));
	json_object_object_add(j, "sni", str_or_null(t->sni));
	json_object_object_add(j, "handshake_ms",
	                       t->handshake_ms >= 0
	                               ? json_object_new_int64(t->handshake_ms)
	                               : NULL);
	json_object_object_add(j, "validation_ms",
	                       t->validation_ms >= 0
	                               ? json_object_new_int64(t->validation_ms)
	                               : NULL);
	return j;
}

static json_object *trace_json(const struct options *o, const starttls_trace *t,
                               const char *peer, int exit_code,
                               const struct conn_end *end)
{
	json_object *doc = json_object_new_object();

	json_object_object_add(doc, "peer", json_object_new_string(peer));
	if (cli_prelude != NULL)
		json_object_object_add(doc, "starttls",
		                       prelude_json(cli_prelude));
	json_object_object_add(doc, "tls", tls_json(t));
	json_object_object_add(doc, "chain", chain_json(t, o->show_certs));
	/* with its "validation_chain" when the lookup returned one (the
	 * resolver of the call's context, main.c) */
	if (t->dns != NULL)
		json_object_object_add(doc, "dns", answer_json(t->dns));
	if (t->openpgp != NULL)
		json_object_object_add(doc, "openpgp",
		                       openpgp_result_json(t->openpgp));
	verdict_json(doc, t, exit_code);
	if (t->ldap != NULL) {
		json_object_object_add(doc, "ldap", ldap_step_json(t->ldap));
		if (t->ldap->verdict == STARTTLS_LDAP_MATCHED) {
			json_object_object_add(
			        doc, "verdict",
			        json_object_new_string("authenticated"));
			json_object_object_add(
			        doc, "reason",
			        json_object_new_string(t->ldap->reason));
		}
	}
	json_object_object_add(doc, "from_cache",
	                       json_object_new_boolean(t->from_cache));
	/* the class of the starttls call's failure, "ok" after success */
	json_object_object_add(doc, "class",
	                       json_object_new_string(starttls_class_name(
	                               starttls_errclass())));
	json_object_object_add(
	        doc, "error",
	        json_object_new_string(
	                starttls_errclass() != STARTTLS_OK ? starttls_errstr()
	                : end != NULL && exit_code != 0    ? end->msg
	                                                   : ""));
	if (end != NULL)
		json_object_object_add(doc, "end", end_json(end));
	return doc;
}

/* The document gets the trace, with how the connection ended. */
void print_trace_end(const struct options *o, const char *peer, int exit_code,
                     const struct conn_end *end)
{
	if (out_json())
		out_merge(trace_json(o, starttls_last_trace(), peer, exit_code,
		                     end));
}

static void tls_text(FILE *fp, const starttls_trace *t)
{
	if (t->tls_version == NULL)
		return;
	fprintf(fp, "; tls     %s %s, ALPN %s, SNI %s\n", t->tls_version,
	        t->cipher_suite ? t->cipher_suite : "(unknown cipher suite)",
	        t->alpn ? t->alpn : "none", t->sni ? t->sni : "none");
	fprintf(fp, "; time    handshake %ld ms, validation %ld ms\n",
	        t->handshake_ms, t->validation_ms);
}

/* --show-certs as text: the peer's chain in PEM, on stderr. */
static void pem_text(FILE *fp, const starttls_trace *t)
{
	size_t i;

	for (i = 0; i < t->nchain; i++) {
		char *p = cert_pem(&t->chain[i]);

		if (p != NULL)
			fprintf(fp, "; depth %zu\n%s", i, p);
		free(p);
	}
}

void print_trace(const struct options *o, const char *peer, int exit_code)
{
	const starttls_trace *t = starttls_last_trace();

	if (out_json()) {
		out_merge(trace_json(o, t, peer, exit_code, NULL));
		return;
	}
	if (o->show_certs)
		pem_text(stderr, t);
	if (!o->diagnose) {
		if (o->verbose && t->dns != NULL)
			note("dns", "%s %s: %s, %zu records", t->dns->qname,
			     tlspool_rr_type_name(t->dns->qtype),
			     tlspool_dns_verdict_name(t->dns->verdict),
			     t->dns->nrr);
		if (o->verbose && t->tls_version != NULL)
			note("tls",
			     "%s %s, handshake %ld ms, validation %ld ms",
			     t->tls_version,
			     t->cipher_suite ? t->cipher_suite : "",
			     t->handshake_ms, t->validation_ms);
		return;
	}
	fprintf(stderr, "; diagnosis of the peer\n");
	if (cli_prelude != NULL)
		prelude_text(stderr, cli_prelude);
	tls_text(stderr, t);
	chain_text(stderr, t);
	if (t->from_cache)
		fprintf(stderr,
		        "; cache   %s TLSA: %s from the validation "
		        "cache, no lookup was made\n",
		        t->owner ? t->owner : "",
		        exit_code == 0 ? "authenticated" : "a cached failure");
	else if (t->dns != NULL)
		print_answer_text(stderr, t->dns);
	else if (t->nchain > 0)
		fprintf(stderr, "; no TLSA lookup was made\n");
	if (t->openpgp != NULL)
		openpgp_text(stderr, t->openpgp);
	if (t->dane != NULL)
		steps_text(stderr, t->dane);
	if (t->ldap != NULL)
		print_ldap_step_text(stderr, t->ldap);
}
