#!/bin/sh
# tests/tools/unbound.sh -- a private validating Unbound that trusts the
# test root, for programs that resolve through the system resolver.
#
#   tests/tools/unbound.sh start DIR ADDRESS ROOTKEY ROOTADDR[@PORT]
#   tests/tools/unbound.sh stop DIR
#
# start writes DIR/unbound.conf and DIR/root.hints and runs unbound -d in
# the background (pid in DIR/unbound.pid, log in DIR/unbound.log), as the
# current user, listening on ADDRESS port 53 (UDP and TCP; meant for a
# private network namespace, see tests/e2e/servers_dane_client.sh), with
# ROOTKEY (zones/serve's DIR/root.key) as its trust anchor and the root
# hint ". NS ns.test." at ROOTADDR (an NSD serving the test root on port
# 53), or with @PORT, stub zones at ROOTADDR@PORT for every zone of the
# test hierarchy (zones/serve's NSD on its port serves them all).  Queries to loopback servers are allowed, the
# "test." zone is not the built-in empty local zone (RFC 6761), and
# answers carry the AD bit when validated.  Waits until it answers.  stop
# kills the pid and waits for it.
set -eu
prog=tests/tools/unbound.sh

die() {
	echo "$prog: $*" >&2
	exit 1
}

. "$(dirname "$0")/daemon.sh" # alive, stop_pid

cmd=${1:-}
dir=${2:-}
[ -n "$dir" ] || die "usage: $prog start DIR ADDRESS ROOTKEY ROOTADDR[@PORT] | stop DIR"
PATH=$PATH:/usr/sbin

case $cmd in
stop)
	[ -s "$dir/unbound.pid" ] || exit 0
	pid=$(cat "$dir/unbound.pid")
	stop_pid "$pid"
	rm -f "$dir/unbound.pid"
	exit 0
	;;
start) ;;
*) die "unknown command $cmd" ;;
esac

[ $# -ge 5 ] || die "usage: $prog start DIR ADDRESS ROOTKEY ROOTADDR[@PORT]"
addr=$3 rootkey=$4 root=$5
command -v unbound >/dev/null 2>&1 || die "unbound not found (Debian: unbound)"
mkdir -p "$dir"
dir=$(cd "$dir" && pwd -P)
rootaddr=${root%@*}
rootport=53
[ "$root" = "$rootaddr" ] || rootport=${root#*@}
cp "$rootkey" "$dir/root.key"
printf '.\t3600000\tIN\tNS\tns.test.\nns.test.\t3600000\tIN\tA\t%s\n' "$rootaddr" >"$dir/root.hints"
cat >"$dir/unbound.conf" <<EOF
server:
	verbosity: 1
	interface: $addr
	port: 53
	do-ip6: no
	access-control: 127.0.0.0/8 allow
	username: ""
	chroot: ""
	directory: "$dir"
	pidfile: ""
	logfile: ""
	use-syslog: no
	trust-anchor-file: "$dir/root.key"
	do-not-query-localhost: no
	local-zone: "test." nodefault
	qname-minimisation: no
	val-log-level: 2
	log-servfail: yes
	num-threads: 1
	outgoing-port-permit: 32768-60999
EOF
if [ "$rootport" = 53 ]; then
	printf '\troot-hints: "%s"\n' "$dir/root.hints" >>"$dir/unbound.conf"
else
	# every zone of the test hierarchy at that one server (root hints
	# would take the place of the stub for ".")
	for z in . test. example.test. other.test. bogus.test. expired.test. insecure.test.; do
		printf 'stub-zone:\n\tname: "%s"\n\tstub-addr: %s@%s\n' "$z" "$rootaddr" "$rootport"
	done >>"$dir/unbound.conf"
fi
unbound-checkconf "$dir/unbound.conf" >"$dir/checkconf.log" 2>&1 ||
    { cat "$dir/checkconf.log" >&2; die "unbound.conf refused"; }
unbound -d -c "$dir/unbound.conf" </dev/null >"$dir/unbound.log" 2>&1 &
echo $! >"$dir/unbound.pid"
i=0
until dig @"$addr" +time=1 +tries=1 . SOA >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -lt 100 ] || { tail -20 "$dir/unbound.log" >&2; die "unbound does not answer on $addr"; }
	kill -0 "$(cat "$dir/unbound.pid")" 2>/dev/null ||
	    { tail -20 "$dir/unbound.log" >&2; die "unbound exited"; }
	sleep 0.05
done
