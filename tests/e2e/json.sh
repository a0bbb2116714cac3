#!/bin/bash
# tlspool-connect --json: one document per run in every mode, valid
# against share/tlspool-connect.schema.json, alone on its channel (stderr
# for --client and --server, stdout for --lookup, the cache modes and
# --records-for, or --json-file FILE), with an "outcome" that agrees with
# the exit code; usage errors while and after the options are parsed,
# refused connections, unresolvable names, DNS failures and a client or
# server stopped by a signal while it waits included.  Records are
# numbered from 1 in the text of --diagnose and in JSON alike.  The
# negotiated ALPN (gnutls-serv --alpn, a tlspool server's --alpn) and
# the DNSSEC chain of the call's own lookup are in the document.
. "$(dirname "$0")/common"
. scripts/ports.sh

W="$T/w"
mkdir -p "$W"
tests/tools/mkcerts.sh "$W/c" >/dev/null 2>&1 || { echo "mkcerts failed"; exit 1; }
C="$W/c"
TLSAGEN="$BUILD/tests/tlsagen"

declare -A P
for s in good wrong two notlsa bogus timeout refused srv srvfail jfile fork alpn gsalpn gsnone sigs sigc sigh; do
	P[$s]=$(free_port)
done
{
	for s in good timeout srv srvfail jfile fork alpn gsalpn gsnone sigc; do
		"$TLSAGEN" 3 1 1 "$C/www.pem" "_${P[$s]}._tcp.www.example.test."
	done
	"$TLSAGEN" 3 1 1 "$C/other.pem" "_${P[wrong]}._tcp.www.example.test."
	# two records, one of another key: which one matched is numbered
	# the same in text and JSON
	"$TLSAGEN" 3 1 1 "$C/other.pem" "_${P[two]}._tcp.www.example.test."
	"$TLSAGEN" 3 1 1 "$C/www.pem" "_${P[two]}._tcp.www.example.test."
} >"$W/example.add"
"$TLSAGEN" 3 1 1 "$C/www.pem" "_${P[bogus]}._tcp.www.bogus.test." >"$W/bogus.add"
zones/serve start "$W/z" --add example.test "$W/example.add" \
	--add bogus.test "$W/bogus.add" 2>/dev/null || { echo "zones failed"; exit 1; }
pids=()
cleanup_all() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	zones/serve stop "$W/z" >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup_all EXIT

ident() {
	printf '[tls]\nhandshake_timeout_ms = 5000\n'
	printf '[identity www.example.test]\nkey = %s\ncertificate = %s\n' "$C/www.key" "$C/chain.pem"
	printf '[identity www.bogus.test]\nkey = %s\ncertificate = %s\n' "$C/www.key" "$C/chain.pem"
}
CONF="$W/tlspool.conf"
{ cat "$W/z/tlspool.conf"; ident; } >"$CONF"
# the DNS upstream never answers (tests/tools/blackhole), 500 ms timeout
BH="$W/blackhole.conf"
{ cat "$TLSPOOL_ZONES_DIR/blackhole.conf"; ident; } >"$BH"
export TLSPOOL_CONFIG="$CONF"

# server PORT [OPTIONS...]: one connection in the background; stderr in
# $T/server.err, exit code in $T/server.rc
server() {
	local port=$1
	shift
	rm -f "$T/server.rc"
	("$CLI" --server --bind 127.0.0.1 "$@" "$port" 2>"$T/server.err" >"$T/server.out"
	 echo $? >"$T/server.rc") &
	pids+=($!)
	wait_port "$port"
}
server_rc() {
	local i
	for i in $(seq 200); do [ -s "$T/server.rc" ] && break; sleep 0.05; done
	cat "$T/server.rc" 2>/dev/null
}
client() { # PORT [OPTIONS...]
	local port=$1
	shift
	"$CLI" --client --sni www.example.test "$@" 127.0.0.1 "$port"
}
export CLI
export -f client

# agree NAME FILE CODE: the document in FILE says exit_code CODE and the
# outcome that goes with it
agree() {
	local o
	case $3 in
	0) o=ok ;; 1) o=usage-error ;; 2) o=connection-failed ;; 3) o=tls-failed ;;
	4) o=not-authenticated ;; 5) o=refused ;; 6) o=dns-failed ;;
	esac
	json_is "$1" "$2" ".exit_code == $3 and .outcome == \"$o\""
}

# --- usage errors after option parsing: one document, nothing else ---
expect usage-client 1 -- "$CLI" --json --client onlyhost
json_valid usage-client err
agree usage-client err 1
json_is usage-client err '.mode == "client" and (.error | test("--client takes HOST PORT")) and (.hint | length) > 0'
no_grep_in out usage-client .

expect usage-lookup 1 -- "$CLI" --json --lookup
json_valid usage-lookup out
agree usage-lookup out 1
no_grep_in err usage-lookup '^usage:'

expect usage-nomode 1 -- "$CLI" --json
json_valid usage-nomode out
json_is usage-nomode out '.mode == "none" and .outcome == "usage-error"'

expect usage-role 1 -- "$CLI" --json --server --sni x 4433
json_valid usage-role err
json_is usage-role err '.error == "--sni is not an option of --server"'

# --- usage errors found while the options are parsed: a document too,
# on the channel of the mode given (or stdout without one) ---
expect parse-unknown 1 -- "$CLI" --json --client --no-such-option www.example.test 443
json_valid parse-unknown err
agree parse-unknown err 1
json_is parse-unknown err '.mode == "client" and .error == "--no-such-option: unknown option" and (.hint | test("--help"))'
no_grep_in out parse-unknown .
# --json after the error, and a missing argument
expect parse-missing 1 -- "$CLI" --client --json --fd
json_valid parse-missing err
json_is parse-missing err '.error == "--fd needs an argument" and .outcome == "usage-error"'
expect parse-number 1 -- "$CLI" --server --max-children -3 --json 4433
json_valid parse-number err
json_is parse-number err '(.error | test("--max-children")) and .mode == "server"'
expect parse-lookup 1 -- "$CLI" --lookup --json www.example.test --timeout
json_valid parse-lookup out
json_is parse-lookup out '.mode == "lookup" and .error == "--timeout needs an argument"'
grep_in err parse-lookup '^tlspool-connect: --timeout needs an argument$'
expect parse-nomode 1 -- "$CLI" --json --bogus
json_valid parse-nomode out
json_is parse-nomode out '.mode == "none" and .outcome == "usage-error"'
# --json-file FILE: the document there even for a usage error
expect parse-jfile 1 -- "$CLI" --json-file "$W/parse.json" --client --nonsense
json_valid parse-jfile "$W/parse.json"
json_is parse-jfile "$W/parse.json" '.error == "--nonsense: unknown option"'
grep_in err parse-jfile '^tlspool-connect: --nonsense: unknown option$'

# "--exec --json": the command's text, not --json; no document
expect exec-arg 1 -- "$CLI" --client --exec --json onlyhost
grep_in err exec-arg '^tlspool-connect: --client takes HOST PORT'
# --help and --version stay text
expect help-json 0 -- "$CLI" --json --help
grep_in out help-json '^usage: '
no_grep_in out help-json '"outcome"'

# --sctp for a connection: an error before any socket, naming why
expect sctp-client 1 -- "$CLI" --json --client --sctp --sni www.example.test 127.0.0.1 "${P[refused]}"
json_valid sctp-client err
json_is sctp-client err '.outcome == "usage-error" and (.error | test("^--sctp: .*DTLS over SCTP")) and (.addresses == [])'
if [ -e /proc/sys/net/sctp ]; then
	json_is sctp-client err '(.error | test("kernel") | not)'
else
	json_is sctp-client err '(.error | test("this kernel has no SCTP"))'
fi
# a server does not wait on a socket no SCTP client can reach
expect sctp-server 1 -- timeout 10 "$CLI" --server --sctp --bind 127.0.0.1 "${P[refused]}"
grep_in err sctp-server '^tlspool-connect: --sctp: '
grep_in err sctp-server '^tlspool-connect: try: use TCP'
no_grep_in err sctp-server 'listening'

printf '[dns]\ntimeout_ms = soon\n' >"$W/bad.conf"
expect bad-config 1 -- "$CLI" --json --config "$W/bad.conf" --client --sni www.example.test 127.0.0.1 1
json_valid bad-config err
json_is bad-config err '(.error | test("timeout_ms")) and .outcome == "usage-error"'

# --- a refused connection ---
expect refused 2 -- client "${P[refused]}" --json
json_valid refused err
agree refused err 2
json_is refused err '.addresses[0].role == "connect" and .addresses[0].address == "127.0.0.1" and .addresses[0].result == "Connection refused"'
json_is refused err '(.hint | test("listens at 127.0.0.1"))'
no_grep_in out refused .

# --- a name that does not resolve: exit 2 (or 6 where names are looked
# up with DNSSEC), outcome agreeing either way ---
timeout 30 "$CLI" --json --client nosuchhost.invalid 443 >"$T/out" 2>"$T/err"
rc=$?
json_valid unresolvable err
case $rc in 2 | 6) agree unresolvable err "$rc" ;; *)
	nfail=$((nfail + 1)); echo "not ok: unresolvable: exit $rc" ;; esac
json_is unresolvable err '(.error | test("nosuchhost.invalid"))'

# --- DNS failures: bogus, and a timeout that names the upstream ---
server "${P[bogus]}" --no-peer-cert --exec cat
expect bogus 6 -- bash -c "echo hi | $CLI --client --json 127.0.0.1 ${P[bogus]} --sni www.bogus.test"
json_valid bogus err
agree bogus err 6
json_is bogus err '.dns.verdict == "bogus" and .class == "dns-bogus" and .verdict == "dns-error"'
no_grep_in out bogus hi
server_rc >/dev/null

server "${P[timeout]}" --no-peer-cert --exec cat
expect dns-timeout 6 -- bash -c "echo hi | client ${P[timeout]} --config $BH --json"
json_valid dns-timeout err
agree dns-timeout err 6
json_is dns-timeout err '.class == "dns-timeout" and (.error | test("no answer within 500 ms from 127\\.0\\.0\\.1@[0-9]+ \\(\\[dns\\] timeout_ms\\)"))'
json_is dns-timeout err '(.hint | test("\\[dns\\] upstream")) and (.hint | test("\\[dns\\] timeout_ms"))'
server_rc >/dev/null

expect lookup-timeout 6 -- "$CLI" --json --config "$BH" --lookup www.example.test
json_valid lookup-timeout out
cp "$T/out" "$W/lt.json"
agree lookup-timeout out 6
json_is lookup-timeout out '.verdict == "timeout" and (.hint | test("timeout_ms"))'
grep_in err lookup-timeout '^tlspool-connect: .*timed out'

# --- no match: the document has every record, numbered from 1 ---
SPKI=$(certtool --key-id --hash sha256 --infile "$C/www.pem" 2>/dev/null | tr a-f A-F)
[ ${#SPKI} = 64 ] || SPKI=$(openssl x509 -in "$C/www.pem" -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum | cut -c1-64 | tr a-f A-F)
server "${P[wrong]}" --no-peer-cert --exec cat
expect no-match 4 -- bash -c "echo hi | client ${P[wrong]} --json"
json_valid no-match err
agree no-match err 4
json_is no-match err '.class == "no-match" and (.records | length) == 1 and .records[0].record == 1 and .records[0].outcome != "matched"'
json_is no-match err "(.hint | contains(\"$SPKI\")) and (.hint | test(\"--diagnose\")) and (.hint | test(\"--records\"))"
json_is no-match err ".chain[0].spki_sha256 == \"$SPKI\""
server_rc >/dev/null
# the same in text: the digest and what to try
server "${P[wrong]}" --no-peer-cert --exec cat
expect no-match-text 4 -- bash -c "echo hi | client ${P[wrong]}"
grep_in err no-match-text "^tlspool-connect: try: the peer's key has SPKI SHA2-256 $SPKI, which \"_${P[wrong]}\\._tcp\\.www\\.example\\.test\\. IN TLSA 3 1 1 $SPKI\" would match; --diagnose .*--records"
server_rc >/dev/null

server "${P[notlsa]}" --no-peer-cert --exec cat
expect no-records 4 -- bash -c "echo hi | client ${P[notlsa]} --json"
json_valid no-records err
json_is no-records err '.class == "no-records" and (.error | test("pkix_fallback") | not) and (.hint | test("--records"))'
server_rc >/dev/null

# numbering: the record that matched has one number in text and JSON
server "${P[two]}" --no-peer-cert --exec cat
expect two-text 0 -- bash -c "echo hi | client ${P[two]} --diagnose"
n_text=$(sed -n 's/^; record  \([0-9]*\): 3 1 1 (DANE-EE): matched.*/\1/p' "$T/err")
n_reason=$(sed -n 's/^; dane    authenticated: record \([0-9]*\) .*/\1/p' "$T/err")
server_rc >/dev/null
server "${P[two]}" --no-peer-cert --exec cat
expect two-json 0 -- bash -c "echo hi | client ${P[two]} --json"
json_valid two-json err
n_json=$(jq -r '.records[] | select(.outcome == "matched") | .record' "$T/err")
if [ -n "$n_text" ] && [ "$n_text" = "$n_reason" ] && [ "$n_text" = "$n_json" ] &&
	jq -e '[.records[].record] | sort == [1, 2]' "$T/err" >/dev/null &&
	jq -e --arg n "$n_json" '.reason | startswith("record " + $n + " ")' "$T/err" >/dev/null; then
	npass=$((npass + 1))
else
	nfail=$((nfail + 1))
	echo "not ok: numbering: text $n_text, reason $n_reason, json $n_json"
fi
server_rc >/dev/null

# --- success: the session, the addresses, the chain in PEM ---
server "${P[good]}" --no-peer-cert --exec cat
expect good 0 -- bash -c "echo hello | client ${P[good]} --json --show-certs"
grep_in out good '^hello$'
json_valid good err
agree good err 0
json_is good err '.tls.version | test("^TLS1\\.[23]$")'
json_is good err '.tls.cipher_suite | test("^TLS_")'
json_is good err '.tls.sni == "www.example.test" and .tls.alpn == null and .tls.handshake_ms >= 0 and .tls.validation_ms >= 0'
json_is good err '.addresses == [{"role":"connect","address":"127.0.0.1","port":'"${P[good]}"',"result":"ok"}]'
json_is good err '.peer == "www.example.test" and .verdict == "authenticated" and .end.kind == "close_notify"'
json_is good err '.dns.verdict == "secure" and .records[0].record == 1'
# the DNSSEC proof, as getdns_query +dnssec_return_validation_chain has it
json_is good err '[.dns.validation_chain[] | split("\t")[3]] | (index("DNSKEY") != null and index("DS") != null and index("RRSIG") != null)'
json_is good err '(.chain | length) >= 2 and (.chain[0].pem | startswith("-----BEGIN CERTIFICATE-----"))'
cp "$T/err" "$W/good.json"
# the PEM is the server's certificate
jq -r '.chain[0].pem' "$T/err" >"$W/peer0.pem"
if cmp -s <(openssl x509 -in "$W/peer0.pem" -outform DER) "$C/www.der"; then
	npass=$((npass + 1)); else nfail=$((nfail + 1)); echo "not ok: good: chain[0].pem is not www.pem"; fi
server_rc >/dev/null

# --json-file: the document there, stderr for people
server "${P[jfile]}" --no-peer-cert --exec cat
expect json-file 0 -- bash -c "echo hello | client ${P[jfile]} --json-file $W/doc.json"
json_valid json-file "$W/doc.json"
agree json-file "$W/doc.json" 0
grep_in err json-file '^peer: www\.example\.test$'
grep_in out json-file '^hello$'
server_rc >/dev/null
# a --json-file that cannot be written: the document on the mode's own
# channel says so
expect json-file-unwritable 1 -- "$CLI" --client --json-file "$W/no/such/dir/doc.json" --sni www.example.test 127.0.0.1 1
json_valid json-file-unwritable err
json_is json-file-unwritable err '(.error | test("^--json-file .*: No such file or directory$")) and .outcome == "usage-error"'
expect json-file-unwritable-lookup 1 -- "$CLI" --lookup --json-file "$W/no/such/dir/doc.json" www.example.test
json_valid json-file-unwritable-lookup out
grep_in err json-file-unwritable-lookup '^tlspool-connect: --json-file .*: No such file or directory$'

# --- ALPN: the protocol agreed, in the document and in --diagnose ---
# against gnutls-serv --alpn h2 ...
gnutls-serv --echo -p "${P[gsalpn]}" --alpn h2 --alpn http/1.1 --x509keyfile "$C/www.key" \
	--x509certfile "$C/chain.pem" >/dev/null 2>&1 &
pids+=($!)
# ... and one with no ALPN at all
gnutls-serv --echo -p "${P[gsnone]}" --x509keyfile "$C/www.key" \
	--x509certfile "$C/chain.pem" >/dev/null 2>&1 &
pids+=($!)
wait_port "${P[gsalpn]}"
wait_port "${P[gsnone]}"
expect alpn-gnutls 0 -- timeout 20 bash -c "echo alpn | client ${P[gsalpn]} --alpn h2 --json"
json_valid alpn-gnutls err
json_is alpn-gnutls err '.tls.alpn == "h2" and .verdict == "authenticated"'
expect alpn-gnutls-second 0 -- timeout 20 bash -c "echo alpn | client ${P[gsalpn]} --alpn spdy/1,http/1.1 --json"
json_is alpn-gnutls-second err '.tls.alpn == "http/1.1"'
expect alpn-gnutls-text 0 -- timeout 20 bash -c "echo alpn | client ${P[gsalpn]} --alpn h2 --diagnose"
grep_in err alpn-gnutls-text '^; tls     TLS1\.[23] [A-Z0-9_]+, ALPN h2, SNI www\.example\.test$'
expect alpn-gnutls-none 0 -- timeout 20 bash -c "echo alpn | client ${P[gsnone]} --alpn h2 --json"
json_is alpn-gnutls-none err '.tls.alpn == null'
# a tlspool server with --alpn: both documents name it
server "${P[alpn]}" --json --alpn h2,http/1.1 --no-peer-cert --exec cat
expect alpn-tlspool 0 -- timeout 20 bash -c "echo alpn | client ${P[alpn]} --alpn http/1.1 --json"
json_is alpn-tlspool err '.tls.alpn == "http/1.1"'
server_rc >/dev/null
json_valid alpn-tlspool-server "$T/server.err"
json_is alpn-tlspool-server "$T/server.err" '.mode == "server" and .tls.alpn == "http/1.1"'

# --- the server: its own document on its stderr ---
server "${P[srv]}" --json --no-peer-cert --exec cat
expect srv-client 0 -- bash -c "echo hi | client ${P[srv]}"
rc=$(server_rc)
[ "$rc" = 0 ] && npass=$((npass + 1)) || { nfail=$((nfail + 1)); echo "not ok: server: exit $rc"; }
json_valid server "$T/server.err"
json_is server "$T/server.err" '.mode == "server" and .outcome == "ok" and .tls.sni == "www.example.test"'
json_is server "$T/server.err" '[.addresses[].role] == ["listen", "accept"] and .addresses[0].port == '"${P[srv]}"

# --fork: one document per connection, each from its own process
"$CLI" --server --bind 127.0.0.1 --fork --json --no-peer-cert --exec cat "${P[fork]}" 2>"$W/fork.err" >/dev/null &
fpid=$!
pids+=($fpid)
wait_port "${P[fork]}"
for i in 1 2; do
	expect "fork-client-$i" 0 -- bash -c "echo hi$i | client ${P[fork]}"
done
for i in $(seq 100); do [ "$(jq -s length "$W/fork.err" 2>/dev/null)" = 2 ] && break; sleep 0.05; done
kill "$fpid" 2>/dev/null
wait "$fpid" 2>/dev/null
# the two connections' documents, then the listening parent's own
json_is fork-two "$W/fork.err" 'true'
if [ "$(jq -s length "$W/fork.err" 2>/dev/null)" = 3 ]; then npass=$((npass + 1)); else
	nfail=$((nfail + 1)); echo "not ok: fork: not three documents"; head -c 400 "$W/fork.err"; fi
for i in 0 1; do
	jq -s ".[$i]" "$W/fork.err" >"$W/fork$i.json" 2>/dev/null
	json_valid "fork-doc-$i" "$W/fork$i.json"
	json_is "fork-doc-$i" "$W/fork$i.json" '.outcome == "ok" and ([.addresses[].role] == ["listen", "accept"])'
done
jq -s ".[2]" "$W/fork.err" >"$W/fork2.json" 2>/dev/null
json_valid fork-parent "$W/fork2.json"
json_is fork-parent "$W/fork2.json" '.outcome == "interrupted" and .signal == "SIGTERM" and [.addresses[].role] == ["listen"]'


# a server whose client has no certificate: exit 4, outcome agreeing
server "${P[srvfail]}" --json --exec cat
bash -c "echo hi | client ${P[srvfail]} --no-local-cert" >/dev/null 2>&1
rc=$(server_rc)
json_valid server-fail "$T/server.err"
agree server-fail "$T/server.err" "$rc"
json_is server-fail "$T/server.err" '.class == "no-peer-certificate"'

# --- stopped by a signal: the document still comes (outcome
# interrupted), and the run ends by the signal as it would without --json
"$CLI" --server --bind 127.0.0.1 --json --no-peer-cert --exec cat "${P[sigs]}" 2>"$W/sigs.err" >/dev/null &
spid=$!
pids+=($spid)
wait_port "${P[sigs]}"
kill -TERM "$spid"
wait "$spid"
rc=$?
[ "$rc" = 143 ] && npass=$((npass + 1)) || { nfail=$((nfail + 1)); echo "not ok: sig-server: exit $rc, want 143"; }
json_valid sig-server "$W/sigs.err"
json_is sig-server "$W/sigs.err" '.mode == "server" and .outcome == "interrupted" and .signal == "SIGTERM" and .exit_code == 143 and .addresses[0].role == "listen"'
# a client in the middle of its connection (stdin never ends)
server "${P[sigc]}" --no-peer-cert --exec cat
mkfifo "$W/sig.fifo"
exec 9<>"$W/sig.fifo"
"$CLI" --client --sni www.example.test --json 127.0.0.1 "${P[sigc]}" <"$W/sig.fifo" >/dev/null 2>"$W/sigc.err" &
cpid=$!
pids+=($cpid)
for i in $(seq 100); do grep -q '^peer: ' "$T/server.err" 2>/dev/null && break; sleep 0.05; done
sleep 0.2
kill -HUP "$cpid"
wait "$cpid" 2>/dev/null
rc=$?
exec 9>&-
[ "$rc" = 129 ] && npass=$((npass + 1)) || { nfail=$((nfail + 1)); echo "not ok: sig-client: exit $rc, want 129"; }
json_valid sig-client "$W/sigc.err"
json_is sig-client "$W/sigc.err" '.outcome == "interrupted" and .signal == "SIGHUP" and .exit_code == 129 and .verdict == "authenticated" and .addresses[0].result == "ok"'
server_rc >/dev/null

# in the handshake (a peer that accepts and never answers) the signal
# ends the run at once, as without --json, not after the 5000 ms of
# [tls] handshake_timeout_ms
python3 -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1)
c, _ = s.accept(); time.sleep(20)' "${P[sigh]}" &
pids+=($!)
wait_port "${P[sigh]}"
"$CLI" --client --sni www.example.test --json 127.0.0.1 "${P[sigh]}" </dev/null >/dev/null 2>"$W/sigh.err" &
cpid=$!
sleep 1
start=$(date +%s%N)
kill -TERM "$cpid"
wait "$cpid" 2>/dev/null
rc=$?
ms=$((($(date +%s%N) - start) / 1000000))
if [ "$rc" = 143 ] && [ "$ms" -lt 3000 ]; then npass=$((npass + 1)); else
	nfail=$((nfail + 1)); echo "not ok: sig-handshake: exit $rc after $ms ms"; fi

# --- lookup and the cache modes: stdout ---
expect lookup 0 -- "$CLI" --json --lookup www.example.test "${P[good]}"
json_valid lookup out
agree lookup out 0
json_is lookup out '.mode == "lookup" and .verdict == "secure" and (.records | length) == 1 and .records[0].usage == 3'
json_is lookup out '[.validation_chain[] | select(startswith("example.test.\t") and (split("\t")[3] == "DNSKEY"))] | length >= 1'
json_is lookup out '[.validation_chain[] | select(startswith("example.test.\t") and (split("\t")[3] == "DS"))] | length >= 1'
# the connection's chain is its own lookup's: the one --lookup shows for
# the same owner (no second lookup made for the document)
if jq -e --slurpfile l "$T/out" '(.dns.validation_chain | sort) == ($l[0].validation_chain | sort) and .dns.qname == $l[0].qname' "$W/good.json" >/dev/null; then
	npass=$((npass + 1)); else nfail=$((nfail + 1)); echo "not ok: good: validation_chain is not the lookup's"; fi
# a failed lookup has no chain to show
json_is lookup-timeout-chain "$W/lt.json" '.validation_chain == null'

printf '[cache]\npath = %s\n' "$W/cache.mdb" >"$W/cache.conf"
cat "$CONF" "$W/cache.conf" >"$W/withcache.conf"
server "${P[good]}" --no-peer-cert --exec cat
expect fill-cache 0 -- bash -c "echo hi | client ${P[good]} --config $W/withcache.conf"
server_rc >/dev/null
expect cache-list 0 -- "$CLI" --json --config "$W/withcache.conf" --cache-list
json_valid cache-list out
json_is cache-list out '.mode == "cache-list" and ([.entries[] | select(.kind == "authn")] | length) == 1 and ([.entries[] | select(.kind == "authn")][0].pass == true)'
# the zone keys the resolver kept: the root, test. and example.test.
json_is cache-list out '[.entries[] | select(.kind == "zonekeys")] | length == 3'
expect cache-flush 0 -- "$CLI" --json --config "$W/withcache.conf" --cache-flush
json_valid cache-flush out
agree cache-flush out 0
expect cache-empty 0 -- "$CLI" --json --config "$W/withcache.conf" --cache-list
json_valid cache-empty out
json_is cache-empty out '.entries == []'

# --- --records-for: stdout ---
expect records-for 0 -- "$CLI" --json --records-for "$C/www.pem" www.example.test 443
json_valid records-for out
json_is records-for out ".publish[0].owner == \"_443._tcp.www.example.test.\" and .publish[0].data == \"$SPKI\""
expect records-for-missing 1 -- "$CLI" --json --records-for "$W/none.pem" www.example.test 443
json_valid records-for-missing out
agree records-for-missing out 1

finish
