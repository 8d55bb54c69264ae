/* milter/ctl.h - portcullisctl's commands on the store (ctl_store.c)
 *
 * Each command takes the loaded configuration and its own arguments
 * (argv[0] is the command's name) and returns the exit status:
 * 0 done, 1 not found or refused, 2 usage, configuration or store error.
 * Messages: results on stdout, one-line errors "portcullisctl: ..." on
 * stderr.  See portcullisctl(8).
 */
#ifndef PORTCULLIS_CTL_H
#define PORTCULLIS_CTL_H

struct conf;
struct store;

/* Open the store in state_dir with the settable clock; NULL after an
 * error message. */
struct store *ctl_store_open(const struct conf *conf);

/* The same with store_open_flags() flags: STORE_RDONLY for the commands
 * that only read (list, show, stats, dump, explain), so they work on a
 * read-only state_dir and never create or move a file. */
struct store *ctl_store_open_flags(const struct conf *conf, int flags);

/* Close it, and give the files this tool created as root to the owner of
 * state_dir, so the daemon running as its own user can open them. */
void ctl_store_close(const struct conf *conf, struct store *st);

int cmd_greylist(struct conf *conf, int argc, char **argv);
int cmd_awl(struct conf *conf, int argc, char **argv);
int cmd_whitelist(struct conf *conf, int argc, char **argv);
int cmd_expire(struct conf *conf, int argc, char **argv);
/* Entries per namespace and the greylist counters kept in the store. */
int cmd_stats_store(struct conf *conf, int argc, char **argv);
int cmd_dump(struct conf *conf, int argc, char **argv);
int cmd_load(struct conf *conf, int argc, char **argv);
int cmd_explain(struct conf *conf, int argc, char **argv);

#endif
