/* lib/store/grey.h - greylist and auto-whitelist records: keys, sender
 * normalisation and the stored value format
 *
 * Shared by the greylist check (lib/checks/greylist.c) and portcullisctl,
 * so that both read and write the same records.  Namespaces of lib/store:
 *
 *   "greylist"  key  "NET SENDER RCPT"  (one space between the parts)
 *               value struct grey_rec, GREY_REC_SIZE bytes, big-endian
 *   "awl"       key  "NET"
 *               value struct awl_rec, AWL_REC_SIZE bytes, big-endian
 *
 * NET names where the client is, one of
 *   ip:192.0.2.0/24      the client's network (greylist.ipv4_prefix /
 *   ip:2001:db8::/64     greylist.ipv6_prefix), or its full address (/32,
 *   ip:192.0.2.7/32      /128) when its reverse name looks dynamic
 *   spf:example.com      a client that the sender domain's SPF record
 *                        authorises (a pool: any of its addresses)
 *   dom:example.com      a client with a forward-confirmed, not dynamic,
 *                        reverse name in the registered domain example.com
 * SENDER is the normalised envelope sender ("" for the null sender is
 * written as "<>"), RCPT the lowercased recipient.  Bytes <= 0x20 and 0x7f
 * in addresses are written as '?', so a key never contains a space other
 * than the two separators.
 *
 * Expiry (lib/store's record expiry): an entry that has not passed expires
 * at first + greylist.retry_window; a passed one at last use +
 * greylist.expire; an awl entry at last pass + greylist.awl_expire.
 */
#ifndef PORTCULLIS_GREY_H
#define PORTCULLIS_GREY_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define GREY_NS "greylist"
#define AWL_NS  "awl"

#define GREY_KEY_MAX  600
#define GREY_NET_MAX  300
#define GREY_REC_SIZE 32
#define AWL_REC_SIZE  24

#define GREY_PASSED 0x01 /* a retry came after the delay: passes until expiry */
#define GREY_NOGREY 0x02 /* score-aware mode decided not to greylist it */

struct grey_rec {
	unsigned flags;  /* GREY_PASSED, GREY_NOGREY */
	uint32_t passes; /* recipients passed with this triplet */
	uint32_t defers; /* deferrals given */
	int64_t first;   /* first seen (start of the current delay) */
	int64_t last;    /* last seen */
};

struct awl_rec {
	uint32_t passes; /* transactions that passed greylisting */
	int64_t first;
	int64_t last;
};

/* Hash sizes of the greylist and awl files, for store_ns_hash_size():
 * measured on this kind of machine with a million greylist records, TDB
 * did ~54k mixed ops/s with 10,007 chains, ~300k with 131,071 and ~380k
 * with 1,048,573 (TDB's default is 131). */
#define GREY_HASH_SIZE 1048573
#define AWL_HASH_SIZE  131071

struct store;
/* Set those hash sizes on st (before the namespaces are first used: an
 * existing file keeps its own).  Called by the daemon and portcullisctl. */
void grey_store_setup(struct store *st);

void grey_rec_encode(const struct grey_rec *r, unsigned char out[GREY_REC_SIZE]);
/* Returns 0, or -1 when len is not GREY_REC_SIZE. */
int grey_rec_decode(const unsigned char *in, size_t len, struct grey_rec *r);
void awl_rec_encode(const struct awl_rec *r, unsigned char out[AWL_REC_SIZE]);
int awl_rec_decode(const unsigned char *in, size_t len, struct awl_rec *r);

/* Normalise an envelope sender (the address as given, without <>) so that
 * a retry matches its first attempt: lowercase; BATV "prvs=TAG=user" and
 * "btv1==TAG==user" prefixes removed; SRS0/SRS1 ("SRS0=HH=TT=domain=user@
 * forwarder") rewritten to the original user@domain; numeric VERP-style
 * parts of the local part (runs of digits, or hex runs of 8 or more,
 * between '-', '+', '=', '.' or '_') replaced by '#'.  Writes "<>" for the
 * null sender.  Returns dst. */
char *grey_normalise_sender(char *dst, size_t dstsize, const char *sender);

/* Join NET, SENDER (already normalised) and RCPT (lowercased here) into a
 * key.  Returns the key length, or 0 if it does not fit. */
size_t grey_key(char *dst, size_t dstsize, const char *net, const char *sender, const char *rcpt);

/* Split a key into its three parts (pointers into buf, a copy of the key).
 * Returns 0, or -1 if it is not a greylist key. */
int grey_key_split(char *buf, const char **net, const char **sender, const char **rcpt);

#endif
