/* lib/smtpprobe.h - a small SMTP client for address verification probes
 *
 * One probe is one SMTP session with one server: connect, banner, EHLO
 * (HELO when EHLO is refused), MAIL FROM:<sender>, RCPT TO:<rcpt>, an
 * optional second RCPT TO (a random local part, for catch-all detection),
 * then QUIT.  Never DATA, never TLS.  The session is bounded by one
 * deadline on the now_ms() clock: non-blocking socket, poll(), nothing
 * waits past it.
 *
 * The server's replies are hostile: a reply is at most SMTPPROBE_REPLY_MAX
 * bytes and SMTPPROBE_LINES_MAX lines (more is a protocol error), a line
 * longer than the buffer is cut, every line must begin with the same three
 * digits, and the text kept (one line: the lines joined by spaces, the
 * "NNN-" prefixes and an enhanced status code removed) holds only printable
 * ASCII other than '%' (replaced by '?'), at most SMTPPROBE_TEXT_MAX bytes.
 *
 * Results: 2xx to the RCPT = valid, 5xx = invalid; a 4xx anywhere, a 5xx
 * before the RCPT (the server refuses us, not the address), a timeout, a
 * connection error or a protocol error = unknown.
 * Thread-safe: no state outside the caller's structs.
 *
 * See also: lib/checks/verify.c (the check and its cache), RFC 5321.
 */
#ifndef PORTCULLIS_SMTPPROBE_H
#define PORTCULLIS_SMTPPROBE_H

#include <stddef.h>

#include "addr.h"

#define SMTPPROBE_REPLY_MAX (64 * 1024)
#define SMTPPROBE_LINES_MAX 100
#define SMTPPROBE_TEXT_MAX  200

enum probe_result { PROBE_UNKNOWN = 0, PROBE_VALID, PROBE_INVALID };

struct smtpprobe_req {
	const char *helo;      /* our name for EHLO */
	const char *sender;    /* MAIL FROM address without <>; "" = the null sender */
	const char *rcpt;      /* the address to verify */
	const char *rcpt2;     /* a second RCPT (catch-all test), or NULL */
	long long deadline_ms; /* now_ms() time when the probe gives up */
};

struct smtpprobe_res {
	enum probe_result result;          /* of rcpt */
	enum probe_result result2;         /* of rcpt2 (UNKNOWN if none) */
	char code[4];                      /* the deciding reply: "550", "" if none */
	char xcode[10];                    /* its enhanced code ("5.1.1") or "" */
	char text[SMTPPROBE_TEXT_MAX + 1]; /* sanitised text, or our reason */
	const char *stage;                 /* where it ended: "connect", "banner", "EHLO",
	                    * "MAIL", "RCPT", "timeout"... (static) */
};

/* Run one probe against ip:port.  Always fills *res; returns res->result. */
enum probe_result smtpprobe_run(const struct ipaddr *ip, int port, const struct smtpprobe_req *req,
                                struct smtpprobe_res *res);

/* Parse a next hop: "[192.0.2.1]", "[192.0.2.1]:2525", "[IPv6:2001:db8::1]:25"
 * (a literal: no MX lookup) or "host.example[:port]" (MX lookup of host,
 * like Postfix's transport next hop without brackets).  Writes the host
 * (without brackets) and port, and *literal.  Returns 0, or -1. */
int smtpprobe_parse_hop(const char *s, char *host, size_t hostsize, int *port, int *literal,
                        struct ipaddr *ip);

#endif
