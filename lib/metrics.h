/* lib/metrics.h - counters for Prometheus, and their text exposition
 *
 * Process-wide counters and histograms, updated by the mail threads with
 * relaxed atomic adds (no lock, no allocation: a few nanoseconds per call),
 * and rendered in the Prometheus text exposition format 0.0.4 by
 * metrics_render(), which runs on the metrics listener's thread
 * (metrics_http.h).  Rendering reads every counter atomically; the set is
 * consistent enough for monitoring, not a snapshot.
 *
 * What is counted (the names are listed in portcullis(8), METRICS):
 *  - transactions by outcome, one per summary log line (metrics_txn);
 *  - per-check verdicts by module and action (metrics_verdict,
 *    metrics_check_error);
 *  - the score of each transaction (a histogram);
 *  - the time the checks of each SMTP stage took (one histogram per stage);
 *  - greylisting: passes, deferrals, auto-whitelist passes, and the delay
 *    of each triplet that passed after a deferral (a histogram);
 *  - virus scans by result, and starts and abnormal ends of the scanner
 *    helper process;
 *  - the time of each DNS query sent to a server (a histogram);
 *  - the DNS counters of the running configuration's resolver (dns.h
 *    dns_get_stats), kept monotonic across reloads;
 *  - entry counts of the store's namespaces, when a store was set with
 *    metrics_set_store(); they are O(n) walks, so they are recounted at most
 *    every metrics.store_interval seconds, on the rendering thread;
 *  - process facts: start time, uptime, configuration generation, reloads.
 *
 * See also: metrics_http.h (the listener and the client of portcullisctl
 * stats), engine.c (the call sites), portcullis(8) METRICS.
 */
#ifndef PORTCULLIS_METRICS_H
#define PORTCULLIS_METRICS_H

#include <stddef.h>

#include "check.h"
#include "conf.h"

struct store;

/* Modules beyond this index in check_registry[] are not counted. */
#define METRICS_MODULES_MAX 64

/* The version shown by portcullis_build_info (a string that lives as long
 * as the process; default "unknown").  Call before the listener starts. */
void metrics_set_version(const char *v);

/* Start the uptime clock (the daemon, at start; else the first render). */
void metrics_start_clock(void);

/* Monotonic microseconds, the clock of metrics_stage(). */
long long metrics_now_us(void);

/* One finished transaction: verdict is the word of the summary log line
 * (accept, reject, defer, aborted, none; anything else counts as none),
 * score the total score logged with it. */
void metrics_txn(const char *verdict, double score);

/* A check module (index in check_registry[]) gave a verdict of action a in
 * effective mode eff (monitor counts as action "monitor"; a reject in defer
 * mode as "defer").  ACT_DUNNO and MODE_OFF are not counted. */
void metrics_verdict(int module, enum action a, enum mode eff);

/* A check module's hook failed (CHECK_RETRY): action "error". */
void metrics_check_error(int module);
/* A null-sender message judged by check "batv" or "bounce": verdict
 * "genuine", "unwanted", "auto_reply" or "other". */
void metrics_bounce(const char *check, const char *verdict);

/* The checks of stage st ran for us microseconds. */
void metrics_stage(enum stage st, long long us);

/* Greylisting decided a recipient: passed (a known triplet, or a retry
 * after the delay), deferred, or skipped for an auto-whitelisted network. */
enum metrics_grey { METRICS_GREY_PASS, METRICS_GREY_DEFER, METRICS_GREY_AWL, METRICS_GREY_COUNT };
void metrics_greylist(enum metrics_grey r);

/* A deferred triplet passed, seconds after its first attempt. */
void metrics_greylist_delay(long long seconds);

/* One virus scan ended: result 0 clean, 1 infected, 2 not scanned (an
 * error or a timeout of the helper); us is how long it took. */
enum metrics_av { METRICS_AV_CLEAN, METRICS_AV_INFECTED, METRICS_AV_ERROR, METRICS_AV_COUNT };
void metrics_av_scan(enum metrics_av r, long long us);

/* The scanner helper process was started (ended = 0), or one ended
 * abnormally: a crash, killed after a timeout, a non-zero exit (1). */
void metrics_av_helper(int ended);

/* A DNS query that went to the network (not a cache hit) ended after us
 * microseconds, answered or not (a timeout at the deadline). */
void metrics_dns_query(long long us);

/* A reload of the configuration succeeded (ok = 1) or failed (0). */
void metrics_reload(int ok);

/* Expose the entry counts of namespaces ns[0..n-1] of store st (NULL: no
 * store, nothing exposed).  The names are copied.  Call with NULL before
 * closing the store.  Thread-safe. */
void metrics_set_store(struct store *st, const char *const *ns, int n);

/* The whole exposition text, NUL-terminated, in a buffer the caller frees;
 * *len (if not NULL) gets its length.  conf is the running snapshot (for
 * the DNS counters and metrics.store_interval) or NULL.  Serialised by a
 * lock of its own; meant for one thread (the listener), any thread works. */
char *metrics_render(const struct conf *conf, size_t *len);

/* Forget what metrics_render() holds between calls (a reference to the
 * last snapshot whose DNS counters it read) and the store.  At exit. */
void metrics_release(void);

/* Zero every counter and restart the clock (unit tests). */
void metrics_reset(void);

/* One sample line of the exposition text, split: name, the labels as
 * written between the braces (without them; "" if none) and the value.
 * Returns 0, or -1 for a comment, a blank or malformed line.  Used by
 * portcullisctl stats and the tests. */
struct metrics_sample {
	char name[128];
	char labels[256];
	double value;
};
int metrics_parse_line(const char *line, struct metrics_sample *s);

/* The value of label key in a sample's labels, unescaped into dst; 0, or
 * -1 if the label is absent. */
int metrics_label(const struct metrics_sample *s, const char *key, char *dst, size_t dstsize);

#endif
