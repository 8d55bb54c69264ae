#!/bin/sh
# tests/store.sh - the TDB store across processes and across kill -9
#
# Uses the helper modes of tests/unit/test_store (see its header):
# 1. one process reads the namespace while another writes it: the reader,
#    which opened the file before the writer started, sees every record;
#    a third process then finds every key the writer reported.
# 2. a writer doing STORE_DURABLE puts is killed with SIGKILL at three
#    different moments: afterwards the file opens without being moved aside
#    and every key the writer reported done (printed after store_put()
#    returned) is present.
# 3. a writer doing normal (unsynced) puts is killed: the file still opens
#    and can be written.
# 4. a bounded mixed workload (200k ops) prints ops/s: a figure, not an
#    assertion.
set -u
builddir=${top_builddir:-.}
T="$builddir/tests/unit/test_store"
[ -x "$T" ] || { echo "SKIP: $T not built"; exit 77; }
work=$(mktemp -d)
pids=""
cleanup() {
	for p in $pids; do kill -9 "$p" 2>/dev/null; done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
fail=0
bad() {
	echo "FAIL: $*"
	fail=1
}

# --- 1. concurrent reader and writer -----------------------------------------
d="$work/cross"
mkdir "$d"
timeout 30 "$T" --reader "$d" 3000 20 >"$work/reader.out" 2>"$work/reader.err" &
rpid=$!
pids="$pids $rpid"
i=0
until grep -q '^ready$' "$work/reader.out" 2>/dev/null; do
	i=$((i + 1))
	[ $i -gt 100 ] && break
	sleep 0.05
done
grep -q '^ready$' "$work/reader.out" || bad "reader did not start: $(cat "$work/reader.err")"
timeout 30 "$T" --writer "$d" 3000 normal >"$work/writer.out" 2>"$work/writer.err" ||
	bad "writer failed: $(cat "$work/writer.err")"
[ "$(wc -l <"$work/writer.out")" -eq 3000 ] || bad "writer reported $(wc -l <"$work/writer.out") of 3000"
wait "$rpid"
rc=$?
[ $rc -eq 0 ] || bad "reader exit $rc: $(cat "$work/reader.out" "$work/reader.err")"
grep -q '^seen 3000 of 3000$' "$work/reader.out" || bad "reader: $(tail -n 1 "$work/reader.out")"
out=$(timeout 30 "$T" --check "$d" "$work/writer.out" 2>&1) || bad "check after concurrent write: $out"
echo "$out" | grep -q '^present 3000 missing 0 total 3000$' || bad "check: $out"
[ $fail -eq 0 ] && echo "ok: a second process saw all 3000 records written while it read"

# --- 2. kill -9 in the middle of durable writes --------------------------------
for delay in 0.2 0.45 0.7; do
	d="$work/kill$delay"
	mkdir "$d"
	# no timeout(1) in between: the kill must reach the writer itself
	"$T" --writer "$d" 100000000 durable >"$work/kill$delay.out" 2>"$work/kill$delay.err" &
	wpid=$!
	pids="$pids $wpid"
	# the delay counts from the first reported write (a loaded machine
	# may take longer than the delay just to start the writer)
	k=0
	while [ ! -s "$work/kill$delay.out" ] && [ $k -lt 100 ]; do
		sleep 0.1
		k=$((k + 1))
	done
	sleep "$delay"
	kill -9 "$wpid" 2>/dev/null
	wait "$wpid" 2>/dev/null
	n=$(grep -c '' "$work/kill$delay.out")
	out=$(timeout 30 "$T" --check "$d" "$work/kill$delay.out" 2>&1)
	rc=$?
	if [ $rc -ne 0 ]; then
		bad "after kill -9 at ${delay}s ($n writes reported): $out"
	elif [ "$(echo "$out" | awk '{ print $6 - $2 }')" -gt 1 ]; then
		bad "after kill -9 at ${delay}s more records than reported (+1 in flight): $out"
	elif ls "$d" | grep -q corrupt; then
		bad "after kill -9 at ${delay}s the file was moved aside: $(ls "$d")"
	else
		echo "ok: kill -9 after ${delay}s: $out"
	fi
done

# --- 3. kill -9 in the middle of normal writes --------------------------------
d="$work/killnormal"
mkdir "$d"
"$T" --writer "$d" 100000000 normal >"$work/killnormal.out" 2>&1 &
wpid=$!
pids="$pids $wpid"
sleep 0.3
kill -9 "$wpid" 2>/dev/null
wait "$wpid" 2>/dev/null
timeout 30 "$T" --writer "$d" 10 durable >"$work/after.out" 2>&1 ||
	bad "store not writable after kill -9 of a normal writer: $(cat "$work/after.out")"
out=$(timeout 30 "$T" --check "$d" "$work/after.out" 2>&1) || bad "after normal kill: $out"
echo "ok: kill -9 of a normal writer after $(grep -c '' "$work/killnormal.out") writes: file opens and takes writes"

# --- 4. a figure ---------------------------------------------------------------
d="$work/bench"
mkdir "$d"
out=$(timeout 60 "$T" --bench "$d" 200000 2>&1) || bad "bench: $out"
echo "$out"
exit $fail
