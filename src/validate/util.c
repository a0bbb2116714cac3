/* Small helpers shared by the validation library. */
#include <getdns/getdns.h>
#include <getdns/getdns_extra.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

void tp_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

int tp_name_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la > 0 && a[la - 1] == '.')
		la--;
	if (lb > 0 && b[lb - 1] == '.')
		lb--;
	return la == lb && strncasecmp(a, b, la) == 0;
}

int tp_rr_name(const struct getdns_dict *d, const char *key, char out[256])
{
	getdns_bindata *b;
	char *s = NULL;
	int rv = -1;

	if (getdns_dict_get_bindata(d, key, &b) == GETDNS_RETURN_GOOD &&
	    getdns_convert_dns_name_to_fqdn(b, &s) == GETDNS_RETURN_GOOD &&
	    strlen(s) < 256) {
		strcpy(out, s);
		rv = 0;
	}
	free(s);
	return rv;
}
