/*
 * The LDAP step's connection (ldap_int.h): the directory's addresses, a
 * TCP connection made here and bounded by the deadline (libldap's own
 * connect is not used: ldapcheck.c), and the watchdog that shuts the
 * socket down at the deadline, with SIGPIPE blocked meanwhile.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dtls.h"
#include "ldap_int.h"

/* --- 2. the connection ---------------------------------------------------- */

struct addr {
	struct sockaddr_storage sa;
	socklen_t len;
	char text[64];
};

static void add_addrs(const tlspool_dns_answer *a, unsigned port,
                      struct addr *out, size_t *n)
{
	size_t i;

	if (a == NULL || (a->verdict != TLSPOOL_DNS_SECURE &&
	                  a->verdict != TLSPOOL_DNS_INSECURE))
		return;
	for (i = 0; i < a->nrr && *n < MAX_ADDRS; i++) {
		struct addr *d = &out[*n];

		memset(d, 0, sizeof(*d));
		if (a->qtype == TLSPOOL_RR_A && a->rr[i].rdlen == 4) {
			struct sockaddr_in *s = (struct sockaddr_in *)&d->sa;

			s->sin_family = AF_INET;
			s->sin_port = htons((uint16_t)port);
			memcpy(&s->sin_addr, a->rr[i].rdata, 4);
			d->len = sizeof(*s);
			inet_ntop(AF_INET, &s->sin_addr, d->text,
			          sizeof(d->text));
		} else if (a->qtype == TLSPOOL_RR_AAAA &&
		           a->rr[i].rdlen == 16) {
			struct sockaddr_in6 *s = (struct sockaddr_in6 *)&d->sa;

			s->sin6_family = AF_INET6;
			s->sin6_port = htons((uint16_t)port);
			memcpy(&s->sin6_addr, a->rr[i].rdata, 16);
			d->len = sizeof(*s);
			inet_ntop(AF_INET6, &s->sin6_addr, d->text,
			          sizeof(d->text));
		} else {
			continue;
		}
		(*n)++;
	}
}

/* One connection attempt, bounded by the deadline: the fd or -1. */
static int connect_one(struct run *r, const struct addr *a, int *err)
{
	int fd = socket(a->sa.ss_family,
	                SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	socklen_t el = sizeof(*err);
	long long ms;

	if (fd < 0) {
		*err = errno;
		return -1;
	}
	if (connect(fd, (const struct sockaddr *)&a->sa, a->len) != 0) {
		struct pollfd p = {fd, POLLOUT, 0};

		if (errno != EINPROGRESS) {
			*err = errno;
			goto bad;
		}
		ms = tp_ldap_left(r);
		if (ms <= 0 ||
		    poll(&p, 1, (int)(ms > 60000 ? 60000 : ms)) <= 0) {
			*err = ETIMEDOUT;
			goto bad;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, err, &el) != 0 ||
		    *err != 0)
			goto bad;
	}
	/* libldap expects a blocking socket; the watchdog bounds it */
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0) {
		*err = errno;
		goto bad;
	}
	return fd;
bad:
	close(fd);
	return -1;
}

int tp_ldap_connect_any(struct run *r, const char *host, unsigned port)
{
	tlspool_dns_answer *a4 = NULL, *a6 = NULL;
	struct addr addrs[MAX_ADDRS];
	size_t n = 0, i;
	int fd = -1, err = 0;

	if (tp_ldap_dns_lookup(r, host, TLSPOOL_RR_A, &a4) != 0)
		return -1;
	add_addrs(a4, port, addrs, &n);
	if (tp_ldap_dns_lookup(r, host, TLSPOOL_RR_AAAA, &a6) != 0) {
		tlspool_dns_answer_free(a4);
		return -1;
	}
	add_addrs(a6, port, addrs, &n);
	tlspool_dns_answer_free(a4);
	tlspool_dns_answer_free(a6);
	if (n == 0)
		return tp_ldap_fail(
		        r, STARTTLS_LDAP_UNREACHABLE, EKEYREJECTED,
		        STARTTLS_ERR_DIRECTORY_UNREACHABLE,
		        "%s: no address (A, AAAA) for the directory", host);
	for (i = 0; i < n && fd < 0; i++) {
		fd = connect_one(r, &addrs[i], &err);
		if (fd >= 0)
			snprintf(r->st->pub.address, sizeof(r->st->pub.address),
			         "%s", addrs[i].text);
	}
	if (fd >= 0)
		return fd;
	if (tp_ldap_left(r) <= 0)
		return tp_ldap_time_up(r, host);
	return tp_ldap_fail(r, STARTTLS_LDAP_UNREACHABLE, EKEYREJECTED,
	                    STARTTLS_ERR_DIRECTORY_UNREACHABLE,
	                    "%s port %u (%s): %s", host, port,
	                    addrs[n - 1].text, strerror(err));
}

/* --- the watchdog and SIGPIPE -------------------------------------------- */

static void *watch(void *arg)
{
	struct watchdog *w = arg;

	pthread_mutex_lock(&w->mu);
	while (!w->stop) {
		long long now = tp_mono_ms();
		struct timespec ts;

		if (now >= w->deadline) {
			shutdown(w->fd, SHUT_RDWR);
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += (time_t)((w->deadline - now) / 1000);
		ts.tv_nsec += (long)((w->deadline - now) % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&w->cv, &w->mu, &ts);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

int tp_ldap_watch_start(struct watchdog *w, int fd, long long deadline)
{
	pthread_condattr_t ca;
	sigset_t all, old;

	memset(w, 0, sizeof(*w));
	w->fd = fd;
	w->deadline = deadline;
	pthread_mutex_init(&w->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cv, &ca);
	pthread_condattr_destroy(&ca);
	/* the application's signals are not for this thread */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	w->started = pthread_create(&w->th, NULL, watch, w) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return w->started ? 0 : -1;
}

void tp_ldap_watch_stop(struct watchdog *w)
{
	if (w->started) {
		pthread_mutex_lock(&w->mu);
		w->stop = 1;
		pthread_cond_signal(&w->cv);
		pthread_mutex_unlock(&w->mu);
		pthread_join(w->th, NULL);
	}
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
}

void tp_ldap_nopipe_begin(struct nopipe *np)
{
	sigset_t s, p;

	sigemptyset(&s);
	sigaddset(&s, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &s, &np->old);
	sigpending(&p);
	np->pending = sigismember(&p, SIGPIPE);
}

void tp_ldap_nopipe_end(struct nopipe *np)
{
	sigset_t s, p;
	struct timespec zero = {0, 0};

	sigemptyset(&s);
	sigaddset(&s, SIGPIPE);
	sigpending(&p);
	if (!np->pending && sigismember(&p, SIGPIPE))
		sigtimedwait(&s, NULL, &zero); /* ours: take it back */
	pthread_sigmask(SIG_SETMASK, &np->old, NULL);
}
