-- tests/milter/ratelimit.lua - rate limits: per authenticated user (also
-- when auth_whitelist lets it skip every other check), per client network
-- (IPv4 /24, IPv6 /64), per sender, per recipient, connections per
-- registered domain of the client name; the sliding window; exemptions;
-- portcullisctl ratelimit list and reset
--
-- The daemon's clock is set by the test (t.clock, PORTCULLIS_CLOCK_FILE):
-- nothing sleeps.  Each refusal is read with the raw milter client:
-- "451 4.7.1 Rate limit reached: WHAT VALUE has a rate limit of N UNIT per
-- WINDOW (ref R); contact ...", and the log names it.

local t = dofile(libdir .. "/lib.lua")

local T0 = 1800000000 -- 2027-01-15 08:00:00 UTC: 8 h into a day window
local function at(sec)
	t.clock(T0 + sec)
end

-- One transaction (t.send in lib.lua): the RCPT entries and the EOM entry.
local send, accepted = t.send, t.accepted

local function limited(e, what, text)
	return t.raw_reply(e, "451", "4.7.1", "Rate limit reached: " .. text, what)
end

local function n_accepted(list)
	local n = 0
	for _, e in ipairs(list) do
		if accepted(e) then
			n = n + 1
		end
	end
	return n
end

t.main(function()
	at(0)
	t.file("ok.cidr", "203.0.113.5/32 OK\n")
	t.config("checks = access, ratelimit\n" ..
		"access.client = cidr:" .. t.dir .. "/ok.cidr\n" ..
		"ratelimit.rules = auth 3 rcpts 1d; client/24 2 msgs 1h; " ..
		"sender 4 msgs 10m; rcpt 5 msgs 1h\n" ..
		"auth_whitelist = yes\n" ..
		"score.reject = 0\nscore.tag = 0")
	t.start()
	local r, e, ref, p

	-- an authenticated user: 3 recipients a day, then 451 4.7.1; the
	-- client/24 and sender rules do not apply to it (auth_whitelist)
	r, e = send { auth = "alice", ip = "198.51.100.1", rcpts = { "<a@example.net>", "<b@example.net>" } }
	t.eq(n_accepted(r), 2, "auth: 2 recipients accepted")
	t.check(accepted(e), "auth: message accepted")
	r, e = send { auth = "alice", ip = "198.51.100.1", rcpts = { "<c@example.net>", "<d@example.net>" } }
	t.check(accepted(r[1]), "auth: the 3rd recipient of the day accepted")
	ref = limited(r[2], "auth: the 4th recipient deferred",
		"auth alice has a rate limit of 3 recipients per day")
	p = t.wait_txn("ref=" .. ref)
	t.log_has(p, { "refused=<d@example.net>:defer:ratelimit.auth" }, "auth: log line names ratelimit.auth")
	t.check((t.log()):find("ratelimit: auth alice reached its rate limit of 3 recipients per day", 1, true) ~= nil,
		"auth: a warning about the login")
	t.check((t.log()):find("warning: ref=" .. ref .. " ratelimit: auth alice", 1, true) ~= nil,
		"auth: logged as a warning")
	-- another user is not affected
	r = send { auth = "bob", ip = "198.51.100.1", rcpts = { "<a@example.net>" } }
	t.check(accepted(r[1]), "auth: another login has its own counter")

	-- the window slides: a day later 2/3 of yesterday still counts (8 h of
	-- the new day window have passed: weight 16/24), so one more fits
	at(86400)
	r = send { auth = "alice", ip = "198.51.100.1", rcpts = { "<e@example.net>", "<f@example.net>" } }
	t.check(accepted(r[1]), "sliding: 1 recipient fits a day later")
	limited(r[2], "sliding: the next one still deferred",
		"auth alice has a rate limit of 3 recipients per day")
	-- at 20:00 of that day 1/6 of the old day counts: 0.5 + 1, one more fits
	at(86400 + 12 * 3600)
	r = send { auth = "alice", ip = "198.51.100.1", rcpts = { "<g@example.net>", "<h@example.net>" } }
	t.check(accepted(r[1]), "sliding: 12 h later one more fits")
	limited(r[2], "sliding: then deferred again", "auth alice has a rate limit of 3")
	-- two days later all is forgotten
	at(3 * 86400)
	r = send { auth = "alice", ip = "198.51.100.1", rcpts = { "<i@example.net>", "<j@example.net>", "<k@example.net>" } }
	t.eq(n_accepted(r), 3, "sliding: the full limit again two windows later")

	-- portcullisctl ratelimit list and reset
	local out, code = t.ctl("ratelimit list auth:")
	t.eq(code, 0, "ctl list: exit 0")
	t.has(out, "auth:alice|rcpts|86400 count=3.0", "ctl list: alice's counter")
	t.hasnt(out, "auth:bob", "ctl list: bob's counter expired two windows after its start")
	r = send { auth = "alice", ip = "198.51.100.1", rcpts = { "<l@example.net>" } }
	limited(r[1], "before reset: deferred", "auth alice")
	out, code = t.ctl("ratelimit reset auth:alice")
	t.eq(code, 0, "ctl reset: exit 0")
	t.has(out, "deleted auth:alice|rcpts|86400", "ctl reset: says what it deleted")
	r = send { auth = "alice", ip = "198.51.100.1", rcpts = { "<l@example.net>" } }
	t.check(accepted(r[1]), "after reset: accepted at once")
	out, code = t.ctl("ratelimit reset auth:nobody")
	t.eq(code, 1, "ctl reset of an unknown key: exit 1")

	-- a client network: 2 messages an hour for the /24, then 451 at RCPT
	at(4 * 86400)
	r = send { ip = "192.0.2.10", from = "<s1@example.org>", rcpts = { "<x@example.test>" } }
	t.check(accepted(r[1]), "client/24: 1st message")
	r = send { ip = "192.0.2.11", from = "<s2@example.org>", rcpts = { "<x2@example.test>" } }
	t.check(accepted(r[1]), "client/24: 2nd message from a neighbour")
	r = send { ip = "192.0.2.99", from = "<s3@example.org>", rcpts = { "<x3@example.test>" } }
	limited(r[1], "client/24: the 3rd deferred",
		"client 192.0.2.0/24 has a rate limit of 2 messages per hour")
	r = send { ip = "192.0.3.1", from = "<s4@example.org>", rcpts = { "<x4@example.test>" } }
	t.check(accepted(r[1]), "client/24: another /24 is not limited")
	-- a whitelisted client is exempt
	for i = 1, 3 do
		r = send { ip = "203.0.113.5", from = "<w@example.org>", rcpts = { "<y@example.test>" } }
		t.check(accepted(r[1]), "whitelisted client: message " .. i .. " accepted")
	end
	at(4 * 86400 + 2 * 3600 + 1)
	r = send { ip = "192.0.2.99", from = "<s3@example.org>", rcpts = { "<x3@example.test>" } }
	t.check(accepted(r[1]), "client/24: accepted again two hours later")

	-- a sender: 4 messages in 10 minutes, from different networks
	at(5 * 86400)
	for i = 1, 4 do
		r = send { ip = "10.0." .. i .. ".1", from = "<Bulk@Example.org>", rcpts = { "<z@example.test>" } }
		t.check(accepted(r[1]), "sender: message " .. i .. " accepted")
	end
	r = send { ip = "10.0.9.1", from = "<bulk@example.org>", rcpts = { "<z2@example.test>" } }
	limited(r[1], "sender: the 5th deferred (case-insensitive)",
		"sender bulk@example.org has a rate limit of 4 messages per 10 minutes")
	-- the null sender is never counted as a sender
	for i = 1, 5 do
		r = send { ip = "10.1." .. i .. ".1", from = "<>", rcpts = { "<nb" .. i .. "@example.test>" } }
		t.check(accepted(r[1]), "null sender: message " .. i .. " accepted")
	end

	-- a recipient: 5 messages an hour
	at(6 * 86400)
	for i = 1, 5 do
		r = send { ip = "10.2." .. i .. ".1", from = "<r" .. i .. "@example.org>", rcpts = { "<popular@example.test>" } }
		t.check(accepted(r[1]), "rcpt: message " .. i .. " accepted")
	end
	r = send { ip = "10.2.9.1", from = "<r9@example.org>", rcpts = { "<popular@example.test>", "<other@example.test>" } }
	limited(r[1], "rcpt: the 6th deferred",
		"rcpt popular@example.test has a rate limit of 5 messages per hour")
	t.check(accepted(r[2]), "rcpt: another recipient of the same message accepted")

	-- connections per registered domain of the client name; IPv6 client
	-- networks (/64 for client/24)
	t.reconfig("checks = ratelimit\n" ..
		"ratelimit.rules = domain 2 conns 1h; client/24 1 msgs 1h\n" ..
		"score.reject = 0\nscore.tag = 0")
	at(7 * 86400)
	r = send { host = "mx1.big.example.co.uk", ip = "10.3.0.1", rcpts = { "<d1@example.test>" } }
	t.check(accepted(r[1]), "domain: 1st connection")
	r = send { host = "mx2.Big.example.co.uk", ip = "10.3.1.1", rcpts = { "<d2@example.test>" } }
	t.check(accepted(r[1]), "domain: 2nd connection, another host of the domain")
	r = send { host = "out.mx3.big.example.co.uk", ip = "10.3.2.1", rcpts = { "<d3@example.test>" } }
	limited(r[1], "domain: the 3rd connection deferred (at RCPT)",
		"domain example.co.uk has a rate limit of 2 connections per hour")
	for i = 1, 3 do
		r = send { host = "unknown", ip = "10.4." .. i .. ".1", rcpts = { "<d4@example.test>" } }
		t.check(accepted(r[1]), "domain: a client without a verified name is not counted " .. i)
	end
	r = send { host = "unknown", ip = "2001:db8:1:2::5", rcpts = { "<v6@example.test>" } }
	t.check(accepted(r[1]), "client/24, IPv6: 1st message")
	r = send { host = "unknown", ip = "2001:db8:1:2:ffff::6", rcpts = { "<v6@example.test>" } }
	limited(r[1], "client/24, IPv6: another address of the /64 deferred",
		"client 2001:db8:1:2::/64 has a rate limit of 1 message per hour")
	r = send { host = "unknown", ip = "2001:db8:1:3::5", rcpts = { "<v6@example.test>" } }
	t.check(accepted(r[1]), "client/24, IPv6: another /64 accepted")
end)
