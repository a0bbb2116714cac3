#!/bin/sh
# tests/tools/mkpgp_algos.sh DIR: OpenPGP keys of the algorithms that
# GnuTLS cannot verify and libgcrypt can (openpgp_verify.c), made by
# GnuPG now (gpg --expert), in DIR (GNUPGHOME is DIR/gnupg-algos).  Each
# NAME.pub is `gpg --export`, NAME.sec `gpg --export-secret-keys`
# (unprotected), NAME.pub.asc and NAME.sec.asc the same with --armor,
# NAME.fpr the primary fingerprint and NAME.subs the subkey fingerprints,
# one a line:
#   bp256   brainpoolP256r1 (cert,sign) "BP <bp@example.test>", an Ed25519
#           auth subkey and a brainpoolP256r1 signing subkey (its
#           embedded back-signature is Brainpool too)
#   bp384   brainpoolP384r1 (cert,sign) "BP384 <bp384@example.test>", a
#           P-256 ECDSA auth subkey
#   bp512   brainpoolP512r1 (cert,sign) "BP512 <bp512@example.test>", an
#           Ed25519 auth subkey
#   k1      secp256k1 (cert,sign) "K1 <k1@example.test>", an Ed25519 auth
#           subkey
#   dsa     DSA-2048 (cert,sign) "DSA <dsa@example.test>", a P-256 ECDSA
#           auth subkey and an Elgamal-2048 encryption subkey
#   rev     brainpoolP256r1 (cert,sign) "Rev <rev@example.test>" with an
#           Ed25519 auth subkey, revoked by the revocation certificate
#           GnuPG stored when it made the key: rev.pub (and .pub.asc) is
#           the revoked key, rev.sec (and .sec.asc) its secret exported
#           before the revocation, as its owner may still hold it
# Used by tests/unit/check_openpgp.c and tests/e2e/openpgp_algos.sh.
set -eu
umask 077
d=$1
mkdir -p "$d/gnupg-algos"
chmod 700 "$d/gnupg-algos"
GNUPGHOME=$d/gnupg-algos
export GNUPGHOME
g() {
	gpg --batch --quiet --no-tty --pinentry-mode loopback --passphrase '' \
	    --expert "$@" 2>/dev/null
}
fpr_of() { # the key with that User ID
	g --with-colons --list-keys "=$1" |
	    awk -F: '/^pub/ { want = 1; next } /^sub/ { want = 0 }
	        /^fpr/ && want { f = $10 } END { print f }'
}
gen() { # NAME UID ALGO [SUBKEY-ALGO USAGE]...
	n=$1 u=$2 a=$3
	shift 3
	g --quick-gen-key "$u" "$a" cert,sign never
	f=$(fpr_of "$u")
	[ -n "$f" ] || { echo "$0: gpg made no $a key" >&2; exit 1; }
	echo "$f" >"$d/$n.fpr"
	while [ $# -ge 2 ]; do
		g --quick-add-key "$f" "$1" "$2" never
		shift 2
	done
}
export_key() { # NAME
	f=$(cat "$d/$1.fpr")
	n=$1
	g --export "$f" >"$d/$n.pub"
	g --export-secret-keys "$f" >"$d/$n.sec"
	g --armor --export "$f" >"$d/$n.pub.asc"
	g --armor --export-secret-keys "$f" >"$d/$n.sec.asc"
	g --with-colons --list-keys "$f" |
	    awk -F: '/^sub/ { s = 1; next } /^fpr/ && s { print $10; s = 0 }' \
	    >"$d/$n.subs"
}

mk() {
	gen "$@"
	export_key "$1"
}

mk bp256 'BP <bp@example.test>' brainpoolP256r1 ed25519 auth \
    brainpoolP256r1/ecdsa sign
mk bp384 'BP384 <bp384@example.test>' brainpoolP384r1 nistp256/ecdsa auth
mk bp512 'BP512 <bp512@example.test>' brainpoolP512r1 ed25519 auth
mk k1 'K1 <k1@example.test>' secp256k1 ed25519 auth
mk dsa 'DSA <dsa@example.test>' dsa2048 nistp256/ecdsa auth elg2048 encr
gen rev 'Rev <rev@example.test>' brainpoolP256r1 ed25519 auth
export_key rev
f=$(cat "$d/rev.fpr")
# the stored certificate's armor lines start with ":" against accidents
sed 's/^://' "$GNUPGHOME/openpgp-revocs.d/$f.rev" >"$d/rev.rev"
g --import "$d/rev.rev"
g --export "$f" >"$d/rev.pub"
g --armor --export "$f" >"$d/rev.pub.asc"

# The agent of this GNUPGHOME is not needed any more.
gpgconf --kill gpg-agent 2>/dev/null || true
