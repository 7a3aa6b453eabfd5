/*
 * api_invoke.c - the Invoke operation (POST /2015-03-31/functions/{FunctionName}/invocations):
 * request validation, admission against account and reserved concurrency (429 with Lambda's
 * Reason), and the choice between a warm instance (most recently used idle one) and a cold start.
 *
 * Invariant: an invocation exists only once pool_admit() admitted it; invoke.c releases the
 * admission (pool_release) when it completes. Event (asynchronous) invocations are validated
 * here like synchronous ones (1 MB payload limit instead of 6 MB) and handed to async.c, which
 * answers 202 once the event is durable.
 */
#include <errno.h>

#include "api.h"
#include "async.h"
#include "codec.h"
#include "daemon.h"
#include "instance.h"
#include "log.h"

#define SYNC_PAYLOAD_MAX 6291456
#define CLIENT_CONTEXT_MAX 3583

static void throttle(struct nb_daemon *d, struct nb_fn *fn, const struct nb_function *cfg,
                     struct nb_http_req *req, const char *reason)
{
    metrics_throttle(d, fn, cfg);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "Type", "User", "message", "Rate Exceeded.",
                          "Message", "Rate Exceeded.", "Reason", reason);
    char *body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    char rid[37];
    uuid_v4(rid);
    struct nb_http_header h[] = {{"Content-Type", "application/json"},
                                 {"x-amzn-RequestId", rid},
                                 {"x-amzn-ErrorType", "TooManyRequestsException"},
                                 {"Retry-After", "1"}};
    http_reply_owned(req, 429, h, ARRAY_SIZE(h), body, strlen(body));
}

/* Decodes X-Amz-Client-Context (base64 JSON); NULL with the reply sent on error. */
static bool client_context(struct nb_http_req *req, char **out)
{
    const char *cc = http_req_header(req, "X-Amz-Client-Context");
    *out = NULL;
    if (!cc || !*cc)
        return true;
    if (strlen(cc) > CLIENT_CONTEXT_MAX) {
        api_error(req, 400, "InvalidParameterValueException",
                  "Client context must be at most %d bytes", CLIENT_CONTEXT_MAX);
        return false;
    }
    unsigned char *raw;
    size_t len;
    struct nb_err err = {0};
    if (b64_decode(cc, strlen(cc), &raw, &len, &err) < 0) {
        api_error(req, 400, "InvalidParameterValueException",
                  "Client context must be a valid Base64-encoded JSON object.");
        return false;
    }
    json_t *j = json_loadb((const char *)raw, len, 0, NULL);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        free(raw);
        api_error(req, 400, "InvalidParameterValueException",
                  "Client context must be a valid Base64-encoded JSON object.");
        return false;
    }
    json_decref(j);
    *out = (char *)raw;
    return true;
}

static void handle_invoke(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    struct nb_daemon *d = data;
    _cleanup_free_ char *name = NULL, *qualifier = NULL;
    if (!api_function_ref(req, m, &name, &qualifier))
        return;
    const char *q = http_req_query(req, "Qualifier");
    if (q && qualifier && strcmp(q, qualifier)) {
        api_error(req, 400, "InvalidParameterValueException",
                  "The derived qualifier from the function name does not match the specified "
                  "qualifier.");
        return;
    }
    if (!qualifier && q)
        qualifier = xstrdup(q);
    struct nb_fn *fn = registry_find(d, name);
    if (!fn) {
        api_error(req, 404, "ResourceNotFoundException",
                  "Function not found: arn:aws:lambda:%s:%s:function:%s%s%s", d->cfg.region,
                  d->cfg.account_id, name, qualifier ? ":" : "", qualifier ? qualifier : "");
        return;
    }
    struct nb_err rerr = {0};
    struct nb_function *cfg = registry_resolve(d, fn, qualifier, &rerr);
    if (!cfg) {
        api_error_from(req, &rerr);
        return;
    }
    const char *type = http_req_header(req, "X-Amz-Invocation-Type");
    if (type && strcmp(type, "RequestResponse") && strcmp(type, "DryRun") &&
        strcmp(type, "Event")) {
        api_error(req, 400, "InvalidParameterValueException",
                  "1 validation error detected: Value '%s' at 'invocationType' failed to "
                  "satisfy constraint: Member must satisfy enum value set: [Event, "
                  "RequestResponse, DryRun]",
                  type);
        return;
    }
    bool event = type && !strcmp(type, "Event");
    const char *log_type = http_req_header(req, "X-Amz-Log-Type");
    if (log_type && strcmp(log_type, "None") && strcmp(log_type, "Tail")) {
        api_error(req, 400, "InvalidParameterValueException",
                  "1 validation error detected: Value '%s' at 'logType' failed to satisfy "
                  "constraint: Member must satisfy enum value set: [None, Tail]",
                  log_type);
        return;
    }
    size_t max = event ? NB_ASYNC_PAYLOAD_MAX : SYNC_PAYLOAD_MAX;
    if (req->body_len > max) {
        api_error(req, 413, "RequestTooLargeException",
                  "Request must be smaller than %zu bytes for the InvokeFunction operation", max);
        return;
    }
    if (req->body_len) {
        json_t *j = json_loadb(req->body, req->body_len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        if (!j) {
            api_error(req, 400, "InvalidRequestContentException",
                      "Could not parse request body into json: Could not parse payload into "
                      "json: Unexpected character");
            return;
        }
        json_decref(j);
    }
    char *cc;
    if (!client_context(req, &cc))
        return;
    if (type && !strcmp(type, "DryRun")) {
        free(cc);
        api_empty(req, 204);
        return;
    }
    if (d->draining) {
        free(cc);
        api_error(req, 503, "ServiceException", "nimbus is shutting down");
        return;
    }
    if (event) {
        /* the client context is for synchronous invocations only, as in Lambda */
        free(cc);
        async_accept(d, fn, qualifier, req);
        return;
    }
    const char *reason = pool_admit(d, fn, cfg);
    if (reason) {
        free(cc);
        throttle(d, fn, cfg, req, reason);
        return;
    }
    char *payload = NULL;
    size_t payload_len = 0;
    if (req->body_len)
        payload = http_req_steal_body(req, &payload_len);
    struct nb_invocation *inv =
        invoke_new(d, fn, cfg, NULL, payload, payload_len, http_req_header(req, "X-Amzn-Trace-Id"));
    inv->client_context = cc;
    /* versions: cfg->arn is already ":N"; an alias or ":$LATEST" is passed on as the caller wrote
     * it (the runtime's Lambda-Runtime-Invoked-Function-Arn) */
    if (qualifier && (strcmp(qualifier, cfg->version) != 0 || !strcmp(qualifier, "$LATEST")))
        inv->invoked_arn = xasprintf("%s:%s", fn->cfg->arn, qualifier);
    inv->tail = log_type && !strcmp(log_type, "Tail");
    /* A client that goes away does not stop the invocation; its reply is then dropped by http.c
     * (every request gets exactly one reply, even a dead one). */
    inv->client = req;
    invoke_start(inv);
}

void api_invoke_routes(struct nb_router *r, struct nb_daemon *d)
{
    router_add(r, "POST", "/2015-03-31/functions/{FunctionName}/invocations",
               "lambda:InvokeFunction", handle_invoke, d);
}
