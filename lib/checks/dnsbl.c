/* lib/checks/dnsbl.c - DNS blocklists and allow-lists for the client address
 *
 * The client's IPv4 address (reversed octets) or IPv6 address (32 nibbles,
 * RFC 5782) is looked up under every configured list in ONE DNS batch, so
 * six lists cost the slowest answer, not the sum.  Lists are configured in
 * Postfix's postscreen_dnsbl_sites syntax:
 *
 *   dnsbl.sites = zen.spamhaus.org=127.0.0.[2..3]*6, bl.spamcop.net*3,
 *                 list.dnswl.org=127.0.[0..255].[1..3]*-5
 *   dnsbl.reject_sites = zen.spamhaus.org=127.0.0.2
 *
 * SITE[=FILTER][*WEIGHT]: FILTER restricts the answers that count (each
 * octet a number, a range [a..b] or a list [a;b;c..d]; without a filter any
 * answer in 127.0.0.0/8 counts, answers elsewhere never do: they are the
 * sign of a resolver that rewrites NXDOMAIN); WEIGHT (default 1) is added as
 * a score with the symbol dnsbl.SITE; a negative total (allow-lists) may
 * whitelist the connection (dnsbl.allow_threshold).  reject_sites reject
 * outright.  The same site may appear several times with different filters;
 * it is asked once.
 *
 * Answers 127.255.255.252-255 ("query refused", "typing error", as Spamhaus
 * answers public resolvers) disable the list for dnsbl.refused_disable and
 * log a warning; they never count.  Each list is self-tested (RFC 5782:
 * 2.0.0.127 must be listed, 1.0.0.127 must not) when first used and every
 * dnsbl.selftest_interval after: the two test questions ride in the same
 * batch as the lookup, so the test costs no extra round trip, and nothing is
 * sent while the configuration is loaded (a reload or `portcullis -n` never
 * waits for the network).  A list that fails is not asked, with a warning,
 * until it passes again; an inconclusive test (timeout) is repeated on the
 * next use.  A temporary failure of some lists ignores those lists (logged);
 * when every list asked failed the check returns CHECK_RETRY (on_error).
 *
 * The list machinery (parsing, state, self-test, lookup) is shared with
 * rhsbl.c through the dnsxl_* functions below (declared again there).
 *
 * Thread-safety: the settings are immutable; the per-list state (self-test,
 * disabled-until) lives in a struct dnsxl allocated by init() for the
 * snapshot, behind one mutex that is never held across DNS waits.
 */
#include "check.h"
#include "dnsxl.h"
#include "dns.h"
#include "engine.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define DNSXL_LISTS_MAX   32 /* distinct list domains (3 queries each fit a batch) */
#define DNSXL_ENTRIES_MAX 64
#define DNSXL_ANSWERS_MAX 8 /* answer addresses looked at per list */

enum selftest { ST_UNTESTED, ST_PASSED, ST_FAILED };

struct dnsxl_list {
	char domain[DNS_NAME_MAX + 1];
	/* Mutable state, under dnsxl.lock. */
	enum selftest st;
	int testing;              /* a thread has the due test in its batch */
	long long next_test;      /* monotonic seconds */
	long long disabled_until; /* after a "query refused" answer */
};

struct dnsxl_entry {
	int list;
	int filtered;
	unsigned char bits[4][32]; /* accepted values per octet */
	double weight;
	int reject;
	unsigned use; /* which lookups the entry is for (rhsbl: sender, HELO) */
};

struct dnsxl {
	const char *module; /* "dnsbl", "rhsbl": for logs */
	int domains;        /* 1: domain lists (RFC 5782 section 5), 0: IP lists */
	long selftest_interval;
	long refused_disable;
	pthread_mutex_t lock;
	int nlists, nentries;
	struct dnsxl_list list[DNSXL_LISTS_MAX];
	struct dnsxl_entry entry[DNSXL_ENTRIES_MAX];
};

struct dnsxl *dnsxl_new(const char *module, int domains, long selftest_interval,
                        long refused_disable)
{
	struct dnsxl *x = xcalloc(1, sizeof(*x));

	x->module = module;
	x->domains = domains;
	x->selftest_interval = selftest_interval;
	x->refused_disable = refused_disable;
	pthread_mutex_init(&x->lock, NULL);
	return x;
}

void dnsxl_free(struct dnsxl *x)
{
	if (x == NULL)
		return;
	pthread_mutex_destroy(&x->lock);
	free(x);
}

static long long now_s(void)
{
	return now_ms() / 1000;
}

/* One octet of a filter: "N", "[N..M]" or "[N;N..M;...]".  Sets the bits of
 * the accepted values; returns the end of the part or NULL. */
static const char *parse_octet(const char *s, unsigned char bits[32])
{
	int bracket = *s == '[';

	if (bracket)
		s++;
	for (;;) {
		char *end;
		long lo, hi;

		if (*s < '0' || *s > '9')
			return NULL;
		errno = 0;
		lo = strtol(s, &end, 10);
		if (errno || lo > 255)
			return NULL;
		hi = lo;
		s = end;
		if (bracket && s[0] == '.' && s[1] == '.') {
			s += 2;
			if (*s < '0' || *s > '9')
				return NULL;
			hi = strtol(s, &end, 10);
			if (errno || hi > 255 || hi < lo)
				return NULL;
			s = end;
		}
		for (long v = lo; v <= hi; v++)
			bits[v / 8] |= (unsigned char)(1u << (v % 8));
		if (!bracket)
			return s;
		if (*s == ']')
			return s + 1;
		if (*s != ';')
			return NULL;
		s++;
	}
}

static int parse_filter(const char *s, struct dnsxl_entry *e)
{
	memset(e->bits, 0, sizeof(e->bits));
	for (int i = 0; i < 4; i++) {
		s = parse_octet(s, e->bits[i]);
		if (s == NULL || *s != (i < 3 ? '.' : '\0'))
			return -1;
		s++;
	}
	return 0;
}

/* Parse one "SITE[=FILTER][*WEIGHT]" and add it. */
static int add_site(struct dnsxl *x, const char *spec, int reject, unsigned use, const char *key,
                    char *err, size_t errsize)
{
	char buf[512], *star, *eq, domain[DNS_NAME_MAX + 2];
	struct dnsxl_entry *e;
	size_t len;
	int li;

	if (bcopy_str(buf, sizeof(buf), spec) >= sizeof(buf)) {
		snprintf(err, errsize, "%s: site too long '%.60s...'", key, spec);
		return -1;
	}
	if (x->nentries >= DNSXL_ENTRIES_MAX) {
		snprintf(err, errsize, "%s: more than %d sites", key, DNSXL_ENTRIES_MAX);
		return -1;
	}
	e = &x->entry[x->nentries];
	memset(e, 0, sizeof(*e));
	e->weight = 1;
	e->reject = reject;
	e->use = use;
	star = strrchr(buf, '*');
	if (star) {
		char *end;

		*star = '\0';
		errno = 0;
		e->weight = strtod(star + 1, &end);
		if (end == star + 1 || *end || errno || !isfinite(e->weight) ||
		    fabs(e->weight) > 1000) {
			snprintf(err, errsize, "%s: invalid weight '%.60s' in '%.100s'", key,
			         star + 1, spec);
			return -1;
		}
	}
	eq = strchr(buf, '=');
	if (eq) {
		*eq = '\0';
		if (parse_filter(eq + 1, e) < 0) {
			snprintf(err, errsize,
			         "%s: invalid filter '%.60s' in '%.100s' (e.g. 127.0.0.[2..11] or "
			         "127.0.[0..255].[1;3])",
			         key, eq + 1, spec);
			return -1;
		}
		e->filtered = 1;
	}
	len = str_lower(domain, sizeof(domain), buf);
	if (len > 0 && len < sizeof(domain) && domain[len - 1] == '.')
		domain[--len] = '\0';
	/* Room for the longest question: 64 bytes of IPv6 nibbles, or a
	 * short domain for domain lists (longer ones are then not asked). */
	if (len == 0 || len > DNS_NAME_MAX - 72 || !dns_name_valid(domain) ||
	    strchr(domain, '.') == NULL) {
		snprintf(err, errsize, "%s: invalid list domain '%.100s'", key, buf);
		return -1;
	}
	for (li = 0; li < x->nlists; li++)
		if (strcmp(x->list[li].domain, domain) == 0)
			break;
	if (li == x->nlists) {
		if (x->nlists >= DNSXL_LISTS_MAX) {
			snprintf(err, errsize, "%s: more than %d lists", key, DNSXL_LISTS_MAX);
			return -1;
		}
		bcopy_str(x->list[li].domain, sizeof(x->list[li].domain), domain);
		x->nlists++;
	}
	e->list = li;
	x->nentries++;
	return 0;
}

int dnsxl_add_sites(struct dnsxl *x, const struct strlist *sites, int reject, unsigned use,
                    const char *key, char *err, size_t errsize)
{
	for (int i = 0; i < sites->n; i++)
		if (add_site(x, sites->v[i], reject, use, key, err, errsize) < 0)
			return -1;
	return 0;
}

/* Answer addresses of an A query, as text and as octets. */
struct answers {
	int n;
	unsigned char a[DNSXL_ANSWERS_MAX][4];
	char text[DNSXL_ANSWERS_MAX][16];
};

static void read_answers(const struct dns_batch *b, int q, struct answers *an)
{
	int count = dns_result_count(b, q);

	an->n = 0;
	for (int j = 0; j < count && an->n < DNSXL_ANSWERS_MAX; j++) {
		char txt[64];
		struct ipaddr ip;

		if (dns_result_text(b, q, j, txt, sizeof(txt)) < 0 || ip_parse(txt, &ip) < 0 ||
		    ip.family != AF_INET)
			continue;
		memcpy(an->a[an->n], ip.a, 4);
		bcopy_str(an->text[an->n], sizeof(an->text[an->n]), txt);
		an->n++;
	}
}

static int is_refused_code(const unsigned char *a)
{
	return a[0] == 127 && a[1] == 255 && a[2] == 255 && a[3] >= 252;
}

/* The first "query refused" answer, or -1. */
static int refused_answer(const struct answers *an)
{
	for (int i = 0; i < an->n; i++)
		if (is_refused_code(an->a[i]))
			return i;
	return -1;
}

/* Is there an answer that a list without filter would count? */
static int any_listed(const struct answers *an)
{
	for (int i = 0; i < an->n; i++)
		if (an->a[i][0] == 127 && !is_refused_code(an->a[i]))
			return 1;
	return 0;
}

static int entry_matches(const struct dnsxl_entry *e, const unsigned char *a)
{
	if (is_refused_code(a))
		return 0;
	if (!e->filtered)
		return a[0] == 127;
	for (int k = 0; k < 4; k++)
		if (!(e->bits[k][a[k] / 8] & (1u << (a[k] % 8))))
			return 0;
	return 1;
}

/* The question for list l: the reversed address or DOMAIN.LIST. */
static int question(const struct dnsxl *x, int l, const struct ipaddr *ip, const char *domain,
                    char *name, size_t namesize)
{
	if (ip)
		return dns_reverse_name(ip, x->list[l].domain, name, namesize);
	if ((size_t)snprintf(name, namesize, "%s.%s", domain, x->list[l].domain) >= namesize ||
	    strlen(name) > DNS_NAME_MAX || !dns_name_valid(name))
		return -1;
	return 0;
}

/* Disable list l after a "query refused" answer. */
static void list_refused(struct dnsxl *x, int l, const char *qname, const char *answer)
{
	pthread_mutex_lock(&x->lock);
	x->list[l].disabled_until = now_s() + x->refused_disable;
	x->list[l].testing = 0;
	pthread_mutex_unlock(&x->lock);
	log_msg(LOG_LVL_WARN,
	        "%s: list %s answered %s for %s (query refused or blocked resolver): "
	        "list disabled for %ld s",
	        x->module, x->list[l].domain, answer, qname, x->refused_disable);
}

/* Judge the self-test of list l from the two test answers.  Returns 1 when
 * the list may be used for this lookup, 0 when not. */
static int judge_selftest(struct dnsxl *x, int l, const struct dns_batch *b, int qpos, int qneg,
                          const char *pos, const char *neg)
{
	struct dnsxl_list *li = &x->list[l];
	enum dns_status sp = dns_result_status(b, qpos), sn = dns_result_status(b, qneg);
	struct answers ap, an;
	const char *why = NULL, *what = pos;
	enum selftest was;
	int r;

	read_answers(b, qpos, &ap);
	read_answers(b, qneg, &an);
	if ((r = refused_answer(&ap)) >= 0) {
		list_refused(x, l, pos, ap.text[r]);
		return 0;
	}
	if ((r = refused_answer(&an)) >= 0) {
		list_refused(x, l, neg, an.text[r]);
		return 0;
	}
	if (dns_status_temporary(sp) || dns_status_temporary(sn)) {
		/* Inconclusive: ask again next time; meanwhile keep the state. */
		pthread_mutex_lock(&x->lock);
		li->testing = 0;
		r = li->st != ST_FAILED;
		pthread_mutex_unlock(&x->lock);
		return r;
	}
	if (sp != DNS_OK || !any_listed(&ap)) {
		why = "is not listed";
	} else if (sn == DNS_OK) {
		why = "is listed";
		what = neg;
	}
	pthread_mutex_lock(&x->lock);
	was = li->st;
	li->st = why ? ST_FAILED : ST_PASSED;
	li->next_test = now_s() + x->selftest_interval;
	li->testing = 0;
	pthread_mutex_unlock(&x->lock);
	if (why && was != ST_FAILED)
		log_msg(LOG_LVL_WARN,
		        "%s: list %s failed its self-test (RFC 5782): %s %s: list disabled "
		        "until it passes",
		        x->module, li->domain, what, why);
	else if (!why && was == ST_FAILED)
		log_msg(LOG_LVL_WARN, "%s: list %s passed its self-test again: list enabled",
		        x->module, li->domain);
	return why == NULL;
}

/* Look up ip (IP lists) or domain (domain lists) under every list that has
 * an entry for `use`, in one batch with the self-tests that are due.  Calls
 * fn once per list and kind (score / reject) whose answer passed a filter,
 * with the summed weight and the accepted answers.  Returns the number of
 * lists asked whose lookup failed temporarily, with "LIST: STATUS, ..." in
 * failed, or -1 when every list asked failed (0 lists asked is no failure). */
int dnsxl_lookup(struct dnsxl *x, const struct conf *conf, int timeout_ms, const struct ipaddr *ip,
                 const char *domain, unsigned use, dnsxl_hit_fn fn, void *arg, char *failed,
                 size_t failedsize)
{
	int q[DNSXL_LISTS_MAX], qpos[DNSXL_LISTS_MAX], qneg[DNSXL_LISTS_MAX];
	char name[DNSXL_LISTS_MAX][DNS_NAME_MAX + 1];
	int asked = 0, nfailed = 0;
	long long now = now_s();
	struct dns_batch *b;

	failed[0] = '\0';
	/* Which lists to ask, and which self-tests are due. */
	pthread_mutex_lock(&x->lock);
	for (int l = 0; l < x->nlists; l++) {
		struct dnsxl_list *li = &x->list[l];
		int wanted = 0;

		q[l] = qpos[l] = qneg[l] = -1;
		for (int k = 0; k < x->nentries; k++)
			wanted |= x->entry[k].list == l && (x->entry[k].use & use);
		if (!wanted || li->disabled_until > now)
			continue;
		if (x->selftest_interval > 0) {
			if (li->st == ST_UNTESTED) {
				qpos[l] = qneg[l] = 0; /* test in this batch */
			} else if (now >= li->next_test && !li->testing) {
				li->testing = 1; /* this thread takes the due test */
				qpos[l] = qneg[l] = 0;
			} else if (li->st == ST_FAILED) {
				continue;
			}
		}
		q[l] = 0;
	}
	pthread_mutex_unlock(&x->lock);

	b = dns_batch_new(conf->dns, timeout_ms);
	for (int l = 0; l < x->nlists; l++) {
		char tname[DNS_NAME_MAX + 16];

		if (q[l] < 0)
			continue;
		if (question(x, l, ip, domain, name[l], sizeof(name[l])) < 0) {
			/* Too long a name under this list: it cannot be asked. */
			q[l] = -1;
			if (qpos[l] == 0) {
				pthread_mutex_lock(&x->lock);
				x->list[l].testing = 0;
				pthread_mutex_unlock(&x->lock);
				qpos[l] = qneg[l] = -1;
			}
			continue;
		}
		q[l] = dns_batch_add(b, name[l], LDNS_RR_TYPE_A);
		asked++;
		if (qpos[l] == 0) {
			snprintf(tname, sizeof(tname), "%s.%s", x->domains ? "test" : "2.0.0.127",
			         x->list[l].domain);
			qpos[l] = dns_batch_add(b, tname, LDNS_RR_TYPE_A);
			snprintf(tname, sizeof(tname), "%s.%s",
			         x->domains ? "invalid" : "1.0.0.127", x->list[l].domain);
			qneg[l] = dns_batch_add(b, tname, LDNS_RR_TYPE_A);
		}
	}
	if (asked == 0) {
		dns_batch_free(b);
		return 0;
	}
	dns_batch_run(b);

	for (int l = 0; l < x->nlists; l++) {
		enum dns_status st;
		struct answers an;
		int r;

		if (q[l] < 0)
			continue;
		if (qpos[l] >= 0) {
			char pos[DNS_NAME_MAX + 16], neg[DNS_NAME_MAX + 16];

			snprintf(pos, sizeof(pos), "%s.%s", x->domains ? "test" : "2.0.0.127",
			         x->list[l].domain);
			snprintf(neg, sizeof(neg), "%s.%s", x->domains ? "invalid" : "1.0.0.127",
			         x->list[l].domain);
			if (!judge_selftest(x, l, b, qpos[l], qneg[l], pos, neg)) {
				asked--;
				continue;
			}
		}
		st = dns_result_status(b, q[l]);
		if (dns_status_temporary(st)) {
			nfailed++;
			bappend(failed, failedsize, "%s%s: %s", failed[0] ? ", " : "",
			        x->list[l].domain, dns_status_name(st));
			continue;
		}
		if (st != DNS_OK)
			continue;
		read_answers(b, q[l], &an);
		if ((r = refused_answer(&an)) >= 0) {
			list_refused(x, l, name[l], an.text[r]);
			continue;
		}
		/* One call per kind: weights of the matching entries summed. */
		for (int kind = 0; kind < 2; kind++) {
			char text[DNSXL_ANSWERS_MAX * 17] = "";
			double weight = 0;
			int hit = 0;

			for (int i = 0; i < an.n; i++) {
				int m = 0;

				for (int k = 0; k < x->nentries; k++) {
					const struct dnsxl_entry *e = &x->entry[k];

					if (e->list == l && e->reject == kind && (e->use & use) &&
					    entry_matches(e, an.a[i]))
						m = 1;
				}
				if (m)
					bappend(text, sizeof(text), "%s%s", text[0] ? ", " : "",
					        an.text[i]);
			}
			/* Each entry counts once, however many answers it accepts. */
			for (int k = 0; k < x->nentries; k++) {
				const struct dnsxl_entry *e = &x->entry[k];
				int m = 0;

				if (e->list != l || e->reject != kind || !(e->use & use))
					continue;
				for (int i = 0; i < an.n && !m; i++)
					m = entry_matches(e, an.a[i]);
				if (m) {
					weight += e->weight;
					hit = 1;
				}
			}
			if (hit)
				fn(arg, x->list[l].domain, kind, weight, text);
		}
	}
	dns_batch_free(b);
	if (asked > 0 && nfailed == asked)
		return -1;
	return nfailed;
}

/* ---- the dnsbl module ---------------------------------------------------- */

struct dnsbl_conf {
	struct strlist sites;
	struct strlist reject_sites;
	double allow_threshold;
	long selftest_interval;
	long refused_disable;
	struct dnsxl *x; /* made by init, per snapshot */
};

#define F(x) offsetof(struct dnsbl_conf, x)
static const struct conf_param dnsbl_params[] = {
	{ "dnsbl.sites", "", CONF_LIST, F(sites), 0, 0,
	  "lists that add a score: SITE[=FILTER][*WEIGHT] as postscreen_dnsbl_sites" },
	{ "dnsbl.reject_sites", "", CONF_LIST, F(reject_sites), 0, 0,
	  "lists that reject: SITE[=FILTER] (a weight is ignored)" },
	{ "dnsbl.allow_threshold", "0", CONF_SCORE, F(allow_threshold), -1000, 0,
	  "whitelist the connection when the total weight is at most this (0: never)" },
	{ "dnsbl.selftest_interval", "1h", CONF_TIME, F(selftest_interval), 0, 604800,
	  "RFC 5782 self-test of each list at first use and this often (0: never)" },
	{ "dnsbl.refused_disable", "1h", CONF_TIME, F(refused_disable), 60, 604800,
	  "how long a list answering 127.255.255.252-255 (query refused) is not asked" },
	CONF_END
};

static int dnsbl_init(void *mconf, const struct conf *c, char *err, size_t errsize)
{
	struct dnsbl_conf *dc = mconf;

	dc->x = dnsxl_new("dnsbl", 0, dc->selftest_interval, dc->refused_disable);
	if (dnsxl_add_sites(dc->x, &dc->sites, 0, 1, "dnsbl.sites", err, errsize) < 0 ||
	    dnsxl_add_sites(dc->x, &dc->reject_sites, 1, 1, "dnsbl.reject_sites", err, errsize) <
	        0) {
		dnsxl_free(dc->x);
		dc->x = NULL;
		return -1;
	}
	if (dc->x->nlists == 0)
		log_msg(LOG_LVL_WARN, "dnsbl: enabled without dnsbl.sites or dnsbl.reject_sites");
	return 0;
}

static void dnsbl_fini(void *mconf)
{
	struct dnsbl_conf *dc = mconf;

	dnsxl_free(dc->x);
	dc->x = NULL;
}

struct dnsbl_hits {
	const char *client;
	struct verdicts *out;
	double total;
	char log[600];
};

static void dnsbl_hit(void *arg, const char *site, int reject, double weight, const char *answers)
{
	struct dnsbl_hits *h = arg;
	char symbol[48];

	snprintf(symbol, sizeof(symbol), "dnsbl.%s", site);
	if (reject) {
		verdict_reject(h->out, MODE_REJECT, symbol, "550", "5.7.1",
		               "Client host %s listed by %s (%s)", h->client, site, answers);
		bappend(h->log, sizeof(h->log), " %s=%s(reject)", site, answers);
	} else {
		verdict_score(h->out, MODE_REJECT, symbol, weight,
		              "Client host %s listed by %s (%s)", h->client, site, answers);
		bappend(h->log, sizeof(h->log), " %s=%s(%+g)", site, answers, weight);
		h->total += weight;
	}
}

static int dnsbl_connect(const struct check_ctx *cx, struct verdicts *out)
{
	const struct dnsbl_conf *dc = cx->mconf;
	const struct conn *c = cx->conn;
	struct dnsbl_hits h = { c->client_addr, out, 0, "" };
	struct ipaddr ip = c->client_ip;
	char failed[300];
	int r;

	if (dc->x == NULL || ip.family == 0)
		return CHECK_DONE;
	/* An IPv4-mapped IPv6 client is looked up as IPv4. */
	ip_unmap(&ip, &ip);
	if (ip_is_loopback(&ip))
		return CHECK_DONE;
	r = dnsxl_lookup(dc->x, cx->conf, check_dns_timeout(cx), &ip, NULL, 1, dnsbl_hit, &h,
	                 failed, sizeof(failed));
	if (r < 0)
		return check_retry_reply(out, "451", "4.4.3",
		                         "DNS blocklist lookups for client host %s failed (%s)",
		                         c->client_addr, failed);
	if (r > 0)
		log_msg(LOG_LVL_WARN,
		        "ref=%s dnsbl: client %s: lists ignored after lookup failure: %s",
		        check_ref(cx), c->client_addr, failed);
	if (h.log[0])
		log_msg(LOG_LVL_INFO, "ref=%s dnsbl: client %s listed:%s", check_ref(cx),
		        c->client_addr, h.log);
	if (dc->allow_threshold < 0 && h.total <= dc->allow_threshold)
		verdict_ok(out, "dnsbl.allow"); /* after the scores: OK ends the list */
	return CHECK_DONE;
}

const struct check_module check_dnsbl = {
	.name = "dnsbl",
	.doc = "DNS blocklists and allow-lists for the client address (IPv4 and IPv6)",
	.params = dnsbl_params,
	.conf_size = sizeof(struct dnsbl_conf),
	.default_mode = "reject",
	.default_on_error = "skip",
	.init = dnsbl_init,
	.fini = dnsbl_fini,
	.hook = {
		[STAGE_CONNECT] = dnsbl_connect,
	},
};
