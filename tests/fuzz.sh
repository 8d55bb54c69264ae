#!/bin/sh
# tests/fuzz.sh - build the libFuzzer targets in tests/fuzz/ with clang
# (ASan + UBSan) and run each for a bounded time from its seed corpus.
# A crash, a sanitizer report or a failed assertion fails the test.
# FUZZ_SECONDS sets the time per target (default 20).  Exit 77 without a
# clang that supports -fsanitize=fuzzer.
set -u
srcdir=${top_srcdir:-.}
secs=${FUZZ_SECONDS:-20}
CLANG=${CLANG:-clang}
command -v "$CLANG" >/dev/null 2>&1 || { echo "SKIP: no clang"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work" /tmp/fuzz_table.* /tmp/fuzz_conf.*' EXIT
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n){(void)d;(void)n;return 0;}\n' >"$work/probe.c"
"$CLANG" -fsanitize=fuzzer "$work/probe.c" -o "$work/probe" 2>/dev/null ||
	{ echo "SKIP: clang cannot build libFuzzer targets (libclang-rt-dev missing?)"; exit 77; }

libsrc=$(ls "$srcdir"/lib/*.c "$srcdir"/lib/store/*.c "$srcdir"/lib/checks/*.c)
# config.h and lib/greylist-lists.h are made by configure and make;
# PKGLIBEXECDIR as Makefile.am defines it (the fuzzers start no scanner
# helper; the literal quotes stay in the word after splitting)
cflags="-g -O1 -std=gnu11 -D_GNU_SOURCE -DPKGLIBEXECDIR=\"/usr/libexec/portcullis\" -fno-sanitize-recover=undefined -I$srcdir/lib -I$srcdir/lib/store -I${top_builddir:-.} -I${top_builddir:-.}/lib $(pkg-config --cflags gmime-3.0 opendkim)"
libs="-lpcre2-8 -lldns -lspf2 -ltdb -lhiredis -lpsl -lclamav $(pkg-config --libs gmime-3.0 opendkim libcrypto) -lopendmarc -lpthread"
fail=0
# lib/ once, instrumented for the fuzzer but without its main(); each
# target then only compiles its own file and links.
mkdir -p "$work/obj"
for f in $libsrc; do
	echo "$f"
done | xargs -P 2 -I{} sh -c '"$0" $1 -fsanitize=fuzzer-no-link,address,undefined -c "{}" -o "$2/obj/$(echo "{}" | tr / _).o" 2>>"$2/build_lib.log"' "$CLANG" "$cflags" "$work" ||
	{ echo "FAIL: building lib/ for the fuzzers"; cat "$work/build_lib.log"; exit 1; }
for target in addr table conf engine metrics mime report rfc5322 batv bounce; do
	if ! "$CLANG" $cflags -fsanitize=fuzzer,address,undefined "$srcdir/tests/fuzz/fuzz_$target.c" "$work"/obj/*.o $libs \
		-o "$work/fuzz_$target" 2>"$work/build_$target.log"; then
		echo "FAIL: building fuzz_$target"
		cat "$work/build_$target.log"
		fail=1
		continue
	fi
	mkdir -p "$work/corpus_$target"
	cp "$srcdir/tests/fuzz/corpus/$target"/* "$work/corpus_$target/" 2>/dev/null
	if (cd "$work" && timeout $((secs + 60)) "./fuzz_$target" -max_total_time="$secs" \
		-timeout=10 -rss_limit_mb=2048 -max_len=12000 "corpus_$target" >"$work/run_$target.log" 2>&1); then
		runs=$(grep -o 'Done [0-9]* runs' "$work/run_$target.log" | tail -n 1)
		echo "ok: fuzz_$target: ${runs:-finished} in ${secs}s"
	else
		echo "FAIL: fuzz_$target"
		tail -n 60 "$work/run_$target.log"
		fail=1
	fi
done
exit $fail
