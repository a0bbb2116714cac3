#!/bin/bash
# The LDAP step end to end: a real slapd started here on loopback ports
# (StartTLS and ldaps) with a certificate made by certtool, published by
# TLSA at _PORT._tcp.ldap.example.test, found by the SRV record
# _ldap._tcp.example.test in zones signed for this script; it holds john
# (userCertificate;binary) and alice (an armored pgpKey).  A tlspool-connect
# server with [validation] sources = ldap authenticates its clients:
#  - john by his certificate, alice by her OpenPGP key: peer printed, and
#    --diagnose shows the LDAP step;
#  - each failure is refused (exit 4) with its reason: another certificate,
#    no entry, the directory's TLSA naming another key, an SRV record in
#    the unsigned insecure.test, slapd stopped;
#  - tlspool-connect --lookup --ldap shows the SRV answer, the directory's
#    DANE verdict and the entry, in text and JSON; it fails (exit 4) for an
#    insecure SRV and a directory whose TLSA names another key.
. "$(dirname "$0")/common"

W="$T/w"
mkdir -p "$W/gpg"
chmod 700 "$W/gpg"
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 12000)) # below the ephemeral range
		ss -Htln "sport = :$p" | grep -q . || { echo "$p"; return; }
	done
}
declare -A P
for s in tls ldap ldaps; do
	P[$s]=$(free_port)
	while [ "${P[$s]}" = "${P[tls]}" ] && [ "$s" != tls ]; do P[$s]=$(free_port); done
done
[ "${P[ldap]}" != "${P[ldaps]}" ] || P[ldaps]=$((P[ldap] + 1))

mk() { # NAME TEMPLATE-TEXT
	certtool --generate-privkey --key-type ecdsa --outfile "$W/$1.key" 2>/dev/null
	# shellcheck disable=SC2059 # $2 holds \n escapes
	printf "${2}expiration_days = 30\nsigning_key\n" >"$W/$1.tmpl"
	certtool --generate-self-signed --load-privkey "$W/$1.key" \
		--template "$W/$1.tmpl" --outfile "$W/$1.pem" 2>/dev/null
	certtool --certificate-info --infile "$W/$1.pem" --outder \
		--outfile "$W/$1.der" 2>/dev/null
}
spki() { openssl pkey -in "$1" -pubout -outform DER | sha256sum | cut -c1-64; }
mk www 'dns_name = www.example.test\n'
mk slapd 'cn = ldap.example.test\ndns_name = ldap.example.test\ntls_www_server\n'
mk wrong 'cn = ldap.example.test\n'
mk john 'dn = "uid=john,dc=example,dc=test"\n'
mk mallory 'dn = "uid=john,dc=example,dc=test"\n'
mk nobody 'dn = "uid=nobody,dc=example,dc=test"\n'
mk johnbad 'dn = "uid=john,dc=bad,dc=example,dc=test"\n'
mk johnins 'dn = "uid=john,dc=insecure,dc=test"\n'
g() { GNUPGHOME=$W/gpg gpg --batch --quiet --no-tty --pinentry-mode loopback --passphrase '' "$@" 2>/dev/null; }
g --quick-gen-key 'Alice <alice@example.test>' ed25519 sign,auth never
(umask 077; g --export-secret-keys alice@example.test >"$W/alice.sec")
g --armor --export alice@example.test >"$W/alice.asc"
grep -q 'BEGIN PGP PUBLIC KEY BLOCK' "$W/alice.asc" || { echo "gpg failed"; exit 1; }

{
	echo "_${P[tls]}._tcp.www IN TLSA 3 1 1 $(spki "$W/www.key")"
	echo "ldap IN A 127.0.0.1"
	echo "_${P[ldap]}._tcp.ldap IN TLSA 3 1 1 $(spki "$W/slapd.key")"
	echo "_${P[ldaps]}._tcp.ldap IN TLSA 3 1 1 $(spki "$W/slapd.key")"
	echo "_ldap._tcp IN SRV 0 0 ${P[ldap]} ldap.example.test."
	echo "_ldap._tcp.bad IN SRV 0 0 ${P[ldap]} ldapbad.example.test."
	echo "ldapbad IN A 127.0.0.1"
	echo "_${P[ldap]}._tcp.ldapbad IN TLSA 3 1 1 $(spki "$W/wrong.key")"
} >"$W/example.add"
echo "_ldap._tcp IN SRV 0 0 ${P[ldap]} ldap.example.test." >"$W/insecure.add"
{
	printf 'dn: dc=example,dc=test\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n'
	printf 'dn: uid=john,dc=example,dc=test\nobjectClass: inetOrgPerson\nuid: john\ncn: John\nsn: Doe\nmail: john@example.test\n'
	printf 'userCertificate;binary:< file://%s/john.der\n\n' "$W"
	printf 'dn: uid=alice,dc=example,dc=test\nobjectClass: inetOrgPerson\nobjectClass: pgpKeyInfo\nuid: alice\ncn: Alice\nsn: A\nmail: alice@example.test\n'
	printf 'pgpKey:< file://%s/alice.asc\n' "$W"
} >"$W/data.ldif"

zones/serve start "$W/z" --add example.test "$W/example.add" \
	--add insecure.test "$W/insecure.add" 2>/dev/null || { echo "zones failed"; exit 1; }
pids=()
cleanup_all() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	tests/tools/slapd.sh stop "$W/slapd" >/dev/null 2>&1
	zones/serve stop "$W/z" >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup_all EXIT
tests/tools/slapd.sh start "$W/slapd" "$W/data.ldif" \
	"ldap://127.0.0.1:${P[ldap]}/ ldaps://127.0.0.1:${P[ldaps]}/" \
	"$W/slapd.pem" "$W/slapd.key" || { echo "slapd failed"; exit 1; }

C="$W/tlspool.conf"
{
	cat "$W/z/tlspool.conf"
	printf '[tls]\nhandshake_timeout_ms = 5000\n[validation]\nsources = ldap\n'
	printf '[identity www.example.test]\nkey = %s\n' "$W/www.key"
	for n in john mallory nobody johnbad johnins; do
		case $n in
		john | mallory) id=john@example.test ;;
		nobody) id=nobody@example.test ;;
		johnbad) id=john@bad.example.test ;;
		johnins) id=john@insecure.test ;;
		esac
		[ "$n" = mallory ] && continue
		printf '[identity %s]\nkey = %s\ncertificate = %s\n' "$id" "$W/$n.key" "$W/$n.pem"
	done
	printf '[identity alice@example.test]\nopenpgp_key = %s\n' "$W/alice.sec"
} >"$C"
# mallory claims john@example.test with a certificate of his own
sed "s|$W/john.key|$W/mallory.key|; s|$W/john.pem|$W/mallory.pem|" "$C" >"$W/mallory.conf"
port=${P[tls]}

server() {
	("$CLI" --config "$C" --server --bind 127.0.0.1 --myname www.example.test \
	  --diagnose "$@" "$port" 2>"$T/server.err" >"$T/server.out"
	 echo $? >"$T/server.rc") &
	pids+=($!)
	for i in $(seq 100); do ss -Htln "sport = :$port" | grep -q . && return; sleep 0.05; done
}
server_rc() {
	for i in $(seq 200); do [ -s "$T/server.rc" ] && break; sleep 0.05; done
	cat "$T/server.rc"
	rm -f "$T/server.rc"
}
client() { # CONF MYNAME
	echo hi | "$CLI" --config "$1" --client --sni www.example.test --myname "$2" \
		127.0.0.1 "$port" >"$T/out" 2>"$T/err"
}
# refused NAME CONF MYNAME PATTERN: the server refuses the client (exit 4)
# and its detail matches PATTERN
refused() {
	server --exec cat
	client "$2" "$3"
	local rc want=${5:-4}
	rc=$(server_rc)
	if [ "$rc" = "$want" ] && grep -qE -- "$4" "$T/server.err"; then
		npass=$((npass + 1))
	else
		nfail=$((nfail + 1))
		echo "not ok: $1: server exit $rc, want $want and /$4/"
		sed 's/^/  server: /' "$T/server.err" | head -20
	fi
	no_grep_in out "$1-no-data" '^hi$'
}

# --- failures first, each with its reason ---
refused different "$W/mallory.conf" john@example.test \
	'john@example\.test: LDAP: .*none of them the peer'"'"'s'
refused no-entry "$C" nobody@example.test \
	'nobody@example\.test: LDAP: .*no entry under "dc=example,dc=test"'
refused tlsa-mismatch "$C" john@bad.example.test \
	'LDAP: _'"${P[ldap]}"'\._tcp\.ldapbad\.example\.test\.: .*the directory is not authenticated'
refused insecure-srv "$C" john@insecure.test \
	'LDAP: _ldap\._tcp\.insecure\.test\.: the SRV RRset is insecure'

# --- john by his certificate, alice by her OpenPGP key ---
server --exec cat
client "$C" john@example.test
grep_in out john '^hi$'
rc=$(server_rc)
[ "$rc" = 0 ] && npass=$((npass + 1)) || { nfail=$((nfail + 1)); echo "not ok: john: server exit $rc"; cat "$T/server.err"; }
grep_in_file() { # NAME FILE PATTERN
	if grep -qE -- "$3" "$2"; then npass=$((npass + 1)); else
		nfail=$((nfail + 1)); echo "not ok: $1: lacks /$3/"; sed 's/^/  /' "$2" | head -30; fi
}
grep_in_file john "$T/server.err" '^peer: john@example\.test$'
# --diagnose shows the LDAP step
grep_in_file john-diagnose "$T/server.err" '^; query   _ldap\._tcp\.example\.test\. SRV$'
grep_in_file john-diagnose "$T/server.err" "^; server  ldap\\.example\\.test port ${P[ldap]} \\(StartTLS\\), reached at 127\\.0\\.0\\.1$"
grep_in_file john-diagnose "$T/server.err" '^; dane    authenticated: '
grep_in_file john-diagnose "$T/server.err" '^; entry   uid=john,dc=example,dc=test$'
grep_in_file john-diagnose "$T/server.err" '^;           matched: the certificate the peer presented$'
grep_in_file john-diagnose "$T/server.err" '^; ldap    matched: '

server --exec cat
client "$C" alice@example.test
grep_in out alice '^hi$'
rc=$(server_rc)
[ "$rc" = 0 ] && npass=$((npass + 1)) || { nfail=$((nfail + 1)); echo "not ok: alice: server exit $rc"; cat "$T/server.err"; }
grep_in_file alice "$T/server.err" '^peer: alice@example\.test$'

# --- --lookup --ldap: the SRV answer, the directory's DANE verdict, the entry ---
expect lookup 0 -- "$CLI" --config "$C" --lookup --ldap alice@example.test
grep_in out lookup "^_ldap\._tcp\.example\.test\. 3600 IN SRV 0 0 ${P[ldap]} ldap\.example\.test\.$"
grep_in out lookup '^; verdict secure: '
grep_in out lookup "^_${P[ldap]}\._tcp\.ldap\.example\.test\. 3600 IN TLSA 3 1 1 "
grep_in out lookup '^; record  1: 3 1 1 \(DANE-EE\): matched'
grep_in out lookup '^; dane    authenticated: '
grep_in out lookup '^; search  base "dc=example,dc=test" filter \(\|\(mail=alice@example\.test\)\(uid=alice\)\)$'
grep_in out lookup '^; entry   uid=alice,dc=example,dc=test$'
grep_in out lookup '^; value   1: pgpKey \(armored\)$'
grep_in out lookup '^;   uid     "Alice <alice@example\.test>" valid$'
grep_in out lookup '^; ldap    read: '
expect lookup-json 0 -- "$CLI" --config "$C" --lookup --ldap john@example.test --json
json_valid "lookup-json" out
if jq -e --argjson p "${P[ldap]}" '.verdict == "read" and .srv.verdict == "secure" and
	.directory.host == "ldap.example.test" and .directory.port == $p and
	.directory.tls == "starttls" and .directory.dane.verdict == "authenticated" and
	.entry == "uid=john,dc=example,dc=test" and
	.values[0].attribute == "userCertificate;binary" and
	(.values[0].subject | test("john")) and .exit_code == 0' "$T/out" >/dev/null; then
	npass=$((npass + 1))
else
	nfail=$((nfail + 1)); echo "not ok: lookup-json: $(head -c 800 "$T/out")"
fi
expect lookup-insecure 4 -- "$CLI" --config "$C" --lookup --ldap john@insecure.test
grep_in out lookup-insecure '^; verdict insecure: '
grep_in out lookup-insecure '^; ldap    not-authenticated: '
grep_in err lookup-insecure 'SRV RRset is insecure'
no_grep_in out lookup-insecure '^; entry'
expect lookup-tlsa 4 -- "$CLI" --config "$C" --lookup --ldap john@bad.example.test --json
json_valid "lookup-tlsa" out
if jq -e '.verdict == "not-authenticated" and .class == "directory-not-authenticated" and
	.directory.dane.verdict == "no-match" and .entry == ""' "$T/out" >/dev/null; then
	npass=$((npass + 1))
else
	nfail=$((nfail + 1)); echo "not ok: lookup-tlsa: $(head -c 800 "$T/out")"
fi
expect lookup-usage 1 -- "$CLI" --config "$C" --lookup --ldap 'not an identity'
expect ldap-without-lookup 1 -- "$CLI" --config "$C" --ldap --client 127.0.0.1 1

# --- slapd stopped: unreachable, refused (exit 6: the infrastructure
# that proves peers failed, as a DNS failure does) ---
tests/tools/slapd.sh stop "$W/slapd"
refused slapd-stopped "$C" john@example.test \
	'john@example\.test: LDAP: ldap\.example\.test port '"${P[ldap]}"' \(127\.0\.0\.1\): Connection refused' 6

finish
