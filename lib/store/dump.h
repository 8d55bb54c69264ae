/* lib/store/dump.h - the text form of store records: portcullisctl dump / load
 *
 * One record per line, fields separated by one TAB:
 *
 *   NAMESPACE  KEY  EXPIRES  FIELD  [FIELD...]
 *
 * EXPIRES is "never" or a UTC time "2026-12-01T10:00:00Z" (load also takes
 * decimal seconds since the epoch).  KEY and every FIELD are text in which
 * a backslash, TAB, CR, LF and any byte outside printable ASCII are written
 * \\ \t \r \n and \xHH.  The FIELDs are "name=value", per namespace:
 *
 *   greylist   flags=passed,nogrey (or flags=-)  passes=N  defers=N
 *              first=TIME  last=TIME             (struct grey_rec, grey.h)
 *   awl        passes=N  first=TIME  last=TIME   (struct awl_rec)
 *   whitelist  created=TIME  by=LOGIN  comment=TEXT          (wlist.h)
 *   refs       the record's lines in order: time=EPOCH client_addr=...
 *              (refs.h)
 *   any other  data=BYTES                        (the value as stored)
 *
 * A line starting with '#' and an empty line are ignored.  Load checks
 * each line fully: the namespace name, a greylist key of three parts, a
 * whitelist key of a known kind whose value is canonical, every field
 * present, numbers and times valid.
 *
 * Thread-safe, no global state.
 */
#ifndef PORTCULLIS_DUMP_H
#define PORTCULLIS_DUMP_H

#include <stddef.h>
#include <stdio.h>
#include <time.h>

#define DUMP_HEADER "# portcullis dump 1: NAMESPACE KEY EXPIRES FIELDS..., TAB-separated\n"

struct dump_rec {
	char ns[40];
	unsigned char *key;
	size_t keylen;
	unsigned char *val;
	size_t vallen;
	time_t expires;
};

/* Write one record as a line to fp.  Returns 0, or -1 when the value does
 * not decode for its namespace (fp is then left untouched and err says
 * why). */
int dump_write(FILE *fp, const char *ns, const void *key, size_t keylen, const void *val,
               size_t vallen, time_t expires, char *err, size_t errsize);

/* Parse one line (without its newline; the buffer is modified).  Returns 0
 * and fills *r (free it with dump_rec_free), 1 for a comment or empty line,
 * -1 with a one-line reason in err. */
int dump_parse(char *line, struct dump_rec *r, char *err, size_t errsize);
void dump_rec_free(struct dump_rec *r);

/* "2026-12-01T10:00:00Z", or "never" for 0. */
char *dump_time(time_t t, char *dst, size_t dstsize);
/* Parse that form, "never" (0) or decimal seconds.  Returns 0 or -1. */
int dump_time_parse(const char *s, time_t *t);

#endif
