/* tests/fuzz/fuzz_report.c - libFuzzer target: portcullisctl report's log
 * reader (lib/report.c) on arbitrary bytes: the lines of the input through
 * report_line() with small tables (so that the space-saving replacement
 * runs), the whole input through report_read_fd(), the summary printed;
 * and the first line as a --since value and a time stamp.  The counts
 * must add up: transactions never exceed the lines read. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct report_opts o = { .now = 1796601600, .top = 3, .keep = 4, .last = 2 };
	struct report *r = report_new(&o), *r2 = report_new(&o);
	const char *p = (const char *)data, *end = p + size;
	char *s = xstrndup(p, size), *buf = NULL;
	unsigned long long lines = 0;
	size_t len = 0;
	time_t t;
	FILE *fp;
	int pfd[2];

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end;

		report_line(r, p, (size_t)(e - p));
		lines++;
		p = nl ? nl + 1 : end;
	}
	if (report_txns(r, NULL) > lines)
		__builtin_trap();
	fp = open_memstream(&buf, &len);
	report_print(r, fp, "fuzz");
	fclose(fp);
	free(buf);
	/* the same bytes through a pipe (inputs are at most a few KiB) */
	if (size < 60000 && pipe(pfd) == 0) {
		if (write(pfd[1], data, size) != (ssize_t)size)
			__builtin_trap();
		close(pfd[1]);
		if (report_read_fd(r2, pfd[0]) < 0 || report_txns(r2, NULL) != report_txns(r, NULL))
			__builtin_trap();
		close(pfd[0]);
	}
	report_parse_since(s, o.now, &t);
	report_parse_stamp(s, strlen(s), o.now, &t);
	report_free(r);
	report_free(r2);
	free(s);
	return 0;
}
