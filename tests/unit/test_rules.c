/* tests/unit/test_rules.c - lib/rules.c: PCRE2 rules files
 *
 * Covered: every action, case-insensitive by default and 'i' toggling it,
 * 'x', '!' negation, first match wins, $1..$9 (unset groups empty,
 * captures cut at 100 bytes, '$' not followed by a digit kept), a subject
 * with NUL bytes, continuation lines and the line number of the rule,
 * errors with FILE:LINE (bad regex, unknown action or flag, SCORE without
 * a number, TAG without text, missing slash), catastrophic backtracking
 * ending at the match limit, concurrent matching from threads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"
#include "testutil.h"

static struct rules *load(const char *content, char *err, size_t errsize)
{
	char path[512];

	write_file(path, sizeof(path), "test.rules", content);
	return rules_open(path, err, errsize);
}

static const char good[] = "# comment\n"
                           "/^Subject: (win) (\\w+)/  REJECT you $1 a $2$3 $x\n"
                           "/^X-Case: ABC/i  DEFER case matters\n"
                           "/^X-Any: abc/  SCORE 2.5 any case\n"
                           "!/^From: /  DUNNO\n"
                           "/^From: .*trusted/\n"
                           "\tOK\n"
                           "/^From: (.*)/  TAG from $1\n"
                           "/^From: a b/x  REJECT extended\n";

static void test_actions(void **state)
{
	char err[512];
	struct rules *r = load(good, err, sizeof(err));
	struct rule_result res;
	const char *s;

	(void)state;
	assert_non_null(r);
	s = "subject: WIN big";
	assert_int_equal(rules_match(r, s, strlen(s), &res), 1);
	assert_int_equal(res.action, RULE_REJECT);
	assert_string_equal(res.text, "you WIN a big $x");
	assert_int_equal(res.line, 2);
	s = "X-Case: abc";
	assert_int_equal(rules_match(r, s, strlen(s), &res), 0 + 1); /* hits the DUNNO */
	assert_int_equal(res.action, RULE_DUNNO);
	s = "X-Case: ABC";
	assert_int_equal(rules_match(r, s, strlen(s), &res), 1);
	assert_int_equal(res.action, RULE_DEFER);
	s = "x-any: ABC";
	assert_int_equal(rules_match(r, s, strlen(s), &res), 1);
	assert_int_equal(res.action, RULE_SCORE);
	assert_true(res.score == 2.5);
	s = "From: my trusted friend";
	assert_int_equal(rules_match(r, s, strlen(s), &res), 1);
	assert_int_equal(res.action, RULE_OK);
	assert_int_equal(res.line, 6);
	s = "From: ab";
	assert_int_equal(rules_match(r, s, strlen(s), &res), 1);
	assert_int_equal(res.action, RULE_TAG);
	assert_string_equal(res.text, "from ab");
	rules_free(r);
}

static void test_captures(void **state)
{
	char err[512], subject[400];
	struct rules *r =
	    load("/^(x*)(y)?(z)/ REJECT [$1][$2][$3]\n/^n(.)n/ REJECT [$1]\n", err, sizeof(err));
	struct rule_result res;

	(void)state;
	assert_non_null(r);
	memset(subject, 'x', 300);
	subject[300] = 'z';
	assert_int_equal(rules_match(r, subject, 301, &res), 1);
	assert_int_equal(strlen(res.text), 1 + 100 + 2 + 0 + 2 + 1 + 1); /* [x*100][][z] */
	assert_int_equal(strstr(res.text, "][]") != NULL, 1);
	/* a NUL inside the subject and the capture */
	assert_int_equal(rules_match(r, "n\0n", 3, &res), 1);
	assert_string_equal(res.text, "[");
	rules_free(r);
}

static void test_errors(void **state)
{
	static const struct {
		const char *content, *want;
	} cases[] = {
		{ "/ok/ DUNNO\n/bad(/ REJECT x\n", ":2: regex error" },
		{ "/a/ BOUNCE\n", ":1: unknown action 'BOUNCE'" },
		{ "/a/q REJECT\n", ":1: unknown flag 'q'" },
		{ "\n\n/a/ SCORE lots\n", ":3: SCORE needs a number" },
		{ "/a/ TAG\n", ":1: TAG needs a text" },
		{ "a/ REJECT\n", ":1: a rule starts with /regex/" },
		{ "/abc REJECT\n", ":1: missing closing /" },
		{ "/abc/\n", ":1: missing action" },
	};
	char err[512];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rules *r = load(cases[i].content, err, sizeof(err));

		assert_null(r);
		if (strstr(err, cases[i].want) == NULL || strstr(err, "test.rules") == NULL)
			fail_msg("case %zu: error '%s' lacks '%s'", i, err, cases[i].want);
	}
	assert_null(rules_open("/nonexistent/rules", err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/rules: "));
}

static void test_backtracking(void **state)
{
	char err[512], *s = malloc(30001);
	struct rules *r = load("/^(a+)+b/ REJECT slow\n/c$/ REJECT end\n", err, sizeof(err));
	struct rule_result res;

	(void)state;
	assert_non_null(r);
	memset(s, 'a', 30000);
	s[30000] = 'c';
	assert_int_equal(rules_match(r, s, 30001, &res), 1);
	assert_string_equal(res.text, "end");
	rules_free(r);
	free(s);
}

static struct rules *shared;

static void *worker(void *arg)
{
	struct rule_result res;
	long bad = 0;

	(void)arg;
	for (int i = 0; i < 2000; i++) {
		char s[64];
		int n = snprintf(s, sizeof(s), "Subject: win n%d", i);

		if (rules_match(shared, s, (size_t)n, &res) != 1 || res.action != RULE_REJECT ||
		    strncmp(res.text, "you win a n", 11) != 0)
			bad++;
	}
	return (void *)bad;
}

static void test_threads(void **state)
{
	char err[512];
	pthread_t t[4];

	(void)state;
	shared = load(good, err, sizeof(err));
	assert_non_null(shared);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, worker, NULL), 0);
	for (int i = 0; i < 4; i++) {
		void *bad;

		pthread_join(t[i], &bad);
		assert_null(bad);
	}
	rules_free(shared);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_actions), cmocka_unit_test(test_captures),
		cmocka_unit_test(test_errors),  cmocka_unit_test(test_backtracking),
		cmocka_unit_test(test_threads),
	};

	if (tmpdir_create("pc-rules") < 0)
		return 1;
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	tmpdir_remove();
	return rc;
}
