#!/bin/bash
# The validation cache on Redis ([cache] backend = redis), end to end
# with tlspool-connect and a redis-server this script starts (a loopback
# port below 32768 and a unix socket) and stops:
#  - two processes with separate configurations (one over TCP, one over
#    the unix socket) share entries: after one validated, NSD is stopped
#    and the other still authenticates;
#  - the Redis key carries the entry's expiry (redis-cli TTL);
#  - an entry with one byte changed (redis-cli SETRANGE) and an entry
#    signed with another site key are rejected with a warning, and the
#    peer is validated online;
#  - Redis killed: online validation with a warning, quickly; restarted:
#    used again;
#  - a Redis ACL user with a password (a wrong one is a warning);
#  - key and password files checked like private keys;
#  - --cache-list / --cache-flush name the backend and touch only the
#    prefix.
. "$(dirname "$0")/common"
. scripts/ports.sh

W="$T/w"
mkdir -p "$W"
command -v redis-server >/dev/null || { echo "no redis-server (scripts/deps)"; exit 1; }
certtool --generate-privkey --key-type ecdsa --outfile "$W/www.key" 2>/dev/null
printf 'dns_name = www.example.test\nexpiration_days = 30\nsigning_key\n' >"$W/tmpl"
certtool --generate-self-signed --load-privkey "$W/www.key" --template "$W/tmpl" \
	--outfile "$W/www.pem" 2>/dev/null
SPKI=$(openssl pkey -in "$W/www.key" -pubout -outform DER | sha256sum | cut -c1-64)

declare -A P
for s in main tamper kill acl flush; do P[$s]=$(free_port); done
for s in main tamper kill acl flush; do
	echo "_${P[$s]}._tcp.www 300 IN TLSA 3 1 1 $SPKI"
done >"$W/add"
zones/serve start "$W/z" --add example.test "$W/add" 2>/dev/null || { echo "zones failed"; exit 1; }

pids=()
RPID=
cleanup_all() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	[ -z "$RPID" ] || kill -9 "$RPID" 2>/dev/null
	wait 2>/dev/null
	zones/serve stop "$W/z" >/dev/null 2>&1
	zones/serve stop "$W/z2" >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup_all EXIT

# --- a redis-server of our own, with an ACL user ---
RSOCK="$W/redis.sock"
RCLI=(redis-cli -s "$RSOCK")
redis_start() {
	local i
	for i in $(seq 20); do
		RPORT=${RPORT:-$(free_port)}
		redis-server --port "$RPORT" --bind 127.0.0.1 --unixsocket "$RSOCK" \
			--unixsocketperm 700 --save '' --appendonly no --daemonize no \
			--dir "$W" --logfile "$W/redis.log" \
			--user tp on ">s3cret-pw" "~site2:*" -@all +get +set +mget +scan +unlink +ping &
		RPID=$!
		for _ in $(seq 100); do
			[ "$("${RCLI[@]}" PING 2>/dev/null)" = PONG ] && return 0
			kill -0 "$RPID" 2>/dev/null || break
			sleep 0.05
		done
		kill -9 "$RPID" 2>/dev/null
		wait "$RPID" 2>/dev/null
		RPID=
		RPORT= # taken: another port
	done
	echo "redis-server does not start"
	exit 1
}
redis_start

openssl rand -hex 32 >"$W/site.key"
openssl rand -hex 32 >"$W/other.key"
echo s3cret-pw >"$W/pw"
echo wrong >"$W/badpw"
chmod 600 "$W/site.key" "$W/other.key" "$W/pw" "$W/badpw"

# make_conf ZONEDIR [CACHE LINES...] > conf
make_conf() {
	local z=$1
	shift
	sed 's/^timeout_ms = .*/timeout_ms = 500/' "$z/tlspool.conf"
	printf '[tls]\nhandshake_timeout_ms = 5000\n[cache]\n'
	printf '%s\n' "$@"
	printf '[identity www.example.test]\nkey = %s\ncertificate = %s\n' "$W/www.key" "$W/www.pem"
}
confs() { # ZONEDIR: every configuration of this script
	local z=$1
	make_conf "$z" "backend = redis" "redis = 127.0.0.1:$RPORT" \
		"key_file = $W/site.key" >"$W/a.conf"
	make_conf "$z" "backend = redis" "redis = unix:$RSOCK" \
		"key_file = $W/site.key" "redis_timeout_ms = 100" >"$W/b.conf"
	make_conf "$z" "backend = redis" "redis = unix:$RSOCK" \
		"key_file = $W/other.key" >"$W/c.conf"
	make_conf "$z" "backend = redis" "redis = 127.0.0.1:$RPORT" \
		"key_file = $W/site.key" "prefix = site2:" "redis_user = tp" \
		"redis_password_file = $W/pw" >"$W/acl.conf"
	make_conf "$z" "backend = redis" "redis = 127.0.0.1:$RPORT" \
		"key_file = $W/site.key" "prefix = site2:" "redis_user = tp" \
		"redis_password_file = $W/badpw" >"$W/badacl.conf"
	make_conf "$z" >"$W/server.conf"
}
confs "$W/z"

server() { # PORT: a one-connection server echoing one line
	("$CLI" --server --config "$W/server.conf" --bind 127.0.0.1 --no-peer-cert \
		--exec cat "$1" >/dev/null 2>"$T/server.err") &
	pids+=($!)
	wait_port "$1"
}
client() { # CONF PORT [OPTIONS...]: one line through a new server on PORT
	local conf=$1 port=$2
	shift 2
	server "$port"
	echo "hello" | "$CLI" --client --config "$conf" --sni www.example.test "$@" 127.0.0.1 "$port"
}
# The Redis key of the entry for PORT under PREFIX, from --cache-list.
redis_key() { # CONF PORT PREFIX
	"$CLI" --cache-list --config "$1" 2>/dev/null |
		awk -v o="_$2._tcp.www.example.test." -v p="$3" '$5 == o { print p $1 }'
}

# --- negative first: unsafe key files are not used, validation is online ---
chmod 644 "$W/site.key"
expect key-readable 0 -- client "$W/a.conf" "${P[main]}"
grep_in err key-readable "warning: cache redis 127\\.0\\.0\\.1:$RPORT.*site\\.key.*validated online"
chmod 600 "$W/site.key"
chmod 640 "$W/pw"
expect pw-readable 0 -- client "$W/acl.conf" "${P[acl]}"
grep_in err pw-readable "warning: .*/pw.*validated online"
chmod 600 "$W/pw"
expect nothing-unsigned 0 -- "${RCLI[@]}" DBSIZE
grep_in out nothing-unsigned '^0$'

# --- while DNS answers: fill the cache through TCP ---
expect fill 0 -- client "$W/a.conf" "${P[main]}"
grep_in out fill '^hello$'
no_grep_in err fill 'warning'
expect list 0 -- "$CLI" --cache-list --config "$W/a.conf"
grep_in err list "cache: redis 127\\.0\\.0\\.1:$RPORT, prefix tlspool:"
grep_in out list "^[0-9a-f]{64} authn pass www\\.example\\.test _${P[main]}\\._tcp\\.www\\.example\\.test\\. TLSA ${SPKI} "
K=$(redis_key "$W/a.conf" "${P[main]}" tlspool:)
expect ttl 0 -- "${RCLI[@]}" TTL "$K"
# the record's TTL is 300 s: the Redis key expires with it
ttl=$(cat "$T/out")
if [ "$ttl" -gt 200 ] 2>/dev/null && [ "$ttl" -le 300 ]; then
	npass=$((npass + 1))
else
	nfail=$((nfail + 1))
	echo "not ok: ttl: redis-cli TTL $K says '$ttl', want 200..300"
fi
expect fill-tamper 0 -- client "$W/a.conf" "${P[tamper]}"
expect fill-kill 0 -- client "$W/a.conf" "${P[kill]}"

# --- DNS gone: the other process, another configuration (unix socket) ---
zones/serve stop "$W/z" >/dev/null 2>&1
expect shared 0 -- client "$W/b.conf" "${P[main]}" --diagnose
grep_in out shared '^hello$'
grep_in err shared '^; cache   .* authenticated from the validation cache'
expect shared-no-read 6 -- client "$W/b.conf" "${P[main]}" --no-cache-read

# one byte changed in Redis: rejected, and without DNS the peer fails
KT=$(redis_key "$W/a.conf" "${P[tamper]}" tlspool:)
expect tamper 0 -- "${RCLI[@]}" SETRANGE "$KT" 60 Z
expect tampered-offline 6 -- client "$W/b.conf" "${P[tamper]}"
grep_in err tampered-offline "cache redis unix:.*$KT: bad signature"

# --- DNS back (new zones, same records) ---
zones/serve start "$W/z2" --add example.test "$W/add" 2>/dev/null || { echo "zones failed"; exit 1; }
confs "$W/z2"
expect tampered-online 0 -- client "$W/b.conf" "${P[tamper]}"
grep_in err tampered-online "warning: cache redis unix:.*$KT: bad signature.*validated online"
expect tamper-rewritten 0 -- client "$W/b.conf" "${P[tamper]}"
no_grep_in err tamper-rewritten 'warning'
# an entry signed with another site key (the same prefix)
expect other-key 0 -- client "$W/c.conf" "${P[main]}"
grep_in err other-key "warning: cache redis unix:.*signed with another site key.*validated online"
expect other-key-listed 0 -- "$CLI" --cache-list --config "$W/a.conf"
grep_in out other-key-listed "^[0-9a-f]{64} unusable: signed with another site key \\(never used\\)"

# --- Redis killed mid-run: online, quickly, with a warning; restarted ---
kill -9 "$RPID"
wait "$RPID" 2>/dev/null
RPID=
t0=$(date +%s%N)
expect killed 0 -- client "$W/a.conf" "${P[kill]}"
t1=$(date +%s%N)
grep_in err killed "warning: cache redis 127\\.0\\.0\\.1:$RPORT, prefix tlspool:, local front 1000 ms: connect: Connection refused; validated online"
expect killed-list 1 -- "$CLI" --cache-list --config "$W/b.conf"
grep_in err killed-list 'cache redis unix:.*connect'
redis_start
expect restarted-fill 0 -- client "$W/a.conf" "${P[kill]}"
no_grep_in err restarted-fill 'warning'
zones/serve stop "$W/z2" >/dev/null 2>&1
expect restarted-shared 0 -- client "$W/b.conf" "${P[kill]}" --diagnose
grep_in err restarted-shared 'authenticated from the validation cache'
zones/serve start "$W/z2" --add example.test "$W/add" 2>/dev/null || { echo "zones failed"; exit 1; }
confs "$W/z2"

# --- an ACL user with a password, its own prefix ---
# (the user may run GET, SET, MGET, SCAN, UNLINK and PING only, as
# tlspool.conf(5) says: listing and flushing work without KEYS)
expect acl-wrong 0 -- client "$W/badacl.conf" "${P[acl]}"
grep_in err acl-wrong 'warning: cache redis .*AUTH as tp: WRONGPASS.*validated online'
expect acl 0 -- client "$W/acl.conf" "${P[acl]}"
no_grep_in err acl 'warning'
expect acl-list 0 -- "$CLI" --cache-list --config "$W/acl.conf"
grep_in err acl-list 'prefix site2:'
grep_in out acl-list "_${P[acl]}\\._tcp"
no_grep_in out acl-list "_${P[main]}\\._tcp"
expect acl-no-keys 0 -- redis-cli -p "$RPORT" --user tp --pass s3cret-pw --no-auth-warning KEYS 'site2:*'
grep_in out acl-no-keys 'NOPERM'

# --- flush: only the prefix ---
expect flush-fill 0 -- client "$W/a.conf" "${P[flush]}"
"${RCLI[@]}" SET unrelated keep >/dev/null
expect flush 0 -- "$CLI" --cache-flush --config "$W/a.conf"
grep_in err flush "cache: redis 127\\.0\\.0\\.1:$RPORT, prefix tlspool:"
expect flushed-list 0 -- "$CLI" --cache-list --config "$W/a.conf"
no_grep_in out flushed-list '.'
expect acl-kept 0 -- "$CLI" --cache-list --config "$W/acl.conf"
grep_in out acl-kept "_${P[acl]}\\._tcp"
expect unrelated-kept 0 -- "${RCLI[@]}" GET unrelated
grep_in out unrelated-kept '^keep$'
expect memory-list 1 -- "$CLI" --cache-list --config "$W/server.conf"
grep_in err memory-list 'cache: memory'
grep_in err memory-list 'lives in each process'

ms=$(((t1 - t0) / 1000000))
if [ "$ms" -lt 3000 ]; then
	npass=$((npass + 1))
else
	nfail=$((nfail + 1))
	echo "not ok: killed: a connection with Redis gone took $ms ms"
fi
finish
