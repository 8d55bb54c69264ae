/* lib/store/store_redis.c - the Redis backend of the store (see store.h)
 *
 * Records are Redis strings named PREFIX NS ":" KEY holding the same bytes
 * as a TDB record (12-byte header with the absolute expiry, then the
 * value), with a key TTL of the time left: Redis removes expired records,
 * no walk is needed.  A read checks the header against the store's clock
 * too (an expiry inside the last second, or a host whose clock is ahead).
 * Every command is sent with redisAppendCommandArgv(): each argument is
 * counted bytes, so a key with CR, LF, NUL or 4 KiB of text is one
 * argument and nothing else; no command is ever built as a string.
 *
 * Writes are Lua scripts (loaded with SCRIPT LOAD on each new connection,
 * run with EVALSHA, loaded again on NOSCRIPT): the record, the change
 * counter (PREFIX "#seq:" NS, INCR) and the count (PREFIX "#cnt:" NS, a
 * hash of records per hour of expiry, "0" for records that never expire)
 * change in one atomic step.  store_count() sums the hours not yet past:
 * O(hours), no SCAN, and approximate: a record whose TTL ran out in the
 * current hour is counted until the hour ends.  A compare-and-set
 * (store_batch) is the same script with a condition on the old value.
 *
 * Connections: a pool.  A call takes an idle connection or makes one, and
 * gives it back when it is done, so each mail thread has its own while it
 * needs one and at most STORE_REDIS_POOL idle ones are kept.  A connection
 * that fails is closed, the idle ones with it (they point at the same
 * server, or at the old master), and the call is tried once more on a new
 * one.  When no connection can be made the backend is "down": calls fail at
 * once with STORE_ERR_DOWN, a new connection is tried after 100 ms, then
 * after twice as long each time up to 1 s; the start and the end of an
 * outage are logged once each.  With sentinel: the sentinels are asked in
 * turn for the master's address at each new connection, and the answer is
 * checked with ROLE, so a failover is followed without a restart.  A
 * READONLY or MASTERDOWN answer closes the connection like a failure.
 */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"
#include "store.h"
#include "store_impl.h"
#include "util.h"

#define MAX_SENTINELS  8
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 1000
#define SCAN_COUNT     "1000"
#define MAX_LIMITS     8
#define SEQ_CACHE_MS   1000
#define LIMIT_CHECK_MS 10000

enum rkind { R_UNIX, R_TCP, R_SENTINEL };

struct hostport {
	char host[256];
	int port;
};

struct rconn {
	redisContext *c;
	struct rconn *next;
};

struct rstore {
	char *where; /* the store.redis text */
	enum rkind kind;
	char path[256];
	struct hostport addr;
	char master[128];
	struct hostport sent[MAX_SENTINELS];
	int nsent;
	long db;
	char *password; /* NULL: no AUTH */
	char *prefix;
	size_t prefixlen;
	long timeout_ms;
	int flags;
	time_t (*now)(void *arg);
	void *now_arg;

	pthread_mutex_t mu; /* the pool and the outage state */
	struct rconn *idle;
	int nidle;
	int down;
	time_t down_since;
	long long next_try_ms;
	long backoff_ms;
	unsigned long long gen; /* bumped when the idle connections are dropped */
	char why[300];          /* why the last connection failed (mu) */

	char sha_write[41], sha_del[41], sha_count[41]; /* set once (mu) */

	struct {
		char ns[STORE_MAX_NS_NAME + 1];
		long max;
		long long next_ms; /* count it again then (under the cap) */
	} limit[MAX_LIMITS];
	int nlimit;

	/* change counters read in the last SEQ_CACHE_MS (mu): a whitelist
	 * lookup at every SMTP stage costs no round trip; this process's own
	 * writes forget the namespace's entry, so they are seen at once */
	struct {
		char ns[STORE_MAX_NS_NAME + 1];
		unsigned long seq;
		long long at_ms;
		int valid;
	} seqc[MAX_LIMITS];

	unsigned long long roundtrips, rt_us; /* atomic */
};

/* --- the scripts -------------------------------------------------------------- */

#define LUA_HELPERS                                                                                \
	"local function exp_of(b)\n"                                                               \
	"  if not b or string.len(b) < 12 or string.byte(b, 1) ~= 1 then return nil end\n"         \
	"  local e = 0\n"                                                                          \
	"  for i = 5, 12 do e = e * 256 + string.byte(b, i) end\n"                                 \
	"  return e\n"                                                                             \
	"end\n"                                                                                    \
	"local function bucket(e)\n"                                                               \
	"  if e == 0 then return '0' end\n"                                                        \
	"  return tostring(math.floor(e / 3600))\n"                                                \
	"end\n"

/* KEYS: record, seq, cnt.  ARGV: record bytes, ttl (0: none), mode ('p' put,
 * 'c' only if the live value is ARGV[4], 'a' only if there is no live
 * record), expected value, now.  Returns 1 written, 0 not (condition). */
static const char lua_write[] =
    LUA_HELPERS "local old = redis.call('GET', KEYS[1])\n"
                "local oe = exp_of(old)\n"
                "local mode = ARGV[3]\n"
                "if mode ~= 'p' then\n"
                "  local now = tonumber(ARGV[5])\n"
                "  local live = oe ~= nil and (oe == 0 or oe > now)\n"
                "  if mode == 'a' then\n"
                "    if live then return 0 end\n"
                "  elseif not live or string.sub(old, 13) ~= ARGV[4] then\n"
                "    return 0\n"
                "  end\n"
                "end\n"
                "local ttl = tonumber(ARGV[2])\n"
                "if ttl > 0 then\n"
                "  redis.call('SET', KEYS[1], ARGV[1], 'EX', ttl)\n"
                "else\n"
                "  redis.call('SET', KEYS[1], ARGV[1])\n"
                "end\n"
                "if oe then redis.call('HINCRBY', KEYS[3], bucket(oe), -1) end\n"
                "redis.call('HINCRBY', KEYS[3], bucket(exp_of(ARGV[1])), 1)\n"
                "redis.call('INCR', KEYS[2])\n"
                "return 1\n";

/* KEYS: record, seq, cnt.  Returns 1 deleted, 0 absent. */
static const char lua_del[] =
    LUA_HELPERS "local old = redis.call('GET', KEYS[1])\n"
                "if not old then return 0 end\n"
                "redis.call('DEL', KEYS[1])\n"
                "local e = exp_of(old)\n"
                "if e then redis.call('HINCRBY', KEYS[3], bucket(e), -1) end\n"
                "redis.call('INCR', KEYS[2])\n"
                "return 1\n";

/* KEYS: cnt.  ARGV: the current hour, prune ('1': delete past hours). */
static const char lua_count[] = "local h = redis.call('HGETALL', KEYS[1])\n"
                                "local nb = tonumber(ARGV[1])\n"
                                "local n = 0\n"
                                "for i = 1, #h, 2 do\n"
                                "  local b = tonumber(h[i])\n"
                                "  if b == 0 or b >= nb then\n"
                                "    n = n + tonumber(h[i + 1])\n"
                                "  elseif ARGV[2] == '1' then\n"
                                "    redis.call('HDEL', KEYS[1], h[i])\n"
                                "  end\n"
                                "end\n"
                                "if n < 0 then n = 0 end\n"
                                "return n\n";

/* --- parsing the configuration ------------------------------------------------- */

static int parse_hostport(const char *s, size_t n, struct hostport *hp)
{
	const char *colon;
	char *end;
	long port;
	size_t hl;

	if (n > 0 && s[0] == '[') {
		const char *rb = memchr(s, ']', n);
		if (rb == NULL || (size_t)(rb - s) + 1 >= n || rb[1] != ':')
			return -1;
		hl = (size_t)(rb - s) - 1;
		if (hl == 0 || hl >= sizeof(hp->host))
			return -1;
		memcpy(hp->host, s + 1, hl);
		colon = rb + 1;
	} else {
		colon = NULL;
		for (size_t i = 0; i < n; i++)
			if (s[i] == ':')
				colon = s + i;
		if (colon == NULL)
			return -1;
		hl = (size_t)(colon - s);
		if (hl == 0 || hl >= sizeof(hp->host))
			return -1;
		memcpy(hp->host, s, hl);
	}
	hp->host[hl] = '\0';
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || end != s + n || end == colon + 1 || port < 1 || port > 65535)
		return -1;
	hp->port = (int)port;
	return 0;
}

static int parse_where(struct rstore *rs, const char *w, char *err, size_t errsize)
{
	if (strncmp(w, "unix:", 5) == 0) {
		if (w[5] == '\0' || strlen(w + 5) >= sizeof(rs->path))
			goto bad;
		rs->kind = R_UNIX;
		bcopy_str(rs->path, sizeof(rs->path), w + 5);
		return 0;
	}
	if (strncmp(w, "sentinel:", 9) == 0) {
		const char *at = strchr(w + 9, '@'), *p;

		if (at == NULL || at == w + 9 || (size_t)(at - (w + 9)) >= sizeof(rs->master))
			goto bad;
		memcpy(rs->master, w + 9, (size_t)(at - (w + 9)));
		rs->master[at - (w + 9)] = '\0';
		rs->kind = R_SENTINEL;
		for (p = at + 1; *p;) {
			size_t n = strcspn(p, ",");
			if (rs->nsent >= MAX_SENTINELS ||
			    parse_hostport(p, n, &rs->sent[rs->nsent]) < 0)
				goto bad;
			rs->nsent++;
			p += n;
			if (*p == ',')
				p++;
		}
		if (rs->nsent == 0)
			goto bad;
		return 0;
	}
	if (parse_hostport(w, strlen(w), &rs->addr) == 0) {
		rs->kind = R_TCP;
		return 0;
	}
bad:
	snprintf(err, errsize,
	         "store.redis: \"%.200s\" is not unix:PATH, HOST:PORT or "
	         "sentinel:MASTER@HOST:PORT[,HOST:PORT...]",
	         w);
	return -1;
}

/* The first line of the password file.  The file must not be readable by
 * group or others: the password is in no configuration and no log. */
static int read_password(struct rstore *rs, const char *path, char *err, size_t errsize)
{
	char line[1024];
	struct stat sb;
	FILE *fp;
	size_t n;

	if ((fp = fopen(path, "r")) == NULL) {
		snprintf(err, errsize, "store.redis_password_file %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fileno(fp), &sb) == 0 && (sb.st_mode & 077) != 0) {
		snprintf(err, errsize,
		         "store.redis_password_file %s: readable by others (mode %03o); it must "
		         "be readable by the daemon only (chmod 600)",
		         path, (unsigned)(sb.st_mode & 0777));
		fclose(fp);
		return -1;
	}
	if (fgets(line, sizeof(line), fp) == NULL)
		line[0] = '\0';
	fclose(fp);
	n = strcspn(line, "\r\n");
	line[n] = '\0';
	if (n == 0) {
		snprintf(err, errsize, "store.redis_password_file %s: empty", path);
		return -1;
	}
	rs->password = xstrdup(line);
	explicit_bzero(line, sizeof(line));
	return 0;
}

/* --- connections ---------------------------------------------------------------- */

static struct timeval tv_of(long ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	return tv;
}

static redisContext *connect_to(struct rstore *rs, const char *host, int port, const char *path,
                                char *why, size_t whysize)
{
	struct timeval tv = tv_of(rs->timeout_ms);
	redisContext *c =
	    path ? redisConnectUnixWithTimeout(path, tv) : redisConnectWithTimeout(host, port, tv);

	if (c == NULL) {
		snprintf(why, whysize, "out of memory");
		return NULL;
	}
	if (c->err) {
		if (path)
			snprintf(why, whysize, "%s: %s", path, c->errstr);
		else
			snprintf(why, whysize, "%s:%d: %s", host, port, c->errstr);
		redisFree(c);
		return NULL;
	}
	redisSetTimeout(c, tv);
	return c;
}

/* One command on c (argv form), its reply or NULL (c->err set, or an
 * error reply: why filled, reply freed). */
static redisReply *command(redisContext *c, int argc, const char **argv, const size_t *lens,
                           char *why, size_t whysize)
{
	redisReply *r = redisCommandArgv(c, argc, argv, lens);

	if (r == NULL) {
		snprintf(why, whysize, "%s", c->err ? c->errstr : "no reply");
		return NULL;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		snprintf(why, whysize, "%s: %.*s", argv[0], (int)r->len, r->str ? r->str : "");
		freeReplyObject(r);
		return NULL;
	}
	return r;
}

static redisReply *command0(redisContext *c, char *why, size_t whysize, int argc, ...)
{
	const char *argv[8];
	size_t lens[8];
	va_list ap;

	va_start(ap, argc);
	for (int i = 0; i < argc && i < 8; i++) {
		argv[i] = va_arg(ap, const char *);
		lens[i] = strlen(argv[i]);
	}
	va_end(ap);
	return command(c, argc, argv, lens, why, whysize);
}

/* Ask the sentinels for the master's address. */
static int sentinel_master(struct rstore *rs, struct hostport *out, char *why, size_t whysize)
{
	char w[256] = "";

	for (int i = 0; i < rs->nsent; i++) {
		redisContext *c =
		    connect_to(rs, rs->sent[i].host, rs->sent[i].port, NULL, w, sizeof(w));
		redisReply *r;

		if (c == NULL)
			continue;
		r = command0(c, w, sizeof(w), 3, "SENTINEL", "get-master-addr-by-name", rs->master);
		redisFree(c);
		if (r == NULL)
			continue;
		if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
		    r->element[0]->type == REDIS_REPLY_STRING &&
		    r->element[1]->type == REDIS_REPLY_STRING &&
		    r->element[0]->len < sizeof(out->host)) {
			bcopy_str(out->host, sizeof(out->host), r->element[0]->str);
			out->port = atoi(r->element[1]->str);
			freeReplyObject(r);
			return 0;
		}
		snprintf(w, sizeof(w), "sentinel %s:%d does not know master %s", rs->sent[i].host,
		         rs->sent[i].port, rs->master);
		freeReplyObject(r);
	}
	snprintf(why, whysize, "no sentinel gave the master %s%s%s", rs->master, w[0] ? ": " : "",
	         w);
	return -1;
}

static int load_scripts(struct rstore *rs, redisContext *c, char *why, size_t whysize)
{
	const char *src[3] = { lua_write, lua_del, lua_count };
	char *sha[3] = { rs->sha_write, rs->sha_del, rs->sha_count };

	for (int i = 0; i < 3; i++) {
		redisReply *r = command0(c, why, whysize, 3, "SCRIPT", "LOAD", src[i]);

		if (r == NULL)
			return -1;
		if (r->type != REDIS_REPLY_STRING || r->len != 40) {
			snprintf(why, whysize, "SCRIPT LOAD: unexpected reply");
			freeReplyObject(r);
			return -1;
		}
		pthread_mutex_lock(&rs->mu);
		memcpy(sha[i], r->str, 40);
		sha[i][40] = '\0';
		pthread_mutex_unlock(&rs->mu);
		freeReplyObject(r);
	}
	return 0;
}

/* A new connection: address (sentinel), AUTH, SELECT, ROLE, the scripts. */
static redisContext *connect_new(struct rstore *rs, char *why, size_t whysize)
{
	struct hostport hp;
	redisContext *c;
	redisReply *r;
	char db[32];

	if (rs->kind == R_UNIX) {
		c = connect_to(rs, NULL, 0, rs->path, why, whysize);
	} else if (rs->kind == R_TCP) {
		c = connect_to(rs, rs->addr.host, rs->addr.port, NULL, why, whysize);
	} else {
		if (sentinel_master(rs, &hp, why, whysize) < 0)
			return NULL;
		c = connect_to(rs, hp.host, hp.port, NULL, why, whysize);
	}
	if (c == NULL)
		return NULL;
	if (rs->password) {
		if ((r = command0(c, why, whysize, 2, "AUTH", rs->password)) == NULL) {
			/* the reply text never holds the password */
			goto fail;
		}
		freeReplyObject(r);
	}
	if (rs->db != 0) {
		snprintf(db, sizeof(db), "%ld", rs->db);
		if ((r = command0(c, why, whysize, 2, "SELECT", db)) == NULL)
			goto fail;
		freeReplyObject(r);
	}
	if (rs->kind == R_SENTINEL) {
		/* the sentinels may not have noticed a failover yet */
		if ((r = command0(c, why, whysize, 1, "ROLE")) == NULL)
			goto fail;
		if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
		    r->element[0]->type != REDIS_REPLY_STRING ||
		    strcmp(r->element[0]->str, "master") != 0) {
			snprintf(why, whysize, "%s:%d is not a master (yet)", hp.host, hp.port);
			freeReplyObject(r);
			goto fail;
		}
		freeReplyObject(r);
	}
	if (load_scripts(rs, c, why, whysize) < 0)
		goto fail;
	return c;
fail:
	redisFree(c);
	return NULL;
}

static void note_down(struct rstore *rs, const char *why)
{
	long long now = now_ms();

	pthread_mutex_lock(&rs->mu);
	bcopy_str(rs->why, sizeof(rs->why), why);
	if (!rs->down) {
		rs->down = 1;
		rs->down_since = time(NULL);
		rs->backoff_ms = BACKOFF_MIN_MS;
		log_msg(LOG_LVL_WARN,
		        "store: redis %s does not answer (%s); the checks that use the store "
		        "follow their on_error until it does",
		        rs->where, why);
	} else if (rs->backoff_ms < BACKOFF_MAX_MS) {
		rs->backoff_ms =
		    rs->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : rs->backoff_ms * 2;
	}
	rs->next_try_ms = now + rs->backoff_ms;
	pthread_mutex_unlock(&rs->mu);
}

static void note_up(struct rstore *rs)
{
	pthread_mutex_lock(&rs->mu);
	if (rs->down) {
		rs->down = 0;
		log_msg(LOG_LVL_WARN, "store: redis %s answers again (after %lld s)", rs->where,
		        (long long)(time(NULL) - rs->down_since));
	}
	pthread_mutex_unlock(&rs->mu);
}

/* An idle connection or a new one; NULL with STORE_ERR_DOWN. */
static redisContext *conn_get(struct rstore *rs, unsigned long long *gen)
{
	char why[512];
	redisContext *c;

	pthread_mutex_lock(&rs->mu);
	*gen = rs->gen;
	if (rs->idle) {
		struct rconn *rc = rs->idle;
		rs->idle = rc->next;
		rs->nidle--;
		pthread_mutex_unlock(&rs->mu);
		c = rc->c;
		free(rc);
		return c;
	}
	if (rs->down && now_ms() < rs->next_try_ms) {
		pthread_mutex_unlock(&rs->mu);
		store_set_error(STORE_ERR_DOWN);
		return NULL;
	}
	pthread_mutex_unlock(&rs->mu);
	if ((c = connect_new(rs, why, sizeof(why))) == NULL) {
		note_down(rs, why);
		store_set_error(STORE_ERR_DOWN);
		return NULL;
	}
	note_up(rs);
	return c;
}

static void drop_idle(struct rstore *rs)
{
	struct rconn *list;

	pthread_mutex_lock(&rs->mu);
	list = rs->idle;
	rs->idle = NULL;
	rs->nidle = 0;
	rs->gen++;
	pthread_mutex_unlock(&rs->mu);
	while (list) {
		struct rconn *n = list->next;
		redisFree(list->c);
		free(list);
		list = n;
	}
}

/* Give c back (ok) or close it (broken: and the idle ones with it). */
static void conn_put(struct rstore *rs, redisContext *c, int ok, unsigned long long gen)
{
	if (c == NULL)
		return;
	if (!ok || c->err) {
		redisFree(c);
		drop_idle(rs);
		return;
	}
	pthread_mutex_lock(&rs->mu);
	if (rs->nidle < STORE_REDIS_POOL && gen == rs->gen) {
		struct rconn *rc = xmalloc(sizeof(*rc));
		rc->c = c;
		rc->next = rs->idle;
		rs->idle = rc;
		rs->nidle++;
		c = NULL;
	}
	pthread_mutex_unlock(&rs->mu);
	if (c)
		redisFree(c);
}

/* --- pipelines ------------------------------------------------------------------ */

#define MAX_ARGS 16

struct cmd {
	int argc;
	const char *argv[MAX_ARGS];
	size_t lens[MAX_ARGS];
};

static void arg(struct cmd *c, const void *p, size_t n)
{
	c->argv[c->argc] = p;
	c->lens[c->argc] = n;
	c->argc++;
}

static void args(struct cmd *c, const char *s)
{
	arg(c, s, strlen(s));
}

/* What a reply error means for the connection: 2 the server cannot take
 * writes or is not there (drop the connection), 1 NOSCRIPT, 0 other. */
static int error_kind(const redisReply *r)
{
	if (r->str == NULL)
		return 0;
	if (strncmp(r->str, "READONLY", 8) == 0 || strncmp(r->str, "MASTERDOWN", 10) == 0 ||
	    strncmp(r->str, "LOADING", 7) == 0 || strncmp(r->str, "NOAUTH", 6) == 0)
		return 2;
	if (strncmp(r->str, "NOSCRIPT", 8) == 0)
		return 1;
	return 0;
}

/* Send n commands in one round trip and read the n replies into out.
 * Returns 0 when every reply came (some may be error replies), -1 and the
 * connection is broken otherwise (out freed).  Tried once more on a new
 * connection when an idle one turns out broken or the scripts are gone. */
static int pipeline(struct rstore *rs, struct cmd *cmds, size_t n, redisReply **out)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		unsigned long long gen;
		redisContext *c = conn_get(rs, &gen);
		long long t0;
		int broken = 0, noscript = 0, drop = 0;
		size_t i, got = 0;

		if (c == NULL)
			return -1;
		{
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			t0 = (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
		}
		for (i = 0; i < n; i++)
			if (redisAppendCommandArgv(c, cmds[i].argc, cmds[i].argv, cmds[i].lens) !=
			    REDIS_OK)
				broken = 1;
		for (i = 0; !broken && i < n; i++) {
			void *r = NULL;
			if (redisGetReply(c, &r) != REDIS_OK || r == NULL) {
				broken = 1;
				break;
			}
			out[i] = r;
			got++;
			if (out[i]->type == REDIS_REPLY_ERROR) {
				int k = error_kind(out[i]);
				noscript |= k == 1;
				drop |= k == 2;
			}
		}
		if (!broken) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			__atomic_add_fetch(&rs->roundtrips, 1, __ATOMIC_RELAXED);
			__atomic_add_fetch(&rs->rt_us,
			                   (unsigned long long)((long long)ts.tv_sec * 1000000 +
			                                        ts.tv_nsec / 1000 - t0),
			                   __ATOMIC_RELAXED);
		}
		if (broken || drop || noscript) {
			char why[300];

			if (broken) {
				snprintf(why, sizeof(why), "%s", c->err ? c->errstr : "no reply");
			} else {
				snprintf(why, sizeof(why), "%s", "the server refused the command");
				for (i = 0; i < got; i++)
					if (out[i]->type == REDIS_REPLY_ERROR &&
					    error_kind(out[i]) == 2) {
						/* "READONLY You can't write against a read only
						 * replica.": the server's words, one line */
						snprintf(why, sizeof(why), "%.*s",
						         (int)strcspn(out[i]->str, "\r\n"),
						         out[i]->str);
						break;
					}
			}
			for (i = 0; i < got; i++)
				freeReplyObject(out[i]);
			if (noscript && !broken && !drop) {
				/* scripts flushed (SCRIPT FLUSH, or another server
				 * after a failover): load them, run again */
				char w[256];
				int ok = load_scripts(rs, c, w, sizeof(w)) == 0;
				conn_put(rs, c, ok, gen);
				if (!ok && attempt == 1) {
					note_down(rs, w);
					return store_set_error(STORE_ERR_SERVER), -1;
				}
				continue;
			}
			conn_put(rs, c, 0, gen);
			if (attempt == 1) {
				note_down(rs, why);
				return store_set_error(STORE_ERR_DOWN), -1;
			}
			continue;
		}
		conn_put(rs, c, 1, gen);
		return 0;
	}
	return store_set_error(STORE_ERR_DOWN), -1;
}

static void free_replies(redisReply **r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (r[i])
			freeReplyObject(r[i]);
}

/* --- keys ----------------------------------------------------------------------- */

/* PREFIX NS ":" KEY (malloc'd, *n its length) */
static char *rec_key(const struct rstore *rs, const char *ns, const void *key, size_t keylen,
                     size_t *n)
{
	size_t nl = strlen(ns);
	char *k = xmalloc(rs->prefixlen + nl + 1 + keylen + 1);

	memcpy(k, rs->prefix, rs->prefixlen);
	memcpy(k + rs->prefixlen, ns, nl);
	k[rs->prefixlen + nl] = ':';
	memcpy(k + rs->prefixlen + nl + 1, key, keylen);
	*n = rs->prefixlen + nl + 1 + keylen;
	k[*n] = '\0';
	return k;
}

/* PREFIX "#" WHAT ":" NS */
static char *meta_key(const struct rstore *rs, const char *what, const char *ns)
{
	return xasprintf("%s#%s:%s", rs->prefix, what, ns);
}

static time_t rnow(const struct rstore *rs)
{
	return rs->now(rs->now_arg);
}

/* Decode a reply holding a record into buf: 1 live, 0 absent or expired,
 * -1 (VERSION, SPACE). */
static int decode_rec(const struct rstore *rs, const redisReply *r, void *buf, size_t bufsize,
                      size_t *len, time_t *expires)
{
	time_t exp;
	size_t vlen;

	if (r->type == REDIS_REPLY_NIL)
		return 0;
	if (r->type != REDIS_REPLY_STRING)
		return store_set_error(STORE_ERR_SERVER), -1;
	if (store_hdr_decode((const unsigned char *)r->str, r->len, &exp) < 0)
		return store_set_error(STORE_ERR_VERSION), -1;
	if (exp != 0 && exp <= rnow(rs))
		return 0;
	vlen = r->len - STORE_HDR_SIZE;
	if (len)
		*len = vlen;
	if (expires)
		*expires = exp;
	if (vlen > bufsize)
		return store_set_error(STORE_ERR_SPACE), -1;
	if (vlen > 0)
		memcpy(buf, r->str + STORE_HDR_SIZE, vlen);
	return 1;
}

/* --- the ops -------------------------------------------------------------------- */

static int rget(void *be, const char *ns, const void *key, size_t keylen, void *buf, size_t bufsize,
                size_t *len, time_t *expires)
{
	struct rstore *rs = be;
	struct cmd c = { 0 };
	redisReply *r = NULL;
	size_t kn;
	char *k = rec_key(rs, ns, key, keylen, &kn);
	int rc;

	args(&c, "GET");
	arg(&c, k, kn);
	rc = pipeline(rs, &c, 1, &r);
	free(k);
	if (rc < 0)
		return -1;
	rc = decode_rec(rs, r, buf, buf ? bufsize : 0, len, expires);
	freeReplyObject(r);
	return rc;
}

/* The write script's command for one record. */
struct wbuf {
	char *k, *seq, *cnt;
	size_t kn;
	unsigned char *rec;
	char ttl[24], now[24];
};

static void wbuf_free(struct wbuf *w)
{
	free(w->k);
	free(w->seq);
	free(w->cnt);
	free(w->rec);
}

/* This process changed ns: its next store_seqnum reads the counter. */
static void seq_forget(struct rstore *rs, const char *ns)
{
	pthread_mutex_lock(&rs->mu);
	for (int i = 0; i < MAX_LIMITS; i++)
		if (rs->seqc[i].ns[0] && strcmp(rs->seqc[i].ns, ns) == 0)
			rs->seqc[i].valid = 0;
	pthread_mutex_unlock(&rs->mu);
}

static void write_cmd(struct rstore *rs, struct cmd *c, struct wbuf *w, const char *ns,
                      const void *key, size_t keylen, const void *val, size_t vallen,
                      time_t expires, const char *mode, const void *expect, size_t expectlen)
{
	time_t now = rnow(rs);

	w->k = rec_key(rs, ns, key, keylen, &w->kn);
	w->seq = meta_key(rs, "seq", ns);
	w->cnt = meta_key(rs, "cnt", ns);
	w->rec = xmalloc(STORE_HDR_SIZE + vallen);
	store_hdr_encode(w->rec, expires);
	if (vallen)
		memcpy(w->rec + STORE_HDR_SIZE, val, vallen);
	/* the time left: Redis removes the record then (an already expired
	 * one in a second; reads see it as absent meanwhile) */
	snprintf(w->ttl, sizeof(w->ttl), "%lld",
	         expires == 0    ? 0LL
	         : expires > now ? (long long)(expires - now)
	                         : 1LL);
	snprintf(w->now, sizeof(w->now), "%lld", (long long)now);
	pthread_mutex_lock(&rs->mu);
	args(c, "EVALSHA");
	arg(c, rs->sha_write, 40);
	pthread_mutex_unlock(&rs->mu);
	args(c, "3");
	arg(c, w->k, w->kn);
	args(c, w->seq);
	args(c, w->cnt);
	arg(c, w->rec, STORE_HDR_SIZE + vallen);
	args(c, w->ttl);
	args(c, mode);
	arg(c, expect ? expect : "", expect ? expectlen : 0);
	args(c, w->now);
}

static int reply_int(const redisReply *r)
{
	if (r->type == REDIS_REPLY_INTEGER)
		return (int)r->integer;
	return store_set_error(r->type == REDIS_REPLY_ERROR ? STORE_ERR_SERVER : STORE_ERR_IO), -1;
}

static int rput(void *be, const char *ns, const void *key, size_t keylen, const void *val,
                size_t vallen, time_t expires, int flags)
{
	struct rstore *rs = be;
	struct cmd c = { 0 };
	struct wbuf w = { 0 };
	redisReply *r = NULL;
	int rc;

	(void)flags; /* durability is Redis' (appendfsync) */
	write_cmd(rs, &c, &w, ns, key, keylen, val, vallen, expires, "p", NULL, 0);
	rc = pipeline(rs, &c, 1, &r);
	seq_forget(rs, ns);
	wbuf_free(&w);
	if (rc < 0)
		return -1;
	rc = reply_int(r) < 0 ? -1 : 0;
	freeReplyObject(r);
	return rc;
}

static int rdel(void *be, const char *ns, const void *key, size_t keylen, int flags)
{
	struct rstore *rs = be;
	struct cmd c = { 0 };
	redisReply *r = NULL;
	size_t kn;
	char *k = rec_key(rs, ns, key, keylen, &kn), *seq = meta_key(rs, "seq", ns),
	     *cnt = meta_key(rs, "cnt", ns);
	int rc;

	(void)flags;
	args(&c, "EVALSHA");
	pthread_mutex_lock(&rs->mu);
	arg(&c, rs->sha_del, 40);
	pthread_mutex_unlock(&rs->mu);
	args(&c, "3");
	arg(&c, k, kn);
	args(&c, seq);
	args(&c, cnt);
	rc = pipeline(rs, &c, 1, &r);
	seq_forget(rs, ns);
	free(k);
	free(seq);
	free(cnt);
	if (rc < 0)
		return -1;
	rc = reply_int(r);
	freeReplyObject(r);
	return rc;
}

static int rbatch(void *be, struct store_op *ops, size_t n)
{
	struct rstore *rs = be;
	struct cmd *c = xcalloc(n, sizeof(*c));
	struct wbuf *w = xcalloc(n, sizeof(*w));
	redisReply **r = xcalloc(n, sizeof(*r));
	int failed = 0;

	for (size_t i = 0; i < n; i++) {
		struct store_op *op = &ops[i];

		if (op->type == STORE_OP_GET) {
			w[i].k = rec_key(rs, op->ns, op->key, op->keylen, &w[i].kn);
			args(&c[i], "GET");
			arg(&c[i], w[i].k, w[i].kn);
		} else {
			write_cmd(rs, &c[i], &w[i], op->ns, op->key, op->keylen, op->val,
			          op->vallen, op->expires, op->expect ? "c" : "a", op->expect,
			          op->expectlen);
		}
	}
	if (pipeline(rs, c, n, r) < 0) {
		enum store_err e = store_last_error();
		for (size_t i = 0; i < n; i++) {
			ops[i].rc = -1;
			ops[i].err = e;
		}
		failed = (int)n;
	} else {
		for (size_t i = 0; i < n; i++) {
			struct store_op *op = &ops[i];

			if (op->type == STORE_OP_GET)
				op->rc = decode_rec(rs, r[i], op->buf, op->buf ? op->bufsize : 0,
				                    &op->len, &op->expires);
			else if ((op->rc = reply_int(r[i])) == 1)
				seq_forget(rs, op->ns);
			op->err = op->rc < 0 ? store_last_error() : STORE_OK;
			failed += op->rc < 0;
		}
		free_replies(r, n);
	}
	for (size_t i = 0; i < n; i++)
		wbuf_free(&w[i]);
	free(c);
	free(w);
	free(r);
	return failed;
}

/* --- traverse ------------------------------------------------------------------- */

/* The keys already passed to the callback (SCAN may return one twice):
 * an open-addressing set of 64-bit hashes. */
struct seen {
	uint64_t *v;
	size_t cap, n;
};

static uint64_t hash64(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 1099511628211ULL;
	}
	return h ? h : 1;
}

/* 1 when h was new (and is now in the set). */
static int seen_add(struct seen *s, uint64_t h)
{
	size_t i;

	if (s->n * 2 >= s->cap) {
		struct seen t = { xcalloc(s->cap ? s->cap * 2 : 1024, sizeof(uint64_t)),
			          s->cap ? s->cap * 2 : 1024, 0 };
		for (i = 0; i < s->cap; i++)
			if (s->v[i])
				(void)seen_add(&t, s->v[i]);
		free(s->v);
		*s = t;
	}
	for (i = h & (s->cap - 1); s->v[i]; i = (i + 1) & (s->cap - 1))
		if (s->v[i] == h)
			return 0;
	s->v[i] = h;
	s->n++;
	return 1;
}

/* A glob pattern matching PREFIX NS ":" * (the prefix's glob characters
 * escaped). */
static char *scan_pattern(const struct rstore *rs, const char *ns)
{
	size_t n = strlen(ns), o = 0;
	char *p = xmalloc(2 * rs->prefixlen + n + 3);

	for (size_t i = 0; i < rs->prefixlen; i++) {
		char ch = rs->prefix[i];
		if (ch == '*' || ch == '?' || ch == '[' || ch == ']' || ch == '\\')
			p[o++] = '\\';
		p[o++] = ch;
	}
	memcpy(p + o, ns, n);
	o += n;
	p[o++] = ':';
	p[o++] = '*';
	p[o] = '\0';
	return p;
}

static int rtraverse(void *be, const char *ns, store_traverse_fn fn, void *arg)
{
	struct rstore *rs = be;
	char cursor[32] = "0", *pat = scan_pattern(rs, ns);
	size_t skip = rs->prefixlen + strlen(ns) + 1;
	struct seen seen = { 0 };
	int passed = 0, stop = 0, rc = 0;

	do {
		struct cmd c = { 0 };
		redisReply *r = NULL, *keys, *vals = NULL;

		args(&c, "SCAN");
		args(&c, cursor);
		args(&c, "MATCH");
		args(&c, pat);
		args(&c, "COUNT");
		args(&c, SCAN_COUNT);
		if (pipeline(rs, &c, 1, &r) < 0) {
			rc = -1;
			break;
		}
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
		    r->element[0]->type != REDIS_REPLY_STRING ||
		    r->element[1]->type != REDIS_REPLY_ARRAY) {
			freeReplyObject(r);
			store_set_error(STORE_ERR_SERVER);
			rc = -1;
			break;
		}
		bcopy_str(cursor, sizeof(cursor), r->element[0]->str);
		keys = r->element[1];
		if (keys->elements > 0) {
			/* MGET of the keys found, as one command (argv) */
			const char **argv = xcalloc(keys->elements + 1, sizeof(*argv));
			size_t *lens = xcalloc(keys->elements + 1, sizeof(*lens));

			argv[0] = "MGET";
			lens[0] = 4;
			for (size_t i = 0; i < keys->elements; i++) {
				argv[i + 1] = keys->element[i]->str;
				lens[i + 1] = keys->element[i]->len;
			}
			{
				unsigned long long gen;
				redisContext *cx = conn_get(rs, &gen);
				if (cx == NULL) {
					rc = -1;
				} else {
					vals = redisCommandArgv(cx, (int)keys->elements + 1, argv,
					                        lens);
					__atomic_add_fetch(&rs->roundtrips, 1, __ATOMIC_RELAXED);
					conn_put(rs, cx, vals != NULL, gen);
					if (vals == NULL || vals->type != REDIS_REPLY_ARRAY ||
					    vals->elements != keys->elements) {
						store_set_error(vals ? STORE_ERR_SERVER
						                     : STORE_ERR_DOWN);
						rc = -1;
					}
				}
			}
			free(argv);
			free(lens);
			for (size_t i = 0; rc == 0 && !stop && i < keys->elements; i++) {
				redisReply *k = keys->element[i], *v = vals->element[i];
				time_t exp;

				if (v->type != REDIS_REPLY_STRING || k->len <= skip ||
				    store_hdr_decode((const unsigned char *)v->str, v->len, &exp) <
				        0 ||
				    (exp != 0 && exp <= rnow(rs)) ||
				    !seen_add(&seen, hash64(k->str, k->len)))
					continue;
				passed++;
				if (fn && fn(k->str + skip, k->len - skip, v->str + STORE_HDR_SIZE,
				             v->len - STORE_HDR_SIZE, exp, arg))
					stop = 1;
			}
			if (vals)
				freeReplyObject(vals);
		}
		freeReplyObject(r);
	} while (rc == 0 && !stop && strcmp(cursor, "0") != 0);
	free(seen.v);
	free(pat);
	return rc < 0 ? -1 : passed;
}

/* --- counters ------------------------------------------------------------------- */

/* The cache entry of ns (mu held), or -1 when full. */
static int seq_slot(struct rstore *rs, const char *ns)
{
	int i, free_i = -1;

	for (i = 0; i < MAX_LIMITS; i++) {
		if (rs->seqc[i].ns[0] && strcmp(rs->seqc[i].ns, ns) == 0)
			return i;
		if (!rs->seqc[i].ns[0] && free_i < 0)
			free_i = i;
	}
	if (free_i >= 0)
		bcopy_str(rs->seqc[free_i].ns, sizeof(rs->seqc[free_i].ns), ns);
	return free_i;
}

static int rseqnum(void *be, const char *ns, unsigned long *seq)
{
	struct rstore *rs = be;
	struct cmd c = { 0 };
	redisReply *r = NULL;
	char *k;
	int rc = 0, i;
	long long now = now_ms();

	pthread_mutex_lock(&rs->mu);
	i = seq_slot(rs, ns);
	if (i >= 0 && rs->seqc[i].valid && now - rs->seqc[i].at_ms < SEQ_CACHE_MS) {
		*seq = rs->seqc[i].seq;
		pthread_mutex_unlock(&rs->mu);
		return 0;
	}
	pthread_mutex_unlock(&rs->mu);
	k = meta_key(rs, "seq", ns);
	args(&c, "GET");
	args(&c, k);
	if (pipeline(rs, &c, 1, &r) < 0) {
		free(k);
		return -1;
	}
	free(k);
	if (r->type == REDIS_REPLY_NIL)
		*seq = 0;
	else if (r->type == REDIS_REPLY_STRING)
		*seq = strtoul(r->str, NULL, 10);
	else {
		store_set_error(STORE_ERR_SERVER);
		rc = -1;
	}
	freeReplyObject(r);
	if (rc == 0) {
		pthread_mutex_lock(&rs->mu);
		if ((i = seq_slot(rs, ns)) >= 0) {
			rs->seqc[i].seq = *seq;
			rs->seqc[i].at_ms = now;
			rs->seqc[i].valid = 1;
		}
		pthread_mutex_unlock(&rs->mu);
	}
	return rc;
}

static long rcount(void *be, const char *ns)
{
	struct rstore *rs = be;
	struct cmd c = { 0 };
	redisReply *r = NULL;
	char *k = meta_key(rs, "cnt", ns), hour[32];
	long n;

	snprintf(hour, sizeof(hour), "%lld", (long long)(rnow(rs) / 3600));
	args(&c, "EVALSHA");
	pthread_mutex_lock(&rs->mu);
	arg(&c, rs->sha_count, 40);
	pthread_mutex_unlock(&rs->mu);
	args(&c, "1");
	args(&c, k);
	args(&c, hour);
	args(&c, (rs->flags & STORE_RDONLY) ? "0" : "1");
	if (pipeline(rs, &c, 1, &r) < 0) {
		free(k);
		return -1;
	}
	free(k);
	n = r->type == REDIS_REPLY_INTEGER ? (long)r->integer : -1;
	if (n < 0)
		store_set_error(STORE_ERR_SERVER);
	freeReplyObject(r);
	return n;
}

static int rns_limit(void *be, const char *ns, long max)
{
	struct rstore *rs = be;
	int i;

	pthread_mutex_lock(&rs->mu);
	for (i = 0; i < rs->nlimit; i++)
		if (strcmp(rs->limit[i].ns, ns) == 0)
			break;
	if (i == rs->nlimit && i < MAX_LIMITS) {
		bcopy_str(rs->limit[i].ns, sizeof(rs->limit[i].ns), ns);
		rs->nlimit++;
	}
	if (i < MAX_LIMITS)
		rs->limit[i].max = max;
	pthread_mutex_unlock(&rs->mu);
	return i < MAX_LIMITS ? 0 : (store_set_error(STORE_ERR_FULL), -1);
}

/* The end of the oldest hours of ns's count hash that hold `goal`
 * records: records expiring before it go first.  0 when unknown. */
static time_t evict_cutoff(struct rstore *rs, const char *ns, long goal)
{
	struct cmd c = { 0 };
	redisReply *r = NULL;
	char *k = meta_key(rs, "cnt", ns);
	long long *h = NULL;
	long *n = NULL;
	size_t m = 0;
	time_t cutoff = 0;

	args(&c, "HGETALL");
	args(&c, k);
	if (pipeline(rs, &c, 1, &r) < 0) {
		free(k);
		return 0;
	}
	free(k);
	if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2) {
		h = xcalloc(r->elements / 2, sizeof(*h));
		n = xcalloc(r->elements / 2, sizeof(*n));
		for (size_t i = 0; i + 1 < r->elements; i += 2) {
			long long b =
			    strtoll(r->element[i]->str ? r->element[i]->str : "0", NULL, 10);
			if (b == 0)
				continue; /* never expires: not evicted */
			h[m] = b;
			n[m] =
			    strtol(r->element[i + 1]->str ? r->element[i + 1]->str : "0", NULL, 10);
			m++;
		}
		/* oldest hour first (a few hundred hours: insertion sort) */
		for (size_t i = 1; i < m; i++)
			for (size_t j = i; j > 0 && h[j - 1] > h[j]; j--) {
				long long tb = h[j];
				long tn = n[j];
				h[j] = h[j - 1];
				n[j] = n[j - 1];
				h[j - 1] = tb;
				n[j - 1] = tn;
			}
		for (size_t i = 0; i < m; i++) {
			goal -= n[i];
			if (goal <= 0) {
				cutoff = (time_t)((h[i] + 1) * 3600);
				break;
			}
		}
		if (cutoff == 0 && m > 0)
			cutoff = (time_t)((h[m - 1] + 1) * 3600);
	}
	free(h);
	free(n);
	freeReplyObject(r);
	return cutoff;
}

/* Expiry is Redis' (key TTL): nothing to walk.  Over a cap
 * (store_ns_limit), each step SCANs one batch of the namespace and deletes
 * the records that expire in the oldest hours holding the surplus (oldest
 * first, to the hour), until the count is under 90% of the cap.  Under the
 * cap, the count is read every LIMIT_CHECK_MS only. */
static int rexpire_step(void *be, const char *ns, time_t now, unsigned max_chains, unsigned *cursor)
{
	struct rstore *rs = be;
	long max = 0, n;
	int deleted = 0;
	char cur[32], *pat;
	struct cmd c = { 0 };
	redisReply *r = NULL;
	time_t cutoff;

	(void)now;
	if (max_chains == 0)
		return store_set_error(STORE_ERR_INVAL), -1;
	long long t = now_ms();
	int li = -1;

	pthread_mutex_lock(&rs->mu);
	for (int i = 0; i < rs->nlimit; i++)
		if (strcmp(rs->limit[i].ns, ns) == 0)
			li = i;
	/* under the cap: counted again every LIMIT_CHECK_MS, not at every
	 * step (ten a second) */
	if (li >= 0 && (*cursor != 0 || t >= rs->limit[li].next_ms))
		max = rs->limit[li].max;
	pthread_mutex_unlock(&rs->mu);
	if (max <= 0)
		return 0;
	if ((n = rcount(be, ns)) < 0 || n <= max) {
		pthread_mutex_lock(&rs->mu);
		rs->limit[li].next_ms = t + LIMIT_CHECK_MS;
		pthread_mutex_unlock(&rs->mu);
		*cursor = 0;
		return n < 0 ? -1 : 0;
	}
	if ((cutoff = evict_cutoff(rs, ns, n - max * 9 / 10)) == 0)
		return 0;
	pat = scan_pattern(rs, ns);
	snprintf(cur, sizeof(cur), "%u", *cursor);
	args(&c, "SCAN");
	args(&c, cur);
	args(&c, "MATCH");
	args(&c, pat);
	args(&c, "COUNT");
	args(&c, SCAN_COUNT);
	if (pipeline(rs, &c, 1, &r) < 0) {
		free(pat);
		return -1;
	}
	free(pat);
	if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
	    r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_ARRAY) {
		unsigned long long next = strtoull(r->element[0]->str, NULL, 10);
		redisReply *keys = r->element[1];
		size_t skip = rs->prefixlen + strlen(ns) + 1;

		for (size_t i = 0; i < keys->elements; i++) {
			redisReply *k = keys->element[i];
			time_t exp = 0;
			size_t len;
			unsigned char b[1];
			int g;

			if (k->len <= skip)
				continue;
			g = rget(be, ns, k->str + skip, k->len - skip, b, 0, &len, &exp);
			if ((g == 1 || (g < 0 && store_last_error() == STORE_ERR_SPACE)) &&
			    exp != 0 && exp < cutoff &&
			    rdel(be, ns, k->str + skip, k->len - skip, 0) == 1)
				deleted++;
		}
		/* a cursor that does not fit restarts the scan: harmless */
		*cursor = next > 0xffffffffULL ? 0 : (unsigned)next;
	}
	freeReplyObject(r);
	return deleted;
}

/* --- open, close, the rest -------------------------------------------------------- */

static time_t default_now(void *arg)
{
	(void)arg;
	return clock_now();
}

void *store_redis_open(const struct store_params *p, int flags, char *err, size_t errsize)
{
	struct rstore *rs = xcalloc(1, sizeof(*rs));
	unsigned long long gen;
	redisContext *c;

	pthread_mutex_init(&rs->mu, NULL);
	rs->flags = flags;
	rs->where = xstrdup(p->redis ? p->redis : "");
	rs->db = p->redis_db;
	rs->prefix = xstrdup(p->prefix ? p->prefix : "");
	rs->prefixlen = strlen(rs->prefix);
	rs->timeout_ms = p->timeout_ms > 0 ? p->timeout_ms : 1000;
	rs->now = default_now;
	if (parse_where(rs, rs->where, err, errsize) < 0)
		goto fail;
	if (p->password_file && p->password_file[0] &&
	    read_password(rs, p->password_file, err, errsize) < 0)
		goto fail;
	/* the first connection now: a refused AUTH or an unknown database is
	 * a configuration error; a server that does not answer is not */
	{
		char why[512];
		if ((c = connect_new(rs, why, sizeof(why))) == NULL) {
			if (strstr(why, "AUTH") || strstr(why, "SELECT") ||
			    strstr(why, "WRONGPASS") || strstr(why, "NOAUTH")) {
				snprintf(err, errsize, "store: redis %s: %s", rs->where, why);
				goto fail;
			}
			note_down(rs, why);
		} else {
			gen = rs->gen;
			conn_put(rs, c, 1, gen);
		}
	}
	return rs;
fail:
	store_set_error(STORE_ERR_INVAL);
	free(rs->where);
	free(rs->prefix);
	if (rs->password) {
		explicit_bzero(rs->password, strlen(rs->password));
		free(rs->password);
	}
	pthread_mutex_destroy(&rs->mu);
	free(rs);
	return NULL;
}

static void rclose(void *be)
{
	struct rstore *rs = be;

	drop_idle(rs);
	free(rs->where);
	free(rs->prefix);
	if (rs->password) {
		explicit_bzero(rs->password, strlen(rs->password));
		free(rs->password);
	}
	pthread_mutex_destroy(&rs->mu);
	free(rs);
}

static void rset_clock(void *be, time_t (*now)(void *arg), void *arg)
{
	struct rstore *rs = be;

	rs->now = now ? now : default_now;
	rs->now_arg = arg;
}

static int rns_hash_size(void *be, const char *ns, int hash_size)
{
	(void)be;
	(void)ns;
	(void)hash_size;
	return 0; /* a TDB matter */
}

static int rping(void *be, char *info, size_t infosize)
{
	struct rstore *rs = be;
	struct cmd c = { 0 };
	redisReply *r = NULL;
	const char *v;

	args(&c, "INFO");
	args(&c, "server");
	if (pipeline(rs, &c, 1, &r) < 0) {
		pthread_mutex_lock(&rs->mu);
		snprintf(info, infosize, "redis %s does not answer: %s", rs->where,
		         rs->why[0] ? rs->why : store_strerror(store_last_error()));
		pthread_mutex_unlock(&rs->mu);
		return -1;
	}
	if (r->type != REDIS_REPLY_STRING) {
		snprintf(info, infosize, "redis %s: %.200s", rs->where,
		         r->type == REDIS_REPLY_ERROR && r->str ? r->str : "unexpected reply");
		freeReplyObject(r);
		return -1;
	}
	v = strstr(r->str, "redis_version:");
	snprintf(info, infosize, "redis %s answers (version %.*s)", rs->where,
	         v ? (int)strcspn(v + 14, "\r\n") : 1, v ? v + 14 : "?");
	freeReplyObject(r);
	return 0;
}

static void rstats(void *be, struct store_stats *out)
{
	struct rstore *rs = be;

	memset(out, 0, sizeof(*out));
	out->roundtrips = __atomic_load_n(&rs->roundtrips, __ATOMIC_RELAXED);
	out->roundtrip_us = __atomic_load_n(&rs->rt_us, __ATOMIC_RELAXED);
	pthread_mutex_lock(&rs->mu);
	out->down = rs->down;
	pthread_mutex_unlock(&rs->mu);
}

static const char *rwhere(void *be)
{
	return ((struct rstore *)be)->where;
}

const struct store_ops store_redis_ops = {
	.name = "redis",
	.close = rclose,
	.set_clock = rset_clock,
	.ns_hash_size = rns_hash_size,
	.get = rget,
	.put = rput,
	.del = rdel,
	.traverse = rtraverse,
	.expire_step = rexpire_step,
	.seqnum = rseqnum,
	.count = rcount,
	.ns_limit = rns_limit,
	.batch = rbatch,
	.ping = rping,
	.stats = rstats,
	.where = rwhere,
};
