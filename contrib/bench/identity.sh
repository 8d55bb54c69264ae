#!/bin/sh
# contrib/bench/identity.sh - what dkim + dmarc cost: portcullis with and
# without them, and OpenDKIM + OpenDMARC chained, through the same Postfix,
# on the same signed messages, in one run
#
#   contrib/bench/identity.sh      (as root, from anywhere; a plain -O2 build,
#                                   PORTCULLIS=/path/to/portcullis and
#                                   DKIMSIGN=/path/to/tests/dkim/dkimsign)
#
# Keys and zones (tests/dkim/keys.sh): example.net with "v=spf1
# ip4:127.0.0.1 -all", "v=DMARC1; p=reject" and the key sel1; served by
# NSD (tests/dns/server.sh).  BENCH_MESSAGES (default 400) messages of
# about 6 KB, From: example.net, each signed by the real signer
# (tests/dkim/dkimsign, rsa-sha256 1024 bits, relaxed/relaxed), sent by
# contrib/bench/smtpload.py (MAIL FROM load@example.net from 127.0.0.1:
# SPF pass, DKIM pass, DMARC pass) through one private Postfix with three
# smtpd ports:
#   pc-spf     portcullis, checks = spf               (dkim, dmarc off)
#   pc-ident   portcullis, checks = spf, dkim, dmarc  (the A-R of all three)
#   opendkim+opendmarc   the Debian packages, fetched with apt-get download
#              and unpacked privately (nothing installed), chained in
#              smtpd_milters: OpenDKIM verifies (Mode v, its DNS through
#              libunbound forwarding to 127.0.53.53), OpenDMARC applies the policy
#              and checks SPF itself (SPFSelfValidate; its resolver is the
#              C library's: it runs in its own mount namespace whose
#              /etc/resolv.conf points at 127.0.53.53, where the tests' DNS
#              proxy forwards to NSD)
# After a warm-up (every DNS answer cached by every filter), the load runs
# against each in turn, ABCCBA, BENCH_THREADS (4) SMTP sessions, 10
# messages each.  Measured: msg/s and the CPU time of the filter processes
# (/proc/PID/stat utime + stime) per message.  Checked: smtpload.py checks
# every answer (all 250); each portcullis log line of the measured rounds
# has the expected symbols (pc-ident: dkim.pass and dmarc.pass; both:
# spf.pass); OpenDMARC's history file has every message DKIM-aligned with
# policy pass (so OpenDKIM verified them).  Nothing is asserted about speed.
# Bounded by timeout; the EXIT trap stops everything it started.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
top_srcdir=$top
: "${PORTCULLIS:=$top/build-bench-plain/milter/portcullis}"
: "${DKIMSIGN:=$top/build-bench-plain/tests/dkim/dkimsign}"
N=${BENCH_MESSAGES:-400}
THREADS=${BENCH_THREADS:-4}
. "$top/tests/lib.sh"
. "$top/tests/e2e/postfix-lib.sh"
PATH=$PATH:/usr/sbin:/sbin

[ -x "$PORTCULLIS" ] || { echo "bench: no portcullis at $PORTCULLIS (build it, or set PORTCULLIS)"; exit 1; }
[ -x "$DKIMSIGN" ] || { echo "bench: no dkimsign at $DKIMSIGN (make check builds it, or set DKIMSIGN)"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "bench: run as root (a private Postfix instance)"; exit 1; }
t_need postfix python3 apt-get dpkg timeout nsd perl unshare
t_init
chmod 755 "$T"

# --- keys, zones, NSD and a proxy on 127.0.53.53:53 for OpenDMARC ----------------
mkdir -p "$T/keys"
printf '@\tIN TXT\t"v=spf1 ip4:127.0.0.1 -all"\n_dmarc\tIN TXT\t"v=DMARC1; p=reject"\n' \
	>"$T/keys/example.net.extra"
sh "$top/tests/dkim/keys.sh" "$T/keys" example.net >/dev/null || fail "tests/dkim/keys.sh failed"
t_at_exit "sh '$top/tests/dns/server.sh' stop '$T/dns' >/dev/null 2>&1"
DNS_ZONE_DIRS=$T/keys/zones DNS_SERVER_LIFETIME=900 \
	sh "$top/tests/dns/server.sh" start "$T/dns" >/dev/null 2>&1 || fail "NSD did not start"
NSD_PORT=$(sed -n 's/^DNS_NSD_PORT=//p' "$T/dns/dns.env")
timeout 900 perl "$top/tests/dns/faultproxy.pl" --listen 127.0.53.53:53 \
	--upstream "127.0.0.1:$NSD_PORT" --lifetime 900 >"$T/proxy53.log" 2>&1 &
PROXY53=$!
t_at_exit "kill $PROXY53 2>/dev/null"
t_wait_for 'perl "$top/tests/dns/faultproxy.pl" --probe 127.0.53.53:53 example.net' 10 ||
	fail "no DNS proxy on 127.0.53.53:53 (is port 53 taken there?)"

# --- messages ------------------------------------------------------------------
mkdir -p "$T/msgs" "$T/raw"
python3 - "$T/raw" "$N" <<'PY'
import random, sys
d, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(1)
words = "the of and to in is that for it as with was on be at by this had not are but from".split()
for i in range(n):
    lines, k = [], 0
    while k < 6000:
        line = " ".join(rnd.choice(words) for _ in range(12))
        lines.append(line); k += len(line) + 2
    h = ("From: Alice <alice@example.net>\r\nTo: rcpt@example.test\r\nSubject: bench %d\r\n"
         "Date: Mon, 07 Dec 2026 01:00:00 +0000\r\nMessage-ID: <%d.bench@example.net>\r\n"
         "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n" % (i, i))
    open("%s/%05d" % (d, i), "w", newline="").write(h + "\r\n".join(lines) + "\r\n")
PY
for f in "$T"/raw/*; do
	ASAN_OPTIONS=detect_leaks=0 "$DKIMSIGN" -r "$T/keys/sel1.private" sel1 example.net <"$f" \
		>"$T/msgs/$(basename "$f").clean" || fail "signing $f failed"
done
SIZE=$(wc -c <"$T/msgs/00000.clean")

# --- OpenDKIM and OpenDMARC, unpacked privately ------------------------------------
mkdir -p "$T/pkg" "$T/root" "$T/od"
(cd "$T/pkg" && timeout 120 apt-get download opendkim opendmarc >/dev/null 2>&1) ||
	fail "apt-get download opendkim opendmarc failed"
for d in "$T"/pkg/*.deb; do dpkg -x "$d" "$T/root"; done
chmod 755 "$T/od"
cat >"$T/opendkim.conf" <<EOF
Socket local:$T/od/opendkim.sock
UMask 000
Mode v
AuthservID mx.example.test
Nameservers 127.0.53.53
InternalHosts csl:192.0.2.1
Background no
Syslog no
PidFile $T/od/opendkim.pid
UserID root
EOF
printf 'nameserver 127.0.53.53\n' >"$T/resolv.conf"
# the load comes from 127.0.0.1, which both treat as internal (not
# verified) by default
echo 192.0.2.1 >"$T/od/ignore"
cat >"$T/opendmarc.conf" <<EOF
Socket local:$T/od/opendmarc.sock
UMask 000
AuthservID mx.example.test
TrustedAuthservIDs mx.example.test
RejectFailures true
SPFSelfValidate true
SPFIgnoreResults true
Background no
Syslog no
PidFile $T/od/opendmarc.pid
UserID root
HistoryFile $T/od/opendmarc.history
IgnoreHosts $T/od/ignore
EOF
timeout 900 "$T/root/usr/sbin/opendkim" -f -x "$T/opendkim.conf" >"$T/opendkim.log" 2>&1 &
OD_WRAP=$!
t_at_exit "kill $OD_WRAP 2>/dev/null"
# OpenDMARC in its own mount namespace: /etc/resolv.conf -> 127.0.53.53
timeout 900 unshare -m --propagation private sh -c "mount --bind '$T/resolv.conf' /etc/resolv.conf &&
	exec '$T/root/usr/sbin/opendmarc' -f -c '$T/opendmarc.conf'" >"$T/opendmarc.log" 2>&1 &
OM_WRAP=$!
t_at_exit "kill $OM_WRAP 2>/dev/null"
t_wait_for '[ -S "$T/od/opendkim.sock" ] && [ -S "$T/od/opendmarc.sock" ]' 30 ||
	fail "OpenDKIM/OpenDMARC did not start: $(tail -n 3 "$T/opendkim.log" "$T/opendmarc.log")"
t_wait_for '[ -s "$T/od/opendkim.pid" ] && [ -s "$T/od/opendmarc.pid" ]' 10 || fail "no pid files"
OD_PID=$(cat "$T/od/opendkim.pid")
OM_PID=$(cat "$T/od/opendmarc.pid")

# --- two portcullis daemons ------------------------------------------------------------
pc() { # NAME CHECKS-LINE
	mkdir -p "$T/$1"
	{
		echo "socket = unix:$T/$1/sock"
		echo "socket_mode = 0666"
		echo "state_dir = $T/$1"
		echo "log_target = stderr"
		echo "trusted_networks ="
		echo "hostname = mx.example.test"
		echo "dns.resolver = 127.0.0.1:$NSD_PORT"
		echo "spf.pass_score = -0.1"
		echo "dkim.pass_score = -0.1"
		echo "dmarc.pass_score = -0.1"
		echo "$2"
	} >"$T/$1/portcullis.conf"
	timeout 900 "$PORTCULLIS" -f -c "$T/$1/portcullis.conf" 2>"$T/$1/log" &
	echo $! >"$T/$1/wrap"
	t_at_exit "kill $(cat "$T/$1/wrap") 2>/dev/null"
	_pcsock=$T/$1/sock
	t_wait_for '[ -S "$_pcsock" ]' 30 || fail "portcullis $1 did not start: $(tail -n 3 "$T/$1/log")"
	pgrep -P "$(cat "$T/$1/wrap")" -x portcullis | head -n 1 >"$T/$1/pid"
}
pc spf "checks = spf"
pc ident "checks = spf, dkim, dmarc"
PC1=$(cat "$T/spf/pid")
PC2=$(cat "$T/ident/pid")

# --- Postfix with three smtpd ports --------------------------------------------------
PF=$T/postfix Q=$T/queue
mkdir -p "$PF" "$Q" "$T/data"
chown postfix "$T/data"
P1=$(t_free_port)
P2=$P1
while [ "$P2" = "$P1" ]; do P2=$(t_free_port); done
P3=$P1
while [ "$P3" = "$P1" ] || [ "$P3" = "$P2" ]; do P3=$(t_free_port); done
pf_bench_main_cf >"$PF/main.cf"
{
	echo "127.0.0.1:$P1 inet n - n - - smtpd -o smtpd_milters=unix:$T/spf/sock"
	echo "127.0.0.1:$P2 inet n - n - - smtpd -o smtpd_milters=unix:$T/ident/sock"
	echo "127.0.0.1:$P3 inet n - n - - smtpd -o smtpd_milters=unix:$T/od/opendkim.sock,unix:$T/od/opendmarc.sock"
	pf_services
} >"$PF/master.cf"
timeout 30 postfix -c "$PF" check >"$T/pf.out" 2>&1 || fail "postfix check: $(cat "$T/pf.out")"
timeout 30 postfix -c "$PF" start >>"$T/pf.out" 2>&1 || fail "postfix start: $(cat "$T/pf.out")"
t_at_exit "timeout 20 postfix -c '$PF' stop >/dev/null 2>&1; sleep 2"
t_wait_for 't_port_busy $P1 && t_port_busy $P2 && t_port_busy $P3' 15 || fail "Postfix does not listen"

cpu() {
	_s=0
	for _p in "$@"; do
		_v=$(awk '{print $14 + $15}' "/proc/$_p/stat" 2>/dev/null)
		_s=$((_s + ${_v:-0}))
	done
	echo $_s
}
HZ=$(getconf CLK_TCK)
run() { # LABEL PORT PIDS...
	_label=$1 _port=$2
	shift 2
	_c0=$(cpu "$@")
	_out=$(timeout 600 python3 "$here/smtpload.py" "$_port" "$T/msgs" "$THREADS" 10) ||
		fail "$_label: wrong answers: $_out"
	_c1=$(cpu "$@")
	_ms=$(echo "$_out" | sed -n 's/.*msgs_per_s=\([0-9.]*\).*/\1/p')
	_us=$(((_c1 - _c0) * 1000000 / HZ / N))
	echo "$_label $_ms $_us" >>"$T/results"
	printf '%-22s %s  filter CPU %d us/msg\n' "$_label" "$_out" "$_us"
}

echo "bench: $N signed messages of $SIZE bytes, $THREADS SMTP sessions, Postfix ports $P1 (pc-spf) $P2 (pc-ident) $P3 (opendkim+opendmarc)"
run warm-up-spf "$P1" "$PC1" >/dev/null
run warm-up-ident "$P2" "$PC2" >/dev/null
run warm-up-od "$P3" "$OD_PID" "$OM_PID" >/dev/null
n1=$(grep -c "portcullis: ref=" "$T/ident/log")
: >"$T/results"
for f in spf ident od od ident spf; do
	case $f in
	spf) run pc-spf "$P1" "$PC1" ;;
	ident) run pc-ident "$P2" "$PC2" ;;
	od) run opendkim+opendmarc "$P3" "$OD_PID" "$OM_PID" ;;
	esac
done
awk '
	{ m[$1] += $2; u[$1] += $3; n[$1]++ }
	END {
		printf "\nmean over %d rounds each:\n", n["pc-spf"]
		for (k in m) printf "  %-22s %7.1f msg/s  %6d us CPU/msg\n", k, m[k] / n[k], u[k] / n[k]
		printf "  dkim+dmarc in portcullis: +%d us CPU/msg; OpenDKIM+OpenDMARC: %d us CPU/msg\n",
			u["pc-ident"] / n["pc-ident"] - u["pc-spf"] / n["pc-spf"], u["opendkim+opendmarc"] / n["opendkim+opendmarc"]
	}' "$T/results"
# a fast but wrong run cannot pass
bad=$(sed -n "$((n1 + 1)),\$p" "$T/ident/log" | grep "portcullis: ref=" | grep -c -v "dkim.pass" )
[ "$bad" -eq 0 ] || t_err "pc-ident: $bad log lines without dkim.pass: $(grep 'portcullis: ref=' "$T/ident/log" | tail -n 1)"
bad=$(sed -n "$((n1 + 1)),\$p" "$T/ident/log" | grep "portcullis: ref=" | grep -c -v "dmarc.pass")
[ "$bad" -eq 0 ] || t_err "pc-ident: $bad log lines without dmarc.pass"
grep "portcullis: ref=" "$T/spf/log" | grep -q -v "spf.pass" && t_err "pc-spf: a line without spf.pass"
# OpenDMARC's history file: one "job" per message, align_dkim 4 and
# align_spf 4 when aligned (DMARC_POLICY_*_ALIGNMENT_PASS), policy 15 = pass
h=$T/od/opendmarc.history
jobs=$(grep -c '^job ' "$h" 2>/dev/null)
adk=$(grep -c '^align_dkim 4$' "$h" 2>/dev/null)
asp=$(grep -c '^align_spf 4$' "$h" 2>/dev/null)
pol=$(grep -c '^policy 15$' "$h" 2>/dev/null)
echo "OpenDMARC history: $jobs messages, $adk DKIM-aligned, $asp SPF-aligned, $pol policy pass"
[ "${adk:-0}" -eq "${jobs:-1}" ] && [ "${pol:-0}" -eq "${jobs:-1}" ] ||
	t_err "OpenDMARC did not see every message pass DKIM alignment and policy (it would be a wrong comparison)"
t_done
