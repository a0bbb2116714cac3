#!/bin/bash
# The other direction: Postfix's own DANE client (smtp_tls_security_level
# = dane, RFC 7672) delivers mail to tlspool-connect --server --starttls
# smtp, which proves itself by the TLSA record of its certificate and
# hands the session after TLS to a small SMTP responder.
#
# Postfix resolves through the system resolver and trusts its AD bit, so
# the whole test runs in a private network and mount namespace (unshare
# -n -m): the test zones (zones/serve), a validating Unbound on
# 127.0.0.53:53 that trusts the test root (tests/tools/unbound.sh), a
# private /etc/resolv.conf bind-mounted over the real one (with "options
# trust-ad"), and port 25 of the namespace's own loopback for the MX host
# (at 127.0.0.2: Postfix, on 127.0.0.1, would take 127.0.0.1 for itself).
#  - MX other.test -> mx.other.test, TLSA _25._tcp.mx.other.test 3 1 1:
#    Postfix logs "Verified TLS connection established to
#    mx.other.test[127.0.0.2]:25" and the message is delivered (status=
#    sent, the responder got it over TLS, tlspool-connect served it);
#  - failure: MX bad.other.test -> mxbad.other.test whose TLSA names
#    another key: Postfix defers the mail ("Server certificate not
#    verified") and nothing arrives;
#  - posttls-finger -l dane says the same of both domains.
# Needs root, unshare, ip, Unbound and Postfix; skips (77) otherwise.
if [ -z "${TLSPOOL_NETNS:-}" ]; then
	. tests/tools/servers-common.sh
	need_root_and unshare ip unbound unbound-checkconf dig postfix \
		/usr/lib/postfix/sbin/master swaks certtool
	if ! unshare -n -m true 2>/dev/null; then
		echo "skip: $(basename "$0"): unshare -n -m fails here"
		exit 77
	fi
	TLSPOOL_NETNS=1 exec unshare -n -m -- bash "$0" "$@"
fi
. "$(dirname "$0")/common"
. scripts/ports.sh
. tests/tools/servers-common.sh
ip link set lo up || { echo "ip link set lo up failed"; exit 1; }
srv_setup
leaf mx mx.other.test
leaf other mx.other.test

{
	echo "@ IN MX 10 mx.other.test."
	echo "mx IN A 127.0.0.2"
	tlsa 3 1 1 "$C/mx.pem" "_25._tcp.mx.other.test."
	echo "bad IN MX 10 mxbad.other.test."
	echo "mxbad IN A 127.0.0.2"
	tlsa 3 1 1 "$C/other.pem" "_25._tcp.mxbad.other.test."
} >"$W/other.add"
zones/serve start "$W/z" --add other.test "$W/other.add" 2>/dev/null ||
	{ echo "zones failed"; exit 1; }
pids=()
PF="$W/postfix"
cleanup_all() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	tests/tools/postfix.sh stop "$PF" >/dev/null 2>&1
	tests/tools/unbound.sh stop "$W/unbound" >/dev/null 2>&1
	zones/serve stop "$W/z" >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup_all EXIT
zport=$(sed -n 's/^TLSPOOL_ZONES_PORT=//p' "$W/z/env")
tests/tools/unbound.sh start "$W/unbound" 127.0.0.53 "$W/z/root.key" "127.0.0.1@$zport" ||
	{ echo "unbound failed"; exit 1; }
printf 'nameserver 127.0.0.53\noptions trust-ad\n' >"$W/resolv.conf"
mount --bind "$W/resolv.conf" /etc/resolv.conf || { echo "mount failed"; exit 1; }

# the resolver validates the test zones: AD set, the TLSA answered
dig +dnssec +adflag _25._tcp.mx.other.test TLSA >"$T/dig" 2>&1
file_has resolver-ad "$T/dig" 'flags: qr rd ra ad;'
file_has resolver-tlsa "$T/dig" '^_25\._tcp\.mx\.other\.test\..*TLSA[[:space:]]+3 1 1 '

CONF="$W/tlspool.conf"
{
	cat "$W/z/tlspool.conf"
	printf '[tls]\nhandshake_timeout_ms = 5000\n'
	printf '[identity mx.other.test]\nkey = %s\ncertificate = %s\n' "$C/mx.key" "$C/mx.chain"
} >"$CONF"
export TLSPOOL_CONFIG="$CONF"

# The SMTP session after TLS: enough of a server for Postfix's client
# (RFC 5321), every line it reads kept in $W/received.
cat >"$W/sink.sh" <<EOF
#!/bin/bash
out=$W/received
EOF
cat >>"$W/sink.sh" <<'EOF'
while IFS= read -r line; do
	line=${line%$'\r'}
	echo "C: $line" >>"$out"
	case ${line^^} in
	EHLO*) printf '250-mx.other.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n' ;;
	MAIL* | RCPT* | RSET* | NOOP*) printf '250 2.0.0 Ok\r\n' ;;
	DATA)
		printf '354 End data with <CR><LF>.<CR><LF>\r\n'
		while IFS= read -r l; do
			l=${l%$'\r'}
			echo "D: $l" >>"$out"
			[ "$l" = . ] && break
		done
		printf '250 2.0.0 Ok: queued as TLSPOOL\r\n'
		;;
	QUIT)
		printf '221 2.0.0 Bye\r\n'
		exit 0
		;;
	*) printf '502 5.5.2 Error: command not recognized\r\n' ;;
	esac
done
EOF
chmod 755 "$W/sink.sh"
"$CLI" --server --fork --starttls smtp --bind 127.0.0.2 --myname mx.other.test \
	--no-peer-cert --exec "$W/sink.sh" 25 >"$T/server.out" 2>"$T/server.err" &
pids+=($!)
wait_port 25 || exit 1

# The sending Postfix: its smtpd (no TLS) takes the test's mail on a
# loopback port, its smtp client delivers by MX with DANE.
port=$(free_port)
tests/tools/postfix.sh start "$PF" "$port" sender.example.test -- \
	disable_dns_lookups=no smtp_dns_support_level=dnssec \
	smtp_tls_security_level=dane smtp_host_lookup=dns \
	default_transport=smtp relay_transport=relay \
	smtp_tls_loglevel=1 ||
	{ echo "postfix failed"; exit 1; }
LOG="$PF/maillog"
inject() { # RCPT TOKEN
	swaks --server "127.0.0.1:$port" --from alice@example.test --to "$1" \
		--h-Subject "$2" --body "delivered by Postfix with DANE: $2" \
		>"$T/swaks.$2" 2>&1
}

# --- failure first: the MX host's TLSA names another key ---
check inject-bad inject john@bad.other.test tok-bad
wait_for "$LOG" 'to=<john@bad\.other\.test>.*status=(deferred|sent|bounced)' || true
file_has bad-deferred "$LOG" 'to=<john@bad\.other\.test>, relay=mxbad\.other\.test\[127\.0\.0\.2\]:25, .*status=deferred'
file_has bad-not-verified "$LOG" 'Server certificate not verified|certificate verification failed'
file_lacks bad-not-verified "$LOG" 'Verified TLS connection established to mxbad'
file_lacks bad-nothing-arrived "$W/received" 'tok-bad'

# --- DANE-authenticated delivery ---
check inject-good inject john@other.test tok-good
wait_for "$LOG" 'to=<john@other\.test>.*status=(deferred|sent|bounced)' || true
file_has good-verified "$LOG" 'Verified TLS connection established to mx\.other\.test\[127\.0\.0\.2\]:25: TLSv1\.[23]'
file_has good-sent "$LOG" 'to=<john@other\.test>, relay=mx\.other\.test\[127\.0\.0\.2\]:25, .*status=sent \(250 2\.0\.0 Ok: queued as TLSPOOL\)'
file_has good-arrived "$W/received" '^D: delivered by Postfix with DANE: tok-good'
file_has good-ehlo-after-tls "$W/received" '^C: EHLO sender\.example\.test'
file_has good-quit "$W/received" '^C: QUIT'

# --- posttls-finger, the tool a mail administrator debugs DANE with ---
MAIL_CONFIG=$PF/etc timeout 20 posttls-finger -c -l dane -t 5 -T 5 other.test \
	>"$T/ptf.good" 2>&1
file_has finger-verified "$T/ptf.good" 'Verified TLS connection established to mx\.other\.test\[127\.0\.0\.2\]:25'
file_has finger-tlsa "$T/ptf.good" 'mx\.other\.test\[127\.0\.0\.2\]:25: Matched DANE EE certificate at depth 0: 3 1 1 [0-9A-F]{64}'
MAIL_CONFIG=$PF/etc timeout 20 posttls-finger -c -l dane -t 5 -T 5 bad.other.test \
	>"$T/ptf.bad" 2>&1
file_lacks finger-bad "$T/ptf.bad" 'Verified TLS connection established'
file_has finger-bad "$T/ptf.bad" 'server certificate verification failed for mxbad\.other\.test\[127\.0\.0\.2\]:25: num=65:no matching DANE TLSA records'
file_has finger-bad "$T/ptf.bad" 'Untrusted TLS connection established to mxbad\.other\.test'

timed finished
finish
