/* lib/message.h - the message as received, kept for the content checks
 *
 * The engine collects the header lines and body chunks of a transaction
 * when an enabled module needs the whole message at end of DATA (a module
 * with needs_message set).  The bytes are kept in memory up to
 * content.memory_size and in an anonymous memory file (memfd) beyond it;
 * past content.max_size nothing more is kept and the message is marked
 * over-size (the content checks then do not scan it, see engine_eom).
 *
 * The message is rebuilt as the MTA passed it: "Name: value" header lines
 * (folded lines keep their folding), an empty line, then the body, all with
 * CRLF line ends.  A struct message belongs to one transaction and is used
 * by one thread at a time.  Nothing here fails for the caller: an error
 * writing the memfd marks the message broken (msg->error), and the
 * checks then treat it like a scan failure, never as clean.
 */
#ifndef PORTCULLIS_MESSAGE_H
#define PORTCULLIS_MESSAGE_H

#include <stddef.h>

struct message {
	unsigned char *mem; /* the first bytes, while below memory_size */
	size_t len;         /* bytes kept (in mem or in fd) */
	size_t cap;
	int fd;                   /* memfd once len passed memory_size, else -1 */
	unsigned long long total; /* bytes the MTA sent, also past max_size */
	size_t memory_size;
	size_t max_size;
	int oversize;    /* total > max_size: the kept bytes are a prefix */
	char error[128]; /* non-empty: the kept copy is unusable */
	void *map;       /* message_data()'s mapping of fd, or NULL */
	size_t map_len;
	/* The MIME parse shared by the content checks (lib/mime.c,
	 * mime_walk_message()), freed with the message by mime_free. */
	void *mime;
	void (*mime_free)(void *);
};

/* A new, empty message.  memory_size: bytes kept in memory before moving
 * to a memfd; max_size: bytes kept at all. */
struct message *message_new(size_t memory_size, size_t max_size);
void message_free(struct message *m);

/* Append one header line "name: value" (line ends normalised to CRLF). */
void message_header(struct message *m, const char *name, const char *value);
/* The empty line between header and body. */
void message_eoh(struct message *m);
/* Append a body chunk as received. */
void message_body(struct message *m, const unsigned char *buf, size_t len);

/* A file descriptor holding the kept bytes from offset 0 (the memfd; one
 * is made from memory if needed), positioned at 0.  The caller does not
 * close it; it stays valid until message_free().  -1 with m->error set on
 * failure. */
int message_fd(struct message *m);

/* The kept bytes as one contiguous read-only buffer (mapped from the memfd
 * when the message is there); *len gets their number.  Valid until
 * message_free().  NULL with m->error set on failure. */
const unsigned char *message_data(struct message *m, size_t *len);

#endif
