/* lib/maint.h - background upkeep of the store: expiry in bounded steps
 *
 * One thread walks the namespaces' hash chains a few at a time
 * (store_expire_step) so that expired greylist, auto-whitelist, whitelist,
 * refs, verify cache and rate limit records go away without ever holding a file for long: mail
 * threads wait at most for one chain.  It also runs the flush callbacks
 * registered by modules (counters kept in memory and added to the store
 * now and then).  The cadence is MAINT_STEP_MS per step; a whole pass over
 * a file of N chains takes N / MAINT_CHAINS steps.
 */
#ifndef PORTCULLIS_MAINT_H
#define PORTCULLIS_MAINT_H

#include <stddef.h>

struct store;

#define MAINT_STEP_MS 100
#define MAINT_CHAINS  128

/* The namespaces that carry expiring records (also the ones whose sizes
 * the metrics show). */
#define MAINT_NNS 7
extern const char *const maint_ns[MAINT_NNS];

/* Start the thread for st.  Returns 0, or -1 with a message in err. */
int maint_start(struct store *st, char *err, size_t errsize);

/* Stop it and wait for it (runs the flush callbacks a last time).  A no-op
 * when it was not started. */
void maint_stop(void);

/* One expiry step over every namespace now, from the caller's thread (what
 * the thread does each MAINT_STEP_MS; for tests and portcullisctl expire
 * with max_chains 0 = a whole pass).  Returns the records deleted or -1. */
long maint_expire(struct store *st, unsigned max_chains);

/* Register fn(arg, st) to be called every few seconds and at maint_stop(). */
void maint_on_flush(void (*fn)(void *arg, struct store *st), void *arg);

#endif
