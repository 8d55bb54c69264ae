/* tests/unit/hostile.h - the shared table of hostile network strings
 *
 * Every encoder and every parser of network text is run over this table
 * (STYLE.md, "Strings from the network").  hostile_init() must be called
 * once before the table is read: it fills the long entries, which are too
 * big to spell out.  The table ends with a NULL name.  .len is the full
 * length including any embedded NUL; C-string consumers see only the bytes
 * before the first NUL, which is part of what is being tested.
 * Not thread-safe (tests are single-threaded).
 */
#ifndef PORTCULLIS_TESTS_HOSTILE_H
#define PORTCULLIS_TESTS_HOSTILE_H

#include <stddef.h>

#define HOSTILE_LONG_LEN 10000

struct hostile {
	const char *name;
	const char *s;
	size_t len;
};

extern const struct hostile hostile_strings[];

/* Fill the runtime-built entries; idempotent. */
void hostile_init(void);

#endif
