#!/usr/bin/env python3
# tests/smtp-script.py - a scripted SMTP server on a loopback port, for the
# verification probe tests (tests/unit/test_smtpprobe, tests/e2e/postfix-verify.sh)
#
#   smtp-script.py MODE [USERS] [--port N] [--log FILE] [--life SECONDS]
#
# Binds 127.0.0.1 (port N, or a free one), prints "PORT\n" on stdout, and
# serves each connection in a thread until --life seconds (default 60) have
# passed: it always stops by itself.  With --log, each connection appends
# "connect", "most N" (the most connections open at once so far) and each
# command its verb to FILE.  MODE:
#   normal    RCPT of an address in USERS (comma-separated) 250, others
#             550 5.1.1; MAIL/EHLO 250
#   catchall  every RCPT 250
#   tempfail  every RCPT 451 4.3.0
#   slow=S    like normal, after sleeping S seconds before the banner
#   bigmulti  the EHLO reply is a multi-line reply of about 1 MB
#   longline  the RCPT reply is one line of 1 MB
#   hostile   the RCPT reply is multi-line 550 with %s%n, bare CR, control
#             bytes and "\r\n250 OK" tricks inside lines
#   mixed     the RCPT reply mixes codes across lines (250- then 550)
#   silent    accepts the connection and never says anything
#   midline   sends half a banner line and closes
#   closercpt answers up to MAIL, then closes in the middle of the RCPT reply
import socket
import sys
import threading
import time


def main():
    args = sys.argv[1:]
    mode = args.pop(0)
    users = set()
    port, log, life = 0, None, 60.0
    while args:
        a = args.pop(0)
        if a == "--port":
            port = int(args.pop(0))
        elif a == "--log":
            log = args.pop(0)
        elif a == "--life":
            life = float(args.pop(0))
        else:
            users = set(u.lower() for u in a.split(",") if u)
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(128)
    try:
        sys.stdout.write("%d\n" % srv.getsockname()[1])
        sys.stdout.flush()
        sys.stdout.close()
    except OSError:
        pass
    lock = threading.Lock()
    end = time.time() + life
    active = [0, 0]  # now, most at once

    def note(what):
        if log:
            with lock:
                with open(log, "a") as f:
                    f.write(what + "\n")

    def serve(c):
        c.settimeout(max(1.0, end - time.time()))
        f = c.makefile("rb")
        counted = [True]

        def leave():
            # before the last reply goes out: the client's next connection
            # can only come after this
            with lock:
                if counted[0]:
                    active[0] -= 1
                    counted[0] = False

        with lock:
            active[0] += 1
            active[1] = max(active[1], active[0])
            most = active[1]
        try:
            note("connect")
            note("most %d" % most)
            if mode == "silent":
                time.sleep(max(0.0, end - time.time()))
                return
            if mode == "midline":
                c.sendall(b"220 mx.script.test ESM")
                return
            if mode.startswith("slow="):
                time.sleep(float(mode[5:]))
            c.sendall(b"220 mx.script.test ESMTP script\r\n")
            while True:
                line = f.readline(4096)
                if not line:
                    return
                cmd = line.decode("latin-1").strip()
                verb = cmd.split(" ")[0].split(":")[0].upper()
                note(verb)
                if verb == "EHLO":
                    if mode == "bigmulti":
                        chunk = b"250-" + b"x" * 996 + b"\r\n"
                        c.sendall(chunk * 1100 + b"250 OK\r\n")
                    else:
                        c.sendall(b"250-mx.script.test\r\n250 PIPELINING\r\n")
                elif verb == "HELO" or verb == "MAIL":
                    if verb == "MAIL" and mode == "closercpt":
                        c.sendall(b"250 2.1.0 Ok\r\n")
                        f.readline(4096)
                        c.sendall(b"550-5.1.1 partial\r\n550 5.1")
                        return
                    c.sendall(b"250 2.1.0 Ok\r\n")
                elif verb == "RCPT":
                    addr = cmd[cmd.find("<") + 1:cmd.rfind(">")].lower()
                    if mode == "catchall":
                        c.sendall(b"250 2.1.5 Ok\r\n")
                    elif mode == "tempfail":
                        c.sendall(b"451 4.3.0 <%s>: try again later\r\n" % addr.encode())
                    elif mode == "longline":
                        c.sendall(b"550 5.1.1 " + b"y" * (1024 * 1024) + b"\r\n")
                    elif mode == "hostile":
                        c.sendall(b"550-5.1.1 100%s%n\rInjected: 1\r\n"
                                  b"550-5.1.1 a\x00b\x07c\x1b[31m\r\n"
                                  b"550 5.1.1 user unknown\r\n250 OK\r\n")
                    elif mode == "mixed":
                        c.sendall(b"250-fine\r\n550 5.1.1 not fine\r\n")
                    elif addr in users:
                        c.sendall(b"250 2.1.5 Ok\r\n")
                    else:
                        c.sendall(b"550 5.1.1 <%s>: Recipient address rejected: "
                                  b"User unknown\r\n" % addr.encode())
                elif verb == "QUIT":
                    leave()
                    c.sendall(b"221 2.0.0 Bye\r\n")
                    return
                elif verb == "DATA":
                    c.sendall(b"554 5.5.1 a probe must never send DATA\r\n")
                else:
                    c.sendall(b"502 5.5.2 Error: command not recognized\r\n")
        except OSError:
            pass
        finally:
            leave()
            try:
                c.close()
            except OSError:
                pass

    srv.settimeout(0.5)
    while time.time() < end:
        try:
            c, _ = srv.accept()
        except socket.timeout:
            continue
        threading.Thread(target=serve, args=(c,), daemon=True).start()
    srv.close()


if __name__ == "__main__":
    main()
