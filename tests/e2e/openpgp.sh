#!/bin/bash
# OpenPGP user identities with tlspool-connect: keys made by GnuPG now,
# published as OPENPGPKEY in zones signed for this run; --lookup prints
# the key (text and JSON); a client with --myname john@example.test and
# openpgp_key = a gpg secret key export authenticates to a server, which
# prints "peer: john@example.test"; a user whose record holds another key
# is refused (exit 4) and --diagnose says why.
. "$(dirname "$0")/common"
. scripts/ports.sh

W="$T/w"
mkdir -p "$W"
tests/tools/mkpgp.sh "$W" >/dev/null 2>&1 || { echo "mkpgp failed"; exit 1; }
certtool --generate-privkey --key-type ecdsa --outfile "$W/www.key" 2>/dev/null
port=$(free_port)
while ss -Htln "sport = :$port" | grep -q .; do port=$(free_port); done
h() { printf %s "$1" | sha256sum | cut -c1-56; }
{
	echo "_$port._tcp.www IN TLSA 3 1 1 $(openssl pkey -in "$W/www.key" -pubout -outform DER | sha256sum | cut -c1-64)"
	echo "$(h john)._openpgpkey IN OPENPGPKEY $(base64 -w0 "$W/ed.pub")"
	echo "$(h mallory)._openpgpkey IN OPENPGPKEY $(base64 -w0 "$W/ed.pub")"
} >"$W/example.add"
echo "$(h john)._openpgpkey IN OPENPGPKEY $(base64 -w0 "$W/ed.pub")" >"$W/bogus.add"
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
{
	cat "$W/z/tlspool.conf"
	printf '[identity www.example.test]\nkey = %s\n' "$W/www.key"
	printf '[identity john@example.test]\nopenpgp_key = %s\n' "$W/ed.sec"
	printf '[identity mallory@example.test]\nopenpgp_key = %s\n' "$W/other.sec"
} >"$W/tlspool.conf"
C="$W/tlspool.conf"
fpr=$(cat "$W/ed.fpr")
sub=$(head -1 "$W/ed.subs")

# --- failures first ---
expect lookup-bogus 6 -- "$CLI" --config "$C" --lookup john@bogus.test
grep_in err lookup-bogus 'OPENPGPKEY RRset is bogus'
no_grep_in out lookup-bogus 'IN OPENPGPKEY'

# --- the owner name: the same as sha256sum's ---
expect lookup 0 -- "$CLI" --config "$C" --lookup john@example.test
grep_in out lookup "^$(h john)\._openpgpkey\.example\.test\. 3600 IN OPENPGPKEY mDME"
grep_in out lookup "^;   key     $fpr v4 EdDSA-Ed25519\$"
grep_in out lookup '^;           flags certify,sign,auth; created .*; expires never; valid$'
grep_in out lookup '^;   uid     "John <john@example\.test>" valid$'
grep_in out lookup "^;   subkey  $sub v4 EdDSA-Ed25519\$"
grep_in out lookup '^;           flags encrypt-comms,encrypt-storage; '
expect lookup-json 0 -- "$CLI" --config "$C" --lookup john@example.test --json
json_valid "lookup-json" out
if jq -e --arg f "$fpr" '.records[0].openpgp.key.fingerprint == $f and
	.records[0].openpgp.key.flags == "certify,sign,auth" and
	.records[0].openpgp.uids[0].text == "John <john@example.test>" and
	(.records[0].openpgp.subkeys | length) == 2' "$T/out" >/dev/null; then
	npass=$((npass + 1))
else
	nfail=$((nfail + 1))
	echo "not ok: lookup-json: $(head -c 600 "$T/out")"
fi

server() {
	("$CLI" --config "$C" --server --bind 127.0.0.1 --myname www.example.test \
	  --diagnose "$@" "$port" 2>"$T/server.err" >"$T/server.out"
	 echo $? >"$T/server.rc") &
	pids+=($!)
	for i in $(seq 100); do ss -Htln "sport = :$port" | grep -q . && return; sleep 0.05; done
}
server_rc() {
	for i in $(seq 100); do [ -s "$T/server.rc" ] && break; sleep 0.05; done
	cat "$T/server.rc"
	rm -f "$T/server.rc"
}
client() {
	"$CLI" --config "$C" --client --sni www.example.test "$@" 127.0.0.1 "$port"
}
export CLI C port
export -f client

# another key published for mallory: refused, and the diagnosis says why
server --exec cat
# (TLS 1.3: the client may finish its handshake before the server refuses)
echo hi | client --myname mallory@example.test >/dev/null 2>&1
rc=$(server_rc)
[ "$rc" = 4 ] && npass=$((npass + 1)) || { nfail=$((nfail + 1)); echo "not ok: wrong-key: server exit $rc"; cat "$T/server.err"; }
if grep -qE 'mallory@example\.test: OPENPGPKEY: .* is neither the key' "$T/server.err" &&
	grep -qE '^; openpgp record 1: no match: ' "$T/server.err"; then
	npass=$((npass + 1))
else
	nfail=$((nfail + 1)); echo "not ok: wrong-key diagnosis"; sed 's/^/  /' "$T/server.err"
fi

# john's own key: authenticated as john@example.test
server --exec cat
expect john 0 -- bash -c "echo hello-john | client --myname john@example.test"
grep_in out john '^hello-john$'
rc=$(server_rc)
[ "$rc" = 0 ] && npass=$((npass + 1)) || { nfail=$((nfail + 1)); echo "not ok: john: server exit $rc"; cat "$T/server.err"; }
if grep -q '^peer: john@example\.test$' "$T/server.err" &&
	grep -qE "^; openpgp authenticated: OPENPGPKEY record 1: key $fpr" "$T/server.err"; then
	npass=$((npass + 1))
else
	nfail=$((nfail + 1)); echo "not ok: john diagnosis"; sed 's/^/  /' "$T/server.err"
fi

# --no-remote-user: authenticated, then refused (exit 5).  The server's
# alert is no close_notify: the client must not exit 0; its exit code
# depends on timing (its call may return before the refusal arrives).
server --exec cat --no-remote-user
if bash -c "client --myname john@example.test </dev/null" >"$T/out" 2>"$T/err"; then
	nfail=$((nfail + 1)); echo "not ok: no-remote-user: the refused client exited 0"
else
	npass=$((npass + 1))
fi
rc=$(server_rc)
[ "$rc" = 5 ] && npass=$((npass + 1)) || { nfail=$((nfail + 1)); echo "not ok: no-remote-user: server exit $rc"; cat "$T/server.err"; }

finish
