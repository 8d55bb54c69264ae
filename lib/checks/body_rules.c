/* lib/checks/body_rules.c - PCRE2 rules on the decoded text of the message,
 * like Postfix body_checks but after MIME decoding
 *
 * At end of DATA every text/... part (nested ones included; lib/mime.c,
 * whose parse of the message the attachments check shares) is
 * decoded (base64, quoted-printable) and converted to UTF-8, and each of
 * its lines (at most BODY_PART_MAX bytes per part) is matched against
 * body_rules.file (format in rules.h); the first line that matches a rule
 * decides.  Regexes on bodies are costly and easily wrong: use few.
 */
#include "check.h"
#include "engine.h"
#include "message.h"
#include "mime.h"
#include "rules.h"
#include "rules_common.h"
#include "util.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define BODY_PART_MAX (1024 * 1024)

struct body_rules_conf {
	char *file;
	struct rules *rules; /* built by init */
};

#define F(x) offsetof(struct body_rules_conf, x)
static const struct conf_param body_rules_params[] = {
	{ "body_rules.file", "", CONF_STR, F(file), 0, 0,
	  "file of /regex/ ACTION rules matched against each decoded text line; empty: none" },
	CONF_END
};

static int body_rules_init(void *mconf, const struct conf *c, char *err, size_t errsize)
{
	struct body_rules_conf *bc = mconf;
	char why[512];

	(void)c;
	if (bc->file[0] == '\0')
		return 0;
	bc->rules = rules_open(bc->file, why, sizeof(why));
	if (bc->rules == NULL) {
		snprintf(err, errsize, "body_rules.file: %s", why);
		return -1;
	}
	return 0;
}

static void body_rules_fini(void *mconf)
{
	struct body_rules_conf *bc = mconf;

	rules_free(bc->rules);
	bc->rules = NULL;
}

struct walk {
	const struct check_ctx *cx;
	struct verdicts *out;
	const struct rules *rules;
};

static int visit(const struct mime_part *p, void *arg)
{
	struct walk *w = arg;
	struct rule_result res;
	size_t len;
	char *text = mime_part_text(p, BODY_PART_MAX, &len);
	int hit = 0;

	if (text == NULL)
		return 0;
	for (size_t i = 0; i < len && !hit;) {
		const char *nl = memchr(text + i, '\n', len - i);
		size_t end = nl ? (size_t)(nl - text) : len, n = end - i;

		if (n > 0 && text[i + n - 1] == '\r')
			n--;
		if (rules_match(w->rules, text + i, n, &res)) {
			rules_verdict(w->cx, w->out, "body_rules", &res,
			              "Message content rejected");
			hit = 1;
		}
		i = end + 1;
	}
	free(text);
	return hit;
}

static int body_rules_eom(const struct check_ctx *cx, struct verdicts *out)
{
	const struct body_rules_conf *bc = cx->mconf;
	struct walk w = { cx, out, bc->rules };
	struct mime_info info;
	char err[200];

	if (bc->rules == NULL || cx->msg == NULL)
		return CHECK_DONE;
	if (mime_walk_message(cx->msg, visit, &w, &info, err, sizeof(err)) < 0)
		return check_retry(out, "%s", err);
	return CHECK_DONE;
}

const struct check_module check_body_rules = {
	.name = "body_rules",
	.doc = "PCRE2 rules on the decoded text parts, like Postfix body_checks",
	.params = body_rules_params,
	.conf_size = sizeof(struct body_rules_conf),
	.default_mode = "reject",
	.default_on_error = "defer",
	.needs_message = 1,
	.init = body_rules_init,
	.fini = body_rules_fini,
	.hook = {
		[STAGE_EOM] = body_rules_eom,
	},
};
