/* lib/store/dump.c - the text form of store records (see dump.h) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dump.h"
#include "encode.h"
#include "grey.h"
#include "refs.h"
#include "util.h"
#include "wlist.h"

#define LINE_MAX_FIELDS 128

char *dump_time(time_t t, char *dst, size_t dstsize)
{
	struct tm tm;

	if (t == 0 || gmtime_r(&t, &tm) == NULL) {
		bcopy_str(dst, dstsize, "never");
		return dst;
	}
	strftime(dst, dstsize, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return dst;
}

int dump_time_parse(const char *s, time_t *t)
{
	struct tm tm;
	const char *end;
	char *e;
	long long v;

	if (strcmp(s, "never") == 0) {
		*t = 0;
		return 0;
	}
	if (s[0] >= '0' && s[0] <= '9' && strchr(s, '-') == NULL) {
		v = strtoll(s, &e, 10);
		if (*e != '\0' || v < 0)
			return -1;
		*t = (time_t)v;
		return 0;
	}
	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (end == NULL || *end != '\0')
		return -1;
	*t = timegm(&tm);
	return *t == (time_t)-1 ? -1 : 0;
}

/* Escape n bytes of s to fp (see dump.h). */
static void put_esc(FILE *fp, const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = s[i];
		switch (c) {
		case '\\': fputs("\\\\", fp); break;
		case '\t': fputs("\\t", fp); break;
		case '\n': fputs("\\n", fp); break;
		case '\r': fputs("\\r", fp); break;
		default:
			if (c < 0x20 || c >= 0x7f)
				fprintf(fp, "\\x%02x", c);
			else
				fputc(c, fp);
		}
	}
}

static void put_str(FILE *fp, const char *s)
{
	put_esc(fp, (const unsigned char *)s, strlen(s));
}

/* Undo put_esc in place; *n gets the length.  -1 on a bad escape. */
static int unesc(char *s, size_t *n)
{
	char *w = s;

	for (const char *r = s; *r; r++) {
		if (*r != '\\') {
			*w++ = *r;
			continue;
		}
		switch (*++r) {
		case '\\': *w++ = '\\'; break;
		case 't': *w++ = '\t'; break;
		case 'n': *w++ = '\n'; break;
		case 'r': *w++ = '\r'; break;
		case 'x': {
			char hex[3] = { 0 };
			char *e;
			if (r[1] == '\0' || r[2] == '\0')
				return -1;
			hex[0] = r[1];
			hex[1] = r[2];
			*w++ = (char)strtol(hex, &e, 16);
			if (*e != '\0')
				return -1;
			r += 2;
			break;
		}
		default: return -1;
		}
	}
	*n = (size_t)(w - s);
	*w = '\0';
	return 0;
}

static void put_flags(FILE *fp, unsigned flags)
{
	const char *sep = "";

	if (flags == 0) {
		fputs("-", fp);
		return;
	}
	if (flags & GREY_PASSED) {
		fputs("passed", fp);
		sep = ",";
	}
	if (flags & GREY_NOGREY) {
		fprintf(fp, "%snogrey", sep);
		sep = ",";
	}
	if (flags & ~(unsigned)(GREY_PASSED | GREY_NOGREY))
		fprintf(fp, "%s0x%x", sep, flags & ~(unsigned)(GREY_PASSED | GREY_NOGREY));
}

int dump_write(FILE *fp, const char *ns, const void *key, size_t keylen, const void *val,
               size_t vallen, time_t expires, char *err, size_t errsize)
{
	char t1[32], t2[32];
	struct grey_rec g;
	struct awl_rec a;
	struct wl_entry w;

	/* decode first: nothing is written for a record that does not */
	if (strcmp(ns, GREY_NS) == 0 && grey_rec_decode(val, vallen, &g) < 0) {
		snprintf(err, errsize, "greylist record of %zu bytes, not %d", vallen,
		         GREY_REC_SIZE);
		return -1;
	}
	if (strcmp(ns, AWL_NS) == 0 && awl_rec_decode(val, vallen, &a) < 0) {
		snprintf(err, errsize, "awl record of %zu bytes, not %d", vallen, AWL_REC_SIZE);
		return -1;
	}
	if (strcmp(ns, WLIST_NS) == 0 && wlist_decode(key, keylen, val, vallen, expires, &w) < 0) {
		snprintf(err, errsize, "not a whitelist entry");
		return -1;
	}
	put_str(fp, ns);
	fputc('\t', fp);
	put_esc(fp, key, keylen);
	fprintf(fp, "\t%s", dump_time(expires, t1, sizeof(t1)));
	if (strcmp(ns, GREY_NS) == 0) {
		fputs("\tflags=", fp);
		put_flags(fp, g.flags);
		fprintf(fp, "\tpasses=%u\tdefers=%u\tfirst=%s\tlast=%s", (unsigned)g.passes,
		        (unsigned)g.defers, dump_time((time_t)g.first, t1, sizeof(t1)),
		        dump_time((time_t)g.last, t2, sizeof(t2)));
	} else if (strcmp(ns, AWL_NS) == 0) {
		fprintf(fp, "\tpasses=%u\tfirst=%s\tlast=%s", (unsigned)a.passes,
		        dump_time((time_t)a.first, t1, sizeof(t1)),
		        dump_time((time_t)a.last, t2, sizeof(t2)));
	} else if (strcmp(ns, WLIST_NS) == 0) {
		fprintf(fp, "\tcreated=%s\tby=", dump_time(w.created, t1, sizeof(t1)));
		put_str(fp, w.by);
		fputs("\tcomment=", fp);
		put_str(fp, w.comment);
	} else if (strcmp(ns, REFS_NS) == 0 && memchr(val, '\0', vallen) == NULL) {
		const unsigned char *p = val, *end = p + vallen;
		while (p < end) {
			const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
			size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
			fputc('\t', fp);
			put_esc(fp, p, n);
			p += n + (nl != NULL);
		}
	} else {
		fputs("\tdata=", fp);
		put_esc(fp, val, vallen);
	}
	fputc('\n', fp);
	return 0;
}

void dump_rec_free(struct dump_rec *r)
{
	free(r->key);
	free(r->val);
	r->key = r->val = NULL;
}

/* The value of field "name=" among fields, NULL if absent. */
static const char *field(char **fields, int n, const char *name)
{
	size_t len = strlen(name);

	for (int i = 0; i < n; i++)
		if (strncmp(fields[i], name, len) == 0 && fields[i][len] == '=')
			return fields[i] + len + 1;
	return NULL;
}

static int num_field(char **f, int n, const char *name, uint32_t *v, char *err, size_t errsize)
{
	const char *s = field(f, n, name);
	char *e;
	unsigned long x;

	if (s == NULL || s[0] < '0' || s[0] > '9') {
		snprintf(err, errsize, "%s=NUMBER missing", name);
		return -1;
	}
	x = strtoul(s, &e, 10);
	if (*e != '\0' || x > 0xffffffffUL) {
		char shown[100];
		snprintf(err, errsize, "%s=%s: not a number", name,
		         enc_log(shown, sizeof(shown), s, 40));
		return -1;
	}
	*v = (uint32_t)x;
	return 0;
}

static int time_field(char **f, int n, const char *name, int64_t *v, char *err, size_t errsize)
{
	const char *s = field(f, n, name);
	time_t t;

	if (s == NULL || dump_time_parse(s, &t) < 0) {
		snprintf(err, errsize, "%s=TIME missing or not a time", name);
		return -1;
	}
	*v = (int64_t)t;
	return 0;
}

static int parse_flags(const char *s, unsigned *flags)
{
	char buf[64], *tok, *save = NULL;

	*flags = 0;
	if (s == NULL || bcopy_str(buf, sizeof(buf), s) >= sizeof(buf))
		return -1;
	if (strcmp(buf, "-") == 0)
		return 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (strcmp(tok, "passed") == 0)
			*flags |= GREY_PASSED;
		else if (strcmp(tok, "nogrey") == 0)
			*flags |= GREY_NOGREY;
		else if (strncmp(tok, "0x", 2) == 0 && tok[2])
			*flags |= (unsigned)strtoul(tok + 2, NULL, 16);
		else
			return -1;
	}
	return 0;
}

static int parse_value(struct dump_rec *r, char **f, int n, char *err, size_t errsize)
{
	if (strcmp(r->ns, GREY_NS) == 0) {
		struct grey_rec g = { 0 };
		char copy[GREY_KEY_MAX + 1];
		const char *a, *b, *c;
		if (r->keylen > GREY_KEY_MAX || memchr(r->key, '\0', r->keylen) != NULL) {
			snprintf(err, errsize, "greylist key too long or with a NUL");
			return -1;
		}
		memcpy(copy, r->key, r->keylen);
		copy[r->keylen] = '\0';
		if (grey_key_split(copy, &a, &b, &c) < 0) {
			snprintf(err, errsize, "greylist key is not \"NET SENDER RCPT\"");
			return -1;
		}
		if (parse_flags(field(f, n, "flags"), &g.flags) < 0) {
			snprintf(err, errsize, "flags= missing or not passed,nogrey or -");
			return -1;
		}
		if (num_field(f, n, "passes", &g.passes, err, errsize) < 0 ||
		    num_field(f, n, "defers", &g.defers, err, errsize) < 0 ||
		    time_field(f, n, "first", &g.first, err, errsize) < 0 ||
		    time_field(f, n, "last", &g.last, err, errsize) < 0)
			return -1;
		r->val = xmalloc(GREY_REC_SIZE);
		grey_rec_encode(&g, r->val);
		r->vallen = GREY_REC_SIZE;
	} else if (strcmp(r->ns, AWL_NS) == 0) {
		struct awl_rec a = { 0 };
		if (num_field(f, n, "passes", &a.passes, err, errsize) < 0 ||
		    time_field(f, n, "first", &a.first, err, errsize) < 0 ||
		    time_field(f, n, "last", &a.last, err, errsize) < 0)
			return -1;
		r->val = xmalloc(AWL_REC_SIZE);
		awl_rec_encode(&a, r->val);
		r->vallen = AWL_REC_SIZE;
	} else if (strcmp(r->ns, WLIST_NS) == 0) {
		struct wl_entry e = { 0 };
		char k[WLIST_KEY_MAX + 1], canon[WLIST_VALUE_MAX + 1], why[200], *colon;
		const char *by = field(f, n, "by"), *comment = field(f, n, "comment");
		int64_t created;
		int kind;
		if (r->keylen > WLIST_KEY_MAX || memchr(r->key, '\0', r->keylen) != NULL) {
			snprintf(err, errsize, "whitelist key too long or with a NUL");
			return -1;
		}
		memcpy(k, r->key, r->keylen);
		k[r->keylen] = '\0';
		if ((colon = strchr(k, ':')) == NULL ||
		    (*colon = '\0', kind = wlist_kind_parse(k)) < 0) {
			snprintf(err, errsize, "whitelist key is not KIND:VALUE with a known kind");
			return -1;
		}
		if (wlist_normalise((enum wl_kind)kind, colon + 1, canon, sizeof(canon), why,
		                    sizeof(why)) < 0) {
			snprintf(err, errsize, "whitelist %s: %s", k, why);
			return -1;
		}
		if (strcmp(canon, colon + 1) != 0) {
			snprintf(err, errsize,
			         "whitelist %s value '%.100s' is not canonical (%.100s)", k,
			         colon + 1, canon);
			return -1;
		}
		if (time_field(f, n, "created", &created, err, errsize) < 0)
			return -1;
		if (by == NULL || comment == NULL) {
			snprintf(err, errsize, "whitelist entry needs by= and comment=");
			return -1;
		}
		e.kind = (enum wl_kind)kind;
		bcopy_str(e.value, sizeof(e.value), canon);
		e.created = (time_t)created;
		bcopy_str(e.by, sizeof(e.by), by);
		bcopy_str(e.comment, sizeof(e.comment), comment);
		r->val = xmalloc(2048 + 4 * WLIST_COMMENT_MAX);
		r->vallen = wlist_encode(&e, (char *)r->val, 2048 + 4 * WLIST_COMMENT_MAX);
	} else if (strcmp(r->ns, REFS_NS) == 0) {
		size_t size = REFS_VALUE_MAX, len = 0;
		r->val = xmalloc(size + 1);
		for (int i = 0; i < n; i++) {
			size_t l = strlen(f[i]);
			if (strchr(f[i], '=') == NULL || strchr(f[i], '\n') != NULL) {
				snprintf(err, errsize, "refs field %d is not name=value", i + 1);
				return -1;
			}
			if (len + l + 1 > size) {
				snprintf(err, errsize, "refs record longer than %d bytes",
				         REFS_VALUE_MAX);
				return -1;
			}
			memcpy(r->val + len, f[i], l);
			len += l;
			r->val[len++] = '\n';
		}
		r->vallen = len;
	} else {
		const char *d = field(f, n, "data");
		if (d == NULL || n != 1) {
			snprintf(err, errsize, "namespace %s: one field data=BYTES expected",
			         r->ns);
			return -1;
		}
		(void)d; /* dump_parse took it */
	}
	return 0;
}

static int ns_ok(const char *ns)
{
	if (ns[0] == '\0' || strlen(ns) > 32 || ns[0] == '-')
		return 0;
	for (const char *p = ns; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' ||
		      *p == '-'))
			return 0;
	return 1;
}

int dump_parse(char *line, struct dump_rec *r, char *err, size_t errsize)
{
	char *f[LINE_MAX_FIELDS + 3], *p, shown[100];
	int n = 0, other;
	size_t len;

	memset(r, 0, sizeof(*r));
	len = strlen(line);
	if (len > 0 && line[len - 1] == '\r')
		line[--len] = '\0';
	if (line[0] == '#' || line[0] == '\0')
		return 1;
	/* strtok_r would merge empty fields: split by hand */
	for (p = line;; p++) {
		if (n == LINE_MAX_FIELDS + 3) {
			snprintf(err, errsize, "more than %d fields", LINE_MAX_FIELDS);
			return -1;
		}
		f[n++] = p;
		if ((p = strchr(p, '\t')) == NULL)
			break;
		*p = '\0';
	}
	if (n < 4) {
		snprintf(err, errsize, "%d fields, want NAMESPACE KEY EXPIRES FIELD...", n);
		return -1;
	}
	if (!ns_ok(f[0])) {
		snprintf(err, errsize, "bad namespace name '%s'",
		         enc_log(shown, sizeof(shown), f[0], 40));
		return -1;
	}
	bcopy_str(r->ns, sizeof(r->ns), f[0]);
	if (unesc(f[1], &len) < 0 || len == 0) {
		snprintf(err, errsize, "empty key or bad \\ escape in the key");
		return -1;
	}
	r->key = xmalloc(len + 1);
	memcpy(r->key, f[1], len + 1);
	r->keylen = len;
	if (dump_time_parse(f[2], &r->expires) < 0) {
		snprintf(err, errsize, "expiry '%s' is not never, a UTC time or seconds",
		         enc_log(shown, sizeof(shown), f[2], 40));
		goto fail;
	}
	other = strcmp(r->ns, GREY_NS) && strcmp(r->ns, AWL_NS) && strcmp(r->ns, WLIST_NS) &&
	        strcmp(r->ns, REFS_NS);
	for (int i = 3; i < n; i++) {
		if (unesc(f[i], &len) < 0) {
			snprintf(err, errsize, "bad \\ escape in field %d", i - 2);
			goto fail;
		}
		/* data= of another namespace is bytes: it may hold NULs */
		if (other && n == 4 && strncmp(f[3], "data=", 5) == 0) {
			r->vallen = len - 5;
			r->val = xmalloc(r->vallen + 1);
			memcpy(r->val, f[3] + 5, r->vallen);
			return 0;
		}
		if (strlen(f[i]) != len) {
			snprintf(err, errsize, "NUL byte in field %d", i - 2);
			goto fail;
		}
	}
	if (parse_value(r, f + 3, n - 3, err, errsize) < 0)
		goto fail;
	return 0;
fail:
	dump_rec_free(r);
	return -1;
}
