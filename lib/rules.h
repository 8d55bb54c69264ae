/* lib/rules.h - PCRE2 content rules in the style of Postfix header_checks
 *
 * A rules file has one rule per line ('#' comments, blank lines ignored, a
 * line starting with white space continues the previous one):
 *   /REGEX/FLAGS ACTION [TEXT]
 * FLAGS as in Postfix pcre_table(5): matching is case-insensitive unless
 * 'i' is given (it toggles), 'x' is PCRE2 extended syntax; a '!' before the
 * first '/' negates the match.  ACTION is one of
 *   REJECT [TEXT]   550 5.7.1 TEXT
 *   DEFER [TEXT]    451 4.7.1 TEXT
 *   SCORE N [TEXT]  add N to the score
 *   TAG TEXT        add a header PREFIX-Tag: TEXT to the accepted message
 *   OK              whitelist the message (skip the remaining checks)
 *   DUNNO           stop here without a decision
 * In TEXT, $1 ... $9 are replaced by the regex's captured groups (each cut
 * at 100 bytes; the caller encodes the result for its sink).  The first
 * matching rule wins.  Matching is bounded by PCRE2 match and depth limits:
 * a rule that hits them counts as not matching (and is logged once).
 *
 * A struct rules is immutable after rules_open() and shared by threads;
 * each match uses its own match data.
 */
#ifndef PORTCULLIS_RULES_H
#define PORTCULLIS_RULES_H

#include <stddef.h>

enum rule_action { RULE_DUNNO, RULE_OK, RULE_REJECT, RULE_DEFER, RULE_SCORE, RULE_TAG };

struct rule_result {
	enum rule_action action;
	double score;
	char text[400]; /* with $n replaced; may be empty */
	int line;       /* of the rule in its file */
	const char *file;
};

struct rules;

/* Load a rules file.  NULL + "FILE:LINE: reason" in err on failure. */
struct rules *rules_open(const char *path, char *err, size_t errsize);
void rules_free(struct rules *r);

/* Match subject (len bytes, need not be terminated).  Returns 1 and fills
 * *res when a rule matched, 0 otherwise. */
int rules_match(const struct rules *r, const char *subject, size_t len, struct rule_result *res);

#endif
