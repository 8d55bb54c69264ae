/* milter/milter.h - the libmilter side of the daemon (milter.c is the only
 * file that includes <libmilter/mfapi.h>). */
#ifndef PORTCULLIS_MILTER_H
#define PORTCULLIS_MILTER_H

#include <stddef.h>

struct conf;

/* Register the callbacks and open the listening socket of conf (unix socket
 * with its mode and group).  Returns 0, or -1 with a one-line reason. */
int milter_open(const struct conf *c, char *err, size_t errsize);

/* Run libmilter's accept loop until SIGTERM/SIGINT (or SIGHUP, which
 * libmilter treats alike).  Returns 0 on a clean stop. */
int milter_run(void);

/* The filesystem path of a unix socket spec, or NULL for inet sockets. */
const char *milter_socket_path(const char *spec);

#endif
