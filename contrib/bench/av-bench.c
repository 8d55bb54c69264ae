/* contrib/bench/av-bench.c - CPU per message of portcullis' antivirus path
 * alone (lib/av.c: the message in a memfd, the request to the scanner
 * helper, the scan, the answer), without an MTA and without libmilter
 *
 *   av-bench DBDIR TMPDIR KIND COUNT
 *   av-bench --dump DIR KIND FIRST COUNT   (the messages as files, no scan)
 *     KIND: 4k (plain text), 100k (plain text), mime (6 KB, a text part and
 *     a base64 attachment), 1m (1 MB plain text)
 *     TMPDIR: clamav.tmpdir ("" for the default)
 *
 * Built by contrib/bench/avpath.sh against lib/libportcullis.a; it is run
 * again with --av-helper as the scanner helper, like the daemon.  Prints
 * one key=value line: the CPU of this process (the milter side) and of the
 * helper, per message, in microseconds.  The messages differ from one
 * another (a counter in each), so libclamav's clean-file cache never hits.
 */
#define _GNU_SOURCE
#include "av.h"
#include "log.h"
#include "util.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

static long long helper_ticks(pid_t pid)
{
	char path[64], buf[1024];
	FILE *fp;
	unsigned long long ut = 0, st = 0;
	char *p;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	fp = fopen(path, "r");
	if (fp == NULL)
		return 0;
	if (fgets(buf, sizeof(buf), fp) && (p = strrchr(buf, ')')) != NULL)
		sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st);
	fclose(fp);
	return (long long)(ut + st);
}

static long long self_us(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (long long)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec +
	       (long long)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec;
}

static size_t text(char *dst, size_t size, unsigned seed)
{
	static const char *w[] = { "the", "of", "and",  "to",  "in", "is", "that", "for",
		                   "it",  "as", "with", "was", "on", "be", "at",   "by" };
	size_t k = 0;
	int col = 0;

	while (k + 16 < size) {
		const char *x = w[(seed = seed * 1103515245u + 12345u) >> 16 & 15];

		k += (size_t)sprintf(dst + k, "%s ", x);
		if (++col == 12) {
			k += (size_t)sprintf(dst + k, "\r\n");
			col = 0;
		}
	}
	dst[k] = '\0';
	return k;
}

static int make_msg(const char *kind, unsigned i)
{
	size_t size = strcmp(kind, "100k") == 0 ? 100000 : strcmp(kind, "1m") == 0 ? 1000000 : 4000;
	char *body = xmalloc(size + 64), *att = NULL, *msg;
	int fd;

	text(body, size, i);
	if (strcmp(kind, "mime") == 0) {
		static const char b64[] =
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
		att = xmalloc(2200);
		for (int k = 0; k < 2100; k++)
			att[k] = k % 77 == 76 ? '\n' : b64[(i * 7 + (unsigned)k * 13) % 64];
		att[2100] = '\0';
		body[2000] = '\0';
		msg = xasprintf("From: a%u@example.net\r\nTo: b@example.test\r\nSubject: m %u\r\n"
		                "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; "
		                "boundary=\"b%u\"\r\n\r\n--b%u\r\nContent-Type: text/plain\r\n\r\n"
		                "%s\r\n--b%u\r\nContent-Type: application/pdf\r\n"
		                "Content-Disposition: attachment; filename=\"r.pdf\"\r\n"
		                "Content-Transfer-Encoding: base64\r\n\r\n%s\r\n--b%u--\r\n",
		                i, i, i, i, body, i, att, i);
	} else {
		msg = xasprintf("From: a%u@example.net\r\nTo: b@example.test\r\nSubject: m %u\r\n"
		                "\r\n%s\r\n",
		                i, i, body);
	}
	fd = memfd_create("portcullis-msg", MFD_CLOEXEC);
	if (fd < 0 || write(fd, msg, strlen(msg)) != (ssize_t)strlen(msg)) {
		perror("memfd");
		exit(1);
	}
	free(msg);
	free(att);
	free(body);
	return fd;
}

int main(int argc, char **argv)
{
	struct av_settings s;
	struct av_result res;
	long long t0, h0, self, helper, wall;
	pid_t hp;
	int n, bad = 0;
	long hz = sysconf(_SC_CLK_TCK);

	if (argc > 1 && strcmp(argv[1], "--av-helper") == 0)
		return av_helper_main(argc, argv);
	if (argc == 6 && strcmp(argv[1], "--dump") == 0) {
		/* the messages FIRST.. as files DIR/m.N, for another scanner
		 * (contrib/bench/avpeer.sh gives them to clamd) */
		unsigned first = (unsigned)atoi(argv[4]);

		for (unsigned i = first; i < first + (unsigned)atoi(argv[5]); i++) {
			char path[1024], buf[65536];
			int fd = make_msg(argv[3], i), out;
			ssize_t k;

			snprintf(path, sizeof(path), "%s/m.%u", argv[2], i);
			out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
			if (out < 0 || lseek(fd, 0, SEEK_SET) < 0) {
				perror(path);
				return 1;
			}
			while ((k = read(fd, buf, sizeof(buf))) > 0)
				if (write(out, buf, (size_t)k) != k) {
					perror(path);
					return 1;
				}
			close(out);
			close(fd);
		}
		return 0;
	}
	if (argc != 5) {
		fprintf(stderr, "usage: av-bench DBDIR TMPDIR 4k|100k|mime|1m COUNT\n");
		return 2;
	}
	log_open("av-bench", "stderr", "mail");
	n = atoi(argv[4]);
	memset(&s, 0, sizeof(s));
	bcopy_str(s.database, sizeof(s.database), argv[1]);
	bcopy_str(s.tmpdir, sizeof(s.tmpdir), argv[2]);
	s.max_scansize = 419430400;
	s.max_filesize = 104857600;
	s.max_recursion = 17;
	s.max_files = 10000;
	s.max_scantime = 120000;
	s.reload_interval = 60;
	s.timeout_ms = 60000;
	bcopy_str(s.log_target, sizeof(s.log_target), "stderr");
	bcopy_str(s.log_facility, sizeof(s.log_facility), "mail");
	/* warm-up: the helper starts and loads the database */
	for (int i = 0; i < 20; i++) {
		int fd = make_msg(argv[3], 1000000u + (unsigned)i);

		if (av_scan(&s, fd, &res) != AV_CLEAN) {
			fprintf(stderr, "av-bench: warm-up scan: %s\n", res.reason);
			return 1;
		}
		close(fd);
	}
	hp = av_helper_pid();
	t0 = now_ms();
	self = 0;
	h0 = helper_ticks(hp);
	for (int i = 0; i < n; i++) {
		int fd = make_msg(argv[3], (unsigned)i); /* not timed: the milter has it already */
		long long c0 = self_us();

		if (av_scan(&s, fd, &res) != AV_CLEAN)
			bad++;
		self += self_us() - c0;
		close(fd);
	}
	wall = now_ms() - t0;
	helper = (helper_ticks(hp) - h0) * 1000000 / hz;
	printf("kind=%s n=%d bad=%d milter_us=%lld helper_us=%lld total_us=%lld wall_ms=%lld\n",
	       argv[3], n, bad, self / n, helper / n, (self + helper) / n, wall);
	av_stop();
	return bad != 0;
}
