#!/bin/bash
# zones/serve leaves nothing running: after stop, after a failure inside a
# script that traps EXIT, and after a start that fails half-way.
. "$(dirname "$0")/common"

running() { pgrep -f "$1/nsd.conf" >/dev/null; }
gone() {
	# killed servers may linger as zombies for a moment: count the living
	local i
	for i in $(seq 50); do
		if ! pgrep -f "$1/nsd.conf" | xargs -r ps -o stat= -p 2>/dev/null | grep -qv Z; then
			npass=$((npass + 1))
			return 0
		fi
		sleep 0.1
	done
	nfail=$((nfail + 1))
	echo "not ok: $2: NSD still running for $1"
	zones/serve stop "$1"
}

# start, answer, stop
Z1="$T/z1"
expect start 0 -- zones/serve start "$Z1"
expect running 0 -- running "$Z1"
. "$Z1/env"
expect answers 0 -- dig +short +norec @127.0.0.1 -p "$TLSPOOL_ZONES_PORT" www.example.test A
grep_in out answers '^127\.0\.0\.1$'
expect stop 0 -- zones/serve stop "$Z1"
gone "$Z1" stop
expect stop-twice 0 -- zones/serve stop "$Z1"

# a test that fails while the zones are up, cleaning up from its trap
Z2="$T/z2"
expect failing-test 1 -- bash -c "trap 'zones/serve stop $Z2' EXIT; zones/serve start $Z2 2>/dev/null; exit 1"
gone "$Z2" failing-test

# a test killed by a signal
Z3="$T/z3"
bash -c "trap 'zones/serve stop $Z3' EXIT; trap 'exit 143' TERM; zones/serve start $Z3 2>/dev/null; sleep 30 & wait" &
pid=$!
for i in $(seq 50); do [ -f "$Z3/env" ] && break; sleep 0.1; done
kill -TERM "$pid"
wait "$pid" 2>/dev/null
gone "$Z3" killed

# a start that fails while signing (a malformed record) leaves nothing
Z4="$T/z4"
printf '_443._tcp.www IN TLSA 3 1 1 NOTHEX\n' >"$T/bad.zone"
expect bad-record 1 -- zones/serve start "$Z4" --add example.test "$T/bad.zone"
gone "$Z4" bad-record
expect unknown-zone 1 -- zones/serve start "$T/z5" --add nosuch.test "$T/bad.zone"
finish
