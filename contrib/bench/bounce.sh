#!/bin/sh
# contrib/bench/bounce.sh - what a joe-job costs: portcullis' batv and bounce
# checks behind a real Postfix, refusing forged bounces
#
#   contrib/bench/bounce.sh        (as root, from anywhere; a plain -O2 build,
#                                   PORTCULLIS=/path/to/portcullis)
#
# One private Postfix (see /work/shared/notes/real-mta-testing.md) with
# smtpd_milters = portcullis (checks = batv, bounce; batv.domains =
# example.test), accepted mail discarded.  contrib/bench/bounceload.py
# sends from BENCH_THREADS (4) SMTP sessions, 10 messages each:
#  1. ordinary: BENCH_MESSAGES (2000) ordinary messages (4 KiB text);
#  2. forged: BENCH_MESSAGES forged bounces (null sender, RFC 3464 DSN of
#     a message we never sent, to an untagged address): each refused 550
#     5.7.1 after the final dot;
#  3. flood: BENCH_FLOOD (10000) forged bounces with BENCH_GENUINE (100)
#     genuine ones (to a valid BATV tag) mixed in: every forged one
#     refused, every genuine one accepted.
# 1 and 2 run twice, in the order 1 2 2 1, after a warm-up.  Every answer
# is checked (a wrong one fails the run).  Measured: wall time, msg/s, and
# the CPU time of the portcullis process per message (utime + stime from
# /proc/PID/stat).  Postfix's error tarpit (smtpd_error_sleep_time) is off
# in this instance: with it, 10 refusals per session cost 1 s each after
# the tenth, and the run would measure that.  Nothing is asserted about speed.  Bounded: everything
# runs under timeout and is stopped by the EXIT trap.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
top_srcdir=$top
: "${PORTCULLIS:=$top/build-bench-plain/milter/portcullis}"
: "${PORTCULLISCTL:=$(dirname "$PORTCULLIS")/portcullisctl}"
N=${BENCH_MESSAGES:-2000}
FLOOD=${BENCH_FLOOD:-10000}
GENUINE=${BENCH_GENUINE:-100}
THREADS=${BENCH_THREADS:-4}
CHECKS=${BENCH_CHECKS:-batv, bounce} # e.g. "batv" alone, to compare
. "$top/tests/lib.sh"
. "$top/tests/e2e/postfix-lib.sh"
PATH=$PATH:/usr/sbin:/sbin

[ -x "$PORTCULLIS" ] || { echo "bench: no portcullis at $PORTCULLIS (build it, or set PORTCULLIS)"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "bench: run as root (a private Postfix instance)"; exit 1; }
t_need postfix python3 timeout
t_init
[ -n "$T" ] && [ -d "$T" ] || exit 1
chmod 755 "$T"
mkdir -p "$T/pc"
chmod 755 "$T/pc"
printf '1 %s\n' "$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$T/pc/keys"
chmod 600 "$T/pc/keys"
{
	echo "socket = unix:$T/pc/sock"
	echo "socket_mode = 0666"
	echo "state_dir = $T/pc"
	echo "log_target = stderr"
	echo "trusted_networks ="
	echo "hostname = mx.example.test"
	echo "contact = postmaster@example.test"
	echo "checks = $CHECKS"
	echo "batv.domains = example.test"
	echo "batv.key_file = $T/pc/keys"
	echo "bounce.relays = mx.example.test"
	echo "bounce.domains = example.test"
} >"$T/portcullis.conf"
TAGGED=$("$PORTCULLISCTL" -c "$T/portcullis.conf" batv sign rcpt@example.test) || fail "batv sign"
timeout 900 "$PORTCULLIS" -f -c "$T/portcullis.conf" 2>"$T/portcullis.log" &
PC_WRAP=$!
t_at_exit "kill $PC_WRAP 2>/dev/null"
t_wait_for '[ -S "$T/pc/sock" ]' 30 || fail "portcullis did not start: $(tail -5 "$T/portcullis.log")"
PC_PID=$(pgrep -P "$PC_WRAP" -x portcullis | head -1)
[ -n "$PC_PID" ] || fail "no portcullis process"

PF=$T/postfix Q=$T/queue
mkdir -p "$PF" "$Q" "$T/data"
chown postfix "$T/data"
P1=$(t_free_port)
# Postfix tarpits a session after smtpd_soft_error_limit (10) errors
# (smtpd_error_sleep_time, 1 s per reply): a flood of refusals on few
# sessions would measure that, not the filter.  A real joe-job comes from
# many MTAs, one or a few messages per session.
pf_bench_main_cf "smtpd_milters = unix:$T/pc/sock" \
	"smtpd_error_sleep_time = 0" \
	"smtpd_soft_error_limit = 100000" \
	"smtpd_hard_error_limit = 100000" >"$PF/main.cf"
{
	echo "127.0.0.1:$P1 inet n - n - - smtpd"
	pf_services
} >"$PF/master.cf"
timeout 30 postfix -c "$PF" check >"$T/pf.out" 2>&1 || fail "postfix check: $(cat "$T/pf.out")"
timeout 30 postfix -c "$PF" start >>"$T/pf.out" 2>&1 || fail "postfix start: $(cat "$T/pf.out")"
t_at_exit "timeout 20 postfix -c '$PF' stop >/dev/null 2>&1; sleep 2"
t_wait_for 't_port_busy $P1' 15 || fail "Postfix does not listen"

cpu() { awk '{print $14 + $15}' "/proc/$PC_PID/stat"; }
HZ=$(getconf CLK_TCK)
run() { # run LABEL N_ORDINARY N_FORGED N_GENUINE
	_c0=$(cpu)
	_out=$(timeout 900 python3 "$here/bounceload.py" "$P1" "$THREADS" 10 "$2" "$3" "$4" "$TAGGED") ||
		fail "$1: wrong answers: $_out"
	_c1=$(cpu)
	_n=$(($2 + $3 + $4))
	printf '%-10s %s  portcullis CPU %d us/msg\n' "$1" "$_out" $(((_c1 - _c0) * 1000000 / HZ / _n))
}

echo "bench: portcullis $PORTCULLIS, $THREADS SMTP sessions, Postfix on $P1"
run warm-up 200 200 20 >/dev/null
run ordinary "$N" 0 0
run forged 0 "$N" 0
run forged 0 "$N" 0
run ordinary "$N" 0 0
run flood 0 "$FLOOD" "$GENUINE"
echo "portcullis log: $(grep -c 'verdict=reject.*batv.missing' "$T/portcullis.log") refusals (batv.missing)," \
	"$(grep -c 'from=<> to=<prvs=.*verdict=accept' "$T/portcullis.log") genuine bounces accepted"
t_done
