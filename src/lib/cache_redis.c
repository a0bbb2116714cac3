/*
 * The redis backend of the validation cache (cache_redis.h).
 *
 * Outline:
 *   1. Protocol: hiredis formats the commands and parses the replies
 *      (redisFormatCommandArgv, redisReader); the transport is ours, so
 *      that every operation, from connect() through the TLS handshake and
 *      AUTH to the last octet of the reply, ends at one deadline
 *      ([cache] redis_timeout_ms), and so that TLS (GnuTLS) is available
 *      with Debian's hiredis 0.14, which has no TLS of its own.
 *   2. Connections: a pool of TP_REDIS_POOL per cache, each under its own
 *      mutex, made on first use and kept; a thread takes a free one or
 *      waits for one until its deadline.  No threads of our own.
 *   3. Failure: a connection that fails or times out is closed and Redis
 *      is "down" for a backoff (TP_REDIS_BACKOFF_MIN doubling up to
 *      TP_REDIS_BACKOFF_MAX ms): calls in that time do not touch the
 *      network and say so in their note; the first call after it tries a
 *      new connection within its own deadline, and a success ends the
 *      backoff.  An error reply (full, no permission) is a note for that
 *      call only.  Every failure means a miss: validation goes online.
 *   4. Signatures: the value stored is the record (cache.h) behind a key
 *      id and an HMAC-SHA256 tag over the database key and the record,
 *      with the site key of [cache] key_file, read like a private key
 *      (docs/architecture.md, "Files we trust").  A value that is not
 *      ours, signed with another key, or altered is never used.  The
 *      Redis key expires with the entry (SET ... EXAT).
 *   5. fork(): the child drops the parent's connections (an atfork
 *      handler over every live cache) and makes its own.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cache_redis.h"
#include "filetrust.h"

#define TP_REDIS_POOL        4
#define TP_REDIS_BACKOFF_MIN 250  /* ms */
#define TP_REDIS_BACKOFF_MAX 4000 /* ms */
#define TP_REDIS_SETUP_RETRY 5000 /* ms between reading key files again */
#define TP_REDIS_ADMIN_MS    2000 /* at least, per --cache-list command */
#define TP_REDIS_SCAN_COUNT  "256"
#define TP_REDIS_REPLY_MAX   (4u << 20) /* octets: no entry is near it */

struct rconn {
	pthread_mutex_t lock;
	int fd; /* -1: none */
	gnutls_session_t tls;
	redisReader *rd;
};

struct tp_redis {
	struct tp_redis *next; /* the registry of live caches (fork) */
	struct tp_redis_conf conf;
	struct sockaddr_storage sa;
	socklen_t salen;
	char host[INET6_ADDRSTRLEN]; /* "" for unix: */
	char desc[PATH_MAX + 200];
	char pattern[3 * sizeof(((struct tp_redis_conf *)0)->prefix) + 64 * 8];

	pthread_mutex_t state; /* guards what follows, not the slots */
	int ready;             /* the secrets below are loaded: fixed */
	long long setup_at;
	char setup_why[400];
	unsigned char *key, keyid[8];
	size_t keylen;
	unsigned char *password;
	size_t passlen;
	gnutls_certificate_credentials_t xcred;
	long long retry_at; /* down until then (tp mono ms) */
	unsigned backoff;
	char down_why[300];

	struct rconn slot[TP_REDIS_POOL];
};

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- the registry, for fork() ---------------------------------------------
 */

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tp_redis *registry;
static pthread_once_t reg_once = PTHREAD_ONCE_INIT;

static void conn_close(struct rconn *s)
{
	if (s->tls != NULL)
		gnutls_deinit(s->tls); /* no close_notify: it may hang */
	s->tls = NULL;
	if (s->rd != NULL)
		redisReaderFree(s->rd);
	s->rd = NULL;
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

static void reg_prepare(void)
{
	pthread_mutex_lock(&reg_lock);
}

static void reg_parent(void)
{
	pthread_mutex_unlock(&reg_lock);
}

/* The child: the parent's connections are the parent's (a TLS session
 * and a reply stream cannot be shared); locks another thread held are
 * made anew. */
static void reg_child(void)
{
	for (struct tp_redis *r = registry; r != NULL; r = r->next) {
		pthread_mutex_init(&r->state, NULL);
		for (int i = 0; i < TP_REDIS_POOL; i++) {
			pthread_mutex_init(&r->slot[i].lock, NULL);
			conn_close(&r->slot[i]);
		}
	}
	pthread_mutex_init(&reg_lock, NULL);
}

static void reg_init(void)
{
	pthread_atfork(reg_prepare, reg_parent, reg_child);
}

/* --- addresses -------------------------------------------------------------
 */

int tp_redis_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_storage tmp;
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon, *h = s;
	unsigned long port;
	char *end;
	size_t hl;

	if (ss == NULL)
		ss = &tmp;
	memset(ss, 0, sizeof(*ss));
	if (strncmp(s, "unix:", 5) == 0) {
		struct sockaddr_un *un = (struct sockaddr_un *)ss;

		if (s[5] == '\0' || strlen(s + 5) >= sizeof(un->sun_path))
			goto bad;
		un->sun_family = AF_UNIX;
		strcpy(un->sun_path, s + 5);
		if (len != NULL)
			*len = sizeof(*un);
		return 0;
	}
	colon = strrchr(s, ':');
	if (colon == NULL || colon[1] < '0' || colon[1] > '9')
		goto bad;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || *end || port == 0 || port > 65535)
		goto bad;
	hl = (size_t)(colon - s);
	if (hl >= 2 && s[0] == '[' && s[hl - 1] == ']') {
		h = s + 1;
		hl -= 2;
	}
	if (hl == 0 || hl >= sizeof(host))
		goto bad;
	memcpy(host, h, hl);
	host[hl] = '\0';
	if (h == s && inet_pton(AF_INET, host,
	                        &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		((struct sockaddr_in *)ss)->sin_family = AF_INET;
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
		if (len != NULL)
			*len = sizeof(struct sockaddr_in);
		return 0;
	}
	if (h != s && inet_pton(AF_INET6, host,
	                        &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
		if (len != NULL)
			*len = sizeof(struct sockaddr_in6);
		return 0;
	}
bad:
	errno = EINVAL;
	return -1;
}

/* --- the secrets ------------------------------------------------------------
 */

/* A secret file's content without trailing white space; 0 or -1 (why). */
static int read_secret(const char *path, unsigned char **out, size_t *outlen,
                       char *why, size_t whylen)
{
	unsigned char *data;
	size_t len;
	char err[300];

	if (tlspool_file_read(path, TLSPOOL_FILE_SECRET, &data, &len, err,
	                      sizeof(err)) != 0) {
		snprintf(why, whylen, "%s", err);
		return -1;
	}
	while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r' ||
	                   data[len - 1] == ' ' || data[len - 1] == '\t'))
		data[--len] = '\0';
	*out = data;
	*outlen = len;
	return 0;
}

static int load_tls(struct tp_redis *r, char *why, size_t whylen)
{
	const struct tp_redis_conf *c = &r->conf;
	unsigned char *ca = NULL, *crt = NULL, *key = NULL;
	size_t calen = 0, crtlen = 0, keylen = 0;
	char err[300];
	int rc = -1, n;

	if (gnutls_certificate_allocate_credentials(&r->xcred) < 0) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	if (tlspool_file_read(c->tls_ca, TLSPOOL_FILE_PUBLIC, &ca, &calen, err,
	                      sizeof(err)) != 0) {
		snprintf(why, whylen, "redis_tls_ca %s", err);
		goto out;
	}
	n = gnutls_certificate_set_x509_trust_mem(
	        r->xcred, &(gnutls_datum_t){ca, (unsigned)calen},
	        GNUTLS_X509_FMT_PEM);
	if (n <= 0) {
		snprintf(why, whylen, "redis_tls_ca %.200s: no certificate",
		         c->tls_ca);
		goto out;
	}
	if (c->tls_certificate[0] != '\0') {
		if (tlspool_file_read(c->tls_certificate, TLSPOOL_FILE_PUBLIC,
		                      &crt, &crtlen, err, sizeof(err)) != 0 ||
		    tlspool_file_read(c->tls_key, TLSPOOL_FILE_SECRET, &key,
		                      &keylen, err, sizeof(err)) != 0) {
			snprintf(why, whylen, "redis_tls %s", err);
			goto out;
		}
		n = gnutls_certificate_set_x509_key_mem(
		        r->xcred, &(gnutls_datum_t){crt, (unsigned)crtlen},
		        &(gnutls_datum_t){key, (unsigned)keylen},
		        GNUTLS_X509_FMT_PEM);
		if (n < 0) {
			snprintf(why, whylen,
			         "redis_tls_certificate %.200s: %s",
			         c->tls_certificate, gnutls_strerror(n));
			goto out;
		}
	}
	rc = 0;
out:
	tlspool_file_free(ca, calen);
	tlspool_file_free(crt, crtlen);
	tlspool_file_free(key, keylen);
	if (rc != 0) {
		gnutls_certificate_free_credentials(r->xcred);
		r->xcred = NULL;
	}
	return rc;
}

static void drop_secrets(struct tp_redis *r)
{
	tlspool_file_free(r->key, r->keylen);
	tlspool_file_free(r->password, r->passlen);
	r->key = r->password = NULL;
	r->keylen = r->passlen = 0;
	if (r->xcred != NULL)
		gnutls_certificate_free_credentials(r->xcred);
	r->xcred = NULL;
}

/* Read the site key, the password and the TLS files.  Locked. */
static void setup(struct tp_redis *r)
{
	static const char id[] = "tlspool cache key id";
	unsigned char mac[32];

	drop_secrets(r);
	if (read_secret(r->conf.key_file, &r->key, &r->keylen, r->setup_why,
	                sizeof(r->setup_why)) != 0)
		goto fail;
	if (r->keylen < TP_REDIS_KEYMIN) {
		snprintf(r->setup_why, sizeof(r->setup_why),
		         "key_file %.200s: a site key has at least %d octets",
		         r->conf.key_file, TP_REDIS_KEYMIN);
		goto fail;
	}
	if (gnutls_hmac_fast(GNUTLS_MAC_SHA256, r->key, r->keylen, id,
	                     sizeof(id) - 1, mac) != 0) {
		snprintf(r->setup_why, sizeof(r->setup_why),
		         "HMAC-SHA256 failed");
		goto fail;
	}
	memcpy(r->keyid, mac, 8);
	if (r->conf.password_file[0] != '\0' &&
	    read_secret(r->conf.password_file, &r->password, &r->passlen,
	                r->setup_why, sizeof(r->setup_why)) != 0)
		goto fail;
	if (r->conf.tls && load_tls(r, r->setup_why, sizeof(r->setup_why)) != 0)
		goto fail;
	r->ready = 1;
	return;
fail:
	drop_secrets(r);
}

/* --- construction ------------------------------------------------------------
 */

struct tp_redis *tp_redis_new(const struct tp_redis_conf *rc)
{
	struct tp_redis *r = calloc(1, sizeof(*r));
	size_t n = 0;

	if (r == NULL)
		return NULL;
	r->conf = *rc;
	if (tp_redis_addr(rc->addr, &r->sa, &r->salen) != 0)
		r->salen = 0; /* config.c checked it; every call says so */
	if (strncmp(rc->addr, "unix:", 5) != 0) {
		const char *colon = strrchr(rc->addr, ':');
		const char *h = rc->addr[0] == '[' ? rc->addr + 1 : rc->addr;
		size_t hl = colon != NULL ? (size_t)(colon - h) : 0;

		if (hl > 0 && h != rc->addr)
			hl--; /* the ']' */
		if (hl < sizeof(r->host))
			snprintf(r->host, sizeof(r->host), "%.*s", (int)hl, h);
	}
	snprintf(r->desc, sizeof(r->desc), "redis %s, prefix %s%s", rc->addr,
	         rc->prefix, rc->tls ? ", TLS" : "");
	/* SCAN MATCH: the prefix with glob characters escaped, then 64
	 * lowercase hex digits. */
	for (const char *p = rc->prefix; *p; p++) {
		if (strchr("*?[]\\", *p) != NULL)
			r->pattern[n++] = '\\';
		r->pattern[n++] = *p;
	}
	for (int i = 0; i < 64; i++) {
		memcpy(r->pattern + n, "[0-9a-f]", 8);
		n += 8;
	}
	r->pattern[n] = '\0';
	pthread_mutex_init(&r->state, NULL);
	for (int i = 0; i < TP_REDIS_POOL; i++) {
		pthread_mutex_init(&r->slot[i].lock, NULL);
		r->slot[i].fd = -1;
	}
	pthread_mutex_lock(&r->state);
	r->setup_at = mono_ms();
	setup(r);
	pthread_mutex_unlock(&r->state);
	pthread_once(&reg_once, reg_init);
	pthread_mutex_lock(&reg_lock);
	r->next = registry;
	registry = r;
	pthread_mutex_unlock(&reg_lock);
	return r;
}

void tp_redis_free(struct tp_redis *r)
{
	if (r == NULL)
		return;
	pthread_mutex_lock(&reg_lock);
	for (struct tp_redis **pp = &registry; *pp != NULL; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	pthread_mutex_unlock(&reg_lock);
	for (int i = 0; i < TP_REDIS_POOL; i++) {
		conn_close(&r->slot[i]);
		pthread_mutex_destroy(&r->slot[i].lock);
	}
	drop_secrets(r);
	pthread_mutex_destroy(&r->state);
	free(r);
}

const char *tp_redis_describe(const struct tp_redis *r)
{
	return r->desc;
}

/* --- the transport -------------------------------------------------------- */

/* Wait for events on fd until deadline; 0, or -1 with why. */
static int wait_fd(int fd, short events, long long deadline, unsigned budget,
                   char *why, size_t whylen)
{
	struct pollfd p = {fd, events, 0};
	long long left;
	int n;

	for (;;) {
		left = deadline - mono_ms();
		if (left <= 0) {
			snprintf(why, whylen, "no answer within %u ms", budget);
			return -1;
		}
		n = poll(&p, 1, (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR) {
			snprintf(why, whylen, "poll: %s", strerror(errno));
			return -1;
		}
	}
}

static int tls_dir(struct rconn *s)
{
	return gnutls_record_get_direction(s->tls) ? POLLOUT : POLLIN;
}

/* Send all of p; -1 with why (*stale when the peer had closed). */
static int conn_write(struct rconn *s, const char *p, size_t n,
                      long long deadline, unsigned budget, char *why,
                      size_t whylen, int *stale)
{
	size_t off = 0;

	while (off < n) {
		if (s->tls != NULL) {
			ssize_t k =
			        gnutls_record_send(s->tls, p + off, n - off);

			if (k > 0) {
				off += (size_t)k;
				continue;
			}
			if (k != GNUTLS_E_AGAIN && k != GNUTLS_E_INTERRUPTED) {
				*stale = k == GNUTLS_E_PUSH_ERROR;
				snprintf(why, whylen, "TLS: %s",
				         gnutls_strerror((int)k));
				return -1;
			}
			if (wait_fd(s->fd, (short)tls_dir(s), deadline, budget,
			            why, whylen) != 0)
				return -1;
			continue;
		}
		ssize_t k = send(s->fd, p + off, n - off,
		                 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (k > 0) {
			off += (size_t)k;
			continue;
		}
		if (k < 0 && errno != EAGAIN && errno != EINTR) {
			*stale = errno == EPIPE || errno == ECONNRESET;
			snprintf(why, whylen, "send: %s", strerror(errno));
			return -1;
		}
		if (wait_fd(s->fd, POLLOUT, deadline, budget, why, whylen) != 0)
			return -1;
	}
	return 0;
}

/* Read one reply; -1 with why (*stale when the peer had closed). */
static int conn_read(struct rconn *s, long long deadline, unsigned budget,
                     redisReply **out, char *why, size_t whylen, int *stale)
{
	char buf[16384];
	size_t got = 0;
	int first = 1;

	for (;;) {
		void *rep = NULL;
		ssize_t k;

		if (redisReaderGetReply(s->rd, &rep) != REDIS_OK) {
			snprintf(why, whylen, "protocol error: %s",
			         s->rd->errstr);
			return -1;
		}
		if (rep != NULL) {
			*out = rep;
			return 0;
		}
		/* a reply is never there the moment the command is sent:
		 * wait first, saving a read that would say EAGAIN */
		if (first &&
		    (s->tls == NULL ||
		     gnutls_record_check_pending(s->tls) == 0) &&
		    wait_fd(s->fd, POLLIN, deadline, budget, why, whylen) != 0)
			return -1;
		first = 0;
		if (s->tls != NULL) {
			k = gnutls_record_recv(s->tls, buf, sizeof(buf));
			if (k == GNUTLS_E_AGAIN || k == GNUTLS_E_INTERRUPTED) {
				if (wait_fd(s->fd, POLLIN, deadline, budget,
				            why, whylen) != 0)
					return -1;
				continue;
			}
			if (k < 0 && k != GNUTLS_E_PREMATURE_TERMINATION) {
				*stale = got == 0 && k == GNUTLS_E_PULL_ERROR;
				snprintf(why, whylen, "TLS: %s",
				         gnutls_strerror((int)k));
				return -1;
			}
			if (k < 0)
				k = 0;
		} else {
			k = recv(s->fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (k < 0 && (errno == EAGAIN || errno == EINTR)) {
				if (wait_fd(s->fd, POLLIN, deadline, budget,
				            why, whylen) != 0)
					return -1;
				continue;
			}
			if (k < 0) {
				*stale = got == 0 && errno == ECONNRESET;
				snprintf(why, whylen, "recv: %s",
				         strerror(errno));
				return -1;
			}
		}
		if (k == 0) {
			*stale = got == 0;
			snprintf(why, whylen, "connection closed by Redis");
			return -1;
		}
		got += (size_t)k;
		if (got > TP_REDIS_REPLY_MAX) {
			snprintf(why, whylen, "a reply of more than %u octets",
			         TP_REDIS_REPLY_MAX);
			return -1;
		}
		if (redisReaderFeed(s->rd, buf, (size_t)k) != REDIS_OK) {
			snprintf(why, whylen, "protocol error: %s",
			         s->rd->errstr);
			return -1;
		}
	}
}

/* One command, its reply in *out (perhaps an error reply). */
static int conn_command(struct rconn *s, int argc, const char **argv,
                        const size_t *lens, long long deadline, unsigned budget,
                        redisReply **out, char *why, size_t whylen, int *stale)
{
	char *cmd = NULL;
	int n = redisFormatCommandArgv(&cmd, argc, argv, lens), rc;

	*stale = 0;
	if (n < 0) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	rc = conn_write(s, cmd, (size_t)n, deadline, budget, why, whylen,
	                stale);
	redisFreeCommand(cmd);
	if (rc != 0)
		return -1;
	return conn_read(s, deadline, budget, out, why, whylen, stale);
}

static int tls_handshake(struct tp_redis *r, struct rconn *s,
                         long long deadline, unsigned budget, char *why,
                         size_t whylen)
{
	const char *name = r->conf.tls_name[0] ? r->conf.tls_name : r->host;
	unsigned char ip[16];
	int rc;

	if (gnutls_init(&s->tls, GNUTLS_CLIENT | GNUTLS_NONBLOCK |
	                                 GNUTLS_NO_SIGNAL) < 0 ||
	    gnutls_set_default_priority(s->tls) < 0 ||
	    gnutls_credentials_set(s->tls, GNUTLS_CRD_CERTIFICATE, r->xcred) <
	            0) {
		snprintf(why, whylen, "TLS: out of memory");
		return -1;
	}
	if (inet_pton(AF_INET, name, ip) != 1 &&
	    inet_pton(AF_INET6, name, ip) != 1)
		gnutls_server_name_set(s->tls, GNUTLS_NAME_DNS, name,
		                       strlen(name));
	/* the certificate must chain to redis_tls_ca and name name (a DNS
	 * name, or an IP address against its iPAddress entries) */
	gnutls_session_set_verify_cert(s->tls, name, 0);
	gnutls_transport_set_int(s->tls, s->fd);
	for (;;) {
		rc = gnutls_handshake(s->tls);
		if (rc == 0)
			return 0;
		if (gnutls_error_is_fatal(rc)) {
			gnutls_datum_t txt = {NULL, 0};
			unsigned st =
			        gnutls_session_get_verify_cert_status(s->tls);

			if (rc == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR &&
			    gnutls_certificate_verification_status_print(
			            st, GNUTLS_CRT_X509, &txt, 0) == 0) {
				snprintf(why, whylen,
				         "TLS: Redis's certificate for %s: %s",
				         name, (char *)txt.data);
				gnutls_free(txt.data);
			} else {
				snprintf(why, whylen, "TLS: %s",
				         gnutls_strerror(rc));
			}
			return -1;
		}
		if (wait_fd(s->fd, (short)tls_dir(s), deadline, budget, why,
		            whylen) != 0)
			return -1;
	}
}

/* A new connection in s (closed), authenticated; 0, or -1 with why. */
static int conn_open(struct tp_redis *r, struct rconn *s, long long deadline,
                     unsigned budget, char *why, size_t whylen)
{
	int one = 1, err = 0, stale;
	socklen_t elen = sizeof(err);
	redisReply *rep = NULL;

	if (r->salen == 0) {
		snprintf(why, whylen, "not an address");
		return -1;
	}
	s->fd = socket(r->sa.ss_family,
	               SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		snprintf(why, whylen, "socket: %s", strerror(errno));
		return -1;
	}
	if (r->sa.ss_family != AF_UNIX)
		setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(s->fd, (struct sockaddr *)&r->sa, r->salen) != 0) {
		if (errno != EINPROGRESS && errno != EAGAIN) {
			snprintf(why, whylen, "connect: %s", strerror(errno));
			return -1;
		}
		if (wait_fd(s->fd, POLLOUT, deadline, budget, why, whylen) !=
		            0 ||
		    getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
			return -1;
		if (err != 0) {
			snprintf(why, whylen, "connect: %s", strerror(err));
			return -1;
		}
	}
	s->rd = redisReaderCreate();
	if (s->rd == NULL) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	if (r->conf.tls &&
	    tls_handshake(r, s, deadline, budget, why, whylen) != 0)
		return -1;
	if (r->password == NULL && r->conf.user[0] == '\0')
		return 0;
	{
		const char *argv[3];
		size_t lens[3];
		int argc = 0;

		argv[argc] = "AUTH";
		lens[argc++] = 4;
		if (r->conf.user[0] != '\0') {
			argv[argc] = r->conf.user;
			lens[argc++] = strlen(r->conf.user);
		}
		argv[argc] = r->password != NULL ? (char *)r->password : "";
		lens[argc++] = r->passlen;
		if (conn_command(s, argc, argv, lens, deadline, budget, &rep,
		                 why, whylen, &stale) != 0)
			return -1;
	}
	if (rep->type == REDIS_REPLY_ERROR) {
		snprintf(why, whylen, "AUTH%s%s: %.100s",
		         r->conf.user[0] ? " as " : "", r->conf.user, rep->str);
		freeReplyObject(rep);
		return -1;
	}
	freeReplyObject(rep);
	return 0;
}

/* --- operations ------------------------------------------------------------
 */

/* Redis failed: no connection for a backoff; the idle ones are closed
 * too (after a restart they are all dead). */
static void mark_down(struct tp_redis *r, const char *why)
{
	pthread_mutex_lock(&r->state);
	r->backoff = r->backoff == 0 ? TP_REDIS_BACKOFF_MIN
	             : r->backoff * 2 > TP_REDIS_BACKOFF_MAX
	                     ? TP_REDIS_BACKOFF_MAX
	                     : r->backoff * 2;
	r->retry_at = mono_ms() + r->backoff;
	snprintf(r->down_why, sizeof(r->down_why), "%s", why);
	pthread_mutex_unlock(&r->state);
	for (int i = 0; i < TP_REDIS_POOL; i++)
		if (pthread_mutex_trylock(&r->slot[i].lock) == 0) {
			conn_close(&r->slot[i]);
			pthread_mutex_unlock(&r->slot[i].lock);
		}
}

/* A free connection slot (locked), or NULL with note. */
static struct rconn *op_begin(struct tp_redis *r, long long deadline,
                              unsigned budget, char *note, size_t notelen)
{
	long long now = mono_ms();
	struct timespec ts;
	struct rconn *s;

	pthread_mutex_lock(&r->state);
	if (!r->ready && now - r->setup_at >= TP_REDIS_SETUP_RETRY) {
		r->setup_at = now;
		setup(r);
	}
	if (!r->ready) {
		snprintf(note, notelen, "cache %s: %s", r->desc, r->setup_why);
		pthread_mutex_unlock(&r->state);
		return NULL;
	}
	if (now < r->retry_at) {
		snprintf(note, notelen,
		         "cache %s: unavailable (%s); next attempt in %lld ms",
		         r->desc, r->down_why, r->retry_at - now);
		pthread_mutex_unlock(&r->state);
		return NULL;
	}
	pthread_mutex_unlock(&r->state);
	/* a free connected slot, else any free slot, else wait */
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < TP_REDIS_POOL; i++) {
			s = &r->slot[i];
			if (pthread_mutex_trylock(&s->lock) != 0)
				continue;
			if (pass == 1 || s->fd >= 0)
				return s;
			pthread_mutex_unlock(&s->lock);
		}
	s = &r->slot[(unsigned long)pthread_self() % TP_REDIS_POOL];
	ts.tv_sec = deadline / 1000;
	ts.tv_nsec = (deadline % 1000) * 1000000;
	if (pthread_mutex_clocklock(&s->lock, CLOCK_MONOTONIC, &ts) != 0) {
		snprintf(note, notelen,
		         "cache %s: no connection free within %u ms", r->desc,
		         budget);
		return NULL;
	}
	return s;
}

/*
 * One command within budget ms: 0 with *out (perhaps an error reply:
 * the caller says what it means), or -1 with note.
 */
static int run(struct tp_redis *r, int argc, const char **argv,
               const size_t *lens, unsigned budget, redisReply **out,
               char *note, size_t notelen)
{
	long long deadline = mono_ms() + budget;
	struct rconn *s = op_begin(r, deadline, budget, note, notelen);
	char why[300] = "";
	int stale = 0;

	if (s == NULL)
		return -1;
	for (int attempt = 0; attempt < 2; attempt++) {
		int fresh = s->fd < 0;

		if (fresh &&
		    conn_open(r, s, deadline, budget, why, sizeof(why)) != 0)
			break;
		if (conn_command(s, argc, argv, lens, deadline, budget, out,
		                 why, sizeof(why), &stale) == 0) {
			pthread_mutex_unlock(&s->lock);
			pthread_mutex_lock(&r->state);
			r->backoff = 0;
			r->retry_at = 0;
			pthread_mutex_unlock(&r->state);
			return 0;
		}
		conn_close(s);
		/* a kept connection that Redis closed while it was idle:
		 * once more on a new one */
		if (fresh || !stale)
			break;
	}
	conn_close(s);
	pthread_mutex_unlock(&s->lock);
	mark_down(r, why);
	snprintf(note, notelen, "cache %s: %s", r->desc, why);
	return -1;
}

static void key_name(const struct tp_redis *r, const unsigned char key[32],
                     char *out, size_t outlen)
{
	size_t n = (size_t)snprintf(out, outlen, "%s", r->conf.prefix);

	for (int i = 0; i < 32 && n + 2 < outlen; i++, n += 2)
		sprintf(out + n, "%02x", key[i]);
}

static int unhex(const char *s, unsigned char out[32])
{
	for (int i = 0; i < 32; i++) {
		unsigned v = 0;

		for (int j = 0; j < 2; j++) {
			char c = s[2 * i + j];

			v <<= 4;
			if (c >= '0' && c <= '9')
				v |= (unsigned)(c - '0');
			else if (c >= 'a' && c <= 'f')
				v |= (unsigned)(c - 'a' + 10);
			else
				return -1;
		}
		out[i] = (unsigned char)v;
	}
	return s[64] == '\0' ? 0 : -1;
}

/* HMAC-SHA256(site key, "tlspool cache v1" || key || rec). */
static int tag_of(const struct tp_redis *r, const unsigned char key[32],
                  const unsigned char *rec, size_t len, unsigned char out[32])
{
	unsigned char buf[16 + 32 + 1024];

	if (len > sizeof(buf) - 48)
		return -1;
	memcpy(buf, "tlspool cache v1", 16);
	memcpy(buf + 16, key, 32);
	memcpy(buf + 48, rec, len);
	return gnutls_hmac_fast(GNUTLS_MAC_SHA256, r->key, r->keylen, buf,
	                        48 + len, out) == 0
	               ? 0
	               : -1;
}

/* Is v a value the site key signed for key?  NULL, or what is wrong. */
static const char *unwrap(const struct tp_redis *r, const unsigned char key[32],
                          const unsigned char *v, size_t n)
{
	unsigned char mac[32], diff = 0;

	if (n < TP_REDIS_HDR || memcmp(v, TP_REDIS_MAGIC, 4) != 0)
		return "not a signed tlspool entry";
	if (memcmp(v + 4, r->keyid, 8) != 0)
		return "signed with another site key";
	if (tag_of(r, key, v + TP_REDIS_HDR, n - TP_REDIS_HDR, mac) != 0)
		return "oversized";
	for (int i = 0; i < 32; i++) /* in constant time */
		diff |= (unsigned char)(mac[i] ^ v[12 + i]);
	return diff ? "bad signature (altered, or not for this key)" : NULL;
}

int tp_redis_get(struct tp_redis *r, const unsigned char key[32],
                 unsigned char *rec, size_t *len, size_t max, char *note,
                 size_t notelen)
{
	char name[sizeof(r->conf.prefix) + 65];
	const char *argv[2] = {"GET", name};
	size_t lens[2];
	redisReply *rep;
	const char *bad;
	int rv = -1;

	key_name(r, key, name, sizeof(name));
	lens[0] = 3;
	lens[1] = strlen(name);
	if (run(r, 2, argv, lens, r->conf.timeout_ms, &rep, note, notelen) != 0)
		return -1;
	if (rep->type == REDIS_REPLY_NIL) {
		rv = 0;
	} else if (rep->type == REDIS_REPLY_ERROR) {
		snprintf(note, notelen, "cache %s: GET: %.200s", r->desc,
		         rep->str);
	} else if (rep->type != REDIS_REPLY_STRING) {
		snprintf(note, notelen, "cache %s: %s: not a tlspool entry",
		         r->desc, name);
	} else if ((bad = unwrap(r, key, (const unsigned char *)rep->str,
	                         rep->len)) != NULL) {
		snprintf(note, notelen, "cache %s: %s: %s", r->desc, name, bad);
	} else if (rep->len - TP_REDIS_HDR > max) {
		snprintf(note, notelen, "cache %s: %s: oversized", r->desc,
		         name);
	} else {
		*len = rep->len - TP_REDIS_HDR;
		memcpy(rec, rep->str + TP_REDIS_HDR, *len);
		rv = 1;
	}
	freeReplyObject(rep);
	return rv;
}

int tp_redis_put(struct tp_redis *r, const unsigned char key[32],
                 const unsigned char *rec, size_t len, time_t expiry,
                 char *note, size_t notelen)
{
	char name[sizeof(r->conf.prefix) + 65], exat[24];
	unsigned char val[TP_REDIS_HDR + 1024];
	const char *argv[5] = {"SET", name, (const char *)val, "EXAT", exat};
	size_t lens[5];
	redisReply *rep;
	int rv = 0;

	if (len > sizeof(val) - TP_REDIS_HDR) {
		snprintf(note, notelen, "cache %s: oversized entry", r->desc);
		return -1;
	}
	/* the key files are read by op_begin(); without them, nothing is
	 * signed */
	pthread_mutex_lock(&r->state);
	if (!r->ready) {
		snprintf(note, notelen, "cache %s: %s", r->desc, r->setup_why);
		pthread_mutex_unlock(&r->state);
		return -1;
	}
	pthread_mutex_unlock(&r->state);
	memcpy(val, TP_REDIS_MAGIC, 4);
	memcpy(val + 4, r->keyid, 8);
	memcpy(val + TP_REDIS_HDR, rec, len);
	if (tag_of(r, key, rec, len, val + 12) != 0) {
		snprintf(note, notelen, "cache %s: HMAC-SHA256 failed",
		         r->desc);
		return -1;
	}
	key_name(r, key, name, sizeof(name));
	snprintf(exat, sizeof(exat), "%lld", (long long)expiry);
	lens[0] = 3;
	lens[1] = strlen(name);
	lens[2] = TP_REDIS_HDR + len;
	lens[3] = 4;
	lens[4] = strlen(exat);
	if (run(r, 5, argv, lens, r->conf.timeout_ms, &rep, note, notelen) != 0)
		return -1;
	if (rep->type == REDIS_REPLY_ERROR) {
		snprintf(note, notelen, "cache %s: SET: %.200s", r->desc,
		         rep->str);
		rv = -1;
	}
	freeReplyObject(rep);
	return rv;
}

/* --- administration: SCAN under the prefix ----------------------------------
 */

static unsigned admin_budget(const struct tp_redis *r)
{
	return r->conf.timeout_ms > TP_REDIS_ADMIN_MS ? r->conf.timeout_ms
	                                              : TP_REDIS_ADMIN_MS;
}

/* One SCAN step: the next cursor into cursor, the keys in *keys (an
 * array reply, owned by the caller).  0 or -1 with err. */
static int scan_step(struct tp_redis *r, char *cursor, size_t curlen,
                     redisReply **keys, char *err, size_t errlen)
{
	const char *argv[6] = {"SCAN",     cursor,  "MATCH",
	                       r->pattern, "COUNT", TP_REDIS_SCAN_COUNT};
	size_t lens[6];
	redisReply *rep;

	for (int i = 0; i < 6; i++)
		lens[i] = strlen(argv[i]);
	if (run(r, 6, argv, lens, admin_budget(r), &rep, err, errlen) != 0)
		return -1;
	if (rep->type == REDIS_REPLY_ERROR) {
		snprintf(err, errlen, "cache %s: SCAN: %.200s", r->desc,
		         rep->str);
		freeReplyObject(rep);
		return -1;
	}
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
	    rep->element[0]->type != REDIS_REPLY_STRING ||
	    rep->element[1]->type != REDIS_REPLY_ARRAY ||
	    rep->element[0]->len >= curlen) {
		snprintf(err, errlen, "cache %s: SCAN: unexpected reply",
		         r->desc);
		freeReplyObject(rep);
		return -1;
	}
	memcpy(cursor, rep->element[0]->str, rep->element[0]->len);
	cursor[rep->element[0]->len] = '\0';
	*keys = rep->element[1];
	rep->element[1] = NULL;
	freeReplyObject(rep);
	return 0;
}

/* cmd (MGET or UNLINK) over the keys of one SCAN step. */
static int over_keys(struct tp_redis *r, const char *cmd,
                     const redisReply *keys, redisReply **out, char *err,
                     size_t errlen)
{
	const char **argv = calloc(keys->elements + 1, sizeof(*argv));
	size_t *lens = calloc(keys->elements + 1, sizeof(*lens));
	int rc = -1;

	if (argv == NULL || lens == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	argv[0] = cmd;
	lens[0] = strlen(cmd);
	for (size_t i = 0; i < keys->elements; i++) {
		if (keys->element[i]->type != REDIS_REPLY_STRING) {
			snprintf(err, errlen, "cache %s: SCAN: not a key",
			         r->desc);
			goto out;
		}
		argv[i + 1] = keys->element[i]->str;
		lens[i + 1] = keys->element[i]->len;
	}
	rc = run(r, (int)keys->elements + 1, argv, lens, admin_budget(r), out,
	         err, errlen);
	if (rc == 0 && (*out)->type == REDIS_REPLY_ERROR) {
		snprintf(err, errlen, "cache %s: %s: %.200s", r->desc, cmd,
		         (*out)->str);
		freeReplyObject(*out);
		rc = -1;
	}
out:
	free(argv);
	free(lens);
	return rc;
}

int tp_redis_walk(struct tp_redis *r, tp_redis_visit *visit, void *arg,
                  char *err, size_t errlen)
{
	size_t plen = strlen(r->conf.prefix);
	char cursor[32] = "0";
	int stop = 0;

	do {
		redisReply *keys = NULL, *vals = NULL;

		if (scan_step(r, cursor, sizeof(cursor), &keys, err, errlen) !=
		    0)
			goto fail;
		if (keys->elements > 0 &&
		    over_keys(r, "MGET", keys, &vals, err, errlen) != 0) {
			freeReplyObject(keys);
			goto fail;
		}
		for (size_t i = 0; !stop && vals != NULL && i < keys->elements;
		     i++) {
			const redisReply *k = keys->element[i], *v;
			unsigned char key[32];
			const char *bad;

			if (i >= vals->elements || k->len != plen + 64 ||
			    unhex(k->str + plen, key) != 0)
				continue;
			v = vals->element[i];
			if (v->type == REDIS_REPLY_NIL)
				continue; /* expired since the SCAN */
			bad = v->type != REDIS_REPLY_STRING
			              ? "not a tlspool entry"
			              : unwrap(r, key,
			                       (const unsigned char *)v->str,
			                       v->len);
			stop = bad != NULL
			               ? visit(key, NULL, 0, bad, arg)
			               : visit(key,
			                       (const unsigned char *)v->str +
			                               TP_REDIS_HDR,
			                       v->len - TP_REDIS_HDR, NULL,
			                       arg);
		}
		freeReplyObject(keys);
		if (vals != NULL)
			freeReplyObject(vals);
	} while (!stop && strcmp(cursor, "0") != 0);
	return 0;
fail:
	errno = EIO;
	return -1;
}

int tp_redis_flush(struct tp_redis *r, char *err, size_t errlen)
{
	char cursor[32] = "0";

	do {
		redisReply *keys = NULL, *n = NULL;

		if (scan_step(r, cursor, sizeof(cursor), &keys, err, errlen) !=
		    0)
			goto fail;
		if (keys->elements > 0 &&
		    over_keys(r, "UNLINK", keys, &n, err, errlen) != 0) {
			freeReplyObject(keys);
			goto fail;
		}
		freeReplyObject(keys);
		if (n != NULL)
			freeReplyObject(n);
	} while (strcmp(cursor, "0") != 0);
	return 0;
fail:
	errno = EIO;
	return -1;
}
