/* milter/main.c - portcullis(8): options, startup checks, daemon mode,
 * privilege drop and reload on SIGUSR1
 *
 * Startup problems (a bad configuration file, an unusable socket, a missing
 * state directory, an unknown user) are reported as one line on stderr and
 * end the program with status 1 before anything listens.  Reload: SIGUSR1
 * is blocked in every thread and taken by a dedicated thread with
 * sigwait(); a reload that fails keeps the running configuration.  SIGHUP
 * is not used: libmilter's own signal thread treats it like SIGTERM.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "av.h"
#include "conf.h"
#include "engine.h"
#include "grey.h"
#include "log.h"
#include "maint.h"
#include "metrics.h"
#include "metrics_http.h"
#include "milter.h"
#include "refs.h"
#include "store.h"
#include "util.h"
#include "wlist.h"

#define DEFAULT_CONF SYSCONFDIR "/portcullis/portcullis.conf"

static const char *conf_path; /* NULL: embedded defaults */

static void usage(FILE *fp)
{
	fprintf(fp,
	        "usage: portcullis [-f] [-c FILE] [-n | -d | -D | -t] [-V]\n"
	        "  -c FILE  configuration file (default %s; if that does not exist,\n"
	        "           the embedded defaults)\n"
	        "  -f       stay in the foreground\n"
	        "  -n       print the settings that differ from the defaults and exit\n"
	        "  -d       print all default settings and exit\n"
	        "  -D       print the commented sample configuration and exit\n"
	        "  -t       test the configuration and exit (status 0 if good)\n"
	        "  -V       print the version and exit\n",
	        DEFAULT_CONF);
}

/* The store, for the reload thread (the refs cap). */
static struct store *the_store;

static void *reload_thread(void *arg)
{
	sigset_t set;

	(void)arg;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	for (;;) {
		int sig;
		char err[1024];
		struct conf *c, *old;

		if (sigwait(&set, &sig) != 0)
			continue;
		c = conf_load(conf_path, err, sizeof(err));
		if (c == NULL) {
			log_msg(LOG_LVL_ERR, "reload failed: %s; keeping the running configuration",
			        err);
			metrics_reload(0);
			continue;
		}
		old = conf_current();
		if (old && strcmp(old->core.socket, c->core.socket) != 0)
			log_msg(LOG_LVL_WARN, "reload: a new socket takes a restart; still on %s",
			        old->core.socket);
		if (old && strcmp(old->core.metrics_listen, c->core.metrics_listen) != 0)
			log_msg(LOG_LVL_WARN,
			        "reload: a new metrics.listen takes a restart; still on '%s'",
			        old->core.metrics_listen);
		if (old && (strcmp(old->core.store_backend, c->core.store_backend) != 0 ||
		            strcmp(old->core.store_redis, c->core.store_redis) != 0 ||
		            old->core.store_redis_db != c->core.store_redis_db ||
		            strcmp(old->core.store_redis_password_file,
		                   c->core.store_redis_password_file) != 0 ||
		            strcmp(old->core.store_redis_prefix, c->core.store_redis_prefix) != 0 ||
		            old->core.store_timeout_ms != c->core.store_timeout_ms ||
		            (strcmp(c->core.store_backend, "tdb") == 0 &&
		             strcmp(old->core.state_dir, c->core.state_dir) != 0)))
			log_msg(LOG_LVL_WARN,
			        "reload: a new store.* setting takes a restart; still on %s %s",
			        old->core.store_backend,
			        strcmp(old->core.store_backend, "redis") == 0
			            ? old->core.store_redis
			            : old->core.state_dir);
		conf_unref(old);
		log_set_debug(c->core.debug);
		if (clamav_start(c, err, sizeof(err)) < 0)
			log_msg(LOG_LVL_ERR, "reload: %s", err);
		if (the_store != NULL)
			store_ns_limit(the_store, REFS_NS, c->core.ref_max);
		conf_install(c);
		metrics_reload(1);
		log_msg(LOG_LVL_INFO, "configuration reloaded from %s",
		        conf_path ? conf_path : "(defaults)");
	}
	return NULL;
}

static int write_pidfile(const char *path, char *err, size_t errsize)
{
	FILE *fp = fopen(path, "w");

	if (fp == NULL) {
		snprintf(err, errsize, "pidfile %s: %s", path, strerror(errno));
		return -1;
	}
	fprintf(fp, "%ld\n", (long)getpid());
	if (fclose(fp) != 0) {
		snprintf(err, errsize, "pidfile %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int drop_privileges(const char *user, char *err, size_t errsize)
{
	struct passwd *pw = getpwnam(user);

	if (pw == NULL) {
		snprintf(err, errsize, "user: unknown user '%s'", user);
		return -1;
	}
	if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0) {
		snprintf(err, errsize, "user: cannot switch to '%s': %s", user, strerror(errno));
		return -1;
	}
	return 0;
}

/* --- what the start needs, checked as the daemon's user ------------------ */

/* A file name of a ClamAV signature database (what cl_load() reads). */
static int av_db_file(const char *name)
{
	static const char *const ext[] = { ".cvd", ".cld",  ".cud", ".ndb", ".ndu", ".hdb",
		                           ".hdu", ".hsb",  ".hsu", ".mdb", ".mdu", ".msb",
		                           ".msu", ".ldb",  ".ldu", ".cdb", ".idb", ".ndb",
		                           ".yar", ".yara", ".pdb", ".wdb", ".gdb", ".ftm",
		                           ".crb", ".cat",  ".fp",  ".sfp", ".ign2" };
	const char *dot = strrchr(name, '.');

	for (size_t i = 0; dot && i < ARRAY_SIZE(ext); i++)
		if (strcmp(dot, ext[i]) == 0)
			return 1;
	return 0;
}

/* The checks of check_start(), in the calling process. */
static int check_start_here(const struct conf *c, const char *who, char *err, size_t errsize)
{
	char path[1200], e[1024];
	struct conf *again;
	struct dirent *d;
	DIR *dir;
	int found = 0;

	/* the file and every table it names, read again by this user (a
	 * reload does the same) */
	if (conf_path && (again = conf_load(conf_path, e, sizeof(e))) == NULL) {
		snprintf(err, errsize, "%.900s (as user %.60s)", e, who);
		return -1;
	}
	if (conf_path)
		conf_unref(again);
	if (access(c->core.state_dir, F_OK) < 0) {
		snprintf(err, errsize, "state_dir %s: %s (create it or set state_dir)",
		         c->core.state_dir, strerror(errno));
		return -1;
	}
	/* A read-only file system is no reason not to start (serve() warns):
	 * lookups work and the checks that write follow their on_error. */
	if (access(c->core.state_dir, W_OK | X_OK) < 0 && errno != EROFS) {
		snprintf(err, errsize, "state_dir %s: not writable by user %s: %s",
		         c->core.state_dir, who, strerror(errno));
		return -1;
	}
	if ((dir = opendir(c->core.state_dir)) == NULL) {
		snprintf(err, errsize, "state_dir %s: %s", c->core.state_dir, strerror(errno));
		return -1;
	}
	while ((d = readdir(dir)) != NULL) {
		size_t n = strlen(d->d_name);

		if (n < 5 || strcmp(d->d_name + n - 4, ".tdb") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", c->core.state_dir, d->d_name);
		if (access(path, R_OK | W_OK) < 0 && errno != EROFS) {
			snprintf(err, errsize, "state_dir: %.700s: not writable by user %.60s: %s",
			         path, who, strerror(errno));
			closedir(dir);
			return -1;
		}
	}
	closedir(dir);
	if (strcmp(c->core.store_backend, "redis") == 0) {
		/* the address, the password file (read as this user) and AUTH;
		 * a server that does not answer is no reason not to start */
		struct store_params sp;
		struct store *st;

		conf_store_params(c, &sp);
		if ((st = store_open_params(&sp, 0, e, sizeof(e))) == NULL) {
			snprintf(err, errsize, "%.900s (as user %.60s)", e, who);
			return -1;
		}
		store_close(st);
	}
	if (clamav_database(c)) {
		const char *db = clamav_database(c);

		if ((dir = opendir(db)) == NULL) {
			snprintf(err, errsize, "clamav.database %s: %s (as user %s)", db,
			         strerror(errno), who);
			return -1;
		}
		while (!found && (d = readdir(dir)) != NULL) {
			snprintf(path, sizeof(path), "%s/%s", db, d->d_name);
			found = av_db_file(d->d_name) && access(path, R_OK) == 0;
		}
		closedir(dir);
		if (!found) {
			snprintf(err, errsize,
			         "clamav.database %s: no signature file readable by user %s "
			         "(run freshclam, or fix the path)",
			         db, who);
			return -1;
		}
	}
	return 0;
}

/* -t: say whether a Redis store answers (a server that does not answer is
 * no configuration error: the daemon starts and the checks follow their
 * on_error until it does). */
static void test_store(const struct conf *c)
{
	struct store_params sp;
	struct store *st;
	char e[1024];

	conf_store_params(c, &sp);
	if (sp.backend != STORE_REDIS)
		return;
	if ((st = store_open_params(&sp, STORE_RDONLY, e, sizeof(e))) == NULL) {
		printf("portcullis: warning: %s\n", e);
		return;
	}
	if (store_ping(st, e, sizeof(e)) == 0)
		printf("portcullis: store: %s\n", e);
	else
		printf("portcullis: warning: store: %s\n", e);
	store_close(st);
}

/* What the start needs that the configuration's syntax does not say, as
 * the user the daemon will run as (a child process that drops privileges
 * when `user` is set and we are root): the configuration and its tables
 * readable, state_dir and its files writable, a ClamAV database there
 * when clamav is enabled.  Returns 0, or -1 with the reason in err. */
static int check_start(const struct conf *c, char *err, size_t errsize)
{
	int pfd[2], status;
	ssize_t n;
	pid_t pid;

	if (!c->core.user[0] || getuid() != 0) {
		struct passwd *pw = getpwuid(geteuid());

		return check_start_here(c, pw ? pw->pw_name : "(this user)", err, errsize);
	}
	if (getpwnam(c->core.user) == NULL) {
		snprintf(err, errsize, "user: unknown user '%s'", c->core.user);
		return -1;
	}
	if (pipe(pfd) < 0 || (pid = fork()) < 0) {
		snprintf(err, errsize, "cannot check the start as user %s: %s", c->core.user,
		         strerror(errno));
		return -1;
	}
	if (pid == 0) {
		char e[1024] = "";
		int rc;

		close(pfd[0]);
		rc = drop_privileges(c->core.user, e, sizeof(e)) < 0 ||
		     check_start_here(c, c->core.user, e, sizeof(e)) < 0;
		if (rc && write(pfd[1], e, strlen(e)) < 0)
			_exit(2);
		_exit(rc);
	}
	close(pfd[1]);
	n = read(pfd[0], err, errsize - 1);
	err[n > 0 ? n : 0] = '\0';
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (err[0] == '\0')
		snprintf(err, errsize, "the start check as user %s failed", c->core.user);
	return -1;
}

/* Fork into the background.  The parent waits until the child reports
 * that it is ready (socket open, pidfile written, privileges dropped) and
 * exits 0, or exits 1 when the child failed (the child has printed why).
 * Returns the child's end of the readiness pipe, or -1. */
static int daemonize(const char *sock_path, const char *pidfile, char *err, size_t errsize)
{
	int pfd[2];
	pid_t pid;
	char ok;

	if (pipe(pfd) < 0) {
		snprintf(err, errsize, "pipe: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		snprintf(err, errsize, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid > 0) {
		close(pfd[1]);
		if (read(pfd[0], &ok, 1) == 1 && ok == '0')
			_exit(0);
		/* The child failed after the privilege drop: remove, with the
		 * privileges they were made with, the socket and pidfile it
		 * could not remove itself. */
		if (sock_path[0])
			unlink(sock_path);
		if (pidfile[0])
			unlink(pidfile);
		_exit(1);
	}
	close(pfd[0]);
	setsid();
	if (chdir("/") < 0) {
		snprintf(err, errsize, "chdir /: %s", strerror(errno));
		return -1;
	}
	return pfd[1];
}

/* Tell the waiting parent that startup is done, and let go of the
 * terminal (stderr stays when it is the log). */
static void daemon_ready(int ready_fd, int keep_stderr)
{
	int fd = open("/dev/null", O_RDWR);

	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		if (!keep_stderr)
			dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	if (write(ready_fd, "0", 1) != 1)
		log_msg(LOG_LVL_WARN, "could not tell the parent process that startup is done");
	close(ready_fd);
}

/* Open the socket, daemonize, drop privileges, run until stopped.  Takes
 * over the reference c.  Returns the exit status. */
static int serve(struct conf *c, int foreground)
{
	char err[1024], sock_path[1024] = "";
	int ready_fd = -1, pidfile_written = 0, rofs = 0, rc;
	struct store *store = NULL;
	struct metrics_http *mh = NULL;
	struct stat st;
	sigset_t set;
	pthread_t tid;

	if (stat(c->core.state_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, sizeof(err), "state_dir %s: %s (create it or set state_dir)",
		         c->core.state_dir, errno ? strerror(errno) : "not a directory");
		goto fail;
	}
	/* before the socket exists: a start that cannot work leaves nothing */
	if (check_start(c, err, sizeof(err)) < 0)
		goto fail;
	if (milter_open(c, err, sizeof(err)) < 0)
		goto fail;
	if (milter_socket_path(c->core.socket))
		bcopy_str(sock_path, sizeof(sock_path), milter_socket_path(c->core.socket));
	metrics_set_version(PACKAGE_VERSION);
	if (c->core.metrics_listen[0] &&
	    (mh = metrics_http_open(c->core.metrics_listen, c->core.metrics_allow_remote, err,
	                            sizeof(err))) == NULL)
		goto fail;
	if (!foreground && (ready_fd = daemonize(sock_path, c->core.pidfile, err, sizeof(err))) < 0)
		goto fail;
	if (c->core.pidfile[0]) {
		if (write_pidfile(c->core.pidfile, err, sizeof(err)) < 0)
			goto fail;
		pidfile_written = 1;
	}
	if (c->core.user[0] && getuid() == 0 && sock_path[0]) {
		/* The socket belongs to the user the daemon runs as (as under
		 * systemd's User=): it must be able to connect to it, to wake
		 * libmilter's accept loop at a stop (milter.c). */
		struct passwd *pw = getpwnam(c->core.user);

		if (pw && chown(sock_path, pw->pw_uid, (gid_t)-1) < 0) {
			snprintf(err, sizeof(err), "socket %.900s: chown to user %.60s: %s",
			         sock_path, c->core.user, strerror(errno));
			goto fail;
		}
	}
	if (c->core.user[0] && drop_privileges(c->core.user, err, sizeof(err)) < 0)
		goto fail;
	/* A read-only file system is no reason not to start: lookups work
	 * and the checks that must write follow their on_error. */
	if (access(c->core.state_dir, W_OK | X_OK) < 0 && (errno != EROFS || (rofs = 1) == 0)) {
		snprintf(err, sizeof(err), "state_dir %s: %s", c->core.state_dir, strerror(errno));
		goto fail;
	}
	if (log_open("portcullis", c->core.log_target, c->core.log_facility) < 0) {
		snprintf(err, sizeof(err), "log_target/log_facility: cannot open");
		goto fail;
	}
	if (rofs)
		log_msg(LOG_LVL_WARN,
		        "state_dir %s is on a read-only file system: the checks that write to "
		        "the store follow their on_error",
		        c->core.state_dir);
	log_set_debug(c->core.debug);
	/* The store: after the fork (TDB locks belong to a process) and the
	 * privilege drop (files owned by the user that runs). */
	{
		struct store_params sp;
		char info[300];

		conf_store_params(c, &sp);
		if ((store = store_open_params(&sp, 0, err, sizeof(err))) == NULL)
			goto fail;
		if (sp.backend == STORE_REDIS && store_ping(store, info, sizeof(info)) == 0)
			log_msg(LOG_LVL_INFO, "store: %s", info);
		else if (sp.backend != STORE_REDIS)
			log_msg(LOG_LVL_INFO,
			        "store: TDB files in %s, locking %s (files mapped; one that "
			        "shrinks under the daemon is caught and moved aside)",
			        store_where(store), store_locking(store));
	}
	grey_store_setup(store);
	wlist_prepare(store);
	store_ns_limit(store, REFS_NS, c->core.ref_max);
	the_store = store;
	engine_set_store(store, 0);
	metrics_set_store(store, maint_ns, MAINT_NNS);
	if (getuid() == 0)
		log_msg(LOG_LVL_WARN, "running as root; set user = portcullis to drop privileges");

	/* Block the signals before any thread exists: SIGUSR1 goes to the
	 * reload thread, SIGTERM/SIGINT/SIGHUP to libmilter's signal thread
	 * (a thread that left them unblocked would be killed by them). */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (pthread_create(&tid, NULL, reload_thread, NULL) != 0) {
		snprintf(err, sizeof(err), "cannot start the reload thread");
		goto fail;
	}
	pthread_detach(tid);
	if (maint_start(store, err, sizeof(err)) < 0)
		goto fail;
	if (mh && metrics_http_start(mh, err, sizeof(err)) < 0)
		goto fail;
	log_msg(LOG_LVL_INFO, "portcullis %s started on %s with %s%s%s", PACKAGE_VERSION,
	        c->core.socket, conf_path ? conf_path : "(embedded defaults)",
	        mh ? "; metrics on " : "", mh ? c->core.metrics_listen : "");
	if (ready_fd >= 0)
		daemon_ready(ready_fd, !strcmp(c->core.log_target, "stderr"));
	if (clamav_start(c, err, sizeof(err)) < 0)
		log_msg(LOG_LVL_ERR, "%s", err);
	conf_install(c);

	rc = milter_run();
	metrics_http_stop(mh);
	maint_stop();
	metrics_set_store(NULL, NULL, 0);
	engine_set_store(NULL, 0);
	the_store = NULL;
	store_close(store);
	av_stop();
	log_msg(LOG_LVL_INFO, "portcullis stopped");
	c = conf_current();
	if (c && c->core.pidfile[0])
		unlink(c->core.pidfile);
	if (sock_path[0])
		unlink(sock_path);
	conf_install(NULL);
	conf_unref(c);
	return rc == 0 ? 0 : 1;
fail:
	fprintf(stderr, "portcullis: %s\n", err);
	metrics_http_stop(mh);
	maint_stop();
	metrics_set_store(NULL, NULL, 0);
	engine_set_store(NULL, 0);
	the_store = NULL;
	store_close(store);
	if (pidfile_written)
		unlink(c->core.pidfile);
	if (sock_path[0])
		unlink(sock_path);
	conf_unref(c);
	return 1;
}

int main(int argc, char **argv)
{
	int opt, foreground = 0, explicit_conf = 0;
	enum { RUN, DUMP_N, DUMP_D, DUMP_SAMPLE, TEST } what = RUN;
	char err[1024];
	struct conf *c;

	/* The scanner helper is the program portcullis-av when installed (or
	 * next to this one in a build tree), else this program again. */
	if (argc > 1 && strcmp(argv[1], "--av-helper") == 0)
		return av_helper_main(argc, argv); /* lib/av_helper.c */
	av_use_helper_program();
	limit_malloc_arenas(); /* one per CPU, not 8: lib/util.h */
	conf_path = DEFAULT_CONF;
	while ((opt = getopt(argc, argv, "c:fndDtVh")) != -1) {
		switch (opt) {
		case 'c':
			conf_path = optarg;
			explicit_conf = 1;
			break;
		case 'f': foreground = 1; break;
		case 'n': what = DUMP_N; break;
		case 'd': what = DUMP_D; break;
		case 'D': what = DUMP_SAMPLE; break;
		case 't': what = TEST; break;
		case 'V': printf("portcullis %s\n", PACKAGE_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	log_open("portcullis", "stderr", "mail");
	if (what == DUMP_D || what == DUMP_SAMPLE) {
		c = conf_load(NULL, err, sizeof(err));
		if (c == NULL) {
			fprintf(stderr, "portcullis: %s\n", err);
			return 1;
		}
		conf_dump(c, what == DUMP_D ? CONF_DUMP_DEFAULTS : CONF_DUMP_SAMPLE, stdout);
		conf_unref(c);
		return 0;
	}
	if (!explicit_conf && access(conf_path, F_OK) < 0 && errno == ENOENT)
		conf_path = NULL; /* no file: run on the embedded defaults */
	c = conf_load(conf_path, err, sizeof(err));
	if (c == NULL) {
		fprintf(stderr, "portcullis: %s\n", err);
		return 1;
	}
	if (what == DUMP_N || what == TEST) {
		if (what == DUMP_N) {
			conf_dump(c, CONF_DUMP_CHANGED, stdout);
		} else if (check_start(c, err, sizeof(err)) < 0) {
			fprintf(stderr, "portcullis: %s\n", err);
			conf_unref(c);
			return 1;
		} else {
			printf("portcullis: configuration %s is valid\n",
			       conf_path ? conf_path : "(embedded defaults)");
			test_store(c);
		}
		conf_unref(c);
		return 0;
	}
	return serve(c, foreground);
}
