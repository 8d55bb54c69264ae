/* lib/ratelimit.h - rate limit rules and counter records, shared by the
 * ratelimit check (lib/checks/ratelimit.c), portcullisctl and the tests
 *
 * Store namespace "ratelimit": key "WHAT:VALUE|UNIT|SECONDS", value the
 * text "START CURRENT PREVIOUS" (window start in clock seconds, the counts
 * of this window and of the one before).  See lib/checks/ratelimit.c for
 * the rule syntax and the sliding-window estimate.
 */
#ifndef PORTCULLIS_RATELIMIT_H
#define PORTCULLIS_RATELIMIT_H

#include <stddef.h>

#define RATELIMIT_NS "ratelimit"

/* One parsed rule: what (0 client, 1 domain, 2 sender, 3 rcpt, 4 auth),
 * unit (0 conns, 1 msgs, 2 rcpts), client prefixes, limit, window (s). */
struct rl_rule_info {
	int what, unit, v4, v6;
	long limit, window;
};

/* Parse "WHAT LIMIT UNIT WINDOW".  Returns 0, or -1 with a reason. */
int ratelimit_parse_rule(const char *text, struct rl_rule_info *ri, char *err, size_t errsize);

struct rl_rec {
	long long start, cur, prev;
};

/* Decode a stored value (a bad one reads as all zero). */
void ratelimit_rec_decode(const char *s, size_t len, struct rl_rec *r);

/* The requests counted in the sliding window of `window` seconds ending at
 * now: this window's count plus the previous window's, weighted by the
 * part of it still inside. */
double ratelimit_estimate(const struct rl_rec *r, long window, long long now);

#endif
