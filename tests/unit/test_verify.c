/* tests/unit/test_verify.c - the verify check's good citizenship, through
 * the engine with a real store and a scripted SMTP server
 *
 * tests/smtp-script.py plays the sender's MX (and the inner server) on a
 * loopback port; sessions go through engine_connect/mail/rcpt on many
 * threads at once, as libmilter would run them:
 *  - 50 concurrent transactions from the same unknown sender make ONE
 *    probe (the server's connection count), and all 50 are refused;
 *  - 12 different recipients at once with verify.host_concurrency = 2:
 *    the server never sees more than 2 connections at once;
 *  - verify.domain_rate = 3: the 4th and 5th new sender of one domain in
 *    a minute are not probed (with verify.sender_on_error = defer: 450
 *    4.1.7, "probe rate limit");
 *  - a cached result answers without a connection, also in a dry run
 *    (which never probes);
 *  - no probe for a trusted client or the null sender.
 * Skips (77) without python3.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pthread.h>

#include <cmocka.h>

#include "conf.h"
#include "engine.h"
#include "log.h"
#include "store.h"
#include "testutil.h"
#include "util.h"

static char srv_log[512];

static int start_server(const char *mode, const char *users)
{
	snprintf(srv_log, sizeof(srv_log), "%s/server.log", tmpdir);
	return script_server_start(mode, users, srv_log, 60);
}

static void stop_server(void)
{
	script_server_stop();
}

/* Lines of the server log equal to what; *most gets the highest "most N". */
static int log_count(const char *what, int *most)
{
	FILE *f = fopen(srv_log, "r");
	char line[64];
	int n = 0, m;

	if (most)
		*most = 0;
	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		n += strcmp(line, what) == 0;
		if (most && sscanf(line, "most %d", &m) == 1 && m > *most)
			*most = m;
	}
	fclose(f);
	return n;
}

static struct store *st;
static struct conf *cf;

static struct conf *mkconf(const char *const *kv)
{
	char err[1024] = "";
	struct conf *c = conf_load(NULL, err, sizeof(err));

	if (c == NULL)
		fail_msg("conf_load: %s", err);
	for (int i = 0; kv[i]; i += 2)
		if (conf_set(c, kv[i], kv[i + 1], err, sizeof(err)) < 0)
			fail_msg("conf_set %s: %s", kv[i], err);
	if (conf_finish(c, err, sizeof(err)) < 0)
		fail_msg("conf_finish: %s", err);
	return c;
}

static int setup(void **state)
{
	char err[256];

	(void)state;
	if (tmpdir_create("pc-verify") < 0)
		return -1;
	log_open("test_verify", "stderr", "mail");
	st = store_open(tmpdir, err, sizeof(err));
	if (st == NULL)
		return -1;
	engine_set_store(st, 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	stop_server();
	engine_set_store(NULL, 0);
	store_close(st);
	return tmpdir_remove();
}

struct job {
	const char *from, *to;
	struct reply r;
};

/* One transaction; the RCPT reply in j->r. */
static void *session(void *arg)
{
	struct job *j = arg;
	struct conn *c = engine_conn_new(cf);
	struct reply r;

	engine_connect(c, "client.example.net", "192.0.2.7", &r);
	engine_helo(c, "client.example.net", &r);
	engine_mail(c, j->from, &r);
	engine_rcpt(c, j->to, &j->r);
	engine_abort(c);
	engine_conn_free(c);
	return NULL;
}

static void run_jobs(struct job *jobs, int n)
{
	pthread_t *th = xcalloc((size_t)n, sizeof(*th));

	for (int i = 0; i < n; i++)
		assert_int_equal(pthread_create(&th[i], NULL, session, &jobs[i]), 0);
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	free(th);
}

static void test_one_probe_for_50(void **state)
{
	char hop[200];
	struct job jobs[50];
	int port = start_server("slow=1", "known@sender.example");

	(void)state;
	snprintf(hop, sizeof(hop), "sender.example=[127.0.0.1]:%d", port);
	cf = mkconf((const char *const[]){
	    "checks", "verify", "verify.sender_domains", hop, "hostname", "mx.example.test",
	    "contact", "postmaster@example.test", "verify.timeout", "20s", NULL });
	for (int i = 0; i < 50; i++)
		jobs[i] =
		    (struct job){ .from = "<forged@sender.example>", .to = "<u@example.test>" };
	run_jobs(jobs, 50);
	for (int i = 0; i < 50; i++) {
		assert_int_equal(jobs[i].r.action, REPLY_REJECT);
		assert_string_equal(jobs[i].r.code, "550");
		assert_string_equal(jobs[i].r.xcode, "5.1.7");
	}
	assert_int_equal(log_count("connect", NULL), 1);
	/* one RCPT: the catch-all test is asked only of a valid address */
	assert_int_equal(log_count("RCPT", NULL), 1);
	/* cached: again without a connection */
	struct job again = { .from = "<forged@sender.example>", .to = "<u@example.test>" };
	session(&again);
	assert_int_equal(again.r.action, REPLY_REJECT);
	assert_int_equal(log_count("connect", NULL), 1);
	/* a known sender passes */
	struct job good = { .from = "<known@sender.example>", .to = "<u@example.test>" };
	session(&good);
	assert_int_equal(good.r.action, REPLY_CONTINUE);
	assert_int_equal(log_count("connect", NULL), 2);
	assert_int_equal(log_count("RCPT", NULL), 3); /* known@ and the random catch-all test */
	/* a dry run reads the cache and never probes */
	engine_set_store(st, 1);
	struct job dry = { .from = "<forged@sender.example>", .to = "<u@example.test>" };
	session(&dry);
	assert_int_equal(dry.r.action, REPLY_REJECT);
	struct job dry2 = { .from = "<new@sender.example>", .to = "<u@example.test>" };
	session(&dry2);
	assert_int_equal(dry2.r.action, REPLY_CONTINUE); /* unknown: skipped */
	assert_int_equal(log_count("connect", NULL), 2);
	engine_set_store(st, 0);
	conf_unref(cf);
	stop_server();
}

static void test_host_concurrency(void **state)
{
	char hop[200], to[12][64];
	struct job jobs[12];
	int port = start_server("slow=0.3", NULL), most;

	(void)state;
	snprintf(hop, sizeof(hop), "example.test=[127.0.0.1]:%d", port);
	cf = mkconf((const char *const[]){ "checks", "verify", "verify.recipient_domains", hop,
	                                   "verify.host_concurrency", "2", "hostname",
	                                   "mx.example.test", "contact", "postmaster@example.test",
	                                   "verify.timeout", "30s", NULL });
	for (int i = 0; i < 12; i++) {
		snprintf(to[i], sizeof(to[i]), "<user%d@example.test>", i);
		jobs[i] = (struct job){ .from = "<s@other.example>", .to = to[i] };
	}
	run_jobs(jobs, 12);
	for (int i = 0; i < 12; i++) {
		assert_int_equal(jobs[i].r.action, REPLY_REJECT);
		assert_string_equal(jobs[i].r.code, "550");
		assert_string_equal(jobs[i].r.xcode, "5.1.1");
		assert_non_null(strstr(jobs[i].r.text, "User unknown"));
	}
	assert_int_equal(log_count("connect", &most), 12);
	printf("most connections at once: %d\n", most);
	assert_true(most >= 1 && most <= 2);
	conf_unref(cf);
	stop_server();
}

static void test_domain_rate(void **state)
{
	char hop[200], to[5][64];
	int port = start_server("normal", "a@rate.example");

	(void)state;
	snprintf(hop, sizeof(hop), "rate.example=[127.0.0.1]:%d", port);
	cf = mkconf((const char *const[]){ "checks", "verify", "verify.sender_domains", hop,
	                                   "verify.domain_rate", "3", "verify.sender_on_error",
	                                   "defer", "hostname", "mx.example.test", "contact",
	                                   "postmaster@example.test", NULL });
	for (int i = 0; i < 5; i++) {
		struct job j;

		snprintf(to[i], sizeof(to[i]), "<r%d@rate.example>", i);
		j = (struct job){ .from = to[i], .to = "<u@example.test>" };
		session(&j);
		if (i < 3) {
			assert_int_equal(j.r.action, REPLY_REJECT);
		} else {
			assert_int_equal(j.r.action, REPLY_TEMPFAIL);
			assert_string_equal(j.r.code, "450");
			assert_string_equal(j.r.xcode, "4.1.7");
			assert_non_null(strstr(j.r.text, "probe rate limit"));
		}
	}
	assert_int_equal(log_count("connect", NULL), 3);
	conf_unref(cf);
	stop_server();
}

/* A trusted client (and so any whitelisted one: the engine skips the
 * policy checks for them) and the null sender are never probed. */
static void test_no_probe(void **state)
{
	char hop[200];
	int port = start_server("normal", NULL);

	(void)state;
	snprintf(hop, sizeof(hop), "sender.example=[127.0.0.1]:%d", port);
	cf = mkconf((const char *const[]){
	    "checks", "verify", "verify.sender_domains", hop, "trusted_networks", "192.0.2.0/24",
	    "hostname", "mx.example.test", "contact", "postmaster@example.test", NULL });
	struct job trusted = { .from = "<other@sender.example>", .to = "<u@example.test>" };
	session(&trusted); /* from 192.0.2.7: trusted */
	assert_int_equal(trusted.r.action, REPLY_CONTINUE);
	conf_unref(cf);
	cf = mkconf((const char *const[]){ "checks", "verify", "verify.sender_domains", "*",
	                                   "hostname", "mx.example.test", "contact",
	                                   "postmaster@example.test", NULL });
	struct job null = { .from = "<>", .to = "<u@example.test>" };
	session(&null);
	assert_int_equal(null.r.action, REPLY_CONTINUE);
	assert_int_equal(log_count("connect", NULL), 0);
	conf_unref(cf);
	stop_server();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_probe_for_50),
		cmocka_unit_test(test_host_concurrency),
		cmocka_unit_test(test_domain_rate),
		cmocka_unit_test(test_no_probe),
	};

	if (system("python3 -c 'import socket' >/dev/null 2>&1") != 0) {
		printf("SKIP: no python3\n");
		return 77;
	}
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
