/* tests/unit/test_spf.c - unit tests for lib/spf.c that need no DNS
 *
 * The record check and cleaning (spf_record_clean) table-driven: exp= is
 * kept, redirect= moves to the end (and goes when there is an "all"), "/0"
 * rewrites, domain-specs with any visible octet (RFC 7208 7.1), grammar
 * errors; every hostile string (hostile.h) after "v=spf1 "; result names;
 * and spf_eval() for identities without a valid domain, which answer
 * "none" without a single DNS question.  The DNS side (names with any
 * octet, explanations, Received-SPF) is graded through the milter by
 * tests/spf-conformance.sh.
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

#include "dns.h"
#include "hostile.h"
#include "spf.h"

static void test_record_clean(void **state)
{
	static const struct {
		const char *in;
		int family;
		const char *out; /* NULL: -1 expected */
	} cases[] = {
		{ "v=spf1", AF_INET, "v=spf1" },
		{ "v=spf1 -all exp=why.%{d}", AF_INET, "v=spf1 -all exp=why.%{d}" },
		{ "v=spf1 exp=why.example.org -all", AF_INET, "v=spf1 exp=why.example.org -all" },
		{ "v=spf1 redirect=a.example ip4:192.0.2.1", AF_INET,
		  "v=spf1 ip4:192.0.2.1 redirect=a.example" },
		{ "v=spf1 redirect=a.example -all", AF_INET, "v=spf1 -all" },
		{ "v=spf1 a:foo:bar/baz.example.com", AF_INET, "v=spf1 a:foo:bar/baz.example.com" },
		{ "v=spf1 ip4:192.0.2.0/0", AF_INET, "v=spf1 ip4:0.0.0.0/1 ip4:128.0.0.0/1" },
		{ "v=spf1 -ip6:2001:db8::/0", AF_INET6, "v=spf1 -ip6:::/1 -ip6:8000::/1" },
		{ "v=spf1 a/24//64", AF_INET6, "v=spf1 a//64" },
		{ "v=spf1 unknown=%{l}", AF_INET, "v=spf1" },
		{ "v=spf1 exp=a.example exp=b.example", AF_INET, NULL },
		{ "v=spf1 exp=", AF_INET, NULL },
		{ "v=spf1 exp=%{c}.example", AF_INET, NULL }, /* c only in the text */
		{ "v=spf1 redirect=a.example redirect=b.example", AF_INET, NULL },
		{ "v=spf1 foo", AF_INET, NULL },
		{ "v=spf1 a:%{x}.example", AF_INET, NULL },
		{ "v=spf1 ip4:192.0.2.1/33", AF_INET, NULL },
		{ "v=spf1 -all\x01", AF_INET, NULL },
		{ "v=spf1 -all caf\xc3\xa9", AF_INET, NULL },
		{ "v=spf10 -all", AF_INET, NULL },
		{ "spf1 -all", AF_INET, NULL },
	};
	char out[4096];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = spf_record_clean(cases[i].in, strlen(cases[i].in), cases[i].family, out,
		                          sizeof(out));

		if (cases[i].out == NULL) {
			if (rc != -1)
				fail_msg("case %zu '%s': accepted as '%s'", i, cases[i].in, out);
		} else {
			if (rc != 0)
				fail_msg("case %zu '%s': refused: %s", i, cases[i].in, out);
			assert_string_equal(out, cases[i].out);
		}
	}
}

static void test_result_names(void **state)
{
	(void)state;
	assert_string_equal(spf_result_name(SPF_NONE), "none");
	assert_string_equal(spf_result_name(SPF_PASS), "pass");
	assert_string_equal(spf_result_name(SPF_FAIL), "fail");
	assert_string_equal(spf_result_name(SPF_PERMERROR), "permerror");
	assert_string_equal(spf_result_name((enum spf_result)99), "permerror");
}

/* Every hostile string as a record's terms: 0 or -1, a terminated result
 * of printable ASCII, no sanitizer report. */
static void test_hostile_records(void **state)
{
	static char rec[HOSTILE_LONG_LEN + 16], out[4096];

	(void)state;
	hostile_init();
	for (const struct hostile *h = hostile_strings; h->name; h++) {
		size_t len = 7 + h->len;
		int rc;

		memcpy(rec, "v=spf1 ", 7);
		memcpy(rec + 7, h->s, h->len);
		rc = spf_record_clean(rec, len, AF_INET, out, sizeof(out));
		assert_true(rc == 0 || rc == -1);
		assert_true(strlen(out) < sizeof(out));
		for (const char *p = out; *p; p++)
			if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
				fail_msg("%s: byte 0x%02x in the result", h->name,
				         (unsigned char)*p);
	}
}

/* Identities without a valid domain give none without asking anything
 * (RFC 7208 4.3); the resolver is never used. */
static void test_eval_no_domain(void **state)
{
	static const char *const senders[] = {
		"a@[192.0.2.1]",
		"a@nodot",
		"a@",
		"a@a..example",
		"a@a b.example",
		"a@a234567890123456789012345678901234567890123456789012345678901234.example",
	};
	struct spf_outcome o;
	struct ipaddr ip;
	char err[256];
	struct dns *d = dns_new("127.0.0.1:9", err, sizeof(err));

	(void)state;
	assert_non_null(d);
	assert_int_equal(ip_parse("192.0.2.1", &ip), 0);
	for (size_t i = 0; i < sizeof(senders) / sizeof(senders[0]); i++) {
		if (spf_eval(d, 100, &ip, "JUMPIN' JUPITER", senders[i], &o) != SPF_NONE)
			fail_msg("%s: %s (%s)", senders[i], spf_result_name(o.result), o.reason);
		assert_string_equal(o.domain, "");
		assert_string_equal(o.explanation, "");
		assert_int_equal(o.dns_queries, 0);
	}
	dns_free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record_clean),
		cmocka_unit_test(test_result_names),
		cmocka_unit_test(test_hostile_records),
		cmocka_unit_test(test_eval_no_domain),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
