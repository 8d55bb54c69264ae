/* milter/ctl_report.c - portcullisctl report: a summary of the daemon's log
 *
 *   portcullisctl report [--since 24h|7d|today|DATE] [--until TIME]
 *                        [--log FILE]... [--top N] [--keep N]
 *
 * Reads the log files (default /var/log/mail.log, where Debian's rsyslog
 * writes the mail facility; "-" is standard input; FILE.gz is read through
 * gzip -dc) in the order given, and prints lib/report.c's summary.  The
 * work is in lib/report.c; this is the command line and the files.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf.h"
#include "ctl.h"
#include "report.h"
#include "util.h"

#define DEFAULT_LOG "/var/log/mail.log"
#define LOGS_MAX    64

extern char **environ;

static int ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), t = strlen(tail);

	return n >= t && strcmp(s + n - t, tail) == 0;
}

/* Read one file into r.  0, or 2 after a message. */
static int read_one(struct report *r, const char *path)
{
	int fd, rc = 0;
	pid_t pid = 0;

	if (strcmp(path, "-") == 0) {
		fd = 0;
	} else if (ends_with(path, ".gz")) {
		int p[2];
		posix_spawn_file_actions_t fa;
		char *argv[] = { (char *)"gzip", (char *)"-dc", (char *)"--", (char *)path, NULL };
		int e;

		if (access(path, R_OK) < 0) {
			fprintf(stderr, "portcullisctl: report: %s: %s\n", path, strerror(errno));
			return 2;
		}
		if (pipe(p) < 0) {
			fprintf(stderr, "portcullisctl: report: pipe: %s\n", strerror(errno));
			return 2;
		}
		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_adddup2(&fa, p[1], 1);
		posix_spawn_file_actions_addclose(&fa, p[0]);
		e = posix_spawnp(&pid, "gzip", &fa, NULL, argv, environ);
		posix_spawn_file_actions_destroy(&fa);
		close(p[1]);
		if (e != 0) {
			fprintf(stderr, "portcullisctl: report: cannot run gzip for %s: %s\n", path,
			        strerror(e));
			close(p[0]);
			return 2;
		}
		fd = p[0];
	} else if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		fprintf(
		    stderr, "portcullisctl: report: %s: %s%s\n", path, strerror(errno),
		    strcmp(path, DEFAULT_LOG) == 0
		        ? " (give the daemon's log with --log FILE; without rsyslog: "
		          "journalctl -t portcullis -o short-iso | portcullisctl report --log -)"
		        : "");
		return 2;
	}
	if (report_read_fd(r, fd) < 0) {
		fprintf(stderr, "portcullisctl: report: %s: %s\n", path, strerror(errno));
		rc = 2;
	}
	if (fd != 0)
		close(fd);
	if (pid > 0) {
		int status;

		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "portcullisctl: report: gzip -dc %s failed\n", path);
			rc = 2;
		}
	}
	return rc;
}

int cmd_report(struct conf *conf, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "since", required_argument, NULL, 's' },
		{ "until", required_argument, NULL, 'u' },
		{ "log", required_argument, NULL, 'l' },
		{ "top", required_argument, NULL, 't' },
		{ "keep", required_argument, NULL, 'k' },
		{ NULL, 0, NULL, 0 },
	};
	struct report_opts o = { 0 };
	const char *logs[LOGS_MAX];
	char title[1024] = "";
	struct report *r;
	int nlogs = 0, opt, rc = 0;
	char *end;

	(void)conf;
	o.now = time(NULL);
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
		case 'u':
			if (report_parse_since(optarg, o.now, opt == 's' ? &o.since : &o.until) <
			    0) {
				fprintf(
				    stderr,
				    "portcullisctl: report: --%s %.40s: want N[smhdw] (e.g. 24h, "
				    "7d), today, yesterday or YYYY-MM-DD [HH:MM[:SS]]\n",
				    opt == 's' ? "since" : "until", optarg);
				return 2;
			}
			break;
		case 'l':
			if (nlogs == LOGS_MAX) {
				fprintf(stderr, "portcullisctl: report: too many --log\n");
				return 2;
			}
			logs[nlogs++] = optarg;
			break;
		case 't':
		case 'k': {
			long v = strtol(optarg, &end, 10);

			if (*optarg == '\0' || *end || v < 1 ||
			    v > (opt == 't' ? 10000 : 1000000)) {
				fprintf(
				    stderr,
				    "portcullisctl: report: --%s %.40s: not a number in range\n",
				    opt == 't' ? "top" : "keep", optarg);
				return 2;
			}
			if (opt == 't')
				o.top = (int)v;
			else
				o.keep = (int)v;
			break;
		}
		default:
			fprintf(stderr, "portcullisctl: report: unknown option %s\n",
			        argv[optind - 1]);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "portcullisctl: report: unexpected argument '%.40s'\n",
		        argv[optind]);
		return 2;
	}
	if (nlogs == 0)
		logs[nlogs++] = DEFAULT_LOG;
	if (o.keep == 0)
		o.keep = 10000;
	if (o.top > o.keep)
		o.keep = o.top;
	r = report_new(&o);
	for (int i = 0; i < nlogs && rc == 0; i++) {
		rc = read_one(r, logs[i]);
		bappend(title, sizeof(title), "%s%s", i ? ", " : "",
		        strcmp(logs[i], "-") == 0 ? "(standard input)" : logs[i]);
	}
	if (rc == 0)
		report_print(r, stdout, title);
	report_free(r);
	return rc;
}
