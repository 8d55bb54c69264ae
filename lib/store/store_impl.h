/* lib/store/store_impl.h - the ops table behind lib/store/store.h
 *
 * A backend is one const struct store_ops (designated initialisers) and an
 * open function that returns its own handle; store.c dispatches each public
 * call to it.  Every op has the contract of the public function of the same
 * name in store.h; arguments have been checked by store.c where the check
 * is the same for all backends (namespace name, key and value sizes,
 * flags, read-only store).  Errors are set with store_set_error().
 */
#ifndef PORTCULLIS_STORE_IMPL_H
#define PORTCULLIS_STORE_IMPL_H

#include "store.h"

struct store_ops {
	const char *name;
	const char *locking; /* store_locking(); NULL: "server" */
	void (*close)(void *be);
	void (*set_clock)(void *be, time_t (*now)(void *arg), void *arg);
	int (*ns_hash_size)(void *be, const char *ns, int hash_size);
	int (*get)(void *be, const char *ns, const void *key, size_t keylen, void *buf,
	           size_t bufsize, size_t *len, time_t *expires);
	int (*put)(void *be, const char *ns, const void *key, size_t keylen, const void *val,
	           size_t vallen, time_t expires, int flags);
	int (*del)(void *be, const char *ns, const void *key, size_t keylen, int flags);
	int (*traverse)(void *be, const char *ns, store_traverse_fn fn, void *arg);
	int (*expire_step)(void *be, const char *ns, time_t now, unsigned max_chains,
	                   unsigned *cursor);
	int (*seqnum)(void *be, const char *ns, unsigned long *seq);
	long (*count)(void *be, const char *ns);
	int (*ns_limit)(void *be, const char *ns, long max_records);
	int (*batch)(void *be, struct store_op *ops, size_t n);
	int (*ping)(void *be, char *info, size_t infosize);
	void (*stats)(void *be, struct store_stats *out);
	const char *(*where)(void *be);
};

extern const struct store_ops store_tdb_ops;
extern const struct store_ops store_redis_ops;

/* The backends' open functions: their handle, or NULL with err filled. */
void *store_tdb_open(const char *dir, int flags, char *err, size_t errsize);
void *store_redis_open(const struct store_params *p, int flags, char *err, size_t errsize);

/* Set the calling thread's store error (store_last_error()). */
void store_set_error(enum store_err e);

/* Is ns a valid namespace name (lowercase letters, digits, '_', '-', at
 * most STORE_MAX_NS_NAME, not starting with '.' or '-')? */
int store_ns_name_ok(const char *ns);

/* The 12-byte record header (store.h): encode; decode returns 0, or -1 for
 * a short record or an unknown version. */
void store_hdr_encode(unsigned char *h, time_t expires);
int store_hdr_decode(const unsigned char *d, size_t n, time_t *expires);

#endif
