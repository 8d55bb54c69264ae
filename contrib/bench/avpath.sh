#!/bin/sh
# contrib/bench/avpath.sh - CPU per message of the antivirus path alone
# (contrib/bench/av-bench.c), per message kind, temp files on disk and on
# tmpfs, in interleaved rounds; medians printed.
#
#   contrib/bench/avpath.sh          (BUILD=build-bench-plain, AV_N=300, AV_ROUNDS=3)
#
# Needs a configured and built tree (lib/libportcullis.a); writes a one-line
# signature database of its own.  No MTA, no network.  Asserts nothing about
# speed; every scan must come back clean.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
: "${BUILD:=$top/build-bench-plain}"
N=${AV_N:-300}
ROUNDS=${AV_ROUNDS:-3}
KINDS=${AV_KINDS:-4k mime 100k}
T=$(mktemp -d /tmp/pc-avpath.XXXXXX)
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/db" "$T/disk"
# every library the build links the daemon with (configure's *_LIBS)
libs=$(sed -n 's/^[A-Z0-9_]*_LIBS = //p' "$BUILD/Makefile" | grep -v cmocka | tr '\n' ' ')
cc -O2 -g -I"$top/lib" -I"$BUILD" "$here/av-bench.c" "$BUILD/lib/libportcullis.a" \
	$libs -lspf2 -lpthread -o "$T/av-bench" || { echo "avpath: build failed"; exit 1; }
# BUILD_BEFORE: another build tree (e.g. of an older commit) measured in the
# same rounds, interleaved, as "before"
VERSIONS=new
if [ -n "${BUILD_BEFORE:-}" ]; then
	cc -O2 -g -I"$top/lib" -I"$BUILD_BEFORE" "$here/av-bench.c" \
		"$BUILD_BEFORE/lib/libportcullis.a" $libs -lspf2 -lpthread -o "$T/av-bench-before" ||
		{ echo "avpath: build of the before version failed"; exit 1; }
	VERSIONS="before new"
fi
echo "Bench.Sig:0:*:$(printf 'portcullis-avpath-%s' "$$" | od -An -tx1 | tr -d ' \n')" >"$T/db/bench.ndb"
for r in $(seq "$ROUNDS"); do
	for k in $KINDS; do
		for where in disk shm; do
			for v in $VERSIONS; do
				bin=$T/av-bench
				[ "$v" = before ] && bin=$T/av-bench-before
				dir=$T/disk
				[ "$where" = shm ] && dir=$(mktemp -d /dev/shm/pc-avpath.XXXXXX)
				line=$(timeout 300 "$bin" "$T/db" "$dir" "$k" "$N" 2>>"$T/err") ||
					{ echo "avpath: $k $where failed: $(tail -3 "$T/err")"; exit 1; }
				[ "$where" = shm ] && rm -rf "$dir"
				echo "$v $where $line" | tee -a "$T/res" | sed 's/^/  /'
			done
		done
	done
done
echo "median CPU us per message (milter side + helper):"
for k in $KINDS; do
	for where in disk shm; do
		for v in $VERSIONS; do
			grep "^$v $where kind=$k " "$T/res" | sed 's/.*milter_us=\([0-9]*\) helper_us=\([0-9]*\) total_us=\([0-9]*\).*/\1 \2 \3/' |
				sort -n -k3 | awk -v k="$k" -v w="$where" -v v="$v" '{a[NR]=$0} END {split(a[int((NR+1)/2)], f, " "); printf "  %-6s %-5s tmp on %-4s milter %5d  helper %6d  total %6d\n", v, k, w, f[1], f[2], f[3]}'
		done
	done
done
