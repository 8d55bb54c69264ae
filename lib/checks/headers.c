/* lib/checks/headers.c - header plausibility (RFC 5322, RFC 6532)
 *
 * Built-in checks that regular expressions do badly (header_rules stays
 * for local patterns).  Sub-checks, each with its own mode (headers.NAME)
 * and score (headers.NAME_score); the ones named in headers.refuse refuse
 * the message at end of DATA (550 5.7.1, or 451 4.7.1 in defer mode)
 * instead of scoring:
 *   date_missing     no Date: field
 *   date_invalid     a Date: that is not an RFC 5322 date-time
 *   date_future      a Date: more than headers.max_future ahead
 *   date_past        a Date: more than headers.max_past old (0: off)
 *   msgid_missing    no Message-ID: field
 *   msgid_invalid    a Message-ID: that is not a msg-id
 *   from_missing     no From: field (RFC 5322 3.6: exactly one)
 *   from_invalid     a From: that is not a mailbox list
 *   duplicate        a field that may occur once (RFC 5322 3.6 table:
 *                    Date, From, Sender, Reply-To, To, Cc, Bcc,
 *                    Message-ID, In-Reply-To, References, Subject) repeated;
 *                    fires once per field name
 *   eightbit         raw 8-bit bytes in header fields of a message whose
 *                    MAIL FROM did not say SMTPUTF8 (RFC 6532 3.3)
 * Syntax and date checks look at the first occurrence of their field
 * (a second one is the duplicate sub-check's business), at the header
 * stage; missing fields and 8-bit text are decided at the end of the
 * header (engine_header_count(), txn->hdr_8bit).  The clock is
 * clock_now() (PORTCULLIS_CLOCK_FILE in the tests).
 * Thread-safe: reads its settings and the transaction.
 */
#include "check.h"
#include "engine.h"
#include "rfc5322.h"
#include "util.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

enum hsub {
	H_DATE_MISSING,
	H_DATE_INVALID,
	H_DATE_FUTURE,
	H_DATE_PAST,
	H_MSGID_MISSING,
	H_MSGID_INVALID,
	H_FROM_MISSING,
	H_FROM_INVALID,
	H_DUPLICATE,
	H_EIGHTBIT,
	H_COUNT
};

static const char *const hsub_name[H_COUNT] = {
	"date_missing",  "date_invalid", "date_future",  "date_past", "msgid_missing",
	"msgid_invalid", "from_missing", "from_invalid", "duplicate", "eightbit",
};

struct headers_conf {
	enum mode mode[H_COUNT];
	double score[H_COUNT];
	struct strlist refuse;
	long max_future;
	long max_past;
	unsigned refuse_mask; /* 1 << enum hsub, from refuse */
};

#define F(x)  offsetof(struct headers_conf, x)
#define M(i)  (F(mode) + (i) * sizeof(enum mode))
#define SC(i) (F(score) + (i) * sizeof(double))
static const struct conf_param headers_params[] = {
	{ "headers.date_missing", "reject", CONF_MODE, M(H_DATE_MISSING), 0, 0,
	  "mode of the sub-check: the message has no Date: field" },
	{ "headers.date_missing_score", "1", CONF_SCORE, SC(H_DATE_MISSING), -100, 100,
	  "score for a message without Date:" },
	{ "headers.date_invalid", "reject", CONF_MODE, M(H_DATE_INVALID), 0, 0,
	  "mode of the sub-check: Date: is not an RFC 5322 date-time" },
	{ "headers.date_invalid_score", "1.5", CONF_SCORE, SC(H_DATE_INVALID), -100, 100,
	  "score for an unparsable Date:" },
	{ "headers.date_future", "reject", CONF_MODE, M(H_DATE_FUTURE), 0, 0,
	  "mode of the sub-check: Date: more than headers.max_future ahead" },
	{ "headers.date_future_score", "2", CONF_SCORE, SC(H_DATE_FUTURE), -100, 100,
	  "score for a Date: in the future" },
	{ "headers.date_past", "reject", CONF_MODE, M(H_DATE_PAST), 0, 0,
	  "mode of the sub-check: Date: older than headers.max_past" },
	{ "headers.date_past_score", "1", CONF_SCORE, SC(H_DATE_PAST), -100, 100,
	  "score for a Date: far in the past" },
	{ "headers.msgid_missing", "reject", CONF_MODE, M(H_MSGID_MISSING), 0, 0,
	  "mode of the sub-check: the message has no Message-ID: field" },
	{ "headers.msgid_missing_score", "1", CONF_SCORE, SC(H_MSGID_MISSING), -100, 100,
	  "score for a message without Message-ID:" },
	{ "headers.msgid_invalid", "reject", CONF_MODE, M(H_MSGID_INVALID), 0, 0,
	  "mode of the sub-check: Message-ID: is not <left@right>" },
	{ "headers.msgid_invalid_score", "1", CONF_SCORE, SC(H_MSGID_INVALID), -100, 100,
	  "score for a malformed Message-ID:" },
	{ "headers.from_missing", "reject", CONF_MODE, M(H_FROM_MISSING), 0, 0,
	  "mode of the sub-check: the message has no From: field" },
	{ "headers.from_missing_score", "5", CONF_SCORE, SC(H_FROM_MISSING), -100, 100,
	  "score for a message without From: (when not in headers.refuse)" },
	{ "headers.from_invalid", "reject", CONF_MODE, M(H_FROM_INVALID), 0, 0,
	  "mode of the sub-check: From: is not a list of mailboxes" },
	{ "headers.from_invalid_score", "3", CONF_SCORE, SC(H_FROM_INVALID), -100, 100,
	  "score for an unparsable From:" },
	{ "headers.duplicate", "reject", CONF_MODE, M(H_DUPLICATE), 0, 0,
	  "mode of the sub-check: a field allowed once (From, Date, Subject, To...) repeated" },
	{ "headers.duplicate_score", "5", CONF_SCORE, SC(H_DUPLICATE), -100, 100,
	  "score for each repeated single-instance field (when not in headers.refuse)" },
	{ "headers.eightbit", "reject", CONF_MODE, M(H_EIGHTBIT), 0, 0,
	  "mode of the sub-check: raw 8-bit header text without SMTPUTF8" },
	{ "headers.eightbit_score", "2", CONF_SCORE, SC(H_EIGHTBIT), -100, 100,
	  "score for raw 8-bit header text in a message sent without SMTPUTF8" },
	{ "headers.refuse", "from_missing duplicate", CONF_LIST, F(refuse), 0, 0,
	  "sub-checks that refuse the message (550 5.7.1) instead of adding their score" },
	{ "headers.max_future", "25h", CONF_TIME, F(max_future), 0, 365 * 86400.0,
	  "a Date: further ahead than this is in the future" },
	{ "headers.max_past", "30d", CONF_TIME, F(max_past), 0, 10 * 365 * 86400.0,
	  "a Date: older than this is in the past (0: not checked)" },
	CONF_END
};

static int headers_init(void *mconf, const struct conf *c, char *err, size_t errsize)
{
	struct headers_conf *hc = mconf;

	(void)c;
	hc->refuse_mask = 0;
	for (int i = 0; i < hc->refuse.n; i++) {
		int k;

		for (k = 0; k < H_COUNT; k++)
			if (strcmp(hc->refuse.v[i], hsub_name[k]) == 0)
				break;
		if (k == H_COUNT) {
			snprintf(err, errsize, "headers.refuse: unknown sub-check '%.60s'",
			         hc->refuse.v[i]);
			return -1;
		}
		hc->refuse_mask |= 1u << k;
	}
	return 0;
}

/* One sub-check fired: refuse or score, in the sub-check's mode.  what is
 * built by us, never network text. */
static void fire(const struct check_ctx *cx, struct verdicts *out, enum hsub k, const char *what)
{
	const struct headers_conf *hc = cx->mconf;
	char sym[48];

	snprintf(sym, sizeof(sym), "headers.%s", hsub_name[k]);
	if (hc->refuse_mask & (1u << k))
		verdict_reject(out, hc->mode[k], sym, "550", "5.7.1",
		               "Message header not RFC 5322 compliant: %s", what);
	else if (hc->score[k] != 0)
		verdict_score(out, hc->mode[k], sym, hc->score[k], "%s", what);
}

static const char *const single_fields[] = {
	"Date", "From",       "Sender",      "Reply-To",   "To",      "Cc",
	"Bcc",  "Message-ID", "In-Reply-To", "References", "Subject",
};

static void check_date(const struct check_ctx *cx, struct verdicts *out)
{
	const struct headers_conf *hc = cx->mconf;
	time_t t, now = clock_now();

	if (rfc5322_date(cx->hdr_value, &t) < 0) {
		fire(cx, out, H_DATE_INVALID, "Date: is not a valid date");
		return;
	}
	if (t > now && (long long)(t - now) > hc->max_future)
		fire(cx, out, H_DATE_FUTURE, "Date: is in the future");
	else if (hc->max_past > 0 && t < now && (long long)(now - t) > hc->max_past)
		fire(cx, out, H_DATE_PAST, "Date: is too old");
}

static int headers_header(const struct check_ctx *cx, struct verdicts *out)
{
	const char *name = cx->hdr_name;

	if (cx->hdr_index == 2) {
		for (size_t i = 0; i < ARRAY_SIZE(single_fields); i++)
			if (strcasecmp(name, single_fields[i]) == 0) {
				char what[80];

				snprintf(what, sizeof(what), "more than one %s: field",
				         single_fields[i]);
				fire(cx, out, H_DUPLICATE, what);
				break;
			}
		return CHECK_DONE;
	}
	if (cx->hdr_index != 1)
		return CHECK_DONE;
	if (strcasecmp(name, "Date") == 0) {
		check_date(cx, out);
	} else if (strcasecmp(name, "Message-ID") == 0) {
		if (!rfc5322_msgid(cx->hdr_value))
			fire(cx, out, H_MSGID_INVALID, "Message-ID: is malformed");
	} else if (strcasecmp(name, "From") == 0) {
		char dom[1][RFC5322_DOMAIN_MAX + 1];

		if (rfc5322_mailboxes(cx->hdr_value, dom, 1) < 1)
			fire(cx, out, H_FROM_INVALID, "From: is not a valid address");
	}
	return CHECK_DONE;
}

static int headers_eoh(const struct check_ctx *cx, struct verdicts *out)
{
	const struct txn *t = cx->txn;

	if (engine_header_count(t, "From") == 0)
		fire(cx, out, H_FROM_MISSING, "no From: field");
	if (engine_header_count(t, "Date") == 0)
		fire(cx, out, H_DATE_MISSING, "no Date: field");
	if (engine_header_count(t, "Message-ID") == 0)
		fire(cx, out, H_MSGID_MISSING, "no Message-ID: field");
	if (t->hdr_8bit > 0 && !t->smtputf8)
		fire(cx, out, H_EIGHTBIT, "raw 8-bit text in a header field without SMTPUTF8");
	return CHECK_DONE;
}

const struct check_module check_headers = {
	.name = "headers",
	.doc = "header plausibility: Date, Message-ID, From, repeated fields, 8-bit text",
	.params = headers_params,
	.conf_size = sizeof(struct headers_conf),
	.default_mode = "reject",
	.default_on_error = "skip",
	.init = headers_init,
	.hook = {
		[STAGE_HEADER] = headers_header,
		[STAGE_EOH] = headers_eoh,
	},
};
