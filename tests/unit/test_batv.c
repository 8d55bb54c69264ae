/* tests/unit/test_batv.c - BATV tags (lib/batv.c), bounce recognition
 * (lib/bounce.c) and the batv and bounce checks through the engine
 *
 *  - tags: the documented format (a known vector computed by hand with
 *    python's hmac), sign/check round trip, key rotation, the validity
 *    window across the modulo-1000 wrap, expiry, forged tags of every
 *    length 0..40 after "prvs=", refusals to sign (tagged, too long);
 *  - key files: comments, two keys, errors (short secret, bad number,
 *    duplicate, none);
 *  - bounces: RFC 3464 with message/rfc822 and text/rfc822-headers, quoted
 *    "> Received:" text, a base64 part, relay by name and by network,
 *    Message-ID domains and subdomains, auto-replies, the bounce's own
 *    top headers never counting, a DSN inside a DSN, 10,000 quoted
 *    Received lines, broken MIME;
 *  - the engine: a trusted client's sender is signed at EOM (and <> is
 *    not); a null-sender bounce without a tag passes RCPT and is refused
 *    at EOM with 550 5.7.1; a valid tag is accepted with the recipient
 *    replaced; the bounce check refuses a DSN of a message we never sent
 *    and passes one quoting our relay.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batv.h"
#include "bounce.h"
#include "conf.h"
#include "engine.h"
#include "testutil.h"
#include "util.h"

static const char K2[] = "new-secret-0123456789abcdef";
static const char K1[] = "old-secret-0123456789abcdef";

static void keys2(struct batv_keys *k)
{
	char text[256], err[200];

	snprintf(text, sizeof(text), "# comment\n\n2 %s\n 1 %s \n", K2, K1);
	assert_int_equal(batv_keys_parse(text, k, err, sizeof(err)), 0);
	assert_int_equal(k->n, 2);
	assert_int_equal(k->k[0].num, 2);
}

static void test_known_vector(void **state)
{
	struct batv_keys k;
	char out[400], orig[400];

	(void)state;
	keys2(&k);
	/* python3: hmac.new(b"new-secret-0123456789abcdef", b"2801user@example.test",
	 * hashlib.sha1).hexdigest()[:6] == "de47cc" (day 20794 + 7 = 20801) */
	assert_int_equal(batv_sign(&k, "user@example.test", 20794, 7, out, sizeof(out)), 0);
	assert_string_equal(out, "prvs=2801de47cc=user@example.test");
	assert_int_equal(batv_check(&k, out, 20794, 7, orig, sizeof(orig)), BATV_VALID);
	assert_string_equal(orig, "user@example.test");
	/* upper-case hex is the same tag */
	assert_int_equal(
	    batv_check(&k, "PRVS=2801DE47CC=user@example.test", 20794, 7, orig, sizeof(orig)),
	    BATV_VALID);
}

static void test_window_rotation(void **state)
{
	struct batv_keys k, old;
	char out[400], orig[400], err[200], text[128];

	(void)state;
	keys2(&k);
	/* a tag of the old key (made when key 1 signed) still verifies */
	snprintf(text, sizeof(text), "1 %s\n", K1);
	assert_int_equal(batv_keys_parse(text, &old, err, sizeof(err)), 0);
	assert_int_equal(batv_sign(&old, "a@example.test", 1000, 7, out, sizeof(out)), 0);
	assert_int_equal(out[5], '1');
	assert_int_equal(batv_check(&k, out, 1003, 7, orig, sizeof(orig)), BATV_VALID);
	/* ... and a key that is gone makes it invalid */
	snprintf(text, sizeof(text), "2 %s\n", K2);
	assert_int_equal(batv_keys_parse(text, &old, err, sizeof(err)), 0);
	assert_int_equal(batv_check(&old, out, 1003, 7, orig, sizeof(orig)), BATV_INVALID);
	/* every day of the window, across the modulo-1000 wrap */
	for (long made = 990; made < 1010; made++) {
		assert_int_equal(batv_sign(&k, "a@example.test", made, 7, out, sizeof(out)), 0);
		for (long d = 0; d <= 7; d++)
			assert_int_equal(batv_check(&k, out, made + d, 7, orig, sizeof(orig)),
			                 BATV_VALID);
		assert_int_equal(batv_check(&k, out, made + 8, 7, orig, sizeof(orig)),
		                 BATV_EXPIRED);
		assert_int_equal(batv_check(&k, out, made + 400, 7, orig, sizeof(orig)),
		                 BATV_EXPIRED);
		assert_string_equal(orig, "a@example.test");
	}
	/* the address is part of the HMAC */
	assert_int_equal(batv_sign(&k, "a@example.test", 5, 7, out, sizeof(out)), 0);
	memcpy(strchr(out + 5, '=') + 1, "b", 1);
	assert_int_equal(batv_check(&k, out, 5, 7, orig, sizeof(orig)), BATV_INVALID);
}

static void test_hostile_tags(void **state)
{
	struct batv_keys k;
	char addr[200], orig[400], out[400];

	(void)state;
	keys2(&k);
	assert_int_equal(batv_check(&k, "user@example.test", 5, 7, orig, sizeof(orig)),
	                 BATV_UNTAGGED);
	assert_string_equal(orig, "");
	/* "prvs=" followed by 0..40 characters of digits, hex, '=' and '@' */
	for (int len = 0; len <= 40; len++) {
		static const char alphabet[] = "0123456789abcdefXYZ=@.\"";

		for (int v = 0; v < 8; v++) {
			int n = snprintf(addr, sizeof(addr), "prvs=");

			for (int i = 0; i < len; i++)
				addr[n++] =
				    alphabet[(i * 7 + v * 13 + len) % (sizeof(alphabet) - 1)];
			addr[n] = '\0';
			assert_int_not_equal(batv_check(&k, addr, 5, 7, orig, sizeof(orig)),
			                     BATV_VALID);
		}
	}
	assert_int_equal(batv_check(&k, "prvs=2801de47cc=@example.test", 5, 7, orig, sizeof(orig)),
	                 BATV_INVALID);
	assert_int_equal(batv_check(&k, "prvs=2801de47cc=user", 5, 7, orig, sizeof(orig)),
	                 BATV_INVALID);
	assert_int_equal(batv_check(&k, "prvs=2801de47cc=user@x", 5, 7, orig, 4), BATV_INVALID);
	/* no signing of what is tagged, has no domain, or would be too long */
	assert_int_equal(batv_sign(&k, "prvs=2801de47cc=user@example.test", 5, 7, out, sizeof(out)),
	                 -1);
	assert_int_equal(batv_sign(&k, "user", 5, 7, out, sizeof(out)), -1);
	assert_int_equal(batv_sign(&k,
	                           "0123456789012345678901234567890123456789012345678@example.test",
	                           5, 7, out, sizeof(out)),
	                 -1);
	assert_int_equal(batv_sign(&k, "012345678901234567890123456789012345678901234567@e.test", 5,
	                           7, out, sizeof(out)),
	                 0);
	assert_int_equal(batv_sign(&k, "a@example.test", 5, 7, out, 10), -1);
}

static void test_key_files(void **state)
{
	struct batv_keys k;
	char err[200], path[512];

	(void)state;
	assert_int_equal(batv_keys_parse("", &k, err, sizeof(err)), -1);
	assert_int_equal(batv_keys_parse("# only a comment\n", &k, err, sizeof(err)), -1);
	assert_int_equal(batv_keys_parse("1 short\n", &k, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "line 1"));
	assert_int_equal(batv_keys_parse("x 0123456789abcdefgh\n", &k, err, sizeof(err)), -1);
	assert_int_equal(batv_keys_parse("12 0123456789abcdefgh\n", &k, err, sizeof(err)), -1);
	assert_int_equal(
	    batv_keys_parse("1 0123456789abcdefgh\n1 0123456789abcdefgi\n", &k, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "twice"));
	write_file(path, sizeof(path), "keys", "3 0123456789abcdefgh\r\n");
	assert_int_equal(batv_keys_load(path, &k, err, sizeof(err)), 0);
	assert_int_equal(k.k[0].num, 3);
	assert_int_equal(k.k[0].len, 18); /* the CR is not part of the secret */
	assert_int_equal(batv_keys_load("/nonexistent/keys", &k, err, sizeof(err)), -1);
}

/* --- bounce_parse ------------------------------------------------------------ */

static struct strlist names, domains;
static struct netlist nets;
static struct bounce_policy pol = { &names, &nets, &domains };

static int policy_setup(void **state)
{
	static char *n[] = { "out.example.test" };
	static char *d[] = { "example.test" };
	static struct net net;

	(void)state;
	names.n = 1;
	names.v = n;
	domains.n = 1;
	domains.v = d;
	assert_int_equal(ip_parse_cidr("192.0.2.0/24", &net.ip, &net.len), 0);
	nets.n = 1;
	nets.v = &net;
	return tmpdir_create("pc-batv");
}

static int policy_teardown(void **state)
{
	(void)state;
	return tmpdir_remove();
}

static void parse(const char *msg, struct bounce_info *in)
{
	bounce_parse(msg, strlen(msg), &pol, in);
}

#define DSN_HEAD                                                                                   \
	"Received: from out.example.test (out.example.test [192.0.2.1]) by mx.example.test\r\n"    \
	"From: MAILER-DAEMON@remote.example\r\n"                                                   \
	"Subject: Undelivered Mail Returned to Sender\r\n"                                         \
	"Message-ID: <bounce.1@example.test>\r\n"                                                  \
	"MIME-Version: 1.0\r\n"                                                                    \
	"Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n"      \
	"--B\r\nContent-Type: text/plain\r\n\r\nFailed.\r\n"                                       \
	"--B\r\nContent-Type: message/delivery-status\r\n\r\n"                                     \
	"Reporting-MTA: dns; remote.example\r\nAction: failed\r\n\r\n"

static void test_bounce_kinds(void **state)
{
	struct bounce_info in;
	char *big;
	size_t off = 0, cap = 10000 * 80 + 1000;

	(void)state;
	/* the top headers name our relay and domain: they never count */
	parse(DSN_HEAD "--B\r\nContent-Type: message/rfc822\r\n\r\n"
	               "Received: from bot (bot [203.0.113.5]) by mx.victim.example\r\n"
	               "Message-ID: <x@spam.example>\r\n\r\nbody\r\n--B--\r\n",
	      &in);
	assert_true(in.dsn);
	assert_false(in.ours);
	assert_int_equal(in.quoted_received, 1);
	/* by our relay's name */
	parse(DSN_HEAD "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
	               "Received: from pc (pc [10.0.0.5])\r\n\tby out.example.test (Postfix) with "
	               "ESMTP id X;\r\n\tMon, 7 Dec 2026 01:00:00 +0000\r\n--B--\r\n",
	      &in);
	assert_true(in.ours);
	assert_non_null(strstr(in.evidence, "out.example.test"));
	/* by network, in brackets, quoted with "> " in a non-standard bounce */
	parse("From: MAILER-DAEMON@x\r\nSubject: failure notice\r\n\r\nSorry.\r\n"
	      "> Received: from out (unknown [192.0.2.77])\r\n>   by mx.remote.example\r\n",
	      &in);
	assert_true(in.dsn);
	assert_true(in.ours);
	/* a Message-ID of a subdomain of ours; not one of "badexample.test" */
	parse("Subject: Returned mail\r\n\r\n   Message-ID: <1.2@mail.example.test>\r\n", &in);
	assert_true(in.ours);
	parse("Subject: Returned mail\r\n\r\nMessage-ID: <1.2@badexample.test>\r\n", &in);
	assert_false(in.ours);
	/* base64 text part */
	parse("Subject: Undeliverable\r\nContent-Type: multipart/mixed; boundary=\"Q\"\r\n\r\n"
	      "--Q\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
	      "UmVjZWl2ZWQ6IGJ5IG91dC5leGFtcGxlLnRlc3Q7IE1vbgo=\r\n--Q--\r\n",
	      &in);
	assert_true(in.ours);
	/* auto-replies: headers, and an answer to our Message-ID */
	parse("Auto-Submitted: auto-replied\r\nSubject: away\r\n\r\nI am away.\r\n", &in);
	assert_true(in.auto_reply);
	assert_false(in.dsn);
	assert_false(in.ours);
	parse("Auto-Submitted: no\r\nSubject: hello\r\n\r\nhi\r\n", &in);
	assert_false(in.auto_reply);
	parse("Subject: Virus found in a message you sent\r\n\r\nx\r\n", &in);
	assert_true(in.virus_notice);
	parse("Precedence: auto_reply\r\nIn-Reply-To: <abc@example.test>\r\n\r\nx\r\n", &in);
	assert_true(in.auto_reply);
	assert_true(in.ours);
	/* a DSN inside a DSN, the inner one quoting a stranger */
	parse(DSN_HEAD "--B\r\nContent-Type: message/rfc822\r\n\r\n"
	               "Received: from relay.victim.example by mx.elsewhere.example\r\n"
	               "Message-ID: <b2@elsewhere.example>\r\nContent-Type: multipart/report; "
	               "report-type=delivery-status; boundary=\"C\"\r\n\r\n"
	               "--C\r\nContent-Type: text/rfc822-headers\r\n\r\n"
	               "Received: by mx.victim.example\r\n--C--\r\n--B--\r\n",
	      &in);
	assert_true(in.dsn);
	assert_false(in.ours);
	/* broken MIME, NULs, no header end */
	bounce_parse("Content-Type: multipart/report; boundary=\"\r\n--\0\0--\r\nReceived: by "
	             "out.example.test",
	             60, &pol, &in);
	assert_false(in.ours);
	parse("Content-Transfer-Encoding: base64\r\nContent-Type: multipart/mixed; "
	      "boundary=x\r\n\r\n--x\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!!\r\n",
	      &in);
	assert_false(in.ours);
	/* 10,000 quoted Received lines of strangers, ours last */
	big = xmalloc(cap);
	off += (size_t)snprintf(big, cap, "Subject: Undelivered\r\n\r\n");
	for (int i = 0; i < 10000; i++)
		off += (size_t)snprintf(
		    big + off, cap - off,
		    "> Received: from h%d (h [203.0.113.%d]) by relay%d.example\r\n", i, i % 250,
		    i);
	bounce_parse(big, off, &pol, &in);
	assert_false(in.ours);
	assert_int_equal(in.quoted_received, 10000);
	off += (size_t)snprintf(big + off, cap - off, "Received: by out.example.test\r\n");
	bounce_parse(big, off, &pol, &in);
	assert_true(in.ours);
	free(big);
}

/* --- the checks through the engine ------------------------------------------------ */

static struct conf *mkconf(const char *checks)
{
	char err[1024] = "", keyfile[512], text[128];
	struct conf *c = conf_load(NULL, err, sizeof(err));
	const char *kv[] = {
		"hostname",
		"mx.example.test",
		"contact",
		"postmaster@example.test",
		"trusted_networks",
		"192.0.2.0/24",
		"log_target",
		"stderr",
		"checks",
		checks,
		"batv.domains",
		"example.test",
		"batv.key_file",
		keyfile,
		"bounce.relays",
		"out.example.test, 192.0.2.0/24",
		"bounce.domains",
		"example.test",
		NULL,
	};

	snprintf(text, sizeof(text), "2 %s\n1 %s\n", K2, K1);
	write_file(keyfile, sizeof(keyfile), "keys", text);
	assert_non_null(c);
	for (int i = 0; kv[i]; i += 2)
		if (conf_set(c, kv[i], kv[i + 1], err, sizeof(err)) < 0)
			fail_msg("%s", err);
	if (conf_finish(c, err, sizeof(err)) < 0)
		fail_msg("conf_finish: %s", err);
	return c;
}

/* One transaction up to EOM; returns the connection (the caller ends it). */
static struct conn *session(struct conf *cf, const char *ip, const char *from, const char *to,
                            const char *msg, struct reply *rcpt, struct reply *eom)
{
	struct conn *c = engine_conn_new(cf);
	struct reply r;
	const char *p = msg;

	engine_connect(c, "client.example.net", ip, &r);
	engine_helo(c, "client.example.net", &r);
	engine_mail(c, from, &r);
	engine_rcpt(c, to, rcpt);
	while (*p && *p != '\n') { /* "Name: value\n" lines, then the body */
		char name[64], value[512];
		const char *colon = strchr(p, ':'), *nl = strchr(p, '\n');

		assert_non_null(colon);
		assert_non_null(nl);
		snprintf(name, sizeof(name), "%.*s", (int)(colon - p), p);
		snprintf(value, sizeof(value), "%.*s", (int)(nl - colon - 2), colon + 2);
		engine_header(c, name, value, &r);
		p = nl + 1;
	}
	engine_eoh(c, &r);
	if (*p == '\n')
		p++;
	engine_body(c, (const unsigned char *)p, strlen(p), &r);
	engine_eom(c, eom);
	return c;
}

static void test_engine(void **state)
{
	struct conf *cf = mkconf("batv, bounce");
	struct reply rr, er;
	struct conn *c;
	char tagged[400];
	struct batv_keys k;

	(void)state;
	/* trusted: signed, and the decision is not refused */
	c = session(cf, "192.0.2.10", "<user@example.test>", "<x@remote.example>",
	            "Subject: hi\n\nhello\n", &rr, &er);
	assert_int_equal(rr.action, REPLY_CONTINUE);
	assert_int_equal(er.action, REPLY_CONTINUE);
	assert_int_equal(c->txn->nenvs, 1);
	assert_int_equal(c->txn->envs[0].rcpt, 0);
	assert_memory_equal(c->txn->envs[0].addr, "<prvs=2", 7);
	engine_txn_end(c, &er);
	engine_conn_free(c);
	/* trusted but another domain, or <>: not signed */
	c = session(cf, "192.0.2.10", "<user@other.example>", "<x@remote.example>", "S: x\n\nb\n",
	            &rr, &er);
	assert_int_equal(c->txn->nenvs, 0);
	engine_txn_end(c, &er);
	engine_conn_free(c);
	/* an untagged bounce: RCPT passes (SAV callouts!), EOM refuses */
	c = session(cf, "198.51.100.7", "<>", "<user@example.test>",
	            "Subject: Undelivered Mail\n\nReceived: by mx.victim.example\n", &rr, &er);
	assert_int_equal(rr.action, REPLY_CONTINUE);
	assert_int_equal(er.action, REPLY_REJECT);
	assert_string_equal(er.code, "550");
	assert_string_equal(er.xcode, "5.7.1");
	assert_non_null(strstr(er.text, "carries no BATV tag"));
	assert_non_null(strstr(er.text, "(ref "));
	engine_txn_end(c, &er);
	engine_conn_free(c);
	/* a valid tag: accepted, the recipient replaced */
	keys2(&k);
	assert_int_equal(
	    batv_sign(&k, "user@example.test", batv_day(clock_now()), 7, tagged, sizeof(tagged)),
	    0);
	{
		char to[420];

		snprintf(to, sizeof(to), "<%s>", tagged);
		c = session(cf, "198.51.100.7", "<>", to, "Subject: Undelivered Mail\n\nx\n", &rr,
		            &er);
	}
	assert_int_equal(er.action, REPLY_CONTINUE);
	assert_int_equal(c->txn->nenvs, 1);
	assert_int_equal(c->txn->envs[0].rcpt, 1);
	assert_string_equal(c->txn->envs[0].addr, "<user@example.test>");
	engine_txn_end(c, &er);
	engine_conn_free(c);
	conf_unref(cf);

	/* the bounce check alone */
	cf = mkconf("bounce");
	c = session(cf, "198.51.100.7", "<>", "<user@example.test>",
	            "Subject: Undelivered Mail\n\nReceived: by mx.victim.example\n", &rr, &er);
	assert_int_equal(rr.action, REPLY_CONTINUE);
	assert_int_equal(er.action, REPLY_REJECT);
	assert_non_null(strstr(er.text, "answers a message we did not send"));
	engine_txn_end(c, &er);
	engine_conn_free(c);
	/* postmaster@ stays reachable for every bounce */
	c = session(cf, "198.51.100.7", "<>", "<postmaster@example.test>",
	            "Subject: Undelivered Mail\n\nReceived: by mx.victim.example\n", &rr, &er);
	assert_int_equal(er.action, REPLY_CONTINUE);
	engine_txn_end(c, &er);
	engine_conn_free(c);
	c = session(cf, "198.51.100.7", "<>", "<user@example.test>",
	            "Subject: Undelivered Mail\n\n> Received: from pc by out.example.test\n", &rr,
	            &er);
	assert_int_equal(er.action, REPLY_CONTINUE);
	engine_txn_end(c, &er);
	engine_conn_free(c);
	conf_unref(cf);
}

/* Bounces to several recipients: each in batv.domains must carry a valid
 * tag (postmaster@ excepted); every tag is removed. */
static void test_multi_rcpt(void **state)
{
	struct conf *cf = mkconf("batv");
	struct batv_keys k;
	char t1[400], t2[400], a1[420], a2[420];
	const char *sets[][3] = {
		{ a1, a2, "ok" },
		{ a1, "<other@example.test>", "refused" },
		{ a1, "<postmaster@example.test>", "ok" },
		{ a1, "<someone@elsewhere.example>", "ok" },
	};

	(void)state;
	keys2(&k);
	assert_int_equal(
	    batv_sign(&k, "user@example.test", batv_day(clock_now()), 7, t1, sizeof(t1)), 0);
	assert_int_equal(
	    batv_sign(&k, "other@example.test", batv_day(clock_now()), 7, t2, sizeof(t2)), 0);
	snprintf(a1, sizeof(a1), "<%s>", t1);
	snprintf(a2, sizeof(a2), "<%s>", t2);
	for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
		struct conn *c = engine_conn_new(cf);
		struct reply r, r1, r2, eom;

		engine_connect(c, "mx.elsewhere.example", "198.51.100.7", &r);
		engine_helo(c, "mx.elsewhere.example", &r);
		engine_mail(c, "<>", &r);
		engine_rcpt(c, sets[i][0], &r1);
		engine_rcpt(c, sets[i][1], &r2);
		/* never refused before end of DATA */
		assert_int_equal(r1.action, REPLY_CONTINUE);
		assert_int_equal(r2.action, REPLY_CONTINUE);
		engine_eoh(c, &r);
		engine_eom(c, &eom);
		if (strcmp(sets[i][2], "ok") == 0) {
			assert_int_equal(eom.action, REPLY_CONTINUE);
			assert_int_equal(c->txn->nenvs, sets[i][1] == a2 ? 2 : 1);
			assert_string_equal(c->txn->envs[0].addr, "<user@example.test>");
			assert_string_equal(c->txn->envs[0].old, a1);
			if (sets[i][1] == a2)
				assert_string_equal(c->txn->envs[1].addr, "<other@example.test>");
		} else {
			assert_int_equal(eom.action, REPLY_REJECT);
			assert_non_null(
			    strstr(eom.text, "<other@example.test> carries no BATV tag"));
		}
		engine_txn_end(c, &eom);
		engine_conn_free(c);
	}
	conf_unref(cf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_vector), cmocka_unit_test(test_window_rotation),
		cmocka_unit_test(test_hostile_tags), cmocka_unit_test(test_key_files),
		cmocka_unit_test(test_bounce_kinds), cmocka_unit_test(test_engine),
		cmocka_unit_test(test_multi_rcpt),
	};

	return cmocka_run_group_tests(tests, policy_setup, policy_teardown);
}
