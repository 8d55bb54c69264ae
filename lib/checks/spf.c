/* lib/checks/spf.c - SPF (RFC 7208) for MAIL FROM and HELO
 *
 * At MAIL, check_host() (lib/spf.c: libspf2 on lib/dns, one deadline of
 * dns.timeout_ms for the whole evaluation) runs for the identities of RFC
 * 7208 2.3/2.4: the MAIL FROM domain, and the HELO name for the null sender
 * (or for every message with spf.check_helo; a HELO "fail" then decides).
 * The MAIL FROM domain is the part after the last '@' even when the
 * address is bad syntax for the envelope checks (RFC 7208 4.3), with
 * "postmaster" for an empty local part; %{h} is the HELO as given.
 * Results map to actions:
 *   fail       550 5.7.23 (RFC 7372) plus the domain's exp= explanation,
 *              sub-check mode spf.fail
 *   permerror  550 5.7.24, sub-check mode spf.permerror (default monitor:
 *              broken records are common and say nothing about the mail)
 *   temperror  check_retry_reply 451 4.7.24: spf.on_error applies
 *   softfail, neutral, none, pass   scores spf.*_score
 * Skipped for clients in spf.skip_clients (forwarders, secondary MX); the
 * engine already skips trusted networks and authenticated senders.
 * Headers (kept by the engine, added at end of message when accepted):
 * Received-SPF (RFC 7208 9.1) per identity checked (also "none" for the
 * null sender with a HELO that is not a domain name): client-ip,
 * envelope-from, helo, problem, identity, receiver, each a dot-atom or a
 * quoted-string of printable ASCII cut at 100 bytes; and one
 * result for the one Authentication-Results header that the engine
 * writes for spf, dkim and dmarc together (verdict_auth, lib/authres.h;
 * authserv-id spf.authserv_id or the hostname), inserted at the top, built
 * only from result words and validated domains; dmarc reads the
 * smtp.mailfrom result from there.
 * At each header, an incoming Authentication-Results whose authserv-id is
 * ours (RFC 8601 5: a forgery from outside our boundary) is removed at end
 * of message and noted as spf.forged_ar in the log line (no score);
 * foreign ones are kept.  This needs the MTA to send the headers.
 * Thread-safe: reads its settings and the connection; lib/spf.c is
 * thread-safe.
 */
#include "addr.h"
#include "authres.h"
#include "check.h"
#include "encode.h"
#include "engine.h"
#include "spf.h"
#include "util.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

struct spf_conf {
	enum mode fail;
	enum mode permerror;
	double softfail_score;
	double neutral_score;
	double none_score;
	double pass_score;
	int check_helo;
	int add_headers;
	struct netlist skip_clients;
	char *authserv_id;
};

#define F(x) offsetof(struct spf_conf, x)
static const struct conf_param spf_params[] = {
	{ "spf.fail", "reject", CONF_MODE, F(fail), 0, 0,
	  "SPF result fail: 550 5.7.23 (mode of this sub-check)" },
	{ "spf.permerror", "monitor", CONF_MODE, F(permerror), 0, 0,
	  "SPF result permerror (broken record): 550 5.7.24 (mode of this sub-check)" },
	{ "spf.softfail_score", "3", CONF_SCORE, F(softfail_score), -100, 100,
	  "score added for SPF softfail" },
	{ "spf.neutral_score", "0", CONF_SCORE, F(neutral_score), -100, 100,
	  "score added for SPF neutral" },
	{ "spf.none_score", "0", CONF_SCORE, F(none_score), -100, 100,
	  "score added when the domain publishes no SPF record" },
	{ "spf.pass_score", "0", CONF_SCORE, F(pass_score), -100, 100,
	  "score added for SPF pass (negative to reward)" },
	{ "spf.check_helo", "no", CONF_BOOL, F(check_helo), 0, 0,
	  "also check the HELO name for every message (always for the null sender)" },
	{ "spf.add_headers", "yes", CONF_BOOL, F(add_headers), 0, 0,
	  "add Received-SPF and Authentication-Results headers" },
	{ "spf.skip_clients", "", CONF_NETS, F(skip_clients), 0, 0,
	  "clients not checked: forwarders and secondary MX hosts (CIDR list)" },
	{ "spf.authserv_id", "", CONF_STR, F(authserv_id), 0, 0,
	  "authserv-id of the Authentication-Results header (spf, dkim, dmarc); empty: the "
	  "hostname" },
	CONF_END
};

static int spf_init(void *mconf, const struct conf *c, char *err, size_t errsize)
{
	struct spf_conf *sc = mconf;

	(void)c;
	if (sc->authserv_id && sc->authserv_id[0] && !domain_valid(sc->authserv_id)) {
		snprintf(err, errsize, "spf.authserv_id: not a domain name");
		return -1;
	}
	return 0;
}

static const char *authserv(const struct check_ctx *cx)
{
	return authres_authserv_id(cx->conf);
}

const char *spf_conf_authserv_id(const void *mconf)
{
	const struct spf_conf *sc = mconf;

	return sc->authserv_id;
}

/* RFC 5322 atext. */
static int is_atext(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       (ch != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", ch) != NULL);
}

/* RFC 5322 dot-atom: atext runs joined by single dots. */
static int is_dot_atom(const char *v)
{
	int run = 0;

	for (; *v; v++) {
		if (*v == '.') {
			if (run == 0)
				return 0;
			run = 0;
		} else if (is_atext((unsigned char)*v)) {
			run++;
		} else {
			return 0;
		}
	}
	return run > 0;
}

/* A Received-SPF key-value-pair's value (RFC 7208 9.1): a dot-atom as it
 * is, anything else as a quoted-string ('"' and '\' escaped).  At most
 * RSPF_VALUE_MAX bytes of v are used (cut marked "..."); bytes outside
 * printable ASCII become '?'. */
#define RSPF_VALUE_MAX 100
static void kv_value(char *dst, size_t dstsize, const char *v)
{
	char tmp[RSPF_VALUE_MAX + 4];
	size_t n = 0, o = 0;

	for (; v[n] && n < RSPF_VALUE_MAX; n++)
		tmp[n] = (unsigned char)v[n] >= 0x20 && (unsigned char)v[n] < 0x7f ? v[n] : '?';
	if (v[n]) {
		memcpy(tmp + n, "...", 3);
		n += 3;
	}
	tmp[n] = '\0';
	if (is_dot_atom(tmp)) {
		bcopy_str(dst, dstsize, tmp);
		return;
	}
	if (dstsize < 3) {
		if (dstsize > 0)
			dst[0] = '\0';
		return;
	}
	dst[o++] = '"';
	for (size_t i = 0; tmp[i] && o + 3 < dstsize; i++) {
		if (tmp[i] == '"' || tmp[i] == '\\')
			dst[o++] = '\\';
		dst[o++] = tmp[i];
	}
	dst[o++] = '"';
	dst[o] = '\0';
}

/* Received-SPF for one identity (RFC 7208 9.1): the result, a comment
 * built from validated parts only, then client-ip, envelope-from (the
 * MAIL FROM address, "" for the null sender), helo (as given), problem (on
 * temperror and permerror), identity and receiver. */
static void received_spf(const struct check_ctx *cx, struct verdicts *out,
                         const struct spf_outcome *o, const char *identity, const char *envfrom)
{
	const struct conn *c = cx->conn;
	const char *r = spf_result_name(o->result);
	int helo = strcmp(identity, "helo") == 0;
	char comment[800], pairs[900], ip[128], ef[2 * RSPF_VALUE_MAX + 16],
	    hl[2 * RSPF_VALUE_MAX + 16];
	char problem[2 * sizeof(o->reason) + 16] = "", rcv[2 * RSPF_VALUE_MAX + 16];

	switch (o->result) {
	case SPF_PASS:
	case SPF_FAIL:
	case SPF_SOFTFAIL:
	case SPF_NEUTRAL:
		snprintf(comment, sizeof(comment), "%s: %s of %s %s %s as permitted sender",
		         cx->conf->hostname, helo ? "helo" : "domain", o->domain,
		         o->result == SPF_PASS ? "designates" : "does not designate",
		         c->client_addr);
		break;
	case SPF_NONE:
		if (o->domain[0])
			snprintf(comment, sizeof(comment), "%s: %s does not publish SPF",
			         cx->conf->hostname, o->domain);
		else
			snprintf(comment, sizeof(comment), "%s: %s", cx->conf->hostname,
			         helo ? "the HELO name is not a domain name, nothing to check"
			              : "the sender has no valid domain name, nothing to check");
		break;
	default:
		snprintf(comment, sizeof(comment), "%s: error in processing during lookup of %s",
		         cx->conf->hostname, o->domain);
		break;
	}
	kv_value(ip, sizeof(ip), c->client_addr);
	kv_value(ef, sizeof(ef), envfrom);
	kv_value(hl, sizeof(hl), c->helo_seen ? c->helo : "");
	kv_value(rcv, sizeof(rcv), cx->conf->hostname);
	if (o->result == SPF_PERMERROR || o->result == SPF_TEMPERROR) {
		char pv[2 * sizeof(o->reason) + 4];

		kv_value(pv, sizeof(pv), o->reason[0] ? o->reason : r);
		snprintf(problem, sizeof(problem), " problem=%s;", pv);
	}
	snprintf(pairs, sizeof(pairs),
	         "client-ip=%s; envelope-from=%s; helo=%s;%s identity=%s; receiver=%s;", ip, ef, hl,
	         problem, identity, rcv);
	/* Within what the engine keeps of a header value (ENC_HEADER_MAX):
	 * a long domain shortens the comment, never cuts the pairs. */
	if (strlen(r) + strlen(comment) + strlen(pairs) + 4 > ENC_HEADER_MAX)
		snprintf(comment, sizeof(comment), "%.200s", cx->conf->hostname);
	verdict_header(out, "Received-SPF", 1, "%s (%s) %s", r, comment, pairs);
}

/* Act on one identity's result; returns CHECK_RETRY for temperror. */
static int act(const struct check_ctx *cx, struct verdicts *out, const struct spf_outcome *o,
               const char *what)
{
	const struct spf_conf *sc = cx->mconf;
	const char *ip = cx->conn->client_addr;

	switch (o->result) {
	case SPF_FAIL:
		/* The domain's own explanation (exp=, RFC 7208 6.2; printable,
		 * bounded, encoded for the reply by the engine) after ours. */
		verdict_reject(out, sc->fail, "spf.fail", "550", "5.7.23",
		               "SPF %s %s does not permit client %s to send its mail%s%s", what,
		               o->domain, ip, o->explanation[0] ? ": " : "", o->explanation);
		break;
	case SPF_PERMERROR:
		verdict_reject(out, sc->permerror, "spf.permerror", "550", "5.7.24",
		               "SPF record of %s %s is invalid (permerror)", what, o->domain);
		break;
	case SPF_TEMPERROR:
		return check_retry_reply(
		    out, "451", "4.7.24",
		    "SPF check of %s %s failed temporarily (DNS), try again later", what,
		    o->domain);
	case SPF_SOFTFAIL:
		if (sc->softfail_score != 0)
			verdict_score(out, MODE_REJECT, "spf.softfail", sc->softfail_score,
			              "SPF softfail for %s", o->domain);
		break;
	case SPF_NEUTRAL:
		if (sc->neutral_score != 0)
			verdict_score(out, MODE_REJECT, "spf.neutral", sc->neutral_score,
			              "SPF neutral for %s", o->domain);
		break;
	case SPF_NONE:
		if (sc->none_score != 0)
			verdict_score(out, MODE_REJECT, "spf.none", sc->none_score,
			              "No SPF record for %s", o->domain);
		break;
	case SPF_PASS:
		if (sc->pass_score != 0)
			verdict_score(out, MODE_REJECT, "spf.pass", sc->pass_score,
			              "SPF pass for %s", o->domain);
		break;
	}
	return CHECK_DONE;
}

static int spf_mail(const struct check_ctx *cx, struct verdicts *out)
{
	const struct spf_conf *sc = cx->mconf;
	const struct conn *c = cx->conn;
	const struct mailaddr *from = &cx->txn->sender;
	struct spf_outcome ho, mo;
	int timeout = check_dns_timeout(cx);
	int null = (from->flags & ADDR_NULL) || from->domain[0] == '\0';
	int helo_ok = c->helo_seen && !c->helo_truncated && domain_is_fqdn(c->helo);
	int did_helo = 0, did_mail = 0, rc = CHECK_DONE;
	char envfrom[ADDR_MAX + 2] = "";

	if (c->client_ip.family == 0)
		return CHECK_DONE;
	for (int i = 0; i < sc->skip_clients.n; i++)
		if (ip_in_net(&c->client_ip, &sc->skip_clients.v[i].ip, sc->skip_clients.v[i].len))
			return CHECK_DONE;
	if (null || sc->check_helo) {
		/* RFC 7208 2.3: a HELO that is not a domain name gives none */
		memset(&ho, 0, sizeof(ho));
		if (helo_ok)
			spf_eval(cx->conf->dns, timeout, &c->client_ip, c->helo, c->helo, &ho);
		did_helo = 1;
	}
	if (!null) {
		snprintf(envfrom, sizeof(envfrom), "%s@%s", from->local, from->domain);
		if (!(did_helo && ho.result == SPF_FAIL)) {
			char sender[ADDR_MAX + 16];

			/* RFC 7208 4.3: the domain after the last '@' (lib/addr.c
			 * keeps it even when the address is bad syntax: that is
			 * the envelope checks' business), with "postmaster" for
			 * an empty local part; %{h} is the HELO as given (7.3). */
			snprintf(sender, sizeof(sender), "%s@%s",
			         from->local[0] ? from->local : "postmaster", from->domain);
			/* kept for greylisting's pool key (lib/checks/greylist.c) */
			spf_eval_txn(cx->txn->ref, cx->conf->dns, timeout, &c->client_ip,
			             c->helo_seen ? c->helo : "", sender, &mo);
			did_mail = 1;
		}
	}
	/* The results for the one Authentication-Results header (written by
	 * the engine, lib/authres.h) and for dmarc, which aligns with the
	 * smtp.mailfrom result: recorded also without spf.add_headers. */
	if (did_mail)
		verdict_auth(out, "spf", spf_result_name(mo.result), "smtp.mailfrom",
		             mo.domain[0] ? mo.domain : "unknown", "%s", "");
	if (did_helo && helo_ok)
		verdict_auth(out, "spf", spf_result_name(ho.result), "smtp.helo", ho.domain, "%s",
		             "");
	for (int i = 0; i < out->nauth; i++)
		out->auth[i].noheader = !sc->add_headers;
	if (sc->add_headers) {
		if (did_mail)
			received_spf(cx, out, &mo, "mailfrom", envfrom);
		if (did_helo)
			received_spf(cx, out, &ho, "helo", envfrom);
	}
	/* A HELO fail decides; else the MAIL FROM result (RFC 7208 2.3, 2.4). */
	if (did_helo && helo_ok && (ho.result == SPF_FAIL || !did_mail))
		rc = act(cx, out, &ho, "HELO");
	if (did_mail)
		rc = act(cx, out, &mo, "domain") == CHECK_RETRY ? CHECK_RETRY : rc;
	return rc;
}

/* --- forged Authentication-Results (RFC 8601 5, lib/authres.c) ----------- */

static int spf_header(const struct check_ctx *cx, struct verdicts *out)
{
	if (strcasecmp(cx->hdr_name, "Authentication-Results") != 0 ||
	    !authres_remover(cx->conf, "spf") || !authres_is_ours(cx->hdr_value, authserv(cx)))
		return CHECK_DONE;
	verdict_delete_header(out, cx->hdr_name, cx->hdr_index);
	/* A note for the log line, without a score. */
	verdict_score(out, MODE_REJECT, "spf.forged_ar", 0,
	              "Authentication-Results with our authserv-id %s removed", authserv(cx));
	return CHECK_DONE;
}

const struct check_module check_spf = {
	.name = "spf",
	.doc = "Sender Policy Framework (RFC 7208) for MAIL FROM and HELO",
	.params = spf_params,
	.conf_size = sizeof(struct spf_conf),
	.default_mode = "reject",
	.default_on_error = "defer",
	.init = spf_init,
	.hook = {
		[STAGE_MAIL] = spf_mail,
		[STAGE_HEADER] = spf_header,
	},
};
