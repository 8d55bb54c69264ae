/* tests/fuzz/fuzz_addr.c - libFuzzer target: address, domain and IP parsers
 * and every encoder on arbitrary bytes. */
#include <stdint.h>
#include <string.h>

#include "addr.h"
#include "encode.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = xstrndup((const char *)data, size);
	struct mailaddr a;
	struct ipaddr ip, net;
	char out[2048];
	int len;

	addr_parse(s, &a);
	if (strlen(a.full) > ADDR_MAX || strlen(a.local) > ADDR_LOCAL_MAX ||
	    strlen(a.domain) > ADDR_DOMAIN_MAX)
		__builtin_trap();
	addr_is_postmaster(&a);
	domain_valid(s);
	domain_is_fqdn(s);
	if (ip_parse(s, &ip) == 0)
		ip_format(&ip, out, sizeof(out));
	ip_parse_literal(s, &ip);
	if (ip_parse_cidr(s, &net, &len) == 0 && ip_parse("192.0.2.1", &ip) == 0)
		ip_in_net(&ip, &net, len);
	enc_reply(out, sizeof(out), s);
	for (const char *p = out; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			__builtin_trap();
	enc_header(out, sizeof(out), s);
	for (const char *p = out; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			__builtin_trap();
	enc_log(out, sizeof(out), s, 300);
	for (const char *p = out; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			__builtin_trap();
	free(s);
	return 0;
}
