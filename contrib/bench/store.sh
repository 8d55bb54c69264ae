#!/bin/sh
# contrib/bench/store.sh - the greylist store with a million entries
#
#   contrib/bench/store.sh [ENTRIES] [SECONDS]
#
# Builds contrib/bench/store-bench.c with cc -O2 against the library of a
# plain build (BUILD, default build-bench-plain: configure it as README.md
# says) and runs it on a fresh store in a temp folder (removed at exit):
# fill, then lookups/updates from two threads without and with a
# concurrent full expiry pass; see store-bench.c for what each figure is.
# Bounded by BENCH_LIMIT (default 300) seconds.
set -e
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=${BUILD:-$top/build-bench-plain}
[ -f "$build/lib/libportcullis.a" ] || {
	echo "store.sh: no $build/lib/libportcullis.a: make a plain build first (see README.md)" >&2
	exit 1
}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pc-storebench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
cc -O2 -D_GNU_SOURCE -I"$top/lib" -I"$top/lib/store" -I"$build" -o "$tmp/store-bench" "$here/store-bench.c" \
	"$build/lib/libportcullis.a" $(pkg-config --libs tdb hiredis libpcre2-8 libpsl) -lldns -lspf2 -lpthread
mkdir "$tmp/state"
echo "# $(nproc) cores, $(uname -r), TDB $(pkg-config --modversion tdb)"
timeout "${BENCH_LIMIT:-300}" "$tmp/store-bench" "$tmp/state" -n "${1:-1000000}" -d "${2:-10}"
