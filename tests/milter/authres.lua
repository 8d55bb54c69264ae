-- tests/milter/authres.lua - a strict parser of Authentication-Results
-- (RFC 8601 2.2) for the identity tests
--
--   local ar = dofile(libdir .. "/authres.lua")
--   local r, err = ar.parse(value)
--
-- value is the header's value.  Returns { id = authserv-id, results =
-- { { method=, result=, reason=, props = { ["header.d"] = ..., ... },
-- comment = "text of the first comment" }, ... } }, or nil and a reason.
-- Strict: comments must be balanced, the authserv-id a token, every
-- resinfo "method=result" with a result registered for that method
-- (RFC 8601 2.7, RFC 7489 11.2), then an optional reason=, then only
-- ptype.property=value with ptype smtp, header, body or policy and a value
-- that is a token, a dot-atom or an addr-spec; nothing else.
--
-- Helpers for whole messages through the raw milter client (t: lib.lua):
--   ar.load(t, path)             a message file: {name, value} pairs (values
--                                as the MTA passes them: without the space
--                                after the colon, folding kept) and the body
--   ar.send(t, label, hdrs, body, opts)  opts.from (MAIL FROM, default
--                                <alice@dkim.test>), opts.ip (default
--                                192.0.2.10); RCPT <LABEL@example.test>;
--                                returns t.raw's EOM entry
--   ar.inserted(e, name)         values of the headers inserted (SMFIR_INSHEADER)
local ar = {}

function ar.load(t, path)
	local s = t.read(path)
	if s == nil then
		return nil
	end
	local head, body = s:match("^(.-)\r\n\r\n(.*)$")
	local hdrs = {}
	for line in (head .. "\r\n"):gmatch("(.-)\r\n") do
		if line:match("^[ \t]") and #hdrs > 0 then
			hdrs[#hdrs][2] = hdrs[#hdrs][2] .. "\r\n" .. line
		else
			local n, v = line:match("^([^:]+):[ ]?(.*)$")
			hdrs[#hdrs + 1] = { n, v }
		end
	end
	return hdrs, body
end

function ar.send(t, label, hdrs, body, opts)
	opts = opts or {}
	local steps = {
		{ "conn", "client.example.net", opts.ip or "192.0.2.10" },
		{ "helo", "client.example.net" }, { "mail", opts.from or "<alice@dkim.test>" },
		{ "rcpt", "<" .. label .. "@example.test>" },
	}
	for _, h in ipairs(hdrs) do
		steps[#steps + 1] = { "raw", "L", h[1] .. "\0" .. h[2] .. "\0" }
	end
	steps[#steps + 1] = { "raw", "N", "" }
	steps[#steps + 1] = { "raw", "B", body }
	steps[#steps + 1] = { "eom" }
	steps[#steps + 1] = { "quit" }
	local res = t.raw(steps)
	return res[#res]
end

function ar.inserted(e, name)
	local out = {}
	for _, pk in ipairs(e and e.packets or {}) do
		if pk.code == "i" then
			local n, v = pk.data:sub(5):match("^([^%z]*)%z(.*)$")
			if n == name then
				out[#out + 1] = v
			end
		end
	end
	return out
end

local results = {
	spf = { none = 1, neutral = 1, pass = 1, fail = 1, softfail = 1, temperror = 1, permerror = 1 },
	dkim = { none = 1, pass = 1, fail = 1, policy = 1, neutral = 1, temperror = 1, permerror = 1 },
	dmarc = { none = 1, pass = 1, fail = 1, temperror = 1, permerror = 1 },
}

-- Remove comments (nested, with quoted pairs); returns text, first comment.
local function uncomment(s)
	local out, depth, first, cur = {}, 0, nil, {}
	local i = 1
	while i <= #s do
		local c = s:sub(i, i)
		if depth > 0 and c == "\\" then
			cur[#cur + 1] = s:sub(i + 1, i + 1)
			i = i + 1
		elseif c == "(" then
			depth = depth + 1
			if depth > 1 then cur[#cur + 1] = c end
		elseif c == ")" and depth > 0 then
			depth = depth - 1
			if depth == 0 then
				first = first or table.concat(cur)
				cur = {}
				out[#out + 1] = " "
			else
				cur[#cur + 1] = c
			end
		elseif depth > 0 then
			cur[#cur + 1] = c
		else
			out[#out + 1] = c
		end
		i = i + 1
	end
	if depth ~= 0 then
		return nil
	end
	return table.concat(out), first
end

local token = "^[%w!#$%%&'*+%-%./^_`{|}~@]+$"

function ar.parse(value)
	if value == nil then
		return nil, "no header"
	end
	if value:find("[\r\n]") and not value:find("^[^\r\n]*\r?\n[ \t]") then
		return nil, "bare line break"
	end
	value = value:gsub("\r?\n[ \t]", " ")
	if value:find("[%c\128-\255]") and value:find("[^\t%g ]") then
		return nil, "control or 8-bit bytes"
	end
	local parts = {}
	for piece in (value .. ";"):gmatch("([^;]*);") do
		parts[#parts + 1] = piece
	end
	local id = parts[1]:gsub("^%s+", ""):gsub("%s+$", "")
	if not id:match("^[%w%.%-]+$") then
		return nil, "bad authserv-id " .. id
	end
	local r = { id = id, results = {} }
	if #parts == 2 and parts[2]:match("^%s*none%s*$") then
		return r
	end
	for k = 2, #parts do
		local text, comment = uncomment(parts[k])
		if text == nil then
			return nil, "unbalanced comment in " .. parts[k]
		end
		local words = {}
		for w in text:gmatch("%S+") do
			words[#words + 1] = w
		end
		local m, res = (words[1] or ""):match("^(%a+)=(%a+)$")
		if m == nil or results[m] == nil or results[m][res] == nil then
			return nil, "bad methodspec " .. tostring(words[1]) .. " in " .. parts[k]
		end
		local one = { method = m, result = res, props = {}, comment = comment }
		local i = 2
		if words[i] and words[i]:match("^reason=") then
			one.reason = words[i]:sub(8)
			i = i + 1
		end
		for j = i, #words do
			local ptype, prop, v = words[j]:match("^(%a+)%.([%w%-]+)=(.+)$")
			if ptype == nil or not (ptype == "smtp" or ptype == "header" or ptype == "body" or
					ptype == "policy") or not v:match(token) then
				return nil, "bad propspec " .. words[j]
			end
			if one.props[ptype .. "." .. prop] then
				return nil, "property given twice: " .. words[j]
			end
			one.props[ptype .. "." .. prop] = v
		end
		r.results[#r.results + 1] = one
	end
	return r
end

-- The results of method m, in order.
function ar.of(r, m)
	local out = {}
	for _, x in ipairs(r and r.results or {}) do
		if x.method == m then
			out[#out + 1] = x
		end
	end
	return out
end

return ar
