/* lib/checks/bounce.c - bounces and auto-replies of mail we never sent
 *
 * For sites that cannot sign everything with BATV (mail that leaves
 * through other relays).  At end of DATA only (a sender verification
 * callout, MAIL FROM:<> RCPT QUIT, never sees a refusal), a null-sender
 * message (or one from a local part in bounce.senders) is read
 * (lib/bounce.h) and judged:
 *  - it quotes a Received line of one of bounce.relays (our outgoing
 *    hosts: names or networks) or a Message-ID in bounce.domains: it
 *    answers mail we sent, it passes;
 *  - a delivery status notification that does not: bounce.unwanted,
 *    refused with 550 5.7.1 (or scored bounce.score when above 0);
 *  - an auto-reply / challenge / "virus found" notice that does not:
 *    scored bounce.auto_reply_score (not refused, by default);
 *  - other null-sender mail that does not: scored bounce.other_score.
 * The joe-job switch (portcullisctl bounce mode reject|monitor, kept in
 * the store) overrides this while it is set: reject refuses unwanted
 * bounces and auto-replies alike, monitor only logs them.
 * When the batv check is enabled and a recipient carries a prvs= tag, the
 * batv check judges the message and this one stays out.  Bounces whose
 * only recipients are postmaster@, abuse@ or whitelisted are not judged.
 */
#include "bounce.h"
#include "batv.h"
#include "check.h"
#include "engine.h"
#include "log.h"
#include "message.h"
#include "metrics.h"
#include "util.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct bounce_conf {
	struct strlist relays;
	struct strlist domains;
	struct strlist senders;
	enum mode unwanted;
	double score;
	double auto_reply_score;
	double other_score;
	/* built by init from relays */
	struct strlist names;
	struct netlist nets;
};

#define F(x) offsetof(struct bounce_conf, x)
static const struct conf_param bounce_params[] = {
	{ "bounce.relays", "", CONF_LIST, F(relays), 0, 0,
	  "our outgoing hosts (names or networks) as quoted Received lines show them" },
	{ "bounce.domains", "", CONF_LIST, F(domains), 0, 0,
	  "domains (and their subdomains) of the Message-IDs our mail carries" },
	{ "bounce.senders", "", CONF_LIST, F(senders), 0, 0,
	  "local parts of senders judged like <> (e.g. MAILER-DAEMON)" },
	{ "bounce.unwanted", "reject", CONF_MODE, F(unwanted), 0, 0,
	  "a bounce (DSN) of a message we did not send (550 5.7.1)" },
	{ "bounce.score", "0", CONF_SCORE, F(score), 0, 1000,
	  "above 0: an unwanted bounce adds this score instead of being refused" },
	{ "bounce.auto_reply_score", "3", CONF_SCORE, F(auto_reply_score), 0, 1000,
	  "score of an auto-reply or challenge that answers mail we did not send" },
	{ "bounce.other_score", "0", CONF_SCORE, F(other_score), 0, 1000,
	  "score of other null-sender mail that answers mail we did not send" },
	CONF_END
};

static void bounce_fini(void *mconf);

static int bounce_init(void *mconf, const struct conf *c, char *err, size_t errsize)
{
	struct bounce_conf *bc = mconf;

	(void)c;
	if (bc->relays.n == 0 && bc->domains.n == 0) {
		snprintf(err, errsize,
		         "bounce.relays: bounce.relays and bounce.domains are both empty: "
		         "nothing would tell our mail");
		return -1;
	}
	for (int i = 0; i < bc->relays.n; i++) {
		struct net n;

		if (ip_parse_cidr(bc->relays.v[i], &n.ip, &n.len) == 0) {
			bc->nets.v =
			    xrealloc(bc->nets.v, sizeof(*bc->nets.v) * (size_t)(bc->nets.n + 1));
			bc->nets.v[bc->nets.n++] = n;
		} else if (domain_valid(bc->relays.v[i])) {
			bc->names.v =
			    xrealloc(bc->names.v, sizeof(*bc->names.v) * (size_t)(bc->names.n + 1));
			bc->names.v[bc->names.n++] = bc->relays.v[i];
		} else {
			snprintf(err, errsize,
			         "bounce.relays: '%.100s' is neither a network nor a name",
			         bc->relays.v[i]);
			bounce_fini(bc); /* fini is not called when init fails */
			return -1;
		}
	}
	for (int i = 0; i < bc->domains.n; i++)
		if (!domain_valid(bc->domains.v[i])) {
			snprintf(err, errsize, "bounce.domains: '%.100s' is not a domain",
			         bc->domains.v[i]);
			bounce_fini(bc);
			return -1;
		}
	return 0;
}

static void bounce_fini(void *mconf)
{
	struct bounce_conf *bc = mconf;

	free(bc->names.v); /* the strings belong to relays */
	free(bc->nets.v);
	bc->names.v = NULL;
	bc->nets.v = NULL;
	bc->names.n = bc->nets.n = 0;
}

static int is_bounce(const struct bounce_conf *bc, const struct mailaddr *s)
{
	if (s->flags & ADDR_NULL)
		return 1;
	for (int i = 0; i < bc->senders.n; i++)
		if (strcasecmp(s->local, bc->senders.v[i]) == 0)
			return 1;
	return 0;
}

/* The batv check is enabled and a recipient carries a tag: it judges. */
static int batv_judges(const struct check_ctx *cx)
{
	int idx = check_find("batv"), on = 0;

	for (int i = 0; idx >= 0 && i < cx->conf->norder; i++)
		on |= cx->conf->order[i] == idx && cx->conf->mod[idx].mode != MODE_OFF;
	if (!on)
		return 0;
	for (const struct rcpt *rc = cx->txn->rcpts; rc; rc = rc->next)
		if (rc->outcome == RCPT_ACCEPTED && batv_is_tagged(rc->addr.local))
			return 1;
	return 0;
}

/* An accepted recipient that is not postmaster@/abuse@ nor whitelisted:
 * those stay reachable for every bounce (RFC 5321 4.5.1). */
static int judged_rcpt(const struct check_ctx *cx)
{
	for (const struct rcpt *rc = cx->txn->rcpts; rc; rc = rc->next)
		if (rc->outcome == RCPT_ACCEPTED && !rc->whitelisted)
			return 1;
	return 0;
}

static int bounce_eom(const struct check_ctx *cx, struct verdicts *out)
{
	const struct bounce_conf *bc = cx->mconf;
	struct bounce_policy pol = { &bc->names, &bc->nets, &bc->domains };
	struct bounce_info info;
	const unsigned char *data;
	size_t len;
	int sw;

	if (!is_bounce(bc, &cx->txn->sender) || cx->msg == NULL || batv_judges(cx) ||
	    !judged_rcpt(cx))
		return CHECK_DONE;
	data = message_data(cx->msg, &len);
	if (data == NULL)
		return check_retry(out, "message not readable: %s", cx->msg->error);
	bounce_parse(data, len, &pol, &info);
	if (info.ours) {
		char ev[200];

		metrics_bounce("bounce", "genuine");
		log_msg(LOG_LVL_DEBUG, "ref=%s bounce: answers our mail (%s)", check_ref(cx),
		        enc_log(ev, sizeof(ev), info.evidence, 160));
		return CHECK_DONE;
	}
	sw = bounce_switch_get(cx->store);
	if (info.dsn) {
		enum mode m = sw >= 0 && bc->unwanted != MODE_OFF ? (enum mode)sw : bc->unwanted;

		metrics_bounce("bounce", "unwanted");
		if (bc->score > 0 && sw != MODE_REJECT)
			verdict_score(out, m, "bounce.unwanted", bc->score,
			              "Bounce of a message we did not send");
		else
			verdict_reject(out, m, "bounce.unwanted", "550", "5.7.1",
			               "Bounce not accepted: it answers a message we did not send "
			               "(no Received line or Message-ID of ours in it)");
	} else if (info.auto_reply) {
		metrics_bounce("bounce", "auto_reply");
		if (sw == MODE_REJECT)
			verdict_reject(out, MODE_REJECT, "bounce.auto_reply", "550", "5.7.1",
			               "%s not accepted: it answers a message we did not send",
			               info.virus_notice ? "Virus notice" : "Auto-reply");
		else if (bc->auto_reply_score > 0)
			verdict_score(out, sw == MODE_MONITOR ? MODE_MONITOR : MODE_REJECT,
			              "bounce.auto_reply", bc->auto_reply_score,
			              "Auto-reply to a message we did not send");
	} else {
		metrics_bounce("bounce", "other");
		if (bc->other_score > 0)
			verdict_score(out, sw == MODE_MONITOR ? MODE_MONITOR : MODE_REJECT,
			              "bounce.other", bc->other_score,
			              "Null-sender mail about a message we did not send");
	}
	return CHECK_DONE;
}

const struct check_module check_bounce = {
	.name = "bounce",
	.doc = "bounces and auto-replies of mail we never sent (backscatter)",
	.params = bounce_params,
	.conf_size = sizeof(struct bounce_conf),
	.default_mode = "reject",
	.default_on_error = "defer",
	.needs_message = 1,
	.init = bounce_init,
	.fini = bounce_fini,
	.hook = {
		[STAGE_EOM] = bounce_eom,
	},
};
