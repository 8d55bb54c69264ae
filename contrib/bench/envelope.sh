#!/bin/sh
# contrib/bench/envelope.sh - portcullis' envelope checks against the no-op
# milter, through the same Postfix, on the same messages, in one run
#
#   contrib/bench/envelope.sh      (as root, from anywhere; a plain -O2 build,
#                                   PORTCULLIS=/path/to/portcullis)
#
# One private Postfix (as clamav.sh; see tests/e2e/postfix-lib.sh) listens on
# two loopback ports, three with BENCH_BEFORE: one with smtpd_milters =
# noop-milter (contrib/bench/noop-milter.c, built here), one with portcullis
# and its default checks (whitelist, access, helo, envelope; BENCH_CHECKS
# to change), and with BENCH_BEFORE=/path/to/old/portcullis one with that
# older build and the same configuration.  Accepted mail is discarded by
# Postfix.  BENCH_MESSAGES (600) clean 4 KiB text messages, sent by
# contrib/bench/smtpload.py from BENCH_THREADS (4) SMTP sessions, 10 per
# session, each answer checked (250).  BENCH_ROUNDS (4) rounds, each filter
# once per round, the order reversed every other round (ABC, CBA, ...).
# Measured: the CPU time (utime + stime) of each filter process per message
# from /proc/PID/stat, and msg/s; printed per load, then the means, the
# ratios and the median of the per-round ratios; BENCH_STRACE=1 adds one
# load per filter under strace -f (system calls per message), BENCH_PERF=1
# one under perf record (where the CPU goes).  Nothing is asserted
# about speed.  Bounded: everything runs under timeout and is stopped by
# the EXIT trap.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
top_srcdir=$top
: "${PORTCULLIS:=$top/build-bench-plain/milter/portcullis}"
N=${BENCH_MESSAGES:-600}
THREADS=${BENCH_THREADS:-4}
ROUNDS=${BENCH_ROUNDS:-4}
CHECKS=${BENCH_CHECKS:-}
BEFORE=${BENCH_BEFORE:-}
. "$top/tests/lib.sh"
. "$top/tests/e2e/postfix-lib.sh"
PATH=$PATH:/usr/sbin:/sbin

[ -x "$PORTCULLIS" ] || { echo "bench: no portcullis at $PORTCULLIS (build it, or set PORTCULLIS)"; exit 1; }
[ -z "$BEFORE" ] || [ -x "$BEFORE" ] || { echo "bench: no portcullis at BENCH_BEFORE=$BEFORE"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "bench: run as root (a private Postfix instance)"; exit 1; }
t_need postfix python3 timeout cc
[ -f /usr/include/libmilter/mfapi.h ] || { echo "bench: libmilter-dev is needed"; exit 1; }
t_init
chmod 755 "$T"

cc -O2 -Wall -Wextra -o "$T/noop-milter" "$here/noop-milter.c" -lmilter -lpthread ||
	fail "cannot build noop-milter.c"

# --- messages: clean 4 KiB text ---------------------------------------------
mkdir -p "$T/msgs"
python3 - "$T" "$N" <<'EOF'
import random, sys
T, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(1)
words = "the of and to in is that for it as with was on be at by this had not are but from".split()
for i in range(n):
    out, k = [], 0
    while k < 4000:
        line = " ".join(rnd.choice(words) for _ in range(12))
        out.append(line); k += len(line) + 2
    h = ("From: sender@example.net\r\nTo: rcpt@example.test\r\nSubject: bench %d\r\n"
         "Message-Id: <%d.bench@example.net>\r\n\r\n" % (i, i))
    open("%s/msgs/%05d.clean" % (T, i), "wb").write((h + "\r\n".join(out) + "\r\n").encode())
EOF
[ -f "$T/msgs/00000.clean" ] || fail "could not write the messages"

# --- the filters ------------------------------------------------------------
start_pc() { # start_pc NAME BINARY: sets PID_NAME
	mkdir -p "$T/$1"
	{
		echo "socket = unix:$T/$1/sock"
		echo "socket_mode = 0666"
		echo "state_dir = $T/$1"
		echo "log_target = stderr"
		echo "trusted_networks ="
		echo "hostname = mx.example.test"
		[ -z "$CHECKS" ] || echo "checks = $CHECKS"
	} >"$T/$1.conf"
	timeout 900 "$2" -f -c "$T/$1.conf" 2>"$T/$1.log" &
	_w=$!
	t_at_exit "kill $_w 2>/dev/null"
	t_wait_for "[ -S '$T/$1/sock' ]" 30 || fail "$1 did not start: $(tail -5 "$T/$1.log")"
	eval "PID_$1=\$(pgrep -P $_w | head -1)"
}
mkdir -p "$T/noop"
timeout 900 "$T/noop-milter" -p "$T/noop/sock" 2>"$T/noop.log" &
NOOP_WRAP=$!
t_at_exit "kill $NOOP_WRAP 2>/dev/null"
t_wait_for "[ -S '$T/noop/sock' ]" 30 || fail "noop-milter did not start"
chmod 666 "$T/noop/sock"
PID_noop=$(pgrep -P "$NOOP_WRAP" | head -1)
start_pc pc "$PORTCULLIS"
FILTERS="noop pc"
if [ -n "$BEFORE" ]; then
	start_pc before "$BEFORE"
	FILTERS="noop pc before"
fi

# --- Postfix with one smtpd port per filter --------------------------------
PF=$T/postfix Q=$T/queue
mkdir -p "$PF" "$Q" "$T/data"
chown postfix "$T/data"
: >"$PF/master.cf"
for f in $FILTERS; do
	_p=$(t_free_port)
	while grep -q "^127.0.0.1:$_p " "$PF/master.cf"; do _p=$(t_free_port); done
	eval "PORT_$f=$_p"
	echo "127.0.0.1:$_p inet n - n - - smtpd -o smtpd_milters=unix:$T/$f/sock" >>"$PF/master.cf"
done
pf_services >>"$PF/master.cf"
pf_bench_main_cf >"$PF/main.cf"
timeout 30 postfix -c "$PF" check >"$T/pf.out" 2>&1 || fail "postfix check: $(cat "$T/pf.out")"
timeout 30 postfix -c "$PF" start >>"$T/pf.out" 2>&1 || fail "postfix start: $(cat "$T/pf.out")"
t_at_exit "timeout 20 postfix -c '$PF' stop >/dev/null 2>&1; sleep 2"
for f in $FILTERS; do
	eval "_p=\$PORT_$f"
	t_wait_for "t_port_busy $_p" 15 || fail "Postfix does not listen on $_p"
done

HZ=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
run() { # run ROUND FILTER
	eval "_port=\$PORT_$2 _pid=\$PID_$2"
	_c0=$(cpu "$_pid")
	_out=$(timeout 600 python3 "$here/smtpload.py" "$_port" "$T/msgs" "$THREADS" 10) ||
		fail "$2: wrong answers: $_out"
	sleep 0.2 # the last QUITs
	_c1=$(cpu "$_pid")
	_ms=$(echo "$_out" | sed -n 's/.*msgs_per_s=\([0-9.]*\).*/\1/p')
	echo "$1 $2 $_ms $((_c1 - _c0))" >>"$T/results"
	echo "$1 $2 $_ms $((_c1 - _c0))" | awk -v hz="$HZ" -v n="$N" \
		'{ printf "  round %d %-7s %7.1f msg/s  filter CPU %6.0f us/msg\n", $1, $2, $3, $4 / hz * 1e6 / n }'
}

echo "bench: $(date -u '+%Y-%m-%d %H:%M UTC'), $N clean 4 KiB messages, $THREADS SMTP sessions," \
	"$ROUNDS rounds; portcullis $PORTCULLIS${BEFORE:+, before $BEFORE}"
for f in $FILTERS; do run 0 "$f" >/dev/null; done # warm-up
: >"$T/results"
r=1
while [ $r -le "$ROUNDS" ]; do
	if [ $((r % 2)) -eq 1 ]; then order=$FILTERS; else order=$(echo "$FILTERS" | awk '{for (i = NF; i > 0; i--) printf "%s ", $i}'); fi
	for f in $order; do run $r "$f"; done
	r=$((r + 1))
done
awk -v hz="$HZ" -v n="$N" '
	function median(a, m,    i, j, x, b) {
		for (i = 1; i <= m; i++) b[i] = a[i]
		for (i = 2; i <= m; i++) { x = b[i]; for (j = i - 1; j >= 1 && b[j] > x; j--) b[j + 1] = b[j]; b[j + 1] = x }
		lo_ = b[1]; hi_ = b[m]
		return m % 2 ? b[(m + 1) / 2] : (b[m / 2] + b[m / 2 + 1]) / 2
	}
	{ c[$1, $2] = $4 / hz * 1e6 / n; s[$2] += c[$1, $2]; ms[$2] += $3; k[$2]++; if ($1 > R) R = $1 }
	END {
		printf "\nmeans over %d rounds (filter CPU per message):\n", R
		for (f in s) printf "  %-7s %7.1f msg/s  %6.0f us/msg\n", f, ms[f] / k[f], s[f] / k[f]
		split("pc noop before noop before pc", p, " ")
		for (i = 1; i <= 5; i += 2) { a = p[i]; b = p[i + 1]
			if (!(a in s) || !(b in s)) continue
			for (r = 1; r <= R; r++) x[r] = c[r, a] / c[r, b]
			m = median(x, R)
			printf "  %s/%s: %.2f (median of the per-round ratios %.2f, range %.2f-%.2f)\n",
				a, b, s[a] / s[b], m, lo_, hi_
		}
	}' "$T/results"
if [ "${BENCH_STRACE:-0}" = 1 ] && command -v strace >/dev/null; then
	# one more load per filter under strace -f: system calls per message
	# of the threads serving Postfix (the store's expiry thread and
	# libmilter's listener left out, shown apart)
	echo
	echo "strace -f, one more load each: system calls per message"
	for f in $FILTERS; do
		eval "_port=\$PORT_$f _pid=\$PID_$f"
		timeout 600 strace -f -qq -p "$_pid" -o "$T/$f.strace" 2>/dev/null &
		_s=$!
		sleep 1
		timeout 600 python3 "$here/smtpload.py" "$_port" "$T/msgs" "$THREADS" 10 >/dev/null ||
			fail "$f: wrong answers under strace"
		sleep 0.5
		kill -INT "$_s" 2>/dev/null
		wait "$_s" 2>/dev/null
		grep -v 'resumed>' "$T/$f.strace" | sed -E 's/^([0-9]+) +([a-z0-9_]+)\(.*/\1 \2/' |
			awk -v m="$N" -v name="$f" '
			NF == 2 { c[$1, $2]++; t[$1] = 1; s[$2] = 1 }
			END {
				for (x in t) if (c[x, "accept"] || c[x, "rt_sigtimedwait"] ||
				    (c[x, "poll"] == 0 && c[x, "fcntl"] > 0)) skip[x] = 1
				for (x in t) for (y in s) if (x in skip) { o[y] += c[x, y]; oall += c[x, y] }
				else { n[y] += c[x, y]; all += c[x, y] }
				printf "  %-7s %5.1f per message:", name, all / m
				for (y in n) if (n[y] / m >= 0.05) printf " %s %.2f", y, n[y] / m
				printf "\n  %-7s %5.1f per message in the other threads:", "", oall / m
				for (y in o) if (o[y] / m >= 0.05) printf " %s %.2f", y, o[y] / m
				printf "\n"
			}'
	done
	ROUNDS=$((ROUNDS + 1)) # one more accepted load each, for the log check
fi
if [ "${BENCH_PERF:-0}" = 1 ] && command -v perf >/dev/null; then
	# one more load per filter under perf record: where the filter's CPU
	# goes, by shared object and by symbol (samples per message)
	echo
	echo "perf record, one more load each: the filter's samples (0.2 ms of CPU each)"
	for f in $FILTERS; do
		eval "_port=\$PORT_$f _pid=\$PID_$f"
		timeout 600 perf record -q -F 4999 -g -p "$_pid" -o "$T/$f.perf" >/dev/null 2>&1 &
		_s=$!
		sleep 1
		timeout 600 python3 "$here/smtpload.py" "$_port" "$T/msgs" "$THREADS" 10 >/dev/null ||
			fail "$f: wrong answers under perf"
		sleep 0.5
		kill -INT "$_s" 2>/dev/null
		wait "$_s" 2>/dev/null
		echo "  $f, by object:"
		perf report -i "$T/$f.perf" --no-children --sort dso -g none 2>/dev/null |
			grep -v '^#' | grep '%' | head -8 | sed 's/^/    /'
		echo "  $f, top symbols (with what they call):"
		perf report -i "$T/$f.perf" --children --sort sym -g none 2>/dev/null |
			grep -v '^#' | grep '%' | head -25 | sed 's/^/    /'
	done
	ROUNDS=$((ROUNDS + 1))
fi
for f in pc before; do
	[ -f "$T/$f.log" ] || continue
	_n=$(grep -c ' verdict=accept ' "$T/$f.log")
	[ "$_n" -eq $(((ROUNDS + 1) * N)) ] || t_err "$f logged $_n accepted transactions, $(((ROUNDS + 1) * N)) were sent"
done
t_done
