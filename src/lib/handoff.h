/* The process-wide relay engine that calls hand their connections to. */
#ifndef TLSPOOL_HANDOFF_H
#define TLSPOOL_HANDOFF_H

#include "relay.h"

/*
 * The process's relay, started with nthreads on first use (later calls'
 * nthreads are ignored); its sessions release their configuration
 * reference when they end.  NULL with errno if it cannot be started.
 */
tp_relay *tp_process_relay(unsigned nthreads);

#endif
