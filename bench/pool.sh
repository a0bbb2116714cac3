#!/bin/bash
# make bench: handshakes per second through tlspoold against the same
# calls in the process, side by side.  Each call connects, runs
# starttls_ctx_client() against a bare GnuTLS echo server, echoes a line
# and closes.  One process (build/bench/pool_load -m pair) holds both
# contexts, in the process (A) and through the daemon (B), and runs ROUNDS
# rounds, each of PAIRS pairs of short blocks (CALLS calls per thread),
# A B then B A, so neither side always goes first; a round's ratio is of
# its blocks' sums, so that load that comes and goes on these shared
# machines (on a scale of blocks, a few ms) falls on both sides alike;
# then the median of the rounds' ratios with their quartiles and the 95%
# confidence interval of the median (target >= 0.9), 1 and CONC at a time.
# Beside the rate, the CPU time per call: the application's (its relay's
# threads included), plus the daemon's threads' for the pool (the peer's,
# the same for both, left out).  The peer (pool_load -m serve) is bare
# GnuTLS with a thread per connection: it never makes a call wait for
# another (gnutls-serv --echo, one thread, did).
# Then the daemon's resident memory per relayed connection: HOLD
# connections opened through it and kept open.  These machines are
# shared: only ratios of runs made side by side mean anything.
# LOAD and DAEMON may name other builds (a "before" side by side).
set -u
cd "$(dirname "$0")/.." || exit 1
. scripts/ports.sh
BUILD=${BUILD:-build}
LOAD=${LOAD:-$BUILD/bench/pool_load}
DAEMON=${DAEMON:-$BUILD/tlspoold}
CALLS=${CALLS:-5} # per block and thread: J at a time, blocks of J * CALLS
PAIRS=${PAIRS:-16} # pairs of blocks (A B, B A, ...) per round
WARM=${WARM:-40} # calls on each side before the rounds, not counted
CONC=${CONC:-8}
ROUNDS=${ROUNDS:-21}
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
# below the ephemeral range: nothing's source port when the peer binds it
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

"$LOAD" -m serve -k "$D/www.key" -x "$D/www.pem" 127.0.0.1 "$PORT" - >/dev/null &
pids+=($!)
wait_port "$PORT" || exit 1
"$DAEMON" -c "$D/pool.conf" 2>"$D/daemon.log" &
dpid=$!
for _ in $(seq 100); do [ -S "$D/run/sock" ] && break; sleep 0.05; done

for j in ${JS:-1 $CONC}; do
	"$LOAD" -m pair -c "$D/inproc.conf" -p "$D/pool.conf" -P "$dpid" -r "$ROUNDS" \
		-b "$PAIRS" -n $((CALLS * j)) -w "$WARM" -j "$j" 127.0.0.1 "$PORT" www.example.test \
		>"$D/pair.out" || { echo "bench: pool_load -m pair failed" >&2; exit 1; }
	cat "$D/pair.out"
	grep '^RESULT pool_' "$D/pair.out" >>"${RESULTS:-/dev/null}"
done

# Instructions, which the machine's load does not change: the same calls
# under callgrind, a daemon of its own (on its own socket) and its
# application against an application that runs them itself, each at two
# numbers of calls; the difference over the difference in calls is the
# cost of one call without the start-up.  Kernel work (the hand-over's
# system calls, waking the daemon's threads) is not counted here: the CPU
# ratio above has it.
if [ "${CALLGRIND:-1}" = 1 ] && command -v valgrind >/dev/null; then
	N1=${CG_N1:-10} N2=${CG_N2:-60}
	mkdir -p "$D/cg" "$D/run2"
	chmod 0777 "$D/cg"
	sed "s|^socket = .*|socket = $D/run2/sock|" "$D/pool.conf" >"$D/pool2.conf"
	chmod 0644 "$D/pool2.conf"
	as_daemon=()
	if [ "$(id -u)" = 0 ]; then
		chown nobody "$D/run2"
		as_daemon=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
	fi
	ir() { awk '/^(summary|totals):/ {print $2; exit}' "$1"; }
	# cg_pool N: the instructions of daemon and application for N calls
	cg_pool() {
		rm -f "$D/run2/sock"
		"${as_daemon[@]}" valgrind --tool=callgrind --callgrind-out-file="$D/cg/daemon.$1" \
			"$DAEMON" -c "$D/pool2.conf" 2>"$D/daemon2.log" &
		local cgpid=$!
		for _ in $(seq 600); do [ -S "$D/run2/sock" ] && break; sleep 0.05; done
		valgrind --tool=callgrind --callgrind-out-file="$D/cg/app.$1" \
			"$LOAD" -c "$D/pool2.conf" -n "$1" 127.0.0.1 "$PORT" www.example.test >/dev/null 2>&1
		kill "$cgpid"
		wait "$cgpid" 2>/dev/null
		echo $(($(ir "$D/cg/daemon.$1") + $(ir "$D/cg/app.$1")))
	}
	cg_inproc() {
		valgrind --tool=callgrind --callgrind-out-file="$D/cg/inproc.$1" \
			"$LOAD" -c "$D/inproc.conf" -n "$1" 127.0.0.1 "$PORT" www.example.test >/dev/null 2>&1
		ir "$D/cg/inproc.$1"
	}
	p1=$(cg_pool "$N1") p2=$(cg_pool "$N2") i1=$(cg_inproc "$N1") i2=$(cg_inproc "$N2")
	a1=$(ir "$D/cg/app.$N1") a2=$(ir "$D/cg/app.$N2")
	echo "=== instructions per call (callgrind, ($N2 calls - $N1 calls) / $((N2 - N1)), 1 at a time)"
	printf 'RESULT in the process %.0f; through tlspoold %.0f (of which the application %.0f): ratio %.3f\n' \
		"$(echo "($i2 - $i1) / ($N2 - $N1)" | bc -l)" "$(echo "($p2 - $p1) / ($N2 - $N1)" | bc -l)" \
		"$(echo "($a2 - $a1) / ($N2 - $N1)" | bc -l)" "$(echo "($p2 - $p1) / ($i2 - $i1)" | bc -l)"
fi

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
printf 'RESULT pool_kib %.1f 0 0\n' "$(echo "($r1 - $r0) / ${n:-1}" | bc -l)" >>"${RESULTS:-/dev/null}"
