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
	sclientcert; do
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
		fork fd sclientcert; do
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

# --json: one document on stderr whose verdict agrees with the exit code
jsonerr() { grep -v -e '^peer: ' -e '^tlspool-connect: ' "$T/err"; }
for case in "good:www.example.test:0:authenticated:secure" \
	"bogus:www.bogus.test:6:dns-error:bogus" \
	"wrong:www.example.test:4:no-match:secure"; do
	IFS=: read -r name sni code verdict dnsv <<<"$case"
	server "${P[$name]}" --no-peer-cert --exec 'cat'
	expect "json-$name" "$code" -- bash -c "echo hi | client ${P[$name]} $sni --json"
	if jsonerr | jq -e --arg v "$verdict" --arg d "$dnsv" --argjson c "$code" \
		'.verdict == $v and .dns.verdict == $d and .exit_code == $c and (.chain|length) >= 1 and ((.records|length) >= 1 or $v == "dns-error")' >/dev/null; then
		npass=$((npass + 1))
	else
		nfail=$((nfail + 1)); echo "not ok: json-$name: $(jsonerr | head -c 400)"
	fi
	server_rc >/dev/null
done

server "${P[sniallow]}" --no-peer-cert --sni-allow 'mail.*' --exec cat
expect sni-allow 3 -- bash -c "echo hi | client ${P[sniallow]} www.example.test"
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

finish
