#!/bin/bash
# OPENPGPKEY with the OpenPGP algorithms that only libgcrypt verifies here:
# GnuPG makes (gpg --expert, tests/tools/mkpgp_algos.sh) a Brainpool, a
# secp256k1 and a DSA primary key, each certifying an authentication
# subkey (Ed25519 or P-256) that TLS uses.  Each is published as the
# OPENPGPKEY of its user in zones signed for this run; a client with
# --myname USER and openpgp_key = its secret export (armored for one)
# authenticates to a server, which prints "peer: USER".  A record whose
# User ID certification is broken, and a key revoked since its owner
# exported it, are refused (exit 4), and --lookup shows the outcome of
# each signature.
. "$(dirname "$0")/common"

W="$T/w"
mkdir -p "$W"
tests/tools/mkpgp_algos.sh "$W" >/dev/null 2>&1 || { echo "mkpgp_algos failed"; exit 1; }
certtool --generate-privkey --key-type ecdsa --outfile "$W/www.key" 2>/dev/null
# below the ephemeral ports (32768-60999), which other work may hold
port=$((20000 + RANDOM % 12000))
while ss -Htln "sport = :$port" | grep -q .; do port=$((20000 + RANDOM % 12000)); done
h() { printf %s "$1" | sha256sum | cut -c1-56; }
# bp256.pub with the last octet of its first signature (the User ID's
# certification, by the Brainpool key) flipped
python3 - "$W/bp256.pub" "$W/broken.pub" <<'EOF' || { echo "edit failed"; exit 1; }
import sys
b = bytearray(open(sys.argv[1], "rb").read())
o = 0
while True:
    tag = (b[o] >> 2) & 15 if not b[o] & 0x40 else b[o] & 63
    assert not b[o] & 0x40, "old-format packets expected"
    lt = b[o] & 3
    hl = {0: 2, 1: 3, 2: 5}[lt]
    n = int.from_bytes(b[o + 1:o + hl], "big")
    if tag == 2:
        b[o + hl + n - 1] ^= 1
        break
    o += hl + n
open(sys.argv[2], "wb").write(b)
EOF
{
	echo "_$port._tcp.www IN TLSA 3 1 1 $(openssl pkey -in "$W/www.key" -pubout -outform DER | sha256sum | cut -c1-64)"
	echo "$(h bp)._openpgpkey IN OPENPGPKEY $(base64 -w0 "$W/bp256.pub")"
	echo "$(h k1)._openpgpkey IN OPENPGPKEY $(base64 -w0 "$W/k1.pub")"
	echo "$(h dsa)._openpgpkey IN OPENPGPKEY $(base64 -w0 "$W/dsa.pub")"
	echo "$(h broken)._openpgpkey IN OPENPGPKEY $(base64 -w0 "$W/broken.pub")"
	echo "$(h rev)._openpgpkey IN OPENPGPKEY $(base64 -w0 "$W/rev.pub")"
} >"$W/example.add"
zones/serve start "$W/z" --add example.test "$W/example.add" 2>/dev/null ||
	{ echo "zones failed"; exit 1; }
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
	printf '[identity bp@example.test]\nopenpgp_key = %s\n' "$W/bp256.sec.asc"
	printf '[identity k1@example.test]\nopenpgp_key = %s\n' "$W/k1.sec"
	printf '[identity dsa@example.test]\nopenpgp_key = %s\n' "$W/dsa.sec"
	# the key is bp256's own, its published record broken
	printf '[identity broken@example.test]\nopenpgp_key = %s\n' "$W/bp256.sec"
	# its secret from before the revocation that its record publishes
	printf '[identity rev@example.test]\nopenpgp_key = %s\n' "$W/rev.sec"
} >"$W/tlspool.conf"
C="$W/tlspool.conf"

server() {
	("$CLI" --config "$C" --server --bind 127.0.0.1 --myname www.example.test \
	  --diagnose "$@" "$port" 2>"$T/server.err" >"$T/server.out"
	 echo $? >"$T/server.rc") &
	pids+=($!)
	for _ in $(seq 100); do ss -Htln "sport = :$port" | grep -q . && return; sleep 0.05; done
}
server_rc() {
	for _ in $(seq 100); do [ -s "$T/server.rc" ] && break; sleep 0.05; done
	cat "$T/server.rc"
	rm -f "$T/server.rc"
}
client() {
	"$CLI" --config "$C" --client --sni www.example.test "$@" 127.0.0.1 "$port"
}
export CLI C port
export -f client

# --- failures first ---
# a broken certification by the Brainpool key: the record says so ...
expect lookup-broken 0 -- "$CLI" --config "$C" --lookup broken@example.test
grep_in out lookup-broken '^;   sig     0x13 on uid 0: bad: bad signature \(libgcrypt: '
grep_in out lookup-broken '^;   key     [0-9A-F]{40} v4 ECDSA-brainpoolP256r1$'
grep_in out lookup-broken 'invalid: no valid self-signature'
# ... and a client presenting that key is refused, with the reason
refused() { # NAME USER DETAIL
	server --exec cat
	echo hi | client --myname "$2" >/dev/null 2>&1
	rc=$(server_rc)
	if [ "$rc" = 4 ]; then npass=$((npass + 1)); else
		nfail=$((nfail + 1)); echo "not ok: $1: server exit $rc"; cat "$T/server.err"; fi
	if grep -qE "$3" "$T/server.err"; then npass=$((npass + 1)); else
		nfail=$((nfail + 1)); echo "not ok: $1 diagnosis lacks /$3/"; sed 's/^/  /' "$T/server.err"; fi
}
refused broken broken@example.test \
	'^; openpgp record 1: no match: subkey [0-9A-F]{40} matches the peer.s key, but the primary key does not count: no valid self-signature \(self-signature: bad signature \(libgcrypt'
refused revoked rev@example.test \
	'^; openpgp record 1: no match: subkey [0-9A-F]{40} matches the peer.s key, but the primary key does not count: the primary key is revoked$'
expect lookup-revoked 0 -- "$CLI" --config "$C" --lookup rev@example.test
grep_in out lookup-revoked '^;   sig     0x20 on key 0: good$'
grep_in out lookup-revoked '^;   sig     0x13 on uid 0: revoked: the primary key is revoked$'

# --- the lookup: every signature good, through libgcrypt ---
for u in bp k1 dsa; do
	expect "lookup-$u" 0 -- "$CLI" --config "$C" --lookup "$u@example.test" --json
	json_valid "lookup-$u" out
	if jq -e '[.records[0].openpgp.signatures[].outcome] | length > 1 and all(. == "good")' \
		"$T/out" >/dev/null && jq -e '.records[0].openpgp.key.valid' "$T/out" >/dev/null; then
		npass=$((npass + 1))
	else
		nfail=$((nfail + 1)); echo "not ok: lookup-$u: $(head -c 800 "$T/out")"
	fi
done
expect lookup-dsa-text 0 -- "$CLI" --config "$C" --lookup dsa@example.test
grep_in out lookup-dsa-text "^;   key     $(cat "$W/dsa.fpr") v4 DSA-2048\$"
grep_in out lookup-dsa-text "^;   subkey  $(sed -n 2p "$W/dsa.subs") v4 ElGamal-2048\$"

# --- each user authenticated by the subkey its primary key certified ---
ok() { # USER SUBKEY-FINGERPRINT
	server --exec cat
	expect "$1" 0 -- bash -c "echo hello-$1 | client --myname $1"
	grep_in out "$1" "^hello-$1\$"
	rc=$(server_rc)
	if [ "$rc" = 0 ]; then npass=$((npass + 1)); else
		nfail=$((nfail + 1)); echo "not ok: $1: server exit $rc"; cat "$T/server.err"; fi
	if grep -q "^peer: $1\$" "$T/server.err" &&
		grep -qE "^; openpgp authenticated: OPENPGPKEY record 1: subkey $2 " "$T/server.err"; then
		npass=$((npass + 1))
	else
		nfail=$((nfail + 1)); echo "not ok: $1 diagnosis"; sed 's/^/  /' "$T/server.err"
	fi
}
ok bp@example.test "$(head -1 "$W/bp256.subs")"   # Brainpool P-256, armored secret
ok k1@example.test "$(head -1 "$W/k1.subs")"      # secp256k1
ok dsa@example.test "$(head -1 "$W/dsa.subs")"    # DSA, a P-256 subkey

finish
