/* lib/log.h - logging to syslog or stderr
 *
 * One summary line per transaction is written by the engine; everything else
 * is warnings and errors.  Callers never pass network text as a format
 * string: network text goes through enc_log() (encode.h) and then "%s".
 * Thread-safe: syslog(3), or one locked write(2) per line on stderr.
 */
#ifndef PORTCULLIS_LOG_H
#define PORTCULLIS_LOG_H

enum log_level { LOG_LVL_ERR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Select the sink: target "stderr" or "syslog" (facility name such as
 * "mail", "local0"), or "none" (tests and fuzzers; not a config value).  Returns -1 for an unknown target or facility. */
int log_open(const char *ident, const char *target, const char *facility);
void log_set_debug(int on);
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same for a line already made: log_msg(lvl, "%s", text) without the
 * copy through printf. */
void log_str(enum log_level lvl, const char *text);

/* Name -> syslog facility value, -1 if unknown (used by config checking). */
int log_facility(const char *name);

#endif
