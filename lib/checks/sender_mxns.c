/* lib/checks/sender_mxns.c - the sender domain's MX and NS host addresses
 *
 * What Postfix does with check_sender_mx_access / check_sender_ns_access,
 * plus a built-in bogus-MX test.  At MAIL FROM:
 *   1. one batch asks the sender domain's MX (and its A/AAAA, the implicit
 *      MX when it has no MX) and the NS of the domain and of its parent
 *      domains (the nearest one that has NS counts; never the top-level
 *      domain);
 *   2. one follow-up batch, within what is left of the same deadline, asks
 *      the A and AAAA records of at most sender_mxns.max_hosts MX hosts and
 *      as many NS hosts (an MX "host" that is an IP address is taken as is).
 * Sub-checks:
 *   sender_mxns.mx_access  each address of each MX host, in preference
 *                          order, is looked up in these tables; the first
 *                          entry other than DUNNO decides (REJECT 550 5.7.1,
 *                          DEFER 450 4.7.1, SCORE n, OK whitelists the
 *                          message - beware: the sender chooses its MX)
 *   sender_mxns.ns_access  the same for the name servers
 *   sender_mxns.bogus_mx   (a mode) the domain has MX hosts with addresses,
 *                          but every one of them is in a range that cannot
 *                          receive mail from the Internet (loopback, RFC
 *                          1918 private, shared, link-local, "this network",
 *                          multicast, reserved, documentation, IPv6 unique
 *                          local...): 550 5.1.8.  MX hosts without any
 *                          address are not judged.
 * Each sub-check states at most one verdict; an OK from a table ends the
 * check.  A domain that does not exist or has a null MX is left to
 * sender_domain.
 * When nothing fired and a lookup failed (SERVFAIL, timeout) the check
 * returns check_retry_reply() (451 4.4.3): a host that could not be looked
 * up might have matched.  sender_mxns.on_error defaults to skip, as Postfix
 * ignores such lookup failures; sender_domain defers for a domain whose own
 * lookup fails.  Thread-safe: tables are immutable, no other state.
 *
 * See also: Postfix check_sender_mx_access, check_sender_ns_access
 * (smtpd_check.c check_server_access), config/bogon-networks.cidr.
 */
#include "check.h"
#include "dns.h"
#include "engine.h"
#include "util.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define MXNS_HOSTS_MAX   20 /* upper bound of sender_mxns.max_hosts */
#define MXNS_ADDRS_MAX   16 /* addresses kept per host */
#define MXNS_PARENTS_MAX 4  /* parent domains asked for NS */

struct sender_mxns_conf {
	struct maplist mx_access;
	struct maplist ns_access;
	enum mode bogus_mx;
	long max_hosts;
};

#define F(x) offsetof(struct sender_mxns_conf, x)
static const struct conf_param sender_mxns_params[] = {
	{ "sender_mxns.mx_access", "", CONF_MAPS, F(mx_access), 0, 0,
	  "tables (cidr:) for the addresses of the sender domain's MX hosts" },
	{ "sender_mxns.ns_access", "", CONF_MAPS, F(ns_access), 0, 0,
	  "tables (cidr:) for the addresses of the sender domain's name servers" },
	{ "sender_mxns.bogus_mx", "reject", CONF_MODE, F(bogus_mx), 0, 0,
	  "every MX address is loopback, private, link-local, multicast...: 550 5.1.8" },
	{ "sender_mxns.max_hosts", "10", CONF_INT, F(max_hosts), 1, MXNS_HOSTS_MAX,
	  "MX hosts, and NS hosts, whose addresses are looked up" },
	CONF_END
};

/* Ranges that cannot receive mail from the Internet.  IPv4-mapped IPv6
 * addresses match the IPv4 rows (ip_in_net). */
static const struct bogon {
	const char *net;
	const char *what;
} bogons[] = {
	{ "0.0.0.0/8", "a 'this network' address" },
	{ "10.0.0.0/8", "a private address" },
	{ "100.64.0.0/10", "a shared (carrier-grade NAT) address" },
	{ "127.0.0.0/8", "a loopback address" },
	{ "169.254.0.0/16", "a link-local address" },
	{ "172.16.0.0/12", "a private address" },
	{ "192.0.2.0/24", "a documentation address" },
	{ "192.168.0.0/16", "a private address" },
	{ "198.18.0.0/15", "a benchmarking address" },
	{ "198.51.100.0/24", "a documentation address" },
	{ "203.0.113.0/24", "a documentation address" },
	{ "224.0.0.0/4", "a multicast address" },
	{ "240.0.0.0/4", "a reserved address" },
	{ "::/128", "the unspecified address" },
	{ "::1/128", "a loopback address" },
	{ "100::/64", "a discard-only address" },
	{ "2001:db8::/32", "a documentation address" },
	{ "3fff::/20", "a documentation address" },
	{ "fc00::/7", "a unique local (private) address" },
	{ "fe80::/10", "a link-local address" },
	{ "ff00::/8", "a multicast address" },
};

/* What kind of non-routable address ip is, or NULL for a public one. */
static const char *bogon_kind(const struct ipaddr *ip)
{
	for (size_t i = 0; i < ARRAY_SIZE(bogons); i++) {
		struct ipaddr net;
		int len;

		/* Constant, valid rows: parsing cannot fail. */
		if (ip_parse_cidr(bogons[i].net, &net, &len) == 0 && ip_in_net(ip, &net, len))
			return bogons[i].what;
	}
	return NULL;
}

/* One MX or NS host and what its address lookups gave. */
struct host {
	char name[DNS_NAME_MAX + 2];
	int qa, qaaaa; /* indexes in the follow-up batch, -1 if not asked */
	int naddr;
	struct ipaddr addr[MXNS_ADDRS_MAX];
	int failed; /* an address lookup failed temporarily */
};

struct hostset {
	int n;
	struct host h[MXNS_HOSTS_MAX];
};

/* Add host name (answer text) to set unless full, invalid or present. */
static void host_add(struct hostset *s, const char *name, long max)
{
	struct ipaddr ip;

	if (s->n >= max || s->n >= MXNS_HOSTS_MAX || strcmp(name, ".") == 0)
		return;
	for (int i = 0; i < s->n; i++)
		if (strcmp(s->h[i].name, name) == 0)
			return;
	if (ip_parse(name, &ip) < 0 && !dns_name_valid(name))
		return; /* no address can be found for it */
	memset(&s->h[s->n], 0, sizeof(s->h[s->n]));
	bcopy_str(s->h[s->n].name, sizeof(s->h[s->n].name), name);
	s->h[s->n].qa = s->h[s->n].qaaaa = -1;
	s->n++;
}

/* Append the A or AAAA answers of query q in batch b to host h; 1 when the
 * lookup failed temporarily. */
static int take_addrs(const struct dns_batch *b, int q, struct host *h)
{
	char text[64];
	enum dns_status st;

	if (q < 0)
		return 0;
	st = dns_result_status(b, q);
	if (dns_status_temporary(st))
		return 1;
	for (int j = 0; j < dns_result_count(b, q) && h->naddr < MXNS_ADDRS_MAX; j++)
		if (dns_result_text(b, q, j, text, sizeof(text)) > 0 &&
		    ip_parse(text, &h->addr[h->naddr]) == 0)
			h->naddr++;
	return 0;
}

struct mx_order {
	unsigned pref;
	int j;
};

static int mx_cmp(const void *x, const void *y)
{
	const struct mx_order *a = x, *b = y;

	if (a->pref != b->pref)
		return a->pref < b->pref ? -1 : 1;
	return a->j - b->j;
}

/* The MX hosts of answer q, in preference order. */
static void mx_hosts(const struct dns_batch *b, int q, struct hostset *s, long max)
{
	struct mx_order ord[64];
	char host[DNS_NAME_MAX + 2];
	int n = 0;

	for (int j = 0; j < dns_result_count(b, q) && n < (int)ARRAY_SIZE(ord); j++) {
		ord[n].j = j;
		if (dns_result_mx(b, q, j, &ord[n].pref, host, sizeof(host)) == 0)
			n++;
	}
	qsort(ord, (size_t)n, sizeof(ord[0]), mx_cmp);
	for (int i = 0; i < n; i++)
		if (dns_result_mx(b, q, ord[i].j, &ord[i].pref, host, sizeof(host)) == 0)
			host_add(s, host, max);
}

/* Look up every address of every host of s in m; the first entry other
 * than DUNNO becomes the verdict.  Returns 0 when none matched, 2 for an
 * OK (the message is whitelisted: nothing else to check), else 1. */
static int check_tables(const struct maplist *m, const struct hostset *s, const char *symbol,
                        const char *kind, const struct mailaddr *a, struct verdicts *out)
{
	struct table_result res;
	char ip[64], what[DNS_NAME_MAX + 200];

	for (int i = 0; i < s->n; i++)
		for (int k = 0; k < s->h[i].naddr; k++) {
			if (!maplist_lookup_ip(m, &s->h[i].addr[k], &res) || res.action == TA_DUNNO)
				continue;
			ip_format(&s->h[i].addr[k], ip, sizeof(ip));
			snprintf(what, sizeof(what), "%s host %.100s[%s] of %.100s", kind,
			         s->h[i].name, ip, a->domain);
			switch (res.action) {
			case TA_OK: verdict_ok(out, symbol); return 2;
			case TA_SCORE:
				verdict_score(out, MODE_REJECT, symbol, res.score, "%s", what);
				break;
			case TA_DEFER:
				verdict_defer(out, MODE_REJECT, symbol, "450", "4.7.1",
				              "Sender address <%.100s> deferred: %s: %s", a->full,
				              what,
				              res.text ? res.text : "Access temporarily denied");
				break;
			default:
				verdict_reject(out, MODE_REJECT, symbol, "550", "5.7.1",
				               "Sender address <%.100s> rejected: %s: %s", a->full,
				               what, res.text ? res.text : "Access denied");
				break;
			}
			return 1;
		}
	return 0;
}

/* bogus_mx: 1 when it fired, 0 when not, -1 when it cannot tell (a lookup
 * failed and every address found so far is bogus). */
static int check_bogus(const struct sender_mxns_conf *mc, const struct hostset *s,
                       const struct mailaddr *a, struct verdicts *out)
{
	const struct host *first = NULL;
	const char *kind = NULL;
	int firstk = 0, failed = 0;
	char ip[64];

	for (int i = 0; i < s->n; i++) {
		failed |= s->h[i].failed;
		for (int k = 0; k < s->h[i].naddr; k++) {
			const char *b = bogon_kind(&s->h[i].addr[k]);

			if (b == NULL)
				return 0; /* a public address: mail can reach it */
			if (first == NULL) {
				first = &s->h[i];
				firstk = k;
				kind = b;
			}
		}
	}
	if (failed)
		return -1;
	if (first == NULL)
		return 0;
	ip_format(&first->addr[firstk], ip, sizeof(ip));
	verdict_reject(out, mc->bogus_mx, "sender_mxns.bogus_mx", "550", "5.1.8",
	               "Sender address <%.100s> rejected: domain %.100s has no MX host with a "
	               "public address (%.100s[%s] is %s)",
	               a->full, a->domain, first->name, ip, kind);
	return 1;
}

/* Ask A and AAAA for each host of s in batch b (an IP address needs no
 * lookup). */
static void ask_addrs(struct dns_batch *b, struct hostset *s)
{
	for (int i = 0; i < s->n; i++) {
		struct host *h = &s->h[i];

		if (ip_parse(h->name, &h->addr[0]) == 0) {
			h->naddr = 1;
			continue;
		}
		h->qa = dns_batch_add(b, h->name, LDNS_RR_TYPE_A);
		h->qaaaa = dns_batch_add(b, h->name, LDNS_RR_TYPE_AAAA);
	}
}

static void take_all(const struct dns_batch *b, struct hostset *s)
{
	for (int i = 0; i < s->n; i++) {
		s->h[i].failed |= take_addrs(b, s->h[i].qa, &s->h[i]);
		s->h[i].failed |= take_addrs(b, s->h[i].qaaaa, &s->h[i]);
	}
}

static int any_failed(const struct hostset *s)
{
	for (int i = 0; i < s->n; i++)
		if (s->h[i].failed)
			return 1;
	return 0;
}

static int sender_mxns_mail(const struct check_ctx *cx, struct verdicts *out)
{
	const struct sender_mxns_conf *mc = cx->mconf;
	const struct mailaddr *a = &cx->txn->sender;
	int need_mx = mc->mx_access.n > 0 || mc->bogus_mx != MODE_OFF;
	int need_ns = mc->ns_access.n > 0;
	int qmx = -1, qa = -1, qaaaa = -1, qns[1 + MXNS_PARENTS_MAX], nns = 0;
	int fired = 0, failed = 0, implicit = 0, r, rc = CHECK_DONE;
	struct hostset *mx = NULL, *ns = NULL;
	struct dns_batch *b = NULL, *b2 = NULL;
	const char *failwhat = NULL;
	enum dns_status st;

	if (!addr_fqdn_domain(a) || !dns_name_valid(a->domain) || (!need_mx && !need_ns))
		return CHECK_DONE;
	if (cx->conf->dns == NULL)
		return check_retry(out, "no DNS resolver");

	/* Batch 1: MX (+ implicit MX addresses) and NS of the domain and its
	 * parents, all at once. */
	b = dns_batch_new(cx->conf->dns, check_dns_timeout(cx));
	if (need_mx) {
		qmx = dns_batch_add(b, a->domain, LDNS_RR_TYPE_MX);
		qa = dns_batch_add(b, a->domain, LDNS_RR_TYPE_A);
		qaaaa = dns_batch_add(b, a->domain, LDNS_RR_TYPE_AAAA);
	}
	if (need_ns) {
		const char *d = a->domain;

		while (d && nns < (int)ARRAY_SIZE(qns)) {
			qns[nns++] = dns_batch_add(b, d, LDNS_RR_TYPE_NS);
			d = strchr(d, '.');
			/* Parents with at least two labels: not the TLD. */
			if (d && strchr(d + 1, '.') && d[1] != '\0')
				d++;
			else
				d = NULL;
		}
	}
	dns_batch_run(b);

	mx = xcalloc(1, sizeof(*mx));
	ns = xcalloc(1, sizeof(*ns));
	if (need_mx) {
		st = dns_result_status(b, qmx);
		if (st == DNS_NXDOMAIN)
			goto done; /* no such domain: sender_domain's business */
		if (st == DNS_OK) {
			mx_hosts(b, qmx, mx, mc->max_hosts);
		} else if (st == DNS_NODATA) {
			/* Implicit MX: the domain itself, addresses already here. */
			implicit = 1;
			host_add(mx, a->domain, mc->max_hosts);
			if (mx->n == 1) {
				mx->h[0].failed |= take_addrs(b, qa, &mx->h[0]);
				mx->h[0].failed |= take_addrs(b, qaaaa, &mx->h[0]);
			}
		} else {
			failed = 1;
			failwhat = "MX records";
		}
	}
	for (int i = 0; i < nns; i++) {
		st = dns_result_status(b, qns[i]);
		if (st == DNS_OK) {
			char host[DNS_NAME_MAX + 2];

			for (int j = 0; j < dns_result_count(b, qns[i]); j++)
				if (dns_result_text(b, qns[i], j, host, sizeof(host)) > 0)
					host_add(ns, host, mc->max_hosts);
			break;
		}
		if (st == DNS_NXDOMAIN)
			break;
		if (dns_status_temporary(st)) {
			failed = 1;
			failwhat = failwhat ? failwhat : "NS records";
			break;
		}
	}

	/* Batch 2: the hosts' addresses, within what is left. */
	b2 = dns_batch_new(cx->conf->dns, dns_batch_remaining(b));
	if (!implicit)
		ask_addrs(b2, mx);
	ask_addrs(b2, ns);
	dns_batch_run(b2);
	if (!implicit)
		take_all(b2, mx);
	take_all(b2, ns);

	/* Each sub-check states at most one verdict; an OK ends the check. */
	if (mc->mx_access.n > 0) {
		r = check_tables(&mc->mx_access, mx, "sender_mxns.mx_access", "MX", a, out);
		if (r == 2)
			goto done;
		fired |= r;
	}
	if (mc->ns_access.n > 0) {
		r = check_tables(&mc->ns_access, ns, "sender_mxns.ns_access", "NS", a, out);
		if (r == 2)
			goto done;
		fired |= r;
	}
	if (mc->bogus_mx != MODE_OFF && check_bogus(mc, mx, a, out) == 1)
		fired = 1;
	if (!fired && (any_failed(mx) || any_failed(ns))) {
		failed = 1;
		failwhat = failwhat ? failwhat : "MX or NS host addresses";
	}
	if (!fired && failed)
		rc = check_retry_reply(out, "451", "4.4.3",
		                       "Sender address <%.100s> deferred: DNS lookup of the %s "
		                       "of domain %.100s failed",
		                       a->full, failwhat, a->domain);
done:
	free(mx);
	free(ns);
	if (b2)
		dns_batch_free(b2);
	dns_batch_free(b);
	return rc;
}

const struct check_module check_sender_mxns = {
	.name = "sender_mxns",
	.doc = "addresses of the sender domain's MX and NS hosts (access tables, bogus MX)",
	.params = sender_mxns_params,
	.conf_size = sizeof(struct sender_mxns_conf),
	.default_mode = "reject",
	.default_on_error = "skip",
	.hook = {
		[STAGE_MAIL] = sender_mxns_mail,
	},
};
