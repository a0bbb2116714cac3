/*
 * tlspool-connect -- command line front end of tlspool, socat style: one
 * TLS side authenticated by DANE, one plain side (stdin/stdout or a
 * child).  It uses only the public headers.  See tlspool-connect(1).
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

const char *progname = "tlspool-connect";

int run_ldap_lookup(const char *identity, int json); /* ldap_info.c */

static void usage(FILE *fp)
{
	fprintf(fp,
	        "usage: %s --client [OPTIONS] HOST PORT\n"
	        "       %s --client [OPTIONS] --fd N --sni NAME\n"
	        "       %s --server [OPTIONS] [--bind ADDR] [--fork] PORT\n"
	        "       %s --lookup NAME [PORT] [--udp|--sctp] [--json]\n"
	        "       %s --lookup USER@DOMAIN [--smimea] [--json]\n"
	        "       %s --lookup --ldap USER@DOMAIN|DOMAIN [--json]\n"
	        "       %s --cache-list | --cache-flush [--config FILE]\n"
	        "options: --sni NAME --myname ID --sni-allow GLOB --exec CMD\n"
	        "         --fd N --config FILE --linger MS --udp --sctp\n"
	        "         --peer-cert-optional --no-peer-cert --no-local-cert\n"
	        "         --no-remote-user --no-remote-domain --no-cache-read\n"
	        "         --no-cache-write --no-authz -v --help --version\n"
	        "See tlspool-connect(1).\n",
	        progname, progname, progname, progname, progname, progname,
	        progname);
}

void die_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	usage(stderr);
	exit(EXIT_USAGE);
}

static int number(const char *s, long min, long max, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < min || v > max)
		die_usage("%s: \"%s\" is not a number from %ld to %ld", what, s,
		          min, max);
	return (int)v;
}

int main(int argc, char **argv)
{
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
	        {"smimea", no_argument, NULL, OPT_SMIMEA},
	        {"ldap", no_argument, NULL, OPT_LDAP},
	        {"sni", required_argument, NULL, OPT_SNI},
	        {"myname", required_argument, NULL, OPT_MYNAME},
	        {"fd", required_argument, NULL, OPT_FD},
	        {"exec", required_argument, NULL, OPT_EXEC},
	        {"fork", no_argument, NULL, OPT_FORK},
	        {"sni-allow", required_argument, NULL, OPT_SNI_ALLOW},
	        {"bind", required_argument, NULL, OPT_BIND},
	        {"diagnose", no_argument, NULL, OPT_DIAGNOSE},
	        {"linger", required_argument, NULL, OPT_LINGER},
	        {"starttls", required_argument, NULL, OPT_STARTTLS},
	        {"peer-cert-optional", no_argument, NULL,
	         OPT_FLAG + STARTTLS_PEERCERT_OPTIONAL},
	        {"no-peer-cert", no_argument, NULL,
	         OPT_FLAG + STARTTLS_PEERCERT_NONE},
	        {"no-local-cert", no_argument, NULL,
	         OPT_FLAG + STARTTLS_LOCALCERT_NONE},
	        {"no-remote-user", no_argument, NULL,
	         OPT_FLAG + STARTTLS_NO_REMOTE_USER},
	        {"no-remote-domain", no_argument, NULL,
	         OPT_FLAG + STARTTLS_NO_REMOTE_DOMAIN},
	        {"no-cache-read", no_argument, NULL,
	         OPT_FLAG + STARTTLS_NO_CACHE_READ},
	        {"no-cache-write", no_argument, NULL,
	         OPT_FLAG + STARTTLS_NO_CACHE_WRITE},
	        {"no-authz", no_argument, NULL, OPT_FLAG + STARTTLS_NO_AUTHZ},
	        {"verbose", no_argument, NULL, 'v'},
	        {"version", no_argument, NULL, OPT_VERSION},
	        {"help", no_argument, NULL, OPT_HELP},
	        {NULL, 0, NULL, 0},
	};
	struct options o = {.proto = "tcp", .fd = -1, .linger_ms = 500};
	int c, nargs, ldap = 0;

	while ((c = getopt_long(argc, argv, "v", longopts, NULL)) != -1) {
		if (c >= OPT_FLAG) {
			o.flags |= c - OPT_FLAG;
			continue;
		}
		switch (c) {
		case OPT_LOOKUP:
		case OPT_CLIENT:
		case OPT_SERVER:
		case OPT_CACHE_LIST:
		case OPT_CACHE_FLUSH: {
			int m = c == OPT_LOOKUP       ? 'l'
			        : c == OPT_CLIENT     ? 'c'
			        : c == OPT_SERVER     ? 's'
			        : c == OPT_CACHE_LIST ? 'L'
			                              : 'F';

			if (o.mode != 0 && o.mode != m)
				die_usage("choose one of --lookup, --client, "
				          "--server, --cache-list, "
				          "--cache-flush");
			o.mode = m;
			break;
		}
		case OPT_CONFIG:
			o.config = optarg;
			break;
		case OPT_UDP:
			o.proto = "udp";
			break;
		case OPT_SCTP:
			o.proto = "sctp";
			break;
		case OPT_JSON:
			o.json = 1;
			break;
		case OPT_SMIMEA:
			o.smimea = 1;
			break;
		case OPT_LDAP:
			ldap = 1;
			break;
		case OPT_SNI:
			o.sni = optarg;
			break;
		case OPT_MYNAME:
			o.myname = optarg;
			break;
		case OPT_FD:
			o.fd = number(optarg, 0, 1 << 20, "--fd");
			break;
		case OPT_EXEC:
			o.exec = optarg;
			break;
		case OPT_FORK:
			o.fork = 1;
			break;
		case OPT_SNI_ALLOW:
			if (o.nsni_allow == MAX_SNI_ALLOW)
				die_usage("more than %d --sni-allow",
				          MAX_SNI_ALLOW);
			o.sni_allow[o.nsni_allow++] = optarg;
			break;
		case OPT_BIND:
			o.bind = optarg;
			break;
		case OPT_DIAGNOSE:
			o.diagnose = 1;
			break;
		case OPT_LINGER:
			o.linger_ms = number(optarg, 0, 3600000, "--linger");
			break;
		case OPT_STARTTLS:
			die_usage(
			        "--starttls %s: not available in this version",
			        optarg);
		case 'v':
			o.verbose++;
			break;
		case OPT_VERSION:
			printf("tlspool-connect %s\n", TLSPOOL_VERSION);
			return EXIT_OK;
		case OPT_HELP:
			usage(stdout);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	nargs = argc - optind;
	if (ldap && o.mode != 'l')
		die_usage("--ldap goes with --lookup");
	if (o.config != NULL)
		/* libtlspool reads its configuration from here */
		setenv("TLSPOOL_CONFIG", o.config, 1);
	switch (o.mode) {
	case 'l':
		if (ldap && nargs != 1)
			die_usage(
			        "--lookup --ldap takes USER@DOMAIN or DOMAIN");
		if (ldap)
			return run_ldap_lookup(argv[optind], o.json);
		if (nargs < 1 || nargs > 2)
			die_usage("--lookup takes NAME [PORT]");
		o.name = argv[optind];
		o.port = nargs == 2 ? argv[optind + 1] : NULL;
		return run_lookup(&o);
	case 'L':
	case 'F':
		if (nargs != 0)
			die_usage("--cache-list and --cache-flush take no "
			          "arguments");
		return o.mode == 'L' ? run_cache_list(&o) : run_cache_flush(&o);
	case 'c':
		if (o.fd >= 0 ? nargs != 0 : nargs != 2)
			die_usage("--client takes HOST PORT, or --fd N");
		if (o.fd < 0) {
			o.name = argv[optind];
			o.port = argv[optind + 1];
		}
		return run_client(&o);
	case 's':
		if (o.fd >= 0 ? nargs != 0 : nargs != 1)
			die_usage("--server takes PORT, or --fd N");
		if (o.fd < 0)
			o.port = argv[optind];
		return run_server(&o);
	}
	die_usage("one of --lookup, --client or --server is needed");
}
