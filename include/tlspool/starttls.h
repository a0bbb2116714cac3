/*
 * tlspool/starttls.h -- turn a connected descriptor into an authenticated
 * TLS (or DTLS) channel whose peer is proven by DNSSEC-signed records.
 *
 * See starttls_client(3).  Both calls consume fd: on success the returned
 * descriptor carries plaintext and fd is closed in the caller's process;
 * on failure the connection is shut down, fd is closed, -1 is returned
 * with errno set and starttls_errstr() says what went wrong.
 */
#ifndef TLSPOOL_STARTTLS_H
#define TLSPOOL_STARTTLS_H

#include <stddef.h>

#include <tlspool/validate.h>

#ifdef __cplusplus
extern "C" {
#endif

#define STARTTLS_PEERCERT_OPTIONAL 0x01 /* server: request, accept none */
#define STARTTLS_PEERCERT_NONE     0x02 /* server: do not request */
#define STARTTLS_LOCALCERT_NONE    0x04 /* client: offer no certificate */
#define STARTTLS_NO_REMOTE_USER    0x08 /* refuse user@domain peers */
#define STARTTLS_NO_REMOTE_DOMAIN  0x10 /* refuse domain peers */
#define STARTTLS_NO_CACHE_READ     0x20 /* validate online */
#define STARTTLS_NO_CACHE_WRITE    0x40 /* do not store the result */
#define STARTTLS_NO_AUTHZ          0x80 /* skip authorization */

int starttls_client(int fd, int proto, char *myname, int flags, char *sniname,
                    char *peername, size_t peername_len);
int starttls_server(int fd, int proto, char *myname, int flags,
                    int checksni(char *), char *peername, size_t peername_len);

/*
 * The context API: a configuration the application owns and passes in,
 * instead of the process default ($TLSPOOL_CONFIG or the installed file)
 * that starttls_client() and starttls_server() use.  A context is read
 * once (it never changes afterwards) and may be used by many threads at
 * once; free it after the last call that uses it has returned (relayed
 * connections keep what they need).  See starttls_ctx_new(3).
 */
typedef struct starttls_ctx starttls_ctx;

/* path NULL: the process default.  NULL with errno and starttls_errstr()
 * naming the file, line and key on failure. */
starttls_ctx *starttls_ctx_new(const char *path);
void starttls_ctx_free(starttls_ctx *ctx); /* NULL accepted */

/* The SNI filter of the context API: sni as sent ("" for none), arg as
 * given; nonzero accepts. */
typedef int starttls_sni_fn(const char *sni, void *arg);

int starttls_ctx_client(starttls_ctx *ctx, int fd, int proto,
                        const char *myname, int flags, const char *sniname,
                        char *peername, size_t peername_len);
int starttls_ctx_server(starttls_ctx *ctx, int fd, int proto,
                        const char *myname, int flags,
                        starttls_sni_fn *checksni, void *arg, char *peername,
                        size_t peername_len);

/*
 * A server found through the DNS (MX, RFC 7672; SRV, RFC 7673) is
 * authenticated by the TLSA records of its TLSA base domain, which need
 * not be the name sent as SNI, with more reference identifiers than one
 * name.  See starttls_ctx_client(3), "Destinations".
 */
typedef struct starttls_dane_ref {
	const char *base; /* the TLSA base domain: TLSA at _PORT._tcp.BASE */
	unsigned port;    /* PORT of that owner name; 0: the peer's port */
	const char *const *names; /* reference identifiers that DANE-TA(2)
	                             name checks accept; nnames 0: base */
	size_t nnames;
	const char *peer; /* the identity peername reports; NULL: base */
	int smtp;         /* RFC 7672 section 3.1.3: PKIX-TA(0), PKIX-EE(1)
	                     unusable */
} starttls_dane_ref;

/* starttls_ctx_client() with ref deciding the TLSA owner name, the
 * reference identifiers and the reported peer.  Not through tlspoold in
 * this version (EPROTONOSUPPORT with TLSPOOL_SOCKET or [pool] socket). */
int starttls_ctx_client_dane(starttls_ctx *ctx, int fd, int proto,
                             const char *myname, int flags, const char *sniname,
                             const starttls_dane_ref *ref, char *peername,
                             size_t peername_len);

/* The calling thread's detail of its last failure ("" if none). */
const char *starttls_errstr(void);

/*
 * The LDAP step (tlspool.conf(5) [ldap], [validation] sources): the
 * peer's certificate or OpenPGP key confirmed by the directory of its
 * domain, found by a DNSSEC-secure SRV lookup of _ldap._tcp.DOMAIN (or
 * [ldap] server) and itself authenticated by DANE (TLSA at
 * _PORT._tcp.HOST) over StartTLS or ldaps.  See starttls_client(3),
 * "LDAP".
 */
typedef enum starttls_ldap_verdict {
	STARTTLS_LDAP_UNCHECKED = 0,
	STARTTLS_LDAP_MATCHED,   /* the entry holds what the peer presented */
	STARTTLS_LDAP_DIFFERENT, /* it holds other certificates or keys */
	STARTTLS_LDAP_NO_ENTRY,  /* no entry (or several, or one without
	                            userCertificate;binary and pgpKey) */
	STARTTLS_LDAP_NO_DIRECTORY, /* secure DNS: the domain has no
	                               _ldap._tcp SRV (or its target is ".") */
	STARTTLS_LDAP_UNREACHABLE,  /* no connection, an LDAP error, time up */
	STARTTLS_LDAP_NOT_AUTHENTICATED, /* the SRV or TLSA not secure, no
	                                    TLSA matched the directory's
	                                    certificate, no StartTLS */
	STARTTLS_LDAP_READ, /* starttls_ldap_lookup(): the entry was read,
	                       nothing was compared */
} starttls_ldap_verdict;

/* One userCertificate;binary or pgpKey value of the entry. */
typedef struct starttls_ldap_value {
	int pgp;           /* 0: userCertificate;binary (DER), 1: pgpKey */
	int armored;       /* pgpKey: it was in ASCII armor (RFC 9580
	                      section 6), data holds the binary key */
	tlspool_span data; /* DER certificate or binary OpenPGP key */
	int matched;       /* the peer presented it */
	char reason[240];  /* why it did or did not match; "" unchecked */
} starttls_ldap_value;

typedef struct starttls_ldap_step {
	starttls_ldap_verdict verdict;
	int from_cache;     /* the validation cache answered: nothing else
	                       below was looked up */
	char identity[320]; /* user@domain or domain */
	const tlspool_dns_answer *srv; /* _ldap._tcp.DOMAIN SRV, NULL with
	                                  [ldap] server or from the cache */
	char host[256]; /* the directory: the SRV target or server */
	unsigned port;
	int ldaps;        /* 1 ldaps, 0 StartTLS */
	char address[64]; /* where it was reached, "" not reached */
	const tlspool_dns_answer *tlsa;  /* _PORT._tcp.HOST TLSA, or NULL */
	const tlspool_dane_result *dane; /* its certificate against it */
	char base[256];
	char filter[600]; /* as sent, values escaped (RFC 4515) */
	char dn[512];     /* the entry, "" none */
	size_t nvalues;
	const starttls_ldap_value *values;
	const tlspool_openpgp_result *openpgp; /* pgpKey against the peer */
	char reason[400];                      /* the outcome in words */
} starttls_ldap_step;

/* A short stable name ("matched", "different", "no-entry", ...). */
const char *starttls_ldap_verdict_name(starttls_ldap_verdict v);

/*
 * What the directory of identity (user@domain or domain) holds, found
 * and authenticated as the LDAP step does, under ctx's configuration
 * (NULL: the process default), within [ldap] timeout_ms (tlspool-connect
 * --lookup
 * --ldap).  Returns the step (verdict STARTTLS_LDAP_READ when the entry
 * was read, else why not; the detail of starttls_errstr() and its class
 * too), or NULL with errno EINVAL (not an identity), ENOMEM, or that of a
 * configuration that does not load.  Free it with
 * starttls_ldap_step_free().
 */
starttls_ldap_step *starttls_ldap_lookup(starttls_ctx *ctx,
                                         const char *identity);
void starttls_ldap_step_free(starttls_ldap_step *step); /* NULL accepted */

/*
 * What the calling thread's last starttls_client() or starttls_server()
 * learnt about its peer, for diagnosis (tlspool-connect --diagnose):
 * the peer's certificates as sent, the TLSA owner name asked for, the
 * DNS answer and the DANE matcher's result with one step per record.
 * Members are NULL (nchain 0) where the call did not get that far.  When
 * the peer was authenticated from the validation cache, from_cache is 1,
 * owner names the record the cached result came from, and dns and dane
 * are NULL (no lookup was made).  Valid until the same thread's next
 * call; never NULL.
 */
typedef struct starttls_trace {
	size_t nchain;
	const tlspool_span *chain;       /* DER, [0] the peer's own */
	const char *owner;               /* TLSA owner name, or NULL */
	const tlspool_dns_answer *dns;   /* the lookup, or NULL */
	const tlspool_dane_result *dane; /* the matcher, or NULL */
	int from_cache;                  /* 1: the cache answered */
	/* For a user peer: the OPENPGPKEY matcher's result, or NULL (owner,
	 * dns and dane then describe the lookup that decided: OPENPGPKEY,
	 * or SMIMEA with the DANE matcher's result). */
	const tlspool_openpgp_result *openpgp;
	/* The LDAP step, when [validation] sources named ldap and the
	 * sources before it did not authenticate the peer; else NULL. */
	const starttls_ldap_step *ldap;
} starttls_trace;

const starttls_trace *starttls_last_trace(void);

/*
 * The class of the calling thread's last failure, beside the text of
 * starttls_errstr(): programs branch on the class, never on the text.
 * STARTTLS_OK after a success.  tlspool-connect's exit codes come from it.
 */
typedef enum starttls_class {
	STARTTLS_OK = 0,
	STARTTLS_ERR_ARGUMENT,      /* EINVAL: flags, names, descriptor */
	STARTTLS_ERR_UNSUPPORTED,   /* EPROTONOSUPPORT */
	STARTTLS_ERR_CONFIG,        /* tlspool.conf or a file it names */
	STARTTLS_ERR_NO_CREDENTIAL, /* ENOKEY: no identity for the name */
	STARTTLS_ERR_ACCESS,        /* EACCES: the ACL, an untrusted file */
	STARTTLS_ERR_NAME_TOO_LONG, /* ENAMETOOLONG */
	STARTTLS_ERR_CONNECTION,    /* ECONNRESET: peer closed or reset */
	STARTTLS_ERR_TIMEOUT,       /* ETIMEDOUT: the call's deadline */
	STARTTLS_ERR_TLS,           /* EPROTO: alert, no common parameters */
	STARTTLS_ERR_PEER_REJECTED, /* the peer's alert refused our side */
	STARTTLS_ERR_DNS_BOGUS,     /* EKEYREJECTED: DNSSEC bogus */
	STARTTLS_ERR_DNS_FAILURE,   /* EKEYREJECTED: servfail, indeterminate */
	STARTTLS_ERR_DNS_TIMEOUT,   /* ETIMEDOUT: no DNS answer in time */
	STARTTLS_ERR_INSECURE,      /* EKEYREJECTED: zone not signed */
	STARTTLS_ERR_NO_RECORDS,    /* EKEYREJECTED: secure "no records" */
	STARTTLS_ERR_NO_MATCH,      /* EKEYREJECTED: no record matched */
	STARTTLS_ERR_NO_PEER_CERT,  /* EKEYREJECTED: no certificate */
	STARTTLS_ERR_NO_IDENTITY,   /* EKEYREJECTED: no identity to check */
	STARTTLS_ERR_REFUSED,       /* EPERM: authorization, NO_REMOTE_*,
	                               checksni */
	STARTTLS_ERR_RESOURCES,     /* ENOMEM, EMFILE */
	STARTTLS_ERR_INTERNAL,
	STARTTLS_ERR_DIRECTORY_UNREACHABLE,     /* EKEYREJECTED: the peer's
	                                           LDAP directory did not answer */
	STARTTLS_ERR_DIRECTORY_UNAUTHENTICATED, /* EKEYREJECTED: it could not
	                                           be authenticated by DANE */
	STARTTLS_ERR_PRELUDE, /* EPROTO: the plaintext dialogue before TLS
	                         (starttls_prelude_client(3)) failed: no
	                         STARTTLS offered, an error reply, a line
	                         too long, data pipelined after it */
} starttls_class;

starttls_class starttls_errclass(void);
/* A short stable name ("dns-bogus", "no-match", ...), for JSON output. */
const char *starttls_class_name(starttls_class cls);

/*
 * How the connection behind a descriptor returned by starttls_client()
 * or starttls_server() ended, asked with that descriptor while it is
 * still open (typically after read() returned 0 or failed).  Only the
 * peer's close_notify gives read() a 0 (EOF); any other end makes read()
 * fail with ECONNRESET after the bytes that arrived, and this call says
 * why.  Returns 0, or -1 with errno EBADF (not open) or ENOENT (not a
 * descriptor of a relayed connection, or one that ended so long ago that
 * it was forgotten: the last 1024 ends are kept).
 */
typedef enum starttls_end_kind {
	STARTTLS_END_OPEN = 0,     /* still relaying */
	STARTTLS_END_CLOSE_NOTIFY, /* the peer closed cleanly */
	STARTTLS_END_TRUNCATED,    /* FIN or RST without close_notify */
	STARTTLS_END_ALERT,        /* the peer sent a fatal alert */
	STARTTLS_END_IDLE,         /* DTLS: the idle timeout */
	STARTTLS_END_ERROR         /* a bad record, a local error */
} starttls_end_kind;

typedef struct starttls_end_info {
	starttls_end_kind kind;
	int alert;                    /* STARTTLS_END_ALERT: its number */
	unsigned long long bytes_in;  /* plaintext from the peer */
	unsigned long long bytes_out; /* plaintext to the peer */
	char detail[160];             /* in words */
} starttls_end_info;

int starttls_end(int fd, starttls_end_info *info);

#ifdef __cplusplus
}
#endif
#endif
