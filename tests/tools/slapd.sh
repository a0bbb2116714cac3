#!/bin/sh
# tests/tools/slapd.sh -- a private OpenLDAP slapd for the LDAP tests.
#
#   tests/tools/slapd.sh start DIR LDIF URLS [CERT KEY]
#   tests/tools/slapd.sh stop DIR
#
# start writes DIR/slapd.conf (the core, cosine and inetOrgPerson schemas,
# pgpKey as the PGP keyserver schema names it, one mdb database for
# dc=example,dc=test readable by anyone, TLS with CERT and KEY when given),
# loads LDIF with slapadd, starts slapd listening on URLS (slapd -h, e.g.
# "ldap://127.0.0.1:24389/ ldaps://127.0.0.1:24636/") as the current user,
# and waits until the first URL's port listens.  The pid is DIR/slapd.pid.
# With SLAPD_LOG=FILE in the environment slapd runs with "-d stats" in the
# background instead, its log of every operation (connections, StartTLS,
# binds, searches, results) in FILE.
# stop kills that pid (nothing else) and waits for it.
set -eu
prog=tests/tools/slapd.sh

die() {
	echo "$prog: $*" >&2
	exit 1
}

. "$(dirname "$0")/daemon.sh" # alive, stop_pid

cmd=${1:-}
dir=${2:-}
[ -n "$dir" ] || die "usage: $prog start DIR LDIF URLS [CERT KEY] | stop DIR"

case $cmd in
stop)
	[ -s "$dir/slapd.pid" ] || exit 0
	pid=$(cat "$dir/slapd.pid")
	stop_pid "$pid"
	rm -f "$dir/slapd.pid"
	exit 0
	;;
start) ;;
*) die "unknown command $cmd" ;;
esac

[ $# -ge 4 ] || die "usage: $prog start DIR LDIF URLS [CERT KEY]"
ldif=$3 urls=$4 cert=${5:-} key=${6:-}
for v in slapd slapadd; do
	command -v $v >/dev/null 2>&1 || [ -x /usr/sbin/$v ] ||
	    die "$v not found (Debian: slapd)"
done
PATH=$PATH:/usr/sbin
mkdir -p "$dir/db"
dir=$(cd "$dir" && pwd -P)
schema=/etc/ldap/schema
cat >"$dir/pgp.schema" <<'EOF'
attributetype ( 1.3.6.1.4.1.3401.8.2.11 NAME 'pgpKey'
	DESC 'an OpenPGP public key, binary or armored'
	EQUALITY octetStringMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 )
objectclass ( 1.3.6.1.4.1.3401.8.2.24 NAME 'pgpKeyInfo' SUP top AUXILIARY
	MAY ( pgpKey ) )
EOF
{
	echo "include $schema/core.schema"
	echo "include $schema/cosine.schema"
	echo "include $schema/inetorgperson.schema"
	echo "include $dir/pgp.schema"
	echo "modulepath /usr/lib/ldap"
	echo "moduleload back_mdb"
	echo "pidfile $dir/slapd.pid"
	echo "argsfile $dir/slapd.args"
	if [ -n "$cert" ]; then
		echo "TLSCertificateFile $cert"
		echo "TLSCertificateKeyFile $key"
	fi
	echo "database mdb"
	echo "suffix \"dc=example,dc=test\""
	echo "rootdn \"cn=admin,dc=example,dc=test\""
	echo "directory $dir/db"
	echo "maxsize 10485760"
	echo "access to * by * read"
} >"$dir/slapd.conf"
slapadd -q -f "$dir/slapd.conf" -l "$ldif" >"$dir/slapadd.log" 2>&1 ||
    { cat "$dir/slapadd.log" >&2; die "slapadd failed"; }
if [ -n "${SLAPD_LOG:-}" ]; then
	# -d keeps slapd in the foreground; it still writes its pidfile
	slapd -f "$dir/slapd.conf" -h "$urls" -d stats </dev/null >"$SLAPD_LOG" 2>&1 &
else
	slapd -f "$dir/slapd.conf" -h "$urls" >"$dir/slapd.log" 2>&1 ||
	    { cat "$dir/slapd.log" >&2; die "slapd did not start"; }
fi
port=$(echo "$urls" | sed -n 's|^[a-z]*://[^:]*:\([0-9]*\).*|\1|p')
i=0
until ss -Htln "sport = :$port" | grep -q .; do
	i=$((i + 1))
	[ $i -lt 100 ] || die "slapd does not listen on port $port"
	sleep 0.05
done
