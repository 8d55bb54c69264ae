/* milter/milter.h - the libmilter side of the daemon (milter.c is the only
 * file that includes <libmilter/mfapi.h>). */
#ifndef PORTCULLIS_MILTER_H
#define PORTCULLIS_MILTER_H

#include <stddef.h>

struct conf;

/* Register the callbacks and open the listening socket of conf (unix socket
 * with its mode and group).  Returns 0, or -1 with a one-line reason. */
int milter_open(const struct conf *c, char *err, size_t errsize);

/* How long a stopping daemon waits for the transactions in flight. */
#define MILTER_STOP_WAIT_MS 20000

/* Run libmilter's accept loop until SIGTERM/SIGINT (or SIGHUP, which
 * libmilter treats alike): the socket is closed within ~50 ms, new
 * transactions on open connections get 451 4.3.2, and the transactions
 * in flight may end (at most MILTER_STOP_WAIT_MS).  Returns 0 on a clean
 * stop. */
int milter_run(void);

/* The filesystem path of a unix socket spec, or NULL for inet sockets. */
const char *milter_socket_path(const char *spec);

#endif
