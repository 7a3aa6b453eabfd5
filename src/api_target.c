/*
 * api_target.c - `POST /` of the AWS API listener: the table of services addressed by
 * X-Amz-Target (JSON 1.0/1.1 protocols) or by a form body (query protocol), and the JSON
 * protocols' error shape. See api_target.h.
 *
 * Invariant: the table is the only place a service joins `POST /`; a request reaches a handler
 * only with m->action set to that service's "service:*" action, so api.c authenticates it for
 * that service and the handler authorizes the operation.
 */
#include "api_target.h"

#include <errno.h>
#include <stdarg.h>

#include "api.h"
#include "log.h"

/* Add a service here (SQS: {"AmazonSQS.", "sqs:*", ...} and {NULL, "sqs:*", ...}). */
static const struct nb_api_target targets[] = {
    {"AWSEvents.", "events:*", api_events_handle},
    {"AmazonSQS.", "sqs:*", api_sqs_handle}, /* JSON 1.0 */
    {NULL, "sqs:*", api_sqs_handle},         /* query protocol: Action= in the form body */
};

static const struct nb_api_target *find(const char *target)
{
    for (size_t i = 0; i < ARRAY_SIZE(targets); i++) {
        const struct nb_api_target *t = &targets[i];
        if (!t->prefix) {
            if (!target)
                return t;
            continue;
        }
        size_t n = strlen(t->prefix);
        if (target && !strncmp(target, t->prefix, n) && target[n])
            return t;
    }
    return NULL;
}

nb_route_cb api_target_select(struct nb_http_req *req, struct nb_route_match *m)
{
    const char *target = http_req_header(req, "X-Amz-Target");
    const struct nb_api_target *t = find(target);
    if (!t) {
        if (target)
            api_target_error(req, 400, "UnknownOperationException", "unknown X-Amz-Target '%s'",
                             target);
        else
            api_target_error(req, 400, "UnknownOperationException",
                             "POST / needs an X-Amz-Target header naming the operation");
        return NULL;
    }
    m->action = t->action;
    if (m->n < NB_ROUTE_MAX_PARAMS) {
        m->names[m->n] = "Operation";
        m->values[m->n] = t->prefix ? target + strlen(t->prefix) : "";
        m->n++;
    }
    return t->cb;
}

static void dispatch(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    (void)req, (void)m, (void)data;
    BUG("POST / reached without api_target_select");
}

void api_target_routes(struct nb_router *r, struct nb_daemon *d)
{
    router_add(r, "POST", "/", API_TARGET_ACTION, dispatch, d);
}

void api_target_error(struct nb_http_req *req, int status, const char *type, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    if (status >= 500)
        log_err("service error path=%s type=%s msg=\"%s\"", req->path, type, msg);
    json_t *o = json_pack("{s:s, s:s}", "__type", type, "message", msg);
    if (!o)
        BUG("json_pack failed");
    char *body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!body)
        BUG("json_dumps failed");
    char rid[37];
    uuid_v4(rid);
    struct nb_http_header h[] = {
        {"Content-Type", "application/x-amz-json-1.1"},
        {"x-amzn-RequestId", rid},
        {"x-amzn-ErrorType", type},
    };
    http_reply_owned(req, status, h, ARRAY_SIZE(h), body, strlen(body));
}

void api_target_json(struct nb_http_req *req, json_t *json)
{
    char *body = json_dumps(json, JSON_COMPACT);
    json_decref(json);
    if (!body)
        BUG("json_dumps failed");
    char rid[37];
    uuid_v4(rid);
    struct nb_http_header h[] = {
        {"Content-Type", "application/x-amz-json-1.1"},
        {"x-amzn-RequestId", rid},
    };
    http_reply_owned(req, 200, h, ARRAY_SIZE(h), body, strlen(body));
}
