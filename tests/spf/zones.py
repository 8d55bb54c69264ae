#!/usr/bin/python3
"""tests/spf/zones.py - turn an SPF test suite (YAML) into NSD zones

    zones.py SUITE.yml OUTDIR

For scenario N (1, 2, ...) it writes OUTDIR/N/zones/*.zone (one zone per
registered-domain-like suffix: the last two labels, or in-addr.arpa /
ip6.arpa; the top-level domains and the root, root.zone, empty),
OUTDIR/N/rules (fault-proxy rules "NAME=drop" for the names
the suite marks TIMEOUT) and OUTDIR/N/tests (lines "N/NAME<TAB>HELO<TAB>IP
<TAB>MAILFROM<TAB>EXPECTED<TAB>EXPLANATION" where EXPECTED is a
comma-separated list of acceptable results and EXPLANATION the expected
explanation of a fail, "DEFAULT" or empty).  Conventions of the suite's
DNS data (as its own harness serves them): an SPF entry is served as TXT when the name has no
TXT entry; "TXT: NONE" means no TXT at all; TIMEOUT makes every query for a
type the name has no data of time out (here: the whole name is dropped by
the proxy unless it has TXT data, the only type whose timeout matters to
the tests).  Needs python3-yaml.
"""
import os
import sys

import yaml


def esc(data):
    """A zone-file quoted character-string from bytes."""
    out = []
    for b in data:
        if 0x20 < b < 0x7F and b not in (0x22, 0x5C):
            out.append(chr(b))
        else:
            out.append("\\%03d" % b)
    return '"' + "".join(out) + '"'


def name_esc(name):
    """An owner name for a zone file (odd bytes as \\DDD), absolute."""
    out = []
    for b in name.rstrip(".").encode("utf-8"):
        c = chr(b)
        if c.isalnum() or c in "-_.":
            out.append(c)
        else:
            out.append("\\%03d" % b)
    return "".join(out) + "."


def apex(name):
    n = name.rstrip(".").lower()
    for suffix in ("in-addr.arpa", "ip6.arpa"):
        if n.endswith("." + suffix):
            return suffix
    labels = n.split(".")
    return ".".join(labels[-2:])


def txt_strings(value):
    if isinstance(value, list):
        parts = value
    else:
        parts = [value]
    if not parts:
        parts = [""]
    return " ".join(esc(raw(p)) for p in parts)


def raw(s):
    """The suite writes bytes as \\xNN escapes, which YAML reads as code
    points below 256: turn them back into those bytes."""
    try:
        return s.encode("latin-1")
    except UnicodeEncodeError:
        return s.encode("utf-8")


def main():
    suite, outdir = sys.argv[1], sys.argv[2]
    with open(suite, encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    for n, doc in enumerate(docs, 1):
        sdir = os.path.join(outdir, str(n))
        zdir = os.path.join(sdir, "zones")
        os.makedirs(zdir, exist_ok=True)
        zones = {}
        rules = []
        for name, recs in (doc.get("zonedata") or {}).items():
            if isinstance(recs, str):
                recs = [recs]
            has_txt = any(isinstance(r, dict) and "TXT" in r for r in recs)
            real_txt = any(isinstance(r, dict) and "TXT" in r and r["TXT"] != "NONE" for r in recs)
            lname = name.rstrip(".").lower()
            under = any(o.rstrip(".").lower().endswith("." + lname) for o in doc["zonedata"])
            # The proxy drops a name and every name below it: a TIMEOUT
            # name with data below it is served as empty instead.
            if "TIMEOUT" in recs and not real_txt and not under:
                rules.append(name.rstrip(".").lower() + "=drop")
                continue
            lines = zones.setdefault(apex(name), [])
            owner = name_esc(name)
            for r in recs:
                if not isinstance(r, dict):
                    continue
                for typ, val in r.items():
                    if typ == "TXT" and val != "NONE":
                        lines.append("%s 300 IN TXT %s" % (owner, txt_strings(val)))
                    elif typ == "SPF" and not has_txt:
                        lines.append("%s 300 IN TXT %s" % (owner, txt_strings(val)))
                    elif typ in ("A", "AAAA"):
                        lines.append("%s 300 IN %s %s" % (owner, typ, val))
                    elif typ in ("PTR", "CNAME"):
                        lines.append("%s 300 IN %s %s" % (owner, typ, name_esc(val)))
                    elif typ == "MX":
                        host = val[1] or "."
                        lines.append("%s 300 IN MX %d %s" % (owner, val[0],
                                                            "." if host == "." else name_esc(host)))
        # The top-level domains and the root zone too, empty: every name
        # the suite does not list does not exist (NXDOMAIN, as in the
        # suite's own harness), even under a top-level domain nobody
        # serves ("[1.2.3.4]" in a %{h}).  tests/dns/server.sh serves
        # root.zone as ".".
        for z in list(zones):
            zones.setdefault(z.split(".")[-1], [])
        zones.setdefault(".", [])
        for z, lines in zones.items():
            origin = "." if z == "." else z + "."
            fname = "root" if z == "." else z
            with open(os.path.join(zdir, fname + ".zone"), "w") as f:
                f.write("$ORIGIN %s\n$TTL 300\n" % origin)
                f.write("@ IN SOA ns.example. hostmaster.example. 1 3600 600 86400 60\n")
                f.write("@ IN NS ns.example.\n")
                seen = set()
                for line in lines:
                    if line not in seen:
                        f.write(line + "\n")
                        seen.add(line)
        with open(os.path.join(sdir, "rules"), "w") as f:
            f.write(" ".join(rules) + "\n")
        with open(os.path.join(sdir, "tests"), "w") as f:
            for tname, t in doc["tests"].items():
                res = t["result"]
                if isinstance(res, list):
                    res = ",".join(res)
                f.write("%d/%s\t%s\t%s\t%s\t%s\t%s\n" % (n, tname, t.get("helo", ""), t.get("host", ""),
                                                        t.get("mailfrom", ""), res,
                                                        t.get("explanation", "")))


main()
