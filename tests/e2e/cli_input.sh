#!/bin/bash
# tlspool-connect: what it refuses on the command line, before any
# connection or lookup: ports, numbers, --config, a client without a name
# to authenticate, options of another mode.  Each refusal exits 1 with one
# message that names the option and the value.
. "$(dirname "$0")/common"

usage1() { # NAME PATTERN -- CMD...: exit 1, stderr matches PATTERN
	local name=$1 pat=$2
	shift 2
	expect "$name" 1 "$@" || return
	grep_in err "$name" "$pat"
	no_grep_in out "$name" .
}

re() { printf '%s' "$1" | sed 's/[][\.*^$+?(){}|]/\\&/g'; }

# --- ports: decimal 1..65535, never wrapped (service names: ipv6.sh) ---
# (after "--", so that "-1" is taken as the port)
for p in 0 65536 99999 4294967297 18446744073709551617 -1 12ab ' 443' '443 ' \
	+443 0x50 ''; do
	for mode in server client lookup; do
		case $mode in
		server) set -- --server --bind 127.0.0.1 -- "$p" ;;
		client) set -- --client --sni www.example.test -- 127.0.0.1 "$p" ;;
		lookup) set -- --config "$CONF" --lookup -- www.example.test "$p" ;;
		esac
		usage1 "$mode port '$p'" "^tlspool-connect: --$mode PORT: \"$(re "$p")\" is not a number from 1 to 65535\$" \
			-- timeout 5 "$CLI" "$@"
	done
done
# without "--", a negative number reads as an option: refused as well
usage1 "server port -1 as an option" '^tlspool-connect: -1: not an option \(numbers are never negative\)$' \
	-- timeout 5 "$CLI" --server -1
usage1 "client port -1 as an option" '^tlspool-connect: -1: not an option' \
	-- timeout 5 "$CLI" --client --sni www.example.test 127.0.0.1 -1
# 99999 used to listen on 99999 mod 65536 = 34463
if ss -Htln 'sport = :34463' | grep -q .; then
	echo "skip: something else listens on 34463"
else
	timeout 2 "$CLI" --server --bind 127.0.0.1 99999 >/dev/null 2>&1 &
	sleep 0.3
	if ss -Htln 'sport = :34463' | grep -q .; then
		nfail=$((nfail + 1)); echo "not ok: --server 99999 listens on 34463"
	else
		npass=$((npass + 1))
	fi
	wait
fi

# --- other numbers ---
usage1 "fd -3" '^tlspool-connect: --fd: "-3" is not a number from 0 to 1048576$' \
	-- "$CLI" --client --fd -3 --sni www.example.test
usage1 "fd x" '^tlspool-connect: --fd: "x" is not a number from 0 to 1048576$' \
	-- "$CLI" --client --fd x --sni www.example.test
usage1 "linger 1e3" '^tlspool-connect: --linger: "1e3" is not a number from 0 to 3600000$' \
	-- "$CLI" --client --linger 1e3 --sni www.example.test 127.0.0.1 443
usage1 "max-children 0" '^tlspool-connect: --max-children: "0" is not a number from 1 to 65536$' \
	-- timeout 5 "$CLI" --server --fork --max-children 0 443
usage1 "max-children without --fork" '^tlspool-connect: --max-children needs --fork$' \
	-- timeout 5 "$CLI" --server --max-children 4 443
usage1 "missing argument" '^tlspool-connect: --sni needs an argument$' -- "$CLI" --client --sni
usage1 "unknown option" '^tlspool-connect: --no-such-option: unknown option$' \
	-- "$CLI" --client --no-such-option www.example.test 443

# --- options of another mode ---
usage1 "sni-allow on a client" '^tlspool-connect: --sni-allow is not an option of --client$' \
	-- "$CLI" --client --sni-allow 'x*' www.example.test 443
usage1 "any-peer on a server" '^tlspool-connect: --any-peer is not an option of --server$' \
	-- timeout 5 "$CLI" --server --any-peer 443
usage1 "sni on a server" '^tlspool-connect: --sni is not an option of --server$' \
	-- timeout 5 "$CLI" --server --sni www.example.test 443
usage1 "fork on a lookup" '^tlspool-connect: --fork is not an option of --lookup$' \
	-- timeout 5 "$CLI" --lookup --fork www.example.test
usage1 "allow-no-sni alone" '^tlspool-connect: --allow-no-sni needs --sni-allow$' \
	-- timeout 5 "$CLI" --server --allow-no-sni 443

# --- --config: a file this user can read, named in the message ---
usage1 "config directory" "^tlspool-connect: $T: owner [^ ]+ \(uid [0-9]+\), mode [0-7]+: is a directory, not a regular file\$" \
	-- "$CLI" --config "$T" --lookup www.example.test
usage1 "config directory, client" "^tlspool-connect: $T: owner [^ ]+ \(uid [0-9]+\), mode [0-7]+: is a directory, not a regular file\$" \
	-- "$CLI" --config "$T" --client --sni www.example.test 127.0.0.1 443
usage1 "config directory, server" "^tlspool-connect: $T: owner [^ ]+ \(uid [0-9]+\), mode [0-7]+: is a directory, not a regular file\$" \
	-- timeout 5 "$CLI" --config "$T" --server --bind 127.0.0.1 443
usage1 "config missing" "^tlspool-connect: $T/none\\.conf: No such file or directory\$" \
	-- "$CLI" --config "$T/none.conf" --cache-list
if [ "$(id -u)" != 0 ]; then
	cp "$CONF" "$T/unreadable.conf"
	chmod 000 "$T/unreadable.conf"
	usage1 "config unreadable" "^tlspool-connect: $T/unreadable\\.conf: Permission denied\$" \
		-- "$CLI" --config "$T/unreadable.conf" --lookup www.example.test
fi

# --- a client must know whom to authenticate ---
# An address, or --fd, names nobody: no --sni and no --any-peer is refused
# before any connection is made (port 9 has no listener either way).
for host in 127.0.0.1 ::1 127.1 '::ffff:127.0.0.1'; do
	usage1 "address $host without --sni" "^tlspool-connect: $host gives no name to authenticate the server by: give --sni NAME, or --any-peer" \
		-- "$CLI" --client "$host" 9
done
usage1 "--fd without --sni" '^tlspool-connect: --fd gives no name to authenticate the server by: give --sni NAME, or --any-peer' \
	-- bash -c "exec 5</dev/null; '$CLI' --client --fd 5"
# with --any-peer it goes on: here to the connection, which fails (exit 2)
expect "address with --any-peer" 2 -- "$CLI" --client --any-peer 127.0.0.1 9
grep_in err "address with --any-peer" '^tlspool-connect: connect 127\.0\.0\.1 9: Connection refused$'

finish
