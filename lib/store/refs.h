/* lib/store/refs.h - what is kept about a refused transaction, by reference id
 *
 * When a transaction ends with a reject or a defer (at RCPT or at end of
 * message), the engine stores a record under its reference id in the
 * store namespace "refs", kept for ref_keep (default 7 days), so that
 * `portcullisctl explain REF` can show it and `portcullisctl whitelist add
 * --from-ref REF` can whitelist what made it fail.
 *
 * The value is text, one "name=value" per line, values encoded with
 * enc_log() (printable ASCII, no newline); names (in this order):
 *   time=EPOCH
 *   client_addr=ADDR         ("" when the MTA gave none)
 *   client_name=NAME         (verified reverse name or "unknown")
 *   helo=NAME
 *   from=ADDR                (the envelope sender, "" for <>)
 *   auth=LOGIN               (only when authenticated)
 *   rcpt=ADDR OUTCOME SYMBOL (one line per recipient; OUTCOME accept,
 *                             reject or defer; SYMBOL "-" when accepted)
 *   verdict=accept|reject|defer|aborted|none
 *   symbol=SYMBOL STAGE      (one line per decision that fired, STAGE one
 *                             of connect helo mail rcpt header eoh body eom;
 *                             monitor-mode hits are not listed)
 *   reply=CODE XCODE TEXT    (the last reject/defer reply given)
 */
#ifndef PORTCULLIS_REFS_H
#define PORTCULLIS_REFS_H

#define REFS_NS        "refs"
#define REFS_VALUE_MAX 8192

#endif
