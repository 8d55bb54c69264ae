/* tests/unit/test_rfc5322.c - unit tests for lib/rfc5322.c
 *
 * Table-driven: dates (current and obsolete forms, comments, impossible
 * values, zones), msg-ids, and mailbox lists (display names, quoted
 * commas, groups, routes, literals, the '@' in an unquoted display name,
 * unbalanced quotes and comments); every hostile string (hostile.h) through
 * each parser, which must return without reading or writing out of bounds
 * (ASan) and with a sane answer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "hostile.h"
#include "rfc5322.h"

static void test_dates(void **state)
{
	static const struct {
		const char *in;
		long long want; /* -1: unparsable */
	} cases[] = {
		{ "Tue, 01 Dec 2026 12:00:00 +0000", 1796126400 },
		{ "1 Dec 2026 12:00:00 +0000", 1796126400 },
		{ "Tue, 1 Dec 2026 13:30:00 +0130", 1796126400 },
		{ "Tue, 01 Dec 2026 07:00:00 -0500", 1796126400 },
		{ "Tue, 01 Dec 2026 12:00 +0000", 1796126400 },
		{ "Tue, 01 Dec 26 07:00:00 EST", 1796126400 },
		{ "Tue, 01 Dec 126 12:00:00 GMT", 1796126400 },
		{ "  Tue , 01 (first) Dec\r\n 2026 12:00:00 +0000 (UTC)  ", 1796126400 },
		{ "Tue, 01 Dec 2026 12:00:00 Z", 1796126400 },
		{ "Tue, 01 Dec 2026 12:00:00 UT", 1796126400 },
		{ "Sat, 29 Feb 2020 00:00:00 +0000", 1582934400 },
		{ "Sun, 29 Feb 2026 00:00:00 +0000", -1 },
		{ "Tue, 01 Dec 2026 24:00:00 +0000", -1 },
		{ "Tue, 01 Dec 2026 12:60:00 +0000", -1 },
		{ "Tue, 01 Dec 2026 12:00:00 +9960", -1 },
		{ "Tue, 01 Dec 2026 12:00:00", -1 },
		{ "Tue, 01 Dec 2026 12:00:00 +0000 junk", -1 },
		{ "Tue 01 Dec 2026 12:00:00 +0000", -1 },
		{ "01 Foo 2026 12:00:00 +0000", -1 },
		{ "2026-12-01T12:00:00Z", -1 },
		{ "Tue, 01 Dec 2026 12:00:00 +0000 (unclosed", -1 },
		{ "", -1 },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		time_t t = 0;
		int rc = rfc5322_date(cases[i].in, &t);

		if (cases[i].want < 0) {
			if (rc != -1)
				fail_msg("case %zu '%s': parsed as %lld", i, cases[i].in,
				         (long long)t);
		} else if (rc != 0 || (long long)t != cases[i].want) {
			fail_msg("case %zu '%s': rc %d t %lld, want %lld", i, cases[i].in, rc,
			         (long long)t, cases[i].want);
		}
	}
}

static void test_msgids(void **state)
{
	static const struct {
		const char *in;
		int ok;
	} cases[] = {
		{ "<abc.123@example.net>", 1 },
		{ " <abc@example.net> (comment)", 1 },
		{ "<\"quoted left\"@example.net>", 1 },
		{ "<abc@[192.0.2.1]>", 1 },
		{ "abc@example.net", 0 },
		{ "<abc@example.net", 0 },
		{ "<abc>", 0 },
		{ "<@example.net>", 0 },
		{ "<abc@>", 0 },
		{ "<a b@example.net>", 0 },
		{ "<a..b@example.net>", 0 },
		{ "<abc@example.net> <def@example.net>", 0 },
		{ "", 0 },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (rfc5322_msgid(cases[i].in) != cases[i].ok)
			fail_msg("case %zu '%s': want %d", i, cases[i].in, cases[i].ok);
}

static void test_mailboxes(void **state)
{
	static const struct {
		const char *in;
		int n;            /* -1: unparsable */
		const char *dom0; /* first domain */
		const char *dom1; /* second domain, or NULL */
	} cases[] = {
		{ "user@Example.NET", 1, "example.net", NULL },
		{ "User Name <user@example.net>", 1, "example.net", NULL },
		{ "\"Name, With Comma\" <u@a.example>, v@B.example", 2, "a.example", "b.example" },
		{ "(comment) user (more) @ example.net", 1, "example.net", NULL },
		{ "<user@example.net>", 1, "example.net", NULL },
		{ "Mr. J. Doe <j@example.net>", 1, "example.net", NULL },
		{ "<@relay.example:user@example.net>", 1, "example.net", NULL },
		{ "\"a@b\"@example.net", 1, "example.net", NULL },
		{ "user@[192.0.2.1]", 1, "192.0.2.1", NULL },
		{ "Team: a@x.example, b@y.example;", 2, "x.example", "y.example" },
		{ "=?UTF-8?B?w6k=?= <u@example.net>", 1, "example.net", NULL },
		{ "Caf\xc3\xa9 <u@example.net>", 1, "example.net", NULL },
		{ "a@x.example,,b@y.example", 2, "x.example", "y.example" },
		{ "Paypal Security", -1, NULL, NULL },
		{ "service@paypal.com <x@evil.example>", -1, NULL, NULL },
		{ "user@", -1, NULL, NULL },
		{ "@example.net", -1, NULL, NULL },
		{ "user", -1, NULL, NULL },
		{ "\"unclosed <u@example.net>", -1, NULL, NULL },
		{ "Name <u@example.net", -1, NULL, NULL },
		{ "Name u@example.net>", -1, NULL, NULL },
		{ "<u@example.net> trailing", -1, NULL, NULL },
		{ "u@exa mple.net", -1, NULL, NULL },
		{ "(unclosed u@example.net", -1, NULL, NULL },
		{ "", -1, NULL, NULL },
		{ ",", -1, NULL, NULL },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char dom[2][RFC5322_DOMAIN_MAX + 1] = { "", "" };
		int n = rfc5322_mailboxes(cases[i].in, dom, 2);

		if (n != cases[i].n)
			fail_msg("case %zu '%s': %d mailboxes, want %d", i, cases[i].in, n,
			         cases[i].n);
		if (cases[i].dom0 && strcmp(dom[0], cases[i].dom0) != 0)
			fail_msg("case %zu: domain '%s', want '%s'", i, dom[0], cases[i].dom0);
		if (cases[i].dom1 && strcmp(dom[1], cases[i].dom1) != 0)
			fail_msg("case %zu: second domain '%s', want '%s'", i, dom[1],
			         cases[i].dom1);
	}
	/* more mailboxes than room: counted, only max stored */
	{
		char dom[1][RFC5322_DOMAIN_MAX + 1];

		assert_int_equal(rfc5322_mailboxes("a@x.example, b@y.example, c@z.example", dom, 1),
		                 3);
		assert_string_equal(dom[0], "x.example");
	}
	/* a domain longer than 255 octets is not a domain */
	{
		char big[400], dom[1][RFC5322_DOMAIN_MAX + 1];

		memset(big, 'a', sizeof(big));
		memcpy(big, "u@", 2);
		big[sizeof(big) - 1] = '\0';
		assert_int_equal(rfc5322_mailboxes(big, dom, 1), -1);
	}
}

static void test_from_domains(void **state)
{
	static const char msg1[] = "Received: from x\r\n\tby y\r\nFROM : A <a@One.example>,\r\n"
	                           " b@two.example\r\nSubject: From: c@three.example\r\n\r\n"
	                           "From: body@four.example\r\n";
	static const char msg2[] = "Subject: none\nFrom: a@x.example\nFrom: b@y.example\n\nbody";
	static const char msg3[] = "Subject: x\r\n\r\n";
	static const char msg4[] = "From: not an address\r\n\r\n";
	char dom[4][RFC5322_DOMAIN_MAX + 1];
	int nf;

	(void)state;
	assert_int_equal(
	    rfc5322_from_domains((const unsigned char *)msg1, sizeof(msg1) - 1, dom, 4, &nf), 2);
	assert_int_equal(nf, 1);
	assert_string_equal(dom[0], "one.example");
	assert_string_equal(dom[1], "two.example");
	assert_int_equal(
	    rfc5322_from_domains((const unsigned char *)msg2, sizeof(msg2) - 1, dom, 4, &nf), 2);
	assert_int_equal(nf, 2);
	assert_string_equal(dom[1], "y.example");
	assert_int_equal(
	    rfc5322_from_domains((const unsigned char *)msg2, sizeof(msg2) - 1, dom, 1, &nf), 2);
	assert_int_equal(
	    rfc5322_from_domains((const unsigned char *)msg3, sizeof(msg3) - 1, dom, 4, &nf), 0);
	assert_int_equal(nf, 0);
	assert_int_equal(
	    rfc5322_from_domains((const unsigned char *)msg4, sizeof(msg4) - 1, dom, 4, &nf), -1);
	assert_int_equal(nf, 1);
	/* a header without an end: the last line still counts */
	assert_int_equal(
	    rfc5322_from_domains((const unsigned char *)"From: z@z.example", 17, dom, 4, &nf), 1);
}

static void test_hostile(void **state)
{
	(void)state;
	hostile_init();
	for (const struct hostile *h = hostile_strings; h->name; h++) {
		char dom[2][RFC5322_DOMAIN_MAX + 1];
		time_t t;
		int n = rfc5322_mailboxes(h->s, dom, 2);

		assert_true(n >= -1);
		(void)rfc5322_date(h->s, &t);
		(void)rfc5322_msgid(h->s);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dates),     cmocka_unit_test(test_msgids),
		cmocka_unit_test(test_mailboxes), cmocka_unit_test(test_from_domains),
		cmocka_unit_test(test_hostile),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
