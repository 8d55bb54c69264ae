/* lib/rfc5322.c - parsers for message header fields (RFC 5322, RFC 6532)
 *
 * Each parser first makes a clean copy of the value: comments and folding
 * white space outside quoted strings and domain literals become one space
 * (RFC 5322 3.2.2 CFWS), so that the grammar below sees only tokens.  The
 * copy is on the heap (a header field may be long) and freed before return.
 */
#include "rfc5322.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The value without comments, runs of white space as one ' ', no leading
 * or trailing space; quoted strings and [literals] kept with their
 * quoted-pairs.  NULL when a comment, quote or literal is not closed. */
static char *clean(const char *v)
{
	size_t n = strlen(v), o = 0, depth = 0;
	char *out = xmalloc(n + 1);
	int space = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)v[i];

		if (depth > 0) {
			if (ch == '\\' && i + 1 < n)
				i++;
			else if (ch == '(')
				depth++;
			else if (ch == ')')
				depth--;
			continue;
		}
		if (ch == '(') {
			depth = 1;
			space = 1;
			continue;
		}
		if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
			space = 1;
			continue;
		}
		if (space && o > 0)
			out[o++] = ' ';
		space = 0;
		if (ch == '"' || ch == '[') {
			unsigned char end = ch == '"' ? '"' : ']';

			out[o++] = (char)ch;
			for (i++; i < n && (unsigned char)v[i] != end; i++) {
				if (v[i] == '\\' && i + 1 < n)
					out[o++] = v[i++];
				if (v[i] == '\r' || v[i] == '\n')
					continue; /* folding inside a quoted string */
				out[o++] = v[i];
			}
			if (i >= n) {
				free(out);
				return NULL;
			}
			out[o++] = (char)end;
			continue;
		}
		out[o++] = (char)ch;
	}
	out[o] = '\0';
	if (depth > 0) {
		free(out);
		return NULL;
	}
	return out;
}

/* --- Date ----------------------------------------------------------------- */

static int digits(const char **p, int min, int max, int *val)
{
	int n = 0, v = 0;

	while (**p >= '0' && **p <= '9' && n < max) {
		v = v * 10 + (**p - '0');
		(*p)++;
		n++;
	}
	if (n < min || (**p >= '0' && **p <= '9'))
		return -1;
	*val = v;
	return 0;
}

static void skip_sp(const char **p)
{
	while (**p == ' ')
		(*p)++;
}

static const char *const months[] = { "jan", "feb", "mar", "apr", "may", "jun",
	                              "jul", "aug", "sep", "oct", "nov", "dec" };
static const char *const days[] = { "mon", "tue", "wed", "thu", "fri", "sat", "sun" };

/* Obsolete zones (RFC 5322 4.3): minutes east of UTC; military letters
 * mean "unknown", taken as -0000 (0) as the RFC says. */
static int obs_zone(const char *z, size_t len, int *off)
{
	static const struct {
		const char *name;
		int off;
	} zones[] = { { "ut", 0 },        { "gmt", 0 },       { "est", -5 * 60 },
		      { "edt", -4 * 60 }, { "cst", -6 * 60 }, { "cdt", -5 * 60 },
		      { "mst", -7 * 60 }, { "mdt", -6 * 60 }, { "pst", -8 * 60 },
		      { "pdt", -7 * 60 } };

	for (size_t i = 0; i < sizeof(zones) / sizeof(zones[0]); i++)
		if (strlen(zones[i].name) == len && strncasecmp(z, zones[i].name, len) == 0) {
			*off = zones[i].off;
			return 0;
		}
	if (len == 1 &&
	    ((*z >= 'a' && *z <= 'z' && *z != 'j') || (*z >= 'A' && *z <= 'Z' && *z != 'J'))) {
		*off = 0;
		return 0;
	}
	return -1;
}

static int is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int date_parse(const char *p, time_t *t)
{
	static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int day, mon = -1, year, hh, mm, ss = 0, off, ylen;
	const char *y0;
	struct tm tm;

	skip_sp(&p);
	/* [ day-of-week "," ] */
	for (int i = 0; i < 7; i++)
		if (strncasecmp(p, days[i], 3) == 0) {
			p += 3;
			skip_sp(&p);
			if (*p != ',')
				return -1;
			p++;
			skip_sp(&p);
			break;
		}
	if (digits(&p, 1, 2, &day) < 0)
		return -1;
	skip_sp(&p);
	for (int i = 0; i < 12; i++)
		if (strncasecmp(p, months[i], 3) == 0) {
			mon = i;
			p += 3;
			break;
		}
	if (mon < 0 || *p != ' ')
		return -1;
	skip_sp(&p);
	y0 = p;
	if (digits(&p, 2, 4, &year) < 0)
		return -1;
	ylen = (int)(p - y0);
	if (ylen == 2) /* obs-year, RFC 5322 4.3 */
		year += year < 50 ? 2000 : 1900;
	else if (ylen == 3)
		year += 1900;
	if (*p != ' ')
		return -1;
	skip_sp(&p);
	if (digits(&p, 1, 2, &hh) < 0)
		return -1;
	skip_sp(&p);
	if (*p++ != ':')
		return -1;
	skip_sp(&p);
	if (digits(&p, 2, 2, &mm) < 0)
		return -1;
	skip_sp(&p);
	if (*p == ':') {
		p++;
		skip_sp(&p);
		if (digits(&p, 2, 2, &ss) < 0)
			return -1;
	}
	skip_sp(&p);
	if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1, z;

		p++;
		if (digits(&p, 4, 4, &z) < 0 || z % 100 > 59 || z / 100 > 99)
			return -1;
		off = sign * ((z / 100) * 60 + z % 100);
	} else {
		size_t len = 0;

		while ((p[len] >= 'a' && p[len] <= 'z') || (p[len] >= 'A' && p[len] <= 'Z'))
			len++;
		if (len == 0 || obs_zone(p, len, &off) < 0)
			return -1;
		p += len;
	}
	skip_sp(&p);
	if (*p != '\0')
		return -1;
	if (year < 1900 || day < 1 || day > mdays[mon] + (mon == 1 && is_leap(year)) || hh > 23 ||
	    mm > 59 || ss > 60)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = year - 1900;
	tm.tm_mon = mon;
	tm.tm_mday = day;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	*t = timegm(&tm) - (time_t)off * 60;
	return 0;
}

int rfc5322_date(const char *v, time_t *t)
{
	char *c = clean(v);
	int rc;

	if (c == NULL)
		return -1;
	rc = date_parse(c, t);
	free(c);
	return rc;
}

/* --- addresses ------------------------------------------------------------ */

/* RFC 5322 atext, plus any byte >= 0x80 (RFC 6532 UTF8-non-ascii). */
static int atext(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch >= 0x80 || (ch != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", ch) != NULL);
}

/* A dot-atom-text (or with obs the obs-local-part/obs-domain forms: dots
 * with spaces around) from s to e; 1 or 0. */
static int dot_atom(const char *s, const char *e)
{
	int run = 0, gap = 0;

	for (; s < e; s++) {
		if (*s == ' ') {
			gap = run > 0; /* CFWS is allowed around the dots only */
			continue;
		}
		if (*s == '.') {
			if (run == 0)
				return 0;
			run = gap = 0;
		} else if (atext((unsigned char)*s)) {
			if (gap)
				return 0;
			run++;
		} else {
			return 0;
		}
	}
	return run > 0;
}

/* A quoted-string from s to e (as clean() left it); 1 or 0. */
static int quoted(const char *s, const char *e)
{
	if (e - s < 2 || *s != '"' || e[-1] != '"')
		return 0;
	for (s++; s < e - 1; s++)
		if (*s == '\\')
			s++;
		else if (*s == '"')
			return 0;
	return s == e - 1;
}

/* A local-part: dot-atom, quoted-string, or obs-local-part (words joined
 * by dots). */
static int local_part(const char *s, const char *e)
{
	const char *w = s;

	if (dot_atom(s, e) || quoted(s, e))
		return 1;
	for (const char *p = s; p <= e; p++) {
		if (p < e && *p == '"') {
			for (p++; p < e && *p != '"'; p++)
				if (*p == '\\')
					p++;
			continue;
		}
		if (p == e || *p == '.') {
			const char *a = w, *b = p;

			while (a < b && *a == ' ')
				a++;
			while (b > a && b[-1] == ' ')
				b--;
			if (!dot_atom(a, b) && !quoted(a, b))
				return 0;
			w = p + 1;
		}
	}
	return 1;
}

/* An addr-spec from s to e: its domain to dom (lower-case).  1 or 0. */
static int addr_spec(const char *s, const char *e, char *dom, size_t domsize)
{
	const char *at = NULL;
	size_t n = 0;

	while (s < e && *s == ' ')
		s++;
	while (e > s && e[-1] == ' ')
		e--;
	/* the last '@' outside a quoted string */
	for (const char *p = s; p < e; p++) {
		if (*p == '"') {
			for (p++; p < e && *p != '"'; p++)
				if (*p == '\\')
					p++;
		} else if (*p == '@') {
			at = p;
		}
	}
	if (at == NULL || at == s || !local_part(s, at))
		return 0;
	at++;
	while (at < e && *at == ' ')
		at++;
	if (at < e && *at == '[') {
		if (e[-1] != ']')
			return 0;
		at++;
		e--;
		for (const char *p = at; p < e; p++)
			if (*p == '[' || *p == ']' || *p == '\\')
				return 0;
	} else if (!dot_atom(at, e)) {
		return 0;
	}
	for (const char *p = at; p < e; p++) {
		if (*p == ' ')
			continue;
		if (n + 1 >= domsize)
			return 0;
		dom[n++] = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
	}
	if (n == 0)
		return 0;
	dom[n] = '\0';
	return 1;
}

/* A display name (phrase, or obs-phrase with dots): words that are atoms
 * or quoted strings.  An empty one is allowed (obs-angle-addr). */
static int phrase(const char *s, const char *e)
{
	for (const char *p = s; p < e; p++) {
		if (*p == '"') {
			for (p++; p < e && *p != '"'; p++)
				if (*p == '\\')
					p++;
			if (p >= e)
				return 0;
		} else if (*p != ' ' && *p != '.' && !atext((unsigned char)*p)) {
			return 0;
		}
	}
	return 1;
}

/* One mailbox from s to e: name-addr or addr-spec. */
static int mailbox(const char *s, const char *e, char *dom, size_t domsize)
{
	const char *lt = NULL, *gt = NULL;

	for (const char *p = s; p < e; p++) {
		if (*p == '"') {
			for (p++; p < e && *p != '"'; p++)
				if (*p == '\\')
					p++;
		} else if (*p == '<') {
			if (lt)
				return 0;
			lt = p;
		} else if (*p == '>') {
			if (!lt || gt)
				return 0;
			gt = p;
		}
	}
	if (lt == NULL)
		return gt == NULL && addr_spec(s, e, dom, domsize);
	if (gt == NULL || !phrase(s, lt))
		return 0;
	for (const char *p = gt + 1; p < e; p++)
		if (*p != ' ')
			return 0;
	s = lt + 1;
	/* obs-route: "@a.example,@b.example:" before the address */
	for (const char *p = s; p < gt; p++) {
		if (*p == '"') {
			for (p++; p < gt && *p != '"'; p++)
				if (*p == '\\')
					p++;
		} else if (*p == ':') {
			s = p + 1;
			break;
		}
	}
	return addr_spec(s, gt, dom, domsize);
}

int rfc5322_mailboxes(const char *v, char (*domains)[RFC5322_DOMAIN_MAX + 1], int max)
{
	char *c = clean(v), dom[RFC5322_DOMAIN_MAX + 1];
	const char *s, *p;
	int count = 0, angle = 0, in_group = 0, nonempty = 0;

	if (c == NULL)
		return -1;
	s = c;
	for (p = c;; p++) {
		if (*p == '"') {
			for (p++; *p && *p != '"'; p++)
				if (*p == '\\' && p[1])
					p++;
			if (*p == '\0')
				goto bad;
			continue;
		}
		if (*p == '<')
			angle++;
		else if (*p == '>')
			angle--;
		if (angle < 0)
			goto bad;
		if (angle == 0 && *p == ':' && !in_group) {
			/* a group: display-name ":" [mailbox-list] ";" */
			if (!phrase(s, p) || s == p)
				goto bad;
			in_group = 1;
			s = p + 1;
			continue;
		}
		if (*p != '\0' && !(angle == 0 && (*p == ',' || (*p == ';' && in_group))))
			continue;
		{
			const char *a = s, *b = p;

			while (a < b && *a == ' ')
				a++;
			if (a == b) {
				/* empty element: obs-mbox-list allows ",," and a
				 * group may be empty */
			} else {
				if (!mailbox(a, b, dom, sizeof(dom)))
					goto bad;
				if (count < max)
					memcpy(domains[count], dom, strlen(dom) + 1);
				count++;
				nonempty = 1;
			}
		}
		if (*p == ';') {
			in_group = 0;
			nonempty = 1;
			/* only white space or a ',' may follow */
		}
		if (*p == '\0')
			break;
		s = p + 1;
	}
	if (angle != 0 || in_group || !nonempty)
		goto bad;
	free(c);
	return count;
bad:
	free(c);
	return -1;
}

/* --- Message-ID ------------------------------------------------------------ */

int rfc5322_msgid(const char *v)
{
	char *c = clean(v);
	size_t n;
	const char *at = NULL, *s, *e;
	int ok = 0;

	if (c == NULL)
		return 0;
	n = strlen(c);
	if (n < 5 || c[0] != '<' || c[n - 1] != '>')
		goto out;
	s = c + 1;
	e = c + n - 1;
	for (const char *p = s; p < e; p++) {
		if (*p == '"') {
			for (p++; p < e && *p != '"'; p++)
				if (*p == '\\')
					p++;
		} else if (*p == '@') {
			at = p;
		} else if (*p == ' ' || *p == '<' || *p == '>') {
			goto out;
		}
	}
	if (at == NULL || at == s || at + 1 == e)
		goto out;
	if (!dot_atom(s, at) && !quoted(s, at))
		goto out;
	if (at[1] == '[') {
		if (e[-1] != ']')
			goto out;
		for (const char *p = at + 2; p < e - 1; p++)
			if (*p == '[' || *p == ']' || *p == '\\')
				goto out;
		ok = 1;
	} else {
		ok = dot_atom(at + 1, e);
	}
out:
	free(c);
	return ok;
}

/* --- From: fields of a raw message ---------------------------------------- */

int rfc5322_from_domains(const unsigned char *msg, size_t len,
                         char (*domains)[RFC5322_DOMAIN_MAX + 1], int max, int *nfields)
{
	size_t i = 0;
	int total = 0, bad = 0;

	*nfields = 0;
	while (i < len) {
		size_t start = i, end;

		/* one field: up to a line end not followed by white space */
		for (end = i; end < len; end++)
			if (msg[end] == '\n' &&
			    (end + 1 >= len || (msg[end + 1] != ' ' && msg[end + 1] != '\t')))
				break;
		i = end < len ? end + 1 : len;
		if (end == start || (end == start + 1 && msg[start] == '\r'))
			break; /* the empty line: end of the header */
		if (end - start > 5 && strncasecmp((const char *)msg + start, "From", 4) == 0) {
			size_t p = start + 4;

			while (p < end && (msg[p] == ' ' || msg[p] == '\t'))
				p++;
			if (p < end && msg[p] == ':') {
				char *v = xstrndup((const char *)msg + p + 1, end - p - 1);
				int n;

				/* a NUL in the field cuts it: that part is checked */
				(*nfields)++;
				n = rfc5322_mailboxes(v, total < max ? domains + total : domains,
				                      total < max ? max - total : 0);
				free(v);
				if (n < 0)
					bad = 1;
				else
					total += n;
			}
		}
	}
	return bad ? -1 : total;
}
