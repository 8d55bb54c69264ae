-- tests/milter/rhsbl.lua - the rhsbl check against a real DNS server
-- needs: dns
--
-- Zones (tests/dns/): bld.test (a domain list in the style of
-- dbl.spamhaus.org: 127.0.1.2 spam, 127.0.1.4 phish, 127.0.1.102 abused
-- legit, one answer outside 127/8; TEST listed, INVALID not), blrefused.test
-- (127.255.255.254 to everything), blnotest.test (no TEST entry),
-- blbroken.test (lists every name), bl.slow.test (200 ms late through the
-- fault proxy) and l1..l5.blfast.test.
-- Asserts: sender domain and HELO name scores (symbols rhsbl.sender.SITE /
-- rhsbl.helo.SITE), reject_sites for both with exact reply texts and the
-- log's ref, filters (answers outside never count), the null sender,
-- address literals, bare IPs and non-FQDN HELO names are never looked up,
-- "query refused" disables the list with a warning, the RFC 5782 section 5
-- self-test (when enabled) disables a list without its TEST entry, modes
-- monitor / defer / off, on_error defer (451 4.4.3) and skip for timeouts
-- and SERVFAIL through the proxy, a partial failure ignores the failed
-- lists, and six lists with one 200 ms late cost ~200 ms at MAIL.

local t = dofile(libdir .. "/lib.lua")
local now_ms = t.now_ms

local SITES = "rhsbl.sender_sites = bld.test=127.0.1.[2..99]*6, blrefused.test*5, " ..
	"blnotest.test*4\n" ..
	"rhsbl.helo_sites = bld.test=127.0.1.[2..99]*3\n" ..
	"rhsbl.reject_sites = bld.test=127.0.1.4\n" ..
	"rhsbl.selftest_interval = 1h\n"
local BASE = "checks = rhsbl\nscore.tag = 0\n"


-- One message; returns the parsed log line and the milliseconds MAIL took.
local function message(label, helo, from, rcpt, want)
	local conn = t.connect { helo = helo }
	local t0 = now_ms()
	t.eq(t.mail(conn, from), "continue", label .. ": MAIL continue")
	local r = t.rcpt(conn, rcpt)
	-- MAIL to the RCPT reply: MAIL gets no reply of its own (SMFIP_NR_MAIL)
	local ms = now_ms() - t0
	t.eq(r, want or "continue", label .. ": RCPT " .. (want or "continue"))
	if r == "continue" then
		t.eq(t.eom(conn), "continue", label .. ": accepted at EOM")
	else
		mt.abort(conn)
	end
	mt.disconnect(conn)
	return t.wait_txn(rcpt), ms
end

local function raw(helo, from, rcpt)
	local res = t.raw { { "conn", "client.example.net", "192.0.2.10" }, { "helo", helo },
		{ "mail", from }, { "rcpt", rcpt }, { "quit" } }
	return res[4]
end

t.main(function()
	t.config(BASE .. SITES)
	t.start()
	local p, e, ref, ms, log

	-- sender domain scored; the refused list and the list failing its
	-- self-test never count
	p = message("sender score", "client.example.net", "<a@spam.example.test>",
		"<s01@example.test>")
	t.eq(p.symbols, "rhsbl.sender.bld.test(6)", "sender: symbols=rhsbl.sender.bld.test(6)")
	t.eq(p.score, 6, "sender: score=6.0")
	log = t.log()
	t.has(log, "rhsbl: sender domain spam.example.test listed: bld.test=127.0.1.2(+6)",
		"sender: log names the domain, the list and the answer")
	t.has(log, "rhsbl: list blrefused.test answered 127.255.255.254 for ",
		"refused: warning names the list and the answer")
	t.has(log, "rhsbl: list blnotest.test failed its self-test (RFC 5782): " ..
		"test.blnotest.test is not listed: list disabled until it passes",
		"self-test: a list without its TEST entry is disabled")
	t.hasnt(log, "list bld.test failed", "self-test: bld.test passes (TEST listed, INVALID not)")
	p = message("self-test failed list", "client.example.net", "<a@bad.example.test>",
		"<s02@example.test>")
	t.eq(p.symbols, nil, "self-test: blnotest.test's entry for bad.example.test never counts")

	-- reject_sites for the sender: exact text and ref
	e = raw("client.example.net", "<a@phish.example.test>", "<r01@example.test>")
	ref = t.raw_reply(e, "550", "5.7.1",
		"Sender domain phish.example.test listed by bld.test (127.0.1.4) (ref ",
		"sender reject: 550 5.7.1 Sender domain phish.example.test listed by bld.test (127.0.1.4)")
	p = t.wait_txn("<r01@example.test>")
	t.eq(p.ref, ref, "sender reject: the reply's ref is the log line's")
	t.has(p.line, "refused=<r01@example.test>:reject:rhsbl.sender.bld.test",
		"sender reject: log refused=")
	t.eq(p.symbols, "rhsbl.sender.bld.test(6),rhsbl.sender.bld.test",
		"sender reject: score entry and reject entry both fired")

	-- filters
	p = message("outside filter", "client.example.net", "<a@abused.example.test>",
		"<f01@example.test>")
	t.eq(p.symbols, nil, "filter: 127.0.1.102 is outside [2..99]: no symbol")
	p = message("outside 127/8", "client.example.net", "<a@odd.example.test>",
		"<f02@example.test>")
	t.eq(p.symbols, nil, "filter: 192.0.2.1 never counts")

	-- HELO name: score and reject
	p = message("helo score", "badhelo.example.test", "<a@example.net>", "<h01@example.test>")
	t.eq(p.symbols, "rhsbl.helo.bld.test(3)", "helo: symbols=rhsbl.helo.bld.test(3)")
	t.has(t.log(), "portcullis: ref=" .. p.ref .. " rhsbl: HELO name badhelo.example.test " ..
		"listed: bld.test=127.0.1.2(+3)", "helo: log line (made at HELO) with the transaction's ref")
	e = raw("phish.example.test", "<a@example.net>", "<h02@example.test>")
	ref = t.raw_reply(e, "550", "5.7.1",
		"HELO name phish.example.test listed by bld.test (127.0.1.4) (ref ",
		"helo reject: 550 5.7.1 HELO name phish.example.test listed by bld.test (127.0.1.4)")
	p = t.wait_txn("<h02@example.test>")
	t.eq(p.ref, ref, "helo reject: ref matches the log")
	t.has(p.line, "refused=<h02@example.test>:reject:rhsbl.helo.bld.test", "helo reject: log")
	-- a trailing dot and upper case are the same name
	p = message("helo case", "BadHelo.Example.Test.", "<a@example.net>", "<h03@example.test>")
	t.eq(p.symbols, "rhsbl.helo.bld.test(3)", "helo: case and trailing dot normalised")

	-- what is never looked up: a list that lists every name shows it
	t.reconfig(BASE .. "rhsbl.sender_sites = blbroken.test\nrhsbl.helo_sites = blbroken.test\n")
	p = message("control", "host.example.net", "<a@example.net>", "<k01@example.test>")
	t.eq(p.symbols, "rhsbl.helo.blbroken.test(1),rhsbl.sender.blbroken.test(1)",
		"skip: control: both names are looked up (self-test off by default)")
	p = message("null sender", "[192.0.2.10]", "<>", "<k02@example.test>")
	t.eq(p.symbols, nil, "skip: the null sender and a HELO address literal are not looked up")
	p = message("literal sender", "192.0.2.10", "<a@[192.0.2.1]>", "<k03@example.test>")
	t.eq(p.symbols, nil, "skip: a sender address literal and a bare IP HELO are not looked up")
	p = message("non-fqdn", "localhost", "<a@localhost>", "<k04@example.test>")
	t.eq(p.symbols, nil, "skip: names without a dot are not looked up")

	-- modes
	t.reconfig(BASE .. SITES .. "rhsbl.mode = monitor\n")
	p = message("monitor", "client.example.net", "<a@phish.example.test>", "<m01@example.test>")
	t.eq(p.verdict, "accept", "monitor: accepted")
	t.eq(p.monitor, "rhsbl.sender.bld.test(6),rhsbl.sender.bld.test", "monitor: log monitor=")
	t.reconfig(BASE .. SITES .. "rhsbl.mode = defer\n")
	e = raw("client.example.net", "<a@phish.example.test>", "<d01@example.test>")
	ref = t.raw_reply(e, "450", "4.7.1",
		"Sender domain phish.example.test listed by bld.test (127.0.1.4) (ref ",
		"defer: 450 4.7.1 with the list's text")
	t.eq(t.wait_txn("<d01@example.test>").ref, ref, "defer: ref matches the log")
	t.reconfig(BASE .. SITES .. "rhsbl.mode = off\n")
	p = message("off", "client.example.net", "<a@phish.example.test>", "<o01@example.test>")
	t.eq(p.symbols, nil, "off: nothing counted")

	-- DNS failures through the fault proxy
	local PROXY = "dns.resolver = 127.0.0.1:" .. tostring(dnsproxy) .. "\ndns.timeout_ms = 400\n"
	t.reconfig(BASE .. PROXY .. "rhsbl.sender_sites = bld.test*6, bl.drop.test, bl.fail.test\n")
	p = message("partial failure", "client.example.net", "<a@spam.example.test>",
		"<e01@example.test>")
	t.eq(p.symbols, "rhsbl.sender.bld.test(6)", "partial: the list that answered counts")
	t.has(t.log(), "rhsbl: sender domain spam.example.test: lists ignored after lookup failure: " ..
		"bl.drop.test: timeout, bl.fail.test: servfail", "partial: failed lists logged")
	t.reconfig(BASE .. PROXY .. "rhsbl.sender_sites = bl.drop.test, bl.fail.test\n" ..
		"rhsbl.on_error = defer\n")
	e = raw("client.example.net", "<a@spam.example.test>", "<e02@example.test>")
	ref = t.raw_reply(e, "451", "4.4.3", "Domain blocklist lookups for sender domain " ..
		"spam.example.test failed (bl.drop.test: timeout, bl.fail.test: servfail) (ref ",
		"on_error=defer: 451 4.4.3 naming the failed lists")
	p = t.wait_txn("<e02@example.test>")
	t.eq(p.ref, ref, "on_error=defer: ref matches the log")
	t.has(p.line, "refused=<e02@example.test>:defer:rhsbl.error", "on_error=defer: log rhsbl.error")
	t.has(t.log(), "rhsbl check failed: Domain blocklist lookups for sender domain " ..
		"spam.example.test failed (bl.drop.test: timeout, bl.fail.test: servfail) (on_error=defer)",
		"on_error=defer: warning with the ref")
	t.reconfig(BASE .. PROXY .. "rhsbl.sender_sites = bl.drop.test, bl.fail.test\n")
	p = message("on_error skip", "client.example.net", "<a@spam.example.test>",
		"<e03@example.test>")
	t.eq(p.verdict, "accept", "on_error=skip (default): accepted")
	t.has(t.log(), "rhsbl check failed, skipped (on_error=skip; with defer the answer would be: " ..
		"Domain blocklist lookups for sender domain spam.example.test failed (bl.drop.test: " ..
		"timeout, bl.fail.test: servfail))", "on_error=skip: warning says skipped")

	-- six lists in one batch at MAIL, one 200 ms late: ~200 ms, not the sum
	t.reconfig(BASE .. "dns.resolver = 127.0.0.1:" .. tostring(dnsproxy) .. "\n" ..
		"rhsbl.sender_sites = bl.slow.test, l1.blfast.test, l2.blfast.test, l3.blfast.test, " ..
		"l4.blfast.test, l5.blfast.test\nrhsbl.selftest_interval = 1h\n")
	p, ms = message("timing", "client.example.net", "<a@slow.example.test>", "<t01@example.test>")
	print(string.format("# 6 lists (+ self-tests) in one batch, one 200 ms late: %d ms", ms))
	t.eq(p.symbols, "rhsbl.sender.bl.slow.test(1),rhsbl.sender.l1.blfast.test(1)," ..
		"rhsbl.sender.l2.blfast.test(1),rhsbl.sender.l3.blfast.test(1)," ..
		"rhsbl.sender.l4.blfast.test(1),rhsbl.sender.l5.blfast.test(1)",
		"timing: all six lists answered")
	t.check(ms >= 190 and ms < 1000, "timing: MAIL to RCPT took " .. ms .. " ms (>= 200, < 1000)")
end)
