# shellcheck shell=bash
# tests/tools/servers-common.sh -- sourced by tests/e2e/servers_*.sh, the
# tests against real servers (Postfix, Dovecot, Prosody, slapd,
# PostgreSQL) started from Debian's packages in a scratch directory.
# Source it after tests/e2e/common and scripts/ports.sh.
#
#   need_root_and CMD...   skip (exit 77, see tests/run) unless root and
#                          every CMD is found (in PATH, /usr/sbin or as
#                          an absolute path)
#   need_cmds CMD...       the same without the need for root
#   srv_setup              W=$T/w (searchable by the servers' users),
#                          C=$W/c holding a test CA (root.pem, root.key)
#   leaf NAME DNSNAME      C/NAME.key, C/NAME.pem (DNSNAME, issued by
#                          root), C/NAME.chain (leaf + root)
#   tlsa U S M FILE OWNER  one TLSA line for the test zones
#   check NAME COND...     count a pass when the command COND succeeds
#   file_has NAME FILE PATTERN   FILE matches the extended regex
#   file_lacks NAME FILE PATTERN
#   await_tls              in the feeder of a tlspool-connect run under
#                          expect: wait until the run is through its
#                          handshake (or has failed)
#   timed NAME             print how long the script ran so far
PATH=$PATH:/usr/sbin

need_root_and() {
	if [ "$(id -u)" != 0 ]; then
		echo "skip: $(basename "$0") needs root (the servers drop to their own users)"
		exit 77
	fi
	need_cmds "$@"
}

need_cmds() {
	local c
	for c in "$@"; do
		if [ "${c#/}" != "$c" ]; then
			[ -x "$c" ] && continue
		else
			command -v "$c" >/dev/null 2>&1 && continue
		fi
		echo "skip: $(basename "$0") needs $c (scripts/deps)"
		exit 77
	done
}

srv_setup() {
	W="$T/w"
	C="$W/c"
	mkdir -p "$C"
	# the servers' own users (postfix, dovecot, nobody, prosody,
	# postgres) read their files below $T
	chmod 755 "$T" "$W"
	certtool --generate-privkey --key-type ecdsa --outfile "$C/root.key" 2>/dev/null
	printf 'cn = "tlspool servers test root"\nca\ncert_signing_key\nexpiration_days = 30\n' >"$C/root.tmpl"
	certtool --generate-self-signed --load-privkey "$C/root.key" \
		--template "$C/root.tmpl" --outfile "$C/root.pem" 2>/dev/null ||
		{ echo "certtool failed"; exit 1; }
	SRV_T0=$(date +%s.%N)
}

leaf() { # NAME DNSNAME
	certtool --generate-privkey --key-type ecdsa --outfile "$C/$1.key" 2>/dev/null
	printf 'cn = "%s"\ndns_name = "%s"\nsigning_key\nencryption_key\ntls_www_server\ntls_www_client\nexpiration_days = 30\n' \
		"$2" "$2" >"$C/$1.tmpl"
	certtool --generate-certificate --load-privkey "$C/$1.key" \
		--load-ca-certificate "$C/root.pem" --load-ca-privkey "$C/root.key" \
		--template "$C/$1.tmpl" --outfile "$C/$1.pem" 2>/dev/null ||
		{ echo "certtool failed for $1"; exit 1; }
	cat "$C/$1.pem" "$C/root.pem" >"$C/$1.chain"
}

tlsa() { # USAGE SELECTOR MTYPE CERT OWNER
	"$BUILD/tests/tlsagen" "$1" "$2" "$3" "$4" "$5"
}

check() { # NAME CMD...
	local name=$1
	shift
	if "$@"; then
		npass=$((npass + 1))
	else
		nfail=$((nfail + 1))
		echo "not ok: $name: $*"
	fi
}

file_has() { # NAME FILE PATTERN
	if grep -qE -- "$3" "$2" 2>/dev/null; then
		npass=$((npass + 1))
	else
		nfail=$((nfail + 1))
		echo "not ok: $1: $(basename "$2") lacks /$3/"
		sed "s/^/  $(basename "$2"): /" "$2" 2>/dev/null | tail -20
	fi
}

file_lacks() { # NAME FILE PATTERN
	if grep -qE -- "$3" "$2" 2>/dev/null; then
		nfail=$((nfail + 1))
		echo "not ok: $1: $(basename "$2") has /$3/"
		grep -E -- "$3" "$2" | sed "s/^/  $(basename "$2"): /" | head -5
	else
		npass=$((npass + 1))
	fi
}

# wait_for FILE PATTERN: up to 5 s until FILE matches (a server's log is
# written after the client has gone)
wait_for() {
	for _ in $(seq 100); do
		grep -qE -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# await_tls: the feeder of "FEEDER | tlspool-connect ..." run by expect
# (stderr in $T/err) waits until the "peer:" line or an error is there, up
# to 5 s, so that the protocol after STARTTLS starts once TLS is up and a
# loaded machine cannot make it run ahead of the server's replies.
await_tls() {
	for _ in $(seq 250); do
		grep -qE '^(peer: |tlspool-connect: )' "$T/err" 2>/dev/null && return 0
		sleep 0.02
	done
	return 0
}

timed() {
	echo "$(basename "$0"): $1 after $(awk -v a="$SRV_T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
}
