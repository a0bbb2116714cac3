#!/bin/bash
# tlspool-connect --client --starttls postgres against a real PostgreSQL
# (tests/tools/postgres.sh: an initdb cluster on a loopback port that
# accepts TCP connections over TLS only), with TLSA records for its
# certificate in zones signed for this script:
#  - after the SSLRequest the peer is pg.example.test, and the TLS channel
#    carries the frontend/backend protocol: a StartupMessage answered by
#    AuthenticationOk and ReadyForQuery, a query whose answer is the TLS
#    version the server sees for this very connection (pg_stat_ssl), and
#    the server's log shows the connection authorized with SSL;
#  - failures: the TLSA record of another key (exit 4, nothing logged in),
#    the same server after ssl = off (ALTER SYSTEM, reloaded), which
#    answers the SSLRequest with 'N' (exit 3).
# Needs root and PostgreSQL; skips (77) otherwise.
. "$(dirname "$0")/common"
. scripts/ports.sh
. tests/tools/servers-common.sh
pgbin=
for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && pgbin=$d; done
need_root_and "${pgbin:-/usr/lib/postgresql/bin}/initdb" "$pgbin/psql" setpriv certtool
srv_setup
leaf pg pg.example.test
leaf other pg.example.test

port=$(free_port)
{
	echo "pg IN A 127.0.0.1"
	echo "badpg IN A 127.0.0.1"
	tlsa 3 1 1 "$C/pg.pem" "_$port._tcp.pg.example.test."
	tlsa 3 1 1 "$C/other.pem" "_$port._tcp.badpg.example.test."
} >"$W/example.add"
zones/serve start "$W/z" --add example.test "$W/example.add" 2>/dev/null ||
	{ echo "zones failed"; exit 1; }
PG="$W/pg"
cleanup_all() {
	tests/tools/postgres.sh stop "$PG" >/dev/null 2>&1
	zones/serve stop "$W/z" >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup_all EXIT
tests/tools/postgres.sh start "$PG" "$port" "$C/pg.chain" "$C/pg.key" ||
	{ echo "postgres failed"; exit 1; }
LOG="$PG/postgres.log"
psql_local() {
	setpriv --reuid=postgres --regid=postgres --clear-groups -- \
		"$pgbin/psql" -X -q -t -A -h "$PG/sock" -p "$port" -U postgres -c "$1" postgres
}

CONF="$W/tlspool.conf"
{
	cat "$W/z/tlspool.conf"
	printf '[tls]\nhandshake_timeout_ms = 5000\n'
} >"$CONF"
export TLSPOOL_CONFIG="$CONF"

# The frontend's messages (PostgreSQL protocol 3.0, "Message Formats"):
# (the formats below hold \0 and \x escapes on purpose)
# shellcheck disable=SC2059
# be32 N: a 32-bit big-endian integer
be32() { printf "\\x$(printf %02x $(($1 >> 24 & 255)))\\x$(printf %02x $(($1 >> 16 & 255)))\\x$(printf %02x $(($1 >> 8 & 255)))\\x$(printf %02x $(($1 & 255)))"; }
# shellcheck disable=SC2059
startup() {
	local params='user\0postgres\0database\0postgres\0application_name\0tlspool\0\0'
	local n
	n=$(printf "$params" | wc -c)
	be32 $((n + 8))
	be32 196608 # protocol 3.0
	printf "$params"
}
query() { # SQL
	printf 'Q'
	be32 $((${#1} + 5))
	printf '%s\0' "$1"
}
terminate() { printf 'X'; be32 4; }
session() {
	await_tls
	startup
	sleep 0.2
	query "SELECT 'tls:' || version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
	sleep 0.3
	terminate
	sleep 0.2
}
run() {
	session | timeout 20 "$CLI" --client --starttls postgres "$@"
}

# --- failures first ---
expect wrong-tlsa 4 -- run --sni badpg.example.test 127.0.0.1 "$port"
grep_in err wrong-tlsa "_$port\\._tcp\\.badpg\\.example\\.test\\."
no_grep_in err wrong-tlsa '^peer: '
check wrong-tlsa-no-output test ! -s "$T/out"
file_lacks wrong-tlsa-not-authorized "$LOG" 'connection authorized'

# --- the frontend/backend protocol over the TLS channel ---
expect tls 0 -- run --sni pg.example.test --diagnose 127.0.0.1 "$port"
grep_in err tls '^peer: pg\.example\.test$'
grep_in err tls '^; starttls +postgres, step done'
grep_in err tls '^; dane +authenticated'
# AuthenticationOk: 'R', length 8, code 0
check tls-auth-ok grep -qaP 'R\x00\x00\x00\x08\x00\x00\x00\x00' "$T/out"
check tls-parameter grep -qa 'server_version' "$T/out"
# the DataRow: the TLS version of this connection as the server sees it
check tls-query grep -qaE 'tls:TLSv1\.[23]' "$T/out"
check tls-complete grep -qa 'SELECT 1' "$T/out"
wait_for "$LOG" 'connection authorized: user=postgres database=postgres application_name=tlspool SSL enabled' || true
file_has tls-logged "$LOG" 'connection authorized: user=postgres database=postgres application_name=tlspool SSL enabled \(protocol=TLSv1\.[23]'

# --- ssl = off: the SSLRequest answered 'N' ---
psql_local "ALTER SYSTEM SET ssl = off" >/dev/null
psql_local "SELECT pg_reload_conf()" >/dev/null
for _ in $(seq 50); do
	[ "$(psql_local 'SHOW ssl')" = off ] && break
	sleep 0.1
done
check ssl-off test "$(psql_local 'SHOW ssl')" = off
expect no-ssl 3 -- run --sni pg.example.test 127.0.0.1 "$port"
grep_in err no-ssl 'postgres client: .*answered N to SSLRequest'
no_grep_in err no-ssl '^peer: '
check no-ssl-no-output test ! -s "$T/out"

timed finished
finish
