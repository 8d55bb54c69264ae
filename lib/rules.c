/* lib/rules.c - PCRE2 content rules with $n in the text; see rules.h
 *
 * Each rule is compiled once at load (PCRE2 JIT when available) and is
 * read-only afterwards; a match allocates its own match data, so threads
 * share a struct rules without a lock.  Errors: rules_open() names
 * FILE:LINE; a match that hits the PCRE2 limits is a non-match.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "rules.h"
#include "log.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define RULE_LINE_MAX 4096
#define CAPTURE_MAX   100
#define MATCH_LIMIT   100000
#define DEPTH_LIMIT   10000

struct rule {
	pcre2_code *re;
	int negate;
	enum rule_action action;
	double score;
	char *text;
	int line;
};

struct rules {
	char *path;
	struct rule *v;
	int n;
	pcre2_match_context *mctx;
};

void rules_free(struct rules *r)
{
	if (r == NULL)
		return;
	for (int i = 0; i < r->n; i++) {
		pcre2_code_free(r->v[i].re);
		free(r->v[i].text);
	}
	free(r->v);
	pcre2_match_context_free(r->mctx);
	free(r->path);
	free(r);
}

/* Parse "ACTION [TEXT]".  0 or -1 + err. */
static int parse_action(char *s, struct rule *ru, char *err, size_t errsize)
{
	char *word = s, *rest;

	rest = word + strcspn(word, " \t");
	if (*rest)
		*rest++ = '\0';
	rest += strspn(rest, " \t");
	if (strcasecmp(word, "REJECT") == 0)
		ru->action = RULE_REJECT;
	else if (strcasecmp(word, "DEFER") == 0)
		ru->action = RULE_DEFER;
	else if (strcasecmp(word, "TAG") == 0)
		ru->action = RULE_TAG;
	else if (strcasecmp(word, "OK") == 0)
		ru->action = RULE_OK;
	else if (strcasecmp(word, "DUNNO") == 0)
		ru->action = RULE_DUNNO;
	else if (strcasecmp(word, "SCORE") == 0) {
		char *end;

		ru->action = RULE_SCORE;
		errno = 0;
		ru->score = strtod(rest, &end);
		if (end == rest || errno || ru->score < -1000 || ru->score > 1000) {
			snprintf(err, errsize, "SCORE needs a number from -1000 to 1000");
			return -1;
		}
		rest = end + strspn(end, " \t");
	} else {
		snprintf(err, errsize,
		         "unknown action '%.40s' (REJECT, DEFER, SCORE, TAG, OK, DUNNO)", word);
		return -1;
	}
	if (ru->action == RULE_TAG && *rest == '\0') {
		snprintf(err, errsize, "TAG needs a text");
		return -1;
	}
	ru->text = xstrdup(rest);
	str_trim(ru->text);
	return 0;
}

/* Parse one logical line "[!]/REGEX/FLAGS ACTION [TEXT]". */
static int parse_rule(char *s, struct rule *ru, char *err, size_t errsize)
{
	uint32_t opts = PCRE2_CASELESS | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF;
	char *p = s, *end;
	int ecode;
	PCRE2_SIZE eoff;

	if (*p == '!') {
		ru->negate = 1;
		p++;
	}
	if (*p != '/') {
		snprintf(err, errsize, "a rule starts with /regex/");
		return -1;
	}
	p++;
	/* The regex ends at the next '/' not escaped by a backslash. */
	for (end = p; *end && *end != '/'; end++)
		if (*end == '\\' && end[1])
			end++;
	if (*end != '/') {
		snprintf(err, errsize, "missing closing / of the regex");
		return -1;
	}
	*end++ = '\0';
	for (; *end && !isspace((unsigned char)*end); end++) {
		if (*end == 'i')
			opts ^= PCRE2_CASELESS;
		else if (*end == 'x')
			opts |= PCRE2_EXTENDED;
		else {
			snprintf(err, errsize, "unknown flag '%c' (i, x)", *end);
			return -1;
		}
	}
	ru->re = pcre2_compile((PCRE2_SPTR)p, PCRE2_ZERO_TERMINATED, opts, &ecode, &eoff, NULL);
	if (ru->re == NULL) {
		PCRE2_UCHAR msg[200];

		pcre2_get_error_message(ecode, msg, sizeof(msg));
		snprintf(err, errsize, "regex error at offset %zu: %s", (size_t)eoff, (char *)msg);
		return -1;
	}
	pcre2_jit_compile(ru->re, PCRE2_JIT_COMPLETE); /* a failure only costs speed */
	end += strspn(end, " \t");
	if (*end == '\0') {
		snprintf(err, errsize, "missing action after the regex");
		return -1;
	}
	return parse_action(end, ru, err, errsize);
}

struct rules *rules_open(const char *path, char *err, size_t errsize)
{
	FILE *fp = fopen(path, "r");
	struct rules *r;
	char line[RULE_LINE_MAX], logical[RULE_LINE_MAX] = "";
	int lineno = 0, start = 0;

	if (fp == NULL) {
		snprintf(err, errsize, "%s: %s", path, strerror(errno));
		return NULL;
	}
	r = xcalloc(1, sizeof(*r));
	r->path = xstrdup(path);
	r->mctx = pcre2_match_context_create(NULL);
	pcre2_set_match_limit(r->mctx, MATCH_LIMIT);
	pcre2_set_depth_limit(r->mctx, DEPTH_LIMIT);
	for (;;) {
		char *got = fgets(line, sizeof(line), fp);
		size_t n = got ? strlen(line) : 0;

		if (got) {
			lineno++;
			if (n == sizeof(line) - 1 && line[n - 1] != '\n') {
				snprintf(err, errsize, "%s:%d: line longer than %d bytes", path,
				         lineno, RULE_LINE_MAX - 2);
				goto fail;
			}
			line[strcspn(line, "\r\n")] = '\0';
			if (line[0] == '#')
				continue;
			if ((line[0] == ' ' || line[0] == '\t') && logical[0]) {
				if (strlen(logical) + strlen(line) + 1 >= sizeof(logical)) {
					snprintf(err, errsize, "%s:%d: rule longer than %d bytes",
					         path, lineno, RULE_LINE_MAX - 2);
					goto fail;
				}
				strcat(logical, " ");
				strcat(logical, line + strspn(line, " \t"));
				continue;
			}
		}
		/* A new logical line starts (or the file ended): finish the last. */
		str_trim(logical);
		if (logical[0]) {
			struct rule ru = { 0 };
			char why[300];

			ru.line = start;
			if (parse_rule(logical, &ru, why, sizeof(why)) < 0) {
				snprintf(err, errsize, "%s:%d: %s", path, start, why);
				pcre2_code_free(ru.re);
				free(ru.text);
				goto fail;
			}
			r->v = xrealloc(r->v, sizeof(*r->v) * (size_t)(r->n + 1));
			r->v[r->n++] = ru;
		}
		if (got == NULL)
			break;
		bcopy_str(logical, sizeof(logical), line);
		start = lineno;
	}
	fclose(fp);
	return r;
fail:
	fclose(fp);
	rules_free(r);
	return NULL;
}

/* text with $1..$9 replaced by the captures of md on subject. */
static void expand(char *dst, size_t dstsize, const char *text, const char *subject,
                   pcre2_match_data *md, int rc)
{
	PCRE2_SIZE *ov = md ? pcre2_get_ovector_pointer(md) : NULL;
	size_t k = 0;

	for (const char *p = text; *p && k + 1 < dstsize; p++) {
		if (p[0] == '$' && p[1] >= '1' && p[1] <= '9') {
			int g = p[1] - '0';

			p++;
			if (ov && g < rc && ov[2 * g] != PCRE2_UNSET) {
				size_t n = ov[2 * g + 1] - ov[2 * g];

				if (n > CAPTURE_MAX)
					n = CAPTURE_MAX;
				if (n > dstsize - k - 1)
					n = dstsize - k - 1;
				memcpy(dst + k, subject + ov[2 * g], n);
				k += n;
			}
			continue;
		}
		dst[k++] = *p;
	}
	dst[k] = '\0';
	/* a capture may hold a NUL: the text ends there, which is safe */
}

int rules_match(const struct rules *r, const char *subject, size_t len, struct rule_result *res)
{
	for (int i = 0; r && i < r->n; i++) {
		const struct rule *ru = &r->v[i];
		pcre2_match_data *md = pcre2_match_data_create_from_pattern(ru->re, NULL);
		int rc = pcre2_match(ru->re, (PCRE2_SPTR)subject, len, 0, 0, md, r->mctx);
		int hit = rc > 0;

		if (rc < 0 && rc != PCRE2_ERROR_NOMATCH)
			log_msg(LOG_LVL_DEBUG, "%s:%d: regex not completed (PCRE2 error %d)",
			        r->path, ru->line, rc);
		if (ru->negate)
			hit = rc == PCRE2_ERROR_NOMATCH;
		if (hit) {
			res->action = ru->action;
			res->score = ru->score;
			res->line = ru->line;
			res->file = r->path;
			expand(res->text, sizeof(res->text), ru->text, subject,
			       ru->negate ? NULL : md, rc);
			pcre2_match_data_free(md);
			return 1;
		}
		pcre2_match_data_free(md);
	}
	return 0;
}
