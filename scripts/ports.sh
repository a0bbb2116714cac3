# Sourced by scripts/demo, bench/ and tests/e2e/: loopback ports.

# A TCP port nothing listens on (the TLSA owner name needs it before the
# zones are signed, so it is chosen, not asked of the kernel).
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 40000))
		ss -Htln "sport = :$p" | grep -q . || { echo "$p"; return; }
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
