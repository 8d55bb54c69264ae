/* tests/fuzz/fuzz_metrics.c - libFuzzer target: the metrics listener's
 * request judge, metrics.listen parsing, and the exposition line parser of
 * portcullisctl stats, on arbitrary bytes. */
#include <stdint.h>
#include <string.h>

#include "metrics.h"
#include "metrics_http.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = xstrndup((const char *)data, size), *copy = xstrdup(s);
	struct sockaddr_storage sa;
	socklen_t salen;
	struct metrics_sample m;
	char err[512], v[64];
	int head_only, st;

	st = metrics_http_request(copy, &head_only);
	if (st != 200 && st != 400 && st != 404 && st != 405)
		__builtin_trap();
	if (metrics_listen_parse(s, 0, &sa, &salen, err, sizeof(err)) < 0 &&
	    (strchr(err, '\n') || strchr(err, '\r')))
		__builtin_trap(); /* errors are one line */
	if (metrics_parse_line(s, &m) == 0) {
		if (strlen(m.name) >= sizeof(m.name) || strlen(m.labels) >= sizeof(m.labels))
			__builtin_trap();
		metrics_label(&m, "le", v, sizeof(v));
		metrics_label(&m, "check", v, 1);
	}
	free(copy);
	free(s);
	return 0;
}
