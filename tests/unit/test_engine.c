/* tests/unit/test_engine.c - unit tests for lib/engine.c, without an MTA
 *
 * Sessions are driven through engine_conn_new / engine_connect / engine_helo
 * / engine_mail / engine_rcpt / engine_header / engine_eom / engine_txn_end
 * / engine_abort / engine_conn_free, with snapshots built by
 * conf_load(NULL) + conf_set() + conf_finish() and access tables written to
 * a private temporary folder.  The log (stderr) is captured where a test
 * checks that the reply's ref is the one in the transaction's log line.
 *
 * Covered: delayed reject (connect/HELO/MAIL verdicts answered at RCPT),
 * reply text "TEXT (ref ID); contact C", postmaster@/abuse@, recipient,
 * client and sender whitelists, modes (monitor header, defer -> 4xx, off),
 * module mode vs sub-check mode, score thresholds at RCPT and EOM and the
 * status header, trusted_networks, a client without an address (sendmail
 * -bs), auth_whitelist, several transactions on
 * one connection, a second HELO, bounces with two recipients, too many
 * recipients, engine_stages_needed, content-safety checks (attachments,
 * clamav) for every kind of whitelisted mail and their skip_whitelisted
 * opt-out, header occurrence counting for
 * removals (forged Authentication-Results via spf), and every hostile string (hostile.h) as
 * HELO, client name, sender, recipient and header: replies stay printable,
 * '%' doubled, bounded; log lines and added headers stay printable.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "conf.h"
#include "engine.h"
#include "hostile.h"
#include "log.h"
#include "testutil.h"
#include "util.h"

#define CONTACT "postmaster@example.test"

/* --- temporary folder and tables ------------------------------------------ */

static char logpath[512];
static int saved_stderr = -1;

static int group_setup(void **state)
{
	(void)state;
	if (tmpdir_create("pc-engine") < 0)
		return -1;
	snprintf(logpath, sizeof(logpath), "%s/log", tmpdir);
	hostile_init();
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	return tmpdir_remove();
}

/* --- capturing the log (stderr) ------------------------------------------- */

static void log_start(void)
{
	int fd;

	fflush(stderr);
	saved_stderr = dup(2);
	assert_true(saved_stderr >= 0);
	fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	dup2(fd, 2);
	close(fd);
}

/* Restore stderr; returns what was logged (malloc'd). */
static char *log_stop(void)
{
	FILE *fp;
	char *buf;
	long n;

	if (saved_stderr < 0)
		return NULL;
	fflush(stderr);
	dup2(saved_stderr, 2);
	close(saved_stderr);
	saved_stderr = -1;
	fp = fopen(logpath, "r");
	assert_non_null(fp);
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	rewind(fp);
	buf = xmalloc((size_t)n + 1);
	assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

/* Per-test teardown: a failed assertion must not leave stderr captured. */
static int restore_stderr(void **state)
{
	(void)state;
	free(log_stop());
	return 0;
}

/* The log line of transaction ref (copied to dst), or fail. */
static void log_line(const char *log, const char *ref, char *dst, size_t dstsize)
{
	char key[32];
	const char *p, *nl;
	size_t n;

	snprintf(key, sizeof(key), "ref=%s ", ref);
	p = strstr(log, key);
	if (p == NULL)
		fail_msg("no log line for ref %s in:\n%s", ref, log);
	nl = strchr(p, '\n');
	n = nl ? (size_t)(nl - p) : strlen(p);
	if (n >= dstsize)
		n = dstsize - 1;
	memcpy(dst, p, n);
	dst[n] = '\0';
	if (strstr(nl ? nl : p + n, key))
		fail_msg("two log lines for ref %s", ref);
}

static void expect_in(const char *hay, const char *needle)
{
	if (strstr(hay, needle) == NULL)
		fail_msg("'%s' not in '%s'", needle, hay);
}

/* Symbol sym is in the comma-separated list of log field name= in line. */
static void expect_symbol(const char *line, const char *name, const char *sym)
{
	char key[32], list[1024], *save = NULL;
	const char *p;
	size_t n;

	snprintf(key, sizeof(key), " %s=", name);
	p = strstr(line, key);
	if (p == NULL)
		fail_msg("no %s in '%s'", key, line);
	p += strlen(key);
	n = strcspn(p, " ");
	snprintf(list, sizeof(list), "%.*s", (int)n, p);
	for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		t[strcspn(t, "(")] = '\0';
		if (strcmp(t, sym) == 0)
			return;
	}
	fail_msg("%s not in%s%.*s", sym, key, (int)n, p);
}

/* --- snapshots ------------------------------------------------------------ */

/* Defaults plus a test base (our name, contact, no trusted networks, log to
 * stderr), then the NULL-terminated key/value pairs. */
static struct conf *mkconf_v(const char *const *kv)
{
	char err[1024] = "";
	struct conf *c = conf_load(NULL, err, sizeof(err));
	static const char *const base[] = {
		"hostname", "mx.example.test", "contact", CONTACT, "trusted_networks",
		"",         "log_target",      "stderr",  NULL,
	};

	if (c == NULL)
		fail_msg("conf_load(NULL): %s", err);
	for (int i = 0; base[i]; i += 2)
		if (conf_set(c, base[i], base[i + 1], err, sizeof(err)) < 0)
			fail_msg("%s", err);
	for (int i = 0; kv && kv[i]; i += 2)
		if (conf_set(c, kv[i], kv[i + 1], err, sizeof(err)) < 0)
			fail_msg("conf_set %s = %s: %s", kv[i], kv[i + 1], err);
	if (conf_finish(c, err, sizeof(err)) < 0)
		fail_msg("conf_finish: %s", err);
	return c;
}

#define mkconf(...) mkconf_v((const char *const[]){ __VA_ARGS__, NULL })

/* --- sessions ------------------------------------------------------------- */

static const char *action_name(enum reply_action a)
{
	static const char *const n[] = { "CONTINUE", "ACCEPT", "TEMPFAIL", "REJECT" };

	return (unsigned)a < 4 ? n[a] : "?";
}

static void expect_continue(const struct reply *r, const char *what)
{
	if (r->action != REPLY_CONTINUE)
		fail_msg("%s: %s %s %s %s, expected CONTINUE", what, action_name(r->action),
		         r->code, r->xcode, r->text);
}

/* A reject/defer with exactly "TEXT (ref REF); contact CONTACT". */
static void expect_fail(const struct conn *c, const struct reply *r, enum reply_action a,
                        const char *code, const char *xcode, const char *text, const char *what)
{
	char want[1024];

	if (r->action != a)
		fail_msg("%s: %s %s %s '%s', expected %s", what, action_name(r->action), r->code,
		         r->xcode, r->text, action_name(a));
	if (strcmp(r->code, code) != 0 || strcmp(r->xcode, xcode) != 0)
		fail_msg("%s: %s %s, expected %s %s", what, r->code, r->xcode, code, xcode);
	assert_non_null(c->txn);
	assert_int_equal(strlen(c->txn->ref), REF_LEN);
	snprintf(want, sizeof(want), "%s (ref %s); contact " CONTACT, text, c->txn->ref);
	if (strcmp(r->text, want) != 0)
		fail_msg("%s: text\n  '%s'\nexpected\n  '%s'", what, r->text, want);
}

/* Connect from ip (and HELO if helo != NULL); both must CONTINUE. */
static struct conn *start(struct conf *cf, const char *name, const char *ip, const char *helo)
{
	struct conn *c = engine_conn_new(cf);
	struct reply r;

	engine_connect(c, name, ip, &r);
	expect_continue(&r, "connect");
	if (helo) {
		engine_helo(c, helo, &r);
		expect_continue(&r, "helo");
	}
	return c;
}

static void mail(struct conn *c, const char *from)
{
	struct reply r;

	engine_mail(c, from, &r);
	expect_continue(&r, "mail");
}

static void rcpt_ok(struct conn *c, const char *to)
{
	struct reply r;

	engine_rcpt(c, to, &r);
	expect_continue(&r, to);
}

/* End of message; returns the header named name (or NULL). */
static const struct add_header *find_header(const struct conn *c, const char *name)
{
	for (int i = 0; c->txn && i < c->txn->nheaders; i++)
		if (strcmp(c->txn->headers[i].name, name) == 0)
			return &c->txn->headers[i];
	return NULL;
}

/* --- delayed reject --------------------------------------------------------- */

static void test_delayed_reject(void **state)
{
	struct conf *cf = mkconf("score.tag", "0");
	struct conn *c;
	struct reply r;
	char ref[REF_LEN + 1], line[2048], *log;

	(void)state;
	log_start();
	c = start(cf, NULL, "192.0.2.7", "localhost");
	assert_int_equal(c->nheld, 1);
	mail(c, "<a@example.org>");
	engine_rcpt(c, "<b@example.test>", &r);
	expect_fail(c, &r, REPLY_REJECT, "550", "5.7.1", "HELO localhost from a remote client",
	            "rcpt after bad HELO");
	assert_non_null(strstr(r.text, "(ref "));
	bcopy_str(ref, sizeof(ref), c->txn->ref);
	assert_string_equal(c->txn->last_rcpt->symbol, "helo.localhost");
	assert_int_equal(c->txn->last_rcpt->outcome, RCPT_REJECTED);
	/* every recipient gets it, with the same ref */
	engine_rcpt(c, "<c@example.test>", &r);
	expect_fail(c, &r, REPLY_REJECT, "550", "5.7.1", "HELO localhost from a remote client",
	            "second rcpt");
	assert_string_equal(c->txn->ref, ref);
	assert_int_equal(c->txn->naccepted, 0);
	engine_abort(c);
	assert_null(c->txn);
	engine_conn_free(c);
	log = log_stop();
	log_line(log, ref, line, sizeof(line));
	expect_in(line, " client=unknown[192.0.2.7] ");
	expect_in(line, " helo=<localhost> ");
	expect_in(line, " from=<a@example.org> ");
	expect_in(line, " refused=<b@example.test>:reject:helo.localhost,"
	                "<c@example.test>:reject:helo.localhost ");
	expect_in(line, " verdict=reject ");
	expect_in(line, " symbols=helo.localhost ");
	assert_null(strstr(line, " to="));
	free(log);

	/* a different sub-check keeps its own code */
	c = start(cf, "client.example.org", "192.0.2.7", "foo");
	mail(c, "<a@example.org>");
	engine_rcpt(c, "<b@example.test>", &r);
	expect_fail(c, &r, REPLY_REJECT, "550", "5.5.2",
	            "HELO foo is not a fully qualified domain name", "non-FQDN HELO");
	engine_conn_free(c);

	/* a MAIL verdict is held for RCPT too */
	c = start(cf, NULL, "192.0.2.7", "mail.example.org");
	engine_mail(c, "<a@localhost>", &r);
	expect_continue(&r, "mail with a bad sender");
	assert_int_equal(c->txn->nheld, 1);
	engine_rcpt(c, "<b@example.test>", &r);
	expect_fail(c, &r, REPLY_REJECT, "550", "5.5.2",
	            "Sender address <a@localhost> rejected: need fully-qualified address",
	            "rcpt after bad sender");
	engine_conn_free(c);

	/* a client that leaves before MAIL: nothing to answer, one log line */
	log_start();
	c = start(cf, NULL, "192.0.2.7", "localhost");
	engine_conn_free(c);
	log = log_stop();
	expect_in(log, "verdict=none held=helo.localhost");
	free(log);
	conf_unref(cf);
}

static void test_postmaster(void **state)
{
	static const char *const exempt[] = {
		"<postmaster@example.test>", "<abuse@example.test>", "<Postmaster@example.test>",
		"<ABUSE@other.example>",     "<postmaster>",         "<postmaster@localhost>",
	};
	struct conf *cf = mkconf("score.tag", "0");
	struct conn *c = start(cf, NULL, "192.0.2.7", "localhost");
	struct reply r;
	char ref[REF_LEN + 1], line[2048], *log;

	(void)state;
	log_start();
	mail(c, "<a@example.org>");
	for (size_t i = 0; i < ARRAY_SIZE(exempt); i++) {
		rcpt_ok(c, exempt[i]);
		assert_true(c->txn->last_rcpt->whitelisted);
		assert_int_equal(c->txn->last_rcpt->outcome, RCPT_ACCEPTED);
	}
	engine_rcpt(c, "<user@example.test>", &r);
	assert_int_equal(r.action, REPLY_REJECT);
	engine_rcpt(c, "<postmasterx@example.test>", &r);
	assert_int_equal(r.action, REPLY_REJECT);
	assert_int_equal(c->txn->naccepted, (int)ARRAY_SIZE(exempt));
	engine_eom(c, &r);
	expect_continue(&r, "eom to postmaster");
	bcopy_str(ref, sizeof(ref), c->txn->ref);
	engine_txn_end(c, &r);
	engine_conn_free(c);
	log = log_stop();
	log_line(log, ref, line, sizeof(line));
	expect_in(line, " to=<postmaster@example.test>,<abuse@example.test>,");
	expect_in(line, " refused=<user@example.test>:reject:helo.localhost,"
	                "<postmasterx@example.test>:reject:helo.localhost ");
	expect_in(line, " verdict=accept ");
	free(log);
	conf_unref(cf);
}

/* --- whitelists ---------------------------------------------------------- */

static void test_recipient_whitelist(void **state)
{
	struct conf *cf = mkconf("access.recipient",
	                         table("texthash", "vip@example.test OK\n"
	                                           "friends.example OK\n"
	                                           "blocked@example.test REJECT no such user\n"));
	struct conn *c = start(cf, NULL, "192.0.2.7", "localhost");
	struct reply r;

	(void)state;
	mail(c, "<a@example.org>");
	rcpt_ok(c, "<vip@example.test>");
	assert_true(c->txn->last_rcpt->whitelisted);
	rcpt_ok(c, "<anyone@friends.example>");
	rcpt_ok(c, "<anyone@sub.friends.example>");
	engine_rcpt(c, "<other@example.test>", &r);
	expect_fail(c, &r, REPLY_REJECT, "550", "5.7.1", "HELO localhost from a remote client",
	            "not whitelisted");
	engine_conn_free(c);

	/* a recipient's own reject beats a held one in the reply */
	c = start(cf, NULL, "192.0.2.7", "mail.example.org");
	mail(c, "<a@example.org>");
	engine_rcpt(c, "<blocked@example.test>", &r);
	expect_fail(c, &r, REPLY_REJECT, "550", "5.7.1",
	            "Recipient address <blocked@example.test> rejected: no such user", "blocked");
	rcpt_ok(c, "<vip@example.test>");
	engine_conn_free(c);
	conf_unref(cf);
}

static void test_client_whitelist(void **state)
{
	struct conf *cf = mkconf("access.client",
	                         table("cidr", "192.0.2.0/24 OK\n"
	                                       "198.51.100.1 REJECT go away\n"),
	                         "access.client_name", table("texthash", "good.example.net OK\n"),
	                         "score.tag", "0");
	struct conn *c;
	struct reply r;

	(void)state;
	/* OK beats a bad HELO and a bad sender */
	c = start(cf, NULL, "192.0.2.7", "localhost");
	assert_true(c->whitelisted);
	assert_int_equal(c->nheld, 0);
	mail(c, "<a@localhost>");
	rcpt_ok(c, "<b@example.test>");
	rcpt_ok(c, "<b@localhost>");
	engine_eom(c, &r);
	expect_continue(&r, "eom");
	assert_int_equal(c->txn->nheaders, 0);
	engine_txn_end(c, &r);
	engine_conn_free(c);

	/* by verified host name */
	c = start(cf, "good.example.net", "203.0.113.9", "localhost");
	assert_true(c->whitelisted);
	mail(c, "<a@example.org>");
	rcpt_ok(c, "<b@example.test>");
	engine_conn_free(c);

	/* not listed: the HELO counts */
	c = start(cf, "other.example.net", "203.0.113.9", "localhost");
	mail(c, "<a@example.org>");
	engine_rcpt(c, "<b@example.test>", &r);
	assert_int_equal(r.action, REPLY_REJECT);
	engine_conn_free(c);

	/* a client REJECT is held until RCPT */
	c = start(cf, NULL, "198.51.100.1", "mail.example.org");
	mail(c, "<a@example.org>");
	engine_rcpt(c, "<b@example.test>", &r);
	expect_fail(c, &r, REPLY_REJECT, "550", "5.7.1",
	            "Client host 198.51.100.1 rejected: go away", "client reject");
	/* ... but postmaster@ still gets through */
	rcpt_ok(c, "<postmaster@example.test>");
	engine_conn_free(c);
	conf_unref(cf);
}

static void test_sender_whitelist(void **state)
{
	struct conf *cf =
	    mkconf("access.sender", table("texthash", "friend@example.org OK\n"), "score.tag", "0");
	struct conn *c = start(cf, NULL, "192.0.2.7", "localhost");
	struct reply r;
	char ref[REF_LEN + 1];

	(void)state;
	mail(c, "<friend@example.org>");
	assert_true(c->txn->whitelisted);
	rcpt_ok(c, "<b@example.test>");
	rcpt_ok(c, "<b@localhost>");
	engine_eom(c, &r);
	expect_continue(&r, "eom");
	bcopy_str(ref, sizeof(ref), c->txn->ref);
	engine_txn_end(c, &r);

	/* the next transaction on the same connection is not whitelisted */
	mail(c, "<stranger@example.org>");
	assert_false(c->txn->whitelisted);
	assert_string_not_equal(c->txn->ref, ref);
	engine_rcpt(c, "<b@example.test>", &r);
	expect_fail(c, &r, REPLY_REJECT, "550", "5.7.1", "HELO localhost from a remote client",
	            "second transaction");
	engine_conn_free(c);
	conf_unref(cf);
}

/* --- modes --------------------------------------------------------------- */

static void test_monitor_mode(void **state)
{
	struct conf *cf = mkconf("helo.mode", "monitor", "score.tag", "0");
	struct conn *c = start(cf, NULL, "192.0.2.7", "localhost");
	const struct add_header *h;
	struct reply r;
	char want[128], ref[REF_LEN + 1], line[2048], *log;

	(void)state;
	log_start();
	assert_int_equal(c->nheld, 0);
	mail(c, "<a@example.org>");
	rcpt_ok(c, "<b@example.test>");
	rcpt_ok(c, "<c@example.test>");
	engine_header(c, "Subject", "hello", &r);
	expect_continue(&r, "header");
	engine_eom(c, &r);
	expect_continue(&r, "eom");
	h = find_header(c, "X-Portcullis-Monitor");
	assert_non_null(h);
	snprintf(want, sizeof(want), "helo.localhost (ref %s)", c->txn->ref);
	assert_string_equal(h->value, want);
	assert_null(find_header(c, "X-Portcullis-Status"));
	bcopy_str(ref, sizeof(ref), c->txn->ref);
	engine_txn_end(c, &r);
	/* the connection's monitor note is named in every transaction */
	mail(c, "<a@example.org>");
	rcpt_ok(c, "<b@example.test>");
	engine_eom(c, &r);
	assert_non_null(h = find_header(c, "X-Portcullis-Monitor"));
	expect_in(h->value, "helo.localhost");
	engine_txn_end(c, &r);
	engine_conn_free(c);
	log = log_stop();
	log_line(log, ref, line, sizeof(line));
	expect_in(line, " verdict=accept ");
	expect_in(line, " monitor=helo.localhost ");
	assert_null(strstr(line, " symbols="));
	free(log);
	conf_unref(cf);

	/* the header prefix is configurable */
	cf = mkconf("helo.non_fqdn", "monitor", "header_prefix", "X-Test", "score.tag", "0");
	c = start(cf, NULL, "192.0.2.7", "foo");
	mail(c, "<a@example.org>");
	rcpt_ok(c, "<b@example.test>");
	engine_eom(c, &r);
	expect_continue(&r, "eom");
	assert_null(find_header(c, "X-Portcullis-Monitor"));
	assert_non_null(h = find_header(c, "X-Test-Monitor"));
	expect_in(h->value, "helo.non_fqdn");
	engine_txn_end(c, &r);
	engine_conn_free(c);
	conf_unref(cf);
}

static void test_defer_and_off_modes(void **state)
{
	struct conf *cf = mkconf("helo.mode", "defer");
	struct conn *c = start(cf, NULL, "192.0.2.7", "localhost");
	struct reply r;

	(void)state;
	mail(c, "<a@example.org>");
	engine_rcpt(c, "<b@example.test>", &r);
	expect_fail(c, &r, REPLY_TEMPFAIL, "450", "4.7.1", "HELO localhost from a remote client",
	            "defer mode");
	assert_int_equal(c->txn->last_rcpt->outcome, RCPT_DEFERRED);
	engine_conn_free(c);
	conf_unref(cf);

	cf = mkconf("helo.non_fqdn", "defer");
	c = start(cf, NULL, "192.0.2.7", "foo");
	mail(c, "<a@example.org>");
	engine_rcpt(c, "<b@example.test>", &r);
	expect_fail(c, &r, REPLY_TEMPFAIL, "450", "4.5.2",
	            "HELO foo is not a fully qualified domain name", "defer sub-check");
	engine_conn_free(c);
	conf_unref(cf);

	/* access tables: a REJECT entry in defer mode */
	cf = mkconf("access.mode", "defer", "access.helo",
	            table("texthash", "bad.example REJECT go away\n"));
	c = start(cf, NULL, "192.0.2.7", "bad.example");
	mail(c, "<a@example.org>");
	engine_rcpt(c, "<b@example.test>", &r);
	expect_fail(c, &r, REPLY_TEMPFAIL, "450", "4.7.1", "HELO bad.example rejected: go away",
	            "access defer mode");
	engine_conn_free(c);
	conf_unref(cf);

	cf = mkconf("helo.mode", "off");
	c = start(cf, NULL, "192.0.2.7", "localhost");
	assert_int_equal(c->nheld, 0);
	assert_int_equal(c->nnotes, 0);
	mail(c, "<a@example.org>");
	rcpt_ok(c, "<b@example.test>");
	engine_eom(c, &r);
	expect_continue(&r, "eom");
	assert_int_equal(c->txn->nheaders, 0);
	engine_txn_end(c, &r);
	engine_conn_free(c);
	conf_unref(cf);
}

/* The effective mode is the lower of the module's and the sub-check's. */
static void test_mode_min(void **state)
{
	static const struct {
		const char *module, *sub;
		enum reply_action rcpt; /* CONTINUE: accepted */
		int header;             /* monitor header expected */
	} cases[] = {
		{ "reject", "reject", REPLY_REJECT, 0 },
		{ "reject", "defer", REPLY_TEMPFAIL, 0 },
		{ "defer", "reject", REPLY_TEMPFAIL, 0 },
		{ "defer", "defer", REPLY_TEMPFAIL, 0 },
		{ "reject", "monitor", REPLY_CONTINUE, 1 },
		{ "monitor", "reject", REPLY_CONTINUE, 1 },
		{ "defer", "monitor", REPLY_CONTINUE, 1 },
		{ "monitor", "defer", REPLY_CONTINUE, 1 },
		{ "monitor", "monitor", REPLY_CONTINUE, 1 },
		{ "off", "reject", REPLY_CONTINUE, 0 },
		{ "reject", "off", REPLY_CONTINUE, 0 },
		{ "monitor", "off", REPLY_CONTINUE, 0 },
		{ "off", "monitor", REPLY_CONTINUE, 0 },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct conf *cf = mkconf("helo.mode", cases[i].module, "helo.localhost",
		                         cases[i].sub, "score.tag", "0");
		struct conn *c = start(cf, NULL, "192.0.2.7", "localhost");
		struct reply r;
		const struct add_header *h;

		mail(c, "<a@example.org>");
		engine_rcpt(c, "<b@example.test>", &r);
		if (r.action != cases[i].rcpt)
			fail_msg("helo.mode=%s helo.localhost=%s: %s, expected %s", cases[i].module,
			         cases[i].sub, action_name(r.action), action_name(cases[i].rcpt));
		if (r.action == REPLY_TEMPFAIL)
			expect_fail(c, &r, REPLY_TEMPFAIL, "450", "4.7.1",
			            "HELO localhost from a remote client", cases[i].sub);
		if (r.action == REPLY_REJECT)
			expect_fail(c, &r, REPLY_REJECT, "550", "5.7.1",
			            "HELO localhost from a remote client", cases[i].sub);
		if (r.action == REPLY_CONTINUE) {
			engine_eom(c, &r);
			expect_continue(&r, "eom");
			h = find_header(c, "X-Portcullis-Monitor");
			if ((h != NULL) != cases[i].header)
				fail_msg("helo.mode=%s helo.localhost=%s: monitor header %s",
				         cases[i].module, cases[i].sub, h ? h->value : "missing");
			if (h)
				expect_in(h->value, "helo.localhost");
			assert_int_equal(c->txn->nheaders, cases[i].header);
			engine_txn_end(c, &r);
		}
		engine_conn_free(c);
		conf_unref(cf);
	}
}

/* --- scores ---------------------------------------------------------------- */

static void test_scores(void **state)
{
	const char *clients = table("cidr", "192.0.2.1 SCORE 6\n"
	                                    "192.0.2.2 SCORE 12\n"
	                                    "192.0.2.3 SCORE 3\n");
	const char *senders = table("texthash", "scored@example.org SCORE 4\n");
	const char *rcpts = table("texthash", "scored@example.test SCORE 2\n"
	                                      "lenient@example.test SCORE -5\n");
	struct conf *cf =
	    mkconf("access.client", clients, "access.sender", senders, "access.recipient", rcpts);
	const struct add_header *h;
	struct conn *c;
	struct reply r;
	char want[256], ref[REF_LEN + 1], line[2048], *log;

	(void)state;
	/* 12 >= score.reject 10: reject at RCPT */
	log_start();
	c = start(cf, NULL, "192.0.2.2", "mail.example.org");
	mail(c, "<a@example.org>");
	engine_rcpt(c, "<b@example.test>", &r);
	expect_fail(c, &r, REPLY_REJECT, "550", "5.7.1", "Message scored 12.0, threshold 10.0",
	            "score reject");
	bcopy_str(ref, sizeof(ref), c->txn->ref);
	engine_conn_free(c);
	log = log_stop();
	log_line(log, ref, line, sizeof(line));
	expect_in(line, " refused=<b@example.test>:reject:score.reject ");
	expect_in(line, " score=12.0 ");
	expect_in(line, " symbols=access.client(12)");
	free(log);

	/* 6: accepted, tagged at EOM (score.tag 5) */
	c = start(cf, NULL, "192.0.2.1", "mail.example.org");
	mail(c, "<a@example.org>");
	rcpt_ok(c, "<b@example.test>");
	engine_eom(c, &r);
	expect_continue(&r, "eom");
	assert_non_null(h = find_header(c, "X-Portcullis-Status"));
	snprintf(want, sizeof(want), "Yes, score=6.0 tag=5.0 symbols=access.client(6) (ref %s)",
	         c->txn->ref);
	assert_string_equal(h->value, want);
	engine_txn_end(c, &r);
	engine_conn_free(c);

	/* 3: below the tag */
	c = start(cf, NULL, "192.0.2.3", "mail.example.org");
	mail(c, "<a@example.org>");
	rcpt_ok(c, "<b@example.test>");
	engine_eom(c, &r);
	expect_continue(&r, "eom");
	assert_int_equal(c->txn->nheaders, 0);
	engine_txn_end(c, &r);

	/* client 3 + sender 4 = 7: tagged, both symbols; the next transaction
	 * starts again from the connection's 3 */
	mail(c, "<scored@example.org>");
	rcpt_ok(c, "<b@example.test>");
	engine_eom(c, &r);
	assert_non_null(h = find_header(c, "X-Portcullis-Status"));
	snprintf(want, sizeof(want),
	         "Yes, score=7.0 tag=5.0 symbols=access.client(3),access.sender(4) (ref %s)",
	         c->txn->ref);
	assert_string_equal(h->value, want);
	engine_txn_end(c, &r);
	mail(c, "<a@example.org>");
	rcpt_ok(c, "<b@example.test>");
	engine_eom(c, &r);
	assert_int_equal(c->txn->nheaders, 0);
	engine_txn_end(c, &r);
	engine_conn_free(c);

	/* client 6 + sender 4 = 10: reject at RCPT */
	c = start(cf, NULL, "192.0.2.1", "mail.example.org");
	mail(c, "<scored@example.org>");
	engine_rcpt(c, "<b@example.test>", &r);
	expect_fail(c, &r, REPLY_REJECT, "550", "5.7.1", "Message scored 10.0, threshold 10.0",
	            "6 + 4");
	engine_conn_free(c);
	conf_unref(cf);

	/* a recipient's own score counts for that recipient only */
	cf = mkconf("access.client", clients, "access.recipient", rcpts, "score.reject", "8");
	c = start(cf, NULL, "192.0.2.1", "mail.example.org");
	mail(c, "<a@example.org>");
	engine_rcpt(c, "<scored@example.test>", &r);
	expect_fail(c, &r, REPLY_REJECT, "550", "5.7.1", "Message scored 8.0, threshold 8.0",
	            "6 + 2");
	rcpt_ok(c, "<b@example.test>");
	engine_conn_free(c);
	conf_unref(cf);

	/* score.defer: a temporary failure */
	cf = mkconf("access.client", clients, "score.defer", "5");
	c = start(cf, NULL, "192.0.2.1", "mail.example.org");
	mail(c, "<a@example.org>");
	engine_rcpt(c, "<b@example.test>", &r);
	expect_fail(c, &r, REPLY_TEMPFAIL, "451", "4.7.1", "Message scored 6.0, threshold 5.0",
	            "score defer");
	engine_conn_free(c);
	c = start(cf, NULL, "192.0.2.2", "mail.example.org");
	mail(c, "<a@example.org>");
	engine_rcpt(c, "<b@example.test>", &r);
	expect_fail(c, &r, REPLY_REJECT, "550", "5.7.1", "Message scored 12.0, threshold 10.0",
	            "reject beats defer");
	engine_conn_free(c);
	conf_unref(cf);

	/* 0 switches a threshold off */
	cf = mkconf("access.client", clients, "score.reject", "0", "score.tag", "0");
	c = start(cf, NULL, "192.0.2.2", "mail.example.org");
	mail(c, "<a@example.org>");
	rcpt_ok(c, "<b@example.test>");
	engine_eom(c, &r);
	expect_continue(&r, "eom");
	assert_int_equal(c->txn->nheaders, 0);
	engine_txn_end(c, &r);
	engine_conn_free(c);
	conf_unref(cf);

	/* a score in monitor mode is only noted */
	cf = mkconf("access.client", clients, "access.mode", "monitor");
	c = start(cf, NULL, "192.0.2.2", "mail.example.org");
	mail(c, "<a@example.org>");
	rcpt_ok(c, "<b@example.test>");
	engine_eom(c, &r);
	expect_continue(&r, "eom");
	assert_null(find_header(c, "X-Portcullis-Status"));
	assert_non_null(h = find_header(c, "X-Portcullis-Monitor"));
	expect_in(h->value, "access.client(12)");
	engine_txn_end(c, &r);
	engine_conn_free(c);
	conf_unref(cf);
}

/* At EOM only the message's score counts (connection + MAIL + content), not
 * a recipient's own. */
static void test_score_eom(void **state)
{
	const char *clients = table("cidr", "192.0.2.1 SCORE 6\n"
	                                    "192.0.2.2 SCORE 12\n");
	const char *rcpts = table("texthash", "lenient@example.test SCORE -5\n");
	struct conf *cf = mkconf("access.client", clients, "access.recipient", rcpts);
	struct conn *c;
	struct reply r;
	char ref[REF_LEN + 1], line[2048], *log;

	(void)state;
	log_start();
	c = start(cf, NULL, "192.0.2.2", "mail.example.org");
	mail(c, "<a@example.org>");
	rcpt_ok(c, "<lenient@example.test>"); /* 12 - 5 = 7 < 10 */
	engine_header(c, "Subject", "x", &r);
	expect_continue(&r, "header");
	engine_eom(c, &r);
	expect_fail(c, &r, REPLY_REJECT, "550", "5.7.1", "Message scored 12.0, threshold 10.0",
	            "eom reject");
	bcopy_str(ref, sizeof(ref), c->txn->ref);
	engine_txn_end(c, &r);
	assert_null(c->txn);
	engine_conn_free(c);
	log = log_stop();
	log_line(log, ref, line, sizeof(line));
	expect_in(line, " to=<lenient@example.test> ");
	expect_in(line, " verdict=reject ");
	free(log);
	conf_unref(cf);

	cf = mkconf("access.client", clients, "access.recipient", rcpts, "score.defer", "5");
	c = start(cf, NULL, "192.0.2.1", "mail.example.org");
	mail(c, "<a@example.org>");
	rcpt_ok(c, "<lenient@example.test>"); /* 6 - 5 = 1 < 5 */
	engine_eom(c, &r);
	expect_fail(c, &r, REPLY_TEMPFAIL, "451", "4.7.1", "Message scored 6.0, threshold 5.0",
	            "eom defer");
	engine_txn_end(c, &r);
	engine_conn_free(c);
	conf_unref(cf);
}

/* Whitelisted recipients (postmaster@, access.recipient OK) beat every
 * envelope verdict at RCPT; the envelope score must not turn that into a
 * reject at EOM ("Whitelists beat everything", postmaster@ always
 * reachable). */
static void test_whitelisted_rcpt_not_rejected_at_eom(void **state)
{
	struct conf *cf = mkconf("access.client", table("cidr", "192.0.2.2 SCORE 12\n"),
	                         "access.recipient", table("texthash", "vip@example.test OK\n"));
	static const char *const rcpts[] = { "<postmaster@example.test>", "<vip@example.test>" };

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(rcpts); i++) {
		struct conn *c = start(cf, NULL, "192.0.2.2", "mail.example.org");
		struct reply r;

		mail(c, "<a@example.org>");
		rcpt_ok(c, rcpts[i]);
		engine_eom(c, &r);
		if (r.action == REPLY_REJECT || r.action == REPLY_TEMPFAIL) {
			char msg[800];

			snprintf(msg, sizeof(msg), "%s %s %s", r.code, r.xcode, r.text);
			engine_conn_free(c);
			conf_unref(cf);
			fail_msg("mail to whitelisted %s accepted at RCPT, refused at EOM: %s",
			         rcpts[i], msg);
		}
		engine_txn_end(c, &r);
		engine_conn_free(c);
	}
	conf_unref(cf);
}

/* --- trusted networks, SMTP AUTH ----------------------------------------- */

static void test_trusted_networks(void **state)
{
	static const struct {
		const char *ip;
		int trusted;
	} cases[] = {
		{ "127.0.0.1", 1 },        { "127.1.2.3", 1 }, { "::1", 1 },
		{ "::ffff:127.0.0.1", 1 }, { "192.0.2.7", 1 }, { "192.0.2.255", 1 },
		{ "2001:db8::1", 1 },      { "192.0.3.1", 0 }, { "2001:db9::1", 0 },
		{ "198.51.100.1", 0 },
	};
	struct conf *cf =
	    mkconf("trusted_networks",
	           "127.0.0.0/8, [::1]/128, 192.0.2.0/24 "
	           "2001:db8::/32",
	           "access.client", table("cidr", "0.0.0.0/0 SCORE 20\n::/0 SCORE 20\n"));

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct conn *c = start(cf, NULL, cases[i].ip, "foo");
		struct reply r;

		if (c->trusted != cases[i].trusted)
			fail_msg("%s: trusted=%d", cases[i].ip, c->trusted);
		mail(c, "<a@localhost>");
		engine_rcpt(c, "<b@localhost>", &r);
		if (cases[i].trusted) {
			expect_continue(&r, cases[i].ip);
			assert_true(c->whitelisted);
			assert_true(c->score == 0);
			engine_eom(c, &r);
			expect_continue(&r, "eom");
			assert_int_equal(c->txn->nheaders, 0);
			engine_txn_end(c, &r);
		} else {
			if (r.action != REPLY_REJECT)
				fail_msg("%s: not trusted but %s", cases[i].ip,
				         action_name(r.action));
		}
		engine_conn_free(c);
	}
	conf_unref(cf);

	/* the default trusts the loopback */
	cf = conf_load(NULL, (char[256]){ 0 }, 256);
	assert_non_null(cf);
	{
		struct conn *c = start(cf, NULL, "127.0.0.1", "foo");
		struct reply r;

		assert_true(c->trusted);
		mail(c, "<a@localhost>");
		engine_rcpt(c, "<b@example.test>", &r);
		expect_continue(&r, "loopback with default trusted_networks");
		engine_conn_free(c);
		c = start(cf, NULL, "192.0.2.7", "foo");
		assert_false(c->trusted);
		engine_conn_free(c);
	}
	conf_unref(cf);
}

/* A client without an address: "sendmail -bs" run by a local process
 * (Sendmail passes no address and the name "localhost") is a loopback
 * client; without that name (e.g. Postfix behind a proxy that could not
 * tell the address) it is an unknown remote client. */
static void test_local_client(void **state)
{
	struct conf *cf = mkconf("trusted_networks", "");
	struct conn *c;
	struct reply r;

	(void)state;
	/* not trusted (empty list), but HELO localhost is fine locally */
	c = start(cf, "localhost", "", "localhost");
	assert_true(c->local);
	assert_false(c->trusted);
	mail(c, "<a@example.net>");
	engine_rcpt(c, "<b@example.test>", &r);
	expect_continue(&r, "HELO localhost from a local client");
	engine_conn_free(c);
	c = start(cf, "localhost", NULL, "mx.example.test");
	mail(c, "<a@example.net>");
	engine_rcpt(c, "<b@example.test>", &r);
	expect_continue(&r, "HELO with our own name from a local client");
	engine_conn_free(c);
	/* no address and another name: HELO localhost is refused */
	c = start(cf, "unknown", "", "localhost");
	assert_false(c->local);
	mail(c, "<a@example.net>");
	engine_rcpt(c, "<b@example.test>", &r);
	expect_fail(c, &r, REPLY_REJECT, "550", "5.7.1", "HELO localhost from a remote client",
	            "HELO localhost without an address");
	engine_conn_free(c);
	conf_unref(cf);

	/* trusted when trusted_networks holds the loopback, IPv4 or IPv6 */
	static const char *const nets[] = { "127.0.0.0/8", "::1/128", "192.0.2.0/24" };
	for (size_t i = 0; i < ARRAY_SIZE(nets); i++) {
		cf = mkconf("trusted_networks", nets[i]);
		c = start(cf, "localhost", "", "foo");
		if (c->trusted != (i < 2))
			fail_msg("trusted_networks = %s: trusted=%d", nets[i], c->trusted);
		engine_conn_free(c);
		c = start(cf, "unknown", "", "foo");
		assert_false(c->trusted);
		engine_conn_free(c);
		conf_unref(cf);
	}
}

/* An authenticated client ({auth_authen} set after MAIL, as milter.c
 * does) skips the checks when auth_whitelist = yes, and only then. */
static void test_auth_whitelist(void **state)
{
	struct conf *yes = mkconf("auth_whitelist", "yes", "score.tag", "0");
	struct conf *no = mkconf("auth_whitelist", "no", "score.tag", "0");
	struct conn *c;
	struct reply r;
	char msg[800], refs[2][REF_LEN + 1], line[2048], *log;

	(void)state;
	/* not authenticated: the bad HELO counts either way */
	c = start(yes, NULL, "192.0.2.7", "localhost");
	mail(c, "<a@example.org>");
	engine_set_auth(c, "");
	engine_rcpt(c, "<b@example.test>", &r);
	assert_int_equal(r.action, REPLY_REJECT);
	engine_conn_free(c);

	c = start(no, NULL, "192.0.2.7", "localhost");
	mail(c, "<a@example.org>");
	engine_set_auth(c, "alice");
	assert_string_equal(c->txn->auth_authen, "alice");
	engine_rcpt(c, "<b@example.test>", &r);
	expect_fail(c, &r, REPLY_REJECT, "550", "5.7.1", "HELO localhost from a remote client",
	            "auth_whitelist = no");
	engine_conn_free(c);

	/* set before MAIL (recommended): this and the following transactions */
	log_start();
	c = start(yes, NULL, "192.0.2.7", "localhost");
	engine_set_auth(c, "alice");
	for (int i = 0; i < 2; i++) {
		mail(c, "<a@localhost>");
		assert_true(c->txn->whitelisted);
		assert_string_equal(c->txn->auth_authen, "alice");
		bcopy_str(refs[i], sizeof(refs[i]), c->txn->ref);
		rcpt_ok(c, "<b@example.test>");
		rcpt_ok(c, "<b@localhost>");
		engine_eom(c, &r);
		expect_continue(&r, "eom");
		engine_txn_end(c, &r);
	}
	engine_conn_free(c);
	log = log_stop();
	for (int i = 0; i < 2; i++) {
		log_line(log, refs[i], line, sizeof(line));
		expect_in(line, " auth=alice ");
		expect_in(line, " verdict=accept ");
		expect_symbol(line, "symbols", "auth");
	}
	free(log);

	/* set after MAIL, as milter.c does */
	c = start(yes, NULL, "192.0.2.7", "localhost");
	engine_mail(c, "<a@localhost>", &r);
	engine_set_auth(c, "alice");
	engine_rcpt(c, "<b@example.test>", &r);
	snprintf(msg, sizeof(msg), "%s %s %s %s", action_name(r.action), r.code, r.xcode, r.text);
	engine_conn_free(c);
	conf_unref(yes);
	conf_unref(no);
	if (r.action != REPLY_CONTINUE)
		fail_msg("auth_whitelist = yes, authenticated as alice: %s (expected accept)", msg);
}

/* --- several transactions, HELO again --------------------------------------- */

static void test_transactions(void **state)
{
	struct conf *cf = mkconf("score.tag", "0");
	struct conn *c = start(cf, NULL, "192.0.2.7", "mail.example.org");
	struct reply r;
	char refs[6][REF_LEN + 1], line[2048], *log;

	(void)state;
	log_start();
	/* 1: two recipients, accepted */
	mail(c, "<a@example.org>");
	bcopy_str(refs[0], sizeof(refs[0]), c->txn->ref);
	rcpt_ok(c, "<x@example.test>");
	rcpt_ok(c, "<y@example.test>");
	assert_int_equal(c->txn->nrcpt, 2);
	assert_int_equal(c->txn->naccepted, 2);
	engine_header(c, "Subject", "one", &r);
	engine_header(c, "From", "a@example.org", &r);
	assert_int_equal(c->txn->nhdr, 2);
	engine_eom(c, &r);
	expect_continue(&r, "eom 1");
	engine_txn_end(c, &r);
	assert_null(c->txn);

	/* 2: state starts afresh */
	mail(c, "<b@example.org>");
	bcopy_str(refs[1], sizeof(refs[1]), c->txn->ref);
	assert_int_equal(c->txn->nrcpt, 0);
	assert_int_equal(c->txn->naccepted, 0);
	assert_int_equal(c->txn->nhdr, 0);
	assert_null(c->txn->rcpts);
	rcpt_ok(c, "<z@example.test>");
	engine_eom(c, &r);
	engine_txn_end(c, &r);

	/* 3: a bad sender, then RSET */
	mail(c, "<bad@localhost>");
	bcopy_str(refs[2], sizeof(refs[2]), c->txn->ref);
	engine_rcpt(c, "<x@example.test>", &r);
	expect_fail(c, &r, REPLY_REJECT, "550", "5.5.2",
	            "Sender address <bad@localhost> rejected: need fully-qualified address",
	            "bad sender");
	engine_abort(c);
	assert_null(c->txn);
	engine_abort(c); /* twice is harmless */

	/* 4: the held MAIL verdict is gone */
	mail(c, "<c@example.org>");
	bcopy_str(refs[3], sizeof(refs[3]), c->txn->ref);
	assert_int_equal(c->txn->nheld, 0);
	rcpt_ok(c, "<x@example.test>");

	/* 5: MAIL again without an end of the previous one: logged, replaced */
	mail(c, "<d@example.org>");
	bcopy_str(refs[4], sizeof(refs[4]), c->txn->ref);
	assert_int_equal(c->txn->nrcpt, 0);

	/* 6: RCPT without MAIL opens a null-sender transaction */
	engine_abort(c);
	engine_rcpt(c, "<x@example.test>", &r);
	expect_continue(&r, "rcpt without mail");
	assert_non_null(c->txn);
	assert_true(c->txn->sender.flags & ADDR_NULL);
	bcopy_str(refs[5], sizeof(refs[5]), c->txn->ref);
	assert_int_equal(c->ntxn, 6);
	engine_conn_free(c);

	/* engine_eom / engine_header without a transaction */
	c = start(cf, NULL, "192.0.2.7", "mail.example.org");
	engine_header(c, "Subject", "x", &r);
	expect_continue(&r, "header without txn");
	engine_eom(c, &r);
	expect_continue(&r, "eom without txn");
	engine_txn_end(c, &r);
	engine_conn_free(c);

	log = log_stop();
	for (int i = 0; i < 6; i++)
		for (int j = i + 1; j < 6; j++)
			if (strcmp(refs[i], refs[j]) == 0)
				fail_msg("transactions %d and %d share ref %s", i, j, refs[i]);
	for (int i = 0; i < 6; i++)
		for (const char *p = refs[i]; *p; p++)
			assert_non_null(
			    strchr("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
			           "qrstuvwxyz",
			           *p));
	log_line(log, refs[0], line, sizeof(line));
	expect_in(line, " from=<a@example.org> ");
	expect_in(line, " to=<x@example.test>,<y@example.test> ");
	expect_in(line, " verdict=accept ");
	log_line(log, refs[1], line, sizeof(line));
	expect_in(line, " from=<b@example.org> ");
	expect_in(line, " to=<z@example.test> ");
	expect_in(line, " verdict=accept ");
	log_line(log, refs[2], line, sizeof(line));
	expect_in(line, " refused=<x@example.test>:reject:envelope.sender_non_fqdn ");
	expect_in(line, " verdict=reject ");
	log_line(log, refs[3], line, sizeof(line));
	expect_in(line, " from=<c@example.org> ");
	expect_in(line, " to=<x@example.test> ");
	expect_in(line, " verdict=aborted ");
	log_line(log, refs[4], line, sizeof(line));
	expect_in(line, " from=<d@example.org> ");
	expect_in(line, " verdict=none ");
	assert_null(strstr(line, " to="));
	log_line(log, refs[5], line, sizeof(line));
	expect_in(line, " from=<> ");
	expect_in(line, " to=<x@example.test> ");
	expect_in(line, " verdict=aborted ");
	free(log);
	conf_unref(cf);
}

static void test_second_helo(void **state)
{
	struct conf *cf = mkconf("access.helo",
	                         table("texthash", "scored.example SCORE 6\n"
	                                           "friend.example OK\n"),
	                         "access.client", table("cidr", "203.0.113.0/24 OK\n"));
	struct conn *c;
	struct reply r;

	(void)state;
	/* bad, then good: accepted */
	c = start(cf, NULL, "192.0.2.7", "localhost");
	assert_int_equal(c->nheld, 1);
	engine_helo(c, "mail.example.org", &r);
	expect_continue(&r, "second helo");
	assert_int_equal(c->nheld, 0);
	assert_string_equal(c->helo, "mail.example.org");
	mail(c, "<a@example.org>");
	rcpt_ok(c, "<b@example.test>");
	engine_conn_free(c);

	/* good, then bad: rejected for the second */
	c = start(cf, NULL, "192.0.2.7", "mail.example.org");
	engine_helo(c, "foo", &r);
	mail(c, "<a@example.org>");
	engine_rcpt(c, "<b@example.test>", &r);
	expect_fail(c, &r, REPLY_REJECT, "550", "5.5.2",
	            "HELO foo is not a fully qualified domain name", "good then bad");
	engine_conn_free(c);

	/* bad, then a different bad: only the second is held */
	c = start(cf, NULL, "192.0.2.7", "localhost");
	engine_helo(c, "foo", &r);
	assert_int_equal(c->nheld, 1);
	assert_string_equal(c->held[0].symbol, "helo.non_fqdn");
	engine_conn_free(c);

	/* a HELO score is taken back */
	c = start(cf, NULL, "192.0.2.7", "scored.example");
	assert_true(c->score == 6);
	engine_helo(c, "mail.example.org", &r);
	assert_true(c->score == 0);
	mail(c, "<a@example.org>");
	rcpt_ok(c, "<b@example.test>");
	engine_eom(c, &r);
	assert_null(find_header(c, "X-Portcullis-Status"));
	engine_txn_end(c, &r);
	engine_helo(c, "scored.example", &r);
	assert_true(c->score == 6);
	mail(c, "<a@example.org>");
	rcpt_ok(c, "<b@example.test>");
	engine_eom(c, &r);
	assert_non_null(find_header(c, "X-Portcullis-Status"));
	engine_txn_end(c, &r);
	engine_conn_free(c);

	/* a whitelisted client stays whitelisted whatever it says next */
	c = start(cf, NULL, "203.0.113.5", "mail.example.org");
	engine_helo(c, "localhost", &r);
	mail(c, "<a@example.org>");
	rcpt_ok(c, "<b@example.test>");
	engine_conn_free(c);
	conf_unref(cf);
}

/* A whitelist that came from the HELO name belongs to that name: a second
 * HELO with another name must be judged on its own ("the new name is the
 * one that counts", engine.c forget_helo). */
static void test_second_helo_drops_helo_whitelist(void **state)
{
	struct conf *cf = mkconf("access.helo", table("texthash", "friend.example OK\n"));
	struct conn *c = start(cf, NULL, "192.0.2.7", "friend.example");
	struct reply r;
	char msg[800];

	(void)state;
	assert_true(c->whitelisted);
	engine_helo(c, "localhost", &r);
	mail(c, "<a@example.org>");
	engine_rcpt(c, "<b@example.test>", &r);
	snprintf(msg, sizeof(msg), "%s %s %s %s", action_name(r.action), r.code, r.xcode, r.text);
	engine_conn_free(c);
	conf_unref(cf);
	if (r.action != REPLY_REJECT)
		fail_msg("HELO friend.example (whitelisted) then HELO localhost: %s, expected the "
		         "reject for localhost",
		         msg);
}

/* --- envelope limits -------------------------------------------------------- */

static void test_null_sender_two_rcpts(void **state)
{
	struct conf *cf = mkconf("score.tag", "0");
	struct conn *c = start(cf, NULL, "192.0.2.7", "mail.example.org");
	struct reply r;

	(void)state;
	mail(c, "<>");
	rcpt_ok(c, "<a@example.test>");
	engine_rcpt(c, "<b@example.test>", &r);
	expect_fail(c, &r, REPLY_REJECT, "550", "5.5.3",
	            "Bounce (null sender) with more than one recipient", "second bounce rcpt");
	/* postmaster@ is still reachable */
	rcpt_ok(c, "<postmaster@example.test>");
	engine_eom(c, &r);
	expect_continue(&r, "eom");
	engine_txn_end(c, &r);

	/* a first recipient that was refused does not count */
	mail(c, "<>");
	engine_rcpt(c, "<a@localhost>", &r);
	assert_int_equal(r.action, REPLY_REJECT);
	rcpt_ok(c, "<a@example.test>");
	engine_abort(c);

	/* the count starts again in the next transaction */
	mail(c, "<>");
	rcpt_ok(c, "<c@example.test>");
	engine_conn_free(c);
	conf_unref(cf);
}

/* The log line lists at most 20 recipients of each kind and still ends
 * with the verdict and timing. */
static void test_log_caps_recipients(void **state)
{
	struct conf *cf = mkconf("score.tag", "0");
	struct conn *c;
	struct reply r;
	char *log, line[8192], to[64], ref[REF_LEN + 1];

	(void)state;
	log_start();
	c = start(cf, NULL, "192.0.2.7", "mail.example.org");
	mail(c, "<a@example.org>");
	snprintf(ref, sizeof(ref), "%s", c->txn->ref);
	for (int i = 0; i < 30; i++) {
		snprintf(to, sizeof(to), "<r%d@example.test>", i);
		engine_rcpt(c, to, &r);
		engine_rcpt(c, "<bad@localhost>", &r);
	}
	engine_eom(c, &r);
	engine_txn_end(c, &r);
	engine_conn_free(c);
	log = log_stop();
	log_line(log, ref, line, sizeof(line));
	expect_in(line, "<r19@example.test>,(+10 more) refused=<bad@localhost>:reject:");
	expect_in(line, ",(+10 more) verdict=accept ");
	assert_null(strstr(line, "<r20@example.test>"));
	expect_in(line, " ms=");
	free(log);
	conf_unref(cf);
}

static void test_too_many_rcpts(void **state)
{
	static const struct {
		const char *mode;
		enum reply_action third;
	} cases[] = {
		{ "defer", REPLY_TEMPFAIL },
		{ "reject", REPLY_TEMPFAIL }, /* 452 whatever the mode */
		{ "monitor", REPLY_CONTINUE },
		{ "off", REPLY_CONTINUE },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct conf *cf = mkconf("envelope.max_rcpts", "2", "envelope.too_many_rcpts",
		                         cases[i].mode, "score.tag", "0");
		struct conn *c = start(cf, NULL, "192.0.2.7", "mail.example.org");
		struct reply r;

		mail(c, "<a@example.org>");
		rcpt_ok(c, "<r1@example.test>");
		rcpt_ok(c, "<r2@example.test>");
		engine_rcpt(c, "<r3@example.test>", &r);
		if (cases[i].third == REPLY_TEMPFAIL)
			expect_fail(c, &r, REPLY_TEMPFAIL, "452", "4.5.3",
			            "Too many recipients (limit 2 per message)", cases[i].mode);
		else
			expect_continue(&r, cases[i].mode);
		engine_rcpt(c, "<r4@example.test>", &r);
		assert_int_equal(r.action, cases[i].third);
		assert_int_equal(c->txn->nrcpt, 4);
		assert_int_equal(c->txn->naccepted, cases[i].third == REPLY_CONTINUE ? 4 : 2);
		/* the next transaction may have two again */
		engine_abort(c);
		mail(c, "<a@example.org>");
		rcpt_ok(c, "<r1@example.test>");
		rcpt_ok(c, "<r2@example.test>");
		engine_conn_free(c);
		conf_unref(cf);
	}
}

/* --- engine_stages_needed ------------------------------------------------- */

static void test_stages_needed(void **state)
{
	const unsigned base = 1u << STAGE_CONNECT | 1u << STAGE_HELO | 1u << STAGE_MAIL |
	                      1u << STAGE_RCPT | 1u << STAGE_EOM;
	static const char *const confs[][6] = {
		{ "score.tag", "5", NULL },
		{ "checks", "", NULL },
		{ "checks", "helo", NULL },
		{ "access.mode", "off", "helo.mode", "off", "envelope.mode", "off" },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(confs); i++) {
		const char *kv[8] = { 0 };
		struct conf *cf;
		unsigned need;

		for (int k = 0; k < 6 && confs[i][k]; k++)
			kv[k] = confs[i][k];
		cf = mkconf_v(kv);
		need = engine_stages_needed(cf);
		/* no enabled module reads headers or the body */
		if (need != base)
			fail_msg("case %zu: stages 0x%x, expected 0x%x", i, need, base);
		conf_unref(cf);
	}
	/* every stage an enabled module hooks is asked for */
	{
		struct conf *cf = mkconf("score.tag", "5");
		unsigned need = engine_stages_needed(cf), hooked = 0;

		for (int i = 0; i < cf->norder; i++)
			for (int st = 0; st < STAGE_COUNT; st++)
				if (cf->mod[cf->order[i]].mode != MODE_OFF &&
				    check_registry[cf->order[i]]->hook[st])
					hooked |= 1u << st;
		assert_int_equal(need & hooked, hooked);
		assert_false(need & (1u << STAGE_HEADER | 1u << STAGE_EOH | 1u << STAGE_BODY));
		conf_unref(cf);
	}
	/* spf reads headers (forged Authentication-Results) */
	{
		struct conf *cf = mkconf("checks", "spf");

		assert_true(engine_stages_needed(cf) & 1u << STAGE_HEADER);
		conf_unref(cf);
	}
}

/* --- removing incoming headers: occurrence counting ----------------------- */

static void header(struct conn *c, const char *name, const char *value)
{
	struct reply r;

	engine_header(c, name, value, &r);
	expect_continue(&r, name);
}

static void expect_dels(const struct conn *c, const int *want, int nwant, const char *what)
{
	assert_non_null(c->txn);
	if (c->txn->ndels != nwant)
		fail_msg("%s: %d removals, expected %d", what, c->txn->ndels, nwant);
	for (int i = 0; i < nwant; i++) {
		if (strcasecmp(c->txn->dels[i].name, "Authentication-Results") != 0)
			fail_msg("%s: removal %d names '%s'", what, i, c->txn->dels[i].name);
		if (c->txn->dels[i].index != want[i])
			fail_msg("%s: removal %d has index %d, expected %d", what, i,
			         c->txn->dels[i].index, want[i]);
	}
}

/* The engine counts each header name's occurrences case-insensitively for
 * every header, and the spf module asks to remove exactly the
 * Authentication-Results that carry our authserv-id, by that count. */
static void test_header_index(void **state)
{
	/* spf.skip_clients: no DNS at MAIL; the header hook still runs */
	struct conf *cf =
	    mkconf("checks", "spf", "spf.authserv_id", "mx.example.test", "spf.skip_clients",
	           "192.0.2.0/24", "trusted_networks", "127.0.0.0/8");
	static const int want[] = { 2, 3, 4, 7, 10 };
	static const int want2[] = { 1 };
	char *big = xmalloc(10240 + 64), *log, line[2048], ref[REF_LEN + 1];
	struct conn *c;
	struct reply r;

	(void)state;
	log_start();
	c = start(cf, "client.example.org", "192.0.2.7", "client.example.org");
	mail(c, "<a@example.org>");
	rcpt_ok(c, "<b@example.test>");
	header(c, "Received", "from x by y");
	header(c, "Authentication-Results", "other.example; spf=pass");   /* 1 */
	header(c, "authentication-results", "MX.Example.Test; spf=pass"); /* 2 ours */
	header(c, "Subject", "mx.example.test; x");
	header(c, "AUTHENTICATION-RESULTS", /* 3 ours */
	       " (a (nested) \\) comment)\r\n\t mx.example.test.; dkim=pass");
	header(c, "Authentication-Results", "\"mx.example.test\" 1; none");     /* 4 ours */
	header(c, "Authentication-Results", "mx.example.test.evil; none");      /* 5 */
	header(c, "Authentication-Results", "x mx.example.test; none");         /* 6 */
	header(c, "Authentication-Results", "mx.example.test");                 /* 7 ours */
	header(c, "Authentication-Results", "(unclosed mx.example.test; none"); /* 8 */
	memset(big, 'a', 10240);                                                /* 9 */
	big[10240] = '\0';
	header(c, "Authentication-Results", big);
	memset(big, '(', 5000); /* 10 ours */
	memset(big + 5000, ')', 5000);
	strcpy(big + 10000, " mx.example.test; none");
	header(c, "Authentication-Results", big);
	header(c, "Authentication-Results", ""); /* 11 */
	header(c, "Authentication-Results-X", "mx.example.test; none");
	expect_dels(c, want, 5, "first message");
	bcopy_str(ref, sizeof(ref), c->txn->ref);
	engine_eom(c, &r);
	expect_continue(&r, "eom");
	engine_txn_end(c, &r);

	/* a new transaction counts afresh */
	mail(c, "<a@example.org>");
	rcpt_ok(c, "<b@example.test>");
	header(c, "Authentication-Results", "mx.example.test; spf=pass");
	expect_dels(c, want2, 1, "second message");
	engine_eom(c, &r);
	expect_continue(&r, "eom 2");
	engine_txn_end(c, &r);

	/* more removals than DEL_HEADERS_MAX: refused, not delivered forged */
	mail(c, "<a@example.org>");
	rcpt_ok(c, "<b@example.test>");
	for (int i = 0; i <= DEL_HEADERS_MAX; i++)
		header(c, "Authentication-Results", "mx.example.test; none");
	assert_int_equal(c->txn->ndels, DEL_HEADERS_MAX);
	engine_eom(c, &r);
	expect_fail(c, &r, REPLY_REJECT, "550", "5.7.1",
	            "Message has more than 1000 headers that must be removed", "too many");
	engine_txn_end(c, &r);

	/* hostile values: bounded parsing, never ours */
	mail(c, "<a@example.org>");
	rcpt_ok(c, "<b@example.test>");
	for (const struct hostile *h = hostile_strings; h->name; h++) {
		header(c, "Authentication-Results", h->s);
		header(c, h->s, "mx.example.test; none");
	}
	assert_int_equal(c->txn->ndels, 0);
	engine_eom(c, &r);
	expect_continue(&r, "hostile");
	engine_txn_end(c, &r);
	engine_conn_free(c);

	/* a trusted client is not checked: nothing removed */
	c = start(cf, "client.example.org", "127.0.0.1", "client.example.org");
	mail(c, "<a@example.org>");
	rcpt_ok(c, "<b@example.test>");
	header(c, "Authentication-Results", "mx.example.test; spf=pass");
	assert_int_equal(c->txn->ndels, 0);
	engine_conn_free(c);
	log = log_stop();
	log_line(log, ref, line, sizeof(line));
	expect_symbol(line, "symbols", "spf.forged_ar");
	expect_in(line, " score=0.0 ");
	free(log);
	free(big);
	conf_unref(cf);
}

static void test_make_ref(void **state)
{
	char a[REF_LEN + 1], b[REF_LEN + 1];

	(void)state;
	engine_make_ref(a);
	engine_make_ref(b);
	assert_int_equal(strlen(a), REF_LEN);
	assert_string_not_equal(a, b);
	for (int i = 0; i < REF_LEN; i++)
		assert_true((a[i] >= '0' && a[i] <= '9') || (a[i] >= 'A' && a[i] <= 'Z') ||
		            (a[i] >= 'a' && a[i] <= 'z'));
}

static int ref_cmp(const void *x, const void *y)
{
	return strcmp(x, y);
}

/* The random bytes come from a per-thread block refilled now and then:
 * ids across many refills are all different and well formed, and a child
 * process after fork() does not hand out its parent's next ids. */
static void test_make_ref_many(void **state)
{
	enum { N = 2000 };
	static char refs[N][REF_LEN + 1];
	char parent[4][REF_LEN + 1], child[4][REF_LEN + 1];
	int pfd[2], st;
	pid_t pid;

	(void)state;
	for (int i = 0; i < N; i++) {
		engine_make_ref(refs[i]);
		assert_int_equal(strlen(refs[i]), REF_LEN);
		for (int k = 0; k < REF_LEN; k++)
			assert_non_null(strchr("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
			                       "abcdefghijklmnopqrstuvwxyz",
			                       refs[i][k]));
	}
	qsort(refs, N, sizeof(refs[0]), ref_cmp);
	for (int i = 1; i < N; i++)
		assert_string_not_equal(refs[i - 1], refs[i]);

	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		for (int i = 0; i < 4; i++)
			engine_make_ref(child[i]);
		_exit(write(pfd[1], child, sizeof(child)) == (ssize_t)sizeof(child) ? 0 : 1);
	}
	close(pfd[1]);
	for (int i = 0; i < 4; i++)
		engine_make_ref(parent[i]);
	assert_int_equal(read(pfd[0], child, sizeof(child)), (ssize_t)sizeof(child));
	close(pfd[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	for (int i = 0; i < 4; i++)
		for (int k = 0; k < 4; k++)
			assert_string_not_equal(parent[i], child[k]);
}

/* A line on stderr: "YYYY-MM-DDTHH:MM:SS.mmm IDENT: TAG TEXT\n", one per
 * message, the text cut at 4095 bytes (log_msg and log_str alike). */
static void test_log_line_format(void **state)
{
	char *log, *big = xmalloc(5000);
	const char *p;
	int lines = 0;

	(void)state;
	memset(big, 'x', 4999);
	big[4999] = '\0';
	log_start();
	log_msg(LOG_LVL_WARN, "w %d", 42);
	log_str(LOG_LVL_INFO, "ref=ABC plain text");
	log_str(LOG_LVL_ERR, big);
	log_msg(LOG_LVL_INFO, "%s", big);
	log = log_stop();
	for (p = log; *p; p = strchr(p, '\n') + 1) {
		const char *nl = strchr(p, '\n');

		assert_non_null(nl);
		lines++;
		/* 2026-12-07T03:41:22.123 */
		for (int i = 0; i < 23; i++)
			if (i == 4 || i == 7)
				assert_int_equal(p[i], '-');
			else if (i == 10)
				assert_int_equal(p[i], 'T');
			else if (i == 13 || i == 16)
				assert_int_equal(p[i], ':');
			else if (i == 19)
				assert_int_equal(p[i], '.');
			else
				assert_true(p[i] >= '0' && p[i] <= '9');
		assert_int_equal(p[23], ' ');
		if (lines == 1)
			assert_int_equal(strncmp(p + 24, "portcullis: warning: w 42\n", 26), 0);
		else if (lines == 2)
			assert_int_equal(strncmp(p + 24, "portcullis: ref=ABC plain text\n", 31),
			                 0);
		else if (lines == 3)
			assert_int_equal(nl - p, 24 + (long)strlen("portcullis: error: ") + 4095);
		else
			assert_int_equal(nl - p, 24 + (long)strlen("portcullis: ") + 4095);
	}
	assert_int_equal(lines, 4);
	free(log);
	free(big);
}

/* --- reply texts with '%' ------------------------------------------------- */

static void test_percent_in_text(void **state)
{
	struct conf *cf = mkconf("access.helo", table("texthash", "x.example REJECT 100% spam\n"));
	struct conn *c = start(cf, NULL, "192.0.2.7", "x.example");
	struct reply r;

	(void)state;
	mail(c, "<a@example.org>");
	engine_rcpt(c, "<b@example.test>", &r);
	expect_fail(c, &r, REPLY_REJECT, "550", "5.7.1", "HELO x.example rejected: 100%% spam",
	            "percent doubled");
	engine_conn_free(c);
	conf_unref(cf);
}

/* --- hostile strings ------------------------------------------------------- */

/* Printable, every run of '%' even, short enough for one SMTP reply line,
 * and a reject/defer ends with our ref and contact. */
static void check_reply(const struct conn *c, const struct reply *r, const char *what)
{
	size_t len = strlen(r->text), run = 0, pct = 0;
	char tail[128];

	for (size_t i = 0; i <= len; i++) {
		unsigned char ch = (unsigned char)r->text[i];

		if (i < len && (ch < 0x20 || ch >= 0x7f))
			fail_msg("%s: byte 0x%02x at %zu in reply '%s'", what, ch, i, r->text);
		if (ch == '%') {
			run++;
			pct++;
			continue;
		}
		if (run % 2)
			fail_msg("%s: odd run of %zu '%%' before %zu in '%s'", what, run, i,
			         r->text);
		run = 0;
	}
	/* what the client sees once '%%' is undone */
	if (len - pct / 2 > ENC_REPLY_MAX + 3)
		fail_msg("%s: reply of %zu bytes", what, len - pct / 2);
	if (4 + strlen(r->code) + strlen(r->xcode) + len - pct / 2 + 2 > 512)
		fail_msg("%s: reply line over 512 bytes", what);
	if (r->action == REPLY_CONTINUE || r->action == REPLY_ACCEPT)
		return;
	if (strlen(r->code) != 3 || (r->code[0] != '4' && r->code[0] != '5'))
		fail_msg("%s: code '%s'", what, r->code);
	if (r->xcode[0] != r->code[0] || r->xcode[1] != '.')
		fail_msg("%s: xcode '%s' for code %s", what, r->xcode, r->code);
	snprintf(tail, sizeof(tail), " (ref %s); contact " CONTACT, c->txn->ref);
	if (len < strlen(tail) || strcmp(r->text + len - strlen(tail), tail) != 0)
		fail_msg("%s: reply '%s' does not end with '%s'", what, r->text, tail);
}

static void check_printable_log(const char *log, const char *what)
{
	for (const char *p = log; *p; p++) {
		unsigned char ch = (unsigned char)*p;

		if (ch != '\n' && (ch < 0x20 || ch >= 0x7f))
			fail_msg("%s: byte 0x%02x in log:\n%s", what, ch, log);
	}
}

enum role { R_HELO, R_NAME, R_SENDER, R_RCPT, R_HEADER, R_COUNT };

static void hostile_session(struct conf *cf, enum role role, const char *s, const char *what)
{
	struct conn *c = engine_conn_new(cf);
	struct reply r;

	engine_connect(c, role == R_NAME ? s : "client.example.org", "192.0.2.7", &r);
	check_reply(c, &r, what);
	engine_helo(c, role == R_HELO ? s : "mail.example.org", &r);
	check_reply(c, &r, what);
	engine_mail(c, role == R_SENDER ? s : "<a@example.org>", &r);
	check_reply(c, &r, what);
	engine_rcpt(c, role == R_RCPT ? s : "<b@example.test>", &r);
	check_reply(c, &r, what);
	engine_rcpt(c, role == R_RCPT ? s : "<postmaster@example.test>", &r);
	check_reply(c, &r, what);
	engine_header(c, role == R_HEADER ? s : "Subject", role == R_HEADER ? s : "x", &r);
	check_reply(c, &r, what);
	engine_eom(c, &r);
	check_reply(c, &r, what);
	for (int i = 0; c->txn && i < c->txn->nheaders; i++) {
		const struct add_header *h = &c->txn->headers[i];

		if (strlen(h->value) > ENC_HEADER_MAX)
			fail_msg("%s: header %s of %zu bytes", what, h->name, strlen(h->value));
		for (const char *p = h->value; *p; p++)
			if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
				fail_msg("%s: byte 0x%02x in header %s", what, (unsigned char)*p,
				         h->name);
	}
	engine_txn_end(c, &r);
	engine_conn_free(c);

	/* gone before MAIL: the connection's own log line */
	if (role == R_HELO || role == R_NAME) {
		c = engine_conn_new(cf);
		engine_connect(c, role == R_NAME ? s : NULL, "192.0.2.7", &r);
		check_reply(c, &r, what);
		engine_helo(c, role == R_HELO ? s : "localhost", &r);
		check_reply(c, &r, what);
		engine_conn_free(c);
	}
}

static void test_hostile(void **state)
{
	static const char *const role_names[] = { "HELO", "client name", "sender", "recipient",
		                                  "header" };
	struct conf *cf[3];
	char what[160], *log;

	(void)state;
	/* the modules' own texts, which quote the HELO */
	cf[0] = mkconf("score.tag", "0");
	/* access tables that answer everything and quote the key */
	cf[1] = mkconf("access.client_name", table("pcre", "/^/ REJECT name %s\n"), "access.helo",
	               table("pcre", "/^/ REJECT helo 100%\n"), "access.sender",
	               table("pcre", "/^/ REJECT sender %n\n"), "access.recipient",
	               table("pcre", "/^/ DEFER rcpt %%\n"), "helo.mode", "monitor",
	               "envelope.mode", "monitor");
	/* everything in monitor mode and scored: headers at EOM */
	cf[2] = mkconf("access.helo", table("pcre", "/^/ SCORE 3\n"), "access.sender",
	               table("pcre", "/^/ SCORE 3\n"), "helo.mode", "monitor", "envelope.mode",
	               "monitor", "score.reject", "0");
	log_start();
	for (int k = 0; k < 3; k++)
		for (int role = 0; role < R_COUNT; role++)
			for (const struct hostile *h = hostile_strings; h->name; h++) {
				snprintf(what, sizeof(what), "config %d, %s '%s'", k,
				         role_names[role], h->name);
				hostile_session(cf[k], (enum role)role, h->s, what);
			}
	log = log_stop();
	check_printable_log(log, "hostile");
	assert_non_null(strstr(log, "ref="));
	free(log);
	for (int k = 0; k < 3; k++)
		conf_unref(cf[k]);
}

/* The longest texts: the ref and contact are never cut off. */
static void test_long_texts(void **state)
{
	char entry[1200], contact[100];
	struct conf *cf;
	struct conn *c;
	struct reply r;
	size_t n;

	(void)state;
	n = (size_t)snprintf(entry, sizeof(entry), "bad.example REJECT ");
	memset(entry + n, 'x', 900);
	memcpy(entry + n + 900, "\n", 2);
	cf = mkconf("access.helo", table("texthash", entry));
	c = start(cf, NULL, "192.0.2.7", "bad.example");
	mail(c, "<a@example.org>");
	engine_rcpt(c, "<b@example.test>", &r);
	assert_int_equal(r.action, REPLY_REJECT);
	check_reply(c, &r, "900-byte table text");
	engine_conn_free(c);
	conf_unref(cf);

	/* A long table text with a contact URL of 80 bytes: the text must
	 * give way, "(ref ID); contact CONTACT" must stay whole. */
	memcpy(contact,
	       "https://postmaster.example.org/portcullis/help-for-senders-of-rejected-mail.html",
	       81);
	assert_int_equal(strlen(contact), 80);
	cf = mkconf("access.helo", table("texthash", entry), "contact", contact);
	c = start(cf, NULL, "192.0.2.7", "bad.example");
	mail(c, "<a@example.org>");
	engine_rcpt(c, "<b@example.test>", &r);
	assert_int_equal(r.action, REPLY_REJECT);
	{
		char tail[400], msg[1200];
		size_t len = strlen(r.text);

		snprintf(tail, sizeof(tail), " (ref %s); contact %s", c->txn->ref, contact);
		snprintf(msg, sizeof(msg), "%s", r.text);
		engine_conn_free(c);
		conf_unref(cf);
		if (len < strlen(tail) || strcmp(r.text + len - strlen(tail), tail) != 0)
			fail_msg("reply does not end with '%s': '%s'", tail, msg);
	}
}

/* --- content safety beats whitelists (DESIGN.md principle 4) --------------- */

#define EXE_MSG                                                                                    \
	"--b\r\nContent-Type: application/octet-stream; name=\"invoice.pdf.exe\"\r\n"              \
	"Content-Disposition: attachment; filename=\"invoice.pdf.exe\"\r\n\r\nMZ\r\n--b--\r\n"

/* DATA of a message with an invoice.pdf.exe attachment; returns the EOM
 * answer (the transaction stays open for find_header). */
static void send_exe(struct conn *c, struct reply *r)
{
	header(c, "From", "a@example.org");
	header(c, "Subject", "invoice");
	header(c, "X-Virus-Status", "Clean (forged)");
	header(c, "MIME-Version", "1.0");
	header(c, "Content-Type", "multipart/mixed; boundary=\"b\"");
	engine_eoh(c, r);
	expect_continue(r, "eoh");
	engine_body(c, (const unsigned char *)EXE_MSG, strlen(EXE_MSG), r);
	expect_continue(r, "body");
	engine_eom(c, r);
}

/* Every kind of whitelist: trusted_networks, an authenticated client, a
 * client, sender and recipient OK of an access table, a content OK of
 * header_rules (before and after the attachments check): the attachments
 * check still refuses the .exe, unless attachments.skip_whitelisted. */
static void test_content_safety_whitelisted(void **state)
{
	static const char *const kinds[] = { "trusted",       "auth", "client",
		                             "sender",        "rcpt", "header_ok_first",
		                             "header_ok_last" };
	const char *ok_client = table("cidr", "192.0.2.0/24 OK\n");
	const char *ok_sender = table("texthash", "friend@example.org OK\n");
	const char *ok_rcpt = table("texthash", "vip@example.test OK\n");
	char hdr_rules[512];

	(void)state;
	write_file(hdr_rules, sizeof(hdr_rules), "hdr_ok.rules", "/^Subject: invoice/ OK\n");
	for (int skip = 0; skip < 2; skip++)
		for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
			const char *kind = kinds[k];
			const char *order = strcmp(kind, "header_ok_first") == 0
			                        ? "header_rules, access, attachments"
			                    : strcmp(kind, "header_ok_last") == 0
			                        ? "access, attachments, header_rules"
			                        : "access, attachments";
			struct conf *cf = mkconf(
			    "checks", order, "trusted_networks",
			    strcmp(kind, "trusted") == 0 ? "198.51.100.0/24" : "", "access.client",
			    strcmp(kind, "client") == 0 ? ok_client : "", "access.sender",
			    strcmp(kind, "sender") == 0 ? ok_sender : "", "access.recipient",
			    strcmp(kind, "rcpt") == 0 ? ok_rcpt : "", "header_rules.file",
			    strncmp(kind, "header_ok", 9) == 0 ? hdr_rules : "",
			    "attachments.skip_whitelisted", skip ? "yes" : "no", "score.tag", "0");
			struct conn *c = start(
			    cf, NULL, strcmp(kind, "trusted") == 0 ? "198.51.100.7" : "192.0.2.7",
			    "mail.example.org");
			struct reply r;
			char what[100];

			snprintf(what, sizeof(what), "%s, skip_whitelisted=%d", kind, skip);
			if (strcmp(kind, "auth") == 0)
				engine_set_auth(c, "alice");
			mail(c, strcmp(kind, "sender") == 0 ? "<friend@example.org>"
			                                    : "<a@example.org>");
			rcpt_ok(c, strcmp(kind, "rcpt") == 0 ? "<vip@example.test>"
			                                     : "<b@example.test>");
			if (strcmp(kind, "rcpt") != 0 && strncmp(kind, "header_ok", 9) != 0 &&
			    !(c->whitelisted || c->txn->whitelisted))
				fail_msg("%s: not whitelisted", what);
			send_exe(c, &r);
			if (strncmp(kind, "header_ok", 9) == 0 && !c->txn->whitelisted)
				fail_msg("%s: the header OK did not whitelist", what);
			if (skip && strcmp(kind, "rcpt") != 0)
				expect_continue(&r, what);
			else
				expect_fail(
				    c, &r, REPLY_REJECT, "550", "5.7.1",
				    "Attachment \"invoice.pdf.exe\" not accepted: executable "
				    "files are refused here",
				    what);
			engine_txn_end(c, &r);
			engine_conn_free(c);
			conf_unref(cf);
		}
}

/* clamav.skip_whitelisted: whitelisted mail is not scanned (no helper is
 * started here), forged X-Virus-Status headers are still removed and the
 * message says NotScanned (whitelisted), never Clean. */
static void test_clamav_skip_whitelisted(void **state)
{
	struct conf *cf = mkconf("checks", "clamav", "trusted_networks", "192.0.2.0/24",
	                         "clamav.skip_whitelisted", "yes", "score.tag", "0");
	struct conn *c = start(cf, NULL, "192.0.2.7", "mail.example.org");
	const struct add_header *h;
	struct reply r;

	(void)state;
	mail(c, "<a@example.org>");
	rcpt_ok(c, "<b@example.test>");
	send_exe(c, &r);
	expect_continue(&r, "eom");
	h = find_header(c, "X-Virus-Status");
	assert_non_null(h);
	assert_string_equal(h->value, "NotScanned (whitelisted)");
	assert_int_equal(c->txn->ndels, 1);
	assert_string_equal(c->txn->dels[0].name, "X-Virus-Status");
	engine_txn_end(c, &r);
	engine_conn_free(c);
	conf_unref(cf);
}

#define T(f) cmocka_unit_test_teardown(f, restore_stderr)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_delayed_reject),
		T(test_make_ref_many),
		T(test_log_line_format),
		T(test_postmaster),
		T(test_recipient_whitelist),
		T(test_client_whitelist),
		T(test_sender_whitelist),
		T(test_monitor_mode),
		T(test_defer_and_off_modes),
		T(test_mode_min),
		T(test_scores),
		T(test_score_eom),
		T(test_whitelisted_rcpt_not_rejected_at_eom),
		T(test_trusted_networks),
		T(test_local_client),
		T(test_auth_whitelist),
		T(test_transactions),
		T(test_second_helo),
		T(test_second_helo_drops_helo_whitelist),
		T(test_null_sender_two_rcpts),
		T(test_too_many_rcpts),
		T(test_log_caps_recipients),
		T(test_stages_needed),
		T(test_header_index),
		T(test_make_ref),
		T(test_percent_in_text),
		T(test_hostile),
		T(test_long_texts),
		T(test_content_safety_whitelisted),
		T(test_clamav_skip_whitelisted),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
