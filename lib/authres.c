/* lib/authres.c - Authentication-Results (RFC 8601) shared by spf, dkim
 * and dmarc; see authres.h.
 */
#include "authres.h"
#include "check.h"

#include <string.h>

const char *authres_authserv_id(const struct conf *c)
{
	int i = check_find("spf");
	const char *id = i >= 0 && c->mod[i].data ? spf_conf_authserv_id(c->mod[i].data) : NULL;

	return id && id[0] ? id : c->hostname;
}

static unsigned char lower(unsigned char ch)
{
	return ch >= 'A' && ch <= 'Z' ? (unsigned char)(ch - 'A' + 'a') : ch;
}

/* Skip CFWS (RFC 5322 3.2.2): white space, folding and nested comments
 * with quoted pairs.  Linear, no recursion; an unclosed comment runs to
 * the end. */
static const char *skip_cfws(const char *p)
{
	size_t depth = 0;

	for (; *p; p++) {
		if (depth > 0 && *p == '\\' && p[1]) {
			p++;
		} else if (*p == '(') {
			depth++;
		} else if (depth > 0 && *p == ')') {
			depth--;
		} else if (depth == 0 && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
			break;
		}
	}
	return p;
}

/* The authserv-id of an Authentication-Results value (RFC 8601 2.2: a
 * token or quoted-string after optional CFWS) into id, lower-cased,
 * without one trailing dot.  Returns 0, or -1 when there is none or it is
 * longer than idsize - 1 (then it cannot be a domain name of ours). */
static int ar_authserv_id(const char *value, char *id, size_t idsize)
{
	const char *p = skip_cfws(value);
	size_t n = 0;

	if (*p == '"') {
		for (p++; *p && *p != '"'; p++) {
			if (*p == '\\' && p[1])
				p++;
			if (n + 1 >= idsize)
				return -1;
			id[n++] = (char)lower((unsigned char)*p);
		}
	} else {
		/* token (RFC 2045 5.1): up to a tspecial, space or control */
		for (; *p && (unsigned char)*p > ' ' && (unsigned char)*p < 0x7f &&
		       strchr("()<>@,;:\\\"/[]?=", *p) == NULL;
		     p++) {
			if (n + 1 >= idsize)
				return -1;
			id[n++] = (char)lower((unsigned char)*p);
		}
	}
	if (n > 0 && id[n - 1] == '.')
		n--;
	id[n] = '\0';
	return n > 0 ? 0 : -1;
}

int authres_is_ours(const char *value, const char *ours)
{
	char id[258], want[258];
	size_t n = 0;

	if (ar_authserv_id(value, id, sizeof(id)) < 0)
		return 0;
	for (; ours[n] && n + 1 < sizeof(want); n++)
		want[n] = (char)lower((unsigned char)ours[n]);
	if (n > 0 && want[n - 1] == '.')
		n--;
	want[n] = '\0';
	return strcmp(id, want) == 0;
}

int authres_remover(const struct conf *c, const char *module)
{
	for (int i = 0; i < c->norder; i++) {
		const char *name = check_registry[c->order[i]]->name;

		if (c->mod[c->order[i]].mode == MODE_OFF)
			continue;
		if (strcmp(name, "spf") == 0 || strcmp(name, "dkim") == 0 ||
		    strcmp(name, "dmarc") == 0)
			return strcmp(name, module) == 0;
	}
	return 0;
}
