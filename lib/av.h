/* lib/av.h - virus scanning with libclamav in an isolated helper process
 *
 * libclamav parses hostile archives; a crash or a hang in it must cost one
 * message a temporary failure, never the milter.  So libclamav never runs
 * in the milter process.  The milter starts one helper process
 * (posix_spawn of the small program portcullis-av, which links libclamav
 * and nothing else of the milter, or of its own executable with the hidden
 * option --av-helper; so the helper is a fresh single-threaded process,
 * never a fork of the threaded milter) and talks to it over a
 * SOCK_SEQPACKET control socket.
 *
 * One scan: the milter thread makes a socketpair for the answer and sends
 * one end plus the message's memfd to the helper in one record
 * (SCM_RIGHTS); a thread of the helper's pool maps the file and scans it
 * from memory with the one shared engine and writes the answer.  The milter thread waits at most
 * av_settings.timeout_ms; past that, or when the helper died, the helper is
 * killed and the scan fails; the next scan starts a new helper.
 *
 * The helper holds ONE compiled engine (the database needs ~1.2 GiB with
 * the official signatures; one per process or thread would not do).
 * Scanning threads take a reference to it; a background thread polls the
 * database directory every reload_interval seconds and, when it changed,
 * compiles a new engine and swaps it in; the old one is freed when its
 * last scan ends.  A failed load keeps the old engine.  Changed settings
 * (a configuration reload) start a new helper that loads its database
 * while the current one goes on scanning; once the new one has an engine
 * it takes over and the old one finishes its scans and exits (a new
 * database that never loads leaves the old helper scanning).
 *
 * Thread-safe: av_scan() may be called from many threads at once.
 */
#ifndef PORTCULLIS_AV_H
#define PORTCULLIS_AV_H

#include <sys/types.h>

struct av_settings {
	char database[1024]; /* signature directory */
	char tmpdir[1024];   /* libclamav's temporary files; "" its default */
	long max_scansize;   /* ClamAV's scan limits, 0: unlimited */
	long max_filesize;
	long max_recursion;
	long max_files;
	long max_scantime;    /* ms, libclamav's own bound */
	long reload_interval; /* s */
	long timeout_ms;      /* the milter's bound on one whole scan */
	long max_scans;       /* scans at the same time in the helper, 0: no bound */
	char log_target[32];
	char log_facility[32];
	int debug;
};

enum av_status { AV_CLEAN, AV_VIRUS, AV_ERROR };

struct av_result {
	enum av_status status;
	char name[128];   /* AV_VIRUS: the signature name */
	char reason[200]; /* AV_ERROR: what went wrong, for the log */
	char word[24];    /* AV_ERROR: short reason for the header: "error",
	                     "timeout", "no database" */
};

/* Scan the file fd (read from offset 0) with the helper for settings s,
 * starting or replacing the helper as needed.  Returns res->status. */
enum av_status av_scan(const struct av_settings *s, int fd, struct av_result *res);

/* Start the helper now (so the database loads before the first message).
 * Returns 0 or -1 with err filled. */
int av_start(const struct av_settings *s, char *err, size_t errsize);

/* Stop the helper (and wait for it, bounded).  For a clean shutdown. */
void av_stop(void);

/* The running helper's process id, 0 if none (tests, log). */
pid_t av_helper_pid(void);

/* Start the helper when snapshot c enables the clamav check (daemon start
 * and configuration reload; lib/checks/clamav.c).  Returns 0 or -1 + err. */
struct conf;
int clamav_start(const struct conf *c, char *err, size_t errsize);
/* The signature directory (clamav.database) when clamav is enabled in
 * snapshot c, else NULL (lib/checks/clamav.c). */
const char *clamav_database(const struct conf *c);

/* Start helpers from the program portcullis-av: the one next to this
 * executable (a build tree), else the installed $(pkglibexecdir)/portcullis-av.
 * Where neither is, or when this is never called, the helper is this
 * executable run again with --av-helper, and its main() must hand that
 * over to av_helper_main().  Call once, before the first scan.  Returns the
 * program chosen, "" for this executable. */
const char *av_use_helper_program(void);

/* The helper process: main() calls this for "--av-helper ARGS...". */
int av_helper_main(int argc, char **argv);

#endif
