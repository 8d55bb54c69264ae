/* milter/portcullisctl.c - portcullisctl(8): the admin tool
 *
 *   portcullisctl [-c FILE] check --ip ADDR [--name HOST] [--helo NAME]
 *                 [--from ADDR] --rcpt ADDR [--rcpt ADDR...] [--auth USER]
 *                 [--message FILE|-]
 *       run the configured checks for one made-up transaction, without an
 *       MTA, and print what each stage would answer (a dry run); the
 *       content checks (clamav included: the scanner helper is this
 *       program started again) see FILE or a small made-up message
 *   portcullisctl [-c FILE] bounce mode reject|monitor|config | bounce status
 *       the joe-job switch of the bounce and batv checks (ctl_bounce.c)
 *   portcullisctl [-c FILE] batv sign ADDR | batv check ADDR
 *       make or check a BATV tag with the configured keys
 *   portcullisctl [-c FILE] reload
 *       tell the running daemon (pidfile) to reload its configuration
 *   portcullisctl [-c FILE] greylist|awl|whitelist|expire|stats|dump|load|
 *                 explain ...
 *       work on the store in state_dir while the daemon runs (ctl_store.c);
 *       stats also shows the running daemon's counters, read from its
 *       metrics listener (metrics.listen), in a form for people
 *   portcullisctl [-c FILE] report [--since T] [--log FILE]... [--top N]
 *       a summary of the daemon's log, like pflogsumm (ctl_report.c)
 *
 * Exit status: 0 accepted / done, 1 rejected or deferred (check), not
 * found or refused, 2 usage, configuration or store error, 3 the daemon
 * could not be asked (stats with metrics.listen set).
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "av.h"
#include "conf.h"
#include "ctl.h"
#include "engine.h"
#include "grey.h"
#include "log.h"
#include "metrics.h"
#include "metrics_http.h"
#include "store.h"
#include "util.h"
#include "wlist.h"

#define DEFAULT_CONF SYSCONFDIR "/portcullis/portcullis.conf"

static void usage(FILE *fp)
{
	fputs("usage: portcullisctl [-c FILE] COMMAND ...\n"
	      "  check --ip ADDR [--name HOST] [--helo NAME] [--from ADDR]\n"
	      "        --rcpt ADDR [--rcpt ADDR...] [--auth USER] [--message FILE|-]\n"
	      "  reload\n"
	      "  whitelist add KIND VALUE [--comment TEXT] [--expires TIME]\n"
	      "  whitelist add --from-ref REF [--comment TEXT] [--expires TIME]\n"
	      "  whitelist del KIND VALUE\n"
	      "  whitelist list [KIND]\n"
	      "        KIND: client, network, host, sender, domain, recipient\n"
	      "  explain REF [--log FILE]\n"
	      "  report [--since 24h|7d|yesterday|DATE] [--until TIME] [--log FILE|-]...\n"
	      "         [--top N] [--keep N]\n"
	      "  greylist list [--sender ADDR] [--rcpt ADDR] [--net NET]\n"
	      "  greylist show|del KEY | [--ip ADDR] [--from ADDR] [--rcpt ADDR]\n"
	      "  awl list | awl del NET\n"
	      "  verify list [PREFIX] | verify delete KEY|ADDRESS\n"
	      "  ratelimit list [PREFIX] | ratelimit reset KEY\n"
	      "  expire | stats | dump [NAMESPACE...] | load FILE|-\n"
	      "  dmarc report DOMAIN [--since TIME]\n"
	      "  bounce mode reject|monitor|config | bounce status\n"
	      "  batv sign ADDR | batv check ADDR\n"
	      "portcullisctl -V\n",
	      fp);
}

static int show(const char *stage, const struct reply *r)
{
	switch (r->action) {
	case REPLY_CONTINUE:
	case REPLY_ACCEPT: printf("%-8s ok\n", stage); return 0;
	default: printf("%-8s %s %s %s\n", stage, r->code, r->xcode, r->text); return 1;
	}
}

static const char *const stage_label[STAGE_COUNT] = {
	"connect", "helo", "mail", "rcpt", "header", "eoh", "body", "eom",
};

/* Print the checks' decisions noted since the last call (*seen of n). */
static void show_notes(const struct note *notes, int n, int *seen)
{
	for (; *seen < n; (*seen)++) {
		const struct note *v = &notes[*seen];
		const char *what = v->action == ACT_OK       ? "ok (whitelisted)"
		                   : v->action == ACT_REJECT ? "reject"
		                   : v->action == ACT_DEFER  ? "defer"
		                   : v->action == ACT_SCORE  ? "score"
		                                             : "dunno";
		if (v->action == ACT_SCORE)
			printf("  check  %-28s score %+.2f%s (%s)\n", v->symbol, v->score,
			       v->monitor ? " monitor" : "", stage_label[v->stage]);
		else
			printf("  check  %-28s %s%s (%s)\n", v->symbol, what,
			       v->monitor ? " monitor" : "", stage_label[v->stage]);
	}
}

static void show_all_notes(const struct conn *c, int *cseen, int *tseen)
{
	show_notes(c->notes, c->nnotes, cseen);
	if (c->txn)
		show_notes(c->txn->notes, c->txn->nnotes, tseen);
}

/* An address as the MTA passes it: in <angle brackets>, added when the
 * admin left them out ("a@example.org" -> "<a@example.org>"). */
static char *bracketed[257];
static int nbracketed;

static const char *bracket(const char *addr)
{
	if (addr[0] == '<' || nbracketed == (int)ARRAY_SIZE(bracketed))
		return addr;
	return bracketed[nbracketed++] = xasprintf("<%s>", addr);
}

static void free_bracketed(void)
{
	while (nbracketed > 0)
		free(bracketed[--nbracketed]);
}

/* Read a whole message file (or "-": stdin), at most 64 MiB. */
static char *read_message(const char *path, size_t *len)
{
	FILE *fp = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	size_t cap = 65536, n = 0, k;
	char *buf;

	if (fp == NULL) {
		fprintf(stderr, "portcullisctl: check --message %s: %s\n", path, strerror(errno));
		return NULL;
	}
	buf = xmalloc(cap);
	while ((k = fread(buf + n, 1, cap - n, fp)) > 0) {
		n += k;
		if (n == cap) {
			if (cap >= 64u << 20) {
				fprintf(stderr, "portcullisctl: check --message %s: over 64 MiB\n",
				        path);
				free(buf);
				buf = NULL;
				break;
			}
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
	}
	if (buf && ferror(fp)) {
		fprintf(stderr, "portcullisctl: check --message %s: %s\n", path, strerror(errno));
		free(buf);
		buf = NULL;
	}
	if (fp != stdin)
		fclose(fp);
	*len = n;
	return buf;
}

/* Hand a message to the engine as an MTA would: each header (name, value
 * with its folding kept), end of headers, then the body with CRLF line
 * ends.  Returns the first answer that is not CONTINUE (or CONTINUE). */
static void feed_message(struct conn *c, const char *msg, size_t len, struct reply *r)
{
	size_t i = 0;
	char *body;
	size_t blen = 0;

	r->action = REPLY_CONTINUE;
	while (i < len && msg[i] != '\r' && msg[i] != '\n') {
		size_t start = i, colon = 0, end;
		char *name, *value;

		/* one header: up to a line end not followed by white space */
		for (;;) {
			while (i < len && msg[i] != '\n')
				i++;
			if (i + 1 < len && (msg[i + 1] == ' ' || msg[i + 1] == '\t')) {
				i++;
				continue;
			}
			break;
		}
		end = i;
		if (i < len)
			i++;
		if (end > start && msg[end - 1] == '\r')
			end--;
		while (start + colon < end && msg[start + colon] != ':')
			colon++;
		if (start + colon >= end)
			continue; /* not a header line: skipped, as an MTA would refuse it */
		name = xstrndup(msg + start, colon);
		value = xstrndup(msg + start + colon + 1, end - start - colon - 1);
		engine_header(c, name, value[0] == ' ' ? value + 1 : value, r);
		free(name);
		free(value);
		if (r->action != REPLY_CONTINUE)
			return;
	}
	if (i < len && msg[i] == '\r')
		i++;
	if (i < len && msg[i] == '\n')
		i++;
	engine_eoh(c, r);
	if (r->action != REPLY_CONTINUE)
		return;
	body = xmalloc(2 * (len - i) + 1);
	for (; i < len; i++) {
		if (msg[i] == '\n' && (blen == 0 || body[blen - 1] != '\r'))
			body[blen++] = '\r';
		body[blen++] = msg[i];
	}
	if (blen)
		engine_body(c, (const unsigned char *)body, blen, r);
	free(body);
}

/* What the MTA would do with the whole transaction, in words. */
static void show_decision(int nrcpt, int accepted, int eom_ran, const struct reply *last,
                          const struct reply *eom)
{
	if (accepted == 0) {
		printf("decision %s: every recipient refused at RCPT (%s %s)\n",
		       last->action == REPLY_REJECT ? "reject" : "defer", last->code, last->xcode);
	} else if (eom_ran && eom->action == REPLY_REJECT) {
		printf("decision reject at end of DATA (%s %s): the message is refused "
		       "for every recipient\n",
		       eom->code, eom->xcode);
	} else if (eom_ran && eom->action == REPLY_TEMPFAIL) {
		printf("decision defer at end of DATA (%s %s): the sender is told to retry "
		       "the message later\n",
		       eom->code, eom->xcode);
	} else if (accepted < nrcpt) {
		printf("decision accept for %d of %d recipients; the others are refused at RCPT\n",
		       accepted, nrcpt);
	} else {
		printf("decision accept\n");
	}
}

static int cmd_check(struct conf *conf, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ip", required_argument, NULL, 'i' },
		{ "name", required_argument, NULL, 'n' },
		{ "helo", required_argument, NULL, 'h' },
		{ "from", required_argument, NULL, 'f' },
		{ "rcpt", required_argument, NULL, 'r' },
		{ "auth", required_argument, NULL, 'a' },
		{ "message", required_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 },
	};
	const char *ip = NULL, *name = "unknown", *helo = NULL, *from = "<>", *auth = NULL;
	const char *msgfile = NULL;
	char *msg = NULL;
	size_t msglen = 0;
	struct reply last = { 0 }, eom = { 0 };
	const char *rcpts[256];
	int nrcpt = 0, opt, failed = 0, accepted = 0, cseen = 0, tseen = 0;
	struct conn *c;
	struct reply r;
	struct store *st = NULL;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'i': ip = optarg; break;
		case 'n': name = optarg; break;
		case 'h': helo = optarg; break;
		case 'f': from = bracket(optarg); break;
		case 'a': auth = optarg; break;
		case 'm': msgfile = optarg; break;
		case 'r':
			if (nrcpt >= (int)ARRAY_SIZE(rcpts)) {
				fprintf(stderr, "portcullisctl: too many --rcpt\n");
				return 2;
			}
			rcpts[nrcpt++] = bracket(optarg);
			break;
		default: usage(stderr); return 2;
		}
	}
	if (ip == NULL || nrcpt == 0 || optind < argc) {
		fprintf(stderr, "portcullisctl: check needs --ip and at least one --rcpt\n");
		return 2;
	}
	if (msgfile) {
		if ((msg = read_message(msgfile, &msglen)) == NULL)
			return 2;
	} else {
		/* a small made-up message, so that the content checks run */
		char buf[1024];

		snprintf(buf, sizeof(buf),
		         "From: %s\r\nTo: %s\r\nSubject: portcullisctl check\r\n"
		         "Message-ID: <check@portcullisctl.invalid>\r\n\r\n"
		         "A test message made up by portcullisctl check.\r\n",
		         from, rcpts[0]);
		msg = xstrdup(buf);
		msglen = strlen(msg);
	}
	/* The store read as the daemon reads it (whitelist, greylist), as a
	 * dry run: checks must not change it, and no ref is kept. */
	if ((st = ctl_store_open(conf)) == NULL) /* TDB or Redis, as the daemon's */
		fprintf(stderr, "portcullisctl: warning: checks run without the store\n");
	engine_set_store(st, 1);
	c = engine_conn_new(conf);
	engine_connect(c, name, ip, &r);
	show_all_notes(c, &cseen, &tseen);
	show("connect", &r);
	if (helo) {
		engine_helo(c, helo, &r);
		show_all_notes(c, &cseen, &tseen);
		show("helo", &r);
	}
	engine_set_auth(c, auth);
	engine_mail(c, from, &r);
	show_all_notes(c, &cseen, &tseen);
	show("mail", &r);
	for (int i = 0; i < nrcpt; i++) {
		char label[32];

		snprintf(label, sizeof(label), "rcpt#%d", i + 1);
		engine_rcpt(c, rcpts[i], &r);
		show_all_notes(c, &cseen, &tseen);
		if (show(label, &r) == 0)
			accepted++;
		else
			last = r;
	}
	if (accepted) {
		printf("message  %s (%zu bytes)\n", msgfile ? msgfile : "(made up; --message FILE)",
		       msglen);
		feed_message(c, msg, msglen, &r);
		show_all_notes(c, &cseen, &tseen);
		if (r.action != REPLY_CONTINUE) {
			failed = show("data", &r);
			eom = r;
		} else {
			engine_eom(c, &eom);
			show_all_notes(c, &cseen, &tseen);
			failed = show("eom", &eom);
			for (int i = 0; c->txn && i < c->txn->nheaders; i++)
				printf("header   %s: %s\n", c->txn->headers[i].name,
				       c->txn->headers[i].value);
		}
		engine_txn_end(c, &eom);
	}
	show_decision(nrcpt, accepted, accepted > 0, &last, &eom);
	engine_conn_free(c);
	engine_set_store(NULL, 0);
	ctl_store_close(conf, st);
	av_stop(); /* the scanner helper, if clamav scanned */
	free(msg);
	return accepted == nrcpt && !failed ? 0 : 1;
}

static int cmd_reload(struct conf *conf)
{
	FILE *fp;
	long pid = 0;

	if (conf->core.pidfile[0] == '\0') {
		fprintf(stderr,
		        "portcullisctl: no pidfile configured; send SIGUSR1 to portcullis\n");
		return 2;
	}
	fp = fopen(conf->core.pidfile, "r");
	if (fp == NULL || fscanf(fp, "%ld", &pid) != 1 || pid <= 1) {
		fprintf(stderr, "portcullisctl: pidfile %s: %s\n", conf->core.pidfile,
		        fp ? "no process id" : strerror(errno));
		if (fp)
			fclose(fp);
		return 2;
	}
	fclose(fp);
	if (kill((pid_t)pid, SIGUSR1) < 0) {
		fprintf(stderr, "portcullisctl: signal process %ld: %s\n", pid, strerror(errno));
		return 2;
	}
	printf("portcullisctl: asked process %ld to reload (see its log for the result)\n", pid);
	return 0;
}

/* --- stats --------------------------------------------------------------- */

/* The samples of one scrape. */
struct stats {
	struct metrics_sample *v;
	int n;
};

/* The sum of the samples called name whose label key is val (key NULL:
 * all of them); -1 when there is none. */
static double sample_sum(const struct stats *s, const char *name, const char *key, const char *val)
{
	double sum = 0;
	int found = 0;
	char lv[128];

	for (int i = 0; i < s->n; i++) {
		if (strcmp(s->v[i].name, name) != 0)
			continue;
		if (key && (metrics_label(&s->v[i], key, lv, sizeof(lv)) < 0 || strcmp(lv, val)))
			continue;
		sum += s->v[i].value;
		found = 1;
	}
	return found ? sum : -1;
}

static void show_process(const struct stats *s)
{
	double up = sample_sum(s, "portcullis_uptime_seconds", NULL, NULL);
	long u = up > 0 ? (long)up : 0;
	char version[64] = "?";

	for (int i = 0; i < s->n; i++)
		if (strcmp(s->v[i].name, "portcullis_build_info") == 0)
			metrics_label(&s->v[i], "version", version, sizeof(version));
	printf("portcullis %s, up %ldd %02ld:%02ld:%02ld, configuration generation %.0f "
	       "(reloads: %.0f ok, %.0f failed)\n",
	       version, u / 86400, u / 3600 % 24, u / 60 % 60, u % 60,
	       sample_sum(s, "portcullis_config_generation", NULL, NULL),
	       sample_sum(s, "portcullis_config_reloads_total", "result", "ok"),
	       sample_sum(s, "portcullis_config_reloads_total", "result", "failed"));
}

static void show_transactions(const struct stats *s)
{
	static const char *const outcomes[] = { "accept", "reject", "defer", "aborted", "none" };
	double score_n = sample_sum(s, "portcullis_score_count", NULL, NULL);

	printf("\ntransactions %10.0f\n",
	       sample_sum(s, "portcullis_transactions_total", NULL, NULL));
	for (size_t i = 0; i < ARRAY_SIZE(outcomes); i++)
		printf("  %-10s %10.0f\n", outcomes[i],
		       sample_sum(s, "portcullis_transactions_total", "outcome", outcomes[i]));
	if (score_n > 0)
		printf("  mean score %10.2f\n",
		       sample_sum(s, "portcullis_score_sum", NULL, NULL) / score_n);
}

static void show_checks(const struct stats *s)
{
	static const char *const actions[] = {
		"ok", "score", "defer", "reject", "monitor", "error"
	};
	char seen[64][64];
	int nseen = 0;

	printf("\n%-16s", "check verdicts");
	for (size_t a = 0; a < ARRAY_SIZE(actions); a++)
		printf(" %9s", actions[a]);
	printf("\n");
	for (int i = 0; i < s->n && nseen < (int)ARRAY_SIZE(seen); i++) {
		char check[64];
		int dup = 0;

		if (strcmp(s->v[i].name, "portcullis_check_verdicts_total") != 0 ||
		    metrics_label(&s->v[i], "check", check, sizeof(check)) < 0)
			continue;
		for (int k = 0; k < nseen && !dup; k++)
			dup = strcmp(seen[k], check) == 0;
		if (dup)
			continue;
		bcopy_str(seen[nseen++], sizeof(seen[0]), check);
		if (sample_sum(s, "portcullis_check_verdicts_total", "check", check) <= 0)
			continue; /* nothing to say: keep the table short */
		printf("  %-14s", check);
		for (size_t a = 0; a < ARRAY_SIZE(actions); a++) {
			double n = 0;

			for (int k = 0; k < s->n; k++) {
				char c2[64], a2[16];

				if (strcmp(s->v[k].name, "portcullis_check_verdicts_total") == 0 &&
				    metrics_label(&s->v[k], "check", c2, sizeof(c2)) == 0 &&
				    metrics_label(&s->v[k], "action", a2, sizeof(a2)) == 0 &&
				    strcmp(c2, check) == 0 && strcmp(a2, actions[a]) == 0)
					n += s->v[k].value;
			}
			printf(" %9.0f", n);
		}
		printf("\n");
	}
}

/* The upper bound (le) of the first bucket holding quantile q of stage st. */
static const char *stage_quantile(const struct stats *s, const char *st, double q, char *le,
                                  size_t lesize)
{
	double count = sample_sum(s, "portcullis_stage_duration_seconds_count", "stage", st);

	for (int i = 0; count > 0 && i < s->n; i++) {
		char sv[32];

		if (strcmp(s->v[i].name, "portcullis_stage_duration_seconds_bucket") == 0 &&
		    metrics_label(&s->v[i], "stage", sv, sizeof(sv)) == 0 && strcmp(sv, st) == 0 &&
		    s->v[i].value >= q * count && metrics_label(&s->v[i], "le", le, lesize) == 0) {
			if (strcmp(le, "+Inf") != 0)
				snprintf(le, lesize, "%g", strtod(le, NULL) * 1000);
			return le;
		}
	}
	return "-";
}

static void show_stages(const struct stats *s)
{
	static const char *const stages[] = { "connect", "helo", "mail", "rcpt",
		                              "header",  "eoh",  "body", "eom" };

	printf("\n%-16s %10s %10s %10s %10s\n", "stage checks", "runs", "mean ms", "p50 <= ms",
	       "p99 <= ms");
	for (size_t i = 0; i < ARRAY_SIZE(stages); i++) {
		double n =
		    sample_sum(s, "portcullis_stage_duration_seconds_count", "stage", stages[i]);
		double sum =
		    sample_sum(s, "portcullis_stage_duration_seconds_sum", "stage", stages[i]);
		char p50[32], p99[32];

		if (n <= 0)
			continue;
		printf("  %-14s %10.0f %10.3f %10s %10s\n", stages[i], n, sum * 1000 / n,
		       stage_quantile(s, stages[i], 0.5, p50, sizeof(p50)),
		       stage_quantile(s, stages[i], 0.99, p99, sizeof(p99)));
	}
}

static void show_dns(const struct stats *s)
{
	if (sample_sum(s, "portcullis_dns_queries_total", NULL, NULL) < 0)
		return;
	printf("\ndns queries %11.0f\n", sample_sum(s, "portcullis_dns_queries_total", NULL, NULL));
	printf("  cache hits %10.0f\n",
	       sample_sum(s, "portcullis_dns_cache_hits_total", NULL, NULL));
	printf("  answers    %10.0f\n", sample_sum(s, "portcullis_dns_answers_total", NULL, NULL));
	printf("  timeouts   %10.0f\n", sample_sum(s, "portcullis_dns_timeouts_total", NULL, NULL));
	printf("  servfail   %10.0f\n", sample_sum(s, "portcullis_dns_servfail_total", NULL, NULL));
	printf("  errors     %10.0f\n", sample_sum(s, "portcullis_dns_errors_total", NULL, NULL));
	printf("  cached     %10.0f\n", sample_sum(s, "portcullis_dns_cache_entries", NULL, NULL));
}

static void show_store(const struct stats *s)
{
	int first = 1;

	for (int i = 0; i < s->n; i++) {
		char ns[64];

		if (strcmp(s->v[i].name, "portcullis_store_entries") != 0 ||
		    metrics_label(&s->v[i], "namespace", ns, sizeof(ns)) < 0)
			continue;
		if (first)
			printf("\nstore entries\n");
		first = 0;
		printf("  %-14s %10.0f\n", ns, s->v[i].value);
	}
}

/* The sections of `stats`, in order.  Another source of figures (e.g. the
 * store files read directly) is one more function here. */
static void (*const stats_sections[])(const struct stats *s) = {
	show_process, show_transactions, show_checks, show_stages, show_dns, show_store,
};

static int cmd_stats(struct conf *conf)
{
	const char *listen = conf->core.metrics_listen;
	struct stats s = { NULL, 0 };
	char err[512], *body, *line, *save = NULL;
	size_t len;
	int status;

	if (listen[0] == '\0') {
		printf("metrics: off (metrics.listen is not set in %s)\n", conf->path);
		return 0;
	}
	if (metrics_http_get(listen, "/metrics", METRICS_HTTP_TIMEOUT_MS, &status, &body, &len, err,
	                     sizeof(err)) < 0) {
		fprintf(stderr, "portcullisctl: stats: cannot read the daemon's metrics: %s\n",
		        err);
		return 3;
	}
	if (status != 200) {
		fprintf(stderr, "portcullisctl: stats: %s answered HTTP %d to GET /metrics\n",
		        listen, status);
		free(body);
		return 3;
	}
	for (line = strtok_r(body, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct metrics_sample x;

		if (metrics_parse_line(line, &x) < 0)
			continue;
		s.v = xrealloc(s.v, sizeof(*s.v) * (size_t)(s.n + 1));
		s.v[s.n++] = x;
	}
	free(body);
	if (sample_sum(&s, "portcullis_build_info", NULL, NULL) < 0) {
		fprintf(stderr, "portcullisctl: stats: %s does not serve portcullis metrics\n",
		        listen);
		free(s.v);
		return 3;
	}
	for (size_t i = 0; i < ARRAY_SIZE(stats_sections); i++)
		stats_sections[i](&s);
	free(s.v);
	return 0;
}

int main(int argc, char **argv)
{
	const char *path = DEFAULT_CONF;
	int explicit_conf = 0, rc;
	char err[1024];
	struct conf *conf;

	/* clamav in `check`: lib/av.c starts the program portcullis-av as its
	 * scanner helper, or where that is not installed /proc/self/exe, which
	 * is then this program */
	if (argc > 1 && strcmp(argv[1], "--av-helper") == 0)
		return av_helper_main(argc, argv);
	av_use_helper_program();
	int i = 1;

	log_open("portcullisctl", "stderr", "mail");
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
			path = argv[++i];
			explicit_conf = 1;
		} else if (strcmp(argv[i], "-V") == 0) {
			printf("portcullisctl %s\n", PACKAGE_VERSION);
			return 0;
		} else if (strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	if (!explicit_conf && access(path, F_OK) < 0)
		path = NULL;
	conf = conf_load(path, err, sizeof(err));
	if (conf == NULL) {
		fprintf(stderr, "portcullisctl: %s\n", err);
		return 2;
	}
	if (strcmp(argv[i], "check") == 0)
		rc = cmd_check(conf, argc - i, argv + i);
	else if (strcmp(argv[i], "reload") == 0 && i + 1 == argc)
		rc = cmd_reload(conf);
	else if (strcmp(argv[i], "greylist") == 0)
		rc = cmd_greylist(conf, argc - i, argv + i);
	else if (strcmp(argv[i], "awl") == 0)
		rc = cmd_awl(conf, argc - i, argv + i);
	else if (strcmp(argv[i], "whitelist") == 0)
		rc = cmd_whitelist(conf, argc - i, argv + i);
	else if (strcmp(argv[i], "expire") == 0)
		rc = cmd_expire(conf, argc - i, argv + i);
	else if (strcmp(argv[i], "stats") == 0) {
		rc = cmd_stats_store(conf, argc - i, argv + i);
		if (rc == 0 && i + 1 == argc)
			rc = cmd_stats(conf);
	} else if (strcmp(argv[i], "dump") == 0)
		rc = cmd_dump(conf, argc - i, argv + i);
	else if (strcmp(argv[i], "load") == 0)
		rc = cmd_load(conf, argc - i, argv + i);
	else if (strcmp(argv[i], "explain") == 0)
		rc = cmd_explain(conf, argc - i, argv + i);
	else if (strcmp(argv[i], "report") == 0)
		rc = cmd_report(conf, argc - i, argv + i);
	else if (strcmp(argv[i], "verify") == 0)
		rc = cmd_verify(conf, argc - i, argv + i);
	else if (strcmp(argv[i], "ratelimit") == 0)
		rc = cmd_ratelimit(conf, argc - i, argv + i);
	else if (strcmp(argv[i], "dmarc") == 0)
		rc = cmd_dmarc(conf, argc - i, argv + i);
	else if (strcmp(argv[i], "bounce") == 0)
		rc = cmd_bounce(conf, argc - i, argv + i);
	else if (strcmp(argv[i], "batv") == 0)
		rc = cmd_batv(conf, argc - i, argv + i);
	else {
		fprintf(stderr, "portcullisctl: unknown command '%.40s'\n", argv[i]);
		usage(stderr);
		rc = 2;
	}
	free_bracketed();
	conf_unref(conf);
	return rc;
}
