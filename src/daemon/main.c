/*
 * tlspoold: start-up and the event loop (tlspoold(8)).
 *
 * Start-up, in this order: read the configuration (as root, when started
 * so); take the listening socket from systemd (LISTEN_FDS) or bind [pool]
 * socket; become [pool] user (initgroups, setresgid, setresuid) before
 * any key, trust anchor, cache or PIN file is read, so those belong to
 * that user; start the workers (work.c).  Keys are read on first use by
 * the workers, as the user.
 *
 * One thread runs the loop: an epoll set of the listening socket and a
 * signalfd (SIGHUP reloads, SIGTERM and SIGINT stop); it accepts, and
 * closes the connections that send nothing in time.  The workers (work.c)
 * wait on a second epoll set, of the connections that have no call in
 * flight (EPOLLONESHOT): the worker woken by a request reads it, checks
 * it (pool.c) and runs the call itself, then arms the connection again
 * for its next request (protocol 3; conn_done()) or closes it (protocol
 * 2, or an exchange that went wrong).  No thread hands a request to
 * another.  A connection has at most one call in flight; its credentials
 * are those of its connect().  A new connection that sends nothing for
 * REQUEST_WAIT_MS is closed, an idle one after IDLE_MS, as is one that
 * sends anything but a request (after a failure reply that says why).
 * A request that waited longer than handshake_timeout_ms for a worker
 * (its arrival: SO_TIMESTAMPNS) is refused without running.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "dtls.h"
#include "handoff.h"
#include "tlspoold.h"

#define DEFAULT_SOCKET "/run/tlspool/socket"
#define DEFAULT_USER   "tlspool"
/* A client that connected sends its request within this. */
#define REQUEST_WAIT_MS 5000
/* A connection idle after a call: closed after this (the library keeps
 * one half as long, TP_POOL_IDLE_MS). */
#define IDLE_MS TP_POOL_DAEMON_IDLE_MS
/* At most this many connections without a call in flight: when a new one
 * comes, the longest idle goes (an application finds it closed and
 * connects again); with none idle, the new one is refused. */
#define PENDING_MAX 1024
/* The loop's longest sleep. */
#define BACK_SWEEP_MS 1000
/* SIGTERM: how long relayed connections get to end on their own. */
#define STOP_WAIT_MS 5000
/* Out of descriptors: the listening socket rests this long. */
#define ACCEPT_PAUSE_MS 100

struct pending {
	struct client c;
	long long since; /* connected, or its last answer */
	int listed;      /* on the list: no call in flight */
	int cut;         /* shut down by the loop: its worker closes it */
	long long early; /* accepted with its request there: then, else 0 */
	struct pending *prev, *next;
};

static const char *config_path;
static char sock_path[108];
static int own_socket; /* bound here, not given by systemd: unlinked */
/* ep: the loop's (the listening socket, signals); cep: the workers'
 * (the connections, and stopfd) */
static int ep = -1, cep = -1, lfd = -1, sfd = -1, stopfd = -1;
static pthread_mutex_t plock = PTHREAD_MUTEX_INITIALIZER;
static struct pending *pendings; /* under plock */
static size_t npending;          /* under plock: listed, not cut */
static atomic_int stopping;
static char tag_listen, tag_signal, tag_stop; /* epoll data of the three */
static long long accept_paused; /* until then (tp_mono_ms()), or 0 */

static void usage(FILE *fp)
{
	fprintf(fp,
	        "usage: tlspoold [-t] [-c file]\n"
	        "  -c file  the configuration (default: $TLSPOOL_CONFIG, "
	        "else %s/tlspool.conf)\n"
	        "  -t       check the configuration and exit\n"
	        "  -V       the version\n",
	        TLSPOOL_SYSCONFDIR);
}

/* --- start-up -------------------------------------------------------------
 */

/* As many descriptors as the hard limit allows: each connection in a call
 * holds three, each relayed one two. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* systemd's socket (sd_listen_fds(3)): fd 3 when LISTEN_PID is ours. */
static int activated_socket(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	int type = 0, listening = 0;
	socklen_t len = sizeof(type);

	if (pid == NULL || fds == NULL || atol(pid) != (long)getpid() ||
	    atoi(fds) < 1)
		return -1;
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if (getsockopt(3, SOL_SOCKET, SO_TYPE, &type, &len) != 0 ||
	    type != SOCK_SEQPACKET) {
		lp_log("the socket from systemd is not a SOCK_SEQPACKET socket "
		       "(ListenSequentialPacket=)");
		exit(1);
	}
	len = sizeof(listening);
	if (getsockopt(3, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 ||
	    !listening) {
		lp_log("the socket from systemd does not listen");
		exit(1);
	}
	fcntl(3, F_SETFD, FD_CLOEXEC);
	fcntl(3, F_SETFL, fcntl(3, F_GETFL) | O_NONBLOCK);
	return 3;
}

/* Our own socket at path, mode 0666 (who may do what is the ACL's
 * business); a stale socket is replaced, a live one is not. */
static int bind_socket(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int s, probe;

	if (strlen(path) >= sizeof(sa.sun_path) || path[0] != '/') {
		lp_log("[pool] socket %s: not an absolute path of at most %zu "
		       "octets",
		       path, sizeof(sa.sun_path) - 1);
		exit(1);
	}
	strcpy(sa.sun_path, path);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			lp_log("%s exists and is not a socket", path);
			exit(1);
		}
		probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		if (probe >= 0 &&
		    connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			lp_log("another tlspoold listens at %s", path);
			exit(1);
		}
		if (probe >= 0)
			close(probe);
		unlink(path);
	}
	s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    chmod(path, 0666) != 0 || listen(s, SOMAXCONN) != 0) {
		lp_log("%s: %s", path, strerror(errno));
		exit(1);
	}
	own_socket = 1;
	return s;
}

/* Become [pool] user: its groups, then its IDs, for good. */
static void switch_user(const char *configured)
{
	const char *name = configured[0] ? configured : DEFAULT_USER;
	struct passwd *pw = getpwnam(name);

	if (geteuid() != 0) {
		if ((pw != NULL && pw->pw_uid == geteuid()) ||
		    configured[0] == '\0')
			return; /* not root: it runs as who started it */
		lp_log("started as uid %u, not root: cannot become [pool] "
		       "user %s",
		       (unsigned)geteuid(), name);
		exit(1);
	}
	if (pw == NULL) {
		lp_log("[pool] user %s: no such user (make install-daemon "
		       "creates \"%s\")",
		       name, DEFAULT_USER);
		exit(1);
	}
	if (pw->pw_uid == 0) {
		lp_log("[pool] user %s is root: the pool runs as a user of its "
		       "own",
		       name);
		exit(1);
	}
	if (initgroups(pw->pw_name, pw->pw_gid) != 0 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) != 0 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) != 0) {
		lp_log("becoming %s: %s", name, strerror(errno));
		exit(1);
	}
	if (setresuid(0, 0, 0) == 0 || geteuid() == 0) {
		lp_log("becoming %s: root could be regained", name);
		exit(1);
	}
	/* no core dumps of the keys, no ptrace by the user's other
	 * processes */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

/* Identities without an ACL serve only root through the pool (cred.h):
 * say so at start and reload, not only when a call fails. */
static void warn_open(const struct tp_config *cfg)
{
	for (size_t k = 0; k < cfg->nids; k++)
		if (!cfg->ids[k].acl)
			lp_log("[identity %s] has no allow_users or "
			       "allow_groups: through the pool only root may "
			       "use it",
			       cfg->ids[k].name);
}

/* --- connections ----------------------------------------------------------
 */

/* The client's supplementary groups at connect(): SO_PEERGROUPS (Linux
 * 4.13), else the group database's for its uid. */
static void peer_groups(int fd, struct tp_caller *who)
{
	socklen_t len = sizeof(who->groups);
	struct passwd *pw;
	int n = TP_MAX_GROUPS;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, who->groups, &len) == 0) {
		who->ngroups = len / sizeof(gid_t);
		return;
	}
	if (errno == ERANGE) {
		gid_t *all = malloc(len);

		if (all != NULL &&
		    getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, all, &len) == 0) {
			/* one left out can only make a check fail */
			who->ngroups = TP_MAX_GROUPS;
			memcpy(who->groups, all, sizeof(who->groups));
		}
		free(all);
		return;
	}
	pw = getpwuid(who->uid);
	if (pw != NULL &&
	    getgrouplist(pw->pw_name, who->gid, who->groups, &n) >= 0)
		who->ngroups = (size_t)n;
}

/*
 * The connections without a call in flight are listed (under plock) and
 * armed in the workers' epoll set with EPOLLONESHOT: the worker that gets
 * a connection's event owns it until it gives it back (conn_done()), and
 * only that worker frees it.  The loop never frees a connection that may
 * have an event on its way to a worker: to close one (it sent nothing in
 * time, or room is made for a new one) it shuts it down and marks it cut;
 * the shutdown raises its event, and the worker that takes it closes it.
 */

/* p onto the list; under plock. */
static void plist(struct pending *p)
{
	p->prev = NULL;
	p->next = pendings;
	if (pendings != NULL)
		pendings->prev = p;
	pendings = p;
	p->listed = 1;
	if (!p->cut)
		npending++;
}

/* p off the list; under plock. */
static void punlist(struct pending *p)
{
	if (!p->listed)
		return;
	if (p->prev != NULL)
		p->prev->next = p->next;
	else
		pendings = p->next;
	if (p->next != NULL)
		p->next->prev = p->prev;
	p->prev = p->next = NULL;
	p->listed = 0;
	if (!p->cut)
		npending--;
}

/* Listed p closed by the loop: shut down now, closed and freed by the
 * worker that takes its event; under plock. */
static void cut(struct pending *p)
{
	p->cut = 1;
	npending--;
	shutdown(p->c.fd, SHUT_RDWR);
}

/* Something to read on fd (a request that came just now)? */
static int readable(int fd)
{
	char b;

	return recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

/* p armed in the workers' set again, listed: 0, or -1 (p is closed and
 * freed). */
static int rearm(struct pending *p, int add)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT,
	                         .data.ptr = p};

	pthread_mutex_lock(&plock);
	plist(p);
	pthread_mutex_unlock(&plock);
	/* armed after it is listed: the worker that takes its event finds
	 * it on the list */
	if (epoll_ctl(cep, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, p->c.fd, &ev) !=
	    0) {
		pthread_mutex_lock(&plock);
		punlist(p);
		pthread_mutex_unlock(&plock);
		close(p->c.fd);
		free(p);
		return -1;
	}
	return 0;
}

/*
 * The worker gives the connection back: with ok (the answer went out)
 * and version 3 it is armed for c's next message, else closed.  The
 * next request's event may come to any worker.
 */
void conn_done(const struct client *c, int ok)
{
	struct pending *p = c->conn;

	if (!ok || c->broken || c->version < 3 || p == NULL ||
	    atomic_load(&stopping)) {
		close(c->fd);
		free(p);
		return;
	}
	p->c = *c;
	p->c.calls++;
	p->since = tp_mono_ms();
	rearm(p, 0);
}

/* The connection idle longest, to make room: 1 when one went; under
 * plock. */
static int drop_oldest_idle(void)
{
	struct pending *old = NULL;
	char who[64];

	for (struct pending *p = pendings; p != NULL; p = p->next)
		if (!p->cut && p->c.calls > 0 &&
		    (old == NULL || p->since < old->since) &&
		    !readable(p->c.fd))
			old = p;
	if (old == NULL)
		return 0;
	lp_log("%s: idle after %u calls, closed for a new connection (%d "
	       "without a call in flight)",
	       lp_who(&old->c, who, sizeof(who)), old->c.calls, PENDING_MAX);
	cut(old);
	return 1;
}

/*
 * A worker's connection with something to read: its request (or
 * starttls_end() question) served, or its end.
 */
static void take(struct pending *p)
{
	struct tp_pool_msg m;
	struct client c = p->c;
	struct stat st;
	char why[160], who[64], detail[300];
	long long waited_ms = 0;
	int fd, r;

	r = tp_pool_recv_small(c.fd, &m, &fd, 0, why, sizeof(why), &waited_ms);
	if (r < 0 && errno == EAGAIN) {
		rearm(p, 0); /* nothing after all */
		return;
	}
	if (p->early > 0 && tp_mono_ms() - p->early > waited_ms)
		waited_ms = tp_mono_ms() - p->early;
	p->early = 0;
	/* from here c.fd is ours to pass on or close, and p goes with it */
	c.conn = p;
	c.broken = 0;
	if (r == 1)
		c.version = m.version; /* the answer's */
	lp_who(&c, who, sizeof(who));
	if (r == 0) {
		if (c.calls == 0)
			lp_log("%s: closed without a request", who);
		else
			lp_log("%s: closed by the client after %u call%s", who,
			       c.calls, c.calls == 1 ? "" : "s");
		close(c.fd);
		free(p);
		return;
	}
	if (r < 0) {
		snprintf(detail, sizeof(detail), "tlspoold: %s",
		         why[0] ? why : strerror(errno));
		lp_log("%s: refused: %s", who, detail);
		work_refuse(&c, EPROTO, STARTTLS_ERR_INTERNAL, detail);
		close(c.fd);
		free(p);
		return;
	}
	if (m.type == TP_POOL_END_ASK) {
		work_end(&c, fd);
		return;
	}
	if (m.type != TP_POOL_REQUEST) {
		tp_pool_msg_clear(&m);
		lp_log("%s: refused: a message of type %d first", who,
		       (int)m.type);
		work_refuse(&c, EPROTO, STARTTLS_ERR_INTERNAL,
		            "tlspoold: a call starts with a request");
		close(c.fd);
		free(p);
		return;
	}
	if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) {
		/* no call on it: a client cannot make the daemon read or
		 * write its files */
		snprintf(detail, sizeof(detail), "fd is not a socket (%s)",
		         strerror(ENOTSOCK));
		lp_log("%s: refused: %s", who, detail);
		close(fd);
		conn_done(&c, work_refuse(&c, EINVAL, STARTTLS_ERR_ARGUMENT,
		                          detail) == 0);
		return;
	}
	if (atomic_load(&stopping)) {
		lp_log("%s %s: tlspoold is stopping", who,
		       m.u.req.role ? "server" : "client");
		shutdown(fd, SHUT_RDWR);
		close(fd);
		work_refuse(&c, ECONNRESET, STARTTLS_ERR_CONNECTION,
		            "tlspoold is stopping");
		close(c.fd);
		free(p);
		return;
	}
	work_run(&c, &m.u.req, fd, waited_ms);
}

int conn_serve(void)
{
	struct epoll_event evs[8];
	int stop = atomic_load(&stopping), n, conns = 0;

	/* stopping: what is there already, then no more */
	n = epoll_wait(cep, evs, stop ? 8 : 1, stop ? 0 : -1);
	if (n < 0 && errno == EINTR)
		return 0;
	if (n < 0) {
		lp_log("a worker: epoll_wait: %s; the worker ends",
		       strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		struct pending *p = evs[i].data.ptr;
		int was_cut;

		if (p == (void *)&tag_stop)
			continue;
		conns++;
		pthread_mutex_lock(&plock);
		was_cut = p->cut;
		punlist(p);
		pthread_mutex_unlock(&plock);
		if (was_cut) {
			close(p->c.fd);
			free(p);
		} else {
			take(p);
		}
	}
	return stop && conns == 0 ? -1 : 0;
}

static void accept_all(void)
{
	struct ucred uc;
	socklen_t len;
	struct pending *p;
	int fd, full, on = 1;

	while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >=
	       0) {
		len = sizeof(uc);
		pthread_mutex_lock(&plock);
		if (npending >= PENDING_MAX)
			drop_oldest_idle();
		full = npending >= PENDING_MAX;
		pthread_mutex_unlock(&plock);
		if (full ||
		    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) != 0 ||
		    (p = calloc(1, sizeof(*p))) == NULL) {
			struct client busy = {.fd = fd};
			struct tp_pool_msg m;
			char why[64];
			int cfd;

			lp_log("a connection refused: %d wait for a request "
			       "or a worker",
			       PENDING_MAX);
			/* the client reads why, once its request is read (a
			 * socket closed with something unread resets its
			 * peer); the call's descriptor ends as a failed call
			 * leaves it */
			if (tp_pool_recv_small(fd, &m, &cfd, 0, why,
			                       sizeof(why), NULL) == 1) {
				busy.version = m.version;
				tp_pool_msg_clear(&m);
			}
			if (cfd >= 0) {
				shutdown(cfd, SHUT_RDWR);
				close(cfd);
			}
			work_refuse(&busy, EAGAIN, STARTTLS_ERR_RESOURCES,
			            "tlspoold is busy: too many connections "
			            "wait for a request or a worker");
			close(fd);
			continue;
		}
		p->c.fd = fd;
		p->c.pid = uc.pid;
		p->c.who.uid = uc.uid;
		p->c.who.gid = uc.gid;
		peer_groups(fd, &p->c.who);
		p->since = tp_mono_ms();
		/* each request says when it came: the time it waited for a
		 * worker is bounded.  The option stamps what comes after it;
		 * a request there already waits from now on. */
		setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on));
		p->early = readable(fd) ? p->since : 0;
		rearm(p, 1);
	}
	if ((errno == EMFILE || errno == ENFILE) && accept_paused == 0) {
		/* the socket stays readable: without a rest the loop would
		 * spin until descriptors are free again */
		struct epoll_event off = {.events = 0, .data.ptr = &tag_listen};

		lp_log("out of descriptors (%s): not accepting for %d ms",
		       strerror(errno), ACCEPT_PAUSE_MS);
		epoll_ctl(ep, EPOLL_CTL_MOD, lfd, &off);
		accept_paused = tp_mono_ms() + ACCEPT_PAUSE_MS;
	}
}

/* The listening socket back after its rest; the wait until then (-1:
 * none). */
static int accept_resume(void)
{
	struct epoll_event on = {.events = EPOLLIN, .data.ptr = &tag_listen};
	long long left;

	if (accept_paused == 0)
		return -1;
	left = accept_paused - tp_mono_ms();
	if (left > 0)
		return (int)left;
	accept_paused = 0;
	epoll_ctl(ep, EPOLL_CTL_MOD, lfd, &on);
	return -1;
}

/* Connections that sent nothing in time (a new one its first request,
 * an idle one its next) are cut; the wait until the next one is due (-1:
 * none). */
static int sweep(void)
{
	long long now = tp_mono_ms(), next = -1;
	char who[64];

	pthread_mutex_lock(&plock);
	for (struct pending *p = pendings; p != NULL; p = p->next) {
		long long limit = p->c.calls ? IDLE_MS : REQUEST_WAIT_MS;

		if (p->cut)
			continue;
		if (now - p->since < limit) {
			if (next < 0 || p->since + limit - now < next)
				next = p->since + limit - now;
			continue;
		}
		/* a request that came just now is served, not cut: its
		 * event is on its way to a worker */
		if (readable(p->c.fd))
			continue;
		if (p->c.calls == 0)
			lp_log("%s: no request within %d ms: closed",
			       lp_who(&p->c, who, sizeof(who)),
			       REQUEST_WAIT_MS);
		else
			lp_log("%s: idle for %d ms after %u call%s: closed",
			       lp_who(&p->c, who, sizeof(who)), IDLE_MS,
			       p->c.calls, p->c.calls == 1 ? "" : "s");
		cut(p);
	}
	pthread_mutex_unlock(&plock);
	return (int)next;
}

/* --- signals --------------------------------------------------------------
 */

static void reload(void)
{
	struct gen *old = gen_acquire(), *g;
	char err[600];

	if (gen_load(config_path, err, sizeof(err)) != 0) {
		lp_log("reload: %s; the configuration in use stays", err);
		gen_release(old);
		return;
	}
	g = gen_acquire();
	if (strcmp(old->cfg->pool.socket, g->cfg->pool.socket) != 0 ||
	    strcmp(old->cfg->pool.user, g->cfg->pool.user) != 0 ||
	    old->cfg->pool.threads != g->cfg->pool.threads)
		lp_log("reload: [pool] socket, user and threads take effect "
		       "at the next start");
	if (pin_load(g->cfg, err, sizeof(err)) != 0)
		lp_log("reload: pin_file: %s", err);
	warn_open(g->cfg);
	lp_log("reloaded %s: %zu identities; calls in progress and relayed "
	       "connections keep the configuration they started with",
	       config_path, g->cfg->nids);
	gen_release(g);
	gen_release(old);
}

static void stop(int sig)
{
	tp_relay *r;
	size_t left = 0;
	long long until = tp_mono_ms() + STOP_WAIT_MS;

	lp_log("stopping on %s: no new calls", sigabbrev_np(sig));
	close(lfd);
	if (own_socket && unlink(sock_path) != 0)
		lp_log("%s stays: %s (a new tlspoold replaces it)", sock_path,
		       strerror(errno));
	/* the workers refuse the requests that are there, finish the calls
	 * they run and end; then the connections left are closed */
	atomic_store(&stopping, 1);
	if (write(stopfd, &(uint64_t){1}, sizeof(uint64_t)) < 0)
		lp_log("waking the workers: %s", strerror(errno));
	work_stop();
	for (struct pending *p = pendings, *n; p != NULL; p = n) {
		n = p->next;
		close(p->c.fd);
		free(p);
	}
	pendings = NULL;
	npending = 0;
	/* the process's relay, if a call ever started it (0 threads
	 * starts none) */
	r = tp_process_relay(0);
	while ((left = tp_relay_count(r)) > 0 && tp_mono_ms() < until)
		usleep(100 * 1000);
	lp_log("stopped; %zu relayed connection%s cut without close_notify",
	       left, left == 1 ? "" : "s");
	exit(0); /* the relay flushes what applications closed (handoff.c) */
}

static void on_signal(void)
{
	struct signalfd_siginfo si;

	while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP)
			reload();
		else
			stop((int)si.ssi_signo);
	}
}

/* --- main -----------------------------------------------------------------
 */

static void loop(void)
{
	struct epoll_event evs[64];
	int n, wait;

	for (;;) {
		int rest = accept_resume(), new_ones = 0;

		wait = sweep();
		if (rest >= 0 && (wait < 0 || rest < wait))
			wait = rest;
		/* connections given back during the wait are swept after
		 * it: at most BACK_SWEEP_MS late */
		if (wait < 0 || wait > BACK_SWEEP_MS)
			wait = BACK_SWEEP_MS;
		n = epoll_wait(ep, evs, 64, wait);
		if (n < 0 && errno != EINTR) {
			lp_log("epoll_wait: %s", strerror(errno));
			exit(1);
		}
		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == &tag_listen)
				new_ones = 1;
			else if (evs[i].data.ptr == &tag_signal)
				on_signal();
		}
		if (new_ones)
			accept_all();
	}
}

/* The command line: -1 to go on, else the exit status. */
static int options(int argc, char **argv, int *check)
{
	int opt;

	while ((opt = getopt(argc, argv, "c:tVh")) != -1) {
		switch (opt) {
		case 'c':
			config_path = optarg;
			break;
		case 't':
			*check = 1;
			break;
		case 'V':
			printf("tlspoold %s\n", TLSPOOL_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 1;
	}
	if (config_path == NULL)
		config_path = getenv("TLSPOOL_CONFIG");
	if (config_path == NULL || config_path[0] == '\0')
		config_path = tlspool_config_default_path();
	return -1;
}

/* -t: the configuration loads and names a user that exists. */
static int check_only(const struct tp_pool_conf *pool)
{
	if (geteuid() == 0 &&
	    getpwnam(pool->user[0] ? pool->user : DEFAULT_USER) == NULL) {
		lp_log("[pool] user %s: no such user",
		       pool->user[0] ? pool->user : DEFAULT_USER);
		return 1;
	}
	printf("%s: configuration OK\n", config_path);
	return 0;
}

/* The signals come to the loop only (the workers and the relay's threads
 * inherit this mask), through a signalfd in the loop's epoll set with
 * the listening socket.  0, or -1 with errno. */
static int loop_setup(unsigned threads)
{
	struct epoll_event ev = {.events = EPOLLIN};
	sigset_t sigs;

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	ep = epoll_create1(EPOLL_CLOEXEC);
	cep = epoll_create1(EPOLL_CLOEXEC);
	stopfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (sfd < 0 || ep < 0 || cep < 0 || stopfd < 0)
		return -1;
	/* level-triggered: it wakes every worker, once written */
	ev.data.ptr = &tag_stop;
	if (epoll_ctl(cep, EPOLL_CTL_ADD, stopfd, &ev) != 0 ||
	    work_start(threads) != 0)
		return -1;
	ev.data.ptr = &tag_listen;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	ev.data.ptr = &tag_signal;
	epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
	return 0;
}

int main(int argc, char **argv)
{
	int check = 0, rc;
	char err[600];
	struct gen *g;
	struct tp_pool_conf pool;

	rc = options(argc, argv, &check);
	if (rc >= 0)
		return rc;
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	tp_pool_serving(); /* its own calls run here, never at a pool */
	if (gen_load(config_path, err, sizeof(err)) != 0) {
		lp_log("%s", err);
		return 1;
	}
	g = gen_acquire();
	pool = g->cfg->pool;
	gen_release(g);
	snprintf(sock_path, sizeof(sock_path), "%s",
	         pool.socket[0] ? pool.socket : DEFAULT_SOCKET);
	if (check)
		return check_only(&pool);
	lfd = activated_socket();
	if (lfd < 0)
		lfd = bind_socket(sock_path);
	switch_user(pool.user); /* before any key is read */
	g = gen_acquire();
	if (pin_load(g->cfg, err, sizeof(err)) != 0) {
		lp_log("pin_file: %s", err);
		return 1;
	}
	warn_open(g->cfg);
	gen_release(g);
	if (loop_setup(pool.threads) != 0) {
		lp_log("start: %s", strerror(errno));
		return 1;
	}
	lp_log("listening on %s as uid %u, %u workers, configuration %s",
	       own_socket ? sock_path : "the socket from systemd",
	       (unsigned)geteuid(), pool.threads, config_path);
	loop();
	return 0;
}
