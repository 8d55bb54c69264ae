#!/bin/sh
# tests/ratelimit-redis.sh - rate-limit counters shared by two daemons on
# one Redis (issue 14: two MX hosts, one limit)
#
# One private redis-server (unix socket, no persistence), two portcullis
# daemons with store.backend = redis and the same store.redis_prefix,
# checks = ratelimit with "sender 3 msgs 1h", and a raw milter client
# (tests/rawclient.pl).  Two messages from <spammer@example.org> through
# daemon A and one through daemon B are accepted; the fourth, through A,
# gets "451 4.7.1 Rate limit reached: sender spammer@example.org has a rate
# limit of 3 messages per hour (ref R)" -- the counter is shared; another
# sender is not affected; `portcullisctl ratelimit list` on B's
# configuration shows the one counter with count 3; `ratelimit reset` on B
# lets the next message through A at once; 8 simultaneous messages of a
# new sender, 4 through each daemon: exactly 3 accepted.
# Skips (77) without redis-server, redis-cli or perl.

: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
. "$top_srcdir/tests/lib.sh"

t_need redis-server redis-cli perl
t_init
CLIENT=$top_srcdir/tests/rawclient.pl

RD=$T/redis
RSOCK=$RD/redis.sock
mkdir -p "$RD"
timeout -s KILL 300 redis-server --port 0 --unixsocket "$RSOCK" --unixsocketperm 700 \
	--dir "$RD" --save "" --appendonly no --daemonize no >"$T/redis.log" 2>&1 &
T_PIDS="$T_PIDS $!"
t_at_exit 'redis-cli -s "$RSOCK" shutdown nosave >/dev/null 2>&1'
t_wait_for 'redis-cli -s "$RSOCK" ping 2>/dev/null | grep -q PONG' 15 ||
	fail "redis-server did not start: $(cat "$T/redis.log")"

for d in a b; do
	mkdir -p "$T/$d"
	t_conf "$T/$d.conf" "socket = unix:$T/$d/sock" "state_dir = $T/$d" \
		"store.backend = redis" "store.redis = unix:$RSOCK" "store.redis_prefix = mx:" \
		"checks = ratelimit" "ratelimit.rules = sender 3 msgs 1h" "score.tag = 0"
done
t_start "$T/a.conf" "$T/a.log"
t_start "$T/b.conf" "$T/b.log"

hex() { printf '%s' "$1" | od -An -tx1 -v | tr -d ' \n'; }
N=0
# send DAEMON FROM: one transaction through daemon a or b; $T/out.N has
# the replies, $REPLY the RCPT reply line.
send() {
	N=$((N + 1))
	cat >"$T/s.$N" <<EOF
send O 00000006000001ff001fffff
send C $(hex "client.example.net")00340019$(hex "192.0.2.9")00
send H $(hex "mail.example.net")00
send M $(hex "<$2>")00
send R $(hex "<user@example.test>")00
send E
EOF
	perl "$CLIENT" "$T/$1/sock" "$T/s.$N" >"$T/out.$N" 2>&1
	REPLY=$(grep '^R ' "$T/out.$N")
}
accepted() { # WHAT
	case $REPLY in
	"R c "*) pass "$1" ;;
	*) t_err "$1: RCPT answered '$REPLY', want accept" ;;
	esac
}

send a spammer@example.org
accepted "1st message through A"
send a spammer@example.org
accepted "2nd message through A"
send b spammer@example.org
accepted "3rd message through B"
send a spammer@example.org
text=$(echo "$REPLY" | sed -n 's/^R y //p' | perl -ne 'chomp; print pack("H*", $_)' | tr -d '\000')
case $text in
"451 4.7.1 Rate limit reached: sender spammer@example.org has a rate limit of 3 messages per hour (ref "*) pass "4th message through A: deferred by the counter both share" ;;
*) t_err "4th message through A: want 451 4.7.1 Rate limit reached ... 3 messages per hour, got '$text' ($REPLY)" ;;
esac
send b friend@example.org
accepted "another sender through B"

out=$("$PORTCULLISCTL" -c "$T/b.conf" ratelimit list sender: 2>&1)
case $out in
*"sender:spammer@example.org|msgs|3600 count=3"*) pass "ratelimit list on B: one shared counter" ;;
*) t_err "ratelimit list on B: $out" ;;
esac
"$PORTCULLISCTL" -c "$T/b.conf" ratelimit reset "sender:spammer@example.org" >"$T/reset.out" 2>&1 ||
	t_err "ratelimit reset on B: $(cat "$T/reset.out")"
send a spammer@example.org
accepted "after the reset on B, a message through A"
# 8 transactions of a new sender at the same moment, 4 through each
# daemon: exactly 3 get through (the counter's update is a compare-and-set)
for i in 1 2 3 4 5 6 7 8; do
	d=a
	[ $((i % 2)) -eq 0 ] && d=b
	cat >"$T/p.$i" <<EOF
send O 00000006000001ff001fffff
send C $(hex "client.example.net")00340019$(hex "192.0.2.9")00
send H $(hex "mail.example.net")00
send M $(hex "<burst@example.org>")00
send R $(hex "<user@example.test>")00
send E
EOF
	perl "$CLIENT" "$T/$d/sock" "$T/p.$i" >"$T/pout.$i" 2>&1 &
done
wait
n=$(cat "$T"/pout.* | grep -c '^R c ')
if [ "$n" = 3 ]; then
	pass "8 simultaneous messages through two daemons: exactly 3 accepted"
else
	t_err "8 simultaneous messages through two daemons: $n accepted, want exactly 3"
fi
t_sanitizer_clean "$T/a.log"
t_sanitizer_clean "$T/b.log"
t_done
