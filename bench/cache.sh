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

# The same from Redis on this host, over TCP on loopback and over a unix
# socket, each without the in-process front of verified entries
# ([cache] redis_local_ttl_ms = 0) and with its default (1000): every line again side by side with LMDB
# and DNS of the same run.  Redis's INFO commandstats, reset before each
# run, says what each warm validation cost in commands: one GET, and
# nothing else (no AUTH, SELECT or EXISTS per call, no reconnect).
command -v redis-server >/dev/null || { echo "=== redis: skipped (no redis-server)"; exit 0; }
RPORT=$(while :; do p=$((20000 + RANDOM % 12000)); ss -Htuan "sport = :$p" | grep -q . || { echo "$p"; break; }; done)
redis-server --bind 127.0.0.1 --port "$RPORT" --unixsocket "$D/redis.sock" --unixsocketperm 700 \
	--save '' --appendonly no --daemonize no --dir "$D" --logfile "$D/redis.log" \
	--user default off --user tp on ">bench-pw" "~tlspool:*" "+@all" &
RPID=$!
trap 'kill $RPID 2>/dev/null; wait $RPID 2>/dev/null; cleanup' EXIT
echo bench-pw >"$D/pw"
openssl rand -hex 32 >"$D/site.key"
chmod 600 "$D/pw" "$D/site.key"
rcli() { redis-cli -p "$RPORT" --user tp --pass bench-pw --no-auth-warning "$@"; }
for _ in $(seq 100); do rcli PING 2>/dev/null | grep -q PONG && break; sleep 0.05; done
# (not a terminal: redis-cli prints "min max avg samples", in ms)
echo "Redis round trip here (redis-cli --latency for 2 s): $(rcli --latency -i 2 2>/dev/null | tail -1 | awk '{printf "%.0f us average of %d", $3 * 1000, $4}')"
# cache_bench asks Redis ROUNDS * 10 times
NVAL=$((ROUNDS * 10))
for addr in "127.0.0.1:$RPORT" "unix:$D/redis.sock"; do
	for front in 0 1000; do
		{
			cat "$D/z/tlspool.conf"
			printf '[cache]\nbackend = redis\nredis = %s\nkey_file = %s\n' "$addr" "$D/site.key"
			printf 'redis_user = tp\nredis_password_file = %s\nredis_local_ttl_ms = %s\n' "$D/pw" "$front"
		} >"$D/redis.conf"
		rcli CONFIG RESETSTAT >/dev/null
		case $front in
		0) what="no front (redis_local_ttl_ms = 0: one GET per lookup)" ;;
		*) what="the default front (redis_local_ttl_ms = $front)" ;;
		esac
		echo "=== validation latency: Redis at $addr, $what"
		TLSPOOL_CONFIG="$D/redis.conf" "$BUILD/bench/cache_bench" "$D/www.der" \
			_443._tcp.www.example.test. www.example.test "$D/cache-r.mdb" "$ROUNDS" |
			grep -E 'LMDB cache:|DNS \(|Redis' || exit 1
		rcli INFO commandstats | tr -d '\r' | awk -F'[:=,]' -v n="$NVAL" '
			/^cmdstat_/ { sub("cmdstat_", "", $1); c[$1] = $3 }
			END {
				o = ""
				# redis-cli authenticated once for this INFO
				c["auth"]--
				for (k in c) if (k != "get" && k !~ /^config/ && k != "info" && c[k] > 0) o = o " " k "=" c[k]
				printf "Redis commands: GET %d for %d warm validations (%.3f each); from tlspool besides:%s\n",
					c["get"], n, c["get"] / n, o == "" ? " none" : o
			}'
	done
done
