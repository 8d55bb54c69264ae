/* tests/fuzz/fuzz_engine.c - libFuzzer target: one SMTP session through the
 * engine with all checks on.  Input lines: client name, client address,
 * HELO, sender, then recipients; every reply must be clean SMTP text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "log.h"
#include "util.h"

static struct conf *conf;

static void check_reply(const struct reply *r)
{
	size_t pct = 0;

	for (const char *p = r->text; *p; p++) {
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			__builtin_trap();
		if (*p == '%')
			pct++;
		else if (pct % 2)
			__builtin_trap(); /* an undoubled '%' */
		else
			pct = 0;
	}
	if (pct % 2)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = xstrndup((const char *)data, size), *save = NULL, *f[8] = { 0 };
	struct conn *c;
	struct reply r;
	int n = 0;

	if (conf == NULL) {
		char err[512];

		log_open("fuzz", "none", "mail");
		conf = conf_load(NULL, err, sizeof(err));
		conf_set(conf, "trusted_networks", "", err, sizeof(err));
		conf_set(conf, "score.tag", "0.5", err, sizeof(err));
		conf_set(conf, "helo.non_fqdn", "monitor", err, sizeof(err));
		conf_finish(conf, err, sizeof(err));
	}
	for (char *tok = strtok_r(buf, "\n", &save); tok && n < 8;
	     tok = strtok_r(NULL, "\n", &save))
		f[n++] = tok;
	c = engine_conn_new(conf);
	engine_connect(c, f[0], f[1], &r);
	engine_helo(c, f[2] ? f[2] : "", &r);
	check_reply(&r);
	engine_mail(c, f[3] ? f[3] : "<>", &r);
	check_reply(&r);
	for (int i = 4; i < n; i++) {
		engine_rcpt(c, f[i], &r);
		check_reply(&r);
	}
	engine_header(c, "Subject", f[2] ? f[2] : "", &r);
	engine_eom(c, &r);
	check_reply(&r);
	for (int i = 0; c->txn && i < c->txn->nheaders; i++)
		for (const char *p = c->txn->headers[i].value; *p; p++)
			if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
				__builtin_trap();
	engine_txn_end(c, &r);
	engine_conn_free(c);
	free(buf);
	return 0;
}
