#!/bin/bash
# make bench: a fleet, simulated.  Three network namespaces that this
# script makes and deletes itself, joined by veth pairs, with addresses
# of 10.77.0.0/24 that exist only inside them:
#
#   host1 10.77.0.1 --- 10.77.0.2 redis 10.77.0.6 --- 10.77.0.5 host2
#
# Redis runs on "redis"; tlspool-connect runs on host1 and host2, each
# with its own DNS (zones/serve, NSD on the host's own loopback) and
# [cache] backend = redis with the same site key.  host1 validates
# NPEERS peers; host2 then validates those and NNEW that host1 never saw:
# the hit rate on host2 is printed for both groups.  Then, on host2,
# build/bench/cache_bench measures one warm validation from Redis (over
# the veth pair) against LMDB, memory and DNS, without the in-process
# front (redis_local_ttl_ms = 0: one GET per lookup) and with the
# default front (1000 ms), and both once more with a Redis on host2's
# loopback.  Target: a warm validation from Redis within 3x of
# LMDB on loopback.
#
# Needs root (ip netns).  Traffic goes only to addresses inside these
# namespaces; everything is stopped and deleted on exit.
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
ROUNDS=${ROUNDS:-200}
NPEERS=${NPEERS:-10}
NNEW=${NNEW:-5}
CLI="$BUILD/tlspool-connect"
if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null; then
	echo "=== fleet: skipped (needs root and ip netns)"
	exit 0
fi
command -v redis-server >/dev/null || { echo "fleet: no redis-server (scripts/deps)"; exit 1; }

D=$(mktemp -d /tmp/tlspool-bench-fleet.XXXXXX)
NS_R=tpfleet-r-$$
NS_1=tpfleet-h1-$$
NS_2=tpfleet-h2-$$
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	ip netns exec "$NS_1" zones/serve stop "$D/z1" >/dev/null 2>&1
	ip netns exec "$NS_2" zones/serve stop "$D/z2" >/dev/null 2>&1
	for n in "$NS_R" "$NS_1" "$NS_2"; do
		ip netns pids "$n" 2>/dev/null | xargs -r kill -9 2>/dev/null
		ip netns delete "$n" 2>/dev/null
	done
	rm -rf "$D"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

in1() { ip netns exec "$NS_1" "$@"; }
in2() { ip netns exec "$NS_2" "$@"; }
inr() { ip netns exec "$NS_R" "$@"; }

# --- the network: namespaces, veth pairs, private addresses ---
for n in "$NS_R" "$NS_1" "$NS_2"; do
	ip netns add "$n" || exit 1
	ip -n "$n" link set lo up
done
ip -n "$NS_1" link add v1 type veth peer name r1 netns "$NS_R" || exit 1
ip -n "$NS_2" link add v2 type veth peer name r2 netns "$NS_R" || exit 1
ip -n "$NS_1" addr add 10.77.0.1/30 dev v1
ip -n "$NS_R" addr add 10.77.0.2/30 dev r1
ip -n "$NS_2" addr add 10.77.0.5/30 dev v2
ip -n "$NS_R" addr add 10.77.0.6/30 dev r2
for l in "$NS_1 v1" "$NS_R r1" "$NS_2 v2" "$NS_R r2"; do
	set -- $l
	ip -n "$1" link set "$2" up
done

# --- Redis on its host (an ACL user limited to the prefix) ---
inr redis-server --bind 10.77.0.2 10.77.0.6 --port 6379 --save '' \
	--appendonly no --daemonize no --dir "$D" --logfile "$D/redis.log" \
	--user default off --user tp on ">fleet-pw" "~tlspool:*" "+@all" &
pids+=($!)
echo fleet-pw >"$D/pw"
openssl rand -hex 32 >"$D/site.key"
chmod 600 "$D/pw" "$D/site.key"
for _ in $(seq 100); do
	in1 redis-cli -h 10.77.0.2 --user tp --pass fleet-pw --no-auth-warning PING 2>/dev/null | grep -q PONG && break
	sleep 0.05
done

# --- the peers: one certificate, NPEERS + NNEW ports with TLSA records ---
certtool --generate-privkey --key-type ecdsa --outfile "$D/www.key" 2>/dev/null
printf 'dns_name = www.example.test\nexpiration_days = 2\nsigning_key\n' >"$D/tmpl"
certtool --generate-self-signed --load-privkey "$D/www.key" --template "$D/tmpl" \
	--outfile "$D/www.pem" 2>/dev/null
openssl x509 -in "$D/www.pem" -outform DER -out "$D/www.der"
SPKI=$(openssl pkey -in "$D/www.key" -pubout -outform DER | sha256sum | cut -c1-64)
ports=()
for i in $(seq $((NPEERS + NNEW))); do ports+=($((20100 + i))); done
echo "_443._tcp.www IN TLSA 3 1 1 $SPKI" >"$D/add"
for p in "${ports[@]}"; do echo "_$p._tcp.www IN TLSA 3 1 1 $SPKI"; done >>"$D/add"
in1 zones/serve start "$D/z1" --add example.test "$D/add" 2>/dev/null || { echo "fleet: zones failed"; exit 1; }
in2 zones/serve start "$D/z2" --add example.test "$D/add" 2>/dev/null || { echo "fleet: zones failed"; exit 1; }

conf() { # ZONEDIR REDISADDR > tlspool.conf of a host
	cat "$1/tlspool.conf"
	printf '[cache]\nbackend = redis\nredis = %s\nkey_file = %s\n' "$2" "$D/site.key"
	printf 'redis_user = tp\nredis_password_file = %s\n' "$D/pw"
	printf '[identity www.example.test]\nkey = %s\ncertificate = %s\n' "$D/www.key" "$D/www.pem"
}
conf "$D/z1" 10.77.0.2:6379 >"$D/h1.conf"
conf "$D/z2" 10.77.0.6:6379 >"$D/h2.conf"
sed '/^\[cache\]/,/^redis_password_file/d' "$D/h1.conf" >"$D/s1.conf"
sed '/^\[cache\]/,/^redis_password_file/d' "$D/h2.conf" >"$D/s2.conf"

# validate HOSTNS CONF SERVERCONF PORT: one connection; prints "hit",
# "miss" or "fail"
validate() {
	local ns=$1 conf=$2 sconf=$3 port=$4 out
	ip netns exec "$ns" "$CLI" --server --config "$sconf" --bind 127.0.0.1 \
		--no-peer-cert --exec cat "$port" >/dev/null 2>&1 &
	local spid=$!
	for _ in $(seq 100); do
		ip netns exec "$ns" ss -Htln "sport = :$port" | grep -q . && break
		sleep 0.02
	done
	out=$(echo hello | ip netns exec "$ns" "$CLI" --client --config "$conf" \
		--sni www.example.test --diagnose 127.0.0.1 "$port" 2>&1)
	local rc=$?
	wait "$spid" 2>/dev/null
	if [ $rc != 0 ]; then
		echo fail
	elif echo "$out" | grep -q 'authenticated from the validation cache'; then
		echo hit
	else
		echo miss
	fi
}

echo "=== fleet: Redis on one namespace, tlspool on two (veth, 10.77.0.0/24)"
h1_fail=0
for p in "${ports[@]:0:$NPEERS}"; do
	r=$(validate "$NS_1" "$D/h1.conf" "$D/s1.conf" "$p")
	[ "$r" = fail ] && h1_fail=$((h1_fail + 1))
done
hits=0
miss_new=0
fails=0
for p in "${ports[@]:0:$NPEERS}"; do
	case $(validate "$NS_2" "$D/h2.conf" "$D/s2.conf" "$p") in
	hit) hits=$((hits + 1)) ;;
	fail) fails=$((fails + 1)) ;;
	esac
done
for p in "${ports[@]:$NPEERS}"; do
	case $(validate "$NS_2" "$D/h2.conf" "$D/s2.conf" "$p") in
	miss) miss_new=$((miss_new + 1)) ;;
	fail) fails=$((fails + 1)) ;;
	esac
done
echo "host1 validated $NPEERS peers online ($h1_fail failed)"
echo "host2 hit rate on the peers host1 validated: $hits/$NPEERS ($((100 * hits / NPEERS))%)"
echo "host2 on $NNEW peers host1 never saw: $miss_new/$NNEW validated online"
[ "$h1_fail" = 0 ] && [ "$fails" = 0 ] && [ "$hits" = "$NPEERS" ] && [ "$miss_new" = "$NNEW" ] || {
	echo "fleet: unexpected result"
	exit 1
}

# The whole connection as an application sees it (tlspool-connect: the
# process, the handshake, the validation), from each source, on host2.
# usec_client CONF PORT [OPTIONS...]: the client's wall time, in us.
usec_client() {
	local conf=$1 port=$2 t0 t1
	shift 2
	in2 "$CLI" --server --config "$D/s2.conf" --bind 127.0.0.1 --no-peer-cert \
		--exec cat "$port" >/dev/null 2>&1 &
	local spid=$!
	for _ in $(seq 100); do
		in2 ss -Htln "sport = :$port" | grep -q . && break
		sleep 0.02
	done
	t0=$(date +%s%N)
	echo hello | in2 "$CLI" --client --config "$conf" --sni www.example.test \
		"$@" 127.0.0.1 "$port" >/dev/null 2>&1 || echo "fleet: a connection failed" >&2
	t1=$(date +%s%N)
	wait "$spid" 2>/dev/null
	echo $(((t1 - t0) / 1000))
}
{
	sed '/^\[cache\]/,/^redis_password_file/d' "$D/h2.conf"
	printf '[cache]\npath = %s\n' "$D/h2.mdb"
} >"$D/h2lmdb.conf"
P0=${ports[0]}
usec_client "$D/h2lmdb.conf" "$P0" >/dev/null # warm the LMDB file
NCONN=${NCONN:-20}
for src in redis lmdb dns; do
	tot=0
	for _ in $(seq "$NCONN"); do
		case $src in
		redis) u=$(usec_client "$D/h2.conf" "$P0") ;;
		lmdb) u=$(usec_client "$D/h2lmdb.conf" "$P0") ;;
		dns) u=$(usec_client "$D/h2.conf" "$P0" --no-cache-read --no-cache-write) ;;
		esac
		tot=$((tot + u))
	done
	eval "conn_$src=$((tot / NCONN))"
done
echo "=== fleet: one tlspool-connect connection on host2 (process, handshake, validation), mean of $NCONN"
echo "validated from Redis (veth): $conn_redis us   from LMDB: $conn_lmdb us   from DNS: $conn_dns us"
echo "ratio Redis/LMDB: $(echo "scale=2; $conn_redis / $conn_lmdb" | bc)   DNS/Redis: $(echo "scale=2; $conn_dns / $conn_redis" | bc)"

# pure: the same configuration without the in-process front, so that
# every warm lookup is one GET (redis_local_ttl_ms = 0)
pure() { sed 's|^redis_password_file = .*|&\nredis_local_ttl_ms = 0|' "$1"; }
pure "$D/h2.conf" >"$D/h2pure.conf"
echo "=== fleet: warm validation on host2, Redis over the veth pair, no front ([cache] redis_local_ttl_ms = 0)"
TLSPOOL_CONFIG="$D/h2pure.conf" in2 "$BUILD/bench/cache_bench" "$D/www.der" \
	_443._tcp.www.example.test. www.example.test "$D/c1.mdb" "$ROUNDS" || exit 1

echo "=== fleet: the same with the default in-process front ([cache] redis_local_ttl_ms = 1000)"
TLSPOOL_CONFIG="$D/h2.conf" in2 "$BUILD/bench/cache_bench" "$D/www.der" \
	_443._tcp.www.example.test. www.example.test "$D/c3.mdb" "$ROUNDS" || exit 1

echo "=== fleet: warm validation on host2, Redis on host2's loopback"
in2 redis-server --bind 127.0.0.1 --port 6379 --save '' --appendonly no \
	--daemonize no --dir "$D" --logfile "$D/redis2.log" \
	--user default off --user tp on ">fleet-pw" "~tlspool:*" "+@all" &
pids+=($!)
for _ in $(seq 100); do
	in2 redis-cli --user tp --pass fleet-pw --no-auth-warning PING 2>/dev/null | grep -q PONG && break
	sleep 0.05
done
# The floor: Redis's own round trip for one GET from one client.
echo "raw Redis GET round trip on host2's loopback (redis-benchmark -c 1):" \
	"$(in2 redis-benchmark -h 127.0.0.1 -p 6379 --user tp -a fleet-pw -c 1 -n 5000 -q \
		GET tlspool:bench 2>/dev/null | tr '\r' '\n' | sed -n 's/.*p50=\([0-9.]*\) msec.*/\1 ms (p50)/p' | tail -1)"
conf "$D/z2" 127.0.0.1:6379 >"$D/h2lo.conf"
pure "$D/h2lo.conf" >"$D/h2lopure.conf"
echo "--- no front ([cache] redis_local_ttl_ms = 0)"
TLSPOOL_CONFIG="$D/h2lopure.conf" in2 "$BUILD/bench/cache_bench" "$D/www.der" \
	_443._tcp.www.example.test. www.example.test "$D/c2.mdb" "$ROUNDS" || exit 1
echo "--- the default front ([cache] redis_local_ttl_ms = 1000)"
TLSPOOL_CONFIG="$D/h2lo.conf" in2 "$BUILD/bench/cache_bench" "$D/www.der" \
	_443._tcp.www.example.test. www.example.test "$D/c4.mdb" "$ROUNDS" || exit 1
