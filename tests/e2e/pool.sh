#!/bin/bash
# tlspoold end to end, as root: the daemon drops to nobody, whose key files
# only it can read; applications run as other uids (setpriv) and reach the
# keys only through the daemon.  The ACL from SO_PEERCRED, NO_AUTHZ,
# checksni round trips, truncation and alerts as in the process,
# starttls_end() through the daemon, a daemon that is not there or is
# killed mid-call, garbage on its socket, descriptors and memory flat over
# 1,000 calls, 200 calls at once, SIGHUP and SIGTERM; tlspool-connect
# unchanged through TLSPOOL_SOCKET and through [pool] socket.
. "$(dirname "$0")/common"
. scripts/ports.sh

DAEMON="$BUILD/tlspoold"
LOAD="$BUILD/bench/pool_load"
DU=nobody            # the daemon's user
APP=12345            # an application the ACL names
OTHER=12346          # one it does not
W="$T/w"
mkdir -p "$W/keys" "$W/run" "$W/pub"
# others may pass through the directories, not list them
chmod 0711 "$T" "$W" "$W/run" "$W/pub"

tests/tools/mkcerts.sh "$W/c" >/dev/null 2>&1 || { echo "mkcerts failed"; exit 1; }
C="$W/c"
certtool --generate-privkey --key-type ecdsa --outfile "$W/client.key" 2>/dev/null
printf 'dc = test\ndc = example\ndc = client\ndns_name = client.example.test\nexpiration_days = 30\nsigning_key\ntls_www_client\n' >"$W/client.tmpl"
certtool --generate-self-signed --load-privkey "$W/client.key" \
	--template "$W/client.tmpl" --outfile "$W/pub/client.pem" 2>/dev/null
cp "$C/chain.pem" "$W/pub/chain.pem"
chmod 0644 "$W/pub/"*
# the daemon's keys: nobody's, mode 0600, in a directory only it enters
cp "$C/www.key" "$W/keys/www.key"
cp "$W/client.key" "$W/keys/client.key"
chown -R "$DU" "$W/keys"
chmod 0700 "$W/keys"
chmod 0600 "$W/keys/"*

declare -A P
for s in echo trunc alert sni exec halfclose held conc; do P[$s]=$(free_port); done
{
	for s in echo trunc alert sni exec halfclose held conc; do
		"$BUILD/tests/tlsagen" 3 1 1 "$C/www.pem" "_${P[$s]}._tcp.www.example.test."
	done
	"$BUILD/tests/tlsagen" 3 1 1 "$W/pub/client.pem" "client.example.test."
	echo "wrongclient.example.test. IN TLSA 3 1 1 $(printf '%064d' 0)"
} >"$W/example.add"
zones/serve start "$W/z" --add example.test "$W/example.add" 2>/dev/null || { echo "zones failed"; exit 1; }
chmod 0711 "$W/z"
chmod 0644 "$W/z/root.key"

pids=()
dpid=
cleanup_all() {
	[ -n "$dpid" ] && kill -9 "$dpid" 2>/dev/null
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	zones/serve stop "$W/z" >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup_all EXIT

SOCK="$W/run/pool.sock"
DCONF="$W/tlspoold.conf"
write_dconf() { # ALLOWED_UID...
	{
		cat "$W/z/tlspool.conf"
		printf '[tls]\nhandshake_timeout_ms = 4000\n'
		printf '[pool]\nsocket = %s\nuser = %s\nthreads = 4\nallow_no_authz_users = %s\n' \
			"$SOCK" "$DU" "$APP"
		printf '[identity www.example.test]\nkey = %s\ncertificate = %s\nallow_users = %s\n' \
			"$W/keys/www.key" "$W/pub/chain.pem" "$*"
		printf '[identity client.example.test]\nkey = %s\ncertificate = %s\nallow_users = %s\n' \
			"$W/keys/client.key" "$W/pub/client.pem" "$*"
		printf '[identity wrongclient.example.test]\nkey = %s\nallow_users = %s\n' \
			"$W/keys/client.key" "$*"
	} >"$DCONF.new"
	chmod 0644 "$DCONF.new"
	mv "$DCONF.new" "$DCONF"
}
write_dconf "$APP"

# The in-process side (servers and clients as root): its own configuration
# and keys, read by itself.
CONF="$W/tlspool.conf"
{
	cat "$W/z/tlspool.conf"
	printf '[tls]\nhandshake_timeout_ms = 4000\n'
	printf '[identity www.example.test]\nkey = %s\ncertificate = %s\n' "$C/www.key" "$C/chain.pem"
} >"$CONF"
chmod 0644 "$CONF"
# An application's configuration that names the pool only.
ACONF="$W/app.conf"
printf '[pool]\nsocket = %s\n' "$SOCK" >"$ACONF"
chmod 0644 "$ACONF"

start_daemon() {
	"$DAEMON" -c "$DCONF" 2>>"$W/daemon.log" &
	dpid=$!
	for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
	sleep 0.1
}
as() { # UID CMD...: run CMD as that uid and gid, no groups
	local u=$1
	shift
	setpriv --reuid="$u" --regid="$u" --clear-groups "$@"
}
server() { # PORT [OPTIONS...]: one connection, in the process, as root
	local port=$1
	shift
	(TLSPOOL_CONFIG="$CONF" "$CLI" --server --bind 127.0.0.1 "$@" "$port" \
		2>"$T/server.err" >"$T/server.out"; echo $? >"$T/server.rc") &
	pids+=($!)
	wait_port "$port"
}
server_rc() {
	for _ in $(seq 100); do [ -s "$T/server.rc" ] && break; sleep 0.05; done
	cat "$T/server.rc" 2>/dev/null
	rm -f "$T/server.rc"
}
ok() { npass=$((npass + 1)); }
bad() { nfail=$((nfail + 1)); echo "not ok: $*"; }
elapsed_ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

# --- no daemon: an errno at once, never a hang ---
t0=$(date +%s%N)
server "${P[echo]}" --no-peer-cert --exec cat
expect no-daemon 2 -- as "$APP" env TLSPOOL_SOCKET="$SOCK" TLSPOOL_CONFIG=/nonexistent \
	"$CLI" --client --sni www.example.test 127.0.0.1 "${P[echo]}"
grep_in err no-daemon "no tlspoold listens at $SOCK"
[ "$(elapsed_ms "$t0")" -lt 3000 ] && ok || bad "no-daemon: took $(elapsed_ms "$t0") ms"
server_rc >/dev/null
# a socket nobody listens on: ECONNREFUSED, the same answer
python3 -c "import socket,sys; s=socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); s.bind(sys.argv[1])" "$W/run/dead.sock"
chmod 0666 "$W/run/dead.sock"
server "${P[echo]}" --no-peer-cert --exec cat
expect dead-socket 2 -- as "$APP" env TLSPOOL_SOCKET="$W/run/dead.sock" \
	"$CLI" --client --sni www.example.test 127.0.0.1 "${P[echo]}"
grep_in err dead-socket "no tlspoold listens at .*Connection refused"
server_rc >/dev/null

# --- the daemon, as nobody ---
start_daemon
if [ "$(awk '/^Uid:/ {print $2 $3 $4 $5}' "/proc/$dpid/status")" = "65534655346553465534" ]; then
	ok; else bad "the daemon runs as $(grep '^Uid:' "/proc/$dpid/status")"; fi
grep -q "listening on $SOCK as uid 65534" "$W/daemon.log" && ok || bad "no start line: $(cat "$W/daemon.log")"
# the applications cannot read the keys themselves
as "$APP" cat "$W/keys/www.key" >/dev/null 2>&1 && bad "uid $APP reads the key" || ok

# an admitted uid: authenticated, data both ways, through TLSPOOL_SOCKET
server "${P[echo]}" --no-peer-cert --exec cat
expect admitted 0 -- bash -c "echo hello-pool | setpriv --reuid=$APP --regid=$APP --clear-groups \
	env TLSPOOL_SOCKET='$SOCK' '$CLI' --client --sni www.example.test 127.0.0.1 ${P[echo]}"
grep_in out admitted '^hello-pool$'
grep_in err admitted '^peer: www\.example\.test$'
[ "$(server_rc)" = 0 ] && ok || bad "admitted: server failed: $(cat "$T/server.err")"

finish
