#!/bin/bash
# make check: a quick smoke run of the cold-validation benchmark
# (bench/coldval.sh, build/bench/coldval_bench), a few rounds and no
# timing assertions, so that it cannot rot: it runs, every kind of
# handshake succeeds (coldval_bench exits 1 at the first failure), and
# it prints each line of its table with a number.
. "$(dirname "$0")/common"

[ -x "$BUILD/bench/coldval_bench" ] || { echo "no $BUILD/bench/coldval_bench"; exit 1; }
expect coldval 0 -- env BUILD="$BUILD" ROUNDS=1 BLOCK=3 bench/coldval.sh
for l in 'floor: bare GnuTLS client, no verification +[0-9]+ /s' \
	'zone keys kept +[0-9]+ /s +[0-9.]+x the floor' \
	'keep_keys_ttl = 0 +[0-9]+ /s +[0-9.]+x the floor' \
	'validation cache warm +[0-9]+ /s +[0-9.]+x the floor' \
	'one TLSA lookup alone, zone keys kept +[0-9]+ us' \
	'one TLSA lookup alone, keep_keys_ttl = 0 +[0-9]+ us' \
	'kept keys / no kept keys: [0-9.]+x \(medians of 1 rounds of 3\)'; do
	grep_in out coldval "$l"
done
no_grep_in err coldval '.'
# a broken configuration is an error, not a table
expect usage 2 -- "$BUILD/bench/coldval_bench" a b c d e
finish
