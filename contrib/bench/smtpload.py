#!/usr/bin/env python3
# contrib/bench/smtpload.py - SMTP load for contrib/bench/clamav.sh
#
#   smtpload.py PORT MSGDIR THREADS PER_CONN
#
# Sends every file of MSGDIR (one message each, name ending in .clean or
# .virus) to 127.0.0.1:PORT from THREADS threads, PER_CONN messages per
# SMTP connection, and checks each answer: a .clean message must get 250,
# a .virus message a 5xx.  Prints one line
#   sent=N clean_ok=N virus_refused=N wrong=N secs=S msgs_per_s=R
# and exits 1 when any answer was wrong or a message was not sent.  SMTPLOAD_RCPTS (default 1): the
# recipients of each message, rcpt@, rcpt2@ ... of example.test.
# SMTPLOAD_SENDERS=per-message: each message has a sender of its own
# (load-NAME@example.net, NAME its file name with letters for digits:
# greylists replace runs of digits in a sender by one sign), so that a
# greylist sees one triplet per message; default: load@example.net for all.
# SMTPLOAD_XCLIENT=NADDR: each session says XCLIENT first (Postfix must
# authorise 127.0.0.1; see xclientload.py) and comes from client
# i = session mod NADDR + 1: address 198.51.100.i, name and HELO
# mi.relays.rsbench.test, sender s@ci.snd.rsbench.test (the zones of
# contrib/bench/zones.sh: every check passes).
import os
import smtplib
import sys
import threading
import time

port, msgdir, nthreads, per_conn = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
files = sorted(os.listdir(msgdir))
msgs = [(f, open(os.path.join(msgdir, f), "rb").read()) for f in files]
lock = threading.Lock()
counts = {"sent": 0, "clean_ok": 0, "virus_refused": 0, "wrong": 0}
wrong = []
nrcpts = int(os.environ.get("SMTPLOAD_RCPTS", "1"))
rcpts = ["rcpt@example.test"] + ["rcpt%d@example.test" % i for i in range(2, nrcpts + 1)]
per_message = os.environ.get("SMTPLOAD_SENDERS", "") == "per-message"
letters = str.maketrans("0123456789", "ghijklmnop")
naddr = int(os.environ.get("SMTPLOAD_XCLIENT", "0"))
if naddr:
    sys.dont_write_bytecode = True  # no __pycache__ in the source tree
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from xclientload import session


def worker(k):
    mine = msgs[k::nthreads]
    for i in range(0, len(mine), per_conn):
        if naddr:
            c = ((i // per_conn) * nthreads + k) % naddr + 1
            cname = "m%d.relays.rsbench.test" % c
            s = session(port, "198.51.100.%d" % c, cname, cname)
            s.timeout = 120
            s.sock.settimeout(120)
        else:
            s = smtplib.SMTP("127.0.0.1", port, timeout=120)
            s.ehlo("load.example.net")
        for name, data in mine[i:i + per_conn]:
            try:
                if naddr:
                    sender = "s@c%d.snd.rsbench.test" % c
                elif per_message:
                    sender = "load-%s@example.net" % name.split(".")[0].translate(letters)
                else:
                    sender = "load@example.net"
                s.sendmail(sender, rcpts, data)
                code = 250
            except (smtplib.SMTPDataError, smtplib.SMTPSenderRefused) as e:
                code = e.smtp_code
                s.rset()
            except smtplib.SMTPRecipientsRefused as e:
                code = list(e.recipients.values())[0][0]
                s.rset()
            ok = (name.endswith(".clean") and code == 250) or \
                 (name.endswith(".virus") and 500 <= code < 600)
            with lock:
                counts["sent"] += 1
                if ok:
                    counts["clean_ok" if code == 250 else "virus_refused"] += 1
                else:
                    counts["wrong"] += 1
                    wrong.append("%s:%d" % (name, code))
        s.quit()


t0 = time.time()
threads = [threading.Thread(target=worker, args=(k,)) for k in range(nthreads)]
for t in threads:
    t.start()
for t in threads:
    t.join()
secs = time.time() - t0
print("sent=%d clean_ok=%d virus_refused=%d wrong=%d secs=%.2f msgs_per_s=%.1f%s" % (
    counts["sent"], counts["clean_ok"], counts["virus_refused"], counts["wrong"], secs,
    counts["sent"] / secs, (" first_wrong=" + ",".join(wrong[:5])) if wrong else ""))
# a session that broke off (an exception in a thread) left messages unsent
sys.exit(1 if counts["wrong"] or counts["sent"] != len(msgs) else 0)
