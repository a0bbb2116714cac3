/* tlspool-connect: shared declarations of the command line front end. */
#ifndef TLSPOOL_CLI_H
#define TLSPOOL_CLI_H

#include <tlspool/starttls.h>
#include <tlspool/validate.h>

/* Exit codes: DESIGN section 6 and tlspool-connect(1). */
enum {
	EXIT_OK = 0,
	EXIT_USAGE = 1,
	EXIT_CONNECT = 2,
	EXIT_TLS = 3,
	EXIT_AUTH = 4,
	EXIT_REFUSED = 5,
	EXIT_DNS = 6,
};

#define MAX_SNI_ALLOW 32

struct options {
	int mode; /* 'l'ookup, 'c'lient, 's'erver, cache 'L'ist, 'F'lush */
	const char *config;
	const char *name; /* --lookup NAME, or the client's HOST */
	const char *port;
	const char *proto; /* "tcp", "udp", "sctp" */
	int smimea, json, verbose, diagnose;
	const char *sni, *myname, *exec, *bind;
	int fd; /* --fd N, or -1 */
	int fork;
	const char *sni_allow[MAX_SNI_ALLOW];
	int nsni_allow;
	int flags; /* STARTTLS_* */
	int linger_ms;
};

extern const char *progname;

void die_usage(const char *fmt, ...)
        __attribute__((format(printf, 1, 2), noreturn));

int run_lookup(const struct options *o);

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
json_object *hex_string(const unsigned char *p, size_t len);
void iso_time(char *buf, size_t len, time_t t);

/* openpgp_info.c: an OPENPGPKEY record's key, as comments or JSON */
void print_openpgp_text(FILE *fp, const tlspool_rr *rr);
json_object *openpgp_json(const tlspool_rr *rr);

/* diagnose.c: the trace of the last starttls call, --diagnose / --json */
void print_trace(const struct options *o, const char *peer, int exit_code);
int run_client(const struct options *o);
int run_server(const struct options *o);

#endif
