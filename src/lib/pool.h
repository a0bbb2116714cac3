/*
 * The pool: the wire protocol between libtlspool and tlspoold(8), and the
 * library's side of it.  With TLSPOOL_SOCKET set, or [pool] socket in the
 * call's configuration, a call is handed whole to the daemon over a Unix
 * SOCK_SEQPACKET socket: the descriptor travels with SCM_RIGHTS, the
 * daemon runs the handshake, validation, authorization and relay with its
 * own keys, and the plaintext descriptor comes back the same way.
 *
 * Every message is one SOCK_SEQPACKET record: a 12-octet header (magic
 * "TLSP", version, type, body length, big-endian) and a body of the fixed
 * length of its type; only the reply ends with a trace of a length it
 * states (pool_trace.c), at most TP_POOL_TRACE_MAX.  Names are fixed
 * fields, NUL-terminated and padded with NULs.  tlspoold(8), PROTOCOL,
 * describes the layout; the decoder below checks all of it.
 */
#ifndef TLSPOOL_POOL_H
#define TLSPOOL_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "lib.h"

#define TP_POOL_MAGIC 0x544c5350u /* "TLSP" */
/* 2: the reply carries the call's trace; 3: the connection stays for the
 * next call after a reply (a daemon of 3 still serves 2, one call a
 * connection) */
#define TP_POOL_VERSION     3
#define TP_POOL_VERSION_MIN 2
#define TP_POOL_HEADER      12
#define TP_POOL_TRACE_MAX   65536
/* larger than any message: a reply with the largest trace */
#define TP_POOL_MAX (TP_POOL_HEADER + 3 * 4 + 320 + 512 + 4 + TP_POOL_TRACE_MAX)
/* Every message but a reply with its trace fits in this many octets. */
#define TP_POOL_SMALL 1024

/* The fixed fields, in octets, their NUL included. */
#define TP_POOL_NAME   320 /* myname, the peer's identity */
#define TP_POOL_SNI    256 /* sniname, the SNI a client sent */
#define TP_POOL_DETAIL 512 /* starttls_errstr() */
#define TP_POOL_END    160 /* starttls_end_info.detail */

enum tp_pool_type {
	TP_POOL_REQUEST = 1, /* library -> daemon, with the fd */
	TP_POOL_ACCEPTED,    /* daemon: its longer handshake_timeout_ms */
	TP_POOL_SNI_ASK,     /* daemon: the client's SNI, for checksni */
	TP_POOL_SNI_VERDICT, /* library: checksni's answer */
	TP_POOL_REPLY,       /* daemon: the result, with the fd on success */
	TP_POOL_END_ASK,     /* library: starttls_end(), with the fd */
	TP_POOL_END_REPLY    /* daemon: the relay's record */
};

/* tp_pool_request.opts */
#define TP_POOL_HAS_MYNAME   0x01
#define TP_POOL_HAS_SNINAME  0x02
#define TP_POOL_HAS_PEERNAME 0x04
#define TP_POOL_HAS_CHECKSNI 0x08

struct tp_pool_request {
	uint32_t role; /* 0 client, 1 server */
	int32_t proto;
	uint32_t flags; /* STARTTLS_*, checked by the call */
	uint32_t opts;  /* TP_POOL_HAS_* */
	uint32_t peername_len;
	uint32_t timeout_ms; /* the application's handshake_timeout_ms */
	char myname[TP_POOL_NAME];
	char sniname[TP_POOL_SNI];
};

struct tp_pool_reply {
	int32_t result; /* 0, or -1 */
	int32_t err;    /* errno of a failure */
	uint32_t cls;   /* starttls_class */
	char peer[TP_POOL_NAME];
	char detail[TP_POOL_DETAIL]; /* also a success's warning */
	/* starttls_last_trace() of the call, encoded (pool_trace.c), 0 to
	 * TP_POOL_TRACE_MAX octets: the encoder's to give, the decoder's
	 * copy (tp_pool_msg_clear() frees it). */
	uint32_t trace_len;
	unsigned char *trace;
};

struct tp_pool_end_reply {
	int32_t result, err;
	uint32_t kind; /* starttls_end_kind */
	int32_t alert;
	uint64_t bytes_in, bytes_out;
	char detail[TP_POOL_END];
};

struct tp_pool_msg {
	enum tp_pool_type type;
	/* TP_POOL_VERSION_MIN to TP_POOL_VERSION: the decoder's is the
	 * header's; the encoder's 0 is TP_POOL_VERSION */
	unsigned version;
	union {
		struct tp_pool_request req;
		uint32_t timeout_ms;   /* ACCEPTED: 1 to 3600000 */
		char sni[TP_POOL_SNI]; /* SNI_ASK */
		uint32_t accept;       /* SNI_VERDICT: 0 or 1 */
		struct tp_pool_reply reply;
		struct tp_pool_end_reply end;
	} u;
};

/* The octets of m into buf: its length, or 0 when len is too short or m
 * is not a message of this version (the decoder's rules). */
size_t tp_pool_encode(const struct tp_pool_msg *m, unsigned char *buf,
                      size_t len);

/* One message from buf: 0, or -1 with errno EPROTO (EPROTONOSUPPORT for
 * another version) and the reason in why. */
int tp_pool_decode(const unsigned char *buf, size_t len, struct tp_pool_msg *m,
                   char *why, size_t whylen);

/* Free what tp_pool_decode() allocated in m (a reply's trace). */
void tp_pool_msg_clear(struct tp_pool_msg *m);

/* The trace t as the reply carries it, into buf: its length, 0 for an
 * empty trace; what does not fit in len (the top of the chain) is left
 * out and said so. */
size_t tp_pool_trace_encode(const starttls_trace *t, unsigned char *buf,
                            size_t len);
/* NULL when p is a trace by every rule of the layout, else the rule. */
const char *tp_pool_trace_check(const unsigned char *p, size_t len);
/* The trace p becomes this thread's starttls_last_trace() (after
 * tp_trace_reset()): 0, or -1 with errno EPROTO or ENOMEM. */
int tp_pool_trace_load(const unsigned char *p, size_t len);

/* Does a message of this type carry a descriptor?  1 must, 0 must not. */
int tp_pool_carries_fd(const struct tp_pool_msg *m);

/* Send m, with fd (-1: none) by SCM_RIGHTS; never SIGPIPE.  0, or -1
 * with errno. */
int tp_pool_send(int sock, const struct tp_pool_msg *m, int fd);

/*
 * Receive one message, waiting until deadline (tp_mono_ms(); -1 without
 * bound, 0 not at all).  *fd gets the descriptor it carried (close-on-
 * exec), or -1.  1 for a message, 0 for the end of the connection, or -1
 * with errno: ETIMEDOUT, EAGAIN (deadline 0 and nothing there), EPROTO
 * (why says it: a malformed message, a descriptor where none belongs or
 * none where one must be; any descriptor that came is closed), or that
 * of recvmsg().
 */
int tp_pool_recv(int sock, struct tp_pool_msg *m, int *fd, long long deadline,
                 char *why, size_t whylen);
/* The same for a side that takes no reply (the daemon): a message longer
 * than TP_POOL_SMALL fails with EPROTO; nothing is allocated.  With
 * waited_ms: how long ago the message arrived when sock has SO_TIMESTAMPNS
 * (else 0). */
int tp_pool_recv_small(int sock, struct tp_pool_msg *m, int *fd,
                       long long deadline, char *why, size_t whylen,
                       long long *waited_ms);

/* --- the library's side ---------------------------------------------- */

/* The socket of the pool for a call with configuration cfg (NULL: not
 * read): TLSPOOL_SOCKET, else [pool] socket; NULL to run in the process,
 * and always NULL in tlspoold itself (tp_pool_serving()). */
const char *tp_pool_socket(const struct tp_config *cfg);

/* Its two halves, for a caller that asks the environment once:
 * TLSPOOL_SOCKET alone, [pool] socket alone. */
const char *tp_pool_socket_env(void);
const char *tp_pool_socket_cfg(const struct tp_config *cfg);

/* tlspoold: this process is the pool; its own calls run in it. */
void tp_pool_serving(void);
/* Is it?  (The relay then hands ends to other processes.) */
int tp_pool_is_serving(void);

/* What the call hands to the pool (starttls.c fills it). */
struct tp_pool_args {
	int server, fd, proto, flags;
	const char *myname, *sniname; /* NULL: not given */
	int (*checksni)(char *);      /* the seed API's filter, or */
	starttls_sni_fn *checksni_fn; /* the context API's, with */
	void *checksni_arg;           /* its user pointer */
	char *peername;
	size_t peername_len;
	unsigned timeout_ms; /* the application's handshake_timeout_ms, or
	                        0: 10000 */
};

/*
 * The call, run by the daemon at sock.  Consumes a->fd in every case.
 * The plaintext descriptor, or -1 with errno, the detail and the class as
 * the daemon's call left them; the pool's own failures: ECONNREFUSED (no
 * daemon listens at sock, or the socket is missing), EACCES (the socket's
 * permissions), ECONNRESET (the daemon went away during the call),
 * ETIMEDOUT (no answer in time) and EPROTO (it does not speak this
 * protocol).
 */
int tp_pool_call(const char *sock, const struct tp_pool_args *a);

/* starttls_end() for a descriptor that the pool relays: asks the daemon of
 * the process's last pooled call, else the one at TLSPOOL_SOCKET.  0, or
 * -1 with errno ENOENT (no pool, or the daemon does not know fd's
 * connection, or it is another user's). */
int tp_pool_end(int fd, starttls_end_info *info);

/* The idle connections to the daemon this process keeps (tlspoold(8),
 * PROTOCOL): at most TP_POOL_IDLE_MAX, each for TP_POOL_IDLE_MS after its
 * last call (the daemon keeps one TP_POOL_DAEMON_IDLE_MS). */
#define TP_POOL_IDLE_MAX       8
#define TP_POOL_IDLE_MS        30000
#define TP_POOL_DAEMON_IDLE_MS 60000
/* Close them all now (tests; the process's own business otherwise). */
void tp_pool_forget(void);
/* How many there are (tests). */
size_t tp_pool_idle_count(void);

/* The configuration of a context (defined in starttls.c), for
 * tlspoold. */
const struct tp_config *tp_ctx_config(const starttls_ctx *ctx);

#endif
