#!/bin/sh
# tests/dkim/keys.sh - DKIM keys and DNS zones for the identity tests
#
#   sh tests/dkim/keys.sh DIR DOMAIN...
#
# Makes, in DIR:
#   sel1.private   an RSA key (opendkim-genkey, 1024 bits)
#   ed.pem         an Ed25519 key (openssl genpkey), for RFC 8463
#   zones/D.zone   for each DOMAIN D: SOA, NS and the key records
#                  sel1._domainkey (the RSA key), ed._domainkey (k=ed25519),
#                  revoked._domainkey (empty p=, RFC 6376 3.6.1), plus the
#                  lines of DIR/D.extra when the caller wrote one (DMARC and
#                  SPF records)
# For tests/dns/server.sh: DNS_ZONE_DIRS=DIR/zones.  Exit 77 when
# opendkim-genkey or openssl is missing.
set -u
dir=$1
shift
command -v opendkim-genkey >/dev/null 2>&1 || { echo "SKIP: opendkim-genkey (opendkim-tools) not found"; exit 77; }
command -v openssl >/dev/null 2>&1 || { echo "SKIP: openssl not found"; exit 77; }
mkdir -p "$dir/zones" || exit 1
opendkim-genkey -b 1024 -d example.invalid -s sel1 -D "$dir" || exit 1
# the p= value of the record opendkim-genkey wrote
rsa_p=$(tr -d '\n\t "()' <"$dir/sel1.txt" | sed -n 's/.*p=\([A-Za-z0-9+/=]*\).*/\1/p')
[ -n "$rsa_p" ] || { echo "no p= in $dir/sel1.txt" >&2; exit 1; }
openssl genpkey -algorithm ed25519 -out "$dir/ed.pem" 2>/dev/null || exit 1
# RFC 8463: p= is the raw 32-byte public key, the tail of its SPKI DER
ed_p=$(openssl pkey -in "$dir/ed.pem" -pubout -outform DER | tail -c 32 | base64)
for d in "$@"; do
	{
		printf '$ORIGIN %s.\n$TTL 300\n' "$d"
		printf '@\tIN SOA\tns.%s. hostmaster.%s. 1 3600 600 86400 60\n' "$d" "$d"
		printf '@\tIN NS\tns.%s.\nns\tIN A\t127.0.0.1\n' "$d"
		# a TXT record's strings are at most 255 bytes: split p=
		printf 'sel1._domainkey\tIN TXT\t"v=DKIM1; k=rsa; " "p=%s" "%s"\n' \
			"$(printf %s "$rsa_p" | cut -c1-200)" "$(printf %s "$rsa_p" | cut -c201-)"
		printf 'ed._domainkey\tIN TXT\t"v=DKIM1; k=ed25519; p=%s"\n' "$ed_p"
		printf 'revoked._domainkey\tIN TXT\t"v=DKIM1; k=rsa; p="\n'
		[ -f "$dir/$d.extra" ] && cat "$dir/$d.extra"
	} >"$dir/zones/$d.zone"
done
exit 0
