#!/bin/sh
# tests/tools/postfix.sh -- a private Postfix instance for the SMTP tests.
#
#   tests/tools/postfix.sh start DIR PORT HOSTNAME [CERT KEY] [-- SETTING...]
#   tests/tools/postfix.sh stop DIR
#
# start writes DIR/etc/main.cf and DIR/etc/master.cf (postfix -c DIR/etc),
# with the queue in DIR/queue, the data directory in DIR/data and the log in
# DIR/maillog (postlogd, no syslog needed), and starts the instance as root
# (the daemons drop to the postfix user; every directory above DIR must let
# it through: chmod 755 the test's scratch directory).  smtpd listens on
# 127.0.0.1:PORT only and calls itself HOSTNAME; mail for example.test is
# delivered by virtual(8) to the mbox file DIR/mail/example.test/inbox
# (owned by postfix), so a test reads what arrived.  With CERT and KEY
# (PEM files; CERT may hold the chain) smtpd offers STARTTLS
# (smtpd_tls_security_level = may); without them it offers no STARTTLS.
# Each SETTING after "--" is either NAME=VALUE, put into main.cf last
# (postconf -e; e.g. the DANE client settings of a sending instance), or
# SERVICE/TYPE=ENTRY, a master.cf service (postconf -M; e.g. a second
# smtpd on another port with "-o smtpd_tls_security_level=none").  Waits until PORT
# listens.  stop sends SIGTERM to the master (its pid from
# DIR/queue/pid/master.pid), which ends its children, and waits for it.
#
# Needs root (postfix start refuses otherwise) and the Debian package
# postfix.
set -eu
prog=tests/tools/postfix.sh

die() {
	echo "$prog: $*" >&2
	exit 1
}

. "$(dirname "$0")/daemon.sh" # alive, stop_pid

cmd=${1:-}
dir=${2:-}
[ -n "$dir" ] || die "usage: $prog start DIR PORT HOSTNAME [CERT KEY] [-- SETTING...] | stop DIR"
PATH=$PATH:/usr/sbin

case $cmd in
stop)
	[ -f "$dir/etc/main.cf" ] || exit 0
	pidf=$dir/queue/pid/master.pid
	pid=
	[ -s "$pidf" ] && pid=$(tr -d ' ' <"$pidf")
	# SIGTERM: the master passes it to its children and ends ("postfix
	# stop" does the same after seconds of checks)
	[ -z "$pid" ] || stop_pid "$pid"
	exit 0
	;;
start) ;;
*) die "unknown command $cmd" ;;
esac

[ $# -ge 4 ] || die "usage: $prog start DIR PORT HOSTNAME [CERT KEY] [-- SETTING...]"
port=$3 host=$4
shift 4
cert='' key=''
if [ $# -ge 2 ] && [ "$1" != -- ]; then
	cert=$1 key=$2
	shift 2
fi
[ $# -eq 0 ] || { [ "$1" = -- ] && shift; } || die "expected -- before the settings"
command -v postfix >/dev/null 2>&1 || die "postfix not found (Debian: postfix)"
[ "$(id -u)" = 0 ] || die "postfix start needs root"
id postfix >/dev/null 2>&1 || die "no postfix user"

mkdir -p "$dir/etc" "$dir/data" "$dir/mail/example.test"
dir=$(cd "$dir" && pwd -P)
etc=$dir/etc
q=$dir/queue
# The queue as post-install would make it (postfix start would check and
# create it too, but its checks take seconds).
for d in active bounce corrupt defer deferred flush hold incoming private \
    saved trace maildrop public pid; do
	mkdir -p "$q/$d"
	case $d in
	pid) chmod 755 "$q/$d" ;;
	maildrop) chown postfix:postdrop "$q/$d"; chmod 730 "$q/$d" ;;
	public) chown postfix:postdrop "$q/$d"; chmod 710 "$q/$d" ;;
	*) chown postfix "$q/$d"; chmod 700 "$q/$d" ;;
	esac
done
chown postfix "$dir/data" "$dir/mail" "$dir/mail/example.test"
chmod 755 "$dir" "$etc" "$q"
uid=$(id -u postfix)
if [ -n "$cert" ]; then
	cp "$cert" "$etc/cert.pem"
	cp "$key" "$etc/key.pem"
	chmod 600 "$etc/key.pem"
fi

cat >"$etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $q
data_directory = $dir/data
maillog_file = $dir/maillog
maillog_file_prefixes = $dir
myhostname = $host
mydomain = example.test
myorigin = example.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
virtual_mailbox_domains = example.test
virtual_mailbox_base = $dir/mail
virtual_mailbox_maps = static:example.test/inbox
virtual_uid_maps = static:$uid
virtual_gid_maps = static:$(id -g postfix)
virtual_minimum_uid = 1
alias_maps =
alias_database =
biff = no
smtputf8_enable = no
message_size_limit = 1048576
smtpd_banner = \$myhostname ESMTP tlspool test
# the DNS and the rest of the world are not this instance's business
disable_dns_lookups = yes
smtp_dns_support_level = disabled
default_transport = error:no outbound mail from this instance
relay_transport = error:no outbound mail from this instance
smtpd_tls_loglevel = 1
smtp_tls_loglevel = 1
tls_random_source = dev:/dev/urandom
EOF
if [ -n "$cert" ]; then
	cat >>"$etc/main.cf" <<EOF
smtpd_tls_security_level = may
smtpd_tls_chain_files = $etc/key.pem, $etc/cert.pem
EOF
else
	echo "smtpd_tls_security_level = none" >>"$etc/main.cf"
fi

# chroot off everywhere: the queue is not set up as a jail
cat >"$etc/master.cf" <<EOF
127.0.0.1:$port inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
for kv in "$@"; do
	case ${kv%%=*} in
	*/inet | */unix | */fifo | */pass | */unix-dgram)
		postconf -c "$etc" -M "$kv" || die "postconf -M: $kv" ;;
	*) postconf -c "$etc" -e "$kv" || die "postconf -e: $kv" ;;
	esac
done

# Postfix waits until main.cf is two seconds old (a file being written is
# not read); these were written by this script, in full.
touch -d '-5 seconds' "$etc/main.cf" "$etc/master.cf"
# master -w: what "postfix start" runs after its checks; it returns once
# the master daemon is initialized (or failed)
MAIL_CONFIG=$etc /usr/lib/postfix/sbin/master -w >"$dir/start.log" 2>&1 ||
    { cat "$dir/start.log" >&2; [ -f "$dir/maillog" ] && tail -20 "$dir/maillog" >&2; die "postfix did not start"; }
i=0
until ss -Htln "sport = :$port" | grep -q .; do
	i=$((i + 1))
	[ $i -lt 100 ] || { tail -20 "$dir/maillog" >&2 2>/dev/null; die "smtpd does not listen on port $port"; }
	sleep 0.05
done
