#!/bin/sh
# tests/tools/mkcerts.sh DIR -- make the certificates of the DANE tests.
#
# Fresh keys and certificates at test time (committed ones would expire),
# made with certtool from gnutls-bin.  For every NAME below, DIR gets
# NAME.key (PEM private key), NAME.pem and NAME.der (the certificate); the
# raw key gets rawkey.key and rawkey.spki (DER SubjectPublicKeyInfo).
#
#   root      self-signed CA (ECDSA P-256)
#   inter     intermediate CA signed by root (RSA 2048: a second algorithm)
#   www       leaf for www.example.test (dNSName only) signed by inter
#   wwwdc     leaf dc=www,dc=example,dc=test (no subjectAltName), by inter
#   wild      leaf for *.example.test (dNSName) signed by inter
#   direct    leaf for www.example.test signed by root itself
#   self      self-signed leaf for www.example.test
#   expired   leaf for www.example.test, valid 2020-01-01..2021-01-01, by inter
#   other     leaf for www.other.test signed by inter
#   john      user uid=john,dc=example,dc=test signed by inter
#   mail      user by rfc822Name john@example.test only, signed by inter
#   rawkey    a bare key (RFC 7250 raw public key)
#   impostor  self-signed CA with inter's DN but its own key
# and, for the identity tests, leaves signed by inter with these subjects:
#   cndc      cn=Web Server,dc=www,dc=example,dc=test
#   baddc     dc=www,o=Org,dc=test            (dc= not contiguous)
#   baduid    uid=john,ou=people,dc=example,dc=test  (uid= not next to dc=)
#   badlabel  dc=ex_ample,dc=test             (not an LDH label)
#   multi     cn=x+dc=www,dc=example,dc=test  (dc= in a multi-valued RDN)
#   noname    o=Org,c=NL, no subjectAltName
#   ldapuid   uid=john,o=Org with rfc822Name john@example.test
#
# DIR/chain.pem is the server chain www + inter + root, for gnutls-serv.
# Used by tests/unit/check_dane.c, check_x509id.c and tests/e2e/dane_probe.sh.
set -eu
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
d=$1
mkdir -p "$d"
cd "$d"
command -v certtool >/dev/null 2>&1 || { echo "$0: certtool not found (gnutls-bin)" >&2; exit 1; }

key() { # NAME [rsa]
	if [ "${2:-}" = rsa ]; then
		certtool --generate-privkey --key-type rsa --bits 2048 \
		    --outfile "$1.key" 2>/dev/null
	else
		certtool --generate-privkey --key-type ecdsa --curve secp256r1 \
		    --outfile "$1.key" 2>/dev/null
	fi
}

der() {
	certtool --certificate-info --infile "$1.pem" --outder \
	    --outfile "$1.der" >/dev/null 2>&1
}

# cert NAME ISSUER TEMPLATE-LINES...  (ISSUER "-" for self-signed)
cert() {
	n=$1 i=$2
	shift 2
	printf '%s\n' "$@" >"$n.tmpl"
	if [ "$i" = - ]; then
		certtool --generate-self-signed --load-privkey "$n.key" \
		    --template "$n.tmpl" --outfile "$n.pem" >/dev/null 2>&1
	else
		certtool --generate-certificate --load-privkey "$n.key" \
		    --load-ca-certificate "$i.pem" --load-ca-privkey "$i.key" \
		    --template "$n.tmpl" --outfile "$n.pem" >/dev/null 2>&1
	fi || { echo "$0: certtool failed for $n" >&2; exit 1; }
	der "$n"
}

leaf="signing_key
encryption_key
tls_www_server
tls_www_client
expiration_days = 30"

# certtool leaves the rfc822Name out when tls_www_server is set.
user="signing_key
encryption_key
tls_www_client
email_protection_key
expiration_days = 30"

key root
cert root - 'cn = "tlspool test root"' 'organization = "tlspool tests"' \
    ca cert_signing_key 'expiration_days = 30'
key inter rsa
cert inter root 'cn = "tlspool test intermediate"' \
    'organization = "tlspool tests"' ca cert_signing_key \
    'expiration_days = 30'
for n in www wwwdc wild direct self expired other john mail rawkey impostor \
    cndc baddc baduid badlabel multi noname ldapuid; do
	key "$n"
done
cert www inter 'cn = "www.example.test"' 'dns_name = "www.example.test"' "$leaf"
cert wwwdc inter 'dn = "dc=www,dc=example,dc=test"' "$leaf"
cert wild inter 'cn = "wildcard"' 'dns_name = "*.example.test"' "$leaf"
cert direct root 'cn = "www.example.test"' 'dns_name = "www.example.test"' "$leaf"
cert self - 'cn = "www.example.test"' 'dns_name = "www.example.test"' "$leaf"
cert expired inter 'cn = "www.example.test"' 'dns_name = "www.example.test"' \
    signing_key encryption_key tls_www_server \
    'activation_date = "2020-01-01 00:00:00"' \
    'expiration_date = "2021-01-01 00:00:00"'
cert other inter 'cn = "www.other.test"' 'dns_name = "www.other.test"' "$leaf"
cert john inter 'dn = "uid=john,dc=example,dc=test"' "$user"
cert mail inter 'cn = "John"' 'email = "john@example.test"' "$user"
cert impostor - 'cn = "tlspool test intermediate"' \
    'organization = "tlspool tests"' ca cert_signing_key 'expiration_days = 30'
cert cndc inter 'dn = "cn=Web Server,dc=www,dc=example,dc=test"' "$leaf"
cert baddc inter 'dn = "dc=www,o=Org,dc=test"' "$leaf"
cert baduid inter 'dn = "uid=john,ou=people,dc=example,dc=test"' "$leaf"
cert badlabel inter 'dn = "dc=ex_ample,dc=test"' "$leaf"
# certtool cannot write a multi-valued RDN; openssl can.
openssl req -new -key multi.key -subj "/DC=test/DC=example/CN=x+DC=www" \
    -multivalue-rdn -out multi.csr >/dev/null 2>&1 &&
openssl x509 -req -in multi.csr -CA inter.pem -CAkey inter.key \
    -set_serial 77 -days 30 -out multi.pem >/dev/null 2>&1 ||
    { echo "$0: openssl failed for multi" >&2; exit 1; }
der multi
cert noname inter 'dn = "o=Org,c=NL"' "$leaf"
cert ldapuid inter 'dn = "uid=john,o=Org"' 'email = "john@example.test"' "$user"
certtool --pubkey-info --load-privkey rawkey.key --outder \
    --outfile rawkey.spki >/dev/null 2>&1
# The bare keys of the CAs, for "2 1 0" records.
for n in root inter impostor; do
	certtool --pubkey-info --load-privkey "$n.key" --outder \
	    --outfile "$n.spki" >/dev/null 2>&1
done
cat www.pem inter.pem root.pem >chain.pem
