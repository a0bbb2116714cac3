#!/bin/bash
# tlspool-connect --client --starttls smtp against a real Postfix smtpd
# (tests/tools/postfix.sh: a private instance on loopback ports, mail for
# example.test delivered to a file), with TLSA records for its certificate
# and an MX record for example.test in zones signed for this script:
#  - a mail transaction after STARTTLS: the peer is mail.example.test,
#    the server's replies come back (EHLO after TLS, 250 queued as), the
#    message is in the mailbox and Postfix logs the TLS connection;
#    --diagnose and --json show the dialogue (greeting, capabilities,
#    the 220 reply); the same as submission;
#  - the same through --mx example.test (RFC 7672), and through an MX
#    list whose first host has a TLSA record of another key;
#  - failures: TLSA of another key (exit 4, nothing sent), an smtpd that
#    offers no STARTTLS (exit 3), an smtpd that answers STARTTLS with
#    501 (exit 3), each with --json saying where the dialogue stopped;
#    an MX whose only host has the wrong TLSA (exit 4);
#  - DANE-TA(2) with the chain Postfix sends: by address and by MX, and
#    a TLSA base name the certificate does not carry (exit 4);
#  - --lookup --mx shows the MX hosts in order with their TLSA records.
# Needs root and Postfix; skips (77) otherwise.
. "$(dirname "$0")/common"
. scripts/ports.sh
. tests/tools/servers-common.sh
need_root_and postfix /usr/lib/postfix/sbin/master certtool
srv_setup
leaf mail mail.example.test

declare -A P
for s in smtp notls refuse ta; do P[$s]=$(free_port); done
{
	echo "mail IN A 127.0.0.1"
	echo "badmail IN A 127.0.0.1"
	echo "@ IN MX 10 mail.example.test."
	echo "fall IN MX 10 badmail.example.test."
	echo "fall IN MX 20 mail.example.test."
	echo "allbad IN MX 10 badmail.example.test."
	for s in smtp notls refuse; do
		tlsa 3 1 1 "$C/mail.pem" "_${P[$s]}._tcp.mail.example.test."
	done
	# badmail is the same server, but its TLSA names another key
	leaf other mail.example.test
	tlsa 3 1 1 "$C/other.pem" "_${P[smtp]}._tcp.badmail.example.test."
	# DANE-TA(2): the test CA; Postfix sends its chain (leaf, root)
	tlsa 2 0 1 "$C/root.pem" "_${P[ta]}._tcp.mail.example.test."
	echo "mailta IN A 127.0.0.1"
	tlsa 2 0 1 "$C/root.pem" "_${P[ta]}._tcp.mailta.example.test."
	echo "ta IN MX 10 mail.example.test."
} >"$W/example.add"
zones/serve start "$W/z" --add example.test "$W/example.add" 2>/dev/null ||
	{ echo "zones failed"; exit 1; }
PF="$W/postfix"
cleanup_all() {
	tests/tools/postfix.sh stop "$PF" >/dev/null 2>&1
	zones/serve stop "$W/z" >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup_all EXIT

# STARTTLS answered with an error by Postfix itself: its command filter
# turns "STARTTLS" into "STARTTLS x", which it refuses with 501.
echo '/^STARTTLS$/ STARTTLS x' >"$W/refuse.regexp"
tests/tools/postfix.sh start "$PF" "${P[smtp]}" mail.example.test \
	"$C/mail.chain" "$C/mail.key" -- \
	"127.0.0.1:${P[notls]}/inet=127.0.0.1:${P[notls]} inet n - n - - smtpd -o smtpd_tls_security_level=none" \
	"127.0.0.1:${P[refuse]}/inet=127.0.0.1:${P[refuse]} inet n - n - - smtpd -o smtpd_command_filter=regexp:$W/refuse.regexp" \
	"127.0.0.1:${P[ta]}/inet=127.0.0.1:${P[ta]} inet n - n - - smtpd" ||
	{ echo "postfix failed"; exit 1; }
wait_port "${P[notls]}" && wait_port "${P[refuse]}" && wait_port "${P[ta]}" || exit 1
LOG="$PF/maillog"
BOX="$PF/mail/example.test/inbox"

CONF="$W/tlspool.conf"
{
	cat "$W/z/tlspool.conf"
	printf '[tls]\nhandshake_timeout_ms = 5000\n'
} >"$CONF"
export TLSPOOL_CONFIG="$CONF"

# mail TOKEN: an SMTP transaction after STARTTLS on standard output, with
# pauses where a client waits for the server (Postfix tolerates pipelined
# MAIL, RCPT and DATA, not the message before the 354)
mail() {
	await_tls
	printf 'EHLO client.example.test\r\n'
	sleep 0.2
	printf 'MAIL FROM:<alice@client.example.test>\r\nRCPT TO:<john@example.test>\r\nDATA\r\n'
	sleep 0.3
	printf 'Subject: %s\r\n\r\nsent through tlspool-connect: %s\r\n.\r\n' "$1" "$1"
	sleep 0.3
	printf 'QUIT\r\n'
	sleep 0.2
}
send() { # TOKEN CLI-ARGS...
	local tok=$1
	shift
	mail "$tok" | timeout 20 "$CLI" --client --starttls smtp --myname client.example.test \
		--no-local-cert "$@"
}

# --- failures first ---
# the TLSA record of another key: refused after the dialogue, no mail sent
expect wrong-tlsa 4 -- send tok-wrong --sni badmail.example.test 127.0.0.1 "${P[smtp]}"
grep_in err wrong-tlsa "_${P[smtp]}\\._tcp\\.badmail\\.example\\.test\\."
no_grep_in out wrong-tlsa '^250'
no_grep_in err wrong-tlsa '^peer: '
# no STARTTLS offered: exit 3, and no TLS attempted
expect no-starttls 3 -- send tok-notls --sni mail.example.test 127.0.0.1 "${P[notls]}"
grep_in err no-starttls 'STARTTLS'
no_grep_in out no-starttls '^250'
# STARTTLS refused with 501
expect refused 3 -- send tok-refused --sni mail.example.test 127.0.0.1 "${P[refuse]}"
grep_in err refused '501'
no_grep_in out refused '^250'
# --mx to a domain whose only MX host has the TLSA of another key
expect mx-allbad 4 -- send tok-allbad --mx allbad.example.test "${P[smtp]}"
grep_in err mx-allbad 'badmail\.example\.test'
no_grep_in out mx-allbad '^250'
sleep 0.5
file_lacks none-delivered "$BOX" 'tok-(wrong|notls|refused|allbad)'
# --json: the dialogue as Postfix spoke it, and where it stopped
jsonerr() { grep -v -e '^peer: ' -e '^tlspool-connect: ' "$T/err"; }
jcheck() { # NAME JQ-EXPRESSION
	if jsonerr | jq -e "$2" >/dev/null 2>&1; then npass=$((npass + 1)); else
		nfail=$((nfail + 1)); echo "not ok: $1: $(jsonerr | head -c 600)"; fi
}
expect json-no-starttls 3 -- send tok-notls --sni mail.example.test --json 127.0.0.1 "${P[notls]}"
jcheck json-no-starttls '.class == "prelude" and .exit_code == 3 and
	.starttls.protocol == "smtp" and .starttls.step == "capabilities" and
	.starttls.greeting == "220 mail.example.test ESMTP tlspool test" and
	(.starttls.capabilities | index("PIPELINING")) != null and
	(.starttls.capabilities | index("STARTTLS")) == null'
expect json-refused 3 -- send tok-refused --sni mail.example.test --json 127.0.0.1 "${P[refuse]}"
jcheck json-refused '.class == "prelude" and .starttls.request == "STARTTLS" and
	.starttls.reply == "501 5.5.4 Syntax: STARTTLS"'
wait_for "$LOG" 'starttls=0/1' || true
# what Postfix saw: the client's alert after the wrong TLSA (bad
# certificate), an EHLO and no STARTTLS, the refused STARTTLS
file_has wrong-tlsa-logged "$LOG" 'SSL alert number 42'
# the client says QUIT before it leaves (RFC 5321 section 4.1.1.10)
file_has no-starttls-logged "$LOG" 'disconnect from localhost\[127\.0\.0\.1\] ehlo=1 quit=1 commands=2$'
file_has refused-logged "$LOG" 'replacing command "STARTTLS" with "STARTTLS x"'
file_has refused-logged "$LOG" 'disconnect from localhost\[127\.0\.0\.1\] ehlo=1 starttls=0/1 quit=1'

# --- a mail transaction over STARTTLS, data both ways ---
expect direct 0 -- send tok-direct --sni mail.example.test --diagnose 127.0.0.1 "${P[smtp]}"
grep_in err direct '^peer: mail\.example\.test$'
grep_in err direct '^; greeting +220 mail\.example\.test ESMTP tlspool test'
grep_in err direct '^; capability +STARTTLS'
grep_in err direct '^; reply +220 '
grep_in err direct '^; dane +authenticated'
# the EHLO after TLS, answered over TLS (no STARTTLS offered any more)
grep_in out direct '^250-mail\.example\.test'
no_grep_in out direct 'STARTTLS'
grep_in out direct '^250 2\.0\.0 Ok: queued as [0-9A-F]+'
grep_in out direct '^221 '
expect direct-json 0 -- send tok-json --sni mail.example.test --json 127.0.0.1 "${P[smtp]}"
jcheck direct-json '.exit_code == 0 and .verdict == "authenticated" and
	.starttls.step == "done" and .starttls.hello == "client.example.test" and
	(.starttls.capabilities | index("STARTTLS")) != null and
	(.starttls.reply | startswith("220 "))'
# submission (RFC 6409) speaks the same dialogue; Postfix takes it too
expect submission 0 -- bash -c "T='$T'; $(declare -f await_tls mail); mail tok-sub | timeout 20 '$CLI' --client --starttls submission --myname client.example.test --no-local-cert --sni mail.example.test 127.0.0.1 ${P[smtp]}"
grep_in err submission '^peer: mail\.example\.test$'
grep_in out submission '^250 2\.0\.0 Ok: queued as'
wait_for "$BOX" 'sent through tlspool-connect: tok-sub'
file_has direct-delivered "$BOX" '^sent through tlspool-connect: tok-direct'
file_has submission-delivered "$BOX" '^sent through tlspool-connect: tok-sub'
file_has direct-logged "$LOG" 'TLS connection established from localhost\[127\.0\.0\.1\]'

# --- by MX (RFC 7672): example.test -> mail.example.test ---
expect mx 0 -- send tok-mx --mx example.test "${P[smtp]}"
grep_in err mx '^peer: mail\.example\.test$'
grep_in out mx '^250 2\.0\.0 Ok: queued as'
# the first MX host fails its TLSA, the second one takes the mail
expect mx-fall 0 -- send tok-fall --mx fall.example.test "${P[smtp]}"
grep_in err mx-fall 'badmail\.example\.test'
grep_in err mx-fall '^peer: mail\.example\.test$'
grep_in out mx-fall '^250 2\.0\.0 Ok: queued as'
wait_for "$BOX" 'tok-fall'
file_has mx-delivered "$BOX" '^sent through tlspool-connect: tok-mx'
file_has mx-fall-delivered "$BOX" '^sent through tlspool-connect: tok-fall'

# --- DANE-TA(2) with the chain Postfix sends: the name checks ---
# mailta.example.test: the CA matches, but the certificate names
# mail.example.test only
expect ta-name 4 -- send tok-taname --sni mailta.example.test --diagnose 127.0.0.1 "${P[ta]}"
grep_in err ta-name '^; record  1: 2 0 1 \(DANE-TA\)'
grep_in err ta-name 'mailta\.example\.test'
no_grep_in out ta-name '^250'
expect ta 0 -- send tok-ta --sni mail.example.test 127.0.0.1 "${P[ta]}"
grep_in err ta '^peer: mail\.example\.test$'
grep_in out ta '^250 2\.0\.0 Ok: queued as'
# by MX: the MX host mail.example.test is a reference name (RFC 7672
# section 3.2.2)
expect ta-mx 0 -- send tok-tamx --mx ta.example.test "${P[ta]}"
grep_in err ta-mx '^peer: mail\.example\.test$'
grep_in out ta-mx '^250 2\.0\.0 Ok: queued as'

# --- what a sending MTA would see of example.test (--lookup --mx) ---
expect lookup-mx 0 -- "$CLI" --lookup --mx example.test "${P[smtp]}"
grep_in out lookup-mx '^example\.test\. [0-9]+ IN MX 10 mail\.example\.test\.$'
grep_in out lookup-mx "_${P[smtp]}\\._tcp\\.mail\\.example\\.test\\."
expect lookup-mx-fall 0 -- "$CLI" --lookup --mx fall.example.test "${P[smtp]}" --json
check lookup-mx-fall jq -e '[.hosts[] | "\(.name) \(.preference) \(.verdict)"] ==
	["badmail.example.test. 10 dane", "mail.example.test. 20 dane"]' "$T/out" >/dev/null

timed finished
finish
