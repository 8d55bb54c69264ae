/* lib/spf.c - SPF evaluation with libspf2 on lib/dns; see spf.h
 *
 * Threading: every spf_eval() call makes its own SPF_dns_server_t (our
 * layer, whose hook points at the call's struct eval on the stack), its own
 * SPF_server_t, request and response, and frees them before it returns.
 * The only process-wide libspf2 state we touch is its message handlers,
 * set once (pthread_once) to stay quiet.
 *
 * Memory: libspf2 frees the SPF_dns_rr_t our lookup returns (the caller of
 * SPF_dns_lookup owns it); records we compile are freed by libspf2 (the
 * caller of SPF_server_get_record owns *spf_recordp).
 */
#include "spf.h"
#include "dns.h"
#include "util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <spf2/spf.h>
#include <spf2/spf_dns.h>
#include <spf2/spf_log.h>

#define SPF_VOID_MAX 2  /* RFC 7208 4.6.4 */
#define SPF_MX_MAX   10 /* names in one MX set, RFC 7208 4.6.4 */
#define RECORD_MAX   4096
#define SPF_MECH_MAX 10 /* terms that cause DNS lookups, RFC 7208 4.6.4 */
#define SPF_PTR_MAX  10 /* PTR names looked at */
#define RECENT_MAX   16
/* Marks a name looked up for an "a" or "mx" term with a zero prefix
 * length (see spf_record_clean and layer_lookup). */
#define ANY0     "_pc-any0."
#define ANY0_LEN (sizeof(ANY0) - 1)

struct eval {
	struct dns_batch *b;
	int voids;
	int mx_over;
	int temp;
	int queries;
	int mechs;   /* DNS-querying terms evaluated (include/redirect too) */
	int records; /* records fetched */
	int nrecent; /* names of the last MX or PTR answer: their address */
	char recent[RECENT_MAX][DNS_NAME_MAX + 2]; /* lookups are not terms */
	const struct ipaddr *ip;
	SPF_request_t *req; /* for the expansion of an explanation */
	char problem[160];  /* why a record is invalid, for out->reason */
};

const char *spf_result_name(enum spf_result r)
{
	static const char *const names[] = { "none",     "neutral",   "pass",     "fail",
		                             "softfail", "temperror", "permerror" };

	return (unsigned)r < ARRAY_SIZE(names) ? names[r] : "permerror";
}

/* --- libspf2 messages ------------------------------------------------------ */

static void quiet(const char *file, int line, const char *msg)
{
	(void)file;
	(void)line;
	(void)msg;
}

static pthread_once_t spf_once = PTHREAD_ONCE_INIT;

static void spf_setup(void)
{
	SPF_warning_handler = quiet;
	SPF_info_handler = quiet;
	SPF_debug_handler = quiet;
}

/* --- the strict record check ----------------------------------------------- */

static int is_alnum(int c)
{
	return isascii(c) && isalnum(c);
}

/* macro-string (RFC 7208 7.1) over s[0..len); exp_only: an
 * explain-string (6.2), which also allows c, r, t and spaces. */
static int macro_string_ok(const char *s, size_t len, int exp_only)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c < 0x21 && !(exp_only && c == ' ')) || c > 0x7e)
			return 0;
		if (c != '%')
			continue;
		if (++i >= len)
			return 0;
		c = (unsigned char)s[i];
		if (c == '%' || c == '_' || c == '-')
			continue;
		if (c != '{' || ++i >= len)
			return 0;
		c = (unsigned char)tolower((unsigned char)s[i]);
		if (!strchr("slodiphv", c) && !(exp_only && strchr("crt", c)))
			return 0;
		i++;
		while (i < len && isdigit((unsigned char)s[i]))
			i++;
		if (i < len && (s[i] == 'r' || s[i] == 'R'))
			i++;
		while (i < len && strchr(".-+,/_=", s[i]))
			i++;
		if (i >= len || s[i] != '}')
			return 0;
	}
	return 1;
}

/* domain-spec = macro-string domain-end (RFC 7208 7.1). */
static int domain_spec_ok(const char *s, size_t len)
{
	size_t end = len, start;
	int alpha = 0;

	if (len == 0 || !macro_string_ok(s, len, 0))
		return 0;
	if (s[len - 1] == '}')
		return 1; /* ends with a macro-expand */
	if (s[end - 1] == '.')
		end--;
	start = end;
	while (start > 0 && s[start - 1] != '.')
		start--;
	if (start == 0 || start == end)
		return 0; /* no "." toplabel */
	if (s[start] == '-' || s[end - 1] == '-')
		return 0;
	for (size_t i = start; i < end; i++) {
		if (!is_alnum(s[i]) && s[i] != '-')
			return 0;
		alpha |= isalpha((unsigned char)s[i]) || s[i] == '-';
	}
	return alpha;
}

/* "/N" with no leading zero, N <= max; *p advanced.  Returns N or -1. */
static int cidr(const char **p, const char *end, int max)
{
	const char *s = *p + 1;
	int n = 0, digits = 0;

	while (s < end && isdigit((unsigned char)*s) && digits < 4) {
		n = n * 10 + (*s - '0');
		s++;
		digits++;
	}
	if (digits == 0 || (digits > 1 && (*p)[1] == '0') || n > max)
		return -1;
	*p = s;
	return n;
}

/* Split a dual-cidr-length off the end of [s, *end): *end moves back. */
static int dual_cidr(const char *s, const char **end, int *c4, int *c6)
{
	const char *e = *end, *p;

	*c4 = *c6 = -1;
	/* find the last "/" that starts a valid tail */
	for (p = s; p < e; p++) {
		const char *q = p;
		int a = -1, b = -1;

		if (*p != '/')
			continue;
		if (q + 1 < e && q[1] == '/') {
			q++;
			if ((b = cidr(&q, e, 128)) < 0)
				continue;
		} else {
			if ((a = cidr(&q, e, 32)) < 0)
				continue;
			if (q < e && q + 1 < e && q[0] == '/' && q[1] == '/') {
				q++;
				if ((b = cidr(&q, e, 128)) < 0)
					continue;
			}
		}
		if (q != e)
			continue;
		*c4 = a;
		*c6 = b;
		*end = p;
		return 0;
	}
	/* a "/" that is not a valid cidr at the end is invalid syntax when
	 * it looks like one ("/33", "//129", "/24/64") */
	for (p = s; p < e; p++)
		if (*p == '/' && p + 1 < e && (isdigit((unsigned char)p[1]) || p[1] == '/'))
			return -1;
	return 0;
}

static int ip4_ok(const char *s, size_t len)
{
	char buf[32];
	struct in_addr a;
	int dots = 0;

	if (len == 0 || len >= sizeof(buf))
		return 0;
	memcpy(buf, s, len);
	buf[len] = '\0';
	for (size_t i = 0; i < len; i++)
		dots += buf[i] == '.';
	return dots == 3 && inet_pton(AF_INET, buf, &a) == 1;
}

static int ip6_ok(const char *s, size_t len)
{
	char buf[64];
	struct in6_addr a;

	if (len == 0 || len >= sizeof(buf))
		return 0;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return inet_pton(AF_INET6, buf, &a) == 1;
}

static void out_term(char *dst, size_t dstsize, const char *s, size_t len)
{
	bappend(dst, dstsize, " %.*s", (int)len, s);
}

int spf_record_clean(const char *txt, size_t len, int family, char *dst, size_t dstsize)
{
	char redirect[RECORD_MAX] = "";
	int have_exp = 0, have_all = 0;
	const char *p, *end = txt + len;

	if (len < 6 || strncasecmp(txt, "v=spf1", 6) != 0 || (len > 6 && txt[6] != ' ')) {
		snprintf(dst, dstsize, "not an SPF record");
		return -1;
	}
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)txt[i] < 0x20 || (unsigned char)txt[i] > 0x7e) {
			snprintf(dst, dstsize, "invalid character 0x%02x in the record",
			         (unsigned char)txt[i]);
			return -1;
		}
	snprintf(dst, dstsize, "v=spf1");
	p = txt + 6;
	while (p < end) {
		const char *t, *te, *n, *v;
		size_t nlen;
		char qual = 0;

		while (p < end && *p == ' ')
			p++;
		if (p >= end)
			break;
		t = p;
		while (p < end && *p != ' ')
			p++;
		te = p;
		/* modifier: name "=" macro-string */
		n = t;
		if (isalpha((unsigned char)*n)) {
			const char *q = n;

			while (q < te && (is_alnum(*q) || *q == '-' || *q == '_' || *q == '.'))
				q++;
			if (q < te && *q == '=') {
				nlen = (size_t)(q - n);
				v = q + 1;
				if (nlen == 8 && strncasecmp(n, "redirect", 8) == 0) {
					if (redirect[0] || !domain_spec_ok(v, (size_t)(te - v)))
						goto bad;
					snprintf(redirect, sizeof(redirect), "redirect=%.*s",
					         (int)(te - v), v);
				} else if (nlen == 3 && strncasecmp(n, "exp", 3) == 0) {
					if (have_exp || !domain_spec_ok(v, (size_t)(te - v)))
						goto bad;
					have_exp = 1;
					out_term(dst, dstsize, n, (size_t)(te - n));
				} else if (!macro_string_ok(v, (size_t)(te - v), 0)) {
					goto bad;
				}
				continue;
			}
		}
		if (strchr("+-?~", *t))
			qual = *t++;
		n = t;
		while (t < te && *t != ':' && *t != '/')
			t++;
		nlen = (size_t)(t - n);
#define IS(word) (nlen == sizeof(word) - 1 && strncasecmp(n, word, nlen) == 0)
		if (IS("all")) {
			if (t != te)
				goto bad;
			have_all = 1;
		} else if (IS("include") || IS("exists")) {
			if (t >= te || *t != ':' || !domain_spec_ok(t + 1, (size_t)(te - t - 1)))
				goto bad;
		} else if (IS("a") || IS("mx")) {
			const char *e = te;
			int c4, c6, c;

			if (dual_cidr(t, &e, &c4, &c6) < 0)
				goto bad;
			if (t < e && (*t != ':' || !domain_spec_ok(t + 1, (size_t)(e - t - 1))))
				goto bad;
			/* Only the client's family's length matters.  libspf2
			 * cannot compile "/0" (any address of the family), so
			 * the name gets the ANY0 prefix instead: the DNS layer
			 * then answers an address lookup under it with the
			 * client's own address when the real name has any
			 * address (see layer_lookup). */
			c = family == AF_INET6 ? c6 : c4;
			if (qual)
				bappend(dst, dstsize, " %c", qual);
			else
				bappend(dst, dstsize, " ");
			if (c == 0)
				bappend(dst, dstsize, "%.*s:%s%.*s", (int)nlen, n, ANY0,
				        t < e ? (int)(e - t - 1) : 4, t < e ? t + 1 : "%{d}");
			else
				bappend(dst, dstsize, "%.*s", (int)(e - n), n);
			if (c > 0)
				bappend(dst, dstsize, "%s%d", family == AF_INET6 ? "//" : "/", c);
			continue;
		} else if (IS("ptr")) {
			if (t < te && (*t != ':' || !domain_spec_ok(t + 1, (size_t)(te - t - 1))))
				goto bad;
		} else if (IS("ip4") || IS("ip6")) {
			const char *e = te, *sl;
			int v6 = n[2] == '6';

			if (t >= te || *t != ':')
				goto bad;
			t++;
			sl = memchr(t, '/', (size_t)(te - t));
			if (sl) {
				const char *q = sl;

				if (cidr(&q, te, v6 ? 128 : 32) < 0 || q != te)
					goto bad;
				e = sl;
			}
			if (v6 ? !ip6_ok(t, (size_t)(e - t)) : !ip4_ok(t, (size_t)(e - t)))
				goto bad;
			/* "/0" (every address of the family): two halves */
			if (sl && te - sl == 2 && sl[1] == '0') {
				const char *q = qual ? (char[]){ qual, 0 } : "";

				bappend(dst, dstsize,
				        v6 ? " %sip6:::/1 %sip6:8000::/1"
				           : " %sip4:0.0.0.0/1 %sip4:128.0.0.0/1",
				        q, q);
				continue;
			}
		} else {
			goto bad;
		}
#undef IS
		(void)qual;
		out_term(dst, dstsize, n - (qual != 0), (size_t)(te - n) + (qual != 0));
		continue;
	bad:
		snprintf(dst, dstsize, "invalid term '%.*s'", (int)(te - n < 60 ? te - n : 60), n);
		return -1;
	}
	/* RFC 7208 6.1: redirect is ignored when the record has "all", and
	 * applies only after every mechanism failed to match. */
	if (redirect[0] && !have_all)
		bappend(dst, dstsize, " %s", redirect);
	if (strlen(dst) + 1 >= dstsize) {
		snprintf(dst, dstsize, "record too long");
		return -1;
	}
	return 0;
}

/* --- the DNS layer ---------------------------------------------------------- */

/* Can name (raw octets, '.' between labels, an optional trailing dot) be
 * sent: labels of 1..63 octets, at most DNS_NAME_MAX octets, and at least
 * two labels (a bare top-level name, e.g. the "%{h}" of a HELO without a
 * dot, is not asked)?  RFC 7208 7.1 allows any octet in a domain-spec and
 * DNS labels carry any octet (RFC 2181 11), so nothing else is refused. */
static int name_askable(const char *name)
{
	size_t len = strnlen(name, DNS_NAME_MAX + 2), lab = 0, labels = 0;

	if (len > 1 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > DNS_NAME_MAX)
		return 0;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || name[i] == '.') {
			if (lab == 0 || lab > 63)
				return 0;
			labels++;
			lab = 0;
		} else {
			lab++;
		}
	}
	return labels >= 2;
}

/* Ask one question in the evaluation's batch; returns its index or -1 for
 * a name that cannot exist (counted as nonexistent). */
static int ask(struct eval *e, const char *name, int type, enum dns_status *st)
{
	int i;

	/* A name that cannot be sent does not exist: nothing is asked
	 * (RFC 7208 4.3, 4.8). */
	if (!name_askable(name)) {
		*st = DNS_NXDOMAIN;
		return -1;
	}
	if (dns_batch_remaining(e->b) <= 0) {
		*st = DNS_TIMEOUT;
		e->temp = 1;
		return -1;
	}
	e->queries++;
	i = dns_batch_add_raw(e->b, name, type);
	dns_batch_run(e->b);
	*st = dns_result_status(e->b, i);
	if (dns_status_temporary(*st))
		e->temp = 1;
	return i;
}

/* A name in presentation form (as ldns writes MX and PTR targets: odd
 * octets as \DDD, others after a '\\') back to raw octets, in place, so
 * that it is asked as it is (dns_batch_add_raw).  Returns the new length,
 * or -1 for a name holding a NUL octet or a broken escape. */
static long unescape_name(char *s)
{
	char *o = s;

	for (const char *p = s; *p; p++) {
		if (*p != '\\') {
			*o++ = *p;
			continue;
		}
		if (p[1] >= '0' && p[1] <= '9' && p[2] >= '0' && p[2] <= '9' && p[3] >= '0' &&
		    p[3] <= '9') {
			int v = (p[1] - '0') * 100 + (p[2] - '0') * 10 + (p[3] - '0');

			if (v == 0 || v > 255 || v == '.')
				return -1;
			*o++ = (char)v;
			p += 3;
		} else if (p[1] && p[1] != '.') {
			*o++ = *++p;
		} else {
			return -1; /* an escaped dot cannot be asked as a raw name */
		}
	}
	*o = '\0';
	return (long)(o - s);
}

static SPF_dns_rr_t *lookup_any0(SPF_dns_server_t *s, struct eval *e, const char *domain,
                                 ns_type type);

static SPF_dns_rr_t *layer_lookup(SPF_dns_server_t *s, const char *domain, ns_type type,
                                  int should_cache)
{
	struct eval *e = s->hook;
	enum dns_status st;
	SPF_dns_rr_t *rr;
	int i, n, k = 0;

	(void)should_cache;
	if (strncasecmp(domain, ANY0, ANY0_LEN) == 0 && domain[ANY0_LEN])
		return lookup_any0(s, e, domain, type);
	if (type == ns_t_a || type == ns_t_aaaa) {
		int secondary = 0;

		for (int r = 0; r < e->nrecent && !secondary; r++)
			secondary = strcasecmp(e->recent[r], domain) == 0;
		e->mechs += !secondary;
	} else if (type == ns_t_mx || type == ns_t_ptr) {
		e->mechs++;
		e->nrecent = 0;
	}
	i = ask(e, domain, (int)type, &st);
	if (st != DNS_OK) {
		int herr = st == DNS_NXDOMAIN ? HOST_NOT_FOUND
		           : st == DNS_NODATA ? NO_DATA
		                              : TRY_AGAIN;

		if ((st == DNS_NXDOMAIN || st == DNS_NODATA) && type != ns_t_txt)
			e->voids++;
		return SPF_dns_rr_new_init(s, domain, type, 0, herr);
	}
	rr = SPF_dns_rr_new_init(s, domain, type, (int)dns_result_ttl(e->b, i), NETDB_SUCCESS);
	if (rr == NULL)
		return NULL;
	n = dns_result_count(e->b, i);
	if (type == ns_t_mx && n > SPF_MX_MAX)
		e->mx_over = 1;
	if (type == ns_t_ptr && n > SPF_PTR_MAX)
		n = SPF_PTR_MAX; /* RFC 7208 4.6.4: the first 10, no error */
	for (int j = 0; j < n; j++) {
		char buf[4096];
		long len;
		unsigned pref;

		if (type == ns_t_mx) {
			if (dns_result_mx(e->b, i, j, &pref, buf, sizeof(buf)) < 0 ||
			    strcmp(buf, ".") == 0 || buf[0] == '\0' ||
			    (len = unescape_name(buf)) < 0)
				continue;
			if (e->nrecent < RECENT_MAX)
				bcopy_str(e->recent[e->nrecent++], sizeof(e->recent[0]), buf);
		} else {
			len = dns_result_text(e->b, i, j, buf, sizeof(buf));
			if (len < 0 || (type == ns_t_ptr && (len = unescape_name(buf)) < 0))
				continue;
		}
		if (SPF_dns_rr_buf_realloc(rr, k,
		                           (size_t)len + 1 < sizeof(struct in6_addr)
		                               ? sizeof(struct in6_addr)
		                               : (size_t)len + 1) != SPF_E_SUCCESS)
			break;
		switch (type) {
		case ns_t_a:
			if (inet_pton(AF_INET, buf, &rr->rr[k]->a) != 1)
				continue;
			break;
		case ns_t_aaaa:
			if (inet_pton(AF_INET6, buf, &rr->rr[k]->aaaa) != 1)
				continue;
			break;
		case ns_t_ptr:
			if (e->nrecent < RECENT_MAX)
				bcopy_str(e->recent[e->nrecent++], sizeof(e->recent[0]), buf);
			/* fall through */
		default:
			/* names and TXT as C strings: a NUL cuts the text */
			memcpy(rr->rr[k]->txt, buf, (size_t)len);
			rr->rr[k]->txt[len] = '\0';
			break;
		}
		k++;
	}
	rr->num_rr = k;
	if (k == 0) {
		rr->herrno = NO_DATA;
		if (type != ns_t_txt)
			e->voids++;
	}
	return rr;
}

/* A lookup under the ANY0 prefix: the real name's MX hosts (prefixed in
 * turn), or, when the real name has an address of the client's family,
 * that address is the client's (a prefix length of 0 matches any). */
static SPF_dns_rr_t *lookup_any0(SPF_dns_server_t *s, struct eval *e, const char *domain,
                                 ns_type type)
{
	const char *real = domain + ANY0_LEN;
	SPF_dns_rr_t *rr;
	int fam = type == ns_t_aaaa ? AF_INET6 : AF_INET;

	if (type == ns_t_mx) {
		rr = layer_lookup(s, real, type, 0);
		for (int k = 0; rr && k < rr->num_rr; k++) {
			char host[DNS_NAME_MAX + 2 + ANY0_LEN];
			size_t len = strlen(rr->rr[k]->mx);

			snprintf(host, sizeof(host), "%s%s", ANY0, rr->rr[k]->mx);
			if (SPF_dns_rr_buf_realloc(rr, k, len + ANY0_LEN + 1) != SPF_E_SUCCESS)
				break;
			memcpy(rr->rr[k]->mx, host, strlen(host) + 1);
		}
		/* the hosts' address lookups are part of this term */
		for (int k = 0; rr && k < rr->num_rr && k < RECENT_MAX; k++)
			bcopy_str(e->recent[k], sizeof(e->recent[0]), rr->rr[k]->mx);
		if (rr)
			e->nrecent = rr->num_rr < RECENT_MAX ? rr->num_rr : RECENT_MAX;
		return rr;
	}
	if (type == ns_t_a || type == ns_t_aaaa) {
		int secondary = 0;

		for (int r = 0; r < e->nrecent && !secondary; r++)
			secondary = strcasecmp(e->recent[r], domain) == 0;
		rr = layer_lookup(s, real, type, 0);
		e->mechs -= secondary; /* layer_lookup counted the real name */
		if (rr && rr->herrno == NETDB_SUCCESS && rr->num_rr > 0 && e->ip->family == fam) {
			if (fam == AF_INET)
				memcpy(&rr->rr[0]->a, e->ip->a, 4);
			else
				memcpy(&rr->rr[0]->aaaa, e->ip->a, 16);
			rr->num_rr = 1;
		}
		return rr;
	}
	return layer_lookup(s, real, type, 0);
}

static SPF_errcode_t done(SPF_response_t *resp, SPF_result_t r, SPF_errcode_t err)
{
	resp->result = r;
	resp->reason = SPF_REASON_FAILURE;
	resp->err = err;
	return err;
}

/* The record of cur_dom: TXT only (RFC 7208 3.1, 4.4), exactly one
 * "v=spf1" record, checked and cleaned before libspf2 compiles it. */
static SPF_errcode_t layer_get_spf(SPF_server_t *server, SPF_request_t *req, SPF_response_t *resp,
                                   SPF_record_t **recp)
{
	struct eval *e = server->resolver->hook;
	char txt[RECORD_MAX], clean[RECORD_MAX];
	long found_len = 0;
	enum dns_status st;
	int i, n, found = 0;

	*recp = NULL;
	if (e->records++ > 0)
		e->mechs++; /* include or redirect */
	i = ask(e, req->cur_dom, LDNS_RR_TYPE_TXT, &st);
	if (st == DNS_NXDOMAIN || st == DNS_NODATA)
		return done(resp, SPF_RESULT_NONE, SPF_E_NOT_SPF);
	if (st != DNS_OK)
		return done(resp, SPF_RESULT_TEMPERROR, SPF_E_DNS_ERROR);
	n = dns_result_count(e->b, i);
	for (int j = 0; j < n; j++) {
		char buf[RECORD_MAX];
		long len = dns_result_text(e->b, i, j, buf, sizeof(buf));

		if (len < 6 || strncasecmp(buf, "v=spf1", 6) != 0 || (len > 6 && buf[6] != ' '))
			continue;
		if (found++ == 0) {
			memcpy(txt, buf, (size_t)len);
			found_len = len;
		}
	}
	if (found == 0)
		return done(resp, SPF_RESULT_NONE, SPF_E_NOT_SPF);
	if (found > 1) {
		snprintf(e->problem, sizeof(e->problem), "%.60s: more than one SPF record",
		         req->cur_dom);
		return done(resp, SPF_RESULT_PERMERROR, SPF_E_MULTIPLE_RECORDS);
	}
	if (spf_record_clean(txt, (size_t)found_len, e->ip->family, clean, sizeof(clean)) < 0) {
		snprintf(e->problem, sizeof(e->problem), "%.60s: %.90s", req->cur_dom, clean);
		return done(resp, SPF_RESULT_PERMERROR, SPF_E_SYNTAX);
	}
	if (SPF_record_compile(server, resp, recp, clean) != SPF_E_SUCCESS) {
		if (*recp) {
			SPF_record_free(*recp);
			*recp = NULL;
		}
		return done(resp, SPF_RESULT_PERMERROR, SPF_E_SYNTAX);
	}
	return SPF_E_SUCCESS;
}

/* libspf2 keeps a macro's data right after its header (spf_internal.h). */
#define MACRO_DATA(m) ((SPF_data_t *)((char *)(m) + sizeof(SPF_macro_t)))
/* The default explanation, a marker: only an exp= text is ever quoted. */
#define NO_EXP "portcullis-no-explanation"

/* The value of macro letter c (lower case) for the explanation, into
 * dst; %{p} is left to libspf2 (its validated-name lookups go through the
 * layer).  Returns 0 or -1. */
static int macro_value(SPF_server_t *server, struct eval *e, int c, char *dst, size_t dstsize)
{
	SPF_request_t *req = e->req;
	const struct ipaddr *ip = e->ip;
	char buf[INET6_ADDRSTRLEN];

	dst[0] = '\0';
	switch (c) {
	case 's': bcopy_str(dst, dstsize, req->env_from ? req->env_from : ""); break;
	case 'l': bcopy_str(dst, dstsize, req->env_from_lp ? req->env_from_lp : ""); break;
	case 'o': bcopy_str(dst, dstsize, req->env_from_dp ? req->env_from_dp : ""); break;
	case 'd': bcopy_str(dst, dstsize, req->cur_dom ? req->cur_dom : ""); break;
	case 'h': bcopy_str(dst, dstsize, req->helo_dom ? req->helo_dom : ""); break;
	case 'v': bcopy_str(dst, dstsize, ip->family == AF_INET ? "in-addr" : "ip6"); break;
	case 'r': bcopy_str(dst, dstsize, "unknown"); break; /* RFC 7208 7.3 */
	case 't': snprintf(dst, dstsize, "%lld", (long long)time(NULL)); break;
	case 'c':
		if (inet_ntop(ip->family, ip->a, buf, sizeof(buf)) == NULL)
			return -1;
		bcopy_str(dst, dstsize, buf);
		break;
	case 'i':
		if (ip->family == AF_INET) {
			snprintf(dst, dstsize, "%u.%u.%u.%u", ip->a[0], ip->a[1], ip->a[2],
			         ip->a[3]);
		} else {
			/* dot-format nibbles, upper case as in RFC 7208 7.4 */
			for (int k = 0; k < 32; k++)
				bappend(dst, dstsize, "%s%X", k ? "." : "",
				        (ip->a[k / 2] >> (k % 2 ? 0 : 4)) & 0xf);
		}
		break;
	case 'p': {
		SPF_response_t *scratch = SPF_response_new(req);
		SPF_macro_t *mac = NULL;
		char *out = NULL;
		size_t outlen = 0;
		int rc = -1;

		if (scratch != NULL &&
		    SPF_record_compile_macro(server, scratch, &mac, "%{p}") == SPF_E_SUCCESS &&
		    mac != NULL &&
		    SPF_record_expand_data(server, req, scratch, MACRO_DATA(mac), mac->macro_len,
		                           &out, &outlen) == SPF_E_SUCCESS &&
		    out != NULL) {
			bcopy_str(dst, dstsize, out);
			rc = 0;
		}
		free(out);
		if (mac)
			SPF_macro_free(mac);
		if (scratch)
			SPF_response_free(scratch);
		return rc;
	}
	default: return -1;
	}
	return 0;
}

/* Expand an explain-string (RFC 7208 6.2, 7.1-7.3; already checked by
 * macro_string_ok) into dst.  libspf2's own macro compiler does not take
 * explain-strings (a space comes out as '%'), and writes IPv6 nibbles and
 * URL escapes in lower case.  Returns 0, or -1 on an error (a zero digit
 * transformer): then there is no explanation. */
static int expand_exp(SPF_server_t *server, struct eval *e, const char *s, char *dst,
                      size_t dstsize)
{
	static const char hex[] = "0123456789ABCDEF";

	dst[0] = '\0';
	while (*s) {
		char val[RECORD_MAX], delims[8] = "", *parts[128], joined[RECORD_MAX];
		int letter, upper, keep = 0, rev = 0, n = 0, nd = 0;

		if (*s != '%') {
			bappend(dst, dstsize, "%c", *s++);
			continue;
		}
		if (s[1] == '%' || s[1] == '_' || s[1] == '-') {
			bappend(dst, dstsize, "%s", s[1] == '%' ? "%" : s[1] == '_' ? " " : "%20");
			s += 2;
			continue;
		}
		/* "%{" letter *DIGIT ["r"] *delimiter "}" */
		s += 2;
		letter = tolower((unsigned char)*s);
		upper = isupper((unsigned char)*s);
		s++;
		if (macro_value(server, e, letter, val, sizeof(val)) < 0)
			return -1;
		if (isdigit((unsigned char)*s)) {
			while (isdigit((unsigned char)*s) && keep < 1000)
				keep = keep * 10 + (*s++ - '0');
			while (isdigit((unsigned char)*s))
				s++;
			if (keep == 0)
				return -1;
		}
		if (*s == 'r' || *s == 'R') {
			rev = 1;
			s++;
		}
		while (*s && *s != '}') {
			if (nd + 1 < (int)sizeof(delims))
				delims[nd++] = *s;
			s++;
		}
		if (*s == '}')
			s++;
		if (nd == 0)
			delims[nd++] = '.';
		delims[nd] = '\0';
		/* split on the delimiters, reverse, keep the right-most parts */
		for (char *p = val, *q;; p = q + 1) {
			q = strpbrk(p, delims);
			if (n < (int)ARRAY_SIZE(parts))
				parts[n++] = p;
			if (q == NULL)
				break;
			*q = '\0';
		}
		if (rev)
			for (int a = 0, b = n - 1; a < b; a++, b--) {
				char *t = parts[a];

				parts[a] = parts[b];
				parts[b] = t;
			}
		joined[0] = '\0';
		for (int k = keep && keep < n ? n - keep : 0; k < n; k++)
			bappend(joined, sizeof(joined), "%s%s", joined[0] ? "." : "", parts[k]);
		/* an upper-case letter: URL-escaped (RFC 3986 unreserved kept) */
		for (const char *p = joined; *p; p++) {
			unsigned char ch = (unsigned char)*p;

			if (!upper || isalnum(ch) || strchr("-._~", ch))
				bappend(dst, dstsize, "%c", ch);
			else
				bappend(dst, dstsize, "%%%c%c", hex[ch >> 4], hex[ch & 15]);
		}
	}
	return 0;
}

/* The explanation of exp=domain (RFC 7208 6.2): exactly one TXT record,
 * an explain-string, macro-expanded.  Anything else (a DNS error, no or
 * several records, bad syntax) is "as if no exp modifier was given": an
 * error, so libspf2 leaves the response without an explanation.  Its
 * lookups (%{p} too) are no terms: the counters are restored. */
static SPF_errcode_t layer_get_exp(SPF_server_t *server, const char *domain, char **bufp,
                                   size_t *buflenp)
{
	struct eval *e = server->resolver->hook;
	int voids = e->voids, mechs = e->mechs, temp = e->temp, mx_over = e->mx_over;
	SPF_errcode_t err = SPF_E_NOT_SPF;
	enum dns_status st;
	char txt[RECORD_MAX], exp[RECORD_MAX];
	long len;
	int i;

	/* RFC 7208 7.3: an expanded name over 253 octets loses labels on
	 * the left until it fits (libspf2 does so for terms only). */
	while (strlen(domain) > DNS_NAME_MAX && strchr(domain, '.'))
		domain = strchr(domain, '.') + 1;
	i = ask(e, domain, LDNS_RR_TYPE_TXT, &st);
	if (st != DNS_OK || dns_result_count(e->b, i) != 1)
		goto out;
	len = dns_result_text(e->b, i, 0, txt, sizeof(txt));
	if (len <= 0 || (size_t)len >= sizeof(txt) || memchr(txt, '\0', (size_t)len) ||
	    !macro_string_ok(txt, (size_t)len, 1))
		goto out;
	txt[len] = '\0';
	if (expand_exp(server, e, txt, exp, sizeof(exp)) < 0)
		goto out;
	len = (long)strlen(exp);
	if ((size_t)len + 1 > *buflenp) {
		char *nb = realloc(*bufp, (size_t)len + 1);

		if (nb == NULL)
			goto out;
		*bufp = nb;
		*buflenp = (size_t)len + 1;
	}
	memcpy(*bufp, exp, (size_t)len + 1);
	err = SPF_E_SUCCESS;
out:
	e->voids = voids;
	e->mechs = mechs;
	e->temp = temp;
	e->mx_over = mx_over;
	return err;
}

/* The explanation for the reply: printable ASCII (anything else as '?'),
 * at most SPF_EXP_MAX bytes, "" when there is none. */
static void explanation_copy(char *dst, size_t dstsize, const char *exp)
{
	size_t n = 0;

	dst[0] = '\0';
	if (exp == NULL || strcmp(exp, NO_EXP) == 0)
		return;
	for (; *exp && n + 1 < dstsize; exp++)
		dst[n++] = (unsigned char)*exp >= 0x20 && (unsigned char)*exp < 0x7f ? *exp : '?';
	dst[n] = '\0';
}

/* --- evaluation -------------------------------------------------------------- */

static int valid_domain(const char *d)
{
	return dns_name_valid(d) && strchr(d, '.') != NULL && d[strlen(d) - 1] != '.';
}

enum spf_result spf_eval(struct dns *d, int timeout_ms, const struct ipaddr *ip, const char *helo,
                         const char *sender, struct spf_outcome *out)
{
	struct eval e = { 0 };
	SPF_dns_server_t layer = { 0 };
	SPF_server_t *server = NULL;
	SPF_request_t *req = NULL;
	SPF_response_t *resp = NULL;
	struct ipaddr v4 = *ip;
	const char *at = strrchr(sender, '@');
	const char *dom = at ? at + 1 : sender;
	char from[ADDR_MAX + 32];
	SPF_result_t r;

	pthread_once(&spf_once, spf_setup);
	memset(out, 0, sizeof(*out));
	out->result = SPF_NONE;
	if (bcopy_str(out->domain, sizeof(out->domain), dom) >= sizeof(out->domain) ||
	    !valid_domain(dom)) {
		out->domain[0] = '\0';
		snprintf(out->reason, sizeof(out->reason), "no valid domain to check");
		return out->result;
	}
	str_lower(out->domain, sizeof(out->domain), out->domain);
	/* ::ffff:a.b.c.d is the IPv4 client a.b.c.d */
	if (ip->family == AF_INET6 && memcmp(ip->a, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0) {
		v4.family = AF_INET;
		memmove(v4.a, ip->a + 12, 4);
		memset(v4.a + 4, 0, 12);
	}
	e.ip = &v4;
	e.b = dns_batch_new(d, timeout_ms);
	layer.lookup = layer_lookup;
	layer.get_spf = layer_get_spf;
	layer.get_exp = layer_get_exp;
	layer.name = "portcullis";
	layer.hook = &e;
	server = SPF_server_new_dns(&layer, 0);
	if (server == NULL)
		goto fail;
	if (SPF_server_set_explanation(server, NO_EXP, &resp) != SPF_E_SUCCESS)
		goto fail;
	SPF_response_free(resp);
	resp = NULL;
	req = SPF_request_new(server);
	if (req == NULL)
		goto fail;
	e.req = req;
	if (v4.family == AF_INET) {
		struct in_addr a;

		memcpy(&a, v4.a, 4);
		SPF_request_set_ipv4(req, a);
	} else {
		struct in6_addr a;

		memcpy(&a, v4.a, 16);
		SPF_request_set_ipv6(req, a);
	}
	if (helo && *helo)
		SPF_request_set_helo_dom(req, helo);
	if (at && at != sender)
		snprintf(from, sizeof(from), "%.*s@%s", (int)(at - sender), sender, out->domain);
	else
		snprintf(from, sizeof(from), "postmaster@%s", out->domain);
	if (SPF_request_set_env_from(req, from) != 0)
		goto fail;
	SPF_request_query_mailfrom(req, &resp);
	if (resp == NULL)
		goto fail;
	r = SPF_response_result(resp);
	switch (r) {
	case SPF_RESULT_NEUTRAL: out->result = SPF_NEUTRAL; break;
	case SPF_RESULT_PASS: out->result = SPF_PASS; break;
	case SPF_RESULT_FAIL: out->result = SPF_FAIL; break;
	case SPF_RESULT_SOFTFAIL: out->result = SPF_SOFTFAIL; break;
	case SPF_RESULT_NONE: out->result = SPF_NONE; break;
	case SPF_RESULT_TEMPERROR: out->result = SPF_TEMPERROR; break;
	default: out->result = e.temp ? SPF_TEMPERROR : SPF_PERMERROR; break;
	}
	snprintf(out->reason, sizeof(out->reason), "%s",
	         out->result == SPF_PERMERROR && e.problem[0] ? e.problem
	                                                      : SPF_strerror(resp->err));
	if (out->result == SPF_FAIL)
		explanation_copy(out->explanation, sizeof(out->explanation),
		                 SPF_response_get_explanation(resp));
	if (out->result != SPF_TEMPERROR && e.voids > SPF_VOID_MAX) {
		out->result = SPF_PERMERROR;
		snprintf(out->reason, sizeof(out->reason), "more than %d void lookups",
		         SPF_VOID_MAX);
	} else if (out->result != SPF_TEMPERROR && e.mechs > SPF_MECH_MAX) {
		out->result = SPF_PERMERROR;
		snprintf(out->reason, sizeof(out->reason), "more than %d DNS-querying terms",
		         SPF_MECH_MAX);
	} else if (out->result != SPF_TEMPERROR && e.mx_over) {
		out->result = SPF_PERMERROR;
		snprintf(out->reason, sizeof(out->reason), "more than %d MX names", SPF_MX_MAX);
	}
	goto out;
fail:
	out->result = SPF_TEMPERROR;
	snprintf(out->reason, sizeof(out->reason), "libspf2 failed");
out:
	out->dns_queries = e.queries;
	if (resp)
		SPF_response_free(resp);
	if (req)
		SPF_request_free(req);
	if (server)
		SPF_server_free(server);
	dns_batch_free(e.b);
	return out->result;
}

/* The answers kept for spf_eval_txn: a small ring, newest first found.
 * Transactions in flight at once are few per ring slot; an answer pushed
 * out early only costs one more evaluation. */
#define MEMO_SLOTS 64

static struct memo {
	char ref[32];
	struct ipaddr ip;
	char helo[256];
	char sender[ADDR_MAX + 32];
	struct spf_outcome out;
} memo[MEMO_SLOTS];
static unsigned memo_next;
static pthread_mutex_t memo_lock = PTHREAD_MUTEX_INITIALIZER;

/* The key's identity as spf_eval() checks it: "local@domain" or
 * "postmaster@domain", the domain in lower case. */
static void memo_sender(char *dst, size_t dstsize, const char *sender)
{
	const char *at = strrchr(sender, '@');
	const char *dom = at ? at + 1 : sender;

	if (at && at != sender)
		snprintf(dst, dstsize, "%.*s@", (int)(at - sender), sender);
	else
		snprintf(dst, dstsize, "postmaster@");
	bappend(dst, dstsize, "%s", dom);
	at = strchr(dst, '@');
	str_lower((char *)at, dstsize - (size_t)(at - dst), at);
}

enum spf_result spf_eval_txn(const char *txn_ref, struct dns *d, int timeout_ms,
                             const struct ipaddr *ip, const char *helo, const char *sender,
                             struct spf_outcome *out)
{
	char key[ADDR_MAX + 32];
	const char *h = helo ? helo : "";

	if (txn_ref == NULL || txn_ref[0] == '\0' || strlen(txn_ref) >= sizeof(memo[0].ref) ||
	    strlen(h) >= sizeof(memo[0].helo) || strlen(sender) >= sizeof(key) - 16)
		return spf_eval(d, timeout_ms, ip, helo, sender, out);
	memo_sender(key, sizeof(key), sender);
	pthread_mutex_lock(&memo_lock);
	for (unsigned i = 1; i <= MEMO_SLOTS; i++) {
		const struct memo *m = &memo[(memo_next - i) % MEMO_SLOTS];

		if (strcmp(m->ref, txn_ref) == 0 && m->ip.family == ip->family &&
		    memcmp(m->ip.a, ip->a, sizeof(ip->a)) == 0 && strcmp(m->helo, h) == 0 &&
		    strcmp(m->sender, key) == 0) {
			*out = m->out;
			pthread_mutex_unlock(&memo_lock);
			out->dns_queries = 0;
			return out->result;
		}
	}
	pthread_mutex_unlock(&memo_lock);
	spf_eval(d, timeout_ms, ip, helo, sender, out);
	if (out->result != SPF_TEMPERROR) {
		struct memo *m;

		pthread_mutex_lock(&memo_lock);
		m = &memo[memo_next++ % MEMO_SLOTS];
		bcopy_str(m->ref, sizeof(m->ref), txn_ref);
		m->ip = *ip;
		bcopy_str(m->helo, sizeof(m->helo), h);
		bcopy_str(m->sender, sizeof(m->sender), key);
		m->out = *out;
		pthread_mutex_unlock(&memo_lock);
	}
	return out->result;
}
