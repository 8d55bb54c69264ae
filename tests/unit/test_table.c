/* tests/unit/test_table.c - cidr:, pcre:, texthash: tables and maplists
 *
 * Table-driven: each case writes a temporary table file (under $TMPDIR or
 * /tmp), opens it, and runs a list of lookups or expects one error, which
 * must name "FILE:LINE: reason".  Also: table_parse_action() alone, spec
 * errors, line-length limits, hostile keys (10,000 bytes, CR/LF, every byte
 * value, catastrophic backtracking), maplist order and concurrent lookups.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "table.h"
#include "util.h"

#define END                                                                                        \
	{                                                                                          \
		NULL, 0, 0, 0, 0, NULL, 0                                                          \
	}
#define HOSTILE_BIG 10000

/* One lookup: mode 's' = string, 'i' = IP address given as text. */
struct lookup {
	const char *key;
	int mode;
	int found;
	enum table_action act;
	double score;
	const char *text;
	int line;
};

struct table_case {
	const char *name;
	const char *type;
	const char *content;
	struct lookup look[16];
};

/* Write content (len bytes, or strlen if 0) to a new temporary file and
 * put "type:path" into spec and the path into path. */
static void write_table(const char *type, const char *content, size_t len, char *spec,
                        size_t specsize, char *path, size_t pathsize)
{
	const char *dir = getenv("TMPDIR");
	int fd;

	if (dir == NULL || *dir == '\0')
		dir = "/tmp";
	snprintf(path, pathsize, "%s/pc-table-XXXXXX", dir);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	if (len == 0)
		len = strlen(content);
	assert_int_equal(write(fd, content, len), (ssize_t)len);
	close(fd);
	snprintf(spec, specsize, "%s:%s", type, path);
}

static struct table *open_case(const char *type, const char *content, size_t len, char *path,
                               size_t pathsize, char *err, size_t errsize)
{
	char spec[512];

	write_table(type, content, len, spec, sizeof(spec), path, pathsize);
	return table_open(spec, err, errsize);
}

static const char *act_name(enum table_action a)
{
	static const char *const n[] = { "DUNNO", "OK", "REJECT", "DEFER", "SCORE" };

	return (unsigned)a < 5 ? n[a] : "?";
}

/* Run one lookup against t and compare with the expectation. */
static void check_lookup(const char *name, const struct table *t, const char *path,
                         const struct lookup *l)
{
	struct table_result r;
	int found;

	memset(&r, 0, sizeof(r));
	if (l->mode == 'i') {
		struct ipaddr ip;

		if (ip_parse(l->key, &ip) < 0)
			fail_msg("%s: bad test address %s", name, l->key);
		found = table_lookup_ip(t, &ip, &r);
	} else {
		found = table_lookup_str(t, l->key, &r);
	}
	if (found != l->found)
		fail_msg("%s: key '%.60s': found %d, expected %d (got %s line %d)", name, l->key,
		         found, l->found, act_name(r.action), r.line);
	if (!found)
		return;
	if (r.action != l->act || r.line != l->line || r.score != l->score)
		fail_msg("%s: key '%.60s': got %s %g line %d, expected %s %g line %d", name, l->key,
		         act_name(r.action), r.score, r.line, act_name(l->act), l->score, l->line);
	if ((r.text == NULL) != (l->text == NULL) || (r.text && strcmp(r.text, l->text) != 0))
		fail_msg("%s: key '%.60s': text '%s', expected '%s'", name, l->key,
		         r.text ? r.text : "(null)", l->text ? l->text : "(null)");
	if (r.file == NULL || strcmp(r.file, path) != 0)
		fail_msg("%s: result file '%s', expected '%s'", name, r.file ? r.file : "(null)",
		         path);
}

static void run_cases(const struct table_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct table_case *c = &cases[i];
		char path[512], err[512] = "";
		struct table *t =
		    open_case(c->type, c->content, 0, path, sizeof(path), err, sizeof(err));

		if (t == NULL)
			fail_msg("%s: open failed: %s", c->name, err);
		for (const struct lookup *l = c->look; l->key; l++)
			check_lookup(c->name, t, path, l);
		table_free(t);
		unlink(path);
	}
}

/* ---- lookups ---- */

static const struct table_case cidr_cases[] = {
	{ "cidr basic",
	  "cidr",
	  "# networks\n"                     /* 1 */
	  "192.0.2.0/24\tREJECT bad net\n"   /* 2 */
	  "192.0.2.128/25\tOK\n"             /* 3: shadowed by line 2 */
	  "10.0.0.1\tSCORE 2.5 ten\n"        /* 4: bare = /32 */
	  "2001:db8::/32\tdefer try later\n" /* 5 */
	  "[2001:db8:1::]/48 OK\n"           /* 6: shadowed by line 5 */
	  "::1\tdunno\n"                     /* 7: bare = /128 */
	  "0.0.0.0/0\tSCORE -1\n",           /* 8 */
	  {
	      { "192.0.2.200", 'i', 1, TA_REJECT, 0, "bad net", 2 },
	      { "192.0.2.0", 'i', 1, TA_REJECT, 0, "bad net", 2 },
	      { "10.0.0.1", 'i', 1, TA_SCORE, 2.5, "ten", 4 },
	      { "10.0.0.2", 'i', 1, TA_SCORE, -1, NULL, 8 },
	      { "2001:db8:1::5", 'i', 1, TA_DEFER, 0, "try later", 5 },
	      { "::1", 'i', 1, TA_DUNNO, 0, NULL, 7 },
	      { "::2", 'i', 0, 0, 0, NULL, 0 },
	      { "::ffff:192.0.2.7", 'i', 1, TA_REJECT, 0, "bad net", 2 },
	      { "::ffff:10.0.0.1", 'i', 1, TA_SCORE, 2.5, "ten", 4 },
	      { "2001:db9::1", 'i', 0, 0, 0, NULL, 0 },
	      /* cidr: tables never match strings */
	      { "192.0.2.1", 's', 0, 0, 0, NULL, 0 },
	      END,
	  } },
	{ "cidr order",
	  "cidr",
	  "10.1.2.0/24 OK\n"
	  "10.0.0.0/8 REJECT wide\n"
	  "10.1.0.0/16 DEFER never\n"
	  "2001:db8:0:1::/64 SCORE 3\n"
	  "2001:db8::/32 SCORE 1\n",
	  {
	      { "10.1.2.3", 'i', 1, TA_OK, 0, NULL, 1 },
	      { "10.1.3.3", 'i', 1, TA_REJECT, 0, "wide", 2 },
	      { "11.0.0.1", 'i', 0, 0, 0, NULL, 0 },
	      { "2001:db8:0:1::99", 'i', 1, TA_SCORE, 3, NULL, 4 },
	      { "2001:db8:0:2::99", 'i', 1, TA_SCORE, 1, NULL, 5 },
	      END,
	  } },
	{ "cidr empty",
	  "cidr",
	  "# nothing here\n\n",
	  {
	      { "192.0.2.1", 'i', 0, 0, 0, NULL, 0 },
	      END,
	  } },
};

static const struct table_case pcre_cases[] = {
	{ "pcre flags",
	  "pcre",
	  "/^mail\\.example\\.com$/\tOK\n"                /* 1: default caseless */
	  "/^MiXeD\\.example$/i\tREJECT case sensitive\n" /* 2 */
	  "/^[0-9.]+$/\tSCORE 1.5 numeric\n"              /* 3 */
	  "/a\\/b/\tDEFER slash\n"                        /* 4: escaped delimiter */
	  "/^ x y z \\. example $/x SCORE 3 extended\n"   /* 5 */
	  "/^line2$/m\tDUNNO\n"                           /* 6 */
	  "|^pipe\\|delim$|\tOK\n"                        /* 7: other delimiter */
	  "/^dot.all$/s REJECT dotall\n"                  /* 8 */
	  "/evil/\tREJECT first\n"                        /* 9 */
	  "/evil/\tOK\n"                                  /* 10: shadowed */
	  "!/\\./\tREJECT no dot in name\n",              /* 11: negated */
	  {
	      { "MAIL.EXAMPLE.COM", 's', 1, TA_OK, 0, NULL, 1 },
	      { "MiXeD.example", 's', 1, TA_REJECT, 0, "case sensitive", 2 },
	      { "mixed.example", 's', 0, 0, 0, NULL, 0 },
	      { "192.0.2.1", 'i', 1, TA_SCORE, 1.5, "numeric", 3 },
	      { "x.a/b", 's', 1, TA_DEFER, 0, "slash", 4 },
	      { "XYZ.example", 's', 1, TA_SCORE, 3, "extended", 5 },
	      { "first.example\nline2", 's', 1, TA_DUNNO, 0, NULL, 6 },
	      { "pipe|delim", 's', 1, TA_OK, 0, NULL, 7 },
	      { "dot\nall", 's', 1, TA_REJECT, 0, "dotall", 8 },
	      { "www.evil.example", 's', 1, TA_REJECT, 0, "first", 9 },
	      { "localhost", 's', 1, TA_REJECT, 0, "no dot in name", 11 },
	      { "2001:db8::1", 'i', 1, TA_REJECT, 0, "no dot in name", 11 },
	      { "host.example.org", 's', 0, 0, 0, NULL, 0 },
	      END,
	  } },
	{ "pcre negation and multiline off",
	  "pcre",
	  "!/^[a-z0-9.-]+$/ REJECT bad characters\n" /* 1 */
	  "/^line2$/ OK\n",                          /* 2: no m flag */
	  {
	      { "good-name.example", 's', 0, 0, 0, NULL, 0 },
	      { "bad_name.example", 's', 1, TA_REJECT, 0, "bad characters", 1 },
	      { "BAD-CASE.example", 's', 0, 0, 0, NULL, 0 },
	      { "line1\nline2", 's', 1, TA_REJECT, 0, "bad characters", 1 },
	      END,
	  } },
};

static const struct table_case hash_cases[] = {
	{ "texthash",
	  "texthash",
	  "Example.COM\tOK\n"              /* 1 */
	  "spam.example\tREJECT go away\n" /* 2 */
	  "SPAM.example\tOK\n"             /* 3: duplicate, ignored */
	  "score.example\tscore -2.5\n"    /* 4 */
	  "defer.example\tDEFER\n"         /* 5 */
	  "192.0.2.1\tREJECT by ip\n"      /* 6 */
	  "2001:db8::1\tSCORE 4 v6\n"      /* 7 */
	  "dunno.example\tDunno\n",        /* 8 */
	  {
	      { "example.com", 's', 1, TA_OK, 0, NULL, 1 },
	      { "EXAMPLE.com", 's', 1, TA_OK, 0, NULL, 1 },
	      { "spam.example", 's', 1, TA_REJECT, 0, "go away", 2 },
	      { "Spam.Example", 's', 1, TA_REJECT, 0, "go away", 2 },
	      { "score.example", 's', 1, TA_SCORE, -2.5, NULL, 4 },
	      { "defer.example", 's', 1, TA_DEFER, 0, NULL, 5 },
	      { "dunno.example", 's', 1, TA_DUNNO, 0, NULL, 8 },
	      { "192.0.2.1", 'i', 1, TA_REJECT, 0, "by ip", 6 },
	      { "192.0.2.1", 's', 1, TA_REJECT, 0, "by ip", 6 },
	      { "2001:db8::1", 'i', 1, TA_SCORE, 4, "v6", 7 },
	      { "192.0.2.2", 'i', 0, 0, 0, NULL, 0 },
	      { "example", 's', 0, 0, 0, NULL, 0 },
	      { "example.com.", 's', 0, 0, 0, NULL, 0 },
	      { "xample.com", 's', 0, 0, 0, NULL, 0 },
	      { "", 's', 0, 0, 0, NULL, 0 },
	      END,
	  } },
	{ "comments and continuations",
	  "texthash",
	  "# header comment\n"             /* 1 */
	  "\n"                             /* 2 */
	  "spam.example\tREJECT this is\n" /* 3 */
	  "\ta long text\n"                /* 4 */
	  "   # a comment between\n"       /* 5 */
	  "  continued again  \n"          /* 6 */
	  "next.example\tOK\r\n"           /* 7: CRLF */
	  "   \t \n"                       /* 8: blank */
	  "crlf.example REJECT\r\n"        /* 9 */
	  " \r\n"                          /* 10 */
	  "  with text\r\n"                /* 11 */
	  "last.example\n"                 /* 12 */
	  "  SCORE 1.5",                   /* 13: no final newline */
	  {
	      { "spam.example", 's', 1, TA_REJECT, 0, "this is a long text continued again", 3 },
	      { "next.example", 's', 1, TA_OK, 0, NULL, 7 },
	      { "crlf.example", 's', 1, TA_REJECT, 0, "with text", 9 },
	      { "last.example", 's', 1, TA_SCORE, 1.5, NULL, 12 },
	      { "# header comment", 's', 0, 0, 0, NULL, 0 },
	      END,
	  } },
};

static void test_cidr(void **state)
{
	(void)state;
	run_cases(cidr_cases, ARRAY_SIZE(cidr_cases));
}

static void test_pcre(void **state)
{
	(void)state;
	run_cases(pcre_cases, ARRAY_SIZE(pcre_cases));
}

static void test_texthash(void **state)
{
	(void)state;
	run_cases(hash_cases, ARRAY_SIZE(hash_cases));
}

/* ---- broken files ---- */

struct error_case {
	const char *type;
	const char *content;
	size_t len;       /* 0 = strlen(content) */
	const char *want; /* expected error after "FILE" */
};

static const struct error_case error_cases[] = {
	{ "texthash", "a OK\nb FOO\n", 0,
	  ":2: unknown action 'FOO' (expected OK, DUNNO, REJECT, DEFER or SCORE)" },
	{ "texthash", "b REJECTED\n", 0, ":1: unknown action 'REJECTED'" },
	{ "texthash", "\n# c\nb SCORE\n", 0, ":3: SCORE needs a number" },
	{ "texthash", "b SCORE abc\n", 0, ":1: SCORE needs a number, got 'abc'" },
	{ "texthash", "b SCORE 1.5x\n", 0, ":1: SCORE needs a number, got '1.5x'" },
	{ "texthash", "b SCORE nan\n", 0, ":1: SCORE needs a number, got 'nan'" },
	{ "texthash", "b SCORE -inf\n", 0, ":1: SCORE needs a number, got '-inf'" },
	{ "texthash", "b SCORE 1e999\n", 0, ":1: SCORE needs a number, got '1e999'" },
	{ "texthash", "b SCORE 1000.5\n", 0, ":1: score 1000.5 out of range (-1000..1000)" },
	{ "texthash", "b SCORE -1001 x\n", 0, ":1: score -1001 out of range" },
	{ "texthash", "b OK thanks\n", 0, ":1: OK takes no text" },
	{ "texthash", "b DUNNO x\n", 0, ":1: DUNNO takes no text" },
	{ "texthash", "a OK\nb\n", 0, ":2: missing action" },
	{ "texthash", "  leading OK\n", 0, ":1: continuation line without a line to continue" },
	{ "texthash", "a OK\nb\n  FOO\nc OK\n", 0, ":2: unknown action 'FOO'" },
	{ "texthash", "a OK\nb OK\0\n", 11, ":2: NUL byte in line" },
	{ "cidr", "10.0.0.0/8 OK\n10.0.0.1/8 OK\n", 0,
	  ":2: non-null host address bits in '10.0.0.1/8', perhaps you mean 10.0.0.0/8" },
	{ "cidr", "2001:db8::1/32 OK\n", 0,
	  ":1: non-null host address bits in '2001:db8::1/32', perhaps you mean 2001:db8::/32" },
	{ "cidr", "192.0.2.1/31 OK\n", 0,
	  ":1: non-null host address bits in '192.0.2.1/31', perhaps you mean 192.0.2.0/31" },
	{ "cidr", "300.0.0.0/8 OK\n", 0, ":1: bad network '300.0.0.0/8'" },
	{ "cidr", "10.0.0.0/33 OK\n", 0, ":1: bad network '10.0.0.0/33'" },
	{ "cidr", "# c\nexample.com OK\n", 0, ":2: bad network 'example.com'" },
	{ "cidr", "[2001:db8::/32 OK\n", 0, ":1: bad network '[2001:db8::/32'" },
	{ "cidr", "10.0.0.0/8\n", 0, ":1: missing action" },
	{ "cidr", "10.0.0.0/8 FOO\n", 0, ":1: unknown action 'FOO'" },
	{ "pcre", "/ok/ OK\n/abc(/ OK\n", 0,
	  ":2: regex error at offset 4: missing closing parenthesis" },
	{ "pcre", "/abc OK\n", 0, ":1: missing closing '/' of the regex" },
	{ "pcre", "/abc\\/ OK\n", 0, ":1: missing closing '/' of the regex" },
	{ "pcre", "/abc/q OK\n", 0, ":1: unknown regex flag 'q'" },
	{ "pcre", "/abc/REJECT\n", 0, ":1: unknown regex flag 'R'" },
	{ "pcre", "abc OK\n", 0, ":1: expected /regex/" },
	{ "pcre", "if /x/\n/y/ OK\nendif\n", 0, ":1: if/endif is not supported" },
	{ "pcre", "/abc/\n", 0, ":1: missing action" },
	{ "pcre", "/(*UTF)abc/ OK\n", 0, ":1: regex error at offset" },
	{ "pcre", "/x/ BOUNCE\n", 0, ":1: unknown action 'BOUNCE'" },
};

static void test_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(error_cases); i++) {
		const struct error_case *c = &error_cases[i];
		char path[512], err[512] = "", want[1024];
		struct table *t =
		    open_case(c->type, c->content, c->len, path, sizeof(path), err, sizeof(err));

		snprintf(want, sizeof(want), "%s%s", path, c->want);
		if (t != NULL)
			fail_msg("error case %zu (%s): opened, expected '%s'", i, c->type, want);
		if (strncmp(err, want, strlen(want)) != 0)
			fail_msg("error case %zu: got '%s', expected '%s'", i, err, want);
		unlink(path);
	}
}

/* Long lines: exactly TABLE_LINE_MAX (4096) bytes is fine, also with CRLF;
 * one more is an error naming the line; so is a joined line over the limit. */
static void test_long_lines(void **state)
{
	char *buf = xmalloc(20000), *key = xmalloc(5000);
	char path[512], err[512] = "", want[600];
	struct table_result r;
	struct table *t;
	size_t n;

	(void)state;
	memset(key, 'k', 4093);
	key[4093] = '\0';
	/* 4093 + " OK" = 4096 bytes */
	n = (size_t)snprintf(buf, 20000, "# c\n%s OK\r\nz%s OK\n", key, key);
	t = open_case("texthash", buf, n, path, sizeof(path), err, sizeof(err));
	snprintf(want, sizeof(want), "%s:3: line too long (more than 4096 bytes)", path);
	assert_null(t);
	assert_string_equal(err, want);
	unlink(path);

	n = (size_t)snprintf(buf, 20000, "# c\n%s OK\r\n", key);
	t = open_case("texthash", buf, n, path, sizeof(path), err, sizeof(err));
	assert_non_null(t);
	assert_int_equal(table_lookup_str(t, key, &r), 1);
	assert_int_equal(r.action, TA_OK);
	assert_int_equal(r.line, 2);
	table_free(t);
	unlink(path);

	/* three 2000-byte continuation pieces */
	memset(key, 'x', 2000);
	key[2000] = '\0';
	n = (size_t)snprintf(buf, 20000, "a REJECT %s\n %s\n %s\n", key, key, key);
	t = open_case("texthash", buf, n, path, sizeof(path), err, sizeof(err));
	snprintf(want, sizeof(want),
	         "%s:3: line too long (more than 4096 bytes with continuations)", path);
	assert_null(t);
	assert_string_equal(err, want);
	unlink(path);
	free(buf);
	free(key);
}

/* Spec errors name the spec, not a line. */
static void test_spec_errors(void **state)
{
	static const struct {
		const char *spec;
		const char *want;
	} cases[] = {
		{ "nosuch:/tmp/x",
		  "nosuch:/tmp/x: unknown table type 'nosuch' (expected cidr, pcre or texthash)" },
		{ "hash:/etc/postfix/access",
		  "hash:/etc/postfix/access: unknown table type 'hash'" },
		{ "cidr", "cidr: missing table type" },
		{ "/etc/passwd", "/etc/passwd: missing table type" },
		{ "cidr:", "cidr:: missing file name" },
		{ "cidr:/nonexistent/portcullis/x",
		  "cidr:/nonexistent/portcullis/x: No such file or directory" },
		{ "pcre:/nonexistent/portcullis/x",
		  "pcre:/nonexistent/portcullis/x: No such file or directory" },
		{ "texthash:/", "texthash:/: Is a directory" },
	};
	char err[512];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		err[0] = '\0';
		if (table_open(cases[i].spec, err, sizeof(err)) != NULL)
			fail_msg("%s: opened", cases[i].spec);
		if (strncmp(err, cases[i].want, strlen(cases[i].want)) != 0)
			fail_msg("%s: got '%s', expected '%s'", cases[i].spec, err, cases[i].want);
	}
	/* a tiny err buffer is cut, not overrun; NULL err is allowed */
	assert_null(table_open("nosuch:/x", err, 5));
	assert_string_equal(err, "nosu");
	assert_null(table_open("nosuch:/x", NULL, 0));
}

/* table_parse_action on its own. */
static void test_parse_action(void **state)
{
	static const struct {
		const char *s;
		int rc;
		enum table_action act;
		double score;
		const char *text; /* or the error when rc < 0 */
	} cases[] = {
		{ "OK", 0, TA_OK, 0, NULL },
		{ "ok", 0, TA_OK, 0, NULL },
		{ "  Dunno  ", 0, TA_DUNNO, 0, NULL },
		{ "REJECT", 0, TA_REJECT, 0, NULL },
		{ "reject go away", 0, TA_REJECT, 0, "go away" },
		{ "REJECT\t  go  away", 0, TA_REJECT, 0, "go  away" },
		{ "DEFER", 0, TA_DEFER, 0, NULL },
		{ "defer try later", 0, TA_DEFER, 0, "try later" },
		{ "SCORE 2.5", 0, TA_SCORE, 2.5, NULL },
		{ "score -3 looks bad", 0, TA_SCORE, -3, "looks bad" },
		{ "SCORE +1e2", 0, TA_SCORE, 100, NULL },
		{ "SCORE 1000", 0, TA_SCORE, 1000, NULL },
		{ "SCORE -1000", 0, TA_SCORE, -1000, NULL },
		{ "SCORE 0", 0, TA_SCORE, 0, NULL },
		{ "", -1, 0, 0, "missing action" },
		{ "   ", -1, 0, 0, "missing action" },
		{ "OKAY", -1, 0, 0,
		  "unknown action 'OKAY' (expected OK, DUNNO, REJECT, DEFER or SCORE)" },
		{ "550 go away", -1, 0, 0, "unknown action '550'" },
		{ "OK then", -1, 0, 0, "OK takes no text" },
		{ "SCORE", -1, 0, 0, "SCORE needs a number" },
		{ "SCORE   ", -1, 0, 0, "SCORE needs a number" },
		{ "SCORE 1..2", -1, 0, 0, "SCORE needs a number, got '1..2'" },
		{ "SCORE inf", -1, 0, 0, "SCORE needs a number, got 'inf'" },
		{ "SCORE 1000.001", -1, 0, 0, "score 1000.001 out of range (-1000..1000)" },
		{ "SCORE 99999999999999999999999999999999999999999999999999999999999999999999", -1,
		  0, 0, "SCORE needs a number, got '99999999999999999999...'" },
	};
	char err[256];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		enum table_action act;
		double score;
		const char *text;
		int rc;

		err[0] = '\0';
		rc = table_parse_action(cases[i].s, &act, &score, &text, err, sizeof(err));
		if (rc != cases[i].rc)
			fail_msg("'%s': rc %d (%s)", cases[i].s, rc, err);
		if (rc < 0) {
			if (strncmp(err, cases[i].text, strlen(cases[i].text)) != 0)
				fail_msg("'%s': error '%s', expected '%s'", cases[i].s, err,
				         cases[i].text);
			continue;
		}
		if (act != cases[i].act || score != cases[i].score)
			fail_msg("'%s': got %s %g", cases[i].s, act_name(act), score);
		if ((text == NULL) != (cases[i].text == NULL) ||
		    (text && strcmp(text, cases[i].text) != 0))
			fail_msg("'%s': text '%s'", cases[i].s, text ? text : "(null)");
		/* text points into the argument */
		if (text && (text < cases[i].s || text > cases[i].s + strlen(cases[i].s)))
			fail_msg("'%s': text not inside s", cases[i].s);
	}
}

/* ---- maplists ---- */

static void test_maplist(void **state)
{
	char pa[512], pb[512], pc[512], err[512];
	struct table *a, *b, *c, *ab[2], *ba[2], *ip[2];
	struct maplist mab = { 2, ab }, mba = { 2, ba }, mip = { 2, ip };
	struct maplist empty = { 0, NULL };
	struct table_result r;
	struct ipaddr addr;

	(void)state;
	a = open_case("texthash",
	              "a.example REJECT from A\n"
	              "shared.example OK\n"
	              "stop.example DUNNO\n"
	              "192.0.2.9 SCORE 7\n",
	              0, pa, sizeof(pa), err, sizeof(err));
	b = open_case("pcre",
	              "/shared/ REJECT from B\n"
	              "/^b\\./ SCORE 1\n"
	              "/stop/ REJECT never\n",
	              0, pb, sizeof(pb), err, sizeof(err));
	c = open_case("cidr", "192.0.2.0/24 DEFER from C\n", 0, pc, sizeof(pc), err, sizeof(err));
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(c);
	ab[0] = a, ab[1] = b;
	ba[0] = b, ba[1] = a;
	ip[0] = c, ip[1] = a;

	assert_int_equal(maplist_lookup_str(&mab, "shared.example", &r), 1);
	assert_int_equal(r.action, TA_OK);
	assert_string_equal(r.file, pa);
	assert_int_equal(r.line, 2);

	assert_int_equal(maplist_lookup_str(&mba, "shared.example", &r), 1);
	assert_int_equal(r.action, TA_REJECT);
	assert_string_equal(r.text, "from B");
	assert_string_equal(r.file, pb);
	assert_int_equal(r.line, 1);

	/* falls through to the second table */
	assert_int_equal(maplist_lookup_str(&mab, "b.example", &r), 1);
	assert_int_equal(r.action, TA_SCORE);
	assert_true(r.score == 1);
	assert_string_equal(r.file, pb);

	/* DUNNO is an answer: it stops the search */
	assert_int_equal(maplist_lookup_str(&mab, "stop.example", &r), 1);
	assert_int_equal(r.action, TA_DUNNO);
	assert_string_equal(r.file, pa);

	assert_int_equal(maplist_lookup_str(&mab, "nowhere.example", &r), 0);
	assert_int_equal(maplist_lookup_str(&empty, "a.example", &r), 0);
	assert_int_equal(maplist_lookup_str(NULL, "a.example", &r), 0);

	/* IP: cidr first, then texthash by text form */
	assert_int_equal(ip_parse("192.0.2.9", &addr), 0);
	assert_int_equal(maplist_lookup_ip(&mip, &addr, &r), 1);
	assert_int_equal(r.action, TA_DEFER);
	assert_string_equal(r.file, pc);
	ip[0] = a, ip[1] = c;
	assert_int_equal(maplist_lookup_ip(&mip, &addr, &r), 1);
	assert_int_equal(r.action, TA_SCORE);
	assert_true(r.score == 7);
	assert_int_equal(ip_parse("198.51.100.1", &addr), 0);
	assert_int_equal(maplist_lookup_ip(&mip, &addr, &r), 0);
	assert_int_equal(maplist_lookup_ip(&empty, &addr, &r), 0);

	/* cidr: never matches a string even in a list */
	ip[0] = c, ip[1] = a;
	assert_int_equal(maplist_lookup_str(&mip, "192.0.2.1", &r), 0);

	assert_string_equal(table_spec(a) + strlen("texthash:"), pa);
	assert_memory_equal(table_spec(b), "pcre:", 5);
	table_free(a);
	table_free(b);
	table_free(c);
	table_free(NULL);
	unlink(pa);
	unlink(pb);
	unlink(pc);
}

/* ---- hostile keys ---- */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A 10,000-byte key through every type, including a regex that backtracks
 * catastrophically: the match limit stops it, and an aborted match is
 * neither a match nor (for a negated entry) a non-match. */
static void test_hostile_long_key(void **state)
{
	char pp[512], ph[512], err[512];
	char *key = xmalloc(10002);
	struct table *p, *h;
	struct table_result r;
	double t0;

	(void)state;
	memset(key, 'a', 10000);
	key[10000] = '!';
	key[10001] = '\0';
	p = open_case("pcre",
	              "/^(a+)+$/ REJECT backtrack\n"  /* 1: hits the match limit */
	              "!/^(a|aa)+$/ OK\n"             /* 2: must not fire either */
	              "/^(?:a|b)+!$/ SCORE 2 long\n", /* 3: 10,000 iterations */
	              0, pp, sizeof(pp), err, sizeof(err));
	assert_non_null(p);
	h = open_case("texthash", "aaaa OK\n", 0, ph, sizeof(ph), err, sizeof(err));
	assert_non_null(h);

	t0 = now_s();
	assert_int_equal(table_lookup_str(p, key, &r), 1);
	assert_int_equal(r.action, TA_SCORE);
	assert_int_equal(r.line, 3);
	assert_true(now_s() - t0 < 5.0);

	assert_int_equal(table_lookup_str(h, key, &r), 0);
	key[10000] = '\0';
	assert_int_equal(table_lookup_str(h, key, &r), 0);
	key[4] = '\0';
	assert_int_equal(table_lookup_str(h, key, &r), 1);

	table_free(p);
	table_free(h);
	unlink(pp);
	unlink(ph);
	free(key);
}

/* Embedded CR/LF must not let a key match an entry for its first line. */
static void test_hostile_crlf(void **state)
{
	static const struct lookup hash_look[] = {
		{ "good.example", 's', 1, TA_OK, 0, NULL, 1 },
		{ "good.example\r\n250 OK", 's', 0, 0, 0, NULL, 0 },
		{ "good.example\n", 's', 0, 0, 0, NULL, 0 },
		{ "good.example\r", 's', 0, 0, 0, NULL, 0 },
		{ "x\n\tInjected: 1", 's', 0, 0, 0, NULL, 0 },
		{ "100%s%n", 's', 0, 0, 0, NULL, 0 },
		END,
	};
	static const struct lookup pcre_look[] = {
		{ "good.example", 's', 1, TA_OK, 0, NULL, 1 },
		{ "good.example\n", 's', 1, TA_REJECT, 0, "line break", 2 },
		{ "good.example\r\n250 OK", 's', 1, TA_REJECT, 0, "line break", 2 },
		{ "x\n\tInjected: 1", 's', 1, TA_REJECT, 0, "line break", 2 },
		{ "100%s%n", 's', 1, TA_SCORE, 1, "percent", 3 },
		END,
	};
	char path[512], err[512];
	struct table *t;

	(void)state;
	t = open_case("texthash", "good.example OK\n", 0, path, sizeof(path), err, sizeof(err));
	assert_non_null(t);
	for (const struct lookup *l = hash_look; l->key; l++)
		check_lookup("crlf texthash", t, path, l);
	table_free(t);
	unlink(path);

	t = open_case("pcre",
	              "/^good\\.example$/ OK\n"
	              "/[\\r\\n]/ REJECT line break\n"
	              "/%/ SCORE 1 percent\n",
	              0, path, sizeof(path), err, sizeof(err));
	assert_non_null(t);
	for (const struct lookup *l = pcre_look; l->key; l++)
		check_lookup("crlf pcre", t, path, l);
	table_free(t);
	unlink(path);
}

/* A local set of hostile strings (the shared tests/unit/hostile.c is not
 * linked into this program): every one through every table type.  A pcre:
 * table answers OK only for all-printable keys and otherwise falls through
 * to a catch-all; a texthash: table matches only its exact keys. */
static void test_hostile_all(void **state)
{
	static const char *const fixed[] = {
		"a\r\n250 OK",
		"100%s%n",
		"abc\0\r\nRCPT TO:<x@y>",
		"\xff\xfe\xc3\x28",
		"x\n\tInjected: 1",
		"\r",
		"\n",
		"",
		"%",
		"\x1b[31mred\x1b[0m",
		"ok\b\b\b\bevil",
		" \t \r\n ",
		"\xc0\x80",
		"%999999999s%*d%hhn",
		"Good.Example",
		"good.example\r\n",
		"192.0.2.1\n",
	};
	char pp[512], ph[512], pc[512], err[512];
	char *big = xmalloc(HOSTILE_BIG + 1);
	struct table *p, *h, *c;
	struct table_result r;

	(void)state;
	p = open_case("pcre", "/^[\\x20-\\x7e]*$/ OK\n/^/ REJECT catch-all\n", 0, pp, sizeof(pp),
	              err, sizeof(err));
	h = open_case("texthash", "abc REJECT cut at NUL\ngood.example OK\n", 0, ph, sizeof(ph),
	              err, sizeof(err));
	c = open_case("cidr", "0.0.0.0/0 REJECT\n::/0 REJECT\n", 0, pc, sizeof(pc), err,
	              sizeof(err));
	assert_non_null(p);
	assert_non_null(h);
	assert_non_null(c);
	for (size_t i = 0; i < ARRAY_SIZE(fixed) + 3; i++) {
		const char *key = i < ARRAY_SIZE(fixed) ? fixed[i] : big;
		int printable = 1;

		/* 10,000 bytes: every byte value, CRLF pairs, an open address */
		for (size_t j = 0; i >= ARRAY_SIZE(fixed) && j < HOSTILE_BIG; j++) {
			size_t k = i - ARRAY_SIZE(fixed);

			big[j] = k == 0   ? (char)(1 + j % 255)
			         : k == 1 ? "\r\n"[j % 2]
			                  : "<a@"[j % 3];
		}
		big[HOSTILE_BIG] = '\0';
		for (const char *q = key; *q; q++)
			if ((unsigned char)*q < 0x20 || (unsigned char)*q > 0x7e)
				printable = 0;

		assert_int_equal(table_lookup_str(p, key, &r), 1);
		if (r.action != (printable ? TA_OK : TA_REJECT))
			fail_msg("hostile %zu: pcre gave %s", i, act_name(r.action));
		if (table_lookup_str(h, key, &r) !=
		    (strcmp(key, "abc") == 0 || strcmp(key, "Good.Example") == 0))
			fail_msg("hostile %zu: texthash match", i);
		assert_int_equal(table_lookup_str(c, key, &r), 0);
	}
	table_free(p);
	table_free(h);
	table_free(c);
	unlink(pp);
	unlink(ph);
	unlink(pc);
	free(big);
}

/* ---- threads ---- */

struct thread_arg {
	const struct maplist *m;
	int bad;
};

static void *lookup_thread(void *p)
{
	struct thread_arg *a = p;
	struct table_result r;
	struct ipaddr ip;
	char key[64];

	for (int i = 0; i < 2000; i++) {
		snprintf(key, sizeof(key), "host%d.example", i % 50);
		if (!maplist_lookup_str(a->m, key, &r) ||
		    r.action != (i % 50 < 25 ? TA_OK : TA_REJECT))
			a->bad++;
		snprintf(key, sizeof(key), "10.0.%d.1", i % 200);
		if (ip_parse(key, &ip) < 0 || !maplist_lookup_ip(a->m, &ip, &r) ||
		    r.action != (i % 200 < 128 ? TA_DEFER : TA_REJECT))
			a->bad++;
	}
	return NULL;
}

/* Shared tables, concurrent lookups (run under ASan/TSan to be useful). */
static void test_threads(void **state)
{
	char ph[512], pp[512], pc[512], err[512], *buf = xmalloc(4096);
	struct table *t[3];
	struct maplist m = { 3, t };
	struct thread_arg args[4];
	pthread_t tid[4];
	size_t n = 0;

	(void)state;
	for (int i = 0; i < 25; i++)
		n += (size_t)snprintf(buf + n, 4096 - n, "host%d.example OK\n", i);
	/* cidr first, so the IP lookups end there */
	t[0] = open_case("cidr", "10.0.0.0/17 DEFER\n", 0, pc, sizeof(pc), err, sizeof(err));
	t[1] = open_case("texthash", buf, n, ph, sizeof(ph), err, sizeof(err));
	t[2] = open_case("pcre", "/^host[0-9]+\\.example$/ REJECT\n/^10\\./ REJECT\n", 0, pp,
	                 sizeof(pp), err, sizeof(err));
	for (int i = 0; i < 3; i++)
		assert_non_null(t[i]);
	for (int i = 0; i < 4; i++) {
		args[i].m = &m;
		args[i].bad = 0;
		assert_int_equal(pthread_create(&tid[i], NULL, lookup_thread, &args[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(tid[i], NULL);
		assert_int_equal(args[i].bad, 0);
	}
	for (int i = 0; i < 3; i++)
		table_free(t[i]);
	unlink(ph);
	unlink(pp);
	unlink(pc);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cidr),
		cmocka_unit_test(test_pcre),
		cmocka_unit_test(test_texthash),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_long_lines),
		cmocka_unit_test(test_spec_errors),
		cmocka_unit_test(test_parse_action),
		cmocka_unit_test(test_maplist),
		cmocka_unit_test(test_hostile_long_key),
		cmocka_unit_test(test_hostile_crlf),
		cmocka_unit_test(test_hostile_all),
		cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
