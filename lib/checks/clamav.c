/* lib/checks/clamav.c - virus scan of the whole message with libclamav
 *
 * At end of DATA the message (lib/message.c) goes to the scanner helper
 * (lib/av.c) and the answer becomes:
 *   virus          554 5.7.1 naming the signature (clamav.virus), and
 *                  X-Virus-Status: Infected (NAME) in monitor mode
 *   clean          X-Virus-Status: Clean
 *   not scanned    (no database, helper crash, timeout) CHECK_RETRY: with
 *                  clamav.on_error = defer (the default) 451 4.3.0, with
 *                  skip the message passes with X-Virus-Status: NotScanned
 *                  (REASON)
 *   over-size      (content.max_size) X-Virus-Status: NotScanned (size);
 *                  content.oversize decides whether it passes
 *   whitelisted    scanned like any other mail (a content-safety check:
 *                  check.h), unless clamav.skip_whitelisted = yes: then
 *                  X-Virus-Status: NotScanned (whitelisted)
 * An unscanned message is never labelled Clean.  X-Virus-Status headers
 * that arrive with the message are removed, so that only ours is seen.
 * Not in the default `checks`: a machine without a ClamAV database must
 * not defer all its mail; add clamav to `checks` to enable it.
 */
#include "av.h"
#include "check.h"
#include "engine.h"
#include "log.h"
#include "message.h"
#include "metrics.h"
#include "util.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>

#define STATUS_HEADER "X-Virus-Status"

struct clamav_conf {
	char *database;
	char *tmpdir;
	long max_scansize;
	long max_filesize;
	long max_recursion;
	long max_files;
	long max_scantime;
	long reload_interval;
	long timeout;
	long max_scans;
	enum mode virus;
};

/* The limits' defaults are libclamav's own (a unit test compares them with
 * a fresh engine's). */
#define F(x) offsetof(struct clamav_conf, x)
static const struct conf_param clamav_params[] = {
	{ "clamav.database", "/var/lib/clamav", CONF_STR, F(database), 0, 0,
	  "directory of the ClamAV signature database (as kept by freshclam)" },
	{ "clamav.tmpdir", "", CONF_STR, F(tmpdir), 0, 0,
	  "directory for libclamav's temporary files; empty: a private folder on the tmpfs "
	  "/dev/shm, else $TMPDIR or /tmp" },
	{ "clamav.max_scansize", "419430400", CONF_INT, F(max_scansize), 0, 4294967295.0,
	  "bytes scanned per message, archives unpacked included (0: no limit)" },
	{ "clamav.max_filesize", "104857600", CONF_INT, F(max_filesize), 0, 4294967295.0,
	  "largest file (attachment, archive member) scanned, in bytes (0: no limit)" },
	{ "clamav.max_recursion", "17", CONF_INT, F(max_recursion), 1, 100,
	  "nesting depth of archives and MIME parts scanned" },
	{ "clamav.max_files", "10000", CONF_INT, F(max_files), 0, 1000000,
	  "files unpacked from one message (0: no limit)" },
	{ "clamav.max_scantime", "120000", CONF_INT, F(max_scantime), 0, 3600000,
	  "libclamav's own time limit for one message, in ms (0: no limit)" },
	{ "clamav.timeout", "150s", CONF_TIME, F(timeout), 1, 3600,
	  "longest wait for one scan; past it the scanner helper is killed and restarted" },
	{ "clamav.max_scans", "10", CONF_INT, F(max_scans), 1, 1000,
	  "messages scanned at the same time; more wait in line for a free scan thread "
	  "(clamd's MaxThreads)" },
	{ "clamav.reload_interval", "60s", CONF_TIME, F(reload_interval), 1, 86400,
	  "how often the database directory is checked for changes" },
	{ "clamav.virus", "reject", CONF_MODE, F(virus), 0, 0,
	  "a virus was found: 554 5.7.1 naming it" },
	CONF_END
};

/* The scanner settings of one snapshot. */
static void settings(const struct conf *c, const struct clamav_conf *cc, struct av_settings *s)
{
	memset(s, 0, sizeof(*s));
	bcopy_str(s->database, sizeof(s->database), cc->database);
	bcopy_str(s->tmpdir, sizeof(s->tmpdir), cc->tmpdir);
	s->max_scansize = cc->max_scansize;
	s->max_filesize = cc->max_filesize;
	s->max_recursion = cc->max_recursion;
	s->max_files = cc->max_files;
	s->max_scantime = cc->max_scantime;
	s->reload_interval = cc->reload_interval;
	s->timeout_ms = cc->timeout * 1000;
	s->max_scans = cc->max_scans;
	bcopy_str(s->log_target, sizeof(s->log_target), c->core.log_target);
	bcopy_str(s->log_facility, sizeof(s->log_facility), c->core.log_facility);
	s->debug = c->core.debug;
}

/* A signature name reduced to the characters signature names use, so that
 * it is safe in a header and a reply. */
static void clean_name(char *dst, size_t dstsize, const char *name)
{
	size_t k = 0;

	for (const char *p = name; *p && k + 1 < dstsize && k < 100; p++) {
		char ch = *p;

		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= '0' && ch <= '9') || strchr("._-:/+", ch))
			dst[k++] = ch;
		else
			dst[k++] = '_';
	}
	dst[k] = '\0';
	if (k == 0)
		bcopy_str(dst, dstsize, "unknown");
}

static int clamav_header(const struct check_ctx *cx, struct verdicts *out)
{
	if (strcasecmp(cx->hdr_name, STATUS_HEADER) == 0)
		verdict_delete_header(out, cx->hdr_name, cx->hdr_index);
	return CHECK_DONE;
}

static int clamav_eom(const struct check_ctx *cx, struct verdicts *out)
{
	const struct clamav_conf *cc = cx->mconf;
	struct av_settings s;
	struct av_result res;
	char name[128];
	long long t0;
	int fd;

	if (cx->skip_whitelisted) {
		verdict_header(out, STATUS_HEADER, 0, "NotScanned (whitelisted)");
		return CHECK_DONE;
	}
	if (cx->msg == NULL) {
		if (cx->txn->msg && cx->txn->msg->oversize)
			verdict_header(out, STATUS_HEADER, 0, "NotScanned (size)");
		return CHECK_DONE;
	}
	fd = message_fd(cx->msg);
	if (fd < 0) {
		verdict_header(out, STATUS_HEADER, 0, "NotScanned (error)");
		return check_retry_reply(out, "451", "4.3.0", "Virus scan failed: %s",
		                         cx->msg->error);
	}
	settings(cx->conf, cc, &s);
	t0 = metrics_now_us();
	av_scan(&s, fd, &res);
	metrics_av_scan(res.status == AV_CLEAN   ? METRICS_AV_CLEAN
	                : res.status == AV_VIRUS ? METRICS_AV_INFECTED
	                                         : METRICS_AV_ERROR,
	                metrics_now_us() - t0);
	switch (res.status) {
	case AV_CLEAN: verdict_header(out, STATUS_HEADER, 0, "Clean"); return CHECK_DONE;
	case AV_VIRUS:
		clean_name(name, sizeof(name), res.name);
		/* the summary line has the symbol only: name the virus here */
		log_msg(LOG_LVL_INFO, "ref=%s clamav: virus %s", cx->txn->ref, name);
		verdict_header(out, STATUS_HEADER, 0, "Infected (%s)", name);
		verdict_reject(out, cc->virus, "clamav.virus", "554", "5.7.1",
		               "Message contains a virus: %s", name);
		return CHECK_DONE;
	case AV_ERROR: break;
	}
	verdict_header(out, STATUS_HEADER, 0, "NotScanned (%s)", res.word);
	return check_retry_reply(out, "451", "4.3.0", "Virus scan failed (%s): %s", res.word,
	                         res.reason);
}

const char *clamav_database(const struct conf *c)
{
	int idx = check_find("clamav");

	for (int i = 0; idx >= 0 && i < c->norder; i++)
		if (c->order[i] == idx && c->mod[idx].mode != MODE_OFF)
			return ((const struct clamav_conf *)c->mod[idx].data)->database;
	return NULL;
}

int clamav_start(const struct conf *c, char *err, size_t errsize)
{
	int idx = check_find("clamav");
	struct av_settings s;

	for (int i = 0; idx >= 0 && i < c->norder; i++)
		if (c->order[i] == idx && c->mod[idx].mode != MODE_OFF) {
			settings(c, c->mod[idx].data, &s);
			return av_start(&s, err, errsize);
		}
	return 0;
}

const struct check_module check_clamav = {
	.name = "clamav",
	.doc = "virus scan with libclamav in a separate helper process",
	.params = clamav_params,
	.conf_size = sizeof(struct clamav_conf),
	.default_mode = "reject",
	.default_on_error = "defer",
	.needs_message = 1,
	.content_safety = 1,
	.hook = {
		[STAGE_HEADER] = clamav_header,
		[STAGE_EOM] = clamav_eom,
	},
};
