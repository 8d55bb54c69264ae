/* lib/batv.h - BATV "prvs" bounce address tags: make and check them
 *
 * The format (Exim's prvs, draft-levine-smtp-batv-01), documented in
 * portcullis.conf(5) so that another implementation can verify our tags:
 *
 *   prvs=KDDDHHHHHH=LOCAL@DOMAIN
 *
 *   K       one decimal digit: the number of the key that made the tag
 *   DDD     three decimal digits: the day the tag expires, as the number of
 *           whole days since 1970-01-01 UTC, modulo 1000
 *   HHHHHH  the first 3 bytes, as 6 lower-case hexadecimal digits, of
 *           HMAC-SHA1(secret of key K, "K" "DDD" "LOCAL@DOMAIN"), the
 *           address as it was signed: local part as given, domain in lower
 *           case
 *
 * A tag is valid when its key number names a known key, its HMAC matches
 * (compared in constant time, hex digits case-insensitively) and its day
 * is between today and today + valid_days (modulo 1000).  A tag whose HMAC
 * matches but whose day is outside that window is expired.
 *
 * Keys come from a file of lines "K SECRET" (K 0-9, SECRET at least 16
 * characters, '#' comments): the first key signs, all of them verify, so a
 * new key can be put first while tags of the old one are still valid.
 *
 * Every address here is hostile network text: bounded copies, no
 * allocation, thread-safe.  See also: lib/checks/batv.c (the check).
 */
#ifndef PORTCULLIS_BATV_H
#define PORTCULLIS_BATV_H

#include <stddef.h>
#include <time.h>

#define BATV_KEYS_MAX   10
#define BATV_SECRET_MAX 256
#define BATV_SECRET_MIN 16
#define BATV_TAG_LEN    16 /* "prvs=" + 10 + "=" */

struct batv_keys {
	int n;
	struct batv_key {
		int num; /* 0-9 */
		size_t len;
		unsigned char secret[BATV_SECRET_MAX];
	} k[BATV_KEYS_MAX]; /* k[0] signs */
};

enum batv_result {
	BATV_UNTAGGED, /* no "prvs=" prefix */
	BATV_VALID,
	BATV_INVALID, /* bad syntax, unknown key or wrong HMAC: forged */
	BATV_EXPIRED, /* right HMAC, day out of the window */
};

/* Parse key file text.  Returns 0, or -1 with a reason ("line N: ...") in
 * err. */
int batv_keys_parse(const char *text, struct batv_keys *keys, char *err, size_t errsize);
/* Read and parse the key file path.  Returns 0 or -1 with err. */
int batv_keys_load(const char *path, struct batv_keys *keys, char *err, size_t errsize);

/* The day number of time t: whole days since the epoch. */
long batv_day(time_t t);

/* Whether the local part (of "local@domain" or a bare local part) starts
 * with "prvs=" (any case). */
int batv_is_tagged(const char *addr);

/* Tag addr ("local@domain", domain in lower case) with key k[0] on day
 * today, valid for valid_days: writes "prvs=KDDDHHHHHH=local@domain" to
 * dst.  Returns 0, or -1 when addr is already tagged, has no '@', the
 * tagged local part would be longer than 64 characters (RFC 5321; a bounce
 * to it could not be verified), there is no key, or dst is too small. */
int batv_sign(const struct batv_keys *keys, const char *addr, long today, int valid_days, char *dst,
              size_t dstsize);

/* Check the tag of addr on day today.  Writes the untagged address to orig
 * (origsize bytes) when the tag has a valid syntax (VALID, EXPIRED and
 * INVALID by HMAC or key), else orig is "" (also for UNTAGGED). */
enum batv_result batv_check(const struct batv_keys *keys, const char *addr, long today,
                            int valid_days, char *orig, size_t origsize);

const char *batv_result_name(enum batv_result r);

/* The keys and batv.valid_days of the batv check of configuration c
 * (lib/checks/batv.c), or NULL when the check is not in `checks`. */
struct conf;
const struct batv_keys *batv_conf_keys(const struct conf *c, long *valid_days);

#endif
