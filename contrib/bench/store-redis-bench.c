/* contrib/bench/store-redis-bench.c - greylist decisions on TDB and on Redis
 *
 *   store-redis-bench TDB_DIR unix:REDIS_SOCKET [-n TRIPLETS] [-d SECONDS]
 *                     [-t THREADS]
 *
 * For each backend in turn (tdb, then redis), on a fresh store:
 *   fill     TRIPLETS greylist records in the real format (lib/store/grey.h keys
 *            "ip:NET SENDER RCPT", 32-byte values), written with
 *            compare-and-set batches of 100 (Redis: one pipeline each);
 *   decide   THREADS threads for SECONDS make greylist decisions as
 *            lib/checks/greylist.c does for a known triplet: one batch
 *            reading the awl record and the triplet, then one
 *            compare-and-set of the updated triplet (read again and
 *            decided again on a conflict).
 * Printed (key=value): the fill rate; decisions/s; the round trips per
 * decision (Redis: counted by the store); the CPU per decision of this
 * process (getrusage) and, for Redis, of redis-server (INFO cpu, which the
 * caller's same machine pays too); the memory: TDB file size, Redis
 * used_memory (INFO memory) after the fill.  No thresholds: a benchmark.
 */
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "grey.h"
#include "store.h"

static long n_triplets = 1000000, seconds = 10;
static int nthreads = 4;
static volatile int stop;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

static size_t key_of(long i, char *k, size_t ksize)
{
	char net[64], snd[128], rcpt[128];

	snprintf(net, sizeof(net), "ip:10.%ld.%ld.0/24", (i / 256) % 256, i % 256);
	snprintf(snd, sizeof(snd), "sender%ld@example%ld.org", i, i % 1000);
	snprintf(rcpt, sizeof(rcpt), "user%ld@example.test", i % 5000);
	return grey_key(k, ksize, net, snd, rcpt);
}

static void fill(struct store *st)
{
	static char keys[100][GREY_KEY_MAX];
	unsigned char val[100][GREY_REC_SIZE];
	struct store_op op[100];
	time_t t = time(NULL);

	for (long i = 0; i < n_triplets; i += 100) {
		int n = 0;
		for (long j = i; j < i + 100 && j < n_triplets; j++, n++) {
			struct grey_rec g = { .defers = 1, .first = t, .last = t };
			size_t kl = key_of(j, keys[n], sizeof(keys[n]));
			grey_rec_encode(&g, val[n]);
			op[n] = (struct store_op){ .type = STORE_OP_CAS,
				                   .ns = GREY_NS,
				                   .key = keys[n],
				                   .keylen = kl,
				                   .val = val[n],
				                   .vallen = GREY_REC_SIZE,
				                   .expires = t + 86400 };
		}
		if (store_batch(st, op, (size_t)n) != 0) {
			fprintf(stderr, "fill: %s\n", store_strerror(store_last_error()));
			exit(1);
		}
	}
}

struct worker {
	struct store *st;
	unsigned seed;
	long decisions, conflicts;
};

static void *decide(void *arg)
{
	struct worker *w = arg;
	char key[GREY_KEY_MAX];
	unsigned char awl[AWL_REC_SIZE], buf[GREY_REC_SIZE], nv[GREY_REC_SIZE];

	while (!stop) {
		long i = (long)(rand_r(&w->seed) % (unsigned)n_triplets);
		size_t kl = key_of(i, key, sizeof(key));
		char net[64];

		snprintf(net, sizeof(net), "ip:10.%ld.%ld.0/24", (i / 256) % 256, i % 256);
		for (;;) {
			struct store_op op[2] = {
				{ .type = STORE_OP_GET,
				  .ns = AWL_NS,
				  .key = net,
				  .keylen = strlen(net),
				  .buf = awl,
				  .bufsize = sizeof(awl) },
				{ .type = STORE_OP_GET,
				  .ns = GREY_NS,
				  .key = key,
				  .keylen = kl,
				  .buf = buf,
				  .bufsize = sizeof(buf) },
			};
			struct grey_rec g;
			time_t t = time(NULL);

			if (store_batch(w->st, op, 2) != 0 || op[1].rc != 1 ||
			    grey_rec_decode(buf, op[1].len, &g) < 0) {
				fprintf(stderr, "decide: lookup failed\n");
				exit(1);
			}
			g.defers++;
			g.last = t;
			grey_rec_encode(&g, nv);
			op[0] = (struct store_op){ .type = STORE_OP_CAS,
				                   .ns = GREY_NS,
				                   .key = key,
				                   .keylen = kl,
				                   .expect = buf,
				                   .expectlen = op[1].len,
				                   .val = nv,
				                   .vallen = sizeof(nv),
				                   .expires = t + 86400 };
			if (store_batch(w->st, op, 1) != 0) {
				fprintf(stderr, "decide: %s\n", store_strerror(store_last_error()));
				exit(1);
			}
			if (op[0].rc == 1)
				break;
			w->conflicts++;
		}
		w->decisions++;
	}
	return NULL;
}

/* redis-server's CPU seconds (INFO cpu), or -1. */
static double redis_info_num(const char *path, const char *section, const char *field)
{
	struct timeval tv = { 5, 0 };
	redisContext *c = redisConnectUnixWithTimeout(path, tv);
	redisReply *r;
	double v = -1;

	if (c == NULL || c->err)
		return -1;
	r = redisCommand(c, "INFO %s", section);
	if (r && r->type == REDIS_REPLY_STRING) {
		char *p = strstr(r->str, field);
		if (p)
			v = atof(p + strlen(field) + 1);
	}
	if (r)
		freeReplyObject(r);
	redisFree(c);
	return v;
}

static double redis_cpu(const char *path)
{
	double u = redis_info_num(path, "cpu", "used_cpu_user");
	double s = redis_info_num(path, "cpu", "used_cpu_sys");
	return u < 0 || s < 0 ? -1 : u + s;
}

static void run(const char *name, const struct store_params *p, const char *rsock)
{
	char err[512];
	struct store *st = store_open_params(p, 0, err, sizeof(err));
	struct worker w[16];
	pthread_t tid[16];
	struct store_stats s0, s1;
	double t0, t1, c0, c1, r0 = -1, r1 = -1;
	long total = 0, conflicts = 0;

	if (st == NULL) {
		fprintf(stderr, "%s: %s\n", name, err);
		exit(1);
	}
	grey_store_setup(st); /* TDB: the daemon's hash size for a million records */
	t0 = now_s();
	fill(st);
	t1 = now_s();
	printf("%s.fill_per_s=%.0f\n", name, n_triplets / (t1 - t0));
	if (rsock) {
		printf("%s.used_memory_bytes=%.0f\n", name,
		       redis_info_num(rsock, "memory", "used_memory"));
		printf("%s.bytes_per_triplet=%.0f\n", name,
		       redis_info_num(rsock, "memory", "used_memory") / n_triplets);
	} else {
		char path[600];
		struct stat sb;
		snprintf(path, sizeof(path), "%s/greylist.tdb", p->dir);
		if (stat(path, &sb) == 0) {
			printf("%s.file_bytes=%lld\n", name, (long long)sb.st_size);
			printf("%s.bytes_per_triplet=%.0f\n", name,
			       (double)sb.st_size / n_triplets);
		}
	}
	store_get_stats(st, &s0);
	stop = 0;
	c0 = cpu_s();
	if (rsock)
		r0 = redis_cpu(rsock);
	t0 = now_s();
	for (int i = 0; i < nthreads; i++) {
		w[i] = (struct worker){ .st = st, .seed = 7u * (unsigned)i + 1 };
		pthread_create(&tid[i], NULL, decide, &w[i]);
	}
	sleep((unsigned)seconds);
	stop = 1;
	for (int i = 0; i < nthreads; i++) {
		pthread_join(tid[i], NULL);
		total += w[i].decisions;
		conflicts += w[i].conflicts;
	}
	t1 = now_s();
	c1 = cpu_s();
	if (rsock)
		r1 = redis_cpu(rsock);
	store_get_stats(st, &s1);
	printf("%s.threads=%d\n", name, nthreads);
	printf("%s.decisions_per_s=%.0f\n", name, total / (t1 - t0));
	printf("%s.conflicts=%ld\n", name, conflicts);
	printf("%s.client_cpu_us_per_decision=%.1f\n", name, (c1 - c0) * 1e6 / total);
	if (rsock) {
		printf("%s.server_cpu_us_per_decision=%.1f\n", name, (r1 - r0) * 1e6 / total);
		printf("%s.roundtrips_per_decision=%.2f\n", name,
		       (double)(s1.roundtrips - s0.roundtrips) / total);
		printf("%s.mean_roundtrip_us=%.1f\n", name,
		       (double)(s1.roundtrip_us - s0.roundtrip_us) /
		           (double)(s1.roundtrips - s0.roundtrips));
	}
	store_close(st);
}

int main(int argc, char **argv)
{
	struct store_params tp = { .backend = STORE_TDB }, rp = { .backend = STORE_REDIS };
	const char *rsock;
	int opt;

	if (argc < 3) {
		fprintf(stderr,
		        "usage: store-redis-bench TDB_DIR unix:SOCKET [-n N] [-d S] [-t T]\n");
		return 2;
	}
	tp.dir = argv[1];
	rp.redis = argv[2];
	rp.prefix = "bench:";
	rp.timeout_ms = 5000;
	rsock = argv[2] + 5;
	optind = 3;
	while ((opt = getopt(argc, argv, "n:d:t:")) != -1) {
		if (opt == 'n')
			n_triplets = atol(optarg);
		else if (opt == 'd')
			seconds = atol(optarg);
		else if (opt == 't')
			nthreads = atoi(optarg) > 16 ? 16 : atoi(optarg);
	}
	printf("triplets=%ld seconds=%ld\n", n_triplets, seconds);
	run("tdb", &tp, NULL);
	fflush(stdout);
	run("redis", &rp, rsock);
	return 0;
}
