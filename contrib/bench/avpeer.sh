#!/bin/sh
# contrib/bench/avpeer.sh - the scan alone: portcullis' scanner helper
# against clamd, on messages of the same kinds, in interleaved rounds
#
#   contrib/bench/avpeer.sh     (BUILD=build-bench-plain, AV_N=300,
#                                AV_ROUNDS=3, AV_KINDS="4k mime 100k")
#
# portcullis' side is av-bench (contrib/bench/av-bench.c, as in avpath.sh):
# the CPU of the helper per message.  clamd's side is clamd from Debian's
# clamav-daemon package (fetched with `apt-get download` and unpacked into a
# private folder, nothing installed), fed with INSTREAM over its unix socket
# as clamav-milter does, its CPU per message from /proc/PID/stat.  Two clamd
# run side by side: one with its defaults, one with "PhishingScanURLs no"
# (the link extraction that portcullis skips when the database has no
# phishing lists, as this one-line database has none).  Both scanners write
# their temporary files to a private folder on /dev/shm.  Every message is
# scanned once by each scanner (clamd keeps its clean-file cache between
# rounds, so each round gives it new messages).  Prints medians; asserts
# nothing about speed.  Needs a built tree, python3, apt-get; no network
# other than apt-get's, no MTA.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
: "${BUILD:=$top/build-bench-plain}"
N=${AV_N:-300}
ROUNDS=${AV_ROUNDS:-3}
KINDS=${AV_KINDS:-4k mime 100k}
WARM=20
T=$(mktemp -d /tmp/pc-avpeer.XXXXXX) || exit 1
SHM=$(mktemp -d /dev/shm/pc-avpeer.XXXXXX) || exit 1
PIDS=
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	sleep 0.3
	rm -rf "$T" "$SHM"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM
fail() {
	echo "avpeer: $*" >&2
	exit 1
}

libs=$(sed -n 's/^[A-Z0-9_]*_LIBS = //p' "$BUILD/Makefile" | grep -v cmocka | tr '\n' ' ')
cc -O2 -g -I"$top/lib" -I"$BUILD" "$here/av-bench.c" "$BUILD/lib/libportcullis.a" \
	$libs -lspf2 -lpthread -o "$T/av-bench" || fail "build failed"
mkdir -p "$T/pkg" "$T/root" "$T/db"
(cd "$T/pkg" && timeout 120 apt-get download clamav-daemon >/dev/null 2>&1) ||
	fail "apt-get download clamav-daemon failed"
for d in "$T"/pkg/*.deb; do dpkg -x "$d" "$T/root"; done
CLAMD=$T/root/usr/sbin/clamd
[ -x "$CLAMD" ] || fail "no clamd in the package"
echo "Bench.Sig:0:*:$(printf 'portcullis-avpeer-%s' "$$" | od -An -tx1 | tr -d ' \n')" >"$T/db/bench.ndb"

# the messages for clamd: a fresh slice per round and kind
for k in $KINDS; do
	mkdir -p "$T/msgs-$k"
	"$T/av-bench" --dump "$T/msgs-$k" "$k" 100000 $(((N + WARM) * ROUNDS)) ||
		fail "could not write the $k messages"
done

start_clamd() { # NAME EXTRA-LINE
	mkdir -p "$SHM/$1"
	{
		echo "LocalSocket $T/$1.sock"
		echo "DatabaseDirectory $T/db"
		echo "TemporaryDirectory $SHM/$1"
		echo "Foreground yes"
		echo "LogFile $T/$1.log"
		[ "$(id -u)" = 0 ] && echo "User root"
		[ -n "$2" ] && echo "$2"
	} >"$T/$1.conf"
	timeout 3600 "$CLAMD" -c "$T/$1.conf" >"$T/$1.out" 2>&1 &
	PIDS="$PIDS $!"
	i=0
	while [ ! -S "$T/$1.sock" ] && [ $i -lt 600 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	[ -S "$T/$1.sock" ] || fail "clamd $1 did not start: $(tail -3 "$T/$1.out" "$T/$1.log" 2>/dev/null)"
}
start_clamd clamd-default ""
start_clamd clamd-nophish "PhishingScanURLs no"
clamd_pid() { # the clamd process serving socket NAME (timeout's child)
	for p in $PIDS; do
		c=$(pgrep -P "$p" 2>/dev/null | head -1)
		[ -n "$c" ] && tr '\0' ' ' <"/proc/$c/cmdline" 2>/dev/null | grep -q "$T/$1.conf" &&
			echo "$c" && return
	done
}

cat >"$T/instream.py" <<'EOF'
import os, socket, struct, sys
sock, d, first, n, warm, pid = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
def ticks():
    s = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return int(s[11]) + int(s[12])
def scan(m):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(60)
    s.connect(sock)
    s.sendall(b"zINSTREAM\0")
    for k in range(0, len(m), 65536):
        c = m[k:k + 65536]
        s.sendall(struct.pack("!I", len(c)) + c)
    s.sendall(struct.pack("!I", 0))
    r = b""
    while not r.endswith(b"\0"):
        x = s.recv(4096)
        if not x:
            break
        r += x
    s.close()
    return r
msgs = [open("%s/m.%d" % (d, i), "rb").read() for i in range(first, first + warm + n)]
for m in msgs[:warm]:
    scan(m)
t0, bad = ticks(), 0
for m in msgs[warm:]:
    if not scan(m).endswith(b"OK\0"):
        bad += 1
us = (ticks() - t0) * 1000000 // os.sysconf("SC_CLK_TCK") // n
print("n=%d bad=%d us=%d" % (n, bad, us))
sys.exit(1 if bad else 0)
EOF

for r in $(seq "$ROUNDS"); do
	first=$((100000 + (r - 1) * (N + WARM)))
	for k in $KINDS; do
		for c in clamd-default clamd-nophish; do
			line=$(timeout 600 python3 "$T/instream.py" "$T/$c.sock" "$T/msgs-$k" "$first" "$N" "$WARM" \
				"$(clamd_pid "$c")") || fail "$c $k: $line"
			echo "$c $k $line" | tee -a "$T/res" | sed 's/^/  /'
		done
		dir=$(mktemp -d "$SHM/helper.XXXXXX")
		line=$(timeout 600 "$T/av-bench" "$T/db" "$dir" "$k" "$N" 2>>"$T/err") ||
			fail "av-bench $k: $(tail -3 "$T/err")"
		rm -rf "$dir"
		us=$(echo "$line" | sed -n 's/.*helper_us=\([0-9]*\).*/\1/p')
		echo "portcullis-helper $k n=$N bad=0 us=$us" | tee -a "$T/res" | sed 's/^/  /'
	done
done
echo "median CPU us per message of the scanning process (10 ms ticks: +-$((10000 / N)) us):"
for k in $KINDS; do
	for c in clamd-default clamd-nophish portcullis-helper; do
		grep "^$c $k " "$T/res" | sed 's/.* us=\([0-9]*\)/\1/' | sort -n |
			awk -v c="$c" -v k="$k" '{a[NR]=$1} END {printf "  %-6s %-18s %6d  (min %d, max %d)\n", k, c, a[int((NR+1)/2)], a[1], a[NR]}'
	done
done
