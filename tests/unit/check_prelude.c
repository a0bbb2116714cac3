/*
 * The STARTTLS preludes (src/lib/prelude*.c, starttls_prelude_client(3)),
 * table-driven, against a scripted peer on a socketpair: what the peer
 * says is written into the socket before the call (or in pieces by a
 * child, for replies split across reads and dripping peers), what the
 * side under test sent is read afterwards, and what it left unread in
 * the socket must be exactly what followed the prelude (the TLS bytes).
 *
 * Hostile cases first: no STARTTLS offered, error replies, lines too
 * long, EOF at each step, data pipelined after the STARTTLS exchange
 * (CVE-2011-0411), silent and dripping peers; then each protocol's
 * dialogue, client and server side.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <tlspool/prelude.h>

#include "testutil.h"

#define TLS_HELLO "\x16\x03\x01\x01\x05hello" /* no NUL: strlen() */

/* One case: the script the peer sends, what must come of it. */
struct row {
	const char *why;
	const char *proto;
	int server;       /* 1: the side under test is the server */
	const char *peer; /* what the peer sends */
	size_t peerlen;   /* 0: strlen(peer) */
	int eof;          /* the peer closes after its script */
	int err;          /* 0: success, else errno */
	starttls_class cls;
	const char *errstr; /* a substring of starttls_errstr(), or NULL */
	const char *sent;   /* a substring of what the side sent, or NULL */
	const char *left;   /* what is left in the socket; NULL: "" */
	const char *field;  /* "greeting=..." etc: a substring of a field */
};

#define B(s) s, sizeof(s) - 1

/* The LDAP StartTLS response with resultCode rc (RFC 4511 4.14.2). */
#define LDAP_RESP(rc) "0\x0c\x02\x01\x01x\x07\x0a\x01" rc "\x04\x00\x04\x00"
/* A MySQL greeting (protocol 10) with capability flags lo, hi. */
#define MYSQL_GREETING(lo1, lo2)                                               \
	"\x33\x00\x00\x00\x0a"                                                 \
	"8.0.1\x00\x01\x00\x00\x00"                                            \
	"abcdefgh\x00" lo1 lo2 "\x21\x02\x00\x08\x00\x15"                      \
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"                             \
	"abcdefghijkl\x00"

/* Filled in by main(): "220 " and 596 "x" (600 octets, no CRLF yet),
 * and a reply line of exactly 512 octets with its CRLF. */
static char long_line[700], line512[700];
/* Filled in by main(): a stream header, then a tag of 17000 octets. */
static char long_tag[18000];

#define SMTP_OK                                                                \
	"220 mx.example.test ESMTP\r\n250-mx.example.test\r\n250-PIPELINING"   \
	"\r\n250-SIZE 1000\r\n250 STARTTLS\r\n220 2.0.0 Ready\r\n"
#define XMPP_HEAD                                                              \
	"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "           \
	"xmlns:stream='http://etherx.jabber.org/streams' id='x1' "             \
	"from='example.test' version='1.0'>"

#define E_PRE EPROTO, STARTTLS_ERR_PRELUDE
#define E_EOF ECONNRESET, STARTTLS_ERR_CONNECTION

static const struct row hostile[] = {
        /* SMTP, client side */
        {"no STARTTLS offered", "smtp", 0,
         B("220 mx\r\n250-mx\r\n250 PIPELINING\r\n"), 1, E_PRE,
         "smtp client: the server offers no STARTTLS (RFC 3207 section 4) in "
         "its EHLO reply: PIPELINING",
         "EHLO client.test\r\n", "", NULL},
        {"554 greeting", "smtp", 0, B("554 5.3.2 go away\r\n"), 1, E_PRE,
         "the server's greeting is not 220: \"554 5.3.2 go away\"", NULL, "",
         NULL},
        {"5xx to EHLO", "smtp", 0, B("220 mx\r\n502 5.5.1 no EHLO\r\n"), 1,
         E_PRE, "the server answered EHLO with: \"502 5.5.1 no EHLO\"", NULL,
         "", NULL},
        {"454 to STARTTLS", "smtp", 0,
         B("220 mx\r\n250-mx\r\n250 STARTTLS\r\n454 4.7.0 TLS not "
           "available\r\n"),
         1, E_PRE,
         "the server answered STARTTLS with: \"454 4.7.0 TLS not available\"",
         "STARTTLS\r\n", "", "reply=4.7.0 TLS not available"},
        {"a line of 513 octets", "smtp", 0, long_line, 0, 1, E_PRE,
         "the server sent a line longer than 512 octets (RFC 5321 section "
         "4.5.3.1): \"220 xxx",
         NULL, NULL, NULL},
        {"a code change inside a reply", "smtp", 0,
         B("220 mx\r\n250-mx\r\n251 STARTTLS\r\n"), 1, E_PRE,
         "changed the code within one reply (250, then \"251 STARTTLS\")", NULL,
         "", NULL},
        {"not a reply", "smtp", 0, B("hello there\r\n"), 1, E_PRE,
         "not a reply: \"hello there\"", NULL, "", NULL},
        {"a NUL octet", "smtp", 0, B("220 mx\0x\r\n"), 1, E_PRE,
         "sent a NUL octet: \"220 mx\\x00", NULL, NULL, NULL},
        {"data after the go-ahead", "smtp", 0,
         B("220 mx\r\n250-mx\r\n250 STARTTLS\r\n220 go\r\n250 injected\r\n"), 0,
         E_PRE,
         "the server sent data after its go-ahead, before the TLS handshake "
         "(the response injection of CVE-2011-0411): \"250 injected",
         NULL, "250 injected\r\n", NULL},
        {"EOF before the greeting", "smtp", 0, B(""), 1, E_EOF,
         "smtp client: the server closed the connection during the greeting "
         "step",
         NULL, "", NULL},
        {"EOF inside the greeting", "smtp", 0, B("220 mx.exa"), 1, E_EOF,
         "during the greeting step, after \"220 mx.exa\"", NULL, "", NULL},
        {"EOF inside a multi-line greeting", "smtp", 0,
         B("220-mx\r\n220-more\r\n"), 1, E_EOF, "during the greeting step",
         NULL, "", NULL},
        {"EOF after the greeting", "smtp", 0, B("220 mx\r\n"), 1, E_EOF,
         "during the capabilities step", "EHLO client.test\r\n", "", NULL},
        {"EOF after the capabilities", "smtp", 0,
         B("220 mx\r\n250-mx\r\n250 STARTTLS\r\n"), 1, E_EOF,
         "during the starttls step", "STARTTLS\r\n", "", NULL},
        {"LMTP says LHLO", "lmtp", 0, B("220 mx\r\n250 mx\r\n"), 1, E_PRE,
         "offers no STARTTLS (RFC 3207 section 4) in its LHLO reply",
         "LHLO client.test\r\n", "", NULL},
        /* IMAP */
        {"IMAP PREAUTH", "imap", 0, B("* PREAUTH ready\r\n"), 1, E_PRE,
         "greets with PREAUTH", NULL, "", NULL},
        {"IMAP BYE greeting", "imap", 0, B("* BYE busy\r\n"), 1, E_PRE,
         "the server's greeting is not * OK: \"* BYE busy\"", NULL, "", NULL},
        {"IMAP no STARTTLS", "imap", 0,
         B("* OK hi\r\n* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\na1 OK done\r\n"), 1,
         E_PRE,
         "imap client: the server offers no STARTTLS (RFC 9051 section 6.2.1) "
         "in its capabilities: IMAP4rev1,AUTH=PLAIN",
         "a1 CAPABILITY\r\n", "", NULL},
        {"IMAP BAD to STARTTLS", "imap", 0,
         B("* OK hi\r\n* CAPABILITY IMAP4rev1 STARTTLS\r\na1 OK done\r\na2 BAD "
           "no\r\n"),
         1, E_PRE, "the server answered STARTTLS with: \"a2 BAD no\"",
         "a2 STARTTLS\r\n", "", NULL},
        {"IMAP NO to STARTTLS", "imap", 0,
         B("* OK hi\r\n* CAPABILITY IMAP4rev1 STARTTLS\r\na1 OK done\r\na2 NO "
           "no\r\n"),
         1, E_PRE, "\"a2 NO no\"", NULL, "", NULL},
        {"IMAP injection", "imap", 0,
         B("* OK hi\r\n* CAPABILITY STARTTLS\r\na1 OK\r\na2 OK go\r\n* BYE "
           "x\r\n"),
         0, E_PRE, "CVE-2011-0411", NULL, "* BYE x\r\n", NULL},
        {"IMAP EOF in CAPABILITY", "imap", 0,
         B("* OK hi\r\n* CAPABILITY STARTTLS\r\n"), 1, E_EOF,
         "during the capabilities step", NULL, "", NULL},
        /* POP3 */
        {"POP3 -ERR greeting", "pop3", 0, B("-ERR busy\r\n"), 1, E_PRE,
         "the server's greeting is not +OK", NULL, "", NULL},
        {"POP3 no CAPA", "pop3", 0, B("+OK hi\r\n-ERR what\r\n"), 1, E_PRE,
         "the server answered CAPA with \"-ERR what\"", NULL, "", NULL},
        {"POP3 no STLS", "pop3", 0, B("+OK hi\r\n+OK\r\nUSER\r\nTOP\r\n.\r\n"),
         1, E_PRE,
         "offers no STLS (RFC 2595 section 4) in its capabilities: USER,TOP",
         NULL, "", NULL},
        {"POP3 -ERR to STLS", "pop3", 0,
         B("+OK hi\r\n+OK\r\nSTLS\r\n.\r\n-ERR no\r\n"), 1, E_PRE,
         "the server answered STLS with: \"-ERR no\"", "STLS\r\n", "", NULL},
        {"POP3 EOF in CAPA", "pop3", 0, B("+OK hi\r\n+OK\r\nSTLS\r\n"), 1,
         E_EOF, "during the capabilities step", NULL, "", NULL},
        {"POP3 a line of 600 octets", "pop3", 0, long_line + 3, 0, 1, E_PRE,
         "longer than 512 octets (RFC 2449 section 4)", NULL, NULL, NULL},
        /* Sieve */
        {"Sieve no STARTTLS", "sieve", 0,
         B("\"IMPLEMENTATION\" \"x\"\r\n\"SASL\" \"PLAIN\"\r\nOK\r\n"), 1,
         E_PRE,
         "offers no STARTTLS (RFC 5804 section 2.2) in its capabilities: "
         "IMPLEMENTATION x,SASL PLAIN",
         NULL, "", NULL},
        {"Sieve NO to STARTTLS", "sieve", 0,
         B("\"STARTTLS\"\r\nOK\r\nNO \"not now\"\r\n"), 1, E_PRE,
         "the server answered STARTTLS with: \"NO \"not now\"\"", NULL, "",
         NULL},
        {"Sieve BYE greeting", "sieve", 0, B("BYE \"busy\"\r\n"), 1, E_PRE,
         "where a capability or OK was due", NULL, "", NULL},
        /* FTP */
        {"FTP 421 greeting", "ftp", 0, B("421 busy\r\n"), 1, E_PRE,
         "the server's greeting is not 220: \"421 busy\"", NULL, "", NULL},
        {"FTP no AUTH TLS in FEAT", "ftp", 0,
         B("220 ftp\r\n211-Features:\r\n MDTM\r\n211 End\r\n"), 1, E_PRE,
         "offers no AUTH TLS (RFC 4217 section 4) in its FEAT reply: MDTM",
         "FEAT\r\n", "", NULL},
        {"FTP 530 to AUTH TLS", "ftp", 0,
         B("220 ftp\r\n500 no FEAT\r\n530 no\r\n"), 1, E_PRE,
         "the server answered AUTH TLS with: \"530 no\"", "AUTH TLS\r\n", "",
         NULL},
        /* NNTP */
        {"NNTP 502 greeting", "nntp", 0, B("502 go away\r\n"), 1, E_PRE,
         "not 200 or 201", NULL, "", NULL},
        {"NNTP no STARTTLS", "nntp", 0,
         B("200 hi\r\n101 caps\r\nVERSION 2\r\nREADER\r\n.\r\n"), 1, E_PRE,
         "offers no STARTTLS (RFC 4642 section 2.1) in its capabilities: "
         "VERSION 2,READER",
         NULL, "", NULL},
        {"NNTP 580 to STARTTLS", "nntp", 0,
         B("200 hi\r\n101 caps\r\nSTARTTLS\r\n.\r\n580 failed\r\n"), 1, E_PRE,
         "\"580 failed\"", NULL, "", NULL},
        /* IRC */
        {"IRC 691", "irc", 0, B(":irc 691 * :STARTTLS failed\r\n"), 1, E_PRE,
         "691 (failed)", "STARTTLS\r\n", "", NULL},
        {"IRC 421", "irc", 0,
         B(":irc NOTICE * :hi\r\n:irc 421 * STARTTLS :Unknown command\r\n"), 1,
         E_PRE, "offers no STARTTLS: it answered 421", NULL, "", NULL},
        {"IRC injection", "irc", 0, B(":irc 670 * :go\r\n:irc PRIVMSG x\r\n"),
         0, E_PRE, "CVE-2011-0411", NULL, ":irc PRIVMSG x\r\n", NULL},
        /* XMPP */
        {"XMPP no starttls feature", "xmpp", 0,
         B(XMPP_HEAD "<stream:features><mechanisms "
                     "xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>"
                     "PLAIN</mechanism></mechanisms></stream:features>"),
         1, E_PRE,
         "offers no <starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/> (RFC "
         "6120 section 5.4.1) in its features: mechanisms\nmechanism PLAIN",
         "to='example.test'", "", NULL},
        {"XMPP failure", "xmpp", 0,
         B(XMPP_HEAD "<stream:features><starttls "
                     "xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></"
                     "stream:features><failure "
                     "xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"),
         1, E_PRE, "answered STARTTLS with: \"<failure", NULL, "", NULL},
        {"XMPP stream error", "xmpp", 0,
         B(XMPP_HEAD
           "<stream:error><host-unknown "
           "xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"),
         1, E_PRE, "sent a stream error: host-unknown", NULL, "", NULL},
        {"XMPP injection", "xmpp", 0,
         B(XMPP_HEAD "<stream:features><starttls "
                     "xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></"
                     "stream:features><proceed "
                     "xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><message/>"),
         0, E_PRE, "CVE-2011-0411", NULL, "<message/>", NULL},
        {"XMPP EOF in the features", "xmpp", 0,
         B(XMPP_HEAD "<stream:features><starttls "
                     "xmlns='urn:ietf:params:xml:ns:xmpp-tls'>"),
         1, E_EOF, "during the capabilities step", NULL, "", NULL},
        /* LDAP */
        {"LDAP unwillingToPerform", "ldap", 0, B(LDAP_RESP("\x35")), 1, E_PRE,
         "ldap client: the server refused StartTLS (RFC 4511 section 4.14.2): "
         "ExtendedResponse resultCode 53 (unwillingToPerform)",
         "1.3.6.1.4.1.1466.20037", "", NULL},
        {"LDAP wrong messageID", "ldap", 0,
         B("0\x0c\x02\x01\x07x\x07\x0a\x01\x00\x04\x00\x04\x00"), 1, E_PRE,
         "answered messageID 7, not 1", NULL, "", NULL},
        {"LDAP a messageID of four octets, the first over 0x7f", "ldap", 0,
         B("0\x0f\x02\x04\x80\x00\x00\x01x\x07\x0a\x01\x00\x04\x00\x04\x00"), 1,
         E_PRE, "answered messageID 2147483649, not 1", NULL, "", NULL},
        {"LDAP not a message", "ldap", 0, B("220 hello\r\n"), 1, E_PRE,
         "the server sent no LDAPMessage", NULL, NULL, NULL},
        {"LDAP a huge message", "ldap", 0, B("0\x83\x10\x00\x00"), 1, E_PRE,
         "an LDAPMessage of 1048581 octets, more than 16384", NULL, NULL, NULL},
        {"LDAP injection", "ldap", 0,
         B(LDAP_RESP("\x00") "\x30\x05"
                             "abcde"),
         0, E_PRE, "CVE-2011-0411", NULL,
         "\x30\x05"
         "abcde",
         NULL},
        {"LDAP EOF inside the response", "ldap", 0, B("0\x0c\x02\x01\x01"), 1,
         E_EOF, "during the starttls step", NULL, "", NULL},
        /* PostgreSQL */
        {"PostgreSQL N", "postgres", 0, B("N"), 1, E_PRE,
         "the server does not accept SSL", "\x04\xd2\x16\x2f", "", NULL},
        {"PostgreSQL E", "postgres", 0, B("E"), 1, E_PRE,
         "answered SSLRequest with \"E\", not S", NULL, "", NULL},
        {"PostgreSQL injection (CVE-2021-23222)", "postgres", 0, B("SRjunk"), 0,
         E_PRE, "CVE-2011-0411", NULL, "Rjunk", NULL},
        /* MySQL */
        {"MySQL no SSL flag", "mysql", 0, B(MYSQL_GREETING("\x00", "\x82")), 1,
         E_PRE,
         "the server offers no SSL (CLIENT_SSL is not among its capability "
         "flags 0x00088200)",
         NULL, "", NULL},
        {"MySQL error packet", "mysql", 0,
         B("\x17\x00\x00\x00\xff\x69\x04Host is not allowed\x00"), 1, E_PRE,
         "the server sent error 1129: Host is not allowed", NULL, NULL, NULL},
        {"MySQL a huge packet", "mysql", 0, B("\xff\xff\x00\x00\x0a"), 1, E_PRE,
         "a packet of 65535 octets, more than 4096", NULL, NULL, NULL},
        /* attacks on the parsers (tests/fuzz/fuzz_prelude.c runs them at
         * random): XMPP markup that hides or fakes an offer, a second
         * stream header; BER and packet lengths that lie */
        {"XMPP starttls inside a comment", "xmpp", 0,
         B(XMPP_HEAD "<stream:features><!-- <starttls "
                     "xmlns='urn:ietf:params:xml:ns:xmpp-tls'/> "
                     "--></stream:features><proceed "
                     "xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"),
         1, E_PRE, "sent '>' outside a tag", NULL, NULL, NULL},
        {"XMPP starttls inside CDATA", "xmpp", 0,
         B(XMPP_HEAD
           "<stream:features><![CDATA[<starttls "
           "xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>]]></stream:features>"),
         1, E_PRE, "sent '>' outside a tag", NULL, NULL, NULL},
        {"XMPP starttls nested, not a feature", "xmpp", 0,
         B(XMPP_HEAD
           "<stream:features><x><starttls "
           "xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></x></stream:features>"),
         1, E_PRE, "offers no <starttls", NULL, "", NULL},
        {"XMPP namespace as an entity", "xmpp", 0,
         B(XMPP_HEAD
           "<stream:features><starttls "
           "xmlns='urn:ietf:params:xml:ns:xmpp&#x2d;tls'/></stream:features>"),
         1, E_PRE, "offers no <starttls", NULL, "", NULL},
        {"XMPP a second stream header", "xmpp", 0,
         B(XMPP_HEAD XMPP_HEAD
           "<stream:features><starttls "
           "xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>"),
         1, E_PRE, "where its stream features were due", NULL, NULL, NULL},
        {"XMPP a tag longer than 16384 octets", "xmpp", 0, long_tag, 0, 1,
         E_PRE, "sent a tag longer than 16384 octets", NULL, NULL, NULL},
        {"LDAP a length of zero", "ldap", 0, B("0\x00"), 1, E_PRE,
         "not an ExtendedResponse", NULL, "", NULL},
        {"LDAP an indefinite length", "ldap", 0, B("0\x80\x02\x01\x01\x00\x00"),
         1, E_PRE, "an LDAPMessage of length form 0x80", NULL, NULL, NULL},
        {"LDAP a length of four octets", "ldap", 0, B("0\x84\xff\xff\xff\xf0"),
         1, E_PRE, "an LDAPMessage of length form 0x84", NULL, NULL, NULL},
        {"LDAP an inner length past the message", "ldap", 0,
         B("0\x0c\x02\x01\x01x\x7f\x0a\x01\x00\x04\x00\x04\x00"), 1, E_PRE,
         "not an ExtendedResponse", NULL, "", NULL},
        {"LDAP a messageID of five octets", "ldap", 0,
         B("0\x10\x02\x05\x00\x00\x00\x00\x01x\x07\x0a\x01\x00\x04\x00\x04"
           "\x00"),
         1, E_PRE, "not an ExtendedResponse", NULL, "", NULL},
        {"LDAP a message shorter than its header says", "ldap", 0,
         B("0\x0c\x02\x01\x01"), 1, E_EOF, "during the starttls step", NULL, "",
         NULL},
        {"MySQL a packet of length 0", "mysql", 0, B("\x00\x00\x00\x00"), 1,
         E_PRE, "the server's greeting is not protocol 10", NULL, "", NULL},
        {"MySQL a version without its NUL", "mysql", 0,
         B("\x06\x00\x00\x00\x0a"
           "8.0.1"),
         1, E_PRE, "the server's greeting is cut short", NULL, "", NULL},
        {"server: PostgreSQL a length of -8", "postgres", 1,
         B("\xff\xff\xff\xf8\x04\xd2\x16\x2f"), 0, E_PRE,
         "the client sent no SSLRequest (length 4294967288", NULL, NULL, NULL},
        {"server: MySQL a packet of 16 MiB", "mysql", 1, B("\xff\xff\xff\x01"),
         0, E_PRE, "a packet of 16777215 octets, more than 4096", NULL, NULL,
         NULL},
        {"server: LDAP a huge message", "ldap", 1, B("0\x83\xff\xff\xff"), 0,
         E_PRE, "an LDAPMessage of 16777220 octets", NULL, NULL, NULL},
        {"server: XMPP starttls with the namespace in another attribute",
         "xmpp", 1,
         B("<stream:stream xmlns='jabber:client' "
           "xmlns:stream='http://etherx.jabber.org/streams' to='example.test' "
           "version='1.0'><starttls "
           "a='xmlns=\"urn:ietf:params:xml:ns:xmpp-tls\"'/>"),
         0, E_PRE, "where STARTTLS was due", "policy-violation", NULL, NULL},
        {"server: SMTP STARTTLS and the ClientHello on one line", "smtp", 1,
         B("EHLO c\r\nSTARTTLS\x16\x03\x01\r\n"), 1, E_EOF,
         "during the commands step", "530 5.7.0 Must issue a STARTTLS", "",
         NULL},
        /* the server side: hostile clients */
        {"server: SMTP command pipelined after STARTTLS", "smtp", 1,
         B("EHLO c\r\nSTARTTLS\r\nRSET\r\n"), 0, E_PRE,
         "smtp server: the client sent data after its STARTTLS request, before "
         "the answer and the TLS handshake (the command injection of "
         "CVE-2011-0411): \"RSET",
         NULL, NULL, NULL},
        {"server: SMTP a line too long", "smtp", 1, long_line, 0, 1, E_PRE,
         "the client sent a line longer than 512 octets", NULL, NULL, NULL},
        {"server: SMTP QUIT", "smtp", 1, B("EHLO c\r\nQUIT\r\n"), 1, E_EOF,
         "smtp server: the client quit before STARTTLS: \"QUIT\"",
         "221 2.0.0 Bye", "", NULL},
        {"server: SMTP EOF", "smtp", 1, B("EHLO c\r\n"), 1, E_EOF,
         "smtp server: the client closed the connection during the commands "
         "step",
         "250 STARTTLS", "", NULL},
        {"server: POP3 QUIT", "pop3", 1, B("USER x\r\nQUIT\r\n"), 1, E_EOF,
         "pop3 server: the client quit before STARTTLS: \"QUIT\"",
         "-ERR STLS first\r\n+OK Bye\r\n", "", NULL},
        {"server: Sieve LOGOUT", "sieve", 1, B("NOOP\r\nLOGOUT\r\n"), 1, E_EOF,
         "sieve server: the client quit before STARTTLS: \"LOGOUT\"",
         "OK \"NOOP\"\r\nOK \"Bye\"\r\n", "", NULL},
        {"server: NNTP 30 commands", "nntp", 1,
         B("GROUP a\r\nGROUP a\r\nGROUP a\r\nGROUP a\r\nGROUP a\r\n"
           "GROUP a\r\nGROUP a\r\nGROUP a\r\nGROUP a\r\nGROUP a\r\n"
           "GROUP a\r\nGROUP a\r\nGROUP a\r\nGROUP a\r\nGROUP a\r\n"
           "GROUP a\r\nGROUP a\r\nGROUP a\r\nGROUP a\r\nGROUP a\r\n"
           "GROUP a\r\nGROUP a\r\nGROUP a\r\nGROUP a\r\nGROUP a\r\n"
           "GROUP a\r\nGROUP a\r\nGROUP a\r\nGROUP a\r\nGROUP a\r\n"
           "STARTTLS\r\n"),
         1, E_PRE, "the client sent 30 commands without STARTTLS",
         "483 STARTTLS first\r\n", "STARTTLS\r\n", NULL},
        {"server: SMTP 30 commands", "smtp", 1,
         B("NOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOO"
           "P\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r"
           "\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nN"
           "OOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nSTARTTLS\r\n"),
         1, E_PRE, "the client sent 30 commands without STARTTLS", NULL,
         "STARTTLS\r\n", NULL},
        {"server: IMAP pipelined", "imap", 1,
         B("a STARTTLS\r\nb LOGIN x y\r\n"), 0, E_PRE,
         "CVE-2011-0411): \"b LOGIN", NULL, NULL, NULL},
        {"server: POP3 pipelined", "pop3", 1, B("STLS\r\nUSER x\r\n"), 0, E_PRE,
         "CVE-2011-0411", NULL, NULL, NULL},
        {"server: FTP pipelined", "ftp", 1, B("AUTH TLS\r\nUSER x\r\n"), 0,
         E_PRE, "CVE-2011-0411", NULL, NULL, NULL},
        {"server: XMPP pipelined", "xmpp", 1,
         B("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
           "xmlns:stream='http://etherx.jabber.org/streams' to='example.test' "
           "version='1.0'><starttls "
           "xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><iq/>"),
         0, E_PRE, "CVE-2011-0411", NULL, NULL, NULL},
        {"server: XMPP wrong namespace", "xmpp", 1,
         B("<stream:stream xmlns='jabber:server' "
           "xmlns:stream='http://etherx.jabber.org/streams' to='example.test' "
           "version='1.0'>"),
         0, E_PRE,
         "the client's stream is of namespace 'jabber:server', not "
         "'jabber:client'",
         "invalid-namespace", NULL, NULL},
        {"server: XMPP no STARTTLS", "xmpp", 1,
         B("<stream:stream xmlns='jabber:client' "
           "xmlns:stream='http://etherx.jabber.org/streams' to='example.test' "
           "version='1.0'><auth/>"),
         0, E_PRE, "the client sent \"<auth/>\" where STARTTLS was due",
         "policy-violation", NULL, NULL},
        {"server: LDAP pipelined", "ldap", 1,
         B("\x30\x1d\x02\x01\x01\x77\x18\x80\x16"
           "1.3.6.1.4.1.1466.20037"
           "\x30\x05"),
         0, E_PRE, "CVE-2011-0411", NULL, NULL, NULL},
        {"server: LDAP bind first", "ldap", 1,
         B("\x30\x0c\x02\x01\x01\x60\x07\x02\x01\x03\x04\x00\x80\x00"), 0,
         E_PRE,
         "the client sent LDAP operation [APPLICATION 0] before StartTLS", NULL,
         NULL, NULL},
        {"server: PostgreSQL StartupMessage", "postgres", 1,
         B("\x00\x00\x00\x10\x00\x03\x00\x00user\x00x\x00\x00"), 0, E_PRE,
         "the client sent no SSLRequest (length 16, code 196608)", NULL, NULL,
         NULL},
        {"server: PostgreSQL pipelined (CVE-2021-23214)", "postgres", 1,
         B("\x00\x00\x00\x08\x04\xd2\x16\x2fQ"), 0, E_PRE, "CVE-2011-0411",
         NULL, NULL, NULL},
        {"server: MySQL no SSL request", "mysql", 1,
         B("\x28\x00\x00\x01"
           "\x05\xa2\x00\x00"
           "\x00\x00\x00\x01"
           "\x21"
           "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
           "\x00\x00\x00\x00\x00\x00\x00"
           "root\x00"
           "\x00\x00\x00"),
         0, E_PRE,
         "the client sent no SSL request (a packet of 40 octets, sequence 1, "
         "flags 0x0000a205)",
         NULL, NULL, NULL},
        {"server: MySQL not TLS after the SSL request", "mysql", 1,
         B("\x20\x00\x00\x01\x00\x8a\x00\x00\x00\x00\x00\x01\x21\x00\x00\x00"
           "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
           "\x00\x00\x00\x00QUIT"),
         0, E_PRE, "after its SSL request that is not TLS: \"QUIT\"", NULL,
         NULL, NULL},
};

#define OK 0, STARTTLS_OK, NULL

static const struct row happy[] = {
        /* the client side; TLS bytes wait after the go-ahead */
        {"SMTP", "smtp", 0, B(SMTP_OK TLS_HELLO), 0, OK,
         "EHLO client.test\r\nSTARTTLS\r\n", TLS_HELLO,
         "capabilities=PIPELINING\nSIZE 1000\nSTARTTLS"},
        {"SMTP greeting of two lines", "smtp", 0,
         B("220-mx.example.test ESMTP\r\n220 second\r\n250-mx\r\n250 "
           "STARTTLS\r\n220 go\r\n"),
         0, OK, NULL, "", "greeting=220-mx.example.test ESMTP\n220 second"},
        {"SMTP a line of 512 octets with CRLF", "smtp", 0, line512, 0, 0, OK,
         NULL, "", NULL},
        {"LMTP", "lmtp", 0, B(SMTP_OK), 0, OK,
         "LHLO client.test\r\nSTARTTLS\r\n", "", "reply=220 2.0.0 Ready"},
        {"submission", "submission", 0, B(SMTP_OK), 0, OK,
         "EHLO client.test\r\n", "", NULL},
        {"IMAP", "imap", 0,
         B("* OK [CAPABILITY IMAP4rev1] hi\r\n* CAPABILITY IMAP4rev1 STARTTLS "
           "LOGINDISABLED\r\na1 OK done\r\n* OK still here\r\na2 OK Begin "
           "TLS\r\n" TLS_HELLO),
         0, OK, "a1 CAPABILITY\r\na2 STARTTLS\r\n", TLS_HELLO,
         "capabilities=IMAP4rev1\nSTARTTLS\nLOGINDISABLED"},
        {"POP3", "pop3", 0,
         B("+OK hi\r\n+OK caps\r\nTOP\r\nSTLS\r\n..dot\r\n.\r\n+OK "
           "go\r\n" TLS_HELLO),
         0, OK, "CAPA\r\nSTLS\r\n", TLS_HELLO, "capabilities=TOP\nSTLS\n.dot"},
        {"Sieve capability of 230 octets", "sieve", 0,
         B("\"SIEVE\" \"fileinto reject envelope encoded-character vacation "
           "subaddress comparator-i;ascii-numeric relational regex imap4flags "
           "copy include variables body enotify environment mailbox date index "
           "ihave duplicate mime foreverypart "
           "extracttext\"\r\n\"STARTTLS\"\r\nOK\r\nOK \"go\"\r\n" TLS_HELLO),
         0, OK, "STARTTLS\r\n", TLS_HELLO,
         "capabilities=SIEVE fileinto reject envelope encoded-character "
         "vacation subaddress comparator-i;ascii-numeric relational regex "
         "imap4flags copy include variables body enotify environment mailbox "
         "date index ihave duplicate mime foreverypart extracttext\nSTARTTLS"},
        {"Sieve", "sieve", 0,
         B("\"IMPLEMENTATION\" \"Dovecot Pigeonhole\"\r\n\"SIEVE\" "
           "\"fileinto\"\r\n\"STARTTLS\"\r\n\"VERSION\" \"1.0\"\r\nOK "
           "\"ready\"\r\nOK \"go\"\r\n" TLS_HELLO),
         0, OK, "STARTTLS\r\n", TLS_HELLO, "greeting=OK \"ready\""},
        {"FTP", "ftp", 0,
         B("220-welcome\r\n to ftp\r\n220 ready\r\n211-Features:\r\n MDTM\r\n "
           "AUTH TLS;SSL\r\n211 End\r\n234 go\r\n" TLS_HELLO),
         0, OK, "FEAT\r\nAUTH TLS\r\n", TLS_HELLO,
         "capabilities=MDTM\nAUTH TLS;SSL"},
        {"FTP without FEAT", "ftp", 0, B("220 ready\r\n502 no\r\n234 go\r\n"),
         0, OK, NULL, "", "reply=234 go"},
        {"NNTP", "nntp", 0,
         B("201 news\r\n101 caps\r\nVERSION 2\r\nSTARTTLS\r\n.\r\n382 "
           "go\r\n" TLS_HELLO),
         0, OK, "CAPABILITIES\r\nSTARTTLS\r\n", TLS_HELLO, "reply=382 go"},
        {"IRC", "irc", 0,
         B(":irc NOTICE * :Looking up your hostname\r\nPING :123\r\n:irc 670 * "
           ":STARTTLS successful\r\n" TLS_HELLO),
         0, OK, "STARTTLS\r\nPONG :123\r\n", TLS_HELLO,
         "greeting=:irc NOTICE * :Looking up your hostname"},
        {"XMPP", "xmpp", 0,
         B(XMPP_HEAD
           "<stream:features><starttls "
           "xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></"
           "starttls><mechanisms "
           "xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</"
           "mechanism></mechanisms></stream:features> <proceed "
           "xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>" TLS_HELLO),
         0, OK,
         "xmlns='jabber:client' "
         "xmlns:stream='http://etherx.jabber.org/streams' to='example.test' "
         "version='1.0'><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
         TLS_HELLO,
         "capabilities=starttls\nstarttls required\nmechanisms\nmechanism "
         "PLAIN"},
        {"XMPP server to server", "xmpp-server", 0,
         B("<stream:stream xmlns='jabber:server' "
           "xmlns:stream='http://etherx.jabber.org/streams' "
           "from='example.test' version='1.0'><stream:features><starttls "
           "xmlns=\"urn:ietf:params:xml:ns:xmpp-tls\"/></"
           "stream:features><proceed "
           "xmlns='urn:ietf:params:xml:ns:xmpp-tls'></proceed>"),
         0, OK,
         "xmlns='jabber:server' "
         "xmlns:stream='http://etherx.jabber.org/streams' from='client.test' "
         "to='example.test'",
         "", NULL},
        {"LDAP", "ldap", 0, B(LDAP_RESP("\x00") TLS_HELLO), 0, OK,
         "\x30\x1d\x02\x01\x01\x77\x18\x80\x16"
         "1.3.6.1.4.1.1466.20037",
         TLS_HELLO, "reply=resultCode 0 (success)"},
        {"PostgreSQL", "postgres", 0, B("S" TLS_HELLO), 0, OK,
         "\x00\x00\x00\x08\x04\xd2\x16\x2f", TLS_HELLO,
         "reply=S (SSL accepted)"},
        {"MySQL", "mysql", 0, B(MYSQL_GREETING("\x00", "\x8a")), 0, OK,
         "\x20\x00\x00\x01\x01\x8a\x08\x00\x00\x00\x00\x01\x21", "",
         "greeting=server version 8.0.1"},
        /* the server side */
        {"server: SMTP", "smtp", 1,
         B("EHLO client.example.test\r\nSTARTTLS\r\n"), 0, OK,
         "220 mx.test ESMTP "
         "tlspool\r\n250-mx.test\r\n250-ENHANCEDSTATUSCODES\r\n250 "
         "STARTTLS\r\n220 2.0.0 Ready to start TLS\r\n",
         "", "hello=client.example.test"},
        {"server: SMTP MAIL before STARTTLS", "smtp", 1,
         B("HELO c\r\nMAIL FROM:<a@b>\r\nSTARTTLS\r\n"), 0, OK,
         "250 mx.test\r\n530 5.7.0 Must issue a STARTTLS command first\r\n220 "
         "2.0.0",
         "", NULL},
        {"server: LMTP", "lmtp", 1, B("EHLO c\r\nLHLO c\r\nSTARTTLS\r\n"), 0,
         OK, "500 5.5.1 LMTP: say LHLO\r\n250-mx.test", "", NULL},
        {"server: IMAP", "imap", 1, B(". CAPABILITY\r\n. STARTTLS\r\n"), 0, OK,
         "* OK [CAPABILITY IMAP4rev1 IMAP4rev2 STARTTLS LOGINDISABLED] mx.test "
         "tlspool ready\r\n* CAPABILITY IMAP4rev1 IMAP4rev2 STARTTLS "
         "LOGINDISABLED\r\n. OK CAPABILITY completed\r\n. OK Begin TLS "
         "negotiation now\r\n",
         "", "request=. STARTTLS"},
        {"server: POP3", "pop3", 1, B("CAPA\r\nSTLS\r\n"), 0, OK,
         "+OK Capability list follows\r\nSTLS\r\nPIPELINING\r\n.\r\n+OK Begin "
         "TLS negotiation\r\n",
         "", "greeting=+OK mx.test tlspool ready"},
        {"server: Sieve", "sieve", 1, B("STARTTLS\r\n"), 0, OK,
         "\"STARTTLS\"\r\n\"VERSION\" \"1.0\"\r\nOK\r\nOK \"Begin TLS "
         "negotiation now\"\r\n",
         "", "capabilities=IMPLEMENTATION tlspool"},
        {"server: FTP AUTH SSL, then AUTH TLS-C", "ftp", 1,
         B("AUTH SSL\r\nNOOP\r\nUSER x\r\nAUTH TLS-C\r\n"), 0, OK,
         "504 AUTH TLS only\r\n200 OK\r\n530 AUTH TLS first\r\n234 AUTH "
         "TLS successful\r\n",
         "", "request=AUTH TLS-C"},
        {"server: FTP", "ftp", 1, B("FEAT\r\nAUTH TLS\r\n"), 0, OK,
         "211-Features:\r\n AUTH TLS\r\n211 End\r\n234 AUTH TLS successful\r\n",
         "", "greeting=220 mx.test tlspool FTP ready"},
        {"server: NNTP", "nntp", 1, B("CAPABILITIES\r\nSTARTTLS\r\n"), 0, OK,
         "101 Capability list:\r\nVERSION 2\r\nSTARTTLS\r\n.\r\n382 Continue "
         "with TLS negotiation\r\n",
         "", "greeting=200 mx.test tlspool NNTP ready"},
        {"server: IRC", "irc", 1, B("CAP LS 302\r\nSTARTTLS\r\n"), 0, OK,
         ":mx.test CAP * LS :tls\r\n:mx.test 670 * :STARTTLS successful", "",
         NULL},
        {"server: XMPP", "xmpp", 1,
         B("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
           "xmlns:stream='http://etherx.jabber.org/streams' to='example.test' "
           "version='1.0'><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"),
         0, OK,
         "<stream:features><starttls "
         "xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></"
         "stream:features><proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
         "", "hello=example.test"},
        {"server: XMPP server to server", "xmpp-server", 1,
         B("<stream:stream xmlns='jabber:server' "
           "xmlns:stream='http://etherx.jabber.org/streams' from='a.test' "
           "to='example.test' version='1.0'><starttls "
           "xmlns='urn:ietf:params:xml:ns:xmpp-tls'></starttls>"),
         0, OK, "from='mx.test' version='1.0'>", "", NULL},
        {"server: LDAP", "ldap", 1,
         B("\x30\x1d\x02\x01\x05\x77\x18\x80\x16"
           "1.3.6.1.4.1.1466.20037"),
         0, OK,
         "\x30\x24\x02\x01\x05\x78\x1f\x0a\x01\x00\x04\x00\x04\x00\x8a\x16"
         "1.3.6.1.4.1.1466.20037",
         "", NULL},
        {"server: PostgreSQL, GSSENCRequest first", "postgres", 1,
         B("\x00\x00\x00\x08\x04\xd2\x16\x30\x00\x00\x00\x08\x04\xd2\x16\x2f"),
         0, OK, "NS", "", NULL},
        {"server: MySQL, the ClientHello at once", "mysql", 1,
         B("\x20\x00\x00\x01\x00\x8a\x00\x00\x00\x00\x00\x01\x21\x00\x00\x00"
           "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
           "\x00\x00\x00\x00" TLS_HELLO),
         0, OK,
         "\x0a"
         "8.0.0-tlspool",
         TLS_HELLO, NULL},
};

/* Everything readable on fd now, into buf (at most cap): its length. */
static size_t drain(int fd, char *buf, size_t cap)
{
	size_t n = 0;
	ssize_t r;

	while (n < cap && (r = recv(fd, buf + n, cap - n, MSG_DONTWAIT)) > 0)
		n += (size_t)r;
	return n;
}

static const char *field_of(const starttls_prelude *p, const char *name)
{
	if (strcmp(name, "greeting") == 0)
		return p->greeting;
	if (strcmp(name, "capabilities") == 0)
		return p->capabilities;
	if (strcmp(name, "reply") == 0)
		return p->reply;
	if (strcmp(name, "request") == 0)
		return p->request;
	if (strcmp(name, "hello") == 0)
		return p->hello;
	ck_abort_msg("no field %s", name);
	return NULL;
}

static void prepare(starttls_prelude *p, const struct row *r, unsigned ms)
{
	memset(p, 0, sizeof(*p));
	p->protocol = r->proto;
	p->myname = r->server ? "mx.test" : "client.test";
	p->peerdomain = "example.test";
	p->timeout_ms = ms;
}

static void run_row(const struct row *r)
{
	static char sent[65536], left[65536];
	starttls_prelude p;
	size_t plen = r->peerlen ? r->peerlen : strlen(r->peer), ns, nl;
	size_t wleft = r->left ? strlen(r->left) : 0;
	int sv[2], rc, e, fl;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ck_assert_int_eq(write(sv[1], r->peer, plen), (ssize_t)plen);
	if (r->eof)
		shutdown(sv[1], SHUT_WR);
	prepare(&p, r, 2000);
	fl = fcntl(sv[0], F_GETFL);
	rc = r->server ? starttls_prelude_server(sv[0], &p)
	               : starttls_prelude_client(sv[0], &p);
	e = errno;
	/* the descriptor as it was: open, its flags (blocking) untouched */
	ck_assert_msg(fcntl(sv[0], F_GETFL) == fl, "%s: flags changed", r->why);
	ns = drain(sv[1], sent, sizeof(sent));
	nl = drain(sv[0], left, sizeof(left));
	if (r->err == 0) {
		ck_assert_msg(rc == 0, "%s: failed: %s", r->why,
		              starttls_errstr());
		ck_assert_str_eq(p.step, "done");
		ck_assert_int_eq(starttls_errclass(), STARTTLS_OK);
	} else {
		ck_assert_msg(rc == -1, "%s: succeeded", r->why);
		ck_assert_msg(e == r->err, "%s: errno %d (%s), want %d", r->why,
		              e, strerror(e), r->err);
		ck_assert_msg(starttls_errclass() == r->cls,
		              "%s: class %s, want %s: %s", r->why,
		              starttls_class_name(starttls_errclass()),
		              starttls_class_name(r->cls), starttls_errstr());
	}
	if (r->errstr != NULL)
		ck_assert_msg(strstr(starttls_errstr(), r->errstr) != NULL,
		              "%s: \"%s\" lacks \"%s\"", r->why,
		              starttls_errstr(), r->errstr);
	if (r->sent != NULL)
		ck_assert_msg(memmem(sent, ns, r->sent, strlen(r->sent)) !=
		                      NULL,
		              "%s: sent \"%.*s\", lacks \"%s\"", r->why,
		              (int)ns, sent, r->sent);
	if (r->left != NULL) {
		/* never a byte past the prelude: what followed it is there */
		ck_assert_msg(nl == wleft, "%s: %zu octets left, want %zu",
		              r->why, nl, wleft);
		ck_assert(memcmp(left, r->left, nl) == 0);
	}
	if (r->field != NULL) {
		char name[32];
		const char *eq = strchr(r->field, '=');

		snprintf(name, sizeof(name), "%.*s", (int)(eq - r->field),
		         r->field);
		ck_assert_msg(strstr(field_of(&p, name), eq + 1) != NULL,
		              "%s: %s \"%s\" lacks \"%s\"", r->why, name,
		              field_of(&p, name), eq + 1);
	}
	close(sv[0]);
	close(sv[1]);
}

START_TEST(hostile_peer)
{
	run_row(&hostile[_i]);
}
END_TEST

START_TEST(dialogue)
{
	run_row(&happy[_i]);
}
END_TEST

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A child that writes s in pieces of step octets, pause_us apart; then
 * waits to be killed. */
static pid_t dripper(int fd, const char *s, size_t len, size_t step,
                     unsigned pause_us)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		size_t i;

		for (i = 0; i < len; i += step) {
			size_t n = len - i < step ? len - i : step;

			if (write(fd, s + i, n) != (ssize_t)n)
				_exit(1);
			usleep(pause_us);
		}
		pause();
		_exit(0);
	}
	return pid;
}

static void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* A silent peer: the deadline ends the call, ETIMEDOUT, in time. */
START_TEST(silent_peer_meets_deadline)
{
	static const char *protos[] = {"smtp", "imap",     "xmpp",
	                               "ldap", "postgres", "mysql"};
	starttls_prelude p;
	struct row r = {.proto = protos[_i]};
	int sv[2], rc;
	long long t0, dt;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	prepare(&p, &r, 300);
	t0 = mono_ms();
	rc = starttls_prelude_client(sv[0], &p);
	dt = mono_ms() - t0;
	ck_assert_int_eq(rc, -1);
	ck_assert_int_eq(errno, ETIMEDOUT);
	ck_assert_int_eq(starttls_errclass(), STARTTLS_ERR_TIMEOUT);
	ck_assert_msg(strstr(starttls_errstr(), "within 300 ms") != NULL, "%s",
	              starttls_errstr());
	ck_assert_msg(dt >= 290 && dt < 1500, "%lld ms", dt);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/* A peer that drips one octet every 50 ms, forever: never past the
 * deadline, and the message says what came. */
START_TEST(dripping_peer_meets_deadline)
{
	static char drip[4096];
	starttls_prelude p;
	struct row r = {.proto = _i ? "smtp" : "smtp", .server = _i};
	int sv[2], rc;
	long long t0, dt;
	pid_t pid;

	memset(drip, 'x', sizeof(drip));
	memcpy(drip, _i ? "EHLO " : "220 ", _i ? 5 : 4);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	pid = dripper(sv[1], drip, 400, 1, 50000);
	prepare(&p, &r, 600);
	t0 = mono_ms();
	rc = _i ? starttls_prelude_server(sv[0], &p)
	        : starttls_prelude_client(sv[0], &p);
	dt = mono_ms() - t0;
	reap(pid);
	ck_assert_int_eq(rc, -1);
	ck_assert_int_eq(errno, ETIMEDOUT);
	ck_assert_msg(strstr(starttls_errstr(), "within 600 ms") != NULL &&
	                      strstr(starttls_errstr(), "it sent only \"") !=
	                              NULL,
	              "%s", starttls_errstr());
	ck_assert_msg(dt >= 590 && dt < 1800, "%lld ms", dt);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/* Replies split across reads, one octet at a time (and a few at a
 * time): the same dialogue, the same report, nothing read past it. */
START_TEST(split_replies)
{
	static const struct {
		const char *proto;
		const char *script;
		size_t len;
		const char *caps;
	} cases[] = {
	        {"smtp", B(SMTP_OK TLS_HELLO),
	         "PIPELINING\nSIZE 1000\nSTARTTLS"},
	        {"imap",
	         B("* OK hi\r\n* CAPABILITY IMAP4rev1 STARTTLS\r\na1 OK "
	           "done\r\na2 OK go\r\n" TLS_HELLO),
	         "IMAP4rev1\nSTARTTLS"},
	        {"pop3",
	         B("+OK hi\r\n+OK\r\nSTLS\r\n.\r\n+OK go\r\n" TLS_HELLO),
	         "STLS"},
	        {"xmpp",
	         B(XMPP_HEAD
	           "<stream:features><starttls "
	           "xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></"
	           "stream:features><proceed "
	           "xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>" TLS_HELLO),
	         "starttls"},
	        {"ldap", B(LDAP_RESP("\x00") TLS_HELLO), ""},
	        {"mysql", B(MYSQL_GREETING("\x00", "\x8a")), "SSL"},
	};
	int which = _i / 2, step = _i % 2 ? 3 : 1;
	starttls_prelude p;
	struct row r = {.proto = cases[which].proto};
	char left[64];
	int sv[2], rc;
	size_t nl, tail;
	pid_t pid;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	pid = dripper(sv[1], cases[which].script, cases[which].len,
	              (size_t)step, 300);
	prepare(&p, &r, 10000);
	rc = starttls_prelude_client(sv[0], &p);
	ck_assert_msg(rc == 0, "%s: %s", r.proto, starttls_errstr());
	ck_assert_msg(strstr(p.capabilities, cases[which].caps) != NULL,
	              "%s: %s", r.proto, p.capabilities);
	/* the TLS bytes arrive after: all of them are left */
	usleep(100000);
	tail = strcmp(r.proto, "mysql") == 0 ? 0 : sizeof(TLS_HELLO) - 1;
	nl = drain(sv[0], left, sizeof(left));
	reap(pid);
	ck_assert_uint_eq(nl, tail);
	ck_assert(memcmp(left, TLS_HELLO, nl) == 0);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/* Each known protocol, both sides, against the other side of this very
 * module: what one says the other understands. */
START_TEST(client_meets_server)
{
	static const char *protos[] = {
	        "smtp",        "lmtp", "submission", "imap", "pop3",
	        "sieve",       "ftp",  "nntp",       "irc",  "xmpp",
	        "xmpp-server", "ldap", "postgres",   "mysql"};
	const char *proto = protos[_i];
	starttls_prelude p, q;
	struct row r = {.proto = proto};
	int sv[2], st;
	pid_t pid;

	ck_assert(starttls_prelude_known(proto, 0));
	ck_assert(starttls_prelude_known(proto, 1));
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct row rs = {.proto = proto, .server = 1};

		close(sv[0]);
		prepare(&q, &rs, 5000);
		char b;

		close(sv[0]);
		prepare(&q, &rs, 5000);
		if (starttls_prelude_server(sv[1], &q) != 0)
			_exit(1);
		/* as a TLS server would: wait for the ClientHello */
		_exit(read(sv[1], &b, 1) == 0 ? 0 : 2);
	}
	close(sv[1]);
	prepare(&p, &r, 5000);
	ck_assert_msg(starttls_prelude_client(sv[0], &p) == 0, "%s: %s", proto,
	              starttls_errstr());
	close(sv[0]);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	              "%s: the server side failed", proto);
	ck_assert_str_eq(p.step, "done");
}
END_TEST

/*
 * Each dialogue of the table, mutated (an octet changed, dropped or
 * added, the script cut short), 60 times with a fixed seed
 * (PRELUDE_MUTATIONS=N: N times): the call
 * returns 0, or -1 with a class of its own (never an internal error),
 * a message, and a step; under ASAN and valgrind, no bad access.
 */
START_TEST(mutated_dialogues)
{
	const struct row *r = &happy[_i];
	size_t plen = r->peerlen ? r->peerlen : strlen(r->peer);
	unsigned seed = 1234u + (unsigned)_i;
	const char *env = getenv("PRELUDE_MUTATIONS");
	int k, times = env != NULL ? atoi(env) : 60;

	for (k = 0; k < times; k++) {
		char buf[2048];
		size_t n = plen < sizeof(buf) - 8 ? plen : sizeof(buf) - 8;
		size_t at;
		starttls_prelude p;
		int sv[2], rc;
		starttls_class cls;

		memcpy(buf, r->peer, n);
		at = n ? (size_t)rand_r(&seed) % n : 0;
		switch (rand_r(&seed) % 4) {
		case 0:
			buf[at] = (char)rand_r(&seed);
			break;
		case 1:
			memmove(buf + at, buf + at + 1, n - at - 1);
			n--;
			break;
		case 2:
			memmove(buf + at + 1, buf + at, n - at);
			buf[at] = (char)rand_r(&seed);
			n++;
			break;
		default:
			n = at;
		}
		ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
		ck_assert_int_eq(write(sv[1], buf, n), (ssize_t)n);
		shutdown(sv[1], SHUT_WR);
		prepare(&p, r, 2000);
		rc = r->server ? starttls_prelude_server(sv[0], &p)
		               : starttls_prelude_client(sv[0], &p);
		cls = starttls_errclass();
		ck_assert_msg(rc == 0 || (rc == -1 &&
		                          (cls == STARTTLS_ERR_PRELUDE ||
		                           cls == STARTTLS_ERR_CONNECTION) &&
		                          starttls_errstr()[0] != '\0'),
		              "%s, mutation %d: rc %d, class %s: %s", r->why, k,
		              rc, starttls_class_name(cls), starttls_errstr());
		ck_assert(p.step[0] != '\0');
		close(sv[0]);
		close(sv[1]);
	}
}
END_TEST

START_TEST(bad_arguments)
{
	starttls_prelude p;
	struct row r = {.proto = "gopher"};
	int sv[2];

	prepare(&p, &r, 100);
	ck_assert_int_eq(starttls_prelude_client(3, &p), -1);
	ck_assert_int_eq(errno, EPROTONOSUPPORT);
	ck_assert_int_eq(starttls_errclass(), STARTTLS_ERR_UNSUPPORTED);
	ck_assert(strstr(starttls_errstr(), "smtp lmtp submission") != NULL);
	ck_assert(!starttls_prelude_known("gopher", 0));
	ck_assert(!starttls_prelude_known(NULL, 1));
	ck_assert_int_eq(starttls_prelude_client(3, NULL), -1);
	ck_assert_int_eq(errno, EINVAL);
	r.proto = "smtp";
	prepare(&p, &r, 100);
	ck_assert_int_eq(starttls_prelude_server(-1, &p), -1);
	ck_assert_int_eq(errno, EINVAL);
	/* not a stream socket: a pipe, a datagram socket */
	ck_assert_int_eq(pipe(sv), 0);
	ck_assert_int_eq(starttls_prelude_client(sv[0], &p), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert(strstr(starttls_errstr(), "not a stream socket") != NULL);
	close(sv[0]);
	close(sv[1]);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv), 0);
	ck_assert_int_eq(starttls_prelude_client(sv[0], &p), -1);
	ck_assert_int_eq(errno, EINVAL);
	close(sv[0]);
	close(sv[1]);
	/* a name that would inject into the dialogue */
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	p.myname = "x\r\nRCPT TO:<a@b>";
	ck_assert_int_eq(starttls_prelude_client(sv[0], &p), -1);
	ck_assert_int_eq(errno, EINVAL);
	r.proto = "xmpp";
	prepare(&p, &r, 100);
	p.peerdomain = "a' evil='1";
	ck_assert_int_eq(starttls_prelude_client(sv[0], &p), -1);
	ck_assert_int_eq(errno, EINVAL);
	p.peerdomain = NULL;
	ck_assert_int_eq(starttls_prelude_client(sv[0], &p), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert(strstr(starttls_errstr(), "no peer domain") != NULL);
	close(sv[0]);
	close(sv[1]);
	ck_assert_str_eq(starttls_class_name(STARTTLS_ERR_PRELUDE), "prelude");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("prelude");

	memset(long_line, 'x', 600);
	memcpy(long_line, "220 ", 4);
	snprintf(long_tag, sizeof(long_tag), "%s<stream:features ", XMPP_HEAD);
	memset(long_tag + strlen(long_tag), 'a', 17000);
	memset(line512, 'x', 510);
	memcpy(line512, "220 ", 4);
	memcpy(line512 + 510, "\r\n250-mx\r\n250 STARTTLS\r\n220 go\r\n",
	       strlen("\r\n250-mx\r\n250 STARTTLS\r\n220 go\r\n"));
	TCase *neg = tcase_create("negative");
	TCase *pos = tcase_create("positive");

	tcase_set_timeout(neg, 60);
	tcase_set_timeout(pos, 60);
	tcase_add_test(neg, bad_arguments);
	tcase_add_loop_test(neg, hostile_peer, 0,
	                    sizeof(hostile) / sizeof(hostile[0]));
	tcase_add_loop_test(neg, silent_peer_meets_deadline, 0, 6);
	tcase_add_loop_test(neg, dripping_peer_meets_deadline, 0, 2);
	tcase_add_loop_test(pos, dialogue, 0, sizeof(happy) / sizeof(happy[0]));
	tcase_add_loop_test(pos, split_replies, 0, 12);
	tcase_add_loop_test(pos, client_meets_server, 0, 14);
	tcase_add_loop_test(neg, mutated_dialogues, 0,
	                    sizeof(happy) / sizeof(happy[0]));
	suite_add_tcase(s, neg);
	suite_add_tcase(s, pos);
	return tp_run_suite(s);
}
