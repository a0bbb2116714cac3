#!/bin/bash
# make bench, last step: the table of ratios from the "RESULT" lines the
# benches appended to $RESULTS, and the PNG plots (gnuplot) of the data the
# C harnesses wrote under $OUT: handshake latency distribution per mode,
# RSS and threads against open connections.
#   RESULT <name> <tlspool> <floor or peer> <ratio>   (idle: see bench/idle.c)
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
OUT=${OUT:-$BUILD/bench}
RESULTS=${RESULTS:-$OUT/results.txt}

get() { awk -v n="$1" -v f="$2" '$1 == "RESULT" && $2 == n {v = $f} END {print v}' "$RESULTS"; }
verdict() { # VALUE OP LIMIT
	if [ -z "$1" ]; then echo "not measured"; return; fi
	if awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN {exit !(op == ">=" ? v >= l : v <= l)}'; then
		echo "met"
	else
		echo "NOT met"
	fi
}
row() { # WHAT TLSPOOL FLOOR RATIO TARGET VERDICT
	printf '| %-42s | %12s | %12s | %6s | %-14s | %-8s |\n' "$@"
}

echo
echo "=== make bench: ratios measured side by side in this run (shared machine: ratios only)"
row "what" "tlspool" "floor/peer" "ratio" "target" "verdict"
row "------------------------------------------" "------------" "------------" "------" "--------------" "--------"
r=$(get client_rate 5)
row "client handshakes/s, warm cache (vs bare)" "$(get client_rate 3)" "$(get client_rate 4)" "$r" ">= 0.97" "$(verdict "$r" ">=" 0.97)"
r=$(get client_cpu 5)
row "client CPU us/handshake (vs bare)" "$(get client_cpu 3)" "$(get client_cpu 4)" "$r" "<= 1.08" "$(verdict "$r" "<=" 1.08)"
r=$(get server_rate 5)
row "server+client cert handshakes/s (vs bare)" "$(get server_rate 3)" "$(get server_rate 4)" "$r" ">= 0.95" "$(verdict "$r" ">=" 0.95)"
r=$(get server_cpu 5)
row "server CPU us/handshake (vs bare)" "$(get server_cpu 3)" "$(get server_cpu 4)" "$r" "(none)" "-"
kt=$(get idle_tlspool_kib 3) kb=$(get idle_bare_kib 3)
r=$( [ -n "$kt" ] && [ -n "$kb" ] && awk -v a="$kt" -v b="$kb" 'BEGIN {printf "%.2f", a / b}')
row "RSS KiB per idle relayed connection" "$kt" "$kb" "$r" "<= 11 KiB" "$(verdict "$kt" "<=" 11)"
row "PSS KiB per idle relayed connection" "$(get idle_tlspool_kib 4)" "$(get idle_bare_kib 4)" "" "(none)" "-"
t0=$(get idle_tlspool_threads 3) t1=$(get idle_tlspool_threads 4)
if [ -n "$t0" ]; then
	row "threads at 1 -> $(get idle_tlspool_threads 5) relayed connections" "$t0 -> $t1" "" "" "constant" \
		"$([ "$t0" = "$t1" ] && echo met || echo "NOT met")"
else
	row "threads against relayed connections" "" "" "" "constant" "not measured"
fi
# bench/coldval.sh and bench/pool.sh: rows when they ran (make bench runs
# them; the smoke test of make check does not)
r=$(get coldval_rate 5)
[ -z "$r" ] ||
	row "cold validation, new name, kept zone keys" "$(get coldval_rate 3)" "$(get coldval_rate 4)" "$r" ">= 0.6" "$(verdict "$r" ">=" 0.6)"
for j in 1 8; do
	r=$(get pool_rate_j$j 5)
	[ -n "$r" ] || continue
	row "tlspoold calls/s, $j at a time (vs in-process)" "$(get pool_rate_j$j 3)" "$(get pool_rate_j$j 4)" "$r" ">= 0.9" "$(verdict "$r" ">=" 0.9)"
	row "tlspoold CPU us/call, $j at a time" "$(get pool_cpu_j$j 3)" "$(get pool_cpu_j$j 4)" "$(get pool_cpu_j$j 5)" "(none)" "-"
done
[ -z "$(get pool_kib 3)" ] || row "tlspoold KiB per relayed connection" "$(get pool_kib 3)" "" "" "(none)" "-"
r=$(get throughput_socat 5)
row "throughput MiB/s (vs socat OPENSSL)" "$(get throughput_socat 3)" "$(get throughput_socat 4)" "$r" ">= 1.4" "$(verdict "$r" ">=" 1.4)"
r=$(get throughput_stunnel 5)
row "throughput MiB/s (vs stunnel4)" "$(get throughput_stunnel 3)" "$(get throughput_stunnel 4)" "$r" ">= 1.2" "$(verdict "$r" ">=" 1.2)"

command -v gnuplot >/dev/null || { echo "bench: no gnuplot: no plots"; exit 0; }
plots=()
set -- "$OUT"/lat-*.dat
if [ -e "$1" ]; then
	cmd="set terminal png size 900,600; set output '$OUT/handshake-latency.png';"
	cmd+=" set title 'Handshake latency distribution (tlspool vs bare GnuTLS)';"
	cmd+=" set xlabel 'latency (us)'; set ylabel 'fraction of handshakes'; set key bottom right; set grid;"
	cmd+=" set logscale x; plot"
	sep=""
	for f in "$@"; do
		t=$(basename "$f" .dat)
		cmd+="$sep '$f' using 1:2 with lines lw 2 title '${t#lat-}'"
		sep=","
	done
	gnuplot -e "$cmd" && plots+=("$OUT/handshake-latency.png")
fi
if [ -e "$OUT/idle-tlspool.dat" ] && [ -e "$OUT/idle-bare.dat" ]; then
	gnuplot -e "set terminal png size 900,600; set output '$OUT/idle-connections.png';
		set title 'Idle connections: memory and threads';
		set xlabel 'open connections'; set ylabel 'KiB'; set y2label 'threads';
		set y2tics 1; set y2range [0:8]; set ytics nomirror; set key top left; set grid;
		plot '$OUT/idle-tlspool.dat' using 1:2 with linespoints lw 2 title 'tlspool RSS',
		     '$OUT/idle-tlspool.dat' using 1:3 with linespoints title 'tlspool PSS',
		     '$OUT/idle-bare.dat' using 1:2 with linespoints lw 2 title 'bare GnuTLS RSS',
		     '$OUT/idle-bare.dat' using 1:3 with linespoints title 'bare GnuTLS PSS',
		     '$OUT/idle-tlspool.dat' using 1:4 axes x1y2 with steps lw 2 title 'tlspool threads',
		     '$OUT/idle-bare.dat' using 1:4 axes x1y2 with steps title 'bare threads'" &&
		plots+=("$OUT/idle-connections.png")
fi
for p in "${plots[@]}"; do echo "plot: $p"; done
