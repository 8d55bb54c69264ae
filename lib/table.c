/* lib/table.c - Postfix-style access tables: cidr:, pcre:, texthash:
 *
 * Contract: see table.h.  table_open() reads the whole file once and builds
 * an immutable table; lookups never allocate from shared state, so a table
 * may be used by any number of threads at once.  table_open() returns NULL
 * with "FILE:LINE: reason" (or "spec: reason") in err; lookups never fail
 * hard: a regex that hits its match limit is logged and skipped.
 *
 * File syntax (all types):
 *   - a line whose first non-blank character is '#', and a blank line, are
 *     ignored (also between a line and its continuation);
 *   - a line that starts with white space continues the previous line; the
 *     two are joined with one space;
 *   - a physical or joined logical line longer than TABLE_LINE_MAX bytes,
 *     and a NUL byte, are errors; a CR before the LF is dropped;
 *   - errors name the physical line for reading errors and the first line
 *     of the logical line for syntax errors.
 * Types:
 *   cidr:      NETWORK[/LEN] ACTION.  IPv4 or IPv6, optionally in [];
 *              host bits below LEN must be zero (as in Postfix).
 *   pcre:      [!]/regex/flags ACTION.  Any punctuation character may be
 *              the delimiter; a backslash escapes it.  Case-insensitive
 *              unless the flag i is given; flags m, s, x, A, U as in
 *              pcre_table(5); E is accepted and is a no-op, because '$'
 *              never matches before a trailing newline here (unlike
 *              Postfix), so a hostile "name\n" cannot match /^name$/.
 *              No $1 substitution in the text.  Each match is bounded by
 *              TABLE_MATCH_LIMIT and TABLE_HEAP_LIMIT_KIB; a match that
 *              hits a limit counts as neither match nor non-match.
 *   texthash:  KEY ACTION.  Exact, ASCII case-insensitive; for duplicate
 *              keys the first wins and later ones are logged.
 * A matching DUNNO entry is a match (lookup returns 1): it stops the search
 * of the table and of a maplist, which is how exceptions are written.
 *
 * See also: Postfix cidr_table(5), pcre_table(5), access(5).
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include "table.h"
#include "log.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>

#define TABLE_LINE_MAX       4096
#define TABLE_MATCH_LIMIT    100000
#define TABLE_HEAP_LIMIT_KIB 4096
#define TABLE_SCORE_MAX      1000.0

struct entry {
	enum table_action action;
	double score;
	char *text;
	int line;
	union {
		struct {
			struct ipaddr net;
			int len;
		} cidr;
		struct {
			pcre2_code *re;
			int negate;
		} pcre;
		struct {
			char *key;
			uint32_t hash;
		} hash;
	} u;
};

struct table_type;

struct table {
	const struct table_type *type;
	char *spec;
	char *file;
	struct entry *v;
	int n, cap;
	/* texthash: open addressing, slot = entry index + 1, 0 = empty */
	int *slot;
	size_t nslot;
	/* pcre: read-only after open, shared by all lookups */
	pcre2_general_context *gctx;
	pcre2_compile_context *cctx;
	pcre2_match_context *mctx;
};

/* One row per table type; the only place that knows the type names. */
struct table_type {
	const char *name;
	int (*init)(struct table *t, char *why, size_t whysize);
	/* Parse one logical line (trimmed, non-empty) into *e. */
	int (*parse)(struct table *t, char *line, struct entry *e, char *why, size_t whysize);
	void (*finish)(struct table *t);
	void (*free_entry)(struct entry *e);
	int (*lookup_ip)(const struct table *t, const struct ipaddr *ip);
	int (*lookup_str)(const struct table *t, const char *key);
};

/* Bounded error text; err may be NULL. */
static void seterr(char *err, size_t errsize, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errsize, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errsize == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errsize, fmt, ap);
	va_end(ap);
}

static int is_ws(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

static int ascii_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* Locale-independent case-insensitive compare, 0 if equal. */
static int ascii_casecmp(const char *a, const char *b)
{
	for (; *a && ascii_lower((unsigned char)*a) == ascii_lower((unsigned char)*b); a++, b++)
		;
	return ascii_lower((unsigned char)*a) - ascii_lower((unsigned char)*b);
}

static char *skip_ws(char *s)
{
	while (is_ws((unsigned char)*s))
		s++;
	return s;
}

/* Cut the first white-space separated word off *s; returns it and leaves
 * *s at the start of the next word (or at the terminating NUL). */
static char *next_word(char **s)
{
	char *w = skip_ws(*s), *p = w;

	while (*p && !is_ws((unsigned char)*p))
		p++;
	if (*p)
		*p++ = '\0';
	*s = skip_ws(p);
	return w;
}

/* ---- actions ---- */

/* Parse an ACTION column; see table.h. */
int table_parse_action(const char *s, enum table_action *act, double *score, const char **text,
                       char *err, size_t errsize)
{
	static const struct {
		const char *name;
		enum table_action act;
		int has_text;
	} actions[] = {
		{ "OK", TA_OK, 0 },       { "DUNNO", TA_DUNNO, 0 }, { "REJECT", TA_REJECT, 1 },
		{ "DEFER", TA_DEFER, 1 }, { "SCORE", TA_SCORE, 1 },
	};
	const char *w, *p, *rest;
	size_t wlen, i;

	*act = TA_DUNNO;
	*score = 0;
	*text = NULL;
	for (w = s; is_ws((unsigned char)*w); w++)
		;
	for (p = w; *p && !is_ws((unsigned char)*p); p++)
		;
	wlen = (size_t)(p - w);
	if (wlen == 0) {
		seterr(err, errsize, "missing action");
		return -1;
	}
	for (rest = p; is_ws((unsigned char)*rest); rest++)
		;
	for (i = 0; i < ARRAY_SIZE(actions); i++)
		if (strlen(actions[i].name) == wlen && strncasecmp(w, actions[i].name, wlen) == 0)
			break;
	if (i == ARRAY_SIZE(actions)) {
		seterr(err, errsize,
		       "unknown action '%.*s' (expected OK, DUNNO, REJECT, DEFER or SCORE)",
		       wlen > 64 ? 64 : (int)wlen, w);
		return -1;
	}
	if (!actions[i].has_text && *rest) {
		seterr(err, errsize, "%s takes no text", actions[i].name);
		return -1;
	}
	if (actions[i].act == TA_SCORE) {
		char num[64], *end;
		size_t nlen;
		double d;

		for (p = rest; *p && !is_ws((unsigned char)*p); p++)
			;
		nlen = (size_t)(p - rest);
		if (nlen == 0) {
			seterr(err, errsize, "SCORE needs a number");
			return -1;
		}
		if (nlen >= sizeof(num)) {
			seterr(err, errsize, "SCORE needs a number, got '%.20s...'", rest);
			return -1;
		}
		memcpy(num, rest, nlen);
		num[nlen] = '\0';
		errno = 0;
		d = strtod(num, &end);
		if (end == num || *end != '\0' || errno == ERANGE || !isfinite(d)) {
			seterr(err, errsize, "SCORE needs a number, got '%s'", num);
			return -1;
		}
		if (d < -TABLE_SCORE_MAX || d > TABLE_SCORE_MAX) {
			seterr(err, errsize, "score %s out of range (-1000..1000)", num);
			return -1;
		}
		*score = d;
		for (rest = p; is_ws((unsigned char)*rest); rest++)
			;
	}
	*act = actions[i].act;
	*text = *rest ? rest : NULL;
	return 0;
}

/* Fill e's action fields from the ACTION column; the text is copied. */
static int parse_entry_action(char *s, struct entry *e, char *why, size_t whysize)
{
	const char *text;

	if (table_parse_action(s, &e->action, &e->score, &text, why, whysize) < 0)
		return -1;
	e->text = text ? xstrdup(text) : NULL;
	return 0;
}

static void fill_result(const struct table *t, const struct entry *e, struct table_result *res)
{
	res->action = e->action;
	res->score = e->score;
	res->text = e->text;
	res->file = t->file;
	res->line = e->line;
}

/* ---- cidr: ---- */

/* 1 if net has bits set below the prefix length; *masked gets net/len. */
static int host_bits_set(const struct ipaddr *net, int len, struct ipaddr *masked)
{
	int nbytes = net->family == AF_INET ? 4 : 16, i, set = 0;

	*masked = *net;
	for (i = 0; i < nbytes; i++) {
		int bits = len - i * 8;
		unsigned char mask = bits >= 8   ? 0xff
		                     : bits <= 0 ? 0
		                                 : (unsigned char)(0xff << (8 - bits));

		if (net->a[i] & ~mask)
			set = 1;
		masked->a[i] = net->a[i] & mask;
	}
	return set;
}

static int cidr_parse(struct table *t, char *line, struct entry *e, char *why, size_t whysize)
{
	char buf[128], *rest = line, *word = next_word(&rest), *net = word;
	struct ipaddr masked;

	(void)t;
	/* Postfix accepts "[2001:db8::]/32"; drop the brackets. */
	if (word[0] == '[') {
		char *close = strchr(word, ']');

		if (close == NULL || strlen(word) >= sizeof(buf)) {
			seterr(why, whysize, "bad network '%.64s'", word);
			return -1;
		}
		snprintf(buf, sizeof(buf), "%.*s%s", (int)(close - word - 1), word + 1, close + 1);
		net = buf;
	}
	if (ip_parse_cidr(net, &e->u.cidr.net, &e->u.cidr.len) < 0) {
		seterr(why, whysize, "bad network '%.64s' (expected ADDRESS or ADDRESS/LEN)", word);
		return -1;
	}
	if (host_bits_set(&e->u.cidr.net, e->u.cidr.len, &masked)) {
		char fmt[64];

		ip_format(&masked, fmt, sizeof(fmt));
		seterr(why, whysize,
		       "non-null host address bits in '%.64s', perhaps you mean %s/%d", word, fmt,
		       e->u.cidr.len);
		return -1;
	}
	return parse_entry_action(rest, e, why, whysize);
}

static int cidr_lookup_ip(const struct table *t, const struct ipaddr *ip)
{
	for (int i = 0; i < t->n; i++)
		if (ip_in_net(ip, &t->v[i].u.cidr.net, t->v[i].u.cidr.len))
			return i;
	return -1;
}

static int cidr_lookup_str(const struct table *t, const char *key)
{
	(void)t;
	(void)key;
	return -1;
}

/* ---- pcre: ---- */

/* PCRE2 allocates through xmalloc, so it never sees NULL either. */
static void *pcre_malloc(size_t n, void *data)
{
	(void)data;
	return xmalloc(n);
}

static void pcre_free(void *p, void *data)
{
	(void)data;
	free(p);
}

static int pcre_init(struct table *t, char *why, size_t whysize)
{
	t->gctx = pcre2_general_context_create(pcre_malloc, pcre_free, NULL);
	t->cctx = pcre2_compile_context_create(t->gctx);
	t->mctx = pcre2_match_context_create(t->gctx);
	if (t->gctx == NULL || t->cctx == NULL || t->mctx == NULL) {
		seterr(why, whysize, "cannot create PCRE2 contexts");
		return -1;
	}
	pcre2_set_match_limit(t->mctx, TABLE_MATCH_LIMIT);
	pcre2_set_heap_limit(t->mctx, TABLE_HEAP_LIMIT_KIB);
	return 0;
}

static int pcre_parse(struct table *t, char *line, struct entry *e, char *why, size_t whysize)
{
	uint32_t opts = PCRE2_CASELESS | PCRE2_DOLLAR_ENDONLY | PCRE2_NEVER_UTF;
	char *p = line, *pat, delim;
	PCRE2_SIZE off;
	int rc;

	if (*p == '!') {
		e->u.pcre.negate = 1;
		p++;
	}
	delim = *p;
	if (delim == '\0' || delim == '\\' || !ispunct((unsigned char)delim)) {
		if (strncasecmp(p, "if", 2) == 0 || strncasecmp(p, "endif", 5) == 0)
			seterr(why, whysize, "if/endif is not supported");
		else
			seterr(why, whysize, "expected /regex/ at '%.20s'", p);
		return -1;
	}
	pat = ++p;
	/* A backslash escapes the delimiter; it stays in the pattern, where
	 * "\/" means "/" to PCRE as well. */
	for (; *p && *p != delim; p++)
		if (*p == '\\' && p[1])
			p++;
	if (*p != delim) {
		seterr(why, whysize, "missing closing '%c' of the regex", delim);
		return -1;
	}
	*p++ = '\0';
	for (; *p && !is_ws((unsigned char)*p); p++) {
		switch (*p) {
		case 'i': opts ^= PCRE2_CASELESS; break;
		case 'm': opts |= PCRE2_MULTILINE; break;
		case 's': opts |= PCRE2_DOTALL; break;
		case 'x': opts |= PCRE2_EXTENDED; break;
		case 'A': opts |= PCRE2_ANCHORED; break;
		case 'U': opts |= PCRE2_UNGREEDY; break;
		case 'E': break;
		default:
			seterr(why, whysize,
			       "unknown regex flag '%c' (expected i, m, s, x, A, E or U)", *p);
			return -1;
		}
	}
	e->u.pcre.re =
	    pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, opts, &rc, &off, t->cctx);
	if (e->u.pcre.re == NULL) {
		PCRE2_UCHAR msg[256];

		pcre2_get_error_message(rc, msg, sizeof(msg));
		seterr(why, whysize, "regex error at offset %zu: %s", (size_t)off,
		       (const char *)msg);
		return -1;
	}
	return parse_entry_action(p, e, why, whysize);
}

static void pcre_free_entry(struct entry *e)
{
	pcre2_code_free(e->u.pcre.re);
}

static int pcre_lookup_str(const struct table *t, const char *key)
{
	pcre2_match_data *md = pcre2_match_data_create(1, t->gctx);
	size_t len = strlen(key);
	int i;

	for (i = 0; i < t->n; i++) {
		const struct entry *e = &t->v[i];
		int rc = pcre2_match(e->u.pcre.re, (PCRE2_SPTR)key, len, 0, 0, md, t->mctx);

		if (rc < 0 && rc != PCRE2_ERROR_NOMATCH) {
			PCRE2_UCHAR msg[128];

			/* Neither a match nor a non-match: skip the entry, so a
			 * hostile key cannot trigger a negated rule either. */
			pcre2_get_error_message(rc, msg, sizeof(msg));
			log_msg(LOG_LVL_WARN, "%s:%d: regex not applied: %s", t->file, e->line,
			        (const char *)msg);
			continue;
		}
		if ((rc >= 0) != e->u.pcre.negate)
			break;
	}
	pcre2_match_data_free(md);
	return i < t->n ? i : -1;
}

/* ---- texthash: ---- */

/* FNV-1a over the lower-cased key. */
static uint32_t hash_key(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++) {
		h ^= (uint32_t)ascii_lower((unsigned char)*s);
		h *= 16777619u;
	}
	return h;
}

static int hash_parse(struct table *t, char *line, struct entry *e, char *why, size_t whysize)
{
	char *rest = line, *key = next_word(&rest);

	(void)t;
	e->u.hash.key = xstrdup(key);
	e->u.hash.hash = hash_key(key);
	return parse_entry_action(rest, e, why, whysize);
}

/* Probe for key; returns the slot index holding it or the empty slot. */
static size_t hash_probe(const struct table *t, const char *key, uint32_t h)
{
	size_t mask = t->nslot - 1, i = h & mask;

	while (t->slot[i]) {
		const struct entry *e = &t->v[t->slot[i] - 1];

		if (e->u.hash.hash == h && ascii_casecmp(e->u.hash.key, key) == 0)
			break;
		i = (i + 1) & mask;
	}
	return i;
}

/* Build the index: at most half full, so probes stay short and end. */
static void hash_finish(struct table *t)
{
	t->nslot = 16;
	while (t->nslot < (size_t)t->n * 2)
		t->nslot *= 2;
	t->slot = xcalloc(t->nslot, sizeof(*t->slot));
	for (int i = 0; i < t->n; i++) {
		struct entry *e = &t->v[i];
		size_t s = hash_probe(t, e->u.hash.key, e->u.hash.hash);

		if (t->slot[s]) {
			log_msg(LOG_LVL_WARN,
			        "%s:%d: duplicate key '%.100s' ignored (first at line %d)", t->file,
			        e->line, e->u.hash.key, t->v[t->slot[s] - 1].line);
			continue;
		}
		t->slot[s] = i + 1;
	}
}

static void hash_free_entry(struct entry *e)
{
	free(e->u.hash.key);
}

static int hash_lookup_str(const struct table *t, const char *key)
{
	size_t s = hash_probe(t, key, hash_key(key));

	return t->slot[s] ? t->slot[s] - 1 : -1;
}

/* ---- common ---- */

/* texthash: and pcre: see an address as its canonical text. */
static int text_lookup_ip(const struct table *t, const struct ipaddr *ip)
{
	char buf[64];

	if (ip->family != AF_INET && ip->family != AF_INET6)
		return -1;
	ip_format(ip, buf, sizeof(buf));
	return t->type->lookup_str(t, buf);
}

static const struct table_type table_types[] = {
	{
	    .name = "cidr",
	    .parse = cidr_parse,
	    .lookup_ip = cidr_lookup_ip,
	    .lookup_str = cidr_lookup_str,
	},
	{
	    .name = "pcre",
	    .init = pcre_init,
	    .parse = pcre_parse,
	    .free_entry = pcre_free_entry,
	    .lookup_ip = text_lookup_ip,
	    .lookup_str = pcre_lookup_str,
	},
	{
	    .name = "texthash",
	    .parse = hash_parse,
	    .finish = hash_finish,
	    .free_entry = hash_free_entry,
	    .lookup_ip = text_lookup_ip,
	    .lookup_str = hash_lookup_str,
	},
};

/* Read one physical line into buf (TABLE_LINE_MAX + 2 bytes), without the
 * newline or a CR before it.  Returns the length, or -1 at end of file,
 * -2 for a line that is too long, -3 for a NUL byte, -4 for a read error. */
static int read_line(FILE *fp, char *buf)
{
	int c, n = 0;

	while ((c = getc_unlocked(fp)) != EOF && c != '\n') {
		if (c == '\0')
			return -3;
		/* One byte of slack for the CR of a CRLF line. */
		if (n > TABLE_LINE_MAX)
			return -2;
		buf[n++] = (char)c;
	}
	if (c == EOF && ferror(fp))
		return -4;
	if (c == EOF && n == 0)
		return -1;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	if (n > TABLE_LINE_MAX)
		return -2;
	buf[n] = '\0';
	return n;
}

/* Turn a logical line into the next entry; the line is trimmed. */
static int add_entry(struct table *t, char *line, int lineno, char *err, size_t errsize)
{
	char why[512];
	struct entry *e;

	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		t->v = xrealloc(t->v, (size_t)t->cap * sizeof(*t->v));
	}
	e = &t->v[t->n];
	memset(e, 0, sizeof(*e));
	e->line = lineno;
	/* Count the entry before parsing, so table_free() releases whatever
	 * a failed parse left behind. */
	t->n++;
	if (t->type->parse(t, str_trim(line), e, why, sizeof(why)) < 0) {
		seterr(err, errsize, "%s:%d: %s", t->file, lineno, why);
		return -1;
	}
	return 0;
}

/* Read the file into entries. */
static int load(struct table *t, FILE *fp, char *err, size_t errsize)
{
	char *phys = xmalloc(TABLE_LINE_MAX + 2);
	char *logical = xmalloc(TABLE_LINE_MAX + 1);
	char *cont;
	size_t llen = 0, clen;
	int lineno = 0, first = 0, n;

	while ((n = read_line(fp, phys)) != -1) {
		lineno++;
		if (n == -2) {
			seterr(err, errsize, "%s:%d: line too long (more than %d bytes)", t->file,
			       lineno, TABLE_LINE_MAX);
			goto fail;
		}
		if (n == -3) {
			seterr(err, errsize, "%s:%d: NUL byte in line", t->file, lineno);
			goto fail;
		}
		if (n == -4) {
			seterr(err, errsize, "%s:%d: %s", t->file, lineno, strerror(errno));
			goto fail;
		}
		{
			char *p = skip_ws(phys);

			if (*p == '\0' || *p == '#')
				continue;
		}
		if (is_ws((unsigned char)phys[0])) {
			if (first == 0) {
				seterr(err, errsize,
				       "%s:%d: continuation line without a line to continue",
				       t->file, lineno);
				goto fail;
			}
			/* Join with one space, so a text split over lines
			 * reads as one sentence (a TAB would reach the SMTP
			 * reply as '?'). */
			cont = skip_ws(phys);
			clen = strlen(cont);
			while (llen > 0 && is_ws((unsigned char)logical[llen - 1]))
				llen--;
			if (llen + 1 + clen > TABLE_LINE_MAX) {
				seterr(
				    err, errsize,
				    "%s:%d: line too long (more than %d bytes with continuations)",
				    t->file, lineno, TABLE_LINE_MAX);
				goto fail;
			}
			logical[llen++] = ' ';
			memcpy(logical + llen, cont, clen + 1);
			llen += clen;
			continue;
		}
		if (first && add_entry(t, logical, first, err, errsize) < 0)
			goto fail;
		memcpy(logical, phys, (size_t)n + 1);
		llen = (size_t)n;
		first = lineno;
	}
	if (first && add_entry(t, logical, first, err, errsize) < 0)
		goto fail;
	free(phys);
	free(logical);
	return 0;
fail:
	free(phys);
	free(logical);
	return -1;
}

/* Open and load a table from spec, reading text instead of the file when
 * text is not NULL; see table.h. */
static struct table *open_table(const char *spec, const char *text, char *err, size_t errsize)
{
	const char *colon = strchr(spec, ':');
	struct table *t = NULL;
	FILE *fp = NULL;
	struct stat st;
	size_t i;

	if (colon == NULL) {
		seterr(err, errsize, "%s: missing table type (expected cidr:, pcre: or texthash:)",
		       spec);
		goto fail;
	}
	for (i = 0; i < ARRAY_SIZE(table_types); i++)
		if (strlen(table_types[i].name) == (size_t)(colon - spec) &&
		    strncmp(spec, table_types[i].name, (size_t)(colon - spec)) == 0)
			break;
	if (i == ARRAY_SIZE(table_types)) {
		seterr(err, errsize,
		       "%s: unknown table type '%.*s' (expected cidr, pcre or texthash)", spec,
		       (int)(colon - spec), spec);
		goto fail;
	}
	if (colon[1] == '\0') {
		seterr(err, errsize, "%s: missing file name", spec);
		goto fail;
	}
	t = xcalloc(1, sizeof(*t));
	t->type = &table_types[i];
	t->spec = xstrdup(spec);
	t->file = xstrdup(colon + 1);
	if (t->type->init) {
		char why[256];

		if (t->type->init(t, why, sizeof(why)) < 0) {
			seterr(err, errsize, "%s: %s", spec, why);
			goto fail;
		}
	}
	fp = text ? fmemopen((void *)text, strlen(text), "r") : fopen(t->file, "re");
	if (fp == NULL) {
		seterr(err, errsize, "%s: %s", spec, strerror(errno));
		goto fail;
	}
	if (text == NULL && fstat(fileno(fp), &st) == 0 && S_ISDIR(st.st_mode)) {
		seterr(err, errsize, "%s: %s", spec, strerror(EISDIR));
		goto fail;
	}
	if (load(t, fp, err, errsize) < 0)
		goto fail;
	fclose(fp);
	if (t->type->finish)
		t->type->finish(t);
	return t;
fail:
	if (fp)
		fclose(fp);
	table_free(t);
	return NULL;
}

struct table *table_open(const char *spec, char *err, size_t errsize)
{
	return open_table(spec, NULL, err, errsize);
}

struct table *table_open_text(const char *spec, const char *text, char *err, size_t errsize)
{
	return open_table(spec, text, err, errsize);
}

/* Free a table and everything it owns; NULL is ignored. */
void table_free(struct table *t)
{
	if (t == NULL)
		return;
	for (int i = 0; i < t->n; i++) {
		if (t->type->free_entry)
			t->type->free_entry(&t->v[i]);
		free(t->v[i].text);
	}
	free(t->v);
	free(t->slot);
	pcre2_match_context_free(t->mctx);
	pcre2_compile_context_free(t->cctx);
	pcre2_general_context_free(t->gctx);
	free(t->spec);
	free(t->file);
	free(t);
}

/* The "type:path" the table was opened from. */
const char *table_spec(const struct table *t)
{
	return t->spec;
}

/* Look up an address; see table.h. */
int table_lookup_ip(const struct table *t, const struct ipaddr *ip, struct table_result *res)
{
	int i;

	if (t == NULL || ip == NULL)
		return 0;
	i = t->type->lookup_ip(t, ip);
	if (i < 0)
		return 0;
	fill_result(t, &t->v[i], res);
	return 1;
}

/* Look up a string; see table.h. */
int table_lookup_str(const struct table *t, const char *key, struct table_result *res)
{
	int i;

	if (t == NULL || key == NULL)
		return 0;
	i = t->type->lookup_str(t, key);
	if (i < 0)
		return 0;
	fill_result(t, &t->v[i], res);
	return 1;
}

/* Search the tables in order; the first that has an entry answers. */
int maplist_lookup_ip(const struct maplist *m, const struct ipaddr *ip, struct table_result *res)
{
	for (int i = 0; m != NULL && i < m->n; i++)
		if (table_lookup_ip(m->t[i], ip, res))
			return 1;
	return 0;
}

/* Search the tables in order; the first that has an entry answers. */
int maplist_lookup_str(const struct maplist *m, const char *key, struct table_result *res)
{
	for (int i = 0; m != NULL && i < m->n; i++)
		if (table_lookup_str(m->t[i], key, res))
			return 1;
	return 0;
}

/* Address lookup, as Postfix's check_sender_access: each table in turn is
 * asked for the whole address, the domain, each parent domain, then
 * "local@"; the first table with an entry decides. */
int maplist_lookup_addr(const struct maplist *m, const struct mailaddr *a, struct table_result *res)
{
	const char *keys[ADDR_DOMAIN_MAX / 2 + 3];
	char localat[ADDR_LOCAL_MAX + 2];
	int nkeys = 0;

	if (m->n == 0)
		return 0;
	if (a->flags & ADDR_NULL) {
		keys[nkeys++] = "<>";
	} else {
		keys[nkeys++] = a->full;
		for (const char *d = a->domain; *d && nkeys < (int)ARRAY_SIZE(keys) - 1;
		     d = strchr(d, '.') ? strchr(d, '.') + 1 : "")
			keys[nkeys++] = d;
		snprintf(localat, sizeof(localat), "%s@", a->local);
		keys[nkeys++] = localat;
	}
	for (int i = 0; i < m->n; i++)
		for (int k = 0; k < nkeys; k++)
			if (table_lookup_str(m->t[i], keys[k], res))
				return 1;
	return 0;
}
