# contrib/bench/zones.sh - the private DNS of the benchmarks (sourced by
# rspamd.sh and clamav.sh, after tests/lib.sh)
#
# bench_dns DIR LIFETIME: writes the zones rsbench.test and
# 100.51.198.in-addr.arpa into DIR/zones and starts NSD
# (tests/dns/server.sh, DIR/dns, LIFETIME seconds at most, stopped by the
# EXIT trap); sets NSD_PORT and NSD_PID.  The data:
#   - the IP lists zen.rsbench.test and bl2.rsbench.test: 198.51.100.66
#     and the RFC 5782 test entry 127.0.0.2 listed;
#   - the domain list dbl.rsbench.test: bad.snd.rsbench.test (and test)
#     listed;
#   - clients m1..m250.relays.rsbench.test with forward-confirmed PTR
#     records for 198.51.100.1..250, but for .77 (no PTR, no A);
#   - every sender domain *.snd.rsbench.test with an MX and the SPF record
#     "v=spf1 ip4:198.51.100.0/24 -all", *.fail.rsbench.test with an MX and
#     "v=spf1 ip4:192.0.2.0/24 -all" (an SPF fail for those clients).
# A client 198.51.100.N (N not 66, 77) named mN.relays.rsbench.test sending
# as s@cN.snd.rsbench.test passes every check: listed nowhere, FCrDNS,
# SPF pass.  TTL and negative TTL 1 h.  Needs top (the source tree) and
# tests/lib.sh's t_at_exit and fail.
# shellcheck disable=SC2154 # top: set by the script that sources this
bench_dns()
{
	_zd=$1/zones
	mkdir -p "$_zd"
	{
		echo "; written by contrib/bench/zones.sh"
		echo "\$ORIGIN rsbench.test."
		echo "\$TTL 3600"
		echo "@	IN SOA	ns.rsbench.test. hostmaster.rsbench.test. 1 3600 600 86400 3600"
		echo "@	IN NS	ns.rsbench.test."
		echo "ns	IN A	127.0.0.1"
		echo "mx	IN A	192.0.2.25"
		for _l in zen bl2; do
			echo "2.0.0.127.$_l	IN A	127.0.0.2"
			echo "2.0.0.127.$_l	IN TXT	\"test entry\""
			echo "66.100.51.198.$_l	IN A	127.0.0.2"
			echo "66.100.51.198.$_l	IN TXT	\"listed for the benchmark\""
		done
		echo "test.dbl	IN A	127.0.1.2"
		echo "bad.snd.rsbench.test.dbl	IN A	127.0.1.2"
		echo "*.snd	IN MX	10 mx.rsbench.test."
		echo "*.snd	IN TXT	\"v=spf1 ip4:198.51.100.0/24 -all\""
		echo "*.fail	IN MX	10 mx.rsbench.test."
		echo "*.fail	IN TXT	\"v=spf1 ip4:192.0.2.0/24 -all\""
	} >"$_zd/rsbench.test.zone"
	{
		echo "\$ORIGIN 100.51.198.in-addr.arpa."
		echo "\$TTL 3600"
		echo "@	IN SOA	ns.rsbench.test. hostmaster.rsbench.test. 1 3600 600 86400 3600"
		echo "@	IN NS	ns.rsbench.test."
	} >"$_zd/100.51.198.in-addr.arpa.zone"
	# the clients: A and PTR of each
	_i=1
	while [ $_i -le 250 ]; do
		if [ $_i -ne 77 ]; then
			echo "m$_i.relays	IN A	198.51.100.$_i" >>"$_zd/rsbench.test.zone"
			echo "$_i	IN PTR	m$_i.relays.rsbench.test." >>"$_zd/100.51.198.in-addr.arpa.zone"
		fi
		_i=$((_i + 1))
	done
	BENCH_DNSDIR=$1/dns
	t_at_exit 'sh "$top/tests/dns/server.sh" stop "$BENCH_DNSDIR" >/dev/null 2>&1'
	DNS_ZONE_DIRS=$_zd DNS_SERVER_LIFETIME=$2 timeout 30 sh "$top/tests/dns/server.sh" \
		start "$BENCH_DNSDIR" >"$1/dns-start.out" 2>&1 || fail "DNS server: $(cat "$1/dns-start.out")"
	NSD_PORT=$(sed -n 's/^DNS_NSD_PORT=//p' "$BENCH_DNSDIR/dns.env")
	[ -n "$NSD_PORT" ] || fail "no NSD port"
	NSD_PID=$(cat "$BENCH_DNSDIR/nsd.pid" 2>/dev/null)
	[ -n "$NSD_PID" ] || fail "no NSD pid"
}
