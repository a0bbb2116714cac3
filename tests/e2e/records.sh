#!/bin/bash
# tlspool-connect --records and --records-for: the records to publish,
# compared with what the peer tools make of the same certificate, key or
# live server (ldns-dane create, danetool --tlsa-rr, gpg --export-options
# export-dane), and published: the records printed for a server that is
# not yet authenticated authenticate it once they are in the zone.
. "$(dirname "$0")/common"
. scripts/ports.sh

W="$T/w"
mkdir -p "$W"
tests/tools/mkcerts.sh "$W/c" >/dev/null 2>&1 || { echo "mkcerts failed"; exit 1; }
C="$W/c"
PORT=$(free_port)
pids=()
cleanup_all() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	zones/serve stop "$W/z" >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup_all EXIT

lower() { tr 'A-F' 'a-f'; }
# data OUTFILE TYPE: the hex data of our record of TYPE, lower case
data() { awk -v t="$2" '$4 == t { print $NF }' "$1" | lower; }
# same NAME GOT WANT: two strings, equal and not empty
same() {
	if [ -n "$2" ] && [ "$2" = "$3" ]; then
		npass=$((npass + 1))
	else
		nfail=$((nfail + 1)); echo "not ok: $1: got '$2', want '$3'"
	fi
}

# --- refusals first ---
expect no-file 1 -- "$CLI" --records-for "$W/missing.pem" www.example.test 443
grep_in err no-file '^tlspool-connect: .*/missing\.pem: cannot be read'
printf 'not a certificate\n' >"$W/junk"
expect junk 1 -- "$CLI" --records-for "$W/junk" www.example.test 443
grep_in err junk 'neither a certificate nor a key'
expect key-selector-0 1 -- "$CLI" --records-for "$C/www.key" www.example.test 443 --selector 0
grep_in err key-selector-0 'a key alone has only selector 1'
expect no-port 1 -- "$CLI" --records-for "$C/www.pem" www.example.test
expect bad-usage 1 -- "$CLI" --records-for "$C/www.pem" www.example.test 443 --usage 4
expect usage-of-lookup 1 -- "$CLI" --lookup www.example.test --usage 3
grep_in err usage-of-lookup '^tlspool-connect: --usage is not an option of --lookup$'
expect records-of-server 1 -- "$CLI" --server --records 4433
grep_in err records-of-server '^tlspool-connect: --records is not an option of --server$'

# --- a certificate, a private key, a public key: danetool ---
for u in "3 1 1" "3 0 1" "3 1 2" "3 0 0" "1 1 1"; do
	read -r us se mt <<<"$u"
	expect "cert $u" 0 -- "$CLI" --records-for "$C/www.pem" www.example.test 8443 --usage "$us" --selector "$se" --mtype "$mt"
	grep_in out "cert $u" "^_8443\\._tcp\\.www\\.example\\.test\\. 3600 IN TLSA $u [0-9A-F]+\$"
	got=$(data "$T/out" TLSA)
	dt=()
	[ "$se" = 0 ] && dt+=(--x509)
	[ "$mt" = 2 ] && dt+=(--hash sha512)
	[ "$mt" = 0 ] && dt+=(--hash sha256)
	[ "$us" = 1 ] && dt+=(--no-domain)
	danetool --tlsa-rr --load-certificate "$C/www.pem" --host www.example.test --port 8443 "${dt[@]}" >"$T/dt" 2>/dev/null
	want=$(sed -n 's/.*( \([0-9a-f]*\) \([0-9a-f]*\) \([0-9a-f]*\) \([0-9a-f]*\) ).*/\4/p' "$T/dt")
	[ "$mt" = 0 ] && want=$(openssl x509 -in "$C/www.pem" -outform DER | { [ "$se" = 0 ] && cat || openssl x509 -inform DER -noout -pubkey | openssl pkey -pubin -outform DER; } | od -An -tx1 -v | tr -d ' \n')
	same "cert $u vs danetool" "$got" "$want"
done

# the private key and the certificate give one 3 1 1 record
"$CLI" --records-for "$C/www.pem" www.example.test 443 >"$T/cert" 2>/dev/null
expect private-key 0 -- "$CLI" --records-for "$C/www.key" www.example.test 443
same "private key = certificate" "$(data "$T/out" TLSA)" "$(data "$T/cert" TLSA)"
openssl pkey -in "$C/www.key" -pubout -out "$W/www.pub" 2>/dev/null
expect public-key 0 -- "$CLI" --records-for "$W/www.pub" www.example.test 443
same "public key = certificate" "$(data "$T/out" TLSA)" "$(data "$T/cert" TLSA)"
danetool --tlsa-rr --load-pubkey "$W/www.pub" --host www.example.test --port 443 >"$T/dt" 2>/dev/null
same "public key vs danetool" "$(data "$T/out" TLSA)" "$(sed -n 's/.*( 03 01 01 \([0-9a-f]*\) ).*/\1/p' "$T/dt")"

# usage 2 takes the top of the chain the file holds (chain.pem: www,
# inter, root)
expect chain-ta 0 -- "$CLI" --records-for "$C/chain.pem" www.example.test 443 --usage 2 --selector 0 --mtype 2
danetool --tlsa-rr --ca --x509 --hash sha512 --load-certificate "$C/root.pem" --host www.example.test --port 443 >"$T/dt" 2>/dev/null
same "chain 2 0 2 vs danetool" "$(data "$T/out" TLSA)" "$(sed -n 's/.*( 02 00 02 \([0-9a-f]*\) ).*/\1/p' "$T/dt")"

# --udp names the transport in the owner
expect udp 0 -- "$CLI" --records-for "$C/www.pem" www.example.test 853 --udp
grep_in out udp '^_853\._udp\.www\.example\.test\. 3600 IN TLSA 3 1 1 '

# --- SMIMEA for a user certificate: the whole certificate (3 0 0) ---
expect smimea 0 -- "$CLI" --records-for "$C/john.pem" john@example.test
grep_in out smimea '^96d9632f363564cc3032521409cf22a852f2032eec099ed5967c0d00\._smimecert\.example\.test\. 3600 IN SMIMEA 3 0 0 '
same "smimea = the certificate" "$(data "$T/out" SMIMEA)" "$(od -An -tx1 -v "$C/john.der" | tr -d ' \n')"

# --- OPENPGPKEY: the record gpg --export-options export-dane gives ---
export GNUPGHOME="$W/gnupg"
mkdir -m 700 "$GNUPGHOME"
g() { gpg --batch --quiet --no-tty --pinentry-mode loopback --passphrase '' "$@" 2>/dev/null; }
g --quick-gen-key "John <john@example.test>" ed25519 sign,auth never
g --quick-gen-key "Alice <alice@example.test>" ed25519 sign,auth never
g --export john@example.test >"$W/john.pub"
g --armor --export john@example.test >"$W/john.asc"
g --export-options export-dane --export john@example.test >"$T/gpg"
want_owner=$(awk '/TYPE61/ { print $1; exit }' "$T/gpg")
want=$(sed -n '/TYPE61/,/)/p' "$T/gpg" | sed -e '1d' -e 's/[ \t)]//g' | tr -d '\n')
for f in john.pub john.asc; do
	expect "openpgpkey $f" 0 -- "$CLI" --json --records-for "$W/$f" john@example.test
	json_valid "openpgpkey $f" out
	json_is "openpgpkey $f" out ".publish[0].owner == \"$want_owner._openpgpkey.example.test.\" and .publish[0].type == \"OPENPGPKEY\""
	same "openpgpkey $f vs gpg" "$(jq -r '.publish[0].rdata' "$T/out" | lower)" "$want"
done
expect openpgpkey-text 0 -- "$CLI" --records-for "$W/john.pub" john@example.test
same "openpgpkey text" "$(awk '$4 == "OPENPGPKEY" { print $5 }' "$T/out" | base64 -d | od -An -tx1 -v | tr -d ' \n')" "$want"
# a key without a User ID for the identity is refused
expect openpgpkey-other 1 -- "$CLI" --records-for "$W/john.pub" alice@example.test
grep_in err openpgpkey-other 'no User ID of the key names <alice@example\.test>'

# --- a live server: --client --records, against ldns-dane create ---
gnutls-serv --x509certfile "$C/chain.pem" --x509keyfile "$C/www.key" -p "$PORT" >/dev/null 2>&1 &
pids+=($!)
wait_port "$PORT"
# no TLSA records yet: the server is not authenticated, its records are
# what to publish
zones/serve start "$W/z" 2>/dev/null || { echo "zones failed"; exit 1; }
CONF="$W/z/tlspool.conf"
expect live 0 -- "$CLI" --config "$CONF" --client 127.0.0.1 "$PORT" --sni www.example.test --records
grep_in out live "^_${PORT}\\._tcp\\.www\\.example\\.test\\. 3600 IN TLSA 3 1 1 [0-9A-F]{64}\$"
grep_in out live "^_${PORT}\\._tcp\\.www\\.example\\.test\\. 3600 IN TLSA 2 1 1 [0-9A-F]{64}\$"
grep_in err live 'no TLSA records'
cp "$T/out" "$W/live.records"
timeout 20 ldns-dane -n -a 127.0.0.1 create www.example.test "$PORT" 3 1 1 >"$T/ld" 2>/dev/null
same "live 3 1 1 vs ldns-dane" "$(awk '$4 == "TLSA" && $5 == 3 { print $NF }' "$W/live.records" | lower)" "$(awk '{ print $NF }' "$T/ld")"
# "2 1 1" is for the issuer of the server's certificate: ldns-dane's
# certificate one from the end of the chain of three
timeout 20 ldns-dane -n -a 127.0.0.1 -o 1 create www.example.test "$PORT" 2 1 1 >"$T/ld" 2>/dev/null
same "live 2 1 1 vs ldns-dane" "$(awk '$4 == "TLSA" && $5 == 2 { print $NF }' "$W/live.records" | lower)" "$(awk '{ print $NF }' "$T/ld")"
expect live-json 0 -- "$CLI" --config "$CONF" --client 127.0.0.1 "$PORT" --sni www.example.test --records --json
json_valid live-json err
json_is live-json err '[.publish[].usage] == [3, 2] and .class == "no-records"'
# stdout is not the document's: the records are there too
grep_in out live-json "^_${PORT}\\._tcp\\.www\\.example\\.test\\. 3600 IN TLSA 3 1 1 "

# without a name there is no owner
expect live-noname 1 -- "$CLI" --config "$CONF" --client 127.0.0.1 "$PORT" --any-peer --records
grep_in err live-noname 'needs the server.s name'

# published, the records authenticate the server
zones/serve stop "$W/z" >/dev/null 2>&1
grep -v '^;' "$W/live.records" >"$W/live.add"
zones/serve start "$W/z" --add example.test "$W/live.add" 2>/dev/null || { echo "zones failed"; exit 1; }
expect published 0 -- timeout 20 bash -c "$CLI --config $CONF --client 127.0.0.1 $PORT --sni www.example.test --diagnose </dev/null"
grep_in err published '^; dane    authenticated: record [12] '

finish
