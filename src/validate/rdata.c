/*
 * Record data: parsing TLSA/SMIMEA rdata, on the wire and in presentation
 * form, and printing records in zone-file form for diagnosis.
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

/* --- presentation form -------------------------------------------------- */

static int is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static const char *skip_blank(const char *p)
{
	while (is_blank(*p))
		p++;
	return p;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* One unsigned decimal field of at most max, then a blank or the end.
 * 0, or -1 with a message. */
static int field(const char **pp, unsigned long max, const char *what,
                 unsigned long *v, char *err, size_t errlen)
{
	const char *p = skip_blank(*pp);
	unsigned long n = 0;
	int digits = 0;

	while (*p >= '0' && *p <= '9') {
		n = n * 10 + (unsigned long)(*p++ - '0');
		if (n > max) {
			tp_err(err, errlen, "the %s is above %lu", what, max);
			return -1;
		}
		digits++;
	}
	if (digits == 0 || (*p != '\0' && !is_blank(*p))) {
		tp_err(err, errlen, "the %s is not a decimal number", what);
		return -1;
	}
	*v = n;
	*pp = p;
	return 0;
}

/* Hex digits, white space between them allowed, to the end of p, into
 * buf at *n; offsets in messages count from text.  0, or -1 with errno
 * and a message. */
static int hex_data(const char *text, const char *p, unsigned char *buf,
                    size_t buflen, size_t *n, char *err, size_t errlen)
{
	int hi = -1, v;

	for (; *p != '\0'; p++) {
		if (is_blank(*p))
			continue;
		if ((v = hexval(*p)) < 0) {
			tp_err(err, errlen,
			       "'%c' at offset %zu is not a hexadecimal digit",
			       *p >= 0x20 && *p < 0x7f ? *p : '?',
			       (size_t)(p - text));
			errno = EBADMSG;
			return -1;
		}
		if (hi < 0) {
			hi = v;
			continue;
		}
		if (*n >= buflen) {
			tp_err(err, errlen,
			       "the rdata does not fit in %zu octets", buflen);
			errno = ENOSPC;
			return -1;
		}
		buf[(*n)++] = (unsigned char)(hi << 4 | v);
		hi = -1;
	}
	if (hi >= 0) {
		tp_err(err, errlen, "an odd number of hexadecimal digits");
		errno = EBADMSG;
		return -1;
	}
	return 0;
}

int tlspool_tlsa_parse_text(const char *text, unsigned char *buf, size_t buflen,
                            tlspool_tlsa *out, char *err, size_t errlen)
{
	const char *p;
	unsigned long v[3], glen = 0;
	size_t n = 0, i;
	int generic;
	tlspool_tlsa t;
	static const char *const names[] = {"certificate usage", "selector",
	                                    "matching type"};

	if (text == NULL || buf == NULL) {
		tp_err(err, errlen, "no text or no buffer");
		errno = EINVAL;
		return -1;
	}
	p = skip_blank(text);
	generic = p[0] == '\\' && p[1] == '#';
	if (generic) { /* RFC 3597 section 5 */
		p += 2;
		if (!is_blank(*p)) {
			tp_err(err, errlen,
			       "\"\\#\" is not followed by a "
			       "blank and the rdata length");
			goto syntax;
		}
		if (field(&p, 65535, "generic rdata length", &glen, err,
		          errlen) != 0)
			goto syntax;
	} else {
		/* RFC 6698 section 2.2: usage, selector, matching type */
		if (buflen < 3) {
			tp_err(err, errlen,
			       "the rdata does not fit in %zu octets", buflen);
			errno = ENOSPC;
			return -1;
		}
		for (i = 0; i < 3; i++) {
			if (field(&p, 255, names[i], &v[i], err, errlen) != 0)
				goto syntax;
			buf[n++] = (unsigned char)v[i];
		}
	}
	if (hex_data(text, p, buf, buflen, &n, err, errlen) != 0)
		return -1;
	if (generic && n != glen) {
		tp_err(err, errlen,
		       "the generic form says %lu octets, and has %zu", glen,
		       n);
		goto syntax;
	}
	if (tlspool_tlsa_parse(buf, n, &t) != 0) {
		if (n < 4)
			tp_err(err, errlen,
			       "no certificate association data (RFC 6698 "
			       "section 2.1.4)");
		else
			tp_err(err, errlen,
			       "%zu octets of association data for matching "
			       "type %u (SHA2-256 has 32, SHA2-512 64)",
			       n - 3, (unsigned)buf[2]);
		goto syntax;
	}
	if (out != NULL)
		*out = t;
	return (int)n;
syntax:
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
	case TLSPOOL_RR_MX:
		return "MX";
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
	uint16_t pref;
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
	case TLSPOOL_RR_MX:
		if (tlspool_mx_parse(rr->rdata, rr->rdlen, &pref, srv.target) !=
		    0)
			goto generic;
		rv = put(buf, buflen, &pos, "%u %s", pref, srv.target);
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
