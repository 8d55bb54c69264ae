/* tests/unit/test_store_backends.c - the store's contract, the same cases
 * on both backends (lib/store/store_tdb.c and lib/store/store_redis.c)
 *
 * Each case runs twice: on TDB files in a private folder, and on a real
 * redis-server that this program starts privately (its own folder, a unix
 * socket, no TCP port, no persistence, `daemonize no`) and stops at the
 * end.  Cases: get/put/del at the size limits, keys with CR, LF, NUL and
 * glob characters that must stay one key each, expiry by the store's
 * clock, the change counter, counts, traverse while another thread writes,
 * compare-and-set from 4 threads (no lost update), batches, two stores on
 * one Redis with different prefixes, and (Redis only) the server stopped
 * and started again empty under a running store.  Without redis-server
 * the TDB half runs and the Redis half is skipped.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "store.h"
#include "testutil.h"

static char sock[300];
static const char *xsock(void);
static pid_t redis_pid = -1;
static int have_redis;

static time_t fake_now = 1000000;

static time_t fake_clock(void *arg)
{
	(void)arg;
	return __atomic_load_n(&fake_now, __ATOMIC_RELAXED);
}

/* --- the private redis-server ------------------------------------------------ */

static int redis_ping(void)
{
	struct timeval tv = { 1, 0 };
	redisContext *c = redisConnectUnixWithTimeout(sock, tv);
	redisReply *r;
	int ok = 0;

	if (c == NULL || c->err) {
		if (c)
			redisFree(c);
		return 0;
	}
	r = redisCommand(c, "PING");
	ok = r && r->type == REDIS_REPLY_STATUS;
	if (r)
		freeReplyObject(r);
	redisFree(c);
	return ok;
}

static void redis_start(void)
{
	char dir[300];

	snprintf(dir, sizeof(dir), "%s/redis", tmpdir);
	mkdir(dir, 0700);
	redis_pid = fork();
	if (redis_pid == 0) {
		int fd = open("/dev/null", O_WRONLY);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execlp("redis-server", "redis-server", "--port", "0", "--unixsocket", sock,
		       "--unixsocketperm", "700", "--dir", dir, "--save", "", "--appendonly", "no",
		       "--daemonize", "no", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200 && !redis_ping(); i++)
		usleep(50000);
	if (!redis_ping())
		fail_msg("redis-server did not start on %s", sock);
}

static void redis_stop(void)
{
	if (redis_pid > 0) {
		kill(redis_pid, SIGTERM);
		waitpid(redis_pid, NULL, 0);
		redis_pid = -1;
	}
}

static void redis_flush(void)
{
	struct timeval tv = { 2, 0 };
	redisContext *c = redisConnectUnixWithTimeout(sock, tv);
	redisReply *r;

	assert_non_null(c);
	assert_int_equal(c->err, 0);
	r = redisCommand(c, "FLUSHALL");
	assert_non_null(r);
	freeReplyObject(r);
	redisFree(c);
}

/* --- the two backends ------------------------------------------------------------ */

struct backend {
	enum store_backend kind;
	char dir[300];
};

static struct backend be_tdb = { STORE_TDB, "" }, be_redis = { STORE_REDIS, "" };

static struct store *open_as(const struct backend *b, const char *prefix)
{
	struct store_params p = { 0 };
	char err[512] = "";
	struct store *st;

	p.backend = b->kind;
	p.dir = b->dir;
	p.redis = xsock();
	p.prefix = prefix;
	p.timeout_ms = 2000;
	st = store_open_params(&p, 0, err, sizeof(err));
	if (st == NULL)
		fail_msg("store_open_params: %s", err);
	store_set_clock(st, fake_clock, NULL);
	return st;
}

static struct store *open_be(void **state)
{
	return open_as(*state, "t:");
}

/* A second handle on the same data, as another MX host has: Redis, a new
 * store; TDB, whose files a process may open only once, the same one. */
static struct store *open_other(void **state, struct store *st)
{
	const struct backend *b = *state;

	return b->kind == STORE_REDIS ? open_be(state) : st;
}

static void close_other(struct store *other, struct store *st)
{
	if (other != st)
		store_close(other);
}

/* A fresh, empty store for each case. */
static int case_setup(void **state)
{
	struct backend *b = *state;
	static int n;

	fake_now = 1000000;
	if (b->kind == STORE_REDIS) {
		if (!have_redis)
			skip();
		redis_flush();
	} else {
		snprintf(b->dir, sizeof(b->dir), "%s/tdb%d", tmpdir, n++);
		mkdir(b->dir, 0700);
	}
	return 0;
}

/* --- cases ------------------------------------------------------------------------ */

static void t_basic(void **state)
{
	struct store *st = open_be(state);
	char buf[64];
	size_t len = 0;
	time_t exp = -1;

	assert_int_equal(store_get(st, "greylist", "k", 1, buf, sizeof(buf), &len, NULL), 0);
	assert_int_equal(store_put(st, "greylist", "k", 1, "hello", 5, 0, STORE_NORMAL), 0);
	assert_int_equal(store_get(st, "greylist", "k", 1, buf, sizeof(buf), &len, &exp), 1);
	assert_int_equal(len, 5);
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(exp, 0);
	/* replace, with an expiry */
	assert_int_equal(store_put(st, "greylist", "k", 1, "hi", 2, fake_now + 100, 0), 0);
	assert_int_equal(store_get(st, "greylist", "k", 1, buf, sizeof(buf), &len, &exp), 1);
	assert_int_equal(len, 2);
	assert_int_equal(exp, fake_now + 100);
	/* a short buffer: SPACE with the size */
	assert_int_equal(store_get(st, "greylist", "k", 1, buf, 1, &len, NULL), -1);
	assert_int_equal(store_last_error(), STORE_ERR_SPACE);
	assert_int_equal(len, 2);
	/* an empty value */
	assert_int_equal(store_put(st, "greylist", "e", 1, NULL, 0, 0, 0), 0);
	assert_int_equal(store_get(st, "greylist", "e", 1, buf, sizeof(buf), &len, NULL), 1);
	assert_int_equal(len, 0);
	/* namespaces are apart */
	assert_int_equal(store_get(st, "awl", "k", 1, buf, sizeof(buf), &len, NULL), 0);
	assert_int_equal(store_del(st, "greylist", "k", 1, 0), 1);
	assert_int_equal(store_del(st, "greylist", "k", 1, 0), 0);
	assert_int_equal(store_get(st, "greylist", "k", 1, buf, sizeof(buf), &len, NULL), 0);
	/* bad arguments */
	assert_int_equal(store_put(st, "Bad NS", "k", 1, "v", 1, 0, 0), -1);
	assert_int_equal(store_last_error(), STORE_ERR_INVAL);
	assert_int_equal(store_get(st, "greylist", "", 0, buf, sizeof(buf), &len, NULL), -1);
	assert_int_equal(store_last_error(), STORE_ERR_INVAL);
	store_close(st);
}

static void t_limits(void **state)
{
	struct store *st = open_be(state);
	char *key = malloc(STORE_MAX_KEY + 1);
	unsigned char *val = malloc(STORE_MAX_VALUE + 1), *back = malloc(STORE_MAX_VALUE);
	size_t len = 0;

	for (size_t i = 0; i < STORE_MAX_KEY + 1; i++)
		key[i] = (char)('a' + i % 26);
	for (size_t i = 0; i < STORE_MAX_VALUE + 1; i++)
		val[i] = (unsigned char)(i * 7);
	assert_int_equal(store_put(st, "refs", key, STORE_MAX_KEY, val, STORE_MAX_VALUE, 0, 0), 0);
	assert_int_equal(
	    store_get(st, "refs", key, STORE_MAX_KEY, back, STORE_MAX_VALUE, &len, NULL), 1);
	assert_int_equal(len, STORE_MAX_VALUE);
	assert_memory_equal(back, val, STORE_MAX_VALUE);
	assert_int_equal(store_put(st, "refs", key, STORE_MAX_KEY + 1, "v", 1, 0, 0), -1);
	assert_int_equal(store_last_error(), STORE_ERR_INVAL);
	assert_int_equal(store_put(st, "refs", "k", 1, val, STORE_MAX_VALUE + 1, 0, 0), -1);
	assert_int_equal(store_last_error(), STORE_ERR_INVAL);
	/* the 4 KiB key is one record, found by traverse with its bytes */
	assert_int_equal(store_traverse(st, "refs", NULL, NULL), 1);
	free(key);
	free(val);
	free(back);
	store_close(st);
}

/* Keys that would break a protocol built from strings: each stays one key. */
#define K(s)                                                                                       \
	{                                                                                          \
		s, sizeof(s) - 1                                                                   \
	}
static const struct {
	const char *k;
	size_t n;
} hostile[] = {
	K("a"),
	K("a\0b"),
	K("a\r\nFLUSHALL\r\n"),
	K("*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$1\r\ny\r\n"),
	K("*"),
	K("a*"),
	K("[a-z]?"),
	K("\\"),
	K("\xff\xfe\x00\x01"),
	K(" "),
	K("a:b"),
	K("#seq:greylist"),
};

struct seen {
	int n[sizeof(hostile) / sizeof(hostile[0])];
	int other;
};

static int note_key(const void *key, size_t keylen, const void *val, size_t vallen, time_t expires,
                    void *arg)
{
	struct seen *s = arg;

	(void)expires;
	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++)
		if (keylen == hostile[i].n && memcmp(key, hostile[i].k, keylen) == 0) {
			/* the value is the key's index */
			assert_int_equal(vallen, sizeof(int));
			assert_int_equal(*(const int *)val, (int)i);
			s->n[i]++;
			return 0;
		}
	s->other++;
	return 0;
}

static void t_hostile_keys(void **state)
{
	struct store *st = open_be(state);
	size_t n = sizeof(hostile) / sizeof(hostile[0]);
	struct seen s = { { 0 }, 0 };
	unsigned long seq;
	int v;
	size_t len;

	for (size_t i = 0; i < n; i++) {
		int idx = (int)i;
		assert_int_equal(
		    store_put(st, "greylist", hostile[i].k, hostile[i].n, &idx, sizeof(idx), 0, 0),
		    0);
	}
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(store_get(st, "greylist", hostile[i].k, hostile[i].n, &v,
		                           sizeof(v), &len, NULL),
		                 1);
		assert_int_equal(v, (int)i);
	}
	/* nothing was flushed or set by a key's text; no key leaked into
	 * another namespace or the counters */
	assert_int_equal(store_get(st, "greylist", "x", 1, &v, sizeof(v), &len, NULL), 0);
	assert_int_equal(store_traverse(st, "greylist", note_key, &s), (int)n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(s.n[i], 1);
	assert_int_equal(s.other, 0);
	assert_int_equal(store_traverse(st, "awl", NULL, NULL), 0);
	assert_int_equal(store_seqnum(st, "greylist", &seq), 0);
	assert_int_equal(store_count(st, "greylist"), (long)n);
	/* deleting "a" leaves "a\0b" and "a*" */
	assert_int_equal(store_del(st, "greylist", "a", 1, 0), 1);
	assert_int_equal(store_get(st, "greylist", "a\0b", 3, &v, sizeof(v), &len, NULL), 1);
	assert_int_equal(store_get(st, "greylist", "a*", 2, &v, sizeof(v), &len, NULL), 1);
	store_close(st);
}

static void t_expiry(void **state)
{
	struct store *st = open_be(state);
	char buf[8];
	size_t len;

	assert_int_equal(store_put(st, "greylist", "short", 5, "s", 1, fake_now + 10, 0), 0);
	assert_int_equal(store_put(st, "greylist", "long", 4, "l", 1, fake_now + 100000, 0), 0);
	assert_int_equal(store_put(st, "greylist", "never", 5, "n", 1, 0, 0), 0);
	assert_int_equal(store_traverse(st, "greylist", NULL, NULL), 3);
	fake_now += 11;
	assert_int_equal(store_get(st, "greylist", "short", 5, buf, sizeof(buf), &len, NULL), 0);
	assert_int_equal(store_get(st, "greylist", "long", 4, buf, sizeof(buf), &len, NULL), 1);
	assert_int_equal(store_traverse(st, "greylist", NULL, NULL), 2);
	/* an expiry step is harmless (Redis: a no-op; TDB: removes "short") */
	{
		unsigned cur = 0;
		do
			assert_true(store_expire_step(st, "greylist", fake_now, 1000, &cur) >= 0);
		while (cur != 0);
	}
	assert_int_equal(store_traverse(st, "greylist", NULL, NULL), 2);
	fake_now += 1000000;
	assert_int_equal(store_traverse(st, "greylist", NULL, NULL), 1);
	assert_int_equal(store_get(st, "greylist", "never", 5, buf, sizeof(buf), &len, NULL), 1);
	store_close(st);
}

static void t_seqnum_two_handles(void **state)
{
	struct store *a = open_be(state), *b = open_other(state, a);
	unsigned long s1, s2, s3;
	char buf[8];
	size_t len;

	assert_int_equal(store_seqnum(a, "whitelist", &s1), 0);
	/* "another MX host" writes; Redis: a keeps the counter it read for up
	 * to a second (bounded wait) */
	assert_int_equal(store_put(b, "whitelist", "client 192.0.2.1", 16, "x", 1, 0, 0), 0);
	for (int i = 0; i < 60; i++) {
		assert_int_equal(store_seqnum(a, "whitelist", &s2), 0);
		if (s2 != s1)
			break;
		usleep(50000);
	}
	assert_true(s1 != s2);
	/* this handle's own write is seen at once */
	assert_int_equal(store_put(a, "whitelist", "client 192.0.2.2", 16, "x", 1, 0, 0), 0);
	assert_int_equal(store_seqnum(a, "whitelist", &s3), 0);
	assert_true(s3 != s2);
	assert_int_equal(store_del(a, "whitelist", "client 192.0.2.2", 16, 0), 1);
	assert_int_equal(store_seqnum(a, "whitelist", &s2), 0);
	assert_int_equal(
	    store_get(a, "whitelist", "client 192.0.2.1", 16, buf, sizeof(buf), &len, NULL), 1);
	assert_int_equal(store_del(b, "whitelist", "client 192.0.2.1", 16, 0), 1);
	for (int i = 0; i < 60; i++) {
		assert_int_equal(store_seqnum(a, "whitelist", &s3), 0);
		if (s3 != s2)
			break;
		usleep(50000);
	}
	assert_true(s3 != s2);
	/* a change in another namespace leaves it alone */
	assert_int_equal(store_put(b, "awl", "x", 1, "x", 1, 0, 0), 0);
	assert_int_equal(store_seqnum(a, "whitelist", &s2), 0);
	assert_int_equal(s2, s3);
	close_other(b, a);
	store_close(a);
}

static void t_count(void **state)
{
	struct store *st = open_be(state);
	char k[32];

	assert_int_equal(store_count(st, "awl"), 0);
	for (int i = 0; i < 100; i++) {
		snprintf(k, sizeof(k), "net%d", i);
		assert_int_equal(store_put(st, "awl", k, strlen(k), "v", 1, fake_now + 86400, 0),
		                 0);
	}
	/* replacing a record does not count it twice */
	assert_int_equal(store_put(st, "awl", "net1", 4, "w", 1, fake_now + 3 * 86400, 0), 0);
	for (int i = 0; i < 10; i++) {
		snprintf(k, sizeof(k), "net%d", i);
		assert_int_equal(store_del(st, "awl", k, strlen(k), 0), 1);
	}
	assert_int_equal(store_count(st, "awl"), 90);
	assert_int_equal(store_traverse(st, "awl", NULL, NULL), 90);
	store_close(st);
}

/* --- traverse while another thread writes -------------------------------------- */

struct writer {
	struct store *st;
	volatile int stop;
	int writes;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	char k[32];

	while (!w->stop && w->writes < 20000) {
		snprintf(k, sizeof(k), "new%d", w->writes);
		if (store_put(w->st, "greylist", k, strlen(k), "n", 1, 0, 0) < 0)
			fail_msg("writer: %s", store_strerror(store_last_error()));
		if (w->writes % 3 == 0)
			(void)store_del(w->st, "greylist", k, strlen(k), 0);
		w->writes++;
	}
	return NULL;
}

struct walk {
	int old, fresh;
	unsigned char seen[2000];
};

static int walk_fn(const void *key, size_t keylen, const void *val, size_t vallen, time_t expires,
                   void *arg)
{
	struct walk *w = arg;
	char k[40];
	int i;

	(void)val;
	(void)vallen;
	(void)expires;
	if (keylen >= sizeof(k))
		return 0;
	memcpy(k, key, keylen);
	k[keylen] = '\0';
	if (sscanf(k, "old%d", &i) == 1 && i >= 0 && i < 2000) {
		w->seen[i]++;
		w->old++;
	} else {
		w->fresh++;
	}
	return 0;
}

static void t_traverse_while_writing(void **state)
{
	struct store *st = open_be(state);
	struct writer w = { open_other(state, st), 0, 0 };
	struct walk wk = { 0, 0, { 0 } };
	pthread_t tid;
	char k[32];

	for (int i = 0; i < 2000; i++) {
		snprintf(k, sizeof(k), "old%d", i);
		assert_int_equal(store_put(st, "greylist", k, strlen(k), "o", 1, 0, 0), 0);
	}
	assert_int_equal(pthread_create(&tid, NULL, writer_main, &w), 0);
	assert_true(store_traverse(st, "greylist", walk_fn, &wk) >= 2000);
	w.stop = 1;
	pthread_join(tid, NULL);
	/* every record there during the whole walk was seen exactly once */
	assert_int_equal(wk.old, 2000);
	for (int i = 0; i < 2000; i++)
		assert_int_equal(wk.seen[i], 1);
	close_other(w.st, st);
	store_close(st);
}

/* --- 4 threads: compare-and-set, no lost update -------------------------------- */

#define CAS_THREADS 4
#define CAS_ROUNDS  150

struct casarg {
	struct store *st;
	int conflicts;
};

static void *cas_main(void *arg)
{
	struct casarg *a = arg;

	for (int i = 0; i < CAS_ROUNDS; i++) {
		for (;;) {
			uint32_t cur = 0, next;
			struct store_op op[2] = { { 0 } };
			int found;

			op[0].type = STORE_OP_GET;
			op[0].ns = "awl";
			op[0].key = "counter";
			op[0].keylen = 7;
			op[0].buf = &cur;
			op[0].bufsize = sizeof(cur);
			/* a private record in the same batch */
			op[1].type = STORE_OP_GET;
			op[1].ns = "greylist";
			op[1].key = "nothing";
			op[1].keylen = 7;
			if (store_batch(a->st, op, 2) != 0)
				fail_msg("batch: %s", store_strerror(store_last_error()));
			found = op[0].rc == 1;
			next = found ? cur + 1 : 1;
			memset(op, 0, sizeof(op));
			op[0].type = STORE_OP_CAS;
			op[0].ns = "awl";
			op[0].key = "counter";
			op[0].keylen = 7;
			op[0].expect = found ? &cur : NULL;
			op[0].expectlen = found ? sizeof(cur) : 0;
			op[0].val = &next;
			op[0].vallen = sizeof(next);
			op[0].expires = 0;
			if (store_batch(a->st, op, 1) != 0)
				fail_msg("cas: %s", store_strerror(store_last_error()));
			if (op[0].rc == 1)
				break;
			a->conflicts++;
		}
	}
	return NULL;
}

static void t_threads_cas(void **state)
{
	struct store *st = open_be(state);
	struct casarg a[CAS_THREADS];
	pthread_t tid[CAS_THREADS];
	uint32_t v = 0;
	size_t len;
	int conflicts = 0;

	/* two threads share one store handle, two have their own ("hosts") */
	for (int i = 0; i < CAS_THREADS; i++) {
		a[i].st = i < 2 ? st : open_other(state, st);
		a[i].conflicts = 0;
		assert_int_equal(pthread_create(&tid[i], NULL, cas_main, &a[i]), 0);
	}
	for (int i = 0; i < CAS_THREADS; i++) {
		pthread_join(tid[i], NULL);
		conflicts += a[i].conflicts;
		if (i >= 2)
			close_other(a[i].st, st);
	}
	assert_int_equal(store_get(st, "awl", "counter", 7, &v, sizeof(v), &len, NULL), 1);
	assert_int_equal(v, CAS_THREADS * CAS_ROUNDS);
	printf("# %d increments, %d compare-and-set conflicts retried\n", CAS_THREADS * CAS_ROUNDS,
	       conflicts);
	store_close(st);
}

static void t_cas_rules(void **state)
{
	struct store *st = open_be(state);
	struct store_op op = { 0 };
	char buf[16];
	size_t len;

	op.type = STORE_OP_CAS;
	op.ns = "greylist";
	op.key = "k";
	op.keylen = 1;
	op.val = "one";
	op.vallen = 3;
	op.expires = fake_now + 50;
	/* absent expected: written */
	assert_int_equal(store_batch(st, &op, 1), 0);
	assert_int_equal(op.rc, 1);
	/* absent expected, but there is one: not written */
	op.val = "two";
	assert_int_equal(store_batch(st, &op, 1), 0);
	assert_int_equal(op.rc, 0);
	/* the wrong old value: not written */
	op.expect = "uno";
	op.expectlen = 3;
	assert_int_equal(store_batch(st, &op, 1), 0);
	assert_int_equal(op.rc, 0);
	/* the right one: written */
	op.expect = "one";
	assert_int_equal(store_batch(st, &op, 1), 0);
	assert_int_equal(op.rc, 1);
	assert_int_equal(store_get(st, "greylist", "k", 1, buf, sizeof(buf), &len, NULL), 1);
	assert_memory_equal(buf, "two", 3);
	/* an expired record counts as absent */
	fake_now += 51;
	op.expect = NULL;
	op.expectlen = 0;
	op.val = "three";
	op.vallen = 5;
	op.expires = 0;
	assert_int_equal(store_batch(st, &op, 1), 0);
	assert_int_equal(op.rc, 1);
	assert_int_equal(store_get(st, "greylist", "k", 1, buf, sizeof(buf), &len, NULL), 1);
	assert_int_equal(len, 5);
	assert_int_equal(store_count(st, "greylist"), 1);
	store_close(st);
}

/* A cap (store_ns_limit, as ref_max): expiry steps delete the records
 * that expire first until the namespace is under the cap again. */
static void t_ns_limit(void **state)
{
	struct store *st = open_be(state);
	char k[32], buf[8];
	size_t len;
	long n;

	assert_int_equal(store_ns_limit(st, "refs", 200), 0);
	/* 300 records, each expiring one hour after the one before */
	for (int i = 0; i < 300; i++) {
		snprintf(k, sizeof(k), "ref%03d", i);
		assert_int_equal(
		    store_put(st, "refs", k, strlen(k), "r", 1, fake_now + 3600 * (i + 1), 0), 0);
	}
	assert_int_equal(store_count(st, "refs"), 300);
	/* a few full passes (bounded) */
	for (int pass = 0; pass < 5; pass++) {
		unsigned cur = 0;
		int steps = 0;
		do
			assert_true(store_expire_step(st, "refs", fake_now, 64, &cur) >= 0);
		while (cur != 0 && ++steps < 100000);
	}
	n = store_count(st, "refs");
	printf("# %ld of 300 records left under a cap of 200\n", n);
	assert_true(n <= 200);
	assert_true(n >= 150);
	assert_int_equal(store_traverse(st, "refs", NULL, NULL), n);
	/* the first to expire went, the last stayed */
	assert_int_equal(store_get(st, "refs", "ref000", 6, buf, sizeof(buf), &len, NULL), 0);
	assert_int_equal(store_get(st, "refs", "ref299", 6, buf, sizeof(buf), &len, NULL), 1);
	store_close(st);
}

/* --- Redis only ------------------------------------------------------------------- */

static void t_redis_prefixes(void **state)
{
	struct store *g1 = open_as(*state, "g1:"), *g2 = open_as(*state, "g2:");
	char buf[8];
	size_t len;

	assert_int_equal(store_put(g1, "whitelist", "k", 1, "1", 1, 0, 0), 0);
	assert_int_equal(store_get(g2, "whitelist", "k", 1, buf, sizeof(buf), &len, NULL), 0);
	assert_int_equal(store_traverse(g2, "whitelist", NULL, NULL), 0);
	assert_int_equal(store_count(g2, "whitelist"), 0);
	/* a prefix with glob characters matches only itself */
	{
		struct store *g3 = open_as(*state, "g*:");
		assert_int_equal(store_traverse(g3, "whitelist", NULL, NULL), 0);
		assert_int_equal(store_put(g3, "whitelist", "k", 1, "3", 1, 0, 0), 0);
		assert_int_equal(store_traverse(g3, "whitelist", NULL, NULL), 1);
		store_close(g3);
	}
	assert_int_equal(store_traverse(g1, "whitelist", NULL, NULL), 1);
	store_close(g1);
	store_close(g2);
}

/* The server stops under a running store: calls fail at once with
 * STORE_ERR_DOWN (never a false answer); started again, empty, the store
 * works again without being reopened (after its reconnect backoff). */
static void t_redis_restart_empty(void **state)
{
	struct store *st = open_be(state);
	struct store_stats ss;
	char buf[8];
	size_t len;
	unsigned long seq;
	int ok = 0;

	assert_int_equal(store_put(st, "greylist", "k", 1, "v", 1, 0, 0), 0);
	redis_stop();
	assert_int_equal(store_get(st, "greylist", "k", 1, buf, sizeof(buf), &len, NULL), -1);
	assert_int_equal(store_last_error(), STORE_ERR_DOWN);
	assert_int_equal(store_put(st, "greylist", "k", 1, "v", 1, 0, 0), -1);
	store_get_stats(st, &ss);
	assert_int_equal(ss.down, 1);
	assert_true(ss.errors >= 2);
	redis_start();
	/* bounded: the backoff is at most 1 s */
	for (int i = 0; i < 200 && !ok; i++) {
		ok = store_put(st, "greylist", "k2", 2, "v", 1, 0, 0) == 0;
		if (!ok)
			usleep(50000);
	}
	assert_true(ok);
	assert_int_equal(store_get(st, "greylist", "k", 1, buf, sizeof(buf), &len, NULL), 0);
	assert_int_equal(store_get(st, "greylist", "k2", 2, buf, sizeof(buf), &len, NULL), 1);
	assert_int_equal(store_seqnum(st, "greylist", &seq), 0);
	store_get_stats(st, &ss);
	assert_int_equal(ss.down, 0);
	assert_true(ss.roundtrips > 0);
	store_close(st);
}

static void redis_cmd(const char *a, const char *b, const char *c)
{
	struct timeval tv = { 2, 0 };
	redisContext *x = redisConnectUnixWithTimeout(sock, tv);
	const char *argv[3] = { a, b, c };
	redisReply *r;

	assert_non_null(x);
	assert_int_equal(x->err, 0);
	r = redisCommandArgv(x, c ? 3 : 2, argv, NULL);
	assert_non_null(r);
	freeReplyObject(r);
	redisFree(x);
}

/* A server that turned read-only (a replica, e.g. an old master after a
 * failover): writes fail with STORE_ERR_DOWN, never a false success, the
 * reads still answer; writable again, the store works without a reopen. */
static void t_redis_readonly(void **state)
{
	struct store *st = open_be(state);
	char buf[8];
	size_t len;
	int ok = 0;

	assert_int_equal(store_put(st, "greylist", "k", 1, "v", 1, 0, 0), 0);
	redis_cmd("REPLICAOF", "127.0.0.1", "1"); /* a master that is not there */
	assert_int_equal(store_put(st, "greylist", "k2", 2, "v", 1, 0, 0), -1);
	assert_int_equal(store_last_error(), STORE_ERR_DOWN);
	redis_cmd("REPLICAOF", "NO", "ONE");
	for (int i = 0; i < 100 && !ok; i++) {
		ok = store_put(st, "greylist", "k2", 2, "v", 1, 0, 0) == 0;
		if (!ok)
			usleep(50000);
	}
	assert_true(ok);
	assert_int_equal(store_get(st, "greylist", "k", 1, buf, sizeof(buf), &len, NULL), 1);
	store_close(st);
}

static void t_redis_bad_config(void **state)
{
	struct store_params p = { 0 };
	char err[512];
	char path[300];

	(void)state;
	p.backend = STORE_REDIS;
	p.prefix = "t:";
	p.timeout_ms = 500;
	p.redis = "nonsense";
	assert_null(store_open_params(&p, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "store.redis"));
	p.redis = "sentinel:@127.0.0.1:1";
	assert_null(store_open_params(&p, 0, err, sizeof(err)));
	/* a password file readable by others is refused */
	p.redis = xsock();
	write_file(path, sizeof(path), "pw", "secret\n");
	chmod(path, 0644);
	p.password_file = path;
	assert_null(store_open_params(&p, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "readable by others"));
	assert_null(strstr(err, "secret"));
	/* a server without a password refuses AUTH: a configuration error,
	 * and the message does not show the password */
	chmod(path, 0600);
	assert_null(store_open_params(&p, 0, err, sizeof(err)));
	assert_null(strstr(err, "secret"));
	/* a server that does not answer is no error at open */
	p.password_file = NULL;
	p.redis = "127.0.0.1:1";
	{
		struct store *st = store_open_params(&p, 0, err, sizeof(err));
		char info[300];
		assert_non_null(st);
		assert_int_equal(store_ping(st, info, sizeof(info)), -1);
		assert_int_equal(store_put(st, "awl", "k", 1, "v", 1, 0, 0), -1);
		assert_int_equal(store_last_error(), STORE_ERR_DOWN);
		store_close(st);
	}
}

/* --- main ------------------------------------------------------------------------- */

static const char *xsock(void)
{
	static char where[320];

	snprintf(where, sizeof(where), "unix:%s", sock);
	return where;
}

#define BOTH(fn)                                                                                   \
	cmocka_unit_test_prestate_setup_teardown(fn, case_setup, NULL, &be_tdb),                   \
	    cmocka_unit_test_prestate_setup_teardown(fn, case_setup, NULL, &be_redis)
#define REDIS(fn) cmocka_unit_test_prestate_setup_teardown(fn, case_setup, NULL, &be_redis)

static int group_setup(void **state)
{
	(void)state;
	if (tmpdir_create("store-backends") < 0)
		return -1;
	snprintf(sock, sizeof(sock), "%s/redis.sock", tmpdir);
	have_redis = system("command -v redis-server >/dev/null 2>&1") == 0;
	if (have_redis)
		redis_start();
	else
		printf("# redis-server not installed: the Redis cases are skipped\n");
	return 0;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path) < 0 ? 0 : 0;
}

static int group_teardown(void **state)
{
	(void)state;
	redis_stop();
	nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		BOTH(t_basic),
		BOTH(t_limits),
		BOTH(t_hostile_keys),
		BOTH(t_expiry),
		BOTH(t_seqnum_two_handles),
		BOTH(t_count),
		BOTH(t_traverse_while_writing),
		BOTH(t_threads_cas),
		BOTH(t_cas_rules),
		BOTH(t_ns_limit),
		REDIS(t_redis_prefixes),
		REDIS(t_redis_bad_config),
		REDIS(t_redis_restart_empty),
		REDIS(t_redis_readonly),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
