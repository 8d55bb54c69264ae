#!/usr/bin/python3
# tests/metrics-parse.py - a strict checker of the Prometheus text exposition
# format 0.0.4, for tests/metrics.sh
#
#   python3 tests/metrics-parse.py FILE
#
# Stricter than Prometheus itself, on purpose: every sample belongs to a
# family announced by "# HELP" then "# TYPE" lines just before it; a family
# appears in one block only; names and labels follow the grammar; label
# values use only the escapes \\ \" \n; no sample (name + labels) twice;
# counters are named *_total and are >= 0; a histogram has per label set
# buckets with increasing le ending in +Inf, cumulative counts that never
# go down, _count equal to the +Inf bucket, and a _sum.  The file ends with
# a newline.  Then, when python3-prometheus-client is installed, the
# official client's parser must find the same families, types and number
# of samples.  Prints "N families, N samples; ..." and exits 0, or prints
# the first problem as FILE:LINE: reason and exits 1.

import math
import re
import sys

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LNAME = r"[a-zA-Z_][a-zA-Z0-9_]*"
LVALUE = r'"(?:[^"\\\n]|\\[\\"n])*"'
LABELS = r"\{(?:%s=%s(?:,%s=%s)*,?)?\}" % (LNAME, LVALUE, LNAME, LVALUE)
VALUE = r"(?:[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?Inf|NaN)"
SAMPLE = re.compile(r"^(%s)(%s)? (%s)(?: -?[0-9]+)?$" % (NAME, LABELS, VALUE))
HELP = re.compile(r"^# HELP (%s) (.*)$" % NAME)
TYPE = re.compile(r"^# TYPE (%s) (counter|gauge|histogram|summary|untyped)$" % NAME)
LABEL = re.compile(r"(%s)=(%s)" % (LNAME, LVALUE))


def fail(path, n, why):
    print("%s:%d: %s" % (path, n, why))
    sys.exit(1)


def num(v):
    return float(v.replace("Inf", "inf"))


def main(path):
    text = open(path, encoding="utf-8").read()
    if not text.endswith("\n"):
        fail(path, text.count("\n") + 1, "no newline at the end")
    families = {}  # name -> type
    done = set()  # families whose block has ended
    cur = None  # (name, type) of the current block
    help_for = None
    seen = set()
    hist = {}  # (family, labels without le) -> list of (le, count), count, sum
    nsamples = 0
    for n, line in enumerate(text.split("\n")[:-1], 1):
        if line == "":
            fail(path, n, "empty line")
        m = HELP.match(line)
        if m:
            if m.group(1) in families or m.group(1) in done:
                fail(path, n, "family %s announced twice" % m.group(1))
            if cur:
                done.add(cur[0])
            help_for, cur = m.group(1), None
            continue
        m = TYPE.match(line)
        if m:
            if help_for != m.group(1):
                fail(path, n, "TYPE %s not right after its HELP" % m.group(1))
            cur = (m.group(1), m.group(2))
            families[cur[0]] = cur[1]
            help_for = None
            continue
        if line.startswith("#"):
            fail(path, n, "a comment that is neither HELP nor TYPE: %r" % line)
        m = SAMPLE.match(line)
        if not m:
            fail(path, n, "not a sample line: %r" % line)
        if cur is None:
            fail(path, n, "sample before its family's HELP and TYPE")
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        fam, typ = cur
        pairs = LABEL.findall(labels)
        keys = [k for k, _ in pairs]
        if len(set(keys)) != len(keys):
            fail(path, n, "a label twice")
        if (name, labels) in seen:
            fail(path, n, "sample %s%s twice" % (name, labels))
        seen.add((name, labels))
        nsamples += 1
        v = num(value)
        if typ == "counter":
            if name != fam or not name.endswith("_total"):
                fail(path, n, "counter %s in family %s (want NAME_total)" % (name, fam))
            if not v >= 0:
                fail(path, n, "counter below zero")
        elif typ == "gauge":
            if name != fam:
                fail(path, n, "gauge %s in family %s" % (name, fam))
        elif typ == "histogram":
            rest = tuple((k, x) for k, x in pairs if k != "le")
            h = hist.setdefault((fam, rest), {"b": [], "count": None, "sum": None, "line": n})
            if name == fam + "_bucket":
                le = dict(pairs).get('le')
                if le is None:
                    fail(path, n, "bucket without le")
                le = num(le.strip('"'))
                if h["b"] and (le <= h["b"][-1][0] or v < h["b"][-1][1]):
                    fail(path, n, "buckets not increasing in le and count")
                if not (v >= 0 and v == int(v)):
                    fail(path, n, "bucket count not a whole number")
                h["b"].append((le, v))
            elif name == fam + "_count":
                h["count"] = v
            elif name == fam + "_sum":
                h["sum"] = v
            else:
                fail(path, n, "%s in histogram %s" % (name, fam))
        else:
            fail(path, n, "type %s not expected here" % typ)
    for (fam, rest), h in hist.items():
        where = "%s%s" % (fam, dict(rest) or "")
        if not h["b"] or not math.isinf(h["b"][-1][0]):
            fail(path, h["line"], "histogram %s: no +Inf bucket" % where)
        if h["count"] is None or h["sum"] is None:
            fail(path, h["line"], "histogram %s: no _count or _sum" % where)
        if h["count"] != h["b"][-1][1]:
            fail(path, h["line"], "histogram %s: _count != +Inf bucket" % where)
    for fam, typ in families.items():
        if not any(s[0] == fam or s[0].startswith(fam + "_") for s in seen):
            fail(path, 0, "family %s has no sample" % fam)
    print("%d families, %d samples; %s" % (len(families), nsamples, official(path, text, families, nsamples)))


def official(path, text, families, nsamples):
    """The same text through the parser of the official Python client
    (python3-prometheus-client), when it is installed: it must find the
    same families with the same types and the same number of samples."""
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        return "prometheus_client not installed"
    try:
        fams = list(text_string_to_metric_families(text))
    except Exception as e:
        fail(path, 0, "prometheus_client refuses it: %s" % e)
    got = {}
    for f in fams:
        # the client drops "_total" from counter family names
        name = f.name + "_total" if f.type == "counter" else f.name
        got[name] = f.type
    if got != families:
        fail(path, 0, "prometheus_client sees other families: %r" % sorted(set(got.items()) ^ set(families.items())))
    n = sum(len(f.samples) for f in fams)
    if n != nsamples:
        fail(path, 0, "prometheus_client sees %d samples, not %d" % (n, nsamples))
    return "prometheus_client agrees"


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: metrics-parse.py FILE", file=sys.stderr)
        sys.exit(2)
    main(sys.argv[1])
