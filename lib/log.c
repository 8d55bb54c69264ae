/* lib/log.c - logging to syslog or stderr; see log.h. */
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static int use_syslog;
static int discard; /* target "none": tests and fuzzers */
static int debug_on;
static char log_ident[32] = "portcullis";
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const struct {
	const char *name;
	int value;
} facilities[] = {
	{ "mail", LOG_MAIL },     { "daemon", LOG_DAEMON }, { "user", LOG_USER },
	{ "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 }, { "local2", LOG_LOCAL2 },
	{ "local3", LOG_LOCAL3 }, { "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 },
	{ "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 },
};

int log_facility(const char *name)
{
	for (size_t i = 0; i < sizeof(facilities) / sizeof(facilities[0]); i++)
		if (strcasecmp(name, facilities[i].name) == 0)
			return facilities[i].value;
	return -1;
}

int log_open(const char *ident, const char *target, const char *facility)
{
	snprintf(log_ident, sizeof(log_ident), "%s", ident);
	discard = strcmp(target, "none") == 0;
	if (discard || strcmp(target, "stderr") == 0) {
		use_syslog = 0;
		return 0;
	}
	if (strcmp(target, "syslog") == 0) {
		int fac = log_facility(facility);

		if (fac < 0)
			return -1;
		openlog(log_ident, LOG_PID | LOG_NDELAY, fac);
		use_syslog = 1;
		return 0;
	}
	return -1;
}

void log_set_debug(int on)
{
	debug_on = on;
}

/* "YYYY-MM-DDTHH:MM:SS" of sec in local time, remade only when the second
 * changes (localtime_r and strftime cost more than the rest of a line). */
static const char *stamp_of(time_t sec)
{
	static _Thread_local time_t last_sec;
	static _Thread_local int have;
	static _Thread_local char stamp[32];

	if (!have || sec != last_sec) {
		struct tm tm;

		localtime_r(&sec, &tm);
		if (strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
			stamp[0] = '\0';
		last_sec = sec;
		have = 1;
	}
	return stamp;
}

static size_t put(char *dst, size_t at, size_t cap, const char *s)
{
	size_t n = strlen(s);

	if (n > cap - at)
		n = cap - at;
	memcpy(dst + at, s, n);
	return at + n;
}

/* One line to the sink: text is the message without prefix or newline. */
static void emit(enum log_level lvl, const char *text)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	static const char *const tag[] = { "error: ", "warning: ", "", "debug: " };
	/* "STAMP.mmm IDENT: TAG" + text (at most 4095 bytes) + "\n" */
	char out[4096 + 128];
	struct timespec ts;
	size_t n, cap = sizeof(out) - 1;
	long ms;
	int fd;

	if (use_syslog) {
		syslog(prio[lvl], "%s%s", tag[lvl], text);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	ms = ts.tv_nsec / 1000000;
	n = put(out, 0, cap, stamp_of(ts.tv_sec));
	out[n++] = '.';
	out[n++] = (char)('0' + ms / 100);
	out[n++] = (char)('0' + ms / 10 % 10);
	out[n++] = (char)('0' + ms % 10);
	out[n++] = ' ';
	n = put(out, n, cap, log_ident);
	n = put(out, n, cap, ": ");
	n = put(out, n, cap, tag[lvl]);
	n = put(out, n, cap, text);
	out[n++] = '\n';
	/* One write per line (as stdio's unbuffered stderr did), under the
	 * lock so that lines never interleave, even on a pipe. */
	fd = fileno(stderr);
	pthread_mutex_lock(&log_lock);
	for (size_t off = 0; off < n && fd >= 0;) {
		ssize_t w = write(fd, out + off, n - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	pthread_mutex_unlock(&log_lock);
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	char line[4096];
	va_list ap;

	if (discard || (lvl == LOG_LVL_DEBUG && !debug_on))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	emit(lvl, line);
}

void log_str(enum log_level lvl, const char *text)
{
	char line[4096];

	if (discard || (lvl == LOG_LVL_DEBUG && !debug_on))
		return;
	/* at most 4095 bytes, as log_msg() keeps of a longer message */
	if (strnlen(text, sizeof(line)) >= sizeof(line)) {
		memcpy(line, text, sizeof(line) - 1);
		line[sizeof(line) - 1] = '\0';
		text = line;
	}
	emit(lvl, text);
}
