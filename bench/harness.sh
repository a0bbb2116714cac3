#!/bin/bash
# make bench: the C harnesses against bare GnuTLS, on one set of keys and
# zones.  bench/handshake.c: handshakes through tlspool as a client (DANE
# from a warm cache; the floor verifies nothing) and as a server requiring a
# client certificate (DANE, warm cache; the floor requires one and verifies
# nothing).  bench/idle.c: RSS, PSS and threads against the number of idle
# connections, relayed by tlspool or held as bare GnuTLS sessions.  ECDSA
# P-256 keys, the default priority (TLS 1.3).  Appends "RESULT ..." lines
# to $RESULTS when set; the data for the plots go to $OUT.  IDLE_MAX=0:
# as many connections as the descriptor limit allows.
# These machines are shared: only ratios of runs made side by side mean
# anything.
set -u
cd "$(dirname "$0")/.." || exit 1
. scripts/ports.sh
BUILD=${BUILD:-build}
HS="$BUILD/bench/handshake"
# Many short alternating rounds: the load of these shared machines changes
# within seconds, and a median of 41 paired ratios moves less from run to
# run than one of 15.
ROUNDS=${ROUNDS:-41}
PER=${PER:-100}
IDLE_MAX=${IDLE_MAX:-0}
IDLE_STEPS=${IDLE_STEPS:-10}
OUT=${OUT:-$BUILD/bench}
RESULTS=${RESULTS:-/dev/null}
mkdir -p "$OUT"
D=$(mktemp -d /tmp/tlspool-bench-hs.XXXXXX)
cleanup() {
	zones/serve stop "$D/z" >/dev/null 2>&1
	rm -rf "$D"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

cert() { # NAME TEMPLATE
	certtool --generate-privkey --key-type ecdsa --outfile "$D/$1.key" 2>/dev/null
	printf '%b' "$2" >"$D/$1.tmpl"
	certtool --generate-self-signed --load-privkey "$D/$1.key" --template "$D/$1.tmpl" \
		--outfile "$D/$1.pem" 2>/dev/null
}
spki() { openssl pkey -in "$1" -pubout -outform DER | sha256sum | cut -c1-64; }
cert www 'dns_name = www.example.test\nexpiration_days = 2\nsigning_key\n'
cert client 'dc = test\ndc = example\ndc = client\ndns_name = client.example.test\nexpiration_days = 2\nsigning_key\ntls_www_client\n'
PC=$(free_port)
PS=$(free_port)
PI=$(free_port)
{
	echo "_$PC._tcp.www IN TLSA 3 1 1 $(spki "$D/www.key")"
	echo "_$PI._tcp.www IN TLSA 3 1 1 $(spki "$D/www.key")"
	echo "client IN TLSA 3 1 1 $(spki "$D/client.key")"
} >"$D/add"
zones/serve start "$D/z" --add example.test "$D/add" 2>/dev/null || exit 1
{
	cat "$D/z/tlspool.conf"
	printf '[identity www.example.test]\nkey = %s\ncertificate = %s\n' "$D/www.key" "$D/www.pem"
} >"$D/tlspool.conf"
export TLSPOOL_CONFIG="$D/tlspool.conf"

"$HS" -m client -p "$PC" -k "$D/www.key" -c "$D/www.pem" -r "$ROUNDS" -n "$PER" \
	-o "$OUT" | tee -a "$D/out" || exit 1
"$HS" -m server -p "$PS" -k "$D/www.key" -c "$D/www.pem" -K "$D/client.key" \
	-C "$D/client.pem" -r "$ROUNDS" -n "$PER" -o "$OUT" | tee -a "$D/out" || exit 1
for m in tlspool bare; do
	"$BUILD/bench/idle" -m "$m" -p "$PI" -k "$D/www.key" -c "$D/www.pem" \
		-N "$IDLE_MAX" -S "$IDLE_STEPS" -o "$OUT/idle-$m.dat" | tee -a "$D/out" || exit 1
	# the bare run stops where tlspool's did: one scale for the plot
	IDLE_MAX=$(awk '/^RESULT idle_tlspool_kib/ {print $5}' "$D/out")
done
grep '^RESULT' "$D/out" >>"$RESULTS"
exit 0
