/* lib/dns.h - stub resolver: parallel queries with one deadline, and a cache
 *
 * A struct dns is one resolver: the name servers (from resolv.conf or one
 * configured address), a cache and statistics.  It is made once and shared
 * by every thread; all functions that take a struct dns are thread-safe.
 *
 * Queries are asked in batches.  A batch has ONE deadline, fixed when it is
 * made: dns_batch_run() sends every pending query of the batch at once over
 * UDP (one non-blocking socket per query, random id and source port),
 * retransmits unanswered ones, retries over TCP when an answer is truncated,
 * and returns when all are answered or the deadline has passed.  So six
 * questions to six lists take as long as the slowest answer, not the sum.
 * A batch may be run again after more queries were added (e.g. SPF asks in
 * steps): the deadline stays the one set by dns_batch_new().  A batch
 * belongs to one thread at a time.
 *
 * Answers are matched by source address, id and question (name, type,
 * class); anything else is counted in stats.ignored and dropped.  Each query
 * ends with one status:
 *   DNS_OK        the answer has at least one RR of the asked type
 *   DNS_NXDOMAIN  the name does not exist                  } answers: cached
 *   DNS_NODATA    the name exists, no RR of that type      } (negative TTL)
 *   DNS_SERVFAIL  the server failed (SERVFAIL)             } temporary
 *   DNS_TIMEOUT   no answer before the deadline            } errors: never
 *   DNS_ERROR     anything else: an invalid name or type   } cached
 *                 (refused without sending), REFUSED, FORMERR, a TCP
 *                 failure, a query beyond DNS_BATCH_MAX
 * Positive answers are cached for min(TTL, ttl_max), negative ones for
 * min(SOA TTL, SOA minimum, neg_ttl_max) (RFC 2308; not cached without a
 * SOA); the cache holds at most cache_max entries and evicts the oldest.
 * A cache hit is answered by dns_batch_add() without touching the network.
 *
 * Names are hostile input: dns_batch_add() accepts only names made of
 * letters, digits, '-' and '_', labels of 1..63 bytes, at most 253 bytes
 * (a trailing dot is allowed), and sends nothing for any other;
 * dns_batch_add_raw() sends any octets (escaped for ldns, exact on the
 * wire) within the same length limits.
 * Answer data is hostile too: names come back in presentation form (ldns
 * escapes odd bytes as \DDD) and TXT data as raw bytes with a length.
 *
 * See also: RFC 1035, RFC 2308 (negative caching), RFC 5452 (forgery
 * resilience), RFC 7766 (TCP), RFC 6891 (EDNS0).
 */
#ifndef PORTCULLIS_DNS_H
#define PORTCULLIS_DNS_H

#include <stddef.h>
#include <stdint.h>

#include <ldns/ldns.h>

#include "addr.h"

#define DNS_BATCH_MAX 128 /* queries in one batch; more give DNS_ERROR */
#define DNS_NAME_MAX  253 /* a name's text form, without the trailing dot */
/* ... with every octet escaped as \DDD (names of dns_batch_add_raw) */
#define DNS_NAME_TEXT_MAX (4 * DNS_NAME_MAX)

enum dns_status {
	DNS_OK,
	DNS_NXDOMAIN,
	DNS_NODATA,
	DNS_SERVFAIL,
	DNS_TIMEOUT,
	DNS_ERROR,
};

/* Tunables; dns_new() sets the defaults shown. */
struct dns_limits {
	unsigned cache_max;   /* entries, default 10000; 0 = no cache */
	unsigned ttl_max;     /* seconds a positive answer is kept at most, default 3600 */
	unsigned neg_ttl_max; /* seconds for NXDOMAIN/NODATA at most, default 900 */
	unsigned retransmits; /* UDP retransmits per query (rotating servers), default 2 */
};

/* Counters since dns_new(); monotonic except cache_entries. */
struct dns_stats {
	unsigned long long queries;    /* valid queries added to batches */
	unsigned long long cache_hits; /* of those, answered from the cache */
	unsigned long long sent;       /* UDP datagrams sent, retransmits included */
	unsigned long long retransmits;
	unsigned long long tcp;      /* TCP fallbacks after a truncated answer */
	unsigned long long answers;  /* queries ended OK, NXDOMAIN or NODATA (network) */
	unsigned long long timeouts; /* queries ended DNS_TIMEOUT */
	unsigned long long servfail; /* queries ended DNS_SERVFAIL */
	unsigned long long errors;   /* queries ended DNS_ERROR, invalid names included */
	unsigned long long ignored;  /* replies dropped: bad source, id, question or format */
	unsigned long long cache_entries;
};

struct dns;
struct dns_batch;

/* Make a resolver.  resolver is NULL (or "") for /etc/resolv.conf, a path
 * starting with '/' for another resolv.conf-format file, or one server:
 * "ADDR", "ADDR:PORT", "[IPv6]", "[IPv6]:PORT" or a bare IPv6 address
 * (port 53 by default).  Only the nameserver lines of a resolv.conf are
 * used (at most 3); without any, 127.0.0.1 (as the C library does).
 * Returns NULL with a reason in err on failure.  Sends nothing. */
struct dns *dns_new(const char *resolver, char *err, size_t errsize);

/* Free the resolver.  No batch of it may be in use any more. */
void dns_free(struct dns *d);

/* The servers as text, e.g. "127.0.0.1:53 [::1]:5353", for logs. */
void dns_servers(const struct dns *d, char *dst, size_t dstsize);

/* Read or change the tunables (any time; running batches keep theirs).
 * Lowering cache_max evicts the oldest entries at once. */
void dns_get_limits(struct dns *d, struct dns_limits *l);
void dns_set_limits(struct dns *d, const struct dns_limits *l);

/* Drop every cache entry. */
void dns_cache_flush(struct dns *d);

/* A consistent-enough copy of the counters (each is read atomically). */
void dns_get_stats(struct dns *d, struct dns_stats *st);

/* A new batch whose deadline is timeout_ms from now (at least 1 ms). */
struct dns_batch *dns_batch_new(struct dns *d, int timeout_ms);

/* Add a query for name (text, see above) and rrtype (LDNS_RR_TYPE_A, ...;
 * not 0, OPT, AXFR, IXFR, MAILA/B or ANY) and return its index in the
 * batch (0, 1, ...), which is always valid: an invalid query ends at once
 * as DNS_ERROR, a cached one at once with the cached result, and the others
 * are pending until dns_batch_run(). */
int dns_batch_add(struct dns_batch *b, const char *name, int rrtype);

/* The same for a name whose labels may hold any octet (RFC 2181 11; SPF
 * domain-specs after macro expansion, RFC 7208 7.1): name is raw octets
 * with '.' between labels (no escapes), at most DNS_NAME_MAX octets, labels
 * of 1..63 octets, an optional trailing dot.  Such a name is asked as it is,
 * each octet on the wire as given (ASCII letters folded to lower case);
 * only a name that cannot be encoded ends at once as DNS_ERROR.  For
 * callers that take names from DNS data or policies and validate nothing
 * themselves; dns_batch_add() stays strict for the others. */
int dns_batch_add_raw(struct dns_batch *b, const char *name, int rrtype);

/* Resolve every pending query, waiting at most until the deadline.
 * Queries still pending at the deadline end as DNS_TIMEOUT.  Returns the
 * number of queries of the batch that ended DNS_OK, NXDOMAIN or NODATA. */
int dns_batch_run(struct dns_batch *b);

/* Milliseconds left before the batch's deadline (0 when passed). */
int dns_batch_remaining(const struct dns_batch *b);

/* Free the batch and every result in it. */
void dns_batch_free(struct dns_batch *b);

/* Results of query i (an index from dns_batch_add; after dns_batch_run). */
enum dns_status dns_result_status(const struct dns_batch *b, int i);
/* The answer RRs of the asked type (any owner: CNAME chains are followed by
 * the server), owned by the batch; NULL unless DNS_OK. */
const ldns_rr_list *dns_result_rrs(const struct dns_batch *b, int i);
/* Number of those RRs (0 unless DNS_OK). */
int dns_result_count(const struct dns_batch *b, int i);
/* Seconds the result stays valid (remaining cache time for a cache hit;
 * 0 for temporary errors). */
unsigned dns_result_ttl(const struct dns_batch *b, int i);
/* 1 when the result came from the cache. */
int dns_result_cached(const struct dns_batch *b, int i);

/* The rdata of RR j of query i as text into dst (always NUL-terminated when
 * dstsize > 0):
 *   A, AAAA         the address ("192.0.2.1", "2001:db8::1")
 *   MX              "PREF HOST" ("10 mx.example.org"; "0 ." for a null MX)
 *   NS, PTR, CNAME  the name without the trailing dot (presentation form)
 *   TXT             the character-strings concatenated as raw bytes
 *                   (RFC 7208 3.3): may contain NUL or control bytes
 *   others          the rdata fields in presentation form, space-separated
 * Returns the length written (binary-safe for TXT), or -1 when i or j is out
 * of range or dst is too small (dst then holds a truncated copy). */
long dns_result_text(const struct dns_batch *b, int i, int j, char *dst, size_t dstsize);

/* MX RR j of query i: preference and exchange host (as dns_result_text
 * writes names).  Returns 0, or -1 (not an MX, out of range, too long). */
int dns_result_mx(const struct dns_batch *b, int i, int j, unsigned *pref, char *host,
                  size_t hostsize);

/* A domain name rdf (LDNS_RDF_TYPE_DNAME, uncompressed wire form) in the
 * presentation form of ldns_rdf2str() without the trailing dot ("." for
 * the root): "\c" for the octets . ; ( ) \ and "\DDD" for octets outside
 * printable ASCII.  Returns its length, or -1 (not a name, longer than 255
 * octets, dst too small: then a truncated, terminated copy). */
long dns_name_text(const ldns_rdf *rdf, char *dst, size_t dstsize);

/* Static names: "ok", "nxdomain", "nodata", "servfail", "timeout", "error". */
const char *dns_status_name(enum dns_status st);

/* 1 for the temporary errors (SERVFAIL, TIMEOUT, ERROR), else 0. */
int dns_status_temporary(enum dns_status st);

/* The reverse name of ip under suffix: "4.3.2.1.SUFFIX" for IPv4 1.2.3.4,
 * 32 nibbles for IPv6 (RFC 3596; DNSBLs use the same forms, RFC 5782).
 * suffix NULL means "in-addr.arpa" / "ip6.arpa".  Returns 0, or -1 when the
 * result would not fit dst or exceed DNS_NAME_MAX or ip has no family. */
int dns_reverse_name(const struct ipaddr *ip, const char *suffix, char *dst, size_t dstsize);

/* 1 when name would be accepted by dns_batch_add() (see above), else 0. */
int dns_name_valid(const char *name);

/* 1 when one of the A/AAAA answers of query i is the address ip. */
int dns_result_has_addr(const struct dns_batch *b, int i, const struct ipaddr *ip);

/* Forward-confirmed reverse DNS of ip (an IPv4-mapped IPv6 address counts
 * as its IPv4 address): one batch for the PTR records, then one (within
 * what is left of timeout_ms) for the A or AAAA records of at most
 * DNS_FCRDNS_PTR_MAX of the names.
 *   DNS_FCRDNS_OK        name = the first PTR name that resolves back to ip
 *   DNS_FCRDNS_NO_PTR    no PTR record (NXDOMAIN or NODATA)
 *   DNS_FCRDNS_MISMATCH  name = the first PTR name; none resolves back
 *   DNS_FCRDNS_TEMP      a lookup failed (SERVFAIL, timeout): *st says how;
 *                        name = "" when the PTR lookup itself failed, else
 *                        the first PTR name (an address lookup failed)
 * Names are written without the trailing dot. */
#define DNS_FCRDNS_PTR_MAX 10 /* PTR names followed, as RFC 7208 5.5 */
enum dns_fcrdns { DNS_FCRDNS_OK, DNS_FCRDNS_NO_PTR, DNS_FCRDNS_MISMATCH, DNS_FCRDNS_TEMP };
enum dns_fcrdns dns_fcrdns(struct dns *d, int timeout_ms, const struct ipaddr *ip, char *name,
                           size_t namesize, enum dns_status *st);

#endif
