#!/bin/sh
# tests/tools/mkpgp.sh DIR: OpenPGP keys for the tests, made by GnuPG now,
# in DIR (GNUPGHOME is DIR/gnupg).  Each NAME.pub is `gpg --export`, each
# NAME.sec `gpg --export-secret-keys` (unprotected), NAME.fpr the primary
# fingerprint and NAME.subs the subkey fingerprints, one a line:
#   ed       Ed25519 (sign,auth) "John <john@example.test>", an Ed25519
#            auth subkey and a Curve25519 encryption subkey
#   rsa      RSA-3072 (sign,auth) "John Doe (work) <john@example.test>",
#            an RSA-3072 encryption-only subkey
#   other    another Ed25519 key for "John <john@example.test>"
#   alice    Ed25519 for "Alice <alice@example.test>"
#   expired  Ed25519 for john, made in 2020 and expired a day later
#   revsub   Ed25519 for john with an Ed25519 auth subkey, revoked
#   domain   Ed25519 for "Example host <example.test>"
set -eu
# Private keys must be 0600 (tlspool.conf(5) FILES): every file made here
# is, including the public exports that tests name where a secret key
# belongs.
umask 077
d=$1
mkdir -p "$d/gnupg"
chmod 700 "$d/gnupg"
GNUPGHOME=$d/gnupg
export GNUPGHOME
g() {
	gpg --batch --quiet --no-tty --pinentry-mode loopback --passphrase '' \
	    "$@" 2>/dev/null
}
fpr_of() { # the newest key with that User ID
	g --with-colons --list-keys "=$1" |
	    awk -F: '/^pub/ { want = 1; next } /^sub/ { want = 0 }
	        /^fpr/ && want { f = $10 } END { print f }'
}
mk() { # NAME UID ALGO USAGE [EXPIRE] [extra gpg options]
	n=$1 u=$2 a=$3 us=$4 ex=${5:-never}
	shift 5 2>/dev/null || shift $#
	g "$@" --quick-gen-key "$u" "$a" "$us" "$ex"
	f=$(fpr_of "$u")
	echo "$f" >"$d/$n.fpr"
}
export_key() { # NAME
	f=$(cat "$d/$1.fpr")
	g --export "$f" >"$d/$1.pub"
	g --export-secret-keys "$f" >"$d/$1.sec"
	g --with-colons --list-keys "$f" |
	    awk -F: '/^sub/ { s = 1; next } /^fpr/ && s { print $10; s = 0 }' \
	    >"$d/$1.subs"
}

mk ed 'John <john@example.test>' ed25519 sign,auth never
f=$(cat "$d/ed.fpr")
g --quick-add-key "$f" ed25519 auth never
g --quick-add-key "$f" cv25519 encr never
export_key ed

mk rsa 'John Doe (work) <john@example.test>' rsa3072 sign,auth never
f=$(cat "$d/rsa.fpr")
g --quick-add-key "$f" rsa3072 encr never
export_key rsa

mk alice 'Alice <alice@example.test>' ed25519 sign,auth never
export_key alice
mk domain 'Example host <example.test>' ed25519 sign,auth never
export_key domain

# Keys that share john's User ID: made in a keyring of their own each,
# so that fpr_of finds them.
for n in other expired revsub; do
	GNUPGHOME=$d/gnupg-$n
	export GNUPGHOME
	mkdir -p "$GNUPGHOME"
	chmod 700 "$GNUPGHOME"
	case $n in
	other) mk other 'John <john@example.test>' ed25519 sign,auth never ;;
	expired) mk expired 'John <john@example.test>' ed25519 sign,auth 1d \
	    --faked-system-time 20200101T000000 ;;
	revsub)
		mk revsub 'John <john@example.test>' ed25519 sign never
		f=$(cat "$d/revsub.fpr")
		g --quick-add-key "$f" ed25519 auth never
		printf 'key 1\nrevkey\ny\n0\n\ny\nsave\n' |
		    gpg --batch --no-tty --pinentry-mode loopback --passphrase '' \
		    --command-fd 0 --yes --edit-key "$f" >/dev/null 2>&1
		;;
	esac
	export_key $n
done
