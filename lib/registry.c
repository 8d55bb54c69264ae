/* lib/registry.c - the one list of check modules
 *
 * The only place that knows every module.  Order here is only the order of
 * `portcullis -d`; the order in which checks run is the `checks` setting.
 * An optional module (one that needs an optional library) is added here
 * under the Makefile.am conditional that builds it.
 */
#include "check.h"

extern const struct check_module check_access;
extern const struct check_module check_helo;
extern const struct check_module check_envelope;
extern const struct check_module check_dnsbl;
extern const struct check_module check_rhsbl;
extern const struct check_module check_sender_domain;
extern const struct check_module check_sender_mxns;
extern const struct check_module check_client_dns;
extern const struct check_module check_spf;
extern const struct check_module check_greylist;
extern const struct check_module check_whitelist;
extern const struct check_module check_clamav;
extern const struct check_module check_attachments;
extern const struct check_module check_header_rules;
extern const struct check_module check_body_rules;
extern const struct check_module check_verify;
extern const struct check_module check_ratelimit;
extern const struct check_module check_headers;
extern const struct check_module check_dkim;
extern const struct check_module check_dmarc;
extern const struct check_module check_batv;
extern const struct check_module check_bounce;

const struct check_module *const check_registry[] = {
	&check_access,      &check_helo,          &check_envelope,    &check_dnsbl,
	&check_rhsbl,       &check_sender_domain, &check_sender_mxns, &check_client_dns,
	&check_spf,         &check_greylist,      &check_whitelist,   &check_clamav,
	&check_attachments, &check_header_rules,  &check_body_rules,  &check_verify,
	&check_ratelimit,   &check_headers,       &check_dkim,        &check_dmarc,
	&check_batv,        &check_bounce,
};

const int check_registry_count = sizeof(check_registry) / sizeof(check_registry[0]);
