/* lib/checks/dmarc.c - DMARC (RFC 7489) for the From: domain
 *
 * At end of DATA, after spf (MAIL) and dkim (end of DATA, listed before
 * dmarc in `checks`; init refuses the other order), for each domain of the
 * From: field (RFC 7489 6.6.1: at most DMARC_DOMAINS_MAX different ones;
 * the strictest outcome counts):
 *  - policy discovery (6.6.3): _dmarc.DOMAIN TXT and, when the
 *    organizational domain (libpsl) differs, _dmarc.ORGDOMAIN TXT, asked
 *    together through lib/dns within the stage's DNS time; the record
 *    starting with "v=DMARC1" (exactly one) of the domain, else of the
 *    organizational domain;
 *  - the record is parsed by libopendmarc (p, sp, adkim, aspf, pct);
 *  - identifier alignment (3.1) is decided here with libpsl's
 *    organizational domains: with the spf check's smtp.mailfrom result and
 *    the dkim check's signature results, read from the transaction
 *    (txn->auth; no second SPF evaluation); libopendmarc's own alignment
 *    is not used because it knows organizational domains only from a file
 *    of its own, not from libpsl;
 *  - the policy applied is sp= for a subdomain whose record came from the
 *    organizational domain, else p=; pct= below 100 applies it to that
 *    share of the failing messages (the others get the next milder one).
 * Results: "dmarc=pass|fail|none|temperror|permerror (p=P sp=SP dis=D)
 * header.from=DOMAIN" for the one Authentication-Results header; on fail
 * with policy reject the sub-check dmarc.reject refuses (550 5.7.1, mode
 * of the sub-check and of the module: monitor first is possible), with
 * quarantine dmarc.quarantine_score is added (score.tag / score.reject
 * decide) and a HEADER_PREFIX-DMARC header (header_prefix) says so; none does nothing.
 * No From: field, an unparsable one: sub-check dmarc.bad_from (550
 * 5.7.1), result permerror.
 * A failed policy lookup is temperror and CHECK_RETRY (dmarc.on_error,
 * default skip: the mail is not held up because our DNS failed).
 * Forged Authentication-Results are removed here when neither spf nor
 * dkim is on (lib/authres.h).
 * Thread-safe: libpsl's context is read-only, each message has its own
 * libopendmarc context.
 */
#include "addr.h"
#include "authres.h"
#include "check.h"
#include "dmarcrep.h"
#include "dns.h"
#include "engine.h"
#include "log.h"
#include "message.h"
#include "rfc5322.h"
#include "store.h"
#include "util.h"

#include <opendmarc/dmarc.h>
#include <libpsl.h>

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DMARC_DOMAINS_MAX 4

struct dmarc_conf {
	enum mode reject;
	enum mode bad_from;
	double quarantine_score;
	double none_fail_score;
	double pass_score;
	long report_keep;
};

#define F(x) offsetof(struct dmarc_conf, x)
static const struct conf_param dmarc_params[] = {
	{ "dmarc.reject", "reject", CONF_MODE, F(reject), 0, 0,
	  "mode of the sub-check: the From: domain's policy is reject and the message fails "
	  "DMARC: 550 5.7.1" },
	{ "dmarc.bad_from", "reject", CONF_MODE, F(bad_from), 0, 0,
	  "mode of the sub-check: no From: field, or one that cannot be parsed: 550 5.7.1" },
	{ "dmarc.quarantine_score", "5", CONF_SCORE, F(quarantine_score), -100, 100,
	  "score added when the policy is quarantine and the message fails DMARC" },
	{ "dmarc.none_fail_score", "0", CONF_SCORE, F(none_fail_score), -100, 100,
	  "score added when the message fails DMARC of a domain with policy none" },
	{ "dmarc.pass_score", "0", CONF_SCORE, F(pass_score), -100, 100,
	  "score added when the message passes DMARC (negative to reward)" },
	{ "dmarc.report_keep", "7d", CONF_TIME, F(report_keep), 0, 366 * 86400.0,
	  "how long aggregate-report data is kept in the store (0: none recorded)" },
	CONF_END
};

static const psl_ctx_t *psl_ctx;

static void psl_init(void)
{
	psl_ctx_t *latest = psl_latest(NULL); /* the system's list, else the built-in one */

	psl_ctx = latest ? latest : psl_builtin();
}

/* The organizational domain of d (RFC 7489 3.2) into dst: libpsl's
 * registrable domain, or d itself when it is a public suffix. */
static void org_domain(const char *d, char *dst, size_t dstsize)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	const char *reg;

	pthread_once(&once, psl_init);
	reg = psl_ctx ? psl_registrable_domain(psl_ctx, d) : NULL;
	bcopy_str(dst, dstsize, reg ? reg : d);
}

static int dmarc_init(void *mconf, const struct conf *c, char *err, size_t errsize)
{
	int dkim = check_find("dkim"), dmarc = check_find("dmarc"), pos_dkim = -1, pos_dmarc = -1;

	(void)mconf;
	for (int i = 0; i < c->norder; i++) {
		if (c->order[i] == dkim && c->mod[dkim].mode != MODE_OFF)
			pos_dkim = i;
		if (c->order[i] == dmarc)
			pos_dmarc = i;
	}
	if (pos_dkim > pos_dmarc) {
		snprintf(err, errsize,
		         "checks: dkim must come before dmarc (dmarc uses its results)");
		return -1;
	}
	return 0;
}

/* Aligned (RFC 7489 3.1): strict = the same domain; relaxed = the same
 * organizational domain. */
static int aligned(const char *d, const char *from, int strict)
{
	char od[RFC5322_DOMAIN_MAX + 1], of[RFC5322_DOMAIN_MAX + 1];

	if (strcasecmp(d, from) == 0)
		return 1;
	if (strict)
		return 0;
	org_domain(d, od, sizeof(od));
	org_domain(from, of, sizeof(of));
	return strcasecmp(od, of) == 0;
}

/* The one DMARC record of TXT query q, or "" (none, or several: RFC 7489
 * 6.6.3 step 5 treats that as none).  -1 for a temporary failure. */
static int find_record(struct dns_batch *b, int q, char *rec, size_t recsize)
{
	enum dns_status st = q >= 0 ? dns_result_status(b, q) : DNS_NXDOMAIN;
	int found = 0;
	char txt[2048];

	rec[0] = '\0';
	if (q < 0)
		return 0; /* a name too long to exist: no record */
	if (dns_status_temporary(st))
		return -1;
	for (int j = 0; j < dns_result_count(b, q); j++) {
		long n = dns_result_text(b, q, j, txt, sizeof(txt));

		if (n < 8 || memchr(txt, '\0', (size_t)n) != NULL ||
		    strncmp(txt, "v=DMARC1", 8) != 0 ||
		    (txt[8] != ';' && txt[8] != ' ' && txt[8] != '\t' && txt[8] != '\0'))
			continue;
		if (++found == 1)
			bcopy_str(rec, recsize, txt);
	}
	if (found > 1)
		rec[0] = '\0';
	return 0;
}

/* Ask for _dmarc.DOMAIN TXT; -1 when that name is too long to exist. */
static int ask_dmarc(struct dns_batch *b, const char *domain)
{
	char name[2 * RFC5322_DOMAIN_MAX];
	int n = snprintf(name, sizeof(name), "_dmarc.%s", domain);

	if (n < 0 || (size_t)n >= sizeof(name) || n > DNS_NAME_MAX)
		return -1;
	return dns_batch_add(b, name, LDNS_RR_TYPE_TXT);
}

static char policy_char(int p)
{
	return p == DMARC_RECORD_P_REJECT ? 'r' : p == DMARC_RECORD_P_QUARANTINE ? 'q' : 'n';
}

static const char *policy_name(char p)
{
	return p == 'r' ? "reject" : p == 'q' ? "quarantine" : "none";
}

/* The evaluation of one From: domain. */
struct dmarc_eval {
	char domain[RFC5322_DOMAIN_MAX + 1];
	const char *result; /* pass fail none temperror permerror */
	char p, sp;         /* policy letters, 0 when no record */
	char dis;           /* what is applied: 'r', 'q', 'n' */
	/* for the aggregate report */
	const char *where; /* the policy domain */
	char adkim, aspf;
	int pct;
	int dkim_al, spf_al;                  /* aligned pass of each */
	const struct auth_result *dkim_shown; /* the signature reported */
};

static void evaluate(const struct check_ctx *cx, struct dns_batch *b, int q_dom, int q_org,
                     const char *org, struct dmarc_eval *ev)
{
	const struct txn *t = cx->txn;
	char rec[2048], ip[64];
	const char *where = ev->domain;
	DMARC_POLICY_T *pctx;
	int p = 0, sp = 0, adkim = 0, aspf = 0, pct = 100, pass = 0, is_sub;

	ev->p = ev->sp = 0;
	ev->dis = 'n';
	ev->where = ev->domain;
	ev->dkim_al = ev->spf_al = 0;
	ev->dkim_shown = NULL;
	if (find_record(b, q_dom, rec, sizeof(rec)) < 0) {
		ev->result = "temperror";
		return;
	}
	if (rec[0] == '\0' && strcasecmp(org, ev->domain) != 0) {
		if (find_record(b, q_org, rec, sizeof(rec)) < 0) {
			ev->result = "temperror";
			return;
		}
		where = org;
	}
	if (rec[0] == '\0') {
		ev->result = "none";
		return;
	}
	bcopy_str(ip, sizeof(ip), cx->conn->client_addr[0] ? cx->conn->client_addr : "0.0.0.0");
	pctx = opendmarc_policy_connect_init((u_char *)ip, strchr(ip, ':') != NULL);
	if (pctx == NULL) {
		ev->result = "temperror";
		return;
	}
	if (opendmarc_policy_store_dmarc(pctx, (u_char *)rec, (u_char *)where, (u_char *)org) !=
	        DMARC_PARSE_OKAY ||
	    opendmarc_policy_fetch_p(pctx, &p) != DMARC_PARSE_OKAY ||
	    p == DMARC_RECORD_P_UNSPECIFIED) {
		opendmarc_policy_connect_shutdown(pctx);
		ev->result = "permerror";
		return;
	}
	opendmarc_policy_fetch_sp(pctx, &sp);
	opendmarc_policy_fetch_adkim(pctx, &adkim);
	opendmarc_policy_fetch_aspf(pctx, &aspf);
	opendmarc_policy_fetch_pct(pctx, &pct);
	opendmarc_policy_connect_shutdown(pctx);
	ev->p = policy_char(p);
	ev->sp = sp == DMARC_RECORD_P_UNSPECIFIED ? ev->p : policy_char(sp);
	ev->where = where;
	ev->adkim = adkim == DMARC_RECORD_A_STRICT ? 's' : 'r';
	ev->aspf = aspf == DMARC_RECORD_A_STRICT ? 's' : 'r';
	ev->pct = pct;

	for (int i = 0; i < t->nauth; i++) {
		const struct auth_result *a = &t->auth[i];
		int pa = strcmp(a->result, "pass") == 0 && a->value[0];

		if (strcmp(a->method, "spf") == 0 && strcmp(a->prop, "smtp.mailfrom") == 0) {
			ev->spf_al |= pa && aligned(a->value, ev->domain, ev->aspf == 's');
		} else if (strcmp(a->method, "dkim") == 0 && strcmp(a->prop, "header.d") == 0) {
			int al = pa && aligned(a->value, ev->domain, ev->adkim == 's');

			if (ev->dkim_shown == NULL || (al && !ev->dkim_al))
				ev->dkim_shown = a;
			ev->dkim_al |= al;
		}
	}
	pass = ev->dkim_al || ev->spf_al;
	if (pass) {
		ev->result = "pass";
		return;
	}
	ev->result = "fail";
	/* sp= for a subdomain whose record is the organizational domain's */
	is_sub = where == org && strcasecmp(ev->domain, org) != 0;
	ev->dis = is_sub ? ev->sp : ev->p;
	/* pct= (6.6.4): the others get the next milder policy */
	if (pct < 100 && (pct <= 0 || (int)arc4random_uniform(100) >= pct))
		ev->dis = ev->dis == 'r' ? 'q' : 'n';
}

/* The header.s= of a dkim result's extra text, or "". */
static void selector_of(const struct auth_result *a, char *dst, size_t size)
{
	const char *s = a ? strstr(a->extra, "header.s=") : NULL;
	size_t n = 0;

	if (s)
		for (s += 9; s[n] && s[n] != ' ' && n + 1 < size; n++)
			dst[n] = s[n];
	dst[n] = '\0';
}

/* Count one evaluated domain for the aggregate report (lib/dmarcrep.h):
 * only domains with a policy; the disposition is what happened to the
 * message (dis of the decisive domain, "none" unless the module acts). */
static void record(const struct check_ctx *cx, const struct dmarc_eval *ev, char dis)
{
	const struct dmarc_conf *mc = cx->mconf;
	const struct txn *t = cx->txn;
	int idx = check_find("dmarc");
	enum mode mode = idx >= 0 ? cx->conf->mod[idx].mode : MODE_OFF;
	struct dmarcrep_row r;

	if (!ev->p || (strcmp(ev->result, "pass") != 0 && strcmp(ev->result, "fail") != 0))
		return;
	memset(&r, 0, sizeof(r));
	bcopy_str(r.policy_domain, sizeof(r.policy_domain), ev->where);
	bcopy_str(r.header_from, sizeof(r.header_from), ev->domain);
	if (!(t->sender.flags & ADDR_NULL) && domain_valid(t->sender.domain))
		str_lower(r.envelope_from, sizeof(r.envelope_from), t->sender.domain);
	bcopy_str(r.ip, sizeof(r.ip), cx->conn->client_addr[0] ? cx->conn->client_addr : "0.0.0.0");
	if (strcmp(ev->result, "fail") != 0 || mode == MODE_MONITOR ||
	    (dis == 'r' && mc->reject == MODE_MONITOR))
		dis = 'n';
	bcopy_str(r.disposition, sizeof(r.disposition), policy_name(dis));
	bcopy_str(r.dkim_aligned, sizeof(r.dkim_aligned), ev->dkim_al ? "pass" : "fail");
	bcopy_str(r.spf_aligned, sizeof(r.spf_aligned), ev->spf_al ? "pass" : "fail");
	bcopy_str(r.spf_result, sizeof(r.spf_result), "none");
	for (int i = 0; i < t->nauth; i++)
		if (strcmp(t->auth[i].method, "spf") == 0 &&
		    strcmp(t->auth[i].prop, "smtp.mailfrom") == 0)
			bcopy_str(r.spf_result, sizeof(r.spf_result), t->auth[i].result);
	if (ev->dkim_shown) {
		bcopy_str(r.dkim_domain, sizeof(r.dkim_domain), ev->dkim_shown->value);
		bcopy_str(r.dkim_result, sizeof(r.dkim_result), ev->dkim_shown->result);
		selector_of(ev->dkim_shown, r.dkim_selector, sizeof(r.dkim_selector));
	}
	r.p = ev->p;
	r.sp = ev->sp;
	r.adkim = ev->adkim;
	r.aspf = ev->aspf;
	r.pct = ev->pct;
	if (dmarcrep_record(cx->store, clock_now(), mc->report_keep, &r) < 0)
		log_msg(LOG_LVL_WARN, "ref=%s dmarc: aggregate-report data not recorded: %s",
		        check_ref(cx), store_strerror(store_last_error()));
}

static int rank(const struct dmarc_eval *ev)
{
	if (strcmp(ev->result, "fail") == 0)
		return ev->dis == 'r' ? 4 : ev->dis == 'q' ? 3 : 2;
	return 0;
}

static int dmarc_eom(const struct check_ctx *cx, struct verdicts *out)
{
	const struct dmarc_conf *mc = cx->mconf;
	char from[8][RFC5322_DOMAIN_MAX + 1], orgs[DMARC_DOMAINS_MAX][RFC5322_DOMAIN_MAX + 1];
	struct dmarc_eval ev[DMARC_DOMAINS_MAX];
	int q_dom[DMARC_DOMAINS_MAX], q_org[DMARC_DOMAINS_MAX];
	const unsigned char *data;
	size_t len;
	int n, nfields, nd = 0, worst = -1, temp = 0;
	struct dns_batch *b;

	if (cx->msg == NULL)
		return CHECK_DONE;
	data = message_data(cx->msg, &len);
	if (data == NULL)
		return check_retry(out, "message not readable: %s", cx->msg->error);
	n = rfc5322_from_domains(data, len, from, 8, &nfields);
	if (n <= 0) {
		verdict_auth(out, "dmarc", "permerror", "", "", "(%s)",
		             nfields == 0 ? "no From field" : "unparsable From field");
		verdict_reject(out, mc->bad_from, "dmarc.bad_from", "550", "5.7.1",
		               "Message must have one valid From: field for DMARC (RFC 7489 "
		               "6.6.1)");
		return CHECK_DONE;
	}
	/* the different domains, in order, at most DMARC_DOMAINS_MAX */
	for (int i = 0; i < n && i < 8 && nd < DMARC_DOMAINS_MAX; i++) {
		int dup = 0;

		for (int k = 0; k < nd; k++)
			dup |= strcasecmp(ev[k].domain, from[i]) == 0;
		if (!dup && domain_valid(from[i]))
			bcopy_str(ev[nd++].domain, sizeof(ev[0].domain), from[i]);
	}
	if (nd == 0) {
		verdict_auth(out, "dmarc", "permerror", "", "", "(%s)", "no valid From domain");
		verdict_reject(out, mc->bad_from, "dmarc.bad_from", "550", "5.7.1",
		               "Message must have one valid From: field for DMARC (RFC 7489 "
		               "6.6.1)");
		return CHECK_DONE;
	}
	b = dns_batch_new(cx->conf->dns, check_dns_timeout(cx) > 0 ? check_dns_timeout(cx) : 1);
	for (int i = 0; i < nd; i++) {
		org_domain(ev[i].domain, orgs[i], sizeof(orgs[i]));
		q_dom[i] = ask_dmarc(b, ev[i].domain);
		q_org[i] = strcasecmp(orgs[i], ev[i].domain) != 0 ? ask_dmarc(b, orgs[i]) : -1;
	}
	if (check_dns_timeout(cx) > 0)
		dns_batch_run(b);
	for (int i = 0; i < nd; i++) {
		evaluate(cx, b, q_dom[i], q_org[i], orgs[i], &ev[i]);
		if (ev[i].p)
			verdict_auth(
			    out, "dmarc", ev[i].result, "header.from", ev[i].domain,
			    "(p=%s sp=%s dis=%s)", policy_name(ev[i].p), policy_name(ev[i].sp),
			    strcmp(ev[i].result, "fail") == 0 ? policy_name(ev[i].dis) : "none");
		else
			verdict_auth(out, "dmarc", ev[i].result, "header.from", ev[i].domain, "%s",
			             "");
		temp |= strcmp(ev[i].result, "temperror") == 0;
		if (worst < 0 || rank(&ev[i]) > rank(&ev[worst]))
			worst = i;
	}
	dns_batch_free(b);
	if (mc->report_keep > 0 && cx->store && !cx->dry_run)
		for (int i = 0; i < nd; i++)
			record(cx, &ev[i], ev[worst].dis);
	if (strcmp(ev[worst].result, "fail") == 0) {
		const struct dmarc_eval *w = &ev[worst];

		if (w->dis == 'r') {
			verdict_reject(
			    out, mc->reject, "dmarc.reject", "550", "5.7.1",
			    "Unauthenticated mail from %s is refused by the domain's DMARC "
			    "policy",
			    w->domain);
		} else if (w->dis == 'q') {
			verdict_score(out, MODE_REJECT, "dmarc.quarantine", mc->quarantine_score,
			              "DMARC policy quarantine for %s", w->domain);
			char name[96];

			snprintf(name, sizeof(name), "%s-DMARC", cx->conf->core.header_prefix);
			verdict_header(out, name, 0, "quarantine header.from=%s", w->domain);
		} else if (mc->none_fail_score != 0) {
			verdict_score(out, MODE_REJECT, "dmarc.fail", mc->none_fail_score,
			              "DMARC fail for %s (policy none)", w->domain);
		}
		return CHECK_DONE;
	}
	if (temp)
		return check_retry_reply(out, "451", "4.7.5",
		                         "DMARC policy lookup failed temporarily, try again later");
	if (strcmp(ev[worst].result, "pass") == 0 && mc->pass_score != 0)
		verdict_score(out, MODE_REJECT, "dmarc.pass", mc->pass_score, "DMARC pass for %s",
		              ev[worst].domain);
	return CHECK_DONE;
}

/* Forged Authentication-Results (lib/authres.h), when dmarc is the first
 * identity check. */
static int dmarc_header(const struct check_ctx *cx, struct verdicts *out)
{
	const char *id = authres_authserv_id(cx->conf);

	if (strcasecmp(cx->hdr_name, "Authentication-Results") != 0 ||
	    !authres_remover(cx->conf, "dmarc") || !authres_is_ours(cx->hdr_value, id))
		return CHECK_DONE;
	verdict_delete_header(out, cx->hdr_name, cx->hdr_index);
	verdict_score(out, MODE_REJECT, "dmarc.forged_ar", 0,
	              "Authentication-Results with our authserv-id %s removed", id);
	return CHECK_DONE;
}

const struct check_module check_dmarc = {
	.name = "dmarc",
	.doc = "DMARC (RFC 7489) policy of the From: domain, aligned with spf and dkim",
	.params = dmarc_params,
	.conf_size = sizeof(struct dmarc_conf),
	.default_mode = "reject",
	.default_on_error = "skip",
	.needs_message = 1,
	.init = dmarc_init,
	.hook = {
		[STAGE_HEADER] = dmarc_header,
		[STAGE_EOM] = dmarc_eom,
	},
};
