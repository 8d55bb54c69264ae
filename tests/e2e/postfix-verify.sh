#!/bin/sh
# tests/e2e/postfix-verify.sh - recipient verification behind a real Postfix,
# against a real "inner" Postfix
#
# Two private Postfix instances on loopback ports: the front one (the MX,
# tests/e2e/postfix-lib.sh) calls portcullis with checks = verify and
# verify.recipient_domains = example.test=[127.0.0.1]:IPORT; the inner one
# on IPORT knows alice@ and carol@example.test (a virtual mailbox table) and
# refuses other recipients with 550 5.1.1.  A real SMTP client (swaks):
#  1. alice@ is accepted and delivered; the inner server saw one probe
#     (its "connect from" lines);
#  2. nobody@ is refused at RCPT with 550 5.1.1, the inner server's own
#     text and our ref; nothing queued;
#  3. both again: the same answers from the cache, no new connection to the
#     inner server; portcullisctl verify list shows both, verify delete
#     makes the next transaction probe again;
#  S. sender verification (verify.sender_domains, the inner Postfix as the
#     sender's MX): unknown@sender.example refused with 550 5.1.7 quoting
#     the MX, known@sender.example passes, a sender of catchall.example
#     (the inner server takes any address there) is unknown, not valid,
#     and the catch-all is remembered (no new probe); no probe sends DATA;
#  4. the inner server stopped: carol@ gets 450 4.1.1 (nothing queued);
#  5. a slow inner server (tests/smtp-script.py, banner after 20 s) on the
#     same port: dave@ gets 450 4.1.1 "timeout" within verify.timeout (3 s),
#     long before Postfix's milter timeout (which would say something else);
#  6. the inner Postfix back: carol's message, sent again, is delivered.
# Skips (77) without postfix, swaks or python3.  Prints the elapsed time.

: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/postfix-lib.sh"

pf_need
t_need python3
t_init
START_MS=$(t_now_ms)
pf_init

# --- the inner Postfix ----------------------------------------------------------
IPF=$T/inner
IQ=$T/iqueue
mkdir -p "$IPF" "$IQ" "$T/idata" "$T/ivmail"
chown postfix "$T/idata"
chown 65534:65534 "$T/ivmail"
IPORT=$(t_free_port)
[ "$IPORT" = "$PORT" ] && IPORT=$(t_free_port)
printf 'alice@example.test alice/\ncarol@example.test carol/\nknown@sender.example known/\n@catchall.example any/\n' >"$T/inner-users"
cat >"$IPF/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $IQ
data_directory = $T/idata
maillog_file = $T/inner.log
maillog_file_prefixes = $T
myhostname = inner.example.test
mydomain = example.test
myorigin = example.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtp_dns_support_level = disabled
smtpd_peername_lookup = no
smtpd_banner = \$myhostname ESMTP inner
virtual_mailbox_domains = example.test, sender.example, catchall.example
virtual_mailbox_base = $T/ivmail
virtual_mailbox_maps = texthash:$T/inner-users
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
virtual_minimum_uid = 1
alias_maps =
alias_database =
local_recipient_maps =
default_transport = error:no relaying in this test
biff = no
daemon_timeout = 60s
EOF
cat >"$IPF/master.cf" <<EOF
127.0.0.1:$IPORT inet n - n - - smtpd
$(pf_services)
EOF

inner_pid()
{
	sed -n '1s/^[[:space:]]*\([0-9][0-9]*\).*/\1/p' "$IQ/pid/master.pid" 2>/dev/null
}

inner_stop()
{
	_ip=$(inner_pid)
	[ -n "$_ip" ] || return 0
	timeout 20 "$POSTFIX" -c "$IPF" stop >/dev/null 2>&1
	t_wait_exit "$_ip" 10 || kill -KILL "$_ip" 2>/dev/null
	rm -f "$IQ/pid/master.pid"
	t_wait_for '! t_port_busy "$IPORT"' 10 || t_err "inner port $IPORT still busy"
}

inner_start()
{
	t_port_busy "$IPORT" && fail "inner port $IPORT is taken"
	timeout 30 "$POSTFIX" -c "$IPF" check >"$T/ipf-check.out" 2>&1 ||
		fail "inner postfix check: $(cat "$T/ipf-check.out")"
	timeout 30 "$POSTFIX" -c "$IPF" start >"$T/ipf-start.out" 2>&1 ||
		fail "inner postfix start: $(cat "$T/ipf-start.out")"
	t_wait_for 't_port_busy "$IPORT"' 15 || fail "inner Postfix does not listen on $IPORT"
}

# The inner server's connections so far.
probes()
{
	grep -c 'smtpd\[[0-9]*\]: connect from ' "$T/inner.log" 2>/dev/null || echo 0
}

t_at_exit inner_stop
inner_start
echo "ok: inner Postfix on 127.0.0.1:$IPORT"

pf_conf "$PC/portcullis.conf" "checks = verify" \
	"verify.recipient_domains = example.test=[127.0.0.1]:$IPORT" \
	"verify.sender_domains = sender.example=[127.0.0.1]:$IPORT, catchall.example=[127.0.0.1]:$IPORT" \
	"verify.timeout = 3s" "hostname = mx.example.test"
t_start "$PC/portcullis.conf" "$T/portcullis.log"
PC_PID=$T_PID PC_WRAP=$T_WRAP
pf_start

smtp()
{
	pf_smtp "$1" 192.0.2.31 mail.sender.example "${3:-sender@other.example}" "$2"
}

# --- 1. a known recipient: probed, accepted, delivered ----------------------
smtp known alice@example.test
QID=$(queue_id known)
if [ -z "$QID" ]; then
	t_err "known: not queued: $(grep -E '^ *<' "$T/known.txt" | tail -n 3)"
else
	delivered known "$QID" >/dev/null && echo "ok: alice@example.test verified and delivered"
fi
[ "$(probes)" -eq 1 ] || t_err "known: the inner server saw $(probes) connections, want 1"

# --- 2. an unknown recipient: 550 5.1.1 with the inner server's text --------
smtp unknown nobody@example.test
if mta_refused unknown 'RCPT TO:<nobody@example\.test>' 550 5.1.1 \
	'User unknown in virtual mailbox table'; then
	echo "$LINE" | grep -q 'refused=<nobody@example\.test>:reject:verify\.recipient' ||
		t_err "unknown: log line lacks refused=<nobody@example.test>:reject:verify.recipient: $LINE"
	echo "ok: $(mta_reply unknown 'RCPT TO:')"
fi
grep -q 'queued as' "$T/unknown.txt" && t_err "unknown: a message was queued"
[ "$(probes)" -eq 2 ] || t_err "unknown: the inner server saw $(probes) connections, want 2"

# --- 3. from the cache ---------------------------------------------------------
smtp unknown2 nobody@example.test
mta_refused unknown2 'RCPT TO:<nobody@example\.test>' 550 5.1.1 \
	'User unknown in virtual mailbox table' && echo "ok: cached refusal"
smtp known2 alice@example.test
[ -n "$(queue_id known2)" ] || t_err "known2: not queued"
[ "$(probes)" -eq 2 ] || t_err "cache: the inner server saw $(probes) connections, want still 2"
# portcullisctl verify list / delete: the next transaction probes again
"$PORTCULLISCTL" -c "$PC/portcullis.conf" verify list >"$T/vlist.out" 2>&1 ||
	t_err "verify list failed: $(cat "$T/vlist.out")"
grep -q '^r:nobody@example.test invalid [0-9]* 550 5.1.1 \[127.0.0.1\] <nobody@example.test>: Recipient address rejected: User unknown in virtual mailbox table expires=' \
	"$T/vlist.out" || t_err "verify list lacks nobody@: $(cat "$T/vlist.out")"
grep -q '^r:alice@example.test valid ' "$T/vlist.out" || t_err "verify list lacks alice@: $(cat "$T/vlist.out")"
"$PORTCULLISCTL" -c "$PC/portcullis.conf" verify delete Nobody@example.test >"$T/vdel.out" 2>&1 ||
	t_err "verify delete failed: $(cat "$T/vdel.out")"
grep -q '^deleted r:nobody@example.test$' "$T/vdel.out" || t_err "verify delete: $(cat "$T/vdel.out")"
smtp unknown3 nobody@example.test
mta_refused unknown3 'RCPT TO:<nobody@example\.test>' 550 5.1.1 \
	'User unknown in virtual mailbox table' >/dev/null
[ "$(probes)" -eq 3 ] || t_err "after verify delete: the inner server saw $(probes) connections, want 3"
echo "ok: portcullisctl verify list and delete"

# --- sender verification: the inner Postfix as the sender's MX ----------------
smtp sender-unknown alice@example.test unknown@sender.example
if mta_refused sender-unknown 'RCPT TO:<alice@example\.test>' 550 5.1.7 \
	'User unknown in virtual mailbox table'; then
	mta_reply sender-unknown 'RCPT TO:' | grep -q -F '550 5.1.7 Sender address <unknown@sender.example> rejected: unverified address: [127.0.0.1] said: 550 5.1.1 <unknown@sender.example>: Recipient address rejected' ||
		t_err "sender-unknown: reply does not quote the sender's MX: $(mta_reply sender-unknown 'RCPT TO:')"
	echo "$LINE" | grep -q 'refused=<alice@example\.test>:reject:verify\.sender' ||
		t_err "sender-unknown: log line lacks reject:verify.sender: $LINE"
	echo "ok: $(mta_reply sender-unknown 'RCPT TO:')"
fi
smtp sender-known alice@example.test known@sender.example
[ -n "$(queue_id sender-known)" ] || t_err "sender-known: not queued: $(grep -E '^ *<' "$T/sender-known.txt" | tail -n 3)"
grep -q 'verify: probe of <known@sender.example> at \[127.0.0.1\]:[0-9]*: valid' "$T/portcullis.log" ||
	t_err "sender-known: no valid probe in the log"
smtp sender-catchall alice@example.test someone@catchall.example
[ -n "$(queue_id sender-catchall)" ] || t_err "sender-catchall: not queued"
grep -q 'verify: sender <someone@catchall.example> unknown, skipped: catchall.example accepts any address (catch-all)' \
	"$T/portcullis.log" || t_err "sender-catchall: not logged as a catch-all"
n=$(probes)
smtp sender-catchall2 alice@example.test other@catchall.example
[ -n "$(queue_id sender-catchall2)" ] || t_err "sender-catchall2: not queued"
[ "$(probes)" -eq "$n" ] || t_err "sender-catchall2: the catch-all domain was probed again"
grep -q 'disconnect from .* data=' "$T/inner.log" && t_err "a probe sent DATA to the inner server"
grep -q 'disconnect from .* quit=1' "$T/inner.log" || t_err "the probes do not end with QUIT"
echo "ok: sender verification: unknown refused, known passes, catch-all unknown and remembered"

# --- 4. the inner server down: 450 -------------------------------------------
inner_stop
smtp down carol@example.test
mta_refused down 'RCPT TO:<carol@example\.test>' 450 4.1.1 'address verification in progress or failed (connect: Connection refused)' &&
	echo "ok: inner down: $(mta_reply down 'RCPT TO:')"
grep -q 'queued as' "$T/down.txt" && t_err "down: a message was queued"

# --- 5. a slow inner server: bounded by verify.timeout -----------------------
python3 "$top_srcdir/tests/smtp-script.py" slow=20 --port "$IPORT" --life 30 \
	--log "$T/slow.log" >"$T/slow.port" 2>"$T/slow.err" &
SLOW=$!
T_PIDS="$T_PIDS $SLOW"
t_wait_for 't_port_busy "$IPORT"' 10 || t_err "the slow server does not listen on $IPORT"
smtp slow dave@example.test
mta_refused slow 'RCPT TO:<dave@example\.test>' 450 4.1.1 'timeout at banner)' &&
	echo "ok: slow inner server: $(mta_reply slow 'RCPT TO:')"
grep -q connect "$T/slow.log" || t_err "slow: the probe never reached the slow server"
kill "$SLOW" 2>/dev/null
wait "$SLOW" 2>/dev/null
t_wait_for '! t_port_busy "$IPORT"' 10 || t_err "slow server port still busy"

# --- 6. the inner server back: the deferred message is delivered ---------------
inner_start
smtp down carol@example.test
QID=$(queue_id down)
if [ -z "$QID" ]; then
	t_err "retry: not queued: $(grep -E '^ *<' "$T/down.txt" | tail -n 3)"
else
	delivered down "$QID" >/dev/null && echo "ok: carol@example.test delivered after the inner server came back"
fi

kill -TERM "$PC_PID"
t_reap "$PC_PID" 15 "$PC_WRAP"
if grep -E "portcullis: (error|warning): " "$T/portcullis.log" |
	grep -v "running as root" | grep -v "verify check failed" >"$T/warn"; then
	t_err "portcullis logged warnings: $(head -n 3 "$T/warn")"
fi
t_sanitizer_clean "$T/portcullis.log"
pf_stop
inner_stop
echo "postfix-verify.sh: $(($(t_now_ms) - START_MS)) ms"
t_done
