/* milter/ctl_dmarc.c - portcullisctl dmarc report DOMAIN [--since TIME]
 *
 * Prints the DMARC aggregate report (RFC 7489 appendix C) for the policy
 * domain DOMAIN from the data the dmarc check records in the store
 * (lib/dmarcrep.h), over the last TIME (default 1d; 30, 30s, 5m, 2h, 1d,
 * 1w).  org_name is the hostname, email the contact.  Exit 0 (also when
 * nothing was recorded: an empty report), 2 on usage or store errors.
 * Sending the report is the admin's job (portcullisctl(8) has a cron line).
 */
#include "addr.h"
#include "conf.h"
#include "ctl.h"
#include "dmarcrep.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "30", "30s", "5m", "2h", "1d", "1w" as seconds; -1 if not one. */
static long duration(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10), mult = 1;

	if (end == s || v < 0)
		return -1;
	switch (*end) {
	case '\0':
	case 's': break;
	case 'm': mult = 60; break;
	case 'h': mult = 3600; break;
	case 'd': mult = 86400; break;
	case 'w': mult = 7 * 86400; break;
	default: return -1;
	}
	if (*end && end[1])
		return -1;
	if (v > 3660L * 86400 / mult)
		return -1;
	return v * mult;
}

int cmd_dmarc(struct conf *conf, int argc, char **argv)
{
	const char *domain = NULL;
	long since = 86400, n;
	struct store *st;
	char dom[256];

	if (argc < 3 || strcmp(argv[1], "report") != 0) {
		fprintf(stderr, "portcullisctl: usage: dmarc report DOMAIN [--since TIME]\n");
		return 2;
	}
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--since") == 0 && i + 1 < argc) {
			if ((since = duration(argv[++i])) < 0) {
				fprintf(stderr,
				        "portcullisctl: dmarc report: bad --since '%.40s'\n",
				        argv[i]);
				return 2;
			}
		} else if (argv[i][0] != '-' && domain == NULL) {
			domain = argv[i];
		} else {
			fprintf(stderr,
			        "portcullisctl: usage: dmarc report DOMAIN [--since TIME]\n");
			return 2;
		}
	}
	if (domain == NULL || !domain_valid(domain) || strlen(domain) >= sizeof(dom)) {
		fprintf(stderr, "portcullisctl: dmarc report: not a domain name: '%.80s'\n",
		        domain ? domain : "");
		return 2;
	}
	str_lower(dom, sizeof(dom), domain);
	if ((st = ctl_store_open(conf)) == NULL)
		return 2;
	n = dmarcrep_report(st, dom, clock_now() - since, clock_now(), conf->hostname,
	                    conf->contact, stdout);
	ctl_store_close(conf, st);
	if (n < 0) {
		fprintf(stderr, "portcullisctl: dmarc report: store error\n");
		return 2;
	}
	return 0;
}
