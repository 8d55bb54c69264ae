/* lib/checks/whitelist.c - the admin whitelist kept in the store
 *
 *   CONNECT  client address, network, or verified host name pattern
 *            -> the connection    (symbols whitelist.client / .network / .host)
 *   MAIL     sender address, or sender domain and the domains below it
 *            -> the transaction   (whitelist.sender / whitelist.domain)
 *   RCPT     that recipient only, the opt-out (whitelist.recipient)
 * Entries are added with `portcullisctl whitelist add` and obeyed at the
 * next lookup, without a reload (lib/store/wlist.h: an in-memory copy refreshed
 * when the file changed).  It should be first in `checks`: an OK verdict
 * skips the checks after it in its scope.
 *
 * Errors: a store failure uses the last copy read; with none the hook
 * returns CHECK_RETRY, and the default on_error = skip then lets the other
 * checks decide as if nothing were whitelisted.  So a broken whitelist
 * neither lets mail in that the other checks refuse nor blocks mail.
 * Thread-safe (lib/wlist is).  Reads only: also in a dry run.
 */
#include "check.h"
#include "engine.h"
#include "util.h"
#include "wlist.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* OK with the matched kind as symbol: "whitelist.network" for a match
 * "network:192.0.2.0/24". */
static void ok(struct verdicts *out, const char *match)
{
	char symbol[48];
	size_t n = strcspn(match, ":");

	snprintf(symbol, sizeof(symbol), "whitelist.%.*s", (int)n, match);
	verdict_ok(out, symbol);
}

static int wl_connect(const struct check_ctx *cx, struct verdicts *out)
{
	char match[WLIST_KEY_MAX + 1];
	int rc;

	if (cx->store == NULL)
		return CHECK_DONE;
	rc = wlist_match_client(cx->store, &cx->conn->client_ip, cx->conn->client_name, match,
	                        sizeof(match));
	if (rc < 0)
		return check_retry(out, "whitelist store unreadable");
	if (rc > 0)
		ok(out, match);
	return CHECK_DONE;
}

static int wl_mail(const struct check_ctx *cx, struct verdicts *out)
{
	char match[WLIST_KEY_MAX + 1];
	int rc;

	if (cx->store == NULL)
		return CHECK_DONE;
	rc = wlist_match_sender(cx->store, &cx->txn->sender, match, sizeof(match));
	if (rc < 0)
		return check_retry(out, "whitelist store unreadable");
	if (rc > 0)
		ok(out, match);
	return CHECK_DONE;
}

static int wl_rcpt(const struct check_ctx *cx, struct verdicts *out)
{
	char match[WLIST_KEY_MAX + 1];
	int rc;

	if (cx->store == NULL)
		return CHECK_DONE;
	rc = wlist_match_rcpt(cx->store, &cx->rcpt->addr, match, sizeof(match));
	if (rc < 0)
		return check_retry(out, "whitelist store unreadable");
	if (rc > 0)
		ok(out, match);
	return CHECK_DONE;
}

/* No settings of its own (only whitelist.mode and whitelist.on_error);
 * the struct exists because every module has one. */
struct whitelist_conf {
	int unused;
};

static const struct conf_param whitelist_params[] = { CONF_END };

const struct check_module check_whitelist = {
	.name = "whitelist",
	.doc = "admin whitelist in the store (portcullisctl whitelist add)",
	.params = whitelist_params,
	.conf_size = sizeof(struct whitelist_conf),
	.default_mode = "reject",
	.default_on_error = "skip",
	.hook = {
		[STAGE_CONNECT] = wl_connect,
		[STAGE_MAIL] = wl_mail,
		[STAGE_RCPT] = wl_rcpt,
	},
};
