#!/bin/sh
# tests/store-share.sh - the daemon and portcullisctl on the same TDB files,
# each killed with SIGKILL while the other writes
#
# The daemon greylists a stream of new triplets (miltertest client: each
# one a write to greylist.tdb and its count record) while portcullisctl
# writes the same greylist.tdb (`load` of 200,000 records, normal writes)
# and whitelist.tdb (`whitelist add`, durable writes: TDB transactions).
# 1. portcullisctl is killed (SIGKILL) in the middle of a load, three
#    times, and in the middle of a stream of whitelist adds: every
#    transaction the daemon answers meanwhile and afterwards is a normal
#    greylisting (451 4.7.1, never 451 4.3.0), and the next portcullisctl
#    commands (load, whitelist add, greylist list, stats) work.
# 2. the daemon is killed (SIGKILL) while portcullisctl loads (six, one
#    after the other) and a stream of whitelist adds run: all finish and
#    succeed; a new daemon on the same files starts and greylists
#    normally.
# Nothing may hang: every command is bounded by `timeout` (a lock left
# behind by a killed process would show as a timeout).  A killed process
# is no damage: no file is moved aside, no store error is logged.  The
# lock mode (fcntl) is in the daemon's start-up line and in
# `portcullisctl stats`.
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
. "$top_srcdir/tests/lib.sh"

if [ -z "$MILTERTEST" ] || ! command -v perl >/dev/null 2>&1; then
	echo "SKIP: no miltertest (or perl)"
	exit 77
fi
t_init
work=$T
state="$work/state"
mkdir "$state"
pass()
{
	echo "ok: $*"
}

cat >"$work/client.lua" <<'EOL'
-- one transaction through the raw milter client; prints "STEP CODE DATA"
local t = dofile(libdir .. "/lib.lua")
local steps = { { "conn", "mx.example.net", ip }, { "helo", "mx.example.net" },
	{ "mail", from }, { "rcpt", "<r@example.test>" }, { "abort" }, { "quit" } }
local res = assert(t.raw(steps))
for _, e in ipairs(res) do
	print(e.cmd .. " " .. e.code .. " " .. e.data)
end
EOL
# (tests/milter/lib.lua wants the daemon's config at $work/portcullis.conf)
t_conf "$work/portcullis.conf" "state_dir = $state" "checks = greylist"
CONF=$work/portcullis.conf

# a dump of N greylist records (portcullisctl load): dumpfile FILE N TAG
dumpfile()
{
	awk -v n="$2" -v tag="$3" 'BEGIN {
		for (i = 0; i < n; i++)
			printf "greylist\tip:198.51.100.0/24 %s%d@example.net r@example.test\t" \
			    "2037-02-01T00:00:00Z\tflags=-\tpasses=0\tdefers=1\t" \
			    "first=2027-01-15T07:58:00Z\tlast=2027-01-15T07:59:00Z\n", tag, i
	}' >"$1"
}
# big enough that a load still runs when it (or the daemon) is killed
dumpfile "$work/big.dump" 200000 a
dumpfile "$work/small.dump" 50 b

seq=0
# txn: one new triplet through the daemon; 0 when it was greylisted
# (451 4.7.1), else 1 with the answer in $TX_OUT
txn()
{
	seq=$((seq + 1))
	TX_OUT=$(timeout 30 "$MILTERTEST" -D "dir=$work" -D "portcullis=$PORTCULLIS" \
		-D "libdir=$top_srcdir/tests/milter" -D "ip=192.0.2.$((seq % 250 + 1))" \
		-D "from=<s$seq@example.org>" -s "$work/client.lua" 2>&1)
	echo "$TX_OUT" | grep -q "^R .*451 4.7.1 Greylisted"
}

# traffic N - OUT: N transactions (new triplets: numbered from 1000 x the
# round) in the background, "ok"/"bad ANSWER" lines into OUT; $TRAFFIC is
# its pid
round=0
traffic()
{
	round=$((round + 1))
	(
		_k=0
		while [ $_k -lt "$1" ]; do
			seq=$((round * 1000 + _k))
			if txn; then
				echo ok
			else
				echo "bad $(echo "$TX_OUT" | tr '\n' ' ' | cut -c1-200)"
			fi
			_k=$((_k + 1))
		done >"$3"
	) &
	TRAFFIC=$!
}

# wlstream N OUT: N whitelist adds (durable writes) in the background;
# $WLSTREAM is its pid, OUT gets the exit status of each
wlstream()
{
	(
		_k=0
		while [ $_k -lt "$1" ]; do
			timeout 30 "$PORTCULLISCTL" -c "$CONF" whitelist add sender "w$2x$_k@example.com" \
				>/dev/null 2>&1
			echo $?
			_k=$((_k + 1))
		done >"$3"
	) &
	WLSTREAM=$!
}

# checkall WHAT: after a kill, everything works and nothing hangs
checkall()
{
	_n=0
	while [ $_n -lt 3 ]; do
		txn || t_err "$1: the daemon does not greylist normally: $TX_OUT"
		_n=$((_n + 1))
	done
	timeout 30 "$PORTCULLISCTL" -c "$CONF" load "$work/small.dump" >"$work/ctl.out" 2>&1 ||
		t_err "$1: portcullisctl load failed or hung: $(cat "$work/ctl.out")"
	timeout 30 "$PORTCULLISCTL" -c "$CONF" whitelist add sender "after$seq@example.com" \
		>"$work/ctl.out" 2>&1 || t_err "$1: whitelist add failed or hung: $(cat "$work/ctl.out")"
	timeout 30 "$PORTCULLISCTL" -c "$CONF" greylist list >"$work/list.out" 2>&1 ||
		t_err "$1: greylist list failed or hung: $(tail -n 3 "$work/list.out")"
	grep -q "b49@example.net" "$work/list.out" || t_err "$1: greylist list misses the record just loaded"
	timeout 30 "$PORTCULLISCTL" -c "$CONF" stats >"$work/stats.out" 2>&1 ||
		t_err "$1: stats failed or hung: $(cat "$work/stats.out")"
}

t_start "$CONF" "$work/daemon.log"
dpid=$T_PID
grep -q "store: TDB files in $state, locking fcntl" "$work/daemon.log" ||
	t_err "no lock mode in the start-up lines: $(head -n 5 "$work/daemon.log")"
txn || fail "the daemon does not greylist: $TX_OUT"

# --- 1. portcullisctl killed while the daemon writes --------------------------
killed=0
for delay in 0.1 0.3 0.6; do
	traffic 15 - "$work/traffic.out"
	timeout 60 "$PORTCULLISCTL" -c "$CONF" load "$work/big.dump" >/dev/null 2>&1 &
	cpid=$!
	sleep "$delay"
	# the pid of portcullisctl itself, not of timeout
	ctl=$(pgrep -P "$cpid" | head -n 1)
	kill -KILL "${ctl:-$cpid}" 2>/dev/null
	wait "$cpid" 2>/dev/null
	# timeout says 137 when its child died of SIGKILL
	[ $? -eq 137 ] && killed=$((killed + 1))
	t_wait_exit "$TRAFFIC" 120 || t_err "traffic still running after 120 s (a hang?)"
	wait "$TRAFFIC" 2>/dev/null
	bad=$(grep -c -v '^ok$' "$work/traffic.out")
	[ "$bad" -eq 0 ] || t_err "load killed after ${delay}s: $bad transactions not greylisted: $(grep -v '^ok$' "$work/traffic.out" | head -n 2)"
	[ "$(wc -l <"$work/traffic.out")" -eq 15 ] || t_err "load killed after ${delay}s: $(wc -l <"$work/traffic.out") of 15 transactions"
	checkall "load killed after ${delay}s"
	[ "$T_FAILS" -eq 0 ] && pass "portcullisctl load killed after ${delay}s while the daemon wrote: 15 transactions greylisted, load/whitelist add/list/stats work"
done
[ "$killed" -ge 1 ] || t_err "no load was still running when killed: nothing tested"
# killed in the middle of durable writes (TDB transactions)
traffic 10 - "$work/traffic.out"
wlstream 40 k "$work/wl.out"
sleep 0.5
# three kills, looked for every 0.1 s for up to 10 s while the adds run
# (on a loaded machine the first add may start late)
kills=0
for i in $(seq 1 100); do
	# portcullisctl itself (its command line starts with its path), not
	# the timeout around it
	ctl=$(pgrep -f "^$PORTCULLISCTL -c $CONF whitelist add" | head -n 1)
	if [ -n "$ctl" ] && kill -KILL "$ctl" 2>/dev/null; then
		kills=$((kills + 1))
		[ "$kills" -ge 3 ] && break
		sleep 0.2
	fi
	kill -0 "$WLSTREAM" 2>/dev/null || break
	sleep 0.1
done
t_wait_exit "$WLSTREAM" 120 || t_err "whitelist adds still running after 120 s (a hang?)"
wait "$WLSTREAM" 2>/dev/null
t_wait_exit "$TRAFFIC" 120 || t_err "traffic still running after 120 s (a hang?)"
wait "$TRAFFIC" 2>/dev/null
grep -q '^124$' "$work/wl.out" && t_err "a whitelist add timed out (hung on a lock?)"
grep -q '^137$' "$work/wl.out" || t_err "no whitelist add was killed: nothing tested"
bad=$(grep -c -v '^ok$' "$work/traffic.out")
[ "$bad" -eq 0 ] || t_err "whitelist add killed: $bad transactions not greylisted"
checkall "whitelist add killed"
[ "$T_FAILS" -eq 0 ] &&
	pass "portcullisctl whitelist add killed while adding ($(grep -c -v '^0$' "$work/wl.out") of 40 killed) while the daemon wrote: all works"

# --- 2. the daemon killed while portcullisctl writes --------------------------
for delay in 0.2 0.5; do
	traffic 200 - "$work/traffic.out"
	# loads one after the other (whatever the speed of the machine, one
	# runs when the daemon is killed), their exit statuses into loads.out
	(
		for _k in 1 2 3 4 5 6; do
			timeout 120 "$PORTCULLISCTL" -c "$CONF" load "$work/big.dump" >"$work/load.out" 2>&1
			echo $?
		done >"$work/loads.out"
	) &
	lpid=$!
	wlstream 20 "d$delay" "$work/wl.out"
	sleep "$delay"
	t_alive "$lpid" || t_err "daemon kill after ${delay}s: the loads were over already"
	kill -KILL "$dpid"
	t_wait_exit "$dpid" 10 || t_err "the daemon survived SIGKILL?"
	t_wait_exit "$lpid" 600 || t_err "portcullisctl loads still running after 600 s (a hang?)"
	wait "$lpid"
	[ "$(grep -c '^0$' "$work/loads.out")" -eq 6 ] ||
		t_err "daemon killed after ${delay}s: portcullisctl load exit statuses $(tr '\n' ' ' <"$work/loads.out"): $(tail -n 3 "$work/load.out")"
	t_wait_exit "$WLSTREAM" 120 || t_err "whitelist adds still running after 120 s (a hang?)"
	wait "$WLSTREAM" 2>/dev/null
	n=$(grep -c -v '^0$' "$work/wl.out")
	[ "$n" -eq 0 ] || t_err "daemon killed after ${delay}s: $n of 20 whitelist adds failed: $(sort "$work/wl.out" | uniq -c | tr '\n' ' ')"
	t_wait_exit "$TRAFFIC" 120 || t_err "traffic still running after 120 s"
	wait "$TRAFFIC" 2>/dev/null
	t_start "$CONF" "$work/daemon2.log"
	dpid=$T_PID
	cat "$work/daemon2.log" >>"$work/daemon.log"
	checkall "daemon killed after ${delay}s"
	[ "$T_FAILS" -eq 0 ] && pass "daemon killed after ${delay}s while portcullisctl wrote: 6 loads and 20 whitelist adds done, a new daemon greylists, all works"
done

grep -q "^store.locking fcntl$" "$work/stats.out" ||
	t_err "portcullisctl stats does not say the lock mode: $(cat "$work/stats.out")"
n=$(ls "$state" | grep -c "corrupt-")
[ "$n" -eq 0 ] || t_err "$n files moved aside after the kills: $(ls "$state")"
n=$(grep -c "error: store" "$work/daemon.log")
[ "$n" -eq 0 ] || t_err "store errors logged: $(grep "error: store" "$work/daemon.log" | head -n 3)"
t_stop "$dpid"
t_sanitizer_clean "$work/daemon.log"
t_sanitizer_clean "$work/daemon2.log"
t_done
