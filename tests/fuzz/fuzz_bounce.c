/* tests/fuzz/fuzz_bounce.c - libFuzzer target: bounce and auto-reply
 * recognition (lib/bounce.c, with GMime for encoded parts) on arbitrary
 * messages. */
#include <stdint.h>
#include <string.h>

#include "bounce.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char *names_v[] = { "out.example.test" };
	static char *domains_v[] = { "example.test" };
	static struct net net;
	static int ready;
	struct strlist names = { 1, names_v }, domains = { 1, domains_v };
	struct netlist nets = { 1, &net };
	struct bounce_policy pol = { &names, &nets, &domains };
	struct bounce_info in;

	if (!ready) {
		if (ip_parse_cidr("192.0.2.0/24", &net.ip, &net.len) < 0)
			__builtin_trap();
		ready = 1;
	}
	bounce_parse(data, size, &pol, &in);
	if (memchr(in.evidence, '\0', sizeof(in.evidence)) == NULL)
		__builtin_trap();
	if (in.ours && in.evidence[0] == '\0')
		__builtin_trap();
	return 0;
}
