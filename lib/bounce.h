/* lib/bounce.h - what a null-sender message is, and whether it answers
 * a message we sent
 *
 * bounce_parse() reads a whole message (headers and body, as received)
 * and tells:
 *  - dsn: a delivery status notification: RFC 3464 (multipart/report;
 *    report-type=delivery-status, or a message/delivery-status part), or
 *    one of the common non-standard forms (qmail's "failure notice",
 *    Exchange's "Undeliverable", Sendmail's "Returned mail", Exim's "Mail
 *    delivery failed", ... recognised by Subject, or by DSN fields such as
 *    "Action: failed" / "Final-Recipient:" in the text);
 *  - auto_reply: an auto-reply or challenge-response mail
 *    (Auto-Submitted other than "no", X-Autoreply, X-Autorespond,
 *    Precedence: auto_reply, an MDN, or a vacation / out-of-office /
 *    "virus found" subject); virus_notice for the last kind;
 *  - ours: the message quotes a Received line from one of our relays
 *    (pol->relay_names: the name after "by" or "from" or in the
 *    parentheses; pol->relay_nets: an address in [brackets]) or a
 *    Message-ID (or, in the top headers, In-Reply-To / References) in one
 *    of pol->domains or a subdomain.  Quoted lines are found anywhere
 *    after the top headers, also behind "> " quote marks and inside
 *    message/rfc822 and text/rfc822-headers parts; base64 and
 *    quoted-printable text parts are decoded (lib/mime.c).  The bounce's
 *    own top headers never count: they are its trace, not the original's.
 *
 * Every message is hostile: the scan is linear in the message size, each
 * quoted header is cut at BOUNCE_HDR_MAX bytes, no recursion beyond
 * lib/mime.c's bounds.  Thread-safe; allocates only for the MIME pass.
 */
#ifndef PORTCULLIS_BOUNCE_H
#define PORTCULLIS_BOUNCE_H

#include <stddef.h>

#include "conf.h"

#define BOUNCE_HDR_MAX 2048

struct bounce_policy {
	const struct strlist *relay_names; /* host names, compared ASCII case-insensitively */
	const struct netlist *relay_nets;
	const struct strlist *domains; /* Message-ID domains */
};

struct bounce_info {
	int dsn;
	int auto_reply;
	int virus_notice;
	int ours;
	unsigned long quoted_received; /* quoted Received lines seen */
	unsigned long quoted_msgids;
	char evidence[160]; /* what made it ours, for the log (sanitised by the caller) */
};

/* The joe-job switch (portcullisctl bounce mode), kept in the store so
 * that every process (and every MX sharing a Redis store) sees it: key
 * BOUNCE_SWITCH_KEY of namespace BOUNCE_SWITCH_NS holds "reject" or
 * "monitor".  bounce_switch_get() returns MODE_REJECT or MODE_MONITOR when
 * set, or -1 (not set, no store, or a store error: then the configuration
 * rules).  bounce_switch_set() with "reject", "monitor" or "config" (remove
 * the override) returns 0 or -1. */
#define BOUNCE_SWITCH_NS  "ctl"
#define BOUNCE_SWITCH_KEY "bounce.mode"
struct store;
int bounce_switch_get(struct store *st);
int bounce_switch_set(struct store *st, const char *word);

/* Parse data (len bytes).  Always fills *info; never fails. */
void bounce_parse(const void *data, size_t len, const struct bounce_policy *pol,
                  struct bounce_info *info);

#endif
