/* authz.h - authorization of authenticated API requests against key policies, and the audit log of
 * control-plane changes and refused requests. */
#ifndef NIMBUS_AUTHZ_H
#define NIMBUS_AUTHZ_H

#include <stdbool.h>

struct nb_daemon;
struct nb_http_req;
struct nb_route_match;
/* key_id: the caller's access key id; root: the root key (all-powerful); policy: the key's JSON
 * policy text or NULL; action "service:Operation"; resource an ARN or "*". True when allowed;
 * otherwise replies 403 AccessDeniedException (req ended), audits the denial and returns false. */
bool authz_check(struct nb_daemon *d, struct nb_http_req *req, const char *key_id, bool root,
                 const char *policy, const char *action, const char *resource);
/* Audits a request refused before authorization (type: the error type replied, e.g.
 * "InvalidSignatureException"; key_id NULL when unknown). */
void authz_refused(struct nb_daemon *d, struct nb_http_req *req, const char *key_id,
                   const char *action, const char *resource, const char *type);
/* The resource of a routed request, arena-allocated: for a {FunctionName} label the function ARN
 * arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER], for {ARN} the ARN itself, else "*". */
const char *authz_resource(struct nb_daemon *d, struct nb_http_req *req,
                           const struct nb_route_match *m);

#endif
