-- tests/milter/dnsbl.lua - the dnsbl check against a real DNS server
-- needs: dns
--
-- Zones (tests/dns/): bla.test (several return codes, IPv6 entry), blb.test
-- (reject list; an answer outside 127/8), blallow.test (allow-list, dnswl
-- style), blrefused.test (answers 127.255.255.254 to everything),
-- blbroken.test (lists the whole world: fails the RFC 5782 self-test),
-- blnotest.test (no 2.0.0.127 entry: fails the self-test), bl.slow.test
-- (200 ms late through the fault proxy) and l1..l5.blfast.test.
-- Asserts: scores per site with filters and summed weights (symbols and
-- score in the log line), reject_sites with the exact reply text and the
-- log's ref, answers outside a filter or outside 127/8 never count, the
-- allow-list whitelists (and beats a reject) at dnsbl.allow_threshold,
-- IPv6 clients in nibble form, "query refused" answers disable the list
-- with one warning, lists failing their self-test never count, modes
-- monitor (X-Portcullis-Monitor), defer (450 4.7.1) and off, a partial DNS
-- failure (timeout + SERVFAIL through the proxy) ignores those lists, a
-- total failure applies on_error (defer: 451 4.4.3 with the reason; skip:
-- accepted), and six lists with one 200 ms late cost ~200 ms, not the sum.

local t = dofile(libdir .. "/lib.lua")
local now_ms = t.now_ms
local count = t.count

local SITES = "dnsbl.sites = bla.test=127.0.0.[2..3]*6, bla.test=127.0.0.[4..7]*4, " ..
	"blb.test*2, blallow.test=127.0.[0..255].[1..3]*-10, blrefused.test*5, " ..
	"blbroken.test*7, blnotest.test*8\n" ..
	"dnsbl.reject_sites = blb.test=127.0.0.2\n" ..
	"dnsbl.allow_threshold = -5\n"
local BASE = "checks = dnsbl\nscore.tag = 0\n"



-- One message from ip through miltertest; returns the conn (open, for
-- eom_check), the parsed log line and the milliseconds connect took.
local function message(label, ip, rcpt, want)
	local t0 = now_ms()
	local conn = t.connect { ip = ip, helo = "client.example.net" }
	t.eq(t.mail(conn, "<sender@example.net>"), "continue", label .. ": MAIL continue")
	local r = t.rcpt(conn, rcpt)
	-- connect to the RCPT reply: connect, HELO and MAIL get no reply of
	-- their own (SMFIP_NR_CONN/HELO/MAIL), the filter serves them in turn
	local ms = now_ms() - t0
	t.eq(r, want or "continue", label .. ": RCPT " .. (want or "continue"))
	if r == "continue" then
		t.eq(t.eom(conn), "continue", label .. ": accepted at EOM")
	else
		mt.abort(conn)
	end
	return conn, t.wait_txn(rcpt), ms
end

-- One message through the raw client (reply texts); returns the RCPT entry.
local function raw(ip, rcpt, family)
	local conn = { "conn", "client.example.net", ip }
	if family == "6" then
		conn = { "raw", "C", "client.example.net\0" .. "6" .. "\0\25" .. ip .. "\0" }
	end
	local res = t.raw { conn, { "helo", "client.example.net" },
		{ "mail", "<sender@example.net>" }, { "rcpt", rcpt }, { "quit" } }
	return res[4]
end

t.main(function()
	t.config(BASE .. SITES)
	t.start()
	local conn, p, e, ref

	-- scores: one code in the first filter of bla.test; the broken lists
	-- (self-test) and the refused list never count
	conn, p = message("score", "192.0.2.9", "<s01@example.test>")
	mt.disconnect(conn)
	t.eq(p.verdict, "accept", "score: accepted below score.reject")
	t.eq(p.symbols, "dnsbl.bla.test(6)", "score: symbols=dnsbl.bla.test(6) only")
	t.eq(p.score, 6, "score: score=6.0")
	local log = t.log()
	t.has(log, "dnsbl: client 192.0.2.9 listed: bla.test=127.0.0.3(+6)",
		"score: log names the list and the answer")
	t.has(log, "dnsbl: list blbroken.test failed its self-test (RFC 5782): " ..
		"1.0.0.127.blbroken.test is listed: list disabled until it passes",
		"self-test: a list that lists 127.0.0.1 is disabled with a warning")
	t.has(log, "dnsbl: list blnotest.test failed its self-test (RFC 5782): " ..
		"2.0.0.127.blnotest.test is not listed", "self-test: a list without 127.0.0.2 is disabled")
	t.has(log, "dnsbl: list blrefused.test answered 127.255.255.254 for ",
		"refused: warning names the list and the answer")
	t.has(log, "list disabled for 3600 s", "refused: the list is disabled for refused_disable")

	-- reject_sites: exact text and ref; bla.test adds 6+4 (two entries)
	e = raw("192.0.2.7", "<r01@example.test>")
	ref = t.raw_reply(e, "550", "5.7.1", "Client host 192.0.2.7 listed by blb.test (127.0.0.2) (ref ",
		"reject: 550 5.7.1 Client host 192.0.2.7 listed by blb.test (127.0.0.2)")
	p = t.wait_txn("<r01@example.test>")
	t.eq(p.ref, ref, "reject: the reply's ref is the log line's")
	t.has(p.line, "refused=<r01@example.test>:reject:dnsbl.blb.test", "reject: log refused= names the list")
	t.eq(p.symbols, "dnsbl.bla.test(10),dnsbl.blb.test(2),dnsbl.blb.test",
		"reject: symbols: weights of both bla.test entries summed, blb.test score and reject")
	t.has(t.log(), "portcullis: ref=" .. ref .. " dnsbl: client 192.0.2.7 listed: " ..
		"bla.test=127.0.0.2, 127.0.0.4(+10) blb.test=127.0.0.2(+2) blb.test=127.0.0.2(reject)",
		"reject: log line (made at connect) with all answers and the transaction's ref")

	-- answers outside the filters, or outside 127.0.0.0/8, never count
	conn, p = message("outside filter", "192.0.2.8", "<f01@example.test>")
	mt.disconnect(conn)
	t.eq(p.symbols, nil, "filter: 127.0.0.10 is in no filter of bla.test: no symbol")
	t.eq(p.score, 0, "filter: score 0")
	conn, p = message("outside 127/8", "192.0.2.66", "<f02@example.test>")
	mt.disconnect(conn)
	t.eq(p.symbols, nil, "filter: 10.0.0.1 from a list without filter never counts")

	-- the allow-list: -10 reaches allow_threshold -5 and whitelists
	conn, p = message("allow", "192.0.2.20", "<a01@example.test>")
	mt.disconnect(conn)
	t.eq(p.symbols, "dnsbl.blallow.test(-10),dnsbl.allow", "allow: negative score, then OK")
	t.eq(p.verdict, "accept", "allow: accepted")
	conn, p = message("allow outside filter", "192.0.2.21", "<a02@example.test>")
	mt.disconnect(conn)
	t.eq(p.symbols, nil, "allow: 127.0.10.0 (trust 0) is outside [1..3]: no symbol")
	-- listed by the reject list and by the allow-list: the whitelist wins
	conn, p = message("allow beats reject", "192.0.2.22", "<a03@example.test>")
	mt.disconnect(conn)
	t.eq(p.symbols, "dnsbl.blb.test(2),dnsbl.blb.test,dnsbl.blallow.test(-10),dnsbl.allow",
		"allow: reject noted, then whitelisted")
	t.eq(p.verdict, "accept", "allow: a whitelisted client is accepted despite reject_sites")

	-- IPv6 in nibble form
	e = raw("2001:db8::7", "<v601@example.test>", "6")
	t.eq(e and e.code, "c", "IPv6: RCPT continue")
	p = t.wait_txn("<v601@example.test>")
	t.has(p.line, "[2001:db8::7]", "IPv6: log names the client")
	t.eq(p.symbols, "dnsbl.bla.test(6)", "IPv6: listed by bla.test in nibble form")

	-- again: the disabled lists stay disabled (one warning each)
	conn, p = message("score again", "192.0.2.9", "<s02@example.test>")
	mt.disconnect(conn)
	t.eq(p.symbols, "dnsbl.bla.test(6)", "again: same symbols")
	log = t.log()
	t.eq(count(log, "list blrefused.test answered"), 1, "refused: the list is not asked again")
	t.eq(count(log, "list blbroken.test failed its self-test"), 1,
		"self-test: one warning while the list stays disabled")

	-- modes
	t.reconfig(BASE .. SITES .. "dnsbl.mode = monitor\n")
	conn, p = message("monitor", "192.0.2.7", "<m01@example.test>")
	t.eq(p.verdict, "accept", "monitor: accepted")
	t.eq(p.monitor, "dnsbl.bla.test(10),dnsbl.blb.test(2),dnsbl.blb.test", "monitor: log monitor=")
	t.check(mt.eom_check(conn, MT_HDRADD, "X-Portcullis-Monitor",
		"dnsbl.bla.test(10),dnsbl.blb.test(2),dnsbl.blb.test (ref " .. tostring(p.ref) .. ")"),
		"monitor: X-Portcullis-Monitor names the lists and the log's ref")
	mt.disconnect(conn)

	t.reconfig(BASE .. SITES .. "dnsbl.mode = defer\n")
	e = raw("192.0.2.7", "<d01@example.test>")
	ref = t.raw_reply(e, "450", "4.7.1", "Client host 192.0.2.7 listed by blb.test (127.0.0.2) (ref ",
		"defer: 450 4.7.1 with the list's text")
	p = t.wait_txn("<d01@example.test>")
	t.eq(p.ref, ref, "defer: the reply's ref is the log line's")
	t.has(p.line, "refused=<d01@example.test>:defer:dnsbl.blb.test", "defer: log defer")

	t.reconfig(BASE .. SITES .. "dnsbl.mode = off\n")
	conn, p = message("off", "192.0.2.7", "<o01@example.test>")
	mt.disconnect(conn)
	t.eq(p.symbols, nil, "off: nothing counted")

	-- DNS failures through the fault proxy
	local PROXY = "dns.resolver = 127.0.0.1:" .. tostring(dnsproxy) .. "\ndns.timeout_ms = 400\n"
	t.reconfig(BASE .. PROXY .. "dnsbl.sites = bla.test=127.0.0.[2..3]*6, bl.drop.test*5, " ..
		"bl.fail.test*5\ndnsbl.on_error = defer\n")
	conn, p = message("partial failure", "192.0.2.9", "<e01@example.test>")
	mt.disconnect(conn)
	t.eq(p.symbols, "dnsbl.bla.test(6)", "partial: the list that answered counts")
	t.has(t.log(), "dnsbl: client 192.0.2.9: lists ignored after lookup failure: " ..
		"bl.drop.test: timeout, bl.fail.test: servfail", "partial: failed lists logged and ignored")

	t.reconfig(BASE .. PROXY .. "dnsbl.sites = bl.drop.test*5, bl.fail.test*5\n" ..
		"dnsbl.on_error = defer\n")
	e = raw("192.0.2.9", "<e02@example.test>")
	ref = t.raw_reply(e, "451", "4.4.3", "DNS blocklist lookups for client host 192.0.2.9 " ..
		"failed (bl.drop.test: timeout, bl.fail.test: servfail) (ref ",
		"on_error=defer: 451 4.4.3 naming the failed lists")
	p = t.wait_txn("<e02@example.test>")
	t.eq(p.ref, ref, "on_error=defer: the reply's ref is the log line's")
	t.has(p.line, "refused=<e02@example.test>:defer:dnsbl.error", "on_error=defer: log dnsbl.error")
	t.has(t.log(), "dnsbl check failed: DNS blocklist lookups for client host 192.0.2.9 failed " ..
		"(bl.drop.test: timeout, bl.fail.test: servfail) (on_error=defer)",
		"on_error=defer: warning")

	t.reconfig(BASE .. PROXY .. "dnsbl.sites = bl.drop.test*5, bl.fail.test*5\n")
	conn, p = message("on_error skip", "192.0.2.9", "<e03@example.test>")
	mt.disconnect(conn)
	t.eq(p.verdict, "accept", "on_error=skip (default): accepted")
	t.eq(p.symbols, nil, "on_error=skip: no symbol")
	t.has(t.log(), "dnsbl check failed, skipped (on_error=skip; with defer the answer would be: " ..
		"DNS blocklist lookups for client host", "on_error=skip: warning says skipped")

	-- six lists in one batch, one 200 ms late: ~200 ms, not the sum
	t.reconfig(BASE .. "dns.resolver = 127.0.0.1:" .. tostring(dnsproxy) .. "\n" ..
		"dnsbl.sites = bl.slow.test, l1.blfast.test, l2.blfast.test, l3.blfast.test, " ..
		"l4.blfast.test, l5.blfast.test\n")
	local ms
	conn, p, ms = message("timing", "192.0.2.31", "<t01@example.test>")
	mt.disconnect(conn)
	print(string.format("# 6 lists (+ self-tests) in one batch, one 200 ms late: %d ms", ms))
	t.eq(p.symbols, "dnsbl.bl.slow.test(1),dnsbl.l1.blfast.test(1),dnsbl.l2.blfast.test(1)," ..
		"dnsbl.l3.blfast.test(1),dnsbl.l4.blfast.test(1),dnsbl.l5.blfast.test(1)",
		"timing: all six lists answered")
	t.check(ms >= 190 and ms < 1000, "timing: connect to RCPT took " .. ms .. " ms (>= 200, < 1000)")
end)
