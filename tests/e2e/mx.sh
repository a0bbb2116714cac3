#!/bin/bash
# tlspool-connect --mx: SMTP DANE by MX (RFC 7672) end to end, against
# zones signed for this run with MX, A and TLSA records added at test
# time.  Each MX host has its own loopback address (127.0.0.N), served by
# a one-connection tlspool-connect --server --starttls smtp that says who
# it is after the handshake, so that the host a client reached shows in
# its output; one host is a scripted SMTP server that offers no STARTTLS.
# Asserts exit codes, the host reached, the peer reported and the reasons
# of the failures.
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
leaf mxta mxta.example.test || { echo "certtool failed"; exit 1; }
leaf nexthop ta.example.test || { echo "certtool failed"; exit 1; }
cat "$C/other.pem" "$C/inter.pem" "$C/root.pem" >"$C/other.chain"

declare -A P
for s in good fall all cname ins ta unusable bogus lookup smtps nostls; do
	P[$s]=$(free_port)
done
tlsa() { # USAGE SELECTOR MTYPE CERT OWNER
	"$TLSAGEN" "$1" "$2" "$3" "$4" "$5"
}
{
	# hosts, each on its own loopback address
	echo "mxa IN A 127.0.0.11"
	echo "mxb IN A 127.0.0.12"
	echo "mxc IN A 127.0.0.13"
	echo "mxd IN A 127.0.0.14"
	echo "mxe IN A 127.0.0.15"
	echo "mxta IN A 127.0.0.17"
	echo "mxtb IN A 127.0.0.18"
	echo "mxtc IN A 127.0.0.19"
	echo "mxu IN A 127.0.0.20"
	echo "mxalias IN CNAME mxa.example.test."
	echo "mxins IN CNAME mxi.insecure.test."
	# good: DANE-EE, no name checks (www's certificate names www)
	echo "good IN MX 10 mxa.example.test."
	tlsa 3 1 1 "$C/www.pem" "_${P[good]}._tcp.mxa.example.test."
	# fall: the first MX host fails, the second authenticates
	echo "fall IN MX 10 mxb.example.test."
	echo "fall IN MX 20 mxc.example.test."
	tlsa 3 1 1 "$C/other.pem" "_${P[fall]}._tcp.mxb.example.test."
	tlsa 3 1 1 "$C/www.pem" "_${P[fall]}._tcp.mxc.example.test."
	# all: every MX host fails
	echo "all IN MX 10 mxd.example.test."
	echo "all IN MX 20 mxe.example.test."
	tlsa 3 1 1 "$C/other.pem" "_${P[all]}._tcp.mxd.example.test."
	tlsa 3 1 1 "$C/other.pem" "_${P[all]}._tcp.mxe.example.test."
	# an MX host by a secure alias: TLSA at the expanded name
	echo "viaalias IN MX 10 mxalias.example.test."
	tlsa 3 1 1 "$C/www.pem" "_${P[cname]}._tcp.mxa.example.test."
	# by an alias into an unsigned zone: TLSA at the original name
	echo "viains IN MX 10 mxins.example.test."
	tlsa 3 1 1 "$C/www.pem" "_${P[ins]}._tcp.mxins.example.test."
	# DANE-TA(2): the name checks (RFC 7672 section 3.2.2)
	echo "tahost IN MX 10 mxta.example.test."
	echo "ta IN MX 10 mxtb.example.test."
	echo "tawrong IN MX 10 mxtc.example.test."
	for h in mxta mxtb mxtc; do
		tlsa 2 0 1 "$C/root.pem" "_${P[ta]}._tcp.$h.example.test."
	done
	# unusable for SMTP: PKIX-EE(1), PKIX-TA(0)
	echo "unusable IN MX 10 mxu.example.test."
	tlsa 1 1 1 "$C/www.pem" "_${P[unusable]}._tcp.mxu.example.test."
	tlsa 0 0 1 "$C/root.pem" "_${P[unusable]}._tcp.mxu.example.test."
	# a bogus TLSA RRset at the first MX host: skipped, not trusted
	echo "bogusfirst IN MX 10 mx.bogus.test."
	echo "bogusfirst IN MX 20 mxa.example.test."
	tlsa 3 1 1 "$C/www.pem" "_${P[bogus]}._tcp.mxa.example.test."
	# implicit TLS (SMTPS, port 465 style) at the same host
	tlsa 3 1 1 "$C/www.pem" "_${P[smtps]}._tcp.mxa.example.test."
	# the first MX host offers no STARTTLS
	echo "mxn IN A 127.0.0.23"
	echo "nostls IN MX 10 mxn.example.test."
	echo "nostls IN MX 20 mxa.example.test."
	tlsa 3 1 1 "$C/www.pem" "_${P[nostls]}._tcp.mxn.example.test."
	tlsa 3 1 1 "$C/www.pem" "_${P[nostls]}._tcp.mxa.example.test."
	# lookup
	echo "look IN MX 10 mxb.example.test."
	echo "look IN MX 20 mxplain.example.test."
	echo "mxplain IN A 127.0.0.21"
	tlsa 3 1 1 "$C/www.pem" "_${P[lookup]}._tcp.mxb.example.test."
	echo "nullmx IN MX 0 ."
	echo "plain IN MX 10 mxplain.example.test."
} >"$W/example.add"
{
	echo "@ IN MX 10 mxa.example.test."
	echo "mxi IN A 127.0.0.16"
} >"$W/insecure.add"
{
	echo "mx IN A 127.0.0.22"
	tlsa 3 1 1 "$C/www.pem" "_${P[bogus]}._tcp.mx.bogus.test."
} >"$W/bogus.add"
echo "@ IN MX 10 mxa.example.test." >"$W/expired.add"
zones/serve start "$W/z" --add example.test "$W/example.add" \
	--add insecure.test "$W/insecure.add" --add bogus.test "$W/bogus.add" \
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
	for n in mxa mxb mxc mxd mxe mxins mxu; do
		printf '[identity %s.example.test]\nkey = %s\ncertificate = %s\n' "$n" "$C/www.key" "$C/chain.pem"
	done
	printf '[identity mxta.example.test]\nkey = %s\ncertificate = %s\n' "$C/mxta.key" "$C/mxta.chain"
	printf '[identity mxtb.example.test]\nkey = %s\ncertificate = %s\n' "$C/nexthop.key" "$C/nexthop.chain"
	printf '[identity mxtc.example.test]\nkey = %s\ncertificate = %s\n' "$C/other.key" "$C/other.chain"
} >"$CONF"
export TLSPOOL_CONFIG="$CONF"

# (every server, and so every "wait" for it, ends within 60 s)
# server NAME ADDR PORT [OPTIONS...]: a one-connection SMTP server
# (--starttls smtp) for MX host NAME on ADDR that greets with
# "served-by-NAME" after the handshake and echoes.
server() {
	local n=$1 a=$2 p=$3
	shift 3
	timeout 60 "$CLI" --server --starttls smtp --no-peer-cert --bind "$a" \
		--myname "$n.example.test" "$@" --exec "echo served-by-$n; cat" \
		"$p" 2>"$T/server-$n.err" >/dev/null &
	pids+=($!)
	local i
	listening "$a" "$p"
}
listening() { # ADDR PORT
	local i
	for i in $(seq 100); do
		ss -Htln "src $1 and sport = :$2" | grep -q . && return 0
		sleep 0.05
	done
	echo "nothing listens on $1:$2" >&2
}
mx() { # DOMAIN PORT [OPTIONS...]: as a sending MTA, STARTTLS after EHLO
	local d=$1 p=$2
	shift 2
	echo hello | timeout 30 "$CLI" --client --starttls smtp --mx "$@" "$d" "$p"
}
export CLI
export -f mx

# --- failures first ---
# an insecure MX RRset: no DANE, nothing connected
expect insecure-mx 7 -- mx insecure.test "${P[good]}"
grep_in err insecure-mx 'MX RRset is insecure.*\(no DANE\)'
expect insecure-mx-json 7 -- mx insecure.test "${P[good]}" --json
json_valid insecure-mx-json err
json_is insecure-mx-json err '.outcome == "no-dane" and .addresses == [] and (.hint | test("DNSSEC-signed"))'
if jq -e '.verdict == "insecure" and .exit_code == 7 and .attempts == []' "$T/err" >/dev/null; then
	npass=$((npass + 1))
else
	nfail=$((nfail + 1)); echo "not ok: insecure-mx-json: $(head -c 800 "$T/err")"
fi
no_grep_in err insecure-mx '\[127|Connection'

# a bogus MX RRset fails closed
expect bogus-mx 6 -- mx expired.test "${P[good]}"
grep_in err bogus-mx 'MX RRset is bogus'

# a secure MX RRset whose only host has no TLSA records: no DANE
expect no-tlsa 7 -- mx plain.example.test "${P[good]}"
grep_in err no-tlsa "mxplain\.example\.test\.: skipped: _${P[good]}\._tcp\.mxplain\.example\.test\.: no TLSA records"
grep_in err no-tlsa 'no MX host could be used \(no DANE\)'

# a null MX
expect null-mx 4 -- mx nullmx.example.test "${P[good]}"
grep_in err null-mx 'RFC 7505'

# every MX host fails authentication: exit 4, both tried in order
server mxd 127.0.0.14 "${P[all]}"
server mxe 127.0.0.15 "${P[all]}"
expect all-fail 4 -- mx all.example.test "${P[all]}"
grep_in err all-fail "mxd\\.example\\.test\\.\\[127\\.0\\.0\\.14\\]:${P[all]}: "
grep_in err all-fail "mxe\\.example\\.test\\.\\[127\\.0\\.0\\.15\\]:${P[all]}: "
grep_in err all-fail 'no MX host could be used'
no_grep_in out all-fail 'served-by'
wait
# the same as JSON: the destination and each attempt, on stderr
server mxd 127.0.0.14 "${P[all]}"
server mxe 127.0.0.15 "${P[all]}"
expect all-fail-json 4 -- mx all.example.test "${P[all]}" --json
json_valid all-fail-json err
# every address tried is in "addresses", in the order tried
json_is all-fail-json err '[.addresses[] | select(.role == "connect") | .address] == [.attempts[].address]'
if jq -e '.type == "MX" and .verdict == "secure" and .exit_code == 4 and (.attempts|length) == 2 and .attempts[0].host == "mxd.example.test." and .attempts[0].address == "127.0.0.14" and .attempts[0].class == "no-match" and .attempts[0].exit_code == 4 and .attempts[1].host == "mxe.example.test." and (.hosts|length) == 2' "$T/err" >/dev/null; then
	npass=$((npass + 1))
else
	nfail=$((nfail + 1)); echo "not ok: all-fail-json: $(head -c 800 "$T/err")"
fi
wait

# DANE-TA(2) with a certificate that names neither the MX host nor the
# next-hop domain
server mxtc 127.0.0.19 "${P[ta]}"
expect ta-wrong-name 4 -- mx tawrong.example.test "${P[ta]}"
grep_in err ta-wrong-name 'mxtc\.example\.test'
no_grep_in out ta-wrong-name 'served-by'
wait

# records that SMTP cannot use (RFC 7672 section 3.1.3): not authenticated
expect unusable 4 -- mx unusable.example.test "${P[unusable]}"
grep_in err unusable 'none usable for SMTP'
no_grep_in err unusable '\[127\.0\.0\.20\]'

# no MX host listening: a connection failure
expect refused 2 -- mx good.example.test "${P[good]}"
grep_in err refused 'connect: Connection refused'

# an SMTP server without STARTTLS (RFC 3207): that host fails, the next
# one is used
timeout 60 python3 - 127.0.0.23 "${P[nostls]}" <<'PY' &
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(1)
c, _ = s.accept()
c.sendall(b"220 mxn.example.test ESMTP\r\n")
c.recv(512)
c.sendall(b"250-mxn.example.test\r\n250 PIPELINING\r\n")
c.recv(512)
c.close()
PY
pids+=($!)
listening 127.0.0.23 "${P[nostls]}"
server mxa 127.0.0.11 "${P[nostls]}"
expect no-starttls 0 -- mx nostls.example.test "${P[nostls]}"
grep_in err no-starttls "mxn\.example\.test\.\[127\.0\.0\.23\]:${P[nostls]}: .*offers no STARTTLS"
grep_in out no-starttls '^served-by-mxa$'
wait

# --- successes ---
# DANE-EE(3): no name checks; the peer is the MX host
server mxa 127.0.0.11 "${P[good]}"
expect good 0 -- mx good.example.test "${P[good]}"
grep_in out good '^served-by-mxa$'
grep_in out good '^hello$'
grep_in err good '^peer: mxa\.example\.test$'
wait
# the trace as JSON: the SMTP dialogue, the TLSA owner, the peer
server mxa 127.0.0.11 "${P[good]}"
expect good-json 0 -- mx good.example.test "${P[good]}" --json
json_valid good-json err
json_is good-json err '.outcome == "ok" and .addresses[-1].role == "connect" and .addresses[-1].result == "ok" and .addresses[-1].port == '"${P[good]}"
if jq -e --arg o "_${P[good]}._tcp.mxa.example.test." '.peer == "mxa.example.test" and .starttls.protocol == "smtp" and (.starttls.capabilities | index("STARTTLS")) and .dns.query == $o and .verdict == "authenticated" and .exit_code == 0' "$T/err" >/dev/null; then
	npass=$((npass + 1))
else
	nfail=$((nfail + 1)); echo "not ok: good-json: $(head -c 800 "$T/err")"
fi
wait

# implicit TLS (SMTPS): no --starttls on either side
timeout 60 "$CLI" --server --no-peer-cert --bind 127.0.0.11 --myname mxa.example.test \
	--exec "echo served-by-mxa; cat" "${P[smtps]}" 2>/dev/null >/dev/null &
pids+=($!)
listening 127.0.0.11 "${P[smtps]}"
expect smtps 0 -- bash -c "echo hello | timeout 30 $CLI --client --mx good.example.test ${P[smtps]}"
grep_in out smtps '^served-by-mxa$'
grep_in err smtps '^peer: mxa\.example\.test$'
wait

# a failed MX host falls through to the next
server mxb 127.0.0.12 "${P[fall]}"
server mxc 127.0.0.13 "${P[fall]}"
expect fall-through 0 -- mx fall.example.test "${P[fall]}"
grep_in out fall-through '^served-by-mxc$'
grep_in err fall-through "mxb\\.example\\.test\\.\\[127\\.0\\.0\\.12\\]:${P[fall]}: "
grep_in err fall-through '^peer: mxc\.example\.test$'
wait

# a bogus TLSA RRset: that host is skipped, the next one used
server mxa 127.0.0.11 "${P[bogus]}"
expect bogus-tlsa 0 -- mx bogusfirst.example.test "${P[bogus]}"
grep_in err bogus-tlsa 'mx\.bogus\.test\.: skipped: .*bogus'
grep_in out bogus-tlsa '^served-by-mxa$'
wait

# RFC 7672 section 2.2.3: a secure alias, TLSA at the expanded name; the
# peer is the MX host as published
server mxa 127.0.0.11 "${P[cname]}"
expect cname-secure 0 -- mx viaalias.example.test "${P[cname]}" -v
grep_in out cname-secure '^served-by-mxa$'
grep_in err cname-secure "authenticated by _${P[cname]}\\._tcp\\.mxa\\.example\\.test\\."
grep_in err cname-secure '^peer: mxalias\.example\.test$'
wait

# an alias into an unsigned zone: TLSA at the original name
server mxins 127.0.0.16 "${P[ins]}"
expect cname-insecure 0 -- mx viains.example.test "${P[ins]}" -v
grep_in out cname-insecure '^served-by-mxins$'
grep_in err cname-insecure "authenticated by _${P[ins]}\\._tcp\\.mxins\\.example\\.test\\."
wait

# DANE-TA(2) name checks: the MX host name, then the next-hop domain
server mxta 127.0.0.17 "${P[ta]}"
expect ta-mx-host 0 -- mx tahost.example.test "${P[ta]}"
grep_in out ta-mx-host '^served-by-mxta$'
wait
server mxtb 127.0.0.18 "${P[ta]}"
expect ta-next-hop 0 -- mx ta.example.test "${P[ta]}"
grep_in out ta-next-hop '^served-by-mxtb$'
grep_in err ta-next-hop '^peer: mxtb\.example\.test$'
wait

# --- --lookup --mx ---
expect lookup 0 -- "$CLI" --lookup --mx look.example.test "${P[lookup]}"
grep_in out lookup '^; destination look\.example\.test\. MX: secure: '
grep_in out lookup '^look\.example\.test\. [0-9]+ IN MX 10 mxb\.example\.test\.$'
grep_in out lookup '^; host 1: mxb\.example\.test\. preference 10 port '"${P[lookup]}"'$'
grep_in out lookup '^;   address secure: 127\.0\.0\.12$'
grep_in out lookup "^;   tlsa    _${P[lookup]}\\._tcp\\.mxb\\.example\\.test\\. \\(base mxb\\.example\\.test\\.\\)$"
grep_in out lookup '^;   verdict dane: '
grep_in out lookup "^_${P[lookup]}\\._tcp\\.mxb\\.example\\.test\\. [0-9]+ IN TLSA 3 1 1 [0-9A-F]{64}$"
grep_in out lookup '^; host 2: mxplain\.example\.test\. preference 20'
grep_in out lookup '^;   verdict no-tlsa: '
expect lookup-json 0 -- "$CLI" --lookup --mx look.example.test "${P[lookup]}" --json
json_valid lookup-json out
if jq -e --arg o "_${P[lookup]}._tcp.mxb.example.test." '.type == "MX" and .verdict == "secure" and .exit_code == 0 and (.hosts|length) == 2 and .hosts[0].name == "mxb.example.test." and .hosts[0].tlsa_owner == $o and .hosts[0].verdict == "dane" and .hosts[0].addresses == ["127.0.0.12"] and .hosts[0].address_verdict == "secure" and (.hosts[0].tlsa.records|length) == 1 and .hosts[0].reference_names == ["mxb.example.test", "look.example.test"] and .hosts[1].verdict == "no-tlsa" and .rrset.verdict == "secure"' "$T/out" >/dev/null; then
	npass=$((npass + 1))
else
	nfail=$((nfail + 1)); echo "not ok: lookup-json: $(head -c 600 "$T/out")"
fi
expect lookup-insecure 7 -- "$CLI" --lookup --mx insecure.test --json
json_valid lookup-insecure out
json_is lookup-insecure out '.outcome == "no-dane" and (.hint | test("TLSA")) and (.hint | test("--diagnose") | not)'
if jq -e '.verdict == "insecure" and .exit_code == 7 and .hosts[0].verdict == "insecure"' "$T/out" >/dev/null; then
	npass=$((npass + 1))
else
	nfail=$((nfail + 1)); echo "not ok: lookup-insecure: $(head -c 600 "$T/out")"
fi
expect lookup-bogus 6 -- "$CLI" --lookup --mx expired.test
grep_in out lookup-bogus '^; destination expired\.test\. MX: dns-error: '
expect lookup-unusable 4 -- "$CLI" --lookup --mx unusable.example.test "${P[unusable]}"
grep_in out lookup-unusable '^;   verdict unusable: '

# --lookup DOMAIN 25 points a mail administrator at --mx
expect lookup-hint 4 -- "$CLI" --lookup look.example.test 25
grep_in err lookup-hint 'try: for SMTP the TLSA records are at the MX hosts .*--lookup --mx look\.example\.test'

# usage errors
expect usage-both 1 -- "$CLI" --lookup --mx --srv imaps example.test
expect usage-sni 1 -- "$CLI" --client --mx --sni x.example.test example.test
expect usage-server 1 -- "$CLI" --server --mx 25
expect usage-port 1 -- "$CLI" --lookup --mx example.test 0
finish
