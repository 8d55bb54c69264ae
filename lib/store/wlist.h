/* lib/store/wlist.h - the admin whitelist: entries kept in the store, and the
 * cheap lookups the whitelist check makes for every connection
 *
 * Store namespace "whitelist" (lib/store), written by portcullisctl and read
 * by the milter, which obeys a change at its next lookup, without a reload.
 *
 *   key    "KIND:VALUE", VALUE in the canonical form wlist_normalise() makes
 *   value  text, one "name=value" line each, values printable ASCII:
 *            created=EPOCH      when it was added
 *            by=LOGIN           who added it (login name)
 *            comment=TEXT       free text ("" allowed)
 *   expiry the store's record expiry (0 = never): an entry with
 *          --expires goes away by itself
 *
 * Kinds and what they match (first match wins; scope = what the OK
 * verdict of the whitelist check whitelists, lib/engine.h):
 *   client     192.0.2.7, 2001:db8::7   the client address (connection)
 *   network    192.0.2.0/24             a CIDR holding the client address
 *                                       (connection)
 *   host       mx.example.com           the verified client name, exactly;
 *              .example.com             or any name below example.com (not
 *                                       example.com itself); "*.example.com"
 *                                       is stored as ".example.com"
 *                                       (connection)
 *   sender     user@example.com         the envelope sender (transaction)
 *   domain     example.com              the sender domain and every domain
 *                                       below it (transaction)
 *   recipient  user@example.org         that recipient only: the per-
 *                                       recipient opt-out (that recipient)
 * Addresses and names are compared lowercased.  The null sender <> cannot
 * be whitelisted (it would let every bounce in).
 *
 * Lookups do not walk the file: each process keeps an in-memory copy of
 * the namespace, reloaded when the file's change counter (store_seqnum)
 * moved, so a lookup costs one counter read plus a few binary searches
 * (networks: a scan of the network entries only).  Thread-safe.  When the
 * store fails, the last good copy is used (logged); without one, the
 * lookup returns -1 (the check then retries: on_error skip by default).
 *
 * See also: lib/checks/whitelist.c, portcullisctl(8), lib/store/store.h.
 */
#ifndef PORTCULLIS_WLIST_H
#define PORTCULLIS_WLIST_H

#include <stddef.h>
#include <time.h>

#include "addr.h"

#define WLIST_NS          "whitelist"
#define WLIST_VALUE_MAX   330 /* canonical VALUE */
#define WLIST_KEY_MAX     (WLIST_VALUE_MAX + 16)
#define WLIST_COMMENT_MAX 400
#define WLIST_BY_MAX      64

struct store;

enum wl_kind { WL_CLIENT, WL_NETWORK, WL_HOST, WL_SENDER, WL_DOMAIN, WL_RECIPIENT, WL_NKINDS };

struct wl_entry {
	enum wl_kind kind;
	char value[WLIST_VALUE_MAX + 1];
	time_t created;
	char by[WLIST_BY_MAX + 1];
	char comment[WLIST_COMMENT_MAX + 1];
	time_t expires; /* 0: never */
};

/* "client", "network", ... ; and back (-1 for an unknown name). */
const char *wlist_kind_name(enum wl_kind k);
int wlist_kind_parse(const char *name);

/* Check value for kind and write its canonical form into dst (dstsize
 * bytes, at least WLIST_VALUE_MAX + 1): an address or network in
 * canonical text with the host bits cleared, a name or address
 * lowercased, without <> and a trailing dot.  Returns 0, or -1 with a
 * one-line reason in err. */
int wlist_normalise(enum wl_kind kind, const char *value, char *dst, size_t dstsize, char *err,
                    size_t errsize);

/* The store key of (kind, canonical value).  Returns its length. */
size_t wlist_key(enum wl_kind kind, const char *canon, char *dst, size_t dstsize);

/* Encode an entry's value (the "name=value" text) into dst; returns its
 * length.  Decode a record back (key and value as stored) into *e;
 * returns 0, or -1 when the key or value is not a whitelist entry. */
size_t wlist_encode(const struct wl_entry *e, char *dst, size_t dstsize);
int wlist_decode(const void *key, size_t keylen, const void *val, size_t vallen, time_t expires,
                 struct wl_entry *e);

/* Add (or replace) an entry with STORE_DURABLE: when this returns 0, the
 * entry survives kill -9 and power loss.  e->value must be canonical.
 * Returns 1 if an entry was replaced, 0 if added, -1 on a store error. */
int wlist_add(struct store *st, const struct wl_entry *e);

/* Delete (durably).  1 deleted, 0 not there, -1 error. */
int wlist_del(struct store *st, enum wl_kind kind, const char *canon);

/* Look up one entry.  1 found (into *e), 0 not, -1 error. */
int wlist_get(struct store *st, enum wl_kind kind, const char *canon, struct wl_entry *e);

/* The lookups of the check, on the in-memory copy.  Each returns 1 and
 * writes the matching entry's "KIND:VALUE" into match (matchsize bytes), 0
 * when nothing matches, -1 when the store failed and no copy is loaded. */
int wlist_match_client(struct store *st, const struct ipaddr *ip, const char *client_name,
                       char *match, size_t matchsize);
int wlist_match_sender(struct store *st, const struct mailaddr *sender, char *match,
                       size_t matchsize);
int wlist_match_rcpt(struct store *st, const struct mailaddr *rcpt, char *match, size_t matchsize);

/* Hash chains of a new whitelist file: few entries, and every reload of
 * the copy walks all chains (lib/store's default is for a million). */
#define WLIST_HASH_SIZE 1021

/* Set the whitelist file's hash size before the namespace's first use in
 * this process (a no-op once the file is open).  Call right after
 * store_open(). */
void wlist_prepare(struct store *st);

/* Drop the in-memory copy (tests; the next lookup reloads). */
void wlist_cache_reset(void);

#endif
