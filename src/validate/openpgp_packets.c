/*
 * OpenPGP packets: framing (RFC 9580 section 4.2), the grammar of a
 * transferable public or secret key (section 10.1, 10.2) and MPIs
 * (section 3.2).
 *
 * Framing: old-format headers with 1, 2 or 4 length octets, new-format
 * headers with one-, two- and five-octet lengths.  An indeterminate
 * old-format length and new-format partial body lengths are refused: they
 * exist for data packets, never for keys (section 4.2.1.4).  A length past
 * the end is "truncated".
 *
 * Grammar: one primary key packet (tag 6; tag 5 for secrets), its
 * signatures, then User ID (13) and User Attribute (17) packets and
 * subkeys (14; 7) each with their signatures.
 *
 * Skipped wherever they appear: trust packets (12, local to a keyring),
 * Marker packets (10, "MUST be ignored", section 5.8), Padding packets
 * (21, "MUST be ignored", section 5.14) and packets of the non-critical
 * types 40 to 63 (section 4.3: "an unknown non-critical packet MUST be
 * ignored").  A packet of a critical type that RFC 9580 does not define
 * (0, 15, 16, 19, 20, 22 to 39) rejects the whole key (section 4.3); a
 * known packet out of place, or a second primary key, is an error too.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "openpgp_int.h"

/* The packet at *off; 0, or -1 with a message. */
static int next_packet(const unsigned char *d, size_t len, size_t *off,
                       struct tp_pgp_pkt *pk, char *err, size_t errlen)
{
	size_t o = *off, n, hl;
	unsigned char b;

	b = d[o];
	if (!(b & 0x80))
		goto bad_header;
	if (b & 0x40) { /* new format, RFC 9580 section 4.2.1 */
		pk->tag = b & 0x3f;
		if (len - o < 2)
			goto truncated;
		if (d[o + 1] < 192) {
			n = d[o + 1];
			hl = 2;
		} else if (d[o + 1] < 224) {
			if (len - o < 3)
				goto truncated;
			n = ((size_t)(d[o + 1] - 192) << 8) + d[o + 2] + 192;
			hl = 3;
		} else if (d[o + 1] == 255) {
			if (len - o < 6)
				goto truncated;
			n = tp_be32(d + o + 2);
			hl = 6;
		} else {
			tp_err(err, errlen,
			       "packet at offset %zu (tag %d): partial body "
			       "lengths are not allowed in a key",
			       o, pk->tag);
			return -1;
		}
	} else { /* old format, RFC 9580 section 4.2.2 */
		pk->tag = (b >> 2) & 0x0f;
		switch (b & 3) {
		case 3:
			tp_err(err, errlen,
			       "packet at offset %zu (tag %d): indeterminate "
			       "length is not allowed in a key",
			       o, pk->tag);
			return -1;
		case 2:
			hl = 5;
			break;
		default:
			hl = (size_t)(b & 3) + 2;
		}
		if (len - o < hl)
			goto truncated;
		n = hl == 2   ? d[o + 1]
		    : hl == 3 ? ((size_t)d[o + 1] << 8) | d[o + 2]
		              : tp_be32(d + o + 1);
	}
	if (n > len - o - hl)
		goto truncated;
	pk->body = d + o + hl;
	pk->len = n;
	*off = o + hl + n;
	return 0;
truncated:
	tp_err(err, errlen,
	       "packet at offset %zu: truncated (its length runs past the "
	       "%zu octets of data)",
	       o, len);
	return -1;
bad_header:
	tp_err(err, errlen, "offset %zu: 0x%02x is not a packet header", o, b);
	return -1;
}

/* Packets that a key may carry and a reader must skip. */
static int skipped(int tag)
{
	return tag == TP_PGP_TAG_TRUST || tag == TP_PGP_TAG_MARKER ||
	       tag == TP_PGP_TAG_PADDING || tag >= TP_PGP_TAG_FIRST_NONCRITICAL;
}

/* The critical packet types that RFC 9580 section 5 defines. */
static int known_critical(int tag)
{
	return (tag >= 1 && tag <= 14) || tag == 17 || tag == 18;
}

/* All packets of d but those skipped(), into pp->pkt.  0, or -1 with
 * errno and a message. */
static int frame_all(const unsigned char *d, size_t len,
                     struct tp_pgp_packets *pp, char *err, size_t errlen)
{
	size_t off = 0, cap = 0;
	struct tp_pgp_pkt *grown;

	while (off < len) {
		if (pp->npkt == cap) {
			cap = cap ? cap * 2 : 16;
			grown = realloc(pp->pkt, cap * sizeof(*pp->pkt));
			if (grown == NULL) {
				tp_err(err, errlen, "out of memory");
				errno = ENOMEM;
				return -1;
			}
			pp->pkt = grown;
		}
		size_t at = off;
		int t;

		if (next_packet(d, len, &off, &pp->pkt[pp->npkt], err,
		                errlen) != 0)
			goto bad;
		t = pp->pkt[pp->npkt].tag;
		if (skipped(t))
			continue;
		if (!known_critical(t)) {
			tp_err(err, errlen,
			       "packet at offset %zu: unknown critical packet "
			       "type (tag %d, RFC 9580 section 4.3)",
			       at, t);
			goto bad;
		}
		pp->npkt++;
	}
	if (pp->npkt == 0) {
		tp_err(err, errlen, "no packets");
		goto bad;
	}
	return 0;
bad:
	errno = EBADMSG;
	return -1;
}

/* Does a packet of tag t (not the first) open a component?  Which, in
 * *kind. */
static int opens(int t, int allow_secret, enum tp_pgp_comp_kind *kind)
{
	switch (t) {
	case TP_PGP_TAG_USER_ID:
		*kind = TP_PGP_COMP_UID;
		return 1;
	case TP_PGP_TAG_USER_ATTRIBUTE:
		*kind = TP_PGP_COMP_ATTRIBUTE;
		return 1;
	case TP_PGP_TAG_PUBLIC_SUBKEY:
		*kind = TP_PGP_COMP_SUBKEY;
		return 1;
	case TP_PGP_TAG_SECRET_SUBKEY:
		*kind = TP_PGP_COMP_SUBKEY;
		return allow_secret;
	}
	return 0;
}

/* Group the packets by component, checking their order.  0, or -1 with
 * errno and a message. */
static int group(struct tp_pgp_packets *pp, int allow_secret, char *err,
                 size_t errlen)
{
	enum tp_pgp_comp_kind kind = TP_PGP_COMP_PRIMARY;
	struct tp_pgp_comp *c;
	size_t i, nc = 0;

	c = calloc(pp->npkt, sizeof(*c));
	if (c == NULL) {
		tp_err(err, errlen, "out of memory");
		errno = ENOMEM;
		return -1;
	}
	pp->comp = c;
	for (i = 0; i < pp->npkt; i++) {
		int t = pp->pkt[i].tag;

		if (i == 0 && t != TP_PGP_TAG_PUBLIC_KEY &&
		    !(allow_secret && t == TP_PGP_TAG_SECRET_KEY)) {
			tp_err(err, errlen,
			       "the first packet (tag %d) is not a %skey", t,
			       allow_secret ? "" : "public ");
			goto bad;
		}
		if (i == 0 || opens(t, allow_secret, &kind)) {
			c[nc].kind = kind;
			c[nc].index = i;
			c[nc].first = i + 1;
			nc++;
		} else if (t == TP_PGP_TAG_SIGNATURE) {
			c[nc - 1].nsigs++;
		} else {
			tp_err(err, errlen,
			       "unexpected packet (tag %d) at "
			       "position %zu of a %s key",
			       t, i + 1,
			       allow_secret ? "transferable"
			                    : "transferable public");
			goto bad;
		}
	}
	pp->ncomp = nc;
	return 0;
bad:
	errno = EBADMSG;
	return -1;
}

int tp_pgp_split(const unsigned char *d, size_t len, int allow_secret,
                 struct tp_pgp_packets *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (frame_all(d, len, out, err, errlen) != 0 ||
	    group(out, allow_secret, err, errlen) != 0) {
		int saved = errno;

		tp_pgp_packets_free(out);
		errno = saved;
		return -1;
	}
	return 0;
}

void tp_pgp_packets_free(struct tp_pgp_packets *pp)
{
	free(pp->pkt);
	free(pp->comp);
	memset(pp, 0, sizeof(*pp));
}

int tp_pgp_get_mpi(const unsigned char **p, size_t *left, tlspool_span *out)
{
	size_t bits, n;

	if (*left < 2)
		return -1;
	bits = ((size_t)(*p)[0] << 8) | (*p)[1];
	n = (bits + 7) / 8;
	if (*left - 2 < n)
		return -1;
	out->data = *p + 2;
	out->len = n;
	/* leading zero octets carry nothing (RFC 9580 section 3.2) */
	while (out->len > 0 && out->data[0] == 0) {
		out->data++;
		out->len--;
	}
	*p += 2 + n;
	*left -= 2 + n;
	return 0;
}
