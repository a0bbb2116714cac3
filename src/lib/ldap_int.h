/*
 * Internal declarations of the LDAP step (ldapcheck.h), one concern per
 * file:
 *
 *   ldapcheck.c    the outline of the whole; the step and what it owns,
 *                  failures, 1. the directory, the comparison, the public
 *                  functions
 *   ldap_text.c    the pure parts: DNs, filters, base DNs, pgpKey values
 *   ldap_conn.c    2. the connection (addresses, a TCP connection bounded
 *                  by the deadline); the watchdog and SIGPIPE
 *   ldap_session.c 3-5. the session: libldap's options, StartTLS or
 *                  ldaps, the directory authenticated by DANE, the search
 *                  and its entry; one target tried
 */
#ifndef TLSPOOL_LDAP_INT_H
#define TLSPOOL_LDAP_INT_H

#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "ldapcheck.h"
#include "lib.h"

#define MAX_TARGETS   8
#define MAX_ADDRS     8
#define MAX_VALUES    32
#define MAX_VALUE_LEN (64u << 10)

/* The step and what it owns; pub first, so that the public pointer is
 * the store's. */
struct step_store {
	starttls_ldap_step pub;
	tlspool_dns_answer *srv, *tlsa;
	tlspool_dane_result *dane;
	starttls_ldap_value *values;
	tlspool_openpgp_result *openpgp;
};

struct run {
	const struct tp_ldap_query *q;
	const struct tp_ldap_conf *lc;
	struct step_store *st;
	tlspool_dns *dns;
	long long deadline; /* of the step */
	int by_call;        /* the call's deadline is the earlier */
	char domain[256];
	struct tp_ldap_outcome *o;
};

struct watchdog {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int fd, stop, started;
	long long deadline;
};

struct nopipe {
	sigset_t old;
	int pending; /* a SIGPIPE was pending before */
};

/* --- ldapcheck.c: failures -------------------------------------------- */

/* The step's verdict and reason, and the thread's failure (the reason is
 * the detail); -1. */
int tp_ldap_fail(struct run *r, starttls_ldap_verdict v, int err,
                 starttls_class cls, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));

/* What is left of the step's time, in ms. */
long long tp_ldap_left(const struct run *r);

/* The deadline passed while doing what; -1. */
int tp_ldap_time_up(struct run *r, const char *what);

/* The outcome's expiry brought down to the answer's TTL and RRSIG. */
void tp_ldap_shorten(struct run *r, const tlspool_dns_answer *a);

/* A lookup within what is left; *ans set on 0. */
int tp_ldap_dns_lookup(struct run *r, const char *owner, uint16_t type,
                       tlspool_dns_answer **ans);

/* A DNS answer that fails closed: its verdict's class and errno; -1. */
int tp_ldap_dns_failed(struct run *r, const tlspool_dns_answer *a,
                       const char *what);

/* --- ldap_text.c ------------------------------------------------------- */

/* The local part and the domain of identity ("" local for a domain). */
int tp_ldap_split(const char *identity, char *local, size_t llen, char *domain,
                  size_t dlen);

/* --- ldap_conn.c ------------------------------------------------------- */

/* A connection to host port (its A and AAAA addresses in turn), blocking,
 * made within the deadline: the fd, or -1 with the step failed. */
int tp_ldap_connect_any(struct run *r, const char *host, unsigned port);

/* A thread that shuts fd down at deadline (tp_mono_ms()): 0 or -1;
 * tp_ldap_watch_stop() in either case. */
int tp_ldap_watch_start(struct watchdog *w, int fd, long long deadline);
void tp_ldap_watch_stop(struct watchdog *w);

/* SIGPIPE blocked in the calling thread between the two; one raised
 * meanwhile is taken back. */
void tp_ldap_nopipe_begin(struct nopipe *np);
void tp_ldap_nopipe_end(struct nopipe *np);

/* --- ldap_session.c ---------------------------------------------------- */

/* One target: its TLSA RRset, a connection, the session (StartTLS or
 * ldaps, DANE, the search, the entry's values): 0 or -1. */
int tp_ldap_attempt(struct run *r, const tlspool_srv *t);

#endif
