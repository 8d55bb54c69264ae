/* tests/unit/test_encode.c - unit tests for lib/encode.c
 *
 * Table-driven: known inputs with exact expected output for each encoder and
 * several dst sizes, then every hostile string (hostile.h) through every
 * encoder at every dst size, checking the invariants the sinks rely on.
 * dst is malloc'ed at exactly dstsize so ASan catches any overrun.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "encode.h"
#include "hostile.h"

enum enc_kind { ENC_REPLY, ENC_HEADER, ENC_LOG };

struct enc_case {
	enum enc_kind kind;
	const char *in;
	size_t dstsize;
	size_t maxlen; /* enc_log only */
	const char *want;
};

#define BIG 4096

static const struct enc_case enc_cases[] = {
	/* enc_reply */
	{ ENC_REPLY, "hello world", BIG, 0, "hello world" },
	{ ENC_REPLY, "", BIG, 0, "" },
	{ ENC_REPLY, NULL, BIG, 0, "" },
	{ ENC_REPLY, "100%", BIG, 0, "100%%" },
	{ ENC_REPLY, "100%s%n", BIG, 0, "100%%s%%n" },
	{ ENC_REPLY, "%%", BIG, 0, "%%%%" },
	{ ENC_REPLY, "a\r\n250 OK", BIG, 0, "a??250 OK" },
	{ ENC_REPLY, "tab\there", BIG, 0, "tab?here" },
	{ ENC_REPLY, "del\x7f", BIG, 0, "del?" },
	{ ENC_REPLY, "\xff\xfe\xc3\x28", BIG, 0,
	  "??"
	  "?(" },
	{ ENC_REPLY, "x\n\tInjected: 1", BIG, 0, "x??Injected: 1" },
	{ ENC_REPLY, "<user@example.org>", BIG, 0, "<user@example.org>" },
	{ ENC_REPLY, "~ !\"#", BIG, 0, "~ !\"#" },
	{ ENC_REPLY, "abc", 1, 0, "" },
	{ ENC_REPLY, "abc", 2, 0, "." },
	{ ENC_REPLY, "abc", 3, 0, ".." },
	{ ENC_REPLY, "abc", 4, 0, "abc" },
	{ ENC_REPLY, "abcd", 4, 0, "..." },
	{ ENC_REPLY, "abcd", 5, 0, "abcd" },
	{ ENC_REPLY, "abcdef", 5, 0, "a..." },
	{ ENC_REPLY, "a%b", 4, 0, "..." },
	{ ENC_REPLY, "a%", 4, 0, "a%%" },
	{ ENC_REPLY, "a%bc", 5, 0, "a..." },
	{ ENC_REPLY, "%%%%", 5, 0, "..." },
	{ ENC_REPLY, "%%%%", 9, 0, "%%%%%%%%" },
	{ ENC_REPLY, "ab%%", 6, 0, "ab..." },
	{ ENC_REPLY, "ab%%", 7, 0, "ab%%%%" },
	{ ENC_REPLY, "%", 2, 0, "." },
	{ ENC_REPLY, "%", 3, 0, "%%" },

	/* enc_header */
	{ ENC_HEADER, "hello world", BIG, 0, "hello world" },
	{ ENC_HEADER, "", BIG, 0, "" },
	{ ENC_HEADER, NULL, BIG, 0, "" },
	{ ENC_HEADER, "  a  b\t\tc \r\n d  ", BIG, 0, "a b c d" },
	{ ENC_HEADER, "x\n\tInjected: 1", BIG, 0, "x Injected: 1" },
	{ ENC_HEADER, "a\r\n250 OK", BIG, 0, "a 250 OK" },
	{ ENC_HEADER, "a\r\n\r\nBcc: x", BIG, 0, "a Bcc: x" },
	{ ENC_HEADER, " \t\r\n", BIG, 0, "" },
	{ ENC_HEADER, "a\x01z", BIG, 0, "a?z" },
	{ ENC_HEADER, "\x7f", BIG, 0, "?" },
	{ ENC_HEADER, "\xff\xfe\xc3\x28", BIG, 0,
	  "??"
	  "?(" },
	{ ENC_HEADER, "100%s", BIG, 0, "100%s" },
	{ ENC_HEADER, "a\vb\fc", BIG, 0, "a?b?c" },
	{ ENC_HEADER, "abc", 1, 0, "" },
	{ ENC_HEADER, "abc", 2, 0, "." },
	{ ENC_HEADER, "abcdef", 5, 0, "a..." },
	{ ENC_HEADER, "ab   ", 3, 0, "ab" },
	{ ENC_HEADER, "a b", 4, 0, "a b" },
	{ ENC_HEADER, "a b c", 5, 0, "a..." },

	/* enc_log */
	{ ENC_LOG, "hello world", BIG, 100, "hello world" },
	{ ENC_LOG, "", BIG, 100, "" },
	{ ENC_LOG, NULL, BIG, 100, "" },
	{ ENC_LOG, "a\r\nb", BIG, 100, "a\\x0d\\x0ab" },
	{ ENC_LOG, "back\\slash", BIG, 100, "back\\\\slash" },
	{ ENC_LOG, "\xff\xfe\xc3\x28", BIG, 100, "\\xff\\xfe\\xc3(" },
	{ ENC_LOG, "tab\t", BIG, 100, "tab\\x09" },
	{ ENC_LOG, "\x7f", BIG, 100, "\\x7f" },
	{ ENC_LOG, "\x1b[0m", BIG, 100, "\\x1b[0m" },
	{ ENC_LOG, "100%s%n", BIG, 100, "100%s%n" },
	{ ENC_LOG, "abcdef", BIG, 3, "abc..." },
	{ ENC_LOG, "abcdef", BIG, 6, "abcdef" },
	{ ENC_LOG, "abcdef", BIG, 0, "..." },
	{ ENC_LOG, "", BIG, 0, "" },
	{ ENC_LOG, "\r\r", BIG, 1, "\\x0d..." },
	{ ENC_LOG, "abc", 1, 100, "" },
	{ ENC_LOG, "abc", 2, 100, "." },
	{ ENC_LOG, "\x01\x02", 5, 100, "..." },
	{ ENC_LOG, "\x01", 5, 100, "\\x01" },
	{ ENC_LOG, "a\x01", 5, 100, "a..." },
	{ ENC_LOG, "\\\\\\", 6, 100, "\\\\..." },
};

/* Run one encoder into a malloc'ed dst of exactly dstsize bytes; returns
 * that buffer (caller frees). */
static char *run(enum enc_kind kind, const char *in, size_t dstsize, size_t maxlen)
{
	char *dst = malloc(dstsize);
	char *r = NULL;

	assert_non_null(dst);
	switch (kind) {
	case ENC_REPLY: r = enc_reply(dst, dstsize, in); break;
	case ENC_HEADER: r = enc_header(dst, dstsize, in); break;
	case ENC_LOG: r = enc_log(dst, dstsize, in, maxlen); break;
	}
	assert_ptr_equal(r, dst);
	assert_true(strnlen(dst, dstsize) < dstsize);
	return dst;
}

static void test_enc_table(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(enc_cases) / sizeof(enc_cases[0]); i++) {
		const struct enc_case *c = &enc_cases[i];
		char *got = run(c->kind, c->in, c->dstsize, c->maxlen);

		if (strcmp(got, c->want) != 0)
			print_message("case %zu (kind %d, dstsize %zu)\n", i, (int)c->kind,
			              c->dstsize);
		assert_string_equal(got, c->want);
		free(got);
	}
}

/* enc_reply: input beyond ENC_REPLY_MAX bytes is cut with "...". */
static void test_reply_limit(void **state)
{
	char in[ENC_REPLY_MAX + 2];
	char *got;

	(void)state;
	memset(in, 'a', sizeof(in) - 1);
	in[ENC_REPLY_MAX] = '\0';
	got = run(ENC_REPLY, in, BIG, 0);
	assert_string_equal(got, in);
	free(got);

	in[ENC_REPLY_MAX] = 'b';
	in[ENC_REPLY_MAX + 1] = '\0';
	got = run(ENC_REPLY, in, BIG, 0);
	assert_int_equal(strlen(got), ENC_REPLY_MAX + 3);
	assert_memory_equal(got, in, ENC_REPLY_MAX);
	assert_string_equal(got + ENC_REPLY_MAX, "...");
	free(got);

	/* all '%': doubled, still cut after ENC_REPLY_MAX input bytes */
	memset(in, '%', sizeof(in) - 1);
	got = run(ENC_REPLY, in, BIG, 0);
	assert_int_equal(strlen(got), 2 * ENC_REPLY_MAX + 3);
	free(got);
}

/* enc_header: output text beyond ENC_HEADER_MAX bytes is cut with "...";
 * white space does not count until text follows it. */
static void test_header_limit(void **state)
{
	char in[ENC_HEADER_MAX + 2 + 1000];
	char *got;

	(void)state;
	memset(in, 'a', ENC_HEADER_MAX);
	memset(in + ENC_HEADER_MAX, ' ', 1000);
	in[ENC_HEADER_MAX + 1000] = '\0';
	got = run(ENC_HEADER, in, BIG, 0);
	assert_int_equal(strlen(got), ENC_HEADER_MAX);
	free(got);

	in[ENC_HEADER_MAX + 1000] = 'b';
	in[ENC_HEADER_MAX + 1001] = '\0';
	got = run(ENC_HEADER, in, BIG, 0);
	assert_int_equal(strlen(got), ENC_HEADER_MAX + 3);
	assert_string_equal(got + ENC_HEADER_MAX, "...");
	free(got);

	/* long white space runs collapse, so long input may fit */
	memset(in, ' ', sizeof(in) - 1);
	in[0] = 'a';
	in[sizeof(in) - 2] = 'b';
	in[sizeof(in) - 1] = '\0';
	got = run(ENC_HEADER, in, BIG, 0);
	assert_string_equal(got, "a b");
	free(got);
}

/* enc_log: maxlen counts input bytes, escapes do not. */
static void test_log_limit(void **state)
{
	char *got;

	(void)state;
	got = run(ENC_LOG, "\x01\x02\x03\x04", BIG, 2);
	assert_string_equal(got, "\\x01\\x02...");
	free(got);
	got = run(ENC_LOG, "\x01\x02\x03\x04", BIG, 4);
	assert_string_equal(got, "\\x01\\x02\\x03\\x04");
	free(got);
	got = run(ENC_LOG, "abc", BIG, (size_t)-1);
	assert_string_equal(got, "abc");
	free(got);
}

/* A NULL dst or zero size writes nothing and does not crash. */
static void test_null_dst(void **state)
{
	char guard = 'G';

	(void)state;
	assert_null(enc_reply(NULL, 10, "x"));
	assert_null(enc_header(NULL, 10, "x"));
	assert_null(enc_log(NULL, 10, "x", 5));
	assert_ptr_equal(enc_reply(&guard, 0, "x"), &guard);
	assert_ptr_equal(enc_header(&guard, 0, "x"), &guard);
	assert_ptr_equal(enc_log(&guard, 0, "x", 5), &guard);
	assert_int_equal(guard, 'G');
}

/* Every run of '%' in s has even length. */
static int percent_runs_even(const char *s)
{
	size_t n = 0;

	for (;; s++) {
		if (*s == '%') {
			n++;
			continue;
		}
		if (n % 2 != 0)
			return 0;
		n = 0;
		if (*s == '\0')
			return 1;
	}
}

/* Sink invariants for one output. */
static void check_output(enum enc_kind kind, const char *name, const char *out, size_t dstsize,
                         size_t maxlen)
{
	size_t len = strlen(out), i;

	assert_true(len < dstsize);
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)out[i];

		if (c < 0x20 || c >= 0x7f) {
			print_message("%s: byte 0x%02x at %zu\n", name, c, i);
			fail();
		}
	}
	assert_null(strchr(out, '\r'));
	assert_null(strchr(out, '\n'));
	switch (kind) {
	case ENC_REPLY:
		if (!percent_runs_even(out)) {
			print_message("%s: odd run of %% (dstsize %zu)\n", name, dstsize);
			fail();
		}
		assert_true(len <= 2 * ENC_REPLY_MAX + 4);
		break;
	case ENC_HEADER:
		assert_true(len <= ENC_HEADER_MAX + 4);
		/* collapsed: no leading, trailing or double space */
		if (len > 0) {
			assert_true(out[0] != ' ');
			assert_true(out[len - 1] != ' ');
		}
		assert_null(strstr(out, "  "));
		break;
	case ENC_LOG: assert_true(len <= 4 * maxlen + 3); break;
	}
}

static void test_hostile_all_encoders(void **state)
{
	static const size_t sizes[] = { 1, 2, 3, 4, 5, 6, 64, 481, 963, 964, BIG };
	static const size_t maxlens[] = { 0, 1, 10, 100, 20000 };
	const struct hostile *h;
	size_t si, mi, runs = 0;

	(void)state;
	for (h = hostile_strings; h->name != NULL; h++) {
		assert_true(strlen(h->s) <= h->len);
		for (si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
			size_t n = sizes[si];
			char *out;

			out = run(ENC_REPLY, h->s, n, 0);
			check_output(ENC_REPLY, h->name, out, n, 0);
			free(out);
			out = run(ENC_HEADER, h->s, n, 0);
			check_output(ENC_HEADER, h->name, out, n, 0);
			free(out);
			runs += 2;
			for (mi = 0; mi < sizeof(maxlens) / sizeof(maxlens[0]); mi++) {
				out = run(ENC_LOG, h->s, n, maxlens[mi]);
				check_output(ENC_LOG, h->name, out, n, maxlens[mi]);
				free(out);
				runs++;
			}
		}
	}
	assert_true(runs > 0);
}

/* With room to spare, the untruncated output says exactly what was there:
 * enc_log is reversible for the bytes before the NUL. */
static void test_hostile_log_roundtrip(void **state)
{
	const struct hostile *h;

	(void)state;
	for (h = hostile_strings; h->name != NULL; h++) {
		size_t n = strlen(h->s), size = 4 * n + 4, i, j = 0;
		char *out = run(ENC_LOG, h->s, size, n);

		for (i = 0; out[i] != '\0'; j++) {
			unsigned char c;

			assert_true(j < n);
			if (out[i] == '\\' && out[i + 1] == '\\') {
				c = '\\';
				i += 2;
			} else if (out[i] == '\\') {
				unsigned v;

				assert_int_equal(out[i + 1], 'x');
				assert_int_equal(sscanf(out + i + 2, "%2x", &v), 1);
				c = (unsigned char)v;
				i += 4;
			} else {
				c = (unsigned char)out[i++];
			}
			assert_int_equal(c, (unsigned char)h->s[j]);
		}
		assert_int_equal(j, n);
		free(out);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_enc_table),
		cmocka_unit_test(test_reply_limit),
		cmocka_unit_test(test_header_limit),
		cmocka_unit_test(test_log_limit),
		cmocka_unit_test(test_null_dst),
		cmocka_unit_test(test_hostile_all_encoders),
		cmocka_unit_test(test_hostile_log_roundtrip),
	};

	hostile_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
