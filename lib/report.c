/* lib/report.c - a summary of the daemon's log; see report.h
 *
 * Memory: fixed per report (the tables are allocated once at their cap);
 * a line is looked at in place and never copied whole.  Errors: a line
 * that does not parse is counted, never fatal.
 */
#include "report.h"
#include "util.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KEY_MAX   256 /* a table key: address, domain (longer ones cut) */
#define NOTE_MAX  104 /* the client name shown beside its address */
#define SYM_MAX   64  /* a symbol */
#define REF_MAX   24
#define KINDS_MAX 512 /* kinds of refusals kept; more go to "(other)" */
#define LAST_MAX  20
#define DAYS_MAX  400 /* days in the per-day table; later ones are not listed */

/* --- space-saving top-k table ---------------------------------------------- */

struct tk_entry {
	char key[KEY_MAX];
	char note[NOTE_MAX];
	unsigned long long count, err;
	int heap;    /* position in the heap */
	size_t klen; /* strlen(key) */
};

struct topk {
	struct tk_entry *e;
	int *slot; /* hash index: entry number or -1 */
	int *heap; /* entry numbers, a min-heap by count */
	int cap, n;
	unsigned mask;
	int overflowed;
};

static uint32_t hash(const char *s, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

static void tk_init(struct topk *t, int cap)
{
	unsigned size = 1;

	while (size < (unsigned)cap * 2)
		size <<= 1;
	t->e = xcalloc((size_t)cap, sizeof(*t->e));
	t->heap = xcalloc((size_t)cap, sizeof(int));
	t->slot = xmalloc(size * sizeof(int));
	memset(t->slot, 0xff, size * sizeof(int));
	t->mask = size - 1;
	t->cap = cap;
	t->n = 0;
	t->overflowed = 0;
}

static void tk_free(struct topk *t)
{
	free(t->e);
	free(t->heap);
	free(t->slot);
}

static void heap_swap(struct topk *t, int a, int b)
{
	int x = t->heap[a];

	t->heap[a] = t->heap[b];
	t->heap[b] = x;
	t->e[t->heap[a]].heap = a;
	t->e[t->heap[b]].heap = b;
}

static void sift_up(struct topk *t, int i)
{
	while (i > 0 && t->e[t->heap[(i - 1) / 2]].count > t->e[t->heap[i]].count) {
		heap_swap(t, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void sift_down(struct topk *t, int i)
{
	for (;;) {
		int l = 2 * i + 1, r = l + 1, m = i;

		if (l < t->n && t->e[t->heap[l]].count < t->e[t->heap[m]].count)
			m = l;
		if (r < t->n && t->e[t->heap[r]].count < t->e[t->heap[m]].count)
			m = r;
		if (m == i)
			return;
		heap_swap(t, i, m);
		i = m;
	}
}

/* The slot of key, or of the empty place where it would go. */
static unsigned tk_find(const struct topk *t, const char *key, size_t n)
{
	unsigned i = hash(key, n) & t->mask;

	while (t->slot[i] >= 0) {
		const struct tk_entry *e = &t->e[t->slot[i]];

		if (e->klen == n && memcmp(e->key, key, n) == 0)
			break;
		i = (i + 1) & t->mask;
	}
	return i;
}

/* Remove slot i of the linear-probing index (backward shift). */
static void tk_unslot(struct topk *t, unsigned i)
{
	unsigned j = i;

	t->slot[i] = -1;
	for (;;) {
		const struct tk_entry *e;
		unsigned home;

		j = (j + 1) & t->mask;
		if (t->slot[j] < 0)
			return;
		e = &t->e[t->slot[j]];
		home = hash(e->key, e->klen) & t->mask;
		/* Move j back to i unless its home lies cyclically in (i, j]. */
		if ((i <= j) ? (home <= i || home > j) : (home <= i && home > j)) {
			t->slot[i] = t->slot[j];
			t->slot[j] = -1;
			i = j;
		}
	}
}

/* Count one occurrence of key (n bytes, cut to KEY_MAX - 1); note, if not
 * NULL, replaces the entry's note. */
static void tk_add(struct topk *t, const char *key, size_t n, const char *note, size_t nn)
{
	unsigned i;
	int k;

	if (n >= KEY_MAX)
		n = KEY_MAX - 1;
	i = tk_find(t, key, n);
	if (t->slot[i] >= 0) {
		k = t->slot[i];
		t->e[k].count++;
		sift_down(t, t->e[k].heap);
	} else if (t->n < t->cap) {
		k = t->n++;
		memcpy(t->e[k].key, key, n);
		t->e[k].key[n] = '\0';
		t->e[k].klen = n;
		t->e[k].count = 1;
		t->e[k].err = 0;
		t->e[k].heap = k;
		t->heap[k] = k;
		t->slot[i] = k;
		sift_up(t, k);
	} else {
		/* Full: the least counted value gives its place (space-saving). */
		k = t->heap[0];
		tk_unslot(t, tk_find(t, t->e[k].key, t->e[k].klen));
		memcpy(t->e[k].key, key, n);
		t->e[k].key[n] = '\0';
		t->e[k].klen = n;
		t->e[k].err = t->e[k].count;
		t->e[k].count++;
		t->e[k].note[0] = '\0';
		t->slot[tk_find(t, key, n)] = k;
		sift_down(t, 0);
		t->overflowed = 1;
	}
	if (note) {
		if (nn >= NOTE_MAX)
			nn = NOTE_MAX - 1;
		memcpy(t->e[k].note, note, nn);
		t->e[k].note[nn] = '\0';
	}
}

static int by_count(const void *a, const void *b)
{
	const struct tk_entry *x = *(const struct tk_entry *const *)a;
	const struct tk_entry *y = *(const struct tk_entry *const *)b;

	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return strcmp(x->key, y->key);
}

/* --- the report ------------------------------------------------------------ */

enum { V_ACCEPT, V_REJECT, V_DEFER, V_ABORTED, V_NONE, V_COUNT };
static const char *const verdicts[V_COUNT] = { "accept", "reject", "defer", "aborted", "none" };

struct lastref {
	time_t t;
	char ref[REF_MAX];
	char client[64];
	char from[96];
	char rcpt[96];
};

struct kind {
	char sym[SYM_MAX];
	unsigned long long n[2]; /* reject, defer */
	struct lastref *last;    /* o.last of them, allocated at the first use */
	int nlast, next;
};

static const long long grey_le[] = { 60,   120,   300,   600,   900,   1800,  3600,
	                             7200, 14400, 28800, 43200, 86400, 172800 };
#define GREY_BUCKETS (ARRAY_SIZE(grey_le) + 1)

struct report {
	struct report_opts o;
	unsigned long long lines, ours, old, later, broken, long_lines, other, warnings, errors;
	unsigned long long txn[V_COUNT];
	unsigned long long rcpt_ok, rcpt_refused[2], rcpt_unlisted, refusals[2];
	time_t first, last;
	struct kind *kinds; /* KINDS_MAX + 1: the last is "(other)" */
	int nkinds;
	int *kslot; /* hash index of kinds */
	struct topk clients, domains, rcpts, held, problems, viruses;
	unsigned long long grey[GREY_BUCKETS], grey_n, grey_sum;
	long long grey_min, grey_max;
	int year; /* of o.now, for syslog stamps */
	/* the stamp cache: the minute last converted */
	int c_y, c_mo, c_d, c_h, c_mi, c_off, c_local;
	time_t c_base;
	int c_day, c_hour; /* its local date (YYYYMMDD) and hour */
	/* transactions by verdict per local hour of the day and per date */
	unsigned long long hour[24][V_COUNT];
	struct day_count {
		int date;
		unsigned long long n[V_COUNT];
	} days[DAYS_MAX];
	int ndays, lastday;
	unsigned long long days_dropped;
};

struct report *report_new(const struct report_opts *o)
{
	struct report *r = xcalloc(1, sizeof(*r));

	r->o = *o;
	if (r->o.top <= 0)
		r->o.top = 10;
	if (r->o.keep <= 0)
		r->o.keep = 10000;
	if (r->o.last <= 0)
		r->o.last = 3;
	if (r->o.last > LAST_MAX)
		r->o.last = LAST_MAX;
	if (r->o.now == 0)
		r->o.now = time(NULL);
	r->kinds = xcalloc(KINDS_MAX + 1, sizeof(*r->kinds));
	bcopy_str(r->kinds[KINDS_MAX].sym, SYM_MAX, "(other)");
	r->kslot = xmalloc(KINDS_MAX * 2 * sizeof(int));
	memset(r->kslot, 0xff, KINDS_MAX * 2 * sizeof(int));
	tk_init(&r->clients, r->o.keep);
	tk_init(&r->domains, r->o.keep);
	tk_init(&r->rcpts, r->o.keep);
	tk_init(&r->held, KINDS_MAX);
	tk_init(&r->problems, KINDS_MAX);
	tk_init(&r->viruses, KINDS_MAX);
	r->c_y = -1;
	{
		struct tm tm;

		localtime_r(&r->o.now, &tm);
		r->year = tm.tm_year + 1900;
	}
	return r;
}

void report_free(struct report *r)
{
	if (r == NULL)
		return;
	for (int i = 0; i <= KINDS_MAX; i++)
		free(r->kinds[i].last);
	free(r->kinds);
	free(r->kslot);
	tk_free(&r->clients);
	tk_free(&r->domains);
	tk_free(&r->rcpts);
	tk_free(&r->held);
	tk_free(&r->problems);
	tk_free(&r->viruses);
	free(r);
}

/* --- time stamps ------------------------------------------------------------ */

static int digits(const char *p, const char *end, int n, int *v)
{
	*v = 0;
	if (end - p < n)
		return -1;
	for (int i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		*v = *v * 10 + (p[i] - '0');
	}
	return 0;
}

/* Seconds since the epoch of a broken-down time: UTC minus off seconds,
 * or local time. */
static time_t make_time(int y, int mo, int d, int h, int mi, int s, int local, int off)
{
	struct tm tm = { 0 };

	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = s;
	tm.tm_isdst = -1;
	return local ? mktime(&tm) : timegm(&tm) - off;
}

/* The same, with the minute cached in r (one conversion per minute of
 * log, not per line). */
static time_t cached_time(struct report *r, int y, int mo, int d, int h, int mi, int s, int local,
                          int off)
{
	if (r == NULL)
		return make_time(y, mo, d, h, mi, s, local, off);
	if (y != r->c_y || mo != r->c_mo || d != r->c_d || h != r->c_h || mi != r->c_mi ||
	    local != r->c_local || off != r->c_off) {
		r->c_base = make_time(y, mo, d, h, mi, 0, local, off);
		r->c_y = y;
		r->c_mo = mo;
		r->c_d = d;
		r->c_h = h;
		r->c_mi = mi;
		r->c_local = local;
		r->c_off = off;
		{
			struct tm tm;

			localtime_r(&r->c_base, &tm);
			r->c_day = (tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday;
			r->c_hour = tm.tm_hour;
		}
	}
	return r->c_base + s;
}

static size_t stamp(struct report *r, const char *line, size_t len, time_t now, time_t *t)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	const char *p = line, *end = line + len;
	int y, mo, d, h, mi, s, off = 0, local = 1;

	if (len >= 19 && line[4] == '-' && line[7] == '-' && (line[10] == 'T' || line[10] == ' ')) {
		if (digits(p, end, 4, &y) || digits(p + 5, end, 2, &mo) ||
		    digits(p + 8, end, 2, &d) || digits(p + 11, end, 2, &h) || p[13] != ':' ||
		    digits(p + 14, end, 2, &mi) || p[16] != ':' || digits(p + 17, end, 2, &s))
			return 0;
		p += 19;
		if (p < end && (*p == '.' || *p == ',')) {
			p++;
			while (p < end && *p >= '0' && *p <= '9')
				p++;
		}
		if (p < end && (*p == 'Z' || *p == 'z')) {
			local = 0;
			p++;
		} else if (p < end && (*p == '+' || *p == '-')) {
			int oh, om, sign = *p == '-' ? -1 : 1;

			if (digits(p + 1, end, 2, &oh))
				return 0;
			p += 3;
			if (p < end && *p == ':')
				p++;
			if (digits(p, end, 2, &om))
				return 0;
			p += 2;
			off = sign * (oh * 3600 + om * 60);
			local = 0;
		}
	} else if (len >= 15 && line[3] == ' ' && line[6] == ' ' && line[9] == ':') {
		const char *m = NULL;

		for (int i = 0; i < 12 && m == NULL; i++)
			if (memcmp(line, months + 3 * i, 3) == 0)
				m = months + 3 * i;
		if (m == NULL)
			return 0;
		mo = (int)(m - months) / 3 + 1;
		if (line[4] == ' ' ? digits(p + 5, end, 1, &d) : digits(p + 4, end, 2, &d))
			return 0;
		if (digits(p + 7, end, 2, &h) || digits(p + 10, end, 2, &mi) || p[12] != ':' ||
		    digits(p + 13, end, 2, &s) || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60)
			return 0;
		p += 15;
		if (r) {
			y = r->year;
		} else {
			struct tm tm;

			localtime_r(&now, &tm);
			y = tm.tm_year + 1900;
		}
		*t = cached_time(r, y, mo, d, h, mi, s, 1, 0);
		if (*t > now + 86400)
			*t = cached_time(r, y - 1, mo, d, h, mi, s, 1, 0);
		return (size_t)(p - line);
	} else {
		return 0;
	}
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60)
		return 0;
	*t = cached_time(r, y, mo, d, h, mi, s, local, off);
	return (size_t)(p - line);
}

size_t report_parse_stamp(const char *line, size_t len, time_t now, time_t *t)
{
	return stamp(NULL, line, len, now, t);
}

int report_parse_since(const char *s, time_t now, time_t *t)
{
	char *end;
	long long n;
	int y, mo, d, h = 0, mi = 0, sec = 0;
	size_t len = strlen(s);

	if (len == 0)
		return -1;
	if (strcmp(s, "today") == 0 || strcmp(s, "yesterday") == 0) {
		struct tm tm;

		localtime_r(&now, &tm);
		*t = make_time(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday - (s[0] == 'y'), 0, 0,
		               0, 1, 0);
		return 0;
	}
	if (*s >= '0' && *s <= '9' && len < 12 && s[len - 1] >= 'a' && s[len - 1] <= 'z') {
		n = strtoll(s, &end, 10);
		if (end != s + len - 1 || n < 0 || n > 100000)
			return -1;
		switch (*end) {
		case 's': break;
		case 'm': n *= 60; break;
		case 'h': n *= 3600; break;
		case 'd': n *= 86400; break;
		case 'w': n *= 7 * 86400; break;
		default: return -1;
		}
		*t = now - (time_t)n;
		return 0;
	}
	if (len < 10 || s[4] != '-' || s[7] != '-' || digits(s, s + len, 4, &y) ||
	    digits(s + 5, s + len, 2, &mo) || digits(s + 8, s + len, 2, &d))
		return -1;
	if (len > 10) {
		if ((s[10] != ' ' && s[10] != 'T') || len < 16 || digits(s + 11, s + len, 2, &h) ||
		    s[13] != ':' || digits(s + 14, s + len, 2, &mi))
			return -1;
		if (len > 16 && (len != 19 || s[16] != ':' || digits(s + 17, s + len, 2, &sec)))
			return -1;
	}
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59)
		return -1;
	*t = make_time(y, mo, d, h, mi, sec, 1, 0);
	return 0;
}

/* --- one line --------------------------------------------------------------- */

/* The first occurrence of needle (nl bytes) in [p, end), or NULL. */
static const char *find(const char *p, const char *end, const char *needle, size_t nl)
{
	while (p + nl <= end) {
		const char *q = memchr(p, needle[0], (size_t)(end - p) - nl + 1);

		if (q == NULL)
			return NULL;
		if (memcmp(q, needle, nl) == 0)
			return q;
		p = q + 1;
	}
	return NULL;
}

/* The last occurrence, or NULL. */
static const char *rfind(const char *p, const char *end, const char *needle, size_t nl)
{
	for (const char *q = end - nl; q >= p; q--)
		if (*q == needle[0] && memcmp(q, needle, nl) == 0)
			return q;
	return NULL;
}

#define FIND(p, end, lit)  find((p), (end), (lit), sizeof(lit) - 1)
#define RFIND(p, end, lit) rfind((p), (end), (lit), sizeof(lit) - 1)
#define STARTS(p, end, lit)                                                                        \
	((size_t)((end) - (p)) >= sizeof(lit) - 1 && memcmp((p), (lit), sizeof(lit) - 1) == 0)

static int sym_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-';
}

/* Copy [p, p + n) into dst (size dstsize), cut and lower-cased. */
static void copy_lower(char *dst, size_t dstsize, const char *p, size_t n)
{
	if (n >= dstsize)
		n = dstsize - 1;
	for (size_t i = 0; i < n; i++)
		dst[i] = p[i] >= 'A' && p[i] <= 'Z' ? (char)(p[i] - 'A' + 'a') : p[i];
	dst[n] = '\0';
}

static struct kind *kind_of(struct report *r, const char *sym, size_t n)
{
	unsigned i;

	if (n >= SYM_MAX)
		n = SYM_MAX - 1;
	for (size_t k = 0; k < n; k++)
		if (!sym_char(sym[k]))
			return &r->kinds[KINDS_MAX];
	if (n == 0)
		return &r->kinds[KINDS_MAX];
	i = hash(sym, n) & (KINDS_MAX * 2 - 1);
	while (r->kslot[i] >= 0) {
		struct kind *k = &r->kinds[r->kslot[i]];

		if (strlen(k->sym) == n && memcmp(k->sym, sym, n) == 0)
			return k;
		i = (i + 1) & (KINDS_MAX * 2 - 1);
	}
	if (r->nkinds == KINDS_MAX)
		return &r->kinds[KINDS_MAX];
	r->kslot[i] = r->nkinds;
	memcpy(r->kinds[r->nkinds].sym, sym, n);
	r->kinds[r->nkinds].sym[n] = '\0';
	return &r->kinds[r->nkinds++];
}

/* What one summary line says, in pointers into the line. */
struct txn_fields {
	time_t t;
	const char *ref, *addr, *name, *from;
	size_t nref, naddr, nname, nfrom;
};

/* Count one refusal (a recipient at RCPT, or a message at end of DATA,
 * rcpt then its first recipient) with symbol sym, action 0 reject / 1
 * defer: the kind, the client, the sender domain, the last refs. */
static void refusal(struct report *r, const struct txn_fields *f, const char *sym, size_t nsym,
                    int action, const char *rcpt, size_t nrcpt)
{
	struct kind *k = kind_of(r, sym, nsym);
	struct lastref *l;
	char key[KEY_MAX];
	const char *at;

	if (k->last == NULL)
		k->last = xcalloc((size_t)r->o.last, sizeof(*k->last));
	l = &k->last[k->next];

	k->n[action]++;
	r->refusals[action]++;
	if (k->nlast > 0) {
		const struct lastref *prev = &k->last[(k->next - 1 + r->o.last) % r->o.last];

		if (strlen(prev->ref) == f->nref && memcmp(prev->ref, f->ref, f->nref) == 0 &&
		    f->nref < REF_MAX)
			goto counted; /* one transaction, another recipient */
	}
	k->next = (k->next + 1) % r->o.last;
	if (k->nlast < r->o.last)
		k->nlast++;
	l->t = f->t;
	memcpy(l->ref, f->ref, f->nref < REF_MAX ? f->nref : REF_MAX - 1);
	l->ref[f->nref < REF_MAX ? f->nref : REF_MAX - 1] = '\0';
	copy_lower(l->client, sizeof(l->client), f->addr, f->naddr);
	copy_lower(l->from, sizeof(l->from), f->from, f->nfrom);
	copy_lower(l->rcpt, sizeof(l->rcpt), rcpt ? rcpt : "", rcpt ? nrcpt : 0);
counted:
	tk_add(&r->clients, f->addr, f->naddr, f->name, f->nname);
	if (f->nfrom == 0) {
		tk_add(&r->domains, "<>", 2, NULL, 0);
	} else {
		at = NULL;
		for (size_t i = f->nfrom; i-- > 0 && at == NULL;)
			if (f->from[i] == '@')
				at = f->from + i;
		if (at && at + 1 < f->from + f->nfrom) {
			copy_lower(key, sizeof(key), at + 1, (size_t)(f->from + f->nfrom - at - 1));
			tk_add(&r->domains, key, strlen(key), NULL, 0);
		} else {
			tk_add(&r->domains, "(no domain)", 11, NULL, 0);
		}
	}
}

/* A refused recipient for the top table. */
static void refused_rcpt(struct report *r, const char *rcpt, size_t n)
{
	char key[KEY_MAX];

	copy_lower(key, sizeof(key), rcpt, n);
	tk_add(&r->rcpts, key, strlen(key), NULL, 0);
}

/* Symbols of symbols=S,...: the last without a score that does not
 * whitelist (the one that refused at end of DATA). */
static int eom_symbol(const char *s, const char *end, const char **sym, size_t *n)
{
	int found = 0;

	while (s < end) {
		const char *c = memchr(s, ',', (size_t)(end - s));
		const char *e = c ? c : end;
		size_t len = (size_t)(e - s);

		if (memchr(s, '(', len) == NULL && len > 0 &&
		    !(len == 4 && !memcmp(s, "auth", 4)) &&
		    !(len == 16 && !memcmp(s, "trusted_networks", 16)) &&
		    !(len >= 9 && !memcmp(s, "whitelist", 9)) &&
		    !(len >= 6 && !memcmp(e - 6, ".allow", 6))) {
			*sym = s;
			*n = len;
			found = 1;
		}
		s = c ? c + 1 : end;
	}
	return found;
}

/* A list "<A>,<B>,...[,(+N more)]" in [p, end): calls back for each
 * address; returns the N of "(+N more)" (0 if none).  With actions, each
 * entry is "<A>:reject:SYM" or "<A>:defer:SYM". */
static unsigned long long list_each(struct report *r, const struct txn_fields *f, const char *p,
                                    const char *end, int refused, int eom, int action,
                                    const char *sym, size_t nsym)
{
	unsigned long long more = 0;
	int counted = 0;

	while (p < end && *p == '<') {
		const char *a = p + 1, *close, *next;

		if (refused) {
			const char *rj = FIND(a, end, ">:reject:"), *df = FIND(a, end, ">:defer:");
			const char *s;
			int act;

			if (rj == NULL && df == NULL)
				return more;
			act = rj == NULL || (df && df < rj);
			close = act ? df : rj;
			s = close + (act ? 8 : 9);
			next = memchr(s, ',', (size_t)(end - s));
			if (next == NULL)
				next = end;
			r->rcpt_refused[act]++;
			refusal(r, f, s, (size_t)(next - s), act, a, (size_t)(close - a));
			refused_rcpt(r, a, (size_t)(close - a));
		} else {
			next = FIND(a, end, ">,<");
			if (next == NULL) {
				next = FIND(a, end, ">,(+");
				close = next ? next : end - 1;
				if (next == NULL && *close != '>')
					return more;
			} else {
				close = next;
			}
			next = close + 1;
			if (eom) {
				r->rcpt_refused[action]++;
				if (!counted++)
					refusal(r, f, sym, nsym, action, a, (size_t)(close - a));
				refused_rcpt(r, a, (size_t)(close - a));
			} else {
				r->rcpt_ok++;
			}
		}
		p = next;
		if (p < end && *p == ',')
			p++;
		if (STARTS(p, end, "(+")) {
			more = strtoull(p + 2, NULL, 10);
			if (more > 1000000)
				more = 0;
			return more;
		}
	}
	return more;
}

/* Count a transaction of verdict v in the hour and the date of the line
 * (the stamp cache's). */
static void per_time(struct report *r, int v)
{
	int i = r->lastday;

	r->hour[r->c_hour][v]++;
	if (i >= r->ndays || r->days[i].date != r->c_day) {
		/* logs run forward: look from the newest date back */
		for (i = r->ndays - 1; i >= 0 && r->days[i].date != r->c_day; i--)
			;
		if (i < 0) {
			if (r->ndays == DAYS_MAX) {
				r->days_dropped++;
				return;
			}
			i = r->ndays++;
			r->days[i].date = r->c_day;
		}
		r->lastday = i;
	}
	r->days[i].n[v]++;
}

/* The summary line of one transaction, from "ref=" in msg.  0, or -1 when
 * it is not one. */
static int summary(struct report *r, time_t t, const char *msg, const char *end)
{
	struct txn_fields f = { .t = t };
	const char *p = msg + 4, *v, *mid, *q, *to, *refused, *fromend, *sym = NULL;
	const char *symbols = NULL, *symend = NULL;
	size_t nsym = 0;
	int verdict = -1;
	unsigned long long more;

	f.ref = p;
	while (p < end &&
	       ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
		p++;
	f.nref = (size_t)(p - f.ref);
	if (f.nref == 0 || f.nref >= REF_MAX || p >= end || *p != ' ')
		return -1;
	p++;
	if (STARTS(p, end, "qid=")) {
		q = memchr(p, ' ', (size_t)(end - p));
		if (q == NULL)
			return -1;
		p = q + 1;
	}
	if (!STARTS(p, end, "client="))
		return -1;
	mid = p + 7;
	v = RFIND(mid, end, " verdict=");
	if (v == NULL)
		return -1;
	/* The tail: words the daemon wrote itself. */
	for (q = v + 9; q < end;) {
		const char *w = memchr(q, ' ', (size_t)(end - q));
		const char *we = w ? w : end;

		if (verdict < 0) {
			for (int i = 0; i < V_COUNT; i++)
				if ((size_t)(we - q) == strlen(verdicts[i]) &&
				    memcmp(q, verdicts[i], (size_t)(we - q)) == 0)
					verdict = i;
			if (verdict < 0)
				return -1;
		} else if (STARTS(q, we, "symbols=")) {
			symbols = q + 8;
			symend = we;
		}
		q = w ? w + 1 : end;
	}
	if (verdict < 0)
		return -1;
	/* client=NAME[ADDR] helo=<...> */
	q = FIND(mid, v, "] helo=<");
	if (q == NULL)
		return -1;
	f.name = mid;
	for (f.addr = q; f.addr > mid && f.addr[-1] != '['; f.addr--)
		;
	if (f.addr == mid)
		return -1;
	f.nname = (size_t)(f.addr - 1 - mid);
	f.naddr = (size_t)(q - f.addr);
	/* from=<...>, ended by the next field the daemon writes */
	q = FIND(q, v, " from=<");
	if (q == NULL)
		return -1;
	f.from = q + 7;
	fromend = FIND(f.from, v, "> auth=");
	to = FIND(f.from, v, "> to=<");
	refused = FIND(f.from, v, "> refused=<");
	if (fromend == NULL || (to && to < fromend))
		fromend = to;
	if (fromend == NULL || (refused && refused < fromend))
		fromend = refused;
	if (fromend == NULL) {
		if (v[-1] != '>')
			return -1;
		fromend = v - 1;
	}
	f.nfrom = (size_t)(fromend - f.from);
	/* The lists after the sender (and auth=USER): " to=<A>,<B>" then
	 * " refused=<C>:ACTION:SYMBOL,...", each up to the next. */
	to = FIND(fromend, v, " to=<");
	refused = FIND(to ? to : fromend, v, " refused=<");
	r->txn[verdict]++;
	per_time(r, verdict);
	if (symbols && (verdict == V_REJECT || verdict == V_DEFER) &&
	    !eom_symbol(symbols, symend, &sym, &nsym)) {
		sym = verdict == V_REJECT ? "score.reject" : "score.defer";
		nsym = strlen(sym);
	} else if (symbols == NULL) {
		sym = verdict == V_REJECT ? "score.reject" : "score.defer";
		nsym = strlen(sym);
	}
	if (to) {
		/* At end of DATA a refusal covers the message's recipients. */
		int eom = verdict == V_REJECT || verdict == V_DEFER;

		more = list_each(r, &f, to + 4, refused ? refused : v, 0, eom, verdict == V_DEFER,
		                 sym, nsym);
		if (eom)
			r->rcpt_unlisted += more;
		else
			r->rcpt_ok += more;
	}
	if (refused) {
		more = list_each(r, &f, refused + 9, v, 1, 0, 0, NULL, 0);
		r->rcpt_unlisted += more;
	}
	return 0;
}

/* "greylist: pass ref=R delay=N to=<RCPT>" */
static void grey_pass(struct report *r, const char *p, const char *end)
{
	const char *d = FIND(p, end, " delay=");
	long long s = 0;
	size_t b = 0;
	int n = 0;

	if (d == NULL) {
		r->broken++;
		return;
	}
	for (d += 7; d < end && *d >= '0' && *d <= '9' && n < 12; d++, n++)
		s = s * 10 + (*d - '0');
	if (n == 0 || n == 12) {
		r->broken++;
		return;
	}
	while (b < ARRAY_SIZE(grey_le) && s > grey_le[b])
		b++;
	r->grey[b]++;
	if (r->grey_n == 0 || s < r->grey_min)
		r->grey_min = s;
	if (r->grey_n == 0 || s > r->grey_max)
		r->grey_max = s;
	r->grey_n++;
	r->grey_sum += (unsigned long long)s;
}

/* A warning or error line, for the table of the most frequent: refs
 * dropped, runs of digits as N (pids, counts, times, addresses), cut at 100
 * bytes, so that the same trouble counts as one. */
static void problem(struct report *r, const char *p, const char *end)
{
	char key[104];
	size_t n = 0;

	while (p < end && n < 100) {
		if (STARTS(p, end, "ref=") && (n == 0 || key[n - 1] == ' ')) {
			while (p < end && *p != ' ')
				p++;
			if (p < end)
				p++;
			continue;
		}
		if (*p >= '0' && *p <= '9') {
			while (p < end && *p >= '0' && *p <= '9')
				p++;
			key[n++] = 'N';
			continue;
		}
		key[n++] = *p++;
	}
	tk_add(&r->problems, key, n, NULL, 0);
}

void report_long_line(struct report *r)
{
	r->lines++;
	r->long_lines++;
}

void report_line(struct report *r, const char *line, size_t len)
{
	const char *end, *p, *tag, *msg;
	time_t t;
	size_t n;

	r->lines++;
	if (len > 0 && line[len - 1] == '\n')
		len--;
	if (len > REPORT_LINE_MAX) {
		r->long_lines++;
		return;
	}
	end = line + len;
	/* A quick look before the work: is it ours at all?  The tag
	 * "portcullis[PID]: " or "portcullis: " after the stamp and host. */
	for (msg = NULL, p = line; msg == NULL;) {
		/* within the first 80 bytes: stamp, host name */
		tag = FIND(p, end - line > 91 ? line + 91 : end, " portcullis");
		if (tag == NULL)
			return;
		p = tag + 11;
		if (p < end && *p == '[') {
			for (p++; p < end && *p >= '0' && *p <= '9'; p++)
				;
			if (p < end && *p == ']')
				p++;
		}
		if (p + 1 < end && p[0] == ':' && p[1] == ' ')
			msg = p + 2;
	}
	n = stamp(r, line, len, r->o.now, &t);
	if (n == 0) {
		r->broken++;
		return;
	}
	if (r->o.since && t < r->o.since) {
		r->old++;
		return;
	}
	if (r->o.until && t >= r->o.until) {
		r->later++;
		return;
	}
	r->ours++;
	if (r->first == 0 || t < r->first)
		r->first = t;
	if (t > r->last)
		r->last = t;
	if (STARTS(msg, end, "ref=")) {
		const char *v;

		if (summary(r, t, msg, end) == 0)
			return;
		/* "ref=R clamav: virus NAME" (lib/checks/clamav.c) */
		v = memchr(msg, ' ', (size_t)(end - msg));
		if (v && STARTS(v, end, " clamav: virus ") && v + 15 < end) {
			tk_add(&r->viruses, v + 15, (size_t)(end - v - 15), NULL, 0);
			return;
		}
		r->other++;
	} else if (STARTS(msg, end, "greylist: pass ref=")) {
		grey_pass(r, msg, end);
	} else if (STARTS(msg, end, "client=") && (p = FIND(msg, end, " verdict=none held="))) {
		const char *s = p + 19, *e = s;

		while (e < end && sym_char(*e) && e - s < SYM_MAX)
			e++;
		tk_add(&r->held, s, (size_t)(e - s), NULL, 0);
	} else if (STARTS(msg, end, "warning: ")) {
		r->warnings++;
		problem(r, msg, end);
	} else if (STARTS(msg, end, "error: ")) {
		r->errors++;
		problem(r, msg, end);
	} else {
		r->other++;
	}
}

int report_read_fd(struct report *r, int fd)
{
	size_t cap = 1 << 20, have = 0;
	char *buf = xmalloc(cap);
	int skipping = 0;

	for (;;) {
		ssize_t got = read(fd, buf + have, cap - have);
		char *p, *nl, *end;

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			int e = errno;

			free(buf);
			errno = e;
			return -1;
		}
		if (got == 0)
			break;
		have += (size_t)got;
		end = buf + have;
		for (p = buf; (nl = memchr(p, '\n', (size_t)(end - p))) != NULL; p = nl + 1) {
			if (skipping)
				skipping = 0; /* the end of a long line */
			else
				report_line(r, p, (size_t)(nl - p));
		}
		have = (size_t)(end - p);
		if (have > REPORT_LINE_MAX) {
			/* A line too long: counted once, its bytes dropped. */
			if (!skipping)
				report_long_line(r);
			skipping = 1;
			have = 0;
		} else {
			memmove(buf, p, have);
		}
	}
	if (have > 0 && !skipping)
		report_line(r, buf, have);
	free(buf);
	return 0;
}

/* --- output ----------------------------------------------------------------- */

static const char *show_time(time_t t, char *buf, size_t size)
{
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm);
	return buf;
}

static double pct(unsigned long long n, unsigned long long of)
{
	return of ? 100.0 * (double)n / (double)of : 0;
}

static void print_top(const struct topk *t, FILE *fp, const char *title, int top)
{
	const struct tk_entry **v;
	unsigned long long maxerr = 0;
	int n;

	if (t->n == 0)
		return;
	v = xmalloc(sizeof(*v) * (size_t)t->n);
	for (int i = 0; i < t->n; i++)
		v[i] = &t->e[i];
	qsort(v, (size_t)t->n, sizeof(*v), by_count);
	n = t->n < top ? t->n : top;
	fprintf(fp, "\n%s\n", title);
	for (int i = 0; i < n; i++) {
		fprintf(fp, "  %10llu  %s", v[i]->count, v[i]->key);
		if (v[i]->note[0] && strcmp(v[i]->note, "unknown") != 0)
			fprintf(fp, " (%s)", v[i]->note);
		if (v[i]->err)
			fprintf(fp, " [at least %llu]", v[i]->count - v[i]->err);
		fputc('\n', fp);
		if (v[i]->err > maxerr)
			maxerr = v[i]->err;
	}
	if (t->overflowed)
		fprintf(
		    fp,
		    "  (approximate: more than %d distinct values; a count above may be over by "
		    "at most %llu; --keep keeps more)\n",
		    t->cap, maxerr);
	free(v);
}

static int kind_cmp(const void *a, const void *b)
{
	const struct kind *x = *(const struct kind *const *)a;
	const struct kind *y = *(const struct kind *const *)b;
	unsigned long long nx = x->n[0] + x->n[1], ny = y->n[0] + y->n[1];
	size_t cx = strcspn(x->sym, "."), cy = strcspn(y->sym, ".");
	int c = strncmp(x->sym, y->sym, cx < cy ? cx : cy);

	/* grouped by check (the part before the first dot), then by count */
	if (c == 0 && cx != cy)
		c = cx < cy ? -1 : 1;
	if (c != 0)
		return c;
	if (nx != ny)
		return nx > ny ? -1 : 1;
	return strcmp(x->sym, y->sym);
}

static void print_kinds(const struct report *r, FILE *fp)
{
	const struct kind **v = xmalloc(sizeof(*v) * (KINDS_MAX + 1));
	int n = 0;
	char when[32];

	for (int i = 0; i <= KINDS_MAX; i++)
		if (i < r->nkinds || (i == KINDS_MAX && r->kinds[i].n[0] + r->kinds[i].n[1]))
			v[n++] = &r->kinds[i];
	qsort(v, (size_t)n, sizeof(*v), kind_cmp);
	fprintf(fp, "\n%-36s %10s %10s\n", "Refusals by check", "reject", "defer");
	for (int i = 0; i < n;) {
		size_t c = strcspn(v[i]->sym, ".");
		unsigned long long rej = 0, def = 0;
		int j;

		for (j = i;
		     j < n && strcspn(v[j]->sym, ".") == c && !strncmp(v[j]->sym, v[i]->sym, c);
		     j++) {
			rej += v[j]->n[0];
			def += v[j]->n[1];
		}
		fprintf(fp, "  %-34.*s %10llu %10llu\n", (int)c, v[i]->sym, rej, def);
		for (; i < j; i++)
			if (strlen(v[i]->sym) != c || j - i > 1 || v[i]->sym[c])
				fprintf(fp, "    %-32s %10llu %10llu\n", v[i]->sym, v[i]->n[0],
				        v[i]->n[1]);
	}
	fprintf(fp, "\nLast refusals by kind (portcullisctl explain REF; whitelist add --from-ref "
	            "REF)\n");
	for (int i = 0; i < n; i++) {
		const struct kind *k = v[i];

		fprintf(fp, "  %s\n", k->sym);
		for (int m = 0; m < k->nlast; m++) {
			/* newest first */
			const struct lastref *l =
			    &k->last[(k->next - 1 - m + 2 * r->o.last) % r->o.last];

			fprintf(fp, "    %s  ref=%s  client=%s from=<%s>",
			        show_time(l->t, when, sizeof(when)), l->ref, l->client, l->from);
			if (l->rcpt[0])
				fprintf(fp, " to=<%s>", l->rcpt);
			fputc('\n', fp);
		}
	}
	free(v);
}

static int by_date(const void *a, const void *b)
{
	int x = ((const struct day_count *)a)->date, y = ((const struct day_count *)b)->date;

	return x < y ? -1 : x > y;
}

/* Transactions per date (when there are several) and per hour of the day,
 * like pflogsumm's traffic summaries. */
static void print_times(const struct report *r, FILE *fp)
{
	static const char *const head = "%-36s %10s %10s %10s %10s\n";
	static const char *const row = "  %-34s %10llu %10llu %10llu %10llu\n";
	char label[32];

	if (report_txns(r, NULL) == 0)
		return;
	if (r->ndays > 1) {
		struct day_count *d = xmalloc(sizeof(*d) * (size_t)r->ndays);

		memcpy(d, r->days, sizeof(*d) * (size_t)r->ndays);
		qsort(d, (size_t)r->ndays, sizeof(*d), by_date);
		fprintf(fp, "\n");
		fprintf(fp, head, "Per day", "accept", "reject", "defer", "other");
		for (int i = 0; i < r->ndays; i++) {
			snprintf(label, sizeof(label), "%04d-%02d-%02d", d[i].date / 10000 % 10000,
			         d[i].date / 100 % 100, d[i].date % 100);
			fprintf(fp, row, label, d[i].n[V_ACCEPT], d[i].n[V_REJECT], d[i].n[V_DEFER],
			        d[i].n[V_ABORTED] + d[i].n[V_NONE]);
		}
		free(d);
		if (r->days_dropped)
			fprintf(fp, "  (%llu transactions after the first %d dates not listed)\n",
			        r->days_dropped, DAYS_MAX);
	}
	fprintf(fp, "\n");
	fprintf(fp, head, r->ndays > 1 ? "Per hour (all days)" : "Per hour", "accept", "reject",
	        "defer", "other");
	for (int h = 0; h < 24; h++) {
		const unsigned long long *n = r->hour[h];

		if (n[V_ACCEPT] + n[V_REJECT] + n[V_DEFER] + n[V_ABORTED] + n[V_NONE] == 0)
			continue;
		snprintf(label, sizeof(label), "%02d:00-%02d:00", h, (h + 1) % 24);
		fprintf(fp, row, label, n[V_ACCEPT], n[V_REJECT], n[V_DEFER],
		        n[V_ABORTED] + n[V_NONE]);
	}
}

static void print_grey(const struct report *r, FILE *fp)
{
	static const char *const label[GREY_BUCKETS] = {
		"<= 1 min", "<= 2 min", "<= 5 min", "<= 10 min", "<= 15 min", "<= 30 min", "<= 1 h",
		"<= 2 h",   "<= 4 h",   "<= 8 h",   "<= 12 h",   "<= 1 day",  "<= 2 days", "more",
	};
	unsigned long long deferred = 0;

	/* greylist.new and .early; not greylist.error (the store failed) */
	for (int i = 0; i < r->nkinds; i++)
		if (strncmp(r->kinds[i].sym, "greylist.", 9) == 0 &&
		    strcmp(r->kinds[i].sym, "greylist.error") != 0)
			deferred += r->kinds[i].n[0] + r->kinds[i].n[1];
	if (deferred == 0 && r->grey_n == 0)
		return;
	fprintf(fp, "\nGreylisting\n");
	fprintf(fp, "  %-34s %10llu\n", "deferred recipients", deferred);
	fprintf(fp, "  %-34s %10llu\n", "passed after a delay", r->grey_n);
	if (r->grey_n == 0)
		return;
	fprintf(fp, "  delay min %lld s, mean %.0f s, max %lld s\n", r->grey_min,
	        (double)r->grey_sum / (double)r->grey_n, r->grey_max);
	for (size_t b = 0; b < GREY_BUCKETS; b++)
		if (r->grey[b])
			fprintf(fp, "    %-32s %10llu %5.1f%%\n", label[b], r->grey[b],
			        pct(r->grey[b], r->grey_n));
}

void report_print(const struct report *r, FILE *fp, const char *title)
{
	unsigned long long total = 0;
	char a[32], b[32];

	for (int i = 0; i < V_COUNT; i++)
		total += r->txn[i];
	fprintf(fp, "portcullis report: %s\n", title);
	if (r->first)
		fprintf(fp, "period: %s to %s\n", show_time(r->first, a, sizeof(a)),
		        show_time(r->last, b, sizeof(b)));
	if (r->o.since)
		fprintf(fp, "since: %s (%llu earlier lines skipped)\n",
		        show_time(r->o.since, a, sizeof(a)), r->old);
	if (r->o.until)
		fprintf(fp, "until: %s (%llu later lines skipped)\n",
		        show_time(r->o.until, a, sizeof(a)), r->later);
	fprintf(fp, "lines: %llu read, %llu from portcullis, %llu not understood, %llu too long\n",
	        r->lines, r->ours, r->broken, r->long_lines);
	fprintf(fp, "\n%-36s %10llu\n", "Transactions", total);
	for (int i = 0; i < V_COUNT; i++)
		fprintf(fp, "  %-34s %10llu %5.1f%%\n", verdicts[i], r->txn[i],
		        pct(r->txn[i], total));
	fprintf(fp, "%-36s %10llu\n", "Recipients accepted", r->rcpt_ok);
	fprintf(fp, "%-36s %10llu  (reject %llu, defer %llu", "Recipients refused",
	        r->rcpt_refused[0] + r->rcpt_refused[1] + r->rcpt_unlisted, r->rcpt_refused[0],
	        r->rcpt_refused[1]);
	if (r->rcpt_unlisted)
		fprintf(fp, ", not listed %llu", r->rcpt_unlisted);
	fprintf(fp, ")\n");
	fprintf(fp, "%-36s %10llu  (reject %llu, defer %llu)\n", "Refusals",
	        r->refusals[0] + r->refusals[1], r->refusals[0], r->refusals[1]);
	print_times(r, fp);
	if (r->refusals[0] + r->refusals[1])
		print_kinds(r, fp);
	print_grey(r, fp);
	print_top(&r->clients, fp, "Top refused clients", r->o.top);
	print_top(&r->domains, fp, "Top refused sender domains", r->o.top);
	print_top(&r->rcpts, fp, "Top refused recipients", r->o.top);
	print_top(&r->viruses, fp, "Top viruses", r->o.top);
	print_top(&r->held, fp, "Disconnected before MAIL with a refusal pending", r->o.top);
	fprintf(fp, "\n%-36s %10llu\n%-36s %10llu\n%-36s %10llu\n", "Warnings", r->warnings,
	        "Errors", r->errors, "Other lines", r->other);
	print_top(&r->problems, fp, "Top warnings and errors", r->o.top);
}

/* --- figures for tests ---------------------------------------------------------- */

unsigned long long report_txns(const struct report *r, const char *v)
{
	unsigned long long n = 0;

	for (int i = 0; i < V_COUNT; i++)
		if (v == NULL || strcmp(v, verdicts[i]) == 0)
			n += r->txn[i];
	return n;
}

unsigned long long report_refusals(const struct report *r, const char *sym)
{
	if (sym == NULL)
		return r->refusals[0] + r->refusals[1];
	for (int i = 0; i <= KINDS_MAX; i++)
		if (strcmp(r->kinds[i].sym, sym) == 0)
			return r->kinds[i].n[0] + r->kinds[i].n[1];
	return 0;
}

unsigned long long report_broken(const struct report *r)
{
	return r->broken;
}

unsigned long long report_grey_passes(const struct report *r)
{
	return r->grey_n;
}
