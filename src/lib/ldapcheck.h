/*
 * The LDAP step of the authentication policy: a peer's certificate or
 * OpenPGP key confirmed by the directory of its domain.  The directory is
 * found by a DNSSEC-secure SRV lookup of _ldap._tcp.DOMAIN (RFC 2782) or
 * named by [ldap] server, reached over StartTLS (RFC 4511 section 4.14)
 * or ldaps, and authenticated by DANE against TLSA at _PORT._tcp.HOST
 * (RFC 6698) through this library's own matcher; then the entry of the
 * identity is read and its userCertificate;binary and pgpKey values are
 * compared with what the peer presented.  docs/architecture.md,
 * "Authenticating a peer".
 *
 * Everything that fails fails closed.  The whole step, DNS included, ends
 * by the call's deadline or [ldap] timeout_ms, whichever comes first.
 * The LDAP client is libldap (OpenLDAP).
 */
#ifndef TLSPOOL_LDAPCHECK_H
#define TLSPOOL_LDAPCHECK_H

#include <stddef.h>
#include <time.h>

#include "tlspool/starttls.h"

struct tp_runtime;
struct tp_config;

struct tp_ldap_query {
	struct tp_runtime *rt;
	const char *identity;      /* user@domain or domain */
	const tlspool_span *chain; /* the peer's; NULL: read the entry only */
	size_t nchain;
	long long deadline; /* tp_mono_ms() of the call's end; 0 none */
};

/* What the validation cache may keep of a result. */
struct tp_ldap_outcome {
	int cacheable; /* the SRV was secure (or configured) and the
	                  directory authenticated: its answer is proven */
	time_t expiry; /* TTLs and RRSIG expirations of the SRV and TLSA
	                  RRsets, the matched certificate's notAfter */
};

/*
 * Run the LDAP step for q.  0 when the entry holds what the peer
 * presented (with chain NULL: when the entry was read), else -1 with
 * errno (EKEYREJECTED, ETIMEDOUT, EINVAL, ENOMEM), a detail and a class.
 * *step receives the step for the trace in every case but ENOMEM (the
 * caller owns it: starttls_ldap_step_free()); *o says what may be cached.
 */
int tp_ldap_check(const struct tp_ldap_query *q, starttls_ldap_step **step,
                  struct tp_ldap_outcome *o);

/* A step that says the cache answered for identity (verdict v). */
starttls_ldap_step *tp_ldap_step_cached(const char *identity,
                                        starttls_ldap_verdict v,
                                        const char *reason);

/*
 * The validation cache's record owner of the step for identity under
 * cfg: "_ldap._tcp.DOMAIN./BASE?FILTER" or "ldaps://HOST:PORT/BASE?FILTER"
 * (so that another directory, base or filter is another entry).  The
 * length, or -1 with errno EINVAL or ENAMETOOLONG.
 */
int tp_ldap_cache_owner(const struct tp_config *cfg, const char *identity,
                        char *buf, size_t len);

/* --- the pure parts, for tlspool.conf and the tests ------------------- */

/* An RFC 4514 distinguished name libldap accepts: 0 or -1. */
int tp_ldap_valid_dn(const char *dn);

/* value escaped for an RFC 4515 filter (section 3: *, (, ), \, NUL, and
 * here every control character).  The length, or -1 (ENAMETOOLONG). */
int tp_ldap_escape(char *dst, size_t len, const char *value);

/* The filter template tmpl with %s (the identity), %u (its local part),
 * %d (its domain) escaped, %% a percent sign.  Length or -1. */
int tp_ldap_filter(char *dst, size_t len, const char *tmpl,
                   const char *identity);

/* dc=LABEL,... of a domain (RFC 2247).  Length or -1. */
int tp_ldap_base(char *dst, size_t len, const char *domain);

/*
 * A pgpKey value as a binary OpenPGP key: binary as it is (a packet tag
 * with bit 7 set), ASCII armor (RFC 9580 section 6: BEGIN line, headers,
 * an empty line, base64, an optional =CRC line, END line) decoded.
 * 0 with *out malloc()ed and *armored, or -1 with errno EBADMSG.
 */
int tp_ldap_pgp_binary(const unsigned char *in, size_t len, unsigned char **out,
                       size_t *outlen, int *armored);

#endif
