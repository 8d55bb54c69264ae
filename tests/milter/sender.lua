-- tests/milter/sender.lua - sender_domain and sender_mxns through the daemon
-- needs: dns
--
-- Zones: tests/dns/sndr.test.zone, sndns1.test.zone, sndns2.test.zone.
-- sender_domain: a domain with MX, with only A (implicit MX), with only
-- AAAA pass; NXDOMAIN and "no MX, A or AAAA" give 550 5.1.8 with their own
-- texts, a null MX 550 5.7.27; the null sender, address literals and
-- domains that are not fully qualified are skipped (no lookup, no warning).  sender_mxns: bogus MX (loopback, private, link-local, an IP
-- address as MX host, implicit MX on loopback) 550 5.1.8 naming the host,
-- address and kind; one public MX host is enough; MX hosts without address
-- are not judged; a cidr: mx_access table (REJECT on the first or second
-- MX host, DUNNO exception, DEFER 450 4.7.1, SCORE, OK beating a bad HELO);
-- ns_access on the domain's NS and on the nearest parent's NS.  Then, with
-- reloads: sub-check modes (monitor adds X-Portcullis-Monitor, defer gives
-- 450 4.x.x, off), module modes monitor/defer, and each on_error path
-- through the fault proxy (SERVFAIL and timeout): sender_domain defers
-- with 450 4.1.8 by default and accepts with skip, sender_mxns skips by
-- default and defers with 451 4.4.3; monitor mode turns the error into a
-- monitor note.  Every reject/defer: code, enhanced code, text, the ref in
-- the reply equal to the log's, refused=<rcpt>:reject|defer:SYMBOL.

local t = dofile(libdir .. "/lib.lua")
local header = t.raw_header

local IP = "192.0.2.10"
local HELO = "mail.example.net"

local n = 0


-- One transaction over the raw client.  o.from: MAIL FROM; o.code/xcode/
-- text/symbol: the expected RCPT reply (nil: accepted, then EOM);
-- o.symbols / o.monitor: the log's symbols= / monitor= (nil: none);
-- o.helo: HELO.  Returns the parsed log line.
local function case(label, o)
	n = n + 1
	local rcpt = string.format("<snd%02d@example.test>", n)
	local steps = { { "conn", "client.example.net", IP }, { "helo", o.helo or HELO },
		{ "mail", o.from }, { "rcpt", rcpt } }
	if o.code == nil then
		steps[#steps + 1] = { "eom" }
	end
	steps[#steps + 1] = { "quit" }
	local res = t.raw(steps)
	local p = t.wait_txn(rcpt)
	if o.code == nil then
		t.eq(res[4] and res[4].code, "c", label .. ": RCPT accepted")
		t.eq(p.verdict, "accept", label .. ": log verdict=accept")
		local mon = header(res[5], "X-Portcullis-Monitor")
		if o.monitor then
			t.eq(mon, o.monitor .. " (ref " .. tostring(p.ref) .. ")",
				label .. ": X-Portcullis-Monitor names " .. o.monitor .. " and the ref")
		else
			t.eq(mon, nil, label .. ": no monitor header")
		end
	else
		local ref = t.raw_reply(res[4], o.code, o.xcode, o.text,
			label .. ": " .. o.code .. " " .. o.xcode .. " " .. o.text)
		t.eq(p.ref, ref, label .. ": the reply's ref is the log's")
		local how = o.code:sub(1, 1) == "5" and "reject" or "defer"
		t.has(p.line, "refused=" .. rcpt .. ":" .. how .. ":" .. o.symbol,
			label .. ": log refused=" .. rcpt .. ":" .. how .. ":" .. o.symbol)
	end
	t.eq(p.symbols, o.symbols, label .. ": log symbols=" .. tostring(o.symbols))
	t.eq(p.monitor, o.monitor, label .. ": log monitor=" .. tostring(o.monitor))
	return p
end

local function rejected(label, from, code, xcode, text, symbol, extra)
	local o = { from = from, code = code, xcode = xcode, text = text, symbol = symbol,
		symbols = symbol }
	for k, v in pairs(extra or {}) do
		o[k] = v
	end
	return case(label, o)
end

local function accepted(label, from, extra)
	local o = { from = from }
	for k, v in pairs(extra or {}) do
		o[k] = v
	end
	return case(label, o)
end

-- The daemon's warning for a check that failed, with the transaction's ref.
local function warned(p, module, what, onerr, label)
	-- defer: "check failed: REASON (on_error=defer)"; skip: "check failed,
	-- skipped (on_error=skip; with defer the answer would be: REASON)"
	local want = "ref=" .. tostring(p.ref) .. " " .. module ..
		(onerr == "skip" and " check failed, skipped (on_error=skip; with defer the answer " ..
		"would be: " or " check failed: ")
	local tail = onerr == "skip" and ")" or " (on_error=defer)"
	local found = false
	for line in t.log():gmatch("[^\n]+") do
		if line:find(want, 1, true) and line:find(what, 1, true) and
			line:sub(-#tail) == tail then
			found = true
		end
	end
	if not found then
		print("#   missing warning: " .. t.show(want) .. " ..." .. t.show(what) .. "..." ..
			t.show(tail))
	end
	t.check(found, label .. ": warning names the failure, the ref and on_error=" .. onerr)
end

t.main(function()
	local d = t.dir .. "/"
	t.file("mx.cidr", [[
# MX host addresses
5.6.7.9/32      DUNNO
5.6.7.0/24      REJECT Snowshoe network
5.6.8.0/24      DEFER Network under review
5.6.9.0/24      SCORE 4
5.6.10.0/24     OK
]])
	t.file("ns.cidr", "5.6.20.0/24     REJECT Bulletproof DNS hoster\n")
	local base = table.concat({
		"checks = helo, sender_domain, sender_mxns",
		"sender_mxns.mx_access = cidr:" .. d .. "mx.cidr",
		"sender_mxns.ns_access = cidr:" .. d .. "ns.cidr",
	}, "\n") .. "\n"
	t.config(base)
	t.start()
	local res, why = t.raw { { "conn", "probe.example.net", IP }, { "quit" } }
	if res == nil and why then
		print("# SKIP: " .. why)
		return
	end
	local p

	-- sender_domain: passes
	accepted("MX", "<u@ok.sndr.test>")
	accepted("only A (implicit MX)", "<u@implicit.sndr.test>")
	accepted("only AAAA (implicit MX)", "<u@implicit6.sndr.test>")
	accepted("null sender skipped", "<>")
	accepted("address literal skipped", "<u@[192.0.2.1]>")
	-- a domain that is not fully qualified is not looked up (the
	-- envelope check's business): no DNS failure, no warning
	p = accepted("non-FQDN sender skipped", "<joe@workstation>")
	t.hasnt(t.log(), "ref=" .. tostring(p.ref) .. " sender_", "non-FQDN sender: no warning")
	t.hasnt(t.log(), "domain workstation", "non-FQDN sender: no DNS lookup failure logged")

	-- sender_domain: sub-checks
	rejected("NXDOMAIN", "<u@nx.sndr.test>", "550", "5.1.8",
		"Sender address <u@nx.sndr.test> rejected: domain nx.sndr.test does not exist (ref ",
		"sender_domain.nxdomain")
	rejected("no MX/A/AAAA", "<u@nomail.sndr.test>", "550", "5.1.8",
		"Sender address <u@nomail.sndr.test> rejected: domain nomail.sndr.test has no MX, A " ..
		"or AAAA record (ref ", "sender_domain.no_mx")
	rejected("null MX", "<u@nullmx.sndr.test>", "550", "5.7.27",
		"Sender address <u@nullmx.sndr.test> rejected: domain nullmx.sndr.test does not " ..
		"accept mail (null MX) (ref ", "sender_domain.null_mx")

	-- sender_mxns.bogus_mx
	rejected("loopback MX", "<u@loopmx.sndr.test>", "550", "5.1.8",
		"Sender address <u@loopmx.sndr.test> rejected: domain loopmx.sndr.test has no MX " ..
		"host with a public address (lo.sndr.test[127.0.0.1] is a loopback address) (ref ",
		"sender_mxns.bogus_mx")
	rejected("private MX hosts (IPv4 and IPv6)", "<u@privmx.sndr.test>", "550", "5.1.8",
		"domain privmx.sndr.test has no MX host with a public address " ..
		"(p1.sndr.test[10.1.2.3] is a private address)", "sender_mxns.bogus_mx")
	rejected("link-local IPv6 MX", "<u@llmx.sndr.test>", "550", "5.1.8",
		"(ll.sndr.test[fe80::1] is a link-local address)", "sender_mxns.bogus_mx")
	rejected("IP address as MX host", "<u@ipmx.sndr.test>", "550", "5.1.8",
		"(127.0.0.1[127.0.0.1] is a loopback address)", "sender_mxns.bogus_mx")
	rejected("implicit MX on loopback", "<u@implicitlo.sndr.test>", "550", "5.1.8",
		"(implicitlo.sndr.test[127.0.0.2] is a loopback address)", "sender_mxns.bogus_mx")
	accepted("one public MX host among private ones", "<u@mixedmx.sndr.test>")
	accepted("MX host without address not judged", "<u@nohostmx.sndr.test>")

	-- sender_mxns.mx_access
	rejected("mx_access REJECT", "<u@blockmx.sndr.test>", "550", "5.7.1",
		"Sender address <u@blockmx.sndr.test> rejected: MX host mx.blockmx.sndr.test" ..
		"[5.6.7.8] of blockmx.sndr.test: Snowshoe network (ref ", "sender_mxns.mx_access")
	rejected("mx_access REJECT on the second MX host", "<u@blockmx2.sndr.test>", "550",
		"5.7.1", "MX host mx.blockmx.sndr.test[5.6.7.8] of blockmx2.sndr.test: Snowshoe " ..
		"network", "sender_mxns.mx_access")
	accepted("mx_access DUNNO exception", "<u@dunnomx.sndr.test>")
	rejected("mx_access DEFER", "<u@defermx.sndr.test>", "450", "4.7.1",
		"Sender address <u@defermx.sndr.test> deferred: MX host mx.defermx.sndr.test" ..
		"[5.6.8.1] of defermx.sndr.test: Network under review (ref ",
		"sender_mxns.mx_access")
	p = accepted("mx_access SCORE", "<u@scoremx.sndr.test>",
		{ symbols = "sender_mxns.mx_access(4)" })
	t.eq(p.score, 4, "mx_access SCORE: log score=4.0")
	accepted("mx_access OK beats a bad HELO", "<u@okmx.sndr.test>",
		{ helo = "mycomputer", symbols = "helo.non_fqdn,sender_mxns.mx_access" })

	-- sender_mxns.ns_access
	rejected("ns_access REJECT", "<u@sndns1.test>", "550", "5.7.1",
		"Sender address <u@sndns1.test> rejected: NS host ns2.sndns1.test[5.6.20.1] of " ..
		"sndns1.test: Bulletproof DNS hoster (ref ", "sender_mxns.ns_access")
	rejected("ns_access on the parent domain's NS", "<u@mail.sndns1.test>", "550", "5.7.1",
		"NS host ns2.sndns1.test[5.6.20.1] of mail.sndns1.test: Bulletproof DNS hoster",
		"sender_mxns.ns_access")
	accepted("NS not listed", "<u@sndns2.test>")

	-- the shipped example table config/bogon-networks.cidr
	t.reconfig((base:gsub("sender_mxns.mx_access = [^\n]*", "sender_mxns.mx_access = cidr:" ..
		libdir .. "/../../config/bogon-networks.cidr")))
	rejected("bogon-networks.cidr refuses a private MX beside a public one",
		"<u@mixedmx.sndr.test>", "550", "5.7.1", "Sender address <u@mixedmx.sndr.test> " ..
		"rejected: MX host p1.sndr.test[10.1.2.3] of mixedmx.sndr.test: private address " ..
		"(RFC 1918) (ref ", "sender_mxns.mx_access")
	accepted("bogon-networks.cidr: public MX hosts pass", "<u@ok.sndr.test>")

	-- sub-check modes
	t.reconfig(base .. table.concat({
		"sender_domain.null_mx = monitor",
		"sender_domain.nxdomain = defer",
		"sender_domain.no_mx = off",
		"sender_mxns.bogus_mx = monitor",
	}, "\n"))
	accepted("null_mx = monitor", "<u@nullmx.sndr.test>", { monitor = "sender_domain.null_mx" })
	rejected("nxdomain = defer", "<u@nx.sndr.test>", "450", "4.1.8",
		"Sender address <u@nx.sndr.test> rejected: domain nx.sndr.test does not exist (ref ",
		"sender_domain.nxdomain")
	accepted("no_mx = off", "<u@nomail.sndr.test>")
	accepted("bogus_mx = monitor", "<u@loopmx.sndr.test>", { monitor = "sender_mxns.bogus_mx" })

	-- module modes
	t.reconfig(base .. "sender_domain.mode = monitor\nsender_mxns.mode = defer\n")
	accepted("sender_domain.mode = monitor", "<u@nx.sndr.test>",
		{ monitor = "sender_domain.nxdomain" })
	rejected("sender_mxns.mode = defer (bogus MX)", "<u@loopmx.sndr.test>", "450", "4.1.8",
		"(lo.sndr.test[127.0.0.1] is a loopback address)", "sender_mxns.bogus_mx")
	rejected("sender_mxns.mode = defer (table REJECT)", "<u@blockmx.sndr.test>", "450",
		"4.7.1", "rejected: MX host mx.blockmx.sndr.test[5.6.7.8]", "sender_mxns.mx_access")
	t.reconfig(base .. "sender_domain.mode = defer\nsender_mxns.mode = off\n")
	rejected("sender_domain.mode = defer (null MX)", "<u@nullmx.sndr.test>", "450", "4.7.27",
		"does not accept mail (null MX)", "sender_domain.null_mx")
	accepted("sender_mxns.mode = off", "<u@loopmx.sndr.test>")

	-- on_error through the fault proxy: fail.test SERVFAILs, drop.test
	-- never answers
	local proxy = "dns.resolver = 127.0.0.1:" .. dnsproxy .. "\ndns.timeout_ms = 300\n"
	t.reconfig(base .. proxy)
	accepted("proxy: a good domain still passes", "<u@ok.sndr.test>")
	p = rejected("sender_domain SERVFAIL, on_error=defer (default)", "<u@x.sndr.fail.test>",
		"450", "4.1.8", "Sender address <u@x.sndr.fail.test> deferred: DNS lookup of MX " ..
		"for domain x.sndr.fail.test failed (servfail) (ref ", "sender_domain.error")
	warned(p, "sender_domain", "Sender address <u@x.sndr.fail.test> deferred: DNS lookup of " ..
		"MX for domain x.sndr.fail.test failed (servfail)", "defer", "sender_domain SERVFAIL")
	warned(p, "sender_mxns", "Sender address <u@x.sndr.fail.test> deferred: DNS lookup of " ..
		"the MX records of domain x.sndr.fail.test failed", "skip", "sender_mxns SERVFAIL")
	rejected("sender_domain timeout, on_error=defer", "<u@x.sndr.drop.test>", "450", "4.1.8",
		"DNS lookup of MX for domain x.sndr.drop.test failed (timeout) (ref ",
		"sender_domain.error")
	p = accepted("sender_mxns host SERVFAIL, on_error=skip (default)", "<u@mxfail.sndr.test>")
	warned(p, "sender_mxns", "Sender address <u@mxfail.sndr.test> deferred: DNS lookup of " ..
		"the MX or NS host addresses of domain mxfail.sndr.test failed", "skip",
		"sender_mxns host SERVFAIL")
	p = accepted("sender_mxns host timeout, on_error=skip", "<u@mxdrop.sndr.test>")
	warned(p, "sender_mxns", "DNS lookup of the MX or NS host addresses of domain " ..
		"mxdrop.sndr.test failed", "skip", "sender_mxns host timeout")
	accepted("bogus MX but another host unresolved: undecided, skip",
		"<u@mxbogusfail.sndr.test>")

	t.reconfig(base .. proxy .. "sender_domain.on_error = skip\n")
	p = accepted("sender_domain SERVFAIL, on_error=skip", "<u@x.sndr.fail.test>")
	warned(p, "sender_domain", "DNS lookup of MX for domain x.sndr.fail.test failed " ..
		"(servfail)", "skip", "sender_domain on_error=skip")
	accepted("sender_domain timeout, on_error=skip", "<u@x.sndr.drop.test>")

	t.reconfig(base .. proxy .. "sender_domain.on_error = skip\nsender_mxns.on_error = defer\n")
	rejected("sender_mxns MX SERVFAIL, on_error=defer", "<u@x.sndr.fail.test>", "451",
		"4.4.3", "Sender address <u@x.sndr.fail.test> deferred: DNS lookup of the MX " ..
		"records of domain x.sndr.fail.test failed (ref ", "sender_mxns.error")
	rejected("sender_mxns host SERVFAIL, on_error=defer", "<u@mxfail.sndr.test>", "451",
		"4.4.3", "DNS lookup of the MX or NS host addresses of domain mxfail.sndr.test " ..
		"failed (ref ", "sender_mxns.error")
	rejected("sender_mxns host timeout, on_error=defer", "<u@mxdrop.sndr.test>", "451",
		"4.4.3", "of domain mxdrop.sndr.test failed", "sender_mxns.error")
	rejected("bogus MX undecided, on_error=defer", "<u@mxbogusfail.sndr.test>", "451",
		"4.4.3", "of domain mxbogusfail.sndr.test failed", "sender_mxns.error")
	accepted("on_error=defer: a good domain still passes", "<u@ok.sndr.test>")

	t.reconfig(base .. proxy .. "sender_domain.mode = monitor\n")
	accepted("sender_domain SERVFAIL in monitor mode", "<u@x.sndr.fail.test>",
		{ monitor = "sender_domain.error" })
end)
