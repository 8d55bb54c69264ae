#!/bin/sh
# tests/report.sh - portcullisctl report on a log the real daemon wrote, and
# on a synthetic log with hostile lines
#
# Part 1: the daemon (checks access, helo, greylist; the settable clock)
# gets a known set of transactions through miltertest: accepted, refused
# for a localhost HELO (3 recipients in 2 connections), by the access
# table, deferred for a bare-IP HELO (defer mode), greylisted (2 new
# triplets, 1 early retry, 2 passes after 400 and 600 s), one without
# recipients, one aborted.  portcullisctl report --log on its log must give
# exactly those figures: transactions by outcome, refusals per check and
# sub-check, greylist deferrals, passes and delays, the top refused
# clients, sender domains and recipients; the refs it lists last for each
# kind must be the refs of the daemon's last summary lines of that kind,
# and portcullisctl explain / whitelist add --from-ref must accept them.
# The greylist metrics must say the same (passes, deferrals, delays).
# Part 2: a synthetic log in rsyslog's RFC 3339 format: 1,000 good lines in
# known proportions among other programs' lines, hostile lines (control
# bytes, lines over 16 KiB and 1 MiB, forged fields, broken stamps, NULs);
# exact figures, per day and per hour, --since, --until, --top, stdin (-),
# a .gz file, several --log files, the errors (a missing file, a bad
# --since: exit 2), no sanitizer report.  (Syslog's traditional stamps are
# in tests/unit/test_report.c.)
# Skips (77) without miltertest, python3 or gzip.

: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
. "$top_srcdir/tests/lib.sh"

t_need "$MILTERTEST" /usr/bin/python3 gzip
t_init
py=/usr/bin/python3
TZ=UTC
export TZ

T0=1800000000
clock()
{
	echo $((T0 + $1)) >"$T/clock"
}
clock 0
PORTCULLIS_CLOCK_FILE=$T/clock
export PORTCULLIS_CLOCK_FILE

printf '198.51.100.9 REJECT\n' >"$T/client.cidr"
mport=$(t_free_port)
t_conf "$T/portcullis.conf" "checks = access, helo, greylist" \
	"metrics.listen = 127.0.0.1:$mport" \
	"access.client = cidr:$T/client.cidr" \
	"helo.bare_ip = defer" \
	"greylist.pools = no" "greylist.awl_count = 0" \
	"greylist.skip_clients = 192.0.2.7/32, 192.0.2.8/32, 192.0.2.9/32, 198.51.100.9/32"
t_start "$T/portcullis.conf" "$T/log"

# The miltertest client of tests/drive-client.lua (client name unknown).

ntxn=0
# drive WHAT IP HELO MSGS WANT NTXN: NTXN transactions when it is done
drive()
{
	_out=$(t_mt "$top_srcdir/tests/drive-client.lua" -D name=unknown -D "sock=unix:$T/sock" -D "ip=$2" -D "helo=$3" -D "msgs=$4" 2>&1)
	_rc=$?
	ntxn=$((ntxn + $6))
	if [ $_rc -ne 0 ] || [ "$_out" != "$5" ]; then
		t_err "$1: miltertest (exit $_rc) said '$_out', want '$5'"
	else
		echo "ok: $1 ($_out)"
	fi
	# the summary lines are written when the transaction ends
	t_wait_for '[ "$(grep -c "portcullis: ref=[0-9A-Za-z]* client=" "$T/log")" -ge $ntxn ]' 10 ||
		t_err "$1: not $ntxn summary lines in the log"
}

a='<a@example.net>'
drive "two accepted" 192.0.2.7 mx.example.net "$a <u1@example.test> eom;$a <u1@example.test> eom" \
	"connect=c helo=c mail=c rcpt=c eom=c mail=c rcpt=c eom=c" 2
drive "HELO localhost: one recipient" 192.0.2.8 localhost "<b@Spam.Example> <u1@example.test> abort" \
	"connect=c helo=c mail=c rcpt=y abort" 1
drive "HELO localhost: two recipients" 192.0.2.8 localhost \
	"<b2@spam.example> <u1@example.test>,<u2@example.test> abort" \
	"connect=c helo=c mail=c rcpt=y rcpt=y abort" 1
drive "client in the access table" 198.51.100.9 mx.other.example "<c@other.example> <u3@example.test> abort" \
	"connect=c helo=c mail=c rcpt=y abort" 1
drive "bare IP HELO, defer mode" 192.0.2.9 192.0.2.9 "<d@example.net> <u6@example.test> abort" \
	"connect=c helo=c mail=c rcpt=y abort" 1
g='<g@example.org> <u4@example.test>'
h='<h@example.org> <u5@example.test>'
drive "greylist: new triplet" 203.0.113.5 mail.example.org "$g abort" \
	"connect=c helo=c mail=c rcpt=y abort" 1
clock 100
drive "greylist: too early" 203.0.113.5 mail.example.org "$g abort" \
	"connect=c helo=c mail=c rcpt=y abort" 1
clock 400
drive "greylist: pass after 400 s, and a new triplet" 203.0.113.5 mail.example.org "$g eom;$h abort" \
	"connect=c helo=c mail=c rcpt=c eom=c mail=c rcpt=y abort" 2
clock 1000
drive "greylist: pass after 600 s" 203.0.113.5 mail.example.org "$h eom" \
	"connect=c helo=c mail=c rcpt=c eom=c" 1
drive "no recipient, and an aborted one" 192.0.2.7 mx.example.net "$a - abort;$a <u7@example.test> abort" \
	"connect=c helo=c mail=c abort mail=c rcpt=c abort" 2

t_grep 'portcullis: greylist: pass ref=[0-9A-Za-z]+ delay=400 to=<u4@example.test>$' "$T/log" \
	"the greylist pass line with its delay"

# the same greylisting in the metrics (when curl can read them)
if command -v curl >/dev/null 2>&1; then
	curl -sS -m 10 -o "$T/metrics" "http://127.0.0.1:$mport/metrics" || t_err "cannot scrape /metrics"
	for want in 'portcullis_greylist_total{result="pass"} 2' \
		'portcullis_greylist_total{result="defer"} 3' \
		'portcullis_greylist_delay_seconds_bucket{le="300"} 0' \
		'portcullis_greylist_delay_seconds_bucket{le="600"} 2' \
		'portcullis_greylist_delay_seconds_sum 1000' \
		'portcullis_greylist_delay_seconds_count 2'; do
		grep -q -x -F "$want" "$T/metrics" && echo "ok: metrics: $want" ||
			t_err "metrics: not '$want': $(grep -F "${want%% *}" "$T/metrics")"
	done
fi

# --- the report on the daemon's log -------------------------------------------------
"$PORTCULLISCTL" -c "$T/portcullis.conf" report --log "$T/log" >"$T/r1" 2>&1
rc=$?
[ $rc -eq 0 ] || t_err "report: exit $rc: $(cat "$T/r1")"
t_sanitizer_clean "$T/r1" "portcullisctl report"

# has FILE TEXT: t_err unless FILE holds the exact lines of TEXT in a row.
has()
{
	if "$py" - "$1" "$2" <<'EOF'; then
import sys
sys.exit(0 if sys.argv[2] + "\n" in open(sys.argv[1]).read() else 1)
EOF
		echo "ok: $(echo "$2" | head -n 1)"
	else
		t_err "not in $1: '$2'"
	fi
}

has "$T/r1" "Transactions                                 13
  accept                                      4  30.8%
  reject                                      3  23.1%
  defer                                       4  30.8%
  aborted                                     1   7.7%
  none                                        1   7.7%
Recipients accepted                           5
Recipients refused                            8  (reject 4, defer 4)
Refusals                                      8  (reject 4, defer 4)"
has "$T/r1" "Refusals by check                        reject      defer
  access                                      1          0
    access.client                             1          0
  greylist                                    0          3
    greylist.new                              0          2
    greylist.early                            0          1
  helo                                        3          1
    helo.localhost                            3          0
    helo.bare_ip                              0          1"
has "$T/r1" "Greylisting
  deferred recipients                         3
  passed after a delay                        2
  delay min 400 s, mean 500 s, max 600 s
    <= 10 min                                 2 100.0%"
has "$T/r1" "Top refused clients
           3  192.0.2.8
           3  203.0.113.5
           1  192.0.2.9
           1  198.51.100.9"
has "$T/r1" "Top refused sender domains
           3  example.org
           3  spam.example
           1  example.net
           1  other.example"
has "$T/r1" "Top refused recipients
           2  u1@example.test
           2  u4@example.test
           1  u2@example.test
           1  u3@example.test
           1  u5@example.test
           1  u6@example.test"
t_grep '^lines: [0-9]+ read, [0-9]+ from portcullis, 0 not understood, 0 too long$' "$T/r1" \
	"no line misunderstood"

# The refs listed for a kind are those of the last summary lines of that
# kind, newest first; explain and whitelist add --from-ref take them.
for kind in helo.localhost access.client helo.bare_ip greylist.new greylist.early; do
	want=$(grep -E "portcullis: ref=[0-9A-Za-z]+ client=.*:$kind( |,)" "$T/log" |
		sed -n 's/.*portcullis: ref=\([0-9A-Za-z]*\) .*/\1/p' | tail -n 2 | tac | tr '\n' ' ')
	got=$(awk -v k="  $kind" '$0 == k { on = 1; next } on && /^    / { print $3; next } { on = 0 }' "$T/r1" |
		sed 's/^ref=//' | tr '\n' ' ')
	want=$(echo "$want" | cut -d' ' -f1-3)
	got=$(echo "$got" | cut -d' ' -f1-3)
	if [ -n "$want" ] && [ "$got" = "$want" ]; then
		echo "ok: last refs of $kind: $got"
	else
		t_err "last refs of $kind: '$got', want '$want'"
	fi
done
ref=$(awk '$0 == "  helo.localhost" { getline; print $3 }' "$T/r1" | sed 's/^ref=//')
"$PORTCULLISCTL" -c "$T/portcullis.conf" explain "$ref" --log "$T/log" >"$T/explain" 2>&1 ||
	t_err "explain $ref from the report failed: $(cat "$T/explain")"
t_grep "^rcpt +<?u1@example.test>? reject helo.localhost" "$T/explain" "explain shows the refusal"
ref=$(awk '$0 == "  access.client" { getline; print $3 }' "$T/r1" | sed 's/^ref=//')
"$PORTCULLISCTL" -c "$T/portcullis.conf" whitelist add --from-ref "$ref" >"$T/wl" 2>&1 ||
	t_err "whitelist add --from-ref $ref from the report failed: $(cat "$T/wl")"
t_grep "198.51.100.9" "$T/wl" "whitelist add --from-ref names the client"

# --since: a window after the whole run holds nothing
"$PORTCULLISCTL" -c "$T/portcullis.conf" report --since "$(date -d '+1 hour' '+%Y-%m-%d %H:%M')" \
	--log "$T/log" >"$T/r2" 2>&1 || t_err "report --since: exit $?"
t_grep "^Transactions +0$" "$T/r2" "--since in the future: no transaction"
t_grep '^since: .* \([0-9]+ earlier lines skipped\)$' "$T/r2" "--since says what it skipped"
"$PORTCULLISCTL" -c "$T/portcullis.conf" report --since 1h --log "$T/log" >"$T/r3" 2>&1
t_grep "^Transactions +13$" "$T/r3" "--since 1h: everything"

t_stop "$T_PID" 15 "$T_WRAP"
t_sanitizer_clean "$T/log" "the daemon"

# --- a synthetic log ----------------------------------------------------------------
# 1,000 transactions: 600 accepted, 250 refused at RCPT by dnsbl.zen (5
# clients, the first of them 150 times), 100 greylisted, 50 refused at end
# of DATA by clamav.virus; 100 greylist passes (delays 60..159 s, one per
# second); and among them hostile lines.
"$py" - "$T/syn.log" <<'EOF'
import sys
out = open(sys.argv[1], "wb")
def w(s):
    out.write(s if isinstance(s, bytes) else s.encode())
st = "2026-12-05T10:%02d:%02d.123456+00:00 mx portcullis[42]: "
for i in range(1000):
    p = st % (i // 60 % 60, i % 60)
    if i < 600:
        w(p + "ref=A%09d qid=Q%d client=mx%d.example.com[192.0.2.%d] helo=<mx.example.com> "
              "from=<a%d@example.com> to=<u%d@example.test> verdict=accept score=0.0 ms=3\n"
              % (i, i, i % 7, i % 7, i, i % 10))
    elif i < 850:
        c = 1 if i < 750 else 2 + i % 4
        w(p + "ref=B%09d client=unknown[198.51.100.%d] helo=<x> from=<s%d@spam%d.example> "
              "refused=<v%d@example.test>:reject:dnsbl.zen verdict=reject score=0.0 "
              "symbols=dnsbl.zen ms=9\n" % (i, c, i, i % 3, i % 2))
    elif i < 950:
        w(p + "ref=C%09d client=unknown[203.0.113.9] helo=<y> from=<g@grey.example> "
              "refused=<w@example.test>:defer:greylist.new verdict=defer score=0.0 ms=2\n" % i)
        w(p + "greylist: pass ref=D%09d delay=%d to=<w@example.test>\n" % (i, 60 + i - 850))
    else:
        w(p + "ref=E%09d qid=Q%d client=unknown[192.0.2.200] helo=<z> from=<> "
              "to=<x@example.test>,<y@example.test> verdict=reject score=0.0 "
              "symbols=clamav.virus ms=30\n" % (i, i))
        w(p + "ref=E%09d clamav: virus Eicar-Test-Signature\n" % i)
    w("2026-12-05T10:00:00.000000+00:00 mx postfix/smtpd[7]: connect from x[192.0.2.1]\n")
# hostile lines: none of them is a transaction
h = "2026-12-05T11:00:00Z mx portcullis[42]: "
w(h + "ref=\x00\x01\x02 client=a[1] helo=<> from=<> verdict=accept\n")
w(h + "ref=X" + "a" * 20000 + " client=x[1] helo=<> from=<> verdict=accept\n")
w(h + "ref=Y client=" + "[" * 5000 + " verdict=accept\n")
w(h + "ref=Z client=x[1] helo=<> from=<" + ">" * 3000 + " verdict=maybe score=0.0\n")
w(h + "greylist: pass ref=Q delay=x\n")
w(h + "greylist: pass ref=Q delay=123456789012345\n")
w("Foo  5 11:00:00 mx portcullis[42]: ref=F client=x[1] helo=<> from=<> verdict=accept\n")
w("Dec 35 11:00:00 mx portcullis[42]: ref=F client=x[1] helo=<> from=<> verdict=accept\n")
w(b"\xff\xfe\x00\x1b[31m portcullis[42]: \r\n")
w(b"2026-12-05T11:00:00Z mx portcullis[42]: " + bytes(range(256)) + b"\n")
w("2026-12-05T11:00:00Z mx portcullis[42]: " + "z" * (1 << 20) + "\n")
w("\n\n\n")
w("2026-12-05T11:00:01Z mx portcullis[42]: warning: something")  # no newline at the end
EOF
"$PORTCULLISCTL" report --log "$T/syn.log" --top 3 >"$T/s1" 2>&1
rc=$?
[ $rc -eq 0 ] || t_err "report on the synthetic log: exit $rc: $(head -n 5 "$T/s1")"
t_sanitizer_clean "$T/s1" "report on the synthetic log"
has "$T/s1" "Transactions                               1000
  accept                                    600  60.0%
  reject                                    300  30.0%
  defer                                     100  10.0%
  aborted                                     0   0.0%
  none                                        0   0.0%
Recipients accepted                         600
Recipients refused                          450  (reject 350, defer 100)
Refusals                                    400  (reject 300, defer 100)"
has "$T/s1" "Per hour                                 accept     reject      defer      other
  10:00-11:00                               600        300        100          0

Refusals by check                        reject      defer
  clamav                                     50          0
    clamav.virus                             50          0
  dnsbl                                     250          0
    dnsbl.zen                               250          0
  greylist                                    0        100
    greylist.new                              0        100"
has "$T/s1" "  deferred recipients                       100
  passed after a delay                      100
  delay min 60 s, mean 110 s, max 159 s
    <= 1 min                                  1   1.0%
    <= 2 min                                 60  60.0%
    <= 5 min                                 39  39.0%"
has "$T/s1" "Top refused clients
         150  198.51.100.1
         100  203.0.113.9
          50  192.0.2.200"
has "$T/s1" "Top refused sender domains
         100  grey.example
          84  spam0.example
          83  spam1.example"
has "$T/s1" "Top refused recipients
         125  v0@example.test
         125  v1@example.test
         100  w@example.test"
has "$T/s1" "Top viruses
          50  Eicar-Test-Signature"
has "$T/s1" "  clamav.virus
    2026-12-05 10:16:39  ref=E000000999  client=192.0.2.200 from=<> to=<x@example.test>
    2026-12-05 10:16:38  ref=E000000998  client=192.0.2.200 from=<> to=<x@example.test>
    2026-12-05 10:16:37  ref=E000000997  client=192.0.2.200 from=<> to=<x@example.test>"
# 2,150 good lines and 16 hostile ones (one of 256 bytes holds a newline);
# 1,150 good and 7 hostile lines come from portcullis with a stamp;
# 4 hostile ones are other lines
t_grep '^lines: 2166 read, 1157 from portcullis, 5 not understood, 2 too long$' "$T/s1" \
	"the line counts (hostile ones not understood or too long)"
has "$T/s1" "Warnings                                      1
Errors                                        0
Other lines                                   4

Top warnings and errors
           1  warning: something"

# the same through standard input, gzip, and as two files
"$PORTCULLISCTL" report --log - --top 3 <"$T/syn.log" >"$T/s2" 2>&1
sed 1d "$T/s1" >"$T/s1.body"
sed 1d "$T/s2" | cmp -s - "$T/s1.body" && echo "ok: --log - reads standard input" ||
	t_err "report --log - differs from --log FILE"
gzip -c "$T/syn.log" >"$T/syn.log.2.gz"
"$PORTCULLISCTL" report --log "$T/syn.log.2.gz" --top 3 >"$T/s3" 2>&1
sed 1d "$T/s3" | cmp -s - "$T/s1.body" && echo "ok: a .gz file is read through gzip" ||
	t_err "report on the .gz differs"
"$PORTCULLISCTL" report --log "$T/syn.log.2.gz" --log "$T/syn.log" >"$T/s4" 2>&1
t_grep "^portcullis report: $T/syn.log.2.gz, $T/syn.log$" "$T/s4" "two files named in the title"
t_grep "^Transactions +2000$" "$T/s4" "two files: twice the transactions"
# a file of another day after it: the per-day table
sed 's/^2026-12-05T10:/2026-12-06T23:/' "$T/syn.log" >"$T/syn2.log"
"$PORTCULLISCTL" report --log "$T/syn.log" --log "$T/syn2.log" >"$T/s6" 2>&1
has "$T/s6" "Per day                                  accept     reject      defer      other
  2026-12-05                                600        300        100          0
  2026-12-06                                600        300        100          0

Per hour (all days)                      accept     reject      defer      other
  10:00-11:00                               600        300        100          0
  23:00-00:00                               600        300        100          0"

# --since with a date: the lines of 10:10:00 and later (the 400 last
# transactions: 200 accepted, 100 rejected + 50 + the 100 greylisted)
"$PORTCULLISCTL" report --log "$T/syn.log" --since "2026-12-05 10:10" >"$T/s5" 2>&1
t_grep "^Transactions +400$" "$T/s5" "--since DATE HH:MM"
# and --until: 10:10 to 10:15, 300 transactions (200 accepted, 100 refused)
"$PORTCULLISCTL" report --log "$T/syn.log" --since "2026-12-05 10:10" \
	--until "2026-12-05 10:15" >"$T/s7" 2>&1
has "$T/s7" "Transactions                                300
  accept                                      0   0.0%
  reject                                    250  83.3%
  defer                                      50  16.7%"

# errors
out=$("$PORTCULLISCTL" report --log "$T/nonexistent" 2>&1)
rc=$?
[ $rc -eq 2 ] && [ "$out" = "portcullisctl: report: $T/nonexistent: No such file or directory" ] &&
	echo "ok: a missing log: exit 2, one line" || t_err "missing log: exit $rc, '$out'"
out=$("$PORTCULLISCTL" report --since tomorrow --log "$T/syn.log" 2>&1)
rc=$?
[ $rc -eq 2 ] && echo "$out" | grep -q "^portcullisctl: report: --since tomorrow: " &&
	echo "ok: a bad --since: exit 2" || t_err "bad --since: exit $rc, '$out'"
for bad in "--top 0" "--top 10001" "--keep 1000001" "--keep x" "--until" "extra"; do
	out=$("$PORTCULLISCTL" report $bad --log "$T/syn.log" 2>&1)
	[ $? -eq 2 ] && echo "ok: report $bad: exit 2" || t_err "report $bad accepted: '$out'"
done
printf 'x' | gzip -c >"$T/bad.gz"
printf 'garbage' >>"$T/bad.gz"
out=$("$PORTCULLISCTL" report --log "$T/bad.gz" 2>&1)
[ $? -eq 2 ] && echo "ok: a broken .gz is an error" || t_err "a broken .gz: '$out'"
t_done
