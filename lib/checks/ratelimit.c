/* lib/checks/ratelimit.c - rate limits per client, client domain, sender,
 * recipient and authenticated user (like Postfix anvil, policyd)
 *
 * ratelimit.rules is a list of rules separated by ';', each
 *     WHAT LIMIT UNIT WINDOW
 * e.g. "client/24 200 msgs 1h; auth 500 rcpts 1d; sender 100 msgs 10m":
 *   WHAT    client[/V4[/V6]]  the client address, as its network: client
 *                             alone is /32 and /128; client/24 is /24 and
 *                             /64 for IPv6 (client/32: /128); client/24/56
 *                             names both
 *           domain            the registered domain (libpsl) of the
 *                             client's verified name
 *           sender            the envelope sender (not the null sender)
 *           rcpt              each recipient
 *           auth              the SASL login (SMTP AUTH)
 *   LIMIT   a count (1..1000000000)
 *   UNIT    conns (client and domain only), msgs or rcpts
 *   WINDOW  a time: 30s, 10m, 1h, 1d, 1w
 * Counted: conns at connect, msgs at MAIL (for rcpt: at each RCPT),
 * rcpts at each RCPT.  A request beyond LIMIT in the last WINDOW is
 * refused "451 4.7.1 Rate limit reached: WHAT VALUE has a rate limit of
 * LIMIT UNIT per WINDOW" and not counted; limits on authenticated users
 * are logged as warnings (a stolen password).  Authenticated transactions
 * are limited even when auth_whitelist lets them skip the other checks;
 * whitelisted and trusted clients and whitelisted senders are exempt.
 *
 * The window slides: two fixed buckets per key (this window's count and
 * the last one's), the last one weighted by how much of it is still
 * inside the sliding window - O(1) per request, one store read and write,
 * never a walk.  Records live in the store namespace "ratelimit", key
 * "WHAT:VALUE|UNIT|SECONDS" (e.g. "auth:alice|rcpts|86400"), value
 * "START CURRENT PREVIOUS", expiring two windows after START.  A store
 * error is a temporary failure (ratelimit.on_error).  In a dry run
 * (portcullisctl check) the counters are read, never changed.
 * Thread-safe, and safe between processes and MX hosts sharing a store:
 * each update is a compare-and-set (store_batch).
 *
 * See also: Postfix anvil(8) and smtpd_client_*_rate_limit.
 */
#include "addr.h"
#include "check.h"
#include "engine.h"
#include "log.h"
#include "ratelimit.h"
#include "store.h"
#include "util.h"

#include <libpsl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

enum rl_what { RL_CLIENT, RL_DOMAIN, RL_SENDER, RL_RCPT, RL_AUTH };
enum rl_unit { RL_CONNS, RL_MSGS, RL_RCPTS };

static const char *const what_names[] = { "client", "domain", "sender", "rcpt", "auth" };
static const char *const unit_names[] = { "conns", "msgs", "rcpts" };
static const char *const unit_words[] = { "connections", "messages", "recipients" };
static const char *const unit_word1[] = { "connection", "message", "recipient" };

struct rl_rule {
	enum rl_what what;
	enum rl_unit unit;
	int v4, v6; /* client prefixes */
	long limit;
	long window;
};

struct ratelimit_conf {
	char *rules;
	struct rl_rule *r;
	int n;
};

#define F(x) offsetof(struct ratelimit_conf, x)
static const struct conf_param ratelimit_params[] = {
	{ "ratelimit.rules", "", CONF_STR, F(rules), 0, 0,
	  "rules separated by ';', each WHAT LIMIT UNIT WINDOW: WHAT client[/V4[/V6]], domain, "
	  "sender, rcpt or auth; UNIT conns, msgs or rcpts; e.g. \"auth 500 rcpts 1d; client/24 "
	  "200 msgs 1h\"" },
	CONF_END
};

/* --- rules ---------------------------------------------------------------------- */

static int parse_time(const char *s, long *out)
{
	char *end;
	long v = strtol(s, &end, 10), mul = 1;

	if (end == s || v <= 0)
		return -1;
	switch (*end) {
	case '\0':
	case 's': break;
	case 'm': mul = 60; break;
	case 'h': mul = 3600; break;
	case 'd': mul = 86400; break;
	case 'w': mul = 7 * 86400; break;
	default: return -1;
	}
	if (*end && end[1])
		return -1;
	if (v > 366L * 86400 / mul)
		return -1;
	*out = v * mul;
	return 0;
}

int ratelimit_parse_rule(const char *text, struct rl_rule_info *ri, char *err, size_t errsize)
{
	char buf[200], *w[5], *save = NULL, *p;
	int n = 0;

	memset(ri, 0, sizeof(*ri));
	if (bcopy_str(buf, sizeof(buf), text) >= sizeof(buf)) {
		snprintf(err, errsize, "rule too long");
		return -1;
	}
	for (p = strtok_r(buf, " \t", &save); p && n < 5; p = strtok_r(NULL, " \t", &save))
		w[n++] = p;
	if (n != 4) {
		snprintf(err, errsize, "'%.80s': want WHAT LIMIT UNIT WINDOW", text);
		return -1;
	}
	/* WHAT */
	char *slash = strchr(w[0], '/');
	if (slash)
		*slash++ = '\0';
	ri->what = -1;
	for (int i = 0; i < 5; i++)
		if (strcasecmp(w[0], what_names[i]) == 0)
			ri->what = i;
	if (ri->what < 0) {
		snprintf(err, errsize, "'%.80s': WHAT must be client, domain, sender, rcpt or auth",
		         text);
		return -1;
	}
	ri->v4 = 32;
	ri->v6 = 128;
	if (slash) {
		char *end, *s6 = strchr(slash, '/');
		long a, b = -1;

		if (ri->what != RL_CLIENT)
			goto badprefix;
		if (s6)
			*s6++ = '\0';
		a = strtol(slash, &end, 10);
		if (end == slash || *end || a < 1 || a > 32)
			goto badprefix;
		if (s6) {
			b = strtol(s6, &end, 10);
			if (end == s6 || *end || b < 1 || b > 128)
				goto badprefix;
		}
		ri->v4 = (int)a;
		ri->v6 = b > 0 ? (int)b : a == 32 ? 128 : 64;
	}
	/* LIMIT */
	char *end;
	ri->limit = strtol(w[1], &end, 10);
	if (end == w[1] || *end || ri->limit < 1 || ri->limit > 1000000000) {
		snprintf(err, errsize, "'%.80s': LIMIT must be a count 1..1000000000", text);
		return -1;
	}
	/* UNIT: plural or singular */
	ri->unit = -1;
	for (int i = 0; i < 3; i++) {
		size_t l = strlen(unit_names[i]);

		if (strcasecmp(w[2], unit_names[i]) == 0 ||
		    (strlen(w[2]) == l - 1 && strncasecmp(w[2], unit_names[i], l - 1) == 0))
			ri->unit = i;
	}
	if (ri->unit < 0) {
		snprintf(err, errsize, "'%.80s': UNIT must be conns, msgs or rcpts", text);
		return -1;
	}
	if (ri->unit == RL_CONNS && ri->what != RL_CLIENT && ri->what != RL_DOMAIN) {
		snprintf(err, errsize, "'%.80s': conns can only be counted per client or domain",
		         text);
		return -1;
	}
	if (parse_time(w[3], &ri->window) < 0) {
		snprintf(err, errsize, "'%.80s': WINDOW must be a time like 30s, 10m, 1h, 1d",
		         text);
		return -1;
	}
	return 0;
badprefix:
	snprintf(err, errsize, "'%.80s': a prefix is client/V4 or client/V4/V6", text);
	return -1;
}

static int ratelimit_init(void *mconf, const struct conf *c, char *err, size_t errsize)
{
	struct ratelimit_conf *rc = mconf;
	char *copy = xstrdup(rc->rules), *save = NULL, *p, e[240];

	(void)c;
	for (p = strtok_r(copy, ";\n", &save); p; p = strtok_r(NULL, ";\n", &save)) {
		struct rl_rule_info ri;

		p = str_trim(p);
		if (*p == '\0')
			continue;
		if (ratelimit_parse_rule(p, &ri, e, sizeof(e)) < 0) {
			snprintf(err, errsize, "ratelimit.rules: %s", e);
			free(copy);
			free(rc->r); /* fini is not called when init fails */
			rc->r = NULL;
			rc->n = 0;
			return -1;
		}
		rc->r = xrealloc(rc->r, sizeof(*rc->r) * (size_t)(rc->n + 1));
		rc->r[rc->n++] = (struct rl_rule){ (enum rl_what)ri.what,
			                           (enum rl_unit)ri.unit,
			                           ri.v4,
			                           ri.v6,
			                           ri.limit,
			                           ri.window };
	}
	free(copy);
	return 0;
}

static void ratelimit_fini(void *mconf)
{
	struct ratelimit_conf *rc = mconf;

	free(rc->r);
	rc->r = NULL; /* init may run again (conf_finish starts over) */
	rc->n = 0;
}

/* --- counters -------------------------------------------------------------------- */

void ratelimit_rec_decode(const char *s, size_t len, struct rl_rec *r)
{
	char buf[100];
	long long a = 0, b = 0, c = 0;

	memset(r, 0, sizeof(*r));
	if (len >= sizeof(buf))
		return;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (sscanf(buf, "%lld %lld %lld", &a, &b, &c) == 3 && b >= 0 && c >= 0) {
		r->start = a;
		r->cur = b;
		r->prev = c;
	}
}

double ratelimit_estimate(const struct rl_rec *r0, long window, long long now)
{
	struct rl_rec r = *r0;
	long long start = now - now % window;

	if (r.start != start) { /* roll the buckets forward */
		r.prev = r.start == start - window ? r.cur : 0;
		r.cur = 0;
	}
	return (double)r.prev * (double)(window - (now - start)) / (double)window + (double)r.cur;
}

/* Count one request on key (a rule's), unless it would exceed the limit.
 * 1 allowed (and counted), 0 over the limit, -1 store error.  The update
 * is a compare-and-set (store_batch): two threads, two processes or two
 * MX hosts on one Redis counting the same key at once each see the
 * other's count (a lost race reads again and decides again). */
static int take(const struct check_ctx *cx, const struct rl_rule *ru, const char *key, double *est)
{
	size_t klen = strlen(key);
	long long now = (long long)clock_now(), start = now - now % ru->window;

	for (int tries = 0; tries < 10; tries++) {
		char old[100], val[100];
		size_t oldlen = 0, len;
		struct rl_rec r = { 0 };
		struct store_op op;
		int rc, ok;

		rc = store_get(cx->store, RATELIMIT_NS, key, klen, old, sizeof(old), &oldlen, NULL);
		if (rc < 0)
			return -1;
		if (rc == 1)
			ratelimit_rec_decode(old, oldlen, &r);
		*est = ratelimit_estimate(&r, ru->window, now);
		ok = *est + 1 <= (double)ru->limit;
		if (!ok || cx->dry_run)
			return ok;
		if (r.start != start) {
			r.prev = r.start == start - ru->window ? r.cur : 0;
			r.cur = 0;
			r.start = start;
		}
		r.cur++;
		len = (size_t)snprintf(val, sizeof(val), "%lld %lld %lld", r.start, r.cur, r.prev);
		memset(&op, 0, sizeof(op));
		op.type = STORE_OP_CAS;
		op.ns = RATELIMIT_NS;
		op.key = key;
		op.keylen = klen;
		op.expect = rc == 1 ? old : NULL;
		op.expectlen = rc == 1 ? oldlen : 0;
		op.val = val;
		op.vallen = len;
		op.expires = (time_t)(start + 2 * ru->window);
		if (store_batch(cx->store, &op, 1) > 0 || op.rc < 0)
			return -1;
		if (op.rc == 1)
			return 1;
		/* someone else counted meanwhile: read again */
	}
	return -1;
}

/* --- keys ------------------------------------------------------------------------ */

static const psl_ctx_t *psl_ctx;
static pthread_once_t psl_once = PTHREAD_ONCE_INIT;

static void psl_init(void)
{
	psl_ctx_t *latest = psl_latest(NULL);

	psl_ctx = latest ? latest : psl_builtin();
}

/* The VALUE of rule ru for this request into dst; 0 when it has none
 * (no address, no verified name, null sender, not authenticated). */
static int value_of(const struct check_ctx *cx, const struct rl_rule *ru, char *dst, size_t dstsize)
{
	const struct conn *c = cx->conn;

	dst[0] = '\0';
	switch (ru->what) {
	case RL_CLIENT: {
		struct ipaddr ip, net;
		char a[64];
		int len;

		if (c->client_ip.family == 0)
			return 0;
		ip_unmap(&c->client_ip, &ip);
		net = ip;
		len = ip.family == AF_INET ? ru->v4 : ru->v6;
		for (int i = 0; i < 16; i++) {
			int bits = len - i * 8;

			net.a[i] &= bits >= 8   ? 0xff
			            : bits <= 0 ? 0
			                        : (unsigned char)(0xff << (8 - bits));
		}
		ip_format(&net, a, sizeof(a));
		snprintf(dst, dstsize, "%s/%d", a, len);
		return 1;
	}
	case RL_DOMAIN: {
		char name[HOSTNAME_MAX + 1];
		const char *reg;

		if (!c->client_name[0] || strcmp(c->client_name, "unknown") == 0 ||
		    c->client_name[0] == '[')
			return 0;
		str_lower(name, sizeof(name), c->client_name);
		pthread_once(&psl_once, psl_init);
		reg = psl_ctx ? psl_registrable_domain(psl_ctx, name) : NULL;
		bcopy_str(dst, dstsize, reg ? reg : name);
		return 1;
	}
	case RL_SENDER:
		if (cx->txn == NULL || (cx->txn->sender.flags & ADDR_NULL) ||
		    !cx->txn->sender.full[0])
			return 0;
		str_lower(dst, dstsize, cx->txn->sender.full);
		return 1;
	case RL_RCPT:
		if (cx->rcpt == NULL || !cx->rcpt->addr.full[0])
			return 0;
		str_lower(dst, dstsize, cx->rcpt->addr.full);
		return 1;
	case RL_AUTH:
		if (cx->txn && cx->txn->auth_authen[0])
			bcopy_str(dst, dstsize, cx->txn->auth_authen);
		else if (c->auth_authen[0])
			bcopy_str(dst, dstsize, c->auth_authen);
		else
			return 0;
		return 1;
	}
	return 0;
}

/* "day", "hour", "10 minutes"... for window w seconds. */
static void window_words(char *dst, size_t dstsize, long w)
{
	static const struct {
		long s;
		const char *one, *many;
	} u[] = { { 7 * 86400, "week", "weeks" },
		  { 86400, "day", "days" },
		  { 3600, "hour", "hours" },
		  { 60, "minute", "minutes" },
		  { 1, "second", "seconds" } };

	for (size_t i = 0; i < ARRAY_SIZE(u); i++)
		if (w % u[i].s == 0) {
			if (w == u[i].s)
				snprintf(dst, dstsize, "%s", u[i].one);
			else
				snprintf(dst, dstsize, "%ld %s", w / u[i].s, u[i].many);
			return;
		}
}

/* Apply every rule of unit at this stage. */
static int run_rules(const struct check_ctx *cx, struct verdicts *out, int stage)
{
	char logv[300];
	const struct ratelimit_conf *rc = cx->mconf;

	if (rc->n == 0)
		return CHECK_DONE;
	if (cx->store == NULL)
		return check_retry(out, "no store");
	for (int i = 0; i < rc->n; i++) {
		const struct rl_rule *ru = &rc->r[i];
		char value[ADDR_MAX + 1], key[ADDR_MAX + 64], ww[40], sym[48];
		const char *uw;
		double est = 0;
		int counts;

		switch (stage) {
		case STAGE_CONNECT: counts = ru->unit == RL_CONNS; break;
		case STAGE_MAIL: counts = ru->unit == RL_MSGS && ru->what != RL_RCPT; break;
		default:
			counts =
			    ru->unit == RL_RCPTS || (ru->unit == RL_MSGS && ru->what == RL_RCPT);
			break;
		}
		/* an authenticated transaction that skips the other checks
		 * (auth_whitelist) meets only the limits on its login */
		if (cx->txn && cx->txn->auth_whitelisted && ru->what != RL_AUTH)
			continue;
		if (!counts || !value_of(cx, ru, value, sizeof(value)))
			continue;
		for (char *p = value; *p; p++) /* keys: no separators, no controls */
			if ((unsigned char)*p <= 0x20 || *p == '|' || (unsigned char)*p == 0x7f)
				*p = '?';
		snprintf(key, sizeof(key), "%s:%s|%s|%ld", what_names[ru->what], value,
		         unit_names[ru->unit], ru->window);
		int ok = take(cx, ru, key, &est);
		if (ok < 0)
			return check_retry(out, "store: %s", store_strerror(store_last_error()));
		if (ok)
			continue;
		window_words(ww, sizeof(ww), ru->window);
		uw = ru->limit == 1 ? unit_word1[ru->unit] : unit_words[ru->unit];
		snprintf(sym, sizeof(sym), "ratelimit.%s", what_names[ru->what]);
		log_msg(ru->what == RL_AUTH ? LOG_LVL_WARN : LOG_LVL_INFO,
		        "ref=%s ratelimit: %s %s reached its rate limit of %ld %s per %s (%.0f in "
		        "the last %s)%s",
		        check_ref(cx), what_names[ru->what],
		        enc_log(logv, sizeof(logv), value, 200), ru->limit, uw, ww, est, ww,
		        ru->what == RL_AUTH ? ": a stolen password?" : "");
		verdict_defer(out, MODE_REJECT, sym, "451", "4.7.1",
		              "Rate limit reached: %s %.200s has a rate limit of %ld %s per %s",
		              what_names[ru->what], value, ru->limit, uw, ww);
	}
	return CHECK_DONE;
}

static int ratelimit_connect(const struct check_ctx *cx, struct verdicts *out)
{
	return run_rules(cx, out, STAGE_CONNECT);
}

static int ratelimit_mail(const struct check_ctx *cx, struct verdicts *out)
{
	return run_rules(cx, out, STAGE_MAIL);
}

static int ratelimit_rcpt(const struct check_ctx *cx, struct verdicts *out)
{
	return run_rules(cx, out, STAGE_RCPT);
}

const struct check_module check_ratelimit = {
	.name = "ratelimit",
	.doc = "rate limits per client, client domain, sender, recipient and authenticated user",
	.params = ratelimit_params,
	.conf_size = sizeof(struct ratelimit_conf),
	.default_mode = "reject",
	.default_on_error = "defer",
	.auth_limit = 1,
	.init = ratelimit_init,
	.fini = ratelimit_fini,
	.hook = {
		[STAGE_CONNECT] = ratelimit_connect,
		[STAGE_MAIL] = ratelimit_mail,
		[STAGE_RCPT] = ratelimit_rcpt,
	},
};
