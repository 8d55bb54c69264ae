#!/bin/sh
# tests/e2e/sendmail.sh - portcullis behind a real Sendmail on the loopback
#
# A private Sendmail 8.17 daemon (Debian's sendmail-bin unpacked by
# contrib/bootstrap.sh, own .cf built with m4 from the INPUT_MAIL_FILTER
# line of contrib/sendmail/portcullis.mc, queue and files under a temp
# folder, daemon on 127.0.0.1:FREEPORT, a mailer that writes each message
# for example.test into a folder) calls portcullis over a unix socket.
# swaks plays the clients from loopback addresses (127.0.0.x);
# trusted_networks is empty, so they are checked.  Asserts:
#  1. a rejected HELO (bare IP), sender (access.sender) and recipient
#     (access.recipient): "550 5.x.x <rcpt>... TEXT (ref R); contact
#     postmaster@example.test" at RCPT, and R is the ref of portcullis' log
#     line for that client, with the queue id Sendmail sent at MAIL
#     (qid=), refused=<rcpt>:reject:SYMBOL; nothing accepted;
#  2. a good message is accepted ("250 2.0.0 QID Message accepted for
#     delivery"), delivered without an X-Portcullis header, and the log line
#     has qid=QID verdict=accept; a message with a non-FQDN HELO
#     (helo.non_fqdn = monitor) is delivered with "X-Portcullis-Monitor:
#     helo.non_fqdn (ref R)" and R is the ref of the log line with its qid;
#  3. postmaster@example.test is reachable from a client refused by
#     access.client (whose RCPT to another address gets 550);
#  4. "sendmail -bs" (SMTP on a pipe, no client address, driven lock-step
#     by swaks --pipe) with HELO localhost: accepted and delivered, logged
#     as client=localhost[unknown] with its qid, not refused as a remote
#     client;
#  5. with portcullis stopped, F=T gives "451 4.3.2" at MAIL FROM and
#     nothing is accepted.
# Skips (77) without the private Sendmail (contrib/bootstrap.sh deps), swaks
# or root.  Prints the elapsed time.  Setup: tests/e2e/sendmail-lib.sh.

: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/sendmail-lib.sh"

sm_need
t_init
START_MS=$(t_now_ms)
sm_init

# --- portcullis ----------------------------------------------------------------
echo "127.0.0.66 REJECT listed by the e2e test" >"$PC/client.cidr"
echo "spam@example.net REJECT listed by the e2e test" >"$PC/sender"
echo "blocked@example.test REJECT listed by the e2e test" >"$PC/recipient"
# header_rules (a rule no test message matches) makes Sendmail send the
# headers, negotiated without replies (SMFIP_NR_HDR, SMFIP_NR_EOH): the good
# messages below are delivered through that path.
echo "/^Subject: .*never-sent-by-this-test/ REJECT not expected" >"$PC/header.rules"
sm_conf "$PC/portcullis.conf" "helo.non_fqdn = monitor" \
	"checks = whitelist, access, helo, envelope, header_rules" \
	"header_rules.file = $PC/header.rules" \
	"access.client = cidr:$PC/client.cidr" "access.sender = texthash:$PC/sender" \
	"access.recipient = texthash:$PC/recipient"
t_start "$PC/portcullis.conf" "$T/portcullis.log"
PC_PID=$T_PID PC_WRAP=$T_WRAP

# --- Sendmail (tests/e2e/sendmail-lib.sh) ----------------------------------------
sm_start
SETUP_MS=$(($(t_now_ms) - START_MS))

# refused NAME CLIENT HELO FROM RCPT CODE XCODE TEXT SYMBOL: one session;
# RCPT gets the reject with a ref whose log line names the client, HELO,
# sender, Sendmail's queue id and refused=<RCPT>:reject:SYMBOL.
refused()
{
	_rf_n=$1 _rf_c=$2 _rf_h=$3 _rf_f=$4 _rf_r=$5
	sm_smtp "$_rf_n" "$_rf_c" "$_rf_h" "$_rf_f" "$_rf_r"
	mta_refused "$_rf_n" "RCPT TO:<$_rf_r>" "$6" "$7" "$8" || return 1
	echo "$LINE" | grep -q -E "^.*portcullis: ref=$REF qid=[0-9A-Za-z]{8,} " ||
		t_err "$_rf_n: log line has no qid (Sendmail sends {i} at MAIL): $LINE"
	echo "$LINE" | grep -q -F "[$_rf_c] helo=<$_rf_h> from=<$_rf_f> " ||
		t_err "$_rf_n: log line has the wrong client/helo/from: $LINE"
	echo "$LINE" | grep -q -F "refused=<$_rf_r>:reject:$9 verdict=reject" ||
		t_err "$_rf_n: log line lacks refused=<$_rf_r>:reject:$9 verdict=reject: $LINE"
	grep -q "Message accepted" "$T/$_rf_n.txt" && t_err "$_rf_n: a message was accepted"
	t_grep "<<< RCPT TO:<$_rf_r>" "$T/sendmail-trace.log" "$_rf_n: RCPT in Sendmail's trace" >/dev/null
	echo "ok: $_rf_n refused: $(mta_reply "$_rf_n" "RCPT TO:<$_rf_r>" | sed 's/^ *<\*\* *//')"
}

# accepted NAME CLIENT HELO RCPT: accepted and delivered; $FILE is the
# delivered message, $QID its queue id.
accepted()
{
	FILE= QID=
	sm_smtp "$1" "$2" "$3" sender@example.net "$4"
	QID=$(sm_queue_id "$1")
	if [ -z "$QID" ]; then
		t_err "$1: not accepted: $(grep -E '^ *<' "$T/$1.txt" | tail -n 3)"
		return 1
	fi
	FILE=$(sm_delivered "$1") || return 1
	grep -qx "X-Envelope-To: $4" "$FILE" || t_err "$1: not delivered to $4: $(head -n 1 "$FILE")"
}

# --- 1. HELO, sender and recipient refused at RCPT, ref and qid in the log ----
refused helo 127.0.0.7 192.0.2.1 sender@example.net user@example.test \
	550 5.5.2 "HELO 192.0.2.1 is an IP address; use [192.0.2.1] or your host name" helo.bare_ip
refused sender 127.0.0.8 mail.example.net spam@example.net user@example.test \
	550 5.7.1 "Sender address <spam@example.net> rejected: listed by the e2e test" access.sender
refused recipient 127.0.0.8 mail.example.net sender@example.net blocked@example.test \
	550 5.7.1 "Recipient address <blocked@example.test> rejected: listed by the e2e test" \
	access.recipient

# --- 2. good messages are delivered with the headers portcullis adds ----------
if accepted good 127.0.0.8 mail.example.net user@example.test; then
	grep -qi '^X-Portcullis' "$FILE" && t_err "good: unexpected header $(grep -i '^X-Portcullis' "$FILE")"
	grep "portcullis: ref=[0-9A-Za-z]* qid=$QID " "$T/portcullis.log" |
		grep -q -F '[127.0.0.8] helo=<mail.example.net> from=<sender@example.net> to=<user@example.test> verdict=accept' ||
		t_err "good: no log line 'qid=$QID ... to=<user@example.test> verdict=accept'"
	echo "ok: 2a. good message accepted as $QID and delivered"
fi
if accepted monitor 127.0.0.9 mailhost user@example.test; then
	h=$(grep '^X-Portcullis-Monitor:' "$FILE")
	R=$(echo "$h" | sed -n 's/^X-Portcullis-Monitor: helo\.non_fqdn (ref \([0-9A-Za-z]\{10\}\))$/\1/p')
	if [ -z "$R" ]; then
		t_err "monitor: want 'X-Portcullis-Monitor: helo.non_fqdn (ref R)' in the delivered mail, got '$h'"
	else
		log_line "$R" | grep -q "qid=$QID .*helo=<mailhost> .*verdict=accept .*monitor=helo\.non_fqdn" ||
			t_err "monitor: log line of ref $R lacks qid=$QID helo=<mailhost> verdict=accept monitor=helo.non_fqdn: '$(log_line "$R")'"
		echo "ok: 2b. non-FQDN HELO: delivered with '$h', same ref and qid $QID in the log"
	fi
fi

# --- 3. postmaster@ is reachable from a refused client -----------------------
refused client 127.0.0.66 mail.example.net sender@example.net user@example.test \
	550 5.7.1 "Client host 127.0.0.66 rejected: listed by the e2e test" access.client
if accepted postmaster 127.0.0.66 mail.example.net postmaster@example.test; then
	grep "portcullis: ref=[0-9A-Za-z]* qid=$QID " "$T/portcullis.log" |
		grep -q '\[127\.0\.0\.66\] .*to=<postmaster@example\.test> verdict=accept' ||
		t_err "postmaster: no log line qid=$QID ... to=<postmaster@example.test> verdict=accept"
	echo "ok: 3. postmaster@example.test reachable from the refused 127.0.0.66 (accepted as $QID, delivered)"
fi

# --- 4. sendmail -bs: no client address, a local submission ------------------
sm_bs bs localhost sender@example.net user@example.test
t_grep '^ *<- *250[- ]mx\.example\.test Hello ' "$T/bs.txt" "bs: the -bs session's EHLO reply" >/dev/null
QID=$(sm_queue_id bs)
if [ -z "$QID" ]; then
	t_err "bs: sendmail -bs with HELO localhost not accepted; RCPT answered: $(mta_reply bs 'RCPT TO:')"
elif FILE=$(sm_delivered bs); then
	l=$(grep "portcullis: ref=[0-9A-Za-z]* qid=$QID " "$T/portcullis.log")
	echo "$l" | grep -q -F 'client=localhost[unknown] helo=<localhost> from=<sender@example.net> to=<user@example.test> verdict=accept' ||
		t_err "bs: log line of qid $QID: want client=localhost[unknown] helo=<localhost> ... verdict=accept: '$l'"
	echo "ok: 4. sendmail -bs with HELO localhost: accepted as $QID and delivered"
fi

# --- 5. portcullis down: F=T defers at MAIL FROM, accepts nothing -------------
kill -TERM "$PC_PID"
t_reap "$PC_PID" 10 "$PC_WRAP" && { [ "$T_RC" = 0 ] || t_err "portcullis: exit status $T_RC after SIGTERM"; }
[ -e "$SOCK" ] && t_err "portcullis left its socket $SOCK behind"
before=$(find "$MAILDIR" -type f | wc -l)
sm_smtp down 127.0.0.8 mail.example.net sender@example.net user@example.test
reply=$(mta_reply down 'MAIL FROM:<sender@example.net>')
case $reply in
*"<** 451 4.3.2 "*) echo "ok: 5. portcullis down: MAIL FROM answered: $reply" ;;
*) t_err "down: MAIL FROM answered '$reply', want 451 4.3.2" ;;
esac
grep -q "Message accepted" "$T/down.txt" && t_err "down: a message was accepted with the milter down"
after=$(find "$MAILDIR" -type f | wc -l)
[ "$after" -eq "$before" ] || t_err "down: the mail folder grew from $before to $after messages"

t_sanitizer_clean "$T/portcullis.log" portcullis
t_grep "portcullis stopped" "$T/portcullis.log" >/dev/null
if grep -E "portcullis: (error|warning): " "$T/portcullis.log" | grep -v "running as root" >"$T/warn"; then
	t_err "portcullis logged warnings: $(head -n 3 "$T/warn")"
fi

sm_stop
t_port_busy "$PORT" && t_err "port $PORT still listening after Sendmail stopped"
echo "sendmail.sh: $(($(t_now_ms) - START_MS)) ms (setup $SETUP_MS ms)"
t_done
