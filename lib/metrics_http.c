/* lib/metrics_http.c - the metrics listener and its client; see
 * metrics_http.h
 *
 * Threading: the listener is one thread that owns its sockets; it takes a
 * reference to the running configuration per request (conf_current()) and
 * renders with metrics_render().  metrics_http_stop() wakes it through a
 * pipe and joins it.  Every socket is non-blocking and every wait is a
 * poll() bounded by the request's deadline, so no client can hold the
 * thread longer than METRICS_HTTP_TIMEOUT_MS.
 */
#include "metrics_http.h"
#include "conf.h"
#include "encode.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct metrics_http {
	int fd;
	int wake[2]; /* pipe: a byte on wake[1] stops the thread */
	pthread_t tid;
	int running;
};

/* --- addresses ------------------------------------------------------------ */

static int is_loopback(const struct sockaddr_storage *sa)
{
	if (sa->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		return (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->ss_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		if (IN6_IS_ADDR_LOOPBACK(a))
			return 1;
		return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
	}
	return 0;
}

int metrics_listen_parse(const char *spec, int allow_remote, struct sockaddr_storage *sa,
                         socklen_t *salen, char *err, size_t errsize)
{
	char host[128], *end, shown[100];
	const char *port;
	struct addrinfo hints = { 0 }, *ai = NULL;
	unsigned long pn;
	int rc;

	if (spec[0] == '[') {
		const char *rb = strchr(spec, ']');

		if (rb == NULL || rb[1] != ':' || (size_t)(rb - spec - 1) >= sizeof(host))
			goto bad;
		memcpy(host, spec + 1, (size_t)(rb - spec - 1));
		host[rb - spec - 1] = '\0';
		port = rb + 2;
	} else {
		const char *colon = strrchr(spec, ':');

		if (colon == NULL || strchr(spec, ':') != colon ||
		    (size_t)(colon - spec) >= sizeof(host))
			goto bad;
		memcpy(host, spec, (size_t)(colon - spec));
		host[colon - spec] = '\0';
		port = colon + 1;
	}
	errno = 0;
	pn = strtoul(port, &end, 10);
	if (*port < '0' || *port > '9' || *end || errno || pn < 1 || pn > 65535) {
		snprintf(err, errsize, "metrics.listen: invalid port in '%s' (1 to 65535)",
		         enc_log(shown, sizeof(shown), spec, 80));
		return -1;
	}
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(host, port, &hints, &ai);
	if (rc != 0 || ai == NULL || ai->ai_addrlen > sizeof(*sa)) {
		if (ai)
			freeaddrinfo(ai);
		goto bad;
	}
	memset(sa, 0, sizeof(*sa));
	memcpy(sa, ai->ai_addr, ai->ai_addrlen);
	*salen = ai->ai_addrlen;
	freeaddrinfo(ai);
	if (!allow_remote && !is_loopback(sa)) {
		snprintf(err, errsize,
		         "metrics.listen: %s is not a loopback address "
		         "(set metrics.allow_remote = yes to listen on it)",
		         enc_log(shown, sizeof(shown), host, 80));
		return -1;
	}
	return 0;
bad:
	snprintf(err, errsize,
	         "metrics.listen: invalid '%s' (ADDRESS:PORT or [IPv6]:PORT, numeric)",
	         enc_log(shown, sizeof(shown), spec, 80));
	return -1;
}

/* --- the listener ----------------------------------------------------------- */

struct metrics_http *metrics_http_open(const char *spec, int allow_remote, char *err,
                                       size_t errsize)
{
	struct sockaddr_storage sa;
	socklen_t salen;
	struct metrics_http *h;
	int one = 1;

	if (metrics_listen_parse(spec, allow_remote, &sa, &salen, err, errsize) < 0)
		return NULL;
	h = xcalloc(1, sizeof(*h));
	h->wake[0] = h->wake[1] = -1;
	h->fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (h->fd < 0)
		goto fail;
	setsockopt(h->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (sa.ss_family == AF_INET6)
		setsockopt(h->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(h->fd, (struct sockaddr *)&sa, salen) < 0 || listen(h->fd, 16) < 0)
		goto fail;
	if (pipe2(h->wake, O_CLOEXEC | O_NONBLOCK) < 0)
		goto fail;
	metrics_start_clock();
	return h;
fail : {
	char shown[100];

	snprintf(err, errsize, "metrics.listen: %s: %s", enc_log(shown, sizeof(shown), spec, 80),
	         strerror(errno));
}
	if (h->fd >= 0)
		close(h->fd);
	free(h);
	return NULL;
}

/* Wait until fd is ready for events or the deadline passes or a stop is
 * asked.  1 ready, 0 timeout, -1 stop or error. */
static int wait_fd(struct metrics_http *h, int fd, short events, long long deadline)
{
	for (;;) {
		struct pollfd p[2] = { { fd, events, 0 }, { h->wake[0], POLLIN, 0 } };
		long long left = deadline - now_ms();
		int n;

		if (left <= 0)
			return 0;
		n = poll(p, 2, (int)(left > 1000 ? 1000 : left));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || p[1].revents)
			return -1;
		if (p[0].revents)
			return 1;
	}
}

static void send_all(struct metrics_http *h, int fd, const char *p, size_t len, long long deadline)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (wait_fd(h, fd, POLLOUT, deadline) != 1)
				return;
		} else {
			return;
		}
	}
}

static void respond(struct metrics_http *h, int fd, long long deadline, int status,
                    const char *reason, const char *ctype, const char *body, size_t len,
                    int head_only)
{
	char hdr[512];
	int n;

	n = snprintf(hdr, sizeof(hdr),
	             "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
	             "%sConnection: close\r\n\r\n",
	             status, reason, ctype, len, status == 405 ? "Allow: GET, HEAD\r\n" : "");
	send_all(h, fd, hdr, (size_t)n, deadline);
	if (!head_only)
		send_all(h, fd, body, len, deadline);
}

static void error_page(struct metrics_http *h, int fd, long long deadline, int status,
                       const char *reason)
{
	char body[128];
	int n = snprintf(body, sizeof(body), "%d %s\n", status, reason);

	respond(h, fd, deadline, status, reason, "text/plain; charset=utf-8", body, (size_t)n, 0);
}

int metrics_http_request(char *head, int *head_only)
{
	char *eol, *sp1, *sp2, *q;

	*head_only = 0;
	/* The request line: METHOD SP TARGET SP HTTP/x.y */
	eol = strpbrk(head, "\r\n");
	if (eol == NULL)
		return 400;
	*eol = '\0';
	sp1 = strchr(head, ' ');
	sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (sp1 == NULL || sp2 == NULL || strchr(sp2 + 1, ' ') || strncmp(sp2 + 1, "HTTP/", 5) ||
	    sp1[1] != '/')
		return 400;
	*sp1 = *sp2 = '\0';
	*head_only = strcmp(head, "HEAD") == 0;
	if (strcmp(head, "GET") != 0 && !*head_only)
		return 405;
	if ((q = strchr(sp1 + 1, '?')) != NULL)
		*q = '\0';
	return strcmp(sp1 + 1, "/metrics") == 0 ? 200 : 404;
}

/* One request on fd: read the head (bounded in size and time), answer,
 * return; the caller closes. */
static void serve_one(struct metrics_http *h, int fd)
{
	char req[METRICS_HTTP_REQ_MAX + 1];
	size_t len = 0;
	long long deadline = now_ms() + METRICS_HTTP_TIMEOUT_MS;
	int head_only;

	for (;;) {
		ssize_t n;

		if (len >= METRICS_HTTP_REQ_MAX) {
			error_page(h, fd, deadline, 431, "Request Header Fields Too Large");
			return;
		}
		n = recv(fd, req + len, METRICS_HTTP_REQ_MAX - len, 0);
		if (n > 0) {
			len += (size_t)n;
			req[len] = '\0';
			if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
				break;
			if (memchr(req, '\0', len)) {
				error_page(h, fd, deadline, 400, "Bad Request");
				return;
			}
			continue;
		}
		if (n == 0)
			return; /* the client went away */
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return;
		int w = wait_fd(h, fd, POLLIN, deadline);

		if (w == 0)
			error_page(h, fd, deadline, 408, "Request Timeout");
		if (w != 1)
			return;
	}
	switch (metrics_http_request(req, &head_only)) {
	case 200: break;
	case 404: error_page(h, fd, deadline, 404, "Not Found"); return;
	case 405: error_page(h, fd, deadline, 405, "Method Not Allowed"); return;
	default: error_page(h, fd, deadline, 400, "Bad Request"); return;
	}
	{
		struct conf *c = conf_current();
		size_t blen;
		char *body = metrics_render(c, &blen);

		conf_unref(c);
		respond(h, fd, deadline, 200, "OK", "text/plain; version=0.0.4; charset=utf-8",
		        body, blen, head_only);
		free(body);
	}
}

static void *listener(void *arg)
{
	struct metrics_http *h = arg;

	for (;;) {
		struct pollfd p[2] = { { h->fd, POLLIN, 0 }, { h->wake[0], POLLIN, 0 } };
		int fd;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_msg(LOG_LVL_ERR, "metrics listener: poll: %s", strerror(errno));
			break;
		}
		if (p[1].revents)
			break;
		fd = accept4(h->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM)
				usleep(100000); /* do not spin; the mail threads come first */
			continue;
		}
		serve_one(h, fd);
		close(fd);
	}
	return NULL;
}

int metrics_http_start(struct metrics_http *h, char *err, size_t errsize)
{
	int rc = pthread_create(&h->tid, NULL, listener, h);

	if (rc != 0) {
		snprintf(err, errsize, "metrics.listen: cannot start the listener thread: %s",
		         strerror(rc));
		return -1;
	}
	h->running = 1;
	return 0;
}

void metrics_http_stop(struct metrics_http *h)
{
	if (h == NULL)
		return;
	if (h->running) {
		if (write(h->wake[1], "x", 1) != 1)
			log_msg(LOG_LVL_WARN, "metrics listener: cannot wake it: %s",
			        strerror(errno));
		pthread_join(h->tid, NULL);
	}
	close(h->fd);
	close(h->wake[0]);
	close(h->wake[1]);
	free(h);
	metrics_release();
}

/* --- the client --------------------------------------------------------- */

#define CLIENT_MAX (16 * 1024 * 1024)

int metrics_http_get(const char *spec, const char *path, int timeout_ms, int *status, char **body,
                     size_t *len, char *err, size_t errsize)
{
	struct sockaddr_storage sa;
	socklen_t salen;
	long long deadline = now_ms() + timeout_ms;
	char req[600], *buf = NULL, *hend;
	size_t blen = 0, cap = 0, off = 0;
	int fd = -1, rc, n;
	struct pollfd p;

	*body = NULL;
	if (metrics_listen_parse(spec, 1, &sa, &salen, err, errsize) < 0)
		return -1;
	fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errsize, "socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sa, salen) < 0 && errno != EINPROGRESS)
		goto syserr;
	p = (struct pollfd){ fd, POLLOUT, 0 };
	if (poll(&p, 1, timeout_ms) != 1) {
		errno = ETIMEDOUT;
		goto syserr;
	}
	{
		int e = 0;
		socklen_t el = sizeof(e);

		getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el);
		if (e) {
			errno = e;
			goto syserr;
		}
	}
	n = snprintf(req, sizeof(req), "GET %.500s HTTP/1.0\r\nHost: portcullis\r\n\r\n", path);
	while (off < (size_t)n) {
		ssize_t w = send(fd, req + off, (size_t)n - off, MSG_NOSIGNAL);

		if (w < 0 && errno != EAGAIN && errno != EINTR)
			goto syserr;
		if (w > 0)
			off += (size_t)w;
		else if (poll(&(struct pollfd){ fd, POLLOUT, 0 }, 1, 100) < 0)
			goto syserr;
		if (now_ms() > deadline) {
			errno = ETIMEDOUT;
			goto syserr;
		}
	}
	for (;;) {
		ssize_t r;
		long long left = deadline - now_ms();

		if (left <= 0) {
			errno = ETIMEDOUT;
			goto syserr;
		}
		p = (struct pollfd){ fd, POLLIN, 0 };
		if (poll(&p, 1, (int)left) < 0 && errno != EINTR)
			goto syserr;
		if (blen + 4096 + 1 > cap) {
			if (cap >= CLIENT_MAX) {
				snprintf(err, errsize, "%s: the answer is larger than %d bytes",
				         spec, CLIENT_MAX);
				goto fail;
			}
			cap = cap ? cap * 2 : 65536;
			buf = xrealloc(buf, cap);
		}
		r = recv(fd, buf + blen, cap - blen - 1, 0);
		if (r == 0)
			break;
		if (r < 0 && errno != EAGAIN && errno != EINTR)
			goto syserr;
		if (r > 0)
			blen += (size_t)r;
	}
	close(fd);
	fd = -1;
	if (buf == NULL)
		buf = xmalloc(1);
	buf[blen] = '\0';
	if (sscanf(buf, "HTTP/1.%*1[01] %3d", &rc) != 1 ||
	    (hend = strstr(buf, "\r\n\r\n")) == NULL) {
		snprintf(err, errsize, "%s: the answer is not HTTP", spec);
		goto fail;
	}
	hend += 4;
	*status = rc;
	*len = blen - (size_t)(hend - buf);
	memmove(buf, hend, *len + 1);
	*body = buf;
	return 0;
syserr:
	snprintf(err, errsize, "%s: %s", spec, strerror(errno));
fail:
	if (fd >= 0)
		close(fd);
	free(buf);
	return -1;
}
