#!/bin/sh
# tests/stress.sh - thousands of transactions opened and ended every way
#
# One miltertest client runs STRESS_TXNS (3000) transactions against a
# daemon we started, over about 1,900 connections from varying client
# addresses: a third with a refused HELO (localhost), the rest good; ended
# by RSET (abort) then a second MAIL, by a second MAIL without RSET, by end
# of message, by QUIT in the middle of a transaction, and by a connection
# dropped in the middle of a transaction (no QUIT).  Asserts:
#  - every reply is the expected one (RCPT refused exactly for bad HELOs,
#    EOM accepted), the daemon is alive afterwards and still answers;
#  - each transaction got exactly one log line ("ref=..."), with the right
#    verdicts (reject / accept / aborted) and distinct refs;
#  - SIGTERM then stops it with status 0 and no sanitizer report (ASan
#    build).
# When the daemon is not built with ASan and valgrind exists, a second run
# of STRESS_VG_TXNS (500) transactions under valgrind --leak-check=full
# must end with no valgrind error and no definite leak.
# Prints the counts and the elapsed times.

: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
. "$top_srcdir/tests/lib.sh"

t_need "$MILTERTEST" pgrep timeout
t_init
START_MS=$(t_now_ms)
: "${STRESS_TXNS:=3000}"
: "${STRESS_VG_TXNS:=500}"

cat >"$T/stress.lua" <<'EOF'
-- globals from -D: sock, txns (number of MAIL transactions to run)
local want = tonumber(txns)
local n = { mail = 0, conn = 0, bad = 0, eom = 0, abrupt = 0, quit = 0 }
local function name(r)
	if r == nil then return "nil" end
	return string.char(r)
end
local function expect(conn, what, want_r)
	local r = mt.getreply(conn)
	if r ~= want_r then
		error(string.format("%s: reply '%s', want '%s' (conn %d, mail %d)",
			what, name(r), name(want_r), n.conn, n.mail))
	end
end
local function ok(e, what)
	if e ~= nil then error(what .. ": " .. tostring(e)) end
end
-- One MAIL + RCPT; the RCPT is refused when the HELO was bad.
local function txn(conn, i, bad)
	n.mail = n.mail + 1
	if bad then n.bad = n.bad + 1 end
	ok(mt.mailfrom(conn, "<s" .. n.mail .. "@example.net>"), "mail")
	expect(conn, "MAIL", SMFIR_CONTINUE)
	ok(mt.rcptto(conn, "<u" .. n.mail .. "@example.test>"), "rcpt")
	expect(conn, "RCPT", bad and SMFIR_REPLYCODE or SMFIR_CONTINUE)
end
local function run()
	local i = 0
	while n.mail < want do
		i = i + 1
		n.conn = n.conn + 1
		local conn = mt.connect(sock, 40, 0.05)
		if conn == nil then error("cannot connect to " .. sock .. " (conn " .. i .. ")") end
		ok(mt.conninfo(conn, "c" .. i .. ".example.net",
			"192.0.2." .. (i % 250 + 1)), "conninfo")
		expect(conn, "connect", SMFIR_CONTINUE)
		local bad = (i % 3 == 0)
		ok(mt.helo(conn, bad and "localhost" or ("mail" .. i .. ".example.net")), "helo")
		expect(conn, "HELO", SMFIR_CONTINUE)
		txn(conn, i, bad)
		local k = i % 5
		local dropped = false
		if k == 0 then
			-- RSET, then a second transaction, RSET again
			ok(mt.abort(conn), "abort")
			if n.mail < want then
				txn(conn, i, bad)
				ok(mt.abort(conn), "abort")
			end
		elseif k == 1 then
			-- a second MAIL without RSET: the daemon ends the first itself
			if n.mail < want then
				txn(conn, i, bad)
			end
			if bad then
				ok(mt.abort(conn), "abort")
			else
				ok(mt.eom(conn), "eom")
				expect(conn, "EOM", SMFIR_CONTINUE)
				n.eom = n.eom + 1
			end
		elseif k == 2 then
			-- connection lost in the middle of the transaction
			ok(mt.disconnect(conn, false), "abrupt disconnect")
			n.abrupt = n.abrupt + 1
			dropped = true
		elseif k == 3 and not bad then
			ok(mt.eom(conn), "eom")
			expect(conn, "EOM", SMFIR_CONTINUE)
			n.eom = n.eom + 1
		else
			-- QUIT in the middle of the transaction
			n.quit = n.quit + 1
		end
		if not dropped then
			ok(mt.disconnect(conn, true), "disconnect")
		end
	end
	print(string.format("mail=%d conn=%d bad=%d eom=%d abrupt=%d quit=%d",
		n.mail, n.conn, n.bad, n.eom, n.abrupt, n.quit))
end
local okk, err = xpcall(run, debug.traceback)
if not okk then
	print("LUA ERROR: " .. tostring(err))
	error(err)
end
EOF

# The client of daemon.sh, to prove the daemon still answers.
cat >"$T/probe.lua" <<'EOF'
local function run()
	local conn = mt.connect(sock, 40, 0.05)
	if conn == nil then error("cannot connect") end
	mt.conninfo(conn, "probe.example.net", "198.51.100.9")
	mt.helo(conn, "localhost")
	mt.mailfrom(conn, "<probe@example.net>")
	mt.rcptto(conn, "<probe@example.test>")
	print("rcpt=" .. string.char(mt.getreply(conn)))
	mt.disconnect(conn)
end
local ok, err = xpcall(run, debug.traceback)
if not ok then print("LUA ERROR: " .. tostring(err)); error(err) end
EOF

# field NAME "a=1 NAME=2 ...": the number after NAME=.
field()
{
	echo " $2" | sed -n "s/.* $1=\([0-9][0-9]*\).*/\1/p"
}

# count ERE FILE: number of matching lines.
count()
{
	grep -c -E -e "$1" "$2" 2>/dev/null
}

# run_stress LABEL TXNS [WRAPPER...]: start the daemon (under WRAPPER, e.g.
# valgrind), run TXNS transactions, check replies, log lines and liveness,
# stop it.  Leaves the log in $T/LABEL.log.
run_stress()
{
	label=$1 txns=$2
	shift 2
	mkdir -p "$T/$label"
	conf=$T/$label/portcullis.conf
	log=$T/$label.log
	t_conf "$conf" "socket = unix:$T/$label/sock" "state_dir = $T/$label" \
		"checks = access, helo, envelope"
	if [ $# -gt 0 ]; then
		# A daemon under WRAPPER (valgrind runs the program in its own
		# process): $T_PID is the `timeout` around it, which passes
		# SIGTERM on and exits with the wrapper's status.
		timeout -s KILL 600 "$@" "$PORTCULLIS" -f -c "$conf" 2>"$log" &
		T_PID=$!
		T_WRAP=
		T_PIDS="$T_PIDS $T_PID"
		t_wait_for '[ -S "$T/$label/sock" ] || ! t_alive "$T_PID"' 60 ||
			fail "$label: socket not ready after 60 s"
		t_alive "$T_PID" || fail "$label: the daemon died at startup"
	else
		t_start "$conf" "$log"
	fi
	pid=$T_PID wrap=$T_WRAP

	t0=$(t_now_ms)
	out=$(t_mt "$T/stress.lua" -D "sock=unix:$T/$label/sock" -D "txns=$txns" 2>&1)
	rc=$?
	ms=$(($(t_now_ms) - t0))
	[ $rc -eq 0 ] || fail "$label: miltertest exit $rc: $(echo "$out" | tail -n 5)"
	stats=$(echo "$out" | grep '^mail=')
	[ -n "$stats" ] || fail "$label: no summary from the client: $out"
	s_mail=$(field mail "$stats")
	s_bad=$(field bad "$stats")
	s_eom=$(field eom "$stats")
	echo "$label: $stats in $ms ms ($((s_mail * 1000 / (ms > 0 ? ms : 1))) transactions/s)"
	[ "$s_mail" -eq "$txns" ] || t_err "$label: ran $s_mail transactions, want $txns"

	t_alive "$pid" || fail "$label: the daemon died under load"
	probe=$(t_mt "$T/probe.lua" -D "sock=unix:$T/$label/sock" 2>&1)
	[ "$probe" = "rcpt=y" ] || t_err "$label: after the load the daemon answers '$probe', want rcpt=y"

	# Every transaction (and the probe's) gets one line; the ones ended by a
	# dropped connection are logged when libmilter notices, so wait.
	want_lines=$((s_mail + 1))
	t_wait_for '[ "$(count "portcullis: ref=" "$log")" -ge "$want_lines" ]' 20 ||
		t_err "$label: $(count "portcullis: ref=" "$log") transaction log lines after 20 s, want $want_lines"

	t1=$(t_now_ms)
	kill -TERM "$pid"
	t_reap "$pid" 30 "$wrap"
	stop_rc=$T_RC
	echo "$label: stopped in $(($(t_now_ms) - t1)) ms, status $stop_rc"

	lines=$(count "portcullis: ref=" "$log")
	[ "$lines" -eq "$want_lines" ] ||
		t_err "$label: $lines transaction log lines, want exactly $want_lines"
	refs=$(sed -n 's/.*portcullis: ref=\([0-9A-Za-z]*\) .*/\1/p' "$log" | sort -u | wc -l)
	[ "$refs" -eq "$lines" ] || t_err "$label: $refs distinct refs in $lines lines"
	# Verdicts: bad-HELO transactions are refused (plus the probe), those
	# that reached EOM are accepted, every other one was aborted.
	n_rej=$(count "portcullis: ref=.* verdict=reject " "$log")
	n_acc=$(count "portcullis: ref=.* verdict=accept " "$log")
	n_abo=$(count "portcullis: ref=.* verdict=aborted " "$log")
	[ "$n_rej" -eq $((s_bad + 1)) ] || t_err "$label: $n_rej verdict=reject lines, want $((s_bad + 1))"
	[ "$n_acc" -eq "$s_eom" ] || t_err "$label: $n_acc verdict=accept lines, want $s_eom"
	[ "$n_abo" -eq $((s_mail - s_bad - s_eom)) ] ||
		t_err "$label: $n_abo verdict=aborted lines, want $((s_mail - s_bad - s_eom))"
	n_ref=$(count "refused=<u[0-9]+@example\.test>:reject:helo\.localhost verdict=reject" "$log")
	[ "$n_ref" -eq "$s_bad" ] || t_err "$label: $n_ref refused=...:reject:helo.localhost lines, want $s_bad"
	echo "$label: log lines $lines (reject $n_rej, accept $n_acc, aborted $n_abo)"
	if grep -E ": (error|warning): " "$log" | grep -v "running as root" >"$T/warn"; then
		t_err "$label: warnings in the log: $(head -n 3 "$T/warn")"
	fi
	t_grep "portcullis stopped" "$log" "$label: 'portcullis stopped'"
	[ -e "$T/$label/sock" ] && t_err "$label: socket left behind"
}

if t_is_asan "$PORTCULLIS"; then
	echo "daemon built with AddressSanitizer: LeakSanitizer checks at exit"
fi
run_stress native "$STRESS_TXNS"
[ "$stop_rc" = 0 ] || t_err "native: exit status $stop_rc after SIGTERM, want 0"
t_sanitizer_clean "$T/native.log" native

if t_is_asan "$PORTCULLIS"; then
	echo "skip: valgrind run (the daemon is built with ASan)"
elif ! command -v valgrind >/dev/null 2>&1; then
	echo "skip: valgrind run (no valgrind)"
else
	run_stress valgrind "$STRESS_VG_TXNS" valgrind --leak-check=full \
		--errors-for-leak-kinds=definite --error-exitcode=99 --log-file="$T/vg.out"
	[ "$stop_rc" = 0 ] ||
		t_err "valgrind: exit status $stop_rc, want 0 (99: valgrind found errors)"
	t_grep "ERROR SUMMARY: 0 errors" "$T/vg.out" "valgrind: 'ERROR SUMMARY: 0 errors'"
	if grep -E "definitely lost: [1-9]" "$T/vg.out" >/dev/null; then
		t_err "valgrind: definite leaks: $(grep -E 'definitely lost' "$T/vg.out")"
	fi
	grep -E "ERROR SUMMARY|definitely lost|indirectly lost" "$T/vg.out" | sed 's/^==[0-9]*== */valgrind: /'
	[ "$T_FAILS" -gt 0 ] && sed -n '1,80p' "$T/vg.out" >&2
fi
echo "stress.sh: $(($(t_now_ms) - START_MS)) ms"
t_done
