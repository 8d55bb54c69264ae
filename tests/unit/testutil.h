/* tests/unit/testutil.h - a private temporary folder and files in it, shared
 * by the cmocka programs.  Not thread-safe; assertions are cmocka's. */
#ifndef PORTCULLIS_TESTUTIL_H
#define PORTCULLIS_TESTUTIL_H

#include <stddef.h>

extern char tmpdir[256];

/* Make tmpdir as $TMPDIR/PREFIX-XXXXXX (group setup).  Returns 0 or -1. */
int tmpdir_create(const char *prefix);
/* Remove tmpdir and the files in it (group teardown).  Returns 0. */
int tmpdir_remove(void);
/* Write content to tmpdir/name; the full path goes to path. */
void write_file(char *path, size_t pathsize, const char *name, const char *content);
/* Write a table file and return its "type:path" spec (a ring of 8). */
const char *table(const char *type, const char *content);

/* Start tests/smtp-script.py (a scripted SMTP server on a free loopback
 * port) in mode, with users the RCPT addresses that exist ("" or NULL:
 * none), logging its sessions to log and living at most life seconds;
 * returns its port.  script_server_stop() ends it (safe twice). */
int script_server_start(const char *mode, const char *users, const char *log, int life);
void script_server_stop(void);

#endif
