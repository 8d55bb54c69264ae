-- tests/milter/spf-reuse.lua - greylisting reuses the spf check's answer
-- needs: dns
--
-- checks = spf greylist (greylist.pools on, the default): the spf check
-- evaluates the sender at MAIL, greylisting needs the same SPF answer for
-- its pool key at every RCPT (lib/spf.c spf_eval_txn).  The DNS lookups
-- (/metrics, portcullis_dns_queries_total: cache hits included) of a
-- transaction with three recipients must equal those of one with one
-- recipient, once the cache is warm; before, each recipient evaluated SPF
-- again.  A second transaction on the same connection is a new one: it
-- asks again.  The zone: pool.grey.test authorises 198.51.100.0/24
-- (tests/dns/grey.test.zone).

local t = dofile(libdir .. "/lib.lua")

local function sh(cmd)
	local p = assert(io.popen(cmd))
	local out = p:read("a")
	p:close()
	return out
end

local port = sh(". " .. t.shq(libdir .. "/../lib.sh") .. " && t_free_port"):match("^(%d+)")
assert(port, "no free port")

local function queries()
	local text = sh("curl -sS -m 10 http://127.0.0.1:" .. port .. "/metrics 2>&1")
	local v = tonumber(text:match("\nportcullis_dns_queries_total ([%d.]+)"))
	t.check(v ~= nil, "scrape has portcullis_dns_queries_total")
	return v or 0
end

-- One connection, one transaction per entry of rcpts (a count each);
-- returns the DNS lookups each transaction made.
local function session(ip, rcpts)
	local conn = t.connect { ip = ip, helo = "mx.sender.example" }
	local used = {}
	for k, n in ipairs(rcpts) do
		local q0 = queries()
		t.eq(t.mail(conn, "<news@pool.grey.test>"), "continue", "MAIL " .. k)
		for i = 1, n do
			t.eq(t.rcpt(conn, "<r" .. i .. "@example.test>"), "replycode",
				"transaction " .. k .. ": RCPT " .. i .. " greylisted")
		end
		used[k] = queries() - q0
		mt.abort(conn)
	end
	mt.disconnect(conn)
	return used
end

t.main(function()
	t.config("checks = spf greylist\ngreylist.awl_count = 0\nmetrics.listen = 127.0.0.1:" ..
		port .. "\n")
	t.start()
	session("198.51.100.7", { 1 }) -- warms the cache
	local one = session("198.51.100.8", { 1 })[1]
	local three = session("198.51.100.9", { 3 })[1]
	t.check(one >= 1, "one recipient: SPF asked the DNS layer (" .. one .. " lookups)")
	t.eq(three, one, "three recipients: no more lookups than one (SPF evaluated once)")
	local again = session("198.51.100.10", { 2, 2 })
	t.eq(again[1], one, "first transaction of a connection: as many lookups as one recipient")
	t.eq(again[2], one, "second transaction: evaluated again (a new transaction), once")
end)
