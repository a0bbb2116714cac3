/*
 * tlspoold: the pool that holds the keys (tlspoold(8)).  It is an
 * application of libtlspool with its own configuration: it runs the calls
 * that applications hand it over the Unix socket (pool.h) with its keys,
 * checking each identity's ACL against the caller's peer credentials.
 *
 *   main.c  start-up: the configuration, the socket, the user switch;
 *           the event loop (epoll): accepting, idle connections, signals;
 *           the connections' requests, which the workers wait for
 *   work.c  the configuration in use (reloaded on SIGHUP), the fixed pool
 *           of workers that run the calls, checksni round trips,
 *           starttls_end() for the descriptors it handed out
 *   log.c   one line per event on stderr
 */
#ifndef TLSPOOLD_H
#define TLSPOOLD_H

#include <sys/types.h>

#include "cred.h"
#include "pool.h"

/* A client of the socket, as SO_PEERCRED and SO_PEERGROUPS describe it
 * when it connected. */
struct client {
	int fd;
	pid_t pid;
	struct tp_caller who;
	unsigned version; /* of the message in hand: the answer's (0: ours) */
	unsigned calls;   /* the messages answered on this connection */
	int broken;       /* an exchange went wrong: the connection goes */
	void *conn;       /* main.c's record of it */
};

/* --- main.c --- */

/* The exchange of c's message is over: with ok (the answer went out) and
 * version 3, the connection waits for c's next message again, else it
 * is closed.  Any thread. */
void conn_done(const struct client *c, int ok);

/* A worker's turn: wait for a connection's message and serve it (a call
 * runs in this thread).  0 to go on, -1 when the daemon stops. */
int conn_serve(void);

/* --- log.c --- */

/* One line on stderr, "tlspoold: " first; control characters of the
 * text (names a client sent) shown as '?'. */
void lp_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "uid=U pid=P" of a client, for log lines. */
const char *lp_who(const struct client *c, char *buf, size_t len);

/* --- work.c --- */

/* The configuration in use: a context of libtlspool and its parsed file,
 * reference counted so that a reload never pulls one from a call. */
struct gen {
	starttls_ctx *ctx;
	const struct tp_config *cfg;
	unsigned refs; /* under work.c's lock */
};

/* Load path as the configuration in use: 0, or -1 with err. */
int gen_load(const char *path, char *err, size_t errlen);
struct gen *gen_acquire(void); /* never NULL after gen_load() */
void gen_release(struct gen *g);

/* Start nthreads workers; 0, or -1 with errno. */
int work_start(unsigned nthreads);

/*
 * Run the call of request q from c with its descriptor fd, which arrived
 * waited_ms ago, in this thread: takes both c->fd (given back by
 * conn_done()) and fd.
 */
void work_run(const struct client *c, const struct tp_pool_request *q, int fd,
              long long waited_ms);

/* Answer c's starttls_end() question about fd; closes fd, and c->fd
 * (conn_done()). */
void work_end(const struct client *c, int fd);

/* Send c a failure reply (err, cls, detail): 0, or -1 when it did not
 * go out. */
int work_refuse(const struct client *c, int err, starttls_class cls,
                const char *detail);

/* Wait for every worker to end (main.c told them to stop: the requests
 * there are refused, the running calls end). */
void work_stop(void);

/* The PKCS#11 PIN from [pool] pin_file (read again on reload). */
int pin_load(const struct tp_config *cfg, char *err, size_t errlen);

#endif
