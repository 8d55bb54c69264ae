#!/bin/sh
# tests/e2e/postfix.sh - portcullis behind a real Postfix on the loopback
#
# A private Postfix instance (own config, queue and data folders under a
# temp folder, chroot off, smtpd on 127.0.0.1:FREEPORT, maillog_file,
# virtual delivery of example.test into one Maildir) calls portcullis over
# a unix socket (socket_group = postfix, mode 0660).  swaks plays remote
# clients through XCLIENT (smtpd_authorized_xclient_hosts = 127.0.0.0/8),
# so the milter sees 192.0.2.x, not the loopback.  Asserts:
#  1. HELO localhost from 192.0.2.7: "550 5.7.1 ... (ref XXXXXXXXXX); contact
#     postmaster@example.test" at RCPT, and the same ref in portcullis' log
#     line for that client and HELO (refused=...:reject:helo.localhost);
#  2. a good message (FQDN HELO) is queued ("250 2.0.0 Ok: queued as QID"),
#     "QID: removed" comes in the maillog, the file is in the Maildir, it
#     has no X-Portcullis header, and the log line has qid=QID
#     verdict=accept; a message with a non-FQDN HELO (helo.non_fqdn =
#     monitor) is delivered with "X-Portcullis-Monitor: helo.non_fqdn (ref
#     R)" and R is the ref of the log line with its qid;
#     a transaction that ends after RCPT has Postfix's queue id (sent
#     from the second RCPT on) in its log line;
#  3. postmaster@example.test is reachable from the refused client (250 at
#     RCPT, delivered);
#  3b. portcullis stopping (SIGTERM) with a transaction in flight (MAIL and
#     RCPT accepted): a new SMTP session gets 250 at MAIL (Postfix takes no
#     reply to connect, HELO and MAIL from portcullis) and "451 4.3.2 Filter
#     shutting down, try again later" at each of its two RCPTs (also in the
#     maillog); the transaction in flight is then queued and logged, and
#     portcullis exits with status 0;
#  4. with portcullis stopped (milter_default_action = tempfail) Postfix
#     says 4xx at MAIL FROM and accepts nothing.
# Skips (77) without postfix or swaks.  The system's own Postfix (port 25)
# is never touched.  Prints the elapsed time.  The Postfix setup is shared
# with tests/e2e/postfix-dns.sh: tests/e2e/postfix-lib.sh.

: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/postfix-lib.sh"

pf_need
t_init
START_MS=$(t_now_ms)
pf_init

# --- portcullis ----------------------------------------------------------------
pf_conf "$PC/portcullis.conf" "helo.non_fqdn = monitor"
t_start "$PC/portcullis.conf" "$T/portcullis.log"
PC_PID=$T_PID PC_WRAP=$T_WRAP

# --- Postfix (tests/e2e/postfix-lib.sh) -------------------------------------------
pf_start
SETUP_MS=$(($(t_now_ms) - START_MS))

# smtp NAME XCLIENT_ADDR HELO RCPT [SWAKS ARGS...]: one SMTP session from
# sender@example.net; the transcript is in $T/NAME.txt.
smtp()
{
	_sn=$1 _sa=$2 _sh=$3
	shift 3
	pf_smtp "$_sn" "$_sa" "$_sh" sender@example.net "$@"
}

# --- 1. a bad HELO is refused at RCPT, with a ref that is in the log ---------
smtp bad 192.0.2.7 localhost user@example.test
t_grep '^ *-> RCPT TO:<user@example.test>' "$T/bad.txt" "bad HELO: RCPT sent"
line=$(grep -E '^ *<\*\* *550 5\.7\.1 ' "$T/bad.txt" | head -n 1)
if [ -z "$line" ]; then
	t_err "bad HELO: no 550 5.7.1 in the transcript: $(grep -E '^ *<' "$T/bad.txt" | tail -n 4)"
else
	# the 550 answers the RCPT (the line before it is the RCPT command)
	prev=$(grep -B 1 -E '^ *<\*\* *550 5\.7\.1 ' "$T/bad.txt" | head -n 1)
	case $prev in
	*"RCPT TO:"*) ;;
	*) t_err "bad HELO: the 550 does not answer RCPT (it follows '$prev')" ;;
	esac
	REF=$(echo "$line" | sed -n 's/.*(ref \([0-9A-Za-z]\{10\}\)); contact postmaster@example\.test$/\1/p')
	[ -n "$REF" ] || t_err "bad HELO: reply lacks '(ref XXXXXXXXXX); contact postmaster@example.test': $line"
	echo "$line" | grep -q "HELO localhost" || t_err "bad HELO: reply does not name the HELO: $line"
	if [ -n "$REF" ]; then
		t_wait_for 'log_line "$REF" >/dev/null' 5
		l=$(log_line "$REF")
		if [ -z "$l" ]; then
			t_err "bad HELO: ref $REF of the reply is not in the portcullis log"
		else
			echo "$l" | grep -q 'client=client-7\.example\.net\[192\.0\.2\.7\] helo=<localhost> from=<sender@example\.net>' ||
				t_err "bad HELO: log line has the wrong client/helo/from: $l"
			echo "$l" | grep -q 'refused=<user@example\.test>:reject:helo\.localhost verdict=reject' ||
				t_err "bad HELO: log line lacks refused=<user@example.test>:reject:helo.localhost verdict=reject: $l"
		fi
	fi
	[ -n "$REF" ] && t_grep "milter-reject: RCPT from client-7\.example\.net\[192\.0\.2\.7\]: 550 5\.7\.1 .*\(ref $REF\); contact postmaster@example\.test" \
		"$T/maillog" "bad HELO: Postfix's milter-reject line with ref $REF" >/dev/null
	grep -q "queued as" "$T/bad.txt" && t_err "bad HELO: a message was queued"
	echo "ok: 1. bad HELO refused at RCPT: $line"
fi

# --- 2. good messages are delivered ------------------------------------------
smtp good 192.0.2.8 mail.example.net user@example.test
QID=$(queue_id good)
if [ -z "$QID" ]; then
	t_err "good: not queued: $(grep -E '^ *<' "$T/good.txt" | tail -n 4)"
else
	f=$(delivered good "$QID")
	if [ -n "$f" ]; then
		grep -qi '^X-Portcullis' "$f" && t_err "good: unexpected header $(grep -i '^X-Portcullis' "$f")"
		grep -qx 'Delivered-To: user@example.test' "$f" || t_err "good: no Delivered-To: user@example.test in $f"
		echo "ok: 2a. good message queued as $QID and delivered ($(basename "$f"))"
	fi
	l=$(grep "portcullis: ref=[0-9A-Za-z]* qid=$QID " "$T/portcullis.log")
	echo "$l" | grep -q 'client=client-8\.example\.net\[192\.0\.2\.8\] helo=<mail\.example\.net> from=<sender@example\.net> to=<user@example\.test> verdict=accept' ||
		t_err "good: no log line 'qid=$QID ... to=<user@example.test> verdict=accept': '$l'"
fi

smtp monitor 192.0.2.9 mailhost user@example.test
QID2=$(queue_id monitor)
if [ -z "$QID2" ]; then
	t_err "monitor: not queued: $(grep -E '^ *<' "$T/monitor.txt" | tail -n 4)"
else
	f=$(delivered monitor "$QID2")
	if [ -n "$f" ]; then
		h=$(grep '^X-Portcullis-Monitor:' "$f")
		R=$(echo "$h" | sed -n 's/^X-Portcullis-Monitor: helo\.non_fqdn (ref \([0-9A-Za-z]\{10\}\))$/\1/p')
		if [ -z "$R" ]; then
			t_err "monitor: want 'X-Portcullis-Monitor: helo.non_fqdn (ref R)' in the delivered mail, got '$h'"
		else
			l=$(log_line "$R")
			echo "$l" | grep -q "qid=$QID2 .*helo=<mailhost> .*verdict=accept .*monitor=helo\.non_fqdn" ||
				t_err "monitor: log line of ref $R lacks qid=$QID2 helo=<mailhost> verdict=accept monitor=helo.non_fqdn: '$l'"
			echo "ok: 2b. non-FQDN HELO: delivered with '$h', same ref and qid in the log"
		fi
	fi
fi

# A transaction that ends after RCPT still has Postfix's queue id in its
# log line: Postfix sends {i} from the RCPT after the first accepted one.
smtp aborted 192.0.2.10 mail.example.net user@example.test,other@example.test --quit-after RCPT
t_wait_for 'grep -q "client=client-10\.example\.net" "$T/portcullis.log"' 5
l=$(grep 'portcullis: ref=.* client=client-10\.example\.net\[192\.0\.2\.10\] ' "$T/portcullis.log")
q=$(echo "$l" | sed -n 's/.* qid=\([0-9A-Za-z]*\) .*/\1/p')
if [ -z "$q" ]; then
	t_err "aborted: no qid in the log line of a transaction ended after RCPT: '$l'"
else
	echo "$l" | grep -q 'to=<user@example\.test>,<other@example\.test> verdict=aborted' ||
		t_err "aborted: log line lacks to=<user@example.test>,<other@example.test> verdict=aborted: $l"
	t_grep "$q: client=client-10\.example\.net\[192\.0\.2\.10\]" "$T/maillog" \
		"aborted: Postfix's queue id $q for 192.0.2.10" >/dev/null &&
		echo "ok: 2c. ended after RCPT: Postfix's queue id $q in the log line"
fi

# --- 3. postmaster@ is reachable from the refused client ---------------------
smtp postmaster 192.0.2.7 localhost postmaster@example.test
rcpt_reply=$(grep -A 1 -E '^ *-> RCPT TO:<postmaster@example.test>' "$T/postmaster.txt" | tail -n 1)
case $rcpt_reply in
*"<- "*250*) ;;
*) t_err "postmaster: RCPT answered '$rcpt_reply', want 250" ;;
esac
QID3=$(queue_id postmaster)
if [ -z "$QID3" ]; then
	t_err "postmaster: not queued: $(grep -E '^ *<' "$T/postmaster.txt" | tail -n 4)"
else
	f=$(delivered postmaster "$QID3")
	if [ -n "$f" ]; then
		grep -qx 'Delivered-To: postmaster@example.test' "$f" ||
			t_err "postmaster: no Delivered-To: postmaster@example.test in $f"
		echo "ok: 3. postmaster@example.test reachable from 192.0.2.7 with HELO localhost (queued as $QID3, delivered)"
	fi
	grep "portcullis: ref=[0-9A-Za-z]* qid=$QID3 " "$T/portcullis.log" |
		grep -q 'helo=<localhost> .*to=<postmaster@example\.test> verdict=accept' ||
		t_err "postmaster: no log line qid=$QID3 ... to=<postmaster@example.test> verdict=accept"
fi

# --- 3b. portcullis stopping: the 451 4.3.2 at RCPT, the message in flight kept --
HOLD=$top_srcdir/tests/e2e/smtp-hold.py
python3 "$HOLD" "$PORT" hold "$T/held.ready" "$T/held.go" >"$T/held.txt" 2>&1 &
HELD=$!
t_wait_for '[ -e "$T/held.ready" ]' 15 || t_err "held: no RCPT reached: $(cat "$T/held.txt")"
grep -q "^RCPT 250" "$T/held.txt" || t_err "held: RCPT not accepted: $(cat "$T/held.txt")"
t0=$(t_now_ms)
kill -TERM "$PC_PID"
t_wait_for 'grep -q "stopping: waiting for 1 transaction" "$T/portcullis.log"' 5 ||
	t_err "stopping: no 'stopping: waiting for 1 transaction' after SIGTERM"
python3 "$HOLD" "$PORT" plain >"$T/stopping.txt" 2>&1
if grep -q "^MAIL 250" "$T/stopping.txt" &&
	[ "$(grep -c -E "^RCPT2? 451 4\.3\.2 Filter shutting down, try again later$" "$T/stopping.txt")" = 2 ]; then
	echo "ok: 3b. portcullis stopping: MAIL 250, each RCPT: $(grep "^RCPT " "$T/stopping.txt" | cut -d' ' -f2-)"
else
	t_err "stopping: want MAIL 250 and 451 4.3.2 Filter shutting down at both RCPTs: $(cat "$T/stopping.txt")"
fi
t_grep "milter-reject: RCPT from unknown\[127\.0\.0\.1\]: 451 4\.3\.2 Filter shutting down" "$T/maillog" \
	"stopping: Postfix logs the 451 4.3.2 at RCPT" >/dev/null
touch "$T/held.go"
wait "$HELD"
QIDH=$(sed -n 's/^DOT 250 .*queued as \([0-9A-F]*\).*/\1/p' "$T/held.txt")
if [ -z "$QIDH" ]; then
	t_err "held: the transaction in flight was not queued: $(cat "$T/held.txt")"
else
	echo "ok: 3b. the transaction in flight when the stop began was queued as $QIDH"
	t_grep "qid=$QIDH .*verdict=accept" "$T/portcullis.log" "held: its log line" >/dev/null
fi
t_reap "$PC_PID" 10 "$PC_WRAP" && { [ "$T_RC" = 0 ] || t_err "portcullis: exit status $T_RC after SIGTERM"; }
echo "portcullis stopped $(($(t_now_ms) - t0)) ms after SIGTERM"
[ -e "$SOCK" ] && t_err "portcullis left its socket $SOCK behind"

# --- 4. portcullis down: Postfix defers at MAIL FROM, accepts nothing ---------
before=$(ls "$MAILDIR/new" | wc -l)
smtp down 192.0.2.8 mail.example.net user@example.test
mail_reply=$(grep -A 1 -E '^ *-> MAIL FROM:<sender@example.net>' "$T/down.txt" | tail -n 1)
case $mail_reply in
*"<** 451 4."*) echo "ok: 4. portcullis down: MAIL FROM answered: $mail_reply" ;;
*) t_err "down: MAIL FROM answered '$mail_reply', want 451 4.x.x" ;;
esac
grep -q "queued as" "$T/down.txt" && t_err "down: a message was queued with the milter down"
sleep 1
after=$(ls "$MAILDIR/new" | wc -l)
[ "$after" -eq "$before" ] || t_err "down: the Maildir grew from $before to $after messages"
t_grep "connect to Milter service unix:$SOCK" "$T/maillog" "down: Postfix logs the unreachable milter" >/dev/null
t_grep "milter-reject: MAIL from client-8\.example\.net\[192\.0\.2\.8\]: 451 " "$T/maillog" \
	"down: Postfix logs the 451 at MAIL" >/dev/null

t_sanitizer_clean "$T/portcullis.log" portcullis
t_grep "portcullis stopped" "$T/portcullis.log" >/dev/null
if grep -E "portcullis: (error|warning): " "$T/portcullis.log" | grep -v "running as root" >"$T/warn"; then
	t_err "portcullis logged warnings: $(head -n 3 "$T/warn")"
fi
# Postfix itself must not have complained about the milter while it ran.
if grep -E "warning: .*milter" "$T/maillog" | grep -v -E "No such file|Connection refused|connect to Milter" >"$T/pfwarn"; then
	t_err "Postfix milter warnings: $(head -n 3 "$T/pfwarn")"
fi

t0=$(t_now_ms)
pf_stop
echo "Postfix stopped in $(($(t_now_ms) - t0)) ms"
t_port_busy "$PORT" && t_err "port $PORT still listening after postfix stop"
echo "postfix.sh: $(($(t_now_ms) - START_MS)) ms (setup $SETUP_MS ms)"
t_done
