#!/bin/sh
# tests/spf-conformance.sh - the RFC 7208 SPF test suite against lib/spf.c
#
# For each scenario of the suite (../shared/conformance/spf/rfc7208-tests.yml,
# or $SPF_SUITE) tests/spf/zones.py writes its zone data as NSD zones; a
# private NSD plus the fault proxy (tests/dns/server.sh, run from a private
# copy so that only these zones and dns.test are served) answer them, with
# the suite's TIMEOUT names dropped by the proxy; tests/spf/spfcheck runs
# each test (helo, client address, mail from) through portcullis' SPF code
# against the proxy.  Every failing test is printed with expected and actual
# result, then "SPF conformance: N of M passed".  The test fails when N is
# below SPF_FLOOR (what the code reached when it was written, so that it
# guards against regressions).  Skips (77) without nsd, perl, python3-yaml
# or the suite file.
set -u

FLOOR=${SPF_FLOOR:-198}
suite=${SPF_SUITE:-$top_srcdir/../shared/conformance/spf/rfc7208-tests.yml}
[ -f "$suite" ] || suite=/work/shared/conformance/spf/rfc7208-tests.yml
spfcheck=$top_builddir/tests/spf/spfcheck
py=/usr/bin/python3

[ -f "$suite" ] || { echo "SKIP: SPF test suite not found ($suite)"; exit 77; }
[ -x "$spfcheck" ] || { echo "SKIP: $spfcheck not built (make check builds it)"; exit 77; }
"$py" -c 'import yaml' 2>/dev/null || { echo "SKIP: python3-yaml missing"; exit 77; }
PATH=$PATH:/usr/sbin command -v nsd >/dev/null 2>&1 || { echo "SKIP: nsd missing"; exit 77; }

dir=$(mktemp -d "${TMPDIR:-/tmp}/spf-conf.XXXXXX") || exit 99
cleanup() {
	[ -f "$dir/dns/dns.env" ] && sh "$dir/srv/server.sh" stop "$dir/dns" >/dev/null 2>&1
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

mkdir -p "$dir/srv" "$dir/out"
cp "$top_srcdir/tests/dns/server.sh" "$top_srcdir/tests/dns/faultproxy.pl" \
	"$top_srcdir/tests/dns/dns.test.zone" "$dir/srv/" || exit 99
"$py" "$top_srcdir/tests/spf/zones.py" "$suite" "$dir/out" || exit 99

start=$(date +%s)
n=1
while [ -d "$dir/out/$n" ]; do
	s=$dir/out/$n
	DNS_ZONE_DIRS=$s/zones DNS_PROXY_RULES=$(cat "$s/rules") DNS_SERVER_LIFETIME=120 \
		sh "$dir/srv/server.sh" start "$dir/dns" >/dev/null 2>"$dir/dns.err"
	rc=$?
	[ $rc -eq 77 ] && { echo "SKIP: DNS server"; exit 77; }
	[ $rc -eq 0 ] || { echo "FAIL: DNS server for scenario $n:"; cat "$dir/dns.err" \
		"$dir/dns/nsd.log" 2>/dev/null | tail -n 20; exit 1; }
	. "$dir/dns/dns.env"
	cut -f1-4 "$s/tests" | timeout 60 "$spfcheck" "127.0.0.1:$DNS_PROXY_PORT" 500 \
		>"$s/results" 2>"$s/errors"
	sh "$dir/srv/server.sh" stop "$dir/dns" >/dev/null 2>&1
	rm -f "$dir/dns/dns.env"
	n=$((n + 1))
done

cat "$dir"/out/*/tests >"$dir/all.tests"
cat "$dir"/out/*/results >"$dir/all.results"
awk -F '\t' -v floor="$FLOOR" '
	NR == FNR { want[$1] = $5; total++; next }
	{
		got[$1] = $2; why[$1] = $3
	}
	END {
		pass = 0
		for (id in want) {
			ok = 0
			n = split(want[id], w, ",")
			for (i = 1; i <= n; i++)
				if (w[i] == got[id]) ok = 1
			if (ok) pass++
			else printf "FAIL %s: expected %s, got %s (%s)\n", id, want[id],
			    (id in got) ? got[id] : "nothing", why[id] | "sort -t/ -k1,1n -k2"
		}
		close("sort -t/ -k1,1n -k2")
		printf "SPF conformance: %d of %d passed\n", pass, total
		exit pass >= floor ? 0 : 1
	}' "$dir/all.tests" "$dir/all.results"
rc=$?
echo "($(($(date +%s) - start)) s; floor $FLOOR)"
# spfcheck prints nothing on stderr unless something broke (a sanitizer
# report, a crash): that fails the test whatever the count.
for f in "$dir"/out/*/errors; do
	if [ -s "$f" ]; then
		echo "FAIL: spfcheck wrote to stderr ($f):"
		head -n 30 "$f"
		rc=1
	fi
done
exit $rc
