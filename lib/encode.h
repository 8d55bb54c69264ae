/* lib/encode.h - one encoder per sink for text that came from the network
 *
 * Any text taken from SMTP (HELO, addresses, header values, reply texts that
 * quote them) is hostile.  Each sink has its own encoder; they never fail,
 * always NUL-terminate, never write more than dstsize bytes, and mark a cut
 * with "...".  Thread-safe, no allocation.
 */
#ifndef PORTCULLIS_ENCODE_H
#define PORTCULLIS_ENCODE_H

#include <stddef.h>

/* Longest SMTP reply text we hand to the MTA (RFC 5321 reply line is 512
 * octets with code; libmilter allows longer multi-line replies, we do not
 * use them). */
#define ENC_REPLY_MAX 480
/* Longest single header value we add. */
#define ENC_HEADER_MAX 900

/* SMTP reply text: printable ASCII only (everything else, including CR, LF,
 * NUL, TAB and bytes >= 0x7f, becomes '?'), '%' doubled because libmilter
 * hands the text to Sendmail as a format, at most ENC_REPLY_MAX bytes of
 * input text.  Returns dst. */
char *enc_reply(char *dst, size_t dstsize, const char *src);

/* Added header value: printable ASCII and spaces only, runs of white space
 * collapsed to one space (no CR/LF, so no header injection and no empty
 * continuation lines), folded by the MTA, at most ENC_HEADER_MAX bytes.
 * Returns dst. */
char *enc_header(char *dst, size_t dstsize, const char *src);

/* Log text: non-printable bytes become "\xNN", '\\' becomes "\\\\", cut
 * after maxlen input bytes with "...".  Returns dst. */
char *enc_log(char *dst, size_t dstsize, const char *src, size_t maxlen);

#endif
