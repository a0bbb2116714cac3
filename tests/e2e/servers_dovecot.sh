#!/bin/bash
# tlspool-connect --client --starttls imap, pop3, sieve and lmtp against a real
# Dovecot (tests/tools/dovecot.sh: a private instance on loopback ports,
# user john, one message in his INBOX), with TLSA records for its
# certificate in zones signed for this script.  For each protocol:
#  - after STARTTLS the peer is mail.example.test and a session runs over
#    TLS: IMAP CAPABILITY (no STARTTLS any more), LOGIN, SELECT and FETCH
#    of the message's subject; POP3 USER, PASS, STAT, RETR; ManageSieve
#    the capabilities the server sends again after TLS (RFC 5804 section
#    2.2), AUTHENTICATE PLAIN, PUTSCRIPT and LISTSCRIPTS; Dovecot logs
#    the login over TLS;
#  - LMTP: a delivery over TLS into john's INBOX;
#  - failures: the TLSA record of another key (exit 4, no login), a
#    Dovecot with ssl = no, which offers no STARTTLS/STLS (exit 3).
# Needs root and Dovecot with imapd, pop3d, managesieved and lmtpd; skips
# (77) otherwise.
. "$(dirname "$0")/common"
. scripts/ports.sh
. tests/tools/servers-common.sh
need_root_and dovecot /usr/lib/dovecot/imap /usr/lib/dovecot/pop3 \
	/usr/lib/dovecot/managesieve /usr/lib/dovecot/lmtp certtool
srv_setup
leaf mail mail.example.test
leaf other mail.example.test

declare -A P
for s in imap pop3 sieve lmtp imap0 pop30 sieve0 lmtp0; do P[$s]=$(free_port); done
{
	echo "mail IN A 127.0.0.1"
	echo "badmail IN A 127.0.0.1"
	for s in imap pop3 sieve lmtp imap0 pop30 sieve0 lmtp0; do
		tlsa 3 1 1 "$C/mail.pem" "_${P[$s]}._tcp.mail.example.test."
		tlsa 3 1 1 "$C/other.pem" "_${P[$s]}._tcp.badmail.example.test."
	done
} >"$W/example.add"
zones/serve start "$W/z" --add example.test "$W/example.add" 2>/dev/null ||
	{ echo "zones failed"; exit 1; }
D="$W/dovecot"
D0="$W/dovecot0"
cleanup_all() {
	tests/tools/dovecot.sh stop "$D" >/dev/null 2>&1
	tests/tools/dovecot.sh stop "$D0" >/dev/null 2>&1
	zones/serve stop "$W/z" >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup_all EXIT
tests/tools/dovecot.sh start "$D" "${P[imap]}" "${P[pop3]}" "${P[sieve]}" "${P[lmtp]}" \
	mail.example.test "$C/mail.chain" "$C/mail.key" || { echo "dovecot failed"; exit 1; }
tests/tools/dovecot.sh start "$D0" "${P[imap0]}" "${P[pop30]}" "${P[sieve0]}" "${P[lmtp0]}" \
	mail.example.test || { echo "dovecot (no TLS) failed"; exit 1; }
LOG="$D/dovecot.log"

CONF="$W/tlspool.conf"
{
	cat "$W/z/tlspool.conf"
	printf '[tls]\nhandshake_timeout_ms = 5000\n'
} >"$CONF"
export TLSPOOL_CONFIG="$CONF"

# the sessions after TLS, with pauses where a client waits for replies
imap_session() {
	await_tls
	printf 'a1 CAPABILITY\r\n'
	sleep 0.2
	printf 'a2 LOGIN john secret\r\n'
	sleep 0.2
	printf 'a3 SELECT INBOX\r\na4 FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]\r\n'
	sleep 0.2
	printf 'a5 LOGOUT\r\n'
	sleep 0.2
}
pop3_session() {
	await_tls
	printf 'USER john\r\n'
	sleep 0.1
	printf 'PASS secret\r\n'
	sleep 0.2
	printf 'STAT\r\nRETR 1\r\n'
	sleep 0.2
	printf 'QUIT\r\n'
	sleep 0.2
}
sieve_session() {
	await_tls
	sleep 0.1
	# AUTHENTICATE PLAIN with "\0john\0secret"
	printf 'AUTHENTICATE "PLAIN" "%s"\r\n' "$(printf '\0john\0secret' | base64)"
	sleep 0.2
	local s='require "fileinto";\r\nif header :contains "subject" "tlspool" { fileinto "INBOX"; }\r\n'
	# shellcheck disable=SC2059 # the script holds \r\n
	printf "PUTSCRIPT \"tlspool\" {$(printf "$s" | wc -c)+}\r\n$s\r\n"
	sleep 0.2
	printf 'LISTSCRIPTS\r\n'
	sleep 0.1
	printf 'LOGOUT\r\n'
	sleep 0.2
}
lmtp_session() {
	await_tls
	printf 'LHLO client.example.test\r\n'
	sleep 0.2
	printf 'MAIL FROM:<alice@example.test>\r\nRCPT TO:<john@example.test>\r\nDATA\r\n'
	sleep 0.3
	printf 'Subject: by lmtp\r\n\r\ndelivered over LMTP after STARTTLS\r\n.\r\n'
	sleep 0.3
	printf 'QUIT\r\n'
	sleep 0.2
}
run() { # PROTO CLI-ARGS...
	local proto=$1
	shift
	"${proto}_session" | timeout 20 "$CLI" --client --starttls "$proto" "$@"
}

# --- failures first ---
for proto in imap pop3 sieve lmtp; do
	expect "$proto-wrong-tlsa" 4 -- run "$proto" --sni badmail.example.test \
		127.0.0.1 "${P[$proto]}"
	grep_in err "$proto-wrong-tlsa" "_${P[$proto]}\\._tcp\\.badmail\\.example\\.test\\."
	no_grep_in err "$proto-wrong-tlsa" '^peer: '
	no_grep_in out "$proto-wrong-tlsa" '.'
	expect "$proto-no-starttls" 3 -- run "$proto" --sni mail.example.test \
		127.0.0.1 "${P[${proto}0]}"
	grep_in err "$proto-no-starttls" 'STARTTLS|STLS'
	no_grep_in out "$proto-no-starttls" '.'
done
file_lacks no-login "$LOG" 'Login: user=<john>'

# --- IMAP (RFC 9051/3501) ---
expect imap 0 -- run imap --sni mail.example.test --diagnose 127.0.0.1 "${P[imap]}"
grep_in err imap '^peer: mail\.example\.test$'
grep_in err imap '^; greeting +\* OK .*mail\.example\.test Dovecot ready'
grep_in err imap '^; capability +STARTTLS'
grep_in err imap '^; dane +authenticated'
grep_in out imap '^\* CAPABILITY IMAP4rev1 .*AUTH=PLAIN'
no_grep_in out imap 'STARTTLS'
grep_in out imap '^a1 OK'
grep_in out imap '^a2 OK .*Logged in'
grep_in out imap '^\* 1 EXISTS'
grep_in out imap '^Subject: hello from dovecot'
grep_in out imap '^a5 OK'
wait_for "$LOG" 'imap-login: Info: Login: user=<john>' || true
file_has imap-logged "$LOG" 'imap-login: Info: Login: user=<john>, method=PLAIN, .*, TLS'

# --- POP3 (RFC 2595 STLS) ---
expect pop3 0 -- run pop3 --sni mail.example.test --diagnose 127.0.0.1 "${P[pop3]}"
grep_in err pop3 '^peer: mail\.example\.test$'
grep_in err pop3 '^; greeting +\+OK mail\.example\.test Dovecot ready'
grep_in err pop3 '^; capability +STLS'
grep_in out pop3 '^\+OK Logged in'
grep_in out pop3 '^\+OK 1 [0-9]+'
grep_in out pop3 '^Subject: hello from dovecot'
grep_in out pop3 '^\+OK Logging out'
wait_for "$LOG" 'pop3-login: Info: Login: user=<john>' || true
file_has pop3-logged "$LOG" 'pop3-login: Info: Login: user=<john>, method=PLAIN, .*, TLS'

# --- ManageSieve (RFC 5804) ---
expect sieve 0 -- run sieve --sni mail.example.test --diagnose 127.0.0.1 "${P[sieve]}"
grep_in err sieve '^peer: mail\.example\.test$'
grep_in err sieve '^; capability +"STARTTLS"|^; capability +STARTTLS'
# the capabilities again, over TLS and without STARTTLS
grep_in out sieve '^"IMPLEMENTATION" "Dovecot test"'
no_grep_in out sieve 'STARTTLS'
grep_in out sieve '^OK "Logged in\."'
grep_in out sieve '^"tlspool"'
grep_in out sieve '^OK "Logout completed\."'
wait_for "$LOG" 'managesieve-login: Info: Login: user=<john>' || true
file_has sieve-logged "$LOG" 'managesieve-login: Info: Login: user=<john>, method=PLAIN, .*, TLS'
check sieve-stored test -s "$D/home/john/sieve/tlspool.sieve"

# --- LMTP (RFC 2033) delivery into john's INBOX ---
expect lmtp 0 -- run lmtp --sni mail.example.test --diagnose 127.0.0.1 "${P[lmtp]}"
grep_in err lmtp '^peer: mail\.example\.test$'
grep_in err lmtp '^; greeting +220 mail\.example\.test'
grep_in err lmtp '^; capability +STARTTLS'
grep_in out lmtp '^250-mail\.example\.test'
no_grep_in out lmtp 'STARTTLS'
grep_in out lmtp '^250 2\.0\.0 <john@example\.test> .*Saved'
grep_in out lmtp '^221 '
file_has lmtp-delivered "$D/home/john/mail/inbox" '^delivered over LMTP after STARTTLS'

timed finished
finish
