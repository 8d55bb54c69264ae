/* lib/rfc5322.h - parsers for message header fields (RFC 5322, RFC 6532)
 *
 * Pure functions over one unfolded or folded field value as the MTA passes
 * it (no name, no trailing CRLF): the Date, a Message-ID and the mailboxes
 * of an address field (From:).  Every input is hostile: the parsers are
 * linear, bounded, never write past the buffers given, and accept the
 * obsolete forms receivers must accept (RFC 5322 section 4: comments
 * anywhere, two-digit years, alphabetic zones, routes).  Bytes >= 0x80 are
 * accepted as text (RFC 6532); whether they were allowed is the caller's
 * business.  Thread-safe: no state.
 *
 * See also: lib/checks/headers.c (plausibility), lib/checks/dmarc.c (the
 * From: domain).
 */
#ifndef PORTCULLIS_RFC5322_H
#define PORTCULLIS_RFC5322_H

#include <stddef.h>
#include <time.h>

#define RFC5322_DOMAIN_MAX 255

/* A date-time (RFC 5322 3.3, with 4.3's obsolete forms) as seconds since
 * the epoch, UTC.  Returns 0, or -1 when v is not one (also for impossible
 * values: 31 February, hour 25, zone +9999). */
int rfc5322_date(const char *v, time_t *t);

/* Whether v is a msg-id (RFC 5322 3.6.4): "<" id-left "@" id-right ">"
 * with optional CFWS around; id-left a dot-atom-text or quoted-string,
 * id-right a dot-atom-text or a [literal].  1 or 0. */
int rfc5322_msgid(const char *v);

/* The mailboxes of an address-list / mailbox-list value (From:, Sender:,
 * To:): display names, angle addresses, routes, groups and comments.
 * Writes the domain of the first max mailboxes to domains[i] (lower-case,
 * without the brackets of a literal) and returns how many mailboxes there
 * are (may be more than max), or -1 when the value is not an address list
 * (a bare '@' in a display name, an address without a domain, unbalanced
 * quotes, comments or brackets, an empty element). */
int rfc5322_mailboxes(const char *v, char (*domains)[RFC5322_DOMAIN_MAX + 1], int max);

/* The From: fields of a raw message (header lines with CRLF or LF line
 * ends, up to the first empty line; folded lines are joined): *nfields
 * gets how many From: fields there are, domains[] the domains of the
 * first max mailboxes over all of them.  Returns the number of mailboxes,
 * or -1 when a From: field is not a mailbox list. */
int rfc5322_from_domains(const unsigned char *msg, size_t len,
                         char (*domains)[RFC5322_DOMAIN_MAX + 1], int max, int *nfields);

#endif
