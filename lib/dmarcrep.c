/* lib/dmarcrep.c - DMARC aggregate-report data; see dmarcrep.h.
 *
 * Record key (text): "HOUR|POLICY_DOMAIN|FROM|IP|DISP|DKIM_AL|SPF_AL|
 * ENVELOPE|SPF|DKIM_D|DKIM_RES|DKIM_SEL" (HOUR = seconds / 3600; no field
 * can hold '|': domains, addresses, selectors and words are validated);
 * value (text): "COUNT P SP ADKIM ASPF PCT".
 */
#include "dmarcrep.h"
#include "store.h"
#include "util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NFIELDS 12

static pthread_mutex_t rec_lock = PTHREAD_MUTEX_INITIALIZER;

static int row_key(char *key, size_t size, long long hour, const struct dmarcrep_row *r)
{
	int n = snprintf(key, size, "%lld|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s", hour, r->policy_domain,
	                 r->header_from, r->ip, r->disposition, r->dkim_aligned, r->spf_aligned,
	                 r->envelope_from, r->spf_result, r->dkim_domain, r->dkim_result,
	                 r->dkim_selector);

	return n > 0 && (size_t)n < size ? n : -1;
}

int dmarcrep_record(struct store *st, time_t now, long keep, const struct dmarcrep_row *r)
{
	long long hour = (long long)now / 3600;
	char key[2048], val[128];
	size_t len = 0;
	long count = 0;
	int klen = row_key(key, sizeof(key), hour, r), rc;

	if (klen < 0 || strchr(key, '\n'))
		return -1;
	pthread_mutex_lock(&rec_lock);
	rc = store_get(st, DMARCREP_NS, key, (size_t)klen, val, sizeof(val) - 1, &len, NULL);
	if (rc == 1) {
		val[len] = '\0';
		count = strtol(val, NULL, 10);
	}
	if (rc >= 0) {
		int n = snprintf(val, sizeof(val), "%ld %c %c %c %c %d", count + 1,
		                 r->p ? r->p : 'n', r->sp ? r->sp : 'n', r->adkim ? r->adkim : 'r',
		                 r->aspf ? r->aspf : 'r', r->pct);

		rc = store_put(st, DMARCREP_NS, key, (size_t)klen, val, (size_t)n,
		               (time_t)((hour + 1) * 3600 + keep), STORE_NORMAL);
	}
	pthread_mutex_unlock(&rec_lock);
	return rc < 0 ? -1 : 0;
}

/* --- the report ------------------------------------------------------------ */

struct agg {
	struct dmarcrep_row r;
	long count;
	long long hour;
};

struct walk {
	const char *domain;
	long long from_hour, to_hour;
	struct agg *v;
	int n;
	long total;
	struct dmarcrep_row latest; /* policy_published: the newest record's */
	long long latest_hour;
};

static void field(char *dst, size_t size, const char *s, size_t n)
{
	if (n >= size)
		n = size - 1;
	memcpy(dst, s, n);
	dst[n] = '\0';
}

static int walk_fn(const void *key, size_t keylen, const void *val, size_t vallen, time_t expires,
                   void *arg)
{
	struct walk *w = arg;
	const char *f[NFIELDS + 1], *k = key;
	size_t fl[NFIELDS];
	char v[128], p, sp, adkim, aspf;
	struct dmarcrep_row r;
	long long hour;
	long count;
	int nf = 0, pct;

	(void)expires;
	f[0] = k;
	for (size_t i = 0; i <= keylen && nf < NFIELDS; i++)
		if (i == keylen || k[i] == '|') {
			fl[nf] = (size_t)(k + i - f[nf]);
			nf++;
			f[nf] = k + i + 1;
		}
	if (nf != NFIELDS || vallen >= sizeof(v))
		return 0; /* not ours: skip */
	memcpy(v, val, vallen);
	v[vallen] = '\0';
	if (sscanf(v, "%ld %c %c %c %c %d", &count, &p, &sp, &adkim, &aspf, &pct) != 6)
		return 0;
	hour = strtoll(f[0], NULL, 10);
	if (hour < w->from_hour || hour > w->to_hour || fl[1] != strlen(w->domain) ||
	    strncasecmp(f[1], w->domain, fl[1]) != 0)
		return 0;
	memset(&r, 0, sizeof(r));
	field(r.policy_domain, sizeof(r.policy_domain), f[1], fl[1]);
	field(r.header_from, sizeof(r.header_from), f[2], fl[2]);
	field(r.ip, sizeof(r.ip), f[3], fl[3]);
	field(r.disposition, sizeof(r.disposition), f[4], fl[4]);
	field(r.dkim_aligned, sizeof(r.dkim_aligned), f[5], fl[5]);
	field(r.spf_aligned, sizeof(r.spf_aligned), f[6], fl[6]);
	field(r.envelope_from, sizeof(r.envelope_from), f[7], fl[7]);
	field(r.spf_result, sizeof(r.spf_result), f[8], fl[8]);
	field(r.dkim_domain, sizeof(r.dkim_domain), f[9], fl[9]);
	field(r.dkim_result, sizeof(r.dkim_result), f[10], fl[10]);
	field(r.dkim_selector, sizeof(r.dkim_selector), f[11], fl[11]);
	r.p = p;
	r.sp = sp;
	r.adkim = adkim;
	r.aspf = aspf;
	r.pct = pct;
	if (hour >= w->latest_hour) {
		w->latest = r;
		w->latest_hour = hour;
	}
	w->total += count;
	/* the same outcome in another hour: one row */
	for (int i = 0; i < w->n; i++) {
		struct dmarcrep_row *a = &w->v[i].r;

		if (!strcmp(a->header_from, r.header_from) && !strcmp(a->ip, r.ip) &&
		    !strcmp(a->disposition, r.disposition) &&
		    !strcmp(a->dkim_aligned, r.dkim_aligned) &&
		    !strcmp(a->spf_aligned, r.spf_aligned) &&
		    !strcmp(a->envelope_from, r.envelope_from) &&
		    !strcmp(a->spf_result, r.spf_result) &&
		    !strcmp(a->dkim_domain, r.dkim_domain) &&
		    !strcmp(a->dkim_result, r.dkim_result) &&
		    !strcmp(a->dkim_selector, r.dkim_selector)) {
			w->v[i].count += count;
			return 0;
		}
	}
	w->v = xrealloc(w->v, sizeof(*w->v) * (size_t)(w->n + 1));
	w->v[w->n].r = r;
	w->v[w->n].count = count;
	w->v[w->n].hour = hour;
	w->n++;
	return 0;
}

/* Text for an XML element: & < > " ' escaped. */
static void xml(FILE *out, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': fputs("&amp;", out); break;
		case '<': fputs("&lt;", out); break;
		case '>': fputs("&gt;", out); break;
		case '"': fputs("&quot;", out); break;
		case '\'': fputs("&apos;", out); break;
		default:
			if ((unsigned char)*s >= 0x20 && (unsigned char)*s < 0x7f)
				fputc(*s, out);
		}
	}
}

static void el(FILE *out, int indent, const char *name, const char *value)
{
	fprintf(out, "%*s<%s>", indent, "", name);
	xml(out, value);
	fprintf(out, "</%s>\n", name);
}

static const char *pname(char p)
{
	return p == 'r' ? "reject" : p == 'q' ? "quarantine" : "none";
}

long dmarcrep_report(struct store *st, const char *domain, time_t since, time_t now,
                     const char *org, const char *email, FILE *out)
{
	struct walk w = { .domain = domain,
		          .from_hour = (long long)since / 3600,
		          .to_hour = (long long)now / 3600,
		          .latest_hour = -1 };
	char id[400], num[32];

	if (store_traverse(st, DMARCREP_NS, walk_fn, &w) < 0) {
		free(w.v);
		return -1;
	}
	snprintf(id, sizeof(id), "%s.%lld.%lld", domain, (long long)since, (long long)now);
	fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n", out);
	fputs("  <version>1.0</version>\n  <report_metadata>\n", out);
	el(out, 4, "org_name", org);
	el(out, 4, "email", email);
	el(out, 4, "report_id", id);
	fputs("    <date_range>\n", out);
	fprintf(out, "      <begin>%lld</begin>\n      <end>%lld</end>\n", (long long)since,
	        (long long)now);
	fputs("    </date_range>\n  </report_metadata>\n  <policy_published>\n", out);
	el(out, 4, "domain", domain);
	if (w.latest_hour >= 0) {
		el(out, 4, "adkim", w.latest.adkim == 's' ? "s" : "r");
		el(out, 4, "aspf", w.latest.aspf == 's' ? "s" : "r");
		el(out, 4, "p", pname(w.latest.p));
		el(out, 4, "sp", pname(w.latest.sp));
		snprintf(num, sizeof(num), "%d", w.latest.pct);
		el(out, 4, "pct", num);
	}
	fputs("  </policy_published>\n", out);
	for (int i = 0; i < w.n; i++) {
		const struct dmarcrep_row *r = &w.v[i].r;

		fputs("  <record>\n    <row>\n", out);
		el(out, 6, "source_ip", r->ip);
		snprintf(num, sizeof(num), "%ld", w.v[i].count);
		el(out, 6, "count", num);
		fputs("      <policy_evaluated>\n", out);
		el(out, 8, "disposition", r->disposition);
		el(out, 8, "dkim", r->dkim_aligned);
		el(out, 8, "spf", r->spf_aligned);
		fputs("      </policy_evaluated>\n    </row>\n    <identifiers>\n", out);
		el(out, 6, "header_from", r->header_from);
		if (r->envelope_from[0])
			el(out, 6, "envelope_from", r->envelope_from);
		fputs("    </identifiers>\n    <auth_results>\n", out);
		if (r->dkim_domain[0]) {
			fputs("      <dkim>\n", out);
			el(out, 8, "domain", r->dkim_domain);
			if (r->dkim_selector[0])
				el(out, 8, "selector", r->dkim_selector);
			el(out, 8, "result", r->dkim_result);
			fputs("      </dkim>\n", out);
		}
		fputs("      <spf>\n", out);
		el(out, 8, "domain", r->envelope_from[0] ? r->envelope_from : r->header_from);
		el(out, 8, "scope", "mfrom");
		el(out, 8, "result", r->spf_result);
		fputs("      </spf>\n    </auth_results>\n  </record>\n", out);
	}
	fputs("</feedback>\n", out);
	free(w.v);
	return w.total;
}
