/* lib/checks/batv.c - BATV: sign our envelope senders, take only the
 * bounces that answer them
 *
 * At end of DATA (never earlier: a sender verification callout, MAIL
 * FROM:<> RCPT QUIT, must always get its 250 at RCPT):
 *  - signing: mail from trusted_networks or an authenticated client whose
 *    envelope sender is in batv.domains leaves with the sender
 *    prvs=KDDDHHHHHH=local@domain (lib/batv.h has the exact format).  <>,
 *    a sender that is already tagged, a quoted or too long local part, and
 *    senders of other domains are left alone;
 *  - verifying: a recipient in batv.domains with a tag whose syntax is
 *    valid is rewritten to the untagged address (for any mail: a reply to
 *    an envelope sender is delivered too).  A bounce (null sender, or a
 *    sender whose local part is in batv.bounce_senders) must carry a valid,
 *    unexpired tag on every such recipient that is not postmaster@/abuse@;
 *    otherwise it answers mail we never sent, and is refused with 550 5.7.1
 *    naming the reason (sub-checks batv.missing, batv.invalid,
 *    batv.expired), or scored batv.score when that is above 0.
 * The joe-job switch (portcullisctl bounce mode, lib/bounce.h) overrides
 * the three sub-check modes while it is set.  The check also runs, only to
 * sign and untag, for whitelisted and trusted mail (rewrites_envelope).
 */
#include "batv.h"
#include "bounce.h"
#include "check.h"
#include "engine.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

struct batv_conf {
	struct strlist domains;
	char *key_file;
	long valid_days;
	int sign;
	struct strlist bounce_senders;
	enum mode missing;
	enum mode invalid;
	enum mode expired;
	double score;
	struct batv_keys keys; /* read by init */
};

#define F(x) offsetof(struct batv_conf, x)
static const struct conf_param batv_params[] = {
	{ "batv.domains", "", CONF_LIST, F(domains), 0, 0,
	  "our domains: senders signed, bounces to them verified" },
	{ "batv.key_file", "", CONF_STR, F(key_file), 0, 0,
	  "file of \"K SECRET\" lines: the first key signs, all verify" },
	{ "batv.valid_days", "7", CONF_INT, F(valid_days), 1, 365,
	  "days a tag stays valid (bounces may come days later)" },
	{ "batv.sign", "yes", CONF_BOOL, F(sign), 0, 0,
	  "sign the senders of trusted and authenticated mail" },
	{ "batv.bounce_senders", "", CONF_LIST, F(bounce_senders), 0, 0,
	  "local parts of senders judged like <> (e.g. MAILER-DAEMON, postmaster)" },
	{ "batv.missing", "reject", CONF_MODE, F(missing), 0, 0,
	  "a bounce to an untagged address of batv.domains" },
	{ "batv.invalid", "reject", CONF_MODE, F(invalid), 0, 0,
	  "a bounce to a forged tag (bad syntax, unknown key, wrong HMAC)" },
	{ "batv.expired", "reject", CONF_MODE, F(expired), 0, 0,
	  "a bounce to a tag older than batv.valid_days" },
	{ "batv.score", "0", CONF_SCORE, F(score), 0, 1000,
	  "above 0: an unwanted bounce adds this score instead of being refused" },
	CONF_END
};

static int batv_init(void *mconf, const struct conf *c, char *err, size_t errsize)
{
	struct batv_conf *bc = mconf;
	char why[400];
	struct stat st;

	(void)c;
	if (bc->domains.n == 0) {
		snprintf(err, errsize,
		         "batv.domains: empty: name the domains whose senders are signed");
		return -1;
	}
	for (int i = 0; i < bc->domains.n; i++)
		str_lower(bc->domains.v[i], strlen(bc->domains.v[i]) + 1, bc->domains.v[i]);
	if (bc->key_file[0] == '\0') {
		snprintf(err, errsize, "batv.key_file: not set");
		return -1;
	}
	if (batv_keys_load(bc->key_file, &bc->keys, why, sizeof(why)) < 0) {
		snprintf(err, errsize, "batv.key_file: %s", why);
		return -1;
	}
	/* Whoever reads the keys can sign bounces that we would accept. */
	if (stat(bc->key_file, &st) == 0 && (st.st_mode & S_IROTH))
		log_msg(LOG_LVL_WARN, "batv.key_file %s is readable by every user: chmod o-r it",
		        bc->key_file);
	return 0;
}

static void batv_fini(void *mconf)
{
	struct batv_conf *bc = mconf;

	memset(&bc->keys, 0, sizeof(bc->keys));
}

static int our_domain(const struct batv_conf *bc, const char *domain)
{
	for (int i = 0; i < bc->domains.n; i++)
		if (strcasecmp(domain, bc->domains.v[i]) == 0)
			return 1;
	return 0;
}

/* Null sender, or a sender batv.bounce_senders names. */
static int is_bounce(const struct batv_conf *bc, const struct mailaddr *s)
{
	if (s->flags & ADDR_NULL)
		return 1;
	for (int i = 0; i < bc->bounce_senders.n; i++)
		if (strcasecmp(s->local, bc->bounce_senders.v[i]) == 0)
			return 1;
	return 0;
}

static void sign(const struct check_ctx *cx, const struct batv_conf *bc, long today,
                 struct verdicts *out)
{
	const struct mailaddr *s = &cx->txn->sender;
	char tagged[ADDR_MAX + 1];

	if (!bc->sign || !(cx->conn->trusted || cx->txn->auth_authen[0]))
		return;
	if (s->flags & (ADDR_NULL | ADDR_BAD_SYNTAX | ADDR_NO_DOMAIN | ADDR_QUOTED | ADDR_TOO_LONG |
	                ADDR_DOMAIN_LITERAL) ||
	    !our_domain(bc, s->domain) || batv_is_tagged(s->local))
		return;
	if (batv_sign(&bc->keys, s->full, today, (int)bc->valid_days, tagged, sizeof(tagged)) == 0)
		verdict_change_sender(out, tagged);
	else
		log_msg(LOG_LVL_INFO, "ref=%s batv: sender not signed (local part too long)",
		        check_ref(cx));
}

static int batv_eom(const struct check_ctx *cx, struct verdicts *out)
{
	const struct batv_conf *bc = cx->mconf;
	const struct txn *t = cx->txn;
	long today = batv_day(clock_now());
	int bounce = is_bounce(bc, &t->sender), genuine = 0, sw;
	enum batv_result worst = BATV_VALID;
	const struct rcpt *bad = NULL;
	char orig[ADDR_MAX + 1];
	enum mode m;

	sign(cx, bc, today, out);
	for (const struct rcpt *rc = t->rcpts; rc; rc = rc->next) {
		enum batv_result r;

		if (rc->outcome != RCPT_ACCEPTED || !our_domain(bc, rc->addr.domain) ||
		    (rc->addr.flags & (ADDR_BAD_SYNTAX | ADDR_TOO_LONG)))
			continue;
		r = batv_check(&bc->keys, rc->addr.full, today, (int)bc->valid_days, orig,
		               sizeof(orig));
		/* Untag whatever the verdict: if the message is refused the
		 * change is never applied, and in monitor mode it reaches
		 * the mailbox it was meant for. */
		if (orig[0])
			verdict_replace_rcpt(out, rc->addr.full, orig);
		if (!bounce || rc->whitelisted)
			continue;
		if (r == BATV_VALID) {
			genuine = 1;
		} else if (bad == NULL) {
			bad = rc;
			worst = r;
		}
	}
	if (cx->skip_whitelisted || !bounce || (bad == NULL && !genuine))
		return CHECK_DONE;
	if (bad == NULL) {
		metrics_bounce("batv", "genuine");
		return CHECK_DONE;
	}
	metrics_bounce("batv", "unwanted");
	m = worst == BATV_UNTAGGED  ? bc->missing
	    : worst == BATV_INVALID ? bc->invalid
	                            : bc->expired;
	if ((sw = bounce_switch_get(cx->store)) >= 0 && m != MODE_OFF)
		m = (enum mode)sw;
	{
		char sym[32];
		const char *why = worst == BATV_UNTAGGED  ? "carries no BATV tag"
		                  : worst == BATV_INVALID ? "has an invalid (forged) BATV tag"
		                                          : "has an expired BATV tag";

		snprintf(sym, sizeof(sym), "batv.%s", batv_result_name(worst));
		if (bc->score > 0)
			verdict_score(out, m, sym, bc->score, "Bounce to <%.100s>: the address %s",
			              bad->addr.full, why);
		else
			verdict_reject(out, m, sym, "550", "5.7.1",
			               "Bounce not accepted: <%.100s> %s, so this answers "
			               "mail we did not send",
			               bad->addr.full, why);
	}
	return CHECK_DONE;
}

const struct batv_keys *batv_conf_keys(const struct conf *c, long *valid_days)
{
	int idx = check_find("batv");

	for (int i = 0; idx >= 0 && i < c->norder; i++)
		if (c->order[i] == idx) {
			const struct batv_conf *bc = c->mod[idx].data;

			*valid_days = bc->valid_days;
			return &bc->keys;
		}
	return NULL;
}

const struct check_module check_batv = {
	.name = "batv",
	.doc = "BATV: sign our envelope senders, refuse bounces to unsigned addresses",
	.params = batv_params,
	.conf_size = sizeof(struct batv_conf),
	.default_mode = "reject",
	.default_on_error = "defer",
	.rewrites_envelope = 1,
	.init = batv_init,
	.fini = batv_fini,
	.hook = {
		[STAGE_EOM] = batv_eom,
	},
};
