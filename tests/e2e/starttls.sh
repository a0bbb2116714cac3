#!/bin/bash
# tlspool-connect --starttls PROTO end to end: the server side against
# openssl s_client -starttls PROTO and swaks --tls, the client side
# against the server side, and against scripted servers that misbehave
# (no STARTTLS, an error reply, data injected after the go-ahead, a
# silent peer).  Peers are authenticated by TLSA records of certificates
# made for this run, in zones signed for it.
. "$(dirname "$0")/common"
. scripts/ports.sh

W="$T/w"
mkdir -p "$W"
tests/tools/mkcerts.sh "$W/c" >/dev/null 2>&1 || { echo "mkcerts failed"; exit 1; }
C="$W/c"
TLSAGEN="$BUILD/tests/tlsagen"

PROTOS="smtp lmtp submission imap pop3 sieve ftp nntp irc xmpp xmpp-server ldap postgres mysql"
# the protocols of openssl s_client -starttls (3.0)
SCLIENT="smtp lmtp imap pop3 sieve ftp nntp irc xmpp xmpp-server ldap postgres mysql"
declare -A P S
for p in $PROTOS; do P[$p]=$(free_port); S[$p]=$(free_port); done
declare -A F
for s in nostarttls smtp4xx inject pipelined silent imapno pop3err xmppnone \
	ldaprefused pgrefused mysqlnossl ftpnoauth nntpnocap sievenone ircno \
	swaks json longline wrongtlsa mailsc mailcli fork; do
	F[$s]=$(free_port)
done
{
	for p in $PROTOS; do
		"$TLSAGEN" 3 1 1 "$C/www.pem" "_${P[$p]}._tcp.www.example.test."
		"$TLSAGEN" 3 1 1 "$C/www.pem" "_${S[$p]}._tcp.www.example.test."
	done
	for s in "${!F[@]}"; do
		[ "$s" = wrongtlsa ] && continue
		"$TLSAGEN" 3 1 1 "$C/www.pem" "_${F[$s]}._tcp.www.example.test."
	done
	"$TLSAGEN" 3 1 1 "$C/other.pem" "_${F[wrongtlsa]}._tcp.www.example.test."
} >"$W/example.add"
zones/serve start "$W/z" --add example.test "$W/example.add" 2>/dev/null ||
	{ echo "zones failed"; exit 1; }
pids=()
cleanup_all() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	zones/serve stop "$W/z" >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup_all EXIT

CONF="$W/tlspool.conf"
{
	cat "$W/z/tlspool.conf"
	printf '[tls]\nhandshake_timeout_ms = 3000\n'
	printf '[identity www.example.test]\nkey = %s\ncertificate = %s\n' "$C/www.key" "$C/chain.pem"
} >"$CONF"
export TLSPOOL_CONFIG="$CONF"

# server NAME PORT [OPTIONS...]: a one-connection tlspool-connect server
# in the background; stderr to $T/NAME.err, exit code to $T/NAME.rc
server() {
	local name=$1 port=$2
	shift 2
	rm -f "$T/$name.rc"
	("$CLI" --server --bind 127.0.0.1 --myname www.example.test \
		--no-peer-cert "$@" "$port" 2>"$T/$name.err" >"$T/$name.out"
	 echo $? >"$T/$name.rc") &
	pids+=($!)
	wait_port "$port"
}
check_server() { # NAME WANT_RC [PATTERN]
	local rc i
	for i in $(seq 200); do [ -s "$T/$1.rc" ] && break; sleep 0.05; done
	rc=$(cat "$T/$1.rc" 2>/dev/null)
	if [ "$rc" = "$2" ]; then npass=$((npass + 1)); else
		nfail=$((nfail + 1))
		echo "not ok: $1: server exit $rc, want $2"
		sed 's/^/  server stderr: /' "$T/$1.err"
	fi
	if [ -n "${3:-}" ]; then
		if grep -qE -- "$3" "$T/$1.err"; then npass=$((npass + 1)); else
			nfail=$((nfail + 1))
			echo "not ok: $1: server stderr lacks /$3/"
			sed 's/^/  server stderr: /' "$T/$1.err"
		fi
	fi
}

# A scripted peer: peer.py server|client PORT STEP...; steps: "s:TEXT"
# send (Python escapes), "r" read a line, "b:N" read N bytes, "w:SECONDS"
# wait, "c" close.  What it read goes to stdout.
cat >"$W/peer.py" <<'EOF'
import socket, sys, time
role, port, steps = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
if role == "server":
    l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("127.0.0.1", port)); l.listen(1)
    s, _ = l.accept()
else:
    s = socket.create_connection(("127.0.0.1", port))
f = s.makefile("rb")
for st in steps:
    if st.startswith("s:"):
        s.sendall(st[2:].encode().decode("unicode_escape").encode("latin-1"))
    elif st == "r":
        sys.stdout.write(repr(f.readline()) + "\n")
    elif st.startswith("b:"):
        sys.stdout.write(repr(f.read(int(st[2:]))) + "\n")
    elif st.startswith("w:"):
        time.sleep(float(st[2:]))
    elif st == "c":
        break
    sys.stdout.flush()
time.sleep(0.3)
s.close()
EOF
peer() { # NAME ROLE PORT STEPS...: in the background, stdout $T/NAME.peer
	local name=$1
	shift
	python3 "$W/peer.py" "$@" >"$T/$name.peer" 2>&1 &
	pids+=($!)
	[ "$1" = server ] && wait_port "$2"
}
client() { # PORT PROTO [OPTIONS...] (stdin from the caller)
	local port=$1 proto=$2
	shift 2
	"$CLI" --client --sni www.example.test --starttls "$proto" "$@" 127.0.0.1 "$port"
}
export CLI
export -f client

# --- usage ---
expect unknown-proto 1 -- "$CLI" --client --starttls gopher 127.0.0.1 1
grep_in err unknown-proto 'not a known protocol \(smtp lmtp'
expect starttls-lookup 1 -- "$CLI" --lookup www.example.test --starttls smtp
grep_in err starttls-lookup '--starttls is not an option of --lookup'
expect starttls-udp 1 -- "$CLI" --client --udp --sni www.example.test --starttls smtp 127.0.0.1 "${F[json]}"
grep_in err starttls-udp 'starttls needs TCP \(not --udp or --sctp\)'
expect starttls-udp-server 1 -- "$CLI" --server --udp --starttls smtp "${F[json]}"
grep_in err starttls-udp-server 'starttls needs TCP'

# --- failing cases first: the client against scripted servers ---
# no STARTTLS in the EHLO reply
peer nostarttls server "${F[nostarttls]}" "s:220 mx ESMTP\r\n" r "s:250-mx\r\n250 PIPELINING\r\n" r
expect nostarttls 3 -- bash -c "echo hi | client ${F[nostarttls]} smtp"
grep_in err nostarttls 'smtp client: the server offers no STARTTLS \(RFC 3207 section 4\) in its EHLO reply: PIPELINING'
# 454 to STARTTLS
peer smtp4xx server "${F[smtp4xx]}" "s:220 mx ESMTP\r\n" r "s:250-mx\r\n250 STARTTLS\r\n" r "s:454 4.7.0 TLS not available\r\n"
expect smtp4xx 3 -- bash -c "echo hi | client ${F[smtp4xx]} smtp"
grep_in err smtp4xx 'answered STARTTLS with: "454 4.7.0 TLS not available"'
# data injected after the go-ahead (CVE-2011-0411, the response side)
peer inject server "${F[inject]}" "s:220 mx ESMTP\r\n" r "s:250-mx\r\n250 STARTTLS\r\n" r "s:220 go ahead\r\n250 injected\r\n"
expect inject 3 -- bash -c "echo hi | client ${F[inject]} smtp --json"
json_valid inject err
grep_in err inject 'data after its go-ahead.*CVE-2011-0411.*"250 injected'
if jq -e '.starttls.protocol == "smtp" and .starttls.greeting == "220 mx ESMTP" and (.starttls.capabilities | index("STARTTLS")) and .starttls.reply == "220 go ahead" and .class == "prelude" and .exit_code == 3' "$T/err" >/dev/null; then
	npass=$((npass + 1)); else nfail=$((nfail + 1)); echo "not ok: inject json"; cat "$T/err"; fi
# a line longer than RFC 5321 allows
peer longline server "${F[longline]}" "s:220 $(printf 'x%.0s' $(seq 600))\r\n"
expect longline 3 -- bash -c "echo hi | client ${F[longline]} smtp"
grep_in err longline 'longer than 512 octets \(RFC 5321 section 4.5.3.1\)'
# a silent server: the handshake deadline (3000 ms) bounds it
peer silent server "${F[silent]}" "w:6"
start=$(date +%s)
expect silent 2 -- bash -c "echo hi | client ${F[silent]} imap"
grep_in err silent 'imap client: the server did not send its part within 3000 ms \(step greeting\)'
[ $(($(date +%s) - start)) -le 5 ] && npass=$((npass + 1)) || { nfail=$((nfail + 1)); echo "not ok: silent took too long"; }
# one failure per family
peer imapno server "${F[imapno]}" "s:* OK ready\r\n" r "s:* CAPABILITY IMAP4rev1 STARTTLS\r\na1 OK done\r\n" r "s:a2 NO not now\r\n"
expect imapno 3 -- bash -c "echo hi | client ${F[imapno]} imap"
grep_in err imapno 'imap client: the server answered STARTTLS with: "a2 NO not now"'
peer pop3err server "${F[pop3err]}" "s:+OK ready\r\n" r "s:+OK\r\nSTLS\r\n.\r\n" r "s:-ERR no TLS today\r\n"
expect pop3err 3 -- bash -c "echo hi | client ${F[pop3err]} pop3"
grep_in err pop3err 'pop3 client: the server answered STLS with: "-ERR no TLS today"'
peer sievenone server "${F[sievenone]}" 's:"IMPLEMENTATION" "x"\r\n"SASL" "PLAIN"\r\nOK\r\n'
expect sievenone 3 -- bash -c "echo hi | client ${F[sievenone]} sieve"
grep_in err sievenone 'sieve client: the server offers no STARTTLS .*IMPLEMENTATION x,SASL PLAIN'
peer ftpnoauth server "${F[ftpnoauth]}" "s:220 ftp\r\n" r "s:211-Features:\r\n MDTM\r\n211 End\r\n"
expect ftpnoauth 3 -- bash -c "echo hi | client ${F[ftpnoauth]} ftp"
grep_in err ftpnoauth 'ftp client: the server offers no AUTH TLS'
peer nntpnocap server "${F[nntpnocap]}" "s:200 news\r\n" r "s:101 caps\r\nVERSION 2\r\nREADER\r\n.\r\n"
expect nntpnocap 3 -- bash -c "echo hi | client ${F[nntpnocap]} nntp"
grep_in err nntpnocap 'nntp client: the server offers no STARTTLS .*VERSION 2,READER'
peer ircno server "${F[ircno]}" r "s::irc.test 421 * STARTTLS :Unknown command\r\n"
expect ircno 3 -- bash -c "echo hi | client ${F[ircno]} irc"
grep_in err ircno 'irc client: the server offers no STARTTLS'
peer xmppnone server "${F[xmppnone]}" b:10 "s:<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='1' from='www.example.test' version='1.0'><stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>"
expect xmppnone 3 -- bash -c "echo hi | client ${F[xmppnone]} xmpp"
grep_in err xmppnone "xmpp client: the server offers no <starttls"
peer ldaprefused server "${F[ldaprefused]}" b:31 's:0\x0c\x02\x01\x01x\x07\x0a\x015\x04\x00\x04\x00'
expect ldaprefused 3 -- bash -c "echo hi | client ${F[ldaprefused]} ldap"
grep_in err ldaprefused 'ldap client: the server refused StartTLS .*resultCode 53 \(unwillingToPerform\)'
peer pgrefused server "${F[pgrefused]}" b:8 "s:N"
expect pgrefused 3 -- bash -c "echo hi | client ${F[pgrefused]} postgres"
grep_in err pgrefused 'postgres client: the server does not accept SSL'
peer mysqlnossl server "${F[mysqlnossl]}" 's:\x2e\x00\x00\x00\x0a5.5.5\x00\x01\x00\x00\x00abcdefgh\x00\x00\x02\x21\x02\x00\x00\x00\x15\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00abcdefghijkl\x00'
expect mysqlnossl 3 -- bash -c "echo hi | client ${F[mysqlnossl]} mysql"
grep_in err mysqlnossl 'mysql client: the server offers no SSL'

# a good dialogue, then a certificate that the TLSA record does not name
server wrongtlsa "${F[wrongtlsa]}" --starttls smtp --exec cat
expect wrongtlsa 4 -- timeout 20 bash -c "echo hi | client ${F[wrongtlsa]} smtp --json"
json_valid wrongtlsa err
if jq -e '.starttls.step == "done" and .verdict == "no-match" and .exit_code == 4' "$T/err" >/dev/null; then
	npass=$((npass + 1)); else nfail=$((nfail + 1)); echo "not ok: wrongtlsa json"; cat "$T/err"; fi

# no --starttls on port 25: the handshake fails, with a hint (port 25
# is bound only where this runs as root and nothing listens there)
if [ "$(id -u)" = 0 ] && ! ss -Htln 'sport = :25' | grep -q .; then
	peer port25 server 25 "s:220 mx ESMTP\r\n" r
	expect port25 3 -- timeout 20 bash -c "echo hi | $CLI --client --sni www.example.test 127.0.0.1 25"
	grep_in err port25 '^tlspool-connect: try: port 25 usually speaks smtp in plaintext before TLS: --starttls smtp$'
else
	echo "starttls.sh: the port 25 hint not tried (not root, or port 25 in use)"
fi

# --- the server side against a hostile client: STARTTLS pipelined ---
server pipelined "${F[pipelined]}" --starttls smtp --exec cat
peer pipelined-client client "${F[pipelined]}" r "s:EHLO x\r\n" r r r "s:STARTTLS\r\nRSET\r\n" r
check_server pipelined 3 'smtp server: the client sent data after its STARTTLS request.*CVE-2011-0411.*"RSET'

# --- each protocol: tlspool-connect client against tlspool-connect server ---
for p in $PROTOS; do
	server "cs-$p" "${P[$p]}" --starttls "$p" --exec cat
	expect "cs-$p" 0 -- timeout 20 bash -c "echo hello-$p | client ${P[$p]} $p"
	grep_in out "cs-$p" "^hello-$p\$"
	check_server "cs-$p" 0
done

# --fork: each connection its own dialogue (a failed one does not stop
# the server)
"$CLI" --server --bind 127.0.0.1 --myname www.example.test --no-peer-cert \
	--fork --starttls pop3 --exec cat "${F[fork]}" 2>"$T/fork.err" &
pids+=($!)
forkpid=$!
wait_port "${F[fork]}"
expect fork-1 0 -- timeout 20 bash -c "echo one | client ${F[fork]} pop3"
grep_in out fork-1 '^one$'
peer fork-bad client "${F[fork]}" r "s:STLS\r\nUSER x\r\n" r
sleep 0.5
grep_in fork.err fork-bad 'pop3 server: the client sent data after its STARTTLS request'
expect fork-2 0 -- timeout 20 bash -c "echo two | client ${F[fork]} pop3"
grep_in out fork-2 '^two$'
kill "$forkpid" 2>/dev/null

# --diagnose and --json report the dialogue
server json "${F[json]}" --starttls imap --exec cat
expect diagnose-json 0 -- timeout 20 bash -c "echo hi | client ${F[json]} imap --json"
json_valid diagnose-json err
if jq -e '.starttls.protocol == "imap" and (.starttls.greeting | test("^\\* OK \\[CAPABILITY")) and (.starttls.capabilities | index("STARTTLS")) and .starttls.request == "a2 STARTTLS" and .starttls.reply == "a2 OK Begin TLS negotiation now" and .starttls.step == "done" and .verdict == "authenticated"' "$T/err" >/dev/null; then
	npass=$((npass + 1)); else nfail=$((nfail + 1)); echo "not ok: json dialogue"; cat "$T/err"; fi
check_server json 0
server diag "${F[json]}" --starttls pop3 --exec cat
expect diagnose-text 0 -- timeout 20 bash -c "echo hi | client ${F[json]} pop3 --diagnose"
grep_in err diagnose-text '^; starttls    pop3, step done$'
grep_in err diagnose-text '^; greeting    \+OK www.example.test tlspool ready$'
grep_in err diagnose-text '^; capability  STLS$'
grep_in err diagnose-text '^; reply       \+OK Begin TLS negotiation$'
grep_in err diagnose-text '^; dane    authenticated'
check_server diag 0

# --- the server side against openssl s_client -starttls PROTO ---
for p in $SCLIENT; do
	server "sc-$p" "${S[$p]}" --starttls "$p" --exec cat
	extra=()
	case $p in xmpp*) extra=(-xmpphost www.example.test) ;; smtp|lmtp) extra=(-name client.example.test) ;; esac
	expect "sclient-$p" 0 -- timeout 20 bash -c "(echo hello-$p; sleep 1) | openssl s_client -starttls $p ${extra[*]} -connect 127.0.0.1:${S[$p]} -servername www.example.test -verify_return_error -CAfile $C/root.pem -verify_hostname www.example.test -quiet -no_ign_eof"
	grep_in out "sclient-$p" "^hello-$p\$"
	check_server "sc-$p" 0
done

# --- a whole mail transaction through --server --starttls smtp ---
cat >"$W/smtpd.sh" <<'EOF'
#!/bin/bash
# a minimal SMTP server after TLS: the message body to $1
while IFS= read -r l; do
	l=${l%$'\r'}
	case "${l^^}" in
	EHLO* | HELO*) printf '250-www.example.test\r\n250 8BITMIME\r\n' ;;
	MAIL* | RCPT*) printf '250 2.1.0 OK\r\n' ;;
	DATA)
		printf '354 go ahead\r\n'
		while IFS= read -r d; do
			d=${d%$'\r'}
			[ "$d" = . ] && break
			printf '%s\n' "$d" >>"$1"
		done
		printf '250 2.0.0 queued\r\n' ;;
	QUIT) printf '221 2.0.0 bye\r\n'; exit 0 ;;
	*) printf '500 5.5.1 what\r\n' ;;
	esac
done
EOF
# openssl s_client -starttls smtp sends a message; the body arrives
server mailsc "${F[mailsc]}" --starttls smtp --exec "bash $W/smtpd.sh $W/body-sc"
expect mail-sclient 0 -- timeout 20 bash -c "(printf 'EHLO client.example.test\r\nMAIL FROM:<a@client.example.test>\r\nRCPT TO:<postmaster@example.test>\r\nDATA\r\nhello from s_client\r\n.\r\nQUIT\r\n'; sleep 1) | openssl s_client -starttls smtp -name client.example.test -connect 127.0.0.1:${F[mailsc]} -verify_return_error -CAfile $C/root.pem -quiet -no_ign_eof"
grep_in out mail-sclient '^250 2.0.0 queued'
grep_in out mail-sclient '^221 2.0.0 bye'
if grep -qx 'hello from s_client' "$W/body-sc" 2>/dev/null; then npass=$((npass + 1)); else
	nfail=$((nfail + 1)); echo "not ok: mail-sclient: the body did not arrive"; fi
check_server mailsc 0
# and tlspool-connect --client --starttls smtp, as a mail administrator
# would, with --diagnose
server mailcli "${F[mailcli]}" --starttls smtp --exec "bash $W/smtpd.sh $W/body-cli"
expect mail-client 0 -- timeout 20 bash -c "printf 'EHLO client.example.test\r\nMAIL FROM:<a@client.example.test>\r\nRCPT TO:<postmaster@example.test>\r\nDATA\r\nhello from tlspool\r\n.\r\nQUIT\r\n' | client ${F[mailcli]} smtp --myname client.example.test --no-local-cert --diagnose"
grep_in err mail-client '^; hello       client.example.test$'
grep_in err mail-client '^; capability  STARTTLS$'
grep_in err mail-client '^; reply       220 2.0.0 Ready to start TLS$'
grep_in out mail-client '^250 2.0.0 queued'
if grep -qx 'hello from tlspool' "$W/body-cli" 2>/dev/null; then npass=$((npass + 1)); else
	nfail=$((nfail + 1)); echo "not ok: mail-client: the body did not arrive"; fi
check_server mailcli 0
# swaks needs Net::SSLeay (Debian libnet-ssleay-perl) for --tls
if ! perl -MNet::SSLeay -e1 2>/dev/null; then
	echo "starttls.sh: swaks --tls not run: Net::SSLeay (libnet-ssleay-perl) is not installed"
else
	server swaks "${F[swaks]}" --starttls smtp --exec "bash $W/smtpd.sh $W/body"
	expect swaks 0 -- timeout 20 swaks --tls --server 127.0.0.1 --port "${F[swaks]}" \
		--to postmaster@example.test --from a@client.example.test \
		--ehlo client.example.test --body "hello through tlspool"
	grep_in out swaks '<-  220 2.0.0 Ready to start TLS'
	grep_in out swaks '=== TLS started with cipher'
	grep_in out swaks '<~  250 2.0.0 queued'
	if grep -q 'hello through tlspool' "$W/body" 2>/dev/null; then npass=$((npass + 1)); else
		nfail=$((nfail + 1)); echo "not ok: swaks: the body did not arrive"; fi
	check_server swaks 0
fi

finish
