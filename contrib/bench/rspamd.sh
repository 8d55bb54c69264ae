#!/bin/sh
# contrib/bench/rspamd.sh - portcullis' DNS checks against rspamd's, through
# the same Postfix, on the same DNS data, in one run
#
#   contrib/bench/rspamd.sh     (as root, from anywhere; a plain -O2 build,
#                                PORTCULLIS=/path/to/portcullis)
#
# Installs nothing on its own: without rspamd it prints "skipped: rspamd not
# installed" and exits 77, unless it runs as root with BENCH_INSTALL=1, when
# it installs the Debian package (apt-get install --no-install-recommends
# rspamd; the package's own service is not started by this script).
#
# DNS: NSD (tests/dns/server.sh) on a loopback port serves the zones
# contrib/bench/zones.sh writes (rsbench.test, 100.51.198.in-addr.arpa): the IP lists
# zen.rsbench.test and bl2.rsbench.test (198.51.100.66 and the RFC 5782
# entry 127.0.0.2 listed), the domain list dbl.rsbench.test
# (bad.snd.rsbench.test listed), clients m1..m250.relays.rsbench.test with
# forward-confirmed PTR records for 198.51.100.1..250 (but .77: no PTR),
# and every sender domain *.snd.rsbench.test with an MX and the SPF record
# "v=spf1 ip4:198.51.100.0/24 -all".  TTL and negative TTL 1 h.  Both
# filters ask this server and nothing else.
#
# The filters, each behind its own smtpd port of ONE private Postfix
# (XCLIENT from 127.0.0.1 sets the client address, name and HELO of each
# session; smtpd_milter_maps gives the load's own 127.0.0.1 connection no
# milter, so each filter sees one milter connection per session; accepted
# mail is discarded):
#   noop        contrib/bench/noop-milter.c (the floor: libmilter + Postfix)
#   portcullis  checks = BENCH_CHECKS (default access helo envelope dnsbl
#               rhsbl sender_domain client_dns spf): dnsbl.reject_sites =
#               zen, dnsbl.sites = bl2, rhsbl.reject_sites = dbl, SPF headers
#               added (the default), its in-process DNS cache
#   rspamd      rspamd 3.x as Debian ships it, its rspamd_proxy worker in
#               milter mode with self_scan (no normal worker, no controller),
#               minus what would leave the host or needs Redis (fuzzy_check,
#               asn, dmarc, arc, bimi, multimap, phishing, whitelist, mid,
#               mime_types, rspamd_update, ...), its rbl rules replaced by the
#               same three lists (zen and bl2 for the client address, dbl for
#               the SMTP sender's domain), hfilter (helo, hostname, from, rcpt:
#               HELO and client name A lookups, the sender domain's MX/A),
#               spf, milter_headers (X-Spamd-Result, Authentication-Results)
#   rspamd-min  the same, but only rbl, hfilter, spf and milter_headers:
#               every other plugin off and no C filters (filters = "") -
#               rspamd doing no more than the checks both do
# Mapping of the checks: dnsbl -> rbl (from = client IP); rhsbl (sender) ->
# rbl with selector from('smtp'):domain; sender_domain (MX, else A/AAAA) ->
# hfilter from_enabled (HFILTER_FROMHOST_NORES_A_OR_MX: rspamd has no exact
# equivalent; mx_check would connect to port 25); client_dns (FCrDNS and
# HELO A) -> hfilter helo_enabled + hostname_enabled (rspamd takes the PTR
# name from the MTA and looks up its A record and the HELO's A/MX; it asks
# no PTR itself); spf -> spf.  rspamd keeps no DNS cache of its own (it
# expects a caching resolver beside it; its SPF module caches records): its
# warm-cache questions go to NSD, whose CPU is shown apart.
#
# Checked before the rounds (probes): from the listed client 198.51.100.66
# and from the listed sender domain portcullis refuses (550) and rspamd
# logs RSBENCH_ZEN and RSBENCH_DBL; a non-existent sender domain gives
# portcullis' sender_domain refusal and rspamd's
# HFILTER_FROMHOST_NORES_A_OR_MX; a client without PTR gives
# client_dns.no_ptr and HFILTER_HOSTNAME_UNKNOWN; an SPF fail (a sender
# domain whose record does not list the client) spf refusal and R_SPF_FAIL.
# After the rounds: every load message accepted (250); portcullis logged one
# line per message with spf.pass, rspamd one task line per message with
# R_SPF_ALLOW (and rspamd-min the same).
#
# Measured: BENCH_ROUNDS (4) rounds of BENCH_MESSAGES (1000) messages of
# BENCH_SIZE (4000) bytes, BENCH_PER_CONN (5) per session, BENCH_THREADS (4)
# sessions at once, from BENCH_ADDRS (50) clients, after a warm-up of every
# filter (so every answer is cached where the filter caches); the order of
# the filters turns each round (ABCD, DCBA, ...).  CPU of the filter's
# processes per message from /proc/PID/stat (portcullis: the daemon;
# rspamd: the main process and all its workers; noop: the process), and
# NSD's.  Printed: min/median/max per filter, the median of the per-round
# ratios, and a block after a line "summary:" for compare.sh.  Nothing is
# asserted about speed.  Bounded: everything under timeout, BENCH_LIMIT
# (600) s in all, stopped by the EXIT trap; loopback only.
#
# More: PORTCULLIS_BEFORE=/path/to/portcullis adds that binary as the
# filter pc-before (same config) for a before/after in the same rounds;
# BENCH_RSPAMD=0 leaves rspamd out; BENCH_CALLGRIND=1 runs portcullis (and
# pc-before) under callgrind, instrumented from the end of the warm-up, and
# prints Ir per message (the store's background expiry thread included:
# compare mi_engine in $T/*.incl, kept with T_KEEP=1); BENCH_STRACE=1 runs
# them under strace -c -f (system calls per message, warm-up and probes
# included, in $T/*.strace); BENCH_PC_CONF adds portcullis config lines.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
top_srcdir=$top
if [ -z "${PORTCULLIS:-}" ]; then
	PORTCULLIS=$top/build-bench-plain/milter/portcullis
	[ -x "$PORTCULLIS" ] || PORTCULLIS=$top/build/milter/portcullis
fi
: "${CC:=cc}"
N=${BENCH_MESSAGES:-1000}
ROUNDS=${BENCH_ROUNDS:-4}
SIZE=${BENCH_SIZE:-4000}
PER_CONN=${BENCH_PER_CONN:-5}
THREADS=${BENCH_THREADS:-4}
NADDR=${BENCH_ADDRS:-50}
BENCH_LIMIT=${BENCH_LIMIT:-600}
CHECKS=${BENCH_CHECKS:-access helo envelope dnsbl rhsbl sender_domain client_dns spf}
PATH=$PATH:/usr/sbin:/sbin
. "$top/tests/lib.sh"
. "$top/tests/e2e/postfix-lib.sh"
. "$here/lib.sh"
. "$here/zones.sh"

# BENCH_RSPAMD=0: portcullis and the noop milter only (profiling, before/after)
RS=${BENCH_RSPAMD:-1}
if [ "$RS" = 1 ] && ! command -v rspamd >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ] && [ "${BENCH_INSTALL:-0}" = 1 ]; then
		echo "bench-rspamd: installing the Debian package rspamd (BENCH_INSTALL=1)"
		DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q \
			--no-install-recommends rspamd >/dev/null || fail "apt-get install rspamd failed"
	else
		echo "skipped: rspamd not installed (as root, BENCH_INSTALL=1 installs the Debian package)"
		exit 77
	fi
fi
[ "$(id -u)" = 0 ] || { echo "skipped: needs root (a private Postfix instance)"; exit 77; }
t_need postfix python3 nsd perl timeout "$CC"
[ "${BENCH_CALLGRIND:-0}" = 1 ] && t_need valgrind callgrind_control callgrind_annotate
[ "${BENCH_STRACE:-0}" = 1 ] && t_need strace
[ -x "$PORTCULLIS" ] || fail "no portcullis at $PORTCULLIS (build it, or set PORTCULLIS)"
[ "$ROUNDS" -ge 1 ] && [ "$ROUNDS" -le 20 ] || fail "BENCH_ROUNDS must be 1..20"
[ "$N" -ge 50 ] && [ "$N" -le 20000 ] || fail "BENCH_MESSAGES must be 50..20000"
# clients 66 (listed) and 77 (no PTR) are the probes
[ "$NADDR" -ge 1 ] && [ "$NADDR" -le 65 ] || fail "BENCH_ADDRS must be 1..65"
if grep -q __asan_init "$PORTCULLIS" 2>/dev/null; then
	echo "bench-rspamd: warning: $PORTCULLIS is built with AddressSanitizer; use a plain -O2 build" >&2
fi
RSPAMD=$(command -v rspamd)
RSPAMD_USER=_rspamd
getent passwd "$RSPAMD_USER" >/dev/null || RSPAMD_USER=nobody
FILTERS="noop pc"
if [ -n "${PORTCULLIS_BEFORE:-}" ]; then
	[ -x "$PORTCULLIS_BEFORE" ] || fail "no portcullis at PORTCULLIS_BEFORE=$PORTCULLIS_BEFORE"
	FILTERS="$FILTERS pcold"
fi
[ "$RS" = 1 ] && FILTERS="$FILTERS rspamd rspamd-min"
START=$(date +%s)
t_init
[ -n "$T" ] && [ -d "$T" ] || fail "no temp dir"
chmod 755 "$T"
D=$T
die() { fail "$*"; }

# --- zones and NSD (contrib/bench/zones.sh) -----------------------------------------
bench_dns "$T" "$(left)"

# --- noop milter ---------------------------------------------------------------------------
"$CC" -O2 -Wall -Wextra -o "$T/noop-milter" "$here/noop-milter.c" -lmilter -lpthread ||
	fail "cannot build noop-milter.c"
timeout -s KILL "$(left)" "$T/noop-milter" -p "$T/noop.sock" 2>"$T/noop.log" &
NOOP_WRAP=$!
t_at_exit "kill $NOOP_WRAP 2>/dev/null"
t_wait_for '[ -S "$T/noop.sock" ]' 10 || fail "noop-milter did not start"
chmod 666 "$T/noop.sock"
NOOP_PID=$(pgrep -P "$NOOP_WRAP" | head -1)

# --- portcullis ----------------------------------------------------------------------------
# pc_start NAME BINARY: config $T/NAME.conf, socket $T/NAME/sock, log
# $T/NAME.log; sets PID_NAME
pc_start()
{
	mkdir -p "$T/$1"
	cat >"$T/$1.conf" <<EOF
socket = unix:$T/$1/sock
socket_mode = 0666
state_dir = $T/$1
log_target = stderr
trusted_networks = 127.0.0.0/8
hostname = mx.example.test
contact = postmaster@example.test
checks = $CHECKS
dns.resolver = 127.0.0.1:$NSD_PORT
dnsbl.reject_sites = zen.rsbench.test
dnsbl.sites = bl2.rsbench.test
rhsbl.reject_sites = dbl.rsbench.test
spf.pass_score = -0.1
$(printf '%s\n' "${BENCH_PC_CONF:-}")
EOF
	"$2" -t -c "$T/$1.conf" >"$T/$1.check" 2>&1 ||
		fail "portcullis rejects its config: $(cat "$T/$1.check")"
	_pre=
	[ "${BENCH_CALLGRIND:-0}" = 1 ] &&
		_pre="valgrind -q --tool=callgrind --instr-atstart=no --callgrind-out-file=$T/$1.cg"
	[ "${BENCH_STRACE:-0}" = 1 ] && _pre="strace -c -f -o $T/$1.strace"
	timeout -s KILL "$(left)" $_pre "$2" -f -c "$T/$1.conf" 2>"$T/$1.log" &
	_w=$!
	t_at_exit "kill $_w 2>/dev/null"
	t_wait_for "[ -S '$T/$1/sock' ]" 60 || fail "$1 did not start: $(tail -5 "$T/$1.log")"
	if [ "${BENCH_STRACE:-0}" = 1 ]; then
		eval "PID_$1=\$(pgrep -P \$(pgrep -P $_w | head -1) | head -1)"
	else
		eval "PID_$1=\$(pgrep -P $_w | head -1)"
	fi
}
pc_start pc "$PORTCULLIS"
PC_PID=$PID_pc
[ -n "${PORTCULLIS_BEFORE:-}" ] && pc_start pcold "$PORTCULLIS_BEFORE"

# --- rspamd, twice ---------------------------------------------------------------------------
# rspamd_conf DIR VARIANT: Debian's /etc/rspamd/rspamd.conf with local.d
# and override.d of our own in DIR/etc
rspamd_conf()
{
	_r=$1
	mkdir -p "$_r/etc/local.d" "$_r/etc/override.d" "$_r/run" "$_r/db" "$_r/log"
	cat >"$_r/etc/override.d/worker-proxy.inc" <<EOF
bind_socket = "$_r/proxy.sock mode=0666";
milter = yes;
timeout = 120s;
count = 1;
upstream "local" {
  default = yes;
  self_scan = yes;
}
discard_on_reject = false;
quarantine_on_reject = false;
reject_message = "Spam message rejected";
EOF
	echo "enabled = false;" >"$_r/etc/override.d/worker-normal.inc"
	echo "enabled = false;" >"$_r/etc/override.d/worker-controller.inc"
	echo "count = -1;" >"$_r/etc/override.d/worker-fuzzy.inc"
	cat >"$_r/etc/local.d/options.inc" <<EOF
dns {
  nameserver = ["127.0.0.1:$NSD_PORT"];
  timeout = 2s;
  retransmits = 2;
}
local_addrs = [];
control_socket = "$_r/run/control.sock mode=0600";
EOF
	if [ "$2" = min ]; then
		echo 'filters = "";' >>"$_r/etc/local.d/options.inc"
	else
		echo 'filters = "chartable,dkim,regexp";' >>"$_r/etc/local.d/options.inc"
	fi
	cat >"$_r/etc/local.d/logging.inc" <<EOF
level = "info";
EOF
	cat >"$_r/etc/override.d/rbl.conf" <<EOF
rbls {
  rsbench_zen {
    symbol = "RSBENCH_ZEN";
    rbl = "zen.rsbench.test";
    ipv4 = true;
    ipv6 = true;
    from = true;
    received = false;
    ignore_defaults = true;
  }
  rsbench_bl2 {
    symbol = "RSBENCH_BL2";
    rbl = "bl2.rsbench.test";
    ipv4 = true;
    ipv6 = true;
    from = true;
    received = false;
    ignore_defaults = true;
  }
  rsbench_dbl {
    symbol = "RSBENCH_DBL";
    rbl = "dbl.rsbench.test";
    selector = "from('smtp'):domain";
    ignore_defaults = true;
  }
}
EOF
	cat >"$_r/etc/override.d/hfilter.conf" <<EOF
helo_enabled = true;
hostname_enabled = true;
from_enabled = true;
rcpt_enabled = true;
url_enabled = false;
mid_enabled = false;
EOF
	cat >"$_r/etc/override.d/milter_headers.conf" <<EOF
use = ["x-spamd-result", "authentication-results"];
skip_local = false;
skip_authenticated = false;
EOF
	echo "fuzzy_check { enabled = false; }" >"$_r/etc/rspamd.conf.local"
	_off="asn dmarc arc bimi multimap phishing whitelist mid mime_types rspamd_update
		dkim_signing external_services antivirus metric_exporter clickhouse elastic
		neural ratelimit greylist reputation history_redis replies spamtrap dcc
		mx_check p0f aws_s3 external_relay metadata_exporter url_redirector
		fuzzy_collect clustering"
	if [ "$2" = min ]; then
		for _p in /usr/share/rspamd/plugins/*.lua; do
			_n=$(basename "$_p" .lua)
			case $_n in rbl | hfilter | spf | milter_headers) ;; *) _off="$_off $_n" ;; esac
		done
	fi
	for _n in $_off; do
		echo "enabled = false;" >"$_r/etc/override.d/$_n.conf"
	done
	chown -R "$RSPAMD_USER" "$_r"
}

# rspamd_start NAME VAR: start it, set RS_PID_VAR (the main process)
rspamd_start()
{
	_r=$T/$1
	timeout -s KILL "$(left)" "$RSPAMD" -f -u "$RSPAMD_USER" -g "$(id -gn "$RSPAMD_USER")" \
		-c /etc/rspamd/rspamd.conf --var="LOCAL_CONFDIR=$_r/etc" --var="RUNDIR=$_r/run" \
		--var="DBDIR=$_r/db" --var="LOGDIR=$_r/log" >"$T/$1.out" 2>&1 &
	_w=$!
	t_at_exit "kill -TERM \$(pgrep -P $_w) 2>/dev/null; sleep 1; kill $_w 2>/dev/null"
	t_wait_for "[ -S '$_r/proxy.sock' ]" 120 ||
		fail "$1 did not start: $(tail -5 "$T/$1.out" "$_r/log/rspamd.log" 2>/dev/null)"
	eval "RS_PID_$2=\$(pgrep -P $_w | head -1)"
}
if [ "$RS" = 1 ]; then
rspamd_conf "$T/rspamd" full
rspamd_conf "$T/rspamd-min" min
rspamd_start rspamd full
rspamd_start rspamd-min min
# Measure rspamd with its regular expressions compiled by hyperscan, as it
# runs in production (before that it falls back to PCRE)
# (rspamd-min has no regexp filter: no hyperscan database)
t_wait_for "grep -q 'hyperscan database of .* has been loaded' '$T/rspamd/log/rspamd.log'" 180 ||
	echo "bench-rspamd: warning: rspamd has not loaded its hyperscan database after 180 s" >&2
fi
# tree PID: PID and all its descendants
tree()
{
	echo "$1"
	for _c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
		tree "$_c"
	done
}
# all processes of an rspamd: the main and its workers
rspamd_pids() { tree "$1" | tr '\n' ' '; }

# --- Postfix ----------------------------------------------------------------------------------
PF=$T/postfix Q=$T/queue
mkdir -p "$PF" "$Q" "$T/data"
chown postfix "$T/data"
# one smtpd port per filter: PORT_<filter> and its master.cf line
LISTEN=
: >"$T/master.head"
for f in $FILTERS; do
	_p=$(t_free_port)
	case " $LISTEN " in *" $_p "*) fail "port collision, run again" ;; esac
	LISTEN="$LISTEN $_p"
	v=$(echo "$f" | tr -d -)
	eval "PORT_$v=$_p"
	case $f in
	noop) sock=$T/noop.sock ;; pc | pcold) sock=$T/$f/sock ;; *) sock=$T/$f/proxy.sock ;;
	esac
	echo "127.0.0.1:$_p inet n - n - - smtpd -o smtpd_milters=unix:$sock" >>"$T/master.head"
done
pf_bench_main_cf \
	"smtpd_authorized_xclient_hosts = 127.0.0.0/8" \
	"smtpd_milter_maps = cidr:$PF/milter_maps" \
	"smtpd_client_connection_count_limit = 0" \
	"smtpd_client_connection_rate_limit = 0" >"$PF/main.cf"
cat >"$PF/master.cf" <<EOF
$(cat "$T/master.head")
$(pf_services)
EOF
# No milter for the load's own connection from 127.0.0.1: the filter sees
# only the session that XCLIENT makes (Postfix sets the milters up again
# for the new client), as for a real client, not two connections.
echo "127.0.0.0/8 DISABLE" >"$PF/milter_maps"
timeout 30 postfix -c "$PF" check >"$T/pf.out" 2>&1 || fail "postfix check: $(cat "$T/pf.out")"
timeout 30 postfix -c "$PF" start >>"$T/pf.out" 2>&1 || fail "postfix start: $(cat "$T/pf.out")"
t_at_exit "timeout 20 postfix -c '$PF' stop >/dev/null 2>&1; sleep 2"
for _p in $LISTEN; do
	t_wait_for "t_port_busy $_p" 15 || fail "Postfix does not listen on $_p"
done

port_of() { eval "echo \$PORT_$(echo "$1" | tr -d -)"; }
P_PC=$(port_of pc)
LOAD="timeout 300 python3 $here/xclientload.py"

# --- probes: both filters really do the checks --------------------------------------------
# probe FILTER PORT ADDR NAME HELO SENDER: the reply code
probe() { $LOAD probe "$2" "$3" "$4" "$5" "$6" 2>"$T/probe.err" || echo "error"; }
# rspamd_sym NAME SENDER SYMBOL: rspamd NAME logged SYMBOL for a task from SENDER
rspamd_sym()
{
	t_wait_for "grep 'from: <$2>' '$T/$1/log/rspamd.log' | grep -q '$3'" 10
}
cn=m1.relays.rsbench.test
for f in $FILTERS; do
	case $f in rspamd*) ;; *) continue ;; esac
	port=$(port_of "$f")
	r=$(probe "$f" "$port" 198.51.100.66 m66.relays.rsbench.test m66.relays.rsbench.test s@p1.snd.rsbench.test)
	rspamd_sym "$f" s@p1.snd.rsbench.test RSBENCH_ZEN || t_err "$f: no RSBENCH_ZEN for the listed client ($r)"
	rspamd_sym "$f" s@p1.snd.rsbench.test RSBENCH_BL2 || t_err "$f: no RSBENCH_BL2 for the listed client ($r)"
	r=$(probe "$f" "$port" 198.51.100.1 $cn $cn s@bad.snd.rsbench.test)
	rspamd_sym "$f" s@bad.snd.rsbench.test RSBENCH_DBL || t_err "$f: no RSBENCH_DBL for the listed domain ($r)"
	r=$(probe "$f" "$port" 198.51.100.1 $cn $cn s@nx.rsbench.test)
	rspamd_sym "$f" s@nx.rsbench.test HFILTER_FROMHOST_NORES_A_OR_MX ||
		t_err "$f: no HFILTER_FROMHOST_NORES_A_OR_MX for a sender domain that does not exist ($r)"
	r=$(probe "$f" "$port" 198.51.100.77 - m77.relays.rsbench.test s@p2.snd.rsbench.test)
	rspamd_sym "$f" s@p2.snd.rsbench.test HFILTER_HOSTNAME_UNKNOWN ||
		t_err "$f: no HFILTER_HOSTNAME_UNKNOWN for a client without PTR ($r)"
	rspamd_sym "$f" s@p2.snd.rsbench.test HFILTER_HELO_NORES_A_OR_MX ||
		t_err "$f: no HFILTER_HELO_NORES_A_OR_MX for a HELO name that does not exist ($r)"
	r=$(probe "$f" "$port" 198.51.100.1 $cn $cn s@p3.fail.rsbench.test)
	rspamd_sym "$f" s@p3.fail.rsbench.test R_SPF_FAIL || t_err "$f: no R_SPF_FAIL ($r)"
done
# portcullis (and pc-before, so that both hold the same state): the reply,
# and the symbol in its log line
pc_probe()
{
	# pc_probe WHAT EXPECTED_CODE SYMBOL ADDR NAME HELO SENDER
	_r=$(probe "$pf" "$(port_of "$pf")" "$4" "$5" "$6" "$7")
	[ "$_r" = "$2" ] || t_err "$pf: $1: reply $_r, expected $2"
	t_wait_for "grep 'from=<$7>' '$T/$pf.log' | grep -q '$3'" 10 ||
		t_err "$pf: $1: no $3 in the log line"
}
for pf in $FILTERS; do
	case $pf in pc | pcold) ;; *) continue ;; esac
	pc_probe "listed client" 550 dnsbl.zen.rsbench.test 198.51.100.66 m66.relays.rsbench.test \
		m66.relays.rsbench.test s@p1.snd.rsbench.test
	t_wait_for "grep 'from=<s@p1.snd.rsbench.test>' '$T/$pf.log' | grep -q 'dnsbl.bl2.rsbench.test'" 5 ||
		t_err "$pf: listed client: no dnsbl.bl2.rsbench.test in the log line"
	pc_probe "listed sender domain" 550 rhsbl.sender.dbl.rsbench.test 198.51.100.1 $cn $cn \
		s@bad.snd.rsbench.test
	pc_probe "sender domain does not exist" 550 sender_domain.nxdomain 198.51.100.1 $cn $cn \
		s@nx.rsbench.test
	pc_probe "client without PTR" 250 client_dns.no_ptr 198.51.100.77 - m77.relays.rsbench.test \
		s@p2.snd.rsbench.test
	t_wait_for "grep 'from=<s@p2.snd.rsbench.test>' '$T/$pf.log' | grep -q 'client_dns.helo_mismatch'" 5 ||
		t_err "$pf: client without PTR: no client_dns.helo_mismatch in the log line"
	pc_probe "SPF fail" 550 spf.fail 198.51.100.1 $cn $cn s@p3.fail.rsbench.test
done
[ "$T_FAILS" = 0 ] || fail "the probes failed: the filters do not do the checks (see above)"
echo "bench-rspamd: probes ok: the filters found the listed client, the listed sender domain," \
	"the missing domain, the client without PTR and the SPF fail"

# --- load --------------------------------------------------------------------------------------
HZ=$(getconf CLK_TCK)
cpu() { # ticks of utime+stime of the pids
	_s=0
	for _p in "$@"; do
		_v=$(cpu_ticks "$_p" 2>/dev/null)
		_s=$((_s + ${_v:-0}))
	done
	echo $_s
}
pids_of()
{
	case $1 in
	noop) echo "$NOOP_PID" ;;
	pc) echo "$PC_PID" ;;
	pcold) echo "$PID_pcold" ;;
	rspamd) rspamd_pids "$RS_PID_full" ;;
	rspamd-min) rspamd_pids "$RS_PID_min" ;;
	esac
}
# tasks PID: "TID TICKS" of each thread of PID
tasks()
{
	for _t in /proc/"$1"/task/*; do
		[ -r "$_t/stat" ] && echo "${_t##*/} $(sed 's/^.*) //' "$_t/stat" | awk '{ print $12 + $13 }')"
	done 2>/dev/null
}
# bg_ticks BEFORE AFTER: ticks of the threads alive at both samples (the
# daemon's long-lived threads: the store's expiry, libmilter's listener;
# libmilter's per-connection threads come and go within a load)
bg_ticks()
{
	awk 'NR == FNR { t[$1] = $2; next } ($1 in t) { s += $2 - t[$1] } END { print s + 0 }' "$1" "$2"
}
nsd_pids() { tree "$NSD_PID" | tr '\n' ' '; }
: >"$T/results"
# run ROUND FILTER COUNT
run()
{
	_pids=$(pids_of "$2")
	_npids=$(nsd_pids)
	case $2 in noop | pc | pcold) tasks $_pids >"$T/tasks0" ;; *) : >"$T/tasks0" ;; esac
	_c0=$(cpu $_pids)
	_n0=$(cpu $_npids)
	_out=$($LOAD load "$(port_of "$2")" "$3" "$THREADS" "$PER_CONN" "$NADDR" "$SIZE") ||
		fail "$2: wrong answers: $_out"
	_c1=$(cpu $_pids)
	_n1=$(cpu $_npids)
	case $2 in noop | pc | pcold) tasks $_pids >"$T/tasks1" ;; *) : >"$T/tasks1" ;; esac
	_b=$(bg_ticks "$T/tasks0" "$T/tasks1")
	_secs=$(echo "$_out" | sed -n 's/.*secs=\([0-9.]*\).*/\1/p')
	echo "$1 $2 $3 $_secs $((_c1 - _c0)) $((_n1 - _n0)) $_b" >>"$T/results"
	[ "$1" = 0 ] || printf 'round %d %-11s %s  CPU %d us/msg (NSD %d, long-lived threads %d us/msg)\n' \
		"$1" "$2" "$_out" $(((_c1 - _c0) * 1000000 / HZ / $3)) $(((_n1 - _n0) * 1000000 / HZ / $3)) \
		$((_b * 1000000 / HZ / $3))
}
WARM=$((NADDR * PER_CONN * 2))
REVERSED=$(echo "$FILTERS" | tr ' ' '\n' | sed '1!G;h;$!d' | tr '\n' ' ')
echo "bench-rspamd: warm-up ($WARM messages each), then $ROUNDS rounds of $N messages of $SIZE bytes," \
	"$PER_CONN per session, $THREADS sessions, $NADDR clients; filters $FILTERS"
for f in $FILTERS; do
	run 0 "$f" "$WARM"
done
sed -i '/^0 /d' "$T/results"
if [ "${BENCH_CALLGRIND:-0}" = 1 ]; then
	for f in $FILTERS; do
		case $f in pc | pcold) timeout 30 callgrind_control -i on "$(pids_of "$f")" >/dev/null ;; esac
	done
fi
r=1
while [ $r -le "$ROUNDS" ]; do
	if [ $((r % 2)) = 1 ]; then order=$FILTERS; else order=$REVERSED; fi
	for f in $order; do
		[ "$(left)" -gt 20 ] || fail "BENCH_LIMIT reached"
		run "$r" "$f" "$N"
	done
	r=$((r + 1))
done

if [ "${BENCH_CALLGRIND:-0}" = 1 ]; then
	for f in $FILTERS; do
		case $f in pc | pcold) ;; *) continue ;; esac
		timeout 60 callgrind_control -d "$(pids_of "$f")" >/dev/null
		_cg=$(ls "$T/$f.cg".* 2>/dev/null | tail -1)
		[ -n "$_cg" ] || { t_err "$f: no callgrind dump"; continue; }
		callgrind_annotate --inclusive=yes "$_cg" >"$T/$f.incl" 2>/dev/null
		callgrind_annotate "$_cg" >"$T/$f.self" 2>/dev/null
		_ir=$(sed -n 's/^ *\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' "$T/$f.self" | tr -d ,)
		echo "callgrind $f: $((_ir / (N * ROUNDS))) Ir per message ($_ir Ir for $((N * ROUNDS)) messages);" \
			"$T/$f.self, $T/$f.incl"
		[ -n "${BENCH_CG_SAVE:-}" ] && cp "$_cg" "$BENCH_CG_SAVE.$f"
	done
fi

if [ "${BENCH_STRACE:-0}" = 1 ]; then
	for f in $FILTERS; do
		case $f in pc | pcold) ;; *) continue ;; esac
		kill -TERM "$(pids_of "$f")" 2>/dev/null
		t_wait_for "grep -q ' total' '$T/$f.strace'" 30 || { t_err "$f: no strace summary"; continue; }
		_calls=$(awk '$NF == "total" { print ($4 ~ /^[0-9]+$/) ? $4 : $3 }' "$T/$f.strace")
		echo "strace $f: $((_calls / (WARM + N * ROUNDS))) system calls per message" \
			"($_calls for $((WARM + N * ROUNDS)) messages and the probes); $T/$f.strace"
		sed -n '3,12p' "$T/$f.strace"
	done
fi

# --- checks of the logs ------------------------------------------------------------------------
total=$((WARM + N * ROUNDS))
for f in $FILTERS; do
	case $f in
	pc | pcold)
		n=$(grep -c 'from=<s@c[0-9]*\.snd\.rsbench\.test>.*verdict=accept' "$T/$f.log")
		[ "$n" = "$total" ] || t_err "$f logged $n accepted load messages, expected $total"
		n=$(grep 'from=<s@c[0-9]*\.snd\.rsbench\.test>' "$T/$f.log" | grep -c 'spf\.pass')
		[ "$n" = "$total" ] || t_err "$f: $n load messages with spf.pass, expected $total"
		grep 'warning' "$T/$f.log" | grep -v 'running as root' | head -3
		;;
	rspamd*)
		n=$(grep 'from: <s@c[0-9]*\.snd\.rsbench\.test>' "$T/$f/log/rspamd.log" | grep -c 'R_SPF_ALLOW')
		[ "$n" = "$total" ] || t_err "$f: $n load messages with R_SPF_ALLOW, expected $total"
		;;
	esac
done

# --- the table ------------------------------------------------------------------------------------
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null; }
rss_sum()
{
	_s=0
	for _p in "$@"; do
		_r=$(rss "$_p")
		_s=$((_s + ${_r:-0}))
	done
	echo $_s
}
MEM=
for f in $FILTERS; do
	MEM="$MEM $f $(rss_sum $(pids_of "$f")) KiB"
done
awk -v hz="$HZ" -v mem="$MEM" -v checks="$CHECKS" -v filters="$FILTERS" '
function sort(a, m,    i, j, x) {
	for (i = 2; i <= m; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
}
function med(a, m) { sort(a, m); return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2 }
# ratio X Y: median of the per-round CPU ratios, with lo_ hi_ the range
function ratio(x, y,    r, a, m) {
	for (r = 1; r <= R; r++) if (c[y, r] > 0) a[++m] = c[x, r] / c[y, r]
	if (!m) { lo_ = hi_ = 0; return 0 }   # too few messages for one clock tick
	v_ = med(a, m); lo_ = a[1]; hi_ = a[m]; return v_
}
function extra(x, y, z,    r, a, m) {  # (x - z) / (y - z) per round, median; -1: none
	for (r = 1; r <= R; r++) if (c[y, r] > c[z, r]) a[++m] = (c[x, r] - c[z, r]) / (c[y, r] - c[z, r])
	return m ? med(a, m) : -1
}
function xs(v) { return v < 0 ? "n/a" : sprintf("%.2fx", v) }
{ c[$2, $1] = $5 / hz * 1e6 / $3 / 1000; d[$2, $1] = $6 / hz * 1e6 / $3 / 1000
  g[$2, $1] = $7 / hz * 1e6 / $3 / 1000
  rate[$2, $1] = $3 / $4; if ($1 > R) R = $1; have[$2] = 1 }
END {
	nf = split(filters, F, " ")
	name["noop"] = "noop milter"; name["pc"] = "portcullis"; name["pcold"] = "pc-before"
	name["rspamd"] = "rspamd"; name["rspamd-min"] = "rspamd-min"
	printf "\n%-12s %26s %10s %8s\n", "", "CPU ms/msg, min / median / max", "NSD ms/msg", "msg/s"
	for (k = 1; k <= nf; k++) { f = F[k]
		for (r = 1; r <= R; r++) { a[r] = c[f, r]; b[r] = d[f, r]; q[r] = rate[f, r] }
		sort(a, R); m[f] = med(a, R); lo[f] = a[1]; hi[f] = a[R]
		nm[f] = med(b, R); qm[f] = med(q, R)
		for (r = 1; r <= R; r++) b[r] = g[f, r]
		gm[f] = med(b, R)
		line[f] = sprintf("%-12s %8.3f / %6.3f / %6.3f %10.3f %8.1f", name[f], lo[f], m[f], hi[f], nm[f], qm[f])
		print line[f]
	}
	printf "\nratios, median of the per-round CPU ratios (range):\n"
	np = split("rspamd pc rspamd-min pc pc noop pcold pc rspamd noop", P, " ")
	for (k = 1; k <= np; k += 2) { x = P[k]; y = P[k + 1]
		if (!(x in have) || !(y in have)) continue
		rm[x, y] = ratio(x, y)
		rl[x, y] = sprintf("%-24s %5.2f (%.2f-%.2f)", name[x] "/" name[y], rm[x, y], lo_, hi_)
		printf "  %s\n", rl[x, y]
	}
	if ("rspamd" in have) {
		xn = extra("rspamd", "pc", "noop"); xm = extra("rspamd-min", "pc", "noop")
		printf "  above the noop milter: rspamd adds %s, rspamd-min %s the CPU portcullis adds\n", xs(xn), xs(xm)
	}
	for (k = 1; k <= nf; k++) if (F[k] == "pc" || F[k] == "pcold" || F[k] == "noop")
		bgl = bgl sprintf("%s%s %.3f", bgl == "" ? "" : ", ", name[F[k]], gm[F[k]])
	printf "of which long-lived threads (libmilter listener; portcullis: + store expiry), ms/msg, median: %s\n", bgl
	printf "memory (VmRSS KiB):%s\n", mem
	printf "\nsummary:\n"
	if ("rspamd" in have)
		printf "== rspamd: DNS checks vs rspamd 3.x (rbl, hfilter, spf), one Postfix, warm cache, %d rounds; portcullis checks = %s\n", R, checks
	else
		printf "== rspamd: not measured (BENCH_RSPAMD=0); portcullis checks = %s, %d rounds\n", checks, R
	printf "== rspamd   %-12s %26s %10s %8s\n", "", "CPU ms/msg, min / median / max", "NSD ms/msg", "msg/s"
	for (k = 1; k <= nf; k++) printf "== rspamd   %s\n", line[F[k]]
	for (k = 1; k <= np; k += 2) if ((P[k], P[k + 1]) in rl) printf "== rspamd   ratio %s\n", rl[P[k], P[k + 1]]
	printf "== rspamd   long-lived threads (listener; portcullis: + store expiry), ms/msg: %s\n", bgl
	if ("rspamd" in have)
		printf "== rspamd   rspamd/portcullis: %.2fx less CPU (rspamd-min: %.2fx; target >= 3.5x); above noop %s (%s)\n",
			rm["rspamd", "pc"], rm["rspamd-min", "pc"], xs(xn), xs(xm)
}' "$T/results"
echo "bench-rspamd: done ($(($(date +%s) - START)) s)"
t_done
