/*
 * The LDAP step's session (ldap_int.h), steps 3-5 of the outline in
 * ldapcheck.c: libldap on the connection ldap_conn.c made, StartTLS or
 * ldaps, the directory's certificate through the DANE matcher, one
 * search, the values of its entry.
 */
#include <errno.h>
#include <lber.h>
#include <ldap.h>
#include <openldap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "ldap_int.h"

/* --- 3-5. the session ---------------------------------------------------- */

static void set_timeout(LDAP *ld, long long ms, struct timeval *tv)
{
	if (ms < 1)
		ms = 1;
	tv->tv_sec = (time_t)(ms / 1000);
	tv->tv_usec = (suseconds_t)(ms % 1000) * 1000;
	ldap_set_option(ld, LDAP_OPT_TIMEOUT, tv);
}

/* libldap's options for one handle: LDAPv3, no referrals (they would
 * lead to directories nobody authenticated), no alias dereferencing, and
 * a TLS context that verifies nothing and loads no CA file (ldap.conf's
 * TLS_CACERT included): the DANE matcher decides. */
static int handle_options(LDAP *ld)
{
	static const int opts[] = {
	        LDAP_OPT_X_TLS_CACERTFILE, LDAP_OPT_X_TLS_CACERTDIR,
	        LDAP_OPT_X_TLS_CERTFILE,   LDAP_OPT_X_TLS_KEYFILE,
	        LDAP_OPT_X_TLS_CRLFILE,
	};
	int v3 = LDAP_VERSION3, never = LDAP_OPT_X_TLS_NEVER,
	    deref = LDAP_DEREF_NEVER, zero = 0,
	    min = LDAP_OPT_X_TLS_PROTOCOL_TLS1_2;
	size_t i;

	if (ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3) ||
	    ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF) ||
	    ldap_set_option(ld, LDAP_OPT_DEREF, &deref) ||
	    ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &never) ||
	    ldap_set_option(ld, LDAP_OPT_X_TLS_PROTOCOL_MIN, &min))
		return -1;
	for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		ldap_set_option(ld, opts[i], NULL);
	return ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &zero) ==
	                       LDAP_OPT_SUCCESS
	               ? 0
	               : -1;
}

/* An LDAP failure: the deadline, else unreachable. */
static int ldap_failed(struct run *r, LDAP *ld, int rc, const char *what)
{
	char *diag = NULL;

	if (tp_ldap_left(r) <= 0 || rc == LDAP_TIMEOUT)
		return tp_ldap_time_up(r, r->st->pub.host);
	ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag);
	tp_ldap_fail(r, STARTTLS_LDAP_UNREACHABLE, EKEYREJECTED,
	             STARTTLS_ERR_DIRECTORY_UNREACHABLE,
	             "%s port %u: %s: %s%s%s%s", r->st->pub.host,
	             r->st->pub.port, what, ldap_err2string(rc),
	             diag && *diag ? " (" : "", diag && *diag ? diag : "",
	             diag && *diag ? ")" : "");
	ldap_memfree(diag);
	return -1;
}

/* The directory's certificate through the DANE matcher.  libldap gives
 * the end entity only (so DANE-EE records: docs in tlspool.conf(5)); the
 * GnuTLS backend of OpenLDAP 2.6 gives it only after its own CA check
 * passed, which never happens here: there the step fails closed. */
static int authenticate(struct run *r, LDAP *ld, const tlspool_tlsa *tlsa,
                        size_t ntlsa)
{
	struct berval bv = {0, NULL};
	const char *names[1] = {r->st->pub.host};
	tlspool_dane_input in;
	tlspool_span cert;
	char err[256];
	int rv;

	if (ldap_get_option(ld, LDAP_OPT_X_TLS_PEERCERT, &bv) !=
	            LDAP_OPT_SUCCESS ||
	    bv.bv_val == NULL || bv.bv_len == 0) {
		ber_memfree(bv.bv_val);
		return tp_ldap_fail(
		        r, STARTTLS_LDAP_NOT_AUTHENTICATED, EKEYREJECTED,
		        STARTTLS_ERR_DIRECTORY_UNAUTHENTICATED,
		        "%s port %u: libldap gave no certificate of the "
		        "directory (LDAP_OPT_X_TLS_PEERCERT): it cannot "
		        "be authenticated",
		        r->st->pub.host, r->st->pub.port);
	}
	cert.data = (const unsigned char *)bv.bv_val;
	cert.len = bv.bv_len;
	memset(&in, 0, sizeof(in));
	in.chain = &cert;
	in.nchain = 1;
	in.tlsa = tlsa;
	in.ntlsa = ntlsa;
	in.dns = r->st->tlsa->verdict;
	in.dns_detail = r->st->tlsa->detail;
	in.names = names;
	in.nnames = 1;
	in.now = time(NULL);
	rv = tlspool_dane_match(&in, &r->st->dane, err, sizeof(err));
	ber_memfree(bv.bv_val);
	if (rv != 0)
		return tp_ldap_fail(r, STARTTLS_LDAP_NOT_AUTHENTICATED, errno,
		                    STARTTLS_ERR_RESOURCES, "DANE: %s", err);
	r->st->pub.dane = r->st->dane;
	if (r->st->dane->verdict != TLSPOOL_DANE_AUTHENTICATED)
		return tp_ldap_fail(
		        r, STARTTLS_LDAP_NOT_AUTHENTICATED, EKEYREJECTED,
		        STARTTLS_ERR_DIRECTORY_UNAUTHENTICATED,
		        "%s: %s: the directory is not authenticated",
		        r->st->tlsa->owner, r->st->dane->reason);
	return 0;
}

static int add_value(struct run *r, int pgp, const struct berval *v)
{
	struct step_store *st = r->st;
	starttls_ldap_value *grown, *d;
	unsigned char *bin = NULL;
	size_t blen = 0;
	int armored = 0;

	if (st->pub.nvalues == MAX_VALUES || v->bv_len > MAX_VALUE_LEN)
		return 0; /* more than anyone publishes: left out */
	grown = realloc(st->values, (st->pub.nvalues + 1) * sizeof(*grown));
	if (grown == NULL)
		return -1;
	st->values = grown;
	st->pub.values = grown;
	d = &grown[st->pub.nvalues];
	memset(d, 0, sizeof(*d));
	d->pgp = pgp;
	if (pgp && tp_ldap_pgp_binary((const unsigned char *)v->bv_val,
	                              v->bv_len, &bin, &blen, &armored) != 0)
		snprintf(d->reason, sizeof(d->reason),
		         "not an OpenPGP key, binary or armored");
	if (bin == NULL) {
		bin = malloc(v->bv_len ? v->bv_len : 1);
		if (bin == NULL)
			return -1;
		memcpy(bin, v->bv_val, v->bv_len);
		blen = v->bv_len;
	}
	d->armored = armored;
	d->data.data = bin;
	d->data.len = blen;
	st->pub.nvalues++;
	return 0;
}

/* The values of the one entry. */
static int read_entry(struct run *r, LDAP *ld, LDAPMessage *e)
{
	BerElement *ber = NULL;
	char *dn = ldap_get_dn(ld, e), *attr;
	int rv = 0;

	snprintf(r->st->pub.dn, sizeof(r->st->pub.dn), "%s", dn ? dn : "");
	ldap_memfree(dn);
	for (attr = ldap_first_attribute(ld, e, &ber); attr != NULL && rv == 0;
	     attr = ldap_next_attribute(ld, e, ber)) {
		int cert = strcasecmp(attr, "userCertificate;binary") == 0 ||
		           strcasecmp(attr, "userCertificate") == 0;
		int pgp = strncasecmp(attr, "pgpKey", 6) == 0 &&
		          (attr[6] == '\0' || attr[6] == ';');
		struct berval **vals;

		if (cert || pgp) {
			vals = ldap_get_values_len(ld, e, attr);
			for (size_t i = 0; vals != NULL && vals[i] != NULL; i++)
				if (add_value(r, pgp, vals[i]) != 0)
					rv = -1;
			ldap_value_free_len(vals);
		}
		ldap_memfree(attr);
	}
	ber_free(ber, 0);
	if (rv != 0)
		tp_fail(ENOMEM, "out of memory");
	return rv;
}

static int search(struct run *r, LDAP *ld)
{
	char *attrs[] = {"userCertificate;binary", "pgpKey", NULL};
	LDAPMessage *res = NULL, *e;
	struct timeval tv;
	int rc, n, rv = -1;

	set_timeout(ld, tp_ldap_left(r), &tv);
	rc = ldap_search_ext_s(ld, r->st->pub.base, LDAP_SCOPE_SUBTREE,
	                       r->st->pub.filter, attrs, 0, NULL, NULL, &tv, 2,
	                       &res);
	n = res != NULL ? ldap_count_entries(ld, res) : 0;
	if (rc == LDAP_SIZELIMIT_EXCEEDED || n > 1) {
		tp_ldap_fail(r, STARTTLS_LDAP_NO_ENTRY, EKEYREJECTED,
		             STARTTLS_ERR_NO_RECORDS,
		             "%s: more than one entry under \"%s\" for %s: "
		             "which one "
		             "is %s's is not clear",
		             r->st->pub.host, r->st->pub.base,
		             r->st->pub.filter, r->st->pub.identity);
		r->o->cacheable = 1;
	} else if (rc == LDAP_NO_SUCH_OBJECT ||
	           (rc == LDAP_SUCCESS && n == 0)) {
		tp_ldap_fail(r, STARTTLS_LDAP_NO_ENTRY, EKEYREJECTED,
		             STARTTLS_ERR_NO_RECORDS,
		             "%s: no entry under \"%s\" for %s",
		             r->st->pub.host, r->st->pub.base,
		             r->st->pub.filter);
		r->o->cacheable = 1;
	} else if (rc != LDAP_SUCCESS) {
		ldap_failed(r, ld, rc, "the search failed");
	} else {
		e = ldap_first_entry(ld, res);
		rv = e != NULL ? read_entry(r, ld, e)
		               : ldap_failed(r, ld, LDAP_DECODING_ERROR,
		                             "the search result");
	}
	ldap_msgfree(res);
	return rv;
}

/* StartTLS or ldaps on fd (consumed), the DANE check, the search. */
static int session(struct run *r, int fd, const tlspool_tlsa *tlsa,
                   size_t ntlsa)
{
	struct step_store *st = r->st;
	struct watchdog w;
	struct nopipe np;
	struct timeval tv;
	char url[300];
	LDAP *ld = NULL;
	int rc, rv = -1, e;

	snprintf(url, sizeof(url), "%s://%s:%u",
	         st->pub.ldaps ? "ldaps" : "ldap", st->pub.host, st->pub.port);
	if (ldap_init_fd(fd, LDAP_PROTO_TCP, url, &ld) != LDAP_SUCCESS) {
		close(fd);
		return tp_ldap_fail(r, STARTTLS_LDAP_UNREACHABLE, ENOMEM,
		                    STARTTLS_ERR_RESOURCES,
		                    "%s: libldap could not take the connection",
		                    url);
	}
	if (handle_options(ld) != 0) {
		ldap_unbind_ext_s(ld, NULL, NULL);
		return tp_ldap_fail(r, STARTTLS_LDAP_NOT_AUTHENTICATED,
		                    EKEYREJECTED,
		                    STARTTLS_ERR_DIRECTORY_UNAUTHENTICATED,
		                    "%s: libldap could not set up TLS", url);
	}
	tp_ldap_nopipe_begin(&np);
	if (tp_ldap_watch_start(&w, fd, r->deadline) != 0) {
		tp_ldap_fail(r, STARTTLS_LDAP_UNREACHABLE, ENOMEM,
		             STARTTLS_ERR_RESOURCES,
		             "no thread for the deadline");
		goto out;
	}
	set_timeout(ld, tp_ldap_left(r), &tv);
	rc = st->pub.ldaps ? ldap_install_tls(ld)
	                   : ldap_start_tls_s(ld, NULL, NULL);
	if (rc > 0) /* the server's result code: it refused StartTLS */
		tp_ldap_fail(
		        r, STARTTLS_LDAP_NOT_AUTHENTICATED, EKEYREJECTED,
		        STARTTLS_ERR_DIRECTORY_UNAUTHENTICATED,
		        "%s: StartTLS refused (%s): no unauthenticated LDAP",
		        url, ldap_err2string(rc));
	else if (rc != LDAP_SUCCESS)
		ldap_failed(r, ld, rc,
		            st->pub.ldaps ? "TLS handshake" : "StartTLS");
	else if (authenticate(r, ld, tlsa, ntlsa) == 0)
		rv = search(r, ld);
out:
	e = errno;
	tp_ldap_watch_stop(&w);
	ldap_unbind_ext_s(ld, NULL, NULL); /* closes fd */
	tp_ldap_nopipe_end(&np);
	errno = e;
	return rv;
}

/* One target: its TLSA RRset, a connection, the session. */
int tp_ldap_attempt(struct run *r, const tlspool_srv *t)
{
	struct step_store *st = r->st;
	tlspool_tlsa *tlsa = NULL;
	char owner[300];
	size_t i, n = 0;
	int fd, rv, e;

	tlspool_dns_answer_free(st->tlsa);
	tlspool_dane_result_free(st->dane);
	st->tlsa = NULL;
	st->dane = NULL;
	st->pub.tlsa = NULL;
	st->pub.dane = NULL;
	st->pub.address[0] = '\0';
	snprintf(st->pub.host, sizeof(st->pub.host), "%.*s",
	         (int)strlen(t->target) - 1, t->target);
	st->pub.port = t->port;
	st->pub.ldaps = r->lc->host[0] != '\0' && r->lc->ldaps;
	if (tlspool_tlsa_owner(owner, sizeof(owner), t->port, "tcp",
	                       st->pub.host) < 0)
		return tp_ldap_fail(r, STARTTLS_LDAP_NOT_AUTHENTICATED,
		                    EKEYREJECTED,
		                    STARTTLS_ERR_DIRECTORY_UNAUTHENTICATED,
		                    "%s: no TLSA owner name", st->pub.host);
	if (tp_ldap_dns_lookup(r, owner, TLSPOOL_RR_TLSA, &st->tlsa) != 0)
		return -1;
	st->pub.tlsa = st->tlsa;
	if (tlspool_dns_verdict_is_error(st->tlsa->verdict))
		return tp_ldap_dns_failed(
		        r, st->tlsa, "the directory cannot be authenticated");
	if (st->tlsa->verdict != TLSPOOL_DNS_SECURE || st->tlsa->nrr == 0)
		return tp_ldap_fail(
		        r, STARTTLS_LDAP_NOT_AUTHENTICATED, EKEYREJECTED,
		        STARTTLS_ERR_DIRECTORY_UNAUTHENTICATED,
		        "%s: %s: the directory cannot be authenticated "
		        "(no unauthenticated LDAP)",
		        st->tlsa->owner,
		        tlspool_dns_verdict_text(st->tlsa->verdict));
	tp_ldap_shorten(r, st->tlsa);
	tlsa = calloc(st->tlsa->nrr, sizeof(*tlsa));
	if (tlsa == NULL)
		return tp_fail(ENOMEM, "out of memory");
	for (i = 0; i < st->tlsa->nrr; i++)
		if (tlspool_tlsa_parse(st->tlsa->rr[i].rdata,
		                       st->tlsa->rr[i].rdlen, &tlsa[n]) == 0)
			n++;
	fd = tp_ldap_connect_any(r, st->pub.host, t->port);
	rv = fd < 0 ? -1 : session(r, fd, tlsa, n);
	e = errno;
	free(tlsa);
	errno = e;
	return rv;
}
