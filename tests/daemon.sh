#!/bin/sh
# tests/daemon.sh - the daemon's life cycle and its error handling
#
# Part 1, no daemon left running: bad configurations (unknown key, bad
# value, broken access table, missing file, missing state_dir, unusable
# socket directory, unknown user, clamav without a signature database)
# end with status 1 and one exact line on stderr naming FILE:LINE or the
# path; -t, -n and -d.
# Part 2, running daemons (started together, stopped together; the stop
# itself is tests/stop.sh):
#   A  -f on a unix socket: socket_mode 0660 + socket_group mail, pidfile,
#      SIGUSR1 reload that changes a check, a broken reload that keeps the
#      running configuration, portcullisctl reload
#   B  -f on inet:PORT@127.0.0.1; a second daemon on the same port fails
#   C  without -f: forks, writes the pidfile, socket_mode 0666
#   D  (root only) user = nobody: the socket is made before the drop and given to nobody, the
#      daemon serves as uid 65534; a state_dir, a state file or a table
#      nobody cannot write/read fails -t and the start, leaving no socket
#      or pidfile in a root-owned folder
# Then SIGTERM to all: each stops within 10 s with status 0, removes its
# socket and pidfile, and its log has no sanitizer report.
# Each miltertest run talks to a daemon we started (no mt.startfilter).

: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
. "$top_srcdir/tests/lib.sh"

t_need "$MILTERTEST" ss pgrep timeout
t_init
START_MS=$(t_now_ms)

# --- helpers -----------------------------------------------------------------

# expect_error WHAT RC LINE_PREFIX -- CMD...: CMD exits with RC, prints
# nothing on stdout and exactly one line on stderr that starts with
# LINE_PREFIX (the whole line when LINE_PREFIX ends in "$").
expect_error()
{
	_what=$1 _rc=$2 _want=$3 _fails=$T_FAILS
	shift 4
	"$@" >"$T/out" 2>"$T/err" </dev/null
	_got=$?
	[ "$_got" -eq "$_rc" ] || t_err "$_what: exit status $_got, want $_rc"
	[ -s "$T/out" ] && t_err "$_what: unexpected stdout: $(head -n 3 "$T/out")"
	_n=$(wc -l <"$T/err")
	_first=$(head -n 1 "$T/err")
	case $_want in
	*'$')
		[ "$_first" = "${_want%?}" ] ||
			t_err "$_what: stderr line is
	'$_first'
want	'${_want%?}'"
		;;
	*)
		case $_first in
		"$_want"*) ;;
		*) t_err "$_what: stderr line is
	'$_first'
want a line starting with
	'$_want'" ;;
		esac
		;;
	esac
	if [ "$_n" -ne 1 ]; then
		t_err "$_what: stderr has $_n lines, want exactly 1"
		t_sanitizer_clean "$T/err" "$_what"
	fi
	[ "$T_FAILS" -eq "$_fails" ] && echo "ok: $_what"
}

# The line number of the first line of FILE matching ERE.
line_of()
{
	grep -n -E -e "$2" "$1" | head -n 1 | cut -d: -f1
}

# The miltertest client of tests/envelope-client.lua.
CLIENT_LUA=$top_srcdir/tests/envelope-client.lua

# client WHAT SOCK HELO WANT_RCPT_LETTER: one transaction from 192.0.2.7;
# RCPT must be answered WANT (y = reject/tempfail with a reply code,
# c = continue).  The earlier stages must all continue (held verdicts).
client()
{
	_out=$(t_mt "$CLIENT_LUA" -D "sock=$2" -D ip=192.0.2.7 -D "helo=$3" 2>&1)
	_rc=$?
	if [ $_rc -ne 0 ]; then
		t_err "$1: miltertest exit $_rc: $_out"
		return 1
	fi
	_want="connect=c helo=c mail=c rcpt=$4"
	if [ "$_out" != "$_want" ]; then
		t_err "$1: miltertest said '$_out', want '$_want'"
		return 1
	fi
	echo "ok: $1 ($_out)"
}

# wait_log LOG ERE [N]: wait (5 s) until LOG has N (1) lines matching ERE;
# t_err if they do not come.
wait_log()
{
	_wl_log=$1 _wl_re=$2 _wl_n=${3:-1}
	t_wait_for '[ "$(grep -c -E -e "$_wl_re" "$_wl_log")" -ge "$_wl_n" ]' 5 && return 0
	t_err "no line /$_wl_re/ (x$_wl_n) in $_wl_log after 5 s"
	return 1
}

# --- part 1: configuration and startup errors ---------------------------------

P1_MS=$(t_now_ms)
F=$T/bad-key.conf
t_conf "$F" "pidfile = $T/never.pid" "x.y = 1"
L=$(line_of "$F" '^x\.y')
expect_error "unknown key (-t)" 1 "portcullis: $F:$L: unknown parameter 'x.y'\$" -- \
	"$PORTCULLIS" -t -c "$F"
expect_error "unknown key (run)" 1 "portcullis: $F:$L: unknown parameter 'x.y'\$" -- \
	"$PORTCULLIS" -f -c "$F"
[ -e "$T/sock" ] && t_err "unknown key (run): the socket was created"
[ -e "$T/never.pid" ] && t_err "unknown key (run): the pidfile was written"

F=$T/bad-value.conf
t_conf "$F" "helo.bare_ip = rejct"
L=$(line_of "$F" '^helo\.bare_ip')
expect_error "bad mode value" 1 "portcullis: $F:$L: helo.bare_ip: invalid mode 'rejct'" -- \
	"$PORTCULLIS" -t -c "$F"

F=$T/bad-number.conf
t_conf "$F" "socket_mode = 0999"
L=$(line_of "$F" '^socket_mode')
expect_error "bad octal value" 1 "portcullis: $F:$L: socket_mode: invalid octal number '0999'" -- \
	"$PORTCULLIS" -t -c "$F"

printf '%s\n' '# clients' '192.0.2.0/24 REJECT go away' '10.300.0.0/16 OK' \
	'198.51.100.0/24 OK' >"$T/clients.cidr"
F=$T/bad-table.conf
t_conf "$F" "access.client = cidr:$T/clients.cidr"
L=$(line_of "$F" '^access\.client')
expect_error "broken access table" 1 \
	"portcullis: $F:$L: access.client: $T/clients.cidr:3: bad network '10.300.0.0/16'" -- \
	"$PORTCULLIS" -t -c "$F"

expect_error "missing -c file" 1 "portcullis: $T/nonexistent.conf: No such file or directory\$" -- \
	"$PORTCULLIS" -t -c "$T/nonexistent.conf"
expect_error "missing -c file (run)" 1 "portcullis: $T/nonexistent.conf: No such file or directory\$" -- \
	"$PORTCULLIS" -f -c "$T/nonexistent.conf"

F=$T/no-state.conf
t_conf "$F" "state_dir = $T/nostate"
expect_error "missing state_dir" 1 \
	"portcullis: state_dir $T/nostate: No such file or directory (create it or set state_dir)\$" -- \
	"$PORTCULLIS" -f -c "$F"
[ -e "$T/sock" ] && t_err "missing state_dir: the socket was created"

F=$T/no-sockdir.conf
t_conf "$F" "socket = unix:$T/nodir/portcullis.sock"
expect_error "missing socket directory" 1 \
	"portcullis: socket unix:$T/nodir/portcullis.sock: directory $T/nodir: No such file or directory\$" -- \
	"$PORTCULLIS" -f -c "$F"

F=$T/no-user.conf
mkdir "$T/nouser"
t_conf "$F" "socket = unix:$T/nouser/sock" "user = nosuchuser-pc"
expect_error "unknown user" 1 "portcullis: user: unknown user 'nosuchuser-pc'\$" -- \
	"$PORTCULLIS" -f -c "$F"

# clamav enabled: -t and the start need a signature database.
F=$T/no-avdb.conf
t_conf "$F" "checks = clamav" "clamav.database = $T/no-avdb"
ME=$(id -un)
expect_error "-t, missing clamav.database" 1 \
	"portcullis: clamav.database $T/no-avdb: No such file or directory (as user $ME)\$" -- \
	"$PORTCULLIS" -t -c "$F"
expect_error "run, missing clamav.database" 1 \
	"portcullis: clamav.database $T/no-avdb: No such file or directory (as user $ME)\$" -- \
	"$PORTCULLIS" -f -c "$F"
[ -e "$T/sock" ] && t_err "missing clamav.database (run): the socket was created"
mkdir "$T/empty-avdb"
: >"$T/empty-avdb/README"
t_conf "$F" "checks = clamav" "clamav.database = $T/empty-avdb"
expect_error "-t, clamav.database without signatures" 1 \
	"portcullis: clamav.database $T/empty-avdb: no signature file readable by user $ME (run freshclam, or fix the path)\$" -- \
	"$PORTCULLIS" -t -c "$F"

# -t on a good file: status 0, one line on stdout, nothing on stderr.
F=$T/good.conf
t_conf "$F" "pidfile = $T/a.pid" "socket_group = mail" "helo.non_fqdn = monitor" \
	"helo.bare_ip = reject" "score.reject = 15" "access.mode = defer"
"$PORTCULLIS" -t -c "$F" >"$T/out" 2>"$T/err"
rc=$?
[ $rc -eq 0 ] || t_err "-t good file: exit $rc: $(cat "$T/err")"
[ "$(cat "$T/out")" = "portcullis: configuration $F is valid" ] ||
	t_err "-t good file: stdout '$(cat "$T/out")'"
[ -s "$T/err" ] && t_err "-t good file: stderr '$(head -n 3 "$T/err")'"
echo "ok: -t on a good file"

# -n: exactly the keys whose value differs from the default (helo.bare_ip
# is set to its default value, so it is not printed).
"$PORTCULLIS" -n -c "$F" >"$T/n.out" 2>"$T/err"
rc=$?
[ $rc -eq 0 ] || t_err "-n: exit $rc: $(cat "$T/err")"
[ -s "$T/err" ] && t_err "-n: stderr '$(head -n 3 "$T/err")'"
sed 's/[[:space:]]*$//' "$T/n.out" | sort >"$T/n.got"
cat >"$T/n.want.unsorted" <<EOF
socket = unix:$T/sock
state_dir = $T
log_target = stderr
trusted_networks =
hostname = mx.example.test
contact = postmaster@example.test
pidfile = $T/a.pid
socket_group = mail
helo.non_fqdn = monitor
score.reject = 15
access.mode = defer
EOF
sort "$T/n.want.unsorted" >"$T/n.want"
if ! cmp -s "$T/n.got" "$T/n.want"; then
	t_err "-n output differs from the changed keys:
$(diff "$T/n.want" "$T/n.got")"
fi
echo "ok: -n prints only the changed keys"

# -d: every key once, "key = value"; it is a valid file that is all
# defaults (-n of it prints nothing), and it holds every key -n printed
# plus every key that a module table declares (spot checks).
"$PORTCULLIS" -d >"$T/d.out" 2>"$T/err"
rc=$?
[ $rc -eq 0 ] || t_err "-d: exit $rc"
[ -s "$T/err" ] && t_err "-d: stderr '$(head -n 3 "$T/err")'"
bad=$(grep -v -E '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)? = ' "$T/d.out" | head -n 3)
[ -n "$bad" ] && t_err "-d: lines not of the form 'key = value': $bad"
dups=$(cut -d' ' -f1 "$T/d.out" | sort | uniq -d)
[ -n "$dups" ] && t_err "-d: keys printed twice: $dups"
for k in $(cut -d' ' -f1 "$T/n.want") checks socket socket_mode user milter_timeout \
	helo.mode helo.on_error helo.localhost helo.own_names access.client access.recipient \
	envelope.mode envelope.max_rcpts score.tag header_prefix; do
	grep -q "^$k = " "$T/d.out" || t_err "-d: key $k missing"
done
grep -qx 'socket_mode = 0660' "$T/d.out" || t_err "-d: socket_mode default is not 0660"
grep -qx 'helo.bare_ip = reject' "$T/d.out" || t_err "-d: helo.bare_ip default is not reject"
# (-t also checks what the start needs: a state_dir that exists here)
sed "s|^state_dir = .*|state_dir = $T|" "$T/d.out" >"$T/d-here.out"
"$PORTCULLIS" -t -c "$T/d-here.out" >/dev/null 2>"$T/err" ||
	t_err "-d output is not a valid configuration: $(head -n 1 "$T/err")"
"$PORTCULLIS" -n -c "$T/d.out" >"$T/dn.out" 2>"$T/err"
[ -s "$T/dn.out" ] && t_err "-n of the -d output is not empty (a default does not read back as itself):
$(head -n 5 "$T/dn.out")"
echo "ok: -d prints every key ($(wc -l <"$T/d.out") keys), and reads back as all defaults"
echo "part 1: $(($(t_now_ms) - P1_MS)) ms"

# --- part 2: running daemons --------------------------------------------------

P2_MS=$(t_now_ms)
# A: unix socket 0660, group mail (root) or our own group, pidfile.
if [ "$(id -u)" -eq 0 ] && getent group mail >/dev/null 2>&1; then
	GROUP=mail
else
	GROUP=$(id -gn)
fi
mkdir "$T/a"
FA=$T/a/portcullis.conf
A_CONF_BASE="socket = unix:$T/a/sock
state_dir = $T/a
log_target = stderr
trusted_networks =
hostname = mx.example.test
contact = postmaster@example.test
socket_mode = 0660
socket_group = $GROUP
pidfile = $T/a/pid"
echo "$A_CONF_BASE" >"$FA"
t_start "$FA" "$T/a.log"
A_PID=$T_PID A_WRAP=$T_WRAP

# B: inet socket on the loopback.
mkdir "$T/b"
PORT=$(t_free_port)
t_conf "$T/b/portcullis.conf" "socket = inet:$PORT@127.0.0.1" "state_dir = $T/b" \
	"pidfile = $T/b/pid"
t_start "$T/b/portcullis.conf" "$T/b.log"
B_PID=$T_PID B_WRAP=$T_WRAP

# E: inet6 socket on ::1, when this machine has an IPv6 loopback.
E_PID=
if ip -6 addr show lo 2>/dev/null | grep -q 'inet6 ::1'; then
	mkdir "$T/e"
	PORT6=$(t_free_port)
	t_conf "$T/e/portcullis.conf" "socket = inet6:$PORT6@::1" "state_dir = $T/e"
	t_start "$T/e/portcullis.conf" "$T/e.log"
	E_PID=$T_PID E_WRAP=$T_WRAP
fi

# C: daemon mode (no -f), socket 0666.  The parent returns at once; the
# child writes the pidfile.
mkdir "$T/c"
t_conf "$T/c/portcullis.conf" "socket = unix:$T/c/sock" "state_dir = $T/c" \
	"pidfile = $T/c/pid" "socket_mode = 0666"
timeout 20 "$PORTCULLIS" -c "$T/c/portcullis.conf" >"$T/c.out" 2>"$T/c.log"
rc=$?
[ $rc -eq 0 ] || t_err "daemon mode: the parent exited with $rc"
[ -s "$T/c.out" ] && t_err "daemon mode: unexpected stdout: $(head -n 2 "$T/c.out")"
t_wait_for '[ -s "$T/c/pid" ]' 5 || fail "daemon mode: no pidfile $T/c/pid after 5 s"
C_PID=$(cat "$T/c/pid")
T_PIDS="$T_PIDS $C_PID"
t_alive "$C_PID" || fail "daemon mode: pid $C_PID from the pidfile is not running"
# A forked daemon: its parent is not this shell and it leads its session.
C_PPID=$(sed 's/^.*) . \([0-9]*\) [0-9]* \([0-9]*\).*/\1/' "/proc/$C_PID/stat")
C_SID=$(sed 's/^.*) . [0-9]* [0-9]* \([0-9]*\).*/\1/' "/proc/$C_PID/stat")
[ "$C_PPID" != "$$" ] || t_err "daemon mode: the daemon is still our child"
[ "$C_SID" = "$C_PID" ] || t_err "daemon mode: not a session leader (sid $C_SID)"
t_wait_for '[ -S "$T/c/sock" ]' 5 || t_err "daemon mode: no socket $T/c/sock"
echo "ok: daemon mode forked (pid $C_PID, parent exit 0)"

# D: drop privileges to nobody (root only).  The socket is created as root,
# given to nobody, in a directory nobody may write (to remove it at exit).
D_PID=
if [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1; then
	chmod 711 "$T"
	mkdir "$T/d"
	chown nobody "$T/d"
	t_conf "$T/d/portcullis.conf" "socket = unix:$T/d/sock" "state_dir = $T/d" \
		"pidfile = $T/d/pid" "user = nobody" "socket_mode = 0660"
	t_start "$T/d/portcullis.conf" "$T/d.log"
	D_PID=$T_PID D_WRAP=$T_WRAP
	NOBODY_UID=$(id -u nobody)
	t_wait_for 'grep -q "^Uid:[[:space:]]*$NOBODY_UID[[:space:]]" "/proc/$D_PID/status"' 5
	uids=$(sed -n 's/^Uid:[[:space:]]*//p' "/proc/$D_PID/status" | tr -s '[:space:]' ' ' |
		sed 's/ $//')
	[ "$uids" = "$NOBODY_UID $NOBODY_UID $NOBODY_UID $NOBODY_UID" ] ||
		t_err "user = nobody: Uid line is '$uids', want $NOBODY_UID in all four fields"
	[ "$(stat -c %U "$T/d/sock")" = nobody ] ||
		t_err "user = nobody: socket owner $(stat -c %U "$T/d/sock"), want nobody (made as root, given to the user)"
	[ "$(stat -c %a "$T/d/sock")" = 660 ] ||
		t_err "user = nobody: socket mode $(stat -c %a "$T/d/sock"), want 660"
	client "user = nobody: serves" "unix:$T/d/sock" localhost y
	echo "ok: user = nobody (uids $uids)"

	# A state_dir nobody cannot write: refused after the drop.
	mkdir "$T/d2" "$T/d2s"
	chown nobody "$T/d2"
	t_conf "$T/d2/portcullis.conf" "socket = unix:$T/d2/sock" "state_dir = $T/d2s" \
		"user = nobody"
	expect_error "user = nobody, state_dir not writable" 1 \
		"portcullis: state_dir $T/d2s: not writable by user nobody: Permission denied\$" -- \
		"$PORTCULLIS" -f -c "$T/d2/portcullis.conf"

	# -t checks what the start needs as the configured user, and a start
	# that cannot work leaves no socket behind in a root-owned folder.
	mkdir "$T/d3" "$T/d3s"
	chmod 755 "$T/d3"
	t_conf "$T/d3/portcullis.conf" "socket = unix:$T/d3/sock" "state_dir = $T/d3s" \
		"user = nobody" "pidfile = $T/d3/pid"
	expect_error "-t, user = nobody, state_dir not writable" 1 \
		"portcullis: state_dir $T/d3s: not writable by user nobody: Permission denied\$" -- \
		"$PORTCULLIS" -t -c "$T/d3/portcullis.conf"
	expect_error "daemon mode, user = nobody, state_dir not writable" 1 \
		"portcullis: state_dir $T/d3s: not writable by user nobody: Permission denied\$" -- \
		"$PORTCULLIS" -c "$T/d3/portcullis.conf"
	[ -e "$T/d3/sock" ] && t_err "failed start as nobody: the socket $T/d3/sock was left behind"
	[ -e "$T/d3/pid" ] && t_err "failed start as nobody: the pidfile was left behind"
	chown nobody "$T/d3s"
	touch "$T/d3s/greylist.tdb"
	chmod 600 "$T/d3s/greylist.tdb"
	expect_error "-t, user = nobody, a state file owned by root" 1 \
		"portcullis: state_dir: $T/d3s/greylist.tdb: not writable by user nobody: Permission denied\$" -- \
		"$PORTCULLIS" -t -c "$T/d3/portcullis.conf"
	rm -f "$T/d3s/greylist.tdb"
	printf '192.0.2.0/24 REJECT no\n' >"$T/d3/private.cidr"
	chmod 600 "$T/d3/private.cidr"
	t_conf "$T/d3/portcullis.conf" "socket = unix:$T/d3/sock" "state_dir = $T/d3s" \
		"user = nobody" "access.client = cidr:$T/d3/private.cidr"
	L=$(line_of "$T/d3/portcullis.conf" '^access\.client')
	chmod 644 "$T/d3/portcullis.conf"
	expect_error "-t, user = nobody, a table only root can read" 1 \
		"portcullis: $T/d3/portcullis.conf:$L: access.client: " -- \
		"$PORTCULLIS" -t -c "$T/d3/portcullis.conf"
	grep -q "Permission denied (as user nobody)" "$T/err" ||
		t_err "unreadable table: '$(cat "$T/err")' does not say 'Permission denied (as user nobody)'"
	expect_error "run, user = nobody, a table only root can read" 1 \
		"portcullis: $T/d3/portcullis.conf:$L: access.client: " -- \
		"$PORTCULLIS" -f -c "$T/d3/portcullis.conf"
	[ -e "$T/d3/sock" ] && t_err "unreadable table: the socket $T/d3/sock was left behind"
	echo "ok: -t and the start check state_dir, state files and tables as user nobody"
else
	echo "skip: user = nobody (not root)"
fi

# Socket modes, group, pidfiles.
[ "$(stat -c %a "$T/a/sock")" = 660 ] || t_err "socket_mode 0660: mode is $(stat -c %a "$T/a/sock")"
[ "$(stat -c %G "$T/a/sock")" = "$GROUP" ] ||
	t_err "socket_group $GROUP: group is $(stat -c %G "$T/a/sock")"
[ "$(stat -c %a "$T/c/sock")" = 666 ] || t_err "socket_mode 0666: mode is $(stat -c %a "$T/c/sock")"
[ "$(cat "$T/a/pid" 2>/dev/null)" = "$A_PID" ] ||
	t_err "pidfile $T/a/pid holds '$(cat "$T/a/pid" 2>/dev/null)', want $A_PID"
[ "$(cat "$T/b/pid" 2>/dev/null)" = "$B_PID" ] ||
	t_err "pidfile $T/b/pid holds '$(cat "$T/b/pid" 2>/dev/null)', want $B_PID"
echo "ok: socket modes 660/666, group $GROUP, pidfiles"

# Each daemon answers; HELO localhost from 192.0.2.7 is refused at RCPT.
client "A: HELO localhost refused" "unix:$T/a/sock" localhost y
t_grep "ref=[0-9A-Za-z]{10} client=client\.example\.net\[192\.0\.2\.7\] helo=<localhost> from=<sender@example\.net> refused=<user@example\.test>:reject:helo\.localhost verdict=reject" \
	"$T/a.log" "A: log line of the refused transaction"
client "A: a good HELO passes" "unix:$T/a/sock" mail.example.net c
client "B: inet:$PORT@127.0.0.1 answers" "inet:$PORT@127.0.0.1" localhost y
t_grep "helo=<localhost> .*refused=<user@example\.test>:reject:helo\.localhost" "$T/b.log" \
	"B: log line of the refused transaction"
client "C: daemon mode answers" "unix:$T/c/sock" localhost y
if [ -n "$E_PID" ]; then
	# miltertest cannot connect over IPv6: a protocol option negotiation
	# (SMFIC_OPTNEG, version 6) must be answered with SMFIC_OPTNEG.
	ans=$(timeout 10 perl -MIO::Socket::IP -e '
		my $s = IO::Socket::IP->new(PeerHost => "::1", PeerPort => $ARGV[0]) or die "connect: $!";
		print $s pack("N a N N N", 13, "O", 6, 0x1ff, 0x1fffff);
		read($s, my $len, 4) == 4 or die "no reply";
		read($s, my $body, unpack("N", $len)) or die "short reply";
		print substr($body, 0, 1), "\n";' "$PORT6" 2>&1)
	[ "$ans" = O ] && echo "ok: E: inet6:$PORT6@::1 negotiates" ||
		t_err "E: inet6 socket: option negotiation answered '$ans'"
else
	echo "SKIP: no IPv6 loopback, inet6 socket not tested"
fi

# A second daemon on B's port cannot listen: status 1, one line.
mkdir "$T/b2"
t_conf "$T/b2/portcullis.conf" "socket = inet:$PORT@127.0.0.1" "state_dir = $T/b2"
expect_error "inet port in use" 1 "portcullis: socket inet:$PORT@127.0.0.1: " -- \
	timeout 20 "$PORTCULLIS" -f -c "$T/b2/portcullis.conf"

# Reload: helo.localhost = off takes effect after SIGUSR1.
{ echo "$A_CONF_BASE"; echo "helo.localhost = off"; } >"$FA"
kill -USR1 "$A_PID"
wait_log "$T/a.log" "configuration reloaded from $FA" &&
	echo "ok: SIGUSR1 logged 'configuration reloaded'"
client "A: after reload, helo.localhost = off" "unix:$T/a/sock" localhost c

# A broken reload is refused with FILE:LINE and the daemon keeps the
# running configuration (helo.localhost stays off).
{ echo "$A_CONF_BASE"; echo "helo.localhost = off"; echo "x.y = 1"; } >"$FA"
L=$(line_of "$FA" '^x\.y')
kill -USR1 "$A_PID"
wait_log "$T/a.log" "reload failed: $FA:$L: unknown parameter 'x\.y'" &&
	echo "ok: broken reload logged 'reload failed: $FA:$L: ...'"
t_alive "$A_PID" || fail "A died after a broken reload"
client "A: after a failed reload, the old configuration (helo.localhost = off)" \
	"unix:$T/a/sock" localhost c

# portcullisctl reload (pidfile) brings helo.localhost back to reject.
echo "$A_CONF_BASE" >"$FA"
out=$("$PORTCULLISCTL" -c "$FA" reload 2>&1)
rc=$?
[ $rc -eq 0 ] || t_err "portcullisctl reload: exit $rc: $out"
wait_log "$T/a.log" "configuration reloaded from $FA" 2 &&
	echo "ok: portcullisctl reload"
client "A: after portcullisctl reload, helo.localhost = reject" "unix:$T/a/sock" localhost y

# --- stop everything at once ---------------------------------------------------

STOP_MS=$(t_now_ms)
for p in $A_PID $B_PID $C_PID $D_PID $E_PID; do
	kill -TERM "$p" 2>/dev/null || t_err "pid $p gone before SIGTERM"
done
t_reap "$A_PID" 10 "$A_WRAP" && { [ "$T_RC" = 0 ] || t_err "A: exit status $T_RC after SIGTERM, want 0"; }
t_reap "$B_PID" 10 "$B_WRAP" && { [ "$T_RC" = 0 ] || t_err "B: exit status $T_RC after SIGTERM, want 0"; }
t_wait_exit "$C_PID" 10 || t_err "C: still running 10 s after SIGTERM"
if [ -n "$D_PID" ]; then
	t_reap "$D_PID" 10 "$D_WRAP" && { [ "$T_RC" = 0 ] || t_err "D: exit status $T_RC after SIGTERM, want 0"; }
fi
if [ -n "$E_PID" ]; then
	t_reap "$E_PID" 10 "$E_WRAP" && { [ "$T_RC" = 0 ] || t_err "E: exit status $T_RC after SIGTERM, want 0"; }
fi
echo "ok: SIGTERM stopped all daemons in $(($(t_now_ms) - STOP_MS)) ms"

for x in a b c d e; do
	[ -f "$T/$x.log" ] || continue
	[ -e "$T/$x/sock" ] && t_err "$x: socket $T/$x/sock left behind after SIGTERM"
	[ -e "$T/$x/pid" ] && t_err "$x: pidfile $T/$x/pid left behind after SIGTERM"
	t_grep "portcullis stopped" "$T/$x.log" "$x: 'portcullis stopped' log line"
	t_sanitizer_clean "$T/$x.log" "$x"
	if grep -E ": error: " "$T/$x.log" | grep -v "reload failed" >/dev/null; then
		t_err "$x: error lines in the log: $(grep -E ': error: ' "$T/$x.log" | head -n 2)"
	fi
done
echo "part 2: $(($(t_now_ms) - P2_MS)) ms"
echo "daemon.sh: $(($(t_now_ms) - START_MS)) ms"
t_done
