/* tests/unit/test_ratelimit.c - rate limit rules and the sliding window
 * (lib/checks/ratelimit.c, lib/ratelimit.h)
 *
 * Table-driven: rule texts with what they parse to (what, unit, prefixes,
 * limit, window) or that they are refused, with the reason; the estimate
 * of the sliding window at points of the current and the next windows;
 * stored values decoded, bad ones read as zero; every hostile string as a
 * rule (refused, no crash) and as a stored value; ratelimit.rules through
 * conf_set/conf_finish with the check enabled (a bad rule names the key).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conf.h"
#include "hostile.h"
#include "ratelimit.h"

static void test_rules(void **state)
{
	static const struct {
		const char *in;
		int ok, what, unit, v4, v6;
		long limit, window;
		const char *why;
	} cases[] = {
		{ "auth 500 rcpts 1d", 1, 4, 2, 32, 128, 500, 86400, NULL },
		{ "client/24 200 msgs 1h", 1, 0, 1, 24, 64, 200, 3600, NULL },
		{ "client/32 5 conns 10m", 1, 0, 0, 32, 128, 5, 600, NULL },
		{ "client/24/56 5 conn 30s", 1, 0, 0, 24, 56, 5, 30, NULL },
		{ "client 1 msg 1w", 1, 0, 1, 32, 128, 1, 604800, NULL },
		{ "sender 100 msgs 10m", 1, 2, 1, 32, 128, 100, 600, NULL },
		{ "RCPT 10 Rcpt 60", 1, 3, 2, 32, 128, 10, 60, NULL },
		{ "domain 300 conns 1h", 1, 1, 0, 32, 128, 300, 3600, NULL },
		{ "auth 500 rcpts", 0, 0, 0, 0, 0, 0, 0, "want WHAT LIMIT UNIT WINDOW" },
		{ "auth 500 rcpts 1d extra", 0, 0, 0, 0, 0, 0, 0, "want WHAT" },
		{ "user 5 msgs 1h", 0, 0, 0, 0, 0, 0, 0, "WHAT must be" },
		{ "auth 0 rcpts 1d", 0, 0, 0, 0, 0, 0, 0, "LIMIT must be" },
		{ "auth -5 rcpts 1d", 0, 0, 0, 0, 0, 0, 0, "LIMIT must be" },
		{ "auth 5x rcpts 1d", 0, 0, 0, 0, 0, 0, 0, "LIMIT must be" },
		{ "auth 5 mails 1d", 0, 0, 0, 0, 0, 0, 0, "UNIT must be" },
		{ "auth 5 conns 1d", 0, 0, 0, 0, 0, 0, 0, "per client or domain" },
		{ "sender 5 msgs 1y", 0, 0, 0, 0, 0, 0, 0, "WINDOW must be" },
		{ "sender 5 msgs 0", 0, 0, 0, 0, 0, 0, 0, "WINDOW must be" },
		{ "sender 5 msgs 400d", 0, 0, 0, 0, 0, 0, 0, "WINDOW must be" },
		{ "client/33 5 msgs 1h", 0, 0, 0, 0, 0, 0, 0, "prefix" },
		{ "client/24/129 5 msgs 1h", 0, 0, 0, 0, 0, 0, 0, "prefix" },
		{ "sender/24 5 msgs 1h", 0, 0, 0, 0, 0, 0, 0, "prefix" },
		{ "", 0, 0, 0, 0, 0, 0, 0, "want WHAT" },
	};
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rl_rule_info ri;
		int rc = ratelimit_parse_rule(cases[i].in, &ri, err, sizeof(err));

		if (!cases[i].ok) {
			if (rc == 0)
				fail_msg("'%s' accepted", cases[i].in);
			if (strstr(err, cases[i].why) == NULL)
				fail_msg("'%s': reason '%s' lacks '%s'", cases[i].in, err,
				         cases[i].why);
			continue;
		}
		if (rc != 0)
			fail_msg("'%s' refused: %s", cases[i].in, err);
		assert_int_equal(ri.what, cases[i].what);
		assert_int_equal(ri.unit, cases[i].unit);
		assert_int_equal(ri.v4, cases[i].v4);
		assert_int_equal(ri.v6, cases[i].v6);
		assert_int_equal(ri.limit, cases[i].limit);
		assert_int_equal(ri.window, cases[i].window);
	}
}

static void test_estimate(void **state)
{
	/* window of 100 s; the record's window started at 1000 */
	struct rl_rec r = { .start = 1000, .cur = 10, .prev = 40 };
	static const struct {
		long long now;
		double want;
	} cases[] = {
		{ 1000, 50.0 }, /* all of the previous window still inside */
		{ 1050, 30.0 }, /* half of it */
		{ 1099, 10.4 },
		{ 1100, 10.0 }, /* next window: the current count becomes previous */
		{ 1150, 5.0 },
		{ 1200, 0.0 }, /* two windows on: nothing left */
		{ 5000, 0.0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		double got = ratelimit_estimate(&r, 100, cases[i].now);

		if (got < cases[i].want - 1e-9 || got > cases[i].want + 1e-9)
			fail_msg("now %lld: estimate %f, want %f", cases[i].now, got,
			         cases[i].want);
	}
}

static void test_decode(void **state)
{
	struct rl_rec r;

	(void)state;
	ratelimit_rec_decode("1000 3 7", 8, &r);
	assert_int_equal(r.start, 1000);
	assert_int_equal(r.cur, 3);
	assert_int_equal(r.prev, 7);
	ratelimit_rec_decode("1000 -3 7", 9, &r);
	assert_int_equal(r.cur, 0);
	assert_int_equal(r.start, 0);
	ratelimit_rec_decode("garbage", 7, &r);
	assert_int_equal(r.start, 0);
	hostile_init();
	for (const struct hostile *h = hostile_strings; h->name != NULL; h++) {
		char err[256];
		struct rl_rule_info ri;

		ratelimit_rec_decode(h->s, h->len, &r);
		assert_true(r.cur >= 0 && r.prev >= 0);
		/* hostile strings as rules: refused, never a crash */
		if (ratelimit_parse_rule(h->s, &ri, err, sizeof(err)) == 0)
			fail_msg("hostile rule %s accepted", h->name);
		assert_true(strlen(err) < sizeof(err));
	}
}

static void test_conf(void **state)
{
	char err[512];
	struct conf *c;

	(void)state;
	c = conf_load(NULL, err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(conf_set(c, "checks", "ratelimit", err, sizeof(err)), 0);
	assert_int_equal(conf_set(c, "ratelimit.rules",
	                          "auth 500 rcpts 1d; client/24 200 msgs 1h;; sender 100 msgs 10m",
	                          err, sizeof(err)),
	                 0);
	assert_int_equal(conf_finish(c, err, sizeof(err)), 0);
	/* a second conf_finish() starts over (fini, then init again) */
	assert_int_equal(conf_finish(c, err, sizeof(err)), 0);
	conf_unref(c);
	c = conf_load(NULL, err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(conf_set(c, "checks", "ratelimit", err, sizeof(err)), 0);
	assert_int_equal(
	    conf_set(c, "ratelimit.rules", "auth 500 rcpts 1d; bogus", err, sizeof(err)), 0);
	assert_int_equal(conf_finish(c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "ratelimit.rules: 'bogus'"));
	conf_unref(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rules),
		cmocka_unit_test(test_estimate),
		cmocka_unit_test(test_decode),
		cmocka_unit_test(test_conf),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
