#!/bin/bash
# tlspool-connect's quick flags (--cert, --key, --trust-anchor, --upstream,
# --priority, --alpn, --timeout): each overrides the configuration file
# through starttls_ctx_new_with(3), checked as a line of the file would be.
# A server whose identity cannot be loaded fails at start.  Without any
# configuration file: a server with --cert/--key only, a client with
# --trust-anchor/--upstream only.  Real peers: gnutls-serv, gnutls-cli.
. "$(dirname "$0")/common"
. scripts/ports.sh

W="$T/w"
mkdir -p "$W"
tests/tools/mkcerts.sh "$W/c" >/dev/null 2>&1 || { echo "mkcerts failed"; exit 1; }
C="$W/c"
TLSAGEN="$BUILD/tests/tlsagen"
declare -A P
for s in noid badkey nofile prio prio12 alpn alpnsrv upstream timeout v6 p11; do
	P[$s]=$(free_port)
done
DEAD=$(free_port) # nothing listens there: a DNS upstream that never answers
for s in nofile prio prio12 alpn alpnsrv upstream timeout p11; do
	"$TLSAGEN" 3 1 1 "$C/www.pem" "_${P[$s]}._tcp.www.example.test."
done >"$W/example.add"
zones/serve start "$W/z" --add example.test "$W/example.add" >/dev/null 2>&1 ||
	{ echo "zones failed"; exit 1; }
pids=()
cleanup_all() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	zones/serve stop "$W/z" >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup_all EXIT
ZPORT=$(sed -n 's/^TLSPOOL_ZONES_PORT=//p' "$W/z/env")
ANCHOR="$W/z/root.key"
ZCONF="$W/z/tlspool.conf"
# No configuration file at all: nothing in the environment, and the
# installed default absent (it may be missing: the embedded defaults).
unset TLSPOOL_CONFIG TLSPOOL_SOCKET
NOCONF=1
[ -e /etc/tlspool.conf ] && NOCONF=0

# bg_server PORT ARGS...: a one-connection server (exit code in $T/srv.rc)
bg_server() {
	local port=$1
	shift
	rm -f "$T/srv.rc"
	("$CLI" --server "$@" "$port" >"$T/srv.out" 2>"$T/srv.err"
	 echo $? >"$T/srv.rc") &
	pids+=($!)
	wait_port "$port"
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
listening() { ss -Htln "sport = :$1" | grep -q .; }

# --- failures at start, before any connection ---
# a server whose identity cannot be loaded: exit 1, and it never listened
expect noid 1 -- timeout 10 "$CLI" --server --config "$ZCONF" --myname foo.example.test "${P[noid]}"
grep_in err noid '^tlspool-connect: identity foo\.example\.test: '
listening "${P[noid]}" && { nfail=$((nfail + 1)); echo "not ok: noid listens"; }
# a key file that breaks the file rules (readable by others): the same
# checks as a key named in the file
cp "$C/www.key" "$W/open.key"
chmod 644 "$W/open.key"
expect badkey 1 -- timeout 10 "$CLI" --server --config "$ZCONF" --cert "$C/chain.pem" --key "$W/open.key" "${P[badkey]}"
grep_in err badkey 'identity www\.example\.test: .*open\.key'
listening "${P[badkey]}" && { nfail=$((nfail + 1)); echo "not ok: badkey listens"; }
# a key that is not the certificate's
expect wrongkey 1 -- timeout 10 "$CLI" --server --config "$ZCONF" --cert "$C/chain.pem" --key "$C/other.key" "${P[badkey]}"
grep_in err wrongkey '^tlspool-connect: identity www\.example\.test: '
expect key-missing 1 -- "$CLI" --server --config "$ZCONF" --cert "$C/chain.pem" --key "$W/nonexistent.key" "${P[badkey]}"
grep_in err key-missing 'nonexistent\.key'
# usage errors
expect cert-alone 1 -- "$CLI" --server --config "$ZCONF" --cert "$C/chain.pem" "${P[badkey]}"
grep_in err cert-alone '^tlspool-connect: --cert needs --key$'
expect key-alone 1 -- "$CLI" --server --config "$ZCONF" --key "$C/www.key" "${P[badkey]}"
grep_in err key-alone '--key without --cert needs --myname'
expect cert-noname 1 -- "$CLI" --server --config "$ZCONF" --cert "$C/noname.pem" --key "$C/noname.key" "${P[badkey]}"
grep_in err cert-noname 'names no domain or user@domain identity'
expect timeout-0 1 -- "$CLI" --client --timeout 0 www.example.test 443
grep_in err timeout-0 '--timeout: "0" is not a number from 1 to 600000'
expect timeout-x 1 -- "$CLI" --client --timeout 5s www.example.test 443
expect priority-bad 1 -- "$CLI" --client --config "$ZCONF" --priority 'NORMAL:+NOPE' www.example.test 443
grep_in err priority-bad 'priority "NORMAL:\+NOPE": .* at "\+NOPE"'
expect upstream-bad 1 -- "$CLI" --client --config "$ZCONF" --upstream 'not an address' www.example.test 443
grep_in err upstream-bad 'override "dns\.upstream=not an address": upstream: '
expect alpn-bad 1 -- "$CLI" --client --config "$ZCONF" --alpn ',,' www.example.test 443
grep_in err alpn-bad 'override "tls\.alpn=,,": alpn: bad value'
expect anchor-missing 1 -- "$CLI" --lookup --config "$ZCONF" --trust-anchor "$W/none.key" www.example.test
expect cert-lookup 1 -- "$CLI" --lookup --cert "$C/chain.pem" --key "$C/www.key" www.example.test
grep_in err cert-lookup '^tlspool-connect: --cert is not an option of --lookup$'
expect alpn-cache 1 -- "$CLI" --cache-list --alpn h2
# through the pool the daemon holds keys and configuration: refused
expect pool 1 -- env TLSPOOL_SOCKET="$T/pool.sock" "$CLI" --server --cert "$C/chain.pem" --key "$C/www.key" "${P[badkey]}"
grep_in err pool '--cert: TLSPOOL_SOCKET is set'

# --- --upstream replaces the file's upstreams; --timeout bounds the wait ---
# The file's upstream answers; an override to a dead port must be the only
# one asked: the lookup fails with a timeout, within --timeout.
expect upstream-replaces 6 -- timeout 20 "$CLI" --lookup --config "$ZCONF" --upstream "127.0.0.1@$DEAD" --timeout 300 www.example.test 443
start=$(date +%s%N)
expect timeout-bounds 6 -- timeout 20 "$CLI" --client --config "$ZCONF" --upstream "127.0.0.1@$DEAD" --timeout 300 www.example.test "${P[timeout]}"
ms=$((($(date +%s%N) - start) / 1000000))
if [ "$ms" -lt 1900 ]; then npass=$((npass + 1)); else
	nfail=$((nfail + 1)); echo "not ok: --timeout 300 took $ms ms (the file says 2000)"; fi
expect upstream-good 0 -- "$CLI" --lookup --config "$ZCONF" --upstream "127.0.0.1@$ZPORT" www.example.test "${P[upstream]}"

# --- no configuration file: a server with --cert/--key only, a client
# with --trust-anchor/--upstream only ---
if [ "$NOCONF" = 1 ]; then
	bg_server "${P[nofile]}" --cert "$C/chain.pem" --key "$C/www.key" --no-peer-cert --exec 'echo "hello $TLSPOOL_LOCAL"'
	expect nofile 0 -- timeout 20 "$CLI" --client --trust-anchor "$ANCHOR" --upstream "127.0.0.1@$ZPORT" www.example.test "${P[nofile]}"
	grep_in out nofile '^hello www\.example\.test$'
	grep_in err nofile '^peer: www\.example\.test$'
	check nofile-server "$(srv_rc)" 0
	# the client without the flags uses the default anchor and resolv.conf:
	# nothing proves the zones
	bg_server "${P[nofile]}" --cert "$C/chain.pem" --key "$C/www.key" --no-peer-cert --exec 'echo hello'
	# (6: no DNS answer in time; 1 where the default anchor is missing)
	timeout 30 "$CLI" --client --timeout 2000 --sni www.example.test 127.0.0.1 \
		"${P[nofile]}" >"$T/out" 2>"$T/err"
	check nofile-noflags-rc "$(($? == 6 || $? == 1))" 1
	no_grep_in out nofile-noflags hello
	srv_rc >/dev/null
else
	echo "quickflags.sh: /etc/tlspool.conf exists: no-file cases skipped"
fi

# --- --priority: TLS 1.2 only, visible in the peer's handshake ---
bg_server "${P[prio12]}" --config "$ZCONF" --cert "$C/chain.pem" --key "$C/www.key" --no-peer-cert --priority 'NORMAL:-VERS-TLS1.3' --exec 'echo hi'
expect prio12 0 -- bash -c "sleep 1 | timeout 20 gnutls-cli --insecure --port ${P[prio12]} 127.0.0.1"
grep_in out prio12 'Description: \(TLS1\.2-'
check prio12-server "$(srv_rc)" 0
bg_server "${P[prio12]}" --config "$ZCONF" --cert "$C/chain.pem" --key "$C/www.key" --no-peer-cert --exec 'echo hi'
expect prio13 0 -- bash -c "sleep 1 | timeout 20 gnutls-cli --insecure --port ${P[prio12]} 127.0.0.1"
grep_in out prio13 'Description: \(TLS1\.3-'
check prio13-server "$(srv_rc)" 0
# a client that excludes TLS 1.3 against a TLS 1.3-only server: no
# common version
gnutls-serv --echo -p "${P[prio]}" --x509keyfile "$C/www.key" --x509certfile "$C/chain.pem" \
	--priority 'NORMAL:-VERS-ALL:+VERS-TLS1.3' >/dev/null 2>&1 &
pids+=($!)
wait_port "${P[prio]}"
expect prio-none 3 -- bash -c "echo hi | timeout 20 '$CLI' --client --config '$ZCONF' --priority 'NORMAL:-VERS-TLS1.3' www.example.test ${P[prio]}"
expect prio-13 0 -- bash -c "echo via-13 | timeout 20 '$CLI' --client --config '$ZCONF' --priority 'NORMAL:-VERS-ALL:+VERS-TLS1.3' www.example.test ${P[prio]}"
grep_in out prio-13 '^via-13$'

# --- --alpn against gnutls-serv --alpn-fatal (no common protocol: fatal) ---
gnutls-serv --echo -p "${P[alpn]}" --x509keyfile "$C/www.key" --x509certfile "$C/chain.pem" \
	--alpn h2 --alpn-fatal >/dev/null 2>&1 &
pids+=($!)
wait_port "${P[alpn]}"
expect alpn-other 3 -- bash -c "echo hi | timeout 20 '$CLI' --client --config '$ZCONF' --alpn http/1.1 www.example.test ${P[alpn]}"
expect alpn-h2 0 -- bash -c "echo via-h2 | timeout 20 '$CLI' --client --config '$ZCONF' --alpn 'http/1.1,h2' www.example.test ${P[alpn]}"
grep_in out alpn-h2 '^via-h2$'
# a tlspool server chooses from its list what gnutls-cli offers
bg_server "${P[alpnsrv]}" --config "$ZCONF" --cert "$C/chain.pem" --key "$C/www.key" --no-peer-cert --alpn 'h2 http/1.1' --exec 'echo hi'
expect alpn-server 0 -- bash -c "sleep 1 | timeout 20 gnutls-cli --insecure --alpn http/1.1 --alpn spdy/3 --port ${P[alpnsrv]} 127.0.0.1"
grep_in out alpn-server 'Application protocol: http/1\.1'
check alpn-server-rc "$(srv_rc)" 0

# --- --key pkcs11:URI: the server's key in a SoftHSM token ---
mkdir -p "$W/tokens"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$W" >"$W/softhsm2.conf"
export SOFTHSM2_CONF="$W/softhsm2.conf"
if softhsm2-util --init-token --free --label qf-test --pin 1234 --so-pin 5678 >/dev/null 2>&1 &&
	GNUTLS_PIN=1234 p11tool --login --write --load-privkey "$C/www.key" --label www \
		'pkcs11:token=qf-test' >/dev/null 2>&1; then
	URI='pkcs11:token=qf-test;object=www;type=private?pin-value=1234'
	# an object the token does not hold: exit 1 at start, never listening
	expect p11-missing 1 -- timeout 10 "$CLI" --server --config "$ZCONF" --cert "$C/chain.pem" --key 'pkcs11:token=qf-test;object=nothere;type=private?pin-value=1234' "${P[p11]}"
	grep_in err p11-missing 'pkcs11:token=qf-test;object=nothere'
	listening "${P[p11]}" && { nfail=$((nfail + 1)); echo "not ok: p11-missing listens"; }
	bg_server "${P[p11]}" --config "$ZCONF" --cert "$C/chain.pem" --key "$URI" --no-peer-cert --exec 'echo "hello $TLSPOOL_LOCAL"'
	expect p11 0 -- timeout 20 "$CLI" --client --config "$ZCONF" www.example.test "${P[p11]}"
	grep_in out p11 '^hello www\.example\.test$'
	grep_in err p11 '^peer: www\.example\.test$'
	check p11-server "$(srv_rc)" 0
else
	nfail=$((nfail + 1)); echo "not ok: softhsm token not made"
fi
unset SOFTHSM2_CONF

# --- the file's own identity and an override of it: the override wins ---
printf '[identity www.example.test]\ncertificate = %s\nkey = %s\n' "$C/other.pem" "$C/other.key" >"$W/other.conf"
cat "$ZCONF" >>"$W/other.conf"
chmod 600 "$W/other.conf"
bg_server "${P[v6]}" --config "$W/other.conf" --myname www.example.test --cert "$C/chain.pem" --key "$C/www.key" --no-peer-cert --exec 'echo hi'
expect override-wins 0 -- bash -c "sleep 1 | timeout 20 gnutls-cli --insecure --port ${P[v6]} --save-cert '$T/got.pem' 127.0.0.1"
fp() { openssl x509 -in "$1" -noout -fingerprint -sha256 2>/dev/null; }
check override-wins-cert "$(fp "$T/got.pem")" "$(fp "$C/www.pem")"
check override-wins-rc "$(srv_rc)" 0
finish
