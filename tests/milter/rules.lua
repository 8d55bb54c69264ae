-- tests/milter/rules.lua - header_rules and body_rules (PCRE2, rules.h)
--
-- header_rules: an impossible time in Date: is refused with the captured
-- hour in the reply ($1); a spam mailer scores (the log names the rule's
-- line); a Subject gets a TAG header; an OK rule whitelists the message
-- (beating an earlier REJECT of the same message); a capture holding '%'
-- and control characters reaches the reply encoded; a catastrophic regex
-- on a long header ends at PCRE2's limits (no match, no hang).
-- body_rules: matched on decoded text: quoted-printable, base64 text/html
-- in KOI8-R (rule written in UTF-8), a text part inside message/rfc822;
-- the same words in a non-text attachment are not matched.
-- A rules file with an error is refused with FILE:LINE by portcullis -t.

local t = dofile(libdir .. "/lib.lua")
local m = dofile(libdir .. "/msg.lua")(t)

local function hdrs(extra)
	local h = { { "From", "sender@example.net" }, { "To", "rcpt@example.test" } }
	for _, x in ipairs(extra or {}) do
		h[#h + 1] = x
	end
	return h
end

local function reply(e)
	return t.split_reply(e and e.code == "y" and e.data or nil)
end

-- "спам" in KOI8-R
local KOI8_SPAM = string.char(0xd3, 0xd0, 0xc1, 0xcd)

t.main(function()
	t.file("header.rules", [[
# header rules for the test
/^Date:.* (2[4-9]|[3-9][0-9]):[0-9][0-9]:[0-9][0-9]/  REJECT Impossible time $1 h in Date
/^X-Mailer: (BulkBlaster [0-9.]+)/   SCORE 4 spam mailer $1
/^Subject: .*lottery/
	TAG lottery subject
/^X-Trusted-Partner: yes$/  OK
/^X-Inject: (.*)/  REJECT bad value $1
/^X-Slow: (a+)+b/  REJECT catastrophic
]])
	t.file("body.rules", [[
/viagra/  REJECT Spam phrase found
/^Wire ([0-9]+) (EUR|USD)/  SCORE 6 money $1 $2
/спам/  REJECT Cyrillic spam word
]])
	local conf = "checks = header_rules, body_rules\nheader_rules.file = " .. t.dir ..
		"/header.rules\nbody_rules.file = " .. t.dir .. "/body.rules\n"
	t.config(conf)
	t.start()
	local e, p, r

	e = m.send("date", hdrs { { "Date", "Tue, 24 Nov 2026 27:15:00 +0000" } }, "hi\r\n")
	t.raw_reply(e, "550", "5.7.1", "Impossible time 27 h in Date", "Date 27:15: rejected with $1")
	p = t.wait_txn("<date@example.test>")
	t.has(p.symbols or "", "header_rules.line2", "Date: log names rule line 2")

	e = m.send("mailer", hdrs { { "X-Mailer", "BulkBlaster 2.1" } }, "hi\r\n")
	m.accepted(e, "spam mailer scores only")
	p = t.wait_txn("<mailer@example.test>")
	t.eq(p.score, 4, "spam mailer: score 4")

	e = m.send("tag", hdrs { { "Subject", "You won the lottery" } }, "hi\r\n")
	m.accepted(e, "TAG")
	t.eq(t.raw_header(e, "X-Portcullis-Tag"), "lottery subject", "TAG: X-Portcullis-Tag added")

	e = m.send("okrule", hdrs { { "Date", "Tue, 24 Nov 2026 30:00:00 +0000" },
		{ "X-Trusted-Partner", "yes" } }, "viagra\r\n")
	m.accepted(e, "OK rule whitelists the message (earlier REJECT and body rules)")

	e = m.send("inject", hdrs { { "X-Inject", "100%s%n\1\127end" } }, "hi\r\n")
	r = reply(e)
	t.eq(r.code, "550", "capture with % and controls: rejected")
	t.has(r.text or "", "bad value 100%%s%%n??end", "capture: '%' doubled, controls replaced")

	e = m.send("slow", hdrs { { "X-Slow", string.rep("a", 30000) .. "c" } }, "hi\r\n")
	m.accepted(e, "catastrophic regex: ends at the PCRE2 limits")

	-- body rules on decoded text
	e = m.send("qp", hdrs { { "MIME-Version", "1.0" }, { "Content-Type", "text/plain; charset=us-ascii" },
		{ "Content-Transfer-Encoding", "quoted-printable" } }, "buy vi=61gra=\r\n now\r\n")
	t.raw_reply(e, "550", "5.7.1", "Spam phrase found", "quoted-printable body decoded")

	e = m.send("koi8", hdrs { { "MIME-Version", "1.0" }, { "Content-Type", 'multipart/alternative; boundary="a"' } },
		"--a\r\nContent-Type: text/html; charset=koi8-r\r\nContent-Transfer-Encoding: base64\r\n\r\n" ..
		m.b64("<p>" .. KOI8_SPAM .. "</p>") .. "\r\n--a--\r\n")
	t.raw_reply(e, "550", "5.7.1", "Cyrillic spam word", "base64 KOI8-R html converted to UTF-8")

	e = m.send("money", hdrs(), "Wire 5000 EUR today\r\n")
	m.accepted(e, "body SCORE")
	t.eq(t.wait_txn("<money@example.test>").score, 6, "body SCORE 6")

	local h, b = m.attachment("data.bin", "application/octet-stream", "viagra viagra")
	m.accepted(m.send("binary", h, b), "words inside a non-text attachment are not matched")

	local ih, ib = m.attachment("x.txt", "text/plain", "cheap viagra")
	local inner = {}
	for _, x in ipairs(ih) do
		inner[#inner + 1] = x[1] .. ": " .. x[2]
	end
	e = m.send("nested", hdrs { { "MIME-Version", "1.0" }, { "Content-Type", 'multipart/mixed; boundary="o"' } },
		"--o\r\nContent-Type: message/rfc822\r\n\r\n" .. table.concat(inner, "\r\n") .. "\r\n\r\n" ..
		ib .. "\r\n--o--\r\n")
	t.raw_reply(e, "550", "5.7.1", "Spam phrase found", "text part inside message/rfc822")

	-- a broken rules file names FILE:LINE
	t.file("bad.rules", "/ok/ DUNNO\n/unclosed(/ REJECT x\n")
	t.file("bad.conf", "checks = header_rules\nheader_rules.file = " .. t.dir .. "/bad.rules\n")
	local p2 = io.popen(t.shq(t.portcullis) .. " -t -c " .. t.shq(t.dir .. "/bad.conf") .. " 2>&1")
	local out = p2:read("a")
	p2:close()
	t.has(out, "bad.rules:2: regex error", "bad rules file: FILE:LINE in the error")
end)
