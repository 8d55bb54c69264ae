-- tests/milter/msg.lua - whole messages through the raw milter client, for
-- the content checks (clamav.lua, attachments.lua)
--
--   local m = dofile(libdir .. "/msg.lua")(t)   -- t: lib.lua
--   m.b64(s)                       base64, 76-character CRLF lines
--   m.send(label, headers, body)   MAIL <sender@example.net>, RCPT
--                                  <LABEL@example.test>, the headers ({name,
--                                  value} pairs), end of header, the body in
--                                  60,000-byte chunks, EOM; returns t.raw's
--                                  EOM entry (reply text, added headers)
--   m.attachment(fname, ctype, data, disp)  headers and body of a message
--                                  with a text part and one base64 part;
--                                  disp: the Content-Disposition parameters
--                                  (default: filename="FNAME"); ctype may
--                                  carry its own parameters
--   m.accepted(e, what)            the EOM entry e accepted the message
return function(t)
	local m = {}
	local chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

	function m.b64(s)
		local out = {}
		for i = 1, #s, 3 do
			local a, b, c = s:byte(i, i + 2)
			local n = (a << 16) | ((b or 0) << 8) | (c or 0)
			local q = {}
			for k = 3, 0, -1 do
				local v = (n >> (6 * k)) & 63
				q[#q + 1] = chars:sub(v + 1, v + 1)
			end
			if b == nil then
				q[3], q[4] = "=", "="
			elseif c == nil then
				q[4] = "="
			end
			out[#out + 1] = table.concat(q)
		end
		local s64 = table.concat(out)
		local lines = {}
		for i = 1, #s64, 76 do
			lines[#lines + 1] = s64:sub(i, i + 75)
		end
		return table.concat(lines, "\r\n")
	end

	function m.send(label, headers, body)
		local steps = {
			{ "conn", "client.example.net", "192.0.2.10" }, { "helo", "client.example.net" },
			{ "mail", "<sender@example.net>" }, { "rcpt", "<" .. label .. "@example.test>" },
		}
		for _, h in ipairs(headers) do
			steps[#steps + 1] = { "raw", "L", h[1] .. "\0" .. h[2] .. "\0" }
		end
		steps[#steps + 1] = { "raw", "N", "" }
		for i = 1, #body, 60000 do
			steps[#steps + 1] = { "raw", "B", body:sub(i, i + 59999) }
		end
		steps[#steps + 1] = { "eom" }
		steps[#steps + 1] = { "quit" }
		local res = t.raw(steps)
		return res[#res]
	end

	function m.attachment(fname, ctype, data, disp)
		return {
			{ "From", "sender@example.net" }, { "To", "rcpt@example.test" },
			{ "Subject", "attachment" }, { "MIME-Version", "1.0" },
			{ "Content-Type", 'multipart/mixed; boundary="b1"' },
		}, "--b1\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n" ..
			"--b1\r\nContent-Type: " .. ctype .. "\r\n" ..
			"Content-Disposition: attachment; " .. (disp or ('filename="' .. fname .. '"')) .. "\r\n" ..
			"Content-Transfer-Encoding: base64\r\n\r\n" .. m.b64(data) .. "\r\n--b1--\r\n"
	end

	function m.accepted(e, what)
		return t.check(e and e.cmd == "E" and (e.code == "c" or e.code == "a"),
			what .. ": accepted (got " .. t.show(e and e.code) .. " " ..
			t.show(e and e.data) .. ")")
	end

	return m
end
