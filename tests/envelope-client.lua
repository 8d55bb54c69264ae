-- tests/envelope-client.lua - a miltertest client for the shell tests:
-- connect (from -D ip) to -D sock, HELO -D helo, MAIL, RCPT; prints the
-- reply letter of each step, e.g. "connect=c helo=c mail=c rcpt=y".
-- Used by tests/daemon.sh and tests/descriptors.sh (through t_mt).
local function letter(r)
	if r == nil then return "nil" end
	return string.char(r)
end
local function run()
	local conn = mt.connect(sock, 40, 0.05)
	if conn == nil then error("cannot connect to " .. sock) end
	local e = mt.conninfo(conn, "client.example.net", ip)
	if e ~= nil then error("conninfo: " .. e) end
	local out = "connect=" .. letter(mt.getreply(conn))
	e = mt.helo(conn, helo)
	if e ~= nil then error("helo: " .. e) end
	out = out .. " helo=" .. letter(mt.getreply(conn))
	e = mt.mailfrom(conn, "<sender@example.net>")
	if e ~= nil then error("mail: " .. e) end
	out = out .. " mail=" .. letter(mt.getreply(conn))
	e = mt.rcptto(conn, "<user@example.test>")
	if e ~= nil then error("rcpt: " .. e) end
	out = out .. " rcpt=" .. letter(mt.getreply(conn))
	print(out)
	mt.disconnect(conn)
end
local ok, err = xpcall(run, debug.traceback)
if not ok then
	print("LUA ERROR: " .. tostring(err))
	error(err)
end
