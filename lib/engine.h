/* lib/engine.h - the check engine: connection and transaction state,
 * running the enabled modules per stage, and the decisions
 *
 * Driven by milter/ (one libmilter callback -> one engine_* call) and by
 * portcullisctl check / the unit tests, without an MTA.  A struct conn is
 * used by one thread at a time (libmilter serialises a connection's
 * callbacks); nothing here is shared between connections except the
 * immutable config snapshot.
 *
 * Decisions (DESIGN.md "The flow"):
 *  - verdicts from connect, HELO and MAIL are held and applied at RCPT, so
 *    the log line has the whole envelope and recipient whitelists apply;
 *  - OK at a stage whitelists its scope: connect/HELO -> the connection,
 *    MAIL and content -> the transaction, RCPT -> that recipient; a whitelist
 *    beats every held reject of the same or a wider scope;
 *  - postmaster@ and abuse@ are always accepted at RCPT;
 *  - the effective mode of a verdict is min(module mode, sub-check mode):
 *    off ignores it, monitor logs it and adds a header, defer turns a reject
 *    into a temporary failure;
 *  - scores add up per transaction (plus the recipient's own) and are
 *    compared with score.reject / score.defer at RCPT and EOM, score.tag at
 *    EOM;
 *  - every reject/defer text ends with "(ref ID); contact CONTACT", and the
 *    same ID is in the one summary log line of the transaction.
 */
#ifndef PORTCULLIS_ENGINE_H
#define PORTCULLIS_ENGINE_H

#include <stddef.h>

#include "addr.h"
#include "check.h"
#include "conf.h"
#include "encode.h"

#define HELO_MAX     255
#define HOSTNAME_MAX 255
#define REF_LEN      10

enum reply_action { REPLY_CONTINUE, REPLY_ACCEPT, REPLY_TEMPFAIL, REPLY_REJECT };

/* What the MTA is told.  text is already encoded for an SMTP reply. */
struct reply {
	enum reply_action action;
	char code[4];
	char xcode[10];
	char text[ENC_REPLY_MAX + 200];
};

/* A header the engine wants added at end of message. */
struct add_header {
	char name[64];
	char value[ENC_HEADER_MAX + 1];
	int top;    /* insert at the top (trace-like) instead of appending */
	int module; /* who asked for it (-1: the engine) */
};

/* An incoming header to remove at end of message: smfi_chgheader's name
 * and 1-based index among the message's headers of that name. */
struct del_header {
	char name[64];
	int index;
};

/* An envelope change asked for by a module (verdict_change_sender,
 * verdict_replace_rcpt): applied by milter/ at end of message. */
struct env_change {
	int rcpt;                    /* 0: change the sender; 1: replace recipient old */
	char old[VERDICT_ADDR_MAX];  /* "<local@domain>" as the MTA should match it */
	char addr[VERDICT_ADDR_MAX]; /* "<local@domain>" */
};
#define ENV_CHANGES_MAX 1000

/* More deletions than this in one message refuse it at end of message
 * (a forged header must never be kept for lack of room). */
#define DEL_HEADERS_MAX 1000
#define HDR_BUCKETS     64

struct hdr_count; /* engine-private: occurrences of one header name */

enum rcpt_outcome { RCPT_ACCEPTED, RCPT_REJECTED, RCPT_DEFERRED };

struct rcpt {
	struct mailaddr addr;
	enum rcpt_outcome outcome;
	int whitelisted; /* OK verdict or postmaster@ */
	double score;    /* this recipient's own score */
	char symbol[48]; /* what decided a reject/defer */
	struct rcpt *next;
};

struct note { /* a monitor-mode hit or a fired symbol */
	char symbol[48];
	enum action action;
	double score;
	int monitor;
	enum stage stage;
};

struct txn {
	char ref[REF_LEN + 1];
	char queue_id[64];
	struct mailaddr sender;
	char auth_authen[128]; /* {auth_authen}: SASL login, "" if none */
	int whitelisted;
	int auth_whitelisted; /* ... by SMTP AUTH only (auth_whitelist) */
	struct rcpt *rcpts, *last_rcpt;
	int nrcpt; /* RCPT commands seen */
	int naccepted;
	double score;         /* MAIL + content score */
	double content_score; /* the part of score from header/body/EOM */
	struct verdict *held; /* verdicts of MAIL */
	int nheld;
	struct note *notes;
	int nnotes;
	struct add_header *headers;
	int nheaders;
	struct del_header *dels; /* in arrival order: ascending per name */
	int ndels;
	int dels_overflow;       /* more than DEL_HEADERS_MAX were asked for */
	struct env_change *envs; /* envelope changes, in the order asked */
	int nenvs;
	struct hdr_count *hdr_seen[HDR_BUCKETS];
	long long start_ms;
	int logged;
	struct reply last_refusal; /* the last reject/defer given (action 0: none) */
	unsigned long nhdr;        /* headers seen */
	unsigned long long body_bytes;
	struct message *msg;    /* kept for needs_message modules, else NULL */
	int smtputf8;           /* MAIL FROM carried SMTPUTF8 (RFC 6531) */
	unsigned long hdr_8bit; /* header fields with a byte >= 0x80 */
	/* Authentication results of the identity checks (spf, dkim, dmarc),
	 * in the order recorded (verdict_auth); later checks read them (dmarc
	 * aligns with the spf and dkim results).  Rendered as ONE
	 * Authentication-Results header at end of message (engine_eom). */
	struct auth_result auth[AUTH_RESULTS_MAX];
	int nauth;
};

struct conn {
	struct conf *conf;                  /* the snapshot taken at connect (one reference) */
	char client_addr[64];               /* text form, "" if unknown (e.g. sendmail -bs) */
	struct ipaddr client_ip;            /* family 0 if unknown */
	char client_name[HOSTNAME_MAX + 1]; /* verified name or "unknown" */
	char helo[HELO_MAX + 1];
	/* The ref of the connection's first transaction, made at connect so
	 * that connect and HELO log lines carry it too (check_ref()). */
	char ref[REF_LEN + 1];
	int helo_seen;
	int helo_truncated;
	char daemon_name[64];
	char if_addr[64];
	char our_name[HOSTNAME_MAX + 1]; /* macro j, else conf hostname */
	char auth_authen[128];           /* SASL login of the session, "" if none */
	int whitelisted;
	int helo_whitelisted; /* ... by an OK for the HELO name */
	int trusted;          /* in trusted_networks */
	int local;            /* no address, named localhost: sendmail -bs */
	struct verdict *held; /* verdicts of connect and HELO */
	int nheld;
	double score; /* connect + HELO score */
	struct note *notes;
	int nnotes;
	struct txn *txn;
	unsigned long ntxn;
	unsigned long milter_nr; /* milter/ only: the SMFIP_NR_* flags negotiated */
	int milter_stop_txn;     /* milter/ only: this MAIL came while stopping, with
	                          * no reply to MAIL: each RCPT gets the 4.3.2 */
};

/* Create a connection bound to snapshot conf (takes a new reference). */
struct conn *engine_conn_new(struct conf *conf);
void engine_conn_free(struct conn *c); /* logs an unfinished transaction */

/* Macros from the MTA; any may be NULL. */
void engine_set_macros(struct conn *c, const char *our_name, const char *daemon_name,
                       const char *if_addr);
void engine_set_queue_id(struct conn *c, const char *qid);
/* The SASL login ({auth_authen}); with auth_whitelist the transaction (the
 * current one, and the following ones of this connection) skips all checks.
 * Best called before engine_mail(). */
void engine_set_auth(struct conn *c, const char *authen);

/* The MAIL FROM of the current transaction carried the ESMTP parameter
 * SMTPUTF8 (RFC 6531): 8-bit header fields are then allowed (RFC 6532).
 * Called by milter/ after engine_mail(); no-op without a transaction. */
void engine_set_smtputf8(struct conn *c);

/* How many header fields named name (ASCII case-insensitive) the current
 * message had so far: for checks at STAGE_EOH and later. */
int engine_header_count(const struct txn *t, const char *name);

/* Stages.  Each fills *r (REPLY_CONTINUE when nothing is to be said). */
void engine_connect(struct conn *c, const char *hostname, const char *addr, struct reply *r);
void engine_helo(struct conn *c, const char *helo, struct reply *r);
void engine_mail(struct conn *c, const char *from, struct reply *r);
void engine_rcpt(struct conn *c, const char *to, struct reply *r);
void engine_header(struct conn *c, const char *name, const char *value, struct reply *r);
void engine_eoh(struct conn *c, struct reply *r);
void engine_body(struct conn *c, const unsigned char *buf, size_t len, struct reply *r);
/* End of message: *r is the final answer.  When r->action is
 * REPLY_CONTINUE or REPLY_ACCEPT, first c->txn->dels are to be removed, the
 * LAST first (so that an MTA that renumbers after a removal still finds
 * the earlier ones), then c->txn->headers added: removing
 * first keeps our own inserted headers out of the MTA's counting. */
void engine_eom(struct conn *c, struct reply *r);
/* ... and, still only then, c->txn->envs applied in order: a sender change
 * (smfi_chgfrom), a recipient replacement (smfi_addrcpt of the new address,
 * then, only if that worked, smfi_delrcpt of the old one). */

/* Whether an enabled module of conf may change the envelope
 * (check_module.rewrites_envelope): milter/ then negotiates the actions. */
int engine_envelope_changes(const struct conf *conf);
/* The transaction ended without EOM (RSET, QUIT, lost connection, MTA
 * reject).  Logs it and frees it. */
void engine_abort(struct conn *c);
/* After eom (and after the headers were added): log the transaction with
 * the end-of-message answer *eom and free it. */
void engine_txn_end(struct conn *c, const struct reply *eom);

/* The process's store, shared by every connection (NULL: none), and
 * whether checks may change it (dry_run: portcullisctl check).  Set once
 * before the first connection.  The engine itself keeps a record of each
 * refused transaction in it (lib/store/refs.h). */
struct store;
void engine_set_store(struct store *st, int dry_run);
struct store *engine_store(void);

/* Which stages the enabled modules of conf need (bit 1<<STAGE_x). */
unsigned engine_stages_needed(const struct conf *conf);

/* Transactions begun (MAIL) and not yet ended, in the whole process: a
 * stopping daemon waits for them (milter.c). */
int engine_open_txns(void);

/* A fresh reference id: REF_LEN characters of [0-9A-Za-z]. */
void engine_make_ref(char ref[REF_LEN + 1]);

#endif
