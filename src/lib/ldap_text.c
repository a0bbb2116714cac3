/*
 * The pure parts of the LDAP step (ldapcheck.h, ldap_int.h): DNs, filter
 * escaping (RFC 4515), base DNs (RFC 2247), pgpKey values binary or
 * armored (RFC 9580 section 6).  No I/O.
 */
#include <errno.h>
#include <gnutls/gnutls.h>
#include <ldap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ldap_int.h"

/* --- the pure parts ------------------------------------------------------ */

int tp_ldap_valid_dn(const char *dn)
{
	LDAPDN parsed = NULL;

	if (dn == NULL ||
	    ldap_str2dn(dn, &parsed, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS)
		return -1;
	ldap_dnfree(parsed);
	return 0;
}

int tp_ldap_escape(char *dst, size_t len, const char *value)
{
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
		int esc = *p == '*' || *p == '(' || *p == ')' || *p == '\\' ||
		          *p < ' ' || *p == 0x7f;

		if (o + (esc ? 3 : 1) >= len)
			goto long_;
		if (esc)
			o += (size_t)snprintf(dst + o, len - o, "\\%02x", *p);
		else
			dst[o++] = (char)*p;
	}
	if (o >= len)
		goto long_;
	dst[o] = '\0';
	return (int)o;
long_:
	errno = ENAMETOOLONG;
	return -1;
}

/* The local part and the domain of identity ("" local for a domain). */
int tp_ldap_split(const char *identity, char *local, size_t llen, char *domain,
                  size_t dlen)
{
	const char *at = strrchr(identity, '@');
	size_t n = at != NULL ? (size_t)(at - identity) : 0;
	const char *d = at != NULL ? at + 1 : identity;
	size_t dl = strlen(d);

	if (dl > 0 && d[dl - 1] == '.')
		dl--;
	if (n >= llen || dl >= dlen || dl == 0) {
		errno = EINVAL;
		return -1;
	}
	memcpy(local, identity, n);
	local[n] = '\0';
	memcpy(domain, d, dl);
	domain[dl] = '\0';
	return 0;
}

int tp_ldap_filter(char *dst, size_t len, const char *tmpl,
                   const char *identity)
{
	char local[256], domain[256];
	size_t o = 0;
	int n;

	if (tp_ldap_split(identity, local, sizeof(local), domain,
	                  sizeof(domain)) != 0)
		return -1;
	for (const char *p = tmpl; *p; p++) {
		const char *v = NULL;

		if (*p == '%' && p[1] == 's')
			v = identity;
		else if (*p == '%' && p[1] == 'u')
			v = local;
		else if (*p == '%' && p[1] == 'd')
			v = domain;
		if (v != NULL) {
			if (o >= len ||
			    (n = tp_ldap_escape(dst + o, len - o, v)) < 0)
				goto long_;
			o += (size_t)n;
			p++;
			continue;
		}
		if (*p == '%' && p[1] == '%')
			p++;
		if (o + 1 >= len)
			goto long_;
		dst[o++] = *p;
	}
	if (o >= len)
		goto long_;
	dst[o] = '\0';
	return (int)o;
long_:
	errno = ENAMETOOLONG;
	return -1;
}

int tp_ldap_base(char *dst, size_t len, const char *domain)
{
	size_t o = 0, dl = strlen(domain);
	const char *p = domain;

	if (dl > 0 && domain[dl - 1] == '.')
		dl--;
	if (dl == 0 || tlspool_check_domain(domain, 0) != 0) {
		errno = EINVAL;
		return -1;
	}
	while (p < domain + dl) {
		size_t l = strcspn(p, ".");

		if (p + l > domain + dl)
			l = (size_t)(domain + dl - p);
		/* LDH labels need no escaping (RFC 4514 section 2.4) */
		if (o + l + 5 >= len) {
			errno = ENAMETOOLONG;
			return -1;
		}
		o += (size_t)snprintf(dst + o, len - o, "%sdc=%.*s",
		                      o ? "," : "", (int)l, p);
		p += l + 1;
	}
	return (int)o;
}

/* ASCII armor (RFC 9580 section 6.2) to binary. */
static int dearmor(const char *text, size_t len, unsigned char **out,
                   size_t *outlen)
{
	static const char begin[] = "-----BEGIN PGP PUBLIC KEY BLOCK-----";
	const char *p = memmem(text, len, begin, sizeof(begin) - 1);
	const char *end = text + len;
	gnutls_datum_t b64 = {NULL, 0}, bin = {NULL, 0};
	char *buf;
	int headers = 1, rv = -1;

	if (p == NULL)
		return -1;
	buf = malloc(len + 1);
	if (buf == NULL)
		return -1;
	p += sizeof(begin) - 1;
	p += strspn(p, " \t\r");
	if (p >= end || *p++ != '\n')
		goto out;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);

		while (l > 0 && (p[l - 1] == '\r' || p[l - 1] == ' ' ||
		                 p[l - 1] == '\t'))
			l--;
		if (l >= 5 && strncmp(p, "-----", 5) == 0) {
			rv = 0; /* the END line */
			break;
		}
		if (headers) {
			/* "Key: value" headers up to an empty line; a line
			 * without a colon starts the data */
			if (l == 0 || memchr(p, ':', l) != NULL) {
				headers = l != 0;
				p = nl ? nl + 1 : end;
				continue;
			}
			headers = 0;
		}
		if (l > 0 && p[0] == '=') { /* the CRC-24 line */
			p = nl ? nl + 1 : end;
			continue;
		}
		for (size_t i = 0; i < l; i++)
			if (p[i] != ' ' && p[i] != '\t')
				buf[b64.size++] = p[i];
		p = nl ? nl + 1 : end;
	}
	if (rv != 0 || b64.size == 0) {
		rv = -1;
		goto out;
	}
	rv = -1;
	b64.data = (unsigned char *)buf;
	if (gnutls_base64_decode2(&b64, &bin) != 0 || bin.size == 0)
		goto out;
	*out = malloc(bin.size);
	if (*out != NULL) {
		memcpy(*out, bin.data, bin.size);
		*outlen = bin.size;
		rv = 0;
	}
	gnutls_free(bin.data);
out:
	free(buf);
	return rv;
}

int tp_ldap_pgp_binary(const unsigned char *in, size_t len, unsigned char **out,
                       size_t *outlen, int *armored)
{
	*out = NULL;
	*outlen = 0;
	*armored = 0;
	if (in != NULL && len > 0 && (in[0] & 0x80)) {
		*out = malloc(len);
		if (*out == NULL)
			return -1;
		memcpy(*out, in, len);
		*outlen = len;
		return 0;
	}
	if (in != NULL && len > 0 &&
	    dearmor((const char *)in, len, out, outlen) == 0 &&
	    ((*out)[0] & 0x80)) {
		*armored = 1;
		return 0;
	}
	free(*out);
	*out = NULL;
	errno = EBADMSG;
	return -1;
}
