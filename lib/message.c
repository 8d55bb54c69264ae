/* lib/message.c - the message as received, in memory then in a memfd
 *
 * See message.h.  Writes to the memfd are plain write(2) calls at the end
 * of the file; a short or failed write sets m->error once and stops
 * keeping bytes (the content checks then refuse to call the message
 * clean).  Not thread-safe: one transaction, one thread at a time.
 */
#include "message.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct message *message_new(size_t memory_size, size_t max_size)
{
	struct message *m = xcalloc(1, sizeof(*m));

	m->fd = -1;
	m->memory_size = memory_size;
	m->max_size = max_size;
	return m;
}

void message_free(struct message *m)
{
	if (m == NULL)
		return;
	if (m->mime_free)
		m->mime_free(m->mime);
	if (m->map)
		munmap(m->map, m->map_len);
	if (m->fd >= 0)
		close(m->fd);
	free(m->mem);
	free(m);
}

static void set_error(struct message *m, const char *what, int err)
{
	if (m->error[0] == '\0')
		snprintf(m->error, sizeof(m->error), "%s: %s", what, strerror(err));
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Move the bytes kept in memory to a new memfd. */
static int spill(struct message *m)
{
	int fd = memfd_create("portcullis-msg", MFD_CLOEXEC);

	if (fd < 0) {
		set_error(m, "memfd_create", errno);
		return -1;
	}
	if (write_all(fd, m->mem, m->len) < 0) {
		set_error(m, "writing the message to a memfd", errno ? errno : EIO);
		close(fd);
		return -1;
	}
	m->fd = fd;
	free(m->mem);
	m->mem = NULL;
	m->cap = 0;
	return 0;
}

/* Keep n more bytes (or what fits below max_size). */
static void keep(struct message *m, const unsigned char *p, size_t n)
{
	m->total += n;
	if (m->total > m->max_size)
		m->oversize = 1;
	if (m->error[0] || m->map)
		return;
	if (n > m->max_size - m->len)
		n = m->max_size - m->len;
	if (n == 0)
		return;
	if (m->fd < 0 && m->len + n > m->memory_size && spill(m) < 0)
		return;
	if (m->fd >= 0) {
		if (write_all(m->fd, p, n) < 0) {
			set_error(m, "writing the message to a memfd", errno ? errno : EIO);
			return;
		}
	} else {
		if (m->len + n > m->cap) {
			size_t cap = m->cap ? m->cap : 4096;

			while (cap < m->len + n)
				cap *= 2;
			if (cap > m->memory_size)
				cap = m->memory_size;
			m->mem = xrealloc(m->mem, cap);
			m->cap = cap;
		}
		memcpy(m->mem + m->len, p, n);
	}
	m->len += n;
}

/* Append s with every bare LF (and CRLF) written as CRLF. */
static void keep_crlf(struct message *m, const char *s)
{
	const char *p = s;

	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);

		if (n > 0 && p[n - 1] == '\r')
			n--;
		keep(m, (const unsigned char *)p, n);
		if (nl == NULL)
			break;
		keep(m, (const unsigned char *)"\r\n", 2);
		p = nl + 1;
	}
}

void message_header(struct message *m, const char *name, const char *value)
{
	keep_crlf(m, name);
	keep(m, (const unsigned char *)": ", 2);
	keep_crlf(m, value);
	keep(m, (const unsigned char *)"\r\n", 2);
}

void message_eoh(struct message *m)
{
	keep(m, (const unsigned char *)"\r\n", 2);
}

void message_body(struct message *m, const unsigned char *buf, size_t len)
{
	keep(m, buf, len);
}

int message_fd(struct message *m)
{
	if (m->error[0])
		return -1;
	if (m->fd < 0 && spill(m) < 0)
		return -1;
	if (lseek(m->fd, 0, SEEK_SET) < 0) {
		set_error(m, "lseek", errno);
		return -1;
	}
	return m->fd;
}

const unsigned char *message_data(struct message *m, size_t *len)
{
	*len = m->len;
	if (m->error[0])
		return NULL;
	if (m->fd < 0)
		return m->mem ? m->mem : (const unsigned char *)"";
	if (m->map == NULL && m->len > 0) {
		void *p = mmap(NULL, m->len, PROT_READ, MAP_SHARED, m->fd, 0);

		if (p == MAP_FAILED) {
			set_error(m, "mmap", errno);
			return NULL;
		}
		m->map = p;
		m->map_len = m->len;
	}
	return m->map ? m->map : (const unsigned char *)"";
}
