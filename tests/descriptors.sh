#!/bin/sh
# tests/descriptors.sh - the daemon out of file descriptors
#
# The daemon runs with a soft RLIMIT_NOFILE of 64 (ulimit -n, as a unit
# without LimitNOFILE would give it 1,024).  A transaction works; then a
# bounded client opens 100 idle connections to the milter socket and holds
# them: the daemon runs out of descriptors, accept() fails, and the log has
# exactly one "cannot accept MTA connections: no descriptor left" line
# naming the limit (not one per failed accept, which libmilter retries
# over and over, nor one more when the client's first connections close
# and the waiting ones get through).  When the client has let go, the next
# transaction works and the daemon logs that it accepts again.  The daemon stops cleanly (no
# sanitizer report).  The idle connections are not closed by the daemon
# during the test: libmilter closes idle sessions only after milter_timeout,
# in a sweep every 10 minutes (see milter_timeout in portcullis.conf(5)).

: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
. "$top_srcdir/tests/lib.sh"

t_need "$MILTERTEST" python3 ss pgrep timeout
t_init

# The daemon with a low descriptor limit (exec: the pid stays the daemon's).
cat >"$T/limited" <<EOF
#!/bin/sh
ulimit -S -n 64 || exit 1
exec "$PORTCULLIS" "\$@"
EOF
chmod 755 "$T/limited"

# Hold N connections until the file RELEASE exists (at most 60 s); a
# connect that the full listen queue blocks gives up after 2 s.  Prints
# how many it held.
cat >"$T/hold.py" <<'EOF'
import os, socket, sys, time
path, n, release = sys.argv[1], int(sys.argv[2]), sys.argv[3]
held = []
for i in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect(path)
        held.append(s)
    except OSError:
        s.close()
print("held %d" % len(held), flush=True)
end = time.time() + 60
while not os.path.exists(release) and time.time() < end:
    time.sleep(0.05)
for s in held:
    s.close()
EOF

# One transaction: HELO localhost from a remote client is refused at RCPT.
client()
{
	_out=$(t_mt "$top_srcdir/tests/envelope-client.lua" -D "sock=unix:$T/sock" -D ip=192.0.2.7 -D helo=localhost 2>&1)
	_rc=$?
	if [ $_rc -ne 0 ] || [ "$_out" != "connect=c helo=c mail=c rcpt=y" ]; then
		t_err "$1: miltertest ($_rc) said '$_out', want 'connect=c helo=c mail=c rcpt=y'"
		return 1
	fi
	echo "ok: $1 ($_out)"
}

t_conf "$T/c.conf" "checks = helo"
PORTCULLIS=$T/limited t_start "$T/c.conf" "$T/portcullis.log"
echo "ok: daemon $T_PID, descriptor limit $(sed -n 's/^Max open files *\([0-9]*\).*/\1/p' /proc/$T_PID/limits)"
client "before: a transaction"

timeout 90 python3 "$T/hold.py" "$T/sock" 100 "$T/release" >"$T/hold.out" 2>&1 &
HOLD=$!
t_wait_for 'grep -q "^held" "$T/hold.out"' 60 || t_err "the client did not open its connections"
echo "ok: the client $(cat "$T/hold.out")"
RE_FULL='cannot accept MTA connections: no descriptor left \(Too many open files\); open descriptors limit 64'
t_wait_for 'grep -q -E "$RE_FULL" "$T/portcullis.log"' 10 ||
	t_err "no 'cannot accept MTA connections: no descriptor left ... limit 64' line in the log"
t_alive "$T_PID" || fail "the daemon died out of descriptors"
# libmilter keeps retrying accept() (and, without the pause, would spin):
# still one line.
sleep 1
n=$(grep -c -E "$RE_FULL" "$T/portcullis.log")
[ "$n" -eq 1 ] && echo "ok: one log line for the failing accept()" ||
	t_err "$n 'cannot accept' lines, want exactly 1"

touch "$T/release"
t_wait_exit "$HOLD" 20 || t_err "the client did not let go"
wait "$HOLD" 2>/dev/null
# The episode ends at the first accept() a second after the last failure.
sleep 1.2
client "after: a transaction"
t_wait_for 'grep -q "accepting MTA connections again (" "$T/portcullis.log"' 10 &&
	echo "ok: $(grep -o 'accepting MTA connections again.*' "$T/portcullis.log")" ||
	t_err "no 'accepting MTA connections again' line after the connections closed"
n=$(grep -c -E "$RE_FULL|still short of descriptors" "$T/portcullis.log")
[ "$n" -eq 1 ] || t_err "$n lines about the failing accept() in all, want 1"

t_stop "$T_PID" 10 "$T_WRAP"
[ "$T_RC" = 0 ] || t_err "daemon exit status '$T_RC', want 0"
t_sanitizer_clean "$T/portcullis.log"
t_done
