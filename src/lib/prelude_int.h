/*
 * Internal declarations of the STARTTLS preludes (prelude.c,
 * prelude_text.c, prelude_bin.c).
 */
#ifndef TLSPOOL_PRELUDE_INT_H
#define TLSPOOL_PRELUDE_INT_H

#include <stddef.h>

#include "lib.h"
#include "tlspool/prelude.h"

#define TP_LINE_MAX 16384

struct tp_pc;

struct tp_proto {
	const char *name;
	int (*client)(struct tp_pc *c);
	int (*server)(struct tp_pc *c);
	unsigned maxline;      /* a line (with CRLF), tag or message */
	const char *limit_ref; /* where that limit comes from */
};

/* One prelude call. */
struct tp_pc {
	int fd;
	int server;
	unsigned timeout_ms;
	long long deadline; /* tp_mono_ms() */
	starttls_prelude *p;
	const struct tp_proto *pr;
	const char *myname;
	int tls_follows; /* server: the client starts TLS unasked (MySQL) */
	size_t len;      /* of line */
	char line[TP_LINE_MAX + 1]; /* the last line or tag read */
	char shown[260];            /* tp_show()'s */
};

/* The report: in as printable text, "\n" before all but the first. */
void tp_report_add(char *dst, size_t cap, const char *s, size_t len);
void tp_printable(char *out, size_t cap, const char *in, size_t len);
/* s quoted and printable, at most 200 octets (in c->shown). */
const char *tp_show(struct tp_pc *c, const char *s, size_t len);
void tp_step(struct tp_pc *c, const char *step);
/* EPROTO, STARTTLS_ERR_PRELUDE, "PROTO client|server: " and the text;
 * the macro is -1 where the analyzer can see it. */
void tp_refuse_(struct tp_pc *c, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
#define tp_refuse(...) (tp_refuse_(__VA_ARGS__), -1)

int tp_send(struct tp_pc *c, const void *data, size_t len);
int tp_sendf(struct tp_pc *c, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
/* A line into c->line without its CRLF (LF alone accepted), at most
 * maxline octets with it; never a byte beyond its LF. */
int tp_read_line(struct tp_pc *c);
/* The same up to and with delim kept (XMPP: '>'). */
int tp_read_delim(struct tp_pc *c, char delim);
int tp_read_exact(struct tp_pc *c, void *buf, size_t len);
/* After the go-ahead (client) or before it (server): nothing pending but
 * a TLS record (client) or nothing at all (server). */
int tp_quiet(struct tp_pc *c);

int tp_smtp_client(struct tp_pc *c);
int tp_smtp_server(struct tp_pc *c);
int tp_imap_client(struct tp_pc *c);
int tp_imap_server(struct tp_pc *c);
int tp_pop3_client(struct tp_pc *c);
int tp_pop3_server(struct tp_pc *c);
int tp_sieve_client(struct tp_pc *c);
int tp_sieve_server(struct tp_pc *c);
int tp_ftp_client(struct tp_pc *c);
int tp_ftp_server(struct tp_pc *c);
int tp_nntp_client(struct tp_pc *c);
int tp_nntp_server(struct tp_pc *c);
int tp_irc_client(struct tp_pc *c);
int tp_irc_server(struct tp_pc *c);
int tp_xmpp_client(struct tp_pc *c);
int tp_xmpp_server(struct tp_pc *c);
int tp_ldap_client(struct tp_pc *c);
int tp_ldap_server(struct tp_pc *c);
int tp_postgres_client(struct tp_pc *c);
int tp_postgres_server(struct tp_pc *c);
int tp_mysql_client(struct tp_pc *c);
int tp_mysql_server(struct tp_pc *c);

#endif
