/* tlspool-connect: shared declarations of the command line front end. */
#ifndef TLSPOOL_CLI_H
#define TLSPOOL_CLI_H

#include <tlspool/prelude.h>
#include <tlspool/starttls.h>
#include <tlspool/validate.h>

/* Exit codes: tlspool-connect(1), EXIT STATUS. */
enum {
	EXIT_OK = 0,
	EXIT_USAGE = 1,
	EXIT_CONNECT = 2,
	EXIT_TLS = 3,
	EXIT_AUTH = 4,
	EXIT_REFUSED = 5,
	EXIT_DNS = 6,
	EXIT_NO_DANE = 7, /* --mx/--srv: DNSSEC proves that DANE does not
	                     apply (an insecure MX or SRV RRset, no host
	                     with TLSA records) */
};

#define MAX_SNI_ALLOW        32
#define DEFAULT_MAX_CHILDREN 256

struct options {
	int mode; /* 'l'ookup, 'c'lient, 's'erver, cache 'L'ist, 'F'lush */
	const char *config;
	const char *name;  /* --lookup NAME, or the client's HOST */
	const char *port;  /* checked: decimal 1..65535 */
	const char *proto; /* "tcp", "udp", "sctp" */
	int smimea, ldap, json, verbose, diagnose;
	int mx;          /* --mx: NAME is a mail domain (RFC 7672) */
	const char *srv; /* --srv SERVICE: NAME is its domain (RFC 7673) */
	const char *sni, *myname, *exec, *bind;
	int fd; /* --fd N, or -1 */
	int fork, max_children;
	int any_peer; /* --any-peer: no reference name, any DANE peer */
	const char *sni_allow[MAX_SNI_ALLOW];
	int nsni_allow;
	int allow_no_sni; /* --allow-no-sni: "" passes --sni-allow */
	int flags;        /* STARTTLS_* */
	int linger_ms;
	starttls_ctx *ctx;    /* --config FILE, or the default, read once */
	const char *starttls; /* --starttls PROTO, or NULL */
};

extern const char *progname;

/* A usage error: the message and the usage on stderr; returns
 * EXIT_USAGE for the caller to return up to main(). */
int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

int run_lookup(const struct options *o);
/* ldap_info.c: --lookup --ldap, and the LDAP step of a trace */
int run_ldap_lookup(starttls_ctx *ctx, const char *identity, int json);
void print_ldap_step_text(FILE *fp, const starttls_ldap_step *s);

/* dest.c: --mx and --srv, with --lookup and with --client */
int run_dest_lookup(const struct options *o);
int run_dest_client(const struct options *o);

/* cacheadm.c: --cache-list and --cache-flush */
int run_cache_list(const struct options *o);
int run_cache_flush(const struct options *o);

/* lookup.c: the DNS answer as text (zone-file comments and records) and
 * as a JSON object; ISO 8601 times; hex strings for JSON. */
#include <json-c/json.h>
#include <stdio.h>
#include <time.h>
void print_answer_text(FILE *fp, const tlspool_dns_answer *a);
json_object *answer_json(const tlspool_dns_answer *a);
json_object *ldap_step_json(const starttls_ldap_step *s); /* ldap_info.c */
json_object *hex_string(const unsigned char *p, size_t len);
void iso_time(char *buf, size_t len, time_t t);

/* openpgp_info.c: an OPENPGPKEY record's key, as comments or JSON */
void print_openpgp_text(FILE *fp, const tlspool_rr *rr);
json_object *openpgp_json(const tlspool_rr *rr);

/* diagnose.c: the trace of the last starttls call, --diagnose / --json */
void print_trace(const struct options *o, const char *peer, int exit_code);
/* How a relayed connection ended: starttls_end()'s answer, or (where it
 * has none) what was seen; the message printed for it, if any. */
struct conn_end {
	const char *kind; /* end_kind_name(), or "unknown" */
	starttls_end_info info;
	char msg[400]; /* "" when it ended cleanly */
};
/* print_trace() with how the connection ended: the JSON document gets
 * "end", and "error" is end->msg when the call itself succeeded. */
void print_trace_end(const struct options *o, const char *peer, int exit_code,
                     const struct conn_end *end);
const char *end_kind_name(starttls_end_kind kind);

/* plain.c: the plain side of an authenticated connection, the exit code
 * of a starttls call (after --diagnose/--json output), the socket type
 * and protocol of the options. */
int serve_plain(const struct options *o, int tls, const char *peer,
                const char *local, const char *sni);
int report_call(const struct options *o, const char *peer, int err, int defer);
int sock_type(const struct options *o);
int ipproto(const struct options *o);
int set_nonblock(int fd);
long long now_ms(void); /* monotonic */

/* connect.c.  run_server() returns in every process it forks too (with
 * --fork, the child's status): main() alone exits. */
int run_client(const struct options *o);
int run_server(const struct options *o);
/* --starttls PROTO: 0, or a usage error's exit code. */
int starttls_arg(struct options *o, const char *proto);
/* The dialogue of --starttls as far as it went, or NULL (diagnose.c). */
extern const starttls_prelude *cli_prelude;

#endif
