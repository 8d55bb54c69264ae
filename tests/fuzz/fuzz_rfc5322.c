/* tests/fuzz/fuzz_rfc5322.c - libFuzzer target: the header field parsers
 * (Date, Message-ID, mailbox lists, From: fields of a raw message) and the
 * Authentication-Results authserv-id parser on arbitrary bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "authres.h"
#include "rfc5322.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = xstrndup((const char *)data, size);
	char dom[3][RFC5322_DOMAIN_MAX + 1];
	time_t t;
	int n, nf;

	(void)rfc5322_date(s, &t);
	(void)rfc5322_msgid(s);
	n = rfc5322_mailboxes(s, dom, 3);
	if (n < -1)
		__builtin_trap();
	for (int i = 0; i < n && i < 3; i++)
		if (strlen(dom[i]) > RFC5322_DOMAIN_MAX || dom[i][0] == '\0')
			__builtin_trap();
	n = rfc5322_from_domains(data, size, dom, 3, &nf);
	if (n < -1 || nf < 0)
		__builtin_trap();
	(void)authres_is_ours(s, "mx.example.test");
	free(s);
	return 0;
}
