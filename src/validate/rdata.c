/*
 * Record data: parsing TLSA/SMIMEA rdata and printing records in
 * zone-file form for diagnosis.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

int tlspool_tlsa_parse(const unsigned char *rdata, size_t len,
                       tlspool_tlsa *out)
{
	/* RFC 6698 section 2.1: usage, selector, matching type, then the
	 * association data, which may not be empty. */
	if (rdata == NULL || out == NULL || len < 4)
		goto bad;
	out->usage = rdata[0];
	out->selector = rdata[1];
	out->mtype = rdata[2];
	out->data = rdata + 3;
	out->len = len - 3;
	/* The digest lengths are fixed by the matching type (RFC 6698
	 * section 2.1.3); a record that disagrees is malformed. */
	if ((out->mtype == TLSPOOL_DANE_MTYPE_SHA2_256 && out->len != 32) ||
	    (out->mtype == TLSPOOL_DANE_MTYPE_SHA2_512 && out->len != 64))
		goto bad;
	return 0;
bad:
	errno = EBADMSG;
	return -1;
}

const char *tlspool_rr_type_name(uint16_t type)
{
	static _Thread_local char buf[16];

	switch (type) {
	case TLSPOOL_RR_A:
		return "A";
	case TLSPOOL_RR_CNAME:
		return "CNAME";
	case TLSPOOL_RR_SRV:
		return "SRV";
	case TLSPOOL_RR_AAAA:
		return "AAAA";
	case TLSPOOL_RR_TLSA:
		return "TLSA";
	case TLSPOOL_RR_SMIMEA:
		return "SMIMEA";
	case TLSPOOL_RR_OPENPGPKEY:
		return "OPENPGPKEY";
	}
	snprintf(buf, sizeof(buf), "TYPE%u", (unsigned)type);
	return buf;
}

/* Append to buf at *pos; ENOSPC when it does not fit. */
static int put(char *buf, size_t buflen, size_t *pos, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static int put(char *buf, size_t buflen, size_t *pos, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*pos >= buflen)
		return -1;
	va_start(ap, fmt);
	n = vsnprintf(buf + *pos, buflen - *pos, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= buflen - *pos)
		return -1;
	*pos += (size_t)n;
	return 0;
}

static int put_hex(char *buf, size_t buflen, size_t *pos,
                   const unsigned char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (put(buf, buflen, pos, "%02X", p[i]))
			return -1;
	return 0;
}

static int put_base64(char *buf, size_t buflen, size_t *pos,
                      const unsigned char *p, size_t len)
{
	gnutls_datum_t in = {(unsigned char *)p, (unsigned)len}, out = {0};
	int rv;

	if (gnutls_base64_encode2(&in, &out) != 0)
		return -1;
	rv = put(buf, buflen, pos, "%.*s", (int)out.size, out.data);
	gnutls_free(out.data);
	return rv;
}

int tlspool_rr_format(char *buf, size_t buflen, const char *owner,
                      const tlspool_rr *rr)
{
	char addr[INET6_ADDRSTRLEN];
	tlspool_tlsa t;
	tlspool_srv srv;
	size_t pos = 0;
	int rv;

	if (buf == NULL || owner == NULL || rr == NULL ||
	    (rr->rdlen > 0 && rr->rdata == NULL)) {
		errno = EINVAL;
		return -1;
	}
	if (put(buf, buflen, &pos, "%s %u IN %s ", owner, (unsigned)rr->ttl,
	        tlspool_rr_type_name(rr->type)))
		goto nospace;
	switch (rr->type) {
	case TLSPOOL_RR_TLSA:
	case TLSPOOL_RR_SMIMEA:
		if (tlspool_tlsa_parse(rr->rdata, rr->rdlen, &t) != 0)
			goto generic;
		rv = put(buf, buflen, &pos, "%u %u %u ", t.usage, t.selector,
		         t.mtype) ||
		     put_hex(buf, buflen, &pos, t.data, t.len);
		break;
	case TLSPOOL_RR_OPENPGPKEY:
		if (rr->rdlen == 0)
			goto generic;
		rv = put_base64(buf, buflen, &pos, rr->rdata, rr->rdlen);
		break;
	case TLSPOOL_RR_SRV:
		if (tlspool_srv_parse(rr->rdata, rr->rdlen, &srv) != 0)
			goto generic;
		rv = put(buf, buflen, &pos, "%u %u %u %s", srv.priority,
		         srv.weight, srv.port, srv.target);
		break;
	case TLSPOOL_RR_A:
	case TLSPOOL_RR_AAAA:
		if (rr->rdlen != (rr->type == TLSPOOL_RR_A ? 4u : 16u))
			goto generic;
		inet_ntop(rr->type == TLSPOOL_RR_A ? AF_INET : AF_INET6,
		          rr->rdata, addr, sizeof(addr));
		rv = put(buf, buflen, &pos, "%s", addr);
		break;
	default:
		goto generic;
	}
	if (rv)
		goto nospace;
	return (int)pos;
generic:
	/* RFC 3597 section 5: unknown or malformed rdata, shown as is. */
	if (put(buf, buflen, &pos, "\\# %zu ", rr->rdlen) ||
	    put_hex(buf, buflen, &pos, rr->rdata, rr->rdlen))
		goto nospace;
	return (int)pos;
nospace:
	errno = ENOSPC;
	return -1;
}
