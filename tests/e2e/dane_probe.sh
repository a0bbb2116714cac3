#!/bin/bash
# tests/e2e/dane_probe.sh -- lookup plus matcher end to end (issue 3).
#
# Makes certificates (tests/tools/mkcerts.sh), publishes TLSA records made
# by the project's generator (build/tests/tlsagen) in zones of its own
# (zones/serve start DIR --add ...), runs gnutls-serv with the chain
# www -> inter -> root on a loopback port, and runs build/tests/dane-probe,
# which takes the chain from a real handshake, looks the TLSA RRset up
# with tlspool_dns_lookup() and decides with tlspool_dane_match().
# The reference name is www.example.test (www.<zone>.test elsewhere);
# cases that share it are told apart by the port in the owner name
# (dane-probe --tlsa-port).  Run by tests/run; BUILD names the build dir.
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
for t in gnutls-serv certtool; do
	command -v $t >/dev/null 2>&1 || { echo "dane_probe: $t not found" >&2; exit 1; }
done

W=$(mktemp -d /tmp/tlspool-e2e-dane.XXXXXX)
spid=
cleanup() {
	[ -n "$spid" ] && kill "$spid" 2>/dev/null && wait "$spid" 2>/dev/null
	zones/serve stop "$W/z" >/dev/null 2>&1
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

tests/tools/mkcerts.sh "$W/c" || exit 1
C=$W/c
gen() { "$BUILD/tests/tlsagen" "$@" || exit 1; }

# gnutls-serv on a free port: it exits at once when the port is taken.
# Ready when it accepts a connection (its log is block-buffered).
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for try in 1 2 3 4 5 6 7 8 9 10; do
	P=$((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40000))
	listening "$P" && continue
	gnutls-serv --echo -p "$P" --x509certfile "$C/chain.pem" \
		--x509keyfile "$C/www.key" >"$W/serv.log" 2>&1 </dev/null &
	spid=$!
	for i in $(seq 50); do
		listening "$P" && break
		kill -0 "$spid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$spid" 2>/dev/null && listening "$P" && break
	kill "$spid" 2>/dev/null
	wait "$spid" 2>/dev/null
	spid=
done
[ -n "$spid" ] || { cat "$W/serv.log" >&2; echo "dane_probe: gnutls-serv did not start" >&2; exit 1; }

# A digest with its last hex digit changed.
wrong() { sed 's/\(.\)$/\1#/; s/0#$/1/; s/[^#]#$/0/'; }

{
	gen 3 1 1 "$C/www.pem" "_$P._tcp.www"
	gen 2 0 1 "$C/root.pem" _1201._tcp.www
	gen 2 1 1 "$C/inter.pem" _1211._tcp.www
	gen 3 1 1 "$C/www.pem" _1999._tcp.www | wrong
} >"$W/example.add"
# The bogus zone's script breaks the first TLSA at _443._tcp.www.bogus.test,
# so the whole RRset there, ours included, is bogus.
gen 3 1 1 "$C/www.pem" _443._tcp.www >"$W/bogus.add"
gen 3 1 1 "$C/www.pem" "_$P._tcp.www" >"$W/insecure.add"
gen 3 1 1 "$C/www.pem" "_$P._tcp.www" >"$W/expired.add"

zones/serve start "$W/z" --add example.test "$W/example.add" \
	--add bogus.test "$W/bogus.add" --add insecure.test "$W/insecure.add" \
	--add expired.test "$W/expired.add" 2>"$W/zones.log" ||
	{ cat "$W/zones.log" >&2; exit 1; }

fail=0
# probe WANT-EXIT NAME [--tlsa-port N] -- EXPECTED-LINES...
probe() {
	local want=$1 name=$2 out rc
	shift 2
	local args=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do args+=("$1"); shift; done
	shift
	out=$("$BUILD/tests/dane-probe" --config "$W/z/tlspool.conf" --port "$P" \
		--name "$name" "${args[@]}" 2>&1)
	rc=$?
	local ok=1
	[ "$rc" = "$want" ] || ok=0
	for e in "$@"; do
		grep -qF -- "$e" <<<"$out" || { ok=0; echo "  missing: $e"; }
	done
	if [ $ok = 1 ]; then
		echo "ok: $name ${args[*]} -> $(grep '^verdict' <<<"$out")"
	else
		echo "FAIL: $name ${args[*]} (exit $rc, want $want)"
		sed 's/^/  | /' <<<"$out"
		fail=1
	fi
}

probe 0 www.example.test -- "lookup: _$P._tcp.www.example.test. TLSA: secure" \
	"3 1 1 matched depth 0" "verdict: authenticated" "identity: www.example.test"
probe 0 www.example.test --tlsa-port 1201 -- "2 0 1 matched depth 2" \
	"verdict: authenticated" "peer: www.example.test"
probe 0 www.example.test --tlsa-port 1211 -- "2 1 1 matched depth 1" \
	"verdict: authenticated"
probe 4 www.example.test --tlsa-port 1999 -- "3 1 1 no-match" \
	"digest differs" "verdict: no-match"
probe 4 www.bogus.test --tlsa-port 443 -- "TLSA: bogus" \
	"verdict: dns-error" "DNSSEC validation failed: failing closed"
probe 4 www.insecure.test -- "TLSA: insecure" "3 1 1 not-used" \
	"verdict: insecure" "unsigned zone"
probe 4 www.expired.test -- "TLSA: bogus" "RRSIG expired" \
	"verdict: dns-error" "RRSIG expired: failing closed"
exit $fail
