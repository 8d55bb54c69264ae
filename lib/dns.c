/* lib/dns.c - stub resolver: parallel queries with one deadline, and a cache
 *
 * Contract: see dns.h.  Threading: a struct dns is immutable after
 * dns_new() except for the cache and the limits (behind d->lock) and the
 * counters (atomic adds and loads).  A batch is private to its thread, so
 * its queries, sockets and buffers need no lock.  ldns is used only on
 * objects owned by the caller (packets, RR lists), which is thread-safe.
 *
 * One run of a batch (dns_batch_run):
 *   1. every pending query gets its own non-blocking UDP socket (bound by
 *      the kernel to a random port) and a random id, and is sent to the
 *      first server;
 *   2. poll() waits for any socket, for the next retransmission time or for
 *      the deadline, whichever is first;
 *   3. an unanswered query is sent again, to the next server, after a third
 *      of the time that was left at its previous send (at least 10 ms), at
 *      most limits.retransmits times;
 *   4. a reply counts only if it comes from a server's address and port and
 *      carries the query's id and, byte for byte up to ASCII case, its
 *      question; anything else is dropped and counted (stats.ignored);
 *   5. a truncated (TC) reply moves the query to TCP with the server that
 *      sent it (RFC 7766): connect, write, read, all non-blocking in the
 *      same poll loop and under the same deadline;
 *   6. SERVFAIL or REFUSED/NOTIMP/FORMERR from one server sends the query at
 *      once to a server that has not failed it yet, if there is one.
 * Queries that are not done at the deadline end as DNS_TIMEOUT.
 *
 * The cache is a hash table with chaining plus a list in insertion order,
 * oldest first, for eviction; entries hold a private copy of the RRs and a
 * hit hands out another copy, so no lock is held while a caller reads.
 *
 * See also: dns.h; RFC 1035 4.2, RFC 2308 5, RFC 5452 9.1, RFC 7766.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dns.h"
#include "metrics.h"
#include "util.h"

#define DNS_MAXNS         3     /* servers, as resolv.conf(5) MAXNS */
#define DNS_EDNS_SIZE     1232  /* EDNS0 UDP payload we announce (DNS flag day 2020) */
#define DNS_MSG_MAX       65535 /* largest DNS message (TCP length prefix) */
#define DNS_CACHE_BUCKETS 16384 /* hash buckets (a power of two) */
#define DNS_MIN_RETX_MS   10    /* shortest retransmission interval */
#define DNS_UDP_DRAIN     64    /* datagrams read per socket and wake-up */

#define ST_ADD(d, f) __atomic_fetch_add(&(d)->st.f, 1, __ATOMIC_RELAXED)

struct server {
	struct sockaddr_storage sa;
	socklen_t len;
};

struct centry {
	struct centry *hnext; /* hash chain */
	struct centry *older; /* insertion order: towards the oldest */
	struct centry *newer; /* ... and towards the newest */
	uint32_t hash;
	uint16_t type;
	enum dns_status status;
	ldns_rr_list *rrs; /* DNS_OK only */
	long long expires; /* now_ms() */
	char name[];       /* the query's name (see struct query) */
};

struct dns {
	struct server srv[DNS_MAXNS];
	int nsrv;
	pthread_mutex_t lock; /* lim, the cache */
	struct dns_limits lim;
	struct centry **bucket;
	struct centry *oldest, *newest;
	unsigned long long nentries;
	struct dns_stats st; /* atomics; st.cache_entries unused (nentries) */
};

enum qstate { Q_DONE, Q_PENDING, Q_UDP, Q_TCP_CONNECT, Q_TCP_WRITE, Q_TCP_READ };

struct query {
	/* presentation form for ldns and the cache key: ASCII lower case, no
	 * trailing dot, octets other than LDH and '_' as \DDD (names of
	 * dns_batch_add_raw() only) */
	char name[DNS_NAME_TEXT_MAX + 1];
	uint16_t type, id;
	enum qstate state;
	enum dns_status status;
	uint8_t *wire; /* the query message */
	size_t wirelen;
	size_t qend;  /* end of its question section */
	int ufd[2];   /* UDP sockets: [0] IPv4, [1] IPv6 */
	int srv;      /* server of the last send */
	int sends;    /* UDP sends so far */
	unsigned bad; /* bit s: server s failed this query (SERVFAIL, ...) */
	long long next_tx;
	int tfd;           /* TCP socket */
	uint8_t thdr[2];   /* TCP: the length prefix being read */
	uint8_t *tbuf;     /* TCP: message being written or read */
	size_t tlen, tpos; /* its size and progress */
	ldns_rr_list *rrs; /* DNS_OK: the RRs of the asked type */
	unsigned ttl;
	int cached;
	long long start_us; /* when it became pending (metrics_now_us) */
};

struct dns_batch {
	struct dns *d;
	struct dns_limits lim; /* a copy, taken by dns_batch_new() */
	long long deadline;    /* now_ms() */
	struct query *q;
	int n, cap;
	struct query overflow; /* index DNS_BATCH_MAX: every query too many */
	uint8_t *rbuf;         /* receive buffer, DNS_MSG_MAX bytes */
};

/* ---- names ----------------------------------------------------------- */

/* A name into the form ldns is given, in out: ASCII lower case, no
 * trailing dot, letters, digits, '-' and '_' as they are.  Any other octet
 * makes a strict name invalid (raw = 0: host names, list zones; out holds
 * DNS_NAME_MAX + 1 bytes); a raw name (raw = 1: SPF domain-specs, RFC 2181
 * section 11) carries it escaped as \DDD (out holds DNS_NAME_TEXT_MAX + 1
 * bytes).  Returns 0, or -1 for a name that is invalid or cannot be sent:
 * empty, an empty label, a label over 63 octets, more than DNS_NAME_MAX
 * octets. */
static int name_encode(const char *in, char *out, int raw)
{
	size_t len, i, o = 0, lab = 0;

	if (in == NULL)
		return -1;
	len = strnlen(in, DNS_NAME_MAX + 2);
	if (len > 1 && in[len - 1] == '.')
		len--;
	if (len == 0 || len > DNS_NAME_MAX)
		return -1;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c == '.') {
			if (lab == 0)
				return -1;
			lab = 0;
			out[o++] = '.';
			continue;
		}
		if (++lab > 63)
			return -1;
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_') {
			out[o++] = (char)c;
		} else if (!raw) {
			return -1;
		} else {
			out[o++] = '\\';
			out[o++] = (char)('0' + c / 100);
			out[o++] = (char)('0' + c / 10 % 10);
			out[o++] = (char)('0' + c % 10);
		}
	}
	if (lab == 0) /* "a.b.." */
		return -1;
	out[o] = '\0';
	return 0;
}

int dns_name_valid(const char *name)
{
	char tmp[DNS_NAME_MAX + 1];

	return name_encode(name, tmp, 0) == 0;
}

static int type_valid(int t)
{
	if (t <= 0 || t > 65535)
		return 0;
	switch (t) {
	case LDNS_RR_TYPE_OPT:
	case LDNS_RR_TYPE_TSIG:
	case LDNS_RR_TYPE_IXFR:
	case LDNS_RR_TYPE_AXFR:
	case LDNS_RR_TYPE_MAILB:
	case LDNS_RR_TYPE_MAILA:
	case LDNS_RR_TYPE_ANY: return 0;
	default: return 1;
	}
}

const char *dns_status_name(enum dns_status st)
{
	switch (st) {
	case DNS_OK: return "ok";
	case DNS_NXDOMAIN: return "nxdomain";
	case DNS_NODATA: return "nodata";
	case DNS_SERVFAIL: return "servfail";
	case DNS_TIMEOUT: return "timeout";
	case DNS_ERROR: break;
	}
	return "error";
}

int dns_status_temporary(enum dns_status st)
{
	return st == DNS_SERVFAIL || st == DNS_TIMEOUT || st == DNS_ERROR;
}

int dns_reverse_name(const struct ipaddr *ip, const char *suffix, char *dst, size_t dstsize)
{
	static const char hex[] = "0123456789abcdef";
	char buf[DNS_NAME_MAX + 64];
	size_t n = 0, sl;
	int i;

	if (dstsize > 0)
		dst[0] = '\0';
	if (ip == NULL || (ip->family != AF_INET && ip->family != AF_INET6))
		return -1;
	if (suffix == NULL)
		suffix = ip->family == AF_INET ? "in-addr.arpa" : "ip6.arpa";
	sl = strlen(suffix);
	if (sl > DNS_NAME_MAX)
		return -1;
	if (ip->family == AF_INET) {
		n = (size_t)snprintf(buf, sizeof(buf), "%u.%u.%u.%u.", ip->a[3], ip->a[2], ip->a[1],
		                     ip->a[0]);
	} else {
		for (i = 15; i >= 0; i--) {
			buf[n++] = hex[ip->a[i] & 0x0f];
			buf[n++] = '.';
			buf[n++] = hex[ip->a[i] >> 4];
			buf[n++] = '.';
		}
	}
	if (n + sl + 1 > sizeof(buf))
		return -1;
	memcpy(buf + n, suffix, sl + 1);
	if (!dns_name_valid(buf))
		return -1;
	if (bcopy_str(dst, dstsize, buf) >= dstsize) {
		if (dstsize > 0)
			dst[0] = '\0';
		return -1;
	}
	return 0;
}

/* ---- servers --------------------------------------------------------- */

/* Parse one server "ADDR", "ADDR:PORT", "[V6]", "[V6]:PORT" or a bare IPv6
 * address.  Returns 0 or -1 with a reason in err. */
static int server_parse(const char *spec, struct server *s, char *err, size_t errsize)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *port = NULL, *colon;
	size_t hl;
	unsigned long p = 53;
	int bracket = 0;

	memset(s, 0, sizeof(*s));
	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');

		if (close == NULL)
			goto bad;
		hl = (size_t)(close - spec - 1);
		if (hl >= sizeof(host))
			goto bad;
		memcpy(host, spec + 1, hl);
		host[hl] = '\0';
		if (close[1] == ':')
			port = close + 2;
		else if (close[1] != '\0')
			goto bad;
		bracket = 1;
	} else {
		colon = strchr(spec, ':');
		if (colon != NULL && strchr(colon + 1, ':') == NULL) {
			hl = (size_t)(colon - spec);
			port = colon + 1;
		} else {
			hl = strlen(spec);
		}
		if (hl >= sizeof(host))
			goto bad;
		memcpy(host, spec, hl);
		host[hl] = '\0';
	}
	if (port != NULL) {
		char *end;

		if (*port < '0' || *port > '9')
			goto badport;
		errno = 0;
		p = strtoul(port, &end, 10);
		if (errno != 0 || *end != '\0' || p == 0 || p > 65535)
			goto badport;
	}
	if (!bracket) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&s->sa;

		if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
			sin->sin_family = AF_INET;
			sin->sin_port = htons((uint16_t)p);
			s->len = sizeof(*sin);
			return 0;
		}
	}
	{
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&s->sa;

		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
			sin6->sin6_family = AF_INET6;
			sin6->sin6_port = htons((uint16_t)p);
			s->len = sizeof(*sin6);
			return 0;
		}
	}
bad:
	snprintf(err, errsize, "resolver \"%.80s\": not an IP address, [IPv6] or ADDRESS:PORT",
	         spec);
	return -1;
badport:
	snprintf(err, errsize, "resolver \"%.80s\": bad port (1-65535)", spec);
	return -1;
}

static void server_format(const struct server *s, char *dst, size_t dstsize)
{
	char a[INET6_ADDRSTRLEN];

	if (s->sa.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&s->sa;

		inet_ntop(AF_INET, &sin->sin_addr, a, sizeof(a));
		snprintf(dst, dstsize, "%s:%u", a, ntohs(sin->sin_port));
	} else {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&s->sa;

		inet_ntop(AF_INET6, &sin6->sin6_addr, a, sizeof(a));
		snprintf(dst, dstsize, "[%s]:%u", a, ntohs(sin6->sin6_port));
	}
}

/* Index of the server that sa is, or -1. */
static int server_find(const struct dns *d, const struct sockaddr_storage *sa)
{
	int i;

	for (i = 0; i < d->nsrv; i++) {
		const struct sockaddr_storage *s = &d->srv[i].sa;

		if (s->ss_family != sa->ss_family)
			continue;
		if (s->ss_family == AF_INET) {
			const struct sockaddr_in *a = (const struct sockaddr_in *)s;
			const struct sockaddr_in *b = (const struct sockaddr_in *)sa;

			if (a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr)
				return i;
		} else {
			const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)s;
			const struct sockaddr_in6 *b = (const struct sockaddr_in6 *)sa;

			if (a->sin6_port == b->sin6_port &&
			    memcmp(&a->sin6_addr, &b->sin6_addr, sizeof(a->sin6_addr)) == 0)
				return i;
		}
	}
	return -1;
}

/* The nameservers of a resolv.conf-format file (NULL: /etc/resolv.conf). */
static int servers_from_file(struct dns *d, const char *path, char *err, size_t errsize)
{
	ldns_resolver *r = NULL;
	ldns_status st;
	ldns_rdf **ns;
	size_t i, n;
	uint16_t port;

	st = ldns_resolver_new_frm_file(&r, path);
	if (st != LDNS_STATUS_OK) {
		snprintf(err, errsize, "%s: %s", path ? path : "/etc/resolv.conf",
		         ldns_get_errorstr_by_id(st));
		return -1;
	}
	ns = ldns_resolver_nameservers(r);
	n = ldns_resolver_nameserver_count(r);
	port = ldns_resolver_port(r);
	if (port == 0)
		port = 53;
	for (i = 0; i < n && d->nsrv < DNS_MAXNS; i++) {
		struct sockaddr_storage *sa;
		size_t len = 0;

		sa = ldns_rdf2native_sockaddr_storage(ns[i], port, &len);
		if (sa == NULL)
			continue;
		if (len <= sizeof(d->srv[0].sa)) {
			memcpy(&d->srv[d->nsrv].sa, sa, len);
			d->srv[d->nsrv].len = (socklen_t)len;
			d->nsrv++;
		}
		free(sa);
	}
	ldns_resolver_deep_free(r);
	if (d->nsrv == 0) {
		/* As the C library does without a nameserver line. */
		if (server_parse("127.0.0.1", &d->srv[0], err, errsize) < 0)
			return -1;
		d->nsrv = 1;
	}
	return 0;
}

struct dns *dns_new(const char *resolver, char *err, size_t errsize)
{
	struct dns *d = xcalloc(1, sizeof(*d));

	if (errsize > 0)
		err[0] = '\0';
	if (resolver == NULL || resolver[0] == '\0' || resolver[0] == '/') {
		if (servers_from_file(d, resolver && resolver[0] ? resolver : NULL, err, errsize) <
		    0)
			goto fail;
	} else {
		if (server_parse(resolver, &d->srv[0], err, errsize) < 0)
			goto fail;
		d->nsrv = 1;
	}
	d->lim.cache_max = 10000;
	d->lim.ttl_max = 3600;
	d->lim.neg_ttl_max = 900;
	d->lim.retransmits = 2;
	d->bucket = xcalloc(DNS_CACHE_BUCKETS, sizeof(*d->bucket));
	pthread_mutex_init(&d->lock, NULL);
	return d;
fail:
	free(d);
	return NULL;
}

void dns_servers(const struct dns *d, char *dst, size_t dstsize)
{
	char one[INET6_ADDRSTRLEN + 16];
	int i;

	if (dstsize == 0)
		return;
	dst[0] = '\0';
	for (i = 0; i < d->nsrv; i++) {
		server_format(&d->srv[i], one, sizeof(one));
		bappend(dst, dstsize, "%s%s", i ? " " : "", one);
	}
}

/* ---- cache ----------------------------------------------------------- */

static uint32_t key_hash(const char *name, uint16_t type)
{
	uint32_t h = 2166136261u;

	h = (h ^ (type & 0xff)) * 16777619u;
	h = (h ^ (type >> 8)) * 16777619u;
	for (; *name; name++)
		h = (h ^ (unsigned char)*name) * 16777619u;
	return h;
}

/* Unlink and free e; d->lock held. */
static void cache_remove(struct dns *d, struct centry *e)
{
	struct centry **pp = &d->bucket[e->hash & (DNS_CACHE_BUCKETS - 1)];

	while (*pp != NULL && *pp != e)
		pp = &(*pp)->hnext;
	if (*pp == e)
		*pp = e->hnext;
	if (e->older)
		e->older->newer = e->newer;
	else
		d->oldest = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		d->newest = e->older;
	d->nentries--;
	if (e->rrs)
		ldns_rr_list_deep_free(e->rrs);
	free(e);
}

/* Evict the oldest entries beyond the size limit; d->lock held. */
static void cache_trim(struct dns *d)
{
	long long now = now_ms();

	while (d->oldest != NULL && d->oldest->expires <= now)
		cache_remove(d, d->oldest);
	while (d->oldest != NULL && d->nentries > d->lim.cache_max)
		cache_remove(d, d->oldest);
}

static struct centry *cache_find(struct dns *d, const char *name, uint16_t type, uint32_t h)
{
	struct centry *e;

	for (e = d->bucket[h & (DNS_CACHE_BUCKETS - 1)]; e != NULL; e = e->hnext)
		if (e->hash == h && e->type == type && strcmp(e->name, name) == 0)
			return e;
	return NULL;
}

/* A cached result for name/type into q; returns 1 on a hit, 0 on a miss. */
static int cache_get(struct dns *d, struct query *q)
{
	uint32_t h = key_hash(q->name, q->type);
	struct centry *e;
	long long now = now_ms();
	int hit = 0;

	pthread_mutex_lock(&d->lock);
	e = cache_find(d, q->name, q->type, h);
	if (e != NULL && e->expires <= now) {
		cache_remove(d, e);
		e = NULL;
	}
	if (e != NULL) {
		q->status = e->status;
		q->rrs = e->rrs ? ldns_rr_list_clone(e->rrs) : NULL;
		q->ttl = (unsigned)((e->expires - now + 999) / 1000);
		q->cached = 1;
		hit = 1;
	}
	pthread_mutex_unlock(&d->lock);
	return hit;
}

static void cache_put(struct dns *d, const struct query *q)
{
	uint32_t h = key_hash(q->name, q->type);
	struct centry *e, *old;

	e = xcalloc(1, sizeof(*e) + strlen(q->name) + 1);
	e->hash = h;
	e->type = q->type;
	memcpy(e->name, q->name, strlen(q->name) + 1);
	e->status = q->status;
	if (q->rrs != NULL)
		e->rrs = ldns_rr_list_clone(q->rrs);
	e->expires = now_ms() + (long long)q->ttl * 1000;

	pthread_mutex_lock(&d->lock);
	if (d->lim.cache_max == 0) {
		pthread_mutex_unlock(&d->lock);
		if (e->rrs)
			ldns_rr_list_deep_free(e->rrs);
		free(e);
		return;
	}
	old = cache_find(d, q->name, q->type, h);
	if (old != NULL)
		cache_remove(d, old);
	e->hnext = d->bucket[h & (DNS_CACHE_BUCKETS - 1)];
	d->bucket[h & (DNS_CACHE_BUCKETS - 1)] = e;
	e->older = d->newest;
	if (d->newest)
		d->newest->newer = e;
	else
		d->oldest = e;
	d->newest = e;
	d->nentries++;
	cache_trim(d);
	pthread_mutex_unlock(&d->lock);
}

void dns_cache_flush(struct dns *d)
{
	pthread_mutex_lock(&d->lock);
	while (d->oldest != NULL)
		cache_remove(d, d->oldest);
	pthread_mutex_unlock(&d->lock);
}

void dns_get_limits(struct dns *d, struct dns_limits *l)
{
	pthread_mutex_lock(&d->lock);
	*l = d->lim;
	pthread_mutex_unlock(&d->lock);
}

void dns_set_limits(struct dns *d, const struct dns_limits *l)
{
	pthread_mutex_lock(&d->lock);
	d->lim = *l;
	cache_trim(d);
	pthread_mutex_unlock(&d->lock);
}

void dns_get_stats(struct dns *d, struct dns_stats *st)
{
#define LD(f) st->f = __atomic_load_n(&d->st.f, __ATOMIC_RELAXED)
	LD(queries);
	LD(cache_hits);
	LD(sent);
	LD(retransmits);
	LD(tcp);
	LD(answers);
	LD(timeouts);
	LD(servfail);
	LD(errors);
	LD(ignored);
#undef LD
	pthread_mutex_lock(&d->lock);
	st->cache_entries = d->nentries;
	pthread_mutex_unlock(&d->lock);
}

void dns_free(struct dns *d)
{
	if (d == NULL)
		return;
	dns_cache_flush(d);
	pthread_mutex_destroy(&d->lock);
	free(d->bucket);
	free(d);
}

/* ---- batches ---------------------------------------------------------- */

struct dns_batch *dns_batch_new(struct dns *d, int timeout_ms)
{
	struct dns_batch *b = xcalloc(1, sizeof(*b));

	b->d = d;
	dns_get_limits(d, &b->lim);
	if (timeout_ms < 1)
		timeout_ms = 1;
	b->deadline = now_ms() + timeout_ms;
	b->overflow.state = Q_DONE;
	b->overflow.status = DNS_ERROR;
	b->overflow.ufd[0] = b->overflow.ufd[1] = b->overflow.tfd = -1;
	return b;
}

int dns_batch_remaining(const struct dns_batch *b)
{
	long long left = b->deadline - now_ms();

	if (left <= 0)
		return 0;
	return left > INT_MAX ? INT_MAX : (int)left;
}

static void close_fds(struct query *q)
{
	int k;

	for (k = 0; k < 2; k++) {
		if (q->ufd[k] >= 0)
			close(q->ufd[k]);
		q->ufd[k] = -1;
	}
	if (q->tfd >= 0)
		close(q->tfd);
	q->tfd = -1;
	free(q->tbuf);
	q->tbuf = NULL;
}

/* End query q with status st (rrs, ttl already set for answers). */
static void finish(struct dns_batch *b, struct query *q, enum dns_status st)
{
	struct dns *d = b->d;

	close_fds(q);
	q->state = Q_DONE;
	q->status = st;
	metrics_dns_query(metrics_now_us() - q->start_us);
	if (st != DNS_OK && q->rrs != NULL) { /* e.g. the empty list of a NODATA */
		ldns_rr_list_deep_free(q->rrs);
		q->rrs = NULL;
	}
	if (dns_status_temporary(st))
		q->ttl = 0;
	switch (st) {
	case DNS_OK:
	case DNS_NXDOMAIN:
	case DNS_NODATA:
		ST_ADD(d, answers);
		if (q->ttl > 0)
			cache_put(d, q);
		break;
	case DNS_SERVFAIL: ST_ADD(d, servfail); break;
	case DNS_TIMEOUT: ST_ADD(d, timeouts); break;
	case DNS_ERROR: ST_ADD(d, errors); break;
	}
}

static int batch_add(struct dns_batch *b, const char *name, int rrtype, int raw);

/* Build the wire form of q; returns 0 or -1. */
static int build_query(struct query *q)
{
	ldns_rdf *qname;
	ldns_pkt *pkt;
	uint8_t *wire = NULL;
	size_t len = 0, off;
	uint16_t id;

	qname = ldns_dname_new_frm_str(q->name);
	if (qname == NULL)
		return -1;
	pkt = ldns_pkt_query_new(qname, (ldns_rr_type)q->type, LDNS_RR_CLASS_IN, LDNS_RD);
	if (pkt == NULL) {
		ldns_rdf_deep_free(qname);
		return -1;
	}
	if (getrandom(&id, sizeof(id), 0) != (ssize_t)sizeof(id))
		id = (uint16_t)(now_ms() ^ (long long)(uintptr_t)q);
	ldns_pkt_set_id(pkt, id);
	ldns_pkt_set_edns_udp_size(pkt, DNS_EDNS_SIZE);
	if (ldns_pkt2wire(&wire, pkt, &len) != LDNS_STATUS_OK || len < 12 + 1 + 4) {
		ldns_pkt_free(pkt);
		free(wire);
		return -1;
	}
	ldns_pkt_free(pkt);
	/* The question: labels up to the root, then type and class. */
	off = 12;
	while (off < len && wire[off] != 0)
		off += 1u + wire[off];
	off += 1 + 4;
	if (off > len) {
		free(wire);
		return -1;
	}
	q->wire = wire;
	q->wirelen = len;
	q->qend = off;
	q->id = id;
	return 0;
}

int dns_batch_add(struct dns_batch *b, const char *name, int rrtype)
{
	return batch_add(b, name, rrtype, 0);
}

int dns_batch_add_raw(struct dns_batch *b, const char *name, int rrtype)
{
	return batch_add(b, name, rrtype, 1);
}

/* dns_batch_add() (raw 0) or dns_batch_add_raw() (raw 1). */
static int batch_add(struct dns_batch *b, const char *name, int rrtype, int raw)
{
	struct query *q;
	struct dns *d = b->d;

	if (b->n >= DNS_BATCH_MAX) {
		ST_ADD(d, errors);
		return DNS_BATCH_MAX;
	}
	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 8;
		if (b->cap > DNS_BATCH_MAX)
			b->cap = DNS_BATCH_MAX;
		b->q = xrealloc(b->q, (size_t)b->cap * sizeof(*b->q));
	}
	q = &b->q[b->n];
	memset(q, 0, sizeof(*q));
	q->ufd[0] = q->ufd[1] = q->tfd = -1;
	q->state = Q_DONE;
	q->status = DNS_ERROR;
	if (name_encode(name, q->name, raw) < 0 || !type_valid(rrtype)) {
		q->name[0] = '\0';
		ST_ADD(d, errors);
		return b->n++;
	}
	q->type = (uint16_t)rrtype;
	ST_ADD(d, queries);
	if (cache_get(d, q)) {
		ST_ADD(d, cache_hits);
		return b->n++;
	}
	if (build_query(q) < 0) {
		ST_ADD(d, errors);
		return b->n++;
	}
	q->state = Q_PENDING;
	q->start_us = metrics_now_us();
	return b->n++;
}

static struct query *get_query(const struct dns_batch *b, int i)
{
	if (i == DNS_BATCH_MAX)
		return (struct query *)&b->overflow;
	if (i < 0 || i >= b->n)
		return NULL;
	return &b->q[i];
}

/* Set the time of q's next retransmission after a send at now. */
static void schedule(struct dns_batch *b, struct query *q, long long now)
{
	long long iv = (b->deadline - now) / 3;

	if ((unsigned)q->sends > b->lim.retransmits) {
		q->next_tx = LLONG_MAX;
		return;
	}
	if (iv < DNS_MIN_RETX_MS)
		iv = DNS_MIN_RETX_MS;
	q->next_tx = now + iv;
}

/* Send q over UDP to server s.  Returns 0, or -1 on a local error. */
static int udp_send(struct dns_batch *b, struct query *q, int s)
{
	const struct server *srv = &b->d->srv[s];
	int k = srv->sa.ss_family == AF_INET6;

	if (q->ufd[k] < 0) {
		q->ufd[k] = socket(srv->sa.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (q->ufd[k] < 0)
			return -1;
	}
	q->srv = s;
	q->sends++;
	if (sendto(q->ufd[k], q->wire, q->wirelen, 0, (const struct sockaddr *)&srv->sa, srv->len) <
	        0 &&
	    errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS)
		return -1;
	ST_ADD(b->d, sent);
	return 0;
}

/* Send q to server s or, when that fails locally, to the next ones; end q
 * as DNS_ERROR when none works. */
static void udp_send_any(struct dns_batch *b, struct query *q, int s, long long now)
{
	int tries;

	for (tries = 0; tries < b->d->nsrv; tries++) {
		if (udp_send(b, q, (s + tries) % b->d->nsrv) == 0) {
			q->state = Q_UDP;
			schedule(b, q, now);
			return;
		}
	}
	finish(b, q, DNS_ERROR);
}

/* The smaller of a and b (TTLs). */
static unsigned min_ttl(unsigned a, uint32_t b)
{
	return a < b ? a : (unsigned)b;
}

/* RFC 2308 5: the SOA in the authority section gives the negative TTL,
 * min(its TTL, its MINIMUM).  0 (not cached) without a SOA. */
static unsigned negative_ttl(const ldns_pkt *p, unsigned cap)
{
	const ldns_rr_list *auth = ldns_pkt_authority(p);
	size_t i;

	for (i = 0; i < ldns_rr_list_rr_count(auth); i++) {
		const ldns_rr *rr = ldns_rr_list_rr(auth, i);

		if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_SOA || ldns_rr_rd_count(rr) < 7)
			continue;
		return min_ttl(min_ttl(cap, ldns_rr_ttl(rr)),
		               ldns_rdf2native_int32(ldns_rr_rdf(rr, 6)));
	}
	return 0;
}

/* Does the reply in buf carry q's id, QR and question (ASCII case-blind)? */
static int reply_matches(const struct query *q, const uint8_t *buf, size_t len)
{
	size_t i;

	if (len < q->qend || len < 12)
		return 0;
	if (buf[0] != q->wire[0] || buf[1] != q->wire[1])
		return 0;
	if (!(buf[2] & 0x80)) /* QR */
		return 0;
	if (buf[4] != 0 || buf[5] != 1) /* QDCOUNT 1 */
		return 0;
	/* Our name is lower case; fold the reply's name only (label lengths
	 * are below 'A'), not the type and class after it. */
	for (i = 12; i < q->qend; i++) {
		uint8_t a = buf[i];

		if (i < q->qend - 4 && a >= 'A' && a <= 'Z')
			a = (uint8_t)(a - 'A' + 'a');
		if (a != q->wire[i])
			return 0;
	}
	return 1;
}

static void tcp_start(struct dns_batch *b, struct query *q, int s);

/* A reply for q (already matched) from server s; tcp: it came over TCP. */
static void handle_reply(struct dns_batch *b, struct query *q, const uint8_t *buf, size_t len,
                         int s, int tcp, long long now)
{
	struct dns *d = b->d;
	ldns_pkt *p = NULL;
	ldns_rr_list *ans;
	int rcode = buf[3] & 0x0f;
	size_t i;

	if ((buf[2] & 0x02) && !tcp) { /* TC */
		tcp_start(b, q, s);
		return;
	}
	if (ldns_wire2pkt(&p, buf, len) != LDNS_STATUS_OK) {
		ST_ADD(d, ignored);
		if (tcp)
			finish(b, q, DNS_ERROR);
		return;
	}
	if (rcode == LDNS_RCODE_NOERROR || rcode == LDNS_RCODE_NXDOMAIN) {
		if (rcode == LDNS_RCODE_NXDOMAIN) {
			q->ttl = negative_ttl(p, b->lim.neg_ttl_max);
			ldns_pkt_free(p);
			finish(b, q, DNS_NXDOMAIN);
			return;
		}
		ans = ldns_pkt_answer(p);
		q->rrs = ldns_rr_list_new();
		q->ttl = b->lim.ttl_max;
		for (i = 0; i < ldns_rr_list_rr_count(ans); i++) {
			ldns_rr *rr = ldns_rr_list_rr(ans, i);

			q->ttl = min_ttl(q->ttl, ldns_rr_ttl(rr));
			if (ldns_rr_get_type(rr) == q->type &&
			    ldns_rr_get_class(rr) == LDNS_RR_CLASS_IN)
				ldns_rr_list_push_rr(q->rrs, ldns_rr_clone(rr));
		}
		if (ldns_rr_list_rr_count(q->rrs) == 0) {
			q->ttl = negative_ttl(p, b->lim.neg_ttl_max);
			ldns_pkt_free(p);
			finish(b, q, DNS_NODATA);
			return;
		}
		ldns_pkt_free(p);
		finish(b, q, DNS_OK);
		return;
	}
	ldns_pkt_free(p);
	/* SERVFAIL, REFUSED, ...: another server may do better. */
	if (!tcp && s < 32) {
		int t;

		q->bad |= 1u << s;
		for (t = 0; t < d->nsrv; t++) {
			if (!(q->bad & (1u << t))) {
				ST_ADD(d, retransmits);
				udp_send_any(b, q, t, now);
				return;
			}
		}
	}
	finish(b, q, rcode == LDNS_RCODE_SERVFAIL ? DNS_SERVFAIL : DNS_ERROR);
}

/* Read every datagram waiting on fd for q. */
static void udp_read(struct dns_batch *b, struct query *q, int fd, long long now)
{
	struct sockaddr_storage from;
	socklen_t flen;
	ssize_t n;
	int s, k;

	for (k = 0; k < DNS_UDP_DRAIN && q->state == Q_UDP; k++) {
		flen = sizeof(from);
		n = recvfrom(fd, b->rbuf, DNS_MSG_MAX, 0, (struct sockaddr *)&from, &flen);
		if (n < 0)
			return; /* EAGAIN, or an ICMP error: wait for another reply */
		s = server_find(b->d, &from);
		if (s < 0 || !reply_matches(q, b->rbuf, (size_t)n)) {
			ST_ADD(b->d, ignored);
			continue;
		}
		handle_reply(b, q, b->rbuf, (size_t)n, s, 0, now);
	}
}

/* Move q to TCP with server s after a truncated reply. */
static void tcp_start(struct dns_batch *b, struct query *q, int s)
{
	const struct server *srv = &b->d->srv[s];
	int k;

	ST_ADD(b->d, tcp);
	for (k = 0; k < 2; k++) {
		if (q->ufd[k] >= 0)
			close(q->ufd[k]);
		q->ufd[k] = -1;
	}
	q->srv = s;
	q->tfd = socket(srv->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (q->tfd < 0) {
		finish(b, q, DNS_ERROR);
		return;
	}
	q->tlen = 2 + q->wirelen;
	q->tbuf = xmalloc(q->tlen);
	q->tbuf[0] = (uint8_t)(q->wirelen >> 8);
	q->tbuf[1] = (uint8_t)(q->wirelen & 0xff);
	memcpy(q->tbuf + 2, q->wire, q->wirelen);
	q->tpos = 0;
	if (connect(q->tfd, (const struct sockaddr *)&srv->sa, srv->len) == 0)
		q->state = Q_TCP_WRITE;
	else if (errno == EINPROGRESS)
		q->state = Q_TCP_CONNECT;
	else
		finish(b, q, DNS_ERROR);
}

/* Progress on q's TCP socket (revents from poll). */
static void tcp_event(struct dns_batch *b, struct query *q, short revents, long long now)
{
	ssize_t n;

	if (q->state == Q_TCP_CONNECT) {
		int e = 0;
		socklen_t el = sizeof(e);

		if (getsockopt(q->tfd, SOL_SOCKET, SO_ERROR, &e, &el) < 0 || e != 0) {
			finish(b, q, DNS_ERROR);
			return;
		}
		q->state = Q_TCP_WRITE;
	}
	if (q->state == Q_TCP_WRITE) {
		while (q->tpos < q->tlen) {
			n = send(q->tfd, q->tbuf + q->tpos, q->tlen - q->tpos, MSG_NOSIGNAL);
			if (n < 0) {
				if (errno == EAGAIN || errno == EWOULDBLOCK)
					return;
				finish(b, q, DNS_ERROR);
				return;
			}
			q->tpos += (size_t)n;
		}
		free(q->tbuf);
		q->tbuf = NULL;
		q->tlen = 2; /* now: read the length prefix into thdr */
		q->tpos = 0;
		q->state = Q_TCP_READ;
		return;
	}
	if (q->state != Q_TCP_READ || !(revents & (POLLIN | POLLHUP | POLLERR)))
		return;
	for (;;) {
		uint8_t *dst = q->tbuf ? q->tbuf + q->tpos : q->thdr + q->tpos;

		n = recv(q->tfd, dst, q->tlen - q->tpos, 0);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			finish(b, q, DNS_ERROR); /* closed or failed before the whole answer */
			return;
		}
		q->tpos += (size_t)n;
		if (q->tpos < q->tlen)
			continue;
		if (q->tbuf == NULL) {
			q->tlen = ((size_t)q->thdr[0] << 8) | q->thdr[1];
			if (q->tlen < 12) {
				finish(b, q, DNS_ERROR);
				return;
			}
			q->tbuf = xmalloc(q->tlen);
			q->tpos = 0;
			continue;
		}
		if (!reply_matches(q, q->tbuf, q->tlen)) {
			ST_ADD(b->d, ignored);
			finish(b, q, DNS_ERROR);
			return;
		}
		{
			/* handle_reply() may finish q, which frees tbuf. */
			uint8_t *msg = q->tbuf;
			size_t len = q->tlen;

			q->tbuf = NULL;
			handle_reply(b, q, msg, len, q->srv, 1, now);
			free(msg);
		}
		return;
	}
}

int dns_batch_run(struct dns_batch *b)
{
	struct pollfd *pfd = NULL;
	int *owner = NULL; /* per pollfd: query index * 2 + (1 for TCP) */
	int i, k, n, done = 0;
	long long now;

	if (b->n == 0)
		return 0;
	if (b->rbuf == NULL)
		b->rbuf = xmalloc(DNS_MSG_MAX);
	pfd = xcalloc((size_t)b->n * 2, sizeof(*pfd));
	owner = xcalloc((size_t)b->n * 2, sizeof(*owner));

	now = now_ms();
	for (i = 0; i < b->n; i++) {
		struct query *q = &b->q[i];

		if (q->state != Q_PENDING)
			continue;
		if (now >= b->deadline)
			finish(b, q, DNS_TIMEOUT);
		else
			udp_send_any(b, q, 0, now);
	}
	for (;;) {
		long long wake = b->deadline;
		int pending = 0;

		now = now_ms();
		n = 0;
		for (i = 0; i < b->n; i++) {
			struct query *q = &b->q[i];

			if (q->state == Q_DONE)
				continue;
			if (now >= b->deadline) {
				finish(b, q, DNS_TIMEOUT);
				continue;
			}
			if (q->state == Q_UDP && now >= q->next_tx) {
				ST_ADD(b->d, retransmits);
				udp_send_any(b, q, (q->srv + 1) % b->d->nsrv, now);
				if (q->state == Q_DONE)
					continue;
			}
			pending++;
			if (q->state == Q_UDP) {
				if (q->next_tx < wake)
					wake = q->next_tx;
				for (k = 0; k < 2; k++) {
					if (q->ufd[k] < 0)
						continue;
					pfd[n].fd = q->ufd[k];
					pfd[n].events = POLLIN;
					pfd[n].revents = 0;
					owner[n++] = i * 2;
				}
			} else {
				pfd[n].fd = q->tfd;
				pfd[n].events = q->state == Q_TCP_READ ? POLLIN : POLLOUT;
				pfd[n].revents = 0;
				owner[n++] = i * 2 + 1;
			}
		}
		if (pending == 0)
			break;
		{
			long long wait = wake - now;

			if (wait < 0)
				wait = 0;
			if (poll(pfd, (nfds_t)n, (int)(wait > INT_MAX ? INT_MAX : wait)) < 0 &&
			    errno != EINTR) {
				for (i = 0; i < b->n; i++)
					if (b->q[i].state != Q_DONE)
						finish(b, &b->q[i], DNS_ERROR);
				break;
			}
		}
		now = now_ms();
		/* An event applies only if the query is still in the state it
		 * was polled for: a UDP socket closed for TCP in this round
		 * may share its number with the new TCP socket. */
		for (k = 0; k < n; k++) {
			struct query *q = &b->q[owner[k] / 2];
			int tcp = owner[k] % 2;

			if (pfd[k].revents == 0 || q->state == Q_DONE)
				continue;
			if (!tcp && q->state == Q_UDP)
				udp_read(b, q, pfd[k].fd, now);
			else if (tcp && q->state != Q_UDP)
				tcp_event(b, q, pfd[k].revents, now);
		}
	}
	free(pfd);
	free(owner);
	for (i = 0; i < b->n; i++)
		if (b->q[i].status == DNS_OK || b->q[i].status == DNS_NXDOMAIN ||
		    b->q[i].status == DNS_NODATA)
			done++;
	return done;
}

void dns_batch_free(struct dns_batch *b)
{
	int i;

	if (b == NULL)
		return;
	for (i = 0; i < b->n; i++) {
		close_fds(&b->q[i]);
		free(b->q[i].wire);
		if (b->q[i].rrs)
			ldns_rr_list_deep_free(b->q[i].rrs);
	}
	free(b->q);
	free(b->rbuf);
	free(b);
}

/* ---- results ---------------------------------------------------------- */

enum dns_status dns_result_status(const struct dns_batch *b, int i)
{
	const struct query *q = get_query(b, i);

	if (q == NULL || q->state != Q_DONE)
		return DNS_ERROR;
	return q->status;
}

const ldns_rr_list *dns_result_rrs(const struct dns_batch *b, int i)
{
	const struct query *q = get_query(b, i);

	if (q == NULL || q->state != Q_DONE || q->status != DNS_OK)
		return NULL;
	return q->rrs;
}

int dns_result_count(const struct dns_batch *b, int i)
{
	const ldns_rr_list *l = dns_result_rrs(b, i);

	return l ? (int)ldns_rr_list_rr_count(l) : 0;
}

unsigned dns_result_ttl(const struct dns_batch *b, int i)
{
	const struct query *q = get_query(b, i);

	if (q == NULL || q->state != Q_DONE)
		return 0;
	return q->ttl;
}

int dns_result_cached(const struct dns_batch *b, int i)
{
	const struct query *q = get_query(b, i);

	return q != NULL && q->cached;
}

/* Append len bytes to dst (size dstsize, fill *pos); -1 when they don't fit. */
static int put(char *dst, size_t dstsize, size_t *pos, const void *src, size_t len)
{
	if (*pos + len + 1 > dstsize) {
		size_t room = dstsize > *pos + 1 ? dstsize - *pos - 1 : 0;

		if (room > 0)
			memcpy(dst + *pos, src, room);
		*pos += room;
		if (dstsize > 0)
			dst[*pos < dstsize ? *pos : dstsize - 1] = '\0';
		return -1;
	}
	memcpy(dst + *pos, src, len);
	*pos += len;
	dst[*pos] = '\0';
	return 0;
}

/* A name rdf in presentation form without the trailing dot ("." for the
 * root). */
long dns_name_text(const ldns_rdf *rdf, char *dst, size_t dstsize)
{
	const uint8_t *p;
	size_t n, i = 0, o = 0;

	if (dstsize > 0)
		dst[0] = '\0';
	if (rdf == NULL || ldns_rdf_get_type(rdf) != LDNS_RDF_TYPE_DNAME)
		return -1;
	p = ldns_rdf_data(rdf);
	n = ldns_rdf_size(rdf);
	if (p == NULL || n == 0 || n > LDNS_MAX_DOMAINLEN)
		return -1;
	if (n == 1) {
		if (dstsize < 2)
			return -1;
		memcpy(dst, ".", 2);
		return 1;
	}
	/* Each octet takes at most 4 characters ("\DDD"), each label one
	 * more for its dot: 4 * n + 1 is always enough; check as we go. */
	while (i < n && p[i] != 0) {
		size_t len = p[i++];

		for (size_t k = 0; k < len && i < n; k++, i++) {
			unsigned c = p[i];

			if (o + 5 > dstsize)
				goto small;
			if (c == '.' || c == ';' || c == '(' || c == ')' || c == '\\') {
				dst[o++] = '\\';
				dst[o++] = (char)c;
			} else if (c < 0x21 || c > 0x7e) {
				dst[o++] = '\\';
				dst[o++] = (char)('0' + c / 100);
				dst[o++] = (char)('0' + c / 10 % 10);
				dst[o++] = (char)('0' + c % 10);
			} else {
				dst[o++] = (char)c;
			}
		}
		/* the dot after a label, not after the last one (no trailing
		 * dot in our form) */
		if (i < n && p[i] != 0) {
			if (o + 2 > dstsize)
				goto small;
			dst[o++] = '.';
		}
	}
	dst[o] = '\0';
	return (long)o;
small:
	if (dstsize > 0)
		dst[o < dstsize ? o : dstsize - 1] = '\0';
	return -1;
}

/* A name straight from its wire form (dns_name_text): ldns_rdf2str()
 * formats each octet with ldns_buffer_printf() and allocates, several
 * times the cost, on every PTR, MX and SPF lookup of every message. */
static int put_name(char *dst, size_t dstsize, size_t *pos, const ldns_rdf *rdf)
{
	char s[4 * LDNS_MAX_DOMAINLEN + 2];
	long l = dns_name_text(rdf, s, sizeof(s));

	if (l < 0)
		return -1;
	return put(dst, dstsize, pos, s, (size_t)l);
}

static const ldns_rr *get_rr(const struct dns_batch *b, int i, int j)
{
	const ldns_rr_list *l = dns_result_rrs(b, i);

	if (l == NULL || j < 0 || (size_t)j >= ldns_rr_list_rr_count(l))
		return NULL;
	return ldns_rr_list_rr(l, (size_t)j);
}

long dns_result_text(const struct dns_batch *b, int i, int j, char *dst, size_t dstsize)
{
	const ldns_rr *rr = get_rr(b, i, j);
	char a[INET6_ADDRSTRLEN];
	size_t pos = 0, k;
	const ldns_rdf *f;

	if (dstsize > 0)
		dst[0] = '\0';
	if (rr == NULL || dstsize == 0)
		return -1;
	switch (ldns_rr_get_type(rr)) {
	case LDNS_RR_TYPE_A:
	case LDNS_RR_TYPE_AAAA:
		f = ldns_rr_rdf(rr, 0);
		if (f == NULL)
			return -1;
		if (ldns_rdf_size(f) == 4)
			inet_ntop(AF_INET, ldns_rdf_data(f), a, sizeof(a));
		else if (ldns_rdf_size(f) == 16)
			inet_ntop(AF_INET6, ldns_rdf_data(f), a, sizeof(a));
		else
			return -1;
		if (put(dst, dstsize, &pos, a, strlen(a)) < 0)
			return -1;
		break;
	case LDNS_RR_TYPE_MX: {
		unsigned pref;

		if (ldns_rr_rd_count(rr) < 2)
			return -1;
		pref = ldns_rdf2native_int16(ldns_rr_rdf(rr, 0));
		snprintf(a, sizeof(a), "%u ", pref);
		if (put(dst, dstsize, &pos, a, strlen(a)) < 0 ||
		    put_name(dst, dstsize, &pos, ldns_rr_rdf(rr, 1)) < 0)
			return -1;
		break;
	}
	case LDNS_RR_TYPE_NS:
	case LDNS_RR_TYPE_PTR:
	case LDNS_RR_TYPE_CNAME:
		if (ldns_rr_rd_count(rr) < 1 ||
		    put_name(dst, dstsize, &pos, ldns_rr_rdf(rr, 0)) < 0)
			return -1;
		break;
	case LDNS_RR_TYPE_TXT:
		for (k = 0; k < ldns_rr_rd_count(rr); k++) {
			const uint8_t *data;
			size_t sz, sl;

			f = ldns_rr_rdf(rr, k);
			data = ldns_rdf_data(f);
			sz = ldns_rdf_size(f);
			if (sz == 0)
				continue;
			sl = data[0];
			if (sl > sz - 1)
				sl = sz - 1;
			if (put(dst, dstsize, &pos, data + 1, sl) < 0)
				return -1;
		}
		break;
	default:
		for (k = 0; k < ldns_rr_rd_count(rr); k++) {
			char *s = ldns_rdf2str(ldns_rr_rdf(rr, k));
			int r;

			if (s == NULL)
				return -1;
			r = (k > 0 ? put(dst, dstsize, &pos, " ", 1) : 0) < 0 ||
			    put(dst, dstsize, &pos, s, strlen(s)) < 0;
			free(s);
			if (r)
				return -1;
		}
		break;
	}
	return (long)pos;
}

int dns_result_mx(const struct dns_batch *b, int i, int j, unsigned *pref, char *host,
                  size_t hostsize)
{
	const ldns_rr *rr = get_rr(b, i, j);
	size_t pos = 0;

	if (hostsize > 0)
		host[0] = '\0';
	if (rr == NULL || ldns_rr_get_type(rr) != LDNS_RR_TYPE_MX || ldns_rr_rd_count(rr) < 2 ||
	    hostsize == 0)
		return -1;
	*pref = ldns_rdf2native_int16(ldns_rr_rdf(rr, 0));
	return put_name(host, hostsize, &pos, ldns_rr_rdf(rr, 1));
}

/* --- forward-confirmed reverse DNS --------------------------------------- */

int dns_result_has_addr(const struct dns_batch *b, int q, const struct ipaddr *ip)
{
	char text[64];
	struct ipaddr got;

	for (int j = 0; j < dns_result_count(b, q); j++)
		if (dns_result_text(b, q, j, text, sizeof(text)) > 0 && ip_parse(text, &got) == 0 &&
		    ip_in_net(&got, ip, ip->family == AF_INET ? 32 : 128))
			return 1;
	return 0;
}

static void strip_dot(char *name)
{
	size_t n = strlen(name);

	if (n > 1 && name[n - 1] == '.')
		name[n - 1] = '\0';
}

enum dns_fcrdns dns_fcrdns(struct dns *d, int timeout_ms, const struct ipaddr *addr, char *name,
                           size_t namesize, enum dns_status *st)
{
	char rev[DNS_NAME_MAX + 2], n[DNS_NAME_MAX + 2];
	struct dns_batch *b, *b2;
	struct ipaddr ip;
	int q, fq[DNS_FCRDNS_PTR_MAX], pj[DNS_FCRDNS_PTR_MAX], nf = 0, failed = 0;
	enum dns_fcrdns res = DNS_FCRDNS_MISMATCH;

	if (namesize)
		name[0] = '\0';
	*st = DNS_OK;
	ip_unmap(addr, &ip);
	if (dns_reverse_name(&ip, NULL, rev, sizeof(rev)) < 0) {
		*st = DNS_ERROR;
		return DNS_FCRDNS_TEMP;
	}
	b = dns_batch_new(d, timeout_ms);
	q = dns_batch_add(b, rev, LDNS_RR_TYPE_PTR);
	dns_batch_run(b);
	*st = dns_result_status(b, q);
	if (*st == DNS_NXDOMAIN || *st == DNS_NODATA) {
		dns_batch_free(b);
		return DNS_FCRDNS_NO_PTR;
	}
	if (*st != DNS_OK) {
		dns_batch_free(b);
		return DNS_FCRDNS_TEMP;
	}
	b2 = dns_batch_new(d, dns_batch_remaining(b));
	for (int j = 0; j < dns_result_count(b, q) && nf < DNS_FCRDNS_PTR_MAX; j++)
		if (dns_result_text(b, q, j, n, sizeof(n)) > 0 && dns_name_valid(n)) {
			pj[nf] = j;
			fq[nf++] = dns_batch_add(
			    b2, n, ip.family == AF_INET ? LDNS_RR_TYPE_A : LDNS_RR_TYPE_AAAA);
		}
	dns_batch_run(b2);
	for (int i = 0; i < nf; i++) {
		if (dns_result_has_addr(b2, fq[i], &ip)) {
			dns_result_text(b, q, pj[i], name, namesize);
			res = DNS_FCRDNS_OK;
			break;
		}
		if (dns_status_temporary(dns_result_status(b2, fq[i]))) {
			failed = 1;
			*st = dns_result_status(b2, fq[i]);
		}
	}
	if (res != DNS_FCRDNS_OK) {
		dns_result_text(b, q, 0, name, namesize);
		if (failed)
			res = DNS_FCRDNS_TEMP;
		else
			*st = DNS_OK;
	}
	strip_dot(name);
	dns_batch_free(b2);
	dns_batch_free(b);
	return res;
}
