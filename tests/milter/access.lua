-- tests/milter/access.lua - Postfix-style access tables through the daemon
--
-- Writes cidr:, pcre: and texthash: tables into the temp dir and checks:
-- a client OK whitelists the connection (beats a bad HELO and a listed
-- sender); client REJECT/DEFER with the table's text; IPv6 networks; client
-- host name and HELO by pcre (case-insensitive by default); sender by
-- address, domain, parent domain (but not a mere suffix), pcre, DUNNO as an
-- exception, OK (beats a bad HELO) and DEFER; a recipient OK whitelists that
-- recipient while the others are rejected for a bad HELO; SCORE entries add
-- up to score.reject = 5.  Reply texts and refs come from the raw client.

local t = dofile(libdir .. "/lib.lua")

local IP = "192.0.2.100" -- a client no table lists
local HELO = "mail.example.net"

t.file("client.cidr", [[
# clients
192.0.2.0/28            OK
198.51.100.0/24         REJECT You are not welcome here
203.0.113.0/24          DEFER Try again tomorrow
[2001:db8:bad::]/48     REJECT IPv6 block
]])
t.file("client_name.pcre", [[
/\.dynamic\.example\.net$/        REJECT Dynamic addresses send through your provider
/^trusted-relay\.example\.org$/   OK
]])
t.file("helo.pcre", [[
/^spambot\./     REJECT Known spam software
/^scorehost\./   SCORE 3
]])
t.file("sender.hash", [[
bad@example.org               REJECT Go away
spam.example.org              REJECT Spam domain
exception@spam.example.org    DUNNO
example.com                   REJECT Whole domain tree
friend@example.org            OK
scorer@example.org            SCORE 3
later@example.org             DEFER Mailbox migration
]])
t.file("sender.pcre", [[
/^promo-[0-9]+@/   REJECT Bulk sender
]])
t.file("recipient.hash", [[
vip@example.test       OK
closed@example.test    REJECT Mailbox closed
]])

local function item(p, rcpt, how, sym)
	local it = rcpt .. ":" .. how .. ":" .. sym
	local line = p.line or ""
	return line:find("refused=" .. it, 1, true) ~= nil or line:find("," .. it, 1, true) ~= nil
end

-- One connection, one transaction, quit.  rcpts: list of {addr, reply}.
-- sym: the symbol every refused recipient must carry (with how =
-- "reject"/"defer"), or nil.  Returns the parsed log line.
local function case(label, c, from, rcpts, how, sym)
	local conn = t.connect { ip = c.ip or IP, host = c.host, helo = c.helo or HELO }
	t.eq(t.mail(conn, from), "continue", label .. ": MAIL answered continue")
	local any = false
	for _, r in ipairs(rcpts) do
		local got = t.rcpt(conn, r[1])
		t.eq(got, r[2], label .. ": RCPT " .. r[1] .. " answered " .. r[2])
		any = any or got == "continue"
	end
	if any then
		t.eq(t.eom(conn), "continue", label .. ": message accepted")
	end
	mt.disconnect(conn)
	local p = t.wait_txn(rcpts[1][1])
	for _, r in ipairs(rcpts) do
		if r[2] == "replycode" then
			local ok = item(p, r[1], how, sym)
			if not ok then
				print("#   line: " .. t.show(p.line))
			end
			t.check(ok, label .. ": log refused " .. r[1] .. ":" .. how .. ":" .. sym)
		end
	end
	return p
end

t.main(function()
	local d = t.dir .. "/"
	t.config(table.concat({
		"access.client = cidr:" .. d .. "client.cidr",
		"access.client_name = pcre:" .. d .. "client_name.pcre",
		"access.helo = pcre:" .. d .. "helo.pcre",
		"access.sender = texthash:" .. d .. "sender.hash, pcre:" .. d .. "sender.pcre",
		"access.recipient = texthash:" .. d .. "recipient.hash",
		"score.reject = 5",
	}, "\n"))
	t.start()
	local p

	-- client OK: the whole connection is whitelisted
	p = case("client OK, bad HELO", { ip = "192.0.2.5", helo = "mycomputer" },
		"<bad@example.org>", { { "<acc01@example.test>", "continue" } })
	t.eq(p.verdict, "accept", "client OK: accepted despite a bad HELO and a listed sender")
	t.eq(p.symbols, "access.client", "client OK: the whitelist is the only symbol")

	-- client REJECT / DEFER with the table's text
	p = case("client REJECT", { ip = "198.51.100.7" }, "<a@example.net>",
		{ { "<acc02@example.test>", "replycode" }, { "<postmaster@example.test>", "continue" } },
		"reject", "access.client")
	t.has(p.line, " to=<postmaster@example.test> ", "client REJECT: postmaster@ still accepted")
	p = case("client DEFER", { ip = "203.0.113.9" }, "<a@example.net>",
		{ { "<acc03@example.test>", "replycode" } }, "defer", "access.client")
	t.eq(p.verdict, "defer", "client DEFER: verdict defer")
	case("client IPv6 REJECT", { ip = "2001:db8:bad::25" }, "<a@example.net>",
		{ { "<acc04@example.test>", "replycode" } }, "reject", "access.client")
	p = case("client IPv6 outside the block", { ip = "2001:db8:bad1::25" }, "<a@example.net>",
		{ { "<acc05@example.test>", "continue" } })
	t.eq(p.symbols, nil, "IPv6 outside the /48: no symbol")

	-- client host name (pcre)
	case("client_name REJECT", { ip = "192.0.2.200", host = "host-7.Dynamic.Example.NET" },
		"<a@example.net>", { { "<acc06@example.test>", "replycode" } }, "reject",
		"access.client_name")
	p = case("client_name OK, bad HELO", { ip = "192.0.2.201", host = "trusted-relay.example.org",
		helo = "mycomputer" }, "<a@example.net>", { { "<acc07@example.test>", "continue" } })
	t.eq(p.symbols, "access.client_name", "client_name OK whitelists the connection")
	p = case("client without a verified name", { ip = "192.0.2.202", host = "[192.0.2.202]" },
		"<a@example.net>", { { "<acc08@example.test>", "continue" } })
	t.has(p.line, " client=unknown[192.0.2.202] ", "unverified client logged as unknown")

	-- HELO (pcre, case-insensitive unless the i flag)
	case("helo REJECT", { helo = "spambot.example.net" }, "<a@example.net>",
		{ { "<acc09@example.test>", "replycode" } }, "reject", "access.helo")
	case("helo REJECT, other case", { helo = "SpamBot.Example.NET" }, "<a@example.net>",
		{ { "<acc10@example.test>", "replycode" } }, "reject", "access.helo")
	case("helo not listed", { helo = "notspambot.example.net" }, "<a@example.net>",
		{ { "<acc11@example.test>", "continue" } })

	-- sender: address, domain, parent domain, pcre, DUNNO, OK, DEFER
	case("sender address", {}, "<bad@example.org>", { { "<acc12@example.test>", "replycode" } },
		"reject", "access.sender")
	case("sender address, other case", {}, "<BAD@Example.ORG>",
		{ { "<acc13@example.test>", "replycode" } }, "reject", "access.sender")
	case("sender domain", {}, "<anyone@spam.example.org>",
		{ { "<acc14@example.test>", "replycode" } }, "reject", "access.sender")
	case("sender DUNNO exception", {}, "<exception@spam.example.org>",
		{ { "<acc15@example.test>", "continue" } })
	case("sender parent domain", {}, "<user@mail.sub.example.com>",
		{ { "<acc16@example.test>", "replycode" } }, "reject", "access.sender")
	p = case("sender domain suffix only", {}, "<user@notexample.com>",
		{ { "<acc17@example.test>", "continue" } })
	t.eq(p.symbols, nil, "notexample.com is not a subdomain of example.com")
	case("sender pcre", {}, "<promo-123@shop.example.net>",
		{ { "<acc18@example.test>", "replycode" } }, "reject", "access.sender")
	case("sender pcre no match", {}, "<promo-abc@shop.example.net>",
		{ { "<acc19@example.test>", "continue" } })
	p = case("sender OK, bad HELO", { helo = "mycomputer" }, "<friend@example.org>",
		{ { "<acc20@example.test>", "continue" } })
	t.hasnt(p.line, "refused=", "sender OK: the message is whitelisted")
	t.has(p.line, " symbols=helo.non_fqdn,access.sender ",
		"sender OK: the HELO verdict is logged, the whitelist wins")
	case("sender DEFER", {}, "<later@example.org>", { { "<acc21@example.test>", "replycode" } },
		"defer", "access.sender")

	-- recipient OK whitelists that recipient only
	p = case("recipient OK, bad HELO", { helo = "mycomputer" }, "<a@example.net>", {
		{ "<acc22@example.test>", "replycode" },
		{ "<VIP@example.test>", "continue" },
		{ "<acc22b@example.test>", "replycode" },
	}, "reject", "helo.non_fqdn")
	t.has(p.line, " to=<VIP@example.test> ", "recipient OK: the listed recipient accepted")
	t.eq(p.verdict, "accept", "recipient OK: the message goes to the listed recipient")
	case("recipient REJECT", {}, "<a@example.net>", { { "<closed@example.test>", "replycode" } },
		"reject", "access.recipient")

	-- SCORE: 3 + 3 reaches score.reject = 5, 3 alone does not
	p = case("two SCORE 3", { helo = "scorehost.example.net" }, "<scorer@example.org>",
		{ { "<acc23@example.test>", "replycode" }, { "<acc23b@example.test>", "replycode" } },
		"reject", "score.reject")
	t.eq(p.score, 6, "two SCORE 3: log score=6.0")
	t.has(p.line, " symbols=access.helo(3),access.sender(3) ", "two SCORE 3: both symbols logged")
	p = case("one SCORE 3", { helo = "scorehost.example.net" }, "<a@example.net>",
		{ { "<acc24@example.test>", "continue" } })
	t.eq(p.score, 3, "one SCORE 3: log score=3.0")
	t.eq(p.verdict, "accept", "one SCORE 3: accepted below score.reject")

	-- reply texts and refs
	local res, why = t.raw {
		{ "conn", "client.example.net", "198.51.100.7" },
		{ "helo", HELO },
		{ "mail", "<a@example.net>" },
		{ "rcpt", "<raw1@example.test>" },
		{ "quit" },
	}
	if res == nil then
		print("# SKIP reply texts: " .. why)
		return
	end
	local ref = t.raw_reply(res[4], "550", "5.7.1",
		"Client host 198.51.100.7 rejected: You are not welcome here (ref ",
		"raw: client REJECT text from the table")
	t.eq(t.wait_txn("<raw1@example.test>").ref, ref, "raw: client REJECT ref matches the log")

	local steps = {
		{ "conn", "client.example.net", "203.0.113.9" }, { "helo", HELO },
		{ "mail", "<a@example.net>" }, { "rcpt", "<raw2@example.test>" }, { "quit" },
	}
	res = t.raw(steps)
	t.raw_reply(res[4], "450", "4.7.1", "Client host 203.0.113.9 deferred: Try again tomorrow",
		"raw: client DEFER 450 4.7.1 with the table's text")

	res = t.raw {
		{ "conn", "host-7.dynamic.example.net", "192.0.2.200" }, { "helo", HELO },
		{ "mail", "<a@example.net>" }, { "rcpt", "<raw3@example.test>" }, { "quit" },
	}
	t.raw_reply(res[4], "550", "5.7.1", "Client host host-7.dynamic.example.net[192.0.2.200] " ..
		"rejected: Dynamic addresses send through your provider", "raw: client_name text")
	res = t.raw {
		{ "conn", "client.example.net", IP }, { "helo", "spambot.example.net" },
		{ "mail", "<a@example.net>" }, { "rcpt", "<raw4@example.test>" }, { "quit" },
	}
	t.raw_reply(res[4], "550", "5.7.1", "HELO spambot.example.net rejected: Known spam software",
		"raw: helo text")

	res = t.raw {
		{ "conn", "client.example.net", IP }, { "helo", HELO },
		{ "mail", "<bad@example.org>" }, { "rcpt", "<raw5@example.test>" }, { "abort" },
		{ "mail", "<later@example.org>" }, { "rcpt", "<raw6@example.test>" }, { "abort" },
		{ "mail", "<a@example.net>" }, { "rcpt", "<closed@example.test>" }, { "abort" },
		{ "helo", "scorehost.example.net" },
		{ "mail", "<scorer@example.org>" }, { "rcpt", "<raw7@example.test>" }, { "quit" },
	}
	t.raw_reply(res[4], "550", "5.7.1", "Sender address <bad@example.org> rejected: Go away",
		"raw: sender REJECT text")
	t.raw_reply(res[6], "450", "4.7.1", "Sender address <later@example.org> deferred: " ..
		"Mailbox migration", "raw: sender DEFER text")
	t.raw_reply(res[8], "550", "5.7.1", "Recipient address <closed@example.test> rejected: " ..
		"Mailbox closed", "raw: recipient REJECT text")
	ref = t.raw_reply(res[11], "550", "5.7.1", "Message scored 6.0, threshold 5.0 (ref ",
		"raw: score.reject text")
	t.eq(t.wait_txn("<raw7@example.test>").ref, ref, "raw: score reject ref matches the log")
end)
