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

/* The quick flags that override the configuration (overrides.c). */
#define QUICK_MAX_UPSTREAM 8
struct quick {
	const char *cert, *key, *trust_anchor, *priority, *alpn;
	const char *upstream[QUICK_MAX_UPSTREAM];
	int nupstream;
	unsigned timeout_ms; /* 0: not given */
	int any;             /* one of them was given */
};

struct options {
	int mode; /* 'l'ookup, 'c'lient, 's'erver, cache 'L'ist, 'F'lush,
	             'r'ecords-for */
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
	starttls_ctx *ctx;        /* --config FILE, or the default, read once */
	const char *json_file;    /* --json-file FILE: the document there */
	int records;              /* --client --records */
	int show_certs;           /* --show-certs: the peer's chain in PEM */
	const char *records_file; /* --records-for FILE */
	int usage, selector, mtype; /* --usage/--selector/--mtype, or -1 */
	struct quick quick;
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
/* The exit code of a failed call's class and errno (EXIT STATUS). */
int exit_for_class(starttls_class cls, int e);
int sock_type(const struct options *o);
int ipproto(const struct options *o);
int set_nonblock(int fd);
long long now_ms(void); /* monotonic */

/* overrides.c: the quick flags.  quick_option(): one of them into o
 * (-1 to go on, else the exit code); quick_ctx(): the context of
 * --config with the flags applied, or NULL through the pool (0, or the
 * exit code after a message); quick_identity(): a local identity that
 * cannot be loaded is an error at start, not at the first connection. */
enum {
	Q_CERT,
	Q_KEY,
	Q_TRUST_ANCHOR,
	Q_UPSTREAM,
	Q_PRIORITY,
	Q_ALPN,
	Q_TIMEOUT,
	Q_N
};
#define OPT_QUICK 0x10000 /* above OPT_FLAG + every STARTTLS_* bit */
int quick_option(struct options *o, int q, const char *arg);
int quick_ctx(struct options *o);
int quick_identity(struct options *o);

/* addr.c: ports and service names, addresses, host names through the
 * DNSSEC resolver of [dns]. */
#include <netinet/in.h>
#include <sys/socket.h>
#define ADDR_MAX 32
struct addr_entry {
	struct sockaddr_storage ss;
	socklen_t len;
	char text[64];       /* "[::1]:443", "127.0.0.1:443" */
	const char *verdict; /* "secure", "insecure", "literal", ... */
	int tried, used, error;
};
struct addr_list {
	size_t n;
	struct addr_entry e[ADDR_MAX];
};
/* "[::1]" -> "::1" (in place); anything else as it is. */
char *addr_unbracket(char *s);
/* A port: 1..65535 or a service name of o->proto; 0 and *out (a decimal
 * string), or EXIT_USAGE after a usage message naming what. */
int addr_port(const struct options *o, const char *arg, const char *what,
              const char **out);
/* host (literal, localhost, or a name through [dns]): 0, or the exit
 * code after a message. */
int addr_resolve(const struct options *o, const char *host, const char *port,
                 struct addr_list *l);
/* The client's connection: every address of o->name in order; the
 * descriptor, or -1 with *rc the exit code. */
int addr_connect(const struct options *o, int *rc);
/* The server's socket (--bind, or [::] dual-stack): -1 after a message. */
int addr_listen(const struct options *o);
/* The addresses of the last addr_connect(): tried, used. */
const struct addr_list *addr_last(void);

/* connect.c.  run_server() returns in every process it forks too (with
 * --fork, the child's status): main() alone exits. */
int run_client(const struct options *o);
int run_server(const struct options *o);
/* --starttls PROTO: 0, or a usage error's exit code. */
int starttls_arg(struct options *o, const char *proto);
/* The dialogue of --starttls as far as it went, or NULL (diagnose.c). */
extern const starttls_prelude *cli_prelude;

/* json.c: one JSON document per run (--json), and the lines for
 * people: say() an error or notice, hint() what to try next, note() what
 * is being done (-v).  out_begin() after the options (0, or the exit
 * code), out_finish() once at the end: writes the document with
 * "outcome" and "exit_code", returns rc. */
int out_begin(const struct options *o);
int out_json(void);
int out_text_on_stderr(void); /* 0 while the document takes stderr */
int out_doc_on_stdout(void);  /* the document takes stdout */
void out_set(const char *key, json_object *v);
void out_merge(json_object *obj); /* its members into the document */
void out_append(const char *key, json_object *v); /* to the array key */
void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void hint(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void note(const char *event, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
int out_finish(int rc);
void out_child(void);
const char *outcome_name(int rc);
/* An address tried (err 0: connected), for -v and "addresses". */
struct sockaddr;
void out_address(const char *role, const struct sockaddr *sa, unsigned salen,
                 int err);
void out_connecting(const struct sockaddr *sa, unsigned salen); /* -v */
void out_status_not_ours(void); /* --exec: the command's status */
/* --client/--server --json: SIGINT, SIGTERM and SIGHUP stop the waits
 * (accept, connect, the data pump, --exec's command: between
 * out_waiting(1) and out_waiting(0)) instead of the process, so that the
 * document is written (outcome "interrupted"); the run then ends by the
 * signal.  Outside those waits they end the run at once.  out_stopped():
 * the signal that came, or 0. */
void out_catch_signals(void);
void out_waiting(int on);
int out_stopped(void);
void out_hinted(void); /* the usage said what to do */

/* records.c: --client --records (the live peer's chain from the trace)
 * and --records-for FILE NAME [PORT]. */
int print_peer_records(const struct options *o, const char *host);
int run_records_for(const struct options *o);
/* The PEM of a DER certificate, malloc'd, or NULL. */
char *cert_pem(const tlspool_span *der);

#endif
