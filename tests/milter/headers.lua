-- tests/milter/headers.lua - the headers check (header plausibility)
--
-- The daemon's clock is set by the test (t.clock): a Date 24 h ahead
-- passes, 26 h ahead scores date_future, 31 days old scores date_past; an
-- unparsable Date, a missing Date and Message-ID, a malformed Message-ID,
-- an unparsable From score their sub-checks (the log names them); a
-- message without From and one with two Subject fields are refused at end
-- of DATA with 550 5.7.1 and a ref (headers.refuse); raw 8-bit text in a
-- Subject scores eightbit unless MAIL FROM said SMTPUTF8; a sub-check in
-- monitor mode only notes; headers.refuse can move a sub-check to
-- refusing; a bad headers.refuse entry is refused by portcullis -t.

local t = dofile(libdir .. "/lib.lua")
local m = dofile(libdir .. "/msg.lua")(t)

-- 2026-12-01 12:00:00 UTC
local NOW = 1796126400

local function date_at(epoch)
	return os.date("!%a, %d %b %Y %H:%M:%S +0000", epoch)
end

-- A message with the usual fields; over: {name, value} pairs replacing
-- (value false: dropping) or adding fields.
local function hdrs(label, over)
	local h = {
		{ "From", "Sender <sender@example.net>" }, { "To", "rcpt@example.test" },
		{ "Date", date_at(NOW - 60) }, { "Message-ID", "<" .. label .. ".1@example.net>" },
		{ "Subject", "test " .. label },
	}
	for _, o in ipairs(over or {}) do
		local done = false
		for i, x in ipairs(h) do
			if x[1] == o[1] and not done and not o.add then
				h[i] = { o[1], o[2] }
				done = true
			end
		end
		if not done then
			h[#h + 1] = { o[1], o[2] }
		end
	end
	local out = {}
	for _, x in ipairs(h) do
		if x[2] then
			out[#out + 1] = x
		end
	end
	return out
end

-- Like msg.lua's send, with the ESMTP parameters of MAIL FROM.
local function send(label, headers, mailparams)
	local steps = {
		{ "conn", "client.example.net", "192.0.2.10" }, { "helo", "client.example.net" },
		{ "raw", "M", "<sender@example.net>\0" .. (mailparams and (mailparams .. "\0") or "") },
		{ "rcpt", "<" .. label .. "@example.test>" },
	}
	for _, h in ipairs(headers) do
		steps[#steps + 1] = { "raw", "L", h[1] .. "\0" .. h[2] .. "\0" }
	end
	steps[#steps + 1] = { "raw", "N", "" }
	steps[#steps + 1] = { "raw", "B", "hello\r\n" }
	steps[#steps + 1] = { "eom" }
	steps[#steps + 1] = { "quit" }
	local res = t.raw(steps)
	return res[#res]
end

-- Accepted, and the log line's symbols hold exactly the wanted ones of
-- the headers check (nil: none).
local function scored(label, over, want, what, params)
	local e = send(label, hdrs(label, over), params)
	m.accepted(e, what)
	local p = t.wait_txn("<" .. label .. "@example.test>")
	local got = {}
	for s in (p.symbols or ""):gmatch("headers%.[%w_]+") do
		got[#got + 1] = s
	end
	table.sort(got)
	t.eq(table.concat(got, ","), want or "", what .. ": symbols")
	return p
end

t.main(function()
	t.clock(NOW)
	t.config("checks = headers\nscore.reject = 50\n")
	t.start()

	local p = scored("plain", {}, nil, "a plain message")
	t.eq(p.score, 0, "plain: score 0")
	scored("future24", { { "Date", date_at(NOW + 24 * 3600) } }, nil, "Date 24 h ahead")
	p = scored("future26", { { "Date", date_at(NOW + 26 * 3600) } }, "headers.date_future",
		"Date 26 h ahead")
	t.eq(p.score, 2, "date_future scores 2")
	scored("past31", { { "Date", date_at(NOW - 31 * 86400) } }, "headers.date_past",
		"Date 31 days old")
	scored("past29", { { "Date", date_at(NOW - 29 * 86400) } }, nil, "Date 29 days old")
	-- obsolete forms a receiver must accept (RFC 5322 4.3)
	scored("obsdate", { { "Date", "1 Dec 26 07:00 EST (Eastern)" } }, nil,
		"two-digit year, EST and a comment")
	scored("baddate", { { "Date", "yesterday at noon" } }, "headers.date_invalid", "Date prose")
	scored("feb30", { { "Date", "Mon, 30 Feb 2026 10:00:00 +0000" } }, "headers.date_invalid",
		"30 February")
	scored("nodate", { { "Date", false } }, "headers.date_missing", "no Date")
	scored("nomsgid", { { "Message-ID", false } }, "headers.msgid_missing", "no Message-ID")
	scored("badmsgid", { { "Message-ID", "no-angle-brackets@example.net" } },
		"headers.msgid_invalid", "Message-ID without <>")
	scored("badmsgid2", { { "Message-ID", "<two words@example.net>" } }, "headers.msgid_invalid",
		"Message-ID with a space")
	scored("badfrom", { { "From", "Paypal Security" } }, "headers.from_invalid",
		"From without an address")
	scored("atfrom", { { "From", "service@paypal.com <x@evil.example>" } }, "headers.from_invalid",
		"From with '@' in an unquoted display name")
	scored("groupfrom", { { "From", '"Team, The" <team@example.net>, other@example.org' } }, nil,
		"From with two mailboxes and a quoted comma")
	-- 8-bit text
	local koi = string.char(0xd3, 0xd0, 0xc1, 0xcd)
	scored("eightbit", { { "Subject", koi } }, "headers.eightbit", "raw 8-bit Subject")
	scored("utf8ok", { { "Subject", "caf\xc3\xa9" } }, nil, "8-bit Subject with SMTPUTF8",
		"SMTPUTF8")
	scored("encoded", { { "Subject", "=?UTF-8?Q?caf=C3=A9?=" } }, nil, "RFC 2047 Subject")

	-- refused: no From, two Subjects
	local e = send("nofrom", hdrs("nofrom", { { "From", false } }))
	t.raw_reply(e, "550", "5.7.1", "no From: field", "no From: 550 5.7.1 with a ref")
	p = t.wait_txn("<nofrom@example.test>")
	t.has(p.symbols or "", "headers.from_missing", "no From: logged")
	e = send("twosubj", hdrs("twosubj", { { "Subject", "second", add = true } }))
	t.raw_reply(e, "550", "5.7.1", "more than one Subject: field", "two Subjects refused")
	e = send("twofrom", hdrs("twofrom", { { "From", "other@example.org", add = true } }))
	t.raw_reply(e, "550", "5.7.1", "more than one From: field", "two From fields refused")
	-- header names are case-insensitive
	e = send("twodate", hdrs("twodate", { { "DATE", date_at(NOW), add = true } }))
	t.raw_reply(e, "550", "5.7.1", "more than one Date: field", "Date and DATE refused")
	scored("tworecv", { { "Received", "from a", add = true }, { "Received", "from b", add = true } },
		nil, "two Received fields are fine")

	-- modes and headers.refuse
	t.reconfig("checks = headers\nheaders.from_missing = monitor\n" ..
		"headers.refuse = duplicate eightbit\n")
	e = send("nofrom2", hdrs("nofrom2", { { "From", false } }))
	m.accepted(e, "from_missing in monitor: accepted")
	p = t.wait_txn("<nofrom2@example.test>")
	t.has(p.monitor or "", "headers.from_missing", "from_missing in monitor is noted")
	e = send("eightbit2", hdrs("eightbit2", { { "Subject", koi } }))
	t.raw_reply(e, "550", "5.7.1", "raw 8-bit text", "eightbit in headers.refuse: 550")

	-- a bad headers.refuse entry
	local bad = t.file("bad.conf", "checks = headers\nheaders.refuse = from_missing nonsense\n")
	local pp = io.popen(t.shq(t.portcullis) .. " -t -c " .. t.shq(bad) .. " 2>&1")
	local out = pp:read("a")
	local ok = pp:close()
	t.check(not ok, "portcullis -t refuses an unknown headers.refuse entry")
	t.has(out, "headers.refuse: unknown sub-check 'nonsense'", "the error names the entry")
end)
