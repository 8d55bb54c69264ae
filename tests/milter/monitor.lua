-- tests/milter/monitor.lua - check modes: monitor, defer, off; tagging
--
-- A sub-check in monitor mode (helo.bare_ip = monitor) changes nothing: the
-- message is accepted and EOM adds X-Portcullis-Monitor naming the symbol
-- and the transaction's ref (the log line's ref, monitor= in the log).  With
-- score.tag = 2 a SCORE 3 adds X-Portcullis-Status with the score and the
-- symbols.  Then, reloading the configuration with SIGUSR1 between parts:
-- helo.mode = monitor makes every HELO sub-check a monitor (and
-- header_prefix renames the header); helo.non_fqdn = defer / helo.mode =
-- defer turn rejects into 450 4.x.x temporary failures; off silences a
-- sub-check.

local t = dofile(libdir .. "/lib.lua")

local FROM = "<sender@example.net>"

-- One message on a new connection; returns the connection (still open,
-- for mt.eom_check) and the parsed log line.
local function message(label, helo, from, rcpt, want)
	local conn = t.connect { helo = helo }
	t.eq(t.mail(conn, from or FROM), "continue", label .. ": MAIL continue")
	local r = t.rcpt(conn, rcpt)
	t.eq(r, want or "continue", label .. ": RCPT answered " .. (want or "continue"))
	if r == "continue" then
		t.eq(t.eom(conn), "continue", label .. ": accepted at EOM")
	else
		mt.abort(conn)
	end
	return conn, t.wait_txn(rcpt)
end

t.main(function()
	t.file("helo.hash", "scored.example.net SCORE 3\n")
	t.file("sender.hash", "scorer@example.org SCORE 3\n")
	local tables = "access.helo = texthash:" .. t.dir .. "/helo.hash\n" ..
		"access.sender = texthash:" .. t.dir .. "/sender.hash\n"
	t.config(tables .. "helo.bare_ip = monitor\nscore.tag = 2")
	t.start()
	local conn, p

	-- a monitored sub-check: accepted, header + log say what would have been
	conn, p = message("bare IP in monitor mode", "192.0.2.10", FROM, "<mon01@example.test>")
	t.eq(p.verdict, "accept", "monitor: verdict accept")
	t.eq(p.monitor, "helo.bare_ip", "monitor: log monitor=helo.bare_ip")
	t.eq(p.symbols, nil, "monitor: not counted as a fired symbol")
	t.hasnt(p.line, "refused=", "monitor: nothing refused")
	t.check(mt.eom_check(conn, MT_HDRADD, "X-Portcullis-Monitor",
		"helo.bare_ip (ref " .. tostring(p.ref) .. ")"),
		"monitor: X-Portcullis-Monitor: helo.bare_ip (ref <the log's ref>)")
	t.check(not mt.eom_check(conn, MT_HDRADD, "X-Portcullis-Status"),
		"monitor: no status header below score.tag")
	mt.disconnect(conn)

	-- score.tag: a SCORE 3 reaches tag 2
	conn, p = message("SCORE 3, tag 2", "scored.example.net", FROM, "<mon02@example.test>")
	t.eq(p.score, 3, "tag: log score=3.0")
	t.eq(p.symbols, "access.helo(3)", "tag: log symbols=access.helo(3)")
	t.check(mt.eom_check(conn, MT_HDRADD, "X-Portcullis-Status",
		"Yes, score=3.0 tag=2.0 symbols=access.helo(3) (ref " .. tostring(p.ref) .. ")"),
		"tag: X-Portcullis-Status with score, tag, symbols and the log's ref")
	t.check(not mt.eom_check(conn, MT_HDRADD, "X-Portcullis-Monitor"),
		"tag: no monitor header without a monitored check")
	mt.disconnect(conn)

	-- both at once: a monitored HELO and a scored sender
	conn, p = message("monitor and tag", "192.0.2.10", "<scorer@example.org>",
		"<mon03@example.test>")
	t.check(mt.eom_check(conn, MT_HDRADD, "X-Portcullis-Monitor",
		"helo.bare_ip (ref " .. tostring(p.ref) .. ")"), "both: monitor header")
	t.check(mt.eom_check(conn, MT_HDRADD, "X-Portcullis-Status",
		"Yes, score=3.0 tag=2.0 symbols=access.sender(3) (ref " .. tostring(p.ref) .. ")"),
		"both: status header")
	mt.disconnect(conn)

	-- a monitored check next to a real reject: the reject still happens
	conn, p = message("monitor and reject", "192.0.2.10", "<user@localhost>",
		"<mon04@example.test>", "replycode")
	t.has(p.line, "refused=<mon04@example.test>:reject:envelope.sender_non_fqdn",
		"monitor + reject: the sender is rejected")
	t.eq(p.monitor, "helo.bare_ip", "monitor + reject: the monitor note is logged too")
	mt.disconnect(conn)

	-- the whole module in monitor mode, and another header prefix
	t.reconfig("helo.mode = monitor\nheader_prefix = X-Test\n")
	conn, p = message("helo.mode = monitor, localhost", "localhost", FROM, "<mon05@example.test>")
	t.eq(p.monitor, "helo.localhost", "module monitor: log monitor=helo.localhost")
	t.check(mt.eom_check(conn, MT_HDRADD, "X-Test-Monitor",
		"helo.localhost (ref " .. tostring(p.ref) .. ")"),
		"module monitor: X-Test-Monitor header (header_prefix)")
	t.check(not mt.eom_check(conn, MT_HDRADD, "X-Portcullis-Monitor"),
		"module monitor: no header with the old prefix")
	mt.disconnect(conn)
	conn, p = message("helo.mode = monitor, non-FQDN", "mycomputer", FROM, "<mon06@example.test>")
	t.eq(p.monitor, "helo.non_fqdn", "module monitor: log monitor=helo.non_fqdn")
	mt.disconnect(conn)

	-- defer mode: a reject becomes a temporary failure
	t.reconfig("helo.non_fqdn = defer\nhelo.mode = defer\nhelo.syntax = off\n")
	conn, p = message("helo.non_fqdn = defer", "mycomputer", FROM, "<mon07@example.test>",
		"replycode")
	t.has(p.line, "refused=<mon07@example.test>:defer:helo.non_fqdn", "defer: logged as defer")
	t.eq(p.verdict, "defer", "defer: verdict defer")
	mt.disconnect(conn)
	conn, p = message("helo.mode = defer", "192.0.2.10", FROM, "<mon08@example.test>", "replycode")
	t.has(p.line, "refused=<mon08@example.test>:defer:helo.bare_ip",
		"module defer: bare_ip (reject) softened to defer")
	mt.disconnect(conn)
	conn, p = message("helo.syntax = off", "bad..name", FROM, "<mon09@example.test>")
	t.eq(p.symbols, nil, "off: no symbol")
	t.eq(p.monitor, nil, "off: no monitor note")
	t.check(not mt.eom_check(conn, MT_HDRADD), "off: no header")
	mt.disconnect(conn)

	local res, why = t.raw {
		{ "conn", "client.example.net", "192.0.2.10" },
		{ "helo", "mycomputer" }, { "mail", FROM }, { "rcpt", "<raw1@example.test>" }, { "abort" },
		{ "helo", "192.0.2.10" }, { "mail", FROM }, { "rcpt", "<raw2@example.test>" }, { "quit" },
	}
	if res == nil then
		print("# SKIP reply texts: " .. why)
		return
	end
	local ref = t.raw_reply(res[4], "450", "4.5.2",
		"HELO mycomputer is not a fully qualified domain name (ref ",
		"raw: defer mode answers 450 4.5.2")
	t.eq(t.wait_txn("<raw1@example.test>").ref, ref, "raw: deferred ref matches the log")
	t.raw_reply(res[7], "450", "4.5.2", "HELO 192.0.2.10 is an IP address",
		"raw: module defer mode answers 450 4.5.2")
end)
