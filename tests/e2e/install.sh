#!/bin/bash
# make install into a DESTDIR, then build and run a program against the
# installed library with nothing but pkg-config's flags.
. "$(dirname "$0")/common"

D="$T/root"
expect install 0 -- make -s install BUILD="$BUILD" DESTDIR="$D" PREFIX=/usr
for f in usr/include/tlspool/validate.h usr/lib/libtlspool-validate.a \
	usr/lib/libtlspool-validate.so.0 usr/lib/pkgconfig/tlspool-validate.pc \
	usr/bin/tlspool-connect usr/share/man/man1/tlspool-connect.1 \
	usr/share/man/man5/tlspool.conf.5 usr/share/man/man3/tlspool_validate.3 \
	usr/include/tlspool/starttls.h usr/include/tlspool/dane.h \
	usr/lib/libtlspool.so.0 usr/lib/pkgconfig/tlspool.pc \
	usr/share/man/man3/starttls_client.3 usr/share/man/man3/starttls_server.3 \
	usr/share/man/man3/tlspool_dane_match.3 usr/include/tlspool/authz.h \
	usr/include/tlspool/cache.h usr/lib/tlspool/tlspool-authz-rules.so \
	usr/share/man/man3/tlspool_authz.3 usr/include/tlspool/openpgp.h \
	usr/include/tlspool/types.h usr/share/man/man3/tlspool_openpgp.3 \
	usr/share/man/man3/tlspool_dns_lookup.3 usr/share/man/man3/tlspool_cache_list.3 \
	usr/share/man/man3/tlspool_cache_flush.3 usr/share/man/man3/tlspool_config_default_path.3 \
	usr/share/man/man3/starttls_ctx_new_with.3 \
	usr/share/bash-completion/completions/tlspool-connect \
	usr/share/tlspool/tlspool-connect.schema.json; do
	if [ -e "$D/$f" ]; then npass=$((npass + 1)); else
		nfail=$((nfail + 1)); echo "not ok: install: $f missing"; fi
done
# Each installed header compiles on its own, as C11 and as C++, with
# warnings as errors; and the headers include each other without a cycle
# (tsort fails on one: an edge "includer included" per #include).
for h in "$D"/usr/include/tlspool/*.h; do
	b=${h##*/}
	printf '#include <tlspool/%s>\nint header_test;\n' "$b" >"$T/h.c"
	expect "header $b" 0 -- cc -std=c11 -Wall -Wextra -Werror -pedantic \
		-fsyntax-only -I"$D/usr/include" "$T/h.c"
	expect "header $b (C++)" 0 -- c++ -x c++ -Wall -Wextra -Werror \
		-pedantic -fsyntax-only -I"$D/usr/include" "$T/h.c"
done
include_edges() {
	for h in "$1"/*.h; do
		b=${h##*/}
		echo "$b $b"
		sed -n "s|^#include <tlspool/\(.*\)>.*|$b \1|p" "$h"
	done
}
include_edges "$D/usr/include/tlspool" >"$T/edges"
expect header-cycles 0 -- tsort "$T/edges"
# The soname is versioned and the library exports only tlspool_* symbols.
expect soname 0 -- sh -c "readelf -d '$D/usr/lib/libtlspool-validate.so.0' | grep -q 'SONAME.*libtlspool-validate.so.0'"
expect exports 1 -- sh -c "nm -D --defined-only '$D/usr/lib/libtlspool-validate.so.0' | awk '{print \$3}' | grep -v '^tlspool_' | grep -v '^TLSPOOL_'"
# libtlspool exports the calls of starttls.h, prelude.h and cache.h and nothing else
expect exports-tlspool 0 -- sh -c "test \"\$(nm -D --defined-only '$D/usr/lib/libtlspool.so.0' | awk '\$3 !~ /^TLSPOOL/ {sub(/@.*/, \"\", \$3); print \$3}' | sort | tr '\n' ' ')\" = 'starttls_class_name starttls_client starttls_ctx_client starttls_ctx_client_dane starttls_ctx_free starttls_ctx_identity starttls_ctx_new starttls_ctx_new_with starttls_ctx_resolver starttls_ctx_server starttls_end starttls_errclass starttls_errstr starttls_last_trace starttls_ldap_lookup starttls_ldap_step_free starttls_ldap_verdict_name starttls_prelude_client starttls_prelude_known starttls_prelude_protocols starttls_prelude_server starttls_server tlspool_cache_backend tlspool_cache_backend_ctx tlspool_cache_flush tlspool_cache_flush_ctx tlspool_cache_list tlspool_cache_list_ctx '"

# The bash completion offers every option of --help, and files after
# --config and --cert.
"$D/usr/bin/tlspool-connect" --help | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u >"$T/help-opts"
bash -c ". '$D/usr/share/bash-completion/completions/tlspool-connect'
	COMP_WORDS=('$D/usr/bin/tlspool-connect' --); COMP_CWORD=1
	_tlspool_connect; printf '%s\n' \"\${COMPREPLY[@]}\"" | grep -- '^--' | sort -u >"$T/comp-opts"
expect completion-options 0 -- diff "$T/help-opts" "$T/comp-opts"
[ "$(wc -l <"$T/comp-opts")" -gt 20 ] && npass=$((npass + 1)) ||
	{ nfail=$((nfail + 1)); echo "not ok: completion offers $(wc -l <"$T/comp-opts") options"; }
touch "$T/some.pem"
expect completion-file 0 -- bash -c ". '$D/usr/share/bash-completion/completions/tlspool-connect'
	COMP_WORDS=(tlspool-connect --cert '$T/some.p'); COMP_CWORD=2
	_tlspool_connect; [ \"\${COMPREPLY[*]}\" = '$T/some.pem' ]"
expect completion-key 0 -- bash -c ". '$D/usr/share/bash-completion/completions/tlspool-connect'
	COMP_WORDS=('$D/usr/bin/tlspool-connect' --ke); COMP_CWORD=1
	_tlspool_connect; [ \"\${COMPREPLY[*]}\" = '--key' ]"
# the values of --starttls are the protocols the program knows (its
# error message lists them), those of --srv some services, of --mtype
# the matching types
comp() { # WORDS...: the completions of the last word
	bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
		_tlspool_connect; printf "%s\n" "${COMPREPLY[@]}"' comp \
		"$D/usr/share/bash-completion/completions/tlspool-connect" "$@"
}
known=$("$D/usr/bin/tlspool-connect" --client --starttls nosuch 127.0.0.1 1 2>&1 |
	sed -n 's/.*not a known protocol (\(.*\)).*/\1/p' | tr ' ' '\n' | sort)
[ "$(printf '%s\n' "$known" | wc -l)" -ge 5 ] && npass=$((npass + 1)) ||
	{ nfail=$((nfail + 1)); echo "not ok: completion: no protocols in the --starttls error"; }
expect completion-starttls 0 -- diff <(printf '%s\n' "$known") <(comp "$D/usr/bin/tlspool-connect" --starttls '' | sort)
expect completion-starttls-x 0 -- diff <(printf 'xmpp\nxmpp-server\n') <(comp "$D/usr/bin/tlspool-connect" --client --starttls xm | sort)
expect completion-srv 0 -- diff <(printf 'xmpp-client\nxmpp-server\n') <(comp "$D/usr/bin/tlspool-connect" --srv xmpp- | sort)
expect completion-mtype 0 -- diff <(printf '0\n1\n2\n') <(comp "$D/usr/bin/tlspool-connect" --mtype '')
comp "$D/usr/bin/tlspool-connect" --m >"$T/comp-m"
grep_in comp-m completion-mx '^--mx$'
grep_in comp-m completion-mx '^--max-children$'

cat >"$T/prog.c" <<'C'
#include <stdio.h>
#include <tlspool/validate.h>

int main(void)
{
	char buf[256];

	if (tlspool_user_owner(buf, sizeof(buf), TLSPOOL_RR_OPENPGPKEY,
	                       "hugh@example.com") < 0)
		return 1;
	puts(buf);
	return 0;
}
C
export PKG_CONFIG_PATH="$D/usr/lib/pkgconfig"
pc="pkg-config --define-variable=libdir=$D/usr/lib --define-variable=includedir=$D/usr/include"
san=""
case "$BUILD" in *asan*) san="-fsanitize=address,undefined" ;; esac
# shellcheck disable=SC2046
expect compile 0 -- cc -std=c11 -Wall -Werror $san -o "$T/prog" "$T/prog.c" \
	$($pc --cflags --libs tlspool-validate)
expect run 0 -- env LD_LIBRARY_PATH="$D/usr/lib" "$T/prog"
grep_in out run '^c93f1e400f26708f98cb19d936620da35eec8f72e57f9eec01c1afd6\._openpgpkey\.example\.com\.$'
expect ldd 0 -- sh -c "LD_LIBRARY_PATH='$D/usr/lib' ldd '$T/prog' | grep -q '$D/usr/lib/libtlspool-validate.so.0'"
# a program of the application API, linked by pkg-config tlspool
cat >"$T/app.c" <<'C'
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <tlspool/starttls.h>

int main(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	/* an unknown flag: EINVAL, and fd consumed */
	if (starttls_client(fd, IPPROTO_TCP, NULL, 0x4000, NULL, NULL, 0) != -1 ||
	    errno != EINVAL)
		return 1;
	puts(starttls_errstr());
	return 0;
}
C
# shellcheck disable=SC2046
expect compile-app 0 -- cc -std=c11 -Wall -Werror $san -o "$T/app" "$T/app.c" \
	-Wl,-rpath-link,"$D/usr/lib" \
	$($pc --cflags --libs tlspool)
expect run-app 0 -- env LD_LIBRARY_PATH="$D/usr/lib" "$T/app"
grep_in out run-app '^flags 0x4000: unknown'
finish
