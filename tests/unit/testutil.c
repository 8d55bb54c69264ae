/* tests/unit/testutil.c - see testutil.h. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

char tmpdir[256];
static int ntables;

int tmpdir_create(const char *prefix)
{
	const char *dir = getenv("TMPDIR");

	if (dir == NULL || *dir == '\0')
		dir = "/tmp";
	snprintf(tmpdir, sizeof(tmpdir), "%s/%s-XXXXXX", dir, prefix);
	return mkdtemp(tmpdir) ? 0 : -1;
}

int tmpdir_remove(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	char path[600];

	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", tmpdir, e->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(tmpdir);
	return 0;
}

void write_file(char *path, size_t pathsize, const char *name, const char *content)
{
	FILE *fp;

	snprintf(path, pathsize, "%s/%s", tmpdir, name);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(content, fp);
	assert_int_equal(fclose(fp), 0);
}

const char *table(const char *type, const char *content)
{
	static char specs[8][600];
	char *spec = specs[ntables % 8];
	char name[64], path[512];

	snprintf(name, sizeof(name), "t%d.%s", ntables++, type);
	write_file(path, sizeof(path), name, content);
	snprintf(spec, 600, "%s:%s", type, path);
	return spec;
}

static pid_t script_pid = -1;

int script_server_start(const char *mode, const char *users, const char *log, int life)
{
	const char *top = getenv("top_srcdir");
	char script[512], lifes[16], buf[32];
	int pfd[2];
	size_t got = 0;
	ssize_t n;

	snprintf(script, sizeof(script), "%s/tests/smtp-script.py", top ? top : ".");
	snprintf(lifes, sizeof(lifes), "%d", life);
	unlink(log);
	assert_int_equal(pipe(pfd), 0);
	script_pid = fork();
	assert_true(script_pid >= 0);
	if (script_pid == 0) {
		dup2(pfd[1], 1);
		close(pfd[0]);
		execlp("python3", "python3", script, mode, users ? users : "", "--log", log,
		       "--life", lifes, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	/* up to the newline: the port */
	while (got < sizeof(buf) - 1 && (n = read(pfd[0], buf + got, sizeof(buf) - 1 - got)) > 0) {
		got += (size_t)n;
		if (memchr(buf, '\n', got))
			break;
	}
	close(pfd[0]);
	assert_true(got > 0);
	buf[got] = '\0';
	return atoi(buf);
}

void script_server_stop(void)
{
	if (script_pid > 0) {
		kill(script_pid, SIGTERM);
		waitpid(script_pid, NULL, 0);
	}
	script_pid = -1;
}
