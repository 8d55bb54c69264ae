/* lib/addr.c - envelope address, domain and IP address parsing
 *
 * Contract in addr.h.  Everything here is pure and reentrant: no allocation,
 * no static result buffers and no <ctype.h> (its answers for bytes >= 0x80
 * depend on the locale), so any milter thread may call it at any time.
 *
 * Input is read only up to its NUL.  Output fields are always terminated and
 * bounded, and never hold a control byte or malformed UTF-8: well-formed
 * UTF-8 is kept where RFC 6531 (SMTPUTF8) allows it (flag ADDR_UTF8), every
 * other byte outside printable ASCII is copied as '?' (and flags
 * ADDR_BAD_SYNTAX), so a best-effort copy can be logged (still through
 * enc_log()) without surprises.  .reason is the first
 * problem found, as a static string.
 *
 * Address literals are kept as given (validated, so only "[", "]", "IPv6:",
 * hex digits, ':' and '.'); compare them with ip_parse_literal(), not as
 * text.  Domain labels over 63 octets and a trailing dot are syntax errors
 * in an envelope address even though RFC 5321's grammar alone allows them.
 *
 * See also: RFC 5321 4.1.2, 4.1.3 and 4.5.3.1; RFC 1035 2.3.1; RFC 1123 2.1.
 */
#include "addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define LABEL_MAX    63
#define DNS_NAME_MAX 253
/* "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255" */
#define IP_TEXT_MAX 45
/* "[IPv6:" IP_TEXT_MAX "]" */
#define LITERAL_MAX (6 + IP_TEXT_MAX + 1)

/* Returned as .reason; addr_is_postmaster() compares against the pointer. */
static const char r_no_domain[] = "missing domain";

/* ASCII letter, locale-independent. */
static int is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* ASCII decimal digit. */
static int is_digit(int c)
{
	return c >= '0' && c <= '9';
}

/* RFC 5321 Let-dig. */
static int is_letdig(int c)
{
	return is_alpha(c) || is_digit(c);
}

/* RFC 5321 atext (RFC 5322 3.2.3): the bytes of an unquoted local part. */
static int is_atext(int c)
{
	return is_letdig(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* The length (2..4) of the well-formed UTF-8 character of a non-ASCII
 * byte at s, within n bytes; 0 for anything else (overlong forms,
 * surrogates, stray continuation bytes, beyond U+10FFFF).  RFC 3629 4. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t len;

	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

/* RFC 5321 qtextSMTP: printable ASCII except '"' and '\\'. */
static int is_qtext(int c)
{
	return c >= 32 && c <= 126 && c != '"' && c != '\\';
}

/* ASCII lower case. */
static int to_lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

/* Record a syntax error; the first reason found is the one reported. */
static void bad(struct mailaddr *out, const char *reason)
{
	out->flags |= ADDR_BAD_SYNTAX;
	if (out->reason == NULL)
		out->reason = reason;
}

/* Bounded copy of the span [s, s+n) into dst (size dstsize > 0), control and
 * 8-bit bytes as '?' -- except well-formed UTF-8 when utf8 is set (a valid
 * RFC 6531 address) -- optionally ASCII-lower-cased.  A UTF-8 character is
 * copied whole or not at all.  Returns the length copied. */
static size_t copy_span(char *dst, size_t dstsize, const char *s, size_t n, int lower, int utf8)
{
	size_t i = 0, o = 0;

	while (i < n && o < dstsize - 1) {
		unsigned char c = (unsigned char)s[i];
		size_t k = c >= 0x80 && utf8 ? utf8_seq((const unsigned char *)s + i, n - i) : 0;

		if (k) {
			if (o + k > dstsize - 1)
				break;
			memcpy(dst + o, s + i, k);
			o += k;
			i += k;
			continue;
		}
		if (c < 0x20 || c >= 0x7f)
			c = '?';
		dst[o++] = (char)(lower ? to_lower(c) : c);
		i++;
	}
	dst[o] = '\0';
	return o;
}

/* Check the span [s, s+n) as sub-domain *("." sub-domain) with labels of at
 * most 63 octets, no trailing dot.  Returns NULL or a static reason. */
static const char *check_domain(const char *s, size_t n, int *utf8)
{
	size_t i, label = 0;

	if (n == 0)
		return "empty domain";
	/* Characters first, so that hostile bytes get the clearest reason.
	 * U-labels (RFC 6531 3.3) may hold well-formed UTF-8. */
	for (i = 0; i < n; i++) {
		size_t k;

		if (is_letdig((unsigned char)s[i]) || s[i] == '-' || s[i] == '.')
			continue;
		k = (unsigned char)s[i] >= 0x80 ? utf8_seq((const unsigned char *)s + i, n - i) : 0;
		if (k == 0 || utf8 == NULL)
			return "invalid character in domain";
		*utf8 = 1;
		i += k - 1;
	}
	for (i = 0; i <= n; i++) {
		if (i < n && s[i] != '.') {
			label++;
			continue;
		}
		/* s[i - label .. i - 1] is one label */
		if (label == 0)
			return "empty label in domain";
		if (label > LABEL_MAX)
			return "domain label too long";
		if (s[i - label] == '-' || s[i - 1] == '-')
			return "hyphen at start or end of domain label";
		label = 0;
	}
	return NULL;
}

/* Check the span [s, s+n) as an RFC 5321 Dot-string.  Returns NULL or a
 * static reason. */
static const char *check_dot_string(const char *s, size_t n, int *utf8)
{
	size_t i;

	if (n == 0)
		return "empty local part";
	for (i = 0; i < n; i++) {
		size_t k;

		if (is_atext((unsigned char)s[i]) || s[i] == '.')
			continue;
		/* RFC 6531 3.3: atext =/ UTF8-non-ascii */
		k = (unsigned char)s[i] >= 0x80 ? utf8_seq((const unsigned char *)s + i, n - i) : 0;
		if (k == 0)
			return "invalid character in local part";
		*utf8 = 1;
		i += k - 1;
	}
	for (i = 0; i < n; i++)
		if (s[i] == '.' && (i == 0 || i == n - 1 || s[i + 1] == '.'))
			return "misplaced dot in local part";
	return NULL;
}

/* Check the span [s, e) as A-d-l: At-domain *( "," At-domain ).  Returns
 * NULL or a static reason. */
static const char *check_route(const char *s, const char *e)
{
	while (s < e) {
		const char *comma = memchr(s, ',', (size_t)(e - s));
		const char *next = comma ? comma : e;

		if (*s != '@' || check_domain(s + 1, (size_t)(next - s - 1), NULL))
			return "invalid source route";
		if (comma && comma + 1 == e)
			return "invalid source route";
		s = comma ? comma + 1 : e;
	}
	return NULL;
}

/* Parse the quoted-string local part starting at *pp (which points at '"')
 * and ending before e; leaves *pp after the closing quote. */
static void parse_quoted(struct mailaddr *out, const char **pp, const char *e)
{
	const char *p = *pp + 1;

	out->flags |= ADDR_QUOTED;
	while (p < e && *p != '"') {
		if (*p == '\\') {
			/* quoted-pairSMTP = "\" followed by printable ASCII */
			if (p + 1 < e && p[1] >= 32 && p[1] <= 126) {
				p += 2;
				continue;
			}
			bad(out, "invalid quoted pair in local part");
		} else if ((unsigned char)*p >= 0x80 &&
		           utf8_seq((const unsigned char *)p, (size_t)(e - p)) > 0) {
			out->flags |= ADDR_UTF8; /* qtextSMTP =/ UTF8-non-ascii */
			p += utf8_seq((const unsigned char *)p, (size_t)(e - p));
			continue;
		} else if (!is_qtext((unsigned char)*p)) {
			bad(out, "invalid character in local part");
		}
		p++;
	}
	if (p == e)
		bad(out, "unterminated quoted local part");
	else
		p++;
	*pp = p;
}

/* FQDN shape of a (syntax-checked) domain with U-labels: a dot inside and
 * a top label that is not all digits. */
static int utf8_domain_is_fqdn(const char *d)
{
	const char *dot = strrchr(d, '.');

	if (dot == NULL || dot == d || dot[1] == '\0')
		return 0;
	for (const char *p = dot + 1; *p; p++)
		if (!is_digit((unsigned char)*p))
			return 1;
	return 0;
}

/* Parse the domain part [d, e) (after '@') into out. */
static void parse_domain(struct mailaddr *out, const char *d, const char *e)
{
	size_t n = (size_t)(e - d);

	if (n > ADDR_DOMAIN_MAX) {
		out->flags |= ADDR_TOO_LONG;
		bad(out, "domain too long");
	}
	if (n > 0 && *d == '[') {
		char lit[LITERAL_MAX + 1];
		struct ipaddr ip;

		out->flags |= ADDR_DOMAIN_LITERAL;
		if (n > LITERAL_MAX) {
			bad(out, "invalid address literal");
		} else {
			memcpy(lit, d, n);
			lit[n] = '\0';
			if (ip_parse_literal(lit, &ip) != 0)
				bad(out, "invalid address literal");
		}
		copy_span(out->domain, sizeof(out->domain), d, n, 0, 0);
		return;
	}
	if (n <= ADDR_DOMAIN_MAX) {
		int utf8 = 0;
		const char *r = check_domain(d, n, &utf8);

		if (r != NULL)
			bad(out, r);
		if (utf8)
			out->flags |= ADDR_UTF8;
	}
	copy_span(out->domain, sizeof(out->domain), d, n, 1, !(out->flags & ADDR_BAD_SYNTAX));
	if (!((out->flags & ADDR_UTF8) ? utf8_domain_is_fqdn(out->domain)
	                               : domain_is_fqdn(out->domain)))
		out->flags |= ADDR_NON_FQDN;
}

/* Fill out->full from local and domain; "local@domain" fits by size. */
static void make_full(struct mailaddr *out, int have_at)
{
	size_t l = strlen(out->local);
	size_t d = strlen(out->domain);

	memcpy(out->full, out->local, l);
	if (have_at) {
		out->full[l++] = '@';
		memcpy(out->full + l, out->domain, d);
		l += d;
	}
	out->full[l] = '\0';
}

/* Parse an envelope address; see addr.h.  Never fails: problems are flags. */
void addr_parse(const char *in, struct mailaddr *out)
{
	const char *p, *e, *lp, *le;
	int have_at = 0;

	memset(out, 0, sizeof(*out));
	if (in == NULL) {
		bad(out, "no address");
		return;
	}
	p = in;
	e = in + strlen(in);
	/* The MTA strips ESMTP parameters but may leave the separating space. */
	while (p < e && *p == ' ')
		p++;
	while (e > p && e[-1] == ' ')
		e--;

	if (p < e && *p == '<') {
		p++;
		if (e > p && e[-1] == '>')
			e--;
		else if (memchr(p, '>', (size_t)(e - p)) != NULL)
			bad(out, "text after address");
		else
			bad(out, "missing closing bracket");
	} else {
		out->flags |= ADDR_NO_BRACKETS;
	}

	if (p == e) {
		if (out->flags & (ADDR_NO_BRACKETS | ADDR_BAD_SYNTAX))
			bad(out, "empty address");
		else
			out->flags |= ADDR_NULL;
		return;
	}

	/* Source route: "@a,@b:" before the mailbox; RFC 5321 says to ignore
	 * it, so it is checked and dropped. */
	if (*p == '@') {
		const char *colon = memchr(p, ':', (size_t)(e - p));

		out->flags |= ADDR_SOURCE_ROUTE;
		if (colon == NULL) {
			bad(out, "invalid source route");
		} else {
			const char *r = check_route(p, colon);

			if (r != NULL)
				bad(out, r);
			p = colon + 1;
		}
	}

	/* Local part: Dot-string / Quoted-string. */
	lp = p;
	if (p < e && *p == '"') {
		parse_quoted(out, &p, e);
		if (p < e && *p != '@') {
			const char *at = memchr(p, '@', (size_t)(e - p));

			bad(out, "invalid character in local part");
			p = at ? at : e;
		}
		le = p;
	} else {
		/* The domain is after the last '@' (an '@' in an unquoted
		 * local part is a syntax error, but the domain stays usable,
		 * e.g. for SPF, RFC 7208 4.3). */
		const char *at = NULL;
		const char *r;

		int utf8 = 0;

		for (const char *q = p; q < e; q++)
			if (*q == '@')
				at = q;

		le = at ? at : e;
		r = check_dot_string(lp, (size_t)(le - lp), &utf8);
		if (r != NULL)
			bad(out, r);
		if (utf8)
			out->flags |= ADDR_UTF8;
		p = le;
	}
	if ((size_t)(le - lp) > ADDR_LOCAL_MAX) {
		out->flags |= ADDR_TOO_LONG;
		bad(out, "local part too long");
	}
	copy_span(out->local, sizeof(out->local), lp, (size_t)(le - lp), 0,
	          !(out->flags & ADDR_BAD_SYNTAX));

	/* Domain, or none: only "<Postmaster>" may omit it (RFC 5321 4.1.1.3). */
	if (p == e) {
		out->flags |= ADDR_NO_DOMAIN;
		if ((out->flags & ADDR_QUOTED) || strcasecmp(out->local, "postmaster") != 0)
			bad(out, r_no_domain);
	} else {
		have_at = 1;
		parse_domain(out, p + 1, e);
	}
	make_full(out, have_at);
}

/* "postmaster" or "abuse", unquoted, any case, any or no domain.  Returns 0
 * for a null or syntactically bad address, except that a missing domain is
 * tolerated ("<abuse>"). */
int addr_fqdn_domain(const struct mailaddr *a)
{
	return !(a->flags & (ADDR_NULL | ADDR_BAD_SYNTAX | ADDR_NO_DOMAIN | ADDR_DOMAIN_LITERAL |
	                     ADDR_TOO_LONG | ADDR_NON_FQDN)) &&
	       a->domain[0] != '\0';
}

int addr_is_postmaster(const struct mailaddr *a)
{
	if (a == NULL || (a->flags & (ADDR_NULL | ADDR_QUOTED)))
		return 0;
	/* The missing-domain check runs last, so when it is the reported
	 * reason it is the only problem. */
	if ((a->flags & ADDR_BAD_SYNTAX) && a->reason != r_no_domain)
		return 0;
	return strcasecmp(a->local, "postmaster") == 0 || strcasecmp(a->local, "abuse") == 0;
}

/* RFC 1035 host name syntax; see addr.h. */
int domain_valid(const char *name)
{
	size_t n;

	if (name == NULL)
		return 0;
	n = strnlen(name, DNS_NAME_MAX + 2);
	if (n > 0 && name[n - 1] == '.')
		n--;
	if (n == 0 || n > DNS_NAME_MAX)
		return 0;
	return check_domain(name, n, NULL) == NULL;
}

/* Valid, at least two labels, top label not all digits. */
int domain_is_fqdn(const char *name)
{
	size_t n, i;
	int numeric = 1;

	if (!domain_valid(name))
		return 0;
	n = strlen(name);
	if (name[n - 1] == '.')
		n--;
	for (i = n; i > 0 && name[i - 1] != '.'; i--)
		if (!is_digit((unsigned char)name[i - 1]))
			numeric = 0;
	return i > 0 && !numeric;
}

/* Parse a bare IPv4 or IPv6 address; see addr.h. */
int ip_parse(const char *s, struct ipaddr *ip)
{
	size_t n;

	if (s == NULL || ip == NULL)
		return -1;
	memset(ip, 0, sizeof(*ip));
	n = strnlen(s, IP_TEXT_MAX + 1);
	if (n == 0 || n > IP_TEXT_MAX)
		return -1;
	if (memchr(s, ':', n) != NULL) {
		struct in6_addr a6;

		if (inet_pton(AF_INET6, s, &a6) != 1)
			return -1;
		memcpy(ip->a, &a6, 16);
		ip->family = AF_INET6;
	} else {
		struct in_addr a4;

		/* glibc's inet_pton() takes only four decimal octets without
		 * leading zeros: no "1.2.3", no octal "010.0.0.1". */
		if (inet_pton(AF_INET, s, &a4) != 1)
			return -1;
		memcpy(ip->a, &a4, 4);
		ip->family = AF_INET;
	}
	return 0;
}

/* Parse "addr/len" or "addr"; see addr.h.  The host bits are kept. */
int ip_parse_cidr(const char *s, struct ipaddr *net, int *len)
{
	char buf[IP_TEXT_MAX + 1];
	const char *slash;
	size_t n;
	int bits = 0, max;

	if (s == NULL || net == NULL || len == NULL)
		return -1;
	n = strnlen(s, IP_TEXT_MAX + 5);
	slash = memchr(s, '/', n);
	if (slash == NULL) {
		if (ip_parse(s, net) != 0)
			return -1;
		*len = net->family == AF_INET ? 32 : 128;
		return 0;
	}
	if ((size_t)(slash - s) > IP_TEXT_MAX)
		return -1;
	memcpy(buf, s, (size_t)(slash - s));
	buf[slash - s] = '\0';
	if (ip_parse(buf, net) != 0)
		return -1;
	max = net->family == AF_INET ? 32 : 128;
	/* one to three digits, nothing after them */
	n -= (size_t)(slash + 1 - s);
	if (n == 0 || n > 3 || slash[1 + n] != '\0')
		return -1;
	for (s = slash + 1; *s != '\0'; s++) {
		if (!is_digit((unsigned char)*s))
			return -1;
		bits = bits * 10 + (*s - '0');
	}
	if (bits > max)
		return -1;
	*len = bits;
	return 0;
}

/* An IPv4-mapped IPv6 address (::ffff:a.b.c.d) as IPv4; others unchanged.
 * A mapped network shorter than /96 stays IPv6 (it is not an IPv4 net). */
static void unmap(const struct ipaddr *in, int len, struct ipaddr *out, int *outlen)
{
	static const unsigned char prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	*out = *in;
	*outlen = len;
	if (in->family == AF_INET6 && len >= 96 && memcmp(in->a, prefix, sizeof(prefix)) == 0) {
		memset(out, 0, sizeof(*out));
		out->family = AF_INET;
		memcpy(out->a, in->a + 12, 4);
		*outlen = len - 96;
	}
}

void ip_unmap(const struct ipaddr *in, struct ipaddr *out)
{
	struct ipaddr copy = *in; /* in and out may be the same */
	int len;

	unmap(&copy, 128, out, &len);
}

/* Prefix match; see addr.h. */
int ip_in_net(const struct ipaddr *ip, const struct ipaddr *net, int len)
{
	struct ipaddr i, n;
	int ilen, nlen, bytes, rest;

	if (ip == NULL || net == NULL || len < 0)
		return 0;
	if ((net->family == AF_INET && len > 32) || (net->family == AF_INET6 && len > 128))
		return 0;
	unmap(ip, 128, &i, &ilen);
	unmap(net, len, &n, &nlen);
	if (i.family == 0 || i.family != n.family)
		return 0;
	bytes = nlen / 8;
	rest = nlen % 8;
	if (memcmp(i.a, n.a, (size_t)bytes) != 0)
		return 0;
	if (rest != 0) {
		unsigned char mask = (unsigned char)(0xff << (8 - rest));

		if ((i.a[bytes] & mask) != (n.a[bytes] & mask))
			return 0;
	}
	return 1;
}

/* inet_ntop() form; "" for no address or when dst is too small, so a cut
 * address is never mistaken for a whole one. */
void ip_format(const struct ipaddr *ip, char *dst, size_t dstsize)
{
	char buf[INET6_ADDRSTRLEN];
	size_t n;

	if (dst == NULL || dstsize == 0)
		return;
	dst[0] = '\0';
	if (ip == NULL)
		return;
	if (ip->family == AF_INET) {
		struct in_addr a4;

		memcpy(&a4, ip->a, 4);
		if (inet_ntop(AF_INET, &a4, buf, sizeof(buf)) == NULL)
			return;
	} else if (ip->family == AF_INET6) {
		struct in6_addr a6;

		memcpy(&a6, ip->a, 16);
		if (inet_ntop(AF_INET6, &a6, buf, sizeof(buf)) == NULL)
			return;
	} else {
		return;
	}
	n = strlen(buf);
	if (n < dstsize)
		memcpy(dst, buf, n + 1);
}

/* 127.0.0.0/8 (also IPv4-mapped) and ::1. */
int ip_is_loopback(const struct ipaddr *ip)
{
	static const unsigned char one[16] = { [15] = 1 };
	struct ipaddr i;
	int len;

	if (ip == NULL)
		return 0;
	unmap(ip, 128, &i, &len);
	if (i.family == AF_INET)
		return i.a[0] == 127;
	if (i.family == AF_INET6)
		return memcmp(i.a, one, 16) == 0;
	return 0;
}

/* "[a.b.c.d]" or "[IPv6:...]" (tag case-insensitive, RFC 5234 strings). */
int ip_parse_literal(const char *s, struct ipaddr *ip)
{
	char buf[LITERAL_MAX + 1];
	size_t n;

	if (s == NULL || ip == NULL)
		return -1;
	memset(ip, 0, sizeof(*ip));
	n = strnlen(s, LITERAL_MAX + 1);
	if (n < 3 || n > LITERAL_MAX || s[0] != '[' || s[n - 1] != ']')
		return -1;
	memcpy(buf, s + 1, n - 2);
	buf[n - 2] = '\0';
	if (strncasecmp(buf, "IPv6:", 5) == 0) {
		if (ip_parse(buf + 5, ip) != 0 || ip->family != AF_INET6)
			goto fail;
	} else {
		if (ip_parse(buf, ip) != 0 || ip->family != AF_INET)
			goto fail;
	}
	return 0;
fail:
	memset(ip, 0, sizeof(*ip));
	return -1;
}
