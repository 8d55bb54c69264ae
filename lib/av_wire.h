/* lib/av_wire.h - between the milter side of lib/av.c and the scanner
 * helper (lib/av_helper.c): the records on the control socket and the
 * helper's private temporary folder.  Both ends come from one build: the
 * helper refuses to run for another version (av_helper_main). */
#ifndef PORTCULLIS_AV_WIRE_H
#define PORTCULLIS_AV_WIRE_H

#include <stdint.h>
#include <sys/types.h>

#define AV_MAGIC  0x50634156u /* "PcAV" */
#define HELPER_FD 3           /* the control socket in the helper */
#define AV_ARGC   15          /* the helper's argument count, see spawn_helper() */

struct av_req {
	uint32_t magic;
	uint32_t timeout_ms; /* how long the helper may wait for a first database */
};

struct av_resp {
	uint32_t magic;
	int32_t status; /* enum av_status */
	char name[128];
	char reason[200];
	char word[24];
};

/* Remove the private temporary folder that helper pid left behind (it was
 * killed or crashed); lib/av_helper.c. */
void av_helper_tmp_clean(pid_t pid);

#endif
