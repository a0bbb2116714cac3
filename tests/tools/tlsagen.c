/*
 * tlsagen -- print a TLSA record for a certificate or raw public key with
 * the library's generator (tlspool_tlsa_make), for building test zones.
 *
 *   tlsagen [--raw-key] USAGE SELECTOR MTYPE FILE [OWNER]
 *
 * FILE is a certificate (PEM, the first one, or DER) or with --raw-key a
 * public key (PEM "PUBLIC KEY" or DER SubjectPublicKeyInfo).  OWNER
 * defaults to _443._tcp.www.example.test.  Prints one zone-file line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include <tlspool/validate.h>

/* The DER form of FILE: converted from PEM if it is PEM. */
static int load_der(const char *path, int rawkey, gnutls_datum_t *der)
{
	gnutls_datum_t raw = {NULL, 0};
	int rv = -1;

	if (gnutls_load_file(path, &raw) < 0)
		return -1;
	if (raw.size > 0 && raw.data[0] == 0x30) {
		*der = raw;
		return 0;
	}
	if (rawkey) {
		gnutls_pubkey_t k;

		if (gnutls_pubkey_init(&k) == 0) {
			if (gnutls_pubkey_import(k, &raw,
			                         GNUTLS_X509_FMT_PEM) == 0 &&
			    gnutls_pubkey_export2(k, GNUTLS_X509_FMT_DER,
			                          der) == 0)
				rv = 0;
			gnutls_pubkey_deinit(k);
		}
	} else {
		gnutls_x509_crt_t *list = NULL;
		unsigned n = 0, i;

		if (gnutls_x509_crt_list_import2(&list, &n, &raw,
		                                 GNUTLS_X509_FMT_PEM, 0) == 0) {
			if (n > 0 &&
			    gnutls_x509_crt_export2(
			            list[0], GNUTLS_X509_FMT_DER, der) == 0)
				rv = 0;
			for (i = 0; i < n; i++)
				gnutls_x509_crt_deinit(list[i]);
			gnutls_free(list);
		}
	}
	gnutls_free(raw.data);
	return rv;
}

int main(int argc, char **argv)
{
	unsigned char rdata[65536];
	char line[140000];
	gnutls_datum_t der = {NULL, 0};
	tlspool_span span;
	tlspool_rr rr;
	int rawkey = 0, n;

	if (argc > 1 && strcmp(argv[1], "--raw-key") == 0) {
		rawkey = 1;
		argc--;
		argv++;
	}
	if (argc < 5 || argc > 6) {
		fprintf(stderr,
		        "usage: tlsagen [--raw-key] USAGE SELECTOR MTYPE "
		        "FILE [OWNER]\n");
		return 2;
	}
	if (load_der(argv[4], rawkey, &der) != 0) {
		fprintf(stderr, "tlsagen: %s: cannot read a %s\n", argv[4],
		        rawkey ? "public key" : "certificate");
		return 1;
	}
	span.data = der.data;
	span.len = der.size;
	n = tlspool_tlsa_make(&span, rawkey, (uint8_t)atoi(argv[1]),
	                      (uint8_t)atoi(argv[2]), (uint8_t)atoi(argv[3]),
	                      rdata, sizeof(rdata));
	gnutls_free(der.data);
	if (n < 0) {
		perror("tlsagen");
		return 1;
	}
	rr.type = TLSPOOL_RR_TLSA;
	rr.ttl = 3600;
	rr.rdlen = (size_t)n;
	rr.rdata = rdata;
	if (tlspool_rr_format(line, sizeof(line),
	                      argc == 6 ? argv[5]
	                                : "_443._tcp.www.example.test.",
	                      &rr) < 0) {
		perror("tlsagen");
		return 1;
	}
	puts(line);
	return 0;
}
