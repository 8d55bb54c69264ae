#!/bin/sh
# tests/e2e/postfix-2mx.sh - two MX hosts, one memory: portcullis on Redis
#
# Two private Postfix instances (MX1, MX2 of tests/e2e/postfix-lib.sh, each
# on its own loopback port), each with its own portcullis daemon, both with
# store.backend = redis on one private redis-server (unix socket, its own
# folder, appendonly so that a restart keeps the data; stopped at exit).
#  1. first attempt on MX1: 451 4.7.1 greylisted (ref R1);
#  2. the clock moves past greylist.delay; the retry goes to MX2: accepted,
#     delivered with "X-Greylist: delayed 700 seconds ... at mx2";
#  3. `portcullisctl explain R1` on MX2 shows MX1's refusal;
#  4. a sender greylisted on MX1; `portcullisctl whitelist add sender` on
#     MX2; the same sender from a new client passes MX1 (no reload; within
#     a second: MX1 reads the shared change counter at most once a second);
#     then 20 retries of one triplet at the same moment, 10 on each MX host:
#     all accepted, and the auto-whitelist counts exactly 20 passes of the
#     network (no lost update); the store round trips of accepted
#     transactions are printed;
#  5. Redis stopped: a passed triplet gets 451 4.3.0 on both MX hosts (the
#     greylist's on_error, never a pass), nothing queued; portcullis logs
#     one warning for the outage, not one per message; Redis started again
#     with its data: the same message is delivered, portcullis not
#     restarted; one "answers again" line;
#  6. Redis restarted empty: a known triplet is a stranger again (451
#     4.7.1), and after the delay passes: it works.
# Skips (77) without postfix, swaks or redis-server.

: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/postfix-lib.sh"

pf_need
t_need redis-server redis-cli
t_init
START_MS=$(t_now_ms)
TOP=$T
chmod 755 "$TOP"

NOW=$(date +%s)
PORTCULLIS_CLOCK_FILE=$TOP/clock
export PORTCULLIS_CLOCK_FILE
echo "$NOW" >"$PORTCULLIS_CLOCK_FILE"

# --- the private Redis ----------------------------------------------------------
RD=$TOP/redis
RSOCK=$RD/redis.sock
mkdir -p "$RD"
redis_up()
{
	timeout -s KILL 300 redis-server --port 0 --unixsocket "$RSOCK" --unixsocketperm 700 \
		--dir "$RD" --save "" --appendonly yes --appendfsync always \
		--daemonize no >>"$TOP/redis.log" 2>&1 &
	REDIS_WRAP=$!
	T_PIDS="$T_PIDS $REDIS_WRAP"
	t_wait_for 'redis-cli -s "$RSOCK" ping 2>/dev/null | grep -q PONG' 15 ||
		fail "redis-server did not start: $(tail -n 5 "$TOP/redis.log")"
	REDIS_PID=$(pgrep -P "$REDIS_WRAP" | head -n 1)
}
redis_down()
{
	redis-cli -s "$RSOCK" shutdown >/dev/null 2>&1
	t_wait_exit "$REDIS_WRAP" 10 || kill -KILL "$REDIS_WRAP" 2>/dev/null
	wait "$REDIS_WRAP" 2>/dev/null
}
t_at_exit 'redis-cli -s "$RSOCK" shutdown nosave >/dev/null 2>&1'
redis_up

# --- two MX hosts ------------------------------------------------------------------
# mx_up N: Postfix + portcullis in $TOP/mxN; on_mx N: talk to MX N.
mx_up()
{
	T=$TOP/mx$1
	mkdir -p "$T"
	pf_init
	pf_conf "$PC/portcullis.conf" "checks = whitelist, greylist" "greylist.pools = no" \
		"greylist.delay = 10m" "hostname = mx$1.example.test" \
		"store.backend = redis" "store.redis = unix:$RSOCK" \
		"store.redis_prefix = twomx:" "store.timeout_ms = 500" \
		"metrics.listen = 127.0.0.1:$(t_free_port)"
	t_start "$PC/portcullis.conf" "$T/portcullis.log"
	pf_start
	t_at_exit "Q='$Q'; PF='$PF'; pf_stop"
	eval "MX$1_T=\$T MX$1_PORT=\$PORT MX$1_PC=\$PC MX$1_MAILDIR=\$MAILDIR MX$1_PID=\$T_PID MX$1_WRAP=\$T_WRAP MX$1_Q=\$Q MX$1_PF=\$PF"
	T=$TOP
}
on_mx()
{
	eval "T=\$MX$1_T PORT=\$MX$1_PORT PC=\$MX$1_PC MAILDIR=\$MX$1_MAILDIR Q=\$MX$1_Q PF=\$MX$1_PF"
}
mx_up 1
mx_up 2

smtp() # MX NAME ADDR [FROM]
{
	on_mx "$1"
	pf_smtp "$2" "$3" mail.sender.example "${4:-sender@sender.example}" user@example.test
}
ctl() # MX ARGS...
{
	_m=$1
	shift
	on_mx "$_m"
	timeout 60 "$PORTCULLISCTL" -c "$PC/portcullis.conf" "$@"
}

# --- 1. first attempt on MX1 --------------------------------------------------------
smtp 1 first 192.0.2.21
mta_refused first 'RCPT TO:<user@example\.test>' 451 4.7.1 'UTC (in 600 seconds)' &&
	echo "ok: MX1 greylisted the first attempt (ref $REF)"
R1=$REF
grep -q 'queued as' "$MX1_T/first.txt" && t_err "first attempt: a message was queued"

# --- 2. the retry goes to MX2 -----------------------------------------------------
echo $((NOW + 700)) >"$PORTCULLIS_CLOCK_FILE"
smtp 2 retry 192.0.2.21
QID=$(queue_id retry)
if [ -z "$QID" ]; then
	t_err "retry on MX2: not queued: $(grep -E '^ *<' "$MX2_T/retry.txt" | tail -n 3)"
elif f=$(delivered retry "$QID"); then
	h=$(grep '^X-Greylist: ' "$f")
	# (both Postfix instances call themselves mx.example.test)
	echo "$h" | grep -q -E '^X-Greylist: delayed 700 seconds by portcullis-[^ ]+ at ' ||
		t_err "retry on MX2: X-Greylist is not 'delayed 700 seconds ...': '$h'"
	case $f in "$MX2_MAILDIR"/*) ;; *) t_err "retry: delivered by $f, not by MX2" ;; esac
	echo "ok: the retry on MX2 of MX1's greylisted triplet was accepted: $h"
fi

# --- 3. explain on MX2 of MX1's ref ---------------------------------------------------
if [ -n "$R1" ]; then
	out=$(ctl 2 explain "$R1" 2>&1) || t_err "explain $R1 on MX2 failed: $out"
	echo "$out" | grep -q "^ref  *$R1" || t_err "explain on MX2: no 'ref $R1': $out"
	echo "$out" | grep -q "greylist.new" || t_err "explain on MX2: no greylist.new: $out"
	echo "$out" | grep -q "192.0.2.21" || t_err "explain on MX2: no client 192.0.2.21: $out"
	echo "ok: portcullisctl explain on MX2 shows MX1's ref $R1"
fi

# --- 4. whitelist add on MX2, obeyed by MX1 without a reload -------------------------
smtp 1 vip1 192.0.2.60 vip@partner.example
mta_refused vip1 'RCPT TO:<user@example\.test>' 451 4.7.1 'UTC (in 600 seconds)' >/dev/null &&
	echo "ok: MX1 greylists vip@partner.example before the whitelist entry"
out=$(ctl 2 whitelist add sender vip@partner.example --comment "partner" 2>&1) ||
	t_err "whitelist add on MX2: $out"
# (MX1 reads the shared change counter at most once a second: bounded wait)
QID=
for i in 1 2 3 4 5 6; do
	smtp 1 "vip2-$i" 192.0.2.61 vip@partner.example
	QID=$(queue_id "vip2-$i")
	[ -n "$QID" ] && break
	sleep 0.5
done
if [ -z "$QID" ]; then
	t_err "MX1 did not obey MX2's whitelist entry: $(grep -E '^ *<' "$MX1_T/vip2-6.txt" | tail -n 3)"
else
	delivered "vip2-$i" "$QID" >/dev/null &&
		echo "ok: MX1 obeyed the whitelist entry added on MX2 (attempt $i, no reload)"
fi
out=$(ctl 1 whitelist list sender 2>&1)
echo "$out" | grep -q 'vip@partner.example' || t_err "whitelist list on MX1 lacks the entry: $out"

# --- 4b. the same retry on both MX hosts at the same moment ---------------------
# A new triplet is greylisted; after the delay 20 sessions (10 per MX host)
# retry it at once: every one is accepted and the record counts exactly 20
# passes (compare-and-set: no update is lost).
smtp 1 race0 192.0.2.77 race@sender.example
mta_reply race0 'RCPT TO:' | grep -q '451 4.7.1' || t_err "race: the first attempt was not greylisted"
echo $((NOW + 1400)) >"$PORTCULLIS_CLOCK_FILE"
pids=
for i in 1 2 3 4 5 6 7 8 9 10; do
	for m in 1 2; do
		(smtp $m "race$m-$i" 192.0.2.77 race@sender.example) &
		pids="$pids $!"
	done
done
for p in $pids; do
	wait "$p"
done
n=0
for i in 1 2 3 4 5 6 7 8 9 10; do
	for m in 1 2; do
		on_mx $m
		if [ -n "$(queue_id "race$m-$i")" ]; then
			n=$((n + 1))
		else
			t_err "race$m-$i: not accepted: $(mta_reply "race$m-$i" 'RCPT TO:')"
		fi
	done
done
# every accepted transaction counts one pass of the network on the
# auto-whitelist (once awl_count passes are there, the triplet itself is no
# longer looked at)
out=$(ctl 2 awl list 2>&1)
echo "$out" | grep -q '^ip:192\.0\.2\.77/32 passes=20 ' &&
	pass "20 simultaneous retries on two MX hosts: $n accepted, the auto-whitelist counts 20 passes" ||
	t_err "after 20 simultaneous retries ($n accepted) the awl record is: $(echo "$out" | grep 192.0.2.77)"
out=$(ctl 2 greylist list --sender race@sender.example 2>&1)
echo "$out" | grep -q ' passed passes=[0-9]* defers=1 ' ||
	t_err "the raced triplet is not 'passed ... defers=1': $out"

# --- the round trips of one transaction (a figure, printed) ------------------------
rtrips()
{
	curl -s "http://$(t_conf_get "$MX1_PC/portcullis.conf" metrics.listen)/metrics" |
		sed -n 's/^portcullis_store_roundtrips_total{backend="redis"} //p'
}
r0=$(rtrips)
smtp 1 rt1 192.0.2.21
r1=$(rtrips)
[ -n "$(queue_id rt1)" ] || t_err "rt1 (a passed triplet) was not accepted"
if [ -n "$r0" ] && [ -n "$r1" ]; then
	echo "figure: store round trips for one accepted 1-recipient transaction on MX1" \
		"(whitelist, greylist, no ref kept): $((r1 - r0))"
	[ $((r1 - r0)) -gt 0 ] || t_err "no round trip counted for a greylist decision"
else
	t_err "no portcullis_store_roundtrips_total in MX1's metrics"
fi
for i in 1 2 3 4 5 6 7 8 9 10; do
	smtp 1 "rtb$i" 192.0.2.21
done
r2=$(rtrips)
echo "figure: store round trips for 10 such transactions in a row: $((r2 - r1))" \
	"(the whitelist's change counter is read at most once a second, the greylist" \
	"counters are flushed once a second)"

# --- 5. Redis stopped: 451 4.3.0, one warning; back: delivered ---------------------
redis_down
for m in 1 2; do
	smtp $m "down$m" 192.0.2.21
	r=$(mta_reply "down$m" 'RCPT TO:<user@example\.test>')
	case $r in
	*"451 4.3.0"*) echo "ok: MX$m with Redis down: $r" ;;
	*) t_err "MX$m with Redis down: want 451 4.3.0, got '$r'" ;;
	esac
	grep -q 'queued as' "$MX1_T/down$m.txt" 2>/dev/null && t_err "down$m: queued while Redis was down"
done
smtp 1 down1b 192.0.2.21
mta_reply down1b 'RCPT TO:' | grep -q '451 4.3.0' || t_err "second message with Redis down: not 451 4.3.0"
n=$(grep -c 'warning: store: redis .* does not answer' "$MX1_T/portcullis.log")
[ "$n" -eq 1 ] || t_err "MX1 logged the outage $n times (want once)"
n=$(grep -c 'warning: ' "$MX1_T/portcullis.log")
grep 'warning: ' "$MX1_T/portcullis.log" | grep -v -e 'running as root' \
	-e 'store: redis .* does not answer' -e 'whitelist: store: ' >"$TOP/outage-warn"
[ -s "$TOP/outage-warn" ] &&
	t_err "MX1 logged more than the outage during it: $(head -n 3 "$TOP/outage-warn")"
redis_up
# the daemon retries after its backoff (at most 1 s): the sender's retry
ok=
for i in 1 2 3 4 5 6 7 8 9 10; do
	smtp 1 "back$i" 192.0.2.21
	if [ -n "$(queue_id "back$i")" ]; then
		ok=$i
		break
	fi
	sleep 1
done
if [ -z "$ok" ]; then
	t_err "after Redis came back, the message was not accepted on MX1"
else
	delivered "back$ok" "$(queue_id "back$ok")" >/dev/null &&
		echo "ok: the message refused during the outage was delivered after Redis came back (try $ok, portcullis not restarted)"
fi
t_wait_for 'grep -q "store: redis .* answers again" "$MX1_T/portcullis.log"' 5 ||
	t_err "MX1 did not log the end of the outage"

# --- 6. Redis restarted empty -----------------------------------------------------------
redis_down
rm -rf "$RD"/appendonlydir "$RD"/*.aof "$RD"/dump.rdb
redis_up
ok=
for i in 1 2 3 4 5 6 7 8 9 10; do
	smtp 2 "empty$i" 192.0.2.21
	case $(mta_reply "empty$i" 'RCPT TO:<user@example\.test>') in
	*"451 4.7.1"*)
		ok=$i
		break
		;;
	esac
	sleep 1
done
[ -n "$ok" ] && echo "ok: Redis restarted empty: the triplet is greylisted again on MX2" ||
	t_err "Redis restarted empty: no 451 4.7.1 greylisting"
echo $((NOW + 2100)) >"$PORTCULLIS_CLOCK_FILE"
smtp 1 empty-retry 192.0.2.21
QID=$(queue_id empty-retry)
[ -n "$QID" ] && delivered empty-retry "$QID" >/dev/null &&
	echo "ok: after the delay the retry passes on MX1" ||
	t_err "after Redis restarted empty, the retry was not accepted"

for m in 1 2; do
	eval "p=\$MX${m}_PID w=\$MX${m}_WRAP"
	kill -TERM "$p"
	t_reap "$p" 15 "$w"
	eval "t_sanitizer_clean \"\$MX${m}_T/portcullis.log\" MX$m"
	eval "grep -E 'portcullis: (error|warning): ' \"\$MX${m}_T/portcullis.log\"" |
		grep -v -e "running as root" -e "store: redis" -e "whitelist: store: " >"$TOP/warn$m"
	[ -s "$TOP/warn$m" ] && t_err "MX$m logged unexpected warnings: $(head -n 3 "$TOP/warn$m")"
done
echo "postfix-2mx.sh: $(($(t_now_ms) - START_MS)) ms"
t_done
