-- tests/milter/greylist.lua - greylisting: delays, window, expiry, AWL,
-- skip lists, IPv6 /64, several recipients, sender normalisation, dynamic
-- names, name pools and score-aware mode
--
-- The daemon's clock is set by the test (t.clock, PORTCULLIS_CLOCK_FILE):
-- nothing sleeps.  Each case reads the SMTP reply texts with the raw
-- milter client (451 4.7.1 with the earliest retry time, the ref) and the
-- X-Greylist header added at end of message.  SPF pools are in
-- greylist-pools.lua (they need the DNS server).

local t = dofile(libdir .. "/lib.lua")

local T0 = 1800000000 -- 2027-01-15 08:00:00 UTC
local now = T0

local function at(sec)
	now = T0 + sec
	t.clock(now)
end

-- One transaction over the raw client (t.send in lib.lua): the RCPT entries
-- in order and the EOM entry.
local send, accepted = t.send, t.accepted

-- Expect the recipient's entry to be a greylist deferral naming why and the
-- retry delay in seconds.
local function deferred(e, why, wait, what)
	return t.raw_reply(e, "451", "4.7.1", "Greylisted: " .. why .. ", please retry after ", what) and
		t.has(e.data, "(in " .. wait .. " seconds)", what .. ": retry in " .. wait .. " s")
end

local function retry_time(sec)
	return os.date("!%Y-%m-%d %H:%M:%S UTC", T0 + sec)
end

t.main(function()
	at(0)
	t.file("senders.hash", "lists.example.org OK\n")
	t.file("rcpts.hash", "nogrey@example.test OK\n")
	t.file("client.cidr", "192.0.2.50/32 SCORE 5\n")
	t.config("checks = access, greylist\n" ..
		"access.client = cidr:" .. t.dir .. "/client.cidr\n" ..
		"greylist.pools = no\n" ..
		"greylist.awl_count = 0\n" ..
		"greylist.skip_clients = 203.0.113.0/24\n" ..
		"greylist.skip_senders = texthash:" .. t.dir .. "/senders.hash\n" ..
		"greylist.skip_recipients = texthash:" .. t.dir .. "/rcpts.hash\n" ..
		"auth_whitelist = no\n" ..
		"score.reject = 0\nscore.tag = 0")
	t.start()
	local r, e, p

	-- first contact: 451 4.7.1 with the earliest retry time
	r, e = send { rcpts = { "<bob@example.test>" } }
	deferred(r[1], "first attempt", 300, "first contact deferred")
	t.has(r[1].data, "retry after " .. retry_time(300), "first contact: names the retry time")
	p = t.wait_txn("<bob@example.test>")
	t.log_has(p, { "refused=<bob@example.test>:defer:greylist.new" }, "log: defer greylist.new")
	t.eq(p.ref, t.split_reply(r[1].data).ref, "log: the reply's ref")

	-- an early retry: still deferred, with the time left
	at(100)
	r = send { rcpts = { "<bob@example.test>" } }
	deferred(r[1], "retried too early", 200, "early retry deferred")

	-- a retry after the delay passes and gets X-Greylist
	at(301)
	r, e = send { rcpts = { "<bob@example.test>" } }
	t.check(accepted(r[1]), "retry after the delay: RCPT accepted")
	t.check(accepted(e), "retry after the delay: message accepted")
	t.eq(t.raw_header(e, "X-Greylist"),
		"delayed 301 seconds by portcullis-" .. t.version .. " at mx.example.test; " ..
		os.date("!%a, %d %b %Y %H:%M:%S +0000", T0 + 301),
		"X-Greylist: delayed 301 seconds by portcullis-VERSION at HOST; DATE")

	-- the same triplet later: passes at once, no X-Greylist
	at(5000)
	r, e = send { rcpts = { "<bob@example.test>" } }
	t.check(accepted(r[1]) and accepted(e), "passed triplet: accepted at once")
	t.eq(t.raw_header(e, "X-Greylist"), nil, "passed triplet: no X-Greylist")
	-- another address of the same /24 is the same client network
	r = send { ip = "192.0.2.77", rcpts = { "<bob@example.test>" } }
	t.check(accepted(r[1]), "same /24: passes")
	-- another /24 is not
	r = send { ip = "192.0.3.10", rcpts = { "<bob@example.test>" } }
	deferred(r[1], "first attempt", 300, "another /24: deferred")

	-- a retry after the window starts over
	at(10000)
	r = send { rcpts = { "<carol@example.test>" } }
	deferred(r[1], "first attempt", 300, "window: first contact")
	at(10000 + 2 * 86400 + 1)
	r = send { rcpts = { "<carol@example.test>" } }
	deferred(r[1], "first attempt", 300, "retry after the 2-day window: deferred again (expired)")
	at(10000 + 2 * 86400 + 400)
	r = send { rcpts = { "<carol@example.test>" } }
	t.check(accepted(r[1]), "window: the new delay passes")

	-- expiry: a passed triplet unused for 35 days is forgotten
	at(5000 + 35 * 86400 + 1)
	r = send { rcpts = { "<bob@example.test>" } }
	deferred(r[1], "first attempt", 300, "expired after 35 days unused: deferred again")
	local base = 5000 + 35 * 86400 + 1

	-- several recipients: each on its own, passed ones are not delayed again
	at(base + 400)
	r, e = send { rcpts = { "<bob@example.test>", "<dave@example.test>", "<nogrey@example.test>" } }
	t.check(accepted(r[1]), "multi: the retried recipient passes")
	deferred(r[2], "first attempt", 300, "multi: a new recipient is deferred")
	t.check(accepted(r[3]), "multi: a skip_recipients recipient passes on first contact")
	t.check(accepted(e), "multi: message accepted for the others")
	t.check(t.raw_header(e, "X-Greylist") ~= nil, "multi: one X-Greylist")
	t.eq(#e.packets, 2, "multi: exactly one header added, then the reply")

	-- skip lists
	r = send { ip = "203.0.113.5", rcpts = { "<erin@example.test>" } }
	t.check(accepted(r[1]), "skip_clients: passes on first contact")
	r = send { from = "<news@lists.example.org>", rcpts = { "<erin@example.test>" } }
	t.check(accepted(r[1]), "skip_senders: passes on first contact")
	r = send { host = "mail-wr1-f41.google.com", ip = "209.85.221.41", rcpts = { "<erin@example.test>" } }
	t.check(accepted(r[1]), "built-in pool names (google.com): pass on first contact")
	r = send { auth = "frank", rcpts = { "<erin@example.test>" } }
	t.check(accepted(r[1]), "authenticated client: passes on first contact")

	-- sender normalisation: BATV, VERP and SRS variants of one sender match
	at(base + 1000)
	r = send { ip = "198.18.0.1", from = "<prvs=1234abcd=bob@batv.example>", rcpts = { "<g@example.test>" } }
	deferred(r[1], "first attempt", 300, "BATV: first contact")
	r = send { ip = "198.18.0.1", from = "<bounce-123-4567@verp.example>", rcpts = { "<g@example.test>" } }
	deferred(r[1], "first attempt", 300, "VERP: first contact")
	r = send { ip = "198.18.0.1", from = "<SRS0=HHH=TT=orig.example=Zed@fwd.example>", rcpts = { "<g@example.test>" } }
	deferred(r[1], "first attempt", 300, "SRS: first contact")
	at(base + 1400)
	r = send { ip = "198.18.0.1", from = "<prvs=9999ffff=BOB@batv.example>", rcpts = { "<g@example.test>" } }
	t.check(accepted(r[1]), "BATV: retry with another tag (and case) passes")
	r = send { ip = "198.18.0.1", from = "<bounce-987-6543@verp.example>", rcpts = { "<g@example.test>" } }
	t.check(accepted(r[1]), "VERP: retry with other numbers passes")
	r = send { ip = "198.18.0.1", from = "<zed@orig.example>", rcpts = { "<g@example.test>" } }
	t.check(accepted(r[1]), "SRS: the original sender matches the rewritten one")

	-- IPv6: keyed by /64
	at(base + 2000)
	r = send { ip = "2001:db8:1:2::10", rcpts = { "<h@example.test>" } }
	deferred(r[1], "first attempt", 300, "IPv6: first contact")
	at(base + 2400)
	r = send { ip = "2001:db8:1:2:ffff::99", rcpts = { "<h@example.test>" } }
	t.check(accepted(r[1]), "IPv6: retry from the same /64 passes")
	r = send { ip = "2001:db8:1:3::10", rcpts = { "<h@example.test>" } }
	deferred(r[1], "first attempt", 300, "IPv6: another /64 is deferred")

	-- dynamic reverse names: keyed by the full address
	at(base + 3000)
	r = send { host = "192-0-2-160.dyn.example.net", ip = "192.0.2.160", rcpts = { "<i@example.test>" } }
	deferred(r[1], "first attempt", 300, "dynamic name: first contact")
	at(base + 3400)
	r = send { host = "192-0-2-161.dyn.example.net", ip = "192.0.2.161", rcpts = { "<i@example.test>" } }
	deferred(r[1], "first attempt", 300, "dynamic name: a neighbour is not the same client")
	r = send { host = "192-0-2-160.dyn.example.net", ip = "192.0.2.160", rcpts = { "<i@example.test>" } }
	t.check(accepted(r[1]), "dynamic name: the same address passes")

	-- auto-whitelist (awl_count = 2): a network that passed greylisting in
	-- 2 transactions skips it for new triplets
	t.reconfig("checks = greylist\ngreylist.pools = no\ngreylist.awl_count = 2\n")
	at(base + 4000)
	r = send { ip = "198.19.1.1", rcpts = { "<awl1@example.test>" } }
	deferred(r[1], "first attempt", 300, "AWL: first triplet deferred")
	r = send { ip = "198.19.1.2", rcpts = { "<awl2@example.test>" } }
	deferred(r[1], "first attempt", 300, "AWL: second triplet deferred")
	at(base + 4400)
	r = send { ip = "198.19.1.1", rcpts = { "<awl1@example.test>" } }
	t.check(accepted(r[1]), "AWL: first retry passes (1 pass)")
	r = send { ip = "198.19.1.3", rcpts = { "<awl3@example.test>" } }
	deferred(r[1], "first attempt", 300, "AWL: after 1 pass a new triplet is still deferred")
	r = send { ip = "198.19.1.2", rcpts = { "<awl2@example.test>" } }
	t.check(accepted(r[1]), "AWL: second retry passes (2 passes)")
	r = send { ip = "198.19.1.4", rcpts = { "<awl4@example.test>" } }
	t.check(accepted(r[1]), "AWL: after 2 passes a new triplet from that /24 passes at once")
	r = send { ip = "198.19.2.4", rcpts = { "<awl4@example.test>" } }
	deferred(r[1], "first attempt", 300, "AWL: another /24 is not listed")
	at(base + 4400 + 35 * 86400 + 1)
	r = send { ip = "198.19.1.5", rcpts = { "<awl5@example.test>" } }
	deferred(r[1], "first attempt", 300, "AWL: forgotten 35 days after its last pass")

	-- score-aware mode (min_score 3): 192.0.2.50 scores 5, .51 scores 0
	t.reconfig("checks = access, greylist\n" ..
		"access.client = cidr:" .. t.dir .. "/client.cidr\n" ..
		"greylist.pools = no\ngreylist.awl_count = 0\ngreylist.min_score = 3\n" ..
		"score.reject = 0\nscore.tag = 0")
	base = base + 36 * 86400
	at(base + 5000)
	r = send { ip = "192.0.2.51", rcpts = { "<score-low@example.test>" } }
	t.check(accepted(r[1]), "score-aware: score 0 < 3 is not greylisted")
	r = send { ip = "192.0.2.50", rcpts = { "<score-low@example.test>" } }
	t.check(accepted(r[1]), "score-aware: the stored decision holds when the score rises")
	r = send { ip = "192.0.2.50", rcpts = { "<score-high@example.test>" } }
	deferred(r[1], "first attempt", 300, "score-aware: score 5 >= 3 is greylisted")
	at(base + 5100)
	r = send { ip = "192.0.2.51", rcpts = { "<score-high@example.test>" } }
	deferred(r[1], "retried too early", 200, "score-aware: a lower score does not skip the delay")
	at(base + 5400)
	r = send { ip = "192.0.2.51", rcpts = { "<score-high@example.test>" } }
	t.check(accepted(r[1]), "score-aware: the retry after the delay passes")


	-- a recipient refused anyway (score.reject, an earlier RCPT check)
	-- leaves no greylist entry: later, without those, it is a first attempt
	t.file("rcpt-refuse.hash", "refused@example.test REJECT no such user\n")
	t.reconfig("checks = access, greylist\n" ..
		"access.client = cidr:" .. t.dir .. "/client.cidr\n" ..
		"access.recipient = texthash:" .. t.dir .. "/rcpt-refuse.hash\n" ..
		"greylist.pools = no\ngreylist.awl_count = 0\nscore.reject = 4\nscore.tag = 0")
	at(base + 7000)
	r = send { ip = "192.0.2.50", rcpts = { "<scored-out@example.test>" } }
	t.raw_reply(r[1], "550", "5.7.1", "Message scored 5.0", "score.reject refuses before greylisting")
	r = send { ip = "192.0.2.51", rcpts = { "<refused@example.test>" } }
	t.raw_reply(r[1], "550", "5.7.1", "no such user", "access.recipient refuses before greylisting")
	t.reconfig("checks = greylist\ngreylist.pools = no\ngreylist.awl_count = 0\n")
	at(base + 7400)
	r = send { ip = "192.0.2.50", rcpts = { "<scored-out@example.test>" } }
	deferred(r[1], "first attempt", 300, "no entry was kept for the score-rejected recipient")
	r = send { ip = "192.0.2.51", rcpts = { "<refused@example.test>" } }
	deferred(r[1], "first attempt", 300, "no entry was kept for the refused recipient")
end)
