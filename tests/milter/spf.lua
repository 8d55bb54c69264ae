-- tests/milter/spf.lua - the spf check against a real DNS server
-- needs: dns
--
-- Zone tests/dns/spf.test.zone.  Asserts: pass adds Received-SPF and
-- Authentication-Results at the top (exact values, authserv-id); fail
-- rejects 550 5.7.23 at RCPT with the exact text and the log's ref and
-- symbol; softfail adds spf.softfail_score; permerror is monitor by
-- default (X-Portcullis-Monitor with the ref) and 550 5.7.24 in reject
-- mode; the null sender is checked by its HELO (fail: 550 5.7.23 naming
-- the HELO); spf.check_helo checks HELO for every message; a timeout and a
-- SERVFAIL through the fault proxy give temperror: on_error=defer 451
-- 4.7.24 with the domain, on_error=skip accepts with "temperror" headers;
-- spf.mode defer answers 450 4.7.23, monitor accepts with the monitor
-- header; spf.skip_clients, authenticated senders ({auth_authen}) and
-- trusted_networks are not checked (no headers).  Incoming
-- Authentication-Results with our authserv-id (any case, after a comment
-- and folding) are removed by index at EOM before ours is inserted, and
-- noted as spf.forged_ar; foreign ones (also "auth.example.test.evil") are
-- kept: checked on the wire (SMFIR_CHGHEADER index, name, empty value, in
-- order before SMFIR_INSHEADER) and with miltertest's MT_HDRDELETE.

local t = dofile(libdir .. "/lib.lua")

local BASE = "checks = spf\nscore.tag = 0\nspf.authserv_id = auth.example.test\n"
local GOOD, BAD = "192.0.2.20", "192.0.2.21"
local HELO = "client.example.net"

local function hdr(conn, name, value, what)
	local ok = mt.eom_check(conn, MT_HDRINSERT, name, value)
	if not ok then
		print("#   want " .. name .. ": " .. value)
	end
	t.check(ok, what)
end

-- An accepted message; returns the open conn for header checks and the log.
local function accepted(label, ip, helo, from, rcpt)
	local conn = t.connect { ip = ip, helo = helo }
	t.eq(t.mail(conn, from), "continue", label .. ": MAIL continue")
	t.eq(t.rcpt(conn, rcpt), "continue", label .. ": RCPT continue")
	t.eq(t.eom(conn), "continue", label .. ": accepted at EOM")
	return conn, t.wait_txn(rcpt)
end

-- A refused recipient through the raw client: checks code, text, ref.
local function refused(label, ip, helo, from, rcpt, code, xcode, text, how, sym)
	local res, why = t.raw {
		{ "conn", "client.example.net", ip }, { "helo", helo }, { "mail", from },
		{ "rcpt", rcpt }, { "quit" },
	}
	if res == nil then
		print("# SKIP " .. label .. ": " .. why)
		return
	end
	local ref = t.raw_reply(res[4], code, xcode, text .. " (ref ", label .. ": " .. code ..
		" " .. xcode .. " " .. text)
	local p = t.wait_txn(rcpt)
	t.eq(p.ref, ref, label .. ": the reply's ref is the log line's")
	t.log_has(p, { "refused=" .. rcpt .. ":" .. how .. ":" .. sym }, label .. ": log names " .. sym)
end

t.main(function()
	t.config(BASE)
	t.start()

	local conn, p = accepted("pass", GOOD, HELO, "<a@pass.spf.test>", "<p1@example.test>")
	hdr(conn, "Received-SPF", "pass (mx.example.test: domain of pass.spf.test designates " ..
		"192.0.2.20 as permitted sender) client-ip=192.0.2.20; envelope-from=\"a@pass.spf.test\"; " ..
		"helo=client.example.net; " ..
		"identity=mailfrom; receiver=mx.example.test;", "pass: Received-SPF at the top")
	hdr(conn, "Authentication-Results", "auth.example.test; spf=pass smtp.mailfrom=pass.spf.test",
		"pass: Authentication-Results with our authserv-id")
	mt.disconnect(conn)
	t.hasnt(p.line, "symbols=", "pass: no symbol")

	refused("fail", BAD, HELO, "<a@pass.spf.test>", "<f1@example.test>", "550", "5.7.23",
		"SPF domain pass.spf.test does not permit client 192.0.2.21 to send its mail",
		"reject", "spf.fail")

	-- The domain's explanation (exp=, macro-expanded) in the fail reply;
	-- '%' doubled for libmilter.  A hostile one is left out.
	refused("fail exp", BAD, HELO, "<joe@exp.spf.test>", "<f2@example.test>", "550", "5.7.23",
		"SPF domain exp.spf.test does not permit client 192.0.2.21 to send its mail: " ..
		"192.0.2.21 is not a sender of exp.spf.test (joe 100%%)", "reject", "spf.fail")
	refused("fail bad exp", BAD, HELO, "<joe@badexp.spf.test>", "<f3@example.test>", "550",
		"5.7.23", "SPF domain badexp.spf.test does not permit client 192.0.2.21 to send its " ..
		"mail", "reject", "spf.fail")

	-- A sender the envelope checks call bad syntax is still checked by
	-- its domain (RFC 7208 4.3: no local part is "postmaster").
	conn = accepted("bad syntax", GOOD, HELO, "<@pass.spf.test>", "<b1@example.test>")
	hdr(conn, "Received-SPF", "pass (mx.example.test: domain of pass.spf.test designates " ..
		"192.0.2.20 as permitted sender) client-ip=192.0.2.20; envelope-from=\"@pass.spf.test\"; " ..
		"helo=client.example.net; identity=mailfrom; receiver=mx.example.test;",
		"bad syntax: checked, envelope-from as given")
	mt.disconnect(conn)
	refused("bad syntax fail", BAD, HELO, "<a b@pass.spf.test>", "<b2@example.test>", "550",
		"5.7.23", "SPF domain pass.spf.test does not permit client 192.0.2.21 to send its mail",
		"reject", "spf.fail")

	-- Null sender, HELO not a domain name: none, still a header; the HELO
	-- quoted when it is not a dot-atom; an IPv6 client-ip quoted.
	conn = accepted("helo not fqdn", BAD, "A2345678", "<>", "<n2@example.test>")
	hdr(conn, "Received-SPF", "none (mx.example.test: the HELO name is not a domain name, " ..
		"nothing to check) client-ip=192.0.2.21; envelope-from=\"\"; helo=A2345678; " ..
		"identity=helo; receiver=mx.example.test;", "helo not fqdn: none with a header")
	mt.disconnect(conn)
	conn = accepted("helo literal", "2001:db8::5", "[192.0.2.1]", "<a@neutral.spf.test>",
		"<n3@example.test>")
	hdr(conn, "Received-SPF", "neutral (mx.example.test: domain of neutral.spf.test does not " ..
		"designate 2001:db8::5 as permitted sender) client-ip=\"2001:db8::5\"; " ..
		"envelope-from=\"a@neutral.spf.test\"; helo=\"[192.0.2.1]\"; identity=mailfrom; " ..
		"receiver=mx.example.test;", "helo literal: quoted helo and client-ip")
	mt.disconnect(conn)

	conn, p = accepted("softfail", BAD, HELO, "<a@soft.spf.test>", "<s1@example.test>")
	hdr(conn, "Authentication-Results", "auth.example.test; spf=softfail smtp.mailfrom=soft.spf.test",
		"softfail: Authentication-Results")
	mt.disconnect(conn)
	t.log_has(p, { "symbols=spf.softfail(3)", "score=3.0" }, "softfail: scored 3")

	conn, p = accepted("none", BAD, HELO, "<a@none.spf.test>", "<n1@example.test>")
	hdr(conn, "Authentication-Results", "auth.example.test; spf=none smtp.mailfrom=none.spf.test",
		"none: Authentication-Results")
	mt.disconnect(conn)

	conn, p = accepted("permerror monitor", GOOD, HELO, "<a@perm.spf.test>", "<m1@example.test>")
	t.check(mt.eom_check(conn, MT_HDRADD, "X-Portcullis-Monitor", "spf.permerror (ref " ..
		tostring(p.ref) .. ")"), "permerror: monitor header with the ref (default monitor)")
	hdr(conn, "Authentication-Results", "auth.example.test; spf=permerror smtp.mailfrom=perm.spf.test",
		"permerror: Authentication-Results")
	hdr(conn, "Received-SPF", "permerror (mx.example.test: error in processing during lookup " ..
		"of perm.spf.test) client-ip=192.0.2.20; envelope-from=\"a@perm.spf.test\"; " ..
		"helo=client.example.net; problem=\"perm.spf.test: invalid term 'foo:bar'\"; identity=mailfrom; " ..
		"receiver=mx.example.test;", "permerror: Received-SPF with problem=")
	mt.disconnect(conn)
	t.log_has(p, { "monitor=spf.permerror" }, "permerror: monitor in the log")

	-- The null sender: the HELO identity.
	refused("null sender", BAD, "helo.spf.test", "<>", "<h1@example.test>", "550", "5.7.23",
		"SPF HELO helo.spf.test does not permit client 192.0.2.21 to send its mail",
		"reject", "spf.fail")
	conn = accepted("null sender pass", GOOD, "helo.spf.test", "<>", "<h2@example.test>")
	hdr(conn, "Authentication-Results", "auth.example.test; spf=pass smtp.helo=helo.spf.test",
		"null sender pass: smtp.helo result")
	mt.disconnect(conn)

	-- Forged Authentication-Results: ours removed, foreign kept.
	conn = t.connect { ip = GOOD, helo = HELO }
	t.eq(t.mail(conn, "<a@pass.spf.test>"), "continue", "forged: MAIL continue")
	t.eq(t.rcpt(conn, "<g1@example.test>"), "continue", "forged: RCPT continue")
	t.check(not mt.test_option(conn, SMFIP_NOHDRS), "forged: spf asks for the headers")
	for _, h in ipairs {
		{ "Authentication-Results", "other.example.net; spf=pass smtp.mailfrom=x.example" },
		{ "Authentication-Results", "auth.example.test; spf=pass smtp.mailfrom=pass.spf.test" },
	} do
		t.check(mt.header(conn, h[1], h[2]) == nil, "forged: header sent")
		t.eq(t.reply(conn), "continue", "forged: header continue")
	end
	t.eq(t.eom(conn), "continue", "forged: accepted")
	t.check(mt.eom_check(conn, MT_HDRDELETE, "Authentication-Results"),
		"forged: an Authentication-Results is deleted")
	hdr(conn, "Authentication-Results", "auth.example.test; spf=pass smtp.mailfrom=pass.spf.test",
		"forged: ours inserted")
	mt.disconnect(conn)
	p = t.wait_txn("<g1@example.test>")
	t.log_has(p, { "symbols=spf.forged_ar", "verdict=accept" }, "forged: noted in the log")

	-- The same on the wire: exact indexes and order.
	local function hdrpkt(name, value)
		return { "raw", "L", name .. "\0" .. value .. "\0" }
	end
	local res, why = t.raw {
		{ "conn", "client.example.net", GOOD }, { "helo", HELO },
		{ "mail", "<a@pass.spf.test>" }, { "rcpt", "<g2@example.test>" },
		hdrpkt("Authentication-Results", "other.example.net; spf=pass smtp.mailfrom=x.example"),
		hdrpkt("Authentication-Results", "auth.example.test; spf=pass smtp.mailfrom=pass.spf.test"),
		hdrpkt("Subject", "auth.example.test; not an A-R"),
		hdrpkt("authentication-results", "(forged)\r\n\t AUTH.Example.TEST ; dkim=pass"),
		hdrpkt("Authentication-Results", "auth.example.test.evil; spf=pass"),
		{ "raw", "N", "" }, { "raw", "B", "test\r\n" }, { "eom" }, { "quit" },
	}
	if res == nil then
		print("# SKIP forged on the wire: " .. why)
	else
		local eom
		for _, e in ipairs(res) do
			if e.cmd == "E" then
				eom = e
			end
		end
		local got = {}
		for _, k in ipairs(eom and eom.packets or {}) do
			if k.code == "m" or k.code == "i" or k.code == "h" then
				local idx = string.unpack(">I4", k.data)
				local name, value = k.data:sub(5):match("^([^%z]*)%z?(.*)$")
				got[#got + 1] = k.code .. " " .. idx .. " " .. name ..
					(k.code == "m" and (" [" .. value:gsub("%z$", "") .. "]") or "")
			else
				got[#got + 1] = k.code
			end
		end
		-- spf reads headers; the MTA need not wait for a reply to each
		-- (SMFIP_NR_HDR 0x80) nor to end of headers (SMFIP_NR_EOH 0x40000)
		t.check(res.protocol and (res.protocol // 0x80) % 2 == 1 and
			(res.protocol // 0x40000) % 2 == 1,
			"headers and end of headers negotiated without replies (got " ..
			string.format("0x%x", res.protocol or 0) .. ")")
		local want = {
			"m 3 authentication-results []", "m 2 Authentication-Results []",
			"i 0 Received-SPF", "i 0 Authentication-Results", "c",
		}
		local ok = #got == #want
		for i = 1, #want do
			ok = ok and got[i] == want[i]
		end
		if not ok then
			print("#   got:  " .. table.concat(got, " | "))
			print("#   want: " .. table.concat(want, " | "))
		end
		t.check(ok, "forged on the wire: ours (#2, #3) removed last first, then ours inserted")
		p = t.wait_txn("<g2@example.test>")
		t.log_has(p, { "symbols=spf.forged_ar(0),spf.forged_ar(0)" },
			"forged on the wire: both noted")
	end

	-- Temporary DNS failures through the fault proxy.
	local PROXY = "dns.resolver = 127.0.0.1:" .. tostring(dnsproxy) .. "\ndns.timeout_ms = 300\n"
	t.reconfig(BASE .. PROXY .. "spf.permerror = reject\nspf.check_helo = yes\n")
	refused("timeout", GOOD, HELO, "<a@temp.spf.test>", "<t1@example.test>", "451", "4.7.24",
		"SPF check of domain temp.spf.test failed temporarily (DNS), try again later",
		"defer", "spf.error")
	refused("servfail", GOOD, HELO, "<a@sfail.spf.test>", "<t2@example.test>", "451", "4.7.24",
		"SPF check of domain sfail.spf.test failed temporarily (DNS), try again later",
		"defer", "spf.error")
	refused("permerror reject", GOOD, HELO, "<a@perm.spf.test>", "<r1@example.test>", "550",
		"5.7.24", "SPF record of domain perm.spf.test is invalid (permerror)", "reject",
		"spf.permerror")
	-- check_helo: a failing HELO decides even for a passing sender domain.
	refused("check_helo", BAD, "helo.spf.test", "<a@neutral.spf.test>", "<r2@example.test>",
		"550", "5.7.23", "SPF HELO helo.spf.test does not permit client 192.0.2.21 to send its mail",
		"reject", "spf.fail")
	conn = accepted("check_helo pass", GOOD, "helo.spf.test", "<a@pass.spf.test>", "<r3@example.test>")
	hdr(conn, "Authentication-Results", "auth.example.test; spf=pass smtp.mailfrom=pass.spf.test; " ..
		"spf=pass smtp.helo=helo.spf.test", "check_helo: both identities in Authentication-Results")
	mt.disconnect(conn)

	t.reconfig(BASE .. PROXY .. "spf.on_error = skip\n")
	conn = accepted("on_error skip", GOOD, HELO, "<a@temp.spf.test>", "<k1@example.test>")
	hdr(conn, "Authentication-Results", "auth.example.test; spf=temperror smtp.mailfrom=temp.spf.test",
		"on_error=skip: accepted with spf=temperror")
	mt.disconnect(conn)

	-- Modes.
	t.reconfig(BASE .. "spf.mode = defer\n")
	refused("mode defer", BAD, HELO, "<a@pass.spf.test>", "<d1@example.test>", "450", "4.7.23",
		"SPF domain pass.spf.test does not permit client 192.0.2.21 to send its mail", "defer",
		"spf.fail")
	t.reconfig(BASE .. "spf.mode = monitor\n")
	conn, p = accepted("mode monitor", BAD, HELO, "<a@pass.spf.test>", "<o1@example.test>")
	t.check(mt.eom_check(conn, MT_HDRADD, "X-Portcullis-Monitor", "spf.fail (ref " ..
		tostring(p.ref) .. ")"), "monitor: X-Portcullis-Monitor names spf.fail and the ref")
	hdr(conn, "Authentication-Results", "auth.example.test; spf=fail smtp.mailfrom=pass.spf.test",
		"monitor: Authentication-Results still added")
	mt.disconnect(conn)

	-- Forwarders are not checked.
	t.reconfig(BASE .. "spf.skip_clients = 192.0.2.16/28\n")
	conn, p = accepted("skip_clients", BAD, HELO, "<a@pass.spf.test>", "<x1@example.test>")
	t.check(not mt.eom_check(conn, MT_HDRINSERT, "Received-SPF"), "skip_clients: no Received-SPF")
	mt.disconnect(conn)
	t.hasnt(p.line, "symbols=", "skip_clients: no spf symbol")

	-- Authenticated senders and trusted networks are skipped by the engine.
	t.reconfig(BASE)
	conn = t.connect { ip = BAD, helo = HELO }
	mt.macro(conn, SMFIC_MAIL, "{auth_authen}", "alice")
	t.eq(t.mail(conn, "<a@pass.spf.test>"), "continue", "auth: MAIL continue")
	t.eq(t.rcpt(conn, "<u1@example.test>"), "continue", "auth: RCPT continue (not rejected)")
	t.eq(t.eom(conn), "continue", "auth: accepted")
	t.check(not mt.eom_check(conn, MT_HDRINSERT, "Received-SPF"), "auth: no Received-SPF")
	mt.disconnect(conn)
	p = t.wait_txn("<u1@example.test>")
	t.log_has(p, { "auth=alice", "verdict=accept" }, "auth: logged as authenticated")
	t.reconfig(BASE .. "trusted_networks = 192.0.2.21/32\n")
	conn, p = accepted("trusted", BAD, HELO, "<a@pass.spf.test>", "<w1@example.test>")
	t.check(not mt.eom_check(conn, MT_HDRINSERT, "Received-SPF"), "trusted: no Received-SPF")
	mt.disconnect(conn)
end)
