/* lib/checks/attachments.c - dangerous attachments, by name and type
 *
 * At end of DATA the message's MIME structure is walked (lib/mime.c, GMime)
 * and every part's Content-Disposition filename and Content-Type name,
 * decoded to UTF-8 (RFC 2231, RFC 2047), is matched:
 *   attachments.extension         the last extension is in the list
 *                                 (attachments.extensions_file, default:
 *                                 the built-in list = config/dangerous-
 *                                 extensions)
 *   attachments.double_extension  the same, after another extension that
 *                                 pretends to be a document
 *                                 ("invoice.pdf.exe")
 *   attachments.type              the part's content type is in
 *                                 attachments.types
 *   attachments.too_complex       the MIME structure is too deep or too
 *                                 big to be checked (mime.h bounds)
 * The reply names the file: 550 5.7.1 Attachment "invoice.pdf.exe" not
 * accepted: executable files are refused here.  Names are matched after
 * ASCII case folding, with trailing dots and spaces removed (Windows
 * ignores them).  The first hit ends the walk.
 */
#include "check.h"
#include "encode.h"
#include "engine.h"
#include "log.h"
#include "message.h"
#include "mime.h"
#include "util.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The built-in list: config/dangerous-extensions without its comments (a
 * unit test keeps them equal). */
const char attachments_builtin[] =
    "exe com scr pif cpl msi msp mst dll sys gadget application appref-ms bat cmd vbs vbe js "
    "jse wsf wsh wsc sct ps1 psm1 hta msc inf reg lnk scf url settingcontent-ms jar iso img "
    "vhd vhdx chm hlp";

struct attachments_conf {
	char *extensions_file;
	struct strlist types;
	enum mode extension;
	enum mode double_extension;
	enum mode type;
	enum mode too_complex;
	/* built by init: the extensions, lower case, sorted */
	char **ext;
	int next;
};

#define F(x) offsetof(struct attachments_conf, x)
static const struct conf_param attachments_params[] = {
	{ "attachments.extensions_file", "", CONF_STR, F(extensions_file), 0, 0,
	  "file of refused name extensions, one a line; empty: the built-in list" },
	{ "attachments.types",
	  "application/x-msdownload, application/x-msdos-program, application/x-dosexec, "
	  "application/x-ms-shortcut, application/hta",
	  CONF_LIST, F(types), 0, 0, "content types refused whatever the name" },
	{ "attachments.extension", "reject", CONF_MODE, F(extension), 0, 0,
	  "a name ends in a refused extension" },
	{ "attachments.double_extension", "reject", CONF_MODE, F(double_extension), 0, 0,
	  "a refused extension behind a harmless-looking one (invoice.pdf.exe)" },
	{ "attachments.type", "reject", CONF_MODE, F(type), 0, 0,
	  "a part's content type is in attachments.types" },
	{ "attachments.too_complex", "reject", CONF_MODE, F(too_complex), 0, 0,
	  "MIME structure too deep or too big to be checked (554 5.6.0)" },
	CONF_END
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void add_ext(struct attachments_conf *ac, const char *word, size_t n)
{
	char buf[64];

	while (n > 0 && word[0] == '.') {
		word++;
		n--;
	}
	if (n == 0 || n >= sizeof(buf))
		return;
	memcpy(buf, word, n);
	buf[n] = '\0';
	str_lower(buf, sizeof(buf), buf);
	ac->ext = xrealloc(ac->ext, sizeof(*ac->ext) * (size_t)(ac->next + 1));
	ac->ext[ac->next++] = xstrdup(buf);
}

/* Words of text, '#' comments skipped. */
static void add_words(struct attachments_conf *ac, const char *text)
{
	const char *p = text;

	while (*p) {
		size_t n;

		if (*p == '#') {
			p += strcspn(p, "\n");
			continue;
		}
		n = strcspn(p, " \t\r\n,#");
		if (n > 0) {
			add_ext(ac, p, n);
			p += n;
		} else {
			p++;
		}
	}
}

static int attachments_init(void *mconf, const struct conf *c, char *err, size_t errsize)
{
	struct attachments_conf *ac = mconf;

	(void)c;
	if (ac->extensions_file[0]) {
		FILE *fp = fopen(ac->extensions_file, "r");
		char line[1024];

		if (fp == NULL) {
			snprintf(err, errsize, "attachments.extensions_file: %s: %s",
			         ac->extensions_file, strerror(errno));
			return -1;
		}
		while (fgets(line, sizeof(line), fp))
			add_words(ac, line);
		fclose(fp);
	} else {
		add_words(ac, attachments_builtin);
	}
	if (ac->next > 0)
		qsort(ac->ext, (size_t)ac->next, sizeof(*ac->ext), cmp_str);
	return 0;
}

static void attachments_fini(void *mconf)
{
	struct attachments_conf *ac = mconf;

	for (int i = 0; i < ac->next; i++)
		free(ac->ext[i]);
	free(ac->ext);
	ac->ext = NULL;
	ac->next = 0;
}

static int refused_ext(const struct attachments_conf *ac, const char *ext)
{
	return ac->next > 0 &&
	       bsearch(&ext, ac->ext, (size_t)ac->next, sizeof(*ac->ext), cmp_str) != NULL;
}

struct scan {
	const struct attachments_conf *ac;
	struct verdicts *out;
	const char *ref;
};

/* The summary line has the symbol only: name the file here. */
static void log_name(const struct scan *s, const char *what, const char *name)
{
	char buf[400];

	log_msg(LOG_LVL_INFO, "ref=%s attachments: %s \"%s\"", s->ref, what,
	        enc_log(buf, sizeof(buf), name, 200));
}

/* 1 if a name is refused (a verdict was written). */
static int check_name(struct scan *s, const char *name)
{
	char low[512];
	size_t n;
	char *dot, *prev;

	if (name == NULL || *name == '\0')
		return 0;
	str_lower(low, sizeof(low), name);
	n = strlen(low);
	while (n > 0 && (low[n - 1] == '.' || low[n - 1] == ' ' || low[n - 1] == '\t'))
		low[--n] = '\0';
	dot = strrchr(low, '.');
	if (dot == NULL || !refused_ext(s->ac, dot + 1))
		return 0;
	*dot = '\0';
	prev = strrchr(low, '.');
	if (prev && strlen(prev + 1) >= 1 && strlen(prev + 1) <= 5 &&
	    strspn(prev + 1, "abcdefghijklmnopqrstuvwxyz0123456789") == strlen(prev + 1) &&
	    s->ac->double_extension != MODE_OFF) {
		log_name(s, "double extension", name);
		verdict_reject(
		    s->out, s->ac->double_extension, "attachments.double_extension", "550", "5.7.1",
		    "Attachment \"%.200s\" not accepted: executable files are refused here", name);
		return 1;
	}
	if (s->ac->extension == MODE_OFF)
		return 0;
	log_name(s, "extension", name);
	verdict_reject(s->out, s->ac->extension, "attachments.extension", "550", "5.7.1",
	               "Attachment \"%.200s\" not accepted: executable files are refused here",
	               name);
	return 1;
}

static int visit(const struct mime_part *p, void *arg)
{
	struct scan *s = arg;

	if (check_name(s, p->filename) || check_name(s, p->name))
		return 1;
	if (s->ac->type != MODE_OFF)
		for (int i = 0; i < s->ac->types.n; i++)
			if (strcasecmp(p->type, s->ac->types.v[i]) == 0) {
				log_name(s, p->type,
				         p->filename ? p->filename
				         : p->name   ? p->name
				                     : "(no name)");
				verdict_reject(s->out, s->ac->type, "attachments.type", "550",
				               "5.7.1",
				               "Attachment \"%.200s\" not accepted: content type "
				               "%s is refused here",
				               p->filename ? p->filename
				               : p->name   ? p->name
				                           : "(no name)",
				               s->ac->types.v[i]);
				return 1;
			}
	return 0;
}

static int attachments_eom(const struct check_ctx *cx, struct verdicts *out)
{
	struct scan s = { cx->mconf, out, cx->txn->ref };
	struct mime_info info;
	char err[200];

	if (cx->msg == NULL || cx->skip_whitelisted)
		return CHECK_DONE; /* over content.max_size, or opted out */
	if (mime_walk_message(cx->msg, visit, &s, &info, err, sizeof(err)) < 0)
		return check_retry(out, "%s", err);
	if ((info.too_complex || info.too_deep || info.too_many) && out->n == 0)
		verdict_reject(out, s.ac->too_complex, "attachments.too_complex", "554", "5.6.0",
		               "Message structure too complex to be checked (%s)",
		               info.too_complex ? "too many nested parts"
		               : info.too_deep  ? "nested deeper than 64 levels"
		                                : "more than 1000 parts");
	return CHECK_DONE;
}

const struct check_module check_attachments = {
	.name = "attachments",
	.doc = "dangerous attachments by name (RFC 2231/2047 decoded) and content type",
	.params = attachments_params,
	.conf_size = sizeof(struct attachments_conf),
	.default_mode = "reject",
	.default_on_error = "defer",
	.needs_message = 1,
	.content_safety = 1,
	.init = attachments_init,
	.fini = attachments_fini,
	.hook = {
		[STAGE_EOM] = attachments_eom,
	},
};
