/* contrib/bench/mclient.c - a small milter-protocol load client (the MTA side)
 *
 *   mclient -p SOCKET [-n MESSAGES] [-m PER_CONN] [-t THREADS] [-b BAD_FRACTION]
 *           [-N] [-T SECONDS] [-l LABEL] [-q] [-a ADDR [-k COUNT]] [-s DOMAIN] [-L]
 *
 * Speaks the MTA side of the milter protocol (version 6, as Postfix and
 * Sendmail do) to a filter on a unix socket: option negotiation, then per
 * connection CONNECT and HELO, then per message MAIL, RCPT and either end
 * of message (clean) or ABORT (refused), then QUIT.  Every packet is a
 * 4-byte big-endian length, one command byte and its data.  Steps that the
 * filter negotiated away (SMFIP_NOHDRS, SMFIP_NOBODY, ...) are not sent;
 * steps it asked no reply for (SMFIP_NR_*) are not waited for.
 *
 * A fraction BAD_FRACTION of the connections say HELO localhost from a
 * non-loopback address: portcullis refuses their recipients with
 * "550 5.7.1 ... (ref ...)".  The command sequence is the same whatever the
 * filter answers, so a no-op filter gets exactly the same traffic; with -N
 * (the baseline) every RCPT is expected to be answered 'c'.  Any other
 * answer - a clean message refused or deferred, a bad one let through, a
 * malformed packet, a timeout - is printed and makes the exit status 1.
 *
 * Client addresses: by default from 192.0.2.0/24 and 198.51.100.0/24 by
 * connection number.  With -a ADDR, connection k comes from the IPv4 address
 * ADDR + (k mod COUNT) (-k; default: every connection its own address), and
 * its HELO and client name are aI.example.net, I = k mod COUNT.  -s DOMAIN
 * is the sender domain (default example.net); a leading "*." is replaced by
 * "aI.", so each address has its own sender domain (for SPF benchmarks with
 * a wildcard record).
 *
 * Prints one summary line of key=value pairs (messages, seconds, msg_per_s,
 * client CPU per message and the count of each reply code) on stdout.  With
 * -L it adds the latency of the connections in milliseconds - from
 * connect() to the final reply of its last message, so with -m 1 the time
 * one whole transaction took as the MTA sees it: lat_ms_min, _median,
 * _p90, _max, and with at most 100 connections every one in order
 * (lat_ms=a,b,...).
 * Threads share nothing but an atomic connection counter and a stop flag.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <libmilter/mfdef.h>

#define MTA_ACTIONS SMFI_CURR_ACTS /* all actions that a v6 MTA offers */
#define MTA_PROTO   SMFI_CURR_PROT /* every step may be left out or unanswered */

#define PKT_MAX (MILTER_MAX_DATA_SIZE + 1024)
/* Reply data for "%.*s": at most 200 bytes, without the trailing NUL. */
#define SHOW(d, len)                                                                               \
	(int)((len) > 200 ? 200 : (len) && !(d)[(len)-1] ? (len)-1 : (len)), (const char *)(d)

struct opts {
	const char *path;
	long messages;
	int per_conn;
	int threads;
	double bad;
	int baseline; /* -N: the filter never refuses */
	int timeout;
	const char *label;
	int quiet;
	int have_addr;     /* -a given */
	uint32_t addr;     /* -a, host order */
	long addr_count;   /* -k, 0: one address per connection */
	const char *sdom;  /* -s */
	int latency;       /* -L */
};

static struct opts o = { NULL, 20000, 10, 4, 0.2, 0, 10, "filter", 0, 0, 0, 0, "example.net", 0 };
static double *lat_ms; /* -L: per connection, indexed by connection number */
static long nconns;
static long next_conn;
static int stop; /* read with stopped(), set once in fatal() */

struct counts {
	long replies[256];
	long clean_ok; /* clean messages that reached end of message and passed */
	long bad_refused;
	long bad_passed; /* baseline: bad-HELO messages the no-op let through */
	long conns;
	long msgs;
};

struct client {
	int fd;
	unsigned long proto; /* negotiated SMFIP_* flags */
	unsigned char in[PKT_MAX + 8];
	size_t inlen, inoff;
	long conn_no, msg_no;
	struct counts *cnt;
};

static int stopped(void)
{
	return __atomic_load_n(&stop, __ATOMIC_RELAXED);
}

static void fatal(const struct client *cl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Report an unexpected event, stop every thread; the exit status will be 1. */
static void fatal(const struct client *cl, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!__sync_lock_test_and_set(&stop, 1) || !o.quiet)
		fprintf(stderr, "mclient: %s: error: %s (connection %ld, message %ld)\n", o.label,
		        msg, cl ? cl->conn_no : -1, cl ? cl->msg_no : -1);
}

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* An outgoing buffer of one or more packets, sent with one write(). */
struct out {
	unsigned char b[PKT_MAX];
	size_t len;
	size_t start; /* where the packet being built begins */
};

static void pkt_begin(struct out *w, char cmd)
{
	w->start = w->len;
	w->len += 4;
	w->b[w->len++] = (unsigned char)cmd;
}

static void pkt_add(struct out *w, const void *data, size_t n)
{
	if (w->len + n > sizeof(w->b))
		abort(); /* our own packets are small */
	memcpy(w->b + w->len, data, n);
	w->len += n;
}

static void pkt_str(struct out *w, const char *s)
{
	pkt_add(w, s, strlen(s) + 1);
}

static void pkt_end(struct out *w)
{
	put32(w->b + w->start, (uint32_t)(w->len - w->start - 4));
}

static int flush_out(struct client *cl, struct out *w)
{
	size_t off = 0;

	while (off < w->len) {
		ssize_t n = write(cl->fd, w->b + off, w->len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fatal(cl, "write: %s", n < 0 ? strerror(errno) : "short write");
			return -1;
		}
		off += (size_t)n;
	}
	w->len = 0;
	return 0;
}

static int fill(struct client *cl, size_t want)
{
	if (cl->inoff > 0 && cl->inlen - cl->inoff < want) {
		memmove(cl->in, cl->in + cl->inoff, cl->inlen - cl->inoff);
		cl->inlen -= cl->inoff;
		cl->inoff = 0;
	}
	while (cl->inlen - cl->inoff < want) {
		ssize_t n = read(cl->fd, cl->in + cl->inlen, sizeof(cl->in) - cl->inlen);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			fatal(cl, "no reply within %d s", o.timeout);
			return -1;
		}
		if (n <= 0) {
			fatal(cl, "read: %s",
			      n < 0 ? strerror(errno) : "filter closed the connection");
			return -1;
		}
		cl->inlen += (size_t)n;
	}
	return 0;
}

/* Read one reply packet: *cmd and a pointer to its data, valid until the
 * next read. */
static int read_reply(struct client *cl, int *cmd, const unsigned char **data, size_t *len)
{
	uint32_t n;

	if (fill(cl, 4) < 0)
		return -1;
	n = get32(cl->in + cl->inoff);
	if (n < 1 || n > PKT_MAX) {
		fatal(cl, "bad reply length %lu", (unsigned long)n);
		return -1;
	}
	if (fill(cl, 4 + n) < 0)
		return -1;
	*cmd = cl->in[cl->inoff + 4];
	*data = cl->in + cl->inoff + 5;
	*len = n - 1;
	cl->inoff += 4 + n;
	cl->cnt->replies[*cmd & 0xff]++;
	return 0;
}

static const char *stage_name(char cmd)
{
	switch (cmd) {
	case SMFIC_CONNECT: return "CONNECT";
	case SMFIC_HELO: return "HELO";
	case SMFIC_MAIL: return "MAIL";
	case SMFIC_RCPT: return "RCPT";
	case SMFIC_DATA: return "DATA";
	case SMFIC_HEADER: return "HEADER";
	case SMFIC_EOH: return "EOH";
	case SMFIC_BODY: return "BODY";
	case SMFIC_BODYEOB: return "EOM";
	}
	return "?";
}

/* Does step cmd get a reply under the negotiated flags? */
static int wants_reply(const struct client *cl, char cmd)
{
	unsigned long nr = 0;

	switch (cmd) {
	case SMFIC_CONNECT: nr = SMFIP_NR_CONN; break;
	case SMFIC_HELO: nr = SMFIP_NR_HELO; break;
	case SMFIC_MAIL: nr = SMFIP_NR_MAIL; break;
	case SMFIC_RCPT: nr = SMFIP_NR_RCPT; break;
	case SMFIC_DATA: nr = SMFIP_NR_DATA; break;
	case SMFIC_HEADER: nr = SMFIP_NR_HDR; break;
	case SMFIC_EOH: nr = SMFIP_NR_EOH; break;
	case SMFIC_BODY: nr = SMFIP_NR_BODY; break;
	default: return 1;
	}
	return !(cl->proto & nr);
}

/* Expect 'c' (continue) for step cmd; refuse anything else, including 'a':
 * the benchmark wants every step of every message to run. */
static int expect_continue(struct client *cl, char cmd)
{
	const unsigned char *d;
	size_t len;
	int r;

	if (!wants_reply(cl, cmd))
		return 0;
	if (read_reply(cl, &r, &d, &len) < 0)
		return -1;
	if (r == SMFIR_CONTINUE)
		return 0;
	if (r == SMFIR_REPLYCODE)
		fatal(cl, "%s answered 'y' \"%.*s\", expected 'c'", stage_name(cmd), SHOW(d, len));
	else
		fatal(cl, "%s answered '%c', expected 'c'", stage_name(cmd), r);
	return -1;
}

/* Send packets in w, then the reply rules of step cmd. */
static int step(struct client *cl, struct out *w, char cmd)
{
	if (flush_out(cl, w) < 0)
		return -1;
	return expect_continue(cl, cmd);
}

static void macros(struct out *w, char stage, const char *const *kv)
{
	pkt_begin(w, SMFIC_MACRO);
	pkt_add(w, &stage, 1);
	for (; kv[0]; kv += 2) {
		pkt_str(w, kv[0]);
		pkt_str(w, kv[1]);
	}
	pkt_end(w);
}

static int negotiate(struct client *cl, struct out *w)
{
	unsigned char v[12];
	const unsigned char *d;
	size_t len;
	int r;

	put32(v, 6);
	put32(v + 4, MTA_ACTIONS);
	put32(v + 8, MTA_PROTO);
	pkt_begin(w, SMFIC_OPTNEG);
	pkt_add(w, v, sizeof(v));
	pkt_end(w);
	if (flush_out(cl, w) < 0 || read_reply(cl, &r, &d, &len) < 0)
		return -1;
	if (r != SMFIC_OPTNEG || len < 12) {
		fatal(cl, "option negotiation answered '%c' with %zu bytes", r, len);
		return -1;
	}
	if (get32(d) < 2 || get32(d) > 6) {
		fatal(cl, "filter speaks protocol version %lu", (unsigned long)get32(d));
		return -1;
	}
	cl->proto = get32(d + 8);
	if (cl->proto & ~(unsigned long)MTA_PROTO) {
		fatal(cl, "filter asks for protocol flags 0x%lx that we did not offer", cl->proto);
		return -1;
	}
	/* Any symbol lists after the 12 bytes are ignored: we send the same
	 * macros to every filter. */
	return 0;
}

/* The connection counter k is "bad" for an exact fraction o.bad of them,
 * spread evenly. */
static int conn_is_bad(long k)
{
	return (long)((double)(k + 1) * o.bad) > (long)((double)k * o.bad);
}

/* The index of connection k's address (-a): k mod COUNT, or k. */
static long addr_index(long k)
{
	return o.addr_count > 0 ? k % o.addr_count : k;
}

static int one_message(struct client *cl, struct out *w, int bad)
{
	char from[320], rcpt[64], qid[32];
	const unsigned char *d;
	size_t len;
	int r;

	if (!strncmp(o.sdom, "*.", 2))
		snprintf(from, sizeof(from), "<s%ld@a%ld.%s>", cl->msg_no, addr_index(cl->conn_no),
		         o.sdom + 2);
	else
		snprintf(from, sizeof(from), "<s%ld@%s>", cl->msg_no, o.sdom);
	snprintf(rcpt, sizeof(rcpt), "<u%ld@example.test>", cl->msg_no % 1000);
	snprintf(qid, sizeof(qid), "%lX", 0x10000000L + cl->msg_no);
	{
		const char *const kv[] = { "{mail_addr}", from, "{auth_authen}", "", NULL };

		macros(w, SMFIC_MAIL, kv);
	}
	if (!(cl->proto & SMFIP_NOMAIL)) {
		pkt_begin(w, SMFIC_MAIL);
		pkt_str(w, from);
		pkt_str(w, "SIZE=1000");
		pkt_end(w);
		if (step(cl, w, SMFIC_MAIL) < 0)
			return -1;
	}
	{
		const char *const kv[] = { "{rcpt_addr}", rcpt, NULL };

		macros(w, SMFIC_RCPT, kv);
	}
	if (!(cl->proto & SMFIP_NORCPT)) {
		pkt_begin(w, SMFIC_RCPT);
		pkt_str(w, rcpt);
		pkt_end(w);
		if (flush_out(cl, w) < 0)
			return -1;
		if (bad && !o.baseline && wants_reply(cl, SMFIC_RCPT)) {
			if (read_reply(cl, &r, &d, &len) < 0)
				return -1;
			if (r != SMFIR_REPLYCODE || len < 4 ||
			    strncmp((const char *)d, "550 ", 4)) {
				fatal(cl, "bad-HELO RCPT answered '%c' \"%.*s\", expected 'y' 550",
				      r, SHOW(d, len));
				return -1;
			}
			cl->cnt->bad_refused++;
		} else if (expect_continue(cl, SMFIC_RCPT) < 0) {
			return -1;
		}
	}
	if (bad) {
		/* An MTA whose recipients were all refused sees RSET or QUIT
		 * and tells the filter ABORT (no reply).  Baseline: same. */
		pkt_begin(w, SMFIC_ABORT);
		pkt_end(w);
		if (o.baseline)
			cl->cnt->bad_passed++;
		return flush_out(cl, w);
	}
	if (!(cl->proto & SMFIP_NODATA)) {
		pkt_begin(w, SMFIC_DATA);
		pkt_end(w);
		if (step(cl, w, SMFIC_DATA) < 0)
			return -1;
	}
	if (!(cl->proto & SMFIP_NOHDRS)) {
		static const char *const hdr[][2] = {
			{ "From", "<sender@example.net>" },
			{ "To", "<user@example.test>" },
			{ "Subject", "benchmark message" },
			{ "Message-ID", "<bench@example.net>" },
		};
		for (size_t i = 0; i < sizeof(hdr) / sizeof(hdr[0]); i++) {
			pkt_begin(w, SMFIC_HEADER);
			pkt_str(w, hdr[i][0]);
			pkt_str(w, hdr[i][1]);
			pkt_end(w);
			if (step(cl, w, SMFIC_HEADER) < 0)
				return -1;
		}
	}
	if (!(cl->proto & SMFIP_NOEOH)) {
		pkt_begin(w, SMFIC_EOH);
		pkt_end(w);
		if (step(cl, w, SMFIC_EOH) < 0)
			return -1;
	}
	if (!(cl->proto & SMFIP_NOBODY)) {
		static const char body[] = "Hello,\r\n\r\nthis is a benchmark message.\r\n";

		pkt_begin(w, SMFIC_BODY);
		pkt_add(w, body, sizeof(body) - 1);
		pkt_end(w);
		if (step(cl, w, SMFIC_BODY) < 0)
			return -1;
	}
	{
		const char *const kv[] = { "i", qid, NULL };

		macros(w, SMFIC_BODYEOB, kv);
	}
	pkt_begin(w, SMFIC_BODYEOB);
	pkt_end(w);
	if (flush_out(cl, w) < 0)
		return -1;
	/* Modifications come first, then one final answer. */
	for (;;) {
		if (read_reply(cl, &r, &d, &len) < 0)
			return -1;
		switch (r) {
		case SMFIR_ADDHEADER:
		case SMFIR_INSHEADER:
		case SMFIR_CHGHEADER:
		case SMFIR_PROGRESS: continue;
		case SMFIR_CONTINUE:
		case SMFIR_ACCEPT: cl->cnt->clean_ok++; return 0;
		case SMFIR_REPLYCODE:
			fatal(cl, "clean message refused at EOM: 'y' \"%.*s\"", SHOW(d, len));
			return -1;
		default: fatal(cl, "clean message answered '%c' at EOM", r); return -1;
		}
	}
}

static double now(void);

static int one_connection(struct client *cl, long k, long nmsg)
{
	double t0 = now();
	struct out *w = malloc(sizeof(*w));
	struct sockaddr_un sun;
	struct timeval tv = { o.timeout, 0 };
	char host[64], addr[64], helo[80];
	int bad = conn_is_bad(k), rc = -1;

	if (w == NULL) {
		fatal(cl, "out of memory");
		return -1;
	}
	w->len = 0;
	cl->inlen = cl->inoff = 0;
	cl->conn_no = k;
	cl->msg_no = -1; /* none yet */
	cl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (cl->fd < 0) {
		fatal(cl, "socket: %s", strerror(errno));
		free(w);
		return -1;
	}
	setsockopt(cl->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(cl->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", o.path);
	for (int tries = 0;; tries++) {
		if (connect(cl->fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
			break;
		/* A full listen queue says EAGAIN on unix sockets: retry briefly. */
		if (errno == EAGAIN && tries < 1000) {
			usleep(1000);
			continue;
		}
		fatal(cl, "connect %s: %s", o.path, strerror(errno));
		goto out;
	}
	/* Client addresses from the documentation ranges; they are only data
	 * inside the protocol, no packet goes there. */
	if (o.have_addr) {
		struct in_addr a;

		a.s_addr = htonl(o.addr + (uint32_t)addr_index(k));
		inet_ntop(AF_INET, &a, addr, sizeof(addr));
		snprintf(host, sizeof(host), "a%ld.example.net", addr_index(k));
	} else {
		snprintf(addr, sizeof(addr), "%s.%ld", k % 2 ? "192.0.2" : "198.51.100",
		         k % 250 + 1);
		snprintf(host, sizeof(host), "mail%ld.example.net", k % 5000);
	}
	if (bad)
		snprintf(helo, sizeof(helo), "localhost");
	else
		snprintf(helo, sizeof(helo), "%s", host);
	if (negotiate(cl, w) < 0)
		goto out;
	{
		const char *const kv[] = { "j",     "mx.example.test", "{daemon_name}",
			                   "bench", "{client_name}",   host,
			                   NULL };

		macros(w, SMFIC_CONNECT, kv);
	}
	if (!(cl->proto & SMFIP_NOCONNECT)) {
		unsigned char port[2] = { 0xc3, 0x50 }; /* 50000 */

		pkt_begin(w, SMFIC_CONNECT);
		pkt_str(w, host);
		pkt_add(w, "4", 1);
		pkt_add(w, port, 2);
		pkt_str(w, addr);
		pkt_end(w);
		if (step(cl, w, SMFIC_CONNECT) < 0)
			goto out;
	}
	if (!(cl->proto & SMFIP_NOHELO)) {
		pkt_begin(w, SMFIC_HELO);
		pkt_str(w, helo);
		pkt_end(w);
		if (step(cl, w, SMFIC_HELO) < 0)
			goto out;
	}
	for (long i = 0; i < nmsg && !stopped(); i++) {
		cl->msg_no = k * o.per_conn + i;
		if (one_message(cl, w, bad) < 0)
			goto out;
		cl->cnt->msgs++;
	}
	if (lat_ms)
		lat_ms[k] = (now() - t0) * 1e3;
	pkt_begin(w, SMFIC_QUIT);
	pkt_end(w);
	if (flush_out(cl, w) < 0)
		goto out;
	cl->cnt->conns++;
	rc = 0;
out:
	close(cl->fd);
	free(w);
	return rc;
}

static void *worker(void *arg)
{
	struct client cl;

	memset(&cl, 0, sizeof(cl));
	cl.cnt = arg;
	while (!stopped()) {
		long k = __sync_fetch_and_add(&next_conn, 1);
		long first = k * o.per_conn, nmsg;

		if (k >= nconns)
			break;
		nmsg = o.messages - first < o.per_conn ? o.messages - first : o.per_conn;
		if (one_connection(&cl, k, nmsg) < 0)
			break;
	}
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void usage(void)
{
	fprintf(stderr,
	        "usage: mclient -p SOCKET [-n MESSAGES] [-m PER_CONN] [-t THREADS]\n"
	        "               [-b BAD_FRACTION] [-N] [-T SECONDS] [-l LABEL] [-q]\n"
	        "               [-a ADDR [-k COUNT]] [-s DOMAIN] [-L]\n"
	        "  -p  unix socket of the filter (a path, or unix:PATH)\n"
	        "  -n  messages in all (20000)      -m  messages per connection (10)\n"
	        "  -t  client threads (4)           -b  fraction of bad-HELO connections (0.2)\n"
	        "  -N  the filter is the no-op baseline: expect 'c' for every RCPT\n"
	        "  -T  seconds to wait for any reply (10)\n"
	        "  -l  label for the summary line   -q  only the first error\n"
	        "  -a  connection k comes from IPv4 ADDR + (k mod COUNT), HELO aI.example.net\n"
	        "  -k  COUNT distinct addresses for -a (0: one per connection)\n"
	        "  -s  sender domain (example.net); \"*.D\": aI.D, I the address index\n"
	        "  -L  report per-connection latency (connect to last reply) in ms\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct counts total, *cnt;
	pthread_t *tids;
	double t0, t1, c0, c1;
	int ch, started = 0;

	while ((ch = getopt(argc, argv, "p:n:m:t:b:NT:l:qa:k:s:L")) != -1) {
		switch (ch) {
		case 'p': o.path = strncmp(optarg, "unix:", 5) ? optarg : optarg + 5; break;
		case 'n': o.messages = atol(optarg); break;
		case 'm': o.per_conn = atoi(optarg); break;
		case 't': o.threads = atoi(optarg); break;
		case 'b': o.bad = atof(optarg); break;
		case 'N': o.baseline = 1; break;
		case 'T': o.timeout = atoi(optarg); break;
		case 'l': o.label = optarg; break;
		case 'q': o.quiet = 1; break;
		case 'a': {
			struct in_addr a;

			if (inet_pton(AF_INET, optarg, &a) != 1)
				usage();
			o.addr = ntohl(a.s_addr);
			o.have_addr = 1;
			break;
		}
		case 'k': o.addr_count = atol(optarg); break;
		case 's': o.sdom = optarg; break;
		case 'L': o.latency = 1; break;
		default: usage();
		}
	}
	if (o.path == NULL || optind != argc || o.messages < 1 || o.per_conn < 1 || o.threads < 1 ||
	    o.threads > 256 || o.bad < 0 || o.bad > 1 || o.timeout < 1 || o.addr_count < 0 ||
	    !*o.sdom || strlen(o.sdom) > 200)
		usage();
	if (strlen(o.path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		fprintf(stderr, "mclient: socket path too long: %s\n", o.path);
		return 2;
	}
	nconns = (o.messages + o.per_conn - 1) / o.per_conn;
	if (o.latency && (lat_ms = calloc((size_t)nconns, sizeof(*lat_ms))) == NULL)
		return 2;
	cnt = calloc((size_t)o.threads, sizeof(*cnt));
	tids = calloc((size_t)o.threads, sizeof(*tids));
	if (cnt == NULL || tids == NULL)
		return 2;
	c0 = cpu_seconds();
	t0 = now();
	for (int i = 0; i < o.threads; i++) {
		if (pthread_create(&tids[i], NULL, worker, &cnt[i]) != 0) {
			fatal(NULL, "pthread_create failed");
			break;
		}
		started++;
	}
	for (int i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	t1 = now();
	c1 = cpu_seconds();

	memset(&total, 0, sizeof(total));
	for (int i = 0; i < o.threads; i++) {
		for (int r = 0; r < 256; r++)
			total.replies[r] += cnt[i].replies[r];
		total.clean_ok += cnt[i].clean_ok;
		total.bad_refused += cnt[i].bad_refused;
		total.bad_passed += cnt[i].bad_passed;
		total.conns += cnt[i].conns;
		total.msgs += cnt[i].msgs;
	}
	if (!stopped() && total.msgs != o.messages)
		fatal(NULL, "ran %ld messages of %ld", total.msgs, o.messages);
	printf("label=%s messages=%ld connections=%ld threads=%d clean_ok=%ld bad_refused=%ld "
	       "bad_passed=%ld seconds=%.3f msg_per_s=%.0f client_cpu_us_per_msg=%.1f replies=",
	       o.label, total.msgs, total.conns, o.threads, total.clean_ok, total.bad_refused,
	       total.bad_passed, t1 - t0, total.msgs / (t1 - t0),
	       total.msgs ? (c1 - c0) * 1e6 / (double)total.msgs : 0.0);
	for (int r = 33, first = 1; r < 127; r++)
		if (total.replies[r]) {
			printf("%s%c:%ld", first ? "" : ",", r, total.replies[r]);
			first = 0;
		}
	if (lat_ms && !stopped()) {
		double *sorted = malloc((size_t)nconns * sizeof(*sorted));

		if (sorted) {
			memcpy(sorted, lat_ms, (size_t)nconns * sizeof(*sorted));
			qsort(sorted, (size_t)nconns, sizeof(*sorted), cmp_double);
			printf(" lat_ms_min=%.1f lat_ms_median=%.1f lat_ms_p90=%.1f lat_ms_max=%.1f",
			       sorted[0],
			       nconns % 2 ? sorted[nconns / 2]
			                  : (sorted[nconns / 2 - 1] + sorted[nconns / 2]) / 2,
			       sorted[(nconns * 9 + 9) / 10 - 1], sorted[nconns - 1]);
			free(sorted);
		}
		if (nconns <= 100)
			for (long i = 0; i < nconns; i++)
				printf("%s%.1f", i ? "," : " lat_ms=", lat_ms[i]);
	}
	printf(" status=%s\n", stopped() ? "FAILED" : "ok");
	free(cnt);
	free(tids);
	free(lat_ms);
	return stopped() ? 1 : 0;
}
