#!/bin/sh
# contrib/bench/lib.sh - shell functions shared by run.sh and dns.sh
#
# Sourced by each script, which then defines D (its temp dir), START,
# BENCH_LIMIT, PIDS (the filters), WRAPS (their timeout wrappers), CLIENT
# (the running load's wrapper), die MESSAGE, and a cleanup function that
# calls stop_filters and bench_finish; bench_traps installs it.  cpu_table
# needs HZ.

alive()
{
	[ -r "/proc/$1/stat" ] || return 1
	_st=$(sed 's/^.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$_st" ] && [ "$_st" != Z ] && [ "$_st" != X ]
}

# Seconds of BENCH_LIMIT left.
left()
{
	echo $((BENCH_LIMIT - ($(date +%s) - START)))
}

# Stop the load (timeout passes TERM on to mclient) and the filters:
# SIGTERM to all at once (libmilter may take a few seconds), then wait,
# then KILL what is left, wrappers included.
stop_filters()
{
	[ -n "$CLIENT" ] && kill -TERM "$CLIENT" 2>/dev/null
	for _p in $PIDS; do
		alive "$_p" && kill -TERM "$_p" 2>/dev/null
	done
	for _p in $PIDS; do
		_n=200
		while alive "$_p" && [ $_n -gt 0 ]; do
			sleep 0.05
			_n=$((_n - 1))
		done
		alive "$_p" && kill -KILL "$_p" 2>/dev/null
	done
	for _w in $WRAPS; do
		alive "$_w" && kill -KILL "$_w" 2>/dev/null
	done
}

# bench_finish NAME RC [LOG...]: after a failure show the tails of the logs
# ($D/*.log and LOGs), remove $D (kept with BENCH_KEEP), exit RC.
bench_finish()
{
	_bn=$1 _brc=$2
	shift 2
	wait 2>/dev/null
	if [ "$_brc" -ne 0 ]; then
		for _f in "$D"/*.log "$@"; do
			[ -f "$_f" ] || continue
			echo "--- $_f (last 10 lines)" >&2
			tail -n 10 "$_f" >&2
		done
	fi
	if [ -n "${BENCH_KEEP:-}" ]; then
		echo "$_bn: kept $D" >&2
	else
		rm -rf "$D"
	fi
	exit "$_brc"
}

# cleanup on exit, and a conventional status for each signal.
bench_traps()
{
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap 'exit 129' HUP
	trap 'exit 141' PIPE
}

# Build the baseline filter and the load generator into $D.
build_tools()
{
	"$CC" -O2 -Wall -Wextra -o "$D/noop-milter" "$here/noop-milter.c" -lmilter -lpthread ||
		die "cannot build noop-milter.c"
	"$CC" -O2 -Wall -Wextra -o "$D/mclient" "$here/mclient.c" -lmilter -lpthread ||
		die "cannot build mclient.c"
}

# start NAME CMD...: run CMD under timeout with stderr in $D/NAME.log, wait
# for $D/NAME.sock; sets PID_<NAME> to the filter's own pid.
start()
{
	_n=$1
	shift
	rm -f "$D/$_n.sock"
	timeout -s KILL "$(left)" "$@" 2>"$D/$_n.log" &
	_w=$!
	WRAPS="$WRAPS $_w"
	_p=
	_i=0
	while [ $_i -lt 200 ]; do
		# The filter is the only child of timeout.
		if [ -r "/proc/$_w/task/$_w/children" ]; then
			_p=$(tr -d ' ' <"/proc/$_w/task/$_w/children")
		else
			_p=$(pgrep -P "$_w" 2>/dev/null) || _p=
		fi
		if [ -n "$_p" ] && [ -S "$D/$_n.sock" ]; then
			break
		fi
		alive "$_w" || die "$_n did not start: $(tail -n 5 "$D/$_n.log")"
		sleep 0.05
		_i=$((_i + 1))
	done
	if [ -z "$_p" ] || [ ! -S "$D/$_n.sock" ]; then
		die "$_n: no socket $D/$_n.sock after 10 s"
	fi
	PIDS="$PIDS $_p"
	eval "PID_$_n=\$_p"
}

busy_ticks()
{
	# user nice system irq softirq steal of all CPUs, in clock ticks
	awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat
}

cpu_ticks()
{
	# utime + stime: fields 14 and 15, counted after the "(comm)" field
	sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

# cpu_table RESULTS THIRD LABEL PAIRS [INDENT]: the table of server CPU per
# message for noop, pc and the filter THIRD (shown as LABEL) from the
# RESULTS lines "ROUND FILTER MESSAGES SECONDS CPU_TICKS CLIENT_US OTHERS%",
# then the ratios of the PAIRS ("a b c d e f": a/b, c/d, e/f) with the
# median and range of the per-round ratios.
cpu_table()
{
	awk -v hz="$HZ" -v third="$2" -v label="$3" -v pairs="$4" -v ind="${5:-}" '
	function median(a, m,    i, j, x, b) {
		for (i = 1; i <= m; i++) b[i] = a[i]
		for (i = 2; i <= m; i++) {
			x = b[i]
			for (j = i - 1; j >= 1 && b[j] > x; j--) b[j + 1] = b[j]
			b[j + 1] = x
		}
		lo_ = b[1]; hi_ = b[m]
		return m % 2 ? b[(m + 1) / 2] : (b[m / 2] + b[m / 2 + 1]) / 2
	}
	function title(k) { return k == "noop" ? "noop" : k == "pc" ? "portcullis" : label }
	{ k = $2; n[k] += $3; s[k] += $4; t[k] += $5; cu[k] += $6 * $3; oth += $7; nl++
	  c = $5 / hz * 1e6 / $3
	  cr[$1, k] = c
	  if ($1 > rounds) rounds = $1
	  if (!(k in lo) || c < lo[k]) lo[k] = c
	  if (!(k in hi) || c > hi[k]) hi[k] = c }
	END {
		order[1] = "noop"; order[2] = "pc"; order[3] = third
		name["noop"] = "noop (baseline)"; name["pc"] = "portcullis"; name[third] = label
		w = 18 - length(ind) / 2; wr = 28 - length(ind) / 2
		for (i = 1; i <= 3; i++) { k = order[i]
			rate[k] = n[k] / s[k]; cpu[k] = t[k] / hz * 1e6 / n[k] }
		printf "%s%-*s %8s %7s %10s %13s %10s\n", ind, w, "", "", "", "server CPU",
			"per round", "client CPU"
		printf "%s%-*s %8s %7s %10s %13s %10s\n", ind, w, "filter", "messages", "msg/s",
			"us/msg", "(min-max)", "us/msg"
		for (i = 1; i <= 3; i++) { k = order[i]
			printf "%s%-*s %8d %7.0f %10.1f %13s %10.1f\n", ind, w, name[k], n[k],
				rate[k], cpu[k], sprintf("(%.0f-%.0f)", lo[k], hi[k]), cu[k] / n[k] }
		printf "\n%s%-*s %5s %10s %10s %21s\n", ind, wr, "ratio (all rounds)", "msg/s",
			"server CPU", "extra CPU", "server CPU ratio per"
		printf "%s%-*s %5s %10s %10s %21s\n", ind, wr, "", "", "", "us/msg",
			"round: median (range)"
		split(pairs, p, " ")
		for (i = 1; i <= 5; i += 2) { a = p[i]; b = p[i + 1]
			for (r = 1; r <= rounds; r++) x[r] = cr[r, a] / cr[r, b]
			med = median(x, rounds)
			printf "%s%-*s %5.2f %10.2f %10.1f %21s\n", ind, wr, title(a) "/" title(b),
				rate[a] / rate[b], cpu[a] / cpu[b], cpu[a] - cpu[b],
				sprintf("%.2f (%.2f-%.2f)", med, lo_, hi_)
		}
		printf "\n%sbetween the loads, other processes kept the CPUs %.0f%% busy (average)%s\n",
			ind, oth / nl, (oth / nl > 5 ? ": a busy machine, the figures are noisy" : "")
	}' "$1"
}
