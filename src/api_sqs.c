/*
 * api_sqs.c - SQS on the AWS API listener: the two wire protocols around sqs.c's operations.
 *
 * POST / and POST /<account>/<queue> (clients post to the queue URL) are routed here with the
 * action "sqs:*": api.c authenticates, this file authorizes once the operation and the queue are
 * known. Protocol: JSON 1.0 when the request has X-Amz-Target: AmazonSQS.<Op> or Content-Type
 * application/x-amz-json-1.0 (input/output are the operation's JSON as is; errors are
 * {"__type","message"} with x-amzn-query-error: <query code>;Sender|Receiver); the query protocol
 * otherwise (form body with Action=<Op>, XML replies and errors; sqs_codec.c).
 * A request's call state lives in its arena; a held long poll is answered when the client leaves.
 */
#include <errno.h>

#include "api.h"
#include "api_target.h"
#include "daemon.h"
#include "log.h"
#include "sqs.h"
#include "sqs_codec.h"

struct sqs_req {
    struct nb_sqs_call call;
    struct nb_http_req *req;
    struct nb_daemon *d;
    bool json;
    json_t *in;
    char op[64];
};

static void reply_error(struct sqs_req *r, const struct nb_sqs_error *e)
{
    char rid[37];
    uuid_v4(rid);
    log_debug("sqs error op=%s code=%s msg=\"%s\"", r->op, e->code, e->msg);
    if (r->json) {
        json_t *o = json_pack("{s:s, s:s}", "__type", e->type, "message", e->msg);
        char *body = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        char qe[160];
        snprintf(qe, sizeof(qe), "%s;%s", e->code, e->sender ? "Sender" : "Receiver");
        struct nb_http_header h[] = {{"Content-Type", "application/x-amz-json-1.0"},
                                     {"x-amzn-RequestId", rid},
                                     {"x-amzn-query-error", qe}};
        http_reply_owned(r->req, e->status, h, ARRAY_SIZE(h), body, strlen(body));
    } else {
        size_t len;
        char *body = sqs_xml_error(e->code, e->sender, e->msg, rid, &len);
        struct nb_http_header h[] = {{"Content-Type", "text/xml"}, {"x-amzn-RequestId", rid}};
        http_reply_owned(r->req, e->status, h, ARRAY_SIZE(h), body, len);
    }
}

static void on_reply(struct nb_sqs_call *c, json_t *out, const struct nb_sqs_error *e)
{
    struct sqs_req *r = c->data;
    /* r lives in the request's arena, which the reply frees: take what is needed first */
    json_t *in = r->in;
    r->in = NULL;
    if (e) {
        reply_error(r, e);
    } else {
        char rid[37];
        uuid_v4(rid);
        size_t len;
        char *body;
        const char *ctype;
        if (r->json) {
            body = json_dumps(out, JSON_COMPACT);
            len = strlen(body);
            ctype = "application/x-amz-json-1.0";
        } else {
            body = sqs_xml_reply(r->op, out, rid, &len);
            ctype = "text/xml";
        }
        struct nb_http_header h[] = {{"Content-Type", ctype}, {"x-amzn-RequestId", rid}};
        http_reply_owned(r->req, 200, h, ARRAY_SIZE(h), body, len);
    }
    json_decref(in);
}

static void on_abort(struct nb_http_req *req, void *data)
{
    struct sqs_req *r = data;
    if (r->d->sqs)
        sqs_call_abort(r->d->sqs, &r->call);
}

/* Replies e to r and drops the parsed input. */
static void fail_req(struct sqs_req *r, const struct nb_sqs_error *e)
{
    json_t *in = r->in; /* r is in the request's arena, which the reply frees */
    r->in = NULL;
    reply_error(r, e);
    json_decref(in);
}

/* Fails r with the SQS error code and the message fmt, ...; returns from the caller. */
#define FAIL_REQ(r, code, ...)                                                                     \
    do {                                                                                           \
        struct nb_sqs_error fail_err_;                                                             \
        sqs_error_set(&fail_err_, code, __VA_ARGS__);                                              \
        fail_req(r, &fail_err_);                                                                   \
        return;                                                                                    \
    } while (0)

void api_sqs_handle(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    struct nb_daemon *d = data;
    const char *acct = route_param(m, "Account");
    if (acct && (strlen(acct) != 12 || strspn(acct, "0123456789") != 12)) {
        api_error(req, 404, "UnknownOperationException", "Unknown operation %s %s", req->method,
                  req->path);
        return;
    }
    struct sqs_req *r = arena_alloc(&req->arena, sizeof(*r));
    memset(r, 0, sizeof(*r));
    r->req = req;
    r->d = d;
    const char *target = http_req_header(req, "X-Amz-Target");
    const char *ctype = http_req_header(req, "Content-Type");
    r->json = (target && !strncmp(target, "AmazonSQS.", 10)) ||
              (ctype && strstr(ctype, "application/x-amz-json-1.0"));
    struct nb_err err = {0};
    if (r->json) {
        snprintf(r->op, sizeof(r->op), "%s", target ? target + 10 : "");
        json_error_t jerr;
        r->in = req->body_len ? json_loadb(req->body, req->body_len, JSON_ALLOW_NUL, &jerr)
                              : json_object();
        if (!json_is_object(r->in)) {
            json_decref(r->in);
            r->in = NULL;
            FAIL_REQ(r, "InvalidParameterValue", "the request body is not a JSON object");
        }
        if (!target)
            FAIL_REQ(r, "MissingParameter", "The request must contain X-Amz-Target.");
    } else {
        if (sqs_query_parse(req->body, req->body_len, &r->in, &err) < 0)
            FAIL_REQ(r, "InvalidParameterValue", "%s", err.msg);
        const char *action = json_string_value(json_object_get(r->in, "Action"));
        if (!action)
            FAIL_REQ(r, "MissingAction", "The request must contain the parameter Action.");
        snprintf(r->op, sizeof(r->op), "%s", action);
        json_object_del(r->in, "Action");
        json_object_del(r->in, "Version");
    }
    if (!d->sqs)
        FAIL_REQ(r, "InternalError", "the queue service is not running");
    if (!sqs_known_op(r->op))
        FAIL_REQ(r, "InvalidAction", "The action %s is not valid for this endpoint.", r->op);
    /* A request posted to a queue URL names its queue by the path too. */
    const char *qname = route_param(m, "Queue");
    if (qname && !json_object_get(r->in, "QueueUrl") && strcmp(r->op, "CreateQueue") &&
        strcmp(r->op, "GetQueueUrl") && strcmp(r->op, "ListQueues"))
        json_object_set_new(r->in, "QueueUrl", json_string(qname));

    const char *host = http_req_header(req, "Host");
    char *base =
        host && *host && !strpbrk(host, "/ \t")
            ? arena_printf(&req->arena, "http://%s", host)
            : arena_printf(&req->arena, "http://%s:%d", d->cfg.listen_host, d->cfg.listen_port);
    r->call.op = r->op;
    r->call.in = r->in;
    r->call.url_base = base;
    r->call.reply = on_reply;
    r->call.data = r;

    char resource[600];
    sqs_call_resource(d->sqs, &r->call, resource, sizeof(resource));
    char action[80];
    snprintf(action, sizeof(action), "sqs:%s", r->op);
    if (api_authorize(d, req, m, action, resource, &err) < 0) {
        if (err.code == EACCES)
            FAIL_REQ(r, "AccessDenied", "%s", err.msg);
        FAIL_REQ(r, "InternalError", "%s", err.msg);
    }
    req->on_abort = on_abort;
    req->abort_data = r;
    sqs_call(d->sqs, &r->call);
}

void api_sqs_routes(struct nb_router *r, struct nb_daemon *d)
{
    /* POST / reaches api_sqs_handle through api_target.c's table (X-Amz-Target AmazonSQS.*, or
     * none: the query protocol); a request posted to a queue URL comes here. */
    router_add(r, "POST", "/{Account}/{Queue}", "sqs:*", api_sqs_handle, d);
}
