/* tests/unit/test_onerror.c - the engine when a check cannot decide
 *
 * A fault seam: this program brings its own module registry (the linker
 * then leaves lib/registry.o out) with a "fault" module whose hooks report
 * CHECK_RETRY -- what a DNS timeout or a locked database will do -- on the
 * stages the test asks for.  Asserts that on_error = defer gives a 451
 * 4.3.0 with the reference id (never an accept), on_error = skip gives no
 * opinion, monitor mode only notes it, and that the failure is logged.
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

#include "check.h"
#include "engine.h"
#include "log.h"

extern const struct check_module check_helo;

struct fault_conf {
	long dummy;
};

static unsigned fail_stages; /* bit 1 << STAGE_x: fail there */
static int calls;

static int fault_hook(enum stage st, struct verdicts *out)
{
	calls++;
	if (fail_stages & 1u << st)
		return check_retry(out, "injected failure at stage %d", (int)st);
	return CHECK_DONE;
}

static int f_connect(const struct check_ctx *cx, struct verdicts *out)
{
	(void)cx;
	return fault_hook(STAGE_CONNECT, out);
}

static int f_helo(const struct check_ctx *cx, struct verdicts *out)
{
	(void)cx;
	return fault_hook(STAGE_HELO, out);
}

/* MAIL: a module-chosen temporary reply, as the sender domain check gives. */
static int f_mail(const struct check_ctx *cx, struct verdicts *out)
{
	calls++;
	if (fail_stages & 1u << STAGE_MAIL)
		return check_retry_reply(out, "450", "4.1.8", "Sender domain %s: DNS lookup failed",
		                         cx->txn->sender.domain);
	return CHECK_DONE;
}

static int f_rcpt(const struct check_ctx *cx, struct verdicts *out)
{
	(void)cx;
	return fault_hook(STAGE_RCPT, out);
}

static int budget_before, budget_after; /* check_dns_timeout() at EOM */

static int f_eom(const struct check_ctx *cx, struct verdicts *out)
{
	budget_before = check_dns_timeout(cx);
	usleep(120 * 1000); /* a slow DNS answer uses up the stage's time */
	budget_after = check_dns_timeout(cx);
	return fault_hook(STAGE_EOM, out);
}

static const struct conf_param fault_params[] = {
	{ "fault.dummy", "0", CONF_INT, offsetof(struct fault_conf, dummy), 0, 10, "unused" },
	CONF_END
};

static const struct check_module check_fault = {
	.name = "fault",
	.doc = "fails on demand",
	.params = fault_params,
	.conf_size = sizeof(struct fault_conf),
	.default_mode = "reject",
	.default_on_error = "defer",
	.hook = {
		[STAGE_CONNECT] = f_connect,
		[STAGE_HELO] = f_helo,
		[STAGE_MAIL] = f_mail,
		[STAGE_RCPT] = f_rcpt,
		[STAGE_EOM] = f_eom,
	},
};

const struct check_module *const check_registry[] = { &check_helo, &check_fault };
const int check_registry_count = 2;

static struct conf *mkconf(const char *on_error, const char *mode)
{
	char path[] = "/tmp/pc-onerror-XXXXXX", err[512];
	int fd = mkstemp(path);
	FILE *fp = fd >= 0 ? fdopen(fd, "w") : NULL;
	struct conf *c;

	/* A file, not conf_set: the default `checks` names modules that this
	 * program's registry does not have. */
	assert_non_null(fp);
	fprintf(fp,
	        "checks = helo, fault\ntrusted_networks =\ncontact = postmaster@example.test\n"
	        "fault.on_error = %s\nfault.mode = %s\n",
	        on_error, mode);
	fclose(fp);
	c = conf_load(path, err, sizeof(err));
	unlink(path);
	if (c == NULL)
		fail_msg("%s", err);
	return c;
}

/* One session; returns the reply at RCPT (and the EOM reply in *eom when
 * the recipient was accepted). */
static struct reply session(struct conf *cf, struct reply *eom, char *ref, size_t refsize)
{
	struct conn *c = engine_conn_new(cf);
	struct reply r, rr;

	engine_connect(c, "mail.example.org", "192.0.2.7", &r);
	assert_int_equal(r.action, REPLY_CONTINUE);
	engine_helo(c, "mail.example.org", &r);
	assert_int_equal(r.action, REPLY_CONTINUE); /* held until RCPT */
	engine_mail(c, "<a@example.org>", &r);
	assert_int_equal(r.action, REPLY_CONTINUE);
	snprintf(ref, refsize, "%s", c->txn->ref);
	engine_rcpt(c, "<b@example.test>", &rr);
	memset(eom, 0, sizeof(*eom));
	if (rr.action == REPLY_CONTINUE) {
		engine_eom(c, eom);
		engine_txn_end(c, eom);
	}
	engine_conn_free(c);
	return rr;
}

static void expect_tempfail(const struct reply *r, const char *ref)
{
	char want[64];

	assert_int_equal(r->action, REPLY_TEMPFAIL);
	assert_string_equal(r->code, "451");
	assert_string_equal(r->xcode, "4.3.0");
	assert_non_null(strstr(r->text, "Temporary failure in the fault check"));
	snprintf(want, sizeof(want), "(ref %s); contact postmaster@example.test", ref);
	assert_non_null(strstr(r->text, want));
}

static void test_defer_at_each_stage(void **state)
{
	static const enum stage stages[] = { STAGE_CONNECT, STAGE_HELO, STAGE_RCPT };
	struct conf *cf = mkconf("defer", "reject");
	struct reply r, eom;
	char ref[16];

	(void)state;
	for (size_t i = 0; i < sizeof(stages) / sizeof(stages[0]); i++) {
		fail_stages = 1u << stages[i];
		r = session(cf, &eom, ref, sizeof(ref));
		expect_tempfail(&r, ref);
	}
	/* a failure at end of message: a temporary failure, never accepted */
	fail_stages = 1u << STAGE_EOM;
	r = session(cf, &eom, ref, sizeof(ref));
	assert_int_equal(r.action, REPLY_CONTINUE);
	expect_tempfail(&eom, ref);
	conf_unref(cf);
}

static void test_module_reply(void **state)
{
	struct conf *cf = mkconf("defer", "reject");
	struct reply r, eom;
	char ref[16], want[80];

	(void)state;
	fail_stages = 1u << STAGE_MAIL;
	r = session(cf, &eom, ref, sizeof(ref));
	assert_int_equal(r.action, REPLY_TEMPFAIL);
	assert_string_equal(r.code, "450");
	assert_string_equal(r.xcode, "4.1.8");
	snprintf(want, sizeof(want), "Sender domain example.org: DNS lookup failed (ref %s)", ref);
	assert_non_null(strstr(r.text, want));
	conf_unref(cf);
}

/* All checks of a stage share one DNS time budget (dns.timeout_ms), and
 * each stage starts with the whole of it. */
static void test_stage_dns_budget(void **state)
{
	struct conf *cf = mkconf("skip", "reject");
	struct reply r, eom;
	char ref[16];

	(void)state;
	fail_stages = 0;
	for (int i = 0; i < 2; i++) {
		r = session(cf, &eom, ref, sizeof(ref));
		assert_int_equal(r.action, REPLY_CONTINUE);
		assert_true(budget_before > 4900 && budget_before <= 5000); /* the default */
		assert_true(budget_after <= budget_before - 115);
		assert_true(budget_after >= budget_before - 1000);
	}
	conf_unref(cf);
}

static void test_skip(void **state)
{
	struct conf *cf = mkconf("skip", "reject");
	struct reply r, eom;
	char ref[16];

	(void)state;
	fail_stages = ~0u;
	calls = 0;
	r = session(cf, &eom, ref, sizeof(ref));
	assert_int_equal(r.action, REPLY_CONTINUE);
	assert_int_equal(eom.action, REPLY_CONTINUE);
	assert_int_equal(calls, 5); /* every stage ran and failed */
	conf_unref(cf);
}

static void test_monitor_and_off(void **state)
{
	struct conf *cf = mkconf("defer", "monitor");
	struct reply r, eom;
	char ref[16];

	(void)state;
	fail_stages = ~0u;
	r = session(cf, &eom, ref, sizeof(ref));
	assert_int_equal(r.action, REPLY_CONTINUE);
	assert_int_equal(eom.action, REPLY_CONTINUE);
	conf_unref(cf);

	cf = mkconf("defer", "off");
	calls = 0;
	r = session(cf, &eom, ref, sizeof(ref));
	assert_int_equal(r.action, REPLY_CONTINUE);
	assert_int_equal(calls, 0); /* an off check is not even called */
	conf_unref(cf);
}

static void test_postmaster_still_reachable(void **state)
{
	struct conf *cf = mkconf("defer", "reject");
	struct conn *c = engine_conn_new(cf);
	struct reply r;

	(void)state;
	fail_stages = 1u << STAGE_HELO;
	engine_connect(c, "mail.example.org", "192.0.2.7", &r);
	engine_helo(c, "mail.example.org", &r);
	engine_mail(c, "<a@example.org>", &r);
	engine_rcpt(c, "<postmaster@example.test>", &r);
	assert_int_equal(r.action, REPLY_CONTINUE);
	engine_rcpt(c, "<b@example.test>", &r);
	assert_int_equal(r.action, REPLY_TEMPFAIL);
	engine_conn_free(c);
	conf_unref(cf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defer_at_each_stage),
		cmocka_unit_test(test_module_reply),
		cmocka_unit_test(test_stage_dns_budget),
		cmocka_unit_test(test_skip),
		cmocka_unit_test(test_monitor_and_off),
		cmocka_unit_test(test_postmaster_still_reachable),
	};

	log_open("test_onerror", "none", "mail");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
