/*
 * tlspool-connect -- command line front end of tlspool, socat style: one
 * TLS side authenticated by DANE, one plain side (stdin/stdout or a
 * child).  It uses only the public headers.  See tlspool-connect(1).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <getdns/getdns_extra.h>
#include <gnutls/gnutls.h>

#include "cli.h"

const char *progname = "tlspool-connect";

static void usage(FILE *fp)
{
	fprintf(fp,
	        "usage: %s --client [OPTIONS] HOST PORT\n"
	        "       %s --client [OPTIONS] --fd N --sni NAME | --any-peer\n"
	        "       %s --server [OPTIONS] [--bind ADDR] [--fork "
	        "[--max-children N]] PORT\n"
	        "       %s --lookup NAME [PORT] [--udp|--sctp] [--json]\n"
	        "       %s --lookup USER@DOMAIN [--smimea] [--json]\n"
	        "       %s --lookup --ldap USER@DOMAIN|DOMAIN [--json]\n"
	        "       %s --lookup|--client --mx DOMAIN [PORT] [--json]\n"
	        "       %s --lookup|--client --srv SERVICE DOMAIN [--json]\n"
	        "       %s --cache-list | --cache-flush [--config FILE]\n"
	        "       %s --records-for FILE NAME PORT | USER@DOMAIN\n"
	        "options: --sni NAME --any-peer --myname ID --exec CMD\n"
	        "         --sni-allow GLOB --allow-no-sni --max-children N\n"
	        "         --fd N --config FILE --linger MS --udp --sctp\n"
	        "         --smimea --ldap --starttls PROTO\n"
	        "         --diagnose --show-certs --records\n"
	        "         --usage N --selector N --mtype N\n"
	        "         --json --json-file FILE\n"
	        "         --cert FILE --key FILE|pkcs11:URI --trust-anchor "
	        "FILE\n"
	        "         --upstream ADDR[@PORT] --priority STRING --alpn "
	        "LIST\n"
	        "         --timeout MS\n"
	        "         --peer-cert-optional --no-peer-cert --no-local-cert\n"
	        "         --no-remote-user --no-remote-domain --no-cache-read\n"
	        "         --no-cache-write --no-authz -v|--verbose --help "
	        "--version\n"
	        "starttls protocols: %s\n"
	        "exit status: 0 ok, 1 usage, 2 connection, 3 TLS, 4 not "
	        "authenticated,\n"
	        "             5 refused, 6 DNS, 7 no DANE (--mx, --srv)\n"
	        "See tlspool-connect(1).\n",
	        progname, progname, progname, progname, progname, progname,
	        progname, progname, progname, progname,
	        starttls_prelude_protocols());
}

int usage_error(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	say("%s", msg);
	if (!out_json()) {
		usage(stderr);
		out_hinted();
	} else
		hint("%s --help lists the options; tlspool-connect(1) "
		     "explains them",
		     progname);
	return EXIT_USAGE;
}

/* --version: ours, the libraries', and the configuration in use. */
static void version(void)
{
	const char *cfg = getenv("TLSPOOL_CONFIG");
	int env = cfg != NULL && cfg[0] != '\0';

	printf("tlspool-connect %s\n", TLSPOOL_VERSION);
	printf("libtlspool %s\n", TLSPOOL_VERSION);
	printf("GnuTLS %s\n", gnutls_check_version(NULL));
	printf("getdns %s (API %s)\n", getdns_get_version(),
	       getdns_get_api_version());
	printf("json-c %s\n", json_c_version());
	printf("configuration %s%s\n",
	       env ? cfg : tlspool_config_default_path(),
	       env ? " ($TLSPOOL_CONFIG)" : "");
}

/* A decimal number from min to max, nothing else (no sign, no blanks, no
 * wrap-around); 0, or -1 after a usage message naming what. */
static int number(const char *s, long min, long max, const char *what,
                  long *out)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (s[0] < '0' || s[0] > '9' || errno != 0 || *end != '\0' ||
	    v < (unsigned long)min || v > (unsigned long)max) {
		usage_error("%s: \"%s\" is not a number from %ld to %ld", what,
		            s, min, max);
		return -1;
	}
	*out = (long)v;
	return 0;
}

/* Raise the soft limit of descriptors to the hard one: a server with
 * many connections needs one per connection and more in its children,
 * and the default soft limit (often 1024) is there for select() users. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* --mx and --srv: a destination, not a host (one of them; no --fd, no
 * --sni: the DNS names the hosts; TCP only). */
static int check_dest(const struct options *o)
{
	if (!o->mx && o->srv == NULL)
		return 0;
	if (o->mx && o->srv != NULL)
		return usage_error("choose one of --mx and --srv");
	if (o->fd >= 0 || o->sni != NULL || o->any_peer || o->ldap || o->smimea)
		return usage_error("--mx and --srv take no --fd, --sni, "
		                   "--any-peer, --ldap or --smimea: the DNS "
		                   "names the hosts");
	if (strcmp(o->proto, "tcp") != 0)
		return usage_error("--mx and --srv are TCP only");
	return 0;
}

/* --sctp for a connection: DTLS over SCTP (RFC 6083) is not in this
 * version, and a kernel without SCTP is named as the first reason; an
 * error before any socket is made (a server would otherwise wait on a
 * socket no SCTP client could reach). */
static int check_sctp(const struct options *o)
{
	int probe;

	if (strcmp(o->proto, "sctp") != 0 || (o->mode != 'c' && o->mode != 's'))
		return 0;
	probe = socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP);
	if (probe < 0) {
		say("--sctp: this kernel has no SCTP (%s), and DTLS over SCTP "
		    "is not available in this version",
		    strerror(errno));
		hint("use TCP (no --sctp), or --udp for DTLS; --lookup --sctp "
		     "still looks up _PORT._sctp records");
		return EXIT_USAGE;
	}
	close(probe);
	say("--sctp: DTLS over SCTP (RFC 6083) is not available in this "
	    "version");
	hint("use TCP (no --sctp), or --udp for DTLS; --lookup --sctp still "
	     "looks up _PORT._sctp records");
	return EXIT_USAGE;
}

/* The options of one role only: given in another mode, a usage error
 * rather than silently ignored. */
static int check_role(const struct options *o, int set[])
{
	static const struct {
		const char *name;
		const char *modes; /* where it is allowed */
	} opt[] = {
	        {"--sni", "c"},       {"--any-peer", "c"},
	        {"--sni-allow", "s"}, {"--allow-no-sni", "s"},
	        {"--fork", "s"},      {"--max-children", "s"},
	        {"--bind", "s"},      {"--exec", "cs"},
	        {"--myname", "cs"},   {"--fd", "cs"},
	        {"--linger", "cs"},   {"--diagnose", "cs"},
	        {"--smimea", "l"},    {"--ldap", "l"},
	        {"--records", "c"},   {"--show-certs", "cs"},
	        {"--usage", "cr"},    {"--selector", "cr"},
	        {"--mtype", "cr"},    {"--mx", "lc"},
	        {"--srv", "lc"},      {"--starttls", "cs"},
	};
	size_t i;

	for (i = 0; i < sizeof(opt) / sizeof(opt[0]); i++)
		if (set[i] && strchr(opt[i].modes, o->mode) == NULL)
			return usage_error("%s is not an option of --%s",
			                   opt[i].name,
			                   o->mode == 'c'   ? "client"
			                   : o->mode == 's' ? "server"
			                   : o->mode == 'l' ? "lookup"
			                   : o->mode == 'L' ? "cache-list"
			                   : o->mode == 'r' ? "records-for"
			                                    : "cache-flush");
	if (o->max_children && !o->fork)
		return usage_error("--max-children needs --fork");
	if (o->allow_no_sni && o->nsni_allow == 0)
		return usage_error("--allow-no-sni needs --sni-allow");
	if (check_sctp(o) != 0)
		return EXIT_USAGE;
	return check_dest(o);
}

/* The long options; flags are OPT_FLAG + the STARTTLS_* bit. */
enum {
	OPT_LOOKUP = 256,
	OPT_CLIENT,
	OPT_SERVER,
	OPT_CONFIG,
	OPT_UDP,
	OPT_SCTP,
	OPT_JSON,
	OPT_SMIMEA,
	OPT_VERSION,
	OPT_HELP,
	OPT_SNI,
	OPT_MYNAME,
	OPT_FD,
	OPT_EXEC,
	OPT_FORK,
	OPT_SNI_ALLOW,
	OPT_BIND,
	OPT_DIAGNOSE,
	OPT_LINGER,
	OPT_STARTTLS,
	OPT_CACHE_LIST,
	OPT_CACHE_FLUSH,
	OPT_LDAP,
	OPT_ANY_PEER,
	OPT_ALLOW_NO_SNI,
	OPT_MAX_CHILDREN,
	OPT_JSON_FILE,
	OPT_RECORDS,
	OPT_RECORDS_FOR,
	OPT_SHOW_CERTS,
	OPT_USAGE,
	OPT_SELECTOR,
	OPT_MTYPE,
	OPT_MX,
	OPT_SRV,
	OPT_FLAG,
};

static const struct option longopts[] = {
        {"lookup", no_argument, NULL, OPT_LOOKUP},
        {"cache-list", no_argument, NULL, OPT_CACHE_LIST},
        {"cache-flush", no_argument, NULL, OPT_CACHE_FLUSH},
        {"client", no_argument, NULL, OPT_CLIENT},
        {"server", no_argument, NULL, OPT_SERVER},
        {"config", required_argument, NULL, OPT_CONFIG},
        {"udp", no_argument, NULL, OPT_UDP},
        {"sctp", no_argument, NULL, OPT_SCTP},
        {"json", no_argument, NULL, OPT_JSON},
        {"json-file", required_argument, NULL, OPT_JSON_FILE},
        {"records", no_argument, NULL, OPT_RECORDS},
        {"records-for", required_argument, NULL, OPT_RECORDS_FOR},
        {"show-certs", no_argument, NULL, OPT_SHOW_CERTS},
        {"usage", required_argument, NULL, OPT_USAGE},
        {"selector", required_argument, NULL, OPT_SELECTOR},
        {"mtype", required_argument, NULL, OPT_MTYPE},
        {"smimea", no_argument, NULL, OPT_SMIMEA},
        {"ldap", no_argument, NULL, OPT_LDAP},
        {"mx", no_argument, NULL, OPT_MX},
        {"srv", required_argument, NULL, OPT_SRV},
        {"sni", required_argument, NULL, OPT_SNI},
        {"any-peer", no_argument, NULL, OPT_ANY_PEER},
        {"myname", required_argument, NULL, OPT_MYNAME},
        {"fd", required_argument, NULL, OPT_FD},
        {"exec", required_argument, NULL, OPT_EXEC},
        {"fork", no_argument, NULL, OPT_FORK},
        {"max-children", required_argument, NULL, OPT_MAX_CHILDREN},
        {"sni-allow", required_argument, NULL, OPT_SNI_ALLOW},
        {"allow-no-sni", no_argument, NULL, OPT_ALLOW_NO_SNI},
        {"bind", required_argument, NULL, OPT_BIND},
        {"diagnose", no_argument, NULL, OPT_DIAGNOSE},
        {"linger", required_argument, NULL, OPT_LINGER},
        {"starttls", required_argument, NULL, OPT_STARTTLS},
        {"peer-cert-optional", no_argument, NULL,
         OPT_FLAG + STARTTLS_PEERCERT_OPTIONAL},
        {"no-peer-cert", no_argument, NULL, OPT_FLAG + STARTTLS_PEERCERT_NONE},
        {"no-local-cert", no_argument, NULL,
         OPT_FLAG + STARTTLS_LOCALCERT_NONE},
        {"no-remote-user", no_argument, NULL,
         OPT_FLAG + STARTTLS_NO_REMOTE_USER},
        {"no-remote-domain", no_argument, NULL,
         OPT_FLAG + STARTTLS_NO_REMOTE_DOMAIN},
        {"no-cache-read", no_argument, NULL, OPT_FLAG + STARTTLS_NO_CACHE_READ},
        {"no-cache-write", no_argument, NULL,
         OPT_FLAG + STARTTLS_NO_CACHE_WRITE},
        {"no-authz", no_argument, NULL, OPT_FLAG + STARTTLS_NO_AUTHZ},
        {"cert", required_argument, NULL, OPT_QUICK + Q_CERT},
        {"key", required_argument, NULL, OPT_QUICK + Q_KEY},
        {"trust-anchor", required_argument, NULL, OPT_QUICK + Q_TRUST_ANCHOR},
        {"upstream", required_argument, NULL, OPT_QUICK + Q_UPSTREAM},
        {"priority", required_argument, NULL, OPT_QUICK + Q_PRIORITY},
        {"alpn", required_argument, NULL, OPT_QUICK + Q_ALPN},
        {"timeout", required_argument, NULL, OPT_QUICK + Q_TIMEOUT},
        {"verbose", no_argument, NULL, 'v'},
        {"version", no_argument, NULL, OPT_VERSION},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
};

/* the order of check_role()'s table */
enum {
	R_SNI,
	R_ANY_PEER,
	R_SNI_ALLOW,
	R_ALLOW_NO_SNI,
	R_FORK,
	R_MAX_CHILDREN,
	R_BIND,
	R_EXEC,
	R_MYNAME,
	R_FD,
	R_LINGER,
	R_DIAGNOSE,
	R_SMIMEA,
	R_LDAP,
	R_RECORDS,
	R_SHOW_CERTS,
	R_USAGE,
	R_SELECTOR,
	R_MTYPE,
	R_MX,
	R_SRV,
	R_STARTTLS,
	R_N
};

/* One option into o (set[]: which role options were given): -1 to go
 * on, else the exit code (--help, --version, a usage error).  One case
 * per option: it reads best as one switch. */
static int apply_option(int c, struct options *o, int set[], char **argv)
{
	long v;

	if (c >= OPT_QUICK)
		return quick_option(o, c - OPT_QUICK, optarg);
	if (c >= OPT_FLAG) {
		o->flags |= c - OPT_FLAG;
		return -1;
	}
	switch (c) {
	case OPT_LOOKUP:
	case OPT_CLIENT:
	case OPT_SERVER:
	case OPT_CACHE_LIST:
	case OPT_CACHE_FLUSH:
	case OPT_RECORDS_FOR: {
		int m = c == OPT_LOOKUP        ? 'l'
		        : c == OPT_CLIENT      ? 'c'
		        : c == OPT_SERVER      ? 's'
		        : c == OPT_CACHE_LIST  ? 'L'
		        : c == OPT_CACHE_FLUSH ? 'F'
		                               : 'r';

		if (o->mode != 0 && o->mode != m)
			return usage_error("choose one of --lookup, "
			                   "--client, --server, "
			                   "--cache-list, --cache-flush, "
			                   "--records-for");
		o->mode = m;
		if (c == OPT_RECORDS_FOR)
			o->records_file = optarg;
		break;
	}
	case OPT_JSON_FILE:
		o->json_file = optarg;
		o->json = 1;
		break;
	case OPT_RECORDS:
		o->records = set[R_RECORDS] = 1;
		break;
	case OPT_SHOW_CERTS:
		o->show_certs = set[R_SHOW_CERTS] = 1;
		break;
	case OPT_USAGE:
	case OPT_SELECTOR:
	case OPT_MTYPE:
		if (number(optarg, 0,
		           c == OPT_SELECTOR ? 1
		           : c == OPT_USAGE  ? 3
		                             : 2,
		           c == OPT_USAGE      ? "--usage"
		           : c == OPT_SELECTOR ? "--selector"
		                               : "--mtype",
		           &v) != 0)
			return EXIT_USAGE;
		*(c == OPT_USAGE      ? &o->usage
		  : c == OPT_SELECTOR ? &o->selector
		                      : &o->mtype) = (int)v;
		set[c == OPT_USAGE      ? R_USAGE
		    : c == OPT_SELECTOR ? R_SELECTOR
		                        : R_MTYPE] = 1;
		break;
	case OPT_CONFIG:
		o->config = optarg;
		break;
	case OPT_UDP:
		o->proto = "udp";
		break;
	case OPT_SCTP:
		o->proto = "sctp";
		break;
	case OPT_JSON:
		o->json = 1;
		break;
	case OPT_LDAP:
		o->ldap = set[R_LDAP] = 1;
		break;
	case OPT_SMIMEA:
		o->smimea = set[R_SMIMEA] = 1;
		break;
	case OPT_MX:
		o->mx = set[R_MX] = 1;
		break;
	case OPT_SRV:
		o->srv = optarg;
		set[R_SRV] = 1;
		break;
	case OPT_SNI:
		o->sni = optarg;
		set[R_SNI] = 1;
		break;
	case OPT_ANY_PEER:
		o->any_peer = set[R_ANY_PEER] = 1;
		break;
	case OPT_MYNAME:
		o->myname = optarg;
		set[R_MYNAME] = 1;
		break;
	case OPT_FD:
		if (number(optarg, 0, 1 << 20, "--fd", &v) != 0)
			return EXIT_USAGE;
		o->fd = (int)v;
		set[R_FD] = 1;
		break;
	case OPT_EXEC:
		o->exec = optarg;
		set[R_EXEC] = 1;
		break;
	case OPT_FORK:
		o->fork = set[R_FORK] = 1;
		break;
	case OPT_MAX_CHILDREN:
		if (number(optarg, 1, 65536, "--max-children", &v) != 0)
			return EXIT_USAGE;
		o->max_children = (int)v;
		set[R_MAX_CHILDREN] = 1;
		break;
	case OPT_SNI_ALLOW:
		if (o->nsni_allow == MAX_SNI_ALLOW)
			return usage_error("more than %d --sni-allow",
			                   MAX_SNI_ALLOW);
		o->sni_allow[o->nsni_allow++] = optarg;
		set[R_SNI_ALLOW] = 1;
		break;
	case OPT_ALLOW_NO_SNI:
		o->allow_no_sni = set[R_ALLOW_NO_SNI] = 1;
		break;
	case OPT_BIND:
		o->bind = addr_unbracket(optarg);
		set[R_BIND] = 1;
		break;
	case OPT_DIAGNOSE:
		o->diagnose = set[R_DIAGNOSE] = 1;
		break;
	case OPT_LINGER:
		if (number(optarg, 0, 3600000, "--linger", &v) != 0)
			return EXIT_USAGE;
		o->linger_ms = (int)v;
		set[R_LINGER] = 1;
		break;
	case OPT_STARTTLS:
		if (starttls_arg(o, optarg) != 0)
			return EXIT_USAGE;
		set[R_STARTTLS] = 1;
		break;
	case 'v':
		o->verbose++;
		break;
	case OPT_VERSION:
		version();
		return EXIT_OK;
	case OPT_HELP:
		usage(stdout);
		return EXIT_OK;
	case ':':
		return usage_error("%s needs an argument", argv[optind - 1]);
	default:
		if (optopt >= '0' && optopt <= '9')
			return usage_error(
			        "%s: not an option (numbers are never "
			        "negative)",
			        argv[optind - 1]);
		return usage_error("%s: unknown option", argv[optind - 1]);
	}
	return -1;
}

/* What out_begin() needs, before the options are parsed for real: --json,
 * --json-file, the mode (the first one given) and -v.  The same parser
 * over the same table, so that an option's argument ("--exec --json") and
 * an abbreviation are read as the real pass reads them; errors are left
 * to that pass. */
static const struct options *prescan(int argc, char **argv)
{
	static struct options p;
	char **v = malloc(((size_t)argc + 1) * sizeof(*v));
	int c;

	if (v == NULL)
		return &p;
	/* a copy: getopt_long() permutes what it parses */
	memcpy(v, argv, ((size_t)argc + 1) * sizeof(*v));
	while ((c = getopt_long(argc, v, ":v", longopts, NULL)) != -1)
		switch (c) {
		case OPT_JSON:
			p.json = 1;
			break;
		case OPT_JSON_FILE:
			p.json = 1;
			p.json_file = optarg;
			break;
		case 'v':
			p.verbose++;
			break;
		case OPT_LOOKUP:
		case OPT_CLIENT:
		case OPT_SERVER:
		case OPT_CACHE_LIST:
		case OPT_CACHE_FLUSH:
		case OPT_RECORDS_FOR:
			if (p.mode == 0)
				p.mode = c == OPT_LOOKUP        ? 'l'
				         : c == OPT_CLIENT      ? 'c'
				         : c == OPT_SERVER      ? 's'
				         : c == OPT_CACHE_LIST  ? 'L'
				         : c == OPT_CACHE_FLUSH ? 'F'
				                                : 'r';
			break;
		}
	free(v);
	optind = 0; /* glibc: start again, from argv[1] */
	return &p;
}

/* The operands of --mx (DOMAIN [PORT]) and --srv (DOMAIN). */
static int take_dest_operands(struct options *o, int nargs, char **argv)
{
	if (o->mx ? nargs < 1 || nargs > 2 : nargs != 1)
		return usage_error(o->mx ? "--mx takes DOMAIN [PORT]"
		                         : "--srv SERVICE takes DOMAIN");
	o->name = argv[0];
	o->port = nargs == 2 ? argv[1] : NULL;
	if (o->port != NULL &&
	    addr_port(o, o->port, "--mx PORT", &o->port) != 0)
		return EXIT_USAGE;
	return 0;
}

/* The operands of the mode: 0, or the exit code. */
static int take_operands(struct options *o, int nargs, char **argv)
{
	if (o->mx || o->srv != NULL)
		return take_dest_operands(o, nargs, argv);
	switch (o->mode) {
	case 'l':
		if (o->ldap && nargs != 1)
			return usage_error(
			        "--lookup --ldap takes USER@DOMAIN or DOMAIN");
		if (nargs < 1 || nargs > 2)
			return usage_error("--lookup takes NAME [PORT]");
		o->name = argv[0];
		o->port = nargs == 2 ? argv[1] : NULL;
		if (o->port != NULL &&
		    addr_port(o, o->port, "--lookup PORT", &o->port) != 0)
			return EXIT_USAGE;
		break;
	case 'r':
		if (nargs == 1 && strchr(argv[0], '@') != NULL) {
			o->name = argv[0];
			break;
		}
		if (nargs != 2)
			return usage_error(
			        "--records-for FILE takes NAME PORT, "
			        "or USER@DOMAIN");
		o->name = argv[0];
		o->port = argv[1];
		if (addr_port(o, o->port, "--records-for PORT", &o->port) != 0)
			return EXIT_USAGE;
		break;
	case 'L':
	case 'F':
		if (nargs != 0)
			return usage_error(
			        "--cache-list and --cache-flush take "
			        "no arguments");
		break;
	case 'c':
		if (o->fd >= 0 ? nargs != 0 : nargs != 2)
			return usage_error(
			        "--client takes HOST PORT, or --fd N");
		if (o->fd < 0) {
			o->name = addr_unbracket(argv[0]);
			if (addr_port(o, argv[1], "--client PORT", &o->port) !=
			    0)
				return EXIT_USAGE;
		}
		break;
	case 's':
		if (o->fd >= 0 ? nargs != 0 : nargs != 1)
			return usage_error("--server takes PORT, or --fd N");
		if (o->fd < 0) {
			if (addr_port(o, argv[0], "--server PORT", &o->port) !=
			    0)
				return EXIT_USAGE;
		}
		break;
	}
	return 0;
}

/* The configuration, read once for the whole run (every mode checks all
 * of it, so a broken file is an error naming file and line). */
static int open_config(struct options *o)
{
	int rc;

	/* Through the pool with no --config: the application's own file is
	 * not read at all (tlspoold(8)); the calls take the default.  The
	 * quick flags are overrides of the file (overrides.c). */
	rc = quick_ctx(o);
	if (rc == 0)
		rc = quick_identity(o);
	/* the document of a connection shows the DNSSEC proof of the very
	 * answer the call validated: the resolver the calls use returns it
	 * (getdns's dnssec_return_validation_chain), no second lookup.
	 * Where the resolver cannot be made, the call says why. */
	if (rc == 0 && o->json && o->ctx != NULL &&
	    (o->mode == 'c' || o->mode == 's')) {
		tlspool_dns *dns = starttls_ctx_resolver(o->ctx);

		if (dns != NULL)
			tlspool_dns_return_chain(dns, 1);
	}
	return rc;
}

static int run_mode(const struct options *o)
{
	switch (o->mode) {
	case 'l':
		if (o->mx || o->srv != NULL)
			return run_dest_lookup(o);
		return o->ldap ? run_ldap_lookup(o->ctx, o->name, o->json)
		               : run_lookup(o);
	case 'L':
		return run_cache_list(o);
	case 'F':
		return run_cache_flush(o);
	case 'r':
		return run_records_for(o);
	case 'c':
		if (o->mx || o->srv != NULL)
			return run_dest_client(o);
		return run_client(o);
	default:
		return run_server(o);
	}
}

int main(int argc, char **argv)
{
	int set[R_N] = {0};
	struct options o = {.proto = "tcp",
	                    .fd = -1,
	                    .linger_ms = 500,
	                    .usage = -1,
	                    .selector = -1,
	                    .mtype = -1};
	int c, rc;

	raise_nofile();
	opterr = 0; /* our messages, in apply_option() */
	/* --json and the mode first, so that a usage error found while the
	 * options are parsed is a document too */
	rc = out_begin(prescan(argc, argv));
	if (rc != 0)
		return out_finish(rc);
	while ((c = getopt_long(argc, argv, ":v", longopts, NULL)) != -1)
		if ((rc = apply_option(c, &o, set, argv)) >= 0)
			/* --help and --version print text, not a document */
			return c == OPT_HELP || c == OPT_VERSION
			               ? rc
			               : out_finish(rc);
	if (o.mode == 0)
		return out_finish(usage_error("one of --lookup, --client, "
		                              "--server, --cache-list, "
		                              "--cache-flush or --records-for "
		                              "is needed"));
	if (check_role(&o, set) != 0)
		return out_finish(EXIT_USAGE);
	if (o.fork && o.max_children == 0)
		o.max_children = DEFAULT_MAX_CHILDREN;
	rc = take_operands(&o, argc - optind, argv + optind);
	if (rc == 0 && o.mode != 'r')
		rc = open_config(&o);
	if (rc != 0)
		return out_finish(rc);
	if (o.mode == 'c' || o.mode == 's')
		out_catch_signals();
	rc = run_mode(&o);
	starttls_ctx_free(o.ctx);
	return out_finish(rc);
}
