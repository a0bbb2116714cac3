/*
 * Internal declarations shared by the files of libtlspool-validate.
 * Cross-file internal symbols carry the tp_ prefix; the version script
 * keeps them out of the shared library's exports.
 */
#ifndef TLSPOOL_VALIDATE_INTERNAL_H
#define TLSPOOL_VALIDATE_INTERNAL_H

#include <limits.h>
#include <stdarg.h>
#include <stddef.h>

#include "tlspool/validate.h"

#define TP_MAX_UPSTREAMS 8
#define TP_MAX_CNAMES 8

struct tp_upstream {
	int family;              /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	unsigned port;
};

struct tlspool_dns_config {
	int recursive;
	size_t nupstream;
	struct tp_upstream upstream[TP_MAX_UPSTREAMS];
	char trust_anchor[PATH_MAX];
	unsigned timeout_ms;
};

/* Write a formatted message into err (if err and errlen are nonzero). */
void tp_err(char *err, size_t errlen, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Parse "ADDR" or "ADDR@PORT" (IPv4 or IPv6).  0 or -1. */
int tp_parse_upstream(const char *s, struct tp_upstream *out);

/* Case-insensitive comparison of two domain names, ignoring one final
 * dot on either. */
int tp_name_equal(const char *a, const char *b);

struct getdns_dict;
enum tp_step { TP_STEP_DONE, TP_STEP_FOLLOW };

/*
 * Classify one getdns response to a query for cur (dns.c): sets
 * ans->verdict and collects records; TP_STEP_FOLLOW with cur changed when
 * a CNAME chain leaves the reply.  0, or -1 for lack of memory.
 */
int tp_dns_classify(tlspool_dns_answer *ans, struct getdns_dict *resp,
                    char cur[256], enum tp_step *step);

#endif
