/* contrib/bench/store-bench.c - the greylist store with a million entries
 *
 *   store-bench DIR [-n ENTRIES] [-d SECONDS] [-t THREADS] [-u UPDATE_PCT]
 *
 * Fills namespace "greylist" of a fresh store in DIR with ENTRIES records
 * in the real format (lib/store/grey.h: keys "ip:NET SENDER RCPT", 32-byte
 * values), half of them already expired, then measures, with THREADS
 * threads (default 2) each doing random lookups and UPDATE_PCT% updates of
 * existing keys for SECONDS:
 *   phase "raw-tdb"   the same records and operations on a plain TDB file
 *                     (same hash size, one mutex), without lib/store, with
 *                     TDB's default mmap and fcntl locks, as the store:
 *                     what the store layer costs;
 *   phase "baseline"  the store, nothing else runs;
 *   phase "expiry"    a third thread walks the whole file once with
 *                     store_expire_step (128 chains per step, back to back:
 *                     far faster than the milter's background pace of 128
 *                     chains per 100 ms) and removes the expired half; the
 *                     phase lasts until that pass is complete.
 * For each phase: lookups/s, updates/s, and the latency of single
 * operations (median, p99, p99.9, max): the max during "expiry" is the
 * longest stall expiry caused a mail thread.  Also the operations per
 * CPU-second of the whole process (user + system time, getrusage: the
 * figure to compare on a busy machine), the resident memory at the end of
 * each phase (VmRSS: it counts the pages of a mapped file the process
 * touched), the fill rate, the expiry pass (time, records removed) and the
 * file size.  Prints key=value lines.  No thresholds: a benchmark, not a
 * test.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <fcntl.h>
#include <tdb.h>

#include "grey.h"
#include "store.h"
#include "util.h"

static struct store *st;
static struct tdb_context *raw; /* the baseline: TDB without lib/store */
static pthread_mutex_t raw_lock = PTHREAD_MUTEX_INITIALIZER;
static long entries = 1000000;
static int seconds = 10, nthreads = 2, update_pct = 20;
static volatile int stop;
static time_t now0;

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* CPU seconds (user + system) of the whole process so far */
static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

/* resident memory now, in MB, "ALL(anon=A,file=F)": VmRSS, of
 * which RssAnon (the process's own) and RssFile (pages of mapped files,
 * shared with the page cache) */
static const char *rss_mb(void)
{
	static char out[96];
	char line[256];
	long kb, all = 0, anon = 0, file = 0;
	FILE *fp = fopen("/proc/self/status", "r");

	while (fp != NULL && fgets(line, sizeof(line), fp) != NULL) {
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			all = kb;
		else if (sscanf(line, "RssAnon: %ld", &kb) == 1)
			anon = kb;
		else if (sscanf(line, "RssFile: %ld", &kb) == 1)
			file = kb;
	}
	if (fp != NULL)
		fclose(fp);
	snprintf(out, sizeof(out), "%.1f(anon=%.1f,file=%.1f)", all / 1024.0, anon / 1024.0,
	         file / 1024.0);
	return out;
}

static size_t make_key(long i, char *key, size_t size)
{
	char net[64], sender[64], rcpt[64];

	snprintf(net, sizeof(net), "ip:%ld.%ld.%ld.0/24", 10 + i % 200, (i / 200) % 256,
	         (i / 51200) % 256);
	snprintf(sender, sizeof(sender), "user%ld@sender%ld.example", i % 9973, i % 7919);
	snprintf(rcpt, sizeof(rcpt), "rcpt%ld@example.test", i % 1009);
	return grey_key(key, size, net, sender, rcpt);
}

struct lat {
	int raw;
	double *v;
	long n, cap;
	long lookups, updates;
};

static void lat_add(struct lat *l, double x)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 1 << 20;
		l->v = realloc(l->v, sizeof(double) * (size_t)l->cap);
		if (l->v == NULL)
			abort();
	}
	l->v[l->n++] = x;
}

static int cmpd(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void *worker(void *arg)
{
	struct lat *l = arg;
	unsigned seed = (unsigned)(size_t)arg;
	char key[GREY_KEY_MAX];
	unsigned char val[GREY_REC_SIZE];
	size_t len;

	while (!stop) {
		long i =
		    (long)(((unsigned long)rand_r(&seed) << 16 ^ (unsigned long)rand_r(&seed)) %
		           (unsigned long)entries);
		size_t kl = make_key(i, key, sizeof(key));
		double t0 = mono();

		if ((int)(rand_r(&seed) % 100) < update_pct) {
			struct grey_rec g = { GREY_PASSED, 2, 1, now0 - 600, now0 };

			grey_rec_encode(&g, val);
			if (l->raw) {
				TDB_DATA k = { (unsigned char *)key, kl }, d = { val, sizeof(val) };

				pthread_mutex_lock(&raw_lock);
				if (tdb_store(raw, k, d, TDB_REPLACE) != 0)
					abort();
				pthread_mutex_unlock(&raw_lock);
			} else if (store_put(st, GREY_NS, key, kl, val, sizeof(val), now0 + 86400,
			                     STORE_NORMAL) < 0) {
				abort();
			}
			l->updates++;
		} else {
			if (l->raw) {
				TDB_DATA k = { (unsigned char *)key, kl }, d;

				pthread_mutex_lock(&raw_lock);
				d = tdb_fetch(raw, k);
				pthread_mutex_unlock(&raw_lock);
				free(d.dptr);
			} else if (store_get(st, GREY_NS, key, kl, val, sizeof(val), &len, NULL) <
			           0) {
				abort();
			}
			l->lookups++;
		}
		lat_add(l, mono() - t0);
	}
	return NULL;
}

struct expiry {
	double secs;
	long deleted;
	int passes;
};

static void *expirer(void *arg)
{
	struct expiry *e = arg;
	unsigned cursor = 0;
	double t0 = mono();

	while (!stop) {
		int n = store_expire_step(st, GREY_NS, now0, 128, &cursor);

		if (n < 0)
			abort();
		e->deleted += n;
		if (cursor == 0) {
			e->passes++;
			e->secs = mono() - t0;
			stop = 1; /* one whole pass is the phase */
		}
	}
	if (e->passes == 0)
		e->secs = mono() - t0;
	return NULL;
}

static void phase(const char *name, int with_expiry, int with_raw)
{
	pthread_t tid[16], etid;
	struct lat l[16];
	struct expiry e = { 0 };
	struct lat all = { 0 };
	long lookups = 0, updates = 0;
	double t0, c0 = cpu_s();

	memset(l, 0, sizeof(l));
	stop = 0;
	t0 = mono();
	for (int i = 0; i < nthreads; i++) {
		l[i].raw = with_raw;
		pthread_create(&tid[i], NULL, worker, &l[i]);
	}
	if (with_expiry)
		pthread_create(&etid, NULL, expirer, &e);
	/* baseline: SECONDS; expiry: until the pass is complete (at most
	 * 20 x SECONDS) */
	for (int k = 0; k < (with_expiry ? 20 : 1) * seconds * 10 && !stop; k++)
		usleep(100000);
	stop = 1;
	for (int i = 0; i < nthreads; i++)
		pthread_join(tid[i], NULL);
	if (with_expiry)
		pthread_join(etid, NULL);
	t0 = mono() - t0;
	c0 = cpu_s() - c0;
	for (int i = 0; i < nthreads; i++) {
		for (long k = 0; k < l[i].n; k++)
			lat_add(&all, l[i].v[k]);
		lookups += l[i].lookups;
		updates += l[i].updates;
		free(l[i].v);
	}
	qsort(all.v, (size_t)all.n, sizeof(double), cmpd);
	printf("phase=%s threads=%d seconds=%.1f lookups_per_s=%.0f updates_per_s=%.0f "
	       "ops_per_s=%.0f lat_us_median=%.1f lat_us_p99=%.1f lat_us_p999=%.1f "
	       "lat_ms_max=%.2f ops_per_cpu_s=%.0f rss_mb=%s",
	       name, nthreads, t0, lookups / t0, updates / t0, (lookups + updates) / t0,
	       all.v[all.n / 2] * 1e6, all.v[(long)(all.n * 0.99)] * 1e6,
	       all.v[(long)(all.n * 0.999)] * 1e6, all.v[all.n - 1] * 1e3,
	       (lookups + updates) / (c0 > 0 ? c0 : 1e-9), rss_mb());
	if (with_expiry)
		printf(" expiry_pass_s=%.1f%s expired_removed=%ld", e.secs,
		       e.passes ? "" : "(unfinished)", e.deleted);
	printf("\n");
	fflush(stdout);
	free(all.v);
}

int main(int argc, char **argv)
{
	char err[256], key[GREY_KEY_MAX], path[4096], gpath[4096];
	unsigned char val[GREY_REC_SIZE];
	struct stat sb;
	double t0, c0;
	int opt;

	while ((opt = getopt(argc, argv, "n:d:t:u:")) != -1) {
		switch (opt) {
		case 'n': entries = atol(optarg); break;
		case 'd': seconds = atoi(optarg); break;
		case 't': nthreads = atoi(optarg); break;
		case 'u': update_pct = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: store-bench DIR [-n N] [-d S] [-t T] [-u PCT]\n");
			return 2;
		}
	}
	if (optind != argc - 1 || entries < 1 || nthreads < 1 || nthreads > 16 || seconds < 1) {
		fprintf(stderr, "usage: store-bench DIR [-n N] [-d S] [-t T] [-u PCT]\n");
		return 2;
	}
	st = store_open(argv[optind], err, sizeof(err));
	if (st == NULL) {
		fprintf(stderr, "store-bench: %s\n", err);
		return 1;
	}
	grey_store_setup(st);
	if (store_ping(st, err, sizeof(err)) == 0)
		printf("store %s\n", err);
	printf("start rss_mb=%s\n", rss_mb());
	now0 = time(NULL);
	t0 = mono();
	c0 = cpu_s();
	for (long i = 0; i < entries; i++) {
		struct grey_rec g = { 0, 0, 1, now0 - 100, now0 - 100 };
		size_t kl = make_key(i, key, sizeof(key));

		grey_rec_encode(&g, val);
		/* every other record expired already: work for the expiry phase */
		if (store_put(st, GREY_NS, key, kl, val, sizeof(val),
		              i % 2 ? now0 - 1 : now0 + 86400, STORE_NORMAL) < 0) {
			fprintf(stderr, "store-bench: put: %s\n",
			        store_strerror(store_last_error()));
			return 1;
		}
	}
	t0 = mono() - t0;
	c0 = cpu_s() - c0;
	snprintf(gpath, sizeof(gpath), "%s/greylist.tdb", argv[optind]);
	stat(gpath, &sb);
	printf("fill entries=%ld seconds=%.1f inserts_per_s=%.0f inserts_per_cpu_s=%.0f "
	       "file_mb=%.1f rss_mb=%s\n",
	       entries, t0, entries / t0, entries / (c0 > 0 ? c0 : 1e-9), sb.st_size / 1048576.0,
	       rss_mb());
	fflush(stdout);
	/* The baseline: the same records in a plain TDB file (same hash size,
	 * mmap as TDB does by default, no lib/store: no record header, no
	 * namespace lookup, one mutex as the store's), the same operations. */
	snprintf(path, sizeof(path), "%s/raw.tdb", argv[optind]);
	raw = tdb_open(path, GREY_HASH_SIZE, TDB_INCOMPATIBLE_HASH | TDB_SEQNUM,
	               O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (raw == NULL) {
		fprintf(stderr, "store-bench: %s: %s\n", path, strerror(errno));
		return 1;
	}
	t0 = mono();
	for (long i = 0; i < entries; i++) {
		struct grey_rec g = { 0, 0, 1, now0 - 100, now0 - 100 };
		TDB_DATA k = { (unsigned char *)key, make_key(i, key, sizeof(key)) },
		         d = { val, sizeof(val) };

		grey_rec_encode(&g, val);
		if (tdb_store(raw, k, d, TDB_REPLACE) != 0)
			return 1;
	}
	t0 = mono() - t0;
	printf("fill-raw-tdb entries=%ld seconds=%.1f inserts_per_s=%.0f\n", entries, t0,
	       entries / t0);
	fflush(stdout);
	phase("raw-tdb", 0, 1);
	tdb_close(raw);
	unlink(path);
	phase("baseline", 0, 0);
	phase("expiry", 1, 0);
	stat(gpath, &sb);
	printf("after live=%ld file_mb=%.1f\n", store_count(st, GREY_NS), sb.st_size / 1048576.0);
	store_close(st);
	return 0;
}
