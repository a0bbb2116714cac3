#!/bin/bash
# The validation cache and authorization, end to end with tlspool-connect
# against zones served for this script alone (it stops their NSD):
#  - cache: a peer authenticated once is authenticated again from the
#    shared LMDB file ([cache] path) by another process after DNS is gone;
#    --no-cache-read then fails with a DNS error, a first connection with
#    --no-cache-write left nothing, an entry past its TTL (2 s) is not
#    used; a cache file overwritten with garbage gives online validation
#    with the problem in the detail and never authenticates a peer whose
#    records changed; --cache-list and --cache-flush.
#  - authorization: the rules plugin allows, denies (exit 5, the rule in
#    the detail), first match wins, each pattern form, a bad line names
#    file and line, --no-authz bypasses a denial.
. "$(dirname "$0")/common"
. scripts/ports.sh

W="$T/w"
mkdir -p "$W"
RULES_SO="$BUILD/tlspool-authz-rules.so"
[ -f "$RULES_SO" ] || { echo "no $RULES_SO"; exit 1; }
certtool --generate-privkey --key-type ecdsa --outfile "$W/www.key" 2>/dev/null
printf 'dns_name = www.example.test\nexpiration_days = 30\nsigning_key\n' >"$W/tmpl"
certtool --generate-self-signed --load-privkey "$W/www.key" --template "$W/tmpl" \
	--outfile "$W/www.pem" 2>/dev/null
certtool --generate-privkey --key-type ecdsa --outfile "$W/client.key" 2>/dev/null
SPKI=$(openssl pkey -in "$W/www.key" -pubout -outform DER | sha256sum | cut -c1-64)

declare -A P
for s in main nowrite ttl garb good2 authz; do P[$s]=$(free_port); done
{
	for s in main nowrite garb authz; do
		echo "_${P[$s]}._tcp.www IN TLSA 3 1 1 $SPKI"
	done
	echo "_${P[ttl]}._tcp.www 2 IN TLSA 3 1 1 $SPKI"
} >"$W/add"
zones/serve start "$W/z" --add example.test "$W/add" 2>/dev/null || { echo "zones failed"; exit 1; }
pids=()
cleanup_all() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	zones/serve stop "$W/z" >/dev/null 2>&1
	zones/serve stop "$W/z2" >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup_all EXIT

# CONF: the served zones, a 500 ms DNS timeout, the shared cache file.
make_conf() { # ZONEDIR > conf
	sed 's/^timeout_ms = .*/timeout_ms = 500/' "$1/tlspool.conf"
	printf '[tls]\nhandshake_timeout_ms = 5000\n[cache]\npath = %s\n' "$W/cache.mdb"
	printf '[identity www.example.test]\nkey = %s\ncertificate = %s\n' "$W/www.key" "$W/www.pem"
	printf '[identity client.example.test]\nkey = %s\n' "$W/client.key"
	printf '[identity john@example.test]\nkey = %s\n' "$W/client.key"
}
make_conf "$W/z" >"$W/tlspool.conf"
export TLSPOOL_CONFIG="$W/tlspool.conf"
# The servers never validate anyone (--no-peer-cert) and use no plugin.
{
	make_conf "$W/z" | sed '/^\[cache\]/,/^path/d'
} >"$W/server.conf"

server() { # PORT: a one-connection server echoing one line
	("$CLI" --server --config "$W/server.conf" --bind 127.0.0.1 --no-peer-cert \
		--exec cat "$1" >/dev/null 2>"$T/server.err") &
	pids+=($!)
	wait_port "$1"
}
client() { # PORT [OPTIONS...]: one line through a new server on PORT
	local port=$1
	shift
	server "$port"
	echo "hello" | "$CLI" --client --sni www.example.test "$@" 127.0.0.1 "$port"
}
export -f client server wait_port
export CLI W T

# --- while DNS answers: fill the cache ---
expect first 0 -- client "${P[main]}"
grep_in out first '^hello$'
expect first-no-write 0 -- client "${P[nowrite]}" --no-cache-write
expect first-ttl 0 -- client "${P[ttl]}"
expect first-garb 0 -- client "${P[garb]}"
expect cache-list 0 -- "$CLI" --cache-list
grep_in out cache-list "^[0-9a-f]{64} authn pass www\\.example\\.test _${P[main]}\\._tcp\\.www\\.example\\.test\\. TLSA ${SPKI} "
no_grep_in out cache-list "_${P[nowrite]}\\._tcp"

# --- DNS gone: NSD stopped ---
zones/serve stop "$W/z" >/dev/null 2>&1
sleep 3 # past the 2 s TTL of _ttl
expect from-cache 0 -- client "${P[main]}" --diagnose
grep_in out from-cache '^hello$'
grep_in err from-cache '^; cache   .* authenticated from the validation cache'
expect no-cache-read 6 -- client "${P[main]}" --no-cache-read
grep_in err no-cache-read 'TLSA (lookup timed out|lookup failed|RRset is servfail)'
expect no-cache-write 6 -- client "${P[nowrite]}"
expect ttl-expired 6 -- client "${P[ttl]}"

# --- a garbage cache file, and records that changed ---
# New zones where _garb's record names another key: the cache, while it
# is good, still says yes (that is what a cache is for) ...
{
	echo "_${P[garb]}._tcp.www IN TLSA 3 1 1 $(printf '%064d' 0)"
	echo "_${P[good2]}._tcp.www IN TLSA 3 1 1 $SPKI"
} >"$W/add2"
zones/serve start "$W/z2" --add example.test "$W/add2" 2>/dev/null || { echo "zones failed"; exit 1; }
make_conf "$W/z2" >"$W/tlspool.conf"
expect garb-cached 0 -- client "${P[garb]}"
# ... and once the file is garbage, validation goes online and fails,
# saying why the cache was not used.
head -c 65536 /dev/urandom >"$W/cache.mdb"
expect garb-online 4 -- client "${P[garb]}"
grep_in err garb-online "_${P[garb]}\\._tcp\\.www\\.example\\.test.*cache .*cache\\.mdb"
expect garb-good-online 0 -- client "${P[good2]}"
grep_in err garb-good-online "warning: cache .*cache\\.mdb.*validated online"
expect garb-list 1 -- "$CLI" --cache-list
grep_in err garb-list 'cache\.mdb'
rm -f "$W/cache.mdb" "$W/cache.mdb-lock"
expect fresh-good 0 -- client "${P[good2]}"
no_grep_in err fresh-good 'warning'
expect fresh-list 0 -- "$CLI" --cache-list
grep_in out fresh-list "_${P[good2]}\\._tcp"
expect flush 0 -- "$CLI" --cache-flush
expect flushed-list 0 -- "$CLI" --cache-list
no_grep_in out flushed-list '.'
expect memory-list 1 -- "$CLI" --cache-list --config "$W/server.conf"
grep_in err memory-list 'no \[cache\] path'

# --- authorization: the rules plugin (a memory cache: no sharing) ---
{
	echo "_${P[authz]}._tcp.www IN TLSA 3 1 1 $SPKI"
} >>"$W/add2"
zones/serve stop "$W/z2" >/dev/null 2>&1
zones/serve start "$W/z2" --add example.test "$W/add2" 2>/dev/null || { echo "zones failed"; exit 1; }
make_conf "$W/z2" >"$W/tlspool.conf"
make_conf "$W/z2" | sed '/^\[cache\]/,/^path/d' >"$W/server.conf"
{
	make_conf "$W/z2" | sed '/^\[cache\]/,/^path/d'
	printf '[authz]\nplugin = %s\nconfig = %s\n' "$(realpath "$RULES_SO")" "$W/rules"
} >"$W/authz.conf"
export TLSPOOL_CONFIG="$W/authz.conf"
rules() { printf '%s\n' "$@" >"$W/rules"; }
A=${P[authz]}
C=(--myname client.example.test)

rules '# exact names' 'client.example.test www.example.test allow'
expect authz-allow 0 -- client "$A" "${C[@]}"
grep_in out authz-allow '^hello$'
rules 'client.example.test www.example.test deny'
expect authz-deny 5 -- client "$A" "${C[@]}"
grep_in err authz-deny "authorization: .*/rules:1: client\\.example\\.test www\\.example\\.test deny"
no_grep_in out authz-deny 'hello'
expect authz-no-authz 0 -- client "$A" "${C[@]}" --no-authz
rules '* .example.test deny' '* * allow'
expect authz-first-deny 5 -- client "$A" "${C[@]}"
grep_in err authz-first-deny 'rules:1: \* \.example\.test deny'
rules '* * allow' '* .example.test deny'
expect authz-first-allow 0 -- client "$A" "${C[@]}"
rules '.example.test .test allow'
expect authz-subdomains 0 -- client "$A" "${C[@]}"
rules 'www.example.test .www.example.test allow'
expect authz-subdomain-not-self 5 -- client "$A" "${C[@]}"
grep_in err authz-subdomain-not-self 'no rule for client\.example\.test -> www\.example\.test'
rules '@example.test * deny' '* * allow'
expect authz-user-domain 5 -- client "$A" --myname john@example.test
grep_in err authz-user-domain 'rules:1: @example\.test \* deny'
expect authz-user-domain-other 0 -- client "$A" "${C[@]}"
rules '- www.example.test deny' '* * allow'
expect authz-no-local 5 -- client "$A"
expect authz-no-local-other 0 -- client "$A" "${C[@]}"
rules '* * allow' 'oops'
expect authz-bad-line 1 -- client "$A" "${C[@]}"
grep_in err authz-bad-line "/rules:2: want \"LOCAL REMOTE allow\\|deny\""

# --- negative entries ([cache] negative_ttl): fail fast, never pass ---
{
	make_conf "$W/z2" | sed "s|cache\.mdb|neg.mdb|"
	printf '[cache]\nnegative_ttl = 60\n'
} >"$W/neg.conf"
export TLSPOOL_CONFIG="$W/neg.conf"
expect neg-online 4 -- client "${P[garb]}"
expect neg-list 0 -- "$CLI" --cache-list
grep_in out neg-list "authn fail www\.example\.test _${P[garb]}\._tcp"
expect neg-cached 4 -- client "${P[garb]}"
grep_in err neg-cached 'a cached failure, until'
expect neg-no-read 4 -- client "${P[garb]}" --no-cache-read
no_grep_in err neg-no-read 'cached failure'

finish
