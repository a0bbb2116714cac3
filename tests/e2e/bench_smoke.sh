#!/bin/bash
# The bench programs, briefly, so that they cannot rot (no timing is
# asserted): bench/harness.sh (build/bench/handshake as client and server,
# build/bench/idle for tlspool and bare GnuTLS) with a few rounds,
# bench/throughput.sh with 8 MiB, bench/cache.sh with a few rounds, then
# bench/report.sh: every RESULT line of the table is there, both plots are
# PNG files.  build/bench/pool_load runs in tests/e2e/pool.sh.
. "$(dirname "$0")/common"

O="$T/bench"
mkdir -p "$O"
export BUILD OUT="$O" RESULTS="$T/results.txt"
: >"$RESULTS"

# negative first: the harnesses refuse what they cannot run
expect handshake-usage 2 -- "$BUILD/bench/handshake" -m sideways -p 1 -k x -c y
grep_in err handshake-usage '^usage: handshake'
expect handshake-server-needs-client-cert 2 -- "$BUILD/bench/handshake" -m server -p 1 -k x -c y
expect idle-usage 2 -- "$BUILD/bench/idle" -m nobody -p 1 -k x -c y
grep_in err idle-usage '^usage: idle'

expect harness 0 -- env ROUNDS=2 PER=5 IDLE_MAX=12 IDLE_STEPS=2 bench/harness.sh
grep_in out harness-client '^  round 2  tlspool .*/s .* bare .*/s'
grep_in out harness-server '^server handshakes: tlspool vs bare GnuTLS'
grep_in out idle-limit '^idle tlspool: descriptor limit [0-9]+, [0-9]+ in use, 3 per connection: at most [0-9]+ connections'
grep_in out idle-bare '^idle bare: .* 1 per connection'
expect throughput 0 -- env SIZE_MB=8 ROUNDS=1 bench/throughput.sh
grep_in out throughput-stunnel '^  round 1  stunnel4 '
expect cache 0 -- env ROUNDS=3 bench/cache.sh
expect report 0 -- bench/report.sh
for r in client_rate client_cpu server_rate server_cpu idle_tlspool_kib \
	idle_bare_kib idle_tlspool_threads throughput_socat throughput_stunnel; do
	grep_in results.txt "result-$r" "^RESULT $r [0-9.]+ [0-9.]+ [0-9.]+"
done
grep_in out report-table '^\| client handshakes/s, warm cache \(vs bare\) +\| +[0-9.]+ \| +[0-9.]+ \| +[0-9.]+ \|'
no_grep_in out report-complete 'not measured'
for p in handshake-latency idle-connections; do
	if file "$O/$p.png" | grep -q 'PNG image data'; then
		npass=$((npass + 1))
	else
		nfail=$((nfail + 1))
		echo "not ok: plot $p.png: $(file "$O/$p.png")"
	fi
done
# the idle data: one line per step and the start, the threads constant
expect idle-data 0 -- awk 'NF != 5 {exit 1} END {exit NR != 3}' "$O/idle-tlspool.dat"
finish
