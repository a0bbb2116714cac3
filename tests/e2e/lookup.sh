#!/bin/bash
# tlspool-connect --lookup against the served zones: exit codes, the text
# transcript, the one-line error on stderr, and --json.
. "$(dirname "$0")/common"

lookup() { "$CLI" --config "$CONF" --lookup "$@"; }

# --- failures first: never exit 0, never "no records" for an error ---
expect bogus 6 -- lookup www.bogus.test
grep_in out bogus '^; verdict bogus: DNSSEC validation failed'
grep_in err bogus '^tlspool-connect: _443\._tcp\.www\.bogus\.test\.: TLSA RRset is bogus \(DNSSEC validation failed\)$'
no_grep_in out bogus 'IN TLSA'

expect expired 6 -- lookup www.expired.test
grep_in err expired 'TLSA RRset is bogus \(RRSIG expired\)$'
no_grep_in out expired 'IN TLSA'

expect timeout 6 -- "$CLI" --config "$TLSPOOL_ZONES_DIR/blackhole.conf" --lookup www.example.test
grep_in err timeout 'TLSA lookup timed out \(no answer within 500 ms from 127\.0\.0\.1@[0-9]+ \(\[dns\] timeout_ms\)\)$'

expect insecure 4 -- lookup www.insecure.test
grep_in out insecure '^; verdict insecure: '
grep_in out insecure '^_443\._tcp\.www\.insecure\.test\. 3600 IN TLSA 3 1 1 '
grep_in err insecure 'TLSA RRset is insecure'

expect cname-to-insecure 4 -- lookup toinsecure.example.test
grep_in out cname-to-insecure '^; cname   _443\._tcp\.toinsecure\.example\.test\. -> _443\._tcp\.www\.insecure\.test\.$'
grep_in out cname-to-insecure '^; verdict insecure'

expect nxdomain 4 -- lookup missing.example.test
grep_in out nxdomain '^; verdict secure-nxdomain: the name does not exist'
grep_in err nxdomain 'no TLSA records: the name does not exist'

expect nodata 4 -- lookup nodata.example.test
grep_in out nodata '^; verdict secure-nodata'

expect cname-loop 6 -- lookup loop1.example.test

expect wrong-port-nxdomain 4 -- lookup www.example.test 8443

# --- usage and configuration errors: exit 1 with a message ---
expect bad-name 1 -- lookup 'bad..name'
grep_in err bad-name '^tlspool-connect: bad\.\.name: not a host name'
expect bad-port 1 -- lookup www.example.test 70000
grep_in err bad-port '^tlspool-connect: --lookup PORT: "70000" is not a number from 1 to 65535$'
expect user-with-port 1 -- lookup john@example.test 443
expect smimea-without-user 1 -- lookup www.example.test --smimea
expect no-mode 1 -- "$CLI" www.example.test
expect missing-config 1 -- "$CLI" --config /nonexistent.conf --lookup www.example.test
grep_in err missing-config '^tlspool-connect: /nonexistent\.conf: No such file or directory$'
printf '[dns]\ntimeout_ms = soon\n' >"$T/bad.conf"
expect bad-config 1 -- "$CLI" --config "$T/bad.conf" --lookup www.example.test
grep_in err bad-config "^tlspool-connect: $T/bad\.conf:2: timeout_ms: \"soon\" is not a number"

# --- secure answers ---
expect secure 0 -- lookup www.example.test
grep_in out secure '^; query   _443\._tcp\.www\.example\.test\. TLSA$'
grep_in out secure '^; verdict secure: records validated by DNSSEC$'
grep_in out secure '^_443\._tcp\.www\.example\.test\. 3600 IN TLSA 3 1 1 [0-9A-F]{64}$'
grep_in out secure '^_443\._tcp\.www\.example\.test\. 3600 IN TLSA 1 1 2 [0-9A-F]{128}$'
[ "$(grep -c 'IN TLSA' "$T/out")" = 4 ] && npass=$((npass + 1)) || { nfail=$((nfail + 1)); echo "not ok: secure: want 4 records"; }
[ -s "$T/err" ] && { nfail=$((nfail + 1)); echo "not ok: secure: stderr not empty"; } || npass=$((npass + 1))

expect owner-name 0 -- lookup _443._tcp.www.example.test
expect udp 0 -- lookup www.example.test 443 --udp
grep_in out udp '^_443\._udp\.www\.example\.test\. '

expect cname-across-zones 0 -- lookup far.example.test
grep_in out cname-across-zones '^; cname   _443\._tcp\.far\.example\.test\. -> _443\._tcp\.www\.other\.test\.$'
grep_in out cname-across-zones '^_443\._tcp\.www\.other\.test\. 3600 IN TLSA 3 1 1 '

expect openpgpkey 0 -- lookup john@example.test
grep_in out openpgpkey '^96d9632f363564cc3032521409cf22a852f2032eec099ed5967c0d00\._openpgpkey\.example\.test\. 3600 IN OPENPGPKEY mQENB'
expect smimea 0 -- lookup john@example.test --smimea
grep_in out smimea '\._smimecert\.example\.test\. 3600 IN SMIMEA 3 1 1 0123456789ABCDEF'

# --- JSON: parses, and its verdict agrees with the exit code ---
for case in "www.example.test:0:secure" "www.bogus.test:6:bogus" \
	"www.insecure.test:4:insecure" "missing.example.test:4:secure-nxdomain" \
	"far.example.test:0:secure"; do
	IFS=: read -r name code verdict <<<"$case"
	expect "json $name" "$code" -- lookup "$name" --json
	json_valid "json $name" out
	if jq -e --arg v "$verdict" --argjson c "$code" \
		'.verdict == $v and .exit_code == $c and (.records|type) == "array"' \
		"$T/out" >/dev/null; then
		npass=$((npass + 1))
	else
		nfail=$((nfail + 1))
		echo "not ok: json $name: $(head -c 300 "$T/out")"
	fi
done
lookup far.example.test --json >"$T/out" 2>/dev/null
json_valid "json far" out
jq -e '.cname_chain == ["_443._tcp.www.other.test."] and .records[0].usage == 3 and (.records[0].data|length) == 64' "$T/out" >/dev/null &&
	npass=$((npass + 1)) || { nfail=$((nfail + 1)); echo "not ok: json fields"; }

# --- large records: every record is printed, in text as in JSON ---
# A TLSA record of 5000 octets (a whole certificate, 3 0 0, can be that
# large) and an OPENPGPKEY of 7000: zone-file lines of 10 000 and 9 400
# characters, more than a fixed line buffer held.  The answer needs TCP.
W="$T/big"
mkdir -p "$W"
BIGHEX=$(head -c 5000 /dev/urandom | od -An -v -tx1 | tr -d ' \n' | tr a-f A-F)
BIGPGP=$(head -c 7000 /dev/urandom | base64 -w0)
{
	echo "_443._tcp.big IN TLSA 3 0 0 $BIGHEX"
	# hex(sha256("jumbo"))[0:56]
	echo "$(printf jumbo | sha256sum | cut -c1-56)._openpgpkey IN OPENPGPKEY $BIGPGP"
} >"$W/add"
if zones/serve start "$W/z" --add example.test "$W/add" >/dev/null 2>&1; then
	trap 'zones/serve stop "$W/z" >/dev/null 2>&1; rm -rf "$T"' EXIT
	expect big-tlsa 0 -- "$CLI" --config "$W/z/tlspool.conf" --lookup big.example.test
	grep_in out big-tlsa "^_443\\._tcp\\.big\\.example\\.test\\. 3600 IN TLSA 3 0 0 $BIGHEX\$"
	[ "$(grep -c 'IN TLSA' "$T/out")" = 1 ] && npass=$((npass + 1)) ||
		{ nfail=$((nfail + 1)); echo "not ok: big-tlsa: want the record once"; }
	expect big-tlsa-json 0 -- "$CLI" --config "$W/z/tlspool.conf" --lookup big.example.test --json
	json_valid "big-tlsa-json" out
	jq -e --arg d "$BIGHEX" '.records | length == 1 and .[0].data == $d and (.[0].text | endswith($d))' \
		"$T/out" >/dev/null && npass=$((npass + 1)) ||
		{ nfail=$((nfail + 1)); echo "not ok: big-tlsa-json: $(head -c 300 "$T/out")"; }
	expect big-openpgpkey 0 -- "$CLI" --config "$W/z/tlspool.conf" --lookup jumbo@example.test
	grep_in out big-openpgpkey " 3600 IN OPENPGPKEY ${BIGPGP//+/\\+}\$"
else
	nfail=$((nfail + 1))
	echo "not ok: big: zones/serve failed"
fi

finish
