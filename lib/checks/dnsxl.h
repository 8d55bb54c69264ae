/* lib/checks/dnsxl.h - DNS list machinery shared by dnsbl.c and rhsbl.c
 *
 * Implemented (and documented in detail) in dnsbl.c: a set of lists given
 * in postscreen_dnsbl_sites syntax (SITE[=FILTER][*WEIGHT]), looked up in
 * one DNS batch, with answer filters, "query refused" detection and the
 * RFC 5782 self-test.  A struct dnsxl belongs to one configuration
 * snapshot (made by the module's init, freed by its fini) and is
 * thread-safe.
 */
#ifndef PORTCULLIS_DNSXL_H
#define PORTCULLIS_DNSXL_H

#include <stddef.h>

#include "addr.h"
#include "conf.h"

struct dnsxl;

/* Called once per listed site that matched: reject (a reject_sites entry)
 * or the summed weight, and the answers as text for the log and reply. */
typedef void (*dnsxl_hit_fn)(void *arg, const char *site, int reject, double weight,
                             const char *answers);

/* domains: lists of domain names (rhsbl) instead of addresses (dnsbl). */
struct dnsxl *dnsxl_new(const char *module, int domains, long selftest_interval,
                        long refused_disable);
/* Add the sites of one setting (key, for errors); use is a bit mask the
 * caller gives again to dnsxl_lookup (e.g. sender vs HELO lists). */
int dnsxl_add_sites(struct dnsxl *x, const struct strlist *sites, int reject, unsigned use,
                    const char *key, char *err, size_t errsize);
/* Look ip (dnsbl) or domain (rhsbl) up in every list of use; returns the
 * number of lists that failed temporarily ("LIST: STATUS, ..." in failed),
 * or -1 when every list asked failed. */
int dnsxl_lookup(struct dnsxl *x, const struct conf *conf, int timeout_ms, const struct ipaddr *ip,
                 const char *domain, unsigned use, dnsxl_hit_fn fn, void *arg, char *failed,
                 size_t failedsize);
void dnsxl_free(struct dnsxl *x);

#endif
