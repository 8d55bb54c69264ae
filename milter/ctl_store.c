/* milter/ctl_store.c - portcullisctl's commands on the store: greylist,
 * awl, whitelist, expire, stats, dump, load, explain (see ctl.h and
 * portcullisctl(8))
 *
 * They open the store files in state_dir as the running daemon does; TDB's
 * locks let both work at once.  Whitelist changes are STORE_DURABLE: once
 * a command has said "added" or "deleted", the change survives kill -9 and
 * power loss.  Files this tool creates as root are handed to the owner of
 * state_dir, so the daemon (running as its own user) can open them.
 */
#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "ctl.h"
#include "dump.h"
#include "encode.h"
#include "grey.h"
#include "refs.h"
#include "store.h"
#include "util.h"
#include "wlist.h"

/* The namespaces portcullis keeps, in the order stats and dump list them. */
static const char *const known_ns[] = { GREY_NS, AWL_NS, WLIST_NS, REFS_NS, "stats" };

static time_t ctl_clock(void *arg)
{
	(void)arg;
	return clock_now();
}

static int err2(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int err2(const char *fmt, ...)
{
	va_list ap;

	fputs("portcullisctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 2;
}

static int store_failed(const char *what)
{
	return err2("%s: store error: %s", what, store_strerror(store_last_error()));
}

struct store *ctl_store_open(const struct conf *conf)
{
	return ctl_store_open_flags(conf, 0);
}

struct store *ctl_store_open_flags(const struct conf *conf, int flags)
{
	char err[1024];
	struct store_params sp;
	struct store *st;

	conf_store_params(conf, &sp);
	st = store_open_params(&sp, flags, err, sizeof(err));

	if (st == NULL) {
		err2("%s", err);
		return NULL;
	}
	store_set_clock(st, ctl_clock, NULL);
	wlist_prepare(st);
	grey_store_setup(st);
	return st;
}

/* Is the store Redis (shared by the MX hosts; no files)? */
static int is_redis(const struct conf *conf)
{
	return strcmp(conf->core.store_backend, "redis") == 0;
}

/* Give NS's file to the owner of state_dir when we (root) created it. */
static void fix_owner(const struct conf *conf, const char *ns)
{
	struct stat d, f;
	char *path;

	if (is_redis(conf) || geteuid() != 0 || stat(conf->core.state_dir, &d) < 0 || d.st_uid == 0)
		return;
	path = xasprintf("%s/%s.tdb", conf->core.state_dir, ns);
	if (stat(path, &f) == 0 && f.st_uid == 0 && chown(path, d.st_uid, d.st_gid) < 0 &&
	    errno != EROFS)
		fprintf(stderr, "portcullisctl: warning: chown %s: %s\n", path, strerror(errno));
	free(path);
}

void ctl_store_close(const struct conf *conf, struct store *st)
{
	if (st == NULL)
		return;
	store_close(st);
	for (size_t i = 0; i < ARRAY_SIZE(known_ns); i++)
		fix_owner(conf, known_ns[i]);
}

/* Does NS's file exist?  (Read-only commands do not create files.)
 * Always on Redis, where an absent namespace reads as empty. */
int ctl_ns_exists(const struct conf *conf, const char *ns)
{
	char *path;
	int rc;

	if (is_redis(conf))
		return 1; /* an absent namespace reads as empty */
	path = xasprintf("%s/%s.tdb", conf->core.state_dir, ns);
	rc = access(path, F_OK) == 0;
	free(path);
	return rc;
}

/* "30d" -> seconds (as the configuration's times).  0 or -1. */
static int parse_duration(const char *s, long *out)
{
	char *end;
	long v, mult = 1;

	errno = 0;
	v = strtol(s, &end, 10);
	if (end == s || errno || v <= 0)
		return -1;
	switch (*end) {
	case '\0':
	case 's': break;
	case 'm': mult = 60; break;
	case 'h': mult = 3600; break;
	case 'd': mult = 86400; break;
	case 'w': mult = 604800; break;
	default: return -1;
	}
	if ((*end && end[1]) || v > LONG_MAX / mult / 2)
		return -1;
	*out = v * mult;
	return 0;
}

/* The login name of whoever runs us (through sudo: the real one). */
static void login_name(char *dst, size_t dstsize)
{
	const char *s = getenv("SUDO_USER");
	struct passwd *pw;

	if (s && s[0]) {
		bcopy_str(dst, dstsize, s);
		return;
	}
	if (getlogin_r(dst, dstsize) == 0 && dst[0])
		return;
	if ((pw = getpwuid(getuid())) != NULL) {
		bcopy_str(dst, dstsize, pw->pw_name);
		return;
	}
	snprintf(dst, dstsize, "uid%ld", (long)getuid());
}

/* --- collecting records ---------------------------------------------------- */

struct rec {
	char *key;
	unsigned char *val;
	size_t vallen;
	time_t expires;
};

struct recs {
	struct rec *v;
	size_t n, cap;
	/* keep only the records whose key this accepts (NULL: all), so that a
	 * filtered list of a large namespace does not hold all of it */
	int (*keep)(const void *arg, const char *key);
	const void *keep_arg;
};

static int collect(const void *key, size_t keylen, const void *val, size_t vallen, time_t expires,
                   void *arg)
{
	struct recs *r = arg;
	char *k = xstrndup(key, keylen);

	if (r->keep && !r->keep(r->keep_arg, k)) {
		free(k);
		return 0;
	}
	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 256;
		r->v = xrealloc(r->v, r->cap * sizeof(*r->v));
	}
	r->v[r->n].key = k;
	r->v[r->n].val = xmalloc(vallen + 1);
	memcpy(r->v[r->n].val, val, vallen);
	r->v[r->n].val[vallen] = '\0';
	r->v[r->n].vallen = vallen;
	r->v[r->n].expires = expires;
	r->n++;
	return 0;
}

static int rec_cmp(const void *a, const void *b)
{
	return strcmp(((const struct rec *)a)->key, ((const struct rec *)b)->key);
}

/* All live records of ns (those r->keep accepts), sorted by key.  -1 on a
 * store error. */
static int load_ns(struct store *st, const char *ns, struct recs *r)
{
	r->v = NULL;
	r->n = r->cap = 0;
	if (store_traverse(st, ns, collect, r) < 0)
		return -1;
	if (r->n)
		qsort(r->v, r->n, sizeof(*r->v), rec_cmp);
	return 0;
}

static void recs_free(struct recs *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->v[i].key);
		free(r->v[i].val);
	}
	free(r->v);
}

/* --- greylist and awl ------------------------------------------------------- */

struct grey_filter {
	const char *key;
	char sender[GREY_KEY_MAX];
	char rcpt[GREY_KEY_MAX];
	const char *net; /* a NET as listed, or an address or network */
	struct ipaddr ip;
	int iplen; /* when net is an address or CIDR */
};

/* Does NET ("ip:192.0.2.0/24", ...) match the filter's --net / --ip? */
static int net_matches(const struct grey_filter *f, const char *net)
{
	struct ipaddr n;
	int len;

	if (f->net == NULL)
		return 1;
	if (strcasecmp(f->net, net) == 0)
		return 1;
	if (f->ip.family == 0 || strncmp(net, "ip:", 3) != 0 ||
	    ip_parse_cidr(net + 3, &n, &len) < 0)
		return 0;
	/* the record's network holds the address, or lies inside the network */
	return (len <= f->iplen && ip_in_net(&f->ip, &n, len)) ||
	       (f->iplen <= len && ip_in_net(&n, &f->ip, f->iplen));
}

static int grey_matches(const void *arg, const char *key)
{
	const struct grey_filter *f = arg;
	char buf[GREY_KEY_MAX + 1];
	const char *net, *sender, *rcpt;

	if (f->key)
		return strcmp(f->key, key) == 0;
	if (bcopy_str(buf, sizeof(buf), key) >= sizeof(buf) ||
	    grey_key_split(buf, &net, &sender, &rcpt) < 0)
		return 0;
	return net_matches(f, net) && (!f->sender[0] || strcmp(f->sender, sender) == 0) &&
	       (!f->rcpt[0] || strcmp(f->rcpt, rcpt) == 0);
}

static void print_grey(const struct rec *r, int verbose)
{
	struct grey_rec g;
	char t1[32], t2[32], t3[32];

	if (grey_rec_decode(r->val, r->vallen, &g) < 0) {
		printf("%s (not a greylist record: %zu bytes)\n", r->key, r->vallen);
		return;
	}
	dump_time((time_t)g.first, t1, sizeof(t1));
	dump_time((time_t)g.last, t2, sizeof(t2));
	dump_time(r->expires, t3, sizeof(t3));
	if (!verbose) {
		printf("%s %s passes=%u defers=%u first=%s last=%s expires=%s\n", r->key,
		       g.flags & GREY_PASSED ? "passed" : "waiting", (unsigned)g.passes,
		       (unsigned)g.defers, t1, t2, t3);
		return;
	}
	char buf[GREY_KEY_MAX + 1];
	const char *net = "?", *sender = "?", *rcpt = "?";
	bcopy_str(buf, sizeof(buf), r->key);
	(void)grey_key_split(buf, &net, &sender, &rcpt);
	printf("key       %s\nclient    %s\nsender    %s\nrecipient %s\n", r->key, net, sender,
	       rcpt);
	printf("state     %s%s\npasses    %u\ndefers    %u\nfirst     %s\nlast      %s\n"
	       "expires   %s\n",
	       g.flags & GREY_PASSED ? "passed" : "waiting",
	       g.flags & GREY_NOGREY ? " (score-aware: not greylisted)" : "", (unsigned)g.passes,
	       (unsigned)g.defers, t1, t2, t3);
}

/* Parse the selectors of greylist list/show/del.  2 on a usage error. */
static int grey_filter_parse(int argc, char **argv, struct grey_filter *f, int allow_key)
{
	static const struct option opts[] = {
		{ "sender", required_argument, NULL, 's' },
		{ "from", required_argument, NULL, 's' },
		{ "rcpt", required_argument, NULL, 'r' },
		{ "net", required_argument, NULL, 'n' },
		{ "ip", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	memset(f, 0, sizeof(*f));
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 's': {
			char *s = optarg, tmp[GREY_KEY_MAX];
			size_t n = strlen(s);
			if (s[0] == '<' && n >= 2 && s[n - 1] == '>') {
				bcopy_str(tmp, sizeof(tmp), s + 1);
				tmp[n - 2] = '\0';
				s = tmp;
			}
			grey_normalise_sender(f->sender, sizeof(f->sender), s);
			break;
		}
		case 'r': {
			char *s = optarg;
			size_t n = strlen(s);
			if (s[0] == '<' && n >= 2 && s[n - 1] == '>') {
				s++;
				n -= 2;
			}
			for (size_t i = 0; i < n && i + 1 < sizeof(f->rcpt); i++)
				f->rcpt[i] = (char)tolower((unsigned char)s[i]);
			f->rcpt[n < sizeof(f->rcpt) ? n : sizeof(f->rcpt) - 1] = '\0';
			break;
		}
		case 'n':
			f->net = optarg;
			if (ip_parse_cidr(optarg, &f->ip, &f->iplen) < 0)
				f->ip.family = 0;
			break;
		default: return err2("%s: unknown option %s", argv[0], argv[optind - 1]);
		}
	}
	if (optind < argc) {
		if (!allow_key || optind + 1 < argc || f->net || f->sender[0] || f->rcpt[0])
			return err2("%s: give either KEY or --ip/--sender/--rcpt", argv[0]);
		f->key = argv[optind];
	}
	return 0;
}

static int greylist_list(struct conf *conf, struct store *st, int argc, char **argv, int mode)
{
	struct grey_filter f;
	struct recs r = { 0 };
	int n = 0;

	if (grey_filter_parse(argc, argv, &f, mode != 0) != 0)
		return 2;
	if (mode != 0 && !f.key && !f.net && !f.sender[0] && !f.rcpt[0])
		return err2("greylist %s: needs KEY or --ip/--sender/--rcpt", argv[0]);
	if (!ctl_ns_exists(conf, GREY_NS)) {
		if (mode == 0)
			return 0;
		return err2("greylist %s: no greylist entries", argv[0]) - 1;
	}
	r.keep = grey_matches;
	r.keep_arg = &f;
	if (load_ns(st, GREY_NS, &r) < 0)
		return store_failed("greylist");
	for (size_t i = 0; i < r.n; i++) {
		if (!grey_matches(&f, r.v[i].key))
			continue;
		n++;
		if (mode == 0) {
			print_grey(&r.v[i], 0);
		} else if (mode == 1) {
			if (n > 1)
				putchar('\n');
			print_grey(&r.v[i], 1);
		} else {
			int d =
			    store_del(st, GREY_NS, r.v[i].key, strlen(r.v[i].key), STORE_NORMAL);
			if (d < 0) {
				recs_free(&r);
				return store_failed("greylist del");
			}
			if (d > 0)
				printf("deleted %s\n", r.v[i].key);
		}
	}
	recs_free(&r);
	if (n == 0 && mode != 0) {
		fprintf(stderr, "portcullisctl: greylist %s: no matching entry\n", argv[0]);
		return 1;
	}
	return 0;
}

int cmd_greylist(struct conf *conf, int argc, char **argv)
{
	struct store *st;
	int rc, mode;

	if (argc < 2)
		return err2("greylist: list, show or del expected");
	if (strcmp(argv[1], "list") == 0)
		mode = 0;
	else if (strcmp(argv[1], "show") == 0)
		mode = 1;
	else if (strcmp(argv[1], "del") == 0)
		mode = 2;
	else
		return err2("greylist: unknown subcommand '%.40s' (list, show, del)", argv[1]);
	if ((st = ctl_store_open_flags(conf, mode == 2 ? 0 : STORE_RDONLY)) == NULL)
		return 2;
	rc = greylist_list(conf, st, argc - 1, argv + 1, mode);
	ctl_store_close(conf, st);
	return rc;
}

int cmd_awl(struct conf *conf, int argc, char **argv)
{
	struct store *st;
	struct recs r = { 0 };
	int rc = 0, n = 0;

	if (argc < 2 || (strcmp(argv[1], "list") == 0 && argc != 2) ||
	    (strcmp(argv[1], "del") == 0 && argc != 3))
		return err2("awl: usage: awl list | awl del NET");
	if (strcmp(argv[1], "list") != 0 && strcmp(argv[1], "del") != 0)
		return err2("awl: unknown subcommand '%.40s' (list, del)", argv[1]);
	if (!ctl_ns_exists(conf, AWL_NS)) {
		if (strcmp(argv[1], "list") == 0)
			return 0;
		fprintf(stderr, "portcullisctl: awl del: %s: not found\n", argv[2]);
		return 1;
	}
	if ((st = ctl_store_open_flags(conf, strcmp(argv[1], "list") == 0 ? STORE_RDONLY : 0)) ==
	    NULL)
		return 2;
	if (load_ns(st, AWL_NS, &r) < 0) {
		ctl_store_close(conf, st);
		return store_failed("awl");
	}
	struct grey_filter f = { 0 };
	if (argc == 3) {
		f.net = argv[2];
		if (ip_parse_cidr(argv[2], &f.ip, &f.iplen) < 0)
			f.ip.family = 0;
	}
	for (size_t i = 0; i < r.n; i++) {
		struct awl_rec a;
		char t1[32], t2[32], t3[32];

		if (argc == 3) {
			if (!net_matches(&f, r.v[i].key))
				continue;
			if (store_del(st, AWL_NS, r.v[i].key, strlen(r.v[i].key), STORE_NORMAL) <
			    0) {
				rc = store_failed("awl del");
				break;
			}
			printf("deleted %s\n", r.v[i].key);
			n++;
			continue;
		}
		if (awl_rec_decode(r.v[i].val, r.v[i].vallen, &a) < 0) {
			printf("%s (not an awl record)\n", r.v[i].key);
			continue;
		}
		printf("%s passes=%u first=%s last=%s expires=%s\n", r.v[i].key, (unsigned)a.passes,
		       dump_time((time_t)a.first, t1, sizeof(t1)),
		       dump_time((time_t)a.last, t2, sizeof(t2)),
		       dump_time(r.v[i].expires, t3, sizeof(t3)));
	}
	if (argc == 3 && rc == 0 && n == 0) {
		fprintf(stderr, "portcullisctl: awl del: %s: not found\n", argv[2]);
		rc = 1;
	}
	recs_free(&r);
	ctl_store_close(conf, st);
	return rc;
}

/* --- whitelist -------------------------------------------------------------- */

static void print_entry(const struct wl_entry *e)
{
	char t1[32], t2[32];

	printf("%s %s created=%s by=%s expires=%s comment=%s\n", wlist_kind_name(e->kind), e->value,
	       dump_time(e->created, t1, sizeof(t1)), e->by[0] ? e->by : "-",
	       dump_time(e->expires, t2, sizeof(t2)), e->comment);
}

/* Add one entry; prints what was done.  0 or 2. */
static int wl_add_one(const struct conf *conf, struct store *st, enum wl_kind kind,
                      const char *value, const char *comment, long expires_in, const char *why)
{
	struct wl_entry e = { 0 };
	char err[300], t[32];
	int rc;

	if (wlist_normalise(kind, value, e.value, sizeof(e.value), err, sizeof(err)) < 0)
		return err2("whitelist add %s: %s", wlist_kind_name(kind), err);
	e.kind = kind;
	e.created = clock_now();
	e.expires = expires_in > 0 ? e.created + expires_in : 0;
	login_name(e.by, sizeof(e.by));
	bcopy_str(e.comment, sizeof(e.comment), comment ? comment : "");
	rc = wlist_add(st, &e);
	fix_owner(conf, WLIST_NS);
	if (rc < 0)
		return store_failed("whitelist add");
	printf("%s %s %s%s%s%s%s\n", rc ? "replaced" : "added", wlist_kind_name(kind), e.value,
	       e.expires ? " expires " : "", e.expires ? dump_time(e.expires, t, sizeof(t)) : "",
	       why ? " " : "", why ? why : "");
	return 0;
}

/* What a refs record says, parsed. */
struct ref_info {
	char client_addr[64];
	char client_name[256];
	char from[ADDR_MAX + 1];
	int nrcpt;
	struct {
		char addr[ADDR_MAX + 1];
		char outcome[16];
		char symbol[64];
	} rcpt[50];
	int nsym;
	struct {
		char name[64];
		char stage[16];
	} sym[64];
	char verdict[16];
};

static void ref_parse(const char *text, struct ref_info *ri)
{
	char *copy = xstrdup(text), *line, *save = NULL;

	memset(ri, 0, sizeof(*ri));
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *v = strchr(line, '=');
		if (v == NULL)
			continue;
		*v++ = '\0';
		if (strcmp(line, "client_addr") == 0)
			bcopy_str(ri->client_addr, sizeof(ri->client_addr), v);
		else if (strcmp(line, "client_name") == 0)
			bcopy_str(ri->client_name, sizeof(ri->client_name), v);
		else if (strcmp(line, "from") == 0)
			bcopy_str(ri->from, sizeof(ri->from), v);
		else if (strcmp(line, "verdict") == 0)
			bcopy_str(ri->verdict, sizeof(ri->verdict), v);
		else if (strcmp(line, "rcpt") == 0 && ri->nrcpt < (int)ARRAY_SIZE(ri->rcpt)) {
			/* ADDR OUTCOME SYMBOL: the address may be "" */
			char *sym = strrchr(v, ' '), *out;
			if (sym == NULL)
				continue;
			*sym++ = '\0';
			out = strrchr(v, ' ');
			if (out)
				*out++ = '\0';
			else {
				out = v;
				v = (char *)"";
			}
			bcopy_str(ri->rcpt[ri->nrcpt].addr, sizeof(ri->rcpt[0].addr), v);
			bcopy_str(ri->rcpt[ri->nrcpt].outcome, sizeof(ri->rcpt[0].outcome), out);
			bcopy_str(ri->rcpt[ri->nrcpt].symbol, sizeof(ri->rcpt[0].symbol), sym);
			ri->nrcpt++;
		} else if (strcmp(line, "symbol") == 0 && ri->nsym < (int)ARRAY_SIZE(ri->sym)) {
			char *st = strchr(v, ' ');
			if (st)
				*st++ = '\0';
			bcopy_str(ri->sym[ri->nsym].name, sizeof(ri->sym[0].name), v);
			bcopy_str(ri->sym[ri->nsym].stage, sizeof(ri->sym[0].stage), st ? st : "");
			ri->nsym++;
		}
	}
	free(copy);
}

static const char *sym_stage(const struct ref_info *ri, const char *symbol)
{
	for (int i = 0; i < ri->nsym; i++)
		if (strcmp(ri->sym[i].name, symbol) == 0)
			return ri->sym[i].stage;
	return "";
}

/* Read ref's record into buf (REFS_VALUE_MAX + 1).  1, 0 absent, -1. */
static int ref_get(struct store *st, const char *ref, char *buf, size_t bufsize, time_t *expires)
{
	size_t len;
	int rc = store_get(st, REFS_NS, ref, strlen(ref), buf, bufsize - 1, &len, expires);

	if (rc == 1)
		buf[len] = '\0';
	return rc;
}

static int ref_ok(const char *ref)
{
	size_t n = strlen(ref);

	if (n == 0 || n > 32)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((ref[i] >= '0' && ref[i] <= '9') || (ref[i] >= 'a' && ref[i] <= 'z') ||
		      (ref[i] >= 'A' && ref[i] <= 'Z')))
			return 0;
	return 1;
}

/* whitelist add --from-ref: what made the transaction fail, as whitelist
 * entries (see portcullisctl(8)). */
static int wl_from_ref(const struct conf *conf, struct store *st, const char *ref,
                       const char *comment, long expires_in)
{
	char *text = xmalloc(REFS_VALUE_MAX + 1), why[64], cm[WLIST_COMMENT_MAX + 1];
	struct ref_info *ri = xmalloc(sizeof(*ri));
	struct {
		enum wl_kind kind;
		char value[ADDR_MAX + 1];
	} add[64];
	int nadd = 0, rc, status = 0;

	if (!ref_ok(ref)) {
		status = err2("whitelist add --from-ref: '%.40s' is not a reference id", ref);
		goto out;
	}
	rc = ref_get(st, ref, text, REFS_VALUE_MAX + 1, NULL);
	if (rc < 0) {
		status = store_failed("whitelist add --from-ref");
		goto out;
	}
	if (rc == 0) {
		fprintf(stderr, "portcullisctl: ref %s: not in the store (kept for ref_keep)\n",
		        ref);
		status = 1;
		goto out;
	}
	ref_parse(text, ri);
#define ADD(k, v)                                                                                  \
	do {                                                                                       \
		int dup_ = 0;                                                                      \
		for (int j_ = 0; j_ < nadd; j_++)                                                  \
			dup_ |= add[j_].kind == (k) && strcmp(add[j_].value, (v)) == 0;            \
		if (!dup_ && nadd < (int)ARRAY_SIZE(add)) {                                        \
			add[nadd].kind = (k);                                                      \
			bcopy_str(add[nadd].value, sizeof(add[0].value), (v));                     \
			nadd++;                                                                    \
		}                                                                                  \
	} while (0)
	for (int i = 0; i < ri->nrcpt; i++) {
		const char *sym = ri->rcpt[i].symbol, *stage;

		if (strcmp(ri->rcpt[i].outcome, "accept") == 0)
			continue;
		stage = sym_stage(ri, sym);
		if (strcmp(stage, "mail") == 0 || strcmp(stage, "header") == 0 ||
		    strcmp(stage, "eoh") == 0 || strcmp(stage, "body") == 0 ||
		    strcmp(stage, "eom") == 0) {
			if (ri->from[0])
				ADD(WL_SENDER, ri->from);
			else
				ADD(WL_CLIENT, ri->client_addr);
		} else if (strcmp(stage, "rcpt") == 0 && strncmp(sym, "greylist.", 9) != 0 &&
		           ri->rcpt[i].addr[0]) {
			ADD(WL_RECIPIENT, ri->rcpt[i].addr);
		} else {
			/* connect, helo, greylisting, a score sum or unknown:
			 * the client */
			ADD(WL_CLIENT, ri->client_addr);
		}
	}
	if (nadd == 0 && strcmp(ri->verdict, "accept") != 0) {
		/* refused at end of message: content checks -> the sender */
		if (ri->from[0])
			ADD(WL_SENDER, ri->from);
		else
			ADD(WL_CLIENT, ri->client_addr);
	}
#undef ADD
	if (nadd == 0) {
		fprintf(stderr, "portcullisctl: ref %s: nothing was refused\n", ref);
		status = 1;
		goto out;
	}
	snprintf(why, sizeof(why), "(from ref %s)", ref);
	if (comment)
		bcopy_str(cm, sizeof(cm), comment);
	else
		snprintf(cm, sizeof(cm), "from ref %s", ref);
	for (int i = 0; i < nadd && status == 0; i++) {
		if (add[i].value[0] == '\0') {
			status = err2("ref %s: no client address to whitelist", ref);
			break;
		}
		status = wl_add_one(conf, st, add[i].kind, add[i].value, cm, expires_in, why);
	}
out:
	free(text);
	free(ri);
	return status;
}

int cmd_whitelist(struct conf *conf, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "comment", required_argument, NULL, 'c' },
		{ "expires", required_argument, NULL, 'e' },
		{ "from-ref", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	const char *comment = NULL, *ref = NULL, *sub;
	long expires_in = 0;
	int opt, kind = -1, rc = 0;
	struct store *st;

	if (argc < 2)
		return err2("whitelist: add, del or list expected");
	sub = argv[1];
	if (strcmp(sub, "add") != 0 && strcmp(sub, "del") != 0 && strcmp(sub, "list") != 0)
		return err2("whitelist: unknown subcommand '%.40s' (add, del, list)", sub);
	argc--;
	argv++;
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			if (strcmp(sub, "add") != 0)
				return err2("whitelist %s: --comment is only for add", sub);
			comment = optarg;
			break;
		case 'e':
			if (strcmp(sub, "add") != 0)
				return err2("whitelist %s: --expires is only for add", sub);
			if (parse_duration(optarg, &expires_in) < 0)
				return err2("whitelist add: --expires '%.40s': want a time like "
				            "3600, 90m, 12h, 30d or 2w",
				            optarg);
			break;
		case 'r':
			if (strcmp(sub, "add") != 0)
				return err2("whitelist %s: --from-ref is only for add", sub);
			ref = optarg;
			break;
		default: return err2("whitelist %s: unknown option %s", sub, argv[optind - 1]);
		}
	}
	argc -= optind;
	argv += optind;
	if (strcmp(sub, "list") == 0) {
		if (argc > 1)
			return err2("whitelist list: at most one KIND");
	} else if (ref != NULL) {
		if (argc != 0)
			return err2("whitelist add --from-ref REF takes no KIND VALUE");
	} else if (argc != 2) {
		return err2("whitelist %s: KIND VALUE expected (KIND: client, network, host, "
		            "sender, domain, recipient)",
		            sub);
	}
	if (argc >= 1 && (kind = wlist_kind_parse(argv[0])) < 0)
		return err2("whitelist %s: unknown kind '%.40s' (client, network, host, sender, "
		            "domain, recipient)",
		            sub, argv[0]);
	if (comment && strlen(comment) > WLIST_COMMENT_MAX)
		return err2("whitelist add: --comment longer than %d bytes", WLIST_COMMENT_MAX);
	if (strcmp(sub, "list") == 0 && !ctl_ns_exists(conf, WLIST_NS))
		return 0;
	if ((st = ctl_store_open_flags(conf, strcmp(sub, "list") == 0 ? STORE_RDONLY : 0)) == NULL)
		return 2;
	if (strcmp(sub, "add") == 0 && ref) {
		rc = wl_from_ref(conf, st, ref, comment, expires_in);
	} else if (strcmp(sub, "add") == 0) {
		rc = wl_add_one(conf, st, (enum wl_kind)kind, argv[1], comment, expires_in, NULL);
	} else if (strcmp(sub, "del") == 0) {
		char canon[WLIST_VALUE_MAX + 1], err[300];
		int d;
		if (wlist_normalise((enum wl_kind)kind, argv[1], canon, sizeof(canon), err,
		                    sizeof(err)) < 0) {
			rc = err2("whitelist del %s: %s", argv[0], err);
		} else if ((d = wlist_del(st, (enum wl_kind)kind, canon)) < 0) {
			rc = store_failed("whitelist del");
		} else if (d == 0) {
			fprintf(stderr, "portcullisctl: whitelist del: %s %s: not found\n", argv[0],
			        canon);
			rc = 1;
		} else {
			printf("deleted %s %s\n", argv[0], canon);
		}
	} else {
		struct recs r = { 0 };
		if (load_ns(st, WLIST_NS, &r) < 0) {
			rc = store_failed("whitelist list");
		} else {
			for (size_t i = 0; i < r.n; i++) {
				struct wl_entry e;
				if (wlist_decode(r.v[i].key, strlen(r.v[i].key), r.v[i].val,
				                 r.v[i].vallen, r.v[i].expires, &e) < 0)
					continue;
				if (kind < 0 || (int)e.kind == kind)
					print_entry(&e);
			}
			recs_free(&r);
		}
	}
	ctl_store_close(conf, st);
	return rc;
}

/* --- expire and stats ---------------------------------------------------- */

int cmd_expire(struct conf *conf, int argc, char **argv)
{
	struct store *st;
	long total = 0;
	int rc = 0;

	(void)argv;
	if (argc != 1)
		return err2("expire takes no arguments");
	if ((st = ctl_store_open(conf)) == NULL)
		return 2;
	for (size_t i = 0; i < ARRAY_SIZE(known_ns) - 1; i++) {
		unsigned cursor = 0;
		long n = 0;
		if (!ctl_ns_exists(conf, known_ns[i])) {
			printf("%-10s 0 expired\n", known_ns[i]);
			continue;
		}
		do {
			int d = store_expire_step(st, known_ns[i], clock_now(), 4096, &cursor);
			if (d < 0) {
				rc = store_failed(known_ns[i]);
				break;
			}
			n += d;
		} while (cursor != 0);
		printf("%-10s %ld expired\n", known_ns[i], n);
		total += n;
	}
	printf("total      %ld expired\n", total);
	ctl_store_close(conf, st);
	return rc;
}

int cmd_stats_store(struct conf *conf, int argc, char **argv)
{
	static const char *const counters[] = { "greylist.passes", "greylist.defers",
		                                "greylist.awl_passes" };
	struct store *st;
	int rc = 0;

	(void)argv;
	if (argc != 1)
		return err2("stats takes no arguments");
	if ((st = ctl_store_open_flags(conf, STORE_RDONLY)) == NULL)
		return 2;
	for (size_t i = 0; i < ARRAY_SIZE(known_ns); i++) {
		long n = 0;
		if (ctl_ns_exists(conf, known_ns[i]) && (n = store_count(st, known_ns[i])) < 0) {
			rc = store_failed(known_ns[i]);
			continue;
		}
		printf("entries.%s %ld\n", known_ns[i], n);
	}
	/* the lock mode every opener of these files (the daemon too) uses */
	printf("store.backend %s\nstore.locking %s\n", store_backend_name(st), store_locking(st));
	for (size_t i = 0; i < ARRAY_SIZE(counters) && ctl_ns_exists(conf, "stats"); i++) {
		char buf[64];
		size_t len;
		int g = store_get(st, "stats", counters[i], strlen(counters[i]), buf,
		                  sizeof(buf) - 1, &len, NULL);
		if (g < 0) {
			rc = store_failed("stats");
			continue;
		}
		if (g == 1) {
			buf[len] = '\0';
			printf("%s %s\n", counters[i], buf);
		}
	}
	ctl_store_close(conf, st);
	return rc;
}

/* --- dump and load ------------------------------------------------------------ */

struct dump_ctx {
	const char *ns;
	FILE *fp;
};

static int dump_one(const void *key, size_t keylen, const void *val, size_t vallen, time_t expires,
                    void *arg)
{
	struct dump_ctx *d = arg;
	char err[200], shown[300];

	if (dump_write(d->fp, d->ns, key, keylen, val, vallen, expires, err, sizeof(err)) < 0) {
		char *k = xstrndup(key, keylen);
		fprintf(stderr, "portcullisctl: dump: %s %s: skipped: %s\n", d->ns,
		        enc_log(shown, sizeof(shown), k, 200), err);
		free(k);
	}
	return 0;
}

/* Stream ns's records to fp in store order (a large greylist is never
 * held in memory). */
static int dump_ns(struct store *st, const char *ns, FILE *fp)
{
	struct dump_ctx d = { ns, fp };

	if (store_traverse(st, ns, dump_one, &d) < 0)
		return store_failed(ns);
	return 0;
}

int cmd_dump(struct conf *conf, int argc, char **argv)
{
	struct store *st;
	int rc = 0;

	for (int i = 1; i < argc; i++) {
		if (argv[i][0] == '-')
			return err2("dump: unknown option %s", argv[i]);
		if (!ctl_ns_exists(conf, argv[i]))
			return err2("dump: no namespace '%.40s' in %s", argv[i],
			            conf->core.state_dir);
	}
	if ((st = ctl_store_open_flags(conf, STORE_RDONLY)) == NULL)
		return 2;
	fputs(DUMP_HEADER, stdout);
	if (argc > 1) {
		for (int i = 1; i < argc && rc == 0; i++)
			rc = dump_ns(st, argv[i], stdout);
	} else {
		/* every namespace file in state_dir, known ones first */
		DIR *d = is_redis(conf) ? NULL : opendir(conf->core.state_dir);
		struct dirent *de;
		for (size_t i = 0; i < ARRAY_SIZE(known_ns) && rc == 0; i++)
			if (ctl_ns_exists(conf, known_ns[i]))
				rc = dump_ns(st, known_ns[i], stdout);
		while (d && rc == 0 && (de = readdir(d)) != NULL) {
			size_t n = strlen(de->d_name);
			char ns[64];
			int known = 0;
			if (n <= 4 || n - 4 >= sizeof(ns) ||
			    strcmp(de->d_name + n - 4, ".tdb") != 0)
				continue;
			memcpy(ns, de->d_name, n - 4);
			ns[n - 4] = '\0';
			for (size_t i = 0; i < ARRAY_SIZE(known_ns); i++)
				known |= strcmp(ns, known_ns[i]) == 0;
			if (!known && strchr(ns, '.') == NULL)
				rc = dump_ns(st, ns, stdout);
		}
		if (d)
			closedir(d);
	}
	if (fflush(stdout) != 0 || ferror(stdout))
		rc = err2("dump: write error: %s", strerror(errno));
	ctl_store_close(conf, st);
	return rc;
}

int cmd_load(struct conf *conf, int argc, char **argv)
{
	const char *name;
	FILE *fp;
	char *line = NULL, err[300];
	size_t cap = 0, nrec = 0, cap_rec = 0;
	ssize_t len;
	long lineno = 0;
	int bad = 0, rc = 0;
	struct dump_rec *recs = NULL;
	struct store *st;
	long loaded = 0, expired = 0;
	time_t now = clock_now();

	if (argc != 2)
		return err2("load: FILE (or - for standard input) expected");
	name = argv[1];
	fp = strcmp(name, "-") == 0 ? stdin : fopen(name, "r");
	if (fp == NULL)
		return err2("load: %s: %s", name, strerror(errno));
	/* check every line first: a file with an error loads nothing */
	while ((len = getline(&line, &cap, fp)) >= 0) {
		struct dump_rec r;
		lineno++;
		if (len > 0 && line[len - 1] == '\n')
			line[len - 1] = '\0';
		int p = dump_parse(line, &r, err, sizeof(err));
		if (p < 0) {
			fprintf(stderr, "portcullisctl: %s:%ld: %s\n", name, lineno, err);
			if (++bad >= 20) {
				fprintf(stderr, "portcullisctl: %s: too many errors, stopped\n",
				        name);
				break;
			}
			continue;
		}
		if (p == 1)
			continue;
		if (nrec == cap_rec) {
			cap_rec = cap_rec ? 2 * cap_rec : 256;
			recs = xrealloc(recs, cap_rec * sizeof(*recs));
		}
		recs[nrec++] = r;
	}
	if (ferror(fp)) {
		fprintf(stderr, "portcullisctl: load: %s: read error\n", name);
		bad++;
	}
	free(line);
	if (fp != stdin)
		fclose(fp);
	if (bad) {
		fprintf(stderr, "portcullisctl: load: %s: nothing loaded\n", name);
		rc = 1;
		goto out;
	}
	if ((st = ctl_store_open(conf)) == NULL) {
		rc = 2;
		goto out;
	}
	for (size_t i = 0; i < nrec; i++) {
		struct dump_rec *r = &recs[i];
		int wl = strcmp(r->ns, WLIST_NS) == 0;
		if (r->expires != 0 && r->expires <= now) {
			expired++;
			continue;
		}
		if (store_put(st, r->ns, r->key, r->keylen, r->val, r->vallen, r->expires,
		              wl ? STORE_DURABLE : STORE_NORMAL) < 0) {
			rc = store_failed(r->ns);
			break;
		}
		loaded++;
	}
	ctl_store_close(conf, st);
	printf("loaded %ld records, skipped %ld already expired\n", loaded, expired);
out:
	for (size_t i = 0; i < nrec; i++)
		dump_rec_free(&recs[i]);
	free(recs);
	return rc;
}

/* --- explain -------------------------------------------------------------------- */

/* Print the lines of the log file that carry ref=REF.  Returns how many. */
static int grep_log(const char *path, const char *ref)
{
	FILE *fp = fopen(path, "r");
	char *line = NULL, *pat = xasprintf("ref=%s", ref);
	size_t cap = 0;
	int n = 0;

	if (fp == NULL) {
		fprintf(stderr, "portcullisctl: explain: %s: %s\n", path, strerror(errno));
		free(pat);
		return -1;
	}
	while (getline(&line, &cap, fp) >= 0) {
		char *p = strstr(line, pat);
		size_t l = strlen(pat);
		if (p == NULL || (p[l] != '\0' && p[l] != ' ' && p[l] != '\n'))
			continue;
		if (n++ == 0)
			printf("log       %s:\n", path);
		fputs(line, stdout);
		if (line[0] && line[strlen(line) - 1] != '\n')
			putchar('\n');
	}
	free(line);
	free(pat);
	fclose(fp);
	return n;
}

int cmd_explain(struct conf *conf, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "log", required_argument, NULL, 'l' },
		{ NULL, 0, NULL, 0 },
	};
	const char *logpath = NULL, *ref;
	char *text;
	struct store *st;
	time_t expires;
	int opt, rc = 0, g = 0, n = 0;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt != 'l')
			return err2("explain: unknown option %s", argv[optind - 1]);
		logpath = optarg;
	}
	if (optind + 1 != argc)
		return err2("explain: REF expected (the id in a reply: \"(ref 4XhQ2b0Kz3)\")");
	ref = argv[optind];
	if (!ref_ok(ref))
		return err2("explain: '%.40s' is not a reference id", ref);
	text = xmalloc(REFS_VALUE_MAX + 1);
	if (ctl_ns_exists(conf, REFS_NS)) {
		if ((st = ctl_store_open_flags(conf, STORE_RDONLY)) == NULL) {
			free(text);
			return 2;
		}
		g = ref_get(st, ref, text, REFS_VALUE_MAX + 1, &expires);
		if (g < 0)
			rc = store_failed("explain");
		ctl_store_close(conf, st);
	}
	if (g == 1) {
		char *line, *save = NULL, t[32];
		printf("ref       %s\n", ref);
		for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
			char *v = strchr(line, '=');
			if (v == NULL)
				continue;
			*v++ = '\0';
			if (strcmp(line, "time") == 0) {
				time_t tt = (time_t)strtoll(v, NULL, 10);
				printf("%-9s %s\n", "time", dump_time(tt, t, sizeof(t)));
			} else if (strcmp(line, "client_addr") == 0 ||
			           strcmp(line, "client_name") == 0) {
				printf("%-9s %s\n", line[7] == 'a' ? "client" : "name",
				       v[0] ? v : "-");
			} else if (strcmp(line, "from") == 0) {
				printf("%-9s <%s>\n", "from", v);
			} else {
				printf("%-9s %s\n", line, v);
			}
		}
		printf("%-9s %s\n", "kept", dump_time(expires, t, sizeof(t)));
	} else if (g == 0) {
		printf("ref %s: not in the store (records are kept for ref_keep)\n", ref);
	}
	if (logpath && (n = grep_log(logpath, ref)) == 0)
		printf("ref %s: not in %s\n", ref, logpath);
	free(text);
	if (rc)
		return rc;
	if (n < 0)
		return 2;
	return g == 1 || n > 0 ? 0 : 1;
}
