#!/bin/bash
# tlspool-connect addresses: IPv6 on loopback for client and server, with
# and without brackets; a server without --bind, or with --bind ::, on
# both IPv6 and IPv4; service names; host names resolved through the
# DNSSEC resolver of [dns] (the test zones, not /etc/hosts or
# resolv.conf), with their DNSSEC status in --diagnose: a name with only
# AAAA, a name whose A is bogus (fails closed, no connection), an unsigned
# name, a missing name; every address tried in order.
. "$(dirname "$0")/common"
. scripts/ports.sh

W="$T/w"
mkdir -p "$W"
tests/tools/mkcerts.sh "$W/c" >/dev/null 2>&1 || { echo "mkcerts failed"; exit 1; }
C="$W/c"
TLSAGEN="$BUILD/tests/tlsagen"
declare -A P
for s in dflt bindany bind6 bracket names v6only bogus order udp; do
	P[$s]=$(free_port)
done
{
	for s in dflt bindany bind6 bracket names v6only bogus order udp; do
		"$TLSAGEN" 3 1 1 "$C/www.pem" "_${P[$s]}._tcp.www.example.test."
	done
	"$TLSAGEN" 3 1 1 "$C/www.pem" "_${P[udp]}._udp.www.example.test."
	echo "v6only IN AAAA ::1"
	# the first address answers nothing (TEST-NET-1 is not routed here)
	# or refuses; the second is the server
	echo "order IN AAAA ::1"
	echo "order IN A 127.0.0.1"
} >"$W/example.add"
{
	"$TLSAGEN" 3 1 1 "$C/www.pem" "_${P[bogus]}._tcp.www.expired.test."
} >"$W/expired.add"
zones/serve start "$W/z" --add example.test "$W/example.add" \
	--add expired.test "$W/expired.add" >/dev/null 2>&1 || { echo "zones failed"; exit 1; }
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
	printf '[tls]\nhandshake_timeout_ms = 5000\n'
	printf '[identity www.example.test]\nkey = %s\ncertificate = %s\n' "$C/www.key" "$C/chain.pem"
} >"$CONF"
chmod 600 "$CONF"
export TLSPOOL_CONFIG="$CONF"
unset TLSPOOL_SOCKET

# bg_server PORT ARGS...: a server (exit code in $T/srv.rc), waited for
bg_server() {
	local port=$1
	shift
	rm -f "$T/srv.rc" "$T/srv.pid"
	("$CLI" --server -v --myname www.example.test --no-peer-cert "$@" "$port" \
		>"$T/srv.out" 2>"$T/srv.err" &
	 echo $! >"$T/srv.pid"
	 wait $!
	 echo $? >"$T/srv.rc") &
	pids+=($!)
	wait_port "$port"
	pids+=("$(cat "$T/srv.pid")")
}
srv_rc() {
	local i
	for i in $(seq 200); do [ -s "$T/srv.rc" ] && break; sleep 0.05; done
	cat "$T/srv.rc" 2>/dev/null
}
check() { # NAME GOT WANT
	if [ "$2" = "$3" ]; then npass=$((npass + 1)); else
		nfail=$((nfail + 1)); echo "not ok: $1: got '$2', want '$3'"
		sed 's/^/  server stderr: /' "$T/srv.err" 2>/dev/null | head
	fi
}
cli() { # HOST PORT [OPTIONS...]: a client saying hi
	local host=$1 port=$2
	shift 2
	echo hi | timeout 20 "$CLI" --client --sni www.example.test "$@" "$host" "$port"
}
export CLI
export -f cli

# --- failures first ---
# a bogus A (expired signatures): fails closed, nothing is connected to
bg_server "${P[bogus]}" --exec 'echo reached'
expect bogus-a 6 -- cli www.expired.test "${P[bogus]}" --diagnose
grep_in err bogus-a 'www\.expired\.test: no address to trust: .*bogus'
grep_in err bogus-a '^; address .*bogus'
no_grep_in out bogus-a reached
no_grep_in err bogus-a '^; connected'
# a missing name: secure NXDOMAIN, not /etc/hosts or the system resolver
expect missing 2 -- cli nothere.example.test "${P[bogus]}"
grep_in err missing 'nothere\.example\.test: the name has no A or AAAA records'
# a name that /etc/hosts knows but the zones do not: never from libc
cli "$(hostname)." "${P[bogus]}" -v --timeout 2000 >"$T/out" 2>"$T/err"
check not-libc-rc "$(( $? == 2 || $? == 6 ))" 1
no_grep_in err not-libc 'connecting to'
no_grep_in out not-libc reached
# malformed
expect bad-bracket 1 -- cli '[::1' "${P[bogus]}"
expect bad-name 1 -- cli 'a..b' "${P[bogus]}"
expect bad-service 1 -- "$CLI" --client --sni www.example.test ::1 no-such-service
grep_in err bad-service 'is not a number from 1 to 65535 or a service name'
kill "$(cat "$T/srv.pid")"
srv_rc >/dev/null

# --bind ::1: IPv6 only, so 127.0.0.1 is refused
bg_server "${P[bind6]}" --bind ::1 --exec 'echo hello'
expect bind6-v4 2 -- cli 127.0.0.1 "${P[bind6]}"
grep_in err bind6-v4 'connect 127\.0\.0\.1 .*Connection refused'
expect bind6 0 -- cli ::1 "${P[bind6]}"
grep_in out bind6 '^hello$'
check bind6-server "$(srv_rc)" 0
grep_in srv.err bind6-listen 'listening on \[::1\]:'

# --- no --bind: dual-stack [::], IPv6 and IPv4 ---
bg_server "${P[dflt]}" --fork --exec 'echo "hello $TLSPOOL_LOCAL"'
grep_in srv.err dflt-listen "listening on \\[::\\]:${P[dflt]} \\(IPv6 and IPv4\\)"
expect dflt-v6 0 -- cli ::1 "${P[dflt]}"
grep_in out dflt-v6 '^hello www\.example\.test$'
expect dflt-v6-brackets 0 -- cli '[::1]' "${P[dflt]}"
grep_in out dflt-v6-brackets '^hello'
expect dflt-v4 0 -- cli 127.0.0.1 "${P[dflt]}"
grep_in out dflt-v4 '^hello'
# a name: AAAA first, secure, shown by --diagnose
expect dflt-name 0 -- cli www.example.test "${P[dflt]}" --diagnose
grep_in out dflt-name '^hello'
grep_in err dflt-name '^; address www\.example\.test\. AAAA ::1 \(secure\)$'
grep_in err dflt-name '^; address www\.example\.test\. A 127\.0\.0\.1 \(secure\)$'
grep_in err dflt-name '^; connected to \[::1\]:'
# a name with only AAAA
expect v6only 0 -- cli v6only.example.test "${P[dflt]}" --diagnose -v
grep_in out v6only '^hello'
grep_in err v6only '^; address v6only\.example\.test\. AAAA ::1 \(secure\)$'
grep_in err v6only '^; address v6only\.example\.test\.: no A records'
grep_in err v6only "connecting to \\[::1\\]:${P[dflt]}"
# through the pool (no daemon here): the name is still resolved through
# the [dns] of TLSPOOL_CONFIG, and the address connected to, before the
# call fails for want of tlspoold
TLSPOOL_SOCKET="$T/no-daemon.sock" cli www.example.test "${P[dflt]}" -v >"$T/out" 2>"$T/err"
check pool-rc "$?" 2
grep_in err pool-resolved "connecting to \\[::1\\]:${P[dflt]}"
# the server's name as the client's host: its SNI and its TLSA owner
expect host-name 0 -- bash -c "echo hi | timeout 20 '$CLI' --client www.example.test ${P[dflt]}"
grep_in err host-name '^peer: www\.example\.test$'
kill "$(cat "$T/srv.pid")"
srv_rc >/dev/null

# --bind :: (explicit) takes IPv4 clients too; [::] with brackets
bg_server "${P[bindany]}" --bind '[::]' --fork --exec 'echo hello'
expect bindany-v4 0 -- cli 127.0.0.1 "${P[bindany]}"
grep_in out bindany-v4 '^hello$'
expect bindany-v6 0 -- cli ::1 "${P[bindany]}"
grep_in out bindany-v6 '^hello$'
kill "$(cat "$T/srv.pid")"
srv_rc >/dev/null

# --bind 127.0.0.1 with the name: ::1 refused, then 127.0.0.1
bg_server "${P[order]}" --bind 127.0.0.1 --exec 'echo hello'
expect order 0 -- cli order.example.test "${P[order]}" --diagnose
grep_in out order '^hello$'
grep_in err order "^; connect \\[::1\\]:${P[order]}: Connection refused$"
grep_in err order "^; connected to 127\\.0\\.0\\.1:${P[order]}$"
check order-server "$(srv_rc)" 0

# --- DTLS: the default [::] socket takes an IPv4 client, ::1 works ---
wait_udp() {
	local i
	for i in $(seq 100); do
		ss -Huln "sport = :$1" | grep -q . && return 0
		sleep 0.05
	done
	echo "not ok: nothing bound on UDP $1"
	return 1
}
for h in 127.0.0.1 '[::1]'; do
	rm -f "$T/srv.rc"
	(timeout 20 "$CLI" --server --udp --no-peer-cert --myname www.example.test \
		--exec cat "${P[udp]}" >/dev/null 2>"$T/srv.err"; echo $? >"$T/srv.rc") &
	pids+=($!)
	wait_udp "${P[udp]}"
	expect "dtls $h" 0 -- timeout 20 bash -c "(printf 'one\n'; sleep 0.2; printf 'two\n') | '$CLI' --client --udp --linger 1000 --sni www.example.test '$h' ${P[udp]}"
	grep_in out "dtls $h" '^two$'
	srv_rc >/dev/null
	wait "${pids[-1]}" 2>/dev/null
done

# --- service names ---
expect service-lookup 0 -- "$CLI" --lookup www.example.test https
grep_in out service-lookup '^_443\._tcp\.www\.example\.test\. '
expect service-client 2 -- "$CLI" --client -v --sni www.example.test '[::1]' https
grep_in err service-client 'connecting to \[::1\]:443$'
finish
