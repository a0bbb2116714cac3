/*
 * libFuzzer target: what a STARTTLS peer sends before the TLS handshake
 * (starttls_prelude_client(3)), on either side of every protocol.  The
 * first octet picks the protocol (low 7 bits, modulo their number, in
 * the order of starttls_prelude_protocols()) and the side (high bit: the
 * side under test is the server); the rest is written into one end of a
 * socketpair, which is then shut for writing, and the prelude runs on the
 * other end.
 *
 * What it promises, checked on every input: a return of 0 or -1; on -1 a
 * detail and a class; on 0 the step "done"; every report field a
 * terminated string; never a byte read past the prelude (what is left in
 * the socket is a suffix of the input, and after a success on the client
 * side it is empty or starts like a TLS record, RFC 8446 section 5.1).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <tlspool/prelude.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const protos[] = {"smtp",     "lmtp",  "submission",  "imap",
                                     "pop3",     "sieve", "ftp",         "nntp",
                                     "irc",      "xmpp",  "xmpp-server", "ldap",
                                     "postgres", "mysql"};

#define NPROTOS (sizeof(protos) / sizeof(protos[0]))

static void terminated(const char *s, size_t cap)
{
	if (memchr(s, '\0', cap) == NULL)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t left[70000];
	starttls_prelude p;
	int sv[2], server, r;
	size_t nleft = 0;
	ssize_t n;

	if (size < 1 || size > 60000)
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		abort();
	server = data[0] >> 7;
	memset(&p, 0, sizeof(p));
	p.protocol = protos[(data[0] & 0x7f) % NPROTOS];
	p.myname = "client.test";
	p.peerdomain = "example.test";
	p.timeout_ms = 2000;
	if (size > 1 &&
	    send(sv[1], data + 1, size - 1, MSG_NOSIGNAL) != (ssize_t)size - 1)
		abort();
	shutdown(sv[1], SHUT_WR);
	r = server ? starttls_prelude_server(sv[0], &p)
	           : starttls_prelude_client(sv[0], &p);
	if (r != 0 && r != -1)
		abort();
	if (r == -1 && (starttls_errstr()[0] == '\0' ||
	                starttls_errclass() == STARTTLS_OK || errno == 0))
		abort();
	if (r == 0 && strcmp(p.step, "done") != 0)
		abort();
	terminated(p.greeting, sizeof(p.greeting));
	terminated(p.hello, sizeof(p.hello));
	terminated(p.capabilities, sizeof(p.capabilities));
	terminated(p.request, sizeof(p.request));
	terminated(p.reply, sizeof(p.reply));
	terminated(p.step, sizeof(p.step));
	/* what the prelude left unread: the tail of the input */
	while ((n = recv(sv[0], left + nleft, sizeof(left) - nleft,
	                 MSG_DONTWAIT)) > 0)
		nleft += (size_t)n;
	if (nleft > size - 1 ||
	    memcmp(left, data + 1 + (size - 1 - nleft), nleft) != 0)
		abort();
	/* after a success: a TLS record or nothing; on the server side
	 * nothing at all but after MySQL's SSL request (CVE-2011-0411) */
	if (r == 0 && nleft > 0 &&
	    ((server && strcmp(p.protocol, "mysql") != 0) || left[0] < 20 ||
	     left[0] > 23))
		abort();
	close(sv[0]);
	close(sv[1]);
	return 0;
}
