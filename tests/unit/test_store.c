/* tests/unit/test_store.c - the TDB store (lib/store/store_tdb.c)
 *
 * cmocka cases: put/get/del, expiry with an injected clock, the record's
 * version byte and header (read back with plain TDB after closing), traverse,
 * bounded expiry steps, count, four threads on one namespace, a corrupt file
 * moved aside and recreated, and unusable directories and files.
 *
 * With a mode argument it is the helper process of tests/store.sh:
 *   test_store --writer DIR N normal|durable   put k0..kN-1, print each key
 *                                              after store_put() returned
 *   test_store --reader DIR N SECONDS          wait until k0..kN-1 are all
 *                                              visible (written by another process)
 *   test_store --check DIR FILE                every key listed in FILE is present
 *   test_store --bench DIR N                   mixed workload, prints ops/s
 *   test_store --fill DIR PAD                  write until the file system is
 *                                              full, remove PAD, write again
 *   test_store --rofs DIR                      read and write on a read-only
 *                                              file system
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <tdb.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "store.h"
#include "util.h"

static char tmpdir[256];

static void make_tmpdir(void)
{
	const char *t = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s/test_store.XXXXXX", t != NULL ? t : "/tmp");
	assert_non_null(mkdtemp(tmpdir));
}

static void rm_tmpdir(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	char p[512];

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", tmpdir, e->d_name);
		if (unlink(p) < 0)
			rmdir(p);
	}
	closedir(d);
	rmdir(tmpdir);
}

static int setup(void **state)
{
	(void)state;
	make_tmpdir();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rm_tmpdir();
	return 0;
}

static struct store *open_store(void)
{
	char err[256] = "";
	struct store *st = store_open(tmpdir, err, sizeof(err));

	if (st == NULL)
		fail_msg("store_open: %s", err);
	return st;
}

static time_t fake_now;

static time_t fake_clock(void *arg)
{
	(void)arg;
	return fake_now;
}

/* A whole expiry pass over ns at now; the records deleted. */
static int maint_expire_all(struct store *st, const char *ns, time_t now)
{
	unsigned cur = 0;
	int total = 0, r;

	do {
		r = store_expire_step(st, ns, now, 1000, &cur);
		assert_true(r >= 0);
		total += r;
	} while (cur != 0);
	return total;
}

static void test_put_get_del(void **state)
{
	struct store *st = open_store();
	char buf[64];
	size_t len = 0;
	time_t exp = -1;
	unsigned char bin[5] = { 0, 1, 0, 255, 0 };

	(void)state;
	assert_int_equal(store_get(st, "greylist", "a", 1, buf, sizeof(buf), &len, &exp), 0);
	assert_int_equal(store_put(st, "greylist", "a", 1, "hello", 5, 0, STORE_NORMAL), 0);
	assert_int_equal(store_get(st, "greylist", "a", 1, buf, sizeof(buf), &len, &exp), 1);
	assert_int_equal(len, 5);
	assert_int_equal(exp, 0);
	assert_memory_equal(buf, "hello", 5);
	/* replace, binary key and value with NULs, empty value */
	assert_int_equal(store_put(st, "greylist", "a", 1, "bye", 3, 0, STORE_DURABLE), 0);
	assert_int_equal(store_get(st, "greylist", "a", 1, buf, sizeof(buf), &len, NULL), 1);
	assert_int_equal(len, 3);
	assert_memory_equal(buf, "bye", 3);
	assert_int_equal(store_put(st, "greylist", bin, 5, bin, 5, 0, 0), 0);
	assert_int_equal(store_get(st, "greylist", bin, 5, buf, sizeof(buf), &len, NULL), 1);
	assert_int_equal(len, 5);
	assert_memory_equal(buf, bin, 5);
	assert_int_equal(store_put(st, "greylist", "e", 1, NULL, 0, 0, 0), 0);
	assert_int_equal(store_get(st, "greylist", "e", 1, NULL, 0, &len, NULL), 1);
	assert_int_equal(len, 0);
	/* namespaces are separate files */
	assert_int_equal(store_get(st, "awl", "a", 1, buf, sizeof(buf), &len, NULL), 0);
	/* too small a buffer: an error, and the size needed */
	assert_int_equal(store_put(st, "awl", "big", 3, "0123456789", 10, 0, 0), 0);
	assert_int_equal(store_get(st, "awl", "big", 3, buf, 4, &len, NULL), -1);
	assert_int_equal(store_last_error(), STORE_ERR_SPACE);
	assert_int_equal(len, 10);
	/* delete */
	assert_int_equal(store_del(st, "greylist", "a", 1, STORE_NORMAL), 1);
	assert_int_equal(store_del(st, "greylist", "a", 1, STORE_NORMAL), 0);
	assert_int_equal(store_del(st, "greylist", "e", 1, STORE_DURABLE), 1);
	assert_int_equal(store_del(st, "greylist", "e", 1, STORE_DURABLE), 0);
	assert_int_equal(store_get(st, "greylist", "a", 1, buf, sizeof(buf), &len, NULL), 0);
	/* bad arguments */
	assert_int_equal(store_put(st, "../x", "a", 1, "v", 1, 0, 0), -1);
	assert_int_equal(store_last_error(), STORE_ERR_INVAL);
	assert_int_equal(store_put(st, "Grey", "a", 1, "v", 1, 0, 0), -1);
	assert_int_equal(store_put(st, "", "a", 1, "v", 1, 0, 0), -1);
	assert_int_equal(store_put(st, "greylist", "", 0, "v", 1, 0, 0), -1);
	assert_int_equal(store_last_error(), STORE_ERR_INVAL);
	assert_int_equal(store_put(st, "greylist", "a", 1, "v", 1, 0, 4), -1);
	assert_int_equal(store_ns_hash_size(st, "greylist", 101), -1); /* already open */
	store_close(st);

	/* persistent across close/open */
	st = open_store();
	assert_int_equal(store_get(st, "greylist", bin, 5, buf, sizeof(buf), &len, NULL), 1);
	assert_int_equal(store_get(st, "awl", "big", 3, buf, sizeof(buf), &len, NULL), 1);
	assert_memory_equal(buf, "0123456789", 10);
	store_close(st);
}

static void test_expiry(void **state)
{
	struct store *st = open_store();
	char buf[16];
	size_t len;
	time_t exp;

	(void)state;
	fake_now = 1000000;
	store_set_clock(st, fake_clock, NULL);
	assert_int_equal(store_put(st, "greylist", "k", 1, "v", 1, 1000100, 0), 0);
	assert_int_equal(store_put(st, "greylist", "never", 5, "v", 1, 0, 0), 0);
	assert_int_equal(store_get(st, "greylist", "k", 1, buf, sizeof(buf), &len, &exp), 1);
	assert_int_equal(exp, 1000100);
	assert_int_equal(store_count(st, "greylist"), 2);
	fake_now = 1000099;
	assert_int_equal(store_get(st, "greylist", "k", 1, buf, sizeof(buf), &len, &exp), 1);
	fake_now = 1000100; /* expiry time is the first second it is gone */
	assert_int_equal(store_get(st, "greylist", "k", 1, buf, sizeof(buf), &len, &exp), 0);
	assert_int_equal(store_get(st, "greylist", "never", 5, buf, sizeof(buf), &len, &exp), 1);
	/* the count is of records in the file: expired ones until expiry */
	assert_int_equal(store_count(st, "greylist"), 2);
	{
		unsigned cur = 0;
		assert_int_equal(store_expire_step(st, "greylist", fake_now, 1u << 20, &cur), 1);
		assert_int_equal(cur, 0);
	}
	assert_int_equal(store_count(st, "greylist"), 1);
	/* renewing an expired record brings it back */
	assert_int_equal(store_put(st, "greylist", "k", 1, "w", 1, 1000200, 0), 0);
	assert_int_equal(store_get(st, "greylist", "k", 1, buf, sizeof(buf), &len, &exp), 1);
	assert_int_equal(buf[0], 'w');
	store_close(st);
}

static void test_version_byte(void **state)
{
	struct store *st = open_store();
	char path[512], buf[16];
	struct tdb_context *tdb;
	TDB_DATA k = { (unsigned char *)"key", 3 }, d;
	size_t len;
	long n;
	unsigned cur = 0;

	(void)state;
	assert_int_equal(store_put(st, "whitelist", "key", 3, "val", 3, 0x0102030405LL, 0), 0);
	assert_int_equal(store_put(st, "whitelist", "ok", 2, "val", 3, 0, 0), 0);
	store_close(st);

	/* the record on disk: version 1, 3 zero bytes, big-endian expiry, value */
	snprintf(path, sizeof(path), "%s/whitelist.tdb", tmpdir);
	tdb = tdb_open(path, 0, 0, O_RDWR, 0);
	assert_non_null(tdb);
	d = tdb_fetch(tdb, k);
	assert_non_null(d.dptr);
	assert_int_equal(d.dsize, STORE_HDR_SIZE + 3);
	assert_memory_equal(d.dptr,
	                    "\x01\x00\x00\x00"
	                    "\x00\x00\x00\x01\x02\x03\x04\x05val",
	                    15);
	/* a record from a future format version: not readable as ours */
	d.dptr[0] = 2;
	assert_int_equal(tdb_store(tdb, k, d, TDB_REPLACE), 0);
	free(d.dptr);
	tdb_close(tdb);

	st = open_store();
	assert_int_equal(store_get(st, "whitelist", "key", 3, buf, sizeof(buf), &len, NULL), -1);
	assert_int_equal(store_last_error(), STORE_ERR_VERSION);
	assert_int_equal(store_traverse(st, "whitelist", NULL, NULL), 1);
	n = store_count(st, "whitelist");
	assert_int_equal(n, 2); /* records in the file, of any version */
	/* expiry leaves unknown versions alone */
	do
		assert_true(store_expire_step(st, "whitelist", (time_t)1 << 40, 1000, &cur) >= 0);
	while (cur != 0);
	store_close(st);
	tdb = tdb_open(path, 0, 0, O_RDWR, 0);
	assert_non_null(tdb);
	assert_int_equal(tdb_exists(tdb, k), 1);
	tdb_close(tdb);
}

struct seen {
	int n;
	int bits[200];
	int stop_after;
};

static int collect(const void *key, size_t keylen, const void *val, size_t vallen, time_t expires,
                   void *arg)
{
	struct seen *s = arg;
	char k[32];
	int i;

	(void)expires;
	assert_true(keylen < sizeof(k));
	memcpy(k, key, keylen);
	k[keylen] = '\0';
	i = atoi(k + 1);
	assert_true(i >= 0 && i < 200);
	assert_int_equal(vallen, keylen);
	assert_memory_equal(val, key, keylen);
	s->bits[i]++;
	s->n++;
	return s->stop_after > 0 && s->n >= s->stop_after;
}

static int delete_each(const void *key, size_t keylen, const void *val, size_t vallen,
                       time_t expires, void *arg)
{
	(void)val;
	(void)vallen;
	(void)expires;
	/* a callback may write to the namespace it walks */
	assert_int_equal(store_del(arg, "greylist", key, keylen, 0), 1);
	return 0;
}

static void test_traverse_count(void **state)
{
	struct store *st = open_store();
	struct seen s;
	char k[32];
	int i;

	(void)state;
	assert_int_equal(store_ns_hash_size(st, "greylist", 31), 0);
	fake_now = 5000;
	store_set_clock(st, fake_clock, NULL);
	for (i = 0; i < 200; i++) {
		int n = snprintf(k, sizeof(k), "k%d", i);
		/* every 4th record already expired */
		assert_int_equal(store_put(st, "greylist", k, n, k, n, i % 4 == 0 ? 4000 : 0, 0),
		                 0);
	}
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_traverse(st, "greylist", collect, &s), 150);
	assert_int_equal(s.n, 150);
	for (i = 0; i < 200; i++)
		assert_int_equal(s.bits[i], i % 4 == 0 ? 0 : 1);
	assert_int_equal(store_count(st, "greylist"), 200); /* expired ones too */
	memset(&s, 0, sizeof(s));
	s.stop_after = 7;
	assert_int_equal(store_traverse(st, "greylist", collect, &s), 7);
	assert_int_equal(store_traverse(st, "nothing", NULL, NULL), 0);
	assert_int_equal(store_count(st, "nothing"), 0);
	assert_int_equal(store_traverse(st, "greylist", delete_each, st), 150);
	assert_int_equal(store_count(st, "greylist"), 50);
	assert_int_equal(maint_expire_all(st, "greylist", fake_now), 50);
	assert_int_equal(store_count(st, "greylist"), 0);
	store_close(st);
}

static void test_expire_step(void **state)
{
	struct store *st = open_store();
	char k[32];
	unsigned cur = 0;
	int i, calls = 0, total = 0, r;

	(void)state;
	assert_int_equal(store_ns_hash_size(st, "greylist", 101), 0);
	for (i = 0; i < 1000; i++) {
		int n = snprintf(k, sizeof(k), "key-%d", i);
		assert_int_equal(store_put(st, "greylist", k, n, "v", 1, i % 2 ? 100 : 300, 0), 0);
	}
	/* one step of 10 chains of 101: about a tenth of the 500 expired ones */
	r = store_expire_step(st, "greylist", 200, 10, &cur);
	assert_true(r > 0 && r < 200);
	assert_int_equal(cur, 10);
	total = r;
	calls = 1;
	while (cur != 0) {
		r = store_expire_step(st, "greylist", 200, 10, &cur);
		assert_true(r >= 0 && r < 200);
		total += r;
		calls++;
		assert_true(calls <= 11);
	}
	assert_int_equal(calls, 11);
	assert_int_equal(total, 500);
	/* the clock of get is real time; use a far clock to see what is left */
	fake_now = 200;
	store_set_clock(st, fake_clock, NULL);
	assert_int_equal(store_count(st, "greylist"), 500);
	/* a second pass finds nothing more */
	do
		assert_int_equal(store_expire_step(st, "greylist", 200, 50, &cur), 0);
	while (cur != 0);
	assert_int_equal(store_expire_step(st, "greylist", 200, 0, &cur), -1);
	store_close(st);
}

#define NTHREADS 4
#define NOPS     4000

struct thr {
	struct store *st;
	int id;
	int errors;
};

static void *hammer(void *arg)
{
	struct thr *t = arg;
	char k[32], v[64], buf[64];
	int i;
	unsigned cur = 0;

	for (i = 0; i < NOPS; i++) {
		int kn = snprintf(k, sizeof(k), "t%d-%d", t->id, i % 500);
		int vn = snprintf(v, sizeof(v), "value-%d-%d", t->id, i);
		size_t len;
		if (store_put(t->st, "greylist", k, kn, v, vn, 0, 0) != 0)
			t->errors++;
		if (store_get(t->st, "greylist", k, kn, buf, sizeof(buf), &len, NULL) != 1 ||
		    len != (size_t)vn || memcmp(buf, v, len) != 0)
			t->errors++;
		/* shared keys: all threads write them */
		kn = snprintf(k, sizeof(k), "shared-%d", i % 50);
		if (store_put(t->st, "greylist", k, kn, v, vn, 0, 0) != 0)
			t->errors++;
		if (i % 7 == 0 && store_del(t->st, "greylist", k, kn, 0) < 0)
			t->errors++;
		if (i % 100 == 0 && store_expire_step(t->st, "greylist", 1, 5, &cur) < 0)
			t->errors++;
		if (i % 1000 == 0 && store_count(t->st, "greylist") < 0)
			t->errors++;
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct store *st = open_store();
	pthread_t th[NTHREADS];
	struct thr t[NTHREADS];
	int i;
	long n;

	(void)state;
	assert_int_equal(store_ns_hash_size(st, "greylist", 1021), 0);
	for (i = 0; i < NTHREADS; i++) {
		t[i].st = st;
		t[i].id = i;
		t[i].errors = 0;
		assert_int_equal(pthread_create(&th[i], NULL, hammer, &t[i]), 0);
	}
	for (i = 0; i < NTHREADS; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(t[i].errors, 0);
	}
	n = store_count(st, "greylist");
	assert_true(n >= NTHREADS * 500 && n <= NTHREADS * 500 + 50);
	store_close(st);
}

static int count_aside(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (strncmp(e->d_name, "greylist.tdb.corrupt-", 21) == 0)
			n++;
	closedir(d);
	return n;
}

static void write_file(const char *path, const char *data, size_t n)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, n, fp), n);
	assert_int_equal(fclose(fp), 0);
}

static void test_corrupt_file(void **state)
{
	struct store *st;
	char path[512], garbage[8192], buf[16];
	size_t len;

	(void)state;
	snprintf(path, sizeof(path), "%s/greylist.tdb", tmpdir);
	memset(garbage, 'x', sizeof(garbage));
	write_file(path, garbage, sizeof(garbage));
	st = open_store();
	assert_int_equal(store_put(st, "greylist", "a", 1, "v", 1, 0, 0), 0);
	assert_int_equal(store_get(st, "greylist", "a", 1, buf, sizeof(buf), &len, NULL), 1);
	assert_int_equal(count_aside(), 1);
	assert_int_equal(store_count(st, "greylist"), 1);
	store_close(st);

	/* a short file of garbage too; the earlier one is kept */
	write_file(path, "hello", 5);
	st = open_store();
	assert_int_equal(store_get(st, "greylist", "a", 1, buf, sizeof(buf), &len, NULL), 0);
	assert_int_equal(store_put(st, "greylist", "b", 1, "v", 1, 0, STORE_DURABLE), 0);
	assert_int_equal(count_aside(), 2);
	store_close(st);
}

/* Records overwritten inside a valid file: TDB reports corruption during a
 * walk; the file is moved aside and the namespace works again at once. */
static void test_corrupt_records(void **state)
{
	struct store *st = open_store();
	char path[512], k[32], buf[64], *junk;
	size_t len;
	off_t size;
	int i, fd, n;

	(void)state;
	assert_int_equal(store_ns_hash_size(st, "greylist", 7), 0);
	for (i = 0; i < 100; i++) {
		n = snprintf(k, sizeof(k), "key%d", i);
		assert_int_equal(store_put(st, "greylist", k, n, k, n, 0, 0), 0);
	}
	store_close(st);
	/* keep the header and the 7 chain heads, overwrite the records */
	snprintf(path, sizeof(path), "%s/greylist.tdb", tmpdir);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	size = lseek(fd, 0, SEEK_END);
	assert_true(size > 1000);
	junk = xmalloc(size);
	memset(junk, 0xff, size);
	assert_int_equal(pwrite(fd, junk, size - 400, 200), size - 400);
	free(junk);
	close(fd);

	st = open_store();
	/* the first lookup meets the damage (TDB says "not found", but its
	 * log says why): the file is moved aside once and the lookup answered
	 * from the new, empty file -- absent, never a false hit, no error */
	for (i = 0; i < 100; i++) {
		n = snprintf(k, sizeof(k), "key%d", i);
		if (store_get(st, "greylist", k, n, buf, sizeof(buf), &len, NULL) != 0)
			fail_msg("%s: %s", k, store_strerror(store_last_error()));
	}
	assert_int_equal(count_aside(), 1);
	assert_int_equal(store_count(st, "greylist"), 0);
	assert_int_equal(store_put(st, "greylist", "z", 1, "v", 1, 0, 0), 0);
	assert_int_equal(store_get(st, "greylist", "z", 1, buf, sizeof(buf), &len, NULL), 1);
	assert_int_equal(store_count(st, "greylist"), 1);
	store_close(st);
}

/* --- damage of every kind, with the store open or not ------------------- */

/* Capture the log (stderr) of a block of store calls: log_begin() before,
 * log_end() returns the number of error lines written since. */
static int saved_fd = -1;
static char logpath[512];

static void log_begin(void)
{
	int fd;

	snprintf(logpath, sizeof(logpath), "%s/../test_store-log.%d", tmpdir, (int)getpid());
	fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	fflush(stderr);
	saved_fd = dup(2);
	dup2(fd, 2);
	close(fd);
	log_open("test_store", "stderr", NULL);
}

/* log_end() also counts the lines containing log_pat (when set) into
 * log_pat_n */
static const char *log_pat;
static int log_pat_n;

static int log_end(void)
{
	char line[1024];
	FILE *fp;
	int n = 0;

	fflush(stderr);
	dup2(saved_fd, 2);
	close(saved_fd);
	log_open("test_store", getenv("TEST_LOG") ? getenv("TEST_LOG") : "none", NULL);
	fp = fopen(logpath, "r");
	assert_non_null(fp);
	while (fgets(line, sizeof(line), fp) != NULL) {
		if (strstr(line, "error: ") != NULL)
			n++;
		if (log_pat != NULL && strstr(line, log_pat) != NULL)
			log_pat_n++;
		if (getenv("TEST_LOG") != NULL)
			fputs(line, stderr);
	}
	fclose(fp);
	unlink(logpath);
	return n;
}

static void pwrite_at(const char *path, off_t off, const void *data, size_t n)
{
	int fd = open(path, O_RDWR);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, data, n, off), (ssize_t)n);
	close(fd);
}

enum damage {
	D_TRUNC_HALF,  /* truncate -s 50%: the hash table no longer fits */
	D_TRUNC_TAIL,  /* a few records cut off the end */
	D_GARBAGE_HDR, /* the first 64 bytes overwritten */
	D_BAD_MAGIC,   /* the magic text of the header */
	D_HASH_SIZE,   /* the header's hash size changed */
	D_CHAINS_OOB,  /* every chain head points past the end of the file */
	D_MIDDLE,      /* records in the middle overwritten */
	D_COUNT
};

static const char *const damage_name[D_COUNT] = {
	"truncated to half", "tail cut",        "garbage header",     "bad magic",
	"hash size",         "chains past EOF", "middle overwritten",
};

/* TDB's layout (tdb_private.h): a 168-byte header (magic text 32 bytes,
 * version, hash_size at 36, ...), the free list head at 168, the head of
 * chain h at 168 + 4 * (h + 1). */
#define TDB_HDR      168
#define TDB_HASH_OFF 36
#define NDAMAGE_HASH 1021
#define NDAMAGE_RECS 400

static void damage_file(const char *path, enum damage d)
{
	struct stat sb;
	unsigned char buf[4 * (NDAMAGE_HASH + 1)];

	assert_int_equal(stat(path, &sb), 0);
	switch (d) {
	case D_TRUNC_HALF: assert_int_equal(truncate(path, TDB_HDR + 4 * 100), 0); break;
	case D_TRUNC_TAIL: assert_int_equal(truncate(path, sb.st_size - 3000), 0); break;
	case D_GARBAGE_HDR:
		memset(buf, 0x5a, 64);
		pwrite_at(path, 0, buf, 64);
		break;
	case D_BAD_MAGIC: pwrite_at(path, 0, "NOT A TDB FILE AT ALL, SORRY!!\n", 32); break;
	case D_HASH_SIZE: {
		uint32_t h = 1048573; /* what the issue saw: "does not fit" */
		pwrite_at(path, TDB_HASH_OFF, &h, 4);
		break;
	}
	case D_CHAINS_OOB:
		for (int i = 0; i < NDAMAGE_HASH + 1; i++) {
			uint32_t off = (uint32_t)sb.st_size + 4096 * (uint32_t)(i + 1);
			memcpy(buf + 4 * i, &off, 4);
		}
		pwrite_at(path, TDB_HDR + 4, buf + 4, 4 * NDAMAGE_HASH);
		break;
	case D_MIDDLE: {
		size_t n = (size_t)(sb.st_size - (TDB_HDR + 4 * (NDAMAGE_HASH + 1))) / 2;
		unsigned char *junk = xmalloc(n);
		memset(junk, 0xa5, n);
		pwrite_at(path, TDB_HDR + 4 * (NDAMAGE_HASH + 1) + (off_t)n / 2, junk, n);
		free(junk);
		break;
	}
	case D_COUNT: break;
	}
}

static void fill_damage(struct store *st)
{
	char k[32];

	assert_int_equal(store_ns_hash_size(st, "greylist", NDAMAGE_HASH), 0);
	for (int i = 0; i < NDAMAGE_RECS; i++) {
		int n = snprintf(k, sizeof(k), "key%d", i);
		assert_int_equal(store_put(st, "greylist", k, n, k, n, 0, 0), 0);
	}
}

/* After the damage: every lookup is a miss or a true hit, never an error
 * (the call that meets the damage is answered from the new file); the file
 * was moved aside exactly once, with one error line; it takes writes. */
static void check_recovered(struct store *st, enum damage d, int nlog)
{
	char k[32], buf[64];
	size_t len;
	int hits = 0;

	for (int i = 0; i < NDAMAGE_RECS; i++) {
		int n = snprintf(k, sizeof(k), "key%d", i), r;
		r = store_get(st, "greylist", k, n, buf, sizeof(buf), &len, NULL);
		if (r < 0)
			fail_msg("%s: get %s: %s", damage_name[d], k,
			         store_strerror(store_last_error()));
		if (r == 1) {
			assert_int_equal(len, (size_t)n);
			assert_memory_equal(buf, k, len);
			hits++;
		}
	}
	assert_int_equal(store_put(st, "greylist", "new", 3, "v", 1, 0, 0), 0);
	assert_int_equal(store_get(st, "greylist", "new", 3, buf, sizeof(buf), &len, NULL), 1);
	assert_true(store_traverse(st, "greylist", NULL, NULL) >= 1);
	if (count_aside() != 1)
		fail_msg("%s: %d copies moved aside (hits %d)", damage_name[d], count_aside(),
		         hits);
	if (nlog + log_end() != 1)
		fail_msg("%s: not one error line", damage_name[d]);
}

/* The damage done while the store is closed: found at open. */
static void test_damage_closed(void **state)
{
	char path[512];

	(void)state;
	snprintf(path, sizeof(path), "%s/greylist.tdb", tmpdir);
	for (enum damage d = 0; d < D_COUNT; d++) {
		struct store *st = open_store();
		fill_damage(st);
		store_close(st);
		damage_file(path, d);
		log_begin();
		st = open_store();
		assert_int_equal(store_ns_hash_size(st, "greylist", NDAMAGE_HASH), 0);
		check_recovered(st, d, 0);
		store_close(st);
		rm_tmpdir();
		assert_int_equal(mkdir(tmpdir, 0700), 0);
	}
}

/* The damage done while the store has the file open (another process
 * truncates or overwrites it under the daemon): no SIGBUS, found by the
 * next calls that read the damaged part or by the size check (once a
 * second), one move aside. */
static void test_damage_open(void **state)
{
	char path[512], k[32], buf[64];
	size_t len;

	(void)state;
	snprintf(path, sizeof(path), "%s/greylist.tdb", tmpdir);
	for (enum damage d = 0; d < D_COUNT; d++) {
		struct store *st = open_store();
		fill_damage(st);
		damage_file(path, d);
		log_begin();
		/* TDB reads the header only at open: damage there is found by
		 * the store's check of the header (once a second); meanwhile
		 * the file works as opened.  Cut-off records are found by the
		 * lookups that need them or by the size check. */
		if (d == D_GARBAGE_HDR || d == D_BAD_MAGIC || d == D_HASH_SIZE) {
			for (int i = 0; i < 20; i++) {
				int n = snprintf(k, sizeof(k), "key%d", i);
				assert_true(store_get(st, "greylist", k, n, buf, sizeof(buf), &len,
				                      NULL) >= 0);
			}
			sleep(1);
		} else if (d == D_TRUNC_TAIL) {
			sleep(1);
		}
		check_recovered(st, d, 0);
		store_close(st);
		rm_tmpdir();
		assert_int_equal(mkdir(tmpdir, 0700), 0);
	}
}

static time_t mono_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return ts.tv_sec;
}

/* The files are mapped: a file truncated under the mapping, between the
 * store's size checks (once a second), raises SIGBUS at the next access
 * to a lost page.  The store catches it (a debug line says so), checks the
 * file, moves it aside once and answers from the new file: every lookup a
 * miss or a true hit, never an error, and the process lives.  Each round
 * starts just after a second began, so the size check (done at the first
 * call of a second) is behind it and the lookups meet the lost pages
 * first: cut inside the header page, cut at half the chains, cut off the
 * records only. */
static void test_sigbus(void **state)
{
	char path[512], k[32], buf[64];
	size_t len;
	struct stat sb;
	const off_t cuts[] = { 100, TDB_HDR + 4 * (NDAMAGE_HASH / 2), 0 };

	(void)state;
	snprintf(path, sizeof(path), "%s/greylist.tdb", tmpdir);
	for (size_t c = 0; c < ARRAY_SIZE(cuts); c++) {
		struct store *st = open_store();
		time_t t0;
		int errors;

		fill_damage(st);
		assert_int_equal(stat(path, &sb), 0);
		/* just after a second began: the size check is done */
		t0 = mono_sec();
		while (mono_sec() == t0)
			usleep(2000);
		assert_true(store_get(st, "greylist", "key1", 4, buf, sizeof(buf), &len, NULL) ==
		            1);
		assert_int_equal(
		    truncate(path, cuts[c] ? cuts[c] : TDB_HDR + 4 * (NDAMAGE_HASH + 1) + 4096), 0);
		log_begin();
		log_set_debug(1);
		log_pat = "SIGBUS";
		log_pat_n = 0;
		for (int i = 0; i < NDAMAGE_RECS; i++) {
			int n = snprintf(k, sizeof(k), "key%d", i), r;
			r = store_get(st, "greylist", k, n, buf, sizeof(buf), &len, NULL);
			if (r < 0)
				fail_msg("cut %lld: get %s: %s", (long long)cuts[c], k,
				         store_strerror(store_last_error()));
			if (r == 1)
				assert_memory_equal(buf, k, (size_t)n);
		}
		assert_int_equal(store_put(st, "greylist", "new", 3, "v", 1, 0, 0), 0);
		assert_int_equal(store_get(st, "greylist", "new", 3, buf, sizeof(buf), &len, NULL),
		                 1);
		log_set_debug(0);
		errors = log_end();
		log_pat = NULL;
		if (log_pat_n < 1)
			fail_msg("cut %lld: no SIGBUS caught (the size check came first?)",
			         (long long)cuts[c]);
		assert_int_equal(errors, 1);
		assert_int_equal(count_aside(), 1);
		store_close(st);
		rm_tmpdir();
		assert_int_equal(mkdir(tmpdir, 0700), 0);
	}
}

/* A SIGBUS that is not an access to a store file keeps its former
 * disposition: a process with a store open that touches a page it mapped
 * past the end of a file of its own dies of SIGBUS, as without the store;
 * the same for a SIGBUS sent with kill(). */
static void test_sigbus_foreign(void **state)
{
	char path[512];

	(void)state;
	snprintf(path, sizeof(path), "%s/other", tmpdir);
	for (int how = 0; how < 2; how++) {
		int status;
		pid_t pid = fork();

		assert_true(pid >= 0);
		if (pid == 0) {
			struct store *st;
			char err[256];
			int fd;
			volatile char *p;

			signal(SIGBUS, SIG_DFL);
			st = store_open(tmpdir, err, sizeof(err));
			if (st == NULL || store_put(st, "greylist", "a", 1, "v", 1, 0, 0) < 0)
				_exit(3);
			if (how == 1) {
				kill(getpid(), SIGBUS);
				_exit(4);
			}
			fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
			if (fd < 0 || ftruncate(fd, 8192) < 0)
				_exit(3);
			p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
			if (p == MAP_FAILED || ftruncate(fd, 0) < 0)
				_exit(3);
			p[4096] = 1;
			_exit(5);
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGBUS)
			fail_msg("%s: child status %d, want killed by SIGBUS",
			         how ? "kill" : "fault", status);
	}
}

/* A greylist.tdb made with robust mutexes (TDB_MUTEX_LOCKING) by another
 * program: TDB refuses it to a read-write opener without the flag
 * (EINVAL), which is no damage.  The store opens it with the flag (one
 * warning), reads, writes, counts and expires it (its chains sit behind
 * the mutex area), a read-only store lists it, nothing is moved aside and
 * the file keeps its format. */
static void test_mutex_file(void **state)
{
	char path[512], k[32], buf[64], err[256];
	struct tdb_context *t;
	struct store *st;
	size_t len;
	unsigned cur = 0;
	int deleted = 0, errors;

	(void)state;
	if (!tdb_runtime_check_for_robust_mutexes())
		skip();
	snprintf(path, sizeof(path), "%s/greylist.tdb", tmpdir);
	t = tdb_open(path, NDAMAGE_HASH, TDB_INCOMPATIBLE_HASH | TDB_SEQNUM | TDB_MUTEX_LOCKING,
	             O_RDWR | O_CREAT, 0600);
	assert_non_null(t);
	tdb_close(t);
	assert_null(tdb_open(path, 0, TDB_INCOMPATIBLE_HASH, O_RDWR, 0600));
	log_begin();
	log_pat = "made with robust mutexes";
	log_pat_n = 0;
	st = open_store();
	fake_now = 1000;
	store_set_clock(st, fake_clock, NULL);
	for (int i = 0; i < 100; i++) {
		int n = snprintf(k, sizeof(k), "key%d", i);
		assert_int_equal(store_put(st, "greylist", k, n, k, n, i % 2 ? 1500 : 0, 0), 0);
	}
	for (int i = 0; i < 100; i++) {
		int n = snprintf(k, sizeof(k), "key%d", i);
		assert_int_equal(store_get(st, "greylist", k, n, buf, sizeof(buf), &len, NULL), 1);
		assert_memory_equal(buf, k, (size_t)n);
	}
	assert_int_equal(store_count(st, "greylist"), 100);
	fake_now = 2000;
	do {
		int n = store_expire_step(st, "greylist", fake_now, 128, &cur);
		assert_true(n >= 0);
		deleted += n;
	} while (cur != 0);
	assert_int_equal(deleted, 50);
	assert_int_equal(store_count(st, "greylist"), 50);
	store_close(st);
	errors = log_end();
	log_pat = NULL;
	assert_int_equal(errors, 0);
	assert_int_equal(log_pat_n, 1);
	assert_int_equal(count_aside(), 0);
	st = store_open_flags(tmpdir, STORE_RDONLY, err, sizeof(err));
	assert_non_null(st);
	assert_int_equal(store_traverse(st, "greylist", NULL, NULL), 50);
	store_close(st);
	assert_null(tdb_open(path, 0, TDB_INCOMPATIBLE_HASH, O_RDWR, 0600));
}

/* Copies moved aside are bounded: the newest STORE_KEEP_ASIDE stay. */
static void test_keep_aside(void **state)
{
	char path[512], garbage[4096];
	struct store *st;

	(void)state;
	snprintf(path, sizeof(path), "%s/greylist.tdb", tmpdir);
	memset(garbage, 'g', sizeof(garbage));
	for (int i = 0; i < STORE_KEEP_ASIDE + 3; i++) {
		write_file(path, garbage, sizeof(garbage));
		log_begin();
		st = open_store();
		assert_int_equal(store_put(st, "greylist", "a", 1, "v", 1, 0, 0), 0);
		store_close(st);
		(void)log_end();
		assert_int_equal(count_aside(),
		                 i + 1 < STORE_KEEP_ASIDE ? i + 1 : STORE_KEEP_ASIDE);
	}
}

/* The record count: kept by puts (new keys only), deletes and expiry, by
 * another process too, and read without a walk. */
static void test_count_record(void **state)
{
	struct store *st = open_store();
	char k[32];
	pid_t pid;
	int status;
	unsigned cur = 0;

	(void)state;
	fake_now = 1000;
	store_set_clock(st, fake_clock, NULL);
	for (int i = 0; i < 100; i++) {
		int n = snprintf(k, sizeof(k), "k%d", i);
		assert_int_equal(store_put(st, "greylist", k, n, "v", 1, i < 30 ? 1500 : 0, 0), 0);
	}
	/* replacing does not count; a durable put does */
	assert_int_equal(store_put(st, "greylist", "k1", 2, "w", 1, 1500, 0), 0);
	assert_int_equal(store_put(st, "greylist", "d", 1, "w", 1, 0, STORE_DURABLE), 0);
	assert_int_equal(store_count(st, "greylist"), 101);
	assert_int_equal(store_del(st, "greylist", "k99", 3, 0), 1);
	assert_int_equal(store_del(st, "greylist", "k99", 3, 0), 0);
	assert_int_equal(store_del(st, "greylist", "d", 1, STORE_DURABLE), 1);
	assert_int_equal(store_count(st, "greylist"), 99);
	store_close(st);
	/* another process adds 50 and deletes 10 */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct store *c = open_store();
		for (int i = 100; i < 150; i++) {
			int n = snprintf(k, sizeof(k), "k%d", i);
			if (store_put(c, "greylist", k, n, "v", 1, 0, 0) < 0)
				_exit(1);
		}
		for (int i = 40; i < 50; i++) {
			int n = snprintf(k, sizeof(k), "k%d", i);
			if (store_del(c, "greylist", k, n, 0) != 1)
				_exit(2);
		}
		store_close(c);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	st = open_store();
	assert_int_equal(store_count(st, "greylist"), 139);
	/* expiry takes the 30 expired ones off the count */
	do
		assert_true(store_expire_step(st, "greylist", 2000, 100000, &cur) >= 0);
	while (cur != 0);
	assert_int_equal(store_count(st, "greylist"), 109);
	assert_int_equal(store_traverse(st, "greylist", NULL, NULL), 109);
	/* the count record is not a key anyone can use */
	assert_int_equal(store_put(st, "greylist", "\0pc:count", 9, "x", 1, 0, 0), -1);
	assert_int_equal(store_last_error(), STORE_ERR_INVAL);
	store_close(st);
}

/* A file of an older version (no count record) is counted once at open. */
static void test_count_legacy(void **state)
{
	char path[512];
	struct tdb_context *tdb;
	unsigned char rec[STORE_HDR_SIZE + 1] = { STORE_REC_VERSION };
	struct store *st;

	(void)state;
	snprintf(path, sizeof(path), "%s/awl.tdb", tmpdir);
	tdb = tdb_open(path, 31, TDB_INCOMPATIBLE_HASH, O_RDWR | O_CREAT, 0600);
	assert_non_null(tdb);
	for (int i = 0; i < 25; i++) {
		char k[16];
		TDB_DATA kd = { (unsigned char *)k, (size_t)snprintf(k, sizeof(k), "n%d", i) };
		TDB_DATA d = { rec, sizeof(rec) };
		assert_int_equal(tdb_store(tdb, kd, d, TDB_REPLACE), 0);
	}
	tdb_close(tdb);
	st = store_open_flags(tmpdir, STORE_RDONLY, NULL, 0);
	assert_non_null(st);
	assert_int_equal(store_count(st, "awl"), 25);
	store_close(st);
	st = open_store();
	assert_int_equal(store_count(st, "awl"), 25);
	assert_int_equal(store_put(st, "awl", "x", 1, "v", 1, 0, 0), 0);
	assert_int_equal(store_count(st, "awl"), 26);
	store_close(st);
}

/* An empty namespace costs one read of its count: no walk (the cursor
 * does not move through the 131071 chains of a default file); in a
 * non-empty one, a step walks at most max_chains non-empty chains. */
static void test_expire_empty(void **state)
{
	struct store *st = open_store();
	unsigned cur = 0;

	(void)state;
	assert_int_equal(store_expire_step(st, "refs", 1000, 1, &cur), 0);
	assert_int_equal(cur, 0);
	assert_int_equal(store_put(st, "refs", "r", 1, "v", 1, 500, 0), 0);
	assert_int_equal(store_expire_step(st, "refs", 1000, 1, &cur), 0);
	assert_true(cur > 0); /* a record: the walk goes on */
	store_close(st);
}

/* A capped namespace: passes over the cap delete the records that expire
 * first, down to about 90% of the cap. */
static void test_limit(void **state)
{
	struct store *st = open_store();
	char k[32], buf[16];
	size_t len;
	unsigned cur = 0;
	long n;
	int oldest_kept = -1;

	(void)state;
	fake_now = 1000;
	store_set_clock(st, fake_clock, NULL);
	assert_int_equal(store_ns_hash_size(st, "refs", 61), 0);
	assert_int_equal(store_ns_limit(st, "refs", 200), 0);
	for (int i = 0; i < 1000; i++) {
		int kn = snprintf(k, sizeof(k), "r%d", i);
		assert_int_equal(store_put(st, "refs", k, kn, "v", 1, 100000 + i, 0), 0);
	}
	/* the first pass samples, the second evicts */
	for (int pass = 0; pass < 2; pass++)
		do
			assert_true(store_expire_step(st, "refs", 1000, 16, &cur) >= 0);
		while (cur != 0);
	n = store_count(st, "refs");
	assert_true(n <= 200 && n >= 150);
	for (int i = 0; i < 1000; i++) {
		int kn = snprintf(k, sizeof(k), "r%d", i);
		int r = store_get(st, "refs", k, kn, buf, sizeof(buf), &len, NULL);
		assert_true(r >= 0);
		if (r == 1 && oldest_kept < 0)
			oldest_kept = i;
		if (oldest_kept >= 0)
			assert_int_equal(r, 1); /* all newer ones are kept */
	}
	assert_int_equal(1000 - oldest_kept, n);
	/* under the cap: nothing more goes */
	do
		assert_true(store_expire_step(st, "refs", 1000, 16, &cur) >= 0);
	while (cur != 0);
	assert_int_equal(store_count(st, "refs"), n);
	store_close(st);
}

/* STORE_RDONLY: reads work, nothing is created or written, a missing
 * namespace is empty. */
static void test_rdonly(void **state)
{
	struct store *st = open_store();
	char buf[16], path[512];
	size_t len;
	struct stat sb;
	unsigned cur = 0;

	(void)state;
	assert_int_equal(store_put(st, "greylist", "a", 1, "v", 1, 0, 0), 0);
	store_close(st);
	st = store_open_flags(tmpdir, STORE_RDONLY, NULL, 0);
	assert_non_null(st);
	assert_int_equal(store_get(st, "greylist", "a", 1, buf, sizeof(buf), &len, NULL), 1);
	assert_int_equal(store_count(st, "greylist"), 1);
	assert_int_equal(store_traverse(st, "greylist", NULL, NULL), 1);
	assert_int_equal(store_put(st, "greylist", "b", 1, "v", 1, 0, 0), -1);
	assert_int_equal(store_last_error(), STORE_ERR_RDONLY);
	assert_int_equal(store_del(st, "greylist", "a", 1, 0), -1);
	assert_int_equal(store_expire_step(st, "greylist", 1, 10, &cur), -1);
	assert_int_equal(store_get(st, "awl", "a", 1, buf, sizeof(buf), &len, NULL), 0);
	assert_int_equal(store_count(st, "awl"), 0);
	assert_int_equal(store_traverse(st, "awl", NULL, NULL), 0);
	snprintf(path, sizeof(path), "%s/awl.tdb", tmpdir);
	assert_int_equal(stat(path, &sb), -1); /* not created */
	store_close(st);
}

static void test_unusable(void **state)
{
	char err[256] = "", path[512], buf[16];
	struct store *st;
	size_t len;

	(void)state;
	assert_null(store_open("/nonexistent/portcullis-store", err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/portcullis-store"));
	assert_int_equal(store_last_error(), STORE_ERR_IO);
	snprintf(path, sizeof(path), "%s/plainfile", tmpdir);
	write_file(path, "x", 1);
	err[0] = '\0';
	assert_null(store_open(path, err, sizeof(err)));
	assert_non_null(strstr(err, "not a directory"));
	assert_null(store_open("", err, sizeof(err)));

	/* a directory where the namespace file should be: an error, each time,
	 * and it is not mistaken for corruption */
	snprintf(path, sizeof(path), "%s/greylist.tdb", tmpdir);
	assert_int_equal(mkdir(path, 0700), 0);
	st = open_store();
	assert_int_equal(store_put(st, "greylist", "a", 1, "v", 1, 0, 0), -1);
	assert_int_equal(store_last_error(), STORE_ERR_IO);
	assert_int_equal(store_get(st, "greylist", "a", 1, buf, sizeof(buf), &len, NULL), -1);
	assert_int_equal(store_count(st, "greylist"), -1);
	assert_int_equal(count_aside(), 0);
	/* other namespaces still work */
	assert_int_equal(store_put(st, "awl", "a", 1, "v", 1, 0, 0), 0);
	store_close(st);
	rmdir(path);
}

static void test_too_many_ns(void **state)
{
	struct store *st = open_store();
	char ns[16];
	int i;

	(void)state;
	for (i = 0; i < STORE_MAX_NS; i++) {
		snprintf(ns, sizeof(ns), "ns%d", i);
		assert_int_equal(store_ns_hash_size(st, ns, 7), 0);
	}
	assert_int_equal(store_ns_hash_size(st, "onemore", 7), -1);
	assert_int_equal(store_last_error(), STORE_ERR_FULL);
	assert_string_equal(store_strerror(STORE_ERR_FULL), "too many namespaces");
	store_close(st);
}

/* --- helper modes for tests/store.sh ----------------------------------- */

static struct store *open_dir(const char *dir)
{
	char err[256];
	struct store *st = store_open(dir, err, sizeof(err));

	if (st == NULL) {
		fprintf(stderr, "%s\n", err);
		exit(2);
	}
	return st;
}

static int mode_writer(const char *dir, long n, const char *how)
{
	struct store *st = open_dir(dir);
	int flags = strcmp(how, "durable") == 0 ? STORE_DURABLE : STORE_NORMAL;
	char k[32], line[40];
	long i;

	for (i = 0; i < n; i++) {
		int kn = snprintf(k, sizeof(k), "k%ld", i);
		if (store_put(st, "whitelist", k, kn, k, kn, 0, flags) != 0) {
			fprintf(stderr, "put %s: %s\n", k, store_strerror(store_last_error()));
			return 1;
		}
		/* one write(2) per line: reported only after store_put returned */
		kn = snprintf(line, sizeof(line), "%s\n", k);
		if (write(1, line, kn) != kn)
			return 1;
	}
	store_close(st);
	return 0;
}

static int mode_reader(const char *dir, long n, int secs)
{
	struct store *st = open_dir(dir);
	char k[32], buf[64];
	long next = 0;
	time_t end = time(NULL) + secs;
	size_t len;

	/* open the file before the writer starts, then announce it */
	if (store_get(st, "whitelist", "none", 4, buf, sizeof(buf), &len, NULL) < 0)
		return 2;
	printf("ready\n");
	fflush(stdout);
	while (next < n && time(NULL) < end) {
		int kn = snprintf(k, sizeof(k), "k%ld", next);
		int r = store_get(st, "whitelist", k, kn, buf, sizeof(buf), &len, NULL);
		if (r < 0) {
			fprintf(stderr, "get %s: %s\n", k, store_strerror(store_last_error()));
			return 1;
		}
		if (r == 1) {
			if (len != (size_t)kn || memcmp(buf, k, len) != 0) {
				fprintf(stderr, "bad value for %s\n", k);
				return 1;
			}
			next++;
		} else {
			usleep(1000);
		}
	}
	printf("seen %ld of %ld\n", next, n);
	store_close(st);
	return next == n ? 0 : 1;
}

static int mode_check(const char *dir, const char *file)
{
	struct store *st = open_dir(dir);
	FILE *fp = fopen(file, "r");
	char line[64], buf[64];
	long ok = 0, missing = 0;
	size_t len;

	if (fp == NULL)
		return 2;
	while (fgets(line, sizeof(line), fp) != NULL) {
		size_t n = strlen(line);
		if (n == 0 || line[n - 1] != '\n')
			continue; /* a line cut by the kill was never reported done */
		line[--n] = '\0';
		if (store_get(st, "whitelist", line, n, buf, sizeof(buf), &len, NULL) == 1 &&
		    len == n && memcmp(buf, line, n) == 0) {
			ok++;
		} else {
			missing++;
			fprintf(stderr, "missing: %s\n", line);
		}
	}
	fclose(fp);
	/* total: the records in the file, walked (the count record may
	 * miss the last writes of a process killed with SIGKILL) */
	printf("present %ld missing %ld total %d count %ld\n", ok, missing,
	       store_traverse(st, "whitelist", NULL, NULL), store_count(st, "whitelist"));
	store_close(st);
	return missing == 0 && ok > 0 ? 0 : 1;
}

static int mode_bench(const char *dir, long n)
{
	struct store *st = open_dir(dir);
	char k[96], buf[64];
	long i, errors = 0;
	long long t0 = now_ms(), ms;
	unsigned x = 12345, cur = 0;
	size_t len;

	for (i = 0; i < n; i++) {
		int kn;
		x = x * 1103515245u + 12345u;
		kn = snprintf(k, sizeof(k), "198.51.%u.0/<s%u@example.org>/<r@example.net>",
		              (x >> 8) % 256, (x >> 16) % 400);
		switch ((x >> 28) % 10) {
		case 0:
			if (store_del(st, "greylist", k, kn, 0) < 0)
				errors++;
			break;
		case 1:
		case 2:
		case 3:
			if (store_put(st, "greylist", k, kn, k, 16, 0, 0) < 0)
				errors++;
			break;
		default:
			if (store_get(st, "greylist", k, kn, buf, sizeof(buf), &len, NULL) < 0)
				errors++;
		}
		if (i % 1000 == 0 && store_expire_step(st, "greylist", 1, 64, &cur) < 0)
			errors++;
	}
	ms = now_ms() - t0;
	printf("bench: %ld mixed ops (60%% get, 30%% put, 10%% del) in %lld ms: %.0f ops/s, %ld "
	       "records, %ld errors\n",
	       n, ms, ms > 0 ? n * 1000.0 / ms : 0.0, store_count(st, "greylist"), errors);
	store_close(st);
	return errors != 0;
}

/* --fill DIR PAD: write refs records until the file system is full, then
 * remove PAD and write again at once (the space is back). */
static int mode_fill(const char *dir, const char *pad)
{
	struct store *st;
	char k[32], v[300];
	long i, n = -1;
	int fails = 0;

	log_open("test_store", "stderr", NULL);
	st = open_dir(dir);
	memset(v, 'v', sizeof(v));
	for (i = 0; i < 1000000; i++) {
		int kn = snprintf(k, sizeof(k), "r%ld", i);
		if (store_put(st, "refs", k, kn, v, sizeof(v), 0, 0) < 0) {
			n = i;
			break;
		}
	}
	if (n < 0) {
		printf("never full\n");
		return 1;
	}
	printf("full after %ld: %s\n", n, store_strerror(store_last_error()));
	/* more failing writes: no more log lines */
	for (i = 0; i < 20; i++) {
		int kn = snprintf(k, sizeof(k), "x%ld", i);
		fails += store_put(st, "refs", k, kn, v, sizeof(v), 0, 0) < 0;
	}
	printf("then %d of 20 failed\n", fails);
	/* a namespace whose file cannot even be created: an error each
	 * time, never a half-made file taken for a damaged one */
	fails = 0;
	for (i = 0; i < 5; i++)
		fails +=
		    store_put(st, "greylist", "g", 1, v, sizeof(v), 0, 0) < 0 &&
		    (store_last_error() == STORE_ERR_NOSPACE || store_last_error() == STORE_ERR_IO);
	printf("new file: %d of 5 failed\n", fails);
	if (unlink(pad) < 0)
		return 2;
	for (i = 0; i < 20; i++) {
		int kn = snprintf(k, sizeof(k), "y%ld", i);
		if (store_put(st, "refs", k, kn, v, sizeof(v), 0, 0) < 0) {
			printf("still failing after the space came back: %s\n",
			       store_strerror(store_last_error()));
			return 1;
		}
	}
	if (store_put(st, "greylist", "g", 1, v, sizeof(v), 0, 0) < 0) {
		printf("new file still failing: %s\n", store_strerror(store_last_error()));
		return 1;
	}
	printf("recovered; count %ld\n", store_count(st, "refs"));
	store_close(st);
	return 0;
}

/* --rofs DIR: on a read-only file system, the daemon's way (read-write
 * store): lookups work, a write fails and says why. */
static int mode_rofs(const char *dir)
{
	struct store *st;
	char buf[64];
	size_t len;
	int r;

	log_open("test_store", "stderr", NULL);
	st = open_dir(dir);
	r = store_get(st, "whitelist", "k0", 2, buf, sizeof(buf), &len, NULL);
	printf("get %d\n", r);
	r = store_put(st, "whitelist", "new", 3, "v", 1, 0, 0);
	printf("put %d: %s\n", r, r < 0 ? store_strerror(store_last_error()) : "ok");
	r = store_put(st, "whitelist", "new2", 4, "v", 1, 0, 0);
	printf("put %d: %s\n", r, r < 0 ? store_strerror(store_last_error()) : "ok");
	store_close(st);
	return 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_put_get_del, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_version_byte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_traverse_count, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expire_step, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damage_closed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damage_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sigbus, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sigbus_foreign, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mutex_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keep_aside, setup, teardown),
		cmocka_unit_test_setup_teardown(test_count_record, setup, teardown),
		cmocka_unit_test_setup_teardown(test_count_legacy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expire_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rdonly, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unusable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_many_ns, setup, teardown),
	};

	log_open("test_store", getenv("TEST_LOG") ? getenv("TEST_LOG") : "none", NULL);
	log_set_debug(getenv("TEST_LOG") != NULL);
	if (argc == 5 && strcmp(argv[1], "--writer") == 0)
		return mode_writer(argv[2], atol(argv[3]), argv[4]);
	if (argc == 5 && strcmp(argv[1], "--reader") == 0)
		return mode_reader(argv[2], atol(argv[3]), atoi(argv[4]));
	if (argc == 4 && strcmp(argv[1], "--check") == 0)
		return mode_check(argv[2], argv[3]);
	if (argc == 4 && strcmp(argv[1], "--bench") == 0)
		return mode_bench(argv[2], atol(argv[3]));
	if (argc == 4 && strcmp(argv[1], "--fill") == 0)
		return mode_fill(argv[2], argv[3]);
	if (argc == 3 && strcmp(argv[1], "--rofs") == 0)
		return mode_rofs(argv[2]);
	if (argc != 1) {
		fprintf(stderr, "usage: test_store [--writer DIR N normal|durable | --reader DIR N "
		                "SECS | --check DIR FILE | --bench DIR N]\n");
		return 2;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
