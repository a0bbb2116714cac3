#!/bin/bash
# Fault injection: tlspool attacked the way an on-path attacker can attack
# it, through tests/tools/faultproxy (a relay that cuts with a FIN or an
# RST, drips or stalls), and peers that vanish or refuse.  Both roles of
# tlspool-connect, and the API through tests/tools/api-reader.
#
#  1. a download cut (FIN, RST, the server killed) is an error, never EOF:
#     exit 2, "without close_notify", "after N bytes" with N the bytes
#     written out (RFC 8446 section 6.1: only close_notify ends a stream);
#  2. the same for an upload, seen by the server;
#  3. the controls: the same transfers through a plain relay end cleanly
#     with every byte;
#  4. the API: read() says EOF only after close_notify, ECONNRESET after
#     a cut, and starttls_end() says which;
#  5. handshake deadlines are absolute: a peer that drips one byte a
#     second, or stalls, is given up on at handshake_timeout_ms;
#  6. a client that the server rejects (no certificate) hears why and
#     fails, even in TLS 1.3 where its own handshake finished first;
#  7. the same for a server that refuses an authenticated client
#     (NO_REMOTE_DOMAIN, the authorization plugin).
#
# TLSA records are published for every port a client connects to: the
# TLSA owner name carries the port of the peer, here the proxy's.
. "$(dirname "$0")/common"
. scripts/ports.sh

FP="$BUILD/tests/faultproxy"
READER="$BUILD/tests/api-reader"
TLSAGEN="$BUILD/tests/tlsagen"
W="$T/w"
mkdir -p "$W"
tests/tools/mkcerts.sh "$W/c" >/dev/null 2>&1 || { echo "mkcerts failed"; exit 1; }
C="$W/c"
certtool --generate-privkey --key-type ecdsa --outfile "$W/client.key" 2>/dev/null
printf 'dc = test\ndc = example\ndc = client\ndns_name = client.example.test\nexpiration_days = 30\nsigning_key\ntls_www_client\n' >"$W/client.tmpl"
certtool --generate-self-signed --load-privkey "$W/client.key" \
	--template "$W/client.tmpl" --outfile "$W/client.pem" 2>/dev/null

# Ports below the ephemeral range (32768 and up by default), so that no
# outgoing connection of this or another test can hold one of them.
declare -A P
used=" "
low_port() {
	local p
	while :; do
		p=$((10000 + RANDOM % 20000))
		case $used in *" $p "*) continue ;; esac
		ss -Htan "sport = :$p" | grep -q . && continue
		used="$used$p "
		PORT=$p
		return
	done
}
for s in dlfin_s dlfin_p dlrst_s dlrst_p kill_s ulfin_s ulfin_p ulrst_s \
	ulrst_p dlpass_s dlpass_p ulpass_s ulpass_p apifin_s apifin_p \
	apirst_s apirst_p apipass_s apipass_p dripup_s dripup_p dripdown_s \
	dripdown_p stallup_s stallup_p stalldown_s stalldown_p certreq_s \
	certreq12_s nodomain_s authz_s linger_s linger_in_s; do
	low_port
	P[$s]=$PORT
done

{
	for s in "${!P[@]}"; do
		"$TLSAGEN" 3 1 1 "$C/www.pem" "_${P[$s]}._tcp.www.example.test."
	done
	"$TLSAGEN" 3 1 1 "$W/client.pem" "client.example.test."
} >"$W/example.add"
zones/serve start "$W/z" --add example.test "$W/example.add" 2>/dev/null ||
	{ echo "zones failed"; exit 1; }

pids=()
cleanup_all() {
	local f
	for f in "$T"/*.pid; do
		[ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null
	done
	for f in "${pids[@]}"; do kill "$f" 2>/dev/null; done
	wait 2>/dev/null
	zones/serve stop "$W/z" >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup_all EXIT

# conf HANDSHAKE_MS [LINES...]: the zones' [dns], the identities, [tls]
conf() {
	local ms=$1
	shift
	cat "$W/z/tlspool.conf"
	printf '[tls]\nhandshake_timeout_ms = %s\n' "$ms"
	printf '%s\n' "$@"
	printf '[identity www.example.test]\nkey = %s\ncertificate = %s\n' "$C/www.key" "$C/chain.pem"
	printf '[identity client.example.test]\nkey = %s\ncertificate = %s\n' "$W/client.key" "$W/client.pem"
}
conf 10000 >"$W/tlspool.conf"
conf 3000 >"$W/t3000.conf"
conf 10000 'priority = NORMAL:-VERS-TLS1.3' >"$W/tls12.conf"
printf 'www.example.test client.example.test deny\n* * allow\n' >"$W/rules"
conf 10000 '[authz]' "plugin = $(realpath "$BUILD/tlspool-authz-rules.so")" \
	"config = $W/rules" >"$W/authz.conf"
export TLSPOOL_CONFIG="$W/tlspool.conf"

head -c 10000000 /dev/urandom >"$W/10m"
head -c 1000000 "$W/10m" >"$W/1m"
# A stdin that never ends: a FIFO opened read and write by its reader.
mkfifo "$W/never"
NEVER="$W/never"

ok() { npass=$((npass + 1)); }
notok() {
	nfail=$((nfail + 1))
	echo "not ok: $*"
}
# is NAME WHAT GOT WANT
is() {
	if [ "$3" = "$4" ]; then ok; else notok "$1: $2: $3, want $4"; fi
}
# holds NAME WHAT EXPR...: the arithmetic or test expression holds
holds() {
	local name=$1 what=$2
	shift 2
	if "$@"; then ok; else notok "$name: $what"; fi
}
# has NAME FILE PATTERN [grep options]: FILE matches the ERE
has() {
	if grep -qE ${4:+"$4"} -- "$3" "$2"; then ok; else
		notok "$1: $(basename "$2") lacks /$3/"
		sed "s/^/  $(basename "$2"): /" "$2" | head -8
	fi
}
hasnt() {
	if grep -qE -- "$3" "$2"; then
		notok "$1: $(basename "$2") has /$3/"
	else ok; fi
}
# le A B: A <= B for decimals
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }

# proxy NAME LISTEN_PORT TARGET_PORT MODE [ARGS]: a faultproxy in the
# background; its stderr in $T/NAME.perr
proxy() {
	local name=$1 lp=$2 tp=$3
	shift 3
	"$FP" -l 60 "$lp" 127.0.0.1 "$tp" "$@" >/dev/null 2>"$T/$name.perr" &
	pids+=($!)
	wait_port "$lp"
}
# accepted NAME: the time the proxy accepted its connection
accepted() { sed -n 's/^accept //p' "$T/$1.perr"; }

# srv NAME PORT STDIN [OPTIONS...]: tlspool-connect --server in the
# background, stdin opened read-write (so that a FIFO never ends), stdout
# and stderr in $T/NAME.sout and $T/NAME.serr; its pid in $T/NAME.pid,
# its exit code and the time it exited in $T/NAME.rc.
srv() {
	local name=$1 port=$2 in=$3
	shift 3
	rm -f "$T/$name.rc" "$T/$name.pid"
	(
		"$CLI" --server --bind 127.0.0.1 "$@" "$port" <>"$in" \
			>"$T/$name.sout" 2>"$T/$name.serr" &
		echo $! >"$T/$name.pid"
		wait $!
		echo "$? $(date +%s.%N)" >"$T/$name.rc"
	) 2>/dev/null &
	pids+=($!)
	wait_port "$port"
}
# waitrc FILE SECONDS: the exit code in FILE ("RC TIME", written when a
# process ended), waiting up to SECONDS for it; "hung" if it never came.
waitrc() {
	local _
	for _ in $(seq $(($2 * 50))); do
		[ -s "$1" ] && break
		sleep 0.02
	done
	if [ -s "$1" ]; then cut -d' ' -f1 "$1"; else echo hung; fi
}
end_of() { cut -d' ' -f2 "$1" 2>/dev/null; }
# srv_rc NAME [SECONDS]: the server's exit code, waiting up to SECONDS
# (default 10); "hung" (and it is killed) if it did not exit by then.
srv_rc() {
	local rc
	rc=$(waitrc "$T/$1.rc" "${2:-10}")
	[ "$rc" = hung ] && kill -9 "$(cat "$T/$1.pid")" 2>/dev/null
	rm -f "$T/$1.pid"
	echo "$rc"
}
# check_srv NAME WANT [PATTERN]
check_srv() {
	local rc
	rc=$(srv_rc "$1")
	is "$1" "server exit" "$rc" "$2"
	[ "$rc" = "$2" ] || sed 's/^/  server stderr: /' "$T/$1.serr" | head -8
	[ -z "${3:-}" ] || has "$1" "$T/$1.serr" "$3"
}

# cli PORT STDIN [OPTIONS...]: tlspool-connect --client, bounded in time
# (CLI_LIMIT seconds, default 20; then exit 124)
cli() {
	local port=$1 in=$2
	shift 2
	timeout -k 2 "${CLI_LIMIT:-20}" "$CLI" --client --sni www.example.test \
		"$@" 127.0.0.1 "$port" <>"$in"
}
# bg_cli NAME PORT STDIN [OPTIONS...]: cli in the background, stdout and
# stderr in $T/NAME.cout and .cerr, "RC TIME" in $T/NAME.crc at its end.
bg_cli() {
	local name=$1
	shift
	rm -f "$T/$name.crc"
	(
		cli "$@" >"$T/$name.cout" 2>"$T/$name.cerr"
		echo "$? $(date +%s.%N)" >"$T/$name.crc"
	) 2>/dev/null &
	pids+=($!)
}
# crun NAME WANT -- CMD...: run CMD with stdout in $T/NAME.cout (data:
# never printed) and stderr in $T/NAME.cerr, and check its exit code.
crun() {
	local name=$1 want=$2 got
	shift 3
	"$@" >"$T/$name.cout" 2>"$T/$name.cerr"
	got=$?
	is "$name" "exit" "$got" "$want"
	[ "$got" = "$want" ] || sed 's/^/  stderr: /' "$T/$name.cerr" | head -8
}
# truncated NAME FILE_ERR FILE_OUT TOTAL: the report of a stream cut
# short of TOTAL bytes: "without close_notify", and "after N bytes" with
# N the bytes written out, fewer than TOTAL.
truncated() {
	local n
	n=$(wc -c <"$3")
	holds "$1" "$n bytes written out, want fewer than $4" [ "$n" -lt "$4" ]
	has "$1" "$2" 'without close_notify'
	has "$1" "$2" "after $n bytes"
}

# --- 1. a download cut short --------------------------------------------
for how in fin rst; do
	n=dl$how
	srv "$n" "${P[${n}_s]}" "$W/10m" --no-peer-cert
	proxy "$n" "${P[${n}_p]}" "${P[${n}_s]}" "cut-$how" down 300000
	crun "$n" 2 -- cli "${P[${n}_p]}" "$NEVER"
	truncated "$n" "$T/$n.cerr" "$T/$n.cout" 10000000
	holds "$n" "at most the 300000 bytes on the wire" \
		[ "$(wc -c <"$T/$n.cout")" -le 300000 ]
	srv_rc "$n" >/dev/null
done

# The server killed (SIGKILL) after it sent 1 MB of 10: it had no chance
# to send close_notify.
n=killed
mkfifo "$W/feed"
(head -c 1000000 "$W/10m"; exec sleep 30) >"$W/feed" &
feeder=$!
pids+=("$feeder")
srv "$n" "${P[kill_s]}" "$W/feed" --no-peer-cert
cli "${P[kill_s]}" "$NEVER" >"$T/$n.cout" 2>"$T/$n.cerr" &
cpid=$!
for _ in $(seq 500); do
	[ "$(stat -c %s "$T/$n.cout" 2>/dev/null || echo 0)" -ge 1000000 ] && break
	sleep 0.02
done
kill -9 "$(cat "$T/$n.pid")" 2>/dev/null
wait "$cpid"
is "$n" "client exit" $? 2
is "$n" "server exit (killed)" "$(srv_rc "$n")" 137
is "$n" "bytes written out" "$(wc -c <"$T/$n.cout")" 1000000
truncated "$n" "$T/$n.cerr" "$T/$n.cout" 10000000
kill "$feeder" 2>/dev/null

# --- 2. an upload cut short: the server tells -------------------------------
for how in fin rst; do
	n=ul$how
	srv "$n" "${P[${n}_s]}" "$NEVER" --no-peer-cert
	proxy "$n" "${P[${n}_p]}" "${P[${n}_s]}" "cut-$how" up 500000
	cli "${P[${n}_p]}" "$W/1m" >/dev/null 2>&1
	check_srv "$n" 2
	truncated "$n" "$T/$n.serr" "$T/$n.sout" 1000000
done

# --- 3. the controls: a plain relay, every byte, exit 0 ---------------------
n=dlpass
srv "$n" "${P[dlpass_s]}" "$W/10m" --no-peer-cert
proxy "$n" "${P[dlpass_p]}" "${P[dlpass_s]}" pass
crun "$n" 0 -- cli "${P[dlpass_p]}" "$NEVER"
is "$n" "sha256 of what arrived" "$(sha256sum <"$T/$n.cout")" "$(sha256sum <"$W/10m")"
hasnt "$n" "$T/$n.cerr" 'close_notify'
check_srv "$n" 0

n=ulpass
srv "$n" "${P[ulpass_s]}" "$NEVER" --no-peer-cert
proxy "$n" "${P[ulpass_p]}" "${P[ulpass_s]}" pass
crun "$n" 0 -- cli "${P[ulpass_p]}" "$W/1m"
check_srv "$n" 0
is "$n" "sha256 of what arrived" "$(sha256sum <"$T/$n.sout")" "$(sha256sum <"$W/1m")"

# --- 4. the API: EOF only after close_notify ------------------------------
for how in fin rst pass; do
	n=api$how
	srv "$n" "${P[${n}_s]}" "$W/1m" --no-peer-cert
	if [ "$how" = pass ]; then
		proxy "$n" "${P[${n}_p]}" "${P[${n}_s]}" pass
	else
		proxy "$n" "${P[${n}_p]}" "${P[${n}_s]}" "cut-$how" down 300000
	fi
	crun "$n" 0 -- timeout -k 2 20 "$READER" 127.0.0.1 "${P[${n}_p]}"
	out="$T/$n.cout"
	has "$n" "$out" '^peer=www\.example\.test$'
	got=$(sed -n 's/^bytes=\([0-9]*\) .*/\1/p' "$out")
	if [ "$how" = pass ]; then
		has "$n" "$out" '^bytes=1000000 end=eof$'
		has "$n" "$out" '^end-kind=close_notify alert=0 bytes_in=1000000 '
	else
		has "$n" "$out" '^bytes=[0-9]+ end=error errno=ECONNRESET$'
		holds "$n" "read ${got:-?} bytes, want fewer than 300000" [ "${got:-0}" -lt 300000 ]
		has "$n" "$out" "^end-kind=truncated alert=0 bytes_in=${got:-x} "
	fi
	srv_rc "$n" >/dev/null
done

# --- 5. handshake deadlines: absolute, from the start of the call ---------
# deadline NAME WHO RC END: WHO (client or server) gave up with exit 2,
# naming the 3000 ms deadline, 3 s to 3.3 s (3 s + 10 %) after the proxy
# accepted the connection (it connects to the server at once).
deadline() {
	local n=$1 who=$2 rc=$3 end=$4 start el
	start=$(accepted "$n")
	is "$n" "$who exit" "$rc" 2
	if [ "$rc" = hung ] || [ "$rc" = 124 ] || [ -z "$start" ] ||
		[ -z "$end" ]; then
		notok "$n: $who did not give up within 6 s"
		sed 's/^/  proxy: /' "$T/$n.perr"
	else
		el=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')
		echo "# $n: $who gave up after $el s"
		# 2.9: the client may start its clock a moment before the
		# proxy's accept() returns
		holds "$n" "$who gave up after $el s, before its deadline" \
			le 2.9 "$el"
		holds "$n" "$who gave up after $el s, want at most 3.3" \
			le "$el" 3.3
	fi
	has "$n" "$T/$n.$([ "$who" = server ] && echo serr || echo cerr)" '3000 ms'
}
# The four wait rather than compute: they run at once.  The server's
# deadline: the client's bytes drip (one a second, each in time for a
# per-read timeout), or stall; the client's deadline: the server's.
for c in "dripup drip up 1000" "stallup stall up 0"; do
	read -r n mode dir arg <<<"$c"
	srv "$n" "${P[${n}_s]}" "$NEVER" --no-peer-cert --config "$W/t3000.conf"
	proxy "$n" "${P[${n}_p]}" "${P[${n}_s]}" "$mode" "$dir" "$arg"
	bg_cli "$n" "${P[${n}_p]}" "$NEVER"
done
for c in "dripdown drip down 1000" "stalldown stall down 0"; do
	read -r n mode dir arg <<<"$c"
	srv "$n" "${P[${n}_s]}" "$NEVER" --no-peer-cert
	proxy "$n" "${P[${n}_p]}" "${P[${n}_s]}" "$mode" "$dir" "$arg"
	CLI_LIMIT=6 bg_cli "$n" "${P[${n}_p]}" "$NEVER" --config "$W/t3000.conf"
done
for n in dripup stallup; do
	rc=$(srv_rc "$n" 6)
	deadline "$n" server "$rc" "$(end_of "$T/$n.rc")"
done
for n in dripdown stalldown; do
	rc=$(waitrc "$T/$n.crc" 8)
	deadline "$n" client "$rc" "$(end_of "$T/$n.crc")"
done
# the other sides end with them
for n in dripup stallup; do waitrc "$T/$n.crc" 22 >/dev/null; done
for n in dripdown stalldown; do srv_rc "$n" >/dev/null; done

# --- 6. a client the server rejects hears why ------------------------------
# TLS 1.3: the client's handshake ends before the server looks at its
# (missing) certificate, so the refusal comes as an alert after the
# client printed "peer:"; it must still fail, and name the alert.  TLS
# 1.2: the server refuses within the handshake, and must say why.
alert_pat='certificate[ _]?(is )?required|bad[ _]certificate|certificate is bad'
for c in "certreq $W/tlspool.conf" "certreq12 $W/tls12.conf"; do
	read -r n cf <<<"$c"
	srv "$n" "${P[${n}_s]}" "$NEVER" --config "$cf"
	crun "$n" 4 -- cli "${P[${n}_s]}" "$NEVER" --no-local-cert
	has "$n" "$T/$n.cerr" "$alert_pat" -i
	check_srv "$n" 4 'presented no certificate'
done

# --- 7. a server that refuses an authenticated client ----------------------
# After the handshake, in both versions: the client must hear
# access_denied (exit 5), or at least fail as rejected (exit 4).
# refused NAME CONF SERVER_PATTERN [SERVER_OPTIONS...]
refused() {
	local n=$1 cf=$2 pat=$3 rc
	shift 3
	srv "$n" "${P[${n}_s]}" "$NEVER" --config "$cf" "$@"
	cli "${P[${n}_s]}" "$NEVER" --myname client.example.test \
		>"$T/$n.cout" 2>"$T/$n.cerr"
	rc=$?
	case $rc in
	4 | 5) ok ;;
	*)
		notok "$n: client exit $rc, want 5 (access denied) or 4"
		sed 's/^/  stderr: /' "$T/$n.cerr" | head -8
		;;
	esac
	has "$n" "$T/$n.cerr" 'access[ _]?(was )?denied' -i
	check_srv "$n" 5 "$pat"
}
refused nodomain "$W/tlspool.conf" \
	'client\.example\.test: domain peers refused' --no-remote-domain
refused authz "$W/authz.conf" \
	'rules:1: www\.example\.test client\.example\.test deny'


# --- 8. a half-close that would cut what we send is not a success ---------
# The client half-closes at once (stdin /dev/null) and reads slowly; the
# server still has most of 64 MiB to send when the peer's close_notify
# and --linger end its run: it must say so and exit 2, not 0.
n=linger
head -c 67108864 /dev/zero >"$W/64m"
srv "$n" "${P[linger_s]}" "$W/64m" --no-peer-cert
(cli "${P[linger_s]}" /dev/null 2>"$T/$n.cerr" | (sleep 3; cat >/dev/null))
check_srv "$n" 2 'standard input not finished'

# --- 9. ... nor is input left unread ----------------------------------------
# The server half-closes at once (stdin /dev/null) and reads everything;
# the client's --linger 0 ends its run at the server's close_notify with
# most of a 64 MiB file still unread, often with nothing read and unsent
# at that moment.  Everything delivered and 0, or exit 2 saying so: never
# 0 with less delivered (it was, with 448 KiB of 64 MiB).
n=linger_in
srv "$n" "${P[linger_in_s]}" /dev/null --no-peer-cert
cli "${P[linger_in_s]}" "$W/64m" --linger 0 >/dev/null 2>"$T/$n.cerr"
rc=$?
check_srv "$n" 0
got=$(stat -c %s "$T/$n.sout")
if [ "$got" = 67108864 ]; then
	is "$n" "client exit, all 64 MiB delivered" "$rc" 0
else
	is "$n" "client exit, $got of 67108864 bytes delivered" "$rc" 2
	has "$n" "$T/$n.cerr" 'standard input not finished'
fi
rm -f "$W/64m"

finish
