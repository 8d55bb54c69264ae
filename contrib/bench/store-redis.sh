#!/bin/sh
# contrib/bench/store-redis.sh - greylist decisions on TDB and on Redis
#
#   contrib/bench/store-redis.sh [TRIPLETS] [SECONDS] [THREADS]
#
# Builds contrib/bench/store-redis-bench.c with cc -O2 against the library
# of a plain build (BUILD, default build-bench-plain: configure it as
# README.md says), starts a private redis-server (unix socket in a temp
# folder, no persistence, no TCP port) and runs the benchmark: a fill of
# TRIPLETS (default 1000000) greylist records and SECONDS (default 10) of
# greylist decisions from THREADS (default 4) threads, on TDB then on
# Redis; see store-redis-bench.c for each figure.  Everything it started
# is stopped and the folder removed at exit.  Bounded by BENCH_LIMIT
# (default 600) seconds.
set -e
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=${BUILD:-$top/build-bench-plain}
[ -f "$build/lib/libportcullis.a" ] || {
	echo "store-redis.sh: no $build/lib/libportcullis.a: make a plain build first (see README.md)" >&2
	exit 1
}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pc-redisbench.XXXXXX")
rpid=
trap '[ -n "$rpid" ] && kill "$rpid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT INT TERM
cc -O2 -D_GNU_SOURCE -I"$top/lib" -I"$top/lib/store" -I"$build" -o "$tmp/bench" \
	"$here/store-redis-bench.c" "$build/lib/libportcullis.a" \
	$(pkg-config --libs tdb hiredis libpcre2-8 libpsl) -lldns -lspf2 -lpthread
mkdir "$tmp/tdb" "$tmp/redis"
timeout -s KILL "${BENCH_LIMIT:-600}" redis-server --port 0 --unixsocket "$tmp/redis/sock" \
	--dir "$tmp/redis" --save "" --appendonly no --daemonize no >"$tmp/redis.log" 2>&1 &
rpid=$!
i=0
until redis-cli -s "$tmp/redis/sock" ping >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -lt 100 ] || { echo "redis-server did not start" >&2; exit 1; }
	sleep 0.1
done
echo "# $(nproc) cores, $(uname -r), TDB $(pkg-config --modversion tdb), $(redis-server --version | cut -d' ' -f3), hiredis $(pkg-config --modversion hiredis)"
timeout "${BENCH_LIMIT:-600}" "$tmp/bench" "$tmp/tdb" "unix:$tmp/redis/sock" \
	-n "${1:-1000000}" -d "${2:-10}" -t "${3:-4}"
