-- tests/milter/dkim.lua - the dkim check against a real DNS server
-- needs: dns
--
-- Run by tests/dkim.sh, which makes the keys and zones (tests/dkim/keys.sh)
-- and the messages, signed by a real signer (tests/dkim/dkimsign.c,
-- libopendkim), in $DKIM_DIR.  Each message goes through the raw milter
-- client; the one Authentication-Results header inserted at the top is
-- parsed back by a strict RFC 8601 parser (authres.lua).  Asserts: pass
-- (simple and relaxed, header.d/s/b with b= the signature's first 8
-- characters); body changed and header changed fail; an expired signature
-- is neutral; a revoked key and a missing key are permerror; a key lookup
-- that times out (through the fault proxy) is temperror and the message
-- is still accepted (dkim.on_error = skip); l= with text appended after
-- signing passes; Ed25519: RFC 8463's own signed example passes (and a
-- message signed by our signer, when libopendkim can sign Ed25519); an
-- unsigned message is dkim=none; of 50 signatures only dkim.max_signatures
-- (5) are verified and reported; dkim.fail_score and dkim.pass_score
-- score; dkim.required refuses unsigned mail from a listed domain with 550
-- 5.7.1 and the ref at end of DATA, accepts it signed, and defers (451
-- 4.7.5) when the key lookup fails; a forged Authentication-Results with
-- our authserv-id is removed when spf is off.

local t = dofile(libdir .. "/lib.lua")
local m = dofile(libdir .. "/msg.lua")(t)
local ar = dofile(libdir .. "/authres.lua")
local kdir = assert(os.getenv("DKIM_DIR"), "DKIM_DIR not set: run through tests/dkim.sh")

local function load(name)
	return ar.load(t, kdir .. "/" .. name)
end

local function send(label, hdrs, body, from)
	return ar.send(t, label, hdrs, body, { from = from })
end

local inserted = ar.inserted

-- The parsed Authentication-Results of an accepted message (exactly one).
local function authres(e, what)
	local all = inserted(e, "Authentication-Results")
	t.eq(#all, 1, what .. ": one Authentication-Results")
	local r, err = ar.parse(all[1])
	t.check(r ~= nil, what .. ": Authentication-Results parses strictly (" ..
		tostring(err) .. ") " .. t.show(all[1]))
	if r then
		t.eq(r.id, "mx.example.test", what .. ": authserv-id")
	end
	return r
end

-- b= of the (first) DKIM-Signature in hdrs, white space removed.
local function bvalue(hdrs)
	for _, h in ipairs(hdrs) do
		if h[1] == "DKIM-Signature" then
			local v = h[2]:gsub("%s", "")
			return v:match("[;]?b=([^;]*)") and v:match(";b=([^;]*)")
		end
	end
end

-- One message file through the milter: the dkim results.
local function check(file, label, want, why, from)
	local hdrs, body = load(file)
	if hdrs == nil then
		print("# SKIP " .. label .. ": no " .. file)
		return
	end
	local e = send(label, hdrs, body, from)
	m.accepted(e, label)
	local r = authres(e, label)
	local d = ar.of(r, "dkim")
	t.eq(#d, 1, label .. ": one dkim result")
	if d[1] then
		t.eq(d[1].result, want, label .. ": dkim=" .. want)
		if want ~= "none" and want ~= "temperror" then
			t.eq(d[1].props["header.s"] ~= nil, true, label .. ": header.s")
		end
		if why then
			t.eq(d[1].comment, why, label .. ": reason comment")
		end
	end
	return d[1], hdrs, e
end

t.main(function()
	t.config("checks = dkim\nscore.reject = 50\n")
	t.start()

	local d, hdrs = check("pass.eml", "pass", "pass")
	if d then
		t.eq(d.props["header.d"], "dkim.test", "pass: header.d")
		t.eq(d.props["header.s"], "sel1", "pass: header.s")
		t.eq(d.props["header.b"], (bvalue(hdrs) or ""):sub(1, 8), "pass: header.b = b= prefix")
	end
	check("relaxed.eml", "relaxed", "pass")
	check("body.eml", "body", "fail", "body hash mismatch")
	check("header.eml", "header", "fail", "signature mismatch")
	check("expired.eml", "expired", "neutral", "signature expired")
	check("revoked.eml", "revoked", "permerror", "key revoked")
	check("nokey.eml", "nokey", "permerror", "no key")
	check("ltag.eml", "ltag", "pass")
	check("ed.eml", "ed25519", "pass")
	d = check("rfc8463.eml", "rfc8463", "pass")
	if d then
		t.eq(d.props["header.d"], "football.example.com", "rfc8463: Ed25519 header.d")
		t.eq(d.props["header.s"], "brisbane", "rfc8463: Ed25519 header.s")
		t.eq(d.props["header.b"], "/gCrinpc", "rfc8463: Ed25519 header.b")
	end
	check("unsigned.eml", "unsigned", "none")
	local p = t.wait_txn("<body@example.test>")
	t.has(p.symbols or "", "dkim.fail", "body changed: dkim.fail scored")
	t.eq(p.score, 1, "dkim.fail_score 1")

	-- 50 signatures: only 5 verified and reported
	local mh, mb = load("many.eml")
	local n = 0
	for _, h in ipairs(mh) do
		n = n + (h[1] == "DKIM-Signature" and 1 or 0)
	end
	t.eq(n, 50, "many: the message has 50 signatures")
	local e = send("many", mh, mb)
	m.accepted(e, "many")
	t.eq(#ar.of(authres(e, "many"), "dkim"), 5, "many: 5 signatures verified and reported")

	-- a key lookup that times out: through the fault proxy (drop.test)
	t.reconfig("checks = dkim\nscore.reject = 50\ndns.resolver = 127.0.0.1:" .. dnsproxy ..
		"\ndns.timeout_ms = 500\n")
	check("timeout.eml", "timeout", "temperror", "key lookup failed")

	-- dkim.required
	t.file("required", "dkim.test REJECT our own domain\ndrop.test REJECT\n")
	t.reconfig("checks = dkim\nscore.reject = 50\ndkim.pass_score = -1\n" ..
		"dkim.required = texthash:" .. t.dir .. "/required\ndns.resolver = 127.0.0.1:" ..
		dnsproxy .. "\ndns.timeout_ms = 500\n")
	local uh, ub = load("unsigned.eml")
	e = send("requnsigned", uh, ub)
	local ref = t.raw_reply(e, "550", "5.7.1",
		"Mail from dkim.test must carry a valid DKIM signature: our own domain",
		"required: unsigned mail from dkim.test refused at end of DATA")
	p = t.wait_txn("<requnsigned@example.test>")
	t.eq(p.ref, ref, "required: the reply's ref is the log line's")
	t.has(p.symbols or "", "dkim.required", "required: logged")
	check("pass.eml", "reqsigned", "pass")
	t.eq(t.wait_txn("<reqsigned@example.test>").score, -1, "dkim.pass_score -1")
	local th, tb = load("timeout-from.eml")
	e = send("reqtimeout", th, tb, "<bob@drop.test>")
	t.raw_reply(e, "451", "4.7.5", "DKIM key of drop.test could not be fetched",
		"required: a failed key lookup defers")

	-- forged Authentication-Results: removed (spf is off)
	local fh, fb = load("pass.eml")
	table.insert(fh, 1, { "Authentication-Results", "mx.example.test; dkim=pass header.d=evil.example" })
	e = send("forged", fh, fb)
	m.accepted(e, "forged")
	local deleted = false
	for _, pk in ipairs(e.packets) do
		if pk.code == "m" and pk.data:sub(5):match("^Authentication%-Results%z") then
			deleted = true
		end
	end
	t.check(deleted, "forged: our Authentication-Results is deleted")
	t.has(t.wait_txn("<forged@example.test>").symbols or "", "dkim.forged_ar", "forged: noted")
end)
