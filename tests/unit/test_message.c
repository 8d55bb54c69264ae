/* tests/unit/test_message.c - lib/message.c: the message kept for the
 * content checks
 *
 * Covered: header lines rebuilt with CRLF line ends (bare LF and CRLF in a
 * folded value), the empty line, body chunks kept as sent; a message that
 * stays in memory and one that moves to a memfd at memory_size (also with
 * memory_size 0), byte for byte the same through message_fd() and
 * message_data(); content.max_size: the kept bytes stop at max_size, total
 * counts on, oversize is set; NUL bytes and 1-byte chunks; a 10 MB header
 * value.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "message.h"

/* The kept bytes read back through the file descriptor. */
static unsigned char *read_fd(struct message *m, size_t *len)
{
	int fd = message_fd(m);
	unsigned char *buf = malloc(m->len + 1);
	size_t got = 0;
	ssize_t n;

	assert_true(fd >= 0);
	assert_non_null(buf);
	while ((n = read(fd, buf + got, m->len + 1 - got)) > 0)
		got += (size_t)n;
	*len = got;
	return buf;
}

static void expect_bytes(struct message *m, const void *want, size_t wantlen)
{
	size_t len;
	const unsigned char *d = message_data(m, &len);
	unsigned char *viafd;

	assert_non_null(d);
	assert_int_equal(len, wantlen);
	assert_memory_equal(d, want, wantlen);
	viafd = read_fd(m, &len);
	assert_int_equal(len, wantlen);
	assert_memory_equal(viafd, want, wantlen);
	free(viafd);
	/* message_data() again after message_fd() moved it to a memfd */
	d = message_data(m, &len);
	assert_non_null(d);
	assert_int_equal(len, wantlen);
	assert_memory_equal(d, want, wantlen);
}

static void build(struct message *m)
{
	message_header(m, "From", "a@example.net");
	message_header(m, "Subject", "folded\n\tline\r\n\tthree");
	message_eoh(m);
	message_body(m, (const unsigned char *)"body\r\n", 6);
	message_body(m, (const unsigned char *)"x\0y\r\n", 5);
}

static const char built[] = "From: a@example.net\r\n"
                            "Subject: folded\r\n\tline\r\n\tthree\r\n"
                            "\r\n"
                            "body\r\nx\0y\r\n";

static void test_in_memory(void **state)
{
	struct message *m = message_new(1 << 20, 1 << 24);

	(void)state;
	build(m);
	assert_int_equal(m->fd, -1);
	assert_int_equal(m->oversize, 0);
	assert_int_equal(m->total, sizeof(built) - 1);
	expect_bytes(m, built, sizeof(built) - 1);
	message_free(m);
}

static void test_spill_to_memfd(void **state)
{
	size_t sizes[] = { 0, 1, 10, 30 };

	(void)state;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct message *m = message_new(sizes[i], 1 << 24);

		build(m);
		assert_true(m->fd >= 0);
		assert_int_equal(m->error[0], '\0');
		expect_bytes(m, built, sizeof(built) - 1);
		message_free(m);
	}
}

static void test_max_size(void **state)
{
	struct message *m = message_new(8, 40);
	unsigned char one = 'z';

	(void)state;
	build(m);
	for (int i = 0; i < 1000; i++)
		message_body(m, &one, 1);
	assert_int_equal(m->oversize, 1);
	assert_int_equal(m->len, 40);
	assert_int_equal(m->total, sizeof(built) - 1 + 1000);
	expect_bytes(m, built, 40);
	message_free(m);
}

static void test_huge_header(void **state)
{
	size_t n = 10 * 1024 * 1024;
	char *v = malloc(n + 1);
	struct message *m = message_new(1 << 20, 64 << 20);
	size_t len;
	const unsigned char *d;

	(void)state;
	assert_non_null(v);
	memset(v, 'h', n);
	v[n] = '\0';
	message_header(m, "X-Long", v);
	message_eoh(m);
	d = message_data(m, &len);
	assert_non_null(d);
	assert_int_equal(len, 8 + n + 4);
	assert_memory_equal(d, "X-Long: hhh", 11);
	assert_memory_equal(d + len - 4, "\r\n\r\n", 4);
	free(v);
	message_free(m);
}

static void test_empty(void **state)
{
	struct message *m = message_new(100, 1000);
	size_t len = 99;

	(void)state;
	assert_non_null(message_data(m, &len));
	assert_int_equal(len, 0);
	assert_true(message_fd(m) >= 0);
	message_free(m);
	message_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_in_memory), cmocka_unit_test(test_spill_to_memfd),
		cmocka_unit_test(test_max_size),  cmocka_unit_test(test_huge_header),
		cmocka_unit_test(test_empty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
