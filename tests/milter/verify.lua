-- tests/milter/verify.lua - the verify check with next hops found by DNS
-- needs: dns
--
-- Zone: tests/dns/vrfy.test.zone (mail hosts on 127.0.0.1).  A scripted
-- SMTP server (tests/smtp-script.py, stopping by itself) listens on a
-- loopback port and knows known@snd.vrfy.test, known@implicit.vrfy.test
-- and alice@example.test.  Through the daemon:
--  - sender verification through the MX hosts of the sender domain (the
--    preferred one has no address: the next is used): unknown 550 5.1.7
--    at RCPT quoting the server, known passes;
--  - a domain without MX is probed at its own address (implicit MX);
--  - a null MX or a DNS failure (SERVFAIL from the fault proxy, which the
--    daemon uses as its resolver here) is no
--    answer: skipped by default, 450 4.1.7 with verify.sender_on_error =
--    defer;
--  - the null sender and senders of our own recipient domains are never
--    probed, nor the recipients of a transaction already refused;
--    verify.sender = score scores instead of refusing;
--  - recipient verification with a next hop given by name
--    (example.test=mx.vrfy.test:PORT: its A record, no MX).
-- The server's connection count shows which cases probed.

local t = dofile(libdir .. "/lib.lua")

local n = 0

local function case(label, o)
	n = n + 1
	local rcpt = o.rcpt or string.format("<v%02d@example.test>", n)
	-- a HELO of its own finds the case's summary line (probe lines name
	-- the addresses too)
	local helo = string.format("c%02d.example.net", n)
	local steps = { { "conn", "client.example.net", "192.0.2.10" }, { "helo", helo },
		{ "mail", o.from }, { "rcpt", rcpt } }
	if o.code == nil then
		steps[#steps + 1] = { "eom" }
	end
	steps[#steps + 1] = { "quit" }
	local res = t.raw(steps)
	local p = t.wait_txn("helo=<" .. helo .. ">")
	if o.code == nil then
		t.eq(res[4] and res[4].code, "c", label .. ": RCPT accepted")
	else
		local ref = t.raw_reply(res[4], o.code, o.xcode, o.text,
			label .. ": " .. o.code .. " " .. o.xcode .. " " .. o.text)
		t.eq(p.ref, ref, label .. ": the reply's ref is the log's")
	end
	if o.symbols then
		t.has(p.line or "", "symbols=" .. o.symbols, label .. ": symbols=" .. o.symbols)
	end
	return p
end

t.main(function()
	local portfile = t.dir .. "/smtp.port"
	local log = t.dir .. "/smtp.log"
	local script = libdir .. "/../smtp-script.py"
	t.check(os.execute("python3 " .. t.shq(script) .. " normal " ..
		"known@snd.vrfy.test,known@implicit.vrfy.test,alice@example.test --log " ..
		t.shq(log) .. " --life 80 >" .. t.shq(portfile) .. " 2>/dev/null & echo $! >" ..
		t.shq(t.dir .. "/smtp.pid")), "scripted server started")
	local port = t.poll(function()
		local s = t.read(portfile)
		return s and s:match("^(%d+)\n")
	end, 10)
	t.check(port ~= nil, "scripted server port")
	local function probes()
		return t.count(t.read(log) or "", "connect\n")
	end

	t.config("checks = verify\n" ..
		"verify.sender_domains = snd.vrfy.test=snd.vrfy.test:" .. port ..
		", implicit.vrfy.test=implicit.vrfy.test:" .. port ..
		", nullmx.vrfy.test=nullmx.vrfy.test:" .. port ..
		", x.vrfy.fail.test=x.vrfy.fail.test:" .. port .. ", example.test\n" ..
		"verify.recipient_domains = example.test=mx.vrfy.test:" .. port .. "\n" ..
		"verify.timeout = 5s\n" ..
		"dns.resolver = 127.0.0.1:" .. dnsproxy .. "\n" ..
		"score.reject = 0\nscore.tag = 0")
	t.start()

	case("unknown sender by MX", { from = "<nobody@snd.vrfy.test>", rcpt = "<alice@example.test>",
		code = "550", xcode = "5.1.7",
		text = "Sender address <nobody@snd.vrfy.test> rejected: unverified address: [127.0.0.1] said: 550 5.1.1 <nobody@snd.vrfy.test>: Recipient address rejected: User unknown",
		symbols = "verify.sender" })
	local after = probes()
	t.eq(after, 1, "unknown sender: one probe, none for the recipient of a refused transaction")
	case("known sender by MX", { from = "<known@snd.vrfy.test>", rcpt = "<alice@example.test>" })
	t.eq(probes(), after + 2, "known sender: one probe for the sender, one for the recipient")
	case("implicit MX", { from = "<nobody@implicit.vrfy.test>", rcpt = "<alice@example.test>",
		code = "550", xcode = "5.1.7", text = "User unknown" })
	case("implicit MX, known", { from = "<known@implicit.vrfy.test>", rcpt = "<alice@example.test>" })
	local before = probes()
	local p = case("null MX: skipped", { from = "<a@nullmx.vrfy.test>", rcpt = "<alice@example.test>" })
	t.check((t.log()):find("verify: sender <a@nullmx.vrfy.test> unknown, skipped: nullmx.vrfy.test has a null MX", 1, true) ~= nil,
		"null MX: logged")
	case("DNS failure: skipped", { from = "<a@x.vrfy.fail.test>", rcpt = "<alice@example.test>" })
	t.check((t.log()):find("verify: sender <a@x.vrfy.fail.test> unknown, skipped: MX lookup of x.vrfy.fail.test: servfail", 1, true) ~= nil,
		"DNS failure: logged")
	case("null sender: no probe", { from = "<>", rcpt = "<alice@example.test>" })
	case("own domain: no probe", { from = "<bob@example.test>", rcpt = "<alice@example.test>" })
	t.eq(probes(), before, "null MX, DNS failure, null sender, own domain: no probe")
	case("unknown recipient by name", { from = "<>", rcpt = "<zed@example.test>",
		code = "550", xcode = "5.1.1", text = "User unknown", symbols = "verify.recipient" })
	t.eq(probes(), before + 1, "unknown recipient: one probe")

	-- defer on a sender probe without answer; score instead of refuse
	t.reconfig("checks = verify\n" ..
		"verify.sender_domains = snd.vrfy.test=snd.vrfy.test:" .. port ..
		", x.vrfy.fail.test=x.vrfy.fail.test:" .. port .. "\n" ..
		"verify.sender_on_error = defer\n" ..
		"verify.sender = score\nverify.sender_score = 3.5\n" ..
		"dns.resolver = 127.0.0.1:" .. dnsproxy .. "\n" ..
		"score.reject = 0\nscore.tag = 0")
	case("DNS failure: defer", { from = "<b@x.vrfy.fail.test>", code = "450", xcode = "4.1.7",
		text = "Sender address <b@x.vrfy.fail.test> deferred: address verification failed (MX lookup of x.vrfy.fail.test: servfail)" })
	p = case("score", { from = "<nobody@snd.vrfy.test>" })
	t.has(p.line or "", "score=3.5", "score: the unknown sender scores 3.5")
	t.has(p.line or "", "verify.sender", "score: symbol verify.sender")
	t.eq(t.count(t.read(log) or "", "DATA\n"), 0, "no probe sent DATA")
	os.execute("kill $(cat " .. t.shq(t.dir .. "/smtp.pid") .. ") 2>/dev/null")
end)
