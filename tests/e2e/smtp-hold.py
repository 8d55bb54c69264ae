#!/usr/bin/env python3
# tests/e2e/smtp-hold.py - an SMTP client that can hold its transaction open
#
#   smtp-hold.py PORT hold READY GO     EHLO, MAIL, RCPT; make the file READY;
#                                       wait (at most 30 s) for the file GO;
#                                       DATA, a small message, QUIT
#   smtp-hold.py PORT plain             EHLO, MAIL, two RCPTs, QUIT
#
# Talks to 127.0.0.1:PORT one command at a time and prints each command
# and the server's (last) reply line: "MAIL 250 2.1.0 Ok".  From
# <sender@example.net> to <user@example.test> (and <user2@example.test>).
# Bounded: 30 s per reply.  Used by tests/e2e/postfix.sh.
import os
import socket
import sys
import time


def main():
    port, mode = int(sys.argv[1]), sys.argv[2]
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    f = s.makefile("rb")

    def reply():
        while True:
            line = f.readline()
            if not line:
                return "EOF"
            line = line.decode("latin-1").rstrip("\r\n")
            if len(line) < 4 or line[3] != "-":
                return line

    def cmd(name, text):
        s.sendall(text.encode() + b"\r\n")
        r = reply()
        print(name, r, flush=True)
        return r

    print("BANNER", reply(), flush=True)
    cmd("EHLO", "EHLO mail.example.net")
    cmd("MAIL", "MAIL FROM:<sender@example.net>")
    cmd("RCPT", "RCPT TO:<user@example.test>")
    if mode == "hold":
        open(sys.argv[3], "w").close()
        end = time.time() + 30
        while not os.path.exists(sys.argv[4]) and time.time() < end:
            time.sleep(0.02)
        if cmd("DATA", "DATA").startswith("354"):
            cmd("DOT", "Subject: held\r\n\r\nheld transaction\r\n.")
    else:
        cmd("RCPT2", "RCPT TO:<user2@example.test>")
    cmd("QUIT", "QUIT")
    s.close()


if __name__ == "__main__":
    main()
