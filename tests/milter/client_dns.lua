-- tests/milter/client_dns.lua - client_dns (FCrDNS, HELO name) through the daemon
-- needs: dns
--
-- Zones: tests/dns/sndc.test.zone, 53.18.198.in-addr.arpa.zone,
-- d.4.e.5.8.b.d.0.1.0.0.2.ip6.arpa.zone.  By default the sub-checks only
-- score: a confirmed client (IPv4, IPv6, IPv4-mapped, or confirmed by its
-- second PTR name) scores nothing; no PTR scores 3, a PTR name that points
-- elsewhere or does not exist 2 (also when only the 11th of 11 names would
-- confirm: at most 10 are followed), a HELO name that does not exist or
-- points elsewhere 1; address literals and non-FQDN HELOs are left alone.
-- Scores add up to score.reject (550 5.7.1 "Message scored ...").  With
-- reloads: no_ptr_reject = yes gives 550 5.7.25 (450 4.7.25 in defer
-- mode); module and sub-check monitor modes add X-Portcullis-Monitor; off
-- silences.  on_error: PTR names whose lookups SERVFAIL or time out (fault
-- proxy), a HELO name that SERVFAILs or times out, and a PTR lookup that
-- times out (a resolver port where nothing answers) are skipped by default
-- with a warning, and deferred with on_error = defer (450 4.7.25 / 450
-- 4.7.1, with the text and the ref).

local t = dofile(libdir .. "/lib.lua")
local header = t.raw_header

local n = 0


-- One transaction over the raw client from o.ip with HELO o.helo (default
-- the address literal, which client_dns leaves alone).  o.code/xcode/text/
-- symbol: the expected RCPT reply (nil: accepted); o.symbols, o.score,
-- o.monitor: the log's.  Returns the parsed log line.
local function case(label, o)
	n = n + 1
	local rcpt = string.format("<cd%02d@example.test>", n)
	local steps = { { "conn", "client.example.net", o.ip }, { "helo", o.helo or "[" .. o.ip .. "]" },
		{ "mail", "<u@example.net>" }, { "rcpt", rcpt } }
	if o.code == nil then
		steps[#steps + 1] = { "eom" }
	end
	steps[#steps + 1] = { "quit" }
	local res = t.raw(steps)
	local p = t.wait_txn(rcpt)
	if o.code == nil then
		t.eq(res[4] and res[4].code, "c", label .. ": RCPT accepted")
		t.eq(p.verdict, "accept", label .. ": log verdict=accept")
		local mon = header(res[5], "X-Portcullis-Monitor")
		t.eq(mon, o.monitor and (o.monitor .. " (ref " .. tostring(p.ref) .. ")") or nil,
			label .. ": X-Portcullis-Monitor " .. tostring(o.monitor))
	else
		local ref = t.raw_reply(res[4], o.code, o.xcode, o.text,
			label .. ": " .. o.code .. " " .. o.xcode .. " " .. o.text)
		t.eq(p.ref, ref, label .. ": the reply's ref is the log's")
		local how = o.code:sub(1, 1) == "5" and "reject" or "defer"
		t.has(p.line, "refused=" .. rcpt .. ":" .. how .. ":" .. o.symbol,
			label .. ": log refused=" .. rcpt .. ":" .. how .. ":" .. o.symbol)
	end
	t.eq(p.symbols, o.symbols, label .. ": log symbols=" .. tostring(o.symbols))
	t.eq(p.monitor, o.monitor, label .. ": log monitor=" .. tostring(o.monitor))
	if o.score then
		t.eq(p.score, o.score, label .. ": log score=" .. o.score)
	end
	return p
end

-- The warning of a failed check at connect or HELO carries the ref of the
-- connection's transaction (p.ref of its log line); with on_error=skip it
-- says "skipped" (the reason is what a deferral would have answered).
local function warned(p, text, onerr, label)
	local want = "ref=" .. tostring(p and p.ref) .. " client_dns check failed" ..
		(onerr == "skip" and ", skipped (on_error=skip; with defer the answer would be: " ..
		text .. ")" or ": " .. text .. " (on_error=" .. onerr .. ")")
	local ok = t.poll(function()
		return t.log():find(want, 1, true) ~= nil
	end, 2)
	if not ok then
		print("#   missing warning: " .. t.show(want))
	end
	t.check(ok, label .. ": warning with the ref: '" .. want .. "'")
end

t.main(function()
	local base = "checks = client_dns\n"
	t.config(base)
	t.start()
	local p

	-- FCrDNS
	case("confirmed", { ip = "198.18.53.10", score = 0 })
	case("no PTR", { ip = "198.18.53.11", symbols = "client_dns.no_ptr(3)", score = 3 })
	case("PTR name points elsewhere", { ip = "198.18.53.12",
		symbols = "client_dns.ptr_mismatch(2)", score = 2 })
	case("PTR name does not exist", { ip = "198.18.53.13",
		symbols = "client_dns.ptr_mismatch(2)" })
	case("second PTR name confirms", { ip = "198.18.53.14" })
	case("only the 11th PTR name would confirm", { ip = "198.18.53.17",
		symbols = "client_dns.ptr_mismatch(2)" })

	-- IPv6 and IPv4-mapped clients (miltertest: the raw client is IPv4 only)
	local function mtcase(label, ip, helo, rcpt, symbols)
		local conn = t.connect { ip = ip, helo = helo }
		t.eq(t.mail(conn, "<u@example.net>"), "continue", label .. ": MAIL")
		t.eq(t.rcpt(conn, rcpt), "continue", label .. ": RCPT accepted")
		t.eq(t.eom(conn), "continue", label .. ": EOM accepted")
		mt.disconnect(conn)
		p = t.wait_txn(rcpt)
		t.eq(p.symbols, symbols, label .. ": log symbols=" .. tostring(symbols))
	end
	mtcase("IPv6 confirmed, HELO matches", "2001:db8:5e4d::25", "v6.sndc.test",
		"<cd6a@example.test>", nil)
	mtcase("IPv6 HELO with only an A record", "2001:db8:5e4d::25", "good.sndc.test",
		"<cd6b@example.test>", "client_dns.helo_mismatch(1)")
	mtcase("IPv6 without PTR", "2001:db8:5e4d::26", "v6.sndc.test", "<cd6c@example.test>",
		"client_dns.no_ptr(3),client_dns.helo_mismatch(1)")
	mtcase("IPv4-mapped IPv6 confirmed", "::ffff:198.18.53.10", "good.sndc.test",
		"<cd6d@example.test>", nil)

	-- HELO name
	case("HELO resolves to the client", { ip = "198.18.53.10", helo = "good.sndc.test" })
	case("HELO resolves to the client (trailing dot)", { ip = "198.18.53.10",
		helo = "good.sndc.test." })
	case("HELO points elsewhere", { ip = "198.18.53.10", helo = "wrong.sndc.test",
		symbols = "client_dns.helo_mismatch(1)", score = 1 })
	case("HELO does not exist", { ip = "198.18.53.10", helo = "nx.sndc.test",
		symbols = "client_dns.helo_mismatch(1)" })
	case("HELO not fully qualified: left to helo", { ip = "198.18.53.10", helo = "mycomputer" })
	case("HELO bare address: left to helo", { ip = "198.18.53.10", helo = "198.18.53.99" })
	case("no PTR and HELO mismatch add up", { ip = "198.18.53.11", helo = "wrong.sndc.test",
		symbols = "client_dns.no_ptr(3),client_dns.helo_mismatch(1)", score = 4 })

	-- scores reach score.reject
	t.reconfig(base .. "client_dns.no_ptr_score = 9\n")
	p = case("scores reach score.reject", { ip = "198.18.53.11", helo = "wrong.sndc.test",
		code = "550", xcode = "5.7.1", text = "Message scored 10.0, threshold 10.0 (ref ",
		symbol = "score.reject", symbols = "client_dns.no_ptr(9),client_dns.helo_mismatch(1)",
		score = 10 })

	-- reject mode for no_ptr; module defer mode
	t.reconfig(base .. "client_dns.no_ptr_reject = yes\n")
	case("no_ptr_reject", { ip = "198.18.53.11", code = "550", xcode = "5.7.25",
		text = "Client host [198.18.53.11] rejected: no PTR (reverse DNS) record for your " ..
		"address (ref ", symbol = "client_dns.no_ptr", symbols = "client_dns.no_ptr" })
	case("no_ptr_reject: a mismatch still only scores", { ip = "198.18.53.12",
		symbols = "client_dns.ptr_mismatch(2)" })
	t.reconfig(base .. "client_dns.no_ptr_reject = yes\nclient_dns.mode = defer\n")
	case("no_ptr_reject in defer mode", { ip = "198.18.53.11", code = "450", xcode = "4.7.25",
		text = "Client host [198.18.53.11] rejected: no PTR (reverse DNS) record for your " ..
		"address (ref ", symbol = "client_dns.no_ptr", symbols = "client_dns.no_ptr" })

	-- monitor and off
	t.reconfig(base .. "client_dns.mode = monitor\n")
	case("module monitor", { ip = "198.18.53.11", helo = "wrong.sndc.test", score = 0,
		monitor = "client_dns.no_ptr(3),client_dns.helo_mismatch(1)" })
	t.reconfig(base .. "client_dns.no_ptr = monitor\nclient_dns.ptr_mismatch = off\n" ..
		"client_dns.helo_mismatch_score = 2.5\n")
	case("no_ptr = monitor", { ip = "198.18.53.11", helo = "wrong.sndc.test",
		monitor = "client_dns.no_ptr(3)", symbols = "client_dns.helo_mismatch(2.5)", score = 2.5 })
	case("ptr_mismatch = off", { ip = "198.18.53.12" })

	-- on_error through the fault proxy: PTR names under fail.test /
	-- drop.test, HELO names likewise
	local proxy = "dns.resolver = 127.0.0.1:" .. dnsproxy .. "\ndns.timeout_ms = 300\n"
	t.reconfig(base .. proxy)
	case("proxy: confirmed client", { ip = "198.18.53.10", helo = "good.sndc.test" })
	p = case("PTR name SERVFAIL, on_error=skip (default)", { ip = "198.18.53.15" })
	warned(p, "Cannot verify the reverse DNS of client [198.18.53.15]: address lookup of its " ..
		"PTR names failed", "skip", "PTR name SERVFAIL")
	p = case("PTR name timeout, on_error=skip", { ip = "198.18.53.16" })
	warned(p, "Cannot verify the reverse DNS of client [198.18.53.16]: address lookup of its " ..
		"PTR names failed", "skip", "PTR name timeout")
	p = case("HELO SERVFAIL, on_error=skip", { ip = "198.18.53.10", helo = "h.sndc.fail.test" })
	warned(p, "Cannot look up HELO name h.sndc.fail.test: DNS lookup failed (servfail)", "skip",
		"HELO SERVFAIL")
	p = case("HELO timeout, on_error=skip", { ip = "198.18.53.10", helo = "h.sndc.drop.test" })
	warned(p, "Cannot look up HELO name h.sndc.drop.test: DNS lookup failed (timeout)", "skip",
		"HELO timeout")

	t.reconfig(base .. proxy .. "client_dns.on_error = defer\n")
	case("PTR name SERVFAIL, on_error=defer", { ip = "198.18.53.15", code = "450",
		xcode = "4.7.25", text = "Cannot verify the reverse DNS of client [198.18.53.15]: " ..
		"address lookup of its PTR names failed (ref ", symbol = "client_dns.error",
		symbols = "client_dns.error" })
	case("PTR name timeout, on_error=defer", { ip = "198.18.53.16", code = "450",
		xcode = "4.7.25", text = "address lookup of its PTR names failed (ref ",
		symbol = "client_dns.error", symbols = "client_dns.error" })
	case("HELO SERVFAIL, on_error=defer", { ip = "198.18.53.10", helo = "h.sndc.fail.test",
		code = "450", xcode = "4.7.1", text = "Cannot look up HELO name h.sndc.fail.test: " ..
		"DNS lookup failed (servfail) (ref ", symbol = "client_dns.error",
		symbols = "client_dns.error" })
	case("HELO timeout, on_error=defer", { ip = "198.18.53.10", helo = "h.sndc.drop.test",
		code = "450", xcode = "4.7.1", text = "Cannot look up HELO name h.sndc.drop.test: " ..
		"DNS lookup failed (timeout) (ref ", symbol = "client_dns.error",
		symbols = "client_dns.error" })
	case("on_error=defer: a confirmed client passes", { ip = "198.18.53.10",
		helo = "good.sndc.test" })

	-- the PTR lookup itself failing: a resolver port where nothing answers
	local f = io.popen("perl -MIO::Socket::INET -e '$s = IO::Socket::INET->new(Proto => " ..
		"\"udp\", LocalAddr => \"127.0.0.1\") or die; print $s->sockport' 2>&1")
	local dead = f:read("a")
	f:close()
	if not dead:match("^%d+$") then
		t.fail("found a free UDP port: " .. t.show(dead))
		return
	end
	t.reconfig(base .. "dns.resolver = 127.0.0.1:" .. dead .. "\ndns.timeout_ms = 200\n")
	p = case("PTR timeout, on_error=skip", { ip = "198.18.53.10" })
	warned(p, "Cannot verify the reverse DNS of client [198.18.53.10]: PTR lookup failed " ..
		"(timeout)", "skip", "PTR timeout")
	t.reconfig(base .. "dns.resolver = 127.0.0.1:" .. dead .. "\ndns.timeout_ms = 200\n" ..
		"client_dns.on_error = defer\n")
	case("PTR timeout, on_error=defer", { ip = "198.18.53.10", code = "450", xcode = "4.7.25",
		text = "Cannot verify the reverse DNS of client [198.18.53.10]: PTR lookup failed " ..
		"(timeout) (ref ", symbol = "client_dns.error", symbols = "client_dns.error" })
end)
