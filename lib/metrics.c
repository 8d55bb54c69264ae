/* lib/metrics.c - counters for Prometheus and the text exposition; see
 * metrics.h
 *
 * Threading: the counters are plain 64-bit integers changed only with
 * relaxed __atomic adds by the mail threads and read with atomic loads by
 * metrics_render(); no lock on the mail path.  Histograms keep one counter
 * per bucket (not cumulative) plus the sum in integer units (microseconds,
 * thousandths of a score point), so one observation is two atomic adds;
 * _count is the sum of the buckets at render time.  metrics_render(),
 * metrics_set_store() and metrics_release() share one mutex for the state
 * that lives between scrapes (DNS totals across reloads, the store and its
 * cached counts).
 */
#include "metrics.h"
#include "dns.h"
#include "store.h"
#include "util.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ADD(p, n) __atomic_fetch_add((p), (n), __ATOMIC_RELAXED)
#define LOAD(p)   __atomic_load_n((p), __ATOMIC_RELAXED)

/* --- the counters --------------------------------------------------------- */

static const char *const outcome_names[] = { "accept", "reject", "defer", "aborted", "none" };
#define OUTCOMES ARRAY_SIZE(outcome_names)

enum { MA_OK, MA_SCORE, MA_DEFER, MA_REJECT, MA_MONITOR, MA_ERROR, MA_COUNT };
static const char *const action_names[MA_COUNT] = { "ok",     "score",   "defer",
	                                            "reject", "monitor", "error" };

static const char *const stage_names[STAGE_COUNT] = { "connect", "helo", "mail", "rcpt",
	                                              "header",  "eoh",  "body", "eom" };

/* Stage durations: bucket bounds in microseconds, and as written. */
static const long long stage_le_us[] = { 100,     250,     500,     1000,    2500,   5000,
	                                 10000,   25000,   50000,   100000,  250000, 500000,
	                                 1000000, 2500000, 5000000, 10000000 };
static const char *const stage_le_text[] = { "0.0001", "0.00025", "0.0005", "0.001",
	                                     "0.0025", "0.005",   "0.01",   "0.025",
	                                     "0.05",   "0.1",     "0.25",   "0.5",
	                                     "1",      "2.5",     "5",      "10" };
#define STAGE_BUCKETS (ARRAY_SIZE(stage_le_us) + 1) /* + "+Inf" */

static const double score_le[] = { 0, 1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 50 };
static const char *const score_le_text[] = { "0", "1",  "2",  "3",  "4",  "5", "6",
	                                     "8", "10", "15", "20", "30", "50" };
#define SCORE_BUCKETS (ARRAY_SIZE(score_le) + 1)

static struct {
	unsigned long long txn[OUTCOMES];
	unsigned long long check[METRICS_MODULES_MAX][MA_COUNT];
	unsigned long long stage_bucket[STAGE_COUNT][STAGE_BUCKETS];
	unsigned long long stage_sum_us[STAGE_COUNT];
	unsigned long long score_bucket[SCORE_BUCKETS];
	long long score_sum_milli;
	unsigned long long reloads_ok, reloads_failed;
} ctr;

static time_t start_time; /* 0: not yet known (set on the first render) */
static const char *version = "unknown";
static long long start_us;

long long metrics_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void metrics_txn(const char *verdict, double score)
{
	size_t o = OUTCOMES - 1, b = 0;

	for (size_t i = 0; verdict && i < OUTCOMES; i++)
		if (strcmp(verdict, outcome_names[i]) == 0)
			o = i;
	ADD(&ctr.txn[o], 1);
	while (b < ARRAY_SIZE(score_le) && score > score_le[b])
		b++;
	ADD(&ctr.score_bucket[b], 1);
	ADD(&ctr.score_sum_milli, (long long)(score * 1000 + (score < 0 ? -0.5 : 0.5)));
}

void metrics_verdict(int module, enum action a, enum mode eff)
{
	int k;

	if (module < 0 || module >= METRICS_MODULES_MAX || eff == MODE_OFF)
		return;
	switch (a) {
	case ACT_OK: k = MA_OK; break;
	case ACT_SCORE: k = MA_SCORE; break;
	case ACT_DEFER: k = MA_DEFER; break;
	case ACT_REJECT: k = eff == MODE_DEFER ? MA_DEFER : MA_REJECT; break;
	default: return;
	}
	if (eff == MODE_MONITOR)
		k = MA_MONITOR;
	ADD(&ctr.check[module][k], 1);
}

void metrics_check_error(int module)
{
	if (module >= 0 && module < METRICS_MODULES_MAX)
		ADD(&ctr.check[module][MA_ERROR], 1);
}

void metrics_stage(enum stage st, long long us)
{
	size_t b = 0;

	if ((int)st < 0 || st >= STAGE_COUNT)
		return;
	if (us < 0)
		us = 0;
	while (b < ARRAY_SIZE(stage_le_us) && us > stage_le_us[b])
		b++;
	ADD(&ctr.stage_bucket[st][b], 1);
	ADD(&ctr.stage_sum_us[st], (unsigned long long)us);
}

void metrics_reload(int ok)
{
	ADD(ok ? &ctr.reloads_ok : &ctr.reloads_failed, 1);
}

/* --- state between scrapes ------------------------------------------------ */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* DNS: totals = base + the counters of the resolver of `held`, the last
 * snapshot read.  When the running snapshot changes, the held one's final
 * counters go into base: the counters stay monotonic across reloads. */
static struct dns_stats dns_base;
static struct conf *dns_held;

static struct store *store;
static char store_ns[STORE_MAX_NS][STORE_MAX_NS_NAME + 1];
static long store_n[STORE_MAX_NS];
static int store_nns;
static long long store_counted_us; /* 0: never */

void metrics_set_store(struct store *st, const char *const *ns, int n)
{
	pthread_mutex_lock(&lock);
	store = st;
	store_nns = 0;
	store_counted_us = 0;
	for (int i = 0; st && i < n && store_nns < STORE_MAX_NS; i++) {
		bcopy_str(store_ns[store_nns], sizeof(store_ns[0]), ns[i]);
		store_n[store_nns++] = -1;
	}
	pthread_mutex_unlock(&lock);
}

static void dns_add(struct dns_stats *to, const struct dns_stats *x)
{
	to->queries += x->queries;
	to->cache_hits += x->cache_hits;
	to->answers += x->answers;
	to->timeouts += x->timeouts;
	to->servfail += x->servfail;
	to->errors += x->errors;
}

void metrics_release(void)
{
	pthread_mutex_lock(&lock);
	if (dns_held && dns_held->dns) {
		struct dns_stats x;

		dns_get_stats(dns_held->dns, &x);
		dns_add(&dns_base, &x);
	}
	conf_unref(dns_held);
	dns_held = NULL;
	store = NULL;
	store_nns = 0;
	pthread_mutex_unlock(&lock);
}

void metrics_reset(void)
{
	metrics_release();
	pthread_mutex_lock(&lock);
	memset(&dns_base, 0, sizeof(dns_base));
	pthread_mutex_unlock(&lock);
	/* Tests only: no mail thread runs, so plain stores are enough. */
	memset(&ctr, 0, sizeof(ctr));
	start_time = 0;
}

/* --- rendering ------------------------------------------------------------ */

struct out {
	char *p;
	size_t len, cap;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if ((size_t)n < o->cap - o->len) {
			o->len += (size_t)n;
			return;
		}
		o->cap = (o->cap + (size_t)n) * 2;
		o->p = xrealloc(o->p, o->cap);
	}
}

static void family(struct out *o, const char *name, const char *type, const char *help)
{
	put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value, escaped as the exposition format wants (\\, \", \n). */
static void put_label(struct out *o, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			put(o, "\\%c", *v);
		else if (*v == '\n')
			put(o, "\\n");
		else
			put(o, "%c", *v);
	}
}

static void render_process(struct out *o)
{
	long long up_s = (metrics_now_us() - start_us) / 1000000;

	family(o, "portcullis_build_info", "gauge", "Version of the running daemon (value 1).");
	put(o, "portcullis_build_info{version=\"");
	put_label(o, version);
	put(o, "\"} 1\n");
	family(o, "portcullis_start_time_seconds", "gauge",
	       "When the daemon started, seconds since the epoch.");
	put(o, "portcullis_start_time_seconds %lld\n", (long long)start_time);
	family(o, "portcullis_uptime_seconds", "gauge", "Seconds since the daemon started.");
	put(o, "portcullis_uptime_seconds %lld\n", up_s);
	family(o, "portcullis_config_generation", "gauge",
	       "Configuration in use: 1 at start, plus one per successful reload.");
	put(o, "portcullis_config_generation %llu\n", 1 + LOAD(&ctr.reloads_ok));
	family(o, "portcullis_config_reloads_total", "counter",
	       "Configuration reloads, by result (a failed one keeps the running configuration).");
	put(o, "portcullis_config_reloads_total{result=\"ok\"} %llu\n", LOAD(&ctr.reloads_ok));
	put(o, "portcullis_config_reloads_total{result=\"failed\"} %llu\n",
	    LOAD(&ctr.reloads_failed));
}

static void render_mail(struct out *o)
{
	unsigned long long cum = 0;
	long long ssum;

	family(o, "portcullis_transactions_total", "counter",
	       "Transactions (one per summary log line), by outcome.");
	for (size_t i = 0; i < OUTCOMES; i++)
		put(o, "portcullis_transactions_total{outcome=\"%s\"} %llu\n", outcome_names[i],
		    LOAD(&ctr.txn[i]));

	family(o, "portcullis_check_verdicts_total", "counter",
	       "Verdicts of the check modules, by check and action.");
	for (int m = 0; m < check_registry_count && m < METRICS_MODULES_MAX; m++)
		for (int a = 0; a < MA_COUNT; a++) {
			put(o, "portcullis_check_verdicts_total{check=\"");
			put_label(o, check_registry[m]->name);
			put(o, "\",action=\"%s\"} %llu\n", action_names[a], LOAD(&ctr.check[m][a]));
		}

	family(o, "portcullis_score", "histogram", "Total score of each transaction.");
	for (size_t b = 0; b < SCORE_BUCKETS; b++) {
		cum += LOAD(&ctr.score_bucket[b]);
		put(o, "portcullis_score_bucket{le=\"%s\"} %llu\n",
		    b < ARRAY_SIZE(score_le) ? score_le_text[b] : "+Inf", cum);
	}
	ssum = LOAD(&ctr.score_sum_milli);
	put(o, "portcullis_score_sum %s%lld.%03lld\n", ssum < 0 ? "-" : "",
	    (ssum < 0 ? -ssum : ssum) / 1000, (ssum < 0 ? -ssum : ssum) % 1000);
	put(o, "portcullis_score_count %llu\n", cum);

	family(o, "portcullis_stage_duration_seconds", "histogram",
	       "Time the checks of one SMTP stage took, by stage.");
	for (int st = 0; st < STAGE_COUNT; st++) {
		unsigned long long sum = LOAD(&ctr.stage_sum_us[st]);

		cum = 0;
		for (size_t b = 0; b < STAGE_BUCKETS; b++) {
			cum += LOAD(&ctr.stage_bucket[st][b]);
			put(o,
			    "portcullis_stage_duration_seconds_bucket{stage=\"%s\",le=\"%s\"} "
			    "%llu\n",
			    stage_names[st],
			    b < ARRAY_SIZE(stage_le_us) ? stage_le_text[b] : "+Inf", cum);
		}
		put(o, "portcullis_stage_duration_seconds_sum{stage=\"%s\"} %llu.%06llu\n",
		    stage_names[st], sum / 1000000, sum % 1000000);
		put(o, "portcullis_stage_duration_seconds_count{stage=\"%s\"} %llu\n",
		    stage_names[st], cum);
	}
}

/* Called with the lock held. */
static void render_dns(struct out *o, const struct conf *conf)
{
	struct dns_stats now = { 0 }, tot;

	if (conf == NULL || conf->dns == NULL)
		return;
	if (dns_held != conf) {
		if (dns_held && dns_held->dns) {
			struct dns_stats x;

			dns_get_stats(dns_held->dns, &x);
			dns_add(&dns_base, &x);
		}
		conf_unref(dns_held);
		dns_held = conf_ref((struct conf *)conf);
	}
	dns_get_stats(conf->dns, &now);
	tot = dns_base;
	dns_add(&tot, &now);
	family(o, "portcullis_dns_queries_total", "counter",
	       "DNS queries asked by the checks, cache hits included.");
	put(o, "portcullis_dns_queries_total %llu\n", tot.queries);
	family(o, "portcullis_dns_cache_hits_total", "counter",
	       "DNS queries answered from the cache.");
	put(o, "portcullis_dns_cache_hits_total %llu\n", tot.cache_hits);
	family(o, "portcullis_dns_answers_total", "counter",
	       "DNS queries answered by a server (an address, NXDOMAIN or no data).");
	put(o, "portcullis_dns_answers_total %llu\n", tot.answers);
	family(o, "portcullis_dns_timeouts_total", "counter",
	       "DNS queries without an answer before the deadline.");
	put(o, "portcullis_dns_timeouts_total %llu\n", tot.timeouts);
	family(o, "portcullis_dns_servfail_total", "counter", "DNS queries answered SERVFAIL.");
	put(o, "portcullis_dns_servfail_total %llu\n", tot.servfail);
	family(o, "portcullis_dns_errors_total", "counter",
	       "DNS queries that failed otherwise (REFUSED, an invalid name, TCP trouble).");
	put(o, "portcullis_dns_errors_total %llu\n", tot.errors);
	family(o, "portcullis_dns_cache_entries", "gauge", "Answers in the DNS cache.");
	put(o, "portcullis_dns_cache_entries %llu\n", now.cache_entries);
}

/* Called with the lock held.  Recounts at most every interval seconds. */
static void render_store(struct out *o, long interval)
{
	long long now = metrics_now_us();

	if (store == NULL || store_nns == 0)
		return;
	if (store_counted_us == 0 || now - store_counted_us >= (long long)interval * 1000000) {
		for (int i = 0; i < store_nns; i++)
			store_n[i] = store_count(store, store_ns[i]);
		store_counted_us = metrics_now_us();
		if (store_counted_us == 0)
			store_counted_us = 1;
	}
	family(o, "portcullis_store_entries", "gauge",
	       "Records per store namespace, expired ones until the background expiry "
	       "removes them (read at most every metrics.store_interval).");
	for (int i = 0; i < store_nns; i++) {
		if (store_n[i] < 0)
			continue; /* the count failed; the store logged why */
		put(o, "portcullis_store_entries{namespace=\"");
		put_label(o, store_ns[i]);
		put(o, "\"} %ld\n", store_n[i]);
	}
	family(o, "portcullis_store_counted_seconds_ago", "gauge",
	       "Age of the store entry counts.");
	put(o, "portcullis_store_counted_seconds_ago %lld\n",
	    (now > store_counted_us ? now - store_counted_us : 0) / 1000000);
}

char *metrics_render(const struct conf *conf, size_t *len)
{
	struct out o = { xmalloc(16384), 0, 16384 };

	o.p[0] = '\0';
	pthread_mutex_lock(&lock);
	if (start_time == 0) {
		start_time = time(NULL);
		start_us = metrics_now_us();
	}
	render_process(&o);
	render_mail(&o);
	render_dns(&o, conf);
	render_store(&o, conf ? conf->core.metrics_store_interval : 60);
	pthread_mutex_unlock(&lock);
	if (len)
		*len = o.len;
	return o.p;
}

void metrics_set_version(const char *v)
{
	version = v;
}

void metrics_start_clock(void)
{
	pthread_mutex_lock(&lock);
	start_time = time(NULL);
	start_us = metrics_now_us();
	pthread_mutex_unlock(&lock);
}

/* --- parsing one line (portcullisctl stats, tests) ------------------------ */

int metrics_parse_line(const char *line, struct metrics_sample *s)
{
	const char *p = line, *lb;
	size_t n;
	char *end;

	memset(s, 0, sizeof(*s));
	if (*p == '#' || *p == '\0' || *p == '\n')
		return -1;
	for (n = 0; (p[n] >= 'a' && p[n] <= 'z') || (p[n] >= 'A' && p[n] <= 'Z') || p[n] == '_' ||
	            p[n] == ':' || (n > 0 && p[n] >= '0' && p[n] <= '9');
	     n++)
		;
	if (n == 0 || n >= sizeof(s->name))
		return -1;
	memcpy(s->name, p, n);
	p += n;
	if (*p == '{') {
		int inq = 0;

		lb = ++p;
		for (; *p && (inq || *p != '}'); p++) {
			if (inq && *p == '\\' && p[1])
				p++;
			else if (*p == '"')
				inq = !inq;
		}
		if (*p != '}' || (size_t)(p - lb) >= sizeof(s->labels))
			return -1;
		memcpy(s->labels, lb, (size_t)(p - lb));
		p++;
	}
	if (*p != ' ')
		return -1;
	while (*p == ' ')
		p++;
	if (strncmp(p, "+Inf", 4) == 0) {
		s->value = 1e300 * 1e300;
		end = (char *)p + 4;
	} else {
		s->value = strtod(p, &end);
		if (end == p)
			return -1;
	}
	/* An optional timestamp; then the end of the line. */
	while (*end == ' ')
		end++;
	while (*end >= '0' && *end <= '9')
		end++;
	return *end == '\0' || *end == '\n' ? 0 : -1;
}

int metrics_label(const struct metrics_sample *s, const char *key, char *dst, size_t dstsize)
{
	const char *p = s->labels;
	size_t klen = strlen(key);

	while (*p) {
		const char *eq = strchr(p, '=');
		size_t n = 0;
		int match;

		if (eq == NULL || eq[1] != '"')
			return -1;
		match = (size_t)(eq - p) == klen && strncmp(p, key, klen) == 0;
		for (p = eq + 2; *p && *p != '"'; p++) {
			char ch = *p;

			if (ch == '\\' && p[1]) {
				p++;
				ch = *p == 'n' ? '\n' : *p;
			}
			if (match && n + 1 < dstsize)
				dst[n++] = ch;
		}
		if (match) {
			if (dstsize)
				dst[n] = '\0';
			return 0;
		}
		if (*p == '"')
			p++;
		if (*p == ',')
			p++;
	}
	return -1;
}
