#!/usr/bin/env python3
# contrib/bench/xclientload.py - SMTP load from many client addresses, for
# contrib/bench/rspamd.sh (and its session() for smtpload.py, SMTPLOAD_XCLIENT)
#
#   xclientload.py load PORT MESSAGES THREADS PER_CONN NADDR SIZE
#   xclientload.py probe PORT ADDR NAME HELO SENDER
#
# Postfix must list 127.0.0.1 in smtpd_authorized_xclient_hosts: each SMTP
# session says XCLIENT ADDR=... NAME=... HELO=... before its messages, so
# Postfix (and the milter behind it) sees the session as coming from that
# client.  "load": MESSAGES messages of about SIZE bytes of plain text, from
# THREADS threads, PER_CONN per session; session k comes from client
# i = k mod NADDR: address 198.51.100.(i+1), name and HELO
# m(i+1).relays.rsbench.test, sender s@c(i+1).snd.rsbench.test, recipient
# rcpt@example.test.  Every message must be accepted (250).  Prints one line
#   sent=N ok=N wrong=N secs=S msgs_per_s=R
# and exits 1 when any answer was wrong.  "probe": one message from the
# given client (NAME "-" sends NAME=[UNAVAILABLE], as Postfix does for a
# client without a PTR record); prints the reply code of the end of DATA
# (or of the refused command) and exits 0 whatever it was.
import random
import smtplib
import sys
import threading
import time

WORDS = "the of and to in is that for it as with was on be at by this had not are but from".split()


def body(i, sender, size):
    rnd = random.Random(i)
    out, k = [], 0
    while k < size:
        line = " ".join(rnd.choice(WORDS) for _ in range(12))
        out.append(line)
        k += len(line) + 2
    return ("From: <%s>\r\nTo: <rcpt@example.test>\r\nSubject: bench %d\r\n"
            "Date: Mon, 07 Dec 2026 04:00:00 +0000\r\n"
            "Message-Id: <%d.bench@%s>\r\n\r\n%s\r\n" % (
                sender, i, i, sender.split("@")[1], "\r\n".join(out))).encode()


def session(port, addr, name, helo):
    s = smtplib.SMTP("127.0.0.1", port, timeout=60)
    s.ehlo("load.localhost")
    code, msg = s.docmd("XCLIENT", "ADDR=%s NAME=%s HELO=%s" % (addr, name, helo))
    if code != 220:
        raise RuntimeError("XCLIENT refused: %d %s" % (code, msg))
    s.ehlo_resp = None
    s.ehlo(helo)
    return s


def send(s, sender, data):
    try:
        s.sendmail(sender, ["rcpt@example.test"], data)
        return 250
    except smtplib.SMTPDataError as e:
        code = e.smtp_code
    except smtplib.SMTPRecipientsRefused as e:
        code = list(e.recipients.values())[0][0]
    except smtplib.SMTPSenderRefused as e:
        code = e.smtp_code
    s.rset()
    return code


def load(port, n, nthreads, per_conn, naddr, size):
    lock = threading.Lock()
    counts = {"sent": 0, "ok": 0, "wrong": 0}
    wrong = []
    nconn = (n + per_conn - 1) // per_conn
    msgs = {}

    def worker(t):
        for k in range(t, nconn, nthreads):
            i = k % naddr + 1
            name = "m%d.relays.rsbench.test" % i
            sender = "s@c%d.snd.rsbench.test" % i
            s = session(port, "198.51.100.%d" % i, name, name)
            for j in range(k * per_conn, min(n, (k + 1) * per_conn)):
                data = msgs.get(j % 97)
                if data is None:
                    data = body(j % 97, sender, size)
                code = send(s, sender, data)
                with lock:
                    counts["sent"] += 1
                    if code == 250:
                        counts["ok"] += 1
                    else:
                        counts["wrong"] += 1
                        wrong.append("%d:%d" % (j, code))
            s.quit()

    t0 = time.time()
    threads = [threading.Thread(target=worker, args=(t,)) for t in range(nthreads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    secs = time.time() - t0
    print("sent=%d ok=%d wrong=%d secs=%.2f msgs_per_s=%.1f%s" % (
        counts["sent"], counts["ok"], counts["wrong"], secs, counts["sent"] / secs,
        (" first_wrong=" + ",".join(wrong[:5])) if wrong else ""))
    return 1 if counts["wrong"] or counts["sent"] != n else 0


def probe(port, addr, name, helo, sender):
    s = session(port, addr, "[UNAVAILABLE]" if name == "-" else name, helo)
    code = send(s, sender, body(0, sender, 2000))
    s.quit()
    print(code)
    return 0


if __name__ == "__main__":
    a = sys.argv
    if len(a) == 8 and a[1] == "load":
        sys.exit(load(int(a[2]), int(a[3]), int(a[4]), int(a[5]), int(a[6]), int(a[7])))
    if len(a) == 7 and a[1] == "probe":
        sys.exit(probe(int(a[2]), a[3], a[4], a[5], a[6]))
    sys.stderr.write(__doc__ if __doc__ else "usage: see the comment at the top\n")
    sys.exit(2)
