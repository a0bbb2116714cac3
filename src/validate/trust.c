/*
 * Trust stores for the PKIX usages PKIX-TA(0) and PKIX-EE(1), which need a
 * certification path to a CA the client already trusts (RFC 6698 section
 * 2.1.1).  DANE-TA(2) anchors come from the TLSA records themselves and
 * never from here.
 */
#include <errno.h>
#include <stdlib.h>

#include <gnutls/gnutls.h>

#include "filetrust.h"
#include "internal.h"

static tlspool_trust *trust_new(char *err, size_t errlen)
{
	tlspool_trust *t = calloc(1, sizeof(*t));
	int rv;

	if (t == NULL) {
		tp_err(err, errlen, "out of memory");
		return NULL;
	}
	rv = gnutls_x509_trust_list_init(&t->tl, 0);
	if (rv < 0) {
		tp_err(err, errlen, "trust list: %s", gnutls_strerror(rv));
		free(t);
		errno = ENOMEM;
		return NULL;
	}
	return t;
}

tlspool_trust *tlspool_trust_new_system(char *err, size_t errlen)
{
	tlspool_trust *t = trust_new(err, errlen);
	int rv;

	if (t == NULL)
		return NULL;
	rv = gnutls_x509_trust_list_add_system_trust(t->tl, 0, 0);
	if (rv <= 0) {
		tp_err(err, errlen, "system trust store: %s",
		       rv < 0 ? gnutls_strerror(rv) : "no certificates");
		tlspool_trust_free(t);
		errno = ENOENT;
		return NULL;
	}
	return t;
}

/* The file is read through the file-trust module: a regular file owned
 * by root or us, not writable by group or other, at most 1 MiB. */
tlspool_trust *tlspool_trust_new_file(const char *path, char *err,
                                      size_t errlen)
{
	tlspool_trust *t;
	unsigned char *data;
	gnutls_datum_t d;
	size_t len;
	int rv;

	if (path == NULL) {
		tp_err(err, errlen, "no trust store file");
		errno = EINVAL;
		return NULL;
	}
	if (tlspool_file_read(path, TLSPOOL_FILE_PUBLIC, &data, &len, err,
	                      errlen) != 0)
		return NULL; /* errno: EACCES for an untrusted file */
	if ((t = trust_new(err, errlen)) == NULL) {
		tlspool_file_free(data, len);
		return NULL;
	}
	d.data = data;
	d.size = (unsigned)len;
	rv = gnutls_x509_trust_list_add_trust_mem(t->tl, &d, NULL,
	                                          GNUTLS_X509_FMT_PEM, 0, 0);
	if (rv <= 0)
		rv = gnutls_x509_trust_list_add_trust_mem(
		        t->tl, &d, NULL, GNUTLS_X509_FMT_DER, 0, 0);
	tlspool_file_free(data, len);
	if (rv <= 0) {
		tp_err(err, errlen, "%s: %s", path,
		       rv < 0 ? gnutls_strerror(rv) : "no certificates");
		tlspool_trust_free(t);
		errno = EBADMSG;
		return NULL;
	}
	return t;
}

void tlspool_trust_free(tlspool_trust *trust)
{
	if (trust == NULL)
		return;
	gnutls_x509_trust_list_deinit(trust->tl, 1);
	free(trust);
}
