#!/usr/bin/python3
# tests/dashboard-check.py - the Grafana dashboard against what the daemon
# exports, for tests/dashboard.sh
#
#   python3 tests/dashboard-check.py DASHBOARD.json METRICS.txt
#   python3 tests/dashboard-check.py --prometheus URL DASHBOARD.json [EXPR-REGEX]
#
# 1. The JSON is a dashboard Grafana imports anywhere: schemaVersion, a
#    title and uid, the Prometheus data source as the ${DS_PROMETHEUS}
#    input (declared in __inputs, used by every panel, target and
#    variable; no data source uid of one Grafana instance), panels with a
#    type, a title, a gridPos inside the 24 columns, unique ids, targets
#    with an expression and unique refIds.
# 2. Every PromQL expression (targets, and label_values() of variables) is
#    tokenised; its metric selectors, label matchers and by/without/on/
#    ignoring label lists are taken out (aggregations, functions,
#    histogram_quantile, ranges [..], offsets, arithmetic; a small parser,
#    not all of PromQL).  Each metric must be a sample name of the scrape
#    METRICS.txt (so histograms are queried as _bucket/_sum/_count); each
#    label in a matcher must be a label of that metric, and each label of a
#    by() clause a label of every metric aggregated under it; "job" and
#    "instance", which Prometheus adds at scrape time, count as present.
#    A matcher with a literal value ("accept", "reject|defer") must match a
#    value the daemon exports for that label.
# Prints "N panels, N expressions, N metrics; ok" and exits 0, or prints
# each problem on a line and exits 1.
#
# With --prometheus, every expression is evaluated by a real Prometheus
# that scrapes the daemon (its HTTP API at URL, Grafana's variables
# replaced: $__rate_interval and $__range by 1m, $instance by .*): each
# must be accepted and return at least one series; the variables' label
# values must not be empty.  With EXPR-REGEX, only the matching expressions
# are evaluated and their values printed ("panel: value" per series), for
# the test to look at.

import json
import re
import sys

TARGET_LABELS = {"job", "instance"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
            "and", "or", "unless", "inf", "nan"}
AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
                "count_values", "bottomk", "topk", "quantile"}
DS = "${DS_PROMETHEUS}"

problems = []


def problem(where, msg):
    problems.append("%s: %s" % (where, msg))


# --- the scrape ------------------------------------------------------------------

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? ')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def exported(path):
    """sample name -> {label: set of values}"""
    out = {}
    for line in open(path, encoding="utf-8"):
        if line.startswith("#") or not line.strip():
            continue
        m = SAMPLE.match(line)
        if not m:
            continue
        labels = out.setdefault(m.group(1), {})
        for k, v in LABEL.findall(m.group(3) or ""):
            labels.setdefault(k, set()).add(v)
    return out


# --- PromQL -----------------------------------------------------------------------

TOKEN = re.compile(r'''
    (?P<ws>\s+)
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<range>\[[^\]]*\])
  | (?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?:ms|s|m|h|d|w|y)?)
  | (?P<var>\$\{?[a-zA-Z_][a-zA-Z0-9_]*(?::[a-z]+)?\}?)
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<op>=~|!~|!=|==|<=|>=|[-+*/%^<>=,(){}])
''', re.X)


def tokens(expr, where):
    out, pos = [], 0
    while pos < len(expr):
        m = TOKEN.match(expr, pos)
        if not m:
            problem(where, "cannot read the expression at %r" % expr[pos:pos + 20])
            return None
        pos = m.end()
        kind = m.lastgroup
        if kind != "ws":
            out.append((kind, m.group(kind)))
    depth = {"(": 0, "{": 0}
    for kind, t in out:
        if t in "({" and kind == "op":
            depth[t] += 1
        elif t in ")}" and kind == "op":
            depth["(" if t == ")" else "{"] -= 1
            if min(depth.values()) < 0:
                problem(where, "unbalanced brackets")
                return None
    if any(depth.values()):
        problem(where, "unbalanced brackets")
        return None
    return out


def unquote(s):
    return re.sub(r"\\(.)", r"\1", s[1:-1])


def close_of(toks, i):
    """index of the bracket closing toks[i]"""
    o, c = toks[i][1], {"(": ")", "{": "}"}[toks[i][1]]
    d = 0
    for j in range(i, len(toks)):
        if toks[j][0] == "op" and toks[j][1] == o:
            d += 1
        elif toks[j][0] == "op" and toks[j][1] == c:
            d -= 1
            if d == 0:
                return j
    return len(toks) - 1


def label_list(toks, i, where):
    """the labels of "( a, b )" starting at toks[i]; and the index after"""
    if i >= len(toks) or toks[i] != ("op", "("):
        problem(where, "a label list must follow by/without/on/ignoring")
        return [], i
    j = close_of(toks, i)
    labels = [t for k, t in toks[i + 1:j] if k == "ident"]
    return labels, j + 1


def analyse(expr, where):
    """([(metric, [(label, op, value)])], [(labels, (start, end))]) of expr"""
    toks = tokens(expr, where)
    if toks is None:
        return [], [], None
    selectors, groupings = [], []
    i = 0
    while i < len(toks):
        kind, t = toks[i]
        if kind == "ident" and t in ("by", "without", "on", "ignoring", "group_left", "group_right"):
            labels, nxt = label_list(toks, i + 1, where) if (
                i + 1 < len(toks) and toks[i + 1] == ("op", "(")) else ([], i + 1)
            if t in ("by", "without"):
                # the aggregation's own parentheses: before "by" (sum(...) by (x))
                # or after the label list (sum by (x) (...))
                if i > 0 and toks[i - 1] == ("op", ")"):
                    d, s = 0, i - 1
                    while s >= 0:
                        if toks[s] == ("op", ")"):
                            d += 1
                        elif toks[s] == ("op", "("):
                            d -= 1
                            if d == 0:
                                break
                        s -= 1
                    span = (s, i - 1)
                elif nxt < len(toks) and toks[nxt] == ("op", "("):
                    span = (nxt, close_of(toks, nxt))
                else:
                    problem(where, "%s without an aggregated expression" % t)
                    span = (i, i)
                groupings.append((t, labels, span))
            i = nxt
            continue
        if kind == "ident" and t not in KEYWORDS:
            nxt = toks[i + 1] if i + 1 < len(toks) else None
            if nxt == ("op", "(") or (t in AGGREGATIONS and nxt in (("ident", "by"),
                                                                    ("ident", "without"))):
                i += 1  # a function or an aggregation
                continue
            if i > 0 and toks[i - 1] == ("op", "{"):
                i += 1  # a label inside braces is handled below
                continue
            matchers = []
            end = i
            if nxt == ("op", "{"):
                end = close_of(toks, i + 1)
                body = toks[i + 2:end]
                k = 0
                while k < len(body):
                    if (k + 2 < len(body) and body[k][0] == "ident" and body[k + 1][0] == "op"
                            and body[k + 1][1] in ("=", "!=", "=~", "!~") and body[k + 2][0] == "str"):
                        matchers.append((body[k][1], body[k + 1][1], unquote(body[k + 2][1])))
                        k += 3
                        if k < len(body) and body[k] == ("op", ","):
                            k += 1
                        continue
                    problem(where, "a label matcher that does not parse in %s{...}" % t)
                    break
            selectors.append((t, matchers, i))
            i = end + 1
            continue
        if kind == "op" and t == "{" and (i == 0 or toks[i - 1][0] != "ident"):
            problem(where, "a selector without a metric name")
        i += 1
    return selectors, groupings, toks


def literal_values(op, value):
    """the literal values a matcher asks for, or None when it is a pattern"""
    if "$" in value:
        return None
    if op == "=":
        return [value]
    if op == "=~" and re.fullmatch(r"[a-zA-Z0-9_.+-]+(\|[a-zA-Z0-9_.+-]+)*", value):
        return value.split("|")
    return None


def check_expr(expr, where, metrics, used):
    selectors, groupings, toks = analyse(expr, where)
    if toks is None:
        return
    if not selectors:
        problem(where, "no metric in %r" % expr)
    for name, matchers, _ in selectors:
        used.add(name)
        if name not in metrics:
            hint = ""
            if name + "_bucket" in metrics:
                hint = " (a histogram: query %s_bucket, _sum or _count)" % name
            problem(where, "metric %s is not exported%s" % (name, hint))
            continue
        for label, op, value in matchers:
            if label in TARGET_LABELS:
                continue
            if label not in metrics[name]:
                problem(where, "metric %s has no label %s" % (name, label))
                continue
            for v in literal_values(op, value) or []:
                if v not in metrics[name][label]:
                    problem(where, "metric %s never has %s=\"%s\" (it has %s)"
                            % (name, label, v, ", ".join(sorted(metrics[name][label]))))
    for word, labels, (s, e) in groupings:
        inner = [n for n, _, pos in selectors if s <= pos <= e and n in metrics]
        if not inner:
            problem(where, "%s (%s) aggregates no exported metric" % (word, ", ".join(labels)))
        for label in labels:
            if label in TARGET_LABELS:
                continue
            for n in inner:
                if label not in metrics[n]:
                    problem(where, "%s (%s): metric %s has no label %s"
                            % (word, ", ".join(labels), n, label))


# --- the dashboard ------------------------------------------------------------------


def ds_ok(ds):
    if isinstance(ds, str):
        return ds == DS
    return isinstance(ds, dict) and ds.get("uid") == DS and ds.get("type") in (None, "prometheus")


def walk_datasources(node, path, out):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "datasource":
                out.append((path, v))
            walk_datasources(v, path + "." + k, out)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            walk_datasources(v, "%s[%d]" % (path, i), out)


def main(dash_path, metrics_path):
    metrics = exported(metrics_path)
    try:
        d = json.load(open(dash_path, encoding="utf-8"))
    except ValueError as e:
        print("%s: not JSON: %s" % (dash_path, e))
        return 1
    if not isinstance(d.get("schemaVersion"), int) or d["schemaVersion"] < 30:
        problem("dashboard", "schemaVersion missing or older than 30")
    for key in ("title", "uid"):
        if not isinstance(d.get(key), str) or not d[key]:
            problem("dashboard", "no %s" % key)
    if d.get("id") is not None:
        problem("dashboard", "id must be null (Grafana assigns it at import)")
    inputs = [x for x in d.get("__inputs", []) if x.get("name") == "DS_PROMETHEUS"]
    if len(inputs) != 1 or inputs[0].get("type") != "datasource" or \
            inputs[0].get("pluginId") != "prometheus":
        problem("dashboard", "__inputs lacks the DS_PROMETHEUS data source input")
    found = []
    walk_datasources(d, "dashboard", found)
    for path, ds in found:
        if path.startswith("dashboard.annotations"):
            continue  # Grafana's own annotations
        if not ds_ok(ds):
            problem(path, "data source %r is not ${DS_PROMETHEUS}" % (ds,))

    panels = d.get("panels")
    if not isinstance(panels, list) or not panels:
        problem("dashboard", "no panels")
        panels = []
    flat = []
    for p in panels:
        flat.append(p)
        flat.extend(p.get("panels", []) if p.get("type") == "row" else [])
    ids, nexpr, used = set(), 0, set()
    for n, p in enumerate(flat):
        where = "panel %d (%s)" % (n, p.get("title", "?"))
        if not p.get("type") or not p.get("title"):
            problem(where, "a panel without type or title")
        if p.get("id") in ids:
            problem(where, "id %s twice" % p.get("id"))
        ids.add(p.get("id"))
        g = p.get("gridPos", {})
        if not all(isinstance(g.get(k), int) for k in "hwxy") or g["x"] + g["w"] > 24 or \
                g["w"] <= 0 or g["h"] <= 0:
            problem(where, "gridPos %r is not inside the 24 columns" % (g,))
        if p.get("type") == "row":
            continue
        if not ds_ok(p.get("datasource")):
            problem(where, "panel data source is not ${DS_PROMETHEUS}")
        targets = p.get("targets")
        if not isinstance(targets, list) or not targets:
            problem(where, "no targets")
            continue
        refids = [t.get("refId") for t in targets]
        if len(set(refids)) != len(refids) or not all(refids):
            problem(where, "refIds missing or not unique: %r" % refids)
        for t in targets:
            expr = t.get("expr")
            if not isinstance(expr, str) or not expr.strip():
                problem(where, "a target without expr")
                continue
            nexpr += 1
            check_expr(expr, "%s %s" % (where, t.get("refId")), metrics, used)

    for v in d.get("templating", {}).get("list", []):
        where = "variable %s" % v.get("name")
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        m = re.fullmatch(r"\s*label_values\(\s*(.+?)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*", q or "")
        if v.get("type") == "query":
            if not m:
                problem(where, "a query that is not label_values(METRIC, LABEL): %r" % q)
                continue
            check_expr(m.group(1), where, metrics, used)
            name = m.group(1).split("{")[0]
            if m.group(2) not in TARGET_LABELS and m.group(2) not in metrics.get(name, {}):
                problem(where, "metric %s has no label %s" % (name, m.group(2)))

    if problems:
        print("\n".join(problems))
        return 1
    print("%d panels, %d expressions, %d metrics; ok" % (len(flat), nexpr, len(used)))
    return 0


def grafana_vars(expr):
    return (expr.replace("$__rate_interval", "1m").replace("$__range", "1m")
            .replace("$instance", ".*"))


def prometheus(url, dash_path, only):
    import urllib.parse
    import urllib.request

    def get(path, params):
        q = urllib.parse.urlencode(params, doseq=True)
        with urllib.request.urlopen("%s%s?%s" % (url, path, q), timeout=10) as r:
            return json.load(r)

    d = json.load(open(dash_path, encoding="utf-8"))
    n = 0
    for p in d.get("panels", []):
        for t in p.get("targets", []):
            expr = grafana_vars(t.get("expr", ""))
            if only and not re.search(only, t.get("expr", "")):
                continue
            where = "%s %s" % (p.get("title"), t.get("refId"))
            n += 1
            try:
                res = get("/api/v1/query", {"query": expr})
            except Exception as e:  # HTTP 400: the expression is refused
                body = getattr(e, "read", lambda: b"")().decode(errors="replace")
                problem(where, "Prometheus refuses %r: %s %s" % (expr, e, body[:200]))
                continue
            if res.get("status") != "success":
                problem(where, "Prometheus: %r: %s" % (expr, res))
                continue
            series = res["data"]["result"] if res["data"]["resultType"] == "vector" else []
            if not series:
                problem(where, "no series for %r" % expr)
            if only:
                for x in series:
                    print("%s: %s %s" % (where, x["metric"], x["value"][1]))
    for v in d.get("templating", {}).get("list", []):
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        m = re.fullmatch(r"\s*label_values\(\s*(.+?)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*", q or "")
        if m and not only:
            res = get("/api/v1/label/%s/values" % m.group(2), {"match[]": m.group(1)})
            if not res.get("data"):
                problem("variable %s" % v.get("name"), "no values for %s" % q)
    if problems:
        print("\n".join(problems))
        return 1
    if not only:
        print("%d expressions evaluated by Prometheus; ok" % n)
    return 0


if __name__ == "__main__":
    if len(sys.argv) in (4, 5) and sys.argv[1] == "--prometheus":
        sys.exit(prometheus(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) == 5 else None))
    if len(sys.argv) != 3:
        print("usage: dashboard-check.py DASHBOARD.json METRICS.txt", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
