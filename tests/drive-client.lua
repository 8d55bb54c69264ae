-- tests/drive-client.lua - a miltertest client for the shell tests: one
-- connection to -D sock from -D ip (client name -D name, default
-- client.example.net), HELO -D helo, then per message of -D msgs
-- ("FROM RCPT[,RCPT] END;..." with END eom or abort, "-" for no
-- recipient); prints one letter per reply ("connect=c helo=c mail=c ...").
-- Used by tests/metrics.sh and tests/report.sh (through t_mt).
local function letter(r)
	if r == nil then return "nil" end
	return string.char(r)
end
local function step(conn, what, e)
	if e ~= nil then error(what .. ": " .. e) end
	return letter(mt.getreply(conn))
end
local function run()
	local conn = mt.connect(sock, 40, 0.05)
	if conn == nil then error("cannot connect to " .. sock) end
	local out = "connect=" .. step(conn, "conninfo", mt.conninfo(conn, name or "client.example.net", ip))
	out = out .. " helo=" .. step(conn, "helo", mt.helo(conn, helo))
	for m in string.gmatch(msgs, "[^;]+") do
		local from, rcpts, fin = m:match("^(%S+) (%S+) (%S+)$")
		out = out .. " mail=" .. step(conn, "mail", mt.mailfrom(conn, from))
		if rcpts ~= "-" then
			for r in string.gmatch(rcpts, "[^,]+") do
				out = out .. " rcpt=" .. step(conn, "rcpt", mt.rcptto(conn, r))
			end
		end
		if fin == "eom" then
			out = out .. " eom=" .. step(conn, "eom", mt.eom(conn))
		else
			local e = mt.abort(conn)
			if e ~= nil then error("abort: " .. e) end
			out = out .. " abort"
		end
	end
	print(out)
	mt.disconnect(conn)
end
local ok, err = xpcall(run, debug.traceback)
if not ok then
	print("LUA ERROR: " .. tostring(err))
	error(err)
end

