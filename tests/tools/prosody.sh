#!/bin/sh
# tests/tools/prosody.sh -- a private Prosody for the XMPP tests.
#
#   tests/tools/prosody.sh start DIR PORT DOMAINS [CERT KEY]
#   tests/tools/prosody.sh stop DIR
#
# start writes DIR/prosody.cfg.lua (data in DIR/data, the log in
# DIR/prosody.log, no server-to-server, no HTTP), registers the user john
# with password "secret" on each domain (prosodyctl), and starts Prosody in
# the foreground as the prosody user, in the background of this script,
# with client-to-server on 127.0.0.1:PORT only and a VirtualHost for each
# of the DOMAINS (one argument, separated by spaces).  With CERT and KEY (PEM; CERT may hold the chain) it offers
# STARTTLS and requires it before authentication
# (c2s_require_encryption); without them mod_tls is not loaded, so it
# offers no STARTTLS.  With S2S_PORT=N in the environment it also
# listens for servers (s2s) on 127.0.0.1:N, with the same STARTTLS and
# dialback.  Waits
# until PORT listens.  Its pid is DIR/prosody.pid.  stop sends SIGTERM to
# that pid and waits for it.
#
# Needs root (to become the prosody user) and the Debian package prosody
# (with lua-sec for TLS).  Every directory above DIR must be searchable
# by the prosody user: chmod 755 the test's scratch directory.
set -eu
prog=tests/tools/prosody.sh

die() {
	echo "$prog: $*" >&2
	exit 1
}

. "$(dirname "$0")/daemon.sh" # alive, stop_pid

cmd=${1:-}
dir=${2:-}
[ -n "$dir" ] || die "usage: $prog start DIR PORT DOMAINS [CERT KEY] | stop DIR"

case $cmd in
stop)
	[ -s "$dir/prosody.pid" ] || exit 0
	pid=$(cat "$dir/prosody.pid")
	stop_pid "$pid"
	rm -f "$dir/prosody.pid"
	exit 0
	;;
start) ;;
*) die "unknown command $cmd" ;;
esac

[ $# -ge 4 ] || die "usage: $prog start DIR PORT DOMAINS [CERT KEY]"
port=$3 domains=$4 cert=${5:-} key=${6:-}
command -v prosody >/dev/null 2>&1 || die "prosody not found (Debian: prosody)"
[ "$(id -u)" = 0 ] || die "needs root, to run Prosody as its user"
id prosody >/dev/null 2>&1 || die "no prosody user"
as_prosody() { setpriv --reuid=prosody --regid=prosody --clear-groups -- "$@"; }

mkdir -p "$dir/data" "$dir/certs"
dir=$(cd "$dir" && pwd -P)
chmod 755 "$dir"
if [ -n "$cert" ]; then
	cp "$cert" "$dir/cert.pem"
	cp "$key" "$dir/key.pem"
	chmod 600 "$dir/key.pem"
	chown prosody "$dir/key.pem"
fi
# without a certificate mod_tls would still offer STARTTLS (and fail the
# handshake for want of a certificate): left out
tlsmod=
[ -z "$cert" ] || tlsmod='"tls",'
enc=false
[ -z "$cert" ] || enc=true
if [ -n "${S2S_PORT:-}" ]; then
	s2sconf="s2s_ports = { $S2S_PORT }
s2s_secure_auth = false
s2s_require_encryption = $enc
modules_enabled = { \"saslauth\", $tlsmod \"dialback\", \"disco\", \"ping\", \"version\", \"roster\" }
modules_disabled = { \"offline\", \"c2s_direct_tls\", \"s2s_direct_tls\" }"
else
	s2sconf="s2s_ports = { }
s2s_interfaces = { }
modules_enabled = { \"saslauth\", $tlsmod \"disco\", \"ping\", \"version\", \"roster\" }
modules_disabled = { \"s2s\", \"offline\", \"c2s_direct_tls\" }"
fi
{
	cat <<EOF
-- written by $prog
data_path = "$dir/data"
log = { { levels = { min = "info" }, to = "file", filename = "$dir/prosody.log" } }
interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { $port }
c2s_direct_tls_ports = { }
$s2sconf
authentication = "internal_plain"
use_dane = false
plugin_paths = { }
EOF
	if [ -n "$cert" ]; then
		printf 'ssl = { certificate = "%s"; key = "%s"; }\n' "$dir/cert.pem" "$dir/key.pem"
		echo "c2s_require_encryption = true"
	else
		echo "c2s_require_encryption = false"
		echo "allow_unencrypted_plain_auth = true"
	fi
	for domain in $domains; do
		printf 'VirtualHost "%s"\n' "$domain"
		if [ -n "$cert" ]; then
			printf '  ssl = { certificate = "%s"; key = "%s"; }\n' "$dir/cert.pem" "$dir/key.pem"
		fi
	done
} >"$dir/prosody.cfg.lua"
: >"$dir/prosody.log"
chown -R prosody "$dir/data" "$dir/prosody.log"
cfg=$dir/prosody.cfg.lua
for domain in $domains; do
	as_prosody prosodyctl --config "$cfg" register john "$domain" secret \
		>"$dir/register.log" 2>&1 </dev/null ||
	    { cat "$dir/register.log" >&2; die "prosodyctl register failed"; }
done
# foreground (-F), backgrounded here: Prosody's own daemonizing needs a
# writable /run/prosody
setpriv --reuid=prosody --regid=prosody --clear-groups -- \
	prosody --config "$cfg" -F </dev/null >"$dir/stdout.log" 2>&1 &
echo $! >"$dir/prosody.pid"
i=0
until ss -Htln "sport = :$port" | grep -q . &&
    { [ -z "${S2S_PORT:-}" ] || ss -Htln "sport = :$S2S_PORT" | grep -q .; }; do
	i=$((i + 1))
	[ $i -lt 200 ] || { tail -20 "$dir/prosody.log" "$dir/stdout.log" >&2 2>/dev/null; die "prosody does not listen on port $port"; }
	kill -0 "$(cat "$dir/prosody.pid")" 2>/dev/null ||
	    { tail -20 "$dir/prosody.log" "$dir/stdout.log" >&2 2>/dev/null; die "prosody exited"; }
	sleep 0.05
done
