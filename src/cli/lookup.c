/*
 * tlspool-connect --lookup: the DNS side of a DANE diagnosis.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

void iso_time(char *buf, size_t len, time_t t)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* What a verdict means for someone who wants to authenticate a peer:
 * the library's words (one table for the library and the CLI), or the
 * detail of a failure. */
static const char *verdict_text(const tlspool_dns_answer *a)
{
	if (tlspool_dns_verdict_is_error(a->verdict) && a->detail[0] != '\0')
		return a->detail;
	return tlspool_dns_verdict_text(a->verdict);
}

static int exit_for(const tlspool_dns_answer *a)
{
	if (a->verdict == TLSPOOL_DNS_SECURE && a->nrr > 0)
		return EXIT_OK;
	if (tlspool_dns_verdict_is_error(a->verdict))
		return EXIT_DNS;
	return EXIT_AUTH;
}

/*
 * One record in zone-file form, in memory of the size it needs (an
 * OPENPGPKEY or a TLSA record with a full certificate can take 64 KiB of
 * rdata, which base64 or hex makes larger still); NULL when out of memory
 * or malformed beyond printing.  free() it.
 */
static char *format_rr(const char *owner, const tlspool_rr *rr)
{
	size_t len = 512;

	for (;;) {
		char *buf = malloc(len);

		if (buf == NULL)
			return NULL;
		if (tlspool_rr_format(buf, len, owner, rr) >= 0)
			return buf;
		free(buf);
		if (errno != ENOSPC || len > ((size_t)1 << 24))
			return NULL;
		len *= 2;
	}
}

void print_answer_text(FILE *fp, const tlspool_dns_answer *a)
{
	char when[32], *line;
	size_t i;

	fprintf(fp, "; query   %s %s\n", a->qname,
	        tlspool_rr_type_name(a->qtype));
	for (i = 0; i < a->ncname; i++)
		fprintf(fp, "; cname   %s -> %s\n",
		        i == 0 ? a->qname : a->cname[i - 1], a->cname[i]);
	fprintf(fp, "; verdict %s: %s\n", tlspool_dns_verdict_name(a->verdict),
	        verdict_text(a));
	if (a->ttl != 0)
		fprintf(fp, "; ttl     %u\n", (unsigned)a->ttl);
	if (a->rrsig_expiration != 0) {
		iso_time(when, sizeof(when), a->rrsig_expiration);
		fprintf(fp, "; rrsig   earliest expiration %s\n", when);
	}
	for (i = 0; i < a->nchain; i++)
		fprintf(fp, "; chain   %s\n", a->chain[i]);
	for (i = 0; i < a->nrr; i++) {
		line = format_rr(a->owner, &a->rr[i]);
		if (line != NULL)
			fprintf(fp, "%s\n", line);
		else
			fprintf(fp, "; record  %zu: cannot be printed: %s\n",
			        i + 1, strerror(errno));
		free(line);
		if (a->qtype == TLSPOOL_RR_OPENPGPKEY)
			print_openpgp_text(fp, &a->rr[i]);
	}
}

json_object *hex_string(const unsigned char *p, size_t len)
{
	char *s = malloc(2 * len + 1);
	json_object *o;
	size_t i;

	if (s == NULL)
		return NULL;
	for (i = 0; i < len; i++)
		snprintf(s + 2 * i, 3, "%02X", p[i]);
	s[2 * len] = '\0';
	o = json_object_new_string(s);
	free(s);
	return o;
}

json_object *answer_json(const tlspool_dns_answer *a)
{
	json_object *doc = json_object_new_object();
	json_object *chain = json_object_new_array();
	json_object *recs = json_object_new_array();
	char when[32], *line;
	size_t i;

	json_object_object_add(doc, "query", json_object_new_string(a->qname));
	json_object_object_add(
	        doc, "type",
	        json_object_new_string(tlspool_rr_type_name(a->qtype)));
	json_object_object_add(
	        doc, "verdict",
	        json_object_new_string(tlspool_dns_verdict_name(a->verdict)));
	json_object_object_add(doc, "explanation",
	                       json_object_new_string(verdict_text(a)));
	for (i = 0; i < a->ncname; i++)
		json_object_array_add(chain,
		                      json_object_new_string(a->cname[i]));
	json_object_object_add(doc, "cname_chain", chain);
	json_object_object_add(doc, "owner", json_object_new_string(a->owner));
	json_object_object_add(doc, "ttl", json_object_new_int64(a->ttl));
	if (a->rrsig_expiration != 0) {
		iso_time(when, sizeof(when), a->rrsig_expiration);
		json_object_object_add(doc, "rrsig_expiration",
		                       json_object_new_string(when));
	}
	for (i = 0; i < a->nrr; i++) {
		json_object *r = json_object_new_object();
		tlspool_tlsa t;

		line = format_rr(a->owner, &a->rr[i]);
		if (line != NULL)
			json_object_object_add(r, "text",
			                       json_object_new_string(line));
		free(line);
		if ((a->qtype == TLSPOOL_RR_TLSA ||
		     a->qtype == TLSPOOL_RR_SMIMEA) &&
		    tlspool_tlsa_parse(a->rr[i].rdata, a->rr[i].rdlen, &t) ==
		            0) {
			json_object_object_add(r, "usage",
			                       json_object_new_int(t.usage));
			json_object_object_add(r, "selector",
			                       json_object_new_int(t.selector));
			json_object_object_add(r, "matching_type",
			                       json_object_new_int(t.mtype));
			json_object_object_add(r, "data",
			                       hex_string(t.data, t.len));
		} else {
			json_object_object_add(
			        r, "rdata",
			        hex_string(a->rr[i].rdata, a->rr[i].rdlen));
		}
		if (a->qtype == TLSPOOL_RR_OPENPGPKEY)
			json_object_object_add(r, "openpgp",
			                       openpgp_json(&a->rr[i]));
		json_object_array_add(recs, r);
	}
	json_object_object_add(doc, "records", recs);
	if (a->nchain > 0) {
		json_object *vc = json_object_new_array();

		for (i = 0; i < a->nchain; i++)
			json_object_array_add(
			        vc, json_object_new_string(a->chain[i]));
		json_object_object_add(doc, "validation_chain", vc);
	}
	return doc;
}

/* One line on stderr that says what failed, for scripts and logs, in
 * the words the library uses for the same answer. */
static void print_failure(const struct options *o, const tlspool_dns_answer *a)
{
	char line[600];

	fflush(stdout); /* keep the transcript in order on a terminal */
	tlspool_dns_answer_explain(a, line, sizeof(line));
	say("%s", line);
	if (o->port != NULL && strcmp(o->port, "25") == 0 &&
	    a->qtype == TLSPOOL_RR_TLSA && o->name[0] != '_' &&
	    !tlspool_dns_verdict_is_error(a->verdict))
		/* RFC 7672 section 2.2: a mail domain's TLSA records are at
		 * its MX hosts, not at the domain */
		hint("for SMTP the TLSA records are at the MX hosts (RFC "
		     "7672): --lookup --mx %s",
		     o->name);
	else if (a->verdict == TLSPOOL_DNS_TIMEOUT)
		hint("check that the [dns] upstream answers, or raise [dns] "
		     "timeout_ms");
	else if (!tlspool_dns_verdict_is_error(a->verdict))
		hint("publish the records in a DNSSEC-signed zone: "
		     "%s --records-for FILE NAME PORT prints them for a "
		     "certificate or key",
		     progname);
}

int run_lookup(const struct options *o)
{
	char err[512], owner[256];
	tlspool_dns_config *cfg;
	tlspool_dns *dns;
	tlspool_dns_answer *ans;
	uint16_t type = TLSPOOL_RR_TLSA;
	long long t0;
	int rc, own = 1;

	if (strchr(o->name, '@') != NULL) {
		if (o->port != NULL)
			return usage_error("%s: a user identity takes no PORT",
			                   o->name);
		type = o->smimea ? TLSPOOL_RR_SMIMEA : TLSPOOL_RR_OPENPGPKEY;
		if (tlspool_user_owner(owner, sizeof(owner), type, o->name) < 0)
			return usage_error("%s: not a user@domain identity",
			                   o->name);
	} else if (o->name[0] == '_') {
		/* Already an owner name: ask for it as it is. */
		if (o->port != NULL || tlspool_check_domain(o->name, 1) != 0 ||
		    strlen(o->name) >= sizeof(owner))
			return usage_error("%s: not an owner name", o->name);
		strcpy(owner, o->name);
	} else {
		/* main() checked PORT: decimal 1..65535 */
		unsigned long port =
		        o->port != NULL ? strtoul(o->port, NULL, 10) : 443;

		if (o->smimea)
			return usage_error("%s: --smimea needs USER@DOMAIN",
			                   o->name);
		if (tlspool_tlsa_owner(owner, sizeof(owner), (unsigned)port,
		                       o->proto, o->name) < 0)
			return usage_error("%s: not a host name", o->name);
	}
	/* with quick flags, the context's [dns] (overrides.c) */
	dns = o->quick.any && o->ctx != NULL ? starttls_ctx_resolver(o->ctx)
	                                     : NULL;
	if (dns != NULL) {
		own = 0;
	} else if (o->quick.any && o->ctx != NULL) {
		say("%s", starttls_errstr());
		return EXIT_USAGE;
	} else if ((cfg = tlspool_dns_config_load(o->config, err,
	                                          sizeof(err))) == NULL) {
		say("%s", err);
		return EXIT_USAGE;
	} else {
		dns = tlspool_dns_new(cfg, err, sizeof(err));
		tlspool_dns_config_free(cfg);
	}
	if (dns == NULL) {
		say("%s", err);
		return EXIT_USAGE;
	}
	/* the proof of the answer, for a document or -v */
	if ((o->json || o->verbose) && tlspool_dns_return_chain(dns, 1) != 0) {
		say("%s", strerror(errno));
		if (own)
			tlspool_dns_free(dns);
		return EXIT_USAGE;
	}
	t0 = now_ms();
	note("dns", "looking up %s %s", owner, tlspool_rr_type_name(type));
	if (tlspool_dns_lookup(dns, owner, type, &ans, err, sizeof(err)) != 0) {
		say("%s", err);
		if (own)
			tlspool_dns_free(dns);
		return errno == EINVAL ? EXIT_USAGE : EXIT_DNS;
	}
	note("dns", "%s %s: %s in %lld ms", owner, tlspool_rr_type_name(type),
	     tlspool_dns_verdict_name(ans->verdict), now_ms() - t0);
	if (o->json)
		out_merge(answer_json(ans));
	else
		print_answer_text(stdout, ans);
	rc = exit_for(ans);
	if (rc != EXIT_OK)
		print_failure(o, ans);
	tlspool_dns_answer_free(ans);
	if (own)
		tlspool_dns_free(dns);
	return rc;
}
