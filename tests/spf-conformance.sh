#!/bin/sh
# tests/spf-conformance.sh - the RFC 7208 and RFC 4408 SPF test suites,
# every test a milter transaction against the real daemon
#
# The suites are ../shared/conformance/spf/{rfc7208,rfc4408}-tests.yml
# (beside the source tree, or /work/shared/...; $SPF_SUITES overrides the
# list of files).  One daemon (checks = spf, spf.fail = reject,
# spf.permerror = monitor, spf.on_error = skip, no DNS cache) serves every
# test.  For each scenario of a suite tests/spf/zones.py has written its zone
# data as NSD zones; a private NSD plus the fault proxy (tests/dns/server.sh,
# run from a private copy so that only these zones and dns.test are served;
# the suite's TIMEOUT names dropped by the proxy) answer them, and the
# daemon is pointed at that proxy by a reload (SIGUSR1) of its
# configuration: its own lib/dns asks every question on the wire.
# tests/spf/miltercheck.py then runs each test as an MTA would (CONNECT from
# the test's address, HELO, MAIL FROM, RCPT, DATA ... end of message) and
# reads the result from the daemon's refusal (5.7.23 fail, 5.7.24
# permerror, 4.7.24 temperror) or from the Received-SPF header it added,
# checks that header's RFC 7208 9.1 form and, on fail, the explanation
# (exp=) in the reply.  Prints every miss, then per suite
# "rfc7208: N/M, explanations E/F (results alone: R/M)"; fails on any miss, on a daemon that
# does not stop cleanly, or a sanitizer report.  Skips (77) without nsd,
# perl, python3-yaml or the suite files.
set -u

: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_builddir:=.}"
. "$top_srcdir/tests/lib.sh"

py=/usr/bin/python3
if [ -z "${SPF_SUITES:-}" ]; then
	for d in "$top_srcdir/../shared/conformance/spf" /work/shared/conformance/spf; do
		if [ -f "$d/rfc7208-tests.yml" ]; then
			SPF_SUITES="$d/rfc7208-tests.yml $d/rfc4408-tests.yml"
			break
		fi
	done
fi
[ -n "${SPF_SUITES:-}" ] || { echo "SKIP: SPF test suites not found"; exit 77; }
"$py" -c 'import yaml' 2>/dev/null || { echo "SKIP: python3-yaml missing"; exit 77; }
PATH=$PATH:/usr/sbin command -v nsd >/dev/null 2>&1 || { echo "SKIP: nsd missing"; exit 77; }
t_need perl

t_init
mkdir -p "$T/srv" "$T/out" || fail "mkdir"
cp "$top_srcdir/tests/dns/server.sh" "$top_srcdir/tests/dns/faultproxy.pl" \
	"$top_srcdir/tests/dns/dns.test.zone" "$T/srv/" || fail "copy the DNS server scripts"
t_at_exit '[ -f "$T/dns/dns.env" ] && sh "$T/srv/server.sh" stop "$T/dns" >/dev/null 2>&1'

# conf RESOLVER: the daemon's configuration, pointed at RESOLVER.
conf()
{
	t_conf "$T/portcullis.conf" "pidfile = $T/portcullis.pid" "checks = spf" \
		"spf.fail = reject" "spf.permerror = monitor" "spf.on_error = skip" \
		"spf.softfail_score = 0" "spf.authserv_id = mx.example.test" \
		"dns.resolver = $1" "dns.timeout_ms = 1000" "dns.cache_size = 0"
}

conf 127.0.0.1:9
t_start "$T/portcullis.conf" "$T/log" 900
daemon=$T_PID wrap=$T_WRAP

start=$(date +%s)
rc=0
for suite in $SPF_SUITES; do
	name=$(basename "$suite" -tests.yml)
	[ -f "$suite" ] || { echo "SKIP: $suite not found"; exit 77; }
	out=$T/out/$name
	"$py" "$top_srcdir/tests/spf/zones.py" "$suite" "$out" || fail "zones.py $suite"
	: >"$out/all.tests"
	: >"$out/all.results"
	n=1
	while [ -d "$out/$n" ]; do
		s=$out/$n
		DNS_ZONE_DIRS=$s/zones DNS_PROXY_RULES=$(cat "$s/rules") DNS_SERVER_LIFETIME=300 \
			sh "$T/srv/server.sh" start "$T/dns" >/dev/null 2>"$T/dns.err"
		src=$?
		[ $src -eq 77 ] && { echo "SKIP: DNS server"; exit 77; }
		[ $src -eq 0 ] || { cat "$T/dns.err" "$T/dns/nsd.log" 2>/dev/null | tail -n 20;
			fail "DNS server for $name scenario $n"; }
		. "$T/dns/dns.env"
		# Point the daemon at this scenario's server, and wait for the
		# reload to be done before the first transaction.
		before=$(grep -c "configuration reloaded" "$T/log")
		conf "127.0.0.1:$DNS_PROXY_PORT"
		kill -USR1 "$daemon" || fail "SIGUSR1 to the daemon"
		t_wait_for '[ "$(grep -c "configuration reloaded" "$T/log")" -gt "$before" ]' 10 ||
			fail "the daemon did not reload for $name scenario $n"
		timeout 120 "$py" "$top_srcdir/tests/spf/miltercheck.py" run "$T/sock" \
			<"$s/tests" >"$s/results" 2>"$s/errors" || fail "miltercheck.py: $(head -c 2000 "$s/errors")"
		cat "$s/tests" >>"$out/all.tests"
		cat "$s/results" >>"$out/all.results"
		sh "$T/srv/server.sh" stop "$T/dns" >/dev/null 2>&1
		rm -f "$T/dns/dns.env"
		n=$((n + 1))
	done
	"$py" "$top_srcdir/tests/spf/miltercheck.py" grade "$name" "$out/all.tests" \
		"$out/all.results" || rc=1
done
echo "($(($(date +%s) - start)) s)"

t_stop "$daemon" 15 "$wrap"
[ "${T_RC:-}" = 0 ] || t_err "the daemon exited with status ${T_RC:-?} on SIGTERM"
t_grep 'portcullis stopped' "$T/log" "clean stop"
t_sanitizer_clean "$T/log"
[ $rc -eq 0 ] || t_err "SPF conformance: misses (see above)"
t_done
