#!/bin/sh
# contrib/bench/envelope-profile.sh - where portcullis' CPU per message goes
# against the no-op milter, on the same mclient load (no MTA)
#
#   contrib/bench/envelope-profile.sh    (needs valgrind, cc, libmilter-dev;
#                                         strace optional)
#
# Builds noop-milter.c and mclient.c (as run.sh does), then for each filter
# - noop-milter, portcullis (PORTCULLIS, default build-bench-plain) with its
# default checks, and with BENCH_BEFORE=/path/to/old/portcullis that build
# with the same configuration:
#  1. valgrind --tool=callgrind: PROFILE_WARMUP (200) messages, counters
#     zeroed, PROFILE_MESSAGES (2000) messages (10 per connection, 2 client
#     threads, 20 % of the connections refused at RCPT for HELO localhost),
#     dump.  Instruction counts (Ir) are deterministic: printed per message,
#     in all and without the store's background expiry thread (lib/maint.c,
#     which runs ten times a second whatever the load, so its share depends
#     on how long the run takes), then by part (inclusive Ir of the named
#     functions, per message);
#  2. strace -f (when installed): system calls per message of the threads
#     that serve the MTA connections (the expiry thread and libmilter's
#     listener left out), by call.
# Everything runs under timeout; temp files in a private folder removed at
# the end (PROFILE_KEEP=1 keeps it, with the callgrind files).  Nothing is
# asserted about speed.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
: "${PORTCULLIS:=$top/build-bench-plain/milter/portcullis}"
: "${CC:=cc}"
: "${PROFILE_WARMUP:=200}"
: "${PROFILE_MESSAGES:=2000}"
BEFORE=${BENCH_BEFORE:-}

die()
{
	echo "profile: error: $*" >&2
	exit 1
}
[ -x "$PORTCULLIS" ] || die "no portcullis binary at $PORTCULLIS"
[ -z "$BEFORE" ] || [ -x "$BEFORE" ] || die "no portcullis binary at BENCH_BEFORE=$BEFORE"
command -v valgrind >/dev/null 2>&1 || die "valgrind is needed"
command -v callgrind_annotate >/dev/null 2>&1 || die "callgrind_annotate is needed"
D=$(mktemp -d /tmp/pcprof.XXXXXX) || die "mktemp"
WRAP=
cleanup()
{
	[ -n "$WRAP" ] && kill -TERM "$WRAP" 2>/dev/null
	wait 2>/dev/null
	if [ -n "${PROFILE_KEEP:-}" ]; then
		echo "profile: kept $D" >&2
	else
		rm -rf "$D"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$CC" -O2 -g -Wall -Wextra -o "$D/noop-milter" "$here/noop-milter.c" -lmilter -lpthread ||
	die "cannot build noop-milter.c"
"$CC" -O2 -Wall -Wextra -o "$D/mclient" "$here/mclient.c" -lmilter -lpthread ||
	die "cannot build mclient.c"

conf()
{ # conf NAME: a configuration with portcullis' default checks
	mkdir -p "$D/$1.state"
	cat >"$D/$1.conf" <<EOF
socket = unix:$D/$1.sock
state_dir = $D/$1.state
log_target = stderr
trusted_networks =
hostname = mx.example.test
contact = postmaster@example.test
EOF
}

# start NAME CMD...: CMD under timeout, stderr in $D/NAME.log; sets PID
start()
{
	_n=$1
	shift
	rm -f "$D/$_n.sock"
	timeout -s KILL 900 "$@" 2>"$D/$_n.log" &
	WRAP=$!
	_i=0
	while [ $_i -lt 600 ] && ! [ -S "$D/$_n.sock" ]; do
		sleep 0.1
		_i=$((_i + 1))
	done
	[ -S "$D/$_n.sock" ] || die "$_n did not start: $(tail -n 5 "$D/$_n.log")"
	PID=$(pgrep -P "$WRAP" | head -n 1)
	[ -n "$PID" ] || die "$_n: no process"
}

stop()
{
	kill -TERM "$PID" 2>/dev/null || true
	wait "$WRAP" 2>/dev/null || true
	WRAP=
}

load()
{ # load NAME MESSAGES [-N]
	# shellcheck disable=SC2086
	timeout 600 "$D/mclient" -p "$D/$1.sock" -n "$2" -m 10 -t 2 -b 0.2 -q ${3:-} \
		>"$D/$1.mclient" 2>&1 || die "the load against $1 failed: $(cat "$D/$1.mclient")"
}

# The parts: a label and an extended regex of functions that do not call
# one another; the row is the sum of their inclusive Ir (the rows overlap:
# a function's row includes what it calls, e.g. the log line includes its
# write and the refs kept for explain)
PARTS='libmilter_(mi_engine) mi_engine
our_callbacks_(cb_*) cb_[a-z]+
log_line_(log_txn) log_txn
log_write_(log_msg+log_str) (log_msg|log_str)
refs_for_explain_(store_put) store_put
reference_ids_(engine_make_ref) engine_make_ref
whitelist_(wl_*) wl_[a-z]+
access+helo+envelope_hooks (access_(connect|helo|mail|rcpt)|helo_hook|helo_mail|envelope_mail|envelope_rcpt)
address_parsing_(addr_parse) addr_parse
metrics_(metrics_*) metrics_[a-z_]+
clock_reads_(clock_gettime) clock_gettime
log_text_encoding_(enc_log) enc_log
calloc calloc
malloc+realloc+free (malloc|realloc|free)
store_expiry_thread_(maint_thread) maint_thread'

profile()
{ # profile NAME NFLAG CMD...: NFLAG is -N for the no-op filter, else ""
	_n=$1 _nf=$2
	shift 2
	_f=$D/callgrind.$_n
	start "$_n" valgrind --tool=callgrind --callgrind-out-file="$_f.%p" "$@"
	load "$_n" "$PROFILE_WARMUP" $_nf
	callgrind_control -z "$PID" >/dev/null
	load "$_n" "$PROFILE_MESSAGES" $_nf
	sleep 1
	callgrind_control -d "$PID" >/dev/null
	stop
	_out=$(ls "$_f".*.1 2>/dev/null | head -n 1)
	[ -n "$_out" ] || die "no callgrind dump for $_n"
	callgrind_annotate --inclusive=yes --threshold=100 "$_out" >"$D/$_n.incl" 2>/dev/null
	echo "$PARTS" | while read -r _label _re; do
		# the matching functions' lines ("N (P%)  file:function
		# [object]"), clones (.part.0, @@GLIBC...) included, recursive
		# entries ('2) not
		_v=$(grep -E "^ *[0-9,]+ +\([ 0-9.]+%\) +[^ ]*:$_re(\.[a-z0-9.]+|@@?[A-Z_0-9.]+)? " \
			"$D/$_n.incl" | awk '{ gsub(",", "", $1); m += $1 } END { printf "%.0f\n", m }')
		echo "$_label $_v"
	done >"$D/$_n.parts"
	sed -n 's/^summary: //p' "$_out" >"$D/$_n.total"
}

conf pc
[ -z "$BEFORE" ] || conf before
NAMES="noop pc"
[ -z "$BEFORE" ] || NAMES="noop pc before"
echo "profile: callgrind, $PROFILE_MESSAGES messages after $PROFILE_WARMUP (10 per connection," \
	"2 client threads, 20 % refused at RCPT)"
for n in $NAMES; do
	case $n in
	noop) profile noop -N "$D/noop-milter" -p "$D/noop.sock" ;;
	pc) profile pc "" "$PORTCULLIS" -f -c "$D/pc.conf" ;;
	before) profile before "" "$BEFORE" -f -c "$D/before.conf" ;;
	esac
done

# The table: Ir per message
{
	for n in $NAMES; do
		echo "total $n $(cat "$D/$n.total")"
		while read -r _l _v; do echo "part $n $_l $_v"; done <"$D/$n.parts"
	done
} | awk -v m="$PROFILE_MESSAGES" -v names="$NAMES" '
	$1 == "total" { tot[$2] = $3 }
	$1 == "part" { v[$3, $2] = $4; if (!($3 in seen)) { seen[$3] = 1; order[++np] = $3 } }
	END {
		k = split(names, nm, " ")
		printf "\n%-40s", "Ir per message"
		for (i = 1; i <= k; i++) printf " %12s", nm[i]
		printf "\n%-40s", "all threads"
		for (i = 1; i <= k; i++) printf " %12.0f", tot[nm[i]] / m
		printf "\n%-40s", "without the store expiry thread"
		for (i = 1; i <= k; i++) printf " %12.0f", (tot[nm[i]] - v["store_expiry_thread_(maint_thread)", nm[i]]) / m
		printf "\n%-40s", "libmilter itself (mi_engine - cb_*)"
		for (i = 1; i <= k; i++) printf " %12.0f", (v["libmilter_(mi_engine)", nm[i]] - v["our_callbacks_(cb_*)", nm[i]]) / m
		printf "\n  of which (inclusive):\n"
		for (j = 1; j <= np; j++) {
			printf "  %-38s", order[j]
			for (i = 1; i <= k; i++) printf " %12.0f", v[order[j], nm[i]] / m
			printf "\n"
		}
	}'

# System calls per message of the connection threads
if command -v strace >/dev/null 2>&1; then
	echo
	echo "profile: strace -f, system calls per message of the threads serving connections" \
		"(expiry thread and listener left out)"
	for n in $NAMES; do
		case $n in
		noop) start noop "$D/noop-milter" -p "$D/noop.sock" ;;
		pc) start pc "$PORTCULLIS" -f -c "$D/pc.conf" ;;
		before) start before "$BEFORE" -f -c "$D/before.conf" ;;
		esac
		load "$n" "$PROFILE_WARMUP" $([ "$n" = noop ] && echo -N)
		timeout 300 strace -f -qq -p "$PID" -o "$D/$n.strace" 2>/dev/null &
		_s=$!
		sleep 1
		load "$n" "$PROFILE_MESSAGES" $([ "$n" = noop ] && echo -N)
		sleep 0.5
		kill -INT "$_s" 2>/dev/null || true
		wait "$_s" 2>/dev/null || true
		stop
		# per thread and call; a thread that accepts (the listener) or
		# never polls but takes file locks (the expiry thread) is left out
		grep -v 'resumed>' "$D/$n.strace" | sed -E 's/^([0-9]+) +([a-z0-9_]+)\(.*/\1 \2/' |
			awk -v m="$PROFILE_MESSAGES" -v name="$n" '
			NF == 2 { c[$1, $2]++; t[$1] = 1; s[$2] = 1 }
			END {
				for (x in t) if (c[x, "accept"] || c[x, "rt_sigtimedwait"] ||
				    (c[x, "poll"] == 0 && c[x, "fcntl"] > 0)) skip[x] = 1
				for (x in t) if (!(x in skip)) for (y in s) { n[y] += c[x, y]; all += c[x, y] }
				printf "  %-7s %5.1f per message:", name, all / m
				for (y in n) if (n[y] / m >= 0.05) printf " %s %.2f", y, n[y] / m
				printf "\n"
			}'
	done
fi
