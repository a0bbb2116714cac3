/*
 * SRV records (RFC 2782): parsing the rdata and the order in which a
 * client tries the targets.  Used to find a domain's LDAP directory at
 * _ldap._tcp.DOMAIN (libtlspool's ldapcheck.c).
 */
#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int ldh(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
}

int tlspool_srv_parse(const unsigned char *rdata, size_t len, tlspool_srv *out)
{
	size_t pos = 6, o = 0;

	if (rdata == NULL || out == NULL || len < 7)
		goto bad;
	memset(out, 0, sizeof(*out));
	out->priority = (uint16_t)(rdata[0] << 8 | rdata[1]);
	out->weight = (uint16_t)(rdata[2] << 8 | rdata[3]);
	out->port = (uint16_t)(rdata[4] << 8 | rdata[5]);
	/* The target in wire form (RFC 1035 section 3.1), uncompressed
	 * (RFC 2782, "Target"): labels up to the root label. */
	for (;;) {
		size_t l = rdata[pos++];

		if (l == 0)
			break;
		if (l > 63 || pos + l >= len || o + l + 1 >= 254)
			goto bad; /* a pointer (0xC0), too long, or cut */
		for (size_t i = 0; i < l; i++) {
			if (!ldh(rdata[pos + i]))
				goto bad;
			out->target[o++] = (char)rdata[pos + i];
		}
		out->target[o++] = '.';
		pos += l;
	}
	if (pos != len)
		goto bad;
	if (o == 0)
		out->target[o++] = '.';
	out->target[o] = '\0';
	/* labels as a host name's: no hyphen at either end */
	if (o > 1 && tlspool_check_domain(out->target, 1) != 0)
		goto bad;
	return 0;
bad:
	errno = EBADMSG;
	return -1;
}

static uint32_t nonce32(void *arg)
{
	uint32_t r = 0;

	(void)arg;
	if (gnutls_rnd(GNUTLS_RND_NONCE, &r, sizeof(r)) != 0)
		r = (uint32_t)rand();
	return r;
}

static int by_priority(const void *a, const void *b)
{
	const tlspool_srv *x = a, *y = b;

	return (int)x->priority - (int)y->priority;
}

void tlspool_srv_order(tlspool_srv *srv, size_t n, uint32_t (*rnd)(void *arg),
                       void *arg)
{
	size_t start = 0;

	if (srv == NULL || n < 2)
		return;
	if (rnd == NULL)
		rnd = nonce32;
	qsort(srv, n, sizeof(*srv), by_priority);
	while (start < n) {
		size_t end = start, i;

		while (end < n && srv[end].priority == srv[start].priority)
			end++;
		/* weight 0 first in the unordered rest, then the weighted
		 * choice, one record at a time */
		for (size_t k = start; k + 1 < end; k++) {
			uint64_t sum = 0, run = 0, r;
			size_t z = k;
			tlspool_srv t;

			for (i = k; i < end; i++)
				if (srv[i].weight == 0) {
					t = srv[z];
					srv[z++] = srv[i];
					srv[i] = t;
				}
			for (i = k; i < end; i++)
				sum += srv[i].weight;
			r = sum == 0 ? 0 : rnd(arg) % (sum + 1);
			for (i = k; i < end; i++) {
				run += srv[i].weight;
				if (run >= r)
					break;
			}
			if (i == end)
				i = end - 1;
			t = srv[k];
			srv[k] = srv[i];
			srv[i] = t;
		}
		start = end;
	}
}
