/* milter/ctl_bounce.c - portcullisctl bounce and batv: the joe-job switch
 * and BATV tags by hand
 *
 *   bounce mode reject|monitor|config
 *       set (or with config remove) the switch the running daemons read
 *       from the store at every bounce (lib/bounce.h): no reload needed,
 *       and every MX sharing a Redis store follows it
 *   bounce status        the switch, and the configured modes
 *   batv sign ADDR       the tagged form of ADDR, made today
 *   batv check ADDR      valid / missing / invalid / expired, and the
 *                        untagged address
 * Exit status as ctl.h says; batv check exits 1 unless the tag is valid.
 */
#include "batv.h"
#include "bounce.h"
#include "conf.h"
#include "ctl.h"
#include "addr.h"
#include "store.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

int cmd_bounce(struct conf *conf, int argc, char **argv)
{
	struct store *st;
	int rc = 0, sw;

	if (!((argc == 3 && strcmp(argv[1], "mode") == 0 &&
	       (strcmp(argv[2], "reject") == 0 || strcmp(argv[2], "monitor") == 0 ||
	        strcmp(argv[2], "config") == 0)) ||
	      (argc == 2 && strcmp(argv[1], "status") == 0))) {
		fprintf(stderr, "usage: portcullisctl bounce mode reject|monitor|config | bounce "
		                "status\n");
		return 2;
	}
	if ((st = ctl_store_open(conf)) == NULL)
		return 2;
	if (argc == 3) {
		if (bounce_switch_set(st, argv[2]) < 0) {
			fprintf(stderr, "portcullisctl: store: %s\n",
			        store_strerror(store_last_error()));
			rc = 2;
		} else if (strcmp(argv[2], "config") == 0) {
			printf("bounce mode: as configured (switch removed)\n");
		} else {
			printf("bounce mode: %s (unwanted bounces and auto-replies are %s)\n",
			       argv[2],
			       strcmp(argv[2], "reject") == 0 ? "refused at end of DATA"
			                                      : "only logged");
		}
	} else {
		sw = bounce_switch_get(st);
		printf("bounce mode: %s\n", sw == MODE_REJECT    ? "reject (switch set)"
		                            : sw == MODE_MONITOR ? "monitor (switch set)"
		                                                 : "as configured");
	}
	ctl_store_close(conf, st);
	return rc;
}

int cmd_batv(struct conf *conf, int argc, char **argv)
{
	const struct batv_keys *keys;
	struct mailaddr a;
	char out[ADDR_MAX + 1];
	long valid_days = 0;
	enum batv_result r;

	if (argc != 3 || (strcmp(argv[1], "sign") != 0 && strcmp(argv[1], "check") != 0)) {
		fprintf(stderr, "usage: portcullisctl batv sign|check ADDR\n");
		return 2;
	}
	if ((keys = batv_conf_keys(conf, &valid_days)) == NULL) {
		fprintf(stderr, "portcullisctl: the batv check is not in `checks`\n");
		return 2;
	}
	addr_parse(argv[2], &a);
	if (a.flags & (ADDR_BAD_SYNTAX | ADDR_NULL | ADDR_NO_DOMAIN | ADDR_TOO_LONG)) {
		fprintf(stderr, "portcullisctl: not a usable address\n");
		return 2;
	}
	if (strcmp(argv[1], "sign") == 0) {
		if (batv_sign(keys, a.full, batv_day(clock_now()), (int)valid_days, out,
		              sizeof(out)) < 0) {
			fprintf(stderr, "portcullisctl: cannot sign it (already tagged, or the "
			                "local part is too long)\n");
			return 1;
		}
		printf("%s\n", out);
		return 0;
	}
	r = batv_check(keys, a.full, batv_day(clock_now()), (int)valid_days, out, sizeof(out));
	printf("%s%s%s\n", batv_result_name(r), out[0] ? " " : "", out);
	return r == BATV_VALID ? 0 : 1;
}
