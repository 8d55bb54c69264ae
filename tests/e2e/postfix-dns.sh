#!/bin/sh
# tests/e2e/postfix-dns.sh - the DNS checks of portcullis behind a real
# Postfix, against a real DNS server
#
# The private Postfix of tests/e2e/postfix-lib.sh calls portcullis with
# checks = access, helo, envelope, dnsbl, sender_domain, spf and
# dns.resolver = a private NSD (tests/dns/server.sh; zone
# tests/dns/e2e.test.zone).  swaks plays remote clients through XCLIENT, so
# the milter (and SPF) see 192.0.2.x.  Asserts:
#  1. a client listed by the reject list bl.e2e.test (192.0.2.40) gets, at
#     RCPT, "550 5.7.1 Client host 192.0.2.40 listed by bl.e2e.test
#     (127.0.0.2) (ref R); contact postmaster@example.test", and ref R is
#     the ref of portcullis' log line for it (refused=...:reject:
#     dnsbl.bl.e2e.test), and Postfix logs the same reply;
#  2. a sender domain that does not exist (nx.e2e.test): "550 5.1.8 Sender
#     address <u@nx.e2e.test> rejected: domain nx.e2e.test does not exist
#     (ref R)" at RCPT, same ref in the log (sender_domain.nxdomain);
#  3. SPF fail (ok.e2e.test permits 192.0.2.30 and .40, -all; client
#     192.0.2.31): "550 5.7.23 SPF domain ok.e2e.test does not permit client
#     192.0.2.31 to send its mail (ref R)", same ref in the log (spf.fail);
#  4. a clean message from an SPF-pass sender (192.0.2.30) is queued and
#     delivered; the delivered file carries "Received-SPF: pass (...)
#     client-ip=192.0.2.30; ..." and "Authentication-Results:
#     mx.example.test; spf=pass smtp.mailfrom=ok.e2e.test", and the log
#     line with its qid says verdict=accept;
#  5. with NSD stopped, a sender domain never looked up before
#     (later.e2e.test) gets "450 4.1.8 Sender address <u@later.e2e.test>
#     deferred: DNS lookup of MX for domain later.e2e.test failed (...)"
#     at RCPT (ref in the log, refused=...:defer:...), nothing is queued or
#     delivered; with NSD back (new port, SIGUSR1 reload) the same message,
#     retried, is delivered: no mail lost.
# No sanitizer report, no daemon errors.  Skips (77) without postfix,
# swaks or nsd, or when not root.  Prints the elapsed time (target < 30 s).

: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/postfix-lib.sh"

pf_need
t_need perl
PATH=$PATH:/usr/sbin:/sbin command -v nsd >/dev/null 2>&1 || {
	echo "SKIP: $T_NAME: nsd not available" >&2
	exit 77
}
t_init
START_MS=$(t_now_ms)
pf_init

# --- NSD ---------------------------------------------------------------------
DNSDIR=$T/dns
t_at_exit 'sh "$top_srcdir/tests/dns/server.sh" stop "$DNSDIR" >/dev/null 2>&1'
# dns_start & ... dns_wait: start NSD (in the background, while Postfix
# starts), then wait for it and set $DNS_NSD_PORT.  NSD lives 120 s at
# most if this script dies without its trap.
dns_start()
{
	DNS_SERVER_LIFETIME=120 timeout 30 sh "$top_srcdir/tests/dns/server.sh" start "$DNSDIR" \
		>"$T/dns-start.out" 2>&1
}
dns_wait()
{
	wait "$1"
	_rc=$?
	[ $_rc -eq 77 ] && { echo "SKIP: $T_NAME: $(cat "$T/dns-start.out")" >&2; exit 77; }
	[ $_rc -eq 0 ] || fail "tests/dns/server.sh start: $(cat "$T/dns-start.out")"
	DNS_NSD_PORT=$(sed -n 's/^DNS_NSD_PORT=//p' "$DNSDIR/dns.env")
	[ -n "$DNS_NSD_PORT" ] || fail "no DNS_NSD_PORT in $DNSDIR/dns.env"
}
dns_start &
DNS_JOB=$!

# --- Postfix (tests/e2e/postfix-lib.sh) -------------------------------------------
pf_start

# --- portcullis ----------------------------------------------------------------
# pc_conf DNS_PORT: the daemon's config with the resolver on that port.
pc_conf()
{
	pf_conf "$PC/portcullis.conf" \
		"checks = access, helo, envelope, dnsbl, sender_domain, spf" \
		"dns.resolver = 127.0.0.1:$1" "dns.timeout_ms = 1000" \
		"dnsbl.reject_sites = bl.e2e.test"
}
dns_wait "$DNS_JOB"
pc_conf "$DNS_NSD_PORT"
t_start "$PC/portcullis.conf" "$T/portcullis.log"
PC_PID=$T_PID
SETUP_MS=$(($(t_now_ms) - START_MS))

HELO=mail.example.net

# refused NAME ADDR FROM RCPT CODE XCODE TEXT HOW SYMBOL: one session from
# XCLIENT ADDR; RCPT must get "CODE XCODE TEXT (ref R); contact
# postmaster@example.test", R the ref of the log line with
# refused=<RCPT>:HOW:SYMBOL, Postfix' milter-reject line the same reply,
# and nothing queued.
refused()
{
	_rn=$1 _a=$2 _f=$3 _r=$4 _c=$5 _x=$6 _t=$7 _how=$8 _sym=$9
	pf_smtp "$_rn" "$_a" "$HELO" "$_f" "$_r"
	_reply=$(pf_reply "$_rn" "RCPT TO:<$_r>")
	# TEXT is a glob pattern (for the reason of a DNS failure)
	# shellcheck disable=SC2027
	case $_reply in
	*"<** $_c $_x "$_t" (ref "??????????"); contact postmaster@example.test") ;;
	*)
		t_err "$_rn: RCPT answered '$_reply', want '<** $_c $_x $_t (ref R); contact postmaster@example.test'"
		return 1
		;;
	esac
	_ref=$(echo "$_reply" | sed -n 's/.*(ref \([0-9A-Za-z]\{10\}\)); contact postmaster@example\.test$/\1/p')
	[ -n "$_ref" ] || { t_err "$_rn: no 10-character ref in '$_reply'"; return 1; }
	t_wait_for 'log_line "$_ref" >/dev/null' 5
	_l=$(log_line "$_ref")
	if [ -z "$_l" ]; then
		t_err "$_rn: ref $_ref of the reply is not in the portcullis log"
	else
		echo "$_l" | grep -q -F "client=client-${_a##*.}.example.net[$_a] helo=<$HELO> from=<$_f>" ||
			t_err "$_rn: log line has the wrong client/helo/from: $_l"
		echo "$_l" | grep -q -F "refused=<$_r>:$_how:$_sym " ||
			t_err "$_rn: log line lacks refused=<$_r>:$_how:$_sym: $_l"
	fi
	grep -F "milter-reject: RCPT from client-${_a##*.}.example.net[$_a]: ${_reply#*<\*\* }" \
		"$T/maillog" >/dev/null ||
		t_err "$_rn: no milter-reject line with '${_reply#*<\*\* }' in Postfix' maillog"
	grep -q "queued as" "$T/$_rn.txt" && t_err "$_rn: a message was queued"
	echo "ok: $_rn: ${_reply#*<\*\* }; ref $_ref in the log"
}

# header FILE NAME: the header NAME of FILE, unfolded.
header()
{
	awk -v h="$2" '
		/^$/ { exit }
		/^[ \t]/ { if (on) v = v " " substr($0, match($0, /[^ \t]/)); next }
		{ if (on) exit; on = (tolower(substr($0, 1, length(h) + 1)) == tolower(h) ":") ; if (on) v = substr($0, length(h) + 3) }
		END { if (v != "") print v }' "$1"
}

# accepted NAME ADDR FROM RCPT: the message is queued and delivered; the
# path of the delivered file is in $FILE, its qid in $QID.
accepted()
{
	FILE="" QID=""
	pf_smtp "$1" "$2" "$HELO" "$3" "$4"
	QID=$(queue_id "$1")
	if [ -z "$QID" ]; then
		t_err "$1: not queued: $(grep -E '^ *<' "$T/$1.txt" | tail -n 4)"
		return 1
	fi
	FILE=$(delivered "$1" "$QID")
	_l=$(grep "portcullis: ref=[0-9A-Za-z]* qid=$QID " "$T/portcullis.log")
	echo "$_l" | grep -q -F "client=client-${2##*.}.example.net[$2] helo=<$HELO> from=<$3> to=<$4> verdict=accept" ||
		t_err "$1: no log line 'qid=$QID ... from=<$3> to=<$4> verdict=accept': '$_l'"
	[ -n "$FILE" ]
}

# spf_headers NAME FILE DOMAIN ADDR: Received-SPF and
# Authentication-Results say pass for DOMAIN (sender u@DOMAIN) and ADDR.
spf_headers()
{
	_rs=$(header "$2" Received-SPF)
	[ "$_rs" = "pass (mx.example.test: domain of $3 designates $4 as permitted sender) client-ip=$4; envelope-from=\"u@$3\"; helo=$HELO; identity=mailfrom; receiver=mx.example.test;" ] ||
		t_err "$1: Received-SPF is '$_rs'"
	_ar=$(header "$2" Authentication-Results)
	[ "$_ar" = "mx.example.test; spf=pass smtp.mailfrom=$3" ] ||
		t_err "$1: Authentication-Results is '$_ar'"
	[ "$(grep -c -i '^Received-SPF:' "$2")" -eq 1 ] || t_err "$1: not exactly one Received-SPF header"
	[ "$(grep -c -i '^Authentication-Results:' "$2")" -eq 1 ] ||
		t_err "$1: not exactly one Authentication-Results header"
	grep -qi '^X-Portcullis' "$2" && t_err "$1: unexpected header $(grep -i '^X-Portcullis' "$2")"
	echo "ok: $1: delivered with Received-SPF: $_rs"
	echo "ok: $1: Authentication-Results: $_ar"
}

T1=$(t_now_ms)
# --- 1. a client on the reject list ---------------------------------------------
refused dnsbl 192.0.2.40 u@ok.e2e.test user@example.test 550 5.7.1 \
	"Client host 192.0.2.40 listed by bl.e2e.test (127.0.0.2)" reject dnsbl.bl.e2e.test
t_grep "dnsbl: client 192\.0\.2\.40 listed: bl\.e2e\.test=127\.0\.0\.2\(reject\)" \
	"$T/portcullis.log" "dnsbl: the hit in the log" >/dev/null

# --- 2. a sender domain that does not exist --------------------------------------
refused nxdomain 192.0.2.30 u@nx.e2e.test user@example.test 550 5.1.8 \
	"Sender address <u@nx.e2e.test> rejected: domain nx.e2e.test does not exist" \
	reject sender_domain.nxdomain

# --- 3. SPF fail -----------------------------------------------------------------
refused spffail 192.0.2.31 u@ok.e2e.test user@example.test 550 5.7.23 \
	"SPF domain ok.e2e.test does not permit client 192.0.2.31 to send its mail" \
	reject spf.fail

# --- 4. a clean message from an SPF-pass sender ----------------------------------
if accepted clean 192.0.2.30 u@ok.e2e.test user@example.test; then
	spf_headers clean "$FILE" ok.e2e.test 192.0.2.30
fi

# --- 5. DNS down: sender_domain defers, nothing is lost --------------------------
T5=$(t_now_ms)
sh "$top_srcdir/tests/dns/server.sh" stop "$DNSDIR" >/dev/null 2>&1
t_port_busy "$DNS_NSD_PORT" && t_err "NSD still listens on $DNS_NSD_PORT after stop"
before=$(ls "$MAILDIR/new" | wc -l)
refused dnsdown 192.0.2.30 u@later.e2e.test user@example.test 450 4.1.8 \
	"Sender address <u@later.e2e.test> deferred: DNS lookup of MX for domain later.e2e.test failed (*)" \
	defer sender_domain.error
DOWN_MS=$(($(t_now_ms) - T5))
after=$(ls "$MAILDIR/new" | wc -l)
[ "$after" -eq "$before" ] || t_err "dnsdown: the Maildir grew from $before to $after messages"
[ -n "$_ref" ] && { grep -F "ref=$_ref sender_domain check failed: Sender address <u@later.e2e.test> deferred: DNS lookup of MX for domain later.e2e.test failed (" "$T/portcullis.log" |
	grep -q -F "(on_error=defer)" ||
	t_err "dnsdown: no warning 'ref=$_ref sender_domain check failed: ... (on_error=defer)' in the portcullis log"; }

# The DNS comes back (a new port: reload the daemon), the client retries.
dns_start &
dns_wait $!
pc_conf "$DNS_NSD_PORT"
# shellcheck disable=SC2034 # used in the t_wait_for string
n_reload=$(grep -c "configuration reloaded from" "$T/portcullis.log")
kill -USR1 "$PC_PID"
t_wait_for '[ "$(grep -c "configuration reloaded from" "$T/portcullis.log")" -gt "$n_reload" ]' 10 ||
	t_err "no 'configuration reloaded' after SIGUSR1"
if accepted retry 192.0.2.30 u@later.e2e.test user@example.test; then
	spf_headers retry "$FILE" later.e2e.test 192.0.2.30
	echo "ok: dnsdown: the deferred message is delivered when retried with the DNS back (queued as $QID)"
fi
CASES_MS=$(($(t_now_ms) - T1))

# --- the daemon was clean ---------------------------------------------------------
t_stop "$PC_PID" 10
t_sanitizer_clean "$T/portcullis.log" portcullis
t_grep "portcullis stopped" "$T/portcullis.log" >/dev/null
# Expected warnings: the checks that failed while NSD was down.
if grep -E "portcullis: (error|warning): " "$T/portcullis.log" |
	grep -v -E "running as root| check failed: " >"$T/warn"; then
	t_err "portcullis logged warnings: $(head -n 3 "$T/warn")"
fi
if grep -E "warning: .*milter" "$T/maillog" >"$T/pfwarn"; then
	t_err "Postfix milter warnings: $(head -n 3 "$T/pfwarn")"
fi
pf_stop
echo "postfix-dns.sh: $(($(t_now_ms) - START_MS)) ms (setup $SETUP_MS ms, SMTP cases $CASES_MS ms, of which DNS-down $DOWN_MS ms)"
t_done
