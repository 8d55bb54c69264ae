/* lib/checks/helo.c - HELO/EHLO plausibility
 *
 * Sub-checks, each with its own mode (the effective mode is the lower of
 * helo.mode and the sub-check's):
 *   helo.missing           no HELO/EHLO before MAIL
 *   helo.syntax            neither a domain name nor an address literal
 *   helo.bare_ip           an IP address without [brackets]
 *   helo.literal_mismatch  [address literal] that is not the client's address
 *   helo.localhost         "localhost" (or a loopback literal) from a
 *                          client that is not on the loopback
 *   helo.own_name          one of our own names or addresses, from a client
 *                          that is not us
 *   helo.non_fqdn          a name with no dot (RFC 5321 4.1.1.1 asks for
 *                          the FQDN)
 * At most one of syntax / bare_ip / literal_mismatch / non_fqdn fires for a
 * name.  Replies use 550 5.7.1 and quote the HELO through the engine's reply
 * encoder.  Thread-safe: reads only its settings and the connection.
 */
#include "check.h"
#include "engine.h"
#include "util.h"

#include <stddef.h>
#include <sys/socket.h>
#include <string.h>
#include <strings.h>

struct helo_conf {
	enum mode missing;
	enum mode syntax;
	enum mode bare_ip;
	enum mode literal_mismatch;
	enum mode localhost;
	enum mode own_name;
	enum mode non_fqdn;
	struct strlist own_names;
	struct netlist own_addresses;
};

#define F(x) offsetof(struct helo_conf, x)
static const struct conf_param helo_params[] = {
	{ "helo.missing", "reject", CONF_MODE, F(missing), 0, 0,
	  "client sent MAIL without HELO or EHLO" },
	{ "helo.syntax", "reject", CONF_MODE, F(syntax), 0, 0,
	  "HELO is neither a valid host name nor an address literal" },
	{ "helo.bare_ip", "reject", CONF_MODE, F(bare_ip), 0, 0,
	  "HELO is an IP address without [brackets]" },
	{ "helo.literal_mismatch", "reject", CONF_MODE, F(literal_mismatch), 0, 0,
	  "HELO is an [address literal] that is not the client's address" },
	{ "helo.localhost", "reject", CONF_MODE, F(localhost), 0, 0,
	  "HELO is localhost (or a loopback literal) from a non-loopback client" },
	{ "helo.own_name", "reject", CONF_MODE, F(own_name), 0, 0,
	  "HELO is one of our own names or addresses" },
	{ "helo.non_fqdn", "reject", CONF_MODE, F(non_fqdn), 0, 0,
	  "HELO is a host name without a dot" },
	{ "helo.own_names", "", CONF_LIST, F(own_names), 0, 0,
	  "our own host names, besides hostname and the MTA's $j" },
	{ "helo.own_addresses", "", CONF_NETS, F(own_addresses), 0, 0,
	  "our own public addresses; HELO [addr] or addr from others is forged" },
	CONF_END
};

static int is_localhost_name(const char *h)
{
	return strcasecmp(h, "localhost") == 0 || strcasecmp(h, "localhost.localdomain") == 0 ||
	       strcasecmp(h, "localhost.") == 0;
}

/* A host name or a bare IP address.  Underscores are tolerated, as Postfix
 * does: Windows hosts still send them and they are no sign of spam. */
static int helo_name_check(const char *h, int (*check)(const char *))
{
	char name[HELO_MAX + 1];
	struct ipaddr ip;

	if (ip_parse(h, &ip) == 0)
		return 1;
	bcopy_str(name, sizeof(name), h);
	for (char *p = name; *p; p++)
		if (*p == '_')
			*p = 'x';
	return check(name);
}

static int is_own_address(const struct helo_conf *hc, const struct ipaddr *ip)
{
	for (int i = 0; i < hc->own_addresses.n; i++)
		if (ip_in_net(ip, &hc->own_addresses.v[i].ip, hc->own_addresses.v[i].len))
			return 1;
	return 0;
}

static int is_own_name(const struct helo_conf *hc, const struct check_ctx *cx, const char *h)
{
	char name[HELO_MAX + 1];
	size_t len = bcopy_str(name, sizeof(name), h);

	if (len && len < sizeof(name) && name[len - 1] == '.')
		name[len - 1] = '\0'; /* "mx.example.org." is the same name */
	if (strcasecmp(name, cx->conf->hostname) == 0 || strcasecmp(name, cx->conn->our_name) == 0)
		return 1;
	for (int i = 0; i < hc->own_names.n; i++)
		if (strcasecmp(name, hc->own_names.v[i]) == 0)
			return 1;
	return 0;
}

static int helo_hook(const struct check_ctx *cx, struct verdicts *out)
{
	const struct helo_conf *hc = cx->mconf;
	const struct conn *c = cx->conn;
	const char *h = c->helo;
	int client_loopback = c->local || (c->client_ip.family && ip_is_loopback(&c->client_ip));
	struct ipaddr ip;

	if (c->helo_truncated || h[0] == '\0' ||
	    (h[0] != '[' && !helo_name_check(h, domain_valid))) {
		verdict_reject(out, hc->syntax, "helo.syntax", "550", "5.5.2",
		               "Invalid HELO name '%.80s'", h);
		return CHECK_DONE;
	}
	if (h[0] == '[') {
		if (ip_parse_literal(h, &ip) < 0) {
			verdict_reject(out, hc->syntax, "helo.syntax", "550", "5.5.2",
			               "Invalid HELO address literal '%.80s'", h);
			return CHECK_DONE;
		}
		if (ip_is_loopback(&ip) && !client_loopback)
			verdict_reject(out, hc->localhost, "helo.localhost", "550", "5.7.1",
			               "HELO %.80s is a loopback address", h);
		else if (is_own_address(hc, &ip) && !client_loopback &&
		         !(c->client_ip.family && is_own_address(hc, &c->client_ip)))
			verdict_reject(out, hc->own_name, "helo.own_name", "550", "5.7.1",
			               "HELO %.80s is our own address", h);
		else if (c->client_ip.family &&
		         !ip_in_net(&c->client_ip, &ip, ip.family == AF_INET ? 32 : 128))
			verdict_reject(out, hc->literal_mismatch, "helo.literal_mismatch", "550",
			               "5.7.1", "HELO %.80s does not match your address %s", h,
			               c->client_addr);
		return CHECK_DONE;
	}
	if (ip_parse(h, &ip) == 0) {
		verdict_reject(out, hc->bare_ip, "helo.bare_ip", "550", "5.5.2",
		               "HELO %.80s is an IP address; use [%.80s] or your host name", h, h);
		return CHECK_DONE;
	}
	if (is_localhost_name(h)) {
		if (!client_loopback)
			verdict_reject(out, hc->localhost, "helo.localhost", "550", "5.7.1",
			               "HELO %.80s from a remote client", h);
		return CHECK_DONE;
	}
	if (is_own_name(hc, cx, h) && !client_loopback &&
	    !(c->client_ip.family && is_own_address(hc, &c->client_ip))) {
		verdict_reject(out, hc->own_name, "helo.own_name", "550", "5.7.1",
		               "HELO %.80s is our own name", h);
		return CHECK_DONE;
	}
	if (!helo_name_check(h, domain_is_fqdn))
		verdict_reject(out, hc->non_fqdn, "helo.non_fqdn", "550", "5.5.2",
		               "HELO %.80s is not a fully qualified domain name", h);
	return CHECK_DONE;
}

static int helo_mail(const struct check_ctx *cx, struct verdicts *out)
{
	const struct helo_conf *hc = cx->mconf;

	if (!cx->conn->helo_seen)
		verdict_reject(out, hc->missing, "helo.missing", "503", "5.5.1",
		               "Send HELO or EHLO first");
	return CHECK_DONE;
}

const struct check_module check_helo = {
	.name = "helo",
	.doc = "HELO/EHLO plausibility checks",
	.params = helo_params,
	.conf_size = sizeof(struct helo_conf),
	.default_mode = "reject",
	.default_on_error = "skip",
	.hook = {
		[STAGE_HELO] = helo_hook,
		[STAGE_MAIL] = helo_mail,
	},
};
