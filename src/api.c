/*
 * api.c - the AWS API listener's front door: route lookup, the request id header, and the one
 * place AWS error replies are shaped (LAMBDA.md §3.10).
 *
 * Invariant: every reply leaving this listener carries x-amzn-RequestId and, for errors,
 * x-amzn-ErrorType; no handler formats an error body itself (the JSON protocols' shape of
 * `POST /` services is api_target.c's).
 */
#include "api.h"

#include <errno.h>

#include "api_target.h"
#include "authn.h"
#include "authz.h"
#include "daemon.h"
#include "function.h"
#include "keys.h"
#include "log.h"

#define MAX_HDRS 8

static void reply_json_text(struct nb_http_req *req, int status, const char *err_type, char *body,
                            size_t len)
{
    char rid[37];
    uuid_v4(rid);
    struct nb_http_header h[MAX_HDRS];
    size_t n = 0;
    h[n++] = (struct nb_http_header){"Content-Type", "application/json"};
    h[n++] = (struct nb_http_header){"x-amzn-RequestId", rid};
    if (err_type)
        h[n++] = (struct nb_http_header){"x-amzn-ErrorType", err_type};
    http_reply_owned(req, status, h, n, body, len);
}

void api_json(struct nb_http_req *req, int status, json_t *json)
{
    char *body = json_dumps(json, JSON_COMPACT);
    json_decref(json);
    if (!body)
        BUG("json_dumps failed");
    reply_json_text(req, status, NULL, body, strlen(body));
}

void api_empty(struct nb_http_req *req, int status)
{
    char rid[37];
    uuid_v4(rid);
    struct nb_http_header h[] = {{"x-amzn-RequestId", rid}};
    http_reply(req, status, h, ARRAY_SIZE(h), NULL, 0);
}

int api_work_result(int status, int rc, struct nb_err *err)
{
    if (status < 0 && rc == 0)
        return err_set(err, EIO, "work cancelled: %s", uv_strerror(status));
    return rc;
}

static void api_verror(struct nb_http_req *req, int status, const char *type, const char *fmt,
                       va_list ap) PRINTF_LIKE(4, 0);
static void api_verror(struct nb_http_req *req, int status, const char *type, const char *fmt,
                       va_list ap)
{
    _cleanup_free_ char *msg = xvasprintf(fmt, ap);
    json_t *o = json_pack("{s:s, s:s, s:s}", "Type", status >= 500 ? "Service" : "User", "message",
                          msg, "Message", msg);
    if (!o)
        BUG("json_pack failed");
    char *body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    log_debug("api error status=%d type=%s path=%s msg=\"%s\"", status, type, req->path, msg);
    reply_json_text(req, status, type, body, strlen(body));
}

void api_error(struct nb_http_req *req, int status, const char *type, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    api_verror(req, status, type, fmt, ap);
    va_end(ap);
}

void api_error_from(struct nb_http_req *req, const struct nb_err *err)
{
    int status;
    const char *type;
    switch (err->code) {
    case EINVAL:
        status = 400, type = "InvalidParameterValueException";
        break;
    case ENOENT:
        status = 404, type = "ResourceNotFoundException";
        break;
    case EEXIST:
        status = 409, type = "ResourceConflictException";
        break;
    case E2BIG:
        status = 413, type = "RequestTooLargeException";
        break;
    case EAGAIN:
        status = 429, type = "TooManyRequestsException";
        break;
    default:
        status = 500, type = "ServiceException";
        log_err("service error path=%s code=%d msg=\"%s\"", req->path, err->code, err->msg);
        break;
    }
    api_error(req, status, type, "%s", err->msg);
}

bool api_function_ref(struct nb_http_req *req, const struct nb_route_match *m, char **name,
                      char **qualifier)
{
    struct nb_err err = {0};
    if (function_parse_ref(route_param(m, "FunctionName"), name, qualifier, &err) < 0) {
        api_error_from(req, &err);
        return false;
    }
    return true;
}

json_t *api_body_json(struct nb_http_req *req)
{
    if (req->body_len == 0)
        return json_object();
    json_error_t jerr;
    json_t *j = json_loadb(req->body, req->body_len, 0, &jerr);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        api_error(req, 400, "InvalidRequestContentException",
                  "Could not parse request body into json: %s",
                  j ? "not a JSON object" : jerr.text);
        return NULL;
    }
    return j;
}

int api_authorize(struct nb_daemon *d, struct nb_http_req *req, const struct nb_route_match *m,
                  const char *action, const char *resource, struct nb_err *err)
{
    if (!m->caller)
        return err_set(err, EACCES, "no credentials for %s", action);
    return authz_decide(d, req, m->caller->key_id, m->caller->root, m->caller->policy, action,
                        resource, err);
}

/* Authenticates req (unless --insecure, where the caller is the root key) and fills *caller.
 * False after replying the refusal (audited by authn.c). */
static bool authenticate(struct nb_daemon *d, struct nb_http_req *req,
                         const struct nb_route_match *m, struct nb_caller *caller)
{
    const struct nb_key *key = d->cfg.insecure ? keys_root(d->keys) : authn_request(d, req, m);
    if (!key)
        return false;
    *caller = (struct nb_caller){.key_id = key->id, .root = key->root, .policy = key->policy};
    return true;
}

void api_handle(struct nb_http_req *req, void *data)
{
    struct nb_daemon *d = data;
    nb_route_cb cb;
    void *cb_data;
    struct nb_route_match m = {0};
    switch (router_match(d->router, req, &cb, &cb_data, &m)) {
    case NB_ROUTE_OK:
        if (!m.action) { /* public route */
            cb(req, &m, cb_data);
            return;
        }
        if (!strcmp(m.action, API_TARGET_ACTION) && !(cb = api_target_select(req, &m)))
            return; /* POST /: the service comes from X-Amz-Target (api_target.c) */
        struct nb_caller caller;
        if (!authenticate(d, req, &m, &caller))
            return;
        m.caller = &caller;
        /* A route whose action is "service:*" names its operation only in the body (SQS's
         * protocols): its handler authorizes with api_authorize once it has parsed it. */
        size_t alen = strlen(m.action);
        if (!(alen >= 2 && !strcmp(m.action + alen - 2, ":*")) &&
            !authz_check(d, req, caller.key_id, caller.root, caller.policy, m.action,
                         authz_resource(d, req, &m)))
            return;
        cb(req, &m, cb_data);
        return;
    case NB_ROUTE_BAD_PATH:
        api_error(req, 400, "InvalidParameterValueException", "malformed percent-encoding in path");
        return;
    case NB_ROUTE_BAD_METHOD:
    case NB_ROUTE_NOT_FOUND:
        break;
    }
    api_error(req, 404, "UnknownOperationException", "Unknown operation %s %s", req->method,
              req->path);
}
