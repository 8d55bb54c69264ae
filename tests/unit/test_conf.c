/* tests/unit/test_conf.c - unit tests for lib/conf.c
 *
 * Every case writes a configuration file into a private temporary folder
 * and loads it with conf_load().  Table-driven:
 *  - one key per file, for every type (string, int with bounds, octal, bool
 *    words, time units, score bounds, mode, on_error, lists, networks,
 *    tables): a good value must show up in `-n` (conf_dump CHANGED) in its
 *    canonical spelling, a bad one must fail with "FILE:LINE: KEY: reason";
 *  - whole files: unknown keys, missing '=', comments, blank lines,
 *    continuation lines (and that later errors still name the right line),
 *    CRLF, `checks` errors found after parsing, broken access tables that
 *    must be named by their own FILE:LINE.
 * Also: the defaults snapshot, -d/-n round trips, conf_set() on a snapshot,
 * and the reference counting of conf_current()/conf_install(), threads
 * included.  Run under ASan/UBSan: every snapshot is released.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "conf.h"
#include "engine.h"
#include "testutil.h"
#include "util.h"

/* --- the temporary folder ------------------------------------------------- */

static char good_cidr[512], broken_cidr[512], good_hash[512], good_pcre[512];
static char broken_pcre[512], broken_hash[512];

static int group_setup(void **state)
{
	(void)state;
	if (tmpdir_create("pc-conf") < 0)
		return -1;
	write_file(good_cidr, sizeof(good_cidr), "client.cidr",
	           "# clients\n"
	           "192.0.2.0/24 OK\n"
	           "198.51.100.0/24 REJECT go away\n"
	           "2001:db8::/32 SCORE 3\n");
	write_file(broken_cidr, sizeof(broken_cidr), "broken.cidr",
	           "# line 1\n"
	           "192.0.2.0/24 OK\n"
	           "\n"
	           "192.0.2.0/33 REJECT\n");
	write_file(good_hash, sizeof(good_hash), "helo.hash",
	           "bad.example REJECT no\n"
	           "good.example OK\n");
	write_file(broken_hash, sizeof(broken_hash), "broken.hash",
	           "good.example OK\n"
	           "bad.example\n");
	write_file(good_pcre, sizeof(good_pcre), "helo.pcre", "/^dsl-/ SCORE 2\n");
	write_file(broken_pcre, sizeof(broken_pcre), "broken.pcre",
	           "/^ok$/ OK\n"
	           "  # a comment inside\n"
	           "/(unclosed/ REJECT\n");
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	return tmpdir_remove();
}

/* Replace "{F}" by file, "{T}" by table in tmpl. */
static void expand(char *dst, size_t dstsize, const char *tmpl, const char *file, const char *table)
{
	dst[0] = '\0';
	for (const char *p = tmpl; *p;) {
		if (strncmp(p, "{F}", 3) == 0) {
			bappend(dst, dstsize, "%s", file);
			p += 3;
		} else if (strncmp(p, "{T}", 3) == 0) {
			bappend(dst, dstsize, "%s", table ? table : "?");
			p += 3;
		} else {
			bappend(dst, dstsize, "%c", *p++);
		}
	}
}

/* conf_dump() into a malloc'd string. */
static char *dump(const struct conf *c, enum conf_dump what)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);

	assert_non_null(fp);
	conf_dump(c, what, fp);
	assert_int_equal(fclose(fp), 0);
	return buf;
}

/* The value of key in a dump ("key = value" lines), copied to dst; 0 if
 * the key is not there. */
static int dump_value(const char *text, const char *key, char *dst, size_t dstsize)
{
	size_t klen = strlen(key);

	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		const char *nl = strchr(p, '\n');

		if (strncmp(p, key, klen) == 0 && strncmp(p + klen, " = ", 3) == 0) {
			size_t n = (nl ? (size_t)(nl - p) : strlen(p)) - klen - 3;

			if (n >= dstsize)
				n = dstsize - 1;
			memcpy(dst, p + klen + 3, n);
			dst[n] = '\0';
			return 1;
		}
	}
	return 0;
}

static struct conf *load_defaults(void)
{
	char err[512] = "";
	struct conf *c = conf_load(NULL, err, sizeof(err));

	if (c == NULL)
		fail_msg("conf_load(NULL): %s", err);
	return c;
}

/* --- one key per file: every type ----------------------------------------- */

struct type_case {
	const char *key;
	const char *val;   /* "{T}" is replaced by a table path, see table */
	const char *want;  /* loads: its `-n` value, "" = equal to the default;
			     NULL: must fail */
	const char *err;   /* when it fails: reason after "FILE:3: "; "{T}" as above */
	const char *table; /* which table file {T} names: 'c'idr, 'C' broken cidr... */
};

#define OK_(k, v, w)                                                                               \
	{                                                                                          \
		k, v, w, NULL, NULL                                                                \
	}
#define BAD(k, v, e)                                                                               \
	{                                                                                          \
		k, v, NULL, e, NULL                                                                \
	}

static const struct type_case type_cases[] = {
	/* CONF_STR: trimmed, inner spaces, '=' and '#' kept */
	OK_("pidfile", "/run/p.pid", "/run/p.pid"),
	OK_("pidfile", "  /run/spaced.pid   ", "/run/spaced.pid"),
	OK_("pidfile", "/tmp/a b  c", "/tmp/a b  c"),
	OK_("pidfile", "/tmp/x#y", "/tmp/x#y"),
	OK_("contact", "a=b@example.org", "a=b@example.org"),
	OK_("header_prefix", "X-Test", "X-Test"),
	OK_("socket_group", "", ""),
	OK_("trusted_networks", "", "''"),
	OK_("header_prefix", "X-Portcullis", ""),

	/* CONF_INT with bounds: envelope.max_rcpts 1..100000 */
	OK_("envelope.max_rcpts", "5", "5"),
	OK_("envelope.max_rcpts", "1", "1"),
	OK_("envelope.max_rcpts", "100000", "100000"),
	OK_("envelope.max_rcpts", "+7", "7"),
	OK_("envelope.max_rcpts", "1000", ""),
	BAD("envelope.max_rcpts", "0", "envelope.max_rcpts: 0 out of range 1..100000"),
	BAD("envelope.max_rcpts", "100001", "envelope.max_rcpts: 100001 out of range 1..100000"),
	BAD("envelope.max_rcpts", "-5", "envelope.max_rcpts: -5 out of range 1..100000"),
	BAD("envelope.max_rcpts", "abc", "envelope.max_rcpts: invalid number 'abc'"),
	BAD("envelope.max_rcpts", "12abc", "envelope.max_rcpts: invalid number '12abc'"),
	BAD("envelope.max_rcpts", "0x10", "envelope.max_rcpts: invalid number '0x10'"),
	BAD("envelope.max_rcpts", "1.5", "envelope.max_rcpts: invalid number '1.5'"),
	BAD("envelope.max_rcpts", "", "envelope.max_rcpts: invalid number ''"),
	BAD("envelope.max_rcpts", "99999999999999999999999",
	    "envelope.max_rcpts: invalid number '99999999999999999999999'"),

	/* CONF_OCTAL: socket_mode 0..0777 */
	OK_("socket_mode", "0600", "0600"),
	OK_("socket_mode", "600", "0600"),
	OK_("socket_mode", "0777", "0777"),
	OK_("socket_mode", "0660", ""),
	BAD("socket_mode", "0800", "socket_mode: invalid octal number '0800'"),
	BAD("socket_mode", "rw-rw----", "socket_mode: invalid octal number 'rw-rw----'"),
	BAD("socket_mode", "", "socket_mode: invalid octal number ''"),
	BAD("socket_mode", "01000", "socket_mode: "),
	BAD("socket_mode", "-1", "socket_mode: "),

	/* CONF_BOOL: yes/no/true/false/on/off/1/0, any case */
	OK_("debug", "yes", "yes"),
	OK_("debug", "YES", "yes"),
	OK_("debug", "true", "yes"),
	OK_("debug", "On", "yes"),
	OK_("debug", "1", "yes"),
	OK_("debug", "no", ""),
	OK_("auth_whitelist", "no", "no"),
	OK_("auth_whitelist", "False", "no"),
	OK_("auth_whitelist", "OFF", "no"),
	OK_("auth_whitelist", "0", "no"),
	BAD("debug", "maybe", "debug: invalid boolean 'maybe' (yes or no)"),
	BAD("debug", "y", "debug: invalid boolean 'y' (yes or no)"),
	BAD("debug", "", "debug: invalid boolean '' (yes or no)"),
	BAD("auth_whitelist", "2", "auth_whitelist: invalid boolean '2' (yes or no)"),

	/* CONF_TIME: milter_timeout 1s..86400s, units s m h d w */
	OK_("milter_timeout", "30", "30s"),
	OK_("milter_timeout", "30s", "30s"),
	OK_("milter_timeout", "90s", "90s"),
	OK_("milter_timeout", "120", "2m"),
	OK_("milter_timeout", "5m", "5m"),
	OK_("milter_timeout", "5M", "5m"),
	OK_("milter_timeout", "2h", "2h"),
	OK_("milter_timeout", "3600s", "1h"),
	OK_("milter_timeout", "1d", "1d"),
	OK_("milter_timeout", "1440m", "1d"),
	OK_("milter_timeout", "1s", "1s"),
	OK_("milter_timeout", "7210s", ""),
	OK_("milter_timeout", "7210", ""),
	BAD("milter_timeout", "1w", "milter_timeout: 604800s out of range 1s..86400s"),
	BAD("milter_timeout", "2d", "milter_timeout: 172800s out of range 1s..86400s"),
	BAD("milter_timeout", "0", "milter_timeout: 0s out of range 1s..86400s"),
	BAD("milter_timeout", "5x",
	    "milter_timeout: invalid time '5x' (a number with s, m, h, d or w)"),
	BAD("milter_timeout", "5mm",
	    "milter_timeout: invalid time '5mm' (a number with s, m, h, d or w)"),
	BAD("milter_timeout", "5 m",
	    "milter_timeout: invalid time '5 m' (a number with s, m, h, d or w)"),
	BAD("milter_timeout", "m",
	    "milter_timeout: invalid time 'm' (a number with s, m, h, d or w)"),
	BAD("milter_timeout", "-5s",
	    "milter_timeout: invalid time '-5s' (a number with s, m, h, d or w)"),
	BAD("milter_timeout", "1.5h",
	    "milter_timeout: invalid time '1.5h' (a number with s, m, h, d or w)"),
	BAD("milter_timeout", "",
	    "milter_timeout: invalid time '' (a number with s, m, h, d or w)"),
	BAD("milter_timeout", "99999999999999999999w",
	    "milter_timeout: invalid time '99999999999999999999w'"),
	BAD("milter_timeout", "9223372036854775807w",
	    "milter_timeout: invalid time '9223372036854775807w'"),

	/* CONF_SCORE: score.reject 0..1000 */
	OK_("score.reject", "12.5", "12.5"),
	OK_("score.reject", "0", "0"),
	OK_("score.reject", "1000", "1000"),
	OK_("score.reject", "1e2", "100"),
	OK_("score.reject", "10.0", ""),
	OK_("score.tag", "0.5", "0.5"),
	BAD("score.reject", "-1", "score.reject: -1 out of range 0..1000"),
	BAD("score.reject", "1000.5", "score.reject: 1000.5 out of range 0..1000"),
	BAD("score.defer", "abc", "score.defer: invalid number 'abc'"),
	BAD("score.defer", "nan", "score.defer: invalid number 'nan'"),
	BAD("score.defer", "inf", "score.defer: invalid number 'inf'"),
	BAD("score.defer", "5 points", "score.defer: invalid number '5 points'"),
	BAD("score.tag", "", "score.tag: invalid number ''"),

	/* CONF_MODE: module modes and sub-check modes */
	OK_("helo.mode", "monitor", "monitor"),
	OK_("helo.mode", "DEFER", "defer"),
	OK_("helo.mode", "off", "off"),
	OK_("helo.mode", "Reject", ""),
	OK_("helo.non_fqdn", "monitor", "monitor"),
	OK_("access.mode", "defer", "defer"),
	OK_("envelope.too_many_rcpts", "reject", "reject"),
	OK_("envelope.too_many_rcpts", "defer", ""),
	BAD("helo.mode", "warn", "helo.mode: invalid mode 'warn' (reject, defer, monitor or off)"),
	BAD("helo.bare_ip", "", "helo.bare_ip: invalid mode '' (reject, defer, monitor or off)"),
	BAD("envelope.rcpt_syntax", "yes",
	    "envelope.rcpt_syntax: invalid mode 'yes' (reject, defer, monitor or off)"),

	/* CONF_ONERR */
	OK_("helo.on_error", "defer", "defer"),
	OK_("access.on_error", "skip", "skip"),
	OK_("access.on_error", "Defer", ""),
	BAD("access.on_error", "ignore",
	    "access.on_error: invalid on_error 'ignore' (defer or skip)"),
	BAD("helo.on_error", "reject", "helo.on_error: invalid on_error 'reject' (defer or skip)"),

	/* CONF_LIST: commas and/or white space */
	OK_("checks", "helo,envelope", "helo, envelope"),
	OK_("checks", "helo envelope", "helo, envelope"),
	OK_("checks", "helo ,\t envelope,", "helo, envelope"),
	OK_("checks", ",,helo,,,envelope", "helo, envelope"),
	OK_("checks", "whitelist, access, helo, envelope", ""),
	OK_("checks", "whitelist access helo envelope", ""),
	OK_("checks", "", "''"),
	OK_("helo.own_names", "a.example, b.example c.example", "a.example, b.example, c.example"),

	/* CONF_NETS: IPv4, IPv6, Postfix's [::1]/128 spelling */
	OK_("trusted_networks", "192.0.2.0/24, 2001:db8::/32", "192.0.2.0/24, 2001:db8::/32"),
	OK_("trusted_networks", "192.0.2.0/24 10.0.0.1", "192.0.2.0/24, 10.0.0.1/32"),
	OK_("trusted_networks", "[::1]/128", "::1/128"),
	OK_("trusted_networks", "[2001:db8::]/64, [::1]", "2001:db8::/64, ::1/128"),
	OK_("trusted_networks", "::1", "::1/128"),
	OK_("trusted_networks", "0.0.0.0/0 ::/0", "0.0.0.0/0, ::/0"),
	OK_("trusted_networks", "192.0.2.0/24,", "192.0.2.0/24"),
	OK_("trusted_networks", "127.0.0.0/8 ::1/128", ""),
	OK_("trusted_networks", "127.0.0.0/8,[::1]/128", ""),
	OK_("helo.own_addresses", "192.0.2.25, [2001:db8::25]", "192.0.2.25/32, 2001:db8::25/128"),
	BAD("trusted_networks", "192.0.2.0/33", "trusted_networks: invalid network '192.0.2.0/33'"),
	BAD("trusted_networks", "2001:db8::/129",
	    "trusted_networks: invalid network '2001:db8::/129'"),
	BAD("trusted_networks", "300.1.1.1", "trusted_networks: invalid network '300.1.1.1'"),
	BAD("trusted_networks", "192.0.2.0/", "trusted_networks: invalid network '192.0.2.0/'"),
	BAD("trusted_networks", "192.0.2.0/2a", "trusted_networks: invalid network '192.0.2.0/2a'"),
	BAD("trusted_networks", "localhost", "trusted_networks: invalid network 'localhost'"),
	BAD("trusted_networks", "10.0.0.0/8, bogus, 10.1.0.0/16",
	    "trusted_networks: invalid network 'bogus'"),
	BAD("trusted_networks", "[::1", "trusted_networks: invalid network '[::1'"),
	BAD("trusted_networks", "::1]", "trusted_networks: invalid network '::1]'"),
	BAD("trusted_networks", "[192.0.2.1]x", "trusted_networks: invalid network"),

	/* CONF_MAPS: real tables; broken ones are named by their FILE:LINE */
	{ "access.client", "cidr:{T}", "cidr:{T}", NULL, "c" },
	{ "access.helo", "texthash:{T}", "texthash:{T}", NULL, "h" },
	{ "access.helo", "pcre:{T}", "pcre:{T}", NULL, "p" },
	{ "access.client", "cidr:{T}", NULL, "access.client: {T}:4: ", "C" },
	{ "access.helo", "texthash:{T}", NULL, "access.helo: {T}:2: ", "H" },
	{ "access.helo", "pcre:{T}", NULL, "access.helo: {T}:3: ", "P" },
	BAD("access.client", "cidr:/nonexistent/portcullis/x.cidr",
	    "access.client: cidr:/nonexistent/portcullis/x.cidr: No such file or directory"),
	BAD("access.client", "nosuch:/etc/hosts", "access.client: nosuch:/etc/hosts: "),
	BAD("access.client", "/etc/hosts", "access.client: /etc/hosts: missing table type"),
	OK_("access.client", "", ""),
};

static const char *table_path(const char *which)
{
	if (which == NULL)
		return NULL;
	switch (which[0]) {
	case 'c': return good_cidr;
	case 'C': return broken_cidr;
	case 'h': return good_hash;
	case 'H': return broken_hash;
	case 'p': return good_pcre;
	case 'P': return broken_pcre;
	}
	return NULL;
}

static void test_types(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(type_cases); i++) {
		const struct type_case *tc = &type_cases[i];
		const char *table = table_path(tc->table);
		char path[512], val[1024], text[2048], want[1024], got[1024], err[2048];
		char *out;
		struct conf *c;

		expand(val, sizeof(val), tc->val, "", table);
		snprintf(text, sizeof(text), "# case %zu\n\n%s = %s\n", i, tc->key, val);
		write_file(path, sizeof(path), "types.conf", text);
		err[0] = '\0';
		c = conf_load(path, err, sizeof(err));
		if (tc->want == NULL) {
			char full[1024];

			if (c != NULL)
				fail_msg("case %zu: %s = '%s' loaded, expected an error", i,
				         tc->key, val);
			snprintf(full, sizeof(full), "{F}:3: %s", tc->err);
			expand(want, sizeof(want), full, path, table);
			if (strncmp(err, want, strlen(want)) != 0)
				fail_msg(
				    "case %zu: %s = '%s':\n  error    '%s'\n  expected '%s...'", i,
				    tc->key, val, err, want);
			continue;
		}
		if (c == NULL)
			fail_msg("case %zu: %s = '%s' failed: %s", i, tc->key, val, err);
		expand(want, sizeof(want), tc->want, path, table);
		out = dump(c, CONF_DUMP_CHANGED);
		if (want[0] == '\0') {
			if (dump_value(out, tc->key, got, sizeof(got)))
				fail_msg("case %zu: %s = '%s' is the default, but -n prints '%s'",
				         i, tc->key, val, got);
		} else {
			if (strcmp(want, "''") == 0)
				want[0] = '\0'; /* differs from the default, prints empty */
			if (!dump_value(out, tc->key, got, sizeof(got)))
				fail_msg("case %zu: %s = '%s' missing from -n output:\n%s", i,
				         tc->key, val, out);
			if (strcmp(got, want) != 0)
				fail_msg("case %zu: %s = '%s': -n prints '%s', expected '%s'", i,
				         tc->key, val, got, want);
		}
		free(out);
		conf_unref(c);
	}
}

/* The parsed values themselves, not only their -n spelling. */
static void test_values(void **state)
{
	char path[512], err[1024] = "", text[2048];
	struct conf *c;
	int helo = check_find("helo"), access = check_find("access");

	(void)state;

	snprintf(text, sizeof(text),
	         "socket_mode = 0640\n"
	         "milter_timeout = 3m\n"
	         "debug = on\n"
	         "auth_whitelist = off\n"
	         "score.reject = 15.5\n"
	         "score.defer = 7\n"
	         "score.tag = 0\n"
	         "checks = envelope helo,access\n"
	         "trusted_networks = 192.0.2.0/24, [2001:db8::]/48\n"
	         "helo.mode = monitor\n"
	         "access.on_error = skip\n"
	         "hostname = mx.example.test\n"
	         "access.client = cidr:%s\n",
	         good_cidr);
	write_file(path, sizeof(path), "values.conf", text);
	c = conf_load(path, err, sizeof(err));
	if (c == NULL)
		fail_msg("%s", err);
	assert_int_equal(c->core.socket_mode, 0640);
	assert_int_equal(c->core.milter_timeout, 180);
	assert_int_equal(c->core.debug, 1);
	assert_int_equal(c->core.auth_whitelist, 0);
	assert_true(c->core.score_reject == 15.5);
	assert_true(c->core.score_defer == 7);
	assert_true(c->core.score_tag == 0);
	assert_int_equal(c->core.checks.n, 3);
	assert_string_equal(c->core.checks.v[0], "envelope");
	assert_string_equal(c->core.checks.v[1], "helo");
	assert_string_equal(c->core.checks.v[2], "access");
	assert_int_equal(c->norder, 3);
	assert_int_equal(c->order[0], check_find("envelope"));
	assert_int_equal(c->order[1], helo);
	assert_int_equal(c->order[2], access);
	assert_int_equal(c->core.trusted_networks.n, 2);
	assert_int_equal(c->core.trusted_networks.v[0].ip.family, AF_INET);
	assert_int_equal(c->core.trusted_networks.v[0].len, 24);
	assert_int_equal(c->core.trusted_networks.v[1].ip.family, AF_INET6);
	assert_int_equal(c->core.trusted_networks.v[1].len, 48);
	assert_int_equal(c->mod[helo].mode, MODE_MONITOR);
	assert_int_equal(c->mod[helo].on_error, ONERR_SKIP);
	assert_int_equal(c->mod[access].mode, MODE_REJECT);
	assert_int_equal(c->mod[access].on_error, ONERR_SKIP);
	assert_string_equal(c->hostname, "mx.example.test");
	assert_string_equal(c->contact, "postmaster@mx.example.test");
	assert_string_equal(c->path, path);

	/* the table is loaded and used */
	{
		struct conn *conn = engine_conn_new(c);
		struct reply r;

		engine_connect(conn, NULL, "198.51.100.1", &r);
		assert_int_equal(r.action, REPLY_CONTINUE);
		assert_int_equal(conn->nheld, 1);
		assert_string_equal(conn->held[0].symbol, "access.client");
		assert_string_equal(conn->held[0].text,
		                    "Client host 198.51.100.1 rejected: go away");
		engine_conn_free(conn);
	}
	conf_unref(c);
}

/* --- whole files ------------------------------------------------------------ */

struct file_case {
	const char *name;
	const char *text; /* "{T}" is replaced by the good cidr table */
	const char *err;  /* NULL: must load; else the error, "{F}" = this file */
	int exact;        /* the error must match exactly, not only its start */
	const char *dump; /* when it loads: the whole -n output ("{T}" allowed) */
};

static const struct file_case file_cases[] = {
	{ "empty file", "", NULL, 0, "" },
	{ "only comments and blank lines",
	  "# a comment\n"
	  "\n"
	  "   \t  \n"
	  "   # an indented comment\n"
	  "#score.tag = 7\n",
	  NULL, 0, "" },
	{ "comments between settings",
	  "# head\n"
	  "score.tag = 7\n"
	  "\n"
	  "# helo.mode = off\n"
	  "helo.mode = monitor\n",
	  NULL, 0, "score.tag = 7\nhelo.mode = monitor\n" },
	{ "later setting wins",
	  "score.tag = 6\n"
	  "score.tag = 7\n",
	  NULL, 0, "score.tag = 7\n" },
	{ "no newline at end of file", "score.tag = 7", NULL, 0, "score.tag = 7\n" },
	{ "CRLF line ends",
	  "score.tag = 7\r\n"
	  "checks = helo,\r\n"
	  "  envelope\r\n",
	  NULL, 0, "checks = helo, envelope\nscore.tag = 7\n" },
	{ "no spaces around =", "score.tag=7\nhelo.mode=off\n", NULL, 0,
	  "score.tag = 7\nhelo.mode = off\n" },
	{ "continuation lines",
	  "# portcullis\n"
	  "\n"
	  "checks = envelope,\n"
	  "    helo,\n"
	  "\taccess\n"
	  "# a comment between\n"
	  "hostname =\n"
	  "  mx.example.test\n"
	  "trusted_networks = 192.0.2.0/24\n"
	  "   [::1]/128\n",
	  NULL, 0,
	  "checks = envelope, helo, access\n"
	  "hostname = mx.example.test\n"
	  "trusted_networks = 192.0.2.0/24, ::1/128\n" },
	{ "continuation across a comment and a blank line",
	  "helo.own_names = a.example\n"
	  "# comment\n"
	  "\n"
	  "   b.example\n",
	  NULL, 0, "helo.own_names = a.example, b.example\n" },
	{ "a table", "access.client = cidr:{T}\n", NULL, 0, "access.client = cidr:{T}\n" },
	{ "two tables on continuation lines",
	  "access.client =\n"
	  "   cidr:{T},\n"
	  "   cidr:{T}\n",
	  NULL, 0, "access.client = cidr:{T}, cidr:{T}\n" },

	/* unknown keys */
	{ "unknown key", "score.tag = 7\nbogus = 1\n", "{F}:2: unknown parameter 'bogus'", 1,
	  NULL },
	{ "unknown module key", "helo.bogus = 1\n", "{F}:1: unknown parameter 'helo.bogus'", 1,
	  NULL },
	{ "unknown module", "nosuch.mode = off\n", "{F}:1: unknown parameter 'nosuch.mode'", 1,
	  NULL },
	{ "keys are case-sensitive", "Score.Tag = 7\n", "{F}:1: unknown parameter 'Score.Tag'", 1,
	  NULL },
	{ "near miss", "\n\n\nscore.rejec = 1\n", "{F}:4: unknown parameter 'score.rejec'", 1,
	  NULL },
	{ "module name alone", "helo = off\n", "{F}:1: unknown parameter 'helo'", 1, NULL },
	{ "empty key", "= 5\n", "{F}:1: unknown parameter ''", 1, NULL },

	/* missing '=' */
	{ "missing =", "score.tag = 7\n\nchecks helo\n", "{F}:3: missing '=' in 'checks helo'", 1,
	  NULL },
	{ "missing = after a comment", "# x\nbogus\n", "{F}:2: missing '=' in 'bogus'", 1, NULL },

	/* line numbers after continuations */
	{ "error after continuation lines",
	  "# portcullis\n"
	  "\n"
	  "checks = access,\n"
	  "    helo,\n"
	  "\tenvelope\n"
	  "# comment\n"
	  "\n"
	  "score.tag = 7\n"
	  "hostname =\n"
	  "   mx.example.test\n"
	  "bogus = 1\n",
	  "{F}:11: unknown parameter 'bogus'", 1, NULL },
	{ "error in a continued value names its first line",
	  "score.tag = 7\n"
	  "helo.mode =\n"
	  "    bogusmode\n"
	  "score.reject = 5\n",
	  "{F}:2: helo.mode: invalid mode 'bogusmode' (reject, defer, monitor or off)", 1, NULL },
	{ "missing = right after a continuation",
	  "checks = helo,\n"
	  "  envelope\n"
	  "oops\n",
	  "{F}:3: missing '=' in 'oops'", 1, NULL },
	{ "many continuations then an error",
	  "a.b =\n"
	  " 1\n"
	  " 2\n"
	  " 3\n",
	  "{F}:1: unknown parameter 'a.b'", 1, NULL },
	{ "error after two continued settings",
	  "helo.own_names = a.example\n"
	  "  b.example\n"
	  "helo.own_addresses = 192.0.2.1\n"
	  "  192.0.2.2\n"
	  "\n"
	  "# x\n"
	  "score.tag = x\n",
	  "{F}:7: score.tag: invalid number 'x'", 1, NULL },

	/* checks: resolved after parsing, still FILE:LINE of the checks line */
	{ "unknown check",
	  "score.tag = 7\n"
	  "checks = helo, nosuch\n"
	  "score.reject = 12\n",
	  "{F}:2: checks: unknown check 'nosuch' (known: access helo envelope", 0, NULL },
	{ "unknown check on a continuation line",
	  "# c\n"
	  "checks = helo,\n"
	  "   nosuch\n"
	  "score.reject = 12\n",
	  "{F}:2: checks: unknown check 'nosuch'", 0, NULL },
	{ "check listed twice",
	  "\n"
	  "checks = helo, envelope, helo\n",
	  "{F}:2: checks: 'helo' listed twice", 1, NULL },
	{ "check listed twice, checks set twice",
	  "checks = helo\n"
	  "score.tag = 1\n"
	  "checks = access access\n",
	  "{F}:3: checks: 'access' listed twice", 1, NULL },

	/* other errors found by conf_finish */
	{ "bad log_target", "\nlog_target = file\n",
	  "{F}:2: log_target: invalid value 'file' (syslog or stderr)", 1, NULL },
	{ "bad store.backend", "store.backend = mysql\n",
	  "{F}:1: store.backend: invalid value 'mysql' (tdb or redis)", 1, NULL },
	{ "redis without an address", "store.backend = redis\nstore.redis =\n",
	  "{F}:2: store.redis: empty, but store.backend is redis", 1, NULL },
	{ "bad store.timeout_ms", "store.timeout_ms = 5\n", "{F}:1: store.timeout_ms", 0, NULL },
	{ "bad log_facility", "log_facility = mial\n",
	  "{F}:1: log_facility: unknown facility 'mial'", 1, NULL },
	{ "bad socket", "score.tag = 1\nsocket = tcp:25\n", "{F}:2: socket: invalid 'tcp:25'", 0,
	  NULL },

};

static void test_files(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(file_cases); i++) {
		const struct file_case *fc = &file_cases[i];
		char path[512], want[2048], err[2048], *text, *out;
		size_t tsize = strlen(fc->text) * 2 + 2048;
		struct conf *c;

		text = xmalloc(tsize);
		expand(text, tsize, fc->text, "", good_cidr);
		write_file(path, sizeof(path), "file.conf", text);
		free(text);
		err[0] = '\0';
		c = conf_load(path, err, sizeof(err));
		if (fc->err) {
			if (c != NULL)
				fail_msg("%s: loaded, expected an error", fc->name);
			expand(want, sizeof(want), fc->err, path, NULL);
			if (fc->exact ? strcmp(err, want) != 0
			              : strncmp(err, want, strlen(want)) != 0)
				fail_msg("%s:\n  error    '%s'\n  expected '%s'%s", fc->name, err,
				         want, fc->exact ? "" : "...");
			continue;
		}
		if (c == NULL)
			fail_msg("%s: %s", fc->name, err);
		out = dump(c, CONF_DUMP_CHANGED);
		expand(want, sizeof(want), fc->dump, path, good_cidr);
		if (strcmp(out, want) != 0)
			fail_msg("%s: -n prints\n%s\nexpected\n%s", fc->name, out, want);
		free(out);
		conf_unref(c);
	}
}

/* A broken table in the middle of a longer file: the error names the
 * config FILE:LINE, the key, and the table's own FILE:LINE. */
static void test_broken_tables(void **state)
{
	const struct {
		const char *type;
		const char *table;
		int line;
	} cases[] = {
		{ "cidr", broken_cidr, 4 },
		{ "texthash", broken_hash, 2 },
		{ "pcre", broken_pcre, 3 },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const char *tp = cases[i].table;
		char path[512], text[2048], want[2048], err[2048] = "";

		snprintf(text, sizeof(text),
		         "# access tables\n"
		         "score.tag = 7\n"
		         "checks = access,\n"
		         "   helo\n"
		         "access.helo = %s:%s\n"
		         "score.reject = 12\n",
		         cases[i].type, tp);
		write_file(path, sizeof(path), "broken.conf", text);
		assert_null(conf_load(path, err, sizeof(err)));
		snprintf(want, sizeof(want), "%s:5: access.helo: %s:%d: ", path, tp, cases[i].line);
		if (strncmp(err, want, strlen(want)) != 0)
			fail_msg("%s: error '%s', expected '%s...'", cases[i].type, err, want);
	}
}

static void test_missing_file(void **state)
{
	char path[600], err[1024] = "";

	(void)state;
	snprintf(path, sizeof(path), "%s/does-not-exist.conf", tmpdir);
	assert_null(conf_load(path, err, sizeof(err)));
	assert_true(strstr(err, path) == err);
	assert_non_null(strstr(err, "No such file or directory"));
}

static void test_load_folder(void **state)
{
	char err[1024] = "";
	struct conf *c;

	(void)state;
	/* A folder is not a file: fopen() succeeds on it, the first read fails
	 * with EISDIR.  Running on the built-in defaults instead would be a
	 * silent misconfiguration (`portcullis -c /etc/portcullis/`). */
	err[0] = '\0';
	c = conf_load(tmpdir, err, sizeof(err));
	if (c != NULL) {
		conf_unref(c);
		fail_msg("conf_load(\"%s\") (a folder) succeeded with the defaults", tmpdir);
	}
	assert_true(strstr(err, tmpdir) == err);
}

/* A small err buffer is cut, never overrun. */
static void test_small_err(void **state)
{
	char path[512], err[16];

	(void)state;
	write_file(path, sizeof(path), "small.conf", "bogus_parameter_with_a_long_name = 1\n");
	memset(err, 'x', sizeof(err));
	assert_null(conf_load(path, err, sizeof(err)));
	assert_non_null(memchr(err, '\0', sizeof(err)));
	assert_int_equal(strlen(err), sizeof(err) - 1);
}

/* --- defaults and dumps -------------------------------------------------- */

static void count_param(const struct conf_param *p, void *arg)
{
	(void)p;
	(*(int *)arg)++;
}

static void test_defaults(void **state)
{
	struct conf *c = load_defaults();
	int nparams = 0, lines = 0;
	char *out, v[512];

	(void)state;
	assert_string_equal(c->path, "(defaults)");
	assert_int_equal(c->refs, 1);
	assert_int_equal(c->core.checks.n, 4);
	assert_string_equal(c->core.checks.v[0], "whitelist");
	assert_string_equal(c->core.checks.v[1], "access");
	assert_string_equal(c->core.checks.v[2], "helo");
	assert_string_equal(c->core.checks.v[3], "envelope");
	assert_int_equal(c->norder, 4);
	assert_int_equal(c->order[0], check_find("whitelist"));
	assert_int_equal(c->order[1], check_find("access"));
	assert_int_equal(c->order[2], check_find("helo"));
	assert_int_equal(c->order[3], check_find("envelope"));
	assert_string_equal(c->core.socket, "unix:/run/portcullis/portcullis.sock");
	assert_int_equal(c->core.socket_mode, 0660);
	assert_string_equal(c->core.state_dir, "/var/lib/portcullis");
	assert_string_equal(c->core.log_target, "syslog");
	assert_string_equal(c->core.log_facility, "mail");
	assert_string_equal(c->core.hostname, "");
	assert_string_equal(c->core.contact, "");
	assert_string_equal(c->core.header_prefix, "X-Portcullis");
	assert_int_equal(c->core.debug, 0);
	assert_int_equal(c->core.milter_timeout, 7210);
	assert_int_equal(c->core.auth_whitelist, 1);
	assert_true(c->core.score_reject == 10);
	assert_true(c->core.score_defer == 0);
	assert_true(c->core.score_tag == 5);
	assert_int_equal(c->core.trusted_networks.n, 2);
	assert_int_equal(c->core.trusted_networks.v[0].ip.family, AF_INET);
	assert_int_equal(c->core.trusted_networks.v[0].len, 8);
	assert_int_equal(c->core.trusted_networks.v[1].ip.family, AF_INET6);
	assert_int_equal(c->core.trusted_networks.v[1].len, 128);
	/* hostname from gethostname(), contact derived from it */
	assert_true(c->hostname[0] != '\0');
	snprintf(v, sizeof(v), "postmaster@%s", c->hostname);
	assert_string_equal(c->contact, v);
	for (int i = 0; i < check_registry_count; i++) {
		const struct check_module *m = check_registry[i];

		assert_int_equal(c->mod[i].mode,
		                 strcmp(m->default_mode, "reject") == 0    ? MODE_REJECT
		                 : strcmp(m->default_mode, "monitor") == 0 ? MODE_MONITOR
		                 : strcmp(m->default_mode, "defer") == 0   ? MODE_DEFER
		                                                           : MODE_OFF);
		assert_int_equal(c->mod[i].on_error, strcmp(m->default_on_error, "skip") == 0
		                                         ? ONERR_SKIP
		                                         : ONERR_DEFER);
		assert_non_null(c->mod[i].data);
	}
	assert_int_equal(c->mod[check_find("access")].on_error, ONERR_DEFER);
	assert_int_equal(c->mod[check_find("helo")].on_error, ONERR_SKIP);

	/* -n of the defaults: nothing */
	out = dump(c, CONF_DUMP_CHANGED);
	assert_string_equal(out, "");
	free(out);

	/* -d: every declared key once, "key = value" */
	conf_foreach_param(count_param, &nparams);
	out = dump(c, CONF_DUMP_DEFAULTS);
	for (const char *p = out; *p; p = strchr(p, '\n') + 1) {
		assert_non_null(strchr(p, '\n'));
		assert_non_null(strstr(p, " = "));
		lines++;
	}
	assert_int_equal(lines, nparams);
	static const char *const want[][2] = {
		{ "checks", "whitelist, access, helo, envelope" },
		{ "socket_mode", "0660" },
		{ "milter_timeout", "7210s" },
		{ "trusted_networks", "127.0.0.0/8, ::1/128" },
		{ "auth_whitelist", "yes" },
		{ "debug", "no" },
		{ "score.reject", "10" },
		{ "score.defer", "0" },
		{ "score.tag", "5" },
		{ "hostname", "" },
		{ "header_prefix", "X-Portcullis" },
		{ "access.mode", "reject" },
		{ "access.on_error", "defer" },
		{ "access.client", "" },
		{ "helo.mode", "reject" },
		{ "helo.on_error", "skip" },
		{ "helo.non_fqdn", "reject" },
		{ "envelope.max_rcpts", "1000" },
		{ "envelope.too_many_rcpts", "defer" },
		{ "envelope.allow_no_brackets", "no" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		if (!dump_value(out, want[i][0], v, sizeof(v)))
			fail_msg("-d lacks %s", want[i][0]);
		if (strcmp(v, want[i][1]) != 0)
			fail_msg("-d: %s = '%s', expected '%s'", want[i][0], v, want[i][1]);
	}
	free(out);
	conf_unref(c);
}

/* -d output is a valid file that gives the defaults back; -n output of a
 * changed file gives the same -n output back. */
static void test_dump_round_trip(void **state)
{
	char path[512], err[1024] = "";
	struct conf *c = load_defaults(), *d;
	char *out, *out2;

	(void)state;
	out = dump(c, CONF_DUMP_DEFAULTS);
	write_file(path, sizeof(path), "defaults.conf", out);
	free(out);
	conf_unref(c);
	d = conf_load(path, err, sizeof(err));
	if (d == NULL)
		fail_msg("-d output does not load: %s", err);
	out = dump(d, CONF_DUMP_CHANGED);
	assert_string_equal(out, "");
	free(out);
	conf_unref(d);

	write_file(path, sizeof(path), "changed.conf",
	           "score.reject = 10\n" /* equal to the default: not printed */
	           "helo.mode = monitor\n"
	           "envelope.max_rcpts = 50\n"
	           "trusted_networks = [::1]/128\n"
	           "score.tag = 7\n"
	           "milter_timeout = 120\n"
	           "checks = helo envelope\n"
	           "helo.own_names = a.example b.example\n"
	           "socket_mode = 600\n"
	           "access.on_error = skip\n");
	c = conf_load(path, err, sizeof(err));
	if (c == NULL)
		fail_msg("%s", err);
	out = dump(c, CONF_DUMP_CHANGED);
	/* core keys first in table order, then modules in registry order */
	assert_string_equal(out, "checks = helo, envelope\n"
	                         "socket_mode = 0600\n"
	                         "milter_timeout = 2m\n"
	                         "trusted_networks = ::1/128\n"
	                         "score.tag = 7\n"
	                         "access.on_error = skip\n"
	                         "helo.mode = monitor\n"
	                         "helo.own_names = a.example, b.example\n"
	                         "envelope.max_rcpts = 50\n");
	write_file(path, sizeof(path), "changed2.conf", out);
	d = conf_load(path, err, sizeof(err));
	if (d == NULL)
		fail_msg("-n output does not load: %s", err);
	out2 = dump(d, CONF_DUMP_CHANGED);
	assert_string_equal(out, out2);
	free(out);
	free(out2);
	conf_unref(c);
	conf_unref(d);
}

/* Every declared key: unique, module keys start with "module.", every
 * default parses (conf_load(NULL) succeeded above) and -d names them all. */
struct keys {
	char *v[256];
	int n;
};

static void collect_key(const struct conf_param *p, void *arg)
{
	struct keys *k = arg;

	assert_true(k->n < 256);
	k->v[k->n++] = xstrdup(p->key);
	assert_non_null(p->doc);
	assert_true(p->doc[0] != '\0');
}

static int is_core_key(const char *key)
{
	for (const struct conf_param *p = core_params; p->key; p++)
		if (strcmp(p->key, key) == 0)
			return 1;
	return 0;
}

/* A dotted key is a core key (score.*, dns.*) or names its module. */
static void test_keys(void **state)
{
	struct keys k = { { 0 }, 0 };

	(void)state;
	conf_foreach_param(collect_key, &k);
	assert_true(k.n > 20);
	for (int i = 0; i < k.n; i++) {
		const char *dot = strchr(k.v[i], '.');

		for (int j = i + 1; j < k.n; j++)
			if (strcmp(k.v[i], k.v[j]) == 0)
				fail_msg("key %s declared twice", k.v[i]);
		if (dot && !is_core_key(k.v[i])) {
			char mod[64];

			snprintf(mod, sizeof(mod), "%.*s", (int)(dot - k.v[i]), k.v[i]);
			if (check_find(mod) < 0)
				fail_msg("key %s: no module %s", k.v[i], mod);
		}
	}
	for (int i = 0; i < check_registry_count; i++) {
		const struct check_module *m = check_registry[i];

		assert_int_equal(check_find(m->name), i);
		for (const struct conf_param *p = m->params; p && p->key; p++)
			if (strncmp(p->key, m->name, strlen(m->name)) != 0 ||
			    p->key[strlen(m->name)] != '.')
				fail_msg("module %s declares key %s", m->name, p->key);
	}
	assert_int_equal(check_find("nosuch"), -1);
	assert_int_equal(check_find(""), -1);
	for (int i = 0; i < k.n; i++)
		free(k.v[i]);
}

/* --- conf_set on a snapshot --------------------------------------------- */

static void test_conf_set(void **state)
{
	struct conf *c = load_defaults(), *d = load_defaults();
	char err[1024];

	(void)state;
	assert_int_equal(conf_set(c, "score.tag", "7", err, sizeof(err)), 0);
	assert_true(c->core.score_tag == 7);
	assert_true(d->core.score_tag == 5); /* snapshots are independent */

	/* errors: "KEY: reason" (no file, no line), value unchanged */
	assert_int_equal(conf_set(c, "score.tag", "x", err, sizeof(err)), -1);
	assert_string_equal(err, "score.tag: invalid number 'x'");
	assert_true(c->core.score_tag == 7);
	assert_int_equal(conf_set(c, "bogus", "1", err, sizeof(err)), -1);
	assert_string_equal(err, "unknown parameter 'bogus'");
	assert_int_equal(conf_set(c, "helo.bogus", "1", err, sizeof(err)), -1);
	assert_string_equal(err, "unknown parameter 'helo.bogus'");

	/* strings are replaced (old value freed: ASan checks) */
	assert_int_equal(conf_set(c, "header_prefix", "X-A", err, sizeof(err)), 0);
	assert_int_equal(conf_set(c, "header_prefix", "X-B", err, sizeof(err)), 0);
	assert_string_equal(c->core.header_prefix, "X-B");
	assert_string_equal(d->core.header_prefix, "X-Portcullis");

	/* a failed list of networks keeps the old list */
	assert_int_equal(conf_set(c, "trusted_networks", "10.0.0.0/8", err, sizeof(err)), 0);
	assert_int_equal(c->core.trusted_networks.n, 1);
	assert_int_equal(conf_set(c, "trusted_networks", "192.0.2.0/24, bogus", err, sizeof(err)),
	                 -1);
	assert_string_equal(err, "trusted_networks: invalid network 'bogus'");
	assert_int_equal(c->core.trusted_networks.n, 1);
	assert_int_equal(c->core.trusted_networks.v[0].len, 8);
	assert_int_equal(conf_set(c, "trusted_networks", "", err, sizeof(err)), 0);
	assert_int_equal(c->core.trusted_networks.n, 0);

	/* a failed table list keeps the old tables */
	snprintf(err, sizeof(err), "cidr:%s", good_cidr);
	{
		char spec[600], spec2[600];

		bcopy_str(spec, sizeof(spec), err);
		snprintf(spec2, sizeof(spec2), "cidr:%s", broken_cidr);
		assert_int_equal(conf_set(c, "access.client", spec, err, sizeof(err)), 0);
		assert_int_equal(conf_set(c, "access.client", spec2, err, sizeof(err)), -1);
		assert_non_null(strstr(err, broken_cidr));
		{
			char *out = dump(c, CONF_DUMP_CHANGED), v[700];

			assert_true(dump_value(out, "access.client", v, sizeof(v)));
			assert_string_equal(v, spec);
			free(out);
		}
	}

	/* modes */
	assert_int_equal(conf_set(c, "helo.mode", "monitor", err, sizeof(err)), 0);
	assert_int_equal(c->mod[check_find("helo")].mode, MODE_MONITOR);
	assert_int_equal(conf_set(c, "helo.on_error", "defer", err, sizeof(err)), 0);
	assert_int_equal(c->mod[check_find("helo")].on_error, ONERR_DEFER);
	assert_int_equal(d->mod[check_find("helo")].mode, MODE_REJECT);

	/* conf_finish resolves checks again; errors name the snapshot's path */
	assert_int_equal(conf_set(c, "checks", "helo", err, sizeof(err)), 0);
	assert_int_equal(conf_finish(c, err, sizeof(err)), 0);
	assert_int_equal(c->norder, 1);
	assert_int_equal(c->order[0], check_find("helo"));
	assert_int_equal(conf_set(c, "hostname", "mx.example.test", err, sizeof(err)), 0);
	assert_int_equal(conf_set(c, "contact", "hostmaster@example.test", err, sizeof(err)), 0);
	assert_int_equal(conf_finish(c, err, sizeof(err)), 0);
	assert_string_equal(c->hostname, "mx.example.test");
	assert_string_equal(c->contact, "hostmaster@example.test");
	assert_int_equal(conf_set(c, "contact", "", err, sizeof(err)), 0);
	assert_int_equal(conf_finish(c, err, sizeof(err)), 0);
	assert_string_equal(c->contact, "postmaster@mx.example.test");

	assert_int_equal(conf_set(c, "checks", "helo, nosuch", err, sizeof(err)), 0);
	assert_int_equal(conf_finish(c, err, sizeof(err)), -1);
	/* the list of known checks grows with the registry */
	assert_non_null(strstr(err, "(defaults): checks: unknown check 'nosuch' (known: access "
	                            "helo envelope"));
	assert_int_equal(conf_set(c, "checks", "envelope envelope", err, sizeof(err)), 0);
	assert_int_equal(conf_finish(c, err, sizeof(err)), -1);
	assert_string_equal(err, "(defaults): checks: 'envelope' listed twice");
	assert_int_equal(conf_set(c, "checks", "envelope", err, sizeof(err)), 0);
	assert_int_equal(conf_finish(c, err, sizeof(err)), 0);
	assert_int_equal(c->norder, 1);
	assert_int_equal(conf_set(c, "log_target", "file", err, sizeof(err)), 0);
	assert_int_equal(conf_finish(c, err, sizeof(err)), -1);
	assert_string_equal(err, "(defaults): log_target: invalid value 'file' (syslog or stderr)");
	assert_int_equal(conf_set(c, "log_target", "stderr", err, sizeof(err)), 0);
	assert_int_equal(conf_finish(c, err, sizeof(err)), 0);

	conf_unref(c);
	conf_unref(d);
}

/* --- references ------------------------------------------------------------ */

static void test_refcount(void **state)
{
	char path[512], err[1024] = "";
	struct conf *a, *b, *s1, *s2;
	struct conn *conn;
	struct reply r;

	(void)state;
	conf_install(NULL);
	assert_null(conf_current());

	a = load_defaults();
	assert_int_equal(a->refs, 1);
	assert_ptr_equal(conf_ref(a), a);
	assert_int_equal(a->refs, 2);
	conf_unref(a);
	assert_int_equal(a->refs, 1);

	conf_install(a); /* takes over our reference */
	assert_int_equal(a->refs, 1);
	s1 = conf_current();
	assert_ptr_equal(s1, a);
	assert_int_equal(a->refs, 2);

	/* a connection takes its own reference */
	conn = engine_conn_new(s1);
	assert_int_equal(a->refs, 3);

	write_file(path, sizeof(path), "reload.conf",
	           "score.tag = 7\nhostname = mx.example.test\n");
	b = conf_load(path, err, sizeof(err));
	if (b == NULL)
		fail_msg("%s", err);
	conf_install(b); /* reload: the old one lives on in s1 and conn */
	assert_int_equal(a->refs, 2);
	assert_true(s1->core.score_tag == 5);
	assert_string_equal(s1->path, "(defaults)");

	s2 = conf_current();
	assert_ptr_equal(s2, b);
	assert_int_equal(b->refs, 2);
	assert_true(s2->core.score_tag == 7);

	/* the old snapshot keeps working after its last holder but one lets go */
	conf_unref(s1);
	assert_int_equal(a->refs, 1);
	assert_true(conn->conf->core.score_tag == 5);
	engine_connect(conn, NULL, "192.0.2.7", &r);
	engine_helo(conn, "mail.example.org", &r);
	engine_mail(conn, "<a@example.org>", &r);
	engine_rcpt(conn, "<b@example.org>", &r);
	assert_int_equal(r.action, REPLY_CONTINUE);
	engine_conn_free(conn); /* frees a (ASan: no leak, no use after free) */

	/* a bad reload keeps the running snapshot */
	write_file(path, sizeof(path), "badreload.conf", "score.tag = x\n");
	assert_null(conf_load(path, err, sizeof(err)));
	s1 = conf_current();
	assert_ptr_equal(s1, b);
	assert_int_equal(b->refs, 3);
	conf_unref(s1);

	conf_install(NULL);
	assert_int_equal(b->refs, 1);
	assert_true(s2->core.score_tag == 7);
	conf_unref(s2);
	assert_null(conf_current());
}

/* Readers take and drop references while a writer keeps installing new
 * snapshots (useful under ASan/TSan). */
static volatile int stop_readers;

static void *reader(void *arg)
{
	long n = 0;

	(void)arg;
	while (!stop_readers || n < 1000) {
		struct conf *c = conf_current();

		if (c) {
			if (c->core.score_tag != 5 && c->core.score_tag != 7)
				abort();
			conf_unref(c);
		}
		n++;
	}
	return NULL;
}

static void test_refcount_threads(void **state)
{
	pthread_t t[4];
	char err[256], path[512];
	struct conf *seven;

	(void)state;
	write_file(path, sizeof(path), "seven.conf", "score.tag = 7\n");
	seven = conf_load(path, err, sizeof(err));
	assert_non_null(seven);
	stop_readers = 0;
	conf_install(load_defaults());
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, reader, NULL), 0);
	for (int i = 0; i < 200; i++)
		conf_install(i % 2 ? load_defaults() : conf_ref(seven));
	stop_readers = 1;
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	conf_install(NULL);
	assert_int_equal(seven->refs, 1);
	conf_unref(seven);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_types),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_files),
		cmocka_unit_test(test_broken_tables),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_load_folder),
		cmocka_unit_test(test_small_err),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_dump_round_trip),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_conf_set),
		cmocka_unit_test(test_refcount),
		cmocka_unit_test(test_refcount_threads),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
