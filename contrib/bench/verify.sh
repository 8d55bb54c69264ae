#!/bin/sh
# contrib/bench/verify.sh - what a cold recipient verification costs a
# transaction: one probe round trip, not more
#
#   contrib/bench/verify.sh        (from anywhere; needs cc, libmilter-dev,
#                                   python3)
#
# Starts tests/smtp-script.py (a scripted SMTP server taking every
# recipient, with BENCH_DELAY, 0, seconds before its banner to stand for a
# distant inner server) on a loopback port as the inner server, and
# portcullis (the plain build, like run.sh) with checks = access, helo,
# envelope, verify and verify.recipient_domains = example.test=[127.0.0.1]:PORT.
# Then, one transaction at a time (mclient -t 1 -m 1 -L, BENCH_N = 20):
#   cold   BENCH_N new recipients (u0..u19@example.test): each RCPT probes
#   warm   the same again: answered from the cache
#   off    the same filter without the verify check (a second daemon)
# and BENCH_N bare probe sessions (connect, banner, EHLO, MAIL, RCPT, QUIT)
# timed by a python client: the probe round trip.  Prints the medians;
# cold - off should be about one probe round trip.  Nothing is asserted
# about speed.  Bounded by BENCH_LIMIT (120) seconds; the EXIT trap stops
# everything and removes the temp dir (BENCH_KEEP=1 keeps it).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$here/lib.sh"
if [ -z "${PORTCULLIS:-}" ]; then
	PORTCULLIS=$top/build-bench-plain/milter/portcullis
	[ -x "$PORTCULLIS" ] || PORTCULLIS=$top/build/milter/portcullis
fi
: "${CC:=cc}"
: "${BENCH_N:=20}"
: "${BENCH_DELAY:=0}"
: "${BENCH_LIMIT:=120}"

die()
{
	echo "bench: error: $*" >&2
	exit 1
}

[ -x "$PORTCULLIS" ] || die "no portcullis binary at $PORTCULLIS"
command -v python3 >/dev/null 2>&1 || die "python3 is needed"
START=$(date +%s)
D=$(mktemp -d /tmp/pcbench.XXXXXX) || die "mktemp"
PIDS= WRAPS= CLIENT= INNER=

cleanup()
{
	_rc=$?
	set +e
	trap - EXIT INT TERM HUP PIPE
	[ -n "$INNER" ] && kill "$INNER" 2>/dev/null
	stop_filters
	bench_finish bench "$_rc"
}
bench_traps
build_tools

python3 "$top/tests/smtp-script.py" "slow=$BENCH_DELAY" --life "$BENCH_LIMIT" >"$D/port" &
INNER=$!
i=0
while [ ! -s "$D/port" ] && [ $i -lt 100 ]; do
	sleep 0.05
	i=$((i + 1))
done
PORT=$(cat "$D/port")
[ -n "$PORT" ] || die "the scripted server did not start"
# slow=0 is the normal mode: only listed users exist; list u0..u(N-1)
kill "$INNER"
wait "$INNER" 2>/dev/null || :
USERS=$(awk -v n="$BENCH_N" 'BEGIN { for (i = 0; i < n; i++) printf "%su%d@example.test", i ? "," : "", i }')
python3 "$top/tests/smtp-script.py" "slow=$BENCH_DELAY" "$USERS" --port "$PORT" \
	--life "$BENCH_LIMIT" >/dev/null &
INNER=$!
sleep 0.5

for n in verify off; do
	{
		echo "socket = unix:$D/$n.sock"
		echo "state_dir = $D"
		echo "log_target = stderr"
		echo "trusted_networks ="
		echo "hostname = mx.example.test"
		echo "contact = postmaster@example.test"
		if [ "$n" = verify ]; then
			echo "checks = access, helo, envelope, verify"
			echo "verify.recipient_domains = example.test=[127.0.0.1]:$PORT"
		fi
	} >"$D/$n.conf"
done
start verify "$PORTCULLIS" -f -c "$D/verify.conf"
start off "$PORTCULLIS" -f -c "$D/off.conf"

# lat NAME SOCKET: median latency (ms) of BENCH_N single transactions
lat()
{
	timeout 60 "$D/mclient" -p "$D/$2.sock" -n "$BENCH_N" -m 1 -t 1 -b 0 -L -l "$1" >"$D/$1.out" 2>&1 ||
		die "mclient $1: $(cat "$D/$1.out")"
	sed -n 's/.*lat_ms_median=\([0-9.]*\).*/\1/p' "$D/$1.out"
}
COLD=$(lat cold verify)
WARM=$(lat warm verify)
OFF=$(lat off off)
probes=$(grep -c 'verify: probe of' "$D/verify.log" || true)
[ "$probes" -eq "$BENCH_N" ] || die "$probes probes for $BENCH_N new recipients"

PROBE=$(python3 - "$PORT" "$BENCH_N" <<'EOF'
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
ts = []
for i in range(n):
    t0 = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port))
    f = s.makefile("rb")
    def reply():
        while True:
            l = f.readline()
            if l[3:4] != b"-":
                return l
    reply()
    for c in (b"EHLO mx.example.test", b"MAIL FROM:<>", b"RCPT TO:<u%d@example.test>" % i, b"QUIT"):
        s.sendall(c + b"\r\n")
        reply()
    s.close()
    ts.append((time.monotonic() - t0) * 1000)
ts.sort()
print("%.2f" % ts[len(ts) // 2])
EOF
)
echo "bench: $BENCH_N transactions each, one at a time, inner server delay ${BENCH_DELAY}s"
echo "  transaction, verify cold (one probe each): median ${COLD} ms"
echo "  transaction, verify warm (cached):         median ${WARM} ms"
echo "  transaction, verify off:                   median ${OFF} ms"
echo "  bare probe session (python client):        median ${PROBE} ms"
echo "bench: done in $(($(date +%s) - START)) s"
