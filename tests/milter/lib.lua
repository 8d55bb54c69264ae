-- tests/milter/lib.lua - shared helpers for the miltertest scripts
--
-- Loaded by each script with  local t = dofile(libdir .. "/lib.lua")
-- where the globals dir, portcullis, portcullisctl and libdir come from
-- run.sh (miltertest -D).  It offers:
--   t.main(fn)            run fn under xpcall: a Lua error prints a traceback
--                         instead of miltertest's silent exit 1; fails the
--                         test when any t.check failed
--   t.check(cond, what)   one assertion ("ok"/"not ok" line); goes on
--   t.eq(got, want, what) equality assertion that prints both values
--   t.config(text)        append "key = value" lines to the daemon's config
--   t.file(name, text)    write a file (a table) into the temp dir
--   t.start()             start the daemon (stderr appended to DIR/log) and
--                         wait until its socket answers
--   t.reconfig(text)      rewrite the config as base + text and reload the
--                         daemon with SIGUSR1; waits for the log to say so
--   t.connect{host=, ip=, helo=, j=, offer=}   a new milter connection,
--                         checked; offer = { version, protocol flags,
--                         actions } negotiates as an MTA offering those
--   t.helo/mail/rcpt/eom(conn, ...)    one step, returns the reply name
--   t.wait_txn(marker)    the transaction log line containing marker
--                         (polls: ABORT and close have no milter reply)
--   t.raw(steps)          a raw milter client (perl) for what miltertest
--                         cannot do: reply texts, NUL bytes, long strings;
--                         steps.offer as in t.connect; a step negotiated
--                         without reply (SMFIP_NR_CONN/HELO/MAIL) reads
--                         as continue, as the MTA takes it
--   t.ctl(args)           portcullisctl -c CONF ARGS, returns output, status
-- Everything is bounded in time; nothing here calls os.exit().

local t = {}

t.dir = assert(dir, "global 'dir' not set: run through tests/milter/run.sh")
t.portcullis = assert(portcullis, "global 'portcullis' not set")
t.portcullisctl = portcullisctl
t.conf = t.dir .. "/portcullis.conf"
t.logfile = t.dir .. "/log"
t.sockpath = t.dir .. "/sock"
t.sock = "unix:" .. t.sockpath
t.contact = "postmaster@example.test"
-- The daemon's version ("portcullis VERSION" from -V).
do
	local p = io.popen(t.portcullis .. " -V")
	t.version = (p:read("a") or ""):match("^portcullis (%S+)")
	p:close()
end

local passed, failed = 0, 0

-- ---- small utilities ------------------------------------------------------

function t.read(path)
	local f = io.open(path, "rb")
	if f == nil then
		return nil
	end
	local s = f:read("a")
	f:close()
	return s
end

function t.write(path, text, mode)
	local f = assert(io.open(path, mode or "wb"))
	f:write(text)
	f:close()
end

function t.file(name, text)
	local path = t.dir .. "/" .. name
	t.write(path, text)
	return path
end

-- Shell quoting for io.popen command lines.
function t.shq(s)
	return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- Printable form of a string for messages.
function t.show(s)
	if s == nil then
		return "nil"
	end
	s = tostring(s)
	local out = s:gsub("[^\32-\126]", function(c)
		return string.format("\\x%02x", c:byte())
	end)
	if #out > 300 then
		out = out:sub(1, 300) .. "...(" .. #s .. " bytes)"
	end
	return out
end

-- ---- assertions -----------------------------------------------------------

-- "script:line" of the first caller outside this file.
function t.where()
	local out = {}
	for level = 3, 30 do
		local info = debug.getinfo(level, "Sl")
		if info == nil or #out == 2 then
			break
		end
		if not info.short_src:find("lib.lua", 1, true) and info.currentline > 0 then
			out[#out + 1] = info.short_src:gsub('^%[string "(.*)"%]$', "%1") .. ":" ..
				info.currentline
		end
	end
	return #out > 0 and table.concat(out, ", called from ") or "?"
end

function t.check(cond, what)
	if cond then
		passed = passed + 1
		print("ok " .. (passed + failed) .. " - " .. what)
	else
		failed = failed + 1
		print("not ok " .. (passed + failed) .. " - " .. what)
		print("#   at " .. t.where())
	end
	return cond
end

function t.eq(got, want, what)
	local ok = got == want
	if not ok then
		print("#   got:  " .. t.show(got))
		print("#   want: " .. t.show(want))
	end
	return t.check(ok, what)
end

-- s contains the plain text sub (no patterns).
function t.has(s, sub, what)
	local ok = s ~= nil and s:find(sub, 1, true) ~= nil
	if not ok then
		print("#   in:      " .. t.show(s))
		print("#   missing: " .. t.show(sub))
	end
	return t.check(ok, what)
end

function t.hasnt(s, sub, what)
	local ok = s ~= nil and s:find(sub, 1, true) == nil
	if not ok then
		print("#   in:         " .. t.show(s))
		print("#   unexpected: " .. t.show(sub))
	end
	return t.check(ok, what)
end

function t.match(s, pat, what)
	local ok = s ~= nil and s:match(pat) ~= nil
	if not ok then
		print("#   in:      " .. t.show(s))
		print("#   pattern: " .. pat)
	end
	return t.check(ok, what)
end

function t.fail(what)
	return t.check(false, what)
end

-- Run the script body.  A Lua error (a broken step, a protocol failure) is
-- printed with its traceback and fails the test; so does any failed check.
function t.main(fn)
	local ok, err = xpcall(fn, debug.traceback)
	if not ok then
		io.stdout:flush()
		io.stderr:write("ERROR: " .. tostring(err) .. "\n")
		print("--- daemon log (last lines):")
		print(t.log_tail(40))
		error("script aborted by a Lua error (see above)", 0)
	end
	print(string.format("# %d passed, %d failed", passed, failed))
	if failed > 0 then
		print("--- daemon log (last lines):")
		print(t.log_tail(40))
		error(failed .. " check(s) failed", 0)
	end
end

-- ---- configuration and daemon ---------------------------------------------

local base_conf = t.read(t.conf) or error("no base config at " .. t.conf)

function t.config(text)
	t.write(t.conf, text .. "\n", "ab")
end

-- How often the plain string `plain` occurs in s.
function t.count(s, plain)
	local n, i = 0, 1
	while true do
		local a, b = s:find(plain, i, true)
		if a == nil then
			return n
		end
		n, i = n + 1, b + 1
	end
end

-- Poll fn() every 20 ms until it returns a true value or `seconds` pass.
function t.poll(fn, seconds)
	local tries = math.floor((seconds or 5) / 0.02)
	for _ = 1, tries do
		local v = fn()
		if v then
			return v
		end
		mt.sleep(0.02)
	end
	return fn()
end

function t.start()
	mt.set_timeout(10)
	-- exec: miltertest's SIGTERM and wait() at the end reach the daemon
	-- itself, and a non-zero exit status (e.g. LeakSanitizer) fails the run.
	mt.startfilter("/bin/sh", "-c", 'exec "$0" -f -c "$1" 2>>"$2"', t.portcullis, t.conf,
		t.logfile)
	local conn = t.poll(function()
		local ok, c = pcall(mt.connect, t.sock)
		if ok and c ~= nil then
			return c
		end
		-- Startup errors are one stderr line "portcullis: ..." without the
		-- log's timestamp, and then the daemon exits.
		local log = t.read(t.logfile) or ""
		if log:find("^portcullis: ") or log:find("\nportcullis: ") then
			error("daemon did not start:\n" .. log)
		end
		return nil
	end, 15)
	if conn == nil then
		error("daemon socket " .. t.sock .. " did not answer:\n" .. (t.read(t.logfile) or ""))
	end
	mt.disconnect(conn)
	-- The socket listens a moment before the start is logged.
	t.check(t.poll(function()
		return (t.read(t.logfile) or ""):find(" started on " .. t.sock, 1, true) ~= nil
	end, 5), "daemon started and logged its socket")
end

function t.reconfig(text)
	local before = t.count(t.read(t.logfile) or "", "configuration reloaded from")
	t.write(t.conf, base_conf .. (text or "") .. "\n")
	mt.signal(10) -- SIGUSR1
	local ok = t.poll(function()
		local log = t.read(t.logfile) or ""
		if log:find("reload failed", 1, true) then
			error("reload failed:\n" .. log)
		end
		return t.count(log, "configuration reloaded from") > before
	end, 5)
	if not ok then
		error("daemon did not log the reload")
	end
end

-- Set the clock of the daemon and portcullisctl (seconds since the epoch;
-- run.sh points PORTCULLIS_CLOCK_FILE at DIR/clock).
function t.clock(epoch)
	t.write(t.dir .. "/clock", string.format("%d\n", epoch))
end

-- ---- miltertest steps -----------------------------------------------------

local reply_names = {}
reply_names[SMFIR_CONTINUE] = "continue"
reply_names[SMFIR_ACCEPT] = "accept"
reply_names[SMFIR_REJECT] = "reject"
reply_names[SMFIR_TEMPFAIL] = "tempfail"
reply_names[SMFIR_DISCARD] = "discard"
reply_names[SMFIR_REPLYCODE] = "replycode"
if SMFIR_SKIP then
	reply_names[SMFIR_SKIP] = "skip"
end

function t.reply(conn)
	local r = mt.getreply(conn)
	return reply_names[r] or ("0x" .. string.format("%02x", math.floor(r)))
end

local function step(what, err, conn)
	if err ~= nil then
		error(what .. " failed: " .. tostring(err), 2)
	end
	return t.reply(conn)
end

-- opts: host (client name, default "client.example.net"), ip (default
-- "192.0.2.10"), helo (sent when given), j (macro j: the MTA's name).
function t.connect(opts)
	opts = opts or {}
	local conn = mt.connect(t.sock)
	if conn == nil then
		error("mt.connect(" .. t.sock .. ") failed")
	end
	if opts.offer then -- { version, protocol flags, actions } the MTA offers
		mt.negotiate(conn, opts.offer[1], opts.offer[2], opts.offer[3])
	end
	if opts.j then
		mt.macro(conn, SMFIC_CONNECT, "j", opts.j)
	end
	local r = step("mt.conninfo", mt.conninfo(conn, opts.host or "client.example.net",
		opts.ip or "192.0.2.10"), conn)
	if r ~= "continue" then
		error("connect answered " .. r)
	end
	if opts.helo then
		r = t.helo(conn, opts.helo)
		if r ~= "continue" then
			error("HELO " .. t.show(opts.helo) .. " answered " .. r)
		end
	end
	return conn
end

function t.helo(conn, name)
	return step("mt.helo(" .. t.show(name) .. ")", mt.helo(conn, name), conn)
end

function t.mail(conn, from)
	return step("mt.mailfrom(" .. t.show(from) .. ")", mt.mailfrom(conn, from), conn)
end

function t.rcpt(conn, to)
	return step("mt.rcptto(" .. t.show(to) .. ")", mt.rcptto(conn, to), conn)
end

-- End of message; the steps between (DATA, headers, body) are the ones the
-- daemon did not negotiate away.
function t.eom(conn)
	if not mt.test_option(conn, SMFIP_NOHDRS) then
		step("mt.header", mt.header(conn, "Subject", "test"), conn)
	end
	if not mt.test_option(conn, SMFIP_NOEOH) then
		step("mt.eoh", mt.eoh(conn), conn)
	end
	if not mt.test_option(conn, SMFIP_NOBODY) then
		step("mt.bodystring", mt.bodystring(conn, "test\r\n"), conn)
	end
	return step("mt.eom", mt.eom(conn), conn)
end

-- A whole accepted-or-not transaction on conn: MAIL, each RCPT, then EOM
-- when at least one recipient was accepted, else ABORT.  Returns the list
-- of RCPT replies and the EOM reply (or nil).
function t.txn(conn, from, rcpts)
	local r = t.mail(conn, from)
	if r ~= "continue" then
		error("MAIL " .. t.show(from) .. " answered " .. r)
	end
	local replies, any = {}, false
	for i, to in ipairs(rcpts) do
		replies[i] = t.rcpt(conn, to)
		any = any or replies[i] == "continue"
	end
	if any then
		return replies, t.eom(conn)
	end
	mt.abort(conn)
	return replies, nil
end

-- ---- the log --------------------------------------------------------------

function t.log()
	return t.read(t.logfile) or ""
end

function t.log_tail(n)
	local lines = {}
	for line in t.log():gmatch("[^\n]*\n?") do
		if line ~= "" then
			lines[#lines + 1] = line:gsub("\n$", "")
		end
	end
	local from = math.max(1, #lines - n + 1)
	local out = {}
	for i = from, #lines do
		out[#out + 1] = t.show(lines[i]):sub(1, 400)
	end
	return table.concat(out, "\n")
end

-- Transaction summary lines ("... portcullis: ref=XXXXXXXXXX ...").
function t.txn_lines()
	local out = {}
	for line in t.log():gmatch("[^\n]+") do
		if line:match("^%S+ portcullis: ref=%w+ ") then
			out[#out + 1] = line
		end
	end
	return out
end

-- Fields of a transaction line that never contain spaces.
function t.parse(line)
	if line == nil then
		return {}
	end
	return {
		ref = line:match(" portcullis: ref=(%w+) "),
		verdict = line:match(" verdict=(%S+)"),
		score = tonumber(line:match(" score=([%d%.%-]+)")),
		symbols = line:match(" symbols=(%S+)"),
		monitor = line:match(" monitor=(%S+)"),
		line = line,
	}
end

-- All transaction lines containing marker (plain text).
function t.find_txns(marker)
	local out = {}
	for _, line in ipairs(t.txn_lines()) do
		if line:find(marker, 1, true) then
			out[#out + 1] = line
		end
	end
	return out
end

-- Wait for the transaction line containing marker; returns parse(line).
-- Fails the check (and returns {}) when none appears within 5 s.
function t.wait_txn(marker)
	local lines = t.poll(function()
		local l = t.find_txns(marker)
		return #l > 0 and l or nil
	end, 5)
	if lines == nil then
		t.fail("a log line with " .. t.show(marker) .. " appeared")
		return {}
	end
	return t.parse(lines[#lines])
end

-- The log line must hold all of the plain strings in wants.
function t.log_has(p, wants, what)
	local ok = p.line ~= nil
	for _, w in ipairs(wants) do
		ok = ok and p.line:find(w, 1, true) ~= nil
	end
	if not ok then
		print("#   line: " .. t.show(p.line))
		for _, w in ipairs(wants) do
			if p.line == nil or not p.line:find(w, 1, true) then
				print("#   missing: " .. t.show(w))
			end
		end
	end
	return t.check(ok, what)
end

-- ---- portcullisctl --------------------------------------------------------

-- Run portcullisctl -c CONF ARGS (ARGS already shell-quoted as needed).
-- Returns the output (stdout and stderr) and the exit status.
function t.ctl(args)
	local p = io.popen("timeout 20 " .. t.shq(t.portcullisctl) .. " -c " .. t.shq(t.conf) ..
		" " .. args .. " 2>&1")
	local out = p:read("a")
	local _, _, code = p:close()
	return out, code
end

-- ---- a raw milter client ---------------------------------------------------
--
-- miltertest copies HELO and MAIL arguments into 1024-byte buffers without a
-- bound, stops strings at NUL and never shows a reply's text.  This client
-- speaks the milter protocol itself (perl, IO::Socket::UNIX from perl-base)
-- so a test can read the SMTP reply text and its ref id, and send what
-- miltertest cannot.  Steps (each a table):
--   {"conn", host, ip}  {"helo", s}  {"mail", s}  {"rcpt", s}
--   {"macro", stagechar, name, value}  {"abort"}  {"eom"}  {"quit"}
--   {"raw", cmdchar, payload}   payload sent as is (may hold NULs)
-- Option negotiation comes first, automatically.  Returns a list with one
-- entry per step that has an answer: {cmd=, code=, data=} where code is the
-- reply letter ("c", "y", "t", "r", "h", ...) and data its payload; EOM
-- entries carry all its packets in .packets.  Returns nil, reason when perl
-- is missing.

local rawpl = [=[
use strict;
use warnings;
use IO::Socket::UNIX;
my ($sock, $plan) = @ARGV;
$SIG{ALRM} = sub { print "TIMEOUT\n"; exit 3; };
alarm 20;
my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $sock)
    or do { print "CONNECTFAIL $!\n"; exit 2; };
binmode $s;
$| = 1;
sub sendpkt { my ($c, $d) = @_; print $s pack("N", length($d) + 1) . $c . $d; }
sub readn {
    my ($n) = @_; my $buf = "";
    while (length($buf) < $n) {
        my $r = sysread($s, $buf, $n - length($buf), length($buf));
        if (!defined $r || $r == 0) { print "EOF\n"; exit 4; }
    }
    return $buf;
}
sub readpkt { my $len = unpack("N", readn(4)); my $all = readn($len); return (substr($all, 0, 1), substr($all, 1)); }
open(my $fh, "<", $plan) or die "plan: $!";
my $pflags = 0; # the protocol flags the filter chose
while (my $line = <$fh>) {
    chomp $line;
    my ($c, $hex) = split / /, $line, 2;
    my $d = defined $hex ? pack("H*", $hex) : "";
    sendpkt($c, $d);
    next if $c eq "A" || $c eq "D";
    last if $c eq "Q";
    # like an MTA: no reply awaited where the filter asked for none
    next if $c eq "L" && ($pflags & 0x80);     # SMFIP_NR_HDR
    next if $c eq "N" && ($pflags & 0x40000);  # SMFIP_NR_EOH
    # SMFIP_NR_CONN, NR_HELO, NR_MAIL: the MTA goes on as after a continue
    if (($c eq "C" && ($pflags & 0x1000)) || ($c eq "H" && ($pflags & 0x2000)) ||
        ($c eq "M" && ($pflags & 0x4000))) {
        print "$c c \n";
        next;
    }
    if ($c eq "O") {
        my ($rc, $rd) = readpkt();
        $pflags = unpack("N", substr($rd, 8, 4)) if length($rd) >= 12;
        print "$c $rc " . unpack("H*", $rd) . "\n";
        next;
    }
    while (1) {
        my ($rc, $rd) = readpkt();
        print "$c $rc " . unpack("H*", $rd) . "\n";
        last if $c ne "E" || $rc =~ /^[cartdy]$/;
    }
}
print "DONE\n";
]=]

local function hex(s)
	return (s:gsub(".", function(c)
		return string.format("%02x", c:byte())
	end))
end

local function unhex(s)
	return (s:gsub("%x%x", function(h)
		return string.char(tonumber(h, 16))
	end))
end

local function be32(n)
	return string.char((n >> 24) & 255, (n >> 16) & 255, (n >> 8) & 255, n & 255)
end

local have_perl = nil

function t.raw(steps)
	if have_perl == nil then
		local p = io.popen("perl -MIO::Socket::UNIX -e 'print 1' 2>/dev/null")
		have_perl = p:read("a") == "1"
		p:close()
		t.write(t.dir .. "/rawmilter.pl", rawpl)
	end
	if not have_perl then
		return nil, "perl with IO::Socket::UNIX not found"
	end
	-- version 6, all actions, all protocol steps (as miltertest offers),
	-- or steps.offer = { version, protocol flags, actions }
	local o = steps.offer or { 6, 0x1FFFFF, 0x1FF }
	local plan = { "O " .. hex(be32(o[1]) .. be32(o[3]) .. be32(o[2])) }
	for _, s in ipairs(steps) do
		local k = s[1]
		if k == "conn" then
			local family = s[3]:find(":", 1, true) and "6" or "4"
			plan[#plan + 1] = "C " .. hex(s[2] .. "\0" .. family .. "\0\25" .. s[3] .. "\0")
		elseif k == "helo" then
			plan[#plan + 1] = "H " .. hex(s[2] .. "\0")
		elseif k == "mail" then
			plan[#plan + 1] = "M " .. hex(s[2] .. "\0")
		elseif k == "rcpt" then
			plan[#plan + 1] = "R " .. hex(s[2] .. "\0")
		elseif k == "macro" then
			plan[#plan + 1] = "D " .. hex(s[2] .. s[3] .. "\0" .. s[4] .. "\0")
		elseif k == "abort" then
			plan[#plan + 1] = "A"
		elseif k == "eom" then
			plan[#plan + 1] = "E"
		elseif k == "quit" then
			plan[#plan + 1] = "Q"
		elseif k == "raw" then
			plan[#plan + 1] = s[2] .. " " .. hex(s[3])
		else
			error("t.raw: unknown step " .. tostring(k))
		end
	end
	local planfile = t.file("rawplan", table.concat(plan, "\n") .. "\n")
	local p = io.popen("perl " .. t.shq(t.dir .. "/rawmilter.pl") .. " " .. t.shq(t.sockpath) ..
		" " .. t.shq(planfile) .. " 2>&1")
	local out = p:read("a")
	p:close()
	if not out:find("DONE\n", 1, true) then
		error("raw milter client failed: " .. t.show(out))
	end
	local res = {}
	for c, rc, h in out:gmatch("(%u) (%S) (%x*)\n") do
		if c == "O" and #h >= 24 then
			-- the protocol flags the filter negotiated (SMFIP_*)
			res.protocol = string.unpack(">I4", unhex(h), 9)
		elseif c ~= "O" then
			local data = unhex(h):gsub("%z$", "")
			local last = res[#res]
			if c == "E" and last and last.cmd == "E" and not last.final then
				last.packets[#last.packets + 1] = { code = rc, data = data }
				last.code, last.data = rc, data
				last.final = rc:match("^[cartdy]$") ~= nil
			else
				res[#res + 1] = { cmd = c, code = rc, data = data,
					packets = { { code = rc, data = data } },
					final = rc:match("^[cartdy]$") ~= nil }
			end
		end
	end
	return res
end

-- Split an SMFIR_REPLYCODE text "550 5.7.1 TEXT (ref ID); contact C".
-- Milliseconds since the epoch (for timing a step).
function t.now_ms()
	local p = io.popen("date +%s%N")
	local s = p:read("l")
	p:close()
	return tonumber(s) // 1000000
end

-- The value of the header `name` added in the EOM entry e of t.raw (its
-- SMFIR_ADDHEADER packet), or nil.
function t.raw_header(e, name)
	for _, pk in ipairs(e and e.packets or {}) do
		if pk.code == "h" and pk.data:sub(1, #name + 1) == name .. "\0" then
			return pk.data:sub(#name + 2)
		end
	end
	return nil
end

function t.split_reply(data)
	if data == nil then
		return {}
	end
	local code, xcode, text = data:match("^(%d%d%d) (%d%.%d+%.%d+) (.*)$")
	return {
		code = code,
		xcode = xcode,
		text = text,
		ref = text and text:match("%(ref (%w+)%); contact ") or nil,
		contact = text and text:match("; contact (%S+)$") or nil,
	}
end

-- Assert that raw entry e is a reply code/xcode with text containing sub,
-- ending "(ref ID); contact postmaster@example.test".  Returns the ref.
-- One whole transaction over the raw client (t.raw): opts.ip (192.0.2.10),
-- opts.host ("unknown"), opts.helo ("mail.example.net"), opts.auth (the
-- {auth_authen} macro), opts.from ("<alice@example.org>"), opts.rcpts (a
-- list).  Returns the RCPT entries in order and the EOM entry (nil when no
-- recipient was accepted).
function t.send(opts)
	local steps = { { "conn", opts.host or "unknown", opts.ip or "192.0.2.10" },
		{ "helo", opts.helo or "mail.example.net" } }
	if opts.auth then
		steps[#steps + 1] = { "macro", "M", "{auth_authen}", opts.auth }
	end
	steps[#steps + 1] = { "mail", opts.from or "<alice@example.org>" }
	for _, r in ipairs(opts.rcpts) do
		steps[#steps + 1] = { "rcpt", r }
	end
	steps[#steps + 1] = { "eom" }
	steps[#steps + 1] = { "quit" }
	local res = t.raw(steps)
	local rc, eom = {}, nil
	for _, e in ipairs(res) do
		if e.cmd == "R" then
			rc[#rc + 1] = e
		elseif e.cmd == "E" then
			eom = e
		end
	end
	return rc, eom
end

-- A raw-client entry (of t.send, t.raw) that was accepted.
function t.accepted(e)
	return e ~= nil and e.code == "c"
end

function t.raw_reply(e, code, xcode, sub, what)
	local r = t.split_reply(e and e.code == "y" and e.data or nil)
	local ok = r.code == code and r.xcode == xcode and r.text ~= nil and
		(sub == nil or r.text:find(sub, 1, true) ~= nil) and r.ref ~= nil and
		#r.ref == 10 and r.contact == t.contact
	if not ok then
		print("#   reply: " .. t.show(e and (e.code .. " " .. e.data) or nil))
		print("#   want:  " .. code .. " " .. xcode .. " ..." .. t.show(sub) ..
			"... (ref XXXXXXXXXX); contact " .. t.contact)
	end
	t.check(ok, what)
	return r.ref
end

return t
