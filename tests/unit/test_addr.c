/* tests/unit/test_addr.c - unit tests for lib/addr.c
 *
 * Table-driven: envelope addresses with expected flags and fields, RFC
 * length edges built at run time, domain syntax and FQDN, IP parsing, CIDR
 * matching (IPv4, IPv6, IPv4-mapped), literals, and every hostile string
 * (hostile.h) through addr_parse() and the other parsers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <sys/socket.h>

#include "addr.h"
#include "hostile.h"

#define NUL_  ADDR_NULL
#define BAD   ADDR_BAD_SYNTAX
#define NOBR  ADDR_NO_BRACKETS
#define NODOM ADDR_NO_DOMAIN
#define LIT   ADDR_DOMAIN_LITERAL
#define NFQ   ADDR_NON_FQDN
#define QUO   ADDR_QUOTED
#define SRC   ADDR_SOURCE_ROUTE
#define LONG  ADDR_TOO_LONG
#define UTF8  ADDR_UTF8

struct addr_case {
	const char *in;
	unsigned flags;     /* expected flags, under mask */
	unsigned mask;      /* 0: compare all flags */
	const char *local;  /* NULL: not checked */
	const char *domain; /* NULL: not checked */
	const char *full;   /* NULL: not checked */
	const char *reason; /* NULL: not checked */
};

static const struct addr_case addr_cases[] = {
	/* good */
	{ "<user@example.org>", 0, 0, "user", "example.org", "user@example.org", NULL },
	{ "<User.Name+tag@Example.ORG>", 0, 0, "User.Name+tag", "example.org",
	  "User.Name+tag@example.org", NULL },
	{ "<user@EXAMPLE.ORG>", 0, 0, "user", "example.org", "user@example.org", NULL },
	{ "<user@example.org>   ", 0, 0, "user", "example.org", "user@example.org", NULL },
	{ "  <user@example.org>", 0, 0, NULL, NULL, "user@example.org", NULL },
	{ "<!#$%&'*+-/=?^_`{|}~@example.org>", 0, 0, "!#$%&'*+-/=?^_`{|}~", "example.org", NULL,
	  NULL },
	{ "<a@b.c>", 0, 0, "a", "b.c", "a@b.c", NULL },
	{ "<user@a-b.example>", 0, 0, NULL, "a-b.example", NULL, NULL },
	{ "<user@a--b.example>", 0, 0, NULL, "a--b.example", NULL, NULL },
	{ "<user@1example.com>", 0, 0, NULL, "1example.com", NULL, NULL },
	{ "<user@123.example>", 0, 0, NULL, NULL, NULL, NULL },
	{ "<user@example.c0m>", 0, 0, NULL, NULL, NULL, NULL },
	{ "<user@xn--bcher-kva.example>", 0, 0, NULL, NULL, NULL, NULL },
	{ "<user@a.b.c.d.e.example>", 0, 0, NULL, NULL, NULL, NULL },
	{ "<first.last@example.org>", 0, 0, "first.last", NULL, NULL, NULL },
	{ "<a.b.c@example.org>", 0, 0, "a.b.c", NULL, NULL, NULL },
	{ "<%@example.org>", 0, 0, "%", NULL, NULL, NULL },

	/* null path */
	{ "<>", NUL_, 0, "", "", "", NULL },
	{ "<>   ", NUL_, 0, "", "", "", NULL },
	{ " <>", NUL_, 0, "", "", "", NULL },

	/* without brackets: flagged, not bad by itself */
	{ "user@example.org", NOBR, 0, "user", "example.org", "user@example.org", NULL },
	{ "user@localhost", NOBR | NFQ, 0, NULL, "localhost", NULL, NULL },
	{ "", NOBR | BAD, 0, "", "", "", "empty address" },
	{ "   ", NOBR | BAD, 0, "", "", "", "empty address" },
	{ "user@example.org>", NOBR | BAD, NOBR | BAD, NULL, NULL, NULL, NULL },

	/* no domain */
	{ "<postmaster>", NODOM, 0, "postmaster", "", "postmaster", NULL },
	{ "<PostMaster>", NODOM, 0, "PostMaster", "", "PostMaster", NULL },
	{ "postmaster", NOBR | NODOM, 0, "postmaster", "", "postmaster", NULL },
	{ "<user>", NODOM | BAD, 0, "user", "", "user", "missing domain" },
	{ "<abuse>", NODOM | BAD, 0, "abuse", "", "abuse", "missing domain" },
	{ "<\"postmaster\">", NODOM | BAD | QUO, 0, NULL, NULL, NULL, NULL },
	{ "<postmaster@>", BAD | NFQ, 0, "postmaster", "", "postmaster@", "empty domain" },

	/* source routes: dropped and flagged */
	{ "<@a.example,@b.example:user@c.example>", SRC, 0, "user", "c.example", "user@c.example",
	  NULL },
	{ "<@a.example:user@c.example>", SRC, 0, "user", "c.example", "user@c.example", NULL },
	{ "<@A.EXAMPLE:user@c.example>", SRC, 0, NULL, NULL, "user@c.example", NULL },
	{ "<@:user@c.example>", SRC | BAD, 0, "user", "c.example", NULL, "invalid source route" },
	{ "<@a.example,:user@c.example>", SRC | BAD, 0, NULL, NULL, NULL, "invalid source route" },
	{ "<@a.example,b.example:user@c.example>", SRC | BAD, 0, NULL, NULL, NULL,
	  "invalid source route" },
	{ "<@a_b.example:user@c.example>", SRC | BAD, 0, NULL, NULL, NULL, "invalid source route" },
	{ "<@[192.0.2.1]:user@c.example>", SRC | BAD, 0, NULL, NULL, NULL, "invalid source route" },
	{ "<@example.org>", SRC | BAD, SRC | BAD, "", "example.org", NULL, "invalid source route" },
	/* an unquoted local part ends at the last '@': the domain stays usable */
	{ "<a@b@example.org>", BAD, BAD, "a@b", "example.org", "a@b@example.org", NULL },
	{ "<a@b@[192.0.2.1]>", BAD | LIT, BAD | LIT, "a@b", "[192.0.2.1]", NULL, NULL },
	{ "<Macro Error@e8.example.com>", BAD, BAD, "Macro Error", "e8.example.com", NULL, NULL },

	/* quoted local parts */
	{ "<\"john doe\"@example.org>", QUO, 0, "\"john doe\"", "example.org",
	  "\"john doe\"@example.org", NULL },
	{ "<\"a\\\"b\"@example.org>", QUO, 0, "\"a\\\"b\"", NULL, NULL, NULL },
	{ "<\"a\\\\b\"@example.org>", QUO, 0, "\"a\\\\b\"", NULL, NULL, NULL },
	{ "<\"a@b\"@example.org>", QUO, 0, "\"a@b\"", "example.org", NULL, NULL },
	{ "<\"\"@example.org>", QUO, 0, "\"\"", NULL, NULL, NULL },
	{ "<\"a..b\"@example.org>", QUO, 0, NULL, NULL, NULL, NULL },
	{ "<\"<>\"@example.org>", QUO, 0, NULL, NULL, NULL, NULL },
	{ "<\"unterminated@example.org>", QUO | BAD, QUO | BAD, NULL, NULL, NULL,
	  "unterminated quoted local part" },
	{ "<\"a\"b@example.org>", QUO | BAD, 0, "\"a\"b", "example.org", NULL,
	  "invalid character in local part" },
	{ "<\"tab\there\"@example.org>", QUO | BAD, 0, "\"tab?here\"", NULL, NULL,
	  "invalid character in local part" },
	{ "<\"caf\xc3\xa9\"@example.org>", QUO | UTF8, 0, "\"caf\xc3\xa9\"", NULL, NULL, NULL },
	{ "<\"a\\\x01\"@example.org>", QUO | BAD, 0, NULL, NULL, NULL,
	  "invalid quoted pair in local part" },
	{ "<\"a\r\nb\"@example.org>", QUO | BAD, 0, "\"a??b\"", NULL, NULL, NULL },
	{ "<\"a\\\">", QUO | BAD | NODOM, 0, NULL, NULL, NULL, "unterminated quoted local part" },

	/* address literals */
	{ "<user@[192.0.2.1]>", LIT, 0, "user", "[192.0.2.1]", "user@[192.0.2.1]", NULL },
	{ "<user@[IPv6:2001:db8::1]>", LIT, 0, NULL, "[IPv6:2001:db8::1]", NULL, NULL },
	{ "<user@[ipv6:2001:DB8::1]>", LIT, 0, NULL, "[ipv6:2001:DB8::1]", NULL, NULL },
	{ "<user@[IPv6:::ffff:192.0.2.1]>", LIT, 0, NULL, NULL, NULL, NULL },
	{ "<user@[IPv6:::1]>", LIT, 0, NULL, NULL, NULL, NULL },
	{ "<user@[2001:db8::1]>", LIT | BAD, 0, NULL, NULL, NULL, "invalid address literal" },
	{ "<user@[IPv6:192.0.2.1]>", LIT | BAD, 0, NULL, NULL, NULL, NULL },
	{ "<user@[300.1.1.1]>", LIT | BAD, 0, NULL, NULL, NULL, NULL },
	{ "<user@[1.2.3]>", LIT | BAD, 0, NULL, NULL, NULL, NULL },
	{ "<user@[192.0.2.1>", LIT | BAD, 0, NULL, NULL, NULL, NULL },
	{ "<user@[192.0.2.1]x>", LIT | BAD, 0, NULL, NULL, NULL, NULL },
	{ "<user@[]>", LIT | BAD, 0, NULL, NULL, NULL, NULL },
	{ "<user@[ 192.0.2.1]>", LIT | BAD, 0, NULL, NULL, NULL, NULL },
	{ "<user@[tag:content]>", LIT | BAD, 0, NULL, NULL, NULL, NULL },
	{ "<user@[IPv6:2001:db8::1%eth0]>", LIT | BAD, 0, NULL, NULL, NULL, NULL },
	{ "<user@[IPv6:1111:2222:3333:4444:5555:6666:7777:8888:9999]>", LIT | BAD, 0, NULL, NULL,
	  NULL, NULL },

	/* not fully qualified: flagged, syntax fine */
	{ "<user@localhost>", NFQ, 0, NULL, "localhost", NULL, NULL },
	{ "<user@example.123>", NFQ, 0, NULL, "example.123", NULL, NULL },
	{ "<user@192.0.2.1>", NFQ, 0, NULL, "192.0.2.1", NULL, NULL },
	{ "<user@a>", NFQ, 0, NULL, NULL, NULL, NULL },

	/* bad domains */
	{ "<user@a..b>", BAD | NFQ, 0, NULL, "a..b", NULL, "empty label in domain" },
	{ "<user@-a.com>", BAD | NFQ, 0, NULL, NULL, NULL,
	  "hyphen at start or end of domain label" },
	{ "<user@a-.com>", BAD | NFQ, 0, NULL, NULL, NULL,
	  "hyphen at start or end of domain label" },
	{ "<user@example.org.>", BAD, 0, NULL, "example.org.", NULL, "empty label in domain" },
	{ "<user@.example.org>", BAD | NFQ, 0, NULL, NULL, NULL, "empty label in domain" },
	{ "<user@>", BAD | NFQ, 0, "user", "", "user@", "empty domain" },
	{ "<user@exa mple.org>", BAD | NFQ, 0, NULL, NULL, NULL, "invalid character in domain" },
	{ "<user@example_org.com>", BAD | NFQ, 0, NULL, NULL, NULL, "invalid character in domain" },
	/* RFC 6531 (SMTPUTF8): well-formed UTF-8 in local part and domain */
	{ "<user@ex\xc3\xa4mple.org>", UTF8, 0, NULL, "ex\xc3\xa4mple.org", NULL, NULL },
	{ "<user@\xe4\xbe\x8b\xe5\xad\x90>", UTF8 | NFQ, 0, NULL, NULL, NULL, NULL },
	{ "<user@ex\xc3mple.org>", BAD | NFQ, 0, NULL, "ex?mple.org", NULL,
	  "invalid character in domain" },
	{ "<user@example.org\r\n>", BAD | NFQ, 0, NULL, "example.org??", NULL,
	  "invalid character in domain" },
	{ "<a@b@example.org>", BAD, 0, "a@b", "example.org", NULL,
	  "invalid character in local part" },

	/* bad local parts */
	{ "<.user@example.org>", BAD, 0, NULL, NULL, NULL, "misplaced dot in local part" },
	{ "<user.@example.org>", BAD, 0, NULL, NULL, NULL, "misplaced dot in local part" },
	{ "<us..er@example.org>", BAD, 0, NULL, NULL, NULL, "misplaced dot in local part" },
	{ "<.@example.org>", BAD, 0, NULL, NULL, NULL, "misplaced dot in local part" },
	{ "<us er@example.org>", BAD, 0, NULL, NULL, NULL, "invalid character in local part" },
	{ "<us\x01"
	  "er@example.org>",
	  BAD, 0, "us?er", NULL, NULL, "invalid character in local part" },
	{ "<us\rer@example.org>", BAD, 0, "us?er", NULL, NULL, "invalid character in local part" },
	{ "<us\x7f@example.org>", BAD, 0, "us?", NULL, NULL, "invalid character in local part" },
	{ "<caf\xc3\xa9@example.org>", UTF8, 0, "caf\xc3\xa9", NULL, "caf\xc3\xa9@example.org",
	  NULL },
	{ "<\xf0\x9f\x93\xa7@example.org>", UTF8, 0, "\xf0\x9f\x93\xa7", NULL, NULL, NULL },
	/* malformed UTF-8: overlong, surrogate, truncated, stray continuation */
	{ "<caf\xc0\xa9@example.org>", BAD, 0, "caf??", NULL, NULL,
	  "invalid character in local part" },
	{ "<\xed\xa0\x80x@example.org>", BAD, 0, "???x", NULL, NULL,
	  "invalid character in local part" },
	{ "<caf\xc3@example.org>", BAD, 0, "caf?", NULL, NULL, "invalid character in local part" },
	{ "<\x80user@example.org>", BAD, 0, "?user", NULL, NULL,
	  "invalid character in local part" },
	{ "<\xf4\x90\x80\x80@example.org>", BAD, 0, "????", NULL, NULL,
	  "invalid character in local part" },
	{ "<us(er)@example.org>", BAD, 0, NULL, NULL, NULL, "invalid character in local part" },
	{ "<us,er@example.org>", BAD, 0, NULL, NULL, NULL, "invalid character in local part" },
	{ "<a\\b@example.org>", BAD, 0, NULL, NULL, NULL, "invalid character in local part" },

	/* bracket and structure errors */
	{ "<user@example.org", BAD, 0, "user", "example.org", NULL, "missing closing bracket" },
	{ "<", BAD, 0, "", "", "", "missing closing bracket" },
	{ "<user@example.org> SIZE=100", BAD, BAD, NULL, NULL, NULL, "text after address" },
	{ "<user@example.org>\r\n", BAD, BAD, NULL, NULL, NULL, "text after address" },
	{ "<<user@example.org>>", BAD, BAD, NULL, NULL, NULL, NULL },
	{ "<user@example.org>>", BAD, BAD, NULL, NULL, NULL, NULL },
	{ "\t<user@example.org>", NOBR | BAD, NOBR | BAD, NULL, NULL, NULL, NULL },
	{ "<user@example.org>\t", BAD, BAD, NULL, NULL, NULL, NULL },
	{ "<@>", SRC | BAD, SRC | BAD, NULL, NULL, NULL, NULL },
	{ "<:>", BAD, BAD, NULL, NULL, NULL, NULL },
	{ "<\">", QUO | BAD, QUO | BAD, NULL, NULL, NULL, NULL },
};

/* Fields terminated, in bounds, free of control bytes, 8-bit bytes only in
 * an SMTPUTF8 address, and reason set exactly when the syntax is bad. */
static void check_invariants(const struct mailaddr *a)
{
	const char *fields[] = { a->local, a->domain, a->full };
	const size_t sizes[] = { sizeof(a->local), sizeof(a->domain), sizeof(a->full) };
	size_t i, j;

	for (i = 0; i < 3; i++) {
		size_t n = strnlen(fields[i], sizes[i]);

		assert_true(n < sizes[i]);
		for (j = 0; j < n; j++) {
			unsigned char c = (unsigned char)fields[i][j];

			assert_true(c >= 0x20 && c != 0x7f);
			if (c >= 0x80)
				assert_true(a->flags & ADDR_UTF8);
		}
	}
	assert_true(strlen(a->local) <= ADDR_LOCAL_MAX);
	assert_true(strlen(a->domain) <= ADDR_DOMAIN_MAX);
	assert_true(strlen(a->full) <= ADDR_MAX);
	if (a->flags & ADDR_BAD_SYNTAX)
		assert_non_null(a->reason);
	else
		assert_null(a->reason);
	for (j = 0; a->domain[j] != '\0'; j++)
		if (!(a->flags & ADDR_DOMAIN_LITERAL))
			assert_false(a->domain[j] >= 'A' && a->domain[j] <= 'Z');
}

static void test_addr_table(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(addr_cases) / sizeof(addr_cases[0]); i++) {
		const struct addr_case *c = &addr_cases[i];
		unsigned mask = c->mask ? c->mask : ~0u;
		struct mailaddr a;

		addr_parse(c->in, &a);
		check_invariants(&a);
		if ((a.flags & mask) != c->flags || (c->local && strcmp(a.local, c->local) != 0) ||
		    (c->domain && strcmp(a.domain, c->domain) != 0) ||
		    (c->full && strcmp(a.full, c->full) != 0) ||
		    (c->reason && (!a.reason || strcmp(a.reason, c->reason))))
			print_message("case %zu: flags 0x%03x reason %s\n", i, a.flags,
			              a.reason ? a.reason : "-");
		assert_int_equal(a.flags & mask, c->flags);
		if (c->local)
			assert_string_equal(a.local, c->local);
		if (c->domain)
			assert_string_equal(a.domain, c->domain);
		if (c->full)
			assert_string_equal(a.full, c->full);
		if (c->reason)
			assert_string_equal(a.reason, c->reason);
	}
}

static void test_addr_null_input(void **state)
{
	struct mailaddr a;

	(void)state;
	memset(&a, 'X', sizeof(a));
	addr_parse(NULL, &a);
	check_invariants(&a);
	assert_int_equal(a.flags, ADDR_BAD_SYNTAX);
	assert_string_equal(a.full, "");
}

/* Build "<" + local + "@" + domain + ">" in buf. */
static void build(char *buf, size_t size, const char *local, const char *domain)
{
	int n = snprintf(buf, size, "<%s@%s>", local, domain);

	assert_true(n > 0 && (size_t)n < size);
}

/* A domain of exactly len bytes made of 63-byte labels. */
static void make_domain(char *buf, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = (i % 64 == 63) ? '.' : (char)('a' + (i / 64) % 26);
	if (len > 0 && buf[len - 1] == '.')
		buf[len - 1] = 'z';
	buf[len] = '\0';
}

static void test_addr_lengths(void **state)
{
	char local[ADDR_LOCAL_MAX + 2];
	char domain[ADDR_DOMAIN_MAX + 2];
	char buf[1024];
	struct mailaddr a;

	(void)state;
	/* local part 64: fine; 65: too long, cut to 64 */
	memset(local, 'l', ADDR_LOCAL_MAX);
	local[ADDR_LOCAL_MAX] = '\0';
	build(buf, sizeof(buf), local, "example.org");
	addr_parse(buf, &a);
	check_invariants(&a);
	assert_int_equal(a.flags, 0);
	assert_string_equal(a.local, local);

	local[ADDR_LOCAL_MAX] = 'l';
	local[ADDR_LOCAL_MAX + 1] = '\0';
	build(buf, sizeof(buf), local, "example.org");
	addr_parse(buf, &a);
	check_invariants(&a);
	assert_int_equal(a.flags, ADDR_TOO_LONG | ADDR_BAD_SYNTAX);
	assert_string_equal(a.reason, "local part too long");
	assert_int_equal(strlen(a.local), ADDR_LOCAL_MAX);
	assert_memory_equal(a.local, local, ADDR_LOCAL_MAX);
	assert_string_equal(a.domain, "example.org");

	/* quoted local part of 64 bytes, quotes included */
	memset(local, 'q', ADDR_LOCAL_MAX);
	local[0] = local[ADDR_LOCAL_MAX - 1] = '"';
	local[ADDR_LOCAL_MAX] = '\0';
	build(buf, sizeof(buf), local, "example.org");
	addr_parse(buf, &a);
	check_invariants(&a);
	assert_int_equal(a.flags, ADDR_QUOTED);

	/* domain 253: FQDN; 255: syntax fine but not a DNS name; 256: cut */
	make_domain(domain, 253);
	build(buf, sizeof(buf), "u", domain);
	addr_parse(buf, &a);
	check_invariants(&a);
	assert_int_equal(a.flags, 0);
	assert_string_equal(a.domain, domain);

	make_domain(domain, ADDR_DOMAIN_MAX);
	build(buf, sizeof(buf), "u", domain);
	addr_parse(buf, &a);
	check_invariants(&a);
	assert_int_equal(a.flags, ADDR_NON_FQDN);
	assert_string_equal(a.domain, domain);

	make_domain(domain, ADDR_DOMAIN_MAX + 1);
	build(buf, sizeof(buf), "u", domain);
	addr_parse(buf, &a);
	check_invariants(&a);
	assert_true(a.flags & ADDR_TOO_LONG);
	assert_true(a.flags & ADDR_BAD_SYNTAX);
	assert_string_equal(a.reason, "domain too long");
	assert_int_equal(strlen(a.domain), ADDR_DOMAIN_MAX);
	assert_memory_equal(a.domain, domain, ADDR_DOMAIN_MAX);

	/* both at their limits: full is exactly ADDR_MAX */
	memset(local, 'l', ADDR_LOCAL_MAX);
	local[ADDR_LOCAL_MAX] = '\0';
	make_domain(domain, ADDR_DOMAIN_MAX);
	build(buf, sizeof(buf), local, domain);
	addr_parse(buf, &a);
	check_invariants(&a);
	assert_int_equal(strlen(a.full), ADDR_MAX);
	assert_false(a.flags & ADDR_BAD_SYNTAX);

	/* both too long */
	local[ADDR_LOCAL_MAX] = 'l';
	local[ADDR_LOCAL_MAX + 1] = '\0';
	make_domain(domain, ADDR_DOMAIN_MAX + 1);
	build(buf, sizeof(buf), local, domain);
	addr_parse(buf, &a);
	check_invariants(&a);
	assert_int_equal(strlen(a.full), ADDR_MAX);
	assert_string_equal(a.reason, "local part too long");

	/* labels of 63 and 64 bytes */
	memset(domain, 'd', 63);
	strcpy(domain + 63, ".example");
	build(buf, sizeof(buf), "u", domain);
	addr_parse(buf, &a);
	assert_int_equal(a.flags, 0);
	memset(domain, 'd', 64);
	strcpy(domain + 64, ".example");
	build(buf, sizeof(buf), "u", domain);
	addr_parse(buf, &a);
	assert_int_equal(a.flags, ADDR_BAD_SYNTAX | ADDR_NON_FQDN);
	assert_string_equal(a.reason, "domain label too long");
}

/* 10,000-byte inputs of several shapes. */
static void test_addr_huge(void **state)
{
	static char buf[10001];
	struct mailaddr a;

	(void)state;
	memset(buf, 'a', 10000);
	buf[10000] = '\0';
	addr_parse(buf, &a);
	check_invariants(&a);
	assert_true(a.flags & ADDR_TOO_LONG);
	assert_true(a.flags & ADDR_BAD_SYNTAX);

	buf[0] = '<';
	buf[5000] = '@';
	buf[9999] = '>';
	addr_parse(buf, &a);
	check_invariants(&a);
	assert_int_equal(a.flags & (ADDR_TOO_LONG | ADDR_BAD_SYNTAX),
	                 ADDR_TOO_LONG | ADDR_BAD_SYNTAX);

	memset(buf, '"', 10000);
	addr_parse(buf, &a);
	check_invariants(&a);
	assert_true(a.flags & ADDR_BAD_SYNTAX);

	memset(buf, '\\', 10000);
	buf[0] = '"';
	addr_parse(buf, &a);
	check_invariants(&a);
	assert_true(a.flags & ADDR_BAD_SYNTAX);

	memset(buf, '@', 10000);
	addr_parse(buf, &a);
	check_invariants(&a);
	assert_true(a.flags & ADDR_BAD_SYNTAX);

	memset(buf, ' ', 10000);
	addr_parse(buf, &a);
	check_invariants(&a);
	assert_true(a.flags & ADDR_BAD_SYNTAX);

	memset(buf, 'a', 10000);
	memcpy(buf, "<u@[", 4);
	buf[9998] = ']';
	buf[9999] = '>';
	addr_parse(buf, &a);
	check_invariants(&a);
	assert_int_equal(a.flags, ADDR_DOMAIN_LITERAL | ADDR_BAD_SYNTAX | ADDR_TOO_LONG);
}

static void test_addr_is_postmaster(void **state)
{
	static const struct {
		const char *in;
		int want;
	} cases[] = {
		{ "<postmaster>", 1 },
		{ "<Postmaster@example.org>", 1 },
		{ "<POSTMASTER@example.org>", 1 },
		{ "<abuse@example.org>", 1 },
		{ "<ABUSE>", 1 },
		{ "postmaster", 1 },
		{ "<postmaster@localhost>", 1 },
		{ "<postmaster@[192.0.2.1]>", 1 },
		{ "<@a.example:postmaster@b.example>", 1 },
		{ "<postmasters@example.org>", 0 },
		{ "<post.master@example.org>", 0 },
		{ "<\"postmaster\"@example.org>", 0 },
		{ "<>", 0 },
		{ "<user@example.org>", 0 },
		{ "<postmaster@-bad.example>", 0 },
		{ "<postmaster@example.org", 0 },
		{ "<abuse@a..b>", 0 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mailaddr a;

		addr_parse(cases[i].in, &a);
		if (addr_is_postmaster(&a) != cases[i].want)
			print_message("case %zu: %s\n", i, cases[i].in);
		assert_int_equal(addr_is_postmaster(&a), cases[i].want);
	}
	assert_int_equal(addr_is_postmaster(NULL), 0);
}

static void test_domain(void **state)
{
	static const struct {
		const char *name;
		int valid;
		int fqdn;
	} cases[] = {
		{ "example.com", 1, 1 },
		{ "EXAMPLE.COM", 1, 1 },
		{ "example.com.", 1, 1 },
		{ "a.b", 1, 1 },
		{ "a.b-c.d", 1, 1 },
		{ "123.example", 1, 1 },
		{ "example.1a", 1, 1 },
		{ "xn--bcher-kva.example", 1, 1 },
		{ "mail.example.co.uk", 1, 1 },
		{ "localhost", 1, 0 },
		{ "localhost.", 1, 0 },
		{ "a", 1, 0 },
		{ "1", 1, 0 },
		{ "example.123", 1, 0 },
		{ "1.2.3.4", 1, 0 },
		{ "a..b", 0, 0 },
		{ "-a.com", 0, 0 },
		{ "a-.com", 0, 0 },
		{ "a.-com", 0, 0 },
		{ "example.com..", 0, 0 },
		{ ".example.com", 0, 0 },
		{ ".", 0, 0 },
		{ "..", 0, 0 },
		{ "", 0, 0 },
		{ "a_b.com", 0, 0 },
		{ "exa mple.com", 0, 0 },
		{ "example.com ", 0, 0 },
		{ "ex\xc3\xa4mple.com", 0, 0 },
		{ "[192.0.2.1]", 0, 0 },
		{ "example.com\r\n", 0, 0 },
		{ "*.example.com", 0, 0 },
		{ "a/b.com", 0, 0 },
	};
	char buf[300];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (domain_valid(cases[i].name) != cases[i].valid ||
		    domain_is_fqdn(cases[i].name) != cases[i].fqdn)
			print_message("case %zu: %s\n", i, cases[i].name);
		assert_int_equal(domain_valid(cases[i].name), cases[i].valid);
		assert_int_equal(domain_is_fqdn(cases[i].name), cases[i].fqdn);
	}
	assert_int_equal(domain_valid(NULL), 0);
	assert_int_equal(domain_is_fqdn(NULL), 0);

	/* total length: 253, 253 + ".", 254 */
	make_domain(buf, 253);
	assert_int_equal(domain_valid(buf), 1);
	assert_int_equal(domain_is_fqdn(buf), 1);
	strcat(buf, ".");
	assert_int_equal(domain_valid(buf), 1);
	make_domain(buf, 254);
	assert_int_equal(domain_valid(buf), 0);
	assert_int_equal(domain_is_fqdn(buf), 0);
	/* label length: 63, 64 */
	memset(buf, 'x', 63);
	strcpy(buf + 63, ".example");
	assert_int_equal(domain_is_fqdn(buf), 1);
	memset(buf, 'x', 64);
	strcpy(buf + 64, ".example");
	assert_int_equal(domain_valid(buf), 0);
}

static void test_ip_parse(void **state)
{
	static const struct {
		const char *s;
		int family; /* 0: must fail */
		const char *canon;
	} cases[] = {
		{ "192.0.2.1", AF_INET, "192.0.2.1" },
		{ "0.0.0.0", AF_INET, "0.0.0.0" },
		{ "255.255.255.255", AF_INET, "255.255.255.255" },
		{ "::1", AF_INET6, "::1" },
		{ "::", AF_INET6, "::" },
		{ "2001:db8::1", AF_INET6, "2001:db8::1" },
		{ "2001:0DB8:0000:0000:0000:0000:0000:0001", AF_INET6, "2001:db8::1" },
		{ "::ffff:192.0.2.1", AF_INET6, "::ffff:192.0.2.1" },
		{ "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", AF_INET6,
		  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" },
		{ "256.0.0.1", 0, NULL },
		{ "1.2.3", 0, NULL },
		{ "1.2.3.4.5", 0, NULL },
		{ "01.2.3.4", 0, NULL },
		{ "0x7f.0.0.1", 0, NULL },
		{ "1.2.3.4 ", 0, NULL },
		{ " 1.2.3.4", 0, NULL },
		{ "1.2.3.4/24", 0, NULL },
		{ "[::1]", 0, NULL },
		{ "2001:db8::1%eth0", 0, NULL },
		{ "fe80::1::2", 0, NULL },
		{ "2001:db8:::1", 0, NULL },
		{ "1:2:3:4:5:6:7:8:9", 0, NULL },
		{ "", 0, NULL },
		{ "localhost", 0, NULL },
		{ "\xff\xfe", 0, NULL },
		{ "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.2555", 0, NULL },
	};
	struct ipaddr ip;
	char buf[64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = ip_parse(cases[i].s, &ip);

		if ((r == 0) != (cases[i].family != 0))
			print_message("case %zu: %s -> %d\n", i, cases[i].s, r);
		if (cases[i].family == 0) {
			assert_int_equal(r, -1);
			continue;
		}
		assert_int_equal(r, 0);
		assert_int_equal(ip.family, cases[i].family);
		ip_format(&ip, buf, sizeof(buf));
		assert_string_equal(buf, cases[i].canon);
	}
	assert_int_equal(ip_parse(NULL, &ip), -1);

	/* ip_format: too small or no address gives "" */
	assert_int_equal(ip_parse("2001:db8::1", &ip), 0);
	memset(buf, 'X', sizeof(buf));
	ip_format(&ip, buf, 5);
	assert_string_equal(buf, "");
	ip_format(&ip, buf, 12);
	assert_string_equal(buf, "2001:db8::1");
	memset(&ip, 0, sizeof(ip));
	ip_format(&ip, buf, sizeof(buf));
	assert_string_equal(buf, "");
	ip_format(NULL, buf, sizeof(buf));
	assert_string_equal(buf, "");
	ip_format(&ip, NULL, 0);
}

static void test_ip_cidr(void **state)
{
	static const struct {
		const char *s;
		int ok;
		int len;
	} cases[] = {
		{ "192.0.2.0/24", 1, 24 },  { "10.0.0.1", 1, 32 },      { "0.0.0.0/0", 1, 0 },
		{ "10.0.0.0/8", 1, 8 },     { "10.0.0.0/008", 1, 8 },   { "1.2.3.4/32", 1, 32 },
		{ "2001:db8::/32", 1, 32 }, { "::1", 1, 128 },          { "::/0", 1, 0 },
		{ "::/128", 1, 128 },       { "::ffff:0:0/96", 1, 96 }, { "1.2.3.4/33", 0, 0 },
		{ "::/129", 0, 0 },         { "1.2.3.4/", 0, 0 },       { "/24", 0, 0 },
		{ "1.2.3.4/-1", 0, 0 },     { "1.2.3.4/+8", 0, 0 },     { "1.2.3.4/2x", 0, 0 },
		{ "1.2.3.4/ 8", 0, 0 },     { "1.2.3.4/8 ", 0, 0 },     { "1.2.3.4/0008", 0, 0 },
		{ "1.2.3.4/8/8", 0, 0 },    { "1.2.3/8", 0, 0 },        { "", 0, 0 },
		{ "example.com/8", 0, 0 },
	};
	struct ipaddr net;
	size_t i;
	int len;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = ip_parse_cidr(cases[i].s, &net, &len);

		if ((r == 0) != (cases[i].ok != 0))
			print_message("case %zu: %s -> %d\n", i, cases[i].s, r);
		assert_int_equal(r, cases[i].ok ? 0 : -1);
		if (cases[i].ok)
			assert_int_equal(len, cases[i].len);
	}
	assert_int_equal(ip_parse_cidr(NULL, &net, &len), -1);
}

static void test_ip_in_net(void **state)
{
	static const struct {
		const char *ip;
		const char *net;
		int want;
	} cases[] = {
		{ "192.0.2.1", "192.0.2.0/24", 1 },
		{ "192.0.2.255", "192.0.2.0/24", 1 },
		{ "192.0.3.1", "192.0.2.0/24", 0 },
		{ "10.1.2.3", "10.0.0.0/8", 1 },
		{ "11.0.0.0", "10.0.0.0/8", 0 },
		{ "203.0.113.9", "0.0.0.0/0", 1 },
		{ "192.0.2.1", "192.0.2.1", 1 },
		{ "192.0.2.2", "192.0.2.1", 0 },
		{ "192.0.2.130", "192.0.2.128/25", 1 },
		{ "192.0.2.127", "192.0.2.128/25", 0 },
		{ "172.31.255.255", "172.16.0.0/12", 1 },
		{ "172.32.0.0", "172.16.0.0/12", 0 },
		{ "192.0.2.1", "192.0.2.77/24", 1 },
		{ "2001:db8::1", "2001:db8::/32", 1 },
		{ "2001:db9::1", "2001:db8::/32", 0 },
		{ "2001:db8::1", "2001:db8::1/128", 1 },
		{ "2001:db8::2", "2001:db8::1/128", 0 },
		{ "2001:db8::7fff:0:0:0", "2001:db8::/65", 1 },
		{ "2001:db8::8000:0:0:0", "2001:db8::/65", 0 },
		{ "fe80::1", "::/0", 1 },
		/* IPv4-mapped compares as IPv4 */
		{ "::ffff:192.0.2.1", "192.0.2.0/24", 1 },
		{ "::ffff:192.0.3.1", "192.0.2.0/24", 0 },
		{ "::ffff:10.0.0.1", "0.0.0.0/0", 1 },
		{ "192.0.2.1", "::ffff:192.0.2.0/120", 1 },
		{ "192.0.3.1", "::ffff:192.0.2.0/120", 0 },
		{ "192.0.2.1", "::ffff:0:0/96", 1 },
		{ "::ffff:192.0.2.1", "::ffff:192.0.2.0/120", 1 },
		/* different families never match */
		{ "192.0.2.1", "2001:db8::/32", 0 },
		{ "2001:db8::1", "0.0.0.0/0", 0 },
		{ "192.0.2.1", "::/0", 0 },
		{ "::ffff:192.0.2.1", "::/0", 0 },
		{ "::192.0.2.1", "192.0.2.0/24", 0 },
	};
	struct ipaddr ip, net;
	size_t i;
	int len;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(ip_parse(cases[i].ip, &ip), 0);
		assert_int_equal(ip_parse_cidr(cases[i].net, &net, &len), 0);
		if (ip_in_net(&ip, &net, len) != cases[i].want)
			print_message("case %zu: %s in %s\n", i, cases[i].ip, cases[i].net);
		assert_int_equal(ip_in_net(&ip, &net, len), cases[i].want);
	}
	/* bad lengths and empty addresses never match */
	assert_int_equal(ip_parse("10.0.0.1", &ip), 0);
	assert_int_equal(ip_parse("10.0.0.0", &net), 0);
	assert_int_equal(ip_in_net(&ip, &net, 8), 1);
	assert_int_equal(ip_in_net(&ip, &net, 33), 0);
	assert_int_equal(ip_in_net(&ip, &net, -1), 0);
	assert_int_equal(ip_in_net(NULL, &net, 8), 0);
	assert_int_equal(ip_in_net(&ip, NULL, 8), 0);
	memset(&ip, 0, sizeof(ip));
	memset(&net, 0, sizeof(net));
	assert_int_equal(ip_in_net(&ip, &net, 0), 0);
}

static void test_ip_loopback(void **state)
{
	static const struct {
		const char *s;
		int want;
	} cases[] = {
		{ "127.0.0.1", 1 },
		{ "127.255.255.255", 1 },
		{ "127.1.2.3", 1 },
		{ "128.0.0.1", 0 },
		{ "126.255.255.255", 0 },
		{ "0.0.0.0", 0 },
		{ "::1", 1 },
		{ "::2", 0 },
		{ "::", 0 },
		{ "::ffff:127.0.0.1", 1 },
		{ "::127.0.0.1", 0 },
		{ "2001:db8::1", 0 },
	};
	struct ipaddr ip;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(ip_parse(cases[i].s, &ip), 0);
		assert_int_equal(ip_is_loopback(&ip), cases[i].want);
	}
	assert_int_equal(ip_is_loopback(NULL), 0);
	memset(&ip, 0, sizeof(ip));
	assert_int_equal(ip_is_loopback(&ip), 0);
}

static void test_ip_literal(void **state)
{
	static const struct {
		const char *s;
		int family; /* 0: must fail */
	} cases[] = {
		{ "[192.0.2.1]", AF_INET },
		{ "[IPv6:2001:db8::1]", AF_INET6 },
		{ "[ipv6:::1]", AF_INET6 },
		{ "[IPV6:::ffff:192.0.2.1]", AF_INET6 },
		{ "[IPv6:ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]", AF_INET6 },
		{ "[2001:db8::1]", 0 },
		{ "[::1]", 0 },
		{ "192.0.2.1", 0 },
		{ "[192.0.2.1", 0 },
		{ "192.0.2.1]", 0 },
		{ "[]", 0 },
		{ "[", 0 },
		{ "", 0 },
		{ "[IPv6:]", 0 },
		{ "[IPv6:192.0.2.1]", 0 },
		{ "[IPv4:192.0.2.1]", 0 },
		{ "[ 192.0.2.1]", 0 },
		{ "[192.0.2.1] ", 0 },
		{ "[192.0.2.1]]", 0 },
		{ "[[192.0.2.1]]", 0 },
		{ "[999.0.0.1]", 0 },
		{ "[IPv6 :::1]", 0 },
		{ "[IPv6:2001:db8::1%lo]", 0 },
		{ "[IPv6:ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.2555]", 0 },
		{ "[tag:content]", 0 },
	};
	struct ipaddr ip;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = ip_parse_literal(cases[i].s, &ip);

		if ((r == 0) != (cases[i].family != 0))
			print_message("case %zu: %s -> %d\n", i, cases[i].s, r);
		if (cases[i].family == 0) {
			assert_int_equal(r, -1);
			assert_int_equal(ip.family, 0);
		} else {
			assert_int_equal(r, 0);
			assert_int_equal(ip.family, cases[i].family);
		}
	}
	assert_int_equal(ip_parse_literal(NULL, &ip), -1);
}

#define LDH "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-"

/* Does the C string s (up to its NUL) hold a byte no address may have? */
static int has_forbidden_byte(const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		/* a space is allowed only at the ends (trimmed) or quoted;
		 * leave it to the table tests */
		if ((c < 0x20 && c != ' ') || c >= 0x7f)
			return 1;
	}
	return 0;
}

static void test_addr_hostile(void **state)
{
	const struct hostile *h;

	(void)state;
	for (h = hostile_strings; h->name != NULL; h++) {
		struct mailaddr a;
		struct ipaddr ip;
		int len;

		memset(&a, 'X', sizeof(a));
		addr_parse(h->s, &a);
		check_invariants(&a);
		if (has_forbidden_byte(h->s)) {
			if (!(a.flags & ADDR_BAD_SYNTAX))
				print_message("%s: not flagged\n", h->name);
			assert_true(a.flags & ADDR_BAD_SYNTAX);
		}
		if (strlen(h->s) > ADDR_MAX + 2)
			assert_true(a.flags & ADDR_BAD_SYNTAX);
		/* a hostile string passes as a domain only if it is plain
		 * LDH (the part before an embedded NUL may be); none is an
		 * IP address or a literal */
		if (domain_valid(h->s))
			assert_int_equal(strspn(h->s, LDH "."), strlen(h->s));
		assert_int_equal(ip_parse(h->s, &ip), -1);
		assert_int_equal(ip_parse_cidr(h->s, &ip, &len), -1);
		assert_int_equal(ip_parse_literal(h->s, &ip), -1);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr_table),         cmocka_unit_test(test_addr_null_input),
		cmocka_unit_test(test_addr_lengths),       cmocka_unit_test(test_addr_huge),
		cmocka_unit_test(test_addr_is_postmaster), cmocka_unit_test(test_domain),
		cmocka_unit_test(test_ip_parse),           cmocka_unit_test(test_ip_cidr),
		cmocka_unit_test(test_ip_in_net),          cmocka_unit_test(test_ip_loopback),
		cmocka_unit_test(test_ip_literal),         cmocka_unit_test(test_addr_hostile),
	};

	hostile_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
