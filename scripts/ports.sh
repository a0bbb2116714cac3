# Sourced by scripts/demo, bench/ and tests/e2e/: loopback ports.

# A port that nothing uses, TCP or UDP, and that the kernel never hands
# out as the source port of an outgoing connection: the TLSA owner name
# needs the port before the zones are signed, so it is chosen here, not
# asked of the kernel, and a port inside the ephemeral range could be
# taken by some client's connect() in between.  The range is read from
# /proc/sys/net/ipv4/ip_local_port_range (32768-60999 by default); the
# larger of the stretches below and above it is used (10000.. below).
# Ports handed out earlier by this shell are not handed out again (they
# are remembered in $T/.ports when the caller has a scratch directory $T).
free_port() {
	local lo=32768 hi=60999 from to p
	[ -r /proc/sys/net/ipv4/ip_local_port_range ] &&
		read -r lo hi </proc/sys/net/ipv4/ip_local_port_range
	if [ $((lo - 10000)) -ge $((65535 - hi)) ]; then
		from=10000 to=$((lo - 1))
	else
		from=$((hi + 1)) to=65535
	fi
	if [ "$to" -lt "$from" ]; then
		echo "free_port: no ports outside the ephemeral range $lo-$hi" >&2
		return 1
	fi
	local used="${T:+$T/.ports}"
	while :; do
		p=$((from + (RANDOM * 32768 + RANDOM) % (to - from + 1)))
		[ -n "$used" ] && [ -f "$used" ] && grep -qx "$p" "$used" && continue
		# listening or connected, TCP or UDP, in any state
		ss -Htuan "sport = :$p" | grep -q . && continue
		[ -n "$used" ] && [ -d "$T" ] && echo "$p" >>"$used"
		echo "$p"
		return 0
	done
}

# Wait up to 5 s until something listens on TCP port $1.
wait_port() {
	local i
	for i in $(seq 100); do
		ss -Htln "sport = :$1" | grep -q . && return 0
		sleep 0.05
	done
	echo "nothing listens on port $1" >&2
	return 1
}
