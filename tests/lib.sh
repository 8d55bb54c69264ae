# tests/lib.sh - shared helpers of the shell tests (POSIX sh; sourced)
#
#   : "${top_srcdir:=...}"; . "$top_srcdir/tests/lib.sh"
#   t_need PROG...               exit 77 (skip) when a tool is missing
#   t_init                       private temp dir $T, cleanup trap
#   t_at_exit CMD                run CMD at exit (before the daemons stop)
#   t_conf FILE [LINE...]        write a daemon config (socket, state_dir ...
#                                under $T; extra "key = value" lines after)
#   t_start CONF LOG             start "$PORTCULLIS -f -c CONF 2>LOG" under
#                                `timeout`, wait for its socket; sets $T_PID
#                                (the daemon) and $T_WRAP (the timeout)
#   t_stop PID [SECS] [WRAP]     SIGTERM, then t_reap
#   t_reap PID [SECS] [WRAP]     wait (bounded) for PID to end, $T_RC = status
#   t_alive PID                  a live process (zombies count as dead)
#   t_wait_for CMD [SECS]        poll the shell command CMD until it succeeds
#   t_free_port                  print a free loopback TCP port
#   t_port_busy PORT             something listens on PORT
#   t_mt SCRIPT [ARGS]           run a miltertest Lua script (bounded)
#   t_ctl ARGS...                portcullisctl -c "$CONF" ARGS (bounded)
#   t_run_ctl RC ARGS...         t_ctl, output in $CTL_OUT; t_err unless
#                                its exit status is RC
#   t_has TEXT [WHAT]            t_err unless $CTL_OUT holds TEXT
#   t_dns_start [LIFETIME]       the private NSD of tests/dns/server.sh in
#                                $DNSDIR=$T/dns, stopped at exit; sets
#                                $DNS_NSD_PORT; skips (77) without nsd
#   t_is_asan BINARY             built with AddressSanitizer
#   t_sanitizer_clean LOG        t_err on ASan/LSan/UBSan reports in LOG
#   t_grep ERE FILE [WHAT]       t_err unless the ERE is in FILE (within 5 s)
#   fail MSG                     fatal: stop the test now (exit 1)
#   t_err MSG                    an assertion failed: go on, fail at t_done
#   t_done                       exit 1 if any t_err, else 0
#   t_now_ms                     milliseconds, for timings
#
# Everything a test starts lives on the loopback and under $T, is bounded
# by `timeout` and is stopped by the EXIT trap, even when the test fails or
# is interrupted; on failure the trap prints the tail of each log in $T.
# Set T_KEEP=1 to keep $T for a post-mortem.  The variables come from
# Makefile.am's AM_TESTS_ENVIRONMENT; run by hand from a build folder they
# default to ./milter/portcullis and the tools found in PATH.

: "${top_builddir:=.}"
: "${PORTCULLIS:=$top_builddir/milter/portcullis}"
: "${PORTCULLISCTL:=$top_builddir/milter/portcullisctl}"
: "${MILTERTEST:=$(command -v miltertest 2>/dev/null)}"
: "${SWAKS:=$(command -v swaks 2>/dev/null)}"
: "${ASAN_OPTIONS:=detect_leaks=1:abort_on_error=0}"
: "${UBSAN_OPTIONS:=print_stacktrace=1}"
export ASAN_OPTIONS UBSAN_OPTIONS

T=
T_PIDS=          # processes to kill at exit (daemons we started)
T_CLEANUP=       # shell commands to run at exit (before the kills)
T_PID=
T_RC=
T_NAME=$(basename "$0" .sh)

fail()
{
	echo "FAIL: $T_NAME: $*" >&2
	exit 1
}

T_FAILS=0

# An assertion failed; the test goes on and fails at t_done.
t_err()
{
	echo "FAIL: $T_NAME: $*" >&2
	T_FAILS=$((T_FAILS + 1))
}

pass()
{
	echo "ok: $*"
}

t_done()
{
	if [ "$T_FAILS" -gt 0 ]; then
		echo "$T_NAME: $T_FAILS assertion(s) failed" >&2
		exit 1
	fi
	exit 0
}

# The test needs these programs (names or paths); skip (77) without them.
t_need()
{
	for _p in "$@"; do
		if [ -z "$_p" ] || ! command -v "$_p" >/dev/null 2>&1; then
			echo "SKIP: $T_NAME: ${_p:-a tool} not available" >&2
			exit 77
		fi
	done
}

# 1 if PID is a live process (a zombie counts as dead: dash does not reap
# background jobs until `wait`).
t_alive()
{
	[ -n "$1" ] || return 1
	[ -r "/proc/$1/stat" ] || return 1
	_st=$(sed 's/^.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$_st" ] && [ "$_st" != Z ] && [ "$_st" != X ]
}

# Wait up to $2 seconds (default 10) for PID $1 to end.  Returns 0 if it
# ended.  Polls every 0.05 s.
t_wait_exit()
{
	_n=$(( ${2:-10} * 20 ))
	while t_alive "$1"; do
		_n=$((_n - 1))
		[ $_n -gt 0 ] || return 1
		sleep 0.05
	done
	return 0
}

# Wait up to $2 seconds for the shell command $1 to succeed.
t_wait_for()
{
	_n=$(( ${2:-10} * 20 ))
	while ! eval "$1"; do
		_n=$((_n - 1))
		[ $_n -gt 0 ] || return 1
		sleep 0.05
	done
	return 0
}

t_cleanup()
{
	_rc=$?
	set +e
	[ -n "$T_CLEANUP" ] && eval "$T_CLEANUP"
	# SIGTERM to all first (libmilter takes up to 5 s to stop), then wait.
	for _p in $T_PIDS; do
		t_alive "$_p" && kill -TERM "$_p" 2>/dev/null
	done
	for _p in $T_PIDS; do
		t_wait_exit "$_p" 8 || kill -KILL "$_p" 2>/dev/null
	done
	if [ -n "$T" ] && [ -d "$T" ]; then
		if [ "$_rc" -ne 0 ] && [ "$_rc" -ne 77 ]; then
			for _f in "$T"/*log "$T"/log*; do
				[ -f "$_f" ] || continue
				echo "--- $_f (last 30 lines)" >&2
				tail -n 30 "$_f" >&2
			done
		fi
		if [ -n "${T_KEEP:-}" ]; then
			echo "kept $T" >&2
		else
			rm -rf "$T"
		fi
	fi
	exit $_rc
}

t_init()
{
	T=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-$T_NAME.XXXXXX") || fail "mktemp"
	# Unix socket paths must fit in sun_path (108 bytes).
	if [ ${#T} -gt 60 ]; then
		rmdir "$T"
		T=$(mktemp -d "/tmp/portcullis-$T_NAME.XXXXXX") || fail "mktemp"
	fi
	trap t_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap 'exit 129' HUP
	[ -x "$PORTCULLIS" ] || fail "daemon $PORTCULLIS not built"
}

# Add a shell command to run at exit.
t_at_exit()
{
	T_CLEANUP="$1
$T_CLEANUP"
}

# t_conf FILE [LINE...]: a daemon config for a test, socket unix:$T/sock
# unless a LINE sets socket itself (later keys win).
t_conf()
{
	_f=$1
	shift
	{
		echo "socket = unix:$T/sock"
		echo "state_dir = $T"
		echo "log_target = stderr"
		echo "trusted_networks ="
		echo "hostname = mx.example.test"
		echo "contact = postmaster@example.test"
		for _l in "$@"; do
			echo "$_l"
		done
	} >"$_f"
}

# The value of KEY in config FILE (last one wins), whitespace trimmed.
t_conf_get()
{
	sed -n "s/^[[:space:]]*$2[[:space:]]*=[[:space:]]*//p" "$1" | tail -n 1 |
		sed 's/[[:space:]]*$//'
}

# Is something listening on loopback TCP port $1?
t_port_busy()
{
	ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
}

# A free TCP port in 20000-31999: below Linux's ephemeral range (32768 on),
# where any client socket of a test running alongside may take it between
# this check and the bind (seen: Postfix "bind 127.0.0.1 port 48270:
# Address already in use").
t_free_port()
{
	_i=0
	while [ $_i -lt 50 ]; do
		_r=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
		_port=$((20000 + _r % 12000))
		if ! t_port_busy "$_port"; then
			echo "$_port"
			return 0
		fi
		_i=$((_i + 1))
	done
	fail "no free TCP port found"
}

# Is the daemon's socket SPEC ready?  unix: the socket file exists; inet:
# the port listens.
t_socket_ready()
{
	case $1 in
	unix:* | local:*) [ -S "${1#*:}" ] ;;
	/*) [ -S "$1" ] ;;
	inet:* | inet6:*)
		_p=${1#*:}
		t_port_busy "${_p%%@*}"
		;;
	*) return 1 ;;
	esac
}

# t_start CONF LOG [SECONDS]: run the daemon in the foreground (bounded by
# `timeout`, 300 s default), wait for its socket.  $T_PID is the daemon's
# own pid (signals go to it directly), $T_WRAP the timeout process.
t_start()
{
	_conf=$1 _log=$2
	_sock=$(t_conf_get "$_conf" socket)
	timeout -s KILL "${3:-300}" "$PORTCULLIS" -f -c "$_conf" 2>"$_log" &
	T_WRAP=$!
	T_PIDS="$T_PIDS $T_WRAP"
	T_PID=
	# The daemon is the only child of timeout.
	t_wait_for 'T_PID=$(pgrep -P "$T_WRAP" | head -n 1); [ -n "$T_PID" ] || ! t_alive "$T_WRAP"' 10 ||
		fail "daemon did not start"
	[ -n "$T_PID" ] || { cat "$_log" >&2; fail "daemon exited at once"; }
	T_PIDS="$T_PIDS $T_PID"
	if ! t_wait_for 't_socket_ready "$_sock" || ! t_alive "$T_PID"' 15; then
		fail "daemon socket $_sock not ready after 15 s"
	fi
	t_alive "$T_PID" || { cat "$_log" >&2; fail "daemon died at startup"; }
	t_wait_for 'grep -q " started on " "$_log"' 10 || fail "no 'started on' line in $_log"
}

# t_reap PID [SECONDS] [WRAP]: wait (default 10 s) for PID to end after a
# signal; $T_RC is its exit status (of WRAP, the `timeout` around it, when
# given), empty when it is not our child.  t_err + SIGKILL if it does not
# end.  Returns 1 then.
t_reap()
{
	T_RC=
	if ! t_wait_exit "$1" "${2:-10}"; then
		t_err "pid $1 still running ${2:-10} s after SIGTERM"
		kill -KILL "$1" 2>/dev/null
		return 1
	fi
	if [ -n "${3:-}" ]; then
		wait "$3" 2>/dev/null
		T_RC=$?
	else
		wait "$1" 2>/dev/null
		T_RC=$?
		[ "$T_RC" -eq 127 ] && T_RC=
	fi
	return 0
}

# t_stop PID [SECONDS] [WRAP]: SIGTERM, then t_reap.
t_stop()
{
	kill -TERM "$1" 2>/dev/null || { T_RC=; return 0; }
	t_reap "$@"
}

# t_err if LOG holds a sanitizer report (AddressSanitizer, LeakSanitizer,
# UndefinedBehaviorSanitizer "runtime error:").  Returns 1 if it does.
t_sanitizer_clean()
{
	_re="ERROR: AddressSanitizer|LeakSanitizer|runtime error:"
	grep -E "$_re" "$1" >/dev/null 2>&1 || return 0
	grep -n -E -A 12 "$_re" "$1" | head -n 40 >&2
	t_err "sanitizer report in $1${2:+ ($2)}"
	return 1
}

# t_grep PATTERN FILE [WHAT]: t_err unless the extended regex is in FILE.
# Returns 1 when it was not found.
t_grep()
{
	# A log line may come a moment after the reply it belongs to (the
	# line of a refused RCPT is written when the transaction ends): wait
	# up to 5 s before calling it missing.
	_tg_re=$1 _tg_file=$2
	t_wait_for 'grep -E -e "$_tg_re" "$_tg_file" >/dev/null 2>&1' 5 && return 0
	t_err "${3:-/$1/} not found in $2"
	return 1
}

# portcullisctl on the configuration $CONF, for the tests of its commands.
t_ctl()
{
	timeout 60 "$PORTCULLISCTL" -c "$CONF" "$@"
}

t_run_ctl()
{
	_want=$1
	shift
	CTL_OUT=$(t_ctl "$@" 2>&1)
	_rc=$?
	[ $_rc -eq "$_want" ] || t_err "portcullisctl $* ($CONF): exit $_rc, want $_want: $CTL_OUT"
	return 0
}

t_has()
{
	case $CTL_OUT in
	*"$1"*) return 0 ;;
	esac
	t_err "${2:-portcullisctl output} lacks '$1': $CTL_OUT"
	return 1
}

# t_dns_start [LIFETIME]: start tests/dns/server.sh in $T/dns (NSD and the
# fault proxy on loopback ports, alive at most LIFETIME s, default 300),
# stop it at exit, and set $DNSDIR and $DNS_NSD_PORT.  Exit 77 (skip)
# when the server cannot run here (no nsd or perl).
t_dns_start()
{
	DNSDIR=$T/dns
	t_at_exit 'sh "$top_srcdir/tests/dns/server.sh" stop "$DNSDIR" >/dev/null 2>&1'
	DNS_SERVER_LIFETIME=${1:-300} timeout 30 sh "$top_srcdir/tests/dns/server.sh" start \
		"$DNSDIR" >"$T/dns-start.out" 2>&1
	_rc=$?
	[ $_rc -eq 77 ] && { echo "SKIP: $T_NAME: $(cat "$T/dns-start.out")" >&2; exit 77; }
	[ $_rc -eq 0 ] || fail "tests/dns/server.sh start: $(cat "$T/dns-start.out")"
	DNS_NSD_PORT=$(sed -n 's/^DNS_NSD_PORT=//p' "$DNSDIR/dns.env")
	[ -n "$DNS_NSD_PORT" ] || fail "no DNS_NSD_PORT in $DNSDIR/dns.env"
}

# t_mt SCRIPT [-D name=value ...]: run a miltertest script against an
# already running daemon (no mt.startfilter), bounded to 120 s.  Output on
# stdout; exit status of miltertest.
t_mt()
{
	_s=$1
	shift
	timeout 120 "$MILTERTEST" "$@" -s "$_s"
}

# Is the daemon binary built with AddressSanitizer?
t_is_asan()
{
	nm -D "$1" 2>/dev/null | grep -q __asan_init && return 0
	nm "$1" 2>/dev/null | grep -q __asan_init
}

# Milliseconds since the epoch (for timings).
t_now_ms()
{
	date +%s%3N
}
