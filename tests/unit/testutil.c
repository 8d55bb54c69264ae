/* tests/unit/testutil.c - see testutil.h. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
