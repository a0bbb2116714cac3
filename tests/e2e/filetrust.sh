#!/bin/bash
# The file rules of tlspool.conf(5) FILES, end to end with tlspool-connect
# against zones served for this script alone (it stops their NSD):
#  - a cache file made by nobody (mode 0666, in a sticky directory as
#    /tmp is) holding a forged entry for a peer whose TLSA record does not
#    match: the entry is not used, the peer is rejected online, and the
#    detail names the file, its owner and its mode; a good peer passes
#    with a warning that says so.  The same entry in a file of our own
#    does answer (the control that shows the entry is a real one).
#  - symbolic links planted at the cache path and at its lock file,
#    pointing at a root-owned 0600 file: that file is not modified and
#    the cache is not used.
#  - an authorization plugin writable by others: exit 5 (EPERM) with a
#    detail naming it; the same file 0755 allows.
#  - a key file 0644: exit 1 (EACCES) naming file and mode.
#  - relative paths in the configuration are named from its directory,
#    whatever the current directory.
#  - a trust anchor or a configuration that is a directory fails at once.
. "$(dirname "$0")/common"
. scripts/ports.sh

W="$T/w"
mkdir -p "$W"
# nobody makes files in $W/shared; the client runs from / in one case
chmod 755 "$T" "$W"
CLI=$(realpath "$CLI")
RULES_SO="$BUILD/tlspool-authz-rules.so"
[ -f "$RULES_SO" ] || { echo "no $RULES_SO"; exit 1; }
id nobody >/dev/null 2>&1 || { echo "no user nobody"; exit 1; }
certtool --generate-privkey --key-type ecdsa --outfile "$W/www.key" 2>/dev/null
printf 'dns_name = www.example.test\nexpiration_days = 30\nsigning_key\n' >"$W/tmpl"
certtool --generate-self-signed --load-privkey "$W/www.key" --template "$W/tmpl" \
	--outfile "$W/www.pem" 2>/dev/null
SPKI=$(openssl pkey -in "$W/www.key" -pubout -outform DER | sha256sum | cut -c1-64)

declare -A P
for s in forged good link authz key rel keysrv; do P[$s]=$(free_port); done
for s in forged good link authz key rel; do
	echo "_${P[$s]}._tcp.www IN TLSA 3 1 1 $SPKI"
done >"$W/add"
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

# The served zones, a 500 ms DNS timeout, the cache file CACHE.
make_conf() { # ZONEDIR CACHE > conf
	sed 's/^timeout_ms = .*/timeout_ms = 500/' "$1/tlspool.conf"
	printf '[tls]\nhandshake_timeout_ms = 5000\n[cache]\npath = %s\n' "$2"
}
# The servers never validate anyone (--no-peer-cert) and use no cache.
make_server_conf() { # ZONEDIR > conf
	sed 's/^timeout_ms = .*/timeout_ms = 500/' "$1/tlspool.conf"
	printf '[identity www.example.test]\nkey = %s\ncertificate = %s\n' "$W/www.key" "$W/www.pem"
}
make_server_conf "$W/z" >"$W/server.conf"

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
	echo "hello" | timeout 30 "$CLI" --client --sni www.example.test "$@" 127.0.0.1 "$port"
}
export -f client server wait_port
export CLI W T

# --- a forged entry in a cache file of nobody -------------------------------
# Fill a cache of our own while _forged's record matches.
make_conf "$W/z" "$W/filled.mdb" >"$W/fill.conf"
export TLSPOOL_CONFIG="$W/fill.conf"
expect fill 0 -- client "${P[forged]}"
expect fill-list 0 -- "$CLI" --cache-list
grep_in out fill-list "authn pass www\\.example\\.test _${P[forged]}\\._tcp"
# New zones: _forged's record now names another key.
{
	echo "_${P[forged]}._tcp.www IN TLSA 3 1 1 $(printf '%064d' 0)"
	for s in good link authz key rel; do echo "_${P[$s]}._tcp.www IN TLSA 3 1 1 $SPKI"; done
} >"$W/add2"
zones/serve stop "$W/z" >/dev/null 2>&1
zones/serve start "$W/z2" --add example.test "$W/add2" 2>/dev/null || { echo "zones failed"; exit 1; }
make_server_conf "$W/z2" >"$W/server.conf"
# The control: in our own file the entry answers, DNS notwithstanding.
make_conf "$W/z2" "$W/filled.mdb" >"$W/fill.conf"
expect forged-in-own-file 0 -- client "${P[forged]}"
# A sticky, world-writable directory like /tmp, where nobody made the
# file first (mode 0666) with the same entry in it.
mkdir -m 1777 "$W/shared"
chmod 1777 "$W/shared"
setpriv --reuid nobody --regid nogroup --clear-groups sh -c \
	"umask 0; cat >'$W/shared/cache.mdb'" <"$W/filled.mdb"
setpriv --reuid nobody --regid nogroup --clear-groups sh -c \
	"umask 0; : >'$W/shared/cache.mdb-lock'"
stat -c '%U %a' "$W/shared/cache.mdb" | grep -qx 'nobody 666' || echo "not ok: setup: $(stat -c '%U %a' "$W/shared/cache.mdb")"
make_conf "$W/z2" "$W/shared/cache.mdb" >"$W/nobody.conf"
export TLSPOOL_CONFIG="$W/nobody.conf"
before=$(sha256sum <"$W/shared/cache.mdb")
expect forged-rejected 4 -- client "${P[forged]}"
no_grep_in out forged-rejected '^hello$'
grep_in err forged-rejected "_${P[forged]}\\._tcp\\.www\\.example\\.test"
grep_in err forged-rejected "cache $W/shared/cache\\.mdb: owner nobody \\(uid 65534\\), mode 0666: not owned by uid 0"
expect forged-good-online 0 -- client "${P[good]}"
grep_in out forged-good-online '^hello$'
grep_in err forged-good-online "warning: cache $W/shared/cache\\.mdb: owner nobody \\(uid 65534\\), mode 0666: .*; validated online"
[ "$(sha256sum <"$W/shared/cache.mdb")" = "$before" ] && npass=$((npass + 1)) ||
	{ nfail=$((nfail + 1)); echo "not ok: nobody's cache file was written"; }
expect forged-list 1 -- "$CLI" --cache-list
grep_in err forged-list 'owner nobody \(uid 65534\), mode 0666'
# nobody's file does hold the entry: a copy of our own lists it.
install -m 600 "$W/shared/cache.mdb" "$W/copy.mdb"
make_conf "$W/z2" "$W/copy.mdb" >"$W/copy.conf"
expect forged-copy-list 0 -- "$CLI" --cache-list --config "$W/copy.conf"
grep_in out forged-copy-list "authn pass www\\.example\\.test _${P[forged]}\\._tcp"

# --- links planted at the cache file and at its lock file --------------------
printf 'root only\n' >"$W/victim"
chmod 600 "$W/victim"
victim_was=$(stat -c '%s %Y %a %U' "$W/victim")$(sha256sum <"$W/victim")
mkdir -m 700 "$W/l1" "$W/l2"
ln -s "$W/victim" "$W/l1/cache.mdb"
ln -s "$W/victim" "$W/l2/cache.mdb-lock"
for i in 1 2; do
	make_conf "$W/z2" "$W/l$i/cache.mdb" >"$W/link.conf"
	export TLSPOOL_CONFIG="$W/link.conf"
	expect link$i 0 -- client "${P[link]}"
	grep_in err link$i "warning: cache $W/l$i/cache\\.mdb(-lock)?: owner root \\(uid 0\\), mode 0777: is a symbolic link, never followed for the cache"
	expect link$i-list 1 -- "$CLI" --cache-list
	expect link$i-flush 1 -- "$CLI" --cache-flush
done
[ "$(stat -c '%s %Y %a %U' "$W/victim")$(sha256sum <"$W/victim")" = "$victim_was" ] &&
	npass=$((npass + 1)) || { nfail=$((nfail + 1)); echo "not ok: the link's target was modified"; }
[ -L "$W/l1/cache.mdb" ] && [ ! -e "$W/l1/cache.mdb-lock" ] && npass=$((npass + 1)) ||
	{ nfail=$((nfail + 1)); echo "not ok: a lock file was made beside a refused cache"; }

# --- an authorization plugin that others can write ---------------------------
cp "$RULES_SO" "$W/plug.so"
printf '* * allow\n' >"$W/rules"
{
	sed 's/^timeout_ms = .*/timeout_ms = 500/' "$W/z2/tlspool.conf"
	printf '[authz]\nplugin = plug.so\nconfig = rules\n' # relative: next to the file
} >"$W/authz.conf"
export TLSPOOL_CONFIG="$W/authz.conf"
chmod 0755 "$W/plug.so"
expect authz-0755 0 -- client "${P[authz]}"
chmod 0777 "$W/plug.so"
expect authz-0777 5 -- client "${P[authz]}"
no_grep_in out authz-0777 '^hello$'
grep_in err authz-0777 "authorization: \\[authz\\] plugin $W/plug\\.so: owner root \\(uid 0\\), mode 0777: writable by group or other, which a plugin must not be; not loaded"
chmod 0775 "$W/plug.so"
expect authz-0775 5 -- client "${P[authz]}"
grep_in err authz-0775 "mode 0775: writable by group or other"
chmod 0755 "$W/plug.so"
chown nobody "$W/plug.so"
expect authz-nobody 5 -- client "${P[authz]}"
grep_in err authz-nobody "plug\\.so: owner nobody \\(uid 65534\\), mode 0755"
# --no-authz asks no plugin
expect authz-bypassed 0 -- client "${P[authz]}" --no-authz

# --- a key readable by others; relative paths --------------------------------
cp -p "$W/www.key" "$W/open.key"
chmod 0644 "$W/open.key"
{
	sed 's/^timeout_ms = .*/timeout_ms = 500/' "$W/z2/tlspool.conf"
	printf '[identity client.example.test]\nkey = %s\n' "$W/open.key"
} >"$W/key.conf"
export TLSPOOL_CONFIG="$W/key.conf"
expect key-0644 1 -- client "${P[key]}" --myname client.example.test
grep_in err key-0644 "client\\.example\\.test: key $W/open\\.key: owner root \\(uid 0\\), mode 0644: readable by group or other; a private key must be 0600 or stricter"
# A server whose identity's key others can read refuses to load it and
# tells the client internal_error (its own fault), not unrecognized_name
# (RFC 8446 section 6.2): the name is one it serves.
{
	sed 's/^timeout_ms = .*/timeout_ms = 500/' "$W/z2/tlspool.conf"
	printf '[identity www.example.test]\nkey = %s\ncertificate = %s\n' "$W/open.key" "$W/www.pem"
} >"$W/keysrv.conf"
("$CLI" --server --config "$W/keysrv.conf" --bind 127.0.0.1 --no-peer-cert \
	--exec cat "${P[keysrv]}" >/dev/null 2>"$T/keysrv.err") &
pids+=($!)
wait_port "${P[keysrv]}"
expect key-0644-server 1 -- timeout 20 gnutls-cli --insecure --sni-hostname www.example.test \
	-p "${P[keysrv]}" 127.0.0.1 </dev/null
grep_in out key-0644-server 'Received alert \[80\]: Internal error'
no_grep_in out key-0644-server 'nrecognized'
wait "${pids[-1]}" 2>/dev/null
grep_in keysrv.err key-0644-server "key $W/open\\.key: owner root \\(uid 0\\), mode 0644: readable by group or other"
# The configuration in $W/rel names its key and trust anchor relatively;
# the client runs from /.
mkdir -m 700 "$W/rel"
cp -p "$W/www.key" "$W/rel/client.key"
cp "$W/z2/root.key" "$W/rel/anchor.key"
{
	sed -e 's/^timeout_ms = .*/timeout_ms = 500/' -e 's|^trust_anchor = .*|trust_anchor = anchor.key|' \
		"$W/z2/tlspool.conf"
	printf '[identity client.example.test]\nkey = client.key\n'
} >"$W/rel/tlspool.conf"
grep -q '^trust_anchor = anchor.key' "$W/rel/tlspool.conf" || echo "not ok: setup: no relative trust_anchor"
export TLSPOOL_CONFIG="$W/rel/tlspool.conf"
expect relative 0 -- bash -c "cd / && client ${P[rel]} --myname client.example.test"
grep_in out relative '^hello$'

# --- directories where files belong: at once, no spinning --------------------
mkdir "$W/anchor.d"
sed -e 's|^trust_anchor = .*|trust_anchor = anchor.d|' "$W/rel/tlspool.conf" >"$W/dir-anchor.conf"
expect anchor-dir 1 -- timeout 10 "$CLI" --config "$W/dir-anchor.conf" --lookup www.example.test
grep_in err anchor-dir "trust anchor $W/anchor\\.d: owner root \\(uid 0\\), mode 0755: is a directory, not a regular file"
mkdir "$W/conf.d"
expect config-dir 1 -- timeout 10 "$CLI" --config "$W/conf.d" --lookup www.example.test
grep_in err config-dir "$W/conf\\.d: owner root \\(uid 0\\), mode 0755: is a directory, not a regular file"

finish
