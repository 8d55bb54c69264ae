#!/bin/sh
# contrib/bench/compare.sh - one command: portcullis against the peers that
# are there, on this host, and one summary table
#
#   contrib/bench/compare.sh      (as root; a plain -O2 build, see README.md;
#                                  PORTCULLIS=/path/to/portcullis)
#
# Runs, one after the other, each in interleaved rounds (see each script):
#   run.sh       portcullis' envelope checks against a no-op libmilter
#                filter (mclient, no MTA)
#   avpath.sh    the antivirus path alone (no MTA), 4 KB, 6 KB MIME, 100 KB
#   clamav.sh    portcullis (COMPARE_CHECKS, default "access helo envelope
#                attachments clamav") against clamav-milter + clamd through
#                one private Postfix, for 4 KB, 6 KB MIME and 100 KB
#                messages, and 4 KB messages with 1, 10 and 100 recipients
#                (clamav.sh fetches clamd and clamav-milter with apt-get
#                download; skipped when that fails)
# then prints the summary lines of each.  rspamd and postgrey are not driven
# yet (reported as "not measured").  COMPARE_QUICK=1 runs fewer messages.
# Nothing is asserted about speed; each script checks its answers and logs.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
: "${PORTCULLIS:=$top/build-bench-plain/milter/portcullis}"
export PORTCULLIS
CHECKS=${COMPARE_CHECKS:-access helo envelope attachments clamav}
OUT=$(mktemp -d /tmp/pc-compare.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
if [ "${COMPARE_QUICK:-0}" = 1 ]; then
	RUN_ENV="BENCH_MESSAGES=4000 BENCH_ROUNDS=2 BENCH_WARMUP=500"
	AV_N=100 CL_N=200 CL_N_BIG=100
else
	RUN_ENV=""
	AV_N=300 CL_N=600 CL_N_BIG=300
fi
[ -x "$PORTCULLIS" ] || { echo "compare: no portcullis at $PORTCULLIS (build it, or set PORTCULLIS)"; exit 1; }
summary=$OUT/summary
: >"$summary"

echo "compare: envelope checks vs a no-op milter (run.sh)"
if env $RUN_ENV timeout 900 "$here/run.sh" >"$OUT/run.txt" 2>&1; then
	{ echo "== envelope checks (access helo envelope) vs no-op milter, CPU per message"
	  sed -n '/filter *messages/,$p' "$OUT/run.txt" | grep -v '^bench: done'; } >>"$summary"
else
	echo "== envelope checks: run.sh failed: $(tail -3 "$OUT/run.txt")" >>"$summary"
fi

echo "compare: the antivirus path alone (avpath.sh)"
if AV_N=$AV_N AV_ROUNDS=3 timeout 900 "$here/avpath.sh" >"$OUT/avpath.txt" 2>&1; then
	{ echo "== antivirus path alone (no MTA), median us per message"
	  sed -n '/^median/,$p' "$OUT/avpath.txt"; } >>"$summary"
else
	echo "== antivirus path: avpath.sh failed: $(tail -3 "$OUT/avpath.txt")" >>"$summary"
fi

if [ "$(id -u)" = 0 ] && { command -v postfix >/dev/null 2>&1 || [ -x /usr/sbin/postfix ]; }; then
	echo "== portcullis ($CHECKS) vs clamav-milter + clamd through Postfix, CPU per message" >>"$summary"
	for kind in 4k mime6k 100k; do
		n=$CL_N
		[ "$kind" = 100k ] && n=$CL_N_BIG
		echo "compare: clamav-milter + clamd, $kind (clamav.sh)"
		if BENCH_KIND=$kind BENCH_MESSAGES=$n BENCH_CHECKS="$CHECKS" BENCH_PC_TMPDIR=default \
			timeout 900 "$here/clamav.sh" >"$OUT/clamav-$kind.txt" 2>&1; then
			{ echo "  $kind:"
			  sed -n '/^mean over/,/^memory/p' "$OUT/clamav-$kind.txt" | sed 's/^/  /'; } >>"$summary"
		else
			echo "  $kind: clamav.sh failed or skipped: $(grep -E 'bench:|FAIL' "$OUT/clamav-$kind.txt" | tail -2)" >>"$summary"
		fi
	done
	echo "== the same, 4 KB, as recipients grow (CPU per message)" >>"$summary"
	for rc in 1 10 100; do
		echo "compare: clamav-milter + clamd, 4k, $rc recipients (clamav.sh)"
		if BENCH_KIND=4k BENCH_RCPTS=$rc BENCH_MESSAGES=$CL_N_BIG BENCH_CHECKS="$CHECKS" \
			BENCH_PC_TMPDIR=default timeout 900 "$here/clamav.sh" >"$OUT/rcpt-$rc.txt" 2>&1; then
			echo "  $rc recipients: $(grep 'ratio portcullis' "$OUT/rcpt-$rc.txt" | sed 's/^ *//')" >>"$summary"
			grep -E '^  (portcullis|clamav-milter)\+' "$OUT/rcpt-$rc.txt" | sed 's/^/  /' >>"$summary"
		else
			echo "  $rc recipients: clamav.sh failed: $(grep -E 'bench:|FAIL' "$OUT/rcpt-$rc.txt" | tail -2)" >>"$summary"
		fi
	done
else
	echo "== clamav-milter + clamd: skipped (needs root and postfix)" >>"$summary"
fi
echo "== rspamd, postgrey: not measured (no driver in contrib/bench yet)" >>"$summary"
echo
cat "$summary"
