/*
 * What an OPENPGPKEY record holds, for --lookup and --diagnose: the key's
 * fingerprint, algorithm, dates, key flags and User IDs, with what the
 * self-signature checks made of each (tlspool_openpgp_parse at the
 * current time), and the outcome of every signature.  As zone-file
 * comments in text, as fields in JSON.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static void flag_names(unsigned f, int has, char *buf, size_t len)
{
	static const struct {
		unsigned bit;
		const char *name;
	} names[] = {{TLSPOOL_OPENPGP_CERTIFY, "certify"},
	             {TLSPOOL_OPENPGP_SIGN, "sign"},
	             {TLSPOOL_OPENPGP_ENCRYPT_COMMS, "encrypt-comms"},
	             {TLSPOOL_OPENPGP_ENCRYPT_STORAGE, "encrypt-storage"},
	             {TLSPOOL_OPENPGP_AUTH, "auth"}};
	size_t i;

	snprintf(buf, len, "%s", has ? "" : "none");
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (f & names[i].bit)
			snprintf(buf + strlen(buf), len - strlen(buf), "%s%s",
			         buf[0] ? "," : "", names[i].name);
	if (buf[0] == '\0')
		snprintf(buf, len, "none");
}

static void fpr_hex(const tlspool_openpgp_keyinfo *k, char *buf)
{
	size_t i;

	buf[0] = '\0';
	for (i = 0; i < k->fingerprint_len; i++)
		sprintf(buf + 2 * i, "%02X", k->fingerprint[i]);
}

static void key_text(FILE *fp, const char *what,
                     const tlspool_openpgp_keyinfo *k)
{
	char fpr[65], flags[80], when[32], exp[32] = "never";

	fpr_hex(k, fpr);
	flag_names(k->flags, k->has_flags, flags, sizeof(flags));
	iso_time(when, sizeof(when), k->created);
	if (k->expires)
		iso_time(exp, sizeof(exp), k->expires);
	fprintf(fp, ";   %-7s %s v%d %s\n", what, fpr, k->version,
	        k->algorithm_name);
	fprintf(fp, ";           flags %s; created %s; expires %s; %s%s\n",
	        flags, when, exp, k->valid ? "valid" : "invalid: ", k->reason);
}

static const char *target_name(int t)
{
	return t == TLSPOOL_OPENPGP_ON_KEY         ? "key"
	       : t == TLSPOOL_OPENPGP_ON_UID       ? "uid"
	       : t == TLSPOOL_OPENPGP_ON_ATTRIBUTE ? "attribute"
	                                           : "subkey";
}

void print_openpgp_text(FILE *fp, const tlspool_rr *rr)
{
	tlspool_openpgp_cert *c;
	char err[256];
	size_t i;

	if (tlspool_openpgp_parse(rr->rdata, rr->rdlen, 0, time(NULL), &c, err,
	                          sizeof(err)) != 0) {
		fprintf(fp, ";   unusable OpenPGP key: %s\n", err);
		return;
	}
	key_text(fp, "key", &c->primary);
	for (i = 0; i < c->nuids; i++)
		fprintf(fp, ";   uid     \"%s\" %s%s\n", c->uids[i].text,
		        c->uids[i].valid ? "valid" : "invalid: ",
		        c->uids[i].reason);
	for (i = 0; i < c->nsubkeys; i++)
		key_text(fp, "subkey", &c->subkeys[i]);
	for (i = 0; i < c->nsigs; i++)
		fprintf(fp, ";   sig     0x%02x on %s %zu%s: %s%s%s\n",
		        c->sigs[i].type, target_name(c->sigs[i].target),
		        c->sigs[i].target_index,
		        c->sigs[i].embedded ? " (embedded)" : "",
		        tlspool_openpgp_sig_outcome_name(c->sigs[i].outcome),
		        c->sigs[i].reason[0] ? ": " : "", c->sigs[i].reason);
	tlspool_openpgp_free(c);
}

static json_object *key_json(const tlspool_openpgp_keyinfo *k)
{
	json_object *o = json_object_new_object();
	char fpr[65], flags[80], when[32];

	fpr_hex(k, fpr);
	flag_names(k->flags, k->has_flags, flags, sizeof(flags));
	json_object_object_add(o, "fingerprint", json_object_new_string(fpr));
	json_object_object_add(o, "version", json_object_new_int(k->version));
	json_object_object_add(o, "algorithm",
	                       json_object_new_string(k->algorithm_name));
	json_object_object_add(o, "flags", json_object_new_string(flags));
	iso_time(when, sizeof(when), k->created);
	json_object_object_add(o, "created", json_object_new_string(when));
	if (k->expires) {
		iso_time(when, sizeof(when), k->expires);
		json_object_object_add(o, "expires",
		                       json_object_new_string(when));
	}
	json_object_object_add(o, "valid", json_object_new_boolean(k->valid));
	if (!k->valid)
		json_object_object_add(o, "reason",
		                       json_object_new_string(k->reason));
	return o;
}

json_object *openpgp_json(const tlspool_rr *rr)
{
	json_object *o = json_object_new_object(), *a;
	tlspool_openpgp_cert *c;
	char err[256];
	size_t i;

	if (tlspool_openpgp_parse(rr->rdata, rr->rdlen, 0, time(NULL), &c, err,
	                          sizeof(err)) != 0) {
		json_object_object_add(o, "error", json_object_new_string(err));
		return o;
	}
	json_object_object_add(o, "key", key_json(&c->primary));
	a = json_object_new_array();
	for (i = 0; i < c->nuids; i++) {
		json_object *u = json_object_new_object();

		json_object_object_add(u, "text",
		                       json_object_new_string(c->uids[i].text));
		json_object_object_add(
		        u, "valid", json_object_new_boolean(c->uids[i].valid));
		if (!c->uids[i].valid)
			json_object_object_add(
			        u, "reason",
			        json_object_new_string(c->uids[i].reason));
		json_object_array_add(a, u);
	}
	json_object_object_add(o, "uids", a);
	a = json_object_new_array();
	for (i = 0; i < c->nsubkeys; i++)
		json_object_array_add(a, key_json(&c->subkeys[i]));
	json_object_object_add(o, "subkeys", a);
	a = json_object_new_array();
	for (i = 0; i < c->nsigs; i++) {
		json_object *g = json_object_new_object();

		json_object_object_add(g, "type",
		                       json_object_new_int(c->sigs[i].type));
		json_object_object_add(
		        g, "on",
		        json_object_new_string(target_name(c->sigs[i].target)));
		json_object_object_add(
		        g, "index",
		        json_object_new_int((int)c->sigs[i].target_index));
		json_object_object_add(
		        g, "outcome",
		        json_object_new_string(tlspool_openpgp_sig_outcome_name(
		                c->sigs[i].outcome)));
		if (c->sigs[i].reason[0])
			json_object_object_add(
			        g, "reason",
			        json_object_new_string(c->sigs[i].reason));
		json_object_array_add(a, g);
	}
	json_object_object_add(o, "signatures", a);
	tlspool_openpgp_free(c);
	return o;
}
