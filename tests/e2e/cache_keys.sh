#!/bin/bash
# Zone keys in the shared validation cache, end to end with tlspool-connect
# (docs/architecture.md, "Cold validation in one query"): the DNS queries
# go through a counting UDP relay.  A first process validates a peer's
# TLSA record with the chain from the root (the record and the DS and
# DNSKEY sets: more than 3 queries) and stores the zone keys in the LMDB
# file of [cache] path; a second process validates another name in the
# zone with one query.  --cache-list shows the keys as their own kind
# (zonekeys, also in --json), --cache-flush removes them, and after it a
# process fetches the chain again.  A cache entry of keys that was
# altered is not used: the lookup is a full one and the peer is still
# authenticated.
. "$(dirname "$0")/common"
. scripts/ports.sh

W="$T/w"
mkdir -p "$W"
certtool --generate-privkey --key-type ecdsa --outfile "$W/www.key" 2>/dev/null
printf 'dns_name = www.example.test\nexpiration_days = 30\nsigning_key\n' >"$W/tmpl"
certtool --generate-self-signed --load-privkey "$W/www.key" --template "$W/tmpl" \
	--outfile "$W/www.pem" 2>/dev/null
SPKI=$(openssl pkey -in "$W/www.key" -pubout -outform DER | sha256sum | cut -c1-64)

declare -A P
for s in a b c d e; do P[$s]=$(free_port); done
for s in a b c d e; do
	echo "_${P[$s]}._tcp.www IN TLSA 3 1 1 $SPKI"
done >"$W/add"
zones/serve start "$W/z" --add example.test "$W/add" 2>/dev/null || { echo "zones failed"; exit 1; }
pids=()
cleanup_all() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	zones/serve stop "$W/z" >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup_all EXIT

# The counting relay: every query from the resolver adds a line to
# $W/queries.
RELAY=$(free_port)
NSD=$(sed -n 's/^TLSPOOL_ZONES_PORT=//p' "$W/z/env")
cat >"$W/relay.py" <<'PY'
import select, socket, sys
port, nsd, log = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
c.bind(("127.0.0.1", port))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("127.0.0.1", 0))
who = {}
while True:
    r, _, _ = select.select([c, u], [], [])
    if c in r:
        m, a = c.recvfrom(65536)
        if len(m) >= 12:
            who[m[:2]] = a
            with open(log, "a") as f:
                f.write("q\n")
            u.sendto(m, ("127.0.0.1", nsd))
    if u in r:
        m = u.recv(65536)
        if len(m) >= 12 and m[:2] in who:
            c.sendto(m, who[m[:2]])
PY
python3 "$W/relay.py" "$RELAY" "$NSD" "$W/queries" &
pids+=($!)
sleep 0.3
: >"$W/queries"

{
	sed "s/^upstream = .*/upstream = 127.0.0.1@$RELAY/" "$W/z/tlspool.conf"
	printf '[tls]\nhandshake_timeout_ms = 5000\n[cache]\npath = %s\n' "$W/cache.mdb"
	printf '[identity www.example.test]\nkey = %s\ncertificate = %s\n' "$W/www.key" "$W/www.pem"
} >"$W/tlspool.conf"
sed '/^\[cache\]/,/^path/d' "$W/tlspool.conf" >"$W/server.conf"
export TLSPOOL_CONFIG="$W/tlspool.conf"

server() { # PORT: a one-connection server echoing one line
	("$CLI" --server --config "$W/server.conf" --bind 127.0.0.1 --no-peer-cert \
		--exec cat "$1" >/dev/null 2>"$T/server.err") &
	pids+=($!)
	wait_port "$1"
}
client() { # PORT: one line through a new server on PORT
	server "$1"
	echo "hello" | "$CLI" --client --sni www.example.test 127.0.0.1 "$1"
}
queries() { wc -l <"$W/queries"; }
# counted QUERIES NAME: the last client sent QUERIES queries (a pattern)
counted() {
	local n
	n=$(queries)
	if [[ "$n" =~ ^($1)$ ]]; then
		npass=$((npass + 1))
	else
		nfail=$((nfail + 1))
		echo "not ok: $2: $n queries, want $1"
	fi
	: >"$W/queries"
}

# --- negative first: without a [cache] path nothing is shared ---
TLSPOOL_CONFIG="$W/server.conf" expect nocache-a 0 -- client "${P[a]}"
counted '[4-9]' nocache-a
TLSPOOL_CONFIG="$W/server.conf" expect nocache-b 0 -- client "${P[b]}"
counted '[4-9]' nocache-b

# --- process A fills the cache; process B needs one query ---
expect first 0 -- client "${P[a]}"
grep_in out first '^hello$'
counted '[4-9]' first
expect second 0 -- client "${P[b]}"
grep_in out second '^hello$'
counted 1 second

expect list 0 -- "$CLI" --cache-list
for z in '\.' 'test\.' 'example\.test\.'; do
	grep_in out list "^[0-9a-f]{64} zonekeys pass $z DNSKEY DS \\([0-9]+ octets\\) - [0-9]{4}-"
done
grep_in out list "^[0-9a-f]{64} authn pass www\\.example\\.test _${P[a]}\\._tcp"
expect list-json 0 -- "$CLI" --cache-list --json
json_valid list-json out
json_is list-json out '[.entries[] | select(.kind == "zonekeys")] | length == 3'
json_is list-json out '[.entries[] | select(.kind == "zonekeys") | .identity] | sort == [".", "example.test.", "test."]'

# --- an altered entry: a full lookup, the peer still authenticated ---
python3 - "$W/cache.mdb" <<'PY'
import sys
# flip one octet of the last record of each zone-keys entry: the records
# follow the zone's name in the value (docs: src/lib/cache.h)
data = bytearray(open(sys.argv[1], "rb").read())
n = 0
i = data.find(b"TPC\x01")
while i >= 0:
    if data[i + 6] == 3:
        la = data[i + 26] | data[i + 27] << 8
        lb = data[i + 28] | data[i + 29] << 8
        data[i + 64 + la + lb - 1] ^= 1
        n += 1
    i = data.find(b"TPC\x01", i + 4)
open(sys.argv[1], "wb").write(bytes(data))
assert n >= 3, n
PY
expect altered 0 -- client "${P[c]}"
grep_in out altered '^hello$'
counted '[4-9]' altered
# that process stored the right keys again
expect after-altered 0 -- client "${P[d]}"
counted 1 after-altered

# --- --cache-flush: gone, and the chain is fetched again ---
expect flush 0 -- "$CLI" --cache-flush
expect flushed 0 -- "$CLI" --cache-list
no_grep_in out flushed zonekeys
expect after-flush 0 -- client "${P[e]}"
counted '[4-9]' after-flush

finish
