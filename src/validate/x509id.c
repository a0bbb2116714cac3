/*
 * Identities named by X.509 certificates (docs/architecture.md, "Identities")
 * and the RFC 6125 name check that PKIX-TA(0), PKIX-EE(1) and DANE-TA(2) need
 * (RFC 7671 section 5.2; DANE-EE(3) ignores names, section 5.1).
 *
 * Outline:
 * 1. The subject DN is read as its RDN sequence in DER order, the most
 *    general RDN first.  If any RDN is dc= (RFC 4519 section 2.4), the DN
 *    decides: the dc= RDNs must be single-valued, come first and be
 *    contiguous; each is one LDH label; together, most specific first,
 *    they spell the domain (RFC 2247 section 4).  If the RDN right after
 *    them is uid=, the certificate names "uid@domain"; a uid= anywhere
 *    else makes the DN ambiguous, and it names nothing.  Other RDNs may
 *    follow (more specific).
 * 2. Without dc= RDNs the subjectAltName decides: the first dNSName that
 *    is a host name (not a wildcard) for a domain, else the first
 *    rfc822Name for a user.
 * 3. Name check: a host reference matches the dc= domain, or any
 *    subjectAltName dNSName, wildcards allowed only as the complete
 *    leftmost label of a name with at least three labels, matching exactly
 *    one label (RFC 6125 section 6.4.3; partial-label wildcards as in
 *    "w*.example.test" are refused, as RFC 9525 section 6.3 does).  A user
 *    reference matches the uid=/dc= identity or an rfc822Name, the local
 *    part exactly and the domain without case.  The subject CN is never a
 *    name: RFC 9525 section 6.3 dropped the CN-ID fallback, and an
 *    unchecked CN is what lets one certificate speak for any name.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdio.h>

#include "internal.h"

#define OID_DC   "0.9.2342.19200300.100.1.25"
#define OID_UID  "0.9.2342.19200300.100.1.1"
#define MAX_RDNS 64

/* Universal tags (X.680 section 8.6) of the strings that may carry a dc=
 * or uid= value. */
enum {
	ASN1_UTF8_STRING = 12,
	ASN1_PRINTABLE_STRING = 19,
	ASN1_IA5_STRING = 22,
};

static int string_tag(unsigned long tag)
{
	return tag == ASN1_UTF8_STRING || tag == ASN1_PRINTABLE_STRING ||
	       tag == ASN1_IA5_STRING;
}

static int oid_is(const gnutls_datum_t *oid, const char *want)
{
	size_t n = strlen(want);

	/* GnuTLS may count the OID string's terminating NUL. */
	return (oid->size == n || (oid->size == n + 1 && oid->data[n] == 0)) &&
	       memcmp(oid->data, want, n) == 0;
}

/* A local part we accept in an identity: 1..64 printable ASCII octets
 * (RFC 5321 section 4.5.3.1.1), no '@', no space, no quotes. */
static int good_local(const unsigned char *p, size_t n)
{
	size_t i;

	if (n == 0 || n > 64)
		return 0;
	for (i = 0; i < n; i++)
		if (p[i] <= 0x20 || p[i] >= 0x7f || p[i] == '@' ||
		    p[i] == '"' || p[i] == '\\')
			return 0;
	return 1;
}

/* Is this, as a whole, one LDH label (RFC 1034 section 3.5, with digits
 * first allowed per RFC 1123)? */
static int good_label(const unsigned char *p, size_t n)
{
	char buf[64];

	if (n == 0 || n > 63 || memchr(p, '.', n) != NULL)
		return 0;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return tlspool_check_domain(buf, 0) == 0;
}

/* The subject DN's RDNs as far as names go. */
struct rdns {
	enum { RDN_OTHER, RDN_DC, RDN_UID } kind[MAX_RDNS];
	gnutls_datum_t val[MAX_RDNS]; /* of the first AVA */
	size_t n, ndc, nuid;
	int hidden; /* a dc= or uid= in a multi-valued RDN */
};

/* Read the subject's RDNs in DER order.  0, or -1 (unreadable, too many,
 * or a dc=/uid= value that is not a string). */
static int read_rdns(gnutls_x509_crt_t crt, struct rdns *r)
{
	gnutls_x509_dn_t dn;
	gnutls_x509_ava_st ava;
	int rv, iava;
	size_t n;

	memset(r, 0, sizeof(*r));
	if (gnutls_x509_crt_get_subject(crt, &dn) < 0)
		return -1;
	for (n = 0;; n++) {
		rv = gnutls_x509_dn_get_rdn_ava(dn, (int)n, 0, &ava);
		if (rv == GNUTLS_E_ASN1_ELEMENT_NOT_FOUND)
			break;
		if (rv < 0 || n == MAX_RDNS)
			return -1;
		r->kind[n] = oid_is(&ava.oid, OID_DC)    ? RDN_DC
		             : oid_is(&ava.oid, OID_UID) ? RDN_UID
		                                         : RDN_OTHER;
		r->val[n] = ava.value;
		if (r->kind[n] != RDN_OTHER && !string_tag(ava.value_tag))
			return -1;
		r->ndc += r->kind[n] == RDN_DC;
		r->nuid += r->kind[n] == RDN_UID;
		/* A multi-valued RDN is never a name; one that hides a dc=
		 * or uid= would be a second, conflicting claim. */
		for (iava = 1;
		     gnutls_x509_dn_get_rdn_ava(dn, (int)n, iava, &ava) == 0;
		     iava++) {
			if (r->kind[n] != RDN_OTHER ||
			    oid_is(&ava.oid, OID_DC) ||
			    oid_is(&ava.oid, OID_UID))
				r->hidden = 1;
		}
	}
	r->n = n;
	return 0;
}

/* The domain the dc= RDNs spell, most specific label first (RFC 2247
 * section 4), lowercase.  Its length, or -1. */
static int dc_domain(const struct rdns *r, char domain[256])
{
	size_t dlen = 0, i, k;

	for (k = r->ndc; k-- > 0;) {
		if (!good_label(r->val[k].data, r->val[k].size) ||
		    dlen + r->val[k].size + 2 > 256)
			return -1;
		if (dlen)
			domain[dlen++] = '.';
		for (i = 0; i < r->val[k].size; i++) {
			char c = (char)r->val[k].data[i];
			domain[dlen++] = c >= 'A' && c <= 'Z'
			                         ? (char)(c - 'A' + 'a')
			                         : c;
		}
	}
	domain[dlen] = '\0';
	return tlspool_check_domain(domain, 0) == 0 ? (int)dlen : -1;
}

/*
 * Step 1 of the outline.  Returns the length written to buf, -1 with
 * errno ENOENT when the DN has no dc= RDN, EBADMSG when its dc=/uid= RDNs
 * do not form a name, ENAMETOOLONG when buflen is too small.  *user is
 * set when the name is user@domain.
 */
static int dn_identity(gnutls_x509_crt_t crt, char *buf, size_t buflen,
                       int *user)
{
	struct rdns r;
	const gnutls_datum_t *uid;
	char domain[256];
	size_t i, dlen;
	int len;

	*user = 0;
	if (read_rdns(crt, &r) != 0)
		goto bad;
	if (r.ndc == 0 && !r.hidden) {
		errno = ENOENT; /* the DN does not name; the SAN may */
		return -1;
	}
	/* dc= RDNs open the DN (DER order: most general first), contiguous;
	 * at most one uid= right after them; no other dc=/uid=. */
	if (r.hidden || r.ndc == 0 || r.nuid > 1)
		goto bad;
	for (i = 0; i < r.n; i++)
		if ((r.kind[i] == RDN_DC) != (i < r.ndc) ||
		    (r.kind[i] == RDN_UID && i != r.ndc))
			goto bad;
	if ((len = dc_domain(&r, domain)) < 0)
		goto bad;
	dlen = (size_t)len;
	if (r.nuid == 0) {
		if (dlen + 1 > buflen)
			goto toolong;
		memcpy(buf, domain, dlen + 1);
		return (int)dlen;
	}
	uid = &r.val[r.ndc];
	if (!good_local(uid->data, uid->size))
		goto bad;
	if (uid->size + 1 + dlen + 1 > buflen)
		goto toolong;
	memcpy(buf, uid->data, uid->size);
	buf[uid->size] = '@';
	memcpy(buf + uid->size + 1, domain, dlen + 1);
	*user = 1;
	return (int)(uid->size + 1 + dlen);
toolong:
	errno = ENAMETOOLONG;
	return -1;
bad:
	errno = EBADMSG;
	return -1;
}

/* A presented rfc822Name "local@domain" that we accept. */
static int good_mailbox(const char *p, size_t n)
{
	const char *at = memchr(p, '@', n);
	char dom[256];
	size_t dl;

	if (at == NULL ||
	    !good_local((const unsigned char *)p, (size_t)(at - p)))
		return 0;
	dl = n - (size_t)(at - p) - 1;
	if (dl == 0 || dl >= sizeof(dom))
		return 0;
	memcpy(dom, at + 1, dl);
	dom[dl] = '\0';
	return tlspool_check_domain(dom, 0) == 0;
}

/* The subjectAltName entry seq, NUL-terminated in buf (which has room for
 * 256 octets).  Returns the GnuTLS SAN type, 0 for an entry that is too
 * long or holds a NUL (skipped), or -1 at the end. */
static int san_entry(gnutls_x509_crt_t crt, unsigned seq, char *buf,
                     size_t *len)
{
	size_t size = 256;
	int rv = gnutls_x509_crt_get_subject_alt_name(crt, seq, buf, &size,
	                                              NULL);

	if (rv == GNUTLS_E_SHORT_MEMORY_BUFFER)
		return 0;
	if (rv < 0)
		return -1;
	if (size >= 256 || memchr(buf, '\0', size) != NULL)
		return 0;
	buf[size] = '\0';
	*len = size;
	return rv;
}

int tp_x509_identity(gnutls_x509_crt_t crt, char *buf, size_t buflen)
{
	char san[257];
	size_t len = 0;
	unsigned seq;
	int rv, user, type, want;

	rv = dn_identity(crt, buf, buflen, &user);
	if (rv >= 0 || errno != ENOENT)
		return rv;
	/* No dc= RDNs: the subjectAltName, domains before users. */
	for (want = GNUTLS_SAN_DNSNAME;; want = GNUTLS_SAN_RFC822NAME) {
		for (seq = 0; seq < 1024; seq++) {
			type = san_entry(crt, seq, san, &len);
			if (type < 0)
				break;
			if (type != want)
				continue;
			if (want == GNUTLS_SAN_DNSNAME
			            ? tlspool_check_domain(san, 0) != 0
			            : !good_mailbox(san, len))
				continue;
			if (len >= buflen) {
				errno = ENAMETOOLONG;
				return -1;
			}
			memcpy(buf, san, len + 1);
			if (want == GNUTLS_SAN_DNSNAME) {
				for (size_t i = 0; i < len; i++)
					if (buf[i] >= 'A' && buf[i] <= 'Z')
						buf[i] = (char)(buf[i] - 'A' +
						                'a');
				/* one final dot is not part of the identity */
				if (len > 1 && buf[len - 1] == '.')
					buf[--len] = '\0';
			}
			return (int)len;
		}
		if (want == GNUTLS_SAN_RFC822NAME)
			break;
	}
	errno = ENOENT;
	return -1;
}

int tp_dns_id_matches(const char *p, size_t plen, const char *ref)
{
	size_t rlen = strlen(ref);
	const char *rest;

	/* Compare without one final dot on either side. */
	if (plen > 0 && p[plen - 1] == '.')
		plen--;
	if (rlen > 0 && ref[rlen - 1] == '.')
		rlen--;
	if (plen == 0 || rlen == 0 || memchr(ref, '*', rlen) != NULL)
		return 0;
	if (plen >= 2 && p[0] == '*' && p[1] == '.') {
		/* "*.example.test": at least two labels after the wildcard,
		 * and no other wildcard. */
		const char *suffix = p + 1; /* ".example.test" */
		size_t slen = plen - 1;

		if (memchr(suffix, '*', slen) != NULL ||
		    memchr(suffix + 1, '.', slen - 1) == NULL)
			return 0;
		rest = memchr(ref, '.', rlen);
		if (rest == NULL || rest == ref) /* one non-empty label */
			return 0;
		return (size_t)(ref + rlen - rest) == slen &&
		       strncasecmp(rest, suffix, slen) == 0;
	}
	if (memchr(p, '*', plen) != NULL)
		return 0;
	return plen == rlen && strncasecmp(p, ref, plen) == 0;
}

/* user@domain against user@domain: local part exact, domain without case. */
static int mailbox_equal(const char *a, size_t alen, const char *b)
{
	const char *aat = memchr(a, '@', alen), *bat = strchr(b, '@');

	if (aat == NULL || bat == NULL || aat - a != bat - b ||
	    memcmp(a, b, (size_t)(aat - a)) != 0)
		return 0;
	char dom[256];
	size_t dl = alen - (size_t)(aat - a) - 1;

	if (dl >= sizeof(dom))
		return 0;
	memcpy(dom, aat + 1, dl);
	dom[dl] = '\0';
	return tp_name_equal(dom, bat + 1);
}

int tp_x509_names(gnutls_x509_crt_t crt, const char *ref)
{
	char id[320], san[257];
	size_t len = 0;
	unsigned seq;
	int rv, user, type, want_user = strchr(ref, '@') != NULL;

	rv = dn_identity(crt, id, sizeof(id), &user);
	if (rv < 0 && errno != ENOENT)
		return -1; /* an ambiguous DN names nothing, fail closed */
	if (rv >= 0 && user == want_user &&
	    (user ? mailbox_equal(id, (size_t)rv, ref)
	          : tp_name_equal(id, ref)))
		return 1;
	for (seq = 0; seq < 1024; seq++) {
		type = san_entry(crt, seq, san, &len);
		if (type < 0)
			break;
		if (!want_user && type == GNUTLS_SAN_DNSNAME &&
		    tp_dns_id_matches(san, len, ref))
			return 1;
		if (want_user && type == GNUTLS_SAN_RFC822NAME &&
		    good_mailbox(san, len) && mailbox_equal(san, len, ref))
			return 1;
	}
	return 0;
}

static int import(const tlspool_span *cert, gnutls_x509_crt_t *crt)
{
	gnutls_datum_t d;

	if (cert == NULL || cert->data == NULL || cert->len == 0 ||
	    cert->len > 0xffffffffu) {
		errno = EINVAL;
		return -1;
	}
	d.data = (unsigned char *)cert->data;
	d.size = (unsigned)cert->len;
	if (gnutls_x509_crt_init(crt) < 0) {
		errno = ENOMEM;
		return -1;
	}
	if (gnutls_x509_crt_import(*crt, &d, GNUTLS_X509_FMT_DER) < 0) {
		gnutls_x509_crt_deinit(*crt);
		errno = EBADMSG;
		return -1;
	}
	return 0;
}

/*
 * The last certificate this thread asked about, with what identity() and
 * describe() said of it: a call decodes its peer's certificate once, not
 * once for each question (docs/architecture.md, "Performance"), and a
 * peer met again is not decoded at all.  Keyed by the whole DER: the
 * answers depend on nothing else.  Certificates above MEMO_MAX bytes are
 * not kept.
 */
#define MEMO_MAX   16384
#define MEMO_IDLEN 1025

struct memo {
	unsigned char *der;
	size_t len, cap;
	int have_id, id_rv, id_errno;
	char id[MEMO_IDLEN];
	int have_info, info_rv, info_errno;
	tlspool_x509_info info;
};

static pthread_key_t memo_key;
static pthread_once_t memo_once = PTHREAD_ONCE_INIT;

static void memo_free(void *p)
{
	struct memo *m = p;

	if (m != NULL)
		free(m->der);
	free(m);
}

static void memo_key_init(void)
{
	if (pthread_key_create(&memo_key, memo_free) != 0)
		memo_key = (pthread_key_t)-1;
}

/* This thread's memo, made to hold cert (emptied when cert is another);
 * NULL when it cannot (then the caller decodes as before). */
static struct memo *memo_for(const tlspool_span *cert)
{
	struct memo *m;

	if (cert == NULL || cert->data == NULL || cert->len == 0 ||
	    cert->len > MEMO_MAX)
		return NULL;
	pthread_once(&memo_once, memo_key_init);
	if (memo_key == (pthread_key_t)-1)
		return NULL;
	m = pthread_getspecific(memo_key);
	if (m == NULL) {
		if ((m = calloc(1, sizeof(*m))) == NULL)
			return NULL;
		if (pthread_setspecific(memo_key, m) != 0) {
			free(m);
			return NULL;
		}
	}
	if (m->len == cert->len && memcmp(m->der, cert->data, cert->len) == 0)
		return m;
	if (m->cap < cert->len) {
		unsigned char *d = realloc(m->der, cert->len);

		if (d == NULL)
			return NULL;
		m->der = d;
		m->cap = cert->len;
	}
	memcpy(m->der, cert->data, cert->len);
	m->len = cert->len;
	m->have_id = m->have_info = 0;
	return m;
}

static int identity_decode(const tlspool_span *cert, char *buf, size_t buflen)
{
	gnutls_x509_crt_t crt;
	int rv;

	buf[0] = '\0';
	if (import(cert, &crt) != 0)
		return -1;
	rv = tp_x509_identity(crt, buf, buflen);
	if (rv < 0)
		buf[0] = '\0';
	gnutls_x509_crt_deinit(crt);
	return rv;
}

int tlspool_x509_identity(const tlspool_span *cert, char *buf, size_t buflen)
{
	struct memo *m;

	if (buf == NULL || buflen == 0) {
		errno = EINVAL;
		return -1;
	}
	buf[0] = '\0';
	m = memo_for(cert);
	if (m == NULL)
		return identity_decode(cert, buf, buflen);
	if (!m->have_id) {
		m->id_rv = identity_decode(cert, m->id, sizeof(m->id));
		m->id_errno = errno;
		if (m->id_rv < 0 && m->id_errno == ENAMETOOLONG)
			return identity_decode(cert, buf, buflen);
		m->have_id = 1;
	}
	if (m->id_rv < 0) {
		errno = m->id_errno;
		return -1;
	}
	if ((size_t)m->id_rv >= buflen) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, m->id, (size_t)m->id_rv + 1);
	return m->id_rv;
}

int tlspool_x509_names(const tlspool_span *cert, const char *reference)
{
	gnutls_x509_crt_t crt;
	int rv;

	if (reference == NULL) {
		errno = EINVAL;
		return -1;
	}
	if (import(cert, &crt) != 0)
		return -1;
	rv = tp_x509_names(crt, reference);
	gnutls_x509_crt_deinit(crt);
	return rv;
}

/* A DN in RFC 4514 order into buf; "" when it cannot be read. */
static void dn_text(gnutls_x509_crt_t crt, int issuer, char *buf, size_t len)
{
	gnutls_datum_t dn = {NULL, 0};
	int r = issuer ? gnutls_x509_crt_get_issuer_dn3(crt, &dn, 0)
	               : gnutls_x509_crt_get_dn3(crt, &dn, 0);

	snprintf(buf, len, "%s", r >= 0 && dn.data ? (char *)dn.data : "");
	gnutls_free(dn.data);
}

static int describe_decode(const tlspool_span *cert, tlspool_x509_info *out)
{
	gnutls_x509_crt_t crt;
	tlspool_span tbs, spki;

	memset(out, 0, sizeof(*out));
	if (import(cert, &crt) != 0)
		return -1;
	if (tp_der_cert_parts(cert->data, cert->len, &tbs, &spki) != 0 ||
	    gnutls_hash_fast(GNUTLS_DIG_SHA256, spki.data, spki.len,
	                     out->spki_sha256) < 0) {
		gnutls_x509_crt_deinit(crt);
		errno = EBADMSG;
		return -1;
	}
	dn_text(crt, 0, out->subject, sizeof(out->subject));
	dn_text(crt, 1, out->issuer, sizeof(out->issuer));
	out->not_before = gnutls_x509_crt_get_activation_time(crt);
	out->not_after = gnutls_x509_crt_get_expiration_time(crt);
	out->self_issued = gnutls_x509_crt_check_issuer(crt, crt) == 1;
	gnutls_x509_crt_deinit(crt);
	return 0;
}

int tlspool_x509_describe(const tlspool_span *cert, tlspool_x509_info *out)
{
	struct memo *m;

	if (out == NULL) {
		errno = EINVAL;
		return -1;
	}
	m = memo_for(cert);
	if (m == NULL)
		return describe_decode(cert, out);
	if (!m->have_info) {
		m->info_rv = describe_decode(cert, &m->info);
		m->info_errno = errno;
		m->have_info = 1;
	}
	*out = m->info;
	if (m->info_rv < 0) {
		memset(out, 0, sizeof(*out));
		errno = m->info_errno;
		return -1;
	}
	return 0;
}
