/* lib/av.c - libclamav in an isolated helper process, the milter's side;
 * see av.h (the helper itself is lib/av_helper.c)
 *
 * av_scan(), av_start(), av_stop(): one helper at a time, its pid and
 * control socket behind one mutex; a scan holds the mutex only to send its
 * request.  A scan that finds the helper dead before its request was sent
 * starts a new helper and sends again (the message never reached a
 * scanner); a scan whose helper died or did not answer in time kills the
 * helper and fails (the caller turns that into a temporary failure):
 * libclamav may have crashed on this very message, and scanning it again
 * could crash the next helper too.
 *
 * Wire format (av_wire.h): one record struct av_req with two descriptors
 * (the answer socket, the file), one record struct av_resp.
 */
#include "config.h"

#include "av.h"
#include "av_wire.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define RETIRED_MAX 16

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

/* A helper has ended (reaped): log how, remove what it left. */
static void log_exit(pid_t pid, int status)
{
	av_helper_tmp_clean(pid);
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
		av_helper_tmp_clean(cur_pid);
	}
	cur_pid = 0;
}

/* The helper program; "" for this executable run again with --av-helper. */
static char helper_exe[4096];

const char *av_use_helper_program(void)
{
	char self[4096], cand[4096 + 32], *slash;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	helper_exe[0] = '\0';
	if (n > 0) {
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			snprintf(cand, sizeof(cand), "%s/portcullis-av", self);
			if (access(cand, X_OK) == 0) {
				bcopy_str(helper_exe, sizeof(helper_exe), cand);
				return helper_exe;
			}
		}
	}
	if (access(PKGLIBEXECDIR "/portcullis-av", X_OK) == 0)
		bcopy_str(helper_exe, sizeof(helper_exe), PKGLIBEXECDIR "/portcullis-av");
	return helper_exe;
}

/* Start a helper for settings s.  Lock held.  Returns 0 or -1 + err. */
static int spawn_helper(const struct av_settings *s, pid_t *pidp, int *ctlp, char *err,
                        size_t errsize)
{
	char a_size[32], a_file[32], a_rec[32], a_files[32], a_time[32], a_reload[32], a_debug[8],
	    a_scans[32];
	char *argv[AV_ARGC + 1];
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
	snprintf(a_scans, sizeof(a_scans), "%ld", s->max_scans);
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
	argv[13] = (char *)PACKAGE_VERSION;
	argv[14] = a_scans;
	argv[15] = NULL;

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
	/* The helper program, else our own executable: either way a fresh
	 * process, not a fork of this threaded one. */
	rc = posix_spawn(&pid, helper_exe[0] ? helper_exe : "/proc/self/exe", &fa, &attr, argv,
	                 environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(child);
	if (rc != 0) {
		snprintf(err, errsize, "cannot start the scanner helper %s: %s",
		         helper_exe[0] ? helper_exe : "/proc/self/exe", strerror(rc));
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
	log_msg(LOG_LVL_INFO, "av: scanner helper started (pid %ld) for database %s: %s", (long)pid,
	        s->database, helper_exe[0] ? helper_exe : "this program --av-helper");
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
		av_helper_tmp_clean(retired[i]);
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
