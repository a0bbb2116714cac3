#!/bin/bash
# Every man page is clean under mandoc -Tlint (warnings count), and each
# command-line option that tlspool-connect --help names is documented.
. "$(dirname "$0")/common"

for m in man/*.[1-9]; do
	expect "lint $m" 0 -- mandoc -Tlint -W warning "$m"
	[ -s "$T/out" ] && { nfail=$((nfail + 1)); cat "$T/out"; }
done
"$CLI" --help >"$T/help"
for opt in $(grep -oE -- '--[a-z][a-z-]+' "$T/help" | sort -u); do
	case "$opt" in --client | --server | --bind) continue ;; esac
	if mandoc -Tascii man/tlspool-connect.1 | sed 's/.\x08//g' | grep -q -- "$opt"; then
		npass=$((npass + 1))
	else
		nfail=$((nfail + 1))
		echo "not ok: $opt is not in tlspool-connect(1)"
	fi
done
finish
