/* tests/fuzz/fuzz_conf.c - libFuzzer target: configuration files. */
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[64];
	char err[1024];
	struct conf *c;
	FILE *fp;

	if (path[0] == '\0') {
		log_open("fuzz", "none", "mail");
		snprintf(path, sizeof(path), "/tmp/fuzz_conf.%ld", (long)getpid());
	}
	fp = fopen(path, "w");
	if (fp == NULL)
		return 0;
	fwrite(data, 1, size, fp);
	fclose(fp);
	c = conf_load(path, err, sizeof(err));
	if (c) {
		fp = fopen("/dev/null", "w");
		conf_dump(c, CONF_DUMP_CHANGED, fp);
		fclose(fp);
		conf_unref(c);
	}
	return 0;
}
