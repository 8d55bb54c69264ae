-- tests/milter/clamav.lua - the clamav check: libclamav in its helper process
--
-- The test writes its own signature database (no download): an .ndb body
-- signature for the EICAR test string (built here at run time, never kept
-- in the repository) and an .hdb MD5 signature for a random test file.
-- Messages go through the raw milter client (headers, body, EOM), so the
-- reply texts and the added headers can be read:
--   clean mail: accepted, X-Virus-Status: Clean; a forged incoming
--   X-Virus-Status is removed;
--   EICAR in a base64 attachment, in a zip, inside a nested message/rfc822,
--   and the .hdb test file: 554 5.7.1 naming the signature (the name comes
--   back with ClamAV's .UNOFFICIAL suffix);
--   content.max_size: an over-size message passes with NotScanned (size),
--   or gets 552 5.3.4 with content.oversize = reject;
--   the helper killed between messages: the next message is scanned by a
--   new helper; the helper hung (SIGSTOP) during a scan: that message gets
--   451 4.3.0 after clamav.timeout, the helper is killed and replaced, the
--   next message is scanned again;
--   another database by a configuration reload: a new helper loads it
--   while the old one scans, then takes over, no message unscanned;
--   an empty database by reload: the old helper goes on scanning; with no
--   helper that has a database: 451 4.3.0, or with clamav.on_error = skip
--   accepted with NotScanned (no database), never Clean;
--   the metrics: scans by result and their times, helper starts and
--   failures; portcullisctl report's count of the viruses;
--   the database replaced again and again while messages are scanned:
--   every message gets a virus verdict from the old or the new signatures,
--   none fails, and the new signature name is seen.

local t = dofile(libdir .. "/lib.lua")
local m = dofile(libdir .. "/msg.lua")(t)

local EICAR = ("*H+H$!ELIF-TSET-SURIVITNA-DRADNATS-RACIE$}7)CC7)^P(45XZP\\4[PA@%P!O5X"):reverse()

local function hex(s)
	return (s:gsub(".", function(c)
		return string.format("%02x", c:byte())
	end))
end

local function sh(cmd)
	local p = io.popen(cmd .. " 2>&1")
	local out = p:read("a")
	local _, _, code = p:close()
	return out, code
end

local function with_attachment(fname, ctype, data)
	return m.attachment(fname, ctype .. '; name="' .. fname .. '"', data)
end

local function send(label, headers, body)
	return m.send(label, headers, body)
end

local function clean_msg(label)
	return { { "From", "sender@example.net" }, { "Subject", label } },
		"Hello,\r\nthis is a clean message.\r\n"
end

-- Accepted with X-Virus-Status: want.
local function accepted(e, want, what)
	m.accepted(e, what)
	t.eq(t.raw_header(e, "X-Virus-Status"), want, what .. ": X-Virus-Status: " .. want)
end

local function helper_pids()
	local pids = {}
	for pid in t.log():gmatch("av: scanner helper started %(pid (%d+)%)") do
		pids[#pids + 1] = pid
	end
	return pids
end

t.main(function()
	local db = t.dir .. "/db"
	os.execute("mkdir -p " .. t.shq(db) .. " " .. t.shq(t.dir .. "/empty"))
	t.file("db/test.ndb", "Test.Eicar:0:*:" .. hex(EICAR) .. "\n")
	local testfile = "portcullis test file " .. tostring(os.time()) .. tostring(math.random(1e9))
	t.file("testfile", testfile)
	local md5 = sh("md5sum " .. t.shq(t.dir .. "/testfile")):match("^(%x+)")
	t.file("db/test.hdb", md5 .. ":" .. #testfile .. ":Test.File\n")
	-- the metrics listener, when curl can read it (checked after the hang)
	local mport = sh("command -v curl >/dev/null && python3 -c 'import socket; s = socket.socket(); " ..
		"s.bind((\"127.0.0.1\", 0)); print(s.getsockname()[1])'"):match("^(%d+)")
	local base = "checks = clamav\nclamav.database = " .. db .. "\n" ..
		(mport and ("metrics.listen = 127.0.0.1:" .. mport .. "\n") or "")
	t.config(base)
	t.start()
	t.check(t.poll(function()
		return t.log():find("av: loaded 2 signatures", 1, true)
	end, 20), "helper loaded the 2 test signatures")

	-- clean mail; a forged X-Virus-Status from outside is removed
	local h, b = clean_msg("clean")
	h[#h + 1] = { "X-Virus-Status", "Clean (forged)" }
	local e = send("clean", h, b)
	accepted(e, "Clean", "clean mail")
	local removed = false
	for _, pk in ipairs(e.packets) do
		removed = removed or (pk.code == "m" and pk.data:find("X-Virus-Status", 1, true) ~= nil)
	end
	t.check(removed, "clean mail: the incoming X-Virus-Status header is removed")
	t.eq(t.wait_txn("<clean@example.test>").verdict, "accept", "clean mail: log verdict=accept")

	-- EICAR in a base64 attachment
	h, b = with_attachment("eicar.com", "application/octet-stream", EICAR)
	e = send("eicar", h, b)
	t.raw_reply(e, "554", "5.7.1", "Message contains a virus: Test.Eicar", "EICAR attachment: 554 5.7.1 naming it")
	local p = t.wait_txn("<eicar@example.test>")
	t.eq(p.verdict, "reject", "EICAR attachment: log verdict=reject")
	t.has(p.symbols or "", "clamav.virus", "EICAR attachment: log symbol clamav.virus")
	t.has(t.log(), "ref=" .. tostring(p.ref) .. " clamav: virus Test.Eicar.UNOFFICIAL",
		"EICAR attachment: the log names the virus with the transaction's ref")

	-- EICAR in a zip
	local zpath = t.dir .. "/eicar.zip"
	local out, code = sh("python3 -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1], \"w\", zipfile.ZIP_DEFLATED); " ..
		"z.writestr(\"docs/eicar.txt\", sys.argv[2]); z.close()' " .. t.shq(zpath) .. " " .. t.shq(EICAR))
	if not t.check(code == 0, "python3 wrote a zip") then
		print("# " .. out)
	end
	h, b = with_attachment("docs.zip", "application/zip", t.read(zpath) or "")
	e = send("zip", h, b)
	t.raw_reply(e, "554", "5.7.1", "Test.Eicar", "EICAR in a zip: 554 5.7.1")

	-- EICAR inside a nested message/rfc822
	local inner_h, inner_b = with_attachment("eicar.com", "application/octet-stream", EICAR)
	local inner = {}
	for _, x in ipairs(inner_h) do
		inner[#inner + 1] = x[1] .. ": " .. x[2]
	end
	local nested = table.concat(inner, "\r\n") .. "\r\n\r\n" .. inner_b
	e = send("nested", {
		{ "From", "sender@example.net" }, { "Subject", "fwd" }, { "MIME-Version", "1.0" },
		{ "Content-Type", 'multipart/mixed; boundary="outer"' },
	}, "--outer\r\nContent-Type: text/plain\r\n\r\nforwarded\r\n--outer\r\n" ..
		"Content-Type: message/rfc822\r\n\r\n" .. nested .. "\r\n--outer--\r\n")
	t.raw_reply(e, "554", "5.7.1", "Test.Eicar", "EICAR in a nested message/rfc822: 554 5.7.1")

	-- the .hdb test file
	h, b = with_attachment("report.bin", "application/octet-stream", testfile)
	e = send("hdb", h, b)
	t.raw_reply(e, "554", "5.7.1", "Test.File", "test file (.hdb): 554 5.7.1 naming Test.File")

	-- over-size messages
	t.reconfig(base .. "content.max_size = 2000")
	local big = string.rep("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n", 60)
	h, b = with_attachment("eicar.com", "application/octet-stream", EICAR)
	e = send("big", h, b .. big)
	accepted(e, "NotScanned (size)", "over content.max_size")
	t.check(t.log():find("is over content.max_size (2000): not scanned", 1, true) ~= nil,
		"over-size: logged as not scanned")
	t.reconfig(base .. "content.max_size = 2000\ncontent.oversize = reject")
	e = send("bigrej", h, b .. big)
	t.raw_reply(e, "552", "5.3.4", "Message too big", "content.oversize = reject: 552 5.3.4")
	t.reconfig(base)

	-- the helper killed between messages: the next one is scanned
	local pids = helper_pids()
	local pid = pids[#pids]
	t.check(pid ~= nil, "the helper's pid is logged")
	-- the helper is the small program portcullis-av built next to the
	-- daemon (lib/av.c: av_use_helper_program), not the daemon again
	t.eq((sh("readlink /proc/" .. tostring(pid) .. "/exe") or ""):match("([^/\n]*)\n?$"), "portcullis-av",
		"the helper is the program portcullis-av")
	local prog = t.log():match("for database [^\n]*: ([^\n]*/milter/portcullis%-av)\n")
	t.check(prog ~= nil, "the log names the helper program")
	-- a helper program of another version refuses to run (av_wire.h)
	local out, code = sh("'" .. tostring(prog) .. "' --av-helper db '' 1 1 1 1 1 60 stderr mail 0 0.0.0-other")
	t.eq(code, 2, "portcullis-av for another version: exit status 2")
	t.check(out:find("started by portcullis 0.0.0-other", 1, true) ~= nil,
		"portcullis-av for another version says so: " .. out:gsub("%s+$", ""))
	os.execute("kill -KILL " .. tostring(pid))
	-- dead, not dying: only its main thread left, a zombie (a zombie whose
	-- other threads still exit keeps the control socket open a moment)
	t.poll(function()
		local stat = t.read("/proc/" .. tostring(pid) .. "/stat")
		return tonumber((sh("ls /proc/" .. tostring(pid) .. "/task 2>/dev/null | wc -l"))) <= 1 and
			(stat == nil or stat:match("^%d+ %b() ([ZX])") ~= nil)
	end, 5)
	h, b = clean_msg("afterkill")
	accepted(send("afterkill", h, b), "Clean", "after the helper was killed")
	h, b = with_attachment("eicar.com", "application/octet-stream", EICAR)
	t.raw_reply(send("afterkill2", h, b), "554", "5.7.1", "Test.Eicar",
		"after the helper was killed: EICAR still found")
	t.check(#helper_pids() > #pids, "a new helper was started")

	-- the helper hangs during a scan: 451 after clamav.timeout, then a new one
	t.reconfig(base .. "clamav.timeout = 2s")
	h, b = clean_msg("warm")
	accepted(send("warm", h, b), "Clean", "with clamav.timeout = 2s")
	pids = helper_pids()
	pid = pids[#pids]
	os.execute("kill -STOP " .. tostring(pid))
	h, b = clean_msg("hung")
	e = send("hung", h, b)
	t.raw_reply(e, "451", "4.3.0", "Virus scan failed (timeout)", "hung helper: 451 4.3.0")
	t.check(t.log():find("within 2000 ms: killing it", 1, true) ~= nil, "hung helper: killed")
	h, b = clean_msg("afterhang")
	accepted(send("afterhang", h, b), "Clean", "after the hung helper")
	t.check(#helper_pids() > #pids, "a new helper replaced the hung one")

	-- the metrics so far: 10 scans (2 over-size messages were not), 3
	-- helpers started (the first, after the kill, after the hang), 2 ended
	-- abnormally (killed from outside, killed for the timeout)
	if mport then
		local page = sh("curl -sS -m 10 http://127.0.0.1:" .. mport .. "/metrics")
		local function metric(name)
			return page:match("\n" .. name:gsub("[%%{}\"%.%+%-]", "%%%0") .. " (%S+)\n")
		end
		t.eq(metric('portcullis_av_scans_total{result="clean"}'), "4", "metrics: 4 clean scans")
		t.eq(metric('portcullis_av_scans_total{result="infected"}'), "5", "metrics: 5 infected")
		t.eq(metric('portcullis_av_scans_total{result="error"}'), "1", "metrics: 1 not scanned")
		t.eq(metric("portcullis_av_scan_duration_seconds_count"), "10", "metrics: 10 scan times")
		t.eq(metric('portcullis_av_scan_duration_seconds_bucket{le="+Inf"}'), "10",
			"metrics: the scan time histogram's +Inf bucket")
		t.eq(metric("portcullis_av_helper_starts_total"), "3", "metrics: 3 helpers started")
		t.eq(metric("portcullis_av_helper_failures_total"), "2", "metrics: 2 helpers failed")
	else
		print("# curl or python3 missing: the ClamAV metrics are not checked")
	end
	-- portcullisctl report names the viruses of the log so far
	local rep, rc = t.ctl("report --log " .. t.shq(t.logfile))
	t.eq(rc, 0, "report on the daemon's log")
	t.has(rep, "\nTop viruses\n           4  Test.Eicar.UNOFFICIAL\n           1  Test.File.UNOFFICIAL\n",
		"report: the viruses found")
	t.has(rep, "\n    clamav.virus                              5          0\n",
		"report: 5 messages refused by clamav.virus")

	-- another database by a configuration reload: a new helper loads it
	-- while the old one goes on scanning, then takes over: no message
	-- goes unscanned in between
	os.execute("mkdir -p " .. t.shq(t.dir .. "/db3"))
	t.file("db3/new.ndb", "Test.Eicar.Other:0:*:" .. hex(EICAR) .. "\n")
	local base3 = "checks = clamav\nclamav.database = " .. t.dir .. "/db3\n"
	t.reconfig(base3)
	h, b = with_attachment("eicar.com", "application/octet-stream", EICAR)
	local seen_other, gap = false, 0
	for i = 1, 500 do
		local r = t.split_reply((function(x) return x and x.code == "y" and x.data or nil end)(send("swap" .. i, h, b)))
		if r.code ~= "554" then
			gap = gap + 1
		elseif r.text:find("Test.Eicar.Other", 1, true) then
			seen_other = true
			break
		end
	end
	t.eq(gap, 0, "database changed by reload: every message scanned during the hand-over")
	t.check(seen_other, "database changed by reload: the new helper took over")

	-- no database: the old helper keeps scanning until the new one has
	-- one; without any helper with a database: 451, or with on_error =
	-- skip passed as NotScanned
	local nodb = "checks = clamav\nclamav.database = " .. t.dir .. "/empty\n"
	t.reconfig(nodb)
	h, b = clean_msg("nodb")
	accepted(send("nodbold", h, b), "Clean", "empty database by reload: the old helper still scans")
	pids = helper_pids()
	os.execute("kill -KILL " .. tostring(pids[#pids - 1]))
	t.poll(function()
		local stat = t.read("/proc/" .. tostring(pids[#pids - 1]) .. "/stat")
		return tonumber((sh("ls /proc/" .. tostring(pids[#pids - 1]) .. "/task 2>/dev/null | wc -l"))) <= 1 and
			(stat == nil or stat:match("^%d+ %b() ([ZX])") ~= nil)
	end, 5)
	t.raw_reply(send("nodb", h, b), "451", "4.3.0", "no signature files",
		"no database (the old helper gone): 451 4.3.0")
	t.reconfig(nodb .. "clamav.on_error = skip")
	accepted(send("nodbskip", h, b), "NotScanned (no database)",
		"no database, on_error = skip: passed, not labelled Clean")

	-- reload under load
	t.reconfig(base .. "clamav.reload_interval = 1s")
	-- wait until the helper for this database has taken over
	h, b = with_attachment("eicar.com", "application/octet-stream", EICAR)
	t.check(t.poll(function()
		local e1 = send("ready", h, b)
		return e1 and e1.code == "y" and e1.data:find("^554") ~= nil
	end, 20), "the helper for the test database took over")
	t.file("db2.ndb", "Test.Eicar.New:0:*:" .. hex(EICAR) .. "\n")
	t.file("db1.ndb", "Test.Eicar:0:*:" .. hex(EICAR) .. "\n")
	-- swap the database file every 0.3 s (write aside, rename over) for a while
	local swapper = "i=0; while [ $i -lt 40 ]; do i=$((i+1)); " ..
		"if [ $((i % 2)) = 1 ]; then cp " .. t.shq(t.dir .. "/db2.ndb") .. " " .. t.shq(db .. "/.new") ..
		"; else cp " .. t.shq(t.dir .. "/db1.ndb") .. " " .. t.shq(db .. "/.new") .. "; fi; " ..
		"mv " .. t.shq(db .. "/.new") .. " " .. t.shq(db .. "/test.ndb") .. "; sleep 0.3; done"
	os.execute("(" .. swapper .. ") >/dev/null 2>&1 & echo $! > " .. t.shq(t.dir .. "/swapper.pid"))
	local loads_before = t.count(t.log(), "av: loaded ")
	local virus, failed, names = 0, 0, {}
	h, b = with_attachment("eicar.com", "application/octet-stream", EICAR)
	local n = 0
	local function swapping()
		return os.execute("kill -0 $(cat " .. t.shq(t.dir .. "/swapper.pid") .. ") 2>/dev/null")
	end
	while swapping() and n < 5000 do
		n = n + 1
		e = send("load" .. n, h, b)
		local r = t.split_reply(e and e.code == "y" and e.data or nil)
		if r.code == "554" then
			virus = virus + 1
			names[r.text:match("virus: (%S+)") or "?"] = true
		else
			failed = failed + 1
			print("# not a virus verdict: " .. t.show(e and e.data))
		end
	end
	os.execute("kill $(cat " .. t.shq(t.dir .. "/swapper.pid") .. ") 2>/dev/null")
	t.eq(failed, 0, "reload under load: every one of " .. n .. " messages got a virus verdict")
	t.check(virus > 0, "reload under load: " .. virus .. " messages scanned")
	t.check(names["Test.Eicar.New.UNOFFICIAL"] ~= nil, "reload under load: the new signature name was seen")
	local reloads = t.count(t.log(), "av: loaded ") - loads_before
	t.check(reloads >= 3, "reload under load: the database was reloaded " .. reloads .. " times")
end)
