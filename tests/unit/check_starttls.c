/*
 * starttls_client() and starttls_server() over TCP, through the public
 * API, against zones signed and served for this test: the errno table,
 * the descriptor always consumed, DANE failing closed, peer names, the
 * relay (echo, half-close), descriptor leaks and the thread count.
 *
 * The fixture (run once, before Check forks the tests) makes keys with
 * certtool, opens one listening socket per scenario (their ports are in
 * the TLSA owner names), publishes the records, starts zones/serve and
 * writes the tlspool.conf that every call reads through TLSPOOL_CONFIG.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <tlspool/starttls.h>

#include "fixture.h"
#include "testutil.h"

enum { L_GOOD, L_WRONG, L_BOGUS, L_EXPIRED, L_INSECURE, L_NOTLSA, L_CLOSER,
       L_SILENT, L_DRIP, L_SLOWSERVER, L_SNI, L_CTX, L_COUNT };

static char dir[] = "/tmp/tlspool-starttls-XXXXXX";
static int listener[L_COUNT];
static unsigned port[L_COUNT];



/* The whole call's deadline: under valgrind DNSSEC validation alone takes
 * longer than the usual 1.5 s. */
static unsigned timeout_ms(void)
{
	return getenv("VALGRIND") != NULL ? 6000 : 1500;
}

/* The slack a deadline may overrun by: 10 %, plus scheduling. */
static long long slack_ms(void)
{
	return timeout_ms() / 10 + (getenv("VALGRIND") != NULL ? 1500 : 200);
}

static char *slurp(const char *path)
{
	static char buf[4096];

	return slurp_into(path, buf, sizeof(buf));
}


static void setup(void)
{
	char cmd[8192], spki_s[128], spki_c[128], conf[8192], zconf[1024];
	FILE *fp;
	const char *zones = getenv("TLSPOOL_SOURCE_DIR");

	if (zones == NULL)
		zones = ".";
	need(mkdtemp(dir) != NULL, "mkdtemp");
	for (int i = 0; i < L_COUNT; i++)
		listener[i] = listen_any(&port[i]);
	snprintf(cmd, sizeof(cmd),
	         "cd %s && certtool --generate-privkey --key-type ecdsa --outfile ks.pem 2>/dev/null && "
	         "certtool --generate-privkey --key-type ecdsa --outfile kc.pem 2>/dev/null && "
	         "printf 'dns_name = www.example.test\\nexpiration_days = 30\\nsigning_key\\n' > tmpl && "
	         "certtool --generate-self-signed --load-privkey ks.pem --template tmpl --outfile cs.pem 2>/dev/null && "
	         "openssl pkey -in ks.pem -pubout -outform DER | sha256sum | cut -c1-64 > spki_s && "
	         "openssl pkey -in kc.pem -pubout -outform DER | sha256sum | cut -c1-64 > spki_c",
	         dir);
	run_sh(cmd);
	snprintf(cmd, sizeof(cmd), "%s/spki_s", dir);
	strcpy(spki_s, slurp(cmd));
	snprintf(cmd, sizeof(cmd), "%s/spki_c", dir);
	strcpy(spki_c, slurp(cmd));
	snprintf(cmd, sizeof(cmd), "%s/example.add", dir);
	fp = fopen(cmd, "w");
	fprintf(fp, "_%u._tcp.www IN TLSA 3 1 1 %s\n", port[L_GOOD], spki_s);
	fprintf(fp, "_%u._tcp.www IN TLSA 3 1 1 %064d\n", port[L_WRONG], 0);
	fprintf(fp, "_%u._tcp.www IN TLSA 3 1 1 %s\n", port[L_SILENT], spki_s);
	fprintf(fp, "_%u._tcp.www IN TLSA 3 1 1 %s\n", port[L_CLOSER], spki_s);
	fprintf(fp, "_%u._tcp.www IN TLSA 3 1 1 %s\n", port[L_SLOWSERVER],
	        spki_s);
	fprintf(fp, "_%u._tcp.www IN TLSA 3 1 1 %s\n", port[L_CTX], spki_s);
	fprintf(fp, "client IN TLSA 3 1 1 %s\n", spki_c);
	fprintf(fp, "wrongclient IN TLSA 3 1 1 %064d\n", 0);
	fclose(fp);
	snprintf(cmd, sizeof(cmd), "%s/bogus.add", dir);
	fp = fopen(cmd, "w");
	fprintf(fp, "_%u._tcp.www IN TLSA 3 1 1 %s\n", port[L_BOGUS], spki_s);
	fclose(fp);
	snprintf(cmd, sizeof(cmd), "%s/expired.add", dir);
	fp = fopen(cmd, "w");
	fprintf(fp, "_%u._tcp.www IN TLSA 3 1 1 %s\n", port[L_EXPIRED], spki_s);
	fclose(fp);
	snprintf(cmd, sizeof(cmd), "%s/insecure.add", dir);
	fp = fopen(cmd, "w");
	fprintf(fp, "_%u._tcp.www IN TLSA 3 1 1 %s\n", port[L_INSECURE], spki_s);
	fclose(fp);
	snprintf(cmd, sizeof(cmd),
	         "%s/zones/serve start %s/z --add example.test %s/example.add "
	         "--add bogus.test %s/bogus.add --add expired.test %s/expired.add "
	         "--add insecure.test %s/insecure.add 2>/dev/null",
	         zones, dir, dir, dir, dir, dir);
	run_sh(cmd);
	snprintf(cmd, sizeof(cmd), "%s/z/tlspool.conf", dir);
	strcpy(zconf, slurp(cmd));
	snprintf(conf, sizeof(conf),
	         "%s\n[tls]\nhandshake_timeout_ms = %u\n"
	         "[identity www.example.test]\nkey = %s/ks.pem\ncertificate = %s/cs.pem\n"
	         "[identity www.bogus.test]\nkey = %s/ks.pem\n"
	         "[identity www.expired.test]\nkey = %s/ks.pem\n"
	         "[identity www.insecure.test]\nkey = %s/ks.pem\n"
	         "[identity client.example.test]\nkey = %s/kc.pem\n"
	         "[identity wrongclient.example.test]\nkey = %s/kc.pem\n"
	         "[identity locked.example.test]\nkey = %s/kc.pem\nallow_users = 4242424\n",
	         zconf, timeout_ms(), dir, dir, dir, dir, dir, dir, dir, dir);
	use_config(dir, conf);
}

static void teardown(void)
{
	stop_zones(dir);
}

static int connect_to(unsigned p)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(p)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

#include <sys/stat.h>

/* The descriptor is closed: its number is free, or (other threads of
 * this test open descriptors too) now names another file. */
static void assert_closed_ino(int fd, ino_t ino)
{
	struct stat sb;

	errno = 0;
	if (fcntl(fd, F_GETFD) == -1 && errno == EBADF)
		return;
	ck_assert_int_eq(fstat(fd, &sb), 0);
	ck_assert_msg(sb.st_ino != ino, "fd %d is still open", fd);
}

static ino_t ino_of(int fd)
{
	struct stat sb;

	return fstat(fd, &sb) == 0 ? sb.st_ino : 0;
}

static void assert_closed(int fd)
{
	assert_closed_ino(fd, 0);
}

/* --- a server in a thread -------------------------------------------------- */

struct server {
	pthread_t thread;
	int listener;
	char *myname;
	int flags;
	int (*checksni)(char *);
	int echo;      /* 1: echo until EOF; 2: keep the descriptor in rv */
	int rv, err;
	char errstr[512], peer[320];
};

static void *serve(void *arg)
{
	struct server *s = arg;
	int fd = accept(s->listener, NULL, NULL);
	char buf[4096];
	ssize_t n;

	s->rv = starttls_server(fd, IPPROTO_TCP, s->myname, s->flags, s->checksni,
	                        s->peer, sizeof(s->peer));
	s->err = errno;
	snprintf(s->errstr, sizeof(s->errstr), "%s", starttls_errstr());
	if (s->rv >= 0 && s->echo == 2)
		return NULL;
	if (s->rv >= 0 && s->echo) {
		while ((n = read(s->rv, buf, sizeof(buf))) > 0)
			if (write(s->rv, buf, (size_t)n) != n)
				break;
		close(s->rv);
	} else if (s->rv >= 0) {
		close(s->rv);
	}
	return NULL;
}

static struct server *start_server(int which, char *myname, int flags,
                                   int (*checksni)(char *), int echo)
{
	struct server *s = calloc(1, sizeof(*s));

	s->listener = listener[which];
	s->myname = myname;
	s->flags = flags;
	s->checksni = checksni;
	s->echo = echo;
	pthread_create(&s->thread, NULL, serve, s);
	return s;
}

static void join_server(struct server *s)
{
	pthread_join(s->thread, NULL);
}

/* A client call; returns the descriptor, or -1 with errno. */
static int client(int which, char *myname, int flags, char *sni, char *peer,
                  size_t len)
{
	int fd = connect_to(port[which]), rv;
	ino_t ino = ino_of(fd);

	rv = starttls_client(fd, IPPROTO_TCP, myname, flags, sni, peer, len);
	if (rv < 0) {
		int e = errno;

		assert_closed_ino(fd, ino);
		errno = e;
	}
	return rv;
}

/* --- negative cases: arguments ---------------------------------------------- */

static int pipe_fd(void)
{
	int p[2];

	ck_assert_int_eq(pipe(p), 0);
	close(p[1]);
	return p[0];
}

START_TEST(bad_arguments)
{
	static const struct {
		int server, proto, flags, kind; /* kind 0 TCP socket, 1 pipe, 2 UDP socket */
		char *myname, *sni;
		int want;
		const char *detail;
	} rows[] = {
	        {0, IPPROTO_TCP, 0x100, 0, NULL, NULL, EINVAL, "flags 0x100"},
	        {0, IPPROTO_TCP, STARTTLS_PEERCERT_NONE, 0, NULL, NULL, EINVAL, "not for a client"},
	        {1, IPPROTO_TCP, STARTTLS_LOCALCERT_NONE, 0, NULL, NULL, EINVAL, "not for a server"},
	        {1, IPPROTO_TCP, STARTTLS_PEERCERT_NONE | STARTTLS_PEERCERT_OPTIONAL, 0, NULL, NULL, EINVAL, "exclude"},
	        {0, 99, 0, 0, NULL, NULL, EINVAL, "protocol 99"},
	        {0, IPPROTO_UDP, 0, 0, NULL, NULL, EINVAL, "SOCK_DGRAM"},
	        {1, IPPROTO_UDP, 0, 2, NULL, NULL, EINVAL, "connected"},
	        {1, IPPROTO_SCTP, 0, 0, NULL, NULL, EPROTONOSUPPORT, "SCTP"},
	        {0, IPPROTO_TCP, 0, 0, "bad..name", NULL, EINVAL, "myname"},
	        {0, IPPROTO_TCP, 0, 0, "@example.test", NULL, EINVAL, "myname"},
	        {0, IPPROTO_TCP, 0, 0, NULL, "not a name", EINVAL, "sniname"},
	        {0, IPPROTO_TCP, 0, 1, NULL, NULL, EINVAL, "not a socket"},
	        {1, IPPROTO_TCP, 0, 2, NULL, NULL, EINVAL, "SOCK_STREAM"},
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int fd = rows[i].kind == 1   ? pipe_fd()
		         : rows[i].kind == 2 ? socket(AF_INET, SOCK_DGRAM, 0)
		                             : socket(AF_INET, SOCK_STREAM, 0);
		int rv;

		errno = 0;
		rv = rows[i].server
		             ? starttls_server(fd, rows[i].proto, rows[i].myname,
		                               rows[i].flags, NULL, NULL, 0)
		             : starttls_client(fd, rows[i].proto, rows[i].myname,
		                               rows[i].flags, rows[i].sni, NULL, 0);
		ck_assert_msg(rv == -1 && errno == rows[i].want,
		              "row %zu: rv %d errno %d (%s), want %d", i, rv, errno,
		              starttls_errstr(), rows[i].want);
		ck_assert_msg(strstr(starttls_errstr(), rows[i].detail) != NULL,
		              "row %zu: detail \"%s\"", i, starttls_errstr());
		assert_closed(fd);
	}
	/* a descriptor that is not open */
	ck_assert_int_eq(starttls_client(-1, IPPROTO_TCP, NULL, 0, NULL, NULL, 0), -1);
	ck_assert_int_eq(errno, EINVAL);
}
END_TEST

/* A call that must fail before any byte is sent: on a socket that is
 * connected to nobody. */
static int unconnected(char *myname, int flags, char *sni)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0), rv, e;
	ino_t ino = ino_of(fd);

	rv = starttls_client(fd, IPPROTO_TCP, myname, flags, sni, NULL, 0);
	e = errno;
	assert_closed_ino(fd, ino);
	errno = e;
	return rv;
}

START_TEST(no_credential)
{
	ck_assert_int_eq(unconnected("nobody.example.test", 0, "www.example.test"), -1);
	ck_assert_int_eq(errno, ENOKEY);
	ck_assert_ptr_nonnull(strstr(starttls_errstr(), "nobody.example.test"));
	ck_assert_int_eq(unconnected("locked.example.test", 0, "www.example.test"), -1);
	ck_assert_int_eq(errno, EACCES);
}
END_TEST

START_TEST(broken_config)
{
	char p[600];

	snprintf(p, sizeof(p), "%s/broken.conf", dir);
	FILE *fp = fopen(p, "w");
	fputs("[tls]\nhandshake_timeout = 5\n", fp);
	fclose(fp);
	char *saved = strdup(getenv("TLSPOOL_CONFIG"));

	setenv("TLSPOOL_CONFIG", p, 1);
	ck_assert_int_eq(unconnected(NULL, 0, "www.example.test"), -1);
	setenv("TLSPOOL_CONFIG", saved, 1);
	free(saved);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_nonnull(strstr(starttls_errstr(), "broken.conf:2: handshake_timeout"));
}
END_TEST

/* --- negative cases: DANE fails closed ----------------------------------- */

static const struct {
	int which;
	char *sni;
	const char *detail;
} closed_rows[] = {
        {L_WRONG, "www.example.test", ""},
        {L_BOGUS, "www.bogus.test", "bogus"},
        {L_EXPIRED, "www.expired.test", "RRSIG expired"},
        {L_INSECURE, "www.insecure.test", "insecure"},
        {L_NOTLSA, "www.example.test", ""},
};

START_TEST(dane_fails_closed)
{
	struct server *s = start_server(closed_rows[_i].which, NULL,
	                                STARTTLS_PEERCERT_NONE, NULL, 1);
	char peer[64] = "untouched";
	int rv = client(closed_rows[_i].which, NULL, 0, closed_rows[_i].sni, peer,
	                sizeof(peer));

	ck_assert_msg(rv == -1 && errno == EKEYREJECTED, "rv %d errno %d: %s", rv,
	              errno, starttls_errstr());
	ck_assert_msg(strstr(starttls_errstr(), closed_rows[_i].detail) != NULL,
	              "detail \"%s\"", starttls_errstr());
	ck_assert_str_eq(peer, "untouched");
	join_server(s);
	free(s);
}
END_TEST

START_TEST(peer_closes_during_handshake)
{
	int fd;

	/* the peer accepts and closes at once */
	int rv;
	pid_t pid = fork();

	if (pid == 0) {
		close(accept(listener[L_CLOSER], NULL, NULL));
		_exit(0);
	}
	fd = connect_to(port[L_CLOSER]);
	rv = starttls_client(fd, IPPROTO_TCP, NULL, 0, "www.example.test", NULL, 0);
	ck_assert_msg(rv == -1 && errno == ECONNRESET, "errno %d: %s", errno,
	              starttls_errstr());
	assert_closed(fd);
	waitpid(pid, NULL, 0);
}
END_TEST

START_TEST(handshake_timeout)
{
	/* accepted by the kernel, never answered */
	int rv = client(L_SILENT, NULL, 0, "www.example.test", NULL, 0);

	ck_assert_msg(rv == -1 && errno == ETIMEDOUT, "errno %d: %s", errno,
	              starttls_errstr());
	{
		char want[32];

		snprintf(want, sizeof(want), "%u ms", timeout_ms());
		ck_assert_ptr_nonnull(strstr(starttls_errstr(), want));
	}
}
END_TEST

static int refuse_all(char *sni)
{
	(void)sni;
	return 0;
}

START_TEST(checksni_refuses)
{
	struct server *s = start_server(L_GOOD, NULL, STARTTLS_PEERCERT_NONE,
	                                refuse_all, 0);
	int rv = client(L_GOOD, NULL, 0, "www.example.test", NULL, 0);

	join_server(s);
	ck_assert_int_eq(rv, -1);
	ck_assert_int_eq(s->rv, -1);
	ck_assert_msg(s->err == EPERM, "server errno %d: %s", s->err, s->errstr);
	ck_assert_ptr_nonnull(strstr(s->errstr, "refused by checksni"));
	free(s);
}
END_TEST

START_TEST(sni_without_identity)
{
	struct server *s = start_server(L_GOOD, NULL, STARTTLS_PEERCERT_NONE, NULL, 0);
	int rv = client(L_GOOD, NULL, 0, "other.example.test", NULL, 0);

	join_server(s);
	ck_assert_int_eq(rv, -1);
	ck_assert_msg(s->rv == -1 && s->err == ENOKEY, "server errno %d: %s",
	              s->err, s->errstr);
	free(s);
}
END_TEST

/* A TLS 1.3 client has finished its handshake before the server sees
 * that it sent no certificate: its call may succeed, but then its
 * descriptor reports the server's alert as an error, never as EOF. */
START_TEST(client_certificate_required)
{
	struct server *s = start_server(L_GOOD, "www.example.test", 0, NULL, 0);
	int rv = client(L_GOOD, NULL, 0, "www.example.test", NULL, 0);

	join_server(s);
	ck_assert_msg(s->rv == -1 && s->err == EKEYREJECTED, "server errno %d: %s",
	              s->err, s->errstr);
	ck_assert_int_eq(strstr(s->errstr, "no certificate") != NULL, 1);
	if (rv >= 0) {
		starttls_end_info end;
		char b;

		errno = 0;
		ck_assert_int_eq(read(rv, &b, 1), -1);
		ck_assert_int_eq(errno, ECONNRESET);
		ck_assert_int_eq(starttls_end(rv, &end), 0);
		ck_assert_int_eq(end.kind, STARTTLS_END_ALERT);
		ck_assert_int_eq(end.alert, 116); /* certificate_required */
		close(rv);
	} else {
		/* TLS 1.2: the alert arrives within the handshake */
		ck_assert_int_eq(starttls_errclass(), STARTTLS_ERR_PEER_REJECTED);
	}
	free(s);
}
END_TEST

/* A client that the server refuses after the handshake (here by
 * STARTTLS_NO_REMOTE_DOMAIN) hears access_denied. */
START_TEST(refused_client_hears_access_denied)
{
	struct server *s = start_server(L_GOOD, "www.example.test",
	                                STARTTLS_NO_REMOTE_DOMAIN, NULL, 0);
	int rv = client(L_GOOD, "client.example.test", 0, "www.example.test",
	                NULL, 0);

	join_server(s);
	ck_assert_msg(s->rv == -1 && s->err == EPERM, "server errno %d: %s",
	              s->err, s->errstr);
	if (rv >= 0) {
		starttls_end_info end;
		char b;

		errno = 0;
		ck_assert_int_eq(read(rv, &b, 1), -1);
		ck_assert_int_eq(errno, ECONNRESET);
		ck_assert_int_eq(starttls_end(rv, &end), 0);
		ck_assert_int_eq(end.kind, STARTTLS_END_ALERT);
		ck_assert_int_eq(end.alert, 49); /* access_denied */
		close(rv);
	} else {
		ck_assert_int_eq(starttls_errclass(), STARTTLS_ERR_PEER_REJECTED);
	}
	free(s);
}
END_TEST

START_TEST(client_with_wrong_record)
{
	struct server *s = start_server(L_GOOD, "www.example.test", 0, NULL, 0);
	int rv = client(L_GOOD, "wrongclient.example.test", 0, "www.example.test",
	                NULL, 0);

	join_server(s);
	ck_assert_msg(s->rv == -1 && s->err == EKEYREJECTED, "server errno %d: %s",
	              s->err, s->errstr);
	ck_assert_ptr_nonnull(strstr(s->errstr, "wrongclient.example.test"));
	if (rv >= 0)
		close(rv);
	free(s);
}
END_TEST

START_TEST(no_remote_domain)
{
	struct server *s = start_server(L_GOOD, NULL, STARTTLS_PEERCERT_NONE, NULL, 0);
	int rv = client(L_GOOD, NULL, STARTTLS_NO_REMOTE_DOMAIN, "www.example.test",
	                NULL, 0);

	ck_assert_msg(rv == -1 && errno == EPERM, "errno %d: %s", errno,
	              starttls_errstr());
	join_server(s);
	free(s);
}
END_TEST

START_TEST(peername_one_byte_short)
{
	struct server *s = start_server(L_GOOD, NULL, STARTTLS_PEERCERT_NONE, NULL, 0);
	char buf[32];
	size_t need = strlen("www.example.test") + 1;
	int rv;

	memset(buf, 'X', sizeof(buf));
	rv = client(L_GOOD, NULL, 0, "www.example.test", buf, need - 1);
	ck_assert_msg(rv == -1 && errno == ENAMETOOLONG, "errno %d: %s", errno,
	              starttls_errstr());
	for (size_t i = 0; i < sizeof(buf); i++)
		ck_assert_int_eq(buf[i], 'X');
	join_server(s);
	free(s);
}
END_TEST

/* --- positive cases ---------------------------------------------------------- */

static void echo_check(int fd)
{
	char buf[64];

	ck_assert_int_eq(write(fd, "ping\n", 5), 5);
	ck_assert_int_eq(read(fd, buf, sizeof(buf)), 5);
	ck_assert_mem_eq(buf, "ping\n", 5);
}

START_TEST(server_authenticated)
{
	struct server *s = start_server(L_GOOD, NULL, STARTTLS_PEERCERT_OPTIONAL, NULL, 1);
	char peer[64] = "";
	int rv = client(L_GOOD, NULL, 0, "www.example.test", peer, sizeof(peer));

	ck_assert_msg(rv >= 0, "errno %d: %s", errno, starttls_errstr());
	ck_assert_str_eq(peer, "www.example.test");
	echo_check(rv);
	/* half-close: our EOF reaches the server, whose close reaches us */
	shutdown(rv, SHUT_WR);
	{
		char b;

		ck_assert_int_eq(read(rv, &b, 1), 0);
	}
	close(rv);
	join_server(s);
	ck_assert_int_ge(s->rv, 0);
	ck_assert_str_eq(s->peer, ""); /* anonymous client, as allowed */
	free(s);
}
END_TEST

START_TEST(reference_name_from_certificate)
{
	/* no sniname: the server names itself www.example.test */
	struct server *s = start_server(L_GOOD, "www.example.test",
	                                STARTTLS_PEERCERT_NONE, NULL, 1);
	char peer[64] = "";
	int rv = client(L_GOOD, NULL, 0, NULL, peer, sizeof(peer));

	ck_assert_msg(rv >= 0, "errno %d: %s", errno, starttls_errstr());
	ck_assert_str_eq(peer, "www.example.test");
	echo_check(rv);
	close(rv);
	join_server(s);
	free(s);
}
END_TEST

START_TEST(mutual_domains)
{
	struct server *s = start_server(L_GOOD, NULL, 0, NULL, 1);
	char peer[64] = "";
	int rv = client(L_GOOD, "client.example.test", 0, "www.example.test", peer,
	                sizeof(peer));

	ck_assert_msg(rv >= 0, "errno %d: %s", errno, starttls_errstr());
	echo_check(rv);
	close(rv);
	join_server(s);
	ck_assert_msg(s->rv >= 0, "server errno %d: %s", s->err, s->errstr);
	ck_assert_str_eq(s->peer, "client.example.test");
	ck_assert_str_eq(peer, "www.example.test");
	free(s);
}
END_TEST

static int count_fds_now(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

/* The count once the relay has released what was closed: stable over
 * several samples. */
static int count_fds(void)
{
	int last = count_fds_now(), same = 0;

	for (int i = 0; i < 200 && same < 5; i++) {
		int n;

		usleep(10000);
		n = count_fds_now();
		same = n == last ? same + 1 : 0;
		last = n;
	}
	return last;
}

static int count_threads(void)
{
	char line[256];
	int n = -1;
	FILE *fp = fopen("/proc/self/status", "r");

	while (fgets(line, sizeof(line), fp) != NULL)
		if (sscanf(line, "Threads: %d", &n) == 1)
			break;
	fclose(fp);
	return n;
}

/* A server thread that serves n connections in a row and echoes each. */
struct many {
	int n, ok;
};

static void *serve_many(void *arg)
{
	struct many *m = arg;

	for (int i = 0; i < m->n; i++) {
		int fd = accept(listener[L_GOOD], NULL, NULL);
		int rv = starttls_server(fd, IPPROTO_TCP, NULL, STARTTLS_PEERCERT_NONE,
		                         NULL, NULL, 0);
		char buf[16];

		if (rv < 0)
			continue;
		if (read(rv, buf, sizeof(buf)) == 5 && write(rv, buf, 5) == 5)
			m->ok++;
		close(rv);
	}
	return NULL;
}

START_TEST(no_descriptor_leaks)
{
	int light = getenv("VALGRIND") != NULL;
	int rounds = light ? 20 : 1000;
	int before, after;
	struct many m = {rounds, 0};
	pthread_t t;

	/* warm up: configuration, resolver, relay threads */
	pthread_create(&t, NULL, serve_many, &(struct many){1, 0});
	close(client(L_GOOD, NULL, 0, "www.example.test", NULL, 0));
	pthread_join(t, NULL);
	before = count_fds();
	for (int i = 0; i < rounds; i++) {
		ck_assert_int_eq(unconnected("bad..name", 0, NULL), -1);
		ck_assert_int_eq(unconnected("nobody.example.test", 0, NULL), -1);
	}
	pthread_create(&t, NULL, serve_many, &m);
	for (int i = 0; i < rounds; i++) {
		char buf[8];
		int fd = client(L_GOOD, NULL, 0, "www.example.test", NULL, 0);

		ck_assert_msg(fd >= 0, "round %d: %s", i, starttls_errstr());
		ck_assert_int_eq(write(fd, "hello", 5), 5);
		ck_assert_int_eq(read(fd, buf, sizeof(buf)), 5);
		close(fd);
	}
	pthread_join(t, NULL);
	ck_assert_int_eq(m.ok, rounds);
	after = count_fds(); /* waits for the relay's releases */
	ck_assert_int_eq(after, before);
}
END_TEST

START_TEST(many_at_once_threads_flat)
{
	enum { N = 200 };
	int n = getenv("VALGRIND") != NULL ? 20 : N, fds[N], before, during;
	struct server *srv[N];
	pthread_t t;

	/* warm up so that the relay threads exist */
	pthread_create(&t, NULL, serve_many, &(struct many){1, 0});
	close(client(L_GOOD, NULL, 0, "www.example.test", NULL, 0));
	pthread_join(t, NULL);
	before = count_threads();
	/* n connections open at once, each relayed at both ends */
	for (int i = 0; i < n; i++) {
		srv[i] = start_server(L_GOOD, NULL, STARTTLS_PEERCERT_NONE, NULL, 2);
		fds[i] = client(L_GOOD, NULL, 0, "www.example.test", NULL, 0);
		ck_assert_msg(fds[i] >= 0, "connection %d: %s", i, starttls_errstr());
		join_server(srv[i]);
		ck_assert_msg(srv[i]->rv >= 0, "server %d: %s", i, srv[i]->errstr);
	}
	during = count_threads();
	for (int i = 0; i < n; i++) {
		char buf[16];
		int len = snprintf(buf, sizeof(buf), "msg %d", i);

		ck_assert_int_eq(write(fds[i], buf, (size_t)len), len);
		ck_assert_int_eq(read(srv[i]->rv, buf, sizeof(buf)), len);
		ck_assert_int_eq(write(srv[i]->rv, buf, (size_t)len), len);
		ck_assert_int_eq(read(fds[i], buf, sizeof(buf)), len);
	}
	/* no thread per connection: the count did not grow with them */
	ck_assert_int_eq(during, before);
	for (int i = 0; i < n; i++) {
		close(fds[i]);
		close(srv[i]->rv);
		free(srv[i]);
	}
}
END_TEST


/* --- deadlines: the whole call, however slowly the peer sends ---------------- */

#include <gnutls/gnutls.h>
#include <time.h>

static long long now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* The start of a TLS handshake record announcing 16 KiB, then zeros:
 * never complete, one byte every 200 ms, until the peer closes. */
static void drip(int fd)
{
	static const unsigned char head[] = {0x16, 0x03, 0x01, 0x40, 0x00};
	size_t i;

	for (i = 0; i < 100; i++) {
		unsigned char b = i < sizeof(head) ? head[i] : 0;
		struct timespec ts = {0, 200 * 1000 * 1000};

		if (send(fd, &b, 1, MSG_NOSIGNAL) != 1)
			break;
		nanosleep(&ts, NULL);
	}
}

START_TEST(slow_client_hello_meets_deadline)
{
	struct server *s;
	long long t0;
	int fd;

	s = calloc(1, sizeof(*s));
	s->listener = listener[L_DRIP];
	s->myname = "www.example.test";
	s->flags = STARTTLS_PEERCERT_NONE;
	t0 = now_ms();
	pthread_create(&s->thread, NULL, serve, s);
	fd = connect_to(port[L_DRIP]);
	drip(fd); /* ends when the server gives up and closes */
	join_server(s);
	close(fd);
	ck_assert_msg(s->rv == -1 && s->err == ETIMEDOUT, "server: %d %s",
	              s->err, s->errstr);
	/* at handshake_timeout_ms, within 10 % */
	ck_assert_int_le(now_ms() - t0, timeout_ms() + slack_ms());
	ck_assert_int_ge(now_ms() - t0, timeout_ms() - 100);
	free(s);
}
END_TEST

START_TEST(slow_server_meets_deadline)
{
	pid_t pid = fork();
	long long t0;
	int rv;

	if (pid == 0) {
		int fd = accept(listener[L_SLOWSERVER], NULL, NULL);

		drip(fd);
		_exit(0);
	}
	t0 = now_ms();
	rv = client(L_SLOWSERVER, NULL, 0, "www.example.test", NULL, 0);
	ck_assert_msg(rv == -1 && errno == ETIMEDOUT, "errno %d: %s", errno,
	              starttls_errstr());
	ck_assert_int_eq(starttls_errclass(), STARTTLS_ERR_TIMEOUT);
	ck_assert_int_le(now_ms() - t0, timeout_ms() + slack_ms());
	ck_assert_int_ge(now_ms() - t0, timeout_ms() - 100);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}
END_TEST

/* --- checksni sees every ClientHello ------------------------------------------ */

static char sni_seen[300];
static int sni_calls;

static int record_and_refuse(char *sni)
{
	snprintf(sni_seen, sizeof(sni_seen), "%s", sni);
	sni_calls++;
	return 0;
}

START_TEST(checksni_sees_no_sni)
{
	struct server *s;
	int rv;

	sni_calls = 0;
	strcpy(sni_seen, "untouched");
	s = start_server(L_SNI, "www.example.test", STARTTLS_PEERCERT_NONE,
	                 record_and_refuse, 0);
	rv = client(L_SNI, NULL, 0, NULL, NULL, 0);
	join_server(s);
	ck_assert_int_eq(rv, -1);
	ck_assert_msg(s->rv == -1 && s->err == EPERM, "server: %d %s", s->err,
	              s->errstr);
	ck_assert_ptr_nonnull(strstr(s->errstr, "without SNI"));
	ck_assert_int_eq(sni_calls, 1);
	ck_assert_str_eq(sni_seen, "");
	free(s);
}
END_TEST

/* A raw GnuTLS client that sends a 255-octet SNI (starttls_client would
 * refuse it: not a host name). */
static void long_sni_client(unsigned p)
{
	gnutls_session_t ses;
	gnutls_certificate_credentials_t cred;
	char name[256];
	int fd = connect_to(p);

	for (int i = 0; i < 255; i++)
		name[i] = i % 64 == 63 ? '.' : 'a';
	name[255] = '\0';
	gnutls_certificate_allocate_credentials(&cred);
	gnutls_init(&ses, GNUTLS_CLIENT);
	gnutls_set_default_priority(ses);
	gnutls_credentials_set(ses, GNUTLS_CRD_CERTIFICATE, cred);
	gnutls_server_name_set(ses, GNUTLS_NAME_DNS, name, 255);
	gnutls_transport_set_int(ses, fd);
	gnutls_handshake_set_timeout(ses, 3000);
	(void)gnutls_handshake(ses);
	gnutls_deinit(ses);
	gnutls_certificate_free_credentials(cred);
	close(fd);
}

START_TEST(checksni_sees_long_sni)
{
	struct server *s;

	sni_calls = 0;
	s = start_server(L_SNI, NULL, STARTTLS_PEERCERT_NONE, record_and_refuse,
	                 0);
	long_sni_client(port[L_SNI]);
	join_server(s);
	ck_assert_int_eq(s->rv, -1);
	ck_assert_int_eq(sni_calls, 1);
	ck_assert_int_eq(strlen(sni_seen), 255);
	free(s);
}
END_TEST

/* A raw GnuTLS client that asks for session tickets: does the server
 * (starttls_server, echoing) send one before its echo?  1 if it did. */
static int raw_client_got_ticket(unsigned p)
{
	gnutls_session_t ses;
	gnutls_certificate_credentials_t cred;
	char buf[16];
	int fd = connect_to(p), got;
	ssize_t n;

	gnutls_certificate_allocate_credentials(&cred);
	gnutls_init(&ses, GNUTLS_CLIENT);
	gnutls_set_default_priority(ses);
	gnutls_credentials_set(ses, GNUTLS_CRD_CERTIFICATE, cred);
	gnutls_server_name_set(ses, GNUTLS_NAME_DNS, "www.example.test", 16);
	gnutls_transport_set_int(ses, fd);
	gnutls_handshake_set_timeout(ses, 3000);
	ck_assert_int_eq(gnutls_handshake(ses), 0);
	ck_assert_int_eq(gnutls_protocol_get_version(ses), GNUTLS_TLS1_3);
	ck_assert_int_eq(gnutls_record_send(ses, "ping\n", 5), 5);
	/* a NewSessionTicket comes before the echo (RFC 8446 s4.6.1) */
	do
		n = gnutls_record_recv(ses, buf, sizeof(buf));
	while (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED);
	ck_assert_int_eq(n, 5);
	got = (gnutls_session_get_flags(ses) & GNUTLS_SFLAGS_SESSION_TICKET) !=
	      0;
	gnutls_bye(ses, GNUTLS_SHUT_WR);
	gnutls_deinit(ses);
	gnutls_certificate_free_credentials(cred);
	close(fd);
	return got;
}

/* No session is ever resumed (a resumed session shows no certificate to
 * authenticate): a server issues no ticket, which also spares the work
 * (docs/architecture.md, "Performance"). */
START_TEST(server_issues_no_ticket)
{
	struct server *s = start_server(L_SNI, "www.example.test",
	                                STARTTLS_PEERCERT_NONE, NULL, 1);

	ck_assert_int_eq(raw_client_got_ticket(port[L_SNI]), 0);
	join_server(s);
	ck_assert_int_ge(s->rv, 0);
	free(s);
}
END_TEST

struct raw_server {
	pthread_t thread;
	int rv;
	unsigned segs; /* data segments received by the handshake's end */
};

/* The bare server's flight in one segment, as tlspool's server sends it:
 * its ChangeCipherSpec (after the ServerHello) with MSG_MORE. */
static ssize_t push_more_after_ccs(gnutls_transport_ptr_t p,
                                   const giovec_t *iov, int iovcnt)
{
	struct msghdr m = {.msg_iov = (struct iovec *)(uintptr_t)iov,
	                   .msg_iovlen = (size_t)iovcnt};
	int more = iovcnt > 0 && iov[iovcnt - 1].iov_len == 6 &&
	           ((const unsigned char *)iov[iovcnt - 1].iov_base)[0] == 20;

	return sendmsg((int)(intptr_t)p, &m,
	               MSG_NOSIGNAL | (more ? MSG_MORE : 0));
}

/* A bare GnuTLS server on L_GOOD: one handshake, then the count. */
static void *raw_serve(void *arg)
{
	struct raw_server *rs = arg;
	gnutls_certificate_credentials_t cred;
	gnutls_session_t s;
	char k[4200], c[4200];
	int fd = accept(listener[L_GOOD], NULL, NULL);

	snprintf(k, sizeof(k), "%s/ks.pem", dir);
	snprintf(c, sizeof(c), "%s/cs.pem", dir);
	gnutls_certificate_allocate_credentials(&cred);
	gnutls_certificate_set_x509_key_file(cred, c, k, GNUTLS_X509_FMT_PEM);
	gnutls_init(&s, GNUTLS_SERVER | GNUTLS_NO_TICKETS);
	gnutls_set_default_priority(s);
	gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred);
	gnutls_transport_set_int(s, fd);
	gnutls_transport_set_vec_push_function(s, push_more_after_ccs);
	do
		rs->rv = gnutls_handshake(s);
	while (rs->rv < 0 && !gnutls_error_is_fatal(rs->rv));
	rs->segs = tp_tcp_counts(fd).data_segs_in;
	gnutls_bye(s, GNUTLS_SHUT_WR);
	gnutls_deinit(s);
	gnutls_certificate_free_credentials(cred);
	close(fd);
	return NULL;
}

/* The client's ChangeCipherSpec (TLS 1.3 middlebox compatibility) goes
 * out with the Finished behind it in one segment: the server gets the
 * ClientHello and one more segment, not two.  (The merge is the
 * kernel's to make: a segment or an ACK that arrives between the two
 * sends what was held at once; here the server's flight comes in one
 * segment, as tlspool's own server sends it.) */
START_TEST(ccs_rides_with_finished)
{
	struct raw_server rs = {0};
	int rv;

	pthread_create(&rs.thread, NULL, raw_serve, &rs);
	rv = client(L_GOOD, NULL, 0, "www.example.test", NULL, 0);
	pthread_join(rs.thread, NULL);
	ck_assert_msg(rv >= 0, "%s", starttls_errstr());
	ck_assert_int_eq(rs.rv, 0);
	ck_assert_uint_eq(rs.segs, 2);
	close(rv);
}
END_TEST

/* --- the context API -------------------------------------------------------- */

struct sni_count {
	int calls;
	char last[256];
};

static int count_sni(const char *sni, void *arg)
{
	struct sni_count *n = arg;

	n->calls++;
	snprintf(n->last, sizeof(n->last), "%s", sni);
	return 1;
}

struct ctx_server {
	pthread_t thread;
	starttls_ctx *ctx;
	struct sni_count count;
	int rv, err;
	char peer[320];
};

static void *ctx_serve(void *arg)
{
	struct ctx_server *cs = arg;
	int fd = accept(listener[L_CTX], NULL, NULL);

	cs->rv = starttls_ctx_server(cs->ctx, fd, IPPROTO_TCP, NULL,
	                             STARTTLS_PEERCERT_NONE, count_sni,
	                             &cs->count, cs->peer, sizeof(cs->peer));
	cs->err = errno;
	if (cs->rv >= 0)
		close(cs->rv);
	return NULL;
}

START_TEST(two_contexts)
{
	char path[600];
	starttls_ctx *good, *deaf;
	struct ctx_server cs;
	char peer[64] = "";
	int fd, rv;

	/* the context of the test's zones, and one whose DNS never answers */
	good = starttls_ctx_new(getenv("TLSPOOL_CONFIG"));
	ck_assert_msg(good != NULL, "%s", starttls_errstr());
	snprintf(path, sizeof(path), "%s/deaf.conf", dir);
	{
		FILE *fp = fopen(path, "w");

		fprintf(fp, "[dns]\nupstream = 127.0.0.1@9\ntimeout_ms = 300\n"
		            "trust_anchor = %s/z/root.key\n",
		        dir);
		fclose(fp);
	}
	deaf = starttls_ctx_new(path);
	ck_assert_msg(deaf != NULL, "%s", starttls_errstr());

	memset(&cs, 0, sizeof(cs));
	cs.ctx = good;
	pthread_create(&cs.thread, NULL, ctx_serve, &cs);
	fd = connect_to(port[L_CTX]);
	rv = starttls_ctx_client(good, fd, IPPROTO_TCP, NULL, 0,
	                         "www.example.test", peer, sizeof(peer));
	ck_assert_msg(rv >= 0, "%s", starttls_errstr());
	ck_assert_str_eq(peer, "www.example.test");
	close(rv);
	pthread_join(cs.thread, NULL);
	ck_assert_int_eq(cs.count.calls, 1);
	ck_assert_str_eq(cs.count.last, "www.example.test");

	memset(&cs, 0, sizeof(cs));
	cs.ctx = good;
	pthread_create(&cs.thread, NULL, ctx_serve, &cs);
	fd = connect_to(port[L_CTX]);
	rv = starttls_ctx_client(deaf, fd, IPPROTO_TCP, NULL, 0,
	                         "www.example.test", NULL, 0);
	ck_assert_int_eq(rv, -1);
	ck_assert_msg(starttls_errclass() == STARTTLS_ERR_DNS_TIMEOUT ||
	                      starttls_errclass() == STARTTLS_ERR_DNS_FAILURE,
	              "class %s: %s", starttls_class_name(starttls_errclass()),
	              starttls_errstr());
	pthread_join(cs.thread, NULL);
	starttls_ctx_free(deaf);
	starttls_ctx_free(good);
	starttls_ctx_free(NULL);
}
END_TEST

START_TEST(context_errors)
{
	char path[600];

	ck_assert_ptr_null(starttls_ctx_new("/nonexistent/tlspool.conf"));
	ck_assert_ptr_nonnull(strstr(starttls_errstr(), "/nonexistent"));
	ck_assert_int_eq(starttls_errclass(), STARTTLS_ERR_CONFIG);
	snprintf(path, sizeof(path), "%s/bad-ctx.conf", dir);
	{
		FILE *fp = fopen(path, "w");

		fputs("[tls]\nno_such_key = 1\n", fp);
		fclose(fp);
	}
	ck_assert_ptr_null(starttls_ctx_new(path));
	ck_assert_ptr_nonnull(strstr(starttls_errstr(), "bad-ctx.conf:2"));
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("starttls");
	TCase *neg = tcase_create("negative");
	TCase *pos = tcase_create("positive");

	tcase_set_timeout(neg, 60);
	tcase_set_timeout(pos, 300);
	tcase_add_test(neg, bad_arguments);
	tcase_add_test(neg, no_credential);
	tcase_add_test(neg, broken_config);
	tcase_add_loop_test(neg, dane_fails_closed, 0,
	                    sizeof(closed_rows) / sizeof(closed_rows[0]));
	tcase_add_test(neg, peer_closes_during_handshake);
	tcase_add_test(neg, handshake_timeout);
	tcase_add_test(neg, checksni_refuses);
	tcase_add_test(neg, sni_without_identity);
	tcase_add_test(neg, client_certificate_required);
	tcase_add_test(neg, refused_client_hears_access_denied);
	tcase_add_test(neg, client_with_wrong_record);
	tcase_add_test(neg, no_remote_domain);
	tcase_add_test(neg, peername_one_byte_short);
	tcase_add_test(neg, slow_client_hello_meets_deadline);
	tcase_add_test(neg, slow_server_meets_deadline);
	tcase_add_test(neg, checksni_sees_no_sni);
	tcase_add_test(neg, checksni_sees_long_sni);
	tcase_add_test(neg, context_errors);
	tcase_add_test(pos, two_contexts);
	tcase_add_test(pos, server_authenticated);
	tcase_add_test(pos, server_issues_no_ticket);
	tcase_add_test(pos, ccs_rides_with_finished);
	tcase_add_test(pos, reference_name_from_certificate);
	tcase_add_test(pos, mutual_domains);
	tcase_add_test(pos, no_descriptor_leaks);
	tcase_add_test(pos, many_at_once_threads_flat);
	suite_add_tcase(s, neg);
	suite_add_tcase(s, pos);
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
