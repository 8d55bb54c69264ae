/* lib/checks/header_rules.c - PCRE2 rules on the message's header lines,
 * like Postfix header_checks
 *
 * Each header is matched as one logical line "Name: value" (folded lines
 * keep their line breaks, at most 64 KiB) against header_rules.file (format
 * in rules.h); the first matching rule decides for that header.  REJECT and
 * DEFER are answered at end of DATA (the engine holds them).  Typical uses:
 * impossible times in Date:, forged trace headers, known spam mailers.
 */
#include "check.h"
#include "engine.h"
#include "rules.h"
#include "rules_common.h"
#include "util.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define HEADER_SUBJECT_MAX 65536

struct header_rules_conf {
	char *file;
	struct rules *rules; /* built by init */
};

#define F(x) offsetof(struct header_rules_conf, x)
static const struct conf_param header_rules_params[] = {
	{ "header_rules.file", "", CONF_STR, F(file), 0, 0,
	  "file of /regex/ ACTION rules matched against each header line; empty: none" },
	CONF_END
};

static int header_rules_init(void *mconf, const struct conf *c, char *err, size_t errsize)
{
	struct header_rules_conf *hc = mconf;
	char why[512];

	(void)c;
	if (hc->file[0] == '\0')
		return 0;
	hc->rules = rules_open(hc->file, why, sizeof(why));
	if (hc->rules == NULL) {
		snprintf(err, errsize, "header_rules.file: %s", why);
		return -1;
	}
	return 0;
}

static void header_rules_fini(void *mconf)
{
	struct header_rules_conf *hc = mconf;

	rules_free(hc->rules);
	hc->rules = NULL;
}

static int header_rules_header(const struct check_ctx *cx, struct verdicts *out)
{
	const struct header_rules_conf *hc = cx->mconf;
	struct rule_result res;
	size_t nl = strlen(cx->hdr_name), vl = strlen(cx->hdr_value), len;
	char *line;

	if (hc->rules == NULL)
		return CHECK_DONE;
	if (nl > HEADER_SUBJECT_MAX / 2)
		nl = HEADER_SUBJECT_MAX / 2;
	if (vl > HEADER_SUBJECT_MAX / 2)
		vl = HEADER_SUBJECT_MAX / 2;
	line = xmalloc(nl + vl + 3);
	memcpy(line, cx->hdr_name, nl);
	memcpy(line + nl, ": ", 2);
	memcpy(line + nl + 2, cx->hdr_value, vl);
	len = nl + 2 + vl;
	line[len] = '\0';
	if (rules_match(hc->rules, line, len, &res))
		rules_verdict(cx, out, "header_rules", &res, "Message header rejected");
	free(line);
	return CHECK_DONE;
}

const struct check_module check_header_rules = {
	.name = "header_rules",
	.doc = "PCRE2 rules on header lines, like Postfix header_checks",
	.params = header_rules_params,
	.conf_size = sizeof(struct header_rules_conf),
	.default_mode = "reject",
	.default_on_error = "defer",
	.init = header_rules_init,
	.fini = header_rules_fini,
	.hook = {
		[STAGE_HEADER] = header_rules_header,
	},
};
