/* lib/av_helper.c - the scanner helper process: libclamav, away from the
 * milter; see av.h
 *
 * One engine behind a reference count, a reload thread, a pool of scan
 * threads (grown when a request finds none idle, never shrunk), the
 * message scanned from memory (the memfd mapped), libclamav's temporary
 * files on tmpfs by default.  It exits when the milter closes the control
 * socket (also when the milter dies), after its scans have ended.
 *
 * The helper is the program portcullis-av (milter/av_main.c, installed in
 * $(pkglibexecdir)), which links libclamav and nothing else of the daemon,
 * or, where that is not installed, the calling program itself run again
 * with --av-helper (tests, contrib/bench/av-bench.c).
 */
#include "config.h"

#include "av.h"
#include "av_wire.h"
#include "log.h"
#include "util.h"

#include <clamav.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <linux/magic.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

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
	long max_scans; /* scan threads at the most, 0: no bound */
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
 * the milter can remove it when the helper was killed (av_helper_tmp_clean). */
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
void av_helper_tmp_clean(pid_t pid)
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
	av_helper_tmp_clean(getpid());
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
		/* clamd's defaults: every parser, heuristic alerts on
		 * (HeuristicAlerts yes) and each optional heuristic off
		 * (Alert* no): the same detections as clamd with its
		 * defaults, e.g. the PE heuristics of old file infectors. */
		opt.parse = ~0u;
		opt.general = CL_SCAN_GENERAL_HEURISTICS;
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

/* Send a job's answer, close its descriptors, free it. */
static void finish_job(struct jobq *q, const struct av_resp *r)
{
	answer(q->j->ans, r);
	close(q->j->ans);
	close(q->j->fd);
	free(q->j);
	free(q);
}

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
		finish_job(q, &r);
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

/* Exec the parent's executable as the helper (argv unchanged): only when
 * the parent is a portcullis client (the control socket on HELPER_FD is
 * a SOCK_SEQPACKET socket) and its executable is not this one.  Returns
 * when that cannot be done. */
static void run_parent_helper(char **argv)
{
	char parent[64], self[4096], theirs[4096];
	int type = 0;
	socklen_t len = sizeof(type);
	ssize_t a, b;

	if (getsockopt(HELPER_FD, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_SEQPACKET)
		return;
	snprintf(parent, sizeof(parent), "/proc/%ld/exe", (long)getppid());
	a = readlink("/proc/self/exe", self, sizeof(self) - 1);
	b = readlink(parent, theirs, sizeof(theirs) - 1);
	if (a < 0 || b < 0 || (a == b && memcmp(self, theirs, (size_t)a) == 0))
		return;
	execv(parent, argv);
}

int av_helper_main(int argc, char **argv)
{
	pthread_t rt;
	pthread_t *pool = NULL; /* the pool's threads, joined at the end */
	size_t npool = 0;
	cl_error_t rc;

	/* The milter's side and this one must come from the same build
	 * (av_wire.h).  A helper program of another version (installed over
	 * a running daemon) hands over to its parent's own executable, which
	 * is a helper of the right version too (a portcullis or portcullisctl
	 * of the same build); else it says so and ends, and the milter's
	 * scans fail (temporarily). */
	if (argc >= 14 && strcmp(argv[1], "--av-helper") == 0 &&
	    strcmp(argv[13], PACKAGE_VERSION) != 0)
		run_parent_helper(argv);
	if (argc != AV_ARGC || strcmp(argv[1], "--av-helper") != 0 ||
	    strcmp(argv[13], PACKAGE_VERSION) != 0) {
		fprintf(stderr,
		        "portcullis-av %s: the scanner helper of portcullis %s, for its "
		        "internal use%s%s\n",
		        PACKAGE_VERSION, PACKAGE_VERSION,
		        argc >= 14 ? "; started by portcullis " : "", argc >= 14 ? argv[13] : "");
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
	hc.max_scans = atol(argv[14]);
	if (log_open("portcullis-av", argv[10], argv[11]) < 0)
		log_open("portcullis-av", "stderr", "mail");
	log_set_debug(atoi(argv[12]));
	signal(SIGPIPE, SIG_IGN);
	/* every scan thread allocates (libclamav): one arena per CPU */
	limit_malloc_arenas();
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
		if (h_idle <= h_queued && (hc.max_scans <= 0 || h_threads < hc.max_scans)) {
			/* no idle thread left for this job: one more (else it
			 * waits in line, as in clamd past MaxThreads) */
			pthread_t st;

			if (pthread_create(&st, NULL, pool_thread, NULL) == 0) {
				h_threads++;
				pool = xrealloc(pool, (npool + 1) * sizeof(*pool));
				pool[npool++] = st;
			} else
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

			finish_job(q, &r);
		}
	}
	/* The milter closed the control socket: finish the scans, stop. */
	pthread_mutex_lock(&h_lock);
	h_stop = 1;
	pthread_cond_broadcast(&h_cond);
	pthread_cond_broadcast(&q_cond);
	while (h_active > 0 || h_threads > 0)
		pthread_cond_wait(&h_cond, &h_lock);
	pthread_mutex_unlock(&h_lock);
	/* Joined, not only counted: a thread's thread-local data (libcrypto's,
	 * from libclamav's hashing) is freed after its function returned. */
	for (size_t i = 0; i < npool; i++)
		pthread_join(pool[i], NULL);
	free(pool);
	pthread_join(rt, NULL);
	engine_put(h_engine);
	h_engine = NULL;
	if (h_tmpdir[0])
		rm_tree(h_tmpdir);
	return 0;
}
