/* tests/unit/test_metrics.c - the metrics counters, their text exposition
 * and the listener (lib/metrics.c, lib/metrics_http.c)
 *
 * cmocka cases: the format of an empty page (HELP and TYPE before each
 * family's samples, every sample line parses back); transaction outcomes
 * and the score histogram (bucket bounds inclusive, negative sums); the
 * verdict to action mapping; stage duration buckets; greylist decisions
 * and delays, virus scans, scanner helper starts and failures, DNS query
 * times; four threads adding at
 * once lose nothing; DNS counters stay monotonic when the snapshot
 * changes; store entry counts, cached for metrics.store_interval;
 * metrics_parse_line() and metrics_label() on good and hostile lines; the
 * metrics.listen syntax and loopback rule; the request judge; and the
 * listener answering the client over loopback.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf.h"
#include "dns.h"
#include "log.h"
#include "metrics.h"
#include "metrics_http.h"
#include "store.h"
#include "testutil.h"
#include "util.h"

static int reset(void **state)
{
	(void)state;
	metrics_reset();
	return 0;
}

/* The value of the sample written exactly as sample (name and labels) in
 * text; fails the test when it is not there. */
static const char *value_of(const char *text, const char *sample)
{
	static char val[64];
	size_t n = strlen(sample);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, sample, n) == 0 && p[n] == ' ') {
			size_t k = strcspn(p + n + 1, "\n");

			assert_true(k < sizeof(val));
			memcpy(val, p + n + 1, k);
			val[k] = '\0';
			return val;
		}
	fail_msg("sample %s not found", sample);
	return NULL;
}

static void want(const char *text, const char *sample, const char *value)
{
	const char *got = value_of(text, sample);

	if (strcmp(got, value) != 0)
		fail_msg("%s is %s, want %s", sample, got, value);
}

/* Bounces by check and verdict (the joe-job gauge); unknown words count
 * as "other" of the first check, never out of bounds. */
static void test_bounces(void **state)
{
	char *text;
	size_t len;

	(void)state;
	metrics_reset();
	metrics_bounce("bounce", "unwanted");
	metrics_bounce("bounce", "unwanted");
	metrics_bounce("batv", "genuine");
	metrics_bounce("nonsense", "nonsense");
	text = metrics_render(NULL, &len);
	want(text, "portcullis_bounces_total{check=\"bounce\",verdict=\"unwanted\"}", "2");
	want(text, "portcullis_bounces_total{check=\"batv\",verdict=\"genuine\"}", "1");
	want(text, "portcullis_bounces_total{check=\"batv\",verdict=\"other\"}", "1");
	want(text, "portcullis_bounces_total{check=\"bounce\",verdict=\"auto_reply\"}", "0");
	free(text);
	metrics_reset();
}

static void test_format_empty(void **state)
{
	char *text, *save = NULL, family[128] = "", *line;
	size_t len;
	int nsamples = 0, nfamilies = 0;

	(void)state;
	text = metrics_render(NULL, &len);
	assert_int_equal(strlen(text), len);
	assert_true(len > 0 && text[len - 1] == '\n');
	want(text, "portcullis_transactions_total{outcome=\"accept\"}", "0");
	want(text, "portcullis_transactions_total{outcome=\"none\"}", "0");
	want(text, "portcullis_score_bucket{le=\"+Inf\"}", "0");
	want(text, "portcullis_score_sum", "0.000");
	want(text, "portcullis_stage_duration_seconds_sum{stage=\"rcpt\"}", "0.000000");
	want(text, "portcullis_config_generation", "1");
	want(text, "portcullis_check_verdicts_total{check=\"helo\",action=\"reject\"}", "0");
	want(text, "portcullis_bounces_total{check=\"bounce\",verdict=\"unwanted\"}", "0");
	assert_null(strstr(text, "portcullis_dns_")); /* no snapshot, no resolver */
	assert_null(strstr(text, "portcullis_store_"));
	/* Every line is a HELP, the TYPE right after it, or a sample of that
	 * family. */
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct metrics_sample s;
		char type_line[200];

		if (strncmp(line, "# HELP ", 7) == 0) {
			size_t n = strcspn(line + 7, " ");

			assert_true(n < sizeof(family));
			memcpy(family, line + 7, n);
			family[n] = '\0';
			line = strtok_r(NULL, "\n", &save);
			assert_non_null(line);
			snprintf(type_line, sizeof(type_line), "# TYPE %s ", family);
			assert_memory_equal(line, type_line, strlen(type_line));
			nfamilies++;
			continue;
		}
		assert_int_equal(metrics_parse_line(line, &s), 0);
		assert_memory_equal(s.name, family, strlen(family));
		assert_true(s.name[strlen(family)] == '\0' || s.name[strlen(family)] == '_');
		nsamples++;
	}
	assert_int_equal(nfamilies, 16); /* no DNS, no store */
	assert_true(nsamples > 100);
	free(text);
}

/* Greylisting, virus scans and the scanner helper: counters by label and
 * the two histograms. */
static void test_greylist_av(void **state)
{
	char *text;

	(void)state;
	metrics_greylist(METRICS_GREY_PASS);
	metrics_greylist(METRICS_GREY_PASS);
	metrics_greylist(METRICS_GREY_DEFER);
	metrics_greylist(METRICS_GREY_COUNT); /* ignored */
	metrics_greylist_delay(300);
	metrics_greylist_delay(301);
	metrics_greylist_delay(-5);
	metrics_greylist_delay(1000000);
	metrics_av_scan(METRICS_AV_INFECTED, 2500);
	metrics_av_scan(METRICS_AV_CLEAN, 100);
	metrics_av_scan(METRICS_AV_ERROR, 20000000);
	metrics_av_helper(0);
	metrics_av_helper(0);
	metrics_av_helper(1);
	text = metrics_render(NULL, NULL);
	want(text, "portcullis_greylist_total{result=\"pass\"}", "2");
	want(text, "portcullis_greylist_total{result=\"defer\"}", "1");
	want(text, "portcullis_greylist_total{result=\"awl\"}", "0");
	want(text, "portcullis_greylist_delay_seconds_bucket{le=\"60\"}", "1");
	want(text, "portcullis_greylist_delay_seconds_bucket{le=\"300\"}", "2");
	want(text, "portcullis_greylist_delay_seconds_bucket{le=\"600\"}", "3");
	want(text, "portcullis_greylist_delay_seconds_bucket{le=\"172800\"}", "3");
	want(text, "portcullis_greylist_delay_seconds_bucket{le=\"+Inf\"}", "4");
	want(text, "portcullis_greylist_delay_seconds_sum", "1000601");
	want(text, "portcullis_greylist_delay_seconds_count", "4");
	want(text, "portcullis_av_scans_total{result=\"clean\"}", "1");
	want(text, "portcullis_av_scans_total{result=\"infected\"}", "1");
	want(text, "portcullis_av_scans_total{result=\"error\"}", "1");
	want(text, "portcullis_av_scan_duration_seconds_bucket{le=\"0.0001\"}", "1");
	want(text, "portcullis_av_scan_duration_seconds_bucket{le=\"0.0025\"}", "2");
	want(text, "portcullis_av_scan_duration_seconds_bucket{le=\"10\"}", "2");
	want(text, "portcullis_av_scan_duration_seconds_bucket{le=\"+Inf\"}", "3");
	want(text, "portcullis_av_scan_duration_seconds_sum", "20.002600");
	want(text, "portcullis_av_helper_starts_total", "2");
	want(text, "portcullis_av_helper_failures_total", "1");
	free(text);
}

static void test_txn_and_score(void **state)
{
	char *text;

	(void)state;
	metrics_txn("accept", 0);
	metrics_txn("accept", 5);     /* le is inclusive: bucket "5" */
	metrics_txn("reject", 5.001); /* bucket "6" */
	metrics_txn("defer", -1.25);  /* bucket "0" */
	metrics_txn("aborted", 100);  /* +Inf */
	metrics_txn("bogus\n", 0);    /* counts as none */
	metrics_txn(NULL, 0);         /* none */
	text = metrics_render(NULL, NULL);
	want(text, "portcullis_transactions_total{outcome=\"accept\"}", "2");
	want(text, "portcullis_transactions_total{outcome=\"reject\"}", "1");
	want(text, "portcullis_transactions_total{outcome=\"defer\"}", "1");
	want(text, "portcullis_transactions_total{outcome=\"aborted\"}", "1");
	want(text, "portcullis_transactions_total{outcome=\"none\"}", "2");
	want(text, "portcullis_score_bucket{le=\"0\"}", "4");
	want(text, "portcullis_score_bucket{le=\"4\"}", "4");
	want(text, "portcullis_score_bucket{le=\"5\"}", "5");
	want(text, "portcullis_score_bucket{le=\"6\"}", "6");
	want(text, "portcullis_score_bucket{le=\"50\"}", "6");
	want(text, "portcullis_score_bucket{le=\"+Inf\"}", "7");
	want(text, "portcullis_score_count", "7");
	want(text, "portcullis_score_sum", "108.751");
	assert_null(strstr(text, "bogus"));
	free(text);

	metrics_reset();
	metrics_txn("accept", -3.5);
	metrics_txn("accept", 1.25);
	text = metrics_render(NULL, NULL);
	want(text, "portcullis_score_sum", "-2.250");
	free(text);
}

static void test_verdicts(void **state)
{
	char *text;

	(void)state;
	metrics_verdict(1, ACT_REJECT, MODE_REJECT);
	metrics_verdict(1, ACT_REJECT, MODE_DEFER);   /* softened: defer */
	metrics_verdict(1, ACT_REJECT, MODE_MONITOR); /* monitor */
	metrics_verdict(1, ACT_SCORE, MODE_MONITOR);  /* monitor */
	metrics_verdict(1, ACT_DEFER, MODE_REJECT);
	metrics_verdict(1, ACT_OK, MODE_REJECT);
	metrics_verdict(1, ACT_SCORE, MODE_REJECT);
	metrics_verdict(1, ACT_DUNNO, MODE_REJECT); /* not counted */
	metrics_verdict(1, ACT_REJECT, MODE_OFF);   /* not counted */
	metrics_verdict(-1, ACT_REJECT, MODE_REJECT);
	metrics_verdict(METRICS_MODULES_MAX, ACT_REJECT, MODE_REJECT);
	metrics_check_error(1);
	metrics_check_error(1);
	metrics_check_error(METRICS_MODULES_MAX);
	text = metrics_render(NULL, NULL);
	/* check_registry[1] is helo (registry.c) */
	want(text, "portcullis_check_verdicts_total{check=\"helo\",action=\"reject\"}", "1");
	want(text, "portcullis_check_verdicts_total{check=\"helo\",action=\"defer\"}", "2");
	want(text, "portcullis_check_verdicts_total{check=\"helo\",action=\"monitor\"}", "2");
	want(text, "portcullis_check_verdicts_total{check=\"helo\",action=\"ok\"}", "1");
	want(text, "portcullis_check_verdicts_total{check=\"helo\",action=\"score\"}", "1");
	want(text, "portcullis_check_verdicts_total{check=\"helo\",action=\"error\"}", "2");
	want(text, "portcullis_check_verdicts_total{check=\"access\",action=\"reject\"}", "0");
	free(text);
}

static void test_stages(void **state)
{
	char *text;

	(void)state;
	metrics_stage(STAGE_RCPT, 100); /* le inclusive: 0.0001 */
	metrics_stage(STAGE_RCPT, 101); /* 0.00025 */
	metrics_stage(STAGE_RCPT, -5);  /* a clock step back: 0 */
	metrics_stage(STAGE_EOM, 20000000);
	metrics_stage(STAGE_COUNT, 1); /* ignored */
	text = metrics_render(NULL, NULL);
	want(text, "portcullis_stage_duration_seconds_bucket{stage=\"rcpt\",le=\"0.0001\"}", "2");
	want(text, "portcullis_stage_duration_seconds_bucket{stage=\"rcpt\",le=\"0.00025\"}", "3");
	want(text, "portcullis_stage_duration_seconds_bucket{stage=\"rcpt\",le=\"+Inf\"}", "3");
	want(text, "portcullis_stage_duration_seconds_count{stage=\"rcpt\"}", "3");
	want(text, "portcullis_stage_duration_seconds_sum{stage=\"rcpt\"}", "0.000201");
	want(text, "portcullis_stage_duration_seconds_bucket{stage=\"eom\",le=\"10\"}", "0");
	want(text, "portcullis_stage_duration_seconds_bucket{stage=\"eom\",le=\"+Inf\"}", "1");
	want(text, "portcullis_stage_duration_seconds_sum{stage=\"eom\"}", "20.000000");
	want(text, "portcullis_stage_duration_seconds_count{stage=\"helo\"}", "0");
	free(text);
}

#define THREAD_ADDS 100000
static void *adder(void *arg)
{
	(void)arg;
	for (int i = 0; i < THREAD_ADDS; i++) {
		metrics_txn("accept", 1);
		metrics_stage(STAGE_MAIL, 1);
		metrics_verdict(0, ACT_SCORE, MODE_REJECT);
	}
	return NULL;
}

static void test_threads(void **state)
{
	pthread_t t[4];
	char *text;

	(void)state;
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, adder, NULL), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	text = metrics_render(NULL, NULL);
	want(text, "portcullis_transactions_total{outcome=\"accept\"}", "400000");
	want(text, "portcullis_score_sum", "400000.000");
	want(text, "portcullis_stage_duration_seconds_count{stage=\"mail\"}", "400000");
	want(text, "portcullis_check_verdicts_total{check=\"access\",action=\"score\"}", "400000");
	free(text);
}

/* n queries for an invalid name on c's resolver: each ends DNS_ERROR at
 * once, without any network. */
static void dns_errors(struct conf *c, int n)
{
	struct dns_batch *b = dns_batch_new(c->dns, 100);

	for (int i = 0; i < n; i++)
		dns_batch_add(b, "bad..name", LDNS_RR_TYPE_A);
	dns_batch_free(b);
}

static void test_dns_across_snapshots(void **state)
{
	char err[512], *text;
	struct conf *c1 = conf_load(NULL, err, sizeof(err)), *c2;

	(void)state;
	assert_non_null(c1);
	c2 = conf_load(NULL, err, sizeof(err));
	assert_non_null(c2);
	dns_errors(c1, 2);
	metrics_dns_query(1500);
	metrics_dns_query(-1);
	text = metrics_render(c1, NULL);
	want(text, "portcullis_dns_errors_total", "2");
	want(text, "portcullis_dns_query_duration_seconds_bucket{le=\"0.0001\"}", "1");
	want(text, "portcullis_dns_query_duration_seconds_bucket{le=\"0.001\"}", "1");
	want(text, "portcullis_dns_query_duration_seconds_bucket{le=\"0.0025\"}", "2");
	want(text, "portcullis_dns_query_duration_seconds_sum", "0.001500");
	want(text, "portcullis_dns_query_duration_seconds_count", "2");
	want(text, "portcullis_dns_timeouts_total", "0");
	want(text, "portcullis_dns_cache_entries", "0");
	free(text);
	dns_errors(c1, 1); /* after the last scrape of c1: still counted */
	dns_errors(c2, 3);
	text = metrics_render(c2, NULL);
	want(text, "portcullis_dns_errors_total", "6");
	free(text);
	conf_unref(c1); /* metrics let go of c1 at the switch */
	text = metrics_render(c2, NULL);
	want(text, "portcullis_dns_errors_total", "6");
	free(text);
	metrics_release();
	conf_unref(c2);
}

static int put_n(struct store *st, const char *ns, int n)
{
	for (int i = 0; i < n; i++) {
		char key[32];

		snprintf(key, sizeof(key), "k%d", i);
		if (store_put(st, ns, key, strlen(key), "v", 1, 0, STORE_NORMAL) < 0)
			return -1;
	}
	return 0;
}

static void test_store_counts(void **state)
{
	static const char *const ns[] = { "greylist", "awl", "empty" };
	char err[512], *text;
	struct store *st;
	struct conf *c = conf_load(NULL, err, sizeof(err));

	(void)state;
	assert_non_null(c);
	st = store_open(tmpdir, err, sizeof(err));
	assert_non_null(st);
	assert_int_equal(put_n(st, "greylist", 3), 0);
	assert_int_equal(put_n(st, "awl", 1), 0);
	metrics_set_store(st, ns, 3);
	text = metrics_render(c, NULL); /* metrics.store_interval = 60 s */
	want(text, "portcullis_store_entries{namespace=\"greylist\"}", "3");
	want(text, "portcullis_store_entries{namespace=\"awl\"}", "1");
	want(text, "portcullis_store_entries{namespace=\"empty\"}", "0");
	free(text);
	assert_int_equal(put_n(st, "greylist", 5), 0);
	text = metrics_render(c, NULL);
	want(text, "portcullis_store_entries{namespace=\"greylist\"}", "3"); /* cached */
	free(text);
	assert_int_equal(conf_set(c, "metrics.store_interval", "0", err, sizeof(err)), 0);
	text = metrics_render(c, NULL);
	want(text, "portcullis_store_entries{namespace=\"greylist\"}", "5");
	free(text);
	metrics_set_store(NULL, NULL, 0);
	text = metrics_render(c, NULL);
	assert_null(strstr(text, "portcullis_store_entries"));
	free(text);
	store_close(st);
	metrics_release();
	conf_unref(c);
}

static void test_parse_line(void **state)
{
	struct metrics_sample s;
	char v[64];

	(void)state;
	assert_int_equal(metrics_parse_line("a_total 3\n", &s), 0);
	assert_string_equal(s.name, "a_total");
	assert_string_equal(s.labels, "");
	assert_true(s.value == 3);
	assert_int_equal(metrics_parse_line("x{a=\"1\",b=\"q\\\"}\\\\\\n,\"} 2.5 1700000000", &s),
	                 0);
	assert_string_equal(s.name, "x");
	assert_true(s.value == 2.5);
	assert_int_equal(metrics_label(&s, "a", v, sizeof(v)), 0);
	assert_string_equal(v, "1");
	assert_int_equal(metrics_label(&s, "b", v, sizeof(v)), 0);
	assert_string_equal(v, "q\"}\\\n,");
	assert_int_equal(metrics_label(&s, "c", v, sizeof(v)), -1);
	assert_int_equal(metrics_parse_line("h_bucket{le=\"+Inf\"} 7", &s), 0);
	assert_int_equal(metrics_label(&s, "le", v, sizeof(v)), 0);
	assert_string_equal(v, "+Inf");
	assert_int_equal(metrics_parse_line("g +Inf", &s), 0);
	assert_true(s.value > 1e308);
	/* not samples */
	assert_int_equal(metrics_parse_line("# HELP a b", &s), -1);
	assert_int_equal(metrics_parse_line("", &s), -1);
	assert_int_equal(metrics_parse_line("1a 3", &s), -1);
	assert_int_equal(metrics_parse_line("a", &s), -1);
	assert_int_equal(metrics_parse_line("a x", &s), -1);
	assert_int_equal(metrics_parse_line("a 3 x", &s), -1);
	assert_int_equal(metrics_parse_line("a{b=\"1\" 3", &s), -1);
	assert_int_equal(metrics_parse_line("a{b=\"}\" 3", &s), -1);
	{
		char big[600];

		memset(big, 'a', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		assert_int_equal(metrics_parse_line(big, &s), -1);
	}
}

static void test_listen_parse(void **state)
{
	static const struct {
		const char *spec;
		int allow_remote, ok;
	} cases[] = {
		{ "127.0.0.1:9187", 0, 1 },  { "127.1.2.3:1", 0, 1 },
		{ "[::1]:9187", 0, 1 },      { "[::ffff:127.0.0.1]:80", 0, 1 },
		{ "192.0.2.1:9187", 0, 0 },  { "192.0.2.1:9187", 1, 1 },
		{ "0.0.0.0:9187", 0, 0 },    { "[::]:9187", 0, 0 },
		{ "[::]:9187", 1, 1 },       { "127.0.0.1", 0, 0 },
		{ "127.0.0.1:", 0, 0 },      { "127.0.0.1:0", 0, 0 },
		{ "127.0.0.1:65536", 0, 0 }, { "127.0.0.1:+80", 0, 0 },
		{ "127.0.0.1:80x", 0, 0 },   { "localhost:80", 0, 0 },
		{ "::1:80", 0, 0 },          { "[::1:80", 0, 0 },
		{ "[::1]80", 0, 0 },         { "", 0, 0 },
		{ "127.0.0.1:80\n", 0, 0 },  { "127.0.0.1 :80", 0, 0 },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct sockaddr_storage sa;
		socklen_t salen;
		char err[256] = "";
		int rc = metrics_listen_parse(cases[i].spec, cases[i].allow_remote, &sa, &salen,
		                              err, sizeof(err));

		if ((rc == 0) != cases[i].ok)
			fail_msg("'%s' (allow_remote %d): rc %d (%s)", cases[i].spec,
			         cases[i].allow_remote, rc, err);
		if (rc < 0) {
			assert_memory_equal(err, "metrics.listen: ", 16);
			assert_null(strchr(err, '\n'));
		}
	}
}

static void test_request(void **state)
{
	static const struct {
		const char *head;
		int status, head_only;
	} cases[] = {
		{ "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 200, 0 },
		{ "GET /metrics HTTP/1.0\n\n", 200, 0 },
		{ "HEAD /metrics HTTP/1.1\r\n\r\n", 200, 1 },
		{ "GET /metrics?x=1&y HTTP/1.1\r\n\r\n", 200, 0 },
		{ "GET / HTTP/1.1\r\n\r\n", 404, 0 },
		{ "GET /metrics/ HTTP/1.1\r\n\r\n", 404, 0 },
		{ "GET /METRICS HTTP/1.1\r\n\r\n", 404, 0 },
		{ "POST /metrics HTTP/1.1\r\n\r\n", 405, 0 },
		{ "get /metrics HTTP/1.1\r\n\r\n", 405, 0 },
		{ "GET  /metrics HTTP/1.1\r\n\r\n", 400, 0 },
		{ "GET /metrics HTTP/1.1 x\r\n\r\n", 400, 0 },
		{ "GET /metrics\r\n\r\n", 400, 0 },
		{ "GET metrics HTTP/1.1\r\n\r\n", 400, 0 },
		{ "GET /metrics FTP/1.1\r\n\r\n", 400, 0 },
		{ "hello", 400, 0 },
		{ "", 400, 0 },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char head[128];
		int head_only = -1, st;

		bcopy_str(head, sizeof(head), cases[i].head);
		st = metrics_http_request(head, &head_only);
		if (st != cases[i].status || head_only != cases[i].head_only)
			fail_msg("case %zu: status %d head_only %d, want %d %d", i, st, head_only,
			         cases[i].status, cases[i].head_only);
	}
}

/* A loopback port that was free a moment ago. */
static int free_port(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

static void test_http(void **state)
{
	char spec[64], err[512], *body;
	struct metrics_http *h;
	size_t len;
	int status;

	(void)state;
	snprintf(spec, sizeof(spec), "127.0.0.1:%d", free_port());
	h = metrics_http_open(spec, 0, err, sizeof(err));
	assert_non_null(h);
	assert_int_equal(metrics_http_start(h, err, sizeof(err)), 0);
	metrics_txn("reject", 0);
	assert_int_equal(
	    metrics_http_get(spec, "/metrics", 5000, &status, &body, &len, err, sizeof(err)), 0);
	assert_int_equal(status, 200);
	assert_int_equal(strlen(body), len);
	want(body, "portcullis_transactions_total{outcome=\"reject\"}", "1");
	free(body);
	assert_int_equal(metrics_http_get(spec, "/", 5000, &status, &body, &len, err, sizeof(err)),
	                 0);
	assert_int_equal(status, 404);
	free(body);
	/* a second listener on the same port: one line, the reason */
	assert_null(metrics_http_open(spec, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "Address already in use"));
	metrics_http_stop(h);
	assert_int_equal(
	    metrics_http_get(spec, "/metrics", 5000, &status, &body, &len, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "Connection refused"));
	assert_null(body);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_format_empty, reset),
		cmocka_unit_test_setup(test_bounces, reset),
		cmocka_unit_test_setup(test_txn_and_score, reset),
		cmocka_unit_test_setup(test_greylist_av, reset),
		cmocka_unit_test_setup(test_verdicts, reset),
		cmocka_unit_test_setup(test_stages, reset),
		cmocka_unit_test_setup(test_threads, reset),
		cmocka_unit_test_setup(test_dns_across_snapshots, reset),
		cmocka_unit_test_setup(test_store_counts, reset),
		cmocka_unit_test_setup(test_parse_line, reset),
		cmocka_unit_test_setup(test_listen_parse, reset),
		cmocka_unit_test_setup(test_request, reset),
		cmocka_unit_test_setup(test_http, reset),
	};
	int rc;

	log_open("test_metrics", "none", NULL);
	if (tmpdir_create("test_metrics") < 0)
		return 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	tmpdir_remove();
	return rc;
}
