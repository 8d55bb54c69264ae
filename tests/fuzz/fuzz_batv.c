/* tests/fuzz/fuzz_batv.c - libFuzzer target: the BATV tag parser and the
 * key file parser on arbitrary bytes.  A tag that verifies must round-trip:
 * signing its untagged address on its day gives a valid tag again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "batv.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct batv_keys keys;
	static int ready;
	char *s = xstrndup((const char *)data, size);
	char orig[400], again[400], err[200];
	struct batv_keys k2;
	enum batv_result r;

	if (!ready) {
		if (batv_keys_parse("2 fuzz-secret-0123456789\n1 older-secret-0123456789\n", &keys,
		                    err, sizeof(err)) < 0)
			__builtin_trap();
		ready = 1;
	}
	for (long day = 0; day < 2000; day += 997) {
		r = batv_check(&keys, s, day, 7, orig, sizeof(orig));
		if (r == BATV_UNTAGGED && orig[0])
			__builtin_trap();
		if (strlen(orig) >= sizeof(orig))
			__builtin_trap();
		if (r == BATV_VALID &&
		    (batv_sign(&keys, orig, day, 7, again, sizeof(again)) < 0 ||
		     batv_check(&keys, again, day, 7, orig, sizeof(orig)) != BATV_VALID))
			__builtin_trap();
	}
	if (batv_sign(&keys, s, 100, 7, again, sizeof(again)) == 0 &&
	    batv_check(&keys, again, 103, 7, orig, sizeof(orig)) != BATV_VALID)
		__builtin_trap();
	if (batv_keys_parse(s, &k2, err, sizeof(err)) == 0 && (k2.n < 1 || k2.n > BATV_KEYS_MAX))
		__builtin_trap();
	free(s);
	return 0;
}
