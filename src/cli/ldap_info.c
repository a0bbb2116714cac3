/*
 * tlspool-connect --lookup --ldap IDENTITY, and the LDAP step of
 * --diagnose: the directory's SRV answer, where it was reached, its TLSA
 * answer and the DANE matcher's verdict on its certificate, the search,
 * and what the entry holds (certificates with their subject and SPKI
 * digest, OpenPGP keys as --lookup shows OPENPGPKEY records), as
 * zone-file comments or JSON.  The step comes from starttls_ldap_lookup()
 * or the trace (starttls_client(3), "The LDAP step").
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void dane_text(FILE *fp, const tlspool_dane_result *r)
{
	size_t i;

	for (i = 0; i < r->nsteps; i++) {
		const tlspool_dane_step *d = &r->steps[i];

		fprintf(fp, "; record  %zu: %u %u %u (%s): %s%s%s\n",
		        d->index + 1, d->usage, d->selector, d->mtype,
		        tlspool_dane_usage_name(d->usage),
		        tlspool_dane_outcome_name(d->outcome),
		        d->reason[0] ? ": " : "", d->reason);
	}
	fprintf(fp, "; dane    %s: %s\n", tlspool_dane_verdict_name(r->verdict),
	        r->reason);
}

/* A value as an OPENPGPKEY record, for openpgp_info.c. */
static tlspool_rr pgp_rr(const starttls_ldap_value *v)
{
	tlspool_rr rr;

	rr.type = TLSPOOL_RR_OPENPGPKEY;
	rr.ttl = 0;
	rr.rdlen = v->data.len;
	rr.rdata = (unsigned char *)v->data.data;
	return rr;
}

void print_ldap_step_text(FILE *fp, const starttls_ldap_step *s)
{
	size_t i;

	fprintf(fp, "; ldap    %s\n", s->identity);
	if (s->from_cache) {
		fprintf(fp, "; ldap    %s: %s\n",
		        starttls_ldap_verdict_name(s->verdict), s->reason);
		return;
	}
	if (s->srv != NULL)
		print_answer_text(fp, s->srv);
	if (s->host[0] != '\0')
		fprintf(fp, "; server  %s port %u (%s)%s%s\n", s->host, s->port,
		        s->ldaps ? "ldaps" : "StartTLS",
		        s->address[0] ? ", reached at " : ", not reached",
		        s->address);
	if (s->tlsa != NULL)
		print_answer_text(fp, s->tlsa);
	if (s->dane != NULL)
		dane_text(fp, s->dane);
	if (s->dn[0] != '\0' || s->address[0] != '\0')
		fprintf(fp, "; search  base \"%s\" filter %s\n", s->base,
		        s->filter);
	if (s->dn[0] != '\0')
		fprintf(fp, "; entry   %s\n", s->dn);
	for (i = 0; i < s->nvalues; i++) {
		const starttls_ldap_value *v = &s->values[i];
		tlspool_x509_info x;

		if (!v->pgp && tlspool_x509_describe(&v->data, &x) == 0) {
			fprintf(fp,
			        "; value   %zu: userCertificate;binary subject "
			        "\"%s\"\n",
			        i + 1, x.subject);
			fprintf(fp, ";           SPKI SHA2-256 ");
			for (size_t k = 0; k < sizeof(x.spki_sha256); k++)
				fprintf(fp, "%02X", x.spki_sha256[k]);
			fputc('\n', fp);
		} else if (!v->pgp) {
			fprintf(fp,
			        "; value   %zu: userCertificate;binary, "
			        "unparsable\n",
			        i + 1);
		} else {
			tlspool_rr rr = pgp_rr(v);

			fprintf(fp, "; value   %zu: pgpKey%s\n", i + 1,
			        v->armored ? " (armored)" : "");
			if (v->reason[0] == '\0' || v->matched ||
			    strncmp(v->reason, "not an OpenPGP", 14) != 0)
				print_openpgp_text(fp, &rr);
		}
		if (v->reason[0] != '\0')
			fprintf(fp, ";           %s: %s\n",
			        v->matched ? "matched" : "no match", v->reason);
	}
	fprintf(fp, "; ldap    %s: %s\n",
	        starttls_ldap_verdict_name(s->verdict), s->reason);
}

static json_object *dane_json(const tlspool_dane_result *r)
{
	json_object *o = json_object_new_object(), *a = json_object_new_array();
	size_t i;

	for (i = 0; i < r->nsteps; i++) {
		const tlspool_dane_step *d = &r->steps[i];
		json_object *j = json_object_new_object();

		json_object_object_add(j, "record",
		                       json_object_new_int((int)d->index + 1));
		json_object_object_add(j, "usage",
		                       json_object_new_int(d->usage));
		json_object_object_add(j, "selector",
		                       json_object_new_int(d->selector));
		json_object_object_add(j, "matching_type",
		                       json_object_new_int(d->mtype));
		json_object_object_add(
		        j, "outcome",
		        json_object_new_string(
		                tlspool_dane_outcome_name(d->outcome)));
		json_object_object_add(j, "reason",
		                       json_object_new_string(d->reason));
		json_object_array_add(a, j);
	}
	json_object_object_add(o, "records", a);
	json_object_object_add(
	        o, "verdict",
	        json_object_new_string(tlspool_dane_verdict_name(r->verdict)));
	json_object_object_add(o, "reason", json_object_new_string(r->reason));
	return o;
}

json_object *ldap_step_json(const starttls_ldap_step *s)
{
	json_object *o = json_object_new_object(), *vals;
	size_t i;

	json_object_object_add(o, "identity",
	                       json_object_new_string(s->identity));
	json_object_object_add(
	        o, "verdict",
	        json_object_new_string(starttls_ldap_verdict_name(s->verdict)));
	json_object_object_add(o, "reason", json_object_new_string(s->reason));
	json_object_object_add(o, "from_cache",
	                       json_object_new_boolean(s->from_cache));
	if (s->from_cache)
		return o;
	if (s->srv != NULL)
		json_object_object_add(o, "srv", answer_json(s->srv));
	if (s->host[0] != '\0') {
		json_object *d = json_object_new_object();

		json_object_object_add(d, "host",
		                       json_object_new_string(s->host));
		json_object_object_add(d, "port",
		                       json_object_new_int((int)s->port));
		json_object_object_add(
		        d, "tls",
		        json_object_new_string(s->ldaps ? "ldaps"
		                                        : "starttls"));
		json_object_object_add(d, "address",
		                       json_object_new_string(s->address));
		if (s->tlsa != NULL)
			json_object_object_add(d, "tlsa", answer_json(s->tlsa));
		if (s->dane != NULL)
			json_object_object_add(d, "dane", dane_json(s->dane));
		json_object_object_add(o, "directory", d);
	}
	json_object_object_add(o, "base", json_object_new_string(s->base));
	json_object_object_add(o, "filter", json_object_new_string(s->filter));
	json_object_object_add(o, "entry", json_object_new_string(s->dn));
	vals = json_object_new_array();
	for (i = 0; i < s->nvalues; i++) {
		const starttls_ldap_value *v = &s->values[i];
		json_object *j = json_object_new_object();
		tlspool_x509_info x;

		json_object_object_add(
		        j, "attribute",
		        json_object_new_string(
		                v->pgp ? "pgpKey" : "userCertificate;binary"));
		json_object_object_add(j, "armored",
		                       json_object_new_boolean(v->armored));
		json_object_object_add(j, "matched",
		                       json_object_new_boolean(v->matched));
		json_object_object_add(j, "reason",
		                       json_object_new_string(v->reason));
		if (!v->pgp && tlspool_x509_describe(&v->data, &x) == 0) {
			json_object_object_add(
			        j, "subject",
			        json_object_new_string(x.subject));
			json_object_object_add(j, "spki_sha256",
			                       hex_string(x.spki_sha256, 32));
		} else if (v->pgp) {
			tlspool_rr rr = pgp_rr(v);

			json_object_object_add(j, "openpgp", openpgp_json(&rr));
		}
		json_object_array_add(vals, j);
	}
	json_object_object_add(o, "values", vals);
	return o;
}

int run_ldap_lookup(starttls_ctx *ctx, const char *identity, int json)
{
	starttls_ldap_step *s = starttls_ldap_lookup(ctx, identity);
	starttls_class cls;
	int rc;

	if (s == NULL) {
		say("%s", starttls_errstr());
		return EXIT_USAGE;
	}
	cls = s->verdict == STARTTLS_LDAP_READ ? STARTTLS_OK
	                                       : starttls_errclass();
	rc = cls == STARTTLS_OK ? EXIT_OK
	     : cls == STARTTLS_ERR_DNS_BOGUS ||
	                     cls == STARTTLS_ERR_DNS_FAILURE ||
	                     cls == STARTTLS_ERR_DNS_TIMEOUT
	             ? EXIT_DNS
	     : cls == STARTTLS_ERR_CONFIG || cls == STARTTLS_ERR_ARGUMENT
	             ? EXIT_USAGE
	             : EXIT_AUTH;
	if (json) {
		json_object *doc = ldap_step_json(s);

		json_object_object_add(
		        doc, "class",
		        json_object_new_string(starttls_class_name(cls)));
		out_merge(doc);
	} else {
		print_ldap_step_text(stdout, s);
	}
	if (rc != EXIT_OK)
		say("%s: LDAP: %s", identity, s->reason);
	starttls_ldap_step_free(s);
	return rc;
}
