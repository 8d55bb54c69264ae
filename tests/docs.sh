#!/bin/sh
# tests/docs.sh - documentation in step with the code:
#  - every key that `portcullis -d` prints is documented in portcullis.conf(5),
#    exactly once (a ".TP" entry ".BR KEY \" = DEFAULT\"")
#  - config/portcullis.conf is exactly the generated sample (`portcullis -D`)
#    behind its header, and is itself a valid configuration
#  - the man pages format without groff warnings
set -u
srcdir=${top_srcdir:-.}
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$PORTCULLIS" -d >"$tmp/defaults" || { echo "FAIL: portcullis -d"; exit 1; }
nkeys=0
while IFS= read -r line; do
	key=${line%% = *}
	nkeys=$((nkeys + 1))
	# an entry: ".TP" then ".BR KEY \" = DEFAULT\""
	n=$(awk -v k=".BR $key \" = " 'prev == ".TP" && index($0, k) == 1 { n++ } { prev = $0 } END { print n + 0 }' "$srcdir/milter/portcullis.conf.5")
	if [ "$n" = 0 ]; then
		echo "FAIL: $key is not documented in milter/portcullis.conf.5"
		fail=1
	elif [ "$n" != 1 ]; then
		echo "FAIL: $key is documented $n times in milter/portcullis.conf.5"
		fail=1
	fi
	if ! grep -q -F "#$key = " "$srcdir/config/portcullis.conf"; then
		echo "FAIL: $key is missing from config/portcullis.conf"
		fail=1
	fi
done <"$tmp/defaults"
echo "checked $nkeys keys"
[ "$nkeys" -gt 40 ] || { echo "FAIL: only $nkeys keys from -d"; fail=1; }

"$PORTCULLIS" -D >"$tmp/sample"
# The shipped sample is the generated one behind its header comment.
sed '1,/^$/d' "$srcdir/config/portcullis.conf" >"$tmp/shipped"
sed '1d' "$tmp/sample" >"$tmp/generated"
if ! diff -u "$tmp/generated" "$tmp/shipped"; then
	echo "FAIL: config/portcullis.conf differs from 'portcullis -D' (regenerate it)"
	fail=1
fi
# Uncommented, the sample is the defaults: it must load and change nothing.
sed -n 's/^#\([a-z_.]* = \)/\1/p' "$srcdir/config/portcullis.conf" >"$tmp/uncommented.conf"
# (-t also checks what the start needs: a state_dir that exists here)
sed "s|^state_dir = .*|state_dir = $tmp|" "$tmp/uncommented.conf" >"$tmp/here.conf"
if ! "$PORTCULLIS" -t -c "$tmp/here.conf" >/dev/null; then
	echo "FAIL: the uncommented sample does not load"
	fail=1
elif [ -n "$("$PORTCULLIS" -n -c "$tmp/uncommented.conf")" ]; then
	echo "FAIL: the sample's values are not the defaults:"
	"$PORTCULLIS" -n -c "$tmp/uncommented.conf"
	fail=1
fi

if command -v groff >/dev/null 2>&1; then
	for page in portcullis.8 portcullis.conf.5 portcullisctl.8; do
		warn=$(groff -man -ww -z "$srcdir/milter/$page" 2>&1)
		if [ -n "$warn" ]; then
			echo "FAIL: groff warnings in $page:"
			echo "$warn"
			fail=1
		fi
	done
fi
grep -q '^20[0-9][0-9]-[0-9][0-9]-[0-9][0-9]' "$srcdir/NEWS" || {
	echo "FAIL: NEWS has no dated entry"
	fail=1
}
exit $fail
