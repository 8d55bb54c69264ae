/* tests/unit/test_wlist.c - the admin whitelist (lib/store/wlist.c) and the dump
 * text format (lib/store/dump.c)
 *
 * cmocka cases: canonical values per kind (table), record encode/decode,
 * add/replace/del on a real store in a temporary directory, the lookups of
 * every kind (exact, network, host and domain suffixes) seeing a change at
 * once, expiry by the settable clock (PORTCULLIS_CLOCK_FILE), four threads
 * looking up while entries change, a file that cannot be opened (lookups
 * fail, never match), and dump lines of every namespace written, parsed
 * back byte-identical, and bad lines refused with a reason.
 *
 *   test_wlist --bench DIR N   N client and N/10 network entries, then
 *                              prints lookups/s and the reload time of the
 *                              in-memory copy (a figure, not a test)
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "dump.h"
#include "grey.h"
#include "refs.h"
#include "store.h"
#include "util.h"
#include "wlist.h"

static char tmpdir[64];
static char clockfile[128];
static struct store *st;

static void set_clock(long long t)
{
	FILE *fp = fopen(clockfile, "w");

	assert_non_null(fp);
	fprintf(fp, "%lld\n", t);
	fclose(fp);
}

static time_t test_now(void *arg)
{
	(void)arg;
	return clock_now();
}

static int setup(void **state)
{
	char err[256];

	(void)state;
	strcpy(tmpdir, "/tmp/test_wlist.XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	set_clock(1800000000);
	st = store_open(tmpdir, err, sizeof(err));
	assert_non_null(st);
	store_set_clock(st, test_now, NULL);
	wlist_cache_reset();
	return 0;
}

static int teardown(void **state)
{
	DIR *d;
	struct dirent *de;

	(void)state;
	wlist_cache_reset();
	store_close(st);
	d = opendir(tmpdir);
	while (d && (de = readdir(d)) != NULL) {
		char p[512];
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", tmpdir, de->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	rmdir(tmpdir);
	return 0;
}

static void test_normalise(void **state)
{
	static const struct {
		enum wl_kind kind;
		const char *in, *want; /* want NULL: refused */
	} cases[] = {
		{ WL_CLIENT, "192.0.2.7", "192.0.2.7" },
		{ WL_CLIENT, "2001:DB8:0:0::7", "2001:db8::7" },
		{ WL_CLIENT, "192.0.2.0/24", NULL },
		{ WL_CLIENT, "1.2.3", NULL },
		{ WL_CLIENT, "", NULL },
		{ WL_NETWORK, "192.0.2.77/24", "192.0.2.0/24" },
		{ WL_NETWORK, "2001:db8:1:2:3::/48", "2001:db8:1::/48" },
		{ WL_NETWORK, "10.1.2.3/0", "0.0.0.0/0" },
		{ WL_NETWORK, "192.0.2.7", NULL },
		{ WL_NETWORK, "192.0.2.0/33", NULL },
		{ WL_HOST, "MX.Example.COM.", "mx.example.com" },
		{ WL_HOST, "*.example.com", ".example.com" },
		{ WL_HOST, ".Example.com", ".example.com" },
		{ WL_HOST, "bad_name!.com", NULL },
		{ WL_HOST, "*.", NULL },
		{ WL_SENDER, "<User@Example.ORG>", "user@example.org" },
		{ WL_SENDER, "user@example.org", "user@example.org" },
		{ WL_SENDER, "<>", NULL },
		{ WL_SENDER, "no-domain", NULL },
		{ WL_SENDER, "a\r\n250 OK@example.org", NULL },
		{ WL_DOMAIN, "Example.COM", "example.com" },
		{ WL_DOMAIN, "@example.com", "example.com" },
		{ WL_DOMAIN, "*.example.com", "example.com" },
		{ WL_DOMAIN, "[192.0.2.1]", NULL },
		{ WL_RECIPIENT, "<Postmaster@Example.test>", "postmaster@example.test" },
		{ WL_RECIPIENT, "100%s%n@Example.test", "100%s%n@example.test" }, /* atext */
	};
	char out[WLIST_VALUE_MAX + 1], err[200];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int rc =
		    wlist_normalise(cases[i].kind, cases[i].in, out, sizeof(out), err, sizeof(err));
		if (cases[i].want == NULL) {
			if (rc == 0)
				fail_msg("case %zu: %s '%s' accepted as '%s'", i,
				         wlist_kind_name(cases[i].kind), cases[i].in, out);
			if (err[0] == '\0' || strchr(err, '\n') != NULL)
				fail_msg("case %zu: reason '%s'", i, err);
		} else {
			if (rc != 0)
				fail_msg("case %zu: %s '%s' refused: %s", i,
				         wlist_kind_name(cases[i].kind), cases[i].in, err);
			assert_string_equal(out, cases[i].want);
		}
	}
	assert_int_equal(wlist_kind_parse("network"), WL_NETWORK);
	assert_int_equal(wlist_kind_parse("Network"), -1);
	assert_string_equal(wlist_kind_name(WL_RECIPIENT), "recipient");
}

static void test_encode_decode(void **state)
{
	struct wl_entry e = { WL_HOST, ".example.net", 1800000000, "root", "a\ncomment", 0 }, d;
	char key[WLIST_KEY_MAX + 1], val[2048];
	size_t klen, vlen;

	(void)state;
	klen = wlist_key(e.kind, e.value, key, sizeof(key));
	assert_string_equal(key, "host:.example.net");
	vlen = wlist_encode(&e, val, sizeof(val));
	assert_int_equal(wlist_decode(key, klen, val, vlen, 1900000000, &d), 0);
	assert_int_equal(d.kind, WL_HOST);
	assert_string_equal(d.value, ".example.net");
	assert_int_equal(d.created, 1800000000);
	assert_string_equal(d.by, "root");
	/* the newline of the comment does not break the record */
	assert_null(strchr(d.comment, '\n'));
	assert_int_equal(d.expires, 1900000000);
	assert_int_equal(wlist_decode("nokind", 6, val, vlen, 0, &d), -1);
	assert_int_equal(wlist_decode("bogus:x", 7, val, vlen, 0, &d), -1);
	assert_int_equal(wlist_decode(key, klen, "by=x\n", 5, 0, &d), -1);
}

static void add(enum wl_kind kind, const char *value, time_t expires)
{
	struct wl_entry e = { 0 };
	char err[200];

	e.kind = kind;
	assert_int_equal(wlist_normalise(kind, value, e.value, sizeof(e.value), err, sizeof(err)),
	                 0);
	e.created = clock_now();
	e.expires = expires;
	strcpy(e.by, "test");
	assert_true(wlist_add(st, &e) >= 0);
}

static int client(const char *ip, const char *name, char *match)
{
	struct ipaddr a = { 0 };

	if (ip)
		assert_int_equal(ip_parse(ip, &a), 0);
	return wlist_match_client(st, &a, name, match, WLIST_KEY_MAX + 1);
}

static int sender(const char *addr, char *match)
{
	struct mailaddr m;

	addr_parse(addr, &m);
	return wlist_match_sender(st, &m, match, WLIST_KEY_MAX + 1);
}

static int rcpt(const char *addr, char *match)
{
	struct mailaddr m;

	addr_parse(addr, &m);
	return wlist_match_rcpt(st, &m, match, WLIST_KEY_MAX + 1);
}

static void test_match(void **state)
{
	char m[WLIST_KEY_MAX + 1];
	struct wl_entry e;

	(void)state;
	/* an empty (absent) namespace matches nothing */
	assert_int_equal(client("192.0.2.7", "mx.example.net", m), 0);
	assert_int_equal(sender("<a@example.org>", m), 0);

	add(WL_CLIENT, "192.0.2.7", 0);
	assert_int_equal(client("192.0.2.7", "unknown", m), 1);
	assert_string_equal(m, "client:192.0.2.7");
	assert_int_equal(client("192.0.2.8", "unknown", m), 0);
	assert_int_equal(client("::ffff:192.0.2.7", "unknown", m), 1); /* v4-mapped */

	add(WL_NETWORK, "198.51.100.0/24", 0);
	add(WL_NETWORK, "2001:db8:1::/48", 0);
	assert_int_equal(client("198.51.100.200", NULL, m), 1);
	assert_string_equal(m, "network:198.51.100.0/24");
	assert_int_equal(client("2001:db8:1:ffff::1", NULL, m), 1);
	assert_int_equal(client("2001:db8:2::1", NULL, m), 0);
	assert_int_equal(client("198.51.101.1", NULL, m), 0);

	add(WL_HOST, "mail.example.com", 0);
	add(WL_HOST, "*.example.net", 0);
	assert_int_equal(client(NULL, "Mail.Example.COM", m), 1);
	assert_string_equal(m, "host:mail.example.com");
	assert_int_equal(client(NULL, "x.mail.example.com", m), 0);
	assert_int_equal(client(NULL, "a.b.example.net", m), 1);
	assert_string_equal(m, "host:.example.net");
	assert_int_equal(client(NULL, "example.net", m), 0); /* only below it */
	assert_int_equal(client(NULL, "unknown", m), 0);

	add(WL_SENDER, "<Boss@Example.org>", 0);
	assert_int_equal(sender("<boss@EXAMPLE.org>", m), 1);
	assert_string_equal(m, "sender:boss@example.org");
	assert_int_equal(sender("<other@example.org>", m), 0);
	assert_int_equal(sender("<>", m), 0);

	add(WL_DOMAIN, "example.com", 0);
	assert_int_equal(sender("<x@example.com>", m), 1);
	assert_int_equal(sender("<x@lists.Example.com>", m), 1); /* and below */
	assert_string_equal(m, "domain:example.com");
	assert_int_equal(sender("<x@notexample.com>", m), 0);

	add(WL_RECIPIENT, "<abuse-reports@example.test>", 0);
	assert_int_equal(rcpt("<Abuse-Reports@example.test>", m), 1);
	assert_int_equal(rcpt("<other@example.test>", m), 0);
	/* a recipient entry is not a sender entry */
	assert_int_equal(sender("<abuse-reports@example.test>", m), 0);

	/* a change is seen by the next lookup */
	assert_int_equal(wlist_del(st, WL_CLIENT, "192.0.2.7"), 1);
	assert_int_equal(wlist_del(st, WL_CLIENT, "192.0.2.7"), 0);
	assert_int_equal(client("192.0.2.7", "unknown", m), 0);
	assert_int_equal(wlist_del(st, WL_NETWORK, "198.51.100.0/24"), 1);
	assert_int_equal(client("198.51.100.200", NULL, m), 0);
	assert_int_equal(wlist_get(st, WL_DOMAIN, "example.com", &e), 1);
	assert_string_equal(e.by, "test");
}

static void test_expiry(void **state)
{
	char m[WLIST_KEY_MAX + 1];
	struct wl_entry e;

	(void)state;
	add(WL_CLIENT, "192.0.2.9", clock_now() + 3600);
	add(WL_NETWORK, "203.0.113.0/24", clock_now() + 3600);
	/* replacing reports it */
	e = (struct wl_entry){ WL_CLIENT, "192.0.2.9", clock_now(), "x", "", clock_now() + 7200 };
	assert_int_equal(wlist_add(st, &e), 1);
	assert_int_equal(client("192.0.2.9", NULL, m), 1);
	assert_int_equal(client("203.0.113.5", NULL, m), 1);
	set_clock(1800000000 + 3601);
	/* no write happened: the copy itself must honour the expiry */
	assert_int_equal(client("203.0.113.5", NULL, m), 0);
	assert_int_equal(client("192.0.2.9", NULL, m), 1);
	set_clock(1800000000 + 7201);
	assert_int_equal(client("192.0.2.9", NULL, m), 0);
	assert_int_equal(wlist_get(st, WL_CLIENT, "192.0.2.9", &e), 0);
}

/* A whitelist file that cannot be opened (a directory in its way, which
 * is not corruption: nothing is moved aside): lookups fail with -1, so the
 * check retries and its on_error (skip) applies; nothing matches falsely. */
static void test_store_error(void **state)
{
	char path[128], m[WLIST_KEY_MAX + 1];
	struct mailaddr a;

	(void)state;
	snprintf(path, sizeof(path), "%s/whitelist.tdb", tmpdir);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(client("192.0.2.7", "mx.example.net", m), -1);
	addr_parse("<a@example.org>", &a);
	assert_int_equal(wlist_match_sender(st, &a, m, sizeof(m)), -1);
	assert_int_equal(wlist_match_rcpt(st, &a, m, sizeof(m)), -1);
	assert_int_equal(rmdir(path), 0);
	/* once the file can be made, lookups work again */
	assert_int_equal(client("192.0.2.7", "mx.example.net", m), 0);
}

struct thr {
	int lookups, errors;
};

static volatile int stop_threads;

static void *looker(void *arg)
{
	struct thr *t = arg;
	struct ipaddr a;
	char m[WLIST_KEY_MAX + 1];

	ip_parse("192.0.2.1", &a);
	while (!__atomic_load_n(&stop_threads, __ATOMIC_ACQUIRE)) {
		int rc = wlist_match_client(st, &a, "h.example.org", m, sizeof(m));
		if (rc < 0 || (rc == 1 && strcmp(m, "client:192.0.2.1") != 0))
			t->errors++;
		t->lookups++;
	}
	return NULL;
}

static void test_threads(void **state)
{
	pthread_t th[4];
	struct thr t[4] = { { 0, 0 } };
	char m[WLIST_KEY_MAX + 1];

	(void)state;
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, looker, &t[i]), 0);
	for (int i = 0; i < 200; i++) {
		char v[32];
		snprintf(v, sizeof(v), "10.0.%d.%d", i / 250, i % 250);
		add(WL_CLIENT, v, 0);
		if (i % 2)
			add(WL_CLIENT, "192.0.2.1", 0);
		else
			assert_true(wlist_del(st, WL_CLIENT, "192.0.2.1") >= 0);
	}
	__atomic_store_n(&stop_threads, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(t[i].errors, 0);
		assert_true(t[i].lookups > 0);
	}
	/* the last change (i = 199: added) is what the copy shows */
	assert_int_equal(client("192.0.2.1", NULL, m), 1);
	assert_int_equal(client("10.0.0.199", NULL, m), 1);
}

/* dump_write then dump_parse gives back the same bytes. */
static void roundtrip(const char *ns, const void *key, size_t keylen, const void *val,
                      size_t vallen, time_t expires, const char *want_line)
{
	char *buf = NULL, err[300];
	size_t size = 0;
	FILE *fp = open_memstream(&buf, &size);
	struct dump_rec r;

	assert_non_null(fp);
	assert_int_equal(dump_write(fp, ns, key, keylen, val, vallen, expires, err, sizeof(err)),
	                 0);
	fclose(fp);
	if (want_line)
		assert_string_equal(buf, want_line);
	assert_true(size > 0 && buf[size - 1] == '\n');
	assert_null(strchr(buf, '\n') == buf + size - 1 ? NULL : "one line");
	buf[size - 1] = '\0';
	if (dump_parse(buf, &r, err, sizeof(err)) != 0)
		fail_msg("parse back of %s: %s", ns, err);
	assert_string_equal(r.ns, ns);
	assert_int_equal(r.keylen, keylen);
	assert_memory_equal(r.key, key, keylen);
	assert_int_equal(r.vallen, vallen);
	assert_memory_equal(r.val, val, vallen);
	assert_int_equal(r.expires, expires);
	dump_rec_free(&r);
	free(buf);
}

static void test_dump_roundtrip(void **state)
{
	struct grey_rec g = { GREY_PASSED, 3, 1, 1800000000, 1800000400 };
	struct awl_rec a = { 5, 1800000000, 1800009999 };
	unsigned char gv[GREY_REC_SIZE], av[AWL_REC_SIZE];
	struct wl_entry e = {
		WL_SENDER, "user@example.org", 1800000000, "root", "tab\there, é", 0
	};
	char wv[2048];
	size_t wlen;
	const char *key = "ip:192.0.2.0/24 user@example.org rcpt@example.test";
	const char *ref = "time=1800000000\nclient_addr=192.0.2.7\nclient_name=unknown\n"
	                  "helo=localhost\nfrom=a@example.org\nrcpt=b@example.test reject "
	                  "helo.localhost\nverdict=reject\nsymbol=helo.localhost helo\n"
	                  "reply=550 5.7.1 HELO localhost from a remote client\n";
	static const unsigned char bin[] = { 0, 1, '\t', '\n', '\\', 0xff, 'x' };

	(void)state;
	grey_rec_encode(&g, gv);
	awl_rec_encode(&a, av);
	roundtrip(GREY_NS, key, strlen(key), gv, sizeof(gv), 1803024000,
	          "greylist\tip:192.0.2.0/24 user@example.org rcpt@example.test\t"
	          "2027-02-19T08:00:00Z\tflags=passed\tpasses=3\tdefers=1\t"
	          "first=2027-01-15T08:00:00Z\tlast=2027-01-15T08:06:40Z\n");
	g.flags = 0;
	grey_rec_encode(&g, gv);
	roundtrip(GREY_NS, key, strlen(key), gv, sizeof(gv), 0, NULL);
	roundtrip(AWL_NS, "ip:192.0.2.0/24", 15, av, sizeof(av), 1803024000,
	          "awl\tip:192.0.2.0/24\t2027-02-19T08:00:00Z\tpasses=5\t"
	          "first=2027-01-15T08:00:00Z\tlast=2027-01-15T10:46:39Z\n");
	wlen = wlist_encode(&e, wv, sizeof(wv));
	roundtrip(WLIST_NS, "sender:user@example.org", 23, wv, wlen, 0, NULL);
	roundtrip(REFS_NS, "AbCdEf0123", 10, ref, strlen(ref), 1800604800, NULL);
	roundtrip("stats", "greylist.passes", 15, "42", 2, 0,
	          "stats\tgreylist.passes\tnever\tdata=42\n");
	roundtrip("other", "k\tey", 4, bin, sizeof(bin), 0,
	          "other\tk\\tey\tnever\tdata=\\x00\\x01\\t\\n\\\\\\xffx\n");
}

static void test_dump_bad_lines(void **state)
{
	static const struct {
		const char *line, *reason; /* reason: a part of the message */
	} bad[] = {
		{ "greylist\tkey", "fields" },
		{ "Grey\tk\tnever\tdata=1", "namespace" },
		{ "greylist\tnot-three-parts\tnever\tflags=-\tpasses=0\tdefers=0\tfirst=0\tlast=0",
		  "NET SENDER RCPT" },
		{ "greylist\ta b c\tsoon\tflags=-\tpasses=0\tdefers=0\tfirst=0\tlast=0", "expiry" },
		{ "greylist\ta b c\tnever\tflags=maybe\tpasses=0\tdefers=0\tfirst=0\tlast=0",
		  "flags" },
		{ "greylist\ta b c\tnever\tflags=-\tpasses=x\tdefers=0\tfirst=0\tlast=0",
		  "passes" },
		{ "greylist\ta b c\tnever\tflags=-\tpasses=1\tfirst=0\tlast=0", "defers" },
		{ "awl\tip:1.2.3.0/24\tnever\tpasses=1\tfirst=2026-13-45T00:00:00Z\tlast=0",
		  "first" },
		{ "whitelist\tclient:999.1.1.1\tnever\tcreated=0\tby=x\tcomment=", "IP address" },
		{ "whitelist\tclient:2001:DB8::1\tnever\tcreated=0\tby=x\tcomment=", "canonical" },
		{ "whitelist\tfriend:x\tnever\tcreated=0\tby=x\tcomment=", "known kind" },
		{ "whitelist\tclient:192.0.2.1\tnever\tcreated=0\tcomment=", "by=" },
		{ "refs\tREF\tnever\tno-equals-sign", "name=value" },
		{ "stats\tk\tnever\tdata=1\tdata=2", "data=" },
		{ "stats\tk\tnever\tdata=\\q", "escape" },
		{ "stats\t\tnever\tdata=1", "key" },
	};
	char buf[512], err[300];
	struct dump_rec r;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		bcopy_str(buf, sizeof(buf), bad[i].line);
		err[0] = '\0';
		if (dump_parse(buf, &r, err, sizeof(err)) != -1)
			fail_msg("case %zu accepted: %s", i, bad[i].line);
		if (strstr(err, bad[i].reason) == NULL)
			fail_msg("case %zu: reason '%s' lacks '%s'", i, err, bad[i].reason);
	}
	strcpy(buf, "# a comment");
	assert_int_equal(dump_parse(buf, &r, err, sizeof(err)), 1);
	buf[0] = '\0';
	assert_int_equal(dump_parse(buf, &r, err, sizeof(err)), 1);
}

static double secs(void)
{
	return (double)now_ms() / 1000.0;
}

static int bench(const char *dir, int n)
{
	char err[256], m[WLIST_KEY_MAX + 1];
	struct ipaddr a;
	double t0, t1;
	long hits = 0, lookups = 0;

	st = store_open(dir, err, sizeof(err));
	if (st == NULL) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	wlist_prepare(st);
	t0 = secs();
	for (int i = 0; i < n + n / 10; i++) {
		struct wl_entry e = { 0 };
		if (i < n) {
			e.kind = WL_CLIENT;
			snprintf(e.value, sizeof(e.value), "10.%d.%d.%d", i >> 16 & 255,
			         i >> 8 & 255, i & 255);
		} else {
			e.kind = WL_NETWORK;
			snprintf(e.value, sizeof(e.value), "172.%d.%d.0/24", 16 + (i >> 8 & 15),
			         i & 255);
		}
		e.created = 1;
		if (wlist_add(st, &e) < 0)
			return 1;
	}
	t1 = secs();
	printf("added %d entries (durable) in %.2f s: %.0f/s\n", n + n / 10, t1 - t0,
	       (n + n / 10) / (t1 - t0));
	t0 = secs();
	ip_parse("192.0.2.1", &a);
	(void)wlist_match_client(st, &a, "mx.example.org", m, sizeof(m));
	t1 = secs();
	printf("first lookup (loads the copy): %.1f ms\n", (t1 - t0) * 1000);
	t0 = secs();
	while (secs() - t0 < 2.0) {
		for (int i = 0; i < 1000; i++, lookups++) {
			char ip[32];
			snprintf(ip, sizeof(ip), "10.0.%d.%d", (int)(lookups >> 8 & 255),
			         (int)(lookups & 255));
			ip_parse(ip, &a);
			hits += wlist_match_client(st, &a, "mx.example.org", m, sizeof(m)) == 1;
		}
	}
	t1 = secs();
	printf("%ld client lookups (%ld hits) in %.2f s: %.0f/s from one thread\n", lookups, hits,
	       t1 - t0, lookups / (t1 - t0));
	wlist_cache_reset();
	store_close(st);
	return 0;
}

int main(int argc, char **argv)
{
	int rc;

	if (argc == 4 && strcmp(argv[1], "--bench") == 0)
		return bench(argv[2], atoi(argv[3]));

	/* clock_now() reads the variable once: one file for every case */
	snprintf(clockfile, sizeof(clockfile), "/tmp/test_wlist.clock.%ld", (long)getpid());
	setenv("PORTCULLIS_CLOCK_FILE", clockfile, 1);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normalise),
		cmocka_unit_test(test_encode_decode),
		cmocka_unit_test_setup_teardown(test_match, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_error, setup, teardown),
		cmocka_unit_test(test_dump_roundtrip),
		cmocka_unit_test(test_dump_bad_lines),
	};

	rc = cmocka_run_group_tests(tests, NULL, NULL);
	unlink(clockfile);
	return rc;
}
