#!/bin/sh
# tests/dns.sh - lib/dns against a real DNS server
#
# Starts NSD and the fault proxy on loopback ports (tests/dns/server.sh,
# zones in tests/dns/), runs the cmocka program tests/unit/test_dns with
# DNS_NSD_PORT, DNS_PROXY_PORT and DNS_NSD_IP6 exported (it says what it
# asserts), and stops the servers - also when the test fails or is
# interrupted.  Skips (77) without nsd.  Bounded: the unit test gets 120 s,
# the servers end by themselves after 300 s.

: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
. "$top_srcdir/tests/lib.sh"

t_need timeout ss perl
TEST_DNS=$top_builddir/tests/unit/test_dns
[ -x "$TEST_DNS" ] || fail "$TEST_DNS not built (make check builds it)"
t_init
START_MS=$(t_now_ms)

t_at_exit "sh '$top_srcdir/tests/dns/server.sh' stop '$T/dns'"
DNS_SERVER_LIFETIME=300 sh "$top_srcdir/tests/dns/server.sh" start "$T/dns" >"$T/server.out" 2>&1
rc=$?
if [ $rc -eq 77 ]; then
	cat "$T/server.out" >&2
	exit 77
fi
[ $rc -eq 0 ] || {
	cat "$T/server.out" "$T/dns/nsd.log" "$T/dns/proxy.log" >&2 2>/dev/null
	fail "DNS servers did not start"
}
. "$T/dns/dns.env"
export DNS_NSD_PORT DNS_PROXY_PORT DNS_NSD_IP6
echo "NSD on 127.0.0.1:$DNS_NSD_PORT, fault proxy on 127.0.0.1:$DNS_PROXY_PORT" \
	"(servers up after $(($(t_now_ms) - START_MS)) ms)"

T0=$(t_now_ms)
timeout 120 "$TEST_DNS" >"$T/test_dns.log" 2>&1
rc=$?
cat "$T/test_dns.log"
echo "test_dns: exit $rc after $(($(t_now_ms) - T0)) ms"
[ $rc -eq 0 ] || t_err "test_dns failed (exit $rc)"
grep -q '^\[  PASSED  \] 19 test(s)' "$T/test_dns.log" ||
	t_err "test_dns did not pass all 19 tests (none may be skipped here)"
t_sanitizer_clean "$T/test_dns.log" test_dns
echo "dns.sh: $(($(t_now_ms) - START_MS)) ms in all"
t_done
