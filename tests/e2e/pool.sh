#!/bin/bash
# tlspoold end to end, as root: the daemon drops to nobody, whose key files
# (a key file, an OpenPGP key export, a PKCS#11 token's PIN) only it can
# read; applications run as other uids (setpriv) and reach the
# keys only through the daemon.  The ACL from SO_PEERCRED, NO_AUTHZ,
# checksni round trips, truncation and alerts as in the process (DTLS
# too), starttls_last_trace() in the application,
# starttls_end() through the daemon, a daemon that is not there or is
# killed mid-call or between two calls, garbage on its socket, protocol 2
# and 3 connections, descriptors and memory flat over 1,000 calls on one
# kept connection, 200 calls at once, fork() between calls, a changed euid,
# SIGHUP and SIGTERM; tlspool-connect
# unchanged through TLSPOOL_SOCKET and through [pool] socket.
. "$(dirname "$0")/common"
. scripts/ports.sh
[ "$(id -u)" = 0 ] || { echo "pool.sh: run as root (tests/run): it switches users"; exit 1; }

DAEMON="$BUILD/tlspoold"
LOAD="$BUILD/bench/pool_load"
DU=nobody            # the daemon's user
APP=12345            # an application the ACL names
OTHER=12346          # one it does not
W="$T/w"
mkdir -p "$W/keys" "$W/run" "$W/pub"
# others may pass through the directories, not list them; the socket's
# directory is the daemon's, as /run/tlspool is (dist/tmpfiles.d)
chmod 0711 "$T" "$W" "$W/pub"
chown "$DU" "$W/run"
chmod 0755 "$W/run"

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
# the client key in a SoftHSM token too, whose PIN only the daemon reads
mkdir "$W/keys/tokens"
printf 'directories.tokendir = %s/keys/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$W" >"$W/keys/softhsm2.conf"
export SOFTHSM2_CONF="$W/keys/softhsm2.conf"
softhsm2-util --init-token --free --label pool-test --pin 2468 --so-pin 1357 >/dev/null &&
	GNUTLS_PIN=2468 p11tool --login --write --load-privkey "$W/client.key" --label tok \
		'pkcs11:token=pool-test' >/dev/null 2>&1 &&
	certtool --load-privkey "$W/client.key" --pubkey-info --outfile "$W/client.pub" 2>/dev/null &&
	GNUTLS_PIN=2468 p11tool --login --write --load-pubkey "$W/client.pub" --label tok \
		'pkcs11:token=pool-test' >/dev/null 2>&1 ||
	{ echo "softhsm failed"; exit 1; }
echo 2468 >"$W/keys/pin"
# an OpenPGP identity (openpgp_key, a gpg secret key export) for the daemon
tests/tools/mkpgp.sh "$W/pgp" >/dev/null 2>&1 || { echo "mkpgp failed"; exit 1; }
cp "$W/pgp/ed.sec" "$W/keys/john.sec"
chown -R "$DU" "$W/keys"
chmod 0700 "$W/keys"
chmod 0600 "$W/keys/"*.key "$W/keys/pin" "$W/keys/john.sec"

# Ports below the ephemeral range (a port above it may be some connection's
# source port by the time a server binds it), in use by nothing, distinct.
declare -A P
low_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 12000))
		case " ${P[*]} " in *" $p "*) continue ;; esac
		ss -Htuan "sport = :$p" | grep -q . || { echo "$p"; return; }
	done
}
for s in echo trunc alert sni exec halfclose bulk silent hup dtls dtlsa dtlsb notlsa; do P[$s]=$(low_port); done
{
	for s in echo trunc alert sni exec halfclose bulk hup; do
		"$BUILD/tests/tlsagen" 3 1 1 "$C/www.pem" "_${P[$s]}._tcp.www.example.test."
	done
	for s in dtls dtlsa dtlsb; do
		"$BUILD/tests/tlsagen" 3 1 1 "$C/www.pem" "_${P[$s]}._udp.www.example.test."
	done
	"$BUILD/tests/tlsagen" 3 1 1 "$W/pub/client.pem" "client.example.test."
	"$BUILD/tests/tlsagen" 3 1 1 "$W/pub/client.pem" "token.example.test."
	echo "wrongclient.example.test. IN TLSA 3 1 1 $(printf '%064d' 0)"
	echo "$(printf john | sha256sum | cut -c1-56)._openpgpkey IN OPENPGPKEY $(base64 -w0 "$W/pgp/ed.pub")"
} >"$W/example.add"
zones/serve start "$W/z" --add example.test "$W/example.add" 2>/dev/null || { echo "zones failed"; exit 1; }
chmod 0711 "$W/z"
chmod 0644 "$W/z/root.key"

pids=()
dpid=
cleanup_all() {
	[ -n "$dpid" ] && { kill -9 "$dpid"; wait "$dpid"; } 2>/dev/null
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
		printf '[tls]\nhandshake_timeout_ms = 4000\ndtls_idle_timeout_ms = 1500\n'
		printf '[pool]\nsocket = %s\nuser = %s\nthreads = 4\nallow_no_authz_users = %s\npin_file = %s\n' \
			"$SOCK" "$DU" "$APP" "$W/keys/pin"
		printf '[identity www.example.test]\nkey = %s\ncertificate = %s\nallow_users = %s\n' \
			"$W/keys/www.key" "$W/pub/chain.pem" "$*"
		printf '[identity client.example.test]\nkey = %s\ncertificate = %s\nallow_users = %s\n' \
			"$W/keys/client.key" "$W/pub/client.pem" "$*"
		printf '[identity wrongclient.example.test]\nkey = %s\nallow_users = %s\n' \
			"$W/keys/client.key" "$*"
		printf '[identity token.example.test]\nkey = pkcs11:token=pool-test;object=tok;type=private\nallow_users = %s\n' "$*"
		printf '[identity john@example.test]\nopenpgp_key = %s\nallow_users = %s\n' "$W/keys/john.sec" "$*"
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
	printf '[tls]\nhandshake_timeout_ms = 4000\ndtls_idle_timeout_ms = 1500\n'
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
		2>"$T/server.err" >"$T/server.out"; echo $? >"$T/server.rc") 2>/dev/null &
	pids+=($!)
	wait_port "$port" || { sleep 0.2; sed 's/^/  server: /' "$T/server.err"; }
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

# the same through [pool] socket in the application's configuration
server "${P[echo]}" --no-peer-cert --exec cat
expect pool-config 0 -- bash -c "echo via-config | setpriv --reuid=$APP --regid=$APP --clear-groups \
	env TLSPOOL_CONFIG='$ACONF' '$CLI' --client --sni www.example.test 127.0.0.1 ${P[echo]}"
grep_in out pool-config '^via-config$'
server_rc >/dev/null

# --- the ACL from the caller's credentials ---
# a uid the ACL does not name: EACCES, although the key is one the
# daemon can read (and the caller cannot)
server "${P[exec]}" --exec cat
expect acl-refused 1 -- as "$OTHER" env TLSPOOL_SOCKET="$SOCK" "$CLI" --client \
	--sni www.example.test --myname client.example.test 127.0.0.1 "${P[exec]}"
grep_in err acl-refused 'client\.example\.test: the ACL \(allow_users, allow_groups\) does not admit uid 12346'
server_rc >/dev/null
grep -q "uid=$OTHER .* client myname=client.example.test .*EACCES (access)" "$W/daemon.log" && ok ||
	bad "acl-refused: no log line: $(tail -3 "$W/daemon.log")"
# the named uid presents the client identity, proven by its TLSA record
server "${P[exec]}" --exec 'echo "peer=$TLSPOOL_PEER"'
expect acl-client-cert 0 -- as "$APP" env TLSPOOL_SOCKET="$SOCK" "$CLI" --client \
	--sni www.example.test --myname client.example.test 127.0.0.1 "${P[exec]}"
grep_in out acl-client-cert '^peer=client\.example\.test$'
server_rc >/dev/null
# a key in a PKCS#11 token, logged in with the PIN of [pool] pin_file
server "${P[exec]}" --exec 'echo "peer=$TLSPOOL_PEER"'
expect pkcs11 0 -- as "$APP" env TLSPOOL_SOCKET="$SOCK" "$CLI" --client \
	--sni www.example.test --myname token.example.test 127.0.0.1 "${P[exec]}"
grep_in out pkcs11 '^peer=token\.example\.test$'
server_rc >/dev/null
# an OpenPGP key (openpgp_key) that only the daemon reads, proven by its
# OPENPGPKEY record; refused to a uid the ACL does not name
as "$APP" cat "$W/keys/john.sec" >/dev/null 2>&1 && bad "uid $APP reads john.sec" || ok
server "${P[exec]}" --exec cat
expect openpgp-refused 1 -- as "$OTHER" env TLSPOOL_SOCKET="$SOCK" "$CLI" --client \
	--sni www.example.test --myname john@example.test 127.0.0.1 "${P[exec]}" </dev/null
grep_in err openpgp-refused 'john@example\.test: the ACL \(allow_users, allow_groups\) does not admit uid 12346'
server_rc >/dev/null
server "${P[exec]}" --exec 'echo "peer=$TLSPOOL_PEER"'
expect openpgp 0 -- as "$APP" env TLSPOOL_SOCKET="$SOCK" "$CLI" --client \
	--sni www.example.test --myname john@example.test 127.0.0.1 "${P[exec]}" </dev/null
grep_in out openpgp '^peer=john@example\.test$'
server_rc >/dev/null
# the PIN is the file's: a wrong one, read again on SIGHUP, fails
echo 1111 >"$W/keys/pin"
kill -HUP "$dpid"
for _ in $(seq 50); do [ "$(grep -c "reloaded $DCONF" "$W/daemon.log")" -ge 1 ] && break; sleep 0.05; done
server "${P[exec]}" --exec 'echo "peer=$TLSPOOL_PEER"'
expect pkcs11-wrong-pin 1 -- as "$APP" env TLSPOOL_SOCKET="$SOCK" "$CLI" --client \
	--sni www.example.test --myname token.example.test 127.0.0.1 "${P[exec]}"
grep_in err pkcs11-wrong-pin 'token\.example\.test: key pkcs11:.*: Error in provided PIN'
server_rc >/dev/null
grep -q 'token pool-test refused the PIN of pin_file: not offered again until SIGHUP' "$W/daemon.log" &&
	ok || bad "pkcs11-wrong-pin: no log line"
echo 2468 >"$W/keys/pin"
kill -HUP "$dpid"
for _ in $(seq 50); do [ "$(grep -c "reloaded $DCONF" "$W/daemon.log")" -ge 2 ] && break; sleep 0.05; done
# an anonymous client needs no key: any uid may make one
server "${P[echo]}" --no-peer-cert --exec cat
expect anonymous-other 0 -- bash -c "echo anon | setpriv --reuid=$OTHER --regid=$OTHER --clear-groups \
	env TLSPOOL_SOCKET='$SOCK' '$CLI' --client --sni www.example.test 127.0.0.1 ${P[echo]}"
server_rc >/dev/null

# --- servers through the pool: checksni in the application ---
pserver() { # UID PORT [OPTIONS...]: a one-connection server through the pool
	local u=$1 port=$2
	shift 2
	(setpriv --reuid="$u" --regid="$u" --clear-groups env TLSPOOL_SOCKET="$SOCK" \
		"$CLI" --server --bind 127.0.0.1 "$@" "$port" 2>"$T/server.err" >"$T/server.out"
	 echo $? >"$T/server.rc") &
	pids+=($!)
	wait_port "$port"
}
pserver "$APP" "${P[sni]}" --no-peer-cert --sni-allow 'www.*' --exec 'echo "sni=$TLSPOOL_SNI"'
expect sni-allowed 0 -- env TLSPOOL_CONFIG="$CONF" "$CLI" --client --sni www.example.test \
	127.0.0.1 "${P[sni]}" </dev/null
grep_in out sni-allowed '^sni=www\.example\.test$'
[ "$(server_rc)" = 0 ] && ok || bad "sni-allowed: server: $(cat "$T/server.err")"
pserver "$APP" "${P[sni]}" --no-peer-cert --sni-allow 'mail.*' --exec cat
expect sni-refused 5 -- env TLSPOOL_CONFIG="$CONF" "$CLI" --client --sni www.example.test \
	127.0.0.1 "${P[sni]}" </dev/null
[ "$(server_rc)" = 5 ] && ok || bad "sni-refused: server exit not 5"
grep -q 'SNI "www.example.test" refused by checksni' "$T/server.err" && ok ||
	bad "sni-refused: server stderr: $(cat "$T/server.err")"
pserver "$OTHER" "${P[sni]}" --no-peer-cert --exec cat
expect server-acl 3 -- env TLSPOOL_CONFIG="$CONF" "$CLI" --client --sni www.example.test \
	127.0.0.1 "${P[sni]}" </dev/null
[ "$(server_rc)" = 1 ] && ok || bad "server-acl: server exit not 1 (EACCES)"
grep -q 'does not admit uid 12346' "$T/server.err" && ok || bad "server-acl: $(cat "$T/server.err")"

# --- NO_AUTHZ only for callers [pool] allow_no_authz_users names ---
server "${P[echo]}" --no-peer-cert --exec cat
expect no-authz-refused 5 -- as "$OTHER" env TLSPOOL_SOCKET="$SOCK" "$CLI" --client \
	--no-authz --sni www.example.test 127.0.0.1 "${P[echo]}"
grep_in err no-authz-refused 'STARTTLS_NO_AUTHZ through tlspoold: uid 12346 is not named by \[pool\] allow_no_authz_users'
server_rc >/dev/null
server "${P[echo]}" --no-peer-cert --exec cat
expect no-authz-allowed 0 -- as "$APP" env TLSPOOL_SOCKET="$SOCK" "$CLI" --client \
	--no-authz --sni www.example.test 127.0.0.1 "${P[echo]}" </dev/null
server_rc >/dev/null

# --- the relay in the daemon: half-close, truncation, alerts ---
server "${P[halfclose]}" --no-peer-cert --exec 'wc -c'
expect half-close 0 -- bash -c "printf 'twelve bytes' | setpriv --reuid=$APP --regid=$APP --clear-groups \
	env TLSPOOL_SOCKET='$SOCK' '$CLI' --client --sni www.example.test 127.0.0.1 ${P[halfclose]}"
grep_in out half-close '^ *12$'
server_rc >/dev/null
# the server dies after "part": ECONNRESET after the data, never EOF;
# starttls_end() answered by the daemon
server "${P[trunc]}" --no-peer-cert --exec 'printf part; sleep 0.3; kill -9 $PPID'
expect truncated 0 -- as "$APP" "$LOAD" -c "$ACONF" -m read 127.0.0.1 "${P[trunc]}" www.example.test
grep_in out truncated '^read: 4 bytes, then ECONNRESET$'
grep_in out truncated '^end: kind 2 alert 0 in 4 out 0: '
# starttls_last_trace() in the application: the daemon's, sent with the
# reply (the certificates, the TLSA owner, the records, the verdict)
grep_in out truncated "^trace: chain 3 owner _${P[trunc]}\._tcp\.www\.example\.test\. cache 0 records 1 dns 1 dane authenticated steps 1$"
server_rc >/dev/null
# tlspool-connect --diagnose through the pool: the daemon's trace
server "${P[notlsa]}" --no-peer-cert --exec cat
expect diagnose 4 -- as "$APP" env TLSPOOL_SOCKET="$SOCK" "$CLI" --client --diagnose \
	--sni www.example.test 127.0.0.1 "${P[notlsa]}" </dev/null
grep_in err diagnose '^; cert    depth 0: subject ".*"$'
grep_in err diagnose "^; query   _${P[notlsa]}\\._tcp\\.www\\.example\\.test\\. TLSA$"
server_rc >/dev/null
# a refused call's trace too: the lookup that found no TLSA record (a
# secure NXDOMAIN, verdict 3) and the peer's certificates
server "${P[notlsa]}" --no-peer-cert --exec cat
expect trace-refused 1 -- as "$APP" "$LOAD" -c "$ACONF" -m read 127.0.0.1 "${P[notlsa]}" www.example.test
grep_in out trace-refused '^call: E'
grep_in out trace-refused "^trace: chain 3 owner _${P[notlsa]}\._tcp\.www\.example\.test\. cache 0 records 0 dns 3 dane "
server_rc >/dev/null
# a server that refuses our certificate after the handshake: its alert
# reaches the application as ECONNRESET, and starttls_end() names it
server "${P[alert]}" --exec cat
expect alert 0 -- as "$APP" "$LOAD" -c "$ACONF" -m read -l wrongclient.example.test \
	127.0.0.1 "${P[alert]}" www.example.test
grep_in out alert '^read: 0 bytes, then ECONNRESET$'
grep_in out alert '^end: kind 3 alert 42 '
[ "$(server_rc)" = 4 ] && ok || bad "alert: server exit not 4"
# starttls_end() answers the user the daemon handed the connection to,
# and nobody else: the descriptor of a call made as $APP, asked about by
# $APP and by $OTHER (each in a process that got it from root), through
# libtlspool.so from Python (not with the sanitizers' library)
case "$BUILD" in
*asan*) ;;
*)
	server "${P[echo]}" --no-peer-cert --exec 'sleep 2'
	LD_LIBRARY_PATH="$BUILD" TLSPOOL_SOCKET="$SOCK" python3 - "$BUILD/libtlspool.so" \
		"${P[echo]}" "$APP" "$OTHER" <<'PY' >"$T/owner.out" 2>&1
import ctypes, encodings.idna, os, socket, sys  # nothing to import after setuid
lib = ctypes.CDLL(sys.argv[1], use_errno=True)
lib.starttls_errstr.restype = ctypes.c_char_p
port, app, other = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def become(uid):
    os.setgroups([]); os.setgid(uid); os.setuid(uid)
a, b = socket.socketpair()
pid = os.fork()
if pid == 0:
    become(app)
    t = socket.create_connection(("127.0.0.1", port))
    tls = lib.starttls_client(os.dup(t.fileno()), 6, None, 0, b"www.example.test", None, 0)
    t.close()
    if tls >= 0:
        socket.send_fds(b, [b"x"], [tls])
    else:
        print("call:", ctypes.get_errno(), lib.starttls_errstr(), flush=True)
    os._exit(0 if tls >= 0 else 1)
b.close()
a.settimeout(10)
_, fds, _, _ = socket.recv_fds(a, 1, 1)
os.waitpid(pid, 0)
def ask(uid):
    pid = os.fork()
    if pid == 0:
        become(uid)
        info = ctypes.create_string_buffer(256)
        r = lib.starttls_end(fds[0], info)
        os._exit(0 if r == 0 else ctypes.get_errno())
    return os.waitpid(pid, 0)[1] >> 8
print("app", ask(app))
print("other", ask(other))
PY
	grep -qx 'app 0' "$T/owner.out" && ok || bad "owner: the caller's own: $(cat "$T/owner.out")"
	grep -qx "other $(python3 -c 'import errno; print(errno.ENOENT)')" "$T/owner.out" && ok ||
		bad "owner: another uid: $(cat "$T/owner.out")"
	server_rc >/dev/null
	;;
esac

# a TCP server that accepts and never speaks
python3 -c "
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(8)
held = []
while True: held.append(s.accept()[0])" "${P[silent]}" &
pids+=($!)
wait_port "${P[silent]}"

# An application whose own handshake_timeout_ms (1 s) is shorter than the
# daemon's (4 s): the daemon says so, and the application waits for the
# daemon's answer (a timeout, from a peer that never speaks) instead of
# giving up at 2 x 1 s + 1 s.
printf '[tls]\nhandshake_timeout_ms = 1000\n[pool]\nsocket = %s\n' "$SOCK" >"$W/short.conf"
chmod 0644 "$W/short.conf"
(t0=$(date +%s%N)
 as "$APP" env TLSPOOL_CONFIG="$W/short.conf" "$CLI" --client --sni www.example.test \
	127.0.0.1 "${P[silent]}" </dev/null >/dev/null 2>"$T/short.err"
 echo "$? $(elapsed_ms "$t0")" >"$T/short.rc") &

# --- garbage on the socket: the daemon answers or drops, and goes on ---
python3 - "$SOCK" "${P[silent]}" <<'PY' >"$T/garbage.out" 2>&1
import os, socket, struct, sys, time
path = sys.argv[1]
def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(3)
    s.connect(path)
    return s
def answer(s):
    try:
        m = s.recv(2048)
    except socket.timeout:
        return "timeout"
    if len(m) < 12:
        return "closed" if not m else "short"
    t = struct.unpack(">HH", m[4:8])[1]
    if t == 5:
        res, err = struct.unpack(">ii", m[12:20])
        return "reply %d %d" % (res, err)
    return "type %d" % t
hdr = lambda t, n, v=2: struct.pack(">IHHI", 0x544C5350, v, t, n)
req = struct.pack(">IiIIII", 0, 6, 0, 0, 0, 10000) + b"\0" * 320 + b"\0" * 256
cases = []
s = conn(); s.send(os.urandom(300)); cases.append(("random", answer(s)))
s = conn(); s.send(hdr(1, len(req), v=1) + req); cases.append(("version 1", answer(s)))
s = conn(); s.send(hdr(1, len(req), v=4) + req); cases.append(("version 4", answer(s)))
s = conn(); s.send(hdr(1, len(req)) + req); cases.append(("no fd", answer(s)))
s = conn(); s.send(hdr(1, len(req) - 1) + req[:-1]); cases.append(("short body", answer(s)))
s = conn(); s.send(hdr(3, 256) + b"\0" * 256); cases.append(("wrong first type", answer(s)))
bad = b"x" * 320  # no NUL in myname
s = conn(); s.send(hdr(1, len(req)) + req[:24] + bad + b"\0" * 256); cases.append(("no NUL", answer(s)))
f = os.open("/etc/hostname", os.O_RDONLY)
s = conn(); socket.send_fds(s, [hdr(1, len(req)) + req], [f]); cases.append(("file fd", answer(s)))
s = conn(); s.close(); cases.append(("closed", "-"))
# the answer comes in the request's version; after it a connection of
# version 2 is closed, one of version 3 takes the next request
def vanswer(s):
    try:
        m = s.recv(2048)
    except socket.timeout:
        return "timeout"
    if not m:
        return "closed"
    return "v%d %s" % (struct.unpack(">H", m[4:6])[0],
                       "reply %d %d" % struct.unpack(">ii", m[12:20]))
s = conn()
socket.send_fds(s, [hdr(1, len(req), v=2) + req], [f])
cases.append(("keep v2", vanswer(s) + ", " + vanswer(s)))
s = conn()
socket.send_fds(s, [hdr(1, len(req), v=3) + req], [f])
a = vanswer(s)
socket.send_fds(s, [hdr(1, len(req), v=3) + req], [f])
cases.append(("keep v3", a + ", " + vanswer(s)))
r, w = os.pipe()
s = conn(); socket.send_fds(s, [hdr(1, len(req)) + req], [r, w]); cases.append(("two fds", answer(s)))
# a good call whose client goes away while it runs (its peer never
# answers): the daemon finds nobody to answer at the deadline
t = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
good = struct.pack(">IiIIII", 0, 6, 0, 2, 0, 10000) + b"\0" * 320 + b"www.example.test".ljust(256, b"\0")
s = conn(); socket.send_fds(s, [hdr(1, len(good)) + good], [t.fileno()]); t.close()
time.sleep(0.5); s.close()  # gone while its call runs
for name, got in cases:
    print("%s: %s" % (name, got))
PY
for want in 'random: reply -1 71' 'version 1: reply -1 71' 'version 4: reply -1 71' 'no fd: reply -1 71' \
	'keep v2: v2 reply -1 22, closed' 'keep v3: v3 reply -1 22, v3 reply -1 22' \
	'short body: reply -1 71' 'wrong first type: reply -1 71' 'no NUL: reply -1 71' \
	'file fd: reply -1 22' 'two fds: reply -1 71'; do
	grep -qx -- "$want" "$T/garbage.out" && ok || bad "garbage: no '$want' in: $(cat "$T/garbage.out")"
done
kill -0 "$dpid" 2>/dev/null && ok || bad "garbage: the daemon died"
server "${P[echo]}" --no-peer-cert --exec cat
expect after-garbage 0 -- as "$APP" env TLSPOOL_SOCKET="$SOCK" "$CLI" --client \
	--sni www.example.test 127.0.0.1 "${P[echo]}" </dev/null
server_rc >/dev/null

# --- DTLS through the pool ---
(TLSPOOL_CONFIG="$CONF" timeout 20 "$CLI" --server --udp --bind 127.0.0.1 --no-peer-cert \
	--exec cat "${P[dtls]}" >/dev/null 2>"$T/dtls.err") 2>/dev/null &
pids+=($!)
for _ in $(seq 100); do ss -Huln "sport = :${P[dtls]}" | grep -q . && break; sleep 0.05; done
expect dtls 0 -- bash -c "printf 'over-dtls\n' | setpriv --reuid=$APP --regid=$APP --clear-groups \
	env TLSPOOL_SOCKET='$SOCK' timeout 20 '$CLI' --client --udp --linger 1000 \
	--sni www.example.test 127.0.0.1 ${P[dtls]}"
grep_in out dtls '^over-dtls$'
# a DTLS connection that the peer leaves idle is cut (dtls_idle_timeout_ms):
# the application reads ECONNRESET after the data, in its own process and
# through the pool alike (the daemon's relay keeps the last message at the
# head of its end: tlspoold(8)), and starttls_end() says why
for where in dtlsa dtlsb; do
	(TLSPOOL_CONFIG="$CONF" timeout 20 "$CLI" --server --udp --bind 127.0.0.1 --no-peer-cert \
		--exec 'printf part; sleep 6' "${P[$where]}" >/dev/null 2>"$T/$where.err") 2>/dev/null &
	pids+=($!)
	for _ in $(seq 100); do ss -Huln "sport = :${P[$where]}" | grep -q . && break; sleep 0.05; done
done
expect dtls-idle-process 0 -- "$LOAD" -u -c "$CONF" -m read 127.0.0.1 "${P[dtlsa]}" www.example.test
cp "$T/out" "$T/idle-process.out"
expect dtls-idle-pool 0 -- as "$APP" "$LOAD" -u -c "$ACONF" -m read 127.0.0.1 "${P[dtlsb]}" www.example.test
cp "$T/out" "$T/idle-pool.out"
for where in process pool; do
	grep_in "idle-$where.out" "dtls-idle-$where" '^read: 4 bytes, then ECONNRESET$'
	grep_in "idle-$where.out" "dtls-idle-$where" '^end: kind 4 alert 0 in 4 out 0: no datagram either way'
	grep_in "idle-$where.out" "dtls-idle-$where" "^trace: chain 3 owner _[0-9]*\._udp\.www\.example\.test\. cache 0 records 1 dns 1 dane authenticated"
done

# --- SIGHUP: a new ACL for new calls; relayed connections stay ---
server "${P[hup]}" --no-peer-cert --exec cat
mkfifo "$T/in"
(setpriv --reuid="$APP" --regid="$APP" --clear-groups env TLSPOOL_SOCKET="$SOCK" \
	"$CLI" --client --sni www.example.test 127.0.0.1 "${P[hup]}" <"$T/in" >"$T/hup.out" 2>"$T/hup.err"
 echo $? >"$T/hup.rc") &
exec 7>"$T/in"
echo before-reload >&7
sleep 0.3
write_dconf "$OTHER"
kill -HUP "$dpid"
for _ in $(seq 50); do [ "$(grep -c "reloaded $DCONF" "$W/daemon.log")" -ge 3 ] && break; sleep 0.05; done
[ "$(grep -c "reloaded $DCONF" "$W/daemon.log")" -ge 3 ] && ok || bad "hup: no reload line: $(tail -2 "$W/daemon.log")"
echo after-reload >&7
exec 7>&-
for _ in $(seq 100); do [ -s "$T/hup.rc" ] && break; sleep 0.05; done
[ "$(cat "$T/hup.rc" 2>/dev/null)" = 0 ] && ok || bad "hup: client exit $(cat "$T/hup.rc" 2>/dev/null): $(cat "$T/hup.err")"
[ "$(tr '\n' ' ' <"$T/hup.out")" = "before-reload after-reload " ] && ok ||
	bad "hup: the connection across the reload carried: $(cat "$T/hup.out")"
server_rc >/dev/null
server "${P[exec]}" --exec cat
expect hup-acl-now-refuses 1 -- as "$APP" env TLSPOOL_SOCKET="$SOCK" "$CLI" --client \
	--sni www.example.test --myname client.example.test 127.0.0.1 "${P[exec]}" </dev/null
server_rc >/dev/null
server "${P[exec]}" --exec cat
expect hup-acl-now-admits 0 -- as "$OTHER" env TLSPOOL_SOCKET="$SOCK" "$CLI" --client \
	--sni www.example.test --myname client.example.test 127.0.0.1 "${P[exec]}" </dev/null
server_rc >/dev/null
# a configuration that does not load: the one in use stays
echo '[tsl]' >>"$DCONF"
kill -HUP "$dpid"
for _ in $(seq 50); do grep -q "the configuration in use stays" "$W/daemon.log" && break; sleep 0.05; done
grep -q "reload: .*\[tsl\]: unknown section; the configuration in use stays" "$W/daemon.log" && ok ||
	bad "hup: a broken file: $(tail -2 "$W/daemon.log")"
write_dconf "$APP"
kill -HUP "$dpid"
sleep 0.3

# the abandoned call has met its deadline (4 s) by now, and so has the
# application with the shorter timeout
for _ in $(seq 100); do [ -s "$T/short.rc" ] && break; sleep 0.05; done
read -r rc ms <"$T/short.rc"
[ "$rc" = 2 ] && ok || bad "short timeout: exit $rc: $(cat "$T/short.err")"
[ "$ms" -ge 3900 ] && ok || bad "short timeout: gave up after $ms ms, before the daemon"
grep -q 'TLS handshake did not finish within 4000 ms' "$T/short.err" && ok ||
	bad "short timeout: $(cat "$T/short.err")"
for _ in $(seq 100); do grep -q 'the client went away' "$W/daemon.log" && break; sleep 0.05; done
grep -q "uid=0 .* client myname=- sni=www.example.test: ETIMEDOUT (timeout): .*; the client went away" \
	"$W/daemon.log" && ok || bad "garbage: a client gone during its call: $(grep 'uid=0' "$W/daemon.log" | tail -3)"

# --- 1,000 calls one after another: the daemon's descriptors and memory
# stay flat; then 200 at once ---
gnutls-serv --echo -p "${P[bulk]}" --x509keyfile "$C/www.key" \
	--x509certfile "$C/chain.pem" >/dev/null 2>&1 &
pids+=($!)
wait_port "${P[bulk]}"
as "$APP" "$LOAD" -c "$ACONF" -n 100 127.0.0.1 "${P[bulk]}" www.example.test >"$T/warm.out"
sleep 0.5
fd0=$(ls "/proc/$dpid/fd" | wc -l)
rss0=$(awk '/^VmRSS/ {print $2}' "/proc/$dpid/status")
t0=$(date +%s%N)
expect sequential 0 -- as "$APP" "$LOAD" -c "$ACONF" -n 1000 127.0.0.1 "${P[bulk]}" www.example.test
grep_in out sequential '^calls 1000 ok 1000 failed 0 '
seq_ms=$(elapsed_ms "$t0")
# one connection carried all of them (protocol 3): the daemon says so
# when the application exits, and no other connection of its uid closed
for _ in $(seq 40); do grep -q 'closed by the client after 1000 calls' "$W/daemon.log" && break; sleep 0.05; done
[ "$(grep -c "uid=$APP pid=[0-9]*: closed by the client after 1000 calls$" "$W/daemon.log")" = 1 ] && ok ||
	bad "sequential: not one connection for 1000 calls: $(grep 'closed by the client' "$W/daemon.log" | tail -3)"
# the application's descriptors and memory flat from its 10th call on
read -r afd0 afd1 arss0 arss1 < <(awk '/^app fds/ {print $3, $4, $6, $7}' "$T/out")
[ -n "$afd1" ] && [ "$afd1" = "$afd0" ] && ok || bad "sequential: the application's descriptors went from $afd0 to $afd1"
case "$BUILD" in
*asan*) ;;
*) [ -n "$arss1" ] && [ $((arss1 - arss0)) -lt 4096 ] && ok ||
	bad "sequential: the application's RSS went from $arss0 kB to $arss1 kB" ;;
esac
sleep 0.5
fd1=$(ls "/proc/$dpid/fd" | wc -l)
rss1=$(awk '/^VmRSS/ {print $2}' "/proc/$dpid/status")
[ "$fd1" -le $((fd0 + 2)) ] && ok || bad "sequential: the daemon's descriptors went from $fd0 to $fd1"
# (AddressSanitizer's quarantine keeps freed memory: RSS says nothing there)
case "$BUILD" in
*asan*) ;;
*) [ $((rss1 - rss0)) -lt 4096 ] && ok || bad "sequential: the daemon's RSS went from $rss0 kB to $rss1 kB" ;;
esac
echo "# 1000 calls in $seq_ms ms; daemon fds $fd0 -> $fd1, RSS $rss0 -> $rss1 kB"
lines0=$(wc -l <"$W/daemon.log")
expect concurrent 0 -- as "$APP" "$LOAD" -c "$ACONF" -n 200 -j 200 127.0.0.1 "${P[bulk]}" www.example.test
grep_in out concurrent '^calls 200 ok 200 failed 0 '
sleep 0.5
fd2=$(ls "/proc/$dpid/fd" | wc -l)
[ "$fd2" -le $((fd0 + 2)) ] && ok || bad "concurrent: the daemon's descriptors went from $fd0 to $fd2"
# every call on a connection of its own or one kept from an earlier call,
# each connection with one call in flight: their counts add up to 200
conc_calls=$(tail -n +"$((lines0 + 1))" "$W/daemon.log" |
	sed -n "s/^tlspoold: uid=$APP pid=[0-9]*: closed by the client after \([0-9]*\) calls\{0,1\}$/\1/p" |
	awk '{s += $1} END {print s + 0}')
[ "$conc_calls" = 200 ] && ok || bad "concurrent: the connections closed carried $conc_calls calls, not 200"

# --- fork() between calls: the child never uses the parent's connection ---
expect fork 0 -- as "$APP" "$LOAD" -c "$ACONF" -m fork -n 20 127.0.0.1 "${P[bulk]}" www.example.test
grep_in out fork '^child pid [0-9]+ idle 0$'
grep_in out fork '^child calls 20 ok 20 idle 1$'
grep_in out fork '^parent calls 20 ok 20 idle 1$'
cpid=$(sed -n 's/^child pid \([0-9]*\) .*/\1/p' "$T/out")
for _ in $(seq 40); do grep -q "uid=$APP pid=$cpid: closed by the client" "$W/daemon.log" && break; sleep 0.05; done
# the child's 20 calls came on its own connection (SO_PEERCRED: its pid)
[ "$(grep -c "uid=$APP pid=$cpid client myname=- sni=www.example.test: ok" "$W/daemon.log")" = 20 ] && ok ||
	bad "fork: the child's calls: $(grep -c "pid=$cpid " "$W/daemon.log") lines of pid $cpid"
grep -q "uid=$APP pid=$cpid: closed by the client after 20 calls" "$W/daemon.log" && ok ||
	bad "fork: the child's connection: $(grep "pid=$cpid:" "$W/daemon.log")"

# --- a connection belongs to the credentials it was made with: a process
# that changes its effective uid (a setuid program) connects anew, and the
# ACL sees the new uid ---
expect euid-switch 0 -- "$LOAD" -c "$ACONF" -m switch -U "$APP:$OTHER" -l client.example.test \
	127.0.0.1 "${P[bulk]}" www.example.test
grep_in out euid-switch '^as A: ok$'
grep_in out euid-switch '^as B: EACCES \(access\): .*does not admit uid 12346'

# --- the daemon killed during a call: the caller fails at once ---
(as "$APP" env TLSPOOL_SOCKET="$SOCK" "$CLI" --client --sni www.example.test 127.0.0.1 \
	"${P[silent]}" </dev/null >/dev/null 2>"$T/killed.err"; echo $? >"$T/killed.rc") &
# and a connection the daemon relays: it is cut with the daemon
server "${P[echo]}" --no-peer-cert --exec 'printf x; sleep 5'
(as "$APP" "$LOAD" -c "$ACONF" -m read 127.0.0.1 "${P[echo]}" www.example.test >"$T/relayed.out") &
for _ in $(seq 60); do grep -q '^peer:' "$T/relayed.out" 2>/dev/null && break; sleep 0.05; done
sleep 0.3
t0=$(date +%s%N)
{ kill -9 "$dpid"; wait "$dpid"; } 2>/dev/null
for _ in $(seq 60); do [ -s "$T/killed.rc" ] && break; sleep 0.05; done
[ "$(cat "$T/killed.rc" 2>/dev/null)" = 2 ] && ok || bad "killed: client exit $(cat "$T/killed.rc" 2>/dev/null)"
[ "$(elapsed_ms "$t0")" -lt 2000 ] && ok || bad "killed: the client took $(elapsed_ms "$t0") ms"
grep -q "closed the connection during the call" "$T/killed.err" && ok || bad "killed: $(cat "$T/killed.err")"
for _ in $(seq 40); do grep -q '^end:' "$T/relayed.out" && break; sleep 0.05; done
grep -qx 'read: 1 bytes, then ECONNRESET' "$T/relayed.out" && ok || bad "killed: relayed: $(cat "$T/relayed.out")"
grep -qx 'end: ENOENT' "$T/relayed.out" && ok || bad "killed: relayed end: $(cat "$T/relayed.out")"
server_rc >/dev/null
dpid=
# a new daemon replaces the dead one's socket and serves at once
start_daemon
server "${P[echo]}" --no-peer-cert --exec cat
expect restarted 0 -- as "$APP" env TLSPOOL_SOCKET="$SOCK" "$CLI" --client \
	--sni www.example.test 127.0.0.1 "${P[echo]}" </dev/null
server_rc >/dev/null

# --- the daemon killed between two calls of one process: restarted, the
# second call succeeds on a new connection; not restarted, it fails at
# once with ECONNREFUSED; neither leaks a descriptor ---
between() { # RESTART(0/1): pool_load -m pause around a kill -9
	rm -f "$T/go"
	mkfifo "$T/go"
	(as "$APP" "$LOAD" -c "$ACONF" -m pause 127.0.0.1 "${P[bulk]}" www.example.test \
		<"$T/go" >"$T/between.out" 2>&1; echo $? >"$T/between.rc") &
	exec 8>"$T/go"
	for _ in $(seq 100); do grep -q '^first:' "$T/between.out" && break; sleep 0.05; done
	{ kill -9 "$dpid"; wait "$dpid"; } 2>/dev/null
	dpid=
	[ "$1" = 1 ] && start_daemon
	rm -f "$T/between.rc"
	t0=$(date +%s%N)
	echo go >&8
	exec 8>&-
	for _ in $(seq 100); do [ -s "$T/between.rc" ] && break; sleep 0.05; done
	between_ms=$(elapsed_ms "$t0")
}
between 1
grep -qx 'first: ok' "$T/between.out" && grep -qx 'second: ok' "$T/between.out" && ok ||
	bad "between, restarted: $(cat "$T/between.out")"
read -r bfd0 bfd1 bidle < <(awk '/^fds/ {print $2, $3, $5}' "$T/between.out")
[ -n "$bfd1" ] && [ "$bfd1" = "$bfd0" ] && [ "$bidle" = 1 ] && ok ||
	bad "between, restarted: descriptors $bfd0 -> $bfd1, $bidle kept"
between 0
grep -qx 'first: ok' "$T/between.out" && grep -q '^second: ECONNREFUSED (connection): no tlspoold listens at' "$T/between.out" &&
	ok || bad "between, not restarted: $(cat "$T/between.out")"
[ "$between_ms" -lt 2000 ] && ok || bad "between, not restarted: the call took $between_ms ms"
read -r bfd0 bfd1 bidle < <(awk '/^fds/ {print $2, $3, $5}' "$T/between.out")
[ -n "$bfd1" ] && [ "$bfd1" = $((bfd0 - 1)) ] && [ "$bidle" = 0 ] && ok ||
	bad "between, not restarted: descriptors $bfd0 -> $bfd1, $bidle kept"
start_daemon

# --- SIGTERM: a clean exit, the socket removed ---
kill -TERM "$dpid"
wait "$dpid"
rc=$?
dpid=
[ "$rc" = 0 ] && ok || bad "sigterm: exit $rc"
[ -e "$SOCK" ] && bad "sigterm: the socket is still there" || ok
grep -q "stopped; 0 relayed connections cut" "$W/daemon.log" && ok || bad "sigterm: $(tail -2 "$W/daemon.log")"

# --- socket activation: systemd's socket, the daemon started by the
# first call (systemd-socket-activate plays systemd) ---
# (systemd-socket-activate comes with systemd, which a minimal system lacks)
if command -v systemd-socket-activate >/dev/null; then
	ASOCK="$W/run/activated.sock"
	systemd-socket-activate --seqpacket -l "$ASOCK" "$DAEMON" -c "$DCONF" \
		2>>"$W/daemon.log" &
	dpid=$!
	for _ in $(seq 100); do [ -S "$ASOCK" ] && break; sleep 0.05; done
	chmod 0666 "$ASOCK"
	server "${P[echo]}" --no-peer-cert --exec cat
	expect activated 0 -- bash -c "echo activated | setpriv --reuid=$APP --regid=$APP --clear-groups \
		env TLSPOOL_SOCKET='$ASOCK' '$CLI' --client --sni www.example.test 127.0.0.1 ${P[echo]}"
	grep_in out activated '^activated$'
	server_rc >/dev/null
	grep -q 'listening on the socket from systemd as uid 65534' "$W/daemon.log" && ok ||
		bad "activated: $(tail -3 "$W/daemon.log")"
	kill -TERM "$dpid"
	wait "$dpid"
	dpid=
else
	echo "# socket activation not tested: no systemd-socket-activate"
fi

# --- out of descriptors: the daemon rests instead of spinning, then serves ---
ESOCK="$W/run/emfile.sock"
sed "s|^socket = .*|socket = $ESOCK|" "$DCONF" >"$W/emfile.conf"
chmod 0644 "$W/emfile.conf"
prlimit --nofile=64 "$DAEMON" -c "$W/emfile.conf" 2>>"$W/daemon.log" &
dpid=$!
for _ in $(seq 100); do [ -S "$ESOCK" ] && break; sleep 0.05; done
python3 - "$ESOCK" <<'PY' &
import socket, sys, time
held = []
for _ in range(100):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(sys.argv[1])
    held.append(s)
time.sleep(1.5)
PY
hpid=$!
sleep 0.3
c0=$(awk '{print $14 + $15}' "/proc/$dpid/stat")
sleep 1
c1=$(awk '{print $14 + $15}' "/proc/$dpid/stat")
grep -q 'out of descriptors (Too many open files): not accepting for 100 ms' "$W/daemon.log" && ok ||
	bad "emfile: no log line: $(tail -2 "$W/daemon.log")"
[ $((c1 - c0)) -lt 20 ] && ok || bad "emfile: the daemon used $((c1 - c0)) ticks in a second"
wait "$hpid"
sleep 0.2
server "${P[echo]}" --no-peer-cert --exec cat
expect emfile-after 0 -- as "$APP" env TLSPOOL_SOCKET="$ESOCK" "$CLI" --client \
	--sni www.example.test 127.0.0.1 "${P[echo]}" </dev/null
server_rc >/dev/null
kill -TERM "$dpid"
wait "$dpid"
dpid=

# --- one worker, 400 ms handshakes: a request that waited longer than
# that for the worker is refused without running (its wait counts from its
# arrival); with 1024 connections without a call, the next one is refused
# with EAGAIN; a connection that sends nothing is cut after 5 s ---
QSOCK="$W/run/one.sock"
sed -e "s|^socket = .*|socket = $QSOCK|" -e 's|^threads = .*|threads = 1|' \
	-e 's|^handshake_timeout_ms = .*|handshake_timeout_ms = 400|' "$DCONF" >"$W/one.conf"
chmod 0644 "$W/one.conf"
"$DAEMON" -c "$W/one.conf" 2>>"$W/daemon.log" &
dpid=$!
for _ in $(seq 100); do [ -S "$QSOCK" ] && break; sleep 0.05; done
python3 - "$QSOCK" <<'PY' >"$T/full.out" 2>&1 &
import os, resource, socket, struct, sys, time
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(10)
    s.connect(sys.argv[1])
    return s
t0 = time.monotonic()
held = [conn() for _ in range(1024)]
time.sleep(0.5)
req = struct.pack(">IiIIII", 0, 6, 0, 0, 0, 10000) + b"\0" * 576
a, b = socket.socketpair()
s = conn()
socket.send_fds(s, [struct.pack(">IHHI", 0x544C5350, 3, 1, len(req)) + req], [a.fileno()])
m = s.recv(2048)
print("full: reply %d %d" % struct.unpack(">ii", m[12:20]) if len(m) >= 20 else "full: %r" % m, flush=True)
for h in held[1:]:
    h.close()
try:
    eof = held[0].recv(16) == b""
except socket.timeout:
    eof = False
print("cut: %s after %.1f s" % ("EOF" if eof else "nothing", time.monotonic() - t0), flush=True)
PY
fpid=$!
for _ in $(seq 200); do grep -q '^full:' "$T/full.out" && break; sleep 0.05; done
grep -qx 'full: reply -1 11' "$T/full.out" && ok || bad "full: $(cat "$T/full.out")"
grep -q 'a connection refused: 1024 wait for a request or a worker' "$W/daemon.log" && ok ||
	bad "full: no log line: $(tail -2 "$W/daemon.log")"
sleep 0.3
for k in 1 2 3; do
	(as "$APP" env TLSPOOL_SOCKET="$QSOCK" "$CLI" --client --sni www.example.test \
		127.0.0.1 "${P[silent]}" </dev/null >/dev/null 2>"$T/wait$k.err"; echo $? >"$T/wait$k.rc") &
done
wait "$fpid"
for k in 1 2 3; do
	for _ in $(seq 100); do [ -s "$T/wait$k.rc" ] && break; sleep 0.05; done
done
[ "$(cat "$T"/wait[123].rc | sort -u)" = 2 ] && ok || bad "one worker: exits $(cat "$T"/wait[123].rc)"
grep -Eq 'the call waited [0-9]+ ms for a worker of tlspoold \(\[tls\] handshake_timeout_ms 400\)' \
	"$T"/wait[123].err && ok || bad "one worker: no call refused for its wait: $(cat "$T"/wait[123].err)"
grep -q 'TLS handshake did not finish within 400 ms' "$T"/wait[123].err && ok ||
	bad "one worker: no call ran: $(cat "$T"/wait[123].err)"
grep -Eq '^cut: EOF after (4\.[5-9]|5\.[0-9]|6\.[0-9]) s$' "$T/full.out" && ok || bad "cut: $(cat "$T/full.out")"
grep -q 'no request within 5000 ms: closed' "$W/daemon.log" && ok || bad "cut: no log line"
kill -TERM "$dpid"
wait "$dpid"
dpid=

# --- make install-daemon: the units, the tmpfiles entry, the man page ---
D="$T/root"
expect install-daemon 0 -- make -s install-daemon BUILD="$BUILD" DESTDIR="$D" PREFIX=/usr
for f in usr/sbin/tlspoold usr/share/man/man8/tlspoold.8 \
	usr/lib/systemd/system/tlspoold.service usr/lib/systemd/system/tlspoold.socket \
	usr/lib/tmpfiles.d/tlspool.conf; do
	[ -e "$D/$f" ] && ok || bad "install-daemon: $f missing"
done
grep -qx 'ExecStart=/usr/sbin/tlspoold -c /etc/tlspool.conf' "$D/usr/lib/systemd/system/tlspoold.service" &&
	ok || bad "install-daemon: ExecStart not filled in"
if command -v systemd-analyze >/dev/null; then
	mkdir "$T/units"
	for u in tlspoold.service tlspoold.socket; do
		sed -e "s|@SBINDIR@|$PWD/$BUILD|" -e 's|@SYSCONFDIR@|/etc|' "dist/systemd/$u" >"$T/units/$u"
	done
	expect units 0 -- systemd-analyze verify --man=no "$T/units/tlspoold.socket" "$T/units/tlspoold.service"
	[ -s "$T/err" ] && bad "units: $(cat "$T/err")" || ok
fi

# the sanitizers' reports of the daemons (BUILD=build-asan) land in its log
if grep -qE 'ERROR: [A-Za-z]+Sanitizer|runtime error:' "$W/daemon.log"; then
	bad "sanitizer: $(grep -m3 -E 'ERROR: [A-Za-z]+Sanitizer|runtime error:' "$W/daemon.log")"
else
	ok
fi

[ "$nfail" = 0 ] || sed "s/^/  daemon: /" "$W/daemon.log" | grep -v "client myname=- sni=www.example.test: ok" | tail -40
finish
