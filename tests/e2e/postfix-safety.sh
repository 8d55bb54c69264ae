#!/bin/sh
# tests/e2e/postfix-safety.sh - whitelists beat the spam policy, not the
# virus scanner: content-safety checks behind a real Postfix
#
# The private Postfix of tests/e2e/postfix-lib.sh calls portcullis with
# checks = whitelist, access, helo, dnsbl, attachments, clamav, a private
# NSD for the DNS allow-list (tests/dns/blallow.test.zone lists 192.0.2.20)
# and a signature database the test writes (EICAR, built at run time).
# Each kind of whitelisted mail first shows that it IS whitelisted (a
# message with "HELO localhost", refused for everyone else, is delivered),
# then sends the EICAR test file, which must be refused after the final
# dot with "554 5.7.1 Message contains a virus: Test.Eicar... (ref R);
# contact ..." (R in a log line with verdict=reject and clamav.virus):
#  1. a sender whitelisted with `portcullisctl whitelist add sender`;
#  2. a client whitelisted with `portcullisctl whitelist add --from-ref REF`
#     after a refusal;
#  3. a client on a DNS allow-list (dnsbl.allow_threshold);
#  4. a client in trusted_networks (also: an invoice.pdf.exe attachment
#     from it is refused with 550 5.7.1 by attachments);
#  5. an authenticated client (XCLIENT LOGIN=alice, auth_whitelist);
#  6. clamav.skip_whitelisted = yes and attachments.skip_whitelisted = yes
#     (reloaded with SIGUSR1): the trusted client's EICAR is delivered with
#     "X-Virus-Status: NotScanned (whitelisted)" and no forged header,
#     while a client that is not whitelisted still gets the 554.
# Skips (77) without postfix, swaks, nsd, python3 or root.

: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/postfix-lib.sh"

pf_need
t_need python3 perl
PATH=$PATH:/usr/sbin:/sbin command -v nsd >/dev/null 2>&1 || {
	echo "SKIP: $T_NAME: nsd not available" >&2
	exit 77
}
t_init
START_MS=$(t_now_ms)
pf_init

# --- DNS, database, messages ---------------------------------------------------------
t_dns_start
DNS_PORT=$DNS_NSD_PORT

mkdir -p "$T/db" "$T/msgs"
python3 - "$T" <<'EOF' || fail "python3 could not write the database and messages"
import base64, sys
T = sys.argv[1]
eicar = "*H+H$!ELIF-TSET-SURIVITNA-DRADNATS-RACIE$}7)CC7)^P(45XZP\\4[PA@%P!O5X"[::-1].encode()
open(T + "/db/test.ndb", "w").write("Test.Eicar:0:*:" + eicar.hex() + "\n")
def msg(name, fname, data):
    enc = base64.encodebytes(data).decode().replace("\n", "\r\n")
    return ("From: sender@example.net\r\nTo: user@example.test\r\nSubject: e2e %s\r\n"
            "X-Test-Id: %s\r\nX-Virus-Status: Clean (forged)\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
            "--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
            "--b\r\nContent-Type: application/octet-stream; name=\"%s\"\r\n"
            "Content-Disposition: attachment; filename=\"%s\"\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n%s--b--\r\n"
            % (name, name, fname, fname, enc))
open(T + "/msgs/virus", "w").write(msg("virus", "tool.bin", eicar))
open(T + "/msgs/exe", "w").write(msg("exe", "invoice.pdf.exe", b"MZ not really"))
EOF

# --- portcullis and Postfix ---------------------------------------------------------
# pc_conf [LINE...]: the daemon's configuration, extra lines last.
pc_conf()
{
	pf_conf "$PC/portcullis.conf" "trusted_networks = 192.0.2.60/32" \
		"checks = whitelist, access, helo, dnsbl, attachments, clamav" \
		"clamav.database = $T/db" "dns.resolver = 127.0.0.1:$DNS_PORT" \
		"dnsbl.sites = blallow.test=127.0.[0..255].[1..3]*-10" \
		"dnsbl.allow_threshold = -5" "$@"
}
pc_conf
t_start "$PC/portcullis.conf" "$T/portcullis.log"
PC_PID=$T_PID
t_wait_for 'grep -q "av: loaded 1 signatures" "$T/portcullis.log"' 30 ||
	fail "the scanner helper did not load the test database"
pf_start

ctl() {
	"$PORTCULLISCTL" -c "$PC/portcullis.conf" "$@" >"$T/ctl.out" 2>&1 ||
		t_err "portcullisctl $*: $(cat "$T/ctl.out")"
}

# The server's answer to the final dot of transcript NAME.
eod_reply() {
	grep -A 1 -E '^ *-> \.$' "$T/$1.txt" | sed -n 2p
}

# plain NAME ADDR FROM [SWAKS ARGS]: a message with HELO localhost (refused
# for a client that is not whitelisted) must be queued and delivered.
plain() {
	_n=$1 _a=$2 _f=$3
	shift 3
	pf_smtp "$_n" "$_a" localhost "$_f" user@example.test "$@"
	_q=$(queue_id "$_n")
	if [ -z "$_q" ]; then
		t_err "$_n: whitelisted mail not queued: $(grep -E '^ *<' "$T/$_n.txt" | tail -n 2)"
		return 1
	fi
	[ -n "$(delivered "$_n" "$_q")" ] || return 1
	pass "$_n: whitelisted mail with HELO localhost delivered"
}

# virus NAME ADDR FROM [SWAKS ARGS]: the EICAR message must get 554 5.7.1
# after the final dot, with a ref that is in a verdict=reject log line.
virus() {
	_n=$1 _a=$2 _f=$3
	shift 3
	pf_smtp "$_n" "$_a" mail.example.net "$_f" user@example.test --data "@$T/msgs/virus" "$@"
	_r=$(eod_reply "$_n")
	case $_r in
	*"<** 554 5.7.1 Message contains a virus: Test.Eicar"*"(ref "??????????"); contact postmaster@example.test") ;;
	*)
		t_err "$_n: the final dot answered '$_r', want 554 5.7.1 naming Test.Eicar"
		return 1
		;;
	esac
	grep -q 'queued as' "$T/$_n.txt" && t_err "$_n: the virus was queued"
	_ref=$(echo "$_r" | sed -n 's/.*(ref \([0-9A-Za-z]\{10\}\)).*/\1/p')
	t_wait_for 'log_line "$_ref" | grep -q "verdict=reject .*clamav.virus"' 5 ||
		t_err "$_n: ref $_ref has no log line with verdict=reject and clamav.virus: $(log_line "$_ref")"
	pass "$_n: EICAR refused after the final dot (ref $_ref)"
}

# --- 1. sender whitelist ----------------------------------------------------------------
ctl whitelist add sender friend@example.net --comment "e2e safety"
plain wl-sender 192.0.2.50 friend@example.net
virus wl-sender-virus 192.0.2.50 friend@example.net

# --- 2. whitelist add --from-ref --------------------------------------------------------------
pf_smtp ref-refused 192.0.2.51 localhost someone@example.net user@example.test
if mta_refused ref-refused "RCPT TO:<user@example.test>" 550 5.7.1 "HELO localhost from a remote client"; then
	ctl whitelist add --from-ref "$REF" --comment "e2e safety"
	grep -q "added client 192.0.2.51" "$T/ctl.out" ||
		t_err "--from-ref $REF did not whitelist the client: $(cat "$T/ctl.out")"
	plain ref-plain 192.0.2.51 someone@example.net
	virus ref-virus 192.0.2.51 someone@example.net
fi

# --- 3. DNS allow-list ------------------------------------------------------------------------
plain dnswl 192.0.2.20 someone@example.net
virus dnswl-virus 192.0.2.20 someone@example.net

# --- 4. trusted_networks (clamav and attachments) ---------------------------------------
plain trusted 192.0.2.60 someone@example.net
virus trusted-virus 192.0.2.60 someone@example.net
pf_smtp trusted-exe 192.0.2.60 mail.example.net someone@example.net user@example.test \
	--data "@$T/msgs/exe"
case $(eod_reply trusted-exe) in
*'<** 550 5.7.1 Attachment "invoice.pdf.exe" not accepted: executable files are refused here (ref '*) ;;
*) t_err "trusted-exe: the final dot answered '$(eod_reply trusted-exe)', want 550 5.7.1 naming invoice.pdf.exe" ;;
esac

# --- 5. authenticated client --------------------------------------------------------------
plain auth 192.0.2.61 someone@example.net --xclient-login alice
grep -q 'auth=alice' "$T/portcullis.log" || t_err "auth: no auth=alice in the log"
virus auth-virus 192.0.2.61 someone@example.net --xclient-login alice

# --- 6. the opt-out -----------------------------------------------------------------------------
pc_conf "clamav.skip_whitelisted = yes" "attachments.skip_whitelisted = yes"
kill -USR1 "$PC_PID"
t_wait_for 'grep -q "configuration reloaded" "$T/portcullis.log"' 10 ||
	fail "no reload after SIGUSR1: $(tail -n 3 "$T/portcullis.log")"
pf_smtp optout 192.0.2.60 mail.example.net someone@example.net user@example.test \
	--data "@$T/msgs/virus"
QID=$(queue_id optout)
if [ -z "$QID" ]; then
	t_err "optout: EICAR from a trusted client with clamav.skip_whitelisted = yes not queued: $(eod_reply optout)"
else
	f=$(delivered optout "$QID")
	if [ -n "$f" ]; then
		h=$(grep -i '^X-Virus-Status:' "$f")
		[ "$h" = "X-Virus-Status: NotScanned (whitelisted)" ] ||
			t_err "optout: X-Virus-Status headers '$h', want only 'X-Virus-Status: NotScanned (whitelisted)'"
	fi
fi
virus optout-stranger 192.0.2.70 someone@example.net

t_sanitizer_clean "$T/portcullis.log"
echo "postfix-safety: $(($(t_now_ms) - START_MS)) ms"
t_done
