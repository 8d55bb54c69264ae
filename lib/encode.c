/* lib/encode.c - one encoder per sink for text that came from the network
 *
 * Contract in encode.h.  Each encoder turns every input byte into a short
 * "piece" (one byte, "%%" or "\xNN") and appends whole pieces to dst, so a
 * cut never splits an escape: a reply never ends in a lone '%', a log line
 * never in half a "\x".  When the output, or the input allowance, runs out
 * the last pieces are dropped as needed to make room for "...".  With a tiny
 * dst that mark itself is shortened ("", ".", "..").
 *
 * Reentrant, no allocation, no locale (<ctype.h> is avoided on purpose).
 * A NULL src encodes as "", a NULL dst or zero dstsize writes nothing.
 */
#include "encode.h"

#include <string.h>

#define CUT_MARK "..."
#define CUT_LEN  3

/* dst being filled with whole pieces. */
struct obuf {
	char *dst;
	size_t cap;  /* dstsize - 1: room for text, NUL excluded */
	size_t len;  /* text written so far */
	size_t mark; /* last piece boundary with room for CUT_MARK after it */
	int cut;     /* CUT_MARK written: ignore further pieces */
};

/* Start an empty buffer; dstsize must be > 0. */
static void ob_init(struct obuf *o, char *dst, size_t dstsize)
{
	o->dst = dst;
	o->cap = dstsize - 1;
	o->len = 0;
	o->mark = 0;
	o->cut = 0;
}

/* Drop back to the last boundary that leaves room for the cut mark and write
 * as much of the mark as fits. */
static void ob_cut(struct obuf *o)
{
	size_t n = CUT_LEN;

	if (o->cut)
		return;
	if (o->len + CUT_LEN > o->cap)
		o->len = o->mark;
	if (n > o->cap - o->len)
		n = o->cap - o->len;
	memcpy(o->dst + o->len, CUT_MARK, n);
	o->len += n;
	o->cut = 1;
}

/* Append one piece whole, or cut.  Returns 0, or -1 once cut. */
static int ob_put(struct obuf *o, const char *piece, size_t n)
{
	if (o->cut)
		return -1;
	if (n > o->cap - o->len) {
		ob_cut(o);
		return -1;
	}
	memcpy(o->dst + o->len, piece, n);
	o->len += n;
	if (o->len + CUT_LEN <= o->cap)
		o->mark = o->len;
	return 0;
}

/* Terminate; returns the start of dst. */
static char *ob_finish(struct obuf *o)
{
	o->dst[o->len] = '\0';
	return o->dst;
}

/* Printable ASCII, space included. */
static int is_print(unsigned char c)
{
	return c >= 0x20 && c < 0x7f;
}

/* SMTP reply text; see encode.h. */
char *enc_reply(char *dst, size_t dstsize, const char *src)
{
	struct obuf o;
	size_t i;

	if (dst == NULL || dstsize == 0)
		return dst;
	ob_init(&o, dst, dstsize);
	if (src == NULL)
		return ob_finish(&o);
	for (i = 0; src[i] != '\0'; i++) {
		unsigned char c = (unsigned char)src[i];
		char piece = is_print(c) ? (char)c : '?';
		int r;

		if (i == ENC_REPLY_MAX) {
			ob_cut(&o);
			break;
		}
		/* libmilter passes the text on as a format string */
		if (piece == '%')
			r = ob_put(&o, "%%", 2);
		else
			r = ob_put(&o, &piece, 1);
		if (r < 0)
			break;
	}
	return ob_finish(&o);
}

/* Header value; see encode.h.  Leading and trailing white space is dropped
 * too, since the MTA supplies the space after the colon. */
char *enc_header(char *dst, size_t dstsize, const char *src)
{
	struct obuf o;
	size_t i, out = 0;
	int space = 0;

	if (dst == NULL || dstsize == 0)
		return dst;
	ob_init(&o, dst, dstsize);
	if (src == NULL)
		return ob_finish(&o);
	for (i = 0; src[i] != '\0'; i++) {
		unsigned char c = (unsigned char)src[i];
		char piece;

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			/* written only if more text follows */
			space = out > 0;
			continue;
		}
		if (out + space + 1 > ENC_HEADER_MAX) {
			ob_cut(&o);
			break;
		}
		if (space && ob_put(&o, " ", 1) < 0)
			break;
		out += space;
		space = 0;
		piece = is_print(c) ? (char)c : '?';
		if (ob_put(&o, &piece, 1) < 0)
			break;
		out++;
	}
	return ob_finish(&o);
}

/* Log text; see encode.h. */
char *enc_log(char *dst, size_t dstsize, const char *src, size_t maxlen)
{
	static const char hex[] = "0123456789abcdef";
	struct obuf o;
	size_t i;

	if (dst == NULL || dstsize == 0)
		return dst;
	ob_init(&o, dst, dstsize);
	if (src == NULL)
		return ob_finish(&o);
	for (i = 0; src[i] != '\0'; i++) {
		unsigned char c = (unsigned char)src[i];
		char piece[4];
		size_t n;

		if (i == maxlen) {
			ob_cut(&o);
			break;
		}
		/* the common byte, with room to spare: what ob_put() would do */
		if (c != '\\' && is_print(c) && o.len + 1 + CUT_LEN <= o.cap) {
			o.dst[o.len++] = (char)c;
			o.mark = o.len;
			continue;
		}
		if (c == '\\') {
			piece[0] = '\\';
			piece[1] = '\\';
			n = 2;
		} else if (is_print(c)) {
			piece[0] = (char)c;
			n = 1;
		} else {
			piece[0] = '\\';
			piece[1] = 'x';
			piece[2] = hex[c >> 4];
			piece[3] = hex[c & 0x0f];
			n = 4;
		}
		if (ob_put(&o, piece, n) < 0)
			break;
	}
	return ob_finish(&o);
}
