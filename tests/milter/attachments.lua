-- tests/milter/attachments.lua - the attachments check (MIME with GMime)
--
-- Messages through the raw milter client, so the reply text is read:
--   refused, the reply naming the file: invoice.exe, invoice.pdf.exe
--   (attachments.double_extension), EVIL.EXE. (case, trailing dot), a
--   KOI8-R "счет.exe" as an RFC 2047 word in Content-Type name, the same as
--   an RFC 2231 filename with charset and continuations, a UTF-8 RFC 2231
--   name, a name inside a nested message/rfc822, a content type from
--   attachments.types;
--   accepted: report.pdf, notes.exe.txt, a message without MIME;
--   malformed MIME, each answered without a crash: missing boundary
--   parameter, wrong boundary, 1,000-deep nesting (554 5.6.0 too complex),
--   a 10 MB header line in a nested part, NUL bytes, truncated base64; the
--   daemon's peak memory is printed (VmHWM);
--   monitor mode: accepted, X-Portcullis-Monitor names the symbol;
--   attachments.extensions_file replaces the list.

local t = dofile(libdir .. "/lib.lua")
local m = dofile(libdir .. "/msg.lua")(t)

local REFUSED = "not accepted: executable files are refused here"

local function refused(label, headers, body, want_name, symbol, what)
	local e = m.send(label, headers, body)
	t.raw_reply(e, "550", "5.7.1", 'Attachment "' .. want_name .. '" ' .. REFUSED, what)
	local p = t.wait_txn("<" .. label .. "@example.test>")
	t.has(p.symbols or "", symbol, what .. ": log symbol " .. symbol)
end

local function accepted(label, headers, body, what)
	local e = m.send(label, headers, body)
	m.accepted(e, what)
	return e
end

-- "счет" in KOI8-R bytes
local KOI8 = string.char(0xd3, 0xde, 0xc5, 0xd4)

t.main(function()
	t.config("checks = attachments")
	t.start()
	local data = "MZ fake program bytes"

	local h, b = m.attachment("invoice.exe", "application/octet-stream", data)
	refused("plain", h, b, "invoice.exe", "attachments.extension", "invoice.exe")

	h, b = m.attachment("invoice.pdf.exe", "application/octet-stream", data)
	refused("double", h, b, "invoice.pdf.exe", "attachments.double_extension", "invoice.pdf.exe")
	local pd = t.wait_txn("<double@example.test>")
	t.has(t.log(), "ref=" .. tostring(pd.ref) .. ' attachments: double extension "invoice.pdf.exe"',
		"the log names the refused file with the transaction's ref")

	h, b = m.attachment("EVIL.EXE.", "application/octet-stream", data)
	refused("upper", h, b, "EVIL.EXE.", "attachments.extension", "upper case and a trailing dot")

	-- RFC 2047 word (KOI8-R, base64) in Content-Type name, no filename
	h, b = m.attachment("x", 'application/octet-stream; name="=?koi8-r?B?' .. m.b64(KOI8 .. ".exe") .. '?="',
		data, "size=20")
	refused("rfc2047", h, b, "????????.exe", "attachments.extension",
		"KOI8-R RFC 2047 name (UTF-8 shown as ? in the ASCII reply)")

	-- RFC 2231 with charset and continuations
	h, b = m.attachment("x", "application/octet-stream", data,
		"filename*0*=koi8-r''%D3%DE%C5%D4; filename*1*=.e; filename*2=xe")
	refused("rfc2231", h, b, "????????.exe", "attachments.extension", "KOI8-R RFC 2231 continuations")

	h, b = m.attachment("x", "application/octet-stream", data,
		"filename*=utf-8''%D1%81%D1%87%D0%B5%D1%82.scr")
	refused("rfc2231utf8", h, b, "????????.scr", "attachments.extension", "UTF-8 RFC 2231 .scr")

	-- inside a nested message/rfc822
	local ih, ib = m.attachment("inner.pdf.js", "application/javascript", data)
	local inner = {}
	for _, x in ipairs(ih) do
		inner[#inner + 1] = x[1] .. ": " .. x[2]
	end
	refused("nested", {
		{ "From", "sender@example.net" }, { "MIME-Version", "1.0" },
		{ "Content-Type", 'multipart/mixed; boundary="outer"' },
	}, "--outer\r\nContent-Type: text/plain\r\n\r\nfwd\r\n--outer\r\nContent-Type: message/rfc822\r\n\r\n" ..
		table.concat(inner, "\r\n") .. "\r\n\r\n" .. ib .. "\r\n--outer--\r\n",
		"inner.pdf.js", "attachments.double_extension", "name inside message/rfc822")

	-- content type
	h, b = m.attachment("setup.dat", "application/x-msdownload", data)
	local e = m.send("ctype", h, b)
	t.raw_reply(e, "550", "5.7.1", 'Attachment "setup.dat" not accepted: content type application/x-msdownload',
		"content type application/x-msdownload")

	-- accepted
	h, b = m.attachment("report.pdf", "application/pdf", data)
	accepted("pdf", h, b, "report.pdf")
	h, b = m.attachment("notes.exe.txt", "text/plain", data)
	accepted("txt", h, b, "notes.exe.txt")
	accepted("nomime", { { "From", "a@example.net" }, { "Subject", "plain" } },
		"just text, invoice.exe mentioned\r\n", "a message without MIME")

	-- malformed MIME
	accepted("noboundary", { { "MIME-Version", "1.0" }, { "Content-Type", "multipart/mixed" } },
		"--x\r\nContent-Type: text/plain\r\n\r\nhi\r\n--x--\r\n", "multipart without a boundary")
	h, b = m.attachment("wrong.exe", "application/octet-stream", data)
	h[5] = { "Content-Type", 'multipart/mixed; boundary="nothere"' }
	accepted("wrongboundary", h, b, "wrong boundary: the parts are not parts (nothing to refuse)")
	local deep = {}
	for i = 1, 1000 do
		deep[#deep + 1] = "--b" .. i .. "\r\nContent-Type: multipart/mixed; boundary=\"b" .. (i + 1) .. "\"\r\n\r\n"
	end
	e = m.send("deep", { { "MIME-Version", "1.0" }, { "Content-Type", 'multipart/mixed; boundary="b1"' } },
		table.concat(deep) .. "--b1001\r\nContent-Type: text/plain\r\n\r\ndeep\r\n")
	t.raw_reply(e, "554", "5.6.0", "Message structure too complex", "1,000-deep nesting: 554 5.6.0")
	-- 150 levels: below the pre-count, deeper than the walk goes
	deep = {}
	for i = 1, 150 do
		deep[#deep + 1] = "--c" .. i .. "\r\nContent-Type: multipart/mixed; boundary=\"c" .. (i + 1) .. "\"\r\n\r\n"
	end
	e = m.send("deep150", { { "MIME-Version", "1.0" }, { "Content-Type", 'multipart/mixed; boundary="c1"' } },
		table.concat(deep) .. "--c151\r\nContent-Type: text/plain\r\n\r\ndeep\r\n")
	t.raw_reply(e, "554", "5.6.0", "nested deeper than 64 levels", "150-deep nesting: 554 5.6.0")
	accepted("longheader", { { "MIME-Version", "1.0" }, { "Content-Type", 'multipart/mixed; boundary="z"' } },
		"--z\r\nContent-Type: text/plain\r\nX-Long: " .. string.rep("a", 10 * 1024 * 1024) ..
		"\r\n\r\nbody\r\n--z--\r\n", "a 10 MB header line in a part")
	accepted("nul", { { "MIME-Version", "1.0" }, { "Content-Type", 'multipart/mixed; boundary="n"' } },
		"--n\r\nContent-Type: text/plain\r\n\r\na\0b\0\0c\r\n--n\r\nContent-Type: application/pdf; name=\"a\0.pdf\"\r\n\r\nx\r\n--n--\r\n",
		"NUL bytes in a body and a name")
	accepted("truncb64", { { "MIME-Version", "1.0" }, { "Content-Type", 'multipart/mixed; boundary="t"' } },
		"--t\r\nContent-Type: application/pdf; name=\"r.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQ",
		"truncated base64 and no closing boundary")
	local pid = t.read(t.dir .. "/portcullis.pid")
	local status = pid and t.read("/proc/" .. pid:gsub("%s", "") .. "/status") or ""
	print("# daemon peak memory after the malformed messages: " .. (status:match("VmHWM:%s*(%d+ kB)") or "?"))

	-- monitor mode
	t.reconfig("checks = attachments\nattachments.extension = monitor")
	h, b = m.attachment("tool.exe", "application/octet-stream", data)
	e = accepted("monitor", h, b, "extension in monitor mode")
	t.has(t.raw_header(e, "X-Portcullis-Monitor") or "", "attachments.extension",
		"monitor mode: X-Portcullis-Monitor names attachments.extension")

	-- an own list
	t.file("ext.list", "# test list\npdf  # pretend\n")
	t.reconfig("checks = attachments\nattachments.extensions_file = " .. t.dir .. "/ext.list")
	h, b = m.attachment("report.pdf", "application/pdf", data)
	refused("ownlist", h, b, "report.pdf", "attachments.extension", "extensions_file: .pdf refused")
	h, b = m.attachment("tool.exe", "application/octet-stream", data)
	accepted("ownlist2", h, b, "extensions_file: .exe no longer in the list")
end)
