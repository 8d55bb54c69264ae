/* lib/authres.c - Authentication-Results (RFC 8601) shared by spf, dkim
 * and dmarc
 *
 * The engine writes one Authentication-Results header per message from the
 * results the identity checks record (verdict_auth, txn->auth).  Its
 * authserv-id is spf.authserv_id, or the hostname when that is empty.
 * Incoming Authentication-Results carrying our authserv-id are forgeries
 * from outside our boundary (RFC 8601 5) and are removed: by the first of
 * spf, dkim, dmarc that is enabled (authres_remover()), so that each is
 * removed once.  Thread-safe: pure functions over an immutable snapshot.
 */
#ifndef PORTCULLIS_AUTHRES_H
#define PORTCULLIS_AUTHRES_H

#include "conf.h"

/* The authserv-id of our Authentication-Results header. */
const char *authres_authserv_id(const struct conf *c);

/* 1 when the Authentication-Results value carries authserv-id ours
 * (ASCII case-insensitive, one trailing dot ignored; a token or a quoted
 * string after optional comments), else 0. */
int authres_is_ours(const char *value, const char *ours);

/* 1 when the module named module is the enabled identity check (spf, dkim,
 * dmarc) that removes forged Authentication-Results: the first of them in
 * `checks` order. */
int authres_remover(const struct conf *c, const char *module);

/* spf.authserv_id of a spf settings struct (lib/checks/spf.c). */
const char *spf_conf_authserv_id(const void *mconf);

#endif
