#!/bin/bash
# getdns's recursive mode ([dns] resolution = recursive, tlspool.conf(5)),
# which the stub-mode tests never reach: in a private network namespace
# (unshare -n -m) the root servers' IPv4 addresses are put on the
# namespace's loopback and an NSD there serves the test root on port 53,
# so that getdns (through libunbound and its built-in root hints) resolves
# from "the root" and validates against the test root's key.  Records are
# added to the root zone itself (zones/serve --add .), with an NS record
# a.root-servers.net. so that the primed root NS set has an address that
# libunbound may query (it never queries loopback, ns.test.'s address).
#  - _443._tcp.www.dane-rec. TLSA: secure, printed, exit 0;
#  - _443._tcp.www.broken-rec. TLSA, its rdata changed in the served copy
#    after signing: bogus, exit 6, no record printed as valid;
#  - _443._tcp.nothere.dane-rec.: secure NXDOMAIN, exit 4;
#  - a name under test. (the signed example.test): libunbound keeps test.
#    as a built-in local zone (RFC 6761), so recursion never reaches it:
#    never secure, and the run fails.
# Needs root, unshare, ip and NSD; skips (77) otherwise.
if [ -z "${TLSPOOL_NETNS:-}" ]; then
	. tests/tools/servers-common.sh
	need_root_and unshare ip nsd dig
	if ! unshare -n -m true 2>/dev/null; then
		echo "skip: $(basename "$0"): unshare -n -m fails here"
		exit 77
	fi
	TLSPOOL_NETNS=1 exec unshare -n -m -- bash "$0" "$@"
fi
. "$(dirname "$0")/common"
. tests/tools/servers-common.sh
ip link set lo up || { echo "ip link set lo up failed"; exit 1; }
# the root servers' IPv4 addresses, old and new, as libunbound may know them
for a in 198.41.0.4 199.9.14.201 170.247.170.2 192.33.4.12 199.7.91.13 \
	192.203.230.10 192.5.5.241 192.112.36.4 198.97.190.53 192.36.148.17 \
	192.58.128.30 193.0.14.129 199.7.83.42 202.12.27.33; do
	ip addr add "$a/32" dev lo || { echo "ip addr add $a failed"; exit 1; }
done
srv_setup
leaf www www.dane-rec

{
	tlsa 3 1 1 "$C/www.pem" "_443._tcp.www.dane-rec."
	tlsa 3 1 1 "$C/www.pem" "_443._tcp.www.broken-rec."
	echo ". IN NS a.root-servers.net."
	echo "a.root-servers.net. IN A 198.41.0.4"
} >"$W/root.add"
zones/serve start "$W/z" --add . "$W/root.add" 2>/dev/null || { echo "zones failed"; exit 1; }
N="$W/nsd53"
cleanup_all() {
	[ -s "$N/nsd.pid" ] && kill "$(cat "$N/nsd.pid")" 2>/dev/null
	zones/serve stop "$W/z" >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup_all EXIT

# A second NSD with zones/serve's signed zones, on port 53 of every
# address, its files in $N; its root zone is a copy whose broken-rec TLSA
# has its last hex digit changed after signing.
mkdir -p "$N"
awk '$1 == "_443._tcp.www.broken-rec." && $4 == "TLSA" {
	h = $NF; c = substr(h, length(h), 1)
	$NF = substr(h, 1, length(h) - 1) (c == "0" ? "1" : "0")
} { print }' "$W/z/root.zone.signed" >"$N/root.zone.signed"
check root-copy-differs bash -c "! cmp -s '$W/z/root.zone.signed' '$N/root.zone.signed'"
sed -e "s|^\\([[:space:]]*\\)ip-address: .*|\\1port: 53|" \
	-e "s|\"$W/z/\\(nsd.pid\\|xfrd.state\\|zone.list\\|nsd.log\\|nsd_cookiesecrets.txt\\)\"|\"$N/\\1\"|" \
	-e "s|xfrdir: \"$W/z\"|xfrdir: \"$N\"|" \
	-e "s|\"$W/z/root.zone.signed\"|\"$N/root.zone.signed\"|" \
	"$W/z/nsd.conf" >"$N/nsd.conf"
nsd -c "$N/nsd.conf" 2>"$N/nsd.stderr" || { cat "$N/nsd.stderr"; echo "nsd failed"; exit 1; }
for _ in $(seq 100); do
	dig @198.41.0.4 +time=1 +tries=1 +norec . SOA 2>/dev/null | grep -q 'status: NOERROR' && break
	sleep 0.05
done

CONF="$W/tlspool.conf"
printf '[dns]\nresolution = recursive\ntrust_anchor = %s\ntimeout_ms = 3000\n' \
	"$W/z/root.key" >"$CONF"

# --- failures first ---
expect bogus 6 -- "$CLI" --config "$CONF" --lookup www.broken-rec 443
grep_in err bogus 'bogus'
no_grep_in out bogus '^; verdict secure'
expect missing 4 -- "$CLI" --config "$CONF" --lookup nothere.dane-rec 443
grep_in out missing '^; verdict secure-nxdomain'
"$CLI" --config "$CONF" --lookup www.example.test 443 >"$T/out" 2>"$T/err"
rc=$?
check test-local-zone-fails test "$rc" != 0
no_grep_in out test-local-zone '^; verdict secure'

# --- a secure answer by recursion from the test root ---
expect secure 0 -- "$CLI" --config "$CONF" --lookup www.dane-rec 443
grep_in out secure '^; verdict secure: records validated by DNSSEC'
grep_in out secure '^_443\._tcp\.www\.dane-rec\. [0-9]+ IN TLSA 3 1 1 [0-9A-F]{64}$'
expect secure-json 0 -- "$CLI" --config "$CONF" --lookup www.dane-rec 443 --json
check secure-json jq -e '.verdict == "secure" and (.records | length) == 1' "$T/out" >/dev/null

timed finished
finish
