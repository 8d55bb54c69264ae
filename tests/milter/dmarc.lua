-- tests/milter/dmarc.lua - the dmarc check with spf and dkim, real DNS
-- needs: dns
--
-- Run by tests/dmarc.sh (keys, zones with DMARC and SPF records, messages
-- signed by libopendkim in $DKIM_DIR).  checks = spf, dkim, dmarc with
-- spf.fail in monitor, so that DMARC decides.  Asserts, with the one
-- Authentication-Results header parsed back strictly: a signed message
-- from a p=reject domain passes with spf, dkim and dmarc in ONE header
-- (dmarc=pass (p=reject sp=reject dis=none) header.from=rej.test); the
-- same message unsigned from another client is refused with 550 5.7.1
-- and the ref at end of DATA; SPF alignment alone passes (MAIL FROM of
-- the domain from its permitted address); p=quarantine scores
-- dmarc.quarantine and adds X-Portcullis-DMARC; p=none only reports; a
-- subdomain without its own record gets the organizational domain's sp=,
-- one with its own record its own p=; relaxed alignment passes a
-- signature of the parent domain, strict alignment does not (550); no
-- record is dmarc=none; two records is none; a broken p= is permerror;
-- no From: and an unparsable one are refused (dmarc.bad_from); two From:
-- fields or two addresses of different domains get the strictest policy
-- (one passing domain does not save the other); dmarc.mode = monitor
-- accepts the forgery and notes dmarc.reject; an incoming
-- Authentication-Results with our authserv-id is removed; "checks = dmarc,
-- dkim" is refused by portcullis -t; portcullisctl dmarc report prints the
-- aggregate XML (parsed back by python3) with one row per outcome and the
-- right counts and dispositions (monitor: none).

local t = dofile(libdir .. "/lib.lua")
local m = dofile(libdir .. "/msg.lua")(t)
local ar = dofile(libdir .. "/authres.lua")
local kdir = assert(os.getenv("DKIM_DIR"), "DKIM_DIR not set: run through tests/dmarc.sh")
local GOOD, OTHER = "192.0.2.20", "192.0.2.10"

local function send(file, label, from, ip)
	local hdrs, body = ar.load(t, kdir .. "/" .. file)
	return ar.send(t, label, hdrs, body, { from = from or "<bounce@nodmarc.test>", ip = ip or OTHER })
end

-- Accepted; the one Authentication-Results parsed; returns it.
local function accepted(file, label, from, ip)
	local e = send(file, label, from, ip)
	m.accepted(e, label)
	local all = ar.inserted(e, "Authentication-Results")
	t.eq(#all, 1, label .. ": one Authentication-Results")
	local r, err = ar.parse(all[1])
	t.check(r ~= nil, label .. ": parses strictly (" .. tostring(err) .. ") " .. t.show(all[1]))
	return r, e
end

local function dmarc_is(r, label, result, policy, dis, domain)
	local d = ar.of(r, "dmarc")
	t.eq(#d, 1, label .. ": one dmarc result")
	if d[1] then
		t.eq(d[1].result, result, label .. ": dmarc=" .. result)
		t.eq(d[1].props["header.from"], domain, label .. ": header.from")
		if policy then
			t.eq(d[1].comment, policy .. " dis=" .. dis, label .. ": policy comment")
		end
	end
end

local function refused(file, label, from, text)
	local e = send(file, label, from)
	local ref = t.raw_reply(e, "550", "5.7.1", text, label .. ": refused 550 5.7.1")
	local p = t.wait_txn("<" .. label .. "@example.test>")
	t.eq(p.ref, ref, label .. ": the reply's ref is the log line's")
	return p
end

local BASE = "checks = spf, dkim, dmarc\nspf.fail = monitor\nscore.reject = 50\nscore.tag = 4\n"

t.main(function()
	t.config(BASE)
	t.start()

	local r = accepted("signed.eml", "signed", "<bounce@nodmarc.test>")
	t.eq(#r.results, 3, "signed: spf, dkim and dmarc in one header")
	t.eq((ar.of(r, "spf")[1] or {}).result, "none", "signed: spf=none for nodmarc.test")
	t.eq((ar.of(r, "dkim")[1] or {}).result, "pass", "signed: dkim=pass")
	dmarc_is(r, "signed", "pass", "p=reject sp=reject", "none", "rej.test")
	t.eq(r.results[1].method, "spf", "signed: spf first")
	t.eq(r.results[3].method, "dmarc", "signed: dmarc last")

	local p = refused("forged.eml", "forged", "<x@nodmarc.test>",
		"Unauthenticated mail from rej.test is refused by the domain's DMARC policy")
	t.has(p.symbols or "", "dmarc.reject", "forged: logged as dmarc.reject")

	r = accepted("forged.eml", "spfaligned", "<bounce@rej.test>", GOOD)
	t.eq((ar.of(r, "spf")[1] or {}).result, "pass", "spfaligned: spf=pass")
	dmarc_is(r, "spfaligned", "pass", nil, nil, "rej.test")
	-- spf pass for another domain does not align
	refused("forged.eml", "spfother", "<bounce@none.test>", "DMARC policy")

	local e
	r, e = accepted("quar.eml", "quar")
	dmarc_is(r, "quar", "fail", "p=quarantine sp=quarantine", "quarantine", "quar.test")
	p = t.wait_txn("<quar@example.test>")
	t.has(p.symbols or "", "dmarc.quarantine", "quar: scored")
	t.eq(p.score, 5, "quar: dmarc.quarantine_score 5")
	t.eq(t.raw_header(e, "X-Portcullis-DMARC"), "quarantine header.from=quar.test",
		"quar: X-Portcullis-DMARC header")
	t.match(t.raw_header(e, "X-Portcullis-Status") or "", "^Yes, score=5%.0 tag=4%.0",
		"quar: score.tag decides: X-Portcullis-Status")

	r = accepted("none.eml", "none")
	dmarc_is(r, "none", "fail", "p=none sp=none", "none", "none.test")
	t.eq(t.wait_txn("<none@example.test>").score, 0, "none: no score")

	r = accepted("sub.eml", "sub")
	dmarc_is(r, "sub", "fail", "p=reject sp=quarantine", "quarantine", "a.sub.test")
	r = accepted("ownsub.eml", "ownsub")
	dmarc_is(r, "ownsub", "fail", "p=none sp=none", "none", "own.sub.test")

	r = accepted("relaxed.eml", "relaxed")
	dmarc_is(r, "relaxed", "pass", nil, nil, "mail.rel.test")
	refused("strict.eml", "strict", nil, "mail.strict.test")
	r = accepted("strict-exact.eml", "strictexact")
	dmarc_is(r, "strictexact", "pass", nil, nil, "strict.test")

	r = accepted("nodmarc.eml", "nodmarc")
	dmarc_is(r, "nodmarc", "none", nil, nil, "nodmarc.test")
	r = accepted("two.eml", "tworecords")
	dmarc_is(r, "tworecords", "none", nil, nil, "two.test")
	r = accepted("broken.eml", "broken")
	dmarc_is(r, "broken", "permerror", nil, nil, "broken.test")

	p = refused("nofrom.eml", "nofrom", nil, "one valid From: field")
	t.has(p.symbols or "", "dmarc.bad_from", "nofrom: dmarc.bad_from")
	p = refused("twofrom.eml", "twofrom", nil, "rej.test")
	t.has(p.symbols or "", "dmarc.reject", "twofrom: the strictest policy (rej.test) decides")
	refused("twoaddr.eml", "twoaddr", nil, "rej.test")

	-- forged Authentication-Results: removed by spf (first identity check)
	local fh, fb = ar.load(t, kdir .. "/signed.eml")
	table.insert(fh, 1, { "Authentication-Results", "MX.example.test; dmarc=pass header.from=rej.test" })
	e = ar.send(t, "forgedar", fh, fb, { from = "<bounce@nodmarc.test>" })
	m.accepted(e, "forgedar")
	local del = false
	for _, pk in ipairs(e.packets) do
		del = del or (pk.code == "m" and pk.data:sub(5):match("^Authentication%-Results%z") ~= nil)
	end
	t.check(del, "forgedar: ours removed")
	t.eq(#ar.inserted(e, "Authentication-Results"), 1, "forgedar: one of ours inserted")

	-- monitor first
	t.reconfig(BASE .. "dmarc.mode = monitor\n")
	e = send("forged.eml", "monitor", "<x@nodmarc.test>")
	m.accepted(e, "monitor: the forgery is accepted")
	p = t.wait_txn("<monitor@example.test>")
	t.has(p.monitor or "", "dmarc.reject", "monitor: noted as dmarc.reject")

	-- the aggregate report: the XML parsed by python3's XML parser
	local xmlout, st = t.ctl("dmarc report rej.test --since 1d")
	t.eq(st, 0, "dmarc report: exit 0")
	t.file("report.xml", xmlout)
	local pp0 = io.popen("python3 - " .. t.shq(t.dir .. "/report.xml") .. [[ 2>&1 <<'PY'
import sys, xml.dom.minidom as m
d = m.parse(sys.argv[1])
def tx(e, n):
    x = e.getElementsByTagName(n)
    return x[0].firstChild.data if x and x[0].firstChild else "-"
pp = d.getElementsByTagName("policy_published")[0]
print("policy", tx(pp, "domain"), tx(pp, "p"), tx(pp, "sp"), tx(pp, "adkim"), tx(pp, "pct"))
for r in d.getElementsByTagName("record"):
    dk = r.getElementsByTagName("dkim")
    print("row", tx(r, "source_ip"), tx(r, "disposition"),
          tx(r.getElementsByTagName("policy_evaluated")[0], "dkim"),
          tx(r.getElementsByTagName("policy_evaluated")[0], "spf"),
          tx(r, "header_from"), tx(r, "envelope_from"), tx(r, "count"))
PY]])
	local rows = pp0:read("a")
	pp0:close()
	t.has(rows, "policy rej.test reject reject r 100", "report: policy_published")
	t.has(rows, "row 192.0.2.10 none pass fail rej.test nodmarc.test 2",
		"report: the signed message (and the forged A-R one): dkim pass, disposition none")
	t.has(rows, "row 192.0.2.10 reject fail fail rej.test nodmarc.test 1",
		"report: the forgery refused")
	t.has(rows, "row 192.0.2.20 none fail pass rej.test rej.test 1", "report: SPF-aligned pass")
	t.has(rows, "row 192.0.2.10 none fail fail rej.test nodmarc.test 1",
		"report: the forgery in monitor mode: disposition none")
	t.hasnt(rows, "quar.test", "report: only the policy domain asked for")
	xmlout = t.ctl("dmarc report none.example --since 1h")
	t.has(xmlout, "<domain>none.example</domain>", "an empty report for a domain without data")
	local _, bst = t.ctl("dmarc report 'bad domain'")
	t.eq(bst, 2, "dmarc report: a bad domain is a usage error")

	-- dkim after dmarc is a configuration error
	local bad = t.file("bad.conf", "checks = dmarc, dkim\n")
	local pp = io.popen(t.shq(t.portcullis) .. " -t -c " .. t.shq(bad) .. " 2>&1")
	local out = pp:read("a")
	t.check(not pp:close(), "portcullis -t refuses dkim after dmarc")
	t.has(out, "dkim must come before dmarc", "the error says why")
end)
