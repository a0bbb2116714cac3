#!/bin/bash
# make bench: handshakes through tlspool against bare GnuTLS (bench/handshake.c),
# as a client (DANE from a warm cache; the floor verifies nothing) and as a
# server requiring a client certificate (DANE, warm cache; the floor requires
# one and verifies nothing).  ECDSA P-256 keys, the default priority (TLS 1.3).
# Appends "RESULT ..." lines to $RESULTS when set, the latencies to $OUT.
# These machines are shared: only ratios of runs made side by side mean
# anything.
set -u
cd "$(dirname "$0")/.." || exit 1
. scripts/ports.sh
BUILD=${BUILD:-build}
HS="$BUILD/bench/handshake"
ROUNDS=${ROUNDS:-7}
PER=${PER:-300}
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
{
	echo "_$PC._tcp.www IN TLSA 3 1 1 $(spki "$D/www.key")"
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
grep '^RESULT' "$D/out" >>"$RESULTS"
exit 0
