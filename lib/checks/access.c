/* lib/checks/access.c - Postfix-style access tables (check_*_access)
 *
 *   access.client       client address       cidr:, texthash:, pcre:
 *   access.client_name  client host name     pcre:, texthash:
 *   access.helo         HELO name            pcre:, texthash:
 *   access.sender       MAIL FROM address    texthash: (address, then
 *                       domain and parent domains, then "local@"), pcre:
 *   access.recipient    RCPT TO address      same lookup order as sender
 * Each parameter is a list of tables searched in turn; the first entry that
 * matches decides.  Actions: OK whitelists the scope (client/client_name/
 * helo: the connection, sender: the message, recipient: that recipient),
 * REJECT [text] and DEFER [text] fail with the entry's text, SCORE n adds n,
 * DUNNO stops the search with no opinion.  Tables are loaded with the
 * configuration snapshot, so a broken table fails the (re)load with
 * FILE:LINE.  Thread-safe: tables are immutable.
 */
#include "check.h"
#include "engine.h"
#include "util.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

struct access_conf {
	struct maplist client;
	struct maplist client_name;
	struct maplist helo;
	struct maplist sender;
	struct maplist recipient;
};

#define F(x) offsetof(struct access_conf, x)
static const struct conf_param access_params[] = {
	{ "access.client", "", CONF_MAPS, F(client), 0, 0,
	  "tables keyed by client IP address (cidr:, texthash:, pcre:)" },
	{ "access.client_name", "", CONF_MAPS, F(client_name), 0, 0,
	  "tables keyed by verified client host name (pcre:, texthash:)" },
	{ "access.helo", "", CONF_MAPS, F(helo), 0, 0,
	  "tables keyed by HELO name (pcre:, texthash:)" },
	{ "access.sender", "", CONF_MAPS, F(sender), 0, 0,
	  "tables keyed by sender address, domain, parent domains, local@" },
	{ "access.recipient", "", CONF_MAPS, F(recipient), 0, 0,
	  "tables keyed by recipient address, domain, parent domains, local@" },
	CONF_END
};

/* Turn a table entry into a verdict.  what names the looked-up thing for
 * the reply ("Client host 192.0.2.1"); key is the raw value for the log. */
static void apply(const struct table_result *res, const char *symbol, const char *what,
                  struct verdicts *out)
{
	switch (res->action) {
	case TA_DUNNO: break;
	case TA_OK: verdict_ok(out, symbol); break;
	case TA_SCORE: verdict_score(out, MODE_REJECT, symbol, res->score, "%s", what); break;
	case TA_REJECT:
		verdict_reject(out, MODE_REJECT, symbol, "550", "5.7.1", "%s rejected: %s", what,
		               res->text ? res->text : "Access denied");
		break;
	case TA_DEFER:
		verdict_defer(out, MODE_REJECT, symbol, "450", "4.7.1", "%s deferred: %s", what,
		              res->text ? res->text : "Access temporarily denied");
		break;
	}
}

static int access_connect(const struct check_ctx *cx, struct verdicts *out)
{
	const struct access_conf *ac = cx->mconf;
	const struct conn *c = cx->conn;
	struct table_result res;
	char what[HOSTNAME_MAX + 64];

	if (c->client_ip.family && maplist_lookup_ip(&ac->client, &c->client_ip, &res)) {
		snprintf(what, sizeof(what), "Client host %s", c->client_addr);
		apply(&res, "access.client", what, out);
		if (res.action != TA_DUNNO)
			return CHECK_DONE;
	}
	if (strcmp(c->client_name, "unknown") != 0 &&
	    maplist_lookup_str(&ac->client_name, c->client_name, &res)) {
		snprintf(what, sizeof(what), "Client host %.100s[%s]", c->client_name,
		         c->client_addr);
		apply(&res, "access.client_name", what, out);
	}
	return CHECK_DONE;
}

static int access_helo(const struct check_ctx *cx, struct verdicts *out)
{
	const struct access_conf *ac = cx->mconf;
	struct table_result res;
	char what[HELO_MAX + 32];

	if (maplist_lookup_str(&ac->helo, cx->conn->helo, &res)) {
		snprintf(what, sizeof(what), "HELO %.100s", cx->conn->helo);
		apply(&res, "access.helo", what, out);
	}
	return CHECK_DONE;
}

static int access_mail(const struct check_ctx *cx, struct verdicts *out)
{
	const struct access_conf *ac = cx->mconf;
	struct table_result res;
	char what[ADDR_MAX + 32];

	if (maplist_lookup_addr(&ac->sender, &cx->txn->sender, &res)) {
		snprintf(what, sizeof(what), "Sender address <%.100s>", cx->txn->sender.full);
		apply(&res, "access.sender", what, out);
	}
	return CHECK_DONE;
}

static int access_rcpt(const struct check_ctx *cx, struct verdicts *out)
{
	const struct access_conf *ac = cx->mconf;
	struct table_result res;
	char what[ADDR_MAX + 32];

	if (maplist_lookup_addr(&ac->recipient, &cx->rcpt->addr, &res)) {
		snprintf(what, sizeof(what), "Recipient address <%.100s>", cx->rcpt->addr.full);
		apply(&res, "access.recipient", what, out);
	}
	return CHECK_DONE;
}

const struct check_module check_access = {
	.name = "access",
	.doc = "Postfix-style access tables for client, HELO, sender, recipient",
	.params = access_params,
	.conf_size = sizeof(struct access_conf),
	.default_mode = "reject",
	.default_on_error = "defer",
	.hook = {
		[STAGE_CONNECT] = access_connect,
		[STAGE_HELO] = access_helo,
		[STAGE_MAIL] = access_mail,
		[STAGE_RCPT] = access_rcpt,
	},
};
