/* lib/checks/verify.c - recipient and sender address verification (callouts)
 *
 * Recipient verification, for the domains this MX relays to an inner
 * server (verify.recipient_domains = DOMAIN=NEXTHOP, ...): at RCPT the
 * inner server is asked (lib/smtpprobe.c: EHLO, MAIL FROM:<>, RCPT TO,
 * QUIT, never DATA) whether it would take the recipient.  2xx passes; 5xx
 * refuses the recipient at RCPT with 550 5.1.1 and the inner server's own
 * text (sanitised); no answer (4xx, timeout, connection or DNS failure)
 * is a temporary failure, 450 4.1.1 (verify.on_error, default defer).
 * Like Postfix's reject_unverified_recipient: an unknown recipient is
 * never accepted and bounced later (backscatter).
 *
 * Sender verification (SAV), off by default: for the sender domains in
 * verify.sender_domains ("*": all) the sender's own MX hosts (lib/dns) are
 * asked about the envelope sender at MAIL; 5xx refuses it (550 5.1.7, held
 * until RCPT like every MAIL verdict) or adds verify.sender_score when
 * verify.sender = score; no answer skips (verify.sender_on_error).  A
 * domain that also accepts a random local part is a catch-all: its
 * senders are "unknown" for verify.catchall_expire, not "valid".  Never
 * probed: the null sender, senders in our own recipient_domains, and
 * (engine) whitelisted or trusted clients and senders.
 *
 * NEXTHOP is "[192.0.2.1]" or "[192.0.2.1]:PORT" (a literal address), or
 * "host.example[:PORT]" (its MX hosts, else its own A/AAAA records).  A
 * sender_domains entry may name one too ("example.com=[192.0.2.9]"), like
 * a Postfix transport map entry that routes the probe.
 *
 * Cache: the store namespace "verify" (like Postfix's address_verify_map),
 * key "r:ADDRESS" / "s:ADDRESS" (lowercased), value
 * "valid|invalid CHECKED CODE XCODE TEXT", expiring verify.positive_expire
 * / verify.negative_expire after CHECKED; a result older than
 * verify.positive_refresh / verify.negative_refresh is probed again, and
 * kept when the new probe gets no answer.  "c:DOMAIN" marks a catch-all.
 *
 * Good citizenship: one probe in flight per address in this process
 * (concurrent transactions wait for its answer), at most
 * verify.host_concurrency probes at once per destination address, at most
 * verify.domain_rate sender probes per minute per sender domain (beyond:
 * unknown; our own inner servers are not rate limited).  No probe for
 * mail that an earlier check already refuses (held verdicts of connect,
 * HELO, MAIL, or this recipient's).  In a dry run (portcullisctl check)
 * only the cache is read.
 * Thread-safe: one mutex and condition variable guard the in-flight,
 * per-host and per-domain tables; the store serialises its own access.
 *
 * See also: lib/smtpprobe.h, Postfix ADDRESS_VERIFICATION_README.
 */
#include "addr.h"
#include "check.h"
#include "dns.h"
#include "engine.h"
#include "log.h"
#include "smtpprobe.h"
#include "store.h"
#include "util.h"

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define VERIFY_NS   "verify"
#define MAX_TARGETS 6

struct hop {
	char domain[256];
	char host[256]; /* "" for the domain's own MX hosts */
	int port;
	int literal;
	struct ipaddr ip;
};

struct verify_conf {
	struct strlist recipient_domains;
	struct strlist sender_domains;
	char *sender;
	double sender_score;
	enum on_error sender_on_error;
	char *probe_sender;
	long timeout;
	long positive_expire;
	long negative_expire;
	long positive_refresh;
	long negative_refresh;
	long catchall_expire;
	long host_concurrency;
	long domain_rate;
	/* derived by init */
	struct hop *rhops, *shops;
	int nrhops, nshops, sender_all;
	enum mode sender_mode;
	int sender_scores;
};

#define F(x) offsetof(struct verify_conf, x)
static const struct conf_param verify_params[] = {
	{ "verify.recipient_domains", "", CONF_LIST, F(recipient_domains), 0, 0,
	  "domains whose recipients are verified at RCPT, each DOMAIN=NEXTHOP with NEXTHOP "
	  "[address]:port or host[:port] (its MX hosts)" },
	{ "verify.sender_domains", "", CONF_LIST, F(sender_domains), 0, 0,
	  "sender domains whose senders are verified at MAIL (DOMAIN or DOMAIN=NEXTHOP; * for "
	  "all); empty: no sender verification" },
	{ "verify.sender", "reject", CONF_STR, F(sender), 0, 0,
	  "what an unknown sender gets: reject (550 5.1.7), defer, score, monitor or off" },
	{ "verify.sender_score", "5", CONF_SCORE, F(sender_score), -1000, 1000,
	  "the score of an unknown sender with verify.sender = score" },
	{ "verify.sender_on_error", "skip", CONF_ONERR, F(sender_on_error), 0, 0,
	  "a sender probe without answer: skip, or defer (450 4.1.7)" },
	{ "verify.probe_sender", "", CONF_STR, F(probe_sender), 0, 0,
	  "the MAIL FROM address of probes (empty: the null sender <>)" },
	{ "verify.timeout", "10s", CONF_TIME, F(timeout), 1, 300,
	  "time allowed for one verification, DNS and SMTP together" },
	{ "verify.positive_expire", "31d", CONF_TIME, F(positive_expire), 60, 366 * 86400,
	  "a valid address is remembered this long" },
	{ "verify.negative_expire", "3d", CONF_TIME, F(negative_expire), 60, 366 * 86400,
	  "an invalid address is remembered this long" },
	{ "verify.positive_refresh", "7d", CONF_TIME, F(positive_refresh), 60, 366 * 86400,
	  "a valid result older than this is probed again (kept if the probe gets no answer)" },
	{ "verify.negative_refresh", "3h", CONF_TIME, F(negative_refresh), 60, 366 * 86400,
	  "an invalid result older than this is probed again (kept if the probe gets no answer)" },
	{ "verify.catchall_expire", "1d", CONF_TIME, F(catchall_expire), 60, 366 * 86400,
	  "a sender domain that accepts any address counts as unknown for this long" },
	{ "verify.host_concurrency", "4", CONF_INT, F(host_concurrency), 1, 1000,
	  "probes at once to one destination address" },
	{ "verify.domain_rate", "60", CONF_INT, F(domain_rate), 1, 1000000,
	  "sender probes per minute to one sender domain; beyond: no answer (unknown)" },
	CONF_END
};

/* --- settings ---------------------------------------------------------------- */

static int parse_hops(const struct strlist *l, const char *key, int need_hop, struct hop **out,
                      int *nout, int *all, char *err, size_t errsize)
{
	*out = xcalloc((size_t)l->n + 1, sizeof(**out));
	*nout = 0;
	for (int i = 0; i < l->n; i++) {
		struct hop *h = &(*out)[*nout];
		const char *eq = strchr(l->v[i], '=');
		size_t dl = eq ? (size_t)(eq - l->v[i]) : strlen(l->v[i]);

		if (dl == 0 || dl >= sizeof(h->domain))
			goto bad;
		memcpy(h->domain, l->v[i], dl);
		h->domain[dl] = '\0';
		str_lower(h->domain, sizeof(h->domain), h->domain);
		if (all && strcmp(h->domain, "*") == 0) {
			*all = 1;
		} else if (!domain_valid(h->domain)) {
			goto bad;
		}
		h->port = 25;
		if (eq) {
			if (smtpprobe_parse_hop(eq + 1, h->host, sizeof(h->host), &h->port,
			                        &h->literal, &h->ip) < 0)
				goto bad;
		} else if (need_hop) {
			goto bad;
		}
		if (!(all && *all && strcmp(h->domain, "*") == 0))
			(*nout)++;
		continue;
	bad:
		snprintf(err, errsize, "%s: bad entry '%.100s' (DOMAIN%s)", key, l->v[i],
		         need_hop ? "=[address]:port or DOMAIN=host" : " or DOMAIN=NEXTHOP");
		return -1;
	}
	return 0;
}

static void verify_fini(void *mconf);

static int verify_init(void *mconf, const struct conf *c, char *err, size_t errsize)
{
	struct verify_conf *vc = mconf;
	static const struct {
		const char *w;
		enum mode m;
		int score;
	} words[] = { { "reject", MODE_REJECT, 0 },
		      { "defer", MODE_DEFER, 0 },
		      { "monitor", MODE_MONITOR, 0 },
		      { "off", MODE_OFF, 0 },
		      { "score", MODE_REJECT, 1 } };
	size_t i;

	(void)c;
	for (i = 0; i < ARRAY_SIZE(words); i++)
		if (strcasecmp(vc->sender, words[i].w) == 0)
			break;
	if (i == ARRAY_SIZE(words)) {
		snprintf(err, errsize,
		         "verify.sender: '%.50s' is not reject, defer, score, "
		         "monitor or off",
		         vc->sender);
		return -1;
	}
	vc->sender_mode = words[i].m;
	vc->sender_scores = words[i].score;
	if (vc->probe_sender[0]) {
		struct mailaddr a;

		addr_parse(vc->probe_sender, &a);
		if (a.flags & (ADDR_BAD_SYNTAX | ADDR_NULL | ADDR_NO_DOMAIN)) {
			snprintf(err, errsize, "verify.probe_sender: not an address");
			return -1;
		}
	}
	if (parse_hops(&vc->recipient_domains, "verify.recipient_domains", 1, &vc->rhops,
	               &vc->nrhops, NULL, err, errsize) < 0 ||
	    parse_hops(&vc->sender_domains, "verify.sender_domains", 0, &vc->shops, &vc->nshops,
	               &vc->sender_all, err, errsize) < 0) {
		verify_fini(vc); /* fini is not called when init fails */
		return -1;
	}
	return 0;
}

static void verify_fini(void *mconf)
{
	struct verify_conf *vc = mconf;

	free(vc->rhops);
	free(vc->shops);
	vc->rhops = vc->shops = NULL; /* init may run again */
	vc->nrhops = vc->nshops = vc->sender_all = 0;
}

static const struct hop *find_hop(const struct hop *h, int n, const char *domain)
{
	for (int i = 0; i < n; i++)
		if (strcasecmp(h[i].domain, domain) == 0)
			return &h[i];
	return NULL;
}

/* --- results ------------------------------------------------------------------ */

struct vres {
	enum probe_result status;
	int cached;
	char code[4], xcode[10];
	char host[80]; /* who said it */
	char text[SMTPPROBE_TEXT_MAX + 1];
	time_t checked;
};

static void vres_encode(const struct vres *r, char *dst, size_t dstsize)
{
	snprintf(dst, dstsize, "%s %lld %s %s %s %s",
	         r->status == PROBE_VALID ? "valid" : "invalid", (long long)r->checked,
	         r->code[0] ? r->code : "-", r->xcode[0] ? r->xcode : "-",
	         r->host[0] ? r->host : "-", r->text);
}

/* Returns 0, or -1 when the record is not one of ours. */
static int vres_decode(const char *s, struct vres *r)
{
	char st[16], code[8], xcode[16], host[80];
	long long checked;
	int off = 0;

	memset(r, 0, sizeof(*r));
	if (sscanf(s, "%15s %lld %7s %15s %79s %n", st, &checked, code, xcode, host, &off) < 5 ||
	    off == 0)
		return -1;
	if (strcmp(st, "valid") == 0)
		r->status = PROBE_VALID;
	else if (strcmp(st, "invalid") == 0)
		r->status = PROBE_INVALID;
	else
		return -1;
	r->checked = (time_t)checked;
	bcopy_str(r->code, sizeof(r->code), strcmp(code, "-") ? code : "");
	bcopy_str(r->xcode, sizeof(r->xcode), strcmp(xcode, "-") ? xcode : "");
	bcopy_str(r->host, sizeof(r->host), strcmp(host, "-") ? host : "");
	bcopy_str(r->text, sizeof(r->text), s + off);
	r->cached = 1;
	return 0;
}

/* --- in-flight probes, per-host and per-domain limits ------------------------ */

struct flight {
	char key[320];
	int done;
	int waiters;
	struct vres res;
	struct flight *next;
};

#define NHOSTS 128
#define NRATE  1024

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv;
static pthread_once_t cv_once = PTHREAD_ONCE_INIT;
static struct flight *flights;
static struct {
	char host[64];
	int n;
} hosts[NHOSTS];
static struct {
	char domain[256];
	long long window_ms;
	long n;
} rate[NRATE];

static void cv_init(void)
{
	pthread_condattr_t a;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&cv, &a);
	pthread_condattr_destroy(&a);
}

/* Wait on cv until deadline_ms (now_ms clock).  0 woken, -1 timed out. */
static int wait_until(long long deadline_ms)
{
	struct timespec ts = { .tv_sec = deadline_ms / 1000,
		               .tv_nsec = (deadline_ms % 1000) * 1000000 };

	return pthread_cond_timedwait(&cv, &mu, &ts) == 0 ? 0 : now_ms() >= deadline_ms ? -1 : 0;
}

static unsigned hash(const char *s)
{
	unsigned h = 5381;

	for (; *s; s++)
		h = h * 33 + (unsigned char)*s;
	return h;
}

/* Take a probe slot for host (ip text): waits while host_concurrency
 * probes to it are running.  Returns the slot, or -1 at the deadline. */
static int host_take(const char *host, long limit, long long deadline_ms)
{
	int slot;

	pthread_once(&cv_once, cv_init);
	pthread_mutex_lock(&mu);
	for (;;) {
		unsigned h = hash(host) % NHOSTS;

		slot = -1;
		for (unsigned i = 0; i < NHOSTS; i++) {
			unsigned j = (h + i) % NHOSTS;

			if (strcmp(hosts[j].host, host) == 0 || hosts[j].n == 0) {
				slot = (int)j;
				break;
			}
		}
		if (slot >= 0 && hosts[slot].n < limit) {
			bcopy_str(hosts[slot].host, sizeof(hosts[slot].host), host);
			hosts[slot].n++;
			break;
		}
		if (wait_until(deadline_ms) < 0) {
			slot = -1;
			break;
		}
	}
	pthread_mutex_unlock(&mu);
	return slot;
}

static void host_release(int slot)
{
	pthread_mutex_lock(&mu);
	hosts[slot].n--;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

/* Count one probe to domain; 0 allowed, -1 over verify.domain_rate a
 * minute (a fixed one-minute window per domain; two domains sharing a
 * slot of the table start a new window when the old one is over, and
 * share it until then: the limit can only be stricter, never looser). */
static int rate_take(const char *domain, long limit)
{
	unsigned h = hash(domain) % NRATE;
	long long now = now_ms();
	int ok;

	pthread_mutex_lock(&mu);
	if (rate[h].window_ms == 0 || now - rate[h].window_ms >= 60000) {
		bcopy_str(rate[h].domain, sizeof(rate[h].domain), domain);
		rate[h].window_ms = now;
		rate[h].n = 0;
	}
	ok = rate[h].n < limit;
	if (ok)
		rate[h].n++;
	pthread_mutex_unlock(&mu);
	return ok ? 0 : -1;
}

/* Join the probe of key, or start one.  Returns the flight; *leader set
 * when the caller must probe and call flight_end(). */
static struct flight *flight_begin(const char *key, int *leader)
{
	struct flight *f;

	pthread_once(&cv_once, cv_init);
	pthread_mutex_lock(&mu);
	for (f = flights; f; f = f->next)
		if (strcmp(f->key, key) == 0)
			break;
	if (f) {
		f->waiters++;
		*leader = 0;
	} else {
		f = xcalloc(1, sizeof(*f));
		bcopy_str(f->key, sizeof(f->key), key);
		f->waiters = 1;
		f->next = flights;
		flights = f;
		*leader = 1;
	}
	pthread_mutex_unlock(&mu);
	return f;
}

/* Leave a flight (leader: with its result, published to the waiters).
 * A waiter gets the leader's result, or unknown at its deadline. */
static void flight_leave(struct flight *f, struct vres *res, int leader, long long deadline_ms)
{
	pthread_mutex_lock(&mu);
	if (leader) {
		f->res = *res;
		f->done = 1;
		pthread_cond_broadcast(&cv);
	} else {
		while (!f->done && wait_until(deadline_ms) == 0)
			;
		if (f->done) {
			*res = f->res;
		} else {
			memset(res, 0, sizeof(*res));
			bcopy_str(res->text, sizeof(res->text),
			          "timeout waiting for a probe of the same address");
		}
	}
	/* unlinked as soon as it is done: later transactions read the cache */
	if (f->done) {
		for (struct flight **p = &flights; *p; p = &(*p)->next)
			if (*p == f) {
				*p = f->next;
				break;
			}
		f->next = NULL;
	}
	if (--f->waiters == 0) {
		if (!f->done) /* a leader always finishes; only waiters time out */
			for (struct flight **p = &flights; *p; p = &(*p)->next)
				if (*p == f) {
					*p = f->next;
					break;
				}
		free(f);
	}
	pthread_mutex_unlock(&mu);
}

/* --- destinations -------------------------------------------------------------- */

struct target {
	struct ipaddr ip;
	int port;
};

/* The addresses to probe for domain (hop NULL: its MX hosts) into t.
 * Returns the count (0 with a reason in why). */
static int targets(const struct check_ctx *cx, const struct hop *hop, const char *domain,
                   long long deadline_ms, struct target *t, char *why, size_t whysize)
{
	const char *name = hop && hop->host[0] ? hop->host : domain;
	int port = hop ? hop->port : 25, n = 0, nmx = 0;
	char mx[3][DNS_NAME_MAX + 2];
	unsigned pref[3];
	struct dns_batch *b;
	long long left;
	int q;
	enum dns_status st;

	if (hop && hop->literal) {
		t[0].ip = hop->ip;
		t[0].port = port;
		return 1;
	}
	if (cx->conf->dns == NULL) {
		bcopy_str(why, whysize, "no DNS resolver");
		return 0;
	}
	left = deadline_ms - now_ms();
	b = dns_batch_new(cx->conf->dns, (int)(left < 0 ? 0 : left));
	q = dns_batch_add(b, name, LDNS_RR_TYPE_MX);
	dns_batch_run(b);
	st = dns_result_status(b, q);
	if (st == DNS_OK) {
		/* the (at most) three most preferred hosts: insertion into a
		 * sorted array of three, ties in answer order */
		for (int j = 0; j < dns_result_count(b, q); j++) {
			char h[DNS_NAME_MAX + 2];
			unsigned p;
			int k;

			if (dns_result_mx(b, q, j, &p, h, sizeof(h)) < 0 || strcmp(h, ".") == 0)
				continue;
			if (nmx == 3 && pref[2] <= p)
				continue;
			k = nmx < 3 ? nmx++ : 2;
			while (k > 0 && pref[k - 1] > p) {
				pref[k] = pref[k - 1];
				memcpy(mx[k], mx[k - 1], sizeof(mx[k]));
				k--;
			}
			pref[k] = p;
			bcopy_str(mx[k], sizeof(mx[k]), h);
		}
		if (nmx == 0)
			snprintf(why, whysize, "%.100s has a null MX", name);
	} else if (st == DNS_NODATA) {
		bcopy_str(mx[0], sizeof(mx[0]), name); /* implicit MX */
		nmx = 1;
	} else {
		snprintf(why, whysize, "MX lookup of %.100s: %s", name, dns_status_name(st));
	}
	dns_batch_free(b);
	if (nmx == 0)
		return 0;
	left = deadline_ms - now_ms();
	b = dns_batch_new(cx->conf->dns, (int)(left < 0 ? 0 : left));
	int qa[3], qaaaa[3];
	for (int i = 0; i < nmx; i++) {
		qa[i] = dns_batch_add(b, mx[i], LDNS_RR_TYPE_A);
		qaaaa[i] = dns_batch_add(b, mx[i], LDNS_RR_TYPE_AAAA);
	}
	dns_batch_run(b);
	for (int i = 0; i < nmx && n < MAX_TARGETS; i++) {
		int qs[2] = { qa[i], qaaaa[i] };

		for (int k = 0; k < 2 && n < MAX_TARGETS; k++) {
			if (dns_result_status(b, qs[k]) != DNS_OK)
				continue;
			for (int j = 0; j < dns_result_count(b, qs[k]) && n < MAX_TARGETS; j++) {
				char a[64];

				if (dns_result_text(b, qs[k], j, a, sizeof(a)) > 0 &&
				    ip_parse(a, &t[n].ip) == 0) {
					t[n].port = port;
					n++;
					break; /* one address per host and family */
				}
			}
		}
	}
	if (n == 0)
		snprintf(why, whysize, "no address for the mail hosts of %.100s", name);
	dns_batch_free(b);
	return n;
}

/* --- one verification ------------------------------------------------------------ */

static void random_local(char *dst, size_t dstsize, const char *domain)
{
	char r[REF_LEN + 1];

	engine_make_ref(r);
	snprintf(dst, dstsize, "portcullis-verify-%s@%s", r, domain);
}

/* Probe address (kind 'r' or 's') at its destinations. */
static void probe(const struct check_ctx *cx, const struct verify_conf *vc, int kind,
                  const struct mailaddr *a, const struct hop *hop, long long deadline_ms,
                  struct vres *res)
{
	char logaddr[400];
	struct target t[MAX_TARGETS];
	char why[200] = "", rcpt2[300];
	int n;

	memset(res, 0, sizeof(*res));
	/* the rate limit protects other people's servers: sender probes */
	if (kind == 's' && rate_take(a->domain, vc->domain_rate) < 0) {
		snprintf(res->text, sizeof(res->text),
		         "probe rate limit for %.100s reached (verify.domain_rate)", a->domain);
		return;
	}
	n = targets(cx, hop, a->domain, deadline_ms, t, why, sizeof(why));
	if (n == 0) {
		bcopy_str(res->text, sizeof(res->text), why);
		return;
	}
	if (kind == 's')
		random_local(rcpt2, sizeof(rcpt2), a->domain);
	for (int i = 0; i < n && now_ms() < deadline_ms; i++) {
		struct smtpprobe_req req = { .helo = cx->conn->our_name[0] ? cx->conn->our_name
			                                                   : cx->conf->hostname,
			                     .sender = vc->probe_sender,
			                     .rcpt = a->full,
			                     .rcpt2 = kind == 's' ? rcpt2 : NULL,
			                     .deadline_ms = deadline_ms };
		struct smtpprobe_res pr;
		char host[64];
		int slot;

		ip_format(&t[i].ip, host, sizeof(host));
		if ((slot = host_take(host, vc->host_concurrency, deadline_ms)) < 0) {
			snprintf(res->text, sizeof(res->text),
			         "too many probes in flight to %s (verify.host_concurrency)", host);
			break;
		}
		smtpprobe_run(&t[i].ip, t[i].port, &req, &pr);
		host_release(slot);
		log_msg(LOG_LVL_INFO, "ref=%s verify: probe of <%s> at [%s]:%d: %s at %s%s%s %s",
		        check_ref(cx), enc_log(logaddr, sizeof(logaddr), a->full, 300), host,
		        t[i].port,
		        pr.result == PROBE_VALID     ? "valid"
		        : pr.result == PROBE_INVALID ? "invalid"
		                                     : "unknown",
		        pr.stage, pr.code[0] ? ": " : "", pr.code, pr.text);
		res->status = pr.result;
		bcopy_str(res->code, sizeof(res->code), pr.code);
		bcopy_str(res->xcode, sizeof(res->xcode), pr.xcode);
		bcopy_str(res->text, sizeof(res->text), pr.text);
		snprintf(res->host, sizeof(res->host), "[%s]", host);
		res->checked = clock_now();
		if (pr.result == PROBE_VALID && kind == 's' && pr.result2 == PROBE_VALID) {
			char ck[300];
			int len = snprintf(ck, sizeof(ck), "c:%s", a->domain);

			if (!cx->dry_run && cx->store)
				store_put(cx->store, VERIFY_NS, ck, (size_t)len, "catchall", 8,
				          clock_now() + vc->catchall_expire, STORE_NORMAL);
			res->status = PROBE_UNKNOWN;
			snprintf(res->text, sizeof(res->text),
			         "%.100s accepts any address (catch-all)", a->domain);
			return;
		}
		if (pr.result != PROBE_UNKNOWN)
			return;
	}
}

/* Verify a (kind 'r' or 's'): cache, or one probe shared with concurrent
 * transactions.  Fills *res. */
static void verify_addr(const struct check_ctx *cx, const struct verify_conf *vc, int kind,
                        const struct mailaddr *a, const struct hop *hop, struct vres *res)
{
	char logaddr[400];
	char key[320], val[600];
	size_t len = 0;
	struct vres old;
	int have_old = 0, leader;
	long long deadline_ms = now_ms() + vc->timeout * 1000;
	time_t now = clock_now();
	int klen = snprintf(key, sizeof(key), "%c:%s", kind, a->full);

	str_lower(key, sizeof(key), key);
	memset(res, 0, sizeof(*res));
	if (cx->store && klen > 0 && (size_t)klen < sizeof(key)) {
		if (store_get(cx->store, VERIFY_NS, key, (size_t)klen, val, sizeof(val) - 1, &len,
		              NULL) == 1) {
			val[len] = '\0';
			have_old = vres_decode(val, &old) == 0;
		}
		if (have_old) {
			long age = (long)(now - old.checked);

			if ((old.status == PROBE_VALID && age < vc->positive_refresh) ||
			    (old.status == PROBE_INVALID && age < vc->negative_refresh)) {
				*res = old;
				return;
			}
		}
		if (kind == 's') {
			char ck[300];
			int cl = snprintf(ck, sizeof(ck), "c:%s", a->domain);

			if (store_get(cx->store, VERIFY_NS, ck, (size_t)cl, val, sizeof(val) - 1,
			              &len, NULL) == 1) {
				snprintf(res->text, sizeof(res->text),
				         "%.100s accepts any address (catch-all)", a->domain);
				return;
			}
		}
	}
	if (cx->dry_run) {
		if (have_old)
			*res = old;
		else
			bcopy_str(res->text, sizeof(res->text),
			          "not in the cache (dry run: no probe)");
		return;
	}
	struct flight *f = flight_begin(key, &leader);
	if (leader) {
		probe(cx, vc, kind, a, hop, deadline_ms, res);
		if (res->status != PROBE_UNKNOWN && cx->store) {
			vres_encode(res, val, sizeof(val));
			store_put(cx->store, VERIFY_NS, key, (size_t)klen, val, strlen(val),
			          res->checked + (res->status == PROBE_VALID ? vc->positive_expire
			                                                     : vc->negative_expire),
			          STORE_NORMAL);
		}
	}
	flight_leave(f, res, leader, deadline_ms);
	if (res->status == PROBE_UNKNOWN && have_old) {
		/* no answer: the old result stands until it expires */
		log_msg(LOG_LVL_INFO, "ref=%s verify: <%s> kept as %s (refresh failed: %s)",
		        check_ref(cx), enc_log(logaddr, sizeof(logaddr), a->full, 300),
		        old.status == PROBE_VALID ? "valid" : "invalid", res->text);
		*res = old;
	}
}

/* --- hooks ----------------------------------------------------------------------- */

/* Something earlier already refuses this recipient (or, at MAIL, the
 * transaction): a probe would be wasted on mail that is refused anyway,
 * and is not made for a listed spammer's sake. */
static int already_refused(const struct check_ctx *cx)
{
	if (cx->rcpt_refused)
		return 1;
	if (cx->conn->nheld > 0)
		return 1;
	return cx->txn && cx->txn->nheld > 0 && cx->rcpt != NULL;
}

static int verify_rcpt(const struct check_ctx *cx, struct verdicts *out)
{
	const struct verify_conf *vc = cx->mconf;
	const struct mailaddr *a = &cx->rcpt->addr;
	const struct hop *hop;
	struct vres r;

	if (vc->nrhops == 0 || !addr_fqdn_domain(a) ||
	    (hop = find_hop(vc->rhops, vc->nrhops, a->domain)) == NULL || already_refused(cx))
		return CHECK_DONE;
	verify_addr(cx, vc, 'r', a, hop, &r);
	switch (r.status) {
	case PROBE_VALID: break;
	case PROBE_INVALID:
		verdict_reject(out, MODE_REJECT, "verify.recipient", "550", "5.1.1",
		               "Recipient address <%.150s> rejected: unverified address: %s said: "
		               "%s %s%s%s",
		               a->full, r.host[0] ? r.host : "the mail server", r.code, r.xcode,
		               r.xcode[0] ? " " : "", r.text);
		break;
	default:
		return check_retry_reply(
		    out, "450", "4.1.1",
		    "Recipient address <%.150s> deferred: address verification "
		    "in progress or failed (%s)",
		    a->full, r.text);
	}
	return CHECK_DONE;
}

static int verify_mail(const struct check_ctx *cx, struct verdicts *out)
{
	char logaddr[400];
	const struct verify_conf *vc = cx->mconf;
	const struct mailaddr *a = &cx->txn->sender;
	const struct hop *hop;
	struct vres r;

	if (vc->sender_mode == MODE_OFF || (vc->nshops == 0 && !vc->sender_all) ||
	    !addr_fqdn_domain(a) || already_refused(cx))
		return CHECK_DONE;
	/* our own domains are known here; the null sender is never probed */
	if (find_hop(vc->rhops, vc->nrhops, a->domain))
		return CHECK_DONE;
	hop = find_hop(vc->shops, vc->nshops, a->domain);
	if (hop == NULL && !vc->sender_all)
		return CHECK_DONE;
	verify_addr(cx, vc, 's', a, hop, &r);
	switch (r.status) {
	case PROBE_VALID: break;
	case PROBE_INVALID:
		if (vc->sender_scores)
			verdict_score(out, MODE_REJECT, "verify.sender", vc->sender_score,
			              "sender <%.150s> not verified: %s %s %s", a->full, r.code,
			              r.xcode, r.text);
		else
			verdict_reject(out, vc->sender_mode, "verify.sender", "550", "5.1.7",
			               "Sender address <%.150s> rejected: unverified address: %s "
			               "said: %s %s%s%s",
			               a->full, r.host[0] ? r.host : "its mail server", r.code,
			               r.xcode, r.xcode[0] ? " " : "", r.text);
		break;
	default:
		if (vc->sender_on_error == ONERR_DEFER)
			return check_retry_reply(out, "450", "4.1.7",
			                         "Sender address <%.150s> deferred: address "
			                         "verification failed (%s)",
			                         a->full, r.text);
		log_msg(LOG_LVL_INFO, "ref=%s verify: sender <%s> unknown, skipped: %s",
		        check_ref(cx), enc_log(logaddr, sizeof(logaddr), a->full, 300), r.text);
		break;
	}
	return CHECK_DONE;
}

const struct check_module check_verify = {
	.name = "verify",
	.doc = "recipient and sender address verification by SMTP probes (callouts), cached",
	.params = verify_params,
	.conf_size = sizeof(struct verify_conf),
	.default_mode = "reject",
	.default_on_error = "defer",
	.init = verify_init,
	.fini = verify_fini,
	.hook = {
		[STAGE_MAIL] = verify_mail,
		[STAGE_RCPT] = verify_rcpt,
	},
};
