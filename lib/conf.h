/* lib/conf.h - configuration: typed parameter tables and immutable snapshots
 *
 * One file of "key = value" lines ('#' comments, a line starting with white
 * space continues the previous value).  Keys are declared in tables of
 * struct conf_param: the core table (conf.c) and one table per check module.
 * Each row has a type, a default (a string parsed by the same code as the
 * file), bounds and a one-line doc; the tables drive parsing, `-d`, `-n`,
 * the man page check and the sample config.
 *
 * conf_load() builds a new snapshot; it is immutable and reference counted.
 * conf_current() hands out a reference to the running snapshot (taken at
 * connect, kept for the whole connection); conf_install() swaps in a new one
 * (reload).  Errors are "FILE:LINE: KEY: reason" in err, and nothing changes.
 */
#ifndef PORTCULLIS_CONF_H
#define PORTCULLIS_CONF_H

#include <stddef.h>

#include "table.h"

enum conf_type {
	CONF_STR,   /* char *                                    */
	CONF_INT,   /* long, bounds min..max                     */
	CONF_OCTAL, /* long, written in octal (file modes)       */
	CONF_BOOL,  /* int: yes/no/true/false/1/0/on/off         */
	CONF_TIME,  /* long seconds: 30, 30s, 5m, 2h, 1d, 1w     */
	CONF_SCORE, /* double, bounds min..max                   */
	CONF_MODE,  /* enum mode: reject, defer, monitor, off    */
	CONF_ONERR, /* enum on_error: defer, skip                */
	CONF_LIST,  /* struct strlist: comma or space separated  */
	CONF_MAPS,  /* struct maplist: list of type:path tables  */
	CONF_NETS,  /* struct netlist: list of CIDR networks     */
};

/* Per-check modes.  Ordered: the effective mode of a verdict is the lower of
 * its module's mode and its own (sub-check) mode. */
enum mode { MODE_OFF, MODE_MONITOR, MODE_DEFER, MODE_REJECT };
enum on_error { ONERR_DEFER, ONERR_SKIP };

struct strlist {
	int n;
	char **v;
};

struct netlist {
	int n;
	struct net {
		struct ipaddr ip;
		int len;
	} * v;
};

struct conf_param {
	const char *key;
	const char *def;
	enum conf_type type;
	size_t off; /* offset of the value in the owner's struct */
	double min, max;
	const char *doc;
};
#define CONF_END                                                                                   \
	{                                                                                          \
		NULL, NULL, CONF_STR, 0, 0, 0, NULL                                                \
	}

/* The core settings (not belonging to a check module). */
struct core_conf {
	struct strlist checks;
	char *socket;
	long socket_mode;
	char *socket_group;
	char *user;
	char *pidfile;
	char *state_dir;
	long ref_keep;
	long ref_max;
	char *hostname;
	char *contact;
	char *log_target;
	char *log_facility;
	int debug;
	long milter_timeout;
	struct netlist trusted_networks;
	int auth_whitelist;
	double score_reject;
	double score_defer;
	double score_tag;
	char *header_prefix;
	char *dns_resolver;
	long dns_timeout_ms;
	long dns_cache_size;
	long dns_ttl_max;
	long dns_neg_ttl_max;
	char *metrics_listen;
	int metrics_allow_remote;
	long metrics_store_interval;
	long content_max_size;
	long content_memory_size;
	enum mode content_oversize;
};

extern const struct conf_param core_params[];

struct check_module;
struct dns;

/* Settings of one module inside a snapshot. */
struct modconf {
	enum mode mode;
	enum on_error on_error;
	void *data; /* the module's own struct, conf_size bytes */
};

struct conf {
	int refs;   /* atomically updated */
	char *path; /* file it came from, or "(defaults)" */
	struct core_conf core;
	struct modconf *mod; /* indexed like check_registry[] */
	int *order;          /* enabled modules in `checks` order */
	int norder;
	char hostname[256]; /* resolved core.hostname */
	char contact[256];  /* resolved core.contact */
	void *priv;         /* where keys were set (conf.c) */
	struct dns *dns;    /* the resolver of dns.* (one per snapshot) */
};

/* Load a snapshot from path (NULL: built-in defaults only).  Returns NULL
 * and fills err on any error. */
struct conf *conf_load(const char *path, char *err, size_t errsize);

/* Parse one "key = value" pair into snapshot c, as conf_load does for each
 * line (used by tests and portcullisctl -o).  Returns 0 or -1 + err. */
int conf_set(struct conf *c, const char *key, const char *value, char *err, size_t errsize);

/* Finish a snapshot after conf_set() calls: resolve `checks`, run each
 * module's init.  Returns 0 or -1 + err. */
int conf_finish(struct conf *c, char *err, size_t errsize);

struct conf *conf_ref(struct conf *c);
void conf_unref(struct conf *c);

/* The running snapshot, process-wide (thread-safe). */
struct conf *conf_current(void);   /* returns a new reference */
void conf_install(struct conf *c); /* takes over the caller's reference */

/* Print settings as "key = value" lines: all defaults (-d), only values that
 * differ from the default (-n), or the sample configuration file. */
enum conf_dump {
	CONF_DUMP_DEFAULTS, /* every key with its value in c (pass the defaults) */
	CONF_DUMP_CHANGED,  /* keys whose value differs from the default */
	CONF_DUMP_SAMPLE,   /* the commented sample file (config/portcullis.conf) */
};
void conf_dump(const struct conf *c, enum conf_dump what, void *fp);

/* Visit every declared parameter (core, automatic per-module mode/on_error,
 * module tables) in a stable order. */
void conf_foreach_param(void (*fn)(const struct conf_param *p, void *arg), void *arg);

const char *mode_name(enum mode m);

/* The module's own settings struct inside snapshot c. */
static inline void *conf_module(const struct conf *c, int idx)
{
	return c->mod[idx].data;
}

#endif
