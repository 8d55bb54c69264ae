-- tests/milter/envelope.lua - MAIL FROM / RCPT TO checks through the daemon
--
-- Sender syntax and non-FQDN senders are held at MAIL and rejected at RCPT;
-- recipient syntax, non-FQDN and domain-less recipients are rejected at
-- their RCPT while other recipients of the same message pass; with
-- envelope.max_rcpts = 3 the 4th and later recipients get a temporary 452
-- 4.5.3 (a defer in the log) and the message still goes through; a null
-- sender may have one recipient only; good addresses (quoted local parts,
-- +tags, address literals, source routes, ESMTP parameters, null sender
-- with one recipient) pass.  Reply codes and texts come from the raw client.

local t = dofile(libdir .. "/lib.lua")

local HELO = "mail.example.net"
local GOOD = "<sender@example.net>"

-- One transaction on conn: MAIL from, then RCPTs; rcpts is a list of
-- {address, "continue"|"replycode"}.  Ends with EOM when any recipient was
-- accepted, else with ABORT.  Returns the parsed log line (found by the
-- first recipient's address, which each case makes unique).
local function txn(conn, label, from, rcpts)
	t.eq(t.mail(conn, from), "continue", label .. ": MAIL answered continue")
	local any = false
	for _, r in ipairs(rcpts) do
		local got = t.rcpt(conn, r[1])
		t.eq(got, r[2], label .. ": RCPT " .. r[1] .. " answered " .. r[2])
		any = any or got == "continue"
	end
	if any then
		t.eq(t.eom(conn), "continue", label .. ": message accepted")
	else
		mt.abort(conn)
	end
	return t.wait_txn(rcpts[1][1])
end

-- The log line's refused= list holds "<addr>:reject|defer:SYMBOL".
local function rejected(p, rcpt, how, sym, label)
	local item = rcpt .. ":" .. how .. ":" .. sym
	local line = p.line or ""
	local ok = line:find("refused=" .. item, 1, true) or line:find("," .. item, 1, true)
	if not ok then
		print("#   line: " .. t.show(line))
		print("#   missing: " .. item)
	end
	t.check(ok, label .. ": log says " .. rcpt .. " " .. how .. " by " .. sym)
end

t.main(function()
	t.config("envelope.max_rcpts = 3")
	t.start()
	local conn = t.connect { helo = HELO }
	local p

	-- sender syntax: held at MAIL, applied at every RCPT
	p = txn(conn, "sender with a space", "<john doe@example.net>",
		{ { "<env01@example.test>", "replycode" }, { "<env01b@example.test>", "replycode" } })
	rejected(p, "<env01@example.test>", "reject", "envelope.sender_syntax", "sender syntax")
	rejected(p, "<env01b@example.test>", "reject", "envelope.sender_syntax", "sender syntax")
	t.eq(p.verdict, "reject", "sender syntax: verdict reject")
	p = txn(conn, "sender without brackets", "sender@example.net",
		{ { "<env02@example.test>", "replycode" } })
	rejected(p, "<env02@example.test>", "reject", "envelope.sender_syntax", "no brackets")
	p = txn(conn, "sender with @@", "<a@@example.net>", { { "<env03@example.test>", "replycode" } })
	rejected(p, "<env03@example.test>", "reject", "envelope.sender_syntax", "@@")
	p = txn(conn, "sender with an unclosed bracket", "<a@example.net",
		{ { "<env04@example.test>", "replycode" } })
	rejected(p, "<env04@example.test>", "reject", "envelope.sender_syntax", "unclosed <")

	-- non-FQDN sender, but postmaster@ still reachable
	p = txn(conn, "non-FQDN sender", "<user@localhost>",
		{ { "<env05@example.test>", "replycode" }, { "<postmaster@example.test>", "continue" } })
	rejected(p, "<env05@example.test>", "reject", "envelope.sender_non_fqdn", "non-FQDN sender")
	t.log_has(p, { " from=<user@localhost> ", " to=<postmaster@example.test> " },
		"non-FQDN sender: postmaster@ accepted all the same")
	t.eq(p.verdict, "accept", "non-FQDN sender: the message to postmaster is accepted")
	p = txn(conn, "numeric top-level domain", "<user@example.123>",
		{ { "<env06@example.test>", "replycode" } })
	rejected(p, "<env06@example.test>", "reject", "envelope.sender_non_fqdn", "numeric TLD")

	-- recipients: each one decided on its own (at most 3 RCPTs per message
	-- here, below max_rcpts)
	p = txn(conn, "recipient checks 1", GOOD, {
		{ "<env07@example.test>", "continue" },
		{ "<user@example>", "replycode" },
		{ "<user>", "replycode" },
	})
	t.log_has(p, { " to=<env07@example.test> " }, "recipient checks: good recipient accepted")
	rejected(p, "<user@example>", "reject", "envelope.rcpt_non_fqdn", "non-FQDN recipient")
	rejected(p, "<user>", "reject", "envelope.rcpt_syntax", "recipient without a domain")
	t.eq(p.verdict, "accept", "recipient checks: message accepted for the good one")
	p = txn(conn, "recipient checks 2", GOOD, {
		{ "<john doe@example.test>", "replycode" },
		{ "<>", "replycode" },
		{ "nobrackets@example.test", "replycode" },
	})
	rejected(p, "<john doe@example.test>", "reject", "envelope.rcpt_syntax", "recipient syntax")
	rejected(p, "<>", "reject", "envelope.rcpt_syntax", "empty recipient")
	rejected(p, "<nobrackets@example.test>", "reject", "envelope.rcpt_syntax",
		"recipient without brackets")
	t.eq(p.verdict, "reject", "recipient checks: all refused, verdict reject")
	p = txn(conn, "recipient checks 3", GOOD, {
		{ "<x@example.123>", "replycode" },
		{ "<postmaster>", "continue" },
	})
	rejected(p, "<x@example.123>", "reject", "envelope.rcpt_non_fqdn", "numeric TLD recipient")
	t.log_has(p, { " to=<postmaster> " }, "recipient checks: <postmaster> accepted")

	-- too many recipients: max_rcpts counts accepted recipients (the
	-- documented "recipients accepted per message"); the 4th accepted one
	-- and later are deferred, the rest delivered
	p = txn(conn, "max_rcpts = 3", GOOD, {
		{ "<env08-1@example.test>", "continue" },
		{ "<not-fqdn@example>", "replycode" },
		{ "<env08-2@example.test>", "continue" },
		{ "<env08-3@example.test>", "continue" },
		{ "<env08-4@example.test>", "replycode" },
		{ "<env08-5@example.test>", "replycode" },
	})
	t.log_has(p, { " to=<env08-1@example.test>,<env08-2@example.test>,<env08-3@example.test> " },
		"max_rcpts: three recipients accepted")
	rejected(p, "<not-fqdn@example>", "reject", "envelope.rcpt_non_fqdn", "max_rcpts")
	rejected(p, "<env08-4@example.test>", "defer", "envelope.too_many_rcpts", "max_rcpts")
	rejected(p, "<env08-5@example.test>", "defer", "envelope.too_many_rcpts", "max_rcpts")
	t.eq(p.verdict, "accept", "max_rcpts: message accepted for the first three")

	-- a bounce has exactly one recipient
	p = txn(conn, "null sender", "<>",
		{ { "<env09-1@example.test>", "continue" }, { "<env09-2@example.test>", "replycode" } })
	t.log_has(p, { " from=<> ", " to=<env09-1@example.test> " }, "null sender: first accepted")
	rejected(p, "<env09-2@example.test>", "reject", "envelope.multi_rcpt_bounce",
		"null sender, 2nd recipient")

	-- good addresses
	p = txn(conn, "good addresses 1", '<"john doe"@example.net>', {
		{ "<env10@example.test>", "continue" },
		{ "<first.last+tag@sub.example.test>", "continue" },
		{ "<user@[192.0.2.1]>", "continue" },
	})
	t.hasnt(p.line or "", "refused=", "good addresses: nothing refused")
	t.eq(p.symbols, nil, "good addresses: no symbols")
	t.eq(p.verdict, "accept", "good addresses: accepted")
	p = txn(conn, "good addresses 2", "<Bounce-Handler@Example.NET>", {
		{ "<env12@example.test>", "continue" },
		{ "<@relay.example.net:env12-route@example.test>", "continue" },
		{ "<Mixed.Case@Example.TEST>", "continue" },
	})
	t.log_has(p, { " from=<Bounce-Handler@example.net> ",
		" to=<env12@example.test>,<env12-route@example.test>,<Mixed.Case@example.test> " },
		"good addresses: source route dropped, domains lower-cased, local parts kept")
	t.eq(p.symbols, nil, "good addresses: no symbols")
	t.eq(p.verdict, "accept", "good addresses: accepted")
	t.eq(t.mail(conn, "<esmtp@example.net>", "SIZE=1000", "BODY=8BITMIME"), "continue",
		"MAIL with ESMTP parameters answered continue")
	t.eq(t.rcpt(conn, "<env11@example.test>"), "continue", "RCPT after MAIL with parameters")
	t.eq(t.eom(conn), "continue", "message with ESMTP parameters accepted")
	p = t.wait_txn("<env11@example.test>")
	t.log_has(p, { " from=<esmtp@example.net> " }, "ESMTP parameters are not part of the sender")
	mt.disconnect(conn)

	-- reply codes and texts
	local res, why = t.raw {
		{ "conn", "client.example.net", "192.0.2.10" },
		{ "helo", HELO },
		{ "mail", "<john doe@example.net>" },
		{ "rcpt", "<raw1@example.test>" },
		{ "abort" },
		{ "mail", "<user@localhost>" },
		{ "rcpt", "<raw2@example.test>" },
		{ "abort" },
		{ "mail", GOOD },
		{ "rcpt", "<raw3-1@example.test>" },
		{ "rcpt", "<user@example>" },
		{ "rcpt", "<user>" },
		{ "rcpt", "<raw3-4@example.test>" },
		{ "rcpt", "<raw3-5@example.test>" },
		{ "rcpt", "<raw3-6@example.test>" },
		{ "abort" },
		{ "mail", "<>" },
		{ "rcpt", "<raw4-1@example.test>" },
		{ "rcpt", "<raw4-2@example.test>" },
		{ "quit" },
	}
	if res == nil then
		print("# SKIP reply texts: " .. why)
		return
	end
	local ref = t.raw_reply(res[4], "550", "5.1.7",
		"Sender address <john doe@example.net> rejected: invalid character in local part",
		"raw: sender syntax 550 5.1.7")
	t.eq(t.wait_txn("<raw1@example.test>").ref, ref, "raw: sender syntax ref matches the log")
	t.raw_reply(res[6], "550", "5.5.2",
		"Sender address <user@localhost> rejected: need fully-qualified address",
		"raw: non-FQDN sender 550 5.5.2")
	t.eq(res[8].code, "c", "raw: first recipient continues")
	ref = t.raw_reply(res[9], "550", "5.5.2",
		"Recipient address <user@example> rejected: need fully-qualified address",
		"raw: non-FQDN recipient 550 5.5.2")
	local ref2 = t.raw_reply(res[10], "550", "5.1.3",
		"Recipient address <user> rejected: missing domain", "raw: recipient without domain 550 5.1.3")
	t.eq(ref2, ref, "raw: the recipients of one transaction share its ref")
	t.eq(res[11].code, "c", "raw: 2nd accepted recipient continues")
	t.eq(res[12].code, "c", "raw: 3rd accepted recipient continues")
	local ref3 = t.raw_reply(res[13], "452", "4.5.3", "Too many recipients (limit 3 per message)",
		"raw: 4th accepted RCPT gets 452 4.5.3")
	t.eq(ref3, ref, "raw: same ref for the deferred recipient")
	t.eq(t.wait_txn("<raw3-1@example.test>").ref, ref, "raw: recipient refs match the log")
	t.eq(res[15].code, "c", "raw: bounce, first recipient continues")
	t.raw_reply(res[16], "550", "5.5.3", "Bounce (null sender) with more than one recipient",
		"raw: bounce, 2nd recipient 550 5.5.3")
end)
