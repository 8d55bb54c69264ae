# tests/e2e/sendmail-lib.sh - a private Sendmail daemon in front of
# portcullis, for the e2e tests (POSIX sh; sourced after tests/lib.sh)
#
#   sm_need                     exit 77 (skip) without the private Sendmail
#                               ($SENDMAIL_ROOT), swaks, m4, unshare or root
#   sm_init                     after t_init: folders under $T, $PORT (free
#                               loopback port of the daemon), $PC
#                               (portcullis' folder), $SOCK (its socket),
#                               $MAILDIR (delivered messages, one file each)
#   sm_conf FILE [LINE...]      t_conf with the socket on $SOCK, state in $PC
#   sm_start                    write the .mc (contrib/sendmail/portcullis.mc's
#                               INPUT_MAIL_FILTER line, on $SOCK), build the
#                               .cf with m4, start "sendmail -bD" on
#                               127.0.0.1:$PORT (bounded), stop it at exit
#   sm_stop                     stop the daemon (bounded; safe twice)
#   sm_smtp NAME CLIENT HELO FROM RCPT [SWAKS ARGS...]
#                               one SMTP session from the loopback address
#                               CLIENT (e.g. 127.0.0.7); transcript in
#                               $T/NAME.txt (tests/e2e/mta-lib.sh)
#   sm_bs NAME HELO FROM RCPT [SWAKS ARGS...]
#                               one "sendmail -bs" session (SMTP on a pipe:
#                               no client address), driven lock-step by
#                               swaks --pipe
#   sm_queue_id NAME            QID of "250 2.0.0 QID Message accepted for
#                               delivery" in transcript NAME
#   sm_delivered NAME           wait (20 s) for the delivered message with
#                               X-Test-Id: NAME; prints its path
#
# Sendmail conflicts with the postfix package, so it is not installed:
# contrib/bootstrap.sh (deps, test) fetches sendmail-bin, sendmail-cf and
# libwrap0 with "apt-get download" and unpacks them with "dpkg -x" into
# $SENDMAIL_ROOT (default /var/cache/portcullis-test/sendmail/root), the
# sendmail binary made non-setgid (the loader ignores LD_LIBRARY_PATH for
# setgid programs).  Facts behind the setup:
# /work/shared/notes/real-mta-testing.md.  Every sendmail runs in its own
# UTS namespace with the host name mx.example.test (without a fully
# qualified host name Sendmail sleeps 60 s at start), with TrustStickyBit
# (the temp folder is under /tmp), its own hosts and service switch files
# (no DNS for its own lookups), and its own mailer "testbox" that writes
# each message for example.test into $MAILDIR, as user 65534, with the
# envelope recipient in X-Envelope-To: and the sender in Return-Path:.  No syslog:
# the SMTP trace (-X) of the daemon is $T/sendmail-trace.log.

. "$top_srcdir/tests/e2e/mta-lib.sh"

: "${SENDMAIL_ROOT:=/var/cache/portcullis-test/sendmail/root}"
SM_BIN=$SENDMAIL_ROOT/usr/libexec/sendmail/sendmail
SM_CF_M4=$SENDMAIL_ROOT/usr/share/sendmail/cf/m4/cf.m4
# Sendmail's own libraries (libwrap0) are under $SENDMAIL_ROOT.
SM_LIBS=$SENDMAIL_ROOT/usr/lib/x86_64-linux-gnu:$SENDMAIL_ROOT/lib/x86_64-linux-gnu

sm_need()
{
	t_need "$SWAKS" m4 unshare hostname ss timeout
	if [ ! -x "$SM_BIN" ] || [ ! -f "$SM_CF_M4" ]; then
		echo "SKIP: no private Sendmail in $SENDMAIL_ROOT (contrib/bootstrap.sh deps fetches it)" >&2
		exit 77
	fi
	[ "$(id -u)" -eq 0 ] || { echo "SKIP: a private Sendmail daemon needs root" >&2; exit 77; }
	_sm_err=$(LD_LIBRARY_PATH=$SM_LIBS ldd "$SM_BIN" 2>&1 | grep "not found") &&
		fail "sendmail in $SENDMAIL_ROOT lacks libraries:" $_sm_err
}

sm_init()
{
	# The mailer runs as 65534: open up the temp folder for traversal.
	chmod 755 "$T"
	SM=$T/sendmail
	PC=$T/pc
	MAILDIR=$T/mail
	mkdir -p "$SM/queue" "$MAILDIR" "$PC"
	chmod 755 "$SM" "$PC"
	chown 65534:65534 "$MAILDIR"
	PORT=$(t_free_port)
	SOCK=$PC/sock
	CF=$SM/sendmail.cf
}

sm_conf()
{
	_sm_f=$1
	shift
	t_conf "$_sm_f" "socket = unix:$SOCK" "state_dir = $PC" "$@"
}

sm_pid()
{
	sed -n '1s/^\([0-9][0-9]*\)$/\1/p' "$SM/sendmail.pid" 2>/dev/null
}

sm_stop()
{
	_sp=$(sm_pid)
	[ -n "$_sp" ] || return 0
	kill -TERM "$_sp" 2>/dev/null
	if ! t_wait_exit "$_sp" 10; then
		echo "sendmail $_sp did not stop: killing it" >&2
		kill -KILL "$_sp" 2>/dev/null
	fi
	rm -f "$SM/sendmail.pid"
}

# The .mc: the shipped INPUT_MAIL_FILTER line; the mailer "testbox" gets
# every address of example.test (LOCAL_RULE_0 runs before the local
# delivery rules).
sm_mc()
{
	cat <<EOF
divert(-1)
divert(0)dnl
VERSIONID(\`portcullis e2e')dnl
define(\`LOCAL_MAILER_PATH', \`/bin/false')dnl
OSTYPE(\`linux')dnl
define(\`confDONT_BLAME_SENDMAIL', \`TrustStickyBit')dnl
define(\`QUEUE_DIR', \`$SM/queue')dnl
define(\`STATUS_FILE', \`$SM/statistics')dnl
define(\`ALIAS_FILE', \`$SM/aliases')dnl
define(\`confPID_FILE', \`$SM/sendmail.pid')dnl
define(\`confHOSTS_FILE', \`$SM/hosts')dnl
define(\`confSERVICE_SWITCH_FILE', \`$SM/service.switch')dnl
define(\`confDEF_USER_ID', \`65534:65534')dnl
define(\`confTO_IDENT', \`0')dnl
FEATURE(\`accept_unresolvable_domains')dnl
RELAY_DOMAIN(\`example.test')dnl
DAEMON_OPTIONS(\`Port=$PORT, Addr=127.0.0.1, Name=MTA')dnl
$1
MAILER(\`local')dnl
MAILER(\`smtp')dnl
MAILER_DEFINITIONS
Mtestbox, P=$SM/deliver, F=lsDFMPhu9, T=DNS/RFC822/X-Unix, A=deliver \$u
LOCAL_RULE_0
R\$* < @ example.test . > \$*	\$#testbox \$: \$1 @ example.test
R\$* < @ example.test > \$*	\$#testbox \$: \$1 @ example.test
EOF
}

sm_start()
{
	_filter=$(sed -n "s|unix:/run/portcullis/portcullis.sock|unix:$SOCK|p" \
		"$top_srcdir/contrib/sendmail/portcullis.mc")
	case $_filter in
	"INPUT_MAIL_FILTER("*"unix:$SOCK"*) ;;
	*) fail "no INPUT_MAIL_FILTER line with the default socket in contrib/sendmail/portcullis.mc" ;;
	esac
	echo "127.0.0.1 mx.example.test localhost" >"$SM/hosts"
	echo "hosts files" >"$SM/service.switch"
	: >"$SM/aliases"
	# $SM/sendmail ARGS: the private sendmail with our .cf, in its own UTS
	# namespace named mx.example.test (exec all the way: the pid is
	# sendmail's).
	{
		echo '#!/bin/sh'
		echo "LD_LIBRARY_PATH=$SM_LIBS"
		echo 'export LD_LIBRARY_PATH'
		echo "exec unshare -u sh -c 'hostname mx.example.test && exec \"\$@\"' sh $SM_BIN -C $CF \"\$@\""
	} >"$SM/sendmail"
	# The mailer: one file per message and recipient.
	{
		echo '#!/bin/sh'
		echo "f=\$(mktemp $MAILDIR/msg.XXXXXXXX) || exit 75"
		echo "{ printf 'X-Envelope-To: %s\\n' \"\$1\"; cat; } >\"\$f\" || exit 75"
	} >"$SM/deliver"
	chmod 755 "$SM/sendmail" "$SM/deliver"
	sm_mc "$_filter" >"$SM/test.mc"
	m4 "$SM_CF_M4" "$SM/test.mc" >"$CF" 2>"$SM/m4.err" || fail "m4: $(cat "$SM/m4.err")"
	grep -q "ERROR" "$CF" && fail "m4: $(grep ERROR "$CF")"
	t_at_exit sm_stop
	t_port_busy "$PORT" && fail "port $PORT is taken"
	timeout -s KILL 300 "$SM/sendmail" -bD -X "$T/sendmail-trace.log" >"$T/sendmail.log" 2>&1 &
	T_PIDS="$T_PIDS $!"
	t_wait_for 't_port_busy "$PORT"' 15 ||
		fail "Sendmail does not listen on 127.0.0.1:$PORT: $(cat "$T/sendmail.log")"
	t_wait_for '[ -n "$(sm_pid)" ]' 5 || fail "no Sendmail pid in $SM/sendmail.pid"
	SM_PID=$(sm_pid)
	echo "ok: Sendmail (pid $SM_PID) on 127.0.0.1:$PORT, portcullis on unix:$SOCK"
}

# sm_smtp NAME CLIENT HELO FROM RCPT [SWAKS ARGS...]
sm_smtp()
{
	_sn=$1 _sc=$2 _sh=$3 _sf=$4 _st=$5
	shift 5
	mta_swaks "$_sn" "$_sf" "$_st" --server 127.0.0.1 --port "$PORT" \
		--local-interface "$_sc" --helo "$_sh" "$@"
}

# sm_bs NAME HELO FROM RCPT [SWAKS ARGS...]: swaks runs "sendmail -bs"
# and waits for each reply before it sends the next command.
sm_bs()
{
	_bn=$1 _bh=$2 _bf=$3 _bt=$4
	shift 4
	mta_swaks "$_bn" "$_bf" "$_bt" --pipe "$SM/sendmail -bs" --helo "$_bh" "$@"
}

sm_queue_id()
{
	sed -n 's/^ *<- *250 2\.0\.0 \([0-9A-Za-z]*\) Message accepted for delivery.*/\1/p' "$T/$1.txt" |
		head -n 1
}

sm_delivered()
{
	_dn=$1
	t_wait_for 'grep -l -x "X-Test-Id: $_dn" "$MAILDIR"/msg.* >/dev/null 2>&1' 20 || {
		t_err "$_dn: no message with X-Test-Id: $_dn in $MAILDIR after 20 s"
		return 1
	}
	grep -l -x "X-Test-Id: $_dn" "$MAILDIR"/msg.* | head -n 1
}
