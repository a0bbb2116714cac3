#!/bin/bash
# tlspool-connect --client and --server end to end, against zones signed
# for this run with TLSA records of certificates made for this run, and
# against real peers: gnutls-serv, gnutls-cli, openssl s_server, s_client.
# Asserts exit codes, stdout and stderr.
. "$(dirname "$0")/common"
. scripts/ports.sh

W="$T/w"
mkdir -p "$W"
tests/tools/mkcerts.sh "$W/c" >/dev/null 2>&1 || { echo "mkcerts failed"; exit 1; }
TLSAGEN="$BUILD/tests/tlsagen"
certtool --generate-privkey --key-type ecdsa --outfile "$W/client.key" 2>/dev/null
printf 'dc = test\ndc = example\ndc = client\ndns_name = client.example.test\nexpiration_days = 30\nsigning_key\ntls_www_client\n' >"$W/client.tmpl"
certtool --generate-self-signed --load-privkey "$W/client.key" \
	--template "$W/client.tmpl" --outfile "$W/client.pem" 2>/dev/null

declare -A P
for s in good ta_root ta_inter wrong bogus expired insecure notlsa cname \
	sniallow certreq exec big halfclose gnutls openssl sclient gcli fork fd \
	sclientcert anypeer anyfd hostname nosni nosniok longsni longok maxch \
	rlimit emfile trunc truncsrv clean; do
	P[$s]=$(free_port)
done

tlsa() { # USAGE SELECTOR MTYPE CERT OWNER
	"$TLSAGEN" "$1" "$2" "$3" "$4" "$5"
}
C="$W/c"
{
	tlsa 3 1 1 "$C/www.pem" "_${P[good]}._tcp.www.example.test."
	tlsa 2 0 1 "$C/root.pem" "_${P[ta_root]}._tcp.www.example.test."
	tlsa 2 1 1 "$C/inter.pem" "_${P[ta_inter]}._tcp.www.example.test."
	tlsa 3 1 1 "$C/other.pem" "_${P[wrong]}._tcp.www.example.test."
	echo "_${P[cname]}._tcp.alias.example.test. IN CNAME _${P[good]}._tcp.www.example.test."
	for s in sniallow certreq exec big halfclose gnutls openssl sclient gcli \
		fork fd sclientcert anypeer anyfd maxch trunc clean; do
		tlsa 3 1 1 "$C/www.pem" "_${P[$s]}._tcp.www.example.test."
	done
	tlsa 3 1 1 "$W/client.pem" "client.example.test."
} >"$W/example.add"
tlsa 3 1 1 "$C/www.pem" "_${P[bogus]}._tcp.www.bogus.test." >"$W/bogus.add"
tlsa 3 1 1 "$C/www.pem" "_${P[expired]}._tcp.www.expired.test." >"$W/expired.add"
tlsa 3 1 1 "$C/www.pem" "_${P[insecure]}._tcp.www.insecure.test." >"$W/insecure.add"
zones/serve start "$W/z" --add example.test "$W/example.add" \
	--add bogus.test "$W/bogus.add" --add expired.test "$W/expired.add" \
	--add insecure.test "$W/insecure.add" 2>/dev/null || { echo "zones failed"; exit 1; }
pids=()
cleanup_all() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	zones/serve stop "$W/z" >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup_all EXIT

CONF="$W/tlspool.conf"
{
	cat "$W/z/tlspool.conf"
	printf '[tls]\nhandshake_timeout_ms = 5000\n'
	for n in www.example.test www.bogus.test www.expired.test www.insecure.test alias.example.test; do
		printf '[identity %s]\nkey = %s\ncertificate = %s\n' "$n" "$C/www.key" "$C/chain.pem"
	done
	printf '[identity client.example.test]\nkey = %s\ncertificate = %s\n' "$W/client.key" "$W/client.pem"
} >"$CONF"
export TLSPOOL_CONFIG="$CONF"


# server PORT [OPTIONS...]: a one-connection tlspool-connect server in the
# background; its stderr goes to $T/server.err, its exit code to $T/server.rc
server() {
	local port=$1
	shift
	("$CLI" --server --bind 127.0.0.1 "$@" "$port" 2>"$T/server.err" >"$T/server.out"
	 echo $? >"$T/server.rc") &
	pids+=($!)
	wait_port "$port"
}
server_rc() {
	local i
	for i in $(seq 100); do [ -s "$T/server.rc" ] && break; sleep 0.05; done
	cat "$T/server.rc" 2>/dev/null
	rm -f "$T/server.rc"
}
check_server() { # NAME WANT_RC [PATTERN]
	local rc
	rc=$(server_rc)
	if [ "$rc" = "$2" ]; then npass=$((npass + 1)); else
		nfail=$((nfail + 1))
		echo "not ok: $1: server exit $rc, want $2"
		sed 's/^/  server stderr: /' "$T/server.err"
	fi
	if [ -n "${3:-}" ]; then
		if grep -qE -- "$3" "$T/server.err"; then npass=$((npass + 1)); else
			nfail=$((nfail + 1))
			echo "not ok: $1: server stderr lacks /$3/"
			sed 's/^/  server stderr: /' "$T/server.err"
		fi
	fi
}
client() { # PORT SNI [OPTIONS...] (stdin from the caller)
	local port=$1 sni=$2
	shift 2
	"$CLI" --client --sni "$sni" "$@" 127.0.0.1 "$port"
}
export CLI
export -f client

# --- failures: exit codes and one-line reasons ---
for case in "wrong:www.example.test:4:_${P[wrong]}._tcp.www.example.test.: " \
	"bogus:www.bogus.test:6:TLSA RRset is bogus" \
	"expired:www.expired.test:6:RRSIG expired" \
	"insecure:www.insecure.test:4:insecure" \
	"notlsa:www.example.test:4:_${P[notlsa]}._tcp.www.example.test"; do
	IFS=: read -r name sni code pat <<<"$case"
	server "${P[$name]}" --no-peer-cert --exec 'cat'
	expect "$name" "$code" -- bash -c "echo hi | client ${P[$name]} $sni"
	grep_in err "$name" "$pat"
	no_grep_in out "$name" 'hi'
	server_rc >/dev/null
done

# --diagnose: the trace of a failure, record by record
server "${P[wrong]}" --no-peer-cert --exec 'cat'
expect diagnose 4 -- bash -c "echo hi | client ${P[wrong]} www.example.test --diagnose"
grep_in err diagnose '^; cert    depth 0: subject ".*"$'
grep_in err diagnose '^;           SPKI SHA2-256 [0-9A-F]{64}$'
grep_in err diagnose "^; query   _${P[wrong]}\\._tcp\\.www\\.example\\.test\\. TLSA$"
grep_in err diagnose '^; verdict secure: '
grep_in err diagnose '^; record  1: 3 1 1 \(DANE-EE\): '
grep_in err diagnose '^; dane    no-match: '
server_rc >/dev/null

# --json: one document on stderr (and nothing else there), valid against
# the schema, whose verdict agrees with the exit code
jsonerr() { cat "$T/err"; }
# (a connection that was made has its document once it ended, with "end")
for case in "good:www.example.test:0:authenticated:secure:ok" \
	"bogus:www.bogus.test:6:dns-error:bogus:dns-bogus" \
	"wrong:www.example.test:4:no-match:secure:no-match"; do
	IFS=: read -r name sni code verdict dnsv class <<<"$case"
	server "${P[$name]}" --no-peer-cert --exec 'cat'
	expect "json-$name" "$code" -- bash -c "echo hi | client ${P[$name]} $sni --json"
	json_valid "json-$name" err
	if jsonerr | jq -e --arg v "$verdict" --arg d "$dnsv" --argjson c "$code" --arg k "$class" \
		'.verdict == $v and .dns.verdict == $d and .exit_code == $c and .class == $k and (.chain|length) >= 1 and ((.records|length) >= 1 or $v == "dns-error") and ((.end != null) == ($c == 0))' >/dev/null; then
		npass=$((npass + 1))
	else
		nfail=$((nfail + 1)); echo "not ok: json-$name: $(jsonerr | head -c 400)"
	fi
	server_rc >/dev/null
done

server "${P[sniallow]}" --no-peer-cert --sni-allow 'mail.*' --exec cat
expect sni-allow 5 -- bash -c "echo hi | client ${P[sniallow]} www.example.test"
check_server sni-allow 5 'refused by checksni'

server "${P[certreq]}" --exec cat
# In TLS 1.3 the client may finish its handshake before the server
# refuses it: the client's exit code depends on timing, its output not.
bash -c "echo hi | client ${P[certreq]} www.example.test --no-local-cert" >"$T/out" 2>"$T/err"
no_grep_in out cert-required 'hi'
check_server cert-required 4 'presented no certificate'

# --- successes ---
for name in good ta_root ta_inter cname; do
	sni=www.example.test
	[ "$name" = cname ] && sni=alias.example.test
	server "${P[$name]}" --no-peer-cert --exec 'cat'
	expect "$name" 0 -- bash -c "echo hello-$name | client ${P[$name]} $sni"
	grep_in out "$name" "^hello-$name\$"
	grep_in err "$name" "^peer: $sni\$"
	check_server "$name" 0 '^peer: \(anonymous\)$'
done

# mutual authentication, and --exec gets the environment
server "${P[exec]}" --exec 'echo "peer=$TLSPOOL_PEER local=$TLSPOOL_LOCAL sni=$TLSPOOL_SNI"'
expect exec 0 -- bash -c "client ${P[exec]} www.example.test --myname client.example.test </dev/null"
grep_in out exec '^peer=client\.example\.test local=www\.example\.test sni=www\.example\.test$'
check_server exec 0 '^peer: client\.example\.test$'

# half-close: the server answers only after our EOF
server "${P[halfclose]}" --no-peer-cert --exec 'wc -c'
expect half-close 0 -- bash -c "printf 'twelve bytes' | client ${P[halfclose]} www.example.test"
grep_in out half-close '^ *12$'
check_server half-close 0

# 64 MiB each way at once, checked by digest
head -c $((64 << 20)) /dev/urandom >"$W/big"
server "${P[big]}" --no-peer-cert --exec 'cat'
expect big 0 -- bash -c "client ${P[big]} www.example.test <'$W/big' >'$W/big.back'"
if cmp -s "$W/big" "$W/big.back"; then npass=$((npass + 1)); else
	nfail=$((nfail + 1)); echo "not ok: big: 64 MiB came back different ($(stat -c %s "$W/big.back") bytes)"; fi
check_server big 0

# --- interop: real peers ---
# tlspool-connect --client against gnutls-serv
gnutls-serv --echo -p "${P[gnutls]}" --x509keyfile "$C/www.key" \
	--x509certfile "$C/chain.pem" >/dev/null 2>&1 &
pids+=($!)
wait_port "${P[gnutls]}"
expect gnutls-serv 0 -- bash -c "echo via-gnutls | timeout 20 bash -c 'client ${P[gnutls]} www.example.test'"
grep_in out gnutls-serv '^via-gnutls$'
grep_in err gnutls-serv '^peer: www\.example\.test$'

# tlspool-connect --client against openssl s_server (-rev: lines reversed)
openssl s_server -accept "${P[openssl]}" -key "$C/www.key" -cert "$C/www.pem" \
	-cert_chain "$C/chain.pem" -rev -quiet >/dev/null 2>&1 &
pids+=($!)
wait_port "${P[openssl]}"
expect s_server 0 -- bash -c "(echo abc; sleep 1) | timeout 20 bash -c 'client ${P[openssl]} www.example.test'"
grep_in out s_server '^cba$'

# openssl s_client against tlspool-connect --server, itself checking DANE
rr=$("$TLSAGEN" 3 1 1 "$C/www.pem" x | awk '{print $5, $6, $7, $8}')
server "${P[sclient]}" --no-peer-cert --exec 'echo from-tlspool'
expect s_client 0 -- bash -c "timeout 20 openssl s_client -ign_eof -connect 127.0.0.1:${P[sclient]} -servername www.example.test -dane_tlsa_domain www.example.test -dane_tlsa_rrdata '$rr' -verify_return_error -brief </dev/null 2>&1"
grep_in out s_client 'from-tlspool'
grep_in out s_client 'Verification: OK'
check_server s_client 0

# gnutls-cli with a client certificate against tlspool-connect --server:
# the server proves the client's domain by the TLSA at client.example.test
server "${P[gcli]}" --exec 'echo "hello $TLSPOOL_PEER"'
expect gnutls-cli 0 -- bash -c "sleep 1 | timeout 20 gnutls-cli --insecure --port ${P[gcli]} --sni-hostname www.example.test --x509keyfile '$W/client.key' --x509certfile '$W/client.pem' 127.0.0.1 2>/dev/null"
grep_in out gnutls-cli '^hello client\.example\.test$'
check_server gnutls-cli 0 '^peer: client\.example\.test$'

# openssl s_client with a client certificate: the server proves the
# client's domain by its TLSA record
server "${P[sclientcert]}" --exec 'echo "hello $TLSPOOL_PEER"'
expect s_client-cert 0 -- bash -c "timeout 20 openssl s_client -ign_eof -connect 127.0.0.1:${P[sclientcert]} -servername www.example.test -cert '$W/client.pem' -key '$W/client.key' -quiet </dev/null 2>/dev/null"
grep_in out s_client-cert '^hello client\.example\.test$'
check_server s_client-cert 0 '^peer: client\.example\.test$'

# --fork: every connection, each in its own process
("$CLI" --server --bind 127.0.0.1 --fork --no-peer-cert --exec 'echo "served $TLSPOOL_SNI"' \
	"${P[fork]}" 2>"$T/fork.err") &
fpid=$!
pids+=($fpid)
wait_port "${P[fork]}"
for i in 1 2 3; do
	expect "fork-$i" 0 -- bash -c "client ${P[fork]} www.example.test </dev/null"
	grep_in out "fork-$i" '^served www\.example\.test$'
done
kill "$fpid" 2>/dev/null

# --fd: an inherited, already connected descriptor
server "${P[fd]}" --no-peer-cert --exec 'cat'
expect fd 0 -- bash -c "exec 5<>/dev/tcp/127.0.0.1/${P[fd]}; echo via-fd | '$CLI' --client --fd 5 --sni www.example.test"
grep_in out fd '^via-fd$'
grep_in err fd '^peer: www\.example\.test$'
check_server fd 0
expect fd-usage 1 -- "$CLI" --client --fd 5 127.0.0.1 443

# --- who the client authenticates ---
# HOST as a name is the SNI and the reference identity: the client looks
# up _PORT._tcp.localhost (getdns answers localhost itself, unsigned, so
# the answer is bogus against the test root: exit 6) ...
server "${P[hostname]}" --myname www.example.test --no-peer-cert --sni-allow localhost --exec cat
expect host-is-reference 6 -- bash -c "echo hi | '$CLI' --client --diagnose localhost ${P[hostname]}"
grep_in err host-is-reference "^; query   _${P[hostname]}\\._tcp\\.localhost\\. TLSA\$"
server_rc >/dev/null
# ... and the server sees the SNI "localhost"
server "${P[hostname]}" --myname www.example.test --no-peer-cert --sni-allow 'www.*' --exec cat
expect host-is-sni 5 -- bash -c "echo hi | '$CLI' --client localhost ${P[hostname]}"
check_server host-is-sni 5 'SNI "localhost" refused by checksni'

# an address names nobody: refused without --sni (before connecting) ...
server "${P[anypeer]}" --myname www.example.test --no-peer-cert --exec 'echo served'
expect address-no-sni 1 -- bash -c "'$CLI' --client 127.0.0.1 ${P[anypeer]} </dev/null"
grep_in err address-no-sni '^tlspool-connect: 127\.0\.0\.1 gives no name to authenticate the server by: give --sni NAME, or --any-peer'
no_grep_in err address-no-sni '^peer: '
# ... and with --any-peer the server is authenticated under the name it
# claims, and named
expect any-peer 0 -- bash -c "'$CLI' --client --any-peer 127.0.0.1 ${P[anypeer]} </dev/null"
grep_in out any-peer '^served$'
grep_in err any-peer '^peer: www\.example\.test$'
check_server any-peer 0
server "${P[anyfd]}" --myname www.example.test --no-peer-cert --exec 'echo served'
expect any-peer-fd 0 -- bash -c "exec 5<>/dev/tcp/127.0.0.1/${P[anyfd]}; '$CLI' --client --fd 5 --any-peer </dev/null"
grep_in out any-peer-fd '^served$'
grep_in err any-peer-fd '^peer: www\.example\.test$'
check_server any-peer-fd 0
# --any-peer still needs DANE: the certificate's name has no TLSA record
# at this port
server "${P[notlsa]}" --myname www.example.test --no-peer-cert --exec 'echo served'
expect any-peer-notlsa 4 -- bash -c "'$CLI' --client --any-peer 127.0.0.1 ${P[notlsa]} </dev/null"
no_grep_in out any-peer-notlsa 'served'
server_rc >/dev/null

# --- --sni-allow: a ClientHello without SNI, a name of 253 octets ---
server "${P[nosni]}" --myname www.example.test --no-peer-cert --sni-allow 'mail.*' --exec 'echo served'
timeout 20 openssl s_client -noservername -connect "127.0.0.1:${P[nosni]}" -quiet </dev/null >"$T/out" 2>"$T/err"
no_grep_in out no-sni 'served'
check_server no-sni 5 'the client sent no SNI'
server "${P[nosniok]}" --myname www.example.test --no-peer-cert --sni-allow 'mail.*' --allow-no-sni --exec 'echo served'
expect no-sni-allowed 0 -- timeout 20 openssl s_client -noservername -connect "127.0.0.1:${P[nosniok]}" -quiet </dev/null
grep_in out no-sni-allowed '^served$'
check_server no-sni-allowed 0
# The longest host name (253 octets, RFC 1035 section 2.3.4): matched
# whole, refused by 'mail.*' unless it starts with "mail."
l63=$(printf 'a%.0s' $(seq 63))
long="$l63.$l63.$l63.$(printf 'b%.0s' $(seq 61))"
longmail="mail.$(printf 'a%.0s' $(seq 58)).$l63.$l63.$(printf 'b%.0s' $(seq 61))"
[ ${#long} = 253 ] && [ ${#longmail} = 253 ] || echo "test bug: ${#long} ${#longmail}"
server "${P[longsni]}" --myname www.example.test --no-peer-cert --sni-allow 'mail.*' --exec 'echo served'
timeout 20 openssl s_client -servername "$long" -connect "127.0.0.1:${P[longsni]}" -quiet </dev/null >"$T/out" 2>"$T/err"
no_grep_in out long-sni 'served'
check_server long-sni 5 "SNI \"$long\" refused by checksni"
server "${P[longok]}" --myname www.example.test --no-peer-cert --sni-allow 'mail.*' --exec 'echo "served $TLSPOOL_SNI"'
expect long-sni-allowed 0 -- timeout 20 openssl s_client -servername "$longmail" -connect "127.0.0.1:${P[longok]}" -quiet </dev/null
grep_in out long-sni-allowed "^served $longmail\$"
check_server long-sni-allowed 0

# --- --fork --max-children: never more children than that, all served ---
"$CLI" --server --bind 127.0.0.1 --fork --max-children 2 --no-peer-cert \
	--exec 'sleep 1; echo done' "${P[maxch]}" 2>"$T/maxch.err" &
mpid=$!
pids+=("$mpid")
wait_port "${P[maxch]}"
cpids=()
for i in 1 2 3 4; do
	timeout 30 bash -c "client ${P[maxch]} www.example.test </dev/null" >"$T/maxch.$i" 2>&1 &
	cpids+=($!)
done
most=0
while kill -0 "${cpids[@]}" 2>/dev/null || pgrep -P "$mpid" >/dev/null; do
	n=$(pgrep -P "$mpid" | wc -l)
	[ "$n" -gt "$most" ] && most=$n
	sleep 0.05
done
wait "${cpids[@]}"
if [ "$most" = 2 ]; then npass=$((npass + 1)); else
	nfail=$((nfail + 1)); echo "not ok: max-children: at most $most children at once, want 2"; fi
[ "$(cat "$T"/maxch.[1-4] | grep -c '^done$')" = 4 ] && npass=$((npass + 1)) ||
	{ nfail=$((nfail + 1)); echo "not ok: max-children: not all 4 served"; cat "$T"/maxch.[1-4]; }
[ "$(grep -c 'the --max-children limit' "$T/maxch.err")" = 1 ] && npass=$((npass + 1)) ||
	{ nfail=$((nfail + 1)); echo "not ok: max-children: want one message"; cat "$T/maxch.err"; }
# every child reaped: no zombie
sleep 0.2
if ps -o stat= --ppid "$mpid" | grep -q Z; then
	nfail=$((nfail + 1)); echo "not ok: max-children: zombies: $(ps -o pid,stat --ppid "$mpid")"
else npass=$((npass + 1)); fi
kill "$mpid" 2>/dev/null

# --- descriptors: the soft limit is raised to the hard one ---
cat >"$W/tlspeer.py" <<'PY'
# tlspeer.py MODE PORT [ARGS]: TLS peers that python's ssl module makes
#   cut-server PORT KEY CHAIN: send "partial", close without close_notify
#   clean-server PORT KEY CHAIN: send "partial", then close_notify
#   cut-client PORT: send "partial", close without close_notify
#   many PORT N: N connections, at most 20 at once; print how many read "ok"
import socket, ssl, sys, threading
mode, port = sys.argv[1], int(sys.argv[2])
if mode.endswith("-server"):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[4], sys.argv[3])
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(1)
    c, _ = ls.accept()
    s = ctx.wrap_socket(c, server_side=True)
    s.sendall(b"partial\n")
    if mode == "clean-server":
        s.unwrap()
    else:
        s.shutdown(socket.SHUT_RDWR)  # no close_notify: the raw socket
    c.close()
    sys.exit(0)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
def one():
    c = socket.create_connection(("127.0.0.1", port), timeout=60)
    return ctx.wrap_socket(c, server_hostname="www.example.test")
if mode == "cut-client":
    s = one()
    s.sendall(b"partial\n")
    s.settimeout(0.3)
    try:
        s.recv(1)  # takes in the session tickets, so that no RST follows
    except (socket.timeout, ssl.SSLError):
        pass
    s.shutdown(socket.SHUT_RDWR)
    sys.exit(0)
n, ok, lock, sem = int(sys.argv[3]), [0], threading.Lock(), threading.Semaphore(20)
def worker():
    with sem:
        try:
            s = one()
            data = b""
            while True:
                b = s.recv(100)
                if not b:
                    break
                data += b
            if data == b"ok\n":
                with lock:
                    ok[0] += 1
        except Exception as e:
            print(e, file=sys.stderr)
ts = [threading.Thread(target=worker) for _ in range(n)]
for t in ts: t.start()
for t in ts: t.join()
print(ok[0])
PY
(ulimit -Sn 64; exec "$CLI" --server --bind 127.0.0.1 --fork --myname www.example.test \
	--no-peer-cert --exec 'echo ok' "${P[rlimit]}" 2>"$T/rlimit.err") &
rpid=$!
pids+=("$rpid")
wait_port "${P[rlimit]}"
hard=$(ulimit -Hn)
if grep -Eq "^Max open files +$hard +$hard " "/proc/$rpid/limits"; then npass=$((npass + 1)); else
	nfail=$((nfail + 1)); echo "not ok: rlimit: $(grep 'Max open files' "/proc/$rpid/limits"), hard $hard"; fi
served=$(timeout 120 python3 "$W/tlspeer.py" many "${P[rlimit]}" 100 2>"$T/err")
if [ "$served" = 100 ]; then npass=$((npass + 1)); else
	nfail=$((nfail + 1)); echo "not ok: rlimit: $served of 100 served"; head -5 "$T/err"; fi
kill -0 "$rpid" 2>/dev/null && npass=$((npass + 1)) || { nfail=$((nfail + 1)); echo "not ok: rlimit: the server ended"; }
kill "$rpid" 2>/dev/null

# Out of descriptors: a hard limit just above the lowest free descriptor,
# which the listening socket takes, so that accept() fails with EMFILE;
# one message, the server stays, and waits instead of spinning
(n=0; while [ -e "/proc/$BASHPID/fd/$n" ]; do n=$((n + 1)); done
 ulimit -n $((n + 1))
 exec "$CLI" --server --bind 127.0.0.1 --fork --no-peer-cert \
	--exec 'echo ok' "${P[emfile]}") 2>"$T/emfile.err" &
epid=$!
pids+=("$epid")
wait_port "${P[emfile]}"
opens=()
for i in 1 2 3; do
	(exec 6<>"/dev/tcp/127.0.0.1/${P[emfile]}"; sleep 2) &
	opens+=($!)
done
sleep 1.5
kill -0 "$epid" 2>/dev/null && npass=$((npass + 1)) || { nfail=$((nfail + 1)); echo "not ok: emfile: the server ended"; cat "$T/emfile.err"; }
[ "$(grep -c '^tlspool-connect: accept: Too many open files: new connections wait' "$T/emfile.err")" = 1 ] &&
	npass=$((npass + 1)) || { nfail=$((nfail + 1)); echo "not ok: emfile: want one message"; cat "$T/emfile.err"; }
# CPU time (utime + stime, in clock ticks) over 1.5 s of EMFILE: no spin
cpu=$(awk '{print $14 + $15}' "/proc/$epid/stat")
[ "$cpu" -lt 30 ] && npass=$((npass + 1)) || { nfail=$((nfail + 1)); echo "not ok: emfile: $cpu ticks of CPU: spinning"; }
kill "$epid" 2>/dev/null
wait "${opens[@]}"

# --- how the connection ended: only close_notify is a clean end ---
# the peer's close_notify: exit 0, and --json says so
python3 "$W/tlspeer.py" clean-server "${P[clean]}" "$C/www.key" "$C/chain.pem" &
pids+=($!)
wait_port "${P[clean]}"
expect clean-end 0 -- timeout 20 bash -c "client ${P[clean]} www.example.test --json </dev/null"
json_valid clean-end err
grep_in out clean-end '^partial$'
if jsonerr | jq -e '.end.kind == "close_notify" and .end.bytes_in == 8 and .class == "ok" and .exit_code == 0' >/dev/null; then
	npass=$((npass + 1)); else nfail=$((nfail + 1)); echo "not ok: clean-end json: $(jsonerr | jq -c .end)"; fi

# Cut without close_notify, after "partial\n" (8 bytes): exit 2, what came
# is written out, one message.  Needs the relay to report the cut
# (read() fails with ECONNRESET, starttls_end() says TRUNCATED).
python3 "$W/tlspeer.py" cut-server "${P[trunc]}" "$C/www.key" "$C/chain.pem" &
pids+=($!)
wait_port "${P[trunc]}"
expect truncated-client 2 -- timeout 20 bash -c "client ${P[trunc]} www.example.test --json </dev/null"
grep_in out truncated-client '^partial$'
json_valid truncated-client err
# the lines for people are in the document, not beside it
json_is truncated-client err '.peer == "www.example.test" and .outcome == "connection-failed"'
json_is truncated-client err '.error == "the peer closed the connection without close_notify after 8 bytes (the data may be incomplete)"'
if jsonerr | jq -e '.end.kind == "truncated" and .end.bytes_in == 8 and .exit_code == 2' >/dev/null; then
	npass=$((npass + 1)); else nfail=$((nfail + 1)); echo "not ok: truncated-client json: $(jsonerr | jq -c .end)"; fi
# the same for a server
server "${P[truncsrv]}" --myname www.example.test --no-peer-cert
timeout 20 python3 "$W/tlspeer.py" cut-client "${P[truncsrv]}"
check_server truncated-server 2 '^tlspool-connect: the peer closed the connection without close_notify after 8 bytes \(the data may be incomplete\)$'
grep_in server.out truncated-server '^partial$'

finish
