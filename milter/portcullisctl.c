/* milter/portcullisctl.c - portcullisctl(8): the admin tool
 *
 *   portcullisctl [-c FILE] check --ip ADDR [--name HOST] [--helo NAME]
 *                 [--from ADDR] --rcpt ADDR [--rcpt ADDR...] [--auth USER]
 *       run the configured checks for one made-up transaction, without an
 *       MTA, and print what each stage would answer (a dry run)
 *   portcullisctl [-c FILE] reload
 *       tell the running daemon (pidfile) to reload its configuration
 *
 * Exit status: 0 accepted, 1 rejected or deferred (check), 2 usage or
 * configuration error.
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
#include "engine.h"
#include "log.h"
#include "util.h"

#define DEFAULT_CONF SYSCONFDIR "/portcullis/portcullis.conf"

static void usage(FILE *fp)
{
	fprintf(fp,
	        "usage: portcullisctl [-c FILE] check --ip ADDR [--name HOST] [--helo NAME]\n"
	        "                     [--from ADDR] --rcpt ADDR [--rcpt ADDR...] [--auth USER]\n"
	        "       portcullisctl [-c FILE] reload\n"
	        "       portcullisctl -V\n");
}

static int show(const char *stage, const struct reply *r)
{
	switch (r->action) {
	case REPLY_CONTINUE:
	case REPLY_ACCEPT: printf("%-8s ok\n", stage); return 0;
	default: printf("%-8s %s %s %s\n", stage, r->code, r->xcode, r->text); return 1;
	}
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
	int nrcpt = 0, opt, failed = 0, accepted = 0;
	struct conn *c;
	struct reply r;

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
	c = engine_conn_new(conf);
	engine_connect(c, name, ip, &r);
	show("connect", &r);
	if (helo) {
		engine_helo(c, helo, &r);
		show("helo", &r);
	}
	engine_set_auth(c, auth);
	engine_mail(c, from, &r);
	show("mail", &r);
	for (int i = 0; i < nrcpt; i++) {
		char label[32];

		snprintf(label, sizeof(label), "rcpt#%d", i + 1);
		engine_rcpt(c, rcpts[i], &r);
		if (show(label, &r) == 0)
			accepted++;
	}
	if (accepted) {
		engine_eom(c, &r);
		failed = show("eom", &r);
		for (int i = 0; c->txn && i < c->txn->nheaders; i++)
			printf("header   %s: %s\n", c->txn->headers[i].name,
			       c->txn->headers[i].value);
		engine_txn_end(c, &r);
	}
	engine_conn_free(c);
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
	else {
		usage(stderr);
		rc = 2;
	}
	conf_unref(conf);
	return rc;
}
