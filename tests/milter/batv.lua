-- tests/milter/batv.lua - the batv check at the milter protocol
--
-- With checks = batv the daemon asks the MTA for change-sender and
-- add/delete-recipient (SMFIF_CHGFROM, SMFIF_ADDRCPT, SMFIF_DELRCPT); with
-- batv out of `checks` (after a reload) it asks for none of them.  A bounce
-- (MAIL FROM:<>) to a tag made by "portcullisctl batv sign" is accepted at
-- EOM with the recipient replaced (delete the tagged one, add the untagged
-- one); to an untagged address it passes RCPT (a sender verification
-- callout stops there) and is refused at EOM with 550 5.7.1; a callout
-- (MAIL <>, RCPT, then ABORT) is logged verdict=aborted, never refused.

local t = dofile(libdir .. "/lib.lua")

t.main(function()
	t.file("keys", "5 milter-test-secret-0123456789\n")
	-- (readable by every user, portcullis and portcullisctl warn on stderr)
	os.execute("chmod 600 " .. t.shq(t.dir .. "/keys"))
	local conf = "checks = batv\nbatv.domains = example.test\n" ..
		"batv.key_file = " .. t.dir .. "/keys\ntrusted_networks = 192.0.2.0/24"
	t.config(conf)
	t.start()

	-- the actions are negotiated
	local conn = t.connect { helo = "pc.example.test" }
	t.check(mt.test_action(conn, SMFIF_CHGFROM), "batv on: SMFIF_CHGFROM negotiated")
	t.check(mt.test_action(conn, SMFIF_ADDRCPT), "batv on: SMFIF_ADDRCPT negotiated")
	t.check(mt.test_action(conn, SMFIF_DELRCPT), "batv on: SMFIF_DELRCPT negotiated")
	-- a trusted client's message: accepted, nothing refused
	t.eq(t.mail(conn, "<user@example.test>"), "continue", "trusted: MAIL")
	t.eq(t.rcpt(conn, "<friend@remote.example>"), "continue", "trusted: RCPT")
	t.eq(t.eom(conn), "continue", "trusted: EOM")
	mt.disconnect(conn)

	-- a bounce to a valid tag: the recipient is replaced
	local tag, code = t.ctl("batv sign user@example.test")
	tag = (tag or ""):gsub("%s+$", "")
	t.eq(code, 0, "portcullisctl batv sign exits 0")
	t.match(tag, "^prvs=5%d%d%d%x%x%x%x%x%x=user@example%.test$", "the tag has key 5")
	conn = t.connect { ip = "198.51.100.7", host = "mx.elsewhere.example", helo = "mx.elsewhere.example" }
	t.eq(t.mail(conn, "<>"), "continue", "genuine bounce: MAIL <>")
	t.eq(t.rcpt(conn, "<" .. tag .. ">"), "continue", "genuine bounce: RCPT")
	t.eq(t.eom(conn), "continue", "genuine bounce: accepted at EOM")
	t.check(mt.eom_check(conn, MT_RCPTADD, "<user@example.test>"),
		"genuine bounce: <user@example.test> added")
	t.check(mt.eom_check(conn, MT_RCPTDELETE, "<" .. tag .. ">"),
		"genuine bounce: the tagged recipient deleted")
	mt.disconnect(conn)

	-- a sender verification callout: MAIL <>, RCPT, then the MTA aborts
	conn = t.connect { ip = "198.51.100.8", host = "mx.verifier.example", helo = "mx.verifier.example" }
	t.eq(t.mail(conn, "<>"), "continue", "callout: MAIL <>")
	t.eq(t.rcpt(conn, "<callout@example.test>"), "continue", "callout: RCPT accepted")
	mt.abort(conn)
	mt.disconnect(conn)
	local p = t.wait_txn("callout@example.test")
	t.eq(p and p.verdict, "aborted", "callout: logged verdict=aborted")

	-- a forged bounce: RCPT passes, EOM refuses
	conn = t.connect { ip = "198.51.100.7", host = "mx.elsewhere.example", helo = "mx.elsewhere.example" }
	t.eq(t.mail(conn, "<>"), "continue", "forged bounce: MAIL <>")
	t.eq(t.rcpt(conn, "<forged@example.test>"), "continue", "forged bounce: RCPT accepted")
	t.eq(t.eom(conn), "replycode", "forged bounce: refused at EOM")
	mt.disconnect(conn)
	p = t.wait_txn("forged@example.test")
	t.eq(p and p.verdict, "reject", "forged bounce: logged verdict=reject")
	t.eq(p and p.symbols, "batv.missing", "forged bounce: symbol batv.missing")
	-- the reply text, with a raw client
	local res, why = t.raw {
		{ "conn", "mx.elsewhere.example", "198.51.100.7" }, { "helo", "mx.elsewhere.example" },
		{ "mail", "<>" }, { "rcpt", "<forged2@example.test>" }, { "eom" }, { "quit" },
	}
	if res == nil then
		print("# SKIP reply text: " .. why)
	else
		t.eq(res[4] and res[4].code, "c", "forged bounce (raw): RCPT continue")
		local ref = t.raw_reply(res[5], "550", "5.7.1",
			"Bounce not accepted: <forged2@example.test> carries no BATV tag, so this " ..
			"answers mail we did not send (ref ", "forged bounce (raw): 550 5.7.1 text")
		t.eq(t.wait_txn("forged2@example.test").ref, ref, "forged bounce (raw): ref in the log")
	end

	-- without batv, none of the envelope actions is asked for
	t.reconfig("trusted_networks = 192.0.2.0/24")
	conn = t.connect { helo = "pc.example.test" }
	t.check(not mt.test_action(conn, SMFIF_CHGFROM), "batv off: no SMFIF_CHGFROM")
	t.check(not mt.test_action(conn, SMFIF_ADDRCPT), "batv off: no SMFIF_ADDRCPT")
	t.check(not mt.test_action(conn, SMFIF_DELRCPT), "batv off: no SMFIF_DELRCPT")
	mt.disconnect(conn)
end)
