#!/bin/bash
# tlspool-connect --client --starttls ldap against a real OpenLDAP slapd
# (tests/tools/slapd.sh, with its operations logged), with TLSA records for
# its certificate and the SRV record _ldap._tcp.example.test in zones
# signed for this script:
#  - after the StartTLS extended operation (RFC 4511 section 4.14) the peer
#    is ldap.example.test and a search runs over TLS: the base entry
#    dc=example,dc=test comes back (o: Example) with a success result, and
#    slapd logs the StartTLS, the TLS connection and the search;
#  - the same through --srv ldap example.test (RFC 7673);
#  - failures: the TLSA record of another key (exit 4, no search), a
#    slapd without TLS, which answers the StartTLS request with an error
#    result (exit 3).
# slapd runs as the current user; skips (77) without slapd.
. "$(dirname "$0")/common"
. scripts/ports.sh
. tests/tools/servers-common.sh
need_cmds slapd slapadd certtool
srv_setup
leaf ldap ldap.example.test
leaf other ldap.example.test

declare -A P
for s in tls notls; do P[$s]=$(free_port); done
{
	echo "ldap IN A 127.0.0.1"
	echo "badldap IN A 127.0.0.1"
	echo "_ldap._tcp IN SRV 0 0 ${P[tls]} ldap.example.test."
	tlsa 3 1 1 "$C/ldap.pem" "_${P[tls]}._tcp.ldap.example.test."
	tlsa 3 1 1 "$C/other.pem" "_${P[tls]}._tcp.badldap.example.test."
	tlsa 3 1 1 "$C/ldap.pem" "_${P[notls]}._tcp.ldap.example.test."
} >"$W/example.add"
printf 'dn: dc=example,dc=test\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n' >"$W/data.ldif"
zones/serve start "$W/z" --add example.test "$W/example.add" 2>/dev/null ||
	{ echo "zones failed"; exit 1; }
cleanup_all() {
	tests/tools/slapd.sh stop "$W/slapd" >/dev/null 2>&1
	tests/tools/slapd.sh stop "$W/slapd0" >/dev/null 2>&1
	zones/serve stop "$W/z" >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup_all EXIT
LOG="$W/slapd-stats.log"
SLAPD_LOG=$LOG tests/tools/slapd.sh start "$W/slapd" "$W/data.ldif" \
	"ldap://127.0.0.1:${P[tls]}/" "$C/ldap.chain" "$C/ldap.key" ||
	{ echo "slapd failed"; exit 1; }
tests/tools/slapd.sh start "$W/slapd0" "$W/data.ldif" "ldap://127.0.0.1:${P[notls]}/" ||
	{ echo "slapd (no TLS) failed"; exit 1; }

CONF="$W/tlspool.conf"
{
	cat "$W/z/tlspool.conf"
	printf '[tls]\nhandshake_timeout_ms = 5000\n'
} >"$CONF"
export TLSPOOL_CONFIG="$CONF"

# After StartTLS (message 1), message 2: a SearchRequest (RFC 4511 section
# 4.5.1) for the base object dc=example,dc=test with the filter
# (objectClass=*), in BER; message 3: an UnbindRequest.
session() {
	await_tls
	printf '\x30\x37\x02\x01\x02\x63\x32'
	printf '\x04\x12dc=example,dc=test'
	printf '\x0a\x01\x00\x0a\x01\x00\x02\x01\x00\x02\x01\x00\x01\x01\x00'
	printf '\x87\x0bobjectClass\x30\x00'
	sleep 0.3
	printf '\x30\x05\x02\x01\x03\x42\x00'
	sleep 0.2
}
run() {
	session | timeout 20 "$CLI" --client --starttls ldap "$@"
}

# --- failures first ---
expect wrong-tlsa 4 -- run --sni badldap.example.test 127.0.0.1 "${P[tls]}"
grep_in err wrong-tlsa "_${P[tls]}\\._tcp\\.badldap\\.example\\.test\\."
no_grep_in err wrong-tlsa '^peer: '
check wrong-tlsa-no-output test ! -s "$T/out"
expect no-tls 3 -- run --sni ldap.example.test 127.0.0.1 "${P[notls]}"
grep_in err no-tls 'ldap client: the server refused StartTLS .*resultCode 2 \(protocolError\)'
no_grep_in err no-tls '^peer: '
check no-tls-no-output test ! -s "$T/out"
file_lacks wrong-tlsa-no-search "$LOG" 'SRCH base="dc=example,dc=test"'

# --- a search over the TLS channel ---
expect tls 0 -- run --sni ldap.example.test --diagnose 127.0.0.1 "${P[tls]}"
grep_in err tls '^peer: ldap\.example\.test$'
grep_in err tls '^; starttls +ldap, step done'
grep_in err tls '^; dane +authenticated'
# SearchResultEntry (0x64) of message 2 with the entry, then
# SearchResultDone (0x65) with resultCode success (0x0a 0x01 0x00)
hex() { od -An -v -tx1 "$1" | tr -d ' \n'; }
check tls-entry grep -qE "^30..020102646004126463" <(hex "$T/out")
check tls-attribute grep -qa 'Example' "$T/out"
check tls-done grep -qE '300c02010265070a0100' <(hex "$T/out")
wait_for "$LOG" 'SRCH base="dc=example,dc=test"' || true
file_has tls-logged "$LOG" 'EXT oid=1\.3\.6\.1\.4\.1\.1466\.20037'
file_has tls-logged "$LOG" 'conn=[0-9]+ fd=[0-9]+ TLS established tls_ssf=[0-9]+'
file_has tls-logged "$LOG" 'SRCH base="dc=example,dc=test" scope=0 deref=0 filter="\(objectClass=\*\)"'

# --- by SRV: _ldap._tcp.example.test -> ldap.example.test ---
expect srv 0 -- run --srv ldap example.test
grep_in err srv '^peer: ldap\.example\.test$'
check srv-entry grep -qa 'Example' "$T/out"

timed finished
finish
