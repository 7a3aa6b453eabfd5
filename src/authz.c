/*
 * authz.c - authorization of API requests (root, or the key's policy through policy.c), the
 * AccessDeniedException reply, the resource of a routed request, and the audit records of
 * control-plane changes, denials and refusals (written through audit.c).
 *
 * Records are written from an http reply hook, so each carries the status, error type and
 * request id of the reply that was actually given; the hook's state lives in the request arena.
 * Invariant: a request gets at most one audit record from here (authz_check registers a hook only
 * for allowed changes and denials; authz_refused for refusals, which never reach authz_check).
 * Loop thread only.
 */
#include "authz.h"

#include <errno.h>
#include <strings.h>

#include "api.h"
#include "audit.h"
#include "daemon.h"
#include "function.h"
#include "log.h"
#include "policy.h"
#include "router.h"

struct pending {
    struct nb_audit *audit;
    const char *key_id, *action, *resource, *result;
    const char *type; /* error type when the reply does not carry x-amzn-ErrorType */
    char source[80];
};

static const char *hdr(const struct nb_http_header *h, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcasecmp(h[i].name, name))
            return h[i].value;
    return NULL;
}

static void on_reply(struct nb_http_req *req, int status, const struct nb_http_header *hdrs,
                     size_t n_hdrs, void *data)
{
    struct pending *p = data;
    struct nb_audit_record r = {
        .key_id = p->key_id,
        .action = p->action,
        .resource = p->resource,
        .result = p->result,
        .status = status,
        .error = hdr(hdrs, n_hdrs, "x-amzn-ErrorType"),
        .request_id = hdr(hdrs, n_hdrs, "x-amzn-RequestId"),
        .source = p->source,
    };
    if (!r.error)
        r.error = p->type;
    audit_append(p->audit, &r);
}

/* Arranges for one audit record when req is answered. */
static void audit_on_reply(struct nb_daemon *d, struct nb_http_req *req, const char *key_id,
                           const char *action, const char *resource, const char *result,
                           const char *type)
{
    if (!d->audit)
        return;
    struct pending *p = arena_alloc(&req->arena, sizeof(*p));
    p->audit = d->audit;
    p->key_id = key_id ? arena_strdup(&req->arena, key_id) : NULL;
    p->action = action ? arena_strdup(&req->arena, action) : NULL;
    p->resource = resource ? arena_strdup(&req->arena, resource) : NULL;
    p->result = result;
    p->type = type ? arena_strdup(&req->arena, type) : NULL;
    http_req_peer(req, p->source, sizeof(p->source));
    http_req_on_reply(req, on_reply, p);
}

bool authz_is_change(const char *action)
{
    const char *op = strchr(action, ':');
    op = op ? op + 1 : action;
    if (!strncasecmp(op, "Get", 3) || !strncasecmp(op, "List", 4) || !strncasecmp(op, "Read", 4))
        return false;
    static const char *const data_plane[] = {
        "lambda:InvokeFunction",  "lambda:InvokeFunctionUrl",    "sqs:SendMessage",
        "sqs:SendMessageBatch",   "sqs:ReceiveMessage",          "sqs:DeleteMessage",
        "sqs:DeleteMessageBatch", "sqs:ChangeMessageVisibility", "sqs:ChangeMessageVisibilityBatch",
    };
    for (size_t i = 0; i < ARRAY_SIZE(data_plane); i++)
        if (!strcasecmp(action, data_plane[i]))
            return false;
    return true;
}

int authz_decide(struct nb_daemon *d, struct nb_http_req *req, const char *key_id, bool root,
                 const char *policy, const char *action, const char *resource, struct nb_err *err)
{
    enum nb_policy_decision dec = POLICY_IMPLICIT_DENY;
    if (root) {
        dec = POLICY_ALLOW;
    } else if (policy) {
        struct nb_err perr = {0};
        const struct nb_policy *p = policy_cached(policy, &perr);
        if (p)
            dec = policy_evaluate(p, action, resource);
        else
            log_warn("msg=\"key policy does not parse: denying\" key=%s err=\"%s\"",
                     key_id ? key_id : "-", perr.msg);
    }
    if (dec == POLICY_ALLOW) {
        if (authz_is_change(action))
            audit_on_reply(d, req, key_id, action, resource, "allowed", NULL);
        return 0;
    }
    audit_on_reply(d, req, key_id, action, resource, "denied", "AccessDeniedException");
    log_info("msg=\"access denied\" key=%s action=%s resource=%s", key_id ? key_id : "-", action,
             resource);
    const char *account = d->cfg.account_id;
    if (dec == POLICY_EXPLICIT_DENY)
        return err_set(
            err, EACCES,
            "User: arn:aws:iam::%s:user/%s is not authorized to perform: %s on resource: "
            "%s with an explicit deny in an identity-based policy",
            account, key_id ? key_id : "unknown", action, resource);
    return err_set(err, EACCES,
                   "User: arn:aws:iam::%s:user/%s is not authorized to perform: %s on resource: %s "
                   "because no identity-based policy allows the %s action",
                   account, key_id ? key_id : "unknown", action, resource, action);
}

bool authz_check(struct nb_daemon *d, struct nb_http_req *req, const char *key_id, bool root,
                 const char *policy, const char *action, const char *resource)
{
    struct nb_err err = {0};
    if (authz_decide(d, req, key_id, root, policy, action, resource, &err) == 0)
        return true;
    api_error(req, 403, "AccessDeniedException", "%s", err.msg);
    return false;
}

void authz_refused(struct nb_daemon *d, struct nb_http_req *req, const char *key_id,
                   const char *action, const char *resource, const char *type)
{
    audit_on_reply(d, req, key_id, action, resource, "refused", type);
}

/* The canonical ARN of the function ref names, in the daemon's region and account whatever the
 * ref says: handlers act on the local function of that name (or refuse a foreign ARN), so a
 * foreign region or account in the ref must not dodge a statement written for the local one.
 * NULL when ref does not parse (the handler will refuse it with the same parser). */
static const char *canonical_arn(struct nb_daemon *d, struct nb_http_req *req, const char *ref,
                                 bool query_qualifier)
{
    _cleanup_free_ char *name = NULL, *qual = NULL;
    if (function_parse_ref_arn(ref, &name, &qual, NULL, NULL, NULL) < 0)
        return NULL;
    const char *q = qual ? qual : query_qualifier ? http_req_query(req, "Qualifier") : NULL;
    return arena_printf(&req->arena, "arn:aws:lambda:%s:%s:function:%s%s%s", d->cfg.region,
                        d->cfg.account_id, name, q && *q ? ":" : "", q && *q ? q : "");
}

const char *authz_resource(struct nb_daemon *d, struct nb_http_req *req,
                           const struct nb_route_match *m)
{
    const char *ref = route_param(m, "FunctionName"), *arn;
    if (ref) {
        arn = canonical_arn(d, req, ref, true);
        return arn ? arn : "*";
    }
    ref = route_param(m, "ARN");
    if (ref) {
        /* the tag routes refuse (400) what is not an "arn:…:function:…" before parsing it */
        if (strncmp(ref, "arn:", 4) != 0 || !strstr(ref, ":function:"))
            return ref;
        arn = canonical_arn(d, req, ref, false);
        return arn ? arn : ref;
    }
    return "*";
}
