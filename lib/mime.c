/* lib/mime.c - MIME structure and attachment names with GMime 3; see mime.h
 *
 * The walk is our own recursion over GMime's object tree, bounded by
 * MIME_DEPTH_MAX; GMime's parser recursion is bounded beforehand by
 * counting Content-Type fields (nesting_hint).  Parser options are loose
 * (RFC 2047 words inside parameters decoded, as mail clients do) so that a
 * name is matched the way the recipient's client would show it.
 */
#include "mime.h"
#include "message.h"
#include "util.h"

#include <gmime/gmime.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static pthread_once_t mime_once = PTHREAD_ONCE_INIT;

static void mime_init(void)
{
	g_mime_init();
}

struct walk {
	mime_visitor fn;
	void *arg;
	struct mime_info *info;
	int stop;
};

/* Case-insensitive count of needle in data (bounded by stop_at). */
static size_t count_ci(const unsigned char *data, size_t len, const char *needle, size_t stop_at)
{
	size_t n = strlen(needle), count = 0;

	for (size_t i = 0; i + n <= len && count <= stop_at; i++)
		if ((data[i] | 0x20) == (unsigned char)needle[0] &&
		    strncasecmp((const char *)data + i, needle, n) == 0) {
			count++;
			i += n - 1;
		}
	return count;
}

/* More Content-Type fields than MIME_NESTING_HINT_MAX: every level of
 * nesting needs one (a multipart/digest's parts need none, but the digest
 * itself does), and unlike the type names they cannot be hidden by
 * folding ("multipart\r\n /mixed"). */
static int nesting_hint(const unsigned char *data, size_t len)
{
	return count_ci(data, len, "content-type", MIME_NESTING_HINT_MAX) > MIME_NESTING_HINT_MAX;
}

static void walk(struct walk *w, GMimeObject *obj, int depth)
{
	if (obj == NULL || w->stop)
		return;
	if (depth > MIME_DEPTH_MAX) {
		w->info->too_deep = 1;
		return;
	}
	if (GMIME_IS_MULTIPART(obj)) {
		int n = g_mime_multipart_get_count((GMimeMultipart *)obj);

		for (int i = 0; i < n && !w->stop; i++)
			walk(w, g_mime_multipart_get_part((GMimeMultipart *)obj, i), depth + 1);
		return;
	}
	if (GMIME_IS_MESSAGE_PART(obj)) {
		GMimeMessage *m = g_mime_message_part_get_message((GMimeMessagePart *)obj);

		if (m)
			walk(w, g_mime_message_get_mime_part(m), depth + 1);
		return;
	}
	if (w->info->parts >= MIME_PARTS_MAX) {
		w->info->too_many = 1;
		w->stop = 1;
		return;
	}
	{
		GMimeContentType *ct = g_mime_object_get_content_type(obj);
		GMimeContentDisposition *cd = g_mime_object_get_content_disposition(obj);
		char *type = ct ? g_mime_content_type_get_mime_type(ct) : NULL;
		char lower[128];
		struct mime_part p = { 0 };

		str_lower(lower, sizeof(lower), type ? type : "text/plain");
		g_free(type);
		p.type = lower;
		p.filename = g_mime_object_get_content_disposition_parameter(obj, "filename");
		p.name = g_mime_object_get_content_type_parameter(obj, "name");
		p.depth = depth;
		p.attachment = cd && g_mime_content_disposition_is_attachment(cd);
		p.obj = obj;
		w->info->parts++;
		if (w->fn(&p, w->arg))
			w->stop = 1;
	}
}

static GMimeMessage *parse_stream(GMimeStream *stream)
{
	GMimeParserOptions *opts = g_mime_parser_options_new();
	GMimeParser *parser = g_mime_parser_new_with_stream(stream);
	GMimeMessage *msg;

	g_mime_parser_options_set_rfc2047_compliance_mode(opts, GMIME_RFC_COMPLIANCE_LOOSE);
	g_mime_parser_options_set_parameter_compliance_mode(opts, GMIME_RFC_COMPLIANCE_LOOSE);
	msg = g_mime_parser_construct_message(parser, opts);
	g_object_unref(parser);
	g_mime_parser_options_free(opts);
	return msg;
}

/* Walk a parsed message; msg NULL (e.g. empty: no parts a mail client
 * would show) has no parts. */
static void walk_msg(GMimeMessage *msg, mime_visitor fn, void *arg, struct mime_info *info)
{
	struct walk w = { fn, arg, info, 0 };

	if (msg)
		walk(&w, g_mime_message_get_mime_part(msg), 0);
}

/* A message's parse, kept in struct message. */
struct mime_cache {
	GMimeMessage *msg; /* NULL: no parts */
	int too_complex;
};

static void cache_free(void *p)
{
	struct mime_cache *c = p;

	if (c->msg)
		g_object_unref(c->msg);
	free(c);
}

static GByteArray *cut_lines(const unsigned char *data, size_t len);

/* The parse of data (len bytes): NULL + *too_complex, or a message (NULL
 * when GMime finds none). */
static GMimeMessage *parse_mem(const void *data, size_t len, int *too_complex)
{
	GMimeStream *stream;
	GMimeMessage *msg;

	*too_complex = nesting_hint(data, len);
	if (*too_complex)
		return NULL;
	pthread_once(&mime_once, mime_init);
	stream = g_mime_stream_mem_new_with_byte_array(cut_lines(data, len));
	msg = parse_stream(stream);
	g_object_unref(stream);
	return msg;
}

char *mime_part_text(const struct mime_part *p, size_t max, size_t *len)
{
	GMimeObject *obj = p->obj;
	GMimeDataWrapper *w;
	GMimeStream *mem, *filtered;
	const char *charset;
	GByteArray *ba;
	char *out;

	*len = 0;
	if (obj == NULL || !GMIME_IS_PART(obj) || strncmp(p->type, "text/", 5) != 0)
		return NULL;
	w = g_mime_part_get_content((GMimePart *)obj);
	if (w == NULL)
		return NULL;
	mem = g_mime_stream_mem_new();
	filtered = g_mime_stream_filter_new(mem);
	charset = g_mime_object_get_content_type_parameter(obj, "charset");
	if (charset && g_ascii_strcasecmp(charset, "utf-8") != 0 &&
	    g_ascii_strcasecmp(charset, "us-ascii") != 0) {
		GMimeFilter *cf = g_mime_filter_charset_new(charset, "UTF-8");

		if (cf) {
			g_mime_stream_filter_add((GMimeStreamFilter *)filtered, cf);
			g_object_unref(cf);
		}
	}
	/* write_to_stream undoes the transfer encoding */
	g_mime_data_wrapper_write_to_stream(w, filtered);
	g_mime_stream_flush(filtered);
	ba = g_mime_stream_mem_get_byte_array((GMimeStreamMem *)mem);
	*len = ba->len < max ? ba->len : max;
	out = xmalloc(*len + 1);
	if (*len > 0)
		memcpy(out, ba->data, *len);
	out[*len] = '\0';
	g_object_unref(filtered);
	g_object_unref(mem);
	return out;
}

/* A copy of the message for GMime with every line cut at MIME_LINE_MAX
 * bytes: RFC 5322 allows 998, names live in header lines, and GMime grows
 * its line buffers step by step (slow for multi-megabyte lines where
 * realloc cannot grow in place). */
static GByteArray *cut_lines(const unsigned char *data, size_t len)
{
	GByteArray *a = g_byte_array_sized_new((guint)(len < MIME_LINE_MAX ? len : len / 2 + 1));
	size_t i = 0;

	while (i < len) {
		const unsigned char *nl = memchr(data + i, '\n', len - i);
		size_t end = nl ? (size_t)(nl - data) + 1 : len;
		size_t n = end - i;

		if (n > MIME_LINE_MAX) {
			g_byte_array_append(a, data + i, MIME_LINE_MAX);
			if (nl)
				g_byte_array_append(a, (const guint8 *)"\r\n", 2);
		} else {
			g_byte_array_append(a, data + i, (guint)n);
		}
		i = end;
	}
	return a;
}

int mime_walk_mem(const void *data, size_t len, mime_visitor fn, void *arg, struct mime_info *info,
                  char *err, size_t errsize)
{
	GMimeMessage *msg;

	(void)err;
	(void)errsize;
	memset(info, 0, sizeof(*info));
	msg = parse_mem(data, len, &info->too_complex);
	walk_msg(msg, fn, arg, info);
	if (msg)
		g_object_unref(msg);
	return 0;
}

int mime_walk_message(struct message *m, mime_visitor fn, void *arg, struct mime_info *info,
                      char *err, size_t errsize)
{
	struct mime_cache *c = m->mime;

	memset(info, 0, sizeof(*info));
	if (c == NULL || m->mime_free != cache_free) {
		const unsigned char *data;
		size_t len;

		data = message_data(m, &len);
		if (data == NULL) {
			snprintf(err, errsize, "message not readable: %s", m->error);
			return -1;
		}
		c = xcalloc(1, sizeof(*c));
		c->msg = parse_mem(data, len, &c->too_complex);
		if (m->mime_free)
			m->mime_free(m->mime);
		m->mime = c;
		m->mime_free = cache_free;
	}
	info->too_complex = c->too_complex;
	walk_msg(c->msg, fn, arg, info);
	return 0;
}
