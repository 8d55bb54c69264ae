# tests/e2e/postfix-lib.sh - a private Postfix instance in front of
# portcullis, for the e2e tests (POSIX sh; sourced after tests/lib.sh)
#
#   pf_need                     exit 77 (skip) without postfix, swaks, the
#                               postfix user or root; sets $POSTFIX
#   pf_init                     after t_init: folders under $T, $PORT (free
#                               loopback port of smtpd), $PC (portcullis'
#                               folder), $SOCK (its socket), $MAILDIR
#   pf_conf FILE [LINE...]      t_conf with the socket on $SOCK, state in
#                               $PC, mode 0660 group postfix
#   pf_start                    write main.cf/master.cf (smtpd on
#                               127.0.0.1:$PORT, milter unix:$SOCK, virtual
#                               delivery of example.test into $MAILDIR),
#                               start Postfix, stop it at exit; $PF_MASTER
#   pf_stop                     stop Postfix (bounded; safe twice)
#   pf_smtp NAME ADDR HELO FROM RCPT [SWAKS ARGS...]
#                               one SMTP session through XCLIENT ADDR=ADDR
#                               NAME=client-N.example.net; transcript in
#                               $T/NAME.txt; the message has X-Test-Id: NAME
#   queue_id NAME               QID of "250 2.0.0 Ok: queued as QID"
#   delivered NAME QID          wait for "QID: removed" and the message in
#                               the Maildir; prints its path
#   pf_reply NAME CMD_ERE       mta_reply: the server's reply to the client
#                               command matching CMD_ERE in transcript NAME
#   (and log_line, mta_refused... of tests/e2e/mta-lib.sh)
#
# Facts behind the setup: /work/shared/notes/real-mta-testing.md (chroot
# off for a unix: milter socket, smtpd runs as postfix, maillog_file,
# XCLIENT from smtpd_authorized_xclient_hosts).  The system's own Postfix
# (port 25) is never touched.

. "$top_srcdir/tests/e2e/mta-lib.sh"

PATH=$PATH:/usr/sbin:/sbin
export PATH

pf_need()
{
	: "${POSTFIX:=$(command -v postfix 2>/dev/null)}"
	t_need "$POSTFIX" "$SWAKS" postconf ss pgrep timeout
	id postfix >/dev/null 2>&1 || { echo "SKIP: no postfix user" >&2; exit 77; }
	[ "$(id -u)" -eq 0 ] || { echo "SKIP: a private Postfix instance needs root" >&2; exit 77; }
}

pf_init()
{
	# The postfix user must reach the milter socket and the Maildir owner
	# (65534) the mailbox folder: open up the temp folder for traversal.
	chmod 755 "$T"
	PF=$T/postfix
	Q=$T/queue
	PC=$T/pc
	MAILDIR=$T/vmail/catchall
	mkdir -p "$PF" "$Q" "$T/data" "$T/vmail" "$PC"
	chown postfix "$T/data"
	chown 65534:65534 "$T/vmail"
	chmod 755 "$PC"
	PORT=$(t_free_port)
	SOCK=$PC/sock
}

pf_conf()
{
	_pf_f=$1
	shift
	t_conf "$_pf_f" "socket = unix:$SOCK" "state_dir = $PC" \
		"socket_mode = 0660" "socket_group = postfix" "$@"
}

# The master.cf lines of every service but smtpd, chroot off everywhere (a
# chrooted smtpd would look for a unix: milter socket inside the queue
# folder).  Also used by contrib/bench/clamav.sh.
pf_services()
{
	cat <<EOF
pickup    unix  n - n 60   1 pickup
cleanup   unix  n - n -    0 cleanup
qmgr      unix  n - n 300  1 qmgr
rewrite   unix  - - n -    - trivial-rewrite
bounce    unix  - - n -    0 bounce
defer     unix  - - n -    0 bounce
trace     unix  - - n -    0 bounce
verify    unix  - - n -    1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -    - proxymap
smtp      unix  - - n -    - smtp
relay     unix  - - n -    - smtp
showq     unix  n - n -    - showq
error     unix  - - n -    - error
retry     unix  - - n -    - error
discard   unix  - - n -    - discard
local     unix  - n n -    - local
virtual   unix  - n n -    - virtual
anvil     unix  - - n -    1 anvil
scache    unix  - - n -    1 scache
postlog   unix-dgram n - n - 1 postlogd
EOF
}

pf_master_pid()
{
	sed -n '1s/^[[:space:]]*\([0-9][0-9]*\).*/\1/p' "$Q/pid/master.pid" 2>/dev/null
}

pf_stop()
{
	_mp=$(pf_master_pid)
	[ -n "$_mp" ] || return 0
	timeout 20 "$POSTFIX" -c "$PF" stop >/dev/null 2>&1
	if ! t_wait_exit "$_mp" 10; then
		echo "postfix master $_mp did not stop: killing it" >&2
		kill -KILL "$_mp" 2>/dev/null
	fi
	rm -f "$Q/pid/master.pid"
}

# pf_bench_main_cf [LINE...]: the main.cf of a benchmark's private Postfix
# (contrib/bench: queue in $Q, data and log in $T, every message discarded
# after the milter, protocol 6 milters that fail to tempfail), then LINEs.
pf_bench_main_cf()
{
	cat <<EOF
compatibility_level = 3.6
queue_directory = $Q
data_directory = $T/data
maillog_file = $T/maillog
maillog_file_prefixes = $T
myhostname = mx.example.test
mydestination =
relay_domains = example.test
relay_transport = discard:bench
default_transport = discard:bench
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtp_dns_support_level = disabled
smtpd_peername_lookup = no
non_smtpd_milters =
milter_default_action = tempfail
milter_protocol = 6
in_flow_delay = 0
alias_maps =
alias_database =
biff = no
EOF
	for _l in "$@"; do printf '%s\n' "$_l"; done
}

pf_start()
{
	cat >"$PF/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $Q
data_directory = $T/data
maillog_file = $T/maillog
maillog_file_prefixes = $T
myhostname = mx.example.test
mydomain = example.test
myorigin = example.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtp_dns_support_level = disabled
smtpd_peername_lookup = no
smtpd_banner = \$myhostname ESMTP portcullis-e2e
smtpd_authorized_xclient_hosts = 127.0.0.0/8
smtpd_milters = unix:$SOCK
non_smtpd_milters =
milter_default_action = tempfail
milter_connect_timeout = 5s
milter_command_timeout = 10s
virtual_mailbox_domains = example.test
virtual_mailbox_base = $T/vmail
virtual_mailbox_maps = static:catchall/
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
virtual_minimum_uid = 1
alias_maps =
alias_database =
local_recipient_maps =
default_transport = error:no relaying in this test
biff = no
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
daemon_timeout = 60s
EOF
	# chroot off everywhere: a chrooted smtpd would look for the milter
	# socket inside the queue folder.
	cat >"$PF/master.cf" <<EOF
127.0.0.1:$PORT inet n - n - - smtpd
$(pf_services)
EOF
	t_at_exit pf_stop
	t_port_busy "$PORT" && fail "port $PORT is taken"
	timeout 30 "$POSTFIX" -c "$PF" check >"$T/pf-check.out" 2>&1 ||
		fail "postfix check failed: $(cat "$T/pf-check.out") (Postfix logs its fatal errors to $T/maillog or a tty)"
	timeout 30 "$POSTFIX" -c "$PF" start >"$T/pf-start.out" 2>&1 ||
		fail "postfix start: $(cat "$T/pf-start.out")"
	t_wait_for 't_port_busy "$PORT"' 15 || fail "Postfix does not listen on 127.0.0.1:$PORT"
	PF_MASTER=$(pf_master_pid)
	[ -n "$PF_MASTER" ] || fail "no Postfix master pid"
	echo "ok: Postfix (master $PF_MASTER) on 127.0.0.1:$PORT, portcullis on unix:$SOCK"
}

# pf_smtp NAME XCLIENT_ADDR HELO FROM RCPT [SWAKS ARGS...]: one SMTP
# session; the transcript is in $T/NAME.txt, swaks' status in $T/NAME.rc.
pf_smtp()
{
	_name=$1 _addr=$2 _helo=$3 _from=$4 _to=$5
	shift 5
	mta_swaks "$_name" "$_from" "$_to" --server 127.0.0.1 --port "$PORT" \
		--xclient-addr "$_addr" --xclient-name "client-${_addr##*.}.example.net" \
		--helo "$_helo" "$@"
}

# The queue id from "250 2.0.0 Ok: queued as QID" in transcript NAME.
queue_id()
{
	sed -n 's/^ *<- *250 2\.0\.0 Ok: queued as \([0-9A-Za-z]*\).*/\1/p' "$T/$1.txt" | head -n 1
}

# delivered NAME QID: wait (20 s) for "QID: removed" in the maillog and
# for the message with X-Test-Id: NAME in the Maildir; prints its path.
delivered()
{
	_qid=$2
	t_wait_for 'grep -q "$_qid: removed" "$T/maillog" 2>/dev/null' 20 || {
		t_err "$1: no '$_qid: removed' in the maillog after 20 s"
		return 1
	}
	grep -q "$_qid: to=<.*status=sent" "$T/maillog" ||
		t_err "$1: maillog has no status=sent for $_qid: $(grep "$_qid" "$T/maillog" | tail -n 3)"
	_file=$(grep -l -x "X-Test-Id: $1" "$MAILDIR"/new/* 2>/dev/null | head -n 1)
	if [ -z "$_file" ]; then
		t_err "$1: not in the Maildir $MAILDIR/new"
		return 1
	fi
	echo "$_file"
}

pf_reply()
{
	mta_reply "$@"
}
