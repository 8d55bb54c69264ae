/* tests/unit/test_mime.c - lib/mime.c and the attachments list
 *
 * Covered: names decoded to exact UTF-8 (RFC 2047 KOI8-R and UTF-8 words in
 * Content-Type name, RFC 2231 charset and continuations in
 * Content-Disposition filename), both names reported, lower-case types,
 * parts inside message/rfc822 with their depth, a message without MIME,
 * the bounds (too deep, too many parts, too many Content-Type fields), a
 * visitor that stops the walk; and the built-in extension list of the
 * attachments check equal to config/dangerous-extensions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "message.h"
#include "mime.h"
#include "util.h"

extern const char attachments_builtin[];

struct seen {
	int n;
	char type[8][64], filename[8][64], name[8][64];
	int depth[8];
	int stop_after;
};

static int visit(const struct mime_part *p, void *arg)
{
	struct seen *s = arg;

	if (s->n < 8) {
		bcopy_str(s->type[s->n], sizeof(s->type[0]), p->type);
		bcopy_str(s->filename[s->n], sizeof(s->filename[0]),
		          p->filename ? p->filename : "-");
		bcopy_str(s->name[s->n], sizeof(s->name[0]), p->name ? p->name : "-");
		s->depth[s->n] = p->depth;
	}
	s->n++;
	return s->stop_after && s->n >= s->stop_after;
}

static void walk(const char *msg, struct seen *s, struct mime_info *info)
{
	char err[200];

	assert_int_equal(mime_walk_mem(msg, strlen(msg), visit, s, info, err, sizeof(err)), 0);
}

/* "счет.exe" in UTF-8 */
static const char SCHET[] = "\xd1\x81\xd1\x87\xd0\xb5\xd1\x82.exe";

static void test_names_decoded(void **state)
{
	static const char msg[] =
	    "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
	    "--b\r\nContent-Type: TEXT/Plain\r\n\r\nhi\r\n"
	    "--b\r\nContent-Type: application/octet-stream; name=\"=?koi8-r?B?097F1C5leGU=?=\"\r\n"
	    "Content-Disposition: attachment; filename*0*=koi8-r''%D3%DE%C5%D4; "
	    "filename*1=.exe\r\n\r\nx\r\n"
	    "--b\r\nContent-Type: application/pdf; "
	    "name=\"=?utf-8?Q?=D1=81=D1=87=D0=B5=D1=82.exe?=\"\r\n"
	    "Content-Disposition: inline; filename=\"harmless.pdf\"\r\n\r\ny\r\n"
	    "--b--\r\n";
	struct seen s = { 0 };
	struct mime_info info;

	(void)state;
	walk(msg, &s, &info);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.type[0], "text/plain");
	assert_string_equal(s.name[1], SCHET);
	assert_string_equal(s.filename[1], SCHET);
	assert_string_equal(s.filename[2], "harmless.pdf");
	assert_string_equal(s.name[2], SCHET);
	assert_int_equal(s.depth[1], 1);
}

/* mime_walk_message: one parse per message, shared by every walk; the
 * second walk sees the same parts (also a walk that stopped early), the
 * bounds are reported again, the parse goes with the message. */
static void test_shared_parse(void **state)
{
	static const char body[] =
	    "--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
	    "--b\r\nContent-Type: application/zip; name=a.zip\r\n\r\nx\r\n"
	    "--b\r\nContent-Type: image/png\r\n"
	    "Content-Disposition: attachment; filename=p.png\r\n\r\ny\r\n--b--\r\n";
	struct message *m = message_new(1 << 20, 1 << 20);
	struct seen a = { 0 }, b = { .stop_after = 1 }, c = { 0 };
	struct mime_info info;
	char err[200];
	void *parse;

	(void)state;
	message_header(m, "MIME-Version", "1.0");
	message_header(m, "Content-Type", "multipart/mixed; boundary=\"b\"");
	message_body(m, (const unsigned char *)"\r\n", 2);
	message_body(m, (const unsigned char *)body, strlen(body));
	assert_int_equal(mime_walk_message(m, visit, &a, &info, err, sizeof(err)), 0);
	assert_int_equal(a.n, 3);
	assert_int_equal(info.parts, 3);
	parse = m->mime;
	assert_non_null(parse);
	assert_int_equal(mime_walk_message(m, visit, &b, &info, err, sizeof(err)), 0);
	assert_ptr_equal(m->mime, parse); /* not parsed again */
	assert_int_equal(b.n, 1);
	assert_int_equal(info.parts, 1);
	assert_int_equal(mime_walk_message(m, visit, &c, &info, err, sizeof(err)), 0);
	assert_ptr_equal(m->mime, parse);
	assert_int_equal(c.n, 3);
	for (int i = 0; i < 3; i++) {
		assert_string_equal(a.type[i], c.type[i]);
		assert_string_equal(a.name[i], c.name[i]);
		assert_string_equal(a.filename[i], c.filename[i]);
	}
	assert_string_equal(a.type[1], "application/zip");
	assert_string_equal(a.name[1], "a.zip");
	assert_string_equal(a.filename[2], "p.png");
	message_free(m); /* frees the parse (ASan: no leak) */
}

static void test_nested_message(void **state)
{
	static const char msg[] =
	    "Content-Type: multipart/mixed; boundary=o\r\n\r\n"
	    "--o\r\nContent-Type: message/rfc822\r\n\r\n"
	    "Subject: inner\r\nContent-Type: multipart/mixed; boundary=i\r\n\r\n"
	    "--i\r\nContent-Type: application/x-msdownload; name=inner.exe\r\n\r\nz\r\n--i--\r\n"
	    "--o--\r\n";
	struct seen s = { 0 };
	struct mime_info info;

	(void)state;
	walk(msg, &s, &info);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.name[0], "inner.exe");
	assert_string_equal(s.type[0], "application/x-msdownload");
	assert_int_equal(s.depth[0], 3);
}

static void test_no_mime(void **state)
{
	struct seen s = { 0 };
	struct mime_info info;

	(void)state;
	walk("Subject: plain\r\n\r\nbody\r\n", &s, &info);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.type[0], "text/plain");
	s.n = 0;
	walk("", &s, &info);
	assert_int_equal(s.n, 0);
}

/* A multipart nested n deep. */
static char *nest(int n, const char *kind)
{
	size_t size = (size_t)n * 80 + 200, k = 0;
	char *m = xmalloc(size);

	k += (size_t)snprintf(m + k, size - k, "Content-Type: %s; boundary=\"b0\"\r\n\r\n", kind);
	for (int i = 0; i < n; i++)
		k += (size_t)snprintf(m + k, size - k,
		                      "--b%d\r\nContent-Type: %s; boundary=\"b%d\"\r\n\r\n", i,
		                      kind, i + 1);
	snprintf(m + k, size - k, "--b%d\r\nContent-Type: text/plain\r\n\r\nx\r\n", n);
	return m;
}

static void test_bounds(void **state)
{
	struct seen s = { 0 };
	struct mime_info info;
	char *m;
	size_t size = 1200 * 60, k = 0;

	(void)state;
	m = nest(100, "multipart/mixed");
	walk(m, &s, &info);
	assert_int_equal(info.too_deep, 1);
	assert_int_equal(s.n, 0);
	free(m);
	m = nest(2000, "multipart/mixed");
	s.n = 0;
	walk(m, &s, &info);
	assert_int_equal(info.too_complex, 1);
	assert_int_equal(s.n, 0);
	free(m);
	/* the type folded, so that "multipart/" never appears */
	m = nest(2000, "multipart\r\n /mixed");
	walk(m, &s, &info);
	assert_int_equal(info.too_complex, 1);
	free(m);
	m = xmalloc(size);
	k += (size_t)snprintf(m + k, size - k,
	                      "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n");
	for (int i = 0; i < 1100; i++)
		k += (size_t)snprintf(m + k, size - k, "--b\r\n\r\np%d\r\n", i);
	snprintf(m + k, size - k, "--b--\r\n");
	s.n = 0;
	walk(m, &s, &info);
	assert_int_equal(info.too_many, 1);
	assert_int_equal(s.n, MIME_PARTS_MAX);
	s.n = 0;
	s.stop_after = 3;
	walk(m, &s, &info);
	assert_int_equal(s.n, 3);
	free(m);
}

/* The built-in list is config/dangerous-extensions without comments. */
static void test_builtin_list(void **state)
{
	const char *top = getenv("top_srcdir");
	char path[1024], line[1024], words[4096] = "";
	FILE *fp;

	(void)state;
	snprintf(path, sizeof(path), "%s/config/dangerous-extensions", top ? top : "..");
	fp = fopen(path, "r");
	assert_non_null(fp);
	while (fgets(line, sizeof(line), fp)) {
		char *w;

		line[strcspn(line, "#")] = '\0';
		w = strtok(line, " \t\r\n");
		if (w)
			bappend(words, sizeof(words), "%s%s", words[0] ? " " : "", w);
	}
	fclose(fp);
	assert_string_equal(words, attachments_builtin);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names_decoded), cmocka_unit_test(test_nested_message),
		cmocka_unit_test(test_no_mime),       cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_builtin_list),  cmocka_unit_test(test_shared_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
