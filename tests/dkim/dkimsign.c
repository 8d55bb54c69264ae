/* tests/dkim/dkimsign.c - a DKIM signer for the tests (libopendkim)
 *
 *   dkimsign [-e] [-l] [-r] [-t TIME] [-x TTL] KEYFILE SELECTOR DOMAIN < MSG > SIGNED
 *
 * Reads a message (CRLF or LF line ends; LF is turned into CRLF), signs it
 * with the PEM private key in KEYFILE (RSA, or Ed25519 with -e, RFC 8463)
 * and writes "DKIM-Signature: ..." followed by the message (CRLF).
 * -l adds l= (the body length), -r uses relaxed/relaxed canonicalisation
 * (default simple/simple), -t signs as if at TIME (seconds since the
 * epoch), -x adds x= TTL seconds after t=.  -p RECORD makes the signer
 * verify its own signature first with RECORD as the key record (a probe
 * of the library: exit 77 when libopendkim cannot verify what it signed).
 * Exit 0, or 1 with a message on stderr.  A real signer, so the tests
 * verify what the world sends.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <dkim.h>

static const char *probe_record;

static DKIM_CBSTAT probe_lookup(DKIM *dkim, DKIM_SIGINFO *sig, u_char *buf, size_t buflen)
{
	(void)dkim;
	(void)sig;
	snprintf((char *)buf, buflen, "%s", probe_record);
	return DKIM_CBSTAT_CONTINUE;
}

/* Verify signed (header + message) with probe_record: 0 when it passed. */
static int probe(DKIM_LIB *lib, const char *signed_msg, size_t len)
{
	DKIM_STAT st;
	DKIM *v;
	int ok;

	dkim_set_key_lookup(lib, probe_lookup);
	v = dkim_verify(lib, (const unsigned char *)"probe", NULL, &st);
	if (v == NULL)
		return -1;
	ok = dkim_chunk(v, (unsigned char *)signed_msg, len) == DKIM_STAT_OK &&
	     dkim_chunk(v, NULL, 0) == DKIM_STAT_OK && dkim_eom(v, NULL) == DKIM_STAT_OK;
	dkim_free(v);
	return ok ? 0 : -1;
}

static char *slurp(FILE *f, size_t *len)
{
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap);
	int ch, prev = 0;

	if (buf == NULL)
		return NULL;
	while ((ch = getc(f)) != EOF) {
		if (n + 3 >= cap) {
			char *nb = realloc(buf, cap *= 2);

			if (nb == NULL) {
				free(buf);
				return NULL;
			}
			buf = nb;
		}
		if (ch == '\n' && prev != '\r')
			buf[n++] = '\r';
		buf[n++] = (char)ch;
		prev = ch;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

int main(int argc, char **argv)
{
	int opt, ed = 0, len_tag = 0, relaxed = 0;
	uint64_t fixed = 0, ttl = 0;
	size_t keylen, msglen;
	char *key, *msg;
	FILE *kf;
	DKIM_LIB *lib;
	DKIM *dkim;
	DKIM_STAT st;
	unsigned char hdr[8192];

	while ((opt = getopt(argc, argv, "elp:rt:x:")) != -1) {
		switch (opt) {
		case 'e': ed = 1; break;
		case 'l': len_tag = 1; break;
		case 'p': probe_record = optarg; break;
		case 'r': relaxed = 1; break;
		case 't': fixed = strtoull(optarg, NULL, 10); break;
		case 'x': ttl = strtoull(optarg, NULL, 10); break;
		default:
			fprintf(stderr, "usage: dkimsign [-elr] [-t T] [-x TTL] KEY SEL DOMAIN\n");
			return 1;
		}
	}
	if (argc - optind != 3) {
		fprintf(stderr, "usage: dkimsign [-elr] [-t T] [-x TTL] KEY SEL DOMAIN\n");
		return 1;
	}
	kf = fopen(argv[optind], "r");
	if (kf == NULL || (key = slurp(kf, &keylen)) == NULL) {
		perror(argv[optind]);
		return 1;
	}
	fclose(kf);
	msg = slurp(stdin, &msglen);
	lib = dkim_init(NULL, NULL);
	if (msg == NULL || lib == NULL) {
		fprintf(stderr, "dkimsign: out of memory\n");
		return 1;
	}
	if (len_tag) {
		uint32_t flags = DKIM_LIBFLAGS_SIGNLEN;

		dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags, sizeof(flags));
	}
	if (fixed)
		dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_FIXEDTIME, &fixed, sizeof(fixed));
	if (ttl)
		dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_SIGNATURETTL, &ttl, sizeof(ttl));
	if (ed && !dkim_libfeature(lib, DKIM_FEATURE_ED25519)) {
		fprintf(stderr, "dkimsign: libopendkim without Ed25519\n");
		return 77;
	}
	dkim = dkim_sign(lib, (const unsigned char *)"test", NULL, (dkim_sigkey_t)key,
	                 (const unsigned char *)argv[optind + 1],
	                 (const unsigned char *)argv[optind + 2],
	                 relaxed ? DKIM_CANON_RELAXED : DKIM_CANON_SIMPLE,
	                 relaxed ? DKIM_CANON_RELAXED : DKIM_CANON_SIMPLE,
	                 ed ? DKIM_SIGN_ED25519SHA256 : DKIM_SIGN_RSASHA256, -1, &st);
	if (dkim == NULL) {
		fprintf(stderr, "dkimsign: dkim_sign: %s\n", dkim_getresultstr(st));
		return 1;
	}
	if ((st = dkim_chunk(dkim, (unsigned char *)msg, msglen)) != DKIM_STAT_OK ||
	    (st = dkim_chunk(dkim, NULL, 0)) != DKIM_STAT_OK ||
	    (st = dkim_eom(dkim, NULL)) != DKIM_STAT_OK ||
	    (st = dkim_getsighdr(dkim, hdr, sizeof(hdr), strlen(DKIM_SIGNHEADER) + 2)) !=
	        DKIM_STAT_OK) {
		fprintf(stderr, "dkimsign: %s: %s\n", dkim_getresultstr(st),
		        dkim_geterror(dkim) ? dkim_geterror(dkim) : "");
		return 1;
	}
	if (probe_record) {
		size_t hl = strlen(DKIM_SIGNHEADER) + strlen((char *)hdr) + 4;
		char *all = malloc(hl + msglen + 1);

		if (all == NULL)
			return 1;
		snprintf(all, hl + 1, "%s: %s\r\n", DKIM_SIGNHEADER, hdr);
		memcpy(all + strlen(all), msg, msglen + 1);
		if (probe(lib, all, strlen(all)) < 0) {
			fprintf(stderr,
			        "dkimsign: libopendkim does not verify its own signature\n");
			return 77;
		}
		free(all);
	}
	printf("%s: %s\r\n", DKIM_SIGNHEADER, hdr);
	fwrite(msg, 1, msglen, stdout);
	dkim_free(dkim);
	dkim_close(lib);
	free(key);
	free(msg);
	return 0;
}
