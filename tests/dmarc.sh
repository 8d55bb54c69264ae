#!/bin/sh
# tests/dmarc.sh - the dmarc check (with spf and dkim) against real DNS
#
# Writes DMARC and SPF records for the test domains, makes keys and zones
# (tests/dkim/keys.sh), signs messages with tests/dkim/dkimsign
# (libopendkim) into a temporary folder, and runs tests/milter/dmarc.lua
# through tests/milter/run.sh with those zones served by NSD.  Skips (77)
# without opendkim-genkey, openssl, nsd or miltertest.
set -u
srcdir=${top_srcdir:-.}
builddir=${top_builddir:-.}
signer=$builddir/tests/dkim/dkimsign
[ -x "$signer" ] || { echo "SKIP: $signer not built"; exit 77; }
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT

spf='@	IN TXT	"v=spf1 ip4:192.0.2.20 -all"'
printf '%s\n_dmarc\tIN TXT\t"v=DMARC1; p=reject; rua=mailto:dmarc@rej.test"\n' "$spf" >"$tmp/rej.test.extra"
printf '%s\n_dmarc\tIN TXT\t"v=DMARC1; p=quarantine"\n' "$spf" >"$tmp/quar.test.extra"
printf '%s\n_dmarc\tIN TXT\t"v=DMARC1; p=none"\n' "$spf" >"$tmp/none.test.extra"
printf '_dmarc\tIN TXT\t"v=DMARC1; p=reject; sp=quarantine"\n_dmarc.own\tIN TXT\t"v=DMARC1; p=none"\n' >"$tmp/sub.test.extra"
printf '_dmarc\tIN TXT\t"v=DMARC1; p=reject"\n' >"$tmp/rel.test.extra"
printf '_dmarc\tIN TXT\t"v=DMARC1; p=reject; adkim=s; aspf=s"\n' >"$tmp/strict.test.extra"
printf '_dmarc\tIN TXT\t"v=DMARC1; p=reject"\n_dmarc\tIN TXT\t"v=DMARC1; p=none"\n' >"$tmp/two.test.extra"
printf '_dmarc\tIN TXT\t"v=DMARC1; p=bogus"\n' >"$tmp/broken.test.extra"
sh "$srcdir/tests/dkim/keys.sh" "$tmp" rej.test quar.test none.test sub.test rel.test \
	strict.test nodmarc.test two.test broken.test || exit $?

now=$(date +%s)
crlf() { sed 's/$/\r/'; }
# msg FROM-HEADER-VALUE [FROM2]: a message (FROM2: a second From: field)
msg() {
	{
		printf 'From: %s\n' "$1"
		[ $# -gt 1 ] && [ -n "$2" ] && printf 'From: %s\n' "$2"
		printf 'To: rcpt@example.test\nSubject: dmarc test\nDate: %s\n' "$(date -u -R)"
		printf 'Message-ID: <%s.%s@example.test>\n\nHello.\n' "$now" "$$"
	} | crlf
}
sign() { ASAN_OPTIONS=detect_leaks=0 "$signer" "$tmp/sel1.private" sel1 "$@"; }
msg 'Alice <alice@rej.test>' | sign rej.test >"$tmp/signed.eml" || exit 1
msg 'Alice <alice@rej.test>' >"$tmp/forged.eml"
msg 'Q <q@quar.test>' >"$tmp/quar.eml"
msg 'N <n@none.test>' >"$tmp/none.eml"
msg 'S <s@a.sub.test>' >"$tmp/sub.eml"
msg 'O <o@own.sub.test>' >"$tmp/ownsub.eml"
msg 'R <r@mail.rel.test>' | sign rel.test >"$tmp/relaxed.eml" || exit 1
msg 'T <t@mail.strict.test>' | sign strict.test >"$tmp/strict.eml" || exit 1
msg 'T <t@strict.test>' | sign strict.test >"$tmp/strict-exact.eml" || exit 1
msg 'X <x@nodmarc.test>' >"$tmp/nodmarc.eml"
msg 'W <w@two.test>' >"$tmp/two.eml"
msg 'B <b@broken.test>' >"$tmp/broken.eml"
msg 'Alice <alice@rej.test>' | sed '/^From:/d' >"$tmp/nofrom.eml"
msg 'N <n@none.test>' 'Alice <alice@rej.test>' | sign none.test >"$tmp/twofrom.eml" || exit 1
msg 'N <n@none.test>, Alice <alice@rej.test>' | sign none.test >"$tmp/twoaddr.eml" || exit 1

DNS_ZONE_DIRS=$tmp/zones DKIM_DIR=$tmp
export DNS_ZONE_DIRS DKIM_DIR
sh "$srcdir/tests/milter/run.sh" "$srcdir/tests/milter/dmarc.lua"
