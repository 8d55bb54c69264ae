#!/bin/sh
# tests/stop.sh - SIGTERM stops the daemon at once, without losing the
# transaction in flight
#
# libmilter's accept loop looks at its stop flag only every 5 s; portcullis
# wakes it (milter.c).  With a raw milter client (perl) on the unix socket:
#  1. an idle daemon, started 1 s ago (the middle of libmilter's 5 s poll),
#     stops on SIGTERM with status 0, its socket and pidfile removed and
#     "portcullis stopped" logged; the time is printed and must stay under
#     2 s (it was up to 5 s: the bound tells the fix from the old
#     behaviour, it is not a performance figure);
#  2. an MTA that offers no reply to connect, HELO and MAIL (milter
#     protocol 6 with every step flag, as Postfix >= 2.6 and Sendmail >=
#     8.14 offer): the filter takes SMFIP_NR_CONN, NR_HELO and NR_MAIL; a
#     transaction in flight (MAIL and RCPT sent) when SIGTERM comes; a new
#     connection gets no reply to connect, HELO and MAIL and 451 4.3.2
#     "Filter shutting down" at each of its two RCPTs, and so does a new
#     MAIL on another connection opened before the stop; the transaction in
#     flight is finished by its client (end of message answered with
#     accept, its log line says verdict=accept), and only then does the
#     daemon exit, with status 0, its socket removed - without waiting for
#     the refused transaction, whose client still holds its connection open
#     (it opened no engine transaction: the stop would wait 20 s for one);
#     neither refused transaction has a log line;
#  3. an older MTA (protocol 4: no SMFIP_SKIP, no no-reply steps): no
#     SMFIP_NR_CONN/HELO/MAIL negotiated and, as before, a new connection
#     gets a temporary failure at connect and a new MAIL on another open
#     connection 451 4.3.2 at MAIL, while the transaction in flight
#     finishes as in 2.
# Skips (77) without perl.

: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
. "$top_srcdir/tests/lib.sh"

t_need perl timeout
t_init

CLIENT=$top_srcdir/tests/rawclient.pl

hex() { printf '%s' "$1" | od -An -tx1 -v | tr -d ' \n'; }
# Negotiation: version 6, all actions, every step flag (SMFIP_SKIP and the
# SMFIP_NR_* ones included), as Postfix and Sendmail offer; and an older
# MTA: Postfix's milter_protocol = 4 (version 4, SMFIP_NOCONNECT ..
# SMFIP_NODATA, no SKIP, no no-reply steps) with the version 2 actions.
# Then a connect from 192.0.2.9 and a HELO.
OPTNEG6="send O 00000006000001ff001fffff"
OPTNEG4="send O 000000040000003f0000037f"
CONN="send C $(hex "client.example.net")00340019$(hex "192.0.2.9")00"
HELO="send H $(hex "mail.example.net")00"
# SMFIR_REPLYCODE data: "451 4.3.2 Filter shutting down, try again later"
STOPHEX="$(hex "451 4.3.2 Filter shutting down, try again later")"
NR_ENV=$((0x1000 | 0x2000 | 0x4000)) # SMFIP_NR_CONN | NR_HELO | NR_MAIL

# nr_env OUT: the SMFIP_NR_CONN/HELO/MAIL bits of the protocol flags the
# filter asked for in its negotiation reply ("O O VERSION ACTIONS FLAGS...")
nr_env() {
	p=$(sed -n 's/^O O ................\(........\).*/\1/p' "$1")
	[ -n "$p" ] || {
		echo none
		return
	}
	echo $((0x$p & NR_ENV))
}

CONF=$T/portcullis.conf
t_conf "$CONF" "pidfile = $T/pid" "checks = helo"

# --- 1. idle daemon ----------------------------------------------------------------
t_start "$CONF" "$T/1.log"
PID=$T_PID WRAP=$T_WRAP
sleep 1
t0=$(t_now_ms)
kill -TERM "$PID"
t_reap "$PID" 10 "$WRAP"
ms=$(($(t_now_ms) - t0))
[ "$T_RC" = 0 ] || t_err "idle stop: exit status $T_RC"
[ -e "$T/sock" ] && t_err "idle stop: the socket is still there"
[ -e "$T/pid" ] && t_err "idle stop: the pidfile is still there"
t_grep "portcullis stopped" "$T/1.log" "idle stop"
echo "idle daemon: stopped $ms ms after SIGTERM"
[ "$ms" -lt 2000 ] || t_err "idle stop took $ms ms (libmilter alone: up to 5000 ms)"

# inflight_script NEGOTIATION NAME: $T/NAME.script, a transaction that
# waits for $T/NAME.go before its end of message (touches $T/NAME.ready)
inflight_script()
{
	cat >"$T/$2.script" <<EOF
$1
$CONN
$HELO
send M $(hex "<a@example.net>")00
send R $(hex "<b@example.test>")00
touch $T/$2.ready
wait $T/$2.go
send E
EOF
}

# --- 2. a transaction in flight; an MTA with no reply to connect, HELO, MAIL ---------
t_start "$CONF" "$T/2.log"
PID=$T_PID WRAP=$T_WRAP
inflight_script "$OPTNEG6" a
cat >"$T/b.script" <<EOF
$OPTNEG6
$CONN
$HELO
touch $T/b.ready
wait $T/b.go
send M $(hex "<c@example.net>")00
send R $(hex "<d@example.test>")00
send R $(hex "<e@example.test>")00
touch $T/b.done
wait $T/b.end
EOF
perl "$CLIENT" "$T/sock" "$T/a.script" >"$T/a.out" 2>&1 &
A=$!
perl "$CLIENT" "$T/sock" "$T/b.script" >"$T/b.out" 2>&1 &
B=$!
t_wait_for '[ -e "$T/a.ready" ] && [ -e "$T/b.ready" ]' 10 ||
	t_err "the clients did not get going: $(cat "$T/a.out" "$T/b.out")"
[ "$(nr_env "$T/a.out")" = "$NR_ENV" ] ||
	t_err "protocol 6, every flag offered: want SMFIP_NR_CONN, NR_HELO, NR_MAIL negotiated: $(cat "$T/a.out")"
grep -q "^C -" "$T/a.out" && grep -q "^H -" "$T/a.out" && grep -q "^M -" "$T/a.out" &&
	grep -q "^R c" "$T/a.out" ||
	t_err "in flight: want no reply to connect, HELO, MAIL and continue at RCPT: $(cat "$T/a.out")"
kill -TERM "$PID"
t_wait_for 'grep -q "stopping: waiting for 1 transaction" "$T/2.log"' 5 ||
	t_err "in flight: no 'stopping: waiting for 1 transaction' after SIGTERM"
# a new connection while the daemon stops: 451 4.3.2 at each RCPT
cat >"$T/c.script" <<EOF
$OPTNEG6
$CONN
$HELO
send M $(hex "<f@example.net>")00
send R $(hex "<g@example.test>")00
send R $(hex "<h@example.test>")00
EOF
perl "$CLIENT" "$T/sock" "$T/c.script" >"$T/c.out" 2>&1
grep -q "^C -" "$T/c.out" && grep -q "^H -" "$T/c.out" && grep -q "^M -" "$T/c.out" &&
	[ "$(grep -c "^R y $STOPHEX" "$T/c.out")" = 2 ] && grep -q DONE "$T/c.out" ||
	t_err "a new connection while stopping: want no reply to connect, HELO, MAIL and 451 4.3.2 Filter shutting down at both RCPTs: $(cat "$T/c.out")"
# a new MAIL on a connection opened before the stop: the same
touch "$T/b.go"
t_wait_for '[ -e "$T/b.done" ]' 10 || t_err "the second client did not finish: $(cat "$T/b.out")"
grep -q "^M -" "$T/b.out" && [ "$(grep -c "^R y $STOPHEX" "$T/b.out")" = 2 ] ||
	t_err "a new MAIL while stopping: want no reply to MAIL and 451 4.3.2 Filter shutting down at both RCPTs: $(cat "$T/b.out")"
t_alive "$PID" || t_err "the daemon exited with a transaction in flight"
touch "$T/a.go"
wait "$A"
grep -q "^E c " "$T/a.out" && grep -q DONE "$T/a.out" ||
	t_err "the transaction in flight was not accepted at end of message: $(cat "$T/a.out")"
# The client of the refused transaction still holds its connection open.
t0=$(t_now_ms)
t_reap "$PID" 10 "$WRAP"
echo "in flight: the daemon exited $(($(t_now_ms) - t0)) ms after the transaction ended"
[ "$T_RC" = 0 ] || t_err "stop with a transaction in flight: exit status $T_RC"
touch "$T/b.end"
wait "$B"
[ -e "$T/sock" ] && t_err "in flight: the socket is still there after the stop"
t_grep "from=<a@example.net> to=<b@example.test> verdict=accept" "$T/2.log" "in flight"
t_grep "stopping: waiting for 1 transaction" "$T/2.log" "in flight"
t_grep "portcullis stopped" "$T/2.log" "in flight"
grep -q "still open" "$T/2.log" &&
	t_err "in flight: the stop waited for a refused transaction: $(grep "still open" "$T/2.log")"
grep -q -e "from=<c@example.net>" -e "from=<f@example.net>" "$T/2.log" &&
	t_err "a transaction refused while stopping has a log line: $(grep -e "from=<c@" -e "from=<f@" "$T/2.log")"

# --- 3. the same with an older MTA (protocol 4, no reply steps) ----------------------
t_start "$CONF" "$T/3.log"
PID=$T_PID WRAP=$T_WRAP
inflight_script "$OPTNEG4" a3
cat >"$T/b3.script" <<EOF
$OPTNEG4
$CONN
$HELO
touch $T/b3.ready
wait $T/b3.go
send M $(hex "<c@example.net>")00
EOF
perl "$CLIENT" "$T/sock" "$T/a3.script" >"$T/a3.out" 2>&1 &
A=$!
perl "$CLIENT" "$T/sock" "$T/b3.script" >"$T/b3.out" 2>&1 &
B=$!
t_wait_for '[ -e "$T/a3.ready" ] && [ -e "$T/b3.ready" ]' 10 ||
	t_err "old MTA: the clients did not get going: $(cat "$T/a3.out" "$T/b3.out")"
[ "$(nr_env "$T/a3.out")" = 0 ] ||
	t_err "protocol 4: want no SMFIP_NR_CONN/HELO/MAIL negotiated: $(cat "$T/a3.out")"
grep -q "^C c" "$T/a3.out" && grep -q "^H c" "$T/a3.out" && grep -q "^M c" "$T/a3.out" ||
	t_err "old MTA: want continue at connect, HELO, MAIL: $(cat "$T/a3.out")"
kill -TERM "$PID"
t_wait_for 'grep -q "stopping: waiting for 1 transaction" "$T/3.log"' 5 ||
	t_err "old MTA: no 'stopping: waiting for 1 transaction' after SIGTERM"
# a new connection while the daemon stops: a temporary failure at connect
printf '%s\n%s\n' "$OPTNEG4" "$CONN" >"$T/c3.script"
perl "$CLIENT" "$T/sock" "$T/c3.script" >"$T/c3.out" 2>&1
grep -q "^C t" "$T/c3.out" ||
	t_err "old MTA: a new connection while stopping: want tempfail at connect: $(cat "$T/c3.out")"
touch "$T/b3.go"
wait "$B"
grep -q "^M y $STOPHEX" "$T/b3.out" ||
	t_err "old MTA: a new MAIL while stopping: want 451 4.3.2 Filter shutting down at MAIL: $(cat "$T/b3.out")"
t_alive "$PID" || t_err "old MTA: the daemon exited with a transaction in flight"
touch "$T/a3.go"
wait "$A"
grep -q "^E c " "$T/a3.out" && grep -q DONE "$T/a3.out" ||
	t_err "old MTA: the transaction in flight was not accepted at end of message: $(cat "$T/a3.out")"
t_reap "$PID" 10 "$WRAP"
[ "$T_RC" = 0 ] || t_err "old MTA: stop with a transaction in flight: exit status $T_RC"
[ -e "$T/sock" ] && t_err "old MTA: the socket is still there after the stop"
t_grep "from=<a@example.net> to=<b@example.test> verdict=accept" "$T/3.log" "old MTA"
t_grep "portcullis stopped" "$T/3.log" "old MTA"
t_sanitizer_clean "$T/1.log"
t_sanitizer_clean "$T/2.log"
t_sanitizer_clean "$T/3.log"
t_done
