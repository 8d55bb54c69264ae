#!/bin/sh
# tests/e2e/postfix-content.sh - the content checks behind a real Postfix
#
# The private Postfix of tests/e2e/postfix-lib.sh calls portcullis with
# checks = attachments, clamav and a signature database the test writes
# (an .ndb line for the EICAR string, built at run time).  Whole messages
# go in with swaks --data.  Asserts:
#  1. a clean message with a PDF attachment and a forged "X-Virus-Status:
#     Clean (forged)" is delivered with exactly one X-Virus-Status, ours:
#     "Clean"; the log line has its qid and verdict=accept;
#  2. EICAR as a base64 attachment is refused at the end of DATA with "554
#     5.7.1 Message contains a virus: Test.Eicar... (ref R); contact
#     postmaster@example.test" and nothing is queued; R is in the log line;
#  3. an attachment invoice.pdf.exe is refused at the end of DATA with
#     '550 5.7.1 Attachment "invoice.pdf.exe" not accepted: executable files
#     are refused here (ref ...)'.
# Skips (77) without postfix, swaks or python3.

: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/postfix-lib.sh"

pf_need
t_need python3
t_init
START_MS=$(t_now_ms)
pf_init

# --- database and messages -----------------------------------------------------
mkdir -p "$T/db" "$T/msgs"
python3 - "$T" <<'EOF' || fail "python3 could not write the database and messages"
import base64, sys
T = sys.argv[1]
eicar = "*H+H$!ELIF-TSET-SURIVITNA-DRADNATS-RACIE$}7)CC7)^P(45XZP\\4[PA@%P!O5X"[::-1].encode()
open(T + "/db/test.ndb", "w").write("Test.Eicar:0:*:" + eicar.hex() + "\n")
def msg(name, fname, data, extra=""):
    enc = base64.encodebytes(data).decode().replace("\n", "\r\n")
    return ("From: sender@example.net\r\nTo: user@example.test\r\nSubject: e2e %s\r\n"
            "X-Test-Id: %s\r\n%sMIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
            "--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
            "--b\r\nContent-Type: application/octet-stream; name=\"%s\"\r\n"
            "Content-Disposition: attachment; filename=\"%s\"\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n%s--b--\r\n"
            % (name, name, extra, fname, fname, enc))
open(T + "/msgs/clean", "w").write(msg("clean", "report.pdf", b"%PDF-1.4 harmless",
                                       "X-Virus-Status: Clean (forged)\r\n"))
open(T + "/msgs/virus", "w").write(msg("virus", "tool.bin", eicar))
open(T + "/msgs/exe", "w").write(msg("exe", "invoice.pdf.exe", b"MZ not really"))
EOF

# --- portcullis and Postfix ---------------------------------------------------------
pf_conf "$PC/portcullis.conf" "trusted_networks =" "checks = attachments, clamav" \
	"clamav.database = $T/db"
t_start "$PC/portcullis.conf" "$T/portcullis.log"
t_wait_for 'grep -q "av: loaded 1 signatures" "$T/portcullis.log"' 30 ||
	fail "the scanner helper did not load the test database"
pf_start

send() { # send NAME: the message file NAME through XCLIENT 192.0.2.20
	pf_smtp "$1" 192.0.2.20 client.example.net sender@example.net user@example.test \
		--data "@$T/msgs/$1"
}

# --- 1. clean: delivered with our X-Virus-Status only ----------------------------
send clean
QID=$(queue_id clean)
if [ -z "$QID" ]; then
	t_err "clean: not queued: $(grep -E '^ *<' "$T/clean.txt" | tail -n 3)"
else
	f=$(delivered clean "$QID")
	if [ -n "$f" ]; then
		n=$(grep -c -i '^X-Virus-Status:' "$f")
		[ "$n" = 1 ] || t_err "clean: $n X-Virus-Status headers in the delivered mail (want 1): $(grep -i '^X-Virus-Status:' "$f")"
		grep -q -x 'X-Virus-Status: Clean' "$f" ||
			t_err "clean: no 'X-Virus-Status: Clean' in the delivered mail"
	fi
	t_wait_for 'grep -q "qid=$QID .*verdict=accept" "$T/portcullis.log"' 5 ||
		t_err "clean: no log line with qid=$QID verdict=accept"
fi

# --- 2. EICAR: 554 5.7.1 at the end of DATA ------------------------------------------
send virus
line=$(grep -E '^ *<\*\* *554 5\.7\.1 ' "$T/virus.txt" | head -n 1)
case $line in
*"Message contains a virus: Test.Eicar"*"(ref "*"); contact postmaster@example.test") ;;
*) t_err "virus: no 554 5.7.1 naming Test.Eicar with ref and contact: $(grep -E '^ *<' "$T/virus.txt" | tail -n 3)" ;;
esac
grep -q 'queued as' "$T/virus.txt" && t_err "virus: the message was queued"
REF=$(echo "$line" | sed -n 's/.*(ref \([0-9A-Za-z]\{10\}\)).*/\1/p')
if [ -n "$REF" ]; then
	t_wait_for 'log_line "$REF" | grep -q "verdict=reject"' 5 ||
		t_err "virus: ref $REF has no verdict=reject log line"
fi

# --- 3. invoice.pdf.exe: 550 5.7.1 naming the file -----------------------------------
send exe
grep -q -E '^ *<\*\* *550 5\.7\.1 Attachment "invoice\.pdf\.exe" not accepted: executable files are refused here \(ref [0-9A-Za-z]{10}\); contact postmaster@example\.test' "$T/exe.txt" ||
	t_err "exe: no 550 5.7.1 naming invoice.pdf.exe: $(grep -E '^ *<' "$T/exe.txt" | tail -n 3)"

t_sanitizer_clean "$T/portcullis.log"
echo "postfix-content: $(($(t_now_ms) - START_MS)) ms"
t_done
