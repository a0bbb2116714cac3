#!/bin/bash
# make bench: cold validation of a new name in a zone whose keys were
# validated before, against the floor (a bare GnuTLS client handshake),
# measured side by side in one run by build/bench/coldval_bench: tlspool
# client handshakes with DANE from DNS each time (STARTTLS_NO_CACHE_READ),
# a new peer name each time, with the zone keys kept ([dns] keep_keys_ttl)
# and without.  Target (issue 17): kept >= 0.6x the floor, one query per
# lookup (tests/unit/check_dnschain.c counts them).
set -u
cd "$(dirname "$0")/.." || exit 1
. scripts/ports.sh
BUILD=${BUILD:-build}
ROUNDS=${ROUNDS:-5}
BLOCK=${BLOCK:-100}
D=$(mktemp -d /tmp/tlspool-bench-coldval.XXXXXX)
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
P=$(free_port)
H=$(openssl pkey -in "$D/www.key" -pubout -outform DER | sha256sum | cut -c1-64)
awk -v p="$P" -v h="$H" -v n=$((ROUNDS * BLOCK)) 'BEGIN {
	printf "_%s._tcp.w IN TLSA 3 1 1 %s\n", p, h
	for (i = 0; i < n; i++) {
		printf "_%s._tcp.k%d IN TLSA 3 1 1 %s\n", p, i, h
		printf "_%s._tcp.f%d IN TLSA 3 1 1 %s\n", p, i, h
	}
}' >"$D/add"
zones/serve start "$D/z" --add example.test "$D/add" 2>/dev/null || exit 1
cp "$D/z/tlspool.conf" "$D/kept.conf"
{
	cat "$D/z/tlspool.conf"
	echo "keep_keys_ttl = 0"
} >"$D/full.conf"
echo "=== cold validation: a new name each handshake, zone keys kept or not, vs the floor"
${WRAP:-} "$BUILD/bench/coldval_bench" "$D/www.pem" "$D/www.key" "$P" "$D/kept.conf" \
	"$D/full.conf" "$ROUNDS" "$BLOCK" >"$D/out"
rc=$?
cat "$D/out"
[ "$rc" = 0 ] || exit "$rc"
grep '^RESULT coldval_' "$D/out" >>"${RESULTS:-/dev/null}"
