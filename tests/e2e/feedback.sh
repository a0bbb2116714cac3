#!/bin/bash
# tlspool-connect for people: -v says what it does (listening on,
# connecting to, handshake and DNS timings), every error is followed by
# what to try next, a DNS timeout names the upstream and [dns]
# timeout_ms, the no-records error does not suggest [validation]
# pkix_fallback (tlspool.conf(5): it changes nothing), --help lists every
# option, --version the libraries and the configuration in use.
. "$(dirname "$0")/common"
. scripts/ports.sh

W="$T/w"
mkdir -p "$W"
tests/tools/mkcerts.sh "$W/c" >/dev/null 2>&1 || { echo "mkcerts failed"; exit 1; }
C="$W/c"
declare -A P
for s in good nomatch notlsa timeout refused; do P[$s]=$(free_port); done
{
	"$BUILD/tests/tlsagen" 3 1 1 "$C/www.pem" "_${P[good]}._tcp.www.example.test."
	"$BUILD/tests/tlsagen" 3 1 1 "$C/www.pem" "_${P[timeout]}._tcp.www.example.test."
	"$BUILD/tests/tlsagen" 3 1 1 "$C/other.pem" "_${P[nomatch]}._tcp.www.example.test."
} >"$W/example.add"
zones/serve start "$W/z" --add example.test "$W/example.add" 2>/dev/null || { echo "zones failed"; exit 1; }
pids=()
cleanup_all() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	zones/serve stop "$W/z" >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup_all EXIT
ident() {
	printf '[tls]\nhandshake_timeout_ms = 5000\n'
	printf '[identity www.example.test]\nkey = %s\ncertificate = %s\n' "$C/www.key" "$C/chain.pem"
}
CONF="$W/tlspool.conf"
{ cat "$W/z/tlspool.conf"; ident; } >"$CONF"
BH="$W/blackhole.conf"
{ cat "$TLSPOOL_ZONES_DIR/blackhole.conf"; ident; } >"$BH"
export TLSPOOL_CONFIG="$CONF"

server() { # PORT [OPTIONS...]
	local port=$1
	shift
	rm -f "$T/server.rc"
	("$CLI" --server --bind 127.0.0.1 "$@" "$port" 2>"$T/server.err" >/dev/null
	 echo $? >"$T/server.rc") &
	pids+=($!)
	wait_port "$port"
}
server_done() {
	local i
	for i in $(seq 200); do [ -s "$T/server.rc" ] && break; sleep 0.05; done
}

# --- errors, each with what to try next ---
expect refused 2 -- "$CLI" --client --sni www.example.test 127.0.0.1 "${P[refused]}"
grep_in err refused "^tlspool-connect: connect 127\\.0\\.0\\.1 ${P[refused]}: Connection refused\$"
grep_in err refused "^tlspool-connect: try: check that a server listens at 127\\.0\\.0\\.1 port ${P[refused]}"

server "${P[nomatch]}" --no-peer-cert --exec cat
expect no-match 4 -- bash -c "echo | $CLI --client --sni www.example.test 127.0.0.1 ${P[nomatch]}"
grep_in err no-match '^tlspool-connect: try: the peer.s key has SPKI SHA2-256 [0-9A-F]{64}, which "_[0-9]+\._tcp\.www\.example\.test\. IN TLSA 3 1 1 [0-9A-F]{64}" would match; --diagnose .*--records'
server_done

server "${P[notlsa]}" --no-peer-cert --exec cat
expect no-records 4 -- bash -c "echo | $CLI --client --sni www.example.test 127.0.0.1 ${P[notlsa]}"
grep_in err no-records 'no TLSA records'
no_grep_in err no-records 'pkix_fallback'
grep_in err no-records '^tlspool-connect: try: publish a TLSA record .*--records'
server_done

server "${P[timeout]}" --no-peer-cert --exec cat
expect dns-timeout 6 -- bash -c "echo | $CLI --config $BH --client --sni www.example.test 127.0.0.1 ${P[timeout]}"
grep_in err dns-timeout 'timed out \(no answer within 500 ms from 127\.0\.0\.1@[0-9]+ \(\[dns\] timeout_ms\)\)'
grep_in err dns-timeout '^tlspool-connect: try: check that the \[dns\] upstream answers.*\[dns\] timeout_ms'
server_done

expect lookup-none 4 -- "$CLI" --lookup nothere.example.test
grep_in err lookup-none '^tlspool-connect: try: publish the records .*--records-for'

printf '[dns]\ntimeout_ms = soon\n' >"$W/bad.conf"
expect bad-config 1 -- "$CLI" --config "$W/bad.conf" --lookup www.example.test
grep_in err bad-config '^tlspool-connect: try: correct the file'

# a port in use; an error without a more precise hint still gets one
server "${P[good]}" --no-peer-cert --exec cat
expect in-use 2 -- "$CLI" --server --bind 127.0.0.1 "${P[good]}"
grep_in err in-use '^tlspool-connect: listen 127\.0\.0\.1 [0-9]+: Address already in use$'
grep_in err in-use '^tlspool-connect: try: choose another port'
"$CLI" --client --sni www.example.test 127.0.0.1 "${P[good]}" </dev/null >/dev/null 2>&1
server_done
expect udp-fork 1 -- "$CLI" --server --udp --fork --bind 127.0.0.1 "${P[refused]}"
grep_in err udp-fork '^tlspool-connect: --fork is not available with --udp'
grep_in err udp-fork '^tlspool-connect: try: -v shows what was done .*explains exit 1$'
# a usage error shows the usage, and no more
expect usage-text 1 -- "$CLI" --client onlyhost
grep_in err usage-text '^usage: '
no_grep_in err usage-text 'try:'

# --- -v: what is done, with timings ---
server "${P[good]}" --no-peer-cert -v --exec cat
expect verbose 0 -- bash -c "echo hi | $CLI -v --client --sni www.example.test 127.0.0.1 ${P[good]}"
grep_in err verbose "^tlspool-connect: connecting to 127\\.0\\.0\\.1:${P[good]}\$"
grep_in err verbose "^tlspool-connect: connected to 127\\.0\\.0\\.1:${P[good]}\$"
grep_in err verbose "^tlspool-connect: _${P[good]}\\._tcp\\.www\\.example\\.test\\. TLSA: secure, 1 records\$"
grep_in err verbose '^tlspool-connect: TLS1\.[23] TLS_[A-Z0-9_]+, handshake [0-9]+ ms, validation [0-9]+ ms$'
server_done
grep_in server.err verbose-server "^tlspool-connect: listening on 127\\.0\\.0\\.1:${P[good]}\$"
grep_in server.err verbose-server '^tlspool-connect: connection from 127\.0\.0\.1:[0-9]+$'
# without -v: none of it
server "${P[good]}" --no-peer-cert --exec cat
expect quiet 0 -- bash -c "echo hi | $CLI --client --sni www.example.test 127.0.0.1 ${P[good]}"
no_grep_in err quiet 'connecting to|handshake [0-9]+ ms'
server_done
no_grep_in server.err quiet-server 'listening on'

expect verbose-lookup 0 -- "$CLI" -v --lookup www.example.test "${P[good]}"
grep_in err verbose-lookup "^tlspool-connect: looking up _${P[good]}\\._tcp\\.www\\.example\\.test\\. TLSA\$"
grep_in err verbose-lookup "^tlspool-connect: _${P[good]}\\._tcp\\.www\\.example\\.test\\. TLSA: secure in [0-9]+ ms\$"
grep_in out verbose-lookup '^; chain   example\.test\.	[0-9]+	IN	DNSKEY	'

# --diagnose shows the session
server "${P[good]}" --no-peer-cert --exec cat
expect diagnose 0 -- bash -c "echo hi | $CLI --diagnose --client --sni www.example.test 127.0.0.1 ${P[good]}"
grep_in err diagnose '^; tls     TLS1\.[23] TLS_[A-Z0-9_]+, ALPN none, SNI www\.example\.test$'
grep_in err diagnose '^; time    handshake [0-9]+ ms, validation [0-9]+ ms$'
server_done

# --show-certs: the chain in PEM on stderr, the server's own first
server "${P[good]}" --no-peer-cert --exec cat
expect show-certs 0 -- bash -c "echo hi | $CLI --show-certs --client --sni www.example.test 127.0.0.1 ${P[good]}"
grep_in err show-certs '^; depth 0$'
grep_in err show-certs '^; depth 1$'
sed -n '/^; depth 0$/,/^-----END CERTIFICATE-----$/p' "$T/err" | sed 1d >"$W/depth0.pem"
if cmp -s <(openssl x509 -in "$W/depth0.pem" -outform DER 2>/dev/null) "$C/www.der"; then
	npass=$((npass + 1)); else nfail=$((nfail + 1)); echo "not ok: show-certs: depth 0 is not www.pem"; fi
server_done

# --- --help: every long option of the program ---
expect help 0 -- "$CLI" --help
opts=$(sed -n 's/^ *{"\([a-z-]*\)", \(no\|required\)_argument.*/\1/p' src/cli/main.c)
[ -n "$opts" ] || { nfail=$((nfail + 1)); echo "not ok: help: no options found in main.c"; }
for o in $opts; do
	grep_in out "help --$o" "(^|[ [|])--$o( |\$|\\]|\\|)"
done

# every exit status of tlspool-connect(1), EXIT STATUS, in --help
sed -n '/^\.Sh EXIT STATUS/,/^\.Sh /s/^\.It \([0-9]\)$/\1/p' man/tlspool-connect.1 >"$T/codes"
[ "$(wc -l <"$T/codes")" -ge 8 ] && npass=$((npass + 1)) ||
	{ nfail=$((nfail + 1)); echo "not ok: help: EXIT STATUS not found in the man page"; }
while read -r n; do
	grep_in out "help exit $n" "(: | )$n [a-zA-Z]"
done <"$T/codes"
grep_in out help-no-dane '7 no DANE \(--mx, --srv\)'
grep_in out help-protocols '^starttls protocols: smtp .*xmpp'

# --- --version: the libraries and the configuration ---
expect version 0 -- env TLSPOOL_CONFIG="$CONF" "$CLI" --version
grep_in out version '^tlspool-connect [0-9]+\.[0-9]+\.[0-9]+$'
grep_in out version "^GnuTLS $(gnutls-cli --version 2>/dev/null | sed -n 's/^gnutls-cli \([0-9.]*\).*/\1/p' | sed 's/\./\\./g')\$"
grep_in out version '^getdns [0-9]+\.[0-9]+\.[0-9]+'
grep_in out version '^libtlspool [0-9]+\.[0-9]+\.[0-9]+$'
grep_in out version "^configuration $(printf '%s' "$CONF" | sed 's/[.]/\\./g') \(\\\$TLSPOOL_CONFIG\)\$"
expect version-default 0 -- env -u TLSPOOL_CONFIG "$CLI" --version
grep_in out version-default '^configuration /.*tlspool\.conf$'

finish
