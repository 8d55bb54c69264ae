/* lib/av.c - libclamav in an isolated helper process; see av.h
 *
 * Two halves in one file, one per process:
 *  - the client (milter side): av_scan(), av_start(), av_stop().  One
 *    helper at a time, its pid and control socket behind one mutex; a scan
 *    holds the mutex only to send its request.  A scan that finds the
 *    helper dead before its request was sent starts a new helper and sends
 *    again (the message never reached a scanner); a scan whose helper died
 *    or did not answer in time kills the helper and fails (the caller turns
 *    that into a temporary failure): libclamav may have crashed on this
 *    very message, and scanning it again could crash the next helper too.
 *  - the helper (av_helper_main): one engine behind a reference count, a
 *    reload thread, a pool of scan threads (grown when a request finds
 *    none idle, never shrunk), the message scanned from memory (the memfd
 *    mapped), libclamav's temporary files on tmpfs by default.  It exits when the milter
 *    closes the control socket (also when the milter dies), after its
 *    scans have ended.
 *
 * Wire format, same binary on both ends: one record struct av_req with two
 * descriptors (the answer socket, the file), one record struct av_resp.
 */
#include "av.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#include <clamav.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/magic.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define AV_MAGIC    0x50634156u /* "PcAV" */
#define HELPER_FD   3           /* the control socket in the helper */
#define RETIRED_MAX 16

struct av_req {
	uint32_t magic;
	uint32_t timeout_ms; /* how long the helper may wait for a first database */
};

struct av_resp {
	uint32_t magic;
	int32_t status; /* enum av_status */
	char name[128];
	char reason[200];
	char word[24];
};

/* --- client ----------------------------------------------------------------- */

static pthread_mutex_t av_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t cur_pid;         /* 0: no helper */
static int cur_ctl = -1;      /* our end of its control socket */
static unsigned long cur_gen; /* counts helpers, so a late failure kills only its own */
static struct av_settings cur_set;
static pid_t retired[RETIRED_MAX]; /* replaced helpers finishing their scans */
static int nretired;

static void result_error(struct av_result *res, const char *word, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void result_error(struct av_result *res, const char *word, const char *fmt, ...)
{
	va_list ap;

	res->status = AV_ERROR;
	bcopy_str(res->word, sizeof(res->word), word);
	va_start(ap, fmt);
	vsnprintf(res->reason, sizeof(res->reason), fmt, ap);
	va_end(ap);
}

/* Whether two settings need different helpers (the timeout is ours). */
static int same_helper(const struct av_settings *a, const struct av_settings *b)
{
	struct av_settings x = *a, y = *b;

	x.timeout_ms = y.timeout_ms = 0;
	return memcmp(&x, &y, sizeof(x)) == 0;
}

static void helper_tmp_clean(pid_t pid);

/* A helper has ended (reaped): log how, remove what it left. */
static void log_exit(pid_t pid, int status)
{
	helper_tmp_clean(pid);
	if (WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0))
		metrics_av_helper(1);
	if (WIFSIGNALED(status))
		log_msg(LOG_LVL_WARN, "av: scanner helper (pid %ld) ended by signal %d", (long)pid,
		        WTERMSIG(status));
	else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
		log_msg(LOG_LVL_WARN, "av: scanner helper (pid %ld) exited with status %d",
		        (long)pid, WEXITSTATUS(status));
}

/* waitpid() for pid: 1 with *status when it was reaped, else 0. */
static int reap(pid_t pid, int flags, int *status)
{
	int st = 0;
	pid_t r = waitpid(pid, &st, flags);

	*status = st;
	return r == pid;
}

/* Reap replaced helpers that have finished.  Lock held. */
static void reap_retired(void)
{
	int k = 0, status;

	for (int i = 0; i < nretired; i++) {
		pid_t r = waitpid(retired[i], &status, WNOHANG);

		if (r == retired[i])
			log_exit(r, status);
		else if (r == 0)
			retired[k++] = retired[i];
	}
	nretired = k;
}

/* Kill the current helper and forget it.  Lock held. */
static void kill_helper(void)
{
	pid_t pid = cur_pid;
	int status;

	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	if (reap(pid, 0, &status))
		log_exit(pid, status);
	close(cur_ctl);
	cur_ctl = -1;
	cur_pid = 0;
}

/* The current helper exited on its own (crash between scans)?  Lock held. */
static void check_alive(void)
{
	pid_t pid = cur_pid;
	int status;

	if (pid > 0 && reap(pid, WNOHANG, &status)) {
		log_exit(pid, status);
		close(cur_ctl);
		cur_ctl = -1;
		cur_pid = 0;
	}
}

/* Let the current helper finish its scans and exit.  Lock held. */
static void retire_helper(void)
{
	if (cur_pid <= 0)
		return;
	close(cur_ctl); /* the helper sees end-of-file, finishes, exits */
	cur_ctl = -1;
	if (nretired < RETIRED_MAX) {
		retired[nretired++] = cur_pid;
	} else {
		int status;

		kill(cur_pid, SIGKILL);
		waitpid(cur_pid, &status, 0);
		helper_tmp_clean(cur_pid);
	}
	cur_pid = 0;
}

/* Start a helper for settings s.  Lock held.  Returns 0 or -1 + err. */
static int spawn_helper(const struct av_settings *s, pid_t *pidp, int *ctlp, char *err,
                        size_t errsize)
{
	char a_size[32], a_file[32], a_rec[32], a_files[32], a_time[32], a_reload[32], a_debug[8];
	char *argv[16];
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, deflt;
	int sv[2], child, rc;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(err, errsize, "socketpair: %s", strerror(errno));
		return -1;
	}
	/* Above HELPER_FD, so that dup2 to HELPER_FD makes a new descriptor
	 * (without close-on-exec) in the child. */
	child = fcntl(sv[1], F_DUPFD_CLOEXEC, HELPER_FD + 1);
	close(sv[1]);
	if (child < 0) {
		snprintf(err, errsize, "fcntl: %s", strerror(errno));
		close(sv[0]);
		return -1;
	}
	snprintf(a_size, sizeof(a_size), "%ld", s->max_scansize);
	snprintf(a_file, sizeof(a_file), "%ld", s->max_filesize);
	snprintf(a_rec, sizeof(a_rec), "%ld", s->max_recursion);
	snprintf(a_files, sizeof(a_files), "%ld", s->max_files);
	snprintf(a_time, sizeof(a_time), "%ld", s->max_scantime);
	snprintf(a_reload, sizeof(a_reload), "%ld", s->reload_interval);
	snprintf(a_debug, sizeof(a_debug), "%d", s->debug);
	argv[0] = (char *)"portcullis";
	argv[1] = (char *)"--av-helper";
	argv[2] = (char *)s->database;
	argv[3] = (char *)s->tmpdir;
	argv[4] = a_size;
	argv[5] = a_file;
	argv[6] = a_rec;
	argv[7] = a_files;
	argv[8] = a_time;
	argv[9] = a_reload;
	argv[10] = (char *)s->log_target;
	argv[11] = (char *)s->log_facility;
	argv[12] = a_debug;
	argv[13] = NULL;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, child, HELPER_FD);
	posix_spawnattr_init(&attr);
	/* The milter's threads block SIGTERM and friends; the helper must
	 * not inherit that, nor ignored signals. */
	sigemptyset(&none);
	sigfillset(&deflt);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &deflt);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	/* Our own executable: the helper is a fresh process, not a fork of
	 * this threaded one. */
	rc = posix_spawn(&pid, "/proc/self/exe", &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(child);
	if (rc != 0) {
		snprintf(err, errsize, "cannot start the scanner helper /proc/self/exe: %s",
		         strerror(rc));
		close(sv[0]);
		return -1;
	}
	{
		struct timeval tv = { 5, 0 };

		setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	*pidp = pid;
	*ctlp = sv[0];
	metrics_av_helper(0);
	log_msg(LOG_LVL_INFO, "av: scanner helper started (pid %ld) for database %s", (long)pid,
	        s->database);
	return 0;
}

/* The helper that replaces the current one after a settings change: it
 * loads its database while the current one goes on scanning, and takes
 * over once it says it has an engine ("R" on its control socket). */
static pid_t next_pid;
static int next_ctl = -1;
static struct av_settings next_set;

static void next_drop(int kill_it)
{
	int status;

	if (next_pid <= 0)
		return;
	close(next_ctl);
	next_ctl = -1;
	if (kill_it) {
		kill(next_pid, SIGKILL);
		if (reap(next_pid, 0, &status))
			log_exit(next_pid, status);
	} else if (nretired < RETIRED_MAX) {
		retired[nretired++] = next_pid;
	}
	next_pid = 0;
}

/* 1 when the next helper has loaded its database; drops a dead one. */
static int next_ready(void)
{
	char b;
	ssize_t n = recv(next_ctl, &b, 1, MSG_DONTWAIT);

	if (n == 1)
		return b == 'R';
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
		log_msg(LOG_LVL_WARN,
		        "av: the new scanner helper (pid %ld) ended before it was ready",
		        (long)next_pid);
		next_drop(1);
	}
	return 0;
}

static void make_current(pid_t pid, int ctl, const struct av_settings *s)
{
	cur_pid = pid;
	cur_ctl = ctl;
	cur_gen++;
	cur_set = *s;
}

/* Make sure a helper for s runs, or the one for the previous settings
 * while the one for s loads its database (no gap in scanning after a
 * configuration reload).  Lock held. */
static int ensure_helper(const struct av_settings *s, char *err, size_t errsize)
{
	pid_t pid;
	int ctl;

	reap_retired();
	check_alive();
	if (cur_pid > 0 && same_helper(&cur_set, s)) {
		next_drop(1); /* settings went back before it was ready */
		return 0;
	}
	if (next_pid > 0 && !same_helper(&next_set, s))
		next_drop(1);
	if (next_pid > 0 && (cur_pid <= 0 || next_ready())) {
		if (cur_pid > 0)
			log_msg(LOG_LVL_INFO,
			        "av: scanner helper %ld has loaded its database, replacing %ld",
			        (long)next_pid, (long)cur_pid);
		retire_helper();
		make_current(next_pid, next_ctl, &next_set);
		next_pid = 0;
		next_ctl = -1;
		return 0;
	}
	if (next_pid > 0)
		return 0; /* the current one scans until the next is ready */
	if (spawn_helper(s, &pid, &ctl, err, errsize) < 0)
		return cur_pid > 0 ? 0 : -1;
	if (cur_pid > 0) {
		next_pid = pid;
		next_ctl = ctl;
		next_set = *s;
	} else {
		make_current(pid, ctl, s);
	}
	return 0;
}

int av_start(const struct av_settings *s, char *err, size_t errsize)
{
	int rc;

	pthread_mutex_lock(&av_lock);
	rc = ensure_helper(s, err, errsize);
	pthread_mutex_unlock(&av_lock);
	return rc;
}

pid_t av_helper_pid(void)
{
	pid_t p;

	pthread_mutex_lock(&av_lock);
	p = cur_pid;
	pthread_mutex_unlock(&av_lock);
	return p;
}

void av_stop(void)
{
	pthread_mutex_lock(&av_lock);
	retire_helper();
	next_drop(0);
	for (int i = 0; i < 100 && nretired > 0; i++) {
		reap_retired();
		if (nretired > 0)
			usleep(50000);
	}
	for (int i = 0; i < nretired; i++) {
		kill(retired[i], SIGKILL);
		waitpid(retired[i], NULL, 0);
		helper_tmp_clean(retired[i]);
	}
	nretired = 0;
	pthread_mutex_unlock(&av_lock);
}

/* Send one request with the answer socket and the file.  Lock held. */
static int send_req(int ctl, int ans, int fd, uint32_t timeout_ms)
{
	struct av_req req = { AV_MAGIC, timeout_ms };
	struct iovec iov = { &req, sizeof(req) };
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr mh = { 0 };
	struct cmsghdr *cm;
	int fds[2] = { ans, fd };

	memset(&u, 0, sizeof(u));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = u.buf;
	mh.msg_controllen = sizeof(u.buf);
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(cm), fds, sizeof(fds));
	return sendmsg(ctl, &mh, MSG_NOSIGNAL) == (ssize_t)sizeof(req) ? 0 : -1;
}

enum av_status av_scan(const struct av_settings *s, int fd, struct av_result *res)
{
	struct av_resp resp;
	long long deadline = now_ms() + s->timeout_ms;
	unsigned long gen = 0;
	char err[256];
	int sp[2], sent = 0;
	ssize_t n;

	memset(res, 0, sizeof(*res));
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
		result_error(res, "error", "socketpair: %s", strerror(errno));
		return res->status;
	}
	pthread_mutex_lock(&av_lock);
	/* A helper that died between scans never saw this message: one more
	 * try with a new helper is safe. */
	for (int attempt = 0; attempt < 2 && !sent; attempt++) {
		if (ensure_helper(s, err, sizeof(err)) < 0)
			break;
		if (send_req(cur_ctl, sp[1], fd, (uint32_t)s->timeout_ms) == 0) {
			sent = 1;
			gen = cur_gen;
		} else {
			bcopy_str(err, sizeof(err), strerror(errno));
			log_msg(LOG_LVL_WARN, "av: scanner helper (pid %ld) not reachable: %s",
			        (long)cur_pid, err);
			kill_helper();
		}
	}
	pthread_mutex_unlock(&av_lock);
	close(sp[1]);
	if (!sent) {
		close(sp[0]);
		result_error(res, "error", "%s", err);
		return res->status;
	}
	for (;;) {
		struct pollfd pfd = { sp[0], POLLIN, 0 };
		long long left = deadline - now_ms();
		int pr = left > 0 ? poll(&pfd, 1, (int)left) : 0;

		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0) {
			close(sp[0]);
			pthread_mutex_lock(&av_lock);
			if (cur_gen == gen && cur_pid > 0) {
				log_msg(LOG_LVL_WARN,
				        "av: no answer from the scanner helper (pid %ld) within "
				        "%ld ms: killing it",
				        (long)cur_pid, s->timeout_ms);
				kill_helper();
			}
			pthread_mutex_unlock(&av_lock);
			result_error(res, "timeout", "no answer within %ld ms", s->timeout_ms);
			return res->status;
		}
		break;
	}
	n = recv(sp[0], &resp, sizeof(resp), 0);
	close(sp[0]);
	if (n != (ssize_t)sizeof(resp) || resp.magic != AV_MAGIC) {
		pthread_mutex_lock(&av_lock);
		if (cur_gen == gen && cur_pid > 0) {
			log_msg(LOG_LVL_WARN, "av: the scanner helper (pid %ld) died during a scan",
			        (long)cur_pid);
			kill_helper();
		}
		pthread_mutex_unlock(&av_lock);
		result_error(res, "error", "the scanner helper died during the scan");
		return res->status;
	}
	res->status = resp.status == AV_VIRUS   ? AV_VIRUS
	              : resp.status == AV_CLEAN ? AV_CLEAN
	                                        : AV_ERROR;
	resp.name[sizeof(resp.name) - 1] = '\0';
	resp.reason[sizeof(resp.reason) - 1] = '\0';
	resp.word[sizeof(resp.word) - 1] = '\0';
	bcopy_str(res->name, sizeof(res->name), resp.name);
	bcopy_str(res->reason, sizeof(res->reason), resp.reason);
	bcopy_str(res->word, sizeof(res->word), resp.word[0] ? resp.word : "error");
	return res->status;
}

/* --- helper ----------------------------------------------------------------- */

struct engine_ref {
	struct cl_engine *e;
	int refs; /* under h_lock */
	unsigned long long sig;
	unsigned sigs; /* signatures loaded */
};

static pthread_mutex_t h_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t h_cond = PTHREAD_COND_INITIALIZER;
static struct engine_ref *h_engine; /* the current engine, one reference */
static int h_tried;                 /* the first load has been attempted */
static char h_load_error[512];      /* why there is no engine */
static int h_stop;
static int h_active;  /* scans queued or running */
static int h_threads; /* pool threads alive */
static struct helper_conf {
	const char *database, *tmpdir;
	long long max_scansize, max_filesize;
	long max_recursion, max_files, max_scantime, reload_interval;
} hc;

static void engine_put(struct engine_ref *r)
{
	int last;

	if (r == NULL)
		return;
	pthread_mutex_lock(&h_lock);
	last = --r->refs == 0;
	pthread_mutex_unlock(&h_lock);
	if (last) {
		cl_engine_free(r->e);
		free(r);
		/* a retired engine's memory back to the system now, not at
		 * the next growth of the heap */
		malloc_trim(0);
	}
}

/* A summary of the database directory: names, sizes, mtimes, inodes.
 * Sets *nfiles. */
static unsigned long long dir_signature(const char *dir, int *nfiles)
{
	unsigned long long h = 1469598103934665603ull;
	DIR *d = opendir(dir);
	struct dirent *de;

	*nfiles = -1;
	if (d == NULL)
		return 0;
	*nfiles = 0;
	while ((de = readdir(d)) != NULL) {
		char path[2048];
		struct stat st;
		unsigned long long v[4];

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		(*nfiles)++;
		/* Order-independent: readdir order may change. */
		unsigned long long e = 1469598103934665603ull;
		for (const char *p = de->d_name; *p; p++)
			e = (e ^ (unsigned char)*p) * 1099511628211ull;
		v[0] = (unsigned long long)st.st_size;
		v[1] = (unsigned long long)st.st_mtim.tv_sec;
		v[2] = (unsigned long long)st.st_mtim.tv_nsec;
		v[3] = (unsigned long long)st.st_ino;
		for (int i = 0; i < 4; i++)
			e = (e ^ v[i]) * 1099511628211ull;
		h += e;
	}
	closedir(d);
	return h;
}

/* libclamav writes every decoded MIME part and unpacked archive member to
 * a file in its temporary directory (two folders and about three files
 * for a plain 4 KiB message).  On a disk file system that is much of the
 * cost of a small message; so when clamav.tmpdir is empty the helper uses
 * a private folder of its own on the tmpfs /dev/shm (also there under the
 * systemd unit's PrivateDevices=yes), and $TMPDIR or /tmp only when that
 * is not available.  The folder is named after the helper's pid, so that
 * the milter can remove it when the helper was killed (helper_tmp_clean). */
#define SHM_DIR    "/dev/shm"
#define SHM_PREFIX "portcullis-av."

static char h_tmpdir[128]; /* the private folder made, "" if none */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* Remove folder path and what is in it (never following links). */
static void rm_tree(const char *path)
{
	nftw(path, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* The private temporary folder of helper pid, removed when it is left
 * over (the helper was killed or crashed).  Only a folder of our own user
 * (made 0700 by the helper) is removed: /dev/shm is writable by all, and
 * a tree that another user can change must not be walked by us. */
static void helper_tmp_clean(pid_t pid)
{
	char path[128];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s%ld", SHM_DIR, SHM_PREFIX, (long)pid);
	if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid())
		rm_tree(path);
}

/* Make the helper's private folder on /dev/shm when it is a tmpfs. */
static void helper_tmp_make(void)
{
	struct statfs sf;
	char path[128];

	if (statfs(SHM_DIR, &sf) < 0 || sf.f_type != TMPFS_MAGIC)
		return;
	snprintf(path, sizeof(path), "%s/%s%ld", SHM_DIR, SHM_PREFIX, (long)getpid());
	/* A dead helper's with our pid goes; anything else there (not ours,
	 * not a folder) stays, and then mkdir fails: libclamav's default. */
	helper_tmp_clean(getpid());
	if (mkdir(path, 0700) < 0) {
		log_msg(LOG_LVL_DEBUG, "av: %s: %s; temporary files in the default folder", path,
		        strerror(errno));
		return;
	}
	bcopy_str(h_tmpdir, sizeof(h_tmpdir), path);
}

/* Compile a new engine from the database directory.  NULL + err. */
/* libclamav says why a database does not load only through its message
 * callback ("Problem parsing database at line 1", then "Can't load
 * DIR/x.ndb: Malformed database"); cl_load() itself returns just
 * CL_EMALFDB.  While the reload thread loads, its error messages are
 * collected here (thread-local: scan threads print theirs as before). */
static __thread char *clmsg_buf;
static __thread size_t clmsg_size;
static __thread int clmsg_n; /* the first two say what and where */

static void clamav_msg(enum cl_msg severity, const char *fullmsg, const char *msg, void *ctx)
{
	(void)ctx;
	if (clmsg_buf && severity == CL_MSG_ERROR && msg && clmsg_n++ < 2) {
		size_t n = strlen(clmsg_buf);

		if (n > 0 && n + 2 < clmsg_size) {
			memcpy(clmsg_buf + n, "; ", 3);
			n += 2;
		}
		if (n + 1 < clmsg_size)
			bcopy_str(clmsg_buf + n, clmsg_size - n, msg);
		for (char *p = clmsg_buf + n; *p; p++) /* one line, printable */
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				*p = ' ';
		for (n = strlen(clmsg_buf); n > 0 && clmsg_buf[n - 1] == ' '; n--)
			clmsg_buf[n - 1] = '\0';
	}
	/* libclamav's default: errors and warnings on stderr */
	if (severity == CL_MSG_ERROR || severity == CL_MSG_WARN)
		fputs(fullmsg, stderr);
}

/* Whether the database directory can hold phishing signatures: .pdb,
 * .gdb or .wdb files, or the containers (.cvd, .cld, .cud) that carry
 * them in the official database.  Without any, the engine is loaded
 * without CL_DB_PHISHING_URLS: libclamav then no longer extracts the
 * links of every text part of a message (an HTML normalisation of the
 * text, 15 % of a plain 4 KB message's scan, 17 % at 100 KB in callgrind
 * instructions) only for its phishing check to find no list to compare
 * them with (phishingCheck() calls a link clean when no domain list
 * matches, and the only other checks, SSL mismatch and cloaking, are
 * heuristics that are off, as in clamd's defaults).  .pdb/.gdb/.wdb files
 * load only with that option, so the signatures loaded are the same. */
static int db_may_phish(const char *dir)
{
	static const char *const ext[] = { ".pdb", ".gdb", ".wdb", ".cvd", ".cld", ".cud" };
	DIR *d = opendir(dir);
	struct dirent *de;
	int found = 0;

	if (d == NULL)
		return 1;
	while (!found && (de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);

		for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]) && !found; i++)
			found = n >= 4 && strcasecmp(de->d_name + n - 4, ext[i]) == 0;
	}
	closedir(d);
	return found;
}

/* Compile a new engine from the database directory.  NULL + err: "no
 * signatures" only for a database that loaded without any; a file that
 * does not parse is a "malformed database" with libclamav's reason. */
static struct engine_ref *load_engine(unsigned long long sig, char *err, size_t errsize)
{
	struct engine_ref *r;
	struct cl_engine *e = cl_engine_new();
	unsigned int sigs = 0, dbopt = CL_DB_STDOPT;
	cl_error_t rc;
	char why[300] = "";

	if (e == NULL) {
		snprintf(err, errsize, "cl_engine_new failed");
		return NULL;
	}
	cl_engine_set_num(e, CL_ENGINE_MAX_SCANSIZE, hc.max_scansize);
	cl_engine_set_num(e, CL_ENGINE_MAX_FILESIZE, hc.max_filesize);
	cl_engine_set_num(e, CL_ENGINE_MAX_RECURSION, hc.max_recursion);
	cl_engine_set_num(e, CL_ENGINE_MAX_FILES, hc.max_files);
	cl_engine_set_num(e, CL_ENGINE_MAX_SCANTIME, hc.max_scantime);
	if (hc.tmpdir[0] && cl_engine_set_str(e, CL_ENGINE_TMPDIR, hc.tmpdir) != CL_SUCCESS) {
		snprintf(err, errsize, "clamav.tmpdir %s: not usable", hc.tmpdir);
		cl_engine_free(e);
		return NULL;
	}
	if (!hc.tmpdir[0] && h_tmpdir[0] &&
	    cl_engine_set_str(e, CL_ENGINE_TMPDIR, h_tmpdir) != CL_SUCCESS) {
		snprintf(err, errsize, "temporary folder %s: not usable", h_tmpdir);
		cl_engine_free(e);
		return NULL;
	}
	clmsg_buf = why;
	clmsg_size = sizeof(why);
	clmsg_n = 0;
	if (!db_may_phish(hc.database)) {
		dbopt &= ~(unsigned)CL_DB_PHISHING_URLS;
		log_msg(LOG_LVL_DEBUG, "av: no phishing signatures in %s: links not extracted",
		        hc.database);
	}
	rc = cl_load(hc.database, e, &sigs, dbopt);
	if (rc == CL_SUCCESS && sigs == 0) {
		clmsg_buf = NULL;
		snprintf(err, errsize, "database %s: no signatures", hc.database);
		cl_engine_free(e);
		return NULL;
	}
	if (rc == CL_SUCCESS)
		rc = cl_engine_compile(e);
	clmsg_buf = NULL;
	if (rc != CL_SUCCESS) {
		snprintf(err, errsize, "database %s: %s%s%s", hc.database,
		         rc == CL_EMALFDB ? "malformed database" : cl_strerror(rc),
		         why[0] ? ": " : "", why);
		cl_engine_free(e);
		return NULL;
	}
	r = xcalloc(1, sizeof(*r));
	r->e = e;
	r->refs = 1;
	r->sig = sig;
	r->sigs = sigs;
	return r;
}

/* Load the database when the directory changed since the last attempt. */
static void maybe_reload(unsigned long long *last_sig, int *have_last)
{
	int nfiles;
	unsigned long long sig = dir_signature(hc.database, &nfiles);
	struct engine_ref *r, *old;
	char err[512];
	long long t0;

	if (*have_last && sig == *last_sig)
		return;
	*last_sig = sig;
	*have_last = 1;
	if (nfiles < 0) {
		snprintf(err, sizeof(err), "database %s: %s", hc.database, strerror(errno));
		r = NULL;
	} else if (nfiles == 0) {
		snprintf(err, sizeof(err), "database %s: no signature files", hc.database);
		r = NULL;
	} else {
		t0 = now_ms();
		r = load_engine(sig, err, sizeof(err));
		if (r)
			log_msg(LOG_LVL_INFO, "av: loaded %u signatures from %s in %lld ms",
			        r->sigs, hc.database, now_ms() - t0);
	}
	pthread_mutex_lock(&h_lock);
	old = NULL;
	if (r) {
		old = h_engine;
		h_engine = r;
		h_load_error[0] = '\0';
		/* the milter hands over to a new helper once it has an engine */
		if (old == NULL && send(HELPER_FD, "R", 1, MSG_NOSIGNAL | MSG_DONTWAIT) != 1)
			log_msg(LOG_LVL_DEBUG, "av: could not say ready: %s", strerror(errno));
	} else {
		bcopy_str(h_load_error, sizeof(h_load_error), err);
	}
	h_tried = 1;
	pthread_cond_broadcast(&h_cond);
	pthread_mutex_unlock(&h_lock);
	if (r == NULL)
		log_msg(LOG_LVL_ERR, "av: %s; %s", err,
		        h_engine ? "keeping the loaded signatures" : "no virus scanning");
	engine_put(old);
	/* what loading and compiling freed (the database's text, the
	 * compiler's tables) back to the system */
	malloc_trim(0);
}

static void *reload_thread(void *arg)
{
	unsigned long long last = 0;
	int have_last = 0;

	(void)arg;
	for (;;) {
		struct timespec ts;

		maybe_reload(&last, &have_last);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += hc.reload_interval;
		pthread_mutex_lock(&h_lock);
		while (!h_stop) {
			if (pthread_cond_timedwait(&h_cond, &h_lock, &ts) == ETIMEDOUT)
				break;
		}
		if (h_stop) {
			pthread_mutex_unlock(&h_lock);
			return NULL;
		}
		pthread_mutex_unlock(&h_lock);
	}
}

struct job {
	int ans, fd;
	uint32_t timeout_ms;
};

static void answer(int ans, const struct av_resp *r)
{
	if (send(ans, r, sizeof(*r), MSG_NOSIGNAL) != (ssize_t)sizeof(*r))
		log_msg(LOG_LVL_WARN, "av: could not answer a scan: %s", strerror(errno));
}

/* Scan the message in file fd.  The message is a memfd: mapped, it is
 * scanned in place from memory (cl_fmap_open_memory), which spares
 * libclamav's own map of the descriptor and the pread() copies into it;
 * a file that cannot be mapped (empty, or not a memfd) is scanned through
 * its descriptor. */
static cl_error_t scan_fd(int fd, const char **virname, unsigned long *scanned,
                          const struct cl_engine *e, struct cl_scan_options *opt)
{
	struct stat st;
	cl_fmap_t *map;
	void *p;
	cl_error_t rc;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
	    (unsigned long long)st.st_size > SIZE_MAX)
		return cl_scandesc(fd, NULL, virname, scanned, e, opt);
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return cl_scandesc(fd, NULL, virname, scanned, e, opt);
	map = cl_fmap_open_memory(p, (size_t)st.st_size);
	if (map == NULL) {
		munmap(p, (size_t)st.st_size);
		return cl_scandesc(fd, NULL, virname, scanned, e, opt);
	}
	rc = cl_scanmap_callback(map, NULL, virname, scanned, e, opt, NULL);
	cl_fmap_close(map);
	munmap(p, (size_t)st.st_size);
	return rc;
}

/* One scan request: fills the answer *resp (not sent yet). */
static void scan_job(const struct job *j, struct av_resp *resp)
{
	struct av_resp r = { .magic = AV_MAGIC, .status = AV_ERROR };
	struct engine_ref *e = NULL;
	struct cl_scan_options opt = { 0 };
	const char *virname = NULL;
	unsigned long scanned = 0;
	struct timespec ts;
	cl_error_t rc;

	/* The first load may still be running (a fresh helper). */
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += j->timeout_ms / 1000;
	ts.tv_nsec += (long)(j->timeout_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&h_lock);
	while (!h_tried && !h_stop)
		if (pthread_cond_timedwait(&h_cond, &h_lock, &ts) == ETIMEDOUT)
			break;
	if (h_engine) {
		e = h_engine;
		e->refs++;
	} else {
		bcopy_str(r.reason, sizeof(r.reason),
		          h_tried ? h_load_error : "the virus database is still loading");
		bcopy_str(r.word, sizeof(r.word), "no database");
	}
	pthread_mutex_unlock(&h_lock);
	if (e) {
		opt.parse = ~0u;
		opt.general = 0;
		if (lseek(j->fd, 0, SEEK_SET) < 0) {
			snprintf(r.reason, sizeof(r.reason), "lseek: %s", strerror(errno));
			bcopy_str(r.word, sizeof(r.word), "error");
		} else {
			rc = scan_fd(j->fd, &virname, &scanned, e->e, &opt);
			if (rc == CL_VIRUS) {
				r.status = AV_VIRUS;
				bcopy_str(r.name, sizeof(r.name), virname ? virname : "unknown");
			} else if (rc == CL_CLEAN) {
				r.status = AV_CLEAN;
			} else {
				snprintf(r.reason, sizeof(r.reason), "libclamav: %s",
				         cl_strerror(rc));
				bcopy_str(r.word, sizeof(r.word),
				          rc == CL_ETIMEOUT ? "timeout" : "error");
			}
		}
		engine_put(e);
	}
	*resp = r;
}

/* The scan threads: a pool that grows when a request finds no idle thread
 * (as many concurrent scans as before, when each had its own thread) and
 * keeps its threads, so a scan does not pay for a thread's creation,
 * stack and exit.  Jobs wait in a FIFO under h_lock. */
struct jobq {
	struct job *j;
	struct jobq *next;
};
static struct jobq *q_head, *q_tail;
static pthread_cond_t q_cond = PTHREAD_COND_INITIALIZER; /* a job queued, or stop */
static int h_idle;                                       /* pool threads waiting for a job */
static int h_queued;                                     /* jobs in the queue */

static void *pool_thread(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&h_lock);
	h_idle++;
	for (;;) {
		struct jobq *q;
		struct av_resp r;

		while (q_head == NULL && !h_stop)
			pthread_cond_wait(&q_cond, &h_lock);
		if (q_head == NULL)
			break; /* stopping, nothing queued */
		q = q_head;
		h_queued--;
		h_idle--;
		q_head = q->next;
		if (q_head == NULL)
			q_tail = NULL;
		pthread_mutex_unlock(&h_lock);
		scan_job(q->j, &r);
		/* Idle again before the milter has the answer and can send
		 * the next request: else that request would find no idle
		 * thread and start one more. */
		pthread_mutex_lock(&h_lock);
		h_idle++;
		pthread_mutex_unlock(&h_lock);
		answer(q->j->ans, &r);
		close(q->j->ans);
		close(q->j->fd);
		free(q->j);
		free(q);
		pthread_mutex_lock(&h_lock);
		if (--h_active == 0 && h_stop)
			pthread_cond_broadcast(&h_cond);
	}
	h_idle--;
	h_threads--;
	pthread_cond_broadcast(&h_cond);
	pthread_mutex_unlock(&h_lock);
	return NULL;
}

/* Receive one request; 0 at end of file, -1 on a bad record, 1 with *j. */
static int recv_req(int ctl, struct job *j)
{
	struct av_req req;
	struct iovec iov = { &req, sizeof(req) };
	union {
		char buf[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr mh = { 0 };
	int fds[4], nfd = 0;
	ssize_t n;

	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = u.buf;
	mh.msg_controllen = sizeof(u.buf);
	do
		n = recvmsg(ctl, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return 0;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
			size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			for (size_t i = 0; i < k && nfd < 4; i++)
				memcpy(&fds[nfd++], CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
		}
	if (n != (ssize_t)sizeof(req) || req.magic != AV_MAGIC || nfd != 2) {
		for (int i = 0; i < nfd; i++)
			close(fds[i]);
		return -1;
	}
	j->ans = fds[0];
	j->fd = fds[1];
	j->timeout_ms = req.timeout_ms;
	return 1;
}

/* glibc gives each thread that allocates while another holds its arena a
 * new arena, up to 8 per CPU; every scan thread of the pool then keeps
 * one, with the freed memory of its largest scan.  One arena per CPU
 * (at least two) is as many as can allocate at the same time: 20
 * concurrent scans of 100 KB messages left the helper with 16.7 MB of
 * anonymous memory, 11.7 MB with two arenas on two CPUs, at the same CPU
 * time.  MALLOC_ARENA_MAX in the environment still decides. */
static void limit_arenas(void)
{
#ifdef M_ARENA_MAX
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (getenv("MALLOC_ARENA_MAX") == NULL)
		mallopt(M_ARENA_MAX, n > 2 ? (int)(n < 1024 ? n : 1024) : 2);
#endif
}

int av_helper_main(int argc, char **argv)
{
	pthread_t rt;
	pthread_attr_t attr;
	cl_error_t rc;

	if (argc != 13) {
		fprintf(stderr, "portcullis: --av-helper is for internal use\n");
		return 2;
	}
	/* Only stdin/out/err and the control socket: nothing else of the
	 * milter (its listening socket) stays open here. */
	close_range(HELPER_FD + 1, ~0u, 0);
	prctl(PR_SET_NAME, "portcullis-av"); /* else "exe", from /proc/self/exe */
	hc.database = argv[2];
	hc.tmpdir = argv[3];
	hc.max_scansize = atoll(argv[4]);
	hc.max_filesize = atoll(argv[5]);
	hc.max_recursion = atol(argv[6]);
	hc.max_files = atol(argv[7]);
	hc.max_scantime = atol(argv[8]);
	hc.reload_interval = atol(argv[9]) > 0 ? atol(argv[9]) : 60;
	if (log_open("portcullis-av", argv[10], argv[11]) < 0)
		log_open("portcullis-av", "stderr", "mail");
	log_set_debug(atoi(argv[12]));
	signal(SIGPIPE, SIG_IGN);
	limit_arenas();
	if (!hc.tmpdir[0])
		helper_tmp_make();
	rc = cl_init(CL_INIT_DEFAULT);
	if (rc != CL_SUCCESS) {
		log_msg(LOG_LVL_ERR, "av: cl_init: %s", cl_strerror(rc));
		return 1;
	}
	cl_set_clcb_msg(clamav_msg);
	if (pthread_create(&rt, NULL, reload_thread, NULL) != 0) {
		log_msg(LOG_LVL_ERR, "av: cannot start the reload thread");
		return 1;
	}
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (;;) {
		struct jobq *q = xcalloc(1, sizeof(*q));
		int got, fail = 0;

		q->j = xmalloc(sizeof(*q->j));
		got = recv_req(HELPER_FD, q->j);
		if (got <= 0) {
			free(q->j);
			free(q);
			if (got == 0)
				break;
			continue;
		}
		pthread_mutex_lock(&h_lock);
		if (h_idle <= h_queued) {
			/* no idle thread left for this job: one more */
			pthread_t st;

			if (pthread_create(&st, &attr, pool_thread, NULL) == 0)
				h_threads++;
			else
				fail = h_threads == 0;
		}
		if (!fail) {
			h_active++;
			if (q_tail)
				q_tail->next = q;
			else
				q_head = q;
			q_tail = q;
			h_queued++;
			pthread_cond_signal(&q_cond);
		}
		pthread_mutex_unlock(&h_lock);
		if (fail) {
			struct av_resp r = { .magic = AV_MAGIC,
				             .status = AV_ERROR,
				             .reason = "cannot start a scan thread",
				             .word = "error" };

			answer(q->j->ans, &r);
			close(q->j->ans);
			close(q->j->fd);
			free(q->j);
			free(q);
		}
	}
	pthread_attr_destroy(&attr);
	/* The milter closed the control socket: finish the scans, stop. */
	pthread_mutex_lock(&h_lock);
	h_stop = 1;
	pthread_cond_broadcast(&h_cond);
	pthread_cond_broadcast(&q_cond);
	while (h_active > 0 || h_threads > 0)
		pthread_cond_wait(&h_cond, &h_lock);
	pthread_mutex_unlock(&h_lock);
	pthread_join(rt, NULL);
	engine_put(h_engine);
	h_engine = NULL;
	if (h_tmpdir[0])
		rm_tree(h_tmpdir);
	return 0;
}
