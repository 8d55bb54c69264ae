-- tests/milter/hostile.lua - hostile HELO, addresses and client names
--
-- The strings of tests/unit/hostile.c (CR/LF reply and header injection,
-- format directives, embedded NUL, invalid UTF-8, control bytes, 1,000 '%',
-- 10,000-byte strings, every byte value) go in as client host name, HELO,
-- MAIL FROM and RCPT TO.  miltertest takes the NUL-free ones up to ~1,000
-- bytes (its buffers are 1 KiB); the raw client takes all of them.  Asserts:
-- the daemon answers every command (no crash, no hang); every reply text is
-- printable ASCII, at most 512 bytes, with '%' doubled, ends with the
-- contact; the log file holds only printable ASCII lines that each start
-- with a timestamp (so nothing injected a line), also for a connection that
-- leaves right after a hostile HELO; and at the end the daemon still
-- accepts a normal message.

local t = dofile(libdir .. "/lib.lua")

local function bytes(from, n)
	local out = {}
	for i = 0, n - 1 do
		out[#out + 1] = string.char(from + i % (256 - from))
	end
	return table.concat(out)
end

-- Mirrors tests/unit/hostile.c.
local LONG = string.rep("a.", 4999) .. "a"
local H = {
	{ "crlf reply injection", "a\r\n250 OK" },
	{ "format directives", "100%s%n" },
	{ "embedded NUL", "abc\0\r\nRCPT TO:<x@y>" },
	{ "10,000-byte HELO", LONG },
	{ "invalid UTF-8", "\xff\xfe\xc3\x28" },
	{ "header injection", "x\n\tInjected: 1" },
	{ "bare CR", "\r" },
	{ "bare LF", "\n" },
	{ "TAB", "\t" },
	{ "DEL", "\x7f" },
	{ "empty", "" },
	{ "lone percent", "%" },
	{ "ANSI escape", "\x1b[31mred\x1b[0m" },
	{ "backspaces", "ok\b\b\b\bevil" },
	{ "only white space", " \t \r\n " },
	{ "8-bit latin1", "caf\xe9" },
	{ "overlong UTF-8 NUL", "\xc0\x80" },
	{ "UTF-8 BOM", "\xef\xbb\xbfhello" },
	{ "smtp in address", "<a@b>\r\nDATA\r\n" },
	{ "header in address", "<a@b\r\nBcc: victim@example.org>" },
	{ "quoted CRLF", "<\"a\r\nb\"@example.org>" },
	{ "brackets only", "<" },
	{ "many brackets", "<<<<<<<<>>>>>>>>" },
	{ "backslash run", "\\\\\\\\\\x00" },
	{ "printf width", "%999999999s%*d%hhn" },
	{ "high control C1", "\x85\x9b\xa0" },
	{ "1,000 percent signs", string.rep("%", 1000) },
	{ "every byte value", bytes(1, 10000) },
	{ "10,000-byte open address", string.rep("<a@", 3334):sub(1, 10000) },
	{ "5,000 CRLF", string.rep("\r\n", 5000) },
	{ "1,000-byte local part", string.rep("x", 1000) },
}

-- What miltertest can carry: no NUL, at most 1,000 bytes.
local function mt_ok(s)
	return not s:find("\0", 1, true) and #s <= 1000
end

-- An address made of s: as is when it looks like one, else <s@domain>.
local function addr(s, domain)
	if s:sub(1, 1) == "<" then
		return s
	end
	return "<" .. s .. "@" .. domain .. ">"
end

-- A reply text must be safe for the SMTP sink.
local function safe_reply(e, label)
	if e.code == "c" then
		return t.check(true, label .. ": continue")
	end
	if e.code ~= "y" then
		return t.fail(label .. ": unexpected reply " .. t.show(e.code))
	end
	local d = e.data
	local printable = not d:find("[^\32-\126]")
	local pct = not d:gsub("%%%%", ""):find("%", 1, true)
	local ok = printable and pct and #d <= 512 and d:match("^[45]%d%d [45]%.%d+%.%d+ ") ~= nil and
		d:match("%(ref %w+%); contact postmaster@example%.test$") ~= nil
	if not ok then
		print("#   reply (" .. #d .. " bytes): " .. t.show(d))
	end
	return t.check(ok, label .. ": reply is printable, <= 512 bytes, '%' doubled, ends with ref+contact")
end

t.main(function()
	t.file("client_name.pcre", "/^evil/ REJECT Listed\n")
	t.config("access.client_name = pcre:" .. t.dir .. "/client_name.pcre")
	t.start()

	-- 1. through miltertest
	for i, h in ipairs(H) do
		local s = h[2]
		if mt_ok(s) then
			local label = "mt " .. h[1]
			local marker = string.format("<mt%02d@example.test>", i)
			local conn = t.connect { host = "client.example.net" }
			local r = t.helo(conn, s)
			t.eq(r, "continue", label .. ": HELO answered continue")
			t.eq(t.mail(conn, "<sender@example.net>"), "continue", label .. ": MAIL answered")
			r = t.rcpt(conn, marker)
			t.check(r == "continue" or r == "replycode", label .. ": RCPT answered (" .. r .. ")")
			if #s < 900 then
				r = t.rcpt(conn, addr(s, "example.test"))
				t.check(r == "continue" or r == "replycode",
					label .. ": hostile RCPT answered (" .. r .. ")")
			end
			mt.abort(conn)
			t.eq(t.helo(conn, "mail.example.net"), "continue", label .. ": 2nd HELO answered")
			if #s < 900 then
				t.eq(t.mail(conn, addr(s, "example.net")), "continue",
					label .. ": hostile MAIL answered continue")
				r = t.rcpt(conn, string.format("<mtm%02d@example.test>", i))
				t.check(r == "continue" or r == "replycode", label .. ": RCPT answered (" .. r .. ")")
			end
			mt.disconnect(conn)
			t.wait_txn(marker)

			if #s < 900 then
				-- as the client's host name
				conn = t.connect { host = "evil" .. s }
				t.eq(t.helo(conn, "mail.example.net"), "continue", label .. ": host name: HELO")
				t.eq(t.mail(conn, "<sender@example.net>"), "continue", label .. ": host name: MAIL")
				t.eq(t.rcpt(conn, "<host@example.test>"), "replycode",
					label .. ": host name: rejected by the client_name table")
				mt.disconnect(conn)
			end
		end
	end
	local p = t.wait_txn("<mt01@example.test>")
	t.has(p.line, " helo=<a\\x0d\\x0a250 OK> ", "log shows CR LF in a HELO as \\x0d\\x0a")

	-- 2. through the raw client: everything, NULs and 10,000 bytes included
	local steps = { { "conn", "client.example.net", "192.0.2.10" } }
	local expect = {} -- label per answered step, in order
	local function add(step, label)
		steps[#steps + 1] = step
		if step[1] ~= "abort" and step[1] ~= "quit" then
			expect[#expect + 1] = label
		end
	end
	expect[1] = "raw connect"
	for i, h in ipairs(H) do
		local s, label = h[2], "raw " .. h[1]
		add({ "helo", s }, label .. ": HELO")
		add({ "mail", "<sender@example.net>" }, label .. ": MAIL after hostile HELO")
		add({ "rcpt", string.format("<raw%02d@example.test>", i) }, label .. ": RCPT after hostile HELO")
		add({ "abort" })
		add({ "helo", "mail.example.net" }, label .. ": good HELO")
		add({ "mail", addr(s, "example.net") }, label .. ": hostile MAIL")
		add({ "rcpt", string.format("<rawm%02d@example.test>", i) }, label .. ": RCPT after hostile MAIL")
		add({ "abort" })
		add({ "mail", "<sender@example.net>" }, label .. ": MAIL")
		add({ "rcpt", addr(s, "example.test") }, label .. ": hostile RCPT")
		add({ "abort" })
	end
	add({ "quit" })
	local res, why = t.raw(steps)
	if res == nil then
		print("# SKIP raw client: " .. why)
	else
		t.eq(#res, #expect, "raw: every command was answered")
		for k = 2, math.min(#res, #expect) do
			safe_reply(res[k], expect[k])
		end
		-- hostile client host names, and a client that leaves right after a
		-- hostile HELO (the connection-level log line)
		for i, h in ipairs(H) do
			-- an MTA never sends a host name with a NUL (libmilter would
			-- misparse the packet): cut there
			local host = "evil" .. (h[2]:match("^([^%z]*)"))
			res = t.raw {
				{ "conn", host, "192.0.2.10" },
				{ "helo", "mail.example.net" },
				{ "mail", "<sender@example.net>" },
				{ "rcpt", string.format("<rawh%02d@example.test>", i) },
				{ "quit" },
			}
			t.eq(#res, 4, "raw " .. h[1] .. ": host name: every command answered")
			if res[4] then
				safe_reply(res[4], "raw " .. h[1] .. ": host name")
			end
			res = t.raw { { "conn", "client.example.net", "192.0.2.10" }, { "helo", h[2] }, { "quit" } }
			t.eq(#res, 2, "raw " .. h[1] .. ": HELO then QUIT answered")
		end
		res = t.raw {
			{ "conn", "client.example.net", "192.0.2.10" },
			{ "helo", "a\r\n250 OK" }, { "mail", "<sender@example.net>" },
			{ "rcpt", "<raw-crlf@example.test>" }, { "abort" },
			{ "helo", "100%s%n" }, { "mail", "<sender@example.net>" },
			{ "rcpt", "<raw-pct@example.test>" }, { "quit" },
		}
		t.raw_reply(res[4], "550", "5.5.2", "Invalid HELO name 'a??250 OK' (ref ",
			"raw: CR LF in the reply text became '?'")
		t.raw_reply(res[7], "550", "5.5.2", "Invalid HELO name '100%%s%%n' (ref ",
			"raw: '%' in the reply text doubled")
	end

	-- 3. the log: printable ASCII only, one entry per line
	local log = t.log()
	local bad = log:find("[^\n\32-\126]")
	if bad then
		print("#   first bad byte at offset " .. bad .. ": " ..
			t.show(log:sub(math.max(1, bad - 120), bad + 40)))
	end
	t.check(bad == nil, "log: no raw control or 8-bit bytes")
	local n, badline = 0, nil
	for line in log:gmatch("[^\n]*") do
		if line ~= "" then
			n = n + 1
			if not line:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%d portcullis: ") then
				badline = badline or line
			end
		end
	end
	if badline then
		print("#   line: " .. t.show(badline))
	end
	t.check(n > 0 and badline == nil, "log: every one of " .. n .. " lines starts with a timestamp")
	t.check(not log:find("Injected: 1", 1, true) or not log:find("\n\tInjected", 1, true),
		"log: no injected continuation line")

	-- 4. still alive and well
	local conn = t.connect { helo = "mail.example.net" }
	local r, e = t.txn(conn, "<final@example.net>", { "<final@example.test>" })
	t.eq(r[1], "continue", "final: normal RCPT accepted")
	t.eq(e, "continue", "final: normal message accepted")
	mt.disconnect(conn)
	t.eq(t.wait_txn("<final@example.test>").verdict, "accept", "final: logged as accepted")
end)
