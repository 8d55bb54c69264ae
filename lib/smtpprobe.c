/* lib/smtpprobe.c - SMTP verification probes; see smtpprobe.h */
#include "smtpprobe.h"
#include "util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LINE_MAX_KEEP 1024

struct sess {
	int fd;
	long long deadline;
	char buf[4096]; /* received, not yet consumed */
	size_t len;
	int eof;
};

/* A reply: its code, and its text (sanitised, lines joined). */
struct reply {
	int code; /* 0: none (error) */
	char text[SMTPPROBE_TEXT_MAX + 1];
	char xcode[10];
};

static int left_ms(const struct sess *s)
{
	long long l = s->deadline - now_ms();

	return l <= 0 ? 0 : l > 3600000 ? 3600000 : (int)l;
}

/* Wait until fd is ready for ev or the deadline.  1 ready, 0 timeout, -1. */
static int wait_fd(struct sess *s, short ev)
{
	for (;;) {
		struct pollfd p = { .fd = s->fd, .events = ev };
		int ms = left_ms(s), n;

		if (ms == 0)
			return 0;
		n = poll(&p, 1, ms);
		if (n > 0)
			return 1;
		if (n == 0)
			return 0;
		if (errno != EINTR)
			return -1;
	}
}

/* Read more into s->buf.  1 got bytes, 0 timeout, -1 error or EOF. */
static int fill(struct sess *s)
{
	ssize_t n;
	int w;

	if (s->len == sizeof(s->buf))
		return 1;
	for (;;) {
		n = recv(s->fd, s->buf + s->len, sizeof(s->buf) - s->len, 0);
		if (n > 0) {
			s->len += (size_t)n;
			return 1;
		}
		if (n == 0) {
			s->eof = 1;
			return -1;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		if ((w = wait_fd(s, POLLIN)) <= 0)
			return w;
	}
}

/* One line (without CR LF) into line (at most LINE_MAX_KEEP - 1 bytes kept;
 * the rest of a longer line is read and dropped).  *total counts every byte
 * read for this reply.  1 got a line, 0 timeout, -1 error/EOF/too big. */
static int get_line(struct sess *s, char *line, size_t *total)
{
	size_t kept = 0;

	for (;;) {
		char *nl = memchr(s->buf, '\n', s->len);
		size_t take = nl ? (size_t)(nl - s->buf) + 1 : s->len;
		size_t data = nl ? take - 1 : take;
		int r;

		if (kept < LINE_MAX_KEEP - 1) {
			size_t c =
			    data < LINE_MAX_KEEP - 1 - kept ? data : LINE_MAX_KEEP - 1 - kept;

			memcpy(line + kept, s->buf, c);
			kept += c;
		}
		*total += take;
		memmove(s->buf, s->buf + take, s->len - take);
		s->len -= take;
		if (*total > SMTPPROBE_REPLY_MAX)
			return -1;
		if (nl) {
			if (kept && line[kept - 1] == '\r')
				kept--;
			line[kept] = '\0';
			return 1;
		}
		if ((r = fill(s)) <= 0)
			return r;
	}
}

/* Append printable text to dst: control bytes, non-ASCII and '%' become '?',
 * runs of spaces one space. */
static void add_text(char *dst, size_t dstsize, const char *src)
{
	size_t o = strlen(dst);

	if (o && o + 1 < dstsize && *src)
		dst[o++] = ' ';
	for (; *src && o + 1 < dstsize; src++) {
		unsigned char ch = (unsigned char)*src;

		if (ch == ' ' && o && dst[o - 1] == ' ')
			continue;
		dst[o++] = (ch < 0x20 || ch > 0x7e || ch == '%') ? '?' : (char)ch;
	}
	dst[o] = '\0';
}

/* "5.1.1 " at the start of t with class c ('2', '4', '5'): its length. */
static size_t xcode_len(const char *t, char c)
{
	size_t i = 0, n;

	if (t[0] != c || t[1] != '.')
		return 0;
	i = 2;
	for (n = 0; isdigit((unsigned char)t[i]) && n < 3; n++)
		i++;
	if (n == 0 || t[i] != '.')
		return 0;
	i++;
	for (n = 0; isdigit((unsigned char)t[i]) && n < 3; n++)
		i++;
	if (n == 0 || (t[i] != ' ' && t[i] != '\0'))
		return 0;
	return i;
}

/* Read one reply.  1 ok, 0 timeout, -1 error. */
static int get_reply(struct sess *s, struct reply *r)
{
	char line[LINE_MAX_KEEP];
	size_t total = 0;
	int nlines = 0, rc;

	memset(r, 0, sizeof(*r));
	for (;;) {
		if ((rc = get_line(s, line, &total)) <= 0)
			return rc;
		if (++nlines > SMTPPROBE_LINES_MAX)
			return -1;
		if (!isdigit((unsigned char)line[0]) || !isdigit((unsigned char)line[1]) ||
		    !isdigit((unsigned char)line[2]) || line[0] < '2' || line[0] > '5' ||
		    (line[3] != ' ' && line[3] != '-' && line[3] != '\0'))
			return -1;
		int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
		if (r->code && code != r->code)
			return -1;
		r->code = code;
		const char *t = line[3] ? line + 4 : line + 3;
		size_t xl = xcode_len(t, line[0]);
		if (xl) {
			if (!r->xcode[0] && xl < sizeof(r->xcode))
				memcpy(r->xcode, t, xl), r->xcode[xl] = '\0';
			t += xl;
			while (*t == ' ')
				t++;
		}
		add_text(r->text, sizeof(r->text), t);
		if (line[3] != '-')
			return 1;
	}
}

/* Send a whole command.  1 ok, 0 timeout, -1 error. */
static int put(struct sess *s, const char *cmd)
{
	size_t off = 0, len = strlen(cmd);

	while (off < len) {
		ssize_t n = send(s->fd, cmd + off, len - off, MSG_NOSIGNAL);
		int w;

		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		if ((w = wait_fd(s, POLLOUT)) <= 0)
			return w;
	}
	return 1;
}

/* Connect non-blockingly.  1 ok, 0 timeout, -1 error (errno). */
static int sconnect(struct sess *s, const struct ipaddr *ip, int port)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int err = 0, w;
	socklen_t el = sizeof(err);

	memset(&ss, 0, sizeof(ss));
	if (ip->family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_port = htons((unsigned short)port);
		memcpy(&a->sin_addr, ip->a, 4);
		sl = sizeof(*a);
	} else if (ip->family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons((unsigned short)port);
		memcpy(&a->sin6_addr, ip->a, 16);
		sl = sizeof(*a);
	} else {
		errno = EAFNOSUPPORT;
		return -1;
	}
	s->fd = socket(ip->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0)
		return -1;
	if (connect(s->fd, (struct sockaddr *)&ss, sl) == 0)
		return 1;
	if (errno != EINPROGRESS)
		return -1;
	if ((w = wait_fd(s, POLLOUT)) <= 0)
		return w;
	if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
		return -1;
	if (err) {
		errno = err;
		return -1;
	}
	return 1;
}

static void set_res(struct smtpprobe_res *res, const char *stage, const struct reply *r)
{
	res->stage = stage;
	if (r && r->code) {
		snprintf(res->code, sizeof(res->code), "%d", r->code);
		bcopy_str(res->xcode, sizeof(res->xcode), r->xcode);
		bcopy_str(res->text, sizeof(res->text), r->text);
	}
}

/* The failure of a step: timeout, error or a bad reply. */
static void failed(struct smtpprobe_res *res, const char *stage, int rc, const struct sess *s)
{
	res->stage = stage;
	if (rc == 0)
		snprintf(res->text, sizeof(res->text), "timeout at %s", stage);
	else if (s->eof)
		snprintf(res->text, sizeof(res->text), "connection closed at %s", stage);
	else
		snprintf(res->text, sizeof(res->text), "protocol error at %s", stage);
}

/* Send cmd and read its reply.  1 ok (r filled), else failed() was called. */
static int step(struct sess *s, const char *cmd, const char *stage, struct reply *r,
                struct smtpprobe_res *res)
{
	int rc = put(s, cmd);

	if (rc == 1)
		rc = get_reply(s, r);
	if (rc != 1) {
		failed(res, stage, rc, s);
		return 0;
	}
	return 1;
}

/* An address fit for a command line: printable, no '<', '>' or spaces. */
static int cmd_safe(const char *a)
{
	for (; *a; a++)
		if ((unsigned char)*a <= 0x20 || (unsigned char)*a >= 0x7f || *a == '<' ||
		    *a == '>')
			return 0;
	return 1;
}

enum probe_result smtpprobe_run(const struct ipaddr *ip, int port, const struct smtpprobe_req *req,
                                struct smtpprobe_res *res)
{
	struct sess s = { .fd = -1, .deadline = req->deadline_ms };
	struct reply r;
	char cmd[600];
	int rc;

	memset(res, 0, sizeof(*res));
	res->stage = "connect";
	if (!cmd_safe(req->helo) || !cmd_safe(req->sender) || !cmd_safe(req->rcpt) ||
	    (req->rcpt2 && !cmd_safe(req->rcpt2)) || strlen(req->rcpt) > 300 ||
	    strlen(req->sender) > 300 || strlen(req->helo) > 255) {
		bcopy_str(res->text, sizeof(res->text), "address not fit for a probe");
		return PROBE_UNKNOWN;
	}
	if ((rc = sconnect(&s, ip, port)) != 1) {
		if (rc == 0)
			bcopy_str(res->text, sizeof(res->text), "timeout at connect");
		else
			snprintf(res->text, sizeof(res->text), "connect: %s", strerror(errno));
		goto out;
	}
	if ((rc = get_reply(&s, &r)) != 1) {
		failed(res, "banner", rc, &s);
		goto out;
	}
	if (r.code / 100 != 2) {
		set_res(res, "banner", &r);
		goto quit;
	}
	snprintf(cmd, sizeof(cmd), "EHLO %s\r\n", req->helo);
	if (!step(&s, cmd, "EHLO", &r, res))
		goto out;
	if (r.code / 100 == 5) {
		snprintf(cmd, sizeof(cmd), "HELO %s\r\n", req->helo);
		if (!step(&s, cmd, "HELO", &r, res))
			goto out;
	}
	if (r.code / 100 != 2) {
		set_res(res, "EHLO", &r);
		goto quit;
	}
	snprintf(cmd, sizeof(cmd), "MAIL FROM:<%s>\r\n", req->sender);
	if (!step(&s, cmd, "MAIL", &r, res))
		goto out;
	if (r.code / 100 != 2) {
		set_res(res, "MAIL", &r);
		goto quit;
	}
	snprintf(cmd, sizeof(cmd), "RCPT TO:<%s>\r\n", req->rcpt);
	if (!step(&s, cmd, "RCPT", &r, res))
		goto out;
	set_res(res, "RCPT", &r);
	res->result = r.code / 100 == 2   ? PROBE_VALID
	              : r.code / 100 == 5 ? PROBE_INVALID
	                                  : PROBE_UNKNOWN;
	if (req->rcpt2 && res->result == PROBE_VALID) {
		struct reply r2;
		struct smtpprobe_res ign;

		snprintf(cmd, sizeof(cmd), "RCPT TO:<%s>\r\n", req->rcpt2);
		memset(&ign, 0, sizeof(ign));
		if (step(&s, cmd, "RCPT", &r2, &ign))
			res->result2 = r2.code / 100 == 2   ? PROBE_VALID
			               : r2.code / 100 == 5 ? PROBE_INVALID
			                                    : PROBE_UNKNOWN;
		else
			goto out;
	}
quit:
	/* Polite, but the answer does not matter: a short wait at most. */
	if (put(&s, "QUIT\r\n") == 1) {
		long long d = now_ms() + 200;

		if (d < s.deadline)
			s.deadline = d;
		get_reply(&s, &r);
	}
out:
	if (s.fd >= 0)
		close(s.fd);
	return res->result;
}

int smtpprobe_parse_hop(const char *s, char *host, size_t hostsize, int *port, int *literal,
                        struct ipaddr *ip)
{
	char buf[300];
	const char *colon;
	size_t hl;

	*port = 25;
	*literal = 0;
	memset(ip, 0, sizeof(*ip));
	if (strlen(s) >= sizeof(buf))
		return -1;
	if (*s == '[') {
		const char *e = strchr(s, ']');

		if (e == NULL)
			return -1;
		hl = (size_t)(e - s) + 1;
		memcpy(buf, s, hl);
		buf[hl] = '\0';
		if (ip_parse_literal(buf, ip) < 0) {
			/* [host.name]: no MX lookup, like Postfix; we resolve it as
			 * a host name, so treat it as such */
			return -1;
		}
		*literal = 1;
		bcopy_str(host, hostsize, buf);
		colon = e[1] == ':' ? e + 1 : NULL;
		if (e[1] && !colon)
			return -1;
	} else {
		colon = strrchr(s, ':');
		hl = colon ? (size_t)(colon - s) : strlen(s);
		if (hl == 0 || hl >= hostsize)
			return -1;
		memcpy(host, s, hl);
		host[hl] = '\0';
		if (!domain_valid(host))
			return -1;
	}
	if (colon) {
		char *end;
		long p = strtol(colon + 1, &end, 10);

		if (*end || end == colon + 1 || p < 1 || p > 65535)
			return -1;
		*port = (int)p;
	}
	return 0;
}
