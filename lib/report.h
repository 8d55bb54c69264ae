/* lib/report.h - a summary of the daemon's log (portcullisctl report)
 *
 * Reads the log a line at a time and keeps only counters and bounded
 * tables, so a file of any size streams through in constant memory:
 *  - the summary lines (portcullis(8), LOGGING): transactions by verdict
 *    (in total, per local date and per hour of the day),
 *    recipients accepted and refused, refusals by check ("dnsbl") and
 *    sub-check (the symbol, "dnsbl.zen"), the top refused clients, sender
 *    domains and recipients, and the refs of the last refusals of each
 *    kind;
 *  - "greylist: pass ref=R delay=N to=<RCPT>" lines: the greylist delays;
 *  - "ref=R clamav: virus NAME" lines: the viruses found;
 *  - "client=... verdict=none held=SYMBOL" lines (disconnected before MAIL);
 *  - warning: and error: lines: counted, and the most frequent texts
 *    (refs dropped, numbers as N).
 * A refusal is what Postfix would log as one reject line: a recipient
 * refused at RCPT (refused=<RCPT>:ACTION:SYMBOL), or a message refused at
 * end of DATA, whose symbol is then the last one in symbols= that has no
 * score and does not whitelist ("score.reject"/"score.defer" when there
 * is none).  "Recipients refused" counts the recipients of both.
 *
 * Time stamps understood: syslog's traditional "Mmm dd HH:MM:SS" (the year
 * is the one that puts the line at most a day after `now`), RFC 3339
 * ("2026-12-07T01:02:55.123456+00:00", journalctl -o short-iso's +0000,
 * or no zone: local time, as the daemon writes to standard error).  The
 * program tag must be "portcullis" ("portcullis[PID]:" or "portcullis:");
 * other lines (Postfix's, the scanner helper's) are skipped.
 *
 * Log text is hostile (it came from the network, through enc_log): lines
 * over REPORT_LINE_MAX bytes are skipped and counted, fields are bounded,
 * and each table keeps at most `keep` distinct values, counted with the
 * space-saving algorithm (Metwally et al.) beyond that: the top values of
 * a stream are found in bounded memory, each count over by at most the
 * figure the report then prints.
 *
 * Not thread-safe: one struct report per thread.
 * See also: milter/portcullisctl.c (the command), portcullisctl(8).
 */
#ifndef PORTCULLIS_REPORT_H
#define PORTCULLIS_REPORT_H

#include <stddef.h>
#include <stdio.h>
#include <time.h>

#define REPORT_LINE_MAX 16384

struct report_opts {
	time_t since; /* lines before this are skipped (0: none) */
	time_t until; /* lines from this on are skipped (0: none) */
	time_t now;   /* completes syslog stamps without a year */
	int top;      /* rows in each top table */
	int keep;     /* distinct values kept per table */
	int last;     /* refs shown per kind of refusal */
};

struct report;

/* A new, empty report; o is copied (top, keep, last <= 0: 10, 10000, 3). */
struct report *report_new(const struct report_opts *o);
void report_free(struct report *r);

/* Account one log line of len bytes (a trailing newline is ignored; it
 * need not be NUL-terminated). */
void report_line(struct report *r, const char *line, size_t len);

/* Account a line that was longer than REPORT_LINE_MAX (and skipped). */
void report_long_line(struct report *r);

/* Account everything read from descriptor fd until end of file: lines of
 * any length, the last one with or without a newline.  Returns 0, or -1
 * with errno on a read error. */
int report_read_fd(struct report *r, int fd);

/* Write the summary for people to fp; title names what was read. */
void report_print(const struct report *r, FILE *fp, const char *title);

/* A --since or --until argument: "N" followed by s, m, h, d or w (that
 * long before now), "today" or "yesterday" (local midnight), or a local
 * date "YYYY-MM-DD" with an optional " HH:MM[:SS]" or "THH:MM[:SS]".  0 and
 * *t, or -1. */
int report_parse_since(const char *s, time_t now, time_t *t);

/* The time stamp at the start of a log line: its length in bytes (the
 * stamp without the space after it) and *t, or 0 when the line does not
 * start with a stamp understood here. */
size_t report_parse_stamp(const char *line, size_t len, time_t now, time_t *t);

/* Figures for tests: transactions with verdict v ("accept", ...; NULL:
 * all), refusals of symbol sym (NULL: all), lines not understood,
 * greylist passes seen. */
unsigned long long report_txns(const struct report *r, const char *v);
unsigned long long report_refusals(const struct report *r, const char *sym);
unsigned long long report_broken(const struct report *r);
unsigned long long report_grey_passes(const struct report *r);

#endif
