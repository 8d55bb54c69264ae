/* lib/store/wlist.c - the admin whitelist (see wlist.h)
 *
 * Threading: one process-wide in-memory copy of the "whitelist" namespace.
 * A lookup reads the file's change counter (store_seqnum) and, when it
 * moved, rebuilds the copy under refresh_mu from a chain-by-chain walk, then
 * swaps it in under the write side of lk; lookups hold the read side.
 * The copy is a sorted array of "KIND:VALUE" keys for the exact kinds
 * (client, host, sender, domain, recipient) searched with bsearch, and a
 * short list of networks scanned in turn.
 */
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encode.h"
#include "log.h"
#include "store.h"
#include "util.h"
#include "wlist.h"

static const char *const kind_names[WL_NKINDS] = {
	[WL_CLIENT] = "client", [WL_NETWORK] = "network", [WL_HOST] = "host",
	[WL_SENDER] = "sender", [WL_DOMAIN] = "domain",   [WL_RECIPIENT] = "recipient",
};

const char *wlist_kind_name(enum wl_kind k)
{
	return (unsigned)k < WL_NKINDS ? kind_names[k] : "?";
}

int wlist_kind_parse(const char *name)
{
	for (int i = 0; i < WL_NKINDS; i++)
		if (name != NULL && strcmp(name, kind_names[i]) == 0)
			return i;
	return -1;
}

/* --- canonical values ----------------------------------------------------- */

/* Clear the bits of net beyond len. */
static void net_mask(struct ipaddr *net, int len)
{
	for (int i = 0; i < 16; i++) {
		int keep = len - 8 * i;
		if (keep >= 8)
			continue;
		net->a[i] &= keep <= 0 ? 0 : (unsigned char)(0xff << (8 - keep));
	}
}

/* Lowercase, drop one trailing dot; the name must be a valid domain. */
static int name_canon(const char *in, char *dst, size_t dstsize)
{
	size_t n;

	if (str_lower(dst, dstsize, in) >= dstsize)
		return -1;
	n = strlen(dst);
	if (n > 0 && dst[n - 1] == '.')
		dst[--n] = '\0';
	return n > 0 && domain_valid(dst) ? 0 : -1;
}

static int addr_canon(const char *in, const char *shown, char *dst, size_t dstsize, char *err,
                      size_t errsize)
{
	struct mailaddr a;
	char buf[ADDR_MAX + 8];

	if (in[0] == '<')
		bcopy_str(buf, sizeof(buf), in);
	else
		snprintf(buf, sizeof(buf), "<%s>", in);
	addr_parse(buf, &a);
	if (a.flags & ADDR_NULL) {
		snprintf(err, errsize, "the null sender <> cannot be whitelisted");
		return -1;
	}
	if (a.flags & (ADDR_BAD_SYNTAX | ADDR_TOO_LONG | ADDR_NO_DOMAIN)) {
		snprintf(err, errsize, "'%s' is not an address user@domain", shown);
		return -1;
	}
	if (str_lower(dst, dstsize, a.full) >= dstsize) {
		snprintf(err, errsize, "address too long");
		return -1;
	}
	return 0;
}

int wlist_normalise(enum wl_kind kind, const char *value, char *dst, size_t dstsize, char *err,
                    size_t errsize)
{
	struct ipaddr ip;
	int len;
	char text[64], shown[200];
	const char *v = value;

	if (value == NULL || value[0] == '\0' || strlen(value) > WLIST_VALUE_MAX) {
		snprintf(err, errsize, "empty or too long value");
		return -1;
	}
	/* the value may come from a dump file or a command line: shown
	 * encoded, never raw, in the one-line error */
	enc_log(shown, sizeof(shown), value, 100);
	switch (kind) {
	case WL_CLIENT:
		if (ip_parse(value, &ip) < 0)
			break;
		ip_format(&ip, dst, dstsize);
		return 0;
	case WL_NETWORK:
		if (strchr(value, '/') == NULL || ip_parse_cidr(value, &ip, &len) < 0)
			break;
		net_mask(&ip, len);
		ip_format(&ip, text, sizeof(text));
		snprintf(dst, dstsize, "%s/%d", text, len);
		return 0;
	case WL_HOST:
		if (v[0] == '*' && v[1] == '.')
			v++;
		if (v[0] == '.') {
			if (dstsize < 2 || name_canon(v + 1, dst + 1, dstsize - 1) < 0)
				break;
			dst[0] = '.';
			return 0;
		}
		if (name_canon(v, dst, dstsize) < 0)
			break;
		return 0;
	case WL_DOMAIN:
		if (v[0] == '@')
			v++;
		else if (v[0] == '*' && v[1] == '.')
			v += 2;
		else if (v[0] == '.')
			v++;
		if (name_canon(v, dst, dstsize) < 0)
			break;
		return 0;
	case WL_SENDER:
	case WL_RECIPIENT: return addr_canon(value, shown, dst, dstsize, err, errsize);
	default: snprintf(err, errsize, "unknown kind"); return -1;
	}
	switch (kind) {
	case WL_CLIENT: snprintf(err, errsize, "'%s' is not an IP address", shown); break;
	case WL_NETWORK:
		snprintf(err, errsize, "'%s' is not a network ADDRESS/LENGTH", shown);
		break;
	case WL_HOST:
		snprintf(err, errsize, "'%s' is not a host name or .domain / *.domain pattern",
		         shown);
		break;
	default: snprintf(err, errsize, "'%s' is not a domain name", shown); break;
	}
	return -1;
}

size_t wlist_key(enum wl_kind kind, const char *canon, char *dst, size_t dstsize)
{
	int n = snprintf(dst, dstsize, "%s:%s", wlist_kind_name(kind), canon);

	return n < 0 || (size_t)n >= dstsize ? 0 : (size_t)n;
}

/* --- record values -------------------------------------------------------- */

/* Control characters (a newline would end the field) become spaces; the
 * rest, UTF-8 included, is kept.  Idempotent, so that a record read back
 * (dump and load) is written again byte for byte. */
static void text_field(char *dst, size_t dstsize, const char *src)
{
	size_t i;

	for (i = 0; src[i] && i + 1 < dstsize; i++)
		dst[i] = (unsigned char)src[i] < 0x20 || src[i] == 0x7f ? ' ' : src[i];
	dst[i] = '\0';
}

size_t wlist_encode(const struct wl_entry *e, char *dst, size_t dstsize)
{
	char by[WLIST_BY_MAX + 1], comment[WLIST_COMMENT_MAX + 1];

	text_field(by, sizeof(by), e->by);
	text_field(comment, sizeof(comment), e->comment);
	snprintf(dst, dstsize, "created=%lld\nby=%s\ncomment=%s\n", (long long)e->created, by,
	         comment);
	return strlen(dst);
}

int wlist_decode(const void *key, size_t keylen, const void *val, size_t vallen, time_t expires,
                 struct wl_entry *e)
{
	char k[WLIST_KEY_MAX + 1], *colon, *text, *line, *save = NULL;
	int kind, have_created = 0;

	memset(e, 0, sizeof(*e));
	if (keylen == 0 || keylen > WLIST_KEY_MAX || memchr(key, '\0', keylen) != NULL)
		return -1;
	memcpy(k, key, keylen);
	k[keylen] = '\0';
	if ((colon = strchr(k, ':')) == NULL)
		return -1;
	*colon = '\0';
	if ((kind = wlist_kind_parse(k)) < 0 || colon[1] == '\0')
		return -1;
	e->kind = (enum wl_kind)kind;
	if (bcopy_str(e->value, sizeof(e->value), colon + 1) >= sizeof(e->value))
		return -1;
	e->expires = expires;
	if (memchr(val, '\0', vallen) != NULL)
		return -1;
	text = xstrndup(val, vallen);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "created=", 8) == 0) {
			char *end;
			e->created = (time_t)strtoll(line + 8, &end, 10);
			have_created = *end == '\0' && line[8] != '\0';
		} else if (strncmp(line, "by=", 3) == 0) {
			bcopy_str(e->by, sizeof(e->by), line + 3);
		} else if (strncmp(line, "comment=", 8) == 0) {
			bcopy_str(e->comment, sizeof(e->comment), line + 8);
		}
	}
	free(text);
	return have_created ? 0 : -1;
}

/* --- changes (portcullisctl) ---------------------------------------------- */

int wlist_add(struct store *st, const struct wl_entry *e)
{
	char key[WLIST_KEY_MAX + 1], val[1024 + WLIST_COMMENT_MAX * 4];
	size_t klen = wlist_key(e->kind, e->value, key, sizeof(key));
	size_t vlen = wlist_encode(e, val, sizeof(val));
	int had;

	if (klen == 0)
		return -1;
	had = store_get(st, WLIST_NS, key, klen, NULL, 0, NULL, NULL);
	if (had < 0 && store_last_error() != STORE_ERR_SPACE)
		return -1;
	if (store_put(st, WLIST_NS, key, klen, val, vlen, e->expires, STORE_DURABLE) < 0)
		return -1;
	return had != 0;
}

int wlist_del(struct store *st, enum wl_kind kind, const char *canon)
{
	char key[WLIST_KEY_MAX + 1];
	size_t klen = wlist_key(kind, canon, key, sizeof(key));

	if (klen == 0)
		return 0;
	return store_del(st, WLIST_NS, key, klen, STORE_DURABLE);
}

int wlist_get(struct store *st, enum wl_kind kind, const char *canon, struct wl_entry *e)
{
	char key[WLIST_KEY_MAX + 1], val[4096];
	size_t klen = wlist_key(kind, canon, key, sizeof(key)), vlen;
	time_t exp;
	int rc;

	if (klen == 0)
		return 0;
	rc = store_get(st, WLIST_NS, key, klen, val, sizeof(val), &vlen, &exp);
	if (rc <= 0)
		return rc;
	return wlist_decode(key, klen, val, vlen, exp, e) == 0 ? 1 : 0;
}

void wlist_prepare(struct store *st)
{
	/* fails harmlessly when the namespace is already open */
	(void)store_ns_hash_size(st, WLIST_NS, WLIST_HASH_SIZE);
}

/* --- the in-memory copy --------------------------------------------------- */

struct wl_exact {
	char *key; /* "KIND:VALUE" */
	time_t expires;
};

struct wl_net {
	struct ipaddr net;
	int len;
	time_t expires;
	char *key;
};

struct wl_copy {
	struct wl_exact *exact;
	size_t nexact, capexact;
	struct wl_net *nets;
	size_t nnets, capnets;
};

static struct {
	pthread_mutex_t refresh_mu; /* one reload at a time */
	pthread_rwlock_t lk;        /* copy, loaded, st, seq */
	struct wl_copy copy;
	int loaded;
	struct store *st;
	unsigned long seq;
	int warned; /* store failure already logged since the last success */
} cache = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_RWLOCK_INITIALIZER, { 0 }, 0, NULL, 0, 0 };

static void copy_free(struct wl_copy *c)
{
	for (size_t i = 0; i < c->nexact; i++)
		free(c->exact[i].key);
	for (size_t i = 0; i < c->nnets; i++)
		free(c->nets[i].key);
	free(c->exact);
	free(c->nets);
	memset(c, 0, sizeof(*c));
}

static int load_one(const void *key, size_t keylen, const void *val, size_t vallen, time_t expires,
                    void *arg)
{
	struct wl_copy *c = arg;
	struct wl_entry e;
	char k[WLIST_KEY_MAX + 1];

	if (wlist_decode(key, keylen, val, vallen, expires, &e) < 0)
		return 0; /* not ours: ignored (portcullisctl load validates) */
	wlist_key(e.kind, e.value, k, sizeof(k));
	if (e.kind == WL_NETWORK) {
		struct wl_net n = { .expires = expires };
		if (ip_parse_cidr(e.value, &n.net, &n.len) < 0)
			return 0;
		if (c->nnets == c->capnets) {
			c->capnets = c->capnets ? 2 * c->capnets : 16;
			c->nets = xrealloc(c->nets, c->capnets * sizeof(*c->nets));
		}
		n.key = xstrdup(k);
		c->nets[c->nnets++] = n;
	} else {
		if (c->nexact == c->capexact) {
			c->capexact = c->capexact ? 2 * c->capexact : 64;
			c->exact = xrealloc(c->exact, c->capexact * sizeof(*c->exact));
		}
		c->exact[c->nexact].key = xstrdup(k);
		c->exact[c->nexact++].expires = expires;
	}
	return 0;
}

static int exact_cmp(const void *a, const void *b)
{
	return strcmp(((const struct wl_exact *)a)->key, ((const struct wl_exact *)b)->key);
}

/* Bring the copy up to date with st; called without lk held.  Returns 0
 * when a copy (fresh or, after a store error, the last good one) is
 * loaded, -1 when there is none. */
static int refresh(struct store *st)
{
	unsigned long seq;
	int rc = 0, fresh;
	struct wl_copy c = { 0 }, old;

	if (store_seqnum(st, WLIST_NS, &seq) == 0) {
		pthread_rwlock_rdlock(&cache.lk);
		fresh = cache.loaded && cache.st == st && cache.seq == seq;
		pthread_rwlock_unlock(&cache.lk);
		if (fresh)
			return 0;
		pthread_mutex_lock(&cache.refresh_mu);
		pthread_rwlock_rdlock(&cache.lk);
		fresh = cache.loaded && cache.st == st && cache.seq == seq;
		pthread_rwlock_unlock(&cache.lk);
		if (fresh) { /* another thread reloaded it meanwhile */
			pthread_mutex_unlock(&cache.refresh_mu);
			return 0;
		}
		/* the counter is read before the walk: a write during the walk
		 * moves it again and the next lookup reloads */
		if (store_traverse(st, WLIST_NS, load_one, &c) >= 0) {
			if (c.nexact > 1)
				qsort(c.exact, c.nexact, sizeof(*c.exact), exact_cmp);
			pthread_rwlock_wrlock(&cache.lk);
			old = cache.copy;
			cache.copy = c;
			cache.loaded = 1;
			cache.st = st;
			cache.seq = seq;
			cache.warned = 0;
			pthread_rwlock_unlock(&cache.lk);
			pthread_mutex_unlock(&cache.refresh_mu);
			copy_free(&old);
			return 0;
		}
		copy_free(&c);
		pthread_mutex_unlock(&cache.refresh_mu);
	}
	pthread_rwlock_wrlock(&cache.lk);
	if (!cache.warned)
		log_msg(LOG_LVL_WARN, "whitelist: store: %s; %s",
		        store_strerror(store_last_error()),
		        cache.loaded && cache.st == st ? "using the last copy read"
		                                       : "no whitelist copy to use");
	cache.warned = 1;
	rc = cache.loaded && cache.st == st ? 0 : -1;
	pthread_rwlock_unlock(&cache.lk);
	return rc;
}

void wlist_cache_reset(void)
{
	pthread_mutex_lock(&cache.refresh_mu);
	pthread_rwlock_wrlock(&cache.lk);
	copy_free(&cache.copy);
	cache.loaded = 0;
	cache.st = NULL;
	cache.warned = 0;
	pthread_rwlock_unlock(&cache.lk);
	pthread_mutex_unlock(&cache.refresh_mu);
}

/* Is the copy empty (no whitelist entry at all)?  Then a lookup has
 * nothing to build keys for. */
static int copy_empty(void)
{
	int empty;

	pthread_rwlock_rdlock(&cache.lk);
	empty = cache.copy.nexact == 0 && cache.copy.nnets == 0;
	pthread_rwlock_unlock(&cache.lk);
	return empty;
}

/* Is key in the copy and not expired?  lk held for reading. */
static int has_key(const char *key, time_t now, char *match, size_t matchsize)
{
	struct wl_exact k = { (char *)(uintptr_t)key, 0 }, *e;

	if (cache.copy.nexact == 0)
		return 0;
	e = bsearch(&k, cache.copy.exact, cache.copy.nexact, sizeof(k), exact_cmp);
	if (e == NULL || (e->expires != 0 && e->expires <= now))
		return 0;
	bcopy_str(match, matchsize, e->key);
	return 1;
}

/* KIND:name, then KIND:.parent for every parent of name (with_dot) or
 * KIND:parent (without).  lk held for reading. */
static int has_name(const char *kind, const char *name, int exact, int with_dot, time_t now,
                    char *match, size_t matchsize)
{
	char key[WLIST_KEY_MAX + 1];

	if (exact) {
		snprintf(key, sizeof(key), "%s:%s", kind, name);
		if (has_key(key, now, match, matchsize))
			return 1;
	}
	for (const char *p = strchr(name, '.'); p && p[1]; p = strchr(p + 1, '.')) {
		snprintf(key, sizeof(key), "%s:%s", kind, with_dot ? p : p + 1);
		if (has_key(key, now, match, matchsize))
			return 1;
	}
	return 0;
}

int wlist_match_client(struct store *st, const struct ipaddr *ip, const char *client_name,
                       char *match, size_t matchsize)
{
	char key[WLIST_KEY_MAX + 1], text[64], name[256];
	time_t now = clock_now();
	int found = 0;

	if (refresh(st) < 0)
		return -1;
	if (copy_empty())
		return 0;
	name[0] = '\0';
	if (client_name && client_name[0] && strcmp(client_name, "unknown") != 0 &&
	    name_canon(client_name, name, sizeof(name)) < 0)
		name[0] = '\0';
	pthread_rwlock_rdlock(&cache.lk);
	if (ip && ip->family) {
		static const unsigned char mapped[12] = {
			0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
		};
		struct ipaddr v4 = { 0 };

		/* ::ffff:192.0.2.7 is the IPv4 client 192.0.2.7 */
		if (ip->family == AF_INET6 && memcmp(ip->a, mapped, sizeof(mapped)) == 0) {
			v4.family = AF_INET;
			memcpy(v4.a, ip->a + 12, 4);
			ip_format(&v4, text, sizeof(text));
		} else {
			ip_format(ip, text, sizeof(text));
		}
		snprintf(key, sizeof(key), "client:%s", text);
		found = has_key(key, now, match, matchsize);
		for (size_t i = 0; !found && i < cache.copy.nnets; i++) {
			const struct wl_net *n = &cache.copy.nets[i];
			if ((n->expires == 0 || n->expires > now) &&
			    ip_in_net(ip, &n->net, n->len)) {
				bcopy_str(match, matchsize, n->key);
				found = 1;
			}
		}
	}
	if (!found && name[0])
		found = has_name("host", name, 1, 1, now, match, matchsize);
	pthread_rwlock_unlock(&cache.lk);
	return found;
}

int wlist_match_sender(struct store *st, const struct mailaddr *sender, char *match,
                       size_t matchsize)
{
	char key[WLIST_KEY_MAX + 1], lower[ADDR_MAX + 1];
	time_t now = clock_now();
	int found = 0;

	if (refresh(st) < 0)
		return -1;
	if (sender->flags & ADDR_NULL || sender->full[0] == '\0' || copy_empty())
		return 0;
	str_lower(lower, sizeof(lower), sender->full);
	pthread_rwlock_rdlock(&cache.lk);
	snprintf(key, sizeof(key), "sender:%s", lower);
	found = has_key(key, now, match, matchsize);
	if (!found && sender->domain[0] && sender->domain[0] != '[')
		found = has_name("domain", sender->domain, 1, 0, now, match, matchsize);
	pthread_rwlock_unlock(&cache.lk);
	return found;
}

int wlist_match_rcpt(struct store *st, const struct mailaddr *rcpt, char *match, size_t matchsize)
{
	char key[WLIST_KEY_MAX + 1], lower[ADDR_MAX + 1];
	int found;

	if (refresh(st) < 0)
		return -1;
	if (rcpt->full[0] == '\0' || copy_empty())
		return 0;
	str_lower(lower, sizeof(lower), rcpt->full);
	snprintf(key, sizeof(key), "recipient:%s", lower);
	pthread_rwlock_rdlock(&cache.lk);
	found = has_key(key, clock_now(), match, matchsize);
	pthread_rwlock_unlock(&cache.lk);
	return found;
}
