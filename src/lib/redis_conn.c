/*
 * Connections to the Redis server of a cache (redis_int.h): the address,
 * the transport, the pool and the registry for fork().  The outline is at
 * the top of cache_redis.c (1. Protocol, 2. Connections, 3. Failure,
 * 5. fork()).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "redis_int.h"

#define TP_REDIS_BACKOFF_MIN 250  /* ms */
#define TP_REDIS_BACKOFF_MAX 4000 /* ms */
#define TP_REDIS_SETUP_RETRY 5000 /* ms between reading key files again */
#define TP_REDIS_CONNECT_MIN 1000 /* ms a background connect() may take */
/* Octets: no entry is near it. */
#define TP_REDIS_REPLY_MAX (4u << 20)

/* --- the registry, for fork() --- */

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
	s->connecting = 0;
	s->rcvto = 0;
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

void tp_redis_register(struct tp_redis *r)
{
	pthread_once(&reg_once, reg_init);
	pthread_mutex_lock(&reg_lock);
	r->next = registry;
	registry = r;
	pthread_mutex_unlock(&reg_lock);
}

void tp_redis_conn_fini(struct tp_redis *r)
{
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
}

/* --- addresses --- */

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

void tp_redis_conn_init(struct tp_redis *r)
{
	const char *addr = r->conf.addr;

	for (int i = 0; i < TP_REDIS_POOL; i++) {
		pthread_mutex_init(&r->slot[i].lock, NULL);
		r->slot[i].fd = -1;
	}
	if (tp_redis_addr(addr, &r->sa, &r->salen) != 0)
		r->salen = 0; /* config.c checked it; every call says so */
	if (strncmp(addr, "unix:", 5) != 0) {
		const char *colon = strrchr(addr, ':');
		const char *h = addr[0] == '[' ? addr + 1 : addr;
		size_t hl = colon != NULL ? (size_t)(colon - h) : 0;

		if (hl > 0 && h != addr)
			hl--; /* the ']' */
		if (hl < sizeof(r->host))
			snprintf(r->host, sizeof(r->host), "%.*s", (int)hl, h);
	}
}

/* --- the transport --- */

/* Wait for events on fd until deadline; 0, or -1 with why. */
static int wait_fd(int fd, short events, long long deadline, unsigned budget,
                   char *why, size_t whylen)
{
	struct pollfd p = {fd, events, 0};
	long long left;
	int n;

	for (;;) {
		left = deadline - tp_redis_mono_ms();
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

/* SO_RCVTIMEO of a blocking connection to ms (> 0); 0 or -1 (errno). */
static int set_rcvto(struct rconn *s, long long ms)
{
	struct timeval tv = {(time_t)(ms / 1000),
	                     (suseconds_t)(ms % 1000) * 1000};

	if (setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0)
		return -1;
	s->rcvto = ms;
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
		if (s->rcvto > 0) {
			/* blocking, bounded by SO_RCVTIMEO: one system call
			 * per reply, never a longer wait than the deadline */
			long long left = deadline - tp_redis_mono_ms();

			if (left <= 0) {
				snprintf(why, whylen, "no answer within %u ms",
				         budget);
				return -1;
			}
			/* never past the deadline; raised again when it
			 * was lowered for a call that had little left */
			if ((s->rcvto > left || s->rcvto < left / 2) &&
			    set_rcvto(s, left) != 0) {
				snprintf(why, whylen, "SO_RCVTIMEO: %s",
				         strerror(errno));
				return -1;
			}
			k = recv(s->fd, buf, sizeof(buf), 0);
			if (k < 0 && (errno == EAGAIN || errno == EINTR))
				continue; /* the deadline says */
			if (k < 0) {
				*stale = got == 0 && errno == ECONNRESET;
				snprintf(why, whylen, "recv: %s",
				         strerror(errno));
				return -1;
			}
			goto got;
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
	got:
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

/*
 * Start a connection in s (closed) without waiting: 1 when it is
 * established, 0 when it is under way (s->connecting), -1 with why.
 */
static int conn_start(struct tp_redis *r, struct rconn *s, char *why,
                      size_t whylen)
{
	int one = 1;

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
	if (connect(s->fd, (struct sockaddr *)&r->sa, r->salen) == 0)
		return 1;
	/* a unix socket connects at once or not at all (EAGAIN: its
	 * backlog is full) */
	if (errno != EINPROGRESS) {
		snprintf(why, whylen, "connect: %s", strerror(errno));
		return -1;
	}
	s->connecting = tp_redis_mono_ms();
	return 0;
}

/* A connect() under way in s, looked at without waiting (poll(2) with
 * 0): 1 established, 0 still under way, -1 failed with why. */
static int conn_check(struct rconn *s, char *why, size_t whylen)
{
	struct pollfd p = {s->fd, POLLOUT, 0};
	int err = 0;
	socklen_t elen = sizeof(err);

	if (poll(&p, 1, 0) <= 0)
		return 0; /* (EINTR: next time) */
	if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
		err = errno;
	if (err != 0) {
		snprintf(why, whylen, "connect: %s", strerror(err));
		return -1;
	}
	s->connecting = 0;
	return 1;
}

/* An established connection in s made usable: the reader, TLS, AUTH;
 * 0, or -1 with why. */
static int conn_setup(struct tp_redis *r, struct rconn *s, long long deadline,
                      unsigned budget, char *why, size_t whylen)
{
	redisReply *rep = NULL;
	int stale;

	s->rd = redisReaderCreate();
	if (s->rd == NULL) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	if (r->conf.tls &&
	    tls_handshake(r, s, deadline, budget, why, whylen) != 0)
		return -1;
	/* a plain connection reads its replies blocking, under
	 * SO_RCVTIMEO (one system call per reply instead of poll() and
	 * recv()); it still writes with MSG_DONTWAIT */
	if (!r->conf.tls) {
		int fl = fcntl(s->fd, F_GETFL);

		if (fl < 0 || fcntl(s->fd, F_SETFL, fl & ~O_NONBLOCK) != 0 ||
		    set_rcvto(s, r->conf.timeout_ms) != 0) {
			snprintf(why, whylen, "fcntl: %s", strerror(errno));
			return -1;
		}
	}
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

/* How long a connect() in the background may take before it counts as
 * a failure: it delays no call, so longer than one call's budget. */
static unsigned connect_window(const struct tp_redis *r)
{
	return r->conf.timeout_ms > TP_REDIS_CONNECT_MIN ? r->conf.timeout_ms
	                                                 : TP_REDIS_CONNECT_MIN;
}

/*
 * A usable connection in s (closed, or connecting in the background):
 * 1 when it is ready for a command, 0 when its connect() is still under
 * way (the call goes on without Redis), -1 with why.  Only when wait
 * (Redis has not failed since its last success) does this call wait for
 * connect() to complete, within its deadline; otherwise connect() goes on
 * in the kernel while the call goes online, and a later call finds it
 * done (3. Failure, in cache_redis.c).  Once connected, TLS and AUTH run
 * within the call's deadline.
 */
static int conn_ready(struct tp_redis *r, struct rconn *s, int wait,
                      long long deadline, unsigned budget, char *why,
                      size_t whylen)
{
	int st;

	if (s->fd < 0) {
		st = conn_start(r, s, why, whylen);
		if (st == 0)
			st = conn_check(s, why, whylen);
	} else {
		st = conn_check(s, why, whylen);
		wait = 0; /* already in the background */
	}
	if (st == 0 && wait) {
		if (wait_fd(s->fd, POLLOUT, deadline, budget, why, whylen) !=
		    0) {
			snprintf(why, whylen, "connect: no answer within %u ms",
			         budget);
			return -1;
		}
		st = conn_check(s, why, whylen);
		if (st == 0) {
			snprintf(why, whylen, "connect: no answer");
			return -1;
		}
	}
	if (st == 0 && tp_redis_mono_ms() - s->connecting >=
	                       (long long)connect_window(r)) {
		snprintf(why, whylen, "connect: no answer within %u ms",
		         connect_window(r));
		return -1;
	}
	if (st <= 0)
		return st;
	return conn_setup(r, s, deadline, budget, why, whylen) == 0 ? 1 : -1;
}

/* --- the pool --- */

/* Redis failed: no connection for a backoff; the idle ones are closed
 * too (after a restart they are all dead). */
static void mark_down(struct tp_redis *r, const char *why)
{
	pthread_mutex_lock(&r->state);
	r->backoff = r->backoff == 0 ? TP_REDIS_BACKOFF_MIN
	             : r->backoff * 2 > TP_REDIS_BACKOFF_MAX
	                     ? TP_REDIS_BACKOFF_MAX
	                     : r->backoff * 2;
	r->retry_at = tp_redis_mono_ms() + r->backoff;
	r->trouble = 1;
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
	long long now = tp_redis_mono_ms();
	struct timespec ts;
	struct rconn *s;

	pthread_mutex_lock(&r->state);
	if (!r->ready && now - r->setup_at >= TP_REDIS_SETUP_RETRY) {
		r->setup_at = now;
		tp_redis_setup(r);
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
int tp_redis_run(struct tp_redis *r, int argc, const char **argv,
                 const size_t *lens, unsigned budget, redisReply **out,
                 char *note, size_t notelen)
{
	long long deadline = tp_redis_mono_ms() + budget;
	struct rconn *s = op_begin(r, deadline, budget, note, notelen);
	char why[300] = "";
	int stale = 0, wait;

	if (s == NULL)
		return -1;
	pthread_mutex_lock(&r->state);
	wait = !r->trouble;
	pthread_mutex_unlock(&r->state);
	for (int attempt = 0; attempt < 2; attempt++) {
		int fresh = s->fd < 0 || s->connecting != 0, st = 1;

		/* a second attempt follows a failure: never waits */
		if (fresh)
			st = conn_ready(r, s, wait && attempt == 0, deadline,
			                budget, why, sizeof(why));
		if (st == 0) {
			long long since = tp_redis_mono_ms() - s->connecting;

			pthread_mutex_unlock(&s->lock);
			snprintf(note, notelen,
			         "cache %s: connecting in the background "
			         "(%lld ms so far)",
			         r->desc, since);
			return -1;
		}
		if (st < 0)
			break;
		if (conn_command(s, argc, argv, lens, deadline, budget, out,
		                 why, sizeof(why), &stale) == 0) {
			pthread_mutex_unlock(&s->lock);
			pthread_mutex_lock(&r->state);
			r->backoff = 0;
			r->retry_at = 0;
			r->trouble = 0;
			pthread_mutex_unlock(&r->state);
			return 0;
		}
		conn_close(s);
		/* a kept connection that Redis closed while it was idle:
		 * once more on a new one (in the background, unless it
		 * connects at once) */
		if (fresh || !stale)
			break;
		pthread_mutex_lock(&r->state);
		r->trouble = 1;
		pthread_mutex_unlock(&r->state);
	}
	conn_close(s);
	pthread_mutex_unlock(&s->lock);
	mark_down(r, why);
	snprintf(note, notelen, "cache %s: %s", r->desc, why);
	return -1;
}
