#!/bin/sh
# contrib/bench/clamav.sh - portcullis' clamav check against clamav-milter +
# clamd, through the same Postfix, on the same messages, in one run
#
#   contrib/bench/clamav.sh        (as root, from anywhere; a plain -O2 build,
#                                   PORTCULLIS=/path/to/portcullis)
#
# Fetches the Debian packages clamav-daemon and clamav-milter with
# `apt-get download` and unpacks them into a private folder (nothing is
# installed, no system service starts).  Writes a signature database of its
# own (an .ndb line for the EICAR string, built at run time, and an .hdb
# line for a test file) and a message set: BENCH_MESSAGES messages (default
# 600), 80 % clean (4 KiB text, or a 40 KiB base64 PDF-like attachment), 10
# % EICAR as a base64 attachment, 10 % EICAR in a zip.  One private Postfix
# (see /work/shared/notes/real-mta-testing.md) listens on two loopback
# ports: one with smtpd_milters = portcullis (checks = clamav), one with
# clamav-milter (OnInfected Reject, talking to clamd on a unix socket).
# Accepted mail is discarded by Postfix.  Both filters use the same
# database and libclamav's defaults (clean-file cache on in both; every
# message differs, so only identical attachments hit it).
#
# The load (contrib/bench/smtpload.py, BENCH_THREADS parallel SMTP
# sessions, 10 messages each) runs against each filter in turn, in the order
# ABBA, and checks every answer (clean 250, virus 5xx).  Measured: wall time
# (msg/s) and the CPU time of the filter's processes (portcullis and its
# scanner helper; clamav-milter and clamd) from /proc/PID/stat.  Nothing is
# asserted about speed.  Bounded: everything runs under timeout and is
# stopped by the EXIT trap.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
top_srcdir=$top
: "${PORTCULLIS:=$top/build-bench-plain/milter/portcullis}"
N=${BENCH_MESSAGES:-600}
THREADS=${BENCH_THREADS:-4}
# BENCH_KIND: mixed (the set above), 4k (plain text), 100k (plain text),
# mime6k (a text part and a base64 attachment), all clean but for mixed
KIND=${BENCH_KIND:-mixed}
# BENCH_CHECKS: portcullis' checks (the issue's "defaults + attachments +
# ClamAV": access helo envelope attachments clamav)
CHECKS=${BENCH_CHECKS:-clamav}
# BENCH_PC_TMPDIR: portcullis' clamav.tmpdir; "default" leaves it unset
# (a private folder on /dev/shm); by default the same disk folder as clamd's
PC_TMPDIR=${BENCH_PC_TMPDIR:-}
# BENCH_RCPTS: recipients per message (default 1)
export SMTPLOAD_RCPTS=${BENCH_RCPTS:-1}
# BENCH_PERF=1: perf record -g of portcullis and its helper during the
# first measured round, the report in $T/perf.txt (kept with BENCH_KEEP=1)
. "$top/tests/lib.sh"
. "$top/tests/e2e/postfix-lib.sh"
PATH=$PATH:/usr/sbin:/sbin

[ -x "$PORTCULLIS" ] || { echo "bench: no portcullis at $PORTCULLIS (build it, or set PORTCULLIS)"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "bench: run as root (a private Postfix instance)"; exit 1; }
t_need postfix python3 apt-get dpkg timeout
t_init
chmod 755 "$T"

# --- clamd and clamav-milter, unpacked privately ---------------------------------
mkdir -p "$T/pkg" "$T/root"
(cd "$T/pkg" && timeout 120 apt-get download clamav-daemon clamav-milter >/dev/null 2>&1) ||
	fail "apt-get download clamav-daemon clamav-milter failed"
for d in "$T"/pkg/*.deb; do dpkg -x "$d" "$T/root"; done
CLAMD=$T/root/usr/sbin/clamd
CMILTER=$T/root/usr/sbin/clamav-milter

# --- database and messages ---------------------------------------------------------
mkdir -p "$T/db" "$T/msgs" "$T/tmp" "$T/pc"
python3 - "$T" "$N" "$KIND" <<'EOF'
import base64, hashlib, io, os, random, sys, zipfile
T, n, kind_of_set = sys.argv[1], int(sys.argv[2]), sys.argv[3]
eicar = "*H+H$!ELIF-TSET-SURIVITNA-DRADNATS-RACIE$}7)CC7)^P(45XZP\\4[PA@%P!O5X"[::-1].encode()
testfile = b"portcullis bench test file " + os.urandom(8).hex().encode()
open(T + "/db/bench.ndb", "w").write("Bench.Eicar:0:*:" + eicar.hex() + "\n")
open(T + "/db/bench.hdb", "w").write("%s:%d:Bench.File\n" % (hashlib.md5(testfile).hexdigest(), len(testfile)))
rnd = random.Random(1)
words = "the of and to in is that for it as with was on be at by this had not are but from".split()
def text(size):
    out, k = [], 0
    while k < size:
        line = " ".join(rnd.choice(words) for _ in range(12))
        out.append(line); k += len(line) + 2
    return "\r\n".join(out)
def msg(i, parts):
    b = "bench%d" % i
    h = ("From: sender@example.net\r\nTo: rcpt@example.test\r\nSubject: bench %d\r\n"
         "Message-Id: <%d.bench@example.net>\r\nMIME-Version: 1.0\r\n"
         "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n" % (i, i, b))
    body = ""
    for ctype, fname, data in parts:
        body += "--%s\r\nContent-Type: %s\r\n" % (b, ctype)
        if fname:
            enc = base64.encodebytes(data).decode().replace("\n", "\r\n")
            body += ("Content-Disposition: attachment; filename=\"%s\"\r\n"
                     "Content-Transfer-Encoding: base64\r\n\r\n%s" % (fname, enc))
        else:
            body += "\r\n" + data + "\r\n"
    return (h + body + "--%s--\r\n" % b).encode()
def plain(i, size):
    h = ("From: sender@example.net\r\nTo: rcpt@example.test\r\nSubject: bench %d\r\n"
         "Message-Id: <%d.bench@example.net>\r\n\r\n" % (i, i))
    return (h + text(size) + "\r\n").encode()
for i in range(n):
    k = i % 10
    if kind_of_set == "4k":
        m, kind = plain(i, 4000), "clean"
    elif kind_of_set == "100k":
        m, kind = plain(i, 100000), "clean"
    elif kind_of_set == "mime6k":
        m, kind = msg(i, [("text/plain", None, text(2500)), ("application/pdf", "report.pdf",
                          b"%PDF-1.4\n" + text(2200).encode())]), "clean"
    elif k == 0:
        m, kind = msg(i, [("text/plain", None, text(500)), ("application/octet-stream", "tool.com", eicar)]), "virus"
    elif k == 5:
        z = io.BytesIO(); zf = zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED)
        zf.writestr("docs/readme.txt", eicar); zf.close()
        m, kind = msg(i, [("text/plain", None, text(500)), ("application/zip", "docs.zip", z.getvalue())]), "virus"
    elif k in (2, 7):
        m, kind = msg(i, [("text/plain", None, text(1000)), ("application/pdf", "report.pdf",
                          b"%PDF-1.4\n" + text(40000).encode())]), "clean"
    else:
        m, kind = msg(i, [("text/plain", None, text(4000))]), "clean"
    open("%s/msgs/%05d.%s" % (T, i, kind), "wb").write(m)
EOF
[ -f "$T/db/bench.ndb" ] || fail "could not write the database and messages"

# --- clamd + clamav-milter ------------------------------------------------------------
cat >"$T/clamd.conf" <<EOF
LocalSocket $T/clamd.sock
LocalSocketMode 666
DatabaseDirectory $T/db
TemporaryDirectory $T/tmp
LogFile $T/clamd.log
Foreground yes
MaxThreads 10
SelfCheck 0
EOF
cat >"$T/clamav-milter.conf" <<EOF
MilterSocket unix:$T/cm.sock
MilterSocketMode 666
ClamdSocket unix:$T/clamd.sock
OnInfected Reject
OnFail Defer
AddHeader Replace
LogFile $T/clamav-milter.log
Foreground yes
MaxFileSize 25M
EOF
timeout 600 "$CLAMD" -c "$T/clamd.conf" >"$T/clamd.out" 2>&1 &
CLAMD_WRAP=$!
t_at_exit "kill $CLAMD_WRAP 2>/dev/null"
t_wait_for '[ -S "$T/clamd.sock" ]' 60 || fail "clamd did not start: $(tail -5 "$T/clamd.out" "$T/clamd.log" 2>/dev/null)"
timeout 600 "$CMILTER" -c "$T/clamav-milter.conf" >"$T/cm.out" 2>&1 &
CM_WRAP=$!
t_at_exit "kill $CM_WRAP 2>/dev/null"
t_wait_for '[ -S "$T/cm.sock" ]' 30 || fail "clamav-milter did not start: $(tail -5 "$T/cm.out" "$T/clamav-milter.log" 2>/dev/null)"
# the processes under the timeout wrappers (both run in the foreground)
CLAMD_PID=$(pgrep -P "$CLAMD_WRAP" | head -1)
CM_PID=$(pgrep -P "$CM_WRAP" | head -1)
[ -n "$CLAMD_PID" ] && [ -n "$CM_PID" ] || fail "no clamd or clamav-milter process found"

# --- portcullis -------------------------------------------------------------------------
cat >"$T/portcullis.conf" <<EOF
socket = unix:$T/pc/sock
socket_mode = 0666
state_dir = $T/pc
log_target = stderr
trusted_networks =
hostname = mx.example.test
checks = $CHECKS
clamav.database = $T/db
EOF
case $PC_TMPDIR in
default) ;;
"") echo "clamav.tmpdir = $T/tmp" >>"$T/portcullis.conf" ;;
*) echo "clamav.tmpdir = $PC_TMPDIR" >>"$T/portcullis.conf" ;;
esac
timeout 600 "$PORTCULLIS" -f -c "$T/portcullis.conf" 2>"$T/portcullis.log" &
PC_WRAP=$!
t_at_exit "kill $PC_WRAP 2>/dev/null"
t_wait_for '[ -S "$T/pc/sock" ]' 30 || fail "portcullis did not start: $(tail -5 "$T/portcullis.log")"
t_wait_for 'grep -q "av: loaded" "$T/portcullis.log"' 30 || fail "portcullis' scanner did not load the database"
PC_PID=$(pgrep -P "$PC_WRAP" -x portcullis | head -1)
HELPER_PID=$(sed -n 's/.*scanner helper started (pid \([0-9]*\)).*/\1/p' "$T/portcullis.log" | tail -1)

# --- Postfix with two smtpd ports --------------------------------------------------------
PF=$T/postfix Q=$T/queue
mkdir -p "$PF" "$Q" "$T/data"
chown postfix "$T/data"
P1=$(t_free_port)
P2=$(t_free_port)
[ "$P1" = "$P2" ] && P2=$(t_free_port)
cat >"$PF/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $Q
data_directory = $T/data
maillog_file = $T/maillog
maillog_file_prefixes = $T
myhostname = mx.example.test
mydestination =
relay_domains = example.test
relay_transport = discard:bench
default_transport = discard:bench
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtp_dns_support_level = disabled
smtpd_peername_lookup = no
non_smtpd_milters =
milter_default_action = tempfail
milter_protocol = 6
in_flow_delay = 0
message_size_limit = 52428800
alias_maps =
alias_database =
biff = no
EOF
cat >"$PF/master.cf" <<EOF
127.0.0.1:$P1 inet n - n - - smtpd -o smtpd_milters=unix:$T/pc/sock
127.0.0.1:$P2 inet n - n - - smtpd -o smtpd_milters=unix:$T/cm.sock
$(pf_services)
EOF
timeout 30 postfix -c "$PF" check >"$T/pf.out" 2>&1 || fail "postfix check: $(cat "$T/pf.out")"
timeout 30 postfix -c "$PF" start >>"$T/pf.out" 2>&1 || fail "postfix start: $(cat "$T/pf.out")"
t_at_exit "timeout 20 postfix -c '$PF' stop >/dev/null 2>&1; sleep 2"
t_wait_for 't_port_busy $P1 && t_port_busy $P2' 15 || fail "Postfix does not listen"

cpu() { # ticks of utime+stime of the pids
	_s=0
	for _p in "$@"; do
		_v=$(awk '{print $14 + $15}' "/proc/$_p/stat" 2>/dev/null)
		_s=$((_s + ${_v:-0}))
	done
	echo $_s
}
HZ=$(getconf CLK_TCK)
run() { # run LABEL PORT PIDS...
	_label=$1 _port=$2
	shift 2
	_c0=$(cpu "$@")
	_out=$(timeout 600 python3 "$here/smtpload.py" "$_port" "$T/msgs" "$THREADS" 10) ||
		fail "$_label: wrong answers: $_out"
	_c1=$(cpu "$@")
	_secs=$(echo "$_out" | sed -n 's/.*secs=\([0-9.]*\).*/\1/p')
	_ms=$(echo "$_out" | sed -n 's/.*msgs_per_s=\([0-9.]*\).*/\1/p')
	_us=$(( (_c1 - _c0) * 1000000 / HZ / N ))
	echo "$_label $_ms $_us" >>"$T/results"
	printf '%-28s %s  filter CPU %d us/msg\n' "$_label" "$_out" "$_us"
}

echo "bench: $N messages (80% clean, 20% EICAR), $THREADS SMTP sessions, Postfix ports $P1 (portcullis) $P2 (clamav-milter)"
run "warm-up portcullis" "$P1" "$PC_PID" "$HELPER_PID" >/dev/null
run "warm-up clamav-milter" "$P2" "$CM_PID" "$CLAMD_PID" >/dev/null
: >"$T/results"
perf_pid=
if [ "${BENCH_PERF:-0}" = 1 ] && command -v perf >/dev/null; then
	perf record -q -g -F 1000 -p "$PC_PID,$HELPER_PID" -o "$T/perf.data" >/dev/null 2>&1 &
	perf_pid=$!
	sleep 1
fi
for order in 1 2 2 1; do
	if [ "$order" = 1 ]; then
		run "portcullis+clamav" "$P1" "$PC_PID" "$HELPER_PID"
		if [ -n "$perf_pid" ]; then
			kill -INT "$perf_pid"
			wait "$perf_pid"
			perf_pid=
			perf report -i "$T/perf.data" --no-children --sort comm,dso,sym 2>/dev/null |
				grep -v '^#' | grep '%' | grep -v -- '--' | head -40 >"$T/perf.txt"
			echo "perf: top of the profile of portcullis + helper ($T/perf.txt):"
			head -25 "$T/perf.txt"
		fi
	else
		run "clamav-milter+clamd" "$P2" "$CM_PID" "$CLAMD_PID"
	fi
done
awk '
	/^portcullis/ { pm += $2; pu += $3; pn++ }
	/^clamav-milter/ { cm += $2; cu += $3; cn++ }
	END {
		printf "\nmean over %d rounds each:\n", pn
		printf "  portcullis+clamav     %7.1f msg/s  %6d us CPU/msg\n", pm / pn, pu / pn
		printf "  clamav-milter+clamd   %7.1f msg/s  %6d us CPU/msg\n", cm / cn, cu / cn
		printf "  ratio portcullis/clamav-milter: msg/s %.2f, CPU/msg %.2f\n", (pm / pn) / (cm / cn), (pu / pn) / (cu / cn)
	}' "$T/results"
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null; }
echo "memory (VmRSS KiB): portcullis $(rss "$PC_PID") + helper $(rss "$HELPER_PID");" \
	"clamav-milter $(rss "$CM_PID") + clamd $(rss "$CLAMD_PID")"
if [ "${BENCH_PERF:-0}" = 1 ]; then
	echo "helper's largest mappings (Rss KiB):"
	awk '/^[0-9a-f]+-[0-9a-f]+ / {name = $6 ? $6 : "[anon]"} /^Rss:/ {r[name] += $2}
		END {for (n in r) print r[n], n}' "/proc/$HELPER_PID/smaps" 2>/dev/null |
		sort -rn | head -8 | sed 's/^/  /'
fi
[ "$KIND" != mixed ] || grep -q "verdict=reject" "$T/portcullis.log" ||
	t_err "portcullis logged no rejection"
t_done
