/* milter/milter.c - libmilter callbacks: the one place that calls libmilter
 *
 * Each callback translates its arguments into one engine_* call and the
 * engine's struct reply into smfi_setreply() plus a status.  Nothing here
 * decides anything about mail.  Threading: libmilter runs each connection's
 * callbacks one at a time, so the struct conn behind smfi_getpriv() needs no
 * lock.  On any internal trouble (no private data) the answer is a
 * temporary failure, never an accept.
 */
#include "milter.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <grp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

#include "conf.h"
#include "engine.h"
#include "log.h"
#include "util.h"

static sfsistat answer(SMFICTX *ctx, const struct reply *r)
{
	switch (r->action) {
	case REPLY_CONTINUE: return SMFIS_CONTINUE;
	case REPLY_ACCEPT: return SMFIS_ACCEPT;
	case REPLY_TEMPFAIL:
	case REPLY_REJECT:
		if (smfi_setreply(ctx, (char *)r->code, (char *)r->xcode, (char *)r->text) !=
		    MI_SUCCESS)
			log_msg(LOG_LVL_WARN, "smfi_setreply refused reply %s %s", r->code,
			        r->xcode);
		return r->action == REPLY_REJECT ? SMFIS_REJECT : SMFIS_TEMPFAIL;
	}
	return SMFIS_TEMPFAIL;
}

/* A stage negotiated without a reply (SMFIP_NR_*): the MTA waits for none.
 * The engine answers CONTINUE there (its verdicts wait for end of
 * message); anything else would be a bug, logged, never sent. */
static sfsistat no_reply(const struct reply *r, const char *stage)
{
	if (r->action != REPLY_CONTINUE)
		log_msg(LOG_LVL_WARN, "internal: a reply at %s, where none is sent", stage);
	return SMFIS_NOREPLY;
}

static const char *macro(SMFICTX *ctx, const char *name)
{
	return smfi_getsymval(ctx, (char *)name);
}

/* The connection state, created at negotiate (or connect for MTAs that do
 * not negotiate) with the configuration snapshot of that moment. */
static struct conn *conn_of(SMFICTX *ctx, int create)
{
	struct conn *c = smfi_getpriv(ctx);

	if (c == NULL && create) {
		struct conf *conf = conf_current();

		if (conf == NULL)
			return NULL;
		c = engine_conn_new(conf);
		conf_unref(conf);
		smfi_setpriv(ctx, c);
	}
	return c;
}

static sfsistat cb_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1, unsigned long f2,
                             unsigned long f3, unsigned long *pf0, unsigned long *pf1,
                             unsigned long *pf2, unsigned long *pf3)
{
	struct conn *c = conn_of(ctx, 1);
	unsigned need;
	unsigned long want = 0;

	(void)f2;
	(void)f3;
	if (c == NULL)
		return SMFIS_REJECT; /* libmilter: no filter for this connection */
	need = engine_stages_needed(c->conf);
	*pf0 = f0 & (SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_SETSYMLIST);
	/* Envelope changes (BATV: sign the sender, untag a recipient) only
	 * while a module that makes them is enabled.  Change-sender needs
	 * Postfix >= 2.6 or Sendmail >= 8.14; add/delete recipient Postfix
	 * >= 2.3 or Sendmail >= 8.12. */
	if (engine_envelope_changes(c->conf)) {
		static atomic_int warned; /* once per process, not per connection */
		unsigned long env = SMFIF_CHGFROM | SMFIF_ADDRCPT | SMFIF_DELRCPT;

		if ((f0 & env) != env && atomic_exchange(&warned, 1) == 0)
			log_msg(LOG_LVL_WARN,
			        "the MTA does not offer to change the envelope sender and "
			        "recipients (Postfix >= 2.6 or Sendmail >= 8.14 needed): BATV tags "
			        "will be neither added nor removed");
		*pf0 |= f0 & env;
	}
	/* Ask the MTA not to send what no enabled module reads. */
	if (!(need & 1u << STAGE_HEADER))
		want |= SMFIP_NOHDRS;
	if (!(need & 1u << STAGE_EOH))
		want |= SMFIP_NOEOH;
	if (!(need & 1u << STAGE_BODY))
		want |= SMFIP_NOBODY;
	want |= SMFIP_NOUNKNOWN | SMFIP_NODATA;
	if (need & 1u << STAGE_BODY)
		want |= SMFIP_SKIP;
	/* No reply to each header and to end of headers: the engine never
	 * refuses there (header-stage verdicts are held until end of
	 * message), so the MTA need not wait for us after every header. */
	want |= SMFIP_NR_HDR | SMFIP_NR_EOH;
	/* Nor to connect, HELO and MAIL: the engine holds what it finds
	 * there until RCPT (like smtpd_delay_reject), so its answer at those
	 * stages is always "continue"; the only refusals made there are the
	 * milter's own (stopping, no connection state), and they move to RCPT
	 * (cb_envfrom, cb_envrcpt).  Only from an MTA that speaks protocol 6
	 * (it offers SMFIP_SKIP, as Postfix >= 2.6 and Sendmail >= 8.14 do):
	 * libmilter hands xxfi_negotiate every SMFIP_NR_* flag whether the
	 * MTA offered it or not and answers "continue" itself to an MTA that
	 * did not, which would move those refusals for no gain; an older MTA
	 * gets them where it always did. */
	if (f1 & SMFIP_SKIP)
		want |= SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_MAIL;
	*pf1 = f1 & want;
	c->milter_nr =
	    *pf1 & (SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_MAIL | SMFIP_NR_HDR | SMFIP_NR_EOH);
	*pf2 = 0;
	*pf3 = 0;
	if (f0 & SMFIF_SETSYMLIST) {
		smfi_setsymlist(ctx, SMFIM_CONNECT,
		                "j {daemon_name} {if_addr} {client_name} {client_resolve}");
		smfi_setsymlist(ctx, SMFIM_ENVFROM, "i {auth_authen} {auth_type}");
		smfi_setsymlist(ctx, SMFIM_ENVRCPT, "i");
		smfi_setsymlist(ctx, SMFIM_EOM, "i");
	}
	return SMFIS_CONTINUE;
}

static atomic_int stopping; /* SIGTERM seen: no new connection or transaction */

#define STOP_CODE  "451"
#define STOP_XCODE "4.3.2"
#define STOP_TEXT  "Filter shutting down, try again later"

static sfsistat stop_reply(SMFICTX *ctx)
{
	smfi_setreply(ctx, STOP_CODE, STOP_XCODE, STOP_TEXT);
	return SMFIS_TEMPFAIL;
}

/* While stopping, a new connection is turned away: at connect, or (no
 * reply to connect negotiated) at each RCPT of its transactions, which
 * all begin while stopping (cb_envfrom).  Its checks do not run. */
static sfsistat cb_connect(SMFICTX *ctx, char *hostname, _SOCK_ADDR *sa)
{
	struct conn *c = conn_of(ctx, 1);
	char addr[INET6_ADDRSTRLEN] = "";
	const char *res;
	struct reply r;

	if (c == NULL)
		return SMFIS_TEMPFAIL;
	if (atomic_load(&stopping))
		return c->milter_nr & SMFIP_NR_CONN ? SMFIS_NOREPLY : SMFIS_TEMPFAIL;
	if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)sa)->sin_addr, addr,
		          sizeof(addr));
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)(void *)sa)->sin6_addr, addr,
		          sizeof(addr));
	engine_set_macros(c, macro(ctx, "j"), macro(ctx, "{daemon_name}"), macro(ctx, "{if_addr}"));
	/* Sendmail passes the PTR name even when it does not resolve back
	 * ({client_resolve} FAIL/FORGED/TEMP); Postfix passes only verified
	 * names.  The engine's client_name means "verified". */
	res = macro(ctx, "{client_resolve}");
	if (res && strcmp(res, "OK") != 0)
		hostname = NULL;
	engine_connect(c, hostname, addr, &r);
	if (c->milter_nr & SMFIP_NR_CONN)
		return no_reply(&r, "connect");
	return answer(ctx, &r);
}

static sfsistat cb_helo(SMFICTX *ctx, char *helo)
{
	struct conn *c = conn_of(ctx, 0);
	struct reply r;

	if (c == NULL)
		return SMFIS_TEMPFAIL; /* libmilter sends no reply if NR_HELO */
	if (atomic_load(&stopping))
		return c->milter_nr & SMFIP_NR_HELO ? SMFIS_NOREPLY : SMFIS_TEMPFAIL;
	engine_helo(c, helo, &r);
	if (c->milter_nr & SMFIP_NR_HELO)
		return no_reply(&r, "HELO");
	return answer(ctx, &r);
}

static sfsistat cb_envfrom(SMFICTX *ctx, char **argv)
{
	struct conn *c = conn_of(ctx, 0);
	struct reply r;

	/* No connection state: its RCPTs are refused (cb_envrcpt).  Not a
	 * refusal here: under SMFIP_NR_MAIL libmilter would send none, and
	 * would then skip the RCPTs of a transaction it thinks refused,
	 * leaving the MTA waiting for their replies. */
	if (c == NULL)
		return SMFIS_CONTINUE;
	c->milter_stop_txn = 0;
	if (atomic_load(&stopping)) {
		/* The transactions in flight finish; a new one is told to
		 * come back (the MTA answers the client with a 4xx), and
		 * opens no engine transaction: the stop does not wait for
		 * it (engine_open_txns()). */
		if (!(c->milter_nr & SMFIP_NR_MAIL))
			return stop_reply(ctx);
		engine_abort(c); /* a transaction the MTA did not end */
		c->milter_stop_txn = 1;
		return SMFIS_NOREPLY;
	}
	/* The SASL login must be known before the MAIL checks run. */
	engine_set_auth(c, macro(ctx, "{auth_authen}"));
	engine_mail(c, argv[0], &r);
	for (int i = 1; argv[i]; i++) /* ESMTP parameters after the address */
		if (strcasecmp(argv[i], "SMTPUTF8") == 0)
			engine_set_smtputf8(c);
	engine_set_queue_id(c, macro(ctx, "i")); /* Sendmail sends it here */
	if (c->milter_nr & SMFIP_NR_MAIL)
		return no_reply(&r, "MAIL");
	return answer(ctx, &r);
}

static sfsistat cb_envrcpt(SMFICTX *ctx, char **argv)
{
	struct conn *c = conn_of(ctx, 0);
	struct reply r;

	if (c == NULL)
		return SMFIS_TEMPFAIL;
	if (c->milter_stop_txn)
		return stop_reply(ctx);
	/* Postfix: once a recipient was accepted (its queue file exists) */
	engine_set_queue_id(c, macro(ctx, "i"));
	engine_rcpt(c, argv[0], &r);
	return answer(ctx, &r);
}

static sfsistat cb_header(SMFICTX *ctx, char *name, char *value)
{
	struct conn *c = conn_of(ctx, 0);
	struct reply r;

	if (c == NULL)
		return SMFIS_TEMPFAIL;
	engine_header(c, name, value, &r);
	if (c->milter_nr & SMFIP_NR_HDR)
		return no_reply(&r, "header");
	return answer(ctx, &r);
}

static sfsistat cb_eoh(SMFICTX *ctx)
{
	struct conn *c = conn_of(ctx, 0);
	struct reply r;

	if (c == NULL)
		return SMFIS_TEMPFAIL;
	engine_eoh(c, &r);
	if (c->milter_nr & SMFIP_NR_EOH)
		return no_reply(&r, "end of headers");
	return answer(ctx, &r);
}

static sfsistat cb_body(SMFICTX *ctx, unsigned char *buf, size_t len)
{
	struct conn *c = conn_of(ctx, 0);
	struct reply r;

	if (c == NULL)
		return SMFIS_TEMPFAIL;
	engine_body(c, buf, len, &r);
	return answer(ctx, &r);
}

/* The envelope changes modules asked for (engine.h, struct env_change).
 * A recipient is added before the one it replaces is deleted, and deleted
 * only if the addition worked: a failure keeps the old address (the MTA
 * then delivers to it or bounces), never loses the recipient. */
static void apply_envelope(SMFICTX *ctx, const struct txn *t)
{
	for (int i = 0; i < t->nenvs; i++) {
		const struct env_change *e = &t->envs[i];

		if (!e->rcpt) {
			if (smfi_chgfrom(ctx, (char *)e->addr, NULL) != MI_SUCCESS)
				log_msg(LOG_LVL_WARN, "ref=%s could not change the sender", t->ref);
			continue;
		}
		if (smfi_addrcpt(ctx, (char *)e->addr) != MI_SUCCESS) {
			log_msg(LOG_LVL_WARN, "ref=%s could not add a recipient; kept the old one",
			        t->ref);
			continue;
		}
		if (smfi_delrcpt(ctx, (char *)e->old) != MI_SUCCESS)
			log_msg(LOG_LVL_WARN, "ref=%s could not remove a recipient", t->ref);
	}
}

static sfsistat cb_eom(SMFICTX *ctx)
{
	struct conn *c = conn_of(ctx, 0);
	struct reply r;
	sfsistat st;

	if (c == NULL)
		return SMFIS_TEMPFAIL;
	if (c->milter_stop_txn) { /* every RCPT was refused: not expected */
		c->milter_stop_txn = 0;
		return stop_reply(ctx);
	}
	engine_set_queue_id(c, macro(ctx, "i")); /* Postfix sends it only here */
	engine_eom(c, &r);
	if (c->txn && (r.action == REPLY_CONTINUE || r.action == REPLY_ACCEPT)) {
		/* Removals first, and the last first: an MTA may renumber the
		 * remaining headers after a removal (Postfix walks its queue
		 * file, where a removed header is gone), and both Postfix and
		 * Sendmail count the headers a milter inserted, ours too. */
		for (int i = c->txn->ndels - 1; i >= 0; i--) {
			struct del_header *d = &c->txn->dels[i];

			if (smfi_chgheader(ctx, d->name, d->index, NULL) != MI_SUCCESS)
				log_msg(LOG_LVL_WARN, "ref=%s could not remove header %s #%d",
				        c->txn->ref, d->name, d->index);
		}
		for (int i = 0; i < c->txn->nheaders; i++) {
			struct add_header *h = &c->txn->headers[i];
			int rc = h->top ? smfi_insheader(ctx, 0, h->name, h->value)
			                : smfi_addheader(ctx, h->name, h->value);

			if (rc != MI_SUCCESS)
				log_msg(LOG_LVL_WARN, "ref=%s could not add header %s", c->txn->ref,
				        h->name);
		}
		apply_envelope(ctx, c->txn);
	}
	st = answer(ctx, &r);
	engine_txn_end(c, &r);
	return st;
}

static sfsistat cb_abort(SMFICTX *ctx)
{
	struct conn *c = conn_of(ctx, 0);

	if (c) {
		c->milter_stop_txn = 0;
		engine_abort(c);
	}
	return SMFIS_CONTINUE;
}

static sfsistat cb_close(SMFICTX *ctx)
{
	struct conn *c = conn_of(ctx, 0);

	if (c) {
		engine_conn_free(c);
		smfi_setpriv(ctx, NULL);
	}
	return SMFIS_CONTINUE;
}

static struct smfiDesc desc = {
	.xxfi_name = "portcullis",
	.xxfi_version = SMFI_VERSION,
	.xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_SETSYMLIST,
	.xxfi_connect = cb_connect,
	.xxfi_helo = cb_helo,
	.xxfi_envfrom = cb_envfrom,
	.xxfi_envrcpt = cb_envrcpt,
	.xxfi_header = cb_header,
	.xxfi_eoh = cb_eoh,
	.xxfi_body = cb_body,
	.xxfi_eom = cb_eom,
	.xxfi_abort = cb_abort,
	.xxfi_close = cb_close,
	.xxfi_negotiate = cb_negotiate,
};

/* Descriptor exhaustion.  libmilter's listener thread calls accept() and,
 * when it fails with EMFILE or ENFILE, tries again at once without a word
 * (libmilter/listener.c): the MTA's connections wait in the listen queue
 * until its milter_connect_timeout, and the loop spins on one core.  This
 * accept() takes libmilter's calls (the dynamic linker finds the
 * executable's definition before the C library's; our own code uses
 * accept4()) and hands them to the next one.  A failure for lack of
 * descriptors makes the call wait 50 ms, so the retry loop does not spin,
 * and is logged once per episode (with the limit; at most once a minute
 * while it lasts, with the count).  Connections that close let a few
 * accept() calls through between failures: the episode ends, and that is
 * logged, at the first success a second after the last failure. */
static atomic_int milter_listen_fd = -1; /* libmilter's listener (milter_open) */
typedef int (*accept_fn)(int, __SOCKADDR_ARG, socklen_t *__restrict);
static _Atomic(accept_fn) real_accept;
static pthread_mutex_t accept_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	int failing;           /* an episode is on */
	long long first, last; /* its first and latest failure, ms */
	long long logged;      /* when it was last logged, ms */
	long n, n_logged;      /* failed calls in it, and when last logged */
} acc_ep;

static void accept_failed(int e)
{
	long long now = now_ms();
	struct rlimit rl;
	char lim[32] = "?";

	pthread_mutex_lock(&accept_lock);
	if (!acc_ep.failing) {
		acc_ep.failing = 1;
		acc_ep.first = now;
		acc_ep.n = acc_ep.n_logged = 0;
		acc_ep.logged = 0;
	}
	acc_ep.last = now;
	acc_ep.n++;
	if (acc_ep.logged == 0) {
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
			snprintf(lim, sizeof(lim), "%llu", (unsigned long long)rl.rlim_cur);
		log_msg(LOG_LVL_ERR,
		        "cannot accept MTA connections: %s (%s); open descriptors limit %s: they "
		        "wait until some close (one per MTA connection: raise LimitNOFILE / "
		        "ulimit -n, see portcullis(8))",
		        e == EMFILE ? "no descriptor left" : "the system's file table is full",
		        strerror(e), lim);
		acc_ep.logged = now;
		acc_ep.n_logged = acc_ep.n;
	} else if (now - acc_ep.logged >= 60000) {
		log_msg(LOG_LVL_ERR,
		        "still short of descriptors: %ld accept() calls failed in the last %lld s",
		        acc_ep.n - acc_ep.n_logged, (now - acc_ep.logged) / 1000);
		acc_ep.logged = now;
		acc_ep.n_logged = acc_ep.n;
	}
	pthread_mutex_unlock(&accept_lock);
}

static void accept_worked(void)
{
	long long now = now_ms();

	pthread_mutex_lock(&accept_lock);
	if (acc_ep.failing && now - acc_ep.last >= 1000) {
		acc_ep.failing = 0;
		log_msg(LOG_LVL_INFO,
		        "accepting MTA connections again (%ld accept() calls failed for lack of "
		        "descriptors over %lld ms)",
		        acc_ep.n, acc_ep.last - acc_ep.first);
	}
	pthread_mutex_unlock(&accept_lock);
}

int accept(int fd, __SOCKADDR_ARG addr, socklen_t *__restrict len)
{
	accept_fn fn = atomic_load(&real_accept);
	int rc, e;

	if (fn == NULL) {
		fn = (accept_fn)dlsym(RTLD_NEXT, "accept");
		if (fn == NULL) {
			errno = ENOSYS;
			return -1;
		}
		atomic_store(&real_accept, fn);
	}
	rc = fn(fd, addr, len);
	if (fd != atomic_load(&milter_listen_fd))
		return rc; /* another listener (metrics): not libmilter's */
	e = errno;
	if (rc >= 0) {
		accept_worked();
		return rc;
	}
	if (e == EMFILE || e == ENFILE) {
		struct timespec ts = { 0, 50 * 1000 * 1000 };

		accept_failed(e);
		nanosleep(&ts, NULL);
	}
	errno = e;
	return rc;
}

const char *milter_socket_path(const char *spec)
{
	if (strncmp(spec, "unix:", 5) == 0)
		return spec + 5;
	if (strncmp(spec, "local:", 6) == 0)
		return spec + 6;
	if (spec[0] == '/')
		return spec;
	return NULL;
}

/* The listening socket's address, to wake libmilter's accept loop. */
static struct sockaddr_storage listen_addr;
static socklen_t listen_addrlen;

/* libmilter's listening socket: the one descriptor of ours that accepts. */
static int find_listener(void)
{
	for (int fd = 3; fd < 4096; fd++) {
		int acc = 0;
		socklen_t len = sizeof(acc);

		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) == 0 && acc)
			return fd;
	}
	return -1;
}

/* Wake libmilter's accept loop, which looks at its stop flag only when
 * its poll() returns: every 5 seconds (MI_CHK_TIME) or when a client
 * connects.  So we connect. */
static void wake_listener(void)
{
	struct sockaddr_storage a = listen_addr;
	int fd;

	if (listen_addrlen == 0)
		return;
	/* an inet listener on the any-address is reached on the loopback */
	if (a.ss_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)(void *)&a;

		if (in->sin_addr.s_addr == htonl(INADDR_ANY))
			in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	} else if (a.ss_family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)&a;

		if (IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr))
			in6->sin6_addr = in6addr_loopback;
	}
	fd = socket(a.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (connect(fd, (struct sockaddr *)&a, listen_addrlen) < 0 && errno != ECONNREFUSED &&
	    errno != ENOENT)
		log_msg(LOG_LVL_DEBUG, "waking the accept loop: %s", strerror(errno));
	close(fd);
}

/* libmilter writes a reply and a header as separate small packets and does
 * not set TCP_NODELAY, which costs ~40 ms per message over TCP (Nagle meets
 * delayed ACK).  Linux copies TCP_NODELAY from a listening socket to the
 * sockets it accepts, so set it on libmilter's listener, which we can only
 * find among our descriptors. */
static void set_nodelay_on_listener(void)
{
	for (int fd = 3; fd < 1024; fd++) {
		int acc = 0, dom = 0, one = 1;
		socklen_t len = sizeof(acc);

		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) < 0 || !acc)
			continue;
		len = sizeof(dom);
		if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &len) < 0 ||
		    (dom != AF_INET && dom != AF_INET6))
			continue;
		if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
			log_msg(LOG_LVL_WARN, "TCP_NODELAY on the milter socket: %s",
			        strerror(errno));
	}
}

int milter_open(const struct conf *c, char *err, size_t errsize)
{
	const char *spec = c->core.socket;
	const char *path = milter_socket_path(spec);
	char conn[1024];
	mode_t old_umask;
	int rc;

	if (path) {
		char dir[1024];
		char *slash;
		struct stat st;

		bcopy_str(dir, sizeof(dir), path);
		slash = strrchr(dir, '/');
		if (slash == NULL || slash == dir)
			bcopy_str(dir, sizeof(dir), slash ? "/" : ".");
		else
			*slash = '\0';
		if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
			snprintf(err, errsize, "socket %s: directory %s: %s", spec, dir,
			         errno ? strerror(errno) : "not a directory");
			return -1;
		}
		if (access(dir, W_OK | X_OK) < 0) {
			snprintf(err, errsize, "socket %s: directory %s: %s", spec, dir,
			         strerror(errno));
			return -1;
		}
		snprintf(conn, sizeof(conn), "unix:%s", path);
	} else {
		bcopy_str(conn, sizeof(conn), spec);
	}
	if (smfi_setconn(conn) != MI_SUCCESS) {
		snprintf(err, errsize, "socket %s: not usable", spec);
		return -1;
	}
	smfi_settimeout((int)c->core.milter_timeout);
	if (smfi_register(desc) != MI_SUCCESS) {
		snprintf(err, errsize, "smfi_register failed");
		return -1;
	}
	old_umask = umask(0777 & ~(mode_t)c->core.socket_mode);
	rc = smfi_opensocket(true);
	umask(old_umask);
	if (rc != MI_SUCCESS) {
		snprintf(err, errsize,
		         "socket %s: cannot listen (address in use, bad "
		         "address or no permission)",
		         spec);
		return -1;
	}
	if (path) {
		if (chmod(path, (mode_t)c->core.socket_mode) < 0) {
			snprintf(err, errsize, "socket %s: chmod: %s", spec, strerror(errno));
			return -1;
		}
		if (c->core.socket_group[0]) {
			struct group *gr = getgrnam(c->core.socket_group);

			if (gr == NULL) {
				snprintf(err, errsize, "socket_group: unknown group '%s'",
				         c->core.socket_group);
				return -1;
			}
			if (chown(path, (uid_t)-1, gr->gr_gid) < 0) {
				snprintf(err, errsize, "socket %s: chown to group %s: %s", spec,
				         c->core.socket_group, strerror(errno));
				return -1;
			}
		}
	} else {
		set_nodelay_on_listener();
	}
	{
		int lfd = find_listener();

		atomic_store(&milter_listen_fd, lfd);
		listen_addrlen = sizeof(listen_addr);
		if (lfd < 0 ||
		    getsockname(lfd, (struct sockaddr *)&listen_addr, &listen_addrlen) < 0)
			listen_addrlen = 0; /* the stop then takes up to 5 s */
	}
	return 0;
}

static atomic_int main_done; /* smfi_main() returned */
static int main_rc;

static void *run_smfi_main(void *arg)
{
	(void)arg;
	main_rc = smfi_main() == MI_SUCCESS ? 0 : -1;
	atomic_store(&main_done, 1);
	return NULL;
}

static void *run_smfi_stop(void *arg)
{
	(void)arg;
	smfi_stop(); /* sets libmilter's stop flag, then waits for its accept loop */
	return NULL;
}

/* The stop, as the main thread sees it.  SIGTERM, SIGINT and SIGHUP are
 * blocked in every thread; libmilter's own signal thread waits for them
 * too, but a signal sent to the process goes to its main thread when that
 * thread waits for it, so the stop is ours: new connections and
 * transactions are answered 4xx (cb_connect, cb_envfrom; at each RCPT
 * when the MTA asked no reply to connect and MAIL) while the
 * transactions in flight finish (libmilter would cut them: its workers
 * stop serving sessions once its stop flag is set); then libmilter is
 * told to stop and its accept loop is woken, which takes ~50 ms instead
 * of up to 5 s.  A second signal while we wait goes to libmilter's
 * thread, which stops at once. */
int milter_run(void)
{
	const struct timespec tick = { 0, 20 * 1000 * 1000 };
	const struct timespec wait_sig = { 0, 200 * 1000 * 1000 };
	pthread_t main_tid, stop_tid;
	sigset_t set;
	int sig = 0, waited_ms = 0;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (pthread_create(&main_tid, NULL, run_smfi_main, NULL) != 0) {
		log_msg(LOG_LVL_ERR, "cannot start the milter thread");
		return -1;
	}
	while (!atomic_load(&main_done)) {
		sig = sigtimedwait(&set, NULL, &wait_sig);
		if (sig > 0)
			break;
	}
	if (atomic_load(&main_done)) { /* libmilter stopped by itself */
		pthread_join(main_tid, NULL);
		return main_rc;
	}
	atomic_store(&stopping, 1);
	if (engine_open_txns() > 0)
		log_msg(LOG_LVL_INFO, "stopping: waiting for %d transaction(s) in flight",
		        engine_open_txns());
	while (engine_open_txns() > 0 && waited_ms < MILTER_STOP_WAIT_MS &&
	       !atomic_load(&main_done)) {
		nanosleep(&tick, NULL);
		waited_ms += 20;
	}
	if (engine_open_txns() > 0)
		log_msg(LOG_LVL_WARN,
		        "stopping with %d transaction(s) still open after %d s: the MTA "
		        "answers them with its milter_default_action (tempfail)",
		        engine_open_txns(), waited_ms / 1000);
	if (pthread_create(&stop_tid, NULL, run_smfi_stop, NULL) != 0) {
		smfi_stop(); /* slow path: libmilter notices within 5 s */
	} else {
		const struct timespec wake_gap = { 0, 50 * 1000 * 1000 };

		/* once smfi_stop() has set the flag, one wake is enough */
		while (!atomic_load(&main_done)) {
			nanosleep(&tick, NULL);
			wake_listener();
			nanosleep(&wake_gap, NULL);
		}
		pthread_join(stop_tid, NULL);
	}
	pthread_join(main_tid, NULL);
	return main_rc;
}
