/*
 * The relay's registry of connections and how each ended, behind
 * starttls_end(); and resetting the application's end when a connection
 * was cut.  The outline of the relay is at the top of relay.c ("Resetting"
 * and what follows it); relay_int.h lists the files.
 *
 * How each connection ended (kind, alert, bytes of plaintext each way) is
 * kept in the connection while it lives, then in a table of the last
 * ENDED_MAX ends, both under reg_mu, found by the st_dev/st_ino of the
 * application's end.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib.h"
#include "pool.h"
#include "relay_int.h"

/* Ends kept for starttls_end() after the connection was released. */
#define ENDED_MAX 1024

/* --- the registry of connections and their ends (starttls_end) --- */

/* An ended connection, for starttls_end(). */
struct ended {
	dev_t dev;
	ino_t ino;
	unsigned long long in, out;
	struct ending how;
};

/* Process-wide, like the relay libtlspool uses.  Protects every
 * connection's aprev/anext and how, and the table. */
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct conn *reg_all;              /* every live connection */
static struct ended reg_ended[ENDED_MAX]; /* a ring, newest at next-1 */
static unsigned reg_next, reg_count;

/* A fork() while a worker holds reg_mu must not leave it locked in the
 * child, whose starttls_end() would hang. */
static void reg_lock(void)
{
	pthread_mutex_lock(&reg_mu);
}

static void reg_unlock(void)
{
	pthread_mutex_unlock(&reg_mu);
}

static void reg_atfork(void)
{
	pthread_atfork(reg_lock, reg_unlock, reg_unlock);
}

void tp_relay_reg_atfork(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, reg_atfork);
}

void tp_relay_reg_add(struct conn *c)
{
	reg_lock();
	c->anext = reg_all;
	if (reg_all != NULL)
		reg_all->aprev = c;
	reg_all = c;
	reg_unlock();
}

/* Off the list, and into the table when it ended in a way the
 * application can ask about (kind OPEN: the application closed it). */
void tp_relay_reg_remove(struct conn *c)
{
	reg_lock();
	if (c->aprev != NULL)
		c->aprev->anext = c->anext;
	else
		reg_all = c->anext;
	if (c->anext != NULL)
		c->anext->aprev = c->aprev;
	if (c->how.kind != STARTTLS_END_OPEN) {
		struct ended *e = &reg_ended[reg_next];

		e->dev = c->app_dev;
		e->ino = c->app_ino;
		e->in = atomic_load_explicit(&c->bytes_in,
		                             memory_order_relaxed);
		e->out = atomic_load_explicit(&c->bytes_out,
		                              memory_order_relaxed);
		e->how = c->how;
		reg_next = (reg_next + 1) % ENDED_MAX;
		if (reg_count < ENDED_MAX)
			reg_count++;
	}
	reg_unlock();
}

/* The first end a connection meets is the one it keeps. */
void tp_relay_set_how(struct conn *c, starttls_end_kind kind, enum why why,
                      int code)
{
	reg_lock();
	if (c->how.kind == STARTTLS_END_OPEN)
		c->how = (struct ending){(unsigned char)kind,
		                         (unsigned char)why, code};
	reg_unlock();
}

/*
 * Connections whose application end is closed (or shut for writing) but
 * whose close_notify has not gone out yet: what would be lost if the
 * process ended now.  poll() on appfd sees the application's close even
 * before the worker has processed it, so there is no race with the
 * worker's own view.
 */
size_t tp_relay_closing(tp_relay *r)
{
	size_t n = 0;
	struct conn *c;

	reg_lock();
	for (c = reg_all; c != NULL; c = c->anext) {
		struct pollfd p = {c->app.fd, POLLRDHUP, 0};

		if (c->w->r == r && !atomic_load(&c->up_done) &&
		    poll(&p, 1, 0) == 1 &&
		    (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
			n++;
	}
	reg_unlock();
	return n;
}

static void describe(starttls_end_info *info, const struct ending *how)
{
	char *d = info->detail;
	size_t n = sizeof(info->detail);
	unsigned long long in = info->bytes_in;

	switch (how->why) {
	case WHY_FIN:
		snprintf(d, n,
		         "the peer closed the connection without close_notify "
		         "after %llu bytes",
		         in);
		break;
	case WHY_ERRNO:
		snprintf(d, n, "%s after %llu bytes: %s",
		         how->kind == STARTTLS_END_TRUNCATED
		                 ? "the connection failed without close_notify"
		                 : "a local error",
		         in, strerror(how->code));
		break;
	case WHY_GNUTLS:
		snprintf(d, n, "TLS error after %llu bytes: %s", in,
		         gnutls_strerror(how->code));
		break;
	case WHY_ALERT:
		snprintf(d, n,
		         "the peer sent the fatal alert \"%s\" (%d) after "
		         "%llu bytes",
		         gnutls_alert_get_name(
		                 (gnutls_alert_description_t)how->code),
		         how->code, in);
		break;
	case WHY_IDLE:
		snprintf(d, n,
		         "no datagram either way for %d ms (the idle timeout) "
		         "after %llu bytes",
		         how->code, in);
		break;
	case WHY_STOPPED:
		snprintf(d, n, "the relay engine was stopped after %llu bytes",
		         in);
		break;
	default:
		if (how->kind == STARTTLS_END_CLOSE_NOTIFY)
			snprintf(d, n,
			         "the peer closed the connection with "
			         "close_notify after %llu bytes",
			         in);
		else
			snprintf(d, n, "open: %llu bytes in, %llu bytes out",
			         in, info->bytes_out);
	}
}

static void fill_info(starttls_end_info *info, const struct ending *how,
                      unsigned long long in, unsigned long long out)
{
	if (info == NULL)
		return;
	memset(info, 0, sizeof(*info));
	info->kind = (starttls_end_kind)how->kind;
	info->alert = how->why == WHY_ALERT ? how->code : 0;
	info->bytes_in = in;
	info->bytes_out = out;
	describe(info, how);
}

int tp_relay_end_info(dev_t dev, ino_t ino, starttls_end_info *info)
{
	struct conn *c;
	int rv = -1;

	reg_lock();
	for (c = reg_all; c != NULL; c = c->anext)
		if (c->app_ino == ino && c->app_dev == dev) {
			fill_info(info, &c->how,
			          atomic_load_explicit(&c->bytes_in,
			                               memory_order_relaxed),
			          atomic_load_explicit(&c->bytes_out,
			                               memory_order_relaxed));
			rv = 0;
			break;
		}
	/* Newest first: an inode number can come back. */
	for (unsigned i = 1; rv < 0 && i <= reg_count; i++) {
		const struct ended *e =
		        &reg_ended[(reg_next + ENDED_MAX - i) % ENDED_MAX];

		if (e->ino == ino && e->dev == dev) {
			fill_info(info, &e->how, e->in, e->out);
			rv = 0;
		}
	}
	reg_unlock();
	if (rv < 0)
		errno = ENOENT;
	return rv;
}

/* The public call (starttls.h): the application's end is found by its
 * st_dev/st_ino, whatever number it has now. */
int starttls_end(int fd, starttls_end_info *info)
{
	struct stat st;

	if (info != NULL)
		memset(info, 0, sizeof(*info));
	if (fstat(fd, &st) < 0)
		return -1; /* EBADF */
	if (!S_ISSOCK(st.st_mode)) {
		errno = ENOENT;
		return -1;
	}
	if (tp_relay_end_info(st.st_dev, st.st_ino, info) == 0)
		return 0;
	/* a connection that tlspoold relays: its daemon knows */
	return tp_pool_end(fd, info);
}

/* --- resetting the application's end --- */

static bool is_app_end(const struct conn *c, int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) &&
	       st.st_ino == c->app_ino && st.st_dev == c->app_dev;
}

/* A duplicate of the application's end, or -1 when it is open nowhere in
 * this process.  Duplicate first, then check: a number closed or reused
 * meanwhile cannot make the relay write into another socket. */
static int app_end_dup(const struct conn *c)
{
	int d = fcntl(c->app_peer, F_DUPFD_CLOEXEC, 0);
	DIR *dir;
	struct dirent *de;

	if (d >= 0 && is_app_end(c, d))
		return d;
	if (d >= 0)
		close(d);
	/* Moved (dup2, a descriptor of its own making): look for it. */
	if ((dir = opendir("/proc/self/fd")) == NULL)
		return -1;
	d = -1;
	while (d < 0 && (de = readdir(dir)) != NULL) {
		struct stat st;
		char *end;
		long n = strtol(de->d_name, &end, 10);

		if (*end != '\0' || end == de->d_name || n < 0 ||
		    n == dirfd(dir) ||
		    fstatat(dirfd(dir), de->d_name, &st, 0) != 0 ||
		    st.st_ino != c->app_ino || st.st_dev != c->app_dev)
			continue;
		d = fcntl((int)n, F_DUPFD_CLOEXEC, 0);
		if (d >= 0 && !is_app_end(c, d)) {
			close(d);
			d = -1;
		}
	}
	closedir(dir);
	return d;
}

/* Make the application's next read fail with ECONNRESET once appfd is
 * closed: appfd must hold a byte it has not read ("Resetting" in relay.c). */
void tp_relay_app_reset(struct conn *c)
{
	int q = 0, d;

	if (c->keep_head || (ioctl(c->app.fd, SIOCINQ, &q) == 0 && q > 0))
		return; /* a kept byte or message, or unread messages */
	if ((d = app_end_dup(c)) < 0)
		return; /* closed, or in another process: EOF */
	(void)send(d, "", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
	close(d);
}

/* A clean end: EOF for the application, and nothing left in appfd that
 * would turn the close into a reset.  Once shut, appfd gets nothing more:
 * a stream's recv() that returns less than it asked for took the rest
 * (usually the kept byte alone: one call); a SOCK_SEQPACKET recv() takes
 * one message.  A stream whose application shut its end for writing (or
 * closed it: c->app_rdhup) gets nothing more already; the close that
 * follows gives its reads EOF and its writes EPIPE as the shutdown would. */
void tp_relay_app_finish(struct conn *c, unsigned char *scratch)
{
	if (c->datagram || !c->app_rdhup)
		shutdown(c->app.fd, SHUT_RDWR);
	for (int i = 0; i < 64; i++) {
		ssize_t n = recv(c->app.fd, scratch, BLOCK, MSG_DONTWAIT);

		if (n <= 0 || (!c->datagram && n < BLOCK))
			break;
	}
}
