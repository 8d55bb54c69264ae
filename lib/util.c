/* lib/util.c - memory and string helpers; see util.h for the contract. */
#include "util.h"
#include "log.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>
#include <malloc.h>

static void oom(size_t n)
{
	log_msg(LOG_LVL_ERR, "out of memory allocating %zu bytes", n);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		oom(n);
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL)
		oom(n * size);
	return p;
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (q == NULL)
		oom(n);
	return q;
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = xmalloc(len + 1);

	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&p, fmt, ap);
	va_end(ap);
	if (n < 0)
		oom(0);
	return p;
}

size_t bcopy_str(char *dst, size_t dstsize, const char *src)
{
	size_t len = strlen(src);

	if (dstsize > 0) {
		size_t n = len < dstsize - 1 ? len : dstsize - 1;

		memmove(dst, src, n); /* dst may be src: str_lower() in place */
		dst[n] = '\0';
	}
	return len;
}

void bappend(char *dst, size_t dstsize, const char *fmt, ...)
{
	size_t len = strnlen(dst, dstsize);
	va_list ap;

	if (len + 1 >= dstsize)
		return;
	va_start(ap, fmt);
	vsnprintf(dst + len, dstsize - len, fmt, ap);
	va_end(ap);
}

char *str_trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
		*--end = '\0';
	return s;
}

size_t str_lower(char *dst, size_t dstsize, const char *src)
{
	size_t len = bcopy_str(dst, dstsize, src);

	for (char *p = dst; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return len;
}

long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

time_t clock_now(void)
{
	static const char *path;
	static int looked;
	char buf[32];
	ssize_t n;
	int fd;

	if (!__atomic_load_n(&looked, __ATOMIC_ACQUIRE)) {
		path = getenv("PORTCULLIS_CLOCK_FILE");
		__atomic_store_n(&looked, 1, __ATOMIC_RELEASE);
	}
	if (path == NULL || *path == '\0')
		return time(NULL);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return time(NULL);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return time(NULL);
	buf[n] = '\0';
	char *end;
	long long v = strtoll(buf, &end, 10);
	if (end == buf || v <= 0)
		return time(NULL);
	return (time_t)v;
}

void limit_malloc_arenas(void)
{
#ifdef M_ARENA_MAX
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (getenv("MALLOC_ARENA_MAX") == NULL)
		mallopt(M_ARENA_MAX, n > 2 ? (int)(n < 1024 ? n : 1024) : 2);
#endif
}
