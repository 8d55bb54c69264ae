/* lib/checks/rhsbl.c - domain blocklists (RHSBL) for the sender and HELO
 *
 * The sender domain (at MAIL) and the HELO name (at HELO) are looked up as
 * DOMAIN.LIST under domain lists such as dbl.spamhaus.org, all lists of a
 * stage in ONE DNS batch.  Lists use the syntax of dnsbl.sites
 * (SITE[=FILTER][*WEIGHT], Postfix's postscreen_dnsbl_sites):
 *   rhsbl.sender_sites  scores for the sender domain (symbol
 *                       rhsbl.sender.SITE)
 *   rhsbl.helo_sites    scores for the HELO name (rhsbl.helo.SITE)
 *   rhsbl.reject_sites  reject when the sender domain or the HELO name is
 *                       listed (550 5.7.1)
 * Skipped: the null sender, address literals (user@[192.0.2.1], HELO
 * [192.0.2.1]), bare IP addresses and names that are not fully qualified.
 * Answers outside a site's filter never count; "query refused" answers
 * (127.255.255.252-255) disable the list for a while with a warning.  The
 * RFC 5782 section 5 self-test (TEST.LIST listed, INVALID.LIST not) is off
 * by default (rhsbl.selftest_interval), because not every domain list
 * carries the TEST entry.  The list machinery is dnsbl.c's (dnsxl_*).
 *
 * Thread-safety: as dnsbl.c (per-snapshot list state behind a mutex).
 */
#include "check.h"
#include "dnsxl.h"
#include "dns.h"
#include "engine.h"
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

#define USE_SENDER 1u
#define USE_HELO   2u

struct rhsbl_conf {
	struct strlist sender_sites;
	struct strlist helo_sites;
	struct strlist reject_sites;
	long selftest_interval;
	long refused_disable;
	struct dnsxl *x; /* made by init, per snapshot */
	int nsites;
};

#define F(x) offsetof(struct rhsbl_conf, x)
static const struct conf_param rhsbl_params[] = {
	{ "rhsbl.sender_sites", "", CONF_LIST, F(sender_sites), 0, 0,
	  "domain lists that add a score for the sender domain: SITE[=FILTER][*WEIGHT]" },
	{ "rhsbl.helo_sites", "", CONF_LIST, F(helo_sites), 0, 0,
	  "domain lists that add a score for the HELO name: SITE[=FILTER][*WEIGHT]" },
	{ "rhsbl.reject_sites", "", CONF_LIST, F(reject_sites), 0, 0,
	  "domain lists that reject a listed sender domain or HELO name: SITE[=FILTER]" },
	{ "rhsbl.selftest_interval", "0", CONF_TIME, F(selftest_interval), 0, 604800,
	  "RFC 5782 self-test (TEST listed, INVALID not) at first use and this often (0: never)" },
	{ "rhsbl.refused_disable", "1h", CONF_TIME, F(refused_disable), 60, 604800,
	  "how long a list answering 127.255.255.252-255 (query refused) is not asked" },
	CONF_END
};

static int rhsbl_init(void *mconf, const struct conf *c, char *err, size_t errsize)
{
	struct rhsbl_conf *rc = mconf;

	rc->x = dnsxl_new("rhsbl", 1, rc->selftest_interval, rc->refused_disable);
	if (dnsxl_add_sites(rc->x, &rc->sender_sites, 0, USE_SENDER, "rhsbl.sender_sites", err,
	                    errsize) < 0 ||
	    dnsxl_add_sites(rc->x, &rc->helo_sites, 0, USE_HELO, "rhsbl.helo_sites", err, errsize) <
	        0 ||
	    dnsxl_add_sites(rc->x, &rc->reject_sites, 1, USE_SENDER | USE_HELO,
	                    "rhsbl.reject_sites", err, errsize) < 0) {
		dnsxl_free(rc->x);
		rc->x = NULL;
		return -1;
	}
	rc->nsites = rc->sender_sites.n + rc->helo_sites.n + rc->reject_sites.n;
	if (rc->nsites == 0)
		log_msg(LOG_LVL_WARN, "rhsbl: enabled without any rhsbl.*_sites");
	return 0;
}

static void rhsbl_fini(void *mconf)
{
	struct rhsbl_conf *rc = mconf;

	dnsxl_free(rc->x);
	rc->x = NULL;
}

struct rhsbl_hits {
	const char *what;   /* "Sender domain", "HELO name" */
	const char *prefix; /* "rhsbl.sender", "rhsbl.helo" */
	const char *name;
	struct verdicts *out;
	char log[600];
};

static void rhsbl_hit(void *arg, const char *site, int reject, double weight, const char *answers)
{
	struct rhsbl_hits *h = arg;
	char symbol[48];

	snprintf(symbol, sizeof(symbol), "%s.%s", h->prefix, site);
	if (reject) {
		verdict_reject(h->out, MODE_REJECT, symbol, "550", "5.7.1",
		               "%s %s listed by %s (%s)", h->what, h->name, site, answers);
		bappend(h->log, sizeof(h->log), " %s=%s(reject)", site, answers);
	} else {
		verdict_score(h->out, MODE_REJECT, symbol, weight, "%s %s listed by %s (%s)",
		              h->what, h->name, site, answers);
		bappend(h->log, sizeof(h->log), " %s=%s(%+g)", site, answers, weight);
	}
}

/* Look up name (already checked: a valid FQDN, lower case, no trailing dot). */
static int rhsbl_run(const struct check_ctx *cx, struct verdicts *out, const char *name,
                     unsigned use)
{
	const struct rhsbl_conf *rc = cx->mconf;
	struct rhsbl_hits h = { use == USE_SENDER ? "Sender domain" : "HELO name",
		                use == USE_SENDER ? "rhsbl.sender" : "rhsbl.helo", name, out, "" };
	char failed[300];
	int r;

	r = dnsxl_lookup(rc->x, cx->conf, check_dns_timeout(cx), NULL, name, use, rhsbl_hit, &h,
	                 failed, sizeof(failed));
	if (r < 0)
		return check_retry_reply(
		    out, "451", "4.4.3", "Domain blocklist lookups for %s %s failed (%s)",
		    use == USE_SENDER ? "sender domain" : "HELO name", name, failed);
	if (r > 0)
		log_msg(LOG_LVL_WARN, "ref=%s rhsbl: %s %s: lists ignored after lookup failure: %s",
		        check_ref(cx), use == USE_SENDER ? "sender domain" : "HELO name", name,
		        failed);
	if (h.log[0])
		log_msg(LOG_LVL_INFO, "ref=%s rhsbl: %s %s listed:%s", check_ref(cx),
		        use == USE_SENDER ? "sender domain" : "HELO name", name, h.log);
	return CHECK_DONE;
}

/* A domain worth asking: valid, fully qualified, not an address. */
static int lookup_name(const char *in, char *dst, size_t dstsize)
{
	size_t len = str_lower(dst, dstsize, in);
	struct ipaddr ip;

	if (len >= dstsize)
		return 0;
	if (len > 0 && dst[len - 1] == '.')
		dst[--len] = '\0';
	return len > 0 && dst[0] != '[' && ip_parse(dst, &ip) < 0 && domain_is_fqdn(dst) &&
	       dns_name_valid(dst);
}

static int rhsbl_helo(const struct check_ctx *cx, struct verdicts *out)
{
	const struct rhsbl_conf *rc = cx->mconf;
	char name[HELO_MAX + 1];

	if (rc->x == NULL || cx->conn->helo_truncated ||
	    !lookup_name(cx->conn->helo, name, sizeof(name)))
		return CHECK_DONE;
	return rhsbl_run(cx, out, name, USE_HELO);
}

static int rhsbl_mail(const struct check_ctx *cx, struct verdicts *out)
{
	const struct rhsbl_conf *rc = cx->mconf;
	const struct mailaddr *s = &cx->txn->sender;
	char name[ADDR_DOMAIN_MAX + 1];

	if (rc->x == NULL ||
	    (s->flags & (ADDR_NULL | ADDR_BAD_SYNTAX | ADDR_NO_DOMAIN | ADDR_DOMAIN_LITERAL |
	                 ADDR_TOO_LONG)) ||
	    !lookup_name(s->domain, name, sizeof(name)))
		return CHECK_DONE;
	return rhsbl_run(cx, out, name, USE_SENDER);
}

const struct check_module check_rhsbl = {
	.name = "rhsbl",
	.doc = "domain blocklists (RHSBL) for the sender domain and the HELO name",
	.params = rhsbl_params,
	.conf_size = sizeof(struct rhsbl_conf),
	.default_mode = "reject",
	.default_on_error = "skip",
	.init = rhsbl_init,
	.fini = rhsbl_fini,
	.hook = {
		[STAGE_HELO] = rhsbl_helo,
		[STAGE_MAIL] = rhsbl_mail,
	},
};
