-- tests/milter/session.lua - several transactions per connection
--
-- On one connection (HELO in monitor mode, so every message gets a
-- X-Portcullis-Monitor header naming its ref): two messages back to back,
-- a RSET (ABORT) after RCPT, a transaction whose recipients are all
-- rejected and then aborted, a second MAIL without RSET, another message,
-- and a QUIT in the middle of a transaction.  Each transaction gets its own
-- ref and exactly one log line with the right verdict; the headers are
-- added at end of message and carry that message's ref; a message with
-- nothing to say gets no header.  Two interleaved connections keep their
-- transactions apart.

local t = dofile(libdir .. "/lib.lua")

local HDR = "X-Portcullis-Monitor"

-- The monitor header of the last EOM, and its ref.
local function monitor_header(conn, label)
	t.check(mt.eom_check(conn, MT_HDRADD, HDR), label .. ": " .. HDR .. " added at EOM")
	local v = mt.getheader(conn, HDR, 0)
	local ref = v and v:match("^helo%.non_fqdn %(ref (%w+)%)$")
	if ref == nil then
		print("#   header value: " .. t.show(v))
	end
	t.check(ref ~= nil and #ref == 10, label .. ": header names helo.non_fqdn and a ref")
	return ref
end

t.main(function()
	t.config("checks = helo, envelope\nhelo.non_fqdn = monitor")
	t.start()
	local conn = t.connect { helo = "mycomputer" }
	local refs, p = {}, nil

	-- no enabled module reads headers or the body: the daemon asks the MTA
	-- not to send them (nor DATA and unknown commands), but needs the rest
	for _, o in ipairs { { "SMFIP_NOHDRS", SMFIP_NOHDRS }, { "SMFIP_NOEOH", SMFIP_NOEOH },
		{ "SMFIP_NOBODY", SMFIP_NOBODY }, { "SMFIP_NODATA", SMFIP_NODATA },
		{ "SMFIP_NOUNKNOWN", SMFIP_NOUNKNOWN } } do
		t.check(mt.test_option(conn, o[2]), "negotiated " .. o[1])
	end
	for _, o in ipairs { { "SMFIP_NOCONNECT", SMFIP_NOCONNECT }, { "SMFIP_NOHELO", SMFIP_NOHELO },
		{ "SMFIP_NOMAIL", SMFIP_NOMAIL }, { "SMFIP_NORCPT", SMFIP_NORCPT },
		{ "SMFIP_NR_RCPT", SMFIP_NR_RCPT } } do
		t.check(not mt.test_option(conn, o[2]), "did not negotiate " .. o[1])
	end
	t.check(mt.test_action(conn, SMFIF_ADDHDRS), "asked for SMFIF_ADDHDRS")

	-- message 1 and 2, back to back (no RSET between, as after a 250)
	t.eq(t.mail(conn, "<s1@example.net>"), "continue", "msg 1: MAIL")
	t.eq(t.rcpt(conn, "<ses1@example.test>"), "continue", "msg 1: RCPT")
	t.eq(t.eom(conn), "continue", "msg 1: accepted at EOM")
	local h1 = monitor_header(conn, "msg 1")
	p = t.wait_txn("<ses1@example.test>")
	t.eq(p.ref, h1, "msg 1: header ref is the log line's ref")
	t.eq(p.verdict, "accept", "msg 1: verdict accept")
	t.eq(p.monitor, "helo.non_fqdn", "msg 1: log monitor=helo.non_fqdn")
	refs[#refs + 1] = p.ref

	t.eq(t.mail(conn, "<s2@example.net>"), "continue", "msg 2: MAIL")
	t.check(not mt.eom_check(conn, MT_HDRADD, HDR), "msg 2: MAIL forgot msg 1's header")
	t.eq(t.rcpt(conn, "<ses2@example.test>"), "continue", "msg 2: RCPT")
	t.eq(t.rcpt(conn, "<ses2b@example.test>"), "continue", "msg 2: 2nd RCPT")
	t.eq(t.eom(conn), "continue", "msg 2: accepted at EOM")
	local h2 = monitor_header(conn, "msg 2")
	p = t.wait_txn("<ses2@example.test>")
	t.eq(p.ref, h2, "msg 2: header ref is the log line's ref")
	t.check(h2 ~= h1, "msg 2: a new ref")
	t.has(p.line, " from=<s2@example.net> to=<ses2@example.test>,<ses2b@example.test> ",
		"msg 2: log has this message's envelope only")
	refs[#refs + 1] = p.ref

	-- RSET after RCPT
	t.eq(t.mail(conn, "<s3@example.net>"), "continue", "txn 3: MAIL")
	t.eq(t.rcpt(conn, "<ses3@example.test>"), "continue", "txn 3: RCPT")
	mt.abort(conn)
	p = t.wait_txn("<ses3@example.test>")
	t.eq(p.verdict, "aborted", "txn 3: RSET logged as aborted")
	refs[#refs + 1] = p.ref

	-- all recipients rejected, then RSET
	t.eq(t.mail(conn, "<s4@example.net>"), "continue", "txn 4: MAIL")
	t.eq(t.rcpt(conn, "<ses4@example>"), "replycode", "txn 4: non-FQDN RCPT rejected")
	t.eq(t.rcpt(conn, "<ses4 b@example.test>"), "replycode", "txn 4: bad RCPT rejected")
	mt.abort(conn)
	p = t.wait_txn("<ses4@example>")
	t.eq(p.verdict, "reject", "txn 4: all recipients refused, verdict reject")
	t.hasnt(p.line, " to=", "txn 4: no accepted recipient")
	refs[#refs + 1] = p.ref

	-- a second MAIL without RSET ends the open transaction
	t.eq(t.mail(conn, "<s5@example.net>"), "continue", "txn 5: MAIL")
	t.eq(t.rcpt(conn, "<ses5@example.test>"), "continue", "txn 5: RCPT")
	t.eq(t.mail(conn, "<s6@example.net>"), "continue", "msg 6: MAIL without RSET")
	p = t.wait_txn("<ses5@example.test>")
	t.eq(p.verdict, "aborted", "txn 5: logged as aborted when the next MAIL came")
	refs[#refs + 1] = p.ref
	t.eq(t.rcpt(conn, "<ses6@example.test>"), "continue", "msg 6: RCPT")
	t.eq(t.eom(conn), "continue", "msg 6: accepted")
	local h6 = monitor_header(conn, "msg 6")
	p = t.wait_txn("<ses6@example.test>")
	t.eq(p.ref, h6, "msg 6: header ref is the log line's ref")
	t.has(p.line, " from=<s6@example.net> to=<ses6@example.test> ",
		"msg 6: nothing left over from txn 5")
	refs[#refs + 1] = p.ref

	-- QUIT in the middle of a transaction
	t.eq(t.mail(conn, "<s7@example.net>"), "continue", "txn 7: MAIL")
	t.eq(t.rcpt(conn, "<ses7@example.test>"), "continue", "txn 7: RCPT")
	mt.disconnect(conn)
	p = t.wait_txn("<ses7@example.test>")
	t.eq(p.verdict, "aborted", "txn 7: QUIT during the transaction logged as aborted")
	refs[#refs + 1] = p.ref

	-- one log line per transaction, each with its own ref
	local seen, distinct = {}, 0
	for _, r in ipairs(refs) do
		if r and not seen[r] then
			seen[r] = true
			distinct = distinct + 1
		end
	end
	t.eq(distinct, 7, "7 transactions, 7 different refs")
	local lines = t.find_txns(" helo=<mycomputer> ")
	t.eq(#lines, 7, "exactly one log line per transaction of the connection")
	for _, r in ipairs(refs) do
		t.eq(#t.find_txns("ref=" .. r .. " "), 1, "ref " .. tostring(r) .. " logged once")
	end

	-- nothing to say: no header
	conn = t.connect { helo = "mail.example.net" }
	t.eq(t.txn(conn, "<s8@example.net>", { "<ses8@example.test>" })[1], "continue",
		"msg 8: RCPT accepted")
	t.check(not mt.eom_check(conn, MT_HDRADD), "msg 8: no header added for a clean message")
	mt.disconnect(conn)
	p = t.wait_txn("<ses8@example.test>")
	t.eq(p.monitor, nil, "msg 8: no monitor field")

	-- two connections at once keep their transactions apart
	local c1 = t.connect { ip = "192.0.2.21", helo = "one.example.net" }
	local c2 = t.connect { ip = "192.0.2.22", helo = "two.example.net" }
	t.eq(t.mail(c1, "<one@example.net>"), "continue", "conn 1: MAIL")
	t.eq(t.mail(c2, "<two@example.net>"), "continue", "conn 2: MAIL")
	t.eq(t.rcpt(c2, "<ses-two@example>"), "replycode", "conn 2: non-FQDN RCPT rejected")
	t.eq(t.rcpt(c1, "<ses-one@example.test>"), "continue", "conn 1: RCPT")
	t.eq(t.rcpt(c2, "<ses-two@example.test>"), "continue", "conn 2: good RCPT")
	t.eq(t.eom(c2), "continue", "conn 2: accepted")
	t.eq(t.eom(c1), "continue", "conn 1: accepted")
	mt.disconnect(c1)
	mt.disconnect(c2)
	local p1 = t.wait_txn("<ses-one@example.test>")
	local p2 = t.wait_txn("<ses-two@example.test>")
	t.has(p1.line, " client=client.example.net[192.0.2.21] helo=<one.example.net> " ..
		"from=<one@example.net> to=<ses-one@example.test> verdict=accept ",
		"conn 1: its own client, helo, envelope")
	t.has(p2.line, " client=client.example.net[192.0.2.22] helo=<two.example.net> " ..
		"from=<two@example.net> to=<ses-two@example.test> " ..
		"refused=<ses-two@example>:reject:envelope.rcpt_non_fqdn verdict=accept ",
		"conn 2: its own client, helo, envelope")
	t.check(p1.ref ~= p2.ref, "two connections, two refs")
end)
