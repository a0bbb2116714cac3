#!/bin/bash
# tlspool-connect --srv: services by SRV (RFC 7673) end to end, against
# zones signed for this run with SRV, A and TLSA records added at test
# time.  Each target has its own loopback address and port (from the SRV
# record), served by a one-connection tlspool-connect --server that says
# who it is.  Asserts exit codes, the target reached, the peer reported
# and the reasons of the failures.
. "$(dirname "$0")/common"
. scripts/ports.sh

W="$T/w"
mkdir -p "$W"
tests/tools/mkcerts.sh "$W/c" >/dev/null 2>&1 || { echo "mkcerts failed"; exit 1; }
C="$W/c"
TLSAGEN="$BUILD/tests/tlsagen"

# leaf NAME DNSNAME: a server certificate for DNSNAME issued by inter,
# with the chain NAME.chain (leaf, inter, root).
leaf() {
	certtool --generate-privkey --key-type ecdsa --outfile "$C/$1.key" 2>/dev/null
	printf 'cn = "%s"\ndns_name = "%s"\nsigning_key\nencryption_key\ntls_www_server\nexpiration_days = 30\n' \
		"$2" "$2" >"$C/$1.tmpl"
	certtool --generate-certificate --load-privkey "$C/$1.key" \
		--load-ca-certificate "$C/inter.pem" --load-ca-privkey "$C/inter.key" \
		--template "$C/$1.tmpl" --outfile "$C/$1.pem" 2>/dev/null &&
		cat "$C/$1.pem" "$C/inter.pem" "$C/root.pem" >"$C/$1.chain"
}
leaf svcdomain chat.example.test || { echo "certtool failed"; exit 1; }
cat "$C/other.pem" "$C/inter.pem" "$C/root.pem" >"$C/other.chain"

declare -A P
for s in xa xb xc xta xtb look; do
	P[$s]=$(free_port)
done
tlsa() { # USAGE SELECTOR MTYPE CERT OWNER
	"$TLSAGEN" "$1" "$2" "$3" "$4" "$5"
}
{
	echo "xa IN A 127.0.0.31"
	echo "xb IN A 127.0.0.32"
	echo "xc IN A 127.0.0.33"
	echo "xta IN A 127.0.0.34"
	echo "xtb IN A 127.0.0.35"
	# good: one target, DANE-EE
	echo "_xmpp-client._tcp.good IN SRV 10 0 ${P[xa]} xa.example.test."
	tlsa 3 1 1 "$C/www.pem" "_${P[xa]}._tcp.xa.example.test."
	# fall: the first target fails, the second authenticates
	echo "_xmpp-client._tcp.fall IN SRV 10 0 ${P[xb]} xb.example.test."
	echo "_xmpp-client._tcp.fall IN SRV 20 0 ${P[xc]} xc.example.test."
	tlsa 3 1 1 "$C/other.pem" "_${P[xb]}._tcp.xb.example.test."
	tlsa 3 1 1 "$C/www.pem" "_${P[xc]}._tcp.xc.example.test."
	# DANE-TA(2): the service domain is a reference identifier
	# (RFC 7673 section 3), a foreign name is not
	echo "_imaps._tcp.chat IN SRV 0 0 ${P[xta]} xta.example.test."
	echo "_imaps._tcp.wrong IN SRV 0 0 ${P[xtb]} xtb.example.test."
	tlsa 2 0 1 "$C/root.pem" "_${P[xta]}._tcp.xta.example.test."
	tlsa 2 0 1 "$C/root.pem" "_${P[xtb]}._tcp.xtb.example.test."
	# the service is not offered
	echo "_submissions._tcp.none IN SRV 0 0 0 ."
	# lookup
	echo "_xmpp-server._tcp.look IN SRV 5 10 ${P[look]} xa.example.test."
	tlsa 3 1 1 "$C/www.pem" "_${P[look]}._tcp.xa.example.test."
} >"$W/example.add"
echo "_xmpp-client._tcp IN SRV 10 0 ${P[xa]} xa.example.test." >"$W/insecure.add"
echo "_xmpp-client._tcp IN SRV 10 0 ${P[xa]} xa.example.test." >"$W/expired.add"
zones/serve start "$W/z" --add example.test "$W/example.add" \
	--add insecure.test "$W/insecure.add" \
	--add expired.test "$W/expired.add" 2>/dev/null || { echo "zones failed"; exit 1; }
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
	for n in xa xb xc; do
		printf '[identity %s.example.test]\nkey = %s\ncertificate = %s\n' "$n" "$C/www.key" "$C/chain.pem"
	done
	printf '[identity xta.example.test]\nkey = %s\ncertificate = %s\n' "$C/svcdomain.key" "$C/svcdomain.chain"
	printf '[identity xtb.example.test]\nkey = %s\ncertificate = %s\n' "$C/other.key" "$C/other.chain"
} >"$CONF"
export TLSPOOL_CONFIG="$CONF"

# (every server, and so every "wait" for it, ends within 60 s)
# server NAME ADDR PORT: a one-connection server for target NAME on ADDR
# that greets with "served-by-NAME" and echoes.
server() { # NAME ADDR PORT [OPTIONS...]
	local n=$1 a=$2 p=$3
	shift 3
	timeout 60 "$CLI" --server --no-peer-cert --bind "$a" --myname "$n.example.test" \
		"$@" --exec "echo served-by-$n; cat" "$p" 2>"$T/server-$n.err" >/dev/null &
	pids+=($!)
	local i
	for i in $(seq 100); do
		ss -Htln "src $a and sport = :$p" | grep -q . && return 0
		sleep 0.05
	done
	echo "nothing listens on $a:$p" >&2
}
srv() { # SERVICE DOMAIN [OPTIONS...]
	local s=$1 d=$2
	shift 2
	echo hello | timeout 30 "$CLI" --client --srv "$s" "$@" "$d"
}
export CLI
export -f srv

# --- failures first ---
expect insecure-srv 7 -- srv xmpp-client insecure.test
grep_in err insecure-srv 'SRV RRset is insecure.*\(no DANE\)'
no_grep_in err insecure-srv '\[127|Connection'

expect bogus-srv 6 -- srv xmpp-client expired.test
grep_in err bogus-srv 'SRV RRset is bogus'

expect not-offered 4 -- srv submissions none.example.test
grep_in err not-offered 'not offered'

expect no-srv 4 -- srv xmpp-server none.example.test
grep_in err no-srv 'no SRV records'

server xtb 127.0.0.35 "${P[xtb]}"
expect ta-wrong-name 4 -- srv imaps wrong.example.test
grep_in err ta-wrong-name "xtb\\.example\\.test\\.\\[127\\.0\\.0\\.35\\]:${P[xtb]}: "
no_grep_in out ta-wrong-name 'served-by'
wait

expect refused 2 -- srv xmpp-client good.example.test
grep_in err refused 'Connection refused'

# --- successes ---
server xa 127.0.0.31 "${P[xa]}"
expect good 0 -- srv xmpp-client good.example.test
grep_in out good '^served-by-xa$'
grep_in out good '^hello$'
grep_in err good '^peer: xa\.example\.test$'
wait

# XMPP client to server (RFC 6120): the stream header's to= is the
# service domain, STARTTLS, then DANE at the SRV target
server xa 127.0.0.31 "${P[xa]}" --starttls xmpp
expect xmpp 0 -- srv xmpp-client good.example.test --starttls xmpp --json
json_valid xmpp err
json_is xmpp err '.outcome == "ok" and .addresses[-1].role == "connect" and .addresses[-1].address == "127.0.0.31" and .addresses[-1].result == "ok"'
grep_in out xmpp '^served-by-xa$'
if jq -e '.peer == "xa.example.test" and .starttls.protocol == "xmpp" and .starttls.hello == "good.example.test" and .exit_code == 0' "$T/err" >/dev/null; then
	npass=$((npass + 1))
else
	nfail=$((nfail + 1)); echo "not ok: xmpp-json: $(head -c 800 "$T/err")"
fi
wait

server xb 127.0.0.32 "${P[xb]}"
server xc 127.0.0.33 "${P[xc]}"
expect fall-through 0 -- srv xmpp-client fall.example.test
grep_in out fall-through '^served-by-xc$'
grep_in err fall-through "xb\\.example\\.test\\.\\[127\\.0\\.0\\.32\\]:${P[xb]}: "
wait

# DANE-TA(2): the certificate names the service domain only
server xta 127.0.0.34 "${P[xta]}"
expect ta-service-domain 0 -- srv imaps chat.example.test
grep_in out ta-service-domain '^served-by-xta$'
grep_in err ta-service-domain '^peer: xta\.example\.test$'
wait

# --- --lookup --srv ---
expect lookup 0 -- "$CLI" --lookup --srv xmpp-server look.example.test
grep_in out lookup '^; destination look\.example\.test\. SRV: secure: '
grep_in out lookup "^_xmpp-server\\._tcp\\.look\\.example\\.test\\. [0-9]+ IN SRV 5 10 ${P[look]} xa\\.example\\.test\\.$"
grep_in out lookup "^; host 1: xa\\.example\\.test\\. priority 5 weight 10 port ${P[look]}$"
grep_in out lookup '^;   verdict dane: '
expect lookup-json 0 -- "$CLI" --lookup --srv xmpp-server look.example.test --json
json_valid lookup-json out
if jq -e --arg o "_${P[look]}._tcp.xa.example.test." --argjson p "${P[look]}" '.type == "SRV" and .query == "_xmpp-server._tcp.look.example.test." and .verdict == "secure" and .exit_code == 0 and (.hosts|length) == 1 and .hosts[0].port == $p and .hosts[0].priority == 5 and .hosts[0].weight == 10 and .hosts[0].tlsa_owner == $o and .hosts[0].verdict == "dane" and .hosts[0].reference_names == ["xa.example.test", "look.example.test"]' "$T/out" >/dev/null; then
	npass=$((npass + 1))
else
	nfail=$((nfail + 1)); echo "not ok: lookup-json: $(head -c 600 "$T/out")"
fi
expect lookup-insecure 7 -- "$CLI" --lookup --srv xmpp-client insecure.test
grep_in out lookup-insecure '^; destination insecure\.test\. SRV: insecure: '

expect usage-service 1 -- "$CLI" --lookup --srv 'bad.service' example.test
expect usage-port 1 -- "$CLI" --lookup --srv imaps example.test 993
finish
