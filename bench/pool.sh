#!/bin/bash
# make bench: handshakes per second through tlspoold against the same
# calls in the process, side by side (build/bench/pool_load: each call
# connects, runs starttls_ctx_client() against gnutls-serv --echo, echoes
# a line and closes), one after another and CONC at a time, alternating
# ROUNDS times; the medians and the ratio pool/in-process (target >= 0.9),
# and the CPU time per call (the application's, plus the daemon's for the
# pool), which the machine's load disturbs less than the rate.
# Then the daemon's resident memory per relayed connection: HOLD
# connections opened through it and kept open.  These machines are
# shared: only ratios of runs made side by side mean anything.
set -u
cd "$(dirname "$0")/.." || exit 1
. scripts/ports.sh
BUILD=${BUILD:-build}
LOAD="$BUILD/bench/pool_load"
CALLS=${CALLS:-400}
CONC=${CONC:-8}
ROUNDS=${ROUNDS:-5}
HOLD=${HOLD:-500}
D=$(mktemp -d /tmp/tlspool-bench-pool.XXXXXX)
pids=()
dpid=
cleanup() {
	exec 7>&- 2>/dev/null
	[ -n "$dpid" ] && { kill "$dpid"; wait "$dpid"; } 2>/dev/null
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	zones/serve stop "$D/z" >/dev/null 2>&1
	rm -rf "$D"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

certtool --generate-privkey --key-type ecdsa --outfile "$D/www.key" 2>/dev/null
printf 'dns_name = www.example.test\nexpiration_days = 2\nsigning_key\n' >"$D/tmpl"
certtool --generate-self-signed --load-privkey "$D/www.key" --template "$D/tmpl" \
	--outfile "$D/www.pem" 2>/dev/null
# below the ephemeral range: nothing's source port when gnutls-serv binds it
PORT=$(while :; do p=$((20000 + RANDOM % 12000)); ss -Htuan "sport = :$p" | grep -q . || { echo "$p"; break; }; done)
echo "_$PORT._tcp.www IN TLSA 3 1 1 $(openssl pkey -in "$D/www.key" -pubout -outform DER | sha256sum | cut -c1-64)" >"$D/add"
zones/serve start "$D/z" --add example.test "$D/add" 2>/dev/null || exit 1
# the daemon's user reads the trust anchor
chmod 0711 "$D" "$D/z"
chmod 0644 "$D/z/root.key"

# The same [dns] for both; the calls need no key of their own (anonymous
# clients), so the daemon holds none.
mkdir "$D/run"
{
	cat "$D/z/tlspool.conf"
	printf '[tls]\nhandshake_timeout_ms = 10000\nrelay_threads = 2\n'
} >"$D/inproc.conf"
{
	cat "$D/inproc.conf"
	printf '[pool]\nsocket = %s/run/sock\nthreads = %s\n' "$D" "$CONC"
	[ "$(id -u)" = 0 ] && printf 'user = nobody\n'
} >"$D/pool.conf"
chmod 0644 "$D/inproc.conf" "$D/pool.conf"
[ "$(id -u)" = 0 ] && chown nobody "$D/run"

gnutls-serv --echo -p "$PORT" --x509keyfile "$D/www.key" --x509certfile "$D/www.pem" \
	>/dev/null 2>&1 &
pids+=($!)
wait_port "$PORT" || exit 1
"$BUILD/tlspoold" -c "$D/pool.conf" 2>"$D/daemon.log" &
dpid=$!
for _ in $(seq 100); do [ -S "$D/run/sock" ] && break; sleep 0.05; done

# The daemon's CPU time so far, in seconds (utime + stime of /proc/PID/stat).
daemon_cpu() {
	awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$dpid/stat"
}
# run CONF N J: "RATE CPU_US_PER_CALL" of N calls, J at a time, the
# daemon's CPU counted in for the pool; or exit
run() {
	local out d0 d1
	d0=$(daemon_cpu)
	out=$("$LOAD" -c "$1" -n "$2" -j "$3" 127.0.0.1 "$PORT" www.example.test) ||
		{ echo "bench: pool_load failed: $out" >&2; exit 1; }
	d1=$(daemon_cpu)
	[ "$1" = "$D/inproc.conf" ] && d1=$d0
	awk -v n="$2" -v d="$(echo "$d1 - $d0" | bc -l)" \
		'{print $NF, ($(NF - 2) + d) * 1e6 / n}' <<<"$out"
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

# warm both validation caches and the daemon's threads
run "$D/inproc.conf" 20 1 >/dev/null
run "$D/pool.conf" 20 1 >/dev/null
for j in 1 "$CONC"; do
	echo "=== handshakes per second: $CALLS calls, $j at a time, in the process vs through tlspoold"
	ri=() rp=() ci=() cp=()
	for r in $(seq "$ROUNDS"); do
		# ABBA: neither side always runs first
		if [ $((r % 2)) = 1 ]; then
			read -r a ca < <(run "$D/inproc.conf" "$CALLS" "$j")
			read -r b cb < <(run "$D/pool.conf" "$CALLS" "$j")
		else
			read -r b cb < <(run "$D/pool.conf" "$CALLS" "$j")
			read -r a ca < <(run "$D/inproc.conf" "$CALLS" "$j")
		fi
		ri+=("$a") rp+=("$b") ci+=("$ca") cp+=("$cb")
		printf 'round %d: in-process %7.1f/s %6.0f us CPU/call   tlspoold %7.1f/s %6.0f us CPU/call\n' \
			"$r" "$a" "$ca" "$b" "$cb"
	done
	mi=$(median "${ri[@]}") mp=$(median "${rp[@]}")
	mci=$(median "${ci[@]}") mcp=$(median "${cp[@]}")
	printf 'median:  in-process %7.1f/s %6.0f us   tlspoold %7.1f/s %6.0f us   rate ratio %.2f (target >= 0.9), CPU ratio %.2f\n' \
		"$mi" "$mci" "$mp" "$mcp" "$(echo "$mp / $mi" | bc -l)" "$(echo "$mcp / $mci" | bc -l)"
done

echo "=== tlspoold's memory per relayed connection ($HOLD held open)"
rss() { awk '/^VmRSS/ {print $2}' "/proc/$dpid/status"; }
sleep 0.5
r0=$(rss)
f0=$(ls "/proc/$dpid/fd" | wc -l)
mkfifo "$D/hold"
"$LOAD" -c "$D/pool.conf" -m hold -n "$HOLD" -j "$CONC" 127.0.0.1 "$PORT" www.example.test \
	<"$D/hold" >"$D/hold.out" &
lpid=$!
exec 7>"$D/hold"
for _ in $(seq 600); do grep -q '^held' "$D/hold.out" && break; sleep 0.1; done
sleep 0.5
r1=$(rss)
f1=$(ls "/proc/$dpid/fd" | wc -l)
n=$(awk '/^held/ {print $2}' "$D/hold.out")
exec 7>&-
wait "$lpid"
printf 'held %s: RSS %d -> %d KiB, %.1f KiB per connection; descriptors %d -> %d\n' \
	"$n" "$r0" "$r1" "$(echo "($r1 - $r0) / ${n:-1}" | bc -l)" "$f0" "$f1"
