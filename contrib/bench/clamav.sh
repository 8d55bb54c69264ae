#!/bin/sh
# contrib/bench/clamav.sh - portcullis against a peer filter, through the
# same private Postfix, on the same messages, in one run
#
#   contrib/bench/clamav.sh        (as root, from anywhere; a plain -O2 build,
#                                   PORTCULLIS=/path/to/portcullis)
#
# BENCH_PEER chooses the peer (and portcullis' checks, BENCH_CHECKS):
#   clamav    clamav-milter + clamd (OnInfected Reject, clamd on a unix
#             socket); portcullis "clamav".  /usr/sbin/clamd and
#             /usr/sbin/clamav-milter when installed, else the Debian
#             packages clamav-daemon and clamav-milter fetched with
#             `apt-get download` and unpacked into a private folder (nothing
#             is installed, no system service starts); exit 77 when neither.
#   postgrey  postgrey as a Postfix policy service (check_policy_service
#             inet:127.0.0.1:PORT, its database in a private folder,
#             --delay=1, no client auto-whitelist); portcullis "greylist"
#             (greylist.delay = 1s, awl_count = 0, pools = no).  Each message
#             has a sender of its own (one triplet per message); every
#             triplet is seen twice, 2 s apart, before the measured rounds,
#             so both measure the decision on known, passing triplets.
#             /usr/sbin/postgrey when installed; with BENCH_INSTALL=1 its
#             Perl modules are installed with apt-get and the Debian package
#             is unpacked privately; else exit 77.
#   noop      contrib/bench/noop-milter.c (built with cc); portcullis
#             "access helo envelope".
# Both filters share the signature database the script writes (an .ndb line
# for the EICAR string, built at run time, and an .hdb line) and the size
# limits of libclamav's defaults: clamd's StreamMaxLength 100M, MaxScanSize
# 400M, MaxFileSize 100M and clamav-milter's MaxFileSize 100M; portcullis'
# clamav.max_scansize 400 MiB and clamav.max_filesize 100 MiB: up to 10 MB
# both scan whole messages.  Clean-file cache on in both (every message
# differs, so only identical attachments hit it).
#
# BENCH_KIND, the messages (BENCH_MESSAGES of them, default 600): mixed
# (80 % clean: 4 KiB text or a 40 KiB base64 PDF-like attachment; 10 %
# EICAR as a base64 attachment, 10 % EICAR in a zip), 4k or 100k (plain
# text), mime6k (a text part and a base64 attachment), size:BYTES (a
# short text part and a base64 attachment, BYTES in all; 100k, 1m, 10m
# accepted).  All clean but for mixed.  BENCH_RCPTS: recipients per
# message (1).
#
# One private Postfix (see /work/shared/notes/real-mta-testing.md) listens
# on two loopback ports, one for each filter; accepted mail is discarded.
# message_size_limit 50 MB, milter_content_timeout 300 s, process limits
# raised for BENCH_MODE=memory.
#
# BENCH_MODE=cpu (default): the load (contrib/bench/smtpload.py,
# BENCH_THREADS parallel SMTP sessions, 10 messages each) runs against each
# filter in turn, after a warm-up of each: BENCH_ROUNDS (2) pairs of rounds
# in the order AB BA AB ..., and checks every answer (clean 250, virus 5xx).
# Measured: wall time (msg/s) and the CPU time of the filter's processes
# (portcullis and its scanner helper; clamav-milter and clamd; postgrey;
# the no-op milter) from /proc/PID/stat.  Printed: per filter the median,
# min and max over rounds of CPU per message and msg/s, the median and range
# of the per-round CPU ratio, and one line "row: ..." for compare.sh.
#
# BENCH_MODE=memory: contrib/bench/hold.py holds BENCH_SESSIONS (200) SMTP
# sessions open at once in DATA, then sends their messages (the first of the
# set) at the same moment; VmRSS and Pss (/proc/PID/smaps_rollup) of the
# filter's processes are sampled every 0.2 s.  Printed: idle and peak of
# each, and a line "mem: ..." for compare.sh.
#
# BENCH_DNS=1: portcullis with its DNS checks and greylisting too (default
# BENCH_CHECKS "access helo envelope dnsbl rhsbl sender_domain client_dns
# spf greylist attachments clamav"; not with BENCH_PEER=postgrey).  NSD
# (tests/dns/server.sh) on a loopback port serves the zones of
# contrib/bench/zones.sh and is portcullis' only resolver (dns.resolver;
# dnsbl zen + bl2, rhsbl dbl of those zones).  Postfix authorises XCLIENT
# from 127.0.0.1 and gives the load's own connection no milter; every
# session (of both filters) comes from one of BENCH_ADDRS (50) clients
# 198.51.100.N with forward-confirmed names mN.relays.rsbench.test, sender
# s@cN.snd.rsbench.test: listed nowhere, SPF pass, so every clean message
# is accepted.  Greylisting: greylist.delay = 0, awl_count = 0 (every
# message looks up and updates its triplet); the warm-up passes every
# triplet first, so the rounds measure known, passing triplets and a warm
# DNS cache.  Checked: before the rounds, probes through portcullis' port
# (a listed client, a listed sender domain, an SPF fail: 550 and the
# symbol in the log); after them, that portcullis logged spf.pass on an
# accepted message and the greylist store counted one more pass for each
# load message and recipient of the rounds (portcullisctl greylist list).
# The peer does no DNS work: the point of the comparison.
#
# BENCH_PERF=1: perf record -g of portcullis and its helper during the
# first measured round, the report in $T/perf.txt (kept with T_KEEP=1).
# Nothing is asserted about speed.  Bounded: every process runs under
# timeout (BENCH_LIFETIME seconds, default 1800) and is stopped by the EXIT
# trap, which also removes the temp folder.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
export top_srcdir="$top"
: "${PORTCULLIS:=$top/build-bench-plain/milter/portcullis}"
PEER=${BENCH_PEER:-clamav}
MODE=${BENCH_MODE:-cpu}
N=${BENCH_MESSAGES:-600}
THREADS=${BENCH_THREADS:-4}
ROUNDS=${BENCH_ROUNDS:-2}
SESSIONS=${BENCH_SESSIONS:-200}
LIFETIME=${BENCH_LIFETIME:-1800}
DNS=${BENCH_DNS:-0}
NADDR=${BENCH_ADDRS:-50}
case $PEER in
clamav) CHECKS=${BENCH_CHECKS:-clamav} KIND=${BENCH_KIND:-mixed} ;;
postgrey) CHECKS=${BENCH_CHECKS:-greylist} KIND=${BENCH_KIND:-4k} ;;
noop) CHECKS=${BENCH_CHECKS:-access helo envelope} KIND=${BENCH_KIND:-4k} ;;
*)
	echo "bench: BENCH_PEER is clamav, postgrey or noop"
	exit 1
	;;
esac
if [ "$DNS" = 1 ]; then
	[ "$PEER" != postgrey ] || { echo "bench: BENCH_DNS=1 is not for BENCH_PEER=postgrey"; exit 1; }
	[ "$NADDR" -ge 1 ] && [ "$NADDR" -le 65 ] || { echo "bench: BENCH_ADDRS must be 1..65"; exit 1; }
	CHECKS=${BENCH_CHECKS:-access helo envelope dnsbl rhsbl sender_domain client_dns spf greylist attachments clamav}
	export SMTPLOAD_XCLIENT="$NADDR"
fi
# BENCH_PC_TMPDIR: portcullis' clamav.tmpdir; "default" leaves it unset
# (a private folder on /dev/shm); by default the same disk folder as clamd's
PC_TMPDIR=${BENCH_PC_TMPDIR:-}
export SMTPLOAD_RCPTS="${BENCH_RCPTS:-1}"
[ "$PEER" = postgrey ] && export SMTPLOAD_SENDERS=per-message
. "$top/tests/lib.sh"
. "$top/tests/e2e/postfix-lib.sh"
PATH=$PATH:/usr/sbin:/sbin
POSTFIX=$(command -v postfix) # for pf_stop
export POSTFIX

[ -x "$PORTCULLIS" ] || { echo "bench: no portcullis at $PORTCULLIS (build it, or set PORTCULLIS)"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "bench: run as root (a private Postfix instance)"; exit 1; }
t_need postfix python3 apt-get dpkg timeout
t_init
chmod 755 "$T"
if [ "$DNS" = 1 ]; then
	t_need nsd perl
	. "$here/zones.sh"
	bench_dns "$T" "$LIFETIME"
fi

skip()
{
	echo "bench: skip: $*"
	exit 77
}

# daemon NAME READY CMD...: CMD in the background under timeout (its output
# in $T/NAME.out), stopped at exit; waits (60 s) until the shell test READY
# holds.  DPID: the process under the timeout wrapper.
daemon()
{
	_dn=$1 _dr=$2
	shift 2
	timeout "$LIFETIME" "$@" >"$T/$_dn.out" 2>&1 &
	_dw=$!
	t_at_exit "kill $_dw 2>/dev/null"
	t_wait_for "$_dr" 60 || fail "$_dn did not start: $(tail -5 "$T/$_dn.out")"
	DPID=$(pgrep -P "$_dw" | head -1)
	[ -n "$DPID" ] || fail "$_dn: no process under its timeout"
	T_PIDS="$T_PIDS $DPID"
}

# unpack PACKAGE...: the Debian packages, downloaded with apt-get download
# into BENCH_PKGDIR (default $T/pkg; compare.sh shares one for its runs)
# unless already there, unpacked into $T/root (nothing is installed); exit
# 77 when a download fails
unpack()
{
	_pd=${BENCH_PKGDIR:-$T/pkg}
	mkdir -p "$_pd" "$T/root"
	for _pkg in "$@"; do
		ls "$_pd/${_pkg}"_*.deb >/dev/null 2>&1 ||
			(cd "$_pd" && timeout 120 apt-get download "$_pkg" >/dev/null 2>&1) ||
			skip "apt-get download $_pkg failed"
		for _d in "$_pd/${_pkg}"_*.deb; do dpkg -x "$_d" "$T/root"; done
	done
}

# --- database and messages ---------------------------------------------------------
mkdir -p "$T/db" "$T/msgs" "$T/tmp"
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
big = None
if kind_of_set.startswith("size:"):
    want = kind_of_set[5:].lower()
    want = int(want[:-1]) * {"k": 1024, "m": 1048576}[want[-1]] if want[-1] in "km" else int(want)
    # a short text part, the rest a base64 attachment (4/3 of its bytes)
    note = text(600)
    big = b"%PDF-1.4\n" + text(max(0, (want - 1400) * 3 // 4)).encode()
for i in range(n):
    k = i % 10
    if big is not None:
        # every attachment differs (its first line), as in real mail
        m, kind = msg(i, [("text/plain", None, note), ("application/pdf", "report.pdf",
                          b"%%PDF-1.4 %d\n" % i + big[9:])]), "clean"
    elif kind_of_set == "4k":
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
MSG_BYTES=$(($(cat "$T"/msgs/* | wc -c) / N))

# --- the peer -----------------------------------------------------------------------------
# Each sets PEER_PIDS (its processes), PEER_LABEL and PEER_SMTPD (the -o
# options of its smtpd port).
peer_clamav()
{
	if [ -x /usr/sbin/clamd ] && [ -x /usr/sbin/clamav-milter ]; then
		CLAMD=/usr/sbin/clamd CMILTER=/usr/sbin/clamav-milter
	else
		unpack clamav-daemon clamav-milter
		CLAMD=$T/root/usr/sbin/clamd CMILTER=$T/root/usr/sbin/clamav-milter
	fi
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
EOF
	daemon clamd '[ -S "$T/clamd.sock" ]' "$CLAMD" -c "$T/clamd.conf"
	PEER_PIDS=$DPID
	daemon clamav-milter '[ -S "$T/cm.sock" ]' "$CMILTER" -c "$T/clamav-milter.conf"
	PEER_PIDS="$DPID $PEER_PIDS"
	PEER_LABEL="clamav-milter + clamd"
	PEER_SMTPD="-o smtpd_milters=unix:$T/cm.sock"
}

peer_postgrey()
{
	PG=/usr/sbin/postgrey
	if [ ! -x "$PG" ]; then
		[ "${BENCH_INSTALL:-0}" = 1 ] ||
			skip "postgrey is not installed (BENCH_INSTALL=1: its Perl modules with apt-get, the package unpacked privately)"
		timeout 300 apt-get install -y --no-install-recommends libnet-server-perl \
			libberkeleydb-perl libnetaddr-ip-perl >"$T/apt.out" 2>&1 ||
			skip "apt-get install of postgrey's Perl modules failed: $(tail -2 "$T/apt.out")"
		unpack postgrey
		PG=$T/root/usr/sbin/postgrey
	fi
	perl -MNet::Server::Multiplex -MBerkeleyDB -MNetAddr::IP -e 1 2>/dev/null ||
		skip "postgrey's Perl modules are missing (Net::Server, BerkeleyDB, NetAddr::IP)"
	mkdir -p "$T/pgdb"
	chown nobody "$T/pgdb"
	: >"$T/pg-empty"
	PP=$(t_free_port)
	daemon postgrey 't_port_busy $PP' perl -T "$PG" --inet="127.0.0.1:$PP" --dbdir="$T/pgdb" \
		--delay=1 --auto-whitelist-clients=0 --user=nobody --group=nogroup \
		--whitelist-clients="$T/pg-empty" --whitelist-recipients="$T/pg-empty" \
		--hostname=mx.example.test
	PEER_PIDS=$DPID
	PEER_LABEL="postgrey $(sed -n 's/^my \$VERSION *= *.\([0-9.]*\).*/\1/p' "$PG") (policy service)"
	PEER_SMTPD="-o smtpd_recipient_restrictions=check_policy_service,inet:127.0.0.1:$PP"
}

peer_noop()
{
	"${CC:-cc}" -O2 -Wall -Wextra -o "$T/noop-milter" "$here/noop-milter.c" -lmilter -lpthread ||
		fail "cannot build noop-milter.c"
	daemon noop '[ -S "$T/noop.sock" ]' "$T/noop-milter" -p "$T/noop.sock"
	# it makes its socket mode 0700: smtpd (user postfix) must reach it
	chmod 666 "$T/noop.sock"
	PEER_PIDS=$DPID
	PEER_LABEL="no-op milter"
	PEER_SMTPD="-o smtpd_milters=unix:$T/noop.sock"
}
"peer_$PEER"

# --- portcullis -------------------------------------------------------------------------
mkdir -p "$T/pc"
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
[ "$PEER" = postgrey ] && printf '%s\n' "greylist.delay = 1s" "greylist.awl_count = 0" \
	"greylist.pools = no" >>"$T/portcullis.conf"
[ "$DNS" = 1 ] && printf '%s\n' "dns.resolver = 127.0.0.1:$NSD_PORT" \
	"dnsbl.reject_sites = zen.rsbench.test" "dnsbl.sites = bl2.rsbench.test" \
	"rhsbl.reject_sites = dbl.rsbench.test" "spf.pass_score = -0.1" \
	"greylist.delay = 0" "greylist.awl_count = 0" >>"$T/portcullis.conf"
daemon portcullis '[ -S "$T/pc/sock" ]' "$PORTCULLIS" -f -c "$T/portcullis.conf"
PC_PIDS=$DPID
PC_LABEL="portcullis ($CHECKS)"
case " $CHECKS " in
*" clamav "*)
	t_wait_for 'grep -q "av: loaded" "$T/portcullis.out"' 30 || fail "portcullis' scanner did not load the database"
	HELPER_PID=$(sed -n 's/.*scanner helper started (pid \([0-9]*\)).*/\1/p' "$T/portcullis.out" | tail -1)
	[ -n "$HELPER_PID" ] || fail "no scanner helper pid in the log"
	PC_PIDS="$PC_PIDS $HELPER_PID"
	;;
esac

# --- Postfix with two smtpd ports --------------------------------------------------------
PF=$T/postfix Q=$T/queue
mkdir -p "$PF" "$Q" "$T/data"
chown postfix "$T/data"
P1=$(t_free_port)
P2=$(t_free_port)
[ "$P1" = "$P2" ] && P2=$(t_free_port)
pf_bench_main_cf \
	"milter_content_timeout = 300s" \
	"message_size_limit = 52428800" \
	"default_process_limit = $((SESSIONS + 50))" \
	"smtpd_client_connection_count_limit = 0" >"$PF/main.cf"
if [ "$DNS" = 1 ]; then
	# XCLIENT from the load; its own connection from 127.0.0.1 gets no
	# milter (each filter sees one connection per session, the client's)
	printf '%s\n' "smtpd_authorized_xclient_hosts = 127.0.0.0/8" \
		"smtpd_milter_maps = cidr:$PF/milter_maps" >>"$PF/main.cf"
	echo "127.0.0.0/8 DISABLE" >"$PF/milter_maps"
fi
cat >"$PF/master.cf" <<EOF
127.0.0.1:$P1 inet n - n - - smtpd -o smtpd_milters=unix:$T/pc/sock
127.0.0.1:$P2 inet n - n - - smtpd $PEER_SMTPD
$(pf_services)
EOF
timeout 30 postfix -c "$PF" check >"$T/pf.out" 2>&1 || fail "postfix check: $(cat "$T/pf.out")"
t_at_exit pf_stop
timeout 30 postfix -c "$PF" start >>"$T/pf.out" 2>&1 || fail "postfix start: $(cat "$T/pf.out")"
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

# load PORT: the message set once through 127.0.0.1:PORT (smtpload.py); its
# summary line in $LOAD, false on a wrong answer
load()
{
	LOAD=$(timeout 900 python3 "$here/smtpload.py" "$1" "$T/msgs" "$THREADS" 10)
}

# run ROUND WHO: one load against pc or peer; appends "ROUND WHO MSG/S
# US/MSG" to $T/results
run()
{
	if [ "$2" = pc ]; then
		_port=$P1 _pids=$PC_PIDS _label=$PC_LABEL
	else
		_port=$P2 _pids=$PEER_PIDS _label=$PEER_LABEL
	fi
	# shellcheck disable=SC2086
	_c0=$(cpu $_pids)
	load "$_port" || fail "$_label: wrong answers: $LOAD"
	# shellcheck disable=SC2086
	_c1=$(cpu $_pids)
	_ms=$(echo "$LOAD" | sed -n 's/.*msgs_per_s=\([0-9.]*\).*/\1/p')
	_us=$(((_c1 - _c0) * 1000000 / HZ / N))
	echo "$1 $2 $_ms $_us" >>"$T/results"
	printf '  round %d %-40s %s  filter CPU %d us/msg\n' "$1" "$_label" "$LOAD" "$_us"
}

# warm_up: each filter sees the set once (for postgrey and the greylist
# first twice, 2 s apart, answers not checked: the first pass defers every
# new triplet); the warm-up pass must be all right
warm_up()
{
	if [ "$PEER" = postgrey ]; then
		# the first pass must defer every message: greylisting is on
		load "$P1"
		echo "$LOAD" | grep -q ' clean_ok=0 ' || t_err "portcullis did not greylist: $LOAD"
		load "$P2"
		echo "$LOAD" | grep -q ' clean_ok=0 ' || t_err "postgrey did not greylist: $LOAD"
		sleep 2
	fi
	if [ "$DNS" = 1 ] && case " $CHECKS " in *" greylist "*) true ;; *) false ;; esac; then
		# greylist.delay = 0: the first message of each triplet is
		# deferred, the next one passes; this pass sees every triplet
		load "$P1"
		echo "$LOAD" | grep -q ' clean_ok=0 ' && t_err "portcullis passed no message: $LOAD"
		echo "$LOAD" | grep -q ' wrong=0 ' && t_err "portcullis did not greylist: $LOAD"
	fi
	: >"$T/results"
	run 0 pc >/dev/null
	run 0 peer >/dev/null
	: >"$T/results"
}

perf_start()
{
	PERF_PID=
	[ "${BENCH_PERF:-0}" = 1 ] && command -v perf >/dev/null || return 0
	perf record -q -g -F 1000 -p "$(echo "$PC_PIDS" | tr ' ' ,)" -o "$T/perf.data" >/dev/null 2>&1 &
	PERF_PID=$!
	sleep 1
}

perf_stop()
{
	[ -n "$PERF_PID" ] || return 0
	kill -INT "$PERF_PID"
	wait "$PERF_PID"
	PERF_PID=
	perf report -i "$T/perf.data" --no-children --sort comm,dso,sym 2>/dev/null |
		grep -v '^#' | grep '%' | grep -v -- '--' | head -40 >"$T/perf.txt"
	echo "perf: top of the profile of portcullis + helper ($T/perf.txt):"
	head -25 "$T/perf.txt"
}

# mmm: "median min max" of the numbers on stdin, one a line
mmm()
{
	sort -g | awk '{ v[NR] = $1 }
	END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2), v[1], v[NR] }'
}

# summary: medians, min and max over the rounds of each filter's CPU per
# message and msg/s, and of the per-round CPU ratio; one "row:" line
summary()
{
	# shellcheck disable=SC2046
	set -- $(awk '$2 == "pc" { print $4 }' "$T/results" | mmm) \
		$(awk '$2 == "pc" { print $3 }' "$T/results" | mmm) \
		$(awk '$2 == "peer" { print $4 }' "$T/results" | mmm) \
		$(awk '$2 == "peer" { print $3 }' "$T/results" | mmm) \
		$(awk '{ c[$1, $2] = $4; r[$1] = 1 }
		END { for (x in r) if (c[x, "peer"] > 0) print c[x, "pc"] / c[x, "peer"] }' "$T/results" | mmm)
	printf '\n%d rounds each (interleaved AB BA ...), CPU of the filter per message, median (min-max):\n' "$ROUNDS"
	printf '  %-44s %7.1f msg/s  %6.0f us/msg (%.0f-%.0f)\n' "$PC_LABEL" "$4" "$1" "$2" "$3"
	printf '  %-44s %7.1f msg/s  %6.0f us/msg (%.0f-%.0f)\n' "$PEER_LABEL" "${10}" "$7" "$8" "$9"
	printf '  CPU ratio portcullis/peer per round: median %.2f (%.2f-%.2f)\n' "${13}" "${14}" "${15}"
	awk -v w="${BENCH_WORK:-$KIND}" -v pcl="$PC_LABEL" -v pel="$PEER_LABEL" -v v="$*" 'BEGIN {
		split(v, a, " ")
		printf "row: %s|%s|%.3f|%.3f|%.3f|%.1f|%s|%.3f|%.3f|%.3f|%.1f|%.2f|%.2f|%.2f\n", w, pcl,
			a[1] / 1000, a[2] / 1000, a[3] / 1000, a[4], pel, a[7] / 1000, a[8] / 1000,
			a[9] / 1000, a[10], a[13], a[14], a[15] }'
}

# mem_sample PIDS...: "VmRSS Pss" (KiB) of each pid on one line
mem_sample()
{
	for _p in "$@"; do
		printf '%s %s ' "$(awk '/^VmRSS:/ {print $2}' "/proc/$_p/status" 2>/dev/null)" \
			"$(awk '/^Pss:/ {print $2}' "/proc/$_p/smaps_rollup" 2>/dev/null)"
	done
	echo
}

# hold WHO: BENCH_SESSIONS sessions held at DATA through WHO's port while
# its memory is sampled; prints idle and peak, appends a "mem:" line
hold()
{
	if [ "$1" = pc ]; then
		_port=$P1 _pids=$PC_PIDS _label=$PC_LABEL
	else
		_port=$P2 _pids=$PEER_PIDS _label=$PEER_LABEL
	fi
	# shellcheck disable=SC2086
	mem_sample $_pids >"$T/mem-$1"
	rm -f "$T/mem-stop"
	(
		_i=0
		while [ ! -e "$T/mem-stop" ] && [ $_i -lt 6000 ]; do
			# shellcheck disable=SC2086
			mem_sample $_pids
			sleep 0.2
			_i=$((_i + 1))
		done >>"$T/mem-$1"
	) &
	_sampler=$!
	_msg=$(ls "$T/msgs" | head -1)
	_out=$(timeout 900 python3 "$here/hold.py" "$_port" "$SESSIONS" "$T/msgs/$_msg" 3 2>&1)
	_rc=$?
	touch "$T/mem-stop"
	wait "$_sampler"
	[ $_rc = 0 ] || fail "$_label: $SESSIONS sessions at once: $_out"
	echo "  $_label: $(echo "$_out" | tail -1)"
	awk -v label="$_label" -v work="${BENCH_WORK:-$KIND}" '
	NR == 1 { for (i = 1; i <= NF; i++) idle[i] = $i; rs = 0; ps = 0
		for (i = 1; i <= NF; i += 2) { rs += $i; ps += $(i + 1) }
		irss = rs; ipss = ps; nf = NF; next }
	NF == nf { rs = 0; ps = 0
		for (i = 1; i <= NF; i++) if ($i > peak[i]) peak[i] = $i
		for (i = 1; i <= NF; i += 2) { rs += $i; ps += $(i + 1) }
		if (rs > prss) prss = rs; if (ps > ppss) ppss = ps; samples++ }
	END {
		printf "    idle:  VmRSS %.1f MB, Pss %.1f MB;", irss / 1024, ipss / 1024
		printf " peak (%d samples): VmRSS %.1f MB, Pss %.1f MB; per process peak VmRSS/Pss MB:",
			samples, prss / 1024, ppss / 1024
		for (i = 1; i <= nf; i += 2) printf " %.1f/%.1f", peak[i] / 1024, peak[i + 1] / 1024
		printf "\n"
		printf "mem: %s|%s|%.1f|%.1f|%.1f|%.1f\n", work, label, irss / 1024, ipss / 1024,
			prss / 1024, ppss / 1024 >"/dev/stderr"
	}' "$T/mem-$1" 2>>"$T/mem-lines"
}

if [ "$MODE" = memory ]; then
	echo "bench: $SESSIONS SMTP sessions held at DATA at once, then their messages ($MSG_BYTES bytes each) together; Postfix ports $P1 (portcullis) $P2 ($PEER_LABEL)"
	echo "  processes: portcullis $PC_PIDS; $PEER_LABEL $PEER_PIDS"
	hold pc
	hold peer
	cat "$T/mem-lines"
	t_done
fi

# --- BENCH_DNS=1: probes, and what the logs must show ------------------------------------
PCTL="$(dirname "$PORTCULLIS")/portcullisctl"
# pc_probe WHAT SYMBOL ADDR NAME SENDER: a 550 from portcullis, SYMBOL logged
pc_probe()
{
	_r=$(timeout 60 python3 "$here/xclientload.py" probe "$P1" "$3" "$4" "$4" "$5" 2>"$T/probe.err") ||
		_r="error $(tail -1 "$T/probe.err")"
	[ "$_r" = 550 ] || t_err "portcullis: $1: reply $_r, expected 550"
	t_wait_for "grep 'from=<$5>' '$T/portcullis.out' | grep -q '$2'" 10 ||
		t_err "portcullis: $1: no $2 in the log line"
}
# passes: the load's accepted messages with spf.pass in portcullis' log,
# and the sum of the passes of its greylist triplets ("LOGGED PASSES")
passes()
{
	_l=$(grep 'from=<s@c[0-9]*\.snd\.rsbench\.test>' "$T/portcullis.out" | grep 'verdict=accept' |
		grep -c 'spf\.pass')
	_g=0
	case " $CHECKS " in
	*" greylist "*)
		_g=$(timeout 60 "$PCTL" -c "$T/portcullis.conf" greylist list 2>>"$T/pctl.err" |
			sed -n 's/.* passes=\([0-9]*\).*/\1/p' | awk '{ s += $1 } END { print s + 0 }')
		;;
	esac
	echo "$_l $_g"
}
if [ "$DNS" = 1 ]; then
	pc_probe "listed client" dnsbl.zen.rsbench.test 198.51.100.66 m66.relays.rsbench.test \
		s@p1.snd.rsbench.test
	pc_probe "listed sender domain" rhsbl.sender.dbl.rsbench.test 198.51.100.1 \
		m1.relays.rsbench.test s@bad.snd.rsbench.test
	pc_probe "SPF fail" spf.fail 198.51.100.1 m1.relays.rsbench.test s@p3.fail.rsbench.test
	[ "$T_FAILS" = 0 ] || fail "the probes failed: portcullis does not do the DNS checks"
	echo "bench: probes ok: portcullis refused the listed client, the listed sender domain and the SPF fail"
fi

echo "bench: $N messages ($KIND, $MSG_BYTES bytes on average, $SMTPLOAD_RCPTS recipient(s)), $THREADS SMTP sessions, Postfix ports $P1 (portcullis) $P2 ($PEER_LABEL)"
warm_up
if [ "$DNS" = 1 ]; then
	# the log lines of the warm-up are all there before counting
	NCLEAN=$(find "$T/msgs" -name "*.clean" | wc -l)
	t_wait_for '[ "$(passes | cut -d" " -f1)" -ge "$NCLEAN" ]' 30 ||
		t_err "portcullis logged fewer than $NCLEAN spf.pass lines in the warm-up"
	PASSES0=$(passes)
	NSD_PIDS="$NSD_PID $(pgrep -P "$NSD_PID" | tr '\n' ' ')"
	# shellcheck disable=SC2086
	NSD0=$(cpu $NSD_PIDS)
fi
perf_start
r=1
while [ $r -le "$ROUNDS" ]; do
	if [ $((r % 2)) = 1 ]; then
		run $r pc
		perf_stop
		run $r peer
	else
		run $r peer
		run $r pc
	fi
	r=$((r + 1))
done
if [ "$DNS" = 1 ]; then
	_want=$((NCLEAN * ROUNDS))
	# shellcheck disable=SC2086
	_nsd=$(($(cpu $NSD_PIDS) - NSD0))
	_l0=${PASSES0%% *}
	t_wait_for '[ "$(passes | cut -d" " -f1)" -ge $((_l0 + _want)) ]' 30
	# shellcheck disable=SC2046
	set -- $PASSES0 $(passes)
	echo "bench: in the rounds portcullis logged $(($3 - $1)) accepted load messages with spf.pass" \
		"and counted $(($4 - $2)) greylist passes of known triplets ($((N * ROUNDS)) messages," \
		"$SMTPLOAD_RCPTS recipient(s) each); NSD's CPU in the rounds: $((_nsd * 1000000 / HZ / (N * ROUNDS))) us/msg"
	[ $(($3 - $1)) = "$_want" ] || t_err "portcullis: $(($3 - $1)) accepted messages with spf.pass, expected $_want"
	case " $CHECKS " in
	*" greylist "*)
		[ $(($4 - $2)) = $((N * ROUNDS * SMTPLOAD_RCPTS)) ] ||
			t_err "portcullis: $(($4 - $2)) greylist passes, expected $((N * ROUNDS * SMTPLOAD_RCPTS))"
		;;
	esac
fi
summary
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null; }
# shellcheck disable=SC2086
echo "memory (VmRSS KiB) after the run: portcullis $(for p in $PC_PIDS; do printf '%s ' "$(rss "$p")"; done)-" \
	"$PEER_LABEL $(for p in $PEER_PIDS; do printf '%s ' "$(rss "$p")"; done)"
if [ "${BENCH_PERF:-0}" = 1 ] && [ -n "${HELPER_PID:-}" ]; then
	echo "helper's largest mappings (Rss KiB):"
	awk '/^[0-9a-f]+-[0-9a-f]+ / {name = $6 ? $6 : "[anon]"} /^Rss:/ {r[name] += $2}
		END {for (n in r) print r[n], n}' "/proc/$HELPER_PID/smaps" 2>/dev/null |
		sort -rn | head -8 | sed 's/^/  /'
fi
[ "$KIND" != mixed ] || grep -q "verdict=reject" "$T/portcullis.out" ||
	t_err "portcullis logged no rejection"
t_done
