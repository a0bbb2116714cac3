/*
 * DTLS over UDP through the public API, against zones signed and served
 * for this test: 1,000 messages whole and in order, the largest message a
 * record carries and the one byte more that the relay drops, DANE failing
 * closed, the handshake through a forwarder that drops datagrams, a flood
 * of ClientHellos without cookies, the idle timeout, and how a connection
 * ends: a fatal alert or the idle timeout is ECONNRESET, the peer's
 * close_notify EOF (starttls_end says which).
 *
 * The fixture binds one UDP socket per scenario (their ports are in the
 * TLSA owner names _PORT._udp.www.example.test), publishes the records,
 * starts zones/serve and writes the tlspool.conf read through
 * TLSPOOL_CONFIG.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/dtls.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <tlspool/starttls.h>

#include "fixture.h"
#include "testutil.h"

enum { U_GOOD, U_WRONG, U_LOSS, U_FLOOD, U_IDLE, U_COUNT };

/* The UDP payload is capped at 1500 - 28 bytes (starttls_client(3)); the
 * default priority negotiates an AEAD with 13 bytes of DTLS record header,
 * 8 of explicit nonce and a 16 byte tag. */
#define DATA_MTU (1472 - 13 - 8 - 16)

static char dir[] = "/tmp/tlspool-dtls-XXXXXX";
static long idle_ms; /* [tls] dtls_idle_timeout_ms of the fixture */
static int usock[U_COUNT];
static unsigned uport[U_COUNT];



static char *slurp(const char *path)
{
	static char buf[4096];

	return slurp_into(path, buf, sizeof(buf));
}

static struct sockaddr_in loopback(unsigned p)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(p)};

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return sa;
}

/* A UDP socket bound on loopback (port 0: any); its port in *p. */
static int udp_bound(unsigned *p)
{
	struct sockaddr_in sa = loopback(0);
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		return -1;
	getsockname(fd, (struct sockaddr *)&sa, &len);
	if (p != NULL)
		*p = ntohs(sa.sin_port);
	return fd;
}

static void setup(void)
{
	char cmd[8192], spki_s[128], conf[8192], zconf[1024];
	FILE *fp;
	const char *zones = getenv("TLSPOOL_SOURCE_DIR");

	if (zones == NULL)
		zones = ".";
	need(mkdtemp(dir) != NULL, "mkdtemp");
	for (int i = 0; i < U_COUNT; i++)
		need((usock[i] = udp_bound(&uport[i])) >= 0, "udp socket");
	snprintf(cmd, sizeof(cmd),
	         "cd %s && certtool --generate-privkey --key-type ecdsa --outfile ks.pem 2>/dev/null && "
	         "printf 'dns_name = www.example.test\\nexpiration_days = 30\\nsigning_key\\n' > tmpl && "
	         "certtool --generate-self-signed --load-privkey ks.pem --template tmpl --outfile cs.pem 2>/dev/null && "
	         "openssl pkey -in ks.pem -pubout -outform DER | sha256sum | cut -c1-64 > spki_s",
	         dir);
	run_sh(cmd);
	snprintf(cmd, sizeof(cmd), "%s/spki_s", dir);
	strcpy(spki_s, slurp(cmd));
	snprintf(cmd, sizeof(cmd), "%s/example.add", dir);
	fp = fopen(cmd, "w");
	need(fp != NULL, cmd);
	for (int i = 0; i < U_COUNT; i++)
		if (i == U_WRONG)
			fprintf(fp, "_%u._udp.www IN TLSA 3 1 1 %064d\n", uport[i], 0);
		else
			fprintf(fp, "_%u._udp.www IN TLSA 3 1 1 %s\n", uport[i], spki_s);
	/* TCP at the good port: the UDP lookup must not find it */
	fprintf(fp, "_%u._tcp.www IN TLSA 3 1 1 %s\n", uport[U_WRONG], spki_s);
	fclose(fp);
	snprintf(cmd, sizeof(cmd),
	         "%s/zones/serve start %s/z --add example.test %s/example.add 2>/dev/null",
	         zones, dir, dir);
	run_sh(cmd);
	snprintf(cmd, sizeof(cmd), "%s/z/tlspool.conf", dir);
	strcpy(zconf, slurp(cmd));
	/* valgrind is slow enough for a busy connection to look idle */
	idle_ms = getenv("VALGRIND") != NULL ? 5000 : 1000;
	snprintf(conf, sizeof(conf),
	         "%s\n[tls]\nhandshake_timeout_ms = 6000\ndtls_idle_timeout_ms = %ld\n"
	         "[identity www.example.test]\nkey = %s/ks.pem\ncertificate = %s/cs.pem\n",
	         zconf, idle_ms, dir, dir);
	use_config(dir, conf);
}

static void teardown(void)
{
	stop_zones(dir);
}

static void udp_connect(int fd, unsigned p)
{
	struct sockaddr_in sa = loopback(p);

	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
}

static unsigned port_of(int fd)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);

	getsockname(fd, (struct sockaddr *)&sa, &len);
	return ntohs(sa.sin_port);
}

/* --- a server in a thread ---------------------------------------------- */

struct server {
	pthread_t thread;
	int fd; /* connected UDP socket */
	int echo;
	int rv, err;
	char errstr[512];
};

static void *serve(void *arg)
{
	struct server *s = arg;
	char buf[65536];
	ssize_t n;

	s->rv = starttls_server(s->fd, IPPROTO_UDP, "www.example.test",
	                        STARTTLS_PEERCERT_NONE, NULL, NULL, 0);
	s->err = errno;
	snprintf(s->errstr, sizeof(s->errstr), "%s", starttls_errstr());
	if (s->rv >= 0 && s->echo)
		while ((n = recv(s->rv, buf, sizeof(buf), 0)) > 0)
			if (send(s->rv, buf, (size_t)n, MSG_NOSIGNAL) != n)
				break;
	if (s->rv >= 0 && s->echo)
		close(s->rv);
	return NULL;
}

/* The server socket of scenario `which`, connected to the client's port
 * cport, serving in a thread. */
static struct server *start_server_fd(int fd, unsigned cport, int echo)
{
	struct server *s = calloc(1, sizeof(*s));

	s->fd = fd;
	s->echo = echo;
	udp_connect(s->fd, cport);
	ck_assert_int_eq(pthread_create(&s->thread, NULL, serve, s), 0);
	return s;
}

static struct server *start_server(int which, unsigned cport, int echo)
{
	return start_server_fd(usock[which], cport, echo);
}

static void join_server(struct server *s)
{
	pthread_join(s->thread, NULL);
	free(s);
}

/* A client of scenario `which` (to port p); returns the descriptor or -1. */
static int client_to(int cfd, unsigned p)
{
	udp_connect(cfd, p);
	return starttls_client(cfd, IPPROTO_UDP, NULL, 0, "www.example.test",
	                       NULL, 0);
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(seed * 31 + i * 7);
}

/* One message back within 5 s; its length, or -1. */
static ssize_t recv_msg(int fd, unsigned char *buf, size_t len)
{
	struct pollfd p = {fd, POLLIN, 0};

	if (poll(&p, 1, 5000) != 1)
		return -1;
	return recv(fd, buf, len, MSG_TRUNC);
}

/* --- tests ---------------------------------------------------------------- */

START_TEST(thousand_messages)
{
	int cfd = udp_bound(NULL), tls;
	struct server *s = start_server(U_GOOD, port_of(cfd), 1);
	unsigned char out[DATA_MTU + 1], in[65536];
	int type = 0;
	socklen_t tl = sizeof(type);

	tls = client_to(cfd, uport[U_GOOD]);
	ck_assert_msg(tls >= 0, "client: %s", starttls_errstr());
	ck_assert_int_eq(getsockopt(tls, SOL_SOCKET, SO_TYPE, &type, &tl), 0);
	ck_assert_int_eq(type, SOCK_SEQPACKET);
	for (unsigned i = 0; i < 1000; i++) {
		/* sizes spread over 1 to DATA_MTU, both ends included */
		size_t n = i == 0 ? 1 : i == 1 ? DATA_MTU
		                                : 1 + (i * 389u) % DATA_MTU;
		ssize_t r;

		fill(out, n, i);
		ck_assert_int_eq(send(tls, out, n, 0), (ssize_t)n);
		r = recv_msg(tls, in, sizeof(in));
		ck_assert_msg(r == (ssize_t)n, "message %u: %zd bytes, sent %zu",
		              i, r, n);
		ck_assert_msg(memcmp(in, out, n) == 0, "message %u differs", i);
	}
	/* One byte more than a record carries: the relay drops it (as the
	 * network would), and the next message arrives as usual. */
	fill(out, DATA_MTU + 1, 7);
	ck_assert_int_eq(send(tls, out, DATA_MTU + 1, 0), DATA_MTU + 1);
	ck_assert_int_eq(send(tls, "after", 5, 0), 5);
	ck_assert_int_eq(recv_msg(tls, in, sizeof(in)), 5);
	ck_assert(memcmp(in, "after", 5) == 0);
	close(tls);
	join_server(s);
}
END_TEST

START_TEST(wrong_record_fails_closed)
{
	int cfd = udp_bound(NULL), rv;
	struct server *s = start_server(U_WRONG, port_of(cfd), 0);
	struct stat sb;
	ino_t ino;

	ck_assert_int_eq(fstat(cfd, &sb), 0);
	ino = sb.st_ino;
	rv = client_to(cfd, uport[U_WRONG]);
	ck_assert_msg(rv == -1 && errno == EKEYREJECTED, "rv %d errno %d: %s",
	              rv, errno, starttls_errstr());
	ck_assert_msg(strstr(starttls_errstr(), "._udp.") != NULL, "%s",
	              starttls_errstr());
	/* consumed: closed, or its number reused by another thread */
	errno = 0;
	ck_assert(fcntl(cfd, F_GETFD) == -1 ? errno == EBADF
	                                    : fstat(cfd, &sb) == 0 &&
	                                              sb.st_ino != ino);
	join_server(s);
}
END_TEST

/* A forwarder between client and server that drops the client's first
 * datagram (the first ClientHello) and the server's second (its first
 * flight after the cookie exchange): both sides must retransmit. */
struct fwd {
	pthread_t thread;
	int front, back; /* to the client; connected to the server */
	int passed, dropped;
};

static void *forward(void *arg)
{
	struct fwd *f = arg;
	unsigned char buf[65536];
	int from_client = 0, from_server = 0, connected = 0;

	for (;;) {
		struct pollfd p[2] = {{f->front, POLLIN, 0}, {f->back, POLLIN, 0}};
		struct sockaddr_in sa;
		socklen_t len = sizeof(sa);
		ssize_t n;

		if (poll(p, 2, 3000) <= 0)
			return NULL; /* quiet: the test is over */
		if (p[0].revents & POLLIN) {
			n = recvfrom(f->front, buf, sizeof(buf), 0,
			             (struct sockaddr *)&sa, &len);
			if (n < 0)
				continue;
			if (!connected) {
				connect(f->front, (struct sockaddr *)&sa, len);
				connected = 1;
			}
			if (++from_client == 1)
				f->dropped++;
			else if (send(f->back, buf, (size_t)n, 0) == n)
				f->passed++;
		}
		if (p[1].revents & POLLIN) {
			n = recv(f->back, buf, sizeof(buf), 0);
			if (n < 0)
				continue;
			if (++from_server == 2)
				f->dropped++;
			else if (send(f->front, buf, (size_t)n, 0) == n)
				f->passed++;
		}
	}
}

START_TEST(handshake_survives_loss)
{
	struct fwd f = {0};
	int cfd = udp_bound(NULL), tls;
	struct server *s;
	unsigned char in[64];
	struct timespec t0, t1;

	f.front = usock[U_LOSS]; /* the port in the TLSA owner name */
	unsigned sport;
	int sfd = udp_bound(&sport);

	f.back = udp_bound(NULL);
	s = start_server_fd(sfd, port_of(f.back), 1);
	udp_connect(f.back, sport);
	pthread_create(&f.thread, NULL, forward, &f);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	tls = client_to(cfd, uport[U_LOSS]);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert_msg(tls >= 0, "client: %s", starttls_errstr());
	ck_assert_int_eq(send(tls, "ping", 4, 0), 4);
	ck_assert_int_eq(recv_msg(tls, in, sizeof(in)), 4);
	ck_assert_int_eq(f.dropped, 2);
	/* recovered by the 1 s timers, not by luck */
	ck_assert(t1.tv_sec - t0.tv_sec >= 1);
	close(tls);
	join_server(s);
	pthread_join(f.thread, NULL);
	close(f.back);
}
END_TEST

/* The first datagram a GnuTLS DTLS client sends: a ClientHello without a
 * cookie. */
static unsigned char hello[4096];
static size_t hello_len;

static ssize_t capture(gnutls_transport_ptr_t p, const void *data, size_t len)
{
	(void)p;
	if (hello_len == 0 && len <= sizeof(hello)) {
		memcpy(hello, data, len);
		hello_len = len;
	}
	return (ssize_t)len;
}

static ssize_t nothing(gnutls_transport_ptr_t p, void *data, size_t len)
{
	(void)p, (void)data, (void)len;
	errno = EAGAIN;
	return -1;
}

static int nothing_timeout(gnutls_transport_ptr_t p, unsigned ms)
{
	(void)p, (void)ms;
	return 0;
}

static void make_hello(void)
{
	gnutls_session_t s;
	gnutls_certificate_credentials_t cred;

	gnutls_certificate_allocate_credentials(&cred);
	gnutls_init(&s, GNUTLS_CLIENT | GNUTLS_DATAGRAM | GNUTLS_NONBLOCK);
	gnutls_set_default_priority(s);
	gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred);
	gnutls_transport_set_push_function(s, capture);
	gnutls_transport_set_pull_function(s, nothing);
	gnutls_transport_set_pull_timeout_function(s, nothing_timeout);
	(void)gnutls_handshake(s);
	gnutls_deinit(s);
	gnutls_certificate_free_credentials(cred);
	ck_assert_uint_gt(hello_len, 60);
}

static long rss_kib(void)
{
	FILE *fp = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;

	while (fp != NULL && fgets(line, sizeof(line), fp) != NULL)
		if (sscanf(line, "VmRSS: %ld", &kib) == 1)
			break;
	if (fp != NULL)
		fclose(fp);
	return kib;
}

/* Read until nothing came for ms; the count. */
static int drain(int fd, int ms)
{
	unsigned char buf[2048];
	struct pollfd p = {fd, POLLIN, 0};
	int n = 0;

	while (poll(&p, 1, ms) == 1)
		if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
			n++;
	return n;
}

START_TEST(cookie_flood_keeps_memory_flat)
{
	int cfd = udp_bound(NULL), tls, answers, others[8];
	struct server *s;
	long before, after;
	unsigned char in[64];
	const char *pre = getenv("LD_PRELOAD");
	int valgrind = pre != NULL && strstr(pre, "vgpreload") != NULL;

	make_hello();
	s = start_server(U_FLOOD, port_of(cfd), 1);
	udp_connect(cfd, uport[U_FLOOD]);
	usleep(100000); /* the server is in its cookie phase */
	drain(cfd, 0);
	before = rss_kib();
	/* Other source ports: the connected server socket never sees them. */
	for (int i = 0; i < 8; i++) {
		struct sockaddr_in sa = loopback(uport[U_FLOOD]);

		others[i] = udp_bound(NULL);
		for (int k = 0; k < 100; k++)
			sendto(others[i], hello, hello_len, 0,
			       (struct sockaddr *)&sa, sizeof(sa));
	}
	/* From the client's own address (a spoofer's best case): 3,000
	 * ClientHellos with fresh randoms, each answered statelessly. */
	answers = 0;
	for (int i = 0; i < 3000; i++) {
		hello[27] = (unsigned char)i;
		hello[28] = (unsigned char)(i >> 8);
		if (send(cfd, hello, hello_len, 0) < 0 && errno != ECONNREFUSED)
			ck_abort_msg("send: %s", strerror(errno));
		if (i % 50 == 49)
			answers += drain(cfd, 0);
	}
	answers += drain(cfd, 200);
	after = rss_kib();
	ck_assert_msg(answers > 100, "only %d HelloVerifyRequests", answers);
	if (!valgrind)
		ck_assert_msg(after - before < 1024, "RSS %ld -> %ld KiB", before,
		              after);
	for (int i = 0; i < 8; i++) {
		ck_assert_int_eq(drain(others[i], 0), 0);
		close(others[i]);
	}
	/* a real client still gets through */
	tls = starttls_client(cfd, IPPROTO_UDP, NULL, 0, "www.example.test",
	                      NULL, 0);
	ck_assert_msg(tls >= 0, "client: %s", starttls_errstr());
	ck_assert_int_eq(send(tls, "ping", 4, 0), 4);
	ck_assert_int_eq(recv_msg(tls, in, sizeof(in)), 4);
	close(tls);
	join_server(s);
}
END_TEST

/* --- how a DTLS connection ends --------------------------------------------
 * The server is the library's; the client a bare GnuTLS DTLS session (no
 * DANE: the server wants no client certificate), which can end the way a
 * test needs. */

struct dtls_peer {
	gnutls_session_t s;
	gnutls_certificate_credentials_t cred;
	int fd;
	int app; /* the server's plaintext descriptor */
};

static struct dtls_peer dtls_pair(void)
{
	struct dtls_peer p = {0};
	unsigned sport;
	int sfd = udp_bound(&sport), r;
	struct server *s;

	p.fd = udp_bound(NULL);
	ck_assert_int_ge(sfd, 0);
	ck_assert_int_ge(p.fd, 0);
	s = start_server_fd(sfd, port_of(p.fd), 0);
	udp_connect(p.fd, sport);
	ck_assert_int_eq(gnutls_certificate_allocate_credentials(&p.cred), 0);
	ck_assert_int_eq(gnutls_init(&p.s, GNUTLS_CLIENT | GNUTLS_DATAGRAM), 0);
	ck_assert_int_eq(gnutls_set_default_priority(p.s), 0);
	ck_assert_int_eq(
	        gnutls_credentials_set(p.s, GNUTLS_CRD_CERTIFICATE, p.cred), 0);
	gnutls_transport_set_int(p.s, p.fd);
	gnutls_dtls_set_timeouts(p.s, 1000, 6000);
	do
		r = gnutls_handshake(p.s);
	while (r < 0 && !gnutls_error_is_fatal(r));
	ck_assert_msg(r == 0, "handshake: %s", gnutls_strerror(r));
	pthread_join(s->thread, NULL);
	ck_assert_msg(s->rv >= 0, "server: %s", s->errstr);
	p.app = s->rv;
	free(s);
	return p;
}

static void dtls_peer_free(struct dtls_peer *p)
{
	gnutls_deinit(p->s);
	gnutls_certificate_free_credentials(p->cred);
	close(p->fd);
	close(p->app);
}

/* Three messages from the peer; the server's application reads them. */
static unsigned long long three_messages(struct dtls_peer *p)
{
	static const char *const m[] = {"one", "two2", "three33"};
	unsigned char in[64];
	unsigned long long n = 0;

	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(gnutls_record_send(p->s, m[i], strlen(m[i])),
		                 (ssize_t)strlen(m[i]));
		n += strlen(m[i]);
	}
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(recv_msg(p->app, in, sizeof(in)),
		                 (ssize_t)strlen(m[i]));
		ck_assert(memcmp(in, m[i], strlen(m[i])) == 0);
	}
	return n;
}

/* Wait for the end of p->app: 0 for EOF, else the errno. */
static int end_of(int fd)
{
	unsigned char in[64];
	struct pollfd pf = {fd, POLLIN, 0};
	ssize_t n;

	ck_assert_int_eq(poll(&pf, 1, 5000), 1);
	n = recv(fd, in, sizeof(in), MSG_DONTWAIT);
	ck_assert_int_le(n, 0);
	return n == 0 ? 0 : errno;
}

START_TEST(peer_alert_resets)
{
	struct dtls_peer p = dtls_pair();
	unsigned long long n = three_messages(&p);
	starttls_end_info e;
	int end;

	ck_assert_int_eq(
	        gnutls_alert_send(p.s, GNUTLS_AL_FATAL, GNUTLS_A_ACCESS_DENIED),
	        0);
	end = end_of(p.app);
	ck_assert_msg(end == ECONNRESET, "end: %s",
	              end == 0 ? "EOF" : strerror(end));
	ck_assert_int_eq(starttls_end(p.app, &e), 0);
	ck_assert_int_eq(e.kind, STARTTLS_END_ALERT);
	ck_assert_int_eq(e.alert, 49);
	ck_assert_uint_eq(e.bytes_in, n);
	ck_assert_msg(strstr(e.detail, "fatal alert") != NULL, "%s", e.detail);
	dtls_peer_free(&p);
}
END_TEST

START_TEST(peer_close_notify_is_eof)
{
	struct dtls_peer p = dtls_pair();
	unsigned long long n = three_messages(&p);
	starttls_end_info e;

	ck_assert_int_eq(gnutls_bye(p.s, GNUTLS_SHUT_WR), 0);
	ck_assert_int_eq(end_of(p.app), 0);
	ck_assert_int_eq(starttls_end(p.app, &e), 0);
	ck_assert_int_eq(e.kind, STARTTLS_END_CLOSE_NOTIFY);
	ck_assert_uint_eq(e.bytes_in, n);
	dtls_peer_free(&p);
}
END_TEST

START_TEST(idle_connection_closed)
{
	int cfd = udp_bound(NULL), tls;
	struct server *s = start_server(U_IDLE, port_of(cfd), 1);
	unsigned char in[64];
	struct pollfd p;
	struct timespec t0, t1;
	starttls_end_info e;
	long ms;

	tls = client_to(cfd, uport[U_IDLE]);
	ck_assert_msg(tls >= 0, "client: %s", starttls_errstr());
	clock_gettime(CLOCK_MONOTONIC, &t0);
	p = (struct pollfd){tls, POLLIN, 0};
	ck_assert_int_eq(poll(&p, 1, (int)(4 * idle_ms)), 1);
	/* Not a clean close: an error, not EOF. */
	errno = 0;
	ck_assert_int_eq(recv(tls, in, sizeof(in), 0), -1);
	ck_assert_int_eq(errno, ECONNRESET);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert_int_eq(starttls_end(tls, &e), 0);
	ck_assert_int_eq(e.kind, STARTTLS_END_IDLE);
	ck_assert_msg(strstr(e.detail, "idle") != NULL, "%s", e.detail);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	ck_assert_msg(ms >= idle_ms * 9 / 10 && ms < idle_ms * 5 / 2,
	              "closed after %ld ms, idle timeout %ld ms", ms, idle_ms);
	close(tls);
	join_server(s); /* the server's end idled out too: its echo ended */
}
END_TEST

START_TEST(sctp_and_others)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	ck_assert_int_eq(starttls_client(fd, IPPROTO_SCTP, NULL, 0, NULL, NULL, 0), -1);
	ck_assert_int_eq(errno, EPROTONOSUPPORT);
	errno = 0;
	ck_assert(fcntl(fd, F_GETFD) == -1 && errno == EBADF);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	ck_assert_int_eq(starttls_server(fd, 17 + 1000, NULL, 0, NULL, NULL, 0), -1);
	ck_assert_int_eq(errno, EINVAL);
	/* UDP needs a connected datagram socket */
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	ck_assert_int_eq(starttls_client(fd, IPPROTO_UDP, NULL, 0, NULL, NULL, 0), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_nonnull(strstr(starttls_errstr(), "connected"));
}
END_TEST

/* --- deadlines: DTLS bounded like TLS ------------------------------------- */

static long long mono_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* A context whose calls end after 1.5 s (6 s under valgrind). */
static starttls_ctx *short_ctx(unsigned *ms)
{
	char path[600];
	FILE *fp;
	starttls_ctx *ctx;

	*ms = getenv("VALGRIND") != NULL ? 6000 : 1500;
	snprintf(path, sizeof(path), "%s/short.conf", dir);
	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	fprintf(fp, "[tls]\nhandshake_timeout_ms = %u\n", *ms);
	fclose(fp);
	ctx = starttls_ctx_new(path);
	ck_assert_msg(ctx != NULL, "%s", starttls_errstr());
	return ctx;
}

struct dripper {
	pthread_t thread;
	int fd; /* connected to the victim */
	volatile int stop;
};

/* A datagram of junk every 100 ms: never a handshake message, but
 * traffic that a per-packet timer would take for progress. */
static void *drip_junk(void *arg)
{
	struct dripper *d = arg;
	static const unsigned char junk[] = {0x16, 0xfe, 0xfd, 0, 0, 0, 0, 0,
	                                     0,    0,    0,    0, 0, 1, 0x42};

	while (!d->stop) {
		struct timespec ts = {0, 100 * 1000 * 1000};

		(void)!send(d->fd, junk, sizeof(junk), MSG_NOSIGNAL);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

START_TEST(client_deadline_against_junk)
{
	struct dripper d = {0};
	unsigned ms, sport, cport;
	starttls_ctx *ctx = short_ctx(&ms);
	int sfd = udp_bound(&sport), cfd = udp_bound(&cport), rv;
	long long t0;

	d.fd = sfd;
	udp_connect(sfd, cport);
	udp_connect(cfd, sport);
	ck_assert_int_eq(pthread_create(&d.thread, NULL, drip_junk, &d), 0);
	t0 = mono_now();
	rv = starttls_ctx_client(ctx, cfd, IPPROTO_UDP, NULL, 0,
	                         "www.example.test", NULL, 0);
	ck_assert_msg(rv == -1 && errno == ETIMEDOUT, "rv %d errno %d: %s", rv,
	              errno, starttls_errstr());
	ck_assert_int_ge(mono_now() - t0, (long long)ms - 100);
	ck_assert_int_le(mono_now() - t0, (long long)ms + ms / 10 + 300);
	d.stop = 1;
	pthread_join(d.thread, NULL);
	close(sfd);
	starttls_ctx_free(ctx);
}
END_TEST

START_TEST(server_deadline_against_junk)
{
	struct dripper d = {0};
	unsigned ms, sport, cport;
	starttls_ctx *ctx = short_ctx(&ms);
	int sfd = udp_bound(&sport), cfd = udp_bound(&cport), rv;
	long long t0;

	d.fd = cfd;
	udp_connect(cfd, sport);
	udp_connect(sfd, cport);
	ck_assert_int_eq(pthread_create(&d.thread, NULL, drip_junk, &d), 0);
	t0 = mono_now();
	rv = starttls_ctx_server(ctx, sfd, IPPROTO_UDP, "www.example.test",
	                         STARTTLS_PEERCERT_NONE, NULL, NULL, NULL, 0);
	ck_assert_msg(rv == -1 && errno == ETIMEDOUT, "rv %d errno %d: %s", rv,
	              errno, starttls_errstr());
	ck_assert_int_ge(mono_now() - t0, (long long)ms - 100);
	ck_assert_int_le(mono_now() - t0, (long long)ms + ms / 10 + 300);
	d.stop = 1;
	pthread_join(d.thread, NULL);
	close(cfd);
	starttls_ctx_free(ctx);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("dtls");
	TCase *t = tcase_create("dtls");

	tcase_set_timeout(t, 120);
	tcase_add_test(t, sctp_and_others);
	tcase_add_test(t, client_deadline_against_junk);
	tcase_add_test(t, server_deadline_against_junk);
	tcase_add_test(t, thousand_messages);
	tcase_add_test(t, wrong_record_fails_closed);
	tcase_add_test(t, handshake_survives_loss);
	tcase_add_test(t, cookie_flood_keeps_memory_flat);
	tcase_add_test(t, peer_alert_resets);
	tcase_add_test(t, peer_close_notify_is_eof);
	tcase_add_test(t, idle_connection_closed);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	int rv;

	setup();
	rv = tp_run_suite(suite());
	teardown();
	return rv;
}
