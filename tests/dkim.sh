#!/bin/sh
# tests/dkim.sh - the dkim check with real keys, a real signer and a real
# DNS server
#
# Makes keys and zones (tests/dkim/keys.sh), signs messages with
# tests/dkim/dkimsign (libopendkim) into a temporary folder, and runs
# tests/milter/dkim.lua through tests/milter/run.sh with that folder's
# zones served by NSD (DNS_ZONE_DIRS) and DKIM_DIR pointing at the
# messages.  Skips (77) without opendkim-genkey, openssl, nsd or
# miltertest.
set -u
srcdir=${top_srcdir:-.}
builddir=${top_builddir:-.}
signer=$builddir/tests/dkim/dkimsign
[ -x "$signer" ] || { echo "SKIP: $signer not built"; exit 77; }
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT
# RFC 8463 appendix A: its Ed25519 key and signed example (libopendkim
# verifies Ed25519, but Debian's 2.11.0~beta2 cannot sign with it)
printf 'brisbane._domainkey\tIN TXT\t"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="\n' \
	>"$tmp/football.example.com.extra"
sh "$srcdir/tests/dkim/keys.sh" "$tmp" dkim.test other.test football.example.com || exit $?
printf '%s\r\n' \
	'DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;' \
	' d=football.example.com; i=@football.example.com;' \
	' q=dns/txt; s=brisbane; t=1528637909; h=from : to :' \
	' subject : date : message-id : from : subject : date;' \
	' bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;' \
	' b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus' \
	' Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==' \
	'From: Joe SixPack <joe@football.example.com>' \
	'To: Suzie Q <suzie@shopping.example.net>' \
	'Subject: Is dinner ready?' \
	'Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)' \
	'Message-ID: <20030712040037.46341.5F8J@football.example.com>' \
	'' 'Hi.' '' 'We lost the game.  Are you hungry yet?' '' 'Joe.' >"$tmp/rfc8463.eml"

now=$(date +%s)
crlf() { sed 's/$/\r/'; }
base() {
	crlf <<MSG
From: Alice <alice@$1>
To: rcpt@example.test
Subject: dkim test
Date: $(date -u -R)
Message-ID: <$now.$1@dkim.test>

Hello,
this is a signed message.
MSG
}
# libopendkim leaks a little per signature (its own bug, not ours): the
# signer is a short-lived helper
sign() { ASAN_OPTIONS=detect_leaks=0 "$signer" "$@"; }
k=$tmp/sel1.private
base dkim.test | sign "$k" sel1 dkim.test >"$tmp/pass.eml" || exit 1
base dkim.test | sign -r "$k" sel1 dkim.test >"$tmp/relaxed.eml" || exit 1
sed 's/this is a signed message/this is a changed message/' "$tmp/pass.eml" >"$tmp/body.eml"
sed 's/^Subject: dkim test/Subject: dkim test changed/' "$tmp/pass.eml" >"$tmp/header.eml"
base dkim.test | sign -t $((now - 7200)) -x 3600 "$k" sel1 dkim.test >"$tmp/expired.eml" || exit 1
base dkim.test | sign "$k" revoked dkim.test >"$tmp/revoked.eml" || exit 1
base dkim.test | sign "$k" missing dkim.test >"$tmp/nokey.eml" || exit 1
base dkim.test | sign "$k" sel1 drop.test >"$tmp/timeout.eml" || exit 1
base drop.test | sign "$k" sel1 drop.test >"$tmp/timeout-from.eml" || exit 1
base dkim.test | sign -l "$k" sel1 dkim.test >"$tmp/ltag.eml" || exit 1
printf 'Appended after signing (outside l=).\r\n' >>"$tmp/ltag.eml"
# -p: the signer first checks that libopendkim verifies its own Ed25519
# signature (Debian's 2.11.0~beta2 does not: the case is then skipped)
edrec=$(sed -n 's/^ed._domainkey\tIN TXT\t"\(.*\)"$/\1/p' "$tmp/zones/dkim.test.zone")
base dkim.test | sign -e -p "$edrec" "$tmp/ed.pem" ed dkim.test >"$tmp/ed.eml"
rc=$?
if [ $rc -eq 77 ]; then
	echo "# SKIP ed25519 (own signer): libopendkim cannot verify its own Ed25519 signature here; RFC 8463's example is checked instead"
	rm -f "$tmp/ed.eml"
elif [ $rc -ne 0 ]; then
	exit 1
fi
base dkim.test >"$tmp/unsigned.eml"
# 50 signatures by other.test (keys that do not exist)
base dkim.test >"$tmp/many.eml"
i=1
while [ $i -le 50 ]; do
	sign "$k" "m$i" other.test <"$tmp/many.eml" >"$tmp/many.tmp" || exit 1
	mv "$tmp/many.tmp" "$tmp/many.eml"
	i=$((i + 1))
done

DNS_ZONE_DIRS=$tmp/zones DKIM_DIR=$tmp
export DNS_ZONE_DIRS DKIM_DIR
sh "$srcdir/tests/milter/run.sh" "$srcdir/tests/milter/dkim.lua"
