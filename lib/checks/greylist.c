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
 * Where the client is (lib/store/grey.h, NET), chosen so that big senders that
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
 * added to the store's "stats" namespace by the maintenance thread, and to
 * the metrics; a retry that passes after a deferral logs "greylist: pass
 * ref=REF delay=SECONDS to=<RCPT>" (for portcullisctl report).
 * Thread-safe: atomics for the counters, libpsl's context is read-only,
 * the store serialises access.
 */
#include "addr.h"
#include "check.h"
#include "config.h"
#include "dns.h"
#include "encode.h"
#include "engine.h"
#include "grey.h"
#include "log.h"
#include "maint.h"
#include "metrics.h"
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
	if (!cx->dry_run) {
		__atomic_add_fetch(n, 1, __ATOMIC_RELAXED);
		metrics_greylist(n == &n_defers ? METRICS_GREY_DEFER
		                 : n == &n_awl  ? METRICS_GREY_AWL
		                                : METRICS_GREY_PASS);
	}
}

/* A deferred triplet passed: the delay for the metrics and, in a line of
 * its own, for the log (portcullisctl report reads it). */
static void passed(const struct check_ctx *cx, long long delay)
{
	char to[300];

	if (cx->dry_run)
		return;
	metrics_greylist_delay(delay);
	log_msg(LOG_LVL_INFO, "greylist: pass ref=%s delay=%lld to=<%s>", cx->txn->ref, delay,
	        enc_log(to, sizeof(to), cx->rcpt->addr.full, 100));
}

static void add_counter(struct store *st, const char *key, unsigned long long delta)
{
	char cur[32], next[32];

	if (delta == 0)
		return;
	/* compare-and-set: several MX hosts add to the same counter */
	for (int attempt = 0; attempt < 10; attempt++) {
		struct store_op op = { .type = STORE_OP_GET,
			               .ns = "stats",
			               .key = key,
			               .keylen = strlen(key),
			               .buf = cur,
			               .bufsize = sizeof(cur) - 1 };
		unsigned long long v = 0;

		if (store_batch(st, &op, 1) != 0)
			return;
		if (op.rc == 1) {
			cur[op.len] = '\0';
			v = strtoull(cur, NULL, 10);
		}
		snprintf(next, sizeof(next), "%llu", v + delta);
		op = (struct store_op){ .type = STORE_OP_CAS,
			                .ns = "stats",
			                .key = key,
			                .keylen = strlen(key),
			                .expect = op.rc == 1 ? cur : NULL,
			                .expectlen = op.rc == 1 ? op.len : 0,
			                .val = next,
			                .vallen = strlen(next) };
		if (store_batch(st, &op, 1) != 0 || op.rc == 1)
			return;
	}
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

		/* the spf check's answer of this transaction, when it ran */
		if (spf_eval_txn(t->ref, cx->conf->dns, check_dns_timeout(cx), &c->client_ip,
		                 c->helo_seen ? c->helo : "", t->sender.full, &o) == SPF_PASS &&
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

/* May this transaction count a pass of its network for the auto-whitelist
 * (once per transaction: at the first recipient that passes)? */
static int awl_counts(const struct check_ctx *cx, const struct greylist_conf *gc)
{
	return gc->awl_count > 0 && !cx->dry_run && cx->txn->naccepted == 0;
}

/* The awl record after one more pass (old: the stored one, or NULL). */
static void awl_next(const unsigned char *old, size_t oldlen, time_t now,
                     unsigned char out[AWL_REC_SIZE])
{
	struct awl_rec a;

	if (old == NULL || awl_rec_decode(old, oldlen, &a) < 0)
		a = (struct awl_rec){ .first = now };
	a.passes++;
	a.last = now;
	awl_rec_encode(&a, out);
}

/* The compare-and-set of net's awl record, as an op: expect the value old
 * (found: 1) or no record. */
static void awl_cas_op(struct store_op *op, const char *net, int found, const unsigned char *old,
                       size_t oldlen, const unsigned char *val, time_t expires)
{
	*op = (struct store_op){ .type = STORE_OP_CAS,
		                 .ns = AWL_NS,
		                 .key = net,
		                 .keylen = strlen(net),
		                 .expect = found ? old : NULL,
		                 .expectlen = found ? oldlen : 0,
		                 .val = val,
		                 .vallen = AWL_REC_SIZE,
		                 .expires = expires };
}

/* Count a pass of net for the auto-whitelist on its own (read, then
 * compare-and-set, again when another host changed it meanwhile). */
static int awl_pass(const struct check_ctx *cx, const struct greylist_conf *gc, const char *net,
                    time_t now)
{
	if (!awl_counts(cx, gc))
		return 0;
	for (int attempt = 0; attempt < 10; attempt++) {
		unsigned char old[AWL_REC_SIZE], val[AWL_REC_SIZE];
		struct store_op op = { .type = STORE_OP_GET,
			               .ns = AWL_NS,
			               .key = net,
			               .keylen = strlen(net),
			               .buf = old,
			               .bufsize = sizeof(old) };
		int found;

		if (store_batch(cx->store, &op, 1) != 0 && op.err != STORE_ERR_SPACE)
			return -1;
		found = op.rc == 1;
		if (op.rc < 0) {
			/* a record of another size: replace it */
			awl_next(NULL, 0, now, val);
			return store_put(cx->store, AWL_NS, net, strlen(net), val, sizeof(val),
			                 now + gc->awl_expire, STORE_NORMAL);
		}
		awl_next(found ? old : NULL, op.len, now, val);
		awl_cas_op(&op, net, found, old, op.len, val, now + gc->awl_expire);
		if (store_batch(cx->store, &op, 1) != 0)
			return -1;
		if (op.rc == 1)
			return 0;
	}
	return 0; /* changed by others ten times over: this pass goes uncounted */
}

static int store_failed(struct verdicts *out, const char *what)
{
	enum store_err e = store_last_error();

	/* an outage, a full or read-only disk: logged once by the store */
	out->logged_once = e == STORE_ERR_DOWN || e == STORE_ERR_NOSPACE || e == STORE_ERR_ROFS;
	return check_retry(out, "greylist store: %s: %s", what, store_strerror(e));
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
	grey_normalise_sender(sender, sizeof(sender),
	                      (t->sender.flags & ADDR_NULL) ? "" : t->sender.full);
	keylen = grey_key(key, sizeof(key), net, sender, rc->addr.full);
	if (keylen == 0)
		return CHECK_DONE; /* cannot happen with bounded addresses */

	/* Read the awl and triplet records in one round trip, decide, and
	 * write the decision with a compare-and-set (with the awl's, in one
	 * more round trip): when another MX host changed the triplet
	 * meanwhile, read and decide again. */
	for (int attempt = 0, awl_done = 0;; attempt++) {
		unsigned char awlbuf[AWL_REC_SIZE], awlnew[AWL_REC_SIZE], newbuf[GREY_REC_SIZE];
		struct store_op op[2];
		int nop = 0, gi, ai = -1, awl_found = 0, awl_rc = -1, pass = 0, nowrite = 0;
		size_t awl_len = 0;
		enum { D_PASSED, D_EARLY, D_PASS_NOW, D_NOGREY, D_NEW } d;
		time_t expires;

		memset(op, 0, sizeof(op));
		if (gc->awl_count > 0) {
			ai = nop++;
			op[ai] = (struct store_op){ .type = STORE_OP_GET,
				                    .ns = AWL_NS,
				                    .key = net,
				                    .keylen = strlen(net),
				                    .buf = awlbuf,
				                    .bufsize = sizeof(awlbuf) };
		}
		gi = nop++;
		op[gi] = (struct store_op){ .type = STORE_OP_GET,
			                    .ns = GREY_NS,
			                    .key = key,
			                    .keylen = keylen,
			                    .buf = buf,
			                    .bufsize = sizeof(buf) };
		(void)store_batch(cx->store, op, (size_t)nop);
		/* (op[] is used again for the writes: keep the awl read) */
		if (ai >= 0) {
			awl_rc = op[ai].rc == 1 || op[ai].rc == 0 ? op[ai].rc
			         : op[ai].err == STORE_ERR_SPACE  ? 2 /* another size */
			                                          : -1;
			awl_len = op[ai].len;
		}
		if (awl_rc == 1) {
			struct awl_rec a;

			awl_found = 1;
			if (awl_rec_decode(awlbuf, awl_len, &a) == 0 &&
			    a.passes >= (uint32_t)gc->awl_count) {
				count(cx, &n_awl);
				if (awl_counts(cx, gc)) {
					/* the record just read: one compare-and-set */
					awl_next(awlbuf, awl_len, now, awlnew);
					awl_cas_op(&op[0], net, 1, awlbuf, awl_len, awlnew,
					           now + gc->awl_expire);
					if (store_batch(cx->store, op, 1) != 0 ||
					    (op[0].rc == 0 && awl_pass(cx, gc, net, now) < 0))
						return store_failed(out, "auto-whitelist");
				}
				return CHECK_DONE;
			}
		}
		r = op[gi].rc;
		len = op[gi].len;
		if (r < 0 && op[gi].err != STORE_ERR_SPACE)
			return store_failed(out, "lookup");
		if (r < 0)
			nowrite = 1; /* a record of another size: replaced below */
		if (r == 1 && grey_rec_decode(buf, len, &g) == 0) {
			if (g.flags & (GREY_PASSED | GREY_NOGREY)) {
				d = D_PASSED;
				g.passes++;
				g.last = now;
				expires = now + gc->expire;
			} else if (now < g.first + gc->delay) {
				d = D_EARLY;
				g.defers++;
				g.last = now;
				expires = g.first + gc->retry_window;
			} else if (now <= g.first + gc->retry_window) {
				d = D_PASS_NOW;
				g.flags |= GREY_PASSED;
				g.passes++;
				g.last = now;
				expires = now + gc->expire;
			} else {
				/* Too late: the retry window closed, start over. */
				d = D_NEW;
			}
		} else if (r == 0 && gc->min_score > 0 &&
		           c->score + t->score + rc->score < gc->min_score) {
			/* Score-aware: decided once, not greylisted. */
			d = D_NOGREY;
			g = (struct grey_rec){
				.flags = GREY_NOGREY, .passes = 1, .first = now, .last = now
			};
			expires = now + gc->expire;
		} else {
			d = D_NEW;
		}
		if (d == D_NEW) {
			g = (struct grey_rec){ .defers = 1, .first = now, .last = now };
			expires = now + gc->retry_window;
		}
		pass = d == D_PASSED || d == D_PASS_NOW;

		if (!cx->dry_run) {
			int n = 0, wrote, gwi = -1, wi = -1;

			grey_rec_encode(&g, newbuf);
			if (nowrite) {
				if (store_put(cx->store, GREY_NS, key, keylen, newbuf,
				              sizeof(newbuf), expires, STORE_NORMAL) < 0)
					return store_failed(out, d == D_NEW ? "insert" : "update");
			} else {
				gwi = n;
				op[n++] = (struct store_op){ .type = STORE_OP_CAS,
					                     .ns = GREY_NS,
					                     .key = key,
					                     .keylen = keylen,
					                     .expect = r == 1 ? buf : NULL,
					                     .expectlen = r == 1 ? len : 0,
					                     .val = newbuf,
					                     .vallen = sizeof(newbuf),
					                     .expires = expires };
			}
			if (pass && !awl_done && awl_counts(cx, gc) &&
			    (awl_rc == 0 || awl_rc == 1)) {
				wi = n;
				awl_next(awl_found ? awlbuf : NULL, awl_found ? awl_len : 0, now,
				         awlnew);
				awl_cas_op(&op[n], net, awl_found, awlbuf, awl_found ? awl_len : 0,
				           awlnew, now + gc->awl_expire);
				n++;
			}
			(void)store_batch(cx->store, op, (size_t)n);
			for (int i = 0; i < n; i++)
				if (op[i].rc < 0)
					return store_failed(
					    out, d == D_NEW || d == D_NOGREY ? "insert" : "update");
			wrote = gwi < 0 || op[gwi].rc == 1;
			if (wi >= 0 && op[wi].rc == 1)
				awl_done = 1;
			if (!wrote) {
				if (attempt < 10)
					continue; /* changed by another host: decide again */
				return check_retry(out, "greylist store: %s changed too often",
				                   "the triplet");
			}
			/* another host changed the awl record meanwhile, or it has
			 * another size: counted on its own */
			if (((wi >= 0 && op[wi].rc == 0) || (pass && !awl_done && awl_rc == 2)) &&
			    awl_pass(cx, gc, net, now) < 0)
				return store_failed(out, "auto-whitelist");
		}
		switch (d) {
		case D_PASSED:
		case D_NOGREY: count(cx, &n_passes); return CHECK_DONE;
		case D_EARLY:
			defer(cx, out, mode, "greylist.early", "retried too early",
			      g.first + gc->delay, now);
			return CHECK_DONE;
		case D_PASS_NOW: {
			char date[64];
			struct tm tm;
			time_t tnow = now;

			count(cx, &n_passes);
			passed(cx, (long long)(now - g.first));
			gmtime_r(&tnow, &tm);
			strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
			verdict_header_once(
			    out, "X-Greylist", 0, "delayed %lld seconds by portcullis-%s at %s; %s",
			    (long long)(now - g.first), PACKAGE_VERSION,
			    c->our_name[0] ? c->our_name : cx->conf->hostname, date);
			return CHECK_DONE;
		}
		case D_NEW:
			defer(cx, out, mode, "greylist.new",
			      r == 1 ? "the retry window closed, starting over" : "first attempt",
			      now + gc->delay, now);
			return CHECK_DONE;
		}
		return CHECK_DONE;
	}
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
