/* lib/check.c - the verdict calls check modules use to state decisions
 *
 * A hook may state several decisions (e.g. two HELO sub-checks in different
 * modes); beyond VERDICTS_MAX the rest are dropped with a warning, which
 * never turns a reject into an accept for the stage: the first ones kept
 * are the ones the module found first.
 */
#include "check.h"
#include "engine.h"
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

const char *check_ref(const struct check_ctx *cx)
{
	return cx->txn ? cx->txn->ref : cx->conn ? cx->conn->ref : "-";
}

int check_dns_timeout(const struct check_ctx *cx)
{
	long long left = cx->dns_deadline_ms - now_ms();

	return left > 0 ? (int)left : 0;
}

int check_find(const char *name)
{
	for (int i = 0; i < check_registry_count; i++)
		if (strcmp(check_registry[i]->name, name) == 0)
			return i;
	return -1;
}

static struct verdict *verdict_new(struct verdicts *out, enum action a, enum mode mode,
                                   const char *symbol)
{
	struct verdict *v;

	if (out->n >= VERDICTS_MAX) {
		log_msg(LOG_LVL_WARN, "too many verdicts in one stage; dropped %s", symbol);
		return NULL;
	}
	v = &out->v[out->n++];
	memset(v, 0, sizeof(*v));
	v->action = a;
	v->mode = mode;
	bcopy_str(v->symbol, sizeof(v->symbol), symbol);
	return v;
}

void verdict_ok(struct verdicts *out, const char *symbol)
{
	verdict_new(out, ACT_OK, MODE_REJECT, symbol);
}

void verdict_score(struct verdicts *out, enum mode mode, const char *symbol, double score,
                   const char *fmt, ...)
{
	struct verdict *v = verdict_new(out, ACT_SCORE, mode, symbol);
	va_list ap;

	if (v == NULL)
		return;
	v->score = score;
	va_start(ap, fmt);
	vsnprintf(v->text, sizeof(v->text), fmt, ap);
	va_end(ap);
}

static void verdict_fail(struct verdicts *out, enum action a, enum mode mode, const char *symbol,
                         const char *code, const char *xcode, const char *fmt, va_list ap)
{
	struct verdict *v = verdict_new(out, a, mode, symbol);

	if (v == NULL)
		return;
	bcopy_str(v->code, sizeof(v->code), code);
	bcopy_str(v->xcode, sizeof(v->xcode), xcode);
	vsnprintf(v->text, sizeof(v->text), fmt, ap);
}

void verdict_reject(struct verdicts *out, enum mode mode, const char *symbol, const char *code,
                    const char *xcode, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verdict_fail(out, ACT_REJECT, mode, symbol, code, xcode, fmt, ap);
	va_end(ap);
}

void verdict_defer(struct verdicts *out, enum mode mode, const char *symbol, const char *code,
                   const char *xcode, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verdict_fail(out, ACT_DEFER, mode, symbol, code, xcode, fmt, ap);
	va_end(ap);
}

static void header_v(struct verdicts *out, const char *name, int top, int once, const char *fmt,
                     va_list ap)
{
	struct verdict_hdr *h;

	if (out->nhdr < 0 || out->nhdr >= VERDICT_HDRS_MAX) {
		log_msg(LOG_LVL_WARN, "too many headers in one stage; dropped %s", name);
		return;
	}
	h = &out->hdr[out->nhdr++];
	bcopy_str(h->name, sizeof(h->name), name);
	h->top = top;
	h->once = once;
	vsnprintf(h->value, sizeof(h->value), fmt, ap);
}

void verdict_header(struct verdicts *out, const char *name, int top, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	header_v(out, name, top, 0, fmt, ap);
	va_end(ap);
}

void verdict_header_once(struct verdicts *out, const char *name, int top, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	header_v(out, name, top, 1, fmt, ap);
	va_end(ap);
}

void verdict_delete_header(struct verdicts *out, const char *name, int index)
{
	struct verdict_del *d;

	if (index < 1 || name == NULL || strlen(name) >= sizeof(d->name))
		return;
	if (out->ndel < 0 || out->ndel >= VERDICT_DELS_MAX) {
		log_msg(LOG_LVL_WARN, "too many header deletions in one stage; dropped %s", name);
		return;
	}
	d = &out->del[out->ndel++];
	bcopy_str(d->name, sizeof(d->name), name);
	d->index = index;
}

void verdict_auth(struct verdicts *out, const char *method, const char *result, const char *prop,
                  const char *value, const char *extra_fmt, ...)
{
	struct auth_result *a;
	va_list ap;

	if (out->nauth < 0 || out->nauth >= VERDICT_AUTH_MAX) {
		log_msg(LOG_LVL_WARN, "too many authentication results in one stage; dropped %s",
		        method);
		return;
	}
	a = &out->auth[out->nauth++];
	a->noheader = 0;
	bcopy_str(a->method, sizeof(a->method), method);
	bcopy_str(a->result, sizeof(a->result), result);
	bcopy_str(a->prop, sizeof(a->prop), prop ? prop : "");
	bcopy_str(a->value, sizeof(a->value), value ? value : "");
	va_start(ap, extra_fmt);
	vsnprintf(a->extra, sizeof(a->extra), extra_fmt, ap);
	va_end(ap);
}

static void env_request(struct verdicts *out, int rcpt, const char *old, const char *addr)
{
	struct verdict_env *e;

	if (out->nenv < 0 || out->nenv >= VERDICT_ENVS_MAX) {
		log_msg(LOG_LVL_WARN, "too many envelope changes in one stage; dropped one");
		return;
	}
	/* A cut address would name someone else: refuse it whole. */
	if (strlen(addr) >= VERDICT_ADDR_MAX - 2 || (old && strlen(old) >= VERDICT_ADDR_MAX - 2))
		return;
	e = &out->env[out->nenv++];
	e->rcpt = rcpt;
	bcopy_str(e->old, sizeof(e->old), old ? old : "");
	bcopy_str(e->addr, sizeof(e->addr), addr);
}

void verdict_change_sender(struct verdicts *out, const char *addr)
{
	env_request(out, 0, NULL, addr);
}

void verdict_replace_rcpt(struct verdicts *out, const char *old, const char *addr)
{
	env_request(out, 1, old, addr);
}

int check_retry(struct verdicts *out, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(out->error, sizeof(out->error), fmt, ap);
	va_end(ap);
	out->retry_code[0] = out->retry_xcode[0] = '\0';
	return CHECK_RETRY;
}

int check_retry_reply(struct verdicts *out, const char *code, const char *xcode, const char *fmt,
                      ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(out->error, sizeof(out->error), fmt, ap);
	va_end(ap);
	bcopy_str(out->retry_code, sizeof(out->retry_code), code);
	bcopy_str(out->retry_xcode, sizeof(out->retry_xcode), xcode);
	return CHECK_RETRY;
}
