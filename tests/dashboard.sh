#!/bin/sh
# tests/dashboard.sh - the Grafana dashboard (contrib/grafana/portcullis.json)
# queries only what the daemon exports
#
# Starts the real daemon with metrics.listen, access, helo and greylist
# checks and a store, drives a few transactions through miltertest (an
# accepted one, a HELO refusal, a greylist deferral) so that the labelled
# series exist, scrapes /metrics, and runs tests/dashboard-check.py: the
# JSON is an importable dashboard (schemaVersion, ${DS_PROMETHEUS} input,
# panels with targets), and every metric, label matcher and by() label of
# its PromQL expressions is exported (names, labels, literal values).
# When Prometheus is installed (Debian package prometheus), a real
# Prometheus scrapes the daemon every second, and every expression of the
# dashboard (Grafana's variables replaced) must be accepted by it and give
# a series; after the traffic, the "Transactions" and "Refusals per check"
# panels must show it.
# Then the checker must refuse copies of the dashboard broken on purpose:
# a renamed metric, a histogram queried without _bucket, a label the
# metric lacks in a matcher and in by(), a value the daemon never exports,
# a hard-coded data source, a missing schemaVersion.
# Skips (77) without miltertest, curl or python3.

: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
. "$top_srcdir/tests/lib.sh"

t_need "$MILTERTEST" curl /usr/bin/python3
t_init
py=/usr/bin/python3
CHECK="$top_srcdir/tests/dashboard-check.py"
DASH="$top_srcdir/contrib/grafana/portcullis.json"

port=$(t_free_port)
t_conf "$T/portcullis.conf" "metrics.listen = 127.0.0.1:$port" \
	"checks = access, helo, greylist" "greylist.pools = no"
t_start "$T/portcullis.conf" "$T/log"

# A real Prometheus, when installed, scraping the daemon every second.
PROM=
if command -v prometheus >/dev/null 2>&1; then
	pport=$(t_free_port)
	PROM=http://127.0.0.1:$pport
	cat >"$T/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: portcullis
    static_configs:
      - targets: ['127.0.0.1:$port']
YML
	timeout -s KILL 300 prometheus --config.file="$T/prometheus.yml" \
		--storage.tsdb.path="$T/prometheus-data" --web.listen-address="127.0.0.1:$pport" \
		>"$T/prometheus.log" 2>&1 &
	T_PIDS="$T_PIDS $!"
	# promq EXPR: the first value of an instant query (empty if none)
	promq()
	{
		curl -sS -m 5 --data-urlencode "query=$1" "$PROM/api/v1/query" 2>/dev/null |
			"$py" -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "")' 2>/dev/null
	}
	t_wait_for '[ "$(curl -s -o /dev/null -w "%{http_code}" "$PROM/-/ready")" = 200 ]' 30 ||
		fail "Prometheus did not get ready: $(tail -n 5 "$T/prometheus.log")"
	# two scrapes before the traffic, so that rate() sees it change
	t_wait_for '[ "$(promq "count_over_time(portcullis_uptime_seconds[1m])")" -ge 2 ] 2>/dev/null' 30 ||
		fail "Prometheus did not scrape the daemon twice"
	echo "ok: Prometheus scrapes the daemon"
else
	echo "note: prometheus not installed; the expressions are not evaluated"
fi

cat >"$T/drive.lua" <<'LUA'
local function run()
	local conn = mt.connect(sock, 40, 0.05)
	if conn == nil then error("cannot connect to " .. sock) end
	assert(mt.conninfo(conn, "unknown", ip) == nil)
	assert(mt.helo(conn, helo) == nil)
	assert(mt.mailfrom(conn, "<a@example.net>") == nil)
	assert(mt.rcptto(conn, "<postmaster@example.test>") == nil)
	assert(mt.rcptto(conn, "<u@example.test>") == nil)
	print(string.char(mt.getreply(conn)))
	assert(mt.eom(conn) == nil)
	mt.disconnect(conn)
end
local ok, err = xpcall(run, debug.traceback)
if not ok then
	print("LUA ERROR: " .. tostring(err))
	error(err)
end
LUA
for c in "192.0.2.7 localhost" "192.0.2.8 mx.example.net"; do
	set -- $c
	out=$(t_mt "$T/drive.lua" -D "sock=unix:$T/sock" -D "ip=$1" -D "helo=$2" 2>&1) ||
		t_err "miltertest ($c): $out"
done
t_wait_for '[ "$(grep -c "portcullis: ref=[0-9A-Za-z]* client=" "$T/log")" -ge 2 ]' 10 ||
	t_err "not 2 transactions logged"
t_grep "refused=<u@example.test>:reject:helo.localhost" "$T/log" "a HELO refusal"
t_grep "refused=<u@example.test>:defer:greylist.new" "$T/log" "a greylist deferral"

curl -sS -m 10 -o "$T/metrics" "http://127.0.0.1:$port/metrics" || fail "cannot scrape /metrics"
grep -q '^portcullis_greylist_total{result="defer"} 1$' "$T/metrics" ||
	t_err "the scrape lacks the greylist deferral"

if "$py" "$CHECK" "$DASH" "$T/metrics" >"$T/check.out" 2>&1; then
	echo "ok: the dashboard queries what the daemon exports: $(cat "$T/check.out")"
else
	t_err "contrib/grafana/portcullis.json: $(cat "$T/check.out")"
fi

if [ -n "$PROM" ]; then
	t_wait_for '[ "$(promq "sum(portcullis_transactions_total)")" -ge 2 ] 2>/dev/null' 30 ||
		t_err "Prometheus did not scrape the traffic"
	sleep 2 # two more scrapes: the rates of the last minute include the traffic
	if "$py" "$CHECK" --prometheus "$PROM" "$DASH" >"$T/prom.out" 2>&1; then
		echo "ok: $(cat "$T/prom.out")"
	else
		t_err "Prometheus and the dashboard: $(cat "$T/prom.out")"
	fi
	"$py" "$CHECK" --prometheus "$PROM" "$DASH" \
		'^sum\(increase\(portcullis_transactions_total\{instance=~"\$instance"\}|^sum by \(check, action\) \(rate\(portcullis_check_verdicts_total\{instance=~"\$instance",action=~"reject\|defer"\}' \
		>"$T/prom.values" 2>&1
	awk '/^Transactions A: \{\} / && $NF > 0 { ok = 1 } END { exit !ok }' "$T/prom.values" &&
		echo "ok: the Transactions panel shows the traffic" ||
		t_err "the Transactions panel: $(cat "$T/prom.values")"
	for ca in "helo reject" "greylist defer"; do
		set -- $ca
		awk -v c="'check': '$1'" -v a="'action': '$2'" \
			'/^Refusals per check A: / && index($0, c) && index($0, a) && $NF > 0 { ok = 1 } END { exit !ok }' \
			"$T/prom.values" && echo "ok: Refusals per check shows $1 $2" ||
			t_err "Refusals per check lacks $1 $2: $(cat "$T/prom.values")"
	done
fi

# broken WHAT PYTHON-EDIT WANT: the checker must refuse the dashboard after
# the edit (a python expression on the JSON text s) and say WANT.
broken()
{
	"$py" - "$DASH" "$T/broken.json" "$2" <<'PY'
import sys
s = open(sys.argv[1]).read()
s2 = eval(sys.argv[3])
assert s2 != s, "the edit changed nothing"
open(sys.argv[2], "w").write(s2)
PY
	if "$py" "$CHECK" "$T/broken.json" "$T/metrics" >"$T/broken.out" 2>&1; then
		t_err "$1: the checker accepted it"
	elif grep -q -F -e "$3" "$T/broken.out"; then
		echo "ok: $1: refused ($(grep -F -e "$3" "$T/broken.out" | head -n 1))"
	else
		t_err "$1: refused, but not with '$3': $(cat "$T/broken.out")"
	fi
}
broken "a renamed metric" \
	's.replace("portcullis_dns_timeouts_total", "portcullis_dns_timeout_total")' \
	"metric portcullis_dns_timeout_total is not exported"
broken "a histogram without _bucket" \
	's.replace("portcullis_score_bucket", "portcullis_score", 1)' \
	"(a histogram: query portcullis_score_bucket, _sum or _count)"
broken "a label the metric lacks" \
	's.replace("outcome=\\\"accept\\\"", "result=\\\"accept\\\"")' \
	"metric portcullis_transactions_total has no label result"
broken "a by() label the metric lacks" \
	's.replace("sum by (check, action)", "sum by (check, stage)", 1)' \
	"metric portcullis_check_verdicts_total has no label stage"
broken "a value never exported" \
	's.replace("action=~\\\"reject|defer\\\"", "action=~\\\"reject|refuse\\\"", 1)' \
	"never has action=\"refuse\""
broken "a hard-coded data source" \
	's.replace("\"uid\": \"${DS_PROMETHEUS}\"", "\"uid\": \"P1809F7CD0C75ACF3\"", 1)' \
	"is not \${DS_PROMETHEUS}"
broken "no schemaVersion" 's.replace("\"schemaVersion\"", "\"schema\"")' \
	"schemaVersion missing"
broken "unbalanced brackets" 's.replace("[$__rate_interval]))", "[$__rate_interval])", 1)' \
	"unbalanced brackets"

t_stop "$T_PID" 15 "$T_WRAP"
t_sanitizer_clean "$T/log" "the daemon"
t_done
