/* lib/store.c - the TDB backend of the store (see store.h)
 *
 * Threading: one struct ns_file per namespace, created on first use and never
 * freed before store_close().  The slot table is append-only: a slot is filled
 * under st->mu and published by an atomic increment of st->nns, so lookups
 * scan it without locking.  Every TDB call on a file happens with that file's
 * mutex held (TDB contexts are not thread-safe).  Walks (traverse, count,
 * expiry) take the mutex for one hash chain at a time.
 *
 * Errors: -1 with a thread-local typed error.  Corruption (a file that is
 * not a TDB at open, or TDB_ERR_CORRUPT during use) is logged, the file is
 * renamed aside and an empty one created, so the caller keeps working.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <tdb.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "store.h"
#include "util.h"

struct ns_file {
	char name[STORE_MAX_NS_NAME + 1];
	char *path;
	int hash_size;
	pthread_mutex_t mu;      /* serialises every use of tdb */
	struct tdb_context *tdb; /* NULL until the first successful open */
};

struct store {
	char *dir;
	pthread_mutex_t mu; /* slot creation */
	int nns;            /* published slots; atomic */
	struct ns_file ns[STORE_MAX_NS];
	time_t (*now)(void *arg);
	void *now_arg;
};

static __thread enum store_err last_err;

static int fail_with(enum store_err e)
{
	last_err = e;
	return -1;
}

enum store_err store_last_error(void)
{
	return last_err;
}

const char *store_strerror(enum store_err e)
{
	switch (e) {
	case STORE_OK: return "no error";
	case STORE_ERR_IO: return "I/O or locking error";
	case STORE_ERR_CORRUPT: return "file corrupt (moved aside and recreated)";
	case STORE_ERR_INVAL: return "invalid argument";
	case STORE_ERR_SPACE: return "value larger than the buffer";
	case STORE_ERR_VERSION: return "record of an unknown format version";
	case STORE_ERR_FULL: return "too many namespaces";
	case STORE_ERR_NOMEM: return "out of memory";
	}
	return "unknown error";
}

static time_t default_now(void *arg)
{
	(void)arg;
	return clock_now(); /* time(NULL), or the tests' clock */
}

/* TDB's injected logger: one line per message through lib/log. */
static void tdb_logger(struct tdb_context *tdb, enum tdb_debug_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void tdb_logger(struct tdb_context *tdb, enum tdb_debug_level level, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	size_t n;
	enum log_level lvl;

	(void)tdb;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	switch (level) {
	case TDB_DEBUG_FATAL:
	case TDB_DEBUG_ERROR: lvl = LOG_LVL_ERR; break;
	case TDB_DEBUG_WARNING: lvl = LOG_LVL_WARN; break;
	default: lvl = LOG_LVL_DEBUG; break;
	}
	log_msg(lvl, "store: tdb: %s", buf);
}

static const struct tdb_logging_context log_ctx = { tdb_logger, NULL };

static int ns_name_ok(const char *ns)
{
	size_t i;

	if (ns == NULL || ns[0] == '\0' || ns[0] == '.' || ns[0] == '-')
		return 0;
	for (i = 0; ns[i] != '\0'; i++) {
		char c = ns[i];
		if (i >= STORE_MAX_NS_NAME)
			return 0;
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

struct store *store_open(const char *dir, char *err, size_t errsize)
{
	struct store *st;
	struct stat sb;

	if (dir == NULL || dir[0] == '\0') {
		snprintf(err, errsize, "store: no state directory given");
		last_err = STORE_ERR_INVAL;
		return NULL;
	}
	if (stat(dir, &sb) < 0) {
		snprintf(err, errsize, "store: %s: %s", dir, strerror(errno));
		last_err = STORE_ERR_IO;
		return NULL;
	}
	if (!S_ISDIR(sb.st_mode)) {
		snprintf(err, errsize, "store: %s: not a directory", dir);
		last_err = STORE_ERR_IO;
		return NULL;
	}
	if (access(dir, R_OK | W_OK | X_OK) < 0) {
		snprintf(err, errsize, "store: %s: %s", dir, strerror(errno));
		last_err = STORE_ERR_IO;
		return NULL;
	}
	st = xcalloc(1, sizeof(*st));
	st->dir = xstrdup(dir);
	pthread_mutex_init(&st->mu, NULL);
	st->now = default_now;
	return st;
}

void store_close(struct store *st)
{
	int i, n;

	if (st == NULL)
		return;
	n = __atomic_load_n(&st->nns, __ATOMIC_ACQUIRE);
	for (i = 0; i < n; i++) {
		struct ns_file *f = &st->ns[i];
		if (f->tdb != NULL)
			tdb_close(f->tdb);
		pthread_mutex_destroy(&f->mu);
		free(f->path);
	}
	pthread_mutex_destroy(&st->mu);
	free(st->dir);
	free(st);
}

void store_set_clock(struct store *st, time_t (*now)(void *arg), void *arg)
{
	st->now = now != NULL ? now : default_now;
	st->now_arg = arg;
}

/* Find (or create) namespace ns's slot.  NULL with the error set. */
static struct ns_file *ns_slot(struct store *st, const char *ns)
{
	int i, n;
	struct ns_file *f;

	if (st == NULL || !ns_name_ok(ns)) {
		last_err = STORE_ERR_INVAL;
		return NULL;
	}
	n = __atomic_load_n(&st->nns, __ATOMIC_ACQUIRE);
	for (i = 0; i < n; i++)
		if (strcmp(st->ns[i].name, ns) == 0)
			return &st->ns[i];
	pthread_mutex_lock(&st->mu);
	n = st->nns;
	for (i = 0; i < n; i++)
		if (strcmp(st->ns[i].name, ns) == 0) {
			pthread_mutex_unlock(&st->mu);
			return &st->ns[i];
		}
	if (n >= STORE_MAX_NS) {
		pthread_mutex_unlock(&st->mu);
		last_err = STORE_ERR_FULL;
		return NULL;
	}
	f = &st->ns[n];
	bcopy_str(f->name, sizeof(f->name), ns);
	f->path = xasprintf("%s/%s.tdb", st->dir, ns);
	f->hash_size = STORE_HASH_DEFAULT;
	f->tdb = NULL;
	pthread_mutex_init(&f->mu, NULL);
	__atomic_store_n(&st->nns, n + 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&st->mu);
	return f;
}

int store_ns_hash_size(struct store *st, const char *ns, int hash_size)
{
	struct ns_file *f;
	int rc = 0;

	if (hash_size < 1)
		return fail_with(STORE_ERR_INVAL);
	if ((f = ns_slot(st, ns)) == NULL)
		return -1;
	pthread_mutex_lock(&f->mu);
	if (f->tdb != NULL)
		rc = fail_with(STORE_ERR_INVAL);
	else
		f->hash_size = hash_size;
	pthread_mutex_unlock(&f->mu);
	return rc;
}

/* Rename f's file to PATH.corrupt-TIMESTAMP.  0 or -1. */
static int move_aside(struct ns_file *f)
{
	char stamp[32], *aside = NULL;
	time_t t = time(NULL);
	struct tm tm;
	int i, rc = -1;

	gmtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%S", &tm);
	for (i = 0; i < 100; i++) {
		struct stat sb;
		free(aside);
		aside = i == 0 ? xasprintf("%s.corrupt-%s", f->path, stamp)
		               : xasprintf("%s.corrupt-%s-%d", f->path, stamp, i);
		if (lstat(aside, &sb) < 0 && errno == ENOENT)
			break;
	}
	if (rename(f->path, aside) == 0) {
		log_msg(LOG_LVL_ERR, "store: %s is corrupt: moved aside to %s, starting empty",
		        f->path, aside);
		rc = 0;
	} else {
		log_msg(LOG_LVL_ERR, "store: %s is corrupt and cannot be moved aside: %s", f->path,
		        strerror(errno));
	}
	free(aside);
	return rc;
}

static struct tdb_context *tdb_open_file(struct ns_file *f, int create)
{
	/* TDB_SEQNUM: every write bumps a counter in the file's header, so a
	 * reader can tell cheaply that a namespace changed (store_seqnum) */
	return tdb_open_ex(f->path, f->hash_size, TDB_INCOMPATIBLE_HASH | TDB_SEQNUM,
	                   O_RDWR | (create ? O_CREAT : 0), 0660, &log_ctx, NULL);
}

/* Open f's file if it is not open yet; f->mu held.  0 or -1.
 *
 * Never open an existing file with O_CREAT first: tdb_open_ex() silently
 * reinitialises a file whose header is not a TDB header when O_CREAT is
 * given, which would destroy it without a trace.  So open without it; EIO
 * then means "exists but is not a (usable) TDB", and the file is moved aside
 * before an empty one is created. */
static int ns_ensure_open(struct ns_file *f)
{
	struct stat sb;
	int e;

	if (f->tdb != NULL)
		return 0;
	errno = 0;
	/* a new file: O_CREAT at once (TDB's open lock makes a concurrent
	 * creator in another process safe); this also avoids TDB's warning */
	if (lstat(f->path, &sb) < 0 && errno == ENOENT)
		e = ENOENT;
	else if ((f->tdb = tdb_open_file(f, 0)) != NULL)
		return 0;
	else
		e = errno;
	if (e == ENOENT) {
		errno = 0;
		f->tdb = tdb_open_file(f, 1);
		if (f->tdb != NULL)
			return 0;
		e = errno;
	} else if (e == EIO && lstat(f->path, &sb) == 0 && S_ISREG(sb.st_mode)) {
		/* An empty file is a TDB that was never initialised; anything
		 * else that fails the header check is corrupt.  Other errors
		 * (permissions, a directory in the way, no descriptors) are not
		 * corruption and must not cost the data. */
		if (sb.st_size == 0 || move_aside(f) == 0) {
			errno = 0;
			f->tdb = tdb_open_file(f, 1);
			if (f->tdb != NULL)
				return 0;
			e = errno;
		}
	}
	log_msg(LOG_LVL_ERR, "store: cannot open %s: %s", f->path, strerror(e ? e : EIO));
	return fail_with(STORE_ERR_IO);
}

/* Lock the namespace's file and make sure it is open.  NULL with the error
 * set (and nothing locked) on failure. */
static struct ns_file *ns_lock(struct store *st, const char *ns)
{
	struct ns_file *f = ns_slot(st, ns);

	if (f == NULL)
		return NULL;
	pthread_mutex_lock(&f->mu);
	if (ns_ensure_open(f) < 0) {
		pthread_mutex_unlock(&f->mu);
		return NULL;
	}
	return f;
}

/* Map the last TDB error of f to a store error; on corruption replace the
 * file by an empty one.  f->mu held.  Always returns -1. */
static int tdb_fail(struct ns_file *f, const char *what)
{
	enum TDB_ERROR te = tdb_error(f->tdb);

	log_msg(LOG_LVL_ERR, "store: %s %s: %s", what, f->path, tdb_errorstr(f->tdb));
	switch (te) {
	case TDB_ERR_CORRUPT:
		tdb_close(f->tdb);
		f->tdb = NULL;
		if (move_aside(f) == 0)
			(void)ns_ensure_open(f);
		return fail_with(STORE_ERR_CORRUPT);
	case TDB_ERR_OOM: return fail_with(STORE_ERR_NOMEM);
	case TDB_ERR_EINVAL: return fail_with(STORE_ERR_INVAL);
	default: return fail_with(STORE_ERR_IO);
	}
}

static int key_ok(const void *key, size_t keylen)
{
	return key != NULL && keylen > 0 && keylen <= STORE_MAX_KEY;
}

static void hdr_encode(unsigned char *h, time_t expires)
{
	uint64_t x = (uint64_t)(int64_t)expires;
	int i;

	h[0] = STORE_REC_VERSION;
	h[1] = h[2] = h[3] = 0;
	for (i = 0; i < 8; i++)
		h[4 + i] = (unsigned char)(x >> (56 - 8 * i));
}

/* Decode a record header.  0 ok, -1 unknown version or short record. */
static int hdr_decode(const unsigned char *d, size_t n, time_t *expires)
{
	uint64_t x = 0;
	int i;

	if (n < STORE_HDR_SIZE || d[0] != STORE_REC_VERSION)
		return -1;
	for (i = 0; i < 8; i++)
		x = (x << 8) | d[4 + i];
	*expires = (time_t)(int64_t)x;
	return 0;
}

static int is_expired(time_t expires, time_t now)
{
	return expires != 0 && expires <= now;
}

struct get_ctx {
	time_t now;
	void *buf;
	size_t bufsize;
	size_t *len;
	time_t *expires;
};

/* tdb_parse_record() parser: 1 found, 0 expired, -2 version, -3 space. */
static int get_parser(TDB_DATA key, TDB_DATA data, void *arg)
{
	struct get_ctx *c = arg;
	time_t exp;
	size_t vlen;

	(void)key;
	if (hdr_decode(data.dptr, data.dsize, &exp) < 0)
		return -2;
	if (is_expired(exp, c->now))
		return 0;
	vlen = data.dsize - STORE_HDR_SIZE;
	if (c->len != NULL)
		*c->len = vlen;
	if (c->expires != NULL)
		*c->expires = exp;
	if (vlen > c->bufsize)
		return -3;
	if (vlen > 0)
		memcpy(c->buf, data.dptr + STORE_HDR_SIZE, vlen);
	return 1;
}

int store_get(struct store *st, const char *ns, const void *key, size_t keylen, void *buf,
              size_t bufsize, size_t *len, time_t *expires)
{
	struct get_ctx c = { 0, buf, buf != NULL ? bufsize : 0, len, expires };
	struct ns_file *f;
	TDB_DATA k = { (unsigned char *)(uintptr_t)key, keylen };
	int rc;

	if (!key_ok(key, keylen))
		return fail_with(STORE_ERR_INVAL);
	c.now = st->now(st->now_arg);
	if ((f = ns_lock(st, ns)) == NULL)
		return -1;
	rc = tdb_parse_record(f->tdb, k, get_parser, &c);
	if (rc == -1) {
		if (tdb_error(f->tdb) == TDB_ERR_NOEXIST)
			rc = 0;
		else
			rc = tdb_fail(f, "read");
	} else if (rc == -2) {
		rc = fail_with(STORE_ERR_VERSION);
	} else if (rc == -3) {
		rc = fail_with(STORE_ERR_SPACE);
	}
	pthread_mutex_unlock(&f->mu);
	return rc;
}

/* STORE_DURABLE: a TDB transaction around one write; f->mu held.  0 or -1
 * with the TDB error left in the context.  The commit fsyncs. */
static int durable_begin(struct ns_file *f)
{
	return tdb_transaction_start(f->tdb);
}

static int durable_end(struct ns_file *f, int ok)
{
	if (!ok) {
		(void)tdb_transaction_cancel(f->tdb);
		return -1;
	}
	return tdb_transaction_commit(f->tdb);
}

int store_put(struct store *st, const char *ns, const void *key, size_t keylen, const void *val,
              size_t vallen, time_t expires, int flags)
{
	unsigned char small[512], *rec;
	struct ns_file *f;
	TDB_DATA k = { (unsigned char *)(uintptr_t)key, keylen }, d;
	int rc = 0;

	if (!key_ok(key, keylen) || vallen > STORE_MAX_VALUE || (vallen > 0 && val == NULL) ||
	    (flags & ~STORE_DURABLE) != 0)
		return fail_with(STORE_ERR_INVAL);
	rec = STORE_HDR_SIZE + vallen <= sizeof(small) ? small : xmalloc(STORE_HDR_SIZE + vallen);
	hdr_encode(rec, expires);
	if (vallen > 0)
		memcpy(rec + STORE_HDR_SIZE, val, vallen);
	d.dptr = rec;
	d.dsize = STORE_HDR_SIZE + vallen;
	if ((f = ns_lock(st, ns)) == NULL) {
		rc = -1;
		goto out;
	}
	if (flags & STORE_DURABLE) {
		if (durable_begin(f) < 0) {
			rc = tdb_fail(f, "transaction start on");
		} else {
			int ok = tdb_store(f->tdb, k, d, TDB_REPLACE) == 0;
			if (durable_end(f, ok) < 0)
				rc = tdb_fail(f, "durable write to");
		}
	} else if (tdb_store(f->tdb, k, d, TDB_REPLACE) < 0) {
		rc = tdb_fail(f, "write to");
	}
	pthread_mutex_unlock(&f->mu);
out:
	if (rec != small)
		free(rec);
	return rc;
}

int store_del(struct store *st, const char *ns, const void *key, size_t keylen, int flags)
{
	struct ns_file *f;
	TDB_DATA k = { (unsigned char *)(uintptr_t)key, keylen };
	int rc = 1;

	if (!key_ok(key, keylen) || (flags & ~STORE_DURABLE) != 0)
		return fail_with(STORE_ERR_INVAL);
	if ((f = ns_lock(st, ns)) == NULL)
		return -1;
	if (flags & STORE_DURABLE) {
		if (durable_begin(f) < 0) {
			rc = tdb_fail(f, "transaction start on");
		} else {
			int r = tdb_delete(f->tdb, k);
			int absent = r < 0 && tdb_error(f->tdb) == TDB_ERR_NOEXIST;
			if (durable_end(f, r == 0) < 0 && !absent)
				rc = tdb_fail(f, "durable delete in");
			else if (absent)
				rc = 0;
		}
	} else if (tdb_delete(f->tdb, k) < 0) {
		if (tdb_error(f->tdb) == TDB_ERR_NOEXIST)
			rc = 0;
		else
			rc = tdb_fail(f, "delete in");
	}
	pthread_mutex_unlock(&f->mu);
	return rc;
}

int store_seqnum(struct store *st, const char *ns, unsigned long *seq)
{
	struct ns_file *f;

	if ((f = ns_lock(st, ns)) == NULL)
		return -1;
	*seq = (unsigned long)(unsigned)tdb_get_seqnum(f->tdb);
	pthread_mutex_unlock(&f->mu);
	return 0;
}

/* --- chain-by-chain walks ------------------------------------------------ */

struct rec {
	unsigned char *key;
	size_t keylen;
	unsigned char *val;
	size_t vallen;
	time_t expires;
};

struct walk {
	time_t now;
	int want_expired; /* collect expired records (expiry) or live ones */
	int copy_val;
	long nlive;
	struct rec *recs;
	size_t n, cap;
};

static int walk_fn(struct tdb_context *tdb, TDB_DATA key, TDB_DATA data, void *arg)
{
	struct walk *w = arg;
	struct rec *r;
	time_t exp;
	int expired;

	(void)tdb;
	if (hdr_decode(data.dptr, data.dsize, &exp) < 0)
		return 0; /* unknown version: neither listed nor expired */
	expired = is_expired(exp, w->now);
	if (!expired)
		w->nlive++;
	if (expired != w->want_expired || (!w->copy_val && !w->want_expired))
		return 0;
	if (w->n == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 16;
		w->recs = xrealloc(w->recs, w->cap * sizeof(*w->recs));
	}
	r = &w->recs[w->n++];
	r->key = xmalloc(key.dsize ? key.dsize : 1);
	memcpy(r->key, key.dptr, key.dsize);
	r->keylen = key.dsize;
	r->expires = exp;
	r->vallen = w->copy_val ? data.dsize - STORE_HDR_SIZE : 0;
	r->val = xmalloc(r->vallen ? r->vallen : 1);
	if (r->vallen)
		memcpy(r->val, data.dptr + STORE_HDR_SIZE, r->vallen);
	return 0;
}

static void walk_reset(struct walk *w)
{
	size_t i;

	for (i = 0; i < w->n; i++) {
		free(w->recs[i].key);
		free(w->recs[i].val);
	}
	w->n = 0;
}

/* Walk chain `chain` of f into w, holding f->mu only for this chain.
 * Returns 1 if the chain was walked, 0 past the last chain, -1 on error. */
static int walk_chain(struct store *st, const char *ns, unsigned chain, struct walk *w,
                      unsigned *nchains)
{
	struct ns_file *f;
	int rc = 1;

	if ((f = ns_lock(st, ns)) == NULL)
		return -1;
	*nchains = (unsigned)tdb_hash_size(f->tdb);
	if (chain >= *nchains) {
		rc = 0;
	} else if (tdb_traverse_chain(f->tdb, chain, walk_fn, w) < 0) {
		rc = tdb_fail(f, "walk of");
	} else if (w->want_expired) {
		size_t i;
		/* Delete under the key's chain lock after checking again: another
		 * process may have renewed the record since it was copied. */
		for (i = 0; i < w->n; i++) {
			TDB_DATA k = { w->recs[i].key, w->recs[i].keylen };
			TDB_DATA d;
			time_t exp;
			if (tdb_chainlock(f->tdb, k) < 0) {
				rc = tdb_fail(f, "lock of");
				break;
			}
			d = tdb_fetch(f->tdb, k);
			if (d.dptr != NULL && hdr_decode(d.dptr, d.dsize, &exp) == 0 &&
			    is_expired(exp, w->now) && tdb_delete(f->tdb, k) == 0)
				w->recs[i].vallen = 1; /* mark: deleted */
			else
				w->recs[i].vallen = 0;
			free(d.dptr);
			tdb_chainunlock(f->tdb, k);
		}
	}
	pthread_mutex_unlock(&f->mu);
	return rc;
}

int store_traverse(struct store *st, const char *ns, store_traverse_fn fn, void *arg)
{
	struct walk w = { 0 };
	unsigned chain, nchains = 1;
	int count = 0, stop = 0, rc;

	if (st == NULL)
		return fail_with(STORE_ERR_INVAL);
	w.now = st->now(st->now_arg);
	w.copy_val = 1;
	for (chain = 0; chain < nchains && !stop; chain++) {
		size_t i;
		rc = walk_chain(st, ns, chain, &w, &nchains);
		if (rc < 0) {
			walk_reset(&w);
			free(w.recs);
			return -1;
		}
		for (i = 0; i < w.n && !stop; i++) {
			struct rec *r = &w.recs[i];
			count++;
			if (fn != NULL && fn(r->key, r->keylen, r->val, r->vallen, r->expires, arg))
				stop = 1;
		}
		walk_reset(&w);
	}
	free(w.recs);
	return count;
}

long store_count(struct store *st, const char *ns)
{
	struct walk w = { 0 };
	unsigned chain, nchains = 1;

	if (st == NULL)
		return fail_with(STORE_ERR_INVAL);
	w.now = st->now(st->now_arg);
	for (chain = 0; chain < nchains; chain++)
		if (walk_chain(st, ns, chain, &w, &nchains) < 0)
			return -1;
	return w.nlive;
}

int store_expire_step(struct store *st, const char *ns, time_t now, unsigned max_chains,
                      unsigned *cursor)
{
	struct walk w = { 0 };
	unsigned chain, nchains = 1, done;
	int deleted = 0, rc = 0;

	if (st == NULL || cursor == NULL || max_chains == 0)
		return fail_with(STORE_ERR_INVAL);
	w.now = now;
	w.want_expired = 1;
	chain = *cursor;
	for (done = 0; done < max_chains; done++, chain++) {
		size_t i;
		rc = walk_chain(st, ns, chain, &w, &nchains);
		for (i = 0; i < w.n; i++)
			deleted += w.recs[i].vallen == 1;
		walk_reset(&w);
		if (rc <= 0)
			break;
	}
	free(w.recs);
	if (rc < 0)
		return -1;
	/* Past the end (or the file shrank): the pass is complete. */
	*cursor = (rc == 0 || chain >= nchains) ? 0 : chain;
	return deleted;
}
