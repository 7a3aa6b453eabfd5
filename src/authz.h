/* authz.h - authorization of authenticated API requests against key policies, and the audit log of
 * control-plane changes and refused requests. */
#ifndef NIMBUS_AUTHZ_H
#define NIMBUS_AUTHZ_H

#include <stdbool.h>

struct nb_daemon;
struct nb_http_req;
struct nb_route_match;
struct nb_err;

/* Who sent a request, once authenticated (api.c puts it in the route match for handlers). */
struct nb_caller {
    const char *key_id; /* access key id */
    bool root;          /* the root key: all-powerful */
    const char *policy; /* the key's JSON policy text, or NULL */
};

/* key_id: the caller's access key id; root: the root key (all-powerful); policy: the key's JSON
 * policy text or NULL; action "service:Operation"; resource an ARN or "*". True when allowed;
 * otherwise replies 403 AccessDeniedException (req ended), audits the denial and returns false. */
bool authz_check(struct nb_daemon *d, struct nb_http_req *req, const char *key_id, bool root,
                 const char *policy, const char *action, const char *resource);
/* The decision of authz_check without the reply, for services whose error shape is not Lambda's
 * (SQS's XML/JSON errors): 0 when allowed; -EACCES with IAM's AccessDenied message in err when
 * denied (audited like authz_check). The caller replies. */
int authz_decide(struct nb_daemon *d, struct nb_http_req *req, const char *key_id, bool root,
                 const char *policy, const char *action, const char *resource, struct nb_err *err);
/* Audits a request refused before authorization (type: the error type replied, e.g.
 * "InvalidSignatureException"; key_id NULL when unknown). */
void authz_refused(struct nb_daemon *d, struct nb_http_req *req, const char *key_id,
                   const char *action, const char *resource, const char *type);

/*
 * Details of the two calls above (additive to the fixed contract):
 * - Call both before the request is answered: the audit record is written by a hook
 *   (http_req_on_reply) when the reply is given, so it carries the reply's status, error type and
 *   x-amzn-RequestId. authz_refused does not reply; its caller does, right after.
 * - authz_check audits an allowed request only when its action is a change (authz_is_change);
 *   reads are not audited. A NULL or unparsable policy denies everything (the parse error is
 *   logged at warn). Policies are parsed once per distinct text (policy_cached).
 * - The 403's message has IAM's shape: "User: arn:aws:iam::ACCOUNT:user/KEY_ID is not authorized
 *   to perform: ACTION on resource: RESOURCE because no identity-based policy allows the ACTION
 *   action", or "... with an explicit deny in an identity-based policy" after a Deny.
 * - d->audit may be NULL (nothing is written then).
 */

/* True when action changes state: everything but Get*, List*, Read* operations and the data
 * plane (lambda:InvokeFunction, lambda:InvokeFunctionUrl; SQS's message operations
 * sqs:SendMessage*, sqs:ReceiveMessage, sqs:DeleteMessage*, sqs:ChangeMessageVisibility*),
 * case-insensitive on the operation. */
bool authz_is_change(const char *action);

/* The resource of a routed request, in req's arena: a {FunctionName} label gives
 * arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER] (always the daemon's region and
 * account, even when the label is an ARN naming others: handlers act on the local function or
 * refuse; the qualifier from the label, else from a Qualifier query parameter); an {ARN} label
 * gives the same canonical form (itself when it does not parse); anything else, and a malformed
 * FunctionName, gives "*". */
const char *authz_resource(struct nb_daemon *d, struct nb_http_req *req,
                           const struct nb_route_match *m);

#endif
