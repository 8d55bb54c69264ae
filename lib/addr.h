/* lib/addr.h - parsing of SMTP envelope addresses, domains and IP addresses
 *
 * Everything here takes hostile network text and parses it once into bounded,
 * typed fields.  Truncation is flagged (ADDR_TOO_LONG), never silent.  No
 * function allocates; all are thread-safe and never fail hard: a bad input
 * yields flags and a short reason, not an error return.
 *
 * See also: RFC 5321 section 4.1.2 (Path, Mailbox, Local-part, Domain,
 * address-literal) and 4.5.3.1 (size limits).
 */
#ifndef PORTCULLIS_ADDR_H
#define PORTCULLIS_ADDR_H

#include <stddef.h>

#define ADDR_LOCAL_MAX  64
#define ADDR_DOMAIN_MAX 255
#define ADDR_MAX        (ADDR_LOCAL_MAX + 1 + ADDR_DOMAIN_MAX)

/* struct mailaddr flags */
#define ADDR_NULL           0x0001 /* "<>": the null reverse-path */
#define ADDR_BAD_SYNTAX     0x0002 /* not an RFC 5321 Path; see .reason */
#define ADDR_NO_BRACKETS    0x0004 /* given without <...> (sloppy client) */
#define ADDR_NO_DOMAIN      0x0008 /* no @domain part ("<postmaster>") */
#define ADDR_DOMAIN_LITERAL 0x0010 /* user@[192.0.2.1] */
#define ADDR_NON_FQDN       0x0020 /* domain without a dot, or numeric TLD */
#define ADDR_QUOTED         0x0040 /* quoted-string local part */
#define ADDR_SOURCE_ROUTE   0x0080 /* <@a,@b:user@dom>: route dropped */
#define ADDR_TOO_LONG       0x0100 /* a part exceeded its RFC limit */
#define ADDR_UTF8           0x0200 /* UTF-8 in local part or domain (RFC 6531) */

struct mailaddr {
	char local[ADDR_LOCAL_MAX + 1];   /* as given (quotes kept), truncated if TOO_LONG */
	char domain[ADDR_DOMAIN_MAX + 1]; /* lower-cased; "[...]" kept for literals */
	char full[ADDR_MAX + 1];          /* "local@domain", "local" or "" (null) */
	unsigned flags;
	const char *reason; /* static text for ADDR_BAD_SYNTAX, else NULL */
};

/* Parse an envelope address as the MTA passes it (MAIL FROM / RCPT TO
 * argument, normally "<user@example.org>").  Always fills *out. */
void addr_parse(const char *in, struct mailaddr *out);

/* True when a has a domain worth asking the DNS about: not null, good
 * syntax, a domain that is fully qualified, not an address literal, not
 * cut short.  Checks that look the domain up skip the others (a
 * "joe@workstation" sender is the envelope check's business). */
int addr_fqdn_domain(const struct mailaddr *a);

/* True for the local parts RFC 5321 and RFC 2142 make always reachable:
 * "postmaster" and "abuse" (any domain, case-insensitive, also without a
 * domain). */
int addr_is_postmaster(const struct mailaddr *a);

/* Domain name syntax (RFC 1035 labels, LDH, 1..63 per label, <= 253 in all,
 * optional trailing dot).  Returns 1 if valid, 0 if not. */
int domain_valid(const char *name);

/* A valid domain that has at least two labels and a non-numeric top label. */
int domain_is_fqdn(const char *name);

/* IP addresses. */
struct ipaddr {
	int family;          /* AF_INET or AF_INET6; 0 = none */
	unsigned char a[16]; /* network byte order; IPv4 in a[0..3] */
};

/* Parse a textual IPv4 or IPv6 address (no brackets, no "IPv6:" tag).
 * Returns 0 and fills *ip, or -1. */
int ip_parse(const char *s, struct ipaddr *ip);

/* Parse "net/len" or a bare address (len = 32 / 128).  Returns 0 or -1. */
int ip_parse_cidr(const char *s, struct ipaddr *net, int *len);

/* 1 if ip is inside net/len (same family; IPv4-mapped IPv6 compares as
 * IPv4), else 0. */
int ip_in_net(const struct ipaddr *ip, const struct ipaddr *net, int len);

/* Canonical text form into dst (at least 46 bytes). */
void ip_format(const struct ipaddr *ip, char *dst, size_t dstsize);

/* The address as the DNS and the networks see it: an IPv4-mapped IPv6
 * address (::ffff:a.b.c.d) becomes IPv4 a.b.c.d; others are copied. */
void ip_unmap(const struct ipaddr *in, struct ipaddr *out);

/* 1 for 127.0.0.0/8 and ::1. */
int ip_is_loopback(const struct ipaddr *ip);

/* Address literal in HELO or domain: "[192.0.2.1]" or "[IPv6:2001:db8::1]".
 * Returns 0 and fills *ip when s is a syntactically valid literal, else -1. */
int ip_parse_literal(const char *s, struct ipaddr *ip);

#endif
