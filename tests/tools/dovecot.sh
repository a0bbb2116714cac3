#!/bin/sh
# tests/tools/dovecot.sh -- a private Dovecot for the IMAP, POP3 and
# ManageSieve tests.
#
#   tests/tools/dovecot.sh start DIR IMAP POP3 SIEVE LMTP HOSTNAME [CERT KEY]
#   tests/tools/dovecot.sh stop DIR
#
# start writes DIR/dovecot.conf (everything inside DIR: base_dir DIR/run,
# state in DIR/state, the log in DIR/dovecot.log, mail in DIR/home/USER)
# and starts "dovecot -c DIR/dovecot.conf" as root (its processes drop to
# dovecot, dovenull and the owner of DIR/home).  IMAP listens on
# 127.0.0.1:IMAP, POP3 on 127.0.0.1:POP3, ManageSieve on 127.0.0.1:SIEVE
# and LMTP (delivery into the INBOX) on 127.0.0.1:LMTP; a port of 0 leaves
# that protocol out.  One user, john
# with password "secret" (a passwd-file), whose INBOX holds one message
# with the subject "hello from dovecot".  With CERT and KEY (PEM; CERT may
# hold the chain) every protocol offers STARTTLS (IMAP, ManageSieve,
# LMTP) or STLS (POP3); without them, ssl = no, so none is offered.
# Plaintext logins are allowed before TLS, so a test can tell the
# capability lists apart.  Waits until every port listens.  stop sends
# SIGTERM to the master (DIR/run/master.pid) and waits for it.
#
# Needs root and the Debian packages dovecot-imapd, dovecot-pop3d and
# dovecot-managesieved.  Every directory above DIR must be searchable by
# the user nobody (the mail processes run as nobody): chmod 755 the
# test's scratch directory.
set -eu
prog=tests/tools/dovecot.sh

die() {
	echo "$prog: $*" >&2
	exit 1
}

. "$(dirname "$0")/daemon.sh" # alive, stop_pid

cmd=${1:-}
dir=${2:-}
[ -n "$dir" ] || die "usage: $prog start DIR IMAP POP3 SIEVE LMTP HOSTNAME [CERT KEY] | stop DIR"
PATH=$PATH:/usr/sbin

case $cmd in
stop)
	pidf=$dir/run/master.pid
	[ -s "$pidf" ] || exit 0
	pid=$(cat "$pidf")
	stop_pid "$pid"
	exit 0
	;;
start) ;;
*) die "unknown command $cmd" ;;
esac

[ $# -ge 7 ] || die "usage: $prog start DIR IMAP POP3 SIEVE LMTP HOSTNAME [CERT KEY]"
imap=$3 pop3=$4 sieve=$5 lmtp=$6 host=$7 cert=${8:-} key=${9:-}
command -v dovecot >/dev/null 2>&1 || die "dovecot not found (Debian: dovecot-core)"
[ "$(id -u)" = 0 ] || die "dovecot needs root here"
protos=
[ "$imap" = 0 ] || { [ -x /usr/lib/dovecot/imap ] || die "no imap (Debian: dovecot-imapd)"; protos="$protos imap"; }
[ "$pop3" = 0 ] || { [ -x /usr/lib/dovecot/pop3 ] || die "no pop3 (Debian: dovecot-pop3d)"; protos="$protos pop3"; }
[ "$sieve" = 0 ] || { [ -x /usr/lib/dovecot/managesieve ] || die "no managesieve (Debian: dovecot-managesieved)"; protos="$protos sieve"; }
[ "$lmtp" = 0 ] || { [ -x /usr/lib/dovecot/lmtp ] || die "no lmtp (Debian: dovecot-lmtpd)"; protos="$protos lmtp"; }

mkdir -p "$dir/run" "$dir/state" "$dir/home/john/mail"
dir=$(cd "$dir" && pwd -P)
chmod 755 "$dir"
nob=$(id -u nobody) nog=$(id -g nobody)
# john's INBOX: one mbox message
cat >"$dir/home/john/mail/inbox" <<'EOF'
From alice@example.test Sun Nov 29 12:00:00 2026
From: alice@example.test
To: john@example.test
Subject: hello from dovecot

This message was put here by tests/tools/dovecot.sh.

EOF
chown -R "$nob:$nog" "$dir/home"
echo "john:{PLAIN}secret:::::" >"$dir/passwd"
if [ -n "$cert" ]; then
	cp "$cert" "$dir/cert.pem"
	cp "$key" "$dir/key.pem"
	chmod 600 "$dir/key.pem"
fi

listener() { # SERVICE NAME PORT
	[ "$3" = 0 ] && return 0
	cat <<EOF
service $1 {
  inet_listener $2 {
    address = 127.0.0.1
    port = $3
  }
EOF
	# the login service has no second listener (imaps, pop3s): STARTTLS only
	case $1 in
	imap-login) printf '  inet_listener imaps {\n    port = 0\n  }\n' ;;
	pop3-login) printf '  inet_listener pop3s {\n    port = 0\n  }\n' ;;
	esac
	echo "}"
}

{
	cat <<EOF
protocols =$protos
base_dir = $dir/run
state_dir = $dir/state
log_path = $dir/dovecot.log
info_log_path = $dir/dovecot.log
hostname = $host
login_greeting = $host Dovecot ready
listen = 127.0.0.1
shutdown_clients = yes
disable_plaintext_auth = no
auth_mechanisms = plain login
# john@example.test (an LMTP recipient) is john
auth_username_format = %Ln
mail_location = mbox:~/mail:INBOX=~/mail/inbox
first_valid_uid = $nob
last_valid_uid = $nob
first_valid_gid = $nog
mail_privileged_group =
passdb {
  driver = passwd-file
  args = scheme=PLAIN $dir/passwd
}
userdb {
  driver = static
  args = uid=$nob gid=$nog home=$dir/home/%n
}
service anvil {
  chroot =
}
service imap-login {
  chroot =
}
service pop3-login {
  chroot =
}
service managesieve-login {
  chroot =
}
protocol lmtp {
  lmtp_save_to_detail_mailbox = no
}
protocol sieve {
  managesieve_implementation_string = Dovecot test
}
plugin {
  sieve = file:~/sieve;active=~/.dovecot.sieve
}
EOF
	if [ -n "$cert" ]; then
		printf 'ssl = yes\nssl_cert = <%s\nssl_key = <%s\n' "$dir/cert.pem" "$dir/key.pem"
	else
		echo "ssl = no"
	fi
	listener imap-login imap "$imap"
	listener pop3-login pop3 "$pop3"
	listener managesieve-login sieve "$sieve"
	listener lmtp lmtp "$lmtp"
} >"$dir/dovecot.conf"

dovecot -c "$dir/dovecot.conf" >"$dir/start.log" 2>&1 ||
    { cat "$dir/start.log" >&2; tail -20 "$dir/dovecot.log" >&2 2>/dev/null; die "dovecot did not start"; }
for port in "$imap" "$pop3" "$sieve" "$lmtp"; do
	[ "$port" = 0 ] && continue
	i=0
	until ss -Htln "sport = :$port" | grep -q .; do
		i=$((i + 1))
		[ $i -lt 100 ] || { tail -20 "$dir/dovecot.log" >&2 2>/dev/null; die "dovecot does not listen on port $port"; }
		sleep 0.05
	done
done
