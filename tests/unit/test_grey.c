/* tests/unit/test_grey.c - unit tests for lib/store/grey.c
 *
 * Sender normalisation (lowercase, BATV, SRS, VERP-style numbers) with exact
 * expected keys, key building and splitting, record round trips, and every
 * hostile string through the normaliser and the key builder at small
 * buffer sizes (ASan catches overruns; keys never get a space or control
 * character from the input).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "grey.h"
#include "hostile.h"

static const struct {
	const char *in, *want;
} norm_cases[] = {
	{ "", "<>" },
	{ "<>", "<>" },
	{ "Alice@Example.ORG", "alice@example.org" },
	{ "prvs=1234abcd=bob@batv.example", "bob@batv.example" },
	{ "PRVS=9999FFFF=Bob@batv.example", "bob@batv.example" },
	{ "btv1==0123456789==carol@batv.example", "carol@batv.example" },
	{ "SRS0=HHH=TT=orig.example=Zed@fwd.example", "zed@orig.example" },
	{ "SRS1=XXX=fwd1.example==HHH=TT=orig.example=zed@fwd2.example", "zed@orig.example" },
	{ "bounce-123-4567@verp.example", "bounce-#-#@verp.example" },
	{ "list+user=example.com-42@lists.example", "list+user=example.com-#@lists.example" },
	{ "msg-0a1b2c3d4e5f@mailer.example", "msg-#@mailer.example" },
	{ "cafe-face@hex.example", "cafe-face@hex.example" }, /* no digit: a word */
	{ "user123@example.org", "user123@example.org" },     /* part of a word */
	{ "12345@example.org", "#@example.org" },
	{ "postmaster", "postmaster" },
	{ "a.b_c@x.example", "a.b_c@x.example" },
};

static void test_normalise(void **state)
{
	char out[GREY_KEY_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(norm_cases) / sizeof(norm_cases[0]); i++) {
		grey_normalise_sender(out, sizeof(out), norm_cases[i].in);
		if (strcmp(out, norm_cases[i].want) != 0)
			fail_msg("normalise(\"%s\") = \"%s\", want \"%s\"", norm_cases[i].in, out,
			         norm_cases[i].want);
	}
}

static void test_key(void **state)
{
	char key[GREY_KEY_MAX], buf[GREY_KEY_MAX];
	const char *net, *sender, *rcpt;
	size_t n;

	(void)state;
	n = grey_key(key, sizeof(key), "ip:192.0.2.0/24", "alice@example.org", "Bob@Example.TEST");
	assert_string_equal(key, "ip:192.0.2.0/24 alice@example.org bob@example.test");
	assert_int_equal(n, strlen(key));
	strcpy(buf, key);
	assert_int_equal(grey_key_split(buf, &net, &sender, &rcpt), 0);
	assert_string_equal(net, "ip:192.0.2.0/24");
	assert_string_equal(sender, "alice@example.org");
	assert_string_equal(rcpt, "bob@example.test");
	/* a space in a (quoted) recipient cannot make a fourth part */
	grey_key(key, sizeof(key), "spf:example.org", "<>", "\"a b\"@example.test");
	assert_string_equal(key, "spf:example.org <> \"a?b\"@example.test");
	strcpy(buf, "only two");
	assert_int_equal(grey_key_split(buf, &net, &sender, &rcpt), -1);
	strcpy(buf, "a b c d");
	assert_int_equal(grey_key_split(buf, &net, &sender, &rcpt), -1);
	/* does not fit: 0 */
	assert_int_equal(grey_key(key, 10, "ip:192.0.2.0/24", "a@b", "c@d"), 0);
}

static void test_records(void **state)
{
	unsigned char buf[GREY_REC_SIZE], abuf[AWL_REC_SIZE];
	struct grey_rec g = { GREY_PASSED | GREY_NOGREY, 7, 3, 1800000000, 1800000301 }, g2;
	struct awl_rec a = { 5, 1700000000, 4102444800LL }, a2;

	(void)state;
	grey_rec_encode(&g, buf);
	assert_int_equal(buf[0], GREY_PASSED | GREY_NOGREY);
	assert_int_equal(grey_rec_decode(buf, sizeof(buf), &g2), 0);
	assert_memory_equal(&g, &g2, sizeof(g));
	assert_int_equal(grey_rec_decode(buf, sizeof(buf) - 1, &g2), -1);
	awl_rec_encode(&a, abuf);
	assert_int_equal(awl_rec_decode(abuf, sizeof(abuf), &a2), 0);
	assert_int_equal(a2.passes, 5);
	assert_true(a2.first == a.first && a2.last == a.last);
	assert_int_equal(awl_rec_decode(abuf, 3, &a2), -1);
}

static void test_hostile(void **state)
{
	static const size_t sizes[] = { 1, 2, 3, 8, 64, GREY_KEY_MAX };

	(void)state;
	hostile_init();
	for (const struct hostile *h = hostile_strings; h->name != NULL; h++) {
		const char *s = h->s; /* strings with NULs are cut there, as in C APIs */

		for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
			char *out = malloc(sizes[k]);
			size_t n;

			grey_normalise_sender(out, sizes[k], s);
			assert_true(strlen(out) < sizes[k]);
			for (const char *p = out; *p; p++)
				assert_true((unsigned char)*p > 0x20 && (unsigned char)*p != 0x7f);
			n = grey_key(out, sizes[k], "ip:192.0.2.0/24", "a@b", s);
			if (n) {
				assert_int_equal(n, strlen(out));
				/* exactly the two separators */
				int spaces = 0;
				for (const char *p = out; *p; p++)
					spaces += *p == ' ';
				assert_int_equal(spaces, 2);
			}
			free(out);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normalise),
		cmocka_unit_test(test_key),
		cmocka_unit_test(test_records),
		cmocka_unit_test(test_hostile),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
