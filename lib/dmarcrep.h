/* lib/dmarcrep.c - DMARC aggregate-report data (RFC 7489 7.2, appendix C)
 *
 * The dmarc check records what it evaluated in the store namespace "dmarc":
 * one counter per hour and distinct outcome (policy domain, From: domain,
 * source address, disposition, aligned DKIM and SPF results, envelope
 * domain, SPF result, the DKIM signature that counted), so the data grows
 * with the number of distinct outcomes, not with the number of messages,
 * and each counter expires dmarc.report_keep after its hour (lib/maint
 * removes expired ones).  portcullisctl dmarc report DOMAIN --since 1d
 * prints the aggregate report XML for one policy domain from them.
 * Every field is a validated token (domain, address, result word); the XML
 * writer escapes them anyway.  Thread-safe: one mutex orders the counter
 * updates of this process (another process updating the same counter at
 * the same moment may lose one count: the report is statistics).
 */
#ifndef PORTCULLIS_DMARCREP_H
#define PORTCULLIS_DMARCREP_H

#include <stdio.h>
#include <time.h>

struct store;

#define DMARCREP_NS "dmarc"

struct dmarcrep_row {
	char policy_domain[256]; /* where the record was found */
	char header_from[256];
	char envelope_from[256]; /* "" for the null sender */
	char ip[64];
	char disposition[12]; /* none, quarantine, reject */
	char dkim_aligned[8]; /* pass, fail */
	char spf_aligned[8];
	char spf_result[16];   /* the spf check's smtp.mailfrom result, or "none" */
	char dkim_domain[256]; /* "" when unsigned */
	char dkim_result[16];
	char dkim_selector[64];
	char p, sp, adkim, aspf; /* 'n' 'q' 'r'; 'r' 's' */
	int pct;
};

/* Count one evaluated message at time now; the counter expires keep
 * seconds after its hour.  Returns 0 or -1 (store error). */
int dmarcrep_record(struct store *st, time_t now, long keep, const struct dmarcrep_row *r);

/* Write the aggregate report (RFC 7489 appendix C) for policy domain
 * domain over [since, now] to out: org_name and email from the caller.
 * Returns the number of messages counted (0: nothing recorded, the XML is
 * still written), or -1 on a store error. */
long dmarcrep_report(struct store *st, const char *domain, time_t since, time_t now,
                     const char *org, const char *email, FILE *out);

#endif
