/* lib/maint.c - background upkeep of the store; see maint.h */
#include "maint.h"
#include "log.h"
#include "store.h"
#include "util.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

const char *const maint_ns[MAINT_NNS] = { "greylist", "awl", "whitelist", "refs" };
#define NNS MAINT_NNS

#define FLUSH_EVERY 50 /* steps: 5 s */
#define MAX_FLUSH   8

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t tid;
	int running, stop;
	struct store *st;
	unsigned cursor[NNS];
	int nflush;
	struct flush {
		void (*fn)(void *arg, struct store *st);
		void *arg;
	} flush[MAX_FLUSH];
} M = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

void maint_on_flush(void (*fn)(void *arg, struct store *st), void *arg)
{
	pthread_mutex_lock(&M.lock);
	for (int i = 0; i < M.nflush; i++)
		if (M.flush[i].fn == fn && M.flush[i].arg == arg)
			goto out;
	if (M.nflush < MAX_FLUSH)
		M.flush[M.nflush++] = (struct flush){ fn, arg };
out:
	pthread_mutex_unlock(&M.lock);
}

static void run_flush(struct store *st)
{
	struct flush f[MAX_FLUSH];
	int n;

	pthread_mutex_lock(&M.lock);
	n = M.nflush;
	memcpy(f, M.flush, sizeof(f));
	pthread_mutex_unlock(&M.lock);
	for (int i = 0; i < n; i++)
		f[i].fn(f[i].arg, st);
}

/* One step over each namespace.  A failing namespace does not stop the
 * others; the store has logged the failure (once per event, not at every
 * step: this runs ten times a second). */
static long expire_all(struct store *st, unsigned *cursor, unsigned max_chains)
{
	long total = 0;
	int failed = 0;

	for (size_t i = 0; i < NNS; i++) {
		int n;

		do {
			n = store_expire_step(st, maint_ns[i], clock_now(),
			                      max_chains ? max_chains : 4096, &cursor[i]);
			if (n < 0) {
				cursor[i] = 0;
				failed = 1;
				break;
			}
			total += n;
		} while (max_chains == 0 && cursor[i] != 0);
	}
	return failed ? -1 : total;
}

long maint_expire(struct store *st, unsigned max_chains)
{
	unsigned cursor[NNS] = { 0 };

	return expire_all(st, cursor, max_chains);
}

static void *maint_thread(void *arg)
{
	unsigned steps = 0;

	(void)arg;
	pthread_mutex_lock(&M.lock);
	while (!M.stop) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += MAINT_STEP_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&M.cond, &M.lock, &ts);
		if (M.stop)
			break;
		pthread_mutex_unlock(&M.lock);
		expire_all(M.st, M.cursor, MAINT_CHAINS);
		if (++steps % FLUSH_EVERY == 0)
			run_flush(M.st);
		pthread_mutex_lock(&M.lock);
	}
	pthread_mutex_unlock(&M.lock);
	run_flush(M.st);
	return NULL;
}

int maint_start(struct store *st, char *err, size_t errsize)
{
	pthread_mutex_lock(&M.lock);
	M.st = st;
	M.stop = 0;
	if (pthread_create(&M.tid, NULL, maint_thread, NULL) != 0) {
		pthread_mutex_unlock(&M.lock);
		snprintf(err, errsize, "cannot start the store maintenance thread");
		return -1;
	}
	M.running = 1;
	pthread_mutex_unlock(&M.lock);
	return 0;
}

void maint_stop(void)
{
	pthread_mutex_lock(&M.lock);
	if (!M.running) {
		pthread_mutex_unlock(&M.lock);
		return;
	}
	M.stop = 1;
	pthread_cond_signal(&M.cond);
	pthread_mutex_unlock(&M.lock);
	pthread_join(M.tid, NULL);
	M.running = 0;
}
