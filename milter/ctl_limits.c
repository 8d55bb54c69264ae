/* milter/ctl_limits.c - portcullisctl verify and ratelimit: the address
 * verification cache and the rate limit counters in the store
 *
 *   verify list [PATTERN]        cached results: KEY STATUS CHECKED EXPIRES TEXT
 *   verify delete KEY|ADDRESS    forget one (an address: its r: and s: keys)
 *   ratelimit list [PREFIX]      counters: KEY COUNT-IN-WINDOW START CURRENT PREVIOUS
 *   ratelimit reset KEY          remove every counter of KEY ("auth:alice",
 *                                "client:192.0.2.0/24") or one full key
 *
 * Neither command creates a namespace file that does not exist yet (a file
 * made by root would lock the daemon's user out of it).  Exit status as in
 * ctl.h.
 */
#include "config.h"
#include "ctl.h"

#include "conf.h"
#include "ratelimit.h"
#include "store.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

struct keys {
	char **v;
	int n;
	const char *prefix;
	long long now;
	int list; /* print while walking */
	const char *ns;
};

static void fmt_time(long long t, char *dst, size_t dstsize)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t == 0) {
		bcopy_str(dst, dstsize, "never");
		return;
	}
	gmtime_r(&tt, &tm);
	strftime(dst, dstsize, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Printable copy of a key or value (store data is bytes). */
static void printable(char *dst, size_t dstsize, const void *src, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < len && o + 1 < dstsize; i++) {
		unsigned char ch = ((const unsigned char *)src)[i];

		dst[o++] = ch < 0x20 || ch >= 0x7f ? '?' : (char)ch;
	}
	dst[o] = '\0';
}

static int walk(const void *key, size_t keylen, const void *val, size_t vallen, time_t expires,
                void *arg)
{
	struct keys *k = arg;
	char ks[700], vs[700], ex[32];

	printable(ks, sizeof(ks), key, keylen);
	if (k->prefix && strncmp(ks, k->prefix, strlen(k->prefix)) != 0)
		return 0;
	if (k->list) {
		fmt_time(expires, ex, sizeof(ex));
		if (strcmp(k->ns, RATELIMIT_NS) == 0) {
			struct rl_rec r;
			const char *w = strrchr(ks, '|');
			long window = w ? strtol(w + 1, NULL, 10) : 0;

			ratelimit_rec_decode(val, vallen, &r);
			printf("%s count=%.1f start=%lld current=%lld previous=%lld expires=%s\n",
			       ks, window > 0 ? ratelimit_estimate(&r, window, k->now) : 0.0,
			       r.start, r.cur, r.prev, ex);
		} else {
			printable(vs, sizeof(vs), val, vallen);
			printf("%s %s expires=%s\n", ks, vs, ex);
		}
		return 0;
	}
	k->v = xrealloc(k->v, sizeof(*k->v) * (size_t)(k->n + 1));
	k->v[k->n++] = xstrndup(key, keylen);
	return 0;
}

static int usage_err(const char *msg)
{
	fprintf(stderr, "portcullisctl: %s\n", msg);
	return 2;
}

/* List ns (keys starting with prefix), or delete the keys that equal one
 * of want[] or start with want[i] followed by sep. */
static int run(struct conf *conf, const char *ns, const char *prefix, const char *const *want,
               int nwant, char sep)
{
	struct store *st;
	struct keys k = { .prefix = prefix, .now = (long long)clock_now(), .ns = ns };
	int deleted = 0, rc = 0;

	if (!ctl_ns_exists(conf, ns)) {
		if (nwant) {
			fprintf(stderr, "portcullisctl: %s: no entries\n", ns);
			return 1;
		}
		return 0;
	}
	if ((st = ctl_store_open(conf)) == NULL)
		return 2;
	k.list = nwant == 0;
	if (store_traverse(st, ns, walk, &k) < 0) {
		fprintf(stderr, "portcullisctl: %s: store error: %s\n", ns,
		        store_strerror(store_last_error()));
		rc = 2;
	}
	for (int i = 0; i < k.n; i++) {
		int match = 0;

		for (int j = 0; j < nwant && !match; j++) {
			size_t l = strlen(want[j]);

			match = strcmp(k.v[i], want[j]) == 0 ||
			        (strncmp(k.v[i], want[j], l) == 0 && k.v[i][l] == sep);
		}
		if (match && store_del(st, ns, k.v[i], strlen(k.v[i]), STORE_DURABLE) == 1) {
			printf("deleted %s\n", k.v[i]);
			deleted++;
		}
		free(k.v[i]);
	}
	free(k.v);
	ctl_store_close(conf, st);
	if (rc == 0 && nwant && deleted == 0) {
		fprintf(stderr, "portcullisctl: %s: no entry for %s\n", ns, want[0]);
		rc = 1;
	}
	return rc;
}

int cmd_verify(struct conf *conf, int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "list") == 0 && argc <= 3)
		return run(conf, "verify", argc == 3 ? argv[2] : NULL, NULL, 0, 0);
	if (argc == 3 && strcmp(argv[1], "delete") == 0) {
		char r[610], s[610], lower[600];
		const char *want[3];

		str_lower(lower, sizeof(lower), argv[2]);
		snprintf(r, sizeof(r), "r:%s", lower);
		snprintf(s, sizeof(s), "s:%s", lower);
		want[0] = lower;
		want[1] = r;
		want[2] = s;
		return run(conf, "verify", NULL, want, 3, '\0');
	}
	return usage_err("verify: list [PREFIX] or delete KEY|ADDRESS expected");
}

int cmd_ratelimit(struct conf *conf, int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "list") == 0 && argc <= 3)
		return run(conf, RATELIMIT_NS, argc == 3 ? argv[2] : NULL, NULL, 0, 0);
	if (argc == 3 && strcmp(argv[1], "reset") == 0) {
		const char *want[1] = { argv[2] };

		return run(conf, RATELIMIT_NS, NULL, want, 1, '|');
	}
	return usage_err("ratelimit: list [PREFIX] or reset KEY expected");
}
