#!/bin/bash
# tlspool-connect --client --starttls xmpp against a real Prosody
# (tests/tools/prosody.sh: a private instance on a loopback port, user
# john on example.test and bad.example.test), found by the SRV record
# _xmpp-client._tcp.example.test (RFC 7673) in zones signed for this
# script, with TLSA records for its certificate:
#  - --srv xmpp-client example.test: the peer is the SRV target
#    xmpp.example.test, and after STARTTLS an XMPP session runs over TLS
#    (a new stream, SASL PLAIN, resource binding, a jabber:iq:version
#    query answered by Prosody); Prosody logs the encrypted stream and
#    the login;
#  - the same by address, the stream to= the --sni name (example.test);
#  - server to server (--starttls xmpp-server, from= the --myname), by
#    address and by --srv xmpp-server: the server's features after TLS
#    (dialback), Prosody logs the encrypted s2s stream; an SRV target whose
#    TLSA names another key fails (exit 4);
#  - failures: an SRV target whose TLSA names another key (exit 4, no
#    login), a Prosody without a certificate, which offers no STARTTLS
#    (exit 3), a stream to a domain Prosody does not serve (its
#    host-unknown stream error, exit 3).
# Needs root and Prosody; skips (77) otherwise.
. "$(dirname "$0")/common"
. scripts/ports.sh
. tests/tools/servers-common.sh
need_root_and prosody prosodyctl setpriv certtool
srv_setup
leaf xmpp xmpp.example.test
leaf other xmpp.example.test

declare -A P
for s in tls notls s2s; do P[$s]=$(free_port); done
{
	echo "xmpp IN A 127.0.0.1"
	echo "badxmpp IN A 127.0.0.1"
	echo "_xmpp-client._tcp IN SRV 0 0 ${P[tls]} xmpp.example.test."
	echo "_xmpp-client._tcp.bad IN SRV 0 0 ${P[tls]} badxmpp.example.test."
	tlsa 3 1 1 "$C/xmpp.pem" "_${P[tls]}._tcp.xmpp.example.test."
	tlsa 3 1 1 "$C/xmpp.pem" "_${P[tls]}._tcp.example.test."
	tlsa 3 1 1 "$C/xmpp.pem" "_${P[tls]}._tcp.unknown.example.test."
	tlsa 3 1 1 "$C/other.pem" "_${P[tls]}._tcp.badxmpp.example.test."
	tlsa 3 1 1 "$C/xmpp.pem" "_${P[notls]}._tcp.example.test."
	# server to server
	echo "_xmpp-server._tcp IN SRV 0 0 ${P[s2s]} xmpp.example.test."
	echo "_xmpp-server._tcp.bad IN SRV 0 0 ${P[s2s]} badxmpp.example.test."
	tlsa 3 1 1 "$C/xmpp.pem" "_${P[s2s]}._tcp.xmpp.example.test."
	tlsa 3 1 1 "$C/xmpp.pem" "_${P[s2s]}._tcp.example.test."
	tlsa 3 1 1 "$C/other.pem" "_${P[s2s]}._tcp.badxmpp.example.test."
} >"$W/example.add"
zones/serve start "$W/z" --add example.test "$W/example.add" 2>/dev/null ||
	{ echo "zones failed"; exit 1; }
X="$W/prosody"
X0="$W/prosody0"
cleanup_all() {
	tests/tools/prosody.sh stop "$X" >/dev/null 2>&1
	tests/tools/prosody.sh stop "$X0" >/dev/null 2>&1
	zones/serve stop "$W/z" >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup_all EXIT
S2S_PORT=${P[s2s]} tests/tools/prosody.sh start "$X" "${P[tls]}" "example.test bad.example.test" \
	"$C/xmpp.chain" "$C/xmpp.key" || { echo "prosody failed"; exit 1; }
tests/tools/prosody.sh start "$X0" "${P[notls]}" example.test ||
	{ echo "prosody (no TLS) failed"; exit 1; }
LOG="$X/prosody.log"

CONF="$W/tlspool.conf"
{
	cat "$W/z/tlspool.conf"
	printf '[tls]\nhandshake_timeout_ms = 5000\n'
} >"$CONF"
export TLSPOOL_CONFIG="$CONF"

# session DOMAIN: the client's side of an XMPP session after STARTTLS
# (RFC 6120 sections 5.4.3.3, 6, 7), with pauses where it waits
session() {
	await_tls
	local open="<stream:stream to='$1' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
	printf "<?xml version='1.0'?>%s" "$open"
	sleep 0.2
	printf "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>" \
		"$(printf '\0john\0secret' | base64)"
	sleep 0.2
	printf "%s" "$open"
	sleep 0.2
	printf "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>tlspool</resource></bind></iq>"
	sleep 0.2
	printf "<iq type='get' id='v1' to='%s'><query xmlns='jabber:iq:version'/></iq>" "$1"
	sleep 0.2
	printf "</stream:stream>"
	sleep 0.2
}
run() { # DOMAIN CLI-ARGS...
	local d=$1
	shift
	session "$d" | timeout 20 "$CLI" --client --starttls xmpp "$@"
}

# --- failures first ---
expect srv-wrong-tlsa 4 -- run bad.example.test --srv xmpp-client bad.example.test
grep_in err srv-wrong-tlsa "_${P[tls]}\\._tcp\\.badxmpp\\.example\\.test\\."
no_grep_in err srv-wrong-tlsa '^peer: '
no_grep_in out srv-wrong-tlsa '.'
expect no-starttls 3 -- run example.test --sni example.test 127.0.0.1 "${P[notls]}"
grep_in err no-starttls 'STARTTLS|starttls'
no_grep_in out no-starttls '.'
expect host-unknown 3 -- run unknown.example.test --sni unknown.example.test 127.0.0.1 "${P[tls]}"
grep_in err host-unknown 'host-unknown'
no_grep_in out host-unknown '.'
file_lacks no-login "$LOG" 'Authenticated as'

# --- by SRV (RFC 7673): _xmpp-client._tcp.example.test -> xmpp.example.test ---
expect srv 0 -- run example.test --srv xmpp-client example.test --diagnose
grep_in err srv '^peer: xmpp\.example\.test$'
grep_in err srv '^; starttls +xmpp, step done'
grep_in err srv '^; dane +authenticated'
grep_in out srv "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
grep_in out srv '<jid>john@example\.test/tlspool</jid>'
grep_in out srv "<iq [^>]*(id='v1'[^>]*type='result'|type='result'[^>]*id='v1')"
grep_in out srv '<name>Prosody</name>'
wait_for "$LOG" 'Authenticated as john@example\.test' || true
file_has srv-logged "$LOG" 'Stream encrypted \(TLSv1\.[23] '
file_has srv-logged "$LOG" 'Authenticated as john@example\.test'

# --- by address, to= the --sni name ---
expect direct 0 -- run example.test --sni example.test 127.0.0.1 "${P[tls]}"
grep_in err direct '^peer: example\.test$'
grep_in out direct '<jid>john@example\.test/tlspool</jid>'
grep_in out direct '<name>Prosody</name>'

# --- server to server (xmpp-server): a stream from client.test ---
s2s_session() { # DOMAIN
	await_tls
	printf "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' to='%s' from='client.test' version='1.0'>" "$1"
	sleep 0.3
	printf "</stream:stream>"
	sleep 0.2
}
s2s() { # DOMAIN CLI-ARGS...
	local d=$1
	shift
	s2s_session "$d" | timeout 20 "$CLI" --client --starttls xmpp-server \
		--myname client.test --no-local-cert "$@"
}
expect s2s-wrong-tlsa 4 -- s2s bad.example.test --srv xmpp-server bad.example.test
grep_in err s2s-wrong-tlsa "_${P[s2s]}\\._tcp\\.badxmpp\\.example\\.test\\."
no_grep_in out s2s-wrong-tlsa '.'
expect s2s 0 -- s2s example.test --sni example.test --diagnose 127.0.0.1 "${P[s2s]}"
grep_in err s2s '^peer: example\.test$'
grep_in err s2s '^; starttls +xmpp-server, step done'
grep_in out s2s "<stream:stream [^>]*from='example\.test'"
grep_in out s2s "<stream:features><dialback xmlns='urn:xmpp:features:dialback'/>"
expect s2s-srv 0 -- s2s example.test --srv xmpp-server example.test
grep_in err s2s-srv '^peer: xmpp\.example\.test$'
grep_in out s2s-srv "<dialback xmlns='urn:xmpp:features:dialback'/>"
wait_for "$LOG" 's2sin.*Stream encrypted' || true
file_has s2s-logged "$LOG" 's2sin[0-9a-f]+[[:space:]]+info[[:space:]]+Stream encrypted \(TLSv1\.[23] '

timed finished
finish
