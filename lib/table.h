/* lib/table.h - access tables in Postfix's syntax
 *
 * A table is opened from a "type:path" spec:
 *   cidr:FILE      NETWORK/LEN ACTION [text]   first match wins (IPv4, IPv6)
 *   pcre:FILE      /regex/flags ACTION [text]  first match wins; flags as in
 *                  Postfix pcre_table(5): i toggles case-sensitivity (default
 *                  insensitive), x extended, ! before the regex negates
 *   texthash:FILE  KEY ACTION [text]           exact key, case-insensitive
 * Lines starting with '#' and blank lines are ignored; a line starting with
 * white space continues the previous one.  ACTION is one of
 *   OK, DUNNO, REJECT [text], DEFER [text], SCORE n [text]
 * A table is immutable after table_open() and may be shared by threads.
 * Errors name FILE:LINE.
 */
#ifndef PORTCULLIS_TABLE_H
#define PORTCULLIS_TABLE_H

#include <stddef.h>

#include "addr.h"

enum table_action { TA_DUNNO, TA_OK, TA_REJECT, TA_DEFER, TA_SCORE };

struct table_result {
	enum table_action action;
	double score;     /* TA_SCORE */
	const char *text; /* optional text from the entry, or NULL; owned by the table */
	const char *file; /* where the match came from, for the log */
	int line;
};

struct table;

/* Open and fully load a table.  Returns NULL and writes "FILE:LINE: reason"
 * (or "spec: reason") into err on failure. */
struct table *table_open(const char *spec, char *err, size_t errsize);
/* The same, but the entries come from text (a whole table file in memory,
 * e.g. a list built into the program); spec's file part only names it in
 * messages ("pcre:(built-in dynamic names)"). */
struct table *table_open_text(const char *spec, const char *text, char *err, size_t errsize);
void table_free(struct table *t);
const char *table_spec(const struct table *t);

/* Look up an IP address (cidr: tables match networks; texthash: and pcre:
 * tables match the canonical text form).  Returns 1 and fills *res when an
 * entry matched, 0 otherwise. */
int table_lookup_ip(const struct table *t, const struct ipaddr *ip, struct table_result *res);

/* Look up a string (cidr: tables never match strings). */
int table_lookup_str(const struct table *t, const char *key, struct table_result *res);

/* An ordered list of tables, searched in turn, first match wins. */
struct maplist {
	int n;
	struct table **t;
};

int maplist_lookup_ip(const struct maplist *m, const struct ipaddr *ip, struct table_result *res);
int maplist_lookup_str(const struct maplist *m, const char *key, struct table_result *res);
/* Look up an envelope address like Postfix's check_sender_access: each
 * table in turn is asked for the whole address, the domain, each parent
 * domain, then "local@" ("<>" for the null sender); the first table with
 * an entry decides.  Returns 1 and fills *res, or 0. */
int maplist_lookup_addr(const struct maplist *m, const struct mailaddr *a,
                        struct table_result *res);

/* Parse an ACTION column ("REJECT go away", "SCORE 2.5", ...).  Returns 0
 * or -1 with a reason in err.  *text points into s (or is NULL). */
int table_parse_action(const char *s, enum table_action *act, double *score, const char **text,
                       char *err, size_t errsize);

#endif
