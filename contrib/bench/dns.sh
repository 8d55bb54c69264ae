#!/bin/sh
# contrib/bench/dns.sh - what the DNS checks cost: latency with a cold cache,
# CPU with a warm one
#
#   contrib/bench/dns.sh            (from anywhere; needs cc, libmilter-dev,
#                                    nsd, perl)
#
# Starts NSD and the fault proxy of the tests (tests/dns/server.sh: names
# under slow.test are answered 200 ms late) on loopback ports, with two zones
# of its own written into a private temp dir:
#   dnsbench.test       lists l1..l5.dnsbench.test (only the RFC 5782 test
#                       entry 2.0.0.127), lists m1..m5.lag.dnsbench.test
#                       (the same, but the proxy answers them BENCH_LAG,
#                       20, ms late) and SPF: every name under
#                       spf.dnsbench.test has "v=spf1 ip4:198.51.100.0/24
#                       ip4:203.0.113.0/24 -all" (a wildcard)
#   dnsbench.slow.test  the list bl.dnsbench.slow.test, 200 ms late through
#                       the proxy
# Both with a TTL and negative TTL of 1 h, so nothing the warm phase cached
# expires during the run.  Then three filters on unix sockets:
#   noop        noop-milter (the baseline, as in run.sh)
#   portcullis  the default checks (access, helo, envelope), no DNS
#   pc+dns      the defaults plus dnsbl and spf: dnsbl.sites = l1..l5 and
#               the slow list, dns.resolver = the proxy, spf.pass_score = -1
#               (so that the log names spf.pass; the verdict is the same)
#   pc+lag      the same with m1..m5.lag (20 ms) instead of l1..l5 (for (a)
#               only: five lists 20 ms late and one 200 ms late cost ~200
#               ms if asked together, >= 300 ms if asked one after the other)
#
# (a) Latency, cold cache: BENCH_COLD (20) transactions of one message each,
#     one after the other, each from its own client address (203.0.113.N)
#     with its own sender domain (aN.cold.spf.dnsbench.test): every list
#     lookup and every SPF record is asked on the network.  mclient times
#     each transaction from connect() to the final reply at end of message.
#     The first also carries the lists' RFC 5782 self-tests (2 more
#     questions per list, 2 of them slow).  The same again with 4 concurrent
#     connections, with pc+lag, and against portcullis without DNS (the
#     floor).  Before,
#     the script times single questions through the proxy (a fast list, the
#     slow list, the SPF record) to give the sum that asking them one after
#     the other would cost.
# (b) CPU, warm cache: BENCH_ROUNDS (4) rounds of BENCH_MESSAGES (10000)
#     messages, BENCH_PER_CONN (1) per connection, from BENCH_THREADS (4)
#     client threads, the client addresses cycling through BENCH_ADDRS (50)
#     addresses of 198.51.100.0/24, each with its own sender domain; a
#     warm-up (BENCH_WARMUP, 2000 messages) has put every answer in the
#     cache.  The three filters in turn, ABC, CBA...; server CPU per message
#     from /proc/PID/stat (utime + stime), as in run.sh.
#
# Checked, so that a fast but wrong run cannot pass: mclient checks every
# reply (all messages must be accepted); the pc+dns log has one line per
# transaction, all verdict=accept, with the spf.pass symbol, and no warning;
# the proxy's query log shows the questions of each cold transaction and
# NO question at all during the warm rounds (all answers from the cache).
# Nothing is asserted about speed: this is not a test.
#
# Bounded: everything runs under `timeout` (BENCH_LIMIT, default 150 s in
# all); the EXIT trap stops what the script started (filters, NSD, proxy)
# and removes the temp dir (BENCH_KEEP=1 keeps it).  Loopback only.
#
# Environment: PORTCULLIS (default build-bench-plain/milter/portcullis, then
# build/milter/portcullis), CC (cc), BENCH_COLD (20), BENCH_LAG (20), BENCH_MESSAGES
# (10000), BENCH_PER_CONN (1), BENCH_THREADS (4), BENCH_ADDRS (50),
# BENCH_ROUNDS (4), BENCH_WARMUP (2000), BENCH_LIMIT (150), BENCH_VERBOSE,
# BENCH_KEEP.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$here/lib.sh"
if [ -z "${PORTCULLIS:-}" ]; then
	PORTCULLIS=$top/build-bench-plain/milter/portcullis
	[ -x "$PORTCULLIS" ] || PORTCULLIS=$top/build/milter/portcullis
fi
: "${CC:=cc}"
: "${BENCH_COLD:=20}"
: "${BENCH_LAG:=20}"
: "${BENCH_MESSAGES:=10000}"
: "${BENCH_PER_CONN:=1}"
: "${BENCH_THREADS:=4}"
: "${BENCH_ADDRS:=50}"
: "${BENCH_ROUNDS:=4}"
: "${BENCH_WARMUP:=2000}"
: "${BENCH_LIMIT:=150}"

die()
{
	echo "bench-dns: error: $*" >&2
	exit 1
}

[ -x "$PORTCULLIS" ] || die "no portcullis binary at $PORTCULLIS (set PORTCULLIS, or build build-bench-plain)"
command -v "$CC" >/dev/null 2>&1 || die "no C compiler ($CC)"
command -v timeout >/dev/null 2>&1 || die "timeout(1) is needed"
command -v perl >/dev/null 2>&1 || die "perl is needed"
[ -f /usr/include/libmilter/mfapi.h ] || die "libmilter headers missing (apt-get install libmilter-dev)"
if [ "$BENCH_COLD" -lt 2 ] || [ "$BENCH_COLD" -gt 100 ]; then
	die "BENCH_COLD must be 2..100"
fi
if [ "$BENCH_ADDRS" -lt 1 ] || [ "$BENCH_ADDRS" -gt 250 ]; then
	die "BENCH_ADDRS must be 1..250"
fi
if grep -q __asan_init "$PORTCULLIS" 2>/dev/null; then
	echo "bench-dns: warning: $PORTCULLIS is built with AddressSanitizer; figures will be" \
		"several times too slow (use a plain -O2 build)" >&2
fi

START=$(date +%s)
D=$(mktemp -d /tmp/pcbenchdns.XXXXXX) || die "mktemp"
PIDS=   # the filters (signals go to them)
WRAPS=  # their `timeout` wrappers
CLIENT= # the running load's `timeout` wrapper
DNS_UP=

cleanup()
{
	_rc=$?
	set +e
	trap - EXIT INT TERM HUP PIPE
	stop_filters
	[ -n "$DNS_UP" ] && sh "$top/tests/dns/server.sh" stop "$D/dns" >/dev/null 2>&1
	bench_finish bench-dns "$_rc" "$D/dns/nsd.log"
}
bench_traps

# ---- build the two programs ------------------------------------------------
build_tools

# ---- zones, DNS server and proxy -------------------------------------------
mkdir -p "$D/zones"
{
	echo "; written by contrib/bench/dns.sh: five fast lists and a wildcard SPF record"
	echo "\$ORIGIN dnsbench.test."
	echo "\$TTL 3600"
	echo "@	IN SOA	ns.dnsbench.test. hostmaster.dnsbench.test. 1 3600 600 86400 3600"
	echo "@	IN NS	ns.dnsbench.test."
	echo "ns	IN A	127.0.0.1"
	for _i in 1 2 3 4 5; do
		echo "2.0.0.127.l$_i	IN A	127.0.0.2"
		echo "2.0.0.127.m$_i.lag	IN A	127.0.0.2"
	done
	echo "*.spf	IN TXT	\"v=spf1 ip4:198.51.100.0/24 ip4:203.0.113.0/24 -all\""
} >"$D/zones/dnsbench.test.zone"
{
	echo "; written by contrib/bench/dns.sh: one list the proxy answers 200 ms late"
	echo "\$ORIGIN dnsbench.slow.test."
	echo "\$TTL 3600"
	echo "@	IN SOA	ns.dnsbench.test. hostmaster.dnsbench.test. 1 3600 600 86400 3600"
	echo "@	IN NS	ns.dnsbench.test."
	echo "2.0.0.127.bl	IN A	127.0.0.2"
} >"$D/zones/dnsbench.slow.test.zone"

# The rules of server.sh, and the lag lists.
DNS_PROXY_RULES="slow.test=delay:200 lag.dnsbench.test=delay:$BENCH_LAG drop.test=drop"
DNS_PROXY_RULES="$DNS_PROXY_RULES fail.test=servfail refused.test=refused spoof.test=spoof"
export DNS_PROXY_RULES
DNS_ZONE_DIRS=$D/zones DNS_PROXY_VERBOSE=1 DNS_SERVER_LIFETIME=$(left) \
	sh "$top/tests/dns/server.sh" start "$D/dns" >"$D/dns.out" 2>&1 || {
	_rc=$?
	cat "$D/dns.out" >&2
	[ $_rc -eq 77 ] && die "nsd or perl missing (apt-get install nsd perl)"
	die "tests/dns/server.sh could not start NSD and the proxy"
}
DNS_UP=1
PROXY_PORT=$(sed -n 's/^DNS_PROXY_PORT=//p' "$D/dns/dns.env")
[ -n "$PROXY_PORT" ] || die "no proxy port in $D/dns/dns.env"
QLOG=$D/dns/proxy.log

# Questions the proxy has seen so far (its --verbose log).
queries()
{
	grep -c ' query ' "$QLOG" || true
}

# ---- configurations ----------------------------------------------------------
SITES="l1.dnsbench.test, l2.dnsbench.test, l3.dnsbench.test, l4.dnsbench.test,"
SITES="$SITES l5.dnsbench.test, bl.dnsbench.slow.test"
conf()
{
	# conf NAME [LINE...]
	_n=$1
	shift
	{
		echo "socket = unix:$D/$_n.sock"
		echo "state_dir = $D"
		echo "log_target = stderr"
		echo "trusted_networks ="
		echo "hostname = mx.example.test"
		echo "contact = postmaster@example.test"
		for _l in "$@"; do
			echo "$_l"
		done
	} >"$D/$_n.conf"
	"$PORTCULLIS" -t -c "$D/$_n.conf" >"$D/$_n.check" 2>&1 ||
		die "portcullis rejects $D/$_n.conf: $(cat "$D/$_n.check")"
}
LSITES="m1.lag.dnsbench.test, m2.lag.dnsbench.test, m3.lag.dnsbench.test,"
LSITES="$LSITES m4.lag.dnsbench.test, m5.lag.dnsbench.test, bl.dnsbench.slow.test"
conf pc
conf dns \
	"checks = access, helo, envelope, dnsbl, spf" \
	"dnsbl.sites = $SITES" \
	"dns.resolver = 127.0.0.1:$PROXY_PORT" \
	"spf.pass_score = -1"
conf lag \
	"checks = access, helo, envelope, dnsbl, spf" \
	"dnsbl.sites = $LSITES" \
	"dns.resolver = 127.0.0.1:$PROXY_PORT" \
	"spf.pass_score = -1"

# ---- start the filters -----------------------------------------------------
start noop "$D/noop-milter" -p "$D/noop.sock"
start pc "$PORTCULLIS" -f -c "$D/pc.conf"
start dns "$PORTCULLIS" -f -c "$D/dns.conf"
start lag "$PORTCULLIS" -f -c "$D/lag.conf"

HZ=$(getconf CLK_TCK)
NCPU=$(getconf _NPROCESSORS_ONLN)



# client NAME [mclient options]: one mclient run against filter NAME, its
# summary line in $D/out; dies when it fails.
client()
{
	_n=$1
	shift
	[ "$(left)" -gt 5 ] || die "out of time (BENCH_LIMIT=$BENCH_LIMIT s)"
	_t=$(left)
	[ "$_t" -lt 60 ] || _t=60
	timeout -s KILL "$_t" "$D/mclient" -p "$D/$_n.sock" -b 0 -l "$_n" "$@" \
		>"$D/out" 2>"$D/err" &
	CLIENT=$!
	if ! wait "$CLIENT"; then
		CLIENT=
		cat "$D/out" "$D/err" >&2
		die "the load against $_n failed"
	fi
	CLIENT=
	[ -n "${BENCH_VERBOSE:-}" ] && echo "  $(cat "$D/out")"
	return 0
}

# field KEY: a value of the last summary line
field()
{
	sed -n "s/.* $1=\\([^ ]*\\).*/\\1/p" "$D/out"
}

echo "bench-dns: $(date -u '+%Y-%m-%d %H:%M UTC'), $NCPU CPUs," \
	"$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
echo "bench-dns: $("$PORTCULLIS" -V 2>&1 | head -n 1) ($PORTCULLIS)"
echo "bench-dns: NSD + fault proxy on 127.0.0.1:$PROXY_PORT; lists: $SITES; SPF pass" \
	"for the client"
_b0=$(busy_ticks)
sleep 1
_b1=$(busy_ticks)
_busy=$(((_b1 - _b0) * 100 / HZ / NCPU))
echo "bench-dns: other processes keep the CPUs ${_busy}% busy"

# ---- single questions through the proxy --------------------------------------
# ms for one question each, NAME TYPE per line on stdin: "NAME ms".
perl -MIO::Socket::INET -MIO::Select -MTime::HiRes=time -e '
	my $s = IO::Socket::INET->new(Proto => "udp", PeerAddr => "127.0.0.1",
		PeerPort => $ARGV[0]) or die "socket: $!\n";
	my $sel = IO::Select->new($s);
	while (my $l = <STDIN>) {
		my ($name, $type) = split " ", $l;
		my $id = int(rand(65536));
		my $q = pack("nnnnnn", $id, 0x0100, 1, 0, 0, 0);
		$q .= chr(length $_) . $_ for split /\./, $name;
		$q .= "\0" . pack("nn", $type, 1);
		my $t0 = time;
		$s->send($q) or die "send: $!\n";
		my $ok;
		while ($sel->can_read(2)) {
			my $r;
			$s->recv($r, 65535);
			if (length($r) >= 12 && unpack("n", $r) == $id) { $ok = 1; last }
		}
		die "no answer for $name\n" unless $ok;
		printf "%s %.2f\n", $name, (time - $t0) * 1000;
	}' "$PROXY_PORT" >"$D/single" <<EOF || die "timing single questions failed"
1.0.0.10.l1.dnsbench.test 1
2.0.0.10.l1.dnsbench.test 1
3.0.0.10.l1.dnsbench.test 1
4.0.0.10.l1.dnsbench.test 1
5.0.0.10.l1.dnsbench.test 1
6.0.0.10.l1.dnsbench.test 1
7.0.0.10.l1.dnsbench.test 1
1.0.0.10.bl.dnsbench.slow.test 1
2.0.0.10.bl.dnsbench.slow.test 1
3.0.0.10.bl.dnsbench.slow.test 1
1.0.0.10.m1.lag.dnsbench.test 1
2.0.0.10.m1.lag.dnsbench.test 1
3.0.0.10.m1.lag.dnsbench.test 1
q1.single.spf.dnsbench.test 16
q2.single.spf.dnsbench.test 16
q3.single.spf.dnsbench.test 16
q4.single.spf.dnsbench.test 16
q5.single.spf.dnsbench.test 16
q6.single.spf.dnsbench.test 16
q7.single.spf.dnsbench.test 16
EOF
# median of the lines matching $1
single_ms()
{
	grep "$1" "$D/single" | awk '{ print $2 }' | sort -n |
		awk '{ a[NR] = $1 } END { print NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
FAST=$(single_ms '\.l1\.')
SLOW=$(single_ms '\.slow\.')
SPFQ=$(single_ms '\.spf\.')
LAG=$(single_ms '\.lag\.')
echo "bench-dns: one question through the proxy (median): fast list $FAST ms," \
	"lag list $LAG ms, slow list $SLOW ms, SPF TXT $SPFQ ms"

# ---- (a) latency, cold cache -------------------------------------------------
echo "bench-dns: (a) cold cache: $BENCH_COLD transactions, one message each," \
	"each from its own address and sender domain"
q0=$(queries)
client dns -n "$BENCH_COLD" -m 1 -t 1 -a 203.0.113.1 -s '*.cold.spf.dnsbench.test' -L
q1=$(queries)
cold_lat=$(field lat_ms)
cold_med=$(field lat_ms_median)
cold_max=$(field lat_ms_max)
cold_first=${cold_lat%%,*}
# the others: median and max without the first (which has the self-tests)
cold_rest=$(echo "$cold_lat" | tr ',' '\n' | sed 1d | sort -n |
	awk '{ a[NR] = $1 } END { printf "%s %s %s", a[1],
		NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2, a[NR] }')
cold_q=$((q1 - q0))
# Questions per transaction: after the first (with 12 self-test questions).
per_txn_q=$(awk -v q="$cold_q" -v n="$BENCH_COLD" 'BEGIN { printf "%.1f", (q - 12) / n }')
echo "  sequential: $BENCH_COLD transactions, $cold_q questions to the proxy" \
	"($per_txn_q per transaction + 12 self-test questions in the first)"
echo "  ms per transaction: $cold_lat"
[ "$per_txn_q" = 7.0 ] ||
	echo "bench-dns: warning: expected 7 questions per cold transaction (6 lists, 1 SPF)" >&2

client dns -n "$BENCH_COLD" -m 1 -t 4 -a 203.0.113.101 -s '*.cold4.spf.dnsbench.test' -L
par_med=$(field lat_ms_median)
par_max=$(field lat_ms_max)
par_s=$(field seconds)
echo "  4 at a time: median $par_med ms, max $par_max ms; $BENCH_COLD transactions in $par_s s"

client lag -n "$BENCH_COLD" -m 1 -t 1 -a 203.0.113.1 -s '*.lag.spf.dnsbench.test' -L
lag_lat=$(field lat_ms)
lag_first=${lag_lat%%,*}
lag_rest=$(echo "$lag_lat" | tr ',' '\n' | sed 1d | sort -n |
	awk '{ a[NR] = $1 } END { printf "%s %s %s", a[1],
		NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2, a[NR] }')
echo "  5 lists ${LAG} ms late + 1 list ${SLOW} ms late, one at a time, ms per transaction: $lag_lat"

client pc -n "$BENCH_COLD" -m 1 -t 1 -a 203.0.113.1 -s '*.cold.spf.dnsbench.test' -L
floor_med=$(field lat_ms_median)
floor_max=$(field lat_ms_max)
echo "  portcullis without DNS checks, same transactions: median $floor_med ms, max $floor_max ms"

# A question per list and the SPF questions of a transaction, one after the
# other; the first transaction also has 2 self-test questions per list.
seq_one=$(awk -v f="$FAST" -v s="$SLOW" -v p="$SPFQ" -v q="$per_txn_q" \
	'BEGIN { printf "%.1f", s + 5 * f + (q - 6) * p }')
seq_first=$(awk -v f="$FAST" -v s="$SLOW" -v p="$SPFQ" -v q="$per_txn_q" \
	'BEGIN { printf "%.1f", 3 * s + 15 * f + (q - 6) * p }')
lseq_one=$(awk -v f="$LAG" -v s="$SLOW" -v p="$SPFQ" -v q="$per_txn_q" \
	'BEGIN { printf "%.1f", s + 5 * f + (q - 6) * p }')
lseq_first=$(awk -v f="$LAG" -v s="$SLOW" -v p="$SPFQ" -v q="$per_txn_q" \
	'BEGIN { printf "%.1f", 3 * s + 15 * f + (q - 6) * p }')

# ---- (b) CPU, warm cache -----------------------------------------------------
WARM="-a 198.51.100.1 -k $BENCH_ADDRS -s *.warm.spf.dnsbench.test"
echo "bench-dns: (b) warm cache: warm-up, $BENCH_WARMUP messages each" \
	"(addresses 198.51.100.1-$BENCH_ADDRS)"
# shellcheck disable=SC2086 # WARM is words
client noop -N -n "$BENCH_WARMUP" -m "$BENCH_PER_CONN" -t "$BENCH_THREADS" $WARM
# shellcheck disable=SC2086
client pc -n "$BENCH_WARMUP" -m "$BENCH_PER_CONN" -t "$BENCH_THREADS" $WARM
# shellcheck disable=SC2086
client dns -n "$BENCH_WARMUP" -m "$BENCH_PER_CONN" -t "$BENCH_THREADS" $WARM
warm_q0=$(queries)

# load NAME: one measured load; appends "ROUND NAME msgs seconds ticks
# client_us others" to $D/results
load()
{
	_n=$1
	shift
	eval "_p=\$PID_$_n"
	alive "$_p" || die "$_n is not running"
	_c0=$(cpu_ticks "$_p")
	# shellcheck disable=SC2086
	client "$_n" -n "$BENCH_MESSAGES" -m "$BENCH_PER_CONN" -t "$BENCH_THREADS" $WARM "$@"
	sleep 0.2
	_c1=$(cpu_ticks "$_p")
	alive "$_p" || die "$_n died during the load"
	_s=$(field seconds)
	_u=$(field client_cpu_us_per_msg)
	_b0=$(busy_ticks)
	_w0=$(date +%s%N)
	sleep 0.25
	_b1=$(busy_ticks)
	_w1=$(date +%s%N)
	_o=$(echo "$((_b1 - _b0)) $((_w1 - _w0))" | awk -v hz="$HZ" -v ncpu="$NCPU" \
		'{ printf "%.0f", 100 * $1 / hz / ($2 / 1e9 * ncpu) }')
	echo "$r $_n $BENCH_MESSAGES $_s $((_c1 - _c0)) $_u $_o" >>"$D/results"
	echo "$_n $BENCH_MESSAGES $_s $((_c1 - _c0)) $_u $_o" | awk -v hz="$HZ" '{
		printf "  %-5s %6d msgs %6.3f s %6.0f msg/s  server CPU %6.1f us/msg" \
			"  client CPU %5.1f us/msg  others %3d%%\n", $1, $2, $3,
			$2 / $3, $4 / hz * 1e6 / $2, $5, $6 }'
}

: >"$D/results"
r=1
while [ $r -le "$BENCH_ROUNDS" ]; do
	if [ $((r % 2)) -eq 1 ]; then
		echo "bench-dns: round $r"
		load noop -N
		load pc
		load dns
	else
		echo "bench-dns: round $r (reversed)"
		load dns
		load pc
		load noop -N
	fi
	r=$((r + 1))
done
warm_q=$(($(queries) - warm_q0))

# ---- checks ----------------------------------------------------------------
total=$((BENCH_COLD * 2 + BENCH_WARMUP + BENCH_ROUNDS * BENCH_MESSAGES))
lines=$(grep -c ' ref=' "$D/lag.log" || true)
acc=$(grep ' ref=' "$D/lag.log" | grep -c ' verdict=accept .*spf\.pass' || true)
if [ "$lines" -ne "$BENCH_COLD" ] || [ "$acc" -ne "$BENCH_COLD" ]; then
	die "pc+lag logged $lines transactions, $acc accepted with spf.pass, of $BENCH_COLD"
fi
lines=$(grep -c ' ref=' "$D/dns.log" || true)
acc=$(grep ' ref=' "$D/dns.log" | grep -c ' verdict=accept .*spf\.pass' || true)
[ "$lines" -eq "$total" ] || die "pc+dns logged $lines transactions, $total were sent"
[ "$acc" -eq "$total" ] || die "pc+dns logged $acc of $total accepted with spf.pass"
if grep -v 'warning: running as root' "$D/dns.log" | grep -q ': warning: \|: error: '; then
	grep -v 'warning: running as root' "$D/dns.log" | grep ': warning: \|: error: ' | head -n 5 >&2
	die "pc+dns logged warnings or errors"
fi
[ "$warm_q" -eq 0 ] ||
	echo "bench-dns: warning: $warm_q DNS questions during the warm rounds (cache misses)" >&2
echo "bench-dns: logs ok: $total transactions, all accepted with spf.pass;" \
	"$warm_q DNS questions during the warm rounds"

# ---- summary ---------------------------------------------------------------
echo
echo "(a) latency per transaction (connect to the reply at end of message), cold cache"
printf "    6 lists (1 answering %s ms late) + SPF, one at a time: median %s ms, max %s ms\n" \
	"$SLOW" "$cold_med" "$cold_max"
echo "$cold_rest" | awk -v f="$cold_first" -v sf="$seq_first" -v s1="$seq_one" '{
	printf "      first (with the self-tests): %s ms; asked one after the other: >= %s ms\n", f, sf
	printf "      the others: median %s ms (min %s, max %s); one after the other: >= %s ms\n",
		$2, $1, $3, s1 }'
echo "$lag_rest" | awk -v f="$lag_first" -v sf="$lseq_first" -v s1="$lseq_one" -v l="$LAG" '{
	printf "    5 lists %s ms late instead (+ the slow one + SPF), one at a time:\n", l
	printf "      first (with the self-tests): %s ms; asked one after the other: >= %s ms\n", f, sf
	printf "      the others: median %s ms (min %s, max %s); one after the other: >= %s ms\n",
		$2, $1, $3, s1 }'
printf "    4 transactions at a time: median %s ms, max %s ms\n" "$par_med" "$par_max"
printf "    portcullis without DNS checks: median %s ms, max %s ms\n" "$floor_med" "$floor_max"
printf "    one question: fast list %s ms, lag list %s ms, slow list %s ms, SPF TXT %s ms;\n" \
	"$FAST" "$LAG" "$SLOW" "$SPFQ"
printf "    %s questions per transaction\n" "$per_txn_q"
echo
echo "(b) server CPU per message, warm cache ($BENCH_ROUNDS rounds x $BENCH_MESSAGES messages," \
	"$BENCH_PER_CONN per connection, $BENCH_THREADS threads, $BENCH_ADDRS client addresses)"
cpu_table "$D/results" dns portcullis+dns "dns noop dns pc pc noop" "    "
echo
echo "bench-dns: done in $(($(date +%s) - START)) s"
