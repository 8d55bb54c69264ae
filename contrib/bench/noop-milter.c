/* contrib/bench/noop-milter.c - the baseline: a libmilter filter that does nothing
 *
 *   noop-milter -p SOCKET
 *
 * Listens on a unix socket (a path, or unix:PATH) and answers every step
 * SMFIS_CONTINUE.  It negotiates the steps portcullis negotiates with its
 * default checks (milter/milter.c cb_negotiate): the actions ADDHDRS,
 * CHGHDRS and SETSYMLIST, the same symbol lists, and no headers, no end of
 * headers, no body, no DATA and no unknown commands - so an MTA or the
 * benchmark client sends it the very same packets (connect, HELO, MAIL,
 * RCPT, end of message, abort, quit).  Like a simple libmilter filter it
 * asks for no SMFIP_NR_* flag, so it answers every one of them; portcullis
 * asks for no reply to connect, HELO and MAIL (its checks refuse at RCPT),
 * so it sends fewer replies: that is part of what is measured.  What
 * portcullis costs above this is its own work.  Like portcullis it keeps a
 * small per-connection struct (allocated at negotiate, freed at close), so
 * that is not counted either.
 * Stops on SIGTERM or SIGINT (libmilter's signal thread).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

struct noop_conn {
	unsigned long msgs;
};

static sfsistat noop_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1, unsigned long f2,
                               unsigned long f3, unsigned long *pf0, unsigned long *pf1,
                               unsigned long *pf2, unsigned long *pf3)
{
	struct noop_conn *c = calloc(1, sizeof(*c));

	(void)f2;
	(void)f3;
	if (c == NULL)
		return SMFIS_REJECT;
	smfi_setpriv(ctx, c);
	*pf0 = f0 & (SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_SETSYMLIST);
	*pf1 = f1 & (SMFIP_NOHDRS | SMFIP_NOEOH | SMFIP_NOBODY | SMFIP_NOUNKNOWN | SMFIP_NODATA);
	*pf2 = 0;
	*pf3 = 0;
	if (f0 & SMFIF_SETSYMLIST) {
		smfi_setsymlist(ctx, SMFIM_CONNECT, "j {daemon_name} {if_addr} {client_name}");
		smfi_setsymlist(ctx, SMFIM_ENVFROM, "i {auth_authen} {auth_type}");
		smfi_setsymlist(ctx, SMFIM_ENVRCPT, "i");
		smfi_setsymlist(ctx, SMFIM_EOM, "i");
	}
	return SMFIS_CONTINUE;
}

static sfsistat noop_connect(SMFICTX *ctx, char *hostname, _SOCK_ADDR *sa)
{
	(void)ctx;
	(void)hostname;
	(void)sa;
	return SMFIS_CONTINUE;
}

static sfsistat noop_helo(SMFICTX *ctx, char *helo)
{
	(void)ctx;
	(void)helo;
	return SMFIS_CONTINUE;
}

static sfsistat noop_envfrom(SMFICTX *ctx, char **argv)
{
	(void)ctx;
	(void)argv;
	return SMFIS_CONTINUE;
}

static sfsistat noop_envrcpt(SMFICTX *ctx, char **argv)
{
	(void)ctx;
	(void)argv;
	return SMFIS_CONTINUE;
}

static sfsistat noop_eom(SMFICTX *ctx)
{
	struct noop_conn *c = smfi_getpriv(ctx);

	if (c)
		c->msgs++;
	return SMFIS_CONTINUE;
}

static sfsistat noop_abort(SMFICTX *ctx)
{
	(void)ctx;
	return SMFIS_CONTINUE;
}

static sfsistat noop_close(SMFICTX *ctx)
{
	free(smfi_getpriv(ctx));
	smfi_setpriv(ctx, NULL);
	return SMFIS_CONTINUE;
}

static struct smfiDesc desc = {
	.xxfi_name = "noop-milter",
	.xxfi_version = SMFI_VERSION,
	.xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_SETSYMLIST,
	.xxfi_connect = noop_connect,
	.xxfi_helo = noop_helo,
	.xxfi_envfrom = noop_envfrom,
	.xxfi_envrcpt = noop_envrcpt,
	.xxfi_eom = noop_eom,
	.xxfi_abort = noop_abort,
	.xxfi_close = noop_close,
	.xxfi_negotiate = noop_negotiate,
};

static void usage(void)
{
	fprintf(stderr, "usage: noop-milter -p SOCKET   (a path, or unix:PATH)\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *path = NULL;
	char conn[1100];
	int ch;

	while ((ch = getopt(argc, argv, "p:")) != -1) {
		if (ch != 'p')
			usage();
		path = strncmp(optarg, "unix:", 5) ? optarg : optarg + 5;
	}
	if (path == NULL || optind != argc || strlen(path) > 1000)
		usage();
	snprintf(conn, sizeof(conn), "unix:%s", path);
	if (smfi_setconn(conn) != MI_SUCCESS || smfi_register(desc) != MI_SUCCESS) {
		fprintf(stderr, "noop-milter: cannot use %s\n", conn);
		return 1;
	}
	umask(077);
	if (smfi_opensocket(1) != MI_SUCCESS) {
		fprintf(stderr, "noop-milter: cannot listen on %s\n", conn);
		return 1;
	}
	return smfi_main() == MI_SUCCESS ? 0 : 1;
}
