/* lib/checks/envelope.c - MAIL FROM / RCPT TO plausibility
 *
 * Sub-checks, each with its own mode:
 *   envelope.sender_syntax     MAIL FROM is not an RFC 5321 reverse-path
 *   envelope.sender_non_fqdn   sender domain is not fully qualified
 *   envelope.rcpt_syntax       RCPT TO is not an RFC 5321 forward-path
 *   envelope.rcpt_non_fqdn     recipient domain is not fully qualified
 *   envelope.too_many_rcpts    more than envelope.max_rcpts recipients:
 *                              always a temporary 452 4.5.3 (RFC 5321
 *                              4.5.3.1.10), the client sends the rest later
 *   envelope.multi_rcpt_bounce null sender with more than one recipient
 *                              (a real bounce has exactly one)
 * "<postmaster>" without a domain is valid (RFC 5321 4.1.1.3).  The address
 * is parsed once by addr_parse(); this module only reads the flags.
 */
#include "check.h"
#include "engine.h"

#include <stddef.h>

struct envelope_conf {
	enum mode sender_syntax;
	enum mode sender_non_fqdn;
	enum mode rcpt_syntax;
	enum mode rcpt_non_fqdn;
	enum mode too_many_rcpts;
	enum mode multi_rcpt_bounce;
	long max_rcpts;
	int allow_no_brackets;
};

#define F(x) offsetof(struct envelope_conf, x)
static const struct conf_param envelope_params[] = {
	{ "envelope.sender_syntax", "reject", CONF_MODE, F(sender_syntax), 0, 0,
	  "MAIL FROM address is not valid RFC 5321 syntax" },
	{ "envelope.sender_non_fqdn", "reject", CONF_MODE, F(sender_non_fqdn), 0, 0,
	  "sender domain is not a fully qualified domain name" },
	{ "envelope.rcpt_syntax", "reject", CONF_MODE, F(rcpt_syntax), 0, 0,
	  "RCPT TO address is not valid RFC 5321 syntax" },
	{ "envelope.rcpt_non_fqdn", "reject", CONF_MODE, F(rcpt_non_fqdn), 0, 0,
	  "recipient domain is not a fully qualified domain name" },
	{ "envelope.too_many_rcpts", "defer", CONF_MODE, F(too_many_rcpts), 0, 0,
	  "more recipients than envelope.max_rcpts (answered 452 4.5.3)" },
	{ "envelope.max_rcpts", "1000", CONF_INT, F(max_rcpts), 1, 100000,
	  "recipients accepted per message" },
	{ "envelope.multi_rcpt_bounce", "reject", CONF_MODE, F(multi_rcpt_bounce), 0, 0,
	  "null sender (bounce) with more than one recipient" },
	{ "envelope.allow_no_brackets", "no", CONF_BOOL, F(allow_no_brackets), 0, 0,
	  "accept MAIL FROM:user@domain without <angle brackets>" },
	CONF_END
};

/* The syntax and FQDN sub-checks for one address; 1 if one fired. */
static int check_addr(const struct envelope_conf *ec, const struct mailaddr *a, int sender,
                      struct verdicts *out)
{
	const char *who = sender ? "Sender" : "Recipient";
	const char *xbad = sender ? "5.1.7" : "5.1.3";

	if ((a->flags & ADDR_BAD_SYNTAX) ||
	    ((a->flags & ADDR_NO_BRACKETS) && !ec->allow_no_brackets)) {
		verdict_reject(out, sender ? ec->sender_syntax : ec->rcpt_syntax,
		               sender ? "envelope.sender_syntax" : "envelope.rcpt_syntax", "550",
		               xbad, "%s address <%.100s> rejected: %s", who, a->full,
		               a->reason ? a->reason : "address must be in <angle brackets>");
		return 1;
	}
	if ((a->flags & (ADDR_NON_FQDN | ADDR_NO_DOMAIN)) && !(a->flags & ADDR_NULL)) {
		verdict_reject(
		    out, sender ? ec->sender_non_fqdn : ec->rcpt_non_fqdn,
		    sender ? "envelope.sender_non_fqdn" : "envelope.rcpt_non_fqdn", "550", "5.5.2",
		    "%s address <%.100s> rejected: need fully-qualified address", who, a->full);
		return 1;
	}
	return 0;
}

static int envelope_mail(const struct check_ctx *cx, struct verdicts *out)
{
	const struct mailaddr *a = &cx->txn->sender;

	/* A null sender is valid; "<postmaster>" is only valid as recipient. */
	if (a->flags & ADDR_NULL)
		return CHECK_DONE;
	check_addr(cx->mconf, a, 1, out);
	return CHECK_DONE;
}

static int envelope_rcpt(const struct check_ctx *cx, struct verdicts *out)
{
	const struct envelope_conf *ec = cx->mconf;
	const struct txn *t = cx->txn;
	const struct mailaddr *a = &cx->rcpt->addr;

	if (t->naccepted >= ec->max_rcpts) {
		/* Temporary by RFC 5321 whatever the mode: the client retries the
		 * remaining recipients in a new transaction. */
		verdict_defer(out, ec->too_many_rcpts, "envelope.too_many_rcpts", "452", "4.5.3",
		              "Too many recipients (limit %ld per message)", ec->max_rcpts);
		return CHECK_DONE;
	}
	if (a->flags & ADDR_NULL) {
		verdict_reject(out, ec->rcpt_syntax, "envelope.rcpt_syntax", "550", "5.1.3",
		               "Recipient address <> rejected: empty address");
		return CHECK_DONE;
	}
	if (check_addr(ec, a, 0, out))
		return CHECK_DONE;
	if ((t->sender.flags & ADDR_NULL) && t->naccepted >= 1)
		verdict_reject(out, ec->multi_rcpt_bounce, "envelope.multi_rcpt_bounce", "550",
		               "5.5.3", "Bounce (null sender) with more than one recipient");
	return CHECK_DONE;
}

const struct check_module check_envelope = {
	.name = "envelope",
	.doc = "RFC 5321 envelope address checks",
	.params = envelope_params,
	.conf_size = sizeof(struct envelope_conf),
	.default_mode = "reject",
	.default_on_error = "skip",
	.hook = {
		[STAGE_MAIL] = envelope_mail,
		[STAGE_RCPT] = envelope_rcpt,
	},
};
