/* milter/portcullisctl.c - portcullisctl(8): the admin tool
 *
 *   portcullisctl [-c FILE] check --ip ADDR [--name HOST] [--helo NAME]
 *                 [--from ADDR] --rcpt ADDR [--rcpt ADDR...] [--auth USER]
 *       run the configured checks for one made-up transaction, without an
 *       MTA, and print what each stage would answer (a dry run)
 *   portcullisctl [-c FILE] reload
 *       tell the running daemon (pidfile) to reload its configuration
 *   portcullisctl [-c FILE] greylist|awl|whitelist|expire|stats|dump|load|
 *                 explain ...
 *       work on the store in state_dir while the daemon runs (ctl_store.c)
 *
 * Exit status: 0 accepted / done, 1 rejected or deferred (check), not
 * found or refused, 2 usage, configuration or store error.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "ctl.h"
#include "engine.h"
#include "log.h"
#include "store.h"
#include "util.h"
#include "wlist.h"

#define DEFAULT_CONF SYSCONFDIR "/portcullis/portcullis.conf"

static void usage(FILE *fp)
{
	fputs("usage: portcullisctl [-c FILE] COMMAND ...\n"
	      "  check --ip ADDR [--name HOST] [--helo NAME] [--from ADDR]\n"
	      "        --rcpt ADDR [--rcpt ADDR...] [--auth USER]\n"
	      "  reload\n"
	      "  whitelist add KIND VALUE [--comment TEXT] [--expires TIME]\n"
	      "  whitelist add --from-ref REF [--comment TEXT] [--expires TIME]\n"
	      "  whitelist del KIND VALUE\n"
	      "  whitelist list [KIND]\n"
	      "        KIND: client, network, host, sender, domain, recipient\n"
	      "  explain REF [--log FILE]\n"
	      "  greylist list [--sender ADDR] [--rcpt ADDR] [--net NET]\n"
	      "  greylist show|del KEY | [--ip ADDR] [--from ADDR] [--rcpt ADDR]\n"
	      "  awl list | awl del NET\n"
	      "  expire | stats | dump [NAMESPACE...] | load FILE|-\n"
	      "portcullisctl -V\n",
	      fp);
}

static int show(const char *stage, const struct reply *r)
{
	switch (r->action) {
	case REPLY_CONTINUE:
	case REPLY_ACCEPT: printf("%-8s ok\n", stage); return 0;
	default: printf("%-8s %s %s %s\n", stage, r->code, r->xcode, r->text); return 1;
	}
}

static const char *const stage_label[STAGE_COUNT] = {
	"connect", "helo", "mail", "rcpt", "header", "eoh", "body", "eom",
};

/* Print the checks' decisions noted since the last call (*seen of n). */
static void show_notes(const struct note *notes, int n, int *seen)
{
	for (; *seen < n; (*seen)++) {
		const struct note *v = &notes[*seen];
		const char *what = v->action == ACT_OK       ? "ok (whitelisted)"
		                   : v->action == ACT_REJECT ? "reject"
		                   : v->action == ACT_DEFER  ? "defer"
		                   : v->action == ACT_SCORE  ? "score"
		                                             : "dunno";
		if (v->action == ACT_SCORE)
			printf("  check  %-28s score %+.2f%s (%s)\n", v->symbol, v->score,
			       v->monitor ? " monitor" : "", stage_label[v->stage]);
		else
			printf("  check  %-28s %s%s (%s)\n", v->symbol, what,
			       v->monitor ? " monitor" : "", stage_label[v->stage]);
	}
}

static void show_all_notes(const struct conn *c, int *cseen, int *tseen)
{
	show_notes(c->notes, c->nnotes, cseen);
	if (c->txn)
		show_notes(c->txn->notes, c->txn->nnotes, tseen);
}

static int cmd_check(struct conf *conf, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ip", required_argument, NULL, 'i' },
		{ "name", required_argument, NULL, 'n' },
		{ "helo", required_argument, NULL, 'h' },
		{ "from", required_argument, NULL, 'f' },
		{ "rcpt", required_argument, NULL, 'r' },
		{ "auth", required_argument, NULL, 'a' },
		{ NULL, 0, NULL, 0 },
	};
	const char *ip = NULL, *name = "unknown", *helo = NULL, *from = "<>", *auth = NULL;
	const char *rcpts[256];
	int nrcpt = 0, opt, failed = 0, accepted = 0, cseen = 0, tseen = 0;
	struct conn *c;
	struct reply r;
	struct store *st = NULL;
	char err[512];

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'i': ip = optarg; break;
		case 'n': name = optarg; break;
		case 'h': helo = optarg; break;
		case 'f': from = optarg; break;
		case 'a': auth = optarg; break;
		case 'r':
			if (nrcpt >= (int)ARRAY_SIZE(rcpts)) {
				fprintf(stderr, "portcullisctl: too many --rcpt\n");
				return 2;
			}
			rcpts[nrcpt++] = optarg;
			break;
		default: usage(stderr); return 2;
		}
	}
	if (ip == NULL || nrcpt == 0 || optind < argc) {
		fprintf(stderr, "portcullisctl: check needs --ip and at least one --rcpt\n");
		return 2;
	}
	/* The store read as the daemon reads it (whitelist, greylist), as a
	 * dry run: checks must not change it, and no ref is kept. */
	if ((st = store_open(conf->core.state_dir, err, sizeof(err))) == NULL)
		fprintf(stderr, "portcullisctl: warning: %s: checks run without the store\n", err);
	if (st)
		wlist_prepare(st);
	engine_set_store(st, 1);
	c = engine_conn_new(conf);
	engine_connect(c, name, ip, &r);
	show_all_notes(c, &cseen, &tseen);
	show("connect", &r);
	if (helo) {
		engine_helo(c, helo, &r);
		show_all_notes(c, &cseen, &tseen);
		show("helo", &r);
	}
	engine_set_auth(c, auth);
	engine_mail(c, from, &r);
	show_all_notes(c, &cseen, &tseen);
	show("mail", &r);
	for (int i = 0; i < nrcpt; i++) {
		char label[32];

		snprintf(label, sizeof(label), "rcpt#%d", i + 1);
		engine_rcpt(c, rcpts[i], &r);
		show_all_notes(c, &cseen, &tseen);
		if (show(label, &r) == 0)
			accepted++;
	}
	if (accepted) {
		engine_eom(c, &r);
		show_all_notes(c, &cseen, &tseen);
		failed = show("eom", &r);
		for (int i = 0; c->txn && i < c->txn->nheaders; i++)
			printf("header   %s: %s\n", c->txn->headers[i].name,
			       c->txn->headers[i].value);
		engine_txn_end(c, &r);
	}
	printf("decision %s\n", accepted == nrcpt && !failed ? "accept"
	                        : accepted                   ? "partly accepted"
	                        : r.action == REPLY_REJECT   ? "reject"
	                                                     : "defer");
	engine_conn_free(c);
	engine_set_store(NULL, 0);
	ctl_store_close(conf, st);
	return accepted == nrcpt && !failed ? 0 : 1;
}

static int cmd_reload(struct conf *conf)
{
	FILE *fp;
	long pid = 0;

	if (conf->core.pidfile[0] == '\0') {
		fprintf(stderr,
		        "portcullisctl: no pidfile configured; send SIGUSR1 to portcullis\n");
		return 2;
	}
	fp = fopen(conf->core.pidfile, "r");
	if (fp == NULL || fscanf(fp, "%ld", &pid) != 1 || pid <= 1) {
		fprintf(stderr, "portcullisctl: pidfile %s: %s\n", conf->core.pidfile,
		        fp ? "no process id" : strerror(errno));
		if (fp)
			fclose(fp);
		return 2;
	}
	fclose(fp);
	if (kill((pid_t)pid, SIGUSR1) < 0) {
		fprintf(stderr, "portcullisctl: signal process %ld: %s\n", pid, strerror(errno));
		return 2;
	}
	printf("portcullisctl: asked process %ld to reload (see its log for the result)\n", pid);
	return 0;
}

int main(int argc, char **argv)
{
	const char *path = DEFAULT_CONF;
	int explicit_conf = 0, rc;
	char err[1024];
	struct conf *conf;
	int i = 1;

	log_open("portcullisctl", "stderr", "mail");
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
			path = argv[++i];
			explicit_conf = 1;
		} else if (strcmp(argv[i], "-V") == 0) {
			printf("portcullisctl %s\n", PACKAGE_VERSION);
			return 0;
		} else if (strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	if (!explicit_conf && access(path, F_OK) < 0)
		path = NULL;
	conf = conf_load(path, err, sizeof(err));
	if (conf == NULL) {
		fprintf(stderr, "portcullisctl: %s\n", err);
		return 2;
	}
	if (strcmp(argv[i], "check") == 0)
		rc = cmd_check(conf, argc - i, argv + i);
	else if (strcmp(argv[i], "reload") == 0 && i + 1 == argc)
		rc = cmd_reload(conf);
	else if (strcmp(argv[i], "greylist") == 0)
		rc = cmd_greylist(conf, argc - i, argv + i);
	else if (strcmp(argv[i], "awl") == 0)
		rc = cmd_awl(conf, argc - i, argv + i);
	else if (strcmp(argv[i], "whitelist") == 0)
		rc = cmd_whitelist(conf, argc - i, argv + i);
	else if (strcmp(argv[i], "expire") == 0)
		rc = cmd_expire(conf, argc - i, argv + i);
	else if (strcmp(argv[i], "stats") == 0)
		rc = cmd_stats_store(conf, argc - i, argv + i);
	else if (strcmp(argv[i], "dump") == 0)
		rc = cmd_dump(conf, argc - i, argv + i);
	else if (strcmp(argv[i], "load") == 0)
		rc = cmd_load(conf, argc - i, argv + i);
	else if (strcmp(argv[i], "explain") == 0)
		rc = cmd_explain(conf, argc - i, argv + i);
	else {
		fprintf(stderr, "portcullisctl: unknown command '%.40s'\n", argv[i]);
		usage(stderr);
		rc = 2;
	}
	conf_unref(conf);
	return rc;
}
