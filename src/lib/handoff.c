/*
 * The process's relay engine (relay.h): one per process, started by the
 * first call that hands a connection over, flushed at exit, and started
 * afresh in a child made by fork() (which has none of its threads).
 */
#include <pthread.h>
#include <stdlib.h>

#include "runtime.h"
#include "handoff.h"

static pthread_mutex_t relay_lock = PTHREAD_MUTEX_INITIALIZER;
static tp_relay *relay;

/* At exit, what the application wrote and closed still goes out, with
 * close_notify (bounded: a peer that reads nothing cannot hold the
 * process). */
static void flush_at_exit(void)
{
	tp_relay_flush(relay, 5000);
}

/* A relayed session's credentials belong to its configuration, which is
 * held until the session is gone (see run()). */
static void release_runtime(void *rt)
{
	tp_runtime_release(rt);
}

/* A child made by fork() has none of the relay's threads: it starts a
 * relay of its own on its first call.  (The parent's relayed descriptors
 * stay open in the child until it exits, as with any fork.) */
/* volatile: written only, it must still exist for leak checkers to see */
static tp_relay *volatile parents_relay;

static void forget_relay(void)
{
	parents_relay = relay;
	relay = NULL;
	pthread_mutex_init(&relay_lock, NULL);
}

static void register_atfork(void)
{
	pthread_atfork(NULL, NULL, forget_relay);
}

tp_relay *tp_process_relay(unsigned nthreads)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	tp_relay *r;

	pthread_once(&once, register_atfork);
	pthread_mutex_lock(&relay_lock);
	if (relay == NULL) {
		relay = tp_relay_new(nthreads);
		if (relay != NULL) {
			tp_relay_set_release_hook(relay, release_runtime);
			atexit(flush_at_exit);
		}
	}
	r = relay;
	pthread_mutex_unlock(&relay_lock);
	return r;
}
