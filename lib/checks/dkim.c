/* lib/checks/dkim.c - DKIM signature verification (RFC 6376, RFC 8463)
 *
 * At end of DATA every DKIM-Signature of the message is verified with
 * libopendkim (canonicalisation, hashes, RSA and Ed25519 are its work, not
 * ours).  The engine keeps the message for us (needs_message): the MTA is
 * asked for the headers and body only when a check like this one is on.
 * Key records are fetched through lib/dns (libopendkim's key lookup hook,
 * dkim_set_key_lookup): the resolver, the cache and the stage's DNS time
 * (dns.timeout_ms for all checks at end of DATA) are shared with the other
 * checks; libopendkim itself asks nothing.
 * At most dkim.max_signatures signatures are verified (a message with 50
 * signatures costs at most that many key lookups): those whose d= aligns
 * with the From: domain first (the ones dmarc can use), then in order; the
 * others are ignored and not reported.
 * Each verified signature gets a result (RFC 8601 2.7.1) for the one
 * Authentication-Results header (verdict_auth; the engine writes it):
 *   pass       signature and body hash verified
 *   fail       the signature or the body hash does not match (the message
 *              was changed), also an l= longer than the body
 *   policy     the key is shorter than dkim.min_key_bits
 *   neutral    the signature cannot be used: syntax errors, expired or
 *              future timestamps
 *   permerror  no key, revoked key (empty p=), a key that cannot be used
 *   temperror  the key lookup failed (timeout, SERVFAIL)
 * and "dkim=none" when the message carries no signature.  Properties:
 * header.d, header.s and header.b (first 8 characters of b=, RFC 6008),
 * each validated before use.
 * Decisions: dkim.pass_score when a signature passed, else
 * dkim.fail_score when one failed; dkim.required (tables of From: domains,
 * texthash: "DOMAIN ACTION", parents match too) names domains whose mail
 * must carry a passing signature aligned with the From: domain; without
 * one the entry's action applies (REJECT: 550 5.7.1, DEFER: 451 4.7.1,
 * SCORE n), and a failed key lookup defers through dkim.on_error.
 * Forged Authentication-Results (our authserv-id) are removed here when
 * spf is not on (lib/authres.h), noted as dkim.forged_ar.
 * Thread-safe: the DKIM_LIB of a snapshot is shared (libopendkim allows
 * that), each message has its own DKIM handle and lookup context.
 */
#include "addr.h"
#include "authres.h"
#include "check.h"
#include "dns.h"
#include "engine.h"
#include "log.h"
#include "message.h"
#include "rfc5322.h"
#include "table.h"
#include "util.h"

#include <dkim.h>

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define DKIM_SIGS_HARD_MAX 50 /* bound of dkim.max_signatures */

struct dkim_conf {
	double pass_score;
	double fail_score;
	long max_signatures;
	long min_key_bits;
	struct maplist required;
	DKIM_LIB *lib;
};

#define F(x) offsetof(struct dkim_conf, x)
static const struct conf_param dkim_params[] = {
	{ "dkim.pass_score", "0", CONF_SCORE, F(pass_score), -100, 100,
	  "score added when a signature passed (negative to reward)" },
	{ "dkim.fail_score", "1", CONF_SCORE, F(fail_score), -100, 100,
	  "score added when no signature passed and one failed" },
	{ "dkim.max_signatures", "5", CONF_INT, F(max_signatures), 1, DKIM_SIGS_HARD_MAX,
	  "signatures verified per message at most (each may cost a key lookup)" },
	{ "dkim.min_key_bits", "1024", CONF_INT, F(min_key_bits), 512, 16384,
	  "RSA keys shorter than this give result policy" },
	{ "dkim.required", "", CONF_MAPS, F(required), 0, 0,
	  "tables of From: domains whose mail must carry a valid aligned signature "
	  "(texthash: DOMAIN REJECT|DEFER|SCORE n)" },
	CONF_END
};

/* The lookups of one message: what the key lookup hook needs. */
struct dkim_lookup {
	struct dns *dns;
	long long deadline_ms;
	const char *ref;
	int max;
	char from[RFC5322_DOMAIN_MAX + 1]; /* "" when unknown */
	int ntemp;
	DKIM_SIGINFO *temp[DKIM_SIGS_HARD_MAX]; /* signatures whose lookup failed */
};

/* A selector: letters, digits, '-', '_' and dots between labels. */
static int selector_valid(const char *s)
{
	size_t n = 0;

	if (s == NULL || *s == '\0' || *s == '.')
		return 0;
	for (; s[n]; n++)
		if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
		      (s[n] >= '0' && s[n] <= '9') || s[n] == '-' || s[n] == '_' ||
		      (s[n] == '.' && s[n + 1] != '.' && s[n + 1] != '\0')))
			return 0;
	return n <= 63 * 4;
}

/* libopendkim's key lookup hook: the TXT record at
 * SELECTOR._domainkey.DOMAIN through lib/dns, within the stage's time.
 * A temporary failure is remembered (and reported as temperror): to
 * libopendkim it is "no key", so that the other signatures go on. */
static DKIM_CBSTAT key_lookup(DKIM *dkim, DKIM_SIGINFO *sig, u_char *buf, size_t buflen)
{
	char logname[400];
	struct dkim_lookup *lk = dkim_get_user_context(dkim);
	const char *d = (const char *)dkim_sig_getdomain(sig);
	const char *s = (const char *)dkim_sig_getselector(sig);
	char name[DNS_NAME_MAX + 16];
	struct dns_batch *b;
	long long left = lk->deadline_ms - now_ms();
	enum dns_status st;
	long n;
	int q;

	if (!selector_valid(s) || d == NULL || !domain_valid(d) ||
	    (size_t)snprintf(name, sizeof(name), "%s._domainkey.%s", s, d) >= sizeof(name) ||
	    !dns_name_valid(name))
		return DKIM_CBSTAT_NOTFOUND;
	b = dns_batch_new(lk->dns, left > 0 ? (int)left : 1);
	q = dns_batch_add(b, name, LDNS_RR_TYPE_TXT);
	if (left > 0)
		dns_batch_run(b);
	st = dns_result_status(b, q);
	if (st == DNS_OK) {
		n = dns_result_text(b, q, 0, (char *)buf, buflen);
		dns_batch_free(b);
		if (n < 0 || memchr(buf, '\0', (size_t)n) != NULL)
			return DKIM_CBSTAT_NOTFOUND; /* too long or binary: unusable */
		return DKIM_CBSTAT_CONTINUE;
	}
	dns_batch_free(b);
	if (dns_status_temporary(st) || left <= 0) {
		log_msg(LOG_LVL_INFO, "ref=%s DKIM key %s: %s", lk->ref,
		        enc_log(logname, sizeof(logname), name, 300),
		        left <= 0 ? "no DNS time left" : dns_status_name(st));
		if (lk->ntemp < DKIM_SIGS_HARD_MAX)
			lk->temp[lk->ntemp++] = sig;
	}
	return DKIM_CBSTAT_NOTFOUND;
}

/* d= aligns with the From: domain in the relaxed sense: equal, or one is
 * a parent of the other (dmarc decides with the organizational domain). */
static int related(const char *d, const char *from)
{
	size_t ld = strlen(d), lf = strlen(from);

	if (ld == 0 || lf == 0)
		return 0;
	if (ld == lf)
		return strcasecmp(d, from) == 0;
	if (ld < lf)
		return from[lf - ld - 1] == '.' && strcasecmp(from + lf - ld, d) == 0;
	return d[ld - lf - 1] == '.' && strcasecmp(d + ld - lf, from) == 0;
}

/* libopendkim's prescreen hook: the signatures aligned with From: first,
 * then in order; those past max are ignored (no lookup, no result). */
static DKIM_CBSTAT prescreen(DKIM *dkim, DKIM_SIGINFO **sigs, int nsigs)
{
	struct dkim_lookup *lk = dkim_get_user_context(dkim);
	int k = 0;

	if (lk->from[0]) {
		for (int i = 0; i < nsigs; i++) {
			const char *d = (const char *)dkim_sig_getdomain(sigs[i]);

			if (d && related(d, lk->from)) {
				DKIM_SIGINFO *x = sigs[i];

				/* move it to position k, keeping the order */
				memmove(sigs + k + 1, sigs + k, sizeof(*sigs) * (size_t)(i - k));
				sigs[k++] = x;
			}
		}
	}
	for (int i = lk->max; i < nsigs; i++)
		dkim_sig_ignore(sigs[i]);
	return DKIM_CBSTAT_CONTINUE;
}

static int dkim_init_mod(void *mconf, const struct conf *c, char *err, size_t errsize)
{
	struct dkim_conf *dc = mconf;
	unsigned bits; /* libopendkim's own types for these options */
	uint32_t flags = DKIM_LIBFLAGS_NONE;

	(void)c;
	dc->lib = dkim_init(NULL, NULL);
	if (dc->lib == NULL) {
		snprintf(err, errsize, "dkim: libopendkim could not be initialised");
		return -1;
	}
	bits = (unsigned)dc->min_key_bits;
	if (dkim_options(dc->lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags, sizeof(flags)) !=
	        DKIM_STAT_OK ||
	    dkim_options(dc->lib, DKIM_OP_SETOPT, DKIM_OPTS_MINKEYBITS, &bits, sizeof(bits)) !=
	        DKIM_STAT_OK ||
	    dkim_set_key_lookup(dc->lib, key_lookup) != DKIM_STAT_OK ||
	    dkim_set_prescreen(dc->lib, prescreen) != DKIM_STAT_OK) {
		snprintf(err, errsize, "dkim: libopendkim refused its settings");
		dkim_close(dc->lib);
		dc->lib = NULL;
		return -1;
	}
	return 0;
}

static void dkim_fini_mod(void *mconf)
{
	struct dkim_conf *dc = mconf;

	if (dc->lib)
		dkim_close(dc->lib);
	dc->lib = NULL;
}

/* The RFC 8601 result word of one processed signature and a short reason
 * for a comment ("" for pass). */
static const char *sig_result(const struct dkim_lookup *lk, DKIM_SIGINFO *sig, const char **why)
{
	unsigned flags = dkim_sig_getflags(sig);
	int bh = dkim_sig_getbh(sig), err = dkim_sig_geterror(sig);

	*why = "";
	for (int i = 0; i < lk->ntemp; i++)
		if (lk->temp[i] == sig) {
			*why = "key lookup failed";
			return "temperror";
		}
	if ((flags & DKIM_SIGFLAG_PASSED) && bh == DKIM_SIGBH_MATCH)
		return "pass";
	if (bh == DKIM_SIGBH_MISMATCH) {
		*why = "body hash mismatch";
		return "fail";
	}
	switch (err) {
	case DKIM_SIGERROR_KEYTOOSMALL: *why = "key too small"; return "policy";
	case DKIM_SIGERROR_BADSIG: *why = "signature mismatch"; return "fail";
	case DKIM_SIGERROR_TOOLARGE_L: *why = "l= longer than the body"; return "fail";
	case DKIM_SIGERROR_KEYFAIL: *why = "key lookup failed"; return "temperror";
	case DKIM_SIGERROR_NOKEY: *why = "no key"; return "permerror";
	case DKIM_SIGERROR_KEYREVOKED: *why = "key revoked"; return "permerror";
	case DKIM_SIGERROR_DNSSYNTAX:
	case DKIM_SIGERROR_MULTIREPLY:
	case DKIM_SIGERROR_KEYVERSION:
	case DKIM_SIGERROR_KEYUNKNOWNHASH:
	case DKIM_SIGERROR_KEYHASHMISMATCH:
	case DKIM_SIGERROR_NOTEMAILKEY:
	case DKIM_SIGERROR_KEYTYPEMISSING:
	case DKIM_SIGERROR_KEYTYPEUNKNOWN:
	case DKIM_SIGERROR_KEYDECODE: *why = "unusable key"; return "permerror";
	case DKIM_SIGERROR_EXPIRED: *why = "signature expired"; return "neutral";
	case DKIM_SIGERROR_FUTURE: *why = "signature in the future"; return "neutral";
	case DKIM_SIGERROR_OK:
	case DKIM_SIGERROR_UNKNOWN:
		if (bh == DKIM_SIGBH_MISMATCH) {
			*why = "body hash mismatch";
			return "fail";
		}
		if (flags & DKIM_SIGFLAG_PROCESSED) {
			*why = "signature mismatch";
			return "fail";
		}
		*why = "not verified";
		return "neutral";
	default: *why = "invalid signature"; return "neutral";
	}
}

/* header.b: the first 8 characters of b= without white space, base64
 * only (RFC 6008); "" when there is none. */
static void sig_b8(DKIM_SIGINFO *sig, char *dst, size_t dstsize)
{
	const unsigned char *b = dkim_sig_gettagvalue(sig, 0, (u_char *)"b");
	size_t n = 0;

	for (; b && *b && n + 1 < dstsize && n < 8; b++) {
		if (*b == ' ' || *b == '\t' || *b == '\r' || *b == '\n')
			continue;
		if (!((*b >= 'a' && *b <= 'z') || (*b >= 'A' && *b <= 'Z') ||
		      (*b >= '0' && *b <= '9') || *b == '+' || *b == '/' || *b == '='))
			break;
		dst[n++] = (char)*b;
	}
	dst[n] = '\0';
}

/* Is domain (or a parent of it) in dkim.required?  Fills *res. */
static int required_lookup(const struct dkim_conf *dc, const char *domain, struct table_result *res)
{
	for (const char *p = domain; p && *p;) {
		if (maplist_lookup_str(&dc->required, p, res))
			return 1;
		p = strchr(p, '.');
		if (p)
			p++;
	}
	return 0;
}

static int dkim_check_eom(const struct check_ctx *cx, struct verdicts *out)
{
	const struct dkim_conf *dc = cx->mconf;
	struct dkim_lookup lk;
	char from[4][RFC5322_DOMAIN_MAX + 1];
	const unsigned char *data;
	size_t len;
	DKIM_SIGINFO **sigs = NULL;
	DKIM_STAT st;
	DKIM *dkim;
	int nsigs = 0, nfrom, nfields, npass = 0, nfail = 0, aligned_pass = 0, aligned_temp = 0;
	struct table_result req;
	int rc = CHECK_DONE;

	if (cx->msg == NULL || dc->lib == NULL)
		return CHECK_DONE; /* not kept (over-size): nothing to verify */
	data = message_data(cx->msg, &len);
	if (data == NULL)
		return check_retry(out, "message not readable: %s", cx->msg->error);
	memset(&lk, 0, sizeof(lk));
	lk.dns = cx->conf->dns;
	lk.deadline_ms = cx->dns_deadline_ms;
	lk.ref = check_ref(cx);
	lk.max = (int)dc->max_signatures;
	nfrom = rfc5322_from_domains(data, len, from, 4, &nfields);
	/* one From: with one mailbox: the domain signatures align with */
	if (nfrom == 1 && nfields == 1)
		bcopy_str(lk.from, sizeof(lk.from), from[0]);

	dkim = dkim_verify(dc->lib, (const u_char *)lk.ref, NULL, &st);
	if (dkim == NULL)
		return check_retry(out, "libopendkim: %s", dkim_getresultstr(st));
	dkim_set_user_context(dkim, &lk);
	st = dkim_chunk(dkim, (u_char *)data, len);
	if (st == DKIM_STAT_OK)
		st = dkim_chunk(dkim, NULL, 0);
	if (st == DKIM_STAT_OK)
		st = dkim_eom(dkim, NULL);
	if (st == DKIM_STAT_NORESOURCE || st == DKIM_STAT_INTERNAL) {
		rc = check_retry(out, "libopendkim: %s", dkim_getresultstr(st));
		goto out;
	}
	if (dkim_getsiglist(dkim, &sigs, &nsigs) != DKIM_STAT_OK)
		nsigs = 0;
	for (int i = 0; i < nsigs; i++) {
		const char *d = (const char *)dkim_sig_getdomain(sigs[i]);
		const char *s = (const char *)dkim_sig_getselector(sigs[i]);
		const char *why, *r;
		char b8[12];

		if (dkim_sig_getflags(sigs[i]) & DKIM_SIGFLAG_IGNORE)
			continue;
		r = sig_result(&lk, sigs[i], &why);
		if (d == NULL || !domain_valid(d) || strlen(d) > RFC5322_DOMAIN_MAX) {
			/* nothing of it can be quoted: a bare result */
			verdict_auth(out, "dkim", strcmp(r, "pass") == 0 ? "neutral" : r, "", "",
			             "(invalid d=)");
			continue;
		}
		sig_b8(sigs[i], b8, sizeof(b8));
		verdict_auth(out, "dkim", r, "header.d", d, "%s%s%s%s%s%s%s", why[0] ? "(" : "",
		             why, why[0] ? ") " : "", selector_valid(s) ? "header.s=" : "",
		             selector_valid(s) ? s : "", b8[0] ? " header.b=" : "", b8);
		if (strcmp(r, "pass") == 0) {
			npass++;
			aligned_pass |= lk.from[0] && related(d, lk.from);
		} else if (strcmp(r, "fail") == 0) {
			nfail++;
		} else if (strcmp(r, "temperror") == 0) {
			aligned_temp |= lk.from[0] && related(d, lk.from);
		}
	}
	if (nsigs == 0 || st == DKIM_STAT_NOSIG)
		verdict_auth(out, "dkim", "none", "", "", "%s", "");
	if (npass > 0 && dc->pass_score != 0)
		verdict_score(out, MODE_REJECT, "dkim.pass", dc->pass_score,
		              "DKIM signature valid");
	else if (npass == 0 && nfail > 0 && dc->fail_score != 0)
		verdict_score(out, MODE_REJECT, "dkim.fail", dc->fail_score,
		              "DKIM signature invalid");
	/* domains that must arrive signed */
	if (lk.from[0] && !aligned_pass && dc->required.n > 0 &&
	    required_lookup(dc, lk.from, &req)) {
		if (aligned_temp) {
			rc = check_retry_reply(
			    out, "451", "4.7.5",
			    "DKIM key of %s could not be fetched, try again later", lk.from);
			goto out;
		}
		switch (req.action) {
		case TA_REJECT:
			verdict_reject(out, MODE_REJECT, "dkim.required", "550", "5.7.1",
			               "Mail from %s must carry a valid DKIM signature%s%s",
			               lk.from, req.text ? ": " : "", req.text ? req.text : "");
			break;
		case TA_DEFER:
			verdict_defer(out, MODE_REJECT, "dkim.required", "451", "4.7.1",
			              "Mail from %s must carry a valid DKIM signature%s%s", lk.from,
			              req.text ? ": " : "", req.text ? req.text : "");
			break;
		case TA_SCORE:
			verdict_score(out, MODE_REJECT, "dkim.required", req.score,
			              "Mail from %s without a valid DKIM signature", lk.from);
			break;
		default: break;
		}
	}
out:
	dkim_free(dkim);
	return rc;
}

/* Incoming Authentication-Results with our authserv-id are forgeries (RFC
 * 8601 5): removed by the first enabled identity check (lib/authres.h). */
static int dkim_check_header(const struct check_ctx *cx, struct verdicts *out)
{
	const char *id = authres_authserv_id(cx->conf);

	if (strcasecmp(cx->hdr_name, "Authentication-Results") != 0 ||
	    !authres_remover(cx->conf, "dkim") || !authres_is_ours(cx->hdr_value, id))
		return CHECK_DONE;
	verdict_delete_header(out, cx->hdr_name, cx->hdr_index);
	verdict_score(out, MODE_REJECT, "dkim.forged_ar", 0,
	              "Authentication-Results with our authserv-id %s removed", id);
	return CHECK_DONE;
}

const struct check_module check_dkim = {
	.name = "dkim",
	.doc = "DKIM signature verification (RFC 6376, Ed25519 RFC 8463) with libopendkim",
	.params = dkim_params,
	.conf_size = sizeof(struct dkim_conf),
	.default_mode = "reject",
	.default_on_error = "defer",
	.needs_message = 1,
	.init = dkim_init_mod,
	.fini = dkim_fini_mod,
	.hook = {
		[STAGE_HEADER] = dkim_check_header,
		[STAGE_EOM] = dkim_check_eom,
	},
};
