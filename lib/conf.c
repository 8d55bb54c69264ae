/* lib/conf.c - configuration parsing, snapshots, -n/-d dumps
 *
 * See conf.h for the file format and the snapshot contract.  Values are
 * parsed by one function per type (set_value), used alike for the built-in
 * defaults and for the file, so a default can never be something the file
 * could not say.  Errors are written as "FILE:LINE: KEY: reason"; a failed
 * load frees everything it built and leaves the running snapshot alone.
 */
#include "conf.h"
#include "check.h"
#include "dns.h"
#include "log.h"
#include "metrics_http.h"
#include "store.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define CORE(field) offsetof(struct core_conf, field)

/* The core parameters.  Keep in step with portcullis.conf(5): a test checks
 * that every key printed by `portcullis -d` is documented there. */
const struct conf_param core_params[] = {
	{ "checks", "whitelist, access, helo, envelope", CONF_LIST, CORE(checks), 0, 0,
	  "check modules to run, in this order" },
	{ "socket", "unix:/run/portcullis/portcullis.sock", CONF_STR, CORE(socket), 0, 0,
	  "milter socket: unix:PATH, inet:PORT@HOST or inet6:PORT@HOST" },
	{ "socket_mode", "0660", CONF_OCTAL, CORE(socket_mode), 0, 0777,
	  "permissions of a unix socket" },
	{ "socket_group", "", CONF_STR, CORE(socket_group), 0, 0,
	  "group of a unix socket (e.g. postfix); empty: unchanged" },
	{ "user", "", CONF_STR, CORE(user), 0, 0,
	  "drop privileges to this user after opening the socket (given to it); empty: stay" },
	{ "pidfile", "", CONF_STR, CORE(pidfile), 0, 0,
	  "write the daemon's process id here; empty: none" },
	{ "state_dir", "/var/lib/portcullis", CONF_STR, CORE(state_dir), 0, 0,
	  "directory of the state databases (greylist, whitelist, refs); must exist" },
	{ "store.backend", "tdb", CONF_STR, CORE(store_backend), 0, 0,
	  "where the greylist, auto-whitelist, whitelist and refs are kept: tdb (files in "
	  "state_dir, one host) or redis (shared by several MX hosts); changed by a restart" },
	{ "store.redis", "unix:/run/redis/redis-server.sock", CONF_STR, CORE(store_redis), 0, 0,
	  "the Redis server: unix:PATH, HOST:PORT or sentinel:MASTER@HOST:PORT[,HOST:PORT...]" },
	{ "store.redis_db", "0", CONF_INT, CORE(store_redis_db), 0, 65535,
	  "Redis database number (SELECT)" },
	{ "store.redis_password_file", "", CONF_STR, CORE(store_redis_password_file), 0, 0,
	  "file whose first line is the Redis password (AUTH), readable by the daemon only; "
	  "empty: no AUTH" },
	{ "store.redis_prefix", "portcullis:", CONF_STR, CORE(store_redis_prefix), 0, 0,
	  "prefix of every Redis key (several portcullis groups on one Redis)" },
	{ "store.timeout_ms", "1000", CONF_INT, CORE(store_timeout_ms), 10, 60000,
	  "time a Redis connect or command may take (ms)" },
	{ "ref_keep", "7d", CONF_TIME, CORE(ref_keep), 0, 366 * 86400,
	  "how long the details of a refused transaction are kept for portcullisctl explain "
	  "(0: not kept)" },
	{ "ref_max", "50000", CONF_INT, CORE(ref_max), 0, 100000000,
	  "at most about this many refused transactions are kept (refs.tdb); beyond, the oldest "
	  "go first (0: no cap)" },
	{ "hostname", "", CONF_STR, CORE(hostname), 0, 0,
	  "this host's name for headers and HELO checks; empty: gethostname()" },
	{ "contact", "", CONF_STR, CORE(contact), 0, 0,
	  "contact named in every reject text; empty: postmaster@HOSTNAME" },
	{ "log_target", "syslog", CONF_STR, CORE(log_target), 0, 0,
	  "where to log: syslog or stderr" },
	{ "log_facility", "mail", CONF_STR, CORE(log_facility), 0, 0, "syslog facility" },
	{ "debug", "no", CONF_BOOL, CORE(debug), 0, 0, "log debug messages" },
	{ "milter_timeout", "7210s", CONF_TIME, CORE(milter_timeout), 1, 86400,
	  "libmilter I/O timeout towards the MTA; also closes a connection idle this long "
	  "(libmilter looks every 10 minutes)" },
	{ "trusted_networks", "127.0.0.0/8, ::1/128", CONF_NETS, CORE(trusted_networks), 0, 0,
	  "clients that skip all checks (like Postfix mynetworks)" },
	{ "auth_whitelist", "yes", CONF_BOOL, CORE(auth_whitelist), 0, 0,
	  "SMTP-authenticated clients skip all checks" },
	{ "score.reject", "10", CONF_SCORE, CORE(score_reject), 0, 1000,
	  "reject when the score reaches this (0: never)" },
	{ "score.defer", "0", CONF_SCORE, CORE(score_defer), 0, 1000,
	  "defer when the score reaches this (0: never)" },
	{ "score.tag", "5", CONF_SCORE, CORE(score_tag), 0, 1000,
	  "add the spam status header when the score reaches this (0: never)" },
	{ "header_prefix", "X-Portcullis", CONF_STR, CORE(header_prefix), 0, 0,
	  "prefix of the headers portcullis adds (-Status, -Monitor)" },
	{ "dns.resolver", "", CONF_STR, CORE(dns_resolver), 0, 0,
	  "DNS server as ADDRESS[:PORT] or [IPv6]:PORT; empty: /etc/resolv.conf" },
	{ "dns.timeout_ms", "5000", CONF_INT, CORE(dns_timeout_ms), 50, 60000,
	  "time the DNS checks of one SMTP stage may wait together (ms)" },
	{ "dns.cache_size", "10000", CONF_INT, CORE(dns_cache_size), 0, 10000000,
	  "DNS answers kept in the cache (0: no cache)" },
	{ "dns.ttl_max", "1h", CONF_TIME, CORE(dns_ttl_max), 0, 604800,
	  "longest time a positive DNS answer is cached" },
	{ "dns.neg_ttl_max", "15m", CONF_TIME, CORE(dns_neg_ttl_max), 0, 86400,
	  "longest time a 'does not exist' answer is cached" },
	{ "metrics.listen", "", CONF_STR, CORE(metrics_listen), 0, 0,
	  "Prometheus metrics on http://ADDRESS:PORT/metrics, e.g. 127.0.0.1:9187; empty: off" },
	{ "metrics.allow_remote", "no", CONF_BOOL, CORE(metrics_allow_remote), 0, 0,
	  "let metrics.listen be a non-loopback address (nothing authenticates a scraper)" },
	{ "metrics.store_interval", "1m", CONF_TIME, CORE(metrics_store_interval), 0, 86400,
	  "recount the store's entries for the metrics at most this often" },
	{ "content.max_size", "26214400", CONF_INT, CORE(content_max_size), 1024, 2147483647,
	  "bytes of a message kept for the content checks; a larger one is not scanned" },
	{ "content.memory_size", "1048576", CONF_INT, CORE(content_memory_size), 0, 2147483647,
	  "bytes of a message kept in memory, the rest in an anonymous memory file" },
	{ "content.oversize", "off", CONF_MODE, CORE(content_oversize), 0, 0,
	  "message over content.max_size: off passes it unscanned, reject answers 552 5.3.4" },
	CONF_END
};

void conf_store_params(const struct conf *c, struct store_params *p)
{
	memset(p, 0, sizeof(*p));
	p->backend = strcmp(c->core.store_backend, "redis") == 0 ? STORE_REDIS : STORE_TDB;
	p->dir = c->core.state_dir;
	p->redis = c->core.store_redis;
	p->redis_db = c->core.store_redis_db;
	p->password_file = c->core.store_redis_password_file;
	p->prefix = c->core.store_redis_prefix;
	p->timeout_ms = c->core.store_timeout_ms;
}

/* The two automatic parameters of every module, stored in struct modconf. */
static const struct conf_param mod_auto_params[] = {
	{ ".mode", NULL, CONF_MODE, offsetof(struct modconf, mode), 0, 0,
	  "what the check does when it fires: reject, defer, monitor or off" },
	{ ".on_error", NULL, CONF_ONERR, offsetof(struct modconf, on_error), 0, 0,
	  "when the check cannot decide (DNS timeout...): defer or skip" },
	/* only for content-safety modules (check_module.content_safety) */
	{ ".skip_whitelisted", "no", CONF_BOOL, offsetof(struct modconf, skip_whitelisted), 0, 0,
	  "yes: whitelisted, trusted and authenticated mail skips this content-safety check" },
};

/* The automatic parameter j of module m: the table row with the module's
 * defaults, or NULL when m does not have it. */
static int auto_param(const struct check_module *m, size_t j, struct conf_param *tmp)
{
	if (j == 2 && !m->content_safety)
		return 0;
	*tmp = mod_auto_params[j];
	if (j == 0)
		tmp->def = m->default_mode;
	else if (j == 1)
		tmp->def = m->default_on_error;
	return 1;
}

static const char *const mode_names[] = { "off", "monitor", "defer", "reject" };
static const char *const onerr_names[] = { "defer", "skip" };

const char *mode_name(enum mode m)
{
	return mode_names[m];
}

/* Where a key was set in the file: for -n and for errors found later. */
struct keyline {
	char *key;
	int line;
};

struct conf_priv {
	struct keyline *set;
	int nset;
};

/* --- value parsing, one function per type ------------------------------- */

static int parse_list(const char *val, struct strlist *out)
{
	char *copy = xstrdup(val), *save = NULL;

	out->n = 0;
	out->v = NULL;
	for (char *tok = strtok_r(copy, ", \t\n", &save); tok;
	     tok = strtok_r(NULL, ", \t\n", &save)) {
		out->v = xrealloc(out->v, sizeof(*out->v) * (size_t)(out->n + 1));
		out->v[out->n++] = xstrdup(tok);
	}
	free(copy);
	return 0;
}

static void free_list(struct strlist *l)
{
	for (int i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static void free_maps(struct maplist *m)
{
	for (int i = 0; i < m->n; i++)
		table_free(m->t[i]);
	free(m->t);
	m->t = NULL;
	m->n = 0;
}

static int parse_time(const char *val, long *out)
{
	char *end;
	long mult = 1;
	long v;

	errno = 0;
	v = strtol(val, &end, 10);
	if (end == val || errno || v < 0)
		return -1;
	switch (tolower((unsigned char)*end)) {
	case '\0':
	case 's': mult = 1; break;
	case 'm': mult = 60; break;
	case 'h': mult = 3600; break;
	case 'd': mult = 86400; break;
	case 'w': mult = 604800; break;
	default: return -1;
	}
	if (*end && end[1])
		return -1;
	if (v > LONG_MAX / mult)
		return -1;
	*out = v * mult;
	return 0;
}

static int word_index(const char *val, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (strcasecmp(val, names[i]) == 0)
			return i;
	return -1;
}

/* Parse val as p's type into base+p->off, freeing a previous value.
 * Returns 0, or -1 with the reason (without file/line/key) in err. */
static int set_value(void *base, const struct conf_param *p, const char *val, char *err,
                     size_t errsize)
{
	void *slot = (char *)base + p->off;
	char *end;

	switch (p->type) {
	case CONF_STR:
		free(*(char **)slot);
		*(char **)slot = xstrdup(val);
		return 0;
	case CONF_INT:
	case CONF_OCTAL: {
		long v;

		errno = 0;
		v = strtol(val, &end, p->type == CONF_OCTAL ? 8 : 10);
		if (end == val || *end || errno) {
			snprintf(err, errsize, "invalid %snumber '%.60s'",
			         p->type == CONF_OCTAL ? "octal " : "", val);
			return -1;
		}
		if ((p->min || p->max) && (v < p->min || v > p->max)) {
			if (p->type == CONF_OCTAL)
				snprintf(err, errsize, "0%lo out of range 0%lo..0%lo", v,
				         (long)p->min, (long)p->max);
			else
				snprintf(err, errsize, "%ld out of range %.0f..%.0f", v, p->min,
				         p->max);
			return -1;
		}
		*(long *)slot = v;
		return 0;
	}
	case CONF_TIME: {
		long v;

		if (parse_time(val, &v) < 0) {
			snprintf(err, errsize,
			         "invalid time '%.60s' (a number with s, m, h, d or w)", val);
			return -1;
		}
		if ((p->min || p->max) && (v < p->min || v > p->max)) {
			snprintf(err, errsize, "%lds out of range %.0fs..%.0fs", v, p->min, p->max);
			return -1;
		}
		*(long *)slot = v;
		return 0;
	}
	case CONF_SCORE: {
		double v;

		errno = 0;
		v = strtod(val, &end);
		if (end == val || *end || errno || !isfinite(v)) {
			snprintf(err, errsize, "invalid number '%.60s'", val);
			return -1;
		}
		if ((p->min || p->max) && (v < p->min || v > p->max)) {
			snprintf(err, errsize, "%g out of range %g..%g", v, p->min, p->max);
			return -1;
		}
		*(double *)slot = v;
		return 0;
	}
	case CONF_BOOL: {
		static const char *const yes[] = { "yes", "true", "on", "1" };
		static const char *const no[] = { "no", "false", "off", "0" };

		if (word_index(val, yes, 4) >= 0)
			*(int *)slot = 1;
		else if (word_index(val, no, 4) >= 0)
			*(int *)slot = 0;
		else {
			snprintf(err, errsize, "invalid boolean '%.60s' (yes or no)", val);
			return -1;
		}
		return 0;
	}
	case CONF_MODE: {
		int i = word_index(val, mode_names, 4);

		if (i < 0) {
			snprintf(err, errsize,
			         "invalid mode '%.60s' (reject, defer, monitor or off)", val);
			return -1;
		}
		*(enum mode *)slot = (enum mode)i;
		return 0;
	}
	case CONF_ONERR: {
		int i = word_index(val, onerr_names, 2);

		if (i < 0) {
			snprintf(err, errsize, "invalid on_error '%.60s' (defer or skip)", val);
			return -1;
		}
		*(enum on_error *)slot = (enum on_error)i;
		return 0;
	}
	case CONF_LIST: free_list(slot); return parse_list(val, slot);
	case CONF_NETS: {
		struct strlist l;
		struct netlist nl = { 0, NULL };

		parse_list(val, &l);
		nl.v = xcalloc((size_t)l.n + 1, sizeof(*nl.v));
		for (int i = 0; i < l.n; i++) {
			char orig[128];
			char *s = l.v[i];
			size_t len = strlen(s);

			bcopy_str(orig, sizeof(orig), s);
			/* Accept Postfix's [::1]/128 spelling as well. */
			if (s[0] == '[') {
				char *close = strchr(s, ']');

				if (close) {
					memmove(close, close + 1, strlen(close + 1) + 1);
					memmove(s, s + 1, len);
				}
			}
			if (ip_parse_cidr(s, &nl.v[i].ip, &nl.v[i].len) < 0) {
				snprintf(err, errsize, "invalid network '%.60s'", orig);
				free(nl.v);
				free_list(&l);
				return -1;
			}
			nl.n++;
		}
		free_list(&l);
		free(((struct netlist *)slot)->v);
		*(struct netlist *)slot = nl;
		return 0;
	}
	case CONF_MAPS: {
		struct strlist l;
		struct maplist m = { 0, NULL };

		parse_list(val, &l);
		m.t = xcalloc((size_t)l.n + 1, sizeof(*m.t));
		for (int i = 0; i < l.n; i++) {
			m.t[i] = table_open(l.v[i], err, errsize);
			if (m.t[i] == NULL) {
				free_maps(&m);
				free_list(&l);
				return -1;
			}
			m.n++;
		}
		free_list(&l);
		free_maps(slot);
		*(struct maplist *)slot = m;
		return 0;
	}
	}
	snprintf(err, errsize, "internal error: unknown type");
	return -1;
}

static void free_value(void *base, const struct conf_param *p)
{
	void *slot = (char *)base + p->off;

	switch (p->type) {
	case CONF_STR:
		free(*(char **)slot);
		*(char **)slot = NULL;
		break;
	case CONF_LIST: free_list(slot); break;
	case CONF_NETS:
		free(((struct netlist *)slot)->v);
		((struct netlist *)slot)->v = NULL;
		((struct netlist *)slot)->n = 0;
		break;
	case CONF_MAPS: free_maps(slot); break;
	default: break;
	}
}

/* Format a value back to the file syntax (for -n/-d). */
static void format_value(const void *base, const struct conf_param *p, char *dst, size_t dstsize)
{
	const void *slot = (const char *)base + p->off;

	dst[0] = '\0';
	switch (p->type) {
	case CONF_STR:
		bcopy_str(dst, dstsize, *(char *const *)slot ? *(char *const *)slot : "");
		break;
	case CONF_INT: snprintf(dst, dstsize, "%ld", *(const long *)slot); break;
	case CONF_OCTAL: snprintf(dst, dstsize, "0%lo", *(const long *)slot); break;
	case CONF_TIME: {
		long v = *(const long *)slot;

		if (v && v % 86400 == 0)
			snprintf(dst, dstsize, "%ldd", v / 86400);
		else if (v && v % 3600 == 0)
			snprintf(dst, dstsize, "%ldh", v / 3600);
		else if (v && v % 60 == 0)
			snprintf(dst, dstsize, "%ldm", v / 60);
		else
			snprintf(dst, dstsize, "%lds", v);
		break;
	}
	case CONF_SCORE: snprintf(dst, dstsize, "%g", *(const double *)slot); break;
	case CONF_BOOL: bcopy_str(dst, dstsize, *(const int *)slot ? "yes" : "no"); break;
	case CONF_MODE: bcopy_str(dst, dstsize, mode_names[*(const enum mode *)slot]); break;
	case CONF_ONERR: bcopy_str(dst, dstsize, onerr_names[*(const enum on_error *)slot]); break;
	case CONF_LIST: {
		const struct strlist *l = slot;

		for (int i = 0; i < l->n; i++)
			bappend(dst, dstsize, "%s%s", i ? ", " : "", l->v[i]);
		break;
	}
	case CONF_NETS: {
		const struct netlist *l = slot;

		for (int i = 0; i < l->n; i++) {
			char ip[64];

			ip_format(&l->v[i].ip, ip, sizeof(ip));
			bappend(dst, dstsize, "%s%s/%d", i ? ", " : "", ip, l->v[i].len);
		}
		break;
	}
	case CONF_MAPS: {
		const struct maplist *m = slot;

		for (int i = 0; i < m->n; i++)
			bappend(dst, dstsize, "%s%s", i ? ", " : "", table_spec(m->t[i]));
		break;
	}
	}
}

/* --- parameter lookup ---------------------------------------------------- */

/* Find key; sets *base to the struct holding its value in c. */
static const struct conf_param *find_param(struct conf *c, const char *key, void **base,
                                           struct conf_param *tmp)
{
	const char *dot;
	char modname[64];
	int idx;

	for (const struct conf_param *p = core_params; p->key; p++)
		if (strcmp(p->key, key) == 0) {
			*base = &c->core;
			return p;
		}
	dot = strchr(key, '.');
	if (dot == NULL || (size_t)(dot - key) >= sizeof(modname))
		return NULL;
	memcpy(modname, key, (size_t)(dot - key));
	modname[dot - key] = '\0';
	idx = check_find(modname);
	if (idx < 0)
		return NULL;
	for (size_t i = 0; i < ARRAY_SIZE(mod_auto_params); i++)
		if (strcmp(dot, mod_auto_params[i].key) == 0 &&
		    auto_param(check_registry[idx], i, tmp)) {
			tmp->key = key;
			*base = &c->mod[idx];
			return tmp;
		}
	for (const struct conf_param *p = check_registry[idx]->params; p && p->key; p++)
		if (strcmp(p->key, key) == 0) {
			*base = c->mod[idx].data;
			return p;
		}
	return NULL;
}

void conf_foreach_param(void (*fn)(const struct conf_param *p, void *arg), void *arg)
{
	for (const struct conf_param *p = core_params; p->key; p++)
		fn(p, arg);
	for (int i = 0; i < check_registry_count; i++) {
		const struct check_module *m = check_registry[i];

		for (size_t j = 0; j < ARRAY_SIZE(mod_auto_params); j++) {
			struct conf_param tmp;
			char key[96];

			if (!auto_param(m, j, &tmp))
				continue;
			snprintf(key, sizeof(key), "%s%s", m->name, tmp.key);
			tmp.key = key;
			fn(&tmp, arg);
		}
		for (const struct conf_param *p = m->params; p && p->key; p++)
			fn(p, arg);
	}
}

/* --- snapshots ----------------------------------------------------------- */

static void set_default(const struct conf_param *p, void *arg)
{
	struct conf *c = arg;
	struct conf_param tmp;
	void *base;
	const struct conf_param *q = find_param(c, p->key, &base, &tmp);
	char err[256];

	if (q == NULL || set_value(base, q, q->def ? q->def : "", err, sizeof(err)) < 0)
		log_msg(LOG_LVL_ERR, "internal error: default of %s: %s", p->key,
		        q ? err : "not found");
}

static struct conf *conf_new(void)
{
	struct conf *c = xcalloc(1, sizeof(*c));

	c->refs = 1;
	c->mod = xcalloc((size_t)check_registry_count, sizeof(*c->mod));
	for (int i = 0; i < check_registry_count; i++)
		c->mod[i].data =
		    xcalloc(1, check_registry[i]->conf_size ? check_registry[i]->conf_size : 1);
	c->priv = xcalloc(1, sizeof(struct conf_priv));
	conf_foreach_param(set_default, c);
	return c;
}

static void free_param(const struct conf_param *p, void *arg)
{
	struct conf *c = arg;
	struct conf_param tmp;
	void *base;
	const struct conf_param *q = find_param(c, p->key, &base, &tmp);

	if (q)
		free_value(base, q);
}

static void conf_free(struct conf *c)
{
	struct conf_priv *priv = c->priv;

	for (int i = 0; i < c->norder; i++) {
		const struct check_module *m = check_registry[c->order[i]];

		if (m->fini)
			m->fini(c->mod[c->order[i]].data);
	}
	conf_foreach_param(free_param, c);
	for (int i = 0; i < check_registry_count; i++)
		free(c->mod[i].data);
	free(c->mod);
	free(c->order);
	dns_free(c->dns);
	for (int i = 0; i < priv->nset; i++)
		free(priv->set[i].key);
	free(priv->set);
	free(priv);
	free(c->path);
	free(c);
}

static void remember_line(struct conf *c, const char *key, int line)
{
	struct conf_priv *priv = c->priv;

	for (int i = 0; i < priv->nset; i++)
		if (strcmp(priv->set[i].key, key) == 0) {
			priv->set[i].line = line;
			return;
		}
	priv->set = xrealloc(priv->set, sizeof(*priv->set) * (size_t)(priv->nset + 1));
	priv->set[priv->nset].key = xstrdup(key);
	priv->set[priv->nset].line = line;
	priv->nset++;
}

static int line_of(const struct conf *c, const char *key)
{
	const struct conf_priv *priv = c->priv;

	for (int i = 0; i < priv->nset; i++)
		if (strcmp(priv->set[i].key, key) == 0)
			return priv->set[i].line;
	return 0;
}

int conf_set(struct conf *c, const char *key, const char *value, char *err, size_t errsize)
{
	struct conf_param tmp;
	void *base;
	const struct conf_param *p = find_param(c, key, &base, &tmp);
	char why[512];

	if (p == NULL) {
		snprintf(err, errsize, "unknown parameter '%.80s'", key);
		return -1;
	}
	if (set_value(base, p, value, why, sizeof(why)) < 0) {
		snprintf(err, errsize, "%s: %s", key, why);
		return -1;
	}
	return 0;
}

/* Prefix err with "FILE:LINE: " when the key it starts with was set in the
 * file, or "FILE: " otherwise. */
static void locate_error(const struct conf *c, const char *key, char *err, size_t errsize)
{
	char buf[1024];
	int line = key ? line_of(c, key) : 0;

	if (line)
		snprintf(buf, sizeof(buf), "%s:%d: %s", c->path, line, err);
	else
		snprintf(buf, sizeof(buf), "%s: %s", c->path, err);
	bcopy_str(err, errsize, buf);
}

int conf_finish(struct conf *c, char *err, size_t errsize)
{
	const struct core_conf *core = &c->core;

	if (strcmp(core->log_target, "syslog") && strcmp(core->log_target, "stderr")) {
		snprintf(err, errsize, "log_target: invalid value '%.60s' (syslog or stderr)",
		         core->log_target);
		locate_error(c, "log_target", err, errsize);
		return -1;
	}
	if (log_facility(core->log_facility) < 0) {
		snprintf(err, errsize, "log_facility: unknown facility '%.60s'",
		         core->log_facility);
		locate_error(c, "log_facility", err, errsize);
		return -1;
	}
	if (strncmp(core->socket, "unix:", 5) && strncmp(core->socket, "local:", 6) &&
	    strncmp(core->socket, "inet:", 5) && strncmp(core->socket, "inet6:", 6) &&
	    core->socket[0] != '/') {
		snprintf(err, errsize,
		         "socket: invalid '%.80s' (unix:PATH, inet:PORT@HOST or inet6:PORT@HOST)",
		         core->socket);
		locate_error(c, "socket", err, errsize);
		return -1;
	}
	if (strcmp(core->store_backend, "tdb") && strcmp(core->store_backend, "redis")) {
		snprintf(err, errsize, "store.backend: invalid value '%.60s' (tdb or redis)",
		         core->store_backend);
		locate_error(c, "store.backend", err, errsize);
		return -1;
	}
	if (!strcmp(core->store_backend, "redis") && core->store_redis[0] == '\0') {
		snprintf(err, errsize, "store.redis: empty, but store.backend is redis");
		locate_error(c, "store.redis", err, errsize);
		return -1;
	}
	if (core->metrics_listen[0]) {
		struct sockaddr_storage sa;
		socklen_t salen;

		if (metrics_listen_parse(core->metrics_listen, core->metrics_allow_remote, &sa,
		                         &salen, err, errsize) < 0) {
			locate_error(c, "metrics.listen", err, errsize);
			return -1;
		}
	}
	if (core->hostname[0])
		bcopy_str(c->hostname, sizeof(c->hostname), core->hostname);
	else if (gethostname(c->hostname, sizeof(c->hostname) - 1) < 0)
		bcopy_str(c->hostname, sizeof(c->hostname), "localhost");
	for (const char *p = core->contact; *p; p++)
		if (*p < 0x20 || *p >= 0x7f || *p == '%' || p - core->contact >= 200) {
			snprintf(err, errsize,
			         "contact: must be at most 200 printable ASCII "
			         "characters without '%%'");
			locate_error(c, "contact", err, errsize);
			return -1;
		}
	if (core->contact[0])
		bcopy_str(c->contact, sizeof(c->contact), core->contact);
	else
		snprintf(c->contact, sizeof(c->contact), "postmaster@%.200s", c->hostname);

	{
		char why[512];

		dns_free(c->dns);
		c->dns = dns_new(core->dns_resolver, why, sizeof(why));
		if (c->dns == NULL) {
			snprintf(err, errsize, "dns.resolver: %s", why);
			locate_error(c, "dns.resolver", err, errsize);
			return -1;
		}
	}
	{
		struct dns_limits lim;

		dns_get_limits(c->dns, &lim);
		lim.cache_max = (unsigned)core->dns_cache_size;
		lim.ttl_max = (unsigned)core->dns_ttl_max;
		lim.neg_ttl_max = (unsigned)core->dns_neg_ttl_max;
		dns_set_limits(c->dns, &lim);
	}
	/* A second conf_finish() (after more conf_set() calls) starts over. */
	for (int i = 0; i < c->norder; i++) {
		const struct check_module *m = check_registry[c->order[i]];

		if (m->fini)
			m->fini(c->mod[c->order[i]].data);
	}
	free(c->order);
	c->order = xcalloc((size_t)core->checks.n + 1, sizeof(*c->order));
	c->norder = 0;
	for (int i = 0; i < core->checks.n; i++) {
		int idx = check_find(core->checks.v[i]);

		if (idx < 0) {
			snprintf(err, errsize,
			         "checks: unknown check '%.60s' (known:", core->checks.v[i]);
			for (int k = 0; k < check_registry_count; k++)
				bappend(err, errsize, " %s", check_registry[k]->name);
			bappend(err, errsize, ")");
			goto fail;
		}
		for (int k = 0; k < c->norder; k++)
			if (c->order[k] == idx) {
				snprintf(err, errsize, "checks: '%s' listed twice",
				         check_registry[idx]->name);
				goto fail;
			}
		c->order[c->norder++] = idx;
	}
	for (int i = 0; i < c->norder; i++) {
		const struct check_module *m = check_registry[c->order[i]];
		char why[768];

		if (m->init && m->init(c->mod[c->order[i]].data, c, why, sizeof(why)) < 0) {
			char key[96] = "";
			const char *colon = strchr(why, ':');

			if (colon && (size_t)(colon - why) < sizeof(key))
				memcpy(key, why, (size_t)(colon - why)), key[colon - why] = '\0';
			bcopy_str(err, errsize, why);
			c->norder = i; /* fini only for modules whose init ran */
			locate_error(c, key[0] ? key : NULL, err, errsize);
			return -1;
		}
	}
	return 0;
fail:
	c->norder = 0;
	locate_error(c, "checks", err, errsize);
	return -1;
}

/* Read one logical line (with continuation lines) from fp.  Returns NULL at
 * EOF.  *lineno is the number of the first physical line. */
static char *read_logical(FILE *fp, int *phys, int *lineno, char **pending)
{
	char *acc = NULL;
	size_t cap = 0;
	ssize_t n;
	char *buf = NULL;

	for (;;) {
		if (*pending) {
			buf = *pending;
			*pending = NULL;
		} else {
			cap = 0;
			buf = NULL;
			n = getline(&buf, &cap, fp);
			if (n < 0) {
				free(buf);
				return acc;
			}
			(*phys)++;
		}
		{
			char *t = str_trim(buf);

			if (*t == '\0' || *t == '#') {
				free(buf);
				continue;
			}
			if (acc && (buf[0] == ' ' || buf[0] == '\t')) {
				char *joined = xasprintf("%s %s", acc, t);

				free(acc);
				free(buf);
				acc = joined;
				continue;
			}
			if (acc) {
				*pending = buf; /* starts the next logical line */
				(*phys)--;
				return acc;
			}
			*lineno = *phys;
			acc = xstrdup(t);
			free(buf);
		}
	}
}

struct conf *conf_load(const char *path, char *err, size_t errsize)
{
	struct conf *c = conf_new();
	FILE *fp = NULL;
	char *line, *pending = NULL;
	int phys = 0, lineno = 0;

	c->path = xstrdup(path ? path : "(defaults)");
	if (path == NULL)
		goto finish;
	fp = fopen(path, "r");
	if (fp == NULL) {
		snprintf(err, errsize, "%s: %s", path, strerror(errno));
		goto fail;
	}
	{
		struct stat st;

		if (fstat(fileno(fp), &st) == 0 && S_ISDIR(st.st_mode)) {
			snprintf(err, errsize, "%s: %s", path, strerror(EISDIR));
			goto fail;
		}
	}
	while ((line = read_logical(fp, &phys, &lineno, &pending)) != NULL) {
		char *eq = strchr(line, '=');
		char *key, *val, why[1024];

		if (pending)
			phys++; /* the pending line was counted back */
		if (eq == NULL) {
			snprintf(err, errsize, "%s:%d: missing '=' in '%.60s'", path, lineno, line);
			free(line);
			goto fail;
		}
		*eq = '\0';
		key = str_trim(line);
		val = str_trim(eq + 1);
		if (conf_set(c, key, val, why, sizeof(why)) < 0) {
			snprintf(err, errsize, "%s:%d: %s", path, lineno, why);
			free(line);
			goto fail;
		}
		remember_line(c, key, lineno);
		free(line);
	}
	if (ferror(fp)) {
		snprintf(err, errsize, "%s: read error: %s", path, strerror(errno));
		goto fail;
	}
	fclose(fp);
	fp = NULL;
finish:
	if (conf_finish(c, err, errsize) < 0)
		goto fail;
	return c;
fail:
	free(pending);
	if (fp)
		fclose(fp);
	conf_free(c);
	return NULL;
}

struct conf *conf_ref(struct conf *c)
{
	__atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
	return c;
}

void conf_unref(struct conf *c)
{
	if (c && __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0)
		conf_free(c);
}

static pthread_mutex_t current_lock = PTHREAD_MUTEX_INITIALIZER;
static struct conf *current;

struct conf *conf_current(void)
{
	struct conf *c;

	pthread_mutex_lock(&current_lock);
	c = current ? conf_ref(current) : NULL;
	pthread_mutex_unlock(&current_lock);
	return c;
}

void conf_install(struct conf *c)
{
	struct conf *old;

	pthread_mutex_lock(&current_lock);
	old = current;
	current = c;
	pthread_mutex_unlock(&current_lock);
	conf_unref(old);
}

struct dump_arg {
	const struct conf *c;
	struct conf *defaults;
	enum conf_dump what;
	FILE *fp;
	char last_module[64];
};

static void dump_one(const struct conf_param *p, void *arg)
{
	struct dump_arg *d = arg;
	struct conf_param tmp;
	void *base, *dbase;
	const struct conf_param *q = find_param((struct conf *)d->c, p->key, &base, &tmp);
	char val[2048], def[2048];

	if (q == NULL)
		return;
	format_value(base, q, val, sizeof(val));
	if (d->what == CONF_DUMP_SAMPLE) {
		const char *dot = strchr(p->key, '.');
		size_t plen = dot ? (size_t)(dot - p->key) : 0;

		/* A heading before each module's first key. */
		if (dot && (strncmp(d->last_module, p->key, plen) || d->last_module[plen])) {
			int idx;

			snprintf(d->last_module, sizeof(d->last_module), "%.*s", (int)plen, p->key);
			idx = check_find(d->last_module);
			if (idx >= 0)
				fprintf(d->fp, "\n# === %s: %s ===\n", check_registry[idx]->name,
				        check_registry[idx]->doc);
		}
		fprintf(d->fp, "\n# %s\n#%s = %s\n", p->doc, p->key, val);
		return;
	}
	if (d->what == CONF_DUMP_CHANGED) {
		q = find_param(d->defaults, p->key, &dbase, &tmp);
		format_value(dbase, q, def, sizeof(def));
		if (strcmp(val, def) == 0)
			return;
	}
	fprintf(d->fp, "%s = %s\n", p->key, val);
}

void conf_dump(const struct conf *c, enum conf_dump what, void *fp)
{
	char err[256];
	struct dump_arg d = { c, NULL, what, fp, "" };

	if (what == CONF_DUMP_CHANGED)
		d.defaults = conf_load(NULL, err, sizeof(err));
	conf_foreach_param(dump_one, &d);
	if (d.defaults)
		conf_unref(d.defaults);
}
