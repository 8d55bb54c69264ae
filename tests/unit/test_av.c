/* tests/unit/test_av.c - lib/av.c: the scanner helper, without an MTA
 *
 * The helper is this test program run again with --av-helper (main below
 * hands over to av_helper_main, as portcullis' main does), so the real
 * spawn, socket and libclamav paths run.  The signature database is
 * written by the test (an .ndb line for the EICAR string, built at run
 * time).  Covered: clamav.* limit defaults equal a fresh libclamav
 * engine's; clean and infected messages; several threads scanning at once
 * while the database is replaced again and again (every answer right, no
 * error, the new signature name seen); the helper killed during a scan
 * (stopped, the request sent, then killed): that scan fails, the next one
 * is scanned by a new helper; new settings with an empty database: the
 * old helper goes on scanning, and without it AV_ERROR "no database",
 * never clean; a database file that does not parse: AV_ERROR
 * "malformed database" with libclamav's reason (not "no signatures");
 * the helper killed between scans is replaced
 * without a failed scan, and its private temporary folder on /dev/shm
 * (clamav.tmpdir empty) is removed; a clean stop removes it too, and a
 * configured clamav.tmpdir makes none.  Prints scans per second for 1, 2 and 4 threads
 * (information for the design note in av.h, not an assertion).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <clamav.h>
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "av.h"
#include "check.h"
#include "log.h"
#include "testutil.h"
#include "util.h"

static const char eicar_rev[] =
    "*H+H$!ELIF-TSET-SURIVITNA-DRADNATS-RACIE$}7)CC7)^P(45XZP\\4[PA@%P!O5X";
static char eicar[sizeof(eicar_rev)];
static char dbdir[512];

static void write_db(const char *name, const char *signame)
{
	char path[600], tmp[600], line[400];
	FILE *fp;
	size_t k;

	snprintf(tmp, sizeof(tmp), "%s/.new", dbdir);
	snprintf(path, sizeof(path), "%s/%s", dbdir, name);
	k = (size_t)snprintf(line, sizeof(line), "%s:0:*:", signame);
	for (size_t i = 0; eicar[i]; i++)
		k += (size_t)snprintf(line + k, sizeof(line) - k, "%02x", (unsigned char)eicar[i]);
	fp = fopen(tmp, "w");
	assert_non_null(fp);
	fprintf(fp, "%s\n", line);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(rename(tmp, path), 0);
}

static int make_msg(int infected)
{
	char *msg = xasprintf("From: a@example.net\r\nSubject: t\r\nMIME-Version: 1.0\r\n"
	                      "Content-Type: text/plain\r\n\r\nhello %s\r\n",
	                      infected ? eicar : "world");
	int fd = memfd_create("t", MFD_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, msg, strlen(msg)), (ssize_t)strlen(msg));
	free(msg);
	return fd;
}

static int shm_is_tmpfs(void)
{
	struct statfs sf;

	return statfs("/dev/shm", &sf) == 0 && sf.f_type == TMPFS_MAGIC;
}

/* Whether the private folder of helper pid is there. */
static int shm_folder_exists(pid_t pid)
{
	char path[128];
	struct stat st;

	snprintf(path, sizeof(path), "/dev/shm/portcullis-av.%ld", (long)pid);
	return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static void settings(struct av_settings *s, const char *db)
{
	memset(s, 0, sizeof(*s));
	bcopy_str(s->database, sizeof(s->database), db);
	s->max_scansize = 419430400;
	s->max_filesize = 104857600;
	s->max_recursion = 17;
	s->max_files = 10000;
	s->max_scantime = 120000;
	s->reload_interval = 1;
	s->timeout_ms = 30000;
	bcopy_str(s->log_target, sizeof(s->log_target), "stderr");
	bcopy_str(s->log_facility, sizeof(s->log_facility), "mail");
}

static int setup(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(eicar_rev) - 1; i++)
		eicar[i] = eicar_rev[sizeof(eicar_rev) - 2 - i];
	if (tmpdir_create("pc-av") < 0)
		return -1;
	snprintf(dbdir, sizeof(dbdir), "%s/db", tmpdir);
	return mkdir(dbdir, 0700);
}

static int teardown(void **state)
{
	char cmd[600];

	(void)state;
	av_stop();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* clamav.* defaults are libclamav's own. */
static void test_defaults(void **state)
{
	static const struct {
		const char *key;
		enum cl_engine_field f;
	} map[] = {
		{ "clamav.max_scansize", CL_ENGINE_MAX_SCANSIZE },
		{ "clamav.max_filesize", CL_ENGINE_MAX_FILESIZE },
		{ "clamav.max_recursion", CL_ENGINE_MAX_RECURSION },
		{ "clamav.max_files", CL_ENGINE_MAX_FILES },
		{ "clamav.max_scantime", CL_ENGINE_MAX_SCANTIME },
	};
	const struct check_module *m = check_registry[check_find("clamav")];
	struct cl_engine *e;

	(void)state;
	assert_int_equal(cl_init(CL_INIT_DEFAULT), CL_SUCCESS);
	e = cl_engine_new();
	assert_non_null(e);
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		const struct conf_param *p = m->params;

		while (p->key && strcmp(p->key, map[i].key) != 0)
			p++;
		assert_non_null(p->key);
		assert_int_equal(atoll(p->def), cl_engine_get_num(e, map[i].f, NULL));
	}
	cl_engine_free(e);
}

static void test_clean_and_virus(void **state)
{
	struct av_settings s;
	struct av_result r;
	int fd;

	(void)state;
	write_db("test.ndb", "Test.Eicar");
	settings(&s, dbdir);
	fd = make_msg(0);
	assert_int_equal(av_scan(&s, fd, &r), AV_CLEAN);
	close(fd);
	fd = make_msg(1);
	assert_int_equal(av_scan(&s, fd, &r), AV_VIRUS);
	assert_string_equal(r.name, "Test.Eicar.UNOFFICIAL");
	close(fd);
}

static void test_no_database(void **state)
{
	struct av_settings s;
	struct av_result r;
	char empty[600];
	int fd = make_msg(0);

	(void)state;
	snprintf(empty, sizeof(empty), "%s/empty", tmpdir);
	assert_int_equal(mkdir(empty, 0700), 0);
	settings(&s, empty);
	/* A helper with a database runs: it goes on scanning while the one
	 * for the new settings has none. */
	assert_true(av_helper_pid() > 0);
	assert_int_equal(av_scan(&s, fd, &r), AV_CLEAN);
	/* Without it, the new helper answers: no database. */
	av_stop();
	assert_int_equal(av_scan(&s, fd, &r), AV_ERROR);
	assert_string_equal(r.word, "no database");
	assert_non_null(strstr(r.reason, "no signature files"));
	close(fd);
}

/* A signature file that does not parse is a malformed database, and
 * libclamav's reason (the line) is given, not "no signatures". */
static void test_malformed_database(void **state)
{
	struct av_settings s;
	struct av_result r;
	char bad[600], path[700];
	FILE *fp;
	int fd = make_msg(0);

	(void)state;
	snprintf(bad, sizeof(bad), "%s/bad", tmpdir);
	assert_int_equal(mkdir(bad, 0700), 0);
	snprintf(path, sizeof(path), "%s/broken.ndb", bad);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fprintf(fp, "Broken.Sig:0:*:zz12\n");
	assert_int_equal(fclose(fp), 0);
	settings(&s, bad);
	av_stop();
	assert_int_equal(av_scan(&s, fd, &r), AV_ERROR);
	assert_string_equal(r.word, "no database");
	assert_non_null(strstr(r.reason, "malformed database"));
	assert_non_null(strstr(r.reason, "at line 1"));
	assert_null(strstr(r.reason, "no signatures"));
	av_stop();
	close(fd);
}

/* The helper pid is gone or a zombie whose threads have all exited (a
 * live helper always has its reload thread besides the main one). */
static int descriptors_closed(pid_t pid)
{
	char path[64];
	DIR *d;
	struct dirent *de;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%ld/task", (long)pid);
	d = opendir(path);
	if (d == NULL)
		return 1;
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	if (n > 1)
		return 0;
	/* only the main thread: it must have exited too (a zombie) */
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	{
		FILE *fp = fopen(path, "r");
		char st = 0;

		if (fp == NULL)
			return 1;
		if (fscanf(fp, "%*d %*s %c", &st) != 1)
			st = 0;
		fclose(fp);
		return st == 'Z' || st == 'X';
	}
}

static void test_killed_between_scans(void **state)
{
	struct av_settings s;
	struct av_result r;
	pid_t old;
	int fd = make_msg(1);

	(void)state;
	settings(&s, dbdir);
	assert_int_equal(av_scan(&s, fd, &r), AV_VIRUS);
	old = av_helper_pid();
	assert_true(old > 0);
	/* clamav.tmpdir empty: the helper's private folder on /dev/shm */
	if (shm_is_tmpfs())
		assert_int_equal(shm_folder_exists(old), 1);
	assert_int_equal(kill(old, SIGKILL), 0);
	/* Dead, not dying: a killed multi-threaded process shows as a
	 * zombie while its other threads still exit, with its descriptors
	 * open (a scan sent then is lost with it: one 4xx). */
	for (int i = 0; i < 500 && !descriptors_closed(old); i++)
		usleep(10000);
	assert_int_equal(av_scan(&s, fd, &r), AV_VIRUS);
	assert_true(av_helper_pid() != old);
	/* the killed helper's folder was removed by the milter side */
	assert_int_equal(shm_folder_exists(old), 0);
	if (shm_is_tmpfs())
		assert_int_equal(shm_folder_exists(av_helper_pid()), 1);
	close(fd);
}

/* The helper's folder goes with it on a clean stop, and a configured
 * clamav.tmpdir makes none. */
static void test_tmpdir(void **state)
{
	struct av_settings s;
	struct av_result r;
	pid_t pid;
	int fd = make_msg(0);

	(void)state;
	av_stop(); /* a fresh helper (the one of an earlier test may have no database) */
	settings(&s, dbdir);
	assert_int_equal(av_scan(&s, fd, &r), AV_CLEAN);
	pid = av_helper_pid();
	if (shm_is_tmpfs())
		assert_int_equal(shm_folder_exists(pid), 1);
	av_stop();
	assert_int_equal(shm_folder_exists(pid), 0);
	snprintf(s.tmpdir, sizeof(s.tmpdir), "%s", tmpdir);
	assert_int_equal(av_scan(&s, fd, &r), AV_CLEAN);
	pid = av_helper_pid();
	assert_true(pid > 0);
	assert_int_equal(shm_folder_exists(pid), 0);
	av_stop();
	close(fd);
}

struct crash {
	const struct av_settings *s;
	int fd;
	enum av_status st;
	struct av_result r;
	pid_t tid;
};

static void *crash_scan(void *arg)
{
	struct crash *c = arg;

	__atomic_store_n(&c->tid, gettid(), __ATOMIC_SEQ_CST);
	c->st = av_scan(c->s, c->fd, &c->r);
	return NULL;
}

/* The thread tid is waiting in poll()/ppoll(): its request was sent. */
static int in_poll(pid_t tid)
{
	char path[64];
	long nr = -1;
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/self/task/%ld/syscall", (long)tid);
	fp = fopen(path, "r");
	if (fp == NULL)
		return 0;
	if (fscanf(fp, "%ld", &nr) != 1)
		nr = -1;
	fclose(fp);
	return nr == 7 || nr == 271; /* x86_64 poll, ppoll */
}

/* The helper dies during a scan (stopped, the request sent, then killed):
 * that scan fails, the next one is scanned by a new helper. */
static void test_crash_during_scan(void **state)
{
	struct av_settings s;
	struct av_result r;
	struct crash c = { 0 };
	pthread_t th;
	pid_t pid;
	int fd = make_msg(1);

	(void)state;
	settings(&s, dbdir);
	assert_int_equal(av_scan(&s, fd, &r), AV_VIRUS);
	pid = av_helper_pid();
	assert_int_equal(kill(pid, SIGSTOP), 0);
	c.s = &s;
	c.fd = fd;
	assert_int_equal(pthread_create(&th, NULL, crash_scan, &c), 0);
	for (int i = 0; i < 3000; i++) {
		pid_t tid = __atomic_load_n(&c.tid, __ATOMIC_SEQ_CST);

		if (tid && in_poll(tid))
			break;
		usleep(1000);
	}
	assert_int_equal(kill(pid, SIGKILL), 0);
	pthread_join(th, NULL);
	assert_int_equal(c.st, AV_ERROR);
	assert_non_null(strstr(c.r.reason, "died during the scan"));
	assert_int_equal(av_scan(&s, fd, &r), AV_VIRUS);
	assert_true(av_helper_pid() != pid);
	close(fd);
}

struct worker {
	const struct av_settings *s;
	int n, fd_clean, fd_virus;
	int errors, wrong, renamed;
	pthread_t tid;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	struct av_result r;

	for (int i = 0; i < w->n; i++) {
		int infected = i % 2;
		/* each thread its own descriptor: the helper seeks it */
		int fd = dup(infected ? w->fd_virus : w->fd_clean);
		enum av_status st = av_scan(w->s, fd, &r);

		close(fd);
		if (st == AV_ERROR)
			w->errors++;
		else if (st != (infected ? AV_VIRUS : AV_CLEAN))
			w->wrong++;
		else if (st == AV_VIRUS && strcmp(r.name, "Test.Eicar.New.UNOFFICIAL") == 0)
			w->renamed++;
	}
	return NULL;
}

/* Several threads scan while the database is replaced again and again. */
static void test_reload_under_load(void **state)
{
	struct av_settings s;
	struct worker w[4];
	int errors = 0, wrong = 0, renamed = 0, fdc = make_msg(0), fdv = make_msg(1);

	(void)state;
	settings(&s, dbdir);
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){ .s = &s, .n = 300, .fd_clean = fdc, .fd_virus = fdv };
		assert_int_equal(pthread_create(&w[i].tid, NULL, work, &w[i]), 0);
	}
	for (int k = 0; k < 8; k++) {
		usleep(300000);
		write_db("test.ndb", k % 2 ? "Test.Eicar" : "Test.Eicar.New");
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(w[i].tid, NULL);
		errors += w[i].errors;
		wrong += w[i].wrong;
		renamed += w[i].renamed;
	}
	printf("reload under load: 1200 scans, %d errors, %d wrong, %d with the new name\n", errors,
	       wrong, renamed);
	assert_int_equal(errors, 0);
	assert_int_equal(wrong, 0);
	/* the scans may all end before a reload has been seen; then scan once
	 * more after the poll interval */
	if (renamed == 0) {
		struct av_result r;
		int fd = dup(fdv);

		write_db("test.ndb", "Test.Eicar.New");
		sleep(2);
		assert_int_equal(av_scan(&s, fd, &r), AV_VIRUS);
		assert_string_equal(r.name, "Test.Eicar.New.UNOFFICIAL");
		close(fd);
	}
	close(fdc);
	close(fdv);
}

/* Scans per second with 1, 2 and 4 threads (printed, not asserted). */
static void test_throughput(void **state)
{
	struct av_settings s;
	int fd = make_msg(0), fdv = make_msg(1);

	(void)state;
	write_db("test.ndb", "Test.Eicar");
	settings(&s, dbdir);
	for (int nt = 1; nt <= 4; nt *= 2) {
		struct worker w[4];
		long long t0 = now_ms(), ms;

		for (int i = 0; i < nt; i++) {
			w[i] = (struct worker){
				.s = &s, .n = 800 / nt, .fd_clean = fd, .fd_virus = fdv
			};
			assert_int_equal(pthread_create(&w[i].tid, NULL, work, &w[i]), 0);
		}
		for (int i = 0; i < nt; i++)
			pthread_join(w[i].tid, NULL);
		ms = now_ms() - t0;
		printf("throughput: %d thread(s): 800 scans in %lld ms, %.0f scans/s\n", nt, ms,
		       ms > 0 ? 800000.0 / (double)ms : 0.0);
		for (int i = 0; i < nt; i++)
			assert_int_equal(w[i].errors + w[i].wrong, 0);
	}
	close(fd);
	close(fdv);
}

/* Threads of process pid (its /proc/PID/task entries), -1 if gone. */
static int task_count(pid_t pid)
{
	char path[64];
	DIR *d;
	struct dirent *e;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%ld/task", (long)pid);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* The most threads the helper had while 8 threads made 40 scans each with
 * settings s; asserts every answer was right. */
static int max_helper_threads(const struct av_settings *s)
{
	struct worker w[8];
	int fdc = make_msg(0), fdv = make_msg(1), most = 0, running = 8, done[8] = { 0 };
	struct av_result r;
	int fd = dup(fdc);

	/* the helper for these settings, started and its database loaded */
	assert_int_equal(av_scan(s, fd, &r), AV_CLEAN);
	close(fd);
	for (int i = 0; i < 8; i++) {
		w[i] = (struct worker){ .s = s, .n = 40, .fd_clean = fdc, .fd_virus = fdv };
		assert_int_equal(pthread_create(&w[i].tid, NULL, work, &w[i]), 0);
	}
	while (running > 0) {
		int n = task_count(av_helper_pid());

		if (n > most)
			most = n;
		running = 0;
		for (int i = 0; i < 8; i++)
			if (!done[i] && pthread_tryjoin_np(w[i].tid, NULL) == 0)
				done[i] = 1;
			else if (!done[i])
				running++;
		usleep(200);
	}
	for (int i = 0; i < 8; i++)
		assert_int_equal(w[i].errors + w[i].wrong, 0);
	close(fdc);
	close(fdv);
	return most;
}

/* clamav.max_scans: the helper runs at most that many scans at a time; the
 * others wait in line and are answered all the same. */
static void test_max_scans(void **state)
{
	struct av_settings s;
	int bounded, unbounded;

	(void)state;
	write_db("test.ndb", "Test.Eicar");
	settings(&s, dbdir);
	s.max_scans = 2;
	bounded = max_helper_threads(&s);
	s.max_scans = 0; /* no bound (other settings: a new helper) */
	unbounded = max_helper_threads(&s);
	printf("max_scans: 8 clients, helper threads at most %d with max_scans = 2, %d without "
	       "a bound\n",
	       bounded, unbounded);
	/* the main thread, the reload thread and two scan threads */
	assert_true(bounded <= 4);
	assert_true(bounded >= 3);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_clean_and_virus),
		cmocka_unit_test(test_killed_between_scans),
		cmocka_unit_test(test_crash_during_scan),
		cmocka_unit_test(test_reload_under_load),
		cmocka_unit_test(test_throughput),
		cmocka_unit_test(test_no_database),
		cmocka_unit_test(test_tmpdir),
		cmocka_unit_test(test_malformed_database),
		cmocka_unit_test(test_max_scans),
	};

	if (argc > 1 && strcmp(argv[1], "--av-helper") == 0)
		return av_helper_main(argc, argv);
	log_open("test_av", "stderr", "mail");
	return cmocka_run_group_tests(tests, setup, teardown);
}
