#!/bin/sh
# tests/e2e/postfix-sentinel.sh - portcullis follows a Redis failover
#
# All on loopback, all private, all stopped at exit: a Redis master, a
# replica of it, one redis-sentinel watching them (quorum 1, down after
# 1 s), a private Postfix and portcullis with store.redis =
# sentinel:pcmaster@127.0.0.1:PORT and checks = greylist.
#  1. a triplet is greylisted, then passes after the delay (the record is
#     on the master and replicated);
#  2. messages of that triplet go in one after the other; the master is
#     killed (SIGKILL) after the first few; the sentinel promotes the
#     replica; portcullis, not restarted, asks the sentinel again and the
#     messages are accepted again: every message is either accepted or
#     refused with 451 4.3.0 (never lost, never a 5xx, never a pass
#     without the store), the 4xx of the switch are counted and printed;
#  3. the daemon logged the outage once and its end once.
# Bounded: at most 200 messages or 90 s.  Skips (77) without postfix,
# swaks, redis-server or redis-sentinel.

: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/postfix-lib.sh"

pf_need
t_need redis-server redis-sentinel redis-cli
t_init
START_MS=$(t_now_ms)
pf_init

NOW=$(date +%s)
PORTCULLIS_CLOCK_FILE=$T/clock
export PORTCULLIS_CLOCK_FILE
echo "$NOW" >"$PORTCULLIS_CLOCK_FILE"

# --- Redis master, replica, sentinel ------------------------------------------------
P1=$(t_free_port)
P2=$(t_free_port)
while [ "$P2" = "$P1" ]; do P2=$(t_free_port); done
P3=$(t_free_port)
while [ "$P3" = "$P1" ] || [ "$P3" = "$P2" ]; do P3=$(t_free_port); done
start_redis() # NAME PORT [ARGS...]
{
	_n=$1 _p=$2
	shift 2
	mkdir -p "$T/$_n"
	timeout -s KILL 300 redis-server --bind 127.0.0.1 --port "$_p" --dir "$T/$_n" \
		--save "" --appendonly no --daemonize no "$@" >"$T/$_n.log" 2>&1 &
	T_PIDS="$T_PIDS $!"
	t_at_exit "redis-cli -h 127.0.0.1 -p $_p shutdown nosave >/dev/null 2>&1"
	t_wait_for "redis-cli -h 127.0.0.1 -p $_p ping 2>/dev/null | grep -q PONG" 15 ||
		fail "redis $_n did not start: $(tail -n 5 "$T/$_n.log")"
}
start_redis master "$P1"
MASTER_PID=$(redis-cli -h 127.0.0.1 -p "$P1" info server | sed -n 's/^process_id:\([0-9]*\).*/\1/p')
start_redis replica "$P2" --replicaof 127.0.0.1 "$P1"
t_wait_for "redis-cli -h 127.0.0.1 -p $P2 info replication | grep -q 'master_link_status:up'" 15 ||
	fail "the replica does not replicate"
mkdir -p "$T/sentinel"
cat >"$T/sentinel/sentinel.conf" <<EOF
bind 127.0.0.1
port $P3
dir $T/sentinel
daemonize no
sentinel monitor pcmaster 127.0.0.1 $P1 1
sentinel down-after-milliseconds pcmaster 1000
sentinel failover-timeout pcmaster 10000
sentinel parallel-syncs pcmaster 1
EOF
timeout -s KILL 300 redis-sentinel "$T/sentinel/sentinel.conf" >"$T/sentinel.log" 2>&1 &
T_PIDS="$T_PIDS $!"
t_at_exit "redis-cli -h 127.0.0.1 -p $P3 shutdown nosave >/dev/null 2>&1"
t_wait_for "redis-cli -h 127.0.0.1 -p $P3 sentinel get-master-addr-by-name pcmaster 2>/dev/null | grep -q $P1" 15 ||
	fail "the sentinel does not know the master"
t_wait_for "redis-cli -h 127.0.0.1 -p $P3 sentinel replicas pcmaster 2>/dev/null | grep -q $P2" 20 ||
	fail "the sentinel does not know the replica"
echo "ok: master 127.0.0.1:$P1 (pid $MASTER_PID), replica :$P2, sentinel :$P3"

# --- Postfix and portcullis ---------------------------------------------------------
pf_conf "$PC/portcullis.conf" "checks = greylist" "greylist.pools = no" \
	"greylist.delay = 10m" "store.backend = redis" \
	"store.redis = sentinel:pcmaster@127.0.0.1:$P3" "store.timeout_ms = 500"
t_start "$PC/portcullis.conf" "$T/portcullis.log"
PC_PID=$T_PID PC_WRAP=$T_WRAP
pf_start
smtp()
{
	pf_smtp "$1" 192.0.2.21 mail.sender.example sender@sender.example user@example.test
}

# --- 1. greylisted, then passed ---------------------------------------------------
smtp first
mta_reply first 'RCPT TO:' | grep -q '451 4.7.1' || t_err "first: not greylisted: $(mta_reply first 'RCPT TO:')"
echo $((NOW + 700)) >"$PORTCULLIS_CLOCK_FILE"
smtp pass
[ -n "$(queue_id pass)" ] || fail "the retry after the delay was not accepted: $(mta_reply pass 'RCPT TO:')"
t_wait_for "redis-cli -h 127.0.0.1 -p $P2 dbsize | grep -qv '^0$'" 10 || t_err "nothing replicated"

# --- 2. messages during the failover ---------------------------------------------
sent=0 ok=0 tmp=0 other=0 killed= after=0 deadline=$(($(date +%s) + 90))
while [ $sent -lt 200 ] && [ "$(date +%s)" -lt $deadline ]; do
	sent=$((sent + 1))
	smtp "m$sent"
	r=$(mta_reply "m$sent" 'RCPT TO:')
	if [ -n "$(queue_id "m$sent")" ]; then
		ok=$((ok + 1))
		[ -n "$killed" ] && after=$((after + 1))
	else
		case $r in
		*"451 4.3.0"*) tmp=$((tmp + 1)) ;;
		*) other=$((other + 1)) && t_err "m$sent: neither accepted nor 451 4.3.0: $r" ;;
		esac
	fi
	if [ -z "$killed" ] && [ $sent -eq 5 ]; then
		kill -KILL "$MASTER_PID"
		killed=$sent
		echo "ok: master killed after message $sent"
	fi
	# enough: 10 messages accepted after the switch
	[ $after -ge 10 ] && break
done
echo "failover: $sent messages, $ok accepted, $tmp got 451 4.3.0 during the switch, $other other"
[ $after -ge 10 ] && pass "mail flows again through the promoted replica, portcullis not restarted" ||
	t_err "mail did not flow again after the failover ($after accepted after the kill)"
new=$(redis-cli -h 127.0.0.1 -p "$P3" sentinel get-master-addr-by-name pcmaster | tail -n 1)
[ "$new" = "$P2" ] || t_err "the sentinel did not promote the replica (master port $new)"
t_alive "$PC_PID" || t_err "portcullis died"

# --- 3. one warning at the start of the outage, one at its end ----------------------
n=$(grep -c 'warning: store: redis .* does not answer' "$T/portcullis.log")
[ "$n" -le 1 ] || t_err "the outage was logged $n times"
if [ "$tmp" -gt 0 ]; then
	grep -q 'store: redis .* answers again' "$T/portcullis.log" || t_err "no 'answers again' line"
fi
kill -TERM "$PC_PID"
t_reap "$PC_PID" 15 "$PC_WRAP"
t_sanitizer_clean "$T/portcullis.log"
pf_stop
echo "postfix-sentinel.sh: $(($(t_now_ms) - START_MS)) ms"
t_done
