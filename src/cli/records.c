/*
 * tlspool-connect --records and --records-for: the records to publish.
 *
 * --client HOST PORT --records: the TLSA records that would authenticate
 * the server just met (its chain from starttls_last_trace()): "3 1 1"
 * for its own certificate and "2 1 1" for the one that issued it, at
 * _PORT._tcp.HOST (RFC 6698 section 3; RFC 7671 section 5 recommends
 * these two forms).
 *
 * --records-for FILE NAME PORT: TLSA for a local certificate (PEM or
 * DER; usage 0 and 2 take the last certificate of the file, the top of
 * the chain it holds, usage 1 and 3 the first), private key or public
 * key (selector 1 only).  --records-for FILE USER@DOMAIN: OPENPGPKEY
 * (RFC 7929) for a transferable public key (gpg --export, binary or
 * --armor: the rdata is the binary key as given, the same as gpg
 * --export-options export-dane), or SMIMEA (RFC 8162) for an X.509
 * certificate.  Records go to stdout, one zone-file line each; with
 * --json they are the document's "publish".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "cli.h"

#define RDATA_MAX 65535

char *cert_pem(const tlspool_span *der)
{
	gnutls_datum_t d = {(unsigned char *)der->data, (unsigned)der->len};
	gnutls_datum_t out = {NULL, 0};
	char *s;

	if (gnutls_pem_base64_encode2("CERTIFICATE", &d, &out) < 0)
		return NULL;
	s = malloc(out.size + 1);
	if (s != NULL) {
		memcpy(s, out.data, out.size);
		s[out.size] = '\0';
	}
	gnutls_free(out.data);
	return s;
}

/* One record: a zone-file line on stdout, a member of "publish". */
static int emit(const char *owner, uint16_t type, const unsigned char *rdata,
                size_t len, const char *what)
{
	static char line[4 * RDATA_MAX];
	tlspool_rr rr = {type, 3600, len, (unsigned char *)rdata};
	json_object *j;
	tlspool_tlsa t;

	if (tlspool_rr_format(line, sizeof(line), owner, &rr) < 0) {
		say("%s: cannot format the record: %s", owner, strerror(errno));
		return -1;
	}
	if (!out_doc_on_stdout())
		printf("; %s\n%s\n", what, line);
	j = json_object_new_object();
	json_object_object_add(j, "owner", json_object_new_string(owner));
	json_object_object_add(
	        j, "type", json_object_new_string(tlspool_rr_type_name(type)));
	json_object_object_add(j, "for", json_object_new_string(what));
	if (type != TLSPOOL_RR_OPENPGPKEY &&
	    tlspool_tlsa_parse(rdata, len, &t) == 0) {
		json_object_object_add(j, "usage",
		                       json_object_new_int(t.usage));
		json_object_object_add(j, "selector",
		                       json_object_new_int(t.selector));
		json_object_object_add(j, "matching_type",
		                       json_object_new_int(t.mtype));
		json_object_object_add(j, "data", hex_string(t.data, t.len));
	} else {
		json_object_object_add(j, "rdata", hex_string(rdata, len));
	}
	json_object_object_add(j, "text", json_object_new_string(line));
	out_append("publish", j);
	return 0;
}

static int publish(const char *owner, uint16_t type, const tlspool_span *der,
                   int rawkey, int usage, int selector, int mtype,
                   const char *what)
{
	static unsigned char rdata[RDATA_MAX];
	int n;

	n = tlspool_tlsa_make(der, rawkey, (uint8_t)usage, (uint8_t)selector,
	                      (uint8_t)mtype, rdata, sizeof(rdata));
	if (n < 0) {
		say("%s: no %u %u %u record can be made: %s", what, usage,
		    selector, mtype,
		    errno == EINVAL ? "a key has no selector 0 (the full "
		                      "certificate); use --selector 1"
		                    : strerror(errno));
		return -1;
	}
	return emit(owner, type, rdata, (size_t)n, what);
}

static int pick(int given, int dflt)
{
	return given >= 0 ? given : dflt;
}

int print_peer_records(const struct options *o, const char *host)
{
	const starttls_trace *t = starttls_last_trace();
	char owner[300];
	unsigned long port = strtoul(o->port ? o->port : "443", NULL, 10);
	int sel = pick(o->selector, 1), mt = pick(o->mtype, 1);

	if (t->nchain == 0) {
		say("the server sent no certificate: no records to publish");
		return EXIT_TLS;
	}
	if (tlspool_tlsa_owner(owner, sizeof(owner), (unsigned)port, o->proto,
	                       host) < 0) {
		say("%s: not a host name for a TLSA owner", host);
		return EXIT_USAGE;
	}
	if (publish(owner, TLSPOOL_RR_TLSA, &t->chain[0], 0, 3, sel, mt,
	            "DANE-EE: the server's own certificate") != 0)
		return EXIT_USAGE;
	if (t->nchain > 1 &&
	    publish(owner, TLSPOOL_RR_TLSA, &t->chain[1], 0, 2, sel, mt,
	            "DANE-TA: the certificate that issued it") != 0)
		return EXIT_USAGE;
	return EXIT_OK;
}

/* --- files ----------------------------------------------------------- */

/* DER certificates of data (PEM, several, or one DER); n, 0 if none. */
static unsigned load_certs(const gnutls_datum_t *data, gnutls_datum_t **out)
{
	gnutls_x509_crt_t *list = NULL;
	unsigned n = 0, i, k = 0;

	if (gnutls_x509_crt_list_import2(&list, &n, data, GNUTLS_X509_FMT_PEM,
	                                 0) < 0 &&
	    gnutls_x509_crt_list_import2(&list, &n, data, GNUTLS_X509_FMT_DER,
	                                 0) < 0)
		return 0;
	*out = calloc(n ? n : 1, sizeof(**out));
	for (i = 0; i < n; i++) {
		if (*out != NULL &&
		    gnutls_x509_crt_export2(list[i], GNUTLS_X509_FMT_DER,
		                            &(*out)[k]) == 0)
			k++;
		gnutls_x509_crt_deinit(list[i]);
	}
	gnutls_free(list);
	return k;
}

/* The DER SubjectPublicKeyInfo of a private or public key file. */
static int load_spki(const gnutls_datum_t *data, gnutls_datum_t *spki)
{
	gnutls_pubkey_t pub = NULL;
	gnutls_privkey_t priv = NULL;
	int ok = 0;

	if (gnutls_pubkey_init(&pub) < 0)
		return -1;
	if (gnutls_pubkey_import(pub, data, GNUTLS_X509_FMT_PEM) == 0 ||
	    gnutls_pubkey_import(pub, data, GNUTLS_X509_FMT_DER) == 0)
		ok = 1;
	if (!ok && gnutls_privkey_init(&priv) == 0) {
		if ((gnutls_privkey_import_x509_raw(
		             priv, data, GNUTLS_X509_FMT_PEM, NULL, 0) == 0 ||
		     gnutls_privkey_import_x509_raw(
		             priv, data, GNUTLS_X509_FMT_DER, NULL, 0) == 0) &&
		    gnutls_pubkey_import_privkey(pub, priv, 0, 0) == 0)
			ok = 1;
		gnutls_privkey_deinit(priv);
	}
	if (ok && gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, spki) < 0)
		ok = 0;
	gnutls_pubkey_deinit(pub);
	return ok ? 0 : -1;
}

/* The binary packets of an OpenPGP key: as given, or out of its ASCII
 * armor (RFC 9580 section 6.2: headers, a blank line, base64, an
 * optional "=" checksum line, the tail).  0, or -1. */
static int pgp_binary(const gnutls_datum_t *data, gnutls_datum_t *bin)
{
	const char *p = (const char *)data->data, *end = p + data->size, *e;
	gnutls_datum_t b64;
	char *buf;
	size_t n = 0;
	int rv;

	if (data->size > 0 && (data->data[0] & 0x80)) {
		bin->data = gnutls_malloc(data->size);
		if (bin->data == NULL)
			return -1;
		memcpy(bin->data, data->data, data->size);
		bin->size = data->size;
		return 0;
	}
	if (data->size < 36 ||
	    memcmp(p, "-----BEGIN PGP PUBLIC KEY BLOCK-----", 36) != 0)
		return -1;
	/* past the header lines: the first empty line */
	while (p < end) {
		e = memchr(p, '\n', (size_t)(end - p));
		if (e == NULL)
			return -1;
		if (e == p || (e == p + 1 && p[0] == '\r')) {
			p = e + 1;
			break;
		}
		p = e + 1;
	}
	buf = malloc(data->size);
	if (buf == NULL)
		return -1;
	for (; p < end && *p != '=' && *p != '-'; p++)
		if (*p != '\n' && *p != '\r' && *p != ' ')
			buf[n++] = *p;
	b64.data = (unsigned char *)buf;
	b64.size = (unsigned)n;
	rv = gnutls_base64_decode2(&b64, bin) < 0 ? -1 : 0;
	free(buf);
	return rv;
}

static int openpgp_record(const struct options *o, const gnutls_datum_t *data)
{
	char owner[300], err[256];
	gnutls_datum_t bin = {NULL, 0};
	tlspool_openpgp_cert *cert = NULL;
	size_t i;
	int named = 0, rc = EXIT_USAGE;

	if (pgp_binary(data, &bin) != 0) {
		say("%s: neither a certificate nor an OpenPGP public key "
		    "(gpg --export %s)",
		    o->records_file, o->name);
		return EXIT_USAGE;
	}
	if (tlspool_openpgp_parse(bin.data, bin.size, 0, time(NULL), &cert, err,
	                          sizeof(err)) != 0) {
		say("%s: not an OpenPGP public key: %s", o->records_file, err);
		goto out;
	}
	for (i = 0; i < cert->nuids; i++)
		named |= tlspool_openpgp_uid_names(cert->uids[i].text, o->name);
	if (!named) {
		say("%s: no User ID of the key names <%s>: a peer presenting "
		    "it would not be %s (RFC 7929 section 3)",
		    o->records_file, o->name, o->name);
		goto out;
	}
	if (tlspool_user_owner(owner, sizeof(owner), TLSPOOL_RR_OPENPGPKEY,
	                       o->name) < 0) {
		say("%s: not a user@domain identity", o->name);
		goto out;
	}
	if (bin.size > RDATA_MAX) {
		say("%s: %u octets: more than a record holds", o->records_file,
		    bin.size);
		goto out;
	}
	rc = emit(owner, TLSPOOL_RR_OPENPGPKEY, bin.data, bin.size,
	          "OPENPGPKEY: the key as exported")
	             ? EXIT_USAGE
	             : EXIT_OK;
out:
	tlspool_openpgp_free(cert);
	gnutls_free(bin.data);
	return rc;
}

static int x509_records(const struct options *o, gnutls_datum_t *certs,
                        unsigned n)
{
	char owner[300];
	int user = strchr(o->name, '@') != NULL;
	int usage = pick(o->usage, 3);
	/* SMIMEA: the whole certificate, which a sender needs to encrypt
	 * (RFC 8162 section 2); TLSA: a digest of the key */
	int sel = pick(o->selector, user ? 0 : 1);
	int mt = pick(o->mtype, user ? 0 : 1);
	tlspool_span der;
	unsigned pickn = (usage == 0 || usage == 2) ? n - 1 : 0;

	if (user ? tlspool_user_owner(owner, sizeof(owner), TLSPOOL_RR_SMIMEA,
	                              o->name) < 0
	         : tlspool_tlsa_owner(owner, sizeof(owner),
	                              (unsigned)strtoul(o->port, NULL, 10),
	                              o->proto, o->name) < 0) {
		say("%s: not a %s", o->name,
		    user ? "user@domain identity" : "host name");
		return EXIT_USAGE;
	}
	der.data = certs[pickn].data;
	der.len = certs[pickn].size;
	return publish(owner, user ? TLSPOOL_RR_SMIMEA : TLSPOOL_RR_TLSA, &der,
	               0, usage, sel, mt,
	               pickn == 0 ? "the first certificate of the file"
	                          : "the last certificate of the file")
	               ? EXIT_USAGE
	               : EXIT_OK;
}

int run_records_for(const struct options *o)
{
	gnutls_datum_t data = {NULL, 0}, spki = {NULL, 0}, *certs = NULL;
	unsigned n, i;
	int rc, user = strchr(o->name, '@') != NULL;

	if (gnutls_load_file(o->records_file, &data) < 0) {
		say("%s: cannot be read: %s", o->records_file,
		    strerror(errno ? errno : ENOENT));
		return EXIT_USAGE;
	}
	n = load_certs(&data, &certs);
	if (n > 0) {
		rc = x509_records(o, certs, n);
	} else if (user) {
		rc = openpgp_record(o, &data);
	} else if (load_spki(&data, &spki) == 0) {
		tlspool_span der = {spki.data, spki.size};
		char owner[300];

		if (pick(o->selector, 1) != 1) {
			say("%s: a key alone has only selector 1 "
			    "(SubjectPublicKeyInfo)",
			    o->records_file);
			rc = EXIT_USAGE;
		} else if (tlspool_tlsa_owner(
		                   owner, sizeof(owner),
		                   (unsigned)strtoul(o->port, NULL, 10),
		                   o->proto, o->name) < 0) {
			say("%s: not a host name", o->name);
			rc = EXIT_USAGE;
		} else {
			rc = publish(owner, TLSPOOL_RR_TLSA, &der, 1,
			             pick(o->usage, 3), 1, pick(o->mtype, 1),
			             "the public key of the file")
			             ? EXIT_USAGE
			             : EXIT_OK;
		}
		gnutls_free(spki.data);
	} else {
		say("%s: neither a certificate nor a key (PEM or DER)",
		    o->records_file);
		rc = EXIT_USAGE;
	}
	for (i = 0; i < n; i++)
		gnutls_free(certs[i].data);
	free(certs);
	gnutls_free(data.data);
	return rc;
}
