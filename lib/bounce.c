/* lib/bounce.c - bounce and auto-reply recognition; see bounce.h */
#include "bounce.h"
#include "addr.h"
#include "mime.h"
#include "store.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct scan {
	const struct bounce_policy *pol;
	struct bounce_info *info;
	int top;       /* in the message's own top headers */
	int need_mime; /* a base64 or quoted-printable part was seen */
	char hdr[BOUNCE_HDR_MAX];
	size_t hlen;
	int in_hdr; /* hdr holds a header we are collecting */
};

static int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* Case-insensitive substring search in a NUL-terminated buffer. */
static int has_word(const char *s, const char *w)
{
	size_t n = strlen(w);

	for (; *s; s++)
		if (lower((unsigned char)*s) == lower((unsigned char)*w) &&
		    strncasecmp(s, w, n) == 0)
			return 1;
	return 0;
}

static int name_is(const char *hdr, const char *name)
{
	size_t n = strlen(name);

	return strncasecmp(hdr, name, n) == 0 && hdr[n] == ':';
}

/* A domain of ours: in pol->domains, or a subdomain of one. */
static const char *our_domain(const struct bounce_policy *pol, const char *d, size_t n)
{
	for (int i = 0; pol->domains && i < pol->domains->n; i++) {
		const char *o = pol->domains->v[i];
		size_t on = strlen(o);

		if (on == 0 || on > n)
			continue;
		if (strncasecmp(d + n - on, o, on) == 0 && (on == n || d[n - on - 1] == '.'))
			return o;
	}
	return NULL;
}

/* Every <x@domain> in value: is one of them ours? */
static void match_msgids(struct scan *s, const char *value)
{
	const char *p = value;

	while ((p = strchr(p, '<')) != NULL) {
		const char *end = strchr(p, '>');
		const char *at, *o;

		if (end == NULL)
			return;
		s->info->quoted_msgids += !s->top;
		at = memrchr(p, '@', (size_t)(end - p));
		if (at && (o = our_domain(s->pol, at + 1, (size_t)(end - at - 1))) != NULL) {
			s->info->ours = 1;
			snprintf(s->info->evidence, sizeof(s->info->evidence), "a Message-ID in %s",
			         o);
			return;
		}
		p = end + 1;
	}
}

/* A token of a Received line: a relay name, or an address of a relay
 * network ("[192.0.2.1]", "[IPv6:2001:db8::1]", or bare). */
static int match_token(struct scan *s, char *tok)
{
	const struct bounce_policy *pol = s->pol;
	struct ipaddr ip;
	size_t n = strlen(tok);
	char *t = tok;

	if (n > 0 && t[n - 1] == '.')
		t[--n] = '\0';
	if (t[0] == '[' && n > 1 && t[n - 1] == ']') {
		t[n - 1] = '\0';
		t++;
		if (strncasecmp(t, "IPv6:", 5) == 0)
			t += 5;
	}
	if (*t == '\0')
		return 0;
	if (ip_parse(t, &ip) == 0) {
		struct ipaddr u;

		ip_unmap(&ip, &u);
		for (int i = 0; pol->relay_nets && i < pol->relay_nets->n; i++)
			if (ip_in_net(&u, &pol->relay_nets->v[i].ip, pol->relay_nets->v[i].len)) {
				char a[64];

				ip_format(&u, a, sizeof(a));
				snprintf(s->info->evidence, sizeof(s->info->evidence),
				         "a Received line from our relay %s", a);
				return 1;
			}
		return 0;
	}
	for (int i = 0; pol->relay_names && i < pol->relay_names->n; i++)
		if (strcasecmp(t, pol->relay_names->v[i]) == 0) {
			snprintf(s->info->evidence, sizeof(s->info->evidence),
			         "a Received line of our relay %s", pol->relay_names->v[i]);
			return 1;
		}
	return 0;
}

/* The part before ';' (the date) split into words. */
static void match_received(struct scan *s, char *value)
{
	char *p = value;

	s->info->quoted_received++;
	while (*p && *p != ';') {
		char *start;
		char save;

		while (*p && strchr(" \t\r\n(),", *p))
			p++;
		start = p;
		while (*p && !strchr(" \t\r\n(),;", *p))
			p++;
		if (p == start)
			continue;
		save = *p;
		*p = '\0';
		if (p - start <= 300 && match_token(s, start)) {
			s->info->ours = 1;
			*p = save;
			return;
		}
		*p = save;
	}
}

static const char *const dsn_subjects[] = {
	"undelivered mail",
	"undeliverable",
	"delivery status notification",
	"failure notice",
	"returned mail",
	"mail delivery failed",
	"delivery failure",
	"nondeliverable",
	"non-deliverable",
	"delivery has failed",
	"mail delivery system",
	"could not be delivered",
	NULL,
};
static const char *const auto_subjects[] = {
	"out of office",  "out of the office", "vacation",     "auto-reply",  "autoreply",
	"auto reply",     "automatic reply",   "autoresponse", "abwesenheit", "absence",
	"please confirm", "verify your",       "challenge",    NULL,
};
static const char *const virus_subjects[] = {
	"virus", "malware", "infected", "quarantine", NULL,
};

static int any_word(const char *value, const char *const *words)
{
	for (int i = 0; words[i]; i++)
		if (has_word(value, words[i]))
			return 1;
	return 0;
}

/* One whole (unfolded) header, in s->hdr. */
static void header_done(struct scan *s)
{
	char *h = s->hdr;
	char *v = strchr(h, ':');
	struct bounce_info *in = s->info;

	s->in_hdr = 0;
	if (v == NULL)
		return;
	v++;
	if (name_is(h, "Content-Transfer-Encoding")) {
		if (has_word(v, "base64") || has_word(v, "quoted-printable"))
			s->need_mime = 1;
	} else if (name_is(h, "Content-Type")) {
		if (has_word(v, "delivery-status"))
			in->dsn = 1;
		else if (has_word(v, "disposition-notification"))
			in->auto_reply = 1;
	}
	if (s->top) {
		if (name_is(h, "Auto-Submitted")) {
			char *t = str_trim(v);

			if (strncasecmp(t, "no", 2) != 0 ||
			    (t[2] != '\0' && t[2] != ';' && t[2] != ' '))
				in->auto_reply = 1;
		} else if (name_is(h, "X-Autoreply") || name_is(h, "X-Autorespond") ||
		           name_is(h, "X-Autoresponder")) {
			in->auto_reply = 1;
		} else if (name_is(h, "Precedence")) {
			if (has_word(v, "auto_reply"))
				in->auto_reply = 1;
		} else if (name_is(h, "Subject")) {
			if (any_word(v, dsn_subjects))
				in->dsn = 1;
			if (any_word(v, auto_subjects))
				in->auto_reply = 1;
			if (any_word(v, virus_subjects))
				in->virus_notice = in->auto_reply = 1;
		} else if (name_is(h, "From")) {
			if (has_word(v, "mailer-daemon"))
				in->dsn = 1;
		} else if (name_is(h, "In-Reply-To") || name_is(h, "References")) {
			if (!in->ours)
				match_msgids(s, v);
		}
		return;
	}
	if (in->ours)
		return;
	if (name_is(h, "Received"))
		match_received(s, v);
	else if (name_is(h, "Message-ID"))
		match_msgids(s, v);
	else if (name_is(h, "Final-Recipient") || name_is(h, "Reporting-MTA") ||
	         (name_is(h, "Action") && (has_word(v, "failed") || has_word(v, "delayed"))))
		in->dsn = 1;
}

/* "Name:" at the start of t (a header field name of 1..76 characters). */
static int starts_header(const char *t, size_t n)
{
	size_t i = 0;

	while (i < n && i < 77 &&
	       ((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= 'A' && t[i] <= 'Z') ||
	        (t[i] >= '0' && t[i] <= '9') || t[i] == '-'))
		i++;
	return i > 0 && i < n && t[i] == ':';
}

static void hdr_append(struct scan *s, const char *t, size_t n)
{
	size_t room = sizeof(s->hdr) - 1 - s->hlen;

	if (n > room)
		n = room;
	for (size_t i = 0; i < n; i++)
		s->hdr[s->hlen++] = t[i] == '\0' || t[i] == '\r' ? ' ' : t[i];
	s->hdr[s->hlen] = '\0';
}

/* One line of the body (no newline).  Quote marks ('>', '|') and the
 * indentation before a quoted header are skipped. */
static void body_line(struct scan *s, const char *t, size_t n)
{
	size_t q = 0;

	while (q < n && q < 64 && (t[q] == '>' || t[q] == '|'))
		q++;
	if (s->in_hdr && q < n && (t[q] == ' ' || t[q] == '\t')) {
		size_t w = q;

		while (w < n && (t[w] == ' ' || t[w] == '\t'))
			w++;
		if (w < n && !starts_header(t + w, n - w)) {
			hdr_append(s, " ", 1);
			hdr_append(s, t + w, n - w);
			return;
		}
	}
	if (s->in_hdr)
		header_done(s);
	while (q < n && q < 128 && (t[q] == ' ' || t[q] == '\t' || t[q] == '>'))
		q++;
	if (q < n && starts_header(t + q, n - q)) {
		s->hlen = 0;
		s->in_hdr = 1;
		hdr_append(s, t + q, n - q);
	}
}

/* Feed text line by line; returns the offset after the top headers when
 * top is set, else len. */
static size_t scan_text(struct scan *s, const char *p, size_t len)
{
	size_t off = 0;

	while (off < len && !s->info->ours) {
		const char *nl = memchr(p + off, '\n', len - off);
		size_t n = nl ? (size_t)(nl - (p + off)) : len - off;
		const char *t = p + off;

		off += n + (nl != NULL);
		if (n > 0 && t[n - 1] == '\r')
			n--;
		if (s->top) {
			if (n == 0) { /* end of the top headers */
				if (s->in_hdr)
					header_done(s);
				s->top = 0;
				return off;
			}
			if ((t[0] == ' ' || t[0] == '\t') && s->in_hdr) {
				hdr_append(s, t, n);
				continue;
			}
			if (s->in_hdr)
				header_done(s);
			if (starts_header(t, n)) {
				s->hlen = 0;
				s->in_hdr = 1;
				hdr_append(s, t, n);
			}
			continue;
		}
		body_line(s, t, n);
	}
	if (s->in_hdr && !s->info->ours)
		header_done(s);
	s->in_hdr = 0;
	return len;
}

static int visit_part(const struct mime_part *p, void *arg)
{
	struct scan *s = arg;
	size_t n = 0;
	char *text;

	if (strncmp(p->type, "text/", 5) != 0)
		return 0;
	text = mime_part_text(p, 4u << 20, &n);
	if (text) {
		scan_text(s, text, n);
		free(text);
	}
	return s->info->ours;
}

void bounce_parse(const void *data, size_t len, const struct bounce_policy *pol,
                  struct bounce_info *info)
{
	struct scan *s = xcalloc(1, sizeof(*s));
	size_t body;

	memset(info, 0, sizeof(*info));
	s->pol = pol;
	s->info = info;
	s->top = 1;
	body = scan_text(s, data, len);
	if (body < len && !info->ours)
		scan_text(s, (const char *)data + body, len - body);
	/* Encoded parts hide their text from the line scan: decode them. */
	if (!info->ours && s->need_mime) {
		struct mime_info mi;
		char err[128];

		s->top = 0;
		(void)mime_walk_mem(data, len, visit_part, s, &mi, err, sizeof(err));
	}
	free(s);
}

int bounce_switch_get(struct store *st)
{
	char v[16];
	size_t n = 0;

	if (st == NULL || store_get(st, BOUNCE_SWITCH_NS, BOUNCE_SWITCH_KEY,
	                            strlen(BOUNCE_SWITCH_KEY), v, sizeof(v) - 1, &n, NULL) != 1)
		return -1;
	v[n] = '\0';
	if (strcmp(v, "reject") == 0)
		return MODE_REJECT;
	if (strcmp(v, "monitor") == 0)
		return MODE_MONITOR;
	return -1;
}

int bounce_switch_set(struct store *st, const char *word)
{
	if (strcmp(word, "config") == 0)
		return store_del(st, BOUNCE_SWITCH_NS, BOUNCE_SWITCH_KEY, strlen(BOUNCE_SWITCH_KEY),
		                 STORE_DURABLE) < 0
		           ? -1
		           : 0;
	if (strcmp(word, "reject") != 0 && strcmp(word, "monitor") != 0)
		return -1;
	return store_put(st, BOUNCE_SWITCH_NS, BOUNCE_SWITCH_KEY, strlen(BOUNCE_SWITCH_KEY), word,
	                 strlen(word), 0, STORE_DURABLE);
}
