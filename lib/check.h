/* lib/check.h - the check module interface
 *
 * A check module is a constant struct check_module: a name, a table of its
 * parameters (struct conf_param, keys "NAME.param", offsets into its own
 * settings struct of conf_size bytes), optional init/fini, and one optional
 * hook per SMTP stage.  Every module also gets two automatic parameters,
 * NAME.mode (reject|defer|monitor|off) and NAME.on_error (defer|skip), and
 * a content-safety module a third, NAME.skip_whitelisted (yes|no).
 *
 * A hook returns whether it WORKED:
 *   CHECK_DONE   it ran; its decisions (if any) are in *out
 *   CHECK_RETRY  a temporary problem (DNS timeout, locked store...): the
 *                engine applies NAME.on_error (defer or skip)
 * Its DECISIONS go through the verdict_* calls below, zero or more per call.
 * Hooks see the connection and transaction read only, never SMFICTX, never
 * exit, never block without a deadline.  Hooks run on libmilter's threads:
 * module state outside the settings struct must be thread-safe.
 *
 * See also: engine.h (the state hooks read), registry.c (the one list).
 */
#ifndef PORTCULLIS_CHECK_H
#define PORTCULLIS_CHECK_H

#include <stddef.h>

#include "conf.h"

enum stage {
	STAGE_CONNECT,
	STAGE_HELO,
	STAGE_MAIL,
	STAGE_RCPT,
	STAGE_HEADER,
	STAGE_EOH,
	STAGE_BODY,
	STAGE_EOM,
	STAGE_COUNT
};

enum check_status { CHECK_DONE = 0, CHECK_RETRY = 1 };

enum action { ACT_DUNNO, ACT_OK, ACT_SCORE, ACT_DEFER, ACT_REJECT };

#define VERDICT_TEXT_MAX 400
#define VERDICTS_MAX     16
#define VERDICT_HDRS_MAX 4
#define VERDICT_HDR_MAX  1000
#define VERDICT_DELS_MAX 2
#define VERDICT_ENVS_MAX 32
#define VERDICT_ADDR_MAX 330 /* "<" + RFC 5321 path + ">" */

/* One result of an authentication method for the Authentication-Results
 * header (RFC 8601): "METHOD=RESULT PROP=VALUE EXTRA", e.g. method "dkim",
 * result "pass", prop "header.d", value "example.org", extra
 * "header.s=sel header.b=AbCdEfGh".  The engine keeps them per
 * transaction (txn->auth, which later checks read: dmarc uses the spf and
 * dkim results) and writes ONE Authentication-Results header with all of
 * them at end of message.  Every field must hold validated tokens only
 * (result words, validated domains, base64 text, a comment built by the
 * module), never raw network text. */
#define AUTH_RESULTS_MAX 16
#define VERDICT_AUTH_MAX 8
struct auth_result {
	char method[8];  /* "spf", "dkim", "dmarc" */
	char result[16]; /* "pass", "fail", "temperror", ... */
	char prop[16];   /* "smtp.mailfrom", "smtp.helo", "header.d", "header.from" */
	char value[256]; /* a domain */
	char extra[300]; /* comment and further properties, may be "" */
	int noheader;    /* kept for later checks, not written (e.g. spf.add_headers = no) */
};

struct verdict {
	enum action action;
	enum mode mode; /* the sub-check's own mode (MODE_REJECT if none) */
	double score;
	char symbol[48];             /* "helo.bare_ip": module.subcheck */
	char code[4];                /* "550" */
	char xcode[10];              /* "5.7.1" */
	char text[VERDICT_TEXT_MAX]; /* raw; encoded by the engine per sink */
	int module;                  /* filled in by the engine */
	enum stage stage;            /* filled in by the engine */
};

struct verdicts {
	int n;
	struct verdict v[VERDICTS_MAX];
	char error[200]; /* reason for CHECK_RETRY, for the log */
	/* The reply for on_error = defer, when the module chose one with
	 * check_retry_reply(); empty: "451 4.3.0 Temporary failure in the NAME
	 * check". */
	char retry_code[4];
	char retry_xcode[10];
	/* Set by the module when the failure is an event that was logged once
	 * when it started (a store that does not answer, a full disk): the
	 * engine then logs this transaction's failure at debug level only, not
	 * as a warning per message.  Reset by the engine before each hook. */
	int logged_once;
	/* Headers the module asks to add (verdict_header); the engine resets
	 * nhdr before each hook call. */
	int nhdr;
	struct verdict_hdr {
		char name[64];
		char value[VERDICT_HDR_MAX];
		int top;
		int once; /* replace this module's earlier header of that name */
	} hdr[VERDICT_HDRS_MAX];
	/* Incoming headers the module asks to remove (verdict_delete_header);
	 * the engine resets ndel before each hook call. */
	int ndel;
	struct verdict_del {
		char name[64];
		int index;
	} del[VERDICT_DELS_MAX];
	/* Authentication results (verdict_auth); the engine resets nauth
	 * before each hook call. */
	int nauth;
	struct auth_result auth[VERDICT_AUTH_MAX];
	/* Envelope changes the module asks for (verdict_change_sender,
	 * verdict_replace_rcpt); the engine resets nenv before each hook call. */
	int nenv;
	struct verdict_env {
		int rcpt;                    /* 0: new sender; 1: recipient old becomes new */
		char old[VERDICT_ADDR_MAX];  /* rcpt: the recipient as the MTA gave it */
		char addr[VERDICT_ADDR_MAX]; /* the new address, "local@domain" */
	} env[VERDICT_ENVS_MAX];
};

struct conn;
struct message;
struct txn;
struct rcpt;
struct store;

struct check_ctx {
	const struct conf *conf;
	const void *mconf; /* the module's settings struct */
	const struct conn *conn;
	const struct txn *txn;   /* NULL before MAIL */
	const struct rcpt *rcpt; /* STAGE_RCPT only */
	const char *hdr_name;    /* STAGE_HEADER only */
	const char *hdr_value;
	/* STAGE_HEADER only: the occurrence of hdr_name in the message so far,
	 * names compared case-insensitively, 1 for the first: the index
	 * smfi_chgheader() expects.  Counted by the engine for every header,
	 * also while no module runs. */
	int hdr_index;
	const unsigned char *body; /* STAGE_BODY only */
	size_t body_len;
	/* STAGE_EOM only, for modules with needs_message: the whole message
	 * as received (message.h); NULL when it was not collected (e.g. the
	 * transaction is whitelisted).  Only message_fd() and message_data()
	 * may be called on it. */
	struct message *msg;
	/* When the stage's DNS time is up (now_ms() clock): every check of a
	 * stage shares one dns.timeout_ms, see check_dns_timeout(). */
	long long dns_deadline_ms;
	/* The process's store (lib/store/store.h), NULL when none is open; and
	 * whether this is a dry run (portcullisctl check), in which a
	 * module reads the store but must not change it. */
	struct store *store;
	int dry_run;
	/* STAGE_RCPT only: an earlier check of this stage already holds a
	 * reject or defer for this recipient (the greylist, last, then keeps
	 * no entry for a recipient that is refused anyway). */
	int rcpt_refused;
	/* Content-safety modules only (check_module.content_safety): the mail
	 * is whitelisted, trusted or authenticated and the admin set
	 * NAME.skip_whitelisted = yes.  The module must then not inspect
	 * the message nor refuse it; it may still tidy up (remove forged
	 * status headers, add "NotScanned (whitelisted)"). */
	int skip_whitelisted;
};

/* The ref for a log line about this transaction: the transaction's, or
 * before MAIL the one its connection's first transaction will have. */
const char *check_ref(const struct check_ctx *cx);

/* What is left of the stage's DNS time, in ms (0 when it is used up): the
 * timeout a check gives dns_batch_new(), so that all DNS checks of one
 * stage together wait at most dns.timeout_ms. */
int check_dns_timeout(const struct check_ctx *cx);

typedef int (*check_hook)(const struct check_ctx *cx, struct verdicts *out);

struct check_module {
	const char *name;
	const char *doc;
	const struct conf_param *params;
	size_t conf_size;
	const char *default_mode;     /* "reject" unless said otherwise */
	const char *default_on_error; /* "defer" or "skip" */
	/* Set when the module reads cx->msg at STAGE_EOM: the engine then
	 * asks the MTA for the headers and body and keeps them. */
	int needs_message;
	/* Set for content-safety checks (antivirus, dangerous attachments):
	 * they run at the content stages (header, eoh, body, eom) also for
	 * whitelisted, trusted and authenticated mail, and their refusals are
	 * never forgiven by a whitelist (DESIGN.md principle 4), unless the
	 * admin sets the automatic parameter NAME.skip_whitelisted = yes. */
	int content_safety;
	/* Set for limits on authenticated senders (ratelimit): the module's
	 * MAIL and RCPT hooks run also for a transaction that only SMTP AUTH
	 * whitelisted (auth_whitelist = yes), and its refusals there stand;
	 * whitelisted or trusted clients and whitelisted senders and
	 * recipients still skip it. */
	int auth_limit;
	/* Set when the module may ask for envelope changes (verdict_change_sender,
	 * verdict_replace_rcpt): milter/ then negotiates the MTA's change-sender
	 * and add/delete-recipient actions, which it does only while such a
	 * module is enabled.  Its EOM hook also runs for whitelisted, trusted
	 * and authenticated mail, with cx->skip_whitelisted set: there it may
	 * only change the envelope (e.g. sign the sender), its decisions are
	 * dropped. */
	int rewrites_envelope;
	/* Prepare settings after parsing (compile, cross-check).  Returns 0,
	 * or -1 with "KEY: reason" in err. */
	int (*init)(void *mconf, const struct conf *c, char *err, size_t errsize);
	void (*fini)(void *mconf);
	check_hook hook[STAGE_COUNT];
};

/* The registry: every module, in one table (registry.c). */
extern const struct check_module *const check_registry[];
extern const int check_registry_count;
int check_find(const char *name); /* index or -1 */

/* Decisions.  text is a printf format built by the module (never from
 * network input); network strings go in as "%s" arguments. */
void verdict_ok(struct verdicts *out, const char *symbol);
void verdict_score(struct verdicts *out, enum mode mode, const char *symbol, double score,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void verdict_reject(struct verdicts *out, enum mode mode, const char *symbol, const char *code,
                    const char *xcode, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
void verdict_defer(struct verdicts *out, enum mode mode, const char *symbol, const char *code,
                   const char *xcode, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Ask for a header to be added to the message (top: inserted above the
 * others, like a trace header).  Allowed at MAIL, RCPT and EOM (and in a
 * hook that then returns CHECK_RETRY): the engine keeps it with the
 * transaction and adds it at end of message if the message is accepted,
 * whatever the module's mode except off.  The value is encoded with
 * enc_header() by the engine; fmt is built by the module and must only
 * quote validated tokens (addresses, result words, validated domains),
 * never raw HELO or other network text.  At most VERDICT_HDRS_MAX per hook
 * call; more are dropped with a warning. */
void verdict_header(struct verdicts *out, const char *name, int top, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The same, but replacing a header of the same name that this module asked
 * for earlier in the transaction (one X-Greylist however many recipients
 * were delayed). */
void verdict_header_once(struct verdicts *out, const char *name, int top, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Ask for the incoming header name (the header of this STAGE_HEADER call:
 * cx->hdr_name, cx->hdr_index) to be removed, e.g. a forged trace header.
 * Only at STAGE_HEADER; ignored elsewhere.  Like verdict_header: kept with
 * the transaction, applied at end of message if the message is accepted,
 * whatever the module's mode except off, before our own headers are added. */
void verdict_delete_header(struct verdicts *out, const char *name, int index);
/* Record an authentication result for the one Authentication-Results
 * header (struct auth_result above).  Allowed at every stage, also in a
 * hook that returns CHECK_RETRY; kept whatever the module's mode except
 * off; the header is added at end of message if the message is accepted.
 * extra is a printf format built by the module over validated tokens. */
void verdict_auth(struct verdicts *out, const char *method, const char *result, const char *prop,
                  const char *value, const char *extra_fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* Ask for the envelope sender to be replaced by addr ("local@domain"),
 * or recipient old (its address as cx->rcpt / txn->rcpts hold it: the
 * mailaddr's full form) by addr.  Only for modules with rewrites_envelope,
 * only at EOM; like verdict_header kept with the transaction and applied at
 * end of message if the message is accepted, whatever the module's mode
 * except off (milter/: smfi_chgfrom, smfi_addrcpt then smfi_delrcpt, so a
 * recipient is never dropped without its replacement).  The last sender
 * change wins; at most VERDICT_ENVS_MAX per hook call. */
void verdict_change_sender(struct verdicts *out, const char *addr);
void verdict_replace_rcpt(struct verdicts *out, const char *old, const char *addr);
/* Record a temporary failure of the check itself (returns CHECK_RETRY). */
int check_retry(struct verdicts *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same, naming the reply to give when NAME.on_error = defer, e.g.
 * "450", "4.1.8", "Sender domain lookup failed for %s"; the text is also
 * the reason logged. */
int check_retry_reply(struct verdicts *out, const char *code, const char *xcode, const char *fmt,
                      ...) __attribute__((format(printf, 4, 5)));

#endif
