/* lib/spf.h - SPF (RFC 7208) evaluation: libspf2 on lib/dns
 *
 * spf_eval() runs one check_host() for one identity with libspf2, but every
 * DNS question goes through lib/dns (its resolver, cache and statistics)
 * inside ONE batch, so the whole evaluation shares one deadline.  Each call
 * makes its own libspf2 server and request (libspf2 is not thread-safe in
 * all parts), so spf_eval() is thread-safe.
 *
 * Before libspf2 compiles a record, the record is checked against the RFC
 * 7208 grammar here (section 4.6.1, 7.1, 12): a record that does not parse
 * is a permerror, unknown modifiers are dropped, redirect= is moved to the
 * end (and dropped when the record has an "all"), "/0" prefix lengths (which libspf2 cannot compile)
 * are rewritten: ip4/ip6 into two halves, a/mx into a marked name whose
 * address lookups the layer answers with the client's address when the
 * real name has any.  The layer also counts void lookups (RFC 7208 4.6.4:
 * more than 2 is a permerror), makes an MX set of more than 10 names a
 * permerror, and treats names that cannot be sent (a label over 63 octets,
 * a name over 253) as nonexistent; any other octet is asked as it is (RFC
 * 7208 7.1, dns_batch_add_raw).  On fail, the explanation of the record's
 * exp= (RFC 7208 6.2) is looked up (one TXT record, an explain-string,
 * macro-expanded by libspf2) and kept in the outcome; lookup or syntax
 * errors mean no explanation.
 *
 * See also: RFC 7208, lib/dns.h, lib/checks/spf.c.
 */
#ifndef PORTCULLIS_SPF_H
#define PORTCULLIS_SPF_H

#include <stddef.h>

#include "addr.h"

struct dns;

enum spf_result {
	SPF_NONE,
	SPF_NEUTRAL,
	SPF_PASS,
	SPF_FAIL,
	SPF_SOFTFAIL,
	SPF_TEMPERROR,
	SPF_PERMERROR,
};

#define SPF_EXP_MAX 200

struct spf_outcome {
	enum spf_result result;
	char domain[256]; /* the checked domain (validated), "" if none */
	char reason[200]; /* short text for logs: why this result */
	/* fail only: the domain's explanation (exp=, RFC 7208 6.2), expanded,
	 * printable ASCII (others as '?'), cut at SPF_EXP_MAX; "" if none */
	char explanation[SPF_EXP_MAX + 1];
	int dns_queries; /* questions asked for this evaluation */
};

/* Evaluate the identity sender ("local@domain"; a bare domain means
 * postmaster@domain) for client ip, with helo as %{h}.  The whole
 * evaluation uses at most timeout_ms of DNS time on resolver d.  A domain
 * that is not a valid multi-label DNS name gives SPF_NONE (RFC 7208 4.3).
 * IPv4-mapped IPv6 clients are evaluated as IPv4.  Always fills *out;
 * returns its result. */
enum spf_result spf_eval(struct dns *d, int timeout_ms, const struct ipaddr *ip, const char *helo,
                         const char *sender, struct spf_outcome *out);

/* spf_eval() for one transaction: txn_ref names it (its ref, unique per
 * transaction).  The same question (client, HELO, identity) asked again in
 * the same transaction is answered from the first evaluation, so that the
 * spf check's result at MAIL serves greylisting's pool key at each RCPT
 * instead of being computed again.  A temperror is not kept (a later
 * question may have more time).  A NULL or empty txn_ref: plain
 * spf_eval().  out->dns_queries is 0 for a kept answer.  Thread-safe. */
enum spf_result spf_eval_txn(const char *txn_ref, struct dns *d, int timeout_ms,
                             const struct ipaddr *ip, const char *helo, const char *sender,
                             struct spf_outcome *out);

/* "none", "neutral", "pass", "fail", "softfail", "temperror", "permerror". */
const char *spf_result_name(enum spf_result r);

/* Check a record's text (len bytes, may contain NUL) against the RFC 7208
 * grammar and write the cleaned record for libspf2, for a client of address
 * family (AF_INET or AF_INET6), into dst.  Returns 0, or -1 with a reason
 * in dst. */
int spf_record_clean(const char *txt, size_t len, int family, char *dst, size_t dstsize);

#endif
