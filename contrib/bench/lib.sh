#!/bin/sh
# contrib/bench/lib.sh - shell functions shared by run.sh and dns.sh
#
# Sourced after the caller has defined D (its temp dir), WRAPS and PIDS
# (what its trap stops), and the functions left (seconds of the time limit
# left), alive PID and die MESSAGE.

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
