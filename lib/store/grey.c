/* lib/store/grey.c - greylist and auto-whitelist records; see grey.h */
#include "grey.h"
#include "store.h"
#include "util.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

void grey_store_setup(struct store *st)
{
	store_ns_hash_size(st, GREY_NS, GREY_HASH_SIZE);
	store_ns_hash_size(st, AWL_NS, AWL_HASH_SIZE);
}

static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)(v & 0xff);
}

static void put64(unsigned char *p, int64_t sv)
{
	uint64_t v = (uint64_t)sv;

	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)(v & 0xff);
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t get64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return (int64_t)v;
}

/* grey_rec: flags(1) reserved(3) passes(4) defers(4) first(8) last(8) reserved(4) */
void grey_rec_encode(const struct grey_rec *r, unsigned char out[GREY_REC_SIZE])
{
	memset(out, 0, GREY_REC_SIZE);
	out[0] = (unsigned char)(r->flags & 0xff);
	put32(out + 4, r->passes);
	put32(out + 8, r->defers);
	put64(out + 12, r->first);
	put64(out + 20, r->last);
}

int grey_rec_decode(const unsigned char *in, size_t len, struct grey_rec *r)
{
	if (len != GREY_REC_SIZE)
		return -1;
	r->flags = in[0];
	r->passes = get32(in + 4);
	r->defers = get32(in + 8);
	r->first = get64(in + 12);
	r->last = get64(in + 20);
	return 0;
}

/* awl_rec: passes(4) reserved(4) first(8) last(8) */
void awl_rec_encode(const struct awl_rec *r, unsigned char out[AWL_REC_SIZE])
{
	memset(out, 0, AWL_REC_SIZE);
	put32(out, r->passes);
	put64(out + 8, r->first);
	put64(out + 16, r->last);
}

int awl_rec_decode(const unsigned char *in, size_t len, struct awl_rec *r)
{
	if (len != AWL_REC_SIZE)
		return -1;
	r->passes = get32(in);
	r->first = get64(in + 8);
	r->last = get64(in + 16);
	return 0;
}

/* --- sender normalisation ------------------------------------------------- */

static int is_sep(char ch)
{
	return ch == '-' || ch == '+' || ch == '=' || ch == '.' || ch == '_';
}

/* Replace VERP-like variable runs of the local part lp (in place): a run
 * between separators (or the ends) that is all digits, or all hex digits
 * with at least 8 of them and at least one digit, becomes "#". */
static void squash_numbers(char *lp)
{
	char out[GREY_KEY_MAX];
	size_t o = 0;
	const char *p = lp;

	while (*p && o + 2 < sizeof(out)) {
		const char *e = p;
		int digits = 0, hex = 1;

		while (*e && !is_sep(*e)) {
			if (isdigit((unsigned char)*e))
				digits++;
			else if (!isxdigit((unsigned char)*e))
				hex = 0;
			e++;
		}
		size_t n = (size_t)(e - p);
		if (n > 0 && digits > 0 && (digits == (int)n || (hex && n >= 8))) {
			out[o++] = '#';
		} else {
			if (o + n + 1 >= sizeof(out))
				break;
			memcpy(out + o, p, n);
			o += n;
		}
		if (*e)
			out[o++] = *e++;
		p = e;
	}
	out[o] = '\0';
	strcpy(lp, out); /* never longer than lp */
}

char *grey_normalise_sender(char *dst, size_t dstsize, const char *sender)
{
	char buf[GREY_KEY_MAX], *at, *lp, *p;

	if (sender == NULL || *sender == '\0' || strcmp(sender, "<>") == 0) {
		bcopy_str(dst, dstsize, "<>");
		return dst;
	}
	str_lower(buf, sizeof(buf), sender);
	at = strrchr(buf, '@');
	lp = buf;
	if (at) {
		*at = '\0';
		/* SRS: SRS0=HASH=TT=domain=local (SRS1=HASH=fwd==HASH=TT=domain=local) */
		if ((strncmp(lp, "srs0=", 5) == 0 || strncmp(lp, "srs1=", 5) == 0)) {
			char *parts[8];
			int n = 0;

			for (p = lp; n < 8 && (p = strchr(p, '=')) != NULL;)
				parts[n++] = ++p;
			/* the last two '='-separated fields are domain and local part */
			if (n >= 4) {
				char *dom = parts[n - 2], *user = parts[n - 1];
				char orig[GREY_KEY_MAX];

				dom[strcspn(dom, "=")] = '\0';
				if (*dom && *user) {
					snprintf(orig, sizeof(orig), "%s@%s", user, dom);
					return grey_normalise_sender(dst, dstsize, orig);
				}
			}
		}
		/* BATV: prvs=TAG=user (RFC draft), also user=TAG form "prvs=" */
		if (strncmp(lp, "prvs=", 5) == 0 && (p = strchr(lp + 5, '=')) != NULL && p[1])
			lp = p + 1;
		else if (strncmp(lp, "btv1==", 6) == 0 && (p = strstr(lp + 6, "==")) != NULL &&
		         p[2])
			lp = p + 2;
		squash_numbers(lp);
	}
	/* Keys never contain spaces or control characters. */
	for (p = lp; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p == 0x7f)
			*p = '?';
	if (at) {
		for (p = at + 1; *p; p++)
			if ((unsigned char)*p <= 0x20 || (unsigned char)*p == 0x7f)
				*p = '?';
		snprintf(dst, dstsize, "%s@%s", lp, at + 1);
	} else {
		bcopy_str(dst, dstsize, lp);
	}
	return dst;
}

size_t grey_key(char *dst, size_t dstsize, const char *net, const char *sender, const char *rcpt)
{
	char r[GREY_KEY_MAX];
	int n;

	str_lower(r, sizeof(r), rcpt && *rcpt ? rcpt : "<>");
	for (char *p = r; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p == 0x7f)
			*p = '?';
	n = snprintf(dst, dstsize, "%s %s %s", net, sender, r);
	if (n < 0 || (size_t)n >= dstsize)
		return 0;
	return (size_t)n;
}

int grey_key_split(char *buf, const char **net, const char **sender, const char **rcpt)
{
	char *a = strchr(buf, ' '), *b;

	if (a == NULL || (b = strchr(a + 1, ' ')) == NULL || strchr(b + 1, ' ') != NULL)
		return -1;
	*a = *b = '\0';
	*net = buf;
	*sender = a + 1;
	*rcpt = b + 1;
	return 0;
}
