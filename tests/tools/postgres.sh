#!/bin/sh
# tests/tools/postgres.sh -- a private PostgreSQL cluster for the tests of
# its SSLRequest.
#
#   tests/tools/postgres.sh start DIR PORT [CERT KEY]
#   tests/tools/postgres.sh stop DIR
#
# start makes a cluster with initdb in DIR/data (superuser postgres, trust
# authentication, no fsync), owned by the postgres user, and starts it
# with pg_ctl as that user: listening on 127.0.0.1:PORT only, its Unix
# socket in DIR/sock, its log in DIR/postgres.log (every connection
# logged).  With CERT and KEY (PEM; CERT may hold the chain) ssl = on and
# pg_hba.conf accepts TCP connections over TLS only (hostssl); without
# them ssl = off, so the server answers an SSLRequest with 'N', and plain
# TCP connections are accepted.  pg_ctl -w waits until it accepts
# connections.  stop runs pg_ctl stop -m immediate.
#
# Needs root (initdb and postgres refuse to run as root: they run as the
# postgres user) and the Debian package postgresql.  Every directory above
# DIR must be searchable by postgres: chmod 755 the test's scratch
# directory.
set -eu
prog=tests/tools/postgres.sh

die() {
	echo "$prog: $*" >&2
	exit 1
}

bin=
for d in /usr/lib/postgresql/*/bin; do
	[ -x "$d/initdb" ] && bin=$d
done
as_pg() { setpriv --reuid=postgres --regid=postgres --clear-groups -- "$@"; }

cmd=${1:-}
dir=${2:-}
[ -n "$dir" ] || die "usage: $prog start DIR PORT [CERT KEY] | stop DIR"

case $cmd in
stop)
	[ -f "$dir/data/postmaster.pid" ] || exit 0
	as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
	exit 0
	;;
start) ;;
*) die "unknown command $cmd" ;;
esac

[ $# -ge 3 ] || die "usage: $prog start DIR PORT [CERT KEY]"
port=$3 cert=${4:-} key=${5:-}
[ -n "$bin" ] || die "initdb not found (Debian: postgresql)"
[ "$(id -u)" = 0 ] || die "needs root, to run PostgreSQL as its user"
id postgres >/dev/null 2>&1 || die "no postgres user"

mkdir -p "$dir/sock"
dir=$(cd "$dir" && pwd -P)
chmod 755 "$dir"
chown postgres "$dir/sock"
: >"$dir/postgres.log"
chown postgres "$dir/postgres.log"
# initdb makes DIR/data itself (it must not exist or be empty and owned
# by postgres)
install -d -o postgres -m 700 "$dir/data"
as_pg "$bin/initdb" -D "$dir/data" -U postgres -A trust --no-sync \
	--no-instructions -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 </dev/null ||
    { cat "$dir/initdb.log" >&2; die "initdb failed"; }
{
	echo "listen_addresses = '127.0.0.1'"
	echo "port = $port"
	echo "unix_socket_directories = '$dir/sock'"
	echo "fsync = off"
	echo "log_connections = on"
	echo "log_disconnections = on"
	echo "log_min_messages = info"
	if [ -n "$cert" ]; then
		install -o postgres -m 644 "$cert" "$dir/data/server.crt"
		install -o postgres -m 600 "$key" "$dir/data/server.key"
		echo "ssl = on"
		echo "ssl_cert_file = 'server.crt'"
		echo "ssl_key_file = 'server.key'"
	else
		echo "ssl = off"
	fi
} >>"$dir/data/postgresql.conf"
{
	echo "local all all trust"
	if [ -n "$cert" ]; then
		echo "hostssl all all 127.0.0.1/32 trust"
	else
		echo "host all all 127.0.0.1/32 trust"
	fi
} >"$dir/data/pg_hba.conf"
as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 20 start \
	>"$dir/start.log" 2>&1 </dev/null ||
    { cat "$dir/start.log" >&2; tail -20 "$dir/postgres.log" >&2; die "postgres did not start"; }
