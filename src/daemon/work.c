/*
 * The calls: a fixed pool of worker threads that take the requests from
 * the connections themselves (main.c, conn_serve()) and run them, so that
 * a slow peer holds up one worker for at most handshake_timeout_ms and
 * never the event loop; the configuration in use; starttls_end() for the
 * descriptors handed out.
 *
 * A worker runs the call as libtlspool runs it in an application, on the
 * descriptor the client sent, with the daemon's context: the ACL of the
 * identity is checked against the client's credentials (tp_cred_act_for()
 * for the worker's thread), and STARTTLS_NO_AUTHZ only for the clients
 * [pool] allow_no_authz_users and _groups name.  The relay that takes the
 * connection afterwards is the daemon's.
 */
#include <errno.h>
#include <gnutls/pkcs11.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dtls.h"
#include "filetrust.h"
#include "relay.h"
#include "tlspoold.h"

/* Descriptors handed out whose starttls_end() the daemon answers. */
#define OWNERS_MAX 4096

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* --- the configuration in use ---------------------------------------- */

static struct gen *current; /* under lock */

int gen_load(const char *path, char *err, size_t errlen)
{
	struct gen *g = calloc(1, sizeof(*g)), *old;

	if (g == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	g->ctx = starttls_ctx_new(path);
	if (g->ctx == NULL) {
		snprintf(err, errlen, "%s", starttls_errstr());
		free(g);
		return -1;
	}
	g->cfg = tp_ctx_config(g->ctx);
	g->refs = 1;
	pthread_mutex_lock(&lock);
	old = current;
	current = g;
	pthread_mutex_unlock(&lock);
	gen_release(old);
	return 0;
}

struct gen *gen_acquire(void)
{
	struct gen *g;

	pthread_mutex_lock(&lock);
	g = current;
	g->refs++;
	pthread_mutex_unlock(&lock);
	return g;
}

void gen_release(struct gen *g)
{
	unsigned left;

	if (g == NULL)
		return;
	pthread_mutex_lock(&lock);
	left = --g->refs;
	pthread_mutex_unlock(&lock);
	if (left == 0) {
		/* relayed connections keep what they use (starttls.h) */
		starttls_ctx_free(g->ctx);
		free(g);
	}
}

/* --- the PKCS#11 PIN -------------------------------------------------- */

static pthread_mutex_t pin_lock = PTHREAD_MUTEX_INITIALIZER;
static char pin[256];
static int pin_refused; /* until pin_file is read again */

/*
 * GnuTLS asks for the PIN of a token: the one from pin_file.  It asks
 * again (attempt > 0) when the token refused it: then the PIN is not
 * offered again, by this call or any other, until pin_file is read
 * again, so that retries cannot lock the token.
 */
static int pin_cb(void *user, int attempt, const char *token_url,
                  const char *token_label, unsigned flags, char *out,
                  size_t out_max)
{
	int rv = -1, refused = 0;

	(void)user, (void)token_url, (void)flags;
	pthread_mutex_lock(&pin_lock);
	if (attempt > 0 && !pin_refused)
		refused = pin_refused = 1;
	if (!pin_refused && pin[0] != '\0' && strlen(pin) < out_max) {
		strcpy(out, pin);
		rv = 0;
	}
	pthread_mutex_unlock(&pin_lock);
	if (refused)
		lp_log("token %s refused the PIN of pin_file: not offered "
		       "again until SIGHUP",
		       token_label ? token_label : "?");
	return rv;
}

int pin_load(const struct tp_config *cfg, char *err, size_t errlen)
{
	unsigned char *data = NULL;
	size_t len = 0;

	pthread_mutex_lock(&pin_lock);
	memset(pin, 0, sizeof(pin));
	pin_refused = 0;
	pthread_mutex_unlock(&pin_lock);
	if (cfg->pool.pin_file[0] == '\0')
		return 0;
	if (tlspool_file_read(cfg->pool.pin_file, TLSPOOL_FILE_SECRET, &data,
	                      &len, err, errlen) != 0)
		return -1;
	while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
		len--;
	if (len == 0 || len >= sizeof(pin) || memchr(data, '\n', len)) {
		snprintf(err, errlen, "%s: not one line of a PIN",
		         cfg->pool.pin_file);
		tlspool_file_free(data, len);
		return -1;
	}
	pthread_mutex_lock(&pin_lock);
	memcpy(pin, data, len);
	pthread_mutex_unlock(&pin_lock);
	tlspool_file_free(data, len);
	gnutls_pkcs11_set_pin_function(pin_cb, NULL);
	return 0;
}

/* --- the descriptors handed out, for starttls_end() -------------------- */

static struct owner {
	dev_t dev;
	ino_t ino;
	uid_t uid;
} owners[OWNERS_MAX];
static size_t owners_next, owners_count; /* under lock */

static void owner_add(int tls, uid_t uid)
{
	struct stat st;

	if (fstat(tls, &st) != 0)
		return;
	pthread_mutex_lock(&lock);
	owners[owners_next] = (struct owner){st.st_dev, st.st_ino, uid};
	owners_next = (owners_next + 1) % OWNERS_MAX;
	if (owners_count < OWNERS_MAX)
		owners_count++;
	pthread_mutex_unlock(&lock);
}

/* Did uid get the connection (dev, ino)?  The newest entry decides (an
 * inode number may come back). */
static int owner_is(dev_t dev, ino_t ino, uid_t uid)
{
	int rv = 0;

	pthread_mutex_lock(&lock);
	for (size_t k = 1; k <= owners_count; k++) {
		struct owner *o =
		        &owners[(owners_next + OWNERS_MAX - k) % OWNERS_MAX];

		if (o->dev == dev && o->ino == ino) {
			rv = o->uid == uid || uid == 0;
			break;
		}
	}
	pthread_mutex_unlock(&lock);
	return rv;
}

void work_end(const struct client *c, int fd)
{
	struct tp_pool_msg m;
	starttls_end_info info;
	struct stat st;

	memset(&m, 0, sizeof(m));
	m.type = TP_POOL_END_REPLY;
	m.u.end.result = -1;
	m.u.end.err = ENOENT;
	if (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) &&
	    owner_is(st.st_dev, st.st_ino, c->who.uid) &&
	    tp_relay_end_info(st.st_dev, st.st_ino, &info) == 0) {
		m.u.end.result = 0;
		m.u.end.err = 0;
		m.u.end.kind = (uint32_t)info.kind;
		m.u.end.alert = info.alert;
		m.u.end.bytes_in = info.bytes_in;
		m.u.end.bytes_out = info.bytes_out;
		snprintf(m.u.end.detail, sizeof(m.u.end.detail), "%s",
		         info.detail);
	}
	close(fd);
	m.version = c->version;
	conn_done(c, tp_pool_send(c->fd, &m, -1) == 0);
}

/* --- the calls ---------------------------------------------------------- */

struct job {
	struct client c;
	struct tp_pool_request q;
	int fd;             /* the descriptor to secure */
	long long queued;   /* tp_mono_ms() of the request's arrival */
	long long deadline; /* of the call, for the checksni round trip */
};

/* Each worker's buffer for the trace of its call's reply: one per
 * thread for its life, not a large block per call. */
static __thread unsigned char *trace_buf;

static pthread_t *workers;
static unsigned nworkers;

int work_refuse(const struct client *c, int err, starttls_class cls,
                const char *detail)
{
	struct tp_pool_msg m;

	memset(&m, 0, sizeof(m));
	m.version = c->version;
	m.type = TP_POOL_REPLY;
	m.u.reply.result = -1;
	m.u.reply.err = err;
	m.u.reply.cls = cls;
	snprintf(m.u.reply.detail, sizeof(m.u.reply.detail), "%s", detail);
	return tp_pool_send(c->fd, &m, -1);
}

/* A call refused before it ran: its descriptor shut down and closed, as a
 * failed call leaves it, and the answer. */
static void refuse_job(struct job *j, int err, starttls_class cls,
                       const char *detail)
{
	char who[64];
	int sent;

	shutdown(j->fd, SHUT_RDWR);
	close(j->fd);
	sent = work_refuse(&j->c, err, cls, detail) == 0;
	lp_log("%s %s: %s", lp_who(&j->c, who, sizeof(who)),
	       j->q.role ? "server" : "client", detail);
	conn_done(&j->c, sent);
}

/* --- one call -------------------------------------------------------------
 */

/* checksni in the application: the SNI goes to the client, its verdict
 * comes back by the call's deadline; anything else refuses. */
static int ask_sni(const char *sni, void *arg)
{
	struct job *j = arg;
	struct tp_pool_msg m;
	char why[128];
	int fd, r;

	memset(&m, 0, sizeof(m));
	m.version = j->c.version;
	m.type = TP_POOL_SNI_ASK;
	snprintf(m.u.sni, sizeof(m.u.sni), "%s", sni);
	if (tp_pool_send(j->c.fd, &m, -1) != 0) {
		j->c.broken = 1;
		return 0;
	}
	r = tp_pool_recv_small(j->c.fd, &m, &fd, j->deadline, why, sizeof(why),
	                       NULL);
	if (fd >= 0)
		close(fd); /* a request out of turn */
	if (r == 1)
		tp_pool_msg_clear(&m);
	if (r == 1 && m.type == TP_POOL_SNI_VERDICT)
		return m.u.accept == 1;
	/* no verdict: the connection is out of step with the call */
	j->c.broken = 1;
	return 0;
}

static int may_skip_authz(const struct tp_pool_conf *p,
                          const struct tp_caller *who)
{
	for (size_t k = 0; k < p->no_authz_nuids; k++)
		if (p->no_authz_uids[k] == who->uid)
			return 1;
	for (size_t k = 0; k < p->no_authz_ngids; k++) {
		if (p->no_authz_gids[k] == who->gid)
			return 1;
		for (size_t i = 0; i < who->ngroups; i++)
			if (p->no_authz_gids[k] == who->groups[i])
				return 1;
	}
	return 0;
}

/* A job that waited past its time in the queue, or asks for
 * STARTTLS_NO_AUTHZ without the right to: refused (1), else 0. */
static int job_refused(struct job *j, const struct gen *g, long long now)
{
	unsigned tmo = g->cfg->handshake_timeout_ms;
	char detail[600];

	if (now - j->queued > (long long)tmo) {
		snprintf(detail, sizeof(detail),
		         "the call waited %lld ms for a worker of tlspoold "
		         "([tls] handshake_timeout_ms %u)",
		         now - j->queued, tmo);
		refuse_job(j, ETIMEDOUT, STARTTLS_ERR_TIMEOUT, detail);
		return 1;
	}
	if ((j->q.flags & STARTTLS_NO_AUTHZ) &&
	    !may_skip_authz(&g->cfg->pool, &j->c.who)) {
		snprintf(detail, sizeof(detail),
		         "STARTTLS_NO_AUTHZ through tlspoold: uid %u is not "
		         "named by [pool] allow_no_authz_users or "
		         "allow_no_authz_groups",
		         (unsigned)j->c.who.uid);
		refuse_job(j, EPERM, STARTTLS_ERR_REFUSED, detail);
		return 1;
	}
	return 0;
}

/* The reply to the application (with the plaintext descriptor on
 * success), and one line in the log: did it go out? */
static int reply_and_log(struct job *j, int tls, int err, const char *peer,
                         long long start)
{
	const struct tp_pool_request *q = &j->q;
	const char *myname = q->opts & TP_POOL_HAS_MYNAME ? q->myname : NULL;
	const char *sni = q->opts & TP_POOL_HAS_SNINAME ? q->sniname : "-";
	struct tp_pool_msg m;
	char who[64];
	int sent;

	memset(&m, 0, sizeof(m));
	m.version = j->c.version;
	m.type = TP_POOL_REPLY;
	m.u.reply.result = tls < 0 ? -1 : 0;
	m.u.reply.err = tls < 0 ? (err > 0 && err < 4096 ? err : EIO) : 0;
	m.u.reply.cls = tls < 0 ? (uint32_t)starttls_errclass() : STARTTLS_OK;
	if (tls < 0 && m.u.reply.cls == STARTTLS_OK)
		m.u.reply.cls = STARTTLS_ERR_INTERNAL;
	snprintf(m.u.reply.detail, sizeof(m.u.reply.detail), "%s",
	         starttls_errstr());
	if (tls >= 0) {
		snprintf(m.u.reply.peer, sizeof(m.u.reply.peer), "%s", peer);
		owner_add(tls, j->c.who.uid);
	}
	/* this worker's thread ran the call: its trace is the call's */
	m.u.reply.trace = trace_buf;
	if (m.u.reply.trace != NULL)
		m.u.reply.trace_len = (uint32_t)tp_pool_trace_encode(
		        starttls_last_trace(), m.u.reply.trace,
		        TP_POOL_TRACE_MAX);
	sent = tp_pool_send(j->c.fd, &m, tls) == 0;
	if (tls >= 0)
		close(tls); /* the client has its copy, or none: closed */
	lp_who(&j->c, who, sizeof(who));
	if (tls >= 0)
		lp_log("%s %s myname=%s sni=%s: ok, peer %s (%lld ms)%s", who,
		       q->role ? "server" : "client", myname ? myname : "-",
		       sni, peer[0] ? peer : "(anonymous)",
		       tp_mono_ms() - start,
		       sent ? "" : "; the client went away: closed");
	else
		lp_log("%s %s myname=%s sni=%s: %s (%s): %s%s", who,
		       q->role ? "server" : "client", myname ? myname : "-",
		       sni,
		       strerrorname_np(m.u.reply.err)
		               ? strerrorname_np(m.u.reply.err)
		               : "?",
		       starttls_class_name((starttls_class)m.u.reply.cls),
		       m.u.reply.detail, sent ? "" : "; the client went away");
	return sent;
}

static void run_job(struct job *j)
{
	const struct tp_pool_request *q = &j->q;
	const char *myname = q->opts & TP_POOL_HAS_MYNAME ? q->myname : NULL;
	char peer[TP_POOL_NAME] = "", *pp = NULL;
	size_t plen = 0;
	struct gen *g = gen_acquire();
	long long start = tp_mono_ms();
	int tls, err, sent;

	if (job_refused(j, g, start)) {
		gen_release(g);
		return;
	}
	if (q->opts & TP_POOL_HAS_PEERNAME) {
		pp = peer;
		plen = q->peername_len < sizeof(peer) ? q->peername_len
		                                      : sizeof(peer);
	}
	j->deadline = start + g->cfg->handshake_timeout_ms;
	tp_cred_act_for(&j->c.who);
	if (q->role == 1)
		tls = starttls_ctx_server(
		        g->ctx, j->fd, q->proto, myname, (int)q->flags,
		        q->opts & TP_POOL_HAS_CHECKSNI ? ask_sni : NULL, j, pp,
		        plen);
	else
		tls = starttls_ctx_client(
		        g->ctx, j->fd, q->proto, myname, (int)q->flags,
		        q->opts & TP_POOL_HAS_SNINAME ? q->sniname : NULL, pp,
		        plen);
	err = errno;
	tp_cred_act_for(NULL);
	sent = reply_and_log(j, tls, err, peer, start);
	conn_done(&j->c, sent);
	gen_release(g);
}

void work_run(const struct client *c, const struct tp_pool_request *q, int fd,
              long long waited_ms)
{
	struct job j;
	struct tp_pool_msg m;
	struct gen *g;

	memset(&j, 0, sizeof(j));
	j.c = *c;
	j.q = *q;
	j.fd = fd;
	j.queued = tp_mono_ms() - waited_ms;
	/* the client bounds its wait by its own timeout; it hears ours only
	 * when ours is longer (pool.c) */
	g = gen_acquire();
	memset(&m, 0, sizeof(m));
	m.version = c->version;
	m.type = TP_POOL_ACCEPTED;
	m.u.timeout_ms = g->cfg->handshake_timeout_ms;
	gen_release(g);
	if (m.u.timeout_ms > q->timeout_ms &&
	    tp_pool_send(c->fd, &m, -1) != 0) {
		refuse_job(&j, ECONNRESET, STARTTLS_ERR_CONNECTION,
		           "the client went away before its call ran");
		return;
	}
	run_job(&j);
}

/* A worker: the connections' requests as they come (main.c), until the
 * daemon stops. */
static void *worker(void *arg)
{
	(void)arg;
	trace_buf = malloc(TP_POOL_TRACE_MAX);
	while (conn_serve() == 0)
		;
	free(trace_buf);
	trace_buf = NULL;
	return NULL;
}

int work_start(unsigned nthreads)
{
	workers = calloc(nthreads, sizeof(*workers));
	if (workers == NULL)
		return -1;
	for (nworkers = 0; nworkers < nthreads; nworkers++) {
		int r = pthread_create(&workers[nworkers], NULL, worker, NULL);

		if (r != 0) {
			errno = r;
			return -1;
		}
	}
	return 0;
}

void work_stop(void)
{
	for (unsigned k = 0; k < nworkers; k++)
		pthread_join(workers[k], NULL);
	free(workers);
	workers = NULL;
	nworkers = 0;
}
