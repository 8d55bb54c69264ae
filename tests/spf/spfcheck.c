/* tests/spf/spfcheck.c - run lib/spf.c's check_host() for lines of input
 *
 *   spfcheck RESOLVER TIMEOUT_MS < tests
 *
 * Each input line is "ID<TAB>HELO<TAB>IP<TAB>MAILFROM" (MAILFROM empty for
 * the null sender: then the HELO identity, postmaster@HELO, is checked, as
 * RFC 7208 2.3 and 2.4 say).  Each output line is
 * "ID<TAB>RESULT<TAB>REASON".  Used by tests/spf-conformance.sh.
 * Exit status 0, or 2 on bad usage or a bad resolver.
 */
#include "dns.h"
#include "spf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	char line[4096], err[256];
	struct dns *d;
	int timeout;

	if (argc != 3) {
		fprintf(stderr, "usage: spfcheck RESOLVER TIMEOUT_MS < tests\n");
		return 2;
	}
	timeout = atoi(argv[2]);
	d = dns_new(argv[1], err, sizeof(err));
	if (d == NULL) {
		fprintf(stderr, "spfcheck: %s\n", err);
		return 2;
	}
	while (fgets(line, sizeof(line), stdin)) {
		char *f[4] = { 0 }, *p = line;
		struct spf_outcome o;
		struct ipaddr ip;
		int n = 0;

		line[strcspn(line, "\n")] = '\0';
		while (n < 4) {
			f[n++] = p;
			p = strchr(p, '\t');
			if (p == NULL)
				break;
			*p++ = '\0';
		}
		if (n != 4 || ip_parse(f[2], &ip) < 0) {
			printf("%s\tbadinput\t-\n", f[0]);
			continue;
		}
		spf_eval(d, timeout, &ip, f[1], f[3][0] ? f[3] : f[1], &o);
		printf("%s\t%s\t%s\n", f[0], spf_result_name(o.result), o.reason);
		fflush(stdout);
	}
	dns_free(d);
	return 0;
}
