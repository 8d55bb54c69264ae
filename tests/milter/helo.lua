-- tests/milter/helo.lua - the HELO/EHLO checks through the real daemon
--
-- Each bad HELO is answered "continue" at HELO and MAIL and rejected at RCPT
-- (delayed reject), with its sub-check's symbol in the one log line of the
-- transaction.  Covers every sub-check (missing, bare_ip, literal_mismatch,
-- localhost, own_name, syntax, non_fqdn), names that must pass (FQDNs,
-- matching [literals] for IPv4 and IPv6, underscores, localhost from the
-- loopback), postmaster@/abuse@ reachable from a bad-HELO client, and a
-- second EHLO replacing the first one's verdict.  The raw client checks
-- the reply codes and texts and that the reply's ref is the log line's ref;
-- portcullisctl check must give the same answer as the daemon.

local t = dofile(libdir .. "/lib.lua")

local FROM = "<sender@example.net>"
local n = 0

-- One connection per case: conninfo, optional HELO, MAIL, one RCPT whose
-- address is unique to the case, then QUIT.  want is "reject" (with the
-- symbol) or "accept".  opts: ip, host, j (macro), helo (nil = none sent).
local function case(label, opts, want, sym)
	n = n + 1
	local rcpt = string.format("<helo%02d@example.test>", n)
	local conn = t.connect { ip = opts.ip, host = opts.host, j = opts.j }
	if opts.helo ~= nil then
		t.eq(t.helo(conn, opts.helo), "continue", label .. ": HELO answered continue")
	else
		-- miltertest sends a HELO of its own before MAIL unless its state
		-- is past HELO; ABORT moves it there without sending HELO (the
		-- daemon's libmilter ignores an ABORT outside a transaction).
		mt.abort(conn)
	end
	t.eq(t.mail(conn, FROM), "continue", label .. ": MAIL answered continue (reject held)")
	local r = t.rcpt(conn, rcpt)
	if want == "reject" then
		t.eq(r, "replycode", label .. ": RCPT rejected with a reply text")
	else
		t.eq(r, "continue", label .. ": RCPT accepted")
		t.eq(t.eom(conn), "continue", label .. ": end of message accepted")
	end
	mt.disconnect(conn)
	local p = t.wait_txn(rcpt)
	if want == "reject" then
		t.log_has(p, { "refused=" .. rcpt .. ":reject:" .. sym, " symbols=" .. sym,
			" from=" .. FROM }, label .. ": log names " .. sym)
		t.eq(p.verdict, "reject", label .. ": log verdict=reject")
	else
		t.log_has(p, { " to=" .. rcpt }, label .. ": log lists the recipient as accepted")
		t.hasnt(p.line or "", "refused=", label .. ": nothing refused")
		t.eq(p.symbols, nil, label .. ": no symbols")
		t.eq(p.verdict, "accept", label .. ": log verdict=accept")
	end
	return p
end

t.main(function()
	t.start()

	-- every sub-check
	local p = case("missing HELO", {}, "reject", "helo.missing")
	t.has(p.line or "", " helo=<> ", "missing HELO: log shows an empty helo")
	case("bare IPv4", { helo = "192.0.2.10" }, "reject", "helo.bare_ip")
	case("bare IPv6", { helo = "2001:db8::1" }, "reject", "helo.bare_ip")
	case("literal mismatch", { helo = "[192.0.2.99]" }, "reject", "helo.literal_mismatch")
	case("IPv6 literal mismatch", { ip = "2001:db8::25", helo = "[IPv6:2001:db8::26]" },
		"reject", "helo.literal_mismatch")
	case("localhost from remote", { helo = "localhost" }, "reject", "helo.localhost")
	case("localhost.localdomain from remote", { helo = "LocalHost.LocalDomain" }, "reject",
		"helo.localhost")
	case("[127.0.0.1] from remote", { helo = "[127.0.0.1]" }, "reject", "helo.localhost")
	case("own hostname", { helo = "mx.example.test" }, "reject", "helo.own_name")
	case("own hostname, other case and trailing dot", { helo = "MX.Example.TEST." }, "reject",
		"helo.own_name")
	case("the MTA's own name (macro j)", { j = "smtp.example.test", helo = "smtp.example.test" },
		"reject", "helo.own_name")
	case("invalid syntax (space)", { helo = "bad name.example.net" }, "reject", "helo.syntax")
	case("invalid syntax (empty label)", { helo = "bad..example.net" }, "reject", "helo.syntax")
	case("invalid syntax (hyphen at label end)", { helo = "bad-.example.net" }, "reject",
		"helo.syntax")
	case("invalid address literal", { helo = "[192.0.2.300]" }, "reject", "helo.syntax")
	case("empty HELO", { helo = "" }, "reject", "helo.syntax")
	case("non-FQDN", { helo = "mycomputer" }, "reject", "helo.non_fqdn")
	case("numeric top label", { helo = "host.example.123" }, "reject", "helo.non_fqdn")

	-- names that must pass
	case("FQDN", { helo = "mail.example.net" }, "accept")
	case("FQDN with trailing dot", { helo = "mail.example.net." }, "accept")
	case("matching IPv4 literal", { helo = "[192.0.2.10]" }, "accept")
	case("matching IPv6 literal", { ip = "2001:db8::25", helo = "[IPv6:2001:db8::25]" },
		"accept")
	case("underscore in a label", { helo = "my_host.example.net" }, "accept")
	case("localhost from the loopback", { ip = "127.0.0.1", host = "localhost",
		helo = "localhost" }, "accept")

	-- postmaster@ and abuse@ stay reachable from a bad-HELO client
	do
		local conn = t.connect { helo = "mycomputer" }
		t.eq(t.mail(conn, FROM), "continue", "bad HELO: MAIL continue")
		t.eq(t.rcpt(conn, "<postmaster@example.test>"), "continue",
			"bad HELO: postmaster@ accepted")
		t.eq(t.rcpt(conn, "<Abuse@example.test>"), "continue", "bad HELO: abuse@ accepted")
		t.eq(t.rcpt(conn, "<pm-user@example.test>"), "replycode",
			"bad HELO: an ordinary recipient is still rejected")
		t.eq(t.rcpt(conn, "<postmaster>"), "continue",
			"bad HELO: <postmaster> without domain accepted")
		t.eq(t.eom(conn), "continue", "bad HELO: message to postmaster accepted")
		mt.disconnect(conn)
		p = t.wait_txn("<pm-user@example.test>")
		t.log_has(p, { " to=<postmaster@example.test>,<Abuse@example.test>,<postmaster>",
			"refused=<pm-user@example.test>:reject:helo.non_fqdn" },
			"bad HELO: log lists postmaster/abuse accepted, the user refused")
		t.eq(p.verdict, "accept", "bad HELO: message verdict accept")
	end

	-- a second EHLO replaces the first one's verdict (e.g. after STARTTLS)
	do
		local conn = t.connect { helo = "mycomputer" }
		t.eq(t.helo(conn, "mail.example.net"), "continue", "second EHLO answered")
		local r, e = t.txn(conn, FROM, { "<ehlo2-good@example.test>" })
		t.eq(r[1], "continue", "good second EHLO: RCPT accepted")
		t.eq(e, "continue", "good second EHLO: message accepted")
		p = t.wait_txn("<ehlo2-good@example.test>")
		t.log_has(p, { " helo=<mail.example.net> " }, "log shows the second EHLO name")
		t.hasnt(p.line or "", "helo.non_fqdn", "first EHLO's verdict is gone")

		-- and the other way round, on the same connection
		t.eq(t.helo(conn, "[192.0.2.99]"), "continue", "third EHLO answered")
		r = t.txn(conn, FROM, { "<ehlo3-bad@example.test>" })
		t.eq(r[1], "replycode", "bad third EHLO: RCPT rejected")
		p = t.wait_txn("<ehlo3-bad@example.test>")
		t.log_has(p, { "refused=<ehlo3-bad@example.test>:reject:helo.literal_mismatch",
			" helo=<[192.0.2.99]> " }, "bad third EHLO: log names literal_mismatch")
		t.hasnt(p.line or "", "non_fqdn", "no verdict left from the first EHLO")
		mt.disconnect(conn)
	end

	-- reply codes and texts, and the reply's ref is the log line's ref
	local res, why = t.raw {
		{ "conn", "client.example.net", "192.0.2.10" },
		{ "helo", "192.0.2.10" },
		{ "mail", FROM },
		{ "rcpt", "<raw-bareip@example.test>" },
		{ "abort" },
		{ "helo", "mail.example.net" },
		{ "mail", FROM },
		{ "rcpt", "<raw-good@example.test>" },
		{ "eom" },
		{ "quit" },
	}
	if res == nil then
		print("# SKIP reply texts: " .. why)
	else
		t.eq(res[2].code, "c", "raw: HELO continue")
		t.eq(res[3].code, "c", "raw: MAIL continue")
		local ref = t.raw_reply(res[4], "550", "5.5.2",
			"HELO 192.0.2.10 is an IP address; use [192.0.2.10] or your host name (ref ",
			"raw: bare IP reply 550 5.5.2 with the text, ref and contact")
		p = t.wait_txn("<raw-bareip@example.test>")
		t.eq(p.ref, ref, "raw: the reply's ref is the log line's ref")
		t.eq(res[7].code, "c", "raw: good RCPT after a second EHLO continues")
		t.eq(res[8].code, "c", "raw: end of message continues (accept)")
		p = t.wait_txn("<raw-good@example.test>")
		t.check(p.ref ~= nil and p.ref ~= ref, "raw: a new transaction has a new ref")
	end
	res = t.raw {
		{ "conn", "client.example.net", "192.0.2.10" },
		{ "mail", FROM },
		{ "rcpt", "<raw-nohelo@example.test>" },
		{ "quit" },
	}
	if res ~= nil then
		local ref = t.raw_reply(res[3], "503", "5.5.1", "Send HELO or EHLO first (ref ",
			"raw: missing HELO reply 503 5.5.1")
		p = t.wait_txn("<raw-nohelo@example.test>")
		t.eq(p.ref, ref, "raw: missing HELO ref matches the log")
	end

	-- the dry run gives the daemon's answer
	local out, code = t.ctl("check --ip 192.0.2.10 --helo mycomputer --from " .. t.shq(FROM) ..
		" --rcpt '<ctl@example.test>'")
	t.eq(code, 1, "portcullisctl check: exit status 1 for a reject")
	t.match(out, "rcpt#1 +550 5%.5%.2 HELO mycomputer is not a fully qualified domain name " ..
		"%(ref %w+%); contact postmaster@example%.test\n",
		"portcullisctl check: same reject text as the daemon")
end)
