#!/bin/bash
# tlspool-connect --udp (DTLS) end to end against real peers, with TLSA
# records at _PORT._udp.www.example.test in zones signed for this run:
# tlspool-connect --udp --client against gnutls-serv --udp --echo,
# gnutls-cli --udp against tlspool-connect --udp --server, the two
# against each other, and a wrong record failing closed (exit 4).
. "$(dirname "$0")/common"
. scripts/ports.sh

W="$T/w"
mkdir -p "$W"
certtool --generate-privkey --key-type ecdsa --outfile "$W/www.key" 2>/dev/null
printf 'dns_name = www.example.test\nexpiration_days = 30\nsigning_key\n' >"$W/tmpl"
certtool --generate-self-signed --load-privkey "$W/www.key" --template "$W/tmpl" \
	--outfile "$W/www.pem" 2>/dev/null || { echo "certtool failed"; exit 1; }

declare -A P
for s in gserv gcli self wrong; do P[$s]=$(free_port); done
{
	for s in gserv gcli self; do
		"$BUILD/tests/tlsagen" 3 1 1 "$W/www.pem" "_${P[$s]}._udp.www.example.test."
	done
	# the right record under _tcp only: the UDP lookup must not use it
	"$BUILD/tests/tlsagen" 3 1 1 "$W/www.pem" "_${P[wrong]}._tcp.www.example.test."
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
{
	cat "$W/z/tlspool.conf"
	printf '[tls]\nhandshake_timeout_ms = 5000\n'
	printf '[identity www.example.test]\nkey = %s\ncertificate = %s\n' "$W/www.key" "$W/www.pem"
} >"$W/tlspool.conf"
export TLSPOOL_CONFIG="$W/tlspool.conf"

wait_udp() {
	local i
	for i in $(seq 100); do
		ss -Huln "sport = :$1" | grep -q . && return 0
		sleep 0.05
	done
	echo "not ok: nothing bound on UDP $1"
	return 1
}

# tlspool-connect --udp --client against gnutls-serv --udp --echo
gnutls-serv --udp --echo -p "${P[gserv]}" --x509keyfile "$W/www.key" \
	--x509certfile "$W/www.pem" >/dev/null 2>&1 &
pids+=($!)
wait_udp "${P[gserv]}"
expect gnutls-serv 0 -- timeout 20 bash -c "printf 'via-gnutls\n' | '$CLI' --client --udp --linger 1000 --sni www.example.test 127.0.0.1 ${P[gserv]}"
grep_in out gnutls-serv '^via-gnutls$'
grep_in err gnutls-serv '^peer: www\.example\.test$'

# the same server port with the TLSA at _tcp only: fails closed, exit 4
gnutls-serv --udp --echo -p "${P[wrong]}" --x509keyfile "$W/www.key" \
	--x509certfile "$W/www.pem" >/dev/null 2>&1 &
pids+=($!)
wait_udp "${P[wrong]}"
expect wrong-record 4 -- timeout 20 bash -c "echo x | '$CLI' --client --udp --sni www.example.test 127.0.0.1 ${P[wrong]}"
grep_in err wrong-record "_${P[wrong]}\._udp\.www\.example\.test"

# gnutls-cli --udp against tlspool-connect --udp --server: one message
# each way; the server exits when gnutls-cli closes
(timeout 20 bash -c "printf 'from-tlspool\n' | '$CLI' --server --udp --linger 5000 --no-peer-cert --bind 127.0.0.1 --myname www.example.test ${P[gcli]}" \
	>"$T/server.out" 2>"$T/server.err"; echo $? >"$T/server.rc") &
pids+=($!)
wait_udp "${P[gcli]}"
expect gnutls-cli 0 -- timeout 20 bash -c "(echo via-gnutls-cli; sleep 1) | gnutls-cli --udp --insecure --port ${P[gcli]} --sni-hostname www.example.test 127.0.0.1 2>/dev/null"
grep_in out gnutls-cli '^from-tlspool$'
wait "${pids[-1]}"
if [ "$(cat "$T/server.rc")" = 0 ] && grep -q '^via-gnutls-cli$' "$T/server.out"; then
	npass=$((npass + 1))
else
	nfail=$((nfail + 1))
	echo "not ok: gnutls-cli: server exit $(cat "$T/server.rc"), out: $(cat "$T/server.out")"
	sed 's/^/  server stderr: /' "$T/server.err"
fi

# tlspool-connect to tlspool-connect: message boundaries through both
(timeout 20 "$CLI" --server --udp --no-peer-cert --bind 127.0.0.1 \
	--myname www.example.test --exec cat "${P[self]}" \
	>/dev/null 2>"$T/server.err"; echo $? >"$T/server.rc") &
pids+=($!)
wait_udp "${P[self]}"
expect self 0 -- timeout 20 bash -c "(printf 'one\n'; sleep 0.2; printf 'two\n') | '$CLI' --client --udp --linger 1000 --sni www.example.test 127.0.0.1 ${P[self]}"
grep_in out self '^one$'
grep_in out self '^two$'
finish
