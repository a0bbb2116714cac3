#!/bin/bash
# The man pages render as written, beyond mandoc -Tlint (manlint.sh):
# - groff (what man(1) uses) warns about nothing but line breaking: an
#   escape such as \r or \n in an example is a number register to groff
#   ("printf 'GET / HTTP/1.0\r\n'" rendered as "HTTP/1.00r0");
# - in .Bd -literal and .nf blocks every backslash is an escape that
#   prints something (\e, \&, \-, \(xx, \*x, \[..]), never \r, \n, \t, \f;
# - the rendered text of mandoc -Tascii and of man -l keeps no backslash
#   sequences and no "0r0";
# - the examples that print a backslash render it (tlspool-connect(1));
# - after make install, every exported function of both libraries has a
#   page in man3 (its own, or a link to the page that names it in NAME),
#   and every installed page and link renders with man -l.
. "$(dirname "$0")/common"

strip() { sed 's/.\x08//g'; }

# lit_escapes PAGE: each backslash in a .Bd -literal or .nf block that is
# not an escape printing something
lit_escapes() {
	awk -v f="$1" '
		/^\.(Bd -literal|Bd -unfilled|nf)/ { lit = 1; next }
		/^\.(Ed|fi)/ { lit = 0; next }
		lit {
			s = $0
			while ((i = index(s, "\\")) > 0) {
				c = substr(s, i + 1, 1)
				if (c !~ /^[e&(*\[|^0"-]$/) {
					printf "%s:%d: \\%s in a literal block: %s\n", f, NR, c, $0
					bad = 1
				}
				s = substr(s, i + 2)
			}
		}
		END { exit bad }' "$1"
}
# groff's warnings but those of line breaking (a long synopsis)
groff_warnings() {
	groff -mandoc -ww -Wbreak -z -Tutf8 "$1" 2>&1 | grep -v "can't break line"
}

for m in man/*.[1-9]; do
	groff_warnings "$m" >"$T/gw"
	if [ -s "$T/gw" ]; then
		nfail=$((nfail + 1)); echo "not ok: groff $m:"; sed 's/^/  /' "$T/gw"
	else
		npass=$((npass + 1))
	fi
	# escapes in literal blocks
	lit_escapes "$m" >"$T/lit"
	if [ -s "$T/lit" ]; then
		nfail=$((nfail + 1)); echo "not ok: literal escapes:"; sed 's/^/  /' "$T/lit"
	else
		npass=$((npass + 1))
	fi
	# the rendered text: mandoc, and man -l where man(1) is installed
	for r in mandoc man; do
		if [ "$r" = man ]; then
			command -v man >/dev/null || continue
			MANWIDTH=80 MAN_KEEP_FORMATTING=0 man -l "$m" 2>"$T/rerr" | strip >"$T/txt"
		else
			mandoc -Tascii "$m" 2>"$T/rerr" | strip >"$T/txt"
		fi
		grep -v "can't break line" "$T/rerr" >"$T/rerr2"
		if grep -nE '\\f[BIRP(]|\\[(*][a-zA-Z]|0r0' "$T/txt" >"$T/bad" || [ -s "$T/rerr2" ]; then
			nfail=$((nfail + 1)); echo "not ok: $r $m renders escapes:"
			sed 's/^/  /' "$T/bad" "$T/rerr2" | head
		else
			npass=$((npass + 1))
		fi
		if [ "$m" = man/tlspool-connect.1 ]; then
			if grep -qF "printf 'GET / HTTP/1.0\\r\\n\\r\\n' |" "$T/txt"; then
				npass=$((npass + 1))
			else
				nfail=$((nfail + 1)); echo "not ok: $r: the printf example of tlspool-connect(1):"
				grep -n 'printf' "$T/txt" | sed 's/^/  /'
			fi
		fi
	done
done

# The mis-rendering the checks above are for: a page with \r\n in an
# example fails them (the checks can fail).
printf '.Dd November 29, 2026\n.Dt X 1\n.Os\n.Sh NAME\n.Nm x\n.Nd y\n.Sh EXAMPLES\n.Bd -literal\nprintf '"'"'a\\r\\n'"'"'\n.Ed\n' >"$T/bad.1"
expect bad-page-groff 0 -- sh -c "groff -mandoc -ww -z -Tutf8 '$T/bad.1' 2>&1 | grep -q 'not defined'"
expect bad-page-literal 1 -- lit_escapes "$T/bad.1"
grep_in out bad-page-literal '\\r in a literal block'

# --- after make install: a page for every exported function ---
D="$T/root"
expect install 0 -- make -s install BUILD="$BUILD" DESTDIR="$D" PREFIX=/usr
M="$D/usr/share/man"
nm -D --defined-only "$BUILD/libtlspool-validate.so.0" "$BUILD/libtlspool.so.0" |
	awk 'NF == 3 && $2 ~ /^[TW]$/ {sub(/@.*/, "", $3); print $3}' | sort -u >"$T/syms"
if [ "$(wc -l <"$T/syms")" -lt 50 ]; then
	nfail=$((nfail + 1)); echo "not ok: only $(wc -l <"$T/syms") exported functions found"
fi
while read -r f; do
	if [ -f "$M/man3/$f.3" ] && MANWIDTH=80 man -l "$M/man3/$f.3" 2>/dev/null | strip |
		grep -qF -- "$f"; then
		npass=$((npass + 1))
	else
		nfail=$((nfail + 1)); echo "not ok: no installed page for $f (man3/$f.3)"
	fi
done <"$T/syms"
# every installed page or link renders and names itself
for p in "$M"/man*/*; do
	n=${p##*/}
	n=${n%.*}
	if MANWIDTH=80 man -l "$p" 2>/dev/null | strip | grep -qiF -- "$n"; then
		npass=$((npass + 1))
	else
		nfail=$((nfail + 1)); echo "not ok: $p does not render or does not name $n"
	fi
done
finish
