/* tests/unit/test_checks.c - the check modules (lib/checks/) and the
 * verdict calls (lib/check.c)
 *
 * The HELO and access hooks are called directly, found through
 * check_find()/check_registry[] and given a snapshot from conf_load(NULL) +
 * conf_set() + conf_finish() and a hand-built connection; the envelope
 * checks go through the engine (so the postmaster@ rule applies as in the
 * daemon).  Table-driven:
 *  - HELO: name, client address, expected symbol (or none) and reply code,
 *    covering every sub-check and good names; each sub-check's own mode;
 *  - envelope: sender, recipient -> symbol, code, text;
 *  - access: client, client name, HELO, and the lookup order for sender and
 *    recipient (address, domain, parent domains, local@, <> for the null
 *    sender), DUNNO stopping the search, several tables.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "conf.h"
#include "engine.h"
#include "testutil.h"
#include "util.h"

/* --- temporary folder, snapshots -------------------------------------------- */

static int group_setup(void **state)
{
	(void)state;
	if (tmpdir_create("pc-checks") < 0)
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	return tmpdir_remove();
}

static struct conf **owned;
static int nowned;

/* Defaults plus a test base, then the NULL-terminated key/value pairs; the
 * snapshot is released by release_confs() after the test. */
static struct conf *mkconf_v(const char *const *kv)
{
	char err[1024] = "";
	struct conf *c = conf_load(NULL, err, sizeof(err));
	static const char *const base[] = {
		"hostname",
		"mx.example.test",
		"contact",
		"postmaster@example.test",
		"trusted_networks",
		"",
		"log_target",
		"stderr",
		"score.tag",
		"0",
		NULL,
	};

	if (c == NULL)
		fail_msg("conf_load(NULL): %s", err);
	for (int i = 0; base[i]; i += 2)
		if (conf_set(c, base[i], base[i + 1], err, sizeof(err)) < 0)
			fail_msg("%s", err);
	for (int i = 0; kv && kv[i]; i += 2)
		if (conf_set(c, kv[i], kv[i + 1], err, sizeof(err)) < 0)
			fail_msg("conf_set %s = %s: %s", kv[i], kv[i + 1], err);
	if (conf_finish(c, err, sizeof(err)) < 0)
		fail_msg("conf_finish: %s", err);
	owned = xrealloc(owned, sizeof(*owned) * (size_t)(nowned + 1));
	owned[nowned++] = c;
	return c;
}

/* Per-test teardown: the snapshots made by mkconf(), also when an
 * assertion failed half-way. */
static int release_confs(void **state)
{
	(void)state;
	for (int i = 0; i < nowned; i++)
		conf_unref(owned[i]);
	free(owned);
	owned = NULL;
	nowned = 0;
	return 0;
}

#define mkconf(...) mkconf_v((const char *const[]){ __VA_ARGS__, NULL })

/* A connection as the engine would have it after connect and HELO. */
static void mkconn(struct conn *c, struct conf *cf, const char *ip, const char *name,
                   const char *helo, const char *our_name)
{
	memset(c, 0, sizeof(*c));
	c->conf = cf;
	bcopy_str(c->client_name, sizeof(c->client_name), name ? name : "unknown");
	bcopy_str(c->our_name, sizeof(c->our_name), our_name ? our_name : cf->hostname);
	if (ip) {
		if (ip_parse(ip, &c->client_ip) < 0)
			fail_msg("bad test address %s", ip);
		ip_format(&c->client_ip, c->client_addr, sizeof(c->client_addr));
	}
	if (helo) {
		c->helo_seen = 1;
		c->helo_truncated = bcopy_str(c->helo, sizeof(c->helo), helo) >= sizeof(c->helo);
	}
}

/* Call module's hook for stage st with cx (conf and mconf filled in). */
static void run_hook(struct conf *cf, const char *module, enum stage st, struct check_ctx *cx,
                     struct verdicts *out)
{
	int idx = check_find(module);

	assert_true(idx >= 0);
	assert_non_null(check_registry[idx]->hook[st]);
	cx->conf = cf;
	cx->mconf = conf_module(cf, idx);
	memset(out, 0, sizeof(*out));
	assert_int_equal(check_registry[idx]->hook[st](cx, out), CHECK_DONE);
	for (int i = 0; i < out->n; i++)
		assert_int_equal(strncmp(out->v[i].symbol, module, strlen(module)), 0);
}

static const char *act_name(enum action a)
{
	static const char *const n[] = { "DUNNO", "OK", "SCORE", "DEFER", "REJECT" };

	return (unsigned)a < 5 ? n[a] : "?";
}

/* --- the registry -------------------------------------------------------- */

static void test_registry(void **state)
{
	static const struct {
		const char *name;
		unsigned hooks;
	} want[] = {
		{ "access",
		  1u << STAGE_CONNECT | 1u << STAGE_HELO | 1u << STAGE_MAIL | 1u << STAGE_RCPT },
		{ "helo", 1u << STAGE_HELO | 1u << STAGE_MAIL },
		{ "envelope", 1u << STAGE_MAIL | 1u << STAGE_RCPT },
	};

	(void)state;
	assert_true(check_registry_count >= (int)ARRAY_SIZE(want));
	/* Every registered module is complete: documented, with defaults and
	 * at least one hook, and findable by its name. */
	for (int i = 0; i < check_registry_count; i++) {
		const struct check_module *m = check_registry[i];
		unsigned hooks = 0;

		assert_int_equal(check_find(m->name), i);
		assert_non_null(m->doc);
		assert_non_null(m->default_mode);
		assert_non_null(m->default_on_error);
		assert_true(m->conf_size > 0);
		for (int st = 0; st < STAGE_COUNT; st++)
			hooks |= m->hook[st] ? 1u << st : 0;
		if (hooks == 0)
			fail_msg("module %s has no hook", m->name);
	}
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		int idx = check_find(want[i].name);
		const struct check_module *m;
		unsigned hooks = 0;

		assert_true(idx >= 0);
		m = check_registry[idx];
		assert_string_equal(m->name, want[i].name);
		assert_non_null(m->doc);
		assert_non_null(m->params);
		assert_true(m->conf_size > 0);
		assert_non_null(m->default_mode);
		assert_non_null(m->default_on_error);
		for (int st = 0; st < STAGE_COUNT; st++)
			if (m->hook[st])
				hooks |= 1u << st;
		assert_int_equal(hooks, want[i].hooks);
	}
	assert_int_equal(check_find("nosuch"), -1);
	assert_int_equal(check_find("HELO"), -1);
}

/* --- the verdict calls ------------------------------------------------------ */

static void test_verdicts(void **state)
{
	struct verdicts out;
	char sym[48];

	(void)state;
	memset(&out, 0, sizeof(out));
	verdict_ok(&out, "m.ok");
	verdict_score(&out, MODE_MONITOR, "m.score", 2.5, "scored %d", 7);
	verdict_reject(&out, MODE_DEFER, "m.reject", "550", "5.7.1", "no %s", "100%s%n");
	verdict_defer(&out, MODE_REJECT, "m.defer", "451", "4.3.0", "later");
	assert_int_equal(out.n, 4);
	assert_int_equal(out.v[0].action, ACT_OK);
	assert_int_equal(out.v[0].mode, MODE_REJECT);
	assert_string_equal(out.v[0].symbol, "m.ok");
	assert_int_equal(out.v[1].action, ACT_SCORE);
	assert_int_equal(out.v[1].mode, MODE_MONITOR);
	assert_true(out.v[1].score == 2.5);
	assert_string_equal(out.v[1].text, "scored 7");
	assert_int_equal(out.v[2].action, ACT_REJECT);
	assert_int_equal(out.v[2].mode, MODE_DEFER);
	assert_string_equal(out.v[2].code, "550");
	assert_string_equal(out.v[2].xcode, "5.7.1");
	assert_string_equal(out.v[2].text, "no 100%s%n"); /* raw: encoded by the engine */
	assert_int_equal(out.v[3].action, ACT_DEFER);
	assert_string_equal(out.v[3].code, "451");

	/* beyond VERDICTS_MAX the rest is dropped, the first ones are kept */
	memset(&out, 0, sizeof(out));
	for (int i = 0; i < VERDICTS_MAX + 5; i++) {
		snprintf(sym, sizeof(sym), "m.v%d", i);
		verdict_reject(&out, MODE_REJECT, sym, "550", "5.7.1", "%d", i);
	}
	assert_int_equal(out.n, VERDICTS_MAX);
	assert_string_equal(out.v[0].symbol, "m.v0");
	assert_string_equal(out.v[VERDICTS_MAX - 1].text, "15");

	/* long texts and symbols are cut, not overrun */
	memset(&out, 0, sizeof(out));
	{
		char big[2000];

		memset(big, 'x', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		verdict_reject(&out, MODE_REJECT, big, "5500", "5.7.1.1.1.1.1", "%s", big);
		assert_int_equal(strlen(out.v[0].text), VERDICT_TEXT_MAX - 1);
		assert_int_equal(strlen(out.v[0].symbol), sizeof(out.v[0].symbol) - 1);
		assert_int_equal(strlen(out.v[0].code), 3);
	}

	memset(&out, 0, sizeof(out));
	assert_int_equal(check_retry(&out, "DNS timeout for %s", "example.org"), CHECK_RETRY);
	assert_string_equal(out.error, "DNS timeout for example.org");
	assert_int_equal(out.n, 0);
}

/* --- HELO --------------------------------------------------------------------- */

struct helo_case {
	const char *helo;
	const char *ip;       /* client address, NULL: unknown */
	const char *symbol;   /* NULL: no verdict */
	const char *our_name; /* the MTA's $j, NULL: the configured hostname */
};

static const struct helo_case helo_cases[] = {
	/* good names */
	{ "mail.example.org", "198.51.100.7", NULL, NULL },
	{ "MAIL.Example.ORG", "198.51.100.7", NULL, NULL },
	{ "mail.example.org.", "198.51.100.7", NULL, NULL },
	{ "host_name.example.org", "198.51.100.7", NULL, NULL }, /* '_' tolerated */
	{ "a-b.c-d.example", "198.51.100.7", NULL, NULL },
	{ "xn--bcher-kva.example", "198.51.100.7", NULL, NULL },
	{ "1.2.3.example.net", "198.51.100.7", NULL, NULL },
	{ "mail.example.org", NULL, NULL, NULL },
	{ "mail.example.org", "2001:db8::7", NULL, NULL },
	/* address literals that match */
	{ "[198.51.100.7]", "198.51.100.7", NULL, NULL },
	{ "[IPv6:2001:db8::7]", "2001:db8::7", NULL, NULL },
	{ "[IPv6:2001:DB8:0::7]", "2001:db8::7", NULL, NULL },
	{ "[198.51.100.7]", NULL, NULL, NULL }, /* nothing to compare with */

	/* helo.syntax */
	{ "", "198.51.100.7", "helo.syntax", NULL },
	{ "foo bar.example", "198.51.100.7", "helo.syntax", NULL },
	{ "-foo.example", "198.51.100.7", "helo.syntax", NULL },
	{ "foo-.example", "198.51.100.7", "helo.syntax", NULL },
	{ "foo..example", "198.51.100.7", "helo.syntax", NULL },
	{ ".example.org", "198.51.100.7", "helo.syntax", NULL },
	{ "exa$mple.com", "198.51.100.7", "helo.syntax", NULL },
	{ "mail.example.org\r\n", "198.51.100.7", "helo.syntax", NULL },
	{ "caf\xc3\xa9.example", "198.51.100.7", "helo.syntax", NULL },
	{ "a.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.example",
	  "198.51.100.7", "helo.syntax", NULL }, /* a 64-byte label */
	{ "[300.1.1.1]", "198.51.100.7", "helo.syntax", NULL },
	{ "[198.51.100.7", "198.51.100.7", "helo.syntax", NULL },
	{ "[]", "198.51.100.7", "helo.syntax", NULL },
	{ "[2001:db8::7]", "2001:db8::7", "helo.syntax", NULL }, /* needs the IPv6: tag */
	{ "[mail.example.org]", "198.51.100.7", "helo.syntax", NULL },

	/* helo.bare_ip */
	{ "198.51.100.7", "198.51.100.7", "helo.bare_ip", NULL },
	{ "192.0.2.1", "198.51.100.7", "helo.bare_ip", NULL },
	{ "2001:db8::7", "2001:db8::7", "helo.bare_ip", NULL },

	/* helo.literal_mismatch */
	{ "[198.51.100.8]", "198.51.100.7", "helo.literal_mismatch", NULL },
	{ "[IPv6:2001:db8::8]", "2001:db8::7", "helo.literal_mismatch", NULL },
	{ "[198.51.100.7]", "2001:db8::7", "helo.literal_mismatch", NULL },

	/* helo.localhost */
	{ "localhost", "198.51.100.7", "helo.localhost", NULL },
	{ "LOCALHOST", "198.51.100.7", "helo.localhost", NULL },
	{ "localhost.localdomain", "198.51.100.7", "helo.localhost", NULL },
	{ "localhost.", "198.51.100.7", "helo.localhost", NULL },
	{ "[127.0.0.1]", "198.51.100.7", "helo.localhost", NULL },
	{ "[127.1.2.3]", "198.51.100.7", "helo.localhost", NULL },
	{ "[IPv6:::1]", "2001:db8::7", "helo.localhost", NULL },
	{ "localhost", "127.0.0.1", NULL, NULL },
	{ "localhost", "::1", NULL, NULL },
	{ "[127.0.0.1]", "127.0.0.1", NULL, NULL },
	{ "localhost", "::ffff:127.0.0.1", NULL, NULL },

	/* helo.own_name: hostname, helo.own_names, $j, helo.own_addresses */
	{ "mx.example.test", "198.51.100.7", "helo.own_name", NULL },
	{ "MX.Example.Test.", "198.51.100.7", "helo.own_name", NULL },
	{ "mx2.example.test", "198.51.100.7", "helo.own_name", NULL },
	{ "relay.example.test", "198.51.100.7", "helo.own_name", NULL },
	{ "mta.example.net", "198.51.100.7", "helo.own_name", "mta.example.net" },
	{ "mta.example.net", "198.51.100.7", NULL, NULL },
	{ "[192.0.2.25]", "198.51.100.7", "helo.own_name", NULL },
	{ "[IPv6:2001:db8::25]", "2001:db8::7", "helo.own_name", NULL },
	{ "mx.example.test", "127.0.0.1", NULL, NULL },  /* ourselves */
	{ "mx.example.test", "192.0.2.25", NULL, NULL }, /* our own address */
	{ "[192.0.2.25]", "192.0.2.25", NULL, NULL },
	{ "mx3.example.test", "198.51.100.7", NULL, NULL },

	/* helo.non_fqdn */
	{ "foo", "198.51.100.7", "helo.non_fqdn", NULL },
	{ "FOO", NULL, "helo.non_fqdn", NULL },
	{ "foo_bar", "198.51.100.7", "helo.non_fqdn", NULL },
	{ "mail.123", "198.51.100.7", "helo.non_fqdn", NULL },
	{ "mailhost.", "198.51.100.7", "helo.non_fqdn", NULL },
};

/* Code and enhanced code per HELO symbol. */
static void helo_codes(const char *symbol, const char **code, const char **xcode)
{
	static const struct {
		const char *symbol, *code, *xcode;
	} codes[] = {
		{ "helo.syntax", "550", "5.5.2" },           { "helo.bare_ip", "550", "5.5.2" },
		{ "helo.literal_mismatch", "550", "5.7.1" }, { "helo.localhost", "550", "5.7.1" },
		{ "helo.own_name", "550", "5.7.1" },         { "helo.non_fqdn", "550", "5.5.2" },
		{ "helo.missing", "503", "5.5.1" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(codes); i++)
		if (strcmp(codes[i].symbol, symbol) == 0) {
			*code = codes[i].code;
			*xcode = codes[i].xcode;
			return;
		}
	fail_msg("no codes for %s", symbol);
}

static struct conf *helo_conf(const char *sub, const char *mode)
{
	return mkconf("helo.own_names", "mx2.example.test, relay.example.test",
	              "helo.own_addresses", "192.0.2.25, [2001:db8::25]", sub ? sub : "helo.mode",
	              sub ? mode : "reject");
}

static void helo_one(struct conf *cf, const struct helo_case *hc, size_t i, struct verdicts *out)
{
	struct check_ctx cx = { 0 };
	struct conn c;

	mkconn(&c, cf, hc->ip, NULL, hc->helo, hc->our_name);
	cx.conn = &c;
	run_hook(cf, "helo", STAGE_HELO, &cx, out);
	/* at most one of the sub-checks fires for a name */
	if (out->n > 1)
		fail_msg("helo case %zu '%s': %d verdicts (%s, %s)", i, hc->helo, out->n,
		         out->v[0].symbol, out->v[1].symbol);
}

/* An IPv4 client seen as an IPv4-mapped IPv6 address (Sendmail's inet6
 * daemon socket hands IPv4 clients over that way), or a literal in mapped
 * form: the same address, so no literal_mismatch (addr.h: "IPv4-mapped IPv6
 * compares as IPv4"). */
static const struct helo_case helo_mapped_cases[] = {
	{ "[198.51.100.7]", "::ffff:198.51.100.7", NULL, NULL },
	{ "[IPv6:::ffff:198.51.100.7]", "198.51.100.7", NULL, NULL },
	{ "[198.51.100.8]", "::ffff:198.51.100.7", "helo.literal_mismatch", NULL },
};

static void run_helo_cases(const struct helo_case *cases, size_t n)
{
	struct conf *cf = helo_conf(NULL, NULL);

	for (size_t i = 0; i < n; i++) {
		const struct helo_case *hc = &cases[i];
		struct verdicts out;
		const char *code, *xcode;
		char quoted[100];

		helo_one(cf, hc, i, &out);
		if (hc->symbol == NULL) {
			if (out.n)
				fail_msg("helo case %zu '%s' from %s: %s '%s', expected nothing", i,
				         hc->helo, hc->ip ? hc->ip : "-", out.v[0].symbol,
				         out.v[0].text);
			continue;
		}
		if (out.n != 1 || strcmp(out.v[0].symbol, hc->symbol) != 0)
			fail_msg("helo case %zu '%s' from %s: %s, expected %s", i, hc->helo,
			         hc->ip ? hc->ip : "-", out.n ? out.v[0].symbol : "nothing",
			         hc->symbol);
		helo_codes(hc->symbol, &code, &xcode);
		assert_int_equal(out.v[0].action, ACT_REJECT);
		assert_int_equal(out.v[0].mode, MODE_REJECT);
		assert_string_equal(out.v[0].code, code);
		assert_string_equal(out.v[0].xcode, xcode);
		/* the text quotes the name (raw: the engine encodes it) */
		snprintf(quoted, sizeof(quoted), "%.80s", hc->helo);
		if (strstr(out.v[0].text, quoted) == NULL)
			fail_msg("helo case %zu: text '%s' does not quote '%s'", i, out.v[0].text,
			         quoted);
	}
}

static void test_helo_cases(void **state)
{
	(void)state;
	run_helo_cases(helo_cases, ARRAY_SIZE(helo_cases));
}

static void test_helo_literal_mapped(void **state)
{
	(void)state;
	run_helo_cases(helo_mapped_cases, ARRAY_SIZE(helo_mapped_cases));
}

/* A HELO longer than 255 bytes is cut and flagged: invalid syntax, even if
 * what is left would be a fine name. */
static void test_helo_too_long(void **state)
{
	struct conf *cf = helo_conf(NULL, NULL);
	char name[400];
	struct conn *c;
	struct reply r;

	(void)state;
	for (size_t i = 0; i < sizeof(name) - 1; i++)
		name[i] = i % 2 ? '.' : 'a';
	name[sizeof(name) - 2] = 'a';
	name[sizeof(name) - 1] = '\0';
	c = engine_conn_new(cf);
	engine_connect(c, NULL, "198.51.100.7", &r);
	engine_helo(c, name, &r);
	assert_true(c->helo_truncated);
	assert_int_equal(strlen(c->helo), HELO_MAX);
	assert_int_equal(c->nheld, 1);
	assert_string_equal(c->held[0].symbol, "helo.syntax");
	/* 255 bytes is not cut, but longer than a domain name may be (253) */
	name[HELO_MAX] = '\0';
	engine_helo(c, name, &r);
	assert_false(c->helo_truncated);
	assert_int_equal(c->nheld, 1);
	assert_string_equal(c->held[0].symbol, "helo.syntax");
	/* 253 is a fine name */
	name[253] = '\0';
	assert_int_equal(name[252], 'a');
	engine_helo(c, name, &r);
	assert_false(c->helo_truncated);
	assert_int_equal(c->nheld, 0);
	engine_conn_free(c);
}

/* Each sub-check states its verdict in its own mode. */
static void test_helo_submodes(void **state)
{
	static const struct {
		const char *sub;
		struct helo_case hc;
	} subs[] = {
		{ "helo.syntax", { "foo bar", "198.51.100.7", "helo.syntax", NULL } },
		{ "helo.bare_ip", { "192.0.2.1", "198.51.100.7", "helo.bare_ip", NULL } },
		{ "helo.literal_mismatch",
		  { "[192.0.2.1]", "198.51.100.7", "helo.literal_mismatch", NULL } },
		{ "helo.localhost", { "localhost", "198.51.100.7", "helo.localhost", NULL } },
		{ "helo.own_name", { "mx.example.test", "198.51.100.7", "helo.own_name", NULL } },
		{ "helo.non_fqdn", { "foo", "198.51.100.7", "helo.non_fqdn", NULL } },
	};
	static const struct {
		const char *word;
		enum mode mode;
	} modes[] = {
		{ "monitor", MODE_MONITOR },
		{ "defer", MODE_DEFER },
		{ "off", MODE_OFF },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(subs); i++)
		for (size_t k = 0; k < ARRAY_SIZE(modes); k++) {
			struct conf *cf = helo_conf(subs[i].sub, modes[k].word);
			struct verdicts out;

			helo_one(cf, &subs[i].hc, i, &out);
			if (out.n != 1 || strcmp(out.v[0].symbol, subs[i].sub) != 0)
				fail_msg("%s = %s: %s", subs[i].sub, modes[k].word,
				         out.n ? out.v[0].symbol : "nothing");
			if (out.v[0].mode != modes[k].mode)
				fail_msg("%s = %s: verdict mode %d", subs[i].sub, modes[k].word,
				         out.v[0].mode);
		}
}

static void test_helo_missing(void **state)
{
	struct conf *cf = helo_conf(NULL, NULL);
	struct check_ctx cx = { 0 };
	struct verdicts out;
	struct conn c;
	struct txn t;
	struct conn *e;
	struct reply r;

	(void)state;
	memset(&t, 0, sizeof(t));
	addr_parse("<a@example.org>", &t.sender);
	mkconn(&c, cf, "198.51.100.7", NULL, NULL, NULL);
	cx.conn = &c;
	cx.txn = &t;
	run_hook(cf, "helo", STAGE_MAIL, &cx, &out);
	assert_int_equal(out.n, 1);
	assert_string_equal(out.v[0].symbol, "helo.missing");
	assert_int_equal(out.v[0].action, ACT_REJECT);
	assert_string_equal(out.v[0].code, "503");
	assert_string_equal(out.v[0].xcode, "5.5.1");
	assert_string_equal(out.v[0].text, "Send HELO or EHLO first");
	mkconn(&c, cf, "198.51.100.7", NULL, "mail.example.org", NULL);
	run_hook(cf, "helo", STAGE_MAIL, &cx, &out);
	assert_int_equal(out.n, 0);

	/* through the engine: answered at RCPT */
	e = engine_conn_new(cf);
	engine_connect(e, NULL, "198.51.100.7", &r);
	engine_mail(e, "<a@example.org>", &r);
	assert_int_equal(r.action, REPLY_CONTINUE);
	engine_rcpt(e, "<b@example.test>", &r);
	assert_int_equal(r.action, REPLY_REJECT);
	assert_string_equal(r.code, "503");
	assert_string_equal(r.xcode, "5.5.1");
	assert_int_equal(strncmp(r.text, "Send HELO or EHLO first (ref ", 29), 0);
	engine_conn_free(e);
}

/* --- envelope (through the engine) ------------------------------------------ */

struct env_case {
	const char *sender, *rcpt;
	const char *symbol; /* NULL: accepted */
	const char *code, *xcode;
	const char *text;   /* reply text before " (ref " */
	int no_brackets_ok; /* envelope.allow_no_brackets = yes */
};

static const struct env_case env_cases[] = {
	{ "<a@example.org>", "<b@example.test>", NULL, NULL, NULL, NULL, 0 },
	{ "<>", "<b@example.test>", NULL, NULL, NULL, NULL, 0 },
	{ "<A.B+tag@Example.ORG>", "<b@example.test>", NULL, NULL, NULL, NULL, 0 },
	{ "<a@[192.0.2.1]>", "<b@[IPv6:2001:db8::1]>", NULL, NULL, NULL, NULL, 0 },
	{ "<@relay.example:a@example.org>", "<@x.example,@y.example:b@example.test>", NULL, NULL,
	  NULL, NULL, 0 },
	{ "<\"john doe\"@example.org>", "<\"jane doe\"@example.test>", NULL, NULL, NULL, NULL, 0 },
	{ "<a@example.org>", "<postmaster>", NULL, NULL, NULL, NULL, 0 },
	{ "<a@example.org>", "<Postmaster@example.test>", NULL, NULL, NULL, NULL, 0 },
	{ "a@example.org", "b@example.test", NULL, NULL, NULL, NULL, 1 },

	/* sender */
	{ "a@example.org", "<b@example.test>", "envelope.sender_syntax", "550", "5.1.7",
	  "Sender address <a@example.org> rejected: address must be in <angle brackets>", 0 },
	{ "<a@@example.org>", "<b@example.test>", "envelope.sender_syntax", "550", "5.1.7",
	  "Sender address <", 0 },
	{ "<a..b@example.org>", "<b@example.test>", "envelope.sender_syntax", "550", "5.1.7",
	  "Sender address <a..b@example.org> rejected: misplaced dot in local part", 0 },
	{ "<a@exa mple.org>", "<b@example.test>", "envelope.sender_syntax", "550", "5.1.7",
	  "Sender address <a@exa mple.org> rejected: invalid character in domain", 0 },
	{ "<a@example.org", "<b@example.test>", "envelope.sender_syntax", "550", "5.1.7",
	  "Sender address <", 0 },
	{ "<a>", "<b@example.test>", "envelope.sender_syntax", "550", "5.1.7",
	  "Sender address <a> rejected: missing domain", 0 },
	{ "<a@localhost>", "<b@example.test>", "envelope.sender_non_fqdn", "550", "5.5.2",
	  "Sender address <a@localhost> rejected: need fully-qualified address", 0 },
	{ "<a@example.123>", "<b@example.test>", "envelope.sender_non_fqdn", "550", "5.5.2",
	  "Sender address <a@example.123> rejected: need fully-qualified address", 0 },
	{ "<postmaster>", "<b@example.test>", "envelope.sender_non_fqdn", "550", "5.5.2",
	  "Sender address <postmaster> rejected: need fully-qualified address", 0 },
	{ "<a@192.0.2.1>", "<b@example.test>", "envelope.sender_non_fqdn", "550", "5.5.2",
	  "Sender address <a@192.0.2.1> rejected: need fully-qualified address", 0 },

	/* recipient */
	{ "<a@example.org>", "<b@localhost>", "envelope.rcpt_non_fqdn", "550", "5.5.2",
	  "Recipient address <b@localhost> rejected: need fully-qualified address", 0 },
	{ "<a@example.org>", "<b>", "envelope.rcpt_syntax", "550", "5.1.3",
	  "Recipient address <b> rejected: missing domain", 0 },
	{ "<a@example.org>", "<>", "envelope.rcpt_syntax", "550", "5.1.3",
	  "Recipient address <> rejected: empty address", 0 },
	{ "<a@example.org>", "b@example.test", "envelope.rcpt_syntax", "550", "5.1.3",
	  "Recipient address <b@example.test> rejected: address must be in <angle brackets>", 0 },
	{ "<a@example.org>", "<b@example.test.>", "envelope.rcpt_syntax", "550", "5.1.3",
	  "Recipient address <b@example.test.> rejected: empty label in domain", 0 },
	{ "<a@example.org>", "<\"b@example.test>", "envelope.rcpt_syntax", "550", "5.1.3",
	  "Recipient address <", 0 },
};

static void test_envelope_cases(void **state)
{
	struct conf *cf[2];

	(void)state;
	cf[0] = mkconf("score.tag", "0");
	cf[1] = mkconf("envelope.allow_no_brackets", "yes");
	for (size_t i = 0; i < ARRAY_SIZE(env_cases); i++) {
		const struct env_case *ec = &env_cases[i];
		struct conn *c = engine_conn_new(cf[ec->no_brackets_ok]);
		struct reply r;

		engine_connect(c, NULL, "198.51.100.7", &r);
		engine_helo(c, "mail.example.org", &r);
		engine_mail(c, ec->sender, &r);
		assert_int_equal(r.action, REPLY_CONTINUE);
		engine_rcpt(c, ec->rcpt, &r);
		if (ec->symbol == NULL) {
			if (r.action != REPLY_CONTINUE)
				fail_msg("envelope case %zu %s -> %s: %s %s %s", i, ec->sender,
				         ec->rcpt, r.code, r.xcode, r.text);
		} else {
			if (r.action != REPLY_REJECT ||
			    strcmp(c->txn->last_rcpt->symbol, ec->symbol) != 0)
				fail_msg("envelope case %zu %s -> %s: action %d symbol '%s', "
				         "expected %s",
				         i, ec->sender, ec->rcpt, r.action,
				         c->txn->last_rcpt->symbol, ec->symbol);
			assert_string_equal(r.code, ec->code);
			assert_string_equal(r.xcode, ec->xcode);
			if (strncmp(r.text, ec->text, strlen(ec->text)) != 0)
				fail_msg("envelope case %zu: text '%s', expected '%s...'", i,
				         r.text, ec->text);
			assert_non_null(strstr(r.text, " (ref "));
		}
		engine_conn_free(c);
	}
}

/* --- access -------------------------------------------------------------- */

struct access_case {
	const char *key;    /* address for sender/recipient, else see test */
	enum action action; /* ACT_DUNNO: no verdict */
	const char *text;   /* expected verdict text (NULL: not checked) */
	double score;
};

/* Run the sender (and recipient) hooks for each case against conf cf. */
static void access_addr_cases(struct conf *cf, const struct access_case *cases, size_t n,
                              int recipient, const char *what)
{
	for (size_t i = 0; i < n; i++) {
		const struct access_case *ac = &cases[i];
		struct check_ctx cx = { 0 };
		struct verdicts out;
		struct conn c;
		struct txn t;
		struct rcpt rc;

		mkconn(&c, cf, "198.51.100.7", NULL, "mail.example.org", NULL);
		memset(&t, 0, sizeof(t));
		memset(&rc, 0, sizeof(rc));
		cx.conn = &c;
		cx.txn = &t;
		if (recipient) {
			addr_parse("<a@example.org>", &t.sender);
			addr_parse(ac->key, &rc.addr);
			cx.rcpt = &rc;
			run_hook(cf, "access", STAGE_RCPT, &cx, &out);
		} else {
			addr_parse(ac->key, &t.sender);
			run_hook(cf, "access", STAGE_MAIL, &cx, &out);
		}
		if (ac->action == ACT_DUNNO) {
			if (out.n)
				fail_msg("%s %s: %s '%s', expected nothing", what, ac->key,
				         act_name(out.v[0].action), out.v[0].text);
			continue;
		}
		if (out.n != 1 || out.v[0].action != ac->action)
			fail_msg("%s %s: %s, expected %s", what, ac->key,
			         out.n ? act_name(out.v[0].action) : "nothing",
			         act_name(ac->action));
		assert_string_equal(out.v[0].symbol,
		                    recipient ? "access.recipient" : "access.sender");
		if (ac->text && strcmp(out.v[0].text, ac->text) != 0)
			fail_msg("%s %s: text '%s', expected '%s'", what, ac->key, out.v[0].text,
			         ac->text);
		if (ac->action == ACT_SCORE)
			assert_true(out.v[0].score == ac->score);
	}
}

#define R(addr, text)                                                                              \
	{                                                                                          \
		addr, ACT_REJECT, text, 0                                                          \
	}
#define NONE(addr)                                                                                 \
	{                                                                                          \
		addr, ACT_DUNNO, NULL, 0                                                           \
	}

static void test_access_address_order(void **state)
{
	const char *full = table("texthash", "user@sub.example.org REJECT full address\n"
	                                     "sub.example.org REJECT domain\n"
	                                     "example.org REJECT parent\n"
	                                     "org REJECT tld\n"
	                                     "user@ REJECT local part\n"
	                                     "<> REJECT null sender\n");
	static const struct access_case sender[] = {
		R("<user@sub.example.org>", "Sender address <user@sub.example.org> rejected: full "
		                            "address"),
		R("<USER@SUB.EXAMPLE.ORG>", "Sender address <USER@sub.example.org> rejected: full "
		                            "address"),
		R("<other@sub.example.org>", "Sender address <other@sub.example.org> rejected: "
		                             "domain"),
		R("<other@deep.sub.example.org>", "Sender address <other@deep.sub.example.org> "
		                                  "rejected: domain"),
		R("<other@x.example.org>", "Sender address <other@x.example.org> rejected: parent"),
		R("<user@x.example.org>", "Sender address <user@x.example.org> rejected: parent"),
		R("<other@elsewhere.org>", "Sender address <other@elsewhere.org> rejected: tld"),
		R("<user@example.net>", "Sender address <user@example.net> rejected: local part"),
		R("<User@example.net>", "Sender address <User@example.net> rejected: local part"),
		R("<>", "Sender address <> rejected: null sender"),
		NONE("<other@example.net>"),
		NONE("<postmaster>"),
		NONE("<subexample.org@example.net>"),
		NONE("<other@xample.org.example>"),
	};
	static const struct access_case rcpt[] = {
		R("<user@sub.example.org>", "Recipient address <user@sub.example.org> rejected: "
		                            "full address"),
		R("<other@sub.example.org>", "Recipient address <other@sub.example.org> rejected: "
		                             "domain"),
		R("<other@a.b.example.org>", "Recipient address <other@a.b.example.org> rejected: "
		                             "parent"),
		R("<user@example.net>",
		  "Recipient address <user@example.net> rejected: local part"),
		NONE("<other@example.net>"),
	};
	/* earlier keys beat later ones whatever the action; DUNNO stops */
	const char *prec = table("texthash", "sub.example.org OK\n"
	                                     "user@ REJECT local\n"
	                                     "example.org DUNNO\n"
	                                     "scored.example SCORE 2.5 looks odd\n"
	                                     "deferred.example DEFER try later\n"
	                                     "plain.example REJECT\n");
	static const struct access_case prec_cases[] = {
		{ "<user@sub.example.org>", ACT_OK, NULL, 0 },
		{ "<anyone@sub.example.org>", ACT_OK, NULL, 0 },
		NONE("<user@x.example.org>"), /* DUNNO before local@ */
		R("<user@example.net>", "Sender address <user@example.net> rejected: local"),
		{ "<a@scored.example>", ACT_SCORE, "Sender address <a@scored.example>", 2.5 },
		{ "<a@deferred.example>", ACT_DEFER,
		  "Sender address <a@deferred.example> deferred: try later", 0 },
		R("<a@plain.example>", "Sender address <a@plain.example> rejected: Access denied"),
	};
	struct conf *cf;

	(void)state;
	cf = mkconf("access.sender", full, "access.recipient", full);
	access_addr_cases(cf, sender, ARRAY_SIZE(sender), 0, "sender");
	access_addr_cases(cf, rcpt, ARRAY_SIZE(rcpt), 1, "recipient");
	cf = mkconf("access.sender", prec);
	access_addr_cases(cf, prec_cases, ARRAY_SIZE(prec_cases), 0, "sender precedence");

	/* pcre: tables see the whole address (and "<>" for the null sender) */
	cf = mkconf("access.sender", table("pcre", "/^<>$/ REJECT pcre null\n"
	                                           "/^spam[0-9]+@/ REJECT pcre spam\n"));
	{
		static const struct access_case pc[] = {
			R("<>", "Sender address <> rejected: pcre null"),
			R("<spam42@example.org>", "Sender address <spam42@example.org> rejected: "
			                          "pcre spam"),
			NONE("<ham@example.org>"),
		};

		access_addr_cases(cf, pc, ARRAY_SIZE(pc), 0, "sender pcre");
	}
}

/* "Each parameter is a list of tables searched in turn; the first entry that
 * matches decides" (access.c), as with Postfix's check_sender_access listed
 * twice: the first table is searched with every key (address, domain,
 * parents, local@) before the second table is. */
static void test_access_tables_in_turn(void **state)
{
	char list[1300];
	struct conf *cf;
	static const struct access_case cases[] = {
		{ "<spammer@example.org>", ACT_OK, NULL, 0 },
	};

	(void)state;
	snprintf(list, sizeof(list), "%s, ", table("texthash", "example.org OK\n"));
	bcopy_str(list + strlen(list), sizeof(list) - strlen(list),
	          table("texthash", "spammer@example.org REJECT listed in the second table\n"));
	cf = mkconf("access.sender", list);
	access_addr_cases(cf, cases, ARRAY_SIZE(cases), 0, "first table first");
}

struct client_case {
	const char *ip, *name; /* NULL: unknown */
	enum action action;    /* ACT_DUNNO: no verdict */
	const char *symbol;
	const char *text; /* NULL: not checked */
	double score;
};

static void test_access_client_helo(void **state)
{
	static const struct client_case clients[] = {
		{ "192.0.2.1", NULL, ACT_REJECT, "access.client",
		  "Client host 192.0.2.1 rejected: Access denied", 0 },
		{ "198.51.100.1", NULL, ACT_DEFER, "access.client",
		  "Client host 198.51.100.1 deferred: try later", 0 },
		{ "203.0.113.1", NULL, ACT_OK, "access.client", NULL, 0 },
		{ "2001:db8::1", NULL, ACT_SCORE, "access.client", "Client host 2001:db8::1", 2.5 },
		{ "::ffff:192.0.2.1", NULL, ACT_REJECT, "access.client", NULL, 0 },
		{ "172.16.0.1", NULL, ACT_DUNNO, NULL, NULL, 0 },
		/* the address decides before the name */
		{ "192.0.2.1", "good.example.net", ACT_REJECT, "access.client", NULL, 0 },
		{ "203.0.113.1", "bad.example.net", ACT_OK, "access.client", NULL, 0 },
		/* DUNNO for the address, then the name */
		{ "10.1.1.1", "bad.example.net", ACT_REJECT, "access.client_name",
		  "Client host bad.example.net[10.1.1.1] rejected: by name", 0 },
		{ "172.16.0.1", "BAD.Example.NET", ACT_REJECT, "access.client_name", NULL, 0 },
		{ "172.16.0.1", "good.example.net", ACT_OK, "access.client_name", NULL, 0 },
		{ "172.16.0.1", "other.example.net", ACT_DUNNO, NULL, NULL, 0 },
		/* "unknown" (no verified name) is never looked up */
		{ "172.16.0.1", "unknown", ACT_DUNNO, NULL, NULL, 0 },
		{ NULL, "bad.example.net", ACT_REJECT, "access.client_name", NULL, 0 },
	};
	static const struct client_case helos[] = {
		{ NULL, "bad.example", ACT_REJECT, "access.helo",
		  "HELO bad.example rejected: go away", 0 },
		{ NULL, "BAD.EXAMPLE", ACT_REJECT, "access.helo",
		  "HELO BAD.EXAMPLE rejected: go away", 0 },
		{ NULL, "friend.example", ACT_OK, "access.helo", NULL, 0 },
		{ NULL, "dsl-1-2-3.example.net", ACT_SCORE, "access.helo",
		  "HELO dsl-1-2-3.example.net", 3 },
		{ NULL, "other.example", ACT_DUNNO, NULL, NULL, 0 },
		{ NULL, "bad.example.", ACT_DUNNO, NULL, NULL, 0 },
	};
	char helo_tables[1300];
	struct conf *cf;

	(void)state;
	snprintf(helo_tables, sizeof(helo_tables), "%s,",
	         table("texthash", "Bad.Example REJECT go away\n"
	                           "friend.example OK\n"));
	bcopy_str(helo_tables + strlen(helo_tables), sizeof(helo_tables) - strlen(helo_tables),
	          table("pcre", "/^dsl-/ SCORE 3 dynamic\n"));
	cf = mkconf("access.client",
	            table("cidr", "192.0.2.0/24 REJECT\n"
	                          "198.51.100.0/24 DEFER try later\n"
	                          "203.0.113.0/24 OK\n"
	                          "2001:db8::/32 SCORE 2.5 v6 net\n"
	                          "10.0.0.0/8 DUNNO\n"),
	            "access.client_name",
	            table("texthash", "bad.example.net REJECT by name\n"
	                              "good.example.net OK\n"
	                              "unknown REJECT never\n"),
	            "access.helo", helo_tables);
	for (int pass = 0; pass < 2; pass++) {
		const struct client_case *cases = pass ? helos : clients;
		size_t n = pass ? ARRAY_SIZE(helos) : ARRAY_SIZE(clients);

		for (size_t i = 0; i < n; i++) {
			const struct client_case *cc = &cases[i];
			struct check_ctx cx = { 0 };
			struct verdicts out;
			struct conn c;

			mkconn(&c, cf, cc->ip, pass ? NULL : cc->name, pass ? cc->name : NULL,
			       NULL);
			cx.conn = &c;
			run_hook(cf, "access", pass ? STAGE_HELO : STAGE_CONNECT, &cx, &out);
			if (cc->action == ACT_DUNNO) {
				if (out.n)
					fail_msg("%s %s: %s %s, expected nothing",
					         cc->ip ? cc->ip : "-", cc->name ? cc->name : "-",
					         out.v[0].symbol, act_name(out.v[0].action));
				continue;
			}
			if (out.n != 1 || out.v[0].action != cc->action ||
			    strcmp(out.v[0].symbol, cc->symbol) != 0)
				fail_msg("%s %s: %s %s, expected %s %s", cc->ip ? cc->ip : "-",
				         cc->name ? cc->name : "-",
				         out.n ? out.v[0].symbol : "nothing",
				         out.n ? act_name(out.v[0].action) : "", cc->symbol,
				         act_name(cc->action));
			if (cc->action == ACT_REJECT) {
				assert_string_equal(out.v[0].code, "550");
				assert_string_equal(out.v[0].xcode, "5.7.1");
			}
			if (cc->action == ACT_DEFER) {
				assert_string_equal(out.v[0].code, "450");
				assert_string_equal(out.v[0].xcode, "4.7.1");
			}
			if (cc->action == ACT_SCORE)
				assert_true(out.v[0].score == cc->score);
			if (cc->text && strcmp(out.v[0].text, cc->text) != 0)
				fail_msg("%s %s: text '%s', expected '%s'", cc->ip ? cc->ip : "-",
				         cc->name ? cc->name : "-", out.v[0].text, cc->text);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_registry, release_confs),
		cmocka_unit_test_teardown(test_verdicts, release_confs),
		cmocka_unit_test_teardown(test_helo_cases, release_confs),
		cmocka_unit_test_teardown(test_helo_literal_mapped, release_confs),
		cmocka_unit_test_teardown(test_helo_too_long, release_confs),
		cmocka_unit_test_teardown(test_helo_submodes, release_confs),
		cmocka_unit_test_teardown(test_helo_missing, release_confs),
		cmocka_unit_test_teardown(test_envelope_cases, release_confs),
		cmocka_unit_test_teardown(test_access_address_order, release_confs),
		cmocka_unit_test_teardown(test_access_tables_in_turn, release_confs),
		cmocka_unit_test_teardown(test_access_client_helo, release_confs),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
