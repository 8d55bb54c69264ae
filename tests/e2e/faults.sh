#!/bin/sh
# tests/e2e/faults.sh - the fault matrix: no mail lost, duplicated or
# wrongly refused while portcullis, its scanner, its DNS server, its
# signature database or its state files fail
#
# A sending Postfix with a real queue (S, its own private instance) relays
# every message to the receiving Postfix of tests/e2e/postfix-lib.sh (R),
# which calls portcullis (checks = sender_domain, greylist, clamav; DNS from
# a private NSD without a cache, greylist.delay = 0 so every new triplet
# is deferred once, a signature database written at run time) and delivers
# into a Maildir.  Each message carries X-Test-Seq: N.  The test plays
# systemd: it restarts the daemon 1 s after it dies (Restart=, RestartSec).
#
# Phases, each a few hundred messages fed to S at a steady pace while the
# fault happens:
#   baseline        no fault
#   kill-daemon     kill -9 of the daemon every 5 s (3 times)
#   kill-helper     kill -9 of the scanner helper every 5 s (2 times)
#   dns-stopped     NSD stopped for 5 s, then started again
#   dns-frozen      NSD stopped with SIGSTOP for 5 s, then SIGCONT
#   clamav-db       the database removed, corrupted (and the helper killed
#                   while it is: the new one has no database), restored
#   tdb-truncated   greylist.tdb cut to half its size
#   tdb-middle      4 KiB of random bytes written over the middle of it
#   tdb-end         4 KiB of random bytes written over its last 4 KiB
#   state-full      state_dir on a 64 MiB tmpfs, full when the phase
#                   begins (greylist.tdb cannot be made), freed after 5 s
#   state-readonly  state_dir on a loop-mounted ext4 remounted read-only
#                   under the running daemon, or, where the kernel refuses
#                   that because files are open for writing (EBUSY), with
#                   the daemon stopped and started again by the supervisor
#                   on the read-only file system; read-write after 5 s
# (state-full and state-readonly restart the daemon on that file system
# first; each is skipped with a message where mounting is not allowed.)
#
# Each phase must end with 0 lost (sent = delivered + still queued +
# bounced; a message still queued after 240 s is reported with its log
# lines, not counted as lost), 0 bounced, 0 duplicated, 0 wrong 5xx (any 5xx for a test
# message), and the daemon serving again after the fault ended: a probe
# message straight to R gets 250 at the end of DATA within 60 s (a bound
# for "it recovers", not a performance figure).  Printed per phase: sent,
# delivered, duplicates, bounced, deferrals (4xx, of which greylisting),
# recovery time.  No sanitizer report in the daemon's log; the clamav-db
# phase also finds "malformed database" in it.  FAULT_PHASES="kill-daemon
# dns-frozen ..." runs only the phases named (to debug one).
# Skips (77) without postfix, swaks, python3, perl or nsd, or when not root.
# About 3 to 4 minutes on 2 cores with the sanitizers.

: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/postfix-lib.sh"

pf_need
t_need python3 perl
PATH=$PATH:/usr/sbin:/sbin command -v nsd >/dev/null 2>&1 || {
	echo "SKIP: $T_NAME: nsd not available" >&2
	exit 77
}
t_init
START_MS=$(t_now_ms)
pf_init

# --- NSD -------------------------------------------------------------------------
t_dns_start 1200
DNS_PORT=$DNS_NSD_PORT

# nsd_pids: NSD's processes: its timeout wrapper and all below it (the
# main process, the server, xfrd).
ptree() (
	echo "$1"
	for c in $(pgrep -P "$1"); do
		ptree "$c"
	done
)
nsd_pids()
{
	_w=$(cat "$DNSDIR/nsd.wrap.pid" 2>/dev/null)
	[ -n "$_w" ] && ptree "$_w" | tr '\n' ' '
}
# NSD again on the same port with the same configuration (after a stop).
nsd_restart()
{
	timeout -k 2 1200 "$(PATH=$PATH:/usr/sbin:/sbin command -v nsd)" -d -c "$DNSDIR/nsd.conf" \
		>>"$DNSDIR/nsd.out" 2>&1 &
	echo $! >"$DNSDIR/nsd.wrap.pid"
	t_wait_for 'perl "$top_srcdir/tests/dns/faultproxy.pl" --probe "127.0.0.1:$DNS_PORT" dns.test' 10 ||
		t_err "NSD did not come back on port $DNS_PORT"
}

# --- the signature database (EICAR built at run time, never committed) -----------
mkdir -p "$T/db"
db_write()
{
	python3 -c '
import sys
e = "*H+H$!ELIF-TSET-SURIVITNA-DRADNATS-RACIE$}7)CC7)^P(45XZP\\4[PA@%P!O5X"[::-1].encode()
open(sys.argv[1] + "/.new", "w").write("Test.Eicar:0:*:" + e.hex() + "\n")' "$T/db" &&
		mv "$T/db/.new" "$T/db/test.ndb"
}
db_write || fail "cannot write the signature database"

# --- portcullis, supervised ---------------------------------------------------------
STATE=$T/state
mkdir -p "$STATE"
CONF=$PC/portcullis.conf
pc_conf() # pc_conf STATE_DIR
{
	pf_conf "$CONF" "trusted_networks =" "state_dir = $1" \
		"checks = sender_domain, greylist, clamav" \
		"dns.resolver = 127.0.0.1:$DNS_PORT" "dns.timeout_ms = 1000" "dns.cache_size = 0" \
		"greylist.delay = 0" "greylist.retry_window = 10m" "greylist.awl_count = 0" \
		"greylist.pools = no" "clamav.database = $T/db" "clamav.reload_interval = 1s"
}
pc_conf "$STATE"

# The supervisor: like systemd's Restart= with RestartSec=1s, it starts the
# daemon again 1 s after it died, until $T/sup.stop exists (at most 1200 s).
# $T/sup.hold pauses restarts.  The daemon's pid is in $T/pc.pid.
supervise()
{
	_end=$(($(date +%s) + 1200))
	_pid=
	while [ ! -f "$T/sup.stop" ] && [ "$(date +%s)" -lt $_end ]; do
		if ! t_alive "$_pid"; then
			if [ -n "$_pid" ]; then
				wait "$_pid" 2>/dev/null
				echo "$(t_now_ms) exit $_pid" >>"$T/sup.log"
				_pid=
				sleep 1
				continue
			fi
			if [ ! -f "$T/sup.hold" ]; then
				"$PORTCULLIS" -f -c "$CONF" 2>>"$T/portcullis.log" </dev/null &
				_pid=$!
				echo "$_pid" >"$T/pc.pid"
				echo "$(t_now_ms) start $_pid" >>"$T/sup.log"
			fi
		fi
		sleep 0.1
	done
	if t_alive "$_pid"; then
		kill -TERM "$_pid" 2>/dev/null
		t_wait_exit "$_pid" 10 || kill -KILL "$_pid" 2>/dev/null
	fi
}
supervise 2>>"$T/sup.log" &
SUP=$!
T_PIDS="$T_PIDS $SUP"
t_at_exit 'touch "$T/sup.stop"; t_wait_exit "$SUP" 15; _p=$(cat "$T/pc.pid" 2>/dev/null); t_alive "$_p" && kill -KILL "$_p"'
daemon_pid() { cat "$T/pc.pid" 2>/dev/null; }
helper_pid() { _d=$(daemon_pid); [ -n "$_d" ] && pgrep -P "$_d" | head -n 1; }

t_wait_for '[ -S "$SOCK" ] && grep -q "av: loaded 1 signatures" "$T/portcullis.log"' 30 ||
	fail "portcullis did not start with the test database"

# --- the receiving Postfix R (tests/e2e/postfix-lib.sh) and the sender S -----------
pf_start
# S reuses its connections to R: without these, R slows a session down
# (1 s per reply) and drops it after 10 temporary failures, and the
# queue drains in tens of seconds instead of a few.
postconf -c "$PF" -e smtpd_error_sleep_time=0 smtpd_soft_error_limit=1000 \
	smtpd_hard_error_limit=1000 && timeout 30 "$POSTFIX" -c "$PF" reload >/dev/null 2>&1 ||
	fail "cannot set R's error limits"
SPF=$T/spostfix
SQ=$T/squeue
SPORT=$(t_free_port)
mkdir -p "$SPF" "$SQ" "$T/sdata"
chown postfix "$T/sdata"
cat >"$SPF/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $SQ
data_directory = $T/sdata
maillog_file = $T/smaillog
maillog_file_prefixes = $T
myhostname = sender.example.net
mydomain = example.net
myorigin = example.net
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtp_dns_support_level = disabled
smtpd_peername_lookup = no
smtpd_milters =
non_smtpd_milters =
relayhost = [127.0.0.1]:$PORT
# delivery status notifications to the test senders are dropped here
transport_maps = inline:{ok.e2e.test=discard:dsn}
alias_maps =
alias_database =
local_recipient_maps =
biff = no
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
# no pause before accepting a message while deliveries lag (default 1 s)
in_flow_delay = 0
smtp_connect_timeout = 5s
default_destination_concurrency_limit = 8
smtp_destination_concurrency_limit = 8
daemon_timeout = 60s
EOF
cat >"$SPF/master.cf" <<EOF
127.0.0.1:$SPORT inet n - n - - smtpd
$(pf_services)
EOF
s_stop()
{
	_mp=$(sed -n '1s/^[[:space:]]*\([0-9][0-9]*\).*/\1/p' "$SQ/pid/master.pid" 2>/dev/null)
	[ -n "$_mp" ] || return 0
	timeout 20 "$POSTFIX" -c "$SPF" stop >/dev/null 2>&1
	t_wait_exit "$_mp" 10 || kill -KILL "$_mp" 2>/dev/null
}
t_at_exit s_stop
t_port_busy "$SPORT" && fail "port $SPORT is taken"
timeout 30 "$POSTFIX" -c "$SPF" check >"$T/spf-check.out" 2>&1 ||
	fail "sending postfix check: $(cat "$T/spf-check.out")"
timeout 30 "$POSTFIX" -c "$SPF" start >"$T/spf-start.out" 2>&1 ||
	fail "sending postfix start: $(cat "$T/spf-start.out")"
t_wait_for 't_port_busy "$SPORT"' 15 || fail "the sending Postfix does not listen on $SPORT"
echo "ok: sending Postfix on 127.0.0.1:$SPORT relays to 127.0.0.1:$PORT; NSD on $DNS_PORT"

# --- the tools: feed S, probe R, account for a phase ---------------------------------
# inject.py PORT PHASE FIRST COUNT SECONDS SENTFILE RCPTS: COUNT messages
# to S, X-Test-Seq FIRST.., evenly over SECONDS, to u(SEQ % 10) (RCPTS
# "ten": mostly passed greylist triplets) or u(SEQ) ("new": a new triplet
# each, a greylist entry written each); the seqs S accepted go to SENTFILE.
cat >"$T/inject.py" <<'EOF'
import smtplib, sys, time
port, phase, first, count, secs, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
mod = 10 if sys.argv[7] == "ten" else 1 << 40
t0 = time.time()
s = None
with open(out, "w") as f:
    for i in range(count):
        seq = first + i
        delay = t0 + i * secs / count - time.time()
        if delay > 0:
            time.sleep(delay)
        if s is None:
            s = smtplib.SMTP("127.0.0.1", int(port), "inject.example.net", timeout=30)
        msg = ("From: sender@ok.e2e.test\r\nTo: u%d@example.test\r\nSubject: fault %s %d\r\n"
               "Message-ID: <faults-%d@sender.example.net>\r\nX-Test-Seq: %d\r\nX-Test-Phase: %s\r\n\r\n"
               "message %d of phase %s\r\n" % (seq % mod, phase, seq, seq, seq, phase, seq, phase))
        try:
            s.sendmail("sender@ok.e2e.test", ["u%d@example.test" % (seq % mod)], msg)
            f.write("%d\n" % seq)
        except Exception as e:
            print("inject: seq %d: %s" % (seq, e), file=sys.stderr)
            s = None
        if s is not None and i % 50 == 49:
            s.quit()
            s = None
        f.flush()
    if s is not None:
        s.quit()
EOF
# probe.py PORT SECONDS: one message straight to R every 0.3 s until one
# gets 250 at the end of DATA; prints "ok MS ATTEMPTS" or "fail LAST".
cat >"$T/probe.py" <<'EOF'
import smtplib, sys, time
port, secs = int(sys.argv[1]), float(sys.argv[2])
t0 = time.time()
n = 0
last = ""
while time.time() - t0 < secs:
    n += 1
    try:
        s = smtplib.SMTP("127.0.0.1", port, "probe.example.net", timeout=15)
        s.sendmail("probe@ok.e2e.test", ["probe@example.test"],
                   "From: probe@ok.e2e.test\r\nTo: probe@example.test\r\nSubject: probe\r\nX-Test-Probe: %d\r\n\r\nprobe\r\n" % n)
        s.quit()
        print("ok %d %d" % ((time.time() - t0) * 1000, n))
        sys.exit(0)
    except smtplib.SMTPResponseException as e:
        last = "%d %s" % (e.smtp_code, e.smtp_error.decode(errors="replace"))
    except smtplib.SMTPRecipientsRefused as e:
        last = str(list(e.recipients.values())[0])
    except Exception as e:
        last = repr(e)
    time.sleep(0.3)
print("fail " + last)
EOF
# account.py MAILDIR SENTFILE SMAILLOG SQUEUE RQUEUE [queues]: one line of
# key=value for the seqs in SENTFILE; with "queues", the messages not
# delivered are looked for in the queues of S and R.
cat >"$T/account.py" <<'EOF'
import os, re, sys
maildir, sentfile, smaillog, sq, rq = sys.argv[1:6]
look_in_queues = len(sys.argv) > 6
sent = set(int(l) for l in open(sentfile) if l.strip())
got = {}
for sub in ("new", "cur", "tmp"):
    d = os.path.join(maildir, sub)
    if not os.path.isdir(d):
        continue
    for name in os.listdir(d):
        try:
            with open(os.path.join(d, name), errors="replace") as f:
                for line in f:
                    if line in ("\n", "\r\n"):
                        break
                    if line.startswith("X-Test-Seq: "):
                        seq = int(line.split()[1])
                        got[seq] = got.get(seq, 0) + 1
                        break
        except OSError:
            pass
delivered = set(s for s in got if s in sent)
dups = sum(got[s] - 1 for s in delivered)
qid_seq = {}
deferred = grey = bounced = wrong = 0
bounced_seqs = set()
mid = re.compile(r" ([0-9A-F]+): message-id=<faults-(\d+)@")
st = re.compile(r" ([0-9A-F]+): to=<.*status=(deferred|bounced)")
with open(smaillog, errors="replace") as f:
    for line in f:
        m = mid.search(line)
        if m:
            qid_seq[m.group(1)] = int(m.group(2))
            continue
        m = st.search(line)
        if not m or qid_seq.get(m.group(1)) not in sent:
            continue
        if m.group(2) == "bounced":
            bounced += 1
            bounced_seqs.add(qid_seq[m.group(1)])
        else:
            deferred += 1
            if "Greylisted" in line:
                grey += 1
        if re.search(r"said: 5\d\d|status=bounced", line):
            wrong += 1
queued = set()
where = {}
# Only what is missing is looked for, in the queue files themselves (the
# header lines are plain text in Postfix's records).
if look_in_queues and sent - delivered - bounced_seqs:
    for qdir in (sq, rq):
        for sub in ("incoming", "active", "deferred", "hold", "corrupt"):
            for root, dirs, files in os.walk(os.path.join(qdir, sub)):
                for name in files:
                    try:
                        with open(os.path.join(root, name), "rb") as f:
                            m = re.search(rb"X-Test-Seq: (\d+)", f.read(1 << 20))
                    except OSError:
                        continue
                    if m and int(m.group(1)) in sent:
                        queued.add(int(m.group(1)))
                        where[int(m.group(1))] = os.path.relpath(os.path.join(root, name), os.path.dirname(qdir))
lost = len(sent - delivered - queued - bounced_seqs)
print("sent=%d delivered=%d duplicates=%d bounced=%d queued=%d lost=%d deferred=%d greylisted=%d wrong5xx=%d"
      % (len(sent), len(delivered), dups, len(bounced_seqs), len(queued), lost, deferred, grey, wrong))
# what is not delivered, and where (for the failure message)
for seq in sorted(sent - delivered)[:5]:
    qids = [q for q, v in qid_seq.items() if v == seq]
    print("undelivered %d: %s; sender's queue id %s" % (seq, where.get(seq, "in no queue"), ",".join(qids) or "none"),
          file=sys.stderr)
EOF

acct() { python3 "$T/account.py" "$MAILDIR" "$1" "$T/smaillog" "$SQ" "$Q" ${2:-}; }
val() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

# --- phases ----------------------------------------------------------------------------
PHASE_N=0
SUMMARY=
# phase_begin NAME COUNT SECONDS [RCPTS]: start feeding S in the
# background (RCPTS: see inject.py, default ten).
phase_begin()
{
	PHASE=$1
	PHASE_N=$((PHASE_N + 1))
	PHASE_T0=$(t_now_ms)
	timeout 120 python3 "$T/inject.py" "$SPORT" "$1" $((PHASE_N * 100000)) "$2" "$3" \
		"$T/sent.$1" "${4:-ten}" 2>"$T/inject.$1.err" &
	INJ=$!
}
# phase_fault_end: the fault is over now; probe R until it serves.
phase_fault_end()
{
	_pr=$(timeout 90 python3 "$T/probe.py" "$PORT" 60)
	case $_pr in
	ok*)
		set -- $_pr
		RECOVERY="${2} ms (${3} probes)"
		;;
	*)
		RECOVERY="none"
		t_err "$PHASE: the daemon does not serve 60 s after the fault ended: $_pr"
		;;
	esac
}
# phase_end: wait for the feed, then (240 s at most) for every message to
# be delivered; account, assert, report.
phase_end()
{
	wait "$INJ" 2>/dev/null
	[ -s "$T/inject.$PHASE.err" ] && t_err "$PHASE: feeding S: $(head -n 3 "$T/inject.$PHASE.err")"
	_sent=$(wc -l <"$T/sent.$PHASE")
	_i=0
	[ "$RECOVERY" = none ] && _i=230 # it failed already: do not wait long
	while [ $_i -lt 240 ]; do
		_a=$(acct "$T/sent.$PHASE" 2>/dev/null)
		[ "$(val "$_a" delivered)" -ge "$_sent" ] && break
		sleep 1
		_i=$((_i + 1))
	done
	_a=$(acct "$T/sent.$PHASE" queues 2>"$T/undelivered.$PHASE")
	_ms=$(($(t_now_ms) - PHASE_T0))
	_line="$PHASE: $_a recovery=$RECOVERY (phase $_ms ms)"
	echo "$_line"
	SUMMARY="$SUMMARY
  $_line"
	[ "$(val "$_a" lost)" = 0 ] || t_err "$PHASE: $(val "$_a" lost) messages lost"
	[ "$(val "$_a" duplicates)" = 0 ] || t_err "$PHASE: $(val "$_a" duplicates) duplicates"
	[ "$(val "$_a" wrong5xx)" = 0 ] || t_err "$PHASE: $(val "$_a" wrong5xx) 5xx for test messages"
	[ "$(val "$_a" bounced)" = 0 ] || t_err "$PHASE: $(val "$_a" bounced) bounced"
	if [ "$(val "$_a" delivered)" != "$_sent" ]; then
		# A message still in a queue is not lost (sent = delivered +
		# queued + bounced): seen a few times in the sender's own queue,
		# its qmgr saying "skipped, still being delivered" after a 4xx
		# for minutes.  Reported with its log lines; lost ones fail.
		echo "note: $PHASE: $(val "$_a" delivered) of $_sent delivered after 240 s, $(val "$_a" queued) still queued (not lost):"
		while read -r _l; do # the sender's log of the first few
			echo "  $_l"
			_q=$(echo "$_l" | sed -n 's/.*queue id \([0-9A-F,]*\)$/\1/p' | tr , ' ')
			for _x in $_q; do
				grep " $_x: " "$T/smaillog" | tail -n 4 | sed 's/^/    /'
			done
		done <"$T/undelivered.$PHASE"
	fi
	[ "$_sent" -gt 0 ] || t_err "$PHASE: S accepted no message"
}
# at SECONDS: sleep until SECONDS after the phase began.
at()
{
	_d=$(( $1 * 1000 - ($(t_now_ms) - PHASE_T0) ))
	[ $_d -gt 0 ] && sleep "$((_d / 1000)).$(printf %03d $((_d % 1000)))"
	return 0
}
kill_daemon()
{
	_p=$(daemon_pid)
	t_alive "$_p" && kill -KILL "$_p" && echo "  $(( ($(t_now_ms) - PHASE_T0) / 1000 )) s: kill -9 daemon $_p"
}
kill_helper()
{
	_p=$(helper_pid)
	if t_alive "$_p"; then
		kill -KILL "$_p" && echo "  $(( ($(t_now_ms) - PHASE_T0) / 1000 )) s: kill -9 helper $_p"
	else
		t_err "$PHASE: no scanner helper to kill"
	fi
}
# restart_daemon: stop it (SIGTERM, bounded) and let the supervisor start it
# with the current configuration.
restart_daemon()
{
	_p=$(daemon_pid)
	kill -TERM "$_p" 2>/dev/null
	t_wait_exit "$_p" 15 || kill -KILL "$_p" 2>/dev/null
	t_wait_for '[ "$(daemon_pid)" != "$_p" ] && t_alive "$(daemon_pid)" && [ -S "$SOCK" ]' 20 ||
		t_err "the supervisor did not start the daemon again"
}
GREY=$STATE/greylist.tdb
tdb_size() { stat -c %s "$GREY" 2>/dev/null || echo 0; }

ph_baseline()
{
	phase_begin baseline 100 4
	at 4
	phase_fault_end
	phase_end
}

# kill -9 of the daemon every 5 s
ph_kill_daemon()
{
	phase_begin kill-daemon 300 16
	at 2; kill_daemon
	at 7; kill_daemon
	at 12; kill_daemon
	phase_fault_end
	phase_end
}

# kill -9 of the scanner helper every 5 s
ph_kill_helper()
{
	phase_begin kill-helper 200 11
	at 2; kill_helper
	at 7; kill_helper
	phase_fault_end
	phase_end
}

# DNS server stopped, started again
ph_dns_stopped()
{
	phase_begin dns-stopped 150 9
	at 1
	sh "$top_srcdir/tests/dns/server.sh" stop "$DNSDIR" >/dev/null 2>&1
	echo "  1 s: NSD stopped"
	at 6
	nsd_restart
	echo "  6 s: NSD started again"
	phase_fault_end
	phase_end
}

# DNS server frozen
ph_dns_frozen()
{
	phase_begin dns-frozen 150 9
	at 1
	NSD_PIDS=$(nsd_pids)
	kill -STOP $NSD_PIDS && echo "  1 s: NSD frozen ($NSD_PIDS)"
	at 6
	kill -CONT $NSD_PIDS && echo "  6 s: NSD thawed"
	phase_fault_end
	phase_end
}

# the signature database removed, corrupted (a new helper then has none),
# restored
ph_clamav_db()
{
	phase_begin clamav-db 150 10
	at 1
	rm -f "$T/db/test.ndb" && echo "  1 s: database removed"
	at 3
	printf 'Broken:0:*:zz\n' >"$T/db/test.ndb" && echo "  3 s: database corrupted"
	at 5
	kill_helper
	at 7
	db_write && echo "  7 s: database restored"
	phase_fault_end
	phase_end
	grep -q "malformed database" "$T/portcullis.log" ||
		t_err "clamav-db: no 'malformed database' line in the log"
}

# greylist.tdb damaged under the running daemon
ph_tdb_truncated()
{
	phase_begin tdb-truncated 150 8
	at 2
	_s=$(tdb_size)
	truncate -s $((_s / 2)) "$GREY" && echo "  2 s: greylist.tdb cut from $_s to $((_s / 2)) bytes"
	phase_fault_end
	phase_end
}

ph_tdb_middle()
{
	phase_begin tdb-middle 150 8
	at 2
	_s=$(tdb_size)
	dd if=/dev/urandom of="$GREY" bs=4096 count=1 seek=$((_s / 8192)) conv=notrunc 2>/dev/null &&
		echo "  2 s: 4 KiB of random bytes over the middle of greylist.tdb ($_s bytes)"
	phase_fault_end
	phase_end
}

ph_tdb_end()
{
	phase_begin tdb-end 150 8
	at 2
	_s=$(tdb_size)
	dd if=/dev/urandom of="$GREY" bs=4096 count=1 seek=$((_s / 4096 - 1)) conv=notrunc 2>/dev/null &&
		echo "  2 s: 4 KiB of random bytes over the end of greylist.tdb ($_s bytes)"
	phase_fault_end
	phase_end
}

# state_dir on a full tmpfs
ph_state_full()
{
	FULL=$T/full
	mkdir -p "$FULL"
	if ! mount -t tmpfs -o size=64m,mode=0755 tmpfs "$FULL" 2>"$T/mount.err"; then
		echo "SKIP: state-full: cannot mount a tmpfs here: $(cat "$T/mount.err")"
		return 0
	fi
	t_at_exit 'umount "$FULL" 2>/dev/null'
	pc_conf "$FULL"
	restart_daemon
	# Full before the first message: greylist.tdb (4 MiB of hash table)
	# cannot be made.  (Filled later, the file's own free room, a quarter
	# of its size, would take the few hundred new entries of a phase.)
	dd if=/dev/zero of="$FULL/filler" bs=1M 2>/dev/null
	phase_begin state-full 150 10 new
	echo "  0 s: tmpfs full ($(df -k "$FULL" | awk 'NR==2 {print $4}') KiB free)"
	at 5
	rm -f "$FULL/filler" && echo "  5 s: tmpfs freed"
	phase_fault_end
	phase_end
}

# state_dir on an ext4 file system remounted read-only
ph_state_readonly()
{
	RO=$T/ro
	mkdir -p "$RO"
	if ! command -v mkfs.ext4 >/dev/null 2>&1 || ! truncate -s 64M "$T/ext4.img" ||
		! mkfs.ext4 -q -F "$T/ext4.img" >"$T/mount.err" 2>&1 ||
		! mount -o loop "$T/ext4.img" "$RO" 2>>"$T/mount.err"; then
		echo "SKIP: state-readonly: no loop-mounted ext4 here: $(tail -n 2 "$T/mount.err")"
		return 0
	fi
	t_at_exit 'umount "$RO" 2>/dev/null'
	pc_conf "$RO"
	restart_daemon
	phase_begin state-readonly 150 10 new
	at 2
	if mount -o remount,ro "$RO" 2>"$T/remount.err"; then
		echo "  2 s: state_dir remounted read-only under the running daemon"
	else
		# The kernel refuses while a file is open for writing (EBUSY).
		echo "  2 s: remount,ro refused while the daemon runs ($(head -n 1 "$T/remount.err"))"
		touch "$T/sup.hold"
		_p=$(daemon_pid)
		kill -TERM "$_p"
		t_wait_exit "$_p" 15 || kill -KILL "$_p"
		if mount -o remount,ro "$RO" 2>"$T/remount.err"; then
			echo "  2 s: daemon stopped, state_dir remounted read-only, daemon started again"
		else
			t_err "state-readonly: remount,ro failed: $(cat "$T/remount.err")"
		fi
		rm -f "$T/sup.hold"
	fi
	at 7
	mount -o remount,rw "$RO" && echo "  7 s: read-write again"
	phase_fault_end
	phase_end
}

# FAULT_PHASES="baseline kill-daemon ..." runs only those (for debugging).
for ph in ${FAULT_PHASES:-baseline kill-daemon kill-helper dns-stopped dns-frozen clamav-db \
	tdb-truncated tdb-middle tdb-end state-full state-readonly}; do
	"ph_$(echo "$ph" | tr - _)"
done

# --- summary -------------------------------------------------------------------------
echo "restarts by the supervisor: $(grep -c ' start ' "$T/sup.log")"
echo "summary:$SUMMARY"
touch "$T/sup.stop"
t_wait_exit "$SUP" 20
t_sanitizer_clean "$T/portcullis.log"
echo "faults: $(($(t_now_ms) - START_MS)) ms"
t_done
