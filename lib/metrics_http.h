/* lib/metrics_http.h - the metrics listener (HTTP GET /metrics) and its client
 *
 * The daemon binds metrics.listen with metrics_http_open() (before dropping
 * privileges, so a port below 1024 works) and serves it with
 * metrics_http_start() on a thread of its own: one request at a time, at
 * most METRICS_HTTP_REQ_MAX bytes of request head, METRICS_HTTP_TIMEOUT_MS
 * for the whole exchange, then the connection is closed.  GET (or HEAD)
 * /metrics answers the exposition of metrics_render(); another path is
 * 404, another method 405, a malformed or oversized request 400 / 431, a
 * client too slow 408.  The mail threads never wait for this thread: it
 * only reads atomic counters (metrics.h).
 *
 * The address is numeric: "ADDR:PORT" or "[IPv6]:PORT".  Only loopback
 * addresses (127.0.0.0/8, ::1) are accepted unless allow_remote is set
 * (metrics.allow_remote): the page tells a stranger how much mail is
 * refused and why, and nothing here authenticates.
 *
 * Errors are one line in err ("metrics.listen: ...").
 *
 * See also: metrics.h, portcullis(8) METRICS, portcullisctl(8) stats.
 */
#ifndef PORTCULLIS_METRICS_HTTP_H
#define PORTCULLIS_METRICS_HTTP_H

#include <stddef.h>
#include <sys/socket.h>

#define METRICS_HTTP_REQ_MAX    8192
#define METRICS_HTTP_TIMEOUT_MS 5000

/* Parse spec into *sa / *salen.  Returns 0, or -1 with err (a bad form, a
 * port out of 1..65535, a non-loopback address without allow_remote). */
int metrics_listen_parse(const char *spec, int allow_remote, struct sockaddr_storage *sa,
                         socklen_t *salen, char *err, size_t errsize);

struct metrics_http;

/* Bind and listen on spec.  NULL with err on failure. */
struct metrics_http *metrics_http_open(const char *spec, int allow_remote, char *err,
                                       size_t errsize);

/* Serve on a new thread (after fork and privilege drop).  0 or -1 + err. */
int metrics_http_start(struct metrics_http *h, char *err, size_t errsize);

/* Stop the thread (interrupting a request in progress), close and free.
 * NULL is a no-op. */
void metrics_http_stop(struct metrics_http *h);

/* Judge one request head (NUL-terminated; the listener has read it up to
 * its empty line): 200 for GET or HEAD /metrics (a query string is
 * ignored), 404 for another path, 405 for another method, 400 when the
 * request line is malformed.  *head_only is set for HEAD.  Writes NULs into
 * head. */
int metrics_http_request(char *head, int *head_only);

/* The client: GET path from spec, within timeout_ms in all.  On success
 * returns 0 with the HTTP status in *status and the body (NUL-terminated,
 * the caller frees) in *body; -1 with err when the server cannot be
 * reached or answers something that is not HTTP. */
int metrics_http_get(const char *spec, const char *path, int timeout_ms, int *status, char **body,
                     size_t *len, char *err, size_t errsize);

#endif
