#!/bin/sh
# tests/tools/mkeku.sh DIR -- certificates whose extended key usage (RFC
# 5280 section 4.2.1.12) says what they are for, for the PKIX usages of
# the DANE matcher.  DIR holds what tests/tools/mkcerts.sh made (root and
# inter, with their keys); each NAME below gets NAME.key, NAME.pem and
# NAME.der, all for www.example.test:
#
#   srv        signed by inter, EKU serverAuth only
#   cli        signed by inter, EKU clientAuth only
#   emailonly  signed by inter, EKU emailProtection only
#   noeku      signed by inter, no extended key usage (any purpose)
#   anyeku     signed by inter, EKU anyExtendedKeyUsage
#   intercli   intermediate CA signed by root, EKU clientAuth only
#   srvcli     signed by intercli, EKU serverAuth
set -eu
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
cd "$1"
if [ ! -f inter.key ] || [ ! -f root.key ]; then
	echo "$0: run mkcerts.sh first" >&2
	exit 1
fi

cert() { # NAME ISSUER TEMPLATE-LINES...
	n=$1 i=$2
	shift 2
	certtool --generate-privkey --key-type ecdsa --curve secp256r1 \
	    --outfile "$n.key" 2>/dev/null
	printf '%s\n' "$@" >"$n.tmpl"
	certtool --generate-certificate --load-privkey "$n.key" \
	    --load-ca-certificate "$i.pem" --load-ca-privkey "$i.key" \
	    --template "$n.tmpl" --outfile "$n.pem" >/dev/null 2>&1 ||
	    { echo "$0: certtool failed for $n" >&2; exit 1; }
	certtool --certificate-info --infile "$n.pem" --outder \
	    --outfile "$n.der" >/dev/null 2>&1
}

www="cn = \"www.example.test\"
dns_name = \"www.example.test\"
signing_key
expiration_days = 30"

cert srv inter "$www" tls_www_server
cert cli inter "$www" tls_www_client
cert emailonly inter "$www" email_protection_key
cert noeku inter "$www"
cert anyeku inter "$www" 'key_purpose_oid = 2.5.29.37.0'
cert intercli root 'cn = "tlspool test client-only intermediate"' ca \
    cert_signing_key tls_www_client 'expiration_days = 30'
cert srvcli intercli "$www" tls_www_server
