#!/bin/sh
# contrib/bench/compare.sh - one command: portcullis against the peers that
# are there, on this host, through one private Postfix, and one table
#
#   contrib/bench/compare.sh      (as root; a plain -O2 build, see README.md;
#                                  PORTCULLIS=/path/to/portcullis)
#
# Each line of the table is one run of a driver, which measures portcullis
# and its peer in interleaved rounds (AB BA AB ...) on the same messages
# through the same Postfix, and reports the CPU time of each filter's
# processes per message (median, min and max over the rounds), messages per
# second, and the median and range of the per-round CPU ratio:
#   clamav.sh BENCH_PEER=noop      envelope checks (access helo envelope)
#                                  against contrib/bench/noop-milter.c
#   clamav.sh BENCH_PEER=postgrey  greylist against postgrey as a policy
#                                  service, triplets known and passing
#                                  (postgrey installed, or BENCH_INSTALL=1)
#   clamav.sh BENCH_PEER=clamav    COMPARE_CHECKS (default "access helo
#                                  envelope attachments clamav") against
#                                  clamav-milter + clamd: 4 KB, 6 KB MIME,
#                                  100 KB; 4 KB with 1, 10, 100 recipients;
#                                  a base64 attachment of 4 KB, 100 KB, 1 MB,
#                                  10 MB; memory (VmRSS, Pss) with 200 SMTP
#                                  sessions held open at once
#   clamav.sh BENCH_DNS=1          "everything": every check of portcullis
#                                  (access helo envelope dnsbl rhsbl
#                                  sender_domain client_dns spf greylist
#                                  attachments clamav; a private NSD, XCLIENT
#                                  clients that pass them all, known greylist
#                                  triplets) against clamav-milter + clamd
#                                  alone: 4 KB, 6 KB MIME, 100 KB
#   rspamd.sh                      (when there) the DNS checks against rspamd
#   run.sh, avpath.sh              no MTA: envelope checks against the no-op
#                                  milter (mclient), the antivirus path alone
# A driver whose peer is missing exits 77 and its line says "not measured".
# COMPARE_QUICK=1: fewer messages and 2 rounds (a few minutes); else 3
# rounds.  COMPARE_ONLY="noop postgrey clamav everything sizes rcpts memory
# rspamd nomta" (the default: all) picks parts.  Prints the details of each driver,
# then the table, the total run time and the machine's load.  Nothing is
# asserted about speed; each driver checks every SMTP answer.  Every driver
# runs under timeout; an interrupt stops the running one (which cleans up
# after itself) and removes the temp folder.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
: "${PORTCULLIS:=$top/build-bench-plain/milter/portcullis}"
export PORTCULLIS
CHECKS=${COMPARE_CHECKS:-access helo envelope attachments clamav}
ONLY=${COMPARE_ONLY:-noop postgrey clamav everything sizes rcpts memory rspamd nomta}
[ -x "$PORTCULLIS" ] || { echo "compare: no portcullis at $PORTCULLIS (build it, or set PORTCULLIS)"; exit 1; }
OUT=$(mktemp -d /tmp/pc-compare.XXXXXX) || exit 1
CHILD=
stop_child()
{
	[ -n "$CHILD" ] && kill -TERM "$CHILD" 2>/dev/null && wait "$CHILD" 2>/dev/null
	CHILD=
}
trap 'stop_child; rm -rf "$OUT"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
START=$(date +%s)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
if [ "${COMPARE_QUICK:-0}" = 1 ]; then
	ROUNDS=2 N_ENV=1500 N_SMALL=200 N_BIG=100 N_1M=20 N_10M=4
	RUN_ENV="BENCH_MESSAGES=4000 BENCH_ROUNDS=2 BENCH_WARMUP=500" AV_N=100
else
	ROUNDS=3 N_ENV=3000 N_SMALL=600 N_BIG=300 N_1M=40 N_10M=8
	RUN_ENV="" AV_N=300
fi
# the packages clamav.sh fetches, once for all its runs
export BENCH_PKGDIR="$OUT/pkg"
mkdir -p "$BENCH_PKGDIR"
rows=$OUT/rows
mems=$OUT/mems
notes=$OUT/notes
: >"$rows"
: >"$mems"
: >"$notes"

want() { case " $ONLY " in *" $1 "*) return 0 ;; esac; return 1; }

# drive LOG LIMIT CMD...: CMD under timeout (LIMIT seconds), in the
# background so that an interrupt reaches this script; its output in LOG;
# returns its exit status
drive()
{
	_log=$1
	shift
	timeout "$@" >"$_log" 2>&1 &
	CHILD=$!
	wait "$CHILD"
	_rc=$?
	CHILD=
	return $_rc
}

# through WORK NAME [VAR=VALUE...]: one clamav.sh run (BENCH_* settings as
# arguments); its "row:" and "mem:" lines go to the table, or a line saying
# why not
through()
{
	_work=$1 _name=$2
	shift 2
	echo "compare: $_work (clamav.sh $*)"
	drive "$OUT/$_name.txt" 3600 env BENCH_WORK="$_work" BENCH_ROUNDS=$ROUNDS \
		BENCH_PC_TMPDIR=default "$@" "$here/clamav.sh"
	_rc=$?
	{ echo "=== $_work (clamav.sh $*)"; cat "$OUT/$_name.txt"; echo; } >>"$OUT/details"
	case $_rc in
	0)
		sed -n 's/^row: //p' "$OUT/$_name.txt" >>"$rows"
		sed -n 's/^mem: //p' "$OUT/$_name.txt" >>"$mems"
		;;
	77) echo "$_work: not measured ($(sed -n 's/^bench: skip: //p' "$OUT/$_name.txt" | head -1))" >>"$notes" ;;
	*) echo "$_work: FAILED (exit $_rc): $(grep -E 'bench:|FAIL' "$OUT/$_name.txt" | tail -2 | tr '\n' ' ')" >>"$notes" ;;
	esac
}

if [ "$(id -u)" != 0 ] || ! { command -v postfix >/dev/null 2>&1 || [ -x /usr/sbin/postfix ]; }; then
	echo "through Postfix: not measured (needs root and postfix)" >>"$notes"
	ONLY=$(echo " $ONLY " | sed 's/ noop / /; s/ postgrey / /; s/ clamav / /; s/ everything / /; s/ sizes / /; s/ rcpts / /; s/ memory / /')
fi
want noop && through "envelope checks, 4 KB text" noop BENCH_PEER=noop BENCH_KIND=4k BENCH_MESSAGES=$N_ENV
want postgrey && through "greylist, known triplets, 4 KB text" postgrey BENCH_PEER=postgrey \
	BENCH_KIND=4k BENCH_MESSAGES=$N_ENV
# kind K: n (messages) and w (words for the table) of the BENCH_KIND K
kind()
{
	n=$N_SMALL w="4 KB text"
	[ "$1" = mime6k ] && w="6 KB MIME, attachment"
	[ "$1" = 100k ] && n=$N_BIG w="100 KB text"
}
if want clamav; then
	for k in 4k mime6k 100k; do
		kind $k
		through "antivirus + checks, $w" "clamav-$k" BENCH_PEER=clamav BENCH_KIND=$k \
			BENCH_MESSAGES=$n BENCH_CHECKS="$CHECKS"
	done
fi
if want everything; then
	for k in 4k mime6k 100k; do
		kind $k
		through "everything (DNS checks, greylist, attachments, ClamAV), $w" "everything-$k" \
			BENCH_PEER=clamav BENCH_DNS=1 BENCH_KIND=$k BENCH_MESSAGES=$n
	done
fi
if want rcpts; then
	for rc in 1 10 100; do
		through "antivirus + checks, 4 KB text, $rc rcpt" "rcpt-$rc" BENCH_PEER=clamav BENCH_KIND=4k \
			BENCH_RCPTS=$rc BENCH_MESSAGES=$N_BIG BENCH_CHECKS="$CHECKS"
	done
fi
if want sizes; then
	for s in 4k 100k 1m 10m; do
		case $s in
		4k) n=$N_SMALL w="4 KB" ;;
		100k) n=$N_BIG w="100 KB" ;;
		1m) n=$N_1M w="1 MB" ;;
		*) n=$N_10M w="10 MB" ;;
		esac
		through "antivirus + checks, $w with base64 attachment" "size-$s" BENCH_PEER=clamav \
			BENCH_KIND=size:$s BENCH_MESSAGES=$n BENCH_CHECKS="$CHECKS"
	done
fi
want memory && through "200 sessions at once, 100 KB each" memory BENCH_PEER=clamav BENCH_MODE=memory \
	BENCH_KIND=size:100k BENCH_MESSAGES=1 BENCH_SESSIONS=200 BENCH_CHECKS="$CHECKS"

if want rspamd; then
	if [ -x "$here/rspamd.sh" ]; then
		echo "compare: DNS checks vs rspamd (rspamd.sh)"
		# quick: 2 rounds of 500 messages (rspamd.sh's default: 4 of 1000)
		if [ "${COMPARE_QUICK:-0}" = 1 ]; then _rs="BENCH_ROUNDS=2 BENCH_MESSAGES=500"; else _rs=""; fi
		drive "$OUT/rspamd.txt" 3600 env $_rs "$here/rspamd.sh"
		_rc=$?
		{ echo "=== DNS checks vs rspamd (rspamd.sh)"; cat "$OUT/rspamd.txt"; echo; } >>"$OUT/details"
		case $_rc in
		0) sed -n '/^summary:/,$p' "$OUT/rspamd.txt" | sed 1d >"$OUT/rspamd-summary" ;;
		77) echo "DNS checks vs rspamd: not measured (rspamd is not installed)" >>"$notes" ;;
		*) echo "DNS checks vs rspamd: FAILED (exit $_rc)" >>"$notes" ;;
		esac
	else
		echo "DNS checks vs rspamd: not measured (no contrib/bench/rspamd.sh)" >>"$notes"
	fi
fi

if want nomta; then
	echo "compare: envelope checks vs a no-op milter, no MTA (run.sh)"
	# shellcheck disable=SC2086
	if drive "$OUT/run.txt" 900 env $RUN_ENV "$here/run.sh"; then
		# the noop and portcullis lines of its table and the ratio line
		awk '/^noop \(baseline\)/ { nm = $5; nr = $4; nx = $6 }
		/^portcullis / { pm = $4; pr = $3; px = $5 }
		/^portcullis\/noop / { rm = $5; rx = $6 }
		END { gsub(/[()]/, "", nx); gsub(/[()]/, "", px); gsub(/[()]/, "", rx)
			split(nx, a, "-"); split(px, b, "-"); split(rx, c, "-")
			printf "envelope checks, no MTA (mclient)|portcullis (access helo envelope)|%.3f|%.3f|%.3f|%.0f|no-op milter|%.3f|%.3f|%.3f|%.0f|%.2f|%.2f|%.2f\n",
				pm / 1000, b[1] / 1000, b[2] / 1000, pr, nm / 1000, a[1] / 1000, a[2] / 1000, nr, rm, c[1], c[2]
		}' "$OUT/run.txt" >>"$rows"
	else
		echo "envelope checks, no MTA: run.sh FAILED: $(tail -2 "$OUT/run.txt" | tr '\n' ' ')" >>"$notes"
	fi
	{ echo "=== envelope checks vs a no-op milter, no MTA (run.sh)"; cat "$OUT/run.txt"; echo; } >>"$OUT/details"
	echo "compare: the antivirus path alone, no MTA (avpath.sh)"
	drive "$OUT/avpath.txt" 900 env AV_N=$AV_N AV_ROUNDS=3 "$here/avpath.sh" ||
		echo "antivirus path alone: avpath.sh FAILED: $(tail -2 "$OUT/avpath.txt" | tr '\n' ' ')" >>"$notes"
	{ echo "=== the antivirus path alone, no MTA (avpath.sh)"; cat "$OUT/avpath.txt"; echo; } >>"$OUT/details"
fi

# --- the table ---------------------------------------------------------------------------
echo
cat "$OUT/details" 2>/dev/null
echo "=== summary: CPU of the filter's processes per message, median (min-max) over the rounds"
echo
echo "| work | portcullis | ms/msg | msg/s | peer | ms/msg | msg/s | CPU ratio portcullis/peer, median (range) |"
echo "|---|---|---|---|---|---|---|---|"
awk -F'|' 'function rate(r) { return sprintf(r < 10 ? "%.1f" : "%.0f", r) }
	{ printf "| %s | %s | %.2f (%.2f-%.2f) | %s | %s | %.2f (%.2f-%.2f) | %s | %.2f (%.2f-%.2f) |\n",
	$1, $2, $3, $4, $5, rate($6), $7, $8, $9, $10, rate($11), $12, $13, $14 }' "$rows"
if [ -s "$mems" ]; then
	echo
	echo "| memory | filter (processes) | VmRSS idle | Pss idle | VmRSS peak | Pss peak |"
	echo "|---|---|---|---|---|---|"
	awk -F'|' '{ printf "| %s | %s | %.1f MB | %.1f MB | %.1f MB | %.1f MB |\n", $1, $2, $3, $4, $5, $6 }' "$mems"
fi
if [ -s "$OUT/rspamd-summary" ]; then
	echo
	echo "DNS checks vs rspamd (rspamd.sh):"
	cat "$OUT/rspamd-summary"
fi
if [ -s "$notes" ]; then
	echo
	sed 's/^/- /' "$notes"
fi
_t=$(($(date +%s) - START))
echo
echo "run time $((_t / 60)) min $((_t % 60)) s ($( [ "${COMPARE_QUICK:-0}" = 1 ] && echo quick || echo full)," \
	"$ROUNDS rounds per filter); load average at the start $LOAD0, at the end" \
	"$(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
echo "The ratios within a run are the figures; absolute times vary with what else runs on the host."
