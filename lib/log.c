/* lib/log.c - logging to syslog or stderr; see log.h. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>

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

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	static const char *const tag[] = { "error: ", "warning: ", "", "debug: " };
	char line[4096];
	va_list ap;

	if (discard || (lvl == LOG_LVL_DEBUG && !debug_on))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (use_syslog) {
		syslog(prio[lvl], "%s%s", tag[lvl], line);
		return;
	}
	{
		struct timespec ts;
		struct tm tm;
		char stamp[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
		pthread_mutex_lock(&log_lock);
		fprintf(stderr, "%s.%03ld %s: %s%s\n", stamp, ts.tv_nsec / 1000000, log_ident,
		        tag[lvl], line);
		fflush(stderr);
		pthread_mutex_unlock(&log_lock);
	}
}
