#!/bin/sh
# tests/store-redis.sh - portcullisctl on a shared Redis store, and the
# migration from TDB (dump, then load with the Redis configuration)
#
# A private redis-server (unix socket, its own folder under $T, no
# persistence, `daemonize no`, stopped at exit).
#  1. TDB: records of every namespace loaded from a hand-written dump
#     (greylist, awl, whitelist, refs, stats, with keys holding escaped
#     CR/LF/TAB/NUL bytes and a 4 KiB address), dumped: tdb.dump;
#  2. Redis: `load tdb.dump`, `dump` -> identical to tdb.dump (sorted), and
#     the Redis keys are the prefix's only;
#  3. every verb on Redis: greylist list/show/del, awl list/del, whitelist
#     add/list/del, explain REF, stats, expire;
#  4. two prefixes on one Redis are two groups; a wrong password file
#     (mode 0644) is refused, with no password in the message;
#  5. the daemon's -t says that Redis answers, and that it does not.
# Skips (77) without redis-server / redis-cli.

: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
. "$top_srcdir/tests/lib.sh"

t_need redis-server redis-cli
t_init
NOW=1790000000 # 2026-09-21: before every expiry below
PORTCULLIS_CLOCK_FILE=$T/clock
export PORTCULLIS_CLOCK_FILE
echo "$NOW" >"$PORTCULLIS_CLOCK_FILE"

RD=$T/redis
RSOCK=$RD/redis.sock
mkdir -p "$RD"
timeout -s KILL 300 redis-server --port 0 --unixsocket "$RSOCK" --unixsocketperm 700 \
	--dir "$RD" --save "" --appendonly no --daemonize no >"$T/redis.log" 2>&1 &
T_PIDS="$T_PIDS $!"
t_at_exit 'redis-cli -s "$RSOCK" shutdown nosave >/dev/null 2>&1'
t_wait_for 'redis-cli -s "$RSOCK" ping 2>/dev/null | grep -q PONG' 15 ||
	fail "redis-server did not start: $(cat "$T/redis.log")"

mkdir "$T/tdb"
t_conf "$T/tdb.conf" "state_dir = $T/tdb"
t_conf "$T/redis.conf" "store.backend = redis" "store.redis = unix:$RSOCK" \
	"store.redis_prefix = grp1:"
CONF=$T/tdb.conf


# --- 1. a TDB state -----------------------------------------------------------------
TAB=$(printf '\t')
LONG=$(head -c 4000 /dev/zero | tr '\0' 'x')
cat >"$T/in.dump" <<EOF
greylist${TAB}ip:203.0.113.0/24 s@example.net r@example.test${TAB}2027-02-01T00:00:00Z${TAB}flags=-${TAB}passes=0${TAB}defers=2${TAB}first=2026-09-21T07:58:00Z${TAB}last=2026-09-21T07:59:00Z
greylist${TAB}ip:203.0.113.0/24 s@example.net q@example.test${TAB}2027-02-01T00:00:00Z${TAB}flags=passed${TAB}passes=4${TAB}defers=1${TAB}first=2026-09-20T07:00:00Z${TAB}last=2026-09-21T07:00:00Z
greylist${TAB}ip:2001:db8:5::/64 other@example.org r@example.test${TAB}never${TAB}flags=passed,nogrey${TAB}passes=1${TAB}defers=0${TAB}first=1789990000${TAB}last=1789990000
greylist${TAB}ip:198.51.100.0/24 a\\r\\nSET\\tx@evil.example \\x7f*3@example.test${TAB}2027-02-01T00:00:00Z${TAB}flags=-${TAB}passes=0${TAB}defers=1${TAB}first=1789990000${TAB}last=1789990000
awl${TAB}ip:203.0.113.0/24${TAB}2027-03-01T00:00:00Z${TAB}passes=7${TAB}first=2026-09-01T00:00:00Z${TAB}last=2026-09-21T07:00:00Z
awl${TAB}ip:198.18.0.0/24${TAB}2027-03-01T00:00:00Z${TAB}passes=5${TAB}first=2026-09-01T00:00:00Z${TAB}last=2026-09-21T07:00:00Z
refs${TAB}AbCdEf1234${TAB}2027-01-01T00:00:00Z${TAB}time=1789999000${TAB}client_addr=192.0.2.21${TAB}client_name=client-21.example.net${TAB}helo=mail.sender.example${TAB}from=sender@sender.example${TAB}rcpt=user@example.test defer greylist.new${TAB}verdict=defer${TAB}symbol=greylist.new rcpt${TAB}reply=451 4.7.1 Greylisted: first attempt
stats${TAB}greylist.passes${TAB}never${TAB}data=5
stats${TAB}odd\\x00key\\r\\n${TAB}never${TAB}data=\\x00\\xff
stats${TAB}${LONG}@4k.example${TAB}never${TAB}data=long key
EOF
t_run_ctl 0 load "$T/in.dump"
t_has "loaded 10 records"
t_run_ctl 0 whitelist add client 192.0.2.7 --comment "partner relay"
t_run_ctl 0 whitelist add sender a@example.org
t_ctl dump >"$T/tdb.dump" 2>"$T/dump.err" || t_err "TDB dump: $(cat "$T/dump.err")"
[ "$(grep -vc '^#' "$T/tdb.dump")" -eq 12 ] || t_err "TDB dump: $(grep -vc '^#' "$T/tdb.dump") records, want 12"

# --- 2. the migration: load into Redis, dump, the same ---------------------------
CONF=$T/redis.conf
t_run_ctl 0 load "$T/tdb.dump"
t_has "loaded 12 records"
t_ctl dump >"$T/redis.dump" 2>"$T/dump.err" || t_err "Redis dump: $(cat "$T/dump.err")"
[ -s "$T/dump.err" ] && t_err "Redis dump complained: $(cat "$T/dump.err")"
sort "$T/tdb.dump" >"$T/tdb.sorted"
sort "$T/redis.dump" >"$T/redis.sorted"
if cmp -s "$T/tdb.sorted" "$T/redis.sorted"; then
	pass "TDB dump -> Redis load -> Redis dump: the same $(grep -vc '^#' "$T/tdb.dump") records"
else
	t_err "the Redis dump differs: $(diff "$T/tdb.sorted" "$T/redis.sorted" | head -n 10)"
fi
# and back: Redis -> a new TDB -> the same again
mkdir "$T/tdb2"
t_conf "$T/tdb2.conf" "state_dir = $T/tdb2"
CONF=$T/tdb2.conf
t_run_ctl 0 load "$T/redis.dump"
t_ctl dump | sort >"$T/tdb2.sorted"
cmp -s "$T/tdb.sorted" "$T/tdb2.sorted" && pass "Redis dump -> TDB load -> dump: the same" ||
	t_err "Redis -> TDB differs: $(diff "$T/tdb.sorted" "$T/tdb2.sorted" | head -n 5)"
CONF=$T/redis.conf
# every key of the group starts with its prefix; nothing else was made
# (counted inside Redis: keys hold CR and LF)
n=$(redis-cli -s "$RSOCK" EVAL "local n, cur = 0, '0'
repeat
  local r = redis.call('SCAN', cur, 'COUNT', 1000)
  cur = r[1]
  for _, k in ipairs(r[2]) do
    if string.sub(k, 1, 5) ~= 'grp1:' then n = n + 1 end
  end
until cur == '0'
return n" 0)
[ "$n" -eq 0 ] || t_err "$n Redis keys outside the prefix grp1:"

# --- 3. the verbs on Redis ------------------------------------------------------------
t_run_ctl 0 greylist list
[ "$(echo "$CTL_OUT" | grep -c '^ip:')" -eq 4 ] || t_err "greylist list: $CTL_OUT"
t_run_ctl 0 greylist list --sender '<S@Example.NET>' --rcpt r@example.test
t_has "ip:203.0.113.0/24 s@example.net r@example.test waiting passes=0 defers=2"
t_run_ctl 0 greylist show --ip 2001:db8:5::9 --from other@example.org --rcpt '<r@example.test>'
t_has "state     passed (score-aware: not greylisted)"
t_run_ctl 0 greylist del --ip 203.0.113.9 --from s@example.net --rcpt q@example.test
t_run_ctl 0 greylist list
[ "$(echo "$CTL_OUT" | grep -c '^ip:')" -eq 3 ] || t_err "greylist list after del: $CTL_OUT"
t_run_ctl 0 awl list
t_has "ip:198.18.0.0/24 passes=5"
t_run_ctl 0 awl del 198.18.0.9
t_run_ctl 0 awl list
case $CTL_OUT in *198.18.0.0*) t_err "awl del on Redis: still listed: $CTL_OUT" ;; esac
t_run_ctl 0 whitelist list
t_has "client 192.0.2.7"
t_has "comment=partner relay"
t_run_ctl 0 whitelist add recipient '<B@Example.test>'
t_run_ctl 0 whitelist del sender a@example.org
t_run_ctl 0 whitelist list
t_has "recipient b@example.test"
case $CTL_OUT in *a@example.org*) t_err "whitelist del on Redis: still listed" ;; esac
t_run_ctl 0 explain AbCdEf1234
t_has "ref       AbCdEf1234"
t_has "client    192.0.2.21"
t_run_ctl 1 explain NoSuchRef0
t_has "not in the store"
t_run_ctl 0 stats
t_has "entries.greylist 3"
t_has "entries.awl 1"
t_has "entries.whitelist 2"
t_has "entries.refs 1"
t_has "greylist.passes 5"
t_run_ctl 0 expire
t_has "total      0 expired"

# --- 4. groups and passwords ----------------------------------------------------------
t_conf "$T/grp2.conf" "store.backend = redis" "store.redis = unix:$RSOCK" \
	"store.redis_prefix = grp2:"
CONF=$T/grp2.conf
t_run_ctl 0 stats
t_has "entries.greylist 0"
t_run_ctl 0 whitelist list
[ -z "$CTL_OUT" ] || t_err "another prefix sees the whitelist: $CTL_OUT"
echo "not-the-password" >"$T/pw"
chmod 644 "$T/pw"
t_conf "$T/pw.conf" "store.backend = redis" "store.redis = unix:$RSOCK" \
	"store.redis_password_file = $T/pw"
CONF=$T/pw.conf
t_run_ctl 2 stats
t_has "readable by others"
case $CTL_OUT in *not-the-password*) t_err "the password is in the message" ;; esac
chmod 600 "$T/pw"
t_run_ctl 2 stats
case $CTL_OUT in *not-the-password*) t_err "the password is in the message" ;; esac

# --- 5. portcullis -t ---------------------------------------------------------------------
out=$(timeout 30 "$PORTCULLIS" -t -c "$T/redis.conf" 2>&1) || t_err "-t: $out"
echo "$out" | grep -q "store: redis unix:$RSOCK answers (version " &&
	pass "-t: Redis answers" || t_err "-t does not say that Redis answers: $out"
t_conf "$T/none.conf" "store.backend = redis" "store.redis = unix:$T/nothing.sock"
out=$(timeout 30 "$PORTCULLIS" -t -c "$T/none.conf" 2>&1) || t_err "-t with Redis down failed: $out"
echo "$out" | grep -q "warning: store: redis unix:$T/nothing.sock does not answer" &&
	pass "-t: Redis does not answer" || t_err "-t does not say that Redis is down: $out"
t_conf "$T/bad.conf" "store.backend = redis" "store.redis = nowhere"
out=$(timeout 30 "$PORTCULLIS" -t -c "$T/bad.conf" 2>&1) && t_err "-t accepted store.redis = nowhere"
echo "$out" | grep -q 'store.redis' || t_err "-t: bad store.redis not named: $out"

# --- 6. the daemon on Redis: started, a store.* change at reload is refused ----------
t_conf "$T/d.conf" "store.backend = redis" "store.redis = unix:$RSOCK" \
	"store.redis_prefix = grp1:" "socket = unix:$T/d.sock"
t_start "$T/d.conf" "$T/d.log"
D_PID=$T_PID D_WRAP=$T_WRAP
grep -q "store: redis unix:$RSOCK answers (version " "$T/d.log" ||
	t_err "the daemon did not log that Redis answers"
t_conf "$T/d.conf" "store.backend = redis" "store.redis = unix:$RSOCK" \
	"store.redis_prefix = grp2:" "socket = unix:$T/d.sock"
kill -USR1 "$D_PID"
t_wait_for 'grep -q "configuration reloaded" "$T/d.log"' 10 || t_err "no reload"
grep -q "reload: a new store.\* setting takes a restart; still on redis unix:$RSOCK" "$T/d.log" &&
	pass "a reload says that a store.* change takes a restart" ||
	t_err "no warning about store.* at reload: $(tail -n 3 "$T/d.log")"
t_stop "$D_PID" 15 "$D_WRAP"
t_sanitizer_clean "$T/d.log"
t_done
