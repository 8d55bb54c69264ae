#!/bin/sh
# tests/e2e/postfix-greylist.sh - greylisting behind a real Postfix
#
# The private Postfix of tests/e2e/postfix-lib.sh calls portcullis with
# checks = greylist (greylist.pools = no: no DNS here).  A real SMTP client
# (swaks, through XCLIENT as 192.0.2.21) sends a message:
#  1. Postfix answers the RCPT with "451 4.7.1 Greylisted: first attempt,
#     please retry after ... (ref R); contact ..." and queues nothing; ref R
#     is in portcullis' log line (refused=...:defer:greylist.new) and in
#     Postfix's milter-reject line;
#  2. the same client retries too early: 451 again (retried too early);
#  3. the clock moves past greylist.delay (PORTCULLIS_CLOCK_FILE: no
#     sleeping); a neighbour 192.0.2.22 is still deferred (its name
#     client-22.example.net looks dynamic, so clients are keyed by full
#     address), the client itself retries: 250 queued, delivered into the
#     Maildir with "X-Greylist: delayed N seconds by portcullis-VERSION at
#     HOST; DATE";
#  4. a second message of the same triplet is delivered at once, without
#     X-Greylist;
#  5. portcullis logged the pass with the same delay, and portcullisctl
#     report counts the deferrals, the pass and its delay.
# Skips (77) without postfix or swaks.  Prints the elapsed time.

: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/postfix-lib.sh"

pf_need
t_init
START_MS=$(t_now_ms)
pf_init

NOW=$(date +%s)
PORTCULLIS_CLOCK_FILE=$T/clock
export PORTCULLIS_CLOCK_FILE
echo "$NOW" >"$PORTCULLIS_CLOCK_FILE"

pf_conf "$PC/portcullis.conf" "checks = greylist" "greylist.pools = no" \
	"greylist.delay = 10m" "hostname = mx.example.test"
t_start "$PC/portcullis.conf" "$T/portcullis.log"
PC_PID=$T_PID PC_WRAP=$T_WRAP
pf_start

smtp()
{
	pf_smtp "$1" "$2" mail.sender.example sender@sender.example user@example.test
}

# --- 1. first attempt: 451 4.7.1 with the retry time, nothing queued --------
smtp first 192.0.2.21
if mta_refused first 'RCPT TO:<user@example\.test>' 451 4.7.1 'UTC (in 600 seconds)'; then
	mta_reply first 'RCPT TO:' | grep -q 'Greylisted: first attempt, please retry after [-0-9]* [0-9:]* UTC' ||
		t_err "first attempt: reply lacks the retry time: $(mta_reply first 'RCPT TO:')"
	echo "$LINE" | grep -q 'refused=<user@example\.test>:defer:greylist\.new' ||
		t_err "first attempt: log line of ref $REF lacks refused=<user@example.test>:defer:greylist.new: $LINE"
	t_wait_for 'grep -q "milter-reject: RCPT from .*451 4.7.1 Greylisted.*(ref $REF)" "$T/maillog"' 5 ||
		t_err "first attempt: Postfix's maillog has no milter-reject with ref $REF"
fi
grep -q 'queued as' "$T/first.txt" && t_err "first attempt: a message was queued"

# --- 2. too early ------------------------------------------------------------
echo $((NOW + 120)) >"$PORTCULLIS_CLOCK_FILE"
smtp early 192.0.2.21
t_grep '^ *<\*\* *451 4\.7\.1 Greylisted: retried too early, please retry after .* \(in 480 seconds\)' \
	"$T/early.txt" "early retry: 451 with the time left" >/dev/null

# --- 3. after the delay ----------------------------------------------------------
echo $((NOW + 700)) >"$PORTCULLIS_CLOCK_FILE"
smtp neighbour 192.0.2.22
t_grep '^ *<\*\* *451 4\.7\.1 Greylisted: first attempt' "$T/neighbour.txt" \
	"a dynamic-looking neighbour is another client: 451" >/dev/null
smtp retry 192.0.2.21
QID=$(queue_id retry)
if [ -z "$QID" ]; then
	t_err "retry: not queued: $(grep -E '^ *<' "$T/retry.txt" | tail -n 3)"
elif f=$(delivered retry "$QID"); then
	h=$(grep '^X-Greylist: ' "$f")
	echo "$h" | grep -q -E '^X-Greylist: delayed 700 seconds by portcullis-[^ ]+ at mx\.example\.test; [A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9:]{8} \+0000$' ||
		t_err "retry: X-Greylist is not 'delayed 700 seconds by portcullis-V at mx.example.test; DATE': '$h'"
	echo "ok: retried message $QID delivered with $h"
fi

# --- 4. the passed triplet: at once, no X-Greylist --------------------------
smtp again 192.0.2.21
QID=$(queue_id again)
if [ -z "$QID" ]; then
	t_err "again: not queued: $(grep -E '^ *<' "$T/again.txt" | tail -n 3)"
elif f=$(delivered again "$QID"); then
	grep -q '^X-Greylist:' "$f" && t_err "again: X-Greylist on a message that was not delayed"
fi

# --- 5. the pass in the log, and portcullisctl report on it ---------------------
t_grep 'portcullis: greylist: pass ref=[0-9A-Za-z]+ delay=700 to=<user@example\.test>$' \
	"$T/portcullis.log" "the greylist pass line with the X-Greylist delay" >/dev/null
"$PORTCULLISCTL" report --log "$T/portcullis.log" >"$T/report" 2>&1 ||
	t_err "portcullisctl report: $(cat "$T/report")"
for want in '^  deferred recipients +3$' '^  passed after a delay +1$' \
	'^  delay min 700 s, mean 700 s, max 700 s$' '^    greylist\.new +0 +2$' \
	'^    greylist\.early +0 +1$'; do
	t_grep "$want" "$T/report" "report: /$want/" >/dev/null && echo "ok: report: $want"
done

kill -TERM "$PC_PID"
t_reap "$PC_PID" 15 "$PC_WRAP"
if grep -E "portcullis: (error|warning): " "$T/portcullis.log" | grep -v "running as root" >"$T/warn"; then
	t_err "portcullis logged warnings: $(head -n 3 "$T/warn")"
fi
pf_stop
echo "postfix-greylist.sh: $(($(t_now_ms) - START_MS)) ms"
t_done
