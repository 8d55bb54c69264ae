#!/bin/sh
# tests/metrics.sh - the Prometheus metrics listener and portcullisctl stats
#
# Starts the real daemon with metrics.listen on a free loopback port, drives
# a known set of transactions through it with miltertest (accepted,
# rejected and deferred at RCPT, aborted with and without recipients, a
# monitor-mode hit, an access-table score), scrapes /metrics with curl and
# checks:
#  - the whole page against a strict parser of the text exposition format
#    0.0.4 (tests/metrics-parse.py: HELP/TYPE before samples, one family
#    per block, counters end in _total, histogram buckets cumulative with
#    +Inf == _count, label syntax and escapes), and with promtool when it is
#    installed;
#  - exact counter values: transactions by outcome, check verdicts by check
#    and action, the score histogram, the stage histogram counts;
#  - 404 for another path, 405 for POST, 431 for an oversized request, 400
#    for garbage, while a client that sends nothing holds the listener, mail
#    still flows;
#  - reloads (good and bad) counted, the configuration generation;
#  - portcullisctl stats: its figures, and its errors and exit status when
#    metrics are off (2) or the daemon is down (3);
#  - a non-loopback metrics.listen is refused by -t unless
#    metrics.allow_remote = yes; [::1]:PORT works when the host has ::1;
#  - a clean stop, no sanitizer report.
# Skips (77) without miltertest, curl or python3.

: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
. "$top_srcdir/tests/lib.sh"

t_need "$MILTERTEST" curl /usr/bin/python3
t_init
py=/usr/bin/python3
PARSE="$top_srcdir/tests/metrics-parse.py"

port=$(t_free_port)
printf '192.0.2.8 SCORE 3.5\n' >"$T/client.cidr"
t_conf "$T/portcullis.conf" "pidfile = $T/portcullis.pid" \
	"metrics.listen = 127.0.0.1:$port" \
	"checks = access, helo, envelope" \
	"access.client = cidr:$T/client.cidr" \
	"helo.non_fqdn = monitor" "helo.bare_ip = defer"
t_start "$T/portcullis.conf" "$T/log"
url="http://127.0.0.1:$port/metrics"

# scrape FILE: GET /metrics into FILE; must be 200 with the 0.0.4 type.
scrape()
{
	_code=$(curl -sS -m 10 -o "$1" -D "$1.hdr" -w '%{http_code}' "$url") ||
		fail "curl $url failed"
	[ "$_code" = 200 ] || fail "GET /metrics: HTTP $_code"
	grep -q -i '^Content-Type: text/plain; version=0.0.4' "$1.hdr" ||
		t_err "GET /metrics: Content-Type is not text/plain; version=0.0.4"
}

# value FILE SAMPLE: the value of the sample line written exactly SAMPLE
# (name and labels).
value()
{
	awk -v s="$2" 'index($0, s " ") == 1 { print substr($0, length(s) + 2) }' "$1"
}

# want FILE SAMPLE VALUE: t_err unless the sample has exactly VALUE.
want()
{
	_v=$(value "$1" "$2")
	if [ "$_v" != "$3" ]; then
		t_err "$2 is '${_v:-absent}', want $3"
	else
		echo "ok: $2 $3"
	fi
}

parses()
{
	if "$py" "$PARSE" "$1" >"$T/parse.out" 2>&1; then
		echo "ok: $2 parses ($(cat "$T/parse.out"))"
	else
		t_err "$2 does not parse: $(cat "$T/parse.out")"
	fi
	if command -v promtool >/dev/null 2>&1; then
		promtool check metrics <"$1" >"$T/promtool.out" 2>&1 ||
			t_err "$2: promtool check metrics: $(cat "$T/promtool.out")"
	fi
}

# --- before any mail ----------------------------------------------------------
scrape "$T/m0"
parses "$T/m0" "the first scrape"
want "$T/m0" 'portcullis_transactions_total{outcome="accept"}' 0
want "$T/m0" 'portcullis_config_generation' 1
want "$T/m0" 'portcullis_score_count' 0

# --- mail ---------------------------------------------------------------------
# One connection per case: the miltertest client of tests/drive-client.lua.

# drive WHAT IP HELO MSGS WANT
drive()
{
	_out=$(t_mt "$top_srcdir/tests/drive-client.lua" -D "sock=unix:$T/sock" -D "ip=$2" -D "helo=$3" -D "msgs=$4" 2>&1)
	_rc=$?
	if [ $_rc -ne 0 ] || [ "$_out" != "$5" ]; then
		t_err "$1: miltertest (exit $_rc) said '$_out', want '$5'"
		return 1
	fi
	echo "ok: $1 ($_out)"
}

good='<a@example.net> <u@example.test>'
# The one without RCPT is not the last: MAIL gets no reply of its own (the
# daemon negotiates SMFIP_NR_MAIL), and libmilter drops what it has not read
# yet when the client hangs up right after sending it.
drive "two accepted, one aborted, one without RCPT" 192.0.2.7 mx.example.net \
	"$good eom;<b@example.net> - abort;$good eom;$good abort" \
	"connect=c helo=c mail=c rcpt=c eom=c mail=c abort mail=c rcpt=c eom=c mail=c rcpt=c abort"
drive "HELO localhost: rejected" 192.0.2.7 localhost "$good abort" \
	"connect=c helo=c mail=c rcpt=y abort"
drive "bare IP HELO in defer mode: deferred" 192.0.2.7 192.0.2.7 "$good abort" \
	"connect=c helo=c mail=c rcpt=y abort"
drive "non-FQDN HELO in monitor mode: accepted" 192.0.2.7 mycomputer "$good eom" \
	"connect=c helo=c mail=c rcpt=c eom=c"
drive "SCORE 3.5 from the access table: accepted" 192.0.2.8 mx.example.net "$good eom" \
	"connect=c helo=c mail=c rcpt=c eom=c"
t_wait_for '[ "$(grep -c " ref=" "$T/log")" -ge 8 ]' 10 || t_err "not 8 transaction log lines"

scrape "$T/m1"
parses "$T/m1" "the scrape after mail"
m=$T/m1
want $m 'portcullis_transactions_total{outcome="accept"}' 4
want $m 'portcullis_transactions_total{outcome="reject"}' 1
want $m 'portcullis_transactions_total{outcome="defer"}' 1
want $m 'portcullis_transactions_total{outcome="aborted"}' 1
want $m 'portcullis_transactions_total{outcome="none"}' 1
want $m 'portcullis_check_verdicts_total{check="helo",action="reject"}' 1
want $m 'portcullis_check_verdicts_total{check="helo",action="defer"}' 1
want $m 'portcullis_check_verdicts_total{check="helo",action="monitor"}' 1
want $m 'portcullis_check_verdicts_total{check="helo",action="ok"}' 0
want $m 'portcullis_check_verdicts_total{check="access",action="score"}' 1
want $m 'portcullis_check_verdicts_total{check="envelope",action="reject"}' 0
# 8 transactions: one scored 3.5, the others 0
want $m 'portcullis_score_count' 8
want $m 'portcullis_score_sum' 3.500
want $m 'portcullis_score_bucket{le="0"}' 7
want $m 'portcullis_score_bucket{le="3"}' 7
want $m 'portcullis_score_bucket{le="4"}' 8
want $m 'portcullis_score_bucket{le="+Inf"}' 8
# the checks ran at 5 connects, 5 HELOs, 8 MAILs, 7 RCPTs, 4 EOMs; no
# module reads headers, so the MTA was asked not to send them
want $m 'portcullis_stage_duration_seconds_count{stage="connect"}' 5
want $m 'portcullis_stage_duration_seconds_count{stage="helo"}' 5
want $m 'portcullis_stage_duration_seconds_count{stage="mail"}' 8
want $m 'portcullis_stage_duration_seconds_count{stage="rcpt"}' 7
want $m 'portcullis_stage_duration_seconds_count{stage="eom"}' 4
want $m 'portcullis_stage_duration_seconds_count{stage="header"}' 0
want $m 'portcullis_dns_timeouts_total' 0

# --- portcullisctl stats --------------------------------------------------------
out=$("$PORTCULLISCTL" -c "$T/portcullis.conf" stats 2>&1)
rc=$?
echo "$out" >"$T/stats.out"
[ $rc -eq 0 ] || t_err "portcullisctl stats: exit $rc: $out"
t_grep '^portcullis [0-9.]+, up .*configuration generation 1 \(reloads: 0 ok, 0 failed\)$' \
	"$T/stats.out" "stats: the process line"
t_grep '^transactions +8$' "$T/stats.out" "stats: 8 transactions"
t_grep '^  accept +4$' "$T/stats.out" "stats: 4 accepted"
t_grep '^  reject +1$' "$T/stats.out" "stats: 1 rejected"
t_grep '^  helo +0 +0 +1 +1 +1 +0$' "$T/stats.out" "stats: helo ok score defer reject monitor error"
t_grep '^  access +0 +1 +0 +0 +0 +0$' "$T/stats.out" "stats: access scored once"
t_grep '^  rcpt +7 ' "$T/stats.out" "stats: 7 RCPT stage runs"
grep -q 'envelope' "$T/stats.out" && t_err "stats: lists a check without verdicts (envelope)"
t_sanitizer_clean "$T/stats.out" "portcullisctl stats"

# --- the listener's other answers ------------------------------------------------
code()
{
	curl -sS -m 10 -o /dev/null -w '%{http_code}' "$@"
}
c=$(code "http://127.0.0.1:$port/")
[ "$c" = 404 ] && echo "ok: GET / is 404" || t_err "GET / is $c, want 404"
c=$(code "http://127.0.0.1:$port/metrics/x")
[ "$c" = 404 ] && echo "ok: GET /metrics/x is 404" || t_err "GET /metrics/x is $c, want 404"
c=$(code -X POST -d x=1 "$url")
[ "$c" = 405 ] && echo "ok: POST is 405" || t_err "POST /metrics is $c, want 405"
curl -sS -m 10 -I "$url" >"$T/head.out" 2>&1
t_grep '^HTTP/1.1 200 ' "$T/head.out" "HEAD /metrics: 200"
t_grep '^Content-Length: [1-9][0-9]*' "$T/head.out" "HEAD /metrics: the length of the page"
c=$(code "$url?name[]=x")
[ "$c" = 200 ] && echo "ok: a query string is ignored" || t_err "GET /metrics?... is $c, want 200"
c=$(code -H "X-Big: $(head -c 9000 /dev/zero | tr '\0' a)" "$url")
[ "$c" = 431 ] && echo "ok: a 9 KB request head is 431" || t_err "a 9 KB request head gave $c, want 431"
# garbage: no HTTP request line
printf 'hello there\r\n\r\n' >"$T/garbage"
"$py" - "$port" "$T/garbage" >"$T/garbage.out" 2>&1 <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(open(sys.argv[2], "rb").read())
data = b""
while True:
    b = s.recv(4096)
    if not b:
        break
    data += b
print(data.split(b"\r\n", 1)[0].decode())
EOF
t_grep '^HTTP/1.1 400 ' "$T/garbage.out" "a request without an HTTP line gets 400"

# A client that connects and sends nothing holds the (one) listener thread
# until its timeout; mail must flow meanwhile (the mail threads never wait
# for the listener).
"$py" - "$port" >"$T/idle.out" 2>&1 <<'EOF' &
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30)
data = b""
while True:
    b = s.recv(4096)
    if not b:
        break
    data += b
print(data.split(b"\r\n", 1)[0].decode())
EOF
idle=$!
drive "mail while a silent client holds the listener" 192.0.2.7 mx.example.net "$good eom" \
	"connect=c helo=c mail=c rcpt=c eom=c"
wait $idle
t_grep '^HTTP/1.1 408 ' "$T/idle.out" "the silent client gets 408 after the request timeout"

# --- reloads ----------------------------------------------------------------------
pid=$(cat "$T/portcullis.pid")
kill -USR1 "$pid"
t_wait_for 'grep -q "configuration reloaded" "$T/log"' 10 || t_err "no reload logged"
cp "$T/portcullis.conf" "$T/good.conf"
echo "checks = nosuchcheck" >>"$T/portcullis.conf"
kill -USR1 "$pid"
t_wait_for 'grep -q "reload failed" "$T/log"' 10 || t_err "no failed reload logged"
cp "$T/good.conf" "$T/portcullis.conf"
scrape "$T/m2"
parses "$T/m2" "the scrape after the reloads"
want "$T/m2" 'portcullis_config_generation' 2
want "$T/m2" 'portcullis_config_reloads_total{result="ok"}' 1
want "$T/m2" 'portcullis_config_reloads_total{result="failed"}' 1
want "$T/m2" 'portcullis_transactions_total{outcome="accept"}' 5
want "$T/m2" 'portcullis_check_verdicts_total{check="helo",action="reject"}' 1

# --- configuration checks ------------------------------------------------------------
t_conf "$T/remote.conf" "metrics.listen = 192.0.2.1:$port"
out=$("$PORTCULLIS" -t -c "$T/remote.conf" 2>&1)
[ $? -ne 0 ] || t_err "-t accepted a non-loopback metrics.listen"
echo "$out" | grep -q "remote.conf:[0-9]*: metrics.listen: 192.0.2.1 is not a loopback address" &&
	[ "$(echo "$out" | wc -l)" -eq 1 ] &&
	echo "ok: a non-loopback metrics.listen is refused in one line" ||
	t_err "non-loopback metrics.listen: '$out'"
echo "metrics.allow_remote = yes" >>"$T/remote.conf"
"$PORTCULLIS" -t -c "$T/remote.conf" >/dev/null 2>&1 &&
	echo "ok: metrics.allow_remote = yes allows it" ||
	t_err "-t refused a non-loopback metrics.listen with allow_remote"
for bad in "127.0.0.1" "127.0.0.1:0" "127.0.0.1:65536" "localhost:$port" "[::1:$port" "::1:$port"; do
	t_conf "$T/bad.conf" "metrics.listen = $bad"
	out=$("$PORTCULLIS" -t -c "$T/bad.conf" 2>&1) && t_err "-t accepted metrics.listen = $bad"
	echo "$out" | grep -q "metrics.listen: " || t_err "metrics.listen = $bad: '$out'"
done

# A second daemon whose metrics.listen is taken: one line, status 1, and
# its milter socket is not left behind.
t_conf "$T/busy.conf" "socket = unix:$T/busy.sock" "metrics.listen = 127.0.0.1:$port"
out=$(timeout 30 "$PORTCULLIS" -f -c "$T/busy.conf" 2>&1)
rc=$?
[ $rc -eq 1 ] || t_err "a taken metrics.listen: exit $rc, want 1"
[ "$out" = "portcullis: metrics.listen: 127.0.0.1:$port: Address already in use" ] &&
	echo "ok: a taken metrics.listen is a one-line startup error" ||
	t_err "a taken metrics.listen said '$out'"
[ -e "$T/busy.sock" ] && t_err "the failed daemon left $T/busy.sock behind"

# --- portcullisctl stats errors -------------------------------------------------------
t_conf "$T/off.conf"
out=$("$PORTCULLISCTL" -c "$T/off.conf" stats 2>&1)
rc=$?
[ $rc -eq 0 ] || t_err "stats with metrics off: exit $rc, want 0 (the store part still works)"
echo "$out" | grep -q "^metrics: off (metrics.listen is not set in " ||
	t_err "stats with metrics off said '$out'"
echo "$out" | grep -q "^entries.greylist " ||
	t_err "stats with metrics off lacks the store's entries: '$out'"

# --- IPv6 loopback ------------------------------------------------------------------------
if ip -6 addr show lo 2>/dev/null | grep -q '::1'; then
	port6=$(t_free_port)
	t_conf "$T/six.conf" "socket = unix:$T/six.sock" "metrics.listen = [::1]:$port6"
	T_PID_MAIN=$T_PID T_WRAP_MAIN=$T_WRAP
	t_start "$T/six.conf" "$T/six.log"
	c=$(code "http://[::1]:$port6/metrics")
	[ "$c" = 200 ] && echo "ok: [::1]:PORT serves /metrics" || t_err "[::1]:$port6 gave $c"
	"$PORTCULLISCTL" -c "$T/six.conf" stats >/dev/null 2>&1 || t_err "stats over [::1] failed"
	t_stop "$T_PID" 15 "$T_WRAP"
	t_sanitizer_clean "$T/six.log" "the [::1] daemon"
	T_PID=$T_PID_MAIN T_WRAP=$T_WRAP_MAIN
else
	echo "note: no ::1 on lo; the IPv6 listener is not tested"
fi

# --- stop -------------------------------------------------------------------------------
t_stop "$T_PID" 15 "$T_WRAP"
grep -q "portcullis stopped" "$T/log" || t_err "the daemon did not stop cleanly"
t_sanitizer_clean "$T/log" "the daemon"
out=$("$PORTCULLISCTL" -c "$T/portcullis.conf" stats 2>&1)
rc=$?
[ $rc -eq 3 ] || t_err "stats with the daemon down: exit $rc, want 3"
echo "$out" | grep -q "^portcullisctl: stats: cannot read the daemon's metrics: 127.0.0.1:$port: Connection refused$" &&
	echo "ok: stats with the daemon down: $out" || t_err "stats with the daemon down said '$out'"
t_done
