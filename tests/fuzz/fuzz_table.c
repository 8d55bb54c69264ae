/* tests/fuzz/fuzz_table.c - libFuzzer target: access table files.  The
 * first byte picks the table type, the rest is the file. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"
#include "table.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const types[] = { "cidr", "pcre", "texthash" };
	static char path[64];
	char spec[128], err[512];
	struct table *t;
	struct table_result res;
	struct ipaddr ip;
	FILE *fp;

	if (size < 1)
		return 0;
	if (path[0] == '\0') {
		log_open("fuzz", "none", "mail");
		snprintf(path, sizeof(path), "/tmp/fuzz_table.%ld", (long)getpid());
	}
	fp = fopen(path, "w");
	if (fp == NULL)
		return 0;
	fwrite(data + 1, 1, size - 1, fp);
	fclose(fp);
	snprintf(spec, sizeof(spec), "%s:%s", types[data[0] % 3], path);
	t = table_open(spec, err, sizeof(err));
	if (t) {
		table_lookup_str(t, "user@example.org", &res);
		table_lookup_str(t, "mail.example.org", &res);
		if (ip_parse("192.0.2.7", &ip) == 0)
			table_lookup_ip(t, &ip, &res);
		if (ip_parse("2001:db8::7", &ip) == 0)
			table_lookup_ip(t, &ip, &res);
		table_free(t);
	}
	return 0;
}
