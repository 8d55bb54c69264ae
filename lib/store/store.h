/* lib/store/store.h - key/value store with namespaces, expiry and traverse
 *
 * One interface, two backends behind an ops table (store_impl.h): TDB files
 * in a state directory (store_tdb.c, the embedded default, described
 * first), or a Redis server shared by several MX hosts (store_redis.c,
 * described at store_open_params() below).  The callers (greylist, awl,
 * whitelist, refs, portcullisctl) do not know which one they use.
 *
 * TDB: one TDB file per namespace under the state directory (DIR/greylist.tdb,
 * DIR/awl.tdb, ...), opened on first use.  TDB handles are not thread-safe
 * and TDB forbids opening one file twice in a process, so the store owns one
 * handle per file and serialises every access to it with a mutex; all
 * functions are safe to call from any thread.  Other processes (portcullisctl)
 * may read and write the same files at the same time: TDB's fcntl locks
 * arbitrate between processes.
 *
 * A record is a fixed 12-byte header (a format version byte, three zero
 * bytes, the absolute expiry time as a big-endian 64-bit count of seconds,
 * 0 = never) followed by the caller's value bytes.  An expired record reads
 * as absent; store_expire_step() removes expired records a few hash chains
 * at a time so that background expiry never holds a file for long.  Walks
 * read the chain heads in blocks without a lock and lock only the chains
 * that hold records.
 *
 * Errors: functions return -1 and set a typed error for the calling thread,
 * read with store_last_error() / store_strerror().  A damaged file -- one
 * that cannot be opened as a TDB (garbage, a bad header, a hash table that
 * does not fit because the file was truncated), that TDB reports corrupt,
 * whose chains point past its end, that shrank under the process or whose
 * header was overwritten (both checked once a second) -- is
 * logged in one line, renamed to NAME.tdb.corrupt-YYYYMMDDTHHMMSS (the
 * newest STORE_KEEP_ASIDE such copies of a namespace are kept, older ones
 * deleted) and recreated empty; the call that met the damage is done again
 * on the new file, so the caller gets the empty namespace's answer, never a
 * false hit.  A full or read-only file system makes writes fail with
 * STORE_ERR_NOSPACE / STORE_ERR_ROFS, logged once when it starts and once
 * when the file works again; nothing is cached, so the first write after
 * space came back succeeds.  On a read-only file system the files are
 * opened read-only (lookups work) and read-write again once it is not.  No mmap is used (TDB_NOMMAP): a file truncated
 * under the process cannot kill it with SIGBUS.
 *
 * Open the store after any fork(): TDB's fcntl locks belong to a process.
 *
 * See also: DESIGN.md ("store"), tdb.h, lib/log.h.
 */
#ifndef PORTCULLIS_STORE_H
#define PORTCULLIS_STORE_H

#include <stddef.h>
#include <time.h>

struct store;

enum store_err {
	STORE_OK = 0,
	STORE_ERR_IO,      /* open, read, write or lock failed */
	STORE_ERR_CORRUPT, /* file corrupt (it has been moved aside and recreated) */
	STORE_ERR_INVAL,   /* bad argument: namespace name, empty or huge key */
	STORE_ERR_SPACE,   /* value larger than the caller's buffer (*len = size) */
	STORE_ERR_VERSION, /* record written in an unknown format version */
	STORE_ERR_FULL,    /* too many namespaces */
	STORE_ERR_NOMEM,
	STORE_ERR_NOSPACE, /* no space left on the file system (or quota) */
	STORE_ERR_ROFS,    /* the file system is read-only */
	STORE_ERR_RDONLY,  /* a write to a store opened with STORE_RDONLY */
	STORE_ERR_DOWN,    /* Redis: the server does not answer (or is read-only) */
	STORE_ERR_SERVER,  /* Redis: the server answered with an error */
};

#define STORE_REC_VERSION  1      /* format version byte written in each record */
#define STORE_HDR_SIZE     12     /* version, 3 reserved, int64 expiry */
#define STORE_HASH_DEFAULT 131071 /* hash chains of a new file (prime) */
#define STORE_MAX_KEY      4096
#define STORE_MAX_VALUE    (1024 * 1024)
#define STORE_MAX_NS       32
#define STORE_MAX_NS_NAME  32
#define STORE_KEEP_ASIDE   3  /* damaged copies kept per namespace */
#define STORE_REDIS_POOL   64 /* idle Redis connections kept */

/* store_open_flags() flags */
#define STORE_RDONLY 1 /* open files read-only, create nothing, refuse writes */

/* store_put() flags */
#define STORE_NORMAL 0
#define STORE_DURABLE                                                                              \
	1 /* write inside a TDB transaction (fsync): survives kill -9 and power loss */

/* Open the store in directory dir (which must exist and be a directory).
 * Namespace files are opened lazily.  On error returns NULL and writes a
 * message into err (errsize bytes). */
struct store *store_open(const char *dir, char *err, size_t errsize);

/* The same with flags: STORE_RDONLY opens every file O_RDONLY (works on a
 * read-only file system and with read permission only), creates no file (a
 * missing namespace reads as empty), never moves a file aside, and fails
 * store_put / store_del / store_expire_step with STORE_ERR_RDONLY. */
struct store *store_open_flags(const char *dir, int flags, char *err, size_t errsize);

/* Which backend, and how to reach it (the store.* configuration keys). */
enum store_backend { STORE_TDB = 0, STORE_REDIS = 1 };

struct store_params {
	enum store_backend backend;
	const char *dir;           /* TDB: the state directory */
	const char *redis;         /* unix:PATH | HOST:PORT | sentinel:NAME@HOST:PORT[,...] */
	long redis_db;             /* SELECT this database */
	const char *password_file; /* AUTH with the first line of this file; "" or NULL: none */
	const char *prefix;        /* every key starts with this (several groups on one Redis) */
	long timeout_ms;           /* connect and command timeout */
};

/* Open the store that p names.  TDB: as store_open_flags(p->dir).  Redis:
 * a small pool of connections (one per thread that uses the store at the
 * same time, at most STORE_REDIS_POOL idle ones kept), made on demand; the
 * first is made here, and a server that does not answer is no error (the
 * calls fail with STORE_ERR_IO until it does: the checks follow their
 * on_error), but a bad address, an unreadable password file or a refused
 * AUTH are.  Data model in Redis (PREFIX = p->prefix):
 *   PREFIX NS ":" KEY   a string: the record as in TDB (12-byte header with
 *                       the expiry, then the value), with a key TTL (EXPIRE)
 *                       of the time left, so Redis removes expired records
 *                       (store_expire_step does nothing); reads also check
 *                       the header against the store's clock
 *   PREFIX "#seq:" NS   the namespace's change counter (INCR at each write)
 *   PREFIX "#cnt:" NS   a hash: records per hour of expiry (store_count)
 * Every write is one Lua script (EVALSHA; loaded again after a restart of
 * Redis), so the record, the counter and the count change together.
 * Sentinel: the sentinels are asked for the master at each new connection
 * and after any error, so a failover is followed without a restart; a
 * write refused by a replica (READONLY) drops the connection. */
struct store *store_open_params(const struct store_params *p, int flags, char *err, size_t errsize);

/* The backend's name ("tdb", "redis") and a one-line description of where
 * the data is, for logs and -t. */
const char *store_backend_name(const struct store *st);
const char *store_where(const struct store *st);

/* How the backend keeps writers apart, for the start-up log line and
 * portcullisctl stats: "fcntl" (TDB: fcntl() record locks on files read
 * through a mapping; every opener of the files locks the same way) or
 * "server" (Redis: one script per write, run in order by the server). */
const char *store_locking(const struct store *st);

/* Ask the backend whether it answers: 0 and a short text in info (e.g. the
 * Redis version), or -1 and the reason in info. */
int store_ping(struct store *st, char *info, size_t infosize);

/* Close every file and free the store.  NULL is a no-op. */
void store_close(struct store *st);

/* Set the hash size (number of chains) used when namespace ns's file is
 * created; an existing file keeps its own.  Must be called before the
 * namespace's first use; returns -1 (STORE_ERR_INVAL) otherwise. */
int store_ns_hash_size(struct store *st, const char *ns, int hash_size);

/* Replace the clock used for expiry decisions (tests; default clock_now()
 * of lib/util.h: time(NULL) unless PORTCULLIS_CLOCK_FILE is set). */
void store_set_clock(struct store *st, time_t (*now)(void *arg), void *arg);

/* Look key up in ns.  Returns 1 and copies the value into buf (bufsize
 * bytes), its length into *len and its expiry time into *expires (either may
 * be NULL); 0 if absent or expired; -1 on error.  When the value does not fit,
 * returns -1 with STORE_ERR_SPACE and *len set to the value's size. */
int store_get(struct store *st, const char *ns, const void *key, size_t keylen, void *buf,
              size_t bufsize, size_t *len, time_t *expires);

/* Insert or replace key in ns with value val, expiring at the absolute time
 * expires (0 = never).  flags: STORE_NORMAL (no fsync; fast, for the mail
 * path) or STORE_DURABLE (a transaction, synced before returning).  Returns
 * 0 or -1. */
int store_put(struct store *st, const char *ns, const void *key, size_t keylen, const void *val,
              size_t vallen, time_t expires, int flags);

/* Delete key from ns.  Returns 1 if it was there, 0 if not, -1 on error.
 * flags as for store_put(). */
int store_del(struct store *st, const char *ns, const void *key, size_t keylen, int flags);

/* Called for each live record by store_traverse(); return nonzero to stop.
 * The callback may call any store function, including on the same ns. */
typedef int (*store_traverse_fn)(const void *key, size_t keylen, const void *val, size_t vallen,
                                 time_t expires, void *arg);

/* Call fn for every live (unexpired, known version) record of ns, one hash
 * chain at a time: the file's lock is held only while a chain is copied, so
 * concurrent writers are not blocked and a record added or deleted during
 * the walk may or may not be seen.  Returns the number of records passed to
 * fn, or -1 on error.  Redis: SCAN (never KEYS) in batches of 1000 with one
 * MGET each, no connection held while fn runs; a key that SCAN returns
 * twice is passed once. */
int store_traverse(struct store *st, const char *ns, store_traverse_fn fn, void *arg);

/* Delete expired records (and, over a cap, the oldest: store_ns_limit) in
 * at most max_chains hash chains of ns, starting
 * at chain *cursor, and advance *cursor; it returns to 0 when a whole pass
 * over the file is complete.  Start with *cursor = 0.  An empty namespace
 * costs one read of its count and no walk.  Returns the number of records
 * deleted or -1.  Redis removes expired records itself (key TTL): there it
 * only keeps a cap (store_ns_limit) and otherwise returns 0 at once. */
int store_expire_step(struct store *st, const char *ns, time_t now, unsigned max_chains,
                      unsigned *cursor);

/* The change counter of ns's file into *seq: every write or delete by any
 * process bumps it (TDB_SEQNUM), so a caller that keeps an in-memory copy
 * of a namespace (lib/wlist) reloads it only when the counter moved.  A
 * file that was moved aside and recreated may restart at an old value:
 * compare for inequality, and reload after any error.  Returns 0 or -1. */
int store_seqnum(struct store *st, const char *ns, unsigned long *seq);

/* Number of records in ns, or -1: O(1), read from a count record kept in
 * the file.  Each process adds its own inserts and deletes to it at
 * store_count(), at each store_expire_step() (the daemon's: ten times a
 * second) and at store_close(), so another process may see the count up
 * to that much behind, and a process killed with SIGKILL loses its last
 * changes to the count.  Expired records count until the background
 * expiry removes them.  (A file made by an older version is counted once,
 * by a walk, when first opened.) */
/* Redis: the sum of a small per-namespace hash of records per hour of
 * expiry, kept by the write scripts (no SCAN): a record whose TTL ran out
 * during the current hour counts until the hour ends. */
long store_count(struct store *st, const char *ns);

/* Cap ns at about max_records (0: no cap).  When an expiry pass starts
 * with more records than that, it deletes those that expire first until
 * about 90% of the cap remains (oldest first when all records are kept
 * equally long, as refs are): the file may exceed the cap by what arrives
 * during two passes over it.  Returns 0 or -1. */
/* Redis: while the count is over the cap, each store_expire_step() SCANs one
 * batch of the namespace and deletes the records of the oldest hours that
 * hold the surplus; nothing is walked while under it. */
int store_ns_limit(struct store *st, const char *ns, long max_records);

/* Several operations in one round trip (Redis: one pipeline; TDB: one after
 * the other).  Each op is independent: GET fills buf/len/expires like
 * store_get; CAS writes val (expiring at expires) only if the record's live
 * value is now exactly expect/expectlen (expect NULL: only if there is no
 * live record), atomically, and sets rc 1 when written, 0 when the value
 * was something else (read again and decide again), -1 on error.  For each
 * op rc and err are set; the function returns the number of ops that
 * failed (rc -1).  Used by the greylist so that two MX hosts seeing the
 * same retry at the same moment both decide correctly. */
enum store_op_type { STORE_OP_GET, STORE_OP_CAS };

struct store_op {
	enum store_op_type type;
	const char *ns;
	const void *key;
	size_t keylen;
	void *buf; /* GET */
	size_t bufsize;
	size_t len;
	time_t expires;     /* GET: out; CAS: in */
	const void *expect; /* CAS */
	size_t expectlen;
	const void *val; /* CAS */
	size_t vallen;
	int rc;
	enum store_err err;
};

int store_batch(struct store *st, struct store_op *ops, size_t n);

/* Counters of the backend, for the metrics: failed calls (any error but a
 * bad argument or a short buffer), round trips to the server and their
 * total time (Redis; 0 for TDB), and whether the backend is unreachable
 * now. */
struct store_stats {
	unsigned long long errors;
	unsigned long long roundtrips;
	unsigned long long roundtrip_us;
	int down;
};
void store_get_stats(struct store *st, struct store_stats *out);

/* The error of the calling thread's last failed store call, and a text. */
enum store_err store_last_error(void);
const char *store_strerror(enum store_err e);

#endif
