#!/usr/bin/env python3
# contrib/bench/hold.py - many SMTP sessions held open at once, for the
# memory figures of contrib/bench/clamav.sh (BENCH_MODE=memory)
#
#   hold.py PORT SESSIONS MESSAGE HOLD_SECS
#
# Opens SESSIONS connections to 127.0.0.1:PORT, one after the other, and
# takes each to the middle of DATA: EHLO, MAIL FROM:<holdN@example.net>,
# RCPT TO:<rcpt@example.test>, DATA, then the whole message MESSAGE (a
# file) but not the final dot.  When every session is there it prints
# "held N", waits HOLD_SECS, sends the final dot on every session at once
# (so all the messages reach the filter together), then reads each reply
# and QUITs.  Prints one line
#   held=N accepted=N other=N secs=S [first_other=...]
# and exits 1 unless every session was held and every message got 250.
# Bounded: every socket operation times out after 300 s.
import re
import smtplib
import sys
import time

port, sessions, path, hold = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
data = open(path, "rb").read()
data = re.sub(rb"(?m)^\.", b"..", data)
if not data.endswith(b"\r\n"):
    data += b"\r\n"

t0 = time.time()
held = []
for i in range(sessions):
    s = smtplib.SMTP("127.0.0.1", port, timeout=300)
    s.ehlo("hold.example.net")
    code, text = s.mail("hold%d@example.net" % i)
    if code != 250:
        sys.exit("session %d: MAIL FROM: %d %s" % (i, code, text))
    code, text = s.rcpt("rcpt@example.test")
    if code != 250:
        sys.exit("session %d: RCPT TO: %d %s" % (i, code, text))
    s.putcmd("data")
    code, text = s.getreply()
    if code != 354:
        sys.exit("session %d: DATA: %d %s" % (i, code, text))
    s.send(data)
    held.append(s)
print("held %d" % len(held), flush=True)
time.sleep(hold)
for s in held:
    s.send(b".\r\n")
accepted, other = 0, []
for i, s in enumerate(held):
    code, text = s.getreply()
    if code == 250:
        accepted += 1
    else:
        other.append("%d:%d" % (i, code))
    s.quit()
print("held=%d accepted=%d other=%d secs=%.2f%s" % (
    len(held), accepted, len(other), time.time() - t0,
    (" first_other=" + ",".join(other[:5])) if other else ""))
sys.exit(1 if other or len(held) != sessions else 0)
