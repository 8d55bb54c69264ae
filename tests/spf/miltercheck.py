#!/usr/bin/python3
"""tests/spf/miltercheck.py - run SPF suite tests as milter transactions

    miltercheck.py run SOCKET < TESTS > RESULTS
    miltercheck.py grade SUITENAME TESTS RESULTS

run: for each line of TESTS ("ID<TAB>HELO<TAB>IP<TAB>MAILFROM<TAB>EXPECTED
<TAB>EXPLANATION", as tests/spf/zones.py writes them) it speaks the milter
protocol (version 6) to the daemon on the unix socket SOCKET, as an MTA
would: option negotiation, CONNECT from IP, HELO, MAIL FROM:<MAILFROM>
(the null sender when MAILFROM is empty), RCPT, and when the recipient is
accepted DATA, one header, the body and end of message.  It prints one line
per test: "ID<TAB>RESULT<TAB>REPLY<TAB>RECEIVED-SPF" where RESULT is read
from what the daemon answered:
  - a refusal (SMFIR_REPLYCODE at MAIL or RCPT): its enhanced status code
    gives the result (5.7.23 fail, 5.7.24 permerror, 4.7.24 temperror, as
    lib/checks/spf.c and RFC 7372 define them), REPLY is the reply line;
  - an accepted message: the first word of the Received-SPF header the
    daemon added at end of message (RECEIVED-SPF, unfolded).
No Received-SPF, or a refusal with another code, gives "none-seen" or
"reply:CODE": a miss.

grade: compares RESULTS with the expected results of TESTS and checks
  - the result is one of the acceptable ones;
  - for a refusal whose test names an explanation other than DEFAULT, the
    reply text holds it (the reply doubles '%' for libmilter: undone here);
  - an added Received-SPF follows RFC 7208 9.1: result, a comment,
    key=value pairs each a dot-atom or a quoted-string, with client-ip
    (the test's address), envelope-from (the test's MAIL FROM), helo (the
    test's HELO), identity and receiver, and problem= on permerror.
A test passes when all three hold.  It prints every miss, then
"SUITE: N/M, explanations E/F (results alone: R/M)" and exits 1 on any
miss.  Only the Python standard library.
"""
import ipaddress
import re
import socket
import struct
import sys

SMFIP = {
    "NOCONNECT": 0x1, "NOHELO": 0x2, "NOMAIL": 0x4, "NORCPT": 0x8, "NOBODY": 0x10,
    "NOHDRS": 0x20, "NOEOH": 0x40, "NR_HDR": 0x80, "NODATA": 0x200,
    "NR_CONN": 0x1000, "NR_HELO": 0x2000, "NR_MAIL": 0x4000, "NR_RCPT": 0x8000,
    "NR_DATA": 0x10000, "NR_EOH": 0x40000, "NR_BODY": 0x80000,
}
FINAL = set("cartyd")
XCODE_RESULT = {"5.7.23": "fail", "5.7.24": "permerror", "4.7.24": "temperror"}


class Milter:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(30)
        self.s.connect(path)
        self.prot = 0

    def close(self):
        self.s.close()

    def send(self, cmd, data=b""):
        self.s.sendall(struct.pack(">I", len(data) + 1) + cmd + data)

    def readn(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise EOFError("the daemon closed the connection")
            buf += chunk
        return buf

    def read(self):
        (n,) = struct.unpack(">I", self.readn(4))
        pkt = self.readn(n)
        return pkt[:1].decode("latin-1"), pkt[1:]

    def negotiate(self):
        self.send(b"O", struct.pack(">III", 6, 0x1FF, 0x1FFFFF))
        code, data = self.read()
        if code != "O" or len(data) < 12:
            raise RuntimeError("bad option negotiation reply %r" % code)
        _, _, self.prot = struct.unpack(">III", data[:12])

    def step(self, cmd, data, skip_flag, nr_flag):
        """Send one command unless the daemon asked to skip it; return the
        reply (code, data), or ("c", b"") when no reply is expected."""
        if skip_flag and self.prot & SMFIP[skip_flag]:
            return "c", b""
        self.send(cmd, data)
        if nr_flag and self.prot & SMFIP[nr_flag]:
            return "c", b""
        return self.read()

    def eom(self):
        """End of message: the modifications and the final reply."""
        self.send(b"E")
        mods = []
        while True:
            code, data = self.read()
            if code in FINAL:
                return mods, code, data
            mods.append((code, data))


def cstr(s):
    return s.encode("latin-1", "replace") + b"\0"


def reply_result(data):
    text = data.rstrip(b"\0").decode("latin-1")
    m = re.match(r"(\d{3}) (\d\.\d{1,3}\.\d{1,3}) ", text)
    if not m:
        return "reply:?", text
    return XCODE_RESULT.get(m.group(2), "reply:" + m.group(1)), text


def one(path, helo, ip, mailfrom):
    """One transaction; returns (result, reply text, Received-SPF value)."""
    m = Milter(path)
    try:
        m.negotiate()
        fam = b"6" if ":" in ip else b"4"
        steps = [
            (b"C", cstr("[%s]" % ip) + fam + struct.pack(">H", 25) + cstr(ip), "NOCONNECT",
             "NR_CONN"),
            (b"H", cstr(helo), "NOHELO", "NR_HELO"),
            (b"M", cstr("<%s>" % mailfrom), "NOMAIL", "NR_MAIL"),
            (b"R", cstr("<spf-test@example.test>"), "NORCPT", "NR_RCPT"),
            (b"T", b"", "NODATA", "NR_DATA"),
            (b"L", cstr("Subject") + cstr("SPF test"), "NOHDRS", "NR_HDR"),
            (b"N", b"", "NOEOH", "NR_EOH"),
            (b"B", b"test\r\n", "NOBODY", "NR_BODY"),
        ]
        for cmd, data, skip, nr in steps:
            code, rdata = m.step(cmd, data, skip, nr)
            if code == "y":
                res, text = reply_result(rdata)
                return res, text, ""
            if code != "c":
                return "reply:" + code, "", ""
        mods, code, rdata = m.eom()
        if code == "y":
            res, text = reply_result(rdata)
            return res, text, ""
        if code not in "ca":
            return "reply:" + code, "", ""
        for mcode, mdata in mods:
            if mcode == "i":
                mdata = mdata[4:]
            if mcode not in "hi":
                continue
            parts = mdata.split(b"\0")
            if len(parts) >= 2 and parts[0].decode("latin-1").lower() == "received-spf":
                value = re.sub(r"\r?\n(?=[ \t])", "", parts[1].decode("latin-1"))
                return value.split(" ", 1)[0], "", value
        return "none-seen", "", ""
    finally:
        try:
            m.send(b"Q")
        except OSError:
            pass
        m.close()


def run(path):
    for line in sys.stdin:
        f = line.rstrip("\n").split("\t")
        tid, helo, ip, mailfrom = f[0], f[1], f[2], f[3]
        try:
            res, text, hdr = one(path, helo, ip, mailfrom)
        except (OSError, EOFError, RuntimeError) as e:
            res, text, hdr = "error", str(e), ""
        print("%s\t%s\t%s\t%s" % (tid, res, text.replace("\t", " "), hdr.replace("\t", " ")))
        sys.stdout.flush()


# ---- grading ----------------------------------------------------------------

ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
DOT_ATOM = r"%s+(?:\.%s+)*" % (ATEXT, ATEXT)
QSTRING = r'"(?:[^"\\\r\n]|\\[\x20-\x7e])*"'


def comment_end(s, i):
    """Index after the comment starting at s[i] == '(' or -1."""
    depth = 0
    while i < len(s):
        c = s[i]
        if c == "\\":
            i += 2
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return -1


def unquote(v):
    if v.startswith('"'):
        return re.sub(r"\\(.)", r"\1", v[1:-1])
    return v


def same_ip(a, b):
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return False


def check_header(value, helo, ip, mailfrom, result):
    """Problems with a Received-SPF value (RFC 7208 9.1), as a list."""
    probs = []
    m = re.match(r"(pass|fail|softfail|neutral|none|temperror|permerror)(?: |$)", value)
    if not m:
        return ["no result word"]
    rest = value[m.end():].lstrip(" ")
    if rest.startswith("("):
        e = comment_end(rest, 0)
        if e < 0:
            return ["unbalanced comment"]
        rest = rest[e:].lstrip(" ")
    pairs = {}
    pat = re.compile(r"([A-Za-z][A-Za-z0-9_.-]*) ?= ?(%s|%s) ?(;|$) ?" % (QSTRING, DOT_ATOM))
    while rest:
        kv = pat.match(rest)
        if not kv:
            probs.append("bad key=value at %r" % rest[:40])
            break
        pairs[kv.group(1).lower()] = unquote(kv.group(2))
        rest = rest[kv.end():]
    for key in ("client-ip", "envelope-from", "helo", "identity", "receiver"):
        if key not in pairs:
            probs.append("no %s=" % key)
    if "client-ip" in pairs and not same_ip(pairs["client-ip"], ip):
        probs.append("client-ip=%s, not %s" % (pairs["client-ip"], ip))
    ef = pairs.get("envelope-from", "")
    # the domain part in any case (DNS names are case-blind)
    if "envelope-from" in pairs and (ef.rpartition("@")[0] != mailfrom.rpartition("@")[0] or
                                     ef.rpartition("@")[2].lower() !=
                                     mailfrom.rpartition("@")[2].lower()):
        probs.append("envelope-from=%r, not %r" % (pairs["envelope-from"], mailfrom))
    if "helo" in pairs and pairs["helo"] != helo:
        probs.append("helo=%r, not %r" % (pairs["helo"], helo))
    if result == "permerror" and "problem" not in pairs:
        probs.append("permerror without problem=")
    return probs


def grade(suite, tests_path, results_path):
    tests, got = [], {}
    with open(tests_path, encoding="latin-1") as f:
        for line in f:
            tests.append(line.rstrip("\n").split("\t"))
    with open(results_path, encoding="latin-1") as f:
        for line in f:
            r = line.rstrip("\n").split("\t")
            while len(r) < 4:
                r.append("")
            got[r[0]] = r
    passed = results_ok = exps = exps_ok = 0
    misses = []
    for t in tests:
        tid, helo, ip, mailfrom, want = t[:5]
        expl = t[5] if len(t) > 5 else ""
        r = got.get(tid, [tid, "nothing", "", ""])
        probs = []
        if r[1] in want.split(","):
            results_ok += 1
        else:
            probs.append("expected %s, got %s" % (want, r[1]))
        if r[3]:
            probs += ["Received-SPF: " + p for p in check_header(r[3], helo, ip, mailfrom, r[1])]
        if expl and expl != "DEFAULT":
            exps += 1
            text = r[2].replace("%%", "%")
            if expl in text:
                exps_ok += 1
            else:
                probs.append("explanation %r not in the reply %r" % (expl, r[2]))
        if probs:
            misses.append("FAIL %s: %s [reply: %s] [Received-SPF: %s]"
                          % (tid, "; ".join(probs), r[2] or "-", r[3] or "-"))
        else:
            passed += 1
    for m in misses:
        print(m)
    print("%s: %d/%d, explanations %d/%d (results alone: %d/%d)"
          % (suite, passed, len(tests), exps_ok, exps, results_ok, len(tests)))
    return 0 if passed == len(tests) and exps_ok == exps else 1


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "run":
        run(sys.argv[2])
        return 0
    if len(sys.argv) == 5 and sys.argv[1] == "grade":
        return grade(sys.argv[2], sys.argv[3], sys.argv[4])
    sys.stderr.write("usage: miltercheck.py run SOCKET < TESTS | grade SUITE TESTS RESULTS\n")
    return 2


sys.exit(main())
