#!/bin/bash
# make bench: handshakes per second through tlspoold against the same
# calls in the process, side by side (build/bench/pool_load: each call
# connects, runs starttls_ctx_client() against gnutls-serv --echo, echoes
# a line and closes), one after another and CONC at a time.  Paired
# rounds: each round runs CALLS calls in the process and CALLS through the
# daemon back to back (A B, then B A, so neither side always goes first),
# and gives one ratio pool/in-process; the result is the median of the
# ROUNDS ratios with their quartiles (target >= 0.9).  Load that comes and
# goes on these shared machines hits both halves of a round alike, so a
# ratio per round is steadier than a ratio of medians.  Beside the rate,
# the CPU time per call: the application's, plus the daemon's for the
# pool (gnutls-serv's, the same for both, left out).
# Then the daemon's resident memory per relayed connection: HOLD
# connections opened through it and kept open.  These machines are
# shared: only ratios of runs made side by side mean anything.
set -u
cd "$(dirname "$0")/.." || exit 1
. scripts/ports.sh
BUILD=${BUILD:-build}
LOAD="$BUILD/bench/pool_load"
CALLS=${CALLS:-100}
WARM=${WARM:-5} # calls before each timed run, not counted
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

# The daemon's CPU time so far, in seconds: the run time of each of its
# threads (/proc/PID/task/*/schedstat, nanoseconds; its threads live as
# long as it does), not /proc/PID/stat, whose 10 ms ticks are coarser than
# a round's share.
daemon_cpu() {
	cat /proc/"$dpid"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.6f\n", s / 1e9}'
}
# run CONF N J: "RATE CPU_US_PER_CALL" of N calls, J at a time, the
# daemon's CPU counted in for the pool; or exit
run() {
	local out d0 d1
	d0=$(daemon_cpu)
	out=$("$LOAD" -c "$1" -w "$WARM" -n "$2" -j "$3" 127.0.0.1 "$PORT" www.example.test) ||
		{ echo "bench: pool_load failed: $out" >&2; exit 1; }
	d1=$(daemon_cpu)
	[ "$1" = "$D/inproc.conf" ] && d1=$d0
	# the application's CPU is its timed calls'; the daemon's, measured
	# around the whole run, is shared out over the warm-up calls too
	awk -v n="$2" -v w="$WARM" -v d="$(echo "$d1 - $d0" | bc -l)" \
		'{print $NF, ($(NF - 2) / n + d / (n + w)) * 1e6}' <<<"$out"
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
# quartiles of the numbers: "Q1 Q3"
quartiles() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 3) / 4)], a[int((3 * NR + 3) / 4)]}'; }

# warm both validation caches and the daemon's threads
run "$D/inproc.conf" 20 1 >/dev/null
run "$D/pool.conf" 20 1 >/dev/null
for j in 1 "$CONC"; do
	echo "=== handshakes per second: $ROUNDS paired rounds of $CALLS calls, $j at a time, in the process (A) vs through tlspoold (B)"
	ratio=() cratio=() ri=() rp=() ci=() cp=()
	for r in $(seq "$ROUNDS"); do
		if [ $((r % 2)) = 1 ]; then
			read -r a ca < <(run "$D/inproc.conf" "$CALLS" "$j")
			read -r b cb < <(run "$D/pool.conf" "$CALLS" "$j")
		else
			read -r b cb < <(run "$D/pool.conf" "$CALLS" "$j")
			read -r a ca < <(run "$D/inproc.conf" "$CALLS" "$j")
		fi
		ri+=("$a") rp+=("$b") ci+=("$ca") cp+=("$cb")
		ratio+=("$(echo "$b / $a" | bc -l)") cratio+=("$(echo "$cb / $ca" | bc -l)")
		printf 'round %2d %s: A %7.1f/s %5.0f us CPU/call   B %7.1f/s %5.0f us CPU/call   rate B/A %.2f\n' \
			"$r" "$([ $((r % 2)) = 1 ] && echo AB || echo BA)" "$a" "$ca" "$b" "$cb" "${ratio[-1]}"
	done
	read -r q1 q3 < <(quartiles "${ratio[@]}")
	read -r c1 c3 < <(quartiles "${cratio[@]}")
	printf 'medians: A %7.1f/s %5.0f us CPU/call   B %7.1f/s %5.0f us CPU/call (app + daemon)\n' \
		"$(median "${ri[@]}")" "$(median "${ci[@]}")" "$(median "${rp[@]}")" "$(median "${cp[@]}")"
	printf 'RESULT %s at a time: rate B/A median %.2f (quartiles %.2f-%.2f; target >= 0.9), CPU per call B/A median %.2f (quartiles %.2f-%.2f)\n' \
		"$j" "$(median "${ratio[@]}")" "$q1" "$q3" "$(median "${cratio[@]}")" "$c1" "$c3"
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
			"$BUILD/tlspoold" -c "$D/pool2.conf" 2>"$D/daemon2.log" &
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
