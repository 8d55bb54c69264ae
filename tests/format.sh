#!/bin/sh
# tests/format.sh - every C file is formatted by the one .clang-format, so
# formatting is never a review topic.  Fix with:
#   clang-format -i lib/*.[ch] lib/checks/*.[ch] lib/store/*.[ch] milter/*.[ch] tests/*/*.[ch]
set -u
srcdir=${top_srcdir:-.}
CLANG_FORMAT=${CLANG_FORMAT:-clang-format}
command -v "$CLANG_FORMAT" >/dev/null 2>&1 || { echo "SKIP: no clang-format"; exit 77; }
cd "$srcdir" || exit 1
bad=0
for f in lib/*.[ch] lib/checks/*.[ch] lib/store/*.[ch] milter/*.[ch] tests/unit/*.[ch] tests/fuzz/*.c; do
	if ! "$CLANG_FORMAT" --dry-run -Werror "$f" >/dev/null 2>&1; then
		echo "not formatted: $f"
		bad=1
	fi
done
exit $bad
