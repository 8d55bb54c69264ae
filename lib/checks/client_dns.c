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

static int client_dns_connect(const struct check_ctx *cx, struct verdicts *out)
{
	const struct client_dns_conf *cc = cx->mconf;
	const char *addr = cx->conn->client_addr;
	char name[DNS_NAME_MAX + 2];
	enum dns_status st;

	if (cx->conn->client_ip.family == 0)
		return CHECK_DONE;
	if (cc->no_ptr == MODE_OFF && cc->ptr_mismatch == MODE_OFF)
		return CHECK_DONE;
	if (cx->conf->dns == NULL)
		return check_retry(out, "no DNS resolver");
	switch (dns_fcrdns(cx->conf->dns, check_dns_timeout(cx), &cx->conn->client_ip, name,
	                   sizeof(name), &st)) {
	case DNS_FCRDNS_OK: break;
	case DNS_FCRDNS_NO_PTR:
		if (cc->no_ptr_reject)
			verdict_reject(out, cc->no_ptr, "client_dns.no_ptr", "550", "5.7.25",
			               "Client host [%s] rejected: no PTR (reverse DNS) record for "
			               "your address",
			               addr);
		else
			verdict_score(out, cc->no_ptr, "client_dns.no_ptr", cc->no_ptr_score,
			              "Client host [%s] has no PTR record", addr);
		break;
	case DNS_FCRDNS_MISMATCH:
		verdict_score(
		    out, cc->ptr_mismatch, "client_dns.ptr_mismatch", cc->ptr_mismatch_score,
		    "PTR name %.100s of client [%s] does not resolve back to it", name, addr);
		break;
	case DNS_FCRDNS_TEMP:
		if (name[0])
			return check_retry_reply(out, "450", "4.7.25",
			                         "Cannot verify the reverse DNS of client [%s]: "
			                         "address lookup of its PTR names failed",
			                         addr);
		return check_retry_reply(out, "450", "4.7.25",
		                         "Cannot verify the reverse DNS of client [%s]: PTR lookup "
		                         "failed (%s)",
		                         addr, dns_status_name(st));
	}
	return CHECK_DONE;
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
	ip_unmap(&c->client_ip, &ip);

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
	else if (!dns_result_has_addr(b, q, &ip))
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
