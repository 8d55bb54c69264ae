/* lib/store/store.c - the store's front: argument checks, then the backend
 * (see store.h and store_impl.h)
 *
 * The checks that are the same for every backend are made here once: a
 * namespace name, a key of 1..STORE_MAX_KEY bytes, a value of at most
 * STORE_MAX_VALUE, known flags, a write to a read-only store.  Failed
 * calls are counted for the metrics (store_get_stats).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "store_impl.h"
#include "util.h"

struct store {
	const struct store_ops *ops;
	void *be;
	int flags;
	unsigned long long errors; /* atomic */
};

static __thread enum store_err last_err;

void store_set_error(enum store_err e)
{
	last_err = e;
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
	case STORE_ERR_NOSPACE: return "No space left on device";
	case STORE_ERR_ROFS: return "Read-only file system";
	case STORE_ERR_RDONLY: return "store opened read-only";
	case STORE_ERR_DOWN: return "the store's server does not answer";
	case STORE_ERR_SERVER: return "the store's server refused the command";
	}
	return "unknown error";
}

int store_ns_name_ok(const char *ns)
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

void store_hdr_encode(unsigned char *h, time_t expires)
{
	uint64_t x = (uint64_t)(int64_t)expires;
	int i;

	h[0] = STORE_REC_VERSION;
	h[1] = h[2] = h[3] = 0;
	for (i = 0; i < 8; i++)
		h[4 + i] = (unsigned char)(x >> (56 - 8 * i));
}

int store_hdr_decode(const unsigned char *d, size_t n, time_t *expires)
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

static struct store *wrap(const struct store_ops *ops, void *be, int flags)
{
	struct store *st;

	if (be == NULL)
		return NULL;
	st = xcalloc(1, sizeof(*st));
	st->ops = ops;
	st->be = be;
	st->flags = flags;
	return st;
}

struct store *store_open(const char *dir, char *err, size_t errsize)
{
	return store_open_flags(dir, 0, err, errsize);
}

struct store *store_open_flags(const char *dir, int flags, char *err, size_t errsize)
{
	return wrap(&store_tdb_ops, store_tdb_open(dir, flags, err, errsize), flags);
}

struct store *store_open_params(const struct store_params *p, int flags, char *err, size_t errsize)
{
	if (p->backend == STORE_REDIS) {
		if ((flags & ~STORE_RDONLY) != 0) {
			snprintf(err, errsize, "store: bad flags");
			store_set_error(STORE_ERR_INVAL);
			return NULL;
		}
		return wrap(&store_redis_ops, store_redis_open(p, flags, err, errsize), flags);
	}
	return store_open_flags(p->dir, flags, err, errsize);
}

void store_close(struct store *st)
{
	if (st == NULL)
		return;
	st->ops->close(st->be);
	free(st);
}

const char *store_backend_name(const struct store *st)
{
	return st->ops->name;
}

const char *store_where(const struct store *st)
{
	return st->ops->where(st->be);
}

const char *store_locking(const struct store *st)
{
	return st->ops->locking != NULL ? st->ops->locking : "server";
}

int store_ping(struct store *st, char *info, size_t infosize)
{
	return st->ops->ping(st->be, info, infosize);
}

void store_set_clock(struct store *st, time_t (*now)(void *arg), void *arg)
{
	st->ops->set_clock(st->be, now, arg);
}

/* Count a failure (not a caller's mistake) and pass rc on. */
static int counted(struct store *st, int rc)
{
	if (rc < 0 && last_err != STORE_ERR_INVAL && last_err != STORE_ERR_SPACE &&
	    last_err != STORE_ERR_RDONLY)
		__atomic_add_fetch(&st->errors, 1, __ATOMIC_RELAXED);
	return rc;
}

static int fail(enum store_err e)
{
	last_err = e;
	return -1;
}

static int key_ok(const void *key, size_t keylen)
{
	return key != NULL && keylen > 0 && keylen <= STORE_MAX_KEY;
}

int store_ns_hash_size(struct store *st, const char *ns, int hash_size)
{
	return st->ops->ns_hash_size(st->be, ns, hash_size);
}

int store_get(struct store *st, const char *ns, const void *key, size_t keylen, void *buf,
              size_t bufsize, size_t *len, time_t *expires)
{
	if (!key_ok(key, keylen) || !store_ns_name_ok(ns))
		return fail(STORE_ERR_INVAL);
	return counted(st, st->ops->get(st->be, ns, key, keylen, buf, bufsize, len, expires));
}

int store_put(struct store *st, const char *ns, const void *key, size_t keylen, const void *val,
              size_t vallen, time_t expires, int flags)
{
	if (!key_ok(key, keylen) || !store_ns_name_ok(ns) || vallen > STORE_MAX_VALUE ||
	    (vallen > 0 && val == NULL) || (flags & ~STORE_DURABLE) != 0)
		return fail(STORE_ERR_INVAL);
	if (st->flags & STORE_RDONLY)
		return fail(STORE_ERR_RDONLY);
	return counted(st, st->ops->put(st->be, ns, key, keylen, val, vallen, expires, flags));
}

int store_del(struct store *st, const char *ns, const void *key, size_t keylen, int flags)
{
	if (!key_ok(key, keylen) || !store_ns_name_ok(ns) || (flags & ~STORE_DURABLE) != 0)
		return fail(STORE_ERR_INVAL);
	if (st->flags & STORE_RDONLY)
		return fail(STORE_ERR_RDONLY);
	return counted(st, st->ops->del(st->be, ns, key, keylen, flags));
}

int store_traverse(struct store *st, const char *ns, store_traverse_fn fn, void *arg)
{
	if (!store_ns_name_ok(ns))
		return fail(STORE_ERR_INVAL);
	return counted(st, st->ops->traverse(st->be, ns, fn, arg));
}

int store_expire_step(struct store *st, const char *ns, time_t now, unsigned max_chains,
                      unsigned *cursor)
{
	if (!store_ns_name_ok(ns))
		return fail(STORE_ERR_INVAL);
	if (st->flags & STORE_RDONLY)
		return fail(STORE_ERR_RDONLY);
	return counted(st, st->ops->expire_step(st->be, ns, now, max_chains, cursor));
}

int store_seqnum(struct store *st, const char *ns, unsigned long *seq)
{
	if (!store_ns_name_ok(ns))
		return fail(STORE_ERR_INVAL);
	return counted(st, st->ops->seqnum(st->be, ns, seq));
}

long store_count(struct store *st, const char *ns)
{
	long n;

	if (!store_ns_name_ok(ns))
		return fail(STORE_ERR_INVAL);
	n = st->ops->count(st->be, ns);
	(void)counted(st, n < 0 ? -1 : 0);
	return n;
}

int store_ns_limit(struct store *st, const char *ns, long max_records)
{
	return st->ops->ns_limit(st->be, ns, max_records);
}

int store_batch(struct store *st, struct store_op *ops, size_t n)
{
	size_t bad = 0;
	int failed;

	for (size_t i = 0; i < n; i++) {
		struct store_op *op = &ops[i];
		int ok = key_ok(op->key, op->keylen) && store_ns_name_ok(op->ns);

		if (op->type == STORE_OP_CAS)
			ok = ok && op->vallen <= STORE_MAX_VALUE && (op->vallen == 0 || op->val) &&
			     (op->expect != NULL || op->expectlen == 0);
		if (!ok) {
			/* refuse the whole batch: a caller's mistake */
			for (size_t j = 0; j < n; j++) {
				ops[j].rc = -1;
				ops[j].err = STORE_ERR_INVAL;
			}
			last_err = STORE_ERR_INVAL;
			return (int)n;
		}
		if (op->type == STORE_OP_CAS && (st->flags & STORE_RDONLY))
			bad++;
	}
	if (bad) {
		for (size_t j = 0; j < n; j++) {
			ops[j].rc = -1;
			ops[j].err = STORE_ERR_RDONLY;
		}
		last_err = STORE_ERR_RDONLY;
		return (int)n;
	}
	failed = st->ops->batch(st->be, ops, n);
	if (failed > 0) {
		for (size_t i = 0; i < n; i++)
			if (ops[i].rc < 0) {
				last_err = ops[i].err;
				break;
			}
		(void)counted(st, -1);
	}
	return failed;
}

void store_get_stats(struct store *st, struct store_stats *out)
{
	st->ops->stats(st->be, out);
	out->errors = __atomic_load_n(&st->errors, __ATOMIC_RELAXED);
}
