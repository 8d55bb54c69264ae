/* tests/unit/test_smtpprobe.c - unit tests for lib/smtpprobe.c
 *
 * Each test starts tests/smtp-script.py (a scripted SMTP server on a free
 * loopback port, stopping by itself) in one mode and probes it:
 * valid / invalid / unknown answers with the server's own code and text,
 * a catch-all second RCPT, a refused connection, and the hostile answers:
 * a 1 MB multi-line reply, a 1 MB line, CR/LF/NUL/'%'/escapes inside a
 * reply, codes that change between lines, a server that never answers and
 * one that closes mid-line.  Every probe ends by its deadline with a
 * bounded, printable text and never crashes (ASan).  The server's log
 * shows that no probe ever sends DATA.  Next-hop parsing is table-driven.
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

#include <cmocka.h>

#include "smtpprobe.h"
#include "testutil.h"
#include "util.h"

static char srv_log[256];

static int start_server(const char *mode, const char *users)
{
	snprintf(srv_log, sizeof(srv_log), "/tmp/smtpprobe-test-%d.log", (int)getpid());
	return script_server_start(mode, users, srv_log, 30);
}

static void stop_server(void)
{
	script_server_stop();
}

/* The number of lines of the server log equal to what. */
static int log_count(const char *what)
{
	FILE *f = fopen(srv_log, "r");
	char line[64];
	int n = 0;

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		n += strcmp(line, what) == 0;
	}
	fclose(f);
	return n;
}

static void text_clean(const char *t)
{
	assert_true(strlen(t) <= SMTPPROBE_TEXT_MAX);
	for (; *t; t++) {
		assert_true((unsigned char)*t >= 0x20 && (unsigned char)*t < 0x7f);
		assert_true(*t != '%');
	}
}

static enum probe_result probe(int port, const char *rcpt, const char *rcpt2, int ms,
                               struct smtpprobe_res *res)
{
	struct ipaddr ip;
	struct smtpprobe_req req = { .helo = "mx.portcullis.test",
		                     .sender = "",
		                     .rcpt = rcpt,
		                     .rcpt2 = rcpt2,
		                     .deadline_ms = now_ms() + ms };
	enum probe_result r;

	assert_int_equal(ip_parse("127.0.0.1", &ip), 0);
	r = smtpprobe_run(&ip, port, &req, res);
	assert_int_equal(r, res->result);
	assert_non_null(res->stage);
	text_clean(res->text);
	return r;
}

static void test_valid_invalid(void **state)
{
	struct smtpprobe_res res;
	int port = start_server("normal", "alice@example.test,bob@example.test");

	(void)state;
	assert_int_equal(probe(port, "Alice@example.test", NULL, 5000, &res), PROBE_VALID);
	assert_string_equal(res.code, "250");
	assert_int_equal(probe(port, "nobody@example.test", NULL, 5000, &res), PROBE_INVALID);
	assert_string_equal(res.code, "550");
	assert_string_equal(res.xcode, "5.1.1");
	assert_string_equal(res.stage, "RCPT");
	assert_string_equal(res.text, "<nobody@example.test>: Recipient address rejected: User "
	                              "unknown");
	/* a second RCPT with a random address: the domain is not a catch-all */
	assert_int_equal(probe(port, "bob@example.test", "x7q2r9@example.test", 5000, &res),
	                 PROBE_VALID);
	assert_int_equal(res.result2, PROBE_INVALID);
	stop_server();
	assert_int_equal(log_count("DATA"), 0);
	assert_int_equal(log_count("QUIT"), 3);
}

static void test_catchall_tempfail(void **state)
{
	struct smtpprobe_res res;
	int port = start_server("catchall", NULL);

	(void)state;
	assert_int_equal(probe(port, "any@example.test", "x7q2r9@example.test", 5000, &res),
	                 PROBE_VALID);
	assert_int_equal(res.result2, PROBE_VALID);
	stop_server();
	port = start_server("tempfail", NULL);
	assert_int_equal(probe(port, "any@example.test", NULL, 5000, &res), PROBE_UNKNOWN);
	assert_string_equal(res.code, "451");
	assert_string_equal(res.xcode, "4.3.0");
	stop_server();
}

static void test_refused(void **state)
{
	struct smtpprobe_res res;
	int port = start_server("normal", NULL);

	(void)state;
	stop_server(); /* nobody listens there now */
	assert_int_equal(probe(port, "a@example.test", NULL, 5000, &res), PROBE_UNKNOWN);
	assert_string_equal(res.stage, "connect");
	assert_string_equal(res.code, "");
}

static void test_hostile(void **state)
{
	static const struct {
		const char *mode, *stage;
		int ms;
	} cases[] = {
		{ "bigmulti", "EHLO", 10000 }, { "longline", "RCPT", 10000 },
		{ "mixed", "RCPT", 5000 },     { "silent", "banner", 700 },
		{ "midline", "banner", 5000 }, { "closercpt", "RCPT", 5000 },
		{ "slow=3", "banner", 700 },
	};
	struct smtpprobe_res res;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int port = start_server(cases[i].mode, "a@example.test");
		long long t0 = now_ms();

		assert_int_equal(probe(port, "a@example.test", NULL, cases[i].ms, &res),
		                 PROBE_UNKNOWN);
		/* bounded by the deadline (plus the scheduler's slack) */
		assert_true(now_ms() - t0 < cases[i].ms + 1000);
		printf("%-10s -> unknown at %s: %s\n", cases[i].mode, res.stage, res.text);
		assert_string_equal(res.stage, cases[i].stage);
		stop_server();
	}
	/* CR, LF, NUL, escapes and '%' in a 550 reply: invalid, text cleaned,
	 * the trailing "250 OK" after the reply is not read as its answer */
	int port = start_server("hostile", NULL);
	assert_int_equal(probe(port, "a@example.test", NULL, 5000, &res), PROBE_INVALID);
	assert_string_equal(res.xcode, "5.1.1");
	assert_non_null(strstr(res.text, "user unknown"));
	assert_null(strchr(res.text, '%'));
	printf("hostile    -> %s %s %s\n", res.code, res.xcode, res.text);
	stop_server();
}

static void test_unsafe_address(void **state)
{
	struct smtpprobe_res res;
	struct ipaddr ip;
	struct smtpprobe_req req = { .helo = "mx.portcullis.test",
		                     .sender = "",
		                     .rcpt = "a@b\r\nDATA",
		                     .deadline_ms = now_ms() + 1000 };

	(void)state;
	ip_parse("127.0.0.1", &ip);
	/* never sent: nothing listens on port 1 anyway, the stage says so */
	assert_int_equal(smtpprobe_run(&ip, 1, &req, &res), PROBE_UNKNOWN);
	assert_string_equal(res.text, "address not fit for a probe");
}

static void test_parse_hop(void **state)
{
	static const struct {
		const char *in;
		int ok, port, literal;
		const char *host;
	} cases[] = {
		{ "[127.0.0.1]:2525", 1, 2525, 1, "[127.0.0.1]" },
		{ "[10.1.1.5]", 1, 25, 1, "[10.1.1.5]" },
		{ "[IPv6:::1]:26", 1, 26, 1, "[IPv6:::1]" },
		{ "inner.example.org", 1, 25, 0, "inner.example.org" },
		{ "inner.example.org:587", 1, 587, 0, "inner.example.org" },
		{ "[127.0.0.1]:0", 0, 0, 0, NULL },
		{ "[127.0.0.1]:99999", 0, 0, 0, NULL },
		{ "[127.0.0.1]x", 0, 0, 0, NULL },
		{ "[not-an-ip]", 0, 0, 0, NULL },
		{ "bad host", 0, 0, 0, NULL },
		{ "", 0, 0, 0, NULL },
		{ "host:", 0, 0, 0, NULL },
	};
	char host[256];
	int port, lit;
	struct ipaddr ip;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = smtpprobe_parse_hop(cases[i].in, host, sizeof(host), &port, &lit, &ip);

		assert_int_equal(rc == 0, cases[i].ok);
		if (!cases[i].ok)
			continue;
		assert_int_equal(port, cases[i].port);
		assert_int_equal(lit, cases[i].literal);
		assert_string_equal(host, cases[i].host);
		if (lit)
			assert_true(ip.family != 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_hop),     cmocka_unit_test(test_unsafe_address),
		cmocka_unit_test(test_valid_invalid), cmocka_unit_test(test_catchall_tempfail),
		cmocka_unit_test(test_refused),       cmocka_unit_test(test_hostile),
	};

	if (system("python3 -c 'import socket' >/dev/null 2>&1") != 0) {
		printf("SKIP: no python3\n");
		return 77;
	}
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
