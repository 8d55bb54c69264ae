/* lib/engine.c - the check engine; see engine.h for the decision rules
 *
 * Threading: a struct conn is only touched by the thread libmilter runs the
 * connection's current callback on; the snapshot it holds is immutable.  The
 * only process-wide state is the reference id generator (arc4random) and
 * the store pointer, set once before the first connection.
 */
#include "engine.h"
#include "authres.h"
#include "log.h"
#include "refs.h"
#include "store.h"
#include "metrics.h"
#include "message.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

/* --- the store ------------------------------------------------------------ */

static struct store *the_store;
static int the_dry_run;

void engine_set_store(struct store *st, int dry_run)
{
	the_store = st;
	the_dry_run = dry_run;
}

struct store *engine_store(void)
{
	return the_store;
}

/* --- transactions in flight ------------------------------------------------ */

static atomic_int open_txns;

int engine_open_txns(void)
{
	return atomic_load(&open_txns);
}

/* --- reference ids ------------------------------------------------------- */

/* Random bytes for reference ids, taken from getrandom(2) a block at a
 * time: glibc's arc4random_buf() makes one system call per call, i.e. one
 * per transaction.  The block is per thread (no lock), used bytes are
 * wiped, and a child process after fork() starts a block of its own so
 * that it never repeats its parent's ids. */
#define REF_POOL (24 * REF_LEN) /* <= 256: getrandom() never returns short */

static _Thread_local struct {
	unsigned char b[REF_POOL];
	size_t left;
	unsigned gen;
} ref_pool;
static atomic_uint ref_gen; /* moved by every fork: a child refills */
static pthread_once_t ref_once = PTHREAD_ONCE_INIT;

static void ref_forked(void)
{
	atomic_fetch_add(&ref_gen, 1);
}

static void ref_init(void)
{
	(void)pthread_atfork(NULL, NULL, ref_forked);
}

static void ref_random(unsigned char *dst, size_t n)
{
	unsigned gen;

	pthread_once(&ref_once, ref_init);
	gen = atomic_load(&ref_gen);
	if (ref_pool.gen != gen) {
		explicit_bzero(ref_pool.b, sizeof(ref_pool.b));
		ref_pool.left = 0;
		ref_pool.gen = gen;
	}
	if (ref_pool.left < n) {
		ssize_t r;

		do
			r = getrandom(ref_pool.b, sizeof(ref_pool.b), 0);
		while (r < 0 && errno == EINTR);
		if (r != (ssize_t)sizeof(ref_pool.b)) {
			arc4random_buf(dst, n); /* no getrandom(): as before */
			return;
		}
		ref_pool.left = sizeof(ref_pool.b);
	}
	memcpy(dst, ref_pool.b + sizeof(ref_pool.b) - ref_pool.left, n);
	explicit_bzero(ref_pool.b + sizeof(ref_pool.b) - ref_pool.left, n);
	ref_pool.left -= n;
}

void engine_make_ref(char ref[REF_LEN + 1])
{
	static const char alphabet[] =
	    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	unsigned char rnd[REF_LEN];

	ref_random(rnd, sizeof(rnd));
	for (int i = 0; i < REF_LEN; i++)
		ref[i] = alphabet[rnd[i] % 62];
	ref[REF_LEN] = '\0';
}

/* --- small helpers ------------------------------------------------------- */

static void add_note(struct note **notes, int *n, const struct verdict *v, int monitor)
{
	struct note *x;

	/* Bounded: a hostile client cannot grow this past a few hundred. */
	if (*n >= 256)
		return;
	*notes = xrealloc(*notes, sizeof(**notes) * (size_t)(*n + 1));
	x = &(*notes)[(*n)++];
	bcopy_str(x->symbol, sizeof(x->symbol), v->symbol);
	x->action = v->action;
	x->score = v->score;
	x->monitor = monitor;
	x->stage = v->stage;
}

static void hold(struct verdict **held, int *n, const struct verdict *v)
{
	if (*n >= 64)
		return;
	*held = xrealloc(*held, sizeof(**held) * (size_t)(*n + 1));
	(*held)[(*n)++] = *v;
}

static enum mode mode_min(enum mode a, enum mode b)
{
	return a < b ? a : b;
}

/* A reject stated in defer mode becomes a temporary failure. */
static void soften(struct verdict *v)
{
	if (v->action != ACT_REJECT)
		return;
	v->action = ACT_DEFER;
	if (v->code[0] == '5')
		bcopy_str(v->code, sizeof(v->code), v->code[1] == '5' ? "450" : "451");
	if (v->xcode[0] == '5')
		v->xcode[0] = '4';
}

/* The scope a stage's OK whitelists and where its verdicts are kept. */
struct scope {
	int *whitelisted;
	struct verdict **held;
	int *nheld;
	double *score;
	struct note **notes;
	int *nnotes;
};

static void scope_of(struct conn *c, enum stage st, struct rcpt *rc, struct verdict **rheld,
                     int *nrheld, struct scope *s)
{
	if (st == STAGE_CONNECT || st == STAGE_HELO) {
		*s = (struct scope){ &c->whitelisted, &c->held,  &c->nheld,
			             &c->score,       &c->notes, &c->nnotes };
	} else if (st == STAGE_RCPT) {
		*s = (struct scope){ &rc->whitelisted, rheld,          nrheld,
			             &rc->score,       &c->txn->notes, &c->txn->nnotes };
	} else {
		*s = (struct scope){ &c->txn->whitelisted, &c->txn->held,  &c->txn->nheld,
			             &c->txn->score,       &c->txn->notes, &c->txn->nnotes };
	}
}

/* The transaction is whitelisted by SMTP AUTH only: the auth_limit
 * modules (check.h) still run at MAIL and RCPT. */
static int auth_pass(const struct conn *c, enum stage st)
{
	return (st == STAGE_MAIL || st == STAGE_RCPT) && !c->whitelisted && c->txn &&
	       c->txn->auth_whitelisted;
}

static int skipping(const struct conn *c, enum stage st)
{
	if (c->whitelisted)
		return 1;
	return st >= STAGE_MAIL && c->txn && c->txn->whitelisted;
}

/* A content-safety module (check.h) that whitelists do not switch off:
 * it runs at the content stages of whitelisted mail too, and no whitelist
 * forgives its refusals. */
static int protected_module(const struct conf *conf, int idx)
{
	return check_registry[idx]->content_safety && !conf->mod[idx].skip_whitelisted;
}

static int content_stage(enum stage st)
{
	return st == STAGE_HEADER || st == STAGE_EOH || st == STAGE_BODY || st == STAGE_EOM;
}

/* A whitelist (OK) beats every held verdict of its scope except those of
 * protected modules. */
static void forgive(const struct conf *conf, struct verdict *held, int *n)
{
	int k = 0;

	for (int i = 0; i < *n; i++)
		if (protected_module(conf, held[i].module))
			held[k++] = held[i];
	*n = k;
}

/* --- headers requested by modules (verdict_header) ------------------------ */

static struct add_header *add_header(struct txn *t, const char *name, const char *value, int top);

/* Keep the headers a hook asked for with the transaction; engine_eom's
 * caller adds them when the message is accepted.  Only from MAIL on (there
 * is no transaction before); at most 32 per transaction.  A header asked
 * for "once" replaces the module's earlier one of the same name. */
static void take_headers(struct conn *c, int module, const struct verdicts *out)
{
	struct txn *t = c->txn;

	if (t == NULL)
		return;
	for (int k = 0; k < out->nhdr && k < VERDICT_HDRS_MAX; k++) {
		const struct verdict_hdr *vh = &out->hdr[k];
		struct add_header *h = NULL;

		for (int i = 0; vh->once && i < t->nheaders && h == NULL; i++)
			if (t->headers[i].module == module &&
			    strcasecmp(t->headers[i].name, vh->name) == 0)
				h = &t->headers[i];
		if (h) {
			enc_header(h->value, sizeof(h->value), vh->value);
			h->top = vh->top;
		} else if (t->nheaders < 32) {
			add_header(t, vh->name, vh->value, vh->top)->module = module;
		}
	}
}

/* Keep the authentication results a hook recorded (verdict_auth), in
 * order; a method that records again for the same property and value
 * replaces its earlier result (a second MAIL of a transaction cannot
 * happen, but a module may decide at two stages). */
static void take_auth(struct conn *c, const struct verdicts *out)
{
	struct txn *t = c->txn;

	if (t == NULL)
		return;
	for (int k = 0; k < out->nauth && k < VERDICT_AUTH_MAX; k++) {
		const struct auth_result *a = &out->auth[k];
		int i;

		for (i = 0; i < t->nauth; i++)
			if (strcmp(t->auth[i].method, a->method) == 0 &&
			    strcmp(t->auth[i].prop, a->prop) == 0 &&
			    strcmp(t->auth[i].value, a->value) == 0 &&
			    strcmp(a->method, "dkim") != 0) /* one per signature */
				break;
		if (i < t->nauth)
			t->auth[i] = *a;
		else if (t->nauth < AUTH_RESULTS_MAX)
			t->auth[t->nauth++] = *a;
		else
			log_msg(LOG_LVL_WARN, "ref=%s too many authentication results; %s dropped",
			        t->ref, a->method);
	}
}

/* The one Authentication-Results header (RFC 8601) of the transaction's
 * results, inserted at the top: "AUTHSERV-ID; METHOD=RESULT [(COMMENT)]
 * [PROP=VALUE] [MORE PROPS]; ...".  None when no check recorded a result
 * to be written. */
static void add_auth_header(struct conn *c, struct txn *t)
{
	char value[ENC_HEADER_MAX + 1];
	int n = 0;

	bcopy_str(value, sizeof(value), authres_authserv_id(c->conf));
	for (int i = 0; i < t->nauth; i++) {
		const struct auth_result *a = &t->auth[i];

		if (a->noheader)
			continue;
		n++;
		bappend(value, sizeof(value), "; %s=%s", a->method, a->result);
		if (a->extra[0] == '(') /* a comment first, then the properties */
			bappend(value, sizeof(value), " %s", a->extra);
		if (a->prop[0] && a->value[0])
			bappend(value, sizeof(value), " %s=%s", a->prop, a->value);
		if (a->extra[0] && a->extra[0] != '(')
			bappend(value, sizeof(value), " %s", a->extra);
	}
	if (n > 0)
		add_header(t, "Authentication-Results", value, 1);
}

/* --- incoming headers: occurrence counting and removals ------------------ */

struct hdr_count {
	struct hdr_count *next;
	int count;
	char name[]; /* the whole name as first seen */
};

static unsigned char ascii_lower(unsigned char ch)
{
	return ch >= 'A' && ch <= 'Z' ? (unsigned char)(ch - 'A' + 'a') : ch;
}

static int ascii_caseeq(const char *a, const char *b)
{
	for (; *a && ascii_lower((unsigned char)*a) == ascii_lower((unsigned char)*b); a++, b++)
		;
	return *a == '\0' && *b == '\0';
}

/* The occurrence number (1 for the first) of header name in the message so
 * far, as smfi_chgheader() counts: names compared case-insensitively
 * (ASCII).  A hash table, so that many distinct names stay cheap; its size
 * is bounded by the MTA's own header limits. */
static int count_header(struct txn *t, const char *name)
{
	unsigned h = 2166136261u;
	struct hdr_count *e;

	for (const char *p = name; *p; p++)
		h = (h ^ ascii_lower((unsigned char)*p)) * 16777619u;
	for (e = t->hdr_seen[h % HDR_BUCKETS]; e; e = e->next)
		if (ascii_caseeq(e->name, name)) {
			if (e->count < INT_MAX)
				e->count++;
			return e->count;
		}
	e = xmalloc(sizeof(*e) + strlen(name) + 1);
	memcpy(e->name, name, strlen(name) + 1);
	e->count = 1;
	e->next = t->hdr_seen[h % HDR_BUCKETS];
	t->hdr_seen[h % HDR_BUCKETS] = e;
	return 1;
}

int engine_header_count(const struct txn *t, const char *name)
{
	unsigned h = 2166136261u;

	for (const char *p = name; *p; p++)
		h = (h ^ ascii_lower((unsigned char)*p)) * 16777619u;
	for (const struct hdr_count *e = t->hdr_seen[h % HDR_BUCKETS]; e; e = e->next)
		if (ascii_caseeq(e->name, name))
			return e->count;
	return 0;
}

static int has_8bit(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return 1;
	return 0;
}

void engine_set_smtputf8(struct conn *c)
{
	if (c->txn)
		c->txn->smtputf8 = 1;
}

/* Keep the removals a header hook asked for (only there is the index
 * meaningful).  Beyond DEL_HEADERS_MAX the message is refused at EOM. */
static void take_deletions(struct conn *c, enum stage st, const struct verdicts *out)
{
	struct txn *t = c->txn;

	if (t == NULL || st != STAGE_HEADER)
		return;
	for (int k = 0; k < out->ndel && k < VERDICT_DELS_MAX; k++) {
		if (t->ndels >= DEL_HEADERS_MAX) {
			if (!t->dels_overflow)
				log_msg(LOG_LVL_WARN,
				        "ref=%s more than %d headers to remove; "
				        "the message will be refused",
				        t->ref, DEL_HEADERS_MAX);
			t->dels_overflow = 1;
			continue;
		}
		t->dels = xrealloc(t->dels, sizeof(*t->dels) * (size_t)(t->ndels + 1));
		bcopy_str(t->dels[t->ndels].name, sizeof(t->dels[t->ndels].name), out->del[k].name);
		t->dels[t->ndels++].index = out->del[k].index;
	}
}

/* Keep the envelope changes an EOM hook of a rewrites_envelope module
 * asked for (check.h); the milter applies them when the message is
 * accepted.  A later sender change replaces an earlier one. */
static void take_envelope(struct conn *c, enum stage st, int module, const struct verdicts *out)
{
	struct txn *t = c->txn;

	if (t == NULL || st != STAGE_EOM || !check_registry[module]->rewrites_envelope)
		return;
	for (int k = 0; k < out->nenv && k < VERDICT_ENVS_MAX; k++) {
		const struct verdict_env *e = &out->env[k];
		struct env_change *x = NULL;

		for (int i = 0; !e->rcpt && i < t->nenvs && x == NULL; i++)
			if (!t->envs[i].rcpt)
				x = &t->envs[i];
		if (x == NULL) {
			if (t->nenvs >= ENV_CHANGES_MAX)
				continue;
			t->envs = xrealloc(t->envs, sizeof(*t->envs) * (size_t)(t->nenvs + 1));
			x = &t->envs[t->nenvs++];
		}
		x->rcpt = e->rcpt;
		if (e->rcpt)
			snprintf(x->old, sizeof(x->old), "<%s>", e->old);
		else
			x->old[0] = '\0';
		snprintf(x->addr, sizeof(x->addr), "<%s>", e->addr);
	}
}

/* Run the enabled modules' hooks for one stage in `checks` order and sort
 * their decisions into the stage's scope. */
static void run_stage(struct conn *c, enum stage st, struct check_ctx *cx, struct rcpt *rc,
                      struct verdict **rheld, int *nrheld)
{
	const struct conf *conf = c->conf;
	struct scope s;
	struct verdicts out;
	long long t0;
	int rewrite_only;

	/* Whitelisted mail still goes through the protected (content-safety)
	 * modules at the content stages; nothing else runs for it. */
	if (skipping(c, st) && !content_stage(st) && !auth_pass(c, st))
		return;
	t0 = metrics_now_us();
	scope_of(c, st, rc, rheld, nrheld, &s);
	/* both CLOCK_MONOTONIC: t0 / 1000 is now_ms(), one clock read less */
	cx->dns_deadline_ms = t0 / 1000 + conf->core.dns_timeout_ms;
	cx->conf = conf;
	cx->conn = c;
	cx->txn = c->txn;
	cx->rcpt = rc;
	cx->store = the_store;
	cx->dry_run = the_dry_run;
	for (int i = 0; i < conf->norder; i++) {
		int idx = conf->order[i];
		const struct check_module *m = check_registry[idx];
		const struct modconf *mc = &conf->mod[idx];

		if (mc->mode == MODE_OFF || m->hook[st] == NULL)
			continue;
		cx->skip_whitelisted = 0;
		rewrite_only = 0;
		if (m->auth_limit && auth_pass(c, st) && !(rc && rc->whitelisted)) {
			/* a limit on authenticated senders: runs */
		} else if (*s.whitelisted || skipping(c, st)) {
			if (st == STAGE_EOM && m->rewrites_envelope && !m->content_safety) {
				/* e.g. BATV signs the mail of trusted clients;
				 * its decisions are dropped below */
				rewrite_only = cx->skip_whitelisted = 1;
			} else if (!content_stage(st) || !m->content_safety) {
				continue;
			} else {
				/* opted out: it only tidies up (e.g. removes
				 * forged status headers, says NotScanned) */
				cx->skip_whitelisted = mc->skip_whitelisted;
			}
		}
		cx->mconf = mc->data;
		out.n = 0;
		out.nhdr = 0;
		out.ndel = 0;
		out.nauth = 0;
		out.nenv = 0;
		out.error[0] = out.retry_code[0] = out.retry_xcode[0] = '\0';
		out.logged_once = 0;
		int status = m->hook[st](cx, &out);

		take_headers(c, idx, &out);
		take_auth(c, &out);
		take_deletions(c, st, &out);
		take_envelope(c, st, idx, &out);
		if (rewrite_only) {
			out.n = 0;
			status = CHECK_DONE;
		}
		if (status == CHECK_RETRY) {
			char why[256];

			metrics_check_error(idx);
			enc_log(why, sizeof(why), out.error, 200);
			/* The reason may be the text of the deferral a module
			 * chose; with skip nothing is deferred, and the line must
			 * say so. */
			if (mc->on_error == ONERR_DEFER)
				log_msg(out.logged_once ? LOG_LVL_DEBUG : LOG_LVL_WARN,
				        "ref=%s %s check failed: %s (on_error=defer)",
				        check_ref(cx), m->name, why);
			else
				log_msg(out.logged_once ? LOG_LVL_DEBUG : LOG_LVL_WARN,
				        "ref=%s %s check failed, skipped (on_error=skip; with "
				        "defer the "
				        "answer would be: %s)",
				        check_ref(cx), m->name, why);
			if (mc->on_error == ONERR_DEFER && out.n < VERDICTS_MAX) {
				struct verdict *v = &out.v[out.n++];

				memset(v, 0, sizeof(*v));
				v->action = ACT_DEFER;
				v->mode = MODE_REJECT;
				snprintf(v->symbol, sizeof(v->symbol), "%s.error", m->name);
				if (out.retry_code[0]) {
					bcopy_str(v->code, sizeof(v->code), out.retry_code);
					bcopy_str(v->xcode, sizeof(v->xcode), out.retry_xcode);
					bcopy_str(v->text, sizeof(v->text), out.error);
				} else {
					bcopy_str(v->code, sizeof(v->code), "451");
					bcopy_str(v->xcode, sizeof(v->xcode), "4.3.0");
					snprintf(
					    v->text, sizeof(v->text),
					    "Temporary failure in the %s check, try again later",
					    m->name);
				}
			}
		}
		for (int k = 0; k < out.n; k++) {
			struct verdict *v = &out.v[k];
			enum mode eff = mode_min(mc->mode, v->mode);

			v->module = idx;
			v->stage = st;
			if (eff == MODE_OFF || v->action == ACT_DUNNO)
				continue;
			metrics_verdict(idx, v->action, eff);
			if (eff == MODE_MONITOR) {
				add_note(s.notes, s.nnotes, v, 1);
				continue;
			}
			add_note(s.notes, s.nnotes, v, 0);
			switch (v->action) {
			case ACT_OK:
				/* Whitelists beat everything held in this scope but
				 * the refusals of content-safety checks. */
				*s.whitelisted = 1;
				forgive(conf, *s.held, s.nheld);
				c->helo_whitelisted |= st == STAGE_HELO;
				break;
			case ACT_SCORE:
				*s.score += v->score;
				if (st >= STAGE_HEADER)
					c->txn->content_score += v->score;
				break;
			case ACT_DEFER:
			case ACT_REJECT:
				if (eff == MODE_DEFER)
					soften(v);
				hold(s.held, s.nheld, v);
				cx->rcpt_refused |= st == STAGE_RCPT;
				break;
			default: break;
			}
			if (*s.whitelisted)
				break;
		}
	}
	metrics_stage(st, metrics_now_us() - t0);
}

/* The strongest of held verdicts with stage in [lo, hi]: reject beats defer,
 * earlier beats later.  NULL if none. */
static const struct verdict *strongest(const struct verdict *held, int n, enum stage lo,
                                       enum stage hi, const struct verdict *best)
{
	for (int i = 0; i < n; i++) {
		const struct verdict *v = &held[i];

		if (v->stage < lo || v->stage > hi)
			continue;
		if (best == NULL || (v->action == ACT_REJECT && best->action != ACT_REJECT))
			best = v;
	}
	return best;
}

/* Compose the reply for a reject or defer: "TEXT (ref ID); contact C".
 * The suffix always fits: a long TEXT is cut instead (contact is at most
 * 200 printable characters, checked by conf_finish). */
static void make_reply(const struct conn *c, const struct verdict *v, struct reply *r)
{
	char suffix[300];
	size_t room;

	r->action = v->action == ACT_REJECT ? REPLY_REJECT : REPLY_TEMPFAIL;
	bcopy_str(r->code, sizeof(r->code),
	          v->code[0]                ? v->code
	          : v->action == ACT_REJECT ? "550"
	                                    : "451");
	bcopy_str(r->xcode, sizeof(r->xcode),
	          v->xcode[0]               ? v->xcode
	          : v->action == ACT_REJECT ? "5.7.1"
	                                    : "4.7.1");
	snprintf(suffix, sizeof(suffix), " (ref %s); contact %s", c->txn ? c->txn->ref : "-",
	         c->conf->contact);
	room = ENC_REPLY_MAX - strlen(suffix);
	enc_reply(r->text, room + 1 < sizeof(r->text) ? room + 1 : sizeof(r->text), v->text);
	bappend(r->text, sizeof(r->text), "%s", suffix);
}

static void reply_continue(struct reply *r)
{
	memset(r, 0, sizeof(*r));
	r->action = REPLY_CONTINUE;
}

/* Score thresholds: fills *v and returns it when a threshold is reached. */
static const struct verdict *score_verdict(const struct conf *conf, double score, struct verdict *v)
{
	const struct core_conf *core = &conf->core;

	memset(v, 0, sizeof(*v));
	if (core->score_reject > 0 && score >= core->score_reject) {
		v->action = ACT_REJECT;
		bcopy_str(v->code, sizeof(v->code), "550");
		bcopy_str(v->xcode, sizeof(v->xcode), "5.7.1");
		bcopy_str(v->symbol, sizeof(v->symbol), "score.reject");
	} else if (core->score_defer > 0 && score >= core->score_defer) {
		v->action = ACT_DEFER;
		bcopy_str(v->code, sizeof(v->code), "451");
		bcopy_str(v->xcode, sizeof(v->xcode), "4.7.1");
		bcopy_str(v->symbol, sizeof(v->symbol), "score.defer");
	} else {
		return NULL;
	}
	snprintf(v->text, sizeof(v->text), "Message scored %.1f, threshold %.1f", score,
	         v->action == ACT_REJECT ? core->score_reject : core->score_defer);
	return v;
}

/* --- log line ------------------------------------------------------------ */

/* Text being appended to a NUL-terminated buffer without printf: each
 * piece is cut at the end of the buffer exactly as bappend() cuts it, so
 * the lines are the same, byte for byte, only cheaper to make (the
 * transaction's line is made for every message). */
struct sbuf {
	char *p;
	size_t len, size;
};

static struct sbuf sb_at(char *dst, size_t size)
{
	struct sbuf b = { dst, strnlen(dst, size), size };

	return b;
}

static void sb_mem(struct sbuf *b, const char *s, size_t n)
{
	if (b->len + 1 >= b->size)
		return;
	if (n > b->size - 1 - b->len)
		n = b->size - 1 - b->len;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_put(struct sbuf *b, const char *s)
{
	sb_mem(b, s, strlen(s));
}

/* A non-negative whole number in decimal, as "%lld" writes it. */
static void sb_num(struct sbuf *b, long long v)
{
	char d[24];
	int i = sizeof(d);

	if (v < 0) {
		char tmp[32];

		snprintf(tmp, sizeof(tmp), "%lld", v);
		sb_put(b, tmp);
		return;
	}
	do
		d[--i] = (char)('0' + v % 10);
	while ((v /= 10) > 0);
	sb_mem(b, d + i, sizeof(d) - (size_t)i);
}

/* A score as "%.1f" writes it; 0, the score of most mail, without printf. */
static void sb_score(struct sbuf *b, double score)
{
	char num[400]; /* any double */

	if (score == 0 && !signbit(score)) {
		sb_put(b, "0.0");
		return;
	}
	snprintf(num, sizeof(num), "%.1f", score);
	sb_put(b, num);
}

static void notes_append(char *dst, size_t dstsize, const struct note *notes, int n, int monitor,
                         int *first)
{
	struct sbuf b = sb_at(dst, dstsize);
	char num[64];

	for (int i = 0; i < n; i++) {
		if (notes[i].monitor != monitor)
			continue;
		if (!*first)
			sb_put(&b, ",");
		sb_put(&b, notes[i].symbol);
		if (notes[i].action == ACT_SCORE) {
			snprintf(num, sizeof(num), "(%g)", notes[i].score);
			sb_put(&b, num);
		}
		*first = 0;
	}
}

/* " to=<a>,<b>" (accepted) or " refused=<c>:reject:SYMBOL,..." at most
 * LOG_RCPTS_MAX each, so that the line keeps its verdict and timing. */
#define LOG_RCPTS_MAX 20
static void rcpts_append(struct sbuf *line, const struct txn *t, int accepted)
{
	char buf[300];
	int n = 0;

	for (const struct rcpt *rc = t->rcpts; rc; rc = rc->next) {
		if ((rc->outcome == RCPT_ACCEPTED) != accepted)
			continue;
		if (++n > LOG_RCPTS_MAX)
			continue;
		sb_put(line, n == 1 ? (accepted ? " to=<" : " refused=<") : ",<");
		sb_put(line, enc_log(buf, sizeof(buf), rc->addr.full, 100));
		sb_put(line, ">");
		if (!accepted) {
			sb_put(line, rc->outcome == RCPT_REJECTED ? ":reject:" : ":defer:");
			sb_put(line, rc->symbol);
		}
	}
	if (n > LOG_RCPTS_MAX) {
		snprintf(buf, sizeof(buf), ",(+%d more)", n - LOG_RCPTS_MAX);
		sb_put(line, buf);
	}
}

static const char *const stage_names[STAGE_COUNT] = {
	"connect", "helo", "mail", "rcpt", "header", "eoh", "body", "eom",
};

static void ref_symbols(char *v, size_t size, const struct note *notes, int n)
{
	char buf[100];

	for (int i = 0; i < n; i++)
		if (!notes[i].monitor)
			bappend(v, size, "symbol=%s %s\n",
			        enc_log(buf, sizeof(buf), notes[i].symbol, 60),
			        stage_names[notes[i].stage]);
}

/* Keep what portcullisctl explain needs about a refused transaction
 * (lib/refs.h).  Never fatal: a store error is logged and mail goes on. */
static void save_ref(const struct conn *c, const struct txn *t, const char *verdict)
{
	const struct reply *r = &t->last_refusal;
	char *v, buf[600];
	size_t size = REFS_VALUE_MAX;
	struct sbuf b;
	int n = 0;

	if (the_store == NULL || the_dry_run || r->action == REPLY_CONTINUE ||
	    c->conf->core.ref_keep <= 0)
		return;
	v = xmalloc(size);
	v[0] = '\0';
	b = sb_at(v, size);
	sb_put(&b, "time=");
	sb_num(&b, (long long)clock_now());
	sb_put(&b, "\nclient_addr=");
	sb_put(&b, c->client_addr);
	sb_put(&b, "\nclient_name=");
	sb_put(&b, enc_log(buf, sizeof(buf), c->client_name, 255));
	sb_put(&b, "\nhelo=");
	sb_put(&b, enc_log(buf, sizeof(buf), c->helo, 255));
	sb_put(&b, "\nfrom=");
	sb_put(&b, enc_log(buf, sizeof(buf), t->sender.full, 300));
	sb_put(&b, "\n");
	if (t->auth_authen[0]) {
		sb_put(&b, "auth=");
		sb_put(&b, enc_log(buf, sizeof(buf), t->auth_authen, 100));
		sb_put(&b, "\n");
	}
	for (const struct rcpt *rc = t->rcpts; rc && n < 50; rc = rc->next, n++) {
		sb_put(&b, "rcpt=");
		sb_put(&b, enc_log(buf, sizeof(buf), rc->addr.full, 300));
		sb_put(&b, rc->outcome == RCPT_ACCEPTED   ? " accept "
		           : rc->outcome == RCPT_REJECTED ? " reject "
		                                          : " defer ");
		sb_put(&b, rc->outcome == RCPT_ACCEPTED ? "-" : rc->symbol);
		sb_put(&b, "\n");
	}
	sb_put(&b, "verdict=");
	sb_put(&b, verdict);
	sb_put(&b, "\n");
	ref_symbols(v, size, c->notes, c->nnotes);
	ref_symbols(v, size, t->notes, t->nnotes);
	b = sb_at(v, size);
	sb_put(&b, "reply=");
	sb_put(&b, r->code);
	sb_put(&b, " ");
	sb_put(&b, r->xcode);
	sb_put(&b, " ");
	sb_put(&b, enc_log(buf, sizeof(buf), r->text, 500));
	sb_put(&b, "\n");
	if (store_put(the_store, REFS_NS, t->ref, strlen(t->ref), v, strlen(v),
	              clock_now() + c->conf->core.ref_keep, STORE_NORMAL) < 0) {
		enum store_err e = store_last_error();

		/* a full or read-only file system is logged by the store, once
		 * per event: not again for every refused transaction */
		if (e != STORE_ERR_NOSPACE && e != STORE_ERR_ROFS && e != STORE_ERR_RDONLY &&
		    e != STORE_ERR_DOWN)
			log_msg(LOG_LVL_WARN, "ref=%s not kept for explain: %s", t->ref,
			        store_strerror(e));
	}
	free(v);
}

static void log_txn(struct conn *c, const char *verdict)
{
	struct txn *t = c->txn;
	char line[4096], buf[600];
	struct sbuf b = { line, 0, sizeof(line) };
	int first;

	if (t == NULL || t->logged)
		return;
	t->logged = 1;
	metrics_txn(verdict, c->score + t->score);
	line[0] = '\0';
	sb_put(&b, "ref=");
	sb_put(&b, t->ref);
	if (t->queue_id[0]) {
		sb_put(&b, " qid=");
		sb_put(&b, enc_log(buf, sizeof(buf), t->queue_id, 40));
	}
	sb_put(&b, " client=");
	sb_put(&b, enc_log(buf, sizeof(buf), c->client_name, 100));
	sb_put(&b, "[");
	sb_put(&b, c->client_addr[0] ? c->client_addr : "unknown");
	sb_put(&b, "] helo=<");
	sb_put(&b, enc_log(buf, sizeof(buf), c->helo, 100));
	sb_put(&b, "> from=<");
	sb_put(&b, enc_log(buf, sizeof(buf), t->sender.full, 100));
	sb_put(&b, ">");
	if (t->auth_authen[0]) {
		sb_put(&b, " auth=");
		sb_put(&b, enc_log(buf, sizeof(buf), t->auth_authen, 60));
	}
	rcpts_append(&b, t, 1);
	rcpts_append(&b, t, 0);
	sb_put(&b, " verdict=");
	sb_put(&b, verdict);
	sb_put(&b, " score=");
	sb_score(&b, c->score + t->score);
	first = 1;
	buf[0] = '\0';
	notes_append(buf, sizeof(buf), c->notes, c->nnotes, 0, &first);
	notes_append(buf, sizeof(buf), t->notes, t->nnotes, 0, &first);
	if (buf[0]) {
		sb_put(&b, " symbols=");
		sb_put(&b, buf);
	}
	first = 1;
	buf[0] = '\0';
	notes_append(buf, sizeof(buf), c->notes, c->nnotes, 1, &first);
	notes_append(buf, sizeof(buf), t->notes, t->nnotes, 1, &first);
	if (buf[0]) {
		sb_put(&b, " monitor=");
		sb_put(&b, buf);
	}
	sb_put(&b, " ms=");
	sb_num(&b, now_ms() - t->start_ms);
	log_str(LOG_LVL_INFO, line);
	save_ref(c, t, verdict);
}

/* --- connection and transaction lifetime ---------------------------------- */

struct conn *engine_conn_new(struct conf *conf)
{
	struct conn *c = xcalloc(1, sizeof(*c));

	c->conf = conf_ref(conf);
	engine_make_ref(c->ref);
	bcopy_str(c->client_name, sizeof(c->client_name), "unknown");
	bcopy_str(c->our_name, sizeof(c->our_name), conf->hostname);
	return c;
}

static void txn_free(struct txn *t)
{
	struct rcpt *rc, *next;

	if (t == NULL)
		return;
	atomic_fetch_sub(&open_txns, 1);
	for (rc = t->rcpts; rc; rc = next) {
		next = rc->next;
		free(rc);
	}
	free(t->held);
	free(t->notes);
	free(t->headers);
	free(t->dels);
	free(t->envs);
	message_free(t->msg);
	for (int b = 0; b < HDR_BUCKETS; b++)
		for (struct hdr_count *e = t->hdr_seen[b], *enext; e; e = enext) {
			enext = e->next;
			free(e);
		}
	free(t);
}

/* The message's outcome for the log line when it ended without EOM. */
static const char *aborted_verdict(const struct txn *t)
{
	int rejected = 0, deferred = 0;

	if (t->naccepted > 0)
		return "aborted";
	for (const struct rcpt *rc = t->rcpts; rc; rc = rc->next) {
		rejected += rc->outcome == RCPT_REJECTED;
		deferred += rc->outcome == RCPT_DEFERRED;
	}
	if (rejected)
		return "reject";
	return deferred ? "defer" : "none";
}

void engine_abort(struct conn *c)
{
	if (c->txn == NULL)
		return;
	log_txn(c, aborted_verdict(c->txn));
	txn_free(c->txn);
	c->txn = NULL;
}

void engine_txn_end(struct conn *c, const struct reply *eom)
{
	if (c->txn == NULL)
		return;
	log_txn(c, eom->action == REPLY_REJECT     ? "reject"
	           : eom->action == REPLY_TEMPFAIL ? "defer"
	                                           : "accept");
	txn_free(c->txn);
	c->txn = NULL;
}

void engine_conn_free(struct conn *c)
{
	if (c == NULL)
		return;
	engine_abort(c);
	if (c->ntxn == 0 && c->nheld > 0) {
		char name[300], helo[300];

		log_msg(LOG_LVL_INFO,
		        "ref=%s client=%s[%s] helo=<%s> verdict=none held=%s "
		        "(disconnected before MAIL)",
		        c->ref, enc_log(name, sizeof(name), c->client_name, 100),
		        c->client_addr[0] ? c->client_addr : "unknown",
		        enc_log(helo, sizeof(helo), c->helo, 100), c->held[0].symbol);
	}
	free(c->held);
	free(c->notes);
	conf_unref(c->conf);
	free(c);
}

void engine_set_macros(struct conn *c, const char *our_name, const char *daemon_name,
                       const char *if_addr)
{
	if (our_name && *our_name)
		bcopy_str(c->our_name, sizeof(c->our_name), our_name);
	if (daemon_name)
		bcopy_str(c->daemon_name, sizeof(c->daemon_name), daemon_name);
	if (if_addr)
		bcopy_str(c->if_addr, sizeof(c->if_addr), if_addr);
}

void engine_set_queue_id(struct conn *c, const char *qid)
{
	if (c->txn && qid && *qid)
		bcopy_str(c->txn->queue_id, sizeof(c->txn->queue_id), qid);
}

/* Mark the current transaction as authenticated (and whitelisted). */
static void apply_auth(struct conn *c)
{
	struct txn *t = c->txn;
	struct verdict v = { .action = ACT_OK, .symbol = "auth", .stage = STAGE_MAIL };

	bcopy_str(t->auth_authen, sizeof(t->auth_authen), c->auth_authen);
	if (c->conf->core.auth_whitelist && !t->whitelisted && !c->whitelisted) {
		t->whitelisted = t->auth_whitelisted = 1;
		forgive(c->conf, t->held, &t->nheld);
		add_note(&t->notes, &t->nnotes, &v, 0);
	}
}

void engine_set_auth(struct conn *c, const char *authen)
{
	if (authen == NULL || *authen == '\0')
		return;
	bcopy_str(c->auth_authen, sizeof(c->auth_authen), authen);
	if (c->txn)
		apply_auth(c);
}

unsigned engine_stages_needed(const struct conf *conf)
{
	unsigned need = 1u << STAGE_CONNECT | 1u << STAGE_HELO | 1u << STAGE_MAIL |
	                1u << STAGE_RCPT | 1u << STAGE_EOM;

	for (int i = 0; i < conf->norder; i++) {
		const struct check_module *m = check_registry[conf->order[i]];

		if (conf->mod[conf->order[i]].mode == MODE_OFF)
			continue;
		for (int st = 0; st < STAGE_COUNT; st++)
			if (m->hook[st])
				need |= 1u << st;
		if (m->needs_message)
			need |= 1u << STAGE_HEADER | 1u << STAGE_EOH | 1u << STAGE_BODY;
	}
	return need;
}

int engine_envelope_changes(const struct conf *conf)
{
	for (int i = 0; i < conf->norder; i++)
		if (check_registry[conf->order[i]]->rewrites_envelope &&
		    conf->mod[conf->order[i]].mode != MODE_OFF)
			return 1;
	return 0;
}

/* Whether an enabled module reads the whole message at end of DATA; for
 * whitelisted mail, only the protected (content-safety) ones count. */
static int message_needed(const struct conf *conf, int whitelisted)
{
	for (int i = 0; i < conf->norder; i++) {
		int idx = conf->order[i];

		if (check_registry[idx]->needs_message && conf->mod[idx].mode != MODE_OFF &&
		    (!whitelisted || protected_module(conf, idx)))
			return 1;
	}
	return 0;
}

/* --- stages -------------------------------------------------------------- */

/* Is the client in network net/len?  A local client without an address
 * counts as the loopback (127.0.0.1 and ::1). */
static int client_in_net(const struct conn *c, const struct ipaddr *net, int len)
{
	struct ipaddr lo;

	if (c->client_ip.family)
		return ip_in_net(&c->client_ip, net, len);
	if (!c->local)
		return 0;
	return (ip_parse("127.0.0.1", &lo) == 0 && ip_in_net(&lo, net, len)) ||
	       (ip_parse("::1", &lo) == 0 && ip_in_net(&lo, net, len));
}

void engine_connect(struct conn *c, const char *hostname, const char *addr, struct reply *r)
{
	struct check_ctx cx = { 0 };
	const struct netlist *trusted = &c->conf->core.trusted_networks;

	reply_continue(r);
	if (hostname && *hostname && hostname[0] != '[')
		bcopy_str(c->client_name, sizeof(c->client_name), hostname);
	if (addr && *addr && ip_parse(addr, &c->client_ip) == 0)
		ip_format(&c->client_ip, c->client_addr, sizeof(c->client_addr));
	else if (hostname && strcasecmp(hostname, "localhost") == 0)
		c->local = 1; /* Sendmail's "sendmail -bs" run by a local process */
	for (int i = 0; i < trusted->n; i++)
		if (client_in_net(c, &trusted->v[i].ip, trusted->v[i].len)) {
			struct verdict v = { .action = ACT_OK, .symbol = "trusted_networks" };

			c->trusted = c->whitelisted = 1;
			add_note(&c->notes, &c->nnotes, &v, 0);
			break;
		}
	run_stage(c, STAGE_CONNECT, &cx, NULL, NULL, NULL);
}

/* Drop what an earlier HELO of this connection decided (a client sends EHLO
 * again after STARTTLS; the new name is the one that counts). */
static void forget_helo(struct conn *c)
{
	int k = 0;

	for (int i = 0; i < c->nheld; i++)
		if (c->held[i].stage != STAGE_HELO)
			c->held[k++] = c->held[i];
	c->nheld = k;
	k = 0;
	for (int i = 0; i < c->nnotes; i++) {
		const struct note *x = &c->notes[i];

		if (x->stage != STAGE_HELO)
			c->notes[k++] = *x;
		else if (x->action == ACT_SCORE && !x->monitor)
			c->score -= x->score;
	}
	c->nnotes = k;
	/* A whitelist the old name earned goes with it. */
	if (c->helo_whitelisted && !c->trusted)
		c->whitelisted = 0;
	c->helo_whitelisted = 0;
}

void engine_helo(struct conn *c, const char *helo, struct reply *r)
{
	struct check_ctx cx = { 0 };

	reply_continue(r);
	if (c->helo_seen)
		forget_helo(c);
	c->helo_seen = 1;
	c->helo_truncated =
	    bcopy_str(c->helo, sizeof(c->helo), helo ? helo : "") >= sizeof(c->helo);
	run_stage(c, STAGE_HELO, &cx, NULL, NULL, NULL);
}

void engine_mail(struct conn *c, const char *from, struct reply *r)
{
	struct check_ctx cx = { 0 };
	struct txn *t;

	reply_continue(r);
	engine_abort(c); /* a transaction the MTA did not end */
	/* Zeroed up to the authentication results, which are most of its
	 * 12 KB and are only read below nauth (take_auth, dmarc): clearing
	 * them all cost more than the rest of an envelope transaction. */
	t = xmalloc(sizeof(*t));
	memset(t, 0, offsetof(struct txn, auth));
	t->nauth = 0;
	atomic_fetch_add(&open_txns, 1);
	/* the first transaction takes the ref its connect/HELO lines have */
	if (c->ntxn == 0)
		bcopy_str(t->ref, sizeof(t->ref), c->ref);
	else
		engine_make_ref(t->ref);
	t->start_ms = now_ms();
	addr_parse(from ? from : "<>", &t->sender);
	c->txn = t;
	c->ntxn++;
	if (c->auth_authen[0])
		apply_auth(c);
	run_stage(c, STAGE_MAIL, &cx, NULL, NULL, NULL);
	if (message_needed(c->conf, skipping(c, STAGE_EOM)))
		t->msg = message_new((size_t)c->conf->core.content_memory_size,
		                     (size_t)c->conf->core.content_max_size);
}

void engine_rcpt(struct conn *c, const char *to, struct reply *r)
{
	struct check_ctx cx = { 0 };
	struct verdict *rheld = NULL, sv;
	const struct verdict *best = NULL;
	int nrheld = 0;
	struct rcpt *rc;
	struct txn *t;

	reply_continue(r);
	if (c->txn == NULL)
		engine_mail(c, "<>", r);
	t = c->txn;
	rc = xcalloc(1, sizeof(*rc));
	addr_parse(to ? to : "", &rc->addr);
	if (t->last_rcpt)
		t->last_rcpt->next = rc;
	else
		t->rcpts = rc;
	t->last_rcpt = rc;
	t->nrcpt++;

	if (addr_is_postmaster(&rc->addr))
		rc->whitelisted = 1;
	else
		run_stage(c, STAGE_RCPT, &cx, rc, &rheld, &nrheld);

	if (!rc->whitelisted && !skipping(c, STAGE_RCPT)) {
		/* Earlier stages first: the reply names the first reason. */
		best = strongest(c->held, c->nheld, STAGE_CONNECT, STAGE_HELO, NULL);
		best = strongest(t->held, t->nheld, STAGE_MAIL, STAGE_MAIL, best);
		best = strongest(rheld, nrheld, STAGE_RCPT, STAGE_RCPT, best);
		if (best == NULL)
			best = score_verdict(c->conf, c->score + t->score + rc->score, &sv);
	} else if (!rc->whitelisted && auth_pass(c, STAGE_RCPT)) {
		/* only the auth_limit modules ran for this transaction */
		best = strongest(t->held, t->nheld, STAGE_MAIL, STAGE_MAIL, NULL);
		best = strongest(rheld, nrheld, STAGE_RCPT, STAGE_RCPT, best);
	}
	if (best) {
		make_reply(c, best, r);
		t->last_refusal = *r;
		rc->outcome = r->action == REPLY_REJECT ? RCPT_REJECTED : RCPT_DEFERRED;
		bcopy_str(rc->symbol, sizeof(rc->symbol), best->symbol);
	} else {
		rc->outcome = RCPT_ACCEPTED;
		t->naccepted++;
	}
	free(rheld);
}

void engine_header(struct conn *c, const char *name, const char *value, struct reply *r)
{
	struct check_ctx cx = { 0 };

	reply_continue(r);
	if (c->txn == NULL)
		return;
	c->txn->nhdr++;
	cx.hdr_name = name ? name : "";
	cx.hdr_value = value ? value : "";
	cx.hdr_index = count_header(c->txn, cx.hdr_name);
	/* a fact for the headers check: raw 8-bit text in a field */
	if (has_8bit(cx.hdr_name) || has_8bit(cx.hdr_value))
		c->txn->hdr_8bit++;
	if (c->txn->msg)
		message_header(c->txn->msg, cx.hdr_name, cx.hdr_value);
	run_stage(c, STAGE_HEADER, &cx, NULL, NULL, NULL);
}

void engine_eoh(struct conn *c, struct reply *r)
{
	struct check_ctx cx = { 0 };

	reply_continue(r);
	if (c->txn && c->txn->msg)
		message_eoh(c->txn->msg);
	if (c->txn)
		run_stage(c, STAGE_EOH, &cx, NULL, NULL, NULL);
}

void engine_body(struct conn *c, const unsigned char *buf, size_t len, struct reply *r)
{
	struct check_ctx cx = { 0 };

	reply_continue(r);
	if (c->txn == NULL)
		return;
	c->txn->body_bytes += len;
	if (c->txn->msg)
		message_body(c->txn->msg, buf, len);
	cx.body = buf;
	cx.body_len = len;
	run_stage(c, STAGE_BODY, &cx, NULL, NULL, NULL);
}

static int all_rcpts_whitelisted(const struct txn *t)
{
	for (const struct rcpt *rc = t->rcpts; rc; rc = rc->next)
		if (rc->outcome == RCPT_ACCEPTED && !rc->whitelisted)
			return 0;
	return t->naccepted > 0;
}

static struct add_header *add_header(struct txn *t, const char *name, const char *value, int top)
{
	struct add_header *h;

	t->headers = xrealloc(t->headers, sizeof(*t->headers) * (size_t)(t->nheaders + 1));
	h = &t->headers[t->nheaders++];
	bcopy_str(h->name, sizeof(h->name), name);
	enc_header(h->value, sizeof(h->value), value);
	h->top = top;
	h->module = -1;
	return h;
}

/* A message over content.max_size is not given to the content checks: log
 * it, and refuse it with 552 5.3.4 (RFC 3463: message too big for policy)
 * when content.oversize says so. */
static void oversize(struct conn *c, struct txn *t)
{
	struct verdict v = { .action = ACT_REJECT, .mode = MODE_REJECT, .stage = STAGE_EOM };
	enum mode m = c->conf->core.content_oversize;

	log_msg(LOG_LVL_INFO,
	        "ref=%s message of %llu bytes is over content.max_size (%ld): "
	        "not scanned",
	        t->ref, t->msg->total, c->conf->core.content_max_size);
	if (m == MODE_OFF || skipping(c, STAGE_EOM))
		return;
	bcopy_str(v.symbol, sizeof(v.symbol), "content.oversize");
	bcopy_str(v.code, sizeof(v.code), "552");
	bcopy_str(v.xcode, sizeof(v.xcode), "5.3.4");
	snprintf(v.text, sizeof(v.text), "Message too big to be checked here (limit %ld bytes)",
	         c->conf->core.content_max_size);
	add_note(&t->notes, &t->nnotes, &v, m == MODE_MONITOR);
	if (m == MODE_MONITOR)
		return;
	if (m == MODE_DEFER)
		soften(&v);
	hold(&t->held, &t->nheld, &v);
}

void engine_eom(struct conn *c, struct reply *r)
{
	struct check_ctx cx = { 0 };
	const struct core_conf *core = &c->conf->core;
	const struct verdict *best = NULL;
	struct verdict sv;
	struct txn *t;
	double score;
	char name[96], value[1024];
	int first = 1;

	reply_continue(r);
	if (c->txn == NULL)
		return;
	t = c->txn;
	if (t->msg && t->msg->oversize)
		oversize(c, t);
	cx.msg = t->msg && !t->msg->oversize ? t->msg : NULL;
	run_stage(c, STAGE_EOM, &cx, NULL, NULL, NULL);
	/* The envelope score was already weighed at RCPT; when it was
	 * forgiven for every accepted recipient (postmaster@, a recipient
	 * whitelist), only the content may still refuse the message. */
	score = all_rcpts_whitelisted(t) ? t->content_score : c->score + t->score;
	if (!skipping(c, STAGE_EOM)) {
		best = strongest(t->held, t->nheld, STAGE_HEADER, STAGE_EOM, NULL);
		if (best == NULL && t->dels_overflow) {
			/* Refused rather than delivered with a forgery kept. */
			memset(&sv, 0, sizeof(sv));
			sv.action = ACT_REJECT;
			sv.stage = STAGE_EOM;
			bcopy_str(sv.code, sizeof(sv.code), "550");
			bcopy_str(sv.xcode, sizeof(sv.xcode), "5.7.1");
			bcopy_str(sv.symbol, sizeof(sv.symbol), "headers.too_many_removals");
			snprintf(sv.text, sizeof(sv.text),
			         "Message has more than %d headers that must be removed",
			         DEL_HEADERS_MAX);
			add_note(&t->notes, &t->nnotes, &sv, 0);
			best = &sv;
		}
		if (best == NULL)
			best = score_verdict(c->conf, score, &sv);
	} else {
		/* Whitelisted: only the protected checks' refusals are left. */
		best = strongest(t->held, t->nheld, STAGE_HEADER, STAGE_EOM, NULL);
	}
	if (best) {
		make_reply(c, best, r);
		t->last_refusal = *r;
		return;
	}
	add_auth_header(c, t);
	value[0] = '\0';
	notes_append(value, sizeof(value), c->notes, c->nnotes, 1, &first);
	notes_append(value, sizeof(value), t->notes, t->nnotes, 1, &first);
	if (value[0]) {
		snprintf(name, sizeof(name), "%s-Monitor", core->header_prefix);
		bappend(value, sizeof(value), " (ref %s)", t->ref);
		add_header(t, name, value, 0);
	}
	if (core->score_tag > 0 && score >= core->score_tag && !skipping(c, STAGE_EOM)) {
		snprintf(name, sizeof(name), "%s-Status", core->header_prefix);
		snprintf(value, sizeof(value), "Yes, score=%.1f tag=%.1f", score, core->score_tag);
		first = 1;
		bappend(value, sizeof(value), " symbols=");
		notes_append(value, sizeof(value), c->notes, c->nnotes, 0, &first);
		notes_append(value, sizeof(value), t->notes, t->nnotes, 0, &first);
		bappend(value, sizeof(value), " (ref %s)", t->ref);
		add_header(t, name, value, 0);
	}
}
