/* lib/checks/rules_common.h - turning a rules.h match into verdicts, shared
 * by the header_rules and body_rules modules
 *
 * REJECT 550 5.7.1, DEFER 451 4.7.1, SCORE, TAG (a PREFIX-Tag header), OK;
 * the symbol is MODULE.lineN so the log says which rule fired.  The text
 * may hold captured network text: it goes in as a "%s" argument, and the
 * engine encodes it for the reply or header.
 */
#ifndef PORTCULLIS_RULES_COMMON_H
#define PORTCULLIS_RULES_COMMON_H

#include <stdio.h>

#include "check.h"
#include "rules.h"

static inline void rules_verdict(const struct check_ctx *cx, struct verdicts *out,
                                 const char *module, const struct rule_result *res,
                                 const char *default_text)
{
	char symbol[48], name[96];
	const char *text = res->text[0] ? res->text : default_text;

	snprintf(symbol, sizeof(symbol), "%s.line%d", module, res->line);
	switch (res->action) {
	case RULE_REJECT:
		verdict_reject(out, MODE_REJECT, symbol, "550", "5.7.1", "%s", text);
		break;
	case RULE_DEFER: verdict_defer(out, MODE_REJECT, symbol, "451", "4.7.1", "%s", text); break;
	case RULE_SCORE: verdict_score(out, MODE_REJECT, symbol, res->score, "%s", text); break;
	case RULE_TAG:
		snprintf(name, sizeof(name), "%s-Tag", cx->conf->core.header_prefix);
		verdict_header(out, name, 0, "%s", res->text);
		break;
	case RULE_OK: verdict_ok(out, symbol); break;
	case RULE_DUNNO: break;
	}
}

#endif
