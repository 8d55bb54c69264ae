/* lib/batv.c - BATV prvs tags; see batv.h for the format */
#include "batv.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

long batv_day(time_t t)
{
	return t < 0 ? 0 : (long)(t / 86400);
}

int batv_is_tagged(const char *addr)
{
	return strncasecmp(addr, "prvs=", 5) == 0;
}

const char *batv_result_name(enum batv_result r)
{
	switch (r) {
	case BATV_UNTAGGED: return "missing";
	case BATV_VALID: return "valid";
	case BATV_INVALID: return "invalid";
	case BATV_EXPIRED: return "expired";
	}
	return "?";
}

int batv_keys_parse(const char *text, struct batv_keys *keys, char *err, size_t errsize)
{
	const char *p = text;
	int line = 0;

	memset(keys, 0, sizeof(*keys));
	while (*p) {
		size_t n = strcspn(p, "\n");
		char buf[BATV_SECRET_MAX + 64];
		char *s;

		line++;
		if (n >= sizeof(buf)) {
			snprintf(err, errsize, "line %d: too long", line);
			return -1;
		}
		memcpy(buf, p, n);
		buf[n] = '\0';
		p += n + (p[n] == '\n');
		s = str_trim(buf);
		if (*s == '\0' || *s == '#')
			continue;
		if (s[0] < '0' || s[0] > '9' || (s[1] != ' ' && s[1] != '\t')) {
			snprintf(err, errsize, "line %d: expected \"K SECRET\" with K a digit 0-9",
			         line);
			return -1;
		}
		for (int i = 0; i < keys->n; i++)
			if (keys->k[i].num == s[0] - '0') {
				snprintf(err, errsize, "line %d: key number %c given twice", line,
				         s[0]);
				return -1;
			}
		if (keys->n >= BATV_KEYS_MAX) {
			snprintf(err, errsize, "line %d: more than %d keys", line, BATV_KEYS_MAX);
			return -1;
		}
		keys->k[keys->n].num = s[0] - '0';
		s = str_trim(s + 2);
		if (strlen(s) < BATV_SECRET_MIN) {
			snprintf(err, errsize, "line %d: secret shorter than %d characters", line,
			         BATV_SECRET_MIN);
			return -1;
		}
		if (strlen(s) > BATV_SECRET_MAX) {
			snprintf(err, errsize, "line %d: secret longer than %d characters", line,
			         BATV_SECRET_MAX);
			return -1;
		}
		keys->k[keys->n].len = strlen(s);
		memcpy(keys->k[keys->n].secret, s, strlen(s));
		keys->n++;
	}
	if (keys->n == 0) {
		snprintf(err, errsize, "no key");
		return -1;
	}
	return 0;
}

int batv_keys_load(const char *path, struct batv_keys *keys, char *err, size_t errsize)
{
	char text[BATV_KEYS_MAX * (BATV_SECRET_MAX + 64) + 4096];
	char why[200];
	size_t n;
	FILE *fp = fopen(path, "r");

	if (fp == NULL) {
		snprintf(err, errsize, "%s: %s", path, strerror(errno));
		return -1;
	}
	n = fread(text, 1, sizeof(text) - 1, fp);
	if (!feof(fp)) {
		fclose(fp);
		snprintf(err, errsize, "%s: too big for a key file", path);
		return -1;
	}
	fclose(fp);
	text[n] = '\0';
	if (memchr(text, '\0', n)) {
		snprintf(err, errsize, "%s: not a text file", path);
		return -1;
	}
	if (batv_keys_parse(text, keys, why, sizeof(why)) < 0) {
		snprintf(err, errsize, "%s: %s", path, why);
		memset(text, 0, sizeof(text));
		return -1;
	}
	memset(text, 0, sizeof(text));
	return 0;
}

/* The 6 hex digits of key k over "K" "DDD" addr. */
static int tag_hash(const struct batv_key *k, const char kddd[4], const char *addr, char hex[7])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	unsigned char src[4 + 512];
	size_t alen = strlen(addr);

	if (alen > sizeof(src) - 4)
		return -1;
	memcpy(src, kddd, 4);
	memcpy(src + 4, addr, alen);
	if (HMAC(EVP_sha1(), k->secret, (int)k->len, src, 4 + alen, md, &mdlen) == NULL ||
	    mdlen < 3)
		return -1;
	for (int i = 0; i < 3; i++) {
		hex[2 * i] = "0123456789abcdef"[md[i] >> 4];
		hex[2 * i + 1] = "0123456789abcdef"[md[i] & 15];
	}
	hex[6] = '\0';
	return 0;
}

int batv_sign(const struct batv_keys *keys, const char *addr, long today, int valid_days, char *dst,
              size_t dstsize)
{
	const char *at = strrchr(addr, '@');
	char kddd[5], hex[7];

	if (keys->n == 0 || at == NULL || addr[0] == '@' || batv_is_tagged(addr) ||
	    (size_t)(at - addr) + BATV_TAG_LEN > 64)
		return -1;
	long day = ((today + valid_days) % 1000 + 1000) % 1000;

	kddd[0] = (char)('0' + keys->k[0].num % 10);
	kddd[1] = (char)('0' + day / 100);
	kddd[2] = (char)('0' + day / 10 % 10);
	kddd[3] = (char)('0' + day % 10);
	kddd[4] = '\0';
	if (tag_hash(&keys->k[0], kddd, addr, hex) < 0)
		return -1;
	if ((size_t)snprintf(dst, dstsize, "prvs=%s%s=%s", kddd, hex, addr) >= dstsize) {
		dst[0] = '\0';
		return -1;
	}
	return 0;
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int is_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

enum batv_result batv_check(const struct batv_keys *keys, const char *addr, long today,
                            int valid_days, char *orig, size_t origsize)
{
	const struct batv_key *k = NULL;
	const char *t = addr + 5;
	char kddd[5], hex[7], given[7];
	long day, diff;

	if (origsize)
		orig[0] = '\0';
	if (!batv_is_tagged(addr))
		return BATV_UNTAGGED;
	for (int i = 0; i < 4; i++)
		if (!is_digit(t[i]))
			return BATV_INVALID;
	for (int i = 4; i < 10; i++)
		if (!is_hex(t[i]))
			return BATV_INVALID;
	/* the original address: a non-empty local part and a domain */
	if (t[10] != '=' || t[11] == '@' || t[11] == '\0' || strchr(t + 11, '@') == NULL)
		return BATV_INVALID;
	if (bcopy_str(orig, origsize, t + 11) >= origsize) {
		orig[0] = '\0';
		return BATV_INVALID;
	}
	for (int i = 0; i < keys->n; i++)
		if (keys->k[i].num == t[0] - '0')
			k = &keys->k[i];
	if (k == NULL)
		return BATV_INVALID;
	memcpy(kddd, t, 4);
	kddd[4] = '\0';
	for (int i = 0; i < 6; i++)
		given[i] =
		    (char)(t[4 + i] >= 'A' && t[4 + i] <= 'F' ? t[4 + i] - 'A' + 'a' : t[4 + i]);
	given[6] = '\0';
	if (tag_hash(k, kddd, orig, hex) < 0 || CRYPTO_memcmp(hex, given, 6) != 0)
		return BATV_INVALID;
	day = (t[1] - '0') * 100 + (t[2] - '0') * 10 + (t[3] - '0');
	diff = ((day - today % 1000) % 1000 + 1000) % 1000;
	return diff <= valid_days ? BATV_VALID : BATV_EXPIRED;
}
