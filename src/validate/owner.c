/*
 * Owner names of the records that authenticate peers:
 *   TLSA        _PORT._PROTO.NAME                       RFC 6698 section 3
 *   OPENPGPKEY  HEX28(SHA2-256(local))._openpgpkey.DOM  RFC 7929 section 3
 *   SMIMEA      HEX28(SHA2-256(local))._smimecert.DOM   RFC 8162 section 3
 */
#include <errno.h>
#include <gnutls/crypto.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define TP_MAX_NAME 253 /* text form without the final dot */

int tlspool_check_domain(const char *name, int underscore)
{
	size_t len, label = 0, i;

	if (name == NULL)
		goto bad;
	len = strlen(name);
	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > TP_MAX_NAME)
		goto bad;
	for (i = 0; i <= len; i++) {
		char c = i < len ? name[i] : '.';

		if (c == '.') {
			/* LDH: no empty label, no hyphen at either end. */
			if (label == 0 || label > 63 || name[i - 1] == '-')
				goto bad;
			label = 0;
			continue;
		}
		if (label == 0 && c == '-')
			goto bad;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' ||
		      (underscore && c == '_')))
			goto bad;
		label++;
	}
	return 0;
bad:
	errno = EINVAL;
	return -1;
}

/* Write PREFIX.NAME. into buf; the prefix is already checked. */
static int join(char *buf, size_t buflen, const char *prefix, const char *name)
{
	size_t nlen = strlen(name);
	int n;

	if (nlen > 0 && name[nlen - 1] == '.')
		nlen--;
	if (strlen(prefix) + 1 + nlen > TP_MAX_NAME) {
		errno = ENAMETOOLONG;
		return -1;
	}
	n = snprintf(buf, buflen, "%s.%.*s.", prefix, (int)nlen, name);
	if (n < 0 || (size_t)n >= buflen) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return n;
}

int tlspool_tlsa_owner(char *buf, size_t buflen, unsigned port,
                       const char *proto, const char *name)
{
	char prefix[32];

	if (buf == NULL || proto == NULL || port == 0 || port > 65535 ||
	    (strcmp(proto, "tcp") != 0 && strcmp(proto, "udp") != 0 &&
	     strcmp(proto, "sctp") != 0) ||
	    tlspool_check_domain(name, 0) != 0) {
		errno = EINVAL;
		return -1;
	}
	snprintf(prefix, sizeof(prefix), "_%u._%s", port, proto);
	return join(buf, buflen, prefix, name);
}

int tlspool_user_owner(char *buf, size_t buflen, uint16_t type,
                       const char *user_at_domain)
{
	unsigned char digest[32];
	char prefix[28 * 2 + sizeof("._openpgpkey")];
	const char *at, *label;
	size_t i;

	if (type == TLSPOOL_RR_OPENPGPKEY)
		label = "_openpgpkey";
	else if (type == TLSPOOL_RR_SMIMEA)
		label = "_smimecert";
	else
		goto bad;
	if (buf == NULL || user_at_domain == NULL)
		goto bad;
	at = strrchr(user_at_domain, '@');
	if (at == NULL || at == user_at_domain ||
	    tlspool_check_domain(at + 1, 0) != 0)
		goto bad;
	/* RFC 7929 section 3: the local part is hashed as the UTF-8 octets
	 * it is given as, without canonicalisation. */
	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, user_at_domain,
	                     (size_t)(at - user_at_domain), digest) != 0)
		goto bad;
	for (i = 0; i < 28; i++)
		snprintf(prefix + 2 * i, 3, "%02x", digest[i]);
	snprintf(prefix + 56, sizeof(prefix) - 56, ".%s", label);
	return join(buf, buflen, prefix, at + 1);
bad:
	errno = EINVAL;
	return -1;
}
