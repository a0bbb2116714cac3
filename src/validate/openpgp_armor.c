/*
 * ASCII armor (RFC 9580 section 6) of one key block: what gpg --armor
 * writes, and what RFC 9580 Appendix A prints.
 *
 *   -----BEGIN PGP PUBLIC KEY BLOCK-----     (or PRIVATE KEY BLOCK)
 *   Comment: armor headers, "Key: Value", any number
 *   (a blank line)
 *   base64 data, in lines
 *   =XXXX                                    (optional CRC24)
 *   -----END PGP PUBLIC KEY BLOCK-----       (the same label)
 *
 * Armor headers are read and ignored (section 6.2.2: unknown keys do not
 * stop processing); a first line without a colon is taken as data, so a
 * block whose blank line is missing still reads.  Trailing white space is
 * ignored on every line, and white space inside data lines too.  White
 * space may surround the block; any other text outside it is an error.
 *
 * The CRC24 footer is optional and a wrong one is no reason to reject
 * (section 6.1): the packets' own checks (signatures, secret key
 * checksums) decide.  It is computed and reported, never enforced.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>

#include "openpgp_int.h"

#define CRC24_INIT 0xB704CEu
#define CRC24_POLY 0x1864CFBu

static const char begin[] = "-----BEGIN PGP ";
static const char end[] = "-----END PGP ";
static const char dashes[] = "-----";

uint32_t tp_pgp_crc24(const unsigned char *d, size_t len)
{
	uint32_t crc = CRC24_INIT;
	size_t i;
	int b;

	for (i = 0; i < len; i++) {
		crc ^= (uint32_t)d[i] << 16;
		for (b = 0; b < 8; b++) {
			crc <<= 1;
			if (crc & 0x1000000u)
				crc ^= CRC24_POLY;
		}
	}
	return crc & 0xFFFFFFu;
}

static int is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Leading white space of d. */
static size_t skip_space(const unsigned char *d, size_t len)
{
	size_t i = 0;

	while (i < len && is_space(d[i]))
		i++;
	return i;
}

int tp_pgp_is_armored(const unsigned char *d, size_t len)
{
	size_t i = skip_space(d, len);

	return len - i >= sizeof(begin) - 1 &&
	       memcmp(d + i, begin, sizeof(begin) - 1) == 0;
}

/* The base64 value of c (RFC 4648 section 4), or -1. */
static int b64(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

struct lines {
	const unsigned char *d;
	size_t len, off, no; /* no: the number of the line last read */
};

/* The next line, without its end and trailing white space; -1 at the
 * end of the data. */
static int next_line(struct lines *l, const unsigned char **line, size_t *n)
{
	const unsigned char *start, *stop, *nl;

	if (l->off >= l->len)
		return -1;
	start = l->d + l->off;
	nl = memchr(start, '\n', l->len - l->off);
	stop = nl != NULL ? nl : l->d + l->len;
	l->off = (size_t)(stop - l->d) + (nl != NULL);
	l->no++;
	while (stop > start && is_space(stop[-1]))
		stop--;
	*line = start;
	*n = (size_t)(stop - start);
	return 0;
}

/* Is the line "PREFIX LABEL-----"?  Then the label, in *label, *llen. */
static int label_line(const unsigned char *line, size_t n, const char *prefix,
                      const unsigned char **label, size_t *llen)
{
	size_t pl = strlen(prefix), dl = sizeof(dashes) - 1;

	if (n < pl + dl + 1 || memcmp(line, prefix, pl) != 0 ||
	    memcmp(line + n - dl, dashes, dl) != 0)
		return 0;
	*label = line + pl;
	*llen = n - pl - dl;
	return 1;
}

static int is_label(const unsigned char *label, size_t llen, const char *want)
{
	return llen == strlen(want) && memcmp(label, want, llen) == 0;
}

/* Decode the n base64 characters at b in place: the octets, or -1. */
static long decode(unsigned char *b, size_t n)
{
	size_t i, o = 0;
	int pad = 0;

	if (n % 4 != 0)
		return -1;
	for (i = 0; i < n; i += 4) {
		int v[4], k;

		for (k = 0; k < 4; k++) {
			v[k] = b64(b[i + k]);
			if (v[k] < 0) {
				/* '=' only as the last one or two of the last
				 * quantum (RFC 4648 section 4) */
				if (b[i + k] != '=' || i + 4 != n || k < 2 ||
				    (k == 2 && b[i + 3] != '='))
					return -1;
				v[k] = 0;
				pad++;
			}
		}
		b[o++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
		if (pad < 2)
			b[o++] = (unsigned char)((v[1] & 15) << 4 | v[2] >> 2);
		if (pad < 1)
			b[o++] = (unsigned char)((v[2] & 3) << 6 | v[3]);
	}
	return (long)o;
}

/* The armor headers up to the blank line.  The first data line, when
 * the blank line is missing, is left in *line, *n (else *n is 0). */
static void headers(struct lines *l, const unsigned char **line, size_t *n)
{
	while (next_line(l, line, n) == 0) {
		if (*n == 0 || memchr(*line, ':', *n) == NULL)
			return; /* the blank line, or data already */
	}
	*n = 0;
}

/* Collect the data lines' base64 characters into buf (*nb of them) up
 * to the CRC24 line or the tail line, which is left in *line, *n.  0, or
 * -1 with a message. */
static int data_lines(struct lines *l, const unsigned char **line, size_t *n,
                      unsigned char *buf, size_t *nb, char *err, size_t errlen)
{
	size_t i;
	int have = *n > 0; /* a data line left by headers() */

	for (;;) {
		if (!have && next_line(l, line, n) != 0) {
			tp_err(err, errlen,
			       "armor: no tail line (\"%sPUBLIC KEY "
			       "BLOCK-----\")",
			       end);
			return -1;
		}
		have = 0;
		if (*n > 0 && ((*line)[0] == '-' || (*line)[0] == '='))
			return 0;
		for (i = 0; i < *n; i++) {
			unsigned char c = (*line)[i];

			if (c == ' ' || c == '\t')
				continue;
			if (b64(c) < 0 && c != '=') {
				tp_err(err, errlen,
				       "armor line %zu: 0x%02x is not a base64 "
				       "character",
				       l->no, c);
				return -1;
			}
			buf[(*nb)++] = c;
		}
	}
}

/* The optional CRC24 line "=XXXX": its value into *crc (or -1 when
 * there is none), leaving the next line in *line, *n.  0 or -1. */
static int crc_line(struct lines *l, const unsigned char **line, size_t *n,
                    long *crc, char *err, size_t errlen)
{
	unsigned char q[4];

	*crc = -1;
	if ((*line)[0] != '=')
		return 0;
	memcpy(q, *line + 1, *n == 5 ? 4 : 0);
	if (*n != 5 || decode(q, 4) != 3) {
		tp_err(err, errlen,
		       "armor line %zu: a CRC24 line is \"=\" and four base64 "
		       "characters",
		       l->no);
		return -1;
	}
	*crc = (long)q[0] << 16 | (long)q[1] << 8 | q[2];
	do { /* blank lines before the tail line are let pass */
		if (next_line(l, line, n) != 0) {
			tp_err(err, errlen,
			       "armor: no tail line after the "
			       "CRC24");
			return -1;
		}
	} while (*n == 0);
	return 0;
}

/* The tail line: the label of the header line, then nothing but white
 * space.  0 or -1. */
static int tail(struct lines *l, const unsigned char *line, size_t n,
                const unsigned char *label, size_t llen, char *err,
                size_t errlen)
{
	const unsigned char *tl;
	size_t tn;

	if (!label_line(line, n, end, &tl, &tn) || tn != llen ||
	    memcmp(tl, label, llen) != 0) {
		tp_err(err, errlen,
		       "armor line %zu: expected the tail line \"%s%.*s%s\"",
		       l->no, end, (int)llen, (const char *)label, dashes);
		return -1;
	}
	if (skip_space(l->d + l->off, l->len - l->off) != l->len - l->off) {
		tp_err(err, errlen,
		       "armor: text after the tail line (line %zu)", l->no);
		return -1;
	}
	return 0;
}

int tp_pgp_dearmor(const unsigned char *d, size_t len, unsigned char **out,
                   size_t *outlen, int *armor, char *err, size_t errlen)
{
	struct lines l = {d, len, 0, 0};
	const unsigned char *line = NULL, *label = NULL;
	size_t n = 0, llen = 0, nb = 0;
	unsigned char *buf;
	long crc, got;

	*out = NULL;
	l.off = skip_space(d, len);
	if (next_line(&l, &line, &n) != 0 ||
	    !label_line(line, n, begin, &label, &llen)) {
		tp_err(err, errlen,
		       "armor: no header line \"%sPUBLIC KEY "
		       "BLOCK-----\"",
		       begin);
		goto bad;
	}
	if (!is_label(label, llen, "PUBLIC KEY BLOCK") &&
	    !is_label(label, llen, "PRIVATE KEY BLOCK")) {
		tp_err(err, errlen, "armor: a PGP %.*s, not a key block",
		       (int)(llen > 40 ? 40 : llen), (const char *)label);
		goto bad;
	}
	buf = malloc(len ? len : 1);
	if (buf == NULL) {
		tp_err(err, errlen, "out of memory");
		errno = ENOMEM;
		return -1;
	}
	headers(&l, &line, &n);
	if (data_lines(&l, &line, &n, buf, &nb, err, errlen) != 0 ||
	    crc_line(&l, &line, &n, &crc, err, errlen) != 0 ||
	    tail(&l, line, n, label, llen, err, errlen) != 0)
		goto bad_buf;
	if (nb == 0) {
		tp_err(err, errlen, "armor: no data");
		goto bad_buf;
	}
	got = decode(buf, nb);
	if (got < 0) {
		tp_err(err, errlen,
		       "armor: the %zu base64 characters do not decode (length "
		       "or padding)",
		       nb);
		goto bad_buf;
	}
	/* the rest of buf holds base64 of what may be a secret key */
	gnutls_memset(buf + got, 0, nb - (size_t)got);
	*armor = crc < 0 ? TLSPOOL_OPENPGP_ARMOR_NO_CRC
	         : (uint32_t)crc == tp_pgp_crc24(buf, (size_t)got)
	                 ? TLSPOOL_OPENPGP_ARMOR_CRC_OK
	                 : TLSPOOL_OPENPGP_ARMOR_CRC_BAD;
	*out = buf;
	*outlen = (size_t)got;
	return 0;
bad_buf:
	gnutls_memset(buf, 0, nb);
	free(buf);
bad:
	errno = EBADMSG;
	return -1;
}
