/* lib/checks/greylist.c - greylisting at RCPT, per recipient, pool-aware
 *
 * A triplet (where the client is, normalised sender, recipient) seen for
 * the first time is deferred with 451 4.7.1 naming the earliest retry
 * time; a retry after greylist.delay and within greylist.retry_window
 * passes, gets "X-Greylist: delayed N seconds by portcullis-VERSION at
 * HOST; DATE" (one header per message) and passes until the triplet has
 * been unused for greylist.expire.  Each recipient is decided on its own;
 * one that passed is never delayed again.  The pass is stored at RCPT and
 * the header added at end of message: when the MTA never gets our reply
 * (the daemon killed, the connection lost), its next retry finds a passed
 * triplet and gets no X-Greylist.  Documented in portcullis.conf(5), not
 * worked around: the same message and a new one of the same triplet look
 * alike at RCPT, and a message that was not delayed must not say it was.
 *
 * Where the client is (lib/grey.h, NET), chosen so that big senders that
 * retry from another address of their pool still match:
 *   spf:DOMAIN  the sender domain's SPF record authorises the client
 *               (greylist.pools, lib/spf.c with the DNS layer's cache);
 *   dom:DOMAIN  the client's verified reverse name (the MTA's: Postfix
 *               gives it only when forward-confirmed) is in the registered
 *               domain DOMAIN (libpsl) and does not look dynamic;
 *   ip:NET/LEN  else its /24 (IPv4) or /64 (IPv6) network, or its full
 *               address when its reverse name looks dynamic
 *               (greylist.dynamic_names, built in: config/greylist-dynamic.pcre).
 * A DNS failure while choosing only means the ip: form is used.
 *
 * Skipped: clients without an address (sendmail -bs), authenticated
 * clients, greylist.skip_clients, a verified client name in
 * greylist.skip_names (built in: config/greylist-pools.pcre), senders in
 * greylist.skip_senders, recipients in greylist.skip_recipients (per
 * recipient), transactions that something else already refuses, and
 * networks on the auto-whitelist: a NET that passed greylisting in
 * greylist.awl_count transactions skips it until greylist.awl_expire after
 * its last pass.  In score-aware mode (greylist.min_score > 0) a new
 * triplet is greylisted only when the score so far reaches min_score; the
 * decision is stored with the triplet, so a later score cannot keep it
 * deferred for ever.  It must be the last check at RCPT (it needs the
 * others' verdicts).
 *
 * Store errors are temporary failures (greylist.on_error, default defer):
 * never a pass by mistake.  In a dry run (portcullisctl check) nothing is
 * written.  Counters (passes, defers, awl passes) are kept in memory and
 * added to the store's "stats" namespace by the maintenance thread.
 * Thread-safe: atomics for the counters, libpsl's context is read-only,
 * the store serialises access.
 */
#include "addr.h"
#include "check.h"
#include "config.h"
#include "dns.h"
#include "engine.h"
#include "grey.h"
#include "log.h"
#include "maint.h"
#include "spf.h"
#include "store.h"
#include "table.h"
#include "util.h"

#include <libpsl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "greylist-lists.h" /* generated from config/greylist-*.pcre */

struct greylist_conf {
	long delay;
	long retry_window;
	long expire;
	long ipv4_prefix;
	long ipv6_prefix;
	int pools;
	long awl_count;
	long awl_expire;
	double min_score;
	struct netlist skip_clients;
	struct maplist skip_names;
	struct maplist skip_senders;
	struct maplist skip_recipients;
	struct maplist dynamic_names;
	/* the built-in lists when the keys are empty (owned) */
	struct table *builtin_pools;
	struct table *builtin_dynamic;
};

#define F(x) offsetof(struct greylist_conf, x)
static const struct conf_param greylist_params[] = {
	{ "greylist.delay", "5m", CONF_TIME, F(delay), 0, 86400,
	  "a retry is accepted this long after the first attempt" },
	{ "greylist.retry_window", "2d", CONF_TIME, F(retry_window), 60, 30 * 86400,
	  "a retry must come within this time of the first attempt, else it starts over" },
	{ "greylist.expire", "35d", CONF_TIME, F(expire), 3600, 366 * 86400,
	  "a passed triplet is forgotten this long after its last use" },
	{ "greylist.ipv4_prefix", "24", CONF_INT, F(ipv4_prefix), 8, 32,
	  "IPv4 clients are keyed by this network prefix length" },
	{ "greylist.ipv6_prefix", "64", CONF_INT, F(ipv6_prefix), 16, 128,
	  "IPv6 clients are keyed by this network prefix length" },
	{ "greylist.pools", "yes", CONF_BOOL, F(pools), 0, 0,
	  "recognise sending pools: clients authorised by the sender's SPF record, or with "
	  "forward-confirmed names in one registered domain, count as one (uses DNS)" },
	{ "greylist.awl_count", "5", CONF_INT, F(awl_count), 0, 1000000,
	  "a client network that passed this many times skips greylisting (0: no "
	  "auto-whitelist)" },
	{ "greylist.awl_expire", "35d", CONF_TIME, F(awl_expire), 3600, 366 * 86400,
	  "an auto-whitelisted network is forgotten this long after its last pass" },
	{ "greylist.min_score", "0", CONF_SCORE, F(min_score), 0, 1000,
	  "score-aware mode: greylist a new triplet only when the score so far reaches this "
	  "(0: greylist all)" },
	{ "greylist.skip_clients", "", CONF_NETS, F(skip_clients), 0, 0,
	  "client networks that are never greylisted (CIDR list)" },
	{ "greylist.skip_names", "", CONF_MAPS, F(skip_names), 0, 0,
	  "tables of verified client names that are never greylisted; empty: the built-in "
	  "list of known pools (config/greylist-pools.pcre)" },
	{ "greylist.skip_senders", "", CONF_MAPS, F(skip_senders), 0, 0,
	  "tables of senders (address, domain, local@) that are never greylisted" },
	{ "greylist.skip_recipients", "", CONF_MAPS, F(skip_recipients), 0, 0,
	  "tables of recipients (address, domain, local@) that are never greylisted" },
	{ "greylist.dynamic_names", "", CONF_MAPS, F(dynamic_names), 0, 0,
	  "tables of reverse names that look dynamic (keyed by full address); empty: the "
	  "built-in list (config/greylist-dynamic.pcre)" },
	CONF_END
};

/* --- counters ------------------------------------------------------------ */

static unsigned long long n_passes, n_defers, n_awl;

static void count(const struct check_ctx *cx, unsigned long long *n)
{
	if (!cx->dry_run)
		__atomic_add_fetch(n, 1, __ATOMIC_RELAXED);
}

static void add_counter(struct store *st, const char *key, unsigned long long delta)
{
	char buf[32];
	size_t len = 0;
	unsigned long long v = 0;

	if (delta == 0)
		return;
	if (store_get(st, "stats", key, strlen(key), buf, sizeof(buf) - 1, &len, NULL) == 1) {
		buf[len] = '\0';
		v = strtoull(buf, NULL, 10);
	}
	snprintf(buf, sizeof(buf), "%llu", v + delta);
	store_put(st, "stats", key, strlen(key), buf, strlen(buf), 0, STORE_NORMAL);
}

static void flush_counters(void *arg, struct store *st)
{
	(void)arg;
	add_counter(st, "greylist.passes", __atomic_exchange_n(&n_passes, 0, __ATOMIC_RELAXED));
	add_counter(st, "greylist.defers", __atomic_exchange_n(&n_defers, 0, __ATOMIC_RELAXED));
	add_counter(st, "greylist.awl_passes", __atomic_exchange_n(&n_awl, 0, __ATOMIC_RELAXED));
}

/* --- settings -------------------------------------------------------------- */

static int greylist_init(void *mconf, const struct conf *c, char *err, size_t errsize)
{
	struct greylist_conf *gc = mconf;

	(void)c;
	if (gc->skip_names.n == 0 &&
	    (gc->builtin_pools = table_open_text("pcre:(built-in greylist-pools.pcre)",
	                                         greylist_pools_pcre, err, errsize)) == NULL)
		return -1;
	if (gc->dynamic_names.n == 0 &&
	    (gc->builtin_dynamic = table_open_text("pcre:(built-in greylist-dynamic.pcre)",
	                                           greylist_dynamic_pcre, err, errsize)) == NULL)
		return -1;
	if (gc->delay >= gc->retry_window) {
		snprintf(err, errsize, "greylist.retry_window: must be longer than greylist.delay");
		return -1;
	}
	maint_on_flush(flush_counters, NULL);
	return 0;
}

static void greylist_fini(void *mconf)
{
	struct greylist_conf *gc = mconf;

	table_free(gc->builtin_pools);
	table_free(gc->builtin_dynamic);
}

static int name_in(const struct maplist *m, const struct table *builtin, const char *name)
{
	struct table_result res;

	if (m->n)
		return maplist_lookup_str(m, name, &res);
	return builtin && table_lookup_str(builtin, name, &res);
}

/* --- where the client is ---------------------------------------------------- */

static const psl_ctx_t *psl_ctx;

static void psl_init(void)
{
	psl_ctx_t *latest = psl_latest(NULL); /* the system's list, else the built-in one */

	psl_ctx = latest ? latest : psl_builtin();
}

static const psl_ctx_t *psl(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, psl_init);
	return psl_ctx;
}

static void net_of(const struct ipaddr *ip, int len, char *dst, size_t dstsize)
{
	struct ipaddr n = *ip;
	char text[64];
	int bytes = ip->family == AF_INET ? 4 : 16;

	for (int i = 0; i < bytes; i++) {
		int keep = len - i * 8;

		if (keep <= 0)
			n.a[i] = 0;
		else if (keep < 8)
			n.a[i] &= (unsigned char)(0xff << (8 - keep));
	}
	ip_format(&n, text, sizeof(text));
	snprintf(dst, dstsize, "ip:%s/%d", text, len);
}

/* Fill net (GREY_NET_MAX) with where the client is (see the top).
 * *name gets the verified client name or "" (for the skip list). */
static void client_net(const struct check_ctx *cx, const struct greylist_conf *gc, char *net,
                       char *name, size_t namesize)
{
	const struct conn *c = cx->conn;
	const struct txn *t = cx->txn;
	struct ipaddr ip;
	int dynamic = 0;

	ip_unmap(&c->client_ip, &ip);
	name[0] = '\0';
	if (gc->pools && cx->conf->dns && !(t->sender.flags & ADDR_NULL) && t->sender.domain[0]) {
		struct spf_outcome o;

		if (spf_eval(cx->conf->dns, check_dns_timeout(cx), &c->client_ip, c->helo,
		             t->sender.full, &o) == SPF_PASS &&
		    o.domain[0]) {
			snprintf(net, GREY_NET_MAX, "spf:%s", o.domain);
			str_lower(net, GREY_NET_MAX, net);
			/* still learn the name for the skip list below */
		} else {
			net[0] = '\0';
		}
	} else {
		net[0] = '\0';
	}
	/* The MTA's verified client name (Postfix: forward-confirmed, else
	 * "unknown"; milter/ passes "unknown" for Sendmail's unverified ones). */
	if (strcmp(c->client_name, "unknown") != 0 && c->client_name[0]) {
		str_lower(name, namesize, c->client_name);
		dynamic = name_in(&gc->dynamic_names, gc->builtin_dynamic, name);
		if (net[0] == '\0' && !dynamic && gc->pools) {
			const char *reg = psl_registrable_domain(psl(), name);

			if (reg && strchr(reg, '.'))
				snprintf(net, GREY_NET_MAX, "dom:%s", reg);
		}
	}
	if (net[0])
		return;
	if (dynamic)
		net_of(&ip, ip.family == AF_INET ? 32 : 128, net, GREY_NET_MAX);
	else
		net_of(&ip, ip.family == AF_INET ? (int)gc->ipv4_prefix : (int)gc->ipv6_prefix, net,
		       GREY_NET_MAX);
}

/* --- the decision -------------------------------------------------------------- */

/* 1 when the recipient is refused anyway: a reject/defer held from
 * connect, HELO, MAIL or an earlier RCPT check, or a score that reaches
 * score.reject / score.defer (applied by the engine after the hooks). */
static int refused_already(const struct check_ctx *cx)
{
	const struct conn *c = cx->conn;
	const struct txn *t = cx->txn;
	const struct core_conf *core = &cx->conf->core;
	double score = c->score + t->score + cx->rcpt->score;

	if (cx->rcpt_refused)
		return 1;
	if ((core->score_reject > 0 && score >= core->score_reject) ||
	    (core->score_defer > 0 && score >= core->score_defer))
		return 1;
	for (int i = 0; i < c->nheld; i++)
		if (c->held[i].action == ACT_REJECT || c->held[i].action == ACT_DEFER)
			return 1;
	for (int i = 0; i < t->nheld; i++)
		if (t->held[i].action == ACT_REJECT || t->held[i].action == ACT_DEFER)
			return 1;
	return 0;
}

static void utc_time(time_t when, char *dst, size_t dstsize)
{
	struct tm tm;

	gmtime_r(&when, &tm);
	strftime(dst, dstsize, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

static void defer(const struct check_ctx *cx, struct verdicts *out, enum mode mode,
                  const char *symbol, const char *why, time_t retry_at, time_t now)
{
	char when[40];

	utc_time(retry_at, when, sizeof(when));
	count(cx, &n_defers);
	verdict_defer(out, mode, symbol, "451", "4.7.1",
	              "Greylisted: %s, please retry after %s (in %ld seconds)", why, when,
	              (long)(retry_at > now ? retry_at - now : 0));
}

/* Count a pass of net for the auto-whitelist (once per transaction: at the
 * first recipient that passes). */
static int awl_pass(const struct check_ctx *cx, const struct greylist_conf *gc, const char *net,
                    time_t now)
{
	unsigned char buf[AWL_REC_SIZE];
	struct awl_rec a = { 0 };
	size_t len;
	int r;

	if (gc->awl_count == 0 || cx->dry_run || cx->txn->naccepted > 0)
		return 0;
	r = store_get(cx->store, AWL_NS, net, strlen(net), buf, sizeof(buf), &len, NULL);
	if (r < 0 && store_last_error() != STORE_ERR_SPACE)
		return -1;
	if (r != 1 || awl_rec_decode(buf, len, &a) < 0)
		a = (struct awl_rec){ .first = now };
	a.passes++;
	a.last = now;
	awl_rec_encode(&a, buf);
	return store_put(cx->store, AWL_NS, net, strlen(net), buf, sizeof(buf),
	                 now + gc->awl_expire, STORE_NORMAL);
}

/* 1 when net is auto-whitelisted. */
static int awl_listed(const struct check_ctx *cx, const struct greylist_conf *gc, const char *net)
{
	unsigned char buf[AWL_REC_SIZE];
	struct awl_rec a;
	size_t len;

	if (gc->awl_count == 0)
		return 0;
	if (store_get(cx->store, AWL_NS, net, strlen(net), buf, sizeof(buf), &len, NULL) != 1)
		return 0;
	return awl_rec_decode(buf, len, &a) == 0 && a.passes >= (uint32_t)gc->awl_count;
}

static int put_rec(const struct check_ctx *cx, const char *key, size_t keylen,
                   const struct grey_rec *g, time_t expires)
{
	unsigned char buf[GREY_REC_SIZE];

	if (cx->dry_run)
		return 0;
	grey_rec_encode(g, buf);
	return store_put(cx->store, GREY_NS, key, keylen, buf, sizeof(buf), expires, STORE_NORMAL);
}

static int store_failed(struct verdicts *out, const char *what)
{
	return check_retry(out, "greylist store: %s: %s", what, store_strerror(store_last_error()));
}

static int greylist_rcpt(const struct check_ctx *cx, struct verdicts *out)
{
	const struct greylist_conf *gc = cx->mconf;
	const struct conn *c = cx->conn;
	const struct txn *t = cx->txn;
	const struct rcpt *rc = cx->rcpt;
	enum mode mode = MODE_REJECT;
	char net[GREY_NET_MAX], name[DNS_NAME_MAX + 2], sender[GREY_KEY_MAX], key[GREY_KEY_MAX];
	unsigned char buf[GREY_REC_SIZE];
	struct table_result res;
	struct grey_rec g;
	size_t keylen, len;
	time_t now;
	int r;

	if (c->client_ip.family == 0 || t->auth_authen[0] || c->auth_authen[0])
		return CHECK_DONE;
	if (refused_already(cx))
		return CHECK_DONE;
	for (int i = 0; i < gc->skip_clients.n; i++)
		if (ip_in_net(&c->client_ip, &gc->skip_clients.v[i].ip, gc->skip_clients.v[i].len))
			return CHECK_DONE;
	if (maplist_lookup_addr(&gc->skip_senders, &t->sender, &res) ||
	    maplist_lookup_addr(&gc->skip_recipients, &rc->addr, &res))
		return CHECK_DONE;
	if (cx->store == NULL)
		return check_retry(out, "no store (state_dir)");

	client_net(cx, gc, net, name, sizeof(name));
	if (name[0] && name_in(&gc->skip_names, gc->builtin_pools, name))
		return CHECK_DONE;
	now = clock_now();
	if (awl_listed(cx, gc, net)) {
		count(cx, &n_awl);
		if (awl_pass(cx, gc, net, now) < 0)
			return store_failed(out, "auto-whitelist");
		return CHECK_DONE;
	}
	grey_normalise_sender(sender, sizeof(sender),
	                      (t->sender.flags & ADDR_NULL) ? "" : t->sender.full);
	keylen = grey_key(key, sizeof(key), net, sender, rc->addr.full);
	if (keylen == 0)
		return CHECK_DONE; /* cannot happen with bounded addresses */

	r = store_get(cx->store, GREY_NS, key, keylen, buf, sizeof(buf), &len, NULL);
	if (r < 0 && store_last_error() != STORE_ERR_SPACE)
		return store_failed(out, "lookup");
	if (r == 1 && grey_rec_decode(buf, len, &g) == 0) {
		if (g.flags & (GREY_PASSED | GREY_NOGREY)) {
			g.passes++;
			g.last = now;
			count(cx, &n_passes);
			if (put_rec(cx, key, keylen, &g, now + gc->expire) < 0 ||
			    awl_pass(cx, gc, net, now) < 0)
				return store_failed(out, "update");
			return CHECK_DONE;
		}
		if (now < g.first + gc->delay) {
			g.defers++;
			g.last = now;
			if (put_rec(cx, key, keylen, &g, g.first + gc->retry_window) < 0)
				return store_failed(out, "update");
			defer(cx, out, mode, "greylist.early", "retried too early",
			      g.first + gc->delay, now);
			return CHECK_DONE;
		}
		if (now <= g.first + gc->retry_window) {
			char date[64];
			struct tm tm;
			time_t tnow = now;

			g.flags |= GREY_PASSED;
			g.passes++;
			g.last = now;
			count(cx, &n_passes);
			if (put_rec(cx, key, keylen, &g, now + gc->expire) < 0 ||
			    awl_pass(cx, gc, net, now) < 0)
				return store_failed(out, "update");
			gmtime_r(&tnow, &tm);
			strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
			verdict_header_once(
			    out, "X-Greylist", 0, "delayed %lld seconds by portcullis-%s at %s; %s",
			    (long long)(now - g.first), PACKAGE_VERSION,
			    c->our_name[0] ? c->our_name : cx->conf->hostname, date);
			return CHECK_DONE;
		}
		/* Too late: the retry window closed, start over. */
	} else if (r == 0 && gc->min_score > 0 && c->score + t->score + rc->score < gc->min_score) {
		/* Score-aware: decided once, not greylisted. */
		g = (struct grey_rec){
			.flags = GREY_NOGREY, .passes = 1, .first = now, .last = now
		};
		count(cx, &n_passes);
		if (put_rec(cx, key, keylen, &g, now + gc->expire) < 0)
			return store_failed(out, "insert");
		return CHECK_DONE;
	}
	g = (struct grey_rec){ .defers = 1, .first = now, .last = now };
	if (put_rec(cx, key, keylen, &g, now + gc->retry_window) < 0)
		return store_failed(out, "insert");
	defer(cx, out, mode, "greylist.new",
	      r == 1 ? "the retry window closed, starting over" : "first attempt", now + gc->delay,
	      now);
	return CHECK_DONE;
}

const struct check_module check_greylist = {
	.name = "greylist",
	.doc = "greylisting per recipient, pool-aware (SPF, forward-confirmed names), with an "
	       "auto-whitelist",
	.params = greylist_params,
	.conf_size = sizeof(struct greylist_conf),
	.default_mode = "reject",
	.default_on_error = "defer",
	.init = greylist_init,
	.fini = greylist_fini,
	.hook = {
		[STAGE_RCPT] = greylist_rcpt,
	},
};
