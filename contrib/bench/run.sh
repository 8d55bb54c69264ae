#!/bin/sh
# contrib/bench/run.sh - portcullis against a no-op milter, measured in the same run
#
#   contrib/bench/run.sh                    (from anywhere; needs cc, libmilter-dev)
#   PORTCULLIS=/path/to/portcullis BENCH_MESSAGES=50000 contrib/bench/run.sh
#
# Builds noop-milter.c (the baseline: a libmilter filter that answers
# continue to everything and negotiates the same steps as portcullis, but
# no reply-less steps: portcullis answers fewer of them, see noop-milter.c) and
# mclient.c (the MTA side of the milter protocol) with cc into a private
# temp dir, starts three filters on unix sockets in that dir:
#   noop               noop-milter
#   portcullis         the default checks (access, helo, envelope), no tables
#   portcullis+tables  the same plus access tables: cidr with 1000 networks
#                      (client), pcre with 50 regexes (helo and client
#                      name), texthash with 10000 senders (sender); no entry
#                      matches the load, so every table is searched in full
# warms each one up, then runs BENCH_ROUNDS rounds, each round the same load
# against each filter in turn, in the order ABC, CBA, ABC... (interleaved, so
# a drift of the machine - CPU boost fading, a neighbour's build - hits all
# alike).  A load is BENCH_MESSAGES messages, BENCH_PER_CONN per
# connection, from BENCH_THREADS client threads; a fraction BENCH_BAD of the
# connections say HELO localhost, which portcullis refuses at RCPT with 550.
# mclient checks every reply and fails on any unexpected one.  portcullis
# logs one line per transaction to a file (that is part of the real cost);
# the script checks afterwards that the log has exactly one line per message
# with the right verdict.
#
# Measured: wall time of the load (msg/s) and the filter process's CPU time
# (utime + stime of all its threads, from /proc/PID/stat, in clock ticks)
# before and after each load.  Printed: a table of messages, msg/s, server
# CPU us per message, client CPU us per message, the ratios over all rounds,
# and the median (and range) of the per-round server CPU ratios, which is
# the steadiest figure on a shared machine.  After each load the script
# also samples for 0.25 s how busy the CPUs are while its own processes are
# idle ("others"): other people's work on the machine makes every figure
# noisy, and the summary says so.  Nothing is asserted about speed: this is
# not a test.
#
# Bounded: every process runs under `timeout` (BENCH_LIMIT seconds in all,
# default 170), every client run under 60 s, mclient gives up after 10 s
# without a reply; the EXIT trap stops every process the script started and
# removes the temp dir (BENCH_KEEP=1 keeps it).  Only unix sockets: no
# network traffic at all.
#
# Environment: PORTCULLIS (default build-bench-plain/milter/portcullis, then
# build/milter/portcullis), CC (cc), BENCH_MESSAGES (20000),
# BENCH_PER_CONN (10), BENCH_THREADS (4), BENCH_BAD (0.2), BENCH_ROUNDS (6),
# BENCH_WARMUP (2000 messages), BENCH_LIMIT (170), BENCH_PC_CONF (more
# "key = value" lines, newline-separated, for the "portcullis" filter only,
# e.g. "metrics.listen = 127.0.0.1:9187"), BENCH_BEFORE (the path of an
# older portcullis binary: the third filter is then that build with the
# "portcullis" configuration, "before", instead of portcullis+tables, so a
# change is measured against the old code in the same interleaved rounds).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$here/lib.sh"
if [ -z "${PORTCULLIS:-}" ]; then
	PORTCULLIS=$top/build-bench-plain/milter/portcullis
	[ -x "$PORTCULLIS" ] || PORTCULLIS=$top/build/milter/portcullis
fi
: "${CC:=cc}"
: "${BENCH_MESSAGES:=20000}"
: "${BENCH_PER_CONN:=10}"
: "${BENCH_THREADS:=4}"
: "${BENCH_BAD:=0.2}"
: "${BENCH_ROUNDS:=6}"
: "${BENCH_WARMUP:=2000}"
: "${BENCH_LIMIT:=170}"

die()
{
	echo "bench: error: $*" >&2
	exit 1
}

[ -x "$PORTCULLIS" ] || die "no portcullis binary at $PORTCULLIS (set PORTCULLIS, or build build-bench-plain)"
command -v "$CC" >/dev/null 2>&1 || die "no C compiler ($CC)"
command -v timeout >/dev/null 2>&1 || die "timeout(1) is needed"
[ -f /usr/include/libmilter/mfapi.h ] || die "libmilter headers missing (apt-get install libmilter-dev)"
if grep -q __asan_init "$PORTCULLIS" 2>/dev/null; then
	echo "bench: warning: $PORTCULLIS is built with AddressSanitizer; figures will be" \
		"several times too slow (use a plain -O2 build)" >&2
fi

START=$(date +%s)
D=$(mktemp -d /tmp/pcbench.XXXXXX) || die "mktemp"
PIDS=  # the filters (signals go to them)
WRAPS= # their `timeout` wrappers
CLIENT= # the running load's `timeout` wrapper

cleanup()
{
	_rc=$?
	set +e
	trap - EXIT INT TERM HUP PIPE
	stop_filters
	bench_finish bench "$_rc"
}
bench_traps

# ---- build the two programs ------------------------------------------------
build_tools

# ---- configurations and tables -----------------------------------------------
# 1000 networks: /28s from 198.18.0.0/15 (RFC 2544 benchmark range); the
# load's clients are in 192.0.2.0/24 and 198.51.100.0/24, never listed.
awk 'BEGIN { for (i = 0; i < 1000; i++) { a = i * 16;
	printf "198.%d.%d.%d/28 REJECT listed network %d\n", 18 + int(a / 65536),
		int(a / 256) % 256, a % 256, i } }' >"$D/clients.cidr"
# 50 regexes in the style of dynamic-address lists; none matches the load.
awk 'BEGIN { for (i = 0; i < 10; i++) {
	printf "/^(dhcp|dsl|dyn|ppp|pool)[-.]?[0-9]+[-.][0-9]+\\.isp%d\\.invalid$/ REJECT dynamic %d\n", i, i
	printf "/(^|[.-])(adsl|cable|dialup|client)[-.]?[0-9]+.*\\.net%d\\.invalid$/ REJECT dialup %d\n", i, i
	printf "/^[0-9]+-[0-9]+-[0-9]+-[0-9]+\\.static%d\\.invalid$/ REJECT static %d\n", i, i
	printf "/\\.(spam|bulk|promo)[0-9]*\\.bad%d\\.invalid$/ REJECT bulk %d\n", i, i
	printf "/^unknown[-.].*\\.host%d\\.invalid$/i SCORE 2 unknown host %d\n", i, i } }' \
	>"$D/names.pcre"
# 10000 senders: addresses and whole domains, none of example.net.
awk 'BEGIN { for (i = 0; i < 10000; i++)
	if (i % 10 == 0) printf "bad%d.example.invalid REJECT domain %d\n", i, i
	else printf "spammer%d@bulk%d.example.invalid REJECT sender %d\n", i, i % 100, i }' \
	>"$D/senders.txt"

conf()
{
	# conf NAME [LINE...]
	_n=$1
	shift
	{
		echo "socket = unix:$D/$_n.sock"
		echo "state_dir = $D"
		echo "log_target = stderr"
		echo "trusted_networks ="
		echo "hostname = mx.example.test"
		echo "contact = postmaster@example.test"
		for _l in "$@"; do
			echo "$_l"
		done
	} >"$D/$_n.conf"
	"$PORTCULLIS" -t -c "$D/$_n.conf" >"$D/$_n.check" 2>&1 ||
		die "portcullis rejects $D/$_n.conf: $(cat "$D/$_n.check")"
}
conf pc ${BENCH_PC_CONF:+"$BENCH_PC_CONF"}
if [ -n "${BENCH_BEFORE:-}" ]; then
	[ -x "$BENCH_BEFORE" ] || die "no portcullis binary at BENCH_BEFORE=$BENCH_BEFORE"
	# the same settings as "portcullis", its own socket and state
	mkdir -p "$D/before.state"
	sed -e "s|^socket = .*|socket = unix:$D/tables.sock|" \
		-e "s|^state_dir = .*|state_dir = $D/before.state|" "$D/pc.conf" >"$D/tables.conf"
	"$BENCH_BEFORE" -t -c "$D/tables.conf" >"$D/tables.check" 2>&1 ||
		die "$BENCH_BEFORE rejects $D/tables.conf: $(cat "$D/tables.check")"
	THIRD=$BENCH_BEFORE THIRD_LABEL=before
else
	conf tables \
		"access.client = cidr:$D/clients.cidr" \
		"access.client_name = pcre:$D/names.pcre" \
		"access.helo = pcre:$D/names.pcre" \
		"access.sender = texthash:$D/senders.txt"
	THIRD=$PORTCULLIS THIRD_LABEL=portcullis+tables
fi

# ---- start the filters ---------------------------------------------------
start noop "$D/noop-milter" -p "$D/noop.sock"
start pc "$PORTCULLIS" -f -c "$D/pc.conf"
start tables "$THIRD" -f -c "$D/tables.conf"

HZ=$(getconf CLK_TCK)
NCPU=$(getconf _NPROCESSORS_ONLN)



# load NAME MESSAGES [mclient options]: one client run; appends
# "ROUND NAME msgs seconds server_ticks client_us_per_msg" to $D/results.
load()
{
	_n=$1 _m=$2
	shift 2
	eval "_p=\$PID_$_n"
	alive "$_p" || die "$_n is not running"
	[ "$(left)" -gt 10 ] || die "out of time (BENCH_LIMIT=$BENCH_LIMIT s)"
	_c0=$(cpu_ticks "$_p")
	_t=$(left)
	[ "$_t" -lt 60 ] || _t=60
	# In the background and waited for, so that a signal to this script
	# is handled at once (the trap stops the client too).
	timeout -s KILL "$_t" "$D/mclient" -p "$D/$_n.sock" -n "$_m" -m "$BENCH_PER_CONN" \
		-t "$BENCH_THREADS" -b "$BENCH_BAD" -l "$_n" "$@" >"$D/out" 2>"$D/err" &
	CLIENT=$!
	if ! wait "$CLIENT"; then
		cat "$D/out" "$D/err" >&2
		die "the load against $_n failed"
	fi
	CLIENT=
	# libmilter ends a connection's thread after QUIT: let the last ones
	# finish before reading the CPU time (an idle filter uses none).
	sleep 0.2
	_c1=$(cpu_ticks "$_p")
	alive "$_p" || die "$_n died during the load"
	_s=$(sed -n 's/.* seconds=\([0-9.]*\).*/\1/p' "$D/out")
	_u=$(sed -n 's/.* client_cpu_us_per_msg=\([0-9.]*\).*/\1/p' "$D/out")
	# Others: how busy the machine is while ours are idle (other people's
	# builds and tests share these CPUs), in 0.25 s after each load.
	_b0=$(busy_ticks)
	_w0=$(date +%s%N)
	sleep 0.25
	_b1=$(busy_ticks)
	_w1=$(date +%s%N)
	_o=$(echo "$((_b1 - _b0)) $((_w1 - _w0))" | awk -v hz="$HZ" -v ncpu="$NCPU" \
		'{ printf "%.0f", 100 * $1 / hz / ($2 / 1e9 * ncpu) }')
	echo "$r $_n $_m $_s $((_c1 - _c0)) $_u $_o" >>"$D/results"
	if [ -n "${BENCH_VERBOSE:-}" ]; then
		echo "  $(cat "$D/out") others=$_o%"
	else
		echo "$_n $_m $_s $((_c1 - _c0)) $_u $_o" | awk -v hz="$HZ" '{
			printf "  %-7s %6d msgs %6.3f s %6.0f msg/s  server CPU %6.1f us/msg" \
				"  client CPU %5.1f us/msg  others %3d%%\n", $1, $2, $3,
				$2 / $3, $4 / hz * 1e6 / $2, $5, $6 }'
	fi
}

echo "bench: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs," \
	"$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
echo "bench: $("$PORTCULLIS" -V 2>&1 | head -n 1) ($PORTCULLIS)"
[ -z "${BENCH_BEFORE:-}" ] || echo "bench: before: $("$BENCH_BEFORE" -V 2>&1 | head -n 1) ($BENCH_BEFORE)"
echo "bench: $BENCH_ROUNDS rounds of $BENCH_MESSAGES messages," \
	"$BENCH_PER_CONN per connection, $BENCH_THREADS client threads," \
	"bad-HELO fraction $BENCH_BAD; CLK_TCK=$HZ"
_b0=$(busy_ticks)
sleep 1
_b1=$(busy_ticks)
_busy=$(((_b1 - _b0) * 100 / HZ / NCPU))
if [ "$_busy" -gt 10 ]; then
	echo "bench: warning: other processes keep the CPUs ${_busy}% busy; the figures" \
		"will be noisy" >&2
fi
echo "bench: warm-up, $BENCH_WARMUP messages each"
: >"$D/results"
r=0
load noop "$BENCH_WARMUP" -N
load pc "$BENCH_WARMUP"
load tables "$BENCH_WARMUP"
: >"$D/results"
r=1
while [ $r -le "$BENCH_ROUNDS" ]; do
	# ABC, CBA, ABC...: a machine that speeds up or slows down during a
	# round favours no filter over the rounds.
	if [ $((r % 2)) -eq 1 ]; then
		echo "bench: round $r"
		load noop "$BENCH_MESSAGES" -N
		load pc "$BENCH_MESSAGES"
		load tables "$BENCH_MESSAGES"
	else
		echo "bench: round $r (reversed)"
		load tables "$BENCH_MESSAGES"
		load pc "$BENCH_MESSAGES"
		load noop "$BENCH_MESSAGES" -N
	fi
	r=$((r + 1))
done

# ---- the log must have one line per transaction, with the right verdict ---
total=$((BENCH_WARMUP + BENCH_ROUNDS * BENCH_MESSAGES))
for n in pc tables; do
	# (the verify check's probe lines are not transactions)
	lines=$(grep ' ref=' "$D/$n.log" | grep -c -v ' ref=[^ ]* verify: ' || true)
	acc=$(grep -c ' verdict=accept ' "$D/$n.log" || true)
	rej=$(grep ' ref=' "$D/$n.log" | grep -c ' verdict=reject .*helo.localhost' || true)
	[ "$lines" -eq "$total" ] ||
		die "$n logged $lines transactions, $total were sent"
	[ $((acc + rej)) -eq "$total" ] ||
		die "$n logged $acc accepted + $rej refused (helo.localhost) of $total"
	# The one expected warning: we run as root without `user =`.
	if grep -v 'warning: running as root' "$D/$n.log" | grep -q ': warning: \|: error: '; then
		grep -v 'warning: running as root' "$D/$n.log" |
			grep ': warning: \|: error: ' | head -n 5 >&2
		die "$n logged warnings or errors"
	fi
done
echo "bench: logs ok: one line per transaction ($total each), verdicts as expected"

# ---- the table ------------------------------------------------------------
echo
cpu_table "$D/results" tables "$THIRD_LABEL" "pc noop tables noop tables pc"
echo
echo "bench: done in $(($(date +%s) - START)) s"
