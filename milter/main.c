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

/* Fork into the background.  The parent waits until the child reports
 * that it is ready (socket open, pidfile written, privileges dropped) and
 * exits 0, or exits 1 when the child failed (the child has printed why).
 * Returns the child's end of the readiness pipe, or -1. */
static int daemonize(char *err, size_t errsize)
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
		_exit(read(pfd[0], &ok, 1) == 1 && ok == '0' ? 0 : 1);
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
	if (milter_open(c, err, sizeof(err)) < 0)
		goto fail;
	if (milter_socket_path(c->core.socket))
		bcopy_str(sock_path, sizeof(sock_path), milter_socket_path(c->core.socket));
	metrics_set_version(PACKAGE_VERSION);
	if (c->core.metrics_listen[0] &&
	    (mh = metrics_http_open(c->core.metrics_listen, c->core.metrics_allow_remote, err,
	                            sizeof(err))) == NULL)
		goto fail;
	if (!foreground && (ready_fd = daemonize(err, sizeof(err))) < 0)
		goto fail;
	if (c->core.pidfile[0]) {
		if (write_pidfile(c->core.pidfile, err, sizeof(err)) < 0)
			goto fail;
		pidfile_written = 1;
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
	if ((store = store_open(c->core.state_dir, err, sizeof(err))) == NULL)
		goto fail;
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

	if (argc > 1 && strcmp(argv[1], "--av-helper") == 0)
		return av_helper_main(argc, argv); /* lib/av.c: the scanner process */
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
		if (what == DUMP_N)
			conf_dump(c, CONF_DUMP_CHANGED, stdout);
		else
			printf("portcullis: configuration %s is valid\n",
			       conf_path ? conf_path : "(embedded defaults)");
		conf_unref(c);
		return 0;
	}
	return serve(c, foreground);
}
