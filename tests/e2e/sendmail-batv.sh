#!/bin/sh
# tests/e2e/sendmail-batv.sh - BATV through a real Sendmail
#
# The private Sendmail of tests/e2e/sendmail-lib.sh calls portcullis with
# checks = batv, bounce; trusted_networks = 127.0.0.10/32.  Asserts:
#  1. mail from the trusted client 127.0.0.10 is delivered with
#     Return-Path: <prvs=2DDDHHHHHH=user@example.test>: Sendmail applied the
#     milter's change of the envelope sender; the tag is the one the
#     documented format gives (python hmac);
#  2. a bounce (MAIL FROM:<>) from 127.0.0.7 to that tagged address is
#     accepted and delivered to user@example.test (X-Envelope-To: the
#     milter replaced the recipient);
#  3. a forged bounce to the untagged user@example.test: RCPT 250, then
#     550 5.7.1 after the final dot with the ref of a log line
#     verdict=reject symbols=batv.missing; nothing delivered.
# Skips (77) without the private Sendmail, swaks, python3 or root.

: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/sendmail-lib.sh"

sm_need
t_need python3
t_init
START_MS=$(t_now_ms)
sm_init

KEY=sendmail-secret-0123456789
printf '3 %s\n' "$KEY" >"$PC/batv.keys"
chmod 600 "$PC/batv.keys"
sm_conf "$PC/portcullis.conf" "trusted_networks = 127.0.0.10/32" "checks = batv, bounce" \
	"batv.domains = example.test" "batv.key_file = $PC/batv.keys" \
	"bounce.relays = mx.example.test" "bounce.domains = example.test"
t_start "$PC/portcullis.conf" "$T/portcullis.log"
sm_start

# --- 1. signing -----------------------------------------------------------------
sm_smtp signed 127.0.0.10 pc.example.test user@example.test friend@example.test
[ -n "$(sm_queue_id signed)" ] || fail "signed: not accepted: $(grep -E '^ *<' "$T/signed.txt" | tail -n 3)"
FILE=$(sm_delivered signed) || fail "signed: not delivered"
TAGGED=$(sed -n 's/^Return-Path: <\(prvs=[^>]*\)>$/\1/p' "$FILE")
WANT=$(python3 - "$KEY" <<'EOF'
import hmac, hashlib, sys, time
ddd = "%03d" % ((int(time.time()) // 86400 + 7) % 1000)
h = hmac.new(sys.argv[1].encode(), ("3" + ddd + "user@example.test").encode(), hashlib.sha1).hexdigest()[:6]
print("prvs=3%s%s=user@example.test" % (ddd, h))
EOF
)
if [ "$TAGGED" = "$WANT" ]; then
	pass "1: delivered with Return-Path: <$TAGGED>"
else
	t_err "1: Return-Path is '$(grep '^Return-Path:' "$FILE")', want <$WANT>"
fi

# --- 2. the bounce to the tag: accepted, delivered untagged ---------------------------
sm_smtp genuine 127.0.0.7 mx.elsewhere.example '<>' "$WANT" \
	--header "From: MAILER-DAEMON@mx.elsewhere.example" --header "Subject: Undelivered Mail Returned to Sender"
if [ -z "$(sm_queue_id genuine)" ]; then
	t_err "2: the bounce to $WANT was not accepted: $(grep -E '^ *<' "$T/genuine.txt" | tail -n 2)"
elif FILE=$(sm_delivered genuine); then
	grep -qx "X-Envelope-To: user@example.test" "$FILE" &&
		pass "2: bounce to $WANT delivered to user@example.test" ||
		t_err "2: bounce delivered to '$(grep X-Envelope-To "$FILE")', want user@example.test"
fi

# --- 3. a forged bounce: refused after the final dot ----------------------------------
sm_smtp forged 127.0.0.7 mx.elsewhere.example '<>' user@example.test \
	--header "From: MAILER-DAEMON@mx.elsewhere.example" --header "Subject: Undelivered Mail Returned to Sender"
case $(mta_reply forged 'RCPT TO') in *"<- "*250*) ;; *) t_err "3: RCPT not accepted: $(mta_reply forged 'RCPT TO')" ;; esac
if mta_refused forged '\.$' 550 5.7.1 "Bounce not accepted: <user@example.test> carries no BATV tag, so this answers mail we did not send"; then
	case $LINE in
	*"verdict=reject"*batv.missing*) pass "3: forged bounce refused after the dot (ref $REF)" ;;
	*) t_err "3: log line of $REF: $LINE" ;;
	esac
fi
grep -l -x "X-Test-Id: forged" "$MAILDIR"/msg.* >/dev/null 2>&1 && t_err "3: the forged bounce was delivered"

t_sanitizer_clean "$T/portcullis.log"
echo "sendmail-batv: $(($(t_now_ms) - START_MS)) ms"
t_done
