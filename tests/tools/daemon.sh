# tests/tools/daemon.sh: sourced by the server fixtures of tests/tools/
# (postfix.sh, dovecot.sh, prosody.sh, unbound.sh, slapd.sh) to stop the
# daemon they started.

# Is process $1 alive?  A zombie is not: a daemon that ended is reaped
# by PID 1, which may take its time (or never come) in a container.
alive() {
	kill -0 "$1" 2>/dev/null || return 1
	[ "$(sed -n 's/^.*) \(.\).*$/\1/p' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

# SIGTERM to process $1, up to 5 s for it to end, then SIGKILL.
# Nothing when it is gone already.
stop_pid() {
	kill "$1" 2>/dev/null || return 0
	_i=0
	while alive "$1" && [ $_i -lt 100 ]; do
		sleep 0.05
		_i=$((_i + 1))
	done
	kill -9 "$1" 2>/dev/null || true
}
