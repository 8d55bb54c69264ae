/* tests/unit/test_identity.c - unit tests for lib/authres.c and
 * lib/dmarcrep.c
 *
 * authres_is_ours(): the authserv-id after comments and folding, quoted,
 * any case, one trailing dot, versus longer or foreign ids and hostile
 * strings; authres_authserv_id(): spf.authserv_id, else the hostname;
 * authres_remover(): the first enabled of spf, dkim, dmarc in `checks`.
 * dmarcrep: counters recorded in a real store (TDB in a temp dir) are
 * merged across hours per outcome, filtered by policy domain and time, and
 * written as well-formed XML with escaped text; a record expires
 * report_keep after its hour.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "authres.h"
#include "conf.h"
#include "dmarcrep.h"
#include "hostile.h"
#include "store.h"

static void test_is_ours(void **state)
{
	static const struct {
		const char *value;
		int ours;
	} cases[] = {
		{ "mx.example.test; spf=pass smtp.mailfrom=a.example", 1 },
		{ "MX.Example.TEST.; dkim=pass", 1 },
		{ "(comment (nested)) \r\n\tmx.example.test; none", 1 },
		{ "\"mx.example.test\"; none", 1 },
		{ "mx.example.test", 1 },
		{ "mx.example.test.evil; spf=pass", 0 },
		{ "evil.mx.example.test; spf=pass", 0 },
		{ "other.example.net; spf=pass", 0 },
		{ "(unclosed mx.example.test; spf=pass", 0 },
		{ "", 0 },
		{ ";", 0 },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (authres_is_ours(cases[i].value, "mx.example.test") != cases[i].ours)
			fail_msg("case %zu '%s': want %d", i, cases[i].value, cases[i].ours);
	hostile_init();
	for (const struct hostile *h = hostile_strings; h->name; h++)
		assert_int_equal(authres_is_ours(h->s, "mx.example.test"), 0);
}

static struct conf *load(const char *lines)
{
	char err[512];
	struct conf *c = conf_load(NULL, err, sizeof(err));
	char *copy = strdup(lines), *save = NULL;

	assert_non_null(c);
	for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char *eq = strchr(l, '=');

		assert_non_null(eq);
		*eq = '\0';
		for (char *e = eq - 1; e > l && *e == ' '; e--)
			*e = '\0';
		if (conf_set(c, l, eq + 1 + (eq[1] == ' '), err, sizeof(err)) != 0)
			fail_msg("%s", err);
	}
	free(copy);
	if (conf_finish(c, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	return c;
}

static void test_authserv_and_remover(void **state)
{
	struct conf *c;

	(void)state;
	c = load("hostname = mx.example.test\nchecks = dkim, spf, dmarc");
	assert_string_equal(authres_authserv_id(c), "mx.example.test");
	assert_int_equal(authres_remover(c, "dkim"), 1);
	assert_int_equal(authres_remover(c, "spf"), 0);
	assert_int_equal(authres_remover(c, "dmarc"), 0);
	conf_unref(c);
	c = load("hostname = mx.example.test\nspf.authserv_id = auth.example.test\n"
	         "checks = spf, dkim, dmarc\ndkim.mode = off");
	assert_string_equal(authres_authserv_id(c), "auth.example.test");
	assert_int_equal(authres_remover(c, "spf"), 1);
	conf_unref(c);
	c = load("checks = dkim, dmarc\ndkim.mode = off");
	assert_int_equal(authres_remover(c, "dmarc"), 1);
	assert_int_equal(authres_remover(c, "dkim"), 0);
	conf_unref(c);
	c = load("checks = helo");
	assert_int_equal(authres_remover(c, "spf"), 0);
	conf_unref(c);
}

static struct dmarcrep_row row(const char *ip, const char *disp, const char *dkim_al)
{
	struct dmarcrep_row r;

	memset(&r, 0, sizeof(r));
	strcpy(r.policy_domain, "example.org");
	strcpy(r.header_from, "example.org");
	strcpy(r.envelope_from, "bounce.example.org");
	strcpy(r.ip, ip);
	strcpy(r.disposition, disp);
	strcpy(r.dkim_aligned, dkim_al);
	strcpy(r.spf_aligned, "fail");
	strcpy(r.spf_result, "softfail");
	strcpy(r.dkim_domain, "example.org");
	strcpy(r.dkim_result, strcmp(dkim_al, "pass") == 0 ? "pass" : "fail");
	strcpy(r.dkim_selector, "sel<1>");
	r.p = 'r';
	r.sp = 'q';
	r.adkim = 'r';
	r.aspf = 's';
	r.pct = 100;
	return r;
}

static char *report(struct store *st, const char *dom, time_t since, time_t now, long *n)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	*n = dmarcrep_report(st, dom, since, now, "mx.example.test", "postmaster@example.test", f);
	fclose(f);
	return buf;
}

static int count_of(const char *s, const char *sub)
{
	int n = 0;

	for (const char *p = s; (p = strstr(p, sub)) != NULL; p += strlen(sub))
		n++;
	return n;
}

static time_t fake_now;

static time_t fake_clock(void *arg)
{
	(void)arg;
	return fake_now;
}

static void test_dmarcrep(void **state)
{
	char dir[] = "/tmp/test_identity.XXXXXX", err[256], cmd[700];
	struct store *st;
	struct dmarcrep_row a = row("192.0.2.1", "none", "pass"),
	                    b = row("192.0.2.2", "reject", "fail");
	struct dmarcrep_row other = row("192.0.2.3", "none", "pass");
	time_t t0 = 1796126400; /* 2026-12-01 12:00:00 UTC */
	long n;
	char *x;

	(void)state;
	assert_non_null(mkdtemp(dir));
	st = store_open(dir, err, sizeof(err));
	assert_non_null(st);
	fake_now = t0 + 7300;
	store_set_clock(st, fake_clock, NULL);
	strcpy(other.policy_domain, "other.example");
	/* a: twice in one hour, once two hours later; b: once */
	assert_int_equal(dmarcrep_record(st, t0 + 10, 86400, &a), 0);
	assert_int_equal(dmarcrep_record(st, t0 + 20, 86400, &a), 0);
	assert_int_equal(dmarcrep_record(st, t0 + 7200, 86400, &a), 0);
	assert_int_equal(dmarcrep_record(st, t0 + 30, 86400, &b), 0);
	assert_int_equal(dmarcrep_record(st, t0 + 40, 86400, &other), 0);

	x = report(st, "example.org", t0 - 3600, t0 + 7300, &n);
	assert_int_equal(n, 4);
	assert_int_equal(count_of(x, "<record>"), 2);
	assert_non_null(strstr(x, "<source_ip>192.0.2.1</source_ip>\n      <count>3</count>"));
	assert_non_null(strstr(x, "<source_ip>192.0.2.2</source_ip>\n      <count>1</count>"));
	assert_non_null(strstr(x, "<disposition>reject</disposition>"));
	assert_non_null(strstr(x, "<p>reject</p>"));
	assert_non_null(strstr(x, "<sp>quarantine</sp>"));
	assert_non_null(strstr(x, "<aspf>s</aspf>"));
	assert_non_null(strstr(x, "<selector>sel&lt;1&gt;</selector>"));
	assert_null(strstr(x, "192.0.2.3"));
	assert_null(strstr(x, "sel<1>"));
	free(x);
	/* only the last hour: a once */
	x = report(st, "example.org", t0 + 7200, t0 + 7300, &n);
	assert_int_equal(n, 1);
	assert_int_equal(count_of(x, "<record>"), 1);
	free(x);
	/* well-formed XML, if python3 is there to say so */
	x = report(st, "example.org", t0 - 3600, t0 + 7300, &n);
	{
		char path[300];
		FILE *f;

		snprintf(path, sizeof(path), "%s/r.xml", dir);
		f = fopen(path, "w");
		assert_non_null(f);
		fputs(x, f);
		fclose(f);
		snprintf(cmd, sizeof(cmd),
		         "command -v python3 >/dev/null 2>&1 || exit 0; python3 -c 'import "
		         "sys,xml.dom.minidom as m; m.parse(sys.argv[1])' %s",
		         path);
		assert_int_equal(system(cmd), 0);
		unlink(path);
	}
	free(x);
	/* expiry: a keeps until 14:00 + 1 day, the others until 13:00 + 1 day */
	fake_now = t0 + 3600 + 86400 + 60;
	x = report(st, "example.org", t0 - 3600, fake_now, &n);
	assert_int_equal(n, 1);
	free(x);
	fake_now = t0 + 3 * 3600 + 86400 + 60;
	x = report(st, "example.org", t0 - 3600, fake_now, &n);
	assert_int_equal(n, 0);
	free(x);
	/* nothing for an unknown domain, but a report */
	x = report(st, "none.example", t0 - 3600, t0 + 7300, &n);
	assert_int_equal(n, 0);
	assert_non_null(strstr(x, "<domain>none.example</domain>"));
	free(x);
	store_close(st);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_is_ours),
		cmocka_unit_test(test_authserv_and_remover),
		cmocka_unit_test(test_dmarcrep),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
