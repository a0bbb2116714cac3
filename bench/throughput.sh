#!/bin/bash
# make bench: 1 GiB through tlspool-connect --client into tlspool-connect
# --server on loopback, against socat OPENSSL on both sides and stunnel4 on
# both sides (plain socat into the client's stunnel, the server's stunnel
# into a plain socat sink), run alternately in one invocation (these
# machines are shared: only the ratio of runs made side by side means
# anything).  Prints each time, the medians and the ratios peer/tlspool
# (above 1: tlspool is faster); "RESULT" lines appended to $RESULTS.
# tlspool's server counts what it got (wc -c, no dearer than cat): a run
# that did not deliver every byte is an error, not a time.
set -u
cd "$(dirname "$0")/.." || exit 1
. scripts/ports.sh
BUILD=${BUILD:-build}
CLI="$BUILD/tlspool-connect"
SIZE_MB=${SIZE_MB:-1024}
ROUNDS=${ROUNDS:-5}
RESULTS=${RESULTS:-/dev/null}
D=$(mktemp -d /tmp/tlspool-bench.XXXXXX)
pids=()
cleanup() {
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
PORTS=()
for i in $(seq "$ROUNDS"); do PORTS+=("$(free_port)"); done
for p in "${PORTS[@]}"; do
	echo "_$p._tcp.www IN TLSA 3 1 1 $(openssl pkey -in "$D/www.key" -pubout -outform DER | sha256sum | cut -c1-64)"
done >"$D/add"
zones/serve start "$D/z" --add example.test "$D/add" 2>/dev/null || exit 1
{
	cat "$D/z/tlspool.conf"
	printf '[identity www.example.test]\nkey = %s\ncertificate = %s\n' "$D/www.key" "$D/www.pem"
} >"$D/tlspool.conf"
export TLSPOOL_CONFIG="$D/tlspool.conf"

secs() { date +%s.%N; }

run_tlspool() {
	local p=$1 t0 t1
	rm -f "$D/count"
	"$CLI" --server --bind 127.0.0.1 --myname www.example.test --no-peer-cert \
		--exec "wc -c >'$D/count'" "$p" 2>"$D/server.err" &
	pids+=($!)
	wait_port "$p" || return 1
	t0=$(secs)
	head -c "${SIZE_MB}M" /dev/zero |
		"$CLI" --client --sni www.example.test 127.0.0.1 "$p" >/dev/null 2>"$D/client.err" ||
		{ echo "bench: tlspool-connect failed: $(cat "$D/client.err")" >&2; return 1; }
	wait "${pids[-1]}" ||
		{ echo "bench: tlspool-connect --server failed: $(cat "$D/server.err")" >&2; return 1; }
	t1=$(secs)
	# a time is only worth reporting for the whole transfer
	[ "$(cat "$D/count" 2>/dev/null)" = "$((SIZE_MB * 1048576))" ] ||
		{ echo "bench: the server got $(cat "$D/count" 2>/dev/null) bytes of $((SIZE_MB * 1048576))" >&2; return 1; }
	echo "$t1 - $t0" | bc
}

run_socat() {
	local p t0 t1
	p=$(free_port)
	socat -u "OPENSSL-LISTEN:$p,bind=127.0.0.1,reuseaddr,cert=$D/www.pem,key=$D/www.key,verify=0" \
		OPEN:/dev/null 2>"$D/socat.err" &
	pids+=($!)
	wait_port "$p" || return 1
	t0=$(secs)
	head -c "${SIZE_MB}M" /dev/zero |
		socat -u - "OPENSSL:127.0.0.1:$p,verify=0" 2>>"$D/socat.err" ||
		{ echo "bench: socat failed: $(cat "$D/socat.err")" >&2; return 1; }
	wait "${pids[-1]}"
	t1=$(secs)
	echo "$t1 - $t0" | bc
}

run_stunnel() {
	local p0 p1 p2 t0 t1 sink c s
	p0=$(free_port) p1=$(free_port) p2=$(free_port)
	printf 'foreground = yes\npid =\n[s]\naccept = 127.0.0.1:%s\nconnect = 127.0.0.1:%s\ncert = %s\nkey = %s\n' \
		"$p1" "$p2" "$D/www.pem" "$D/www.key" >"$D/stunnel-s.conf"
	printf 'foreground = yes\npid =\n[c]\nclient = yes\naccept = 127.0.0.1:%s\nconnect = 127.0.0.1:%s\nverifyChain = no\n' \
		"$p0" "$p1" >"$D/stunnel-c.conf"
	socat -u "TCP-LISTEN:$p2,bind=127.0.0.1,reuseaddr" OPEN:/dev/null 2>"$D/sink.err" &
	sink=$!
	stunnel4 "$D/stunnel-s.conf" 2>"$D/stunnel-s.err" &
	s=$!
	stunnel4 "$D/stunnel-c.conf" 2>"$D/stunnel-c.err" &
	c=$!
	pids+=("$sink" "$s" "$c")
	wait_port "$p2" && wait_port "$p1" && wait_port "$p0" || return 1
	t0=$(secs)
	head -c "${SIZE_MB}M" /dev/zero | socat -u - "TCP:127.0.0.1:$p0" 2>>"$D/sink.err" ||
		{ echo "bench: stunnel failed: $(cat "$D/stunnel-c.err")" >&2; return 1; }
	wait "$sink"
	t1=$(secs)
	kill "$s" "$c" 2>/dev/null
	wait "$s" "$c" 2>/dev/null
	echo "$t1 - $t0" | bc
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "throughput: ${SIZE_MB} MiB client -> server over loopback, $ROUNDS rounds each, alternating"
: >"$D/t.tlspool"
: >"$D/t.socat"
: >"$D/t.stunnel"
for i in $(seq "$ROUNDS"); do
	t=$(run_tlspool "${PORTS[$((i - 1))]}") || exit 1
	echo "  round $i  tlspool-connect  ${t} s"
	echo "$t" >>"$D/t.tlspool"
	t=$(run_socat) || exit 1
	echo "  round $i  socat OPENSSL    ${t} s"
	echo "$t" >>"$D/t.socat"
	t=$(run_stunnel) || exit 1
	echo "  round $i  stunnel4         ${t} s"
	echo "$t" >>"$D/t.stunnel"
done
mt=$(median <"$D/t.tlspool")
ms=$(median <"$D/t.socat")
mu=$(median <"$D/t.stunnel")
printf 'median: tlspool-connect %.3f s (%.0f MiB/s), socat %.3f s (%.0f MiB/s), stunnel4 %.3f s (%.0f MiB/s)\n' \
	"$mt" "$(echo "$SIZE_MB / $mt" | bc -l)" "$ms" "$(echo "$SIZE_MB / $ms" | bc -l)" \
	"$mu" "$(echo "$SIZE_MB / $mu" | bc -l)"
printf 'ratio socat/tlspool: %.2f, stunnel4/tlspool: %.2f (above 1.0: tlspool-connect is faster)\n' \
	"$(echo "$ms / $mt" | bc -l)" "$(echo "$mu / $mt" | bc -l)"
printf 'RESULT throughput_socat %.1f %.1f %.3f\nRESULT throughput_stunnel %.1f %.1f %.3f\n' \
	"$(echo "$SIZE_MB / $mt" | bc -l)" "$(echo "$SIZE_MB / $ms" | bc -l)" "$(echo "$ms / $mt" | bc -l)" \
	"$(echo "$SIZE_MB / $mt" | bc -l)" "$(echo "$SIZE_MB / $mu" | bc -l)" "$(echo "$mu / $mt" | bc -l)" >>"$RESULTS"
