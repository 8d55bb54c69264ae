/* lib/checks/sender_domain.c - the sender domain must exist and take mail
 *
 * At MAIL FROM the sender domain is looked up: its MX records first, and
 * only when it has none (NODATA) its A and AAAA records, in a second batch
 * within the same deadline (RFC 5321 5.1: a domain without MX receives mail
 * at its address, the "implicit MX").  Sub-checks, each with its own mode:
 *   sender_domain.nxdomain  the domain does not exist        550 5.1.8
 *   sender_domain.no_mx     it exists but has no MX, A or
 *                           AAAA record: no mail can reach it 550 5.1.8
 *   sender_domain.null_mx   its MX is the null MX of RFC 7505
 *                           ("MX 0 ."): it accepts no mail     550 5.7.27
 * A set of MX records whose hosts are all "." counts as a null MX; a null MX
 * beside real MX hosts (a misconfiguration) does not.  A DNS failure
 * (SERVFAIL, timeout) is a temporary error: the check returns
 * check_retry_reply() with 450 4.1.8 and sender_domain.on_error (default
 * defer) decides.  The null sender, address literals, addresses without a
 * domain and addresses that failed syntax are skipped (the envelope module
 * judges those).  Like every MAIL verdict, a reject is held until RCPT.
 * Thread-safe: reads only its settings and the transaction; the resolver
 * is shared and thread-safe.
 *
 * See also: RFC 5321 5.1, RFC 7505 (null MX), RFC 3463 (X.1.8, X.7.27),
 * Postfix reject_unknown_sender_domain.
 */
#include "check.h"
#include "dns.h"
#include "engine.h"

#include <stddef.h>
#include <string.h>

struct sender_domain_conf {
	enum mode nxdomain;
	enum mode no_mx;
	enum mode null_mx;
};

#define F(x) offsetof(struct sender_domain_conf, x)
static const struct conf_param sender_domain_params[] = {
	{ "sender_domain.nxdomain", "reject", CONF_MODE, F(nxdomain), 0, 0,
	  "sender domain does not exist (NXDOMAIN): 550 5.1.8" },
	{ "sender_domain.no_mx", "reject", CONF_MODE, F(no_mx), 0, 0,
	  "sender domain has no MX, A or AAAA record: 550 5.1.8" },
	{ "sender_domain.null_mx", "reject", CONF_MODE, F(null_mx), 0, 0,
	  "sender domain publishes a null MX (RFC 7505): 550 5.7.27" },
	CONF_END
};

/* The reply for a DNS failure (sender_domain.on_error = defer). */
static int lookup_failed(struct verdicts *out, const struct mailaddr *a, const char *what,
                         enum dns_status st)
{
	return check_retry_reply(out, "450", "4.1.8",
	                         "Sender address <%.150s> deferred: DNS lookup of %s for domain "
	                         "%.150s failed (%s)",
	                         a->full, what, a->domain, dns_status_name(st));
}

/* 1 when every MX record of query q has the root as its host. */
static int is_null_mx(const struct dns_batch *b, int q)
{
	int n = dns_result_count(b, q);
	char host[DNS_NAME_MAX + 2];
	unsigned pref;

	for (int j = 0; j < n; j++)
		if (dns_result_mx(b, q, j, &pref, host, sizeof(host)) < 0 || strcmp(host, ".") != 0)
			return 0;
	return n > 0;
}

static int sender_domain_mail(const struct check_ctx *cx, struct verdicts *out)
{
	const struct sender_domain_conf *sc = cx->mconf;
	const struct mailaddr *a = &cx->txn->sender;
	struct dns_batch *b = NULL, *b2 = NULL;
	enum dns_status st, sa, saaaa;
	int q, qa, qaaaa, rc = CHECK_DONE;

	if (!addr_fqdn_domain(a) || !dns_name_valid(a->domain))
		return CHECK_DONE;
	if (sc->nxdomain == MODE_OFF && sc->no_mx == MODE_OFF && sc->null_mx == MODE_OFF)
		return CHECK_DONE;
	if (cx->conf->dns == NULL)
		return check_retry(out, "no DNS resolver");

	b = dns_batch_new(cx->conf->dns, check_dns_timeout(cx));
	q = dns_batch_add(b, a->domain, LDNS_RR_TYPE_MX);
	dns_batch_run(b);
	st = dns_result_status(b, q);
	switch (st) {
	case DNS_NXDOMAIN:
		verdict_reject(out, sc->nxdomain, "sender_domain.nxdomain", "550", "5.1.8",
		               "Sender address <%.150s> rejected: domain %.150s does not exist",
		               a->full, a->domain);
		break;
	case DNS_OK:
		if (is_null_mx(b, q))
			verdict_reject(out, sc->null_mx, "sender_domain.null_mx", "550", "5.7.27",
			               "Sender address <%.150s> rejected: domain %.150s does not "
			               "accept mail (null MX)",
			               a->full, a->domain);
		break;
	case DNS_NODATA:
		/* No MX: the domain's own address is its mail host (implicit
		 * MX).  One follow-up batch within what is left of the deadline. */
		b2 = dns_batch_new(cx->conf->dns, dns_batch_remaining(b));
		qa = dns_batch_add(b2, a->domain, LDNS_RR_TYPE_A);
		qaaaa = dns_batch_add(b2, a->domain, LDNS_RR_TYPE_AAAA);
		dns_batch_run(b2);
		sa = dns_result_status(b2, qa);
		saaaa = dns_result_status(b2, qaaaa);
		if (sa == DNS_OK || saaaa == DNS_OK)
			break;
		if (dns_status_temporary(sa) || dns_status_temporary(saaaa)) {
			rc = lookup_failed(out, a, dns_status_temporary(sa) ? "A" : "AAAA",
			                   dns_status_temporary(sa) ? sa : saaaa);
			break;
		}
		verdict_reject(out, sc->no_mx, "sender_domain.no_mx", "550", "5.1.8",
		               "Sender address <%.150s> rejected: domain %.150s has no MX, A or "
		               "AAAA record",
		               a->full, a->domain);
		break;
	default: rc = lookup_failed(out, a, "MX", st); break;
	}
	if (b2)
		dns_batch_free(b2);
	dns_batch_free(b);
	return rc;
}

const struct check_module check_sender_domain = {
	.name = "sender_domain",
	.doc = "the sender domain exists and can receive mail (MX, A/AAAA, null MX)",
	.params = sender_domain_params,
	.conf_size = sizeof(struct sender_domain_conf),
	.default_mode = "reject",
	.default_on_error = "defer",
	.hook = {
		[STAGE_MAIL] = sender_domain_mail,
	},
};
