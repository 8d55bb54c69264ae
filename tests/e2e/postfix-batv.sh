#!/bin/sh
# tests/e2e/postfix-batv.sh - BATV and the bounce check between three real
# private Postfix instances
#
#   A  mx.example.test (ours) on $PORT, portcullis with checks = batv,
#      bounce; trusted_networks 192.0.2.0/24 (clients given by XCLIENT);
#      delivers example.test and other.test into one Maildir, relays
#      remote.test to B and verify.test to C
#   B  mx.remote.test on $PB: accepts remote.test, then fails delivery
#      (error transport) and bounces to the envelope sender through A
#   C  mx.verify.test on $PCV: smtpd_sender_restrictions =
#      reject_unverified_sender, address_verify_sender = <>: a real sender
#      verification callout (MAIL FROM:<>, RCPT TO, QUIT) against A
# Asserts:
#  1. mail from a trusted client leaves A with the sender prvs=2DDDHHHHHH=
#     user@example.test (seen in B's log); the tag is checked by an
#     independent implementation (python hmac) of the documented format;
#  2. B's real bounce to that tagged address is accepted by A and
#     delivered with Delivered-To: user@example.test (tag removed);
#  3. a forged DSN (never sent by us) to user@example.test: RCPT 250, then
#     550 5.7.1 after the final dot naming the missing tag, with the ref;
#  4. a forged tag: 550 5.7.1 "invalid (forged)"; a tag of the old key 1
#     (key rotation: key 2 signs, 1 still verifies) is accepted and
#     delivered untagged; a non-bounce reply to a tagged address too;
#  5. the bounce check (other.test, not in batv.domains): a forged DSN is
#     refused after the dot; a DSN quoting A's Received line is accepted;
#     an auto-reply is only scored; with "portcullisctl bounce mode
#     reject" it is refused, "config" ends that; hostile bounces (10,000
#     quoted Received lines, a DSN inside a DSN, broken MIME) are each
#     answered 550 after the dot and the daemon lives on;
#  6. the SAV trap: while the switch says reject, C verifies
#     user@example.test against A and accepts the client's RCPT (250);
#     A's log shows the callout's transaction from=<> accepted at RCPT;
#  7. the tag of 1 is refused as expired once the daemon's clock
#     (PORTCULLIS_CLOCK_FILE) is 9 days later.
# Skips (77) without postfix, swaks, python3 or root.

: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/postfix-lib.sh"

pf_need
t_need python3 postconf
t_init
START_MS=$(t_now_ms)
pf_init

NEWKEY=new-secret-0123456789abcdef
OLDKEY=old-secret-0123456789abcdef
printf '# test keys\n2 %s\n1 %s\n' "$NEWKEY" "$OLDKEY" >"$PC/batv.keys"
chmod 600 "$PC/batv.keys"
date +%s >"$T/clock"
chmod 644 "$T/clock"
PORTCULLIS_CLOCK_FILE=$T/clock
export PORTCULLIS_CLOCK_FILE

# --- B and C: plain private Postfix instances ---------------------------------
# inst NAME PORT MAIN_CF_LINES [MASTER_CF_LINES]: $T/NAME/{etc,q,data,vmail,maillog}
inst()
{
	_d=$T/$1
	mkdir -p "$_d/etc" "$_d/q" "$_d/data" "$_d/vmail"
	chown postfix "$_d/data"
	chown 65534:65534 "$_d/vmail"
	cat >"$_d/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $_d/q
data_directory = $_d/data
maillog_file = $_d/maillog
maillog_file_prefixes = $T
myhostname = mx.$1.test
mydomain = $1.test
myorigin = $1.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtp_dns_support_level = disabled
smtpd_peername_lookup = no
alias_maps =
alias_database =
local_recipient_maps =
default_transport = error:no relaying in this test
biff = no
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
daemon_timeout = 60s
virtual_mailbox_base = $_d/vmail
virtual_mailbox_maps = static:catchall/
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
virtual_minimum_uid = 1
$3
EOF
	cat >"$_d/etc/master.cf" <<EOF
127.0.0.1:$2 inet n - n - - smtpd
$(pf_services)
${4:-}
EOF
	t_port_busy "$2" && fail "port $2 is taken"
	timeout 30 "$POSTFIX" -c "$_d/etc" check >"$T/$1-check.out" 2>&1 ||
		fail "postfix $1 check: $(cat "$T/$1-check.out")"
	t_at_exit "inst_stop $1"
	timeout 30 "$POSTFIX" -c "$_d/etc" start >"$T/$1-start.out" 2>&1 ||
		fail "postfix $1 start: $(cat "$T/$1-start.out")"
	_ip=$2
	t_wait_for 't_port_busy "$_ip"' 15 || fail "Postfix $1 does not listen on $2"
}

inst_stop()
{
	_mp=$(sed -n '1s/^[[:space:]]*\([0-9][0-9]*\).*/\1/p' "$T/$1/q/pid/master.pid" 2>/dev/null)
	[ -n "$_mp" ] || return 0
	timeout 20 "$POSTFIX" -c "$T/$1/etc" stop >/dev/null 2>&1
	t_wait_exit "$_mp" 10 || kill -KILL "$_mp" 2>/dev/null
}

PB=$(t_free_port)
PCV=$(t_free_port)
while [ "$PCV" = "$PB" ] || [ "$PB" = "$PORT" ] || [ "$PCV" = "$PORT" ]; do PCV=$(t_free_port); done

# --- A: portcullis and the Postfix of tests/e2e/postfix-lib.sh ----------------------
pf_conf "$PC/portcullis.conf" "trusted_networks = 192.0.2.0/24" "checks = batv, bounce" \
	"batv.domains = example.test" "batv.key_file = $PC/batv.keys" \
	"bounce.relays = mx.example.test" "bounce.domains = example.test"
t_start "$PC/portcullis.conf" "$T/portcullis.log"
pf_start
postconf -c "$PF" -e "mynetworks = 127.0.0.0/8 192.0.2.0/24" \
	"virtual_mailbox_domains = example.test other.test" \
	"transport_maps = inline:{ remote.test=smtp:[127.0.0.1]:$PB, verify.test=smtp:[127.0.0.1]:$PCV }" ||
	fail "postconf A"
timeout 30 "$POSTFIX" -c "$PF" reload >/dev/null 2>&1 || fail "postfix A reload"

# B accepts at RCPT and fails at delivery: a pipe to /bin/false bounces
inst remote "$PB" "relay_domains = remote.test
virtual_mailbox_domains =
transport_maps = inline:{ remote.test=fail, example.test=smtp:[127.0.0.1]:$PORT }" \
	"fail unix - n n - - pipe user=nobody argv=/bin/false"
inst verify "$PCV" "virtual_mailbox_domains = verify.test
smtpd_sender_restrictions = reject_unverified_sender
unverified_sender_reject_code = 550
address_verify_sender = <>
transport_maps = inline:{ example.test=smtp:[127.0.0.1]:$PORT }"
sleep 1 # A's reload

# python: the documented tag format, independently (lib/batv.h)
tag() { # tag KEYNUM SECRET DAY_OFFSET ADDR: prvs= tag expiring today+DAY_OFFSET
	python3 - "$@" "$(cat "$T/clock")" <<'EOF'
import hmac, hashlib, sys
k, secret, off, addr, now = sys.argv[1:6]
ddd = "%03d" % ((int(now) // 86400 + int(off)) % 1000)
h = hmac.new(secret.encode(), (k + ddd + addr).encode(), hashlib.sha1).hexdigest()[:6]
print("prvs=%s%s%s=%s" % (k, ddd, h, addr))
EOF
}

# dsn NAME RCPT QUOTED_RECEIVED: a RFC 3464 bounce from MAILER-DAEMON
dsn()
{
	cat >"$T/$1.eml" <<EOF
From: MAILER-DAEMON@mx.elsewhere.example
To: $2
Subject: Undelivered Mail Returned to Sender
X-Test-Id: $1
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

Your message could not be delivered.

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.elsewhere.example
Final-Recipient: rfc822; nobody@elsewhere.example
Action: failed
Status: 5.1.1

--B
Content-Type: text/rfc822-headers

$3
Message-ID: <$1.123@spam.example>
From: $2
Subject: buy now

--B--
EOF
}

send_bounce() { # NAME RCPT [FROM]: the message $T/NAME.eml from an untrusted client
	pf_smtp "$1" 198.51.100.7 mx.elsewhere.example "${3:-<>}" "$2" --data "@$T/$1.eml"
}

accepted() { # accepted NAME: RCPT and the final dot got 250
	case $(pf_reply "$1" 'RCPT TO') in *"<- "*250*) ;; *) t_err "$1: RCPT not accepted: $(pf_reply "$1" 'RCPT TO')" ;; esac
	grep -q 'queued as' "$T/$1.txt" || t_err "$1: not queued: $(grep -E '^ *<' "$T/$1.txt" | tail -n 2)"
}

refused_at_dot() { # refused_at_dot NAME TEXT: RCPT 250, then 550 5.7.1 TEXT after the dot
	case $(pf_reply "$1" 'RCPT TO') in *"<- "*250*) ;; *) t_err "$1: RCPT not accepted (a <> must never be refused before DATA): $(pf_reply "$1" 'RCPT TO')" ;; esac
	if mta_refused "$1" '\.$' 550 5.7.1 "$2"; then
		case $LINE in *verdict=reject*) ;; *) t_err "$1: log line of $REF has no verdict=reject: $LINE" ;; esac
	fi
}

# in_maildir ID: the delivered file whose (quoted) headers hold X-Test-Id: ID
in_maildir()
{
	_id=$1
	t_wait_for 'grep -l -x "X-Test-Id: $_id" "$MAILDIR"/new/* >/dev/null 2>&1' 20 || return 1
	grep -l -x "X-Test-Id: $_id" "$MAILDIR"/new/* | head -n 1
}

# --- 1. signing ---------------------------------------------------------------
pf_smtp out 192.0.2.10 client.example.test user@example.test nobody@remote.test
QID=$(queue_id out)
[ -n "$QID" ] || fail "out: not queued: $(grep -E '^ *<' "$T/out.txt" | tail -n 3)"
t_wait_for 'grep -q "from=<prvs=" "$T/remote/maillog"' 20 ||
	fail "B never got mail with a prvs= sender: $(grep -E 'from=|status=' "$T/remote/maillog" "$T/maillog" | tail -n 5)"
TAGGED=$(sed -n 's/.*from=<\(prvs=[^>]*\)>.*/\1/p' "$T/remote/maillog" | head -n 1)
case $TAGGED in
prvs=2[0-9][0-9][0-9][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]=user@example.test) pass "1: the mail left with $TAGGED" ;;
*) t_err "1: sender seen at B is '$TAGGED', want prvs=2DDDHHHHHH=user@example.test" ;;
esac
WANT=$(tag 2 "$NEWKEY" 7 user@example.test)
[ "$TAGGED" = "$WANT" ] || t_err "1: tag $TAGGED differs from the documented format's $WANT"

# --- 2. the real bounce from B comes back and is delivered untagged ----------------
f=$(in_maildir out) || t_err "2: B's bounce was not delivered: $(grep -E 'status=|reject' "$T/maillog" | tail -n 4)"
if [ -n "$f" ]; then
	grep -q -x 'Delivered-To: user@example.test' "$f" ||
		t_err "2: the bounce was not delivered to the untagged user@example.test: $(grep -i '^Delivered-To\|^X-Original-To' "$f")"
	grep -q -i '^From: .*MAILER-DAEMON@remote.test' "$f" || t_err "2: delivered mail is not B's bounce"
	pass "2: B's bounce to $TAGGED delivered to user@example.test"
fi
grep -q "from=<> to=<$TAGGED>.*verdict=accept" "$T/portcullis.log" ||
	t_err "2: no portcullis log line from=<> to=<$TAGGED> verdict=accept"

# --- 3. a forged DSN to an untagged address ---------------------------------------
dsn forged user@example.test "Received: from bot.example (bot.example [203.0.113.9]) by mx.victim.example"
send_bounce forged user@example.test
refused_at_dot forged "Bounce not accepted: <user@example.test> carries no BATV tag, so this answers mail we did not send"
case $LINE in *batv.missing*) pass "3: forged DSN refused after the dot (ref $REF)" ;; *) t_err "3: log line has no batv.missing: $LINE" ;; esac

# --- 4. forged tag, old key, reply to a tagged address -------------------------
dsn badtag "prvs=2999abcdef=user@example.test" "Received: by mx.victim.example"
send_bounce badtag "prvs=2999abcdef=user@example.test"
refused_at_dot badtag "Bounce not accepted: <prvs=2999abcdef=user@example.test> has an invalid (forged) BATV tag, so this answers mail we did not send"
OLDTAG=$(tag 1 "$OLDKEY" 5 user@example.test)
dsn oldkey "$OLDTAG" "Received: by mx.victim.example"
send_bounce oldkey "$OLDTAG"
accepted oldkey
f=$(in_maildir oldkey) || t_err "4: the bounce to the old key's tag was not delivered"
[ -n "$f" ] && { grep -q -x 'Delivered-To: user@example.test' "$f" || t_err "4: old-key bounce not delivered untagged"; }
pf_smtp reply 198.51.100.8 mail.friend.example friend@friend.example "$TAGGED"
accepted reply
f=$(in_maildir reply) || t_err "4: the reply to $TAGGED was not delivered"
[ -n "$f" ] && { grep -q -x 'Delivered-To: user@example.test' "$f" || t_err "4: reply not delivered untagged"; }
pass "4: forged tag refused, old key verified, reply delivered"

# --- 5. the bounce check (other.test is not in batv.domains) -----------------------
dsn forged2 user@other.test "Received: from bot.example (bot.example [203.0.113.9]) by mx.victim.example"
send_bounce forged2 user@other.test
refused_at_dot forged2 "Bounce not accepted: it answers a message we did not send (no Received line or Message-ID of ours in it)"
case $LINE in *bounce.unwanted*) ;; *) t_err "5: log line has no bounce.unwanted: $LINE" ;; esac
dsn ours user@other.test "Received: from client.example.test (client-10.example.net [192.0.2.10])
	by mx.example.test (Postfix) with ESMTP id 4AbCdEf; Mon,  7 Dec 2026 01:00:00 +0000 (UTC)"
send_bounce ours user@other.test
accepted ours
cat >"$T/vac.eml" <<EOF
From: someone@elsewhere.example
To: user@other.test
Subject: Out of office: re: buy now
Auto-Submitted: auto-replied
X-Test-Id: vac

I am away.
EOF
send_bounce vac user@other.test
accepted vac
t_wait_for 'grep -q "from=<> to=<user@other.test>.*verdict=accept.*bounce.auto_reply(3)" "$T/portcullis.log"' 5 ||
	t_err "5: the auto-reply was not scored bounce.auto_reply(3)"
"$PORTCULLISCTL" -c "$PC/portcullis.conf" bounce mode reject >"$T/ctl.out" 2>&1 || t_err "5: bounce mode reject: $(cat "$T/ctl.out")"
st=$("$PORTCULLISCTL" -c "$PC/portcullis.conf" bounce status 2>&1)
[ "$st" = "bounce mode: reject (switch set)" ] || t_err "5: bounce status says '$st'"
sed 's/X-Test-Id: vac/X-Test-Id: vac2/' "$T/vac.eml" >"$T/vac2.eml"
send_bounce vac2 user@other.test
refused_at_dot vac2 "Auto-reply not accepted: it answers a message we did not send"
pass "5: bounce check: forged refused, ours and auto-reply accepted, switch refuses auto-replies"

# --- 5b. hostile bounces: answered after the dot, the daemon lives on -----------------
python3 - "$T" <<'PYEOF' || fail "python3 could not write the hostile bounces"
import sys
T = sys.argv[1]
head = ("From: MAILER-DAEMON@mx.elsewhere.example\r\nTo: user@other.test\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\nX-Test-Id: %s\r\nMIME-Version: 1.0\r\n")
rec = "".join("> Received: from h%d (h [203.0.113.%d]) by relay%d.example\r\n" % (i, i % 250, i)
              for i in range(10000))
open(T + "/many.eml", "w").write(head % "many" + "\r\n" + rec)
inner = ("Content-Type: multipart/report; report-type=delivery-status; boundary=\"I\"\r\n\r\n"
         "--I\r\nContent-Type: message/delivery-status\r\n\r\nAction: failed\r\n"
         "--I\r\nContent-Type: message/rfc822\r\n\r\nReceived: by mx.victim.example\r\n\r\nx\r\n--I--\r\n")
open(T + "/nested.eml", "w").write(head % "nested" +
    "Content-Type: multipart/report; report-type=delivery-status; boundary=\"O\"\r\n\r\n"
    "--O\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nMIME-Version: 1.0\r\n" + inner +
    "--O--\r\n")
open(T + "/broken.eml", "w").write(head % "broken" +
    "Content-Type: multipart/report; boundary=\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    "--\r\nContent-Type: text/plain; charset=\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    "!!!!====%%%%\r\n--\r\n--\r\n" + "=" * 5000 + "\r\n")
PYEOF
for h in many nested broken; do
	send_bounce "$h" user@other.test
	refused_at_dot "$h" "Bounce not accepted: it answers a message we did not send (no Received line or Message-ID of ours in it)"
done
t_alive "$T_PID" || fail "5b: portcullis died on a hostile bounce"
pass "5b: 10,000 quoted Received lines, a DSN in a DSN, broken MIME: each answered 550 after the dot"

# --- 6. the SAV trap: a real callout while the switch says reject ---------------------
n=0
while :; do
	n=$((n + 1))
	mta_swaks sav$n user@example.test someone@verify.test --server 127.0.0.1 --port "$PCV" --helo client.example.net --quit-after RCPT
	r=$(mta_reply sav$n 'RCPT TO')
	case $r in *"<- "*250*) break ;; esac
	case $r in *" 45"*) [ $n -lt 8 ] && { sleep 1; continue; } ;; esac
	break
done
case $r in
*"<- "*250*) pass "6: C's sender verification of user@example.test against A passed (RCPT $r)" ;;
*) t_err "6: C refused the sender after its callout to A: $r; A: $(grep 'from=<>' "$T/maillog" | tail -n 3)" ;;
esac
# the callout: accepted at RCPT, ended (RSET/QUIT) before DATA
cl=$(grep "helo=<mx.verify.test> from=<> to=<user@example.test> " "$T/portcullis.log" | head -n 1)
case $cl in
*" verdict=aborted "*) ;;
*) t_err "6: the callout's log line is not 'from=<> to=<user@example.test> verdict=aborted': '$cl'" ;;
esac
"$PORTCULLISCTL" -c "$PC/portcullis.conf" bounce mode config >"$T/ctl.out" 2>&1 || t_err "6: bounce mode config: $(cat "$T/ctl.out")"
st=$("$PORTCULLISCTL" -c "$PC/portcullis.conf" bounce status 2>&1)
[ "$st" = "bounce mode: as configured" ] || t_err "6: bounce status after config says '$st'"

# --- 7. expiry: nine days later the tag of 1 is refused ------------------------------
echo $(($(cat "$T/clock") + 9 * 86400)) >"$T/clock"
dsn late "$TAGGED" "Received: by mx.victim.example"
send_bounce late "$TAGGED"
refused_at_dot late "Bounce not accepted: <$TAGGED> has an expired BATV tag, so this answers mail we did not send"
case $LINE in *batv.expired*) pass "7: expired tag refused (ref $REF)" ;; *) t_err "7: log line has no batv.expired: $LINE" ;; esac

t_sanitizer_clean "$T/portcullis.log"
echo "postfix-batv: $(($(t_now_ms) - START_MS)) ms"
t_done
