#!/usr/bin/env python3
# contrib/bench/bounceload.py - SMTP load for contrib/bench/bounce.sh
#
#   bounceload.py PORT THREADS PER_CONN N_ORDINARY N_FORGED N_GENUINE TAGGED_RCPT
#
# Sends, from THREADS threads with PER_CONN messages per SMTP connection,
# in an interleaved order: N_ORDINARY ordinary messages (load@example.net ->
# rcpt@example.test, 4 KiB of text), N_FORGED forged bounces (MAIL FROM:<>
# to the untagged rcpt@example.test, an RFC 3464 DSN quoting a message of a
# stranger's relays) and N_GENUINE genuine bounces (MAIL FROM:<> to
# TAGGED_RCPT, a valid BATV address).  Checks every answer: ordinary and
# genuine 250, forged 5xx after the data.  Prints one line
#   sent=N ordinary_ok=N forged_refused=N genuine_ok=N wrong=N secs=S msgs_per_s=R
# and exits 1 when any answer was wrong.
import smtplib
import sys
import threading
import time

port, nthreads, per_conn = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
n_ord, n_forged, n_gen, tagged = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), sys.argv[7]

words = "the of and to in is that for it as with was on be at by this had not are".split()
text = "\r\n".join(" ".join(words[(i + j) % len(words)] for j in range(12)) for i in range(70))


def ordinary(i):
    return ("load@example.net", "rcpt@example.test",
            "From: load@example.net\r\nTo: rcpt@example.test\r\nSubject: bench %d\r\n"
            "Message-Id: <%d.bench@example.net>\r\n\r\n%s\r\n" % (i, i, text), "ordinary")


def dsn(i, rcpt, kind):
    return ("", rcpt,
            "From: MAILER-DAEMON@mx%d.elsewhere.example\r\nTo: %s\r\n"
            "Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n"
            "--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
            "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.elsewhere.example\r\n"
            "Final-Recipient: rfc822; u%d@elsewhere.example\r\nAction: failed\r\nStatus: 5.1.1\r\n"
            "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
            "Received: from bot%d.example (bot [203.0.113.%d]) by mx.victim.example\r\n"
            "Message-ID: <%d@spam.example>\r\nFrom: %s\r\nSubject: cheap pills\r\n--B--\r\n"
            % (i % 50, rcpt, i, i, i % 250, i, rcpt), kind)


msgs = [ordinary(i) for i in range(n_ord)] + \
       [dsn(i, "rcpt@example.test", "forged") for i in range(n_forged)] + \
       [dsn(i, tagged, "genuine") for i in range(n_gen)]
# interleave deterministically: genuine bounces spread through the flood
msgs.sort(key=lambda m: hash(m[2]) & 0xffff)
lock = threading.Lock()
counts = {"sent": 0, "ordinary_ok": 0, "forged_refused": 0, "genuine_ok": 0, "wrong": 0}
wrong = []


def worker(k):
    mine = msgs[k::nthreads]
    for i in range(0, len(mine), per_conn):
        s = smtplib.SMTP("127.0.0.1", port, timeout=120)
        s.ehlo("load.example.net")
        for frm, rcpt, data, kind in mine[i:i + per_conn]:
            try:
                s.sendmail(frm, [rcpt], data.encode())
                code = 250
            except smtplib.SMTPDataError as e:
                code = e.smtp_code
                s.rset()
            except smtplib.SMTPRecipientsRefused as e:
                code = -list(e.recipients.values())[0][0]  # refused at RCPT: always wrong
                s.rset()
            ok = (kind == "forged" and 500 <= code < 600) or (kind != "forged" and code == 250)
            with lock:
                counts["sent"] += 1
                if ok:
                    counts[{"ordinary": "ordinary_ok", "forged": "forged_refused",
                            "genuine": "genuine_ok"}[kind]] += 1
                else:
                    counts["wrong"] += 1
                    wrong.append("%s:%d" % (kind, code))
        s.quit()


t0 = time.time()
threads = [threading.Thread(target=worker, args=(k,)) for k in range(nthreads)]
for t in threads:
    t.start()
for t in threads:
    t.join()
secs = time.time() - t0
print("sent=%d ordinary_ok=%d forged_refused=%d genuine_ok=%d wrong=%d secs=%.2f msgs_per_s=%.1f%s" % (
    counts["sent"], counts["ordinary_ok"], counts["forged_refused"], counts["genuine_ok"],
    counts["wrong"], secs, counts["sent"] / secs if secs else 0,
    (" first_wrong=" + ",".join(wrong[:5])) if wrong else ""))
sys.exit(1 if counts["wrong"] or counts["sent"] != len(msgs) else 0)
