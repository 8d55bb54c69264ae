/* lib/store/store_tdb.c - the TDB backend of the store (see store.h)
 *
 * Threading: one struct ns_file per namespace, created on first use and never
 * freed before stdb_close().  The slot table is append-only: a slot is filled
 * under st->mu and published by an atomic increment of st->nns, so lookups
 * scan it without locking.  Every TDB call on a file happens with that file's
 * mutex held (TDB contexts are not thread-safe).  Walks (traverse, count,
 * expiry) take the mutex for one hash chain at a time.
 *
 * Errors: -1 with a thread-local typed error.  Damage (a file that cannot
 * be opened as a TDB, TDB_ERR_CORRUPT, or a read past the end of a file that
 * shrank or whose chains point outside it) is logged in one line, the file
 * is renamed aside (the newest STORE_KEEP_ASIDE copies are kept) and an
 * empty one created, so the caller keeps working.  Other failures (no space,
 * read-only file system) are logged once when they start and once when the
 * file works again, not at every call.  TDB's own messages go to the debug
 * log; the one line quotes the message that explains the failure.
 *
 * Files are mapped (TDB's default mmap: 2.9x the operations per CPU-second
 * of TDB_NOMMAP's pread per record, contrib/bench/README.md) and locked with
 * fcntl() record locks.  A file truncated under the mapping (by another
 * process, or by hand) makes the next access to the lost pages raise SIGBUS:
 * every use of a TDB context happens under with_ns(), whose sigsetjmp()
 * point the store's SIGBUS handler jumps back to (bus_fault): the context is
 * abandoned (tdb_close(), whose close of the descriptor drops every fcntl
 * lock this process held on the file), the file is checked like a file found
 * shorter (reopened, kept when tdb_check() passes, else moved aside) and the
 * operation is done again once on what is now there.  A SIGBUS anywhere else
 * keeps its former disposition.  Robust mutexes (TDB_MUTEX_LOCKING) are not
 * used: they need the mapping too, a jump out of TDB would leave a mutex
 * locked in the file for every other process and a dangling entry in the
 * thread's robust list, and the file format would change (42 MB more per
 * million chains, EINVAL for every read-write opener without the flag); see
 * contrib/bench/README.md for the figures.
 *
 * Record count: each file holds one extra record (count_key, with a header
 * whose version byte is 0, so walks skip it) with the number of records.
 * Each process counts its inserts and deletes in memory and adds them to
 * the record under its chain lock now and then (count_flush), so
 * stdb_count() reads one record instead of walking the file.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <tdb.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "store.h"
#include "store_impl.h"
#include "util.h"

/* what was logged about failures (see fail_note) */
struct failstate {
	int failing;         /* failing now */
	enum store_err cur;  /* with this error */
	enum store_err last; /* the error last logged, at logged_at */
	time_t logged_at;
	int announced; /* this failure was logged: log its end too */
};

/* sizeof(struct tdb_header) in TDB's file format; the head of hash chain h
 * is the 32-bit offset at TDB_HEADER_SIZE + 4 * (h + 1) */
#define TDB_HEADER_SIZE 168
#define HEADS_BLOCK     4096 /* chain heads read at once by walks */

/* expiry times sampled per pass of a capped namespace (store_ns_limit) */
#define STORE_SAMPLES 1024

struct ns_file {
	struct tstore *st;
	char name[STORE_MAX_NS_NAME + 1];
	char *path;
	int hash_size;
	int rdonly;                        /* the store was opened with STORE_RDONLY */
	pthread_mutex_t mu;                /* serialises every use of tdb */
	struct tdb_context *tdb;           /* NULL until the first successful open */
	struct tdb_logging_context logctx; /* log_private = this file */
	/* What TDB logged during the current call (f->mu held): the errno at
	 * the message, whether it shows a damaged file, the message. */
	int tdb_errno;
	int tdb_broken;
	char tdb_msg[200];
	/* the open file: identity and largest size seen (a TDB file never
	 * shrinks: a smaller one was truncated under us) */
	dev_t dev;
	ino_t ino;
	off_t size_seen;
	time_t checked;        /* monotonic second of the last identity check */
	struct failstate fail; /* failures of this file (f->mu) */
	int ro_fallback;       /* opened read-only because the file system is */
	/* the size of the mutex area before TDB's header and chains: a file
	 * made with TDB_MUTEX_LOCKING by another program (0: fcntl locks) */
	off_t mutex_off;
	/* records added minus deleted by this process and not yet added to
	 * the count record (count_flush) */
	long count_delta;
	/* record cap (store_ns_limit): expiry passes sample the expiry times
	 * and, over the cap, delete the records expiring before evict_before */
	long limit;
	time_t evict_before;
	time_t sample[STORE_SAMPLES];
	unsigned nsample, nseen;
};

struct tstore {
	char *dir;
	int flags;
	pthread_mutex_t mu; /* slot creation */
	int nns;            /* published slots; atomic */
	struct ns_file ns[STORE_MAX_NS];
	time_t (*now)(void *arg);
	void *now_arg;
	/* a full or read-only file system: logged once for all files */
	pthread_mutex_t fs_mu;
	struct failstate fs;
};

static int count_flush(struct ns_file *f);
static int abandon(struct tdb_context *t);
static int low_space(struct ns_file *f);

static int fail_with(enum store_err e)
{
	store_set_error(e);
	return -1;
}

static time_t monotonic_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return ts.tv_sec;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static time_t default_now(void *arg)
{
	(void)arg;
	return clock_now(); /* time(NULL), or the tests' clock */
}

/* Does TDB's message say the file is damaged (as opposed to a failing
 * system call on a sound file)? */
static int msg_broken(const char *m)
{
	static const char *const pat[] = {
		"beyond eof",   "bad magic", "Bad magic", "tdb_read failed", " wrap",
		"does not fit", "corrupt",   "Corrupt",   "too large",       "bad hash",
	};

	for (size_t i = 0; i < ARRAY_SIZE(pat); i++)
		if (strstr(m, pat[i]) != NULL)
			return 1;
	return 0;
}

/* TDB's injected logger.  Errors are kept in the file's slot (the caller
 * logs one line per event, quoting them); everything goes to the debug
 * log. */
static void tdb_logger(struct tdb_context *tdb, enum tdb_debug_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void tdb_logger(struct tdb_context *tdb, enum tdb_debug_level level, const char *fmt, ...)
{
	int saved = errno;
	struct ns_file *f = tdb != NULL ? tdb_get_logging_private(tdb) : NULL;
	char buf[512];
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	if (f != NULL && level <= TDB_DEBUG_ERROR) {
		if (saved != 0)
			f->tdb_errno = saved;
		if (msg_broken(buf))
			f->tdb_broken = 1;
		if (f->tdb_msg[0] == '\0' || msg_broken(buf))
			bcopy_str(f->tdb_msg, sizeof(f->tdb_msg), buf);
	}
	log_msg(LOG_LVL_DEBUG, "store: tdb: %s", buf);
	errno = saved;
}

/* Forget what TDB logged before a new call on f. */
static void tdb_note_reset(struct ns_file *f)
{
	f->tdb_errno = 0;
	f->tdb_broken = 0;
	f->tdb_msg[0] = '\0';
	errno = 0;
}

/* --- SIGBUS: a file truncated under the mapping ------------------------------
 *
 * bus_env is set (in this thread) while a TDB context is in use; the
 * handler jumps there.  SA_NODEFER: the jump leaves the handler without
 * sigreturn, and sigsetjmp(env, 0) does not restore the signal mask, so
 * SIGBUS must not stay blocked (a blocked SIGBUS at a fault kills). */
static __thread sigjmp_buf *bus_env;
static struct sigaction bus_prev;
static pthread_mutex_t bus_mu = PTHREAD_MUTEX_INITIALIZER;

static void on_sigbus(int sig, siginfo_t *si, void *uctx)
{
	sigjmp_buf *env = bus_env;

	(void)uctx;
	if (env != NULL && si != NULL && si->si_code > 0) {
		bus_env = NULL;
		siglongjmp(*env, 1);
	}
	/* not an access to a store file: what SIGBUS did before (the fault
	 * happens again when this returns; a sent signal is sent again) */
	sigaction(SIGBUS, &bus_prev, NULL);
	if (si == NULL || si->si_code <= 0)
		raise(sig);
}

/* At each store_open(): install on_sigbus unless it is installed (the
 * handler found there is kept for the SIGBUS that are not ours; a program
 * or a test framework may have installed its own since). */
static void bus_install(void)
{
	struct sigaction sa, cur;

	pthread_mutex_lock(&bus_mu);
	if (sigaction(SIGBUS, NULL, &cur) == 0 &&
	    (!(cur.sa_flags & SA_SIGINFO) || cur.sa_sigaction != on_sigbus)) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = on_sigbus;
		sa.sa_flags = SA_SIGINFO | SA_NODEFER;
		sigemptyset(&sa.sa_mask);
		bus_prev = cur;
		sigaction(SIGBUS, &sa, NULL);
	}
	pthread_mutex_unlock(&bus_mu);
}

static struct tstore *stdb_open_flags(const char *dir, int flags, char *err, size_t errsize)
{
	struct tstore *st;
	struct stat sb;

	if (dir == NULL || dir[0] == '\0') {
		snprintf(err, errsize, "store: no state directory given");
		store_set_error(STORE_ERR_INVAL);
		return NULL;
	}
	if (stat(dir, &sb) < 0) {
		snprintf(err, errsize, "store: %s: %s", dir, strerror(errno));
		store_set_error(STORE_ERR_IO);
		return NULL;
	}
	if (!S_ISDIR(sb.st_mode)) {
		snprintf(err, errsize, "store: %s: not a directory", dir);
		store_set_error(STORE_ERR_IO);
		return NULL;
	}
	if ((flags & ~STORE_RDONLY) != 0) {
		snprintf(err, errsize, "store: bad flags");
		store_set_error(STORE_ERR_INVAL);
		return NULL;
	}
	/* A read-only file system is not refused here: the daemon starts and
	 * each write fails (the checks' on_error decides), and a read-only
	 * store reads it. */
	if (access(dir, R_OK | X_OK | ((flags & STORE_RDONLY) ? 0 : W_OK)) < 0 && errno != EROFS) {
		snprintf(err, errsize, "store: %s: %s", dir, strerror(errno));
		store_set_error(STORE_ERR_IO);
		return NULL;
	}
	bus_install();
	st = xcalloc(1, sizeof(*st));
	st->dir = xstrdup(dir);
	st->flags = flags;
	pthread_mutex_init(&st->mu, NULL);
	pthread_mutex_init(&st->fs_mu, NULL);
	st->now = default_now;
	return st;
}

/* Flush f's count and close its file, at store_close(): a SIGBUS (the
 * file shrank) loses the count and leaves the context (abandon). */
static void close_file(struct ns_file *f)
{
	sigjmp_buf env;

	if (sigsetjmp(env, 0) == 0) {
		bus_env = &env;
		(void)count_flush(f);
		bus_env = NULL;
		tdb_close(f->tdb);
	} else {
		(void)abandon(f->tdb);
	}
	f->tdb = NULL;
}

static void stdb_close(struct tstore *st)
{
	int i, n;

	if (st == NULL)
		return;
	n = __atomic_load_n(&st->nns, __ATOMIC_ACQUIRE);
	for (i = 0; i < n; i++) {
		struct ns_file *f = &st->ns[i];
		if (f->tdb != NULL)
			close_file(f);
		pthread_mutex_destroy(&f->mu);
		free(f->path);
	}
	pthread_mutex_destroy(&st->mu);
	pthread_mutex_destroy(&st->fs_mu);
	free(st->dir);
	free(st);
}

static void stdb_set_clock(struct tstore *st, time_t (*now)(void *arg), void *arg)
{
	st->now = now != NULL ? now : default_now;
	st->now_arg = arg;
}

/* Find (or create) namespace ns's slot.  NULL with the error set. */
static struct ns_file *ns_slot(struct tstore *st, const char *ns)
{
	int i, n;
	struct ns_file *f;

	if (st == NULL || !store_ns_name_ok(ns)) {
		store_set_error(STORE_ERR_INVAL);
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
		store_set_error(STORE_ERR_FULL);
		return NULL;
	}
	f = &st->ns[n];
	bcopy_str(f->name, sizeof(f->name), ns);
	f->path = xasprintf("%s/%s.tdb", st->dir, ns);
	f->st = st;
	f->hash_size = STORE_HASH_DEFAULT;
	f->rdonly = (st->flags & STORE_RDONLY) != 0;
	f->tdb = NULL;
	f->logctx.log_fn = tdb_logger;
	f->logctx.log_private = f;
	memset(&f->fail, 0, sizeof(f->fail));
	f->limit = 0;
	f->evict_before = 0;
	f->nsample = f->nseen = 0;
	pthread_mutex_init(&f->mu, NULL);
	__atomic_store_n(&st->nns, n + 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&st->mu);
	return f;
}

static int stdb_ns_hash_size(struct tstore *st, const char *ns, int hash_size)
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

/* --- the record count ---------------------------------------------------- */

/* The key of the count record: a NUL first byte, which no text key has. */
static const unsigned char count_key_bytes[] = { 0, 'p', 'c', ':', 'c', 'o', 'u', 'n', 't' };
static const TDB_DATA count_key = { (unsigned char *)(uintptr_t)count_key_bytes,
	                            sizeof(count_key_bytes) };

static int is_count_key(const void *key, size_t keylen)
{
	return keylen == sizeof(count_key_bytes) && memcmp(key, count_key_bytes, keylen) == 0;
}

/* tdb_parse_record() parser for the count record. */
static int count_parser(TDB_DATA key, TDB_DATA data, void *arg)
{
	uint64_t x = 0;

	(void)key;
	if (data.dsize != STORE_HDR_SIZE + 8 || data.dptr[0] != 0)
		return -2;
	for (int i = 0; i < 8; i++)
		x = (x << 8) | data.dptr[STORE_HDR_SIZE + i];
	*(long *)arg = (long)(int64_t)x;
	return 0;
}

/* The count record of f into *n.  1 found, 0 absent, -1 TDB error (left in
 * the context).  f->mu held. */
static int count_read(struct ns_file *f, long *n)
{
	int rc = tdb_parse_record(f->tdb, count_key, count_parser, n);

	if (rc == 0)
		return 1;
	if (rc == -2)
		return 0; /* not ours: rewritten by count_write */
	return tdb_error(f->tdb) == TDB_ERR_NOEXIST ? 0 : -1;
}

static int count_write(struct ns_file *f, long n)
{
	unsigned char rec[STORE_HDR_SIZE + 8] = { 0 };
	TDB_DATA d = { rec, sizeof(rec) };
	uint64_t x = (uint64_t)(int64_t)(n < 0 ? 0 : n);

	for (int i = 0; i < 8; i++)
		rec[STORE_HDR_SIZE + i] = (unsigned char)(x >> (56 - 8 * i));
	return tdb_store(f->tdb, count_key, d, TDB_REPLACE);
}

/* Add delta to f's count under the count record's chain lock (another
 * process may be adding too).  0 or -1 (TDB error in the context). */
static int count_add(struct ns_file *f, long delta)
{
	long n = 0;
	int rc;

	if (delta == 0)
		return 0;
	if (tdb_chainlock(f->tdb, count_key) < 0)
		return -1;
	rc = count_read(f, &n) < 0 ? -1 : count_write(f, n + delta);
	tdb_chainunlock(f->tdb, count_key);
	return rc;
}

/* Note a record added (1) or deleted (-1) by this process.  Returns 1. */
static int count_note(struct ns_file *f, int d)
{
	f->count_delta += d;
	return 1;
}

/* Add this process's pending changes to f's count record (f->mu held):
 * done by stdb_count(), by each expiry step (the daemon's: ten times a
 * second) and at close, rather than by every write, which would all
 * contend for the count record's lock.  0 or -1. */
static int count_flush(struct ns_file *f)
{
	if (f->count_delta == 0 || f->tdb == NULL || f->rdonly || f->ro_fallback)
		return 0;
	tdb_note_reset(f);
	if (count_add(f, f->count_delta) < 0)
		return -1;
	f->count_delta = 0;
	return 0;
}

static int count_walk_fn(struct tdb_context *tdb, TDB_DATA key, TDB_DATA data, void *arg)
{
	(void)tdb;
	(void)data;
	if (!is_count_key(key.dptr, key.dsize))
		(*(long *)arg)++;
	return 0;
}

/* A file without a count record (made by an older version): count it once,
 * walking the whole file.  f->mu held.  0 or -1. */
static int count_init(struct ns_file *f)
{
	long n = 0;

	if (count_read(f, &n) != 0)
		return 0;
	n = 0;
	if (tdb_traverse_read(f->tdb, count_walk_fn, &n) < 0)
		return -1;
	if (f->rdonly)
		return 0; /* stdb_count() walks again each time */
	return count_write(f, n);
}

/* --- opening, damage and recovery ------------------------------------------ */

/* Failure logging, one line per event: the first failure with an error
 * is logged, repeats are not; a write that works after a logged failure
 * logs "works again".  The same error is logged again at most once a
 * minute, so a file that alternates (a full disk: updates in place work,
 * growing fails) costs two lines a minute at most.  Full and read-only
 * file systems are an event of the store (all files at once), other
 * failures of the file. */
static int fail_note(struct failstate *s, enum store_err e)
{
	time_t now = monotonic_sec();
	int log = 0;

	if ((!s->failing || s->cur != e) &&
	    (s->last != e || s->logged_at == 0 || now - s->logged_at >= 60)) {
		log = 1;
		s->last = e;
		s->logged_at = now;
		s->announced = 1;
	}
	s->failing = 1;
	s->cur = e;
	return log;
}

static int fail_clear(struct failstate *s)
{
	int log = s->failing && s->announced;

	s->failing = 0;
	s->announced = 0;
	return log;
}

/* Delete all but the newest STORE_KEEP_ASIDE copies of f's file moved
 * aside: each is a full copy and they would fill state_dir. */
static void prune_aside(struct ns_file *f)
{
	char *dir = xstrdup(f->path), *base, **names = NULL;
	size_t n = 0, cap = 0, plen;
	DIR *d;
	struct dirent *e;

	base = strrchr(dir, '/');
	*base++ = '\0';
	plen = strlen(base);
	if ((d = opendir(dir)) == NULL) {
		free(dir);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, base, plen) != 0 ||
		    strncmp(e->d_name + plen, ".corrupt-", 9) != 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			names = xrealloc(names, cap * sizeof(*names));
		}
		names[n++] = xstrdup(e->d_name);
	}
	closedir(d);
	/* the names sort by time: NAME.corrupt-YYYYMMDDTHHMMSS[-NN] */
	qsort(names, n, sizeof(*names), cmp_str);
	for (size_t i = 0; i < n; i++) {
		if (i + STORE_KEEP_ASIDE < n) {
			char *p = xasprintf("%s/%s", dir, names[i]);
			if (unlink(p) == 0)
				log_msg(LOG_LVL_INFO, "store: removed %s (keeping the newest %d)",
				        p, STORE_KEEP_ASIDE);
			free(p);
		}
		free(names[i]);
	}
	free(names);
	free(dir);
}

/* Rename f's file to PATH.corrupt-TIMESTAMP, with one log line saying why
 * (why: TDB's message or ours).  0 or -1. */
static int move_aside(struct ns_file *f, const char *why)
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
		               : xasprintf("%s.corrupt-%s-%02d", f->path, stamp, i);
		if (lstat(aside, &sb) < 0 && errno == ENOENT)
			break;
	}
	if (rename(f->path, aside) == 0) {
		log_msg(LOG_LVL_ERR, "store: %s is damaged (%s): moved aside to %s, starting empty",
		        f->path, why, aside);
		rc = 0;
	} else {
		int e = errno;
		if (fail_note(&f->fail, STORE_ERR_CORRUPT))
			log_msg(LOG_LVL_ERR,
			        "store: %s is damaged (%s) and cannot be moved aside: %s", f->path,
			        why, strerror(e));
	}
	free(aside);
	if (rc == 0)
		prune_aside(f);
	return rc;
}

/* TDB's header (tdb_private.h): feature_flags at byte 60, mutex_size at 64;
 * the feature flag of a file made with TDB_MUTEX_LOCKING */
#define TDB_FEATURES_OFF    60
#define TDB_FEATURE_MUTEXES 1u

/* The size of the mutex area at the start of the file open at fd, 0 when
 * the file has none (fcntl locks). */
static off_t mutex_area(int fd)
{
	unsigned char h[8];
	uint32_t flags, size;

	if (fd < 0 || pread(fd, h, sizeof(h), TDB_FEATURES_OFF) != (ssize_t)sizeof(h))
		return 0;
	memcpy(&flags, h, 4);
	memcpy(&size, h + 4, 4);
	return (flags & TDB_FEATURE_MUTEXES) ? (off_t)size : 0;
}

static struct tdb_context *tdb_open_file(struct ns_file *f, int create)
{
	const int flags = TDB_INCOMPATIBLE_HASH | TDB_SEQNUM;
	const int oflags = f->rdonly ? O_RDONLY : O_RDWR | (create ? O_CREAT : 0);
	struct tdb_context *t;
	char msg[sizeof(f->tdb_msg)];

	/* TDB_SEQNUM: every write bumps a counter in the file's header, so a
	 * reader can tell cheaply that a namespace changed (store_seqnum).
	 * Mapped, fcntl locks: see the top of this file. */
	t = tdb_open_ex(f->path, f->hash_size, flags, oflags, 0660, &f->logctx, NULL);
	/* (a read-only opener needs no flag, but the chains are behind the
	 * mutex area there too) */
	f->mutex_off = t != NULL ? mutex_area(tdb_fd(t)) : 0;
	if (t != NULL || errno != EINVAL || create || f->rdonly ||
	    !tdb_runtime_check_for_robust_mutexes())
		return t;
	/* A file made with robust mutexes (TDB_MUTEX_LOCKING) by another
	 * program: TDB opens it read-write only with the flag (EINVAL
	 * without).  Open it with them rather than move it aside as
	 * damaged; what still does not open is judged as before. */
	bcopy_str(msg, sizeof(msg), f->tdb_msg);
	t = tdb_open_ex(f->path, f->hash_size, flags | TDB_MUTEX_LOCKING, oflags, 0660, &f->logctx,
	                NULL);
	if (t == NULL) {
		bcopy_str(f->tdb_msg, sizeof(f->tdb_msg), msg);
		errno = EINVAL;
		return NULL;
	}
	tdb_note_reset(f);
	f->mutex_off = mutex_area(tdb_fd(t));
	if (f->mutex_off > 0)
		log_msg(LOG_LVL_WARN,
		        "store: %s was made with robust mutexes (TDB_MUTEX_LOCKING) by another "
		        "program: opened with them (portcullis makes its files with fcntl locks; "
		        "portcullisctl dump and load convert it)",
		        f->path);
	return t;
}

/* Create f's file (O_CREAT).  A creation that fails half-way (a full file
 * system) leaves a file too short to be a TDB: it is removed, or the next
 * access would take it for a damaged file and move it aside. */
static struct tdb_context *create_file(struct ns_file *f)
{
	struct tdb_context *t = tdb_open_file(f, 1);
	int e = errno;
	struct stat sb;

	if (t == NULL && lstat(f->path, &sb) == 0 && S_ISREG(sb.st_mode) &&
	    sb.st_size < TDB_HEADER_SIZE + 4 * ((off_t)f->hash_size + 1))
		(void)unlink(f->path);
	errno = e;
	return t;
}

/* Remember which file is open (to notice a replaced or truncated one). */
static void note_identity(struct ns_file *f)
{
	struct stat sb;

	f->checked = monotonic_sec();
	if (fstat(tdb_fd(f->tdb), &sb) == 0) {
		f->dev = sb.st_dev;
		f->ino = sb.st_ino;
		f->size_seen = sb.st_size;
	}
}

/* The errors of open that mean "there is a file, but it is not a usable
 * TDB" (as opposed to permissions, a full disk, no descriptors...). */
static int open_err_broken(int e)
{
	return e == EIO || e == EINVAL || e == EFAULT || e == ENOTSUP;
}

static enum store_err errno_err(int e)
{
	switch (e) {
	case ENOSPC:
	case EDQUOT:
	case EFBIG: return STORE_ERR_NOSPACE;
	case EROFS: return STORE_ERR_ROFS;
	case ENOMEM: return STORE_ERR_NOMEM;
	default: return STORE_ERR_IO;
	}
}

/* Log that f fails with e (see fail_note). */
static int report(struct ns_file *f, enum store_err e, const char *what, const char *detail)
{
	int fs = e == STORE_ERR_NOSPACE || e == STORE_ERR_ROFS, log;

	if (fs) {
		pthread_mutex_lock(&f->st->fs_mu);
		log = fail_note(&f->st->fs, e);
		pthread_mutex_unlock(&f->st->fs_mu);
	} else {
		log = fail_note(&f->fail, e);
	}
	if (log)
		log_msg(LOG_LVL_ERR, "store: %s %s: %s%s%s%s", what, f->path, store_strerror(e),
		        detail && detail[0] ? " (" : "", detail ? detail : "",
		        detail && detail[0] ? ")" : "");
	return fail_with(e);
}

/* f worked (wrote: a write; a read says nothing about a full or read-only
 * file system). */
static void works(struct ns_file *f, int wrote)
{
	if (fail_clear(&f->fail))
		log_msg(LOG_LVL_WARN, "store: %s works again", f->path);
	if (wrote && __atomic_load_n(&f->st->fs.failing, __ATOMIC_RELAXED)) {
		int log;
		pthread_mutex_lock(&f->st->fs_mu);
		log = fail_clear(&f->st->fs);
		pthread_mutex_unlock(&f->st->fs_mu);
		if (log)
			log_msg(LOG_LVL_WARN,
			        "store: %s works again (the file system takes writes)", f->path);
	}
}

/* Close f's file (after damage, or when it was replaced). */
static void ns_drop(struct ns_file *f)
{
	if (f->tdb != NULL)
		tdb_close(f->tdb);
	f->tdb = NULL;
	f->count_delta = 0;
}

/* Open f's file if it is not open yet; f->mu held.  0 or -1.
 *
 * Never open an existing file with O_CREAT first: tdb_open_ex() silently
 * reinitialises a file whose header is not a TDB header when O_CREAT is
 * given, which would destroy it without a trace.  So open without it; EIO
 * or EINVAL then mean "exists but is not a (usable) TDB" (garbage, a
 * truncated file whose hash table does not fit, another hash function), and
 * the file is moved aside before an empty one is created. */
static int ns_ensure_open(struct ns_file *f)
{
	struct stat sb;
	int e, created = 0;
	enum store_err err;

	if (f->tdb != NULL)
		return 0;
	tdb_note_reset(f);
	/* a new file: O_CREAT at once (TDB's open lock makes a concurrent
	 * creator in another process safe); this also avoids TDB's warning */
	if (lstat(f->path, &sb) < 0 && errno == ENOENT)
		e = ENOENT;
	else if ((f->tdb = tdb_open_file(f, 0)) != NULL)
		goto opened;
	else
		e = errno;
	if (e == EROFS && !f->rdonly) {
		/* a read-only file system: read the file, fail the writes
		 * (check_identity tries read-write again once a second) */
		tdb_note_reset(f);
		f->rdonly = 1;
		f->tdb = tdb_open_file(f, 0);
		f->rdonly = 0;
		if (f->tdb != NULL) {
			f->ro_fallback = 1;
			(void)report(f, STORE_ERR_ROFS, "cannot write to", NULL);
			note_identity(f);
			if (count_init(f) == 0)
				return 0;
			ns_drop(f);
		}
		e = EROFS;
	}
	if (e == ENOENT && !f->rdonly) {
		tdb_note_reset(f);
		f->tdb = create_file(f);
		if (f->tdb != NULL) {
			created = 1;
			goto opened;
		}
		e = errno;
		if (e == EROFS) {
			f->ro_fallback = 1;
			(void)report(f, STORE_ERR_ROFS, "cannot create", NULL);
		}
	}
	if ((e == ENOENT && f->rdonly) || (e == EROFS && f->ro_fallback && f->tdb == NULL)) {
		/* nothing there: an empty namespace, kept in memory */
		f->tdb = tdb_open_ex("ns", 7, TDB_INTERNAL, O_RDWR, 0, &f->logctx, NULL);
		if (f->tdb == NULL)
			return fail_with(STORE_ERR_NOMEM);
		(void)count_write(f, 0);
		f->checked = monotonic_sec();
		return 0;
	}
	if (e == ENOENT || e == EROFS) {
		/* the error is reported below */
	} else if (open_err_broken(e) && !f->rdonly && lstat(f->path, &sb) == 0 &&
	           S_ISREG(sb.st_mode)) {
		/* An empty file is a TDB that was never initialised; anything
		 * else that fails the header check is damaged.  Other errors
		 * (permissions, a directory in the way, no descriptors) are not
		 * damage and must not cost the data. */
		char why[sizeof(f->tdb_msg)];
		bcopy_str(why, sizeof(why), f->tdb_msg[0] ? f->tdb_msg : strerror(e));
		if (sb.st_size == 0 || move_aside(f, why) == 0) {
			tdb_note_reset(f);
			f->tdb = create_file(f);
			if (f->tdb != NULL) {
				created = 1;
				goto opened;
			}
			e = errno;
		}
	}
	return report(f, e == EACCES || e == EPERM ? STORE_ERR_IO : errno_err(e ? e : EIO),
	              "cannot open", e && errno_err(e) == STORE_ERR_IO ? strerror(e) : NULL);

opened:
	note_identity(f);
	if (created ? count_write(f, 0) == 0 : count_init(f) == 0)
		return 0;
	if (!created && !f->rdonly && (tdb_error(f->tdb) == TDB_ERR_CORRUPT || f->tdb_broken)) {
		/* it opened, but its records cannot be read */
		char why[sizeof(f->tdb_msg) + 16];
		snprintf(why, sizeof(why), "count: %s",
		         f->tdb_msg[0] ? f->tdb_msg : tdb_errorstr(f->tdb));
		ns_drop(f);
		if (move_aside(f, why) < 0)
			return fail_with(STORE_ERR_CORRUPT);
		tdb_note_reset(f);
		if ((f->tdb = create_file(f)) == NULL) {
			e = errno;
			return report(f, errno_err(e ? e : EIO), "cannot create", NULL);
		}
		created = 1;
		goto opened;
	}
	e = f->tdb_errno;
	err = e ? errno_err(e) : low_space(f) ? STORE_ERR_NOSPACE : STORE_ERR_IO;
	ns_drop(f);
	return report(f, err, "cannot count the records of",
	              err == STORE_ERR_IO ? f->tdb_msg : NULL);
}

/* Does the file still start with a TDB header of the hash size opened?
 * (TDB's layout: the text "TDB file\n" in 32 bytes, the version, the hash
 * size at byte 36, in the byte order of the file.) */
static int header_ok(struct ns_file *f)
{
	unsigned char h[40];
	uint32_t hs, want = (uint32_t)tdb_hash_size(f->tdb), swapped;

	if (pread(tdb_fd(f->tdb), h, sizeof(h), 0) != (ssize_t)sizeof(h))
		return 0;
	memcpy(&hs, h + 36, 4);
	swapped = __builtin_bswap32(hs);
	return memcmp(h, "TDB file\n", 9) == 0 && (hs == want || swapped == want);
}

/* f's file (closed) was found shorter than before (size now), by the size
 * check or by a SIGBUS: open it again; what no longer opens, or no longer
 * passes tdb_check(), is moved aside.  f->mu held. */
static void shrunk(struct ns_file *f, off_t size)
{
	tdb_note_reset(f);
	if ((f->tdb = tdb_open_file(f, 0)) != NULL && tdb_check(f->tdb, NULL, NULL) == 0) {
		log_msg(LOG_LVL_WARN, "store: %s shrank from %lld to %lld bytes but is sound",
		        f->path, (long long)f->size_seen, (long long)size);
		note_identity(f);
		return;
	}
	ns_drop(f);
	if (!f->rdonly) {
		char why[96];
		snprintf(why, sizeof(why), "truncated from %lld to %lld bytes",
		         (long long)f->size_seen, (long long)size);
		(void)move_aside(f, why);
	}
}

/* At most once a second: is the open file still the one at f->path, and
 * not shorter than before?  Another process may have moved it aside (and
 * made a new one), someone may have deleted or truncated it.  f->mu held. */
static void check_identity(struct ns_file *f)
{
	struct stat sb, fb;
	time_t now = monotonic_sec();

	if (f->tdb == NULL || f->checked == now)
		return;
	f->checked = now;
	if (f->ro_fallback) {
		char *dir = xstrdup(f->path);
		*strrchr(dir, '/') = '\0';
		if (access(dir, W_OK) == 0) {
			/* writable again: reopen read-write */
			ns_drop(f);
			f->ro_fallback = 0;
		}
		free(dir);
		return;
	}
	if (tdb_fd(f->tdb) < 0)
		return;
	if (stat(f->path, &sb) < 0 || sb.st_dev != f->dev || sb.st_ino != f->ino) {
		log_msg(LOG_LVL_WARN, "store: %s was replaced or removed: reopening it", f->path);
		ns_drop(f);
		return;
	}
	if (fstat(tdb_fd(f->tdb), &fb) < 0)
		return;
	if (fb.st_size >= f->size_seen && header_ok(f)) {
		f->size_seen = fb.st_size;
		return;
	}
	if (fb.st_size >= f->size_seen) {
		/* TDB reads its header only at open: an overwritten one would
		 * go unnoticed until the next start */
		ns_drop(f);
		if (!f->rdonly)
			(void)move_aside(f, "header overwritten");
		return;
	}
	ns_drop(f);
	shrunk(f, fb.st_size);
}

/* Close a context after a SIGBUS.  tdb_close() touches the mapping only
 * when it cancels a transaction, before it closes the descriptor: a second
 * SIGBUS there leaves the context (leaked: TDB's list of open files keeps
 * its inode, which is why the file is then moved aside) and the descriptor
 * is closed here, which drops this process's fcntl locks on the file.
 * Returns 1 when the context had to be left. */
static int abandon(struct tdb_context *t)
{
	sigjmp_buf env;
	int fd = tdb_fd(t);

	if (sigsetjmp(env, 0) == 0) {
		bus_env = &env;
		tdb_close(t);
		bus_env = NULL;
		return 0;
	}
	bus_env = NULL;
	if (fd >= 0)
		close(fd);
	return 1;
}

/* A SIGBUS during the use of f's context (f->mu held): the file shrank
 * under the mapping.  nfault: how many in this call; env: with_ns()'s jump
 * point, armed again for the check of the file (a file that keeps
 * shrinking faults again there). */
static void bus_fault(struct ns_file *f, int nfault, sigjmp_buf *env)
{
	struct tdb_context *t = f->tdb;
	struct stat sb;
	int left = 0;

	bus_env = NULL;
	f->tdb = NULL;
	f->count_delta = 0;
	if (t != NULL)
		left = abandon(t);
	log_msg(LOG_LVL_DEBUG, "store: %s: SIGBUS at an access (fault %d of this call)", f->path,
	        nfault);
	if (stat(f->path, &sb) < 0 || sb.st_dev != f->dev || sb.st_ino != f->ino) {
		/* no longer the file at f->path: the next open takes the new one */
		log_msg(LOG_LVL_WARN, "store: %s was replaced or removed: reopening it", f->path);
		return;
	}
	if (left || nfault > 2) {
		if (!f->rdonly) {
			char why[96];
			snprintf(why, sizeof(why), "truncated from %lld to %lld bytes",
			         (long long)f->size_seen, (long long)sb.st_size);
			(void)move_aside(f, why);
		}
		return;
	}
	bus_env = env;
	shrunk(f, sb.st_size);
	bus_env = NULL;
}

/* Lock the namespace's file, make sure it is open and run fn(f, arg) with
 * f->mu held (fn may use f->tdb: a SIGBUS there is caught); fn's result,
 * or -1 with the error set.  After a SIGBUS the file is checked (and
 * replaced when damaged) and fn runs again, once, on what is there now:
 * the caller gets the answer of the namespace as it now is.  fn must not
 * have effects outside the file that a second run would repeat. */
typedef int (*ns_fn)(struct ns_file *f, void *arg);

static int with_ns(struct tstore *st, const char *ns, ns_fn fn, void *arg)
{
	struct ns_file *const f = ns_slot(st, ns);
	sigjmp_buf *const outer = bus_env; /* none: no store call nests */
	sigjmp_buf env;
	volatile int nfault = 0;
	int rc;

	if (f == NULL)
		return -1;
	pthread_mutex_lock(&f->mu);
	if (sigsetjmp(env, 0) != 0) {
		nfault = nfault + 1;
		bus_fault(f, nfault, &env);
		if (nfault > 1) {
			bus_env = outer;
			pthread_mutex_unlock(&f->mu);
			return fail_with(STORE_ERR_CORRUPT);
		}
	}
	bus_env = &env;
	check_identity(f);
	if (ns_ensure_open(f) < 0) {
		rc = -1;
	} else {
		tdb_note_reset(f);
		rc = fn(f, arg);
	}
	bus_env = outer;
	pthread_mutex_unlock(&f->mu);
	return rc;
}

/* TDB grows a file with posix_fallocate(), which reports ENOSPC in its
 * return value only: TDB then fails without a message or an error of its
 * own (the context keeps the "Record does not exist" of the lookup
 * before).  Is the file system too full for TDB's next step (a quarter
 * of the file, or more)? */
static int low_space(struct ns_file *f)
{
	struct statvfs vs;
	struct stat sb;

	if (tdb_fd(f->tdb) < 0 || fstatvfs(tdb_fd(f->tdb), &vs) < 0 ||
	    fstat(tdb_fd(f->tdb), &sb) < 0)
		return 0;
	return (unsigned long long)vs.f_bavail * vs.f_frsize <
	       (unsigned long long)sb.st_size / 4 + 1024 * 1024;
}

/* Map the last TDB error of f to a store error; a damaged file is replaced
 * by an empty one.  f->mu held.  Always returns -1. */
static int tdb_fail(struct ns_file *f, const char *what)
{
	enum TDB_ERROR te = tdb_error(f->tdb);
	enum store_err e;

	if (te == TDB_ERR_CORRUPT || f->tdb_broken) {
		char why[sizeof(f->tdb_msg) + 32];
		snprintf(why, sizeof(why), "%s: %s", what,
		         f->tdb_msg[0] ? f->tdb_msg : tdb_errorstr(f->tdb));
		ns_drop(f);
		if (f->rdonly) {
			log_msg(LOG_LVL_ERR, "store: %s is damaged (%s)", f->path, why);
			return fail_with(STORE_ERR_CORRUPT);
		}
		if (move_aside(f, why) == 0)
			(void)ns_ensure_open(f);
		memset(&f->fail, 0, sizeof(f->fail));
		return fail_with(STORE_ERR_CORRUPT);
	}
	if (f->tdb_errno != 0)
		e = errno_err(f->tdb_errno);
	else if (f->tdb_msg[0] == '\0' && (te == TDB_ERR_NOEXIST || te == TDB_SUCCESS) &&
	         low_space(f))
		e = STORE_ERR_NOSPACE; /* a failed posix_fallocate(): see low_space() */
	else if (te == TDB_ERR_RDONLY)
		e = f->rdonly ? STORE_ERR_RDONLY : STORE_ERR_ROFS;
	else if (te == TDB_ERR_OOM)
		e = STORE_ERR_NOMEM;
	else if (te == TDB_ERR_EINVAL)
		return fail_with(STORE_ERR_INVAL);
	else
		e = STORE_ERR_IO;
	return report(f, e, what,
	              e == STORE_ERR_IO || e == STORE_ERR_NOMEM
	                  ? (f->tdb_msg[0] ? f->tdb_msg : tdb_errorstr(f->tdb))
	                  : NULL);
}

static int key_ok(const void *key, size_t keylen)
{
	return key != NULL && keylen > 0 && keylen <= STORE_MAX_KEY && !is_count_key(key, keylen);
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
	TDB_DATA k;
};

/* tdb_parse_record() parser: 1 found, 0 expired, -2 version, -3 space. */
static int get_parser(TDB_DATA key, TDB_DATA data, void *arg)
{
	struct get_ctx *c = arg;
	time_t exp;
	size_t vlen;

	(void)key;
	if (store_hdr_decode(data.dptr, data.dsize, &exp) < 0)
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

static int get_once(struct ns_file *f, TDB_DATA k, struct get_ctx *c)
{
	int rc = tdb_parse_record(f->tdb, k, get_parser, c);

	if (rc == -1) {
		/* TDB says "not found" for a chain it could not follow: what
		 * it logged tells the two apart */
		if (tdb_error(f->tdb) == TDB_ERR_NOEXIST && !f->tdb_broken)
			rc = 0;
		else
			return tdb_fail(f, "read from");
	} else if (rc == -2) {
		return fail_with(STORE_ERR_VERSION);
	} else if (rc == -3) {
		return fail_with(STORE_ERR_SPACE);
	}
	works(f, 0);
	return rc;
}

/* After f was found damaged and replaced by an empty file, an operation is
 * done again once on the new file: the caller gets the answer of the
 * namespace as it now is (empty), not an error. */
static int again(struct ns_file *f, int rc)
{
	return rc < 0 && store_last_error() == STORE_ERR_CORRUPT && f->tdb != NULL && !f->rdonly;
}

static int get_fn(struct ns_file *f, void *arg)
{
	struct get_ctx *c = arg;
	int rc = get_once(f, c->k, c);

	if (again(f, rc)) {
		tdb_note_reset(f);
		rc = get_once(f, c->k, c);
	}
	return rc;
}

static int stdb_get(struct tstore *st, const char *ns, const void *key, size_t keylen, void *buf,
                    size_t bufsize, size_t *len, time_t *expires)
{
	struct get_ctx c = { 0,   buf,     buf != NULL ? bufsize : 0,
		             len, expires, { (unsigned char *)(uintptr_t)key, keylen } };

	if (!key_ok(key, keylen))
		return fail_with(STORE_ERR_INVAL);
	c.now = st->now(st->now_arg);
	return with_ns(st, ns, get_fn, &c);
}

/* One write (put when d.dptr != NULL, else delete) under the key's chain
 * lock, with the count record updated; STORE_DURABLE: inside a TDB
 * transaction, whose commit fsyncs.  f->mu held.  put: 0 or -1; delete:
 * 1 deleted, 0 absent, -1. */
static int write_once(struct ns_file *f, TDB_DATA k, const TDB_DATA *d, int flags)
{
	int durable = (flags & STORE_DURABLE) != 0, ok = 0, existed, rc = 0;
	long delta_before = f->count_delta;

	if (f->ro_fallback)
		return report(f, STORE_ERR_ROFS, d != NULL ? "write to" : "delete in", NULL);
	tdb_note_reset(f);
	if (durable && tdb_transaction_start(f->tdb) < 0)
		return tdb_fail(f, "transaction start on");
	if (tdb_chainlock(f->tdb, k) == 0) {
		existed = tdb_exists(f->tdb, k);
		if (f->tdb_broken) {
			ok = 0;
		} else if (d != NULL) {
			ok = tdb_store(f->tdb, k, *d, TDB_REPLACE) == 0 &&
			     (existed || count_note(f, 1));
		} else if (!existed) {
			ok = 1;
		} else {
			ok = tdb_delete(f->tdb, k) == 0 && count_note(f, -1);
			rc = 1;
		}
		/* TDB does not always log or set its error when the file cannot
		 * grow (posix_fallocate: ENOSPC, with the error of the earlier
		 * lookup, "Record does not exist", left in the context) */
		if (!ok && f->tdb_errno == 0)
			f->tdb_errno = errno;
		tdb_chainunlock(f->tdb, k);
	}
	if (durable) {
		/* a durable write takes its count (and the pending ones) into
		 * the same transaction: it survives kill -9 with the record */
		if (ok && f->count_delta != 0 && count_add(f, f->count_delta) < 0)
			ok = 0;
		if (!ok)
			(void)tdb_transaction_cancel(f->tdb);
		else if (tdb_transaction_commit(f->tdb) < 0)
			ok = 0;
		/* rolled back: the record and its count are not there */
		f->count_delta = ok ? 0 : delta_before;
	}
	if (!ok)
		return tdb_fail(f, d != NULL ? "write to" : "delete in");
	works(f, 1);
	return rc;
}

struct write_args {
	TDB_DATA k;
	const TDB_DATA *d; /* NULL: delete */
	int flags;
};

static int write_fn(struct ns_file *f, void *arg)
{
	struct write_args *a = arg;
	int rc = write_once(f, a->k, a->d, a->flags);

	if (again(f, rc))
		rc = write_once(f, a->k, a->d, a->flags);
	return rc;
}

static int stdb_put(struct tstore *st, const char *ns, const void *key, size_t keylen,
                    const void *val, size_t vallen, time_t expires, int flags)
{
	unsigned char small[512], *rec;
	TDB_DATA d;
	struct write_args a = { { (unsigned char *)(uintptr_t)key, keylen }, &d, flags };
	int rc = 0;

	if (!key_ok(key, keylen) || vallen > STORE_MAX_VALUE || (vallen > 0 && val == NULL) ||
	    (flags & ~STORE_DURABLE) != 0)
		return fail_with(STORE_ERR_INVAL);
	if (st->flags & STORE_RDONLY)
		return fail_with(STORE_ERR_RDONLY);
	rec = STORE_HDR_SIZE + vallen <= sizeof(small) ? small : xmalloc(STORE_HDR_SIZE + vallen);
	store_hdr_encode(rec, expires);
	if (vallen > 0)
		memcpy(rec + STORE_HDR_SIZE, val, vallen);
	d.dptr = rec;
	d.dsize = STORE_HDR_SIZE + vallen;
	rc = with_ns(st, ns, write_fn, &a);
	if (rec != small)
		free(rec);
	return rc;
}

static int stdb_del(struct tstore *st, const char *ns, const void *key, size_t keylen, int flags)
{
	struct write_args a = { { (unsigned char *)(uintptr_t)key, keylen }, NULL, flags };

	if (!key_ok(key, keylen) || (flags & ~STORE_DURABLE) != 0)
		return fail_with(STORE_ERR_INVAL);
	if (st->flags & STORE_RDONLY)
		return fail_with(STORE_ERR_RDONLY);
	return with_ns(st, ns, write_fn, &a);
}

static int seqnum_fn(struct ns_file *f, void *arg)
{
	*(unsigned long *)arg = (unsigned long)(unsigned)tdb_get_seqnum(f->tdb);
	return 0;
}

static int stdb_seqnum(struct tstore *st, const char *ns, unsigned long *seq)
{
	return with_ns(st, ns, seqnum_fn, seq);
}

static int stdb_ns_limit(struct tstore *st, const char *ns, long max_records)
{
	struct ns_file *f;

	if (max_records < 0)
		return fail_with(STORE_ERR_INVAL);
	if ((f = ns_slot(st, ns)) == NULL)
		return -1;
	pthread_mutex_lock(&f->mu);
	f->limit = max_records;
	if (max_records == 0)
		f->evict_before = 0;
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
	struct ns_file *sample; /* expiry of a capped file: sample expiry times */
	struct rec *recs;
	size_t n, cap;
	/* the heads of chains [hfirst, hfirst + hn), read without a lock */
	unsigned hfirst, hn;
	uint32_t heads[HEADS_BLOCK];
};

/* Could chain `chain` of ns hold records?  The heads of the hash chains are
 * read a block at a time without any lock (as tdb_traverse itself scans
 * them), so that the empty chains of a big, sparse file cost no fcntl lock
 * each: a chain that becomes non-empty just after it was read is missed,
 * as a walk may miss any record added while it runs.  Also sets *nchains.
 * 1 maybe, 0 empty, -1 error. */
struct chain_args {
	struct walk *w;
	unsigned chain;
	unsigned *nchains;
};

/* Read the block of chain heads from a->chain on (f->mu held); the number
 * read. */
static int heads_fn(struct ns_file *f, void *arg)
{
	struct chain_args *a = arg;
	struct walk *w = a->w;
	unsigned n, chain = a->chain;
	ssize_t want;

	*a->nchains = (unsigned)tdb_hash_size(f->tdb);
	n = chain < *a->nchains ? *a->nchains - chain : 0;
	if (n > HEADS_BLOCK)
		n = HEADS_BLOCK;
	w->hfirst = chain;
	w->hn = n;
	want = (ssize_t)(n * sizeof(uint32_t));
	/* TDB's layout: the header, the free list head, then the chains
	 * (TDB_HASH_TOP); a file of another layout (or an in-memory one) is
	 * walked chain by chain */
	if (n > 0 && (tdb_fd(f->tdb) < 0 ||
	              pread(tdb_fd(f->tdb), w->heads, (size_t)want,
	                    f->mutex_off + TDB_HEADER_SIZE + 4 * ((off_t)chain + 1)) != want))
		memset(w->heads, 0xff, (size_t)want);
	return (int)n;
}

static int chain_used(struct tstore *st, const char *ns, struct walk *w, unsigned chain,
                      unsigned *nchains)
{
	if (chain < w->hfirst || chain >= w->hfirst + w->hn) {
		struct chain_args a = { w, chain, nchains };
		int n = with_ns(st, ns, heads_fn, &a);

		if (n < 0)
			return -1;
		if (n == 0)
			return 1; /* past the end: walk_chain says so */
	}
	return w->heads[chain - w->hfirst] != 0;
}

/* Reservoir sampling of the expiry times of f's live records during an
 * expiry pass (f->mu held). */
static void sample_expiry(struct ns_file *f, time_t exp)
{
	unsigned j;

	f->nseen++;
	if (f->nsample < STORE_SAMPLES) {
		f->sample[f->nsample++] = exp;
		return;
	}
	/* a multiplicative hash of the running index: cheap and good enough */
	j = (unsigned)(((uint64_t)f->nseen * 2654435761u) % f->nseen);
	if (j < STORE_SAMPLES)
		f->sample[j] = exp;
}

static int walk_fn(struct tdb_context *tdb, TDB_DATA key, TDB_DATA data, void *arg)
{
	struct walk *w = arg;
	struct rec *r;
	time_t exp;
	int expired;

	(void)tdb;
	if (store_hdr_decode(data.dptr, data.dsize, &exp) < 0)
		return 0; /* unknown version, the count record: neither listed nor expired */
	expired = is_expired(exp, w->now);
	if (!expired && w->sample != NULL && exp != 0)
		sample_expiry(w->sample, exp);
	if (expired != w->want_expired)
		return 0;
	if (w->n == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 16;
		w->recs = xrealloc(w->recs, w->cap * sizeof(*w->recs));
	}
	/* counted once complete: key and data are in the mapping, and a
	 * SIGBUS while copying them leaves w as it was (walk_reset) */
	r = &w->recs[w->n];
	r->key = NULL;
	r->val = NULL;
	r->key = xmalloc(key.dsize ? key.dsize : 1);
	memcpy(r->key, key.dptr, key.dsize);
	r->keylen = key.dsize;
	r->expires = exp;
	r->vallen = w->copy_val ? data.dsize - STORE_HDR_SIZE : 0;
	r->val = xmalloc(r->vallen ? r->vallen : 1);
	if (r->vallen)
		memcpy(r->val, data.dptr + STORE_HDR_SIZE, r->vallen);
	w->n++;
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
static int walk_chain(struct ns_file *f, unsigned chain, struct walk *w, unsigned *nchains)
{
	int rc = 1;

	*nchains = (unsigned)tdb_hash_size(f->tdb);
	if (chain >= *nchains) {
		rc = 0;
	} else if (tdb_traverse_chain(f->tdb, chain, walk_fn, w) < 0 || f->tdb_broken) {
		rc = tdb_fail(f, "walk of");
	} else if (w->want_expired) {
		size_t i;
		long deleted = 0;
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
			if (d.dptr != NULL && store_hdr_decode(d.dptr, d.dsize, &exp) == 0 &&
			    is_expired(exp, w->now) && tdb_delete(f->tdb, k) == 0) {
				w->recs[i].vallen = 1; /* mark: deleted */
				deleted++;
			} else {
				w->recs[i].vallen = 0;
			}
			free(d.dptr);
			tdb_chainunlock(f->tdb, k);
		}
		f->count_delta -= deleted;
	}
	return rc;
}

static int walk_fn_ns(struct ns_file *f, void *arg)
{
	struct chain_args *a = arg;

	walk_reset(a->w); /* run again after a SIGBUS: from the start */
	return walk_chain(f, a->chain, a->w, a->nchains);
}

static int walk_chain_ns(struct tstore *st, const char *ns, unsigned chain, struct walk *w,
                         unsigned *nchains)
{
	struct chain_args a = { w, chain, nchains };

	return with_ns(st, ns, walk_fn_ns, &a);
}

static int stdb_traverse(struct tstore *st, const char *ns, store_traverse_fn fn, void *arg)
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
		if ((rc = chain_used(st, ns, &w, chain, &nchains)) == 0)
			continue;
		if (rc > 0)
			rc = walk_chain_ns(st, ns, chain, &w, &nchains);
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

/* f's record count; f->mu held.  -1 on error. */
static long count_of(struct ns_file *f)
{
	long n = 0;
	int r = count_flush(f) < 0 ? -1 : count_read(f, &n);

	if (r == 0) {
		/* a file of an older version opened read-only */
		n = 0;
		r = tdb_traverse_read(f->tdb, count_walk_fn, &n) < 0 ? -1 : 1;
	}
	if (r < 0 || f->tdb_broken) {
		(void)tdb_fail(f, "count of");
		return -1;
	}
	return n < 0 ? 0 : n;
}

static int count_fn(struct ns_file *f, void *arg)
{
	long n = count_of(f);

	*(long *)arg = n;
	return n < 0 ? -1 : 0;
}

static long stdb_count(struct tstore *st, const char *ns)
{
	long n = -1;

	if (st == NULL)
		return fail_with(STORE_ERR_INVAL);
	if (with_ns(st, ns, count_fn, &n) < 0)
		return -1;
	return n;
}

static int cmp_time(const void *a, const void *b)
{
	time_t x = *(const time_t *)a, y = *(const time_t *)b;

	return x < y ? -1 : x > y;
}

/* At the start of an expiry pass over f (f->mu held): when f holds more
 * records than its cap, choose the expiry time before which this pass
 * deletes records (oldest first), from the previous pass's sample, so that
 * about 90% of the cap remains. */
static void pass_start(struct ns_file *f, long count)
{
	f->evict_before = 0;
	if (f->limit > 0 && count > f->limit && f->nsample > 0) {
		double frac = (double)(count - f->limit * 9 / 10) / (double)count;
		unsigned i;

		qsort(f->sample, f->nsample, sizeof(f->sample[0]), cmp_time);
		i = (unsigned)(frac * f->nsample);
		if (i >= f->nsample)
			i = f->nsample - 1;
		f->evict_before = f->sample[i] + 1;
		log_msg(LOG_LVL_WARN,
		        "store: %s holds %ld records, over its cap of %ld: removing those "
		        "expiring before %lld",
		        f->path, count, f->limit, (long long)f->evict_before);
	}
	f->nsample = f->nseen = 0;
}

struct step_args {
	struct walk *w;
	time_t now;
	unsigned *cursor;
};

/* The start of an expiry step (f->mu held): 1 walk, 0 nothing to walk,
 * -1 error. */
static int step_fn(struct ns_file *f, void *arg)
{
	struct step_args *a = arg;
	long count = 0;

	/* nothing stored: nothing to walk (the count is one record); a
	 * read-only file system: nothing can be deleted */
	if (f->ro_fallback || (count = count_of(f)) <= 0) {
		if (f->ro_fallback)
			count = 0;
		*a->cursor = 0;
		return count < 0 ? -1 : 0;
	}
	if (*a->cursor == 0)
		pass_start(f, count);
	a->w->now = f->evict_before > a->now ? f->evict_before : a->now;
	a->w->want_expired = 1;
	a->w->sample = f->limit > 0 ? f : NULL;
	return 1;
}

static int stdb_expire_step(struct tstore *st, const char *ns, time_t now, unsigned max_chains,
                            unsigned *cursor)
{
	struct walk w = { 0 };
	struct step_args sa = { &w, now, cursor };
	unsigned chain, nchains = 1, done, scanned;
	int deleted = 0, rc = 0;

	if (st == NULL || cursor == NULL || max_chains == 0)
		return fail_with(STORE_ERR_INVAL);
	if (st->flags & STORE_RDONLY)
		return fail_with(STORE_ERR_RDONLY);
	if ((rc = with_ns(st, ns, step_fn, &sa)) <= 0)
		return rc;
	rc = 0;
	chain = *cursor;
	/* max_chains chains walked; empty ones are skipped without a lock,
	 * up to 256 times as many */
	for (done = 0, scanned = 0; done < max_chains && scanned < 256 * max_chains;
	     chain++, scanned++) {
		size_t i;
		if ((rc = chain_used(st, ns, &w, chain, &nchains)) == 0) {
			rc = chain + 1 < nchains;
			if (!rc) {
				chain++;
				break;
			}
			continue;
		}
		if (rc > 0)
			rc = walk_chain_ns(st, ns, chain, &w, &nchains);
		done++;
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

/* Compare-and-set of one record (store_batch's CAS): under the key's chain
 * lock, read the record, compare its live value with expect (NULL: there
 * must be no live record) and write d only when they agree.  f->mu held.
 * 1 written, 0 the value differs, -1 error. */
static int cas_once(struct ns_file *f, TDB_DATA k, const TDB_DATA *d, const void *expect,
                    size_t expectlen, time_t now)
{
	int ok = 0, match = 0, existed = 0;
	TDB_DATA cur;

	if (f->ro_fallback)
		return report(f, STORE_ERR_ROFS, "write to", NULL);
	tdb_note_reset(f);
	if (tdb_chainlock(f->tdb, k) != 0)
		return tdb_fail(f, "write to");
	cur = tdb_fetch(f->tdb, k);
	if (cur.dptr == NULL && (tdb_error(f->tdb) != TDB_ERR_NOEXIST || f->tdb_broken)) {
		tdb_chainunlock(f->tdb, k);
		return tdb_fail(f, "read from");
	}
	if (cur.dptr != NULL) {
		time_t exp;
		int live =
		    store_hdr_decode(cur.dptr, cur.dsize, &exp) == 0 && !is_expired(exp, now);

		existed = 1;
		if (expect == NULL)
			match = !live;
		else
			match = live && cur.dsize - STORE_HDR_SIZE == expectlen &&
			        (expectlen == 0 ||
			         memcmp(cur.dptr + STORE_HDR_SIZE, expect, expectlen) == 0);
		free(cur.dptr);
	} else {
		match = expect == NULL;
	}
	if (!match) {
		tdb_chainunlock(f->tdb, k);
		works(f, 0);
		return 0;
	}
	ok = tdb_store(f->tdb, k, *d, TDB_REPLACE) == 0 && (existed || count_note(f, 1));
	if (!ok && f->tdb_errno == 0)
		f->tdb_errno = errno;
	tdb_chainunlock(f->tdb, k);
	if (!ok)
		return tdb_fail(f, "write to");
	works(f, 1);
	return 1;
}

struct cas_args {
	struct store_op *op;
	TDB_DATA k, d;
	time_t now;
};

static int cas_fn(struct ns_file *f, void *arg)
{
	struct cas_args *a = arg;
	int rc = cas_once(f, a->k, &a->d, a->op->expect, a->op->expectlen, a->now);

	if (again(f, rc))
		rc = cas_once(f, a->k, &a->d, a->op->expect, a->op->expectlen, a->now);
	return rc;
}

static int stdb_cas(struct tstore *st, struct store_op *op)
{
	unsigned char small[512], *rec;
	struct cas_args a = {
		op, { (unsigned char *)(uintptr_t)op->key, op->keylen }, { 0 }, st->now(st->now_arg)
	};
	int rc;

	rec = STORE_HDR_SIZE + op->vallen <= sizeof(small) ? small
	                                                   : xmalloc(STORE_HDR_SIZE + op->vallen);
	store_hdr_encode(rec, op->expires);
	if (op->vallen > 0)
		memcpy(rec + STORE_HDR_SIZE, op->val, op->vallen);
	a.d.dptr = rec;
	a.d.dsize = STORE_HDR_SIZE + op->vallen;
	rc = with_ns(st, op->ns, cas_fn, &a);
	if (rec != small)
		free(rec);
	return rc;
}

/* --- the ops table ---------------------------------------------------------- */

void *store_tdb_open(const char *dir, int flags, char *err, size_t errsize)
{
	return stdb_open_flags(dir, flags, err, errsize);
}

static void op_close(void *be)
{
	stdb_close(be);
}

static void op_set_clock(void *be, time_t (*now)(void *arg), void *arg)
{
	stdb_set_clock(be, now, arg);
}

static int op_ns_hash_size(void *be, const char *ns, int hash_size)
{
	return stdb_ns_hash_size(be, ns, hash_size);
}

static int op_get(void *be, const char *ns, const void *key, size_t keylen, void *buf,
                  size_t bufsize, size_t *len, time_t *expires)
{
	return stdb_get(be, ns, key, keylen, buf, bufsize, len, expires);
}

static int op_put(void *be, const char *ns, const void *key, size_t keylen, const void *val,
                  size_t vallen, time_t expires, int flags)
{
	return stdb_put(be, ns, key, keylen, val, vallen, expires, flags);
}

static int op_del(void *be, const char *ns, const void *key, size_t keylen, int flags)
{
	return stdb_del(be, ns, key, keylen, flags);
}

static int op_traverse(void *be, const char *ns, store_traverse_fn fn, void *arg)
{
	return stdb_traverse(be, ns, fn, arg);
}

static int op_expire_step(void *be, const char *ns, time_t now, unsigned max_chains,
                          unsigned *cursor)
{
	return stdb_expire_step(be, ns, now, max_chains, cursor);
}

static int op_seqnum(void *be, const char *ns, unsigned long *seq)
{
	return stdb_seqnum(be, ns, seq);
}

static long op_count(void *be, const char *ns)
{
	return stdb_count(be, ns);
}

static int op_ns_limit(void *be, const char *ns, long max_records)
{
	return stdb_ns_limit(be, ns, max_records);
}

static int op_batch(void *be, struct store_op *ops, size_t n)
{
	struct tstore *st = be;
	int failed = 0;

	for (size_t i = 0; i < n; i++) {
		struct store_op *op = &ops[i];

		if (op->type == STORE_OP_GET)
			op->rc = stdb_get(st, op->ns, op->key, op->keylen, op->buf, op->bufsize,
			                  &op->len, &op->expires);
		else if (st->flags & STORE_RDONLY)
			op->rc = fail_with(STORE_ERR_RDONLY);
		else
			op->rc = stdb_cas(st, op);
		op->err = op->rc < 0 ? store_last_error() : STORE_OK;
		failed += op->rc < 0;
	}
	return failed;
}

static int op_ping(void *be, char *info, size_t infosize)
{
	struct tstore *st = be;

	snprintf(info, infosize, "TDB files in %s, fcntl locks, mapped", st->dir);
	return 0;
}

static void op_stats(void *be, struct store_stats *out)
{
	(void)be;
	memset(out, 0, sizeof(*out));
}

static const char *op_where(void *be)
{
	return ((struct tstore *)be)->dir;
}

const struct store_ops store_tdb_ops = {
	.name = "tdb",
	.locking = "fcntl",
	.close = op_close,
	.set_clock = op_set_clock,
	.ns_hash_size = op_ns_hash_size,
	.get = op_get,
	.put = op_put,
	.del = op_del,
	.traverse = op_traverse,
	.expire_step = op_expire_step,
	.seqnum = op_seqnum,
	.count = op_count,
	.ns_limit = op_ns_limit,
	.batch = op_batch,
	.ping = op_ping,
	.stats = op_stats,
	.where = op_where,
};
