-- tests/milter/metrics-dns.lua - the DNS counters of /metrics against a real DNS server
-- needs: dns
--
-- The daemon asks a real NSD through the fault proxy (tests/dns/) with
-- metrics.listen on a free loopback port; each step scrapes /metrics with
-- curl and checks the exact change of the DNS counters:
--  - a clean list (bla.test), first message: the lookup and the two
--    RFC 5782 self-test questions, 3 queries, 3 answers;
--  - the same client again: the lookup is a cache hit, the self-test is not
--    repeated: 1 query, 1 cache hit, no answer from the network;
--  - after a reload to a list the proxy drops (bl.drop.test) and one it
--    answers SERVFAIL (bl.fail.test), with on_error = skip: each list's
--    lookup and self-test (inconclusive, so asked again on every use) time
--    out or fail: 6 queries, 3 timeouts, 3 SERVFAIL, and one "error"
--    verdict of dnsbl; the counters go on from the old resolver's figures
--    (a reload makes a new resolver), and the generation is 2;
--  - each query sent to the server (not the cache hit) is one observation
--    of portcullis_dns_query_duration_seconds.

local t = dofile(libdir .. "/lib.lua")

local function sh(cmd)
	local p = assert(io.popen(cmd))
	local out = p:read("a")
	p:close()
	return out
end

local port = sh(". " .. t.shq(libdir .. "/../lib.sh") .. " && t_free_port"):match("^(%d+)")
assert(port, "no free port")
local METRICS = "metrics.listen = 127.0.0.1:" .. port .. "\n"

-- The samples of one scrape, by "name{labels}".
local function scrape()
	local text = sh("curl -sS -m 10 http://127.0.0.1:" .. port .. "/metrics 2>&1")
	local s = {}
	for name, value in text:gmatch("\n([%w_]+[^ \n]*) ([^ \n]+)") do
		s[name] = tonumber(value)
	end
	t.check(s["portcullis_dns_queries_total"] ~= nil, "scrape has the DNS counters")
	return s
end

local DNS = { "queries", "cache_hits", "answers", "timeouts", "servfail", "errors" }

-- The DNS counters moved from a to b by exactly want (absent: 0); the
-- query time histogram by one observation per query that went to the
-- network (answered, timed out, SERVFAIL).
local function moved(a, b, want, what)
	local H = "portcullis_dns_query_duration_seconds"
	for _, k in ipairs(DNS) do
		local name = "portcullis_dns_" .. k .. "_total"
		t.eq((b[name] or -1) - (a[name] or 0), want[k] or 0, what .. ": " .. name)
	end
	t.eq((b[H .. "_count"] or -1) - (a[H .. "_count"] or 0),
		(want.answers or 0) + (want.timeouts or 0) + (want.servfail or 0), what .. ": " .. H .. "_count")
	t.eq(b[H .. '_bucket{le="+Inf"}'], b[H .. "_count"], what .. ": " .. H .. " +Inf bucket")
	t.check((b[H .. "_sum"] or -1) >= (a[H .. "_sum"] or 0), what .. ": " .. H .. "_sum grows")
end

local function message(label, ip)
	local conn = t.connect { ip = ip, helo = "client.example.net" }
	t.eq(t.mail(conn, "<sender@example.net>"), "continue", label .. ": MAIL")
	t.eq(t.rcpt(conn, "<u@example.test>"), "continue", label .. ": RCPT")
	t.eq(t.eom(conn), "continue", label .. ": accepted")
	mt.disconnect(conn)
end

t.main(function()
	local PROXY = "dns.resolver = 127.0.0.1:" .. tostring(dnsproxy) .. "\ndns.timeout_ms = 400\n"
	t.config("checks = dnsbl\n" .. PROXY .. METRICS .. "dnsbl.sites = bla.test*5\n")
	t.start()
	local s0 = scrape()
	moved({}, s0, {}, "at start")

	message("first", "192.0.2.99")
	local s1 = scrape()
	moved(s0, s1, { queries = 3, answers = 3 }, "first message")

	message("again", "192.0.2.99")
	local s2 = scrape()
	moved(s1, s2, { queries = 1, cache_hits = 1 }, "same client again")

	t.reconfig("checks = dnsbl\n" .. PROXY .. METRICS ..
		"dnsbl.sites = bl.drop.test*5, bl.fail.test*5\ndnsbl.on_error = skip\n")
	local s3 = scrape()
	moved(s2, s3, {}, "after the reload")
	t.eq(s3["portcullis_config_generation"], 2, "generation 2 after the reload")

	message("failing lists", "192.0.2.99")
	local s4 = scrape()
	moved(s3, s4, { queries = 6, timeouts = 3, servfail = 3 }, "drop and SERVFAIL lists")
	t.eq(s4['portcullis_check_verdicts_total{check="dnsbl",action="error"}'] -
		s3['portcullis_check_verdicts_total{check="dnsbl",action="error"}'], 1,
		"one dnsbl error verdict")
	t.eq(s4['portcullis_transactions_total{outcome="accept"}'], 3, "three accepted")
end)
