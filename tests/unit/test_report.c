/* tests/unit/test_report.c - the log summary of portcullisctl report
 * (lib/report.c)
 *
 * cmocka cases: time stamps (syslog's, RFC 3339 with and without a zone,
 * journalctl's +0000, the daemon's standard error) and their refusals;
 * --since values; the summary lines of each kind (refused at RCPT, at end
 * of DATA, by score, aborted, whitelisted), greylist passes, pre-MAIL
 * disconnections, warnings, other programs' lines, with exact figures;
 * --since and --until skipping; transactions per date and per hour; the
 * most frequent warnings; greylist.error is no greylisting deferral; the
 * hostile table in every network field and as whole lines, every prefix of
 * a good line, lines over REPORT_LINE_MAX read from a descriptor; the
 * space-saving tables beyond their cap (the heavy hitter stays on top with
 * its exact count, the report says the others are approximate).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "encode.h"
#include "hostile.h"
#include "report.h"
#include "util.h"

static const time_t now = 1796601600; /* 2026-12-07 00:00:00 UTC */

static struct report *fresh(time_t since)
{
	struct report_opts o = { .since = since, .now = now, .top = 5, .keep = 100, .last = 2 };

	return report_new(&o);
}

static void feed(struct report *r, const char *line)
{
	report_line(r, line, strlen(line));
}

/* The printed report, in a buffer the caller frees. */
static char *printed(const struct report *r)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);

	assert_non_null(fp);
	report_print(r, fp, "test");
	fclose(fp);
	return buf;
}

static void test_stamps(void **state)
{
	time_t t;

	(void)state;
	setenv("TZ", "UTC", 1);
	tzset();
	assert_int_equal(report_parse_stamp("2026-12-06T23:59:58Z x", 22, now, &t), 20);
	assert_int_equal(t, now - 2);
	assert_int_equal(report_parse_stamp("2026-12-07T01:00:00.123456+01:00 h", 34, now, &t), 32);
	assert_int_equal(t, now);
	assert_int_equal(report_parse_stamp("2026-12-07T00:30:00+0030 h", 26, now, &t), 24);
	assert_int_equal(t, now);
	assert_int_equal(report_parse_stamp("2026-12-06T19:00:00-05:00 h", 27, now, &t), 25);
	assert_int_equal(t, now);
	/* the daemon's standard error: local time, milliseconds */
	assert_int_equal(report_parse_stamp("2026-12-07T00:00:01.250 portcullis: x", 37, now, &t),
	                 23);
	assert_int_equal(t, now + 1);
	/* syslog: this year, or last year when that would be in the future */
	assert_int_equal(report_parse_stamp("Dec  6 23:00:00 mx", 18, now, &t), 15);
	assert_int_equal(t, now - 3600);
	assert_int_equal(report_parse_stamp("Dec 07 00:00:05 mx", 18, now, &t), 15);
	assert_int_equal(t, now + 5);
	assert_int_equal(report_parse_stamp("Dec 31 23:00:00 mx", 18, now, &t), 15);
	assert_int_equal(t, 1767222000); /* 2025-12-31 23:00:00 UTC */
	/* not stamps */
	assert_int_equal(report_parse_stamp("Foo  6 23:00:00 mx", 18, now, &t), 0);
	assert_int_equal(report_parse_stamp("2026-13-07T00:00:00Z", 20, now, &t), 0);
	assert_int_equal(report_parse_stamp("2026-12-07T25:00:00Z", 20, now, &t), 0);
	assert_int_equal(report_parse_stamp("2026-12-07T00:00", 16, now, &t), 0);
	assert_int_equal(report_parse_stamp("2026-12-07T00:00:00+1", 21, now, &t), 0);
	assert_int_equal(report_parse_stamp("Dec  x 23:00:00 mx", 18, now, &t), 0);
	assert_int_equal(report_parse_stamp("", 0, now, &t), 0);
}

static void test_since(void **state)
{
	time_t t;

	(void)state;
	setenv("TZ", "UTC", 1);
	tzset();
	assert_int_equal(report_parse_since("24h", now, &t), 0);
	assert_int_equal(t, now - 86400);
	assert_int_equal(report_parse_since("7d", now, &t), 0);
	assert_int_equal(t, now - 7 * 86400);
	assert_int_equal(report_parse_since("30m", now, &t), 0);
	assert_int_equal(t, now - 1800);
	assert_int_equal(report_parse_since("2w", now, &t), 0);
	assert_int_equal(t, now - 14 * 86400);
	assert_int_equal(report_parse_since("90s", now, &t), 0);
	assert_int_equal(t, now - 90);
	assert_int_equal(report_parse_since("2026-12-06", now, &t), 0);
	assert_int_equal(t, now - 86400);
	assert_int_equal(report_parse_since("2026-12-06 12:30", now, &t), 0);
	assert_int_equal(t, now - 41400);
	assert_int_equal(report_parse_since("2026-12-06T12:30:15", now, &t), 0);
	assert_int_equal(t, now - 41385);
	assert_int_equal(report_parse_since("today", now + 3600, &t), 0);
	assert_int_equal(t, now);
	assert_int_equal(report_parse_since("yesterday", now + 3600, &t), 0);
	assert_int_equal(t, now - 86400);
	assert_int_equal(report_parse_since("", now, &t), -1);
	assert_int_equal(report_parse_since("h", now, &t), -1);
	assert_int_equal(report_parse_since("24x", now, &t), -1);
	assert_int_equal(report_parse_since("-1h", now, &t), -1);
	assert_int_equal(report_parse_since("99999999999d", now, &t), -1);
	assert_int_equal(report_parse_since("2026-12-06 12", now, &t), -1);
	assert_int_equal(report_parse_since("2026-12-06 12:30:1", now, &t), -1);
	assert_int_equal(report_parse_since("2026-00-06", now, &t), -1);
}

#define P "Dec  6 10:00:0"
static const char *const good_log[] = {
	P "1 mx portcullis[7]: ref=AAAAAAAAA1 qid=4XhQ2b0Kz client=mail.example.com[192.0.2.7] "
	  "helo=<mail.example.com> from=<a@example.com> to=<b@example.org> verdict=accept "
	  "score=0.0 ms=3",
	P "2 mx portcullis[7]: ref=AAAAAAAAA2 client=unknown[192.0.2.8] helo=<localhost> "
	  "from=<x@Example.NET> to=<postmaster@example.org> "
	  "refused=<b@example.org>:reject:helo.localhost verdict=aborted score=0.0 "
	  "symbols=helo.localhost ms=1",
	P "3 mx portcullis[7]: ref=AAAAAAAAA3 client=unknown[198.51.100.9] "
	  "helo=<[198.51.100.9]> from=<> refused=<b@example.org>:reject:access.client,"
	  "<c@example.org>:defer:greylist.new verdict=reject score=0.0 symbols=access.client ms=0",
	P "4 mx portcullis[7]: ref=AAAAAAAAA4 qid=7C1A2 client=host.example.net[203.0.113.5] "
	  "helo=<host> from=<c@example.net> auth=joe to=<b@example.org>,<d@example.org> "
	  "verdict=reject score=2.0 symbols=auth,access.client(2),clamav.virus "
	  "monitor=helo.non_fqdn ms=2",
	P "5 mx portcullis[7]: ref=AAAAAAAAA5 client=unknown[192.0.2.8] helo=<x.example> "
	  "from=<s@example.com> to=<e@example.org> verdict=defer score=7.5 "
	  "symbols=dnsbl.zen(5),rhsbl.dbl(2.5) ms=40",
	P "6 mx portcullis[7]: ref=AAAAAAAAA6 client=unknown[192.0.2.8] helo=<x.example> "
	  "from=<s@example.com> refused=<f@example.org>:defer:greylist.new,(+3 more) "
	  "verdict=defer score=0.0 ms=1",
	P "7 mx portcullis[7]: ref=AAAAAAAAA7 client=unknown[192.0.2.9] helo=<x.example> "
	  "from=<s@example.com> verdict=none score=0.0 ms=1",
	P "7 mx portcullis[7]: greylist: pass ref=AAAAAAAAA8 delay=312 to=<b@example.org>",
	P "8 mx portcullis[7]: greylist: pass ref=AAAAAAAAA9 delay=30 to=<c@example.org>",
	P "8 mx portcullis[7]: greylist: pass ref=AAAAAAAAB0 delay=90000 to=<c@example.org>",
	P "8 mx portcullis[7]: client=a[192.0.2.1] helo=<x> verdict=none held=helo.localhost "
	  "(disconnected before MAIL)",
	P "9 mx portcullis[7]: warning: dnsbl: list x refuses queries",
	P "9 mx portcullis[7]: error: av: no database",
	P "9 mx portcullis[7]: ref=AAAAAAAAA3 clamav: virus Eicar",
	P "9 mx postfix/smtpd[99]: NOQUEUE: reject: RCPT from x: 550 5.7.1 ref=x verdict=y",
	P "9 mx portcullis-av[8]: av: loaded 3 signatures",
	NULL,
};

static void test_summary(void **state)
{
	struct report *r = fresh(0);
	char *out;

	(void)state;
	setenv("TZ", "UTC", 1);
	tzset();
	for (int i = 0; good_log[i]; i++)
		feed(r, good_log[i]);
	assert_int_equal(report_txns(r, NULL), 7);
	assert_int_equal(report_txns(r, "accept"), 1);
	assert_int_equal(report_txns(r, "reject"), 2);
	assert_int_equal(report_txns(r, "defer"), 2);
	assert_int_equal(report_txns(r, "aborted"), 1);
	assert_int_equal(report_txns(r, "none"), 1);
	assert_int_equal(report_refusals(r, NULL), 6);
	assert_int_equal(report_refusals(r, "helo.localhost"), 1);
	assert_int_equal(report_refusals(r, "access.client"), 1);
	assert_int_equal(report_refusals(r, "greylist.new"), 2);
	assert_int_equal(report_refusals(r, "clamav.virus"), 1); /* one message */
	assert_int_equal(report_refusals(r, "score.defer"), 1);
	assert_int_equal(report_refusals(r, "auth"), 0);
	assert_int_equal(report_grey_passes(r), 3);
	assert_int_equal(report_broken(r), 0);
	out = printed(r);
	assert_non_null(strstr(out, "lines: 16 read, 14 from portcullis, 0 not understood, 0 "
	                            "too long\n"));
	assert_non_null(strstr(out, "\nRecipients accepted                           2\n"));
	assert_non_null(strstr(out, "\nRecipients refused                           10  (reject "
	                            "4, defer 3, not listed 3)\n"));
	assert_non_null(strstr(out,
	                       "\n  greylist                                    0          2\n"
	                       "    greylist.new                              0          2\n"));
	assert_non_null(strstr(out,
	                       "\n  clamav.virus\n    2026-12-06 10:00:04  ref=AAAAAAAAA4  "
	                       "client=203.0.113.5 from=<c@example.net> to=<b@example.org>\n"));
	/* newest first, at most 2 (--last) */
	assert_non_null(strstr(out, "\n  greylist.new\n    2026-12-06 10:00:06  ref=AAAAAAAAA6  "
	                            "client=192.0.2.8 from=<s@example.com> to=<f@example.org>\n"
	                            "    2026-12-06 10:00:03  ref=AAAAAAAAA3  "));
	assert_non_null(strstr(out, "  delay min 30 s, mean 30114 s, max 90000 s\n"));
	assert_non_null(strstr(out, "\n    <= 1 min                                  1  33.3%\n"));
	assert_non_null(strstr(out, "\n    <= 2 days                                 1  33.3%\n"));
	assert_non_null(strstr(out, "Top refused clients\n           3  192.0.2.8\n"));
	assert_non_null(strstr(out, "           1  203.0.113.5 (host.example.net)\n"));
	assert_non_null(strstr(out, "Top refused sender domains\n           2  <>\n"
	                            "           2  example.com\n           2  example.net\n"));
	assert_non_null(strstr(out, "Top refused recipients\n           3  b@example.org\n"
	                            "           1  c@example.org\n"));
	assert_non_null(strstr(out, "with a refusal pending\n           1  helo.localhost\n"));
	assert_non_null(
	    strstr(out, "\nPer hour                                 accept     reject      defer "
	                "     other\n  10:00-11:00                                 1          2 "
	                "         2          2\n\n"));
	assert_null(strstr(out, "Per day"));
	assert_non_null(strstr(out,
	                       "\nTop warnings and errors\n           1  error: av: no database\n"
	                       "           1  warning: dnsbl: list x refuses queries\n"));
	assert_non_null(strstr(out, "\nWarnings                                      1\n"
	                            "Errors                                        1\n"
	                            "Other lines                                   0\n"));
	assert_non_null(strstr(out, "\nTop viruses\n           1  Eicar\n"));
	free(out);
	report_free(r);
}

static void test_since_skips(void **state)
{
	struct report_opts o = { .since = now - 86400 + 10 * 3600 + 3,
		                 .until = now - 86400 + 10 * 3600 + 7,
		                 .now = now };
	struct report *r = report_new(&o);
	char *out;

	(void)state;
	setenv("TZ", "UTC", 1);
	tzset();
	for (int i = 0; good_log[i]; i++)
		feed(r, good_log[i]);
	/* 10:00:01 .. 10:00:02 are before the start, 10:00:07 on after the end */
	assert_int_equal(report_txns(r, NULL), 4);
	out = printed(r);
	assert_non_null(strstr(out, "since: 2026-12-06 10:00:03 (2 earlier lines skipped)\n"
	                            "until: 2026-12-06 10:00:07 (8 later lines skipped)\n"));
	free(out);
	report_free(r);
}

/* Warnings and errors of the same kind count as one text: refs dropped,
 * numbers as N. */
static void test_problems(void **state)
{
	struct report *r = fresh(0);
	char line[256], *out;

	(void)state;
	for (int i = 0; i < 3; i++) {
		snprintf(line, sizeof(line),
		         "Dec  6 10:00:00 mx portcullis[1]: warning: ref=Ab%dZ dnsbl check failed: "
		         "timeout after %d ms (on_error=defer)",
		         i, 400 + i * 1000);
		feed(r, line);
	}
	feed(r, "Dec  6 10:00:00 mx portcullis[1]: error: av: scanner helper (pid 4242) ended by "
	        "signal 9");
	/* a greylist store failure is no greylisting deferral */
	feed(r, "Dec  6 10:00:00 mx portcullis[1]: ref=G1 client=x[192.0.2.1] helo=<x> from=<> "
	        "refused=<a@b>:defer:greylist.error,<c@b>:defer:greylist.new verdict=defer "
	        "score=0.0 symbols=greylist.error,greylist.new ms=1");
	out = printed(r);
	assert_non_null(strstr(out, "\n  deferred recipients                         1\n"));
	assert_int_equal(report_refusals(r, "greylist.error"), 1);
	assert_non_null(strstr(out,
	                       "\nTop warnings and errors\n"
	                       "           3  warning: dnsbl check failed: timeout after N ms "
	                       "(on_error=defer)\n"
	                       "           1  error: av: scanner helper (pid N) ended by signal "
	                       "N\n"));
	free(out);
	report_free(r);
}

/* Transactions per date (sorted, even when the log is not) and per hour
 * of the day, summed over the dates. */
static void test_per_day(void **state)
{
	static const char *const stamps[] = { "2026-12-06T23:10:00Z", "2026-12-05T23:59:59Z",
		                              "2026-12-06T00:00:00Z", "2026-12-06T23:00:00+01:00",
		                              "Dec  7 00:30:00" };
	struct report *r = fresh(0);
	char line[512], *out;

	(void)state;
	setenv("TZ", "UTC", 1);
	tzset();
	for (size_t i = 0; i < ARRAY_SIZE(stamps); i++) {
		snprintf(line, sizeof(line),
		         "%s mx portcullis[1]: ref=R%zu client=x[192.0.2.1] helo=<x> from=<> "
		         "to=<a@b> verdict=%s score=0.0 ms=1",
		         stamps[i], i, i % 2 ? "accept" : "none");
		feed(r, line);
	}
	out = printed(r);
	assert_non_null(
	    strstr(out, "\nPer day                                  accept     reject      defer "
	                "     other\n"
	                "  2026-12-05                                  1          0          0 "
	                "         0\n"
	                "  2026-12-06                                  1          0          0 "
	                "         2\n"
	                "  2026-12-07                                  0          0          0 "
	                "         1\n\n"
	                "Per hour (all days)                      accept     reject      defer "
	                "     other\n"
	                "  00:00-01:00                                 0          0          0 "
	                "         2\n"
	                "  22:00-23:00                                 1          0          0 "
	                "         0\n"
	                "  23:00-00:00                                 1          0          0 "
	                "         1\n"));
	free(out);
	report_free(r);
}

/* A summary line as the daemon would write it with hostile text in every
 * network field (through enc_log, as lib/engine.c does). */
static void test_hostile_fields(void **state)
{
	struct report *r = fresh(0);
	char *line = xmalloc(REPORT_LINE_MAX * 2), h[600];
	int n = 0;

	(void)state;
	hostile_init();
	for (const struct hostile *x = hostile_strings; x->name; x++, n++) {
		enc_log(h, sizeof(h), x->s, 100);
		snprintf(
		    line, REPORT_LINE_MAX * 2,
		    "2026-12-06T10:00:00Z mx portcullis[1]: ref=HOSTILE%03d client=%s[192.0.2.1] "
		    "helo=<%s> from=<%s> to=<%s>,<%s> refused=<%s>:reject:dnsbl.zen,<%s>:defer:"
		    "greylist.new verdict=aborted score=0.0 symbols=dnsbl.zen ms=1",
		    n, h, h, h, h, h, h, h);
		feed(r, line);
	}
	/* Every line counts as one transaction; refusals may be mis-split
	 * inside a hostile line, never lost or invented beyond it. */
	assert_int_equal(report_txns(r, "aborted"), (unsigned long long)n);
	assert_true(report_refusals(r, NULL) >= 2 * (unsigned long long)n);
	assert_true(report_refusals(r, "dnsbl.zen") >= (unsigned long long)n);
	free(printed(r));
	free(line);
	report_free(r);
}

static void test_hostile_lines(void **state)
{
	struct report *r = fresh(0);
	const char *good = good_log[3];
	char *line = xmalloc(REPORT_LINE_MAX + 100);
	size_t whole;

	(void)state;
	hostile_init();
	for (const struct hostile *x = hostile_strings; x->name; x++) {
		report_line(r, x->s, x->len); /* raw, NULs and all */
		snprintf(line, REPORT_LINE_MAX + 100, "Dec  6 10:00:00 mx portcullis[1]: %s", x->s);
		feed(r, line);
		snprintf(line, REPORT_LINE_MAX + 100, "Dec  6 10:00:00 mx portcullis[1]: ref=%s",
		         x->s);
		feed(r, line);
	}
	/* every prefix of a good line: those that reach the verdict word are
	 * transactions (the fields after it are optional) */
	for (size_t n = 0; n <= strlen(good); n++)
		report_line(r, good, n);
	whole = strlen(good) - (size_t)(strstr(good, " verdict=reject") + 15 - good) + 1;
	feed(r, "Dec  6 10:00:00 mx portcullis[1]: greylist: pass ref=A delay=");
	feed(r, "Dec  6 10:00:00 mx portcullis[1]: greylist: pass ref=A delay=99999999999999999");
	feed(r, "Dec  6 10:00:00 mx portcullis[1]: greylist: pass ref=A");
	feed(r, "Dec  6 10:00:00 mx portcullis[1]: ref=A client=[ verdict=accept");
	feed(r, "Dec  6 10:00:00 mx portcullis[1]: ref=A client=x] helo=< verdict=accept");
	feed(r, "Dec  6 10:00:00 mx portcullis[1]: ref=A client=x[1] helo=< from=< verdict=x");
	feed(r, "Dec  6 10:00:00 mx portcullis[1]: ref=A client=x[1] helo=<> from=<> to=<"
	        " verdict=reject");
	feed(r, "Dec  6 10:00:00 mx portcullis[1]: ref=A client=x[1] helo=<> from=<> refused=<"
	        " verdict=reject");
	feed(r, "Dec  6 10:00:00 mx portcullis[1]: ref=A client=x[1] helo=<> from=<> refused=<a>"
	        ":reject: verdict=reject");
	feed(r, "Dec  6 10:00:00 mx portcullis portcullis[1]: ref=B client=x[1] helo=<> from=<> "
	        "verdict=none score=0.0 ms=1");
	feed(r, "Xyz  6 10:00:00 mx portcullis[1]: ref=C client=x[1] helo=<> from=<> "
	        "verdict=none score=0.0 ms=1");
	memset(line, 'a', REPORT_LINE_MAX + 50);
	memcpy(line, "Dec  6 10:00:00 mx portcullis[1]: ref=", 38);
	report_line(r, line, REPORT_LINE_MAX + 50);
	/* the prefixes, "B" (a host named portcullis) and the three with a
	 * client, helo, from and a verdict */
	assert_int_equal(report_txns(r, NULL), whole + 4);
	assert_true(report_broken(r) >= 4); /* bad delays, the bad stamp */
	free(printed(r));
	free(line);
	report_free(r);
}

static void test_read_fd(void **state)
{
	struct report *r = fresh(0);
	char path[] = "/tmp/test_report.XXXXXX";
	int fd = mkstemp(path);
	FILE *fp;
	char *out;

	(void)state;
	assert_true(fd >= 0);
	fp = fdopen(fd, "w");
	fprintf(fp, "%s\n", good_log[0]);
	fprintf(fp, "Dec  6 10:00:00 mx portcullis[1]: ref=");
	for (int i = 0; i < 3 * (1 << 20) / 10; i++)
		fputs("0123456789", fp); /* a 3 MB line */
	fprintf(fp, "\n%s\n", good_log[1]);
	for (int i = 0; i < REPORT_LINE_MAX + 10; i++)
		fputc('b', fp);
	fprintf(fp, "\n%s", good_log[2]); /* no newline at the end */
	fclose(fp);
	fd = open(path, 0);
	assert_int_equal(report_read_fd(r, fd), 0);
	close(fd);
	unlink(path);
	assert_int_equal(report_txns(r, NULL), 3);
	out = printed(r);
	assert_non_null(strstr(out, "lines: 5 read, 3 from portcullis, 0 not understood, 2 too "
	                            "long\n"));
	free(out);
	report_free(r);
}

/* More distinct clients than a table keeps: the space-saving count keeps
 * the heavy hitter on top with its exact count, the others show the bound
 * of their error, and the report says it is approximate. */
static void test_space_saving(void **state)
{
	struct report_opts o = { .now = now, .top = 3, .keep = 50 };
	struct report *r = report_new(&o);
	const char *top = "Top refused clients\n        1000  10.0.0.1\n";
	char line[512], *out, *p;
	unsigned long long c;

	(void)state;
	for (int i = 0; i < 5000; i++) {
		int heavy = i % 5 == 0;

		snprintf(line, sizeof(line),
		         "2026-12-06T10:00:00Z mx portcullis[1]: ref=R%d client=unknown[%s%d] "
		         "helo=<x> from=<a@d%d.example> refused=<u%d@example.org>:reject:dnsbl.zen "
		         "verdict=reject score=0.0 ms=1",
		         i, heavy ? "10.0.0." : "192.0.", heavy ? 1 : i, i, i);
		feed(r, line);
	}
	assert_int_equal(report_refusals(r, "dnsbl.zen"), 5000);
	out = printed(r);
	p = strstr(out, "Top refused clients\n");
	assert_non_null(p);
	/* never evicted, so counted exactly; the others say their bound */
	assert_memory_equal(p, top, strlen(top));
	assert_int_equal(sscanf(p + strlen(top), " %llu  192.0.%*d [at least 1]\n", &c), 1);
	assert_true(c > 1 && c <= 1 + 5000 / 50);
	assert_non_null(strstr(p, "(approximate: more than 50 distinct values; a count above may "
	                          "be over by at most "));
	free(out);
	report_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stamps),         cmocka_unit_test(test_since),
		cmocka_unit_test(test_summary),        cmocka_unit_test(test_since_skips),
		cmocka_unit_test(test_hostile_fields), cmocka_unit_test(test_hostile_lines),
		cmocka_unit_test(test_read_fd),        cmocka_unit_test(test_space_saving),
		cmocka_unit_test(test_per_day),        cmocka_unit_test(test_problems),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
