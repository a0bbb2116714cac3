# tlspool -- plain make, no generator.  `make help` lists the targets.

PREFIX   ?= /usr/local
BINDIR   ?= $(PREFIX)/bin
SBINDIR  ?= $(PREFIX)/sbin
LIBDIR   ?= $(PREFIX)/lib
INCDIR   ?= $(PREFIX)/include
MANDIR   ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
DATADIR  ?= $(PREFIX)/share
SYSCONFDIR ?= /etc
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
DESTDIR  ?=

VERSION  := 0.1.0
SOMAJOR  := 0

CC       ?= cc
BUILD    ?= build
SAN      ?=

# Each library links what it uses: libtlspool-validate GnuTLS, libgcrypt
# (openpgp_verify.c: the OpenPGP algorithms GnuTLS lacks), libcrypto
# (rrsig.c: DNSSEC signatures with keys made once), getdns
# (dns.c), inih (conffile.c); libtlspool GnuTLS, LMDB (cache.c), hiredis
# (cache_redis.c), libldap (ldapcheck.c; Debian's libldap-dev may ship no
# pkg-config file, so it is named directly) and dlopen (authz.c) on top
# of it; tlspool-connect json-c on top of both.
VAL_PKGS := gnutls getdns inih libgcrypt libcrypto
LIB_PKGS := gnutls lmdb hiredis
CLI_PKGS := json-c
DEPCFLAGS = $(shell pkg-config --cflags $(VAL_PKGS) $(LIB_PKGS) $(CLI_PKGS))
VAL_LIBS  = $(shell pkg-config --libs $(VAL_PKGS)) -lpthread
LIB_LIBS  = $(shell pkg-config --libs $(LIB_PKGS)) -lldap -llber -lpthread -ldl
CLI_LIBS  = $(shell pkg-config --libs $(CLI_PKGS))
CHECKLIBS = $(shell pkg-config --libs check)

WARN     := -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
            -Wmissing-prototypes -Wformat=2
CFLAGS   ?= -O2 -g
# Shared libraries must resolve every symbol from what they link (-z defs),
# except under the sanitizers, whose runtime only programs carry.
SOFLAGS  := -Wl,-z,defs
ifneq ($(SAN),)
CFLAGS   += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer \
            -fno-sanitize-recover=undefined
LDFLAGS  += -fsanitize=address,undefined
SOFLAGS  :=
endif
ALLCFLAGS = $(WARN) $(CFLAGS) -fPIC -D_GNU_SOURCE -Iinclude -Isrc/validate -Isrc/lib \
            -DTLSPOOL_SYSCONFDIR='"$(SYSCONFDIR)"' -DTLSPOOL_VERSION='"$(VERSION)"' \
            $(DEPCFLAGS)

VAL_SRC  := $(wildcard src/validate/*.c)
LIB_SRC  := $(wildcard src/lib/*.c)
CLI_SRC  := $(wildcard src/cli/*.c)
DAEMON_SRC := $(wildcard src/daemon/*.c)
UNIT_SRC := $(wildcard tests/unit/check_*.c)
TOOL_SRC := $(wildcard tests/tools/*.c)
# Test tools that link the libraries (the others stand alone).
LIBTOOLS := tlsagen dane-probe api-reader

VAL_OBJ  := $(VAL_SRC:%.c=$(BUILD)/%.o)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
DAEMON_OBJ := $(DAEMON_SRC:%.c=$(BUILD)/%.o)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_BIN := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tests/%)

VAL_A    := $(BUILD)/libtlspool-validate.a
VAL_SO   := $(BUILD)/libtlspool-validate.so.$(VERSION)
LIB_A    := $(BUILD)/libtlspool.a
LIB_SO   := $(BUILD)/libtlspool.so.$(VERSION)
CLI      := $(BUILD)/tlspool-connect
DAEMON   := $(BUILD)/tlspoold
AUTHZ_SO := $(BUILD)/tlspool-authz-rules.so
BENCH_BIN := $(BUILD)/bench/cache_bench
POOL_LOAD := $(BUILD)/bench/pool_load
COLDVAL_BENCH := $(BUILD)/bench/coldval_bench
# The C harnesses of make bench measured against bare GnuTLS (bench/*.c).
HARNESS  := $(BUILD)/bench/handshake $(BUILD)/bench/idle
MANPAGES := $(wildcard man/*.[1-9])

PHONY_BENCH := bench
.PHONY: all deps check bench format-check check-run check-asan check-valgrind demo demo-run \
        install install-daemon clean format lint-man help tests tools fuzz \
        fuzz-run analyze

all: $(VAL_A) $(VAL_SO) $(LIB_A) $(LIB_SO) $(CLI) $(DAEMON) $(AUTHZ_SO)

help:
	@echo "make [all]        build the libraries and tlspool-connect into $(BUILD)/"
	@echo "make check        install missing Debian packages, build, run every test"
	@echo "make check-asan   the same under AddressSanitizer and UBSan"
	@echo "make check-valgrind  unit tests under valgrind"
	@echo "make analyze      clang static analyzer (scan-build) over a fresh build of"
	@echo "                  the libraries, tlspool-connect and the tools; fails on any finding"
	@echo "make fuzz         build the libFuzzer targets with clang, run each $(FUZZ_TIME) s"
	@echo "make bench        handshakes, idle connections and throughput against bare"
	@echo "                  GnuTLS, socat and stunnel4 (a table of ratios, PNG plots"
	@echo "                  in $(BUILD)/bench/); validation from a warm cache vs DNS"
	@echo "                  cold validation with kept zone keys vs the floor (ratio)"
	@echo "make demo         install, build, and show DANE lookups on the local signed zones"
	@echo "make install      PREFIX=$(PREFIX) DESTDIR=..."
	@echo "make install-daemon  also tlspoold's systemd units, its tmpfiles.d"
	@echo "                  entry and (without DESTDIR) the tlspool system user"
	@echo "make format       clang-format the sources"

deps:
	@scripts/deps

$(BUILD)/%.o: %.c $(wildcard include/tlspool/*.h src/validate/*.h src/lib/*.h src/cli/*.h src/daemon/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) -c -o $@ $<

$(VAL_A): $(VAL_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(VAL_SO): $(VAL_OBJ) src/validate/libtlspool-validate.map
	$(CC) -shared -Wl,-soname,libtlspool-validate.so.$(SOMAJOR) \
	  -Wl,--version-script=src/validate/libtlspool-validate.map \
	  $(SOFLAGS) $(LDFLAGS) -o $@ $(VAL_OBJ) $(VAL_LIBS)
	ln -sf libtlspool-validate.so.$(VERSION) $(BUILD)/libtlspool-validate.so.$(SOMAJOR)
	ln -sf libtlspool-validate.so.$(SOMAJOR) $(BUILD)/libtlspool-validate.so

$(LIB_A): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(LIB_SO): $(LIB_OBJ) $(VAL_SO) src/lib/libtlspool.map
	$(CC) -shared -Wl,-soname,libtlspool.so.$(SOMAJOR) \
	  -Wl,--version-script=src/lib/libtlspool.map \
	  $(SOFLAGS) $(LDFLAGS) -o $@ $(LIB_OBJ) -L$(BUILD) -ltlspool-validate \
	  $(LIB_LIBS)
	ln -sf libtlspool.so.$(VERSION) $(BUILD)/libtlspool.so.$(SOMAJOR)
	ln -sf libtlspool.so.$(SOMAJOR) $(BUILD)/libtlspool.so

# Programs link the static libraries: no LD_LIBRARY_PATH in the build tree.
$(CLI): $(CLI_OBJ) $(LIB_A) $(VAL_A)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(LIB_A) $(VAL_A) $(CLI_LIBS) \
	  $(LIB_LIBS) $(VAL_LIBS)

# The pool daemon (tlspoold(8)): an application of both libraries, which
# it links statically like the CLI (it uses internal tp_ calls too).
$(DAEMON): $(DAEMON_OBJ) $(LIB_A) $(VAL_A)
	$(CC) $(LDFLAGS) -o $@ $(DAEMON_OBJ) $(LIB_A) $(VAL_A) $(LIB_LIBS) \
	  $(VAL_LIBS)

# The rules authorization plugin (tlspool_authz(3)): stands alone.
$(AUTHZ_SO): src/authz/rules.c include/tlspool/authz.h
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) -shared $(SOFLAGS) $(LDFLAGS) -o $@ src/authz/rules.c

$(BENCH_BIN): bench/cache_bench.c $(LIB_A) $(VAL_A)
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) $(LDFLAGS) -o $@ $< $(LIB_A) $(VAL_A) $(LIB_LIBS) \
	  $(VAL_LIBS)

# Cold validation against the floor (bench/coldval.sh).
$(COLDVAL_BENCH): bench/coldval_bench.c $(LIB_A) $(VAL_A)
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) $(LDFLAGS) -o $@ $< $(LIB_A) $(VAL_A) $(LIB_LIBS) \
	  $(VAL_LIBS)

# Calls through the pool or in the process (bench/pool.sh, tests/e2e/pool.sh).
$(POOL_LOAD): bench/pool_load.c bench/bench_util.h $(LIB_A) $(VAL_A)
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) $(LDFLAGS) -o $@ $< $(LIB_A) $(VAL_A) $(LIB_LIBS) \
	  $(VAL_LIBS)

$(HARNESS): $(BUILD)/bench/%: bench/%.c bench/bench_util.h $(LIB_A) $(VAL_A)
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) $(LDFLAGS) -o $@ $< $(LIB_A) $(VAL_A) $(LIB_LIBS) \
	  $(VAL_LIBS)

$(BUILD)/tests/check_%: tests/unit/check_%.c $(LIB_A) $(VAL_A) $(wildcard tests/unit/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) -Wno-missing-prototypes -Wno-format-nonliteral -Itests/unit $(LDFLAGS) -o $@ $< \
	  $(LIB_A) $(VAL_A) $(LIB_LIBS) $(VAL_LIBS) $(CHECKLIBS)

$(BUILD)/tests/%: tests/tools/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) $(LDFLAGS) -o $@ $<

$(LIBTOOLS:%=$(BUILD)/tests/%): $(BUILD)/tests/%: tests/tools/%.c $(LIB_A) $(VAL_A)
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) $(LDFLAGS) -o $@ $< $(LIB_A) $(VAL_A) $(LIB_LIBS) $(VAL_LIBS) -ldl

tools: $(TOOL_BIN)

tests: all $(UNIT_BIN) $(TOOL_BIN) $(POOL_LOAD) $(BENCH_BIN) $(HARNESS) \
	$(COLDVAL_BENCH)

# `make check` and `make demo` first install what is missing, then run a
# second make so that pkg-config sees the installed packages.
check: deps
	@$(MAKE) --no-print-directory check-run

check-run: tests
	@BUILD=$(BUILD) tests/run

check-asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan SAN=1 check-run

check-valgrind: deps
	@$(MAKE) --no-print-directory tests
	@BUILD=$(BUILD) VALGRIND=1 tests/run --unit

# libFuzzer targets (tests/fuzz/fuzz_*.c): the library is rebuilt with
# clang and coverage instrumentation in build-fuzz/; each target runs for
# FUZZ_TIME seconds from its seed corpus tests/fuzz/corpus/NAME/, writing
# new inputs to build-fuzz/corpus/NAME/.  tests/run runs this when clang
# is installed: five targets, about half a minute in all.
FUZZ_CC   ?= clang
FUZZ_TIME ?= 6
FUZZ_SRC  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN  := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)

fuzz:
	@$(MAKE) --no-print-directory BUILD=build-fuzz CC=$(FUZZ_CC) \
	  CFLAGS="-O1 -g -fsanitize=fuzzer-no-link,address -fno-omit-frame-pointer -Wno-format-nonliteral" \
	  fuzz-run

fuzz-run: $(FUZZ_BIN)
	@for f in $(FUZZ_BIN); do n=$${f##*/fuzz_}; \
	  mkdir -p $(BUILD)/corpus/$$n || exit 1; \
	  echo "=== fuzz_$$n ($(FUZZ_TIME) s)"; \
	  $$f -max_total_time=$(FUZZ_TIME) -print_final_stats=0 \
	    $(BUILD)/corpus/$$n tests/fuzz/corpus/$$n >$(BUILD)/fuzz_$$n.log 2>&1 || \
	    { tail -40 $(BUILD)/fuzz_$$n.log; exit 1; }; \
	  tail -1 $(BUILD)/fuzz_$$n.log; done

$(BUILD)/fuzz/%: tests/fuzz/%.c $(VAL_A)
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) -Wno-missing-prototypes -fsanitize=fuzzer,address \
	  -o $@ $< $(VAL_A) $(VAL_LIBS)

# The pool's messages (pool.c) and the STARTTLS preludes (prelude*.c) are
# libtlspool's: those targets link both.
$(BUILD)/fuzz/fuzz_pool $(BUILD)/fuzz/fuzz_prelude: $(BUILD)/fuzz/%: tests/fuzz/%.c $(LIB_A) $(VAL_A)
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) -Wno-missing-prototypes -fsanitize=fuzzer,address \
	  -o $@ $< $(LIB_A) $(VAL_A) $(LIB_LIBS) $(VAL_LIBS)

# The clang static analyzer over a fresh build directory of the libraries,
# the CLI, the authz plugin and the test tools; any finding fails the
# target.  The HTML report stays in $(ANALYZE_BUILD)/report.
ANALYZE_BUILD ?= build-analyze
analyze:
	@rm -rf $(ANALYZE_BUILD)
	scan-build --status-bugs -o $(ANALYZE_BUILD)/report \
	  $(MAKE) --no-print-directory BUILD=$(ANALYZE_BUILD) all tools

demo: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) scripts/demo

# Benchmarks against peers measured side by side (bench/).
# Each appends "RESULT" lines to $(BUILD)/bench/results.txt; bench/report.sh
# prints the table of ratios and draws the plots into $(BUILD)/bench/.
BENCH_ENV = BUILD=$(BUILD) OUT=$(BUILD)/bench RESULTS=$(BUILD)/bench/results.txt
bench: deps
	@$(MAKE) --no-print-directory all $(BENCH_BIN) $(POOL_LOAD) $(HARNESS) $(COLDVAL_BENCH)
	@: >$(BUILD)/bench/results.txt
	@$(BENCH_ENV) bench/harness.sh
	@$(BENCH_ENV) bench/throughput.sh
	@$(BENCH_ENV) bench/cache.sh
	@$(BENCH_ENV) bench/coldval.sh
	@$(BENCH_ENV) bench/fleet.sh
	@$(BENCH_ENV) bench/pool.sh
	@$(BENCH_ENV) bench/report.sh

lint-man:
	@for m in $(MANPAGES); do mandoc -Tlint -W warning $$m || exit 1; done

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(LIBDIR) \
	  $(DESTDIR)$(INCDIR)/tlspool $(DESTDIR)$(PKGCONFIGDIR)
	install -m 755 $(CLI) $(DESTDIR)$(BINDIR)/
	install -m 755 $(DAEMON) $(DESTDIR)$(SBINDIR)/
	install -m 644 include/tlspool/*.h $(DESTDIR)$(INCDIR)/tlspool/
	install -m 644 $(VAL_A) $(LIB_A) $(DESTDIR)$(LIBDIR)/
	install -m 755 $(VAL_SO) $(LIB_SO) $(DESTDIR)$(LIBDIR)/
	install -d $(DESTDIR)$(LIBDIR)/tlspool
	install -m 755 $(AUTHZ_SO) $(DESTDIR)$(LIBDIR)/tlspool/
	for l in libtlspool-validate libtlspool; do \
	  ln -sf $$l.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$$l.so.$(SOMAJOR); \
	  ln -sf $$l.so.$(SOMAJOR) $(DESTDIR)$(LIBDIR)/$$l.so; done
	for pc in tlspool-validate tlspool; do \
	  sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	    -e 's|@INCDIR@|$(INCDIR)|' -e 's|@VERSION@|$(VERSION)|' \
	    $$pc.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/$$pc.pc; done
	install -d $(DESTDIR)$(DATADIR)/tlspool
	install -m 644 share/tlspool-connect.schema.json $(DESTDIR)$(DATADIR)/tlspool/
	for m in $(MANPAGES); do s=$${m##*.}; install -d $(DESTDIR)$(MANDIR)/man$$s; \
	  install -m 644 $$m $(DESTDIR)$(MANDIR)/man$$s/; done
	@# every function a page names (its .Nm lines) links to that page
	for m in man/*.3; do p=$${m##*/}; \
	  for f in $$(sed -n '/^\.Sh NAME/,/^\.Sh /s/^\.Nm \([a-z_0-9]*\).*/\1/p' $$m); do \
	    [ "$$f.3" = "$$p" ] || ln -sf $$p $(DESTDIR)$(MANDIR)/man3/$$f.3; done; done
	install -d $(DESTDIR)$(BASHCOMPDIR)
	install -m 644 share/bash-completion/tlspool-connect $(DESTDIR)$(BASHCOMPDIR)/

# tlspoold as a service: its units (socket activation), the directory of
# its socket, and its user.  The user is made on this system only without
# DESTDIR; a package makes it when it is installed.
install-daemon: install
	install -d $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(TMPFILESDIR)
	for u in tlspoold.service tlspoold.socket; do \
	  sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
	    dist/systemd/$$u > $(DESTDIR)$(SYSTEMDUNITDIR)/$$u && \
	  chmod 644 $(DESTDIR)$(SYSTEMDUNITDIR)/$$u || exit 1; done
	install -m 644 dist/tmpfiles.d/tlspool.conf $(DESTDIR)$(TMPFILESDIR)/tlspool.conf
	@if [ -n "$(DESTDIR)" ]; then \
	  echo "install-daemon: DESTDIR set: no tlspool user made here"; \
	elif getent passwd tlspool >/dev/null; then \
	  echo "install-daemon: the tlspool user exists"; \
	else \
	  useradd --system --user-group --no-create-home --home-dir /nonexistent \
	    --shell /usr/sbin/nologin --comment "tlspool key pool" tlspool && \
	  echo "install-daemon: made the system user tlspool"; \
	fi
	@echo "install-daemon: then: systemctl daemon-reload; systemd-tmpfiles --create; systemctl enable --now tlspoold.socket"

# The libraries, the CLI and the tools; the unit tests keep their tables
# one row a line, as written.
FORMATTED = $$(git ls-files 'src/*.[ch]' 'include/*.h' 'bench/*.c' \
	'tests/tools/*.c' 'tests/fuzz/*.c' 2>/dev/null || \
	find src include bench tests/tools tests/fuzz -name '*.[ch]')
format:
	clang-format -i $(FORMATTED)

format-check:
	clang-format --dry-run -Werror $(FORMATTED)

clean:
	rm -rf build build-asan build-fuzz build-analyze
