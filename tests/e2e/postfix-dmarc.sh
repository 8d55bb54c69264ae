#!/bin/sh
# tests/e2e/postfix-dmarc.sh - spf, dkim and dmarc behind a real Postfix,
# against a real DNS server
#
# Keys and zones from tests/dkim/keys.sh (rej.test: "v=DMARC1; p=reject",
# "v=spf1 ip4:192.0.2.20 -all", key sel1) served by NSD
# (tests/dns/server.sh with DNS_ZONE_DIRS); messages signed by
# tests/dkim/dkimsign (libopendkim); the private Postfix of
# tests/e2e/postfix-lib.sh calls portcullis with checks = spf, dkim, dmarc.
# Asserts:
#  1. a message signed by rej.test from its permitted client 192.0.2.20 is
#     queued and delivered with exactly ONE Authentication-Results header,
#     at the top, "mx.example.test; spf=pass smtp.mailfrom=rej.test;
#     dkim=pass header.d=rej.test header.s=sel1 header.b=B8; dmarc=pass
#     (p=reject sp=reject dis=none) header.from=rej.test" (B8 the first 8
#     characters of the signature's b=), and the log says verdict=accept;
#  2. the same From: unsigned, from another client and envelope domain, is
#     refused at end of DATA with "550 5.7.1 Unauthenticated mail from
#     rej.test is refused by the domain's DMARC policy (ref R); contact
#     postmaster@example.test"; R is the ref of portcullis' log line
#     (dmarc.reject), Postfix logs the milter-reject at END-OF-MESSAGE, and
#     nothing is delivered.
# No sanitizer report.  Skips (77) without postfix, swaks, nsd,
# opendkim-genkey or openssl, or when not root.

: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/postfix-lib.sh"

pf_need
t_need perl
SIGNER=$top_builddir/tests/dkim/dkimsign
[ -x "$SIGNER" ] || { echo "SKIP: $T_NAME: $SIGNER not built" >&2; exit 77; }
PATH=$PATH:/usr/sbin:/sbin command -v nsd >/dev/null 2>&1 || {
	echo "SKIP: $T_NAME: nsd not available" >&2
	exit 77
}
t_init
START_MS=$(t_now_ms)
pf_init

# --- keys, zones, NSD ----------------------------------------------------------
KEYS=$T/keys
mkdir -p "$KEYS"
printf '@\tIN TXT\t"v=spf1 ip4:192.0.2.20 -all"\n_dmarc\tIN TXT\t"v=DMARC1; p=reject"\n' \
	>"$KEYS/rej.test.extra"
sh "$top_srcdir/tests/dkim/keys.sh" "$KEYS" rej.test other.test >"$T/keys.out" 2>&1
rc=$?
[ $rc -eq 77 ] && { echo "SKIP: $T_NAME: $(cat "$T/keys.out")" >&2; exit 77; }
[ $rc -eq 0 ] || fail "tests/dkim/keys.sh: $(cat "$T/keys.out")"
DNSDIR=$T/dns
t_at_exit 'sh "$top_srcdir/tests/dns/server.sh" stop "$DNSDIR" >/dev/null 2>&1'
DNS_ZONE_DIRS=$KEYS/zones DNS_SERVER_LIFETIME=120 timeout 30 \
	sh "$top_srcdir/tests/dns/server.sh" start "$DNSDIR" >"$T/dns-start.out" 2>&1 &
DNS_JOB=$!

pf_start

wait "$DNS_JOB"
rc=$?
[ $rc -eq 77 ] && { echo "SKIP: $T_NAME: $(cat "$T/dns-start.out")" >&2; exit 77; }
[ $rc -eq 0 ] || fail "tests/dns/server.sh start: $(cat "$T/dns-start.out")"
DNS_NSD_PORT=$(sed -n 's/^DNS_NSD_PORT=//p' "$DNSDIR/dns.env")

pf_conf "$PC/portcullis.conf" "checks = spf, dkim, dmarc" \
	"dns.resolver = 127.0.0.1:$DNS_NSD_PORT" "dns.timeout_ms = 2000"
t_start "$PC/portcullis.conf" "$T/portcullis.log"
PC_PID=$T_PID
HELO=mail.example.net

# message NAME FROM-ADDR: the message swaks sends for NAME (its Subject,
# X-Test-Id and body are the ones mta_swaks sets, so that they stay as
# signed), LF line ends.
message()
{
	printf 'From: Alice <%s>\nTo: user@example.test\nSubject: portcullis e2e %s\n' "$2" "$1"
	printf 'X-Test-Id: %s\nDate: %s\nMessage-ID: <%s.%s@rej.test>\n\ntest message %s\n' \
		"$1" "$(date -u -R)" "$1" "$$" "$1"
}
header()
{
	awk -v h="$2" '
		/^$/ { exit }
		/^[ \t]/ { if (on) v = v " " substr($0, match($0, /[^ \t]/)); next }
		{ if (on) exit; on = (tolower(substr($0, 1, length(h) + 1)) == tolower(h) ":") ; if (on) v = substr($0, length(h) + 3) }
		END { if (v != "") print v }' "$1"
}

# 1. signed, aligned: delivered with one A-R carrying spf, dkim and dmarc
message signed alice@rej.test | sed 's/$/\r/' |
	ASAN_OPTIONS=detect_leaks=0 "$SIGNER" "$KEYS/sel1.private" sel1 rej.test |
	tr -d '\r' >"$T/signed.msg" || fail "signing failed"
B8=$(header "$T/signed.msg" DKIM-Signature | tr -d ' \t' | sed -n 's/.*;b=\([^;]*\).*/\1/p' | cut -c1-8)
[ ${#B8} -eq 8 ] || fail "no b= in the signed message"
pf_smtp signed 192.0.2.20 "$HELO" alice@rej.test user@example.test --data "$T/signed.msg"
QID=$(queue_id signed)
if [ -z "$QID" ]; then
	t_err "signed: not queued: $(grep -E '^ *<' "$T/signed.txt" | tail -n 4)"
else
	FILE=$(delivered signed "$QID")
	if [ -n "$FILE" ]; then
		want="mx.example.test; spf=pass smtp.mailfrom=rej.test; dkim=pass header.d=rej.test header.s=sel1 header.b=$B8; dmarc=pass (p=reject sp=reject dis=none) header.from=rej.test"
		got=$(header "$FILE" Authentication-Results)
		[ "$got" = "$want" ] || t_err "signed: Authentication-Results is '$got', want '$want'"
		n=$(grep -c -i '^Authentication-Results:' "$FILE")
		[ "$n" -eq 1 ] || t_err "signed: $n Authentication-Results headers, want 1"
		first=$(sed -n '1{s/:.*//;p}' "$FILE")
		# Postfix's own Return-Path/Delivered-To/Received come first;
		# ours is above the message's own headers (inserted at the top)
		awk '/^Authentication-Results:/ { a = NR } /^DKIM-Signature:/ { d = NR } END { exit !(a && d && a < d) }' "$FILE" ||
			t_err "signed: Authentication-Results is not above the message's headers (first: $first)"
		grep "portcullis: ref=[0-9A-Za-z]* qid=$QID " "$T/portcullis.log" | grep -q "verdict=accept" ||
			t_err "signed: no log line with qid=$QID verdict=accept"
		echo "ok: signed: delivered with Authentication-Results: $got"
	fi
fi

# 2. forged: the same From: unsigned, another client and envelope domain
message forged alice@rej.test >"$T/forged.msg"
before=$(ls "$MAILDIR/new" 2>/dev/null | wc -l)
pf_smtp forged 192.0.2.77 "$HELO" u@other.test user@example.test --data "$T/forged.msg"
reply=$(pf_reply forged '\.')
case $reply in
*"<** 550 5.7.1 Unauthenticated mail from rej.test is refused by the domain's DMARC policy (ref "??????????"); contact postmaster@example.test") ;;
*) t_err "forged: end of DATA answered '$reply'" ;;
esac
ref=$(echo "$reply" | sed -n 's/.*(ref \([0-9A-Za-z]\{10\}\)); contact .*/\1/p')
if [ -n "$ref" ]; then
	t_wait_for 'log_line "$ref" >/dev/null' 5
	log_line "$ref" | grep -q "symbols=dmarc.reject" ||
		t_err "forged: the log line of ref $ref does not name dmarc.reject: $(log_line "$ref")"
	grep -F "milter-reject: END-OF-MESSAGE from client-77.example.net[192.0.2.77]: 5.7.1 Unauthenticated mail from rej.test" \
		"$T/maillog" >/dev/null || t_err "forged: no milter-reject END-OF-MESSAGE line in Postfix' maillog"
	echo "ok: forged: ${reply#*<\*\* }"
fi
grep -q "queued as" "$T/forged.txt" && t_err "forged: a message was queued"
after=$(ls "$MAILDIR/new" 2>/dev/null | wc -l)
[ "$after" -eq "$before" ] || t_err "forged: the Maildir grew from $before to $after"

t_stop "$PC_PID" 10
t_sanitizer_clean "$T/portcullis.log" portcullis
pf_stop
echo "postfix-dmarc.sh: $(($(t_now_ms) - START_MS)) ms"
t_done
