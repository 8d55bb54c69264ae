-- tests/milter/negotiate.lua - the no-reply steps negotiated with each kind of MTA
--
-- The engine never refuses at connect, HELO or MAIL (what it finds there
-- is held until RCPT), so the daemon asks an MTA that speaks milter
-- protocol 6 (it offers SMFIP_SKIP, as Postfix >= 2.6 and Sendmail >= 8.14
-- do) for no reply to those steps (SMFIP_NR_CONN, NR_HELO, NR_MAIL), as it
-- does for headers (NR_HDR, NR_EOH); never for RCPT.  With the default
-- checks and HELO localhost (helo.localhost = reject), for each MTA:
--  1. miltertest's own offer (version 6, every step flag): NR_CONN, NR_HELO,
--     NR_MAIL, NR_HDR, NR_EOH negotiated, NR_RCPT not; the refusal comes at
--     RCPT (replycode), the log line says verdict=reject helo.localhost;
--  2. the same offer through the raw client: the reply at RCPT is the
--     550 5.7.1 text with the ref of the log line (the connect, HELO and
--     MAIL steps get no reply at all: the client would wait for one);
--  3. an older MTA (Postfix's milter_protocol = 4: version 4, no SKIP, no
--     no-reply flags): none of NR_CONN/HELO/MAIL negotiated; each of those
--     steps answered "continue" by the daemon; the same 550 at RCPT;
--  4. a version 6 MTA that offers SKIP but no no-reply flag: none
--     negotiated to the MTA (libmilter answers for an MTA without them);
--     the steps still go through and the refusal still comes at RCPT.

local t = dofile(libdir .. "/lib.lua")

local NR_ENV = SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_MAIL
local NR_ALL = NR_ENV | SMFIP_NR_RCPT | SMFIP_NR_DATA | SMFIP_NR_UNKN | SMFIP_NR_HDR |
	SMFIP_NR_EOH | SMFIP_NR_BODY
local V4 = { 4, 0x37F, 0x3F }                    -- protocol 4 (Postfix milter_protocol = 4)
local V6_NO_NR = { 6, 0x1FFFFF & ~NR_ALL, 0x1FF } -- SKIP, but no no-reply step

local function negotiated(conn, label, want)
	for _, o in ipairs { { "SMFIP_NR_CONN", SMFIP_NR_CONN }, { "SMFIP_NR_HELO", SMFIP_NR_HELO },
		{ "SMFIP_NR_MAIL", SMFIP_NR_MAIL } } do
		t.eq(mt.test_option(conn, o[2]), want,
			label .. ": " .. o[1] .. (want and " negotiated" or " not negotiated"))
	end
	t.check(not mt.test_option(conn, SMFIP_NR_RCPT), label .. ": SMFIP_NR_RCPT not negotiated")
end

-- HELO localhost, a sender, a recipient: refused at RCPT, logged.
local function refused_at_rcpt(conn, label, rcpt)
	t.eq(t.helo(conn, "localhost"), "continue", label .. ": HELO localhost goes on")
	t.eq(t.mail(conn, "<s@example.net>"), "continue", label .. ": MAIL goes on")
	t.eq(t.rcpt(conn, rcpt), "replycode", label .. ": refused at RCPT")
	mt.disconnect(conn) -- the transaction's log line comes at its end
	local p = t.wait_txn(rcpt)
	t.eq(p.verdict, "reject", label .. ": log verdict=reject")
	t.has(p.line, "helo.localhost", label .. ": log names helo.localhost")
end

t.main(function()
	t.start()

	-- 1. miltertest's offer: every step flag, version 6
	local conn = t.connect()
	negotiated(conn, "v6", true)
	t.check(mt.test_option(conn, SMFIP_NR_HDR), "v6: SMFIP_NR_HDR negotiated")
	t.check(mt.test_option(conn, SMFIP_NR_EOH), "v6: SMFIP_NR_EOH negotiated")
	refused_at_rcpt(conn, "v6", "<nr-v6@example.test>")

	-- 2. the same through the raw client: the reply text at RCPT
	local res, why = t.raw {
		{ "conn", "client.example.net", "192.0.2.10" },
		{ "helo", "localhost" },
		{ "mail", "<s@example.net>" },
		{ "rcpt", "<nr-raw@example.test>" },
		{ "quit" },
	}
	if res == nil then
		t.check(false, "raw client: " .. tostring(why))
	else
		t.eq((res.protocol or 0) & NR_ENV, NR_ENV, "raw v6: NR_CONN, NR_HELO, NR_MAIL negotiated")
		local ref = t.raw_reply(res[4], "550", "5.7.1", "(ref ",
			"raw v6: HELO localhost refused at RCPT with 550 5.7.1 and a ref")
		local p = t.wait_txn("<nr-raw@example.test>")
		t.eq(p.ref, ref, "raw v6: the reply's ref is the log line's ref")
	end

	-- 3. an older MTA: protocol 4
	conn = t.connect { offer = V4 }
	negotiated(conn, "v4", false)
	refused_at_rcpt(conn, "v4", "<nr-v4@example.test>")
	res, why = t.raw {
		offer = V4,
		{ "conn", "client.example.net", "192.0.2.10" },
		{ "helo", "localhost" },
		{ "mail", "<s@example.net>" },
		{ "rcpt", "<nr-raw4@example.test>" },
		{ "quit" },
	}
	if res == nil then
		t.check(false, "raw client v4: " .. tostring(why))
	else
		t.eq((res.protocol or 0) & NR_ENV, 0, "raw v4: no NR_CONN/HELO/MAIL negotiated")
		t.eq(res[1].code, "c", "raw v4: connect answered continue")
		t.eq(res[2].code, "c", "raw v4: HELO answered continue")
		t.eq(res[3].code, "c", "raw v4: MAIL answered continue")
		t.raw_reply(res[4], "550", "5.7.1", "(ref ",
			"raw v4: HELO localhost refused at RCPT with 550 5.7.1 and a ref")
	end

	-- 4. version 6 with SKIP but no no-reply step offered
	conn = t.connect { offer = V6_NO_NR }
	negotiated(conn, "v6 without NR", false)
	refused_at_rcpt(conn, "v6 without NR", "<nr-none@example.test>")
end)
