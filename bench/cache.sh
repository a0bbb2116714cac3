#!/bin/bash
# make bench: the time of one validation from a warm cache (memory and
# LMDB) and from DNS, against zones signed and served for this run,
# measured side by side in one run by build/bench/cache_bench.  Target:
# a warm-cache validation under 50 microseconds.
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
ROUNDS=${ROUNDS:-200}
D=$(mktemp -d /tmp/tlspool-bench-cache.XXXXXX)
cleanup() {
	zones/serve stop "$D/z" >/dev/null 2>&1
	rm -rf "$D"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

certtool --generate-privkey --key-type ecdsa --outfile "$D/www.key" 2>/dev/null
printf 'dns_name = www.example.test\nexpiration_days = 2\nsigning_key\n' >"$D/tmpl"
certtool --generate-self-signed --load-privkey "$D/www.key" --template "$D/tmpl" \
	--outfile "$D/www.pem" 2>/dev/null
openssl x509 -in "$D/www.pem" -outform DER -out "$D/www.der"
echo "_443._tcp.www IN TLSA 3 1 1 $(openssl pkey -in "$D/www.key" -pubout -outform DER | sha256sum | cut -c1-64)" >"$D/add"
zones/serve start "$D/z" --add example.test "$D/add" 2>/dev/null || exit 1
echo "=== validation latency: warm cache vs DNS (served zones, loopback)"
TLSPOOL_CONFIG="$D/z/tlspool.conf" "$BUILD/bench/cache_bench" "$D/www.der" \
	_443._tcp.www.example.test. www.example.test "$D/cache.mdb" "$ROUNDS"
