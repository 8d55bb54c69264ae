/* lib/checks/client_dns.c - client plausibility: reverse DNS and HELO name
 *
 * At connect, forward-confirmed reverse DNS (FCrDNS): one batch asks the PTR
 * records of the client address, a follow-up batch (within what is left of
 * the same deadline) the A (IPv4 client) or AAAA (IPv6 client) records of
 * at most CLIENT_DNS_PTR_MAX of the names.  At HELO, one batch asks the A or
 * AAAA records of the HELO name.  Sub-checks, each with its own mode:
 *   client_dns.no_ptr         the address has no PTR record (NXDOMAIN or
 *                             NODATA)
 *   client_dns.ptr_mismatch   it has PTR names, but none of them resolves
 *                             back to the address (not forward-confirmed)
 *   client_dns.helo_mismatch  the HELO name does not exist or does not
 *                             resolve to the client address
 * Each adds its score (client_dns.*_score): rejecting on these alone causes
 * false positives, so they only weigh with other evidence against
 * score.reject.  client_dns.no_ptr_reject = yes makes no_ptr a reject,
 * 550 5.7.25 (RFC 7372), like Postfix reject_unknown_reverse_client_hostname.
 * HELO names that are address literals, bare addresses or not fully
 * qualified are left to the helo module; a client without an address (e.g.
 * sendmail -bs) is skipped.  A DNS failure that leaves the answer open
 * (SERVFAIL, timeout) is a temporary error: check_retry_reply() with
 * 450 4.7.25 (reverse DNS) or 450 4.7.1 (HELO), applied by
 * client_dns.on_error (default skip).  A second HELO (after STARTTLS)
 * replaces what the first one decided.
 * Thread-safe: no state beyond the settings; the resolver is thread-safe.
 *
 * See also: RFC 8601 2.7.3 (iprev), RFC 7372 (X.7.25), Postfix
 * reject_unknown_client_hostname.
 */
#include "check.h"
#include "dns.h"
#include "engine.h"
#include "util.h"

#include <stddef.h>
#include <string.h>
#include <sys/socket.h>

#define CLIENT_DNS_PTR_MAX 10 /* PTR names followed, as RFC 7208 5.5 */

struct client_dns_conf {
	enum mode no_ptr;
	enum mode ptr_mismatch;
	enum mode helo_mismatch;
	double no_ptr_score;
	double ptr_mismatch_score;
	double helo_mismatch_score;
	int no_ptr_reject;
};

#define F(x) offsetof(struct client_dns_conf, x)
static const struct conf_param client_dns_params[] = {
	{ "client_dns.no_ptr", "reject", CONF_MODE, F(no_ptr), 0, 0,
	  "client address has no PTR (reverse DNS) record" },
	{ "client_dns.no_ptr_score", "3", CONF_SCORE, F(no_ptr_score), 0, 100,
	  "score added when the client has no PTR record" },
	{ "client_dns.no_ptr_reject", "no", CONF_BOOL, F(no_ptr_reject), 0, 0,
	  "reject (550 5.7.25) instead of scoring when the client has no PTR record" },
	{ "client_dns.ptr_mismatch", "reject", CONF_MODE, F(ptr_mismatch), 0, 0,
	  "no PTR name of the client resolves back to its address (not FCrDNS)" },
	{ "client_dns.ptr_mismatch_score", "2", CONF_SCORE, F(ptr_mismatch_score), 0, 100,
	  "score added when the reverse DNS is not forward-confirmed" },
	{ "client_dns.helo_mismatch", "reject", CONF_MODE, F(helo_mismatch), 0, 0,
	  "HELO name does not exist or does not resolve to the client address" },
	{ "client_dns.helo_mismatch_score", "1", CONF_SCORE, F(helo_mismatch_score), 0, 100,
	  "score added when the HELO name does not resolve to the client" },
	CONF_END
};

/* The client address as the DNS sees it: an IPv4-mapped IPv6 address is
 * its IPv4 address (its PTR is under in-addr.arpa, its name has an A). */
static void client_ip(const struct conn *c, struct ipaddr *ip)
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	*ip = c->client_ip;
	if (ip->family == AF_INET6 && memcmp(ip->a, mapped, sizeof(mapped)) == 0) {
		memmove(ip->a, ip->a + 12, 4);
		memset(ip->a + 4, 0, 12);
		ip->family = AF_INET;
	}
}

/* 1 when one of the A/AAAA answers of query q is ip. */
static int answer_has(const struct dns_batch *b, int q, const struct ipaddr *ip)
{
	char text[64];
	struct ipaddr got;

	for (int j = 0; j < dns_result_count(b, q); j++)
		if (dns_result_text(b, q, j, text, sizeof(text)) > 0 && ip_parse(text, &got) == 0 &&
		    ip_in_net(&got, ip, ip->family == AF_INET ? 32 : 128))
			return 1;
	return 0;
}

static int client_dns_connect(const struct check_ctx *cx, struct verdicts *out)
{
	const struct client_dns_conf *cc = cx->mconf;
	const char *addr = cx->conn->client_addr;
	struct dns_batch *b = NULL, *b2 = NULL;
	char rev[DNS_NAME_MAX + 2], name[DNS_NAME_MAX + 2];
	int q, fq[CLIENT_DNS_PTR_MAX], nf = 0, failed = 0, confirmed = 0, rc = CHECK_DONE;
	int rrtype;
	enum dns_status st;
	struct ipaddr ip;

	if (cx->conn->client_ip.family == 0)
		return CHECK_DONE;
	if (cc->no_ptr == MODE_OFF && cc->ptr_mismatch == MODE_OFF)
		return CHECK_DONE;
	client_ip(cx->conn, &ip);
	if (dns_reverse_name(&ip, NULL, rev, sizeof(rev)) < 0)
		return CHECK_DONE;
	if (cx->conf->dns == NULL)
		return check_retry(out, "no DNS resolver");
	rrtype = ip.family == AF_INET ? LDNS_RR_TYPE_A : LDNS_RR_TYPE_AAAA;

	b = dns_batch_new(cx->conf->dns, check_dns_timeout(cx));
	q = dns_batch_add(b, rev, LDNS_RR_TYPE_PTR);
	dns_batch_run(b);
	st = dns_result_status(b, q);
	if (st == DNS_NXDOMAIN || st == DNS_NODATA) {
		if (cc->no_ptr_reject)
			verdict_reject(out, cc->no_ptr, "client_dns.no_ptr", "550", "5.7.25",
			               "Client host [%s] rejected: no PTR (reverse DNS) record for "
			               "your address",
			               addr);
		else
			verdict_score(out, cc->no_ptr, "client_dns.no_ptr", cc->no_ptr_score,
			              "Client host [%s] has no PTR record", addr);
		goto done;
	}
	if (st != DNS_OK) {
		rc = check_retry_reply(out, "450", "4.7.25",
		                       "Cannot verify the reverse DNS of client [%s]: PTR lookup "
		                       "failed (%s)",
		                       addr, dns_status_name(st));
		goto done;
	}
	if (cc->ptr_mismatch == MODE_OFF)
		goto done;

	/* Follow at most CLIENT_DNS_PTR_MAX names; names that no query can
	 * be sent for (odd bytes, too long) confirm nothing. */
	b2 = dns_batch_new(cx->conf->dns, dns_batch_remaining(b));
	for (int j = 0; j < dns_result_count(b, q) && nf < CLIENT_DNS_PTR_MAX; j++)
		if (dns_result_text(b, q, j, name, sizeof(name)) > 0 && dns_name_valid(name))
			fq[nf++] = dns_batch_add(b2, name, rrtype);
	dns_batch_run(b2);
	for (int i = 0; i < nf && !confirmed; i++) {
		confirmed = answer_has(b2, fq[i], &ip);
		failed |= dns_status_temporary(dns_result_status(b2, fq[i]));
	}
	if (confirmed)
		goto done;
	if (failed) {
		rc = check_retry_reply(out, "450", "4.7.25",
		                       "Cannot verify the reverse DNS of client [%s]: address "
		                       "lookup of its PTR names failed",
		                       addr);
		goto done;
	}
	dns_result_text(b, q, 0, name, sizeof(name));
	verdict_score(out, cc->ptr_mismatch, "client_dns.ptr_mismatch", cc->ptr_mismatch_score,
	              "PTR name %.100s of client [%s] does not resolve back to it", name, addr);
done:
	if (b2)
		dns_batch_free(b2);
	dns_batch_free(b);
	return rc;
}

static int client_dns_helo(const struct check_ctx *cx, struct verdicts *out)
{
	const struct client_dns_conf *cc = cx->mconf;
	const struct conn *c = cx->conn;
	const char *h = c->helo;
	char name[HELO_MAX + 1];
	struct dns_batch *b;
	struct ipaddr ip, dummy;
	enum dns_status st;
	size_t len;
	int q, rc = CHECK_DONE;

	if (cc->helo_mismatch == MODE_OFF || c->client_ip.family == 0 || c->helo_truncated)
		return CHECK_DONE;
	/* Literals, bare addresses and odd names are the helo module's. */
	if (h[0] == '\0' || h[0] == '[' || ip_parse(h, &dummy) == 0)
		return CHECK_DONE;
	len = bcopy_str(name, sizeof(name), h);
	if (len > 1 && name[len - 1] == '.')
		name[len - 1] = '\0';
	if (!dns_name_valid(name) || !domain_is_fqdn(name))
		return CHECK_DONE;
	if (cx->conf->dns == NULL)
		return check_retry(out, "no DNS resolver");
	client_ip(c, &ip);

	b = dns_batch_new(cx->conf->dns, check_dns_timeout(cx));
	q = dns_batch_add(b, name, ip.family == AF_INET ? LDNS_RR_TYPE_A : LDNS_RR_TYPE_AAAA);
	dns_batch_run(b);
	st = dns_result_status(b, q);
	if (dns_status_temporary(st))
		rc = check_retry_reply(out, "450", "4.7.1",
		                       "Cannot look up HELO name %.100s: DNS lookup failed (%s)",
		                       name, dns_status_name(st));
	else if (st == DNS_NXDOMAIN)
		verdict_score(out, cc->helo_mismatch, "client_dns.helo_mismatch",
		              cc->helo_mismatch_score, "HELO name %.100s does not exist", name);
	else if (!answer_has(b, q, &ip))
		verdict_score(out, cc->helo_mismatch, "client_dns.helo_mismatch",
		              cc->helo_mismatch_score, "HELO name %.100s does not resolve to [%s]",
		              name, c->client_addr);
	dns_batch_free(b);
	return rc;
}

const struct check_module check_client_dns = {
	.name = "client_dns",
	.doc = "client plausibility: forward-confirmed reverse DNS, HELO name resolution",
	.params = client_dns_params,
	.conf_size = sizeof(struct client_dns_conf),
	.default_mode = "reject",
	.default_on_error = "skip",
	.hook = {
		[STAGE_CONNECT] = client_dns_connect,
		[STAGE_HELO] = client_dns_helo,
	},
};
