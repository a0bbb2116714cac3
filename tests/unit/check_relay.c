/*
 * The relay engine (src/lib/relay.c): real TLS sessions over TCP loopback,
 * handshaken in this process with a certificate made at start-up, handed
 * to a relay; the test plays the application on socketpair ends and, where
 * only one side is relayed, the TLS peer.
 *
 * RELAY_BENCH=1 build/tests/check_relay prints the throughput of 1 GiB
 * through two relays instead of running the tests.
 */
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/x509.h>

#include "lib.h"
#include "relay.h"
#include "testutil.h"

static gnutls_certificate_credentials_t srv_cred, cli_cred;
static const char *priority; /* NULL: the defaults */

/* --- scaffolding --- */

static void make_creds(void)
{
	gnutls_x509_privkey_t key;
	gnutls_x509_crt_t crt;
	unsigned char serial[8] = {0x01, 0x02};
	time_t now = time(NULL);

	if (gnutls_x509_privkey_init(&key) < 0 ||
	    gnutls_x509_privkey_generate(
	            key, GNUTLS_PK_ECDSA,
	            GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0) < 0 ||
	    gnutls_x509_crt_init(&crt) < 0 ||
	    gnutls_x509_crt_set_version(crt, 3) < 0 ||
	    gnutls_x509_crt_set_serial(crt, serial, sizeof(serial)) < 0 ||
	    gnutls_x509_crt_set_activation_time(crt, now - 3600) < 0 ||
	    gnutls_x509_crt_set_expiration_time(crt, now + 86400) < 0 ||
	    gnutls_x509_crt_set_dn(crt, "CN=relay.test", NULL) < 0 ||
	    gnutls_x509_crt_set_key(crt, key) < 0 ||
	    gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0) < 0 ||
	    gnutls_certificate_allocate_credentials(&srv_cred) < 0 ||
	    gnutls_certificate_set_x509_key(srv_cred, &crt, 1, key) < 0 ||
	    gnutls_certificate_allocate_credentials(&cli_cred) < 0) {
		fprintf(stderr, "check_relay: cannot make a certificate\n");
		exit(EXIT_FAILURE);
	}
	gnutls_x509_crt_deinit(crt);
	gnutls_x509_privkey_deinit(key);
}

static void tcp_pair(int fd[2])
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int one = 1;
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(l, 0);
	ck_assert_int_eq(bind(l, (struct sockaddr *)&a, len), 0);
	ck_assert_int_eq(listen(l, 1), 0);
	ck_assert_int_eq(getsockname(l, (struct sockaddr *)&a, &len), 0);
	fd[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd[0], 0);
	ck_assert_int_eq(connect(fd[0], (struct sockaddr *)&a, len), 0);
	fd[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	ck_assert_int_ge(fd[1], 0);
	close(l);
	/* Handshake flights are several small writes: without this, Nagle
	 * and delayed ACKs cost tens of milliseconds per handshake. */
	for (int i = 0; i < 2; i++)
		setsockopt(fd[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void set_nonblock(int fd, int on)
{
	int fl = fcntl(fd, F_GETFL);

	ck_assert_int_ge(fl, 0);
	fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

static gnutls_session_t new_session(int server, int fd, unsigned flags)
{
	gnutls_session_t s;

	/* NO_SIGNAL: the test's own peers may write into a reset socket. */
	ck_assert_int_eq(
	        gnutls_init(&s, (server ? GNUTLS_SERVER : GNUTLS_CLIENT) |
	                                GNUTLS_NO_SIGNAL | flags),
	        0);
	if (priority != NULL)
		ck_assert_int_eq(gnutls_priority_set_direct(s, priority, NULL),
		                 0);
	else
		ck_assert_int_eq(gnutls_set_default_priority(s), 0);
	ck_assert_int_eq(gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE,
	                                        server ? srv_cred : cli_cred),
	                 0);
	gnutls_transport_set_int(s, fd);
	return s;
}

/* A TLS connection: cli on cfd, srv on sfd, handshaken, both blocking. */
struct link {
	gnutls_session_t cli, srv;
	int cfd, sfd;
};

static void *server_handshake(void *arg)
{
	gnutls_session_t s = arg;
	int r;

	do
		r = gnutls_handshake(s);
	while (r < 0 && !gnutls_error_is_fatal(r));
	return (void *)(intptr_t)r;
}

enum transport { TCP, UNIX_STREAM, UNIX_DGRAM /* DTLS */ };

static struct link link_make(enum transport tr)
{
	struct link k;
	pthread_t t;
	void *sr;
	int fd[2], cr, dtls = tr == UNIX_DGRAM;

	if (tr == TCP)
		tcp_pair(fd);
	else
		ck_assert_int_eq(socketpair(AF_UNIX,
		                            (dtls ? SOCK_DGRAM : SOCK_STREAM) |
		                                    SOCK_CLOEXEC,
		                            0, fd),
		                 0);
	k.cfd = fd[0];
	k.sfd = fd[1];
	k.cli = new_session(0, k.cfd, dtls ? GNUTLS_DATAGRAM : 0);
	k.srv = new_session(1, k.sfd, dtls ? GNUTLS_DATAGRAM : 0);
	ck_assert_int_eq(pthread_create(&t, NULL, server_handshake, k.srv), 0);
	do
		cr = gnutls_handshake(k.cli);
	while (cr < 0 && !gnutls_error_is_fatal(cr));
	pthread_join(t, &sr);
	ck_assert_msg(cr == 0, "client handshake: %s", gnutls_strerror(cr));
	ck_assert_msg(sr == NULL, "server handshake: %s",
	              gnutls_strerror((int)(intptr_t)sr));
	return k;
}

static struct link link_new(void)
{
	return link_make(TCP);
}

/* Hand one session of a link to r; returns the application's end. */
static int relay_side_as(tp_relay *r, gnutls_session_t s, int netfd,
                         int datagram)
{
	int sp[2];

	ck_assert_int_eq(socketpair(AF_UNIX,
	                            (datagram ? SOCK_SEQPACKET : SOCK_STREAM) |
	                                    SOCK_CLOEXEC,
	                            0, sp),
	                 0);
	ck_assert_int_eq(tp_relay_add(r, s, netfd, sp[1], sp[0], datagram), 0);
	return sp[0];
}

static int relay_side(tp_relay *r, gnutls_session_t s, int netfd)
{
	return relay_side_as(r, s, netfd, 0);
}

static void peer_close(gnutls_session_t s, int fd)
{
	gnutls_deinit(s);
	close(fd);
}

static void wait_count(tp_relay *r, size_t want, int ms)
{
	for (int i = 0; i < ms && tp_relay_count(r) != want; i++)
		usleep(1000);
	ck_assert_uint_eq(tp_relay_count(r), want);
}

static int fd_closed(int fd)
{
	return fcntl(fd, F_GETFD) < 0 && errno == EBADF;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

static int count_threads(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	int n = -1;

	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "Threads: %d", &n) == 1)
			break;
	fclose(f);
	return n;
}

/* Read until ECONNRESET, at most ms; returns 0 then, -1 on EOF, timeout
 * or another error.  Data before the end is discarded. */
static int app_wait_end(int fd, int ms)
{
	char buf[4096];
	struct pollfd p = {fd, POLLIN, 0};

	for (int i = 0; i < ms; i += 10) {
		ssize_t n;

		if (poll(&p, 1, 10) == 0)
			continue;
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && errno == ECONNRESET)
			return 0;
		if (n == 0 || (n < 0 && errno != EAGAIN))
			return -1;
	}
	return -1;
}

/* Read everything until the end (blocking, at most 10 s without data);
 * returns the bytes read, the end in *end: 0 for EOF, else the errno. */
static size_t app_read_to_end(int fd, unsigned char *buf, size_t cap, int *end)
{
	size_t got = 0;
	struct pollfd p = {fd, POLLIN, 0};

	for (;;) {
		ssize_t n;

		ck_assert_msg(poll(&p, 1, 10000) == 1, "no end after %zu bytes",
		              got);
		n = recv(fd, buf + got, cap - got, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0) {
			*end = n == 0 ? 0 : errno;
			return got;
		}
		got += (size_t)n;
		ck_assert_uint_lt(got, cap);
	}
}

/* How the connection of app ended, checked with starttls_end(). */
static starttls_end_info expect_end(int app, starttls_end_kind kind,
                                    unsigned long long in)
{
	starttls_end_info e;

	ck_assert_msg(starttls_end(app, &e) == 0, "starttls_end: %s",
	              strerror(errno));
	ck_assert_msg(e.kind == kind, "kind %d, want %d (%s)", e.kind, kind,
	              e.detail);
	ck_assert_msg(e.bytes_in == in, "bytes_in %llu, want %llu (%s)",
	              e.bytes_in, in, e.detail);
	ck_assert_str_ne(e.detail, "");
	return e;
}

static void app_write(int fd, const void *p, size_t len)
{
	ck_assert_int_eq(send(fd, p, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* Read exactly len bytes (blocking). */
static void app_read(int fd, void *p, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = recv(fd, (char *)p + got, len - got, 0);

		ck_assert_int_gt(n, 0);
		got += (size_t)n;
	}
}

static void tls_write(gnutls_session_t s, const void *p, size_t len)
{
	ck_assert_int_eq(gnutls_record_send(s, p, len), (ssize_t)len);
}

static void tls_read(gnutls_session_t s, void *p, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = gnutls_record_recv(s, (char *)p + got, len - got);

		ck_assert_msg(n > 0, "gnutls_record_recv: %zd", n);
		got += (size_t)n;
	}
}

/* A reproducible byte stream: byte i of seed's stream depends on (seed, i)
 * only, so that a reader can regenerate what it should have received. */
static void stream_fill(uint64_t seed, uint64_t off, unsigned char *p,
                        size_t len)
{
	while (len > 0) {
		uint64_t z = seed + (off / 8 + 1) * 0x9e3779b97f4a7c15ULL;
		size_t skip = off % 8, n = 8 - skip;
		unsigned char b[8];

		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
		z ^= z >> 31;
		memcpy(b, &z, 8);
		if (n > len)
			n = len;
		memcpy(p, b + skip, n);
		p += n;
		off += n;
		len -= n;
	}
}

/* One direction of bulk traffic on an application end. */
struct flow {
	int fd;
	uint64_t seed, len, done;
	int ok;
	int raw; /* benchmark: constant data, not compared */
};

static void *flow_write(void *arg)
{
	struct flow *f = arg;
	static _Thread_local unsigned char buf[65536];

	f->ok = 1;
	while (f->done < f->len) {
		size_t n = f->len - f->done < sizeof(buf) ? f->len - f->done
		                                          : sizeof(buf);
		ssize_t w;

		if (!f->raw)
			stream_fill(f->seed, f->done, buf, n);
		w = send(f->fd, buf, n, MSG_NOSIGNAL);
		if (w <= 0) {
			f->ok = 0;
			break;
		}
		/* A partial write: the rest is regenerated next round. */
		f->done += (uint64_t)w;
	}
	shutdown(f->fd, SHUT_WR);
	return NULL;
}

/* Compares every byte against the stream and wants EOF right after len. */
static void *flow_read(void *arg)
{
	struct flow *f = arg;
	static _Thread_local unsigned char buf[65536], want[65536];

	f->ok = 0;
	for (;;) {
		ssize_t n = recv(f->fd, buf, sizeof(buf), 0);

		if (n <= 0) {
			f->ok = n == 0 && f->done == f->len;
			break;
		}
		if (f->done + (uint64_t)n > f->len)
			break;
		if (f->raw) {
			f->done += (uint64_t)n;
			continue;
		}
		stream_fill(f->seed, f->done, want, (size_t)n);
		if (memcmp(buf, want, (size_t)n) != 0)
			break;
		f->done += (uint64_t)n;
	}
	return NULL;
}

/* --- negative cases --- */

START_TEST(new_rejects)
{
	errno = 0;
	ck_assert_ptr_null(tp_relay_new(0));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_null(tp_relay_new(100000));
	ck_assert_int_eq(errno, EINVAL);
	tp_relay_free(NULL);
	ck_assert_uint_eq(tp_relay_count(NULL), 0);
}
END_TEST

enum fdkind { STREAM, SEQPKT, PIPE, CLOSED, SAME, PEER, OTHER };

static const struct {
	const char *what;
	enum fdkind net, app, peer;
	int datagram, no_relay, no_session, want;
} bad_adds[] = {
        {"closed netfd", CLOSED, STREAM, PEER, 0, 0, 0, EBADF},
        {"closed appfd", STREAM, CLOSED, OTHER, 0, 0, 0, EBADF},
        {"pipe as appfd", STREAM, PIPE, OTHER, 0, 0, 0, ENOTSOCK},
        {"pipe as netfd", PIPE, STREAM, PEER, 0, 0, 0, ENOTSOCK},
        {"netfd == appfd", STREAM, SAME, OTHER, 0, 0, 0, EINVAL},
        {"no relay", STREAM, STREAM, PEER, 0, 1, 0, EINVAL},
        {"no session", STREAM, STREAM, PEER, 0, 0, 1, EINVAL},
        {"stream appfd for DTLS", STREAM, STREAM, PEER, 1, 0, 0, EINVAL},
        {"seqpacket appfd for TLS", STREAM, SEQPKT, PEER, 0, 0, 0, EINVAL},
        {"closed appfd_peer", STREAM, STREAM, CLOSED, 0, 0, 0, EBADF},
        {"pipe as appfd_peer", STREAM, STREAM, PIPE, 0, 0, 0, ENOTSOCK},
        {"appfd_peer == appfd", STREAM, STREAM, SAME, 0, 0, 0, EINVAL},
        {"stream appfd_peer of another pair", STREAM, STREAM, OTHER, 0, 0, 0,
         EINVAL},
        {"seqpacket appfd_peer of another pair", STREAM, SEQPKT, OTHER, 1, 0, 0,
         EINVAL},
};

static int make_fd(enum fdkind k)
{
	int p[2];

	switch (k) {
	case STREAM:
	case SEQPKT:
		ck_assert_int_eq(
		        socketpair(AF_UNIX,
		                   k == STREAM ? SOCK_STREAM : SOCK_SEQPACKET,
		                   0, p),
		        0);
		break;
	case PIPE:
		ck_assert_int_eq(pipe(p), 0);
		break;
	default: /* a number that nothing else will take meanwhile */
		ck_assert_int_eq(pipe(p), 0);
		p[0] = fcntl(p[1], F_DUPFD, 3000);
		ck_assert_int_ge(p[0], 0);
		close(p[0]);
		close(p[1]);
		return p[0];
	}
	close(p[1]);
	return p[0];
}

START_TEST(add_rejects)
{
	tp_relay *r = tp_relay_new(1);
	gnutls_session_t s = NULL;
	int netfd, appfd, peer, pair[2] = {-1, -1}, other[2] = {-1, -1};
	int type = bad_adds[_i].app == SEQPKT ? SOCK_SEQPACKET : SOCK_STREAM;
	int q = -1;

	ck_assert_ptr_nonnull(r);
	if (!bad_adds[_i].no_session)
		ck_assert_int_eq(gnutls_init(&s, GNUTLS_SERVER), 0);
	netfd = make_fd(bad_adds[_i].net);
	if (bad_adds[_i].app == STREAM || bad_adds[_i].app == SEQPKT) {
		ck_assert_int_eq(socketpair(AF_UNIX, type, 0, pair), 0);
		appfd = pair[1];
	} else {
		appfd = bad_adds[_i].app == SAME ? netfd
		                                 : make_fd(bad_adds[_i].app);
	}
	switch (bad_adds[_i].peer) {
	case PEER:
		peer = pair[0];
		break;
	case OTHER:
		ck_assert_int_eq(socketpair(AF_UNIX, type, 0, other), 0);
		peer = other[0];
		break;
	case SAME:
		peer = appfd;
		break;
	default:
		peer = make_fd(bad_adds[_i].peer);
	}
	tp_clear_error();
	errno = 0;
	ck_assert_int_eq(tp_relay_add(bad_adds[_i].no_relay ? NULL : r, s,
	                              netfd, appfd, peer,
	                              bad_adds[_i].datagram),
	                 -1);
	ck_assert_msg(errno == bad_adds[_i].want, "%s: errno %d, want %d",
	              bad_adds[_i].what, errno, bad_adds[_i].want);
	ck_assert_str_ne(starttls_errstr(), "");
	/* Ownership was taken: both closed (the session is deinit'ed,
	 * which ASan and valgrind check); appfd_peer stays the caller's. */
	ck_assert_msg(fd_closed(netfd), "%s: netfd open", bad_adds[_i].what);
	ck_assert_msg(fd_closed(appfd), "%s: appfd open", bad_adds[_i].what);
	if (bad_adds[_i].peer == PEER || bad_adds[_i].peer == OTHER ||
	    bad_adds[_i].peer == PIPE)
		ck_assert_msg(!fd_closed(peer), "%s: appfd_peer closed",
		              bad_adds[_i].what);
	/* The byte tried on a pair that is not appfd's went to that pair's
	 * other end (the caller's mistake), never to appfd. */
	if (other[1] >= 0) {
		ck_assert_int_eq(ioctl(other[1], SIOCINQ, &q), 0);
		ck_assert_int_eq(q, pair[1] >= 0 ? 1 : 0);
		close(other[1]);
	}
	if (peer != appfd && !fd_closed(peer))
		close(peer);
	if (pair[0] >= 0 && pair[0] != peer)
		close(pair[0]);
	ck_assert_uint_eq(tp_relay_count(r), 0);
	tp_relay_free(r);
}
END_TEST

/* The peer writes bytes that are no TLS record. */
START_TEST(peer_garbage)
{
	tp_relay *r = tp_relay_new(1);
	struct link k = link_new();
	unsigned char junk[5 + 200] = {23, 3, 3, 0, 200};
	char buf[5];
	int app = relay_side(r, k.srv, k.sfd);
	ssize_t n;

	tls_write(k.cli, "hello", 5);
	app_read(app, buf, 5);
	ck_assert_mem_eq(buf, "hello", 5);
	memset(junk + 5, 0xa5, 200);
	ck_assert_int_eq(write(k.cfd, junk, sizeof(junk)),
	                 (ssize_t)sizeof(junk));
	ck_assert_int_eq(app_wait_end(app, 5000), 0);
	ck_assert_msg(strstr(expect_end(app, STARTTLS_END_ERROR, 5).detail,
	                     "TLS error") != NULL,
	              "detail");
	wait_count(r, 0, 5000);
	/* The relay said why (RFC 8446 s6.2: bad_record_mac). */
	n = gnutls_record_recv(k.cli, buf, sizeof(buf));
	ck_assert_int_eq(n, GNUTLS_E_FATAL_ALERT_RECEIVED);
	ck_assert_int_eq(gnutls_alert_get(k.cli), GNUTLS_A_BAD_RECORD_MAC);
	close(app);
	peer_close(k.cli, k.cfd);
	tp_relay_free(r);
}
END_TEST

/* What the handshake's transport read ahead (transport.h) goes to the
 * session first, with nothing left in the socket for epoll to announce:
 * records read together with the end of the handshake reach the
 * application, and bytes that are no record cut the connection.  _i: 0
 * records, 1 garbage. */
static int relay_side_ahead(tp_relay *r, gnutls_session_t s, int netfd,
                            const void *p, size_t len)
{
	struct tp_ahead ra = {malloc(TP_READAHEAD), 3, (unsigned)len};
	int sp[2];

	ck_assert_ptr_nonnull(ra.buf);
	memset(ra.buf, 0x5a, 3); /* taken already: never given again */
	memcpy(ra.buf + 3, p, len);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp),
	                 0);
	ck_assert_int_eq(tp_relay_add_pair(r, s, netfd, sp[1], sp[0], 0, &ra),
	                 0);
	ck_assert_ptr_null(ra.buf); /* the relay's now */
	ck_assert_uint_eq(ra.len, 0);
	return sp[0];
}

START_TEST(read_ahead_handed_over)
{
	tp_relay *r = tp_relay_new(1);
	struct link k = link_new();
	unsigned char wire[1024], junk[5 + 64] = {23, 3, 3, 0, 64};
	char buf[11];
	ssize_t n = 0;
	int app;

	memset(junk + 5, 0xa5, 64);
	if (_i == 0) {
		/* two records, read off the socket as the transport would */
		tls_write(k.cli, "hello", 5);
		tls_write(k.cli, " ahead", 6);
		for (size_t got = 0; got < 2 * (5 + 5 + 17);) {
			ssize_t m = recv(k.sfd, wire + n,
			                 sizeof(wire) - (size_t)n, 0);

			ck_assert_int_gt(m, 0);
			n += m;
			got = (size_t)n;
		}
		app = relay_side_ahead(r, k.srv, k.sfd, wire, (size_t)n);
		app_read(app, buf, 11);
		ck_assert_mem_eq(buf, "hello ahead", 11);
		/* then what the socket brings */
		tls_write(k.cli, "after", 5);
		app_read(app, buf, 5);
		ck_assert_mem_eq(buf, "after", 5);
		app_write(app, "back!", 5);
		tls_read(k.cli, buf, 5);
		ck_assert_mem_eq(buf, "back!", 5);
	} else if (_i == 1) {
		app = relay_side_ahead(r, k.srv, k.sfd, junk, sizeof(junk));
		ck_assert_int_eq(app_wait_end(app, 5000), 0);
		expect_end(app, STARTTLS_END_ERROR, 0);
	} else {
		/* Three records, then close_notify (2) or bytes that are no
		 * record (3), all read at once: one batch for the
		 * application, then the end that came after it (relay_io.c,
		 * recv_batch). */
		static unsigned char big[3 * 10000 + 4096], got[3 * 10000 + 16];
		size_t nb = 0, g;
		int end;

		for (int j = 0; j < 3; j++) {
			unsigned char rec[10000];

			memset(rec, 'a' + j, sizeof(rec));
			tls_write(k.cli, rec, sizeof(rec));
		}
		if (_i == 2)
			ck_assert_int_eq(gnutls_bye(k.cli, GNUTLS_SHUT_WR), 0);
		else
			ck_assert_int_eq(write(k.cfd, junk, sizeof(junk)),
			                 (ssize_t)sizeof(junk));
		shutdown(k.cfd, SHUT_WR);
		for (;;) {
			ssize_t m = recv(k.sfd, big + nb, sizeof(big) - nb, 0);

			ck_assert_int_ge(m, 0);
			if (m == 0)
				break;
			nb += (size_t)m;
		}
		app = relay_side_ahead(r, k.srv, k.sfd, big, nb);
		g = app_read_to_end(app, got, sizeof(got), &end);
		ck_assert_uint_eq(g, 30000);
		for (size_t j = 0; j < g; j++)
			ck_assert_int_eq(got[j], 'a' + (int)(j / 10000));
		if (_i == 2) {
			ck_assert_int_eq(end, 0);
			expect_end(app, STARTTLS_END_CLOSE_NOTIFY, 30000);
		} else {
			ck_assert_int_eq(end, ECONNRESET);
			expect_end(app, STARTTLS_END_ERROR, 30000);
		}
	}
	close(app);
	wait_count(r, 0, 5000);
	peer_close(k.cli, k.cfd);
	tp_relay_free(r);
}
END_TEST

/* The peer resets (TCP) or vanishes (a Unix socket, where the relay's next
 * send fails with EPIPE at once) while the application is sending.  The
 * process keeps SIGPIPE's default action: a send without MSG_NOSIGNAL
 * would kill it. */
START_TEST(peer_reset)
{
	tp_relay *r = tp_relay_new(1);
	struct link k = link_make(_i == 0 ? TCP : UNIX_STREAM);
	struct linger lg = {1, 0};
	static char big[1 << 20];
	char buf[5];
	int app = relay_side(r, k.srv, k.sfd);

	tls_write(k.cli, "hello", 5);
	app_read(app, buf, 5);
	if (_i == 0)
		ck_assert_int_eq(setsockopt(k.cfd, SOL_SOCKET, SO_LINGER, &lg,
		                            sizeof(lg)),
		                 0);
	peer_close(k.cli, k.cfd); /* RST, or EPIPE for the next send */
	set_nonblock(app, 1);
	for (int i = 0; i < 16; i++)
		if (send(app, big, sizeof(big), MSG_NOSIGNAL) < 0 &&
		    errno != EAGAIN)
			break;
	ck_assert_int_eq(app_wait_end(app, 5000), 0);
	expect_end(app, STARTTLS_END_TRUNCATED, 5);
	wait_count(r, 0, 5000);
	close(app);
	tp_relay_free(r);
}
END_TEST

struct writer {
	gnutls_session_t s;
	ssize_t last;
};

static void *tls_flood(void *arg)
{
	struct writer *w = arg;
	static char buf[16384];

	do
		w->last = gnutls_record_send(w->s, buf, sizeof(buf));
	while (w->last > 0);
	return NULL;
}

/* The application closes its end while the peer keeps sending. */
START_TEST(app_closes_early)
{
	tp_relay *r = tp_relay_new(1);
	struct link k = link_new();
	struct writer w = {k.cli, 0};
	pthread_t t;
	char buf[1000];
	int app = relay_side(r, k.srv, k.sfd);

	ck_assert_int_eq(pthread_create(&t, NULL, tls_flood, &w), 0);
	app_read(app, buf, sizeof(buf));
	close(app);
	wait_count(r, 0, 5000);
	/* The relay closed netfd, so the flood ends in an error. */
	pthread_join(t, NULL);
	ck_assert_int_lt(w.last, 0);
	peer_close(k.cli, k.cfd);
	tp_relay_free(r);
}
END_TEST

/* --- how connections end: only close_notify is EOF --- */

/* The protocol versions the loop tests run with. */
static const char *const versions[] = {
        NULL, /* the defaults: TLS 1.3 */
        "NORMAL:-VERS-ALL:+VERS-TLS1.2",
};

/* Send len bytes of the stream seed, in records of at most 16 KiB. */
static void tls_write_stream(gnutls_session_t s, uint64_t seed, size_t len)
{
	static unsigned char buf[16384];

	for (size_t off = 0; off < len;) {
		size_t n = len - off < sizeof(buf) ? len - off : sizeof(buf);

		stream_fill(seed, off, buf, n);
		tls_write(s, buf, n);
		off += n;
	}
}

static void check_stream(uint64_t seed, const unsigned char *got, size_t len)
{
	unsigned char *want = malloc(len + 1);

	ck_assert_ptr_nonnull(want);
	stream_fill(seed, 0, want, len);
	ck_assert_msg(memcmp(got, want, len) == 0, "data differs");
	free(want);
}

/* 18 records: more than one socket buffer's worth in flight. */
#define CUT_LEN 294912

enum cut_how { CUT_FIN, CUT_RST, CUT_ALERT };

/* The application reading to the end in a thread of its own (no Check
 * assertions there: the test thread checks what it found). */
struct reader {
	int fd;
	unsigned char *buf;
	size_t cap, got;
	int end; /* 0 EOF, else the errno; -1 a timeout */
};

static void *read_to_end(void *arg)
{
	struct reader *rd = arg;
	struct pollfd p = {rd->fd, POLLIN, 0};

	rd->end = -1;
	while (rd->got < rd->cap && poll(&p, 1, 10000) == 1) {
		ssize_t n = recv(rd->fd, rd->buf + rd->got, rd->cap - rd->got,
		                 MSG_DONTWAIT);

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0) {
			rd->end = n == 0 ? 0 : errno;
			break;
		}
		rd->got += (size_t)n;
	}
	return NULL;
}

/* The peer sends CUT_LEN bytes, then ends without close_notify: a TCP
 * FIN, a reset, or a fatal alert.  The application reads exactly those
 * bytes, then ECONNRESET, then EOF; starttls_end says why. */
static void peer_cuts(enum cut_how how, const char *version)
{
	static unsigned char buf[CUT_LEN + 1];
	tp_relay *r = tp_relay_new(1);
	struct link k = (priority = version, link_new());
	struct linger lg = {1, 0};
	int app = relay_side(r, k.srv, k.sfd), end;
	struct reader rd = {app, buf, sizeof(buf), 0, -1};
	starttls_end_info e;
	pthread_t t;
	size_t got;

	/* Reading while the peer writes: the relay's back-pressure would
	 * otherwise keep the peer's data in its socket. */
	ck_assert_int_eq(pthread_create(&t, NULL, read_to_end, &rd), 0);
	tls_write_stream(k.cli, 3, CUT_LEN);
	switch (how) {
	case CUT_FIN:
		ck_assert_int_eq(shutdown(k.cfd, SHUT_WR), 0);
		break;
	case CUT_RST:
		/* A reset discards what the peer had not sent yet: wait
		 * until all of it arrived (was acknowledged). */
		for (int i = 0, q = 1; q > 0; i++) {
			ck_assert_int_lt(i, 5000);
			ck_assert_int_eq(ioctl(k.cfd, SIOCOUTQ, &q), 0);
			if (q > 0)
				usleep(1000);
		}
		ck_assert_int_eq(setsockopt(k.cfd, SOL_SOCKET, SO_LINGER, &lg,
		                            sizeof(lg)),
		                 0);
		close(k.cfd);
		k.cfd = -1;
		break;
	case CUT_ALERT:
		ck_assert_int_eq(gnutls_alert_send(k.cli, GNUTLS_AL_FATAL,
		                                   GNUTLS_A_ACCESS_DENIED),
		                 0);
		break;
	}
	pthread_join(t, NULL);
	got = rd.got;
	end = rd.end;
	ck_assert_msg(end == ECONNRESET, "the end after %zu bytes: %s", got,
	              end == 0 ? "EOF" : strerror(end));
	ck_assert_uint_eq(got, CUT_LEN);
	check_stream(3, buf, got);
	/* The error is reported once; then the end is an EOF. */
	ck_assert_int_eq(recv(app, buf, 1, 0), 0);
	e = expect_end(app,
	               how == CUT_ALERT ? STARTTLS_END_ALERT
	                                : STARTTLS_END_TRUNCATED,
	               CUT_LEN);
	switch (how) {
	case CUT_FIN:
		ck_assert_msg(strstr(e.detail, "without close_notify after "
		                               "294912 bytes") != NULL,
		              "%s", e.detail);
		break;
	case CUT_RST:
		ck_assert_msg(strstr(e.detail, "reset") != NULL, "%s",
		              e.detail);
		break;
	case CUT_ALERT:
		ck_assert_int_eq(e.alert, GNUTLS_A_ACCESS_DENIED);
		ck_assert_int_eq(e.alert, 49);
		ck_assert_msg(strstr(e.detail, "(49)") != NULL, "%s", e.detail);
		break;
	}
	ck_assert_uint_eq(e.bytes_out, 0);
	wait_count(r, 0, 5000);
	/* Released: the answer comes from the table of ends, the same. */
	expect_end(app, e.kind, CUT_LEN);
	close(app);
	gnutls_deinit(k.cli);
	if (k.cfd >= 0)
		close(k.cfd);
	tp_relay_free(r);
	priority = NULL;
}

START_TEST(peer_fin_without_close_notify)
{
	peer_cuts(CUT_FIN, versions[_i]);
}
END_TEST

START_TEST(peer_rst)
{
	peer_cuts(CUT_RST, versions[_i]);
}
END_TEST

START_TEST(peer_fatal_alert)
{
	peer_cuts(CUT_ALERT, versions[_i]);
}
END_TEST

/* The application shut its end for writing (close_notify went out) and
 * reads the answer; the peer answers and closes without close_notify.
 * The injecting send of the application's end would fail now (EPIPE):
 * the byte kept in appfd since tp_relay_add still resets it. */
START_TEST(half_closed_app_sees_truncation)
{
	static unsigned char buf[CUT_LEN + 1];
	tp_relay *r = tp_relay_new(1);
	struct link k = link_new();
	int app = relay_side(r, k.srv, k.sfd), end = -1;
	char q[8];
	size_t got;

	app_write(app, "question", 8);
	ck_assert_int_eq(shutdown(app, SHUT_WR), 0);
	tls_read(k.cli, q, 8);
	ck_assert_int_eq(gnutls_record_recv(k.cli, q, 8), 0); /* close_notify */
	tls_write_stream(k.cli, 5, 100000);
	ck_assert_int_eq(shutdown(k.cfd, SHUT_WR), 0);
	got = app_read_to_end(app, buf, sizeof(buf), &end);
	ck_assert_uint_eq(got, 100000);
	check_stream(5, buf, got);
	ck_assert_msg(end == ECONNRESET, "end: %s",
	              end == 0 ? "EOF" : strerror(end));
	expect_end(app, STARTTLS_END_TRUNCATED, 100000);
	wait_count(r, 0, 5000);
	close(app);
	peer_close(k.cli, k.cfd);
	tp_relay_free(r);
}
END_TEST

/* The application closed its end before the peer cut: nothing to reset,
 * nothing left behind (ASan and valgrind check the memory). */
START_TEST(app_closed_before_cut)
{
	tp_relay *r = tp_relay_new(1);
	int fds = count_fds();
	struct link k = link_new();
	int app = relay_side(r, k.srv, k.sfd);

	tls_write(k.cli, "unread", 6);
	close(app);
	ck_assert_int_eq(shutdown(k.cfd, SHUT_WR), 0);
	wait_count(r, 0, 5000);
	peer_close(k.cli, k.cfd);
	ck_assert_int_eq(count_fds(), fds);
	tp_relay_free(r);
}
END_TEST

/* The application moved its end to another number (dup2) and the old
 * number now names an unrelated socket.  The relay must neither write
 * into that socket nor lose the application's end: for a stream the
 * kept byte does it, for SOCK_SEQPACKET the scan of /proc/self/fd. */
START_TEST(app_moved_its_end)
{
	int dgram = _i;
	tp_relay *r = tp_relay_new(1);
	struct link k = link_make(dgram ? UNIX_DGRAM : TCP);
	int app = relay_side_as(r, k.srv, k.sfd, dgram);
	int moved = fcntl(app, F_DUPFD, 500), other[2], q = -1, end = -1;
	unsigned char buf[64];
	size_t got;

	ck_assert_int_ge(moved, 0);
	close(app);
	/* The lowest free number: the one just closed. */
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, other), 0);
	ck_assert_int_eq(other[0], app);
	tls_write(k.cli, "data", 4);
	ck_assert_int_eq(gnutls_alert_send(k.cli, GNUTLS_AL_FATAL,
	                                   GNUTLS_A_ACCESS_DENIED),
	                 0);
	got = app_read_to_end(moved, buf, sizeof(buf), &end);
	ck_assert_uint_eq(got, 4);
	ck_assert_mem_eq(buf, "data", 4);
	ck_assert_msg(end == ECONNRESET, "end: %s",
	              end == 0 ? "EOF" : strerror(end));
	expect_end(moved, STARTTLS_END_ALERT, 4);
	wait_count(r, 0, 5000);
	/* The unrelated socket got nothing. */
	ck_assert_int_eq(ioctl(other[1], SIOCINQ, &q), 0);
	ck_assert_int_eq(q, 0);
	close(other[0]);
	close(other[1]);
	close(moved);
	peer_close(k.cli, k.cfd);
	tp_relay_free(r);
}
END_TEST

START_TEST(end_of_unknown_descriptors)
{
	starttls_end_info e;
	int sp[2], p[2];

	memset(&e, 0x5a, sizeof(e));
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	ck_assert_int_eq(pipe(p), 0);
	errno = 0;
	ck_assert_int_eq(starttls_end(sp[0], &e), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(e.kind, 0);
	ck_assert_str_eq(e.detail, "");
	errno = 0;
	ck_assert_int_eq(starttls_end(p[0], &e), -1);
	ck_assert_int_eq(errno, ENOENT);
	close(p[0]);
	close(p[1]);
	errno = 0;
	ck_assert_int_eq(starttls_end(p[0], &e), -1);
	ck_assert_int_eq(errno, EBADF);
	errno = 0;
	ck_assert_int_eq(starttls_end(-1, NULL), -1);
	ck_assert_int_eq(errno, EBADF);
	close(sp[0]);
	close(sp[1]);
}
END_TEST

/* 1,000 connections cut by their peers, each read to its ECONNRESET:
 * no descriptor left behind, and the table of ends keeps the last 1024
 * only. */
START_TEST(many_truncated)
{
	tp_relay *r = tp_relay_new(1);
	int fds = count_fds(), first = -1;
	starttls_end_info e;
	char buf[16];

	for (int i = 0; i < 1025; i++) {
		struct link k = link_new();
		int app = relay_side(r, k.srv, k.sfd), end = -1;

		tls_write(k.cli, "12345", 5);
		if (i % 2)
			ck_assert_int_eq(shutdown(k.cfd, SHUT_WR), 0);
		peer_close(k.cli, k.cfd);
		ck_assert_uint_eq(app_read_to_end(app, (unsigned char *)buf,
		                                  sizeof(buf), &end),
		                  5);
		ck_assert_int_eq(end, ECONNRESET);
		if (i == 0) {
			first = app; /* kept open: its end gets forgotten */
			wait_count(r, 0, 5000);
			expect_end(first, STARTTLS_END_TRUNCATED, 5);
			fds++;
		} else {
			close(app);
		}
	}
	wait_count(r, 0, 10000);
	ck_assert_int_eq(count_fds(), fds);
	errno = 0;
	ck_assert_int_eq(starttls_end(first, &e), -1);
	ck_assert_int_eq(errno, ENOENT);
	close(first);
	tp_relay_free(r);
}
END_TEST

/* --- positive cases --- */

/* While it lives, starttls_end() counts; after the peer's close_notify it
 * says so, and the application reads EOF (not an error). */
START_TEST(close_notify_is_eof)
{
	tp_relay *r = tp_relay_new(1);
	struct link k = (priority = versions[_i], link_new());
	int app = relay_side(r, k.srv, k.sfd);
	starttls_end_info e;
	char buf[8];

	tls_write(k.cli, "hello", 5);
	app_read(app, buf, 5);
	app_write(app, "abc", 3);
	tls_read(k.cli, buf, 3);
	/* Counted just after the send that the reader may beat. */
	for (int i = 0; i < 1000 && (starttls_end(app, &e) != 0 ||
	                             e.bytes_in != 5 || e.bytes_out != 3);
	     i++)
		usleep(1000);
	e = expect_end(app, STARTTLS_END_OPEN, 5);
	ck_assert_uint_eq(e.bytes_out, 3);
	ck_assert_str_eq(e.detail, "open: 5 bytes in, 3 bytes out");
	ck_assert_int_eq(gnutls_bye(k.cli, GNUTLS_SHUT_WR), 0);
	ck_assert_int_eq(recv(app, buf, sizeof(buf), 0), 0);
	e = expect_end(app, STARTTLS_END_CLOSE_NOTIFY, 5);
	ck_assert_msg(strstr(e.detail, "with close_notify after 5 bytes") !=
	                      NULL,
	              "%s", e.detail);
	ck_assert_int_eq(e.alert, 0);
	/* Half-closed: the application still writes. */
	app_write(app, "more", 4);
	tls_read(k.cli, buf, 4);
	ck_assert_int_eq(shutdown(app, SHUT_WR), 0);
	ck_assert_int_eq(gnutls_record_recv(k.cli, buf, 4), 0);
	wait_count(r, 0, 5000);
	/* A clean end stays clean after release: EOF again, no reset. */
	ck_assert_int_eq(recv(app, buf, sizeof(buf), 0), 0);
	e = expect_end(app, STARTTLS_END_CLOSE_NOTIFY, 5);
	ck_assert_uint_eq(e.bytes_out, 7);
	close(app);
	peer_close(k.cli, k.cfd);
	tp_relay_free(r);
	priority = NULL;
}
END_TEST

struct cutter {
	gnutls_session_t s;
	int fd;
	size_t len;
};

/* Sends len bytes of stream 9, then a FIN without close_notify. */
static void *send_then_fin(void *arg)
{
	struct cutter *c = arg;

	tls_write_stream(c->s, 9, c->len);
	shutdown(c->fd, SHUT_WR);
	return NULL;
}

/* Much more than the buffers hold, read slowly: everything arrives before
 * the error. */
START_TEST(slow_reader_gets_all_before_reset)
{
	enum { LEN = 6 << 20 };
	tp_relay *r = tp_relay_new(1);
	struct link k = link_new();
	struct cutter c = {k.cli, k.cfd, LEN};
	unsigned char *buf = malloc(LEN + 1);
	int app = relay_side(r, k.srv, k.sfd);
	size_t got = 0;
	pthread_t t;
	ssize_t n;

	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(pthread_create(&t, NULL, send_then_fin, &c), 0);
	usleep(200000); /* the buffers fill up */
	while ((n = recv(app, buf + got,
	                 LEN + 1 - got < 65536 ? LEN + 1 - got : 65536, 0)) >
	       0) {
		got += (size_t)n;
		ck_assert_uint_le(got, LEN);
		usleep(1000);
	}
	ck_assert_msg(n < 0 && errno == ECONNRESET, "the end: %s",
	              n == 0 ? "EOF" : strerror(errno));
	ck_assert_uint_eq(got, LEN);
	check_stream(9, buf, got);
	expect_end(app, STARTTLS_END_TRUNCATED, LEN);
	pthread_join(t, NULL);
	wait_count(r, 0, 5000);
	free(buf);
	close(app);
	peer_close(k.cli, k.cfd);
	tp_relay_free(r);
}
END_TEST

/* SOCK_SEQPACKET reports the error before the messages still queued, so
 * the relay waits until the application has read them all. */
START_TEST(seqpacket_messages_before_reset)
{
	tp_relay *r = tp_relay_new(1);
	struct link k = link_make(UNIX_DGRAM);
	int app = relay_side_as(r, k.srv, k.sfd, 1);
	char msg[32], buf[64];
	unsigned long long total = 0;

	/* Fewer than net.unix.max_dgram_qlen (10): the writer must not
	 * block on the relay's full socket. */
	for (int i = 0; i < 8; i++) {
		int n = snprintf(msg, sizeof(msg), "message %d", i);

		tls_write(k.cli, msg, (size_t)n);
		total += (unsigned)n;
	}
	ck_assert_int_eq(gnutls_alert_send(k.cli, GNUTLS_AL_FATAL,
	                                   GNUTLS_A_BAD_CERTIFICATE),
	                 0);
	usleep(300000); /* the relay has seen the alert; the app reads now */
	ck_assert_uint_eq(tp_relay_count(r), 1);
	for (int i = 0; i < 8; i++) {
		int n = snprintf(msg, sizeof(msg), "message %d", i);

		ck_assert_int_eq(recv(app, buf, sizeof(buf), 0), n);
		ck_assert_mem_eq(buf, msg, (size_t)n);
	}
	errno = 0;
	ck_assert_int_eq(recv(app, buf, sizeof(buf), 0), -1);
	ck_assert_int_eq(errno, ECONNRESET);
	ck_assert_int_eq(recv(app, buf, sizeof(buf), 0), 0);
	ck_assert_int_eq(expect_end(app, STARTTLS_END_ALERT, total).alert,
	                 GNUTLS_A_BAD_CERTIFICATE);
	wait_count(r, 0, 5000);
	close(app);
	peer_close(k.cli, k.cfd);
	tp_relay_free(r);
}
END_TEST

/* An application that reads nothing does not hold the connection: after
 * the drain timeout the relay resets it anyway (and the kernel then
 * reports the error before what is still queued). */
START_TEST(drain_gives_up)
{
	tp_relay *r = tp_relay_new(1);
	struct link k = link_make(UNIX_DGRAM);
	int app = relay_side_as(r, k.srv, k.sfd, 1);
	char buf[64];
	struct timespec t0, t1;
	long ms;

	tp_relay_set_drain_timeout(r, 400);
	tls_write(k.cli, "unread", 6);
	ck_assert_int_eq(gnutls_alert_send(k.cli, GNUTLS_AL_FATAL,
	                                   GNUTLS_A_ACCESS_DENIED),
	                 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	wait_count(r, 0, 5000);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 +
	     (t1.tv_nsec - t0.tv_nsec) / 1000000;
	ck_assert_msg(ms >= 300, "released after %ld ms", ms);
	expect_end(app, STARTTLS_END_ALERT, 6);
	errno = 0;
	ck_assert_int_eq(recv(app, buf, sizeof(buf), 0), -1);
	ck_assert_int_eq(errno, ECONNRESET);
	ck_assert_int_eq(recv(app, buf, sizeof(buf), 0), 6);
	ck_assert_int_eq(recv(app, buf, sizeof(buf), 0), 0);
	close(app);
	peer_close(k.cli, k.cfd);
	tp_relay_free(r);
}
END_TEST

START_TEST(echo_one_side)
{
	tp_relay *r = tp_relay_new(1);
	struct link k = (priority = versions[_i], link_new());
	char buf[5];
	int app = relay_side(r, k.srv, k.sfd);

	ck_assert_int_eq(gnutls_protocol_get_version(k.cli),
	                 versions[_i] ? GNUTLS_TLS1_2 : GNUTLS_TLS1_3);

	ck_assert_uint_eq(tp_relay_count(r), 1);
	tls_write(k.cli, "ping!", 5);
	app_read(app, buf, 5);
	ck_assert_mem_eq(buf, "ping!", 5);
	app_write(app, "pong!", 5);
	tls_read(k.cli, buf, 5);
	ck_assert_mem_eq(buf, "pong!", 5);
	/* The peer's close_notify gives the application EOF. */
	ck_assert_int_eq(gnutls_bye(k.cli, GNUTLS_SHUT_WR), 0);
	ck_assert_int_eq(recv(app, buf, 5, 0), 0);
	close(app);
	/* ... and closing the application end sends close_notify. */
	ck_assert_int_eq(gnutls_record_recv(k.cli, buf, 5), 0);
	wait_count(r, 0, 5000);
	peer_close(k.cli, k.cfd);
	tp_relay_free(r);
	priority = NULL;
}
END_TEST

/* The byte the relay keeps in appfd does not split writes: one write of
 * the application (up to a record) is one record to the peer. */
START_TEST(one_write_one_record)
{
	static const size_t sizes[] = {1, 2, 5, 1000, 16383, 16384};
	static unsigned char out[16384], in[16384];
	tp_relay *r = tp_relay_new(1);
	struct link k = link_new();
	int app = relay_side(r, k.srv, k.sfd);

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		stream_fill(i, 0, out, sizes[i]);
		app_write(app, out, sizes[i]);
		ck_assert_int_eq(gnutls_record_recv(k.cli, in, sizeof(in)),
		                 (ssize_t)sizes[i]);
		ck_assert_mem_eq(in, out, sizes[i]);
	}
	close(app);
	ck_assert_int_eq(gnutls_record_recv(k.cli, in, sizeof(in)), 0);
	wait_count(r, 0, 5000);
	peer_close(k.cli, k.cfd);
	tp_relay_free(r);
}
END_TEST

/* app A -> relay -> TLS -> relay -> app B, and back, at once. */
START_TEST(bulk_both_ways)
{
	const uint64_t len = 64ull << 20;
	tp_relay *r = tp_relay_new(2);
	struct link k = link_new();
	int a = relay_side(r, k.cli, k.cfd), b = relay_side(r, k.srv, k.sfd);
	struct flow aw = {a, 1, len, 0, 0, 0}, br = {b, 1, len, 0, 0, 0};
	struct flow bw = {b, 2, len, 0, 0, 0}, ar = {a, 2, len, 0, 0, 0};
	pthread_t t[4];

	pthread_create(&t[0], NULL, flow_write, &aw);
	pthread_create(&t[1], NULL, flow_read, &br);
	pthread_create(&t[2], NULL, flow_write, &bw);
	pthread_create(&t[3], NULL, flow_read, &ar);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	ck_assert(aw.ok && bw.ok);
	ck_assert_msg(br.ok, "A->B: %llu bytes ok of %llu",
	              (unsigned long long)br.done, (unsigned long long)len);
	ck_assert_msg(ar.ok, "B->A: %llu bytes ok of %llu",
	              (unsigned long long)ar.done, (unsigned long long)len);
	/* Both directions ended with EOF: both connections are done. */
	wait_count(r, 0, 5000);
	close(a);
	close(b);
	tp_relay_free(r);
}
END_TEST

/* An application that sends with sendfile(2) (or splice(2)) into its
 * end: the kernel queues page-backed buffers of up to about 64 KiB, and
 * the relay keeps the last byte of the newest unread ("Resetting" in
 * relay.c), which holds that whole buffer against the sender's budget.
 * With a Unix socket's default send buffer, a sender is writable only
 * below a quarter of it (about 52 KiB): the transfer stalled after its
 * first buffer until the relay gave the application's end a larger send
 * buffer. */
START_TEST(sendfile_into_app_end)
{
	const size_t len = 4u << 20;
	tp_relay *r = tp_relay_new(1);
	struct link k = link_new();
	int app = relay_side(r, k.srv, k.sfd);
	char path[] = "/tmp/check_relay.XXXXXX";
	int f = mkstemp(path);
	unsigned char *blk = malloc(1 << 16), *got = malloc(len);
	off_t off = 0;
	size_t have = 0;

	ck_assert_int_ge(f, 0);
	unlink(path);
	for (size_t i = 0; i < (1 << 16); i++)
		blk[i] = (unsigned char)(i * 7);
	for (size_t i = 0; i < len; i += 1 << 16)
		ck_assert_int_eq(write(f, blk, 1 << 16), 1 << 16);
	set_nonblock(app, 1);
	set_nonblock(k.cfd, 1);
	for (int idle = 0; have < len && idle < 500;) {
		struct pollfd p[2] = {{app, off < (off_t)len ? POLLOUT : 0, 0},
		                      {k.cfd, POLLIN, 0}};
		ssize_t n;

		if (gnutls_record_check_pending(k.cli) == 0 &&
		    poll(p, 2, 10) == 0) {
			idle++; /* 5 s without progress: stalled */
			continue;
		}
		if (off < (off_t)len && (p[0].revents & POLLOUT))
			(void)sendfile(app, f, &off, len - (size_t)off);
		n = gnutls_record_recv(k.cli, got + have, len - have);
		if (n > 0) {
			have += (size_t)n;
			idle = 0;
		} else {
			ck_assert_msg(n == GNUTLS_E_AGAIN, "recv: %s",
			              gnutls_strerror((int)n));
		}
	}
	ck_assert_msg(have == len, "%zu of %zu bytes arrived (sent %lld)", have,
	              len, (long long)off);
	for (size_t i = 0; i < len; i++)
		if (got[i] != (unsigned char)((i % (1 << 16)) * 7))
			ck_abort_msg("byte %zu differs", i);
	close(f);
	close(app);
	wait_count(r, 0, 5000);
	peer_close(k.cli, k.cfd);
	tp_relay_free(r);
	free(blk);
	free(got);
}
END_TEST

/* Half-close through two relays, like socat. */
START_TEST(half_close)
{
	tp_relay *r = tp_relay_new(1);
	struct link k = (priority = versions[_i], link_new());
	int a = relay_side(r, k.cli, k.cfd), b = relay_side(r, k.srv, k.sfd);
	char buf[8];

	app_write(a, "question", 8);
	ck_assert_int_eq(shutdown(a, SHUT_WR), 0);
	app_read(b, buf, 8);
	ck_assert_mem_eq(buf, "question", 8);
	ck_assert_int_eq(recv(b, buf, 8, 0), 0); /* EOF after close_notify */
	ck_assert_uint_eq(tp_relay_count(r), 2); /* B->A still open */
	app_write(b, "answer", 6);
	close(b);
	app_read(a, buf, 6);
	ck_assert_mem_eq(buf, "answer", 6);
	ck_assert_int_eq(recv(a, buf, 8, 0), 0);
	wait_count(r, 0, 5000);
	close(a);
	tp_relay_free(r);
	priority = NULL;
}
END_TEST

/* Half-close against a plain TLS peer: close_notify, not a bare EOF. */
START_TEST(half_close_tls_peer)
{
	tp_relay *r = tp_relay_new(1);
	struct link k = link_new();
	int app = relay_side(r, k.srv, k.sfd);
	char buf[8];

	app_write(app, "question", 8);
	ck_assert_int_eq(shutdown(app, SHUT_WR), 0);
	tls_read(k.cli, buf, 8);
	ck_assert_int_eq(gnutls_record_recv(k.cli, buf, 8), 0);
	tls_write(k.cli, "answer", 6);
	app_read(app, buf, 6);
	ck_assert_mem_eq(buf, "answer", 6);
	ck_assert_uint_eq(tp_relay_count(r), 1);
	ck_assert_int_eq(gnutls_bye(k.cli, GNUTLS_SHUT_WR), 0);
	ck_assert_int_eq(recv(app, buf, 8, 0), 0);
	wait_count(r, 0, 5000);
	close(app);
	peer_close(k.cli, k.cfd);
	tp_relay_free(r);
}
END_TEST

static unsigned segs_in(int fd)
{
	return tp_tcp_counts(fd).segs_in;
}

/* The application closes its end: close_notify and the FIN reach the peer
 * in one segment (MSG_MORE, then shutdown), which wakes it once. */
START_TEST(close_notify_with_fin)
{
	tp_relay *r = tp_relay_new(1);
	struct link k = link_new();
	int app = relay_side(r, k.srv, k.sfd);
	struct pollfd p = {k.cfd, POLLRDHUP, 0};
	unsigned before;
	char buf[8];

	app_write(app, "last", 4);
	tls_read(k.cli, buf, 4);
	ck_assert_mem_eq(buf, "last", 4);
	before = segs_in(k.cfd);
	close(app);
	for (int i = 0; i < 500 && !(p.revents & POLLRDHUP); i++) {
		ck_assert_int_ge(poll(&p, 1, 10), 0);
	}
	ck_assert_msg(p.revents & POLLRDHUP, "no FIN");
	ck_assert_uint_eq(segs_in(k.cfd) - before, 1);
	ck_assert_int_eq(gnutls_record_recv(k.cli, buf, sizeof(buf)), 0);
	ck_assert_int_eq(recv(k.cfd, buf, sizeof(buf), 0), 0);
	wait_count(r, 0, 5000);
	peer_close(k.cli, k.cfd);
	tp_relay_free(r);
}
END_TEST

struct zero_writer {
	int fd;
	size_t len;
};

static void *write_zeros(void *arg)
{
	struct zero_writer *w = arg;
	unsigned char *b = calloc(1, w->len);

	ck_assert_ptr_nonnull(b);
	app_write(w->fd, b, w->len);
	free(b);
	return NULL;
}

/* Upstream, the records of one read of the application go out with
 * MSG_MORE but the last: the kernel makes a few large segments of them,
 * not one segment per 16 KiB record (each a wake-up of the peer). */
START_TEST(records_coalesced)
{
	enum { LEN = 4 << 20, RECORDS = LEN / 16384 };
	tp_relay *r = tp_relay_new(1);
	struct link k = link_new();
	int app = relay_side(r, k.srv, k.sfd);
	struct zero_writer w = {app, LEN};
	unsigned char *buf = malloc(LEN);
	unsigned before, segs;
	pthread_t t;

	ck_assert_ptr_nonnull(buf);
	before = segs_in(k.cfd);
	ck_assert_int_eq(pthread_create(&t, NULL, write_zeros, &w), 0);
	tls_read(k.cli, buf, LEN);
	pthread_join(t, NULL);
	segs = segs_in(k.cfd) - before;
	fprintf(stderr, "records_coalesced: %u segments for %d records\n", segs,
	        RECORDS);
	ck_assert_msg(segs <= RECORDS * 3 / 4,
	              "%u segments for %d records of 16 KiB", segs, RECORDS);
	free(buf);
	close(app);
	peer_close(k.cli, k.cfd);
	wait_count(r, 0, 5000);
	tp_relay_free(r);
}
END_TEST

static void *ahead_in_thread(void *arg)
{
	struct tp_ahead *a = arg;

	tp_ahead_drop(a); /* given back by another thread */
	return NULL;
}

/* Read-ahead buffers given back are kept (a few, for any thread) for the
 * next handshake or burst instead of a malloc() and free() of 64 KiB each
 * time.  What is freed or kept is checked by the leak checkers of make
 * check-asan and check-valgrind. */
START_TEST(read_ahead_buffer_kept)
{
	struct tp_ahead pre[4], many[6], a = {0};
	unsigned char *first, *seen[6];
	pthread_t t;
	int found;

	/* whatever is kept now (no other thread of this test reads ahead) */
	for (int i = 0; i < 4; i++) {
		pre[i] = (struct tp_ahead){tp_ahead_alloc(), 0, 0};
		ck_assert_ptr_nonnull(pre[i].buf);
	}
	a.buf = first = tp_ahead_alloc();
	ck_assert_ptr_nonnull(a.buf);
	a.buf[TP_READAHEAD - 1] = 1; /* the whole size is there */
	a.len = 7;
	tp_ahead_drop(&a);
	ck_assert_ptr_null(a.buf);
	ck_assert_uint_eq(a.len, 0);
	a.buf = tp_ahead_alloc();
	ck_assert_ptr_eq(a.buf, first);
	/* another thread's buffer comes back here */
	ck_assert_int_eq(pthread_create(&t, NULL, ahead_in_thread, &a), 0);
	pthread_join(t, NULL);
	ck_assert_ptr_null(a.buf);
	ck_assert_ptr_eq(tp_ahead_alloc(), first);
	/* six given back: four kept, two freed; the next four are kept ones */
	many[0] = (struct tp_ahead){first, 0, 0};
	for (int i = 1; i < 6; i++)
		many[i] = (struct tp_ahead){tp_ahead_alloc(), 0, 0};
	for (int i = 0; i < 6; i++) {
		seen[i] = many[i].buf;
		tp_ahead_drop(&many[i]);
	}
	for (int i = 0; i < 4; i++) {
		many[i].buf = tp_ahead_alloc();
		found = 0;
		for (int j = 0; j < 6; j++)
			found |= many[i].buf == seen[j];
		ck_assert_msg(found, "buffer %d was not one given back", i);
	}
	for (int i = 0; i < 4; i++) {
		tp_ahead_drop(&many[i]);
		tp_ahead_drop(&pre[i]);
	}
}
END_TEST

#define MANY 200

/* Many connections on one thread: no thread per connection. */
START_TEST(many_connections)
{
	tp_relay *r = tp_relay_new(1);
	static struct link k[MANY];
	static int app[MANY];
	int threads = count_threads();
	char msg[32], buf[32];

	for (int i = 0; i < MANY; i++) {
		k[i] = link_new();
		app[i] = relay_side(r, k[i].srv, k[i].sfd);
	}
	ck_assert_uint_eq(tp_relay_count(r), MANY);
	ck_assert_int_eq(count_threads(), threads);
	for (int i = 0; i < MANY; i++) {
		int n = snprintf(msg, sizeof(msg), "message %d", i);

		tls_write(k[i].cli, msg, (size_t)n);
		app_read(app[i], buf, (size_t)n);
		ck_assert_mem_eq(buf, msg, (size_t)n);
		app_write(app[i], buf, (size_t)n); /* echo */
		tls_read(k[i].cli, buf, (size_t)n);
		ck_assert_mem_eq(buf, msg, (size_t)n);
	}
	ck_assert_int_eq(count_threads(), threads);
	for (int i = 0; i < MANY; i++) {
		close(app[i]);
		peer_close(k[i].cli, k[i].cfd);
	}
	wait_count(r, 0, 10000);
	tp_relay_free(r);
}
END_TEST

/* Connections added and closed leave no descriptor behind. */
START_TEST(no_fd_leak)
{
	tp_relay *r = tp_relay_new(1);
	int fds = count_fds();

	for (int i = 0; i < 1000; i++) {
		struct link k = link_new();
		int app = relay_side(r, k.srv, k.sfd);

		/* Either side may end first. */
		if (i % 2) {
			close(app);
			peer_close(k.cli, k.cfd);
		} else {
			peer_close(k.cli, k.cfd);
			close(app);
		}
	}
	wait_count(r, 0, 10000);
	ck_assert_int_eq(count_fds(), fds);
	tp_relay_free(r);
}
END_TEST

/* Freeing the relay releases live connections without close_notify, and
 * resets their applications' ends. */
START_TEST(free_live)
{
	int fds = count_fds();
	tp_relay *r = tp_relay_new(2);
	struct link k[3];
	int app[3];
	char buf[4];

	for (int i = 0; i < 3; i++) {
		k[i] = link_new();
		app[i] = relay_side(r, k[i].srv, k[i].sfd);
	}
	tls_write(k[0].cli, "live", 4);
	app_read(app[0], buf, 4);
	ck_assert_uint_eq(tp_relay_count(r), 3);
	tp_relay_free(r);
	for (int i = 0; i < 3; i++) {
		starttls_end_info e;

		ck_assert(fd_closed(k[i].sfd));
		/* Cut: the application reads an error, not EOF. */
		errno = 0;
		ck_assert_int_eq(recv(app[i], buf, 4, 0), -1);
		ck_assert_int_eq(errno, ECONNRESET);
		ck_assert_int_eq(recv(app[i], buf, 4, 0), 0);
		e = expect_end(app[i], STARTTLS_END_ERROR, i == 0 ? 4 : 0);
		ck_assert_msg(strstr(e.detail, "stopped") != NULL, "%s",
		              e.detail);
		ck_assert_int_eq(gnutls_record_recv(k[i].cli, buf, 4),
		                 GNUTLS_E_PREMATURE_TERMINATION);
		close(app[i]);
		peer_close(k[i].cli, k[i].cfd);
	}
	ck_assert_int_eq(count_fds(), fds);
}
END_TEST

/* DTLS (smoke test; the datagram path is tested fully with the DTLS
 * issue): one message is one record, boundaries kept both ways, and
 * closing one application end closes the other. */
START_TEST(dtls_messages)
{
	static const char *const msgs[] = {"one", "two2", "three33"};
	tp_relay *r = tp_relay_new(1);
	struct link k = link_make(UNIX_DGRAM);
	int a = relay_side_as(r, k.cli, k.cfd, 1);
	int b = relay_side_as(r, k.srv, k.sfd, 1);
	char buf[100];

	for (int i = 0; i < 3; i++) {
		app_write(a, msgs[i], strlen(msgs[i]));
		app_write(a, "", 0); /* an empty message is no EOF */
	}
	for (int i = 0; i < 3; i++) {
		ssize_t n = recv(b, buf, sizeof(buf), 0);

		ck_assert_int_eq(n, (ssize_t)strlen(msgs[i]));
		ck_assert_mem_eq(buf, msgs[i], (size_t)n);
	}
	app_write(b, "reply", 5);
	ck_assert_int_eq(recv(a, buf, sizeof(buf), 0), 5);
	close(a);
	ck_assert_int_eq(recv(b, buf, sizeof(buf), 0), 0);
	wait_count(r, 0, 5000);
	close(b);
	tp_relay_free(r);
}
END_TEST

/* --- the hand-run benchmark --- */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A test case of its own, run only on request: Check's assertions work
 * only inside a test. */
START_TEST(bench)
{
	const uint64_t len = 1ull << 30;
	/* The cipher that gnutls-cli --benchmark-ciphers reports. */
	tp_relay *r1, *r2;
	struct link k;
	struct flow w = {0, 7, len, 0, 0, 1}, rd = {0, 7, len, 0, 0, 1};
	pthread_t t[2];
	double t0, dt;

	priority = "NORMAL:-CIPHER-ALL:+AES-128-GCM";
	r1 = tp_relay_new(1);
	r2 = tp_relay_new(1);
	k = link_new();
	printf("cipher: %s\n",
	       gnutls_cipher_get_name(gnutls_cipher_get(k.cli)));
	w.fd = relay_side(r1, k.cli, k.cfd);
	rd.fd = relay_side(r2, k.srv, k.sfd);
	t0 = now_s();
	pthread_create(&t[0], NULL, flow_write, &w);
	pthread_create(&t[1], NULL, flow_read, &rd);
	pthread_join(t[0], NULL);
	pthread_join(t[1], NULL);
	dt = now_s() - t0;
	printf("1 GiB app -> relay -> TLS -> relay -> app: %.2f s, %.0f "
	       "MB/s%s\n",
	       dt, (double)len / dt / 1e6, rd.ok ? "" : " (DATA MISMATCH)");
	close(w.fd);
	close(rd.fd);
	tp_relay_free(r1);
	tp_relay_free(r2);
	ck_assert(rd.ok);
}
END_TEST

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long n = -1;

	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld", &n) == 1)
			break;
	fclose(f);
	return n;
}

/* Resident memory of idle relayed connections, each of which has carried
 * a message both ways.  The test's peers keep only their sockets (their
 * sessions are freed), so the growth is the relay side's: its gnutls
 * session, its connection state, and the heap they leave behind. */
START_TEST(bench_idle)
{
	enum { N = 2000 };
	static int app[N], cfd[N];
	tp_relay *r = tp_relay_new(1);
	long before;
	char buf[5];

	before = rss_kib();
	for (int i = 0; i < N; i++) {
		struct link k = link_new();

		app[i] = relay_side(r, k.srv, k.sfd);
		tls_write(k.cli, "ping!", 5);
		app_read(app[i], buf, 5);
		app_write(app[i], buf, 5);
		tls_read(k.cli, buf, 5);
		gnutls_deinit(k.cli);
		cfd[i] = k.cfd;
	}
	usleep(100000);
	printf("%d idle connections: %.1f KiB resident each\n", N,
	       (double)(rss_kib() - before) / N);
	for (int i = 0; i < N; i++) {
		close(app[i]);
		close(cfd[i]);
	}
	tp_relay_free(r);
}
END_TEST

static Suite *bench_suite(void)
{
	Suite *s = suite_create("relay benchmark");
	TCase *tc = tcase_create("bench");

	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, bench);
	tcase_add_test(tc, bench_idle);
	suite_add_tcase(s, tc);
	return s;
}

static Suite *suite(void)
{
	Suite *s = suite_create("relay");
	TCase *neg = tcase_create("negative");
	TCase *pos = tcase_create("positive");

	tcase_set_timeout(neg, 60);
	tcase_set_timeout(pos, 300);
	tcase_add_test(neg, new_rejects);
	tcase_add_loop_test(neg, add_rejects, 0,
	                    sizeof(bad_adds) / sizeof(bad_adds[0]));
	tcase_add_test(neg, peer_garbage);
	tcase_add_loop_test(neg, read_ahead_handed_over, 0, 4);
	tcase_add_loop_test(neg, peer_reset, 0, 2);
	tcase_add_test(neg, app_closes_early);
	tcase_add_loop_test(neg, peer_fin_without_close_notify, 0,
	                    sizeof(versions) / sizeof(versions[0]));
	tcase_add_loop_test(neg, peer_rst, 0,
	                    sizeof(versions) / sizeof(versions[0]));
	tcase_add_loop_test(neg, peer_fatal_alert, 0,
	                    sizeof(versions) / sizeof(versions[0]));
	tcase_add_test(neg, half_closed_app_sees_truncation);
	tcase_add_test(neg, app_closed_before_cut);
	tcase_add_loop_test(neg, app_moved_its_end, 0, 2);
	tcase_add_test(neg, end_of_unknown_descriptors);
	tcase_add_test(neg, seqpacket_messages_before_reset);
	tcase_add_test(neg, drain_gives_up);
	tcase_add_test(pos, many_truncated);
	tcase_add_loop_test(pos, echo_one_side, 0,
	                    sizeof(versions) / sizeof(versions[0]));
	tcase_add_loop_test(pos, close_notify_is_eof, 0,
	                    sizeof(versions) / sizeof(versions[0]));
	tcase_add_test(pos, slow_reader_gets_all_before_reset);
	tcase_add_test(pos, one_write_one_record);
	tcase_add_test(pos, bulk_both_ways);
	tcase_add_test(pos, sendfile_into_app_end);
	tcase_add_loop_test(pos, half_close, 0,
	                    sizeof(versions) / sizeof(versions[0]));
	tcase_add_test(pos, half_close_tls_peer);
	tcase_add_test(pos, close_notify_with_fin);
	tcase_add_test(pos, records_coalesced);
	tcase_add_test(pos, read_ahead_buffer_kept);
	tcase_add_test(pos, many_connections);
	tcase_add_test(pos, no_fd_leak);
	tcase_add_test(pos, free_live);
	tcase_add_test(pos, dtls_messages);
	suite_add_tcase(s, neg);
	suite_add_tcase(s, pos);
	return s;
}

int main(void)
{
	struct rlimit rl;
	int rc;

	/* Connections hold four descriptors each in these tests. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 10000 &&
	    rl.rlim_max >= 10000) {
		rl.rlim_cur = 10000;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	make_creds();
	if (getenv("RELAY_BENCH") != NULL)
		rc = tp_run_suite(bench_suite());
	else
		rc = tp_run_suite(suite());
	gnutls_certificate_free_credentials(srv_cred);
	gnutls_certificate_free_credentials(cli_cred);
	return rc;
}
