-- needs: dns
-- tests/milter/greylist-pools.lua - greylisting of sending pools
--
-- A big sender retries from another address of its pool.  With
-- greylist.pools (the default) the retry still matches when the sender
-- domain's SPF record authorises both addresses (pool.grey.test allows
-- 198.51.100.0/24 and 203.0.113.0/24, tests/dns/grey.test.zone), or when
-- both clients have verified names in one registered domain.  Without an
-- SPF pass or a shared domain, another network is another client.  A DNS
-- failure only means the network key is used.  The clock is the test's.

local t = dofile(libdir .. "/lib.lua")

local T0 = 1800000000

local function at(sec)
	t.clock(T0 + sec)
end

local function send(opts)
	local res = t.raw { { "conn", opts.host or "unknown", opts.ip }, { "helo", "mx.sender.example" },
		{ "mail", opts.from }, { "rcpt", opts.rcpt }, { "eom" }, { "quit" } }
	local rc, eom
	for _, e in ipairs(res) do
		if e.cmd == "R" then
			rc = e
		elseif e.cmd == "E" then
			eom = e
		end
	end
	return rc, eom
end

local function deferred(e, what)
	t.raw_reply(e, "451", "4.7.1", "Greylisted: first attempt", what)
end

local function passed(e, what)
	t.check(e ~= nil and e.code == "c", what)
end

t.main(function()
	at(0)
	t.config("checks = greylist\ngreylist.awl_count = 0")
	t.start()
	local r, e

	-- SPF pool: first from one network, retry from the other
	r = send { ip = "198.51.100.7", from = "<news@pool.grey.test>", rcpt = "<a@example.test>" }
	deferred(r, "SPF pool: first attempt deferred")
	at(400)
	r, e = send { ip = "203.0.113.9", from = "<news@pool.grey.test>", rcpt = "<a@example.test>" }
	passed(r, "SPF pool: retry from another network the SPF record authorises passes")
	t.check(t.raw_header(e, "X-Greylist") ~= nil, "SPF pool: X-Greylist on the retry")
	-- an address outside the SPF record is not part of the pool
	r = send { ip = "192.0.2.10", from = "<news@pool.grey.test>", rcpt = "<a@example.test>" }
	deferred(r, "SPF pool: an address the record does not authorise is another client")

	-- no SPF record: networks count
	at(1000)
	r = send { ip = "198.51.100.7", from = "<x@nospf.grey.test>", rcpt = "<b@example.test>" }
	deferred(r, "no SPF: first attempt deferred")
	at(1400)
	r = send { ip = "203.0.113.9", from = "<x@nospf.grey.test>", rcpt = "<b@example.test>" }
	deferred(r, "no SPF: a retry from another network is deferred")
	r = send { ip = "198.51.100.99", from = "<x@nospf.grey.test>", rcpt = "<b@example.test>" }
	passed(r, "no SPF: a retry from the same /24 passes")

	-- name pool: verified names in one registered domain
	at(2000)
	r = send { host = "out1.bigmail.example", ip = "198.51.100.20", from = "<y@nospf.grey.test>",
		rcpt = "<c@example.test>" }
	deferred(r, "name pool: first attempt deferred")
	at(2400)
	r = send { host = "out7.eu.bigmail.example", ip = "192.0.2.200", from = "<y@nospf.grey.test>",
		rcpt = "<c@example.test>" }
	passed(r, "name pool: a retry from another host of bigmail.example passes")
	r = send { host = "out1.other.example", ip = "192.0.2.201", from = "<y@nospf.grey.test>",
		rcpt = "<c@example.test>" }
	deferred(r, "name pool: a host of another domain is another client")
	-- a dynamic-looking name is never a pool
	at(3000)
	r = send { host = "198-51-100-30.dsl.isp.example", ip = "198.51.100.30", from = "<y@nospf.grey.test>",
		rcpt = "<d@example.test>" }
	deferred(r, "dynamic name: first attempt deferred")
	at(3400)
	r = send { host = "192-0-2-31.dsl.isp.example", ip = "192.0.2.31", from = "<y@nospf.grey.test>",
		rcpt = "<d@example.test>" }
	deferred(r, "dynamic name: another dynamic host of the same ISP is another client")

	-- SPF lookups that fail (fault proxy: drop.test times out) fall back
	-- to the network key, quickly and without a temporary error
	t.reconfig("checks = greylist\ngreylist.awl_count = 0\ndns.resolver = 127.0.0.1:" ..
		dnsproxy .. "\ndns.timeout_ms = 300")
	at(4000)
	r = send { ip = "198.51.100.40", from = "<z@x.drop.test>", rcpt = "<e@example.test>" }
	deferred(r, "SPF timeout: greylisted by network, not a 4.3.0 failure")
	at(4400)
	r = send { ip = "198.51.100.41", from = "<z@x.drop.test>", rcpt = "<e@example.test>" }
	passed(r, "SPF timeout: the retry from the same /24 passes")
end)
