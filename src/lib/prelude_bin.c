/*
 * The STARTTLS preludes that are not lines: XMPP (RFC 6120 section 5.4,
 * read one tag at a time up to its '>'), LDAP (RFC 4511 section 4.14,
 * the StartTLS extended operation, BER read by its length), PostgreSQL
 * (SSLRequest, protocol 3.0 "SSL Session Encryption") and MySQL (the
 * SSL request of the client/server protocol 10).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <gnutls/crypto.h>

#include "prelude_int.h"

#define REP(c, field) (c)->p->field, sizeof((c)->p->field)

/* --- XMPP: RFC 6120 sections 4.2, 4.3, 5.4 ---------------------------------
 */

#define NS_TLS    "urn:ietf:params:xml:ns:xmpp-tls"
#define MAX_TAGS  500
#define STREAM_NS "http://etherx.jabber.org/streams"

/* One tag into c->line: the text before it is passed over (c->line then
 * starts at '<').  0, or -1. */
static int xml_tag(struct tp_pc *c, const char **tag, size_t *text)
{
	char *lt;

	*tag = NULL;
	*text = 0;
	if (tp_read_delim(c, '>') != 0)
		return -1;
	lt = memchr(c->line, '<', c->len);
	if (lt == NULL)
		return tp_refuse(c, "the %s sent '>' outside a tag: %s",
		                 c->server ? "client" : "server",
		                 tp_show(c, c->line, c->len));
	*text = (size_t)(lt - c->line);
	*tag = lt;
	return 0;
}

/* The tag's name (after '<' or "</"), into out. */
static void tag_name(const char *tag, char *out, size_t cap)
{
	size_t n;

	tag += tag[1] == '/' ? 2 : 1;
	n = strcspn(tag, " \t\r\n/>");
	snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), tag);
}

/* The value of attribute name in tag, "" if none. */
static void attr(const char *tag, const char *name, char *out, size_t cap)
{
	size_t n = strlen(name);
	const char *s = tag;

	out[0] = '\0';
	while ((s = strstr(s, name)) != NULL) {
		if ((s[-1] == ' ' || s[-1] == '\t' || s[-1] == '\n') &&
		    s[n] == '=' && (s[n + 1] == '\'' || s[n + 1] == '"')) {
			const char *v = s + n + 2, *e = strchr(v, s[n + 1]);

			if (e != NULL)
				snprintf(out, cap, "%.*s", (int)(e - v), v);
			return;
		}
		s += n;
	}
}

/* The xmlns of tag is ns (in either quotes). */
static int has_ns(const char *tag, const char *ns)
{
	char v[128];

	attr(tag, "xmlns", v, sizeof(v));
	return strcmp(v, ns) == 0;
}

static int self_closing(const char *tag, size_t len)
{
	return len >= 2 && tag[len - 2] == '/';
}

static int is_stream_error(const char *name)
{
	return strcmp(name, "stream:error") == 0;
}

static int xmpp_stream_error(struct tp_pc *c)
{
	char what[256] = "";
	int n;

	/* the condition is the first child (RFC 6120 section 4.9.2) */
	for (n = 0; n < 10; n++) {
		const char *tag;
		size_t text;

		if (xml_tag(c, &tag, &text) != 0)
			break;
		if (tag[1] != '/' && what[0] == '\0')
			tag_name(tag, what, sizeof(what));
		if (strncmp(tag, "</stream:error", 14) == 0)
			break;
	}
	return tp_refuse(c, "the %s sent a stream error: %s",
	                 c->server ? "client" : "server",
	                 what[0] ? what : "(no condition)");
}

/* The stream header of the peer: the tag of <stream:stream ...>. */
static int xmpp_header(struct tp_pc *c)
{
	int n;

	for (n = 0; n < 4; n++) {
		const char *tag;
		size_t text;
		char name[64];

		if (xml_tag(c, &tag, &text) != 0)
			return -1;
		if (strncmp(tag, "<?xml", 5) == 0)
			continue;
		tag_name(tag, name, sizeof(name));
		if (strcmp(name, "stream:stream") == 0)
			return 0;
		return tp_refuse(c,
		                 "the %s sent %s where the stream header was "
		                 "due (RFC 6120 section 4.7)",
		                 c->server ? "client" : "server",
		                 tp_show(c, tag, strlen(tag)));
	}
	return tp_refuse(c, "no stream header");
}

static const char *xmpp_ns(const struct tp_pc *c)
{
	return strcmp(c->pr->name, "xmpp-server") == 0 ? "jabber:server"
	                                               : "jabber:client";
}

/* <stream:features>: its children's names to the capabilities (with the
 * mechanisms' texts); 1 when starttls is offered. */
static int xmpp_features(struct tp_pc *c, int *offered)
{
	int depth = 1, n, in_mech = 0;
	char cur[64] = "";

	*offered = 0;
	for (n = 0; n < MAX_TAGS; n++) {
		const char *tag;
		size_t text, tl;
		char name[64];

		if (xml_tag(c, &tag, &text) != 0)
			return -1;
		tl = strlen(tag);
		tag_name(tag, name, sizeof(name));
		if (tag[1] == '/') {
			if (in_mech && strcmp(name, "mechanism") == 0 &&
			    text > 0) {
				char m[160];

				snprintf(m, sizeof(m), "mechanism %.*s",
				         (int)(text < 140 ? text : 140),
				         c->line);
				tp_report_add(REP(c, capabilities), m,
				              strlen(m));
			}
			if (strcmp(name, "mechanisms") == 0)
				in_mech = 0;
			if (--depth == 0)
				return 0;
			continue;
		}
		if (depth == 1) {
			snprintf(cur, sizeof(cur), "%s", name);
			tp_report_add(REP(c, capabilities), name, strlen(name));
			if (strcmp(name, "starttls") == 0 &&
			    has_ns(tag, NS_TLS))
				*offered = 1;
			in_mech = strcmp(name, "mechanisms") == 0;
		} else if (depth == 2 && strcmp(cur, "starttls") == 0 &&
		           strcmp(name, "required") == 0) {
			tp_report_add(REP(c, capabilities), "starttls required",
			              17);
		}
		if (!self_closing(tag, tl))
			depth++;
	}
	return tp_refuse(c, "the server's features hold more than %d tags",
	                 MAX_TAGS);
}

int tp_xmpp_client(struct tp_pc *c)
{
	const char *tag;
	size_t text;
	char name[64];
	int offered = 0, n;

	if (c->p->peerdomain == NULL || c->p->peerdomain[0] == '\0')
		return tp_fail(EINVAL,
		               "%s client: no peer domain for the "
		               "stream header's to= (RFC 6120 section "
		               "4.7.2)",
		               c->pr->name);
	tp_step(c, "greeting");
	snprintf(c->p->hello, sizeof(c->p->hello), "%s", c->p->peerdomain);
	if (strcmp(c->pr->name, "xmpp-server") == 0) {
		if (tp_sendf(c,
		             "<?xml version='1.0'?><stream:stream "
		             "xmlns='jabber:server' xmlns:stream='" STREAM_NS
		             "' from='%s' to='%s' version='1.0'>",
		             c->myname, c->p->peerdomain) != 0)
			return -1;
	} else if (tp_sendf(c,
	                    "<?xml version='1.0'?><stream:stream "
	                    "xmlns='jabber:client' xmlns:stream='" STREAM_NS
	                    "' to='%s' version='1.0'>",
	                    c->p->peerdomain) != 0)
		return -1;
	if (xmpp_header(c) != 0)
		return -1;
	tag = memchr(c->line, '<', c->len);
	tp_report_add(REP(c, greeting), tag, strlen(tag));
	tp_step(c, "capabilities");
	for (n = 0;; n++) {
		if (n == 4)
			return tp_refuse(c, "no stream features from the "
			                    "server");
		if (xml_tag(c, &tag, &text) != 0)
			return -1;
		tag_name(tag, name, sizeof(name));
		if (is_stream_error(name))
			return xmpp_stream_error(c);
		if (strcmp(name, "stream:features") != 0)
			return tp_refuse(c,
			                 "the server sent %s where its stream "
			                 "features were due (RFC 6120 section "
			                 "4.3.2)",
			                 tp_show(c, tag, strlen(tag)));
		if (self_closing(tag, strlen(tag)))
			break;
		if (xmpp_features(c, &offered) != 0)
			return -1;
		break;
	}
	if (!offered)
		return tp_refuse(c,
		                 "the server offers no <starttls xmlns='" NS_TLS
		                 "'/> (RFC 6120 section 5.4.1) in its "
		                 "features: %s",
		                 c->p->capabilities[0] ? c->p->capabilities
		                                       : "(none)");
	tp_step(c, "starttls");
	snprintf(c->p->request, sizeof(c->p->request),
	         "<starttls xmlns='" NS_TLS "'/>");
	if (tp_sendf(c, "%s", c->p->request) != 0)
		return -1;
	if (xml_tag(c, &tag, &text) != 0)
		return -1;
	tp_report_add(REP(c, reply), tag, strlen(tag));
	tag_name(tag, name, sizeof(name));
	if (is_stream_error(name))
		return xmpp_stream_error(c);
	if (strcmp(name, "proceed") != 0 || !has_ns(tag, NS_TLS))
		return tp_refuse(c,
		                 "the server answered STARTTLS with: %s "
		                 "(RFC 6120 section 5.4.2.2)",
		                 tp_show(c, tag, strlen(tag)));
	if (!self_closing(tag, strlen(tag))) {
		if (xml_tag(c, &tag, &text) != 0)
			return -1;
		if (strncmp(tag, "</proceed", 9) != 0)
			return tp_refuse(c, "<proceed> is not closed: %s",
			                 tp_show(c, tag, strlen(tag)));
	}
	return tp_quiet(c);
}

int tp_xmpp_server(struct tp_pc *c)
{
	const char *tag, *from;
	size_t text;
	char name[64], to[256], id[33];
	unsigned char rnd[16];
	int i;

	tp_step(c, "greeting");
	if (xmpp_header(c) != 0)
		return -1;
	tag = memchr(c->line, '<', c->len);
	attr(tag, "to", to, sizeof(to));
	snprintf(c->p->hello, sizeof(c->p->hello), "%s", to);
	if (!has_ns(tag, xmpp_ns(c))) {
		char ns[128];

		attr(tag, "xmlns", ns, sizeof(ns));
		tp_sendf(c,
		         "<?xml version='1.0'?><stream:stream xmlns='%s' "
		         "xmlns:stream='" STREAM_NS "' version='1.0'>"
		         "<stream:error><invalid-namespace "
		         "xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
		         "</stream:error></stream:stream>",
		         xmpp_ns(c));
		return tp_refuse(c,
		                 "the client's stream is of namespace '%s', "
		                 "not '%s' (RFC 6120 section 4.8.1)",
		                 ns, xmpp_ns(c));
	}
	if (strpbrk(to, "<>'\"&") != NULL)
		to[0] = '\0';
	from = c->p->myname != NULL && c->p->myname[0] != '\0' ? c->myname
	       : to[0] != '\0'                                 ? to
	                                                       : c->myname;
	gnutls_rnd(GNUTLS_RND_NONCE, rnd, sizeof(rnd));
	for (i = 0; i < 16; i++)
		snprintf(id + 2 * i, 3, "%02x", rnd[i]);
	snprintf(c->p->greeting, sizeof(c->p->greeting),
	         "<stream:stream xmlns='%s' xmlns:stream='" STREAM_NS
	         "' id='%s' from='%s' version='1.0'>",
	         xmpp_ns(c), id, from);
	snprintf(c->p->capabilities, sizeof(c->p->capabilities),
	         "starttls\nstarttls required");
	if (tp_sendf(c,
	             "<?xml version='1.0'?>%s<stream:features><starttls "
	             "xmlns='" NS_TLS "'><required/></starttls>"
	             "</stream:features>",
	             c->p->greeting) != 0)
		return -1;
	tp_step(c, "commands");
	if (xml_tag(c, &tag, &text) != 0)
		return -1;
	tag_name(tag, name, sizeof(name));
	if (strcmp(name, "starttls") != 0 || !has_ns(tag, NS_TLS)) {
		tp_sendf(c, "<stream:error><policy-violation "
		            "xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
		            "</stream:error></stream:stream>");
		return tp_refuse(c,
		                 "the client sent %s where STARTTLS was due "
		                 "(RFC 6120 section 5.3.1: required)",
		                 tp_show(c, tag, strlen(tag)));
	}
	snprintf(c->p->request, sizeof(c->p->request), "%s", tag);
	if (!self_closing(tag, strlen(tag))) {
		if (xml_tag(c, &tag, &text) != 0)
			return -1;
		if (strncmp(tag, "</starttls", 10) != 0)
			return tp_refuse(c, "<starttls> is not closed: %s",
			                 tp_show(c, tag, strlen(tag)));
	}
	tp_step(c, "starttls");
	if (tp_quiet(c) != 0)
		return -1;
	snprintf(c->p->reply, sizeof(c->p->reply),
	         "<proceed xmlns='" NS_TLS "'/>");
	return tp_sendf(c, "%s", c->p->reply);
}

/* --- LDAP: RFC 4511 sections 4.12, 4.14 ------------------------------------
 */

#define LDAP_STARTTLS_OID "1.3.6.1.4.1.1466.20037"
#define LDAP_NOTICE_OID   "1.3.6.1.4.1.1466.20036"

/* One BER element at *p (of end): its tag, contents and their length;
 * 0, or -1 when it does not fit. */
static int ber(const unsigned char **p, const unsigned char *end, unsigned *tag,
               const unsigned char **val, size_t *len)
{
	const unsigned char *s = *p;
	size_t l;

	if (end - s < 2)
		return -1;
	*tag = *s++;
	l = *s++;
	if (l & 0x80) {
		unsigned k = l & 0x7f;

		if (k == 0 || k > 3 || (size_t)(end - s) < k)
			return -1;
		for (l = 0; k > 0; k--)
			l = (l << 8) | *s++;
	}
	if ((size_t)(end - s) < l)
		return -1;
	*val = s;
	*len = l;
	*p = s + l;
	return 0;
}

/* One LDAPMessage into c->line, read by its length: its length. */
static int ldap_message(struct tp_pc *c, size_t *total)
{
	unsigned char *b = (unsigned char *)c->line;
	size_t l, hdr = 2;

	c->len = 0;
	*total = 0;
	if (tp_read_exact(c, b, 2) != 0)
		return -1;
	c->len = 2;
	if (b[0] != 0x30)
		return tp_refuse(c,
		                 "the %s sent no LDAPMessage (RFC 4511 "
		                 "section 4.1.1): %s",
		                 c->server ? "client" : "server",
		                 tp_show(c, c->line, 2));
	l = b[1];
	if (l & 0x80) {
		unsigned k = l & 0x7f, i;

		if (k == 0 || k > 3)
			return tp_refuse(c,
			                 "an LDAPMessage of length form "
			                 "0x%02x",
			                 b[1]);
		if (tp_read_exact(c, b + 2, k) != 0)
			return -1;
		hdr += k;
		for (l = 0, i = 0; i < k; i++)
			l = (l << 8) | b[2 + i];
	}
	if (l + hdr > c->pr->maxline)
		return tp_refuse(c,
		                 "the %s sent an LDAPMessage of %zu octets, "
		                 "more than %u (%s)",
		                 c->server ? "client" : "server", l + hdr,
		                 c->pr->maxline, c->pr->limit_ref);
	if (tp_read_exact(c, b + hdr, l) != 0)
		return -1;
	c->len = hdr + l;
	*total = c->len;
	return 0;
}

static const char *ldap_result_name(unsigned rc)
{
	switch (rc) {
	case 0:
		return "success";
	case 1:
		return "operationsError";
	case 2:
		return "protocolError";
	case 51:
		return "busy";
	case 52:
		return "unavailable";
	case 53:
		return "unwillingToPerform";
	case 80:
		return "other";
	}
	return "error";
}

int tp_ldap_client(struct tp_pc *c)
{
	static const unsigned char req[] = {
	        0x30, 0x1d, 0x02, 0x01, 0x01, 0x77, 0x18, 0x80, 0x16, '1', '.',
	        '3',  '.',  '6',  '.',  '1',  '.',  '4',  '.',  '1',  '.', '1',
	        '4',  '6',  '6',  '.',  '2',  '0',  '0',  '3',  '7'};
	const unsigned char *p, *end, *v, *op, *opend;
	unsigned tag, rc = 0;
	size_t len, total;
	char diag[256] = "", oid[64] = "";
	unsigned msgid; /* up to 4 octets: unsigned, no overflow */

	tp_step(c, "starttls");
	snprintf(c->p->request, sizeof(c->p->request),
	         "ExtendedRequest " LDAP_STARTTLS_OID " (messageID 1)");
	if (tp_send(c, req, sizeof(req)) != 0 || ldap_message(c, &total) != 0)
		return -1;
	p = (const unsigned char *)c->line;
	end = p + total;
	if (ber(&p, end, &tag, &v, &len) != 0)
		goto bad;
	p = v;
	end = v + len;
	if (ber(&p, end, &tag, &v, &len) != 0 || tag != 0x02 || len < 1 ||
	    len > 4)
		goto bad;
	for (msgid = 0; len > 0; len--)
		msgid = (msgid << 8) | (unsigned)*v++;
	if (ber(&p, end, &tag, &op, &len) != 0 || tag != 0x78)
		goto bad;
	opend = op + len;
	if (ber(&op, opend, &tag, &v, &len) != 0 || tag != 0x0a || len < 1 ||
	    len > 2)
		goto bad;
	for (; len > 0; len--)
		rc = (rc << 8) | *v++;
	if (ber(&op, opend, &tag, &v, &len) != 0 || tag != 0x04) /* DN */
		goto bad;
	if (ber(&op, opend, &tag, &v, &len) != 0 || tag != 0x04)
		goto bad;
	tp_printable(diag, sizeof(diag), (const char *)v, len);
	while (op < opend && ber(&op, opend, &tag, &v, &len) == 0)
		if (tag == 0x8a)
			snprintf(oid, sizeof(oid), "%.*s",
			         (int)(len < 63 ? len : 63), (const char *)v);
	snprintf(c->p->reply, sizeof(c->p->reply),
	         "ExtendedResponse resultCode %u (%s)%s%s%s%s", rc,
	         ldap_result_name(rc), diag[0] ? ": " : "", diag,
	         oid[0] ? " responseName " : "", oid);
	if (msgid == 0 && strcmp(oid, LDAP_NOTICE_OID) == 0)
		return tp_refuse(c,
		                 "the server sent a Notice of Disconnection "
		                 "(RFC 4511 section 4.4.1): %s",
		                 c->p->reply);
	if (msgid != 1)
		return tp_refuse(c, "the server answered messageID %u, not 1",
		                 msgid);
	if (rc != 0)
		return tp_refuse(c,
		                 "the server refused StartTLS (RFC 4511 "
		                 "section 4.14.2): %s",
		                 c->p->reply);
	return tp_quiet(c);
bad:
	return tp_refuse(c,
	                 "the server's answer is not an "
	                 "ExtendedResponse (RFC 4511 section 4.12): %s",
	                 tp_show(c, c->line, c->len));
}

int tp_ldap_server(struct tp_pc *c)
{
	const unsigned char *p, *end, *v, *mid, *op, *opend;
	unsigned tag;
	size_t len, midlen, total, oplen;
	unsigned char resp[64];
	size_t n = 0;

	tp_step(c, "commands");
	if (ldap_message(c, &total) != 0)
		return -1;
	p = (const unsigned char *)c->line;
	end = p + total;
	if (ber(&p, end, &tag, &v, &len) != 0)
		goto bad;
	p = v;
	end = v + len;
	if (ber(&p, end, &tag, &mid, &midlen) != 0 || tag != 0x02 ||
	    midlen < 1 || midlen > 4)
		goto bad;
	if (ber(&p, end, &tag, &op, &oplen) != 0)
		goto bad;
	if (tag != 0x77)
		return tp_refuse(c,
		                 "the client sent LDAP operation [APPLICATION "
		                 "%u] before StartTLS (only the StartTLS "
		                 "extended request is served)",
		                 tag & 0x1f);
	opend = op + oplen;
	if (ber(&op, opend, &tag, &v, &len) != 0 || tag != 0x80)
		goto bad;
	tp_printable(c->p->request, sizeof(c->p->request), (const char *)v,
	             len);
	if (len != strlen(LDAP_STARTTLS_OID) ||
	    memcmp(v, LDAP_STARTTLS_OID, len) != 0)
		return tp_refuse(c,
		                 "the client sent ExtendedRequest %s, not "
		                 "StartTLS",
		                 c->p->request);
	tp_step(c, "starttls");
	if (tp_quiet(c) != 0)
		return -1;
	/* ExtendedResponse success, with the StartTLS responseName */
	resp[n++] = 0x30;
	resp[n++] = (unsigned char)(2 + midlen + 2 + 3 + 2 + 2 + 2 +
	                            strlen(LDAP_STARTTLS_OID));
	resp[n++] = 0x02;
	resp[n++] = (unsigned char)midlen;
	memcpy(resp + n, mid, midlen);
	n += midlen;
	resp[n++] = 0x78;
	resp[n++] = (unsigned char)(3 + 2 + 2 + 2 + strlen(LDAP_STARTTLS_OID));
	memcpy(resp + n, "\x0a\x01\x00\x04\x00\x04\x00\x8a", 8);
	n += 8;
	resp[n++] = (unsigned char)strlen(LDAP_STARTTLS_OID);
	memcpy(resp + n, LDAP_STARTTLS_OID, strlen(LDAP_STARTTLS_OID));
	n += strlen(LDAP_STARTTLS_OID);
	snprintf(c->p->reply, sizeof(c->p->reply),
	         "ExtendedResponse resultCode 0 (success) responseName "
	         "%s",
	         LDAP_STARTTLS_OID);
	return tp_send(c, resp, n);
bad:
	return tp_refuse(c,
	                 "the client sent no LDAPMessage (RFC 4511 "
	                 "section 4.1.1): %s",
	                 tp_show(c, c->line, c->len));
}

/* --- PostgreSQL: SSLRequest ------------------------------------------------
 */

#define PG_SSLREQUEST 80877103u
#define PG_GSSENC     80877104u

int tp_postgres_client(struct tp_pc *c)
{
	static const unsigned char req[8] = {0,    0,    0,    8,
	                                     0x04, 0xd2, 0x16, 0x2f};
	char b;

	tp_step(c, "starttls");
	snprintf(c->p->request, sizeof(c->p->request), "SSLRequest");
	if (tp_send(c, req, sizeof(req)) != 0)
		return -1;
	c->len = 0;
	if (tp_read_exact(c, &b, 1) != 0)
		return -1;
	c->line[0] = b;
	c->len = 1;
	snprintf(c->p->reply, sizeof(c->p->reply), "%s",
	         b == 'S'   ? "S (SSL accepted)"
	         : b == 'N' ? "N (SSL refused)"
	         : b == 'E' ? "E (an ErrorResponse)"
	                    : "");
	if (c->p->reply[0] == '\0')
		tp_printable(c->p->reply, sizeof(c->p->reply), &b, 1);
	if (b == 'N')
		return tp_refuse(c, "the server does not accept SSL: it "
		                    "answered N to SSLRequest");
	if (b != 'S')
		return tp_refuse(c,
		                 "the server answered SSLRequest with %s, "
		                 "not S",
		                 tp_show(c, &b, 1));
	/* a server that says more after 'S' is injecting (CVE-2021-23222) */
	return tp_quiet(c);
}

static unsigned be32(const unsigned char *b)
{
	return (unsigned)b[0] << 24 | (unsigned)b[1] << 16 |
	       (unsigned)b[2] << 8 | b[3];
}

int tp_postgres_server(struct tp_pc *c)
{
	unsigned char b[8];
	int n;

	tp_step(c, "commands");
	for (n = 0; n < 2; n++) {
		c->len = 0;
		if (tp_read_exact(c, b, 8) != 0)
			return -1;
		memcpy(c->line, b, 8);
		c->len = 8;
		if (be32(b) == 8 && be32(b + 4) == PG_GSSENC) {
			if (tp_send(c, "N", 1) != 0)
				return -1;
			continue;
		}
		if (be32(b) != 8 || be32(b + 4) != PG_SSLREQUEST)
			return tp_refuse(c,
			                 "the client sent no SSLRequest "
			                 "(length %u, code %u)",
			                 be32(b), be32(b + 4));
		snprintf(c->p->request, sizeof(c->p->request), "SSLRequest");
		tp_step(c, "starttls");
		/* data after SSLRequest: CVE-2021-23214 */
		if (tp_quiet(c) != 0)
			return -1;
		snprintf(c->p->reply, sizeof(c->p->reply), "S (SSL accepted)");
		return tp_send(c, "S", 1);
	}
	return tp_refuse(c, "the client sent no SSLRequest");
}

/* --- MySQL: protocol 10, SSL request ---------------------------------------
 */

#define MY_LONG_PASSWORD     0x00000001u
#define MY_CONNECT_WITH_DB   0x00000008u
#define MY_PROTOCOL_41       0x00000200u
#define MY_SSL               0x00000800u
#define MY_SECURE_CONNECTION 0x00008000u
#define MY_PLUGIN_AUTH       0x00080000u

/* One packet into c->line: its payload length and sequence number. */
static int my_packet(struct tp_pc *c, size_t *len, unsigned *seq)
{
	unsigned char h[4];

	c->len = 0;
	if (tp_read_exact(c, h, 4) != 0)
		return -1;
	*len = (size_t)h[0] | (size_t)h[1] << 8 | (size_t)h[2] << 16;
	*seq = h[3];
	if (*len > c->pr->maxline)
		return tp_refuse(c,
		                 "the %s sent a packet of %zu octets, more "
		                 "than %u (%s)",
		                 c->server ? "client" : "server", *len,
		                 c->pr->maxline, c->pr->limit_ref);
	if (tp_read_exact(c, c->line, *len) != 0)
		return -1;
	c->len = *len;
	return 0;
}

int tp_mysql_client(struct tp_pc *c)
{
	const unsigned char *b = (const unsigned char *)c->line;
	size_t len, vl, i;
	unsigned seq, caps, want;
	unsigned char req[36];
	unsigned char charset = 0x21;
	char caps_text[256];

	tp_step(c, "greeting");
	if (my_packet(c, &len, &seq) != 0)
		return -1;
	if (len >= 3 && b[0] == 0xff) {
		char msg[200];

		tp_printable(msg, sizeof(msg), c->line + 3, len - 3);
		return tp_refuse(c, "the server sent error %u: %s",
		                 b[1] | b[2] << 8, msg);
	}
	if (len < 1 || b[0] != 10)
		return tp_refuse(c,
		                 "the server's greeting is not protocol 10: "
		                 "%s",
		                 tp_show(c, c->line, len));
	vl = strnlen(c->line + 1, len - 1);
	if (1 + vl + 1 + 4 + 8 + 1 + 2 > len)
		return tp_refuse(c, "the server's greeting is cut short: %s",
		                 tp_show(c, c->line, len));
	snprintf(c->p->greeting, sizeof(c->p->greeting),
	         "protocol 10, server version ");
	tp_printable(c->p->greeting + strlen(c->p->greeting),
	             sizeof(c->p->greeting) - strlen(c->p->greeting),
	             c->line + 1, vl);
	i = 1 + vl + 1 + 4 + 8 + 1;
	caps = b[i] | (unsigned)b[i + 1] << 8;
	i += 2;
	if (len >= i + 5) {
		charset = b[i];
		caps |= ((unsigned)b[i + 3] | (unsigned)b[i + 4] << 8) << 16;
	}
	snprintf(caps_text, sizeof(caps_text), "flags 0x%08x%s%s%s%s", caps,
	         caps & MY_SSL ? "\nSSL" : "",
	         caps & MY_PROTOCOL_41 ? "\nPROTOCOL_41" : "",
	         caps & MY_SECURE_CONNECTION ? "\nSECURE_CONNECTION" : "",
	         caps & MY_PLUGIN_AUTH ? "\nPLUGIN_AUTH" : "");
	snprintf(c->p->capabilities, sizeof(c->p->capabilities), "%s",
	         caps_text);
	if (!(caps & MY_SSL))
		return tp_refuse(c,
		                 "the server offers no SSL (CLIENT_SSL is "
		                 "not among its capability flags 0x%08x)",
		                 caps);
	tp_step(c, "starttls");
	want = ((MY_LONG_PASSWORD | MY_PROTOCOL_41 | MY_SECURE_CONNECTION |
	         MY_PLUGIN_AUTH) &
	        caps) |
	       MY_SSL;
	memset(req, 0, sizeof(req));
	req[0] = 32;
	req[3] = (unsigned char)(seq + 1);
	req[4] = want & 0xff;
	req[5] = (want >> 8) & 0xff;
	req[6] = (want >> 16) & 0xff;
	req[7] = (want >> 24) & 0xff;
	req[11] = 0x01; /* max packet 16 MiB */
	req[12] = charset;
	snprintf(c->p->request, sizeof(c->p->request),
	         "SSL request, flags 0x%08x", want);
	snprintf(c->p->reply, sizeof(c->p->reply),
	         "(none: TLS follows the SSL request)");
	if (tp_send(c, req, sizeof(req)) != 0)
		return -1;
	return tp_quiet(c);
}

int tp_mysql_server(struct tp_pc *c)
{
	static const char version[] = "8.0.0-tlspool";
	unsigned char pkt[128], salt[20];
	unsigned caps = MY_LONG_PASSWORD | MY_CONNECT_WITH_DB | MY_PROTOCOL_41 |
	                MY_SSL | MY_SECURE_CONNECTION | MY_PLUGIN_AUTH;
	size_t n = 4, len, i;
	unsigned seq, flags;
	const unsigned char *b = (const unsigned char *)c->line;

	tp_step(c, "greeting");
	gnutls_rnd(GNUTLS_RND_NONCE, salt, sizeof(salt));
	for (i = 0; i < sizeof(salt); i++)
		salt[i] = (unsigned char)('0' + salt[i] % 64);
	pkt[n++] = 10;
	memcpy(pkt + n, version, sizeof(version));
	n += sizeof(version);
	memcpy(pkt + n, "\x01\x00\x00\x00", 4); /* connection id */
	n += 4;
	memcpy(pkt + n, salt, 8);
	n += 8;
	pkt[n++] = 0;
	pkt[n++] = caps & 0xff;
	pkt[n++] = (caps >> 8) & 0xff;
	pkt[n++] = 0x21; /* utf8_general_ci */
	pkt[n++] = 0x02; /* SERVER_STATUS_AUTOCOMMIT */
	pkt[n++] = 0;
	pkt[n++] = (caps >> 16) & 0xff;
	pkt[n++] = (caps >> 24) & 0xff;
	pkt[n++] = 21;
	memset(pkt + n, 0, 10);
	n += 10;
	memcpy(pkt + n, salt + 8, 12);
	n += 12;
	pkt[n++] = 0;
	memcpy(pkt + n, "mysql_native_password", 22);
	n += 22;
	pkt[0] = (unsigned char)(n - 4);
	pkt[1] = pkt[2] = pkt[3] = 0;
	snprintf(c->p->greeting, sizeof(c->p->greeting),
	         "protocol 10, server version %s", version);
	snprintf(c->p->capabilities, sizeof(c->p->capabilities),
	         "flags 0x%08x\nSSL\nPROTOCOL_41\nSECURE_CONNECTION\n"
	         "PLUGIN_AUTH",
	         caps);
	if (tp_send(c, pkt, n) != 0)
		return -1;
	tp_step(c, "commands");
	if (my_packet(c, &len, &seq) != 0)
		return -1;
	flags = len >= 4 ? (unsigned)b[0] | (unsigned)b[1] << 8 |
	                           (unsigned)b[2] << 16 | (unsigned)b[3] << 24
	                 : 0;
	if (seq != 1 || !(flags & MY_SSL) || (len != 32 && len != 4))
		return tp_refuse(c,
		                 "the client sent no SSL request (a packet of "
		                 "%zu octets, sequence %u, flags 0x%08x): "
		                 "%s",
		                 len, seq, flags, tp_show(c, c->line, len));
	snprintf(c->p->request, sizeof(c->p->request),
	         "SSL request, flags 0x%08x", flags);
	snprintf(c->p->reply, sizeof(c->p->reply),
	         "(none: TLS follows the SSL request)");
	tp_step(c, "starttls");
	c->tls_follows = 1;
	return tp_quiet(c);
}
