/* tests/fuzz/fuzz_mime.c - libFuzzer target: the message kept by
 * lib/message.c and its MIME walk (lib/mime.c, GMime) on arbitrary bytes:
 * every part's type and names must be terminated strings that the reply
 * encoder takes, the decoded text of text parts (body_rules) is bounded
 * and terminated, and the walk stays within its bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "encode.h"
#include "message.h"
#include "mime.h"

static int visit(const struct mime_part *p, void *arg)
{
	char out[1024], *text;
	size_t len;

	(void)arg;
	if (p->depth > MIME_DEPTH_MAX + 1)
		__builtin_trap();
	enc_reply(out, sizeof(out), p->type);
	if (p->filename)
		enc_reply(out, sizeof(out), p->filename);
	if (p->name)
		enc_reply(out, sizeof(out), p->name);
	/* the decoding path of body_rules: transfer encoding and charset */
	text = mime_part_text(p, 1 << 16, &len);
	if (text && (len > 1 << 16 || text[len] != '\0'))
		__builtin_trap();
	free(text);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a small memory_size, so the memfd path runs too */
	struct message *m = message_new(size / 2, 1 << 20);
	struct mime_info info;
	const unsigned char *d;
	size_t len;
	char err[200];

	message_body(m, data, size);
	d = message_data(m, &len);
	if (d == NULL || len != size || memcmp(d, data, size) != 0)
		__builtin_trap();
	mime_walk_mem(d, len, visit, NULL, &info, err, sizeof(err));
	if (info.parts > MIME_PARTS_MAX)
		__builtin_trap();
	message_free(m);
	return 0;
}
