/*
 * The line-based STARTTLS preludes: SMTP, LMTP and submission (RFC 3207),
 * IMAP (RFC 9051 section 6.2.1), POP3 (RFC 2595 section 4), ManageSieve
 * (RFC 5804 section 2.2), FTP (RFC 4217 section 4), NNTP (RFC 4642) and
 * IRC (the IRCv3 STARTTLS extension), client and server side.  Each
 * reads one line at a time (prelude.c) and checks it before the next.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "prelude_int.h"

/* Lines of one multi-line reply, commands before STARTTLS: at most. */
#define MAX_LINES    200
#define MAX_COMMANDS 30

#define REP(c, field) (c)->p->field, sizeof((c)->p->field)

/* s starts with word (case-insensitive) followed by a blank or the end. */
static int is_word(const char *s, const char *word)
{
	size_t n = strlen(word);

	return strncasecmp(s, word, n) == 0 &&
	       (s[n] == '\0' || s[n] == ' ' || s[n] == '\t');
}

/* A line of caps (one capability a line) whose first word is word. */
static int has_cap(const char *caps, const char *word)
{
	const char *s = caps;

	while (*s != '\0') {
		if (is_word(s, word) ||
		    (strncasecmp(s, word, strlen(word)) == 0 &&
		     s[strlen(word)] == '\n'))
			return 1;
		s = strchr(s, '\n');
		if (s == NULL)
			break;
		s++;
	}
	return 0;
}

/* The capabilities as one line, for a message. */
static const char *caps_list(struct tp_pc *c)
{
	static _Thread_local char out[300];
	size_t i;

	snprintf(out, sizeof(out), "%.*s", (int)sizeof(out) - 1,
	         c->p->capabilities[0] ? c->p->capabilities : "(none)");
	for (i = 0; out[i] != '\0'; i++)
		if (out[i] == '\n')
			out[i] = ',';
	return out;
}

static void add_words(char *dst, size_t cap, const char *s)
{
	while (*s != '\0') {
		size_t n;

		while (*s == ' ')
			s++;
		n = strcspn(s, " ");
		if (n > 0)
			tp_report_add(dst, cap, s, n);
		s += n;
	}
}

/* A reply code of three digits followed by sep (a blank or '-') or the
 * end; -1 when the line is not one. */
static int code_of(const char *l, char *sep)
{
	if (!isdigit((unsigned char)l[0]) || !isdigit((unsigned char)l[1]) ||
	    !isdigit((unsigned char)l[2]) ||
	    (l[3] != '\0' && l[3] != ' ' && l[3] != '-'))
		return -1;
	*sep = l[3] == '\0' ? ' ' : l[3];
	return (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
}

/*
 * A numeric reply: SMTP (RFC 5321 section 4.2.1: every line "DDD-text",
 * the last "DDD text", all with the same code) or FTP (RFC 959 section
 * 4.2: the first "DDD-", the last "DDD " with its code, anything in
 * between).  The first line's text to first (or NULL), the others' to
 * rest (or NULL); with RR_WHOLE the lines as they came, with their codes.
 * The code, or -1.
 */
#define RR_FTP   1
#define RR_WHOLE 2

static int read_reply(struct tp_pc *c, int how, char *first, size_t fcap,
                      char *rest, size_t rcap)
{
	int code = -1, n, ftp = how & RR_FTP;

	for (n = 0; n < MAX_LINES; n++) {
		char sep = ' ';
		const char *t = c->line;
		int k, end;

		if (tp_read_line(c) != 0)
			return -1;
		k = code_of(c->line, &sep);
		if (n == 0 || !ftp) {
			if (k < 0)
				return tp_refuse(c,
				                 "the server sent a line that "
				                 "is not a reply: %s",
				                 tp_show(c, c->line, c->len));
			if (n > 0 && k != code)
				return tp_refuse(c,
				                 "the server changed the code "
				                 "within one reply (%d, then "
				                 "%s)",
				                 code,
				                 tp_show(c, c->line, c->len));
			code = k;
		}
		end = k == code && sep == ' ';
		if (k == code)
			t = c->line + (c->len > 3 ? 4 : 3);
		while (*t == ' ')
			t++;
		if (how & RR_WHOLE)
			t = c->line;
		if (n == 0 || (ftp && end)) {
			if (first != NULL)
				tp_report_add(first, fcap, t, strlen(t));
		} else if (rest != NULL) {
			tp_report_add(rest, rcap, t, strlen(t));
		}
		if (end)
			return code;
	}
	return tp_refuse(c, "the server sent more than %d lines in one reply",
	                 MAX_LINES);
}

/* The last line read, for a message. */
static const char *last(struct tp_pc *c)
{
	return tp_show(c, c->line, c->len);
}

/* The request: sent, recorded. */
static int request(struct tp_pc *c, const char *req)
{
	tp_step(c, "starttls");
	snprintf(c->p->request, sizeof(c->p->request), "%s", req);
	return tp_sendf(c, "%s\r\n", req);
}

/* Dot-terminated lines (POP3, NNTP): the lines to dst, unstuffed. */
static int read_dotted(struct tp_pc *c, char *dst, size_t cap)
{
	int n;

	for (n = 0; n < MAX_LINES; n++) {
		if (tp_read_line(c) != 0)
			return -1;
		if (strcmp(c->line, ".") == 0)
			return 0;
		tp_report_add(dst, cap, c->line + (c->line[0] == '.'),
		              c->len - (c->line[0] == '.'));
	}
	return tp_refuse(c, "the server sent more than %d lines in a list",
	                 MAX_LINES);
}

/* --- SMTP, LMTP, submission: RFC 3207, RFC 2033 ----------------------------
 */

/* The client leaves an SMTP session it will not secure with QUIT (RFC
 * 5321 section 4.1.1.10), as a sending MTA does, rather than dropping
 * it; the reply is not awaited, and a failure to send changes nothing. */
static int smtp_quit(struct tp_pc *c, int rc)
{
	int e = errno;

	(void)!send(c->fd, "QUIT\r\n", 6, MSG_NOSIGNAL | MSG_DONTWAIT);
	errno = e;
	return rc;
}

int tp_smtp_client(struct tp_pc *c)
{
	const char *hello = strcmp(c->pr->name, "lmtp") == 0 ? "LHLO" : "EHLO";
	char first[256] = "";
	int code;

	tp_step(c, "greeting");
	code = read_reply(c, RR_WHOLE, REP(c, greeting), REP(c, greeting));
	if (code < 0)
		return -1;
	if (code != 220)
		return tp_refuse(c, "the server's greeting is not 220: %s",
		                 last(c));
	tp_step(c, "capabilities");
	snprintf(c->p->hello, sizeof(c->p->hello), "%s", c->myname);
	if (tp_sendf(c, "%s %s\r\n", hello, c->myname) != 0)
		return -1;
	code = read_reply(c, 0, first, sizeof(first), REP(c, capabilities));
	if (code < 0)
		return -1;
	if (code != 250)
		return smtp_quit(c,
		                 tp_refuse(c, "the server answered %s with: %s",
		                           hello, last(c)));
	if (!has_cap(c->p->capabilities, "STARTTLS"))
		return smtp_quit(c, tp_refuse(c,
		                              "the server offers no STARTTLS "
		                              "(RFC 3207 section 4) in its %s "
		                              "reply: %s",
		                              hello, caps_list(c)));
	if (request(c, "STARTTLS") != 0)
		return -1;
	code = read_reply(c, RR_WHOLE, REP(c, reply), REP(c, reply));
	if (code < 0)
		return -1;
	if (code != 220)
		return smtp_quit(c, tp_refuse(c,
		                              "the server answered STARTTLS "
		                              "with: %s",
		                              last(c)));
	return tp_quiet(c);
}

/* The server's go-ahead after the pipelining check. */
static int go_ahead(struct tp_pc *c, const char *req, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int go_ahead(struct tp_pc *c, const char *req, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	tp_step(c, "starttls");
	snprintf(c->p->request, sizeof(c->p->request), "%s", req);
	if (tp_quiet(c) != 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	tp_report_add(REP(c, reply), buf, strcspn(buf, "\r"));
	return tp_send(c, buf, strlen(buf));
}

static int too_many(struct tp_pc *c)
{
	return tp_refuse(c, "the client sent %d commands without STARTTLS",
	                 MAX_COMMANDS);
}

static int quit(struct tp_pc *c)
{
	return tp_failc(ECONNRESET, STARTTLS_ERR_CONNECTION,
	                "%s server: the client quit before STARTTLS: %s",
	                c->pr->name, last(c));
}

/* The arguments of a command: after its first word and blanks. */
static const char *args_of(const char *l)
{
	l += strcspn(l, " ");
	while (*l == ' ')
		l++;
	return l;
}

/*
 * The command loop of the simpler servers (POP3, ManageSieve, FTP, NNTP):
 * the command that starts TLS (with, for FTP, the arguments it must
 * have), a few commands answered with a fixed reply, the one that quits,
 * and one answer for everything else.
 */
struct simple_server {
	/* the greeting: pre, our name, post ("post" alone without pre);
	 * sent as it is with CRLF, or as wire */
	const char *pre, *post, *wire;
	const char *caps;                /* one a line, for the report */
	const char *starttls, *go_ahead; /* the command, its reply */
	const char *const *args;         /* accepted arguments, or NULL */
	const char *bad_args;            /* the reply to other arguments */
	const char *quit, *bye;          /* the command, its reply */
	const char *otherwise;
	struct {
		const char *command, *reply;
	} fixed[3]; /* up to a NULL command */
};

static int serve_simple(struct tp_pc *c, const struct simple_server *sv)
{
	int n;

	tp_step(c, "greeting");
	snprintf(c->p->greeting, sizeof(c->p->greeting), "%s%s%s",
	         sv->pre ? sv->pre : "", sv->pre ? c->myname : "", sv->post);
	snprintf(c->p->capabilities, sizeof(c->p->capabilities), "%s",
	         sv->caps);
	if ((sv->wire ? tp_sendf(c, "%s", sv->wire)
	              : tp_sendf(c, "%s\r\n", c->p->greeting)) != 0)
		return -1;
	tp_step(c, "commands");
	for (n = 0; n < MAX_COMMANDS; n++) {
		const char *reply = sv->otherwise;
		int i;

		if (tp_read_line(c) != 0)
			return -1;
		if (is_word(c->line, sv->starttls)) {
			if (sv->args == NULL)
				return go_ahead(c, sv->starttls, "%s",
				                sv->go_ahead);
			for (i = 0; sv->args[i] != NULL; i++)
				if (strcasecmp(args_of(c->line), sv->args[i]) ==
				    0)
					return go_ahead(c, c->line, "%s",
					                sv->go_ahead);
			reply = sv->bad_args;
		} else if (is_word(c->line, sv->quit)) {
			tp_sendf(c, "%s", sv->bye);
			return quit(c);
		}
		for (i = 0; reply == sv->otherwise && i < 3 &&
		            sv->fixed[i].command != NULL;
		     i++)
			if (is_word(c->line, sv->fixed[i].command))
				reply = sv->fixed[i].reply;
		if (tp_sendf(c, "%s", reply) != 0)
			return -1;
	}
	return too_many(c);
}

int tp_smtp_server(struct tp_pc *c)
{
	int lmtp = strcmp(c->pr->name, "lmtp") == 0, n;

	tp_step(c, "greeting");
	snprintf(c->p->greeting, sizeof(c->p->greeting), "220 %s %s tlspool",
	         c->myname, lmtp ? "LMTP" : "ESMTP");
	if (tp_sendf(c, "%s\r\n", c->p->greeting) != 0)
		return -1;
	snprintf(c->p->capabilities, sizeof(c->p->capabilities),
	         "ENHANCEDSTATUSCODES\nSTARTTLS");
	tp_step(c, "commands");
	for (n = 0; n < MAX_COMMANDS; n++) {
		const char *l, *a;
		int r;

		if (tp_read_line(c) != 0)
			return -1;
		l = c->line;
		a = args_of(l);
		if (is_word(l, lmtp ? "LHLO" : "EHLO")) {
			if (*a == '\0') {
				r = tp_sendf(c,
				             "501 5.5.4 Syntax: %s "
				             "hostname\r\n",
				             lmtp ? "LHLO" : "EHLO");
			} else {
				snprintf(c->p->hello, sizeof(c->p->hello), "%s",
				         a);
				r = tp_sendf(c,
				             "250-%s\r\n250-ENHANCEDSTATUSCODES"
				             "\r\n250 STARTTLS\r\n",
				             c->myname);
			}
		} else if (!lmtp && is_word(l, "HELO")) {
			snprintf(c->p->hello, sizeof(c->p->hello), "%s", a);
			r = tp_sendf(c, "250 %s\r\n", c->myname);
		} else if (is_word(l, "STARTTLS")) {
			if (*a != '\0')
				r = tp_sendf(c, "501 5.5.4 Syntax: STARTTLS "
				                "takes no parameters\r\n");
			else
				return go_ahead(c, "STARTTLS",
				                "220 2.0.0 Ready to start "
				                "TLS\r\n");
		} else if (is_word(l, "NOOP") || is_word(l, "RSET")) {
			r = tp_sendf(c, "250 2.0.0 OK\r\n");
		} else if (is_word(l, "QUIT")) {
			tp_sendf(c, "221 2.0.0 Bye\r\n");
			return quit(c);
		} else if (is_word(l, "EHLO") || is_word(l, "HELO")) {
			r = tp_sendf(c, "500 5.5.1 LMTP: say LHLO\r\n");
		} else {
			r = tp_sendf(c, "530 5.7.0 Must issue a STARTTLS "
			                "command first\r\n");
		}
		if (r != 0)
			return -1;
	}
	return too_many(c);
}

/* --- IMAP: RFC 9051 section 6.2.1 ------------------------------------------
 */

/* Lines up to the tagged one: untagged CAPABILITY to the report, other
 * untagged ones passed over.  0 after "TAG OK", else -1. */
static int imap_tagged(struct tp_pc *c, const char *tag, const char *what)
{
	size_t tl = strlen(tag);
	int n;

	for (n = 0; n < MAX_LINES; n++) {
		if (tp_read_line(c) != 0)
			return -1;
		if (strncasecmp(c->line, "* CAPABILITY ", 13) == 0) {
			c->p->capabilities[0] = '\0';
			add_words(REP(c, capabilities), c->line + 13);
			continue;
		}
		if (strncmp(c->line, "* BYE", 5) == 0)
			return tp_refuse(c, "the server closes: %s", last(c));
		if (strncmp(c->line, "* ", 2) == 0 ||
		    strncmp(c->line, "+ ", 2) == 0)
			continue;
		if (strncmp(c->line, tag, tl) != 0 || c->line[tl] != ' ')
			return tp_refuse(c,
			                 "the server sent a line that is "
			                 "neither untagged nor tagged %s: %s",
			                 tag, last(c));
		if (!is_word(c->line + tl + 1, "OK"))
			return tp_refuse(c, "the server answered %s with: %s",
			                 what, last(c));
		return 0;
	}
	return tp_refuse(c, "the server sent more than %d lines", MAX_LINES);
}

int tp_imap_client(struct tp_pc *c)
{
	tp_step(c, "greeting");
	if (tp_read_line(c) != 0)
		return -1;
	tp_report_add(REP(c, greeting), c->line, c->len);
	if (strncasecmp(c->line, "* PREAUTH", 9) == 0)
		return tp_refuse(c,
		                 "the server greets with PREAUTH: STARTTLS "
		                 "is only for the not authenticated state "
		                 "(RFC 9051 section 6.2.1): %s",
		                 last(c));
	if (strncasecmp(c->line, "* OK", 4) != 0)
		return tp_refuse(c, "the server's greeting is not * OK: %s",
		                 last(c));
	tp_step(c, "capabilities");
	if (tp_sendf(c, "a1 CAPABILITY\r\n") != 0 ||
	    imap_tagged(c, "a1", "CAPABILITY") != 0)
		return -1;
	if (!has_cap(c->p->capabilities, "STARTTLS"))
		return tp_refuse(c,
		                 "the server offers no STARTTLS (RFC 9051 "
		                 "section 6.2.1) in its capabilities: %s",
		                 caps_list(c));
	if (request(c, "a2 STARTTLS") != 0)
		return -1;
	if (imap_tagged(c, "a2", "STARTTLS") != 0)
		return -1;
	tp_report_add(REP(c, reply), c->line, c->len);
	return tp_quiet(c);
}

#define IMAP_CAPS "IMAP4rev1 IMAP4rev2 STARTTLS LOGINDISABLED"

int tp_imap_server(struct tp_pc *c)
{
	int n;

	tp_step(c, "greeting");
	snprintf(c->p->greeting, sizeof(c->p->greeting),
	         "* OK [CAPABILITY " IMAP_CAPS "] %s tlspool ready", c->myname);
	add_words(REP(c, capabilities), IMAP_CAPS);
	if (tp_sendf(c, "%s\r\n", c->p->greeting) != 0)
		return -1;
	tp_step(c, "commands");
	for (n = 0; n < MAX_COMMANDS; n++) {
		char tag[64];
		const char *cmd;
		size_t tl;
		int r;

		if (tp_read_line(c) != 0)
			return -1;
		tl = strcspn(c->line, " ");
		cmd = args_of(c->line);
		if (tl == 0 || tl >= sizeof(tag) || *cmd == '\0') {
			r = tp_sendf(c, "* BAD a tag and a command, "
			                "please\r\n");
			if (r != 0)
				return -1;
			continue;
		}
		memcpy(tag, c->line, tl);
		tag[tl] = '\0';
		if (is_word(cmd, "STARTTLS"))
			return go_ahead(c, c->line,
			                "%s OK Begin TLS negotiation now\r\n",
			                tag);
		if (is_word(cmd, "CAPABILITY"))
			r = tp_sendf(c,
			             "* CAPABILITY " IMAP_CAPS "\r\n%s OK "
			             "CAPABILITY completed\r\n",
			             tag);
		else if (is_word(cmd, "NOOP"))
			r = tp_sendf(c, "%s OK NOOP completed\r\n", tag);
		else if (is_word(cmd, "LOGOUT")) {
			tp_sendf(c,
			         "* BYE logging out\r\n%s OK LOGOUT "
			         "completed\r\n",
			         tag);
			return quit(c);
		} else if (is_word(cmd, "LOGIN") ||
		           is_word(cmd, "AUTHENTICATE"))
			r = tp_sendf(c,
			             "%s NO [PRIVACYREQUIRED] STARTTLS "
			             "first\r\n",
			             tag);
		else
			r = tp_sendf(c, "%s BAD STARTTLS first\r\n", tag);
		if (r != 0)
			return -1;
	}
	return too_many(c);
}

/* --- POP3: RFC 2595 section 4, RFC 2449 ------------------------------------
 */

int tp_pop3_client(struct tp_pc *c)
{
	tp_step(c, "greeting");
	if (tp_read_line(c) != 0)
		return -1;
	tp_report_add(REP(c, greeting), c->line, c->len);
	if (!is_word(c->line, "+OK"))
		return tp_refuse(c, "the server's greeting is not +OK: %s",
		                 last(c));
	tp_step(c, "capabilities");
	if (tp_sendf(c, "CAPA\r\n") != 0 || tp_read_line(c) != 0)
		return -1;
	if (!is_word(c->line, "+OK"))
		return tp_refuse(c,
		                 "the server answered CAPA with %s: it "
		                 "announces no STLS (RFC 2595 section 4)",
		                 last(c));
	if (read_dotted(c, REP(c, capabilities)) != 0)
		return -1;
	if (!has_cap(c->p->capabilities, "STLS"))
		return tp_refuse(c,
		                 "the server offers no STLS (RFC 2595 section "
		                 "4) in its capabilities: %s",
		                 caps_list(c));
	if (request(c, "STLS") != 0 || tp_read_line(c) != 0)
		return -1;
	tp_report_add(REP(c, reply), c->line, c->len);
	if (!is_word(c->line, "+OK"))
		return tp_refuse(c, "the server answered STLS with: %s",
		                 last(c));
	return tp_quiet(c);
}

int tp_pop3_server(struct tp_pc *c)
{
	static const struct simple_server sv = {
	        .pre = "+OK ",
	        .post = " tlspool ready",
	        .caps = "STLS\nPIPELINING",
	        .starttls = "STLS",
	        .go_ahead = "+OK Begin TLS negotiation\r\n",
	        .quit = "QUIT",
	        .bye = "+OK Bye\r\n",
	        .otherwise = "-ERR STLS first\r\n",
	        .fixed = {{"CAPA", "+OK Capability list follows\r\n"
	                           "STLS\r\nPIPELINING\r\n.\r\n"}}};

	return serve_simple(c, &sv);
}

/* --- ManageSieve: RFC 5804 sections 1.7, 2.2 -------------------------------
 */

/* A response line: OK, NO or BYE; 1 OK, 0 other, -1 not a response. */
static int sieve_status(const char *l)
{
	if (is_word(l, "OK") || strncasecmp(l, "OK (", 4) == 0)
		return 1;
	if (is_word(l, "NO") || is_word(l, "BYE") ||
	    strncasecmp(l, "NO (", 4) == 0 || strncasecmp(l, "BYE (", 5) == 0)
		return 0;
	return -1;
}

/* Capability lines up to the response: each as NAME VALUE; the OK that
 * ends them is the greeting (RFC 5804 section 1.7). */
static int sieve_caps(struct tp_pc *c)
{
	int n;

	c->p->capabilities[0] = '\0';
	for (n = 0; n < MAX_LINES; n++) {
		char name[128], value[1024] = "",
		                cap[sizeof(name) + 1 + sizeof(value)];

		if (tp_read_line(c) != 0)
			return -1;
		if (c->line[0] != '"') {
			if (sieve_status(c->line) == 1) {
				tp_report_add(REP(c, greeting), c->line,
				              c->len);
				return 0;
			}
			return tp_refuse(c,
			                 "the server sent %s where a "
			                 "capability or OK was due",
			                 last(c));
		}
		if (sscanf(c->line, "\"%127[^\"]\" \"%1023[^\"]\"", name,
		           value) < 1)
			return tp_refuse(c, "not a capability: %s", last(c));
		snprintf(cap, sizeof(cap), "%s%s%s", name,
		         value[0] != '\0' ? " " : "", value);
		tp_report_add(REP(c, capabilities), cap, strlen(cap));
	}
	return tp_refuse(c, "the server sent more than %d lines", MAX_LINES);
}

int tp_sieve_client(struct tp_pc *c)
{
	tp_step(c, "greeting");
	if (sieve_caps(c) != 0)
		return -1;
	if (!has_cap(c->p->capabilities, "STARTTLS"))
		return tp_refuse(c,
		                 "the server offers no STARTTLS (RFC 5804 "
		                 "section 2.2) in its capabilities: %s",
		                 caps_list(c));
	if (request(c, "STARTTLS") != 0 || tp_read_line(c) != 0)
		return -1;
	tp_report_add(REP(c, reply), c->line, c->len);
	if (sieve_status(c->line) != 1)
		return tp_refuse(c, "the server answered STARTTLS with: %s",
		                 last(c));
	return tp_quiet(c);
}

#define SIEVE_CAPS                                                             \
	"\"IMPLEMENTATION\" \"tlspool\"\r\n\"SIEVE\" \"fileinto\"\r\n"         \
	"\"STARTTLS\"\r\n\"VERSION\" \"1.0\"\r\nOK\r\n"

int tp_sieve_server(struct tp_pc *c)
{
	static const struct simple_server sv = {
	        .post = "tlspool",
	        .wire = SIEVE_CAPS,
	        .caps = "IMPLEMENTATION tlspool\nSIEVE "
	                "fileinto\nSTARTTLS\nVERSION 1.0",
	        .starttls = "STARTTLS",
	        .go_ahead = "OK \"Begin TLS negotiation now\"\r\n",
	        .quit = "LOGOUT",
	        .bye = "OK \"Bye\"\r\n",
	        .otherwise = "NO \"STARTTLS first\"\r\n",
	        .fixed = {{"CAPABILITY", SIEVE_CAPS},
	                  {"NOOP", "OK \"NOOP\"\r\n"}}};

	return serve_simple(c, &sv);
}

/* --- FTP: RFC 4217 section 4, RFC 2389 FEAT --------------------------------
 */

/* FEAT lists "AUTH TLS" (or AUTH with TLS among its mechanisms). */
static int ftp_auth_tls(const char *caps)
{
	const char *s = caps;

	while (s != NULL && *s != '\0') {
		if (is_word(s, "AUTH")) {
			const char *e = strchr(s, '\n');
			size_t n = e ? (size_t)(e - s) : strlen(s);
			char l[256];
			char *t, *save = NULL;

			snprintf(l, sizeof(l), "%.*s", (int)n, s + 4);
			for (t = strtok_r(l, " ;,", &save); t != NULL;
			     t = strtok_r(NULL, " ;,", &save))
				if (strcasecmp(t, "TLS") == 0)
					return 1;
		}
		s = strchr(s, '\n');
		if (s != NULL)
			s++;
	}
	return 0;
}

int tp_ftp_client(struct tp_pc *c)
{
	char scratch[256] = "";
	int code;

	tp_step(c, "greeting");
	code = read_reply(c, RR_FTP | RR_WHOLE, REP(c, greeting),
	                  REP(c, greeting));
	if (code < 0)
		return -1;
	if (code != 220)
		return tp_refuse(c, "the server's greeting is not 220: %s",
		                 last(c));
	tp_step(c, "capabilities");
	if (tp_sendf(c, "FEAT\r\n") != 0)
		return -1;
	code = read_reply(c, RR_FTP, scratch, sizeof(scratch),
	                  REP(c, capabilities));
	if (code < 0)
		return -1;
	/* RFC 2389: a server without FEAT answers 500 or 502; AUTH TLS
	 * may still be there (RFC 4217 section 4) */
	if (code == 211 && !ftp_auth_tls(c->p->capabilities))
		return tp_refuse(c,
		                 "the server offers no AUTH TLS (RFC 4217 "
		                 "section 4) in its FEAT reply: %s",
		                 caps_list(c));
	if (request(c, "AUTH TLS") != 0)
		return -1;
	code = read_reply(c, RR_FTP | RR_WHOLE, REP(c, reply), REP(c, reply));
	if (code < 0)
		return -1;
	if (code != 234)
		return tp_refuse(c, "the server answered AUTH TLS with: %s",
		                 last(c));
	return tp_quiet(c);
}

int tp_ftp_server(struct tp_pc *c)
{
	static const char *const tls[] = {"TLS", "TLS-C", NULL};
	static const struct simple_server sv = {
	        .pre = "220 ",
	        .post = " tlspool FTP ready",
	        .caps = "AUTH TLS",
	        .starttls = "AUTH",
	        .go_ahead = "234 AUTH TLS successful\r\n",
	        .args = tls,
	        .bad_args = "504 AUTH TLS only\r\n",
	        .quit = "QUIT",
	        .bye = "221 Goodbye\r\n",
	        .otherwise = "530 AUTH TLS first\r\n",
	        .fixed = {{"FEAT", "211-Features:\r\n AUTH TLS\r\n211 End\r\n"},
	                  {"NOOP", "200 OK\r\n"}}};

	return serve_simple(c, &sv);
}

/* --- NNTP: RFC 4642, RFC 3977 ----------------------------------------------
 */

static int line_code(struct tp_pc *c)
{
	char sep;
	int k = code_of(c->line, &sep);

	if (k < 0)
		return tp_refuse(c,
		                 "the server sent a line that is not a "
		                 "reply: %s",
		                 last(c));
	return k;
}

int tp_nntp_client(struct tp_pc *c)
{
	int code;

	tp_step(c, "greeting");
	if (tp_read_line(c) != 0)
		return -1;
	tp_report_add(REP(c, greeting), c->line, c->len);
	if ((code = line_code(c)) < 0)
		return -1;
	if (code != 200 && code != 201)
		return tp_refuse(c,
		                 "the server's greeting is not 200 or 201: "
		                 "%s",
		                 last(c));
	tp_step(c, "capabilities");
	if (tp_sendf(c, "CAPABILITIES\r\n") != 0 || tp_read_line(c) != 0 ||
	    (code = line_code(c)) < 0)
		return -1;
	if (code != 101)
		return tp_refuse(c, "the server answered CAPABILITIES with: %s",
		                 last(c));
	if (read_dotted(c, REP(c, capabilities)) != 0)
		return -1;
	if (!has_cap(c->p->capabilities, "STARTTLS"))
		return tp_refuse(c,
		                 "the server offers no STARTTLS (RFC 4642 "
		                 "section 2.1) in its capabilities: %s",
		                 caps_list(c));
	if (request(c, "STARTTLS") != 0 || tp_read_line(c) != 0)
		return -1;
	tp_report_add(REP(c, reply), c->line, c->len);
	if ((code = line_code(c)) < 0)
		return -1;
	if (code != 382)
		return tp_refuse(c, "the server answered STARTTLS with: %s",
		                 last(c));
	return tp_quiet(c);
}

int tp_nntp_server(struct tp_pc *c)
{
	static const struct simple_server sv = {
	        .pre = "200 ",
	        .post = " tlspool NNTP ready",
	        .caps = "VERSION 2\nSTARTTLS",
	        .starttls = "STARTTLS",
	        .go_ahead = "382 Continue with TLS negotiation\r\n",
	        .quit = "QUIT",
	        .bye = "205 Bye\r\n",
	        .otherwise = "483 STARTTLS first\r\n",
	        .fixed = {{"CAPABILITIES", "101 Capability list:\r\n"
	                                   "VERSION 2\r\nSTARTTLS\r\n.\r\n"}}};

	return serve_simple(c, &sv);
}

/* --- IRC: the IRCv3 tls extension (STARTTLS, 670/691) ----------------------
 */

/* The command of an IRC message (RFC 1459 section 2.3.1): after the
 * prefix, if any. */
static const char *irc_command(const char *l)
{
	if (*l == ':') {
		l += strcspn(l, " ");
		while (*l == ' ')
			l++;
	}
	return l;
}

int tp_irc_client(struct tp_pc *c)
{
	int n;

	if (request(c, "STARTTLS") != 0)
		return -1;
	for (n = 0; n < MAX_LINES; n++) {
		const char *cmd;

		if (tp_read_line(c) != 0)
			return -1;
		cmd = irc_command(c->line);
		if (is_word(cmd, "670")) {
			tp_report_add(REP(c, reply), c->line, c->len);
			return tp_quiet(c);
		}
		if (is_word(cmd, "691"))
			return tp_refuse(c,
			                 "the server answered STARTTLS "
			                 "with 691 (failed): %s",
			                 last(c));
		if (is_word(cmd, "421"))
			return tp_refuse(c,
			                 "the server offers no STARTTLS: it "
			                 "answered 421 (unknown command): %s",
			                 last(c));
		if (is_word(cmd, "ERROR"))
			return tp_refuse(c, "the server closes: %s", last(c));
		if (is_word(cmd, "PING")) {
			if (tp_sendf(c, "PONG %s\r\n", args_of(cmd)) != 0)
				return -1;
			continue;
		}
		if (cmd[0] >= '4' && cmd[0] <= '5' &&
		    isdigit((unsigned char)cmd[1]))
			return tp_refuse(c,
			                 "the server answered STARTTLS "
			                 "with an error: %s",
			                 last(c));
		tp_report_add(REP(c, greeting), c->line, c->len);
	}
	return tp_refuse(c,
	                 "the server sent %d lines and no answer to "
	                 "STARTTLS",
	                 MAX_LINES);
}

int tp_irc_server(struct tp_pc *c)
{
	int n;

	tp_step(c, "commands");
	snprintf(c->p->capabilities, sizeof(c->p->capabilities), "tls");
	for (n = 0; n < MAX_COMMANDS; n++) {
		const char *cmd;
		int r = 0;

		if (tp_read_line(c) != 0)
			return -1;
		cmd = irc_command(c->line);
		if (is_word(cmd, "STARTTLS"))
			return go_ahead(c, "STARTTLS",
			                ":%s 670 * :STARTTLS successful, go "
			                "ahead with TLS handshake\r\n",
			                c->myname);
		if (is_word(cmd, "CAP")) {
			const char *a = args_of(cmd);

			if (is_word(a, "LS"))
				r = tp_sendf(c, ":%s CAP * LS :tls\r\n",
				             c->myname);
			else if (is_word(a, "REQ"))
				r = tp_sendf(c, ":%s CAP * ACK :tls\r\n",
				             c->myname);
		} else if (is_word(cmd, "NICK") || is_word(cmd, "USER")) {
			if (is_word(cmd, "NICK"))
				snprintf(c->p->hello, sizeof(c->p->hello), "%s",
				         args_of(cmd));
		} else if (is_word(cmd, "PING")) {
			r = tp_sendf(c, ":%s PONG %s :%s\r\n", c->myname,
			             c->myname, args_of(cmd));
		} else if (is_word(cmd, "QUIT")) {
			return quit(c);
		} else {
			r = tp_sendf(c, ":%s 451 * :STARTTLS first\r\n",
			             c->myname);
		}
		if (r != 0)
			return -1;
	}
	return too_many(c);
}
