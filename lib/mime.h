/* lib/mime.h - the MIME structure of a message, with GMime
 *
 * mime_walk_mem() parses a message (message_data() of lib/message.h) with
 * GMime 3 and calls the visitor once per leaf part, in order, nested
 * multiparts and message/rfc822 parts included.  Names are decoded to
 * UTF-8 before the visitor sees them: RFC 2231 continuations and charsets
 * (filename*0*=koi8-r''...) and RFC 2047 encoded words (name="=?koi8-r?B?
 * ...?=", which mailers send although RFC 2047 forbids it in parameters);
 * both Content-Disposition filename and Content-Type name are reported,
 * because a client may show either.
 *
 * Bounds, because every message is hostile: nesting deeper than
 * MIME_DEPTH_MAX is not walked (mime_info.too_deep), at most MIME_PARTS_MAX
 * parts are visited (mime_info.too_many), and a message with more than
 * MIME_NESTING_HINT_MAX "Content-Type" fields is not given to the parser
 * at all (its recursion follows the nesting, and every level needs such a
 * field), it is reported as too complex.  Lines longer than MIME_LINE_MAX bytes are cut
 * there before parsing (no name or boundary is that long).  Malformed MIME (no or wrong boundary,
 * truncated base64, NUL bytes) is parsed the way GMime recovers from it.
 *
 * Thread-safe: GMime is initialised once; each call has its own parser.
 */
#ifndef PORTCULLIS_MIME_H
#define PORTCULLIS_MIME_H

#include <stddef.h>

#define MIME_DEPTH_MAX        64
#define MIME_PARTS_MAX        1000
#define MIME_NESTING_HINT_MAX 1000
#define MIME_LINE_MAX         65536

struct mime_part {
	const char *type;     /* "type/subtype", lower case */
	const char *filename; /* Content-Disposition filename, UTF-8, or NULL */
	const char *name;     /* Content-Type name, UTF-8, or NULL */
	int depth;            /* 0: the top-level part */
	int attachment;       /* Content-Disposition: attachment */
	void *obj;            /* GMime's object, for mime_part_text() */
};

struct mime_info {
	int parts;       /* leaf parts visited */
	int too_deep;    /* parts below MIME_DEPTH_MAX were not walked */
	int too_many;    /* more than MIME_PARTS_MAX parts */
	int too_complex; /* not parsed: too many Content-Type fields */
};

/* Return non-zero from the visitor to stop the walk. */
typedef int (*mime_visitor)(const struct mime_part *p, void *arg);

/* Walk the message data (len bytes; GMime works on a copy).  Returns 0
 * with info filled (too_complex: nothing was visited; a message GMime
 * cannot parse at all, e.g. an empty one, has no parts), or -1 with err
 * (reserved for resource errors). */
int mime_walk_mem(const void *data, size_t len, mime_visitor fn, void *arg, struct mime_info *info,
                  char *err, size_t errsize);

/* The same walk over message m (lib/message.h), whose parse is kept in m:
 * the first content check that walks a message parses it, the others walk
 * the same parse (one GMime parse per message, however many checks read
 * it); the parse is freed with the message.  Returns as mime_walk_mem, and
 * -1 with err when the message is not readable. */
struct message;
int mime_walk_message(struct message *m, mime_visitor fn, void *arg, struct mime_info *info,
                      char *err, size_t errsize);

/* The decoded text of a text/... part seen by a visitor: transfer encoding
 * (base64, quoted-printable) undone and converted from its charset to
 * UTF-8 (unknown charsets are kept as they are), at most max bytes.
 * Returns a malloc'd NUL-terminated copy (*len bytes, which may hold NULs)
 * or NULL when the part is not text or has no content. */
char *mime_part_text(const struct mime_part *p, size_t max, size_t *len);

#endif
